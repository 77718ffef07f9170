//! The invariants of DESIGN.md that this part of the system touches, checked against the real
//! binary where a process boundary matters:
//! - a committed write survives a crash of the process (SIGKILL right after the answer);
//! - no secret (password, session token, a mailed link's token) is stored in clear or written
//!   to a log, even at `trace` level (with an SMTP server configured: without one, messages go
//!   to the log by design, for local development);
//! - (identical answers for unknown accounts, concurrent sign-ups and password changes ending
//!   other sessions are in `login`, `signup` and `me`.)

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both;
use crate::support::{Backend, PW, TestApp, fresh_database};

both!(
    an_acknowledged_sign_up_survives_a_killed_process_and_no_secret_reaches_the_log,
    no_secret_is_stored_in_clear,
    sigterm_stops_the_server_cleanly,
);

/// The real `portcullis serve`, on an ephemeral port, with its log captured.
struct Binary {
    child: Child,
    addr: String,
    log: Arc<Mutex<String>>,
}

impl Binary {
    fn start(database_url: &str) -> Self {
        Self::start_with(database_url, &[])
    }

    fn start_with(database_url: &str, env: &[(&str, String)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .arg("serve")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("PORTCULLIS_DATABASE_URL", database_url)
            .env("PORTCULLIS_LISTEN", "127.0.0.1:0")
            .env("PORTCULLIS_PASSWORD__MEMORY_KIB", "1024")
            .env("PORTCULLIS_PASSWORD__ITERATIONS", "1")
            .env("RUST_LOG", "trace")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("portcullis is listening") {
                    let addr = line.split("addr=").nth(1).and_then(|r| r.split_whitespace().next()).map(strip_ansi);
                    let _ = tx.send(addr.unwrap_or_default());
                }
                sink.lock().unwrap().push_str(&line);
                sink.lock().unwrap().push('\n');
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("server did not start: {}", log.lock().unwrap()));
        Self { child, addr, log }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends SIGTERM and waits for the process to exit; returns its exit status and log.
    fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(std::time::Instant::now() < deadline, "still running 10 s after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        };
        std::thread::sleep(Duration::from_millis(100));
        let log = self.log.lock().unwrap().clone();
        (status, log)
    }

    fn kill(mut self) -> String {
        let _ = self.child.kill(); // SIGKILL: no shutdown hooks, no flushing
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(100));
        self.log.lock().unwrap().clone()
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

async fn an_acknowledged_sign_up_survives_a_killed_process_and_no_secret_reaches_the_log(b: Backend) {
    let (url, _guard) = fresh_database(b).await;
    let secret_pw = "zebra quartz lantern 8431 sequoia";
    let new_pw = "marmalade orbit 2977 fjord canopy";
    let client = reqwest::Client::new();
    // Mail goes to a real SMTP server: the links it carries must not reach the log either.
    let sink = crate::support::SmtpSink::start().await.unwrap();
    let smtp = [
        ("PORTCULLIS_MAIL__SMTP__HOST", "127.0.0.1".to_owned()),
        ("PORTCULLIS_MAIL__SMTP__PORT", sink.addr().port().to_string()),
        ("PORTCULLIS_MAIL__SMTP__TLS", "none".to_owned()),
    ];

    let first = Binary::start_with(&url, &smtp);
    let res = client
        .post(first.url("/v1/signup"))
        .json(&json!({"username": "durable", "email": "durable@example.com", "password": secret_pw}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    let token = body["session"]["token"].as_str().unwrap().to_owned();
    let res = client.post(first.url("/v1/password/forgot")).json(&json!({"login": "durable"})).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let mail = sink.wait_for("durable@example.com", 2, Duration::from_secs(15)).await;
    assert_eq!(mail.len(), 2, "a verification link and a reset link");
    let links: Vec<String> = mail.iter().map(|m| m.token("http").unwrap()).collect();
    // Killed right after.
    let log1 = first.kill();

    let second = Binary::start(&url);
    let res = client.get(second.url("/v1/session")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "the session survived the crash");
    let res = client
        .post(second.url("/v1/login"))
        .json(&json!({"login": "durable", "password": secret_pw}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "the account survived the crash");
    let body: Value = res.json().await.unwrap();
    let token2 = body["session"]["token"].as_str().unwrap().to_owned();
    let res = client
        .post(second.url("/v1/me/password"))
        .bearer_auth(&token2)
        .json(&json!({"current_password": secret_pw, "new_password": new_pw}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = client
        .post(second.url("/v1/login"))
        .json(&json!({"login": "durable", "password": "a wrong guess!"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let log2 = second.kill();

    // The password change was acknowledged before the kill, too.
    let third = Binary::start(&url);
    let res = client
        .post(third.url("/v1/login"))
        .json(&json!({"login": "durable", "password": new_pw}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let log3 = third.kill();

    let logs = format!("{log1}\n{log2}\n{log3}");
    assert!(logs.contains("request"), "the log was captured at trace level: {}", &logs[..logs.len().min(500)]);
    for secret in [secret_pw, new_pw, token.as_str(), &token[4..], token2.as_str(), &token2[4..]] {
        assert!(!logs.contains(secret), "a secret reached the log");
    }
    for link in &links {
        assert!(!logs.contains(&link[4..]), "a mailed link's token reached the log");
    }
}

async fn no_secret_is_stored_in_clear(b: Backend) {
    let (app, sink) = TestApp::spawn_with_mail(b, |_| {}).await;
    let pw = "obsidian walrus 5519 kettle";
    let body = app.signup(json!({"username": "clear", "email": "clear@example.com", "password": pw})).await;
    let token = body["session"]["token"].as_str().unwrap().to_owned();
    let token2 = app.token("clear", pw).await;
    let res = app
        .call(
            reqwest::Method::POST,
            "/v1/me/password",
            Some(&token),
            Some(json!({"current_password": pw, "new_password": PW})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    app.call(reqwest::Method::POST, "/v1/logout", Some(&token2), None).await;
    // API keys, one-time log-in tokens and the audit log of all of it.
    let key = crate::support::api_key(&app, Some(portcullis_core::TenantId::DEFAULT), &["tenant:admin"]).await;
    let (_, me) = app.send(reqwest::Method::GET, "/v1/me", &token, None).await;
    let path = format!("/v1/admin/users/{}/login-token", me["user"]["id"]);
    let (status, issued) = app.send(reqwest::Method::POST, &path, &key, None).await;
    assert_eq!(status, StatusCode::CREATED);
    let link = issued["token"].as_str().unwrap().to_owned();
    let (status, _) = app
        .send(reqwest::Method::POST, "/v1/credentials/verify", &key, Some(json!({"login": "clear", "password": PW})))
        .await;
    assert_eq!(status, StatusCode::OK);
    // Mailed links, a second factor's secret, its recovery codes and a step token.
    app.post("/v1/password/forgot", json!({"login": "clear"})).await;
    let mail = sink.wait_for("clear@example.com", 2, Duration::from_secs(15)).await;
    let mailed: Vec<String> = mail.iter().map(|m| m.token("http").unwrap()).collect();
    let (_, e) =
        app.send(reqwest::Method::POST, "/v1/me/second-factor/totp", &token, Some(json!({"password": PW}))).await;
    let secret = e["secret"].as_str().unwrap().to_owned();
    let now = u64::try_from(app.core.now().unix_seconds()).unwrap();
    let code = portcullis_testkit::totp_code(&secret, now);
    let (_, c) =
        app.send(reqwest::Method::POST, "/v1/me/second-factor/totp/confirm", &token, Some(json!({"code": code}))).await;
    let recovery: Vec<String> =
        c["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    let (_, step) = app.login("clear", PW).await;
    let step = step["second_factor"]["step_token"].as_str().unwrap().to_owned();
    app.core.flush_touches().await.unwrap();
    app.core.flush_audit().await.unwrap();

    let dump = dump_database(&app).await;
    let raw_secret: String = totp_rs_hex(&secret);
    let mut more: Vec<String> = mailed.iter().map(|t| t[4..].to_owned()).collect();
    more.extend([secret.clone(), raw_secret, step[4..].to_owned()]);
    more.extend(recovery.iter().flat_map(|r| [r.clone(), r.replace('-', "")]));
    for secret in &more {
        assert!(!dump.contains(secret.as_str()), "a secret is stored in clear: {secret}");
    }
    assert!(dump.contains("clear@example.com"), "the dump holds the data");
    assert!(dump.contains("credentials.verified"), "the dump holds the audit log");
    for secret in
        [pw, PW, token.as_str(), &token[4..], token2.as_str(), &token2[4..], &key, &key[4..], &link, &link[4..]]
    {
        assert!(!dump.contains(secret), "a secret is stored in clear");
    }
    assert!(dump.contains("$argon2id$"), "passwords are stored as argon2id PHC strings");
}

/// The hex form of a base32 TOTP secret's bytes (as PostgreSQL would show a bytea).
fn totp_rs_hex(base32: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = String::new();
    for c in base32.bytes() {
        let v = ALPHABET.iter().position(|a| *a == c).unwrap() as u32;
        bits = (bits << 5) | v;
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push_str(&format!("{:02x}", (bits >> n) & 0xff));
        }
    }
    out
}

/// Everything the database holds, as text: the raw bytes of the SQLite file and its WAL, or
/// every row of every table of PostgreSQL.
async fn dump_database(app: &TestApp) -> String {
    match app.backend {
        Backend::Sqlite => {
            let path = app.config.database_url.trim_start_matches("sqlite://").to_owned();
            let mut all = Vec::new();
            for suffix in ["", "-wal", "-shm"] {
                if let Ok(bytes) = std::fs::read(format!("{path}{suffix}")) {
                    all.extend(bytes);
                }
            }
            String::from_utf8_lossy(&all).into_owned()
        }
        Backend::Postgres => {
            use sqlx::{Connection, Row};
            let mut conn = sqlx::PgConnection::connect(&app.config.database_url).await.unwrap();
            let tables: Vec<String> =
                sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
            let mut out = String::new();
            for t in tables {
                let sql = format!("SELECT row_to_json(t)::text AS j FROM \"{t}\" t");
                for row in sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&mut conn).await.unwrap() {
                    out.push_str(&row.get::<String, _>("j"));
                    out.push('\n');
                }
            }
            out
        }
    }
}

async fn sigterm_stops_the_server_cleanly(b: Backend) {
    let (url, _guard) = fresh_database(b).await;
    let server = Binary::start(&url);
    let client = reqwest::Client::new();
    let res = client
        .post(server.url("/v1/signup"))
        .json(&json!({"email": "term@example.com", "password": PW}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let (status, log) = server.terminate();
    assert!(status.success(), "exit status {status}: {log}");
    assert!(log.contains("shutting down") && log.contains("stopped"), "{log}");
    let again = Binary::start(&url);
    let res = client
        .post(again.url("/v1/login"))
        .json(&json!({"login": "term@example.com", "password": PW}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    again.kill();
}
