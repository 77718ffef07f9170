//! Bulk import and export, and the report by password scheme.

use portcullis_core::UniqueField;
use portcullis_core::ids::{TenantId, UserId};
use portcullis_core::store::{ImportOutcome, ImportStore, NewUser, StoreError, StoreResult, UserWithSecret};
use sqlx::{Row, SqliteConnection};

use crate::rows::{USER_SELECT, user_from_row};
use crate::users::insert_user_tx;
use crate::{SqliteStore, map_err};

static USER_PAGE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!("{} WHERE u.tenant_id = ?1 AND u.id > ?2 ORDER BY u.id LIMIT ?3", *USER_SELECT)
});

async fn taken_field(conn: &mut SqliteConnection, u: &NewUser) -> StoreResult<UniqueField> {
    let checks = [
        (
            UniqueField::Username,
            "SELECT 1 FROM users WHERE tenant_id = ?1 AND username_norm = ?2",
            u.username.as_ref().map(|x| x.normalized().to_owned()),
        ),
        (
            UniqueField::Email,
            "SELECT 1 FROM users WHERE tenant_id = ?1 AND email_norm = ?2",
            u.email.as_ref().map(|x| x.normalized().to_owned()),
        ),
        (
            UniqueField::Phone,
            "SELECT 1 FROM users WHERE tenant_id = ?1 AND phone_norm = ?2",
            u.phone.as_ref().map(|x| x.normalized().to_owned()),
        ),
    ];
    for (field, sql, value) in checks {
        let Some(value) = value else { continue };
        let hit: Option<i64> = sqlx::query_scalar(sql)
            .bind(u.tenant_id.0)
            .bind(value)
            .fetch_optional(&mut *conn)
            .await
            .map_err(map_err)?;
        if hit.is_some() {
            return Ok(field);
        }
    }
    Err(StoreError::Corrupt("an import row was refused but no identifier is taken".into()))
}

#[async_trait::async_trait]
impl ImportStore for SqliteStore {
    async fn unclassified_passwords(&self, limit: u32) -> StoreResult<Vec<(UserId, String)>> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, password_hash FROM users WHERE password_scheme IS NULL AND password_hash IS NOT NULL \
             ORDER BY id LIMIT ?1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        Ok(rows.into_iter().map(|(id, h)| (UserId(id), h)).collect())
    }

    async fn set_password_scheme(&self, user: UserId, hash: &str, scheme: &str) -> StoreResult<()> {
        sqlx::query("UPDATE users SET password_scheme = ?3 WHERE id = ?1 AND password_hash = ?2")
            .bind(user.0)
            .bind(hash)
            .bind(scheme)
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn import_users(&self, users: &[NewUser]) -> StoreResult<Vec<ImportOutcome>> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
        let mut out = Vec::with_capacity(users.len());
        for u in users {
            match insert_user_tx(&mut tx, u, true).await? {
                Some(id) => out.push(ImportOutcome::Created(id)),
                None => out.push(ImportOutcome::Taken(taken_field(&mut tx, u).await?)),
            }
        }
        tx.commit().await.map_err(map_err)?;
        Ok(out)
    }

    async fn users_with_secrets(
        &self,
        tenant: TenantId,
        after: Option<UserId>,
        limit: u32,
    ) -> StoreResult<Vec<UserWithSecret>> {
        let rows = sqlx::query(USER_PAGE.as_str())
            .bind(tenant.0)
            .bind(after.map_or(0, |a| a.0))
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await
            .map_err(map_err)?;
        rows.iter().map(user_from_row).collect()
    }

    async fn password_schemes(&self, tenant: TenantId) -> StoreResult<Vec<(String, u64)>> {
        let rows = sqlx::query(
            "SELECT CASE WHEN password_hash IS NULL THEN 'none' ELSE coalesce(password_scheme, 'unclassified') END \
             AS scheme, count(*) AS n FROM users \
             WHERE tenant_id = ?1 GROUP BY scheme ORDER BY scheme",
        )
        .bind(tenant.0)
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                let n: i64 = r.try_get("n").map_err(map_err)?;
                Ok((r.try_get("scheme").map_err(map_err)?, u64::try_from(n).unwrap_or(0)))
            })
            .collect()
    }
}
