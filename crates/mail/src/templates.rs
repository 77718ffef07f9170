//! The templates of every message: a subject, a text part and an HTML part per kind, built in
//! and overridable by the operator — for every tenant, or for one.
//!
//! An override directory holds files named like the built-in ones (`password_reset.txt`,
//! `password_reset.html`, `password_reset.subject.txt`, `layout.html`, …); a subdirectory
//! named after a tenant's slug holds that tenant's own. For each part the tenant's file wins,
//! then the directory's, then the built-in one. Templates are read and checked once, when the
//! server starts: a template that does not parse stops the start with its name and line.

use std::collections::BTreeMap;
use std::path::Path;

use minijinja::{AutoEscape, Environment};
use portcullis_core::mail::ComposedMail;
use portcullis_core::model::MailKind;

/// The built-in templates, by name.
const BUILT_IN: &[(&str, &str)] = &[
    ("layout.html", include_str!("../templates/layout.html")),
    ("email_verification.subject.txt", include_str!("../templates/email_verification.subject.txt")),
    ("email_verification.txt", include_str!("../templates/email_verification.txt")),
    ("email_verification.html", include_str!("../templates/email_verification.html")),
    ("email_changed.subject.txt", include_str!("../templates/email_changed.subject.txt")),
    ("email_changed.txt", include_str!("../templates/email_changed.txt")),
    ("email_changed.html", include_str!("../templates/email_changed.html")),
    ("password_reset.subject.txt", include_str!("../templates/password_reset.subject.txt")),
    ("password_reset.txt", include_str!("../templates/password_reset.txt")),
    ("password_reset.html", include_str!("../templates/password_reset.html")),
    ("login_link.subject.txt", include_str!("../templates/login_link.subject.txt")),
    ("login_link.txt", include_str!("../templates/login_link.txt")),
    ("login_link.html", include_str!("../templates/login_link.html")),
    ("test.subject.txt", include_str!("../templates/test.subject.txt")),
    ("test.txt", include_str!("../templates/test.txt")),
    ("test.html", include_str!("../templates/test.html")),
];

/// Longest template file read, in bytes.
const MAX_TEMPLATE_BYTES: u64 = 256 * 1024;

/// A message rendered, ready to send.
pub struct Rendered {
    /// The subject line (one line).
    pub subject: String,
    /// The text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
}

impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The body may hold a one-time link.
        f.debug_struct("Rendered").field("subject", &self.subject).finish_non_exhaustive()
    }
}

/// Why templates could not be loaded or rendered.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// A file of the override directory could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: String,
        /// What went wrong.
        error: String,
    },
    /// A template does not parse, or failed to render.
    #[error("template {0}")]
    Template(String),
}

/// The loaded templates.
pub struct Templates {
    env: Environment<'static>,
    /// Names of the templates that exist (built-in and overrides).
    names: std::collections::BTreeSet<String>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates").field("names", &self.names).finish()
    }
}

impl Templates {
    /// The built-in templates, overridden by those in `dir` (if given).
    pub fn load(dir: Option<&Path>) -> Result<Self, TemplateError> {
        let mut files: BTreeMap<String, String> =
            BUILT_IN.iter().map(|(n, t)| ((*n).to_owned(), (*t).to_owned())).collect();
        if let Some(dir) = dir {
            read_overrides(dir, None, &mut files)?;
        }
        let mut env = Environment::new();
        env.set_auto_escape_callback(|name| if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None });
        let names = files.keys().cloned().collect();
        for (name, text) in files {
            let shown = name.clone();
            env.add_template_owned(name, text).map_err(|e| TemplateError::Template(format!("{shown}: {e}")))?;
        }
        let templates = Self { env, names };
        templates.check()?;
        Ok(templates)
    }

    /// Renders every template once with sample values, so that a mistake shows at start-up
    /// rather than when the first message of its kind leaves.
    fn check(&self) -> Result<(), TemplateError> {
        let slugs: std::collections::BTreeSet<&str> =
            self.names.iter().filter_map(|n| n.split_once('/').map(|(slug, _)| slug)).collect();
        for kind in MailKind::ALL {
            for slug in std::iter::once("").chain(slugs.iter().copied()) {
                let sample = sample(kind, slug);
                self.render(&sample)?;
            }
        }
        Ok(())
    }

    /// Renders a composed message with its tenant's templates.
    pub fn render(&self, m: &ComposedMail) -> Result<Rendered, TemplateError> {
        let part = |suffix: &str| -> Result<String, TemplateError> {
            let own = format!("{}/{}.{suffix}", m.tenant_slug, m.kind.as_str());
            let shared = format!("{}.{suffix}", m.kind.as_str());
            let name = if !m.tenant_slug.is_empty() && self.names.contains(&own) { own } else { shared };
            let t = self.env.get_template(&name).map_err(|e| TemplateError::Template(format!("{name}: {e}")))?;
            t.render(&m.vars).map_err(|e| TemplateError::Template(format!("{name}: {e}")))
        };
        let subject: String = part("subject.txt")?
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .filter(|c| !c.is_control())
            .collect();
        Ok(Rendered { subject, text: part("txt")?, html: part("html")? })
    }
}

