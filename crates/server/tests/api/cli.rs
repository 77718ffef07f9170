//! The `portcullis` command line, run as an operator would run it.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use std::time::Duration;

use portcullis_core::TenantId;
use portcullis_core::store::AuditQuery;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both;
use crate::support::{Backend, PW, PW2, TestApp, fresh_database, op};

both!(
    user_create_makes_accounts_that_log_in,
    user_create_refuses_bad_input_with_exit_code_65,
    migrate_brings_the_schema_up,
    tenant_commands_manage_tenants,
    api_keys_from_the_cli_work_against_the_server,
    user_commands_find_change_and_delete_users,
    mail_and_journey_commands_reach_users,
);

pub(crate) fn portcullis(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
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

pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs the binary against the app's database; asserts success and parses the one JSON object
/// printed.
pub(crate) fn ok(app: &TestApp, args: &[&str], stdin: Option<&str>) -> Value {
    let out = portcullis(args, &[("PORTCULLIS_DATABASE_URL", &app.config.database_url)], stdin);
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", text(&out.stdout)))
}

/// Runs the binary against the app's database; asserts success and parses the JSON Lines.
pub(crate) fn ok_lines(app: &TestApp, args: &[&str]) -> Vec<Value> {
    let out = portcullis(args, &[("PORTCULLIS_DATABASE_URL", &app.config.database_url)], None);
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Runs the binary against the app's database; asserts the exit code and that standard error
/// says `message`. Returns standard output.
pub(crate) fn fails(app: &TestApp, args: &[&str], stdin: Option<&str>, code: i32, message: &str) -> String {
    let out = portcullis(args, &[("PORTCULLIS_DATABASE_URL", &app.config.database_url)], stdin);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
    assert!(err.contains(message), "{args:?}: wanted {message:?} in: {err}");
    text(&out.stdout)
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
            "no such tenant \"nope\"",
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
        &["user", "show", "--help"],
        &["user", "list", "--help"],
        &["user", "set-password", "--help"],
        &["user", "disable", "--help"],
        &["user", "enable", "--help"],
        &["user", "delete", "--help"],
        &["tenant", "create", "--help"],
        &["tenant", "list", "--help"],
        &["tenant", "show", "--help"],
        &["tenant", "update", "--help"],
        &["tenant", "disable", "--help"],
        &["tenant", "enable", "--help"],
        &["key", "create", "--help"],
        &["key", "list", "--help"],
        &["key", "revoke", "--help"],
        &["import", "--help"],
        &["export", "--help"],
        &["config", "check", "--help"],
    ] {
        let out = portcullis(args, &[], None);
        assert!(out.status.success(), "{args:?}");
        assert!(text(&out.stdout).contains("Usage:"), "{args:?}");
    }
}

async fn tenant_commands_manage_tenants(b: Backend) {
    let app = TestApp::spawn(b).await;
    let t = ok(
        &app,
        &[
            "tenant",
            "create",
            "--slug",
            "acme",
            "--name",
            "Acme Inc",
            "--domain",
            "Acme.Example",
            "--domain",
            "login.acme.example",
            "--policy",
            r#"{"password_min_length": 12, "require_username": true}"#,
        ],
        None,
    );
    assert_eq!(t["slug"], "acme");
    assert_eq!(t["name"], "Acme Inc");
    assert_eq!(t["domains"], json!(["acme.example", "login.acme.example"]));
    assert_eq!(t["policy"], json!({"password_min_length": 12, "require_username": true}));
    assert_eq!(t["disabled"], false);
    let slugs: Vec<Value> = ok_lines(&app, &["tenant", "list"]).iter().map(|t| t["slug"].clone()).collect();
    assert_eq!(slugs, [json!("default"), json!("acme")]);
    assert_eq!(ok(&app, &["tenant", "show", "acme"], None)["id"], t["id"]);

    let t = ok(&app, &["tenant", "update", "acme", "--name", "Acme", "--domain", "acme.test"], None);
    assert_eq!((t["name"].as_str(), t["domains"].clone()), (Some("Acme"), json!(["acme.test"])));
    assert_eq!(t["policy"]["password_min_length"], 12, "what is not given stays");
    let t = ok(&app, &["tenant", "update", "acme", "--no-domains", "--policy", "{}"], None);
    assert_eq!((t["domains"].clone(), t["policy"].clone()), (json!([]), json!({})));
    let t = ok(&app, &["tenant", "disable", "acme"], None);
    assert_eq!(t["disabled"], true);
    assert!(app.core.find_tenant(&op(), "acme").await.unwrap().disabled);
    assert_eq!(ok(&app, &["tenant", "show", "acme"], None)["disabled"], true);
    assert_eq!(ok(&app, &["tenant", "enable", "acme"], None)["disabled"], false);

    fails(&app, &["tenant", "create", "--slug", "acme"], None, 65, "slug is already taken");
    fails(&app, &["tenant", "create", "--slug", "x", "--policy", "{not json"], None, 65, "--policy");
    fails(&app, &["tenant", "create", "--slug", "x", "--policy", r#"{"max_users": 3}"#], None, 65, "unknown field");
    fails(&app, &["tenant", "create", "--slug", "x", "--policy", r#"{"password_min_score": 9}"#], None, 65, "policy");
    fails(&app, &["tenant", "create", "--slug", "Bad Slug"], None, 65, "slug");
    fails(&app, &["tenant", "show", "nope"], None, 65, "no such tenant \"nope\"");
    fails(&app, &["tenant", "update", "nope", "--name", "N"], None, 65, "no such tenant");
    fails(&app, &["tenant", "disable", "nope"], None, 65, "no such tenant");
    fails(&app, &["tenant", "disable", "default"], None, 65, "default tenant cannot be disabled");
    fails(&app, &["tenant", "update", "acme"], None, 2, "nothing to change");
    assert!(app.core.find_tenant(&op(), "x").await.is_err(), "nothing refused was created");

    // Every change was audited, as the CLI, before the process exited.
    let q = AuditQuery { actor: Some("cli".into()), action: Some("tenant".into()), limit: 100, ..Default::default() };
    let mut actions: Vec<String> =
        app.core.audit_events(&op(), q, Default::default()).await.unwrap().into_iter().map(|e| e.action).collect();
    actions.sort();
    actions.dedup();
    assert_eq!(actions, ["tenant.created", "tenant.disabled", "tenant.enabled", "tenant.updated"]);
}

async fn api_keys_from_the_cli_work_against_the_server(b: Backend) {
    let app = TestApp::spawn(b).await;
    let reader = ok(&app, &["key", "create", "--name", "crm", "--tenant", "default", "--scope", "users:read"], None);
    let secret = reader["key"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("pck_") && secret.starts_with(reader["prefix"].as_str().unwrap()));
    assert_eq!((reader["scopes"].clone(), reader["tenant"].clone()), (json!(["users:read"]), json!("default")));
    let verifier =
        ok(&app, &["key", "create", "--name", "sso", "--tenant", "default", "--scope", "credentials:verify"], None);
    let verify_secret = verifier["key"].as_str().unwrap().to_owned();
    let operator =
        ok(&app, &["key", "create", "--name", "ops", "--operator", "--expires", "2099-01-01T00:00:00Z"], None);
    assert_eq!((operator["scopes"].clone(), operator["tenant"].clone()), (json!(["operator"]), Value::Null));

    assert_eq!(app.get_auth("/v1/admin/users", &secret).await.status(), StatusCode::OK);
    assert_eq!(app.get_auth("/v1/admin/users", &verify_secret).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.get_auth("/v1/admin/users", operator["key"].as_str().unwrap()).await.status(), StatusCode::OK);

    let out = portcullis(&["key", "list"], &[("PORTCULLIS_DATABASE_URL", &app.config.database_url)], None);
    let listed = text(&out.stdout);
    assert!(out.status.success());
    assert!(!listed.contains(&secret) && !listed.contains(&verify_secret), "{listed}");
    let names: Vec<Value> = ok_lines(&app, &["key", "list"]).iter().map(|k| k["name"].clone()).collect();
    assert_eq!(names.len(), 2, "the tenant's keys only: {names:?}");
    let ops = ok_lines(&app, &["key", "list", "--operator"]);
    assert_eq!((ops.len(), ops[0]["name"].as_str(), ops[0].get("key")), (1, Some("ops"), None));

    let id = reader["id"].to_string();
    fails(&app, &["key", "revoke", &id, "--operator"], None, 65, "no such operator key");
    assert_eq!(ok(&app, &["key", "revoke", &id], None)["revoked"], true);
    assert_eq!(app.get_auth("/v1/admin/users", &secret).await.status(), StatusCode::UNAUTHORIZED);
    fails(&app, &["key", "revoke", &id], None, 65, "no such key");
    let listed = ok_lines(&app, &["key", "list"]);
    assert!(listed.iter().any(|k| k["id"] == reader["id"] && k["revoked_at"].is_string()));

    fails(
        &app,
        &["key", "create", "--name", "k", "--tenant", "nope", "--scope", "users:read"],
        None,
        65,
        "no such tenant",
    );
    let past = ["key", "create", "--name", "k", "--operator", "--expires", "2001-01-01T00:00:00Z"];
    fails(&app, &past, None, 65, "expires_at: must be in the future");
    fails(&app, &["key", "create", "--name", "k", "--operator", "--expires", "tomorrow"], None, 65, "RFC 3339");
    fails(&app, &["key", "create", "--name", "k", "--tenant", "default", "--scope", "root"], None, 2, "root");
    fails(&app, &["key", "create", "--name", "k"], None, 2, "--operator");
}

async fn user_commands_find_change_and_delete_users(b: Backend) {
    let app = TestApp::spawn(b).await;
    let old_session = app.user("ada", PW).await;
    app.user("bob", PW).await;
    app.core.create_role(&op(), TenantId::DEFAULT, "member", None).await.unwrap();

    let ada = ok(&app, &["user", "show", "--login", "ada"], None);
    assert_eq!((ada["username"].as_str(), ada["email"].as_str()), (Some("ada"), Some("ada@example.com")));
    assert_eq!(ada["status"], "active");
    assert!(ada.get("password_hash").is_none() && !ada.to_string().contains("argon2"), "{ada}");
    let id = ada["id"].to_string();
    assert_eq!(ok(&app, &["user", "show", "--id", &id], None), ada);
    assert_eq!(ok(&app, &["user", "show", "--login", "ADA@example.com"], None)["id"], ada["id"]);
    fails(&app, &["user", "show", "--id", "999999"], None, 65, "no such user");
    fails(&app, &["user", "show", "--login", "nobody"], None, 65, "no such user");
    fails(&app, &["user", "show", "--login", "ada", "--tenant", "nope"], None, 65, "no such tenant");
    fails(&app, &["user", "show"], None, 2, "--id");

    let args =
        ["user", "create", "--username", "cat", "--email", "cat@example.com", "--role", "member", "--password-stdin"];
    assert_eq!(ok(&app, &args, Some(PW))["roles"], json!(["member"]));
    let all = ok_lines(&app, &["user", "list"]);
    let names: Vec<&str> = all.iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["ada", "bob", "cat"]);
    assert_eq!(ok_lines(&app, &["user", "list", "--limit", "2"]).len(), 2);
    let bobs = ok_lines(&app, &["user", "list", "--search", "bob"]);
    assert_eq!((bobs.len(), bobs[0]["username"].as_str()), (1, Some("bob")));
    let members = ok_lines(&app, &["user", "list", "--role", "member"]);
    assert_eq!((members.len(), members[0]["username"].as_str()), (1, Some("cat")));
    assert!(ok_lines(&app, &["user", "list", "--status", "disabled"]).is_empty());

    // A new password: the old one and the old sessions stop working.
    ok(&app, &["user", "set-password", "--login", "ada"], Some(&format!("{PW2}\n")));
    assert_eq!(app.login("ada", PW).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.login("ada", PW2).await.0, StatusCode::OK);
    let mut ended = false;
    for _ in 0..100 {
        if app.session_status(&old_session).await == StatusCode::UNAUTHORIZED {
            ended = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ended, "setting a password ends the user's sessions");
    fails(&app, &["user", "set-password", "--id", &id], Some(""), 65, "standard input");
    fails(&app, &["user", "set-password", "--id", &id], Some("password\n"), 65, "password");

    assert_eq!(ok(&app, &["user", "disable", "--id", &id], None)["status"], "disabled");
    let (status, body) = app.login("ada", PW2).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("account_disabled")));
    assert_eq!(ok_lines(&app, &["user", "list", "--status", "disabled"]).len(), 1);
    assert_eq!(ok(&app, &["user", "enable", "--login", "ada"], None)["status"], "active");
    assert_eq!(app.login("ada", PW2).await.0, StatusCode::OK);

    fails(&app, &["user", "delete", "--id", &id], None, 2, "--yes");
    assert_eq!(app.login("ada", PW2).await.0, StatusCode::OK, "nothing was deleted");
    assert_eq!(
        ok(&app, &["user", "delete", "--login", "ada", "--yes"], None),
        json!({"id": ada["id"], "deleted": true})
    );
    assert_eq!(app.login("ada", PW2).await.0, StatusCode::UNAUTHORIZED);
    fails(&app, &["user", "show", "--id", &id], None, 65, "no such user");
    fails(&app, &["user", "delete", "--id", &id, "--yes"], None, 65, "no such user");

    let q = AuditQuery { actor: Some("cli".into()), limit: 100, ..Default::default() };
    let actions: Vec<String> =
        app.core.audit_events(&op(), q, Default::default()).await.unwrap().into_iter().map(|e| e.action).collect();
    for a in ["user.created", "user.password_set", "user.disabled", "user.enabled", "user.deleted"] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
}

async fn mail_and_journey_commands_reach_users(b: Backend) {
    let (app, sink) = TestApp::spawn_with_mail(b, |_| {}).await;
    app.user("mo", PW).await;
    sink.wait_for("mo@example.com", 1, Duration::from_secs(15)).await;
    let port = sink.addr().port().to_string();
    let smtp = [
        ("PORTCULLIS_DATABASE_URL", app.config.database_url.as_str()),
        ("PORTCULLIS_MAIL__SMTP__HOST", "127.0.0.1"),
        ("PORTCULLIS_MAIL__SMTP__PORT", port.as_str()),
        ("PORTCULLIS_MAIL__SMTP__TLS", "none"),
    ];
    // A test message goes out at once, through the configured server.
    let out = portcullis(&["mail", "test", "ops@example.com"], &smtp, None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sent: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sent, json!({"sent": true, "to": "ops@example.com", "via": "smtp"}));
    let got = sink.wait_for("ops@example.com", 1, Duration::from_secs(5)).await;
    assert!(got[0].subject.contains("Test message"), "{}", got[0].subject);
    // A server that does not answer: exit 69, saying so.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let down = [smtp[0], smtp[1], ("PORTCULLIS_MAIL__SMTP__PORT", closed.as_str()), smtp[3]];
    let out = portcullis(&["mail", "test", "ops@example.com"], &down, None);
    assert_eq!(out.status.code(), Some(69), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("cannot reach the SMTP server"), "{}", text(&out.stderr));
    fails(&app, &["mail", "test", "not an address"], None, 65, "email");

    // Links for a user, queued by the CLI and sent by the running server.
    let queued = ok(&app, &["user", "send-password-reset", "--login", "mo"], None);
    assert_eq!(queued["queued"], "password_reset");
    // The CLI stamps the message with the real time; the server's clock is the test's.
    app.clock.advance(Duration::from_secs(60));
    let got = sink.wait_for("mo@example.com", 2, Duration::from_secs(15)).await;
    assert!(got[1].token(&format!("{}/ui/reset", app.base)).is_some());
    fails(&app, &["user", "send-verification", "--login", "nobody"], None, 65, "no such user");
    let status = ok(&app, &["mail", "status"], None);
    assert_eq!(status["given_up"], 0);

    // A second factor reset, and a log-in token.
    let removed = ok(&app, &["user", "reset-second-factor", "--login", "mo"], None);
    assert_eq!(removed["second_factor_removed"], false);
    let t = ok(&app, &["user", "login-token", "--login", "mo"], None);
    let res = app.post("/v1/login/token", json!({"token": t["token"]})).await;
    assert_eq!(res.status(), StatusCode::OK);
}
