//! What every surface shares, tied to no error shape: the state handlers reach, who the
//! client is, which tenant a request is for, credentials in headers and cookies, reading a
//! body within its limit, and the machinery that mounts a surface so that *every* failure on
//! its paths — a missing route, a wrong method, an unknown or disabled tenant, a cross-site
//! request, a panic — is answered in that surface's own format.
//!
//! A surface is a [`Router`] plus an implementation of [`Surface`], which renders those
//! [`Rejection`]s. [`Surfaces`] dispatches each request to the surface owning the longest
//! prefix of its path (the default surface owns the rest), so surfaces never share a fallback
//! and nothing at the crate root answers on a surface's behalf.

pub mod body;
pub mod client;
pub mod cookies;
pub mod credentials;
pub mod csrf;
pub mod params;
pub mod qr;
pub mod tenant;
pub mod xml;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;
use portcullis_core::{Core, CoreError};
use serde::{Deserialize, Serialize};
use tower::ServiceExt as _;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::RequestId;
use tower_http::trace::TraceLayer;

pub use self::client::Client;
pub use self::tenant::CurrentTenant;

/// Whether the session cookie carries the `Secure` attribute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CookieSecure {
    /// When the request came over HTTPS, as a trusted proxy says with `X-Forwarded-Proto`.
    #[default]
    Auto,
    /// Always (the site is only ever served over HTTPS).
    Always,
    /// Never (local development over plain HTTP).
    Never,
}

/// Smallest request body limit that may be configured, in bytes.
pub const MIN_BODY_BYTES: usize = 1024;

/// HTTP settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Proxies whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed (CIDR list).
    pub trusted_proxies: Vec<IpNet>,
    /// Name of the session cookie.
    pub cookie_name: String,
    /// When the session cookie is `Secure`.
    pub cookie_secure: CookieSecure,
    /// Where each legacy dialect is mounted.
    pub dialect_paths: crate::dialects::DialectPaths,
    /// How long a client may take to send a request's headers — and, between requests on a
    /// kept-alive connection, to start the next one — before its connection is closed.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// How long one request may take from its headers to its answer, its body included (a
    /// client sending a body one byte at a time is cut off); answered 408.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Most connections open at once; more are closed as they arrive.
    pub max_connections: usize,
    /// Most connections open at once from one client address (an IPv6 client's network of
    /// `rate_limits.ipv6_prefix` bits); more are closed as they arrive.
    pub max_connections_per_ip: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            trusted_proxies: Vec::new(),
            cookie_name: "portcullis_session".into(),
            cookie_secure: CookieSecure::Auto,
            dialect_paths: crate::dialects::DialectPaths::default(),
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            max_connections_per_ip: 256,
        }
    }
}

impl HttpConfig {
    /// Checks the settings for values that cannot work.
    pub fn check(&self) -> Result<(), String> {
        if self.max_body_bytes < MIN_BODY_BYTES {
            return Err(format!("http.max_body_bytes must be at least {MIN_BODY_BYTES}"));
        }
        let name_ok = !self.cookie_name.is_empty()
            && self.cookie_name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
        if !name_ok {
            return Err("http.cookie_name may contain only letters, digits, '_', '-' and '.'".into());
        }
        if self.header_read_timeout < Duration::from_millis(100) || self.request_timeout < Duration::from_secs(1) {
            return Err("http.header_read_timeout must be at least 100ms and http.request_timeout at least 1s".into());
        }
        if self.max_connections == 0 || self.max_connections_per_ip == 0 {
            return Err("http.max_connections and http.max_connections_per_ip must be at least 1".into());
        }
        self.dialect_paths.check()
    }
}

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The core.
    pub core: Arc<Core>,
    /// HTTP settings.
    pub config: Arc<HttpConfig>,
}

/// A failure found outside a surface's handlers, which the surface answers in its own format.
#[derive(Debug)]
pub enum Rejection {
    /// No route of the surface matches the path.
    NotFound,
    /// The path exists, but not with this method.
    MethodNotAllowed,
    /// The request names a tenant (by path or by `Host`) that does not exist or is disabled.
    TenantNotFound,
    /// A state-changing browser request from another site, riding on a cookie.
    CrossSite,
    /// A handler panicked (a bug); the cause went to the log.
    Panic,
    /// A core operation the layer needed failed (the database is unreachable, say).
    Core(CoreError),
}

/// A surface's wire format for the failures the shared layer finds.
pub trait Surface: Send + Sync + 'static {
    /// The answer to `rejection`, in the surface's format.
    fn reject(rejection: Rejection) -> Response;
}

/// How a surface is mounted.
#[derive(Clone, Debug)]
pub struct Mount {
    /// The surface's name (`native`, `admin`, `pages`, a dialect's name), recorded with every
    /// audit event a request through it causes.
    pub name: &'static str,
    /// The path prefixes the surface owns (`/v1`, `/api/v1.0/user_authenticate`, ...). Each
    /// request goes to the surface with the longest prefix of its path.
    pub prefixes: Vec<String>,
    /// Whether the surface serves tenants (resolving `/t/{slug}` and `Host` and refusing
    /// unknown or disabled ones), or answers the same for every tenant (health probes).
    pub tenants: bool,
    /// Whether state-changing requests riding on a cookie are checked for cross-site origin.
    pub csrf: bool,
}

