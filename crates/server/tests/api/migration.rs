//! `portcullis import` and `portcullis export`, run as an operator would: users with the
//! password hashes of other systems, log-ins with their original passwords afterwards, refused
//! rows, and round trips between tenants.

use portcullis_core::model::AttributeKind;
use portcullis_core::parse::LoginKey;
use portcullis_core::{TenantId, UserId};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both;
use crate::cli::{fails, ok, ok_lines, portcullis, text};
use crate::support::{Backend, PW, TestApp, define_attribute, op};
both!(
    an_endless_line_or_cell_stops_the_import_instead_of_filling_memory,
    import_keeps_legacy_hashes_until_the_next_log_in,
    import_reports_bad_rows_and_keeps_the_good_ones,
    csv_import_and_export_round_trip_into_another_tenant
);

/// Passwords and hashes made independently (Python: bcrypt, passlib, hashlib) in each format
/// import accepts: (username, password, password_format, password_hash, password_salt).
const LEGACY: &[(&str, &str, &str, &str, Option<&str>)] = &[
    (
        "bcrypt",
        "velvet otter compass 1987",
        "bcrypt",
        "$2b$04$RClIb71BQoM3TRWJjkmVz.lt4nv0u.WEpWP05dvtKuzdilO6RYUpG",
        None,
    ),
    (
        "bcrypt_y",
        "harbor lantern quietly 42",
        "bcrypt",
        "$2y$04$GtrbxZ2LLmIMIAdoUAq5tOV.Y6m/zrgK3/u/pyoq0hJqvg6Hh91Du",
        None,
    ),
    (
        "django",
        "saffron glacier tumbles 73",
        "pbkdf2_sha256",
        "pbkdf2_sha256$1000$1RtNXP0TsNDM$20qoppAn0zF2WAO14TH1eJnrOgZgyDjAxhU6pOVNrs0=",
        None,
    ),
    ("wordpress", "copper meadow whistle 905", "phpass", "$P$6/ex3qKQZKmGZq5XRRsGUq56E7rj0z0", None),
    ("ossn", "midnight cobalt ferry 218", "md5_salted", "85ee22fb77e35484305340d7cfd734a0", Some("Xy7$salt")),
    ("siberian", "orchard thunder pebble 64", "sha1", "c7490697993e80dcce45fe26a488c6375cc706be", None),
    (
        "salted",
        "lilac harbour engine 3310",
        "sha256_salted",
        "4157dbae28a7841c35b022de16a72ec0182bb8de4f89cbed890c012ebdbab091",
        Some("pepper-9"),
    ),
    (
        "saltfirst",
        "tundra biscuit falcon 58",
        "sha256_salt_first",
        "ae2db2b94616be629df0787c685e04c9192ba40bac9ad7fe0e155a3ef79b97e8",
        Some("s4lt:"),
    ),
    (
        "argon",
        "marble sparrow voyage 777",
        "argon2id",
        "$argon2id$v=19$m=1024,t=1,p=1$FcK4dy7FWGttjbE2Rsg5pw$E5eFxy16qkHdD3/7Sdv6QvG8NpbVek7Dz1nlg2Z+Qc0",
        None,
    ),
];

async fn stored_hash(app: &TestApp, tenant: TenantId, login: &str) -> Option<String> {
    let u = app.core.stores().users.user_with_secret(tenant, &LoginKey::from_login(login)).await.unwrap()?;
    let by_id = app.core.stores().users.user_with_secret_by_id(tenant, UserId(u.user.id.0)).await.unwrap()?;
    by_id.password_hash
}

