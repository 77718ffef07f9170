//! The conformance cases. Each takes a fresh database.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use portcullis_core::clock::{Clock as _, SystemClock, Timestamp};
use portcullis_core::error::UniqueField;
use portcullis_core::ids::{RoleId, SessionId, TenantId, UserId};
use portcullis_core::legacy_hash::HashScheme;
use portcullis_core::model::{AttributeKind, TenantPolicy, UserStatus};
use portcullis_core::parse::{Email, LoginKey, Phone, Username};
use portcullis_core::password::HashedPassword;
use portcullis_core::profile::{Profile, ProfileChange, TextField};
use portcullis_core::secret::{Token, TokenHash};
use portcullis_core::store::{
    EndSessions, NewAttributeDefinition, NewRole, NewSession, NewTenant, NewUser, PasswordChange, Revocation, Store,
    StoreError, UserUpdate,
};
use serde_json::json;

use crate::TestDb;

pub use crate::admin_cases::*;
pub use crate::journey_cases::*;

pub(crate) fn now() -> Timestamp {
    // Stores keep microseconds; start from a whole second so round trips compare exactly.
    Timestamp::from_unix_micros(SystemClock.now().unix_seconds() * 1_000_000)
}

/// The password hash every test user gets (only stored, never checked, here).
const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g";

/// A stored hash as the core would hand it over, classified by its form (argon2id for the
/// placeholders of these tests, which only store hashes and never check them).
pub(crate) fn hashed(hash: &str) -> HashedPassword {
    HashedPassword::classify(hash.to_owned())
        .unwrap_or_else(|| HashedPassword::new(hash.to_owned(), HashScheme::Argon2id))
}

pub(crate) fn new_user(tenant: TenantId, username: Option<&str>, email: Option<&str>) -> NewUser {
    NewUser {
        tenant_id: tenant,
        username: username.map(|u| Username::parse(u).unwrap()),
        email: email.map(|e| Email::parse(e).unwrap()),
        email_verified_at: None,
        phone: None,
        password: Some(hashed(HASH)),
        status: UserStatus::Active,
        profile: Profile::default(),
        attributes: Vec::new(),
        roles: Vec::new(),
        now: now(),
    }
}

pub(crate) async fn tenant_id(store: &Arc<dyn Store>, slug: &str) -> TenantId {
    tenant(store, slug).await
}

async fn tenant(store: &Arc<dyn Store>, slug: &str) -> TenantId {
    store
        .insert_tenant(&NewTenant {
            slug: slug.into(),
            name: slug.into(),
            domains: vec![],
            policy: TenantPolicy::default(),
            now: now(),
        })
        .await
        .unwrap()
        .id
}

fn new_session(user: &portcullis_core::model::User, token: &Token, at: Timestamp) -> NewSession {
    NewSession {
        tenant_id: user.tenant_id,
        user_id: user.id,
        checked_password_version: 0,
        token_hash: token.hash(),
        now: at,
        expires_at: at.plus(Duration::from_secs(3600)),
        idle_timeout: Duration::from_secs(600),
        user_agent: Some("test-agent/1.0".into()),
        ip: Some("192.0.2.7".parse().unwrap()),
    }
}

fn token() -> Token {
    Token::generate("pcs_").unwrap()
}

