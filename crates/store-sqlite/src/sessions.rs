//! Sessions and the polled revocation feed.

use std::time::Duration;

use futures::StreamExt as _;
use portcullis_core::clock::Timestamp;
use portcullis_core::ids::{SessionId, TenantId, UserId};
use portcullis_core::model::Session;
use portcullis_core::secret::TokenHash;
use portcullis_core::store::{EndSessions, NewSession, Revocation, RevocationFeed, StoreError, StoreResult};
use sqlx::{Row, SqliteConnection, SqlitePool};

use crate::rows::{SESSION_COLUMNS, session_from_row};
use crate::users::end_sessions;
use crate::{SqliteStore, map_err};

/// Appends revocations (one per ended session) to the feed, in the caller's transaction.
pub(crate) async fn record_revocations(
    conn: &mut SqliteConnection,
    hashes: &[Vec<u8>],
    now: Timestamp,
) -> StoreResult<()> {
    for h in hashes {
        sqlx::query("INSERT INTO session_revocations (token_hash, created_at, updated_at) VALUES (?1, ?2, ?2)")
            .bind(h.clone())
            .bind(now.unix_micros())
            .execute(&mut *conn)
            .await
            .map_err(map_err)?;
    }
    Ok(())
}

impl SqliteStore {
    pub(crate) async fn insert_session_row(&self, s: &NewSession) -> StoreResult<Option<Session>> {
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
        .bind(s.ip.clone())
        .bind(s.checked_password_version)
        .fetch_optional(&self.writer)
        .await
        .map_err(map_err)?;
        // The trigger sessions_record_login records the log-in on the user, atomically.
        row.as_ref().map(session_from_row).transpose()
    }

    pub(crate) async fn session_row_by_hash(&self, hash: &TokenHash) -> StoreResult<Option<Session>> {
        static SQL: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = ?1"));
        let row = sqlx::query(SQL.as_str())
            .bind(hash.as_bytes().to_vec())
            .fetch_optional(&self.reader)
            .await
            .map_err(map_err)?;
        row.as_ref().map(session_from_row).transpose()
    }

    pub(crate) async fn session_rows_of_user(&self, tenant: TenantId, user: UserId) -> StoreResult<Vec<Session>> {
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE tenant_id = ?1 AND user_id = ?2 ORDER BY created_at DESC, id DESC"
            )
        });
        let rows =
            sqlx::query(SQL.as_str()).bind(tenant.0).bind(user.0).fetch_all(&self.reader).await.map_err(map_err)?;
        rows.iter().map(session_from_row).collect()
    }

    pub(crate) async fn delete_session_row(
        &self,
        tenant: TenantId,
        user: UserId,
        id: SessionId,
        now: Timestamp,
    ) -> StoreResult<bool> {
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

    pub(crate) async fn delete_session_row_by_hash(&self, hash: &TokenHash, now: Timestamp) -> StoreResult<bool> {
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

    pub(crate) async fn delete_session_rows_of_user(
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

    pub(crate) async fn touch_session_rows(&self, touches: &[(SessionId, Timestamp)]) -> StoreResult<()> {
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

    pub(crate) async fn delete_expired_session_rows(&self, now: Timestamp, keep_feed: Duration) -> StoreResult<u64> {
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

    pub(crate) async fn open_feed(&self) -> StoreResult<RevocationFeed> {
        let start: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM session_revocations")
            .fetch_one(&self.feed)
            .await
            .map_err(map_err)?;
        let state =
            FeedState { pool: self.reader.clone(), cursor: start, every: self.options.revocation_poll_interval };
        let batches = futures::stream::unfold(state, |mut st| async move {
            tokio::time::sleep(st.every).await;
            let batch = st.poll().await;
            Some((batch, st))
        });
        Ok(Box::pin(batches.flat_map(|b: Vec<StoreResult<Revocation>>| futures::stream::iter(b))))
    }
}

struct FeedState {
    pool: SqlitePool,
    cursor: i64,
    every: Duration,
}

impl FeedState {
    async fn poll(&mut self) -> Vec<StoreResult<Revocation>> {
        let rows =
            sqlx::query("SELECT id, token_hash, user_id FROM session_revocations WHERE id > ?1 ORDER BY id LIMIT 1000")
                .bind(self.cursor)
                .fetch_all(&self.pool)
                .await;
        let rows = match rows {
            Ok(r) => r,
            Err(e) => return vec![Err(map_err(e))],
        };
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = match row.try_get("id") {
                Ok(id) => id,
                Err(e) => return vec![Err(map_err(e))],
            };
            // Move past the row whatever it holds, so one bad row cannot stall the feed.
            self.cursor = id;
            out.push(decode_revocation(&row));
        }
        out
    }
}

fn decode_revocation(row: &sqlx::sqlite::SqliteRow) -> StoreResult<Revocation> {
    let hash: Option<Vec<u8>> = row.try_get("token_hash").map_err(map_err)?;
    let user: Option<i64> = row.try_get("user_id").map_err(map_err)?;
    Ok(match (hash, user) {
        (Some(h), _) => Revocation::Session(
            TokenHash::from_slice(&h).ok_or_else(|| StoreError::Corrupt("revocation token hash".into()))?,
        ),
        (None, Some(u)) => Revocation::User(UserId(u)),
        (None, None) => Revocation::All,
    })
}
