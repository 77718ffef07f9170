//! The `portcullis` binary as a library: configuration, opening the store the configuration
//! names, building the core and the HTTP application, serving with graceful shutdown. The CLI
//! (`main.rs`) and the integration tests both start Portcullis through here, so the tests run
//! exactly what operators run.

pub mod config;
pub mod listen;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use portcullis_core::Core;
use portcullis_core::clock::{SharedClock, SystemClock};
use portcullis_core::store::Store;
use portcullis_store_postgres::{PostgresOptions, PostgresStore};
use portcullis_store_sqlite::{SqliteOptions, SqliteStore};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::{Backend, Config};

/// Opens (and migrates) the store the configuration names.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let db = &config.database;
    let store: Arc<dyn Store> = match config.backend().map_err(anyhow::Error::msg)? {
        Backend::Sqlite => {
            let opts = SqliteOptions {
                max_readers: db.max_connections,
                busy_timeout: db.busy_timeout,
                revocation_poll_interval: db.revocation_poll_interval,
                acquire_timeout: db.acquire_timeout,
            };
            Arc::new(SqliteStore::open(&config.database_url, opts).await.context("cannot open the SQLite database")?)
        }
        Backend::Postgres => {
            let opts = PostgresOptions { max_connections: db.max_connections, acquire_timeout: db.acquire_timeout };
            Arc::new(
                PostgresStore::open(&config.database_url, opts).await.context("cannot open the PostgreSQL database")?,
            )
        }
    };
    Ok(store)
}

/// Builds the core over the configured store.
pub async fn build_core(config: &Config, clock: SharedClock) -> anyhow::Result<Arc<Core>> {
    let store = open_store(config).await?;
    let core = Core::new(store, clock, config.core()).map_err(anyhow::Error::msg)?;
    Ok(Arc::new(core))
}

/// A running server.
#[derive(Debug)]
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The core it serves.
    pub core: Arc<Core>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Waits until the server stops on its own (its external shutdown signal fired).
    pub async fn stop_when_done(self) -> anyhow::Result<()> {
        let Running { shutdown, task, .. } = self;
        let result = task.await.context("server task failed")?;
        drop(shutdown);
        result
    }

    /// Asks the server to stop and waits until it has (in-flight requests finish first).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.await.context("server task failed")?
    }
}

/// Starts serving on an already bound listener. The server stops when `stop` is called on
/// the result or when `external_shutdown` completes, whichever comes first.
pub async fn start(
    config: &Config,
    core: Arc<Core>,
    listener: TcpListener,
    external_shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Running> {
    let addr = listener.local_addr()?;
    let app = portcullis_http::app(core.clone(), config.http.clone());
    let sender = portcullis_mail::MailSender::new(core.clone(), &config.mail).map_err(anyhow::Error::msg)?;
    let maintenance = tokio::spawn(core.clone().run_maintenance());
    // A shutdown waits for the message being sent: at most one delivery's timeout.
    let mail_stop_wait = config.mail.send_timeout() + std::time::Duration::from_secs(5);
    let (stop_mail, mail_stopped) = tokio::sync::watch::channel(false);
    let mail = tokio::spawn(Arc::new(sender).run(mail_stopped));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let grace = config.shutdown_grace;
    let limits = listen::Limits::new(&config.http, config.rate_limits.ipv6_prefix);
    let core_for_task = core.clone();
    let task = tokio::spawn(async move {
        let signal = async move {
            tokio::select! {
                _ = rx => {}
                () = external_shutdown => {}
            }
            tracing::info!("shutting down: finishing in-flight requests");
        };
        // In-flight requests get `grace` after the signal; then the server stops anyway.
        let result = listen::serve(listener, app, limits, signal, grace).await.context("HTTP server failed");
        maintenance.abort();
        // A message being sent is finished and recorded; then the sender stops.
        let _ = stop_mail.send(true);
        if tokio::time::timeout(mail_stop_wait, mail).await.is_err() {
            tracing::warn!("the mail sender did not stop in time");
        }
        if let Err(e) = core_for_task.flush_touches().await {
            tracing::warn!(error = %e, "could not record the last session uses");
        }
        if let Err(e) = core_for_task.flush_audit().await {
            tracing::warn!(error = %e, "could not write the last audit events");
        }
        result
    });
    Ok(Running { addr, core, shutdown: Some(tx), task })
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// The clock of a real server.
pub fn system_clock() -> SharedClock {
    Arc::new(SystemClock)
}
