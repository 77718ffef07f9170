//! The journeys in a real browser: headless Chromium driven through ChromeDriver, against the
//! real server with its mail going to an SMTP sink whose links are followed. Every page is
//! checked with axe-core (no serious or critical violation) and photographed; the pictures
//! are kept in `target/browser-artifacts/` (desktop width and a phone's).
//!
//! Chromium, ChromeDriver and axe-core are installed by `scripts/ensure-browser` (which
//! `scripts/test` runs); without them these tests fail, saying what is missing.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use portcullis_testkit::totp_code;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Backend, PW, PW2, SmtpSink, TestApp};

const WAIT: Duration = Duration::from_secs(15);
const DESKTOP: (u32, u32) = (1280, 900);
const PHONE: (u32, u32) = (375, 812);

/// ChromeDriver, stopped when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A browser session and what checks its pages.
struct Browser {
    c: Client,
    _driver: Driver,
    axe: String,
    shots: PathBuf,
    base: String,
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

async fn start_browser(app: &TestApp, name: &str) -> Browser {
    let axe_path = workspace_root().join("tests/browser/node_modules/axe-core/axe.min.js");
    let axe = std::fs::read_to_string(&axe_path)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/ensure-browser (scripts/test does)", axe_path.display()));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("chromedriver: {e}; run scripts/ensure-browser (scripts/test does)"));
    let driver = Driver(child);
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if reqwest::get(format!("{url}/status")).await.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--lang=en-US"]}),
    );
    let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot start Chromium through ChromeDriver: {e}"));
    c.set_window_size(DESKTOP.0, DESKTOP.1).await.unwrap();
    let target =
        std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| workspace_root().join("target"));
    let shots = target.join("browser-artifacts").join(name);
    std::fs::create_dir_all(&shots).unwrap();
    Browser { c, _driver: driver, axe, shots, base: app.base.clone() }
}

impl Browser {
    async fn open(&self, path: &str) {
        let url = if path.starts_with("http") { path.to_owned() } else { format!("{}{path}", self.base) };
        self.c.goto(&url).await.unwrap();
    }

