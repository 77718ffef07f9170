//! The Portcullis core: the model, every account and session operation, policy, password
//! hashing, and the ports (traits) through which it reaches storage and time.
//!
//! Every surface (the native JSON API, the legacy dialects, the hosted pages, the CLI) is a
//! thin adapter over [`Core`]: it parses its wire format into a command, calls one operation
//! here, and writes the answer back in its own format. All rules — uniqueness, policy,
//! enumeration resistance, session revocation — live here once, so surfaces cannot disagree.
//!
//! This crate must not depend on a web framework, a database driver, a mailer or a template
//! engine.

pub mod accounts;
pub mod admin;
pub mod audit;
pub mod auth;
pub mod avatar;
pub mod caller;
pub mod clock;
pub mod dialect;
pub mod error;
pub mod fields;
pub mod ids;
pub mod import;
pub mod keys;
pub mod legacy_hash;
pub mod limits;
pub mod login;
pub mod mail;
pub mod model;
pub mod parse;
pub mod password;
pub mod profile;
pub mod recovery;
pub mod sealing;
pub mod secret;
pub mod sessions;
pub mod settings;
pub mod store;
pub mod tenants;
pub mod totp;
pub mod verification;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use serde::{Deserialize, Serialize};

pub use crate::caller::Caller;
pub use crate::clock::{Clock, SharedClock, SystemClock, Timestamp};
pub use crate::dialect::Dialect;
pub use crate::error::{CoreError, CoreResult, Field, FieldErrors, UniqueField};
pub use crate::fields::AccountInput;
pub use crate::ids::{ApiKeyId, AttributeId, AuditEventId, RoleId, SessionId, TenantId, UserId};
pub use crate::secret::{Password, Token};

use crate::limits::{Limiter, RateLimitConfig};
use crate::model::{Policy, Tenant};
use crate::password::{HashingConfig, PasswordHasher};
use crate::sessions::{SessionCache, SessionConfig};
use crate::store::{Store, Stores};

/// Settings of the core, as read from the server configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoreConfig {
    /// Server-wide policy; each tenant may override parts of it.
    pub policy: Policy,
    /// Password hashing parameters and pool.
    pub password: HashingConfig,
    /// Session cache and bookkeeping.
    pub sessions: SessionConfig,
    /// Password-guessing limits.
    pub rate_limits: RateLimitConfig,
    /// The key that seals second-factor secrets (from `[secrets]`, never from a tenant).
    #[serde(skip)]
    pub secrets: SealingKeys,
}

/// The keys that seal secrets the server must read back (TOTP secrets).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SealingKeys {
    /// The key new values are sealed with; `None` to keep one in the database.
    pub key: Option<sealing::SecretKey>,
    /// Keys used before, which still open what they sealed.
    pub previous: Vec<sealing::SecretKey>,
}

impl CoreConfig {
    /// Checks the settings for values that cannot work.
    pub fn check(&self) -> Result<(), String> {
        self.policy.check().map_err(|e| format!("policy: {e}"))?;
        self.rate_limits.check()?;
        self.password.params().map_err(|e| format!("password: {e}"))?;
        let s = &self.sessions;
        if s.touch_interval < Duration::from_secs(1) {
            return Err("sessions.touch_interval must be at least 1s".into());
        }
        if s.sweep_interval < Duration::from_secs(1) {
            return Err("sessions.sweep_interval must be at least 1s".into());
        }
        if s.cache_capacity > 0 && s.cache_ttl < Duration::from_secs(1) {
            return Err("sessions.cache_ttl must be at least 1s (or turn the cache off with cache_capacity = 0)".into());
        }
        if self.password.max_wait < Duration::from_millis(10) {
            return Err("password.max_wait must be at least 10ms".into());
        }
        Ok(())
    }
}

/// What the core knows about the client making a request, for session records, limits and
/// (later) the audit log.
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    /// Client IP address, as determined by the surface (proxy headers only from trusted
    /// proxies).
    pub ip: Option<std::net::IpAddr>,
    /// User-Agent header.
    pub user_agent: Option<String>,
    /// The surface the request came through (`native`, `admin`, `pages`, a dialect's name),
    /// recorded with every audit event it causes; empty outside HTTP.
    pub surface: &'static str,
}

impl ClientInfo {
    fn user_agent_truncated(&self) -> Option<String> {
        self.user_agent.as_ref().map(|ua| ua.chars().filter(|c| !c.is_control()).take(MAX_USER_AGENT_CHARS).collect())
    }
}

