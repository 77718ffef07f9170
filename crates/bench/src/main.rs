//! `portcullis-bench`: measures the release binary under load with `wrk`, on SQLite and then
//! PostgreSQL, and prints, for each backend:
//!
//! - log-ins per second at 2 × cores connections, next to raw argon2id verifications per
//!   second with the same parameters on as many threads as the server's hashing pool, measured
//!   in the same run on the same machine, and their ratio. The two alternate in short rounds
//!   and the ratio is pooled over all of them, because a shared machine's speed drifts by
//!   several percent from one few-second window to the next;
//! - `GET /v1/session` requests per second and p99 latency at 64 connections (over many
//!   distinct sessions), next to `GET /healthz` of the same server, and their ratio; also the
//!   session check with the session cache turned off, for what the database alone costs;
//! - for each legacy dialect, its log-in (the request its clients send to check a password)
//!   per second next to the native log-in, alternating in rounds, and their ratio: a dialect
//!   adds parsing, never a second hash or a second round trip;
//! - log-ins at ten times the load the server admits (connections = 10 × (hashing workers +
//!   queue)): the share answered, the share shed with 503, the share that timed out, and the
//!   server's peak memory.
//!
//! Run it through `scripts/bench` (it builds the release binaries and installs `wrk`).

// The benchmark reports on standard output.
#![allow(clippy::print_stdout)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use portcullis_core::Password;
use portcullis_core::password::{HashingConfig, PasswordHasher};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

struct Options {
    portcullis: PathBuf,
    duration: Duration,
    users: usize,
    rounds: usize,
    round: Duration,
    dialect_rounds: usize,
    backends: Vec<&'static str>,
}

fn options() -> Result<Options> {
    let mut o = Options {
        portcullis: PathBuf::from("target/release/portcullis"),
        duration: Duration::from_secs(10),
        users: 256,
        rounds: 12,
        round: Duration::from_secs(3),
        dialect_rounds: 4,
        backends: vec!["sqlite", "postgres"],
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--portcullis" => o.portcullis = args.next().context("--portcullis PATH")?.into(),
            "--duration" => o.duration = Duration::from_secs(args.next().context("--duration SECONDS")?.parse()?),
            "--users" => o.users = args.next().context("--users N")?.parse()?,
            "--rounds" => o.rounds = args.next().context("--rounds N")?.parse::<usize>()?.max(1),
            "--dialect-rounds" => {
                o.dialect_rounds = args.next().context("--dialect-rounds N")?.parse::<usize>()?;
            }
            "--round-seconds" => {
                o.round = Duration::from_secs(args.next().context("--round-seconds S")?.parse::<u64>()?.max(1))
            }
            "--backend" => {
                o.backends = match args.next().context("--backend sqlite|postgres|both")?.as_str() {
                    "sqlite" => vec!["sqlite"],
                    "postgres" => vec!["postgres"],
                    "both" => vec!["sqlite", "postgres"],
                    other => bail!("unknown backend {other}"),
                }
            }
            "--help" | "-h" => {
                println!(
                    "portcullis-bench [--backend sqlite|postgres|both] [--duration SECONDS] [--rounds N] [--dialect-rounds N] [--round-seconds S] [--users N] [--portcullis PATH]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other} (see --help)"),
        }
    }
    Ok(o)
}

