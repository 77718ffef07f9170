//! The records of the model: tenants and their policy, users, sessions, roles and custom
//! attribute definitions. Plain data; the rules that change them live in the operations.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::Timestamp;
use crate::ids::{ApiKeyId, AttributeId, AuditEventId, RoleId, SessionId, TenantId, UserId};
use crate::profile::Profile;

/// Shortest session lifetime (absolute or idle) a policy may set.
pub const MIN_SESSION_LIFETIME: Duration = Duration::from_secs(60);

/// Longest session lifetime (absolute or idle) a policy may set: 400 days, the longest a
/// browser keeps a cookie.
pub const MAX_SESSION_LIFETIME: Duration = Duration::from_secs(400 * 24 * 3600);

/// Longest text value of a custom attribute, in characters.
pub const MAX_ATTRIBUTE_TEXT_CHARS: usize = 1024;

/// An isolated user base.
#[derive(Clone, Debug, PartialEq)]
pub struct Tenant {
    /// Identifier.
    pub id: TenantId,
    /// Short unique name used in URLs (`/t/{slug}/v1/...`).
    pub slug: String,
    /// Human-readable name.
    pub name: String,
    /// Domains that resolve to this tenant (`user@domain` logins, `Host` headers).
    pub domains: Vec<String>,
    /// This tenant's overrides of the server-wide policy.
    pub policy: TenantPolicy,
    /// A disabled tenant serves nobody.
    pub disabled: bool,
    /// When created.
    pub created_at: Timestamp,
    /// When last changed.
    pub updated_at: Timestamp,
}

/// A tenant's overrides of the server-wide [`Policy`]. Every field is optional: what a tenant
/// does not set follows the server configuration, so changing a default changes every tenant
/// that did not decide otherwise.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantPolicy {
    /// Shortest password, in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_min_length: Option<u32>,
    /// Lowest acceptable zxcvbn score (0 to 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_min_score: Option<u8>,
    /// Whether sign-up needs a username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_username: Option<bool>,
    /// Whether sign-up needs an e-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_email: Option<bool>,
    /// Whether sign-up needs a phone number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_phone: Option<bool>,
    /// Whether log-in needs a verified e-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_verified_email: Option<bool>,
    /// Whether anyone may sign up (otherwise only admins create users).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signup_open: Option<bool>,
    /// Absolute session lifetime, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_absolute_ttl_secs: Option<u64>,
    /// Session idle timeout, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_idle_ttl_secs: Option<u64>,
    /// Whether users may ask for a log-in link by e-mail instead of typing a password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passwordless_login: Option<bool>,
    /// How long a password reset link works, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_reset_ttl_secs: Option<u64>,
    /// How long an e-mail verification link works, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verification_ttl_secs: Option<u64>,
    /// How long a log-in link works, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_link_ttl_secs: Option<u64>,
    /// The address its users reach it at (links in mail point there), e.g.
    /// `https://id.example.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// A logo shown on its pages (an `https` URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
    /// Its colour on its pages, `#rrggbb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand_color: Option<String>,
    /// Origins (`https://app.example.com`) that its pages may send a user back to after
    /// log-in; anything else goes to the account page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_origins: Option<Vec<String>>,
    /// The legacy dialects it answers (`metrixstream`, `ossn`, `newspark`, `buddycloud`,
    /// `siberian`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialects: Option<Vec<crate::Dialect>>,
    /// Origins (`https://app.example.com`) whose browser scripts may call its dialects (CORS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors_origins: Option<Vec<String>>,
    /// Its application (an `http` or `https` URL), where a Siberian automatic log-in lands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_url: Option<String>,
    /// The status of a successful buddycloud credential check, `200` (as the document says)
    /// or `204` (as the original server answered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buddycloud_root_status: Option<u16>,
}

