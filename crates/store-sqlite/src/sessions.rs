//! Sessions. Every write that ends sessions records them on the revocation feed in its own
//! transaction (see [`crate::revocations`]).

use std::time::Duration;

use portcullis_core::clock::Timestamp;
use portcullis_core::ids::{SessionId, TenantId, UserId};
use portcullis_core::model::Session;
use portcullis_core::secret::TokenHash;
use portcullis_core::store::{EndSessions, NewSession, SessionStore, StoreResult};

use crate::revocations::record_revocations;
use crate::rows::{SESSION_COLUMNS, session_from_row};
use crate::users::end_sessions;
use crate::{SqliteStore, map_err};

#[async_trait::async_trait]
impl SessionStore for SqliteStore {
    async fn insert_session(&self, s: &NewSession) -> StoreResult<Option<Session>> {
        let now = s.now.unix_micros();
        // Opened only if the user's password is still the version that was checked and is not
        // disabled: a log-in that races a password change, a deletion or a disabling loses.
        let row = sqlx::query(
            "INSERT INTO sessions (tenant_id, user_id, token_hash, expires_at, idle_timeout_secs, last_seen_at, user_agent, ip, created_at, updated_at) \
             SELECT u.tenant_id, u.id, ?3, ?4, ?5, ?6, ?7, ?8, ?6, ?6 FROM users u \
             WHERE u.tenant_id = ?1 AND u.id = ?2 AND u.status <> 'disabled' AND u.password_version = ?9 \
             RETURNING id, tenant_id, user_id, created_at, expires_at, idle_timeout_secs, last_seen_at, user_agent, ip",
        )
        .bind(s.tenant_id.0)
        .bind(s.user_id.0)
        .bind(s.token_hash.as_bytes().to_vec())
        .bind(s.expires_at.unix_micros())
        .bind(i64::try_from(s.idle_timeout.as_secs()).unwrap_or(i64::MAX))
        .bind(now)
        .bind(s.user_agent.clone())
        .bind(s.ip.map(|ip| ip.to_string()))
        .bind(s.checked_password_version)
        .fetch_optional(&self.writer)
        .await
        .map_err(map_err)?;
        // The trigger sessions_record_login records the log-in on the user, atomically.
        row.as_ref().map(session_from_row).transpose()
    }

    async fn session_by_token_hash(&self, hash: &TokenHash) -> StoreResult<Option<Session>> {
        static SQL: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = ?1"));
        let row = sqlx::query(SQL.as_str())
            .bind(hash.as_bytes().to_vec())
            .fetch_optional(&self.reader)
            .await
            .map_err(map_err)?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn sessions_of_user(&self, tenant: TenantId, user: UserId) -> StoreResult<Vec<Session>> {
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE tenant_id = ?1 AND user_id = ?2 ORDER BY created_at DESC, id DESC"
            )
        });
        let rows =
            sqlx::query(SQL.as_str()).bind(tenant.0).bind(user.0).fetch_all(&self.reader).await.map_err(map_err)?;
        rows.iter().map(session_from_row).collect()
    }

    async fn delete_session(&self, tenant: TenantId, user: UserId, id: SessionId, now: Timestamp) -> StoreResult<bool> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
        let hashes: Vec<Vec<u8>> = sqlx::query_scalar(
            "DELETE FROM sessions WHERE tenant_id = ?1 AND user_id = ?2 AND id = ?3 RETURNING token_hash",
        )
        .bind(tenant.0)
        .bind(user.0)
        .bind(id.0)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        record_revocations(&mut tx, &hashes, now).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(!hashes.is_empty())
    }

    async fn delete_session_by_token_hash(&self, hash: &TokenHash, now: Timestamp) -> StoreResult<bool> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
        let hashes: Vec<Vec<u8>> =
            sqlx::query_scalar("DELETE FROM sessions WHERE token_hash = ?1 RETURNING token_hash")
                .bind(hash.as_bytes().to_vec())
                .fetch_all(&mut *tx)
                .await
                .map_err(map_err)?;
        record_revocations(&mut tx, &hashes, now).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(!hashes.is_empty())
    }

    async fn delete_sessions_of_user(
        &self,
        tenant: TenantId,
        user: UserId,
        which: EndSessions,
        now: Timestamp,
    ) -> StoreResult<u64> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
        let owned: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE tenant_id = ?1 AND id = ?2")
            .bind(tenant.0)
            .bind(user.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        if owned.is_none() {
            return Ok(0);
        }
        let n = end_sessions(&mut tx, user, which, now).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(n)
    }

    async fn touch_sessions(&self, touches: &[(SessionId, Timestamp)]) -> StoreResult<()> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
        for (id, at) in touches {
            sqlx::query("UPDATE sessions SET last_seen_at = max(last_seen_at, ?1), updated_at = ?1 WHERE id = ?2")
                .bind(at.unix_micros())
                .bind(id.0)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn delete_expired_sessions(&self, now: Timestamp, keep_feed: Duration) -> StoreResult<u64> {
        let now_us = now.unix_micros();
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
        let done = sqlx::query(
            "DELETE FROM sessions WHERE expires_at <= ?1 OR last_seen_at + idle_timeout_secs * 1000000 <= ?1",
        )
        .bind(now_us)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query("DELETE FROM session_revocations WHERE created_at < ?1")
            .bind(now.minus(keep_feed).unix_micros())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(done.rows_affected())
    }
}
