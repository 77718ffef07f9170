//! `POST /v1/signup`.

use portcullis_core::TenantId;
use portcullis_core::model::AttributeKind;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both;
use crate::support::{Backend, PW, TestApp, assert_error, define_attribute, op};
both!(
    lookalike_usernames_are_checked_as_they_compare,
    questions_about_taken_identifiers_are_limited,
    signup_creates_the_account_and_logs_in,
    signup_reports_every_invalid_field_and_writes_nothing,
    signup_refuses_fields_users_may_not_set,
    signup_refuses_taken_identifiers_case_insensitively,
    concurrent_signups_with_one_email_let_exactly_one_through,
    weak_and_mismatched_passwords_are_refused,
    every_profile_field_and_editable_attributes_are_kept,
    tenant_policy_decides_required_identifiers_and_open_signup,
    phone_only_accounts_work,
    a_tenant_requiring_verified_email_opens_no_session_before_verification,
);

async fn signup_creates_the_account_and_logs_in(b: Backend) {
    let app = TestApp::spawn(b).await;
    let res = app
        .post("/v1/signup", json!({"username": "ada", "email": "Ada@Example.com", "password": PW, "first_name": "Ada"}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["location"], "/v1/me");
    assert_eq!(res.headers()["cache-control"], "no-store");
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    let user = &body["user"];
    assert_eq!(user["username"], "ada");
    assert_eq!(user["email"], "Ada@example.com");
    assert_eq!(user["email_verified"], false);
    assert_eq!(user["status"], "active");
    assert_eq!(user["first_name"], "Ada");
    assert_eq!(user["roles"], json!([]));
    assert!(user["id"].as_i64().unwrap() > 0);
    assert!(user.get("password").is_none() && user.get("password_hash").is_none());
    let token = body["session"]["token"].as_str().unwrap();
    assert!(token.starts_with("pcs_") && token.len() == 47);
    assert_eq!(user["last_login_at"], body["session"]["created_at"]);
    assert_eq!(body["session"]["current"], true);
    assert_eq!(body["session"]["user_agent"], "portcullis-tests/1.0");
    assert_eq!(body["session"]["ip"], "127.0.0.1");

    assert!(cookie.starts_with(&format!("portcullis_session={token};")), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"));
    assert!(!cookie.contains("Secure"), "plain HTTP, no trusted proxy: not Secure");

    let me: Value = app.get_auth("/v1/me", token).await.json().await.unwrap();
    assert_eq!(me["user"]["id"], user["id"]);
    // The account logs in with its password, by username and by e-mail.
    app.token("ada", PW).await;
    app.token("ADA@example.COM", PW).await;
}

async fn signup_reports_every_invalid_field_and_writes_nothing(b: Backend) {
    let app = TestApp::spawn(b).await;
    let res = app
        .post(
            "/v1/signup",
            json!({"username": "x", "email": "not-an-email", "password": "short", "website": "ftp://x", "shoe_size": 44, "birth_date": "31/12/1999"}),
        )
        .await;
    let body = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let f = &body["error"]["fields"];
    assert_eq!(f["username"], "must be at least 2 characters");
    assert_eq!(f["email"], "must be a valid e-mail address");
    assert_eq!(f["password"], "must be at least 8 characters");
    assert_eq!(f["website"], "must be an http or https URL");
    assert_eq!(f["shoe_size"], "unknown field");
    assert_eq!(f["birth_date"], "must be a date in the form YYYY-MM-DD");
    // Missing password and missing e-mail (required by default).
    let res = app.post("/v1/signup", json!({"username": "bob"})).await;
    let body = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(body["error"]["fields"]["password"], "is required");
    assert_eq!(body["error"]["fields"]["email"], "is required");
    // Nothing was written: the same identifiers are still free.
    app.signup(json!({"username": "xy", "email": "bob@example.com", "password": PW})).await;
}

async fn signup_refuses_fields_users_may_not_set(b: Backend) {
    let app = TestApp::spawn(b).await;
    let res = app.post("/v1/signup", json!({"email": "eve@example.com", "password": PW, "status": "active", "roles": ["admin"], "email_verified": true})).await;
    let body = assert_error(res, StatusCode::FORBIDDEN, "field_not_editable").await;
    let f = &body["error"]["fields"];
    assert!(f.get("status").is_some() && f.get("roles").is_some() && f.get("email_verified").is_some(), "{body}");
    assert_eq!(app.login("eve@example.com", PW).await.0, StatusCode::UNAUTHORIZED, "no account was created");
    // Password fields must be strings.
    let res = app.post("/v1/signup", json!({"email": "eve@example.com", "password": 12345678})).await;
    let body = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(body["error"]["fields"]["password"], "has the wrong type");
}

async fn signup_refuses_taken_identifiers_case_insensitively(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.signup(json!({"username": "Grace", "email": "grace@example.com", "password": PW})).await;
    let res = app.post("/v1/signup", json!({"username": "other", "email": "GRACE@example.com", "password": PW})).await;
    let body = assert_error(res, StatusCode::CONFLICT, "conflict").await;
    assert_eq!(body["error"]["fields"]["email"], "is already taken");
    let res = app.post("/v1/signup", json!({"username": "grace", "email": "g2@example.com", "password": PW})).await;
    let body = assert_error(res, StatusCode::CONFLICT, "conflict").await;
    assert_eq!(body["error"]["fields"]["username"], "is already taken");
}

async fn concurrent_signups_with_one_email_let_exactly_one_through(b: Backend) {
    let app = TestApp::spawn(b).await;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let (client, url) = (app.client.clone(), app.url("/v1/signup"));
        tasks.push(tokio::spawn(async move {
            let body = json!({"username": format!("racer{i}"), "email": "race@example.com", "password": PW});
            client.post(url).json(&body).send().await.unwrap().status()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CREATED).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT), "{statuses:?}");
    // The one account that exists logs in; no half-written loser is left behind.
    app.token("race@example.com", PW).await;
    let mut found = 0;
    for i in 0..12 {
        if app.login(&format!("racer{i}"), PW).await.0 == StatusCode::OK {
            found += 1;
        }
    }
    assert_eq!(found, 1);
}

async fn weak_and_mismatched_passwords_are_refused(b: Backend) {
    let app = TestApp::spawn(b).await;
    for weak in ["password", "password123", "qwertyuiop", "frankfrank1"] {
        let res =
            app.post("/v1/signup", json!({"username": "frank", "email": "frank@example.com", "password": weak})).await;
        let body = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        let msg = body["error"]["fields"]["password"].as_str().unwrap();
        assert!(msg.contains("too weak or too common"), "{weak}: {msg}");
    }
    let res = app
        .post(
            "/v1/signup",
            json!({"email": "frank@example.com", "password": PW, "password_confirmation": "something else"}),
        )
        .await;
    let body = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(body["error"]["fields"]["password_confirmation"], "does not match the password");
    let long = "x".repeat(1024);
    let res = app.post("/v1/signup", json!({"email": "frank@example.com", "password": long})).await;
    let body = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(body["error"]["fields"]["password"], "must be at most 1023 bytes");
    app.signup(json!({"email": "frank@example.com", "password": PW, "password_confirmation": PW})).await;
}

async fn every_profile_field_and_editable_attributes_are_kept(b: Backend) {
    let app = TestApp::spawn(b).await;
    define_attribute(&app, TenantId::DEFAULT, "team", AttributeKind::String, false, true).await;
    define_attribute(&app, TenantId::DEFAULT, "age", AttributeKind::Integer, false, true).await;
    define_attribute(&app, TenantId::DEFAULT, "plan", AttributeKind::String, false, false).await;
    let mut body = serde_json::Map::new();
    for f in portcullis_core::profile::TextField::ALL {
        let v = match f.kind() {
            portcullis_core::profile::TextKind::Url => format!("https://example.com/{}", f.name()),
            portcullis_core::profile::TextKind::Email => format!("{}@example.com", f.name().replace('_', "-")),
            portcullis_core::profile::TextKind::Language => "pt-BR".to_owned(),
            portcullis_core::profile::TextKind::Phone => "+1 416 555 0100".to_owned(),
            _ => format!("ü<b>&</b> {}", f.name()).chars().take(f.max_chars()).collect(),
        };
        body.insert(f.name().into(), json!(v));
    }
    body.insert("birth_date".into(), json!("1988-02-03"));
    body.insert("newsletter".into(), json!(true));
    body.insert("meta".into(), json!({"lang": "en", "rules": "1"}));
    body.insert("attributes".into(), json!({"team": "platform", "age": "42"}));
    body.insert("email".into(), json!("full@example.com"));
    body.insert("phone".into(), json!("+44 20 7946 0001"));
    body.insert("password".into(), json!(PW));
    let out = app.signup(Value::Object(body.clone())).await;
    let user = &out["user"];
    for f in portcullis_core::profile::TextField::ALL {
        assert_eq!(user[f.name()], body[f.name()], "{}", f.name());
    }
    assert_eq!(user["birth_date"], "1988-02-03");
    assert_eq!(user["newsletter"], true);
    assert_eq!(user["meta"], json!({"lang": "en", "rules": "1"}));
    assert_eq!(user["attributes"], json!({"age": 42, "team": "platform"}));
    assert_eq!(user["phone"], "+44 20 7946 0001");
    // Read back, the same.
    let token = out["session"]["token"].as_str().unwrap();
    let me: Value = app.get_auth("/v1/me", token).await.json().await.unwrap();
    assert_eq!(&me["user"], user);

    let res =
        app.post("/v1/signup", json!({"email": "p@example.com", "password": PW, "attributes": {"plan": "gold"}})).await;
    let body = assert_error(res, StatusCode::FORBIDDEN, "field_not_editable").await;
    assert!(body["error"]["fields"].get("attributes.plan").is_some(), "{body}");
    let res = app
        .post("/v1/signup", json!({"email": "p@example.com", "password": PW, "attributes": {"age": "old", "nope": 1}}))
        .await;
    let body = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(body["error"]["fields"]["attributes.age"], "must be a whole number");
    assert_eq!(body["error"]["fields"]["attributes.nope"], "unknown attribute");
    define_attribute(&app, TenantId::DEFAULT, "terms", AttributeKind::Boolean, true, true).await;
    let res = app.post("/v1/signup", json!({"email": "p@example.com", "password": PW})).await;
    let body = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(body["error"]["fields"]["attributes.terms"], "is required");
}

async fn tenant_policy_decides_required_identifiers_and_open_signup(b: Backend) {
    let app = TestApp::spawn_with(b, |c| {
        c.policy.require_username = true;
        c.policy.require_email = false;
        c.policy.password_min_length = 12;
    })
    .await;
    let res = app.post("/v1/signup", json!({"email": "x@example.com", "password": "Tr0ub4dor&3x"})).await;
    let body = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(body["error"]["fields"]["username"], "is required");
    let res = app.post("/v1/signup", json!({"username": "nomail", "password": "Tr0ub4dor&3"})).await;
    let body = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(body["error"]["fields"]["password"], "must be at least 12 characters");
    app.signup(json!({"username": "nomail", "password": PW})).await;

    let closed = TestApp::spawn_with(b, |c| c.policy.signup_open = false).await;
    let res = closed.post("/v1/signup", json!({"email": "x@example.com", "password": PW})).await;
    assert_error(res, StatusCode::FORBIDDEN, "signup_closed").await;
}

async fn phone_only_accounts_work(b: Backend) {
    let app = TestApp::spawn_with(b, |c| c.policy.require_email = false).await;
    app.signup(json!({"phone": "+1 (416) 555-0142", "password": PW})).await;
    app.token("+14165550142", PW).await;
    app.token("+1 416 555 0142", PW).await;
    let res = app.post("/v1/login", json!({"phone": "+1-416-555-0142", "password": PW})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app.post("/v1/signup", json!({"password": PW})).await;
    let body = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert!(body["error"]["fields"]["username"].as_str().unwrap().contains("required"));
}

async fn a_tenant_requiring_verified_email_opens_no_session_before_verification(b: Backend) {
    let app = TestApp::spawn_with(b, |c| c.policy.require_verified_email = true).await;
    let res = app.post("/v1/signup", json!({"username": "unver", "email": "unver@example.com", "password": PW})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(res.headers().get("set-cookie").is_none());
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["status"], "pending");
    assert_eq!(body["session"], Value::Null);
    // The right password is told why; a wrong one learns nothing.
    let (status, body) = app.login("unver", PW).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("email_not_verified")));
    let (status, body) = app.login("unver", "not the password").await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_credentials")));
    // An account whose address an operator vouched for logs in.
    let created = app
        .core
        .create_user(
            &op(),
            portcullis_core::TenantId::DEFAULT,
            portcullis_core::AccountInput::from_json(
                json!({"email": "vouched@example.com", "email_verified": true}).as_object().cloned().unwrap(),
            ),
            Some(portcullis_core::Password::new(PW)),
        )
        .await
        .unwrap();
    assert!(created.email_verified_at.is_some());
    app.token("vouched@example.com", PW).await;
}

/// Sign-up and a change of one's own identifiers tell whether an identifier is taken (409):
/// both are limited, per client address and per account, so addresses cannot be probed by
/// the hundred.
async fn questions_about_taken_identifiers_are_limited(b: Backend) {
    let app = TestApp::spawn_with(b, |c| c.rate_limits.identifier_checks_per_minute = 5).await;
    app.signup(json!({"email": "taken@example.com", "password": PW})).await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let res = app.post("/v1/signup", json!({"email": format!("probe{i}@example.com"), "password": PW})).await;
        statuses.push(res.status());
    }
    assert!(statuses[..4].iter().all(|s| *s == StatusCode::CREATED), "{statuses:?}");
    let refused = app.post("/v1/signup", json!({"email": "taken@example.com", "password": PW})).await;
    assert!(refused.headers().get("retry-after").is_some());
    assert_error(refused, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;

    // A signed-in user changing their username: limited per account and per the address the
    // session came from (its sign-up spent one of that address's five).
    let app = TestApp::spawn_with(b, |c| c.rate_limits.identifier_checks_per_minute = 5).await;
    let token = app.user("prober", PW).await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let body = json!({"username": format!("probe{i}")});
        let (s, _) = app.send(reqwest::Method::PATCH, "/v1/me", &token, Some(body)).await;
        statuses.push(s);
    }
    assert!(statuses.contains(&StatusCode::OK), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    // Other profile fields are not identifiers and are not limited.
    let (s, _) = app.send(reqwest::Method::PATCH, "/v1/me", &token, Some(json!({"first_name": "Pat"}))).await;
    assert_eq!(s, StatusCode::OK);
}

/// A username of fullwidth digits would win a log-in typed as someone's phone number, and
/// `①②③` reads as digits: every rule is checked on the form look-ups compare.
async fn lookalike_usernames_are_checked_as_they_compare(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.signup(json!({"email": "victim@example.com", "phone": "416-555-0100", "password": PW})).await;
    for name in ["４１６５５５０１００", "①②③"] {
        let res =
            app.post("/v1/signup", json!({"username": name, "email": "mallory@example.com", "password": PW})).await;
        let e = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(e["error"]["fields"]["username"], "must contain at least one letter", "{name}");
    }
    let (s, _) = app.login("4165550100", PW).await;
    assert_eq!(s, StatusCode::OK, "the phone number still belongs to its owner");
}
