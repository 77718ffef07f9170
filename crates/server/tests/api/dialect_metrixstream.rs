//! The Metrixstream dialect over real HTTP: every request of its document (log-in, sign-up,
//! log-out, forgotten password) and the variants its clients send (GET and POST, url-encoded
//! and multipart forms, `@` in the username, parameters missing or extra), answered field by
//! field as the document and `docs/dialects/metrixstream.md` say; enumeration, timing, the
//! second factor, malformed input, tenants without the dialect, the audit log, and accounts
//! crossing between the dialect and the native API.

use std::time::Duration;

use portcullis_core::admin::ListUsers;
use portcullis_core::model::{AttributeKind, UserStatus};
use portcullis_core::store::{AuditQuery, TenantUpdate, UserUpdate};
use portcullis_core::{Dialect, TenantId, UserId};
use portcullis_testkit::totp_code;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both;
use crate::support::{Backend, PW, PW2, SmtpSink, TestApp, define_attribute, enable_dialect, op, tenant};

const API: &str = "/site/api";

both!(
    login_answers_as_the_document_says,
    login_answers_xml_when_asked,
    signup_takes_every_field_of_the_document,
    signup_refusals_name_the_parameters_and_write_nothing,
    unknown_user_and_wrong_password_get_identical_answers_at_identical_cost,
    forgotpassword_answers_ok_for_anyone_and_mails_a_link_to_accounts,
    logout_ends_the_session_presented_by_bearer_token_or_cookie,
    browsers_on_other_sites_cannot_ride_on_the_cookie,
    second_factor_is_asked_for_and_taken_as_a_code,
    accounts_that_may_not_log_in_are_told_so_after_the_password,
    malformed_requests_get_clear_errors_in_the_dialects_format,
    tenants_without_the_dialect_get_the_answer_of_no_tenant,
    limits_and_overload_answer_in_the_dialects_format,
    the_dialects_calls_are_audited_with_its_surface,
    accounts_cross_between_the_dialect_and_the_native_api,
    the_path_moves_with_the_configuration,
);

/// An answer: status, headers and body.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// The body as JSON, checking that it is declared so.
    fn json(&self) -> Value {
        assert_eq!(self.header("content-type"), Some("application/json"), "{}", self.text);
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// A failure: its status, the error shape with exactly these keys, and its code.
    fn error(&self, status: StatusCode, code: &str) -> Value {
        assert_eq!(self.status, status, "{}", self.text);
        let v = self.json();
        assert_eq!(v["status"], "error", "{v}");
        assert_eq!(v["code"], code, "{v}");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let allowed = ["status", "code", "message", "fields", "second_factor"];
        assert!(keys.iter().all(|k| allowed.contains(k)) && keys[..3] == ["status", "code", "message"], "{v}");
        v
    }

    /// The session cookie set, if any.
    fn cookie(&self) -> Option<&str> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap())
            .find(|c| c.starts_with("portcullis_session="))
    }
}

