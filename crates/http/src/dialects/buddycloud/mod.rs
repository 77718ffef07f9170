//! The buddycloud dialect: the accounts part of the buddycloud HTTP API, on the wire.
//!
//! | route | handler | core operation |
//! |---|---|---|
//! | `GET {prefix}/` | [`handlers::check`] | `prove_password` |
//! | `POST {prefix}/account` | [`handlers::create`] | `signup` |
//! | `DELETE {prefix}/account` | [`handlers::delete`] | `delete_account_proven` |
//! | `POST {prefix}/account/pw/change` | [`handlers::change_password`] | `change_password_proven` |
//! | `POST {prefix}/account/pw/reset` | [`handlers::reset_password`] | `request_password_reset` |
//!
//! `{prefix}` is `http.dialect_paths.buddycloud` (`/api`, the original's reverse-proxy path;
//! `/` serves the API at the root). Accounts are `user@domain`, the domain naming the tenant
//! ([`identity`]); credentials come as HTTP Basic with every call, and no session is opened.
//! Every answer — success, failure, and the shared layer's rejections — is plain text
//! ([`reply`]); browser clients of allowed origins get CORS headers ([`cors`]).
//!
//! Nothing here decides a rule: limits, enumeration resistance, the second factor, policy and
//! audit come from the core. The documentation for operators and client developers is
//! `docs/dialects/buddycloud.md`.

pub mod cors;
pub mod handlers;
pub mod identity;
pub mod reply;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use self::reply::Reply;
use crate::shared::{AppState, Mount, MountedSurface, Rejection, Surface, mount};

/// The buddycloud wire format.
#[derive(Debug)]
pub struct Buddycloud;

impl Surface for Buddycloud {
    fn reject(rejection: Rejection) -> Response {
        match rejection {
            Rejection::NotFound | Rejection::TenantNotFound => Reply::not_found(),
            Rejection::MethodNotAllowed => Reply::status(StatusCode::METHOD_NOT_ALLOWED),
            Rejection::CrossSite => Reply::status(StatusCode::FORBIDDEN),
            Rejection::Panic => Reply::status(StatusCode::INTERNAL_SERVER_ERROR),
            Rejection::Core(e) => Reply::from(e),
        }
        .into_response()
    }
}

/// The routes, at `prefix`.
pub fn routes(state: &AppState, prefix: &str) -> Router<AppState> {
    // Routes are matched on the whole path: `/api/account`, or `/account` at the root.
    let base = prefix.trim_end_matches('/');
    let root = get(handlers::check).options(|| async { cors::options("GET, HEAD, OPTIONS") });
    let mut router = Router::new().route(&format!("{base}/"), root.clone());
    if !base.is_empty() {
        router = router.route(base, root);
    }
    router
        .route(
            &format!("{base}/account"),
            post(handlers::create)
                .delete(handlers::delete)
                .options(|| async { cors::options("POST, DELETE, OPTIONS") }),
        )
        .route(
            &format!("{base}/account/pw/change"),
            post(handlers::change_password).options(|| async { cors::options("POST, OPTIONS") }),
        )
        .route(
            &format!("{base}/account/pw/reset"),
            post(handlers::reset_password).options(|| async { cors::options("POST, OPTIONS") }),
        )
        .layer(axum::middleware::from_fn_with_state(state.clone(), cors::layer))
}

/// The buddycloud surface, mounted at `prefix`.
pub fn surface(state: &AppState, prefix: &str) -> MountedSurface {
    // No cookie is read; the cross-site check that cached Basic credentials need, with its
    // exception for the tenant's listed origins, is the dialect's own (`cors::layer`).
    let m = Mount { name: "buddycloud", prefixes: vec![prefix.to_owned()], tenants: true, csrf: false };
    mount::<Buddycloud>(m, routes(state, prefix), state)
}
