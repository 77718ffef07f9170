//! The storage port, in parts. Each part is a trait for one cohesive piece of state
//! (tenants, roles, attributes, users, sessions, the revocation feed, API keys, one-time
//! tokens, the audit log, import); [`Store`] is their sum, implemented once per backend
//! (`portcullis-store-sqlite`, `portcullis-store-postgres`), one module per part, and checked by
//! one conformance suite (`portcullis-store-tests`). The core holds the parts as [`Stores`], so a
//! test can replace one part and keep the real others.
//!
//! Rules every implementation keeps:
//! - uniqueness (username, e-mail, phone per tenant; compared in normalised form) is enforced
//!   by unique indexes and reported as [`StoreError::Conflict`], never by read-then-insert;
//! - a write that spans several rows (a user with attributes and roles; a password change that
//!   ends sessions) is one transaction; writes that must land together across parts go
//!   through one [`UnitOfWork`];
//! - every write that ends sessions also publishes a [`Revocation`] on the feed that
//!   [`RevocationStore::revocations`] returns, in the same transaction, so that every node's
//!   session cache hears of it;
//! - a one-time secret is consumed by one atomic statement, never a read followed by a write.

mod api_keys;
mod attributes;
mod audit;
mod avatars;
mod import;
mod outbox;
mod roles;
mod second_factors;
mod sessions;
mod tenants;
mod tokens;
mod users;

use std::fmt::Debug;
use std::sync::Arc;

pub use self::api_keys::{ApiKeyStore, NewApiKey};
pub use self::attributes::{AttributeStore, NewAttributeDefinition};
pub use self::audit::{AuditQuery, AuditStore, NewAuditEvent};
pub use self::avatars::{AvatarStore, StoredImage};
pub use self::import::{ImportOutcome, ImportStore};
pub use self::outbox::{NewOutboxMessage, OutboxMessage, OutboxStore};
pub use self::roles::{NewRole, RoleStore};
pub use self::second_factors::{SecondFactorStore, TotpCredential};
pub use self::sessions::{NewSession, Revocation, RevocationFeed, RevocationStore, SessionStore};
pub use self::tenants::{NewTenant, TenantStore, TenantUpdate};
pub use self::tokens::{ConsumedToken, NewOneTimeToken, OneTimeTokenStore};
pub use self::users::{EndSessions, NewUser, PasswordChange, UserQuery, UserStore, UserUpdate, UserWithSecret};
use crate::clock::Timestamp;
use crate::error::UniqueField;
use crate::ids::{OutboxId, TenantId, UserId};
use crate::model::{TokenPurpose, User};
use crate::secret::TokenHash;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique index refused the write; nothing was written.
    #[error("unique constraint violated on {}", .0.as_str())]
    Conflict(UniqueField),
    /// The database could not be reached, or timed out.
    #[error("database unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The database refused a value it cannot store (for example a NUL character in text for
    /// PostgreSQL); nothing was written.
    #[error("value cannot be stored: {0}")]
    Invalid(String),
    /// A row the write refers to vanished concurrently (a user deleted while a session was
    /// being opened); nothing was written.
    #[error("referenced row no longer exists")]
    Gone,
    /// A stored value could not be read back (a bug or a hand-edited database).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// Any other database failure.
    #[error("database error")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// The database as a whole: whether it answers, and units of work that span parts.
#[async_trait::async_trait]
pub trait Database: Send + Sync + Debug {
    /// Checks that the database answers.
    async fn ping(&self) -> StoreResult<()>;
    /// Starts a unit of work: writes made through it land together when it is committed, or
    /// not at all (dropping it uncommitted rolls them back).
    ///
    /// While a unit of work is open, make every write of the operation through it: on SQLite
    /// it holds the one write connection, so a write through the store would wait for it.
    async fn begin(&self) -> StoreResult<Box<dyn UnitOfWork>>;
    /// The server's secret named `name`: the stored one, or, the first time it is asked for,
    /// `candidate`, stored. Every node asking at once gets the same one.
    async fn server_secret(&self, name: &str, candidate: &[u8], now: Timestamp) -> StoreResult<Vec<u8>>;
}

