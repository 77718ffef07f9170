//! The tenant's own settings in the admin API: roles, custom attribute definitions, API keys,
//! the audit log, the password-scheme report; and, for operator keys, the tenants.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_core::keys::CreateApiKeyCommand;
use portcullis_core::model::{
    ApiKey, AttributeDefinition, AttributeKind, AuditEvent, Role, Scope, Tenant, TenantPolicy,
};
use portcullis_core::settings::DefineAttribute;
use portcullis_core::store::{AuditQuery, TenantUpdate};
use portcullis_core::tenants::CreateTenantCommand;
use portcullis_core::{ApiKeyId, AttributeId, AuditEventId, Dialect, Field, FieldErrors, RoleId, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{int_param, path_id, time_param};
use crate::json::error::{ApiError, ErrorBody};
use crate::json::extract::{JsonBody, KeyAuth, QueryParams};
use crate::shared::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_roles, create_role))
        .routes(routes!(delete_role))
        .routes(routes!(list_attributes, create_attribute))
        .routes(routes!(update_attribute, delete_attribute))
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
        .routes(routes!(audit_log))
        .routes(routes!(password_schemes))
        .routes(routes!(list_tenants, create_tenant))
        .routes(routes!(get_tenant, update_tenant))
        .routes(routes!(enable_dialect, disable_dialect))
}

/// A role.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Role)]
pub struct RoleBody {
    id: i64,
    name: String,
    description: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
}

impl From<&Role> for RoleBody {
    fn from(r: &Role) -> Self {
        Self { id: r.id.0, name: r.name.clone(), description: r.description.clone(), created_at: r.created_at }
    }
}

/// The tenant's roles.
#[derive(Debug, Serialize, ToSchema)]
pub struct RolesResponse {
    roles: Vec<RoleBody>,
}

/// Body of `POST /v1/admin/roles`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRoleRequest {
    /// Unique in the tenant (case-insensitively), 1 to 64 characters.
    name: String,
    /// What it is for.
    description: Option<String>,
}

/// List the tenant's roles.
#[utoipa::path(get, path = "/roles", tag = "admin",
    responses((status = 200, body = RolesResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
async fn list_roles(State(st): State<AppState>, key: KeyAuth) -> Result<Json<RolesResponse>, ApiError> {
    let roles = st.core.list_roles(&key.caller, key.tenant).await?;
    Ok(Json(RolesResponse { roles: roles.iter().map(RoleBody::from).collect() }))
}

/// Define a role (tenant:admin).
#[utoipa::path(post, path = "/roles", tag = "admin", request_body = CreateRoleRequest,
    responses((status = 201, body = RoleBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
async fn create_role(
    State(st): State<AppState>,
    key: KeyAuth,
    JsonBody(req): JsonBody<CreateRoleRequest>,
) -> Result<Response, ApiError> {
    let role = st.core.create_role(&key.caller, key.tenant, &req.name, req.description.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(RoleBody::from(&role))).into_response())
}

/// Delete a role; its holders lose it (tenant:admin).
#[utoipa::path(delete, path = "/roles/{id}", tag = "admin", params(("id" = i64, Path)),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
async fn delete_role(State(st): State<AppState>, key: KeyAuth, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    st.core.delete_role(&key.caller, key.tenant, RoleId(path_id(&id))).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A custom attribute definition.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AttributeDefinition)]
pub struct AttributeBody {
    id: i64,
    name: String,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    kind: &'static str,
    required: bool,
    user_editable: bool,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
}

impl From<&AttributeDefinition> for AttributeBody {
    fn from(d: &AttributeDefinition) -> Self {
        Self {
            id: d.id.0,
            name: d.name.clone(),
            kind: d.kind.as_str(),
            required: d.required,
            user_editable: d.user_editable,
            created_at: d.created_at,
        }
    }
}

/// The tenant's attribute definitions.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttributesResponse {
    attributes: Vec<AttributeBody>,
}

/// Body of `POST /v1/admin/attributes`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAttributeRequest {
    /// 1 to 64 letters, digits, `_` or `-`, starting with a letter.
    name: String,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    kind: String,
    /// Whether every new user must have a value.
    #[serde(default)]
    required: bool,
    /// Whether users may set it themselves.
    #[serde(default)]
    user_editable: bool,
}

