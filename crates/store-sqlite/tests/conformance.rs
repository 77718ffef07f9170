//! The store conformance suite on SQLite, plus SQLite's own durability settings.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use portcullis_store_sqlite::{SqliteOptions, SqliteStore};
use portcullis_store_tests::TestDb;

fn options() -> SqliteOptions {
    SqliteOptions { revocation_poll_interval: Duration::from_millis(50), ..SqliteOptions::default() }
}

async fn db() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("portcullis.db").display());
    let store = SqliteStore::open(&url, options()).await.unwrap();
    let reopen_url = url.clone();
    TestDb::new(
        Arc::new(store),
        Box::new(move || {
            let url = reopen_url.clone();
            Box::pin(async move {
                Arc::new(SqliteStore::open(&url, options()).await.unwrap()) as Arc<dyn portcullis_core::store::Store>
            })
        }),
        Box::new(dir),
    )
}

portcullis_store_tests::conformance_suite!(db());

#[tokio::test]
async fn writes_are_durable_against_power_loss() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("d.db").display());
    let store = SqliteStore::open(&url, options()).await.unwrap();
    assert_eq!(store.pragma("journal_mode").await.unwrap(), "wal");
    assert_eq!(store.pragma("synchronous").await.unwrap(), "2", "synchronous=FULL");
    assert_eq!(store.pragma("foreign_keys").await.unwrap(), "1");
}

#[tokio::test]
async fn opening_creates_the_file_and_reopening_migrates_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    let url = format!("sqlite://{}", path.display());
    SqliteStore::open(&url, options()).await.unwrap().close().await;
    assert!(path.exists());
    SqliteStore::open(&url, options()).await.unwrap();
    assert_eq!(SqliteStore::migration_names(), vec!["0001_initial".to_owned(), "0002_password_scheme".to_owned()]);
}
