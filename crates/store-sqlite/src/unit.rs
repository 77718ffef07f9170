//! A unit of work: one `BEGIN IMMEDIATE` transaction on the write connection, through which
//! writes of several parts land together.

use portcullis_core::clock::Timestamp;
use portcullis_core::ids::{OutboxId, TenantId, UserId};
use portcullis_core::model::{TokenPurpose, User};
use portcullis_core::secret::TokenHash;
use portcullis_core::store::{
    ConsumedToken, NewOneTimeToken, NewOutboxMessage, NewUser, PasswordChange, StoreError, StoreResult, UnitOfWork,
    UserUpdate,
};
use sqlx::{Sqlite, Transaction};

use crate::map_err;
use crate::one_time_tokens::{consume_token, delete_tokens, insert_token};
use crate::outbox::enqueue;
use crate::users::{insert_and_fetch_user, set_password_tx, update_user_tx};

/// Writes that commit together; dropped uncommitted, they roll back.
#[derive(Debug)]
pub(crate) struct SqliteUnit {
    tx: Transaction<'static, Sqlite>,
    // A failed write leaves the transaction half-done (SQLite) or aborted (PostgreSQL): either
    // way the unit may not commit.
    failed: bool,
}

impl SqliteUnit {
    pub(crate) fn new(tx: Transaction<'static, Sqlite>) -> Self {
        Self { tx, failed: false }
    }
}

#[async_trait::async_trait]
impl UnitOfWork for SqliteUnit {
    async fn insert_user(&mut self, u: &NewUser) -> StoreResult<User> {
        let r = insert_and_fetch_user(&mut self.tx, u).await;
        self.failed |= r.is_err();
        r
    }

    async fn update_user(
        &mut self,
        tenant: TenantId,
        id: UserId,
        u: &UserUpdate,
        now: Timestamp,
    ) -> StoreResult<Option<User>> {
        let r = update_user_tx(&mut self.tx, tenant, id, u, now).await;
        self.failed |= r.is_err();
        r
    }

    async fn set_password_hash(&mut self, tenant: TenantId, id: UserId, change: &PasswordChange) -> StoreResult<bool> {
        let r = set_password_tx(&mut self.tx, tenant, id, change).await;
        self.failed |= r.is_err();
        r
    }

    async fn insert_one_time_token(&mut self, t: &NewOneTimeToken) -> StoreResult<()> {
        let r = insert_token(&mut self.tx, t).await;
        self.failed |= r.is_err();
        r
    }

    async fn consume_one_time_token(
        &mut self,
        hash: &TokenHash,
        purpose: TokenPurpose,
        now: Timestamp,
    ) -> StoreResult<Option<ConsumedToken>> {
        let r = consume_token(&mut self.tx, hash, purpose, now).await;
        self.failed |= r.is_err();
        r
    }

    async fn delete_one_time_tokens(
        &mut self,
        tenant: TenantId,
        user: UserId,
        purpose: TokenPurpose,
    ) -> StoreResult<u64> {
        let r = delete_tokens(&mut self.tx, tenant, user, purpose).await;
        self.failed |= r.is_err();
        r
    }

    async fn enqueue_mail(&mut self, m: &NewOutboxMessage) -> StoreResult<OutboxId> {
        let r = enqueue(&mut self.tx, m).await;
        self.failed |= r.is_err();
        r
    }

    async fn commit(self: Box<Self>) -> StoreResult<()> {
        if self.failed {
            // Dropping the transaction rolls it back.
            return Err(StoreError::Other("a write of this unit of work failed; nothing was committed".into()));
        }
        self.tx.commit().await.map_err(map_err)
    }
}
