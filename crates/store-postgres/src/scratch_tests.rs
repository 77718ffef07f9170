#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use std::time::Instant;

use portcullis_core::clock::{Clock as _, SystemClock};
use portcullis_core::ids::TenantId;
use portcullis_core::model::{AttributeKind, UserStatus};
use portcullis_core::parse::{Email, Username};
use portcullis_core::profile::Profile;
use portcullis_core::store::*;
use serde_json::json;

use crate::testing::TestDatabase;
use crate::{PostgresOptions, PostgresStore};

fn _q() {}
fn nu(i: usize) -> NewUser {
    NewUser {
        tenant_id: TenantId::DEFAULT,
        username: Some(Username::parse(&format!("user{i}")).unwrap()),
        email: Some(Email::parse(&format!("user{i}@example.com")).unwrap()),
        email_verified_at: None,
        phone: None,
        password_hash: Some("$2b$10$abcdefghijklmnopqrstuuS9uTdbaT6Y0q7mM0s1pXyA8JYc0yDpa".into()),
        status: UserStatus::Active,
        profile: Profile::default(),
        attributes: vec![],
        roles: vec![],
        now: SystemClock.now(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_speed_and_schemes() {
    let db = TestDatabase::create().await.unwrap();
    let store = PostgresStore::open(db.url(), PostgresOptions::default()).await.unwrap();
    let role = store
        .insert_role(&NewRole {
            tenant_id: TenantId::DEFAULT,
            name: "m".into(),
            description: None,
            now: SystemClock.now(),
        })
        .await
        .unwrap();
    let attr = store
        .insert_attribute_definition(&NewAttributeDefinition {
            tenant_id: TenantId::DEFAULT,
            name: "plan".into(),
            kind: AttributeKind::String,
            required: false,
            user_editable: false,
            now: SystemClock.now(),
        })
        .await
        .unwrap();
    let start = Instant::now();
    let mut created = 0;
    for b in 0..100 {
        let batch: Vec<NewUser> = (0..1000)
            .map(|j| {
                let mut u = nu(b * 1000 + j);
                if j % 2 == 0 {
                    u.roles = vec![role.id];
                    u.attributes = vec![(attr.id, json!("gold"))];
                }
                u
            })
            .collect();
        let out = store.import_users(&batch).await.unwrap();
        created += out.iter().filter(|o| matches!(o, ImportOutcome::Created(_))).count();
    }
    eprintln!("imported {created} in {:?}", start.elapsed());
    assert_eq!(created, 100_000);
    // Again: all taken.
    let start = Instant::now();
    let out = store.import_users(&(0..1000).map(nu).collect::<Vec<_>>()).await.unwrap();
    eprintln!("1000 taken in {:?}", start.elapsed());
    assert!(out.iter().all(|o| *o == ImportOutcome::Taken(portcullis_core::UniqueField::Username)));

    let hashes = [
        None,
        Some("$argon2id$v=19$x"),
        Some("$argon2i$v=19$x"),
        Some("$2a$10$x"),
        Some("$2y$10$x"),
        Some("pbkdf2_sha256$1$x$y"),
        Some("$P$x"),
        Some("$H$x"),
        Some("$md5-salted$x$y"),
        Some("$sha1$x"),
        Some("$sha256-salted$x$y"),
        Some("$sha256-salt-first$x$y"),
        Some("pbkdf2Xsha256$x"),
        Some("$2c$x"),
        Some("$p$x"),
    ];
    let t = store
        .insert_tenant(&NewTenant {
            slug: "t".into(),
            name: "t".into(),
            domains: vec![],
            policy: Default::default(),
            now: SystemClock.now(),
        })
        .await
        .unwrap();
    let batch: Vec<NewUser> = hashes
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let mut u = nu(i);
            u.tenant_id = t.id;
            u.password_hash = h.map(str::to_owned);
            u
        })
        .collect();
    store.import_users(&batch).await.unwrap();
    let schemes = store.password_schemes(t.id).await.unwrap();
    eprintln!("{schemes:?}");
    assert_eq!(
        schemes,
        [
            ("argon2", 1),
            ("argon2id", 1),
            ("bcrypt", 2),
            ("md5_salted", 1),
            ("none", 1),
            ("pbkdf2_sha256", 1),
            ("phpass", 2),
            ("sha1", 1),
            ("sha256_salt_first", 1),
            ("sha256_salted", 1),
            ("unknown", 3),
        ]
        .map(|(a, b)| (a.to_owned(), b))
    );

    // A batch with a bad row rolls back entirely.
    let mut bad = vec![nu(500_000), nu(500_001)];
    bad[1].profile.first_name = Some("a\u{0}".into());
    assert!(matches!(store.import_users(&bad).await, Err(StoreError::Invalid(_))));
    let q = UserQuery {
        tenant_id: TenantId::DEFAULT,
        search: Some("user500000".into()),
        limit: 10,
        created_after: None,
        created_before: None,
        after: None,
        status: None,
        role: None,
    };
    assert!(store.list_users(&q).await.unwrap().is_empty());
    // A cross-tenant role is refused.
    let mut cross = nu(600_000);
    cross.tenant_id = t.id;
    cross.roles = vec![role.id];
    assert!(matches!(store.import_users(&[cross]).await, Err(StoreError::Corrupt(_))));
    // Search with backslash.
    let mut bs = nu(700_000);
    bs.profile.display_name = Some(r"a\b%c".into());
    store.insert_user(&bs).await.unwrap();
    let q = UserQuery {
        tenant_id: TenantId::DEFAULT,
        search: Some(r"A\B%".into()),
        limit: 10,
        created_after: None,
        created_before: None,
        after: None,
        status: None,
        role: None,
    };
    assert_eq!(store.list_users(&q).await.unwrap().len(), 1);
    let start = Instant::now();
    let q = UserQuery {
        tenant_id: TenantId::DEFAULT,
        search: Some("99999".into()),
        limit: 50,
        created_after: None,
        created_before: None,
        after: None,
        status: None,
        role: None,
    };
    eprintln!("search: {} in {:?}", store.list_users(&q).await.unwrap().len(), start.elapsed());
    let start = Instant::now();
    let page = store.users_with_secrets(TenantId::DEFAULT, None, 1000).await.unwrap();
    eprintln!("export page {} in {:?}", page.len(), start.elapsed());
    assert!(page.iter().all(|u| u.password_hash.is_some()));
}

#[tokio::test]
async fn audit_empty_and_consume_wrong_purpose() {
    let db = TestDatabase::create().await.unwrap();
    let store = PostgresStore::open(db.url(), PostgresOptions::default()).await.unwrap();
    store.insert_audit_events(&[]).await.unwrap();
    let u = store.insert_user(&nu(1)).await.unwrap();
    let tok = portcullis_core::secret::Token::generate("x_").unwrap();
    let now = SystemClock.now();
    let t = NewOneTimeToken {
        tenant_id: TenantId::DEFAULT,
        user_id: u.id,
        purpose: "login".into(),
        token_hash: tok.hash(),
        data: json!({"a": 1}),
        expires_at: now.plus(std::time::Duration::from_secs(60)),
        now,
    };
    store.insert_one_time_token(&t).await.unwrap();
    let mut other = t.clone();
    other.tenant_id = TenantId(77);
    other.token_hash = portcullis_core::secret::Token::generate("x_").unwrap().hash();
    assert!(matches!(store.insert_one_time_token(&other).await, Err(StoreError::Gone)));
    assert!(store.consume_one_time_token(&tok.hash(), "reset", now).await.unwrap().is_none());
    let c = store.consume_one_time_token(&tok.hash(), "login", now).await.unwrap().unwrap();
    assert_eq!(c.data, json!({"a": 1}));
    let mut evs = Vec::new();
    for i in 0..2000 {
        evs.push(NewAuditEvent {
            tenant_id: if i % 3 == 0 { None } else { Some(TenantId::DEFAULT) },
            user_id: None,
            actor: "cli".into(),
            action: format!("a.{i}"),
            ip: None,
            user_agent: Some("ua".into()),
            details: json!({"i": i}),
            at: now,
        });
    }
    store.insert_audit_events(&evs).await.unwrap();
    let all = store.audit_events(&AuditQuery { limit: 5000, ..Default::default() }).await.unwrap();
    assert_eq!(all.len(), 2000);
    assert_eq!(all[0].action, "a.1999");
    assert_eq!(all[1999].action, "a.0");
    assert!(all.windows(2).all(|w| w[0].id.0 > w[1].id.0));
    // domain conflict in update within own list
    let upd = TenantUpdate { domains: Some(vec!["x.test".into(), "x.test".into()]), ..Default::default() };
    eprintln!("{:?}", store.update_tenant(TenantId::DEFAULT, &upd, now).await.map(|_| ()));
}

#[tokio::test]
async fn import_semantics() {
    use portcullis_core::UniqueField;
    use portcullis_core::parse::Phone;
    use portcullis_core::profile::TextField;
    let db = TestDatabase::create().await.unwrap();
    let store = PostgresStore::open(db.url(), PostgresOptions::default()).await.unwrap();
    assert!(store.import_users(&[]).await.unwrap().is_empty());
    store.insert_user(&nu(0)).await.unwrap(); // user0 / user0@example.com
    let t2 = store
        .insert_tenant(&NewTenant { slug: "t2".into(), name: "t2".into(), domains: vec![], policy: Default::default(), now: SystemClock.now() })
        .await
        .unwrap();
    let mk = |u: &str, e: Option<&str>| {
        let mut x = nu(0);
        x.username = Some(Username::parse(u).unwrap());
        x.email = e.map(|e| Email::parse(e).unwrap());
        x
    };
    let mut other_tenant = mk("user0", Some("user0@example.com"));
    other_tenant.tenant_id = t2.id;
    let mut no_ids = nu(0);
    no_ids.username = None;
    no_ids.email = None;
    no_ids.phone = Some(Phone::parse("+15550100").unwrap());
    let mut no_ids2 = nu(0);
    no_ids2.username = None;
    no_ids2.email = None;
    let batch = vec![
        mk("aa", Some("user0@example.com")), // email taken by existing -> Email, even though "a" is later taken by row 1
        mk("aa", Some("aa@example.com")),     // created
        mk("bb", Some("AA@example.com")),     // email held by row 1 -> Email
        mk("bb", Some("b@example.com")),     // created
        other_tenant,                        // created (other tenant)
        no_ids.clone(),                      // created (phone only)
        no_ids,                              // phone clash with previous row
        no_ids2.clone(),                     // no identifiers at all: created
        no_ids2,                             // created too
        mk("USER0", None),                   // username clash, normalised
    ];
    let out = store.import_users(&batch).await.unwrap();
    use ImportOutcome::*;
    let kinds: Vec<String> = out
        .iter()
        .map(|o| match o {
            Created(_) => "created".to_owned(),
            Taken(f) => f.as_str().to_owned(),
        })
        .collect();
    assert_eq!(kinds, ["email", "created", "email", "created", "created", "created", "phone", "created", "created", "username"]);
    let _ = UniqueField::Username;

    // Round trip: an imported user reads back like an inserted one.
    let mut full = nu(10);
    full.status = UserStatus::Pending;
    full.email_verified_at = Some(SystemClock.now());
    for (i, f) in TextField::ALL.iter().enumerate() {
        full.profile.set_text(*f, Some(format!("v{i}")));
    }
    full.profile.birth_date = Some(time::macros::date!(1990 - 01 - 02));
    full.profile.newsletter = true;
    full.profile.meta = serde_json::from_value(json!({"k": [1, 2]})).unwrap();
    full.password_hash = None;
    let mut same = full.clone();
    same.username = Some(Username::parse("user11").unwrap());
    same.email = Some(Email::parse("user11@example.com").unwrap());
    let inserted = store.insert_user(&full).await.unwrap();
    let out = store.import_users(&[same]).await.unwrap();
    let Created(id) = out[0] else { panic!("{out:?}") };
    let imported = store.user(TenantId::DEFAULT, id).await.unwrap().unwrap();
    let mut a = format!("{inserted:?}");
    let mut b = format!("{imported:?}");
    a = a.replace(&format!("{:?}", inserted.id), "ID").replace("user10", "U");
    b = b.replace(&format!("{:?}", imported.id), "ID").replace("user11", "U");
    assert_eq!(a, b);
    assert!(imported.password_changed_at.is_none());
}
