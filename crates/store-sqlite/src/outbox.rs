//! The mail outbox. A claim is one `UPDATE … RETURNING` on the single write connection, so two
//! senders (two processes on one file) never get the same row while its lease runs.

use std::time::Duration;

use portcullis_core::clock::Timestamp;
use portcullis_core::ids::{OutboxId, TenantId, UserId};
use portcullis_core::model::MailKind;
use portcullis_core::store::{NewOutboxMessage, OutboxMessage, OutboxStore, StoreError, StoreResult};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use crate::{SqliteStore, map_err};

/// Queues a message on `conn` (a unit of work's transaction, or a connection of its own).
pub(crate) async fn enqueue(conn: &mut SqliteConnection, m: &NewOutboxMessage) -> StoreResult<OutboxId> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO outbox (tenant_id, kind, user_id, recipient, payload, next_attempt_at, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?6) RETURNING id",
    )
    .bind(m.tenant_id.0)
    .bind(m.kind.as_str())
    .bind(m.user_id.map(|u| u.0))
    .bind(m.recipient.clone())
    .bind(m.payload.to_string())
    .bind(m.now.unix_micros())
    .fetch_one(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(OutboxId(id))
}

fn message_from_row(row: &SqliteRow) -> StoreResult<OutboxMessage> {
    let kind: String = row.try_get("kind").map_err(map_err)?;
    let payload: String = row.try_get("payload").map_err(map_err)?;
    Ok(OutboxMessage {
        id: OutboxId(row.try_get("id").map_err(map_err)?),
        tenant_id: TenantId(row.try_get("tenant_id").map_err(map_err)?),
        kind: MailKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("mail kind {kind:?}")))?,
        user_id: row.try_get::<Option<i64>, _>("user_id").map_err(map_err)?.map(UserId),
        recipient: row.try_get("recipient").map_err(map_err)?,
        payload: serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt(format!("mail payload: {e}")))?,
        attempts: u32::try_from(row.try_get::<i64, _>("attempts").map_err(map_err)?).unwrap_or(u32::MAX),
        lease: Timestamp::from_unix_micros(
            row.try_get::<Option<i64>, _>("locked_until").map_err(map_err)?.unwrap_or(0),
        ),
        created_at: Timestamp::from_unix_micros(row.try_get("created_at").map_err(map_err)?),
    })
}

#[async_trait::async_trait]
impl OutboxStore for SqliteStore {
    async fn enqueue_mail(&self, m: &NewOutboxMessage) -> StoreResult<OutboxId> {
        let mut conn = self.writer.acquire().await.map_err(map_err)?;
        enqueue(&mut conn, m).await
    }

    async fn claim_mail(&self, now: Timestamp, lease: Duration, limit: u32) -> StoreResult<Vec<OutboxMessage>> {
        let now_us = now.unix_micros();
        let until = now.plus(lease).unix_micros();
        let rows = sqlx::query(
            "UPDATE outbox SET locked_until = ?2, attempts = attempts + 1, updated_at = ?1 \
             WHERE id IN (SELECT id FROM outbox WHERE failed_at IS NULL AND next_attempt_at <= ?1 \
                          AND (locked_until IS NULL OR locked_until <= ?1) ORDER BY id LIMIT ?3) \
             RETURNING id, tenant_id, kind, user_id, recipient, payload, attempts, created_at, locked_until",
        )
        .bind(now_us)
        .bind(until)
        .bind(i64::from(limit))
        .fetch_all(&self.writer)
        .await
        .map_err(map_err)?;
        let mut out: Vec<OutboxMessage> = rows.iter().map(message_from_row).collect::<StoreResult<_>>()?;
        out.sort_by_key(|m| m.id.0);
        Ok(out)
    }

    async fn complete_mail(&self, id: OutboxId, lease: Timestamp) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM outbox WHERE id = ?1 AND locked_until = ?2")
            .bind(id.0)
            .bind(lease.unix_micros())
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn fail_mail(
        &self,
        id: OutboxId,
        lease: Timestamp,
        error: &str,
        retry_at: Option<Timestamp>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE outbox SET locked_until = NULL, last_error = ?3, updated_at = ?4, \
             next_attempt_at = coalesce(?5, next_attempt_at), failed_at = CASE WHEN ?5 IS NULL THEN ?4 END, \
             payload = CASE WHEN ?5 IS NULL THEN '{}' ELSE payload END \
             WHERE id = ?1 AND locked_until = ?2",
        )
        .bind(id.0)
        .bind(lease.unix_micros())
        .bind(error)
        .bind(now.unix_micros())
        .bind(retry_at.map(Timestamp::unix_micros))
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn mail_backlog(&self) -> StoreResult<(u64, u64)> {
        let (waiting, failed): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE failed_at IS NULL), count(*) FILTER (WHERE failed_at IS NOT NULL) FROM outbox",
        )
        .fetch_one(&self.reader)
        .await
        .map_err(map_err)?;
        Ok((u64::try_from(waiting).unwrap_or(0), u64::try_from(failed).unwrap_or(0)))
    }
}
