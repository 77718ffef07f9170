//! Cookies every surface sets the same way: the session cookie (HttpOnly, `SameSite=Lax`,
//! `Secure` as configured, scoped to the tenant's path), and short-lived helper cookies.

use axum::http::{HeaderValue, header};
use axum::response::Response;
use portcullis_core::login::IssuedSession;

use super::credentials::HOST_PREFIX;
use super::{AppState, Client, CookieSecure};

/// Whether cookies set for this client carry `Secure`.
pub fn secure(st: &AppState, client: &Client) -> bool {
    match st.config.cookie_secure {
        CookieSecure::Always => true,
        CookieSecure::Never => false,
        CookieSecure::Auto => client.https,
    }
}

/// Sets the session cookie (or clears it with `None`).
pub fn set_session_cookie(st: &AppState, client: &Client, res: &mut Response, session: Option<&IssuedSession>) {
    let (value, max_age) = match session {
        Some(s) => (s.token.expose(), s.session.expires_at.since(st.core.now()).as_secs()),
        None => ("", 0),
    };
    let cookie = Cookie { name: &st.config.cookie_name, value, path: &client.cookie_path, max_age, same_site: "Lax" };
    cookie.set(res, secure(st, client));
}

/// A cookie to set.
#[derive(Debug)]
pub struct Cookie<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its value (empty to clear it, with `max_age` 0).
    pub value: &'a str,
    /// The path it is sent for.
    pub path: &'a str,
    /// Seconds it lives; 0 clears it.
    pub max_age: u64,
    /// `Lax` or `Strict`.
    pub same_site: &'static str,
}

impl Cookie<'_> {
    /// Adds it to the response (HttpOnly always). A `Secure` cookie for the whole site gets
    /// the `__Host-` prefix, which browsers keep from being set or shadowed by any other site
    /// (a sibling subdomain included); cookies under a tenant's path cannot have it.
    pub fn set(&self, res: &mut Response, secure: bool) {
        let name = if secure && self.path == "/" && !self.name.starts_with("__") {
            format!("{HOST_PREFIX}{}", self.name)
        } else {
            self.name.to_owned()
        };
        let text = format!(
            "{}={}; Path={}; Max-Age={}; HttpOnly; SameSite={}{}",
            name,
            self.value,
            self.path,
            self.max_age,
            self.same_site,
            if secure { "; Secure" } else { "" }
        );
        if let Ok(v) = HeaderValue::from_str(&text) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
}
