//! The mail outbox. A claim takes due rows with `FOR UPDATE SKIP LOCKED` and leases them in one
//! statement, so two nodes never get the same row while its lease runs, and never wait for
//! each other.

use std::time::Duration;

use portcullis_core::clock::Timestamp;
use portcullis_core::ids::{OutboxId, TenantId, UserId};
use portcullis_core::model::MailKind;
use portcullis_core::store::{NewOutboxMessage, OutboxMessage, OutboxStore, StoreError, StoreResult};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgConnection, Row};

use crate::rows::ts_req;
use crate::{PostgresStore, map_err, odt};

/// Queues a message on `conn` (a unit of work's transaction, or a connection of its own).
pub(crate) async fn enqueue(conn: &mut PgConnection, m: &NewOutboxMessage) -> StoreResult<OutboxId> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO outbox (tenant_id, kind, user_id, recipient, payload, next_attempt_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6, $6) RETURNING id",
    )
    .bind(m.tenant_id.0)
    .bind(m.kind.as_str())
    .bind(m.user_id.map(|u| u.0))
    .bind(m.recipient.clone())
    .bind(Json(&m.payload))
    .bind(odt(m.now))
    .fetch_one(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(OutboxId(id))
}

fn message_from_row(row: &PgRow) -> StoreResult<OutboxMessage> {
    let kind: String = row.try_get("kind").map_err(map_err)?;
    let Json(payload): Json<serde_json::Value> = row.try_get("payload").map_err(map_err)?;
    Ok(OutboxMessage {
        id: OutboxId(row.try_get("id").map_err(map_err)?),
        tenant_id: TenantId(row.try_get("tenant_id").map_err(map_err)?),
        kind: MailKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("mail kind {kind:?}")))?,
        user_id: row.try_get::<Option<i64>, _>("user_id").map_err(map_err)?.map(UserId),
        recipient: row.try_get("recipient").map_err(map_err)?,
        payload,
        attempts: u32::try_from(row.try_get::<i32, _>("attempts").map_err(map_err)?).unwrap_or(0),
        lease: crate::rows::ts_req(row, "locked_until")?,
        created_at: ts_req(row, "created_at")?,
    })
}

#[async_trait::async_trait]
impl OutboxStore for PostgresStore {
    async fn enqueue_mail(&self, m: &NewOutboxMessage) -> StoreResult<OutboxId> {
        let mut conn = self.pool.acquire().await.map_err(map_err)?;
        enqueue(&mut conn, m).await
    }

    async fn claim_mail(&self, now: Timestamp, lease: Duration, limit: u32) -> StoreResult<Vec<OutboxMessage>> {
        let rows = sqlx::query(
            "UPDATE outbox SET locked_until = $2, attempts = attempts + 1, updated_at = $1 \
             WHERE id IN (SELECT id FROM outbox WHERE failed_at IS NULL AND next_attempt_at <= $1 \
                          AND (locked_until IS NULL OR locked_until <= $1) \
                          ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING id, tenant_id, kind, user_id, recipient, payload, attempts, created_at, locked_until",
        )
        .bind(odt(now))
        .bind(odt(now.plus(lease)))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        let mut out: Vec<OutboxMessage> = rows.iter().map(message_from_row).collect::<StoreResult<_>>()?;
        out.sort_by_key(|m| m.id.0);
        Ok(out)
    }

    async fn complete_mail(&self, id: OutboxId, lease: Timestamp) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM outbox WHERE id = $1 AND locked_until = $2")
            .bind(id.0)
            .bind(odt(lease))
            .execute(&self.pool)
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
            "UPDATE outbox SET locked_until = NULL, last_error = $3, updated_at = $4, \
             next_attempt_at = coalesce($5, next_attempt_at), \
             failed_at = CASE WHEN $5::timestamptz IS NULL THEN $4 END, \
             payload = CASE WHEN $5::timestamptz IS NULL THEN '{}'::jsonb ELSE payload END \
             WHERE id = $1 AND locked_until = $2",
        )
        .bind(id.0)
        .bind(odt(lease))
        .bind(error)
        .bind(odt(now))
        .bind(retry_at.map(odt))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn mail_backlog(&self) -> StoreResult<(u64, u64)> {
        let (waiting, failed): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE failed_at IS NULL), count(*) FILTER (WHERE failed_at IS NOT NULL) FROM outbox",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        Ok((u64::try_from(waiting).unwrap_or(0), u64::try_from(failed).unwrap_or(0)))
    }
}