/// Longest user agent kept with a session or an audit event, in characters.
pub const MAX_USER_AGENT_CHARS: usize = 512;

/// The revocation feed is reopened after a failure no sooner than this...
const FEED_RETRY_MIN: Duration = Duration::from_millis(50);
/// ...and, if it keeps failing, no later than this.
const FEED_RETRY_MAX: Duration = Duration::from_secs(10);
/// A feed that stayed up this long earns a quick reconnect when it drops...
const FEED_STABLE_AFTER: Duration = Duration::from_secs(30);
/// ...after this.
const FEED_QUICK_RECONNECT: Duration = Duration::from_millis(100);

/// Bounds on how often the session uses noted in memory are written.
const TOUCH_FLUSH_EVERY: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(15));

/// Largest page of any listing (users, the audit log).
pub const MAX_PAGE: u32 = 1000;

/// Most tenants (and slugs) a node keeps in memory.
pub const TENANT_CACHE_CAPACITY: u64 = 10_000;

/// How long expired sessions' entries stay on the revocation feed's books after the sweep.
pub const REVOCATION_FEED_KEEP: Duration = Duration::from_secs(3600);

/// How long a node trusts a tenant (its policy, whether it is enabled) read from the store.
/// Changes made on this node take effect at once; changes made on another node within this.
pub const TENANT_CACHE_TTL: Duration = Duration::from_secs(5);

/// The core service: one per process, shared by every surface.
#[derive(Debug)]
pub struct Core {
    store: Stores,
    clock: SharedClock,
    hasher: PasswordHasher,
    config: CoreConfig,
    sessions: SessionCache,
    limiter: Limiter,
    tenants: moka::sync::Cache<TenantId, Arc<Tenant>>,
    slugs: moka::sync::Cache<String, TenantId>,
    domains: tenants::DomainCache,
    key_touches: moka::sync::Cache<ApiKeyId, ()>,
    audit: audit::AuditQueue,
    sealer: tokio::sync::OnceCell<sealing::Sealer>,
    mail_waiting: tokio::sync::Notify,
    images: tokio::sync::Semaphore,
}

impl Core {
    /// Builds the core over a store. Fails if the configuration cannot work.
    pub fn new(store: Arc<dyn Store>, clock: SharedClock, config: CoreConfig) -> Result<Self, String> {
        Self::with_stores(Stores::new(store), clock, config)
    }

    /// Builds the core over the parts of a store (which a test may mix with doubles).
    pub fn with_stores(store: Stores, clock: SharedClock, config: CoreConfig) -> Result<Self, String> {
        config.check()?;
        let hasher = PasswordHasher::new(&config.password)?;
        let sessions = SessionCache::new(&config.sessions);
        let limiter = Limiter::new(&config.rate_limits, clock.clone());
        let tenants =
            moka::sync::Cache::builder().max_capacity(TENANT_CACHE_CAPACITY).time_to_live(TENANT_CACHE_TTL).build();
        let slugs =
            moka::sync::Cache::builder().max_capacity(TENANT_CACHE_CAPACITY).time_to_live(TENANT_CACHE_TTL).build();
        Ok(Self {
            store,
            clock,
            hasher,
            config,
            sessions,
            limiter,
            tenants,
            slugs,
            domains: Default::default(),
            key_touches: keys::key_touch_cache(),
            audit: audit::AuditQueue::default(),
            sealer: tokio::sync::OnceCell::new(),
            mail_waiting: tokio::sync::Notify::new(),
            images: tokio::sync::Semaphore::new(avatar::IMAGE_WORKERS),
        })
    }

    /// The parts of the store this core runs on. Tests only: everything else goes through
    /// the operations, which decide who may do what.
    #[cfg(any(test, feature = "test-support"))]
    pub fn stores(&self) -> &Stores {
        &self.store
    }

    /// The password hashing pool. Tests only.
    #[cfg(any(test, feature = "test-support"))]
    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// The session cache. Tests only.
    #[cfg(any(test, feature = "test-support"))]
    pub fn session_cache(&self) -> &SessionCache {
        &self.sessions
    }

    /// The settings in force.
    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Whether the database answers.
    pub async fn ready(&self) -> CoreResult<()> {
        self.store.database.ping().await.map_err(CoreError::Unavailable)
    }

