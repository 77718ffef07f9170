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
pub mod clock;
pub mod error;
pub mod fields;
pub mod ids;
pub mod import;
pub mod keys;
pub mod legacy_hash;
pub mod limits;
pub mod model;
pub mod parse;
pub mod password;
pub mod profile;
pub mod secret;
pub mod sessions;
pub mod store;
pub mod tenants;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use serde::{Deserialize, Serialize};

pub use crate::clock::{Clock, SharedClock, SystemClock, Timestamp};
pub use crate::error::{CoreError, CoreResult, FieldErrors, UniqueField};
pub use crate::ids::{ApiKeyId, AttributeId, AuditEventId, RoleId, SessionId, TenantId, UserId};
pub use crate::secret::{Password, Token};

use crate::limits::{Limiter, RateLimitConfig};
use crate::model::{Policy, Tenant};
use crate::password::{HashingConfig, PasswordHasher};
use crate::sessions::{SessionCache, SessionConfig};
use crate::store::Store;

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
}

impl CoreConfig {
    /// Checks the settings for values that cannot work.
    pub fn check(&self) -> Result<(), String> {
        self.policy.check().map_err(|e| format!("policy: {e}"))?;
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
}

impl ClientInfo {
    fn ip_string(&self) -> Option<String> {
        self.ip.map(|ip| ip.to_string())
    }

