//! What every page shares: the request's tenant, branding, session and form token
//! ([`Page`]); forms ([`Form`]); rendering with the security headers; redirects; the cookies
//! that carry a mailed link's token past the landing; and the tenant's stylesheet.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::{AutoEscape, Environment, Value, context};
use portcullis_core::auth::AuthSession;
use portcullis_core::model::{Policy, Tenant};
use portcullis_core::{CoreError, Field, TenantId, Token};
use subtle::ConstantTimeEq as _;

use super::Pages;
use crate::shared::body::{self, BodyError};
use crate::shared::client::client_of;
use crate::shared::cookies::{Cookie, secure};
use crate::shared::credentials::cookie;
use crate::shared::tenant::TenantSlug;
use crate::shared::{AppState, Client, CurrentTenant, Rejection, Surface};

/// The cookie holding the form token.
const CSRF_COOKIE: &str = "portcullis_csrf";

/// How long the form token lives.
const CSRF_MAX_AGE: u64 = 7 * 24 * 3600;

/// How long a mailed link's token waits in its cookie for the click.
const LINK_COOKIE_MAX_AGE: u64 = 15 * 60;

/// Headers every page carries (the Content-Security-Policy is set per page, as it names the
/// tenant's allowed origins; this one is the fallback).
pub const SECURITY_HEADERS: [(&str, &str); 5] = [
    (
        "content-security-policy",
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=(), payment=()"),
];

/// The page templates, compiled into the binary.
const FILES: [(&str, &str); 13] = [
    ("layout.html", include_str!("templates/layout.html")),
    ("macros.html", include_str!("templates/macros.html")),
    ("login.html", include_str!("templates/login.html")),
    ("second_factor.html", include_str!("templates/second_factor.html")),
    ("signup.html", include_str!("templates/signup.html")),
    ("message.html", include_str!("templates/message.html")),
    ("identifier.html", include_str!("templates/identifier.html")),
    ("reset.html", include_str!("templates/reset.html")),
    ("confirm.html", include_str!("templates/confirm.html")),
    ("account.html", include_str!("templates/account.html")),
    ("totp_enrol.html", include_str!("templates/totp_enrol.html")),
    ("recovery_codes.html", include_str!("templates/recovery_codes.html")),
    ("error.html", include_str!("templates/error.html")),
];

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_formatter(html_formatter);
    for (name, text) in FILES {
        if let Err(e) = env.add_template(name, text) {
            tracing::error!(template = name, error = %e, "a page template does not parse");
        }
    }
    env
});

/// Escapes text for HTML text and double-quoted attributes (`&`, `<`, `>`, `"`, `'`), and
/// leaves `/` alone (the default escaping writes it as `&#x2f;`, which clutters every path).
fn html_formatter(
    out: &mut minijinja::Output,
    state: &mut minijinja::State,
    value: &Value,
) -> Result<(), minijinja::Error> {
    match value.as_str() {
        Some(text) if !value.is_safe() && matches!(state.auto_escape(), AutoEscape::Html) => {
            let mut escaped = String::with_capacity(text.len());
            for c in text.chars() {
                match c {
                    '&' => escaped.push_str("&amp;"),
                    '<' => escaped.push_str("&lt;"),
                    '>' => escaped.push_str("&gt;"),
                    '"' => escaped.push_str("&quot;"),
                    '\'' => escaped.push_str("&#x27;"),
                    c => escaped.push(c),
                }
            }
            out.write_str(&escaped)
                .map_err(|_| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, "write failed"))
        }
        _ => minijinja::escape_formatter(out, state, value),
    }
}

fn render_template(name: &str, ctx: Value) -> Result<String, minijinja::Error> {
    TEMPLATES.get_template(name)?.render(ctx)
}

fn with_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    for (k, v) in SECURITY_HEADERS {
        let name = HeaderName::from_static(k);
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(v));
        }
    }
    res
}

