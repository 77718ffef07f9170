//! The wire contract of `users.confirmCredentials`: its parameters, parsed into a
//! [`VerifyCredentials`] command and the options of the answer, and its answers — the user id,
//! the user struct, or `false` (a reason code with `detailedError`) — in XML and in JSON.
//!
//! Nothing here decides anything about the credentials: what is wrong with them, and when it
//! may be said, comes from the core.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use portcullis_core::login::{IssuedSession, LoginOutcome, VerifyCredentials};
use portcullis_core::model::User;
use portcullis_core::{CoreError, Password, Token};
use serde_json::{Map, Value, json};

use super::error::{Format, NewsparkError, XML_TYPE};
use crate::shared::params::Params;
use crate::shared::xml;

/// The one method of `/json`, as its `method` parameter names it (any case).
pub(super) const METHOD: &str = "users.confirmCredentials";

/// Checks the `method` parameter of a `/json` call.
pub(super) fn check_method(params: &Params) -> Result<(), NewsparkError> {
    match params.non_empty("method") {
        None => Err(NewsparkError::missing("method")),
        Some(m) if m.eq_ignore_ascii_case(METHOD) => Ok(()),
        Some(_) => Err(NewsparkError::unknown_method()),
    }
}

/// Which account field `username` is compared with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Matched {
    Username,
    Email,
    Phone,
}

/// What the caller asked to get back.
#[derive(Clone, Copy, Debug)]
pub(super) struct AnswerOptions {
    /// `returnUserInfo`: the user struct instead of the user id.
    return_user_info: bool,
    /// `detailedError`: a reason code instead of `false`.
    detailed_error: bool,
}

/// A `users.confirmCredentials` call, parsed.
#[derive(Debug)]
pub(super) struct Call {
    /// `vhost`: the tenant's id.
    pub vhost: i64,
    /// `APIKEY` (or a bearer token).
    pub api_key: Token,
    /// The credential check for the core.
    pub command: VerifyCredentials,
    /// How to answer.
    pub options: AnswerOptions,
}

impl Call {
    /// Parses the parameters; `bearer` is the token of an `Authorization: Bearer` header, the
    /// key's alternative to `APIKEY`.
    pub(super) fn parse(p: &Params, bearer: Option<String>) -> Result<Self, NewsparkError> {
        let vhost = p.non_empty("vhost").ok_or(NewsparkError::missing("vhost"))?;
        let vhost =
            vhost.parse::<i64>().map_err(|_| NewsparkError::invalid("The parameter vhost must be an integer."))?;
        let api_key = p
            .non_empty("APIKEY")
            .map(str::to_owned)
            .or(bearer.filter(|b| !b.is_empty()))
            .ok_or(NewsparkError::missing("APIKEY"))?;
        let username = p.non_empty("username").ok_or(NewsparkError::missing("username"))?;
        // The password is taken as sent, spaces and all; only an empty one is missing.
        let password = p.get("password").filter(|v| !v.is_empty()).ok_or(NewsparkError::missing("password"))?;
        let return_user_info = flag(p, "returnUserInfo")?;
        let login = flag(p, "login")?;
        let is_email = flag(p, "isEmail")?;
        let is_phone = flag(p, "isPhone")?;
        let detailed_error = flag(p, "detailedError")?;
        let matched = match (is_email, is_phone) {
            (true, true) => return Err(NewsparkError::invalid("Set at most one of isEmail and isPhone.")),
            (true, false) => Matched::Email,
            (false, true) => Matched::Phone,
            // No username holds an `@` (Portcullis refuses one in a username), so such a value
            // can only ever be an e-mail address: matched as one instead of failing for sure.
            (false, false) if username.contains('@') => Matched::Email,
            (false, false) => Matched::Username,
        };
        let field = |m: Matched| (matched == m).then(|| username.to_owned());
        let command = VerifyCredentials {
            username: field(Matched::Username),
            email: field(Matched::Email),
            phone: field(Matched::Phone),
            password: Some(Password::new(password)),
            // "If the returnUserInfo is false, login will be ignored."
            open_session: login && return_user_info,
            second_factor: p.non_empty("mfatoken").map(str::to_owned),
            // Newspark has no second step: a code comes with the password or not at all.
            code_only: true,
            // A Portcullis addition, as on the other credential checks: the end user's address,
            // so that guessing through one integrator's site does not lock out all its users.
            end_user_ip: p.non_empty("client_ip").map(str::to_owned),
            ..VerifyCredentials::default()
        };
        Ok(Self {
            vhost,
            api_key: Token::from_client(api_key),
            command,
            options: AnswerOptions { return_user_info, detailed_error },
        })
    }
}

