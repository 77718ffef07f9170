//! The operator commands that work on data (tenants, API keys, users, import and export), and
//! what they share: the mapping of failures to exit codes, running an operation against the
//! core (always writing the audit events it queued before the process exits), finding the
//! tenant a command names, and writing JSON to standard output.
//!
//! Each command parses its arguments into core commands and calls core operations, exactly as
//! an HTTP handler does; no business rule lives here. `anyhow` may appear at this edge only
//! (start-up failures from [`portcullis::build_core`]).

pub mod export;
pub mod import;
pub mod key;
pub mod mail;
pub mod rows;
pub mod tenant;
pub mod user;

use std::io::{BufRead as _, Write};

use portcullis::config::Config;
use portcullis_core::error::error_chain;
use portcullis_core::model::{Tenant, User};
use portcullis_core::store::StoreError;
use portcullis_core::{Caller, ClientInfo, Core, CoreError, CoreResult, Field};
use serde_json::{Map, Value, json};

/// Unexpected failure.
pub const EXIT_UNEXPECTED: u8 = 1;
/// Usage error (clap uses the same code).
pub const EXIT_USAGE: u8 = 2;
/// Invalid input: a refused field, a taken identifier, an unknown tenant, user or key.
pub const EXIT_INVALID: u8 = 65;
/// The database cannot be reached.
pub const EXIT_UNAVAILABLE: u8 = 69;
/// The configuration is wrong.
pub const EXIT_CONFIG: u8 = 78;

/// A failure with the exit code it maps to and a one-line message for standard error.
#[derive(Debug)]
pub struct Failure {
    /// Exit code.
    pub code: u8,
    /// What went wrong.
    pub message: String,
}

impl Failure {
    /// A failure with this code.
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    /// Invalid input (exit 65).
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(EXIT_INVALID, message)
    }

    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(EXIT_USAGE, message)
    }

    /// Standard output could not be written (a closed pipe, a full disk).
    pub fn output(e: std::io::Error) -> Self {
        Self::new(EXIT_UNEXPECTED, format!("cannot write the output: {e}"))
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        let unavailable =
            e.chain().any(|c| c.downcast_ref::<StoreError>().is_some_and(|s| matches!(s, StoreError::Unavailable(_))));
        Self::new(if unavailable { EXIT_UNAVAILABLE } else { EXIT_UNEXPECTED }, format!("{e:#}"))
    }
}

impl From<CoreError> for Failure {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Validation(f) => Self::invalid(format!("invalid input: {}", f.describe().join("; "))),
            CoreError::NotEditable(f) => {
                let names: Vec<String> = f.iter().map(Field::name).collect();
                Self::invalid(format!("these fields cannot be set: {}", names.join(", ")))
            }
            CoreError::Conflict(f) => Self::invalid(format!("that {} is already taken", f.as_str())),
            CoreError::NotFound => Self::invalid("not found"),
            CoreError::Unavailable(e) => Self::new(EXIT_UNAVAILABLE, error_chain(&e)),
            CoreError::Overloaded { .. } => Self::new(EXIT_UNAVAILABLE, "the password hashing pool is busy; try again"),
            // The operator at the console may see the cause; an HTTP client never does.
            other => Self::new(EXIT_UNEXPECTED, error_chain(&other)),
        }
    }
}

/// Maps "not found" to a message naming what was not found.
pub trait OrNoSuch<T> {
    /// `NotFound` becomes exit 65 "no such WHAT"; other errors map as usual.
    fn or_no_such(self, what: impl std::fmt::Display) -> Result<T, Failure>;
}

impl<T> OrNoSuch<T> for CoreResult<T> {
    fn or_no_such(self, what: impl std::fmt::Display) -> Result<T, Failure> {
        self.map_err(|e| match e {
            CoreError::NotFound => Failure::invalid(format!("no such {what}")),
            other => other.into(),
        })
    }
}

/// The caller every command acts as: the operator, who may do everything (whoever can run the
/// CLI against the database can read and write it anyway).
pub fn operator() -> Caller {
    Caller::operator(ClientInfo::default())
}

/// Builds the core, runs `op` against it, then writes the audit events the operation queued,
/// whatever its outcome: the CLI exits right after, and a queued event would be lost.
pub async fn with_core<T>(config: &Config, op: impl AsyncFnOnce(&Core) -> Result<T, Failure>) -> Result<T, Failure> {
    let core = portcullis::build_core(config, portcullis::system_clock()).await?;
    let result = op(&core).await;
    match (core.flush_audit().await, result) {
        (Ok(()), result) => result,
        (Err(e), Ok(_)) => {
            let f = Failure::from(e);
            Err(Failure::new(f.code, format!("done, but its audit events could not be written: {}", f.message)))
        }
        (Err(e), Err(f)) => {
            eprintln!("portcullis: the audit events could not be written: {}", Failure::from(e).message);
            Err(f)
        }
    }
}

/// The tenant with this slug, disabled or not.
pub async fn any_tenant(core: &Core, slug: &str) -> Result<Tenant, Failure> {
    core.find_tenant(&operator(), slug).await.or_no_such(format_args!("tenant {slug:?}"))
}

/// The tenant with this slug, which must be enabled (a disabled tenant serves nobody, and its
/// users are not changed behind its back).
pub async fn enabled_tenant(core: &Core, slug: &str) -> Result<Tenant, Failure> {
    let t = any_tenant(core, slug).await?;
    if t.disabled {
        return Err(Failure::invalid(format!(
            "tenant {slug:?} is disabled (enable it first: portcullis tenant enable {slug})"
        )));
    }
    Ok(t)
}

/// A user as the CLI prints them: the id, then the fields in the import format, and the status
/// (which the import format leaves out when active). Never a password hash.
pub fn user_json(u: &User) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(u.id.0));
    m.extend(portcullis_core::import::export_fields(u));
    m.entry("status").or_insert_with(|| json!(u.status.as_str()));
    Value::Object(m)
}

/// Writes one JSON value as a line on standard output.
pub fn print_json(v: &Value) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{v}").and_then(|()| out.flush()).map_err(Failure::output)
}

/// Writes JSON Lines to standard output, buffered.
pub struct Lines(std::io::BufWriter<std::io::Stdout>);

impl Lines {
    /// A writer on standard output.
    pub fn stdout() -> Self {
        Self(std::io::BufWriter::new(std::io::stdout()))
    }

    /// Writes one value as a line.
    pub fn line(&mut self, v: &Value) -> Result<(), Failure> {
        writeln!(self.0, "{v}").map_err(Failure::output)
    }

    /// Flushes what is buffered.
    pub fn finish(mut self) -> Result<(), Failure> {
        self.0.flush().map_err(Failure::output)
    }
}

/// Reads the first line of standard input (a password), without its line ending.
pub fn read_stdin_line() -> Result<String, Failure> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::new(EXIT_UNEXPECTED, format!("cannot read standard input: {e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
