//! The test harness: the real application, in-process, on port 0, on a fresh database of
//! either backend, with a clock the test controls.

use std::sync::Arc;
use std::time::Duration;

use portcullis::config::Config;
use portcullis_core::Core;
use portcullis_core::password::HashingConfig;
use portcullis_testkit::ManualClock;
pub use portcullis_testkit::smtp::{Answer, ReceivedMail, SmtpSink};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

pub use portcullis_testkit::Backend;

/// Runs an `async fn(Backend)` test on both backends: `both!(name);` makes `name::sqlite` and
/// `name::postgres`.
#[macro_export]
macro_rules! both {
    ($($name:ident),* $(,)?) => { $(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::support::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::support::Backend::Postgres).await
            }
        }
    )* };
}

pub use portcullis_testkit::DbGuard;

/// A fresh database of a backend: its URL and what keeps it alive.
pub async fn fresh_database(backend: Backend) -> (String, DbGuard) {
    portcullis_testkit::fresh_database(backend).await.unwrap_or_else(|e| panic!("{e}"))
}

/// The configuration tests start from: real argon2id with small parameters (fast), generous
/// rate limits, a short revocation poll interval.
pub fn test_config(database_url: &str) -> Config {
    let mut c = Config { database_url: database_url.to_owned(), ..Config::default() };
    c.password = HashingConfig {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
        workers: 2,
        queue: 64,
        max_wait: Duration::from_secs(10),
    };
    c.rate_limits.login_per_ip_per_minute = 10_000;
    c.rate_limits.login_per_identifier_per_minute = 1_000;
    c.rate_limits.identifier_checks_per_minute = 10_000;
    c.database.revocation_poll_interval = Duration::from_millis(50);
    c.database.max_connections = 8;
    c.mail.poll_interval = Duration::from_millis(100);
    c
}

/// Sends the application's mail to `sink` (plain SMTP on 127.0.0.1).
pub fn mail_to(config: &mut Config, sink: &SmtpSink) {
    config.mail.smtp = Some(portcullis_mail::SmtpConfig {
        host: "127.0.0.1".into(),
        port: Some(sink.addr().port()),
        tls: portcullis_mail::TlsMode::None,
        username: None,
        password: None,
        password_file: None,
        timeout: Duration::from_secs(5),
    });
    config.mail.from = "Portcullis Tests <auth@example.com>".into();
}

/// A running application.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub core: Arc<Core>,
    pub clock: ManualClock,
    pub config: Config,
    pub backend: Backend,
    running: Option<portcullis::Running>,
    _db: Option<Arc<DbGuard>>,
}

impl TestApp {
    /// Starts an application on a fresh database.
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Starts an application on a fresh database, after `tweak` adjusts the configuration.
    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        let (url, guard) = fresh_database(backend).await;
        let mut config = test_config(&url);
        tweak(&mut config);
        Self::start(backend, config, Some(Arc::new(guard)), ManualClock::starting_now()).await
    }

    /// Starts another node on this application's database (sharing nothing in memory; the
    /// database lives until the last node is dropped).
    pub async fn second_node(&self) -> Self {
        Self::start(self.backend, self.config.clone(), self._db.clone(), self.clock.clone()).await
    }

    /// Starts an application that sends its mail to a fresh SMTP sink.
    pub async fn spawn_with_mail(backend: Backend, tweak: impl FnOnce(&mut Config)) -> (Self, SmtpSink) {
        let sink = SmtpSink::start().await.unwrap();
        let app = Self::spawn_with(backend, |c| {
            mail_to(c, &sink);
            tweak(c);
        })
        .await;
        (app, sink)
    }

    async fn start(backend: Backend, mut config: Config, db: Option<Arc<DbGuard>>, clock: ManualClock) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        // Links in mail point at this server.
        if config.policy.public_url == portcullis_core::model::Policy::default().public_url {
            config.policy.public_url = format!("http://{}", listener.local_addr().unwrap());
        }
        let core = portcullis::build_core(&config, Arc::new(clock.clone())).await.unwrap();
        let running = portcullis::start(&config, core.clone(), listener, std::future::pending()).await.unwrap();
        let base = format!("http://{}", running.addr);
        let client = reqwest::Client::builder().user_agent("portcullis-tests/1.0").build().unwrap();
        let app = Self { base, client, core, clock, config, backend, running: Some(running), _db: db };
        app.wait_until_sessions_cached().await;
        app
    }

    // The revocation feed opens in the background; wait for it so tests see steady state.
    async fn wait_until_sessions_cached(&self) {
        for _ in 0..200 {
            if self.core.session_cache().is_feed_live() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("revocation feed did not open");
    }

    /// Stops the server.
    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request with an optional JSON body and bearer token.
    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Response {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.call(Method::POST, path, None, Some(body)).await
    }

    pub async fn get_auth(&self, path: &str, token: &str) -> Response {
        self.call(Method::GET, path, Some(token), None).await
    }

    /// Signs a user up; returns the answer's JSON, asserting 201.
    pub async fn signup(&self, body: Value) -> Value {
        let res = self.post("/v1/signup", body).await;
        let status = res.status();
        let json: Value = res.json().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{json}");
        json
    }

    /// Signs up `name` (username and e-mail) with `password`; returns the session token.
    pub async fn user(&self, name: &str, password: &str) -> String {
        let json =
            self.signup(json!({"username": name, "email": format!("{name}@example.com"), "password": password})).await;
        json["session"]["token"].as_str().unwrap().to_owned()
    }

    /// Logs in; returns (status, body).
    pub async fn login(&self, login: &str, password: &str) -> (StatusCode, Value) {
        let res = self.post("/v1/login", json!({"login": login, "password": password})).await;
        let status = res.status();
        (status, res.json().await.unwrap())
    }

    /// Logs in and returns the token, asserting success.
    pub async fn token(&self, login: &str, password: &str) -> String {
        let (status, body) = self.login(login, password).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["session"]["token"].as_str().unwrap().to_owned()
    }

    /// Status of `GET /v1/session` with this token.
    pub async fn session_status(&self, token: &str) -> StatusCode {
        self.get_auth("/v1/session", token).await.status()
    }
}

