//! The second-factors part of the store: TOTP authenticators and recovery codes. Every use of a
//! code is one atomic statement, so a code is good once even when raced.

use std::fmt::Debug;

use super::StoreResult;
use crate::clock::Timestamp;
use crate::ids::{TenantId, UserId};
use crate::secret::TokenHash;

/// A user's TOTP authenticator as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpCredential {
    /// The secret, sealed with the server's key.
    pub sealed_secret: Vec<u8>,
    /// When the user proved the authenticator with a first code; `None` while enrolling.
    pub confirmed_at: Option<Timestamp>,
    /// The last time step whose code was accepted.
    pub last_used_step: i64,
}

impl Debug for TotpCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpCredential")
            .field("confirmed_at", &self.confirmed_at)
            .field("last_used_step", &self.last_used_step)
            .finish_non_exhaustive()
    }
}

/// Second factors.
#[async_trait::async_trait]
pub trait SecondFactorStore: Send + Sync + Debug {
    /// The user's TOTP authenticator, confirmed or not.
    async fn totp(&self, tenant: TenantId, user: UserId) -> StoreResult<Option<TotpCredential>>;
    /// Starts (or restarts) an enrolment: stores an unconfirmed secret. `false`, and nothing
    /// written, when the user has a confirmed authenticator or is gone.
    async fn begin_totp(
        &self,
        tenant: TenantId,
        user: UserId,
        sealed_secret: &[u8],
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Confirms an enrolment with the step of its first code, and replaces the recovery codes
    /// with these, in one transaction; `false` when there is no unconfirmed authenticator.
    async fn confirm_totp(
        &self,
        tenant: TenantId,
        user: UserId,
        step: i64,
        recovery_codes: &[TokenHash],
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Accepts a code of time step `step`, once: `true` only if the authenticator is confirmed
    /// and no code of this step or a later one was accepted before.
    async fn use_totp_step(&self, tenant: TenantId, user: UserId, step: i64, now: Timestamp) -> StoreResult<bool>;
    /// Removes the authenticator and every recovery code; `false` if there was none.
    async fn delete_totp(&self, tenant: TenantId, user: UserId) -> StoreResult<bool>;
    /// Replaces the recovery codes; `false` when the user has no confirmed authenticator.
    async fn replace_recovery_codes(
        &self,
        tenant: TenantId,
        user: UserId,
        codes: &[TokenHash],
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Uses up a recovery code, once: `true` only for an unused code of this user.
    async fn use_recovery_code(
        &self,
        tenant: TenantId,
        user: UserId,
        code: &TokenHash,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// How many unused recovery codes the user has.
    async fn recovery_codes_left(&self, tenant: TenantId, user: UserId) -> StoreResult<u32>;
}
