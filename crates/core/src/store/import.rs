//! The import part of the store: users brought over from another system in batches, read
//! back with their hashes for export, and counted by password scheme.

use std::fmt::Debug;

use super::{NewUser, StoreResult, UserWithSecret};
use crate::ids::{TenantId, UserId};

/// Outcome of importing one user of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Created with this id.
    Created(UserId),
    /// Refused: the identifier is taken (by an existing user or an earlier row).
    Taken(crate::error::UniqueField),
}

/// Moving users in and out in bulk.
#[async_trait::async_trait]
pub trait ImportStore: Send + Sync + Debug {
    /// Inserts a batch of users in one transaction. A row whose identifier is taken is
    /// skipped and reported, not an error; any other failure rolls the whole batch back.
    async fn import_users(&self, users: &[NewUser]) -> StoreResult<Vec<ImportOutcome>>;
    /// Users of a tenant with their password hashes, by id ascending, after `after`; for export.
    async fn users_with_secrets(
        &self,
        tenant: TenantId,
        after: Option<UserId>,
        limit: u32,
    ) -> StoreResult<Vec<UserWithSecret>>;
    /// How many users of a tenant have each password scheme (as the core recorded it with
    /// each hash), keyed by [`crate::legacy_hash::HashScheme`] name, or `none` for users without
    /// a password.
    async fn password_schemes(&self, tenant: TenantId) -> StoreResult<Vec<(String, u64)>>;
    /// Up to `limit` users whose password has no recorded scheme (written by an older
    /// release, during a rolling upgrade), with the hash, for the core to classify.
    async fn unclassified_passwords(&self, limit: u32) -> StoreResult<Vec<(UserId, String)>>;
    /// Records the scheme of a user's password, provided the hash is still `hash`.
    async fn set_password_scheme(&self, user: UserId, hash: &str, scheme: &str) -> StoreResult<()>;
}
