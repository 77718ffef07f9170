//! The storage port. One trait, implemented once per backend (`portcullis-store-sqlite`,
//! `portcullis-store-postgres`) and checked by one conformance suite (`portcullis-store-tests`).
//!
//! Rules every implementation keeps:
//! - uniqueness (username, e-mail, phone per tenant; compared in normalised form) is enforced
//!   by unique indexes and reported as [`StoreError::Conflict`], never by read-then-insert;
//! - a write that spans several rows (a user with attributes and roles; a password change that
//!   ends sessions) is one transaction;
//! - every write that ends sessions also publishes a [`Revocation`] on the feed that
//!   [`Store::revocations`] returns, in the same transaction, so that every node's session
//!   cache hears of it.

use std::fmt::Debug;
use std::pin::Pin;
use std::time::Duration;

use futures::Stream;
use serde_json::Value;

use crate::clock::Timestamp;
use crate::error::UniqueField;
use crate::ids::{ApiKeyId, AttributeId, AuditEventId, RoleId, SessionId, TenantId, UserId};
use crate::model::{
    ApiKey, AttributeDefinition, AttributeKind, AuditEvent, Role, Scope, Session, Tenant, TenantPolicy, User,
    UserStatus,
};
use crate::parse::{Email, LoginKey, Phone, Username};
use crate::profile::{Profile, ProfileChange};
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

/// A user together with their password hash, for the operations that check a password.
#[derive(Clone)]
pub struct UserWithSecret {
    /// The user.
    pub user: User,
    /// PHC string (or a legacy format) of the password; `None` when no password is set.
    pub password_hash: Option<String>,
}

impl Debug for UserWithSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserWithSecret").field("user", &self.user).field("password_hash", &"<redacted>").finish()
    }
}

/// A tenant to create.
#[derive(Clone, Debug)]
pub struct NewTenant {
    /// Unique slug.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Domains that resolve to it (lower-case).
    pub domains: Vec<String>,
    /// Policy overrides.
    pub policy: TenantPolicy,
    /// Creation time.
    pub now: Timestamp,
}

/// A custom attribute definition to create.
#[derive(Clone, Debug)]
pub struct NewAttributeDefinition {
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Name, unique in the tenant.
    pub name: String,
    /// Value type.
    pub kind: AttributeKind,
    /// Whether required at creation.
    pub required: bool,
    /// Whether users may set it.
    pub user_editable: bool,
    /// Creation time.
    pub now: Timestamp,
}

/// A role to create.
#[derive(Clone, Debug)]
pub struct NewRole {
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Name, unique in the tenant (case-insensitively).
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// Creation time.
    pub now: Timestamp,
}

/// A user to create, already validated.
#[derive(Clone)]
pub struct NewUser {
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Username.
    pub username: Option<Username>,
    /// E-mail address.
    pub email: Option<Email>,
    /// When the e-mail address was verified (imports and admin creation may vouch for it).
    pub email_verified_at: Option<Timestamp>,
    /// Primary phone number.
    pub phone: Option<Phone>,
    /// Password hash (PHC string), if the user has a password.
    pub password_hash: Option<String>,
    /// Initial status.
    pub status: UserStatus,
    /// Profile.
    pub profile: Profile,
    /// Custom attribute values, already checked against their definitions.
    pub attributes: Vec<(AttributeId, Value)>,
    /// Roles to grant.
    pub roles: Vec<RoleId>,
    /// Creation time.
    pub now: Timestamp,
}

impl Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("tenant_id", &self.tenant_id)
            .field("username", &self.username)
            .field("email", &self.email)
            .field("phone", &self.phone)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// Changes to a user, already validated. `None` leaves a field alone; `Some(None)` clears it.
#[derive(Clone, Default)]
pub struct UserUpdate {
    /// New username.
    pub username: Option<Option<Username>>,
    /// New e-mail address.
    pub email: Option<Option<Email>>,
    /// New e-mail verification time.
    pub email_verified_at: Option<Option<Timestamp>>,
    /// New primary phone number.
    pub phone: Option<Option<Phone>>,
    /// New phone verification time.
    pub phone_verified_at: Option<Option<Timestamp>>,
    /// New status.
    pub status: Option<UserStatus>,
    /// Profile changes.
    pub profile: Vec<ProfileChange>,
    /// Attribute values to set (`Some`) or remove (`None`).
    pub attributes: Vec<(AttributeId, Option<Value>)>,
    /// Replace the user's roles with these.
    pub roles: Option<Vec<RoleId>>,
    /// A new password hash (PHC string): recorded as a change of password (the password
    /// version moves) and every session of the user ends, in the same transaction.
    pub password_hash: Option<String>,
}