/// The policy in force for one tenant: server defaults overlaid with the tenant's overrides.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Shortest password, in characters.
    pub password_min_length: u32,
    /// Lowest acceptable zxcvbn score (0 to 4; 0 turns the check off).
    pub password_min_score: u8,
    /// Whether sign-up needs a username.
    pub require_username: bool,
    /// Whether sign-up needs an e-mail address.
    pub require_email: bool,
    /// Whether sign-up needs a phone number.
    pub require_phone: bool,
    /// Whether log-in needs a verified e-mail address.
    pub require_verified_email: bool,
    /// Whether anyone may sign up.
    pub signup_open: bool,
    /// Absolute session lifetime.
    #[serde(with = "humantime_serde")]
    pub session_absolute_ttl: Duration,
    /// Session idle timeout.
    #[serde(with = "humantime_serde")]
    pub session_idle_ttl: Duration,
    /// Whether users may ask for a log-in link by e-mail.
    pub passwordless_login: bool,
    /// How long a password reset link works.
    #[serde(with = "humantime_serde")]
    pub password_reset_ttl: Duration,
    /// How long an e-mail verification link works.
    #[serde(with = "humantime_serde")]
    pub email_verification_ttl: Duration,
    /// How long a log-in link works.
    #[serde(with = "humantime_serde")]
    pub login_link_ttl: Duration,
    /// The address users reach the server at (links in mail point there). Per tenant, the
    /// default tenant is served at this address and every other at `{public_url}/t/{slug}`,
    /// unless the tenant sets its own.
    pub public_url: String,
    /// A logo shown on the pages.
    pub logo_url: Option<String>,
    /// The colour of the pages, `#rrggbb`.
    pub brand_color: Option<String>,
    /// Origins the pages may send a user back to after log-in.
    pub return_origins: Vec<String>,
    /// The legacy dialects tenants answer (none unless switched on).
    pub dialects: Vec<crate::Dialect>,
    /// Origins whose browser scripts may call the dialects (CORS).
    pub cors_origins: Vec<String>,
    /// The application a Siberian automatic log-in lands on (the account page when unset).
    pub application_url: Option<String>,
    /// The status of a successful buddycloud credential check: 200 or 204.
    pub buddycloud_root_status: u16,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            password_min_length: 8,
            password_min_score: 2,
            require_username: false,
            require_email: true,
            require_phone: false,
            require_verified_email: false,
            signup_open: true,
            session_absolute_ttl: Duration::from_secs(30 * 24 * 3600),
            session_idle_ttl: Duration::from_secs(7 * 24 * 3600),
            passwordless_login: false,
            password_reset_ttl: Duration::from_secs(30 * 60),
            email_verification_ttl: Duration::from_secs(48 * 3600),
            login_link_ttl: Duration::from_secs(15 * 60),
            public_url: "http://localhost:8080".into(),
            logo_url: None,
            brand_color: None,
            return_origins: Vec::new(),
            dialects: Vec::new(),
            cors_origins: Vec::new(),
            application_url: None,
            buddycloud_root_status: 200,
        }
    }
}

impl Policy {
    /// This policy with a tenant's overrides applied.
    pub fn overlay(&self, t: &TenantPolicy) -> Policy {
        Policy {
            password_min_length: t.password_min_length.unwrap_or(self.password_min_length),
            password_min_score: t.password_min_score.unwrap_or(self.password_min_score),
            require_username: t.require_username.unwrap_or(self.require_username),
            require_email: t.require_email.unwrap_or(self.require_email),
            require_phone: t.require_phone.unwrap_or(self.require_phone),
            require_verified_email: t.require_verified_email.unwrap_or(self.require_verified_email),
            signup_open: t.signup_open.unwrap_or(self.signup_open),
            session_absolute_ttl: t
                .session_absolute_ttl_secs
                .map(Duration::from_secs)
                .unwrap_or(self.session_absolute_ttl),
            session_idle_ttl: t.session_idle_ttl_secs.map(Duration::from_secs).unwrap_or(self.session_idle_ttl),
            passwordless_login: t.passwordless_login.unwrap_or(self.passwordless_login),
            password_reset_ttl: t.password_reset_ttl_secs.map(Duration::from_secs).unwrap_or(self.password_reset_ttl),
            email_verification_ttl: t
                .email_verification_ttl_secs
                .map(Duration::from_secs)
                .unwrap_or(self.email_verification_ttl),
            login_link_ttl: t.login_link_ttl_secs.map(Duration::from_secs).unwrap_or(self.login_link_ttl),
            public_url: t.public_url.clone().unwrap_or_else(|| self.public_url.clone()),
            logo_url: t.logo_url.clone().or_else(|| self.logo_url.clone()),
            brand_color: t.brand_color.clone().or_else(|| self.brand_color.clone()),
            return_origins: t.return_origins.clone().unwrap_or_else(|| self.return_origins.clone()),
            dialects: t.dialects.clone().unwrap_or_else(|| self.dialects.clone()),
            cors_origins: t.cors_origins.clone().unwrap_or_else(|| self.cors_origins.clone()),
            application_url: t.application_url.clone().or_else(|| self.application_url.clone()),
            buddycloud_root_status: t.buddycloud_root_status.unwrap_or(self.buddycloud_root_status),
        }
    }

