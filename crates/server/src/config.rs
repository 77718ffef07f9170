//! The one typed configuration of Portcullis: defaults, then an optional TOML file, then
//! `PORTCULLIS_*` environment variables (nested keys with `__`, e.g.
//! `PORTCULLIS_PASSWORD__MEMORY_KIB`). Validated once at start-up and passed down; unknown keys
//! are an error, so a typo never silently falls back to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use portcullis_core::limits::RateLimitConfig;
use portcullis_core::model::Policy;
use portcullis_core::password::HashingConfig;
use portcullis_core::sealing::SecretKey;
use portcullis_core::sessions::SessionConfig;
use portcullis_core::{CoreConfig, SealingKeys};
use portcullis_http::HttpConfig;
use portcullis_mail::MailConfig;
use serde::{Deserialize, Serialize};

/// Everything Portcullis can be told.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to serve HTTP on.
    pub listen: SocketAddr,
    /// `sqlite://FILE` (default: `portcullis.db` in the working directory) or `postgres://...`.
    pub database_url: String,
    /// Database connection settings.
    pub database: DatabaseConfig,
    /// Logging.
    pub log: LogConfig,
    /// HTTP settings.
    pub http: HttpConfig,
    /// Server-wide account policy (each tenant may override parts).
    pub policy: Policy,
    /// Password hashing.
    pub password: HashingConfig,
    /// Session cache and bookkeeping.
    pub sessions: SessionConfig,
    /// Password-guessing limits.
    pub rate_limits: RateLimitConfig,
    /// How long in-flight requests may take to finish at shutdown.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Outgoing mail.
    pub mail: MailConfig,
    /// The key that seals second-factor secrets in the database.
    pub secrets: SecretsConfig,
}

/// The server's secret key (`[secrets]`): it seals the TOTP secrets in the database, so keep
/// it apart from the database and its backups. Without one, a key is made and kept in the
/// database (and the server warns at start-up). Every node of a deployment needs the same.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// The key, base64 of 32 random bytes (`openssl rand -base64 32`). Prefer `key_file`.
    pub key: Option<SecretKey>,
    /// A file holding the key (base64, white space ignored).
    pub key_file: Option<PathBuf>,
    /// Keys used before: they still open what they sealed, new values use `key`.
    pub previous_keys: Vec<SecretKey>,
    /// The key read from `key_file`.
    #[serde(skip)]
    loaded: Option<SecretKey>,
}

impl SecretsConfig {
    fn load(&mut self) -> Result<(), String> {
        if let Some(path) = &self.key_file {
            if self.key.is_some() {
                return Err("give secrets.key or secrets.key_file, not both".into());
            }
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("secrets.key_file {}: {e}", path.display()))?;
            let key =
                SecretKey::parse(&text).map_err(|m| format!("secrets.key_file {}: the key {m}", path.display()))?;
            self.loaded = Some(key);
        }
        Ok(())
    }

    /// The keys for the core.
    pub fn sealing_keys(&self) -> SealingKeys {
        SealingKeys { key: self.key.clone().or_else(|| self.loaded.clone()), previous: self.previous_keys.clone() }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: "sqlite://portcullis.db".into(),
            database: DatabaseConfig::default(),
            log: LogConfig::default(),
            http: HttpConfig::default(),
            policy: Policy::default(),
            password: HashingConfig::default(),
            sessions: SessionConfig::default(),
            rate_limits: RateLimitConfig::default(),
            shutdown_grace: Duration::from_secs(30),
            mail: MailConfig::default(),
            secrets: SecretsConfig::default(),
        }
    }
}

/// Database connection settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// Connections per node (PostgreSQL), or read connections (SQLite; it always has one writer).
    pub max_connections: u32,
    /// How long a request waits for a connection before the database counts as unavailable.
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    /// SQLite only: how long a write waits for a lock held by another process (the CLI).
    #[serde(with = "humantime_serde")]
    pub busy_timeout: Duration,
    /// SQLite only: how often each process polls for sessions ended by another process.
    #[serde(with = "humantime_serde")]
    pub revocation_poll_interval: Duration,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(5),
            revocation_poll_interval: Duration::from_millis(500),
        }
    }
}