/// A boolean parameter: absent is false; `1/0`, `true/false`, `yes/no`, `on/off` (any case).
fn flag(p: &Params, name: &'static str) -> Result<bool, NewsparkError> {
    match p.flag(name) {
        None => Ok(false),
        Some(Ok(b)) => Ok(b),
        Some(Err(())) => Err(NewsparkError::invalid(format!("The parameter {name} must be true or false."))),
    }
}

/// Why a credential check answered `false`, as `detailedError` names it. Every reason but
/// [`Reason::InvalidCredentials`] comes only after the password was proven right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Reason {
    /// Unknown account or wrong password (one reason for both).
    InvalidCredentials,
    /// The account is disabled.
    AccountDisabled,
    /// The vhost requires a verified e-mail address and this account's is not.
    EmailNotVerified,
    /// The account has a second factor and no `mfatoken` came.
    MfaRequired,
    /// The `mfatoken` is wrong or was used already.
    MfaInvalid,
}

impl Reason {
    /// The code `detailedError` answers.
    pub(super) const fn code(self) -> &'static str {
        match self {
            Self::InvalidCredentials => "INVALID_CREDENTIALS",
            Self::AccountDisabled => "ACCOUNT_DISABLED",
            Self::EmailNotVerified => "EMAIL_NOT_VERIFIED",
            Self::MfaRequired => "MFA_REQUIRED",
            Self::MfaInvalid => "MFA_INVALID",
        }
    }
}

/// A successful answer: the call was served (the credentials may still be wrong).
#[derive(Debug)]
pub(super) enum Answer {
    /// The credentials are right: the user id.
    UserId(i64),
    /// The credentials are right: the user struct (with `sessiontoken` when one was opened).
    User(Map<String, Value>),
    /// The credentials are not (or the account may not log in): `false`, or the reason.
    Refused(Reason, AnswerOptions),
}

impl Answer {
    /// The answer to the core's verdict; failures that are no verdict stay errors.
    pub(super) fn from_outcome(
        outcome: Result<LoginOutcome<Option<IssuedSession>>, CoreError>,
        options: AnswerOptions,
    ) -> Result<Self, NewsparkError> {
        let refused = |r| Ok(Self::Refused(r, options));
        match outcome {
            Ok(LoginOutcome::LoggedIn { user, session }) if options.return_user_info => {
                Ok(Self::User(user_struct(&user, session.as_ref())))
            }
            Ok(LoginOutcome::LoggedIn { user, .. }) => Ok(Self::UserId(user.id.0)),
            // Not asked for (`code_only`), but should it come, it means the same.
            Ok(LoginOutcome::SecondFactorRequired(_)) | Err(CoreError::SecondFactorRequired) => {
                refused(Reason::MfaRequired)
            }
            Err(CoreError::InvalidCredentials) => refused(Reason::InvalidCredentials),
            Err(CoreError::AccountDisabled) => refused(Reason::AccountDisabled),
            Err(CoreError::EmailNotVerified) => refused(Reason::EmailNotVerified),
            Err(CoreError::SecondFactorInvalid) => refused(Reason::MfaInvalid),
            Err(other) => Err(other.into()),
        }
    }

    /// The value of `result`, as JSON.
    fn result(self) -> Value {
        match self {
            Self::UserId(id) => json!(id),
            Self::User(m) => Value::Object(m),
            Self::Refused(r, o) if o.detailed_error => json!(r.code()),
            Self::Refused(..) => Value::Bool(false),
        }
    }

    /// The answer, in `format`: HTTP 200 either way.
    pub(super) fn render(self, format: Format) -> Response {
        match format {
            Format::Json => axum::Json(json!({"status": true, "result": self.result()})).into_response(),
            Format::Xml => {
                // The XML writer spells booleans 1/0; Newspark's `false` is the word.
                let result = match self.result() {
                    Value::Bool(false) => json!("false"),
                    other => other,
                };
                ([(header::CONTENT_TYPE, XML_TYPE)], xml::document("result", &result)).into_response()
            }
        }
    }
}

