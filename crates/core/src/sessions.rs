//! The validated-session cache and batched last-seen updates.
//!
//! Checking a session is the hottest path of an account server, so validated sessions are
//! kept in memory. Correctness comes from invalidation, not from a short lifetime:
//! - every operation that ends sessions on this node evicts them here at once;
//! - ends committed by other nodes or processes arrive on the store's revocation feed and
//!   evict them here within the feed's latency (PostgreSQL: on commit, via `LISTEN/NOTIFY`;
//!   SQLite: one poll interval);
//! - while the feed is not live (at start-up, after an error) nothing is cached, and losing
//!   the feed forgets everything;
//! - a generation counter closes the race in which a miss reads a session from the database
//!   just before a revocation and would otherwise cache it just after the eviction.
//!
//! Last-seen times are not written on every request: a use is noted when the stored time is
//! older than the touch interval, and noted uses are written in one batch per flush.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use moka::sync::Cache;
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::ids::{SessionId, UserId};
use crate::model::Session;
use crate::secret::TokenHash;
use crate::store::Revocation;

/// Session cache and bookkeeping settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// Validated sessions kept in memory; 0 turns the cache off (every check reads the store).
    pub cache_capacity: u64,
    /// Longest a validated session is trusted from memory before it is read again.
    #[serde(with = "humantime_serde")]
    pub cache_ttl: Duration,
    /// A session's last-seen time is written at most once per this interval.
    #[serde(with = "humantime_serde")]
    pub touch_interval: Duration,
    /// How often expired sessions are deleted.
    #[serde(with = "humantime_serde")]
    pub sweep_interval: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            cache_capacity: 100_000,
            cache_ttl: Duration::from_secs(300),
            touch_interval: Duration::from_secs(60),
            sweep_interval: Duration::from_secs(600),
        }
    }
}

/// A session held in memory, with its last-seen time as this node knows it.
#[derive(Debug)]
pub struct CachedSession {
    /// The session as read from the store.
    pub session: Session,
    last_seen: AtomicI64,
}

impl CachedSession {
    /// Wraps a session read from the store.
    pub fn new(session: Session) -> Self {
        let last_seen = AtomicI64::new(session.last_seen_at.unix_micros());
        Self { session, last_seen }
    }

    /// Last use as known on this node.
    pub fn last_seen(&self) -> Timestamp {
        Timestamp::from_unix_micros(self.last_seen.load(Ordering::Relaxed))
    }

    /// The session with the last-seen time as known on this node.
    pub fn snapshot(&self) -> Session {
        let mut s = self.session.clone();
        s.last_seen_at = self.last_seen();
        s
    }
}

/// The cache itself; see the module documentation for its rules.
#[derive(Debug)]
pub struct SessionCache {
    cache: Option<Cache<TokenHash, Arc<CachedSession>>>,
    generation: AtomicU64,
    feed_live: AtomicBool,
    touch_interval: Duration,
    pending_touches: Mutex<HashMap<SessionId, Timestamp>>,
}

impl SessionCache {
    /// A cache with the given settings.
    pub fn new(cfg: &SessionConfig) -> Self {
        let cache = (cfg.cache_capacity > 0).then(|| {
            Cache::builder()
                .max_capacity(cfg.cache_capacity)
                .time_to_live(cfg.cache_ttl)
                .support_invalidation_closures()
                .build()
        });
        Self {
            cache,
            generation: AtomicU64::new(0),
            feed_live: AtomicBool::new(false),
            touch_interval: cfg.touch_interval,
            pending_touches: Mutex::new(HashMap::new()),
        }
    }

    /// The cached session for a token hash, if any.
    pub fn get(&self, hash: &TokenHash) -> Option<Arc<CachedSession>> {
        self.cache.as_ref()?.get(hash)
    }

