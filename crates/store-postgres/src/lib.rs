//! The [`Store`](portcullis_core::store::Store) on PostgreSQL: for several stateless
//! Portcullis nodes sharing one database.
//!
//! - Every multi-row write is one transaction; uniqueness is enforced by unique indexes.
//! - The revocation feed is `LISTEN/NOTIFY` on the channel `portcullis_revocations`: writes that
//!   end sessions notify in their own transaction, so every node hears of it on commit.
//! - Migrations take PostgreSQL's advisory lock, so nodes starting together migrate once.

mod api_keys;
mod audit;
mod import;
mod one_time_tokens;
mod rows;
mod sessions;
mod tenants;
pub mod testing;
mod users;

use std::str::FromStr;
use std::time::Duration;

use portcullis_core::UniqueField;
use portcullis_core::clock::Timestamp;
use portcullis_core::ids::{ApiKeyId, AttributeId, RoleId, SessionId, TenantId, UserId};
use portcullis_core::model::{ApiKey, AttributeDefinition, AuditEvent, Role, Session, Tenant, User};
use portcullis_core::parse::LoginKey;
use portcullis_core::secret::TokenHash;
use portcullis_core::store::{
    AuditQuery, ConsumedToken, EndSessions, ImportOutcome, NewApiKey, NewAttributeDefinition, NewAuditEvent,
    NewOneTimeToken, NewRole, NewSession, NewTenant, NewUser, PasswordChange, RevocationFeed, StoreError, StoreResult,
    TenantUpdate, UserQuery, UserUpdate, UserWithSecret,
};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

/// The notification channel of the revocation feed.
pub const REVOCATION_CHANNEL: &str = "portcullis_revocations";

/// Connection settings.
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// Connections in the pool (per node); one of them is held by the revocation listener.
    pub max_connections: u32,
    /// How long a request waits for a free connection before the database counts as unavailable.
    pub acquire_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self { max_connections: 16, acquire_timeout: Duration::from_secs(5) }
    }
}

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl PostgresStore {
    /// Connects to `url` (`postgres://...`) and brings the schema up to date.
    pub async fn open(url: &str, options: PostgresOptions) -> StoreResult<Self> {
        let connect =
            PgConnectOptions::from_str(url).map_err(|e| StoreError::Other(Box::new(e)))?.application_name("portcullis");
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(map_err)?;
        MIGRATOR.run(&pool).await.map_err(|e| StoreError::Other(Box::new(e)))?;
        Ok(Self { pool })
    }

    /// Names of the migrations this build knows, in order.
    pub fn migration_names() -> Vec<String> {
        MIGRATOR.iter().map(|m| format!("{:04}_{}", m.version, m.description.replace(' ', "_"))).collect()
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

pub(crate) fn odt(t: Timestamp) -> time::OffsetDateTime {
    t.to_offset_date_time()
}

pub(crate) fn from_odt(t: time::OffsetDateTime) -> Timestamp {
    Timestamp::from_offset_date_time(t)
}

/// Maps a driver error onto the store's error kinds.
pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            let field = match db.constraint().unwrap_or_default() {
                "users_username_key" => UniqueField::Username,
                "users_email_key" => UniqueField::Email,
                "users_phone_key" => UniqueField::Phone,
                "tenants_slug_key" => UniqueField::Slug,
                "tenant_domains_pkey" => UniqueField::Domain,
                _ => UniqueField::Name,
            };
            StoreError::Conflict(field)
        }
        // 22021/22P05: a character the database cannot store (PostgreSQL refuses NUL in text).
        sqlx::Error::Database(db) if db.code().is_some_and(|c| c == "22021" || c == "22P05") => {
            StoreError::Invalid(db.message().to_owned())
        }
        // Deadlock or serialisation failure: the transaction was rolled back and may be retried.
        sqlx::Error::Database(db) if db.code().is_some_and(|c| c == "40P01" || c == "40001") => {
            StoreError::Unavailable(Box::new(e))
        }
        // A referenced row vanished concurrently (a user deleted while a session was opened).
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::Gone,
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed => {
            StoreError::Unavailable(Box::new(e))
        }
        // Class 08 (connection exception), 53 (insufficient resources), 57P (operator
        // intervention: shutdown, restart), 28 (the server refuses our credentials), 3D000 (the
        // database is gone): nothing the caller did, and nothing a retry later cannot fix.
        sqlx::Error::Database(db)
            if db.code().is_some_and(|c| {
                c.starts_with("08")
                    || c.starts_with("53")
                    || c.starts_with("57P")
                    || c.starts_with("28")
                    || c == "3D000"
            }) =>
        {
            StoreError::Unavailable(Box::new(e))
        }
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) | sqlx::Error::ColumnNotFound(_) => {
            StoreError::Corrupt(e.to_string())
        }
        _ => StoreError::Other(Box::new(e)),
    }
}

