//! The Siberian dialect over real HTTP: every call of `api-account-user.txt` replayed as its
//! clients send it (forms, multipart, JSON; each way of presenting the key) and compared field
//! by field with the document; the automatic log-in in a browser; enumeration and cost; every
//! malformed request answered in Siberian's shape; audit; and accounts shared with the native
//! API both ways.

use std::time::Duration;

use portcullis_core::model::{TenantPolicy, UserStatus};
use portcullis_core::profile::TextField;
use portcullis_core::store::{AuditQuery, TenantUpdate};
use portcullis_core::{Dialect, TenantId, UserId};
use portcullis_testkit::totp_code;
use reqwest::header::{HeaderMap, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both;
use crate::support::{Backend, PW, PW2, TestApp, api_key, enable_dialect, op, tenant};

both!(
    create_answers_as_the_document_shows,
    create_refuses_what_it_must_and_writes_nothing,
    role_id_names_a_role_of_the_tenant,
    update_changes_what_is_sent_and_nothing_else,
    exist_answers_a_json_boolean_to_readers_only,
    authenticate_answers_a_token_that_logs_the_browser_in,
    unknown_account_and_wrong_password_get_one_answer_at_one_cost,
    forgotpassword_mails_a_link_and_answers_alike,
    keys_are_taken_as_siberian_clients_send_them,
    tenants_without_the_dialect_answer_like_a_wrong_key,
    malformed_requests_get_siberian_errors_and_write_nothing,
    accounts_that_may_not_log_in_are_told_only_after_the_password,
    second_factor_accounts_send_their_code,
    limits_and_overload_are_answered_in_siberian_shape,
    calls_are_audited_with_their_surface,
);

const PREFIX: &str = "/admin/api_account";

/// An answer: status, headers, body as text and (when it parses) as JSON.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
    json: Value,
}

impl Answer {
    /// Asserts Siberian's error shape, `{"error": 1, "message": ...}` with 400; returns the message.
    #[track_caller]
    fn error(&self) -> &str {
        assert_eq!(self.status, StatusCode::BAD_REQUEST, "{}", self.text);
        assert_eq!(self.content_type(), "application/json", "{}", self.text);
        let obj = self.json.as_object().unwrap_or_else(|| panic!("not an object: {}", self.text));
        assert_eq!(obj.len(), 2, "exactly error and message: {}", self.text);
        assert_eq!(self.json["error"], json!(1), "{}", self.text);
        let m = self.json["message"].as_str().unwrap();
        assert!(!m.is_empty());
        m
    }

    /// Asserts success (200, JSON, `"success": 1`) with exactly these keys.
    #[track_caller]
    fn success(&self, keys: &[&str]) -> &Value {
        assert_eq!(self.status, StatusCode::OK, "{}", self.text);
        assert_eq!(self.content_type(), "application/json", "{}", self.text);
        let mut got: Vec<&str> = self.json.as_object().unwrap().keys().map(String::as_str).collect();
        got.sort_unstable();
        let mut want = keys.to_vec();
        want.sort_unstable();
        assert_eq!(got, want, "{}", self.text);
        assert_eq!(self.json["success"], json!(1), "an integer, as the document shows: {}", self.text);
        &self.json
    }

    fn content_type(&self) -> &str {
        self.headers.get("content-type").map_or("", |v| v.to_str().unwrap())
    }

    fn location(&self) -> &str {
        self.headers.get("location").map_or("", |v| v.to_str().unwrap())
    }
}

/// How a body is sent.
#[derive(Clone, Copy, Debug)]
enum Body {
    Form,
    Multipart,
    Json,
}

/// How the key is presented.
#[derive(Clone, Copy, Debug)]
enum Auth<'a> {
    /// `Api-Auth-Bearer: Bearer <key>`.
    Siberian(&'a str),
    /// HTTP Basic with this user and the key as password.
    Basic(&'a str, &'a str),
    /// `Authorization: Bearer <key>`.
    Bearer(&'a str),
    None,
}

async fn send(req: reqwest::RequestBuilder) -> Answer {
    let res = req.send().await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let text = res.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer { status, headers, text, json }
}

fn with_auth(mut req: reqwest::RequestBuilder, auth: Auth<'_>) -> reqwest::RequestBuilder {
    match auth {
        Auth::Siberian(k) => req = req.header("api-auth-bearer", format!("Bearer {k}")),
        Auth::Basic(user, k) => req = req.basic_auth(user, Some(k)),
        Auth::Bearer(k) => req = req.bearer_auth(k),
        Auth::None => {}
    }
    req
}

/// Calls `{path}` (under the dialect's prefix) with these parameters.
async fn call_at(app: &TestApp, path: &str, auth: Auth<'_>, body: Body, params: &[(&str, &str)]) -> Answer {
    let req = app.client.post(app.url(path));
    let req = match body {
        Body::Form => req
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(params).unwrap()),
        Body::Json => {
            let obj: serde_json::Map<String, Value> =
                params.iter().map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned()))).collect();
            req.json(&obj)
        }
        Body::Multipart => {
            let mut text = String::new();
            for (k, v) in params {
                text.push_str(&format!("--XyZ\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"));
            }
            text.push_str("--XyZ--\r\n");
            req.header("content-type", "multipart/form-data; boundary=XyZ").body(text)
        }
    };
    send(with_auth(req, auth)).await
}

/// A form call at the default prefix, the key in Siberian's header.
async fn call(app: &TestApp, name: &str, key: &str, params: &[(&str, &str)]) -> Answer {
    call_at(app, &format!("{PREFIX}/{name}"), Auth::Siberian(key), Body::Form, params).await
}