    /// Checks the policy for values that cannot work; returns the first problem.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=1023).contains(&self.password_min_length) {
            return Err("password_min_length must be between 1 and 1023".into());
        }
        if self.password_min_score > 4 {
            return Err("password_min_score must be between 0 and 4".into());
        }
        if self.session_absolute_ttl > MAX_SESSION_LIFETIME || self.session_idle_ttl > MAX_SESSION_LIFETIME {
            return Err("session lifetimes must be at most 400 days".into());
        }
        if self.session_absolute_ttl < MIN_SESSION_LIFETIME || self.session_idle_ttl < MIN_SESSION_LIFETIME {
            return Err("session lifetimes must be at least one minute".into());
        }
        for (name, ttl) in [
            ("password_reset_ttl", self.password_reset_ttl),
            ("email_verification_ttl", self.email_verification_ttl),
            ("login_link_ttl", self.login_link_ttl),
        ] {
            if !(MIN_LINK_LIFETIME..=MAX_LINK_LIFETIME).contains(&ttl) {
                return Err(format!("{name} must be between one minute and 30 days"));
            }
        }
        check_base_url(&self.public_url).map_err(|m| format!("public_url {m}"))?;
        if let Some(u) = &self.logo_url {
            check_base_url(u).map_err(|m| format!("logo_url {m}"))?;
        }
        if let Some(c) = &self.brand_color {
            let ok = c.len() == 7 && c.starts_with('#') && c[1..].chars().all(|c| c.is_ascii_hexdigit());
            if !ok {
                return Err("brand_color must be a colour in the form #rrggbb".into());
            }
        }
        for o in &self.return_origins {
            parse_origin(o).map_err(|m| format!("return_origins: {o:?} {m}"))?;
        }
        for o in &self.cors_origins {
            parse_origin(o).map_err(|m| format!("cors_origins: {o:?} {m}"))?;
        }
        if let Some(u) = &self.application_url {
            check_base_url(u).map_err(|m| format!("application_url {m}"))?;
        }
        if !matches!(self.buddycloud_root_status, 200 | 204) {
            return Err("buddycloud_root_status must be 200 or 204".into());
        }
        Ok(())
    }

    /// Whether the pages may send a user back to `url` after log-in: its origin must be one of
    /// the tenant's `return_origins`, exactly.
    pub fn allows_return_to(&self, url: &str) -> bool {
        let Some((origin, _)) = split_origin(url) else { return false };
        self.return_origins.iter().any(|o| o.eq_ignore_ascii_case(&origin))
    }
}

impl Policy {
    /// Whether browser scripts from `origin` may call the tenant's dialects.
    pub fn allows_cors_origin(&self, origin: &str) -> bool {
        self.cors_origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }
}

/// Shortest life of a link sent by mail.
pub const MIN_LINK_LIFETIME: Duration = Duration::from_secs(60);

/// Longest life of a link sent by mail.
pub const MAX_LINK_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// An `http` or `https` URL without whitespace, a fragment or credentials.
fn check_base_url(u: &str) -> Result<(), &'static str> {
    split_origin(u).map(|_| ()).ok_or("must be an http or https URL such as https://id.example.com")
}

/// An origin: `scheme://host[:port]`, nothing after.
fn parse_origin(o: &str) -> Result<(), &'static str> {
    match split_origin(o) {
        Some((origin, rest)) if rest.is_empty() && origin == o.to_ascii_lowercase() => Ok(()),
        _ => Err("must be an origin such as https://app.example.com (lower case, no path)"),
    }
}

