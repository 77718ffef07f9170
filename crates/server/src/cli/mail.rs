//! `portcullis mail ...`: checking the mail settings with a test message, and looking at the
//! outbox.

use clap::Subcommand;
use portcullis::config::Config;
use portcullis_mail::Mailer;
use serde_json::json;

use super::{EXIT_CONFIG, EXIT_UNAVAILABLE, Failure, enabled_tenant, operator, print_json, with_core};

/// Mail commands.
#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Send one test message now, through the configured SMTP server (not the outbox), and
    /// report what the server said.
    Test {
        /// The recipient.
        address: String,
        /// Whose name and templates the message carries.
        #[arg(long, value_name = "SLUG", default_value = "default")]
        tenant: String,
    },
    /// How many messages wait in the outbox, and how many were given up.
    Status,
}

/// Runs a mail command.
pub async fn run(config: &Config, command: MailCommand) -> Result<(), Failure> {
    match command {
        MailCommand::Test { address, tenant } => {
            let mailer = Mailer::new(&config.mail).map_err(|e| Failure::new(EXIT_CONFIG, e))?;
            with_core(config, async |core| {
                let t = enabled_tenant(core, &tenant).await?;
                let mail = core.compose_test_mail(&operator(), t.id, &address).await?;
                if mailer.has_smtp() {
                    mailer
                        .test_connection()
                        .await
                        .map_err(|e| Failure::new(EXIT_UNAVAILABLE, format!("cannot reach the SMTP server: {e}")))?;
                }
                mailer.send(&mail, None).await.map_err(|e| {
                    let code = if e.is_permanent() { super::EXIT_INVALID } else { EXIT_UNAVAILABLE };
                    Failure::new(code, format!("the message was not sent: {e}"))
                })?;
                let via = if mailer.has_smtp() { "smtp" } else { "log" };
                print_json(&json!({"sent": true, "to": mail.to, "via": via}))
            })
            .await
        }
        MailCommand::Status => {
            with_core(config, async |core| {
                let (waiting, failed) = core.mail_backlog(&operator()).await?;
                print_json(&json!({"waiting": waiting, "given_up": failed}))
            })
            .await
        }
    }
}
