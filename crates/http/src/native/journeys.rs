//! The native API's journeys beyond log-in: a forgotten password, e-mail verification,
//! log-in links, and the second factor (the follow-up of a log-in, and the user's own
//! enrolment).
//!
//! Requests by identifier (`/password/forgot`, `/email/verification`, `/login/link`) always
//! answer 202 with the same body, after the same work, whether or not the account exists: the
//! account is looked up when the message is sent, after the answer.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_core::login::identifier_from_fields;
use portcullis_core::totp::{Proof, RecoveryCodes, SecondFactorStatus};
use portcullis_core::{CoreError, Field, Password, Token};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::AuthResponse;
use super::logged_in;
use crate::json::error::{ApiError, ErrorBody};
use crate::json::extract::{Authenticated, JsonBody};
use crate::json::user::{MeResponse, user_json};
use crate::shared::qr;
use crate::shared::{AppState, Client, CurrentTenant};

/// The journeys' routes, relative to `/v1`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(forgot_password))
        .routes(routes!(reset_password))
        .routes(routes!(request_verification))
        .routes(routes!(verify_email))
        .routes(routes!(resend_verification))
        .routes(routes!(request_login_link))
        .routes(routes!(login_second_factor))
        .routes(routes!(second_factor_status))
        .routes(routes!(begin_totp, disable_totp))
        .routes(routes!(confirm_totp))
        .routes(routes!(regenerate_recovery_codes))
}

/// Body of the requests by identifier: `login` (matched against username, e-mail and phone)
/// or exactly one of `username`, `email`, `phone`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentifierRequest {
    /// Username, e-mail address or phone number.
    pub login: Option<String>,
    /// Username only.
    pub username: Option<String>,
    /// E-mail address only.
    pub email: Option<String>,
    /// Phone number only.
    pub phone: Option<String>,
}

impl IdentifierRequest {
    fn identifier(&self) -> Result<&str, CoreError> {
        identifier_from_fields(
            self.login.as_deref(),
            self.username.as_deref(),
            self.email.as_deref(),
            self.phone.as_deref(),
        )
        .map_err(|m| CoreError::field(Field::Login, m))?;
        // Exactly one is given: the one to look up when the message is sent.
        [&self.login, &self.username, &self.email, &self.phone]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .find(|v| !v.trim().is_empty())
            .ok_or_else(|| CoreError::field(Field::Login, "is required"))
    }
}

/// The answer to a request by identifier, the same whether or not an account matched.
#[derive(Debug, Serialize, ToSchema)]
pub struct AcceptedResponse {
    /// Always `accepted`.
    pub status: &'static str,
    /// What to tell the person.
    pub message: &'static str,
}

fn accepted(message: &'static str) -> Response {
    (StatusCode::ACCEPTED, Json(AcceptedResponse { status: "accepted", message })).into_response()
}

/// Ask for a password reset link. The answer is the same whether or not an account matches;
/// an account with an e-mail address gets a link (valid 30 minutes unless the tenant says
/// otherwise, single-use).
#[utoipa::path(
    post, path = "/password/forgot", tag = "recovery",
    request_body = IdentifierRequest,
    responses(
        (status = 202, description = "Accepted, whether or not an account matches", body = AcceptedResponse),
        (status = 422, description = "No identifier", body = ErrorBody),
    )
)]
async fn forgot_password(
    State(st): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    client: Client,
    JsonBody(req): JsonBody<IdentifierRequest>,
) -> Result<Response, ApiError> {
    st.core.request_password_reset(tenant, req.identifier()?, &client.info).await?;
    Ok(accepted("If an account matches, a link to set a new password is on its way to its e-mail address."))
}

/// Body of `POST /v1/password/reset`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    /// The token of the reset link (`pcr_...`).
    pub token: String,
    /// The new password.
    #[schema(value_type = String, format = Password)]
    pub password: Password,
    /// The new password again, if the client asks for it.
    #[schema(value_type = Option<String>, format = Password)]
    pub password_confirmation: Option<Password>,
}

/// Set a new password with a reset link's token. Every session of the user ends and every
/// other reset link stops working; the e-mail address the link went to counts as verified.
#[utoipa::path(
    post, path = "/password/reset", tag = "recovery",
    request_body = ResetPasswordRequest,
    responses(
        (status = 200, description = "Password set; log in with it", body = MeResponse),
        (status = 400, description = "Unknown, used, expired or superseded token (one answer for every cause)", body = ErrorBody),
        (status = 422, description = "A password the policy refuses (the token stays usable)", body = ErrorBody),
    )
)]
async fn reset_password(
    State(st): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    client: Client,
    JsonBody(req): JsonBody<ResetPasswordRequest>,
) -> Result<Json<MeResponse>, ApiError> {
    let token = Token::from_client(req.token);
    let user = st.core.reset_password(tenant, &token, req.password, req.password_confirmation, &client.info).await?;
    Ok(Json(MeResponse { user: user_json(&user) }))
}

