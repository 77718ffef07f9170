//! The hosted pages (`/ui`, and per tenant `/t/{slug}/ui` or on the tenant's domains): the
//! steps a person takes in a browser — log-in (with the second-factor step), sign-up,
//! log-out, a forgotten password, the landings of the links we mail, and their account.
//!
//! Server-rendered HTML that works without script, from templates compiled into the binary.
//! Every page carries a Content-Security-Policy without `unsafe-inline` (styles are files,
//! the tenant's colour a stylesheet of its own), `frame-ancestors 'none'`, and
//! `Referrer-Policy: no-referrer`. Forms are protected twice against cross-site posting: the
//! shared layer's origin check, and a token in each form that must match a cookie. Links from
//! mail carry their token in the URL only for a moment: the landing moves it into a
//! short-lived cookie and redirects to the same page without it, and spends it only when the
//! person clicks (mail scanners follow links, they do not press buttons).
//!
//! Every failure on these paths — a missing page, a refused cross-site post, a panic — is
//! answered with an HTML page ([`Pages`]).

mod account;
mod auth;
mod render;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::shared::{AppState, Rejection, Surface};

pub use self::render::{SECURITY_HEADERS, error_page};

/// The path prefix the pages own.
pub const PREFIX: &str = "/ui";

/// The pages' wire format: HTML.
#[derive(Debug)]
pub struct Pages;

impl Surface for Pages {
    fn reject(rejection: Rejection) -> Response {
        let (status, title, text) = match rejection {
            Rejection::NotFound | Rejection::TenantNotFound => {
                (StatusCode::NOT_FOUND, "Page not found", "There is no page at this address.")
            }
            Rejection::MethodNotAllowed => {
                (StatusCode::METHOD_NOT_ALLOWED, "Not allowed", "This page cannot be used that way.")
            }
            Rejection::CrossSite => (
                StatusCode::FORBIDDEN,
                "Request refused",
                "This form was sent from another site. Go back to the page, reload it and try again.",
            ),
            Rejection::Panic => {
                (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "Something went wrong on our side.")
            }
            Rejection::Core(e) => {
                tracing::warn!(error = %portcullis_core::error::error_chain(&e), "a page could not be served");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Try again shortly",
                    "The service is busy or cannot reach its database. Try again in a moment.",
                )
            }
        };
        error_page(status, title, text)
    }
}

/// The routes of the pages, relative to `/ui`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui/assets/style.css", get(style))
        .route("/ui/assets/tenant.css", get(render::tenant_css))
        .merge(auth::routes())
        .merge(account::routes())
}

async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], include_str!("assets/style.css")).into_response()
}
