//! `GET/PATCH/DELETE /v1/me` and `POST /v1/me/password`.

use portcullis_core::TenantId;
use portcullis_core::model::AttributeKind;
use portcullis_core::parse::LoginKey;
use portcullis_core::store::UserUpdate;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both;
use crate::support::{Backend, PW, PW2, TestApp, assert_error, define_attribute, op};
both!(
    users_edit_their_own_fields,
    users_cannot_edit_what_is_not_theirs_to_edit,
    a_refused_update_changes_nothing,
    changing_the_password_ends_every_other_session,
    deleting_the_account_needs_the_password_and_ends_everything,
    a_policy_change_does_not_lock_older_accounts_out_of_edits,
);

async fn patch(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.call(Method::PATCH, "/v1/me", Some(token), Some(body)).await
}

async fn users_edit_their_own_fields(b: Backend) {
    let app = TestApp::spawn(b).await;
    define_attribute(&app, TenantId::DEFAULT, "team", AttributeKind::String, false, true).await;
    let token = app.user("pat", PW).await;
    // Pretend the address was verified, to see a change reset it.
    let id = app
        .core
        .stores()
        .users
        .user_with_secret(TenantId::DEFAULT, &LoginKey::username("pat"))
        .await
        .unwrap()
        .unwrap()
        .user
        .id;
    let verified = UserUpdate { email_verified_at: Some(Some(app.core.now())), ..Default::default() };
    app.core.stores().users.update_user(TenantId::DEFAULT, id, &verified, app.core.now()).await.unwrap();

    let res = patch(
        &app,
        &token,
        json!({"first_name": "Pat", "city": "Lyon", "newsletter": true, "attributes": {"team": "blue"}}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["first_name"], "Pat");
    assert_eq!(body["user"]["city"], "Lyon");
    assert_eq!(body["user"]["newsletter"], true);
    assert_eq!(body["user"]["attributes"]["team"], "blue");
    assert_eq!(body["user"]["email_verified"], true, "untouched e-mail stays verified");

    let res = patch(
        &app,
        &token,
        json!({"city": null, "attributes": {"team": null}, "email": "pat.new@example.com", "username": "Patricia", "current_password": PW}),
    )
    .await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["city"], Value::Null);
    assert_eq!(body["user"]["attributes"], json!({}));
    assert_eq!(
        body["user"]["email"], "pat@example.com",
        "the old address stays the login until the new one is verified"
    );
    assert_eq!(body["user"]["pending_email"], "pat.new@example.com");
    assert_eq!(body["user"]["email_verified"], true);
    assert_eq!(body["user"]["username"], "Patricia");
    assert_eq!(body["user"]["first_name"], "Pat");
    app.token("patricia", PW).await;
    app.token("pat@example.com", PW).await;
    assert_eq!(app.login("pat.new@example.com", PW).await.0, StatusCode::UNAUTHORIZED);

    let unchanged: Value = patch(&app, &token, json!({})).await.json().await.unwrap();
    assert_eq!(unchanged["user"]["username"], "Patricia");
    let me: Value = app.get_auth("/v1/me", &token).await.json().await.unwrap();
    assert_eq!(me["user"], unchanged["user"]);
}

async fn users_cannot_edit_what_is_not_theirs_to_edit(b: Backend) {
    let app = TestApp::spawn(b).await;
    define_attribute(&app, TenantId::DEFAULT, "plan", AttributeKind::String, false, false).await;
    let token = app.user("rex", PW).await;
    let res = patch(&app, &token, json!({"status": "active", "roles": ["admin"], "id": 1, "city": "Rome"})).await;
    let body = assert_error(res, StatusCode::FORBIDDEN, "field_not_editable").await;
    let fields = body["error"]["fields"].as_object().unwrap();
    assert_eq!(fields.keys().collect::<Vec<_>>(), vec!["id", "roles", "status"]);
    let res = patch(&app, &token, json!({"password": PW2})).await;
    let body = assert_error(res, StatusCode::FORBIDDEN, "field_not_editable").await;
    assert_eq!(body["error"]["fields"]["password"], "use POST /v1/me/password");
    let res = patch(&app, &token, json!({"attributes": {"plan": "gold"}})).await;
    assert_error(res, StatusCode::FORBIDDEN, "field_not_editable").await;
    let res = patch(&app, &token, json!({"favourite": "blue"})).await;
    let body = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(body["error"]["fields"]["favourite"], "unknown field");
    // The last way to log in cannot be removed; a required e-mail cannot be cleared.
    let res = patch(&app, &token, json!({"email": null})).await;
    let body = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(body["error"]["fields"]["email"], "is required");
    let me: Value = app.get_auth("/v1/me", &token).await.json().await.unwrap();
    assert_eq!(me["user"]["city"], Value::Null, "a refused request changes nothing, not even its valid fields");
}