/// Ask for an e-mail verification link by identifier (for a user who cannot log in before
/// verifying). The same answer whether or not an account matches.
#[utoipa::path(
    post, path = "/email/verification", tag = "recovery",
    request_body = IdentifierRequest,
    responses(
        (status = 202, description = "Accepted, whether or not an account matches", body = AcceptedResponse),
        (status = 422, body = ErrorBody),
    )
)]
async fn request_verification(
    State(st): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    client: Client,
    JsonBody(req): JsonBody<IdentifierRequest>,
) -> Result<Response, ApiError> {
    st.core.request_verification(tenant, req.identifier()?, &client.info).await?;
    Ok(accepted("If an account with an unverified address matches, a verification link is on its way."))
}

/// Body of `POST /v1/email/verify` and `POST /v1/login/link/exchange`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The token from the link.
    pub token: String,
}

/// Verify an e-mail address with a verification link's token. A pending new address becomes
/// the login address.
#[utoipa::path(
    post, path = "/email/verify", tag = "recovery",
    request_body = TokenRequest,
    responses(
        (status = 200, description = "Verified", body = MeResponse),
        (status = 400, description = "Unknown, used, expired or superseded token", body = ErrorBody),
        (status = 409, description = "The new address was taken by another account meanwhile", body = ErrorBody),
    )
)]
async fn verify_email(
    State(st): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    client: Client,
    JsonBody(req): JsonBody<TokenRequest>,
) -> Result<Json<MeResponse>, ApiError> {
    let user = st.core.verify_email(tenant, &Token::from_client(req.token), &client.info).await?;
    Ok(Json(MeResponse { user: user_json(&user) }))
}

/// Send the signed-in user a new verification link (for a pending new address, or an
/// unverified login address). At most three links a quarter of an hour are sent.
#[utoipa::path(
    post, path = "/me/email/verification", tag = "recovery",
    responses(
        (status = 202, body = AcceptedResponse),
        (status = 401, body = ErrorBody),
        (status = 422, description = "Nothing to verify", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
async fn resend_verification(State(st): State<AppState>, a: Authenticated) -> Result<Response, ApiError> {
    st.core.resend_verification(&a.auth).await?;
    Ok(accepted("A verification link is on its way."))
}

/// Ask for a log-in link by e-mail, where the tenant allows password-less log-in
/// (`passwordless_login`). The same answer whether or not an account matches. The link's
/// token is exchanged with `POST /v1/login/token`.
#[utoipa::path(
    post, path = "/login/link", tag = "recovery",
    request_body = IdentifierRequest,
    responses(
        (status = 202, description = "Accepted, whether or not an account matches", body = AcceptedResponse),
        (status = 403, description = "The tenant does not offer log-in links", body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
async fn request_login_link(
    State(st): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    client: Client,
    JsonBody(req): JsonBody<IdentifierRequest>,
) -> Result<Response, ApiError> {
    st.core.request_login_link(tenant, req.identifier()?, &client.info).await?;
    Ok(accepted("If an account matches, a log-in link is on its way to its e-mail address."))
}

/// Body of `POST /v1/login/second-factor`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondFactorLoginRequest {
    /// The step token from the `second_factor_required` answer.
    pub step_token: String,
    /// A code from the authenticator app, or a recovery code.
    pub code: String,
}

/// Finish a log-in that answered `second_factor_required`: the step token and a code (six
/// digits from the app, or a recovery code). A wrong code leaves the step token usable until
/// it expires; guesses are limited per account.
#[utoipa::path(
    post, path = "/login/second-factor", tag = "sessions",
    request_body = SecondFactorLoginRequest,
    responses(
        (status = 200, description = "Session opened (also set as a cookie)", body = AuthResponse),
        (status = 400, description = "Unknown, used or expired step token", body = ErrorBody),
        (status = 401, description = "Wrong or used code", body = ErrorBody),
        (status = 429, description = "Too many codes tried", body = ErrorBody),
    )
)]
async fn login_second_factor(
    State(st): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    client: Client,
    JsonBody(req): JsonBody<SecondFactorLoginRequest>,
) -> Result<Response, ApiError> {
    let step = Token::from_client(req.step_token);
    let out = st.core.login_second_factor(tenant, &step, &req.code, &client.info).await?;
    Ok(logged_in(&st, &client, out))
}

/// The signed-in user's second factor.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecondFactorStatusBody {
    /// Log-ins ask for a code.
    pub enabled: bool,
    /// An enrolment waits for its first code.
    pub enrolling: bool,
    /// Unused recovery codes.
    pub recovery_codes_left: u32,
}

impl From<SecondFactorStatus> for SecondFactorStatusBody {
    fn from(s: SecondFactorStatus) -> Self {
        Self { enabled: s.enabled, enrolling: s.enrolling, recovery_codes_left: s.recovery_codes_left }
    }
}

/// Where the signed-in user stands with their second factor.
#[utoipa::path(
    get, path = "/me/second-factor", tag = "second factor",
    responses((status = 200, body = SecondFactorStatusBody), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("cookie" = []))
)]
async fn second_factor_status(
    State(st): State<AppState>,
    a: Authenticated,
) -> Result<Json<SecondFactorStatusBody>, ApiError> {
    Ok(Json(st.core.second_factor_status(&a.auth).await?.into()))
}

