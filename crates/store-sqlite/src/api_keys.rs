//! API keys.

use portcullis_core::clock::Timestamp;
use portcullis_core::ids::{ApiKeyId, TenantId};
use portcullis_core::model::{ApiKey, Scope};
use portcullis_core::secret::TokenHash;
use portcullis_core::store::{ApiKeyStore, NewApiKey, StoreError, StoreResult};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::rows::ts;
use crate::{SqliteStore, map_err};

fn scopes_from_text(s: &str) -> StoreResult<Vec<Scope>> {
    let names: Vec<String> = serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("scopes: {e}")))?;
    names.iter().map(|n| Scope::parse(n).ok_or_else(|| StoreError::Corrupt(format!("scope {n:?}")))).collect()
}

fn api_key_from_row(row: &SqliteRow) -> StoreResult<ApiKey> {
    let scopes: String = row.try_get("scopes").map_err(map_err)?;
    Ok(ApiKey {
        id: ApiKeyId(row.try_get("id").map_err(map_err)?),
        tenant_id: row.try_get::<Option<i64>, _>("tenant_id").map_err(map_err)?.map(TenantId),
        name: row.try_get("name").map_err(map_err)?,
        prefix: row.try_get("prefix").map_err(map_err)?,
        scopes: scopes_from_text(&scopes)?,
        expires_at: ts(row.try_get("expires_at").map_err(map_err)?),
        last_used_at: ts(row.try_get("last_used_at").map_err(map_err)?),
        revoked_at: ts(row.try_get("revoked_at").map_err(map_err)?),
        created_at: Timestamp::from_unix_micros(row.try_get("created_at").map_err(map_err)?),
    })
}

#[async_trait::async_trait]
impl ApiKeyStore for SqliteStore {
    async fn insert_api_key(&self, k: &NewApiKey) -> StoreResult<ApiKey> {
        let scopes: Vec<&str> = k.scopes.iter().map(|s| s.as_str()).collect();
        let scopes = serde_json::to_string(&scopes).map_err(|e| StoreError::Other(Box::new(e)))?;
        let row = sqlx::query(
            "INSERT INTO api_keys (tenant_id, name, prefix, key_hash, scopes, expires_at, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) RETURNING *",
        )
        .bind(k.tenant_id.map(|t| t.0))
        .bind(&k.name)
        .bind(&k.prefix)
        .bind(k.key_hash.as_bytes().to_vec())
        .bind(scopes)
        .bind(k.expires_at.map(Timestamp::unix_micros))
        .bind(k.now.unix_micros())
        .fetch_one(&self.writer)
        .await
        .map_err(map_err)?;
        api_key_from_row(&row)
    }

    async fn api_key_by_hash(&self, hash: &TokenHash) -> StoreResult<Option<ApiKey>> {
        let row = sqlx::query("SELECT * FROM api_keys WHERE key_hash = ?1")
            .bind(hash.as_bytes().to_vec())
            .fetch_optional(&self.reader)
            .await
            .map_err(map_err)?;
        row.as_ref().map(api_key_from_row).transpose()
    }

    async fn api_keys(&self, tenant: Option<TenantId>) -> StoreResult<Vec<ApiKey>> {
        let rows = sqlx::query("SELECT * FROM api_keys WHERE tenant_id IS ?1 ORDER BY id DESC")
            .bind(tenant.map(|t| t.0))
            .fetch_all(&self.reader)
            .await
            .map_err(map_err)?;
        rows.iter().map(api_key_from_row).collect()
    }

    async fn revoke_api_key(&self, tenant: Option<TenantId>, id: ApiKeyId, now: Timestamp) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = ?1, updated_at = ?1 WHERE id = ?2 AND tenant_id IS ?3 AND revoked_at IS NULL",
        )
        .bind(now.unix_micros())
        .bind(id.0)
        .bind(tenant.map(|t| t.0))
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn touch_api_key(&self, id: ApiKeyId, now: Timestamp) -> StoreResult<()> {
        sqlx::query(
            "UPDATE api_keys SET last_used_at = max(coalesce(last_used_at, ?1), ?1) WHERE id = ?2 \
             AND (last_used_at IS NULL OR last_used_at < ?1)",
        )
        .bind(now.unix_micros())
        .bind(id.0)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(())
    }
}