/// A client that does not follow redirects, as a test of what a browser is told.
fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// The session token a response sets as a cookie, if any.
fn session_cookie(a: &Answer) -> Option<String> {
    a.headers.get_all(SET_COOKIE).iter().find_map(|c| {
        let c = c.to_str().unwrap();
        c.strip_prefix("portcullis_session=").map(|rest| rest.split(';').next().unwrap().to_owned())
    })
}

/// An application with the dialect on for the default tenant and a key of these scopes.
async fn app_with_key(b: Backend, scopes: &[&str]) -> (TestApp, String) {
    let app = TestApp::spawn(b).await;
    enable_dialect(&app, TenantId::DEFAULT, Dialect::Siberian).await;
    let key = api_key(&app, Some(TenantId::DEFAULT), scopes).await;
    (app, key)
}

/// The key a Siberian integration holds: it creates, updates, checks and resets.
const ALL: &[&str] = &["users:manage", "credentials:verify"];

async fn user(app: &TestApp, tenant: TenantId, id: i64) -> portcullis_core::model::User {
    app.core.user(&op(), tenant, UserId(id)).await.unwrap()
}

async fn user_count(app: &TestApp) -> usize {
    let f = portcullis_core::admin::ListUsers { limit: 1000, ..Default::default() };
    app.core.list_users(&op(), TenantId::DEFAULT, f).await.unwrap().len()
}

/// Changes a tenant's policy overrides, keeping the others.
async fn set_policy(app: &TestApp, slug: &str, change: impl FnOnce(&mut TenantPolicy)) {
    let t = app.core.find_tenant(&op(), slug).await.unwrap();
    let mut policy = t.policy.clone();
    change(&mut policy);
    let update = TenantUpdate { policy: Some(policy), ..Default::default() };
    app.core.update_tenant(&op(), t.id, update).await.unwrap();
}

async fn create_answers_as_the_document_shows(b: Backend) {
    let (app, key) = app_with_key(b, ALL).await;
    let member = app.core.create_role(&op(), TenantId::DEFAULT, "member", None).await.unwrap();
    let editor = app.core.create_role(&op(), TenantId::DEFAULT, "editor", None).await.unwrap();
    let editor_id = editor.id.0.to_string();

    // The document's example, as a form, with a field it does not name.
    let a = call(
        &app,
        "create",
        &key,
        &[
            ("role_id", &editor_id),
            ("email", "email@domain.com"),
            ("password", PW),
            ("firstname", "Firstname"),
            ("lastname", "Lastname"),
            ("api_version", "2"),
        ],
    )
    .await;
    let body = a.success(&["success", "user_id", "token", "redirect_url"]);
    let id = body["user_id"].as_i64().expect("user_id is an integer");
    let token = body["token"].as_str().unwrap();
    assert!(token.starts_with("pcl_") && token.len() == 4 + 43, "a one-time log-in token: {token}");
    let redirect = body["redirect_url"].as_str().unwrap();
    assert_eq!(
        redirect,
        format!("{}{PREFIX}/autologin?email=email%40domain.com&token={token}", app.base),
        "at the tenant's public address"
    );
    let u = user(&app, TenantId::DEFAULT, id).await;
    assert_eq!(u.email.as_deref(), Some("email@domain.com"));
    assert_eq!(u.profile.text(TextField::FirstName), Some("Firstname"));
    assert_eq!(u.profile.text(TextField::LastName), Some("Lastname"));
    assert_eq!(u.roles, ["editor"]);
    assert_eq!(u.status, UserStatus::Active);
    assert!(u.attributes.is_empty() && u.profile.meta.is_empty(), "unknown fields are never stored: {u:?}");
    // A user made through the dialect logs in through the native API.
    app.token("email@domain.com", PW).await;

    // JSON (with role_id a number, as the document writes it), multipart, and a key in each
    // of the other ways; an address with `+`; no role_id: role 1, when the tenant has it.
    let role_json = json!({"role_id": editor.id.0, "email": "json+tag@domain.com", "password": PW});
    let req = app.client.post(app.url(&format!("{PREFIX}/create"))).bearer_auth(&key).json(&role_json);
    let a = send(req).await;
    let id = a.success(&["success", "user_id", "token", "redirect_url"])["user_id"].as_i64().unwrap();
    assert_eq!(user(&app, TenantId::DEFAULT, id).await.roles, ["editor"]);
    let a = call_at(
        &app,
        &format!("{PREFIX}/create"),
        Auth::Basic("siberian", &key),
        Body::Multipart,
        &[("email", "multi@domain.com"), ("password", PW), ("firstname", "Multi")],
    )
    .await;
    let id = a.success(&["success", "user_id", "token", "redirect_url"])["user_id"].as_i64().unwrap();
    let u = user(&app, TenantId::DEFAULT, id).await;
    assert_eq!(u.profile.text(TextField::FirstName), Some("Multi"));
    assert_eq!(u.roles, [member.name.as_str()], "role 1 ({member:?}) by default");
    app.token("multi@domain.com", PW).await;

    // Only the e-mail address is required: an account without a password logs in with its
    // token only.
    let a = call(&app, "create", &key, &[("email", "nopassword@domain.com")]).await;
    let body = a.success(&["success", "user_id", "token", "redirect_url"]).clone();
    let (status, _) = app.login("nopassword@domain.com", PW).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let b = send(browser().get(body["redirect_url"].as_str().unwrap())).await;
    assert_eq!(b.status, StatusCode::SEE_OTHER);
    assert!(session_cookie(&b).is_some_and(|c| c.starts_with("pcs_")), "{:?}", b.headers);
}