/// Body of `POST /v1/me/second-factor/totp`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BeginTotpRequest {
    /// The account's password (required when the account has one).
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<Password>,
}

/// A new authenticator's secret: shown once, for the app.
#[derive(Debug, Serialize, ToSchema)]
pub struct TotpEnrolmentBody {
    /// The secret in base32, to type into an app.
    pub secret: String,
    /// The `otpauth://totp/...` URI.
    pub otpauth_uri: String,
    /// The URI as a QR code, an SVG document.
    pub qr_svg: String,
}

/// Start setting up an authenticator app: a secret, its `otpauth://` URI and a QR code. Log-ins
/// do not ask for codes until a first code confirms it.
#[utoipa::path(
    post, path = "/me/second-factor/totp", tag = "second factor",
    request_body = BeginTotpRequest,
    responses(
        (status = 200, body = TotpEnrolmentBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Wrong password, or an authenticator is set up already", body = ErrorBody),
        (status = 422, description = "Password missing", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
async fn begin_totp(
    State(st): State<AppState>,
    a: Authenticated,
    body: Option<JsonBody<BeginTotpRequest>>,
) -> Result<Json<TotpEnrolmentBody>, ApiError> {
    let req = body.map(|JsonBody(b)| b).unwrap_or_default();
    let e = st.core.begin_totp(&a.auth, req.password).await?;
    let qr_svg = qr::svg(&e.uri).ok_or_else(|| ApiError::from(CoreError::Internal("QR code too long".into())))?;
    Ok(Json(TotpEnrolmentBody { secret: e.secret.to_string(), otpauth_uri: e.uri.to_string(), qr_svg }))
}

/// Body of `POST /v1/me/second-factor/totp/confirm`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmTotpRequest {
    /// The code the app shows now.
    pub code: String,
}

/// Recovery codes, shown once: each works once in place of a code from the app.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryCodesBody {
    /// The codes.
    pub recovery_codes: Vec<String>,
}

impl From<RecoveryCodes> for RecoveryCodesBody {
    fn from(c: RecoveryCodes) -> Self {
        Self { recovery_codes: c.0.iter().map(|c| c.to_string()).collect() }
    }
}

/// Confirm the authenticator with a first code. From now on log-ins ask for a code. Returns
/// ten recovery codes, shown this once.
#[utoipa::path(
    post, path = "/me/second-factor/totp/confirm", tag = "second factor",
    request_body = ConfirmTotpRequest,
    responses(
        (status = 200, body = RecoveryCodesBody),
        (status = 401, description = "Not signed in, or a wrong code", body = ErrorBody),
        (status = 422, description = "No enrolment waiting, or not a 6-digit code", body = ErrorBody),
        (status = 429, body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
async fn confirm_totp(
    State(st): State<AppState>,
    a: Authenticated,
    JsonBody(req): JsonBody<ConfirmTotpRequest>,
) -> Result<Json<RecoveryCodesBody>, ApiError> {
    Ok(Json(st.core.confirm_totp(&a.auth, &req.code).await?.into()))
}

/// Body of the changes that need proof: the password, or a code (from the app, or a recovery
/// code).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProofRequest {
    /// The account's password.
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<Password>,
    /// A code from the app, or a recovery code.
    pub code: Option<String>,
}

impl ProofRequest {
    fn proof(self) -> Result<Proof, CoreError> {
        Proof::from_fields(self.password, self.code)
    }
}

/// Turn the second factor off (the authenticator and the recovery codes go), with the
/// password or a code.
#[utoipa::path(
    delete, path = "/me/second-factor/totp", tag = "second factor",
    request_body = ProofRequest,
    responses(
        (status = 204, description = "Turned off"),
        (status = 401, description = "Not signed in, or a wrong code", body = ErrorBody),
        (status = 403, description = "Wrong password", body = ErrorBody),
        (status = 404, description = "No authenticator", body = ErrorBody),
        (status = 429, body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
async fn disable_totp(
    State(st): State<AppState>,
    a: Authenticated,
    body: Option<JsonBody<ProofRequest>>,
) -> Result<StatusCode, ApiError> {
    let req = body.map(|JsonBody(b)| b).unwrap_or_default();
    st.core.disable_totp(&a.auth, req.proof()?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replace the recovery codes (the old ones stop working), with the password or a code.
#[utoipa::path(
    post, path = "/me/second-factor/recovery-codes", tag = "second factor",
    request_body = ProofRequest,
    responses(
        (status = 200, body = RecoveryCodesBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Wrong password, or no authenticator", body = ErrorBody),
        (status = 429, body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
async fn regenerate_recovery_codes(
    State(st): State<AppState>,
    a: Authenticated,
    JsonBody(req): JsonBody<ProofRequest>,
) -> Result<Json<RecoveryCodesBody>, ApiError> {
    Ok(Json(st.core.regenerate_recovery_codes(&a.auth, req.proof()?).await?.into()))
}
