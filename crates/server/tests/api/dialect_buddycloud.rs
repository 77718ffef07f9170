//! The buddycloud dialect over real HTTP: every request of the document replayed and its
//! answer compared field by field, the variants real clients send, malformed input, sign-up's
//! refusals, the root mount, and accounts crossing between the dialect and the native API.
//! What the dialect guards (enumeration, tenants, CORS, audit, limits) is in [`guards`].

mod guards;

use std::time::Duration;

use portcullis_core::admin::ListUsers;
use portcullis_core::model::TenantPolicy;
use portcullis_core::tenants::CreateTenantCommand;
use portcullis_core::{Dialect, TenantId};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::both;
use crate::support::{Backend, PW, PW2, TestApp, enable_dialect, op};

both!(
    the_documents_requests_get_the_documents_answers,
    clients_variants_are_understood,
    the_root_answers_204_where_the_tenant_says_and_is_open_to_anonymous_callers,
    malformed_requests_get_plain_errors_and_write_nothing,
    sign_up_problems_are_answered_in_the_dialects_words,
    accounts_cross_between_the_dialect_and_the_native_api,
    the_dialect_can_be_served_at_the_root,
);

/// An answer as a buddycloud client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    status: StatusCode,
    content_type: Option<String>,
    challenge: Option<String>,
    retry_after: Option<String>,
    body: String,
}

impl Answer {
    async fn of(res: reqwest::Response) -> Self {
        let h = |name: &str| res.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
        let (content_type, challenge, retry_after) = (h("content-type"), h("www-authenticate"), h("retry-after"));
        Self { status: res.status(), content_type, challenge, retry_after, body: res.text().await.unwrap() }
    }

    /// Asserts a plain-text answer: status and body.
    fn is(&self, status: StatusCode, body: &str) -> &Self {
        assert_eq!((self.status, self.body.as_str()), (status, body), "{self:?}");
        if status != StatusCode::NO_CONTENT {
            assert_eq!(self.content_type.as_deref(), Some(TEXT), "{self:?}");
        }
        assert_eq!(self.challenge.is_some(), status == StatusCode::UNAUTHORIZED, "{self:?}");
        self
    }
}

const TEXT: &str = "text/plain; charset=utf-8";
const CHALLENGE: &str = "Basic realm=\"buddycloud\", charset=\"UTF-8\"";
const JSON_UTF8: &str = "application/json; charset=utf-8";

/// A request: a method, a path, HTTP Basic credentials and a body with its content type
/// (`None`: no `Content-Type` header).
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    basic: Option<(&str, &str)>,
    body: Option<(Option<&str>, String)>,
) -> Answer {
    let mut req = app.client.request(method, app.url(path));
    if let Some((u, p)) = basic {
        req = req.basic_auth(u, Some(p));
    }
    if let Some((ct, b)) = body {
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        req = req.body(b);
    }
    Answer::of(req.send().await.unwrap()).await
}

async fn json_post(app: &TestApp, path: &str, basic: Option<(&str, &str)>, body: serde_json::Value) -> Answer {
    call(app, Method::POST, path, basic, Some((Some(JSON_UTF8), body.to_string()))).await
}

async fn check(app: &TestApp, path: &str, user: &str, password: &str) -> Answer {
    call(app, Method::GET, path, Some((user, password)), None).await
}

/// A tenant with these domains and policy overrides, answering the dialect.
async fn bc_tenant(app: &TestApp, slug: &str, domains: &[&str], policy: TenantPolicy) -> TenantId {
    let cmd = CreateTenantCommand {
        slug: slug.into(),
        name: None,
        domains: domains.iter().map(|d| (*d).to_owned()).collect(),
        policy,
    };
    let t = app.core.create_tenant(&op(), cmd).await.unwrap().id;
    enable_dialect(app, t, Dialect::Buddycloud).await;
    t
}

/// The document's tenant: `buddycloud.com`.
async fn buddycloud_com(app: &TestApp) -> TenantId {
    bc_tenant(app, "bc", &["buddycloud.com"], TenantPolicy::default()).await
}

