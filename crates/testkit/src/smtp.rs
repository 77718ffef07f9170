//! A small SMTP server for tests: it speaks enough SMTP for `lettre` (EHLO, MAIL, RCPT, DATA,
//! RSET, NOOP, QUIT), keeps every message it accepts, and parses it with `mail-parser`, so a
//! test reads what a mail client would show — the subject, the text and HTML parts, the
//! links. It can go down and come back on the same port (an outage), and refuse messages for
//! a while (a server answering "try later", or refusing for good).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// A message the sink accepted, parsed.
#[derive(Clone, Debug)]
pub struct ReceivedMail {
    /// The envelope recipients (`RCPT TO`).
    pub recipients: Vec<String>,
    /// The `To:` address.
    pub to: String,
    /// The `Subject:`.
    pub subject: String,
    /// The `Message-ID:` (without angle brackets).
    pub message_id: String,
    /// The text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
    /// The raw message.
    pub raw: String,
}

impl ReceivedMail {
    /// The first link of the text part starting with `prefix` (e.g. a base URL), up to the
    /// next white space.
    pub fn link(&self, prefix: &str) -> Option<String> {
        let at = self.text.find(prefix)?;
        let rest = &self.text[at..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        Some(rest[..end].to_owned())
    }

    /// The `token` query parameter of the first link starting with `prefix`.
    pub fn token(&self, prefix: &str) -> Option<String> {
        let link = self.link(prefix)?;
        let (_, query) = link.split_once('?')?;
        query.split('&').find_map(|kv| kv.strip_prefix("token=")).map(str::to_owned)
    }
}

/// How the sink answers a message's `DATA`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// 250: accepted.
    Accept,
    /// 451: try again later.
    TryLater,
    /// 550: refused for good.
    Refuse,
    /// No answer at all after the message: a server that stalls.
    Stall,
}

#[derive(Debug)]
struct Shared {
    received: Mutex<Vec<ReceivedMail>>,
    answer: Mutex<Answer>,
    arrived: Notify,
}

/// A running SMTP sink.
#[derive(Debug)]
pub struct SmtpSink {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl SmtpSink {
    /// Starts a sink on a free port of 127.0.0.1.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            received: Mutex::new(Vec::new()),
            answer: Mutex::new(Answer::Accept),
            arrived: Notify::new(),
        });
        let task = Some(tokio::spawn(serve(listener, shared.clone())));
        Ok(Self { addr, shared, task })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops listening (connections are refused) until [`SmtpSink::resume`].
    pub fn go_down(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn resume(&mut self) -> std::io::Result<()> {
        if self.task.is_none() {
            let listener = TcpListener::bind(self.addr).await?;
            self.task = Some(tokio::spawn(serve(listener, self.shared.clone())));
        }
        Ok(())
    }

    /// How messages are answered from now on.
    pub fn answer_with(&self, a: Answer) {
        if let Ok(mut g) = self.shared.answer.lock() {
            *g = a;
        }
    }

    /// Every message accepted so far.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.shared.received.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// The messages accepted for `to`.
    pub fn messages_to(&self, to: &str) -> Vec<ReceivedMail> {
        self.messages().into_iter().filter(|m| m.recipients.iter().any(|r| r.eq_ignore_ascii_case(to))).collect()
    }

    /// Waits until `n` messages for `to` arrived (or `timeout` passed); returns them.
    pub async fn wait_for(&self, to: &str, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.shared.arrived.notified();
            let got = self.messages_to(to);
            if got.len() >= n || tokio::time::Instant::now() >= deadline {
                return got;
            }
            let _ = tokio::time::timeout_at(deadline, arrived).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.go_down();
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                conns.spawn(session(stream, shared.clone()));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Longest message the sink takes, in bytes.
const MAX_MESSAGE: usize = 1 << 20;

async fn session(stream: TcpStream, shared: Arc<Shared>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    write.write_all(b"220 sink.test ESMTP ready\r\n").await?;
    let mut recipients: Vec<String> = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if read.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_owned();
        let upper = cmd.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            write.write_all(b"250-sink.test\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 1048576\r\n").await?;
        } else if upper.starts_with("HELO") {
            write.write_all(b"250 sink.test\r\n").await?;
        } else if upper.starts_with("MAIL FROM:") {
            recipients.clear();
            write.write_all(b"250 OK\r\n").await?;
        } else if upper.starts_with("RCPT TO:") {
            let addr = cmd[8..].trim().trim_start_matches('<').split('>').next().unwrap_or("").to_owned();
            recipients.push(addr);
            write.write_all(b"250 OK\r\n").await?;
        } else if upper == "DATA" {
            write.write_all(b"354 go ahead\r\n").await?;
            let mut raw = String::new();
            loop {
                line.clear();
                if read.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                // Dot-stuffing: a leading dot was doubled by the client.
                raw.push_str(line.strip_prefix('.').unwrap_or(&line));
                if raw.len() > MAX_MESSAGE {
                    write.write_all(b"552 too big\r\n").await?;
                    return Ok(());
                }
            }
            let answer = shared.answer.lock().map(|g| *g).unwrap_or(Answer::Accept);
            match answer {
                Answer::Accept => {
                    let mail = parse(std::mem::take(&mut recipients), raw);
                    if let Ok(mut g) = shared.received.lock() {
                        g.push(mail);
                    }
                    shared.arrived.notify_waiters();
                    write.write_all(b"250 OK queued\r\n").await?;
                }
                Answer::TryLater => write.write_all(b"451 4.3.0 try again later\r\n").await?,
                Answer::Refuse => write.write_all(b"550 5.1.1 no such mailbox\r\n").await?,
                Answer::Stall => std::future::pending::<()>().await,
            }
        } else if upper == "RSET" {
            recipients.clear();
            write.write_all(b"250 OK\r\n").await?;
        } else if upper == "NOOP" {
            write.write_all(b"250 OK\r\n").await?;
        } else if upper == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            write.write_all(b"502 not implemented\r\n").await?;
        }
    }
}

fn parse(recipients: Vec<String>, raw: String) -> ReceivedMail {
    let parsed = mail_parser::MessageParser::default().parse(raw.as_bytes());
    let (to, subject, message_id, text, html) = match &parsed {
        Some(m) => (
            m.to().and_then(|a| a.first()).and_then(|a| a.address()).unwrap_or_default().to_owned(),
            m.subject().unwrap_or_default().to_owned(),
            m.message_id().unwrap_or_default().to_owned(),
            m.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
            m.body_html(0).map(|t| t.into_owned()).unwrap_or_default(),
        ),
        None => Default::default(),
    };
    ReceivedMail { recipients, to, subject, message_id, text, html, raw }
}
