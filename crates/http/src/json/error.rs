//! The one error shape of the JSON API (the native API, the admin API and the operational
//! endpoints), `{"error": {"code", "message", "fields"}}`, and the one place where core errors
//! become its HTTP statuses. Internal causes are logged here, once, with their cause chain;
//! clients only ever see the code and a fixed message. [`JsonApi`] answers the shared layer's
//! rejections (missing route, wrong method, unknown tenant, cross-site request, panic) in
//! the same shape.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::{CoreError, Field};

use portcullis_core::error::error_chain;

use crate::shared::{Rejection, Surface};
use serde::Serialize;

/// What a client is told to wait when the database is unavailable.
const UNAVAILABLE_RETRY_AFTER: Duration = Duration::from_secs(1);

/// An error answer of the native API.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    fields: BTreeMap<String, String>,
    retry_after: Option<Duration>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
/// Every error of the native API has this shape.
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct ErrorDetail {
    /// Stable, machine-readable code, e.g. `validation_failed`.
    code: &'static str,
    /// Human-readable explanation.
    message: String,
    /// Problems by field name, when the error is about fields.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    fields: BTreeMap<String, String>,
}

impl ApiError {
    /// An error with a status, a code and a message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), fields: BTreeMap::new(), retry_after: None }
    }

    /// Adds a problem with one field.
    pub fn with_field(mut self, field: impl Into<String>, message: impl Into<String>) -> Self {
        self.fields.insert(field.into(), message.into());
        self
    }

    /// The request body is not valid JSON (or not the JSON this endpoint takes).
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed_request", message)
    }

    /// No such route or resource.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Nothing here.")
    }

    /// Something went wrong on our side (the cause is logged, never shown).
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "Something went wrong on our side.")
    }

    /// The status of this error.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message recorded for a field, if any.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    /// The code of this error.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: ErrorDetail { code: self.code, message: self.message, fields: self.fields } };
        let mut res = (self.status, axum::Json(body)).into_response();
        let headers = res.headers_mut();
        if let Some(after) = self.retry_after {
            let secs = after.as_secs().max(1);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                headers.insert(header::RETRY_AFTER, v);
            }
        }
        if self.status == StatusCode::UNAUTHORIZED && self.code == "unauthenticated" {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"portcullis\""));
        }
        res
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        use StatusCode as S;
        match e {
            CoreError::Validation(fields) => {
                let mut err = Self::new(S::UNPROCESSABLE_ENTITY, "validation_failed", "Some fields are invalid.");
                for (k, v) in fields.iter() {
                    err = err.with_field(k.name(), v);
                }
                err
            }
            CoreError::NotEditable(fields) => {
                let mut err = Self::new(S::FORBIDDEN, "field_not_editable", "Some fields cannot be set here.");
                for f in fields {
                    let why = if f == Field::Password { "use POST /v1/me/password" } else { "may not be set here" };
                    err = err.with_field(f.name(), why);
                }
                err
            }
            CoreError::Conflict(f) => {
                Self::new(S::CONFLICT, "conflict", format!("That {} is already taken.", f.as_str().replace('_', " ")))
                    .with_field(f.as_str(), "is already taken")
            }
            CoreError::InvalidCredentials => {
                Self::new(S::UNAUTHORIZED, "invalid_credentials", "The login or password is incorrect.")
            }
            CoreError::AccountDisabled => Self::new(S::FORBIDDEN, "account_disabled", "This account is disabled."),
            CoreError::EmailNotVerified => Self::new(
                S::FORBIDDEN,
                "email_not_verified",
                "The e-mail address of this account must be verified first.",
            ),
            CoreError::InvalidToken => {
                Self::new(S::BAD_REQUEST, "invalid_token", "This link is invalid, used or expired; ask for a new one.")
            }
            CoreError::SecondFactorInvalid => {
                Self::new(S::UNAUTHORIZED, "second_factor_invalid", "The code is wrong or was used already.")
            }
            CoreError::SecondFactorRequired => Self::new(
                S::UNAUTHORIZED,
                "second_factor_required",
                "This account has a second factor: send its code with the password.",
            ),
            CoreError::PasswordIncorrect => {
                Self::new(S::FORBIDDEN, "password_incorrect", "The current password is incorrect.")
            }
            CoreError::Unauthenticated => Self::new(S::UNAUTHORIZED, "unauthenticated", "A valid session is required."),
            CoreError::Forbidden(why) => Self::new(S::FORBIDDEN, "forbidden", why),
            CoreError::NotFound => Self::not_found(),
            CoreError::SignupClosed => Self::new(S::FORBIDDEN, "signup_closed", "Sign-up is closed."),
            CoreError::RateLimited { retry_after } => Self {
                retry_after: Some(retry_after),
                ..Self::new(S::TOO_MANY_REQUESTS, "rate_limited", "Too many attempts; try again later.")
            },
            CoreError::Overloaded { retry_after } => Self {
                retry_after: Some(retry_after),
                ..Self::new(S::SERVICE_UNAVAILABLE, "overloaded", "The server is busy; try again shortly.")
            },
            CoreError::Unavailable(cause) => {
                tracing::error!(error = %error_chain(&cause), "storage unavailable");
                Self {
                    retry_after: Some(UNAVAILABLE_RETRY_AFTER),
                    ..Self::new(S::SERVICE_UNAVAILABLE, "unavailable", "The service is temporarily unavailable.")
                }
            }
            CoreError::Internal(cause) => {
                tracing::error!(error = %error_chain(cause.as_ref()), "internal error");
                Self::internal()
            }
        }
    }
}

/// The JSON API as a surface: the shared layer's rejections in the JSON error shape.
#[derive(Debug)]
pub struct JsonApi;

impl Surface for JsonApi {
    fn reject(rejection: Rejection) -> Response {
        match rejection {
            Rejection::NotFound | Rejection::TenantNotFound => ApiError::not_found(),
            Rejection::MethodNotAllowed => {
                ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "This method is not allowed here.")
            }
            Rejection::CrossSite => ApiError::new(
                StatusCode::FORBIDDEN,
                "cross_site_request",
                "Cross-site requests with the session cookie are refused.",
            ),
            Rejection::Panic => ApiError::internal(),
            Rejection::Core(e) => ApiError::from(e),
        }
        .into_response()
    }
}
