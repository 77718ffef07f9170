//! The `portcullis` command line, run as an operator would run it.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use reqwest::StatusCode;
use serde_json::Value;

use crate::both;
use crate::support::{Backend, PW, TestApp, fresh_database};

both!(
    user_create_makes_accounts_that_log_in,
    user_create_refuses_bad_input_with_exit_code_65,
    migrate_brings_the_schema_up
);

fn portcullis(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    // Fast hashing for tests; everything else is the default configuration.
    cmd.env("PORTCULLIS_PASSWORD__MEMORY_KIB", "1024").env("PORTCULLIS_PASSWORD__ITERATIONS", "1");
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

async fn user_create_makes_accounts_that_log_in(b: Backend) {
    let app = TestApp::spawn(b).await;
    let db = [("PORTCULLIS_DATABASE_URL", app.config.database_url.as_str())];
    let out = portcullis(
        &[
            "user",
            "create",
            "--username",
            "ops",
            "--email",
            "ops@example.com",
            "--field",
            "first_name=Olga",
            "--password-stdin",
        ],
        &db,
        Some(&format!("{PW}\n")),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["username"], "ops");
    assert!(created["id"].as_i64().unwrap() > 0);
    let (status, body) = app.login("ops", PW).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["user"]["first_name"], "Olga");

    let json_user = format!(r#"{{"email": "json@example.com", "password": "{PW}", "city": "Turku"}}"#);
    let out = portcullis(&["user", "create", "--json", "--email-verified"], &db, Some(&json_user));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (status, body) = app.login("json@example.com", PW).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["user"]["city"], "Turku");
    assert_eq!(body["user"]["email_verified"], true);
    assert!(!text(&out.stdout).contains(PW) && !text(&out.stderr).contains(PW));
}

async fn user_create_refuses_bad_input_with_exit_code_65(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.user("taken", PW).await;
    let db = [("PORTCULLIS_DATABASE_URL", app.config.database_url.as_str())];
    let cases: &[(&[&str], Option<&str>, &str)] = &[
        (
            &["user", "create", "--email", "not-an-email", "--password-stdin"],
            Some(PW),
            "email: must be a valid e-mail address",
        ),
        (
            &["user", "create", "--username", "taken", "--email", "t2@example.com", "--password-stdin"],
            Some(PW),
            "username is already taken",
        ),
        (
            &["user", "create", "--email", "w@example.com", "--password-stdin"],
            Some("password"),
            "too weak or too common",
        ),
        (&["user", "create", "--email", "w@example.com"], None, "give a password"),
        (
            &["user", "create", "--tenant", "nope", "--email", "w@example.com", "--password-stdin"],
            Some(PW),
            "no tenant with slug \"nope\"",
        ),
        (
            &["user", "create", "--email", "w@example.com", "--field", "status=active", "--password-stdin"],
            Some(PW),
            "cannot be set: status",
        ),
        (
            &["user", "create", "--email", "w@example.com", "--field", "oops", "--password-stdin"],
            Some(PW),
            "expected NAME=VALUE",
        ),
        (&["user", "create", "--json"], Some("[1, 2]"), "not a JSON object"),
    ];
    for (args, stdin, message) in cases {
        let out = portcullis(args, &db, *stdin);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(65), "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
    }
    let out = portcullis(&["user", "create", "--bogus"], &db, None);
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
    assert_eq!(app.login("w@example.com", PW).await.0, StatusCode::UNAUTHORIZED, "nothing was created");
}

async fn migrate_brings_the_schema_up(b: Backend) {
    let (url, _guard) = fresh_database(b).await;
    let out = portcullis(&["migrate"], &[("PORTCULLIS_DATABASE_URL", &url)], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("up to date"));
    let again = portcullis(&["migrate"], &[("PORTCULLIS_DATABASE_URL", &url)], None);
    assert!(again.status.success(), "migrating twice is harmless: {}", text(&again.stderr));
}

#[test]
fn config_check_prints_the_effective_configuration_without_secrets() {
    let out = portcullis(
        &["config", "check"],
        &[
            ("PORTCULLIS_DATABASE_URL", "postgres://app:hunter2@db.internal/portcullis"),
            ("PORTCULLIS_LISTEN", "0.0.0.0:9999"),
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert!(printed.contains("listen = \"0.0.0.0:9999\""), "{printed}");
    assert!(printed.contains("postgres://app:***@db.internal/portcullis"), "{printed}");
    assert!(!printed.contains("hunter2"));
    assert!(printed.contains("memory_kib = 1024"));
    // What it prints is itself a valid configuration file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.toml");
    std::fs::write(&file, &printed).unwrap();
    let out = portcullis(&["--config", file.to_str().unwrap(), "config", "check"], &[], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn configuration_errors_exit_78_and_say_what_is_wrong() {
    let out = portcullis(&["config", "check"], &[("PORTCULLIS_LISTN", "0.0.0.0:1")], None);
    assert_eq!(out.status.code(), Some(78));
    assert!(text(&out.stderr).contains("listn"), "{}", text(&out.stderr));
    let out = portcullis(&["config", "check"], &[("PORTCULLIS_DATABASE_URL", "mysql://x")], None);
    assert_eq!(out.status.code(), Some(78));
    let out = portcullis(&["--config", "/nonexistent/p.toml", "config", "check"], &[], None);
    assert_eq!(out.status.code(), Some(78));
    assert!(text(&out.stderr).contains("does not exist"));
    let out = portcullis(&["serve"], &[("PORTCULLIS_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")], None);
    assert_eq!(out.status.code(), Some(69), "an unreachable database is 'unavailable': {}", text(&out.stderr));
}

#[test]
fn every_command_has_help() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["migrate", "--help"],
        &["user", "create", "--help"],
        &["config", "check", "--help"],
    ] {
        let out = portcullis(args, &[], None);
        assert!(out.status.success(), "{args:?}");
        assert!(text(&out.stdout).contains("Usage:"), "{args:?}");
    }
}