    async fn path(&self) -> String {
        let u = self.c.current_url().await.unwrap();
        match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_owned(),
        }
    }

    async fn heading(&self) -> String {
        self.c.find(Locator::Css("h1")).await.unwrap().text().await.unwrap()
    }

    async fn fill(&self, name: &str, text: &str) {
        let field = self.c.find(Locator::Css(&format!("[name=\"{name}\"]"))).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Presses the submit button of the form posting to `action`, and waits for the page
    /// that answers.
    async fn submit(&self, action: &str) {
        let css = format!("form[action=\"{action}\"] button[type=submit]");
        let button = self.c.find(Locator::Css(&css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
        self.navigating(button.click()).await;
    }

    /// Follows the link with this text.
    async fn follow(&self, text: &str) {
        let link = self.c.find(Locator::LinkText(text)).await.unwrap_or_else(|e| panic!("{text}: {e}"));
        self.navigating(link.click()).await;
    }

    /// Does what loads another page, and waits until it has: the old document gone, the new
    /// one complete.
    async fn navigating<T>(&self, action: impl std::future::Future<Output = Result<T, fantoccini::error::CmdError>>) {
        let old = self.c.find(Locator::Css("html")).await.unwrap();
        action.await.unwrap();
        for _ in 0..400 {
            if old.tag_name().await.is_err() {
                let ready = self.c.execute("return document.readyState;", vec![]).await.unwrap();
                if ready == json!("complete") {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no new page after 10 seconds");
    }

    async fn text(&self) -> String {
        self.c.find(Locator::Css("main")).await.unwrap().text().await.unwrap()
    }

    /// Checks the page with axe-core and photographs it (`name.png`).
    async fn check(&self, name: &str) {
        let png = self.c.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
        self.c.execute(&self.axe, vec![]).await.unwrap();
        let script = "const done = arguments[arguments.length - 1];\
            axe.run(document, {resultTypes: ['violations']})\
              .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,\
                 nodes: v.nodes.map(n => n.target.join(' '))}))))\
              .catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));";
        let found = self.c.execute_async(script, vec![]).await.unwrap();
        let serious: Vec<&Value> = found
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .collect();
        assert!(serious.is_empty(), "{name}: accessibility violations: {serious:#?}");
        let overflow = self
            .c
            .execute("return document.documentElement.scrollWidth > window.innerWidth + 1;", vec![])
            .await
            .unwrap();
        assert_eq!(overflow, json!(false), "{name}: the page is wider than the window");
    }

    /// Checks the page at desktop width and at a phone's.
    async fn check_both(&self, name: &str) {
        self.check(name).await;
        self.c.set_window_size(PHONE.0, PHONE.1).await.unwrap();
        self.check(&format!("{name}-phone")).await;
        self.c.set_window_size(DESKTOP.0, DESKTOP.1).await.unwrap();
    }

    async fn press(&self, key: Key) {
        self.c.active_element().await.unwrap().send_keys(&key.to_string()).await.unwrap();
    }

    /// Presses a key that sends a form, and waits for the page that answers.
    async fn press_and_wait(&self, key: Key) {
        let here = self.c.active_element().await.unwrap();
        self.navigating(here.send_keys(&key.to_string())).await;
    }

    async fn type_here(&self, text: &str) {
        self.c.active_element().await.unwrap().send_keys(text).await.unwrap();
    }
}

fn code_now(app: &TestApp, secret: &str) -> String {
    totp_code(secret, u64::try_from(app.core.now().unix_seconds()).unwrap())
}

async fn link_in(sink: &SmtpSink, to: &str, n: usize, prefix: &str) -> String {
    let got = sink.wait_for(to, n, WAIT).await;
    assert_eq!(got.len(), n, "mail to {to}");
    got[n - 1].link(prefix).unwrap_or_else(|| panic!("no {prefix} link in {}", got[n - 1].text))
}

/// Sign-up → verify → log-in by keyboard → enrol TOTP → log out → log in with TOTP → a
/// recovery code → forgot password → reset → every session ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_user_walks_every_journey_in_a_browser() {
    let (app, sink) = TestApp::spawn_with_mail(Backend::Sqlite, |c| c.policy.require_verified_email = true).await;
    let b = start_browser(&app, "journey").await;

    // Sign up; the address must be confirmed first.
    b.open("/ui/signup").await;
    assert_eq!(b.heading().await, "Create an account");
    b.check_both("01-signup").await;
    b.fill("email", "nora@example.com").await;
    b.fill("first_name", "Nora").await;
    b.fill("password", PW).await;
    b.fill("password_confirmation", "not the same").await;
    b.submit("/ui/signup").await;
    assert!(b.text().await.contains("Does not match the password."), "{}", b.text().await);
    b.check("02-signup-errors").await;
    b.fill("password", PW).await;
    b.fill("password_confirmation", PW).await;
    b.submit("/ui/signup").await;
    assert_eq!(b.heading().await, "Check your inbox");
    b.check("03-signup-done").await;

    // The link from the mail: a landing that asks for a click.
    let link = link_in(&sink, "nora@example.com", 1, &format!("{}/ui/verify", app.base)).await;
    b.open(&link).await;
    assert_eq!(b.path().await, "/ui/verify", "the token left the address bar");
    b.check_both("04-verify-landing").await;
    b.submit("/ui/verify").await;
    assert_eq!(b.heading().await, "Address confirmed", "{}", b.text().await);
    b.check("05-verified").await;

    // Log in with the keyboard only: Tab into the form, type, Enter.
    b.open("/ui/login").await;
    b.check_both("06-login").await;
    b.press(Key::Tab).await;
    b.type_here("nora@example.com").await;
    b.press(Key::Tab).await;
    b.type_here(PW).await;
    b.press_and_wait(Key::Enter).await;
    assert_eq!(b.path().await, "/ui/account");
    assert_eq!(b.heading().await, "Your account");
    b.check_both("07-account").await;

    // Set up an authenticator app.
    b.fill("totp_password", PW).await;
    b.submit("/ui/account/totp").await;
    assert_eq!(b.heading().await, "Set up an authenticator app");
    b.check_both("08-totp-enrol").await;
    let secret = b.c.find(Locator::Css("code.secret")).await.unwrap().text().await.unwrap();
    b.fill("code", &code_now(&app, &secret)).await;
    b.submit("/ui/account/totp/confirm").await;
    assert_eq!(b.heading().await, "Your recovery codes");
    b.check_both("09-recovery-codes").await;
    let mut codes = Vec::new();
    for e in b.c.find_all(Locator::Css("ul.codes code")).await.unwrap() {
        codes.push(e.text().await.unwrap());
    }
    assert_eq!(codes.len(), 10);
    b.follow("I have saved them").await;
    assert!(b.text().await.contains("Recovery codes left: 10"));

    // Log out, then in again: the password alone is not enough.
    b.submit("/ui/logout").await;
    assert_eq!(b.path().await, "/ui/login");
    b.fill("login", "nora@example.com").await;
    b.fill("password", PW).await;
    b.submit("/ui/login").await;
    assert_eq!(b.heading().await, "Two-step log-in");
    b.check_both("10-second-factor").await;
    app.clock.advance(Duration::from_secs(30));
    b.fill("code", "000000").await;
    b.submit("/ui/login/second-factor").await;
    assert!(b.text().await.contains("That code is wrong"), "{}", b.text().await);
    b.check("11-second-factor-wrong").await;
    b.fill("code", &code_now(&app, &secret)).await;
    b.submit("/ui/login/second-factor").await;
    assert_eq!(b.path().await, "/ui/account");

    // Again, with a recovery code.
    b.submit("/ui/logout").await;
    b.fill("login", "nora@example.com").await;
    b.fill("password", PW).await;
    b.submit("/ui/login").await;
    b.fill("code", &codes[3]).await;
    b.submit("/ui/login/second-factor").await;
    assert!(b.text().await.contains("Recovery codes left: 9"));

    // Forgot the password: a session elsewhere ends with the reset.
    let (status, elsewhere) = app.login("nora@example.com", PW).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{elsewhere}");
    app.clock.advance(Duration::from_secs(30));
    let res = app
        .post(
            "/v1/login",
            json!({"login": "nora@example.com", "password": PW, "second_factor": code_now(&app, &secret)}),
        )
        .await;
    let api_session = res.json::<Value>().await.unwrap()["session"]["token"].as_str().unwrap().to_owned();
    b.submit("/ui/logout").await;
    b.follow("Forgot your password?").await;
    b.check_both("12-forgot").await;
    b.fill("login", "nora@example.com").await;
    b.submit("/ui/forgot").await;
    assert_eq!(b.heading().await, "Check your inbox");
    b.check("13-forgot-sent").await;
    let link = link_in(&sink, "nora@example.com", 2, &format!("{}/ui/reset", app.base)).await;
    b.open(&link).await;
    assert_eq!(b.path().await, "/ui/reset");
    b.check_both("14-reset").await;
    b.fill("password", "password123").await;
    b.fill("password_confirmation", "password123").await;
    b.submit("/ui/reset").await;
    b.check("15-reset-weak").await;
    b.fill("password", PW2).await;
    b.fill("password_confirmation", PW2).await;
    b.submit("/ui/reset").await;
    assert_eq!(b.heading().await, "Password set");
    b.check("16-reset-done").await;
    assert_eq!(app.session_status(&api_session).await, StatusCode::UNAUTHORIZED, "every session ended");

    // In with the new password (and a code), and out everywhere.
    b.follow("Log in").await;
    b.fill("login", "nora@example.com").await;
    b.fill("password", PW2).await;
    b.submit("/ui/login").await;
    app.clock.advance(Duration::from_secs(30));
    b.fill("code", &code_now(&app, &secret)).await;
    b.submit("/ui/login/second-factor").await;
    assert_eq!(b.path().await, "/ui/account");
    b.submit("/ui/account/sessions/end-all").await;
    assert_eq!(b.heading().await, "Logged out everywhere");
    b.check("17-logged-out-everywhere").await;
    b.open("/ui/account").await;
    assert!(b.path().await.starts_with("/ui/login"));
    b.c.clone().close().await.unwrap();
}

/// The rest of the account page in a browser: profile, e-mail change, a session ended from
/// the list, the second factor turned off, the account deleted; and a tenant's own branding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_page_does_what_it_offers() {
    let (app, sink) = TestApp::spawn_with_mail(Backend::Sqlite, |c| c.policy.passwordless_login = true).await;
    app.user("otto", PW).await;
    let elsewhere = app.token("otto", PW).await;
    let b = start_browser(&app, "account").await;
    b.open("/ui/login").await;
    b.fill("login", "otto").await;
    b.fill("password", PW).await;
    b.submit("/ui/login").await;

    b.fill("first_name", "Otto").await;
    b.fill("display_name", "<Otto>").await;
    b.submit("/ui/account/profile").await;
    assert!(b.text().await.contains("Your profile is saved."));
    let shown = b.c.find(Locator::Css("#f-display_name")).await.unwrap().prop("value").await.unwrap();
    assert_eq!(shown.as_deref(), Some("<Otto>"));
    b.fill("username", "x").await;
    b.submit("/ui/account/profile").await;
    b.check("01-profile-error").await;

    b.open("/ui/account").await;
    b.fill("email", "otto.new@example.com").await;
    b.submit("/ui/account/email").await;
    assert!(b.text().await.contains("Is required."), "a new address needs the password: {}", b.text().await);
    b.check("02-email-needs-password").await;
    b.fill("email_password", PW).await;
    b.submit("/ui/account/email").await;
    assert!(b.text().await.contains("Waiting for confirmation: otto.new@example.com"), "{}", b.text().await);
    let link = link_in(&sink, "otto.new@example.com", 1, &format!("{}/ui/verify", app.base)).await;
    b.open(&link).await;
    b.submit("/ui/verify").await;
    assert!(b.text().await.contains("otto.new@example.com is confirmed."));

    b.open("/ui/account").await;
    assert_eq!(app.session_status(&elsewhere).await, StatusCode::OK);
    b.submit("/ui/account/sessions/revoke").await;
    assert!(b.text().await.contains("That session has ended."), "{}", b.text().await);
    assert_eq!(app.session_status(&elsewhere).await, StatusCode::UNAUTHORIZED);

    b.fill("delete_password", PW2).await;
    b.submit("/ui/account/delete").await;
    assert!(b.text().await.contains("Is wrong."), "{}", b.text().await);
    b.check("03-delete-wrong").await;
    b.fill("delete_password", PW).await;
    b.submit("/ui/account/delete").await;
    assert_eq!(b.heading().await, "Account deleted");
    assert_eq!(app.login("otto", PW).await.0, StatusCode::UNAUTHORIZED);

    // Log-in link request and a tenant's branding.
    b.open("/ui/link/request").await;
    b.check_both("04-link-request").await;
    let cmd = portcullis_core::tenants::CreateTenantCommand {
        slug: "acme".into(),
        name: Some("Acme Corp".into()),
        domains: vec![],
        policy: portcullis_core::model::TenantPolicy { brand_color: Some("#fde047".into()), ..Default::default() },
    };
    app.core.create_tenant(&crate::support::op(), cmd).await.unwrap();
    b.open("/t/acme/ui/login").await;
    assert_eq!(b.c.title().await.unwrap(), "Log in · Acme Corp");
    b.check_both("05-tenant-login").await;
    let colour =
        b.c.execute("return getComputedStyle(document.querySelector('button[type=submit]')).backgroundColor;", vec![])
            .await
            .unwrap();
    assert_eq!(colour, json!("rgb(253, 224, 71)"));
    b.c.clone().close().await.unwrap();
}
