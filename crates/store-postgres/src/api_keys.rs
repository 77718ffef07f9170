//! API keys: only the SHA-256 of a key is stored; its scopes are a JSON array of scope names.

use std::sync::LazyLock;

use portcullis_core::clock::Timestamp;
use portcullis_core::ids::{ApiKeyId, TenantId};
use portcullis_core::model::{ApiKey, Scope};
use portcullis_core::secret::TokenHash;
use portcullis_core::store::{ApiKeyStore, NewApiKey, StoreError, StoreResult};
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::types::Json;

use crate::rows::{ts, ts_req};
use crate::{PostgresStore, map_err, odt};

/// Columns of an API key as selected (or returned).
const API_KEY_COLUMNS: &str = "id, tenant_id, name, prefix, scopes, expires_at, last_used_at, revoked_at, created_at";

fn api_key_from_row(row: &PgRow) -> StoreResult<ApiKey> {
    let Json(names): Json<Vec<String>> = row.try_get("scopes").map_err(map_err)?;
    let scopes = names
        .iter()
        .map(|n| Scope::parse(n).ok_or_else(|| StoreError::Corrupt(format!("API key scope {n:?}"))))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(ApiKey {
        id: ApiKeyId(row.try_get("id").map_err(map_err)?),
        tenant_id: row.try_get::<Option<i64>, _>("tenant_id").map_err(map_err)?.map(TenantId),
        name: row.try_get("name").map_err(map_err)?,
        prefix: row.try_get("prefix").map_err(map_err)?,
        scopes,
        expires_at: ts(row, "expires_at")?,
        last_used_at: ts(row, "last_used_at")?,
        revoked_at: ts(row, "revoked_at")?,
        created_at: ts_req(row, "created_at")?,
    })
}

#[async_trait::async_trait]
impl ApiKeyStore for PostgresStore {
    async fn insert_api_key(&self, k: &NewApiKey) -> StoreResult<ApiKey> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "INSERT INTO api_keys (tenant_id, name, prefix, key_hash, scopes, expires_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING {API_KEY_COLUMNS}"
            )
        });
        let scopes: Vec<&str> = k.scopes.iter().map(|s| s.as_str()).collect();
        let row = sqlx::query(SQL.as_str())
            .bind(k.tenant_id.map(|t| t.0))
            .bind(&k.name)
            .bind(&k.prefix)
            .bind(k.key_hash.as_bytes().to_vec())
            .bind(Json(scopes))
            .bind(k.expires_at.map(odt))
            .bind(odt(k.now))
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        api_key_from_row(&row)
    }

    async fn api_key_by_hash(&self, hash: &TokenHash) -> StoreResult<Option<ApiKey>> {
        static SQL: LazyLock<String> =
            LazyLock::new(|| format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE key_hash = $1"));
        let row = sqlx::query(SQL.as_str())
            .bind(hash.as_bytes().to_vec())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(api_key_from_row).transpose()
    }

    async fn api_keys(&self, tenant: Option<TenantId>) -> StoreResult<Vec<ApiKey>> {
        // Two statements rather than `IS NOT DISTINCT FROM`, which no index serves.
        static OF_TENANT: LazyLock<String> =
            LazyLock::new(|| format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY id DESC"));
        static OPERATOR: LazyLock<String> = LazyLock::new(|| {
            format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE tenant_id IS NULL ORDER BY id DESC")
        });
        let rows = match tenant {
            Some(t) => sqlx::query(OF_TENANT.as_str()).bind(t.0).fetch_all(&self.pool).await,
            None => sqlx::query(OPERATOR.as_str()).fetch_all(&self.pool).await,
        }
        .map_err(map_err)?;
        rows.iter().map(api_key_from_row).collect()
    }

    async fn revoke_api_key(&self, tenant: Option<TenantId>, id: ApiKeyId, now: Timestamp) -> StoreResult<bool> {
        // The id is the primary key, so the null-safe comparison costs nothing here; it keeps a
        // tenant from revoking an operator key and the other way round.
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = $3, updated_at = $3 \
             WHERE id = $2 AND tenant_id IS NOT DISTINCT FROM $1 AND revoked_at IS NULL",
        )
        .bind(tenant.map(|t| t.0))
        .bind(id.0)
        .bind(odt(now))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn touch_api_key(&self, id: ApiKeyId, now: Timestamp) -> StoreResult<()> {
        // Concurrent uses may land out of order; the recorded time never moves back.
        sqlx::query(
            "UPDATE api_keys SET last_used_at = GREATEST(COALESCE(last_used_at, $2), $2), \
             updated_at = GREATEST(updated_at, $2) WHERE id = $1",
        )
        .bind(id.0)
        .bind(odt(now))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }
}
