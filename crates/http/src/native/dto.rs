//! Wire types of the native API, and their OpenAPI schemas (the user itself is in
//! [`crate::json::user`]).

use std::borrow::Cow;

use portcullis_core::login::{IssuedSession, SecondFactorRequired, VerifyCredentials};
use portcullis_core::model::Session;
use portcullis_core::{Password, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{AdditionalProperties, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::json::user::{UserBody, attributes_schema, nullable, with_profile};

/// Identifier fields and profile fields a user may set, shared by sign-up and `PATCH /v1/me`.
fn editable_fields() -> ObjectBuilder {
    let b = ObjectBuilder::new()
        .property(
            "username",
            ObjectBuilder::new().schema_type(nullable(Type::String)).min_length(Some(2)).max_length(Some(64)),
        )
        .property(
            "email",
            ObjectBuilder::new()
                .schema_type(nullable(Type::String))
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
                .max_length(Some(254)),
        )
        .property("phone", ObjectBuilder::new().schema_type(nullable(Type::String)).max_length(Some(32)))
        .property(
            "attributes",
            attributes_schema()
                .description(Some("Values of custom attributes the tenant marks user-editable; null removes one.")),
        );
    with_profile(b).additional_properties(Some(AdditionalProperties::FreeForm(false)))
}

/// The body of `POST /v1/signup`.
#[derive(Debug)]
pub struct SignupBody;

impl PartialSchema for SignupBody {
    fn schema() -> RefOr<Schema> {
        let b = editable_fields()
            .property(
                "password",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Password)))
                    .max_length(Some(1023)),
            )
            .property(
                "password_confirmation",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Password))),
            )
            .required("password")
            .description(Some("Which of username, email and phone are required is tenant policy (by default: email)."));
        RefOr::T(Schema::Object(b.build()))
    }
}

impl ToSchema for SignupBody {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("SignupRequest")
    }
}

/// The body of `PATCH /v1/me`: any subset of the editable fields; `null` clears a field.
#[derive(Debug)]
pub struct ProfilePatchBody;

impl PartialSchema for ProfilePatchBody {
    fn schema() -> RefOr<Schema> {
        RefOr::T(Schema::Object(
            editable_fields()
                .property(
                    "current_password",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Password)))
                        .description(Some("Confirms a new e-mail address.")),
                )
                .property(
                    "second_factor",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .description(Some("A second-factor code, instead of current_password.")),
                )
                .description(Some(
                    "Fields not listed here (status, roles, password, ...) are refused with 403 field_not_editable.",
                ))
                .build(),
        ))
    }
}

impl ToSchema for ProfilePatchBody {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ProfilePatch")
    }
}

/// A session, as its owner sees it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Session)]
pub struct SessionBody {
    /// Identifier (not a credential).
    pub id: i64,
    /// The session's user.
    pub user_id: i64,
    /// When it was opened.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Absolute expiry.
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
    /// When it expires if not used again.
    #[schema(value_type = String, format = DateTime)]
    pub idle_expires_at: Timestamp,
    /// Last use (recorded at most once a minute).
    #[schema(value_type = String, format = DateTime)]
    pub last_seen_at: Timestamp,
    /// User agent that opened it.
    pub user_agent: Option<String>,
    /// Client IP that opened it.
    pub ip: Option<String>,
    /// Whether this is the session making the request.
    pub current: bool,
}

impl SessionBody {
    /// The wire form of a session.
    pub fn new(s: &Session, current: bool) -> Self {
        Self {
            id: s.id.0,
            user_id: s.user_id.0,
            created_at: s.created_at,
            expires_at: s.expires_at,
            idle_expires_at: s.idle_expires_at().min(s.expires_at),
            last_seen_at: s.last_seen_at,
            user_agent: s.user_agent.clone(),
            ip: s.ip.map(|ip| ip.to_string()),
            current,
        }
    }
}

/// A session just opened, with its token (shown this once).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = NewSession)]
pub struct IssuedSessionBody {
    /// Bearer token: send as `Authorization: Bearer <token>`. Also set as an HttpOnly cookie.
    pub token: String,
    /// The session.
    #[serde(flatten)]
    pub session: SessionBody,
}

impl From<&IssuedSession> for IssuedSessionBody {
    fn from(s: &IssuedSession) -> Self {
        Self { token: s.token.expose().to_owned(), session: SessionBody::new(&s.session, true) }
    }
}

/// The step a second factor needs: sent with `second_factor_required`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecondFactorBody {
    /// Present it with the code; it works once, for a few minutes.
    pub step_token: String,
    /// When it stops working.
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
}

impl SecondFactorBody {
    /// The wire form of a second-factor step.
    pub fn new(s: &SecondFactorRequired) -> Self {
        Self { step_token: s.step_token.expose().to_owned(), expires_at: s.expires_at }
    }
}