    /// Call before reading a session from the store; pass the result to [`Self::insert`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Caches a session read from the store, unless something was revoked since
    /// `generation` was taken (the read may predate the revocation) or the feed is not live.
    pub fn insert(&self, hash: TokenHash, entry: Arc<CachedSession>, generation: u64) {
        let Some(cache) = &self.cache else { return };
        if !self.feed_live.load(Ordering::SeqCst) || self.generation() != generation {
            return;
        }
        cache.insert(hash, entry);
        // A revocation may have bumped the generation between the check and the insert, and
        // run its eviction before the entry existed; undo the insert in that case.
        if self.generation() != generation {
            cache.invalidate(&hash);
        }
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Forgets one session by token hash.
    pub fn evict_token(&self, hash: &TokenHash) {
        self.bump();
        if let Some(c) = &self.cache {
            c.invalidate(hash);
        }
    }

    /// Forgets one session by id.
    pub fn evict_session(&self, id: SessionId) {
        self.evict_where(move |s| s.id == id);
    }

    /// Forgets every session of a user, except `keep` if given.
    pub fn evict_user(&self, user: UserId, keep: Option<SessionId>) {
        self.evict_where(move |s| s.user_id == user && Some(s.id) != keep);
    }

    fn evict_where(&self, pred: impl Fn(&Session) -> bool + Send + Sync + 'static) {
        self.bump();
        if let Some(c) = &self.cache
            && c.invalidate_entries_if(move |_, v| pred(&v.session)).is_err()
        {
            c.invalidate_all();
        }
    }

    /// Forgets everything.
    pub fn evict_all(&self) {
        self.bump();
        if let Some(c) = &self.cache {
            c.invalidate_all();
        }
    }

    /// Applies a revocation heard on the feed.
    pub fn apply(&self, r: &Revocation) {
        match r {
            Revocation::Session(h) => self.evict_token(h),
            Revocation::User(u) => self.evict_user(*u, None),
            Revocation::All => self.evict_all(),
        }
    }

    /// Marks the feed live (entries may be cached from now on) or lost (everything is
    /// forgotten and nothing is cached until it is live again). Either way the generation
    /// moves, so a read that started before the feed was listening is never cached: a
    /// revocation may have landed between that read and the start of listening.
    pub fn set_feed_live(&self, live: bool) {
        self.feed_live.store(live, Ordering::SeqCst);
        self.evict_all();
    }

    /// Whether the revocation feed is live (and sessions are being cached).
    pub fn is_feed_live(&self) -> bool {
        self.feed_live.load(Ordering::SeqCst)
    }

    /// Notes that a session was used at `now`; queues a last-seen write when the known time
    /// is older than the touch interval (or than a quarter of the session's idle timeout, if
    /// that is shorter, so a session in use never idles out between two writes).
    pub fn note_use(&self, entry: &CachedSession, now: Timestamp) {
        let last = entry.last_seen();
        if now.since(last) < self.touch_interval.min(entry.session.idle_timeout / 4) {
            return;
        }
        // Only the caller that moves the time wins; concurrent uses queue one write.
        let won = entry
            .last_seen
            .compare_exchange(last.unix_micros(), now.unix_micros(), Ordering::SeqCst, Ordering::Relaxed)
            .is_ok();
        if won && let Ok(mut p) = self.pending_touches.lock() {
            p.insert(entry.session.id, now);
        }
    }

    /// Takes the queued last-seen writes.
    pub fn take_touches(&self) -> Vec<(SessionId, Timestamp)> {
        match self.pending_touches.lock() {
            Ok(mut p) => p.drain().collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Number of entries (approximate); for tests and metrics.
    pub fn len(&self) -> u64 {
        self.cache
            .as_ref()
            .map(|c| {
                c.run_pending_tasks();
                c.entry_count()
            })
            .unwrap_or(0)
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TenantId;

    fn session(id: i64, user: i64) -> Session {
        Session {
            id: SessionId(id),
            tenant_id: TenantId(1),
            user_id: UserId(user),
            created_at: Timestamp::from_unix_micros(0),
            expires_at: Timestamp::from_unix_micros(i64::MAX),
            idle_timeout: Duration::from_secs(3600),
            last_seen_at: Timestamp::from_unix_micros(0),
            user_agent: None,
            ip: None,
        }
    }

    fn live() -> SessionCache {
        let c = SessionCache::new(&SessionConfig::default());
        c.set_feed_live(true);
        c
    }

    #[test]
    fn nothing_is_cached_until_the_feed_is_live() {
        let c = SessionCache::new(&SessionConfig::default());
        let g = c.generation();
        c.insert(TokenHash([1; 32]), Arc::new(CachedSession::new(session(1, 1))), g);
        assert!(c.get(&TokenHash([1; 32])).is_none());
        c.set_feed_live(true);
        c.insert(TokenHash([1; 32]), Arc::new(CachedSession::new(session(1, 1))), c.generation());
        assert!(c.get(&TokenHash([1; 32])).is_some());
        c.set_feed_live(false);
        assert!(c.get(&TokenHash([1; 32])).is_none(), "losing the feed forgets everything");
    }

    #[test]
    fn a_read_that_raced_a_revocation_is_not_cached() {
        let c = live();
        let g = c.generation();
        // ... the store read happens here, then a revocation lands ...
        c.evict_user(UserId(1), None);
        c.insert(TokenHash([1; 32]), Arc::new(CachedSession::new(session(1, 1))), g);
        assert!(c.get(&TokenHash([1; 32])).is_none());
    }

    #[test]
    fn evictions_by_token_session_and_user() {
        let c = live();
        for (i, u) in [(1, 1), (2, 1), (3, 2)] {
            c.insert(TokenHash([i as u8; 32]), Arc::new(CachedSession::new(session(i, u))), c.generation());
        }
        c.evict_user(UserId(1), Some(SessionId(2)));
        assert!(c.get(&TokenHash([1; 32])).is_none());
        assert!(c.get(&TokenHash([2; 32])).is_some(), "the kept session stays");
        assert!(c.get(&TokenHash([3; 32])).is_some(), "other users are untouched");
        c.evict_session(SessionId(3));
        assert!(c.get(&TokenHash([3; 32])).is_none());
        c.apply(&Revocation::Session(TokenHash([2; 32])));
        assert!(c.get(&TokenHash([2; 32])).is_none());
    }

    #[test]
    fn short_idle_timeouts_are_touched_often_enough() {
        let c = live();
        let mut s = session(8, 1);
        s.idle_timeout = Duration::from_secs(40);
        let e = CachedSession::new(s);
        let t = Timestamp::from_unix_micros(0).plus(Duration::from_secs(11));
        c.note_use(&e, t);
        assert_eq!(c.take_touches(), vec![(SessionId(8), t)], "a quarter of 40 s, not the 60 s interval");
    }

    #[test]
    fn going_live_moves_the_generation() {
        let c = SessionCache::new(&SessionConfig::default());
        let g = c.generation();
        c.set_feed_live(true);
        c.insert(TokenHash([1; 32]), Arc::new(CachedSession::new(session(1, 1))), g);
        assert!(c.get(&TokenHash([1; 32])).is_none(), "read before the feed listened: not cached");
    }

    #[test]
    fn uses_are_written_at_most_once_per_interval() {
        let c = live();
        let e = CachedSession::new(session(7, 1));
        let t0 = Timestamp::from_unix_micros(0);
        c.note_use(&e, t0.plus(Duration::from_secs(10)));
        assert!(c.take_touches().is_empty(), "within the interval: no write");
        let t1 = t0.plus(Duration::from_secs(61));
        c.note_use(&e, t1);
        c.note_use(&e, t1.plus(Duration::from_secs(1)));
        assert_eq!(c.take_touches(), vec![(SessionId(7), t1)]);
        assert_eq!(e.last_seen(), t1);
    }
}