async fn create_refuses_what_it_must_and_writes_nothing(b: Backend) {
    let (app, key) = app_with_key(b, ALL).await;
    app.signup(json!({"email": "taken@example.com", "password": PW})).await;
    let before = user_count(&app).await;
    for (params, want) in [
        (vec![("email", "TAKEN@example.com"), ("password", PW)], "This email address is already used"),
        (vec![("password", PW)], "The email is required"),
        (vec![("email", "  "), ("password", PW)], "The email is required"),
        (vec![("user_id", "1"), ("email", "new@example.com")], "Unable to update a user from here."),
        (vec![("email", "not an address"), ("password", PW)], "The email must be a valid e-mail address."),
        (vec![("email", "short@example.com"), ("password", "abc")], "The password must be at least 8 characters."),
        (vec![("email", "empty@example.com"), ("password", "")], "The password must not be empty."),
    ] {
        let a = call(&app, "create", &key, &params).await;
        assert_eq!(a.error(), want, "{params:?}");
    }
    let long = "x".repeat(101);
    let a =
        call(&app, "create", &key, &[("email", "long@example.com"), ("firstname", &long), ("lastname", &long)]).await;
    assert_eq!(a.error(), "The firstname must be at most 100 characters. The lastname must be at most 100 characters.");
    assert_eq!(user_count(&app).await, before, "nothing was written");
}

async fn role_id_names_a_role_of_the_tenant(b: Backend) {
    let (app, key) = app_with_key(b, ALL).await;
    // A tenant whose roles are not numbered from 1 (ids are counted across the server).
    let first = app.core.create_role(&op(), TenantId::DEFAULT, "first", None).await.unwrap();
    let acme = tenant(&app, "acme", &[]).await;
    enable_dialect(&app, acme, Dialect::Siberian).await;
    let acme_key = api_key(&app, Some(acme), ALL).await;
    let staff = app.core.create_role(&op(), acme, "staff", None).await.unwrap();
    assert_ne!(staff.id.0, 1);
    let at = |call: &str| format!("/t/acme{PREFIX}/{call}");

    // The default, role 1, is not acme's: the account gets no role.
    let a = call_at(&app, &at("create"), Auth::Siberian(&acme_key), Body::Form, &[("email", "a@acme.test")]).await;
    let id = a.success(&["success", "user_id", "token", "redirect_url"])["user_id"].as_i64().unwrap();
    assert!(user(&app, acme, id).await.roles.is_empty());
    assert!(
        a.json["redirect_url"].as_str().unwrap().starts_with(&format!("{}/t/acme{PREFIX}/autologin?", app.base)),
        "{}",
        a.text
    );
    let staff_id = staff.id.0.to_string();
    let a = call_at(
        &app,
        &at("create"),
        Auth::Siberian(&acme_key),
        Body::Form,
        &[("email", "b@acme.test"), ("role_id", &staff_id)],
    )
    .await;
    let id = a.success(&["success", "user_id", "token", "redirect_url"])["user_id"].as_i64().unwrap();
    assert_eq!(user(&app, acme, id).await.roles, ["staff"]);

    // Sent, role_id must name a role of this tenant: role 1 is the default tenant's.
    let first_id = first.id.0.to_string();
    for (role, want) in [
        (first_id.as_str(), "This role does not exist"),
        ("999", "This role does not exist"),
        ("admin", "The role_id must be an integer"),
        ("1.5", "The role_id must be an integer"),
    ] {
        let params = [("email", "c@acme.test"), ("role_id", role)];
        let a = call_at(&app, &at("create"), Auth::Siberian(&acme_key), Body::Form, &params).await;
        assert_eq!(a.error(), want, "{role}");
    }
    let f = portcullis_core::admin::ListUsers { limit: 100, ..Default::default() };
    assert_eq!(app.core.list_users(&op(), acme, f).await.unwrap().len(), 2, "nothing more was written");

    // In the default tenant, role 1 is the default.
    let a = call(&app, "create", &key, &[("email", "d@example.com"), ("role_id", "")]).await;
    let id = a.success(&["success", "user_id", "token", "redirect_url"])["user_id"].as_i64().unwrap();
    assert_eq!(user(&app, TenantId::DEFAULT, id).await.roles, ["first"]);
}

