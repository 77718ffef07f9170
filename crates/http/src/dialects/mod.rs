//! The legacy account APIs, one folder each. A dialect parses its wire format, calls the core
//! as the caller it authenticated, and answers in its wire format — success and every failure
//! alike. No dialect imports another, and none holds a rule of its own: limits, enumeration
//! resistance, the second factor, policy and audit come from the core.
//!
//! Each is mounted at its original path by default (`http.dialect_paths` moves it) and answers
//! only for tenants that switched it on (`policy.dialects`).

pub mod buddycloud;
pub mod metrixstream;
pub mod newspark;
pub mod ossn;
pub mod siberian;

use serde::{Deserialize, Serialize};

use crate::shared::{AppState, MountedSurface};

/// Where each dialect is mounted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DialectPaths {
    /// The Metrixstream site API (`?action=login`). Its document names no path.
    pub metrixstream: String,
    /// OSSN's services (`{ossn}/user_authenticate`).
    pub ossn: String,
    /// Newspark's services (`{newspark}/rest/users/confirmCredentials`, `{newspark}/json`).
    pub newspark: String,
    /// buddycloud's HTTP API (`{buddycloud}/account`, `{buddycloud}/`); `/` serves it at the
    /// root, as the original did behind its proxy.
    pub buddycloud: String,
    /// Siberian's account API (`{siberian}/create`, ...).
    pub siberian: String,
}

impl Default for DialectPaths {
    fn default() -> Self {
        Self {
            metrixstream: "/site/api".into(),
            ossn: "/api/v1.0".into(),
            newspark: "/services".into(),
            buddycloud: "/api".into(),
            siberian: "/admin/api_account".into(),
        }
    }
}

/// Paths the other surfaces own; no dialect may be mounted at or below them.
const RESERVED: [&str; 7] = ["/v1", "/ui", "/t", "/avatars", "/healthz", "/readyz", "/openapi.json"];

impl DialectPaths {
    /// Each dialect's name and path.
    pub fn all(&self) -> [(&'static str, &str); 5] {
        [
            ("metrixstream", &self.metrixstream),
            ("ossn", &self.ossn),
            ("newspark", &self.newspark),
            ("buddycloud", &self.buddycloud),
            ("siberian", &self.siberian),
        ]
    }

    /// Checks that every path is an absolute path of plain segments, that no two dialects
    /// share one, and that none takes a path of another surface.
    pub fn check(&self) -> Result<(), String> {
        let all = self.all();
        for (i, (name, p)) in all.iter().enumerate() {
            let plain = p.starts_with('/')
                && (p.len() == 1 || !p.ends_with('/'))
                && !p.contains("//")
                && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-~".contains(&b));
            if !plain {
                return Err(format!(
                    "http.dialect_paths.{name} must be a path such as /api (letters, digits, '/', '.', '_', '-', '~'; no trailing '/')"
                ));
            }
            if let Some(r) = RESERVED.iter().find(|r| super::shared::owns(r, p)) {
                return Err(format!("http.dialect_paths.{name} ({p}) lies under {r}, which another surface serves"));
            }
            if let Some((other, _)) = all[..i].iter().find(|(_, q)| q == p) {
                return Err(format!("http.dialect_paths.{name} and http.dialect_paths.{other} are both {p}"));
            }
        }
        Ok(())
    }
}

/// Every dialect, mounted where `paths` say.
pub fn surfaces(state: &AppState, paths: &DialectPaths) -> Vec<MountedSurface> {
    vec![
        metrixstream::surface(state, &paths.metrixstream),
        ossn::surface(state, &paths.ossn),
        newspark::surface(state, &paths.newspark),
        buddycloud::surface(state, &paths.buddycloud),
        siberian::surface(state, &paths.siberian),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_checked() {
        assert_eq!(DialectPaths::default().check(), Ok(()));
        let root = DialectPaths { buddycloud: "/".into(), ..DialectPaths::default() };
        assert_eq!(root.check(), Ok(()));
        for bad in ["api", "/api/", "/v1/legacy", "/ui", "/a b", "/x?y"] {
            let p = DialectPaths { ossn: bad.into(), ..DialectPaths::default() };
            assert!(p.check().is_err(), "{bad}");
        }
        let same = DialectPaths { ossn: "/api".into(), ..DialectPaths::default() };
        assert!(same.check().is_err());
    }
}
