//! The native JSON API (`/v1`). Handlers are thin: extract, call one core operation, map the
//! result. Every error leaves through [`ApiError`]; the shared layer's rejections through
//! [`crate::json::error::JsonApi`], in the same shape.

pub mod avatar;
pub mod dto;
pub mod journeys;
pub mod ops;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::accounts::SignupCommand;
use portcullis_core::login::{LoginCommand, LoginOutcome, SecondFactorRequired};
use portcullis_core::totp::Proof;
use portcullis_core::{AccountInput, CoreError, Field, SessionId};
use serde_json::{Map, Value};
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use self::dto::{
    AuthResponse, ChangePasswordRequest, DeleteMeRequest, IssuedSessionBody, LoginRequest, LoginTokenRequest,
    LogoutAllResponse, ProfilePatchBody, SecondFactorBody, SessionBody, SessionResponse, SessionsResponse, SignupBody,
    VerifyRequest, VerifyResponse,
};
use crate::json::account_with;
use crate::json::error::{ApiError, ErrorBody};
use crate::json::extract::{Authenticated, JsonBody, KeyAuth};
use crate::json::user::{MeResponse, user_json};
use crate::shared::cookies::set_session_cookie;
use crate::shared::{AppState, Client, CurrentTenant};

/// The API description: every path of the native and admin APIs and the probes.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Portcullis native API",
        description = "Accounts, passwords and sessions. Every path also exists per tenant as /t/{tenant}/..., and for a request whose Host is a domain of a tenant. Errors always have the shape {\"error\": {\"code\", \"message\", \"fields\"}}."
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "accounts", description = "Sign-up and the user's own account"),
        (name = "sessions", description = "Log-in, log-out and sessions"),
        (name = "operations", description = "Health and readiness"),
        (name = "recovery", description = "Forgotten passwords, e-mail verification and log-in links"),
        (name = "second factor", description = "The user's authenticator app and recovery codes"),
        (name = "servers", description = "Credential checks for servers holding an API key"),
        (name = "admin", description = "Users, roles, attributes, keys and the audit log, for servers holding an API key with the right scope"),
        (name = "tenants", description = "Tenants, for operator keys"),
    )
)]
pub struct ApiDoc;

#[derive(Debug)]
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key, pck_..., with the scope the endpoint names"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("portcullis_session"))),
        );
    }
}

/// The routes of the native API, relative to `/v1`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(signup))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(logout_all))
        .routes(routes!(current_session))
        .routes(routes!(list_sessions))
        .routes(routes!(revoke_session))
        .routes(routes!(me, update_me, delete_me))
        .routes(routes!(change_password))
        .routes(routes!(login_with_token))
        .routes(routes!(verify_credentials))
        .merge(journeys::routes())
        .merge(avatar::routes())
}

/// Sign up and log in.
#[utoipa::path(
    post, path = "/signup", tag = "accounts",
    request_body = SignupBody,
    responses(
        (status = 201, description = "Account created, session opened (also set as a cookie)", body = AuthResponse),
        (status = 403, description = "Sign-up closed, or a field the user may not set", body = ErrorBody),
        (status = 409, description = "Username, e-mail or phone already taken", body = ErrorBody),
        (status = 422, description = "Invalid fields or a password the policy refuses", body = ErrorBody),
        (status = 503, description = "Busy: retry after the Retry-After delay", body = ErrorBody),
    )
)]
async fn signup(
    State(st): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    client: Client,
    JsonBody(fields): JsonBody<Map<String, Value>>,
) -> Result<Response, ApiError> {
    let (account, [password, password_confirmation]) =
        account_with(fields, [Field::Password, Field::PasswordConfirmation]);
    let out = st
        .core
        .signup(tenant, SignupCommand { account, password, password_confirmation, no_session: false }, &client.info)
        .await?;
    let body = AuthResponse { user: user_json(&out.user), session: out.session.as_ref().map(IssuedSessionBody::from) };
    let mut res = (StatusCode::CREATED, Json(body)).into_response();
    // The account's address under the tenant the sign-up was made at (`/t/{slug}/v1/me`).
    if let Ok(location) = HeaderValue::from_str(&format!("{}v1/me", client.cookie_path)) {
        res.headers_mut().insert(header::LOCATION, location);
    }
    if let Some(s) = &out.session {
        set_session_cookie(&st, &client, &mut res, Some(s));
    }
    Ok(res)
}