async fn update_changes_what_is_sent_and_nothing_else(b: Backend) {
    let (app, key) = app_with_key(b, ALL).await;
    let member = app.core.create_role(&op(), TenantId::DEFAULT, "member", None).await.unwrap();
    let boss = app.core.create_role(&op(), TenantId::DEFAULT, "boss", None).await.unwrap();
    // A user made natively is changed through the dialect.
    let made =
        app.signup(json!({"email": "ann@example.com", "password": PW, "first_name": "Ann", "last_name": "Lee"})).await;
    let id = made["user"]["id"].as_i64().unwrap();
    let session = made["session"]["token"].as_str().unwrap().to_owned();
    app.core
        .update_user(
            &op(),
            TenantId::DEFAULT,
            UserId(id),
            {
                let mut a = portcullis_core::AccountInput::new();
                a.set_roles(vec!["member".into()]);
                a
            },
            None,
        )
        .await
        .unwrap();
    let sid = id.to_string();

    // The document's example: e-mail and names; no role_id leaves the role alone.
    let a = call(
        &app,
        "update",
        &key,
        &[
            ("user_id", &sid),
            ("email", "new.email@example.com"),
            ("firstname", "New firstname"),
            ("lastname", "New lastname"),
            ("api_version", "2"),
        ],
    )
    .await;
    assert_eq!(a.success(&["success", "user_id"])["user_id"], json!(id));
    let u = user(&app, TenantId::DEFAULT, id).await;
    assert_eq!(u.email.as_deref(), Some("new.email@example.com"));
    assert_eq!(
        (u.profile.text(TextField::FirstName), u.profile.text(TextField::LastName)),
        (Some("New firstname"), Some("New lastname"))
    );
    assert_eq!(u.roles, [member.name.as_str()]);
    assert_eq!(app.session_status(&session).await, StatusCode::OK, "no password change, no session ended");

    // role_id replaces the role; an empty name clears it; JSON works as well.
    let boss_id = boss.id.0.to_string();
    let req = app
        .client
        .post(app.url(&format!("{PREFIX}/update")))
        .header("api-auth-bearer", format!("Bearer {key}"))
        .json(&json!({"user_id": id, "role_id": boss.id.0, "lastname": ""}));
    send(req).await.success(&["success", "user_id"]);
    let u = user(&app, TenantId::DEFAULT, id).await;
    assert_eq!(u.roles, ["boss"]);
    assert_eq!(u.profile.text(TextField::LastName), None);
    assert_eq!(u.profile.text(TextField::FirstName), Some("New firstname"));

    // A new password: the policy decides, every session of the user ends, the new one works
    // natively.
    let a = call(&app, "update", &key, &[("user_id", &sid), ("password", "abc")]).await;
    assert_eq!(a.error(), "The password must be at least 8 characters.");
    call(&app, "update", &key, &[("user_id", &sid), ("password", PW2), ("role_id", &boss_id)])
        .await
        .success(&["success", "user_id"]);
    assert_eq!(app.session_status(&session).await, StatusCode::UNAUTHORIZED);
    app.token("new.email@example.com", PW2).await;

    // Failures.
    app.signup(json!({"email": "other@example.com", "password": PW})).await;
    let acme = tenant(&app, "acme", &[]).await;
    let stranger = app
        .core
        .create_user(
            &op(),
            acme,
            {
                let mut a = portcullis_core::AccountInput::new();
                a.set_email(Some("s@acme.test".into()));
                a
            },
            None,
        )
        .await
        .unwrap();
    let stranger = stranger.id.0.to_string();
    for (params, want) in [
        (vec![("user_id", sid.as_str()), ("email", "OTHER@example.com")], "This email address is already used"),
        (vec![("email", "x@example.com")], "The user_id is required"),
        (vec![("user_id", "999999"), ("firstname", "X")], "This admin does not exist"),
        (vec![("user_id", "abc"), ("firstname", "X")], "This admin does not exist"),
        (vec![("user_id", stranger.as_str()), ("firstname", "X")], "This admin does not exist"),
        (vec![("user_id", sid.as_str()), ("role_id", "424242")], "This role does not exist"),
    ] {
        assert_eq!(call(&app, "update", &key, &params).await.error(), want, "{params:?}");
    }
    let u = user(&app, TenantId::DEFAULT, id).await;
    assert_eq!((u.email.as_deref(), u.roles.clone()), (Some("new.email@example.com"), vec!["boss".to_owned()]));
}

async fn exist_answers_a_json_boolean_to_readers_only(b: Backend) {
    let (app, reader) = app_with_key(b, &["users:read"]).await;
    app.signup(json!({"email": "email@domain.com", "password": PW})).await;
    for (email, exists) in [("email@domain.com", true), ("EMAIL@Domain.com", true), ("nobody@domain.com", false)] {
        let a = call(&app, "exist", &reader, &[("email", email)]).await;
        assert_eq!(a.success(&["success", "exists"])["exists"], json!(exists), "a JSON boolean: {email}");
    }
    let a =
        call_at(&app, &format!("{PREFIX}/exist"), Auth::Bearer(&reader), Body::Json, &[("email", "email@domain.com")])
            .await;
    assert_eq!(a.success(&["success", "exists"])["exists"], json!(true));
    assert_eq!(call(&app, "exist", &reader, &[]).await.error(), "The email is required");
    // Whether an account exists is for keys that may read users.
    let verifier = api_key(&app, Some(TenantId::DEFAULT), &["credentials:verify"]).await;
    let a = call(&app, "exist", &verifier, &[("email", "email@domain.com")]).await;
    assert_eq!(a.error(), "This API key lacks the scope needed here.");
}