/// Splits a URL into its origin (lower-cased) and the rest; `None` unless it is an absolute
/// `http(s)` URL with a host, no credentials, no whitespace or control characters.
pub(crate) fn split_origin(url: &str) -> Option<(String, String)> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.is_empty() || authority.contains('@') || authority.contains('\\') {
        return None;
    }
    Some((format!("{scheme}://{}", authority.to_ascii_lowercase()), tail.to_owned()))
}

/// What a one-time token is for. A token is only ever consumed for its own purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenPurpose {
    /// Exchanged once for a session (`POST /v1/login/token`, a log-in link).
    Login,
    /// Binds the second step of a log-in (the code) to its first (the password): made when
    /// a password was right, spent with the code.
    SecondFactorStep,
    /// Proves that the user reads mail sent to their e-mail address.
    EmailVerification,
    /// Lets a user who forgot their password set a new one.
    PasswordReset,
}

impl TokenPurpose {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::SecondFactorStep => "second_factor_step",
            Self::EmailVerification => "email_verification",
            Self::PasswordReset => "password_reset",
        }
    }
}

/// What a message of the outbox is; each kind has its templates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MailKind {
    /// A link that verifies an e-mail address (at sign-up, on a change, on request).
    EmailVerification,
    /// Tells the old address that a change of address was asked for.
    EmailChanged,
    /// A link that sets a new password.
    PasswordReset,
    /// A link that logs the user in.
    LoginLink,
    /// A message an operator sends to check the mail settings.
    Test,
}

impl MailKind {
    /// Every kind.
    pub const ALL: [MailKind; 5] =
        [Self::EmailVerification, Self::EmailChanged, Self::PasswordReset, Self::LoginLink, Self::Test];

    /// The stored name, which is also the name of its templates.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::EmailVerification => "email_verification",
            Self::EmailChanged => "email_changed",
            Self::PasswordReset => "password_reset",
            Self::LoginLink => "login_link",
            Self::Test => "test",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Whether an account may be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    /// Normal.
    Active,
    /// Waiting for the user to verify their e-mail address.
    Pending,
    /// Switched off by an administrator; cannot log in.
    Disabled,
}

impl UserStatus {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Pending => "pending",
            Self::Disabled => "disabled",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "pending" => Some(Self::Pending),
            "disabled" => Some(Self::Disabled),
            _ => None,
        }
    }
}

/// An account. The password hash is deliberately not part of it (see
/// [`crate::store::UserWithSecret`]), so a user can be handed to any surface without the risk
/// of a hash leaking into a response.
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    /// Identifier.
    pub id: UserId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Username as chosen.
    pub username: Option<String>,
    /// E-mail address as given.
    pub email: Option<String>,
    /// When the e-mail address was verified.
    pub email_verified_at: Option<Timestamp>,
    /// Primary phone number as given; a login identifier.
    pub phone: Option<String>,
    /// When the phone number was verified.
    pub phone_verified_at: Option<Timestamp>,
    /// An address the user asked to change to, waiting for its verification.
    pub pending_email: Option<String>,
    /// The version of the user's profile picture (part of its URLs); `None`: a generated
    /// picture is shown.
    pub avatar_version: Option<String>,
    /// Whether the user has a confirmed second factor (a TOTP authenticator).
    pub second_factor: bool,
    /// Whether the account may be used.
    pub status: UserStatus,
    /// Profile fields.
    pub profile: Profile,
    /// Custom attribute values by attribute name.
    pub attributes: BTreeMap<String, Value>,
    /// Names of the roles the user holds, sorted.
    pub roles: Vec<String>,
    /// When created.
    pub created_at: Timestamp,
    /// When last changed.
    pub updated_at: Timestamp,
    /// When the user last logged in.
    pub last_login_at: Option<Timestamp>,
    /// When the password was last set.
    pub password_changed_at: Option<Timestamp>,
    /// Moves on every change of password (not on re-encoding the same password).
    pub password_version: i64,
}

