//! Roles.

use portcullis_core::ids::{RoleId, TenantId};
use portcullis_core::model::Role;
use portcullis_core::parse::normalize_name;
use portcullis_core::store::{NewRole, RoleStore, StoreResult};
use sqlx::Row;
use sqlx::postgres::PgRow;
use time::OffsetDateTime;

use crate::{PostgresStore, from_odt, map_err, odt};

fn role_from_row(row: &PgRow) -> StoreResult<Role> {
    Ok(Role {
        id: RoleId(row.try_get("id").map_err(map_err)?),
        tenant_id: TenantId(row.try_get("tenant_id").map_err(map_err)?),
        name: row.try_get("name").map_err(map_err)?,
        description: row.try_get("description").map_err(map_err)?,
        created_at: from_odt(row.try_get::<OffsetDateTime, _>("created_at").map_err(map_err)?),
    })
}

#[async_trait::async_trait]
impl RoleStore for PostgresStore {
    async fn insert_role(&self, r: &NewRole) -> StoreResult<Role> {
        let row = sqlx::query(
            "INSERT INTO roles (tenant_id, name, name_norm, description, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) RETURNING *",
        )
        .bind(r.tenant_id.0)
        .bind(&r.name)
        .bind(normalize_name(&r.name))
        .bind(&r.description)
        .bind(odt(r.now))
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        role_from_row(&row)
    }

    async fn roles(&self, tenant: TenantId) -> StoreResult<Vec<Role>> {
        let rows = sqlx::query("SELECT * FROM roles WHERE tenant_id = $1 ORDER BY name_norm")
            .bind(tenant.0)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(role_from_row).collect()
    }

    async fn delete_role(&self, tenant: TenantId, id: RoleId) -> StoreResult<bool> {
        // Grants go with it (user_roles cascades).
        let done = sqlx::query("DELETE FROM roles WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.0)
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }
}
