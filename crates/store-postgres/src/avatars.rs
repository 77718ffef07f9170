//! Profile pictures: every size of one upload replaced in one transaction with the user's
//! `avatar_version`.

use portcullis_core::clock::Timestamp;
use portcullis_core::ids::{TenantId, UserId};
use portcullis_core::store::{AvatarStore, StoreResult, StoredImage};
use sqlx::Row;

use crate::{PostgresStore, map_err, odt};

#[async_trait::async_trait]
impl AvatarStore for PostgresStore {
    async fn set_avatar(
        &self,
        tenant: TenantId,
        user: UserId,
        version: &str,
        images: &[StoredImage],
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let done =
            sqlx::query("UPDATE users SET avatar_version = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(user.0)
                .bind(version)
                .bind(odt(now))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM avatar_images WHERE user_id = $1")
            .bind(user.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        for i in images {
            sqlx::query(
                "INSERT INTO avatar_images (user_id, size, version, content_type, bytes, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(user.0)
            .bind(&i.size)
            .bind(version)
            .bind(&i.content_type)
            .bind(&i.bytes)
            .bind(odt(now))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn remove_avatar(&self, tenant: TenantId, user: UserId, now: Timestamp) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let done = sqlx::query(
            "UPDATE users SET avatar_version = NULL, updated_at = $3 \
             WHERE tenant_id = $1 AND id = $2 AND avatar_version IS NOT NULL",
        )
        .bind(tenant.0)
        .bind(user.0)
        .bind(odt(now))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM avatar_images WHERE user_id = $1")
            .bind(user.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn avatar_image(
        &self,
        tenant: TenantId,
        user: UserId,
        size: &str,
        version: &str,
    ) -> StoreResult<Option<StoredImage>> {
        let row = sqlx::query(
            "SELECT a.size, a.content_type, a.bytes FROM avatar_images a JOIN users u ON u.id = a.user_id \
             WHERE u.tenant_id = $1 AND a.user_id = $2 AND a.size = $3 AND a.version = $4",
        )
        .bind(tenant.0)
        .bind(user.0)
        .bind(size)
        .bind(version)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.map(|r| {
            Ok(StoredImage {
                size: r.try_get("size").map_err(map_err)?,
                content_type: r.try_get("content_type").map_err(map_err)?,
                bytes: r.try_get("bytes").map_err(map_err)?,
            })
        })
        .transpose()
    }
}
