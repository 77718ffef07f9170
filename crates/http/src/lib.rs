//! The HTTP surfaces of Portcullis: the native JSON API (`/v1`), the operational endpoints
//! (`/healthz`, `/readyz`, `/openapi.json`) and the middleware around them. Handlers parse
//! their wire format, call one core operation and map the answer; no SQL and no business
//! decisions live here.

pub mod admin;
mod csrf;
pub mod error;
pub mod extract;
pub mod native;
pub mod tenant;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use ipnet::IpNet;
use portcullis_core::Core;
use serde::{Deserialize, Serialize};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody};
use crate::native::dto::StatusResponse;

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
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            trusted_proxies: Vec::new(),
            cookie_name: "portcullis_session".into(),
            cookie_secure: CookieSecure::Auto,
        }
    }
}

impl HttpConfig {
    /// Checks the settings for values that cannot work.
    pub fn check(&self) -> Result<(), String> {
        if self.max_body_bytes < 1024 {
            return Err("http.max_body_bytes must be at least 1024".into());
        }
        let name_ok = !self.cookie_name.is_empty()
            && self.cookie_name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
        if !name_ok {
            return Err("http.cookie_name may contain only letters, digits, '_', '-' and '.'".into());
        }
        Ok(())
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

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Portcullis native API",
        description = "Accounts, passwords and sessions. Every path also exists per tenant as /t/{tenant}/..., and for a request whose Host is a domain of a tenant. Errors always have the shape {\"error\": {\"code\", \"message\", \"fields\"}}."
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "accounts", description = "Sign-up and the user's own account"),
        (name = "sessions", description = "Log-in, log-out and sessions"),
        (name = "operations", description = "Health and readiness"),
        (name = "servers", description = "Credential checks for servers holding an API key"),
        (name = "admin", description = "Users, roles, attributes, keys and the audit log, for servers holding an API key with the right scope"),
        (name = "tenants", description = "Tenants, for operator keys"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key, pck_..., with the scope the endpoint names"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("portcullis_session"))),
        );
    }
}

/// Process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = StatusResponse)))]
async fn healthz() -> Json<StatusResponse> {
    Json(StatusResponse { status: "ok" })
}

/// Database is reachable.
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses((status = 200, body = StatusResponse), (status = 503, description = "Database unreachable", body = ErrorBody))
)]
async fn readyz(State(st): State<AppState>) -> Result<Json<StatusResponse>, ApiError> {
    st.core.ready().await?;
    Ok(Json(StatusResponse { status: "ready" }))
}

/// The routes and their OpenAPI document, before middleware.
pub fn routes() -> (Router<AppState>, OpenApiDoc) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .nest("/v1", native::routes())
        .nest("/v1/admin", admin::routes())
        .split_for_parts()
}

/// The complete application: every route with its middleware, ready to serve.
pub fn app(core: Arc<Core>, config: HttpConfig) -> Router {
    let (router, doc) = routes();
    let doc = Arc::new(doc);
    let max_body = config.max_body_bytes;
    let state = AppState { core, config: Arc::new(config) };
    let request_id = HeaderName::from_static("x-request-id");
    let routed = router
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { Json(doc.as_ref().clone()) }
            }),
        )
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "This method is not allowed here.")
        })
        .with_state(state.clone())
        .layer(axum::middleware::from_fn_with_state(state, tenant::resolve))
        .layer(axum::middleware::from_fn(csrf::guard))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a request handler panicked");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "Something went wrong on our side.")
                .into_response()
        }))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    // The matched route, never the raw URI: a URI may carry a secret.
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
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid));
    // `/t/{slug}/...` is stripped before routing, so every route also exists per tenant.
    Router::new().fallback_service(tenant::StripTenant::new(routed))
}
