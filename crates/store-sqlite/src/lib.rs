//! The [`Store`](portcullis_core::store::Store) on an embedded SQLite file: the default, for one node.
//!
//! - WAL journal with `synchronous=FULL`: an acknowledged write survives a power cut, not only
//!   a crash of the process. Readers never wait for the writer.
//! - Writes go through a pool of exactly one connection, so concurrent writers queue fairly in
//!   this process instead of spinning on SQLite's busy handler; other processes (the CLI) are
//!   covered by the busy timeout. Reads use a separate pool.
//! - The revocation feed is the `session_revocations` table, polled by every process.
//!
//! Nothing above this crate knows it is talking to SQLite.

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
use std::sync::Arc;
use std::time::Duration;

use portcullis_core::UniqueField;
use portcullis_core::clock::Timestamp;
use portcullis_core::store::{Database, StoreError, StoreResult, UnitOfWork};
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

/// Creates a database file that does not exist yet, empty and readable by its owner only
/// (it will hold password hashes; SQLite gives its WAL and shared-memory files the same mode).
/// An existing file is left as it is; a file that cannot be created here is left to SQLite,
/// which reports the problem with its own message.
fn create_private(path: &std::path::Path) {
    if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" {
        return;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let _ = options.open(path);
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
        create_private(base.get_filename());
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
impl Database for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await.map_err(map_err)?;
        Ok(())
    }

    async fn begin(&self) -> StoreResult<Box<dyn UnitOfWork>> {
        let tx = self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
        Ok(Box::new(unit::SqliteUnit::new(tx)))
    }

    async fn server_secret(&self, name: &str, candidate: &[u8], now: Timestamp) -> StoreResult<Vec<u8>> {
        sqlx::query(
            "INSERT INTO server_secrets (name, value, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)              ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(candidate.to_vec())
        .bind(now.unix_micros())
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = ?1")
            .bind(name)
            .fetch_one(&self.writer)
            .await
            .map_err(map_err)
    }
}
