//! Sessions: checking, listing, ending, expiry, cookies, and revocation across nodes.

use std::time::Duration;

use portcullis_core::secret::Token;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both;
use crate::support::{Backend, PW, TestApp, assert_error};

both!(
    sessions_are_accepted_as_bearer_or_cookie_and_nothing_else,
    sessions_are_listed_and_ended_one_by_one,
    logout_ends_this_session_and_logout_all_ends_every_one,
    sessions_expire_when_idle_and_absolutely,
    checking_a_session_does_not_write_on_every_request,
    a_session_ended_on_one_node_is_refused_by_another,
    cross_site_requests_riding_on_the_cookie_are_refused,
    forwarded_headers_are_believed_only_from_trusted_proxies,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_loses_its_revocation_listener_stops_trusting_its_cache() {
    use sqlx::Connection;
    let app = TestApp::spawn(Backend::Postgres).await;
    let node_b = app.second_node().await;
    let token = app.user("lost", PW).await;
    assert_eq!(node_b.session_status(&token).await, StatusCode::OK);
    assert_eq!(node_b.session_status(&token).await, StatusCode::OK, "cached on node B");
    // Cut every revocation listener's connection, as a PostgreSQL restart or a network blip
    // would, and log out on node A straight away: node B must not keep trusting its cache.
    let db = app.config.database_url.rsplit('/').next().unwrap().to_owned();
    let mut admin = sqlx::PgConnection::connect(&portcullis_testkit::postgres::admin_url()).await.unwrap();
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND query ILIKE 'LISTEN%'",
    )
    .bind(&db)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(!killed.is_empty(), "found the listeners");
    assert_eq!(app.call(Method::POST, "/v1/logout", Some(&token), None).await.status(), StatusCode::NO_CONTENT);
    eventually_status(&node_b, &token, StatusCode::UNAUTHORIZED).await;
    // And once it listens again, it caches (and revokes) as before.
    let t2 = app.token("lost", PW).await;
    for _ in 0..100 {
        if node_b.core.session_cache().is_feed_live() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(node_b.session_status(&t2).await, StatusCode::OK);
    assert_eq!(app.call(Method::POST, "/v1/logout", Some(&t2), None).await.status(), StatusCode::NO_CONTENT);
    eventually_status(&node_b, &t2, StatusCode::UNAUTHORIZED).await;
    node_b.stop().await;
}

/// Waits (up to 5 s) until `GET /v1/session` with `token` answers `want`.
pub async fn eventually_status(app: &TestApp, token: &str, want: StatusCode) {
    let mut last = StatusCode::IM_A_TEAPOT;
    for _ in 0..100 {
        last = app.session_status(token).await;
        if last == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("expected {want}, still {last} after 5 s");
}

async fn cookie_call(
    app: &TestApp,
    method: Method,
    path: &str,
    cookie: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut req =
        app.client.request(method, app.url(path)).header("cookie", format!("other=1; portcullis_session={cookie}"));
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

async fn sessions_are_accepted_as_bearer_or_cookie_and_nothing_else(b: Backend) {
    let app = TestApp::spawn(b).await;
    let token = app.user("sam", PW).await;
    let res = app.get_auth("/v1/session", &token).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["session"]["current"], true);
    assert!(body["session"]["user_id"].as_i64().unwrap() > 0);
    let res = cookie_call(&app, Method::GET, "/v1/me", &token, &[]).await;
    assert_eq!(res.status(), StatusCode::OK);

    let res = app.call(Method::GET, "/v1/session", None, None).await;
    assert_eq!(res.headers()["www-authenticate"], "Bearer realm=\"portcullis\"");
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let forged = Token::generate("pcs_").unwrap();
    for bad in [forged.expose(), "pcs_short", "not-a-token", "", &format!("{token}x"), &token[..46]] {
        let res = app.get_auth("/v1/session", bad).await;
        assert_error(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    let res =
        app.client.get(app.url("/v1/session")).header("authorization", format!("Basic {token}")).send().await.unwrap();
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let res =
        app.client.get(app.url("/v1/session")).header("authorization", format!("bearer {token}")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "the scheme is case-insensitive");
}

async fn sessions_are_listed_and_ended_one_by_one(b: Backend) {
    let app = TestApp::spawn(b).await;
    let first = app.user("lee", PW).await;
    let second = app.token("lee", PW).await;
    let other = app.user("kim", PW).await;
    let listed: Value = app.get_auth("/v1/sessions", &second).await.json().await.unwrap();
    let sessions = listed["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[0]["current"], true, "newest first, and it is this one");
    assert_eq!(sessions[1]["current"], false);
    assert_eq!(sessions[1]["user_agent"], "portcullis-tests/1.0");
    assert_eq!(sessions[1]["ip"], "127.0.0.1");
    for s in sessions {
        assert!(s.get("token").is_none(), "listed sessions never show tokens");
    }
    let first_id = sessions[1]["id"].as_i64().unwrap();
    let kims: Value = app.get_auth("/v1/session", &other).await.json().await.unwrap();
    let kim_id = kims["session"]["id"].as_i64().unwrap();

    let res = app.call(Method::DELETE, &format!("/v1/sessions/{kim_id}"), Some(&second), None).await;
    assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(app.session_status(&other).await, StatusCode::OK, "someone else's session is untouched");
    for bad in ["abc", "-1", "99999999999999999999999", "1%20OR%201=1"] {
        let res = app.call(Method::DELETE, &format!("/v1/sessions/{bad}"), Some(&second), None).await;
        assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
    }
    let res = app.call(Method::DELETE, &format!("/v1/sessions/{first_id}"), Some(&second), None).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.session_status(&first).await, StatusCode::UNAUTHORIZED);
    assert_eq!(app.session_status(&second).await, StatusCode::OK);
    let listed: Value = app.get_auth("/v1/sessions", &second).await.json().await.unwrap();
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 1);
}

async fn logout_ends_this_session_and_logout_all_ends_every_one(b: Backend) {
    let app = TestApp::spawn(b).await;
    let a = app.user("max", PW).await;
    let b1 = app.token("max", PW).await;
    let c = app.token("max", PW).await;
    let res = app.call(Method::POST, "/v1/logout", Some(&a), None).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let cookie = res.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("portcullis_session=;") && cookie.contains("Max-Age=0"), "{cookie}");
    assert_eq!(app.session_status(&a).await, StatusCode::UNAUTHORIZED);
    assert_eq!(app.session_status(&b1).await, StatusCode::OK);
    let res = app.call(Method::POST, "/v1/logout", Some(&a), None).await;
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;

    let res = app.call(Method::POST, "/v1/logout/all", Some(&b1), None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["sessions_ended"], 2);
    assert_eq!(app.session_status(&b1).await, StatusCode::UNAUTHORIZED);
    assert_eq!(app.session_status(&c).await, StatusCode::UNAUTHORIZED);
    app.token("max", PW).await;
}

async fn sessions_expire_when_idle_and_absolutely(b: Backend) {
    let app = TestApp::spawn_with(b, |c| {
        c.policy.session_idle_ttl = Duration::from_secs(3600);
        c.policy.session_absolute_ttl = Duration::from_secs(4 * 3600);
        c.sessions.touch_interval = Duration::from_secs(60);
    })
    .await;
    let idle = app.user("ida", PW).await;
    let busy = app.token("ida", PW).await;
    // Used every 50 minutes, `busy` outlives the idle timeout; `idle` does not.
    for _ in 0..3 {
        app.clock.advance(Duration::from_secs(50 * 60));
        assert_eq!(app.session_status(&busy).await, StatusCode::OK);
        app.core.flush_touches().await.unwrap();
    }
    assert_eq!(app.session_status(&idle).await, StatusCode::UNAUTHORIZED, "idle for 150 minutes");
    let body: Value = app.get_auth("/v1/session", &busy).await.json().await.unwrap();
    let s = &body["session"];
    assert!(s["last_seen_at"].as_str().unwrap() > s["created_at"].as_str().unwrap());
    // Four hours after it opened, even a busy session ends.
    app.clock.advance(Duration::from_secs(100 * 60));
    assert_eq!(app.session_status(&busy).await, StatusCode::UNAUTHORIZED, "absolute lifetime over");
    app.token("ida", PW).await;
}

async fn checking_a_session_does_not_write_on_every_request(b: Backend) {
    let app = TestApp::spawn(b).await;
    let token = app.user("quiet", PW).await;
    let hash = Token::from_client(&token).hash();
    let stored =
        || async { app.core.stores().sessions.session_by_token_hash(&hash).await.unwrap().unwrap().last_seen_at };
    let opened = stored().await;
    for _ in 0..50 {
        assert_eq!(app.session_status(&token).await, StatusCode::OK);
    }
    app.clock.advance(Duration::from_secs(30));
    for _ in 0..20 {
        assert_eq!(app.session_status(&token).await, StatusCode::OK);
    }
    app.core.flush_touches().await.unwrap();
    assert_eq!(stored().await, opened, "uses within the touch interval are not written");
    app.clock.advance(Duration::from_secs(31));
    for _ in 0..20 {
        assert_eq!(app.session_status(&token).await, StatusCode::OK);
    }
    app.core.flush_touches().await.unwrap();
    let seen = stored().await;
    assert!(seen > opened, "one write once the interval has passed");
    assert_eq!(seen, app.core.now());
}

async fn a_session_ended_on_one_node_is_refused_by_another(b: Backend) {
    let app = TestApp::spawn(b).await;
    let node_b = app.second_node().await;
    let t1 = app.user("nod", PW).await;
    let t2 = app.token("nod", PW).await;
    let t3 = app.token("nod", PW).await;
    // Node B validates (and caches) all three.
    for t in [&t1, &t2, &t3] {
        assert_eq!(node_b.session_status(t).await, StatusCode::OK);
        assert_eq!(node_b.session_status(t).await, StatusCode::OK);
    }
    assert!(node_b.core.session_cache().len() >= 3, "node B holds them in memory");
    // Log-out on node A: node B must stop accepting the token.
    assert_eq!(app.call(Method::POST, "/v1/logout", Some(&t1), None).await.status(), StatusCode::NO_CONTENT);
    eventually_status(&node_b, &t1, StatusCode::UNAUTHORIZED).await;
    assert_eq!(node_b.session_status(&t2).await, StatusCode::OK);
    // A password change on node A ends every other session, on node B too.
    let res = app
        .call(
            Method::POST,
            "/v1/me/password",
            Some(&t2),
            Some(json!({"current_password": PW, "new_password": crate::support::PW2})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    eventually_status(&node_b, &t3, StatusCode::UNAUTHORIZED).await;
    assert_eq!(node_b.session_status(&t2).await, StatusCode::OK, "the session that changed it stays");
    node_b.stop().await;
}

async fn cross_site_requests_riding_on_the_cookie_are_refused(b: Backend) {
    let app = TestApp::spawn(b).await;
    let token = app.user("csrf", PW).await;
    let res = cookie_call(&app, Method::POST, "/v1/logout", &token, &[("sec-fetch-site", "cross-site")]).await;
    assert_error(res, StatusCode::FORBIDDEN, "cross_site_request").await;
    let res = cookie_call(&app, Method::POST, "/v1/logout", &token, &[("origin", "https://evil.example")]).await;
    assert_error(res, StatusCode::FORBIDDEN, "cross_site_request").await;
    assert_eq!(app.session_status(&token).await, StatusCode::OK, "nothing happened");
    // Reading is harmless; same-origin writes and bearer-token callers pass.
    let res = cookie_call(&app, Method::GET, "/v1/me", &token, &[("sec-fetch-site", "cross-site")]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let host = app.base.trim_start_matches("http://").to_owned();
    let res = cookie_call(&app, Method::POST, "/v1/logout", &token, &[("origin", &format!("http://{host}"))]).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let token = app.token("csrf", PW).await;
    let res = app
        .client
        .post(app.url("/v1/logout"))
        .bearer_auth(&token)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
}

async fn forwarded_headers_are_believed_only_from_trusted_proxies(b: Backend) {
    let forwarded = |app: &TestApp| {
        app.client
            .post(app.url("/v1/login"))
            .header("x-forwarded-for", "198.51.100.23, 203.0.113.9")
            .header("x-forwarded-proto", "https")
            .json(&json!({"login": "fwd", "password": PW}))
    };
    // Not a trusted proxy: the headers are ignored.
    let app = TestApp::spawn(b).await;
    app.user("fwd", PW).await;
    let res = forwarded(&app).send().await.unwrap();
    assert!(!res.headers()["set-cookie"].to_str().unwrap().contains("Secure"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["session"]["ip"], "127.0.0.1");

    // Behind a trusted proxy: the client is the last address the proxy did not add itself,
    // and HTTPS makes the cookie Secure.
    let app = TestApp::spawn_with(b, |c| c.http.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()]).await;
    app.user("fwd", PW).await;
    let res = forwarded(&app).send().await.unwrap();
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.ends_with("; Secure"), "{cookie}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["session"]["ip"], "203.0.113.9");
    let res = app.post("/v1/login", json!({"login": "fwd", "password": PW})).await;
    assert!(!res.headers()["set-cookie"].to_str().unwrap().contains("Secure"), "plain HTTP stays plain");
    // What proxies write besides plain addresses: `ip:port`, `[v6]:port`, `unknown`, and the
    // standard Forwarded header. An entry a spoofing client put before them never wins.
    for (header, value, want) in [
        ("x-forwarded-for", "6.6.6.6, 198.51.100.23:4711", "198.51.100.23"),
        ("x-forwarded-for", "6.6.6.6, [2001:db8::23]:4711", "2001:db8::23"),
        ("x-forwarded-for", "6.6.6.6, unknown", "127.0.0.1"),
        ("forwarded", "for=6.6.6.6, for=\"198.51.100.24:80\";proto=https", "198.51.100.24"),
    ] {
        let res = app
            .client
            .post(app.url("/v1/login"))
            .header(header, value)
            .json(&json!({"login": "fwd", "password": PW}))
            .send()
            .await
            .unwrap();
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["session"]["ip"], want, "{header}: {value}");
    }

    let app = TestApp::spawn_with(b, |c| c.http.cookie_secure = portcullis_http::CookieSecure::Always).await;
    let res = app.post("/v1/signup", json!({"email": "s@example.com", "password": PW})).await;
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("; Secure"));
    // Over HTTPS, for the whole site: the __Host- prefix, which no other site can set or
    // shadow; it is what the server reads back.
    assert!(cookie.starts_with("__Host-portcullis_session=pcs_"), "{cookie}");
    let pair = cookie.split(';').next().unwrap().to_owned();
    let res = app
        .client
        .get(app.url("/v1/session"))
        .header("cookie", format!("portcullis_session=pcs_forged; {pair}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "the __Host- cookie wins over a plain one");
    // Under a tenant's path the prefix is not allowed: the plain name, Secure.
    crate::support::tenant(&app, "acme", &[]).await;
    let res = app.post("/t/acme/v1/signup", json!({"email": "s@example.com", "password": PW})).await;
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("portcullis_session=pcs_") && cookie.contains("Path=/t/acme/; "), "{cookie}");
}