async fn authenticate_answers_a_token_that_logs_the_browser_in(b: Backend) {
    let (app, key) = app_with_key(b, &["credentials:verify"]).await;
    // A user made natively logs in through the dialect.
    let made = app.signup(json!({"username": "ada", "email": "ada@example.com", "password": PW})).await;
    let id = made["user"]["id"].as_i64().unwrap();

    let a =
        call(&app, "authenticate", &key, &[("email", "ada@example.com"), ("password", PW), ("api_version", "2")]).await;
    let body = a.success(&["success", "user_id", "token", "redirect_url"]).clone();
    assert_eq!(body["user_id"], json!(id));
    let token = body["token"].as_str().unwrap();
    let url = body["redirect_url"].as_str().unwrap();
    assert_eq!(url, format!("{}{PREFIX}/autologin?email=ada%40example.com&token={token}", app.base));

    // The browser: a session cookie and on to the account page (no application set).
    let b1 = send(browser().get(url)).await;
    assert_eq!(b1.status, StatusCode::SEE_OTHER, "{}", b1.text);
    assert_eq!(b1.location(), "/ui/account");
    assert_eq!(b1.headers["referrer-policy"], "no-referrer");
    let session = session_cookie(&b1).expect("a session cookie");
    assert_eq!(app.session_status(&session).await, StatusCode::OK);
    // The token works once: then the log-in page, with nothing secret in its address.
    let b2 = send(browser().get(url)).await;
    assert_eq!((b2.status, b2.location()), (StatusCode::SEE_OTHER, "/ui/login"));
    assert!(session_cookie(&b2).is_none());

    // The application, when the tenant names one; the login page returns there.
    set_policy(&app, "default", |p| p.application_url = Some("https://app.example.com/home".into())).await;
    let a = call_at(
        &app,
        &format!("{PREFIX}/authenticate"),
        Auth::Basic("", &key),
        Body::Json,
        &[("email", "ADA@example.com"), ("password", PW)],
    )
    .await;
    let url = a.success(&["success", "user_id", "token", "redirect_url"])["redirect_url"].as_str().unwrap().to_owned();
    let b3 = send(browser().get(&url)).await;
    assert_eq!((b3.status, b3.location()), (StatusCode::SEE_OTHER, "https://app.example.com/home"));
    assert!(session_cookie(&b3).is_some());
    let b4 = send(browser().get(&url)).await;
    assert_eq!(b4.location(), "/ui/login?return_to=https%3A%2F%2Fapp.example.com%2Fhome");

    // A token shown with another account's address is refused, and spent.
    app.signup(json!({"email": "bob@example.com", "password": PW})).await;
    let a = call(&app, "authenticate", &key, &[("email", "ada@example.com"), ("password", PW)]).await;
    let token = a.success(&["success", "user_id", "token", "redirect_url"])["token"].as_str().unwrap().to_owned();
    let wrong = format!("{}{PREFIX}/autologin?email=bob%40example.com&token={token}", app.base);
    let b5 = send(browser().get(&wrong)).await;
    assert_eq!(b5.status, StatusCode::SEE_OTHER);
    assert!(b5.location().starts_with("/ui/login") && session_cookie(&b5).is_none());
    let right = format!("{}{PREFIX}/autologin?email=ada%40example.com&token={token}", app.base);
    assert!(session_cookie(&send(browser().get(&right)).await).is_none(), "spent by the wrong address");

    // Incomplete or garbled links, and a HEAD that only looks: the log-in page, or nothing spent.
    let a = call(&app, "authenticate", &key, &[("email", "ada@example.com"), ("password", PW)]).await;
    let token = a.success(&["success", "user_id", "token", "redirect_url"])["token"].as_str().unwrap().to_owned();
    for q in
        ["", "?email=ada%40example.com", &format!("?token={token}"), "?email=ada%40example.com&token=pcl_nope", "?%%%"]
    {
        let r = send(browser().get(app.url(&format!("{PREFIX}/autologin{q}")))).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{q}");
        assert!(r.location().starts_with("/ui/login"), "{q}: {}", r.location());
        assert!(session_cookie(&r).is_none());
    }
    let right = format!("{}{PREFIX}/autologin?email=ada%40example.com&token={token}", app.base);
    let head = send(browser().head(&right)).await;
    assert_eq!(head.status, StatusCode::OK);
    let r = send(browser().get(&right)).await;
    assert!(session_cookie(&r).is_some(), "the HEAD did not spend the token");

    // The ten minutes of a log-in token.
    let a = call(&app, "authenticate", &key, &[("email", "ada@example.com"), ("password", PW)]).await;
    let url = a.success(&["success", "user_id", "token", "redirect_url"])["redirect_url"].as_str().unwrap().to_owned();
    app.clock.advance(Duration::from_secs(11 * 60));
    assert!(session_cookie(&send(browser().get(&url)).await).is_none(), "expired");

    // Missing fields.
    assert_eq!(call(&app, "authenticate", &key, &[("password", PW)]).await.error(), "The email is required");
    let a = call(&app, "authenticate", &key, &[("email", "ada@example.com"), ("password", "")]).await;
    assert_eq!(a.error(), "The password is required");
}

async fn unknown_account_and_wrong_password_get_one_answer_at_one_cost(b: Backend) {
    let (app, key) = app_with_key(b, &["credentials:verify"]).await;
    app.signup(json!({"username": "known", "email": "known@example.com", "password": PW})).await;
    let mut answers = Vec::new();
    for email in [
        "known@example.com",
        "nobody@example.com",
        "KNOWN@example.com",
        "known",
        "no@such@thing",
        "x".repeat(300).as_str(),
    ] {
        let before = app.core.hasher().verifications();
        let a = call(&app, "authenticate", &key, &[("email", email), ("password", "wrong password here")]).await;
        assert_eq!(app.core.hasher().verifications(), before + 1, "{email}: exactly one verification");
        assert_eq!(a.error(), "Authentication failed.");
        let headers: Vec<(String, String)> = a
            .headers
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "date" | "x-request-id"))
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        answers.push((email.to_owned(), a.status, headers, a.text));
    }
    let (_, s0, h0, t0) = &answers[0];
    for (email, s, h, t) in &answers {
        assert_eq!((s, h, t), (s0, h0, t0), "{email} gets the same answer as a wrong password");
    }
}

