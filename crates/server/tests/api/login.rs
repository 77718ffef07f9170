//! `POST /v1/login`.

use std::time::Duration;

use portcullis_core::Password;
use portcullis_core::TenantId;
use portcullis_core::model::UserStatus;
use portcullis_core::parse::LoginKey;
use portcullis_core::password::{HashingConfig, PasswordHasher};
use portcullis_core::store::{EndSessions, PasswordChange, UserUpdate};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both;
use crate::support::{Backend, PW, TestApp, assert_error};

both!(
    login_by_any_identifier,
    unknown_account_and_wrong_password_get_identical_answers_at_identical_cost,
    login_requires_exactly_one_identifier_and_a_password,
    right_password_on_a_disabled_account_says_so_wrong_password_does_not,
    repeated_guessing_is_rate_limited_alike_for_unknown_accounts,
    outdated_hashes_are_upgraded_at_login,
    overload_sheds_with_503_and_retry_after,
    concurrent_log_ins_of_one_user_all_succeed,
    concurrent_log_ins_that_both_upgrade_an_old_hash_both_succeed,
    ipv6_clients_share_their_prefix_s_budget,
);

async fn ipv6_clients_share_their_prefix_s_budget(b: Backend) {
    let app = TestApp::spawn_with(b, |c| {
        c.http.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
        c.rate_limits.login_per_ip_per_minute = 5;
        c.rate_limits.login_per_identifier_per_minute = 1_000;
    })
    .await;
    let attempt = |from: String, login: String| {
        app.client
            .post(app.url("/v1/login"))
            .header("x-forwarded-for", from)
            .json(&json!({"login": login, "password": "wrong password here"}))
            .send()
    };
    // 80 addresses of one /64, each once: the sixth attempt of the network is refused.
    let mut statuses = Vec::new();
    for i in 0..80 {
        let res = attempt(format!("2001:db8:aa:1:{i:x}::{i:x}"), format!("user{i}")).await.unwrap();
        statuses.push(res.status());
    }
    assert!(statuses[..5].iter().all(|s| *s == StatusCode::UNAUTHORIZED), "{statuses:?}");
    assert_eq!(statuses[5..].iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count(), 75, "{statuses:?}");
    // Another /64 has its own budget, and so does every IPv4 address.
    assert_eq!(attempt("2001:db8:aa:2::1".into(), "x".into()).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(attempt("192.0.2.7".into(), "x".into()).await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

async fn concurrent_log_ins_that_both_upgrade_an_old_hash_both_succeed(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.user("upgr", PW).await;
    let key = LoginKey::username("upgr");
    let id = app.core.stores().users.user_with_secret(TenantId::DEFAULT, &key).await.unwrap().unwrap().user.id;
    let old = PasswordHasher::new(&HashingConfig {
        memory_kib: 2048,
        iterations: 2,
        parallelism: 1,
        workers: 1,
        queue: 1,
        ..Default::default()
    })
    .unwrap();
    for _ in 0..3 {
        let old_hash = old.hash(Password::new(PW)).await.unwrap();
        let change = PasswordChange {
            hash: old_hash,
            expected_current: None,
            end_sessions: EndSessions::None,
            is_new_password: false,
            now: app.core.now(),
        };
        assert!(app.core.stores().users.set_password_hash(TenantId::DEFAULT, id, &change).await.unwrap());
        let logins: Vec<_> = (0..2)
            .map(|_| {
                let (client, url) = (app.client.clone(), app.url("/v1/login"));
                tokio::spawn(async move {
                    let res = client.post(url).json(&json!({"login": "upgr", "password": PW})).send().await.unwrap();
                    (res.status(), res.text().await.unwrap())
                })
            })
            .collect();
        for l in logins {
            let (status, body) = l.await.unwrap();
            assert_eq!(status, StatusCode::OK, "the right password always logs in: {body}");
        }
    }
}

async fn concurrent_log_ins_of_one_user_all_succeed(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.user("popular", PW).await;
    for _round in 0..3 {
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (client, url) = (app.client.clone(), app.url("/v1/login"));
            tasks.push(tokio::spawn(async move {
                let res = client.post(url).json(&json!({"login": "popular", "password": PW})).send().await.unwrap();
                (res.status(), res.text().await.unwrap())
            }));
        }
        for t in tasks {
            let (status, body) = t.await.unwrap();
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    }
}

async fn login_by_any_identifier(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.signup(json!({"username": "hopper", "email": "grace@example.com", "phone": "+1 555 0100 200", "password": PW}))
        .await;
    for login in ["hopper", "HOPPER", "grace@example.com", "Grace@Example.COM", "+1 555 0100 200", "+15550100200"] {
        let (status, body) = app.login(login, PW).await;
        assert_eq!(status, StatusCode::OK, "{login}: {body}");
        assert_eq!(body["user"]["username"], "hopper");
        let token = body["session"]["token"].as_str().unwrap();
        assert_eq!(app.session_status(token).await, StatusCode::OK);
    }
    for body in [
        json!({"username": "hopper", "password": PW}),
        json!({"email": "grace@example.com", "password": PW}),
        json!({"phone": "+1-555-0100-200", "password": PW}),
    ] {
        assert_eq!(app.post("/v1/login", body.clone()).await.status(), StatusCode::OK, "{body}");
    }
    // Explicit fields match only their own kind.
    let res = app.post("/v1/login", json!({"email": "hopper", "password": PW})).await;
    assert_error(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let res = app.post("/v1/login", json!({"username": "grace@example.com", "password": PW})).await;
    assert_error(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    // A log-in sets the session cookie too.
    let res = app.post("/v1/login", json!({"login": "hopper", "password": PW})).await;
    assert!(res.headers()["set-cookie"].to_str().unwrap().starts_with("portcullis_session=pcs_"));
}

async fn unknown_account_and_wrong_password_get_identical_answers_at_identical_cost(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.user("known", PW).await;
    let mut answers = Vec::new();
    for login in ["known", "unknown", "known@example.com", "nobody@example.com", "+1 555 0000", "no@such@thing", ""] {
        let before = app.core.hasher().verifications();
        let res = app.post("/v1/login", json!({"login": login, "password": "wrong password here"})).await;
        let status = res.status();
        let headers = (res.headers().get("content-type").cloned(), res.headers().get("www-authenticate").cloned());
        let text = res.text().await.unwrap();
        if login.is_empty() {
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "an empty login is a malformed request");
            continue;
        }
        assert_eq!(app.core.hasher().verifications(), before + 1, "{login}: exactly one argon2id verification");
        answers.push((login, status, headers, text));
    }
    let (_, s0, h0, t0) = &answers[0];
    assert_eq!(*s0, StatusCode::UNAUTHORIZED);
    for (login, s, h, t) in &answers {
        assert_eq!((s, h, t), (s0, h0, t0), "{login} must get the same answer as a wrong password");
    }
    // The dummy hash has the parameters of real hashes.
    let real = app
        .core
        .stores()
        .users
        .user_with_secret(TenantId::DEFAULT, &LoginKey::username("known"))
        .await
        .unwrap()
        .unwrap();
    let params = |h: &str| h.split('$').nth(3).unwrap().to_owned();
    assert_eq!(params(app.core.hasher().dummy_hash()), params(real.password_hash.as_deref().unwrap()));
}

async fn login_requires_exactly_one_identifier_and_a_password(b: Backend) {
    let app = TestApp::spawn(b).await;
    let res = app.post("/v1/login", json!({"password": PW})).await;
    let body = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert!(body["error"]["fields"]["login"].is_string());
    let res = app.post("/v1/login", json!({"login": "a", "email": "a@example.com", "password": PW})).await;
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let res = app.post("/v1/login", json!({"login": "a"})).await;
    let body = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(body["error"]["fields"]["password"], "is required");
    let res = app.post("/v1/login", json!({"login": "a", "password": PW, "remember_me": true})).await;
    let body = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(body["error"]["fields"]["remember_me"], "unknown field");
    // An over-long password is a wrong password, not an error of ours.
    let res = app.post("/v1/login", json!({"login": "a", "password": "x".repeat(5000)})).await;
    assert_error(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
}

async fn right_password_on_a_disabled_account_says_so_wrong_password_does_not(b: Backend) {
    let app = TestApp::spawn(b).await;
    let token = app.user("dis", PW).await;
    let u = app
        .core
        .stores()
        .users
        .user_with_secret(TenantId::DEFAULT, &LoginKey::username("dis"))
        .await
        .unwrap()
        .unwrap()
        .user;
    let off = UserUpdate { status: Some(UserStatus::Disabled), ..Default::default() };
    app.core.stores().users.update_user(TenantId::DEFAULT, u.id, &off, app.core.now()).await.unwrap();
    // Written behind the core's back: the revocation feed must still reach the cache.
    crate::sessions::eventually_status(&app, &token, StatusCode::UNAUTHORIZED).await;
    let (status, body) = app.login("dis", "a wrong password").await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_credentials")));
    let (status, body) = app.login("dis", PW).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("account_disabled")));
}

async fn repeated_guessing_is_rate_limited_alike_for_unknown_accounts(b: Backend) {
    let app = TestApp::spawn_with(b, |c| c.rate_limits.login_per_identifier_per_minute = 3).await;
    app.user("target", PW).await;
    for login in ["target", "ghost"] {
        for _ in 0..3 {
            assert_eq!(app.login(login, "guess guess guess").await.0, StatusCode::UNAUTHORIZED);
        }
        let res = app.post("/v1/login", json!({"login": login, "password": PW})).await;
        let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        assert_error(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    }
    // Another spelling of the same identifier shares the budget.
    assert_eq!(app.login("TARGET", PW).await.0, StatusCode::TOO_MANY_REQUESTS);
    app.signup(json!({"email": "phone@example.com", "phone": "416 555 0100", "password": PW})).await;
    for _ in 0..3 {
        assert_eq!(app.login("4165550100", "guess guess guess").await.0, StatusCode::UNAUTHORIZED);
    }
    for spelling in ["416 555 0100", "416.555.0100", "(416) 555-0100"] {
        assert_eq!(app.login(spelling, PW).await.0, StatusCode::TOO_MANY_REQUESTS, "{spelling}");
    }
    let res = app.post("/v1/login", json!({"phone": "416-555-0100", "password": PW})).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "the phone field shares it too");
    assert_eq!(app.login("target@example.com", PW).await.0, StatusCode::OK, "the e-mail address is another identifier");
    // The budget refills with time.
    app.clock.advance(Duration::from_secs(21));
    assert_eq!(app.login("target", PW).await.0, StatusCode::OK);
}

async fn outdated_hashes_are_upgraded_at_login(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.user("old", PW).await;
    let key = LoginKey::username("old");
    let u = app.core.stores().users.user_with_secret(TenantId::DEFAULT, &key).await.unwrap().unwrap();
    let old_hasher = PasswordHasher::new(&HashingConfig {
        memory_kib: 2048,
        iterations: 2,
        parallelism: 1,
        workers: 1,
        queue: 1,
        ..Default::default()
    })
    .unwrap();
    let old_hash = old_hasher.hash(Password::new(PW)).await.unwrap();
    let change = PasswordChange {
        hash: old_hash.clone(),
        expected_current: None,
        end_sessions: EndSessions::None,
        is_new_password: false,
        now: app.core.now(),
    };
    assert!(app.core.stores().users.set_password_hash(TenantId::DEFAULT, u.user.id, &change).await.unwrap());
    app.token("old", PW).await;
    let after = app
        .core
        .stores()
        .users
        .user_with_secret(TenantId::DEFAULT, &key)
        .await
        .unwrap()
        .unwrap()
        .password_hash
        .unwrap();
    assert_ne!(after, old_hash.as_str());
    assert!(after.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{after}");
    app.token("old", PW).await;
}

async fn overload_sheds_with_503_and_retry_after(b: Backend) {
    let app = TestApp::spawn_with(b, |c| {
        c.password.memory_kib = 32 * 1024;
        c.password.iterations = 3;
        c.password.workers = 1;
        c.password.queue = 1;
    })
    .await;
    app.user("busy", PW).await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (client, url) = (app.client.clone(), app.url("/v1/login"));
        tasks.push(tokio::spawn(async move {
            let res = client.post(url).json(&json!({"login": "busy", "password": PW})).send().await.unwrap();
            let status = res.status();
            let retry = res.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
            let body: Value = res.json().await.unwrap();
            (status, retry, body)
        }));
    }
    let mut ok = 0;
    let mut shed = 0;
    for t in tasks {
        let (status, retry, body) = t.await.unwrap();
        match status {
            StatusCode::OK => ok += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                shed += 1;
                assert_eq!(body["error"]["code"], "overloaded");
                assert_eq!(retry.as_deref(), Some("1"));
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(ok >= 1 && shed >= 1, "ok {ok}, shed {shed}");
    assert!(app.core.hasher().shed() >= shed);
}
