//! `POST /v1/credentials/verify`: the credential check servers call with an API key.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::both;
use crate::support::{Backend, PW, TestApp, api_key, assert_error};

both!(
    valid_credentials_give_the_user_and_on_request_a_session,
    invalid_answers_are_identical_for_every_cause,
    unverified_and_disabled_are_told_only_after_a_right_password,
    the_key_must_hold_the_scope,
    bad_requests_get_clear_errors
);

async fn valid_credentials_give_the_user_and_on_request_a_session(b: Backend) {
    let app = TestApp::spawn(b).await;
    let key = api_key(&app, Some(portcullis_core::TenantId::DEFAULT), &["credentials:verify"]).await;
    app.signup(json!({"username": "ivy", "email": "ivy@example.com", "phone": "+44 20 7946 0000", "password": PW, "first_name": "Ivy"})).await;
    let (s, body) =
        app.send(Method::POST, "/v1/credentials/verify", &key, Some(json!({"login": "IVY", "password": PW}))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["valid"], true);
    assert!(body["user_id"].as_i64().unwrap() > 0);
    assert!(body.get("user").is_none() && body.get("session").is_none(), "only what was asked: {body}");
    for login in [json!({"email": "ivy@example.com"}), json!({"phone": "+442079460000"}), json!({"username": "ivy"})] {
        let mut req = login.clone();
        req["password"] = json!(PW);
        let (_, body) = app.send(Method::POST, "/v1/credentials/verify", &key, Some(req)).await;
        assert_eq!(body["valid"], true, "{login}");
    }
    let req = json!({"login": "ivy", "password": PW, "return_user": true, "open_session": true, "client_ip": "203.0.113.9", "user_agent": "Mobile App/2.0"});
    let (s, body) = app.send(Method::POST, "/v1/credentials/verify", &key, Some(req)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["user"]["first_name"], "Ivy");
    let token = body["session"]["token"].as_str().unwrap();
    assert_eq!(app.session_status(token).await, StatusCode::OK, "the session works for the user");
    let (_, sessions) = app.send(Method::GET, "/v1/sessions", token, None).await;
    let mine = &sessions["sessions"][0];
    assert_eq!((mine["ip"].as_str(), mine["user_agent"].as_str()), (Some("203.0.113.9"), Some("Mobile App/2.0")));
}

async fn invalid_answers_are_identical_for_every_cause(b: Backend) {
    let app = TestApp::spawn(b).await;
    let key = api_key(&app, Some(portcullis_core::TenantId::DEFAULT), &["credentials:verify"]).await;
    app.user("jon", PW).await;
    let mut answers = Vec::new();
    for req in [
        json!({"login": "jon", "password": "not the password"}),
        json!({"login": "nobody", "password": PW}),
        json!({"email": "nobody@example.com", "password": PW}),
        json!({"login": "jon", "password": "x".repeat(2000)}),
    ] {
        let res = app.call(Method::POST, "/v1/credentials/verify", Some(&key), Some(req)).await;
        assert_eq!(res.status(), StatusCode::OK);
        answers.push(res.text().await.unwrap());
    }
    assert!(answers.iter().all(|a| a == &answers[0]), "{answers:?}");
    assert_eq!(answers[0], r#"{"valid":false,"reason":"invalid_credentials"}"#);
}

async fn unverified_and_disabled_are_told_only_after_a_right_password(b: Backend) {
    let app = TestApp::spawn_with(b, |c| c.policy.require_verified_email = true).await;
    let key = api_key(&app, Some(portcullis_core::TenantId::DEFAULT), &["credentials:verify", "users:manage"]).await;
    app.signup(json!({"username": "kim", "email": "kim@example.com", "password": PW})).await;
    let (_, body) = app
        .send(
            Method::POST,
            "/v1/credentials/verify",
            &key,
            Some(json!({"login": "kim", "password": "wrong wrong wrong"})),
        )
        .await;
    assert_eq!(body, json!({"valid": false, "reason": "invalid_credentials"}));
    let (_, body) = app
        .send(
            Method::POST,
            "/v1/credentials/verify",
            &key,
            Some(json!({"login": "kim", "password": PW, "open_session": true})),
        )
        .await;
    assert_eq!(body, json!({"valid": false, "reason": "email_not_verified"}));

    let (_, list) = app.send(Method::GET, "/v1/admin/users?q=kim", &key, None).await;
    let path = format!("/v1/admin/users/{}", list["users"][0]["id"]);
    app.send(Method::PATCH, &path, &key, Some(json!({"email_verified": true, "status": "active"}))).await;
    let (_, body) =
        app.send(Method::POST, "/v1/credentials/verify", &key, Some(json!({"login": "kim", "password": PW}))).await;
    assert_eq!(body["valid"], true);
    app.send(Method::POST, &format!("{path}/disable"), &key, None).await;
    let (_, body) =
        app.send(Method::POST, "/v1/credentials/verify", &key, Some(json!({"login": "kim", "password": PW}))).await;
    assert_eq!(body, json!({"valid": false, "reason": "account_disabled"}));
    let (_, body) = app
        .send(
            Method::POST,
            "/v1/credentials/verify",
            &key,
            Some(json!({"login": "kim", "password": "wrong wrong wrong"})),
        )
        .await;
    assert_eq!(body, json!({"valid": false, "reason": "invalid_credentials"}), "nothing told without the password");
}

async fn the_key_must_hold_the_scope(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.user("lee", PW).await;
    let req = json!({"login": "lee", "password": PW});
    let reader = api_key(&app, Some(portcullis_core::TenantId::DEFAULT), &["users:read"]).await;
    let res = app.call(Method::POST, "/v1/credentials/verify", Some(&reader), Some(req.clone())).await;
    assert_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    let admin = api_key(&app, Some(portcullis_core::TenantId::DEFAULT), &["tenant:admin"]).await;
    assert_eq!(app.send(Method::POST, "/v1/credentials/verify", &admin, Some(req.clone())).await.1["valid"], true);
    let res = app.call(Method::POST, "/v1/credentials/verify", None, Some(req.clone())).await;
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let session = app.token("lee", PW).await;
    let res = app.call(Method::POST, "/v1/credentials/verify", Some(&session), Some(req)).await;
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

async fn bad_requests_get_clear_errors(b: Backend) {
    let app = TestApp::spawn(b).await;
    let key = api_key(&app, Some(portcullis_core::TenantId::DEFAULT), &["credentials:verify"]).await;
    for (req, field) in [
        (json!({"password": PW}), "login"),
        (json!({"login": "a"}), "password"),
        (json!({"login": "a", "username": "a", "password": PW}), "login"),
        (json!({"login": "a", "password": PW, "client_ip": "not-an-ip"}), "client_ip"),
        (json!({"login": "a", "password": PW, "admin": true}), "admin"),
        (json!({"login": "a", "password": PW, "open_session": "yes"}), "open_session"),
    ] {
        let res = app.call(Method::POST, "/v1/credentials/verify", Some(&key), Some(req.clone())).await;
        let body = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert!(body["error"]["fields"][field].is_string(), "{req}: {body}");
    }
    let res = app
        .client
        .post(app.url("/v1/credentials/verify"))
        .bearer_auth(&key)
        .body("login=a&password=b")
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
}
