//! The Metrixstream dialect (being written; see issue 9). Mounted, it answers every request with a
//! plain 404 until its routes land.

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::shared::{AppState, Mount, MountedSurface, Rejection, Surface, mount};

/// The Metrixstream wire format.
#[derive(Debug)]
pub struct Metrixstream;

impl Surface for Metrixstream {
    fn reject(_: Rejection) -> Response {
        StatusCode::NOT_FOUND.into_response()
    }
}

/// The Metrixstream surface, mounted at `prefix`.
pub fn surface(state: &AppState, prefix: &str) -> MountedSurface {
    let m = Mount { name: "metrixstream", prefixes: vec![prefix.to_owned()], tenants: true, csrf: false };
    mount::<Metrixstream>(m, Router::new(), state)
}
