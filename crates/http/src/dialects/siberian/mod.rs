//! The Siberian CMS dialect: the `api_account` calls of Siberian's admin API, at
//! `/admin/api_account` by default (`http.dialect_paths.siberian`).
//!
//! - `POST {prefix}/create | update | exist | authenticate | forgotpassword` (`api.rs`), for
//!   servers holding an API key (`caller.rs`), answered `{"success": 1, ...}` or
//!   `{"error": 1, "message": ...}` with HTTP 400 (`wire.rs`);
//! - `GET {prefix}/autologin` (`autologin.rs`), for the browsers those servers send to it with
//!   a one-time log-in token, answered with a redirect or a page, never JSON.
//!
//! The tenant comes from `/t/{slug}` or the `Host`, as everywhere; but the surface resolves it
//! itself, per route, instead of letting the shared layer refuse an unknown tenant: a refusal
//! must be JSON for the API and a page for a browser, and the shared layer's rejections do not
//! know which route they are for. Every other failure of the shared layer is JSON.

mod api;
mod autologin;
mod caller;
mod wire;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use portcullis_core::CoreError;

use crate::shared::tenant::{self, CurrentTenant};
use crate::shared::{AppState, Mount, MountedSurface, Rejection, Surface, mount};

/// The Siberian wire format.
#[derive(Debug)]
pub struct Siberian;

impl Surface for Siberian {
    fn reject(rejection: Rejection) -> Response {
        wire::Failure::from(rejection).into_response()
    }
}

/// The Siberian surface, mounted at `prefix`.
pub fn surface(state: &AppState, prefix: &str) -> MountedSurface {
    let base = prefix.trim_end_matches('/');
    let at = |call: &str| format!("{base}/{call}");
    let api = Router::new()
        .route(&at("create"), post(api::create))
        .route(&at("update"), post(api::update))
        .route(&at("exist"), post(api::exist))
        .route(&at("authenticate"), post(api::authenticate))
        .route(&at("forgotpassword"), post(api::forgot_password))
        .layer(from_fn_with_state(state.clone(), tenant_for_api));
    let browser = Router::new()
        .route(&at("autologin"), get(autologin::autologin))
        .layer(from_fn_with_state(state.clone(), tenant_for_browser));
    let m = Mount { name: "siberian", prefixes: vec![prefix.to_owned()], tenants: false, csrf: false };
    mount::<Siberian>(m, api.merge(browser), state)
}

/// The request's tenant, put where [`CurrentTenant`] finds it; an unknown or disabled tenant
/// is [`CoreError::NotFound`].
async fn resolve_tenant(st: &AppState, mut req: Request) -> Result<Request, CoreError> {
    if let Some(id) = tenant::resolve(&st.core, tenant::name_of(&req)).await? {
        req.extensions_mut().insert(CurrentTenant(id));
    }
    Ok(req)
}

async fn tenant_for_api(State(st): State<AppState>, req: Request, next: Next) -> Response {
    match resolve_tenant(&st, req).await {
        Ok(req) => next.run(req).await,
        // An unknown tenant answers like a wrong key.
        Err(e) => wire::Failure::from(e).into_response(),
    }
}

async fn tenant_for_browser(State(st): State<AppState>, req: Request, next: Next) -> Response {
    match resolve_tenant(&st, req).await {
        Ok(req) => next.run(req).await,
        Err(e) => autologin::trouble(e),
    }
}