/// Reads the `.txt` and `.html` files of `dir` (and, at the top, of each tenant's
/// subdirectory) into `files`, named as the built-in ones (`slug/name` for a tenant's).
fn read_overrides(dir: &Path, slug: Option<&str>, files: &mut BTreeMap<String, String>) -> Result<(), TemplateError> {
    let read_err =
        |p: &Path, e: std::io::Error| TemplateError::Read { path: p.display().to_string(), error: e.to_string() };
    let entries = std::fs::read_dir(dir).map_err(|e| read_err(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| read_err(dir, e))?;
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else { continue };
        let meta = entry.metadata().map_err(|e| read_err(&path, e))?;
        if meta.is_dir() {
            if slug.is_none() && !name.starts_with('.') {
                read_overrides(&path, Some(&name), files)?;
            }
            continue;
        }
        if !(name.ends_with(".txt") || name.ends_with(".html")) {
            continue;
        }
        if meta.len() > MAX_TEMPLATE_BYTES {
            return Err(TemplateError::Read { path: path.display().to_string(), error: "larger than 256 KiB".into() });
        }
        let text = std::fs::read_to_string(&path).map_err(|e| read_err(&path, e))?;
        let key = match slug {
            Some(s) => format!("{s}/{name}"),
            None => name,
        };
        files.insert(key, text);
    }
    Ok(())
}

/// A message of `kind` with every variable set, to try the templates with.
fn sample(kind: MailKind, slug: &str) -> ComposedMail {
    let mut vars = BTreeMap::new();
    for (k, v) in [
        ("tenant_name", "Example"),
        ("public_url", "https://auth.example.com"),
        ("link", "https://auth.example.com/ui/verify?token=pcv_sample"),
        ("expires_in", "30 minutes"),
        ("name", "Alice"),
        ("new_email", "new@example.com"),
        ("old_email", "old@example.com"),
    ] {
        vars.insert(k, v.to_owned());
    }
    ComposedMail { to: "alice@example.com".into(), kind, tenant_slug: slug.to_owned(), vars }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(kind: MailKind, slug: &str, name: &str) -> ComposedMail {
        let mut m = sample(kind, slug);
        m.vars.insert("name", name.to_owned());
        m
    }

    #[test]
    fn every_kind_renders_with_its_link_in_both_parts() {
        let t = Templates::load(None).unwrap();
        for kind in MailKind::ALL {
            let r = t.render(&mail(kind, "", "Alice")).unwrap();
            assert!(!r.subject.is_empty() && !r.subject.contains('\n'), "{kind:?}");
            assert!(r.subject.contains("Example"), "{kind:?}: {}", r.subject);
            assert!(r.html.contains("<html lang=\"en\">"), "{kind:?}");
            if matches!(kind, MailKind::EmailVerification | MailKind::PasswordReset | MailKind::LoginLink) {
                assert!(r.text.contains("https://auth.example.com/ui/verify?token=pcv_sample"), "{kind:?}");
                // HTML escaping writes `/` as `&#x2f;`, which every reader decodes.
                let href = r.html.replace("&#x2f;", "/");
                assert!(href.contains("href=\"https://auth.example.com/ui/verify?token=pcv_sample\""), "{kind:?}");
                assert!(r.text.contains("30 minutes"), "{kind:?}");
            }
        }
    }

    #[test]
    fn html_escapes_what_users_typed_and_text_keeps_it() {
        let t = Templates::load(None).unwrap();
        let r = t.render(&mail(MailKind::PasswordReset, "", "<b>Mallory</b>")).unwrap();
        assert!(
            r.html.contains("&lt;b&gt;Mallory&lt;&#x2f;b&gt;") || r.html.contains("&lt;b&gt;Mallory"),
            "{}",
            r.html
        );
        assert!(!r.html.contains("<b>Mallory"));
        assert!(r.text.contains("<b>Mallory</b>"));
    }

    #[test]
    fn a_tenant_overrides_what_it_has_and_inherits_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("password_reset.subject.txt"), "Reset for {{ tenant_name }}").unwrap();
        std::fs::create_dir(dir.path().join("acme")).unwrap();
        std::fs::write(dir.path().join("acme/password_reset.txt"), "Acme says: {{ link }}").unwrap();
        std::fs::write(dir.path().join("notes.md"), "ignored").unwrap();
        let t = Templates::load(Some(dir.path())).unwrap();
        let acme = t.render(&mail(MailKind::PasswordReset, "acme", "A")).unwrap();
        assert_eq!(acme.subject, "Reset for Example");
        assert!(acme.text.starts_with("Acme says: https://"));
        assert!(acme.html.contains("Choose a new password"), "the HTML part is still the built-in one");
        let other = t.render(&mail(MailKind::PasswordReset, "other", "A")).unwrap();
        assert_eq!(other.subject, "Reset for Example");
        assert!(other.text.contains("someone asked to set a new password"));
    }

    #[test]
    fn a_broken_override_stops_the_start_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("login_link.html"), "{% if %}").unwrap();
        let err = Templates::load(Some(dir.path())).unwrap_err().to_string();
        assert!(err.contains("login_link.html"), "{err}");
    }
}
