//! What no client may get out of the dialect: whether an account exists, a request riding on
//! a browser's cookie from another site, a crash on malformed input, an answer from a tenant
//! without the dialect, unlimited guessing; and the audit trail of its calls.

use portcullis_core::store::{AuditQuery, TenantUpdate};

use super::*;
use crate::both;
use crate::support::{PW2, api_key, tenant};

both!(
    unknown_user_and_wrong_password_get_identical_answers_at_identical_cost,
    browsers_on_other_sites_cannot_ride_on_the_cookie,
    malformed_requests_get_clear_errors_in_the_dialects_format,
    tenants_without_the_dialect_get_the_answer_of_no_tenant,
    limits_and_overload_answer_in_the_dialects_format,
    the_dialects_calls_are_audited_with_its_surface,
    the_path_moves_with_the_configuration,
);

async fn unknown_user_and_wrong_password_get_identical_answers_at_identical_cost(b: Backend) {
    let app = spawn(b).await;
    app.user("known", PW).await;
    let mut answers = Vec::new();
    for login in ["known", "unknown", "known@example.com", "nobody@example.com", "+1 555 0000", "no@such@thing"] {
        for xml in [false, true] {
            let before = app.core.hasher().verifications();
            let mut pairs = vec![("action", "login"), ("username", login), ("password", "wrong password here")];
            if xml {
                pairs.push(("format", "xml"));
            }
            let r = post(&app, &pairs).await;
            assert_eq!(app.core.hasher().verifications(), before + 1, "{login}: exactly one argon2id verification");
            let headers: Vec<Option<String>> = ["content-type", "www-authenticate", "set-cookie", "retry-after"]
                .iter()
                .map(|h| r.header(h).map(str::to_owned))
                .collect();
            answers.push((xml, login, r.status, headers, r.text));
        }
    }
    for xml in [false, true] {
        let same: Vec<_> = answers.iter().filter(|a| a.0 == xml).collect();
        let (_, _, s0, h0, t0) = same[0];
        assert_eq!(*s0, StatusCode::UNAUTHORIZED);
        for (_, login, s, h, t) in &same {
            assert_eq!((s, h, t), (s0, h0, t0), "{login} must get the same answer as a wrong password");
        }
    }
    assert_eq!(
        serde_json::from_str::<Value>(&answers[0].4).unwrap(),
        json!({"status": "error", "code": "invalid_credentials", "message": "The username or password is incorrect."})
    );
}

