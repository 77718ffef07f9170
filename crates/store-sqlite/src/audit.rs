//! The audit log.

use portcullis_core::clock::Timestamp;
use portcullis_core::ids::{AuditEventId, TenantId, UserId};
use portcullis_core::model::AuditEvent;
use portcullis_core::store::{AuditQuery, AuditStore, NewAuditEvent, StoreError, StoreResult};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};

use crate::{SqliteStore, map_err};

fn audit_from_row(row: &SqliteRow) -> StoreResult<AuditEvent> {
    let details: String = row.try_get("details").map_err(map_err)?;
    Ok(AuditEvent {
        id: AuditEventId(row.try_get("id").map_err(map_err)?),
        tenant_id: row.try_get::<Option<i64>, _>("tenant_id").map_err(map_err)?.map(TenantId),
        user_id: row.try_get::<Option<i64>, _>("user_id").map_err(map_err)?.map(UserId),
        actor: row.try_get("actor").map_err(map_err)?,
        action: row.try_get("action").map_err(map_err)?,
        ip: crate::rows::ip(row.try_get("ip").map_err(map_err)?)?,
        user_agent: row.try_get("user_agent").map_err(map_err)?,
        details: serde_json::from_str(&details).map_err(|e| StoreError::Corrupt(format!("details: {e}")))?,
        created_at: Timestamp::from_unix_micros(row.try_get("created_at").map_err(map_err)?),
    })
}

#[async_trait::async_trait]
impl AuditStore for SqliteStore {
    async fn insert_audit_events(&self, events: &[NewAuditEvent]) -> StoreResult<()> {
        // SQLite allows 32766 bound values per statement; 9 per event. One transaction, so a
        // failed batch (retried by the caller) leaves no part of itself behind.
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
        for chunk in events.chunks(1000) {
            let mut b: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO audit_events (tenant_id, user_id, actor, action, ip, user_agent, details, created_at, updated_at) ",
            );
            b.push_values(chunk, |mut row, e| {
                row.push_bind(e.tenant_id.map(|t| t.0))
                    .push_bind(e.user_id.map(|u| u.0))
                    .push_bind(e.actor.as_string())
                    .push_bind(e.action.as_str())
                    .push_bind(e.ip.map(|ip| ip.to_string()))
                    .push_bind(e.user_agent.clone())
                    .push_bind(e.details.to_string())
                    .push_bind(e.at.unix_micros())
                    .push_bind(e.at.unix_micros());
            });
            b.build().execute(&mut *tx).await.map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(())
    }

    async fn audit_events(&self, q: &AuditQuery) -> StoreResult<Vec<AuditEvent>> {
        let mut b: QueryBuilder<Sqlite> = QueryBuilder::new("SELECT * FROM audit_events WHERE 1 = 1");
        if let Some(t) = q.tenant_id {
            b.push(" AND tenant_id = ").push_bind(t.0);
        }
        if let Some(u) = q.user_id {
            b.push(" AND user_id = ").push_bind(u.0);
        }
        if let Some(a) = &q.action {
            b.push(" AND (action = ").push_bind(a.clone());
            b.push(" OR substr(action, 1, ").push_bind(a.len() as i64 + 1).push(") = ").push_bind(format!("{a}."));
            b.push(")");
        }
        if let Some(a) = &q.actor {
            b.push(" AND actor = ").push_bind(a.clone());
        }
        if let Some(t) = q.since {
            b.push(" AND created_at >= ").push_bind(t.unix_micros());
        }
        if let Some(t) = q.until {
            b.push(" AND created_at < ").push_bind(t.unix_micros());
        }
        if let Some(id) = q.before {
            b.push(" AND id < ").push_bind(id.0);
        }
        b.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(q.limit));
        let rows = b.build().fetch_all(&self.reader).await.map_err(map_err)?;
        rows.iter().map(audit_from_row).collect()
    }
}