async fn create(app: &TestApp, username: &str, password: &str, email: &str) {
    let body = json!({"username": username, "password": password, "email": email});
    json_post(app, "/api/account", None, body).await.is(StatusCode::OK, "OK");
}

async fn users_in(app: &TestApp, tenant: TenantId) -> usize {
    let q = ListUsers { limit: 1000, ..Default::default() };
    app.core.list_users(&op(), tenant, q).await.unwrap().len()
}

async fn the_documents_requests_get_the_documents_answers(b: Backend) {
    let (app, sink) = TestApp::spawn_with_mail(b, |_| {}).await;
    // The document's passwords are weak by today's measure: this tenant lets them through,
    // so that its examples replay as written.
    let weak_ok = TenantPolicy { password_min_score: Some(0), ..Default::default() };
    let bc = bc_tenant(&app, "bc", &["buddycloud.com"], weak_ok).await;

    // Create User.
    let body =
        r#"{ "username": "juliet@buddycloud.com", "password": "romeo-forever", "email": "juliet@buddycloud.com" }"#;
    let a = call(&app, Method::POST, "/api/account", None, Some((Some(JSON_UTF8), body.into()))).await;
    a.is(StatusCode::OK, "OK");
    assert_eq!((a.challenge, a.retry_after), (None, None));
    let u = app.core.stores().users.user_with_secret(bc, &portcullis_core::parse::LoginKey::username("juliet")).await;
    let u = u.unwrap().expect("juliet exists in the tenant of buddycloud.com").user;
    assert_eq!((u.username.as_deref(), u.email.as_deref()), (Some("juliet"), Some("juliet@buddycloud.com")));
    let sessions = app.core.stores().sessions.sessions_of_user(bc, u.id).await.unwrap();
    assert!(sessions.is_empty(), "no session is left behind: {sessions:?}");

    // Check User Credentials: 200 OK.
    check(&app, "/api/", "juliet@buddycloud.com", "romeo-forever").await.is(StatusCode::OK, "OK");
    check(&app, "/api/", "juliet@buddycloud.com", "romeo-never").await.is(StatusCode::UNAUTHORIZED, "Unauthorized");
    let denied = check(&app, "/api/", "juliet@buddycloud.com", "romeo-never").await;
    assert_eq!(denied.challenge.as_deref(), Some(CHALLENGE));

    // Change Password.
    let change = json!({"username": "juliet@buddycloud.com", "password": "new-password"});
    let creds = Some(("juliet@buddycloud.com", "romeo-forever"));
    json_post(&app, "/api/account/pw/change", creds, change).await.is(StatusCode::OK, "OK");
    check(&app, "/api/", "juliet@buddycloud.com", "romeo-forever").await.is(StatusCode::UNAUTHORIZED, "Unauthorized");
    check(&app, "/api/", "juliet@buddycloud.com", "new-password").await.is(StatusCode::OK, "OK");

    // Reset Password: a link goes out, never a password.
    let body = r#"{ "username": "juliet@buddycloud.com" }"#;
    let a =
        call(&app, Method::POST, "/api/account/pw/reset", None, Some((Some("application/json"), body.into()))).await;
    a.is(StatusCode::OK, "OK");
    let mails = sink.wait_for("juliet@buddycloud.com", 2, Duration::from_secs(15)).await;
    let reset = mails.iter().find(|m| m.text.contains("pcr_")).expect("a reset link");
    assert!(!reset.raw.contains("new-password") && !reset.raw.contains("romeo"), "no password by mail");
    // The password is unchanged until the link is followed.
    check(&app, "/api/", "juliet@buddycloud.com", "new-password").await.is(StatusCode::OK, "OK");

    // Delete User.
    let creds = Some(("juliet@buddycloud.com", "new-password"));
    call(&app, Method::DELETE, "/api/account", creds, None).await.is(StatusCode::OK, "OK");
    check(&app, "/api/", "juliet@buddycloud.com", "new-password").await.is(StatusCode::UNAUTHORIZED, "Unauthorized");
    assert_eq!(users_in(&app, bc).await, 0);
}

