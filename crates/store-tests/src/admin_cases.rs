//! Conformance cases for the operator side of storage: tenant changes, listing and importing
//! users, API keys, one-time tokens and the audit log.

use std::sync::Arc;
use std::time::Duration;

use portcullis_core::audit::{Actor, AuditAction};
use portcullis_core::error::UniqueField;
use portcullis_core::ids::{AuditEventId, TenantId, UserId};
use portcullis_core::model::{AttributeKind, Scope, TenantPolicy, TokenPurpose, UserStatus};
use portcullis_core::parse::{Phone, Username};
use portcullis_core::secret::Token;
use portcullis_core::store::{
    AuditQuery, ImportOutcome, NewApiKey, NewAttributeDefinition, NewAuditEvent, NewOneTimeToken, NewRole, NewTenant,
    Store, StoreError, TenantUpdate, UserQuery, UserUpdate,
};
use serde_json::json;

use crate::TestDb;
use crate::cases::{hashed, new_user, now};

async fn tenant_with_domains(store: &Arc<dyn Store>, slug: &str, domains: &[&str]) -> TenantId {
    store
        .insert_tenant(&NewTenant {
            slug: slug.into(),
            name: slug.into(),
            domains: domains.iter().map(|d| (*d).to_owned()).collect(),
            policy: TenantPolicy::default(),
            now: now(),
        })
        .await
        .unwrap()
        .id
}

fn query(tenant: TenantId) -> UserQuery {
    UserQuery {
        tenant_id: tenant,
        search: None,
        status: None,
        role: None,
        created_after: None,
        created_before: None,
        after: None,
        limit: 100,
    }
}

pub async fn tenants_are_listed_found_by_domain_and_updated(db: &TestDb) {
    let s = &db.store;
    let a = tenant_with_domains(s, "acme", &["acme.example", "acme.test"]).await;
    let b = tenant_with_domains(s, "beta", &["beta.example"]).await;
    let all: Vec<String> = s.tenants().await.unwrap().into_iter().map(|t| t.slug).collect();
    assert_eq!(all, ["default", "acme", "beta"]);
    assert_eq!(s.tenant_by_domain("acme.test").await.unwrap().unwrap().id, a);
    assert!(s.tenant_by_domain("nowhere.example").await.unwrap().is_none());

    let policy = TenantPolicy { require_username: Some(true), ..Default::default() };
    let u = TenantUpdate {
        name: Some("Acme Inc.".into()),
        domains: Some(vec!["acme.org".into()]),
        policy: Some(policy.clone()),
        disabled: Some(true),
    };
    let t = s.update_tenant(a, &u, now()).await.unwrap().unwrap();
    assert_eq!(
        (t.name.as_str(), t.domains.clone(), t.policy.clone(), t.disabled),
        ("Acme Inc.", vec!["acme.org".to_owned()], policy, true)
    );
    assert!(s.tenant_by_domain("acme.example").await.unwrap().is_none(), "old domains are gone");
    assert_eq!(s.tenant_by_domain("acme.org").await.unwrap().unwrap().id, a);

    // A domain belongs to one tenant; a refused update changes nothing.
    let steal = TenantUpdate {
        name: Some("Beta renamed".into()),
        domains: Some(vec!["acme.org".into()]),
        ..Default::default()
    };
    assert!(matches!(s.update_tenant(b, &steal, now()).await, Err(StoreError::Conflict(UniqueField::Domain))));
    let beta = s.tenant(b).await.unwrap().unwrap();
    assert_eq!((beta.name.as_str(), beta.domains), ("beta", vec!["beta.example".to_owned()]));
    assert!(s.update_tenant(TenantId(9999), &TenantUpdate::default(), now()).await.unwrap().is_none());
}

