//! TOTP authenticators and recovery codes. Every acceptance of a code is one conditional
//! `UPDATE`, so a code is good once even when raced.

use portcullis_core::clock::Timestamp;
use portcullis_core::ids::{TenantId, UserId};
use portcullis_core::secret::TokenHash;
use portcullis_core::store::{SecondFactorStore, StoreResult, TotpCredential};
use sqlx::{Row, SqliteConnection};

use crate::rows::ts;
use crate::{SqliteStore, map_err};

/// Replaces a user's recovery codes on `conn`, inside the caller's transaction.
async fn put_recovery_codes(
    conn: &mut SqliteConnection,
    user: UserId,
    codes: &[TokenHash],
    now: Timestamp,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = ?1")
        .bind(user.0)
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    for c in codes {
        sqlx::query("INSERT INTO recovery_codes (user_id, code_hash, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)")
            .bind(user.0)
            .bind(c.as_bytes().to_vec())
            .bind(now.unix_micros())
            .execute(&mut *conn)
            .await
            .map_err(map_err)?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl SecondFactorStore for SqliteStore {
    async fn totp(&self, tenant: TenantId, user: UserId) -> StoreResult<Option<TotpCredential>> {
        let row = sqlx::query(
            "SELECT t.secret, t.confirmed_at, t.last_used_step FROM totp_credentials t \
             JOIN users u ON u.id = t.user_id WHERE u.tenant_id = ?1 AND t.user_id = ?2",
        )
        .bind(tenant.0)
        .bind(user.0)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)?;
        row.map(|r| {
            Ok(TotpCredential {
                sealed_secret: r.try_get("secret").map_err(map_err)?,
                confirmed_at: ts(r.try_get("confirmed_at").map_err(map_err)?),
                last_used_step: r.try_get("last_used_step").map_err(map_err)?,
            })
        })
        .transpose()
    }

    async fn begin_totp(
        &self,
        tenant: TenantId,
        user: UserId,
        sealed_secret: &[u8],
        now: Timestamp,
    ) -> StoreResult<bool> {
        // An unconfirmed enrolment is replaced; a confirmed authenticator is left alone.
        let done = sqlx::query(
            "INSERT INTO totp_credentials (user_id, secret, created_at, updated_at) \
             SELECT id, ?3, ?4, ?4 FROM users WHERE tenant_id = ?1 AND id = ?2 \
             ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, updated_at = excluded.updated_at, \
             last_used_step = 0 WHERE totp_credentials.confirmed_at IS NULL",
        )
        .bind(tenant.0)
        .bind(user.0)
        .bind(sealed_secret.to_vec())
        .bind(now.unix_micros())
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn confirm_totp(
        &self,
        tenant: TenantId,
        user: UserId,
        step: i64,
        recovery_codes: &[TokenHash],
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
        let done = sqlx::query(
            "UPDATE totp_credentials SET confirmed_at = ?3, last_used_step = ?4, updated_at = ?3 \
             WHERE user_id = ?2 AND confirmed_at IS NULL \
             AND user_id IN (SELECT id FROM users WHERE tenant_id = ?1)",
        )
        .bind(tenant.0)
        .bind(user.0)
        .bind(now.unix_micros())
        .bind(step)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        put_recovery_codes(&mut tx, user, recovery_codes, now).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn use_totp_step(&self, tenant: TenantId, user: UserId, step: i64, now: Timestamp) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE totp_credentials SET last_used_step = ?3, updated_at = ?4 \
             WHERE user_id = ?2 AND confirmed_at IS NOT NULL AND last_used_step < ?3 \
             AND user_id IN (SELECT id FROM users WHERE tenant_id = ?1)",
        )
        .bind(tenant.0)
        .bind(user.0)
        .bind(step)
        .bind(now.unix_micros())
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_totp(&self, tenant: TenantId, user: UserId) -> StoreResult<bool> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
        let done = sqlx::query(
            "DELETE FROM totp_credentials WHERE user_id = ?2 AND user_id IN (SELECT id FROM users WHERE tenant_id = ?1)",
        )
        .bind(tenant.0)
        .bind(user.0)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() > 0 {
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = ?1")
                .bind(user.0)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn replace_recovery_codes(
        &self,
        tenant: TenantId,
        user: UserId,
        codes: &[TokenHash],
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
        let enabled: Option<i64> = sqlx::query_scalar(
            "SELECT t.user_id FROM totp_credentials t JOIN users u ON u.id = t.user_id \
             WHERE u.tenant_id = ?1 AND t.user_id = ?2 AND t.confirmed_at IS NOT NULL",
        )
        .bind(tenant.0)
        .bind(user.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        if enabled.is_none() {
            return Ok(false);
        }
        put_recovery_codes(&mut tx, user, codes, now).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn use_recovery_code(
        &self,
        tenant: TenantId,
        user: UserId,
        code: &TokenHash,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE recovery_codes SET used_at = ?4, updated_at = ?4 \
             WHERE user_id = ?2 AND code_hash = ?3 AND used_at IS NULL \
             AND user_id IN (SELECT id FROM users WHERE tenant_id = ?1)",
        )
        .bind(tenant.0)
        .bind(user.0)
        .bind(code.as_bytes().to_vec())
        .bind(now.unix_micros())
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn recovery_codes_left(&self, tenant: TenantId, user: UserId) -> StoreResult<u32> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM recovery_codes r JOIN users u ON u.id = r.user_id \
             WHERE u.tenant_id = ?1 AND r.user_id = ?2 AND r.used_at IS NULL",
        )
        .bind(tenant.0)
        .bind(user.0)
        .fetch_one(&self.reader)
        .await
        .map_err(map_err)?;
        Ok(u32::try_from(n).unwrap_or(0))
    }
}