async fn forgotpassword_mails_a_link_and_answers_alike(b: Backend) {
    let (app, sink) = TestApp::spawn_with_mail(b, |_| {}).await;
    enable_dialect(&app, TenantId::DEFAULT, Dialect::Siberian).await;
    let key = api_key(&app, Some(TenantId::DEFAULT), &["credentials:verify"]).await;
    app.signup(json!({"email": "pia@example.com", "password": PW})).await;
    let welcome = sink.wait_for("pia@example.com", 1, Duration::from_secs(15)).await.len();

    let before = app.core.hasher().verifications();
    let known = call(&app, "forgotpassword", &key, &[("email", "pia@example.com")]).await;
    let unknown = call(&app, "forgotpassword", &key, &[("email", "nobody@example.com")]).await;
    assert_eq!(app.core.hasher().verifications(), before, "no password work either way");
    known.success(&["success"]);
    assert_eq!((known.status, &known.text), (unknown.status, &unknown.text), "the same answer for nobody");
    let mails = sink.wait_for("pia@example.com", welcome + 1, Duration::from_secs(15)).await;
    let mail = mails.last().unwrap();
    assert!(mail.subject.contains("Set a new password"), "{}", mail.subject);
    assert!(mail.token(&format!("{}/ui/reset", app.base)).is_some(), "a link: {}", mail.text);
    assert!(!mail.text.contains(PW), "never a password");

    // JSON too, and the end user's address for the limits.
    let a = call_at(
        &app,
        &format!("{PREFIX}/forgotpassword"),
        Auth::Siberian(&key),
        Body::Json,
        &[("email", "pia@example.com"), ("client_ip", "203.0.113.9")],
    )
    .await;
    a.success(&["success"]);
    let a = call(&app, "forgotpassword", &key, &[("email", "pia@example.com"), ("client_ip", "somewhere")]).await;
    assert_eq!(a.error(), "The client_ip must be an IPv4 or IPv6 address.");
    assert_eq!(call(&app, "forgotpassword", &key, &[]).await.error(), "Please enter your email address");
    // Reset requests are for keys that check credentials.
    let reader = api_key(&app, Some(TenantId::DEFAULT), &["users:read"]).await;
    let a = call(&app, "forgotpassword", &reader, &[("email", "pia@example.com")]).await;
    assert_eq!(a.error(), "This API key lacks the scope needed here.");
}

async fn keys_are_taken_as_siberian_clients_send_them(b: Backend) {
    let (app, key) = app_with_key(b, &["users:read"]).await;
    let exist = format!("{PREFIX}/exist");
    let params = [("email", "a@example.com")];
    for auth in [Auth::Siberian(&key), Auth::Basic("any name", &key), Auth::Basic("", &key), Auth::Bearer(&key)] {
        call_at(&app, &exist, auth, Body::Form, &params).await.success(&["success", "exists"]);
    }
    let acme = tenant(&app, "acme", &[]).await;
    enable_dialect(&app, acme, Dialect::Siberian).await;
    let acme_key = api_key(&app, Some(acme), &["users:read"]).await;
    let revoked = api_key(&app, Some(TenantId::DEFAULT), &["users:read"]).await;
    let keys = app.core.list_api_keys(&op(), Some(TenantId::DEFAULT)).await.unwrap();
    let rid = keys.iter().find(|k| revoked.starts_with(&k.prefix)).unwrap().id;
    app.core.revoke_api_key(&op(), Some(TenantId::DEFAULT), rid).await.unwrap();
    let unknown = format!("pck_{}", "A".repeat(43));
    let refused = "Authentication failed. Please, check the username and/or the password";
    let mut texts = Vec::new();
    for auth in [
        Auth::None,
        Auth::Siberian(&unknown),
        Auth::Siberian("garbage"),
        Auth::Basic(&key, "not the key"),
        Auth::Bearer(&revoked),
        Auth::Siberian(&acme_key),
    ] {
        let a = call_at(&app, &exist, auth, Body::Form, &params).await;
        assert_eq!(a.error(), refused, "{auth:?}");
        texts.push(a.text);
    }
    assert!(texts.windows(2).all(|w| w[0] == w[1]), "one answer for every refused key");
    // A refused caller learns nothing of the request either.
    let a = call_at(&app, &exist, Auth::None, Body::Form, &[]).await;
    assert_eq!(a.error(), refused);
}

