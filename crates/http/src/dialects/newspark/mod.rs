//! The Newspark dialect: `users.confirmCredentials` of the Newspark (formerly Filemobile)
//! platform API, on its two paths under `http.dialect_paths.newspark` (`/services`):
//!
//! - `{prefix}/rest/users/confirmCredentials`, answering XML;
//! - `{prefix}/json?method=users.confirmCredentials`, answering JSON.
//!
//! A server holding an API key of a vhost (a tenant, named by its integer id in `vhost`)
//! checks a user's username (or e-mail, or phone) and password, and gets the user id, the
//! user struct, optionally a session, or `false`. Parameters come by GET (query string) or by
//! POST (a url-encoded or multipart form, merged over the query string).
//!
//! The handlers parse (`wire.rs`), authenticate the key as the vhost's, call
//! [`portcullis_core::Core::verify_credentials`] — which holds every rule: scopes, limits,
//! enumeration resistance, the second factor, audit — and answer (`wire.rs`, `error.rs`).
//! Wrong paths and methods under each route answer in that route's format; the shared
//! layer's other rejections in XML (see [`Newspark`]).

mod error;
mod wire;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::{any, get};
use portcullis_core::{Caller, Dialect, TenantId};

pub use self::error::Newspark;
use self::error::{Format, NewsparkError};
use self::wire::{Answer, Call};
use crate::shared::credentials::{Authorization, authorization};
use crate::shared::params::{self, BodyFormats};
use crate::shared::{AppState, Client, Mount, MountedSurface, mount, tenant};

/// The Newspark surface, mounted at `prefix`.
pub fn surface(state: &AppState, prefix: &str) -> MountedSurface {
    let m = Mount { name: "newspark", prefixes: vec![prefix.to_owned()], tenants: false, csrf: false };
    mount::<Newspark>(m, routes(prefix), state)
}

/// The routes, on full paths under `prefix` (`/` is allowed: no `//`).
fn routes(prefix: &str) -> Router<AppState> {
    let base = prefix.trim_end_matches('/');
    let rest = Router::new()
        .route("/users/confirmCredentials", get(rest_confirm_credentials).post(rest_confirm_credentials))
        .fallback(|| async { NewsparkError::not_found().render(Format::Xml) })
        .method_not_allowed_fallback(|| async { NewsparkError::method_not_allowed().render(Format::Xml) });
    Router::new()
        .nest(&format!("{base}/rest"), rest)
        .route(
            &format!("{base}/json"),
            get(json_confirm_credentials)
                .post(json_confirm_credentials)
                .fallback(|| async { NewsparkError::method_not_allowed().render(Format::Json) }),
        )
        .route(&format!("{base}/json/{{*rest}}"), any(|| async { NewsparkError::not_found().render(Format::Json) }))
}

/// `GET|POST {prefix}/rest/users/confirmCredentials`: the XML answer.
async fn rest_confirm_credentials(State(st): State<AppState>, client: Client, req: Request) -> Response {
    match confirm_credentials(&st, client, Format::Xml, req).await {
        Ok(answer) => answer.render(Format::Xml),
        Err(e) => e.render(Format::Xml),
    }
}

/// `GET|POST {prefix}/json?method=users.confirmCredentials`: the JSON answer.
async fn json_confirm_credentials(State(st): State<AppState>, client: Client, req: Request) -> Response {
    match confirm_credentials(&st, client, Format::Json, req).await {
        Ok(answer) => answer.render(Format::Json),
        Err(e) => e.render(Format::Json),
    }
}

/// `users.confirmCredentials`: parse, authenticate the key as the vhost's, check the
/// credentials.
async fn confirm_credentials(
    st: &AppState,
    client: Client,
    format: Format,
    req: Request,
) -> Result<Answer, NewsparkError> {
    let bearer = match authorization(req.headers()) {
        Authorization::Bearer(k) => Some(k),
        _ => None,
    };
    let params = params::read(req, BodyFormats::FORMS).await?;
    if format == Format::Json {
        wire::check_method(&params)?;
    }
    let call = Call::parse(&params, bearer)?;
    let (vhost, caller) = calling_server(st, &call, client).await?;
    let outcome = st.core.verify_credentials(&caller, vhost, call.command).await;
    Answer::from_outcome(outcome, call.options)
}

/// The vhost of a call, answering Newspark, and the server calling with its key. An unknown
/// or disabled vhost, one that has not switched Newspark on, and a key that is not the vhost's
/// all end in the one answer `INVALID_APIKEY` (see `error.rs`).
async fn calling_server(st: &AppState, call: &Call, client: Client) -> Result<(TenantId, Caller), NewsparkError> {
    let vhost = tenant::by_id(&st.core, call.vhost).await?;
    st.core.dialect_policy(vhost, Dialect::Newspark).await?;
    let caller = st.core.authenticate_key(&call.api_key, vhost, client.info).await?;
    Ok((vhost, caller))
}