/// Log output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter, e.g. `info` or `portcullis=debug,info`. `RUST_LOG` overrides it.
    pub level: String,
    /// `text` for people, `json` for log collectors.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { level: "info".into(), format: LogFormat::Text }
    }
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object per line.
    Json,
}

/// Which database a URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

impl Config {
    /// Loads the configuration: defaults, then `file` (which must exist if given), then the
    /// environment.
    pub fn load(file: Option<&Path>) -> Result<Self, String> {
        // PORTCULLIS_CONFIG names the file; PORTCULLIS_TEST_POSTGRES_URL belongs to the tests.
        Self::load_from(file, Env::prefixed("PORTCULLIS_").split("__").ignore(&["CONFIG", "TEST_POSTGRES_URL"]))
    }

    fn load_from(file: Option<&Path>, env: Env) -> Result<Self, String> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(f) = file {
            if !f.is_file() {
                return Err(format!("configuration file {} does not exist", f.display()));
            }
            fig = fig.merge(Toml::file_exact(f));
        }
        let mut cfg: Config = fig.merge(env).extract().map_err(|e| {
            // One line per problem, naming the key and where it came from.
            e.into_iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ")
        })?;
        cfg.secrets.load()?;
        cfg.check()?;
        Ok(cfg)
    }

    /// Checks values that parse but cannot work.
    pub fn check(&self) -> Result<(), String> {
        let backend = self.backend()?;
        self.core().check()?;
        self.http.check()?;
        self.mail.check()?;
        let min_connections = match backend {
            // One connection is held by the revocation listener.
            Backend::Postgres => 2,
            Backend::Sqlite => 1,
        };
        if self.database.max_connections < min_connections {
            return Err(format!("database.max_connections must be at least {min_connections} for this database"));
        }
        if self.database.revocation_poll_interval < Duration::from_millis(10) {
            return Err("database.revocation_poll_interval must be at least 10ms".into());
        }
        if self.database.acquire_timeout.is_zero() {
            return Err("database.acquire_timeout must be more than 0s".into());
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| format!("log.level {:?} is not a valid filter: {e}", self.log.level))?;
        Ok(())
    }

    /// The database the URL names.
    pub fn backend(&self) -> Result<Backend, String> {
        let url = self.database_url.as_str();
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err("database_url must start with sqlite: or postgres://".into())
        }
    }

    /// The core's part of the configuration.
    pub fn core(&self) -> CoreConfig {
        CoreConfig {
            policy: self.policy.clone(),
            password: self.password.clone(),
            sessions: self.sessions.clone(),
            rate_limits: self.rate_limits.clone(),
            secrets: self.secrets.sealing_keys(),
        }
    }

    /// A copy safe to print: secrets (the database password) replaced by `***`.
    pub fn redacted(&self) -> Config {
        let mut c = self.clone();
        c.database_url = redact_url(&c.database_url);
        if let Some(smtp) = &mut c.mail.smtp {
            smtp.password = smtp.password.as_ref().map(|_| "***".into());
        }
        c
    }

    /// The configuration as TOML (the same format the file takes).
    pub fn to_toml(&self) -> Result<String, String> {
        toml::to_string_pretty(self).map_err(|e| e.to_string())
    }
}

/// Replaces the password of a URL's user-info, and any `password=` query parameter, with `***`.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        if let Some(at) = authority.rfind('@') {
            let userinfo = &authority[..at];
            if let Some(colon) = userinfo.find(':') {
                let start = scheme_end + 3 + colon + 1;
                let end = scheme_end + 3 + at;
                out.replace_range(start..end, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (base, query) = out.split_at(q + 1);
        let query = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") || k.eq_ignore_ascii_case("sslpassword") => {
                    format!("{k}=***")
                }
                _ => kv.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&");
        out = format!("{base}{query}");
    }
    out
}