pub async fn users_are_listed_searched_filtered_and_paged(db: &TestDb) {
    let s = &db.store;
    let other = tenant_with_domains(s, "other", &[]).await;
    let role = s
        .insert_role(&NewRole { tenant_id: TenantId::DEFAULT, name: "editor".into(), description: None, now: now() })
        .await
        .unwrap();
    let mut ids = Vec::new();
    for (name, email) in [
        ("ann_1", "ann@x.example"),
        ("bob", "bob@x.example"),
        ("annabel", "a100%@y.example"),
        ("carl", "carl@y.example"),
    ] {
        let mut u = new_user(TenantId::DEFAULT, Some(name), Some(email));
        if name == "bob" {
            u.roles = vec![role.id];
            u.status = UserStatus::Disabled;
        }
        ids.push(s.insert_user(&u).await.unwrap().id);
    }
    s.insert_user(&new_user(other, Some("ann_other"), None)).await.unwrap();

    let names = |users: Vec<portcullis_core::model::User>| -> Vec<String> {
        users.into_iter().filter_map(|u| u.username).collect()
    };
    assert_eq!(names(s.list_users(&query(TenantId::DEFAULT)).await.unwrap()), ["ann_1", "bob", "annabel", "carl"]);
    let search = |text: &str| UserQuery { search: Some(text.into()), ..query(TenantId::DEFAULT) };
    assert_eq!(
        names(s.list_users(&search("ANN")).await.unwrap()),
        ["ann_1", "annabel"],
        "case-insensitive, own tenant only"
    );
    assert_eq!(names(s.list_users(&search("n_")).await.unwrap()), ["ann_1"], "`_` is not a wildcard");
    assert_eq!(names(s.list_users(&search("0%")).await.unwrap()), ["annabel"], "`%` is not a wildcard");
    assert_eq!(names(s.list_users(&search("y.example")).await.unwrap()), ["annabel", "carl"], "e-mail searched");
    let by_status = UserQuery { status: Some(UserStatus::Disabled), ..query(TenantId::DEFAULT) };
    assert_eq!(names(s.list_users(&by_status).await.unwrap()), ["bob"]);
    let by_role = UserQuery { role: Some(role.id), ..query(TenantId::DEFAULT) };
    assert_eq!(names(s.list_users(&by_role).await.unwrap()), ["bob"]);
    let page1 = s.list_users(&UserQuery { limit: 2, ..query(TenantId::DEFAULT) }).await.unwrap();
    let page2 =
        s.list_users(&UserQuery { limit: 2, after: Some(page1[1].id), ..query(TenantId::DEFAULT) }).await.unwrap();
    assert_eq!(names(page1), ["ann_1", "bob"]);
    assert_eq!(names(page2), ["annabel", "carl"]);
    let later = UserQuery { created_after: Some(now().plus(Duration::from_secs(60))), ..query(TenantId::DEFAULT) };
    assert!(s.list_users(&later).await.unwrap().is_empty());

    let with = s.users_with_secrets(TenantId::DEFAULT, Some(ids[1]), 10).await.unwrap();
    assert_eq!(with.iter().map(|u| u.user.id).collect::<Vec<_>>(), ids[2..]);
    assert!(with.iter().all(|u| u.password_hash.is_some()));
}

