//! The store conformance suite on PostgreSQL. Needs a PostgreSQL server (see README: Tests).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use portcullis_store_postgres::testing::TestDatabase;
use portcullis_store_postgres::{PostgresOptions, PostgresStore};
use portcullis_store_tests::TestDb;

async fn db() -> TestDb {
    let (store, url, database) = store().await;
    TestDb::new(
        Arc::new(store),
        Box::new(move || {
            let url = url.clone();
            Box::pin(async move {
                Arc::new(PostgresStore::open(&url, PostgresOptions::default()).await.unwrap())
                    as Arc<dyn portcullis_core::store::Store>
            })
        }),
        Box::new(database),
    )
}

portcullis_store_tests::conformance_suite!(db());

/// A fresh migrated store, its URL, and what keeps the database alive.
async fn store() -> (PostgresStore, String, TestDatabase) {
    let database = TestDatabase::create().await.unwrap_or_else(|e| panic!("{e}"));
    let url = database.url().to_owned();
    let store = PostgresStore::open(&url, PostgresOptions { max_connections: 8, ..Default::default() }).await.unwrap();
    (store, url, database)
}

mod postgres_only {
    //! What only PostgreSQL can get wrong: row locks under real concurrency, and values it
    //! refuses to store.

    use std::time::Duration;

    use portcullis_core::clock::{Clock as _, SystemClock};
    use portcullis_core::ids::TenantId;
    use portcullis_core::model::UserStatus;
    use portcullis_core::parse::Username;
    use portcullis_core::profile::Profile;
    use portcullis_core::secret::Token;
    use portcullis_core::store::{NewSession, NewUser, Store, StoreError};
    use sqlx::Connection;

    fn new_user(name: &str) -> NewUser {
        NewUser {
            tenant_id: TenantId::DEFAULT,
            username: Some(Username::parse(name).unwrap()),
            email: None,
            email_verified_at: None,
            phone: None,
            password_hash: Some("$argon2id$x".into()),
            status: UserStatus::Active,
            profile: Profile::default(),
            attributes: vec![],
            roles: vec![],
            now: SystemClock.now(),
        }
    }

    fn new_session(user: &portcullis_core::model::User) -> NewSession {
        let now = SystemClock.now();
        NewSession {
            tenant_id: user.tenant_id,
            user_id: user.id,
            checked_password_version: user.password_version,
            token_hash: Token::generate("pcs_").unwrap().hash(),
            now,
            expires_at: now.plus(Duration::from_secs(3600)),
            idle_timeout: Duration::from_secs(600),
            user_agent: None,
            ip: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_log_in_racing_an_uncommitted_password_change_waits_and_loses() {
        let (store, url, _db) = super::store().await;
        let u = store.insert_user(&new_user("racer")).await.unwrap();
        // Another transaction changes the password and has not committed yet.
        let mut other = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::raw_sql("BEGIN").execute(&mut other).await.unwrap();
        sqlx::query("UPDATE users SET password_version = password_version + 1 WHERE id = $1")
            .bind(u.id.0)
            .execute(&mut other)
            .await
            .unwrap();
        // The log-in (which checked the old password) must wait for it...
        let opening = {
            let (store, s) = (store.clone(), new_session(&u));
            tokio::spawn(async move { store.insert_session(&s).await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!opening.is_finished(), "the insert waits for the password change");
        // ... and, once the change commits, open nothing.
        sqlx::raw_sql("COMMIT").execute(&mut other).await.unwrap();
        assert!(opening.await.unwrap().unwrap().is_none(), "no session survives the change");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn log_ins_of_one_user_released_together_do_not_deadlock() {
        let (store, url, _db) = super::store().await;
        let u = store.insert_user(&new_user("crowd")).await.unwrap();
        let mut other = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::raw_sql("BEGIN").execute(&mut other).await.unwrap();
        sqlx::query("SELECT id FROM users WHERE id = $1 FOR UPDATE").bind(u.id.0).execute(&mut other).await.unwrap();
        let opening: Vec<_> = (0..4)
            .map(|_| {
                let (store, s) = (store.clone(), new_session(&u));
                tokio::spawn(async move { store.insert_session(&s).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        sqlx::raw_sql("COMMIT").execute(&mut other).await.unwrap();
        for o in opening {
            assert!(o.await.unwrap().unwrap().is_some(), "every log-in opens its session");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn text_postgresql_cannot_store_is_refused_as_invalid() {
        let (store, _url, _db) = super::store().await;
        let mut u = new_user("nul");
        u.profile.first_name = Some("a\u{0}b".into());
        assert!(matches!(store.insert_user(&u).await, Err(StoreError::Invalid(_))));
    }
}
