//! Single-use tokens (log-in links and the like): stored as their SHA-256, used up by one
//! atomic update.

use portcullis_core::clock::Timestamp;
use portcullis_core::ids::{TenantId, UserId};
use portcullis_core::model::TokenPurpose;
use portcullis_core::secret::TokenHash;
use portcullis_core::store::{ConsumedToken, NewOneTimeToken, OneTimeTokenStore, StoreError, StoreResult};
use sqlx::types::Json;
use sqlx::{PgConnection, Row};

use crate::{PostgresStore, map_err, odt};

/// Stores a token on `conn` (a unit of work's transaction, or a connection of its own).
pub(crate) async fn insert_token(conn: &mut PgConnection, t: &NewOneTimeToken) -> StoreResult<()> {
    // Inserted through the user's row, so a token is never stored for a user of another
    // tenant, or one deleted meanwhile.
    let done = sqlx::query(
        "INSERT INTO one_time_tokens (tenant_id, user_id, purpose, token_hash, data, expires_at, created_at, updated_at) \
         SELECT u.tenant_id, u.id, $3, $4, $5, $6, $7, $7 FROM users u WHERE u.tenant_id = $1 AND u.id = $2",
    )
    .bind(t.tenant_id.0)
    .bind(t.user_id.0)
    .bind(t.purpose.as_str())
    .bind(t.token_hash.as_bytes().to_vec())
    .bind(Json(&t.data))
    .bind(odt(t.expires_at))
    .bind(odt(t.now))
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Gone);
    }
    Ok(())
}

/// Consumes a token on `conn` in one statement: of two racing consumers, the second waits for
/// the first's row lock, re-checks `consumed_at IS NULL` on the updated row, and matches nothing.
pub(crate) async fn consume_token(
    conn: &mut PgConnection,
    hash: &TokenHash,
    purpose: TokenPurpose,
    now: Timestamp,
) -> StoreResult<Option<ConsumedToken>> {
    let row = sqlx::query(
        "UPDATE one_time_tokens SET consumed_at = $3, updated_at = $3 \
         WHERE token_hash = $1 AND purpose = $2 AND consumed_at IS NULL AND expires_at > $3 \
         RETURNING tenant_id, user_id, data",
    )
    .bind(hash.as_bytes().to_vec())
    .bind(purpose.as_str())
    .bind(odt(now))
    .fetch_optional(&mut *conn)
    .await
    .map_err(map_err)?;
    let Some(row) = row else { return Ok(None) };
    let Json(data): Json<serde_json::Value> = row.try_get("data").map_err(map_err)?;
    Ok(Some(ConsumedToken {
        tenant_id: TenantId(row.try_get("tenant_id").map_err(map_err)?),
        user_id: UserId(row.try_get("user_id").map_err(map_err)?),
        data,
    }))
}

/// Removes a user's tokens of a purpose on `conn`.
pub(crate) async fn delete_tokens(
    conn: &mut PgConnection,
    tenant: TenantId,
    user: UserId,
    purpose: TokenPurpose,
) -> StoreResult<u64> {
    let done = sqlx::query("DELETE FROM one_time_tokens WHERE tenant_id = $1 AND user_id = $2 AND purpose = $3")
        .bind(tenant.0)
        .bind(user.0)
        .bind(purpose.as_str())
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    Ok(done.rows_affected())
}

#[async_trait::async_trait]
impl OneTimeTokenStore for PostgresStore {
    async fn insert_one_time_token(&self, t: &NewOneTimeToken) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await.map_err(map_err)?;
        insert_token(&mut conn, t).await
    }

    async fn consume_one_time_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
        now: Timestamp,
    ) -> StoreResult<Option<ConsumedToken>> {
        let mut conn = self.pool.acquire().await.map_err(map_err)?;
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
             WHERE token_hash = $1 AND purpose = $2 AND consumed_at IS NULL AND expires_at > $3",
        )
        .bind(hash.as_bytes().to_vec())
        .bind(purpose.as_str())
        .bind(odt(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let Json(data): Json<serde_json::Value> = row.try_get("data").map_err(map_err)?;
        Ok(Some(ConsumedToken {
            tenant_id: TenantId(row.try_get("tenant_id").map_err(map_err)?),
            user_id: UserId(row.try_get("user_id").map_err(map_err)?),
            data,
        }))
    }

    async fn delete_one_time_tokens(&self, tenant: TenantId, user: UserId, purpose: TokenPurpose) -> StoreResult<u64> {
        let mut conn = self.pool.acquire().await.map_err(map_err)?;
        delete_tokens(&mut conn, tenant, user, purpose).await
    }

    async fn insert_one_time_token_within(
        &self,
        t: &NewOneTimeToken,
        limit: u32,
        since: Timestamp,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // The user's row, locked (without blocking sessions' foreign keys), serialises the
        // count and the insert of every node making a token for this user.
        let found: Option<i64> =
            sqlx::query_scalar("SELECT id FROM users WHERE tenant_id = $1 AND id = $2 FOR NO KEY UPDATE")
                .bind(t.tenant_id.0)
                .bind(t.user_id.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
        if found.is_none() {
            return Err(StoreError::Gone);
        }
        let made: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM one_time_tokens WHERE tenant_id = $1 AND user_id = $2 AND purpose = $3 AND created_at >= $4",
        )
        .bind(t.tenant_id.0)
        .bind(t.user_id.0)
        .bind(t.purpose.as_str())
        .bind(odt(since))
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        if made >= i64::from(limit) {
            return Ok(false);
        }
        insert_token(&mut tx, t).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn count_one_time_tokens(
        &self,
        tenant: TenantId,
        user: UserId,
        purpose: TokenPurpose,
        since: Timestamp,
    ) -> StoreResult<u32> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM one_time_tokens WHERE tenant_id = $1 AND user_id = $2 AND purpose = $3 AND created_at >= $4",
        )
        .bind(tenant.0)
        .bind(user.0)
        .bind(purpose.as_str())
        .bind(odt(since))
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(u32::try_from(n).unwrap_or(0))
    }
}