pub async fn imports_skip_taken_identifiers_and_keep_the_rest(db: &TestDb) {
    let s = &db.store;
    s.insert_user(&new_user(TenantId::DEFAULT, Some("existing"), Some("existing@example.com"))).await.unwrap();
    let role = s
        .insert_role(&NewRole { tenant_id: TenantId::DEFAULT, name: "member".into(), description: None, now: now() })
        .await
        .unwrap();
    let attr = s
        .insert_attribute_definition(&NewAttributeDefinition {
            tenant_id: TenantId::DEFAULT,
            name: "plan".into(),
            kind: AttributeKind::String,
            required: false,
            user_editable: false,
            now: now(),
        })
        .await
        .unwrap();
    let mut first = new_user(TenantId::DEFAULT, Some("imported"), Some("imported@example.com"));
    first.password = Some(hashed("$2b$10$abcdefghijklmnopqrstuuS9uTdbaT6Y0q7mM0s1pXyA8JYc0yDpa"));
    first.roles = vec![role.id];
    first.attributes = vec![(attr.id, json!("gold"))];
    first.email_verified_at = Some(now());
    let mut phone_clash = new_user(TenantId::DEFAULT, Some("phoney"), None);
    phone_clash.phone = Some(Phone::parse("+1 555 0100").unwrap());
    let mut phone_first = new_user(TenantId::DEFAULT, Some("caller"), None);
    phone_first.phone = Some(Phone::parse("+15550100").unwrap());
    let mut sha1 = new_user(TenantId::DEFAULT, Some("legacy"), None);
    sha1.password = Some(hashed("$sha1$5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8"));
    let batch = vec![
        first,
        new_user(TenantId::DEFAULT, Some("Existing"), None),
        new_user(TenantId::DEFAULT, Some("fresh"), Some("EXISTING@example.com")),
        phone_first,
        phone_clash,
        sha1,
    ];
    let out = s.import_users(&batch).await.unwrap();
    assert!(matches!(out[0], ImportOutcome::Created(_)));
    assert_eq!(out[1], ImportOutcome::Taken(UniqueField::Username));
    assert_eq!(out[2], ImportOutcome::Taken(UniqueField::Email));
    assert!(matches!(out[3], ImportOutcome::Created(_)));
    assert_eq!(out[4], ImportOutcome::Taken(UniqueField::Phone), "a clash with an earlier row of the same batch");
    assert!(matches!(out[5], ImportOutcome::Created(_)));

    let ImportOutcome::Created(id) = out[0] else { unreachable!() };
    let u = s.user_with_secret_by_id(TenantId::DEFAULT, id).await.unwrap().unwrap();
    assert_eq!(u.user.roles, ["member"]);
    assert_eq!(u.user.attributes.get("plan"), Some(&json!("gold")));
    assert!(u.user.email_verified_at.is_some());
    assert!(u.password_hash.unwrap().starts_with("$2b$10$"));
    assert!(
        s.user_with_secret(TenantId::DEFAULT, &portcullis_core::parse::LoginKey::username("fresh"))
            .await
            .unwrap()
            .is_none()
    );

    let schemes = s.password_schemes(TenantId::DEFAULT).await.unwrap();
    assert_eq!(schemes, [("argon2id".to_owned(), 2), ("bcrypt".to_owned(), 1), ("sha1".to_owned(), 1)]);
}