/// Log in with a username, e-mail address or phone number and a password.
#[utoipa::path(
    post, path = "/login", tag = "sessions",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Session opened (also set as a cookie)", body = AuthResponse),
        (status = 401, description = "Wrong login or password (one answer for every cause); or, after a right password, `second_factor_required` with a step token for `POST /v1/login/second-factor`, or `second_factor_invalid` for a wrong code sent along", body = ErrorBody),
        (status = 403, description = "Right password, but the account is disabled or its e-mail unverified", body = ErrorBody),
        (status = 422, description = "Missing login or password", body = ErrorBody),
        (status = 429, description = "Too many attempts", body = ErrorBody),
        (status = 503, description = "Busy: retry after the Retry-After delay", body = ErrorBody),
    )
)]
async fn login(
    State(st): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    client: Client,
    JsonBody(req): JsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    let cmd = LoginCommand::from_fields(
        req.login.as_deref(),
        req.username.as_deref(),
        req.email.as_deref(),
        req.phone.as_deref(),
        req.password,
    )?;
    let cmd = LoginCommand { second_factor: req.second_factor, ..cmd };
    let out = st.core.login(tenant, cmd, &client.info).await?;
    Ok(logged_in(&st, &client, out))
}

/// The answer to a proven credential: the user and the new session, also set as a cookie; or
/// the step a second factor needs.
pub(crate) fn logged_in(st: &AppState, client: &Client, outcome: LoginOutcome) -> Response {
    match outcome {
        LoginOutcome::LoggedIn { user, session } => {
            let body = AuthResponse { user: user_json(&user), session: Some(IssuedSessionBody::from(&session)) };
            let mut res = Json(body).into_response();
            set_session_cookie(st, client, &mut res, Some(&session));
            res
        }
        LoginOutcome::SecondFactorRequired(step) => second_factor_required(&step),
    }
}

/// 401 `second_factor_required`, in the error shape, with the step token that the follow-up
/// presents with a code.
fn second_factor_required(step: &SecondFactorRequired) -> Response {
    let body = serde_json::json!({
        "error": {
            "code": "second_factor_required",
            "message": "The password is right; this account needs a second factor to log in.",
        },
        "second_factor": SecondFactorBody::new(step),
    });
    (StatusCode::UNAUTHORIZED, Json(body)).into_response()
}

/// Exchange a one-time log-in token (issued through the admin API) for a session. The token
/// works once and for ten minutes.
#[utoipa::path(
    post, path = "/login/token", tag = "sessions",
    request_body = LoginTokenRequest,
    responses(
        (status = 200, description = "Session opened (also set as a cookie)", body = AuthResponse),
        (status = 401, description = "Unknown, used or expired token (one answer for every cause)", body = ErrorBody),
        (status = 403, description = "The account is disabled or its e-mail unverified", body = ErrorBody),
    )
)]
async fn login_with_token(
    State(st): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    client: Client,
    JsonBody(req): JsonBody<LoginTokenRequest>,
) -> Result<Response, ApiError> {
    let token = portcullis_core::Token::from_client(req.token);
    let out = st.core.login_with_token(tenant, &token, &client.info).await?;
    Ok(logged_in(&st, &client, out))
}

