//! Newspark's error answers, and the one place where a [`CoreError`], a parameter problem or a
//! rejection of the shared layer becomes one. A call that reached the credential check and
//! found the credentials wrong is *not* an error here (it is the normal answer `false`, see
//! `wire.rs`); what lands here is everything that stops a call from being answered: a missing
//! or malformed parameter, a bad API key, an unknown vhost, a wrong path or method, load.
//!
//! Two renderings of one shape, chosen by the route the call came to:
//!
//! - JSON (`/json`): `{"status": false, "error": {"code": "...", "message": "..."}}`, the
//!   negative twin of the success envelope `{"status": true, "result": ...}`;
//! - XML (`/rest/...`): `<error><code>...</code><message>...</message></error>`.
//!
//! Codes are stable upper-case words; messages are fixed texts that never echo a value the
//! caller sent. Internal causes are logged here, once, with their cause chain.

use std::borrow::Cow;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::error::error_chain;
use portcullis_core::{CoreError, Field};
use serde_json::json;

use crate::shared::params::ParamsError;
use crate::shared::xml;
use crate::shared::{Rejection, Surface};

/// What a client is told to wait when the database is unavailable.
const UNAVAILABLE_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The media type of the XML answers.
pub(super) const XML_TYPE: &str = "application/xml; charset=utf-8";

/// Which of Newspark's two renderings a call gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Format {
    /// `/rest/...`: an XML document.
    Xml,
    /// `/json`: a JSON envelope.
    Json,
}

/// An error answer of the Newspark dialect.
#[derive(Debug)]
pub(super) struct NewsparkError {
    status: StatusCode,
    code: &'static str,
    message: Cow<'static, str>,
    retry_after: Option<Duration>,
}

impl NewsparkError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self { status, code, message: message.into(), retry_after: None }
    }

    fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// A required parameter is absent or empty.
    pub(super) fn missing(name: &'static str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "MISSING_PARAMETER", format!("The parameter {name} is required."))
    }

    /// A parameter has a value this call cannot take (`why` is a fixed text, never the value).
    pub(super) fn invalid(why: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_PARAMETER", why)
    }

    /// `/json` was called with a `method` other than `users.confirmCredentials`.
    pub(super) fn unknown_method() -> Self {
        Self::new(StatusCode::BAD_REQUEST, "UNKNOWN_METHOD", "The only method served here is users.confirmCredentials.")
    }

    /// The API key is unknown, revoked, expired or of another vhost; or the vhost does not
    /// exist, is disabled or does not answer Newspark. One answer for every cause, so that
    /// nobody learns which vhosts exist.
    pub(super) fn invalid_api_key() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "INVALID_APIKEY", "The API key is not valid for this vhost.")
    }

    /// No route here.
    pub(super) fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", "There is no such service here.")
    }

    /// The route exists, not with this HTTP method.
    pub(super) fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", "Call this service with GET or POST.")
    }

    fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", "Something went wrong on our side.")
    }

    /// The answer, in `format`.
    pub(super) fn render(self, format: Format) -> Response {
        let mut res = match format {
            Format::Json => {
                let body = json!({"status": false, "error": {"code": self.code, "message": self.message}});
                (self.status, axum::Json(body)).into_response()
            }
            Format::Xml => {
                let doc = xml::document("error", &json!({"code": self.code, "message": self.message}));
                (self.status, [(header::CONTENT_TYPE, XML_TYPE)], doc).into_response()
            }
        };
        let headers = res.headers_mut();
        if let Some(after) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&after.as_secs().max(1).to_string())
        {
            headers.insert(header::RETRY_AFTER, v);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            // The key may also come as a bearer token (see the module of the routes).
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"portcullis\""));
        }
        res
    }
}

impl From<ParamsError> for NewsparkError {
    fn from(e: ParamsError) -> Self {
        match e {
            ParamsError::TooLarge => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "REQUEST_TOO_LARGE", "The request body is too large.")
            }
            ParamsError::Unreadable => {
                Self::new(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "The request body could not be read.")
            }
            ParamsError::UnsupportedMediaType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "Send the parameters in the query string or as a form (application/x-www-form-urlencoded or multipart/form-data).",
            ),
            ParamsError::Malformed(why) => Self::invalid(format!("The parameters do not parse: {why}.")),
        }
    }
}

/// The Newspark name of a field the core reports a problem with.
fn param_name(f: &Field) -> String {
    match f {
        Field::Login | Field::Username | Field::Email | Field::Phone => "username".into(),
        Field::Password => "password".into(),
        other => other.name(),
    }
}