/// A page outside any tenant's branding (the answers of the shared layer).
pub fn error_page(status: StatusCode, title: &str, text: &str) -> Response {
    let html = render_template("error.html", context! { title, text }).unwrap_or_else(|_| title.to_owned());
    with_headers((status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
}

/// The page being served: its tenant, branding, session and form token.
#[derive(Debug)]
pub(crate) struct Page {
    pub st: AppState,
    pub tenant_id: TenantId,
    pub tenant: Arc<Tenant>,
    pub policy: Policy,
    /// `""`, or `/t/{slug}` when the tenant is named in the path.
    pub base: String,
    pub client: Client,
    /// The signed-in user's session, if the session cookie holds a valid one.
    pub session: Option<AuthSession>,
    csrf: String,
    new_csrf: bool,
    /// The link cookies of the request, by name.
    cookies: axum::http::HeaderMap,
}

impl FromRequestParts<AppState> for Page {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let Ok(CurrentTenant(tenant_id)) = CurrentTenant::from_request_parts(parts, st).await;
        let (tenant, policy) = st.core.tenant_policy(tenant_id).await.map_err(|e| match e {
            CoreError::NotFound => Pages::reject(Rejection::TenantNotFound),
            e => Pages::reject(Rejection::Core(e)),
        })?;
        let base = parts.extensions.get::<TenantSlug>().map(|s| format!("/t/{}", s.0)).unwrap_or_default();
        let client = client_of(parts, st);
        let session = match cookie(&parts.headers, &st.config.cookie_name) {
            Some(t) => st.core.authenticate(tenant_id, &Token::from_client(t)).await.ok().map(|a| a.through("pages")),
            None => None,
        };
        let (csrf, new_csrf) = match cookie(&parts.headers, CSRF_COOKIE).filter(|c| c.len() == 43) {
            Some(c) => (c, false),
            None => (new_form_token().ok_or_else(|| Pages::reject(Rejection::Panic))?, true),
        };
        Ok(Self {
            st: st.clone(),
            tenant_id,
            tenant,
            policy,
            base,
            client,
            session,
            csrf,
            new_csrf,
            cookies: parts.headers.clone(),
        })
    }
}

fn new_form_token() -> Option<String> {
    Token::generate("").map(|t| t.expose().to_owned()).ok()
}

impl Page {
    /// Renders a page with the shared context (tenant, base path, form token, session) and
    /// `ctx`.
    pub fn render(&self, status: StatusCode, template: &str, ctx: Value) -> Response {
        let tenant = context! {
            name => self.tenant.name.clone(),
            logo_url => self.policy.logo_url.clone(),
        };
        let full = context! {
            base => self.base.clone(),
            csrf => self.csrf.clone(),
            tenant => tenant,
            signed_in => self.session.is_some(),
            ..ctx
        };
        match render_template(template, full) {
            Ok(html) => {
                let mut res = (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
                self.finish(&mut res);
                res
            }
            Err(e) => {
                tracing::error!(template, error = %e, "a page could not be rendered");
                Pages::reject(Rejection::Panic)
            }
        }
    }

    /// A page of text, with an optional link (`(text, href)`).
    pub fn message(
        &self,
        status: StatusCode,
        title: &str,
        paragraphs: &[&str],
        link: Option<(&str, String)>,
    ) -> Response {
        let link = link.map(|(text, href)| context! { text, href });
        let paragraphs: Vec<String> = paragraphs.iter().map(|p| (*p).to_owned()).collect();
        self.render(status, "message.html", context! { title, paragraphs, link })
    }

    /// A 303 redirect (after a form, so that reloading does not send it again).
    pub fn redirect(&self, to: &str) -> Response {
        let mut res = (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response();
        self.finish(&mut res);
        res
    }

    /// A path below this tenant's pages (`/ui/account` → `/t/acme/ui/account`).
    pub fn path(&self, p: &str) -> String {
        format!("{}{p}", self.base)
    }

    // The form token cookie when new, the Content-Security-Policy, and the other headers.
    fn finish(&self, res: &mut Response) {
        if self.new_csrf {
            let c =
                Cookie { name: CSRF_COOKIE, value: &self.csrf, path: "/", max_age: CSRF_MAX_AGE, same_site: "Strict" };
            c.set(res, secure(&self.st, &self.client));
        }
        if let Ok(v) = HeaderValue::from_str(&self.csp()) {
            res.headers_mut().insert(HeaderName::from_static("content-security-policy"), v);
        }
        let taken = std::mem::take(res);
        *res = with_headers(taken);
    }

    fn csp(&self) -> String {
        let logo = self.policy.logo_url.as_deref().and_then(origin_of).map(|o| format!(" {o}")).unwrap_or_default();
        let forms: String = self.policy.return_origins.iter().map(|o| format!(" {o}")).collect();
        format!(
            "default-src 'none'; style-src 'self'; img-src 'self' data:{logo}; form-action 'self'{forms}; \
             frame-ancestors 'none'; base-uri 'none'"
        )
    }

    /// Where to send the user after log-in: `raw` if it is an origin the tenant allows or one
    /// of its own pages, else the account page.
    pub fn return_target(&self, raw: Option<&str>) -> String {
        let kept = self.keep_return_to(raw);
        if kept.is_empty() { self.path("/ui/account") } else { kept }
    }

    /// `raw` if it may be returned to, else `""` (what a form carries along).
    pub fn keep_return_to(&self, raw: Option<&str>) -> String {
        let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else { return String::new() };
        if self.policy.allows_return_to(raw) {
            return raw.to_owned();
        }
        let own = self.path("/ui/");
        let local = raw.starts_with(&own)
            && !raw.contains("//")
            && !raw.contains('\\')
            && !raw.contains("..")
            && !raw.chars().any(|c| c.is_control() || c.is_whitespace());
        if local { raw.to_owned() } else { String::new() }
    }

    /// Moves a mailed link's token from the URL into a cookie for this page, and redirects to
    /// the page without it.
    pub fn stash_link_token(&self, name: &'static str, token: &str, page: &str) -> Response {
        let mut res = self.redirect(&self.path(page));
        let path = self.path("/ui/");
        let c = Cookie { name, value: token, path: &path, max_age: LINK_COOKIE_MAX_AGE, same_site: "Lax" };
        c.set(&mut res, secure(&self.st, &self.client));
        res
    }

    /// The token a landing stashed, if any (only the URL-safe characters a token has).
    pub fn link_token(&self, name: &str) -> Option<Token> {
        cookie(&self.cookies, name)
            .filter(|t| {
                !t.is_empty() && t.len() < 200 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            })
            .map(Token::from_client)
    }

    /// Clears a link cookie on a response.
    pub fn forget_link_token(&self, res: &mut Response, name: &'static str) {
        let path = self.path("/ui/");
        let c = Cookie { name, value: "", path: &path, max_age: 0, same_site: "Lax" };
        c.set(res, secure(&self.st, &self.client));
    }

    /// The status and message a person sees for a failure of the core that is not about one
    /// field.
    pub fn problem(&self, e: &CoreError) -> (StatusCode, String) {
        match e {
            CoreError::InvalidCredentials => (StatusCode::UNAUTHORIZED, "The login or password is wrong.".into()),
            CoreError::EmailNotVerified => {
                (StatusCode::FORBIDDEN, "Confirm your e-mail address first: follow the link we sent you.".into())
            }
            CoreError::AccountDisabled => (StatusCode::FORBIDDEN, "This account is disabled.".into()),
            CoreError::InvalidToken => {
                (StatusCode::BAD_REQUEST, "This link has expired or has been used already.".into())
            }
            CoreError::SecondFactorInvalid => {
                (StatusCode::UNAUTHORIZED, "That code is wrong, or was used already.".into())
            }
            CoreError::SecondFactorRequired => {
                (StatusCode::UNAUTHORIZED, "Enter the code from your authenticator app too.".into())
            }
            CoreError::PasswordIncorrect => (StatusCode::FORBIDDEN, "The password is wrong.".into()),
            CoreError::Unauthenticated => (StatusCode::UNAUTHORIZED, "Log in again to go on.".into()),
            CoreError::Forbidden(m) => (StatusCode::FORBIDDEN, (*m).to_owned()),
            CoreError::NotFound => (StatusCode::NOT_FOUND, "That does not exist (any more).".into()),
            CoreError::SignupClosed => (StatusCode::FORBIDDEN, "Sign-up is closed here.".into()),
            CoreError::RateLimited { retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                format!("Too many attempts. Wait {} seconds and try again.", retry_after.as_secs().max(1)),
            ),
            CoreError::Overloaded { .. } | CoreError::Unavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "The service is busy. Try again in a moment.".into())
            }
            CoreError::Conflict(f) => {
                (StatusCode::CONFLICT, format!("That {} is taken.", f.as_str().replace('_', " ")))
            }
            CoreError::Validation(_) | CoreError::NotEditable(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "Some fields need another look.".into())
            }
            CoreError::Internal(_) => {
                tracing::error!(error = %portcullis_core::error::error_chain(e), "a page failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong on our side.".into())
            }
        }
    }
}

