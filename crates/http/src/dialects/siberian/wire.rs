//! Siberian's wire format: its answers (`{"success": 1, ...}`) and its one error shape,
//! `{"error": 1, "message": "..."}` with HTTP 400 — for every failure, a caller that failed to
//! authenticate and a busy server included, because its clients handle 200 and 400 only. Every
//! [`CoreError`], every unreadable request and every failure of the shared layer is turned into
//! that shape here, in one place; internal causes are logged here and never shown.

use std::borrow::Cow;
use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::error::error_chain;
use portcullis_core::profile::TextField;
use portcullis_core::{CoreError, Field, FieldErrors, UniqueField};
use serde::Serialize;

use crate::shared::Rejection;
use crate::shared::params::ParamsError;

/// The answer to a caller whose API key is missing, unknown, revoked, of another tenant, or
/// presented to a tenant that has the dialect off (Siberian's own words for a failed API
/// log-in).
pub(super) const CALLER_REFUSED: &str = "Authentication failed. Please, check the username and/or the password";
/// The one answer of `authenticate` for every cause before the password is known to be right.
pub(super) const AUTHENTICATION_FAILED: &str = "Authentication failed.";
/// `email` missing (`create`, `exist`, `authenticate`).
pub(super) const EMAIL_REQUIRED: &str = "The email is required";
/// `email` missing (`forgotpassword`).
pub(super) const EMAIL_MISSING: &str = "Please enter your email address";
/// `password` missing (`authenticate`).
pub(super) const PASSWORD_REQUIRED: &str = "The password is required";
/// `user_id` missing (`update`).
pub(super) const USER_ID_REQUIRED: &str = "The user_id is required";
/// `user_id` names nobody in the tenant (`update`).
pub(super) const NO_SUCH_ADMIN: &str = "This admin does not exist";
/// `user_id` sent to `create`.
pub(super) const NOT_AN_UPDATE: &str = "Unable to update a user from here.";
/// An e-mail address taken by another account.
pub(super) const EMAIL_TAKEN: &str = "This email address is already used";
/// `role_id` is not a number.
pub(super) const ROLE_ID_NOT_A_NUMBER: &str = "The role_id must be an integer";
/// `role_id` names no role of the tenant.
pub(super) const NO_SUCH_ROLE: &str = "This role does not exist";
/// `client_ip` is not an address.
pub(super) const BAD_CLIENT_IP: &str = "The client_ip must be an IPv4 or IPv6 address.";

/// What a client is told to wait when the database is unavailable.
const UNAVAILABLE_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The answer of `create` and `authenticate`: the user and a one-time log-in token, with the
/// address that spends it in a browser.
#[derive(Debug, Serialize)]
pub(super) struct WithToken {
    /// Always 1.
    pub success: u8,
    /// The user's id.
    pub user_id: i64,
    /// The one-time log-in token (left out when the account may not log in yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// `{prefix}/autologin?email=...&token=...` at the tenant's public address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
}

/// The answer of `update`.
#[derive(Debug, Serialize)]
pub(super) struct Updated {
    /// Always 1.
    pub success: u8,
    /// The user's id.
    pub user_id: i64,
}

/// The answer of `exist`.
#[derive(Debug, Serialize)]
pub(super) struct Exists {
    /// Always 1.
    pub success: u8,
    /// Whether an account has the address (a JSON boolean).
    pub exists: bool,
}

/// The answer of `forgotpassword`.
#[derive(Debug, Serialize)]
pub(super) struct Done {
    /// Always 1.
    pub success: u8,
}

#[derive(Debug, Serialize)]
struct ErrorBody<'a> {
    error: u8,
    message: &'a str,
}

/// A failure, answered `{"error": 1, "message": ...}` with HTTP 400 (and `Retry-After` when
/// trying again later may work).
#[derive(Debug)]
pub(super) struct Failure {
    message: Cow<'static, str>,
    retry_after: Option<Duration>,
}

impl Failure {
    /// A failure with this message.
    pub fn new(message: impl Into<Cow<'static, str>>) -> Self {
        Self { message: message.into(), retry_after: None }
    }

    /// The caller did not authenticate (or the tenant does not answer this dialect).
    pub fn caller_refused() -> Self {
        Self::new(CALLER_REFUSED)
    }

    /// The message, for tests and logs.
    #[cfg(test)]
    pub fn message(&self) -> &str {
        &self.message
    }

    fn retry(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: 1, message: &self.message };
        let mut res = (StatusCode::BAD_REQUEST, Json(body)).into_response();
        if let Some(after) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&after.as_secs().max(1).to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        res
    }
}