async fn tenants_without_the_dialect_answer_like_a_wrong_key(b: Backend) {
    let app = TestApp::spawn(b).await;
    let key = api_key(&app, Some(TenantId::DEFAULT), ALL).await;
    let refused = "Authentication failed. Please, check the username and/or the password";
    // Off by default.
    assert_eq!(call(&app, "exist", &key, &[("email", "a@example.com")]).await.error(), refused);
    let acme = tenant(&app, "acme", &["acme.test"]).await;
    enable_dialect(&app, acme, Dialect::Siberian).await;
    let acme_key = api_key(&app, Some(acme), ALL).await;
    let at = |t: &str| format!("/t/{t}{PREFIX}/exist");
    call_at(&app, &at("acme"), Auth::Siberian(&acme_key), Body::Form, &[("email", "a@acme.test")])
        .await
        .success(&["success", "exists"]);
    // By Host too.
    let req = app
        .client
        .post(app.url(&format!("{PREFIX}/exist")))
        .header("host", "acme.test")
        .header("api-auth-bearer", format!("Bearer {acme_key}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=a%40acme.test");
    send(req).await.success(&["success", "exists"]);
    // An unknown tenant, and a disabled one.
    let a = call_at(&app, &at("nope"), Auth::Siberian(&acme_key), Body::Form, &[("email", "a@acme.test")]).await;
    assert_eq!(a.error(), refused);
    let update = TenantUpdate { disabled: Some(true), ..Default::default() };
    app.core.update_tenant(&op(), acme, update).await.unwrap();
    let a = call_at(&app, &at("acme"), Auth::Siberian(&acme_key), Body::Form, &[("email", "a@acme.test")]).await;
    assert_eq!(a.error(), refused);
    // A browser is shown a page, never JSON.
    for path in [
        format!("/t/acme{PREFIX}/autologin?email=a%40b.c&token=x"),
        format!("/t/nope{PREFIX}/autologin"),
        format!("{PREFIX}/autologin?email=a%40b.c&token=x"),
    ] {
        let r = send(browser().get(app.url(&path))).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(r.content_type(), "text/html; charset=utf-8", "{path}");
        assert!(r.text.contains("This log-in link does not work here."), "{}", r.text);
    }
}

async fn malformed_requests_get_siberian_errors_and_write_nothing(b: Backend) {
    let (app, key) = app_with_key(b, ALL).await;
    let before = user_count(&app).await;
    let url = |c: &str| app.url(&format!("{PREFIX}/{c}"));
    let auth = |r: reqwest::RequestBuilder| r.header("api-auth-bearer", format!("Bearer {key}"));
    let cases: Vec<(reqwest::RequestBuilder, &str)> = vec![
        (auth(app.client.get(url("create"))), "This method is not allowed here"),
        (auth(app.client.put(url("update"))), "This method is not allowed here"),
        (auth(app.client.post(url("autologin"))), "This method is not allowed here"),
        (auth(app.client.post(url("delete"))), "There is no such call."),
        (auth(app.client.post(app.url(PREFIX))), "There is no such call."),
        (
            auth(app.client.post(url("create")).header("content-type", "text/plain").body("email=a@b.c")),
            "Send the parameters as a form",
        ),
        (
            auth(app.client.post(url("create")).header("content-type", "application/json").body("{\"email\":")),
            "The request could not be read",
        ),
        (
            auth(app.client.post(url("create")).header("content-type", "application/json").body("[1]")),
            "The request could not be read",
        ),
        (auth(app.client.post(url("create")).json(&json!({"email": ["a@b.c"]}))), "The request could not be read"),
        (
            auth(app.client.post(url("create")).header("content-type", "multipart/form-data").body("x")),
            "The request could not be read",
        ),
        (
            auth(
                app.client
                    .post(url("create"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body("x".repeat(70 * 1024)),
            ),
            "The request body is too large.",
        ),
        // Parameters are read from the body only: never from the URL.
        (
            auth(app.client.post(format!("{}?email=q@example.com&password={PW}", url("create")))),
            "The email is required",
        ),
        (auth(app.client.post(url("create"))), "The email is required"),
    ];
    for (req, want) in cases {
        let a = send(req).await;
        assert!(a.error().starts_with(want), "{want}: {}", a.text);
    }
    let a = call(&app, "authenticate", &key, &[("email", "a@example.com"), ("password", PW), ("client_ip", "x")]).await;
    assert_eq!(a.error(), "The client_ip must be an IPv4 or IPv6 address.");
    assert_eq!(user_count(&app).await, before, "nothing was written");
}

async fn accounts_that_may_not_log_in_are_told_only_after_the_password(b: Backend) {
    let (app, key) = app_with_key(b, ALL).await;
    let made = app.signup(json!({"email": "dis@example.com", "password": PW})).await;
    let id = UserId(made["user"]["id"].as_i64().unwrap());
    app.core.set_user_disabled(&op(), TenantId::DEFAULT, id, true).await.unwrap();
    let a = call(&app, "authenticate", &key, &[("email", "dis@example.com"), ("password", PW)]).await;
    assert_eq!(a.error(), "This account is disabled.");
    let a = call(&app, "authenticate", &key, &[("email", "dis@example.com"), ("password", PW2)]).await;
    assert_eq!(a.error(), "Authentication failed.");

    // A tenant that wants verified addresses: the account is made, with no token it could
    // not use.
    set_policy(&app, "default", |p| p.require_verified_email = Some(true)).await;
    let a = call(&app, "create", &key, &[("email", "fresh@example.com"), ("password", PW)]).await;
    let body = a.success(&["success", "user_id"]);
    assert!(body["user_id"].is_i64());
    let a = call(&app, "authenticate", &key, &[("email", "fresh@example.com"), ("password", PW)]).await;
    assert_eq!(a.error(), "The email address of this account must be verified first.");
}

async fn second_factor_accounts_send_their_code(b: Backend) {
    let (app, key) = app_with_key(b, &["credentials:verify"]).await;
    let session = app.user("sam", PW).await;
    let (status, e) =
        app.send(Method::POST, "/v1/me/second-factor/totp", &session, Some(json!({"password": PW}))).await;
    assert_eq!(status, StatusCode::OK, "{e}");
    let secret = e["secret"].as_str().unwrap().to_owned();
    let code = |app: &TestApp| totp_code(&secret, u64::try_from(app.core.now().unix_seconds()).unwrap());
    let (status, _) =
        app.send(Method::POST, "/v1/me/second-factor/totp/confirm", &session, Some(json!({"code": code(&app)}))).await;
    assert_eq!(status, StatusCode::OK);
    app.clock.advance(Duration::from_secs(30));

    let a = call(&app, "authenticate", &key, &[("email", "sam@example.com"), ("password", PW)]).await;
    assert_eq!(a.error(), "This account has a second factor: send its current code as second_factor.");
    let a = call(&app, "authenticate", &key, &[("email", "sam@example.com"), ("password", PW2)]).await;
    assert_eq!(a.error(), "Authentication failed.", "nothing said before the password is right");
    let a = call(
        &app,
        "authenticate",
        &key,
        &[("email", "sam@example.com"), ("password", PW), ("second_factor", "000000")],
    )
    .await;
    assert_eq!(a.error(), "The second-factor code is wrong or was used already.");
    let a = call(
        &app,
        "authenticate",
        &key,
        &[("email", "sam@example.com"), ("password", PW), ("second_factor", &code(&app))],
    )
    .await;
    let url = a.success(&["success", "user_id", "token", "redirect_url"])["redirect_url"].as_str().unwrap().to_owned();
    // The code came with the check that minted the token: the browser is let in at once.
    let r = send(browser().get(&url)).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/ui/account"));
    assert!(session_cookie(&r).is_some());
    // A token an admin minted without any code still asks for the second factor.
    let user = app
        .core
        .user_by_login(
            &crate::support::op(),
            TenantId::DEFAULT,
            &portcullis_core::parse::LoginKey::email("sam@example.com"),
        )
        .await
        .unwrap();
    let issued = app.core.issue_login_token(&crate::support::op(), TenantId::DEFAULT, user.id).await.unwrap();
    let url = format!("/admin/api_account/autologin?email=sam%40example.com&token={}", issued.token.expose());
    let r = send(browser().get(app.url(&url))).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/ui/login"));
    assert!(session_cookie(&r).is_none());
}

async fn limits_and_overload_are_answered_in_siberian_shape(b: Backend) {
    let app = TestApp::spawn_with(b, |c| c.rate_limits.login_per_identifier_per_minute = 3).await;
    enable_dialect(&app, TenantId::DEFAULT, Dialect::Siberian).await;
    let key = api_key(&app, Some(TenantId::DEFAULT), &["credentials:verify"]).await;
    let mut limited = None;
    for _ in 0..6 {
        let a =
            call(&app, "authenticate", &key, &[("email", "who@example.com"), ("password", "guess guess guess")]).await;
        if a.error() != "Authentication failed." {
            limited = Some(a);
            break;
        }
    }
    let a = limited.expect("guessing is limited");
    assert_eq!(a.error(), "Too many attempts; try again later.");
    assert!(a.headers.get("retry-after").is_some_and(|v| v.to_str().unwrap().parse::<u64>().unwrap() >= 1));

    // The hashing pool full: shed at once, 400 with Retry-After (its clients read 200 and 400).
    let app = TestApp::spawn_with(b, |c| {
        c.password.memory_kib = 32 * 1024;
        c.password.iterations = 3;
        c.password.workers = 1;
        c.password.queue = 1;
    })
    .await;
    enable_dialect(&app, TenantId::DEFAULT, Dialect::Siberian).await;
    let key = api_key(&app, Some(TenantId::DEFAULT), &["credentials:verify"]).await;
    app.signup(json!({"email": "busy@example.com", "password": PW})).await;
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (client, url, key) = (app.client.clone(), app.url(&format!("{PREFIX}/authenticate")), key.clone());
            tokio::spawn(async move {
                let res = client
                    .post(url)
                    .header("api-auth-bearer", format!("Bearer {key}"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(serde_urlencoded::to_string([("email", "busy@example.com"), ("password", PW)]).unwrap())
                    .send()
                    .await
                    .unwrap();
                let (status, retry) = (res.status(), res.headers().get("retry-after").cloned());
                (status, retry, res.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let (mut ok, mut shed) = (0, 0);
    for t in tasks {
        let (status, retry, body) = t.await.unwrap();
        if status == StatusCode::OK {
            ok += 1;
        } else {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(body, json!({"error": 1, "message": "The server is busy; try again in a few seconds."}));
            assert!(retry.is_some());
            shed += 1;
        }
    }
    assert!(ok >= 1 && shed >= 1, "ok {ok}, shed {shed}");
}

async fn calls_are_audited_with_their_surface(b: Backend) {
    let (app, key) = app_with_key(b, ALL).await;
    let a = call(&app, "create", &key, &[("email", "aud@example.com"), ("password", PW)]).await;
    let id = a.success(&["success", "user_id", "token", "redirect_url"])["user_id"].as_i64().unwrap();
    call(&app, "update", &key, &[("user_id", &id.to_string()), ("firstname", "Aud")])
        .await
        .success(&["success", "user_id"]);
    let a = call(&app, "authenticate", &key, &[("email", "aud@example.com"), ("password", PW)]).await;
    let url = a.success(&["success", "user_id", "token", "redirect_url"])["redirect_url"].as_str().unwrap().to_owned();
    call(&app, "authenticate", &key, &[("email", "aud@example.com"), ("password", PW2)]).await.error();
    call(&app, "forgotpassword", &key, &[("email", "aud@example.com")]).await.success(&["success"]);
    assert!(session_cookie(&send(browser().get(&url)).await).is_some());

    let q = AuditQuery { tenant_id: Some(TenantId::DEFAULT), limit: 200, ..Default::default() };
    let events = app.core.audit_events(&op(), q, Default::default()).await.unwrap();
    for action in [
        "user.created",
        "user.updated",
        "user.login_token_issued",
        "credentials.verified",
        "login.failed",
        "password.reset_requested",
        "login.succeeded",
    ] {
        let e = events.iter().find(|e| e.action == action).unwrap_or_else(|| panic!("no {action}: {events:#?}"));
        assert_eq!(e.details["surface"], "siberian", "{action}: {e:?}");
    }
    let login = events.iter().find(|e| e.action == "login.succeeded").unwrap();
    assert_eq!(login.details["method"], "login_token");
    // No secret in the log.
    let all = serde_json::to_string(&events.iter().map(|e| &e.details).collect::<Vec<_>>()).unwrap();
    assert!(!all.contains(PW) && !all.contains(&key) && !all.contains("pcl_"), "{all}");
}
