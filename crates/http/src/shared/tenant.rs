//! Which tenant a request is for: `/t/{slug}/...` in the path, else a tenant whose domain is
//! the request's `Host`, else the default tenant.
//!
//! The path prefix is stripped before routing (so every route exists once and is reachable per
//! tenant as `/t/{slug}/...`); the slug and the host are resolved to a tenant by each surface
//! that serves tenants, through the core's caches. An unknown or disabled tenant is refused by
//! that surface, in its own format.

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Uri, header};
use axum::response::Response;
use portcullis_core::{Core, CoreError, TenantId};

/// The slug of a `/t/{slug}/...` request, before it is resolved.
#[derive(Clone, Debug)]
pub struct TenantSlug(pub String);

/// Strips `/t/{slug}` from the path, remembering the slug.
fn strip_tenant_prefix(mut req: Request) -> Request {
    let path = req.uri().path();
    let Some(rest) = path.strip_prefix("/t/") else { return req };
    let (slug, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let slug = slug.to_owned();
    let new_path = match req.uri().query() {
        Some(q) => format!("{tail}?{q}"),
        None => tail.to_owned(),
    };
    let mut parts = req.uri().clone().into_parts();
    match new_path.parse() {
        Ok(pq) => parts.path_and_query = Some(pq),
        Err(_) => return req,
    }
    if let Ok(uri) = Uri::from_parts(parts) {
        *req.uri_mut() = uri;
        req.extensions_mut().insert(TenantSlug(slug));
    }
    req
}

/// A service that strips the tenant prefix, then hands the request to `inner` (the router).
#[derive(Clone, Debug)]
pub struct StripTenant<S> {
    inner: S,
}

impl<S> StripTenant<S> {
    /// Wraps the router.
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S> tower::Service<Request> for StripTenant<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        self.inner.call(strip_tenant_prefix(req))
    }
}

/// The tenant a request is for, once resolved: put in the request's extensions by the
/// surfaces that serve tenants; the default tenant when absent.
#[derive(Clone, Copy, Debug)]
pub struct CurrentTenant(pub TenantId);

impl<S: Send + Sync> FromRequestParts<S> for CurrentTenant {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<CurrentTenant>().copied().unwrap_or(CurrentTenant(TenantId::DEFAULT)))
    }
}

/// How a request names its tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TenantName {
    /// By its `/t/{slug}` prefix.
    Slug(String),
    /// By its `Host`, which may be a tenant's domain.
    Host(String),
    /// Not at all: the default tenant.
    Default,
}

/// How `req` names its tenant.
pub fn name_of(req: &Request) -> TenantName {
    if let Some(TenantSlug(slug)) = req.extensions().get::<TenantSlug>() {
        return TenantName::Slug(slug.clone());
    }
    host_of(req).map_or(TenantName::Default, TenantName::Host)
}

/// The tenant a request names; `Ok(None)` for the default tenant (and for a host that is no
/// tenant's domain). An unknown or disabled tenant is [`CoreError::NotFound`] (the domain of a
/// disabled tenant does not fall back to the default tenant). Answers nothing: each surface
/// renders the failure in its own format.
pub async fn resolve(core: &Core, name: TenantName) -> Result<Option<TenantId>, CoreError> {
    match name {
        TenantName::Slug(slug) => core.tenant_id_for_slug(&slug).await.map(Some),
        TenantName::Host(host) => core.tenant_for_domain(&host).await,
        TenantName::Default => Ok(None),
    }
}

/// The enabled tenant with this id, for wire formats that name a tenant by its number in a
/// parameter (Newspark's `vhost`). An unknown or disabled tenant is [`CoreError::NotFound`].
pub async fn by_id(core: &Core, id: i64) -> Result<TenantId, CoreError> {
    core.tenant_policy(TenantId(id)).await.map(|(t, _)| t.id)
}

/// The request's host name, without the port (the core normalises its case).
fn host_of(req: &Request) -> Option<String> {
    let h = req.headers().get(header::HOST)?.to_str().ok()?;
    let host = if h.starts_with('[') {
        h.split(']').next().map(|x| x.trim_start_matches('['))?
    } else {
        h.split(':').next()?
    };
    Some(host.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(uri: &str) -> (String, Option<String>) {
        let req = Request::builder().uri(uri).body(axum::body::Body::empty()).unwrap();
        let req = strip_tenant_prefix(req);
        (req.uri().to_string(), req.extensions().get::<TenantSlug>().map(|s| s.0.clone()))
    }

    #[test]
    fn the_tenant_prefix_is_stripped_and_remembered() {
        assert_eq!(strip("/t/acme/v1/login"), ("/v1/login".into(), Some("acme".into())));
        assert_eq!(strip("/t/acme/v1/admin/users?q=a"), ("/v1/admin/users?q=a".into(), Some("acme".into())));
        assert_eq!(strip("/t/acme"), ("/".into(), Some("acme".into())));
        assert_eq!(strip("/v1/login"), ("/v1/login".into(), None));
        assert_eq!(strip("/tx/acme/v1"), ("/tx/acme/v1".into(), None));
    }
}
