//! What the buddycloud dialect guards: one answer and one password verification for unknown
//! accounts and wrong passwords, tenants that do not answer the dialect, a password change for
//! the authenticated account only, refusals after a right password, CORS for the tenant's
//! origins only, the audit log, rate limits and load shedding.

use portcullis_core::model::{TenantPolicy, UserStatus};
use portcullis_core::store::{AuditQuery, TenantUpdate};
use portcullis_core::tenants::CreateTenantCommand;
use portcullis_core::{Dialect, TenantId};
use portcullis_testkit::totp_code;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{Answer, CHALLENGE, JSON_UTF8, bc_tenant, buddycloud_com, call, check, create, json_post, users_in};
use crate::both;
use crate::support::{Backend, PW, PW2, TestApp, enable_dialect, op};

both!(
    unknown_accounts_and_wrong_passwords_get_one_answer_at_one_cost,
    tenants_that_do_not_answer_the_dialect_reveal_nothing,
    a_password_change_is_for_the_authenticated_account_only,
    refusals_after_a_right_password_say_why,
    cors_is_granted_to_the_tenants_origins_only,
    every_call_is_audited_with_its_surface,
    guessing_is_limited_and_overload_is_shed_with_retry_after,
);

async fn unknown_accounts_and_wrong_passwords_get_one_answer_at_one_cost(b: Backend) {
    let app = TestApp::spawn(b).await;
    buddycloud_com(&app).await;
    create(&app, "known@buddycloud.com", PW, "known@example.com").await;
    let who = [
        "known@buddycloud.com",
        "ghost@buddycloud.com",
        "known",
        "ghost",
        "known@example.com",
        "ghost@example.com",
        "KNOWN@buddycloud.com",
        "a@b@buddycloud.com",
        "",
    ];
    let (long, wrong) = ("x".repeat(2000), "a wrong password");
    let mut who: Vec<(&str, &str)> = who.iter().map(|u| (*u, wrong)).collect();
    // Over-long identifiers and passwords are wrong ones, at the same cost.
    let long_password = "p".repeat(5000);
    who.extend([(long.as_str(), wrong), ("known@buddycloud.com", long_password.as_str())]);
    for (method, path) in [
        (Method::GET, "/t/bc/api/"),
        (Method::DELETE, "/t/bc/api/account"),
        (Method::POST, "/t/bc/api/account/pw/change"),
    ] {
        let mut answers = Vec::new();
        for &(user, password) in &who {
            let before = app.core.hasher().verifications();
            let named = if user.is_empty() { "x" } else { user };
            let body = (method == Method::POST)
                .then(|| (Some(JSON_UTF8), json!({"username": named, "password": PW2}).to_string()));
            let a = call(&app, method.clone(), path, Some((user, password)), body).await;
            assert_eq!(app.core.hasher().verifications(), before + 1, "{method} {user:?}: one verification");
            answers.push((user, a));
        }
        let (_, first) = &answers[0];
        first.is(StatusCode::UNAUTHORIZED, "Unauthorized");
        assert_eq!(first.challenge.as_deref(), Some(CHALLENGE));
        for (user, a) in &answers {
            assert_eq!(a, first, "{method} {user:?}: the same answer as a wrong password");
        }
    }
    // Nothing changed.
    check(&app, "/api/", "known@buddycloud.com", PW).await.is(StatusCode::OK, "OK");

    // A reset: the same answer, and no hashing, whether or not the account exists.
    let mut answers = Vec::new();
    for user in ["known@buddycloud.com", "ghost@buddycloud.com", "known", "ghost", "ghost@example.com"] {
        let before = app.core.hasher().verifications();
        answers.push(json_post(&app, "/t/bc/api/account/pw/reset", None, json!({"username": user})).await);
        assert_eq!(app.core.hasher().verifications(), before, "{user}");
    }
    answers[0].is(StatusCode::OK, "OK");
    for a in &answers {
        assert_eq!(a, &answers[0]);
    }
}

