//! The Buddycloud dialect (being written; see issue 9). Mounted, it answers every request with a
//! plain 404 until its routes land.

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::shared::{AppState, Mount, MountedSurface, Rejection, Surface, mount};

/// The Buddycloud wire format.
#[derive(Debug)]
pub struct Buddycloud;

impl Surface for Buddycloud {
    fn reject(_: Rejection) -> Response {
        StatusCode::NOT_FOUND.into_response()
    }
}

/// The Buddycloud surface, mounted at `prefix`.
pub fn surface(state: &AppState, prefix: &str) -> MountedSurface {
    let m = Mount { name: "buddycloud", prefixes: vec![prefix.to_owned()], tenants: true, csrf: false };
    mount::<Buddycloud>(m, Router::new(), state)
}