fn main() -> Result<()> {
    let o = options()?;
    if !o.portcullis.is_file() {
        bail!("{} not found: build it with cargo build --release (scripts/bench does)", o.portcullis.display());
    }
    Command::new("wrk").arg("--version").output().context("wrk is not installed (scripts/bench installs it)")?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
    println!("# Portcullis benchmark");
    println!();
    println!("machine: {} cores, {}", cores, cpu_model());
    println!("each measurement: {} s; wrk on the same machine", o.duration.as_secs());
    for backend in &o.backends {
        rt.block_on(run_backend(&o, backend, cores))?;
    }
    Ok(())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// The server under test.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(bin: &Path, database_url: &str, port: u16, extra: &[(&str, &str)]) -> Result<Self> {
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .env("PORTCULLIS_DATABASE_URL", database_url)
            .env("PORTCULLIS_LISTEN", format!("127.0.0.1:{port}"))
            // Password-guessing limits would refuse a benchmark's log-ins from one address.
            .env("PORTCULLIS_RATE_LIMITS__LOGIN_PER_IP_PER_MINUTE", "0")
            .env("PORTCULLIS_RATE_LIMITS__LOGIN_PER_IDENTIFIER_PER_MINUTE", "0")
            .env("PORTCULLIS_RATE_LIMITS__IDENTIFIER_CHECKS_PER_MINUTE", "0")
            .env("PORTCULLIS_LOG__LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let child = cmd.spawn().context("starting portcullis")?;
        Ok(Self { child, base: format!("http://127.0.0.1:{port}") })
    }

    async fn wait_ready(&self) -> Result<()> {
        let client = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(r) = client.get(format!("{}/readyz", self.base)).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("server did not become ready")
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM first (graceful), then make sure.
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        std::thread::sleep(Duration::from_millis(300));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Kilobytes of a `/proc/<pid>/status` field (VmRSS, VmHWM).
fn proc_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

async fn run_backend(o: &Options, backend: &str, cores: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut _pg = None;
    let url = match backend {
        "sqlite" => format!("sqlite://{}", dir.path().join("bench.db").display()),
        _ => {
            let db = portcullis_testkit::TestDatabase::create().await.map_err(anyhow::Error::msg)?;
            let url = db.url().to_owned();
            _pg = Some(db);
            url
        }
    };
    println!();
    println!("## {backend}");
    println!();
    let port = free_port()?;
    let server = Server::start(&o.portcullis, &url, port, &[])?;
    server.wait_ready().await?;

    // Accounts and sessions to work with (sign-ups cost one hash each).
    let tokens = create_users(&server.base, o.users).await?;
    let files = WorkFiles::write(dir.path(), o.users, &tokens)?;

    // Raw argon2id verifications with the server's parameters, on as many threads as the
    // server's hashing pool, while the server idles.
    let workers = HashingConfig::default().effective_workers();
    let hasher = PasswordHasher::new(&HashingConfig::default()).map_err(anyhow::Error::msg)?;
    let hash = hasher.hash(Password::new(PASSWORD)).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    // This machine's speed drifts by several percent between seconds; a baseline and a load
    // measured minutes apart would mostly measure that drift. So the two alternate, in rounds,
    // and the ratio is taken within each round.
    let login_conns = 2 * cores;
    let mut rounds = Vec::new();
    for _ in 0..o.rounds {
        let raw = argon2_baseline(&hasher, hash.as_str(), workers, o.round);
        let login = wrk(&server.base, "/v1/login", login_conns, o.round, Some(&files.login_script), "10s")?;
        rounds.push((raw, login));
    }
    let mut ratios: Vec<f64> = rounds.iter().map(|(raw, login)| login.rps / raw).collect();
    ratios.sort_by(f64::total_cmp);
    let raw = rounds.iter().map(|(r, _)| *r).sum::<f64>() / rounds.len() as f64;
    let login_rps = rounds.iter().map(|(_, l)| l.rps).sum::<f64>() / rounds.len() as f64;
    let login_p99 = rounds.iter().map(|(_, l)| l.p99_ms).fold(0.0, f64::max);
    let login_non_2xx: u64 = rounds.iter().map(|(_, l)| l.non_2xx).sum();
    let health = wrk(&server.base, "/healthz", 64, o.duration, None, "10s")?;
    let session = wrk(&server.base, "/v1/session", 64, o.duration, Some(&files.session_script), "10s")?;

    // The same check with the session cache off: what the database alone costs.
    let port2 = free_port()?;
    let uncached_server = Server::start(&o.portcullis, &url, port2, &[("PORTCULLIS_SESSIONS__CACHE_CAPACITY", "0")])?;
    uncached_server.wait_ready().await?;
    let uncached = wrk(&uncached_server.base, "/v1/session", 64, o.duration, Some(&files.session_script), "10s")?;
    drop(uncached_server);

    // Ten times the load the server admits: connections = 10 x (workers + queue).
    let admitted = workers + HashingConfig::default().effective_queue();
    let rss_before = proc_kib(server.pid(), "VmRSS:");
    let sampling = Arc::new(AtomicBool::new(true));
    let peak_during = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (sampling, peak, pid) = (sampling.clone(), peak_during.clone(), server.pid());
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                peak.fetch_max(proc_kib(pid, "VmRSS:"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let overload = wrk(&server.base, "/v1/login", 10 * admitted, o.duration, Some(&files.login_script), "2s")?;
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.join();
    let rss_after = proc_kib(server.pid(), "VmRSS:");
    let hwm = proc_kib(server.pid(), "VmHWM:");

    let ratio_session = session.rps / health.rps;
    println!("| measurement | figure | target |");
    println!("|---|---|---|");
    println!("| raw argon2id verifications/s (m=19456 KiB, t=2, p=1; {workers} threads) | {raw:.1} | |");
    println!(
        "| log-ins/s at {login_conns} connections | {login_rps:.1} (p99 {}, non-2xx {login_non_2xx}) | |",
        ms(login_p99)
    );
    // Pooled over all rounds (equal-length windows): total log-ins over total verifications.
    let ratio_login = login_rps / raw;
    println!(
        "| **log-ins / raw verifications** ({} alternating rounds of {} s each; per-round ratios {:.3} to {:.3}) | **{ratio_login:.3}** | ≥ 0.95 {} |",
        rounds.len(),
        o.round.as_secs(),
        ratios[0],
        ratios[ratios.len() - 1],
        verdict(ratio_login >= 0.95)
    );
    println!("| GET /healthz at 64 connections | {:.0} req/s, p99 {} | |", health.rps, ms(health.p99_ms));
    println!(
        "| GET /v1/session at 64 connections ({} sessions) | {:.0} req/s, p99 {} (non-2xx {}) | |",
        tokens.len(),
        session.rps,
        ms(session.p99_ms),
        session.non_2xx
    );
    println!("| **session / healthz** | **{ratio_session:.3}** | ≥ 0.60 {} |", verdict(ratio_session >= 0.60));
    println!(
        "| GET /v1/session, session cache off | {:.0} req/s, p99 {} (ratio {:.3}) | for reference |",
        uncached.rps,
        ms(uncached.p99_ms),
        uncached.rps / health.rps
    );
    let attempts = overload.requests + overload.timeouts;
    let share = |n: u64| if attempts == 0 { 0.0 } else { 100.0 * n as f64 / attempts as f64 };
    let shed = overload.non_2xx;
    let served = overload.requests.saturating_sub(shed);
    println!(
        "| log-ins at 10× admitted load ({} connections; admits {admitted}) | {attempts} attempts: {:.1}% served, {:.1}% shed with 503, {:.1}% timed out (> 2 s); p99 {} | none time out {} |",
        10 * admitted,
        share(served),
        share(shed),
        share(overload.timeouts),
        ms(overload.p99_ms),
        verdict(overload.timeouts == 0)
    );
    println!(
        "| server memory | RSS {} MiB before overload, peak {} MiB during, {} MiB after; peak RSS of the run {} MiB | bounded |",
        rss_before / 1024,
        peak_during.load(Ordering::Relaxed) / 1024,
        rss_after / 1024,
        hwm / 1024
    );
    dialect_logins(o, &server, &url, dir.path(), &files, login_conns)?;
    drop(server);
    Ok(())
}

/// The log-in of each dialect next to the native one, in alternating rounds.
fn dialect_logins(
    o: &Options,
    server: &Server,
    database_url: &str,
    dir: &Path,
    files: &WorkFiles,
    conns: usize,
) -> Result<()> {
    if o.dialect_rounds == 0 {
        return Ok(());
    }
    let cli = |args: &[&str]| -> Result<String> {
        let out = Command::new(&o.portcullis)
            .args(args)
            .env("PORTCULLIS_DATABASE_URL", database_url)
            .env("PORTCULLIS_LOG__LEVEL", "warn")
            .output()
            .context("running the portcullis CLI")?;
        if !out.status.success() {
            bail!("portcullis {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    for d in ["metrixstream", "ossn", "newspark", "buddycloud", "siberian"] {
        cli(&["tenant", "enable-dialect", "default", d])?;
    }
    let created = cli(&[
        "key",
        "create",
        "--name",
        "bench",
        "--tenant",
        "default",
        "--scope",
        "credentials:verify",
        "--scope",
        "users:read",
        "--scope",
        "users:manage",
    ])?;
    let key: Value = serde_json::from_str(created.trim()).context("key create printed no JSON")?;
    let key = key["key"].as_str().context("key create printed no key")?.to_owned();
    // The server caches tenants for a few seconds: let it see the dialects.
    std::thread::sleep(Duration::from_secs(6));
    println!();
    println!("| dialect log-in | log-ins/s (p99, non-2xx) | native log-ins/s in the same rounds | ratio | target |");
    println!("|---|---|---|---|---|");
    for d in DIALECT_LOGINS {
        let script = d.script(dir, o.users, &key)?;
        let mut native = 0.0;
        let mut dialect = 0.0;
        let mut p99: f64 = 0.0;
        let mut non_2xx = 0;
        for _ in 0..o.dialect_rounds {
            native += wrk(&server.base, "/v1/login", conns, o.round, Some(&files.login_script), "10s")?.rps;
            let r = wrk(&server.base, d.path, conns, o.round, Some(&script), "10s")?;
            dialect += r.rps;
            p99 = p99.max(r.p99_ms);
            non_2xx += r.non_2xx;
        }
        let ratio = dialect / native;
        println!(
            "| {} (`{} {}`) | {:.1} (p99 {}, non-2xx {non_2xx}) | {:.1} | **{ratio:.3}** | ≥ 0.90 {} |",
            d.name,
            d.method,
            d.path,
            dialect / o.dialect_rounds as f64,
            ms(p99),
            native / o.dialect_rounds as f64,
            verdict(ratio >= 0.90 && non_2xx == 0)
        );
    }
    Ok(())
}

/// How a dialect's client checks a password.
struct DialectLogin {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    /// The request for user `bench{i}`: (extra header, body), with `{i}`, `{key}`, `{password}`
    /// and `{basic}` (base64 of `bench{i}:password`) replaced.
    header: Option<(&'static str, &'static str)>,
    content_type: Option<&'static str>,
    body: &'static str,
}

const DIALECT_LOGINS: [DialectLogin; 5] = [
    DialectLogin {
        name: "Metrixstream",
        method: "POST",
        path: "/site/api",
        header: None,
        content_type: Some("application/x-www-form-urlencoded"),
        body: "action=login&username=bench{i}&password={password}",
    },
    DialectLogin {
        name: "OSSN",
        method: "POST",
        path: "/api/v1.0/user_authenticate",
        header: None,
        content_type: Some("application/x-www-form-urlencoded"),
        body: "api_key_token={key}&username=bench{i}&password={password}",
    },
    DialectLogin {
        name: "Newspark",
        method: "POST",
        path: "/services/rest/users/confirmCredentials",
        header: None,
        content_type: Some("application/x-www-form-urlencoded"),
        body: "vhost=1&APIKEY={key}&username=bench{i}&password={password}&returnUserInfo=true",
    },
    DialectLogin {
        name: "buddycloud",
        method: "GET",
        path: "/api/",
        header: Some(("Authorization", "Basic {basic}")),
        content_type: None,
        body: "",
    },
    DialectLogin {
        name: "Siberian",
        method: "POST",
        path: "/admin/api_account/authenticate",
        header: Some(("Api-Auth-Bearer", "Bearer {key}")),
        content_type: Some("application/x-www-form-urlencoded"),
        body: "email=bench{i}%40example.com&password={password}",
    },
];

impl DialectLogin {
    /// A wrk script sending this log-in for each benchmark user in turn.
    fn script(&self, dir: &Path, users: usize, key: &str) -> Result<PathBuf> {
        use base64::Engine as _;
        let lines = dir.join(format!("{}.txt", self.name));
        let mut f = std::fs::File::create(&lines)?;
        let password = PASSWORD.replace(' ', "+");
        for i in 0..users {
            let basic = base64::engine::general_purpose::STANDARD.encode(format!("bench{i}:{PASSWORD}"));
            let fill = |t: &str| {
                t.replace("{i}", &i.to_string())
                    .replace("{key}", key)
                    .replace("{password}", &password)
                    .replace("{basic}", &basic)
            };
            let header = self.header.map(|(_, v)| fill(v)).unwrap_or_default();
            writeln!(f, "{}\t{}", header, fill(self.body))?;
        }
        let mut headers = String::new();
        if let Some(ct) = self.content_type {
            headers.push_str(&format!("[\"Content-Type\"] = \"{ct}\", "));
        }
        let header_name = self.header.map(|(k, _)| k).unwrap_or("");
        let script = dir.join(format!("{}.lua", self.name));
        std::fs::write(
            &script,
            format!(
                r#"
local reqs = {{}}
for line in io.lines("{}") do
  local h, b = line:match("^(.-)\t(.*)$")
  reqs[#reqs + 1] = {{h, b}}
end
local i = math.random(#reqs)
request = function()
  i = i % #reqs + 1
  local headers = {{ {headers} }}
  if "{header_name}" ~= "" then headers["{header_name}"] = reqs[i][1] end
  local body = nil
  if reqs[i][2] ~= "" then body = reqs[i][2] end
  return wrk.format("{}", nil, headers, body)
end
"#,
                lines.display(),
                self.method
            ),
        )?;
        Ok(script)
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "✓" } else { "✗" }
}

fn ms(v: f64) -> String {
    format!("{v:.2} ms")
}

async fn create_users(base: &str, n: usize) -> Result<Vec<String>> {
    let client = reqwest::Client::new();
    let tokens = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let mut pending = Vec::new();
    for i in 0..n {
        let (client, base, tokens) = (client.clone(), base.to_owned(), tokens.clone());
        pending.push(async move {
            let body = json!({"username": format!("bench{i}"), "email": format!("bench{i}@example.com"), "password": PASSWORD});
            for _ in 0..50 {
                let res = client.post(format!("{base}/v1/signup")).json(&body).send().await?;
                if res.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                let status = res.status();
                let v: Value = res.json().await?;
                if !status.is_success() {
                    bail!("sign-up failed: {status} {v}");
                }
                let t = v["session"]["token"].as_str().context("no token")?.to_owned();
                tokens.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.push(t);
                return Ok(());
            }
            bail!("server stayed busy")
        });
    }
    let results = futures::future::join_all(pending).await;
    for r in results {
        r?;
    }
    let t = tokens.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
    Ok(t)
}

fn argon2_baseline(hasher: &PasswordHasher, hash: &str, threads: usize, duration: Duration) -> f64 {
    let count = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (hasher, hash, count) = (hasher.clone(), hash.to_owned(), count.clone());
            std::thread::spawn(move || {
                let pw = Password::new(PASSWORD);
                let mut verifier = hasher.verifier();
                while Instant::now() < deadline {
                    let v = verifier.verify(&pw, Some(&hash));
                    if v.matched {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

struct WorkFiles {
    login_script: PathBuf,
    session_script: PathBuf,
}

impl WorkFiles {
    fn write(dir: &Path, users: usize, tokens: &[String]) -> Result<Self> {
        let logins = dir.join("logins.txt");
        let mut f = std::fs::File::create(&logins)?;
        for i in 0..users {
            writeln!(f, "{}", json!({"login": format!("bench{i}"), "password": PASSWORD}))?;
        }
        let token_file = dir.join("tokens.txt");
        let mut f = std::fs::File::create(&token_file)?;
        for t in tokens {
            writeln!(f, "{t}")?;
        }
        let login_script = dir.join("login.lua");
        std::fs::write(
            &login_script,
            format!(
                r#"
local bodies = {{}}
for line in io.lines("{}") do bodies[#bodies + 1] = line end
local i = math.random(#bodies)
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", nil, {{["Content-Type"] = "application/json"}}, bodies[i])
end
"#,
                logins.display()
            ),
        )?;
        let session_script = dir.join("session.lua");
        std::fs::write(
            &session_script,
            format!(
                r#"
local tokens = {{}}
for line in io.lines("{}") do tokens[#tokens + 1] = line end
local i = math.random(#tokens)
request = function()
  i = i % #tokens + 1
  return wrk.format("GET", nil, {{["Authorization"] = "Bearer " .. tokens[i]}})
end
"#,
                token_file.display()
            ),
        )?;
        Ok(Self { login_script, session_script })
    }
}

/// What wrk reported.
struct WrkResult {
    rps: f64,
    p99_ms: f64,
    requests: u64,
    non_2xx: u64,
    timeouts: u64,
}

fn wrk(
    base: &str,
    path: &str,
    connections: usize,
    duration: Duration,
    script: Option<&Path>,
    timeout: &str,
) -> Result<WrkResult> {
    let mut cmd = Command::new("wrk");
    cmd.arg("-t2")
        .arg(format!("-c{connections}"))
        .arg(format!("-d{}s", duration.as_secs()))
        .arg("--latency")
        .arg("--timeout")
        .arg(timeout);
    if let Some(s) = script {
        cmd.arg("-s").arg(s);
    }
    cmd.arg(format!("{base}{path}"));
    let out = cmd.stderr(Stdio::inherit()).output().context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    parse_wrk(&text).with_context(|| format!("unexpected wrk output:\n{text}"))
}

fn parse_wrk(text: &str) -> Result<WrkResult> {
    let mut r = WrkResult { rps: 0.0, p99_ms: 0.0, requests: 0, non_2xx: 0, timeouts: 0 };
    for line in BufReader::new(text.as_bytes()).lines().map_while(Result::ok) {
        let l = line.trim();
        if let Some(v) = l.strip_prefix("Requests/sec:") {
            r.rps = v.trim().parse()?;
        } else if let Some(v) = l.strip_prefix("99%") {
            r.p99_ms = duration_ms(v.trim())?;
        } else if l.contains("requests in") {
            r.requests = l.split_whitespace().next().context("requests")?.parse()?;
        } else if let Some(v) = l.strip_prefix("Non-2xx or 3xx responses:") {
            r.non_2xx = v.trim().parse()?;
        } else if let Some(v) = l.strip_prefix("Socket errors:")
            && let Some(t) = v.split(',').find_map(|p| p.trim().strip_prefix("timeout "))
        {
            r.timeouts = t.trim().parse()?;
        }
    }
    Ok(r)
}

fn duration_ms(s: &str) -> Result<f64> {
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).context("unit")?);
    let v: f64 = num.parse()?;
    Ok(match unit {
        "us" => v / 1000.0,
        "ms" => v,
        "s" => v * 1000.0,
        "m" => v * 60_000.0,
        other => bail!("unit {other}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_is_parsed() {
        let text = "Running 10s test @ http://127.0.0.1:1/v1/login\n  2 threads and 4 connections\n  Latency Distribution\n     50%    1.00ms\n     99%  812.34us\n  123456 requests in 10.00s, 1.00MB read\n  Socket errors: connect 0, read 0, write 0, timeout 7\n  Non-2xx or 3xx responses: 42\nRequests/sec:  12345.67\n";
        let r = parse_wrk(text).unwrap();
        assert_eq!((r.requests, r.non_2xx, r.timeouts), (123_456, 42, 7));
        assert!((r.rps - 12345.67).abs() < 1e-6);
        assert!((r.p99_ms - 0.81234).abs() < 1e-9);
        assert_eq!(duration_ms("1.5s").unwrap(), 1500.0);
    }
}
