//! Sessions. Every write that ends sessions notifies the revocation feed in its own
//! transaction (see [`crate::revocations`]).

use std::sync::LazyLock;
use std::time::Duration;

use portcullis_core::clock::Timestamp;
use portcullis_core::ids::{SessionId, TenantId, UserId};
use portcullis_core::model::Session;
use portcullis_core::secret::TokenHash;
use portcullis_core::store::{EndSessions, NewSession, SessionStore, StoreResult};

use crate::revocations::notify_revocations;
use crate::rows::{SESSION_COLUMNS, session_from_row};
use crate::users::end_sessions;
use crate::{PostgresStore, map_err, odt};

#[async_trait::async_trait]
impl SessionStore for PostgresStore {
    async fn insert_session(&self, s: &NewSession) -> StoreResult<Option<Session>> {
        let now = odt(s.now);
        // Opened only if the user's password is still the version that was checked and is not
        // disabled: a log-in that races a password change, a deletion or a disabling loses.
        // The row lock is the one the last-login trigger's UPDATE needs anyway (taking a share
        // lock and upgrading it would deadlock two log-ins of one user); it conflicts with a
        // password change's UPDATE, so the two serialise and the check sees the outcome.
        let row = sqlx::query(
            "INSERT INTO sessions (tenant_id, user_id, token_hash, expires_at, idle_timeout_secs, last_seen_at, user_agent, ip, created_at, updated_at) \
             SELECT u.tenant_id, u.id, $3, $4, $5, $6, $7, $8, $6, $6 FROM users u \
             WHERE u.tenant_id = $1 AND u.id = $2 AND u.status <> 'disabled' AND u.password_version = $9 FOR NO KEY UPDATE OF u \
             RETURNING id, tenant_id, user_id, created_at, expires_at, idle_timeout_secs, last_seen_at, user_agent, ip",
        )
        .bind(s.tenant_id.0)
        .bind(s.user_id.0)
        .bind(s.token_hash.as_bytes().to_vec())
        .bind(odt(s.expires_at))
        .bind(i64::try_from(s.idle_timeout.as_secs()).unwrap_or(i64::MAX))
        .bind(now)
        .bind(s.user_agent.clone())
        .bind(s.ip.map(|ip| ip.to_string()))
        .bind(s.checked_password_version)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        // The trigger sessions_record_login records the log-in on the user, atomically.
        row.as_ref().map(session_from_row).transpose()
    }

    async fn session_by_token_hash(&self, hash: &TokenHash) -> StoreResult<Option<Session>> {
        static SQL: LazyLock<String> =
            LazyLock::new(|| format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = $1"));
        let row = sqlx::query(SQL.as_str())
            .bind(hash.as_bytes().to_vec())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn sessions_of_user(&self, tenant: TenantId, user: UserId) -> StoreResult<Vec<Session>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE tenant_id = $1 AND user_id = $2 ORDER BY created_at DESC, id DESC"
            )
        });
        let rows =
            sqlx::query(SQL.as_str()).bind(tenant.0).bind(user.0).fetch_all(&self.pool).await.map_err(map_err)?;
        rows.iter().map(session_from_row).collect()
    }

    async fn delete_session(
        &self,
        tenant: TenantId,
        user: UserId,
        id: SessionId,
        _now: Timestamp,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let hashes: Vec<Vec<u8>> = sqlx::query_scalar(
            "DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2 AND id = $3 RETURNING token_hash",
        )
        .bind(tenant.0)
        .bind(user.0)
        .bind(id.0)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        notify_revocations(&mut tx, &hashes).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(!hashes.is_empty())
    }

    async fn delete_session_by_token_hash(&self, hash: &TokenHash, _now: Timestamp) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let hashes: Vec<Vec<u8>> =
            sqlx::query_scalar("DELETE FROM sessions WHERE token_hash = $1 RETURNING token_hash")
                .bind(hash.as_bytes().to_vec())
                .fetch_all(&mut *tx)
                .await
                .map_err(map_err)?;
        notify_revocations(&mut tx, &hashes).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(!hashes.is_empty())
    }

    async fn delete_sessions_of_user(
        &self,
        tenant: TenantId,
        user: UserId,
        which: EndSessions,
        _now: Timestamp,
    ) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let owned: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.0)
            .bind(user.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        if owned.is_none() {
            return Ok(0);
        }
        let n = end_sessions(&mut tx, user, which).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(n)
    }

    async fn touch_sessions(&self, touches: &[(SessionId, Timestamp)]) -> StoreResult<()> {
        if touches.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = touches.iter().map(|(id, _)| id.0).collect();
        let ats: Vec<time::OffsetDateTime> = touches.iter().map(|(_, at)| odt(*at)).collect();
        // Locks in id order (as ending sessions does), so a batch and a log-out never deadlock.
        sqlx::query(
            "WITH locked AS (SELECT id FROM sessions WHERE id = ANY($1) ORDER BY id FOR UPDATE) \
             UPDATE sessions s SET last_seen_at = GREATEST(s.last_seen_at, t.at), updated_at = t.at \
             FROM unnest($1::bigint[], $2::timestamptz[]) AS t(id, at), locked \
             WHERE s.id = t.id AND locked.id = t.id",
        )
        .bind(ids)
        .bind(ats)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn delete_expired_sessions(&self, now: Timestamp, _keep_feed: Duration) -> StoreResult<u64> {
        // (The feed is LISTEN/NOTIFY: it keeps nothing to clean up.)
        // Rows another transaction holds are left for the next sweep.
        let done = sqlx::query(
            "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions \
             WHERE expires_at <= $1 OR last_seen_at + make_interval(secs => idle_timeout_secs) <= $1 \
             ORDER BY id FOR UPDATE SKIP LOCKED)",
        )
        .bind(odt(now))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }
}