async fn import_keeps_legacy_hashes_until_the_next_log_in(b: Backend) {
    let app = TestApp::spawn(b).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("legacy.jsonl");
    let rows: Vec<String> = LEGACY
        .iter()
        .map(|(name, _, format, hash, salt)| {
            let mut row = json!({"username": name, "email": format!("{name}@example.com"),
                                 "password_format": format, "password_hash": hash});
            if let Some(s) = salt {
                row["password_salt"] = json!(s);
            }
            row.to_string()
        })
        .collect();
    std::fs::write(&file, rows.join("\n")).unwrap();
    let summary = ok(&app, &["import", "--tenant", "default", file.to_str().unwrap()], None);
    assert_eq!(summary, json!({"created": LEGACY.len(), "rejected": 0, "rejections": []}));

    assert!(stored_hash(&app, TenantId::DEFAULT, "bcrypt").await.unwrap().starts_with("$2b$04$"));
    assert_eq!(app.login("siberian", "orchard thunder pebble 65").await.0, StatusCode::UNAUTHORIZED);
    for (name, password, format, ..) in LEGACY {
        let (status, body) = app.login(name, password).await;
        assert_eq!(status, StatusCode::OK, "{format}: {body}");
        let hash = stored_hash(&app, TenantId::DEFAULT, name).await.unwrap();
        assert!(hash.starts_with("$argon2id$"), "{format} is upgraded at log-in: {hash}");
        assert_eq!(app.login(name, password).await.0, StatusCode::OK, "{format}: the upgraded hash works");
    }
}

async fn import_reports_bad_rows_and_keeps_the_good_ones(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.user("taken", PW).await;
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let lines = [
        r#"{"username": "good1", "email": "good1@example.com", "password_format": "sha1", "password_hash": "c7490697993e80dcce45fe26a488c6375cc706be"}"#,
        r#"{"username": "broken", "#,
        r#"{"username": "bademail", "email": "nope"}"#,
        r#"{"username": "unk", "email": "unk@example.com", "favourite_colour": "blue"}"#,
        r#"{"username": "badhash", "email": "badhash@example.com", "password_format": "bcrypt", "password_hash": "$2b$04$short"}"#,
        r#"{"username": "dup", "email": "dup1@example.com"}"#,
        r#"{"username": "DUP", "email": "dup2@example.com"}"#,
        r#"{"username": "taken", "email": "other@example.com"}"#,
        "",
        "[1, 2]",
        r#"{"email": "good3@example.com", "first_name": "Third", "password": "a clear password"}"#,
        r#"{"email": "good4@example.com", "first_name": "Fourth"}"#,
    ];
    std::fs::write(path("users.ndjson"), lines.join("\n")).unwrap();
    let out = portcullis(
        &["import", "--tenant", "default", &path("users.ndjson")],
        &[("PORTCULLIS_DATABASE_URL", &app.config.database_url)],
        None,
    );
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((summary["created"].as_u64(), summary["rejected"].as_u64()), (Some(3), Some(8)), "{summary}");
    let rejected: Vec<(u64, String)> = summary["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["reason"].as_str().unwrap().to_owned()))
        .collect();
    let expected: [(u64, &str); 8] = [
        (2, "not a JSON object"),
        (3, "email: must be a valid e-mail address"),
        (4, "favourite_colour: unknown field"),
        (5, "password_hash"),
        (7, "username already taken"),
        (8, "username already taken"),
        (10, "not a JSON object: found an array"),
        (11, "not clear passwords"),
    ];
    assert_eq!(rejected.len(), expected.len(), "{rejected:?}");
    for ((line, reason), (want_line, want)) in rejected.iter().zip(expected) {
        assert_eq!(*line, want_line, "{rejected:?}");
        assert!(reason.contains(want), "line {line}: {reason}");
        assert!(err.contains(&format!("line {line}: {reason}")), "{err}");
    }
    assert!(!err.contains("$2b$04$short"), "reasons never echo a hash: {err}");
    assert!(err.contains("imported 11 rows (3 created, 8 rejected)"), "{err}");
    assert_eq!(app.login("good1", "orchard thunder pebble 64").await.0, StatusCode::OK);
    let store = &app.core.stores().users;
    for found in ["good1", "dup1@example.com", "good4@example.com"] {
        assert!(store.user_with_secret(TenantId::DEFAULT, &LoginKey::from_login(found)).await.unwrap().is_some());
    }
    for refused in
        ["bademail", "unk", "badhash@example.com", "dup2@example.com", "other@example.com", "good3@example.com"]
    {
        let u = store.user_with_secret(TenantId::DEFAULT, &LoginKey::from_login(refused)).await.unwrap();
        assert!(u.is_none(), "a refused row leaves no user: {refused}");
    }

    // A duplicate in a later batch (an earlier batch is already written) is refused too.
    std::fs::write(
        path("dups.jsonl"),
        "{\"username\": \"again\", \"email\": \"again1@example.com\"}\n{\"username\": \"again\", \"email\": \"again2@example.com\"}\n",
    )
    .unwrap();
    let summary = ok(&app, &["import", "--tenant", "default", "--batch-size", "1", &path("dups.jsonl")], None);
    assert_eq!(summary["rejections"], json!([{"line": 2, "reason": "username already taken"}]));

    // Every row refused: exit 65, with the summary still printed.
    std::fs::write(path("bad.jsonl"), "nope\n{\"email\": \"x\"}\n").unwrap();
    let out = fails(&app, &["import", "--tenant", "default", &path("bad.jsonl")], None, 65, "every row was refused");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["rejected"], 2);
    // Files that cannot be imported at all.
    std::fs::write(path("bad.csv"), "username,email,favourite_colour\nzed,zed@example.com,blue\n").unwrap();
    fails(&app, &["import", "--tenant", "default", &path("bad.csv")], None, 65, "bad CSV header");
    assert!(store.user_with_secret(TenantId::DEFAULT, &LoginKey::from_login("zed")).await.unwrap().is_none());
    fails(&app, &["import", "--tenant", "default", &path("missing.jsonl")], None, 65, "cannot read");
    fails(&app, &["import", "--tenant", "default", &path("users.txt")], None, 2, "--format");
    fails(&app, &["import", "--tenant", "nope", &path("dups.jsonl")], None, 65, "no such tenant");
    // Standard input, with an explicit format (and a byte-order mark and CRLF, as spreadsheets write).
    let csv = "\u{feff}email,first_name\r\nstdin@example.com,Stdin\r\n";
    let summary = ok(&app, &["import", "--tenant", "default", "--format", "csv", "-"], Some(csv));
    assert_eq!(summary["created"], 1);
}

