//! Custom attribute definitions.

use portcullis_core::ids::{AttributeId, TenantId};
use portcullis_core::model::{AttributeDefinition, AttributeKind};
use portcullis_core::store::{AttributeStore, NewAttributeDefinition, StoreError, StoreResult};
use sqlx::Row;
use sqlx::postgres::PgRow;
use time::OffsetDateTime;

use crate::{PostgresStore, from_odt, map_err, odt};

fn attribute_from_row(row: &PgRow) -> StoreResult<AttributeDefinition> {
    let kind: String = row.try_get("kind").map_err(map_err)?;
    Ok(AttributeDefinition {
        id: AttributeId(row.try_get("id").map_err(map_err)?),
        tenant_id: TenantId(row.try_get("tenant_id").map_err(map_err)?),
        name: row.try_get("name").map_err(map_err)?,
        kind: AttributeKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("attribute kind {kind:?}")))?,
        required: row.try_get("required").map_err(map_err)?,
        user_editable: row.try_get("user_editable").map_err(map_err)?,
        created_at: from_odt(row.try_get::<OffsetDateTime, _>("created_at").map_err(map_err)?),
    })
}

#[async_trait::async_trait]
impl AttributeStore for PostgresStore {
    async fn insert_attribute_definition(&self, d: &NewAttributeDefinition) -> StoreResult<AttributeDefinition> {
        let row = sqlx::query(
            "INSERT INTO attribute_definitions (tenant_id, name, kind, required, user_editable, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING *",
        )
        .bind(d.tenant_id.0)
        .bind(&d.name)
        .bind(d.kind.as_str())
        .bind(d.required)
        .bind(d.user_editable)
        .bind(odt(d.now))
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        attribute_from_row(&row)
    }

    async fn attribute_definitions(&self, tenant: TenantId) -> StoreResult<Vec<AttributeDefinition>> {
        let rows = sqlx::query("SELECT * FROM attribute_definitions WHERE tenant_id = $1 ORDER BY name")
            .bind(tenant.0)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(attribute_from_row).collect()
    }

    async fn update_attribute_definition(
        &self,
        tenant: TenantId,
        id: AttributeId,
        required: Option<bool>,
        user_editable: Option<bool>,
        now: portcullis_core::clock::Timestamp,
    ) -> StoreResult<Option<AttributeDefinition>> {
        let row = sqlx::query(
            "UPDATE attribute_definitions SET required = coalesce($3, required), \
             user_editable = coalesce($4, user_editable), updated_at = $5 \
             WHERE tenant_id = $1 AND id = $2 RETURNING *",
        )
        .bind(tenant.0)
        .bind(id.0)
        .bind(required)
        .bind(user_editable)
        .bind(odt(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(attribute_from_row).transpose()
    }

    async fn delete_attribute_definition(&self, tenant: TenantId, id: AttributeId) -> StoreResult<bool> {
        // Values go with it (user_attributes cascades).
        let done = sqlx::query("DELETE FROM attribute_definitions WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.0)
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }
}