async fn a_refused_update_changes_nothing(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.user("taken", PW).await;
    let token = app.user("tom", PW).await;
    let res = patch(&app, &token, json!({"username": "TAKEN", "city": "Oslo"})).await;
    let body = assert_error(res, StatusCode::CONFLICT, "conflict").await;
    assert_eq!(body["error"]["fields"]["username"], "is already taken");
    let res = patch(&app, &token, json!({"email": "taken@example.com"})).await;
    let body = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(body["error"]["fields"]["current_password"], "is required", "a new address needs the password");
    let res = patch(&app, &token, json!({"email": "taken@example.com", "current_password": "not it"})).await;
    assert_error(res, StatusCode::FORBIDDEN, "password_incorrect").await;
    let res = patch(&app, &token, json!({"email": "taken@example.com", "current_password": PW})).await;
    assert_error(res, StatusCode::CONFLICT, "conflict").await;
    let me: Value = app.get_auth("/v1/me", &token).await.json().await.unwrap();
    assert_eq!(me["user"]["username"], "tom");
    assert_eq!(me["user"]["city"], Value::Null);
    assert_eq!(me["user"]["email"], "tom@example.com");
}

async fn changing_the_password_ends_every_other_session(b: Backend) {
    let app = TestApp::spawn(b).await;
    let here = app.user("una", PW).await;
    let elsewhere = app.token("una", PW).await;
    let pw = |cur: &str, new: &str| json!({"current_password": cur, "new_password": new});
    let res = app.call(Method::POST, "/v1/me/password", Some(&here), Some(pw("wrong password!", PW2))).await;
    assert_error(res, StatusCode::FORBIDDEN, "password_incorrect").await;
    let res = app.call(Method::POST, "/v1/me/password", Some(&here), Some(pw(PW, "password1"))).await;
    let body = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert!(body["error"]["fields"]["new_password"].as_str().unwrap().contains("too weak"));
    let res = app
        .call(
            Method::POST,
            "/v1/me/password",
            Some(&here),
            Some(json!({"current_password": PW, "new_password": PW2, "new_password_confirmation": "nope"})),
        )
        .await;
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(app.session_status(&elsewhere).await, StatusCode::OK, "refused changes end nothing");

    let res = app.call(Method::POST, "/v1/me/password", Some(&here), Some(pw(PW, PW2))).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.session_status(&here).await, StatusCode::OK, "the session that changed it stays");
    assert_eq!(app.session_status(&elsewhere).await, StatusCode::UNAUTHORIZED, "every other session ends");
    assert_eq!(app.login("una", PW).await.0, StatusCode::UNAUTHORIZED);
    app.token("una", PW2).await;
    let me: Value = app.get_auth("/v1/me", &here).await.json().await.unwrap();
    assert!(me["user"]["password_changed_at"].as_str().unwrap() >= me["user"]["created_at"].as_str().unwrap());
}

async fn deleting_the_account_needs_the_password_and_ends_everything(b: Backend) {
    let app = TestApp::spawn(b).await;
    let here = app.user("vic", PW).await;
    let elsewhere = app.token("vic", PW).await;
    let res = app.call(Method::DELETE, "/v1/me", Some(&here), Some(json!({"password": "not my password"}))).await;
    assert_error(res, StatusCode::FORBIDDEN, "password_incorrect").await;
    let res = app.call(Method::DELETE, "/v1/me", Some(&here), None).await;
    let body = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(body["error"]["fields"]["password"], "is required");
    assert_eq!(app.session_status(&here).await, StatusCode::OK);

    let res = app.call(Method::DELETE, "/v1/me", Some(&here), Some(json!({"password": PW}))).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert!(res.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(app.session_status(&here).await, StatusCode::UNAUTHORIZED);
    assert_eq!(app.session_status(&elsewhere).await, StatusCode::UNAUTHORIZED);
    assert_eq!(app.login("vic", PW).await.0, StatusCode::UNAUTHORIZED);
    // The identifiers are free again.
    app.user("vic", PW).await;
}

async fn a_policy_change_does_not_lock_older_accounts_out_of_edits(b: Backend) {
    // An account made without a username, before the policy asked for one.
    let app = TestApp::spawn_with(b, |c| c.policy.require_username = true).await;
    let created = app
        .core
        .create_user(
            &op(),
            TenantId::DEFAULT,
            portcullis_core::AccountInput::from_json(
                json!({"email": "old@example.com", "username": "oldie"}).as_object().cloned().unwrap(),
            ),
            Some(portcullis_core::Password::new(PW)),
        )
        .await
        .unwrap();
    let clear = UserUpdate { username: Some(None), ..Default::default() };
    app.core.stores().users.update_user(TenantId::DEFAULT, created.id, &clear, app.core.now()).await.unwrap();
    let token = app.token("old@example.com", PW).await;
    let res = patch(&app, &token, json!({"city": "Bergen"})).await;
    assert_eq!(res.status(), StatusCode::OK, "unrelated edits still work");
    // Removing an identifier the policy requires is refused.
    app.call(Method::PATCH, "/v1/me", Some(&token), Some(json!({"username": "back"}))).await;
    let res = patch(&app, &token, json!({"username": null})).await;
    let body = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(body["error"]["fields"]["username"], "is required");
}