impl From<CoreError> for Failure {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Validation(fields) => Self::new(describe(&fields)),
            CoreError::NotEditable(fields) => {
                let names: Vec<String> = fields.iter().map(wire_name).collect();
                Self::new(format!("These fields cannot be set here: {}.", names.join(", ")))
            }
            CoreError::Conflict(UniqueField::Email) => Self::new(EMAIL_TAKEN),
            CoreError::Conflict(f) => Self::new(format!("This {} is already used", f.as_str())),
            CoreError::InvalidCredentials => Self::new(AUTHENTICATION_FAILED),
            CoreError::AccountDisabled => Self::new("This account is disabled."),
            CoreError::EmailNotVerified => Self::new("The email address of this account must be verified first."),
            CoreError::SecondFactorRequired => {
                Self::new("This account has a second factor: send its current code as second_factor.")
            }
            CoreError::SecondFactorInvalid => Self::new("The second-factor code is wrong or was used already."),
            CoreError::InvalidToken => Self::new("This token is invalid, used or expired."),
            CoreError::PasswordIncorrect => Self::new("The current password is incorrect."),
            // A key that is unknown, revoked, expired or of another tenant; a tenant that went
            // away (or switched the dialect off) during the call.
            CoreError::Unauthenticated | CoreError::NotFound => Self::caller_refused(),
            CoreError::Forbidden(why) => Self::new(why),
            CoreError::SignupClosed => Self::new("Sign-up is closed."),
            CoreError::RateLimited { retry_after } => {
                Self::new("Too many attempts; try again later.").retry(retry_after)
            }
            CoreError::Overloaded { retry_after } => {
                Self::new("The server is busy; try again in a few seconds.").retry(retry_after)
            }
            CoreError::Unavailable(cause) => {
                tracing::error!(error = %error_chain(&cause), "storage unavailable");
                Self::new("The service is temporarily unavailable; try again shortly.").retry(UNAVAILABLE_RETRY_AFTER)
            }
            CoreError::Internal(cause) => {
                tracing::error!(error = %error_chain(cause.as_ref()), "internal error");
                Self::new("Something went wrong on our side.")
            }
        }
    }
}

impl From<ParamsError> for Failure {
    fn from(e: ParamsError) -> Self {
        match e {
            ParamsError::TooLarge => Self::new("The request body is too large."),
            ParamsError::Unreadable => Self::new("The request body could not be read."),
            ParamsError::UnsupportedMediaType(_) => Self::new(
                "Send the parameters as a form (application/x-www-form-urlencoded or multipart/form-data) or as a JSON object (application/json).",
            ),
            ParamsError::Malformed(what) => Self::new(format!("The request could not be read: {what}.")),
        }
    }
}

impl From<Rejection> for Failure {
    fn from(r: Rejection) -> Self {
        match r {
            Rejection::NotFound => Self::new("There is no such call."),
            Rejection::MethodNotAllowed => {
                Self::new("This method is not allowed here: the account calls take POST, autologin takes GET.")
            }
            Rejection::TenantNotFound => Self::caller_refused(),
            Rejection::CrossSite => Self::new("Cross-site requests riding on a cookie are refused."),
            Rejection::Panic => Self::new("Something went wrong on our side."),
            Rejection::Core(e) => Self::from(e),
        }
    }
}

/// A field's name on this wire.
fn wire_name(f: &Field) -> String {
    match f {
        Field::Text(TextField::FirstName) => "firstname".into(),
        Field::Text(TextField::LastName) => "lastname".into(),
        Field::Roles => "role_id".into(),
        // Siberian names its users by e-mail address only.
        Field::Login => "email".into(),
        other => other.name(),
    }
}

/// Every problem, one sentence each, in the order of the wire names: "The password must be
/// at least 8 characters."
fn describe(fields: &FieldErrors) -> String {
    let mut lines: Vec<(String, String)> = fields
        .iter()
        .map(|(f, m)| match f {
            Field::Roles => (wire_name(f), NO_SUCH_ROLE.to_owned()),
            _ => (wire_name(f), format!("The {} {m}.", wire_name(f))),
        })
        .collect();
    lines.sort();
    lines.dedup();
    let text: Vec<String> = lines.into_iter().map(|(_, l)| l).collect();
    text.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_read_as_sentences_in_siberian_names() {
        let mut f = FieldErrors::new();
        f.add(Field::Password, "must be at least 8 characters");
        f.add(Field::Text(TextField::FirstName), "must be at most 100 characters");
        assert_eq!(
            Failure::from(CoreError::Validation(f)).message(),
            "The firstname must be at most 100 characters. The password must be at least 8 characters."
        );
        assert_eq!(Failure::from(CoreError::Conflict(UniqueField::Email)).message(), EMAIL_TAKEN);
        assert_eq!(Failure::from(CoreError::Unauthenticated).message(), CALLER_REFUSED);
    }
}
