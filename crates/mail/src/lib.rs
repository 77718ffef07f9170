//! Mail for Portcullis: delivers the messages the core queues in its outbox, over SMTP
//! (`lettre`), rendered from templates an operator can override per tenant.
//!
//! The core decides what is sent to whom and makes each message's one-time link as it leaves;
//! this crate renders and delivers. [`MailSender::run`] loops: it leases due messages from the
//! outbox (no other node gets them while the lease runs), composes, renders and sends each,
//! and records the outcome — a failure is retried with back-off (the core's), a refusal of
//! the recipient is given up at once.
//!
//! With no SMTP server configured, messages are written to the log instead, links included,
//! so that a newcomer can follow a reset link locally. That mode is for development: the log
//! then holds live links.

pub mod templates;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lettre::message::header::MessageId;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use portcullis_core::Core;
use portcullis_core::error::error_chain;
use portcullis_core::mail::{ComposedMail, MAIL_LEASE};
use portcullis_core::store::OutboxMessage;
use serde::{Deserialize, Serialize};

pub use crate::templates::{Rendered, TemplateError, Templates};

/// Mail settings (`[mail]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    /// The sender of every message, as `Name <address>` or a bare address.
    pub from: String,
    /// The SMTP server; without one, messages go to the log (development only).
    pub smtp: Option<SmtpConfig>,
    /// A directory of templates overriding the built-in ones (and, in subdirectories named
    /// after tenant slugs, one tenant's own).
    pub templates_dir: Option<PathBuf>,
    /// Messages leased per round.
    pub batch_size: u32,
    /// How often the outbox is looked at for messages queued by other nodes and retries due
    /// (a message queued on this node is sent at once).
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            from: "Portcullis <no-reply@localhost>".into(),
            smtp: None,
            templates_dir: None,
            batch_size: 10,
            poll_interval: Duration::from_secs(2),
        }
    }
}

/// How the connection to the SMTP server is secured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    /// Plain connection upgraded with STARTTLS, which is required (port 587 by default).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465 by default).
    Implicit,
    /// No TLS at all (port 25 by default): only for a relay on the same host or network.
    None,
}

/// An SMTP server (`[mail.smtp]`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Host name (checked against the server's certificate).
    pub host: String,
    /// Port; by default 587, 465 or 25 as `tls` says.
    #[serde(default)]
    pub port: Option<u16>,
    /// `starttls` (default), `implicit` or `none`.
    #[serde(default)]
    pub tls: TlsMode,
    /// User name, if the server asks for one.
    #[serde(default)]
    pub username: Option<String>,
    /// Password (or use `password_file`).
    #[serde(default)]
    pub password: Option<String>,
    /// A file holding the password (trailing white space ignored).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// How long one delivery may take, from connecting to the server's last answer.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(20)
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("password_file", &self.password_file)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl SmtpConfig {
    /// The port in use.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            TlsMode::Starttls => 587,
            TlsMode::Implicit => 465,
            TlsMode::None => 25,
        })
    }
}

impl MailConfig {
    /// The longest one delivery may take (what a shutdown waits for the message being sent).
    pub fn send_timeout(&self) -> Duration {
        self.smtp.as_ref().map_or_else(default_timeout, |s| s.timeout)
    }

    /// Checks values that parse but cannot work.
    pub fn check(&self) -> Result<(), String> {
        self.from.parse::<Mailbox>().map_err(|e| format!("mail.from {:?} is not an address: {e}", self.from))?;
        if self.batch_size == 0 || self.batch_size > 100 {
            return Err("mail.batch_size must be between 1 and 100".into());
        }
        if self.poll_interval < Duration::from_millis(100) {
            return Err("mail.poll_interval must be at least 100ms".into());
        }
        if let Some(s) = &self.smtp {
            if s.host.trim().is_empty() {
                return Err("mail.smtp.host is empty".into());
            }
            if s.password.is_some() && s.password_file.is_some() {
                return Err("give mail.smtp.password or mail.smtp.password_file, not both".into());
            }
            if s.username.is_none() && (s.password.is_some() || s.password_file.is_some()) {
                return Err("mail.smtp has a password but no username".into());
            }
            if s.timeout < Duration::from_secs(1) || s.timeout > MAIL_LEASE / 4 {
                return Err("mail.smtp.timeout must be between 1s and 75s".into());
            }
        }
        Ok(())
    }
}

/// Why a message could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The message could not be built (an address that is not one, say): retrying will not help.
    #[error("{0}")]
    Invalid(String),
    /// The SMTP server refused the message for good (a 5xx answer).
    #[error("refused: {0}")]
    Refused(String),
    /// The SMTP server could not be reached, or answered "try later".
    #[error("{0}")]
    Transient(String),
}

