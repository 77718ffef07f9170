//! The Siberian dialect (being written; see issue 9). Mounted, it answers every request with a
//! plain 404 until its routes land.

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::shared::{AppState, Mount, MountedSurface, Rejection, Surface, mount};

/// The Siberian wire format.
#[derive(Debug)]
pub struct Siberian;

impl Surface for Siberian {
    fn reject(_: Rejection) -> Response {
        StatusCode::NOT_FOUND.into_response()
    }
}

/// The Siberian surface, mounted at `prefix`.
pub fn surface(state: &AppState, prefix: &str) -> MountedSurface {
    let m = Mount { name: "siberian", prefixes: vec![prefix.to_owned()], tenants: true, csrf: false };
    mount::<Siberian>(m, Router::new(), state)
}
