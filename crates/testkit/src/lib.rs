//! What Portcullis tests share, kept out of the production crates: a clock that moves only
//! when told to, fresh PostgreSQL databases (one per test, dropped with it), and fresh stores
//! of either backend.
//!
//! Test code only: production code never depends on this crate.

mod clock;
pub mod postgres;
pub mod smtp;

use std::sync::Arc;
use std::time::Duration;

use portcullis_core::store::Store;
use portcullis_store_postgres::{PostgresOptions, PostgresStore};
use portcullis_store_sqlite::{SqliteOptions, SqliteStore};

pub use crate::clock::ManualClock;
pub use crate::postgres::TestDatabase;

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file in a temporary folder.
    Sqlite,
    /// A fresh database on the test PostgreSQL server.
    Postgres,
}

/// Keeps a test's database alive; dropping it deletes the database.
#[derive(Debug)]
pub enum DbGuard {
    /// The temporary folder of the SQLite file.
    Sqlite(tempfile::TempDir),
    /// The PostgreSQL database.
    Postgres(TestDatabase),
}

/// A fresh, empty database of a backend: its URL and what keeps it alive.
pub async fn fresh_database(backend: Backend) -> Result<(String, DbGuard), String> {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().map_err(|e| format!("temporary folder: {e}"))?;
            let url = format!("sqlite://{}", dir.path().join("portcullis.db").display());
            Ok((url, DbGuard::Sqlite(dir)))
        }
        Backend::Postgres => {
            let db = TestDatabase::create().await?;
            Ok((db.url().to_owned(), DbGuard::Postgres(db)))
        }
    }
}

/// Store settings for tests: a revocation feed that reports within 50 ms.
pub fn sqlite_options() -> SqliteOptions {
    SqliteOptions { revocation_poll_interval: Duration::from_millis(50), ..SqliteOptions::default() }
}

/// Store settings for tests.
pub fn postgres_options() -> PostgresOptions {
    PostgresOptions { max_connections: 8, ..PostgresOptions::default() }
}

/// Opens (and migrates) a store on a database URL made by [`fresh_database`].
pub async fn open_store(backend: Backend, url: &str) -> Result<Arc<dyn Store>, String> {
    Ok(match backend {
        Backend::Sqlite => Arc::new(SqliteStore::open(url, sqlite_options()).await.map_err(|e| e.to_string())?),
        Backend::Postgres => Arc::new(PostgresStore::open(url, postgres_options()).await.map_err(|e| e.to_string())?),
    })
}

/// A fresh, migrated store of a backend, and what keeps its database alive.
pub async fn fresh_store(backend: Backend) -> Result<(Arc<dyn Store>, DbGuard), String> {
    let (url, guard) = fresh_database(backend).await?;
    Ok((open_store(backend, &url).await?, guard))
}

/// The TOTP code an authenticator app would show at `unix_seconds` for a base32 secret (RFC
/// 6238: SHA-1, 6 digits, 30-second steps), computed as an authenticator app computes it.
pub fn totp_code(secret_base32: &str, unix_seconds: u64) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret_base32).map(|s| s.as_bytes().to_vec()).unwrap_or_default();
    totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(secret)
        .build_noncompliant()
        .generate(unix_seconds)
        .to_string()
}
