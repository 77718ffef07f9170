//! The admin API: keys of each scope against every endpoint, user management, one-time log-in
//! tokens, roles, attributes, keys and the audit log.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both;
use crate::support::{Backend, PW, PW2, TestApp, api_key, assert_error, op};

both!(
    each_scope_reaches_exactly_its_endpoints,
    users_are_created_validated_and_changed_as_signup_validates,
    disabling_and_password_changes_end_sessions,
    users_are_listed_searched_and_paged,
    login_tokens_work_once_even_when_raced,
    roles_attributes_and_keys_are_managed,
    the_audit_log_records_events_without_secrets,
    revoked_expired_and_malformed_keys_are_refused,
    concurrent_admin_updates_keep_identifiers_unique,
    legacy_scheme_report_counts_users
);

/// Every admin endpoint with the scope it needs (`None`: operator only).
fn endpoints(user: i64) -> Vec<(Method, String, Option<Value>, Option<&'static str>)> {
    let u = format!("/v1/admin/users/{user}");
    vec![
        (Method::GET, "/v1/admin/users".into(), None, Some("users:read")),
        (Method::GET, "/v1/admin/users/exists?username=alice".into(), None, Some("users:read")),
        (Method::GET, u.clone(), None, Some("users:read")),
        (Method::GET, "/v1/admin/roles".into(), None, Some("users:read")),
        (Method::GET, "/v1/admin/attributes".into(), None, Some("users:read")),
        (
            Method::POST,
            "/v1/admin/users".into(),
            Some(json!({"username": "made", "email": "made@example.com"})),
            Some("users:manage"),
        ),
        (Method::PATCH, u.clone(), Some(json!({"city": "Oslo"})), Some("users:manage")),
        (Method::POST, format!("{u}/disable"), None, Some("users:manage")),
        (Method::POST, format!("{u}/enable"), None, Some("users:manage")),
        (Method::DELETE, format!("{u}/sessions"), None, Some("users:manage")),
        (Method::POST, format!("{u}/login-token"), None, Some("users:manage")),
        (Method::POST, "/v1/admin/roles".into(), Some(json!({"name": "r"})), Some("tenant:admin")),
        (
            Method::POST,
            "/v1/admin/attributes".into(),
            Some(json!({"name": "a", "kind": "string"})),
            Some("tenant:admin"),
        ),
        (Method::GET, "/v1/admin/keys".into(), None, Some("tenant:admin")),
        (Method::GET, "/v1/admin/audit".into(), None, Some("tenant:admin")),
        (Method::GET, "/v1/admin/password-schemes".into(), None, Some("tenant:admin")),
        (Method::GET, "/v1/admin/tenants".into(), None, None),
        (Method::GET, "/v1/admin/tenants/default".into(), None, None),
    ]
}

fn grants(held: &str, needed: Option<&str>) -> bool {
    match (held, needed) {
        ("operator", _) => true,
        (_, None) => false,
        (h, Some(n)) if h == n => true,
        ("tenant:admin", Some("users:read" | "users:manage" | "credentials:verify")) => true,
        ("users:manage", Some("users:read")) => true,
        _ => false,
    }
}

