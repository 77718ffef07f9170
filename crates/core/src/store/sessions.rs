//! The sessions part of the store, and the revocation feed that tells every node which
//! sessions ended.

use std::fmt::Debug;
use std::net::IpAddr;
use std::pin::Pin;
use std::time::Duration;

use futures::Stream;

use super::{EndSessions, StoreResult};
use crate::clock::Timestamp;
use crate::ids::{SessionId, TenantId, UserId};
use crate::model::Session;
use crate::secret::TokenHash;

/// A session to open.
#[derive(Clone)]
pub struct NewSession {
    /// Tenant of the user.
    pub tenant_id: TenantId,
    /// The user.
    pub user_id: UserId,
    /// The password version the caller checked (or just set). The session is opened only if
    /// the user is still at this version and not disabled, so a log-in racing a password
    /// change, a deletion or a disabling cannot leave a session behind it.
    pub checked_password_version: i64,
    /// Hash of the token handed to the client.
    pub token_hash: TokenHash,
    /// Opening time; also recorded as the user's last log-in.
    pub now: Timestamp,
    /// Absolute expiry.
    pub expires_at: Timestamp,
    /// Idle timeout.
    pub idle_timeout: Duration,
    /// Client user agent (truncated).
    pub user_agent: Option<String>,
    /// Client IP.
    pub ip: Option<IpAddr>,
}

impl Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession")
            .field("tenant_id", &self.tenant_id)
            .field("user_id", &self.user_id)
            .field("token_hash", &self.token_hash)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Sessions ended somewhere, as heard on the revocation feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Revocation {
    /// One session, by the hash of its token.
    Session(TokenHash),
    /// Every session of a user.
    User(UserId),
    /// Sessions may have ended without notice (the feed lost track); forget everything.
    All,
}

/// A stream of revocations committed by any node or process sharing the database, from the
/// moment it was opened. An `Err` item means the feed may have lost track: the reader must
/// drop this feed, forget what it cached, and open a new one.
pub type RevocationFeed = Pin<Box<dyn Stream<Item = StoreResult<Revocation>> + Send>>;

/// Log-in sessions. Every write that ends sessions also publishes them on the revocation feed
/// ([`RevocationStore`]) in the same transaction.
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync + Debug {
    /// Opens a session and records the user's log-in time; `None` (nothing written) when the
    /// user's password version moved past `checked_password_version`, or the user is disabled
    /// or gone.
    async fn insert_session(&self, s: &NewSession) -> StoreResult<Option<Session>>;
    /// The session whose token has this hash (expired or not).
    async fn session_by_token_hash(&self, hash: &TokenHash) -> StoreResult<Option<Session>>;
    /// A user's sessions, newest first.
    async fn sessions_of_user(&self, tenant: TenantId, user: UserId) -> StoreResult<Vec<Session>>;
    /// Ends one of a user's sessions; `false` when the user has no such session.
    async fn delete_session(&self, tenant: TenantId, user: UserId, id: SessionId, now: Timestamp) -> StoreResult<bool>;
    /// Ends the session whose token has this hash; `false` if absent.
    async fn delete_session_by_token_hash(&self, hash: &TokenHash, now: Timestamp) -> StoreResult<bool>;
    /// Ends a user's sessions as asked; returns how many ended.
    async fn delete_sessions_of_user(
        &self,
        tenant: TenantId,
        user: UserId,
        which: EndSessions,
        now: Timestamp,
    ) -> StoreResult<u64>;
    /// Records that sessions were used (batched last-seen updates); never moves time back.
    async fn touch_sessions(&self, touches: &[(SessionId, Timestamp)]) -> StoreResult<()>;
    /// Deletes sessions that expired (absolutely or idle) before `now`, and feed bookkeeping
    /// older than `keep_feed`; returns how many sessions were deleted.
    async fn delete_expired_sessions(&self, now: Timestamp, keep_feed: Duration) -> StoreResult<u64>;
}

/// The revocation feed: how a node hears of sessions ended by any node or process sharing
/// the database.
#[async_trait::async_trait]
pub trait RevocationStore: Send + Sync + Debug {
    /// Opens the revocation feed.
    async fn revocations(&self) -> StoreResult<RevocationFeed>;
}
