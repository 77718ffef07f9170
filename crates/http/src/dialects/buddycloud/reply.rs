//! The buddycloud answers, success and failure alike, and the one place where core errors and
//! unreadable bodies become them.
//!
//! The original server (Express) answered with a bare status: `res.send(200)` wrote `OK`,
//! `res.send(400)` wrote `Bad Request`, as `text/plain`. Its clients read the status and
//! nothing else. So does this dialect: every answer is `text/plain; charset=utf-8` whose body
//! is the status's reason phrase, followed — when there is something to say — by `: ` and a
//! short detail on the same line (`Bad Request: password: is required`). A 204 has no body.
//! Internal causes are logged here, once, with their cause chain, and never reach a client.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::error::error_chain;
use portcullis_core::{CoreError, Field, FieldErrors, UniqueField};

use crate::shared::params::ParamsError;

/// The `WWW-Authenticate` challenge of every 401. The realm is fixed, so that it can never
/// tell one account, domain or tenant from another.
pub const CHALLENGE: &str = "Basic realm=\"buddycloud\", charset=\"UTF-8\"";

/// What a client is told to wait when the database is unavailable.
const UNAVAILABLE_RETRY_AFTER: Duration = Duration::from_secs(1);

/// An answer of the buddycloud dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    status: StatusCode,
    detail: Option<String>,
    retry_after: Option<Duration>,
}

impl Reply {
    /// A bare status.
    pub fn status(status: StatusCode) -> Self {
        Self { status, detail: None, retry_after: None }
    }

    /// A status with a short explanation.
    pub fn detailed(status: StatusCode, detail: impl Into<String>) -> Self {
        Self { status, detail: Some(detail.into()), retry_after: None }
    }

    /// `200 OK`.
    pub fn ok() -> Self {
        Self::status(StatusCode::OK)
    }

    /// The success of a credential check: 200 or 204, as the tenant's policy says
    /// (`buddycloud_root_status`).
    pub fn checked(status: u16) -> Self {
        Self::status(if status == 204 { StatusCode::NO_CONTENT } else { StatusCode::OK })
    }

    /// `401 Unauthorized` with the Basic challenge: the one answer for every credential that
    /// does not prove an account here.
    pub fn unauthorized() -> Self {
        Self::status(StatusCode::UNAUTHORIZED)
    }

    /// `404 Not Found`.
    pub fn not_found() -> Self {
        Self::status(StatusCode::NOT_FOUND)
    }

    /// `400 Bad Request` with what is wrong.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::detailed(StatusCode::BAD_REQUEST, detail)
    }

    /// `400 Bad Request` naming fields: `name: problem; name: problem`.
    pub fn fields(problems: &[(&str, &str)]) -> Self {
        let mut v: Vec<String> = problems.iter().map(|(k, m)| format!("{k}: {m}")).collect();
        v.sort();
        Self::bad_request(v.join("; "))
    }

    /// The status.
    pub fn code(&self) -> StatusCode {
        self.status
    }

    /// The body as written.
    pub fn body(&self) -> String {
        if self.status == StatusCode::NO_CONTENT {
            return String::new();
        }
        let reason = self.status.canonical_reason().unwrap_or("Error");
        match &self.detail {
            Some(d) => format!("{reason}: {d}"),
            None => reason.to_owned(),
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut res = if self.status == StatusCode::NO_CONTENT {
            self.status.into_response()
        } else {
            let body = self.body();
            let mut res = (self.status, body).into_response();
            res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
            res
        };
        let headers = res.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(CHALLENGE));
        }
        if let Some(after) = self.retry_after {
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        res
    }
}

/// The buddycloud name of a field the core reports on: the document's parameter names, the
/// canonical name for anything else.
pub fn field_name(f: &Field) -> String {
    match f {
        Field::Login | Field::Username => "username".into(),
        Field::Email => "email".into(),
        Field::Password
        | Field::PasswordConfirmation
        | Field::NewPassword
        | Field::NewPasswordConfirmation
        | Field::CurrentPassword => "password".into(),
        other => other.name(),
    }
}

fn describe(errors: &FieldErrors) -> Reply {
    let mut seen: Vec<(String, &str)> = Vec::new();
    for (f, m) in errors.iter() {
        let name = field_name(f);
        if !seen.iter().any(|(n, _)| *n == name) {
            seen.push((name, m));
        }
    }
    let pairs: Vec<(&str, &str)> = seen.iter().map(|(n, m)| (n.as_str(), *m)).collect();
    Reply::fields(&pairs)
}