/// A log-in session. The token itself is never stored; see [`crate::secret::TokenHash`].
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    /// Identifier (safe to show; not a credential).
    pub id: SessionId,
    /// Tenant of the session's user.
    pub tenant_id: TenantId,
    /// The session's user.
    pub user_id: UserId,
    /// When the session was opened.
    pub created_at: Timestamp,
    /// Absolute expiry.
    pub expires_at: Timestamp,
    /// Idle timeout in force for this session (fixed when it was opened).
    pub idle_timeout: Duration,
    /// Last time the session was used (updated at most once per touch interval).
    pub last_seen_at: Timestamp,
    /// User agent that opened the session.
    pub user_agent: Option<String>,
    /// Client IP that opened the session.
    pub ip: Option<std::net::IpAddr>,
}

impl Session {
    /// When the session expires if not used again.
    pub fn idle_expires_at(&self) -> Timestamp {
        self.last_seen_at.plus(self.idle_timeout)
    }

    /// Whether the session is still valid at `now`.
    pub fn is_valid_at(&self, now: Timestamp) -> bool {
        now < self.expires_at && now < self.idle_expires_at()
    }
}

/// A role, defined per tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    /// Identifier.
    pub id: RoleId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Name, unique in the tenant (case-insensitively).
    pub name: String,
    /// What the role is for.
    pub description: Option<String>,
    /// When created.
    pub created_at: Timestamp,
}

/// The type of a custom attribute's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeKind {
    /// Text, up to 1024 characters.
    String,
    /// A whole number.
    Integer,
    /// A number.
    Number,
    /// True or false.
    Boolean,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
}

impl AttributeKind {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Date => "date",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "string" => Some(Self::String),
            "integer" => Some(Self::Integer),
            "number" => Some(Self::Number),
            "boolean" => Some(Self::Boolean),
            "date" => Some(Self::Date),
            _ => None,
        }
    }

    /// Checks a value against this type and returns its canonical JSON form. Strings are
    /// accepted for every type, because form-encoded clients can send nothing else.
    pub fn coerce(self, v: &Value) -> Result<Value, &'static str> {
        match (self, v) {
            (Self::String, Value::String(s)) => {
                if s.chars().count() > MAX_ATTRIBUTE_TEXT_CHARS {
                    Err("must be at most 1024 characters")
                } else if s.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
                    Err("must not contain control characters")
                } else {
                    Ok(Value::String(s.clone()))
                }
            }
            (Self::String, _) => Err("must be a string"),
            (Self::Integer, Value::Number(n)) if n.is_i64() => Ok(v.clone()),
            (Self::Integer, Value::String(s)) => {
                s.trim().parse::<i64>().map(Value::from).map_err(|_| "must be a whole number")
            }
            (Self::Integer, _) => Err("must be a whole number"),
            (Self::Number, Value::Number(_)) => Ok(v.clone()),
            (Self::Number, Value::String(s)) => s
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or("must be a number"),
            (Self::Number, _) => Err("must be a number"),
            (Self::Boolean, _) => crate::profile::parse_flag(v).map(Value::Bool).ok_or("must be true or false"),
            (Self::Date, Value::String(s)) => {
                let fmt = time::macros::format_description!("[year]-[month]-[day]");
                time::Date::parse(s.trim(), &fmt)
                    .map(|_| Value::String(s.trim().to_owned()))
                    .map_err(|_| "must be a date in the form YYYY-MM-DD")
            }
            (Self::Date, _) => Err("must be a date in the form YYYY-MM-DD"),
        }
    }
}

/// A custom attribute that users of a tenant can carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttributeDefinition {
    /// Identifier.
    pub id: AttributeId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Name, unique in the tenant.
    pub name: String,
    /// Type of the values.
    pub kind: AttributeKind,
    /// Whether a value must be present when a user is created.
    pub required: bool,
    /// Whether users may set the value themselves (sign-up, `PATCH /v1/me`).
    pub user_editable: bool,
    /// When created.
    pub created_at: Timestamp,
}

