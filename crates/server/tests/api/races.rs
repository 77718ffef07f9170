//! Single-use means single-use: every one-time secret, presented by 32 clients at once over
//! HTTP, works exactly once — a reset link, a verification link, a log-in link, a
//! second-factor step token, a recovery code, and a TOTP code within its window.

use std::time::Duration;

use portcullis_testkit::totp_code;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{PW, PW2, TestApp, api_key};

const RACERS: usize = 32;

/// Sends the same request from 32 clients at once; returns the statuses.
async fn race(app: &TestApp, path: &str, body: Value) -> Vec<StatusCode> {
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(RACERS));
    let mut tasks = Vec::new();
    for _ in 0..RACERS {
        let (client, url, body, barrier) = (app.client.clone(), app.url(path), body.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            client.post(url).json(&body).send().await.map(|r| r.status()).unwrap_or(StatusCode::IM_A_TEAPOT)
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn exactly_one_ok(statuses: &[StatusCode], what: &str) {
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(ok, 1, "{what}: {statuses:?}");
    assert!(statuses.iter().all(|s| s.is_success() || s.is_client_error()), "{what}: no server error: {statuses:?}");
}

async fn links_from_mail_work_once_when_raced(b: crate::support::Backend) {
    let (app, sink) = TestApp::spawn_with_mail(b, |c| c.policy.passwordless_login = true).await;
    app.user("rick", PW).await;
    let verify = sink.wait_for("rick@example.com", 1, Duration::from_secs(15)).await;
    let token = verify[0].token(&format!("{}/ui/verify", app.base)).unwrap();
    exactly_one_ok(&race(&app, "/v1/email/verify", json!({"token": token})).await, "verification link");

    app.post("/v1/password/forgot", json!({"login": "rick"})).await;
    let reset = sink.wait_for("rick@example.com", 2, Duration::from_secs(15)).await;
    let token = reset[1].token(&format!("{}/ui/reset", app.base)).unwrap();
    exactly_one_ok(&race(&app, "/v1/password/reset", json!({"token": token, "password": PW2})).await, "reset link");
    app.token("rick", PW2).await;

    app.post("/v1/login/link", json!({"login": "rick"})).await;
    let link = sink.wait_for("rick@example.com", 3, Duration::from_secs(15)).await;
    let token = link[2].token(&format!("{}/ui/link", app.base)).unwrap();
    exactly_one_ok(&race(&app, "/v1/login/token", json!({"token": token})).await, "log-in link");
}

async fn second_factor_secrets_work_once_when_raced(b: crate::support::Backend) {
    let app = TestApp::spawn_with(b, |c| c.rate_limits.second_factor_per_account_per_minute = 1000).await;
    let token = app.user("tess", PW).await;
    let (_, e) = app.send(Method::POST, "/v1/me/second-factor/totp", &token, Some(json!({"password": PW}))).await;
    let secret = e["secret"].as_str().unwrap().to_owned();
    let now = || u64::try_from(app.core.now().unix_seconds()).unwrap();
    let (_, c) = app
        .send(
            Method::POST,
            "/v1/me/second-factor/totp/confirm",
            &token,
            Some(json!({"code": totp_code(&secret, now())})),
        )
        .await;
    assert_eq!(c["recovery_codes"].as_array().map(Vec::len), Some(10));
    app.clock.advance(Duration::from_secs(30));

    // One step token, the right code, 32 times at once: one session.
    let (_, body) = app.login("tess", PW).await;
    let step = body["second_factor"]["step_token"].as_str().unwrap().to_owned();
    let statuses =
        race(&app, "/v1/login/second-factor", json!({"step_token": step, "code": totp_code(&secret, now())})).await;
    exactly_one_ok(&statuses, "step token and TOTP code");

    // One step token, ten different right codes at once: the step token alone decides.
    let (_, body) = app.login("tess", PW).await;
    let step = body["second_factor"]["step_token"].as_str().unwrap().to_owned();
    let (_, fresh) =
        app.send(Method::POST, "/v1/me/second-factor/recovery-codes", &token, Some(json!({"password": PW}))).await;
    let codes: Vec<String> =
        fresh["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(codes.len()));
    let mut tasks = Vec::new();
    for code in codes {
        let (client, url, step, barrier) =
            (app.client.clone(), app.url("/v1/login/second-factor"), step.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            client.post(url).json(&json!({"step_token": step, "code": code})).send().await.unwrap().status()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    exactly_one_ok(&statuses, "one step token, ten codes");
    // (The codes of the losers were checked before the step token was found spent: a user
    // racing themselves may lose a recovery code, never gain a session.)
    let (_, fresh) =
        app.send(Method::POST, "/v1/me/second-factor/recovery-codes", &token, Some(json!({"password": PW}))).await;
    let recovery = fresh["recovery_codes"][0].as_str().unwrap().to_owned();

    // The same TOTP code of a new step, in 32 separate log-ins at once: one session.
    app.clock.advance(Duration::from_secs(30));
    let code = totp_code(&secret, now());
    let statuses = race(&app, "/v1/login", json!({"login": "tess", "password": PW, "second_factor": code})).await;
    exactly_one_ok(&statuses, "a TOTP code within its window");

    // A recovery code, 32 times at once: one session.
    let statuses = race(&app, "/v1/login", json!({"login": "tess", "password": PW, "second_factor": recovery})).await;
    exactly_one_ok(&statuses, "recovery code");

    // And through a server's credential check: one valid answer.
    app.clock.advance(Duration::from_secs(30));
    let key = api_key(&app, Some(portcullis_core::TenantId::DEFAULT), &["credentials:verify"]).await;
    let code = totp_code(&secret, now());
    let mut tasks = Vec::new();
    for _ in 0..RACERS {
        let (client, url, key, code) =
            (app.client.clone(), app.url("/v1/credentials/verify"), key.clone(), code.clone());
        tasks.push(tokio::spawn(async move {
            let res = client
                .post(url)
                .bearer_auth(key)
                .json(&json!({"login": "tess", "password": PW, "second_factor": code}))
                .send()
                .await
                .unwrap();
            res.json::<Value>().await.unwrap()["valid"].as_bool().unwrap_or(false)
        }));
    }
    let mut valid = 0;
    for t in tasks {
        valid += usize::from(t.await.unwrap());
    }
    assert_eq!(valid, 1);
}

crate::both!(links_from_mail_work_once_when_raced, second_factor_secrets_work_once_when_raced);
