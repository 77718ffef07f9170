//! Malformed and hostile requests against every endpoint: each gets a clear error in the API's
//! JSON shape, never a panic, a 500 or a bare text body, and nothing is half-written.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both;
use crate::support::{Backend, PW, TestApp, assert_error};

both!(
    bodies_of_the_wrong_type_size_or_syntax_are_refused_on_every_json_endpoint,
    every_authenticated_endpoint_refuses_anonymous_and_bogus_callers,
    unknown_routes_and_methods_answer_in_json,
    hostile_field_values_are_refused_not_crashed_on,
);

/// (method, path, whether a session is needed) of every endpoint taking a JSON body.
const JSON_ENDPOINTS: &[(&str, &str, bool)] = &[
    ("POST", "/v1/signup", false),
    ("POST", "/v1/login", false),
    ("PATCH", "/v1/me", true),
    ("DELETE", "/v1/me", true),
    ("POST", "/v1/me/password", true),
];

/// Every endpoint that needs a session.
const AUTH_ENDPOINTS: &[(&str, &str)] = &[
    ("POST", "/v1/logout"),
    ("POST", "/v1/logout/all"),
    ("GET", "/v1/session"),
    ("GET", "/v1/sessions"),
    ("DELETE", "/v1/sessions/1"),
    ("GET", "/v1/me"),
    ("PATCH", "/v1/me"),
    ("DELETE", "/v1/me"),
    ("POST", "/v1/me/password"),
];

async fn raw(
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
    ct: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut req = app.client.request(Method::from_bytes(method.as_bytes()).unwrap(), app.url(path)).body(body);
    if let Some(ct) = ct {
        req = req.header("content-type", ct);
    }
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

async fn bodies_of_the_wrong_type_size_or_syntax_are_refused_on_every_json_endpoint(b: Backend) {
    let app = TestApp::spawn(b).await;
    let token = app.user("victim", PW).await;
    let deep = "[".repeat(5000);
    let malformed: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"{".to_vec(),
        b"nul".to_vec(),
        b"[]".to_vec(),
        b"\"just a string\"".to_vec(),
        b"42".to_vec(),
        b"{\"a\": 1}{\"b\": 2}".to_vec(),
        b"{\"login\": \"\xff\xfe\"}".to_vec(),
        b"{\"login\": 1e999}".to_vec(),
        deep.into_bytes(),
    ];
    for (method, path, needs_auth) in JSON_ENDPOINTS {
        let tok = needs_auth.then_some(token.as_str());
        for ct in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
        ] {
            let res = raw(&app, method, path, tok, ct, b"{}".to_vec()).await;
            assert_error(res, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
        }
        for body in &malformed {
            let res = raw(&app, method, path, tok, Some("application/json"), body.clone()).await;
            let shown = String::from_utf8_lossy(&body[..body.len().min(40)]).into_owned();
            let got = res.status();
            let body = assert_error(
                res,
                got,
                if got == StatusCode::BAD_REQUEST { "malformed_request" } else { "validation_failed" },
            )
            .await;
            assert!(
                got == StatusCode::BAD_REQUEST || got == StatusCode::UNPROCESSABLE_ENTITY,
                "{method} {path} {shown:?}: {got} {body}"
            );
        }
        let huge = serde_json::to_vec(&json!({"bio": "x".repeat(70 * 1024)})).unwrap();
        let res = raw(&app, method, path, tok, Some("application/json"), huge).await;
        assert_error(res, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
        let res = raw(&app, method, path, tok, Some("application/json; charset=utf-8"), b"{\"x\": 1}".to_vec()).await;
        assert_ne!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "a charset parameter is fine");
    }
    // The account survived all of it.
    assert_eq!(app.session_status(&token).await, StatusCode::OK);
    app.token("victim", PW).await;
}