impl From<CoreError> for NewsparkError {
    fn from(e: CoreError) -> Self {
        use StatusCode as S;
        match e {
            CoreError::Validation(fields) => {
                let names: Vec<String> = fields.iter().map(|(f, _)| param_name(f)).collect();
                Self::invalid(format!("These parameters are invalid: {}.", names.join(", ")))
            }
            CoreError::NotEditable(fields) => {
                let names: Vec<String> = fields.iter().map(param_name).collect();
                Self::invalid(format!("These parameters cannot be set here: {}.", names.join(", ")))
            }
            CoreError::Conflict(f) => {
                Self::new(S::CONFLICT, "CONFLICT", format!("That {} is already taken.", f.as_str()))
            }
            // A credential check answers these as `false` (or its reason code); they only
            // arrive here from a path that has no such answer.
            CoreError::InvalidCredentials => {
                Self::new(S::UNAUTHORIZED, "INVALID_CREDENTIALS", "The username or password is incorrect.")
            }
            CoreError::AccountDisabled => Self::new(S::FORBIDDEN, "ACCOUNT_DISABLED", "This account is disabled."),
            CoreError::EmailNotVerified => {
                Self::new(S::FORBIDDEN, "EMAIL_NOT_VERIFIED", "The e-mail address of this account must be verified.")
            }
            CoreError::SecondFactorRequired => {
                Self::new(S::UNAUTHORIZED, "MFA_REQUIRED", "This account needs its second-factor code (mfatoken).")
            }
            CoreError::SecondFactorInvalid => {
                Self::new(S::UNAUTHORIZED, "MFA_INVALID", "The second-factor code is wrong or was used already.")
            }
            CoreError::InvalidToken => Self::new(S::BAD_REQUEST, "INVALID_TOKEN", "The token is invalid or expired."),
            CoreError::PasswordIncorrect => {
                Self::new(S::FORBIDDEN, "PASSWORD_INCORRECT", "The current password is incorrect.")
            }
            CoreError::Unauthenticated | CoreError::NotFound => Self::invalid_api_key(),
            CoreError::Forbidden(_) => Self::new(
                S::FORBIDDEN,
                "FORBIDDEN",
                "This API key may not confirm credentials (it needs the credentials:verify scope).",
            ),
            CoreError::SignupClosed => Self::new(S::FORBIDDEN, "SIGNUP_CLOSED", "Sign-up is closed."),
            CoreError::RateLimited { retry_after } => {
                Self::new(S::TOO_MANY_REQUESTS, "RATE_LIMITED", "Too many attempts; try again later.")
                    .retry_after(retry_after)
            }
            CoreError::Overloaded { retry_after } => {
                Self::new(S::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE", "The server is busy; try again shortly.")
                    .retry_after(retry_after)
            }
            CoreError::Unavailable(cause) => {
                tracing::error!(error = %error_chain(&cause), "storage unavailable");
                Self::new(S::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE", "The service is temporarily unavailable.")
                    .retry_after(UNAVAILABLE_RETRY_AFTER)
            }
            CoreError::Internal(cause) => {
                tracing::error!(error = %error_chain(cause.as_ref()), "internal error");
                Self::internal()
            }
        }
    }
}

/// The Newspark wire format, for the failures the shared layer finds before a handler runs.
/// Those carry no route, so they are answered in XML, the format of the REST paths the
/// document leads with; the routes answer their own wrong paths and methods in their own
/// format (see the module of the routes).
#[derive(Debug)]
pub struct Newspark;

impl Surface for Newspark {
    fn reject(rejection: Rejection) -> Response {
        let e = match rejection {
            // The surface resolves no tenant from the path or Host (the tenant of a call is its
            // `vhost`), so a tenant rejection cannot arrive; were it to, the path does not exist.
            Rejection::NotFound | Rejection::TenantNotFound => NewsparkError::not_found(),
            Rejection::MethodNotAllowed => NewsparkError::method_not_allowed(),
            // The surface reads no cookie, so the cross-site check is not mounted; should it
            // ever be, a refusal is a refusal.
            Rejection::CrossSite => {
                NewsparkError::new(StatusCode::FORBIDDEN, "FORBIDDEN", "Cross-site requests are refused.")
            }
            Rejection::Panic => NewsparkError::internal(),
            Rejection::Core(e) => NewsparkError::from(e),
        };
        e.render(Format::Xml)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_both_renderings() {
        let xml = NewsparkError::missing("vhost").render(Format::Xml);
        assert_eq!(xml.status(), StatusCode::BAD_REQUEST);
        assert_eq!(xml.headers()[header::CONTENT_TYPE], XML_TYPE);
        let json = NewsparkError::invalid_api_key().render(Format::Json);
        assert_eq!(json.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(json.headers()[header::CONTENT_TYPE], "application/json");
        assert!(json.headers().contains_key(header::WWW_AUTHENTICATE));
        let busy = NewsparkError::from(CoreError::Overloaded { retry_after: Duration::from_millis(10) });
        assert_eq!(busy.render(Format::Json).headers()[header::RETRY_AFTER], "1");
    }

    #[test]
    fn a_missing_vhost_and_a_bad_key_tell_the_same() {
        let a = NewsparkError::from(CoreError::NotFound);
        let b = NewsparkError::from(CoreError::Unauthenticated);
        assert_eq!((a.status, a.code, &a.message), (b.status, b.code, &b.message));
    }
}