impl From<CoreError> for Reply {
    fn from(e: CoreError) -> Self {
        use StatusCode as S;
        match e {
            CoreError::Validation(fields) => describe(&fields),
            CoreError::NotEditable(fields) => {
                let names: Vec<String> = fields.iter().map(field_name).collect();
                let pairs: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "may not be set here")).collect();
                Reply::fields(&pairs)
            }
            CoreError::Conflict(f) => {
                let name = match f {
                    UniqueField::Username => "username",
                    other => other.as_str(),
                };
                Reply::detailed(S::CONFLICT, format!("{name}: is already taken"))
            }
            // One answer for an unknown account, a wrong password, an account without a
            // password, and a log-in that lost a race with a change of password.
            CoreError::InvalidCredentials | CoreError::Unauthenticated | CoreError::PasswordIncorrect => {
                Reply::unauthorized()
            }
            // Only ever after the password was proven right: saying so tells nothing to
            // someone who does not know it.
            CoreError::SecondFactorRequired => Reply::detailed(
                S::UNAUTHORIZED,
                "this account has a second factor, which HTTP Basic cannot carry; log in through the native API or the pages",
            ),
            CoreError::SecondFactorInvalid => Reply::detailed(S::UNAUTHORIZED, "the second-factor code is wrong"),
            CoreError::AccountDisabled => Reply::detailed(S::FORBIDDEN, "this account is disabled"),
            CoreError::EmailNotVerified => {
                Reply::detailed(S::FORBIDDEN, "this account's e-mail address must be verified first")
            }
            CoreError::SignupClosed => Reply::detailed(S::FORBIDDEN, "sign-up is closed"),
            CoreError::Forbidden(why) => Reply::detailed(S::FORBIDDEN, why),
            CoreError::InvalidToken => Reply::bad_request("the link is invalid, used or expired"),
            CoreError::NotFound => Reply::not_found(),
            CoreError::RateLimited { retry_after } => {
                Self { retry_after: Some(retry_after), ..Reply::detailed(S::TOO_MANY_REQUESTS, "try again later") }
            }
            CoreError::Overloaded { retry_after } => Self {
                retry_after: Some(retry_after),
                ..Reply::detailed(S::SERVICE_UNAVAILABLE, "the server is busy; try again shortly")
            },
            CoreError::Unavailable(cause) => {
                tracing::error!(error = %error_chain(&cause), "storage unavailable");
                Self {
                    retry_after: Some(UNAVAILABLE_RETRY_AFTER),
                    ..Reply::detailed(S::SERVICE_UNAVAILABLE, "the service is temporarily unavailable")
                }
            }
            CoreError::Internal(cause) => {
                tracing::error!(error = %error_chain(cause.as_ref()), "internal error");
                Reply::status(S::INTERNAL_SERVER_ERROR)
            }
        }
    }
}

impl From<ParamsError> for Reply {
    fn from(e: ParamsError) -> Self {
        match e {
            ParamsError::TooLarge => Reply::status(StatusCode::PAYLOAD_TOO_LARGE),
            ParamsError::Unreadable => Reply::bad_request("the body could not be read"),
            ParamsError::UnsupportedMediaType(_) => {
                Reply::detailed(StatusCode::UNSUPPORTED_MEDIA_TYPE, "send a JSON object")
            }
            ParamsError::Malformed(why) => Reply::bad_request(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_the_reason_phrase_and_a_detail() {
        assert_eq!(Reply::ok().body(), "OK");
        assert_eq!(Reply::checked(204).body(), "");
        assert_eq!(Reply::checked(200).code(), StatusCode::OK);
        assert_eq!(Reply::unauthorized().body(), "Unauthorized");
        assert_eq!(
            Reply::fields(&[("password", "is required"), ("email", "is required")]).body(),
            "Bad Request: email: is required; password: is required"
        );
    }

    #[test]
    fn core_errors_use_the_documents_names() {
        let mut f = FieldErrors::new();
        f.add(Field::NewPassword, "must be at least 8 characters");
        f.add(Field::Username, "must be at most 64 characters");
        let r = Reply::from(CoreError::Validation(f));
        assert_eq!(
            r.body(),
            "Bad Request: password: must be at least 8 characters; username: must be at most 64 characters"
        );
        assert_eq!(Reply::from(CoreError::Conflict(UniqueField::Username)).code(), StatusCode::CONFLICT);
        assert_eq!(Reply::from(CoreError::InvalidCredentials), Reply::unauthorized());
        let busy = Reply::from(CoreError::Overloaded { retry_after: Duration::from_millis(1500) }).into_response();
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy.headers()[header::RETRY_AFTER], "2");
        let denied = Reply::unauthorized().into_response();
        assert_eq!(denied.headers()[header::WWW_AUTHENTICATE], CHALLENGE);
    }
}