/// The user struct of `returnUserInfo`, in the order of the document's sample answer (which
/// omits `postal`: it follows `country`, as in the document's table). Empty strings are `""`,
/// except `address2`, which the sample shows as `null`; `id` and `vhost` are numbers,
/// `newsletter` is `"0"` or `"1"`.
pub(super) fn user_struct(user: &User, session: Option<&IssuedSession>) -> Map<String, Value> {
    let p = &user.profile;
    let text = |v: Option<&str>| Value::String(v.unwrap_or_default().to_owned());
    let mut m = Map::new();
    m.insert("id".into(), json!(user.id.0));
    m.insert("user".into(), text(user.username.as_deref()));
    m.insert("email".into(), text(user.email.as_deref()));
    m.insert("firstname".into(), text(p.first_name.as_deref()));
    m.insert("lastname".into(), text(p.last_name.as_deref()));
    m.insert("city".into(), text(p.city.as_deref()));
    m.insert("gender".into(), json!(gender(p.gender.as_deref())));
    m.insert("cellphone".into(), text(p.cellphone.as_deref()));
    m.insert("phone".into(), text(user.phone.as_deref()));
    m.insert("website".into(), text(p.website.as_deref()));
    m.insert("occupation".into(), text(p.occupation.as_deref()));
    m.insert("address1".into(), text(p.address_line1.as_deref()));
    m.insert("address2".into(), p.address_line2.as_deref().map_or(Value::Null, |a| json!(a)));
    m.insert("state".into(), text(p.state.as_deref()));
    m.insert("country".into(), text(p.country.as_deref()));
    m.insert("postal".into(), text(p.postal_code.as_deref()));
    m.insert("newsletter".into(), json!(if p.newsletter { "1" } else { "0" }));
    m.insert("nickname".into(), text(p.nickname.as_deref()));
    m.insert("vhost".into(), json!(user.tenant_id.0));
    m.insert("meta".into(), Value::Object(p.meta.clone()));
    if let Some(s) = session {
        m.insert("sessiontoken".into(), json!(s.token.expose()));
    }
    m
}

/// Newspark's one-letter gender: `M` or `F`, from what the profile says; anything else is
/// empty (the document allows only these two letters).
fn gender(g: Option<&str>) -> &'static str {
    match g.map(|g| g.trim().to_lowercase()).as_deref() {
        Some("m" | "male") => "M",
        Some("f" | "female") => "F",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
    }

    const BASE: [(&str, &str); 4] = [("vhost", "1"), ("APIKEY", "pck_x"), ("username", "ada"), ("password", " pw ")];

    fn code(e: NewsparkError) -> String {
        let res = e.render(Format::Json);
        format!("{}", res.status().as_u16())
    }

    #[test]
    fn the_identifier_field_follows_the_flags() {
        let c = Call::parse(&params(&BASE), None).unwrap();
        assert_eq!(c.command.username.as_deref(), Some("ada"));
        assert_eq!(c.command.password.as_ref().map(Password::expose), Some(" pw "), "the password as sent");
        assert!(c.command.code_only && !c.command.open_session);
        let mut p = BASE.to_vec();
        p.push(("isEmail", "true"));
        assert!(Call::parse(&params(&p), None).unwrap().command.email.is_some());
        p.push(("isPhone", "1"));
        assert_eq!(code(Call::parse(&params(&p), None).unwrap_err()), "400");
        let mut p = BASE.to_vec();
        p[2] = ("username", "ada@example.com");
        assert_eq!(Call::parse(&params(&p), None).unwrap().command.email.as_deref(), Some("ada@example.com"));
    }

    #[test]
    fn login_needs_return_user_info() {
        let mut p = BASE.to_vec();
        p.push(("login", "true"));
        assert!(!Call::parse(&params(&p), None).unwrap().command.open_session);
        p.push(("returnUserInfo", "1"));
        assert!(Call::parse(&params(&p), None).unwrap().command.open_session);
        p.push(("detailedError", "perhaps"));
        assert_eq!(code(Call::parse(&params(&p), None).unwrap_err()), "400");
    }

    #[test]
    fn the_key_may_come_as_a_bearer_token() {
        let p: Vec<_> = BASE.iter().copied().filter(|(k, _)| *k != "APIKEY").collect();
        assert_eq!(code(Call::parse(&params(&p), None).unwrap_err()), "400");
        assert_eq!(Call::parse(&params(&p), Some("pck_y".into())).unwrap().api_key.expose(), "pck_y");
    }

    #[test]
    fn genders_are_one_letter_or_nothing() {
        for (g, want) in [(Some("Male"), "M"), (Some("m"), "M"), (Some(" FEMALE "), "F"), (Some("x"), ""), (None, "")] {
            assert_eq!(gender(g), want, "{g:?}");
        }
    }
}