impl Debug for UserUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserUpdate")
            .field("username", &self.username)
            .field("email", &self.email)
            .field("phone", &self.phone)
            .field("status", &self.status)
            .field("roles", &self.roles)
            .field("password_hash", &self.password_hash.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl UserUpdate {
    /// Whether the update changes nothing.
    pub fn is_empty(&self) -> bool {
        self.username.is_none()
            && self.email.is_none()
            && self.email_verified_at.is_none()
            && self.phone.is_none()
            && self.phone_verified_at.is_none()
            && self.status.is_none()
            && self.profile.is_empty()
            && self.attributes.is_empty()
            && self.roles.is_none()
            && self.password_hash.is_none()
    }
}

/// Which sessions a write ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndSessions {
    /// None.
    None,
    /// All of the user's sessions.
    All,
    /// All of the user's sessions but this one (the one making the change).
    AllExcept(SessionId),
}

/// A new password hash for a user.
#[derive(Clone)]
pub struct PasswordChange {
    /// The new hash (PHC string).
    pub hash: String,
    /// If set, the change applies only while the stored hash still equals this one (used to
    /// upgrade a hash transparently at log-in without overwriting a concurrent change).
    pub expected_current: Option<String>,
    /// Sessions to end in the same transaction.
    pub end_sessions: EndSessions,
    /// Whether this is a change of password (which records `password_changed_at` and moves
    /// the password version) rather than a re-encoding of the same password.
    pub is_new_password: bool,
    /// Time of the change.
    pub now: Timestamp,
}

impl Debug for PasswordChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordChange")
            .field("end_sessions", &self.end_sessions)
            .field("is_new_password", &self.is_new_password)
            .finish_non_exhaustive()
    }
}

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
    pub ip: Option<String>,
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

/// Changes to a tenant. `None` leaves a field alone.
#[derive(Clone, Debug, Default)]
pub struct TenantUpdate {
    /// New display name.
    pub name: Option<String>,
    /// Replace the domains with these (lower-case).
    pub domains: Option<Vec<String>>,
    /// Replace the policy overrides with these.
    pub policy: Option<TenantPolicy>,
    /// Disable or enable.
    pub disabled: Option<bool>,
}

/// An API key to create.
#[derive(Clone)]
pub struct NewApiKey {
    /// Owning tenant; `None` for an operator key.
    pub tenant_id: Option<TenantId>,
    /// What the key is for.
    pub name: String,
    /// The key's first characters (not a secret).
    pub prefix: String,
    /// SHA-256 of the key.
    pub key_hash: TokenHash,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// When it stops working.
    pub expires_at: Option<Timestamp>,
    /// Creation time.
    pub now: Timestamp,
}

impl Debug for NewApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiKey")
            .field("tenant_id", &self.tenant_id)
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// A security event to record.
#[derive(Clone, Debug, PartialEq)]
pub struct NewAuditEvent {
    /// Tenant concerned.
    pub tenant_id: Option<TenantId>,
    /// Account concerned.
    pub user_id: Option<UserId>,
    /// Who acted.
    pub actor: String,
    /// What happened.
    pub action: String,
    /// Client IP.
    pub ip: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// More about it; never a secret.
    pub details: Value,
    /// When.
    pub at: Timestamp,
}

/// Which audit events to read, newest first.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    /// Only this tenant's (`None`: every tenant; operators only).
    pub tenant_id: Option<TenantId>,
    /// Only events about this account.
    pub user_id: Option<UserId>,
    /// Only this action, or actions starting with it followed by `.` (e.g. `login`).
    pub action: Option<String>,
    /// Only events by this actor.
    pub actor: Option<String>,
    /// Only events at or after this time.
    pub since: Option<Timestamp>,
    /// Only events before this time.
    pub until: Option<Timestamp>,
    /// Only events older than this one (the previous page's last id).
    pub before: Option<AuditEventId>,
    /// At most this many.
    pub limit: u32,
}