/// A password zxcvbn rates strong.
pub const PW: &str = "correct horse battery staple";
/// Another strong password.
pub const PW2: &str = "tangerine quietly juggles seven lanterns";

/// Asserts an error answer: status, the error shape, and its code.
pub async fn assert_error(res: Response, status: StatusCode, code: &str) -> Value {
    let got = res.status();
    let ct = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    let text = res.text().await.unwrap();
    assert_eq!(got, status, "body: {text}");
    assert_eq!(ct.as_deref(), Some("application/json"), "errors are JSON: {text}");
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    body
}

/// The operator, as the CLI acts: may do everything.
pub fn op() -> portcullis_core::Caller {
    portcullis_core::Caller::operator(portcullis_core::ClientInfo::default())
}

/// Defines a custom attribute through the core, as the CLI does.
pub async fn define_attribute(
    app: &TestApp,
    tenant: portcullis_core::TenantId,
    name: &str,
    kind: portcullis_core::model::AttributeKind,
    required: bool,
    user_editable: bool,
) {
    let def = portcullis_core::settings::DefineAttribute {
        name: name.into(),
        kind,
        required,
        user_editable,
        problems: Default::default(),
    };
    app.core.define_attribute(&op(), tenant, def).await.unwrap();
}

/// Issues an API key through the core, as the CLI does; returns the secret.
pub async fn api_key(app: &TestApp, tenant: Option<portcullis_core::TenantId>, scopes: &[&str]) -> String {
    use portcullis_core::model::Scope;
    let cmd = portcullis_core::keys::CreateApiKeyCommand {
        tenant,
        name: format!("test key {}", scopes.join(" ")),
        scopes: scopes.iter().map(|s| Scope::parse(s).unwrap()).collect(),
        expires_at: None,
        problems: Default::default(),
    };
    let issued = app.core.create_api_key(&op(), cmd).await.unwrap();
    issued.key.expose().to_owned()
}

/// Creates a tenant through the core; returns its id.
pub async fn tenant(app: &TestApp, slug: &str, domains: &[&str]) -> portcullis_core::TenantId {
    let cmd = portcullis_core::tenants::CreateTenantCommand {
        slug: slug.into(),
        name: None,
        domains: domains.iter().map(|d| (*d).to_owned()).collect(),
        policy: Default::default(),
    };
    app.core.create_tenant(&op(), cmd).await.unwrap().id
}

impl TestApp {
    /// Sends a request with a JSON body (or none) and a bearer credential; returns status and JSON.
    pub async fn send(&self, method: Method, path: &str, bearer: &str, body: Option<Value>) -> (StatusCode, Value) {
        let res = self.call(method, path, Some(bearer), body).await;
        let status = res.status();
        let text = res.text().await.unwrap();
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
        };
        (status, json)
    }
}

/// Switches a legacy dialect on for a tenant, as an operator does with
/// `portcullis tenant enable-dialect`.
pub async fn enable_dialect(app: &TestApp, tenant: portcullis_core::TenantId, dialect: portcullis_core::Dialect) {
    app.core.set_dialect(&op(), tenant, dialect, true).await.unwrap();
}