async fn clients_variants_are_understood(b: Backend) {
    let app = TestApp::spawn(b).await;
    let bc = buddycloud_com(&app).await;
    enable_dialect(&app, TenantId::DEFAULT, Dialect::Buddycloud).await;

    // No Content-Type, text/plain, a charset, extra and null parameters, numbers as strings.
    let body = json!({"username": "romeo@buddycloud.com", "password": PW, "email": "romeo@example.com", "age": 17, "nick": null});
    call(&app, Method::POST, "/api/account", None, Some((None, body.to_string()))).await.is(StatusCode::OK, "OK");
    let body = json!({"username": "mercutio@Buddycloud.COM", "password": PW, "email": "m@example.com"});
    call(&app, Method::POST, "/api/account", None, Some((Some("text/plain"), body.to_string())))
        .await
        .is(StatusCode::OK, "OK");
    // curl -d without -H labels JSON as a form.
    let body = json!({"username": "benvolio@buddycloud.com", "password": PW, "email": "b@example.com"});
    call(&app, Method::POST, "/api/account", None, Some((Some("application/x-www-form-urlencoded"), body.to_string())))
        .await
        .is(StatusCode::OK, "OK");
    // The domain is matched whatever its case; the username is the local part.
    check(&app, "/api/", "Mercutio@buddycloud.com", PW).await.is(StatusCode::OK, "OK");
    check(&app, "/api/", "romeo@buddycloud.com", PW).await.is(StatusCode::OK, "OK");
    // A bare username is the request's tenant's: the default one here, or /t/bc.
    check(&app, "/api/", "romeo", PW).await.is(StatusCode::UNAUTHORIZED, "Unauthorized");
    check(&app, "/t/bc/api/", "romeo", PW).await.is(StatusCode::OK, "OK");
    check(&app, "/t/bc/api", "romeo", PW).await.is(StatusCode::OK, "OK");
    // The tenant a Host names, too.
    let res =
        app.client.get(app.url("/api/")).header("host", "buddycloud.com").basic_auth("romeo", Some(PW)).send().await;
    Answer::of(res.unwrap()).await.is(StatusCode::OK, "OK");
    // HEAD is GET without a body.
    let res = app.client.head(app.url("/api/")).basic_auth("romeo@buddycloud.com", Some(PW)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // A domain that is no tenant's names an e-mail address in the request's tenant.
    check(&app, "/t/bc/api/", "romeo@example.com", PW).await.is(StatusCode::OK, "OK");
    check(&app, "/api/", "romeo@example.com", PW).await.is(StatusCode::UNAUTHORIZED, "Unauthorized");
    // A bare username creates in the request's tenant.
    let body = json!({"username": "tybalt", "password": PW, "email": "tybalt@example.com"});
    json_post(&app, "/t/bc/api/account", None, body).await.is(StatusCode::OK, "OK");
    check(&app, "/api/", "tybalt@buddycloud.com", PW).await.is(StatusCode::OK, "OK");

    // A chunked body without a Content-Type, as some clients send the password calls.
    let json = json!({"username": "tybalt@buddycloud.com", "password": PW2}).to_string();
    let (status, text) = raw_chunked(&app, "/api/account/pw/change", Some(("tybalt", PW)), &json).await;
    assert_eq!((status, text.as_str()), (200, "OK"));
    check(&app, "/api/", "tybalt@buddycloud.com", PW2).await.is(StatusCode::OK, "OK");
    assert_eq!(users_in(&app, bc).await, 4);
    assert_eq!(users_in(&app, TenantId::DEFAULT).await, 0);
}

/// Sends a chunked POST without a Content-Type over a raw connection (the test client cannot
/// stream); returns the status and the body.
async fn raw_chunked(app: &TestApp, path: &str, basic: Option<(&str, &str)>, json: &str) -> (u16, String) {
    let addr = app.base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The test client encodes the credentials.
    let auth = basic
        .map(|(u, p)| {
            let req = app.client.get(app.url("/")).basic_auth(u, Some(p)).build().unwrap();
            format!("Authorization: {}\r\n", req.headers()["authorization"].to_str().unwrap())
        })
        .unwrap_or_default();
    let (a, b) = json.split_at(json.len() / 2);
    let req = format!(
        "POST /t/bc{path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

async fn the_root_answers_204_where_the_tenant_says_and_is_open_to_anonymous_callers(b: Backend) {
    let app = TestApp::spawn(b).await;
    let original = TenantPolicy { buddycloud_root_status: Some(204), ..Default::default() };
    bc_tenant(&app, "orig", &["orig.example"], original).await;
    buddycloud_com(&app).await;
    create(&app, "ann@orig.example", PW, "ann@example.com").await;
    check(&app, "/api/", "ann@orig.example", PW).await.is(StatusCode::NO_CONTENT, "");
    check(&app, "/api/", "ann@orig.example", PW2).await.is(StatusCode::UNAUTHORIZED, "Unauthorized");
    call(&app, Method::GET, "/t/orig/api/", None, None).await.is(StatusCode::NO_CONTENT, "");
    call(&app, Method::GET, "/t/bc/api/", None, None).await.is(StatusCode::OK, "OK");
    // Other schemes than Basic are no credentials of this API.
    let res = app.client.get(app.url("/t/bc/api/")).bearer_auth("pcs_whatever").send().await.unwrap();
    Answer::of(res).await.is(StatusCode::UNAUTHORIZED, "Unauthorized");
    let res = app.client.get(app.url("/t/bc/api/")).header("authorization", "Basic !!!").send().await.unwrap();
    Answer::of(res).await.is(StatusCode::UNAUTHORIZED, "Unauthorized");
}

async fn malformed_requests_get_plain_errors_and_write_nothing(b: Backend) {
    let app = TestApp::spawn_with(b, |c| c.http.max_body_bytes = 4096).await;
    let bc = buddycloud_com(&app).await;
    let post = |path: &'static str, ct: Option<&'static str>, body: String| {
        let app = &app;
        async move { call(app, Method::POST, path, None, Some((ct, body))).await }
    };
    for path in ["/api/account", "/api/account/pw/reset"] {
        post(path, Some("application/json"), "{not json".into())
            .await
            .is(StatusCode::BAD_REQUEST, "Bad Request: the JSON body does not parse");
        post(path, None, "[1, 2]".into())
            .await
            .is(StatusCode::BAD_REQUEST, "Bad Request: the JSON body must be an object");
        post(path, None, r#"{"username": ["a"]}"#.into())
            .await
            .is(StatusCode::BAD_REQUEST, "Bad Request: the JSON body's values must be strings, numbers or booleans");
        // The body is JSON whatever its type says: a real form does not parse as JSON.
        post(path, Some("application/x-www-form-urlencoded"), "username=a%40buddycloud.com&password=x".into())
            .await
            .is(StatusCode::BAD_REQUEST, "Bad Request: the JSON body does not parse");
        post(path, Some("multipart/form-data; boundary=X"), "--X--\r\n".into())
            .await
            .is(StatusCode::BAD_REQUEST, "Bad Request: the JSON body does not parse");
        post(path, None, format!(r#"{{"username": "{}"}}"#, "a".repeat(5000)))
            .await
            .is(StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large");
        let missing = if path.ends_with("reset") {
            "username: is required"
        } else {
            "password: is required; username: is required"
        };
        post(path, None, String::new()).await.is(StatusCode::BAD_REQUEST, &format!("Bad Request: {missing}"));
    }
    let a = json_post(&app, "/t/bc/api/account/pw/reset", None, json!({"username": "r".repeat(2000)})).await;
    a.is(StatusCode::BAD_REQUEST, "Bad Request: username: is not a username, e-mail address or phone number");
    // Parameters in the query string are not read: passwords stay out of URLs.
    let a =
        call(&app, Method::POST, "/api/account?username=q%40buddycloud.com&password=secretsecret", None, None).await;
    a.is(StatusCode::BAD_REQUEST, "Bad Request: password: is required; username: is required");
    let a = json_post(&app, "/api/account", None, json!({"username": "", "password": ""})).await;
    a.is(StatusCode::BAD_REQUEST, "Bad Request: password: is required; username: is required");
    // The document's limits: 1023 bytes a part.
    let long = format!("{}@buddycloud.com", "a".repeat(1024));
    let a = json_post(&app, "/api/account", None, json!({"username": long, "password": PW, "email": "x@example.com"}))
        .await;
    a.is(StatusCode::BAD_REQUEST, "Bad Request: username: the part before @ must be at most 1023 bytes");
    let long = format!("a@{}", "b".repeat(1024));
    let a = json_post(&app, "/api/account", None, json!({"username": long, "password": PW})).await;
    a.is(StatusCode::BAD_REQUEST, "Bad Request: username: the domain must be at most 1023 bytes");
    // Within them, the core's rules.
    let long = format!("{}@buddycloud.com", "a".repeat(100));
    let a = json_post(
        &app,
        "/api/account",
        None,
        json!({"username": long, "password": "x".repeat(1024), "email": "x@example.com"}),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{a:?}");
    assert!(
        a.body.starts_with("Bad Request: password: ") && a.body.contains("username: must be at most 64 characters"),
        "{a:?}"
    );
    // pw/change: credentials first, then the body.
    let creds = Some(("x@buddycloud.com", PW));
    let a = call(&app, Method::POST, "/api/account/pw/change", None, Some((None, "{".into()))).await;
    a.is(StatusCode::UNAUTHORIZED, "Unauthorized");
    let a = call(&app, Method::POST, "/api/account/pw/change", creds, Some((None, "{".into()))).await;
    a.is(StatusCode::BAD_REQUEST, "Bad Request: the JSON body does not parse");
    let a = json_post(&app, "/api/account/pw/change", creds, json!({"username": "x@buddycloud.com"})).await;
    a.is(StatusCode::BAD_REQUEST, "Bad Request: password: is required");
    // Unknown routes and wrong methods.
    call(&app, Method::GET, "/api/account", None, None).await.is(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    call(&app, Method::PUT, "/api/account", None, None).await.is(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    call(&app, Method::GET, "/api/account/pw/reset", None, None)
        .await
        .is(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    call(&app, Method::POST, "/api/", None, None).await.is(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    call(&app, Method::GET, "/api/nothing", None, None).await.is(StatusCode::NOT_FOUND, "Not Found");
    call(&app, Method::POST, "/api/account/pw", None, None).await.is(StatusCode::NOT_FOUND, "Not Found");
    assert_eq!(users_in(&app, bc).await, 0, "nothing was written");
    assert_eq!(users_in(&app, TenantId::DEFAULT).await, 0);
}

async fn sign_up_problems_are_answered_in_the_dialects_words(b: Backend) {
    let app = TestApp::spawn(b).await;
    let bc = buddycloud_com(&app).await;
    let closed = TenantPolicy { signup_open: Some(false), ..Default::default() };
    bc_tenant(&app, "closed", &["closed.example"], closed).await;
    let no_email = TenantPolicy { require_email: Some(false), ..Default::default() };
    bc_tenant(&app, "open", &["open.example"], no_email).await;

    create(&app, "juliet@buddycloud.com", PW, "juliet@example.com").await;
    let again = json!({"username": "Juliet@buddycloud.com", "password": PW2, "email": "other@example.com"});
    json_post(&app, "/api/account", None, again).await.is(StatusCode::CONFLICT, "Conflict: username: is already taken");
    let same_mail = json!({"username": "romeo@buddycloud.com", "password": PW2, "email": "JULIET@example.com"});
    json_post(&app, "/api/account", None, same_mail)
        .await
        .is(StatusCode::CONFLICT, "Conflict: email: is already taken");
    // E-mail: required where the tenant's policy says so (the default), optional elsewhere.
    let a = json_post(&app, "/api/account", None, json!({"username": "nomail@buddycloud.com", "password": PW})).await;
    a.is(StatusCode::BAD_REQUEST, "Bad Request: email: is required");
    let a = json_post(&app, "/api/account", None, json!({"username": "nomail@open.example", "password": PW})).await;
    a.is(StatusCode::OK, "OK");
    let a = json_post(
        &app,
        "/api/account",
        None,
        json!({"username": "bad@buddycloud.com", "password": PW, "email": "not an address"}),
    )
    .await;
    a.is(StatusCode::BAD_REQUEST, "Bad Request: email: must be a valid e-mail address");
    let a = json_post(
        &app,
        "/api/account",
        None,
        json!({"username": "weak@buddycloud.com", "password": "short", "email": "w@example.com"}),
    )
    .await;
    assert!(a.status == StatusCode::BAD_REQUEST && a.body.starts_with("Bad Request: password: "), "{a:?}");
    let a = json_post(
        &app,
        "/api/account",
        None,
        json!({"username": "x y@buddycloud.com", "password": PW, "email": "xy@example.com"}),
    )
    .await;
    a.is(StatusCode::BAD_REQUEST, "Bad Request: username: may contain only letters, digits, '.', '_' and '-'");
    let a = json_post(
        &app,
        "/api/account",
        None,
        json!({"username": "late@closed.example", "password": PW, "email": "l@example.com"}),
    )
    .await;
    a.is(StatusCode::FORBIDDEN, "Forbidden: sign-up is closed");
    assert_eq!(users_in(&app, bc).await, 1);
}

async fn accounts_cross_between_the_dialect_and_the_native_api(b: Backend) {
    let app = TestApp::spawn(b).await;
    buddycloud_com(&app).await;
    enable_dialect(&app, TenantId::DEFAULT, Dialect::Buddycloud).await;
    // Made by the dialect, logged in natively.
    create(&app, "juliet@buddycloud.com", PW, "juliet@example.com").await;
    let res = app.post("/t/bc/v1/login", json!({"login": "juliet", "password": PW})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app.post("/t/bc/v1/login", json!({"login": "juliet@example.com", "password": PW})).await;
    assert_eq!(res.status(), StatusCode::OK);
    // Made natively, checked, changed and deleted through the dialect.
    app.user("ada", PW).await;
    check(&app, "/api/", "ada", PW).await.is(StatusCode::OK, "OK");
    check(&app, "/api/", "ada@example.com", PW).await.is(StatusCode::OK, "OK");
    let creds = Some(("ada", PW));
    json_post(&app, "/api/account/pw/change", creds, json!({"username": "ada", "password": PW2}))
        .await
        .is(StatusCode::OK, "OK");
    assert_eq!(app.login("ada", PW2).await.0, StatusCode::OK);
    call(&app, Method::DELETE, "/api/account", Some(("ada", PW2)), None).await.is(StatusCode::OK, "OK");
    assert_eq!(app.login("ada", PW2).await.0, StatusCode::UNAUTHORIZED);
}

async fn the_dialect_can_be_served_at_the_root(b: Backend) {
    let app = TestApp::spawn_with(b, |c| c.http.dialect_paths.buddycloud = "/".into()).await;
    enable_dialect(&app, TenantId::DEFAULT, Dialect::Buddycloud).await;
    let body = json!({"username": "root", "password": PW, "email": "root@example.com"});
    json_post(&app, "/account", None, body).await.is(StatusCode::OK, "OK");
    check(&app, "/", "root", PW).await.is(StatusCode::OK, "OK");
    json_post(&app, "/account/pw/reset", None, json!({"username": "root"})).await.is(StatusCode::OK, "OK");
    call(&app, Method::GET, "/nothing/here", None, None).await.is(StatusCode::NOT_FOUND, "Not Found");
    call(&app, Method::GET, "/api/", None, None).await.is(StatusCode::NOT_FOUND, "Not Found");
    // The other surfaces keep their paths.
    assert_eq!(app.login("root", PW).await.0, StatusCode::OK);
    assert_eq!(app.client.get(app.url("/healthz")).send().await.unwrap().status(), StatusCode::OK);
}
