//! The hosted pages over HTTP, as a browser without script would use them: forms with their
//! token, cookies, redirects followed by hand. (The same journeys in a real browser, with an
//! accessibility check of every page, are in the browser tests.)

use std::collections::BTreeMap;
use std::time::Duration;

use portcullis_testkit::totp_code;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};
use serde_json::json;

use crate::support::{PW, PW2, TestApp};

/// Form bodies (`application/x-www-form-urlencoded`).
trait FormBody {
    fn form_body(self, fields: &[(&str, &str)]) -> Self;
}

impl FormBody for reqwest::RequestBuilder {
    fn form_body(self, fields: &[(&str, &str)]) -> Self {
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(fields).unwrap())
    }
}

/// A browser: a cookie jar, redirects not followed (the tests look at them).
struct Browser {
    client: reqwest::Client,
    base: String,
    cookies: BTreeMap<String, String>,
}

/// A page as fetched.
struct Got {
    status: StatusCode,
    location: Option<String>,
    csp: Option<String>,
    headers: reqwest::header::HeaderMap,
    html: String,
}

impl Browser {
    fn new(app: &TestApp) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0")
            .build()
            .unwrap();
        Self { client, base: app.base.clone(), cookies: BTreeMap::new() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Got {
        let res = req.header("cookie", self.cookie_header()).send().await.unwrap();
        for c in res.headers().get_all(SET_COOKIE) {
            let c = c.to_str().unwrap();
            let (kv, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = kv.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        let status = res.status();
        let headers = res.headers().clone();
        let location = headers.get(LOCATION).map(|v| v.to_str().unwrap().to_owned());
        let csp = headers.get(CONTENT_SECURITY_POLICY).map(|v| v.to_str().unwrap().to_owned());
        Got { status, location, csp, headers, html: res.text().await.unwrap() }
    }

    async fn get(&mut self, path: &str) -> Got {
        let url = if path.starts_with("http") { path.to_owned() } else { format!("{}{path}", self.base) };
        let req = self.client.get(url);
        self.send(req).await
    }

    /// Posts a form with the page's token.
    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Got {
        let csrf = self.cookies.get("portcullis_csrf").cloned().unwrap_or_default();
        let mut all: Vec<(&str, &str)> = vec![("csrf", &csrf)];
        all.extend_from_slice(fields);
        let req = self.client.post(format!("{}{path}", self.base)).form_body(&all);
        self.send(req).await
    }
}

/// The value of a hidden input in a page.
fn hidden(html: &str, name: &str) -> String {
    let at = html.find(&format!("name=\"{name}\" value=\"")).unwrap_or_else(|| panic!("no {name} in {html}"));
    let rest = &html[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_owned()
}

async fn every_page_carries_the_security_headers(b: crate::support::Backend) {
    let app = TestApp::spawn(b).await;
    let mut web = Browser::new(&app);
    for path in [
        "/ui/login",
        "/ui/signup",
        "/ui/forgot",
        "/ui/reset",
        "/ui/verify",
        "/ui/link",
        "/ui/nowhere",
        "/ui/assets/tenant.css",
    ] {
        let got = web.get(path).await;
        let csp = got.csp.unwrap_or_else(|| panic!("{path}: no CSP"));
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"), "{path}: {csp}");
        assert_eq!(got.headers["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(got.headers["x-frame-options"], "DENY", "{path}");
    }
    let got = web.get("/ui/nowhere").await;
    assert_eq!(got.status, StatusCode::NOT_FOUND);
    assert!(got.html.contains("<html lang=\"en\">") && got.html.contains("Page not found"));
    let got = web.get("/t/nosuch/ui/login").await;
    assert_eq!(got.status, StatusCode::NOT_FOUND);
    assert!(got.headers["content-type"].to_str().unwrap().starts_with("text/html"));
}

async fn forms_need_their_token_and_this_site(b: crate::support::Backend) {
    let app = TestApp::spawn(b).await;
    app.user("cory", PW).await;
    let mut web = Browser::new(&app);
    web.get("/ui/login").await;
    // Without the form token (a form posted from elsewhere, or an old page).
    let req = web.client.post(format!("{}/ui/login", web.base)).form_body(&[("login", "cory"), ("password", PW)]);
    let got = web.send(req).await;
    assert_eq!(got.status, StatusCode::FORBIDDEN);
    assert!(got.html.contains("expired"), "{}", got.html);
    let req = web.client.post(format!("{}/ui/login", web.base)).form_body(&[
        ("csrf", "forged"),
        ("login", "cory"),
        ("password", PW),
    ]);
    assert_eq!(web.send(req).await.status, StatusCode::FORBIDDEN);
    // From another site, token or not: the origin check refuses it first.
    let csrf = web.cookies["portcullis_csrf"].clone();
    let req = web.client.post(format!("{}/ui/login", web.base)).header("origin", "https://evil.example").form_body(&[
        ("csrf", csrf.as_str()),
        ("login", "cory"),
        ("password", PW),
    ]);
    let got = web.send(req).await;
    assert_eq!(got.status, StatusCode::FORBIDDEN);
    assert!(!web.cookies.contains_key("portcullis_session"));
    // Not a form at all.
    let req = web.client.post(format!("{}/ui/login", web.base)).json(&json!({"login": "cory"}));
    assert_eq!(web.send(req).await.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

async fn log_in_and_out_and_go_back_only_where_allowed(b: crate::support::Backend) {
    let app = TestApp::spawn_with(b, |c| c.policy.return_origins = vec!["https://app.example.com".into()]).await;
    app.user("lou", PW).await;
    let mut web = Browser::new(&app);
    let got = web.get("/ui/account").await;
    assert_eq!(got.status, StatusCode::SEE_OTHER);
    assert_eq!(got.location.as_deref(), Some("/ui/login?return_to=%2Fui%2Faccount"));

    web.get("/ui/login").await;
    let got = web.post("/ui/login", &[("login", "lou"), ("password", PW2)]).await;
    assert_eq!(got.status, StatusCode::UNAUTHORIZED);
    assert!(got.html.contains("role=\"alert\">The login or password is wrong."), "{}", got.html);
    assert!(got.html.contains("value=\"lou\""), "the login is kept");
    assert!(!got.html.contains(PW2), "never a password");

    let got = web
        .post("/ui/login", &[("login", "lou"), ("password", PW), ("return_to", "https://app.example.com/welcome")])
        .await;
    assert_eq!(got.status, StatusCode::SEE_OTHER);
    assert_eq!(got.location.as_deref(), Some("https://app.example.com/welcome"));
    assert!(web.cookies["portcullis_session"].starts_with("pcs_"));
    let csp = got.csp.unwrap();
    assert!(csp.contains("form-action 'self' https://app.example.com"), "{csp}");

    for evil in ["https://evil.example/x", "//evil.example", "/ui/../../evil", "https://app.example.com.evil.example/"]
    {
        let got = web.get(&format!("/ui/login?return_to={}", urlencode(evil))).await;
        assert_eq!(got.location.as_deref(), Some("/ui/account"), "{evil}");
    }
    let got = web.get("/ui/account").await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(got.html.contains("Signed in as <strong>lou</strong>"));
    let got = web.post("/ui/logout", &[]).await;
    assert_eq!(got.location.as_deref(), Some("/ui/login"));
    assert!(!web.cookies.contains_key("portcullis_session"));
    assert_eq!(web.get("/ui/account").await.status, StatusCode::SEE_OTHER);
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("x", s)]).unwrap().trim_start_matches("x=").to_owned()
}

async fn mailed_links_leave_the_url_and_wait_for_a_click(b: crate::support::Backend) {
    let (app, sink) = TestApp::spawn_with_mail(b, |c| c.policy.passwordless_login = true).await;
    let mut web = Browser::new(&app);
    web.get("/ui/signup").await;
    let got = web
        .post(
            "/ui/signup",
            &[("email", "mia@example.com"), ("password", PW), ("password_confirmation", PW), ("first_name", "Mia")],
        )
        .await;
    assert_eq!(got.status, StatusCode::SEE_OTHER, "{}", got.html);
    let mail = sink.wait_for("mia@example.com", 1, Duration::from_secs(15)).await;
    let link = mail[0].link(&format!("{}/ui/verify", app.base)).unwrap();

    // The landing moves the token out of the URL, and a scanner's GETs spend nothing.
    let got = web.get(&link).await;
    assert_eq!((got.status, got.location.as_deref()), (StatusCode::SEE_OTHER, Some("/ui/verify")));
    for _ in 0..2 {
        let got = web.get("/ui/verify").await;
        assert_eq!(got.status, StatusCode::OK);
        assert!(got.html.contains("Confirm my address"));
    }
    let got = web.post("/ui/verify", &[]).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.html);
    assert!(got.html.contains("mia@example.com is confirmed."));
    assert!(!web.cookies.contains_key("portcullis_verify"), "the token's cookie is gone");

    // A log-in link, in another browser.
    let mut other = Browser::new(&app);
    other.get("/ui/link/request").await;
    let got = other.post("/ui/link/request", &[("login", "mia@example.com")]).await;
    assert!(got.html.contains("If an account matches"));
    let mail = sink.wait_for("mia@example.com", 2, Duration::from_secs(15)).await;
    let link = mail[1].link(&format!("{}/ui/link", app.base)).unwrap();
    other.get(&link).await;
    other.get("/ui/link").await;
    let got = other.post("/ui/link", &[]).await;
    assert_eq!((got.status, got.location.as_deref()), (StatusCode::SEE_OTHER, Some("/ui/account")));
    assert!(other.cookies.contains_key("portcullis_session"));
    let got = other.get(&link).await;
    assert_eq!(got.location.as_deref(), Some("/ui/link"));
    let got = other.post("/ui/link", &[]).await;
    assert_eq!(got.status, StatusCode::BAD_REQUEST, "a link works once");

    // A forgotten password.
    let mut third = Browser::new(&app);
    third.get("/ui/forgot").await;
    let got = third.post("/ui/forgot", &[("login", "mia@example.com")]).await;
    let same = third.post("/ui/forgot", &[("login", "nobody@example.com")]).await;
    assert_eq!((got.status, &got.html), (same.status, &same.html), "the same page for nobody");
    let mail = sink.wait_for("mia@example.com", 3, Duration::from_secs(15)).await;
    let link = mail[2].link(&format!("{}/ui/reset", app.base)).unwrap();
    let got = third.get(&link).await;
    assert_eq!(got.location.as_deref(), Some("/ui/reset"));
    let got = third.get("/ui/reset").await;
    assert!(got.html.contains("Choose a new password"));
    let got = third.post("/ui/reset", &[("password", "password1"), ("password_confirmation", "password1")]).await;
    assert_eq!(got.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(got.html.contains("aria-invalid=\"true\""), "{}", got.html);
    let got = third.post("/ui/reset", &[("password", PW2), ("password_confirmation", PW2)]).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.html);
    assert_eq!(other.get("/ui/account").await.status, StatusCode::SEE_OTHER, "every session ended");
    app.token("mia@example.com", PW2).await;
}

async fn the_second_factor_is_set_up_and_asked_for_on_the_pages(b: crate::support::Backend) {
    let app = TestApp::spawn(b).await;
    app.user("sia", PW).await;
    let mut web = Browser::new(&app);
    web.get("/ui/login").await;
    web.post("/ui/login", &[("login", "sia"), ("password", PW)]).await;
    let got = web.post("/ui/account/totp", &[("totp_password", PW2)]).await;
    assert_eq!(got.status, StatusCode::UNPROCESSABLE_ENTITY);
    let got = web.post("/ui/account/totp", &[("totp_password", PW)]).await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(got.html.contains("src=\"data:image/svg+xml;base64,"), "a QR code");
    let secret = hidden(&got.html, "secret");
    let uri = hidden(&got.html, "uri").replace("&amp;", "&");
    let now = || u64::try_from(app.core.now().unix_seconds()).unwrap();
    let wrong = if totp_code(&secret, now()) == "000000" { "111111" } else { "000000" };
    let got = web.post("/ui/account/totp/confirm", &[("code", wrong), ("secret", &secret), ("uri", &uri)]).await;
    assert_eq!(got.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", got.html);
    assert!(got.html.contains("Is wrong: check the app"), "{}", got.html);
    let got = web
        .post("/ui/account/totp/confirm", &[("code", &totp_code(&secret, now())), ("secret", &secret), ("uri", &uri)])
        .await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.html);
    let codes: Vec<String> =
        got.html.match_indices("<li><code>").map(|(i, _)| got.html[i + 10..i + 29].to_owned()).collect();
    assert_eq!(codes.len(), 10, "{}", got.html);

    let mut later = Browser::new(&app);
    later.get("/ui/login").await;
    let got = later.post("/ui/login", &[("login", "sia"), ("password", PW)]).await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(got.html.contains("Two-step log-in"));
    assert!(!later.cookies.contains_key("portcullis_session"), "no session on the password alone");
    let step = hidden(&got.html, "step_token");
    let got = later.post("/ui/login/second-factor", &[("step_token", &step), ("code", &codes[0])]).await;
    assert_eq!(got.status, StatusCode::SEE_OTHER, "{}", got.html);
    assert!(later.cookies.contains_key("portcullis_session"));
    let got = later.get("/ui/account").await;
    assert!(got.html.contains("Recovery codes left: 9"), "{}", got.html);

    app.clock.advance(Duration::from_secs(30));
    let got = later.post("/ui/account/totp/disable", &[("disable_password", &totp_code(&secret, now()))]).await;
    assert_eq!(got.location.as_deref(), Some("/ui/account?done=second_factor_off#second-factor"));
    let got = later.get("/ui/account?done=second_factor_off").await;
    assert!(got.html.contains("Two-step log-in is off."));
}

async fn tenants_get_their_own_pages_and_colours(b: crate::support::Backend) {
    let app = TestApp::spawn(b).await;
    let cmd = portcullis_core::tenants::CreateTenantCommand {
        slug: "acme".into(),
        name: Some("Acme Corp".into()),
        domains: vec![],
        policy: portcullis_core::model::TenantPolicy {
            brand_color: Some("#fde047".into()),
            logo_url: Some("https://cdn.acme.example/logo.png".into()),
            ..Default::default()
        },
    };
    app.core.create_tenant(&crate::support::op(), cmd).await.unwrap();
    let mut web = Browser::new(&app);
    let got = web.get("/t/acme/ui/login").await;
    assert!(got.html.contains("<title>Log in · Acme Corp</title>"));
    assert!(got.html.contains("action=\"/t/acme/ui/login\""));
    assert!(got.html.contains("src=\"https://cdn.acme.example/logo.png\""), "{}", got.html);
    assert!(got.csp.unwrap().contains("img-src 'self' data: https://cdn.acme.example"));
    let css = web.get("/t/acme/ui/assets/tenant.css").await;
    assert!(css.html.contains("--brand: #fde047; --on-brand: #000000"), "{}", css.html);
    // A session of one tenant is nobody in another.
    let res = app.post("/t/acme/v1/signup", json!({"email": "zed@example.com", "password": PW})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let got = web.post("/t/acme/ui/login", &[("login", "zed@example.com"), ("password", PW)]).await;
    assert_eq!(got.location.as_deref(), Some("/t/acme/ui/account"));
    assert_eq!(web.get("/t/acme/ui/account").await.status, StatusCode::OK);
    assert_eq!(web.get("/ui/account").await.status, StatusCode::SEE_OTHER);
}

async fn too_many_requests_are_explained_on_the_page(b: crate::support::Backend) {
    let app = TestApp::spawn_with(b, |c| c.rate_limits = portcullis_core::limits::RateLimitConfig::default()).await;
    let mut web = Browser::new(&app);
    web.get("/ui/forgot").await;
    let mut last = None;
    for _ in 0..11 {
        last = Some(web.post("/ui/forgot", &[("login", "someone@example.com")]).await);
    }
    let got = last.unwrap();
    assert_eq!(got.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(got.html.contains("Too many attempts."), "{}", got.html);
}

crate::both!(
    too_many_requests_are_explained_on_the_page,
    every_page_carries_the_security_headers,
    forms_need_their_token_and_this_site,
    log_in_and_out_and_go_back_only_where_allowed,
    mailed_links_leave_the_url_and_wait_for_a_click,
    the_second_factor_is_set_up_and_asked_for_on_the_pages,
    tenants_get_their_own_pages_and_colours,
);
