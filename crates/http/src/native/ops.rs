//! The operational endpoints: `/healthz` (the process is up), `/readyz` (the database
//! answers) and `/openapi.json` (the API's description). The same for every tenant, and able
//! to answer while the database does not: mounted without tenant resolution.

use std::sync::Arc;

use axum::extract::State;
use axum::{Json, Router};
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::StatusResponse;
use crate::json::error::{ApiError, ErrorBody};
use crate::shared::AppState;

/// The paths this surface owns.
pub const PATHS: [&str; 3] = ["/healthz", "/readyz", "/openapi.json"];

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

/// The probes, with their part of the API description.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz))
}

/// `/openapi.json`, serving the whole document.
pub fn openapi_route(router: Router<AppState>, doc: OpenApiDoc) -> Router<AppState> {
    let doc = Arc::new(doc);
    router.route(
        "/openapi.json",
        axum::routing::get(move || {
            let doc = doc.clone();
            async move { Json(doc.as_ref().clone()) }
        }),
    )
}