impl SendError {
    /// Whether retrying cannot help.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, Self::Transient(_))
    }
}

/// Where messages go.
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// No SMTP server configured: the log.
    Log,
}

/// Renders and sends messages.
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    templates: Templates,
    /// How long one delivery may take, from connecting to the server's last answer.
    send_timeout: Duration,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("smtp", &matches!(self.transport, Transport::Smtp(_)))
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// A mailer for these settings: the templates are loaded and checked, the SMTP transport
    /// set up (it connects when the first message leaves).
    pub fn new(cfg: &MailConfig) -> Result<Self, String> {
        cfg.check()?;
        let from: Mailbox = cfg.from.parse().map_err(|e| format!("mail.from: {e}"))?;
        let templates = Templates::load(cfg.templates_dir.as_deref()).map_err(|e| format!("mail templates: {e}"))?;
        let transport = match &cfg.smtp {
            None => Transport::Log,
            Some(s) => Transport::Smtp(smtp_transport(s)?),
        };
        let send_timeout = cfg.smtp.as_ref().map_or_else(default_timeout, |s| s.timeout);
        Ok(Self { transport, from, templates, send_timeout })
    }

    /// Whether messages go to an SMTP server (rather than to the log).
    pub fn has_smtp(&self) -> bool {
        matches!(self.transport, Transport::Smtp(_))
    }

    /// Renders and sends one message. `message_id` names it for the recipient's server (the
    /// same for every attempt at one outbox message, so a duplicate can be recognised).
    pub async fn send(&self, mail: &ComposedMail, message_id: Option<String>) -> Result<(), SendError> {
        let rendered = self.templates.render(mail).map_err(|e| SendError::Invalid(e.to_string()))?;
        let to: Mailbox =
            mail.to.parse().map_err(|e| SendError::Invalid(format!("the recipient is not an address: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(rendered.subject.clone())
            .header(MessageId::from(message_id.unwrap_or_else(|| random_message_id(&self.from))))
            .multipart(MultiPart::alternative_plain_html(rendered.text.clone(), rendered.html))
            .map_err(|e| SendError::Invalid(e.to_string()))?;
        match &self.transport {
            // The transport's own timeout covers connecting; this one the whole delivery, so
            // that a server that stalls mid-way cannot hold a message past its lease.
            Transport::Smtp(smtp) => match tokio::time::timeout(self.send_timeout, smtp.send(message)).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) if e.is_permanent() => Err(SendError::Refused(error_chain(&e))),
                Ok(Err(e)) => Err(SendError::Transient(error_chain(&e))),
                Err(_) => Err(SendError::Transient(format!(
                    "the SMTP server did not finish within {}s",
                    self.send_timeout.as_secs()
                ))),
            },
            Transport::Log => {
                tracing::info!(
                    kind = mail.kind.as_str(),
                    to = %mail.to,
                    subject = %rendered.subject,
                    "no SMTP server is configured; the message follows instead of being sent:\n{}",
                    rendered.text
                );
                Ok(())
            }
        }
    }

    /// Checks that the SMTP server answers and accepts the credentials.
    pub async fn test_connection(&self) -> Result<(), SendError> {
        match &self.transport {
            Transport::Smtp(smtp) => match tokio::time::timeout(self.send_timeout, smtp.test_connection()).await {
                Ok(Ok(true)) => Ok(()),
                Ok(Ok(false)) | Err(_) => Err(SendError::Transient("the server did not answer".into())),
                Ok(Err(e)) => Err(SendError::Transient(error_chain(&e))),
            },
            Transport::Log => Ok(()),
        }
    }
}

fn smtp_transport(s: &SmtpConfig) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let host = s.host.trim();
    let builder = match s.tls {
        TlsMode::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
        TlsMode::Implicit => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
        TlsMode::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)),
    }
    .map_err(|e| format!("mail.smtp: {}", error_chain(&e)))?;
    let mut builder = builder.port(s.port()).timeout(Some(s.timeout));
    if let Some(user) = &s.username {
        let password = match (&s.password, &s.password_file) {
            (Some(p), _) => p.clone(),
            (None, Some(f)) => std::fs::read_to_string(f)
                .map_err(|e| format!("mail.smtp.password_file {}: {e}", f.display()))?
                .trim_end()
                .to_owned(),
            (None, None) => String::new(),
        };
        builder = builder.credentials(Credentials::new(user.clone(), password));
    }
    Ok(builder.build())
}

/// A Message-ID for a message outside the outbox.
fn random_message_id(from: &Mailbox) -> String {
    let nonce: u64 = rand_u64();
    format!("<portcullis.{nonce:016x}@{}>", from.email.domain())
}

fn rand_u64() -> u64 {
    portcullis_core::secret::random_bytes::<8>().map(u64::from_le_bytes).unwrap_or(0)
}