pub async fn api_keys_round_trip_and_revoke_within_their_tenant(db: &TestDb) {
    let s = &db.store;
    let other = tenant_with_domains(s, "other", &[]).await;
    let key = |tenant: Option<TenantId>, name: &str| {
        let t = Token::generate("pck_").unwrap();
        let k = NewApiKey {
            tenant_id: tenant,
            name: name.into(),
            prefix: t.expose()[..12].to_owned(),
            key_hash: t.hash(),
            scopes: vec![Scope::UsersRead, Scope::CredentialsVerify],
            expires_at: Some(now().plus(Duration::from_secs(3600))),
            now: now(),
        };
        (t, k)
    };
    let (t1, k1) = key(Some(TenantId::DEFAULT), "backend");
    let (_, k2) = key(None, "ops");
    let (_, k3) = key(Some(other), "theirs");
    let a = s.insert_api_key(&k1).await.unwrap();
    let op = s.insert_api_key(&k2).await.unwrap();
    s.insert_api_key(&k3).await.unwrap();
    assert_eq!(
        (a.tenant_id, a.scopes.clone(), a.name.as_str()),
        (Some(TenantId::DEFAULT), vec![Scope::UsersRead, Scope::CredentialsVerify], "backend")
    );
    assert_eq!(s.api_key_by_hash(&t1.hash()).await.unwrap().unwrap(), a);
    assert!(s.api_key_by_hash(&Token::generate("pck_").unwrap().hash()).await.unwrap().is_none());
    assert_eq!(s.api_keys(Some(TenantId::DEFAULT)).await.unwrap(), std::slice::from_ref(&a));
    assert_eq!(s.api_keys(None).await.unwrap(), std::slice::from_ref(&op));

    let later = now().plus(Duration::from_secs(30));
    s.touch_api_key(a.id, later).await.unwrap();
    s.touch_api_key(a.id, now()).await.unwrap();
    assert_eq!(s.api_key_by_hash(&t1.hash()).await.unwrap().unwrap().last_used_at, Some(later), "never moves back");

    assert!(!s.revoke_api_key(Some(other), a.id, now()).await.unwrap(), "another tenant cannot revoke it");
    assert!(!s.revoke_api_key(None, a.id, now()).await.unwrap());
    assert!(s.revoke_api_key(Some(TenantId::DEFAULT), a.id, now()).await.unwrap());
    assert!(!s.revoke_api_key(Some(TenantId::DEFAULT), a.id, now()).await.unwrap(), "already revoked");
    assert!(s.api_key_by_hash(&t1.hash()).await.unwrap().unwrap().revoked_at.is_some());
    assert!(s.revoke_api_key(None, op.id, now()).await.unwrap());

    let dup = NewApiKey { name: "copy".into(), ..k1 };
    assert!(s.insert_api_key(&dup).await.is_err(), "hashes are unique");
}

pub async fn one_time_tokens_work_once_even_when_raced(db: &TestDb) {
    let s = &db.store;
    let user = s.insert_user(&new_user(TenantId::DEFAULT, Some("linky"), None)).await.unwrap();
    let issue = |purpose: TokenPurpose, ttl: i64| {
        let t = Token::generate("pcl_").unwrap();
        let at = now();
        let expires_at = if ttl >= 0 {
            at.plus(Duration::from_secs(ttl as u64))
        } else {
            portcullis_core::clock::Timestamp::from_unix_micros(at.unix_micros() - 1_000_000)
        };
        let n = NewOneTimeToken {
            tenant_id: TenantId::DEFAULT,
            user_id: user.id,
            purpose,
            token_hash: t.hash(),
            data: json!({"next": "/welcome"}),
            expires_at,
            now: at,
        };
        (t, n)
    };
    let (t, n) = issue(TokenPurpose::Login, 300);
    s.insert_one_time_token(&n).await.unwrap();
    assert!(
        s.consume_one_time_token(&t.hash(), TokenPurpose::PasswordReset, now()).await.unwrap().is_none(),
        "bound to its purpose"
    );

    let second = db.second_handle().await;
    let mut tasks = Vec::new();
    for i in 0..32 {
        let store = if i % 2 == 0 { s.clone() } else { second.clone() };
        let h = t.hash();
        tasks.push(tokio::spawn(
            async move { store.consume_one_time_token(&h, TokenPurpose::Login, now()).await.unwrap() },
        ));
    }
    let mut won = Vec::new();
    for task in tasks {
        if let Some(c) = task.await.unwrap() {
            won.push(c);
        }
    }
    assert_eq!(won.len(), 1, "exactly one consumer gets the token");
    assert_eq!(
        (won[0].tenant_id, won[0].user_id, won[0].data.clone()),
        (TenantId::DEFAULT, user.id, json!({"next": "/welcome"}))
    );

    let (old, n) = issue(TokenPurpose::Login, -1);
    s.insert_one_time_token(&n).await.unwrap();
    assert!(s.consume_one_time_token(&old.hash(), TokenPurpose::Login, now()).await.unwrap().is_none(), "expired");

    // Tokens go with their user.
    let (gone, n) = issue(TokenPurpose::Login, 300);
    s.insert_one_time_token(&n).await.unwrap();
    s.delete_user(TenantId::DEFAULT, user.id, now()).await.unwrap();
    assert!(s.consume_one_time_token(&gone.hash(), TokenPurpose::Login, now()).await.unwrap().is_none());
}