async fn tenants_that_do_not_answer_the_dialect_reveal_nothing(b: Backend) {
    let app = TestApp::spawn(b).await;
    buddycloud_com(&app).await;
    // `quiet` has the dialect off; `gone` has it on but is disabled.
    let quiet = crate::support::tenant(&app, "quiet", &["quiet.example"]).await;
    let gone = bc_tenant(&app, "gone", &["gone.example"], TenantPolicy::default()).await;
    create(&app, "vic@gone.example", PW, "vic@example.com").await;
    let off = TenantUpdate { disabled: Some(true), ..Default::default() };
    app.core.update_tenant(&op(), gone, off).await.unwrap();
    let wrong = check(&app, "/t/bc/api/", "nobody", PW).await;
    wrong.is(StatusCode::UNAUTHORIZED, "Unauthorized");

    for path in ["/t/quiet/api/", "/t/gone/api/", "/t/nope/api/", "/t/gone/api/account"] {
        call(&app, Method::GET, path, None, None).await.is(StatusCode::NOT_FOUND, "Not Found");
    }
    let res = app.client.get(app.url("/api/")).header("host", "gone.example").send().await.unwrap();
    Answer::of(res).await.is(StatusCode::NOT_FOUND, "Not Found");
    // Credentials that lead there are refused like a wrong password, byte for byte.
    for (path, user) in [("/t/quiet/api/", "someone"), ("/api/", "x@quiet.example"), ("/t/bc/api/", "vic@gone.example")]
    {
        let before = app.core.hasher().verifications();
        assert_eq!(check(&app, path, user, PW).await, wrong, "{path} {user}");
        assert_eq!(app.core.hasher().verifications(), before + 1, "{path} {user}: the work of a wrong password");
        assert_eq!(call(&app, Method::DELETE, &format!("{}account", path), Some((user, PW)), None).await, wrong);
    }
    // Sign-up and reset: not found for the request's own tenant, a domain not served for a JID.
    let body = |u: &str| json!({"username": u, "password": PW, "email": "z@example.com"});
    json_post(&app, "/t/quiet/api/account", None, body("zed")).await.is(StatusCode::NOT_FOUND, "Not Found");
    for u in ["zed@quiet.example", "zed@gone.example", "zed@nowhere.example"] {
        json_post(&app, "/api/account", None, body(u))
            .await
            .is(StatusCode::BAD_REQUEST, "Bad Request: username: its domain is not served here");
    }
    json_post(&app, "/t/quiet/api/account/pw/reset", None, json!({"username": "zed"}))
        .await
        .is(StatusCode::NOT_FOUND, "Not Found");
    json_post(&app, "/api/account/pw/reset", None, json!({"username": "vic@gone.example"}))
        .await
        .is(StatusCode::NOT_FOUND, "Not Found");
    assert_eq!(users_in(&app, quiet).await, 0);
    assert_eq!(users_in(&app, TenantId::DEFAULT).await, 0);
}

async fn a_password_change_is_for_the_authenticated_account_only(b: Backend) {
    let app = TestApp::spawn(b).await;
    buddycloud_com(&app).await;
    create(&app, "juliet@buddycloud.com", PW, "juliet@example.com").await;
    create(&app, "romeo@buddycloud.com", PW, "romeo@example.com").await;
    let res = app.post("/t/bc/v1/login", json!({"login": "juliet", "password": PW})).await;
    let body: serde_json::Value = res.json().await.unwrap();
    let session = body["session"]["token"].as_str().unwrap().to_owned();

    // Another account's name: refused once the credentials are proven, and nothing changes.
    let creds = Some(("juliet@buddycloud.com", PW));
    let a =
        json_post(&app, "/api/account/pw/change", creds, json!({"username": "romeo@buddycloud.com", "password": PW2}))
            .await;
    a.is(StatusCode::FORBIDDEN, "Forbidden: username is not the account of the credentials");
    let a = json_post(
        &app,
        "/api/account/pw/change",
        Some(("juliet@buddycloud.com", PW2)),
        json!({"username": "romeo@buddycloud.com", "password": PW2}),
    )
    .await;
    a.is(StatusCode::UNAUTHORIZED, "Unauthorized");
    check(&app, "/api/", "romeo@buddycloud.com", PW).await.is(StatusCode::OK, "OK");
    check(&app, "/api/", "juliet@buddycloud.com", PW).await.is(StatusCode::OK, "OK");
    let a = json_post(
        &app,
        "/api/account/pw/change",
        creds,
        json!({"username": "juliet@elsewhere.example", "password": PW2}),
    )
    .await;
    a.is(StatusCode::FORBIDDEN, "Forbidden: username is not the account of the credentials");

    // The same account, spelt another way: a bare username, another case, its e-mail address.
    let a = json_post(&app, "/t/bc/api/account/pw/change", creds, json!({"username": "JULIET", "password": PW2})).await;
    a.is(StatusCode::OK, "OK");
    let creds = Some(("juliet@example.com", PW2));
    let a = json_post(
        &app,
        "/t/bc/api/account/pw/change",
        creds,
        json!({"username": "juliet@buddycloud.com", "password": PW}),
    )
    .await;
    a.is(StatusCode::OK, "OK");
    check(&app, "/api/", "juliet@buddycloud.com", PW).await.is(StatusCode::OK, "OK");
    // Every session of the user ended with the change.
    assert_eq!(app.get_auth("/t/bc/v1/session", &session).await.status(), StatusCode::UNAUTHORIZED);
}

