//! A unit of work: one transaction on a pooled connection, through which
//! writes of several parts land together.

use portcullis_core::clock::Timestamp;
use portcullis_core::ids::{TenantId, UserId};
use portcullis_core::model::{TokenPurpose, User};
use portcullis_core::secret::TokenHash;
use portcullis_core::store::{
    ConsumedToken, NewOneTimeToken, NewUser, PasswordChange, StoreResult, UnitOfWork, UserUpdate,
};
use sqlx::{Postgres, Transaction};

use crate::map_err;
use crate::one_time_tokens::{consume_token, insert_token};
use crate::users::{insert_user_tx, set_password_tx, update_user_tx};

/// Writes that commit together; dropped uncommitted, they roll back.
#[derive(Debug)]
pub(crate) struct PostgresUnit {
    tx: Transaction<'static, Postgres>,
}

impl PostgresUnit {
    pub(crate) fn new(tx: Transaction<'static, Postgres>) -> Self {
        Self { tx }
    }
}

#[async_trait::async_trait]
impl UnitOfWork for PostgresUnit {
    async fn insert_user(&mut self, u: &NewUser) -> StoreResult<User> {
        insert_user_tx(&mut self.tx, u).await
    }

    async fn update_user(
        &mut self,
        tenant: TenantId,
        id: UserId,
        u: &UserUpdate,
        now: Timestamp,
    ) -> StoreResult<Option<User>> {
        update_user_tx(&mut self.tx, tenant, id, u, now).await
    }

    async fn set_password_hash(&mut self, tenant: TenantId, id: UserId, change: &PasswordChange) -> StoreResult<bool> {
        set_password_tx(&mut self.tx, tenant, id, change).await
    }

    async fn insert_one_time_token(&mut self, t: &NewOneTimeToken) -> StoreResult<()> {
        insert_token(&mut self.tx, t).await
    }

    async fn consume_one_time_token(
        &mut self,
        hash: &TokenHash,
        purpose: TokenPurpose,
        now: Timestamp,
    ) -> StoreResult<Option<ConsumedToken>> {
        consume_token(&mut self.tx, hash, purpose, now).await
    }

    async fn commit(self: Box<Self>) -> StoreResult<()> {
        self.tx.commit().await.map_err(map_err)
    }
}
