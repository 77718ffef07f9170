//! Every example of README.md and docs/ (with its folders) runs as written, so none can rot:
//!
//! - ```` ```sh ```` blocks run in bash (`set -euo pipefail`), in order, one script per
//!   document, against the real `portcullis serve` on a fresh SQLite file, with `portcullis`
//!   on the `PATH` and `PORTCULLIS_DATABASE_URL` set for the CLI. The only rewrite is the
//!   address: `localhost:8080` becomes the test server's. The files an example names as its
//!   input (`users.jsonl`, `old-users.jsonl`) are provided in the working directory.
//!   ```` ```sh no-test ```` blocks are the commands that cannot run inside a test (serving
//!   forever, building a release, running the tests or the benchmarks themselves);
//! - ```` ```toml ```` blocks load as a configuration file (files they name under
//!   `/run/secrets/` are provided in a temporary directory);
//! - ```` ```json ```` blocks parse as JSON (a document, or JSON Lines).

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A fenced block of a document.
#[derive(Debug)]
struct Block {
    info: String,
    line: usize,
    text: String,
}

fn blocks(doc: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(doc).unwrap();
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in text.lines().enumerate() {
        if let Some(rest) = line.strip_prefix("```") {
            match open.take() {
                Some(b) => out.push(b),
                None => open = Some(Block { info: rest.trim().to_owned(), line: i + 1, text: String::new() }),
            }
        } else if let Some(b) = &mut open {
            b.text.push_str(line);
            b.text.push('\n');
        }
    }
    assert!(open.is_none(), "{}: a code block is not closed", doc.display());
    out
}

fn documents() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut docs = vec![root.join("README.md")];
    // docs/ and the folders in it (docs/dialects/).
    let mut more: Vec<PathBuf> = Vec::new();
    let mut dirs = vec![root.join("docs")];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|e| e == "md") {
                more.push(p);
            }
        }
    }
    more.sort();
    docs.extend(more);
    docs
}

/// `portcullis serve` on a fresh SQLite file, killed when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path, db: &str) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("serve")
        .current_dir(dir)
        .env("PORTCULLIS_DATABASE_URL", db)
        .env("PORTCULLIS_LISTEN", "127.0.0.1:0")
        .env("PORTCULLIS_PASSWORD__MEMORY_KIB", "1024")
        .env("PORTCULLIS_PASSWORD__ITERATIONS", "1")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("addr=").nth(1) {
                let addr: String =
                    rest.split_whitespace().next().unwrap_or_default().chars().filter(|c| !c.is_control()).collect();
                let addr = addr
                    .trim_end_matches("[0m")
                    .trim_matches(|c: char| !c.is_ascii_digit() && c != '.' && c != ':')
                    .to_owned();
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(30)).expect("the server did not start");
    Server { child, addr }
}

const USERS_JSONL: &str = concat!(
    r#"{"username": "grace", "email": "grace@example.com", "first_name": "Grace", "email_verified": true}"#,
    "\n",
    r#"{"email": "li@example.com", "password_format": "md5_salted", "password_hash": "1f3870be274f6c49b3e31a0c6728957f", "password_salt": "a8Xk2pQz"}"#,
    "\n",
);

#[test]
fn every_shell_example_runs_as_written() {
    let bin_dir = PathBuf::from(env!("CARGO_BIN_EXE_portcullis")).parent().unwrap().to_owned();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut ran = 0;
    for doc in documents() {
        let scripts: Vec<Block> = blocks(&doc).into_iter().filter(|b| b.info == "sh").collect();
        for b in blocks(&doc) {
            assert!(
                matches!(b.info.as_str(), "" | "sh" | "sh no-test" | "toml" | "json" | "text"),
                "{}:{}: unknown block kind {:?} (sh, sh no-test, toml, json, text)",
                doc.display(),
                b.line,
                b.info
            );
        }
        if scripts.is_empty() {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("users.jsonl"), USERS_JSONL).unwrap();
        std::fs::write(dir.path().join("old-users.jsonl"), USERS_JSONL).unwrap();
        let db = format!("sqlite://{}", dir.path().join("portcullis.db").display());
        let server = serve(dir.path(), &db);
        for b in &scripts {
            let script = format!("set -euo pipefail\n{}", b.text.replace("localhost:8080", &server.addr));
            let out = Command::new("bash")
                .arg("-c")
                .arg(&script)
                .current_dir(dir.path())
                .env("PATH", &path)
                .env("PORTCULLIS_DATABASE_URL", &db)
                .env("PORTCULLIS_PASSWORD__MEMORY_KIB", "1024")
                .env("PORTCULLIS_PASSWORD__ITERATIONS", "1")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}:{}: the example failed ({}):\n{}\nstdout:\n{}\nstderr:\n{}",
                doc.display(),
                b.line,
                out.status,
                b.text,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            ran += 1;
        }
        drop(server);
    }
    assert!(ran >= 4, "the README's and the docs' examples ran ({ran})");
}

#[test]
fn every_configuration_example_loads_and_every_json_example_parses() {
    let secrets = tempfile::tempdir().unwrap();
    std::fs::write(secrets.path().join("portcullis-key"), "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n").unwrap();
    std::fs::write(secrets.path().join("smtp-password"), "secret\n").unwrap();
    let (mut tomls, mut jsons) = (0, 0);
    for doc in documents() {
        for b in blocks(&doc) {
            let here = format!("{}:{}", doc.display(), b.line);
            match b.info.as_str() {
                "toml" => {
                    let text = b.text.replace("/run/secrets", &secrets.path().display().to_string());
                    let file = secrets.path().join("portcullis.toml");
                    std::fs::write(&file, text).unwrap();
                    portcullis::config::Config::load(Some(&file)).unwrap_or_else(|e| panic!("{here}: {e}"));
                    tomls += 1;
                }
                "json" => {
                    if serde_json::from_str::<serde_json::Value>(&b.text).is_err() {
                        for line in b.text.lines().filter(|l| !l.trim().is_empty()) {
                            serde_json::from_str::<serde_json::Value>(line)
                                .unwrap_or_else(|e| panic!("{here}: not JSON ({e}): {line}"));
                        }
                    }
                    jsons += 1;
                }
                _ => {}
            }
        }
    }
    assert!(tomls >= 1 && jsons >= 4, "{tomls} configuration and {jsons} JSON examples");
}