async fn each_scope_reaches_exactly_its_endpoints(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.user("alice", PW).await;
    let alice = app
        .core
        .stores()
        .users
        .user_with_secret(portcullis_core::TenantId::DEFAULT, &portcullis_core::parse::LoginKey::username("alice"))
        .await
        .unwrap()
        .unwrap()
        .user
        .id
        .0;
    let session = app.token("alice", PW).await;
    for held in ["credentials:verify", "users:read", "users:manage", "tenant:admin", "operator"] {
        let tenant = if held == "operator" { None } else { Some(portcullis_core::TenantId::DEFAULT) };
        let key = api_key(&app, tenant, &[held]).await;
        for (method, path, body, needed) in endpoints(alice) {
            let (status, json) = app.send(method.clone(), &path, &key, body.clone()).await;
            if grants(held, needed) {
                assert!(
                    status.is_success() || status == StatusCode::CONFLICT,
                    "{held} {method} {path}: {status} {json}"
                );
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{held} {method} {path}: {json}");
                assert_eq!(json["error"]["code"], "forbidden");
            }
        }
        // Make the next round's creations possible again.
        for r in app.core.stores().roles.roles(portcullis_core::TenantId::DEFAULT).await.unwrap() {
            app.core.stores().roles.delete_role(portcullis_core::TenantId::DEFAULT, r.id).await.unwrap();
        }
        for a in app.core.stores().attributes.attribute_definitions(portcullis_core::TenantId::DEFAULT).await.unwrap() {
            app.core
                .stores()
                .attributes
                .delete_attribute_definition(portcullis_core::TenantId::DEFAULT, a.id)
                .await
                .unwrap();
        }
        if let Some(made) = app
            .core
            .stores()
            .users
            .user_with_secret(portcullis_core::TenantId::DEFAULT, &portcullis_core::parse::LoginKey::username("made"))
            .await
            .unwrap()
        {
            app.core
                .stores()
                .users
                .delete_user(portcullis_core::TenantId::DEFAULT, made.user.id, app.core.now())
                .await
                .unwrap();
        }
    }
    // A session token is not an API key, and no key is no access.
    let res = app.call(Method::GET, "/v1/admin/users", Some(&session), None).await;
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let res = app.call(Method::GET, "/v1/admin/users", None, None).await;
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

async fn users_are_created_validated_and_changed_as_signup_validates(b: Backend) {
    let app = TestApp::spawn(b).await;
    let key = api_key(&app, Some(portcullis_core::TenantId::DEFAULT), &["tenant:admin"]).await;
    let (s, _) = app.send(Method::POST, "/v1/admin/roles", &key, Some(json!({"name": "editor"}))).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = app
        .send(
            Method::POST,
            "/v1/admin/attributes",
            &key,
            Some(json!({"name": "plan", "kind": "string", "required": true})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);

    // Validated as sign-up validates, every problem at once; nothing written.
    let bad = json!({"username": "x y", "email": "not-an-email", "password": "short", "roles": ["ghost"], "website": "javascript:alert(1)"});
    let (s, body) = app.send(Method::POST, "/v1/admin/users", &key, Some(bad)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    for f in ["username", "email", "roles", "website", "attributes.plan"] {
        assert!(body["error"]["fields"][f].is_string(), "{f} reported: {body}");
    }
    let weak = json!({"username": "weakling", "email": "weak@example.com", "password": "password1", "attributes": {"plan": "free"}});
    let (s, body) = app.send(Method::POST, "/v1/admin/users", &key, Some(weak)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"]["fields"]["password"].is_string());
    let (s, body) = app.send(Method::GET, "/v1/admin/users", &key, None).await;
    assert_eq!((s, body["users"].as_array().unwrap().len()), (StatusCode::OK, 0), "nothing half-written");

    let good = json!({
        "username": "Grace", "email": "grace@example.com", "password": PW, "first_name": "Grace",
        "roles": ["EDITOR"], "attributes": {"plan": "gold"}, "email_verified": true, "phone": "+1 555 0100"
    });
    let (s, body) = app.send(Method::POST, "/v1/admin/users", &key, Some(good.clone())).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let user = &body["user"];
    assert_eq!(
        (user["roles"].clone(), user["attributes"]["plan"].clone(), user["email_verified"].clone()),
        (json!(["editor"]), json!("gold"), json!(true))
    );
    assert!(user.get("password_hash").is_none() && !body.to_string().contains("argon2"));
    let id = user["id"].as_i64().unwrap();
    app.token("grace@example.com", PW).await;

    let (s, body) = app
        .send(
            Method::POST,
            "/v1/admin/users",
            &key,
            Some(json!({"username": "grace", "email": "other@example.com", "attributes": {"plan": "x"}})),
        )
        .await;
    assert_eq!((s, body["error"]["fields"]["username"].as_str()), (StatusCode::CONFLICT, Some("is already taken")));

    // Exists, for keys that may read users.
    for (q, want) in [
        ("username=GRACE", true),
        ("email=grace@example.com", true),
        ("phone=%2B15550100", true),
        ("login=nobody", false),
    ] {
        let (s, body) = app.send(Method::GET, &format!("/v1/admin/users/exists?{q}"), &key, None).await;
        assert_eq!((s, body["exists"].as_bool()), (StatusCode::OK, Some(want)), "{q}");
    }
    let (s, _) = app.send(Method::GET, "/v1/admin/users/exists?username=a&email=b", &key, None).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = app.send(Method::GET, "/v1/admin/users/exists?colour=red", &key, None).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    // Changing the e-mail makes it unverified; roles are replaced; a read-only field is refused.
    let path = format!("/v1/admin/users/{id}");
    let (s, body) =
        app.send(Method::PATCH, &path, &key, Some(json!({"email": "grace@new.example", "roles": []}))).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!((body["user"]["email_verified"].clone(), body["user"]["roles"].clone()), (json!(false), json!([])));
    let (s, body) = app.send(Method::PATCH, &path, &key, Some(json!({"created_at": "2020-01-01T00:00:00Z"}))).await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("field_not_editable")));
    let (s, _) = app.send(Method::PATCH, &path, &key, Some(json!({"attributes": {"plan": null}}))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "a required attribute cannot be cleared");
    let (s, _) = app.send(Method::PATCH, &path, &key, Some(json!({"status": "frozen"}))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    for bad in ["/v1/admin/users/0", "/v1/admin/users/abc", "/v1/admin/users/999999"] {
        let (s, _) = app.send(Method::GET, bad, &key, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{bad}");
    }
    let (s, _) = app.send(Method::DELETE, &path, &key, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.send(Method::GET, &path, &key, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(app.login("grace@new.example", PW).await.0, StatusCode::UNAUTHORIZED);
}

async fn disabling_and_password_changes_end_sessions(b: Backend) {
    let app = TestApp::spawn(b).await;
    let key = api_key(&app, Some(portcullis_core::TenantId::DEFAULT), &["users:manage"]).await;
    let session = app.user("dave", PW).await;
    let (_, me) = app.send(Method::GET, "/v1/me", &session, None).await;
    let path = format!("/v1/admin/users/{}", me["user"]["id"]);

    let (s, body) = app.send(Method::POST, &format!("{path}/disable"), &key, None).await;
    assert_eq!((s, body["user"]["status"].as_str()), (StatusCode::OK, Some("disabled")));
    assert_eq!(app.session_status(&session).await, StatusCode::UNAUTHORIZED, "disabling ends sessions at once");
    let (s, body) = app.login("dave", PW).await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("account_disabled")));
    let (s, _) = app.send(Method::POST, &format!("{path}/login-token"), &key, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "no log-in link for a disabled account");
    let (s, body) = app.send(Method::POST, &format!("{path}/enable"), &key, None).await;
    assert_eq!((s, body["user"]["status"].as_str()), (StatusCode::OK, Some("active")));

    let a = app.token("dave", PW).await;
    let c = app.token("dave", PW).await;
    let (s, body) = app.send(Method::PATCH, &path, &key, Some(json!({"password": "123"}))).await;
    assert_eq!(
        (s, body["error"]["fields"]["password"].is_string()),
        (StatusCode::UNPROCESSABLE_ENTITY, true),
        "policy applies"
    );
    assert_eq!(app.session_status(&a).await, StatusCode::OK, "a refused change changes nothing");
    let (s, _) = app.send(Method::PATCH, &path, &key, Some(json!({"password": PW2}))).await;
    assert_eq!(s, StatusCode::OK);
    for t in [&a, &c] {
        assert_eq!(app.session_status(t).await, StatusCode::UNAUTHORIZED, "a new password ends every session");
    }
    assert_eq!(app.login("dave", PW).await.0, StatusCode::UNAUTHORIZED);
    let d = app.token("dave", PW2).await;
    let (s, body) = app.send(Method::DELETE, &format!("{path}/sessions"), &key, None).await;
    assert_eq!((s, body["sessions_ended"].as_u64()), (StatusCode::OK, Some(1)));
    assert_eq!(app.session_status(&d).await, StatusCode::UNAUTHORIZED);
}

async fn users_are_listed_searched_and_paged(b: Backend) {
    let app = TestApp::spawn(b).await;
    let key = api_key(&app, Some(portcullis_core::TenantId::DEFAULT), &["users:read"]).await;
    for n in ["amy", "ben", "amelia", "carl", "ann"] {
        app.user(n, PW).await;
    }
    let (s, body) = app.send(Method::GET, "/v1/admin/users?limit=2", &key, None).await;
    assert_eq!(s, StatusCode::OK);
    let mut names: Vec<String> =
        body["users"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap().to_owned()).collect();
    let mut next = body["next"].as_i64();
    while let Some(after) = next {
        let (_, page) = app.send(Method::GET, &format!("/v1/admin/users?limit=2&after={after}"), &key, None).await;
        names.extend(page["users"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap().to_owned()));
        next = page["next"].as_i64();
    }
    assert_eq!(names, ["amy", "ben", "amelia", "carl", "ann"], "every user once, in id order");
    let (_, body) = app.send(Method::GET, "/v1/admin/users?q=mY", &key, None).await;
    let found: Vec<&str> = body["users"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(found, ["amy"], "case-insensitive");
    let (_, body) = app.send(Method::GET, "/v1/admin/users?status=disabled", &key, None).await;
    assert!(body["users"].as_array().unwrap().is_empty());
    let (_, body) = app.send(Method::GET, "/v1/admin/users?role=nosuchrole", &key, None).await;
    assert!(body["users"].as_array().unwrap().is_empty());
    let (_, body) = app.send(Method::GET, "/v1/admin/users?created_after=2000-01-01T00:00:00Z", &key, None).await;
    assert_eq!(body["users"].as_array().unwrap().len(), 5);
    for bad in ["limit=0", "limit=5000", "limit=x", "after=-1", "status=gone", "created_after=yesterday", "sort=name"] {
        let res = app.call(Method::GET, &format!("/v1/admin/users?{bad}"), Some(&key), None).await;
        assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    }
}

async fn login_tokens_work_once_even_when_raced(b: Backend) {
    let app = TestApp::spawn(b).await;
    let key = api_key(&app, Some(portcullis_core::TenantId::DEFAULT), &["users:manage"]).await;
    app.user("erin", PW).await;
    let (_, found) = app.send(Method::GET, "/v1/admin/users?q=erin", &key, None).await;
    let path = format!("/v1/admin/users/{}/login-token", found["users"][0]["id"]);

    let (s, body) = app.send(Method::POST, &path, &key, None).await;
    assert_eq!(s, StatusCode::CREATED);
    let token = body["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("pcl_") && token.len() >= 47);
    // Invariant 4: of many concurrent exchanges, exactly one gets a session.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (client, url, t) = (app.client.clone(), app.url("/v1/login/token"), token.clone());
        tasks.push(tokio::spawn(async move { client.post(url).json(&json!({"token": t})).send().await.unwrap() }));
    }
    let mut ok = Vec::new();
    for t in tasks {
        let res = t.await.unwrap();
        if res.status() == StatusCode::OK {
            ok.push(res.json::<Value>().await.unwrap());
        } else {
            assert_error(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
        }
    }
    assert_eq!(ok.len(), 1, "exactly one exchange wins");
    let session = ok[0]["session"]["token"].as_str().unwrap();
    assert_eq!(app.session_status(session).await, StatusCode::OK);
    assert_eq!(ok[0]["user"]["username"], "erin");

    // Expired after ten minutes.
    let (_, body) = app.send(Method::POST, &path, &key, None).await;
    app.clock.advance(Duration::from_secs(11 * 60));
    let res = app.post("/v1/login/token", json!({"token": body["token"]})).await;
    assert_error(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;

    // A password change voids tokens issued before it.
    let (_, body) = app.send(Method::POST, &path, &key, None).await;
    let user_path = path.trim_end_matches("/login-token").to_owned();
    let (s, _) = app.send(Method::PATCH, &user_path, &key, Some(json!({"password": PW2}))).await;
    assert_eq!(s, StatusCode::OK);
    let res = app.post("/v1/login/token", json!({"token": body["token"]})).await;
    assert_error(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;

    for garbage in [json!({"token": "pcl_short"}), json!({"token": "pcs_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"})]
    {
        let res = app.post("/v1/login/token", garbage).await;
        assert_error(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    let res = app.post("/v1/login/token", json!({"token": 5})).await;
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
}

async fn roles_attributes_and_keys_are_managed(b: Backend) {
    let app = TestApp::spawn(b).await;
    let admin = api_key(&app, Some(portcullis_core::TenantId::DEFAULT), &["tenant:admin"]).await;
    let (s, role) = app
        .send(Method::POST, "/v1/admin/roles", &admin, Some(json!({"name": "Moderator", "description": "keeps order"})))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = app.send(Method::POST, "/v1/admin/roles", &admin, Some(json!({"name": "moderator"}))).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = app.send(Method::POST, "/v1/admin/roles", &admin, Some(json!({"name": ""}))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, roles) = app.send(Method::GET, "/v1/admin/roles", &admin, None).await;
    assert_eq!(roles["roles"][0]["name"], "Moderator");
    let (s, _) = app.send(Method::DELETE, &format!("/v1/admin/roles/{}", role["id"]), &admin, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.send(Method::DELETE, &format!("/v1/admin/roles/{}", role["id"]), &admin, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, attr) = app
        .send(
            Method::POST,
            "/v1/admin/attributes",
            &admin,
            Some(json!({"name": "age", "kind": "integer", "user_editable": true})),
        )
        .await;
    assert_eq!(
        (s, attr["kind"].as_str(), attr["user_editable"].as_bool()),
        (StatusCode::CREATED, Some("integer"), Some(true))
    );
    let (s, _) =
        app.send(Method::POST, "/v1/admin/attributes", &admin, Some(json!({"name": "x", "kind": "colour"}))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // Users may now set it themselves, typed.
    let session = app.user("fay", PW).await;
    let (s, _) = app.send(Method::PATCH, "/v1/me", &session, Some(json!({"attributes": {"age": "thirty"}}))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, me) = app.send(Method::PATCH, "/v1/me", &session, Some(json!({"attributes": {"age": 30}}))).await;
    assert_eq!((s, me["user"]["attributes"]["age"].as_i64()), (StatusCode::OK, Some(30)));
    let attr_path = format!("/v1/admin/attributes/{}", attr["id"]);
    let (s, body) = app.send(Method::PATCH, &attr_path, &admin, Some(json!({"user_editable": false}))).await;
    assert_eq!(
        (s, body["user_editable"].as_bool(), body["kind"].as_str()),
        (StatusCode::OK, Some(false), Some("integer"))
    );
    let (s, _) = app.send(Method::PATCH, "/v1/me", &session, Some(json!({"attributes": {"age": 31}}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "no longer user-editable");
    let (s, _) = app.send(Method::PATCH, &attr_path, &admin, Some(json!({"kind": "string"}))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "the type cannot change");
    let (s, _) = app.send(Method::DELETE, &format!("/v1/admin/attributes/{}", attr["id"]), &admin, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);

    // Keys: shown once, listed without the secret, revocable.
    let (s, created) = app
        .send(
            Method::POST,
            "/v1/admin/keys",
            &admin,
            Some(json!({"name": "billing", "scopes": ["users:read"], "expires_at": "2099-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let secret = created["key"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("pck_") && secret.starts_with(created["prefix"].as_str().unwrap()));
    let (s, _) = app.send(Method::GET, "/v1/admin/users", &secret, None).await;
    assert_eq!(s, StatusCode::OK);
    let (_, list) = app.send(Method::GET, "/v1/admin/keys", &admin, None).await;
    assert!(!list.to_string().contains(&secret), "the secret is never listed");
    let billing = list["keys"].as_array().unwrap().iter().find(|k| k["name"] == "billing").unwrap().clone();
    assert!(billing["last_used_at"].is_string(), "use is recorded");
    for bad in [
        json!({"name": "x", "scopes": ["operator"]}),
        json!({"name": "x", "scopes": []}),
        json!({"name": "x", "scopes": ["root"]}),
        json!({"name": "", "scopes": ["users:read"]}),
        json!({"name": "x", "scopes": ["users:read"], "expires_at": "2001-01-01T00:00:00Z"}),
    ] {
        let (s, body) = app.send(Method::POST, "/v1/admin/keys", &admin, Some(bad.clone())).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
    }
    let (s, _) = app.send(Method::DELETE, &format!("/v1/admin/keys/{}", billing["id"]), &admin, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.send(Method::GET, "/v1/admin/users", &secret, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "a revoked key stops working at once");
}

async fn the_audit_log_records_events_without_secrets(b: Backend) {
    let app = TestApp::spawn(b).await;
    let admin = api_key(&app, Some(portcullis_core::TenantId::DEFAULT), &["tenant:admin"]).await;
    let session = app.user("gail", PW).await;
    assert_eq!(app.login("gail", "wrong password here").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.login("nobody-at-all", PW).await.0, StatusCode::UNAUTHORIZED);
    app.token("gail", PW).await;
    let res = app
        .call(
            Method::POST,
            "/v1/me/password",
            Some(&session),
            Some(json!({"current_password": PW, "new_password": PW2})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app.call(Method::POST, "/v1/logout", Some(&session), None).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (_, me) = app.send(Method::GET, "/v1/admin/users?q=gail", &admin, None).await;
    let id = me["users"][0]["id"].as_i64().unwrap();
    app.send(Method::PATCH, &format!("/v1/admin/users/{id}"), &admin, Some(json!({"city": "Turku"}))).await;

    let (s, log) = app.send(Method::GET, "/v1/admin/audit?limit=1000", &admin, None).await;
    assert_eq!(s, StatusCode::OK);
    let events = log["events"].as_array().unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e["action"].as_str().unwrap()).collect();
    for want in [
        "signup",
        "login.succeeded",
        "login.failed",
        "password.changed",
        "logout",
        "user.updated",
        "api_key.created",
        "api_key.used",
    ] {
        assert!(actions.contains(&want), "{want} recorded: {actions:?}");
    }
    let failed: Vec<&Value> = events.iter().filter(|e| e["action"] == "login.failed").collect();
    assert_eq!(failed.len(), 2);
    assert!(failed.iter().any(|e| e["user_id"] == id) && failed.iter().any(|e| e["user_id"].is_null()));
    let ok = events.iter().find(|e| e["action"] == "login.succeeded").unwrap();
    assert_eq!((ok["ip"].as_str(), ok["user_agent"].as_str()), (Some("127.0.0.1"), Some("portcullis-tests/1.0")));
    let by_key = events
        .iter()
        .find(|e| e["action"] == "user.updated" && e["actor"].as_str().unwrap().starts_with("key:"))
        .unwrap();
    assert_eq!(by_key["user_id"], id);
    let text = log.to_string();
    for secret in [PW, PW2, "wrong password here", admin.as_str(), session.as_str()] {
        assert!(!text.contains(secret), "no secret in the audit log");
    }
    // Filters.
    let (_, only) = app.send(Method::GET, &format!("/v1/admin/audit?action=login&user_id={id}"), &admin, None).await;
    assert!(
        only["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["action"].as_str().unwrap().starts_with("login.") && e["user_id"] == id)
    );
    let (_, page) = app.send(Method::GET, "/v1/admin/audit?limit=2", &admin, None).await;
    let next = page["next"].as_i64().unwrap();
    let (_, rest) = app.send(Method::GET, &format!("/v1/admin/audit?before={next}&limit=1000"), &admin, None).await;
    assert_eq!(rest["events"].as_array().unwrap().len() + 2, events.len());
    let (s, _) = app.send(Method::GET, "/v1/admin/audit?since=soon", &admin, None).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn revoked_expired_and_malformed_keys_are_refused(b: Backend) {
    let app = TestApp::spawn(b).await;
    let cmd = portcullis_core::keys::CreateApiKeyCommand {
        tenant: Some(portcullis_core::TenantId::DEFAULT),
        name: "short-lived".into(),
        scopes: vec![portcullis_core::model::Scope::TenantAdmin],
        expires_at: Some(app.core.now().plus(Duration::from_secs(60))),
        problems: Default::default(),
    };
    let issued = app.core.create_api_key(&op(), cmd).await.unwrap();
    let key = issued.key.expose().to_owned();
    assert_eq!(app.send(Method::GET, "/v1/admin/users", &key, None).await.0, StatusCode::OK);
    // A key it creates cannot outlive it.
    let (s, child) =
        app.send(Method::POST, "/v1/admin/keys", &key, Some(json!({"name": "child", "scopes": ["users:read"]}))).await;
    assert_eq!(s, StatusCode::CREATED, "{child}");
    assert_eq!(child["expires_at"], json!(issued.record.expires_at), "expires with its creator");
    let later = json!({"name": "later", "scopes": ["users:read"], "expires_at": "2099-01-01T00:00:00Z"});
    let (s, body) = app.send(Method::POST, "/v1/admin/keys", &key, Some(later)).await;
    assert_eq!((s, body["error"]["fields"]["expires_at"].is_string()), (StatusCode::UNPROCESSABLE_ENTITY, true));
    app.clock.advance(Duration::from_secs(61));
    let res = app.call(Method::GET, "/v1/admin/users", Some(&key), None).await;
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    for bad in ["pck_", "pck_AAAA", &key.replace("pck_", "pcs_"), &format!("{key}x"), "Basic abc"] {
        let res = app.call(Method::GET, "/v1/admin/users", Some(bad), None).await;
        assert_error(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    let res =
        app.client.get(app.url("/v1/admin/users")).header("authorization", "Basic dXNlcjpwYXNz").send().await.unwrap();
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

async fn concurrent_admin_updates_keep_identifiers_unique(b: Backend) {
    let app = TestApp::spawn(b).await;
    let key = api_key(&app, Some(portcullis_core::TenantId::DEFAULT), &["users:manage"]).await;
    let mut ids = Vec::new();
    for n in 0..6 {
        let (s, body) = app
            .send(
                Method::POST,
                "/v1/admin/users",
                &key,
                Some(json!({"username": format!("racer{n}"), "email": format!("racer{n}@example.com")})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        ids.push(body["user"]["id"].as_i64().unwrap());
    }
    // Six updates race to take the same e-mail address: exactly one wins, the rest get 409.
    let mut tasks = Vec::new();
    for id in &ids {
        let (client, url, key) = (app.client.clone(), app.url(&format!("/v1/admin/users/{id}")), key.clone());
        tasks.push(tokio::spawn(async move {
            client
                .patch(url)
                .bearer_auth(key)
                .json(&json!({"email": "Taken@Example.com", "city": "Riga"}))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CONFLICT).count(), 5, "{statuses:?}");
    let (_, all) = app.send(Method::GET, "/v1/admin/users", &key, None).await;
    let with_city = all["users"].as_array().unwrap().iter().filter(|u| u["city"] == "Riga").count();
    assert_eq!(with_city, 1, "a refused update wrote none of its fields");
}

async fn legacy_scheme_report_counts_users(b: Backend) {
    let app = TestApp::spawn(b).await;
    let key = api_key(&app, Some(portcullis_core::TenantId::DEFAULT), &["tenant:admin"]).await;
    app.user("hank", PW).await;
    let (s, body) = app.send(Method::GET, "/v1/admin/password-schemes", &key, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!((body["schemes"]["argon2id"].as_u64(), body["legacy"].as_u64()), (Some(1), Some(0)));
}