async fn refusals_after_a_right_password_say_why(b: Backend) {
    let app = TestApp::spawn(b).await;
    enable_dialect(&app, TenantId::DEFAULT, Dialect::Buddycloud).await;
    // A second factor: HTTP Basic cannot carry its code.
    let token = app.user("totp", PW).await;
    let (s, e) = app.send(Method::POST, "/v1/me/second-factor/totp", &token, Some(json!({"password": PW}))).await;
    assert_eq!(s, StatusCode::OK, "{e}");
    let code = totp_code(e["secret"].as_str().unwrap(), u64::try_from(app.core.now().unix_seconds()).unwrap());
    let (s, c) = app.send(Method::POST, "/v1/me/second-factor/totp/confirm", &token, Some(json!({"code": code}))).await;
    assert_eq!(s, StatusCode::OK, "{c}");
    let a = check(&app, "/api/", "totp", PW).await;
    a.is(StatusCode::UNAUTHORIZED, "Unauthorized: this account has a second factor, which HTTP Basic cannot carry; log in through the native API or the pages");
    assert_eq!(a.challenge.as_deref(), Some(CHALLENGE));
    check(&app, "/api/", "totp", PW2).await.is(StatusCode::UNAUTHORIZED, "Unauthorized");
    let a = call(&app, Method::DELETE, "/api/account", Some(("totp", PW)), None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{a:?}");
    assert_eq!(app.session_status(&token).await, StatusCode::OK, "still there");

    // A disabled account.
    app.user("dis", PW).await;
    let id = app
        .core
        .stores()
        .users
        .user_with_secret(TenantId::DEFAULT, &portcullis_core::parse::LoginKey::username("dis"))
        .await
        .unwrap()
        .unwrap()
        .user
        .id;
    let off = portcullis_core::store::UserUpdate { status: Some(UserStatus::Disabled), ..Default::default() };
    app.core.stores().users.update_user(TenantId::DEFAULT, id, &off, app.core.now()).await.unwrap();
    check(&app, "/api/", "dis", PW).await.is(StatusCode::FORBIDDEN, "Forbidden: this account is disabled");
    check(&app, "/api/", "dis", PW2).await.is(StatusCode::UNAUTHORIZED, "Unauthorized");
}

async fn cors_is_granted_to_the_tenants_origins_only(b: Backend) {
    let app = TestApp::spawn(b).await;
    let web = TenantPolicy { cors_origins: Some(vec!["https://app.example".into()]), ..Default::default() };
    bc_tenant(&app, "bc", &["buddycloud.com"], web.clone()).await;
    let quiet = CreateTenantCommand { slug: "quiet".into(), policy: web, ..Default::default() };
    app.core.create_tenant(&op(), quiet).await.unwrap();
    create(&app, "juliet@buddycloud.com", PW, "juliet@example.com").await;

    let preflight = |path: &str, origin: &str| {
        app.client
            .request(Method::OPTIONS, app.url(path))
            .header("origin", origin.to_owned())
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, content-type")
            .send()
    };
    let res = preflight("/t/bc/api/account/pw/change", "https://app.example").await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let h = res.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example");
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert_eq!(h["access-control-allow-methods"], "POST, OPTIONS");
    assert_eq!(h["access-control-allow-headers"], "Authorization, Content-Type");
    assert_eq!(h["vary"], "Origin");
    let res = preflight("/t/bc/api/account", "https://app.example").await.unwrap();
    assert_eq!(res.headers()["access-control-allow-methods"], "POST, DELETE, OPTIONS");

    // The real request gets the grant too, failures included.
    let with_origin = |user: &str, pw: &str| {
        app.client
            .get(app.url("/t/bc/api/"))
            .header("origin", "https://app.example")
            .basic_auth(user, Some(pw.to_owned()))
            .send()
    };
    let res = with_origin("juliet", PW).await.unwrap();
    assert_eq!(
        (res.status(), &res.headers()["access-control-allow-origin"]),
        (StatusCode::OK, &HeaderValue::from_static("https://app.example"))
    );
    let res = with_origin("juliet", PW2).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["access-control-allow-credentials"], "true");
    assert_eq!(res.headers()["access-control-expose-headers"], "WWW-Authenticate, Retry-After");

    // Nothing for other origins, nor from a tenant without the dialect.
    let no_grant = |h: &HeaderMap| h.keys().all(|k| !k.as_str().starts_with("access-control-"));
    for (path, origin) in [
        ("/t/bc/api/account", "https://evil.example"),
        ("/t/bc/api/account", "https://app.example.evil.example"),
        ("/t/bc/api/account", "null"),
        ("/t/quiet/api/account", "https://app.example"),
    ] {
        let res = preflight(path, origin).await.unwrap();
        assert!(no_grant(res.headers()), "{path} {origin}: {:?}", res.headers());
    }
    let res = app.client.get(app.url("/t/bc/api/")).header("origin", "https://evil.example").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(no_grant(res.headers()), "{:?}", res.headers());

    // A browser sends cached Basic credentials with a form another site posts (text/plain
    // needs no preflight): such a change is refused unless the origin is listed.
    let forged = |origin: Option<&'static str>, site: Option<&'static str>| {
        let mut req = app
            .client
            .post(app.url("/t/bc/api/account/pw/change"))
            .basic_auth("juliet", Some(PW))
            .header("content-type", "text/plain")
            .body(json!({"username": "juliet", "password": "an attacker's own passphrase"}).to_string());
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        if let Some(s) = site {
            req = req.header("sec-fetch-site", s);
        }
        req.send()
    };
    for (origin, site) in [
        (Some("https://evil.example"), Some("cross-site")),
        (Some("https://evil.example"), None),
        (None, Some("same-site")),
    ] {
        let res = forged(origin, site).await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{origin:?} {site:?}");
    }
    assert_eq!(check(&app, "/t/bc/api/", "juliet", PW).await.status, StatusCode::OK, "the password is unchanged");
    // A listed origin may.
    let res = forged(Some("https://app.example"), Some("cross-site")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

async fn every_call_is_audited_with_its_surface(b: Backend) {
    let app = TestApp::spawn(b).await;
    let bc = buddycloud_com(&app).await;
    create(&app, "juliet@buddycloud.com", PW, "juliet@example.com").await;
    check(&app, "/api/", "juliet@buddycloud.com", PW2).await.is(StatusCode::UNAUTHORIZED, "Unauthorized");
    check(&app, "/api/", "juliet@buddycloud.com", PW).await.is(StatusCode::OK, "OK");
    let creds = Some(("juliet@buddycloud.com", PW));
    json_post(&app, "/api/account/pw/change", creds, json!({"username": "juliet@buddycloud.com", "password": PW2}))
        .await
        .is(StatusCode::OK, "OK");
    json_post(&app, "/api/account/pw/reset", None, json!({"username": "juliet@buddycloud.com"}))
        .await
        .is(StatusCode::OK, "OK");
    call(&app, Method::DELETE, "/api/account", Some(("juliet@buddycloud.com", PW2)), None)
        .await
        .is(StatusCode::OK, "OK");

    let q = AuditQuery { tenant_id: Some(bc), limit: 100, ..Default::default() };
    let events = app.core.audit_events(&op(), q, Default::default()).await.unwrap();
    let mut seen: Vec<&str> =
        events.iter().filter(|e| e.details["surface"] == "buddycloud").map(|e| e.action.as_str()).collect();
    seen.reverse();
    assert_eq!(
        seen,
        [
            "signup",
            "login.failed",
            "credentials.verified",
            "credentials.verified",
            "password.changed",
            "password.reset_requested",
            "credentials.verified",
            "user.deleted"
        ],
        "{events:#?}"
    );
    assert!(events.iter().all(|e| !e.details.to_string().contains(PW) && !e.details.to_string().contains(PW2)));
}

async fn guessing_is_limited_and_overload_is_shed_with_retry_after(b: Backend) {
    let app = TestApp::spawn_with(b, |c| c.rate_limits.login_per_identifier_per_minute = 3).await;
    enable_dialect(&app, TenantId::DEFAULT, Dialect::Buddycloud).await;
    app.user("target", PW).await;
    for _ in 0..3 {
        check(&app, "/api/", "target", PW2).await.is(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    let a = check(&app, "/api/", "target", PW).await;
    a.is(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests: try again later");
    assert!((1..=60).contains(&a.retry_after.unwrap().parse::<u64>().unwrap()));
    drop(app);

    let app = TestApp::spawn_with(b, |c| {
        c.password.memory_kib = 32 * 1024;
        c.password.iterations = 3;
        c.password.workers = 1;
        c.password.queue = 1;
    })
    .await;
    enable_dialect(&app, TenantId::DEFAULT, Dialect::Buddycloud).await;
    app.user("busy", PW).await;
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (client, url) = (app.client.clone(), app.url("/api/"));
            tokio::spawn(
                async move { Answer::of(client.get(url).basic_auth("busy", Some(PW)).send().await.unwrap()).await },
            )
        })
        .collect();
    let (mut ok, mut shed) = (0, 0);
    for t in tasks {
        let a = t.await.unwrap();
        match a.status {
            StatusCode::OK => ok += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                shed += 1;
                a.is(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable: the server is busy; try again shortly");
                assert_eq!(a.retry_after.as_deref(), Some("1"));
            }
            _ => panic!("{a:?}"),
        }
    }
    assert!(ok >= 1 && shed >= 1, "ok {ok}, shed {shed}");
}
