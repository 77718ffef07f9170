//! The audit log: security events, appended in batches and read newest first.

use portcullis_core::ids::{AuditEventId, TenantId, UserId};
use portcullis_core::model::AuditEvent;
use portcullis_core::store::{AuditQuery, AuditStore, NewAuditEvent, StoreResult};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder, Row};

use crate::rows::ts_req;
use crate::{PostgresStore, map_err, odt};

fn audit_event_from_row(row: &PgRow) -> StoreResult<AuditEvent> {
    let Json(details): Json<serde_json::Value> = row.try_get("details").map_err(map_err)?;
    Ok(AuditEvent {
        id: AuditEventId(row.try_get("id").map_err(map_err)?),
        tenant_id: row.try_get::<Option<i64>, _>("tenant_id").map_err(map_err)?.map(TenantId),
        user_id: row.try_get::<Option<i64>, _>("user_id").map_err(map_err)?.map(UserId),
        actor: row.try_get("actor").map_err(map_err)?,
        action: row.try_get("action").map_err(map_err)?,
        ip: crate::rows::ip(row.try_get("ip").map_err(map_err)?)?,
        user_agent: row.try_get("user_agent").map_err(map_err)?,
        details,
        created_at: ts_req(row, "created_at")?,
    })
}

#[async_trait::async_trait]
impl AuditStore for PostgresStore {
    async fn insert_audit_events(&self, events: &[NewAuditEvent]) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let tenants: Vec<Option<i64>> = events.iter().map(|e| e.tenant_id.map(|t| t.0)).collect();
        let users: Vec<Option<i64>> = events.iter().map(|e| e.user_id.map(|u| u.0)).collect();
        let actors: Vec<String> = events.iter().map(|e| e.actor.as_string()).collect();
        let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
        let ips: Vec<Option<String>> = events.iter().map(|e| e.ip.map(|ip| ip.to_string())).collect();
        let agents: Vec<Option<&str>> = events.iter().map(|e| e.user_agent.as_deref()).collect();
        let details: Vec<Json<&serde_json::Value>> = events.iter().map(|e| Json(&e.details)).collect();
        let ats: Vec<time::OffsetDateTime> = events.iter().map(|e| odt(e.at)).collect();
        // One statement, whatever the batch size. Rows are inserted in the order given (the
        // ORDER BY on the ordinality), so ids, which order the log, follow it.
        sqlx::query(
            "INSERT INTO audit_events (tenant_id, user_id, actor, action, ip, user_agent, details, created_at, updated_at) \
             SELECT tenant_id, user_id, actor, action, ip, user_agent, details, at, at \
             FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::jsonb[], \
                         $8::timestamptz[]) WITH ORDINALITY \
                  AS e (tenant_id, user_id, actor, action, ip, user_agent, details, at, n) \
             ORDER BY n",
        )
        .bind(tenants)
        .bind(users)
        .bind(actors)
        .bind(actions)
        .bind(ips)
        .bind(agents)
        .bind(details)
        .bind(ats)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn audit_events(&self, q: &AuditQuery) -> StoreResult<Vec<AuditEvent>> {
        let mut b: QueryBuilder<Postgres> = QueryBuilder::new(
            "SELECT id, tenant_id, user_id, actor, action, ip, user_agent, details, created_at FROM audit_events WHERE TRUE",
        );
        if let Some(t) = q.tenant_id {
            b.push(" AND tenant_id = ").push_bind(t.0);
        }
        if let Some(u) = q.user_id {
            b.push(" AND user_id = ").push_bind(u.0);
        }
        if let Some(action) = &q.action {
            // `login` matches `login` and `login.succeeded`, not `loginx`.
            b.push(" AND (action = ")
                .push_bind(action.clone())
                .push(" OR starts_with(action, ")
                .push_bind(format!("{action}."))
                .push("))");
        }
        if let Some(actor) = &q.actor {
            b.push(" AND actor = ").push_bind(actor.clone());
        }
        if let Some(t) = q.since {
            b.push(" AND created_at >= ").push_bind(odt(t));
        }
        if let Some(t) = q.until {
            b.push(" AND created_at < ").push_bind(odt(t));
        }
        if let Some(before) = q.before {
            b.push(" AND id < ").push_bind(before.0);
        }
        b.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(q.limit));
        let rows = b.build().fetch_all(&self.pool).await.map_err(map_err)?;
        rows.iter().map(audit_event_from_row).collect()
    }
}
