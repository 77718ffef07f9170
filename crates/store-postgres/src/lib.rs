//! The [`Store`](portcullis_core::store::Store) on PostgreSQL: for several stateless
//! Portcullis nodes sharing one database.
//!
//! - Every multi-row write is one transaction; uniqueness is enforced by unique indexes.
//! - The revocation feed is `LISTEN/NOTIFY` on the channel `portcullis_revocations`: writes that
//!   end sessions notify in their own transaction, so every node hears of it on commit.
//! - Migrations take PostgreSQL's advisory lock, so nodes starting together migrate once.

mod api_keys;
mod attributes;
mod audit;
mod avatars;
mod import;
mod one_time_tokens;
mod outbox;
mod revocations;
mod roles;
mod rows;
mod second_factors;
mod sessions;
mod tenants;
mod unit;
mod users;

use std::str::FromStr;
use std::time::Duration;

use portcullis_core::UniqueField;
use portcullis_core::clock::Timestamp;
use portcullis_core::store::{Database, StoreError, StoreResult, UnitOfWork};
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
impl Database for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(map_err)?;
        Ok(())
    }

    async fn begin(&self) -> StoreResult<Box<dyn UnitOfWork>> {
        let tx = self.pool.begin().await.map_err(map_err)?;
        Ok(Box::new(unit::PostgresUnit::new(tx)))
    }

    async fn server_secret(&self, name: &str, candidate: &[u8], now: Timestamp) -> StoreResult<Vec<u8>> {
        let made: Option<Vec<u8>> = sqlx::query_scalar(
            "INSERT INTO server_secrets (name, value, created_at, updated_at) VALUES ($1, $2, $3, $3) \
             ON CONFLICT (name) DO NOTHING RETURNING value",
        )
        .bind(name)
        .bind(candidate.to_vec())
        .bind(odt(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        if let Some(v) = made {
            return Ok(v);
        }
        // Another node made it first; a new statement sees its committed row.
        sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)
    }
}