/// Several writes, across parts of the store, that commit together or not at all. Each
/// method behaves exactly as the store method of the same name, inside the unit's transaction.
#[async_trait::async_trait]
pub trait UnitOfWork: Send {
    /// See [`UserStore::insert_user`].
    async fn insert_user(&mut self, u: &NewUser) -> StoreResult<User>;
    /// See [`UserStore::update_user`].
    async fn update_user(
        &mut self,
        tenant: TenantId,
        id: UserId,
        u: &UserUpdate,
        now: Timestamp,
    ) -> StoreResult<Option<User>>;
    /// See [`UserStore::set_password_hash`].
    async fn set_password_hash(&mut self, tenant: TenantId, id: UserId, change: &PasswordChange) -> StoreResult<bool>;
    /// See [`OneTimeTokenStore::insert_one_time_token`].
    async fn insert_one_time_token(&mut self, t: &NewOneTimeToken) -> StoreResult<()>;
    /// See [`OneTimeTokenStore::delete_one_time_tokens`].
    async fn delete_one_time_tokens(
        &mut self,
        tenant: TenantId,
        user: UserId,
        purpose: TokenPurpose,
    ) -> StoreResult<u64>;
    /// See [`OutboxStore::enqueue_mail`].
    async fn enqueue_mail(&mut self, m: &NewOutboxMessage) -> StoreResult<OutboxId>;
    /// See [`OneTimeTokenStore::consume_one_time_token`].
    async fn consume_one_time_token(
        &mut self,
        hash: &TokenHash,
        purpose: TokenPurpose,
        now: Timestamp,
    ) -> StoreResult<Option<ConsumedToken>>;
    /// Makes every write of the unit durable at once.
    async fn commit(self: Box<Self>) -> StoreResult<()>;
}

/// Persistent state of Portcullis: every part. Implemented automatically for any type that
/// implements all of them.
pub trait Store:
    Database
    + TenantStore
    + RoleStore
    + AttributeStore
    + UserStore
    + SessionStore
    + RevocationStore
    + ApiKeyStore
    + OneTimeTokenStore
    + AuditStore
    + ImportStore
    + OutboxStore
    + SecondFactorStore
    + AvatarStore
    + 'static
{
}

impl<T> Store for T where
    T: Database
        + TenantStore
        + RoleStore
        + AttributeStore
        + UserStore
        + SessionStore
        + RevocationStore
        + ApiKeyStore
        + OneTimeTokenStore
        + AuditStore
        + ImportStore
        + OutboxStore
        + SecondFactorStore
        + AvatarStore
        + 'static
{
}

/// The parts of the store as the core holds them. Usually every part is the same backend
/// ([`Stores::new`]); a test may swap one part for a double and keep the real others.
#[derive(Clone, Debug)]
pub struct Stores {
    /// The database as a whole.
    pub database: Arc<dyn Database>,
    /// Tenants.
    pub tenants: Arc<dyn TenantStore>,
    /// Roles.
    pub roles: Arc<dyn RoleStore>,
    /// Custom attribute definitions.
    pub attributes: Arc<dyn AttributeStore>,
    /// Users.
    pub users: Arc<dyn UserStore>,
    /// Sessions.
    pub sessions: Arc<dyn SessionStore>,
    /// The revocation feed.
    pub revocations: Arc<dyn RevocationStore>,
    /// API keys.
    pub api_keys: Arc<dyn ApiKeyStore>,
    /// One-time tokens.
    pub tokens: Arc<dyn OneTimeTokenStore>,
    /// The audit log.
    pub audit: Arc<dyn AuditStore>,
    /// Bulk import and export.
    pub import: Arc<dyn ImportStore>,
    /// The mail outbox.
    pub outbox: Arc<dyn OutboxStore>,
    /// Second factors.
    pub second_factors: Arc<dyn SecondFactorStore>,
    /// Profile pictures.
    pub avatars: Arc<dyn AvatarStore>,
}

impl Stores {
    /// Every part from one store.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            database: store.clone(),
            tenants: store.clone(),
            roles: store.clone(),
            attributes: store.clone(),
            users: store.clone(),
            sessions: store.clone(),
            revocations: store.clone(),
            api_keys: store.clone(),
            tokens: store.clone(),
            audit: store.clone(),
            import: store.clone(),
            outbox: store.clone(),
            second_factors: store.clone(),
            avatars: store,
        }
    }
}
