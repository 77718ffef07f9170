//! The OSSN dialect: Open Source Social Network's `user_authenticate` service
//! (`/api/v1.0/user_authenticate`, see `docs/dialects/ossn.md`).
//!
//! Every answer — success or failure, whatever went wrong — is HTTP 200 with OSSN's envelope:
//! `merchant`, `url`, `time_token`, `payload`, `code`, `message`. The caller is a server
//! holding an API key of the tenant (`api_key_token`, scope `credentials:verify`); the user's
//! credentials are checked by the core exactly as a native log-in's, so an unknown user and a
//! wrong password get the same answer after the same work, and "not validated" (104) is said
//! only once the password is known to be right.

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use portcullis_core::avatar::{AvatarSize, avatar_path};
use portcullis_core::login::{LoginOutcome, VerifyCredentials};
use portcullis_core::mail::tenant_base_url;
use portcullis_core::model::{Policy, Tenant, User};
use portcullis_core::{CoreError, Dialect, Password, TenantId, Token};
use serde_json::{Map, Value, json};

use crate::shared::params::{self, BodyFormats, Params, ParamsError};
use crate::shared::{AppState, Client, CurrentTenant, Mount, MountedSurface, Rejection, Surface, mount};

/// What happened, as OSSN's `code` says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Code {
    /// 100: the request was executed.
    Ok,
    /// 101: no such method here (an unknown path, a wrong HTTP method, a tenant that does not
    /// answer OSSN).
    InvalidMethod,
    /// 104: the password is right, and the e-mail address is not verified yet.
    NotValidated,
    /// 105: the username or password is wrong (one answer for both), or — said only once the
    /// password is known to be right — the account cannot log in this way.
    InvalidCredentials,
    /// 106: the API key is missing, wrong, or not allowed to check credentials here.
    InvalidKey,
    /// 107 (Portcullis): the request cannot be read (its body type, size or encoding).
    InvalidRequest,
    /// 110 (Portcullis): busy or too many attempts; retry after the `Retry-After` delay.
    Busy,
}

impl Code {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "100",
            Self::InvalidMethod => "101",
            Self::NotValidated => "104",
            Self::InvalidCredentials => "105",
            Self::InvalidKey => "106",
            Self::InvalidRequest => "107",
            Self::Busy => "110",
        }
    }
}

/// An OSSN answer before it gets its envelope.
#[derive(Debug)]
struct Answer {
    code: Code,
    message: String,
    payload: Value,
    retry_after: Option<Duration>,
}

impl Answer {
    fn error(code: Code, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), payload: Value::Null, retry_after: None }
    }

    fn from_core(e: CoreError) -> Self {
        match e {
            CoreError::InvalidCredentials => Self::error(Code::InvalidCredentials, "Invalid username and password"),
            // Only the Portcullis parameters can be invalid here (the credentials were checked
            // for presence first): say which.
            CoreError::Validation(f) => Self::error(Code::InvalidRequest, f.describe().join("; ")),
            CoreError::EmailNotVerified => Self::error(Code::NotValidated, "User not validated"),
            CoreError::AccountDisabled => Self::error(Code::InvalidCredentials, "This account is disabled"),
            CoreError::SecondFactorRequired => Self::error(
                Code::InvalidCredentials,
                "This account has a second factor: send its code as second_factor",
            ),
            CoreError::SecondFactorInvalid => {
                Self::error(Code::InvalidCredentials, "The second-factor code is wrong or was used already")
            }
            CoreError::Unauthenticated | CoreError::Forbidden(_) => Self::error(Code::InvalidKey, "Invalid API key"),
            CoreError::NotFound => Self::error(Code::InvalidMethod, "Invalid method"),
            CoreError::RateLimited { retry_after } => {
                Self { retry_after: Some(retry_after), ..Self::error(Code::Busy, "Too many attempts; try again later") }
            }
            CoreError::Overloaded { retry_after } => Self {
                retry_after: Some(retry_after),
                ..Self::error(Code::Busy, "The server is busy; try again shortly")
            },
            CoreError::Unavailable(cause) => {
                tracing::error!(error = %portcullis_core::error::error_chain(&cause), "storage unavailable");
                Self {
                    retry_after: Some(Duration::from_secs(5)),
                    ..Self::error(Code::Busy, "The service is temporarily unavailable")
                }
            }
            e @ (CoreError::NotEditable(_)
            | CoreError::Conflict(_)
            | CoreError::InvalidToken
            | CoreError::PasswordIncorrect
            | CoreError::SignupClosed
            | CoreError::Internal(_)) => {
                tracing::error!(error = %portcullis_core::error::error_chain(&e), "unexpected failure on the OSSN surface");
                Self { retry_after: Some(Duration::from_secs(5)), ..Self::error(Code::Busy, "Internal error") }
            }
        }
    }

    fn from_params(e: ParamsError) -> Self {
        let why = match e {
            ParamsError::TooLarge => "The request is too large".to_owned(),
            ParamsError::Unreadable => "The request could not be read".to_owned(),
            ParamsError::UnsupportedMediaType(t) => {
                format!("Parameters go in the query string or a form body, not {t}")
            }
            ParamsError::Malformed(m) => m.to_owned(),
        };
        Self::error(Code::InvalidRequest, why)
    }

    /// The answer in its envelope. `site` is the tenant's name and address when known.
    fn into_response(self, site: Option<(&str, &str)>, now: i64) -> Response {
        let (merchant, url) = site.unwrap_or(("Portcullis", "/"));
        let body = json!({
            "merchant": merchant,
            "url": url,
            "time_token": now,
            "payload": self.payload,
            "code": self.code.as_str(),
            "message": self.message,
        });
        let mut res = Json(body).into_response();
        if let Some(after) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&after.as_secs().max(1).to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        res
    }
}

