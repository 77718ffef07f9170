//! The Metrixstream wire format: the answer tree (`status=ok`, and `item` → `user` → `id` as
//! the site API's other pages write it) as JSON by default or as XML when the client asks for
//! it, the failures with their statuses and stable codes, and the names this dialect gives to
//! the core's fields. The one place where a [`CoreError`] becomes a Metrixstream answer.
//!
//! The document gives its answers as a tree without naming an encoding; JSON is the default
//! (the design notes say so), XML the same tree under a `<response>` root.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::error::error_chain;
use portcullis_core::login::{IssuedSession, SecondFactorRequired};
use portcullis_core::model::User;
use portcullis_core::profile::TextField;
use portcullis_core::{CoreError, Field};
use serde_json::{Map, Value, json};

use crate::shared::params::ParamsError;
use crate::shared::xml;

/// What a client is told to wait when the database is unavailable.
const UNAVAILABLE_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The root element of an XML answer.
const XML_ROOT: &str = "response";

/// How an answer is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Format {
    /// `application/json` (the default).
    Json,
    /// `application/xml`, the same tree under `<response>`.
    Xml,
}

impl Format {
    /// The format a request asks for: its `format` parameter (`json` or `xml`, any case) when
    /// given, else the type its `Accept` header prefers most (XML only when that is
    /// `application/xml` or `text/xml`; a browser's default, which prefers HTML, gets JSON).
    pub(super) fn choose(headers: &HeaderMap, param: Option<&str>) -> Result<Self, Failure> {
        match param.map(str::trim) {
            Some(p) if p.eq_ignore_ascii_case("xml") => Ok(Self::Xml),
            Some(p) if p.eq_ignore_ascii_case("json") || p.is_empty() => Ok(Self::Json),
            Some(_) => Err(Failure::new(
                StatusCode::BAD_REQUEST,
                "invalid_format",
                "The format parameter must be json or xml.",
            )),
            None => Ok(Self::from_accept(headers)),
        }
    }

    /// The format a request's `Accept` header prefers (JSON unless XML ranks first).
    pub(super) fn from_accept(headers: &HeaderMap) -> Self {
        let mut best: Option<(f32, String)> = None;
        for value in headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()) {
            for range in value.split(',') {
                let mut parts = range.split(';');
                let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
                let q = parts
                    .filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
                    .find_map(|q| q.trim().parse::<f32>().ok())
                    .unwrap_or(1.0);
                // The first of equally preferred types wins.
                if !media.is_empty() && q > 0.0 && best.as_ref().is_none_or(|(b, _)| q > *b) {
                    best = Some((q, media));
                }
            }
        }
        match best {
            Some((_, m)) if m == "application/xml" || m == "text/xml" => Self::Xml,
            _ => Self::Json,
        }
    }

    /// The tree as a response in this format.
    pub(super) fn render(self, status: StatusCode, tree: Value) -> Response {
        match self {
            Self::Json => (status, axum::Json(tree)).into_response(),
            Self::Xml => {
                let ct = HeaderValue::from_static("application/xml; charset=utf-8");
                (status, [(header::CONTENT_TYPE, ct)], xml::document(XML_ROOT, &tree)).into_response()
            }
        }
    }
}