/// Check a user's login and password, for servers (API key with `credentials:verify`).
/// Always 200 with `valid`; an invalid answer is the same for every cause, except that once the
/// password is known to be right it says `email_not_verified` or `account_disabled`.
#[utoipa::path(
    post, path = "/credentials/verify", tag = "servers",
    request_body = VerifyRequest,
    responses(
        (status = 200, body = VerifyResponse),
        (status = 401, description = "Missing, unknown or revoked API key, or a key of another tenant", body = ErrorBody),
        (status = 403, description = "The key lacks credentials:verify", body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("api_key" = []))
)]
async fn verify_credentials(
    State(st): State<AppState>,
    key: KeyAuth,
    JsonBody(req): JsonBody<VerifyRequest>,
) -> Result<Json<VerifyResponse>, ApiError> {
    let (cmd, return_user) = req.into_command();
    let invalid = |reason| VerifyResponse {
        valid: false,
        reason: Some(reason),
        user_id: None,
        user: None,
        session: None,
        second_factor: None,
    };
    match st.core.verify_credentials(&key.caller, key.tenant, cmd).await {
        Ok(LoginOutcome::LoggedIn { user, session }) => Ok(Json(VerifyResponse {
            valid: true,
            reason: None,
            user_id: Some(user.id.0),
            user: return_user.then(|| user_json(&user)),
            session: session.as_ref().map(IssuedSessionBody::from),
            second_factor: None,
        })),
        Ok(LoginOutcome::SecondFactorRequired(step)) => Ok(Json(VerifyResponse {
            second_factor: Some(SecondFactorBody::new(&step)),
            ..invalid("second_factor_required")
        })),
        Err(CoreError::SecondFactorInvalid) => Ok(Json(invalid("second_factor_invalid"))),
        Err(CoreError::InvalidCredentials) => Ok(Json(invalid("invalid_credentials"))),
        Err(CoreError::EmailNotVerified) => Ok(Json(invalid("email_not_verified"))),
        Err(CoreError::AccountDisabled) => Ok(Json(invalid("account_disabled"))),
        Err(other) => Err(other.into()),
    }
}

/// End this session.
#[utoipa::path(
    post, path = "/logout", tag = "sessions",
    responses((status = 204, description = "Session ended, cookie cleared"), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("cookie" = []))
)]
async fn logout(State(st): State<AppState>, client: Client, a: Authenticated) -> Result<Response, ApiError> {
    st.core.logout(&a.auth).await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    set_session_cookie(&st, &client, &mut res, None);
    Ok(res)
}

/// End every session of this user, this one included.
#[utoipa::path(
    post, path = "/logout/all", tag = "sessions",
    responses((status = 200, body = LogoutAllResponse), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("cookie" = []))
)]
async fn logout_all(State(st): State<AppState>, client: Client, a: Authenticated) -> Result<Response, ApiError> {
    let n = st.core.logout_all(&a.auth).await?;
    let mut res = Json(LogoutAllResponse { sessions_ended: n }).into_response();
    set_session_cookie(&st, &client, &mut res, None);
    Ok(res)
}

/// Check a session: the session making the request, if it is valid.
#[utoipa::path(
    get, path = "/session", tag = "sessions",
    responses((status = 200, body = SessionResponse), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("cookie" = []))
)]
async fn current_session(a: Authenticated) -> Json<SessionResponse> {
    Json(SessionResponse { session: SessionBody::new(&a.auth.session, true) })
}

/// This user's live sessions.
#[utoipa::path(
    get, path = "/sessions", tag = "sessions",
    responses((status = 200, body = SessionsResponse), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("cookie" = []))
)]
async fn list_sessions(State(st): State<AppState>, a: Authenticated) -> Result<Json<SessionsResponse>, ApiError> {
    let all = st.core.list_sessions(&a.auth).await?;
    let current = a.auth.session.id;
    Ok(Json(SessionsResponse { sessions: all.iter().map(|s| SessionBody::new(s, s.id == current)).collect() }))
}