/// List the tenant's custom attribute definitions.
#[utoipa::path(get, path = "/attributes", tag = "admin",
    responses((status = 200, body = AttributesResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
async fn list_attributes(State(st): State<AppState>, key: KeyAuth) -> Result<Json<AttributesResponse>, ApiError> {
    let defs = st.core.list_attributes(&key.caller, key.tenant).await?;
    Ok(Json(AttributesResponse { attributes: defs.iter().map(AttributeBody::from).collect() }))
}

/// Define a custom attribute (tenant:admin).
#[utoipa::path(post, path = "/attributes", tag = "admin", request_body = CreateAttributeRequest,
    responses((status = 201, body = AttributeBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
async fn create_attribute(
    State(st): State<AppState>,
    key: KeyAuth,
    JsonBody(req): JsonBody<CreateAttributeRequest>,
) -> Result<Response, ApiError> {
    let mut problems = FieldErrors::new();
    let kind = AttributeKind::parse(&req.kind).unwrap_or_else(|| {
        problems.add(Field::Param("kind"), "must be string, integer, number, boolean or date");
        AttributeKind::String
    });
    let def =
        DefineAttribute { name: req.name, kind, required: req.required, user_editable: req.user_editable, problems };
    let d = st.core.define_attribute(&key.caller, key.tenant, def).await?;
    Ok((StatusCode::CREATED, Json(AttributeBody::from(&d))).into_response())
}

/// Body of `PATCH /v1/admin/attributes/{id}`. The type cannot change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAttributeRequest {
    /// Whether every new user must have a value.
    required: Option<bool>,
    /// Whether users may set it themselves.
    user_editable: Option<bool>,
}

/// Change whether a custom attribute is required or user-editable (tenant:admin).
#[utoipa::path(patch, path = "/attributes/{id}", tag = "admin", params(("id" = i64, Path)), request_body = UpdateAttributeRequest,
    responses((status = 200, body = AttributeBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
async fn update_attribute(
    State(st): State<AppState>,
    key: KeyAuth,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<UpdateAttributeRequest>,
) -> Result<Json<AttributeBody>, ApiError> {
    let id = AttributeId(path_id(&id));
    let d = st.core.update_attribute(&key.caller, key.tenant, id, req.required, req.user_editable).await?;
    Ok(Json(AttributeBody::from(&d)))
}

/// Delete a custom attribute with every value of it (tenant:admin).
#[utoipa::path(delete, path = "/attributes/{id}", tag = "admin", params(("id" = i64, Path)),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
async fn delete_attribute(
    State(st): State<AppState>,
    key: KeyAuth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    st.core.delete_attribute(&key.caller, key.tenant, AttributeId(path_id(&id))).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An API key (never its secret).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ApiKey)]
pub struct KeyBody {
    id: i64,
    name: String,
    /// The key's first characters, to recognise it.
    prefix: String,
    scopes: Vec<&'static str>,
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    last_used_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    revoked_at: Option<Timestamp>,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
}

impl From<&ApiKey> for KeyBody {
    fn from(k: &ApiKey) -> Self {
        Self {
            id: k.id.0,
            name: k.name.clone(),
            prefix: k.prefix.clone(),
            scopes: k.scopes.iter().map(|s| s.as_str()).collect(),
            expires_at: k.expires_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
            created_at: k.created_at,
        }
    }
}

/// The tenant's API keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeysResponse {
    keys: Vec<KeyBody>,
}

/// Body of `POST /v1/admin/keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// What the key is for.
    name: String,
    /// Any of `credentials:verify`, `users:read`, `users:manage`, `tenant:admin`.
    scopes: Vec<String>,
    /// When it stops working (RFC 3339); never when absent.
    expires_at: Option<String>,
}

/// A key just created: `key` is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    /// The secret: send it as `Authorization: Bearer <key>`.
    key: String,
    #[serde(flatten)]
    record: KeyBody,
}

/// List the tenant's API keys (tenant:admin).
#[utoipa::path(get, path = "/keys", tag = "admin",
    responses((status = 200, body = KeysResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
async fn list_keys(State(st): State<AppState>, key: KeyAuth) -> Result<Json<KeysResponse>, ApiError> {
    let keys = st.core.list_api_keys(&key.caller, Some(key.tenant)).await?;
    Ok(Json(KeysResponse { keys: keys.iter().map(KeyBody::from).collect() }))
}

/// Create an API key for the tenant (tenant:admin). The secret is in the answer, once.
#[utoipa::path(post, path = "/keys", tag = "admin", request_body = CreateKeyRequest,
    responses((status = 201, body = CreatedKey), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
async fn create_key(
    State(st): State<AppState>,
    key: KeyAuth,
    JsonBody(req): JsonBody<CreateKeyRequest>,
) -> Result<Response, ApiError> {
    let mut errors = FieldErrors::new();
    let mut scopes = Vec::new();
    for s in &req.scopes {
        match Scope::parse(s) {
            Some(sc) => scopes.push(sc),
            None => errors.add(
                Field::Param("scopes"),
                "unknown scope (credentials:verify, users:read, users:manage, tenant:admin)",
            ),
        }
    }
    let expires_at = time_param("expires_at", req.expires_at.as_deref(), &mut errors);
    let cmd = CreateApiKeyCommand { tenant: Some(key.tenant), name: req.name, scopes, expires_at, problems: errors };
    let issued = st.core.create_api_key(&key.caller, cmd).await?;
    let body = CreatedKey { key: issued.key.expose().to_owned(), record: KeyBody::from(&issued.record) };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Revoke one of the tenant's API keys (tenant:admin).
#[utoipa::path(delete, path = "/keys/{id}", tag = "admin", params(("id" = i64, Path)),
    responses((status = 204, description = "Revoked"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
async fn revoke_key(State(st): State<AppState>, key: KeyAuth, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    st.core.revoke_api_key(&key.caller, Some(key.tenant), ApiKeyId(path_id(&id))).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Query of `GET /v1/admin/audit`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only events about this user.
    user_id: Option<String>,
    /// Only this action, or actions under it (`login` matches `login.failed`).
    action: Option<String>,
    /// Only events by this actor (`user:7`, `key:3`, `cli`, `anonymous`).
    actor: Option<String>,
    /// At or after (RFC 3339).
    since: Option<String>,
    /// Before (RFC 3339).
    until: Option<String>,
    /// The `next` value of the previous page.
    before: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    limit: Option<String>,
}

/// A page of the audit log, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    #[schema(value_type = Vec<Object>)]
    events: Vec<Value>,
    /// Pass as `before` for the next page; absent on the last page.
    next: Option<i64>,
}

fn audit_json(e: &AuditEvent) -> Value {
    json!({
        "id": e.id,
        "at": e.created_at,
        "tenant_id": e.tenant_id,
        "user_id": e.user_id,
        "actor": e.actor,
        "action": e.action,
        "ip": e.ip,
        "user_agent": e.user_agent,
        "details": e.details,
    })
}

/// Read the tenant's audit log (tenant:admin).
#[utoipa::path(get, path = "/audit", tag = "admin", params(AuditParams),
    responses((status = 200, body = AuditPage), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
async fn audit_log(
    State(st): State<AppState>,
    key: KeyAuth,
    QueryParams(p): QueryParams<AuditParams>,
) -> Result<Json<AuditPage>, ApiError> {
    let mut errors = FieldErrors::new();
    let q = AuditQuery {
        tenant_id: Some(key.tenant),
        user_id: int_param("user_id", p.user_id.as_deref(), &mut errors).map(UserId),
        action: p.action,
        actor: p.actor,
        since: time_param("since", p.since.as_deref(), &mut errors),
        until: time_param("until", p.until.as_deref(), &mut errors),
        before: int_param("before", p.before.as_deref(), &mut errors).map(AuditEventId),
        limit: u32::try_from(int_param("limit", p.limit.as_deref(), &mut errors).unwrap_or(100)).unwrap_or(u32::MAX),
    };
    let limit = q.limit as usize;
    let events = st.core.audit_events(&key.caller, q, errors).await?;
    let next = if events.len() == limit { events.last().map(|e| e.id.0) } else { None };
    Ok(Json(AuditPage { events: events.iter().map(audit_json).collect(), next }))
}

/// How many users are on each password hash scheme.
#[derive(Debug, Serialize, ToSchema)]
pub struct SchemesResponse {
    /// Scheme name (`argon2id`, `bcrypt`, `pbkdf2_sha256`, `phpass`, `md5_salted`, `sha1`, ...,
    /// `none` for users without a password) to count. Every scheme but `argon2id` is legacy:
    /// its users move to argon2id at their next log-in.
    #[schema(value_type = Object)]
    schemes: serde_json::Map<String, Value>,
    /// Users still on a legacy scheme.
    legacy: u64,
}

/// Count the tenant's users on each password hash scheme (tenant:admin).
#[utoipa::path(get, path = "/password-schemes", tag = "admin",
    responses((status = 200, body = SchemesResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
async fn password_schemes(State(st): State<AppState>, key: KeyAuth) -> Result<Json<SchemesResponse>, ApiError> {
    let report = st.core.password_scheme_report(&key.caller, key.tenant).await?;
    let legacy = report.iter().filter(|(k, _)| k != "argon2id" && k != "none").map(|(_, n)| n).sum();
    let schemes = report.into_iter().map(|(k, n)| (k, json!(n))).collect();
    Ok(Json(SchemesResponse { schemes, legacy }))
}

/// A tenant.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Tenant)]
pub struct TenantBody {
    id: i64,
    slug: String,
    name: String,
    domains: Vec<String>,
    /// The tenant's overrides of the server policy.
    #[schema(value_type = Object)]
    policy: TenantPolicy,
    /// The legacy dialects it answers (its own list, or the server's).
    dialects: Vec<&'static str>,
    disabled: bool,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    updated_at: Timestamp,
}

impl TenantBody {
    fn new(core: &portcullis_core::Core, t: &Tenant) -> Self {
        Self {
            id: t.id.0,
            slug: t.slug.clone(),
            name: t.name.clone(),
            domains: t.domains.clone(),
            policy: t.policy.clone(),
            dialects: core.effective_policy(t).dialects.iter().map(|d| d.name()).collect(),
            disabled: t.disabled,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// Every tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantsResponse {
    tenants: Vec<TenantBody>,
}

/// Body of `POST /v1/admin/tenants`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantRequest {
    /// 1 to 63 lower-case letters, digits or dashes, starting with a letter.
    slug: String,
    /// Display name (the slug when absent).
    name: Option<String>,
    /// Domains that resolve to the tenant.
    #[serde(default)]
    domains: Vec<String>,
    /// Policy overrides: password_min_length, password_min_score, require_username,
    /// require_email, require_phone, require_verified_email, signup_open,
    /// session_absolute_ttl_secs, session_idle_ttl_secs.
    #[serde(default)]
    #[schema(value_type = Object)]
    policy: TenantPolicy,
}

/// Body of `PATCH /v1/admin/tenants/{slug}`: any subset.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenantRequest {
    name: Option<String>,
    /// Replaces the domains.
    domains: Option<Vec<String>>,
    /// Replaces the policy overrides.
    #[schema(value_type = Option<Object>)]
    policy: Option<TenantPolicy>,
    /// A disabled tenant serves nobody (its sessions and keys stop working).
    disabled: Option<bool>,
}

/// List every tenant (operator key).
#[utoipa::path(get, path = "/tenants", tag = "tenants",
    responses((status = 200, body = TenantsResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
async fn list_tenants(State(st): State<AppState>, key: KeyAuth) -> Result<Json<TenantsResponse>, ApiError> {
    let all = st.core.list_tenants(&key.caller).await?;
    Ok(Json(TenantsResponse { tenants: all.iter().map(|t| TenantBody::new(&st.core, t)).collect() }))
}

/// Create a tenant (operator key).
#[utoipa::path(post, path = "/tenants", tag = "tenants", request_body = CreateTenantRequest,
    responses((status = 201, body = TenantBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
async fn create_tenant(
    State(st): State<AppState>,
    key: KeyAuth,
    JsonBody(req): JsonBody<CreateTenantRequest>,
) -> Result<Response, ApiError> {
    let cmd = CreateTenantCommand { slug: req.slug, name: req.name, domains: req.domains, policy: req.policy };
    let t = st.core.create_tenant(&key.caller, cmd).await?;
    Ok((StatusCode::CREATED, Json(TenantBody::new(&st.core, &t))).into_response())
}

/// Read a tenant (operator key).
#[utoipa::path(get, path = "/tenants/{slug}", tag = "tenants", params(("slug" = String, Path)),
    responses((status = 200, body = TenantBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
async fn get_tenant(
    State(st): State<AppState>,
    key: KeyAuth,
    Path(slug): Path<String>,
) -> Result<Json<TenantBody>, ApiError> {
    Ok(Json(TenantBody::new(&st.core, &st.core.find_tenant(&key.caller, &slug).await?)))
}

/// Change or disable a tenant (operator key).
#[utoipa::path(patch, path = "/tenants/{slug}", tag = "tenants", params(("slug" = String, Path)), request_body = UpdateTenantRequest,
    responses((status = 200, body = TenantBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
async fn update_tenant(
    State(st): State<AppState>,
    key: KeyAuth,
    Path(slug): Path<String>,
    JsonBody(req): JsonBody<UpdateTenantRequest>,
) -> Result<Json<TenantBody>, ApiError> {
    let t = st.core.find_tenant(&key.caller, &slug).await?;
    let u = TenantUpdate { name: req.name, domains: req.domains, policy: req.policy, disabled: req.disabled };
    let t = st.core.update_tenant(&key.caller, t.id, u).await?;
    Ok(Json(TenantBody::new(&st.core, &t)))
}

fn dialect_param(name: &str) -> Result<Dialect, ApiError> {
    name.parse::<Dialect>().map_err(|m| {
        let mut e = FieldErrors::new();
        e.add(Field::Param("dialect"), m);
        ApiError::from(portcullis_core::CoreError::Validation(e))
    })
}

/// Switch a legacy dialect on for a tenant (operator key).
#[utoipa::path(put, path = "/tenants/{slug}/dialects/{dialect}", tag = "tenants",
    params(("slug" = String, Path), ("dialect" = String, Path, description = "metrixstream, ossn, newspark, buddycloud or siberian")),
    responses((status = 200, body = TenantBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
async fn enable_dialect(
    State(st): State<AppState>,
    key: KeyAuth,
    Path((slug, dialect)): Path<(String, String)>,
) -> Result<Json<TenantBody>, ApiError> {
    set_dialect(&st, &key, &slug, &dialect, true).await
}

/// Switch a legacy dialect off for a tenant (operator key).
#[utoipa::path(delete, path = "/tenants/{slug}/dialects/{dialect}", tag = "tenants",
    params(("slug" = String, Path), ("dialect" = String, Path, description = "metrixstream, ossn, newspark, buddycloud or siberian")),
    responses((status = 200, body = TenantBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
async fn disable_dialect(
    State(st): State<AppState>,
    key: KeyAuth,
    Path((slug, dialect)): Path<(String, String)>,
) -> Result<Json<TenantBody>, ApiError> {
    set_dialect(&st, &key, &slug, &dialect, false).await
}

async fn set_dialect(
    st: &AppState,
    key: &KeyAuth,
    slug: &str,
    dialect: &str,
    on: bool,
) -> Result<Json<TenantBody>, ApiError> {
    let t = st.core.find_tenant(&key.caller, slug).await?;
    let dialect = dialect_param(dialect)?;
    let t = st.core.set_dialect(&key.caller, t.id, dialect, on).await?;
    Ok(Json(TenantBody::new(&st.core, &t)))
}
