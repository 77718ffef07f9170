//! The [`Store`] on an embedded SQLite file: the default, for one node.
//!
//! - WAL journal with `synchronous=FULL`: an acknowledged write survives a power cut, not only
//!   a crash of the process. Readers never wait for the writer.
//! - Writes go through a pool of exactly one connection, so concurrent writers queue fairly in
//!   this process instead of spinning on SQLite's busy handler; other processes (the CLI) are
//!   covered by the busy timeout. Reads use a separate pool.
//! - The revocation feed is the `session_revocations` table, polled by every process.
//!
//! Nothing above this crate knows it is talking to SQLite.

mod admin;
mod rows;
mod sessions;
mod tenants;
mod users;

use std::str::FromStr;
use std::sync::Arc;
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
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

/// Connection settings.
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    /// Read connections (the writer is always one).
    pub max_readers: u32,
    /// How long a write waits for a lock held by another process.
    pub busy_timeout: Duration,
    /// How often the revocation feed is polled.
    pub revocation_poll_interval: Duration,
    /// How long a request waits for a free connection before the database counts as unavailable.
    pub acquire_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            max_readers: 4,
            busy_timeout: Duration::from_secs(5),
            revocation_poll_interval: Duration::from_millis(500),
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    // The revocation feed polls on its own connection, so a saturated read pool cannot make
    // it fail (and switch the session cache off exactly when the database is busiest).
    feed: SqlitePool,
    options: Arc<SqliteOptions>,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://path` or `sqlite:path`)
    /// and brings its schema up to date.
    pub async fn open(url: &str, options: SqliteOptions) -> StoreResult<Self> {
        let base = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Other(Box::new(e)))?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(options.busy_timeout)
            .foreign_keys(true)
            .pragma("temp_store", "memory");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(base.clone().create_if_missing(true))
            .await
            .map_err(map_err)?;
        MIGRATOR.run(&writer).await.map_err(|e| StoreError::Other(Box::new(e)))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(options.max_readers.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(base.clone().read_only(true))
            .await
            .map_err(map_err)?;
        let feed = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(base.read_only(true))
            .await
            .map_err(map_err)?;
        Ok(Self { writer, reader, feed, options: Arc::new(options) })
    }

    /// Names of the migrations this build knows, in order.
    pub fn migration_names() -> Vec<String> {
        MIGRATOR.iter().map(|m| format!("{:04}_{}", m.version, m.description.replace(' ', "_"))).collect()
    }

    /// Closes both pools (flushing the WAL on the last connection).
    pub async fn close(&self) {
        self.feed.close().await;
        self.reader.close().await;
        self.writer.close().await;
    }

    /// A pragma's value as the writer connection sees it; for tests of durability settings.
    pub async fn pragma(&self, name: &str) -> StoreResult<String> {
        let known = ["journal_mode", "synchronous", "foreign_keys", "busy_timeout"];
        let Some(name) = known.iter().find(|k| **k == name) else {
            return Err(StoreError::Corrupt(format!("pragma {name} not inspectable")));
        };
        let sql = match *name {
            "journal_mode" => "PRAGMA journal_mode",
            "synchronous" => "PRAGMA synchronous",
            "foreign_keys" => "PRAGMA foreign_keys",
            _ => "PRAGMA busy_timeout",
        };
        let v: sqlx::sqlite::SqliteRow = sqlx::query(sql).fetch_one(&self.writer).await.map_err(map_err)?;
        use sqlx::Row;
        let s =
            v.try_get::<String, _>(0).or_else(|_| v.try_get::<i64, _>(0).map(|i| i.to_string())).map_err(map_err)?;
        Ok(s)
    }
}

/// Maps a driver error onto the store's error kinds.
pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            let msg = db.message();
            let field = if msg.contains("username_norm") {
                UniqueField::Username
            } else if msg.contains("email_norm") {
                UniqueField::Email
            } else if msg.contains("phone_norm") {
                UniqueField::Phone
            } else if msg.contains("tenant_domains") {
                UniqueField::Domain
            } else if msg.contains("slug") {
                UniqueField::Slug
            } else {
                UniqueField::Name
            };
            StoreError::Conflict(field)
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed => {
            StoreError::Unavailable(Box::new(e))
        }
        sqlx::Error::Database(db) if db.code().is_some_and(|c| c == "5" || c == "6" || c == "517") => {
            // SQLITE_BUSY / SQLITE_LOCKED / SQLITE_BUSY_SNAPSHOT: another process held the lock
            // past the busy timeout.
            StoreError::Unavailable(Box::new(e))
        }
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::Gone,
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) | sqlx::Error::ColumnNotFound(_) => {
            StoreError::Corrupt(e.to_string())
        }
        _ => StoreError::Other(Box::new(e)),
    }
}

#[async_trait::async_trait]
impl portcullis_core::store::Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await.map_err(map_err)?;
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

    async fn delete_user(&self, tenant: TenantId, id: UserId, now: Timestamp) -> StoreResult<bool> {
        self.delete_user_rows(tenant, id, now).await
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

    async fn delete_expired_sessions(&self, now: Timestamp, keep_feed: Duration) -> StoreResult<u64> {
        self.delete_expired_session_rows(now, keep_feed).await
    }

    async fn revocations(&self) -> StoreResult<RevocationFeed> {
        self.open_feed().await
    }

    async fn tenants(&self) -> StoreResult<Vec<Tenant>> {
        self.tenant_rows().await
    }

    async fn tenant_by_domain(&self, domain: &str) -> StoreResult<Option<Tenant>> {
        self.tenant_row_by_domain(domain).await
    }

    async fn update_tenant(&self, id: TenantId, u: &TenantUpdate, now: Timestamp) -> StoreResult<Option<Tenant>> {
        self.update_tenant_row(id, u, now).await
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
        self.password_scheme_rows(tenant).await
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
        self.insert_audit_rows(events).await
    }

    async fn audit_events(&self, q: &AuditQuery) -> StoreResult<Vec<AuditEvent>> {
        self.audit_rows(q).await
    }
}