async fn csv_import_and_export_round_trip_into_another_tenant(b: Backend) {
    let app = TestApp::spawn(b).await;
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let define = async |tenant: TenantId| {
        app.core.create_role(&op(), tenant, "member", None).await.unwrap();
        define_attribute(&app, tenant, "team", AttributeKind::String, false, false).await;
        define_attribute(&app, tenant, "level", AttributeKind::Integer, false, false).await;
    };
    define(TenantId::DEFAULT).await;
    let (_, ada_pw, _, ada_hash, ada_salt) = LEGACY[6];
    let (_, bob_pw, _, bob_hash, _) = LEGACY[0];
    let csv = format!(
        "username,email,first_name,attributes.team,attributes.level,roles,newsletter,email_verified,meta,status,\
         password_format,password_hash,password_salt\n\
         ada,ada@example.com,Ada,core,3,member,1,true,\"{{\"\"src\"\": \"\"legacy\"\"}}\",,sha256_salted,{ada_hash},{}\n\
         bob,bob@example.com,\"Bob, Jr.\",,,,,,,,bcrypt,{bob_hash},\n\
         cy,cy@example.com,,ops,,member;,0,false,,disabled,,,\n",
        ada_salt.unwrap()
    );
    std::fs::write(path("in.csv"), csv).unwrap();
    assert_eq!(ok(&app, &["import", "--tenant", "default", &path("in.csv")], None)["created"], 3);
    let ada = ok(&app, &["user", "show", "--login", "ada"], None);
    assert_eq!(ada["attributes"], json!({"level": 3, "team": "core"}));
    assert_eq!((ada["roles"].clone(), ada["newsletter"].clone()), (json!(["member"]), json!(true)));
    assert_eq!((ada["meta"].clone(), ada["email_verified"].clone()), (json!({"src": "legacy"}), json!(true)));
    assert_eq!(ok(&app, &["user", "show", "--login", "bob"], None)["first_name"], "Bob, Jr.");
    assert_eq!(ok(&app, &["user", "show", "--login", "cy"], None)["status"], "disabled");

    let out = portcullis(
        &["export", "--tenant", "default", "--format", "csv"],
        &[("PORTCULLIS_DATABASE_URL", &app.config.database_url)],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let exported_csv = text(&out.stdout);
    assert!(exported_csv.starts_with("username,email,phone,first_name,"), "{exported_csv}");
    assert!(exported_csv.contains(ada_hash) && exported_csv.contains(bob_hash));
    let status = portcullis(
        &["export", "--tenant", "default", &path("out.csv")],
        &[("PORTCULLIS_DATABASE_URL", &app.config.database_url)],
        None,
    );
    assert!(status.status.success(), "{}", text(&status.stderr));
    assert_eq!(std::fs::read_to_string(path("out.csv")).unwrap(), exported_csv);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path("out.csv")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "an export holds password hashes: owner only");
        // A local attacker's traps at the temporary names an export once used: a world-readable
        // file and a symbolic link to a file they want overwritten. Neither is touched, and the
        // export is still private.
        let victim = path("victim.txt");
        std::fs::write(&victim, "keep me").unwrap();
        std::fs::write(path(".trap.csv.partial"), "").unwrap();
        std::fs::set_permissions(path(".trap.csv.partial"), std::fs::Permissions::from_mode(0o666)).unwrap();
        std::os::unix::fs::symlink(&victim, path(".link.csv.partial")).unwrap();
        for name in ["trap.csv", "link.csv"] {
            let out = portcullis(
                &["export", "--tenant", "default", &path(name)],
                &[("PORTCULLIS_DATABASE_URL", &app.config.database_url)],
                None,
            );
            assert!(out.status.success(), "{}", text(&out.stderr));
            assert_eq!(std::fs::read_to_string(path(name)).unwrap(), exported_csv);
            let mode = std::fs::metadata(path(name)).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{name}: owner only");
        }
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
        let leftovers: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".partial") && !n.starts_with(".trap.") && !n.starts_with(".link."))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
    let original = ok_lines(&app, &["export", "--tenant", "default", "--format", "jsonl"]);
    assert_eq!(original.len(), 3);
    assert_eq!(original[0]["password_salt"], ada_salt.unwrap());

    let copy = ok(&app, &["tenant", "create", "--slug", "copy"], None);
    define(TenantId(copy["id"].as_i64().unwrap())).await;
    let summary = ok(&app, &["import", "--tenant", "copy", &path("out.csv")], None);
    assert_eq!(summary, json!({"created": 3, "rejected": 0, "rejections": []}));
    assert_eq!(ok_lines(&app, &["export", "--tenant", "copy"]), original, "same users, fields and hashes");

    let body = json!({"login": "ada@example.com", "password": ada_pw});
    assert_eq!(app.post("/t/copy/v1/login", body.clone()).await.status(), StatusCode::OK);
    assert_eq!(
        app.post("/t/copy/v1/login", json!({"login": "bob", "password": bob_pw})).await.status(),
        StatusCode::OK
    );
    assert_eq!(app.post("/v1/login", body).await.status(), StatusCode::OK, "the source tenant is untouched");
    // And back through JSON Lines.
    let jsonl: Vec<String> = original.iter().map(Value::to_string).collect();
    std::fs::write(path("users.jsonl"), jsonl.join("\n")).unwrap();
    let third = ok(&app, &["tenant", "create", "--slug", "third"], None);
    define(TenantId(third["id"].as_i64().unwrap())).await;
    assert_eq!(ok(&app, &["import", "--tenant", "third", &path("users.jsonl")], None)["created"], 3);
    assert_eq!(ok_lines(&app, &["export", "--tenant", "third"]), original);
}

async fn an_endless_line_or_cell_stops_the_import_instead_of_filling_memory(b: Backend) {
    let app = TestApp::spawn(b).await;
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let huge = "x".repeat(5 * 1024 * 1024);
    let first = r#"{"username": "before", "email": "before@example.com"}"#;
    std::fs::write(path("long.jsonl"), format!("{first}\n{{\"username\": \"{huge}\"}}\n")).unwrap();
    std::fs::write(
        path("long.csv"),
        format!("username,email\nbefore2,before2@example.com\n\"{huge}\",x@example.com\n"),
    )
    .unwrap();
    for file in ["long.jsonl", "long.csv"] {
        let out = portcullis(
            &["import", "--tenant", "default", &path(file)],
            &[("PORTCULLIS_DATABASE_URL", &app.config.database_url)],
            None,
        );
        assert!(!out.status.success(), "{file}");
        let err = text(&out.stderr);
        assert!(err.contains("longer than 1 MiB"), "{file}: {err}");
        assert!(!err.contains("xxxxxxxx"), "the row is not echoed");
    }
}