pub async fn audit_events_are_filtered_and_paged_newest_first(db: &TestDb) {
    let s = &db.store;
    let other = tenant_with_domains(s, "other", &[]).await;
    let at = now();
    let ev = |tenant: TenantId, user: i64, action: AuditAction, secs: u64| NewAuditEvent {
        tenant_id: Some(tenant),
        user_id: Some(UserId(user)),
        actor: Actor::User(UserId(user)),
        action,
        ip: Some("192.0.2.1".parse().unwrap()),
        user_agent: Some("agent".into()),
        details: json!({"n": secs}),
        at: at.plus(Duration::from_secs(secs)),
    };
    let events = vec![
        ev(TenantId::DEFAULT, 1, AuditAction::LoginSucceeded, 0),
        ev(TenantId::DEFAULT, 1, AuditAction::LoginFailed, 1),
        ev(TenantId::DEFAULT, 2, AuditAction::Logout, 2),
        ev(TenantId::DEFAULT, 1, AuditAction::UserLoginTokenIssued, 3),
        ev(other, 1, AuditAction::LoginSucceeded, 4),
    ];
    s.insert_audit_events(&events).await.unwrap();
    s.insert_audit_events(&[]).await.unwrap();
    let q = |f: &dyn Fn(&mut AuditQuery)| {
        let mut q = AuditQuery { tenant_id: Some(TenantId::DEFAULT), limit: 100, ..Default::default() };
        f(&mut q);
        q
    };
    let actions = |v: Vec<portcullis_core::model::AuditEvent>| v.into_iter().map(|e| e.action).collect::<Vec<_>>();
    let all = s.audit_events(&q(&|_| {})).await.unwrap();
    assert_eq!(actions(all.clone()), ["user.login_token_issued", "logout", "login.failed", "login.succeeded"]);
    assert_eq!(all[3].details, json!({"n": 0}));
    assert_eq!((all[3].ip, all[3].actor.as_str()), (Some("192.0.2.1".parse().unwrap()), "user:1"));
    assert_eq!(
        actions(s.audit_events(&q(&|q| q.action = Some("login".into()))).await.unwrap()),
        ["login.failed", "login.succeeded"],
        "an action prefix matches whole dotted parts only"
    );
    assert!(
        s.audit_events(&q(&|q| q.action = Some("user.login".into()))).await.unwrap().is_empty(),
        "user.login is not a part of user.login_token_issued"
    );
    assert_eq!(actions(s.audit_events(&q(&|q| q.user_id = Some(UserId(2)))).await.unwrap()), ["logout"]);
    assert_eq!(
        actions(
            s.audit_events(&q(&|q| {
                q.since = Some(at.plus(Duration::from_secs(1)));
                q.until = Some(at.plus(Duration::from_secs(3)))
            }))
            .await
            .unwrap()
        ),
        ["logout", "login.failed"]
    );
    let page = s.audit_events(&q(&|q| q.limit = 2)).await.unwrap();
    let before: AuditEventId = page[1].id;
    assert_eq!(
        actions(s.audit_events(&q(&|q| q.before = Some(before))).await.unwrap()),
        ["login.failed", "login.succeeded"]
    );
    let everywhere = s.audit_events(&AuditQuery { limit: 100, ..Default::default() }).await.unwrap();
    assert_eq!(everywhere.len(), 5);
}