/// A request body.
enum Body<'a> {
    None,
    Form(&'a [(&'a str, &'a str)]),
    Multipart(&'a [(&'a str, &'a str)]),
    Raw(&'a str, String),
}

async fn send(app: &TestApp, method: Method, path: &str, body: Body<'_>, headers: &[(&str, &str)]) -> Reply {
    let mut req = app.client.request(method, app.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req = match body {
        Body::None => req,
        Body::Form(pairs) => req
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(pairs).unwrap()),
        Body::Multipart(pairs) => {
            let mut b = String::new();
            for (k, v) in pairs {
                b.push_str(&format!("--XyZ\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"));
            }
            b.push_str("--XyZ--\r\n");
            req.header("content-type", "multipart/form-data; boundary=XyZ").body(b)
        }
        Body::Raw(ct, text) => req.header("content-type", ct).body(text),
    };
    let res = req.send().await.unwrap();
    Reply { status: res.status(), headers: res.headers().clone(), text: res.text().await.unwrap() }
}

/// POST with a url-encoded form.
async fn post(app: &TestApp, pairs: &[(&str, &str)]) -> Reply {
    send(app, Method::POST, API, Body::Form(pairs), &[]).await
}

/// GET with the parameters in the query string.
async fn get(app: &TestApp, pairs: &[(&str, &str)]) -> Reply {
    let q = serde_urlencoded::to_string(pairs).unwrap();
    send(app, Method::GET, &format!("{API}?{q}"), Body::None, &[]).await
}

/// An application with the dialect switched on for the default tenant.
async fn spawn(b: Backend) -> TestApp {
    let app = TestApp::spawn(b).await;
    enable_dialect(&app, TenantId::DEFAULT, Dialect::Metrixstream).await;
    app
}

async fn user_id(app: &TestApp, tenant: TenantId, login: &str) -> i64 {
    app.core.user_by_login(&op(), tenant, &portcullis_core::parse::LoginKey::from_login(login)).await.unwrap().id.0
}

async fn user_count(app: &TestApp, tenant: TenantId) -> usize {
    app.core.list_users(&op(), tenant, ListUsers { limit: 100, ..Default::default() }).await.unwrap().len()
}

/// A successful log-in, field by field: `status`, `item` → `user` → `id`, `username`,
/// `email`, and `session` with its token and expiry, the token also set as the session
/// cookie. Returns the token.
fn assert_logged_in(r: &Reply, id: i64, username: &str, email: &str) -> String {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v = r.json();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["status", "item", "session"], "{v}");
    assert_eq!(v["status"], "ok");
    assert_eq!(v["item"], json!({"user": {"id": id, "username": username, "email": email}}));
    let session = v["session"].as_object().unwrap();
    assert_eq!(session.keys().collect::<Vec<_>>(), ["token", "expires_at"]);
    let token = session["token"].as_str().unwrap();
    assert!(token.starts_with("pcs_") && token.len() >= 4 + 43, "{token}");
    let expires = session["expires_at"].as_str().unwrap();
    time::OffsetDateTime::parse(expires, &time::format_description::well_known::Rfc3339).unwrap();
    let cookie = r.cookie().unwrap();
    assert!(cookie.starts_with(&format!("portcullis_session={token};")), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    token.to_owned()
}

/// The text of the first `<tag>` of an XML document.
fn tag<'a>(xml: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let start = xml.find(&open).unwrap_or_else(|| panic!("no <{tag}> in {xml}")) + open.len();
    let end = start + xml[start..].find('<').unwrap();
    &xml[start..end]
}

async fn login_answers_as_the_document_says(b: Backend) {
    let app = spawn(b).await;
    app.user("ada", PW).await;
    let id = user_id(&app, TenantId::DEFAULT, "ada").await;

    // The document's request, as a form POST, a GET, a multipart POST; `@` in the username
    // is the e-mail address; extra parameters are ignored.
    let by_post = post(&app, &[("action", "login"), ("username", "ada"), ("password", PW)]).await;
    let token = assert_logged_in(&by_post, id, "ada", "ada@example.com");
    assert_eq!(app.session_status(&token).await, StatusCode::OK, "a session like any other");
    let by_get = get(&app, &[("action", "login"), ("username", "ADA"), ("password", PW)]).await;
    assert_logged_in(&by_get, id, "ada", "ada@example.com");
    let multipart = [("action", "login"), ("username", "ada@example.com"), ("password", PW)];
    let by_multipart = send(&app, Method::POST, API, Body::Multipart(&multipart), &[]).await;
    assert_logged_in(&by_multipart, id, "ada", "ada@example.com");
    let extra = [("action", "LOGIN"), ("username", " Ada@Example.com "), ("password", PW), ("submit", "Log in")];
    assert_logged_in(&post(&app, &extra).await, id, "ada", "ada@example.com");
    // The action in the query string, the credentials in the body.
    let split = send(
        &app,
        Method::POST,
        &format!("{API}?action=login"),
        Body::Form(&[("username", "ada"), ("password", PW)]),
        &[],
    )
    .await;
    assert_logged_in(&split, id, "ada", "ada@example.com");
    // At the trailing-slash path too.
    let slash = send(
        &app,
        Method::POST,
        &format!("{API}/"),
        Body::Form(&[("action", "login"), ("username", "ada"), ("password", PW)]),
        &[],
    )
    .await;
    assert_logged_in(&slash, id, "ada", "ada@example.com");

    // Missing parameters are named.
    let v = post(&app, &[("action", "login")]).await.error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(v["fields"], json!({"password": "is required", "username": "is required"}));
    let v = post(&app, &[("action", "login"), ("username", "ada")])
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(v["fields"], json!({"password": "is required"}));
    let v = get(&app, &[("action", "login"), ("username", " "), ("password", PW)])
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(v["fields"], json!({"username": "is required"}));
    // A password is taken as typed: with spaces around it, it is another password.
    let padded = format!(" {PW} ");
    post(&app, &[("action", "login"), ("username", "ada"), ("password", &padded)])
        .await
        .error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    // An over-long username names nobody.
    let long = "a".repeat(5000);
    let r = post(&app, &[("action", "login"), ("username", &long), ("password", PW)]).await;
    r.error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    assert!(r.cookie().is_none());
}

async fn login_answers_xml_when_asked(b: Backend) {
    let app = spawn(b).await;
    app.user("xena", PW).await;
    let id = user_id(&app, TenantId::DEFAULT, "xena").await;
    let creds = [("action", "login"), ("username", "xena"), ("password", PW)];
    for (path, headers) in [
        (API.to_owned(), vec![("accept", "application/xml")]),
        (API.to_owned(), vec![("accept", "text/xml, application/json;q=0.5")]),
        (format!("{API}?format=xml"), vec![]),
        (format!("{API}?format=XML"), vec![("accept", "application/json")]),
    ] {
        let r = send(&app, Method::POST, &path, Body::Form(&creds), &headers).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.header("content-type"), Some("application/xml; charset=utf-8"));
        let token = tag(&r.text, "token");
        let expires = tag(&r.text, "expires_at");
        assert_eq!(
            r.text,
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<response>\n  <status>ok</status>\n  <item>\n    <user>\n      \
                 <id>{id}</id>\n      <username>xena</username>\n      <email>xena@example.com</email>\n    </user>\n  \
                 </item>\n  <session>\n    <token>{token}</token>\n    <expires_at>{expires}</expires_at>\n  </session>\n\
                 </response>\n"
            )
        );
        assert!(r.cookie().unwrap().starts_with(&format!("portcullis_session={token};")));
    }
    // `format` in a form body counts too; failures come in XML alike.
    let wrong = [("action", "login"), ("username", "xena"), ("password", PW2), ("format", "xml")];
    let r = post(&app, &wrong).await;
    assert_eq!(
        (r.status, r.header("content-type")),
        (StatusCode::UNAUTHORIZED, Some("application/xml; charset=utf-8"))
    );
    assert_eq!(
        r.text,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<response>\n  <status>error</status>\n  \
         <code>invalid_credentials</code>\n  <message>The username or password is incorrect.</message>\n</response>\n"
    );
    let r = send(&app, Method::POST, API, Body::Form(&[("action", "login")]), &[("accept", "application/xml")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text.contains(
            "<fields>\n    <password>is required</password>\n    <username>is required</username>\n  </fields>"
        ),
        "{}",
        r.text
    );
    // A browser's default Accept prefers HTML: it gets JSON.
    let browser = [("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")];
    let r = send(&app, Method::POST, API, Body::Form(&creds), &browser).await;
    assert_logged_in(&r, id, "xena", "xena@example.com");
    let r = send(&app, Method::POST, &format!("{API}?format=php"), Body::Form(&creds), &[]).await;
    r.error(StatusCode::BAD_REQUEST, "invalid_format");
    assert!(r.cookie().is_none(), "nothing was done");
}

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

