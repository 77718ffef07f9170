//! Credentials a client sends in headers and cookies: `Authorization: Bearer`, HTTP Basic, and
//! cookies. Parsing only: what a credential is worth is the core's to decide, and how a
//! missing or malformed one is answered is each surface's.

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use portcullis_core::Password;

/// What the `Authorization` header holds. `Debug` never shows a credential.
#[derive(PartialEq, Eq)]
pub enum Authorization {
    /// No `Authorization` header.
    Absent,
    /// `Bearer <token>`.
    Bearer(String),
    /// `Basic <base64(user:password)>`, decoded.
    Basic(BasicCredentials),
    /// Another scheme, or a header that cannot be read.
    Other,
}

impl std::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Absent => f.write_str("Absent"),
            Self::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Self::Basic(b) => f.debug_tuple("Basic").field(b).finish(),
            Self::Other => f.write_str("Other"),
        }
    }
}

/// Decoded HTTP Basic credentials.
#[derive(PartialEq, Eq)]
pub struct BasicCredentials {
    /// The user part (a login, or a key's name for some dialects).
    pub user: String,
    /// The password part.
    pub password: String,
}

impl BasicCredentials {
    /// The password part, as a secret.
    pub fn password(&self) -> Password {
        Password::new(self.password.clone())
    }
}

impl std::fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicCredentials").field("user", &self.user).field("password", &"<redacted>").finish()
    }
}

/// Reads the `Authorization` header (the scheme is case-insensitive).
pub fn authorization(headers: &HeaderMap) -> Authorization {
    let Some(v) = headers.get(header::AUTHORIZATION) else { return Authorization::Absent };
    let Ok(v) = v.to_str() else { return Authorization::Other };
    let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Authorization::Bearer(rest.to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD.decode(rest).ok().and_then(|b| String::from_utf8(b).ok());
        if let Some((user, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) {
            return Authorization::Basic(BasicCredentials { user: user.to_owned(), password: password.to_owned() });
        }
    }
    Authorization::Other
}

/// The value of a cookie, from any `Cookie` header.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    // A cookie set over HTTPS for the whole site carries the `__Host-` prefix (see
    // `cookies::Cookie::set`); it wins over one of the plain name.
    let host = format!("{HOST_PREFIX}{name}");
    let pairs = || {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
    };
    pairs()
        .find(|(k, _)| *k == host)
        .or_else(|| pairs().find(|(k, _)| *k == name))
        .map(|(_, v)| v.trim_matches('"').to_owned())
}

/// The prefix browsers hold a cookie to: set over HTTPS, for the path `/`, without a domain,
/// so that no other site (a sibling subdomain included) can set or shadow it.
pub const HOST_PREFIX: &str = "__Host-";

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(v: &str) -> Authorization {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, v.parse().unwrap());
        authorization(&h)
    }

    #[test]
    fn bearer_and_basic_are_read_and_anything_else_is_other() {
        assert_eq!(authorization(&HeaderMap::new()), Authorization::Absent);
        assert_eq!(auth("Bearer pcs_abc"), Authorization::Bearer("pcs_abc".into()));
        assert_eq!(auth("bearer  pcs_abc "), Authorization::Bearer("pcs_abc".into()));
        // "ada:open: sesame" in base64: the password may hold a colon.
        match auth("Basic YWRhOm9wZW46IHNlc2FtZQ==") {
            Authorization::Basic(b) => assert_eq!((b.user.as_str(), b.password.as_str()), ("ada", "open: sesame")),
            other => panic!("{other:?}"),
        }
        assert_eq!(auth("Basic !!!"), Authorization::Other);
        assert_eq!(auth("Basic YWRh"), Authorization::Other, "no colon");
        assert_eq!(auth("Digest x"), Authorization::Other);
        let b = BasicCredentials { user: "u".into(), password: "secret".into() };
        assert!(!format!("{b:?}").contains("secret"));
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, "a=1; portcullis_session=pcs_abc; b=2".parse().unwrap());
        assert_eq!(cookie(&h, "portcullis_session").as_deref(), Some("pcs_abc"));
        assert_eq!(cookie(&h, "missing"), None);
    }
}
