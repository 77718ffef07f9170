//! Tenants and their domains.

use std::sync::LazyLock;

use portcullis_core::clock::Timestamp;
use portcullis_core::ids::TenantId;
use portcullis_core::model::{Tenant, TenantPolicy};
use portcullis_core::store::{NewTenant, StoreResult, TenantStore, TenantUpdate};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder, Row};
use time::OffsetDateTime;

use crate::{PostgresStore, from_odt, map_err, odt};

const TENANT_SELECT: &str = "SELECT t.id, t.slug, t.name, t.policy, t.disabled, t.created_at, t.updated_at, \
     COALESCE((SELECT json_agg(domain ORDER BY domain) FROM tenant_domains WHERE tenant_id = t.id), '[]'::json) AS domains \
     FROM tenants t";
static TENANT_BY_ID: LazyLock<String> = LazyLock::new(|| format!("{TENANT_SELECT} WHERE t.id = $1"));
static TENANT_BY_SLUG: LazyLock<String> = LazyLock::new(|| format!("{TENANT_SELECT} WHERE t.slug = $1"));
static TENANT_BY_DOMAIN: LazyLock<String> = LazyLock::new(|| {
    format!("{TENANT_SELECT} WHERE t.id = (SELECT d.tenant_id FROM tenant_domains d WHERE d.domain = $1)")
});
static TENANTS: LazyLock<String> = LazyLock::new(|| format!("{TENANT_SELECT} ORDER BY t.id"));

fn tenant_from_row(row: &PgRow) -> StoreResult<Tenant> {
    let Json(policy): Json<TenantPolicy> = row.try_get("policy").map_err(map_err)?;
    let Json(domains): Json<Vec<String>> = row.try_get("domains").map_err(map_err)?;
    Ok(Tenant {
        id: TenantId(row.try_get("id").map_err(map_err)?),
        slug: row.try_get("slug").map_err(map_err)?,
        name: row.try_get("name").map_err(map_err)?,
        domains,
        policy,
        disabled: row.try_get("disabled").map_err(map_err)?,
        created_at: from_odt(row.try_get::<OffsetDateTime, _>("created_at").map_err(map_err)?),
        updated_at: from_odt(row.try_get::<OffsetDateTime, _>("updated_at").map_err(map_err)?),
    })
}

impl PostgresStore {
    async fn tenant_by(&self, id: Option<TenantId>, slug: Option<&str>) -> StoreResult<Option<Tenant>> {
        let row = match (id, slug) {
            (Some(id), _) => sqlx::query(TENANT_BY_ID.as_str()).bind(id.0).fetch_optional(&self.pool).await,
            (None, Some(slug)) => sqlx::query(TENANT_BY_SLUG.as_str()).bind(slug).fetch_optional(&self.pool).await,
            (None, None) => return Ok(None),
        }
        .map_err(map_err)?;
        row.as_ref().map(tenant_from_row).transpose()
    }
}

#[async_trait::async_trait]
impl TenantStore for PostgresStore {
    async fn tenant(&self, id: TenantId) -> StoreResult<Option<Tenant>> {
        self.tenant_by(Some(id), None).await
    }

    async fn tenant_by_slug(&self, slug: &str) -> StoreResult<Option<Tenant>> {
        self.tenant_by(None, Some(slug)).await
    }

    async fn tenant_by_domain(&self, domain: &str) -> StoreResult<Option<Tenant>> {
        let row =
            sqlx::query(TENANT_BY_DOMAIN.as_str()).bind(domain).fetch_optional(&self.pool).await.map_err(map_err)?;
        row.as_ref().map(tenant_from_row).transpose()
    }

    async fn tenants(&self) -> StoreResult<Vec<Tenant>> {
        let rows = sqlx::query(TENANTS.as_str()).fetch_all(&self.pool).await.map_err(map_err)?;
        rows.iter().map(tenant_from_row).collect()
    }

    async fn insert_tenant(&self, t: &NewTenant) -> StoreResult<Tenant> {
        let now = odt(t.now);
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO tenants (slug, name, policy, disabled, created_at, updated_at) VALUES ($1, $2, $3, FALSE, $4, $4) RETURNING id",
        )
        .bind(&t.slug)
        .bind(&t.name)
        .bind(Json(&t.policy))
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        for d in &t.domains {
            sqlx::query(
                "INSERT INTO tenant_domains (domain, tenant_id, created_at, updated_at) VALUES ($1, $2, $3, $3)",
            )
            .bind(d)
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        let row = sqlx::query(TENANT_BY_ID.as_str()).bind(id).fetch_one(&mut *tx).await.map_err(map_err)?;
        let tenant = tenant_from_row(&row)?;
        tx.commit().await.map_err(map_err)?;
        Ok(tenant)
    }

    async fn update_tenant(&self, id: TenantId, u: &TenantUpdate, now: Timestamp) -> StoreResult<Option<Tenant>> {
        let now = odt(now);
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // The update comes first, even when only the domains change: its row lock serialises
        // concurrent replacements of one tenant's domains.
        let mut b: QueryBuilder<Postgres> = QueryBuilder::new("UPDATE tenants SET updated_at = ");
        b.push_bind(now);
        if let Some(name) = &u.name {
            b.push(", name = ").push_bind(name.clone());
        }
        if let Some(policy) = &u.policy {
            b.push(", policy = ").push_bind(Json(policy.clone()));
        }
        if let Some(disabled) = u.disabled {
            b.push(", disabled = ").push_bind(disabled);
        }
        b.push(" WHERE id = ").push_bind(id.0);
        let done = b.build().execute(&mut *tx).await.map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        if let Some(domains) = &u.domains {
            sqlx::query("DELETE FROM tenant_domains WHERE tenant_id = $1")
                .bind(id.0)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            // A domain another tenant owns violates tenant_domains_pkey: Conflict(Slug).
            sqlx::query(
                "INSERT INTO tenant_domains (domain, tenant_id, created_at, updated_at) \
                 SELECT d, $2, $3, $3 FROM unnest($1::text[]) AS d",
            )
            .bind(domains.as_slice())
            .bind(id.0)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        let row = sqlx::query(TENANT_BY_ID.as_str()).bind(id.0).fetch_one(&mut *tx).await.map_err(map_err)?;
        let tenant = tenant_from_row(&row)?;
        tx.commit().await.map_err(map_err)?;
        Ok(Some(tenant))
    }
}
