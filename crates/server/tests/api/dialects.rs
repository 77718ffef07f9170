//! What every dialect shares: operators switch each on per tenant (CLI, admin API), the
//! tenant's settings show it, and the change is audited.

use portcullis_core::Dialect;
use portcullis_core::store::AuditQuery;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both;
use crate::support::{Backend, TestApp, api_key, enable_dialect, op, tenant};

both!(operators_switch_dialects_per_tenant_and_the_change_is_audited);

async fn operators_switch_dialects_per_tenant_and_the_change_is_audited(b: Backend) {
    let app = TestApp::spawn(b).await;
    let acme = tenant(&app, "acme", &[]).await;
    let operator = api_key(&app, None, &["operator"]).await;
    let admin_of_acme = api_key(&app, Some(acme), &["tenant:admin"]).await;

    let (s, t) = app.send(Method::GET, "/v1/admin/tenants/acme", &operator, None).await;
    assert_eq!((s, &t["dialects"]), (StatusCode::OK, &json!([])), "{t}");

    let (s, t) = app.send(Method::PUT, "/v1/admin/tenants/acme/dialects/ossn", &operator, None).await;
    assert_eq!((s, &t["dialects"]), (StatusCode::OK, &json!(["ossn"])), "{t}");
    enable_dialect(&app, acme, Dialect::Newspark).await;
    let (s, t) = app.send(Method::PUT, "/v1/admin/tenants/acme/dialects/OSSN", &operator, None).await;
    assert_eq!((s, &t["dialects"]), (StatusCode::OK, &json!(["ossn", "newspark"])), "idempotent: {t}");
    assert_eq!(t["policy"]["dialects"], json!(["ossn", "newspark"]));
    let (s, t) = app.send(Method::DELETE, "/v1/admin/tenants/acme/dialects/ossn", &operator, None).await;
    assert_eq!((s, &t["dialects"]), (StatusCode::OK, &json!(["newspark"])), "{t}");
    // Other tenants are untouched.
    let (_, d) = app.send(Method::GET, "/v1/admin/tenants/default", &operator, None).await;
    assert_eq!(d["dialects"], json!([]));

    // An unknown dialect is a validation error; a tenant's own admin key is not an operator.
    let (s, e) = app.send(Method::PUT, "/v1/admin/tenants/acme/dialects/soap", &operator, None).await;
    assert_eq!((s, &e["error"]["code"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("validation_failed")), "{e}");
    let (s, _) = app.send(Method::PUT, "/t/acme/v1/admin/tenants/acme/dialects/ossn", &admin_of_acme, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app.send(Method::PUT, "/v1/admin/tenants/nope/dialects/ossn", &operator, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let q = AuditQuery { tenant_id: Some(acme), limit: 100, ..Default::default() };
    let events = app.core.audit_events(&op(), q, Default::default()).await.unwrap();
    let events: Vec<_> = events.into_iter().filter(|e| e.action.starts_with("tenant.dialect_")).collect();
    let seen: Vec<(String, String)> = events
        .iter()
        .map(|e| (e.action.clone(), e.details["dialect"].as_str().unwrap_or_default().to_owned()))
        .collect();
    assert_eq!(
        seen,
        [
            ("tenant.dialect_disabled".to_owned(), "ossn".to_owned()),
            ("tenant.dialect_enabled".to_owned(), "ossn".to_owned()),
            ("tenant.dialect_enabled".to_owned(), "newspark".to_owned()),
            ("tenant.dialect_enabled".to_owned(), "ossn".to_owned()),
        ]
    );
    // Changes through the admin API record its surface.
    assert_eq!(events[0].details["surface"], "admin");
}

const PW: &str = "correct horse battery staple";

/// Form-encodes pairs.
fn form(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap()
}

/// Creates `name` (with `name@example.com`) through `how`.
async fn create_through(app: &TestApp, how: &str, name: &str, key: &str) {
    let email = format!("{name}@example.com");
    let (status, text) = match how {
        "native" => {
            let res = app.post("/v1/signup", json!({"username": name, "email": email, "password": PW})).await;
            (res.status(), res.text().await.unwrap())
        }
        "metrixstream" => {
            let body = form(&[("action", "signup"), ("username", name), ("email", &email), ("password", PW)]);
            let res = app
                .client
                .post(app.url("/site/api"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            (res.status(), res.text().await.unwrap())
        }
        "buddycloud" => {
            let res = app
                .client
                .post(app.url("/api/account"))
                .json(&json!({"username": name, "password": PW, "email": email}))
                .send()
                .await
                .unwrap();
            (res.status(), res.text().await.unwrap())
        }
        "siberian" => {
            let body = form(&[("email", &email), ("password", PW), ("firstname", name)]);
            let res = app
                .client
                .post(app.url("/admin/api_account/create"))
                .header("Api-Auth-Bearer", format!("Bearer {key}"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            (res.status(), res.text().await.unwrap())
        }
        other => panic!("{other}"),
    };
    assert!(status.is_success(), "{how}: {status} {text}");
}

/// Whether `email` with the password logs in through `how`.
async fn logs_in_through(app: &TestApp, how: &str, email: &str, password: &str, key: &str) -> bool {
    let post_form = |path: &str, body: String| {
        app.client.post(app.url(path)).header("content-type", "application/x-www-form-urlencoded").body(body)
    };
    match how {
        "native" => {
            app.post("/v1/login", json!({"login": email, "password": password})).await.status() == StatusCode::OK
        }
        "metrixstream" => {
            let res = post_form("/site/api", form(&[("action", "login"), ("username", email), ("password", password)]));
            let v: Value = res.send().await.unwrap().json().await.unwrap();
            v["status"] == "ok"
        }
        "ossn" => {
            let res = post_form(
                "/api/v1.0/user_authenticate",
                form(&[("api_key_token", key), ("username", email), ("password", password)]),
            );
            let v: Value = res.send().await.unwrap().json().await.unwrap();
            v["code"] == "100"
        }
        "newspark" => {
            let q = form(&[
                ("method", "users.confirmCredentials"),
                ("vhost", "1"),
                ("APIKEY", key),
                ("username", email),
                ("password", password),
                ("isEmail", "true"),
            ]);
            let res = post_form("/services/json", q);
            let v: Value = res.send().await.unwrap().json().await.unwrap();
            v["status"] == true && v["result"].is_i64()
        }
        "buddycloud" => {
            let res = app.client.get(app.url("/api/")).basic_auth(email, Some(password)).send().await.unwrap();
            res.status() == StatusCode::OK
        }
        "siberian" => {
            let res = post_form("/admin/api_account/authenticate", form(&[("email", email), ("password", password)]))
                .header("Api-Auth-Bearer", format!("Bearer {key}"));
            let v: Value = res.send().await.unwrap().json().await.unwrap();
            v["success"] == 1
        }
        other => panic!("{other}"),
    }
}

both!(one_account_logs_in_through_every_dialect_whichever_made_it);

async fn one_account_logs_in_through_every_dialect_whichever_made_it(b: Backend) {
    let app = TestApp::spawn(b).await;
    for d in Dialect::ALL {
        enable_dialect(&app, portcullis_core::TenantId::DEFAULT, d).await;
    }
    let key =
        api_key(&app, Some(portcullis_core::TenantId::DEFAULT), &["credentials:verify", "users:read", "users:manage"])
            .await;
    let makers = ["native", "metrixstream", "buddycloud", "siberian"];
    let checkers = ["native", "metrixstream", "ossn", "newspark", "buddycloud", "siberian"];
    for maker in makers {
        let name = format!("made{maker}");
        create_through(&app, maker, &name, &key).await;
        let email = format!("{name}@example.com");
        for checker in checkers {
            assert!(logs_in_through(&app, checker, &email, PW, &key).await, "made by {maker}, checked by {checker}");
            assert!(
                !logs_in_through(&app, checker, &email, "wrong password", &key).await,
                "made by {maker}, wrong password through {checker}"
            );
        }
    }
    // A password changed through one dialect is changed for all.
    let res = app
        .client
        .post(app.url("/api/account/pw/change"))
        .basic_auth("madebuddycloud", Some(PW))
        .body(json!({"username": "madebuddycloud", "password": "a new and much longer passphrase"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    for checker in checkers {
        let email = "madebuddycloud@example.com";
        assert!(!logs_in_through(&app, checker, email, PW, &key).await, "old password through {checker}");
        assert!(
            logs_in_through(&app, checker, email, "a new and much longer passphrase", &key).await,
            "new password through {checker}"
        );
    }
}