    fn user_agent_truncated(&self) -> Option<String> {
        self.user_agent.as_ref().map(|ua| ua.chars().filter(|c| !c.is_control()).take(512).collect())
    }
}

/// How long a node trusts a tenant (its policy, whether it is enabled) read from the store.
/// Changes made on this node take effect at once; changes made on another node within this.
pub const TENANT_CACHE_TTL: Duration = Duration::from_secs(5);

/// The core service: one per process, shared by every surface.
#[derive(Debug)]
pub struct Core {
    store: Arc<dyn Store>,
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
}

impl Core {
    /// Builds the core over a store. Fails if the configuration cannot work.
    pub fn new(store: Arc<dyn Store>, clock: SharedClock, config: CoreConfig) -> Result<Self, String> {
        config.check()?;
        let hasher = PasswordHasher::new(&config.password)?;
        let sessions = SessionCache::new(&config.sessions);
        let limiter = Limiter::new(&config.rate_limits, clock.clone());
        let tenants = moka::sync::Cache::builder().max_capacity(10_000).time_to_live(TENANT_CACHE_TTL).build();
        let slugs = moka::sync::Cache::builder().max_capacity(10_000).time_to_live(TENANT_CACHE_TTL).build();
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
        })
    }

    /// The store this core runs on.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The password hashing pool.
    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// The session cache.
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
        self.store.ping().await.map_err(CoreError::Unavailable)
    }

    /// An enabled tenant and the policy in force for it.
    pub async fn tenant_policy(&self, tenant: TenantId) -> CoreResult<(Arc<Tenant>, Policy)> {
        let t = match self.tenants.get(&tenant) {
            Some(t) => t,
            None => {
                let t = Arc::new(self.store.tenant(tenant).await?.ok_or(CoreError::NotFound)?);
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
        self.store.tenant_by_slug(slug).await?.filter(|t| !t.disabled).ok_or(CoreError::NotFound)
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
        let mut backoff = Duration::from_millis(50);
        loop {
            match self.store.revocations().await {
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
                    backoff = if opened.elapsed() > Duration::from_secs(30) {
                        Duration::from_millis(100)
                    } else {
                        (backoff * 2).min(Duration::from_secs(10))
                    };
                    tokio::time::sleep(backoff).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot open the revocation feed; sessions are not cached meanwhile");
                    self.sessions.set_feed_live(false);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    async fn flush_touches_periodically(self: Arc<Self>) {
        let every =
            (self.config.sessions.touch_interval / 4).clamp(Duration::from_millis(250), Duration::from_secs(15));
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
            self.store.touch_sessions(&touches).await?;
        }
        Ok(())
    }

    async fn sweep_periodically(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.config.sessions.sweep_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.limiter.prune();
            match self.store.delete_expired_sessions(self.now(), Duration::from_secs(3600)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(sessions = n, "deleted expired sessions"),
                Err(e) => tracing::warn!(error = %e, "could not delete expired sessions"),
            }
        }
    }
}

#[cfg(test)]
mod feed_tests {
    //! The core's handling of the revocation feed, against a store whose feed the test drives.

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use futures::StreamExt as _;
    use tokio::sync::{Semaphore, mpsc};

    use super::*;
    use crate::clock::ManualClock;
    use crate::model::{AttributeDefinition, Role, Session, User};
    use crate::parse::LoginKey;
    use crate::secret::TokenHash;
    use crate::store::*;

    #[derive(Debug)]
    struct FeedStore {
        session: Session,
        opens: AtomicUsize,
        // Each open after the first waits for a permit, so the test sees the gap.
        reopen: Semaphore,
        feeds: Mutex<Vec<mpsc::UnboundedSender<StoreResult<Revocation>>>>,
    }

    fn nope<T>() -> StoreResult<T> {
        Err(StoreError::Corrupt("not used by this test".into()))
    }

    #[async_trait::async_trait]
    impl Store for FeedStore {
        async fn ping(&self) -> StoreResult<()> {
            Ok(())
        }
        async fn tenant(&self, _: TenantId) -> StoreResult<Option<Tenant>> {
            nope()
        }
        async fn tenant_by_slug(&self, _: &str) -> StoreResult<Option<Tenant>> {
            nope()
        }
        async fn insert_tenant(&self, _: &NewTenant) -> StoreResult<Tenant> {
            nope()
        }
        async fn insert_attribute_definition(&self, _: &NewAttributeDefinition) -> StoreResult<AttributeDefinition> {
            nope()
        }
        async fn attribute_definitions(&self, _: TenantId) -> StoreResult<Vec<AttributeDefinition>> {
            nope()
        }
        async fn insert_role(&self, _: &NewRole) -> StoreResult<Role> {
            nope()
        }
        async fn roles(&self, _: TenantId) -> StoreResult<Vec<Role>> {
            nope()
        }
        async fn insert_user(&self, _: &NewUser) -> StoreResult<User> {
            nope()
        }
        async fn user(&self, _: TenantId, _: UserId) -> StoreResult<Option<User>> {
            nope()
        }
        async fn user_with_secret(&self, _: TenantId, _: &LoginKey) -> StoreResult<Option<UserWithSecret>> {
            nope()
        }
        async fn user_with_secret_by_id(&self, _: TenantId, _: UserId) -> StoreResult<Option<UserWithSecret>> {
            nope()
        }
        async fn update_user(&self, _: TenantId, _: UserId, _: &UserUpdate, _: Timestamp) -> StoreResult<Option<User>> {
            nope()
        }
        async fn delete_user(&self, _: TenantId, _: UserId, _: Timestamp) -> StoreResult<bool> {
            nope()
        }
        async fn set_password_hash(&self, _: TenantId, _: UserId, _: &PasswordChange) -> StoreResult<bool> {
            nope()
        }
        async fn insert_session(&self, _: &NewSession) -> StoreResult<Option<Session>> {
            nope()
        }
        async fn session_by_token_hash(&self, _: &TokenHash) -> StoreResult<Option<Session>> {
            Ok(Some(self.session.clone()))
        }
        async fn sessions_of_user(&self, _: TenantId, _: UserId) -> StoreResult<Vec<Session>> {
            nope()
        }
        async fn delete_session(&self, _: TenantId, _: UserId, _: SessionId, _: Timestamp) -> StoreResult<bool> {
            nope()
        }
        async fn delete_session_by_token_hash(&self, _: &TokenHash, _: Timestamp) -> StoreResult<bool> {
            nope()
        }
        async fn delete_sessions_of_user(
            &self,
            _: TenantId,
            _: UserId,
            _: EndSessions,
            _: Timestamp,
        ) -> StoreResult<u64> {
            nope()
        }
        async fn touch_sessions(&self, _: &[(SessionId, Timestamp)]) -> StoreResult<()> {
            Ok(())
        }
        async fn delete_expired_sessions(&self, _: Timestamp, _: Duration) -> StoreResult<u64> {
            Ok(0)
        }
        async fn tenants(&self) -> StoreResult<Vec<Tenant>> {
            nope()
        }
        async fn tenant_by_domain(&self, _: &str) -> StoreResult<Option<Tenant>> {
            nope()
        }
        async fn update_tenant(&self, _: TenantId, _: &TenantUpdate, _: Timestamp) -> StoreResult<Option<Tenant>> {
            nope()
        }
        async fn delete_role(&self, _: TenantId, _: RoleId) -> StoreResult<bool> {
            nope()
        }
        async fn delete_attribute_definition(&self, _: TenantId, _: AttributeId) -> StoreResult<bool> {
            nope()
        }
        async fn update_attribute_definition(
            &self,
            _: TenantId,
            _: AttributeId,
            _: Option<bool>,
            _: Option<bool>,
            _: Timestamp,
        ) -> StoreResult<Option<AttributeDefinition>> {
            nope()
        }
        async fn list_users(&self, _: &UserQuery) -> StoreResult<Vec<User>> {
            nope()
        }
        async fn users_with_secrets(&self, _: TenantId, _: Option<UserId>, _: u32) -> StoreResult<Vec<UserWithSecret>> {
            nope()
        }
        async fn import_users(&self, _: &[NewUser]) -> StoreResult<Vec<ImportOutcome>> {
            nope()
        }
        async fn password_schemes(&self, _: TenantId) -> StoreResult<Vec<(String, u64)>> {
            nope()
        }
        async fn insert_api_key(&self, _: &NewApiKey) -> StoreResult<crate::model::ApiKey> {
            nope()
        }
        async fn api_key_by_hash(&self, _: &TokenHash) -> StoreResult<Option<crate::model::ApiKey>> {
            nope()
        }
        async fn api_keys(&self, _: Option<TenantId>) -> StoreResult<Vec<crate::model::ApiKey>> {
            nope()
        }
        async fn revoke_api_key(
            &self,
            _: Option<TenantId>,
            _: crate::ids::ApiKeyId,
            _: Timestamp,
        ) -> StoreResult<bool> {
            nope()
        }
        async fn touch_api_key(&self, _: crate::ids::ApiKeyId, _: Timestamp) -> StoreResult<()> {
            nope()
        }
        async fn insert_one_time_token(&self, _: &NewOneTimeToken) -> StoreResult<()> {
            nope()
        }
        async fn consume_one_time_token(
            &self,
            _: &TokenHash,
            _: &str,
            _: Timestamp,
        ) -> StoreResult<Option<ConsumedToken>> {
            nope()
        }
        async fn insert_audit_events(&self, _: &[NewAuditEvent]) -> StoreResult<()> {
            Ok(())
        }
        async fn audit_events(&self, _: &AuditQuery) -> StoreResult<Vec<crate::model::AuditEvent>> {
            nope()
        }
        async fn revocations(&self) -> StoreResult<RevocationFeed> {
            if self.opens.fetch_add(1, Ordering::SeqCst) > 0 {
                self.reopen.acquire().await.map_err(|e| StoreError::Other(Box::new(e)))?.forget();
            }
            let (tx, rx) = mpsc::unbounded_channel();
            self.feeds.lock().unwrap().push(tx);
            Ok(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }).boxed())
        }
    }

    async fn until(what: &str, f: impl Fn() -> bool) {
        for _ in 0..500 {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting until {what}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lost_feed_stops_caching_until_a_new_feed_listens() {
        let clock = ManualClock::starting_now();
        let now = clock.now();
        let session = Session {
            id: SessionId(1),
            tenant_id: TenantId::DEFAULT,
            user_id: UserId(1),
            created_at: now,
            expires_at: now.plus(Duration::from_secs(3600)),
            idle_timeout: Duration::from_secs(3600),
            last_seen_at: now,
            user_agent: None,
            ip: None,
        };
        let store = Arc::new(FeedStore {
            session,
            opens: AtomicUsize::new(0),
            reopen: Semaphore::new(0),
            feeds: Mutex::new(Vec::new()),
        });
        let config = CoreConfig {
            password: crate::password::HashingConfig { memory_kib: 1024, iterations: 1, ..Default::default() },
            ..Default::default()
        };
        let core = Arc::new(Core::new(store.clone(), Arc::new(clock), config).unwrap());
        let maintenance = tokio::spawn(core.clone().run_maintenance());
        let token = Token::generate(crate::auth::SESSION_TOKEN_PREFIX).unwrap();
        let cache = core.session_cache();

        until("the feed listens", || cache.is_feed_live()).await;
        core.authenticate(TenantId::DEFAULT, &token).await.unwrap();
        assert_eq!(cache.len(), 1, "cached while the feed listens");

        // The feed reports that it lost track.
        let first = store.feeds.lock().unwrap()[0].clone();
        first.send(Err(StoreError::Unavailable("connection lost".into()))).unwrap();
        until("the core asks for a new feed", || store.opens.load(Ordering::SeqCst) == 2).await;
        assert!(!cache.is_feed_live());
        assert_eq!(cache.len(), 0, "everything cached before the loss is forgotten");
        core.authenticate(TenantId::DEFAULT, &token).await.unwrap();
        assert_eq!(cache.len(), 0, "nothing is cached while no feed listens");
        assert!(first.is_closed(), "the lost feed was dropped, not read on");

        // A new feed listens: caching resumes, and its revocations are applied.
        store.reopen.add_permits(1);
        until("the new feed listens", || cache.is_feed_live()).await;
        core.authenticate(TenantId::DEFAULT, &token).await.unwrap();
        assert_eq!(cache.len(), 1);
        let second = store.feeds.lock().unwrap()[1].clone();
        second.send(Ok(Revocation::Session(token.hash()))).unwrap();
        until("the revocation is applied", || cache.is_empty()).await;
        maintenance.abort();
    }
}