#[cfg(test)]
// figment's test jail returns its own (large) error type; that is its API, not ours.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = Config::default();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.backend(), Ok(Backend::Sqlite));
        assert_eq!((c.password.memory_kib, c.password.iterations, c.password.parallelism), (19_456, 2, 1));
        c.check().unwrap();
    }

    #[test]
    fn environment_overrides_file_and_unknown_keys_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("p.toml", "listen = \"0.0.0.0:9000\"\n[password]\nmemory_kib = 8192\n")?;
            jail.set_env("PORTCULLIS_DATABASE_URL", "postgres://u:secret@db/portcullis");
            jail.set_env("PORTCULLIS_PASSWORD__ITERATIONS", "3");
            let c = Config::load(Some(Path::new("p.toml"))).map_err(figment::Error::from)?;
            assert_eq!(c.listen.to_string(), "0.0.0.0:9000");
            assert_eq!(c.database_url, "postgres://u:secret@db/portcullis");
            assert_eq!((c.password.memory_kib, c.password.iterations), (8192, 3));
            assert_eq!(c.backend(), Ok(Backend::Postgres));

            jail.set_env("PORTCULLIS_LISTEN", "127.0.0.1:7000");
            assert_eq!(Config::load(None).map_err(figment::Error::from)?.listen.to_string(), "127.0.0.1:7000");

            jail.set_env("PORTCULLIS_LISTN", "127.0.0.1:7000");
            let err = Config::load(None).unwrap_err();
            assert!(err.contains("listn"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn bad_files_and_values_are_refused_clearly() {
        figment::Jail::expect_with(|jail| {
            assert!(Config::load(Some(Path::new("missing.toml"))).unwrap_err().contains("does not exist"));
            jail.create_file("typo.toml", "[password]\nmemory = 1\n")?;
            assert!(Config::load(Some(Path::new("typo.toml"))).unwrap_err().contains("memory"));
            jail.create_file("bad.toml", "database_url = \"mysql://x\"\n")?;
            assert!(Config::load(Some(Path::new("bad.toml"))).unwrap_err().contains("database_url"));
            jail.create_file("weak.toml", "[policy]\npassword_min_score = 9\n")?;
            assert!(Config::load(Some(Path::new("weak.toml"))).unwrap_err().contains("password_min_score"));
            for (file, text, key) in [
                ("sweep.toml", "[sessions]\nsweep_interval = \"0s\"\n", "sweep_interval"),
                ("wait.toml", "[password]\nmax_wait = \"0s\"\n", "max_wait"),
                ("poll.toml", "[database]\nrevocation_poll_interval = \"0s\"\n", "revocation_poll_interval"),
                ("log.toml", "[log]\nlevel = \"info,=[\"\n", "log.level"),
                ("pg.toml", "database_url = \"postgres://h/d\"\n[database]\nmax_connections = 1\n", "max_connections"),
            ] {
                jail.create_file(file, text)?;
                let err = Config::load(Some(Path::new(file))).unwrap_err();
                assert!(err.contains(key), "{file}: {err}");
            }
            // The tests' own variable is not configuration.
            jail.set_env("PORTCULLIS_TEST_POSTGRES_URL", "postgres://x@h/d");
            Config::load(None).map_err(figment::Error::from)?;
            Ok(())
        });
    }

    #[test]
    fn secrets_are_redacted() {
        assert_eq!(redact_url("postgres://app:s3cr3t@db:5432/p"), "postgres://app:***@db:5432/p");
        assert_eq!(
            redact_url("postgres://app@db/p?password=x&sslmode=require"),
            "postgres://app@db/p?password=***&sslmode=require"
        );
        assert_eq!(redact_url("sqlite://portcullis.db"), "sqlite://portcullis.db");
        let c = Config { database_url: "postgres://a:b@h/d".into(), ..Config::default() };
        let printed = c.redacted().to_toml().unwrap();
        assert!(printed.contains("postgres://a:***@h/d"));
        assert!(!printed.contains(":b@"));
    }
}