/// Field errors by the name of the form input they belong to (`rename` maps the core's field
/// names to the form's where they differ).
pub(crate) fn field_errors(e: &CoreError, rename: &[(&str, &str)]) -> BTreeMap<String, String> {
    let name = |f: &Field| {
        let n = f.name();
        rename.iter().find(|(from, _)| *from == n).map(|(_, to)| (*to).to_owned()).unwrap_or(n)
    };
    match e {
        CoreError::Validation(fields) => fields.iter().map(|(f, m)| (name(f), capitalise(m))).collect(),
        CoreError::NotEditable(fields) => {
            fields.iter().map(|f| (name(f), "You cannot change this here.".to_owned())).collect()
        }
        CoreError::Conflict(f) => {
            BTreeMap::from([(f.as_str().to_owned(), "Another account uses this already.".to_owned())])
        }
        _ => BTreeMap::new(),
    }
}

fn capitalise(m: &str) -> String {
    let mut c = m.chars();
    match c.next() {
        Some(f) => {
            let mut s: String = f.to_uppercase().collect();
            s.push_str(c.as_str());
            if !s.ends_with('.') {
                s.push('.');
            }
            s
        }
        None => String::new(),
    }
}

/// An `application/x-www-form-urlencoded` form whose token matched the cookie's.
#[derive(Debug)]
pub(crate) struct Form(pub Vec<(String, String)>);