    /// An enabled tenant and the policy in force for it.
    pub async fn tenant_policy(&self, tenant: TenantId) -> CoreResult<(Arc<Tenant>, Policy)> {
        let t = match self.tenants.get(&tenant) {
            Some(t) => t,
            None => {
                let t = Arc::new(self.store.tenants.tenant(tenant).await?.ok_or(CoreError::NotFound)?);
                self.tenants.insert(tenant, t.clone());
                t
            }
        };
        if t.disabled {
            return Err(CoreError::NotFound);
        }
        let p = self.config.policy.overlay(&t.policy);
        Ok((t, p))
    }

    /// Forgets a cached tenant (after changing it).
    pub fn forget_tenant(&self, tenant: TenantId) {
        self.tenants.invalidate(&tenant);
    }

    /// The enabled tenant with this slug.
    pub async fn tenant_by_slug(&self, slug: &str) -> CoreResult<Tenant> {
        self.store.tenants.tenant_by_slug(slug).await?.filter(|t| !t.disabled).ok_or(CoreError::NotFound)
    }

    /// The key `ip` is counted under for per-address limits in `tenant` (IPv6 grouped by
    /// `rate_limits.ipv6_prefix`).
    pub(crate) fn address_key(&self, tenant: TenantId, ip: Option<std::net::IpAddr>) -> Option<String> {
        ip.map(|ip| limits::address_key(tenant, ip, self.config.rate_limits.ipv6_prefix))
    }

    /// Runs the background work (revocation feed, batched last-seen writes, the audit log,
    /// removal of expired sessions, limiter pruning) until the returned future is dropped.
    pub async fn run_maintenance(self: Arc<Self>) {
        tokio::join!(
            self.clone().follow_revocations(),
            self.clone().flush_touches_periodically(),
            self.flush_audit_periodically(),
            self.clone().sweep_periodically()
        );
    }

    async fn follow_revocations(self: Arc<Self>) {
        let mut backoff = FEED_RETRY_MIN;
        loop {
            match self.store.revocations.revocations().await {
                Ok(mut feed) => {
                    let opened = tokio::time::Instant::now();
                    self.sessions.set_feed_live(true);
                    loop {
                        match feed.next().await {
                            Some(Ok(r)) => self.sessions.apply(&r),
                            Some(Err(e)) => {
                                tracing::warn!(error = %e, "revocation feed lost; forgetting cached sessions and reopening it");
                                break;
                            }
                            None => {
                                tracing::warn!("revocation feed ended; forgetting cached sessions and reopening it");
                                break;
                            }
                        }
                    }
                    // Nothing is cached until a new feed listens: revocations made meanwhile
                    // could not be heard.
                    self.sessions.set_feed_live(false);
                    drop(feed);
                    // A feed that stayed up a while earns a quick reconnect; one that keeps
                    // dying at once backs off, rather than reconnecting ten times a second.
                    backoff = if opened.elapsed() > FEED_STABLE_AFTER {
                        FEED_QUICK_RECONNECT
                    } else {
                        (backoff * 2).min(FEED_RETRY_MAX)
                    };
                    tokio::time::sleep(backoff).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot open the revocation feed; sessions are not cached meanwhile");
                    self.sessions.set_feed_live(false);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(FEED_RETRY_MAX);
                }
            }
        }
    }

    async fn flush_touches_periodically(self: Arc<Self>) {
        let every = (self.config.sessions.touch_interval / 4).clamp(TOUCH_FLUSH_EVERY.0, TOUCH_FLUSH_EVERY.1);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = self.flush_touches().await {
                tracing::warn!(error = %e, "could not record session use");
            }
        }
    }

    /// Writes the queued last-seen times now (also called at shutdown).
    pub async fn flush_touches(&self) -> CoreResult<()> {
        let touches = self.sessions.take_touches();
        if !touches.is_empty() {
            self.store.sessions.touch_sessions(&touches).await?;
        }
        Ok(())
    }

    async fn sweep_periodically(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.config.sessions.sweep_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.limiter.prune();
            if let Err(e) = self.classify_passwords().await {
                tracing::warn!(error = %e, "could not classify password hashes");
            }
            match self.store.sessions.delete_expired_sessions(self.now(), REVOCATION_FEED_KEEP).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(sessions = n, "deleted expired sessions"),
                Err(e) => tracing::warn!(error = %e, "could not delete expired sessions"),
            }
        }
    }
}
