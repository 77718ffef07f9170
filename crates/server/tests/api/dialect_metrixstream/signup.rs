//! Sign-up: every field of the document mapped to the account, every refusal named by its
//! parameter with nothing written, and accounts crossing between the dialect and the native API.

use portcullis_core::UserId;
use portcullis_core::model::{AttributeKind, UserStatus};
use portcullis_core::store::UserUpdate;

use super::*;
use crate::both;
use crate::support::{PW2, define_attribute};

both!(
    signup_takes_every_field_of_the_document,
    signup_refusals_name_the_parameters_and_write_nothing,
    accounts_that_may_not_log_in_are_told_so_after_the_password,
    accounts_cross_between_the_dialect_and_the_native_api,
);

async fn signup_takes_every_field_of_the_document(b: Backend) {
    let app = spawn(b).await;
    define_attribute(&app, TenantId::DEFAULT, "team", AttributeKind::String, false, true).await;
    define_attribute(&app, TenantId::DEFAULT, "shoe_size", AttributeKind::Integer, false, true).await;
    let every = [
        ("action", "signup"),
        ("username", "grace"),
        ("password", PW),
        ("email", "grace@example.com"),
        ("password2", PW),
        ("phone", "+1 555 0100 200"),
        ("fax", "+1 555 0100 201"),
        ("dob", "12/09/1906"),
        ("sex", "F"),
        ("description", "Wrote the first compiler.\nAdmiral."),
        ("display_name", "Amazing Grace"),
        ("display_status", "debugging"),
        ("billing_first_name", "Grace"),
        ("billing_last_name", "Hopper"),
        ("billing_company", "US Navy"),
        ("billing_address", "1 Navy Way"),
        ("billing_address2", "Suite 2"),
        ("billing_city", "Arlington"),
        ("billing_state", "VA"),
        ("billing_zip", "22202"),
        ("billing_country", "US"),
        ("billing_phone", "+1 555 0100 202"),
        ("billing_fax", "+1 555 0100 203"),
        ("billing_email", "billing@example.com"),
        ("attr:user:team", "navy"),
        ("attr:user:shoe_size", "7"),
        ("submit", "Sign up"),
    ];
    let r = post(&app, &every).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let id = user_id(&app, TenantId::DEFAULT, "grace").await;
    let v = r.json();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["status", "item", "session"], "{v}");
    assert_eq!(v["status"], "ok");
    assert_eq!(v["item"], json!({"user": {"id": id, "username": "grace", "email": "grace@example.com"}}));
    let token = v["session"]["token"].as_str().unwrap();
    assert!(r.cookie().unwrap().starts_with(&format!("portcullis_session={token};")), "signed up, logged in");
    assert_eq!(app.session_status(token).await, StatusCode::OK);

    let u = app.core.user(&op(), TenantId::DEFAULT, UserId(id)).await.unwrap();
    let p = &u.profile;
    assert_eq!(u.phone.as_deref(), Some("+1 555 0100 200"));
    assert_eq!(p.birth_date.map(|d| d.to_string()).as_deref(), Some("1906-12-09"), "month first, as US sites write it");
    let texts = [
        (&p.fax, "+1 555 0100 201"),
        (&p.gender, "F"),
        (&p.bio, "Wrote the first compiler.\nAdmiral."),
        (&p.display_name, "Amazing Grace"),
        (&p.display_status, "debugging"),
        (&p.billing_first_name, "Grace"),
        (&p.billing_last_name, "Hopper"),
        (&p.billing_company, "US Navy"),
        (&p.billing_address_line1, "1 Navy Way"),
        (&p.billing_address_line2, "Suite 2"),
        (&p.billing_city, "Arlington"),
        (&p.billing_state, "VA"),
        (&p.billing_postal_code, "22202"),
        (&p.billing_country, "US"),
        (&p.billing_phone, "+1 555 0100 202"),
        (&p.billing_fax, "+1 555 0100 203"),
        (&p.billing_email, "billing@example.com"),
    ];
    for (got, want) in texts {
        assert_eq!(got.as_deref(), Some(want));
    }
    assert_eq!(u.attributes["team"], json!("navy"));
    assert_eq!(u.attributes["shoe_size"], json!(7), "read by the attribute's type");
    assert!(u.roles.is_empty() && u.status == UserStatus::Active);

    // Only the required parameters, by GET and by multipart; ISO dates; optional fields left
    // blank are no values.
    let r = get(
        &app,
        &[
            ("action", "signup"),
            ("username", "lin"),
            ("password", PW),
            ("email", "lin@example.com"),
            ("dob", "1990-07-04"),
            ("fax", ""),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let lin =
        app.core.user(&op(), TenantId::DEFAULT, UserId(user_id(&app, TenantId::DEFAULT, "lin").await)).await.unwrap();
    assert_eq!(lin.profile.birth_date.map(|d| d.to_string()).as_deref(), Some("1990-07-04"));
    assert_eq!(lin.profile.fax, None);
    let multipart = [
        ("action", "signup"),
        ("username", "mo"),
        ("password", PW),
        ("email", "mo@example.com"),
        ("attr:user:team", ""),
    ];
    let r = send(&app, Method::POST, API, Body::Multipart(&multipart), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["item"]["user"]["username"], "mo");
}

async fn signup_refusals_name_the_parameters_and_write_nothing(b: Backend) {
    let app = spawn(b).await;
    define_attribute(&app, TenantId::DEFAULT, "plan", AttributeKind::String, false, false).await;
    define_attribute(&app, TenantId::DEFAULT, "age", AttributeKind::Integer, false, true).await;
    app.user("taken", PW).await;
    let before = user_count(&app, TenantId::DEFAULT).await;
    let base = signup_with;
    let cases: Vec<Refusal> = vec![
        (
            vec![("action", "signup")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            json!({"email": "is required", "password": "is required", "username": "is required"}),
        ),
        (
            base(&[("password2", PW2)]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            json!({"password2": "does not match the password"}),
        ),
        (
            base(&[("email", "not-an-address")]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            json!({"email": "must be a valid e-mail address"}),
        ),
        (
            base(&[("dob", "31/12/1990")]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            json!({"dob": "must be a date: YYYY-MM-DD, MM/DD/YYYY or MM-DD-YYYY"}),
        ),
        (
            base(&[("dob", "02/30/2000")]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            json!({"dob": "is not a date that exists"}),
        ),
        (
            base(&[("attr:user:nope", "1")]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            json!({"attr:user:nope": "unknown attribute"}),
        ),
        (
            base(&[("attr:user:age", "old")]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            json!({"attr:user:age": "must be a whole number"}),
        ),
        (
            base(&[("attr:video:title", "x")]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            json!({"attr:video:title": "only custom fields of users (attr:user:NAME) are taken"}),
        ),
        (
            base(&[("attr:user:plan", "gold")]),
            StatusCode::FORBIDDEN,
            "not_editable",
            json!({"attr:user:plan": "is not a custom field users may set (it is not editable)"}),
        ),
        (base(&[("username", "TAKEN")]), StatusCode::CONFLICT, "taken", json!({"username": "is already taken"})),
        (base(&[("email", "Taken@Example.com")]), StatusCode::CONFLICT, "taken", json!({"email": "is already taken"})),
    ];
    for (pairs, status, code, fields) in cases {
        let v = post(&app, &pairs).await.error(status, code);
        assert_eq!(v["fields"], fields, "{pairs:?}");
    }
    // Over-long values are refused by name.
    let long_name = "x".repeat(101);
    let long_user = "u".repeat(300);
    let pairs = base(&[])
        .into_iter()
        .chain([("display_name", long_name.as_str()), ("username", long_user.as_str())])
        .collect::<Vec<_>>();
    let v = post(&app, &pairs).await.error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(v["fields"]["display_name"], "must be at most 100 characters");
    assert!(v["fields"]["username"].is_string(), "{v}");
    // A weak password, with the site's rules.
    let v = post(&app, &base(&[("password", "password")]))
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(v["fields"]["password"].is_string(), "{v}");
    assert_eq!(user_count(&app, TenantId::DEFAULT).await, before, "nothing was written");
    // The e-mail address in the username's place is refused as a username, not as taken.
    let r = post(&app, &base(&[("username", "taken@example.com")])).await;
    assert!(matches!(r.status, StatusCode::UNPROCESSABLE_ENTITY), "{}", r.text);

    // Closed sign-up says so.
    let closed = TestApp::spawn_with(b, |c| c.policy.signup_open = false).await;
    enable_dialect(&closed, TenantId::DEFAULT, Dialect::Metrixstream).await;
    post(&closed, &base(&[])).await.error(StatusCode::FORBIDDEN, "signup_closed");
}

/// A refused request: its parameters, and the status, code and fields it gets.
type Refusal<'a> = (Vec<(&'a str, &'a str)>, StatusCode, &'a str, Value);

/// Sign-up's required parameters for `newbie`, with `extra` replacing or adding some.
fn signup_with<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut v = vec![("action", "signup"), ("username", "newbie"), ("password", PW), ("email", "newbie@example.com")];
    for (k, val) in extra {
        v.retain(|(n, _)| n != k);
        v.push((*k, *val));
    }
    v
}

async fn accounts_that_may_not_log_in_are_told_so_after_the_password(b: Backend) {
    let app = TestApp::spawn_with(b, |c| c.policy.require_verified_email = true).await;
    enable_dialect(&app, TenantId::DEFAULT, Dialect::Metrixstream).await;
    let r = post(&app, &[("action", "signup"), ("username", "vera"), ("password", PW), ("email", "vera@example.com")])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v = r.json();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["status", "item"], "no session before the address is verified: {v}");
    assert!(r.cookie().is_none());
    post(&app, &[("action", "login"), ("username", "vera"), ("password", PW)])
        .await
        .error(StatusCode::FORBIDDEN, "email_not_verified");
    post(&app, &[("action", "login"), ("username", "vera"), ("password", PW2)])
        .await
        .error(StatusCode::UNAUTHORIZED, "invalid_credentials");

    let id = user_id(&app, TenantId::DEFAULT, "vera").await;
    let off = UserUpdate { status: Some(UserStatus::Disabled), ..Default::default() };
    app.core.stores().users.update_user(TenantId::DEFAULT, UserId(id), &off, app.core.now()).await.unwrap();
    post(&app, &[("action", "login"), ("username", "vera"), ("password", PW)])
        .await
        .error(StatusCode::FORBIDDEN, "account_disabled");
    post(&app, &[("action", "login"), ("username", "vera"), ("password", PW2)])
        .await
        .error(StatusCode::UNAUTHORIZED, "invalid_credentials");
}

async fn accounts_cross_between_the_dialect_and_the_native_api(b: Backend) {
    // Accounts without an e-mail address exist too (made natively where the tenant allows).
    let app = TestApp::spawn_with(b, |c| c.policy.require_email = false).await;
    enable_dialect(&app, TenantId::DEFAULT, Dialect::Metrixstream).await;
    // Made through the dialect, used natively.
    let r = post(
        &app,
        &[
            ("action", "signup"),
            ("username", "ms_made"),
            ("password", PW),
            ("email", "ms@example.com"),
            ("display_name", "From MS"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let (status, body) = app.login("ms@example.com", PW).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["user"]["username"].as_str(), body["user"]["display_name"].as_str()),
        (Some("ms_made"), Some("From MS"))
    );
    // The dialect's session works on the native API, and the other way round.
    let t = r.json()["session"]["token"].as_str().unwrap().to_owned();
    assert_eq!(app.session_status(&t).await, StatusCode::OK);

    // Made natively, used through the dialect.
    app.signup(json!({"username": "native", "email": "native@example.com", "password": PW})).await;
    let id = user_id(&app, TenantId::DEFAULT, "native").await;
    let r = post(&app, &[("action", "login"), ("username", "native"), ("password", PW)]).await;
    let t = assert_logged_in(&r, id, "native", "native@example.com");
    let (status, _) = app.send(Method::GET, "/v1/me", &t, None).await;
    assert_eq!(status, StatusCode::OK);
    // A native session ends through the dialect.
    let native = app.token("native", PW).await;
    assert_eq!(post(&app, &[("action", "logout"), ("token", &native)]).await.status, StatusCode::OK);
    assert_eq!(app.session_status(&native).await, StatusCode::UNAUTHORIZED);
    // An account without a username or e-mail address is answered with nulls.
    app.signup(json!({"phone": "+1 555 0100 777", "email": null, "password": PW})).await;
    let r = post(&app, &[("action", "login"), ("username", "+1 555 0100 777"), ("password", PW)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let user = &r.json()["item"]["user"];
    assert!(user["id"].is_i64() && user["username"].is_null() && user["email"].is_null(), "{user}");
}