/// The OSSN wire format.
#[derive(Debug)]
pub struct Ossn;

impl Surface for Ossn {
    fn reject(rejection: Rejection) -> Response {
        let answer = match rejection {
            Rejection::NotFound | Rejection::MethodNotAllowed | Rejection::TenantNotFound => {
                Answer::error(Code::InvalidMethod, "Invalid method")
            }
            Rejection::CrossSite => Answer::error(Code::InvalidRequest, "Cross-site requests are refused"),
            Rejection::Panic => Answer::from_core(CoreError::Internal("a handler panicked".into())),
            Rejection::Core(e) => Answer::from_core(e),
        };
        answer.into_response(None, now_unix())
    }
}

/// The OSSN surface, mounted at `prefix` (`/api/v1.0` by default).
pub fn surface(state: &AppState, prefix: &str) -> MountedSurface {
    let path = format!("{}/user_authenticate", prefix.trim_end_matches('/'));
    let routes = Router::new().route(&path, any(user_authenticate));
    let m = Mount { name: Dialect::Ossn.name(), prefixes: vec![prefix.to_owned()], tenants: true, csrf: false };
    mount::<Ossn>(m, routes, state)
}

/// The time for an answer made outside a handler, which has no clock of the core at hand.
#[allow(clippy::disallowed_methods)]
fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// `user_authenticate`: checks a username (or e-mail address) and password for a server
/// holding an API key; the user's profile on success.
async fn user_authenticate(
    State(st): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    client: Client,
    req: Request,
) -> Response {
    let now = st.core.now().unix_micros() / 1_000_000;
    let method = req.method().clone();
    let site = async {
        let policy = st.core.dialect_policy(tenant, Dialect::Ossn).await?;
        let (t, _) = st.core.tenant_policy(tenant).await?;
        Ok::<_, CoreError>((t, policy))
    };
    let (t, policy) = match site.await {
        Ok(s) => s,
        Err(e) => return Answer::from_core(e).into_response(None, now),
    };
    let base = tenant_base_url(&t, &policy);
    let site_url = format!("{base}/");
    let envelope = |a: Answer| a.into_response(Some((&t.name, &site_url)), now);
    if method != Method::GET && method != Method::POST {
        return envelope(Answer::error(Code::InvalidMethod, "Invalid method"));
    }
    let params = match params::read(req, BodyFormats::FORMS).await {
        Ok(p) => p,
        Err(e) => return envelope(Answer::from_params(e)),
    };
    match authenticate(&st, tenant, &client, &params).await {
        Ok(user) => envelope(Answer {
            code: Code::Ok,
            message: "Request successfully executed".into(),
            payload: payload(&user, &t, &policy),
            retry_after: None,
        }),
        Err(a) => envelope(a),
    }
}