async fn browsers_on_other_sites_cannot_ride_on_the_cookie(b: Backend) {
    let app = spawn(b).await;
    app.user("cy", PW).await;
    let t = app.token("cy", PW).await;
    let cookie = format!("portcullis_session={t}");
    for method in [Method::GET, Method::POST] {
        for site in ["cross-site", "same-site"] {
            let (path, body) = if method == Method::GET {
                (format!("{API}?action=logout"), Body::None)
            } else {
                (API.to_owned(), Body::Form(&[("action", "logout")]))
            };
            let r = send(&app, method.clone(), &path, body, &[("cookie", &cookie), ("sec-fetch-site", site)]).await;
            r.error(StatusCode::FORBIDDEN, "cross_site_request");
        }
    }
    let r = send(
        &app,
        Method::GET,
        &format!("{API}?action=logout"),
        Body::None,
        &[("cookie", &cookie), ("origin", "https://evil.example")],
    )
    .await;
    r.error(StatusCode::FORBIDDEN, "cross_site_request");
    // Nor log anyone in from there (log-in forgery), by GET or POST.
    let q = serde_urlencoded::to_string([("action", "login"), ("username", "cy"), ("password", PW)]).unwrap();
    let r = send(&app, Method::GET, &format!("{API}?{q}"), Body::None, &[("sec-fetch-site", "cross-site")]).await;
    r.error(StatusCode::FORBIDDEN, "cross_site_request");
    assert!(r.cookie().is_none());
    assert_eq!(app.session_status(&t).await, StatusCode::OK, "the session lives");
    // The site's own pages may.
    let r = send(
        &app,
        Method::GET,
        &format!("{API}?action=logout"),
        Body::None,
        &[("cookie", &cookie), ("sec-fetch-site", "same-origin")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

async fn malformed_requests_get_clear_errors_in_the_dialects_format(b: Backend) {
    let app = TestApp::spawn_with(b, |c| c.http.max_body_bytes = 4096).await;
    enable_dialect(&app, TenantId::DEFAULT, Dialect::Metrixstream).await;
    app.user("mal", PW).await;
    let before = user_count(&app, TenantId::DEFAULT).await;
    let signup = [("action", "signup"), ("username", "zed"), ("password", PW), ("email", "zed@example.com")];

    // Wrong methods, in JSON or XML as asked, with the methods that work.
    for method in [Method::PUT, Method::DELETE, Method::PATCH, Method::OPTIONS] {
        let r = send(&app, method.clone(), &format!("{API}?action=login"), Body::None, &[]).await;
        r.error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
        assert_eq!(r.header("allow"), Some("GET, POST"), "{method}");
    }
    let r = send(&app, Method::PUT, &format!("{API}?format=xml"), Body::Form(&signup), &[]).await;
    assert_eq!(
        (r.status, r.header("content-type")),
        (StatusCode::METHOD_NOT_ALLOWED, Some("application/xml; charset=utf-8"))
    );
    assert!(r.text.contains("<code>method_not_allowed</code>"), "{}", r.text);

    // Bodies of the wrong type: JSON is not a form; neither is text.
    let json_body = serde_json::to_string(
        &json!({"action": "signup", "username": "zed", "password": PW, "email": "zed@example.com"}),
    )
    .unwrap();
    send(&app, Method::POST, API, Body::Raw("application/json", json_body), &[])
        .await
        .error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    send(&app, Method::POST, API, Body::Raw("text/plain", "action=signup".into()), &[])
        .await
        .error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    let r =
        send(&app, Method::POST, &format!("{API}?format=xml"), Body::Raw("application/xml", "<a/>".into()), &[]).await;
    assert_eq!(
        (r.status, r.header("content-type")),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("application/xml; charset=utf-8"))
    );
    // Bodies that do not parse.
    send(&app, Method::POST, API, Body::Raw("multipart/form-data", "--x\r\n".into()), &[])
        .await
        .error(StatusCode::BAD_REQUEST, "malformed_request");
    send(&app, Method::POST, API, Body::Raw("multipart/form-data; boundary=XyZ", "--XyZ\r\nnonsense".into()), &[])
        .await
        .error(StatusCode::BAD_REQUEST, "malformed_request");
    // Too large.
    let big = "a".repeat(8000);
    let r = post(
        &app,
        &[
            ("action", "signup"),
            ("username", "zed"),
            ("password", PW),
            ("email", "zed@example.com"),
            ("description", &big),
        ],
    )
    .await;
    r.error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let huge = [("action", "signup"), ("description", big.as_str())];
    send(&app, Method::POST, API, Body::Multipart(&huge), &[])
        .await
        .error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

    // No action, an unknown one.
    send(&app, Method::GET, API, Body::None, &[]).await.error(StatusCode::BAD_REQUEST, "missing_action");
    post(&app, &[("username", "mal"), ("password", PW)]).await.error(StatusCode::BAD_REQUEST, "missing_action");
    get(&app, &[("action", "delete")]).await.error(StatusCode::BAD_REQUEST, "unknown_action");
    // Below the API's path there is nothing, said in the client's format.
    send(&app, Method::GET, &format!("{API}/users"), Body::None, &[]).await.error(StatusCode::NOT_FOUND, "not_found");
    let r = send(&app, Method::POST, &format!("{API}/users/7"), Body::None, &[("accept", "application/xml")]).await;
    assert_eq!((r.status, r.header("content-type")), (StatusCode::NOT_FOUND, Some("application/xml; charset=utf-8")));
    // A value with a NUL byte cannot be stored: refused, not a crash.
    let r = post(
        &app,
        &[
            ("action", "signup"),
            ("username", "nul"),
            ("password", PW),
            ("email", "nul@example.com"),
            ("display_status", "a\u{0}b"),
        ],
    )
    .await;
    r.error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

    assert_eq!(user_count(&app, TenantId::DEFAULT).await, before, "nothing half-written");
    // And the well-formed request goes through.
    assert_eq!(post(&app, &signup).await.status, StatusCode::OK);
}

async fn tenants_without_the_dialect_get_the_answer_of_no_tenant(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.user("dee", PW).await;
    let on = tenant(&app, "on", &["on.example"]).await;
    enable_dialect(&app, on, Dialect::Metrixstream).await;
    let off = tenant(&app, "off", &["off.example"]).await;
    let gone = tenant(&app, "gone", &[]).await;
    enable_dialect(&app, gone, Dialect::Metrixstream).await;
    app.core.update_tenant(&op(), gone, TenantUpdate { disabled: Some(true), ..Default::default() }).await.unwrap();
    let login = [("action", "login"), ("username", "dee"), ("password", PW)];

    let reference = send(&app, Method::POST, &format!("/t/nope{API}"), Body::Form(&login), &[]).await;
    reference.error(StatusCode::NOT_FOUND, "not_found");
    let mut seen = 0;
    for (path, headers) in [
        (API.to_owned(), vec![]),
        (format!("/t/off{API}"), vec![]),
        (format!("/t/gone{API}"), vec![]),
        (API.to_owned(), vec![("host", "off.example")]),
        (format!("{API}?format=xml"), vec![]),
        (format!("/t/off{API}/"), vec![("accept", "application/xml")]),
        (format!("/t/off{API}/deeper"), vec![]),
        (format!("/t/nope{API}?format=xml"), vec![]),
    ] {
        for method in [Method::POST, Method::GET, Method::DELETE] {
            let body = if method == Method::POST { Body::Form(&login) } else { Body::None };
            let r = send(&app, method.clone(), &path, body, &headers).await;
            let got = (r.status, r.header("content-type"), r.cookie(), r.header("allow"), &r.text);
            let want = (reference.status, reference.header("content-type"), None, None, &reference.text);
            assert_eq!(got, want, "{method} {path} {headers:?}");
            seen += 1;
        }
    }
    assert_eq!(seen, 24);
    // Where it is on, by path or by host, it answers for that tenant's users only.
    let r = send(&app, Method::POST, &format!("/t/on{API}"), Body::Form(&login), &[]).await;
    r.error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    let r = send(
        &app,
        Method::POST,
        API,
        Body::Form(&[("action", "signup"), ("username", "dee"), ("password", PW), ("email", "dee@example.com")]),
        &[("host", "on.example")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.cookie().unwrap().contains("Path=/;"));
    let r = send(&app, Method::POST, &format!("/t/on{API}"), Body::Form(&login), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.cookie().unwrap().contains("Path=/t/on/;"), "tenants sharing a host keep separate cookies");
    assert_eq!(user_count(&app, off).await, 0);
}

async fn limits_and_overload_answer_in_the_dialects_format(b: Backend) {
    let app = TestApp::spawn_with(b, |c| c.rate_limits.login_per_identifier_per_minute = 3).await;
    enable_dialect(&app, TenantId::DEFAULT, Dialect::Metrixstream).await;
    app.user("target", PW).await;
    for who in ["target", "ghost"] {
        for _ in 0..3 {
            post(&app, &[("action", "login"), ("username", who), ("password", "guess guess")])
                .await
                .error(StatusCode::UNAUTHORIZED, "invalid_credentials");
        }
        let r = post(&app, &[("action", "login"), ("username", who), ("password", PW)]).await;
        r.error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
        let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        let r = post(&app, &[("action", "login"), ("username", who), ("password", PW), ("format", "xml")]).await;
        assert_eq!(
            (r.status, r.header("content-type")),
            (StatusCode::TOO_MANY_REQUESTS, Some("application/xml; charset=utf-8"))
        );
        assert!(r.text.contains("<code>rate_limited</code>") && r.header("retry-after").is_some());
    }

    let app = TestApp::spawn_with(b, |c| {
        c.password.memory_kib = 32 * 1024;
        c.password.iterations = 3;
        c.password.workers = 1;
        c.password.queue = 1;
    })
    .await;
    enable_dialect(&app, TenantId::DEFAULT, Dialect::Metrixstream).await;
    app.user("busy", PW).await;
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (client, url) = (app.client.clone(), app.url(API));
            tokio::spawn(async move {
                let body =
                    serde_urlencoded::to_string([("action", "login"), ("username", "busy"), ("password", PW)]).unwrap();
                let res = client
                    .post(url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let status = res.status();
                let retry = res.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
                (status, retry, res.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let (mut ok, mut shed) = (0, 0);
    for t in tasks {
        let (status, retry, body) = t.await.unwrap();
        match status {
            StatusCode::OK => ok += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                shed += 1;
                assert_eq!(
                    (body["status"].as_str(), body["code"].as_str()),
                    (Some("error"), Some("overloaded")),
                    "{body}"
                );
                assert_eq!(retry.as_deref(), Some("1"));
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(ok >= 1 && shed >= 1, "ok {ok}, shed {shed}");
}

async fn the_dialects_calls_are_audited_with_its_surface(b: Backend) {
    let app = spawn(b).await;
    let r =
        post(&app, &[("action", "signup"), ("username", "aud"), ("password", PW), ("email", "aud@example.com")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    post(&app, &[("action", "login"), ("username", "aud"), ("password", PW2)])
        .await
        .error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    let t = post(&app, &[("action", "login"), ("username", "aud"), ("password", PW)]).await.json()["session"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(post(&app, &[("action", "logout"), ("token", &t)]).await.status, StatusCode::OK);
    assert_eq!(post(&app, &[("action", "forgotpassword"), ("username", "aud")]).await.status, StatusCode::OK);

    app.core.flush_audit().await.unwrap();
    let q = AuditQuery { tenant_id: Some(TenantId::DEFAULT), limit: 100, ..Default::default() };
    let events: Vec<_> = app
        .core
        .audit_events(&op(), q, Default::default())
        .await
        .unwrap()
        .into_iter()
        // The operator's switching the dialect on is not the dialect's, nor the mail sender's
        // work after the answers.
        .filter(|e| !e.action.starts_with("tenant.") && !e.action.starts_with("mail."))
        .collect();
    let mut seen: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    seen.reverse();
    assert_eq!(
        seen,
        ["signup", "login.succeeded", "login.failed", "login.succeeded", "logout", "password.reset_requested"],
        "{events:#?}"
    );
    for e in &events {
        assert_eq!(e.details["surface"], "metrixstream", "{e:?}");
        assert_eq!(e.user_agent.as_deref(), Some("portcullis-tests/1.0"));
        assert!(!e.details.to_string().contains(PW) && !e.details.to_string().contains(&t), "no secret: {e:?}");
    }
    // Through the admin API too.
    let key = api_key(&app, Some(TenantId::DEFAULT), &["tenant:admin"]).await;
    let (status, body) = app.send(Method::GET, "/v1/admin/audit?action=logout", &key, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["events"][0]["details"]["surface"], "metrixstream", "{body}");
}

async fn the_path_moves_with_the_configuration(b: Backend) {
    let app = TestApp::spawn_with(b, |c| c.http.dialect_paths.metrixstream = "/members/api.php".into()).await;
    enable_dialect(&app, TenantId::DEFAULT, Dialect::Metrixstream).await;
    app.user("mover", PW).await;
    let body = [("action", "login"), ("username", "mover"), ("password", PW)];
    let r = send(&app, Method::POST, "/members/api.php", Body::Form(&body), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = send(&app, Method::POST, API, Body::Form(&body), &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "the old path is nobody's: {}", r.text);
}