/// End one of this user's sessions.
#[utoipa::path(
    delete, path = "/sessions/{id}", tag = "sessions",
    params(("id" = i64, Path, description = "Session id")),
    responses((status = 204, description = "Ended"), (status = 401, body = ErrorBody), (status = 404, description = "Not a session of this user", body = ErrorBody)),
    security(("bearer" = []), ("cookie" = []))
)]
async fn revoke_session(
    State(st): State<AppState>,
    a: Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: i64 = id.parse().map_err(|_| ApiError::not_found())?;
    st.core.revoke_session(&a.auth, SessionId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// This user's account.
#[utoipa::path(
    get, path = "/me", tag = "accounts",
    responses((status = 200, body = MeResponse), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("cookie" = []))
)]
async fn me(State(st): State<AppState>, a: Authenticated) -> Result<Json<MeResponse>, ApiError> {
    let user = st.core.me(&a.auth).await?;
    Ok(Json(MeResponse { user: user_json(&user) }))
}

/// Change fields of this user's account. A field the user may not change is refused (403),
/// never silently dropped; `null` clears a field. A new phone is unverified; a new e-mail
/// address waits in `pending_email` until the link mailed to it is followed, and needs
/// `current_password` (or `second_factor`, a code, for an account with a second factor).
#[utoipa::path(
    patch, path = "/me", tag = "accounts",
    request_body = ProfilePatchBody,
    responses(
        (status = 200, body = MeResponse),
        (status = 401, body = ErrorBody),
        (status = 403, description = "A field the user may not change", body = ErrorBody),
        (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
async fn update_me(
    State(st): State<AppState>,
    a: Authenticated,
    JsonBody(mut fields): JsonBody<Map<String, Value>>,
) -> Result<Json<MeResponse>, ApiError> {
    // What confirms a new e-mail address travels with the fields.
    let mut text = |k: &str| match fields.remove(k) {
        Some(Value::String(v)) => Ok(Some(v)),
        None | Some(Value::Null) => Ok(None),
        Some(_) => Err(CoreError::field(
            Field::Param(if k == "current_password" { "current_password" } else { "second_factor" }),
            "must be a string",
        )),
    };
    let password = text("current_password")?;
    let code = text("second_factor")?;
    let proof = match (password, code) {
        (None, None) => None,
        (p, c) => Some(Proof::from_fields(p.map(portcullis_core::Password::new), c)?),
    };
    let user = st.core.update_me(&a.auth, AccountInput::from_json(fields), proof).await?;
    Ok(Json(MeResponse { user: user_json(&user) }))
}

/// Delete this user's account (the current password, or a second-factor code, confirms it).
/// Every session ends.
#[utoipa::path(
    delete, path = "/me", tag = "accounts",
    request_body = DeleteMeRequest,
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody), (status = 403, description = "Wrong password", body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = []), ("cookie" = []))
)]
async fn delete_me(
    State(st): State<AppState>,
    client: Client,
    a: Authenticated,
    body: Option<JsonBody<DeleteMeRequest>>,
) -> Result<Response, ApiError> {
    let req = body.map(|JsonBody(b)| b).unwrap_or_default();
    let proof = match (req.password, req.code) {
        (None, None) => None,
        (p, c) => Some(Proof::from_fields(p, c)?),
    };
    st.core.delete_me(&a.auth, proof).await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    set_session_cookie(&st, &client, &mut res, None);
    Ok(res)
}

/// Change this user's password. Every other session of theirs ends; this one stays.
#[utoipa::path(
    post, path = "/me/password", tag = "accounts",
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Changed"),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Wrong current password", body = ErrorBody),
        (status = 422, description = "The new password is refused by policy", body = ErrorBody),
        (status = 429, body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
async fn change_password(
    State(st): State<AppState>,
    a: Authenticated,
    JsonBody(req): JsonBody<ChangePasswordRequest>,
) -> Result<StatusCode, ApiError> {
    st.core.change_password(&a.auth, req.current_password, req.new_password, req.new_password_confirmation).await?;
    Ok(StatusCode::NO_CONTENT)
}
