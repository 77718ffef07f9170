//! One-time tokens, consumed by one atomic statement.

use portcullis_core::clock::Timestamp;
use portcullis_core::ids::{TenantId, UserId};
use portcullis_core::model::TokenPurpose;
use portcullis_core::secret::TokenHash;
use portcullis_core::store::{ConsumedToken, NewOneTimeToken, OneTimeTokenStore, StoreError, StoreResult};
use sqlx::{Row, SqliteConnection};

use crate::{SqliteStore, map_err};

/// Stores a token on `conn` (a unit of work's transaction, or a connection of its own).
pub(crate) async fn insert_token(conn: &mut SqliteConnection, t: &NewOneTimeToken) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO one_time_tokens (tenant_id, user_id, purpose, token_hash, data, expires_at, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
    )
    .bind(t.tenant_id.0)
    .bind(t.user_id.0)
    .bind(t.purpose.as_str())
    .bind(t.token_hash.as_bytes().to_vec())
    .bind(t.data.to_string())
    .bind(t.expires_at.unix_micros())
    .bind(t.now.unix_micros())
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(())
}

/// Consumes a token on `conn`, in one statement: of two racing consumers, the second finds
/// `consumed_at` already set.
pub(crate) async fn consume_token(
    conn: &mut SqliteConnection,
    hash: &TokenHash,
    purpose: TokenPurpose,
    now: Timestamp,
) -> StoreResult<Option<ConsumedToken>> {
    let row = sqlx::query(
        "UPDATE one_time_tokens SET consumed_at = ?1, updated_at = ?1 \
         WHERE token_hash = ?2 AND purpose = ?3 AND consumed_at IS NULL AND expires_at > ?1 \
         RETURNING tenant_id, user_id, data",
    )
    .bind(now.unix_micros())
    .bind(hash.as_bytes().to_vec())
    .bind(purpose.as_str())
    .fetch_optional(&mut *conn)
    .await
    .map_err(map_err)?;
    row.map(|r| {
        let data: String = r.try_get("data").map_err(map_err)?;
        Ok(ConsumedToken {
            tenant_id: TenantId(r.try_get("tenant_id").map_err(map_err)?),
            user_id: UserId(r.try_get("user_id").map_err(map_err)?),
            data: serde_json::from_str(&data).map_err(|e| StoreError::Corrupt(format!("token data: {e}")))?,
        })
    })
    .transpose()
}

/// Removes a user's tokens of a purpose on `conn`.
pub(crate) async fn delete_tokens(
    conn: &mut SqliteConnection,
    tenant: TenantId,
    user: UserId,
    purpose: TokenPurpose,
) -> StoreResult<u64> {
    let done = sqlx::query("DELETE FROM one_time_tokens WHERE tenant_id = ?1 AND user_id = ?2 AND purpose = ?3")
        .bind(tenant.0)
        .bind(user.0)
        .bind(purpose.as_str())
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    Ok(done.rows_affected())
}

#[async_trait::async_trait]
impl OneTimeTokenStore for SqliteStore {
    async fn insert_one_time_token(&self, t: &NewOneTimeToken) -> StoreResult<()> {
        let mut conn = self.writer.acquire().await.map_err(map_err)?;
        insert_token(&mut conn, t).await
    }

    async fn consume_one_time_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
        now: Timestamp,
    ) -> StoreResult<Option<ConsumedToken>> {
        let mut conn = self.writer.acquire().await.map_err(map_err)?;
        consume_token(&mut conn, hash, purpose, now).await
    }

    async fn peek_one_time_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
        now: Timestamp,
    ) -> StoreResult<Option<ConsumedToken>> {
        let row = sqlx::query(
            "SELECT tenant_id, user_id, data FROM one_time_tokens \
             WHERE token_hash = ?1 AND purpose = ?2 AND consumed_at IS NULL AND expires_at > ?3",
        )
        .bind(hash.as_bytes().to_vec())
        .bind(purpose.as_str())
        .bind(now.unix_micros())
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)?;
        row.map(|r| {
            let data: String = r.try_get("data").map_err(map_err)?;
            Ok(ConsumedToken {
                tenant_id: TenantId(r.try_get("tenant_id").map_err(map_err)?),
                user_id: UserId(r.try_get("user_id").map_err(map_err)?),
                data: serde_json::from_str(&data).map_err(|e| StoreError::Corrupt(format!("token data: {e}")))?,
            })
        })
        .transpose()
    }

    async fn delete_one_time_tokens(&self, tenant: TenantId, user: UserId, purpose: TokenPurpose) -> StoreResult<u64> {
        let mut conn = self.writer.acquire().await.map_err(map_err)?;
        delete_tokens(&mut conn, tenant, user, purpose).await
    }

    async fn insert_one_time_token_within(
        &self,
        t: &NewOneTimeToken,
        limit: u32,
        since: Timestamp,
    ) -> StoreResult<bool> {
        // One statement on the single writer: the count and the insert cannot interleave.
        let done = sqlx::query(
            "INSERT INTO one_time_tokens (tenant_id, user_id, purpose, token_hash, data, expires_at, created_at, updated_at) \
             SELECT u.tenant_id, u.id, ?3, ?4, ?5, ?6, ?7, ?7 FROM users u WHERE u.tenant_id = ?1 AND u.id = ?2 \
             AND (SELECT count(*) FROM one_time_tokens WHERE tenant_id = ?1 AND user_id = ?2 AND purpose = ?3 \
                  AND created_at >= ?8) < ?9",
        )
        .bind(t.tenant_id.0)
        .bind(t.user_id.0)
        .bind(t.purpose.as_str())
        .bind(t.token_hash.as_bytes().to_vec())
        .bind(t.data.to_string())
        .bind(t.expires_at.unix_micros())
        .bind(t.now.unix_micros())
        .bind(since.unix_micros())
        .bind(i64::from(limit))
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        if done.rows_affected() > 0 {
            return Ok(true);
        }
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE tenant_id = ?1 AND id = ?2")
            .bind(t.tenant_id.0)
            .bind(t.user_id.0)
            .fetch_optional(&self.writer)
            .await
            .map_err(map_err)?;
        if exists.is_none() {
            return Err(StoreError::Gone);
        }
        Ok(false)
    }

    async fn count_one_time_tokens(
        &self,
        tenant: TenantId,
        user: UserId,
        purpose: TokenPurpose,
        since: Timestamp,
    ) -> StoreResult<u32> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM one_time_tokens WHERE tenant_id = ?1 AND user_id = ?2 AND purpose = ?3 AND created_at >= ?4",
        )
        .bind(tenant.0)
        .bind(user.0)
        .bind(purpose.as_str())
        .bind(since.unix_micros())
        .fetch_one(&self.reader)
        .await
        .map_err(map_err)?;
        Ok(u32::try_from(n).unwrap_or(0))
    }
}