/// Which users to list, by id ascending.
#[derive(Clone, Debug)]
pub struct UserQuery {
    /// The tenant.
    pub tenant_id: TenantId,
    /// Text that the username, e-mail, phone or a name must contain (case-insensitively).
    pub search: Option<String>,
    /// Only users with this status.
    pub status: Option<UserStatus>,
    /// Only holders of this role.
    pub role: Option<RoleId>,
    /// Only users created at or after this time.
    pub created_after: Option<Timestamp>,
    /// Only users created before this time.
    pub created_before: Option<Timestamp>,
    /// Only users with a larger id (the previous page's last id).
    pub after: Option<UserId>,
    /// At most this many.
    pub limit: u32,
}

/// A single-use token to store.
#[derive(Clone)]
pub struct NewOneTimeToken {
    /// Tenant of the user.
    pub tenant_id: TenantId,
    /// The user it acts for.
    pub user_id: UserId,
    /// What it is for, e.g. `login`.
    pub purpose: String,
    /// SHA-256 of the token.
    pub token_hash: TokenHash,
    /// Data bound to the token (never a secret).
    pub data: Value,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// Creation time.
    pub now: Timestamp,
}

impl Debug for NewOneTimeToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewOneTimeToken")
            .field("tenant_id", &self.tenant_id)
            .field("user_id", &self.user_id)
            .field("purpose", &self.purpose)
            .finish_non_exhaustive()
    }
}

/// A one-time token that was just used up.
#[derive(Clone, Debug, PartialEq)]
pub struct ConsumedToken {
    /// Tenant of the user.
    pub tenant_id: TenantId,
    /// The user it acted for.
    pub user_id: UserId,
    /// Data bound to it.
    pub data: Value,
}

/// Outcome of importing one user of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Created with this id.
    Created(UserId),
    /// Refused: the identifier is taken (by an existing user or an earlier row).
    Taken(crate::error::UniqueField),
}