async fn every_authenticated_endpoint_refuses_anonymous_and_bogus_callers(b: Backend) {
    let app = TestApp::spawn(b).await;
    let long = format!("pcs_{}", "A".repeat(8000));
    for (method, path) in AUTH_ENDPOINTS {
        for token in [None, Some("pcs_forged"), Some(long.as_str()), Some("")] {
            let res = raw(&app, method, path, token, Some("application/json"), b"{}".to_vec()).await;
            assert_error(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
        }
        let res = app
            .client
            .request(Method::from_bytes(method.as_bytes()).unwrap(), app.url(path))
            .header("authorization", reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap())
            .send()
            .await
            .unwrap();
        assert_error(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
}

async fn unknown_routes_and_methods_answer_in_json(b: Backend) {
    let app = TestApp::spawn(b).await;
    for path in ["/", "/v1", "/v2/login", "/v1/me/../../etc/passwd", "/v1/login/", "/%00"] {
        let res = app.call(Method::GET, path, None, None).await;
        assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
    }
    for (method, path) in [("PUT", "/v1/login"), ("GET", "/v1/signup"), ("POST", "/healthz"), ("DELETE", "/v1/session")]
    {
        let res = raw(&app, method, path, None, None, vec![]).await;
        assert_error(res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    }
}

async fn hostile_field_values_are_refused_not_crashed_on(b: Backend) {
    let app = TestApp::spawn(b).await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({"username": "nul\u{0}byte", "email": "a@example.com", "password": PW}), "username"),
        (json!({"username": "rtl\u{202e}evil", "email": "a@example.com", "password": PW}), "username"),
        (json!({"username": "a".repeat(10_000), "email": "a@example.com", "password": PW}), "username"),
        (json!({"email": format!("{}@example.com", "a".repeat(300)), "password": PW}), "email"),
        (json!({"email": "a@example.com\r\nBcc: victim@example.com", "password": PW}), "email"),
        (json!({"email": "a@example.com", "password": PW, "first_name": "bell\u{7}"}), "first_name"),
        (json!({"email": "a@example.com", "password": PW, "website": "javascript:alert(1)"}), "website"),
        (json!({"email": "a@example.com", "password": PW, "meta": "not an object"}), "meta"),
        (json!({"email": "a@example.com", "password": PW, "newsletter": {"$gt": ""}}), "newsletter"),
        (json!({"email": "a@example.com", "password": PW, "phone": "'; DROP TABLE users; --"}), "phone"),
        (json!({"email": "a@example.com", "password": PW, "attributes": ["x"]}), "attributes"),
        (json!({"email": ["a@example.com"], "password": PW}), "email"),
        (json!({"email": "a@example.com", "password": PW, "birth_date": "1799-01-01"}), "birth_date"),
    ];
    for (body, field) in cases {
        let res = app.post("/v1/signup", body.clone()).await;
        let out = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert!(out["error"]["fields"].get(field).is_some(), "{field}: {out}");
    }
    // None of them created anything, and SQL in a value is just a value.
    app.signup(
        json!({"username": "robert", "email": "a@example.com", "password": PW, "last_name": "'); DROP TABLE users;--"}),
    )
    .await;
    let (status, body) = app.login("robert", PW).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["user"]["last_name"], "'); DROP TABLE users;--");
    let res = app.post("/v1/login", json!({"login": "robert' OR '1'='1", "password": "x' OR '1'='1"})).await;
    assert_error(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    // NUL characters, which PostgreSQL cannot store, are refused like any other bad input.
    for body in [
        json!({"login": "rob\u{0}ert", "password": PW}),
        json!({"email": "rob\u{0}@example.com", "password": PW}),
        json!({"username": "rob\u{0}ert", "password": PW}),
        json!({"phone": "555\u{0}0100", "password": PW}),
    ] {
        let res = app.post("/v1/login", body).await;
        assert_error(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    let res =
        app.post("/v1/signup", json!({"email": "nul@example.com", "password": PW, "meta": {"k": "a\u{0}b"}})).await;
    let out = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(out["error"]["fields"]["meta"], "must not contain NUL characters");
    let res =
        app.post("/v1/signup", json!({"email": "nul@example.com", "password": PW, "first_name": "a\u{0}b"})).await;
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let res =
        app.post("/v1/signup", json!({"username": "416-555-0199", "email": "nul@example.com", "password": PW})).await;
    let out = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(out["error"]["fields"]["username"], "must contain at least one letter");
}
