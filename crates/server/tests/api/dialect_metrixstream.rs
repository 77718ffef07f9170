//! The Metrixstream dialect over real HTTP: every request of its document (log-in, sign-up,
//! log-out, forgotten password) and the variants its clients send (GET and POST, url-encoded
//! and multipart forms, `@` in the username, parameters missing or extra), answered field by
//! field as the document and `docs/dialects/metrixstream.md` say; enumeration, timing, the
//! second factor, malformed input, tenants without the dialect, the audit log, and accounts
//! crossing between the dialect and the native API. This module holds what the tests share.

mod calls;
mod safety;
mod signup;

use portcullis_core::admin::ListUsers;
use portcullis_core::{Dialect, TenantId};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Backend, PW, TestApp, enable_dialect, op};

const API: &str = "/site/api";

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

/// Logs in through the dialect; returns the session token.
async fn login_token(app: &TestApp, name: &str) -> String {
    let r = post(app, &[("action", "login"), ("username", name), ("password", PW)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json()["session"]["token"].as_str().unwrap().to_owned()
}
