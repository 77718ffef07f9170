//! Tenants and their domains.

use std::sync::LazyLock;

use portcullis_core::clock::Timestamp;
use portcullis_core::ids::TenantId;
use portcullis_core::model::Tenant;
use portcullis_core::store::{NewTenant, StoreError, StoreResult, TenantStore, TenantUpdate};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};

use crate::{SqliteStore, map_err};

const TENANT_SELECT: &str = "SELECT t.id, t.slug, t.name, t.policy, t.disabled, t.created_at, t.updated_at, \
     (SELECT json_group_array(domain) FROM (SELECT domain FROM tenant_domains WHERE tenant_id = t.id ORDER BY domain)) AS domains \
     FROM tenants t";

static TENANT_BY_ID: LazyLock<String> = LazyLock::new(|| format!("{TENANT_SELECT} WHERE t.id = ?1"));
static TENANT_BY_SLUG: LazyLock<String> = LazyLock::new(|| format!("{TENANT_SELECT} WHERE t.slug = ?1"));

fn tenant_from_row(row: &SqliteRow) -> StoreResult<Tenant> {
    let policy: String = row.try_get("policy").map_err(map_err)?;
    let domains: String = row.try_get("domains").map_err(map_err)?;
    Ok(Tenant {
        id: TenantId(row.try_get("id").map_err(map_err)?),
        slug: row.try_get("slug").map_err(map_err)?,
        name: row.try_get("name").map_err(map_err)?,
        domains: serde_json::from_str(&domains).map_err(|e| StoreError::Corrupt(format!("domains: {e}")))?,
        policy: serde_json::from_str(&policy).map_err(|e| StoreError::Corrupt(format!("policy: {e}")))?,
        disabled: row.try_get::<i64, _>("disabled").map_err(map_err)? != 0,
        created_at: Timestamp::from_unix_micros(row.try_get("created_at").map_err(map_err)?),
        updated_at: Timestamp::from_unix_micros(row.try_get("updated_at").map_err(map_err)?),
    })
}

impl SqliteStore {
    async fn tenant_by(&self, id: Option<TenantId>, slug: Option<&str>) -> StoreResult<Option<Tenant>> {
        let row = match (id, slug) {
            (Some(id), _) => sqlx::query(TENANT_BY_ID.as_str()).bind(id.0).fetch_optional(&self.reader).await,
            (None, Some(slug)) => sqlx::query(TENANT_BY_SLUG.as_str()).bind(slug).fetch_optional(&self.reader).await,
            (None, None) => return Ok(None),
        }
        .map_err(map_err)?;
        row.as_ref().map(tenant_from_row).transpose()
    }
}

#[async_trait::async_trait]
impl TenantStore for SqliteStore {
    async fn tenant(&self, id: TenantId) -> StoreResult<Option<Tenant>> {
        self.tenant_by(Some(id), None).await
    }

    async fn tenant_by_slug(&self, slug: &str) -> StoreResult<Option<Tenant>> {
        self.tenant_by(None, Some(slug)).await
    }

    async fn tenant_by_domain(&self, domain: &str) -> StoreResult<Option<Tenant>> {
        let id: Option<i64> = sqlx::query_scalar("SELECT tenant_id FROM tenant_domains WHERE domain = ?1")
            .bind(domain)
            .fetch_optional(&self.reader)
            .await
            .map_err(map_err)?;
        match id {
            Some(id) => self.tenant_by(Some(TenantId(id)), None).await,
            None => Ok(None),
        }
    }

    async fn tenants(&self) -> StoreResult<Vec<Tenant>> {
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM tenants ORDER BY id").fetch_all(&self.reader).await.map_err(map_err)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(t) = self.tenant_by(Some(TenantId(id)), None).await? {
                out.push(t);
            }
        }
        Ok(out)
    }

    async fn insert_tenant(&self, t: &NewTenant) -> StoreResult<Tenant> {
        let policy = serde_json::to_string(&t.policy).map_err(|e| StoreError::Other(Box::new(e)))?;
        let now = t.now.unix_micros();
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO tenants (slug, name, policy, disabled, created_at, updated_at) VALUES (?1, ?2, ?3, 0, ?4, ?4) RETURNING id",
        )
        .bind(&t.slug)
        .bind(&t.name)
        .bind(policy)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        for d in &t.domains {
            sqlx::query(
                "INSERT INTO tenant_domains (domain, tenant_id, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
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
        let now = now.unix_micros();
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
        let mut b: QueryBuilder<Sqlite> = QueryBuilder::new("UPDATE tenants SET updated_at = ");
        b.push_bind(now);
        if let Some(name) = &u.name {
            b.push(", name = ").push_bind(name.clone());
        }
        if let Some(p) = &u.policy {
            let policy = serde_json::to_string(p).map_err(|e| StoreError::Other(Box::new(e)))?;
            b.push(", policy = ").push_bind(policy);
        }
        if let Some(d) = u.disabled {
            b.push(", disabled = ").push_bind(d);
        }
        b.push(" WHERE id = ").push_bind(id.0);
        if b.build().execute(&mut *tx).await.map_err(map_err)?.rows_affected() == 0 {
            return Ok(None);
        }
        if let Some(domains) = &u.domains {
            sqlx::query("DELETE FROM tenant_domains WHERE tenant_id = ?1")
                .bind(id.0)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            for d in domains {
                sqlx::query(
                    "INSERT INTO tenant_domains (domain, tenant_id, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
                )
                .bind(d)
                .bind(id.0)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            }
        }
        tx.commit().await.map_err(map_err)?;
        self.tenant_by(Some(id), None).await
    }
}