/// A surface ready to serve: its router with every shared layer applied.
#[derive(Clone, Debug)]
pub struct MountedSurface {
    prefixes: Vec<String>,
    router: Router,
}

/// Mounts a surface: its routes, its own answers for a missing route and a wrong method, a
/// panic caught and answered in its format, and (as `mount` asks) tenant resolution and the
/// cross-site check, each refusing in its format; every request traced in one span.
pub fn mount<S: Surface>(mount: Mount, routes: Router<AppState>, state: &AppState) -> MountedSurface {
    let mut router = routes
        .fallback(|| async { S::reject(Rejection::NotFound) })
        .method_not_allowed_fallback(|| async { S::reject(Rejection::MethodNotAllowed) });
    // The last layer added runs first: the cross-site check before tenant resolution.
    if mount.tenants {
        router = router.layer(axum::middleware::from_fn_with_state(state.clone(), resolve_tenant::<S>));
    }
    if mount.csrf {
        router = router.layer(axum::middleware::from_fn(csrf::guard::<S>));
    }
    let name = SurfaceName(mount.name);
    let router = router
        .layer(tower_http::add_extension::AddExtensionLayer::new(name))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a request handler panicked");
            S::reject(Rejection::Panic)
        }))
        .layer(
            // One span per request: the matched route (never the raw URI, which may carry a
            // secret) and the request id.
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let route = req.extensions().get::<MatchedPath>().map(MatchedPath::as_str).unwrap_or("unmatched");
                    let id =
                        req.extensions().get::<RequestId>().and_then(|r| r.header_value().to_str().ok()).unwrap_or("-");
                    tracing::info_span!("request", method = %req.method(), route, request_id = id)
                })
                .on_request(())
                .on_response(|res: &Response, latency: Duration, _: &tracing::Span| {
                    tracing::debug!(status = res.status().as_u16(), latency_us = latency.as_micros() as u64, "served");
                })
                .on_failure(()),
        )
        .with_state(state.clone());
    MountedSurface { prefixes: mount.prefixes, router }
}

async fn resolve_tenant<S: Surface>(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    match tenant::resolve(&st.core, tenant::name_of(&req)).await {
        Ok(Some(id)) => {
            req.extensions_mut().insert(CurrentTenant(id));
        }
        Ok(None) => {}
        Err(CoreError::NotFound) => return S::reject(Rejection::TenantNotFound),
        Err(e) => return S::reject(Rejection::Core(e)),
    }
    next.run(req).await
}

/// The name of the surface a request reached, set by [`mount`].
#[derive(Clone, Copy, Debug)]
pub struct SurfaceName(pub &'static str);

/// The name of the surface a request reached ("" outside a mounted surface).
pub fn surface_of(extensions: &axum::http::Extensions) -> &'static str {
    extensions.get::<SurfaceName>().map_or("", |s| s.0)
}

/// Every surface of the application, dispatching each request by the longest prefix of its
/// path; a path no surface owns goes to the default surface.
#[derive(Clone, Debug)]
pub struct Surfaces {
    by_prefix: Arc<Vec<(String, Router)>>,
    default: Router,
}

impl Surfaces {
    /// The default surface, which owns every path no other surface claims.
    pub fn new(default: MountedSurface) -> Self {
        let mut s = Self { by_prefix: Arc::new(Vec::new()), default: default.router.clone() };
        s.add(default);
        s
    }

    /// Adds a surface.
    pub fn add(&mut self, surface: MountedSurface) {
        let mut all: Vec<(String, Router)> = self.by_prefix.as_ref().clone();
        for p in surface.prefixes {
            all.push((p, surface.router.clone()));
        }
        // Longest prefix first, so `/api/v1.0/user_authenticate` wins over `/api`.
        all.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        self.by_prefix = Arc::new(all);
    }

    fn route(&self, path: &str) -> Router {
        self.by_prefix
            .iter()
            .find(|(p, _)| owns(p, path))
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| self.default.clone())
    }
}

/// Whether `prefix` owns `path`: the same path, or a path below it (on a segment boundary).
pub(crate) fn owns(prefix: &str, path: &str) -> bool {
    let p = prefix.trim_end_matches('/');
    p.is_empty() || path == p || path.strip_prefix(p).is_some_and(|rest| rest.starts_with('/'))
}

impl tower::Service<Request> for Surfaces {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let router = self.route(req.uri().path());
        Box::pin(async move { router.oneshot(req).await })
    }
}

#[cfg(test)]
mod tests {
    use super::owns;

    #[test]
    fn a_prefix_owns_its_path_and_what_lies_below_it() {
        assert!(owns("/v1", "/v1"));
        assert!(owns("/v1", "/v1/login"));
        assert!(!owns("/v1", "/v10/login"));
        assert!(owns("/api", "/api/"));
        assert!(owns("/api/", "/api/account"));
        assert!(owns("/", "/anything"));
        assert!(!owns("/api/v1.0/user_authenticate", "/api/account"));
    }
}