/// The Message-ID of an outbox message: the same on every attempt.
fn outbox_message_id(m: &OutboxMessage, from: &Mailbox) -> String {
    format!("<portcullis.{}.{}@{}>", m.id.0, m.created_at.unix_micros(), from.email.domain())
}

/// Delivers the outbox.
#[derive(Debug)]
pub struct MailSender {
    core: Arc<Core>,
    mailer: Mailer,
    batch_size: u32,
    poll_interval: Duration,
}

impl MailSender {
    /// A sender for the core's outbox.
    pub fn new(core: Arc<Core>, cfg: &MailConfig) -> Result<Self, String> {
        let mailer = Mailer::new(cfg)?;
        if !mailer.has_smtp() {
            tracing::warn!(
                "no SMTP server is configured (mail.smtp): messages, with their one-time links, are written to \
                 the log instead of being sent; configure one before real users arrive"
            );
        }
        Ok(Self { core, mailer, batch_size: cfg.batch_size, poll_interval: cfg.poll_interval })
    }

    /// Delivers messages until `stop` turns true: whenever one is queued on this node, and
    /// every `poll_interval` for those of other nodes and retries that came due. A message
    /// being sent when `stop` turns is finished first (and recorded), so that a shutdown never
    /// leaves a message sent but not marked as such.
    pub async fn run(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        while !*stop.borrow() {
            let full = match self.deliver_due(&stop).await {
                Ok(n) => n >= self.batch_size as usize,
                Err(e) => {
                    tracing::warn!(error = %error_chain(&e), "cannot read the mail outbox");
                    false
                }
            };
            if !full {
                tokio::select! {
                    () = self.core.mail_waiting() => {}
                    () = tokio::time::sleep(self.poll_interval) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    /// One round: leases the messages due and delivers each (until `stop` turns true; what
    /// is left is taken up again when its lease ends). Returns how many were leased.
    pub async fn deliver_due(
        &self,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) -> Result<usize, portcullis_core::CoreError> {
        let batch = self.core.claim_mail(self.batch_size).await?;
        let leased = Instant::now();
        let n = batch.len();
        for m in &batch {
            if *stop.borrow() {
                break;
            }
            // Never send on a lease that may have run out: another node may hold the message
            // by now.
            if leased.elapsed() > MAIL_LEASE / 2 {
                tracing::warn!("mail delivery is slow; leaving the rest of the round for later");
                break;
            }
            if let Err(e) = self.deliver(m).await {
                tracing::warn!(error = %error_chain(&e), "cannot record a delivery in the outbox");
            }
        }
        Ok(n)
    }

    async fn deliver(&self, m: &OutboxMessage) -> Result<(), portcullis_core::CoreError> {
        let composed = match self.core.compose_mail(m).await {
            Ok(Some(c)) => c,
            Ok(None) => return self.core.mail_delivered(m, false).await,
            Err(e) => return self.core.mail_failed(m, &error_chain(&e), false).await,
        };
        match self.mailer.send(&composed, Some(outbox_message_id(m, &self.mailer.from))).await {
            Ok(()) => self.core.mail_delivered(m, true).await,
            Err(e) => self.core.mail_failed(m, &e.to_string(), e.is_permanent()).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_that_cannot_work_are_refused() {
        assert!(MailConfig::default().check().is_ok());
        let bad_from = MailConfig { from: "not an address".into(), ..Default::default() };
        assert!(bad_from.check().unwrap_err().contains("mail.from"));
        let smtp = |f: fn(&mut SmtpConfig)| {
            let mut s = SmtpConfig {
                host: "smtp.example.com".into(),
                port: None,
                tls: TlsMode::Starttls,
                username: Some("u".into()),
                password: Some("p".into()),
                password_file: None,
                timeout: default_timeout(),
            };
            f(&mut s);
            MailConfig { smtp: Some(s), ..Default::default() }.check()
        };
        assert!(smtp(|_| {}).is_ok());
        assert!(smtp(|s| s.password_file = Some("/x".into())).is_err());
        assert!(smtp(|s| s.username = None).is_err());
        assert!(smtp(|s| s.host = " ".into()).is_err());
    }

    #[test]
    fn ports_follow_the_tls_mode() {
        let s = |tls| SmtpConfig {
            host: "h".into(),
            port: None,
            tls,
            username: None,
            password: None,
            password_file: None,
            timeout: default_timeout(),
        };
        assert_eq!(s(TlsMode::Starttls).port(), 587);
        assert_eq!(s(TlsMode::Implicit).port(), 465);
        assert_eq!(s(TlsMode::None).port(), 25);
        assert!(
            !format!("{:?}", SmtpConfig { password: Some("hunter2".into()), ..s(TlsMode::None) }).contains("hunter2")
        );
    }
}
