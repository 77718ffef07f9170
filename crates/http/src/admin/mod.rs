//! The admin API (`/v1/admin`, and per tenant `/t/{tenant}/v1/admin`), for servers holding an
//! API key. It speaks the JSON API's shape ([`crate::json`]: its errors are [`ApiError`], its
//! rejections [`JsonApi`](crate::json::error::JsonApi)). Each handler authenticates the key, calls one
//! core operation *as that key*, and maps the answer: which scope an operation needs, in which
//! tenant, is the core's to decide (a key of another tenant gets 401 like an unknown key; a key
//! without the scope, 403).

mod manage;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_core::admin::ListUsers;
use portcullis_core::model::UserStatus;
use portcullis_core::{CoreError, Field, FieldErrors, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::json::account_with;
use crate::json::error::{ApiError, ErrorBody};
use crate::json::extract::{JsonBody, KeyAuth, QueryParams};
use crate::json::user::{MeResponse, user_json};
use crate::shared::AppState;

/// The admin routes, relative to `/v1/admin`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(user_exists))
        .routes(routes!(get_user, update_user, delete_user))
        .routes(routes!(disable_user))
        .routes(routes!(enable_user))
        .routes(routes!(end_user_sessions))
        .routes(routes!(issue_login_token))
        .routes(routes!(send_verification))
        .routes(routes!(send_password_reset))
        .routes(routes!(reset_second_factor))
        .merge(manage::routes())
}

/// Parses a path id. Anything that is not a positive number reads as 0, an id nothing has: the
/// core still checks the caller first (403 for a key without the scope), then finds nothing
/// (404).
pub(crate) fn path_id(raw: &str) -> i64 {
    raw.parse::<i64>().ok().filter(|i| *i > 0).unwrap_or(0)
}

/// An error of the core with a parameter renamed to this API's name for it.
pub(crate) fn rename_param(e: CoreError, core_name: &'static str, wire_name: &'static str) -> CoreError {
    match e {
        CoreError::Validation(fields) => {
            let mut renamed = FieldErrors::new();
            for (f, m) in fields.iter() {
                let f = if *f == Field::Param(core_name) { Field::Param(wire_name) } else { f.clone() };
                renamed.add(f, m);
            }
            CoreError::Validation(renamed)
        }
        other => other,
    }
}

/// Parses an RFC 3339 time parameter.
pub(crate) fn time_param(name: &'static str, raw: Option<&str>, errors: &mut FieldErrors) -> Option<Timestamp> {
    let raw = raw?.trim();
    match time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339) {
        Ok(t) => Some(Timestamp::from_unix_micros((t.unix_timestamp_nanos() / 1000) as i64)),
        Err(_) => {
            errors.add(Field::Param(name), "must be an RFC 3339 time, e.g. 2026-01-31T12:00:00Z");
            None
        }
    }
}

/// Parses a positive integer parameter.
pub(crate) fn int_param(name: &'static str, raw: Option<&str>, errors: &mut FieldErrors) -> Option<i64> {
    let raw = raw?.trim();
    match raw.parse::<i64>() {
        Ok(v) if v > 0 => Some(v),
        _ => {
            errors.add(Field::Param(name), "must be a positive whole number");
            None
        }
    }
}

/// Query of `GET /v1/admin/users`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListUsersParams {
    /// Text the username, e-mail, phone or a name contains (case-insensitive).
    q: Option<String>,
    /// `active`, `pending` or `disabled`.
    status: Option<String>,
    /// Only holders of this role (by name).
    role: Option<String>,
    /// Created at or after (RFC 3339).
    created_after: Option<String>,
    /// Created before (RFC 3339).
    created_before: Option<String>,
    /// The `next` value of the previous page.
    after: Option<String>,
    /// Page size, 1 to 1000 (default 50).
    limit: Option<String>,
}

/// A page of users.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsersPage {
    /// The users, by id.
    #[schema(value_type = Vec<crate::json::user::UserBody>)]
    users: Vec<Value>,
    /// Pass as `after` for the next page; absent on the last page.
    next: Option<i64>,
}