/// `{"status": "ok"}` with more members, in order.
pub(super) fn ok(members: Vec<(&'static str, Value)>) -> Value {
    let mut tree = Map::new();
    tree.insert("status".into(), Value::from("ok"));
    for (k, v) in members {
        tree.insert(k.into(), v);
    }
    Value::Object(tree)
}

/// The user as the site API's pages write one: `item` → `user` → `id`, with the username and
/// e-mail address (`null` where the account has none).
pub(super) fn item(user: &User) -> Value {
    json!({"user": {"id": user.id.0, "username": user.username, "email": user.email}})
}

/// A session just opened: its token (also set as the session cookie) and its expiry.
pub(super) fn session(s: &IssuedSession) -> Value {
    json!({"token": s.token.expose(), "expires_at": s.session.expires_at.to_rfc3339()})
}

/// A failed request, in the dialect's shape:
/// `{"status": "error", "code", "message", "fields"?, "second_factor"?}`.
#[derive(Debug)]
pub(super) struct Failure {
    status: StatusCode,
    code: &'static str,
    message: String,
    fields: BTreeMap<String, String>,
    retry_after: Option<Duration>,
    // Boxed: rare, and a failure travels in every `Result` of the dialect.
    second_factor: Option<Box<Value>>,
}

impl Failure {
    /// A failure with a status, a stable code and a message.
    pub(super) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), fields: BTreeMap::new(), retry_after: None, second_factor: None }
    }

    fn with_field(mut self, field: &Field, message: impl Into<String>) -> Self {
        self.fields.insert(wire_name(field), message.into());
        self
    }

    /// No such thing here: an unknown path, an unknown or disabled tenant, a tenant that has
    /// not switched this dialect on. One answer for all, so none tells the others apart.
    pub(super) fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Nothing here.")
    }

    /// A method other than GET and POST.
    pub(super) fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "Use GET or POST.")
    }

    /// A browser request from another site, riding on the session cookie.
    pub(super) fn cross_site() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "cross_site_request",
            "Cross-site requests with the session cookie are refused.",
        )
    }

    /// A bug; the cause went to the log.
    pub(super) fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "Something went wrong on our side.")
    }

    /// No `action` parameter.
    pub(super) fn missing_action() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "missing_action",
            "The action parameter is required: login, signup, logout or forgotpassword.",
        )
    }

    /// An `action` this API does not have.
    pub(super) fn unknown_action() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unknown_action",
            "Unknown action; the actions are login, signup, logout and forgotpassword.",
        )
    }

    /// The password was right and the account has a second factor: the code is asked for,
    /// with the step token that a follow-up may present instead of the password.
    pub(super) fn second_factor_required(step: Option<&SecondFactorRequired>) -> Self {
        let mut f = Self::new(
            StatusCode::UNAUTHORIZED,
            "second_factor_required",
            "The password is right; this account needs a second factor: send its code as the code parameter.",
        );
        f.second_factor = step
            .map(|s| Box::new(json!({"step_token": s.step_token.expose(), "expires_at": s.expires_at.to_rfc3339()})));
        f
    }

    /// The answer in `format`.
    pub(super) fn render(self, format: Format) -> Response {
        let mut tree = Map::new();
        tree.insert("status".into(), Value::from("error"));
        tree.insert("code".into(), Value::from(self.code));
        tree.insert("message".into(), Value::from(self.message));
        if !self.fields.is_empty() {
            let fields = self.fields.into_iter().map(|(k, v)| (k, Value::from(v))).collect();
            tree.insert("fields".into(), Value::Object(fields));
        }
        if let Some(s) = self.second_factor {
            tree.insert("second_factor".into(), *s);
        }
        let mut res = format.render(self.status, Value::Object(tree));
        let headers = res.headers_mut();
        if let Some(after) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&after.as_secs().max(1).to_string())
        {
            headers.insert(header::RETRY_AFTER, v);
        }
        if self.code == "not_logged_in" {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"portcullis\""));
        }
        res
    }
}

impl From<ParamsError> for Failure {
    fn from(e: ParamsError) -> Self {
        match e {
            ParamsError::TooLarge => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "The body is too large.")
            }
            ParamsError::Unreadable => {
                Self::new(StatusCode::BAD_REQUEST, "malformed_request", "The body could not be read.")
            }
            ParamsError::UnsupportedMediaType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send the parameters in the query string or as a form body \
                 (application/x-www-form-urlencoded or multipart/form-data).",
            ),
            ParamsError::Malformed(why) => {
                let mut m = why.to_owned();
                if let Some(first) = m.get_mut(..1) {
                    first.make_ascii_uppercase();
                }
                Self::new(StatusCode::BAD_REQUEST, "malformed_request", format!("{m}."))
            }
        }
    }
}