fn conflict(r: Result<impl std::fmt::Debug, StoreError>) -> UniqueField {
    match r {
        Err(StoreError::Conflict(f)) => f,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

pub async fn default_tenant_exists(db: &TestDb) {
    let t = db.store.tenant(TenantId::DEFAULT).await.unwrap().expect("default tenant");
    assert_eq!(t.slug, "default");
    assert!(!t.disabled);
    assert_eq!(db.store.tenant_by_slug("default").await.unwrap().map(|t| t.id), Some(TenantId::DEFAULT));
    assert!(db.store.tenant(TenantId(999_999)).await.unwrap().is_none());
    db.store.ping().await.unwrap();
}

pub async fn tenants_round_trip_with_unique_slugs(db: &TestDb) {
    let policy = TenantPolicy { require_username: Some(true), password_min_length: Some(12), ..Default::default() };
    let t = db
        .store
        .insert_tenant(&NewTenant {
            slug: "acme".into(),
            name: "Acme Inc.".into(),
            domains: vec!["b.example.com".into(), "a.example.com".into()],
            policy: policy.clone(),
            now: now(),
        })
        .await
        .unwrap();
    assert_ne!(t.id, TenantId::DEFAULT);
    assert_eq!(t.domains, vec!["a.example.com", "b.example.com"]);
    assert_eq!(t.policy, policy);
    assert_eq!(db.store.tenant_by_slug("acme").await.unwrap(), Some(t.clone()));
    let dup = db
        .store
        .insert_tenant(&NewTenant {
            slug: "acme".into(),
            name: "Other".into(),
            domains: vec![],
            policy: TenantPolicy::default(),
            now: now(),
        })
        .await;
    assert_eq!(conflict(dup), UniqueField::Slug);
    // A domain belongs to one tenant only, and a refused tenant leaves nothing behind.
    let taken = db
        .store
        .insert_tenant(&NewTenant {
            slug: "other".into(),
            name: "Other".into(),
            domains: vec!["a.example.com".into()],
            policy: TenantPolicy::default(),
            now: now(),
        })
        .await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    assert!(db.store.tenant_by_slug("other").await.unwrap().is_none());
}

pub async fn users_round_trip_every_field(db: &TestDb) {
    let s = &db.store;
    let attr = s
        .insert_attribute_definition(&NewAttributeDefinition {
            tenant_id: TenantId::DEFAULT,
            name: "team".into(),
            kind: AttributeKind::String,
            required: false,
            user_editable: true,
            now: now(),
        })
        .await
        .unwrap();
    let level = s
        .insert_attribute_definition(&NewAttributeDefinition {
            tenant_id: TenantId::DEFAULT,
            name: "level".into(),
            kind: AttributeKind::Integer,
            required: false,
            user_editable: false,
            now: now(),
        })
        .await
        .unwrap();
    let admin = s
        .insert_role(&NewRole { tenant_id: TenantId::DEFAULT, name: "admin".into(), description: None, now: now() })
        .await
        .unwrap();
    let editor = s
        .insert_role(&NewRole {
            tenant_id: TenantId::DEFAULT,
            name: "Editor".into(),
            description: Some("edits".into()),
            now: now(),
        })
        .await
        .unwrap();

    let mut profile = Profile::default();
    for f in TextField::ALL {
        profile.set_text(*f, Some(format!("{} ✓ ' \" ; --", f.name())));
    }
    profile.birth_date = Some(time::macros::date!(1988 - 02 - 03));
    profile.newsletter = true;
    profile.meta = json!({"lang": "en", "rules": 1, "nested": {"a": [1, 2]}}).as_object().cloned().unwrap();
    let verified = now();
    let mut u = new_user(TenantId::DEFAULT, Some("Ada_Lovelace"), Some("Ada@Example.com"));
    u.phone = Some(Phone::parse("+44 20 7946 0000").unwrap());
    u.email_verified_at = Some(verified);
    u.profile = profile.clone();
    u.attributes = vec![(attr.id, json!("analytics")), (level.id, json!(3))];
    u.roles = vec![editor.id, admin.id];
    let created = s.insert_user(&u).await.unwrap();

    assert_eq!(created.tenant_id, TenantId::DEFAULT);
    assert_eq!(created.username.as_deref(), Some("Ada_Lovelace"));
    assert_eq!(created.email.as_deref(), Some("Ada@example.com"));
    assert_eq!(created.email_verified_at, Some(verified));
    assert_eq!(created.phone.as_deref(), Some("+44 20 7946 0000"));
    assert_eq!(created.status, UserStatus::Active);
    assert_eq!(created.profile, profile);
    assert_eq!(created.attributes.get("team"), Some(&json!("analytics")));
    assert_eq!(created.attributes.get("level"), Some(&json!(3)));
    assert_eq!(created.roles, vec!["admin", "Editor"], "roles sorted case-insensitively");
    assert_eq!(created.created_at, u.now);
    assert_eq!(created.password_changed_at, Some(u.now));
    assert_eq!(created.last_login_at, None);

    let read = s.user(TenantId::DEFAULT, created.id).await.unwrap().unwrap();
    assert_eq!(read, created);
    let with_secret = s.user_with_secret_by_id(TenantId::DEFAULT, created.id).await.unwrap().unwrap();
    assert_eq!(with_secret.password_hash.as_deref(), u.password.as_ref().map(HashedPassword::as_str));
    assert!(!format!("{with_secret:?}").contains("argon2id"), "Debug must not print the hash");
    // Not visible from another tenant.
    let other = tenant(s, "other").await;
    assert!(s.user(other, created.id).await.unwrap().is_none());
}

pub async fn identifiers_are_unique_per_tenant_in_normalised_form(db: &TestDb) {
    let s = &db.store;
    s.insert_user(&new_user(TenantId::DEFAULT, Some("alice"), Some("alice@example.com"))).await.unwrap();
    assert_eq!(conflict(s.insert_user(&new_user(TenantId::DEFAULT, Some("ALICE"), None)).await), UniqueField::Username);
    assert_eq!(
        conflict(s.insert_user(&new_user(TenantId::DEFAULT, Some("ａｌｉｃｅ"), None)).await),
        UniqueField::Username
    );
    assert_eq!(
        conflict(s.insert_user(&new_user(TenantId::DEFAULT, None, Some("Alice@EXAMPLE.com"))).await),
        UniqueField::Email
    );
    let mut p1 = new_user(TenantId::DEFAULT, None, None);
    p1.phone = Some(Phone::parse("+1 416 555 0100").unwrap());
    s.insert_user(&p1).await.unwrap();
    let mut p2 = new_user(TenantId::DEFAULT, None, None);
    p2.phone = Some(Phone::parse("+1-416-555-0100").unwrap());
    assert_eq!(conflict(s.insert_user(&p2).await), UniqueField::Phone);
    // Absent identifiers never collide.
    s.insert_user(&new_user(TenantId::DEFAULT, Some("bob"), None)).await.unwrap();
    s.insert_user(&new_user(TenantId::DEFAULT, Some("carol"), None)).await.unwrap();
    // Another tenant is another namespace.
    let other = tenant(s, "other").await;
    s.insert_user(&new_user(other, Some("alice"), Some("alice@example.com"))).await.unwrap();
}

pub async fn concurrent_inserts_of_one_email_let_exactly_one_through(db: &TestDb) {
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = db.store.clone();
        tasks.push(tokio::spawn(async move {
            s.insert_user(&new_user(TenantId::DEFAULT, Some(&format!("racer{i}")), Some("race@example.com"))).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::Conflict(UniqueField::Email)) => {}
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!(ok, 1, "exactly one insert wins");
    // The losers left nothing behind: their usernames are free.
    let winner =
        db.store.user_with_secret(TenantId::DEFAULT, &LoginKey::email("race@example.com")).await.unwrap().unwrap();
    for i in 0..16 {
        let name = format!("racer{i}");
        let found = db.store.user_with_secret(TenantId::DEFAULT, &LoginKey::username(&name)).await.unwrap();
        assert_eq!(found.is_some(), winner.user.username.as_deref() == Some(name.as_str()));
    }
}

pub async fn users_are_found_by_each_login_key(db: &TestDb) {
    let s = &db.store;
    let mut a = new_user(TenantId::DEFAULT, Some("dave"), Some("dave@example.com"));
    a.phone = Some(Phone::parse("+1 (416) 555-0199").unwrap());
    let a = s.insert_user(&a).await.unwrap();
    let find = |k: LoginKey| {
        let s = s.clone();
        async move { s.user_with_secret(TenantId::DEFAULT, &k).await.unwrap().map(|u| u.user.id) }
    };
    assert_eq!(find(LoginKey::from_login("DAVE")).await, Some(a.id));
    assert_eq!(find(LoginKey::from_login("Dave@Example.COM")).await, Some(a.id));
    assert_eq!(find(LoginKey::from_login("+14165550199")).await, Some(a.id));
    assert_eq!(find(LoginKey::phone("+1 416 555 0199")).await, Some(a.id));
    assert_eq!(find(LoginKey::email("dave")).await, None);
    assert_eq!(find(LoginKey::username("dave@example.com")).await, None);
    assert_eq!(find(LoginKey::from_login("nobody")).await, None);
    // A username that looks like someone else's phone number wins over the phone match.
    let mut b = new_user(TenantId::DEFAULT, Some("5550123x"), None);
    b.phone = None;
    let b = s.insert_user(&b).await.unwrap();
    let mut c = new_user(TenantId::DEFAULT, Some("erin"), None);
    c.phone = Some(Phone::parse("5550123").unwrap());
    let c = s.insert_user(&c).await.unwrap();
    assert_eq!(find(LoginKey::from_login("5550123")).await, Some(c.id));
    assert_eq!(find(LoginKey::from_login("5550123x")).await, Some(b.id));
    let other = tenant(s, "other").await;
    assert!(s.user_with_secret(other, &LoginKey::from_login("dave")).await.unwrap().is_none());
}

pub async fn updates_apply_changes_and_refuse_conflicts_whole(db: &TestDb) {
    let s = &db.store;
    let team = s
        .insert_attribute_definition(&NewAttributeDefinition {
            tenant_id: TenantId::DEFAULT,
            name: "team".into(),
            kind: AttributeKind::String,
            required: false,
            user_editable: true,
            now: now(),
        })
        .await
        .unwrap();
    let r1 = s
        .insert_role(&NewRole { tenant_id: TenantId::DEFAULT, name: "one".into(), description: None, now: now() })
        .await
        .unwrap();
    let r2 = s
        .insert_role(&NewRole { tenant_id: TenantId::DEFAULT, name: "two".into(), description: None, now: now() })
        .await
        .unwrap();
    let mut nu = new_user(TenantId::DEFAULT, Some("frank"), Some("frank@example.com"));
    nu.profile.first_name = Some("Frank".into());
    nu.attributes = vec![(team.id, json!("red"))];
    nu.roles = vec![r1.id];
    let u = s.insert_user(&nu).await.unwrap();
    s.insert_user(&new_user(TenantId::DEFAULT, Some("grace"), Some("grace@example.com"))).await.unwrap();

    let later = now().plus(Duration::from_secs(5));
    let upd = UserUpdate {
        email: Some(Some(Email::parse("Frank.New@example.com").unwrap())),
        email_verified_at: Some(None),
        profile: vec![
            ProfileChange::Text(TextField::FirstName, None),
            ProfileChange::Text(TextField::City, Some("Toronto".into())),
            ProfileChange::Newsletter(true),
            ProfileChange::BirthDate(Some(time::macros::date!(2000 - 01 - 31))),
        ],
        attributes: vec![(team.id, Some(json!("blue")))],
        roles: Some(vec![r2.id]),
        ..Default::default()
    };
    let after = s.update_user(TenantId::DEFAULT, u.id, &upd, later).await.unwrap().unwrap();
    assert_eq!(after.email.as_deref(), Some("Frank.New@example.com"));
    assert_eq!(after.profile.first_name, None);
    assert_eq!(after.profile.city.as_deref(), Some("Toronto"));
    assert!(after.profile.newsletter);
    assert_eq!(after.attributes.get("team"), Some(&json!("blue")));
    assert_eq!(after.roles, vec!["two"]);
    assert_eq!(after.updated_at, later);
    assert_eq!(after.created_at, u.created_at);
    assert!(s.user_with_secret(TenantId::DEFAULT, &LoginKey::email("frank.new@example.com")).await.unwrap().is_some());
    assert!(s.user_with_secret(TenantId::DEFAULT, &LoginKey::email("frank@example.com")).await.unwrap().is_none());

    let remove = UserUpdate { attributes: vec![(team.id, None)], ..Default::default() };
    let after = s.update_user(TenantId::DEFAULT, u.id, &remove, later).await.unwrap().unwrap();
    assert!(after.attributes.is_empty());

    // A conflicting update changes nothing at all, not even the fields that were valid.
    let clash = UserUpdate {
        username: Some(Some(Username::parse("GRACE").unwrap())),
        profile: vec![ProfileChange::Text(TextField::City, Some("Paris".into()))],
        ..Default::default()
    };
    assert_eq!(conflict(s.update_user(TenantId::DEFAULT, u.id, &clash, later).await), UniqueField::Username);
    let unchanged = s.user(TenantId::DEFAULT, u.id).await.unwrap().unwrap();
    assert_eq!(unchanged.profile.city.as_deref(), Some("Toronto"));
    assert_eq!(unchanged.username.as_deref(), Some("frank"));

    assert!(s.update_user(TenantId::DEFAULT, UserId(u.id.0 + 1000), &upd, later).await.unwrap().is_none());
    let other = tenant(s, "other").await;
    assert!(s.update_user(other, u.id, &remove, later).await.unwrap().is_none(), "not across tenants");
}

pub async fn disabling_a_user_ends_their_sessions(db: &TestDb) {
    let s = &db.store;
    let u = s.insert_user(&new_user(TenantId::DEFAULT, Some("heidi"), None)).await.unwrap();
    let t = token();
    s.insert_session(&new_session(&u, &t, now())).await.unwrap().expect("session opened");
    let mut feed = s.revocations().await.unwrap();
    let off = UserUpdate { status: Some(UserStatus::Disabled), ..Default::default() };
    let after = s.update_user(TenantId::DEFAULT, u.id, &off, now()).await.unwrap().unwrap();
    assert_eq!(after.status, UserStatus::Disabled);
    assert!(s.session_by_token_hash(&t.hash()).await.unwrap().is_none());
    expect_revocations(&mut feed, &[t.hash()]).await;
}

pub async fn deleting_a_user_cascades_and_ends_sessions(db: &TestDb) {
    let s = &db.store;
    let attr = s
        .insert_attribute_definition(&NewAttributeDefinition {
            tenant_id: TenantId::DEFAULT,
            name: "team".into(),
            kind: AttributeKind::String,
            required: false,
            user_editable: true,
            now: now(),
        })
        .await
        .unwrap();
    let role = s
        .insert_role(&NewRole { tenant_id: TenantId::DEFAULT, name: "r".into(), description: None, now: now() })
        .await
        .unwrap();
    let mut nu = new_user(TenantId::DEFAULT, Some("ivan"), Some("ivan@example.com"));
    nu.attributes = vec![(attr.id, json!("x"))];
    nu.roles = vec![role.id];
    let u = s.insert_user(&nu).await.unwrap();
    let (t1, t2) = (token(), token());
    s.insert_session(&new_session(&u, &t1, now())).await.unwrap().expect("session opened");
    s.insert_session(&new_session(&u, &t2, now())).await.unwrap().expect("session opened");
    let mut feed = s.revocations().await.unwrap();

    let other = tenant(s, "other").await;
    assert!(!s.delete_user(other, u.id, now()).await.unwrap(), "not across tenants");
    assert!(s.delete_user(TenantId::DEFAULT, u.id, now()).await.unwrap());
    assert!(!s.delete_user(TenantId::DEFAULT, u.id, now()).await.unwrap());
    assert!(s.user(TenantId::DEFAULT, u.id).await.unwrap().is_none());
    assert!(s.session_by_token_hash(&t1.hash()).await.unwrap().is_none());
    assert!(s.sessions_of_user(TenantId::DEFAULT, u.id).await.unwrap().is_empty());
    expect_revocations(&mut feed, &[t1.hash(), t2.hash()]).await;
    // The identifiers are free again, and the id is not reused.
    let again = s.insert_user(&new_user(TenantId::DEFAULT, Some("ivan"), Some("ivan@example.com"))).await.unwrap();
    assert!(again.id > u.id);
    assert!(again.attributes.is_empty() && again.roles.is_empty());
}

pub async fn password_changes_compare_and_end_sessions(db: &TestDb) {
    let s = &db.store;
    let u = s.insert_user(&new_user(TenantId::DEFAULT, Some("judy"), None)).await.unwrap();
    let (keep, drop1, drop2) = (token(), token(), token());
    let kept = s.insert_session(&new_session(&u, &keep, now())).await.unwrap().expect("session opened");
    s.insert_session(&new_session(&u, &drop1, now())).await.unwrap().expect("session opened");
    s.insert_session(&new_session(&u, &drop2, now())).await.unwrap().expect("session opened");
    let mut feed = s.revocations().await.unwrap();
    let old = s.user_with_secret_by_id(TenantId::DEFAULT, u.id).await.unwrap().unwrap().password_hash;

    let stale = PasswordChange {
        hash: hashed("$argon2id$new"),
        expected_current: Some("$argon2id$something-else".into()),
        end_sessions: EndSessions::All,
        is_new_password: false,
        now: now(),
    };
    assert!(
        !s.set_password_hash(TenantId::DEFAULT, u.id, &stale).await.unwrap(),
        "compare-and-set refuses a stale hash"
    );
    assert_eq!(s.sessions_of_user(TenantId::DEFAULT, u.id).await.unwrap().len(), 3, "and ends nothing");

    let later = now().plus(Duration::from_secs(9));
    let change = PasswordChange {
        hash: hashed("$argon2id$v=19$new"),
        expected_current: old,
        end_sessions: EndSessions::AllExcept(kept.id),
        is_new_password: true,
        now: later,
    };
    assert!(s.set_password_hash(TenantId::DEFAULT, u.id, &change).await.unwrap());
    let after = s.user_with_secret_by_id(TenantId::DEFAULT, u.id).await.unwrap().unwrap();
    assert_eq!(after.password_hash.as_deref(), Some("$argon2id$v=19$new"));
    assert_eq!(after.user.password_changed_at, Some(later));
    let left: Vec<SessionId> =
        s.sessions_of_user(TenantId::DEFAULT, u.id).await.unwrap().iter().map(|x| x.id).collect();
    assert_eq!(left, vec![kept.id]);
    expect_revocations(&mut feed, &[drop1.hash(), drop2.hash()]).await;

    let rehash = PasswordChange {
        hash: hashed("$argon2id$v=19$rehashed"),
        expected_current: None,
        end_sessions: EndSessions::None,
        is_new_password: false,
        now: later.plus(Duration::from_secs(1)),
    };
    assert!(s.set_password_hash(TenantId::DEFAULT, u.id, &rehash).await.unwrap());
    let after = s.user_with_secret_by_id(TenantId::DEFAULT, u.id).await.unwrap().unwrap();
    assert_eq!(after.user.password_changed_at, Some(later), "a re-encoding is not a password change");
    assert_eq!(s.sessions_of_user(TenantId::DEFAULT, u.id).await.unwrap().len(), 1);
    let other = tenant(s, "other").await;
    assert!(!s.set_password_hash(other, u.id, &rehash).await.unwrap(), "not across tenants");
}

pub async fn roles_and_attributes_are_unique_and_stay_in_their_tenant(db: &TestDb) {
    let s = &db.store;
    let def = |tenant, name: &str| NewAttributeDefinition {
        tenant_id: tenant,
        name: name.into(),
        kind: AttributeKind::Boolean,
        required: true,
        user_editable: false,
        now: now(),
    };
    let a = s.insert_attribute_definition(&def(TenantId::DEFAULT, "vip")).await.unwrap();
    assert_eq!((a.kind, a.required, a.user_editable), (AttributeKind::Boolean, true, false));
    assert_eq!(conflict(s.insert_attribute_definition(&def(TenantId::DEFAULT, "vip")).await), UniqueField::Name);
    let other = tenant(s, "other").await;
    s.insert_attribute_definition(&def(other, "vip")).await.unwrap();
    assert_eq!(s.attribute_definitions(TenantId::DEFAULT).await.unwrap(), vec![a]);

    let role = |tenant, name: &str| NewRole { tenant_id: tenant, name: name.into(), description: None, now: now() };
    let admin = s.insert_role(&role(TenantId::DEFAULT, "Admin")).await.unwrap();
    assert_eq!(conflict(s.insert_role(&role(TenantId::DEFAULT, "ADMIN")).await), UniqueField::Name);
    let foreign = s.insert_role(&role(other, "admin")).await.unwrap();
    assert_eq!(s.roles(TenantId::DEFAULT).await.unwrap(), vec![admin]);

    // A role of another tenant cannot be granted; the whole insert is refused.
    let mut nu = new_user(TenantId::DEFAULT, Some("mallory"), None);
    nu.roles = vec![RoleId(foreign.id.0)];
    assert!(s.insert_user(&nu).await.is_err());
    assert!(s.user_with_secret(TenantId::DEFAULT, &LoginKey::username("mallory")).await.unwrap().is_none());
}

pub async fn sessions_round_trip_and_belong_to_their_user(db: &TestDb) {
    let s = &db.store;
    let u = s.insert_user(&new_user(TenantId::DEFAULT, Some("kim"), None)).await.unwrap();
    let v = s.insert_user(&new_user(TenantId::DEFAULT, Some("lee"), None)).await.unwrap();
    let t0 = now();
    let (a, b, c) = (token(), token(), token());
    let sa = s.insert_session(&new_session(&u, &a, t0)).await.unwrap().expect("session opened");
    let sb =
        s.insert_session(&new_session(&u, &b, t0.plus(Duration::from_secs(1)))).await.unwrap().expect("session opened");
    let sc = s.insert_session(&new_session(&v, &c, t0)).await.unwrap().expect("session opened");
    assert_eq!(sa.user_id, u.id);
    assert_eq!(sa.created_at, t0);
    assert_eq!(sa.last_seen_at, t0);
    assert_eq!(sa.expires_at, t0.plus(Duration::from_secs(3600)));
    assert_eq!(sa.idle_timeout, Duration::from_secs(600));
    assert_eq!(sa.user_agent.as_deref(), Some("test-agent/1.0"));
    assert_eq!(sa.ip, Some("192.0.2.7".parse().unwrap()));
    assert_eq!(s.session_by_token_hash(&a.hash()).await.unwrap(), Some(sa.clone()));
    assert!(s.session_by_token_hash(&TokenHash([0; 32])).await.unwrap().is_none());
    let user = s.user(TenantId::DEFAULT, u.id).await.unwrap().unwrap();
    assert_eq!(user.last_login_at, Some(t0.plus(Duration::from_secs(1))), "opening a session records the log-in");

    let listed: Vec<SessionId> =
        s.sessions_of_user(TenantId::DEFAULT, u.id).await.unwrap().iter().map(|x| x.id).collect();
    assert_eq!(listed, vec![sb.id, sa.id], "newest first");
    assert!(!s.delete_session(TenantId::DEFAULT, u.id, sc.id, now()).await.unwrap(), "someone else's session");
    assert!(s.session_by_token_hash(&c.hash()).await.unwrap().is_some());
    assert!(s.delete_session(TenantId::DEFAULT, u.id, sa.id, now()).await.unwrap());
    assert!(!s.delete_session(TenantId::DEFAULT, u.id, sa.id, now()).await.unwrap());
    assert!(s.delete_session_by_token_hash(&b.hash(), now()).await.unwrap());
    assert!(!s.delete_session_by_token_hash(&b.hash(), now()).await.unwrap());
    assert_eq!(s.delete_sessions_of_user(TenantId::DEFAULT, v.id, EndSessions::All, now()).await.unwrap(), 1);
    let other = tenant(s, "other").await;
    let w = s.insert_user(&new_user(TenantId::DEFAULT, Some("max"), None)).await.unwrap();
    s.insert_session(&new_session(&w, &token(), t0)).await.unwrap().expect("session opened");
    assert_eq!(s.delete_sessions_of_user(other, w.id, EndSessions::All, now()).await.unwrap(), 0, "not across tenants");
    // A duplicate token hash is refused, not silently merged.
    assert!(s.insert_session(&new_session(&w, &c, t0)).await.unwrap().is_some());
    assert!(s.insert_session(&new_session(&w, &c, t0)).await.is_err());
}

pub async fn touches_never_move_time_back(db: &TestDb) {
    let s = &db.store;
    let u = s.insert_user(&new_user(TenantId::DEFAULT, Some("nina"), None)).await.unwrap();
    let (a, b) = (token(), token());
    let t0 = now();
    let sa = s.insert_session(&new_session(&u, &a, t0)).await.unwrap().expect("session opened");
    let sb = s.insert_session(&new_session(&u, &b, t0)).await.unwrap().expect("session opened");
    let t1 = t0.plus(Duration::from_secs(30));
    s.touch_sessions(&[(sa.id, t1), (sb.id, t1), (SessionId(987_654), t1)]).await.unwrap();
    assert_eq!(s.session_by_token_hash(&a.hash()).await.unwrap().unwrap().last_seen_at, t1);
    s.touch_sessions(&[(sa.id, t0)]).await.unwrap();
    assert_eq!(s.session_by_token_hash(&a.hash()).await.unwrap().unwrap().last_seen_at, t1);
    s.touch_sessions(&[]).await.unwrap();
}

pub async fn expired_sessions_are_swept(db: &TestDb) {
    let s = &db.store;
    let u = s.insert_user(&new_user(TenantId::DEFAULT, Some("olga"), None)).await.unwrap();
    let t0 = now();
    let (live, idle, dead) = (token(), token(), token());
    let s_live = s.insert_session(&new_session(&u, &live, t0)).await.unwrap().expect("session opened");
    s.insert_session(&new_session(&u, &idle, t0)).await.unwrap().expect("session opened");
    let mut gone = new_session(&u, &dead, t0);
    gone.expires_at = t0.plus(Duration::from_secs(60));
    s.insert_session(&gone).await.unwrap().expect("session opened");
    // 11 minutes on: `idle` passed its 10-minute idle timeout, `dead` its absolute expiry;
    // `live` was used a minute ago.
    let t1 = t0.plus(Duration::from_secs(660));
    s.touch_sessions(&[(s_live.id, t0.plus(Duration::from_secs(600)))]).await.unwrap();
    assert_eq!(s.delete_expired_sessions(t1, Duration::from_secs(3600)).await.unwrap(), 2);
    assert!(s.session_by_token_hash(&live.hash()).await.unwrap().is_some());
    assert!(s.session_by_token_hash(&idle.hash()).await.unwrap().is_none());
    assert!(s.session_by_token_hash(&dead.hash()).await.unwrap().is_none());
}

pub async fn the_revocation_feed_reports_ended_sessions_across_handles(db: &TestDb) {
    let other_node = db.second_handle().await;
    let mut feed = other_node.revocations().await.unwrap();
    let s = &db.store;
    let u = s.insert_user(&new_user(TenantId::DEFAULT, Some("pat"), None)).await.unwrap();
    let (a, b, c) = (token(), token(), token());
    let sa = s.insert_session(&new_session(&u, &a, now())).await.unwrap().expect("session opened");
    s.insert_session(&new_session(&u, &b, now())).await.unwrap().expect("session opened");
    s.insert_session(&new_session(&u, &c, now())).await.unwrap().expect("session opened");
    assert!(s.delete_session(TenantId::DEFAULT, u.id, sa.id, now()).await.unwrap());
    assert!(s.delete_session_by_token_hash(&b.hash(), now()).await.unwrap());
    assert_eq!(s.delete_sessions_of_user(TenantId::DEFAULT, u.id, EndSessions::All, now()).await.unwrap(), 1);
    expect_revocations(&mut feed, &[a.hash(), b.hash(), c.hash()]).await;
    // Deleting nothing publishes nothing.
    assert!(!s.delete_session_by_token_hash(&a.hash(), now()).await.unwrap());
    let quiet = tokio::time::timeout(Duration::from_millis(1500), feed.next()).await;
    assert!(quiet.is_err(), "no revocation expected, got {quiet:?}");
}

pub async fn sessions_open_only_against_the_checked_password_of_a_live_account(db: &TestDb) {
    let s = &db.store;
    let u = s.insert_user(&new_user(TenantId::DEFAULT, Some("rita"), None)).await.unwrap();
    // The password changed after the log-in checked it: no session.
    let change = PasswordChange {
        hash: hashed("$argon2id$changed"),
        expected_current: None,
        end_sessions: EndSessions::All,
        is_new_password: true,
        now: now(),
    };
    assert!(s.set_password_hash(TenantId::DEFAULT, u.id, &change).await.unwrap());
    assert!(s.insert_session(&new_session(&u, &token(), now())).await.unwrap().is_none());
    let mut current = new_session(&u, &token(), now());
    current.checked_password_version = 1;
    assert!(s.insert_session(&current).await.unwrap().is_some());
    // A re-encoding of the same password does not move the version.
    let rehash = PasswordChange {
        hash: hashed("$argon2id$rehashed"),
        expected_current: None,
        end_sessions: EndSessions::None,
        is_new_password: false,
        now: now(),
    };
    assert!(s.set_password_hash(TenantId::DEFAULT, u.id, &rehash).await.unwrap());
    assert_eq!(s.user(TenantId::DEFAULT, u.id).await.unwrap().unwrap().password_version, 1);
    let mut after_rehash = new_session(&u, &token(), now());
    after_rehash.checked_password_version = 1;
    assert!(s.insert_session(&after_rehash).await.unwrap().is_some());
    // Disabled: no session, even with the right hash.
    let off = UserUpdate { status: Some(UserStatus::Disabled), ..Default::default() };
    s.update_user(TenantId::DEFAULT, u.id, &off, now()).await.unwrap();
    let mut again = new_session(&u, &token(), now());
    again.checked_password_version = 1;
    assert!(s.insert_session(&again).await.unwrap().is_none());
    // Gone, or in another tenant: no session, and no error.
    let v = s.insert_user(&new_user(TenantId::DEFAULT, Some("sven"), None)).await.unwrap();
    assert!(s.delete_user(TenantId::DEFAULT, v.id, now()).await.unwrap());
    assert!(s.insert_session(&new_session(&v, &token(), now())).await.unwrap().is_none());
    let w = s.insert_user(&new_user(TenantId::DEFAULT, Some("tess"), None)).await.unwrap();
    let other = tenant(s, "other").await;
    let mut elsewhere = new_session(&w, &token(), now());
    elsewhere.tenant_id = other;
    assert!(s.insert_session(&elsewhere).await.unwrap().is_none());
    // Opening the session recorded the log-in.
    let with = s.user(TenantId::DEFAULT, u.id).await.unwrap().unwrap();
    assert!(with.last_login_at.is_some());
}

pub async fn a_username_match_wins_over_a_phone_match_even_against_users_without_usernames(db: &TestDb) {
    let s = &db.store;
    let mut phone_only = new_user(TenantId::DEFAULT, None, Some("p@example.com"));
    phone_only.phone = Some(Phone::parse("5550123").unwrap());
    let phone_only = s.insert_user(&phone_only).await.unwrap();
    let named = s.insert_user(&new_user(TenantId::DEFAULT, Some("abc"), None)).await.unwrap();
    let key = |u: &str, p: &str| LoginKey::UsernameOrPhone { username: u.into(), phone: p.into() };
    let found = |k: LoginKey| {
        let s = s.clone();
        async move { s.user_with_secret(TenantId::DEFAULT, &k).await.unwrap().map(|u| u.user.id) }
    };
    assert_eq!(found(key("abc", "5550123")).await, Some(named.id));
    assert_eq!(found(key("nobody", "5550123")).await, Some(phone_only.id));
    assert_eq!(found(LoginKey::Nobody("ab\u{0}c".into())).await, None);
    assert_eq!(found(LoginKey::from_login("ab\u{0}c")).await, None);
}

pub async fn failed_multi_row_writes_leave_nothing_behind(db: &TestDb) {
    let s = &db.store;
    let def = s
        .insert_attribute_definition(&NewAttributeDefinition {
            tenant_id: TenantId::DEFAULT,
            name: "team".into(),
            kind: AttributeKind::String,
            required: false,
            user_editable: true,
            now: now(),
        })
        .await
        .unwrap();
    // The second role id does not exist: the user, its attributes and its first role must all
    // be rolled back.
    let role = s
        .insert_role(&NewRole { tenant_id: TenantId::DEFAULT, name: "ok".into(), description: None, now: now() })
        .await
        .unwrap();
    let mut nu = new_user(TenantId::DEFAULT, Some("quinn"), Some("quinn@example.com"));
    nu.attributes = vec![(def.id, json!("x"))];
    nu.roles = vec![role.id, RoleId(role.id.0 + 999)];
    assert!(s.insert_user(&nu).await.is_err());
    assert!(s.user_with_secret(TenantId::DEFAULT, &LoginKey::username("quinn")).await.unwrap().is_none());
    nu.roles = vec![role.id];
    let u = s.insert_user(&nu).await.unwrap();
    assert_eq!(u.roles, vec!["ok"]);
}

async fn expect_revocations(feed: &mut portcullis_core::store::RevocationFeed, want: &[TokenHash]) {
    let mut want: HashSet<TokenHash> = want.iter().copied().collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !want.is_empty() {
        let item = tokio::time::timeout_at(deadline, feed.next())
            .await
            .unwrap_or_else(|_| panic!("revocations not heard within 10s: {want:?}"))
            .expect("feed ended");
        match item.unwrap() {
            Revocation::Session(h) => {
                want.remove(&h);
            }
            other => panic!("unexpected revocation {other:?}"),
        }
    }
}

pub async fn a_unit_of_work_commits_all_its_writes_or_none(db: &TestDb) {
    use portcullis_core::model::TokenPurpose;
    use portcullis_core::store::NewOneTimeToken;
    let s = &db.store;
    let token_for = |user: &portcullis_core::model::User| {
        let t = Token::generate("pct_").unwrap();
        let n = NewOneTimeToken {
            tenant_id: user.tenant_id,
            user_id: user.id,
            purpose: TokenPurpose::PasswordReset,
            token_hash: t.hash(),
            data: json!({}),
            expires_at: now().plus(Duration::from_secs(600)),
            now: now(),
        };
        (t, n)
    };

    // Dropped without a commit: neither the user nor the token exists.
    let mut unit = s.begin().await.unwrap();
    let user = unit.insert_user(&new_user(TenantId::DEFAULT, Some("rolled"), None)).await.unwrap();
    let (token, n) = token_for(&user);
    unit.insert_one_time_token(&n).await.unwrap();
    drop(unit);
    assert!(s.user(TenantId::DEFAULT, user.id).await.unwrap().is_none(), "the user was rolled back");
    assert!(s.consume_one_time_token(&token.hash(), TokenPurpose::PasswordReset, now()).await.unwrap().is_none());

    // Committed: every write of the unit landed, across parts.
    let mut unit = s.begin().await.unwrap();
    let user = unit.insert_user(&new_user(TenantId::DEFAULT, Some("kept"), None)).await.unwrap();
    let (token, n) = token_for(&user);
    unit.insert_one_time_token(&n).await.unwrap();
    let change = UserUpdate { status: Some(UserStatus::Pending), ..Default::default() };
    let changed = unit.update_user(TenantId::DEFAULT, user.id, &change, now()).await.unwrap().unwrap();
    assert_eq!(changed.status, UserStatus::Pending, "a unit reads its own writes");
    unit.commit().await.unwrap();
    assert_eq!(s.user(TenantId::DEFAULT, user.id).await.unwrap().unwrap().status, UserStatus::Pending);

    // A token consumed in a unit that rolls back is still there; consumed in one that commits,
    // it is gone, together with the password it paid for.
    let mut unit = s.begin().await.unwrap();
    assert!(unit.consume_one_time_token(&token.hash(), TokenPurpose::PasswordReset, now()).await.unwrap().is_some());
    drop(unit);
    let mut unit = s.begin().await.unwrap();
    assert!(unit.consume_one_time_token(&token.hash(), TokenPurpose::PasswordReset, now()).await.unwrap().is_some());
    let change = PasswordChange {
        hash: hashed("$argon2id$v=19$m=19456,t=2,p=1$bmV3c2FsdA$bmV3aGFzaA"),
        expected_current: None,
        end_sessions: EndSessions::All,
        is_new_password: true,
        now: now(),
    };
    assert!(unit.set_password_hash(TenantId::DEFAULT, user.id, &change).await.unwrap());
    unit.commit().await.unwrap();
    assert!(s.consume_one_time_token(&token.hash(), TokenPurpose::PasswordReset, now()).await.unwrap().is_none());
    let after = s.user_with_secret_by_id(TenantId::DEFAULT, user.id).await.unwrap().unwrap();
    assert_eq!(after.user.password_version, user.password_version + 1);

    // A conflict inside a unit fails that write, and the unit then refuses to commit, so the
    // writes before it cannot land without it (on either database).
    let mut unit = s.begin().await.unwrap();
    let other = unit.insert_user(&new_user(TenantId::DEFAULT, Some("fresh"), None)).await.unwrap();
    let clash = unit.insert_user(&new_user(TenantId::DEFAULT, Some("KEPT"), None)).await;
    assert!(matches!(clash, Err(StoreError::Conflict(UniqueField::Username))));
    assert!(unit.commit().await.is_err(), "a unit with a failed write does not commit");
    assert!(s.user(TenantId::DEFAULT, other.id).await.unwrap().is_none());
    assert!(s.insert_user(&new_user(TenantId::DEFAULT, Some("after"), None)).await.is_ok(), "the writer is free again");
}