/// List and search users.
#[utoipa::path(
    get, path = "/users", tag = "admin", params(ListUsersParams),
    responses((status = 200, body = UsersPage), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = []))
)]
async fn list_users(
    State(st): State<AppState>,
    key: KeyAuth,
    QueryParams(p): QueryParams<ListUsersParams>,
) -> Result<Json<UsersPage>, ApiError> {
    let mut errors = FieldErrors::new();
    let status = p.status.as_deref().and_then(|s| {
        let st = UserStatus::parse(s);
        if st.is_none() {
            errors.add(Field::Status, "must be active, pending or disabled");
        }
        st
    });
    let created_after = time_param("created_after", p.created_after.as_deref(), &mut errors);
    let created_before = time_param("created_before", p.created_before.as_deref(), &mut errors);
    let after = int_param("after", p.after.as_deref(), &mut errors).map(UserId);
    let limit = int_param("limit", p.limit.as_deref(), &mut errors).unwrap_or(50);
    let limit = u32::try_from(limit).unwrap_or(u32::MAX);
    let f =
        ListUsers { search: p.q, status, role: p.role, created_after, created_before, after, limit, problems: errors };
    // The core calls the search text `search`; this API calls it `q`.
    let users = st.core.list_users(&key.caller, key.tenant, f).await.map_err(|e| rename_param(e, "search", "q"))?;
    let next = if users.len() == limit as usize { users.last().map(|u| u.id.0) } else { None };
    Ok(Json(UsersPage { users: users.iter().map(user_json).collect(), next }))
}

/// Create a user with any profile field, roles (by name), attributes, `status`,
/// `email_verified` and an optional `password`, validated as sign-up validates.
#[utoipa::path(
    post, path = "/users", tag = "admin",
    request_body(content = Object, description = "Fields as in sign-up, plus roles, status, email_verified"),
    responses((status = 201, body = MeResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = []))
)]
async fn create_user(
    State(st): State<AppState>,
    key: KeyAuth,
    JsonBody(fields): JsonBody<Map<String, Value>>,
) -> Result<Response, ApiError> {
    let (account, [password]) = account_with(fields, [Field::Password]);
    let user = st.core.create_user(&key.caller, key.tenant, account, password).await?;
    Ok((StatusCode::CREATED, Json(MeResponse { user: user_json(&user) })).into_response())
}

/// Query of `GET /v1/admin/users/exists`: exactly one of them.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExistsParams {
    /// Username.
    username: Option<String>,
    /// E-mail address.
    email: Option<String>,
    /// Phone number.
    phone: Option<String>,
    /// Any of them, as a log-in would match it.
    login: Option<String>,
}

/// Whether an identifier is taken.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExistsResponse {
    /// Whether a user of this tenant has it.
    exists: bool,
}

/// Check whether a username, e-mail address or phone number is taken.
#[utoipa::path(
    get, path = "/users/exists", tag = "admin", params(ExistsParams),
    responses((status = 200, body = ExistsResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = []))
)]
async fn user_exists(
    State(st): State<AppState>,
    key: KeyAuth,
    QueryParams(p): QueryParams<ExistsParams>,
) -> Result<Json<ExistsResponse>, ApiError> {
    let fields = [p.login.as_deref(), p.username.as_deref(), p.email.as_deref(), p.phone.as_deref()];
    let exists = st.core.identifier_exists(&key.caller, key.tenant, fields).await?;
    Ok(Json(ExistsResponse { exists }))
}

/// Read a user.
#[utoipa::path(
    get, path = "/users/{id}", tag = "admin", params(("id" = i64, Path)),
    responses((status = 200, body = MeResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
async fn get_user(
    State(st): State<AppState>,
    key: KeyAuth,
    Path(id): Path<String>,
) -> Result<Json<MeResponse>, ApiError> {
    let user = st.core.user(&key.caller, key.tenant, UserId(path_id(&id))).await?;
    Ok(Json(MeResponse { user: user_json(&user) }))
}

/// Change a user: any profile field, identifiers, attributes, `roles` (replaces them),
/// `status`, `email_verified`, `password` (ends every session of the user).
#[utoipa::path(
    patch, path = "/users/{id}", tag = "admin", params(("id" = i64, Path)),
    request_body(content = Object, description = "Any subset of the user's fields; null clears a field"),
    responses((status = 200, body = MeResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = []))
)]
async fn update_user(
    State(st): State<AppState>,
    key: KeyAuth,
    Path(id): Path<String>,
    JsonBody(fields): JsonBody<Map<String, Value>>,
) -> Result<Json<MeResponse>, ApiError> {
    let id = UserId(path_id(&id));
    let (account, [password]) = account_with(fields, [Field::Password]);
    let user = st.core.update_user(&key.caller, key.tenant, id, account, password).await?;
    Ok(Json(MeResponse { user: user_json(&user) }))
}

/// Delete a user with everything they own; their sessions end.
#[utoipa::path(
    delete, path = "/users/{id}", tag = "admin", params(("id" = i64, Path)),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
