//! Which tenant a request is for: `/t/{slug}/...` in the path, else a tenant whose domain is
//! the request's `Host`, else the default tenant.
//!
//! The path prefix is stripped before routing (so every route exists once, under `/v1`, and is
//! reachable per tenant as `/t/{slug}/v1/...`); the slug and the host are resolved to a
//! tenant after routing, through the core's caches. An unknown or disabled tenant is a 404.

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::extract::{Request, State};
use axum::http::{Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use portcullis_core::CoreError;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::CurrentTenant;

/// The slug of a `/t/{slug}/...` request, before it is resolved.
#[derive(Clone, Debug)]
pub(crate) struct TenantSlug(pub(crate) String);

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

/// Middleware: resolves the tenant of the request into [`CurrentTenant`].
pub async fn resolve(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    // Probes and the API description are the same for every tenant, and must answer even
    // while the database does not.
    if matches!(req.uri().path(), "/healthz" | "/readyz" | "/openapi.json") {
        return next.run(req).await;
    }
    let tenant = if let Some(TenantSlug(slug)) = req.extensions().get::<TenantSlug>().cloned() {
        match st.core.tenant_id_for_slug(&slug).await {
            Ok(id) => Some(id),
            Err(CoreError::NotFound) => return ApiError::not_found().into_response(),
            Err(e) => return ApiError::from(e).into_response(),
        }
    } else if let Some(host) = host_of(&req) {
        match st.core.tenant_for_domain(&host).await {
            Ok(id) => id,
            // The domain of a disabled tenant serves nobody; it does not fall back to the
            // default tenant.
            Err(CoreError::NotFound) => return ApiError::not_found().into_response(),
            Err(e) => return ApiError::from(e).into_response(),
        }
    } else {
        None
    };
    if let Some(id) = tenant {
        req.extensions_mut().insert(CurrentTenant(id));
    }
    next.run(req).await
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