async fn authenticate(st: &AppState, tenant: TenantId, client: &Client, p: &Params) -> Result<User, Answer> {
    let Some(key) = p.non_empty("api_key_token") else {
        return Err(Answer::error(Code::InvalidKey, "Invalid API key"));
    };
    let caller =
        st.core.authenticate_key(&Token::from_client(key.to_owned()), tenant, client.info.clone()).await.map_err(
            |e| match e {
                CoreError::Unauthenticated => Answer::error(Code::InvalidKey, "Invalid API key"),
                e => Answer::from_core(e),
            },
        )?;
    let username = p.get("username").map(str::trim).unwrap_or_default();
    let password = p.get("password").unwrap_or_default();
    if username.is_empty() || password.is_empty() {
        return Err(Answer::error(Code::InvalidCredentials, "Invalid username and password"));
    }
    // OSSN looks a username with an `@` up as an e-mail address.
    let (username, email) =
        if username.contains('@') { (None, Some(username.to_owned())) } else { (Some(username.to_owned()), None) };
    let cmd = VerifyCredentials {
        username,
        email,
        password: Some(Password::new(password.to_owned())),
        second_factor: p.non_empty("second_factor").map(str::to_owned),
        code_only: true,
        end_user_ip: p.non_empty("client_ip").map(str::to_owned),
        ..VerifyCredentials::default()
    };
    match st.core.verify_credentials(&caller, tenant, cmd).await {
        Ok(LoginOutcome::LoggedIn { user, .. }) => Ok(user),
        // `code_only` never asks for a follow-up; were it to, the user could not go on here.
        Ok(LoginOutcome::SecondFactorRequired(_)) => Err(Answer::from_core(CoreError::SecondFactorRequired)),
        Err(CoreError::Forbidden(_)) => Err(Answer::error(Code::InvalidKey, "Invalid API key")),
        Err(e) => Err(Answer::from_core(e)),
    }
}

/// The user as OSSN's payload: every documented field, in the document's order.
fn payload(u: &User, t: &Tenant, policy: &Policy) -> Value {
    let p = &u.profile;
    let text = |v: Option<&str>| v.unwrap_or_default().to_owned();
    let first = text(p.first_name.as_deref());
    let last = text(p.last_name.as_deref());
    let fullname = format!("{first} {last}").trim().to_owned();
    let birthdate =
        p.birth_date.map(|d| format!("{:02}/{:02}/{:04}", d.day(), u8::from(d.month()), d.year())).unwrap_or_default();
    let base = tenant_base_url(t, policy);
    let mut icon = Map::new();
    // The document's order.
    for size in [AvatarSize::Topbar, AvatarSize::Smaller, AvatarSize::Small, AvatarSize::Larger, AvatarSize::Large] {
        icon.insert(
            size.name().into(),
            json!(format!("{base}{}", avatar_path(u.id, size, u.avatar_version.as_deref()))),
        );
    }
    let cover: Value = match p.cover_url.as_deref() {
        Some(url) if !url.is_empty() => json!(url),
        _ => json!(false),
    };
    json!({
        "guid": u.id.0.to_string(),
        "first_name": first,
        "last_name": last,
        "fullname": fullname,
        "username": u.username.clone().unwrap_or_default(),
        "email": u.email.clone().unwrap_or_default(),
        "birthdate": birthdate,
        "gender": gender(p.gender.as_deref()),
        "icon": icon,
        "cover_url": cover,
        "language": language(p.language.as_deref()),
    })
}

/// OSSN's genders are `male` and `female`; anything else is left empty.
fn gender(g: Option<&str>) -> &'static str {
    match g.map(|g| g.trim().to_ascii_lowercase()).as_deref() {
        Some("male" | "m") => "male",
        Some("female" | "f") => "female",
        _ => "",
    }
}

/// The ISO 639-1 code of a language tag (`pt-BR` → `pt`); `en` when the user has none, as an
/// OSSN site's default language.
fn language(tag: Option<&str>) -> String {
    tag.and_then(|t| t.split(['-', '_']).next())
        .map(str::to_ascii_lowercase)
        .filter(|l| l.len() == 2 && l.bytes().all(|b| b.is_ascii_lowercase()))
        .unwrap_or_else(|| "en".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genders_and_languages_read_as_ossn_writes_them() {
        assert_eq!(
            (gender(Some("Male")), gender(Some("F")), gender(Some("other")), gender(None)),
            ("male", "female", "", "")
        );
        assert_eq!(
            (language(Some("pt-BR")), language(Some("de")), language(Some("x-klingon")), language(None)),
            ("pt".to_owned(), "de".to_owned(), "en".to_owned(), "en".to_owned())
        );
    }
}
