//! The `portcullis` command line.
//!
//! Exit codes: 0 success; 1 unexpected failure; 2 usage error; 65 invalid input (refused
//! field, taken identifier, unknown tenant); 69 database unavailable; 78 configuration error.

// Printing results is this program's interface.
#![allow(clippy::print_stdout)]

use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use portcullis::config::{Config, LogFormat};
use portcullis_core::accounts::CreateUserCommand;
use portcullis_core::{CoreError, Password};
use serde_json::{Map, Value, json};

#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about = "Portcullis: accounts and authentication, in one binary.")]
struct Cli {
    /// Configuration file (TOML). Environment variables PORTCULLIS_* override it.
    #[arg(long, short, env = "PORTCULLIS_CONFIG", global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve HTTP (the database schema is brought up to date first).
    Serve,
    /// Bring the database schema up to date, then exit.
    Migrate,
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user (validated exactly as sign-up validates).
    Create(CreateArgs),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (secrets redacted) and check it.
    Check,
}

#[derive(Debug, Args)]
struct CreateArgs {
    /// Tenant slug.
    #[arg(long, default_value = "default")]
    tenant: String,
    /// Username.
    #[arg(long)]
    username: Option<String>,
    /// E-mail address.
    #[arg(long)]
    email: Option<String>,
    /// Phone number (a login identifier).
    #[arg(long)]
    phone: Option<String>,
    /// Profile field or custom attribute, as NAME=VALUE (repeatable), e.g. --field first_name=Ada
    /// or --field attributes.team=core.
    #[arg(long = "field", value_name = "NAME=VALUE")]
    fields: Vec<String>,
    /// Read the password from the first line of standard input.
    #[arg(long, conflicts_with_all = ["password", "json", "no_password"])]
    password_stdin: bool,
    /// The password. Visible to other local users in the process list: prefer --password-stdin.
    #[arg(long, conflicts_with_all = ["json", "no_password"])]
    password: Option<String>,
    /// Read the user as one JSON object from standard input, e.g.
    /// {"username": "ada", "email": "ada@example.com", "password": "...", "first_name": "Ada"}.
    /// Flags given as well override its fields.
    #[arg(long, conflicts_with = "no_password")]
    json: bool,
    /// Create the user without a password (they cannot log in until one is set).
    #[arg(long)]
    no_password: bool,
    /// Mark the e-mail address as verified.
    #[arg(long)]
    email_verified: bool,
}

/// A failure with the exit code it maps to.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn new(code: u8, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        let unavailable = e.chain().any(|c| {
            c.downcast_ref::<portcullis_core::store::StoreError>()
                .is_some_and(|s| matches!(s, portcullis_core::store::StoreError::Unavailable(_)))
        });
        Self::new(if unavailable { 69 } else { 1 }, format!("{e:#}"))
    }
}

impl From<CoreError> for Failure {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Validation(f) => {
                let list: Vec<String> = f.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                Self::new(65, format!("invalid input: {}", list.join("; ")))
            }
            CoreError::NotEditable(f) => Self::new(65, format!("these fields cannot be set: {}", f.join(", "))),
            CoreError::Conflict(f) => Self::new(65, format!("that {} is already taken", f.as_str())),
            CoreError::NotFound => Self::new(65, "no such tenant"),
            CoreError::Unavailable(e) => Self::new(69, format!("database unavailable: {e}")),
            other => Self::new(1, other.to_string()),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("portcullis: configuration error: {e}");
            return ExitCode::from(78);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("portcullis: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("portcullis: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

async fn run(command: Command, config: Config) -> Result<(), Failure> {
    match command {
        Command::Serve => {
            init_logging(&config, "info");
            serve(config).await
        }
        Command::Migrate => {
            init_logging(&config, "warn");
            let store = portcullis::open_store(&config).await?;
            drop(store);
            println!("database schema is up to date");
            Ok(())
        }
        Command::Config { command: ConfigCommand::Check } => {
            let text = config.redacted().to_toml().map_err(|e| Failure::new(1, e))?;
            print!("{text}");
            println!("# configuration OK");
            Ok(())
        }
        Command::User { command: UserCommand::Create(args) } => {
            init_logging(&config, "warn");
            create_user(config, args).await
        }
    }
}

fn init_logging(config: &Config, cli_default: &str) {
    use tracing_subscriber::EnvFilter;
    let level = if cli_default == "info" { config.log.level.as_str() } else { cli_default };
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colour);
    let _ = match config.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

async fn serve(config: Config) -> Result<(), Failure> {
    let core = portcullis::build_core(&config, portcullis::system_clock()).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| Failure::new(1, format!("cannot listen on {}: {e}", config.listen)))?;
    let running = portcullis::start(&config, core, listener, portcullis::shutdown_signal()).await?;
    tracing::info!(
        addr = %running.addr,
        database = %portcullis::config::redact_url(&config.database_url),
        "portcullis is listening"
    );
    running.stop_when_done().await?;
    tracing::info!("stopped");
    Ok(())
}

async fn create_user(config: Config, args: CreateArgs) -> Result<(), Failure> {
    let mut fields = Map::new();
    let mut password = args.password.map(Password::new);
    if args.json {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| Failure::new(1, format!("cannot read stdin: {e}")))?;
        let Value::Object(mut obj) = serde_json::from_str(&text)
            .map_err(|e| Failure::new(65, format!("standard input is not a JSON object: {e}")))?
        else {
            return Err(Failure::new(65, "standard input is not a JSON object"));
        };
        match obj.remove("password") {
            Some(Value::String(p)) => password = Some(Password::new(p)),
            Some(Value::Null) | None => {}
            Some(_) => return Err(Failure::new(65, "password must be a string")),
        }
        fields = obj;
    }
    if args.password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(|e| Failure::new(1, format!("cannot read stdin: {e}")))?;
        password = Some(Password::new(line.trim_end_matches(['\r', '\n'])));
    }
    for (k, v) in [("username", args.username), ("email", args.email), ("phone", args.phone)] {
        if let Some(v) = v {
            fields.insert(k.into(), Value::String(v));
        }
    }
    for f in &args.fields {
        let Some((k, v)) = f.split_once('=') else {
            return Err(Failure::new(65, format!("--field {f:?}: expected NAME=VALUE")));
        };
        if let Some(attr) = k.strip_prefix("attributes.") {
            let attrs = fields.entry("attributes").or_insert_with(|| json!({}));
            if let Value::Object(m) = attrs {
                m.insert(attr.to_owned(), Value::String(v.to_owned()));
            }
        } else {
            fields.insert(k.to_owned(), Value::String(v.to_owned()));
        }
    }
    if password.is_none() && !args.no_password {
        return Err(Failure::new(65, "give a password (--password-stdin, --password or in --json), or --no-password"));
    }
    let core = portcullis::build_core(&config, portcullis::system_clock()).await?;
    let tenant = core.tenant_by_slug(&args.tenant).await.map_err(|e| match e {
        CoreError::NotFound => Failure::new(65, format!("no tenant with slug {:?}", args.tenant)),
        other => other.into(),
    })?;
    let user = core
        .create_user(
            tenant.id,
            CreateUserCommand { fields, password, email_verified: args.email_verified, roles: vec![], status: None },
        )
        .await?;
    let out = json!({"id": user.id.0, "tenant": tenant.slug, "username": user.username, "email": user.email, "phone": user.phone});
    println!("{out}");
    Ok(())
}