pub async fn roles_and_attributes_are_deleted_with_their_grants(db: &TestDb) {
    let s = &db.store;
    let other = tenant_with_domains(s, "other", &[]).await;
    let role = s
        .insert_role(&NewRole { tenant_id: TenantId::DEFAULT, name: "staff".into(), description: None, now: now() })
        .await
        .unwrap();
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
    let mut u = new_user(TenantId::DEFAULT, Some("staffer"), None);
    u.roles = vec![role.id];
    u.attributes = vec![(attr.id, json!("core"))];
    let user = s.insert_user(&u).await.unwrap();
    assert!(s.update_attribute_definition(other, attr.id, Some(true), None, now()).await.unwrap().is_none());
    let changed =
        s.update_attribute_definition(TenantId::DEFAULT, attr.id, Some(true), None, now()).await.unwrap().unwrap();
    assert_eq!((changed.required, changed.user_editable, changed.kind), (true, true, AttributeKind::String));
    let changed =
        s.update_attribute_definition(TenantId::DEFAULT, attr.id, None, Some(false), now()).await.unwrap().unwrap();
    assert_eq!((changed.required, changed.user_editable), (true, false));
    assert!(!s.delete_role(other, role.id).await.unwrap(), "not from another tenant");
    assert!(!s.delete_attribute_definition(other, attr.id).await.unwrap());
    assert!(s.delete_role(TenantId::DEFAULT, role.id).await.unwrap());
    assert!(s.delete_attribute_definition(TenantId::DEFAULT, attr.id).await.unwrap());
    let after = s.user(TenantId::DEFAULT, user.id).await.unwrap().unwrap();
    assert!(after.roles.is_empty() && after.attributes.is_empty());
    assert!(s.roles(TenantId::DEFAULT).await.unwrap().is_empty());
    // The user is otherwise untouched and still editable.
    let upd = UserUpdate { username: Some(Some(Username::parse("staffer2").unwrap())), ..Default::default() };
    assert!(s.update_user(TenantId::DEFAULT, user.id, &upd, now()).await.unwrap().is_some());
}

pub async fn an_update_with_a_new_password_is_one_transaction(db: &TestDb) {
    let s = &db.store;
    let user = s.insert_user(&new_user(TenantId::DEFAULT, Some("pat"), Some("pat@example.com"))).await.unwrap();
    s.insert_user(&new_user(TenantId::DEFAULT, Some("taken"), None)).await.unwrap();
    let token = Token::generate("pcs_").unwrap();
    let at = now();
    let session = portcullis_core::store::NewSession {
        tenant_id: TenantId::DEFAULT,
        user_id: user.id,
        checked_password_version: 0,
        token_hash: token.hash(),
        now: at,
        expires_at: at.plus(Duration::from_secs(3600)),
        idle_timeout: Duration::from_secs(600),
        user_agent: None,
        ip: None,
    };
    s.insert_session(&session).await.unwrap().unwrap();
    const NEW: &str = "$argon2id$v=19$m=19456,t=2,p=1$bmV3c2FsdA$bmV3aGFzaA";

    // Refused as a whole: the password is not changed and the session lives on.
    let clash = UserUpdate {
        username: Some(Some(Username::parse("taken").unwrap())),
        password: Some(hashed(NEW)),
        ..Default::default()
    };
    assert!(matches!(
        s.update_user(TenantId::DEFAULT, user.id, &clash, now()).await,
        Err(StoreError::Conflict(UniqueField::Username))
    ));
    let still = s.user_with_secret_by_id(TenantId::DEFAULT, user.id).await.unwrap().unwrap();
    assert_ne!(still.password_hash.as_deref(), Some(NEW));
    assert!(s.session_by_token_hash(&token.hash()).await.unwrap().is_some());

    let ok = UserUpdate { password: Some(hashed(NEW)), ..Default::default() };
    let after = s.update_user(TenantId::DEFAULT, user.id, &ok, now()).await.unwrap().unwrap();
    assert_eq!(after.password_version, still.user.password_version + 1);
    assert!(after.password_changed_at.is_some());
    let stored = s.user_with_secret_by_id(TenantId::DEFAULT, user.id).await.unwrap().unwrap();
    assert_eq!(stored.password_hash.as_deref(), Some(NEW));
    assert!(s.session_by_token_hash(&token.hash()).await.unwrap().is_none(), "every session ended");
}