impl Form {
    /// The value of a field (the first, if repeated); `None` when absent or blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.trim().is_empty())
    }

    /// The value of a field, as typed (blank included).
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The values to show again in the form: every field but passwords and tokens.
    pub fn values(&self) -> BTreeMap<String, String> {
        self.0
            .iter()
            .filter(|(k, _)| !k.contains("password") && !matches!(k.as_str(), "csrf" | "step_token" | "code"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

impl FromRequest<AppState> for Form {
    type Rejection = Response;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, Self::Rejection> {
        let form_type = body::media_type(req.headers()).is_some_and(|m| m == "application/x-www-form-urlencoded");
        if !form_type {
            return Err(error_page(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Request refused",
                "These pages take forms only.",
            ));
        }
        let expected = cookie(req.headers(), CSRF_COOKIE);
        let bytes = body::read(req, st).await.map_err(|e| match e {
            BodyError::TooLarge => error_page(StatusCode::PAYLOAD_TOO_LARGE, "Too much", "The form is too large."),
            BodyError::Unreadable => {
                error_page(StatusCode::BAD_REQUEST, "Request refused", "The form could not be read.")
            }
        })?;
        let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
            .map_err(|_| error_page(StatusCode::BAD_REQUEST, "Request refused", "The form could not be read."))?;
        let sent = fields.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str()).unwrap_or_default();
        let ok = expected.is_some_and(|e| !e.is_empty() && bool::from(e.as_bytes().ct_eq(sent.as_bytes())));
        if !ok {
            return Err(error_page(
                StatusCode::FORBIDDEN,
                "This form has expired",
                "Go back, reload the page and send the form again.",
            ));
        }
        Ok(Self(fields))
    }
}

/// `GET /ui/assets/tenant.css`: the tenant's colour, with a text colour that reads on it.
pub(crate) async fn tenant_css(page: Page) -> Response {
    let colour = page.policy.brand_color.as_deref().and_then(parse_colour);
    let css = match colour {
        Some((r, g, b)) => {
            let on = if contrast_with_white(r, g, b) >= contrast_with_black(r, g, b) { "#ffffff" } else { "#000000" };
            format!(":root {{ --brand: #{r:02x}{g:02x}{b:02x}; --on-brand: {on}; }}\n")
        }
        None => "/* no colour set for this tenant */\n".to_owned(),
    };
    let mut res = ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], css).into_response();
    page.finish(&mut res);
    res
}

