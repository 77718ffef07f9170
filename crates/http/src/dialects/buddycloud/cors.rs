//! CORS for browser clients (buddycloud's web client called the API from another origin,
//! with credentials). An origin may call the dialect when the tenant the request reaches —
//! by its `/t/{slug}` path or its `Host` — answers the dialect and lists the origin in its
//! `cors_origins` policy. Such an origin gets itself back in `Access-Control-Allow-Origin`
//! (never `*`: the requests carry credentials) with `Access-Control-Allow-Credentials`;
//! preflights also get the route's methods and the headers clients send. Any other origin
//! gets no CORS header at all, so its browser keeps the answer from its scripts.
//!
//! A state-changing request a browser makes on another site's behalf (by `Sec-Fetch-Site` or
//! `Origin`) is refused unless its origin is listed: browsers attach cached Basic credentials
//! to such requests by themselves.
//!
//! The tenant is the request's, not the one a `user@domain` in the credentials names: a
//! preflight carries no credentials, and both halves of a CORS exchange must agree.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use portcullis_core::TenantId;

use super::identity::served;
use super::reply::Reply;
use crate::shared::csrf::cross_site;
use crate::shared::{AppState, CurrentTenant};

/// The headers a client may send.
const ALLOW_HEADERS: &str = "Authorization, Content-Type";

/// The headers a script may read besides the simple ones.
const EXPOSE_HEADERS: &str = "WWW-Authenticate, Retry-After";

/// How long a browser may keep a preflight's answer, in seconds.
const MAX_AGE: &str = "600";

/// Adds the CORS headers a response deserves (a layer on every route of the dialect).
pub async fn layer(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let preflight =
        req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let tenant = req.extensions().get::<CurrentTenant>().map_or(TenantId::DEFAULT, |t| t.0);
    // A browser attaches Basic credentials it has cached to requests other sites make, and a
    // text/plain form needs no preflight: a state-changing request from another site passes
    // only from an origin the tenant lists.
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && cross_site(&req) {
        let listed = match &origin {
            Some(o) => allowed(&st, tenant, o).await,
            None => false,
        };
        if !listed {
            let mut res =
                Reply::detailed(StatusCode::FORBIDDEN, "requests from other sites are refused").into_response();
            res.headers_mut().append(header::VARY, HeaderValue::from_static("Origin"));
            return res;
        }
    }
    let mut res = next.run(req).await;
    // The answer depends on the Origin sent, whatever it is: caches must know.
    res.headers_mut().append(header::VARY, HeaderValue::from_static("Origin"));
    let Some(origin) = origin else { return res };
    if !allowed(&st, tenant, &origin).await {
        return res;
    }
    let h = res.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
    if preflight {
        if let Some(methods) = h.get(header::ALLOW).cloned() {
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, methods);
        }
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOW_HEADERS));
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE));
    } else {
        h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSE_HEADERS));
    }
    res
}

async fn allowed(st: &AppState, tenant: TenantId, origin: &HeaderValue) -> bool {
    let Ok(origin) = origin.to_str() else { return false };
    match served(&st.core, tenant).await {
        Ok(Some(policy)) => policy.allows_cors_origin(origin),
        // A tenant without the dialect, or a database that cannot say: no grant.
        Ok(None) | Err(_) => false,
    }
}

/// The answer to `OPTIONS` on a route that takes `methods`: 204 with `Allow` (the layer adds
/// the CORS grant where the origin deserves one).
pub fn options(methods: &'static str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::ALLOW, HeaderValue::from_static(methods));
    (StatusCode::NO_CONTENT, headers).into_response()
}
