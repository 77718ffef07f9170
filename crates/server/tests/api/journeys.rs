//! The journeys through mail, end to end over HTTP and real SMTP: e-mail verification at
//! sign-up and on a change of address, a forgotten password, log-in links; every message
//! parsed as a mail client would, and its link followed.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{PW, PW2, ReceivedMail, SmtpSink, TestApp, api_key, assert_error};

/// How long a test waits for a message.
const WAIT: Duration = Duration::from_secs(15);

async fn one_mail(sink: &SmtpSink, to: &str, n: usize) -> ReceivedMail {
    let got = sink.wait_for(to, n, WAIT).await;
    assert_eq!(got.len(), n, "messages to {to}: {got:#?}");
    got[n - 1].clone()
}

fn token_of(app: &TestApp, m: &ReceivedMail, path: &str) -> String {
    m.token(&format!("{}{path}", app.base)).unwrap_or_else(|| panic!("no {path} link in {}", m.text))
}

async fn post(app: &TestApp, path: &str, body: Value) -> (StatusCode, Value) {
    let res = app.post(path, body).await;
    let status = res.status();
    let text = res.text().await.unwrap();
    (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
}

async fn signup_and_verification_link_verify_the_address(b: crate::support::Backend) {
    let (app, sink) = TestApp::spawn_with_mail(b, |c| c.policy.require_verified_email = true).await;
    let body = app.signup(json!({"username": "vera", "email": "Vera@Example.com", "password": PW})).await;
    assert_eq!(body["user"]["status"], "pending");
    assert!(body["session"].is_null(), "no session before the address is verified");

    // Right password, unverified address: a distinct answer, only after the password.
    let (status, err) = app.login("vera", PW).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
    assert_eq!(err["error"]["code"], "email_not_verified");
    let (status, err) = app.login("vera", "wrong password entirely").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(err["error"]["code"], "invalid_credentials");

    let mail = one_mail(&sink, "Vera@Example.com", 1).await;
    assert_eq!(mail.to, "Vera@example.com", "the address as stored: domain lower-cased, local part kept");
    assert!(mail.subject.contains("Confirm your e-mail address"), "{}", mail.subject);
    assert!(mail.html.contains("Confirm my address"), "an HTML part: {}", mail.html);
    assert!(mail.text.contains("Hello vera"), "{}", mail.text);
    assert!(mail.message_id.starts_with("portcullis."), "{}", mail.message_id);
    let token = token_of(&app, &mail, "/ui/verify");
    assert!(token.starts_with("pcv_") && token.len() >= 4 + 43, "at least 256 random bits: {token}");

    let last = if token.ends_with('A') { 'B' } else { 'A' };
    let tampered = format!("{}{last}", &token[..token.len() - 1]);
    let (status, err) = post(&app, "/v1/email/verify", json!({"token": tampered})).await;
    assert_eq!((status, err["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_token")));

    let (status, body) = post(&app, "/v1/email/verify", json!({"token": token})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["email_verified"], true);
    assert_eq!(body["user"]["status"], "active");
    let (status, _) = post(&app, "/v1/email/verify", json!({"token": token})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a link works once");
    app.token("vera@example.com", PW).await;
}

async fn verification_links_are_resent_within_limits_and_expire(b: crate::support::Backend) {
    let (app, sink) = TestApp::spawn_with_mail(b, |c| c.policy.require_verified_email = true).await;
    app.signup(json!({"email": "rita@example.com", "password": PW})).await;
    let first = one_mail(&sink, "rita@example.com", 1).await;
    // Asked for again by identifier (she cannot log in): same answer as for nobody.
    let (status, known) = post(&app, "/v1/email/verification", json!({"login": "rita@example.com"})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, unknown) = post(&app, "/v1/email/verification", json!({"login": "nobody@example.com"})).await;
    assert_eq!((status, &unknown), (StatusCode::ACCEPTED, &known));
    let second = one_mail(&sink, "rita@example.com", 2).await;
    assert_ne!(token_of(&app, &first, "/ui/verify"), token_of(&app, &second, "/ui/verify"));
    // At most three links a quarter of an hour, however often asked.
    for _ in 0..4 {
        post(&app, "/v1/email/verification", json!({"login": "rita@example.com"})).await;
    }
    let got = sink.wait_for("rita@example.com", 4, Duration::from_secs(3)).await;
    assert_eq!(got.len(), 3, "the fourth request within the window sends nothing");

    // A link older than its lifetime (48 hours) no longer works.
    app.clock.advance(Duration::from_secs(49 * 3600));
    let (status, _) = post(&app, "/v1/email/verify", json!({"token": token_of(&app, &got[2], "/ui/verify")})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(app.login("rita@example.com", PW).await.0, StatusCode::FORBIDDEN);
}

async fn a_new_address_becomes_the_login_once_verified(b: crate::support::Backend) {
    let (app, sink) = TestApp::spawn_with_mail(b, |_| {}).await;
    let token = app.user("ed", PW).await;
    one_mail(&sink, "ed@example.com", 1).await;
    let res = app
        .call(
            Method::PATCH,
            "/v1/me",
            Some(&token),
            Some(json!({"email": "ed.new@example.com", "current_password": PW})),
        )
        .await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["email"], "ed@example.com");
    assert_eq!(body["user"]["pending_email"], "ed.new@example.com");

    let notice = one_mail(&sink, "ed@example.com", 2).await;
    assert!(notice.text.contains("ed.new@example.com"), "the old address is told: {}", notice.text);
    assert!(notice.token(&app.base).is_none(), "and given no link that does anything");
    let link = one_mail(&sink, "ed.new@example.com", 1).await;
    assert_eq!(app.login("ed.new@example.com", PW).await.0, StatusCode::UNAUTHORIZED, "not yet the login");

    let (status, body) = post(&app, "/v1/email/verify", json!({"token": token_of(&app, &link, "/ui/verify")})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["email"], "ed.new@example.com");
    assert_eq!(body["user"]["pending_email"], Value::Null);
    assert_eq!(body["user"]["email_verified"], true);
    app.token("ed.new@example.com", PW).await;
    assert_eq!(app.login("ed@example.com", PW).await.0, StatusCode::UNAUTHORIZED);

    // An address another account holds is refused at once.
    app.user("fay", PW).await;
    let res = app
        .call(Method::PATCH, "/v1/me", Some(&token), Some(json!({"email": "FAY@example.com", "current_password": PW})))
        .await;
    assert_error(res, StatusCode::CONFLICT, "conflict").await;
}

async fn a_forgotten_password_is_reset_through_its_link(b: crate::support::Backend) {
    let (app, sink) = TestApp::spawn_with_mail(b, |_| {}).await;
    let session = app.user("pia", PW).await;
    let other = app.token("pia", PW).await;
    one_mail(&sink, "pia@example.com", 1).await;

    let (status, known) = post(&app, "/v1/password/forgot", json!({"login": "pia"})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, unknown) = post(&app, "/v1/password/forgot", json!({"login": "nobody"})).await;
    assert_eq!((status, &unknown), (StatusCode::ACCEPTED, &known), "the same answer for nobody");
    let (status, _) = post(&app, "/v1/password/forgot", json!({"email": "PIA@example.com"})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let first = one_mail(&sink, "pia@example.com", 2).await;
    let second = one_mail(&sink, "pia@example.com", 3).await;
    assert!(first.subject.contains("Set a new password"), "{}", first.subject);
    assert!(!first.text.contains(PW), "no password is ever mailed");
    let (t1, t2) = (token_of(&app, &first, "/ui/reset"), token_of(&app, &second, "/ui/reset"));

    // A weak password is refused and leaves the link usable.
    let (status, err) = post(&app, "/v1/password/reset", json!({"token": t1, "password": "password1"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    let (status, err) =
        post(&app, "/v1/password/reset", json!({"token": t1, "password": PW2, "password_confirmation": "nope"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    let (status, body) = post(&app, "/v1/password/reset", json!({"token": t1, "password": PW2})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["username"], "pia");

    assert_eq!(app.session_status(&session).await, StatusCode::UNAUTHORIZED, "every session ends");
    assert_eq!(app.session_status(&other).await, StatusCode::UNAUTHORIZED);
    let (status, _) = post(&app, "/v1/password/reset", json!({"token": t1, "password": PW})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a link works once");
    let (status, _) = post(&app, "/v1/password/reset", json!({"token": t2, "password": PW})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "and spends every other reset link");
    assert_eq!(app.login("pia", PW).await.0, StatusCode::UNAUTHORIZED);
    app.token("pia", PW2).await;

    // Links expire (30 minutes by default).
    post(&app, "/v1/password/forgot", json!({"login": "pia"})).await;
    let late = one_mail(&sink, "pia@example.com", 4).await;
    app.clock.advance(Duration::from_secs(31 * 60));
    let (status, _) =
        post(&app, "/v1/password/reset", json!({"token": token_of(&app, &late, "/ui/reset"), "password": PW})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A reset link of one tenant does nothing in another.
    post(&app, "/v1/password/forgot", json!({"login": "pia"})).await;
    let elsewhere = one_mail(&sink, "pia@example.com", 5).await;
    crate::support::tenant(&app, "other", &[]).await;
    let (status, _) = post(
        &app,
        "/t/other/v1/password/reset",
        json!({"token": token_of(&app, &elsewhere, "/ui/reset"), "password": PW}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

async fn log_in_links_work_once_where_the_tenant_offers_them(b: crate::support::Backend) {
    let (app, sink) = TestApp::spawn_with_mail(b, |_| {}).await;
    app.user("lin", PW).await;
    one_mail(&sink, "lin@example.com", 1).await;
    let res = app.post("/v1/login/link", json!({"login": "lin"})).await;
    assert_error(res, StatusCode::FORBIDDEN, "forbidden").await;

    let (app, sink) = TestApp::spawn_with_mail(b, |c| c.policy.passwordless_login = true).await;
    app.user("lin", PW).await;
    let (status, known) = post(&app, "/v1/login/link", json!({"login": "lin@example.com"})).await;
    let (_, unknown) = post(&app, "/v1/login/link", json!({"login": "nobody@example.com"})).await;
    assert_eq!((status, &known), (StatusCode::ACCEPTED, &unknown));
    let mail = one_mail(&sink, "lin@example.com", 2).await;
    let token = token_of(&app, &mail, "/ui/link");
    assert!(token.starts_with("pcl_"));
    let (status, body) = post(&app, "/v1/login/token", json!({"token": token})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["username"], "lin");
    let (status, _) = post(&app, "/v1/login/token", json!({"token": token})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a log-in link works once");
}

async fn admins_send_links_and_servers_cannot_read_them(b: crate::support::Backend) {
    let (app, sink) = TestApp::spawn_with_mail(b, |_| {}).await;
    app.user("ann", PW).await;
    one_mail(&sink, "ann@example.com", 1).await;
    let id = app
        .core
        .user_by_login(
            &crate::support::op(),
            portcullis_core::TenantId::DEFAULT,
            &portcullis_core::parse::LoginKey::username("ann"),
        )
        .await
        .unwrap()
        .id
        .0;
    let reader = api_key(&app, Some(portcullis_core::TenantId::DEFAULT), &["users:read"]).await;
    let manager = api_key(&app, Some(portcullis_core::TenantId::DEFAULT), &["users:manage"]).await;
    let (status, _) = app.send(Method::POST, &format!("/v1/admin/users/{id}/send-password-reset"), &reader, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) =
        app.send(Method::POST, &format!("/v1/admin/users/{id}/send-password-reset"), &manager, None).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::ACCEPTED, Some("queued")));
    let mail = one_mail(&sink, "ann@example.com", 2).await;
    assert!(body.to_string().find("pcr_").is_none(), "the link goes to the user only");
    let (status, _) =
        post(&app, "/v1/password/reset", json!({"token": token_of(&app, &mail, "/ui/reset"), "password": PW2})).await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) =
        app.send(Method::POST, &format!("/v1/admin/users/{id}/send-verification"), &manager, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "the reset verified the address: {body}");
    let (status, _) = app.send(Method::POST, "/v1/admin/users/999999/send-verification", &manager, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn requests_by_identifier_tell_nothing(b: crate::support::Backend) {
    let (app, _sink) = TestApp::spawn_with_mail(b, |c| c.policy.passwordless_login = true).await;
    app.user("kim", PW).await;
    for path in ["/v1/password/forgot", "/v1/email/verification", "/v1/login/link"] {
        let mut answers = Vec::new();
        for login in ["kim", "kim@example.com", "nobody", "nobody@example.com"] {
            let res = app.post(path, json!({"login": login})).await;
            answers.push((res.status(), res.text().await.unwrap()));
        }
        assert!(answers.windows(2).all(|w| w[0] == w[1]), "{path}: {answers:?}");
        assert_eq!(answers[0].0, StatusCode::ACCEPTED);
        let (status, err) = post(&app, path, json!({})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
        let (status, _) = post(&app, path, json!({"login": "kim", "email": "kim@example.com"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    // Same time too: the account is looked up after the answer, so neither side does more
    // work. Interleaved rounds, compared by median, with a bound far above the noise of a
    // shared machine yet far below the cost of a look-up plus a hash.
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for i in 0..40 {
        for (login, into) in [("kim", &mut known), ("nobody", &mut unknown)] {
            let start = std::time::Instant::now();
            let res = app.post("/v1/password/forgot", json!({"login": login})).await;
            assert_eq!(res.status(), StatusCode::ACCEPTED);
            if i >= 5 {
                into.push(start.elapsed());
            }
        }
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (k, u) = (median(&mut known), median(&mut unknown));
    let gap = k.abs_diff(u);
    assert!(gap < Duration::from_millis(15), "known {k:?}, unknown {u:?}");
}

async fn requests_by_identifier_are_limited_alike(b: crate::support::Backend) {
    let (app, _sink) = TestApp::spawn_with_mail(b, |c| {
        c.rate_limits = portcullis_core::limits::RateLimitConfig::default();
    })
    .await;
    app.user("kim", PW).await;
    let mut statuses = BTreeMap::new();
    for login in ["kim", "nobody"] {
        let mut got = Vec::new();
        for _ in 0..12 {
            got.push(app.post("/v1/password/forgot", json!({"login": login})).await.status());
        }
        statuses.insert(login, got);
    }
    assert_eq!(statuses["kim"], statuses["nobody"], "the same for an account and for nobody");
    assert_eq!(statuses["kim"][..10], [StatusCode::ACCEPTED; 10]);
    assert_eq!(statuses["kim"][10], StatusCode::TOO_MANY_REQUESTS);
}

async fn a_log_in_link_verifies_its_address_and_follows_the_policy_when_it_leaves(b: crate::support::Backend) {
    let (app, mut sink) = TestApp::spawn_with_mail(b, |c| {
        c.policy.passwordless_login = true;
        c.policy.require_verified_email = true;
    })
    .await;
    let body = app.signup(json!({"email": "noa@example.com", "password": PW})).await;
    assert_eq!(body["user"]["status"], "pending");
    one_mail(&sink, "noa@example.com", 1).await;
    post(&app, "/v1/login/link", json!({"login": "noa@example.com"})).await;
    let link = one_mail(&sink, "noa@example.com", 2).await;
    let (status, body) = post(&app, "/v1/login/token", json!({"token": token_of(&app, &link, "/ui/link")})).await;
    assert_eq!(status, StatusCode::OK, "following the mailed link proves the address: {body}");
    assert_eq!(
        (body["user"]["email_verified"].as_bool(), body["user"]["status"].as_str()),
        (Some(true), Some("active"))
    );

    // A tenant that stops offering links before the message leaves sends none.
    let cmd = portcullis_core::tenants::CreateTenantCommand {
        slug: "links".into(),
        name: None,
        domains: vec![],
        policy: portcullis_core::model::TenantPolicy { passwordless_login: Some(true), ..Default::default() },
    };
    let tenant = app.core.create_tenant(&crate::support::op(), cmd).await.unwrap();
    let res = app.post("/t/links/v1/signup", json!({"email": "ivo@example.com", "password": PW})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    one_mail(&sink, "ivo@example.com", 1).await;
    sink.go_down();
    let (status, _) = post(&app, "/t/links/v1/login/link", json!({"login": "ivo@example.com"})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let off = portcullis_core::store::TenantUpdate {
        policy: Some(portcullis_core::model::TenantPolicy { passwordless_login: Some(false), ..Default::default() }),
        ..Default::default()
    };
    app.core.update_tenant(&crate::support::op(), tenant.id, off).await.unwrap();
    sink.resume().await.unwrap();
    app.clock.advance(Duration::from_secs(600));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(app.core.mail_backlog(&crate::support::op()).await.unwrap(), (0, 0));
    assert_eq!(sink.messages_to("ivo@example.com").len(), 1, "no log-in link after the tenant turned them off");
}

crate::both!(
    a_log_in_link_verifies_its_address_and_follows_the_policy_when_it_leaves,
    requests_by_identifier_are_limited_alike,
    signup_and_verification_link_verify_the_address,
    verification_links_are_resent_within_limits_and_expire,
    a_new_address_becomes_the_login_once_verified,
    a_forgotten_password_is_reset_through_its_link,
    log_in_links_work_once_where_the_tenant_offers_them,
    admins_send_links_and_servers_cannot_read_them,
    requests_by_identifier_tell_nothing,
);
