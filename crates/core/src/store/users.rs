//! The users part of the store: accounts with their profile, attributes, roles and password.

use std::fmt::Debug;

use serde_json::Value;

use super::StoreResult;
use crate::clock::Timestamp;
use crate::ids::{AttributeId, RoleId, SessionId, TenantId, UserId};
use crate::model::{User, UserStatus};
use crate::parse::{Email, LoginKey, Phone, Username};
use crate::password::HashedPassword;
use crate::profile::{Profile, ProfileChange};

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
    /// Password hash, if the user has a password.
    pub password: Option<HashedPassword>,
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
    /// A new address waiting for verification (`Some(None)` clears it).
    pub pending_email: Option<Option<String>>,
    /// New status.
    pub status: Option<UserStatus>,
    /// Profile changes.
    pub profile: Vec<ProfileChange>,
    /// Attribute values to set (`Some`) or remove (`None`).
    pub attributes: Vec<(AttributeId, Option<Value>)>,
    /// Replace the user's roles with these.
    pub roles: Option<Vec<RoleId>>,
    /// A new password hash: recorded as a change of password (the password version moves)
    /// and every session of the user ends, in the same transaction.
    pub password: Option<HashedPassword>,
}

impl Debug for UserUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserUpdate")
            .field("username", &self.username)
            .field("email", &self.email)
            .field("phone", &self.phone)
            .field("status", &self.status)
            .field("roles", &self.roles)
            .field("password", &self.password)
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
            && self.pending_email.is_none()
            && self.status.is_none()
            && self.profile.is_empty()
            && self.attributes.is_empty()
            && self.roles.is_none()
            && self.password.is_none()
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
    /// The new hash.
    pub hash: HashedPassword,
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

/// Accounts.
///
/// A write that spans several rows (a user with attributes and roles; a password change that
/// ends sessions) is one transaction, and every write that ends sessions publishes them on the
/// revocation feed in that transaction.
#[async_trait::async_trait]
pub trait UserStore: Send + Sync + Debug {
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
    /// Users matching a query, by id ascending.
    async fn list_users(&self, q: &UserQuery) -> StoreResult<Vec<User>>;
}