async fn delete_user(State(st): State<AppState>, key: KeyAuth, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    st.core.delete_user(&key.caller, key.tenant, UserId(path_id(&id))).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Disable a user: they cannot log in, and every session of theirs ends.
#[utoipa::path(
    post, path = "/users/{id}/disable", tag = "admin", params(("id" = i64, Path)),
    responses((status = 200, body = MeResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
async fn disable_user(
    State(st): State<AppState>,
    key: KeyAuth,
    Path(id): Path<String>,
) -> Result<Json<MeResponse>, ApiError> {
    let user = st.core.set_user_disabled(&key.caller, key.tenant, UserId(path_id(&id)), true).await?;
    Ok(Json(MeResponse { user: user_json(&user) }))
}

/// Enable a disabled user.
#[utoipa::path(
    post, path = "/users/{id}/enable", tag = "admin", params(("id" = i64, Path)),
    responses((status = 200, body = MeResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
async fn enable_user(
    State(st): State<AppState>,
    key: KeyAuth,
    Path(id): Path<String>,
) -> Result<Json<MeResponse>, ApiError> {
    let user = st.core.set_user_disabled(&key.caller, key.tenant, UserId(path_id(&id)), false).await?;
    Ok(Json(MeResponse { user: user_json(&user) }))
}

/// How many sessions ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionsEnded {
    /// The count.
    sessions_ended: u64,
}

/// End every session of a user.
#[utoipa::path(
    delete, path = "/users/{id}/sessions", tag = "admin", params(("id" = i64, Path)),
    responses((status = 200, body = SessionsEnded), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
async fn end_user_sessions(
    State(st): State<AppState>,
    key: KeyAuth,
    Path(id): Path<String>,
) -> Result<Json<SessionsEnded>, ApiError> {
    let n = st.core.end_user_sessions(&key.caller, key.tenant, UserId(path_id(&id))).await?;
    Ok(Json(SessionsEnded { sessions_ended: n }))
}

/// A one-time log-in token, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginTokenResponse {
    /// The token (`pcl_...`): exchange it with `POST /v1/login/token` (per tenant:
    /// `/t/{tenant}/v1/login/token`) within ten minutes; it works once.
    token: String,
    /// When it stops working.
    #[schema(value_type = String, format = DateTime)]
    expires_at: Timestamp,
}

/// Issue a one-time log-in token for a user (random, single-use, valid ten minutes).
#[utoipa::path(
    post, path = "/users/{id}/login-token", tag = "admin", params(("id" = i64, Path)),
    responses((status = 201, body = LoginTokenResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
async fn issue_login_token(
    State(st): State<AppState>,
    key: KeyAuth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let t = st.core.issue_login_token(&key.caller, key.tenant, UserId(path_id(&id))).await?;
    let body = LoginTokenResponse { token: t.token.expose().to_owned(), expires_at: t.expires_at };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// A message was queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueuedResponse {
    /// Always `queued`: the message leaves with the next delivery round.
    status: &'static str,
}

/// Send a user an e-mail verification link (for their pending new address, or their
/// unverified login address).
#[utoipa::path(
    post, path = "/users/{id}/send-verification", tag = "admin", params(("id" = i64, Path)),
    responses(
        (status = 202, body = QueuedResponse),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, description = "The user has no unverified address", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
async fn send_verification(
    State(st): State<AppState>,
    key: KeyAuth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    st.core.send_verification(&key.caller, key.tenant, UserId(path_id(&id))).await?;
    Ok((StatusCode::ACCEPTED, Json(QueuedResponse { status: "queued" })).into_response())
}

/// Send a user a password reset link (to their e-mail address).
#[utoipa::path(
    post, path = "/users/{id}/send-password-reset", tag = "admin", params(("id" = i64, Path)),
    responses(
        (status = 202, body = QueuedResponse),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, description = "The user has no e-mail address", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
async fn send_password_reset(
    State(st): State<AppState>,
    key: KeyAuth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    st.core.send_password_reset(&key.caller, key.tenant, UserId(path_id(&id))).await?;
    Ok((StatusCode::ACCEPTED, Json(QueuedResponse { status: "queued" })).into_response())
}

/// Remove a user's second factor (authenticator and recovery codes), for a user who lost
/// both. Audited as `second_factor.reset`.
#[utoipa::path(
    delete, path = "/users/{id}/second-factor", tag = "admin", params(("id" = i64, Path)),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "No such user, or no second factor", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
async fn reset_second_factor(
    State(st): State<AppState>,
    key: KeyAuth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if st.core.reset_second_factor(&key.caller, key.tenant, UserId(path_id(&id))).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}
