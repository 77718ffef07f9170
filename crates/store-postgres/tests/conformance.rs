//! The store conformance suite on PostgreSQL. Needs a PostgreSQL server (see README: Tests).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use portcullis_store_postgres::{PostgresOptions, PostgresStore};
use portcullis_store_tests::TestDb;
use portcullis_testkit::TestDatabase;

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
    //! What only PostgreSQL can get wrong: row locks under real concurrency, values it refuses
    //! to store, and its set-wise import.

    use std::time::Duration;

    use portcullis_core::clock::{Clock as _, SystemClock};
    use portcullis_core::ids::TenantId;
    use portcullis_core::legacy_hash::HashScheme;
    use portcullis_core::model::{User, UserStatus};
    use portcullis_core::parse::{Email, Phone, Username};
    use portcullis_core::password::HashedPassword;
    use portcullis_core::profile::{Profile, TextField};
    use portcullis_core::secret::Token;
    use portcullis_core::store::{
        ImportOutcome, ImportStore, NewSession, NewTenant, NewUser, SessionStore, StoreError, TenantStore, UserStore,
    };
    use sqlx::Connection;

    fn new_user(name: &str) -> NewUser {
        NewUser {
            tenant_id: TenantId::DEFAULT,
            username: Some(Username::parse(name).unwrap()),
            email: None,
            email_verified_at: None,
            phone: None,
            password: Some(HashedPassword::new("$argon2id$x".into(), HashScheme::Argon2id)),
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

    fn with_ids(username: &str, email: Option<&str>) -> NewUser {
        let mut u = new_user(username);
        u.email = email.map(|e| Email::parse(e).unwrap());
        u
    }

    fn outcomes(out: &[ImportOutcome]) -> Vec<&'static str> {
        out.iter()
            .map(|o| match o {
                ImportOutcome::Created(_) => "created",
                ImportOutcome::Taken(f) => f.as_str(),
            })
            .collect()
    }

    // Imports insert a whole batch in one statement, then work out why rows were refused: a row
    // must be refused for what stood in its way when it went in, not for what later rows took.
    #[tokio::test]
    async fn an_import_refuses_a_row_for_what_was_in_its_way_not_for_what_later_rows_took() {
        let (store, _url, _db) = super::store().await;
        store.insert_user(&with_ids("holder", Some("taken@example.com"))).await.unwrap();
        let mut phone_only = new_user("unused");
        phone_only.username = None;
        phone_only.phone = Some(Phone::parse("+15550100").unwrap());
        let mut nothing = new_user("unused");
        nothing.username = None;
        let batch = vec![
            with_ids("first", Some("taken@example.com")),
            with_ids("first", Some("first@example.com")),
            with_ids("second", Some("FIRST@example.com")),
            with_ids("second", None),
            phone_only.clone(),
            phone_only,
            nothing.clone(),
            nothing,
            with_ids("HOLDER", None),
        ];
        let out = store.import_users(&batch).await.unwrap();
        assert_eq!(
            outcomes(&out),
            ["email", "created", "email", "created", "created", "phone", "created", "created", "username"]
        );
        let ids: Vec<_> =
            out.iter().filter_map(|o| if let ImportOutcome::Created(id) = o { Some(id.0) } else { None }).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids follow the batch order");
    }

    // The import has its own column list; it must store everything a single insert does.
    #[tokio::test]
    async fn an_imported_user_reads_back_like_an_inserted_one() {
        let (store, _url, _db) = super::store().await;
        let mut inserted = with_ids("inserted", Some("inserted@example.com"));
        inserted.status = UserStatus::Pending;
        inserted.email_verified_at = Some(SystemClock.now());
        inserted.phone = Some(Phone::parse("+15550100").unwrap());
        for (i, f) in TextField::ALL.iter().enumerate() {
            inserted.profile.set_text(*f, Some(format!("text {i}")));
        }
        inserted.profile.birth_date = Some(time::macros::date!(1990 - 01 - 02));
        inserted.profile.newsletter = true;
        inserted.profile.meta = serde_json::from_value(serde_json::json!({"k": [1, 2]})).unwrap();
        let mut imported = inserted.clone();
        imported.tenant_id = store
            .insert_tenant(&NewTenant {
                slug: "other".into(),
                name: "other".into(),
                domains: vec![],
                policy: Default::default(),
                now: SystemClock.now(),
            })
            .await
            .unwrap()
            .id;
        let a = store.insert_user(&inserted).await.unwrap();
        let out = store.import_users(std::slice::from_ref(&imported)).await.unwrap();
        let [ImportOutcome::Created(id)] = out[..] else { panic!("{out:?}") };
        let b = store.user_with_secret_by_id(imported.tenant_id, id).await.unwrap().unwrap();
        assert_eq!(b.password_hash.as_deref(), inserted.password.as_ref().map(HashedPassword::as_str));
        assert_eq!(User { id: a.id, tenant_id: a.tenant_id, ..b.user }, a);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn text_postgresql_cannot_store_is_refused_as_invalid() {
        let (store, _url, _db) = super::store().await;
        let mut u = new_user("nul");
        u.profile.first_name = Some("a\u{0}b".into());
        assert!(matches!(store.insert_user(&u).await, Err(StoreError::Invalid(_))));
    }
}
