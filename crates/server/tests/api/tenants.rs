//! Tenants: per-tenant routes, domains, policy, and isolation — nothing of tenant A works in
//! tenant B.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::both;
use crate::support::{Backend, PW, TestApp, api_key, assert_error, tenant};

both!(
    sessions_keys_and_users_never_cross_tenants,
    tenants_are_reached_by_path_and_by_host,
    each_tenant_applies_its_own_policy,
    operators_manage_tenants_and_disabling_shuts_one,
    only_operator_keys_manage_tenants,
    password_guessing_limits_are_kept_per_tenant
);

async fn sessions_keys_and_users_never_cross_tenants(b: Backend) {
    let app = TestApp::spawn(b).await;
    let a = tenant(&app, "alpha", &[]).await;
    tenant(&app, "beta", &[]).await;
    // The same e-mail can exist once per tenant.
    for t in ["alpha", "beta"] {
        let res = app
            .post(&format!("/t/{t}/v1/signup"), json!({"email": "same@example.com", "password": PW, "first_name": t}))
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    let res = app.post("/t/alpha/v1/login", json!({"login": "same@example.com", "password": PW})).await;
    let cookie = res.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
    assert!(cookie.contains("; Path=/t/alpha/;"), "tenants sharing a host keep separate cookies: {cookie}");
    let body: serde_json::Value = res.json().await.unwrap();
    let alpha_session = body["session"]["token"].as_str().unwrap().to_owned();
    assert_eq!(body["user"]["first_name"], "alpha");
    assert_eq!(app.call(Method::GET, "/t/alpha/v1/me", Some(&alpha_session), None).await.status(), StatusCode::OK);
    for path in ["/t/beta/v1/me", "/v1/me", "/t/beta/v1/session"] {
        let res = app.call(Method::GET, path, Some(&alpha_session), None).await;
        assert_error(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    // A user of alpha cannot log in to the default tenant.
    assert_eq!(app.login("same@example.com", PW).await.0, StatusCode::UNAUTHORIZED);

    // An alpha key is worthless in beta and in the default tenant, however it is presented.
    let key = api_key(&app, Some(a), &["tenant:admin"]).await;
    let (s, users) = app.send(Method::GET, "/t/alpha/v1/admin/users", &key, None).await;
    assert_eq!((s, users["users"].as_array().unwrap().len()), (StatusCode::OK, 1));
    let alpha_user = users["users"][0]["id"].as_i64().unwrap();
    for path in ["/t/beta/v1/admin/users", "/v1/admin/users", &format!("/t/beta/v1/admin/users/{alpha_user}")] {
        let res = app.call(Method::GET, path, Some(&key), None).await;
        assert_error(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    // Refused before the body is even looked at, like an unknown key.
    let res = app.call(Method::POST, "/t/beta/v1/admin/users", Some(&key), Some(json!({"nonsense": true}))).await;
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let res = app
        .call(
            Method::POST,
            "/t/beta/v1/credentials/verify",
            Some(&key),
            Some(json!({"login": "same@example.com", "password": PW})),
        )
        .await;
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    // Ids do not leak across tenants either: beta's operator view does not find alpha's user.
    let op = api_key(&app, None, &["operator"]).await;
    let (s, _) = app.send(Method::GET, &format!("/t/beta/v1/admin/users/{alpha_user}"), &op, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.send(Method::GET, &format!("/t/alpha/v1/admin/users/{alpha_user}"), &op, None).await;
    assert_eq!(s, StatusCode::OK, "an operator key acts in every tenant");
    // A login token of alpha does not open a session in beta, and trying does not spend it:
    // it still works in alpha.
    let (_, t) = app.send(Method::POST, &format!("/t/alpha/v1/admin/users/{alpha_user}/login-token"), &key, None).await;
    let res = app.post("/t/beta/v1/login/token", json!({"token": t["token"]})).await;
    assert_error(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let res = app.post("/t/alpha/v1/login/token", json!({"token": t["token"]})).await;
    assert_eq!(res.status(), StatusCode::OK);
    // Sign-up under a tenant points at the account under that tenant.
    let res = app.post("/t/alpha/v1/signup", json!({"email": "located@example.com", "password": PW})).await;
    assert_eq!(res.headers()["location"], "/t/alpha/v1/me");
    let res = app.post("/v1/signup", json!({"email": "located@example.com", "password": PW})).await;
    assert_eq!(res.headers()["location"], "/v1/me");
    // Session lifetimes are bounded: a policy of 2^64-1 seconds is refused, nothing changes.
    for key in ["session_absolute_ttl_secs", "session_idle_ttl_secs"] {
        let body = json!({"policy": {key: u64::MAX}});
        let (s, e) = app.send(Method::PATCH, "/v1/admin/tenants/alpha", &op, Some(body)).await;
        assert_eq!((s, &e["error"]["code"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("validation_failed")), "{e}");
    }
    let body = json!({"policy": {"session_absolute_ttl_secs": 400 * 24 * 3600}});
    let (s, _) = app.send(Method::PATCH, "/v1/admin/tenants/alpha", &op, Some(body)).await;
    assert_eq!(s, StatusCode::OK, "400 days is the longest");
}

async fn tenants_are_reached_by_path_and_by_host(b: Backend) {
    let app = TestApp::spawn(b).await;
    tenant(&app, "chat", &["chat.example.org"]).await;
    let res = app.post("/t/chat/v1/signup", json!({"email": "host@example.com", "password": PW})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    // A request whose Host is the tenant's domain is served by that tenant.
    let res = app
        .client
        .post(app.url("/v1/login"))
        .header("host", "Chat.Example.org:8443")
        .json(&json!({"login": "host@example.com", "password": PW}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .client
        .post(app.url("/v1/login"))
        .header("host", "other.example.org")
        .json(&json!({"login": "host@example.com", "password": PW}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "another host is the default tenant");
    for path in ["/t/nope/v1/login", "/t/NOPE/v1/session", "/t/chat/v1/nothing-here", "/t/chat"] {
        let res = app.call(Method::POST, path, None, Some(json!({}))).await;
        assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
    }
    // The domain resolves for a user@domain login too.
    assert!(app.core.tenant_for_domain("CHAT.example.org").await.unwrap().is_some());
    assert!(app.core.tenant_for_domain("example.org").await.unwrap().is_none());
}

async fn each_tenant_applies_its_own_policy(b: Backend) {
    let app = TestApp::spawn(b).await;
    let op = api_key(&app, None, &["operator"]).await;
    let policy =
        json!({"require_username": true, "require_email": false, "password_min_length": 20, "signup_open": true});
    let (s, body) =
        app.send(Method::POST, "/v1/admin/tenants", &op, Some(json!({"slug": "strict", "policy": policy}))).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let res = app.post("/t/strict/v1/signup", json!({"email": "p@example.com", "password": "quiet lantern"})).await;
    let body = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert!(
        body["error"]["fields"]["username"].is_string() && body["error"]["fields"]["password"].is_string(),
        "{body}"
    );
    let res =
        app.post("/t/strict/v1/signup", json!({"username": "pat", "password": "a much longer passphrase here"})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    // The default tenant keeps the server policy.
    let res = app.post("/v1/signup", json!({"email": "p@example.com", "password": PW})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let (s, _) =
        app.send(Method::PATCH, "/v1/admin/tenants/strict", &op, Some(json!({"policy": {"signup_open": false}}))).await;
    assert_eq!(s, StatusCode::OK);
    let res =
        app.post("/t/strict/v1/signup", json!({"username": "sam", "password": "a much longer passphrase here"})).await;
    assert_error(res, StatusCode::FORBIDDEN, "signup_closed").await;
    let (s, body) = app
        .send(Method::PATCH, "/v1/admin/tenants/strict", &op, Some(json!({"policy": {"password_min_length": 0}})))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (s, _) =
        app.send(Method::PATCH, "/v1/admin/tenants/strict", &op, Some(json!({"policy": {"colour": "red"}}))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn operators_manage_tenants_and_disabling_shuts_one(b: Backend) {
    let app = TestApp::spawn(b).await;
    let op = api_key(&app, None, &["operator"]).await;
    let (s, t) = app
        .send(
            Method::POST,
            "/v1/admin/tenants",
            &op,
            Some(json!({"slug": "shop", "name": "The Shop", "domains": ["shop.example", "SHOP.example."]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    assert_eq!(t["domains"], json!(["shop.example"]));
    assert!(t["id"].as_i64().unwrap() > 1);
    for bad in [
        json!({"slug": "shop"}),
        json!({"slug": "Bad Slug"}),
        json!({"slug": "x", "domains": ["not a domain"]}),
        json!({"slug": "y", "domains": ["shop.example"]}),
    ] {
        let (s, body) = app.send(Method::POST, "/v1/admin/tenants", &op, Some(bad.clone())).await;
        assert!(s == StatusCode::CONFLICT || s == StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {s} {body}");
    }
    let (_, list) = app.send(Method::GET, "/v1/admin/tenants", &op, None).await;
    let slugs: Vec<&str> = list["tenants"].as_array().unwrap().iter().map(|t| t["slug"].as_str().unwrap()).collect();
    assert_eq!(slugs, ["default", "shop"]);

    let res = app.post("/t/shop/v1/signup", json!({"email": "buyer@example.com", "password": PW})).await;
    let body: serde_json::Value = res.json().await.unwrap();
    let session = body["session"]["token"].as_str().unwrap().to_owned();
    let shop_key = api_key(&app, Some(portcullis_core::TenantId(t["id"].as_i64().unwrap())), &["users:read"]).await;
    let (s, body) = app.send(Method::PATCH, "/v1/admin/tenants/shop", &op, Some(json!({"disabled": true}))).await;
    assert_eq!((s, body["disabled"].as_bool()), (StatusCode::OK, Some(true)));
    let res = app.call(Method::GET, "/t/shop/v1/session", Some(&session), None).await;
    assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app
        .client
        .get(app.url("/v1/session"))
        .header("host", "shop.example")
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "the domain of a disabled tenant serves nobody");
    let res = app.call(Method::GET, "/t/shop/v1/admin/users", Some(&shop_key), None).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "its keys stop working");
    let (s, _) = app.send(Method::PATCH, "/v1/admin/tenants/default", &op, Some(json!({"disabled": true}))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "the default tenant cannot be disabled");
    let (s, _) = app.send(Method::PATCH, "/v1/admin/tenants/shop", &op, Some(json!({"disabled": false}))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(app.call(Method::GET, "/t/shop/v1/session", Some(&session), None).await.status(), StatusCode::OK);
    let (s, _) = app.send(Method::GET, "/v1/admin/tenants/nope", &op, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

async fn only_operator_keys_manage_tenants(b: Backend) {
    let app = TestApp::spawn(b).await;
    let admin = api_key(&app, Some(portcullis_core::TenantId::DEFAULT), &["tenant:admin"]).await;
    let res = app.call(Method::POST, "/v1/admin/tenants", Some(&admin), Some(json!({"slug": "mine"}))).await;
    assert_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = app.call(Method::GET, "/v1/admin/tenants", Some(&admin), None).await;
    assert_error(res, StatusCode::FORBIDDEN, "forbidden").await;
}

async fn password_guessing_limits_are_kept_per_tenant(b: Backend) {
    let app = TestApp::spawn_with(b, |c| {
        c.rate_limits.login_per_ip_per_minute = 3;
        c.rate_limits.login_per_identifier_per_minute = 100;
    })
    .await;
    tenant(&app, "other", &[]).await;
    for _ in 0..3 {
        assert_eq!(app.login("someone", "wrong password here").await.0, StatusCode::UNAUTHORIZED);
    }
    let res = app.post("/v1/login", json!({"login": "someone", "password": "wrong password here"})).await;
    assert_error(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // The same address still has its budget in another tenant.
    let res = app.post("/t/other/v1/login", json!({"login": "someone", "password": "wrong password here"})).await;
    assert_error(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
}