async fn forgotpassword_answers_ok_for_anyone_and_mails_a_link_to_accounts(b: Backend) {
    let (app, sink) = TestApp::spawn_with_mail(b, |_| {}).await;
    enable_dialect(&app, TenantId::DEFAULT, Dialect::Metrixstream).await;
    app.user("pia", PW).await;
    wait_mail(&sink, "pia@example.com", 1).await;
    let mut answers = Vec::new();
    for name in ["pia", "nobody", "PIA@example.com", "nobody@example.com"] {
        let before = app.core.hasher().verifications();
        let r = post(&app, &[("action", "forgotpassword"), ("username", name)]).await;
        assert_eq!(app.core.hasher().verifications(), before, "{name}: no password work either way");
        answers.push((r.status, r.header("content-type").map(str::to_owned), r.cookie().map(str::to_owned), r.text));
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    assert_eq!(answers[0].0, StatusCode::OK);
    assert_eq!(serde_json::from_str::<Value>(&answers[0].3).unwrap(), json!({"status": "ok"}));
    // By GET, in XML.
    let r = get(&app, &[("action", "forgotpassword"), ("username", "nobody"), ("format", "xml")]).await;
    assert_eq!(r.text, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<response>\n  <status>ok</status>\n</response>\n");

    // The account got two links (by username and by address), nobody else anything; no
    // password travels by mail.
    let first = wait_mail(&sink, "pia@example.com", 2).await;
    let second = wait_mail(&sink, "pia@example.com", 3).await;
    for m in [&first, &second] {
        assert!(m.subject.contains("Set a new password"), "{}", m.subject);
        assert!(!m.text.contains(PW));
    }
    let token = first.token(&format!("{}/ui/reset", app.base)).unwrap();
    let res = app.post("/v1/password/reset", json!({"token": token, "password": PW2})).await;
    assert_eq!(res.status(), StatusCode::OK, "the link works");
    let r = post(&app, &[("action", "login"), ("username", "pia"), ("password", PW2)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(sink.messages().iter().all(|m| m.to == "pia@example.com"), "{:?}", sink.messages());

    // No identifier, or one no account could have: a clear refusal, the same for everyone.
    let v =
        post(&app, &[("action", "forgotpassword")]).await.error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(v["fields"], json!({"username": "is required"}));
    let long = "a".repeat(400);
    let v = post(&app, &[("action", "forgotpassword"), ("username", &long)])
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(v["fields"]["username"].is_string());
}

async fn wait_mail(sink: &SmtpSink, to: &str, n: usize) -> crate::support::ReceivedMail {
    let got = sink.wait_for(to, n, Duration::from_secs(15)).await;
    assert_eq!(got.len(), n, "messages to {to}: {got:#?}");
    got[n - 1].clone()
}

async fn logout_ends_the_session_presented_by_bearer_token_or_cookie(b: Backend) {
    let app = spawn(b).await;
    app.user("leo", PW).await;
    let fresh = || login_token(&app, "leo");

    // Bearer.
    let t = fresh().await;
    let auth = format!("Bearer {t}");
    let r = send(&app, Method::POST, API, Body::Form(&[("action", "logout")]), &[("authorization", &auth)]).await;
    assert_eq!((r.status, r.json()), (StatusCode::OK, json!({"status": "ok"})));
    assert!(r.cookie().unwrap().starts_with("portcullis_session=;") && r.cookie().unwrap().contains("Max-Age=0"));
    assert_eq!(app.session_status(&t).await, StatusCode::UNAUTHORIZED, "the session ended");
    // Twice: nobody is logged in any more.
    let r = send(&app, Method::POST, API, Body::Form(&[("action", "logout")]), &[("authorization", &auth)]).await;
    r.error(StatusCode::UNAUTHORIZED, "not_logged_in");
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"portcullis\""));

    // A `token` parameter, by GET or POST.
    let t = fresh().await;
    assert_eq!(get(&app, &[("action", "logout"), ("token", &t)]).await.status, StatusCode::OK);
    assert_eq!(app.session_status(&t).await, StatusCode::UNAUTHORIZED);
    let t = fresh().await;
    assert_eq!(post(&app, &[("action", "logout"), ("token", &t)]).await.status, StatusCode::OK);
    assert_eq!(app.session_status(&t).await, StatusCode::UNAUTHORIZED);

    // The cookie, as a browser on the site sends it.
    let t = fresh().await;
    let cookie = format!("other=1; portcullis_session={t}");
    let r = send(
        &app,
        Method::POST,
        API,
        Body::Form(&[("action", "logout")]),
        &[("cookie", &cookie), ("sec-fetch-site", "same-origin")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(app.session_status(&t).await, StatusCode::UNAUTHORIZED);
    let t = fresh().await;
    let cookie = format!("portcullis_session={t}");
    let r = send(&app, Method::GET, &format!("{API}?action=logout"), Body::None, &[("cookie", &cookie)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(app.session_status(&t).await, StatusCode::UNAUTHORIZED);

    // The header wins over a parameter; another scheme is no session, and the cookie counts.
    let t = fresh().await;
    let r = send(
        &app,
        Method::POST,
        API,
        Body::Form(&[("action", "logout"), ("token", &t)]),
        &[("authorization", "Bearer pcs_nothing")],
    )
    .await;
    r.error(StatusCode::UNAUTHORIZED, "not_logged_in");
    assert_eq!(app.session_status(&t).await, StatusCode::OK);
    let cookie = format!("portcullis_session={t}");
    let r = send(
        &app,
        Method::POST,
        API,
        Body::Form(&[("action", "logout")]),
        &[("authorization", "Basic c2l0ZTpzaXRl"), ("cookie", &cookie)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(app.session_status(&t).await, StatusCode::UNAUTHORIZED);

    // Nothing presented.
    post(&app, &[("action", "logout")]).await.error(StatusCode::UNAUTHORIZED, "not_logged_in");
    // A session of another tenant is none here.
    let acme = tenant(&app, "acme", &[]).await;
    enable_dialect(&app, acme, Dialect::Metrixstream).await;
    let t = fresh().await;
    let r = send(&app, Method::POST, &format!("/t/acme{API}"), Body::Form(&[("action", "logout"), ("token", &t)]), &[])
        .await;
    r.error(StatusCode::UNAUTHORIZED, "not_logged_in");
    assert_eq!(app.session_status(&t).await, StatusCode::OK);
}

/// Logs in through the dialect; returns the session token.
async fn login_token(app: &TestApp, name: &str) -> String {
    let r = post(app, &[("action", "login"), ("username", name), ("password", PW)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json()["session"]["token"].as_str().unwrap().to_owned()
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

/// Signs `name` up natively and sets up an authenticator; returns its secret.
async fn enrolled(app: &TestApp, name: &str) -> String {
    let token = app.user(name, PW).await;
    let (status, e) = app.send(Method::POST, "/v1/me/second-factor/totp", &token, Some(json!({"password": PW}))).await;
    assert_eq!(status, StatusCode::OK, "{e}");
    let secret = e["secret"].as_str().unwrap().to_owned();
    let (status, c) = app
        .send(Method::POST, "/v1/me/second-factor/totp/confirm", &token, Some(json!({"code": code(app, &secret)})))
        .await;
    assert_eq!(status, StatusCode::OK, "{c}");
    secret
}

fn code(app: &TestApp, secret: &str) -> String {
    totp_code(secret, u64::try_from(app.core.now().unix_seconds()).unwrap())
}

async fn second_factor_is_asked_for_and_taken_as_a_code(b: Backend) {
    let app = spawn(b).await;
    let secret = enrolled(&app, "tess").await;
    let id = user_id(&app, TenantId::DEFAULT, "tess").await;
    app.clock.advance(Duration::from_secs(30));

    // Without a code: the password was right, the code is asked for (with a step token).
    let r = post(&app, &[("action", "login"), ("username", "tess"), ("password", PW)]).await;
    let v = r.error(StatusCode::UNAUTHORIZED, "second_factor_required");
    assert!(r.cookie().is_none());
    let step = v["second_factor"]["step_token"].as_str().unwrap().to_owned();
    assert!(v["second_factor"]["expires_at"].is_string());
    // A wrong password says nothing of the second factor.
    post(&app, &[("action", "login"), ("username", "tess"), ("password", PW2)])
        .await
        .error(StatusCode::UNAUTHORIZED, "invalid_credentials");

    // Retried with the code: logged in.
    let c = code(&app, &secret);
    let wrong = if c == "000000" { "111111" } else { "000000" };
    post(&app, &[("action", "login"), ("username", "tess"), ("password", PW), ("code", wrong)])
        .await
        .error(StatusCode::UNAUTHORIZED, "second_factor_invalid");
    let r = post(&app, &[("action", "login"), ("username", "tess"), ("password", PW), ("code", &c)]).await;
    assert_logged_in(&r, id, "tess", "tess@example.com");
    // A code works once.
    post(&app, &[("action", "login"), ("username", "tess"), ("password", PW), ("code", &c)])
        .await
        .error(StatusCode::UNAUTHORIZED, "second_factor_invalid");

    // Or the step token with the next code, without the password.
    app.clock.advance(Duration::from_secs(30));
    post(&app, &[("action", "login"), ("step_token", &step)])
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let r = post(&app, &[("action", "login"), ("step_token", &step), ("code", &code(&app, &secret))]).await;
    assert_logged_in(&r, id, "tess", "tess@example.com");
    let r = post(&app, &[("action", "login"), ("step_token", &step), ("code", &code(&app, &secret))]).await;
    r.error(StatusCode::UNAUTHORIZED, "invalid_token");
    post(&app, &[("action", "login"), ("step_token", "pcs_forged"), ("code", "123456")])
        .await
        .error(StatusCode::UNAUTHORIZED, "invalid_token");
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
    let key = crate::support::api_key(&app, Some(TenantId::DEFAULT), &["tenant:admin"]).await;
    let (status, body) = app.send(Method::GET, "/v1/admin/audit?action=logout", &key, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["events"][0]["details"]["surface"], "metrixstream", "{body}");
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
