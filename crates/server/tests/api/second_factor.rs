//! The second factor over HTTP: enrolment, log-in in one request or two, recovery codes,
//! replay and guessing, every surface that opens a session or checks a credential, and the
//! admin's reset.

use std::time::Duration;

use portcullis_core::TenantId;
use portcullis_core::store::AuditQuery;
use portcullis_testkit::totp_code;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{PW, PW2, TestApp, api_key, op};

/// The code the user's app shows at the application's time.
fn code(app: &TestApp, secret: &str) -> String {
    totp_code(secret, u64::try_from(app.core.now().unix_seconds()).unwrap())
}

/// Signs `name` up and sets up an authenticator; returns (session, secret, recovery codes).
async fn enrolled(app: &TestApp, name: &str) -> (String, String, Vec<String>) {
    let token = app.user(name, PW).await;
    let (status, e) = app.send(Method::POST, "/v1/me/second-factor/totp", &token, Some(json!({"password": PW}))).await;
    assert_eq!(status, StatusCode::OK, "{e}");
    let secret = e["secret"].as_str().unwrap().to_owned();
    let (status, c) = app
        .send(Method::POST, "/v1/me/second-factor/totp/confirm", &token, Some(json!({"code": code(app, &secret)})))
        .await;
    assert_eq!(status, StatusCode::OK, "{c}");
    let codes = c["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    (token, secret, codes)
}

/// The next time step: a new code.
fn next_step(app: &TestApp) {
    app.clock.advance(Duration::from_secs(30));
}

async fn enrolment_asks_for_the_password_and_a_first_code(b: crate::support::Backend) {
    let app = TestApp::spawn(b).await;
    let token = app.user("eve", PW).await;
    let (status, s) = app.send(Method::GET, "/v1/me/second-factor", &token, None).await;
    assert_eq!((status, s), (StatusCode::OK, json!({"enabled": false, "enrolling": false, "recovery_codes_left": 0})));
    let (status, _) = app.send(Method::POST, "/v1/me/second-factor/totp", &token, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "the password is asked for");
    let (status, _) = app.send(Method::POST, "/v1/me/second-factor/totp", &token, Some(json!({"password": PW2}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, e) = app.send(Method::POST, "/v1/me/second-factor/totp", &token, Some(json!({"password": PW}))).await;
    assert_eq!(status, StatusCode::OK, "{e}");
    let secret = e["secret"].as_str().unwrap();
    assert_eq!(secret.len(), 32, "160 bits in base32");
    let uri = e["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/") && uri.contains(&format!("secret={secret}")), "{uri}");
    assert!(uri.contains("issuer=") && uri.contains("eve%40example.com"), "{uri}");
    assert!(e["qr_svg"].as_str().unwrap().contains("<svg"));

    // Not on until confirmed: log-ins go on as before.
    app.token("eve", PW).await;
    let (status, s) = app.send(Method::GET, "/v1/me/second-factor", &token, None).await;
    assert_eq!((status, s["enrolling"].as_bool()), (StatusCode::OK, Some(true)));
    let wrong = if code(&app, secret) == "000000" { "111111" } else { "000000" };
    let (status, err) =
        app.send(Method::POST, "/v1/me/second-factor/totp/confirm", &token, Some(json!({"code": wrong}))).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed")),
        "signed in, a wrong code is a field error, not a lost session"
    );
    assert!(err["error"]["fields"]["code"].as_str().unwrap().starts_with("is wrong"));
    let (status, c) = app
        .send(Method::POST, "/v1/me/second-factor/totp/confirm", &token, Some(json!({"code": code(&app, secret)})))
        .await;
    assert_eq!(status, StatusCode::OK, "{c}");
    let codes = c["recovery_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    assert!(codes.iter().all(|c| c.as_str().unwrap().len() == 19));
    let (_, s) = app.send(Method::GET, "/v1/me/second-factor", &token, None).await;
    assert_eq!(s, json!({"enabled": true, "enrolling": false, "recovery_codes_left": 10}));
    let (_, me) = app.send(Method::GET, "/v1/me", &token, None).await;
    assert_eq!(me["user"]["second_factor"], true);
    let (status, _) = app.send(Method::POST, "/v1/me/second-factor/totp", &token, Some(json!({"password": PW}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "one authenticator at a time");
}

async fn a_password_alone_opens_no_session(b: crate::support::Backend) {
    let app = TestApp::spawn(b).await;
    let (_, secret, _) = enrolled(&app, "sam").await;
    next_step(&app);

    let (status, body) = app.login("sam", PW).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "second_factor_required");
    assert!(body.get("session").is_none());
    let step = body["second_factor"]["step_token"].as_str().unwrap().to_owned();
    assert!(step.starts_with("pcf_"));
    // A wrong password still says nothing about the second factor.
    let (status, body) = app.login("sam", PW2).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_credentials")));

    // The follow-up: a wrong code leaves the step usable; the right one opens a session.
    let c = code(&app, &secret);
    let wrong = if c == "123456" { "654321" } else { "123456" };
    let res = app.post("/v1/login/second-factor", json!({"step_token": step, "code": wrong})).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = app.post("/v1/login/second-factor", json!({"step_token": step, "code": c})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let session = body["session"]["token"].as_str().unwrap().to_owned();
    assert_eq!(app.session_status(&session).await, StatusCode::OK);
    let res = app.post("/v1/login/second-factor", json!({"step_token": step, "code": c})).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "a step token works once");

    // The same code again, within its window, in a new log-in: refused (no replay).
    let (_, body) = app.login("sam", PW).await;
    let step2 = body["second_factor"]["step_token"].as_str().unwrap().to_owned();
    let res = app.post("/v1/login/second-factor", json!({"step_token": step2, "code": c})).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    next_step(&app);
    let res = app.post("/v1/login/second-factor", json!({"step_token": step2, "code": code(&app, &secret)})).await;
    assert_eq!(res.status(), StatusCode::OK);

    // In one request: the code along with the password.
    next_step(&app);
    let res =
        app.post("/v1/login", json!({"login": "sam", "password": PW, "second_factor": code(&app, &secret)})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app.post("/v1/login", json!({"login": "sam", "password": PW, "second_factor": "000 000"})).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // Step tokens expire after five minutes.
    let (_, body) = app.login("sam", PW).await;
    let step3 = body["second_factor"]["step_token"].as_str().unwrap().to_owned();
    app.clock.advance(Duration::from_secs(6 * 60));
    let res = app.post("/v1/login/second-factor", json!({"step_token": step3, "code": code(&app, &secret)})).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

async fn recovery_codes_work_once_and_can_be_replaced(b: crate::support::Backend) {
    let app = TestApp::spawn(b).await;
    let (token, secret, codes) = enrolled(&app, "rae").await;
    let (_, body) = app.login("rae", PW).await;
    let step = body["second_factor"]["step_token"].as_str().unwrap().to_owned();
    let lower = codes[0].to_lowercase();
    let res = app.post("/v1/login/second-factor", json!({"step_token": step, "code": lower})).await;
    assert_eq!(res.status(), StatusCode::OK, "a recovery code in any case");
    let (_, body) = app.login("rae", PW).await;
    let step = body["second_factor"]["step_token"].as_str().unwrap().to_owned();
    let res = app.post("/v1/login/second-factor", json!({"step_token": step, "code": codes[0]})).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "once");
    let (_, s) = app.send(Method::GET, "/v1/me/second-factor", &token, None).await;
    assert_eq!(s["recovery_codes_left"], 9);

    let (status, _) =
        app.send(Method::POST, "/v1/me/second-factor/recovery-codes", &token, Some(json!({"password": PW2}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, fresh) =
        app.send(Method::POST, "/v1/me/second-factor/recovery-codes", &token, Some(json!({"password": PW}))).await;
    assert_eq!(status, StatusCode::OK);
    let fresh: Vec<String> =
        fresh["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    assert!(fresh.iter().all(|c| !codes.contains(c)));
    let res = app.post("/v1/login", json!({"login": "rae", "password": PW, "second_factor": codes[1]})).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "the old codes stopped working");
    let res = app.post("/v1/login", json!({"login": "rae", "password": PW, "second_factor": fresh[1]})).await;
    assert_eq!(res.status(), StatusCode::OK);

    // Turning it off needs the password or a code.
    let (status, _) = app.send(Method::DELETE, "/v1/me/second-factor/totp", &token, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) =
        app.send(Method::DELETE, "/v1/me/second-factor/totp", &token, Some(json!({"password": PW2}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    next_step(&app);
    let (status, _) =
        app.send(Method::DELETE, "/v1/me/second-factor/totp", &token, Some(json!({"code": code(&app, &secret)}))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.token("rae", PW).await;
    let (_, s) = app.send(Method::GET, "/v1/me/second-factor", &token, None).await;
    assert_eq!(s, json!({"enabled": false, "enrolling": false, "recovery_codes_left": 0}));
}

async fn guessing_codes_is_throttled_per_account(b: crate::support::Backend) {
    let app = TestApp::spawn(b).await;
    let (_, secret, _) = enrolled(&app, "gus").await;
    let (_, body) = app.login("gus", PW).await;
    let step = body["second_factor"]["step_token"].as_str().unwrap().to_owned();
    let right = code(&app, &secret);
    let mut statuses = Vec::new();
    for i in 0..8 {
        let guess = format!("{:06}", (right.parse::<u32>().unwrap() + 1 + i) % 1_000_000);
        let res = app.post("/v1/login/second-factor", json!({"step_token": step, "code": guess})).await;
        statuses.push(res.status());
    }
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    let res = app.post("/v1/login/second-factor", json!({"step_token": step, "code": right})).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "even the right code waits");
    // Through another surface, the same budget.
    let key = api_key(&app, Some(TenantId::DEFAULT), &["credentials:verify"]).await;
    let (status, _) = app
        .send(
            Method::POST,
            "/v1/credentials/verify",
            &key,
            Some(json!({"login": "gus", "password": PW, "second_factor": right})),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    app.clock.advance(Duration::from_secs(60));
    let res = app.post("/v1/login/second-factor", json!({"step_token": step, "code": code(&app, &secret)})).await;
    assert_eq!(res.status(), StatusCode::OK);
}

async fn every_surface_asks_for_the_second_factor(b: crate::support::Backend) {
    let app = TestApp::spawn(b).await;
    let (_, secret, _) = enrolled(&app, "val").await;
    next_step(&app);
    let key = api_key(&app, Some(TenantId::DEFAULT), &["credentials:verify", "users:manage"]).await;
    let verify = |body: Value| {
        let app = &app;
        let key = key.clone();
        async move { app.send(Method::POST, "/v1/credentials/verify", &key, Some(body)).await }
    };
    let (status, v) = verify(json!({"login": "val", "password": PW, "open_session": true})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((v["valid"].as_bool(), v["reason"].as_str()), (Some(false), Some("second_factor_required")));
    assert!(v.get("session").is_none());
    assert!(v["second_factor"]["step_token"].as_str().unwrap().starts_with("pcf_"));
    let (_, v) = verify(json!({"login": "val", "password": PW, "second_factor": "999999"})).await;
    assert_eq!(v["reason"], "second_factor_invalid");
    let (_, v) = verify(json!({"login": "val", "password": PW, "second_factor": code(&app, &secret)})).await;
    assert_eq!(v["valid"], true, "{v}");

    // An admin's one-time log-in token is a first factor too.
    let id = v["user_id"].as_i64().unwrap();
    let (status, t) = app.send(Method::POST, &format!("/v1/admin/users/{id}/login-token"), &key, None).await;
    assert_eq!(status, StatusCode::CREATED);
    let res = app.post("/v1/login/token", json!({"token": t["token"]})).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "second_factor_required");
    next_step(&app);
    let res = app
        .post(
            "/v1/login/second-factor",
            json!({"step_token": body["second_factor"]["step_token"], "code": code(&app, &secret)}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);

    // An admin resets it for a user who lost it; audited.
    let (status, _) = app.send(Method::DELETE, &format!("/v1/admin/users/{id}/second-factor"), &key, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.send(Method::DELETE, &format!("/v1/admin/users/{id}/second-factor"), &key, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.token("val", PW).await;
    app.core.flush_audit().await.unwrap();
    let q = AuditQuery { action: Some("second_factor.reset".into()), limit: 100, ..Default::default() };
    let events = app.core.audit_events(&op(), q, Default::default()).await.unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
}

async fn an_account_without_a_password_needs_a_fresh_log_in_for_sensitive_changes(b: crate::support::Backend) {
    let app = TestApp::spawn(b).await;
    let key = api_key(&app, Some(TenantId::DEFAULT), &["users:manage"]).await;
    let (status, u) = app
        .send(Method::POST, "/v1/admin/users", &key, Some(json!({"email": "lia@example.com", "email_verified": true})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{u}");
    let id = u["user"]["id"].as_i64().unwrap();
    let (_, t) = app.send(Method::POST, &format!("/v1/admin/users/{id}/login-token"), &key, None).await;
    let res = app.post("/v1/login/token", json!({"token": t["token"]})).await;
    let session = res.json::<Value>().await.unwrap()["session"]["token"].as_str().unwrap().to_owned();
    // Fresh from the log-in: nothing to show, and nothing asked.
    let (status, e) = app.send(Method::POST, "/v1/me/second-factor/totp", &session, None).await;
    assert_eq!(status, StatusCode::OK, "{e}");
    // Later, the same session may not change the address or delete the account.
    app.clock.advance(Duration::from_secs(16 * 60));
    let (status, err) = app.send(Method::PATCH, "/v1/me", &session, Some(json!({"email": "thief@example.com"}))).await;
    assert_eq!((status, err["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{err}");
    let (status, _) = app.send(Method::DELETE, "/v1/me", &session, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.send(Method::PATCH, "/v1/me", &session, Some(json!({"first_name": "Lia"}))).await;
    assert_eq!(status, StatusCode::OK, "other changes need nothing more");
}

crate::both!(
    an_account_without_a_password_needs_a_fresh_log_in_for_sensitive_changes,
    enrolment_asks_for_the_password_and_a_first_code,
    a_password_alone_opens_no_session,
    recovery_codes_work_once_and_can_be_replaced,
    guessing_codes_is_throttled_per_account,
    every_surface_asks_for_the_second_factor,
);