fn parse_colour(s: &str) -> Option<(u8, u8, u8)> {
    let hex = s.strip_prefix('#')?;
    if hex.len() != 6 {
        return None;
    }
    let v = u32::from_str_radix(hex, 16).ok()?;
    Some(((v >> 16) as u8, (v >> 8) as u8, v as u8))
}

fn luminance(r: u8, g: u8, b: u8) -> f64 {
    let c = |v: u8| {
        let v = f64::from(v) / 255.0;
        if v <= 0.039_28 { v / 12.92 } else { ((v + 0.055) / 1.055).powf(2.4) }
    };
    0.2126 * c(r) + 0.7152 * c(g) + 0.0722 * c(b)
}

fn contrast_with_white(r: u8, g: u8, b: u8) -> f64 {
    1.05 / (luminance(r, g, b) + 0.05)
}

fn contrast_with_black(r: u8, g: u8, b: u8) -> f64 {
    (luminance(r, g, b) + 0.05) / 0.05
}

/// The origin of an absolute `http(s)` URL.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if !matches!(scheme, "http" | "https") {
        return None;
    }
    let host = rest.split(['/', '?', '#']).next().filter(|h| !h.is_empty() && !h.contains('@'))?;
    if host.chars().any(|c| c.is_whitespace() || c == '\'' || c == ';' || c == '"') {
        return None;
    }
    Some(format!("{scheme}://{host}"))
}

/// A parameter of a query string (the first, if repeated).
pub(crate) fn param(query: Option<&str>, name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query?).ok()?;
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        let mut env = Environment::new();
        for (name, text) in FILES {
            if let Err(e) = env.add_template(name, text) {
                panic!("{name}: {e:#}");
            }
        }
        assert_eq!(TEMPLATES.templates().count(), FILES.len());
    }

    #[test]
    fn text_is_escaped_for_html_and_paths_stay_readable() {
        let html =
            render_template("error.html", context! { title => "<b>\"x\" & 'y'</b>", text => "/ui/login" }).unwrap();
        assert!(html.contains("&lt;b&gt;&quot;x&quot; &amp; &#x27;y&#x27;&lt;/b&gt;"), "{html}");
        assert!(html.contains("<p>/ui/login</p>"));
    }

    #[test]
    fn brand_colours_get_a_readable_text_colour() {
        let (r, g, b) = parse_colour("#1d4ed8").unwrap();
        assert!(contrast_with_white(r, g, b) > 4.5);
        let (r, g, b) = parse_colour("#fde047").unwrap();
        assert!(contrast_with_black(r, g, b) > contrast_with_white(r, g, b));
        assert!(parse_colour("red").is_none());
        assert!(parse_colour("#12345").is_none());
    }

    #[test]
    fn only_plain_origins_enter_the_policy() {
        assert_eq!(origin_of("https://cdn.example.com/logo.png").as_deref(), Some("https://cdn.example.com"));
        assert_eq!(origin_of("javascript:alert(1)"), None);
        assert_eq!(origin_of("https://a.example; script-src *"), None);
        assert_eq!(origin_of("https://user@evil.example/x"), None);
    }
}
