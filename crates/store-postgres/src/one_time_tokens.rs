//! Single-use tokens (log-in links and the like): stored as their SHA-256, used up by one
//! atomic update.

use portcullis_core::clock::Timestamp;
use portcullis_core::ids::{TenantId, UserId};
use portcullis_core::secret::TokenHash;
use portcullis_core::store::{ConsumedToken, NewOneTimeToken, StoreError, StoreResult};
use sqlx::Row;
use sqlx::types::Json;

use crate::{PostgresStore, map_err, odt};

impl PostgresStore {
    pub(crate) async fn insert_one_time_token_row(&self, t: &NewOneTimeToken) -> StoreResult<()> {
        // Inserted through the user's row, so a token is never stored for a user of another
        // tenant, or one deleted meanwhile.
        let done = sqlx::query(
            "INSERT INTO one_time_tokens (tenant_id, user_id, purpose, token_hash, data, expires_at, created_at, updated_at) \
             SELECT u.tenant_id, u.id, $3, $4, $5, $6, $7, $7 FROM users u WHERE u.tenant_id = $1 AND u.id = $2",
        )
        .bind(t.tenant_id.0)
        .bind(t.user_id.0)
        .bind(&t.purpose)
        .bind(t.token_hash.as_bytes().to_vec())
        .bind(Json(&t.data))
        .bind(odt(t.expires_at))
        .bind(odt(t.now))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Gone);
        }
        Ok(())
    }

    pub(crate) async fn consume_one_time_token_row(
        &self,
        hash: &TokenHash,
        purpose: &str,
        now: Timestamp,
    ) -> StoreResult<Option<ConsumedToken>> {
        // One statement: of two racing consumers, the second waits for the first's row lock,
        // re-checks `consumed_at IS NULL` on the updated row, and matches nothing.
        let row = sqlx::query(
            "UPDATE one_time_tokens SET consumed_at = $3, updated_at = $3 \
             WHERE token_hash = $1 AND purpose = $2 AND consumed_at IS NULL AND expires_at > $3 \
             RETURNING tenant_id, user_id, data",
        )
        .bind(hash.as_bytes().to_vec())
        .bind(purpose)
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
}