/// What an API key may do. Scopes nest: `tenant:admin` includes `users:manage`, which
/// includes `users:read`; `tenant:admin` also includes `credentials:verify`. An operator key
/// belongs to no tenant and may do everything in every tenant, and manage tenants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// Check a user's login and password (`POST /v1/credentials/verify`).
    #[serde(rename = "credentials:verify")]
    CredentialsVerify,
    /// Read users, check whether an identifier exists.
    #[serde(rename = "users:read")]
    UsersRead,
    /// Create, change, disable and delete users; end their sessions; issue log-in tokens.
    #[serde(rename = "users:manage")]
    UsersManage,
    /// Everything in the tenant: roles, attribute definitions, API keys, the audit log.
    #[serde(rename = "tenant:admin")]
    TenantAdmin,
    /// Everything in every tenant, and the tenants themselves. Only for keys without a tenant.
    #[serde(rename = "operator")]
    Operator,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 5] =
        [Scope::CredentialsVerify, Scope::UsersRead, Scope::UsersManage, Scope::TenantAdmin, Scope::Operator];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CredentialsVerify => "credentials:verify",
            Self::UsersRead => "users:read",
            Self::UsersManage => "users:manage",
            Self::TenantAdmin => "tenant:admin",
            Self::Operator => "operator",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Whether holding `self` grants `wanted`.
    pub fn grants(self, wanted: Scope) -> bool {
        use Scope::*;
        self == wanted
            || matches!(
                (self, wanted),
                (Operator, _) | (TenantAdmin, CredentialsVerify | UsersRead | UsersManage) | (UsersManage, UsersRead)
            )
    }
}

/// A key for servers calling Portcullis. The secret itself is never stored (only its
/// SHA-256); `prefix` is its first characters, shown to tell keys apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    /// Identifier.
    pub id: ApiKeyId,
    /// Owning tenant; `None` for an operator key.
    pub tenant_id: Option<TenantId>,
    /// What the key is for.
    pub name: String,
    /// The key's first characters (not a secret).
    pub prefix: String,
    /// What the key may do.
    pub scopes: Vec<Scope>,
    /// When the key stops working, if ever.
    pub expires_at: Option<Timestamp>,
    /// When the key was last used (recorded at most once a minute).
    pub last_used_at: Option<Timestamp>,
    /// When the key was revoked.
    pub revoked_at: Option<Timestamp>,
    /// When created.
    pub created_at: Timestamp,
}

impl ApiKey {
    /// Whether the key works at `now`.
    pub fn is_live_at(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }

    /// Whether the key grants `wanted` (operator keys grant everything).
    pub fn grants(&self, wanted: Scope) -> bool {
        self.scopes.iter().any(|s| s.grants(wanted))
    }
}

/// A security event: who did what to which account, when and from where. Never holds a
/// secret.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEvent {
    /// Identifier (increasing).
    pub id: AuditEventId,
    /// Tenant concerned, if any.
    pub tenant_id: Option<TenantId>,
    /// Account concerned, if any (kept after the account is deleted).
    pub user_id: Option<UserId>,
    /// Who acted: `user:ID`, `key:ID`, `cli`, or `anonymous`.
    pub actor: String,
    /// What happened, e.g. `login.succeeded`.
    pub action: String,
    /// Client IP.
    pub ip: Option<std::net::IpAddr>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// More about the event (never a secret).
    pub details: Value,
    /// When it happened.
    pub created_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tenant_overrides_win_and_the_rest_follow_defaults() {
        let base = Policy::default();
        let t = TenantPolicy { require_username: Some(true), password_min_length: Some(12), ..Default::default() };
        let p = base.overlay(&t);
        assert!(p.require_username);
        assert_eq!(p.password_min_length, 12);
        assert_eq!(p.require_email, base.require_email);
        assert_eq!(p.session_idle_ttl, base.session_idle_ttl);
    }

    #[test]
    fn attribute_values_are_coerced() {
        assert_eq!(AttributeKind::Integer.coerce(&json!("42")), Ok(json!(42)));
        assert!(AttributeKind::Integer.coerce(&json!(4.5)).is_err());
        assert_eq!(AttributeKind::Boolean.coerce(&json!("1")), Ok(json!(true)));
        assert_eq!(AttributeKind::Number.coerce(&json!("2.5")), Ok(json!(2.5)));
        assert!(AttributeKind::Date.coerce(&json!("2024-02-30")).is_err());
        assert!(AttributeKind::String.coerce(&json!(1)).is_err());
    }
}
