//! The HTTP surfaces of Portcullis, each a thin adapter over the core: parse its wire format,
//! call one core operation as the caller it authenticated, write the answer in its format.
//! No SQL, no permission and no business decision lives here.
//!
//! - [`shared`]: what every surface shares, tied to no error shape — state, client IP, tenant
//!   resolution, credentials, bodies, and the mounting that makes every failure on a
//!   surface's paths answer in that surface's format;
//! - [`json`]: the JSON API's wire format (error shape, extractors, the user as JSON), shared by
//!   the two surfaces that speak it:
//! - [`native`]: the native JSON API (`/v1`) and the operational endpoints (`/healthz`,
//!   `/readyz`, `/openapi.json`);
//! - [`admin`]: the admin API (`/v1/admin`), for servers with API keys;
//! - [`pages`]: the hosted HTML pages (`/ui`);
//! - [`dialects`]: the legacy APIs, one folder each, importing no other dialect.
//!
//! [`app`] assembles them; [`app_with`] adds surfaces from outside (the tests mount one that
//! speaks plain text, to prove that every failure answers in a surface's own format).

pub mod admin;
pub mod dialects;
pub mod json;
pub mod native;
pub mod pages;
pub mod shared;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, header};
use portcullis_core::Core;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::OpenApi as _;
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa_axum::router::OpenApiRouter;

pub use crate::shared::{AppState, CookieSecure, HttpConfig};
use crate::shared::{Mount, MountedSurface, Surfaces, mount};

/// The routes of the JSON API (native and admin) and the operational endpoints, and their
/// OpenAPI document, before any layer.
pub fn routes() -> (Router<AppState>, Router<AppState>, Router<AppState>, OpenApiDoc) {
    let (native, native_doc) =
        OpenApiRouter::with_openapi(native::ApiDoc::openapi()).nest("/v1", native::routes()).split_for_parts();
    let (admin, admin_doc) = OpenApiRouter::new().nest("/v1/admin", admin::routes()).split_for_parts();
    let (ops, ops_doc) = native::ops::routes().split_for_parts();
    let mut doc = native_doc;
    doc.merge(admin_doc);
    doc.merge(ops_doc);
    (native, admin, ops, doc)
}

/// The complete application: every surface with its layers, ready to serve.
pub fn app(core: Arc<Core>, config: HttpConfig) -> Router {
    app_with(core, config, |_| Vec::new())
}

/// The application with more surfaces, mounted by `extra` on the shared state.
pub fn app_with(core: Arc<Core>, config: HttpConfig, extra: impl FnOnce(&AppState) -> Vec<MountedSurface>) -> Router {
    let max_body = config.max_body_bytes;
    let state = AppState { core, config: Arc::new(config) };
    let (native, admin, ops, doc) = routes();
    let json = |name: &'static str, prefixes: &[&str], tenants: bool, csrf: bool, routes: Router<AppState>| {
        let m = Mount { name, prefixes: prefixes.iter().map(|p| (*p).to_owned()).collect(), tenants, csrf };
        mount::<json::error::JsonApi>(m, routes, &state)
    };
    let mut surfaces = Surfaces::new(json("native", &["/v1"], true, true, native));
    surfaces.add(json("admin", &["/v1/admin"], true, true, admin));
    surfaces.add(json("ops", &native::ops::PATHS, false, false, native::ops::openapi_route(ops, doc)));
    surfaces.add(json("avatars", &[native::avatar::PREFIX], true, false, native::avatar::public_routes()));
    let pages_mount = Mount { name: "pages", prefixes: vec![pages::PREFIX.to_owned()], tenants: true, csrf: true };
    surfaces.add(mount::<pages::Pages>(pages_mount, pages::routes(), &state));
    for s in dialects::surfaces(&state, &state.config.dialect_paths) {
        surfaces.add(s);
    }
    for s in extra(&state) {
        surfaces.add(s);
    }
    let request_id = HeaderName::from_static("x-request-id");
    let service = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
        .layer(PropagateRequestIdLayer::new(request_id))
        // Nothing is cached unless a handler says otherwise (public pictures do).
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(DefaultBodyLimit::max(max_body))
        // `/t/{slug}/...` is stripped before dispatch, so every route also exists per tenant.
        .service(shared::tenant::StripTenant::new(surfaces));
    Router::new().fallback_service(service)
}