#[async_trait::async_trait]
impl portcullis_core::store::Store for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(map_err)?;
        Ok(())
    }

    async fn tenant(&self, id: TenantId) -> StoreResult<Option<Tenant>> {
        self.tenant_by(Some(id), None).await
    }

    async fn tenant_by_slug(&self, slug: &str) -> StoreResult<Option<Tenant>> {
        self.tenant_by(None, Some(slug)).await
    }

    async fn insert_tenant(&self, t: &NewTenant) -> StoreResult<Tenant> {
        self.insert_tenant_row(t).await
    }

    async fn insert_attribute_definition(&self, d: &NewAttributeDefinition) -> StoreResult<AttributeDefinition> {
        self.insert_attribute_row(d).await
    }

    async fn attribute_definitions(&self, tenant: TenantId) -> StoreResult<Vec<AttributeDefinition>> {
        self.attribute_rows(tenant).await
    }

    async fn insert_role(&self, r: &NewRole) -> StoreResult<Role> {
        self.insert_role_row(r).await
    }

    async fn roles(&self, tenant: TenantId) -> StoreResult<Vec<Role>> {
        self.role_rows(tenant).await
    }

    async fn insert_user(&self, u: &NewUser) -> StoreResult<User> {
        self.insert_user_rows(u).await
    }

    async fn user(&self, tenant: TenantId, id: UserId) -> StoreResult<Option<User>> {
        Ok(self.user_row(tenant, id).await?.map(|u| u.user))
    }

    async fn user_with_secret(&self, tenant: TenantId, key: &LoginKey) -> StoreResult<Option<UserWithSecret>> {
        self.user_by_key(tenant, key).await
    }

    async fn user_with_secret_by_id(&self, tenant: TenantId, id: UserId) -> StoreResult<Option<UserWithSecret>> {
        self.user_row(tenant, id).await
    }

    async fn update_user(
        &self,
        tenant: TenantId,
        id: UserId,
        u: &UserUpdate,
        now: Timestamp,
    ) -> StoreResult<Option<User>> {
        self.update_user_rows(tenant, id, u, now).await
    }

    async fn delete_user(&self, tenant: TenantId, id: UserId, _now: Timestamp) -> StoreResult<bool> {
        self.delete_user_rows(tenant, id).await
    }

    async fn set_password_hash(&self, tenant: TenantId, id: UserId, change: &PasswordChange) -> StoreResult<bool> {
        self.set_password_rows(tenant, id, change).await
    }

    async fn insert_session(&self, s: &NewSession) -> StoreResult<Option<Session>> {
        self.insert_session_row(s).await
    }

    async fn session_by_token_hash(&self, hash: &TokenHash) -> StoreResult<Option<Session>> {
        self.session_row_by_hash(hash).await
    }

    async fn sessions_of_user(&self, tenant: TenantId, user: UserId) -> StoreResult<Vec<Session>> {
        self.session_rows_of_user(tenant, user).await
    }

    async fn delete_session(&self, tenant: TenantId, user: UserId, id: SessionId, now: Timestamp) -> StoreResult<bool> {
        self.delete_session_row(tenant, user, id, now).await
    }

    async fn delete_session_by_token_hash(&self, hash: &TokenHash, now: Timestamp) -> StoreResult<bool> {
        self.delete_session_row_by_hash(hash, now).await
    }

    async fn delete_sessions_of_user(
        &self,
        tenant: TenantId,
        user: UserId,
        which: EndSessions,
        now: Timestamp,
    ) -> StoreResult<u64> {
        self.delete_session_rows_of_user(tenant, user, which, now).await
    }

    async fn touch_sessions(&self, touches: &[(SessionId, Timestamp)]) -> StoreResult<()> {
        self.touch_session_rows(touches).await
    }

    async fn delete_expired_sessions(&self, now: Timestamp, _keep_feed: Duration) -> StoreResult<u64> {
        self.delete_expired_session_rows(now).await
    }

    async fn revocations(&self) -> StoreResult<RevocationFeed> {
        self.open_feed().await
    }

    async fn tenants(&self) -> StoreResult<Vec<Tenant>> {
        self.tenant_rows().await
    }

    async fn tenant_by_domain(&self, domain: &str) -> StoreResult<Option<Tenant>> {
        self.tenant_by_domain_row(domain).await
    }

    async fn update_tenant(&self, id: TenantId, u: &TenantUpdate, now: Timestamp) -> StoreResult<Option<Tenant>> {
        self.update_tenant_rows(id, u, now).await
    }

    async fn delete_role(&self, tenant: TenantId, id: RoleId) -> StoreResult<bool> {
        self.delete_role_row(tenant, id).await
    }

    async fn delete_attribute_definition(&self, tenant: TenantId, id: AttributeId) -> StoreResult<bool> {
        self.delete_attribute_row(tenant, id).await
    }

    async fn update_attribute_definition(
        &self,
        tenant: TenantId,
        id: AttributeId,
        required: Option<bool>,
        user_editable: Option<bool>,
        now: Timestamp,
    ) -> StoreResult<Option<AttributeDefinition>> {
        self.update_attribute_row(tenant, id, required, user_editable, now).await
    }

    async fn list_users(&self, q: &UserQuery) -> StoreResult<Vec<User>> {
        self.user_rows(q).await
    }

    async fn users_with_secrets(
        &self,
        tenant: TenantId,
        after: Option<UserId>,
        limit: u32,
    ) -> StoreResult<Vec<UserWithSecret>> {
        self.user_rows_with_secrets(tenant, after, limit).await
    }

    async fn import_users(&self, users: &[NewUser]) -> StoreResult<Vec<ImportOutcome>> {
        self.import_user_rows(users).await
    }

    async fn password_schemes(&self, tenant: TenantId) -> StoreResult<Vec<(String, u64)>> {
        self.password_scheme_counts(tenant).await
    }

    async fn insert_api_key(&self, k: &NewApiKey) -> StoreResult<ApiKey> {
        self.insert_api_key_row(k).await
    }

    async fn api_key_by_hash(&self, hash: &TokenHash) -> StoreResult<Option<ApiKey>> {
        self.api_key_row_by_hash(hash).await
    }

    async fn api_keys(&self, tenant: Option<TenantId>) -> StoreResult<Vec<ApiKey>> {
        self.api_key_rows(tenant).await
    }

    async fn revoke_api_key(&self, tenant: Option<TenantId>, id: ApiKeyId, now: Timestamp) -> StoreResult<bool> {
        self.revoke_api_key_row(tenant, id, now).await
    }

    async fn touch_api_key(&self, id: ApiKeyId, now: Timestamp) -> StoreResult<()> {
        self.touch_api_key_row(id, now).await
    }

    async fn insert_one_time_token(&self, t: &NewOneTimeToken) -> StoreResult<()> {
        self.insert_one_time_token_row(t).await
    }

    async fn consume_one_time_token(
        &self,
        hash: &TokenHash,
        purpose: &str,
        now: Timestamp,
    ) -> StoreResult<Option<ConsumedToken>> {
        self.consume_one_time_token_row(hash, purpose, now).await
    }

    async fn insert_audit_events(&self, events: &[NewAuditEvent]) -> StoreResult<()> {
        self.insert_audit_event_rows(events).await
    }

    async fn audit_events(&self, q: &AuditQuery) -> StoreResult<Vec<AuditEvent>> {
        self.audit_event_rows(q).await
    }
}
