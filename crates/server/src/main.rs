//! The `portcullis` command line.
//!
//! Exit codes: 0 success; 1 unexpected failure; 2 usage error (including a refused
//! confirmation such as `user delete` without `--yes`); 65 invalid input (refused field, taken
//! identifier, unknown tenant, user or key, malformed file, an import whose every row was
//! refused); 69 database unavailable; 78 configuration error. 64 is not used: clap reports
//! usage errors with 2.
//!
//! Commands that change data print what they did as one JSON object on standard output;
//! listings print JSON Lines. Messages and errors go to standard error. The subcommands that
//! work on data live in [`cli`]; this file holds the command tree, start-up and `serve`.

// Printing results is this program's interface.
#![allow(clippy::print_stdout)]

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use portcullis::config::{Config, LogFormat};

use crate::cli::Failure;

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
    /// Manage tenants (isolated user bases).
    Tenant {
        #[command(subcommand)]
        command: cli::tenant::TenantCommand,
    },
    /// Manage API keys (for servers calling the admin API).
    Key {
        #[command(subcommand)]
        command: cli::key::KeyCommand,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: cli::user::UserCommand,
    },
    /// Import users, with their password hashes, from a JSON Lines or CSV file.
    Import(cli::import::ImportArgs),
    /// Export a tenant's users, with their password hashes, as JSON Lines or CSV (the format
    /// `import` reads).
    Export(cli::export::ExportArgs),
    /// Check the mail settings, and look at the outbox.
    Mail {
        #[command(subcommand)]
        command: cli::mail::MailCommand,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (secrets redacted) and check it.
    Check,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("portcullis: configuration error: {e}");
            return ExitCode::from(cli::EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("portcullis: cannot start the runtime: {e}");
            return ExitCode::from(cli::EXIT_UNEXPECTED);
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
            let text = config.redacted().to_toml().map_err(|e| Failure::new(cli::EXIT_UNEXPECTED, e))?;
            print!("{text}");
            for (name, path) in config.http.dialect_paths.all() {
                let on = config.policy.dialects.iter().any(|d| d.name() == name);
                let who = if on { "every tenant that does not switch it off" } else { "tenants that switch it on" };
                println!("# dialect {name}: mounted at {path}, answering {who}");
            }
            println!("# configuration OK");
            Ok(())
        }
        Command::Tenant { command } => {
            init_logging(&config, "warn");
            cli::tenant::run(&config, command).await
        }
        Command::Key { command } => {
            init_logging(&config, "warn");
            cli::key::run(&config, command).await
        }
        Command::User { command } => {
            init_logging(&config, "warn");
            cli::user::run(&config, command).await
        }
        Command::Mail { command } => {
            init_logging(&config, "info");
            cli::mail::run(&config, command).await
        }
        Command::Import(args) => {
            init_logging(&config, "warn");
            cli::import::run(&config, args).await
        }
        Command::Export(args) => {
            init_logging(&config, "warn");
            cli::export::run(&config, args).await
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
        .map_err(|e| Failure::new(cli::EXIT_UNEXPECTED, format!("cannot listen on {}: {e}", config.listen)))?;
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
