//! The one-time tokens part of the store: single-use secrets (log-in tokens; later e-mail
//! verification and password reset), stored only as hashes.

use std::fmt::Debug;

use serde_json::Value;

use super::StoreResult;
use crate::clock::Timestamp;
use crate::ids::{TenantId, UserId};
use crate::model::TokenPurpose;
use crate::secret::TokenHash;

/// A single-use token to store.
#[derive(Clone)]
pub struct NewOneTimeToken {
    /// Tenant of the user.
    pub tenant_id: TenantId,
    /// The user it acts for.
    pub user_id: UserId,
    /// What it is for.
    pub purpose: TokenPurpose,
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

/// Single-use tokens.
#[async_trait::async_trait]
pub trait OneTimeTokenStore: Send + Sync + Debug {
    /// Stores a single-use token.
    async fn insert_one_time_token(&self, t: &NewOneTimeToken) -> StoreResult<()>;
    /// Uses up the unexpired, unused token with this hash and purpose in one atomic statement:
    /// of any number of concurrent calls with the same token, exactly one gets it.
    async fn consume_one_time_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
        now: Timestamp,
    ) -> StoreResult<Option<ConsumedToken>>;
    /// The unexpired, unused token with this hash and purpose, without using it up (to find
    /// whose it is before the work that consuming it pays for).
    async fn peek_one_time_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
        now: Timestamp,
    ) -> StoreResult<Option<ConsumedToken>>;
    /// Removes every token of a user for a purpose (used or not); returns how many.
    async fn delete_one_time_tokens(&self, tenant: TenantId, user: UserId, purpose: TokenPurpose) -> StoreResult<u64>;
    /// Stores a token unless the user already has `limit` tokens of its purpose made at or
    /// after `since`; `false` when the limit held. Atomic: of concurrent calls for one user,
    /// however many nodes make them, no more than `limit` succeed. [`StoreError::Gone`] when
    /// the user does not exist in the tenant.
    ///
    /// [`StoreError::Gone`]: super::StoreError::Gone
    async fn insert_one_time_token_within(
        &self,
        t: &NewOneTimeToken,
        limit: u32,
        since: Timestamp,
    ) -> StoreResult<bool>;
    /// How many tokens of a user for a purpose were made at or after `since` (for resend limits).
    async fn count_one_time_tokens(
        &self,
        tenant: TenantId,
        user: UserId,
        purpose: TokenPurpose,
        since: Timestamp,
    ) -> StoreResult<u32>;
}