/// Persistent state of Portcullis.
#[async_trait::async_trait]
pub trait Store: Send + Sync + Debug + 'static {
    /// Checks that the database answers.
    async fn ping(&self) -> StoreResult<()>;

    /// The tenant with this id.
    async fn tenant(&self, id: TenantId) -> StoreResult<Option<Tenant>>;
    /// The tenant with this slug.
    async fn tenant_by_slug(&self, slug: &str) -> StoreResult<Option<Tenant>>;
    /// Creates a tenant.
    async fn insert_tenant(&self, t: &NewTenant) -> StoreResult<Tenant>;

    /// Creates a custom attribute definition.
    async fn insert_attribute_definition(&self, d: &NewAttributeDefinition) -> StoreResult<AttributeDefinition>;
    /// The tenant's attribute definitions, by name.
    async fn attribute_definitions(&self, tenant: TenantId) -> StoreResult<Vec<AttributeDefinition>>;
    /// Creates a role.
    async fn insert_role(&self, r: &NewRole) -> StoreResult<Role>;
    /// The tenant's roles, by name.
    async fn roles(&self, tenant: TenantId) -> StoreResult<Vec<Role>>;

    /// Creates a user with their attributes and roles, in one transaction.
    async fn insert_user(&self, u: &NewUser) -> StoreResult<User>;
    /// The user with this id in this tenant.
    async fn user(&self, tenant: TenantId, id: UserId) -> StoreResult<Option<User>>;
    /// The user a login identifier matches in this tenant, with their password hash.
    async fn user_with_secret(&self, tenant: TenantId, key: &LoginKey) -> StoreResult<Option<UserWithSecret>>;
    /// The user with this id, with their password hash.
    async fn user_with_secret_by_id(&self, tenant: TenantId, id: UserId) -> StoreResult<Option<UserWithSecret>>;
    /// Applies changes in one transaction; `None` when there is no such user.
    async fn update_user(
        &self,
        tenant: TenantId,
        id: UserId,
        u: &UserUpdate,
        now: Timestamp,
    ) -> StoreResult<Option<User>>;
    /// Deletes a user with everything they own, ending their sessions; `false` if absent.
    async fn delete_user(&self, tenant: TenantId, id: UserId, now: Timestamp) -> StoreResult<bool>;
    /// Sets a user's password hash (and ends sessions as asked); `false` when there is no
    /// such user or `expected_current` no longer matches.
    async fn set_password_hash(&self, tenant: TenantId, id: UserId, change: &PasswordChange) -> StoreResult<bool>;

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
    /// Opens the revocation feed.
    async fn revocations(&self) -> StoreResult<RevocationFeed>;

    /// Every tenant, by id.
    async fn tenants(&self) -> StoreResult<Vec<Tenant>>;
    /// The tenant a domain belongs to.
    async fn tenant_by_domain(&self, domain: &str) -> StoreResult<Option<Tenant>>;
    /// Changes a tenant in one transaction; `None` when there is no such tenant.
    async fn update_tenant(&self, id: TenantId, u: &TenantUpdate, now: Timestamp) -> StoreResult<Option<Tenant>>;

    /// Deletes a role (and every grant of it); `false` if absent.
    async fn delete_role(&self, tenant: TenantId, id: RoleId) -> StoreResult<bool>;
    /// Changes whether an attribute is required and whether users may edit it; `None` when
    /// there is no such definition in the tenant.
    async fn update_attribute_definition(
        &self,
        tenant: TenantId,
        id: AttributeId,
        required: Option<bool>,
        user_editable: Option<bool>,
        now: Timestamp,
    ) -> StoreResult<Option<AttributeDefinition>>;
    /// Deletes an attribute definition (and every value of it); `false` if absent.
    async fn delete_attribute_definition(&self, tenant: TenantId, id: AttributeId) -> StoreResult<bool>;

    /// Users matching a query, by id ascending.
    async fn list_users(&self, q: &UserQuery) -> StoreResult<Vec<User>>;
    /// Users of a tenant with their password hashes, by id ascending, after `after`; for export.
    async fn users_with_secrets(
        &self,
        tenant: TenantId,
        after: Option<UserId>,
        limit: u32,
    ) -> StoreResult<Vec<UserWithSecret>>;
    /// Inserts a batch of users in one transaction. A row whose identifier is taken is
    /// skipped and reported, not an error; any other failure rolls the whole batch back.
    async fn import_users(&self, users: &[NewUser]) -> StoreResult<Vec<ImportOutcome>>;
    /// How many users of a tenant have each kind of password hash, keyed by
    /// [`crate::legacy_hash::HashScheme`] name, `none` or `unknown`.
    async fn password_schemes(&self, tenant: TenantId) -> StoreResult<Vec<(String, u64)>>;

    /// Creates an API key.
    async fn insert_api_key(&self, k: &NewApiKey) -> StoreResult<ApiKey>;
    /// The API key with this hash (revoked and expired ones included).
    async fn api_key_by_hash(&self, hash: &TokenHash) -> StoreResult<Option<ApiKey>>;
    /// API keys of a tenant (`Some`) or operator keys (`None`), newest first.
    async fn api_keys(&self, tenant: Option<TenantId>) -> StoreResult<Vec<ApiKey>>;
    /// Revokes a key of a tenant (`Some`) or an operator key (`None`); `false` if there is no
    /// such live key.
    async fn revoke_api_key(&self, tenant: Option<TenantId>, id: ApiKeyId, now: Timestamp) -> StoreResult<bool>;
    /// Records that a key was used.
    async fn touch_api_key(&self, id: ApiKeyId, now: Timestamp) -> StoreResult<()>;

    /// Stores a single-use token.
    async fn insert_one_time_token(&self, t: &NewOneTimeToken) -> StoreResult<()>;
    /// Uses up the unexpired, unused token with this hash and purpose, atomically: of two
    /// concurrent calls with the same token, exactly one gets it.
    async fn consume_one_time_token(
        &self,
        hash: &TokenHash,
        purpose: &str,
        now: Timestamp,
    ) -> StoreResult<Option<ConsumedToken>>;

    /// Appends security events.
    async fn insert_audit_events(&self, events: &[NewAuditEvent]) -> StoreResult<()>;
    /// Security events matching a query, newest first.
    async fn audit_events(&self, q: &AuditQuery) -> StoreResult<Vec<AuditEvent>>;
}