/// Answer of sign-up and log-in.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthResponse {
    /// The account.
    #[schema(value_type = UserBody)]
    pub user: Value,
    /// The new session; absent when the tenant requires a verified e-mail address first.
    pub session: Option<IssuedSessionBody>,
}

/// Answer of `GET /v1/session`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionResponse {
    /// The session making the request.
    pub session: SessionBody,
}

/// Answer of `GET /v1/sessions`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionsResponse {
    /// The user's live sessions, newest first.
    pub sessions: Vec<SessionBody>,
}

/// Answer of `POST /v1/logout/all`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogoutAllResponse {
    /// How many sessions ended.
    pub sessions_ended: u64,
}

/// Body of `POST /v1/login`: `login` (matched against username, e-mail or phone) or exactly
/// one of `username`, `email`, `phone`; and the password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Username, e-mail address or phone number.
    pub login: Option<String>,
    /// Username only.
    pub username: Option<String>,
    /// E-mail address only.
    pub email: Option<String>,
    /// Phone number only.
    pub phone: Option<String>,
    /// The password.
    #[schema(value_type = String, format = Password)]
    pub password: Option<Password>,
    /// A second-factor code (from the app, or a recovery code), for an account with a second
    /// factor. Without it such an account answers `second_factor_required` with a step token.
    pub second_factor: Option<String>,
}

/// Body of `POST /v1/me/password`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    /// The current password.
    #[schema(value_type = String, format = Password)]
    pub current_password: Password,
    /// The new password.
    #[schema(value_type = String, format = Password)]
    pub new_password: Password,
    /// The new password again, if the client asks for it.
    #[schema(value_type = Option<String>, format = Password)]
    pub new_password_confirmation: Option<Password>,
}

/// Body of `DELETE /v1/me`: the password, or a second-factor code (an account with neither
/// needs a session opened in the last 15 minutes, and may send no body).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteMeRequest {
    /// The current password, to confirm.
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<Password>,
    /// A second-factor code (from the app, or a recovery code), instead.
    pub code: Option<String>,
}

/// Answer of `GET /healthz` and `GET /readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusResponse {
    /// `ok` or `ready`.
    pub status: &'static str,
}

/// Body of `POST /v1/login/token`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginTokenRequest {
    /// The one-time log-in token (`pcl_...`).
    pub token: String,
}

/// Body of `POST /v1/credentials/verify`: a login (or exactly one of username, e-mail,
/// phone) and a password, with options.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// Username, e-mail address or phone number.
    pub login: Option<String>,
    /// Username only.
    pub username: Option<String>,
    /// E-mail address only.
    pub email: Option<String>,
    /// Phone number only.
    pub phone: Option<String>,
    /// The password.
    #[schema(value_type = String, format = Password)]
    pub password: Option<Password>,
    /// Return the user's profile with a valid answer.
    #[serde(default)]
    pub return_user: bool,
    /// Open a session for the user with a valid answer.
    #[serde(default)]
    pub open_session: bool,
    /// The end user's IP, if the calling server knows it: attempts are limited per IP as
    /// log-ins are, and it is recorded with the session and in the audit log.
    pub client_ip: Option<String>,
    /// The end user's user agent, recorded with the session.
    pub user_agent: Option<String>,
    /// The user's second-factor code (from their app, or a recovery code), for an account
    /// with a second factor.
    pub second_factor: Option<String>,
}

impl VerifyRequest {
    /// The core command (which the core checks once the caller may ask), and whether to
    /// return the profile.
    pub fn into_command(self) -> (VerifyCredentials, bool) {
        let cmd = VerifyCredentials {
            login: self.login,
            username: self.username,
            email: self.email,
            phone: self.phone,
            password: self.password,
            open_session: self.open_session,
            end_user_ip: self.client_ip,
            end_user_agent: self.user_agent,
            second_factor: self.second_factor,
            code_only: false,
        };
        (cmd, self.return_user)
    }
}

/// Answer of `POST /v1/credentials/verify`.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyResponse {
    /// Whether the credentials are valid (and the account may log in).
    pub valid: bool,
    /// Why not: `invalid_credentials` (every cause alike), or, only after a right password,
    /// `email_not_verified`, `account_disabled`, `second_factor_required` (no code was sent)
    /// or `second_factor_invalid` (a wrong or used code).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// The user's id, when valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<i64>,
    /// The user, when valid and asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<UserBody>)]
    pub user: Option<Value>,
    /// A new session for the user, when valid and asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<IssuedSessionBody>,
    /// With `second_factor_required`: a step token the user's client may finish the log-in
    /// with (`POST /v1/login/second-factor`), or send the code along in a new check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub second_factor: Option<SecondFactorBody>,
}