impl From<CoreError> for Failure {
    fn from(e: CoreError) -> Self {
        use StatusCode as S;
        match e {
            CoreError::Validation(fields) => {
                let mut f =
                    Self::new(S::UNPROCESSABLE_ENTITY, "validation_failed", "Some parameters are missing or invalid.");
                for (k, v) in fields.iter() {
                    f = f.with_field(k, v);
                }
                f
            }
            CoreError::NotEditable(fields) => {
                let mut f = Self::new(S::FORBIDDEN, "not_editable", "Some parameters cannot be set by users.");
                for k in &fields {
                    let why = match k {
                        Field::Attribute(_) => "is not a custom field users may set (it is not editable)",
                        _ => "may not be set here",
                    };
                    f = f.with_field(k, why);
                }
                f
            }
            CoreError::Conflict(u) => {
                let name = u.as_str();
                Self::new(S::CONFLICT, "taken", format!("That {name} is already claimed by another user."))
                    .with_field(&Field::Other(name.to_owned()), "is already taken")
            }
            CoreError::InvalidCredentials => {
                Self::new(S::UNAUTHORIZED, "invalid_credentials", "The username or password is incorrect.")
            }
            CoreError::AccountDisabled => Self::new(S::FORBIDDEN, "account_disabled", "This account is disabled."),
            CoreError::EmailNotVerified => Self::new(
                S::FORBIDDEN,
                "email_not_verified",
                "The e-mail address of this account must be verified first: follow the link sent to it.",
            ),
            CoreError::SecondFactorRequired => Self::second_factor_required(None),
            CoreError::SecondFactorInvalid => {
                Self::new(S::UNAUTHORIZED, "second_factor_invalid", "The code is wrong or was used already.")
            }
            CoreError::InvalidToken => Self::new(
                S::UNAUTHORIZED,
                "invalid_token",
                "The step token is invalid, used or expired: log in again with the password.",
            ),
            CoreError::PasswordIncorrect => {
                Self::new(S::FORBIDDEN, "password_incorrect", "The current password is incorrect.")
            }
            CoreError::Unauthenticated => {
                Self::new(S::UNAUTHORIZED, "not_logged_in", "No valid session: log in first.")
            }
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

/// Prefix of the parameters that name a custom attribute of users.
pub(super) const ATTRIBUTE_PREFIX: &str = "attr:user:";

/// The profile fields this dialect takes, by their Metrixstream names.
pub(super) const TEXT_FIELDS: [(&str, TextField); 17] = [
    ("fax", TextField::Fax),
    ("sex", TextField::Gender),
    ("description", TextField::Bio),
    ("display_name", TextField::DisplayName),
    ("display_status", TextField::DisplayStatus),
    ("billing_first_name", TextField::BillingFirstName),
    ("billing_last_name", TextField::BillingLastName),
    ("billing_company", TextField::BillingCompany),
    ("billing_address", TextField::BillingAddressLine1),
    ("billing_address2", TextField::BillingAddressLine2),
    ("billing_city", TextField::BillingCity),
    ("billing_state", TextField::BillingState),
    ("billing_zip", TextField::BillingPostalCode),
    ("billing_country", TextField::BillingCountry),
    ("billing_phone", TextField::BillingPhone),
    ("billing_fax", TextField::BillingFax),
    ("billing_email", TextField::BillingEmail),
];

/// The Metrixstream name of a field the core reports on.
pub(super) fn wire_name(f: &Field) -> String {
    match f {
        // Log-in and forgotten password take the identifier as `username`.
        Field::Login | Field::Username => "username".into(),
        Field::PasswordConfirmation => "password2".into(),
        Field::BirthDate => "dob".into(),
        Field::Attribute(name) => format!("{ATTRIBUTE_PREFIX}{name}"),
        Field::Text(t) => {
            TEXT_FIELDS.iter().find(|(_, u)| u == t).map_or_else(|| t.name().to_owned(), |(n, _)| (*n).to_owned())
        }
        other => other.name(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> Format {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, v.parse().unwrap());
        Format::from_accept(&h)
    }

    #[test]
    fn the_most_preferred_type_decides_and_json_is_the_default() {
        assert_eq!(Format::from_accept(&HeaderMap::new()), Format::Json);
        assert_eq!(accept("application/xml"), Format::Xml);
        assert_eq!(accept("text/xml"), Format::Xml);
        assert_eq!(accept("application/json, application/xml"), Format::Json);
        assert_eq!(accept("application/json;q=0.5, application/xml"), Format::Xml);
        assert_eq!(accept("application/xml;q=0, application/json"), Format::Json);
        assert_eq!(accept("*/*"), Format::Json);
        // A browser's default prefers HTML: JSON it is.
        assert_eq!(accept("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"), Format::Json);
        let none = HeaderMap::new();
        assert_eq!(Format::choose(&none, Some("XML")).unwrap(), Format::Xml);
        assert_eq!(Format::choose(&none, Some("json")).unwrap(), Format::Json);
        assert!(Format::choose(&none, Some("php")).is_err());
    }

    #[test]
    fn fields_carry_their_metrixstream_names() {
        assert_eq!(wire_name(&Field::Login), "username");
        assert_eq!(wire_name(&Field::PasswordConfirmation), "password2");
        assert_eq!(wire_name(&Field::BirthDate), "dob");
        assert_eq!(wire_name(&Field::Text(TextField::Gender)), "sex");
        assert_eq!(wire_name(&Field::Text(TextField::BillingPostalCode)), "billing_zip");
        assert_eq!(wire_name(&Field::Text(TextField::BillingAddressLine1)), "billing_address");
        assert_eq!(wire_name(&Field::Attribute("team".into())), "attr:user:team");
        assert_eq!(wire_name(&Field::Email), "email");
    }
}
