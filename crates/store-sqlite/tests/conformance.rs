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
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the database holds password hashes: owner only ({mode:o})");
    }
    SqliteStore::open(&url, options()).await.unwrap();
    assert_eq!(
        SqliteStore::migration_names(),
        vec![
            "0001_initial".to_owned(),
            "0002_password_scheme".to_owned(),
            "0003_mail_and_second_factors".to_owned(),
            "0004_avatars".to_owned()
        ]
    );
}

#[tokio::test]
async fn passwords_written_by_an_older_release_are_found_and_classified() {
    use portcullis_core::ids::TenantId;
    use portcullis_core::store::{ImportStore, NewUser, UserStore};
    use sqlx::Connection as _;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    let store = SqliteStore::open(&url, options()).await.unwrap();
    let hash = "$sha1$5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8";
    let user = store
        .insert_user(&NewUser {
            tenant_id: TenantId::DEFAULT,
            username: Some(portcullis_core::parse::Username::parse("elder").unwrap()),
            email: None,
            email_verified_at: None,
            phone: None,
            password: portcullis_core::password::HashedPassword::classify(hash.into()),
            status: portcullis_core::model::UserStatus::Active,
            profile: Default::default(),
            attributes: vec![],
            roles: vec![],
            now: portcullis_core::Timestamp::from_unix_micros(1_700_000_000_000_000),
        })
        .await
        .unwrap();
    // What an older release writes: the hash without its scheme.
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("UPDATE users SET password_scheme = NULL").execute(&mut conn).await.unwrap();
    assert_eq!(store.password_schemes(TenantId::DEFAULT).await.unwrap(), vec![("unclassified".to_owned(), 1)]);
    assert_eq!(store.unclassified_passwords(10).await.unwrap(), vec![(user.id, hash.to_owned())]);
    store.set_password_scheme(user.id, "another hash", "sha1").await.unwrap();
    assert_eq!(store.unclassified_passwords(10).await.unwrap().len(), 1, "only while the hash is the same");
    store.set_password_scheme(user.id, hash, "sha1").await.unwrap();
    assert!(store.unclassified_passwords(10).await.unwrap().is_empty());
    assert_eq!(store.password_schemes(TenantId::DEFAULT).await.unwrap(), vec![("sha1".to_owned(), 1)]);
}
