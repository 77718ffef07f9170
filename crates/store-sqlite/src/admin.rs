//! What operators and servers need beyond the end-user paths: tenant changes, user listing,
//! import and export, API keys, one-time tokens and the audit log.

use portcullis_core::UniqueField;
use portcullis_core::clock::Timestamp;
use portcullis_core::ids::{ApiKeyId, AttributeId, AuditEventId, RoleId, TenantId, UserId};
use portcullis_core::model::{ApiKey, AuditEvent, Scope, Tenant, User};
use portcullis_core::secret::TokenHash;
use portcullis_core::store::{
    AuditQuery, ConsumedToken, ImportOutcome, NewApiKey, NewAuditEvent, NewOneTimeToken, NewUser, StoreError,
    StoreResult, TenantUpdate, UserQuery, UserWithSecret,
};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use crate::rows::{USER_SELECT, ts, user_from_row};
use crate::users::insert_user_tx;
use crate::{SqliteStore, map_err};

static USER_PAGE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!("{} WHERE u.tenant_id = ?1 AND u.id > ?2 ORDER BY u.id LIMIT ?3", *USER_SELECT)
});

/// Escapes `%`, `_` and `\\` for a `LIKE ... ESCAPE '\\'` pattern.
fn like_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

fn scopes_from_text(s: &str) -> StoreResult<Vec<Scope>> {
    let names: Vec<String> = serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("scopes: {e}")))?;
    names.iter().map(|n| Scope::parse(n).ok_or_else(|| StoreError::Corrupt(format!("scope {n:?}")))).collect()
}

fn api_key_from_row(row: &SqliteRow) -> StoreResult<ApiKey> {
    let scopes: String = row.try_get("scopes").map_err(map_err)?;
    Ok(ApiKey {
        id: ApiKeyId(row.try_get("id").map_err(map_err)?),
        tenant_id: row.try_get::<Option<i64>, _>("tenant_id").map_err(map_err)?.map(TenantId),
        name: row.try_get("name").map_err(map_err)?,
        prefix: row.try_get("prefix").map_err(map_err)?,
        scopes: scopes_from_text(&scopes)?,
        expires_at: ts(row.try_get("expires_at").map_err(map_err)?),
        last_used_at: ts(row.try_get("last_used_at").map_err(map_err)?),
        revoked_at: ts(row.try_get("revoked_at").map_err(map_err)?),
        created_at: Timestamp::from_unix_micros(row.try_get("created_at").map_err(map_err)?),
    })
}

fn audit_from_row(row: &SqliteRow) -> StoreResult<AuditEvent> {
    let details: String = row.try_get("details").map_err(map_err)?;
    Ok(AuditEvent {
        id: AuditEventId(row.try_get("id").map_err(map_err)?),
        tenant_id: row.try_get::<Option<i64>, _>("tenant_id").map_err(map_err)?.map(TenantId),
        user_id: row.try_get::<Option<i64>, _>("user_id").map_err(map_err)?.map(UserId),
        actor: row.try_get("actor").map_err(map_err)?,
        action: row.try_get("action").map_err(map_err)?,
        ip: row.try_get("ip").map_err(map_err)?,
        user_agent: row.try_get("user_agent").map_err(map_err)?,
        details: serde_json::from_str(&details).map_err(|e| StoreError::Corrupt(format!("details: {e}")))?,
        created_at: Timestamp::from_unix_micros(row.try_get("created_at").map_err(map_err)?),
    })
}

/// Which identifier of a refused import row is already taken.
async fn taken_field(conn: &mut SqliteConnection, u: &NewUser) -> StoreResult<UniqueField> {
    let checks = [
        (
            UniqueField::Username,
            "SELECT 1 FROM users WHERE tenant_id = ?1 AND username_norm = ?2",
            u.username.as_ref().map(|x| x.normalized().to_owned()),
        ),
        (
            UniqueField::Email,
            "SELECT 1 FROM users WHERE tenant_id = ?1 AND email_norm = ?2",
            u.email.as_ref().map(|x| x.normalized().to_owned()),
        ),
        (
            UniqueField::Phone,
            "SELECT 1 FROM users WHERE tenant_id = ?1 AND phone_norm = ?2",
            u.phone.as_ref().map(|x| x.normalized().to_owned()),
        ),
    ];
    for (field, sql, value) in checks {
        let Some(value) = value else { continue };
        let hit: Option<i64> = sqlx::query_scalar(sql)
            .bind(u.tenant_id.0)
            .bind(value)
            .fetch_optional(&mut *conn)
            .await
            .map_err(map_err)?;
        if hit.is_some() {
            return Ok(field);
        }
    }
    Err(StoreError::Corrupt("an import row was refused but no identifier is taken".into()))
}

impl SqliteStore {
    pub(crate) async fn tenant_rows(&self) -> StoreResult<Vec<Tenant>> {
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

    pub(crate) async fn tenant_row_by_domain(&self, domain: &str) -> StoreResult<Option<Tenant>> {
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

    pub(crate) async fn update_tenant_row(
        &self,
        id: TenantId,
        u: &TenantUpdate,
        now: Timestamp,
    ) -> StoreResult<Option<Tenant>> {
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

    pub(crate) async fn delete_role_row(&self, tenant: TenantId, id: RoleId) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM roles WHERE tenant_id = ?1 AND id = ?2")
            .bind(tenant.0)
            .bind(id.0)
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    pub(crate) async fn update_attribute_row(
        &self,
        tenant: TenantId,
        id: AttributeId,
        required: Option<bool>,
        user_editable: Option<bool>,
        now: Timestamp,
    ) -> StoreResult<Option<portcullis_core::model::AttributeDefinition>> {
        let done = sqlx::query(
            "UPDATE attribute_definitions SET required = coalesce(?3, required), \
             user_editable = coalesce(?4, user_editable), updated_at = ?5 WHERE tenant_id = ?1 AND id = ?2",
        )
        .bind(tenant.0)
        .bind(id.0)
        .bind(required)
        .bind(user_editable)
        .bind(now.unix_micros())
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        Ok(self.attribute_rows(tenant).await?.into_iter().find(|d| d.id == id))
    }

    pub(crate) async fn delete_attribute_row(&self, tenant: TenantId, id: AttributeId) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM attribute_definitions WHERE tenant_id = ?1 AND id = ?2")
            .bind(tenant.0)
            .bind(id.0)
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    pub(crate) async fn user_rows(&self, q: &UserQuery) -> StoreResult<Vec<User>> {
        let mut b: QueryBuilder<Sqlite> = QueryBuilder::new(USER_SELECT.as_str());
        b.push(" WHERE u.tenant_id = ").push_bind(q.tenant_id.0);
        if let Some(s) = q.search.as_deref().filter(|s| !s.is_empty()) {
            let p = like_pattern(s);
            b.push(" AND (");
            // SQLite's lower() folds ASCII only: identifiers are searched in their normalised
            // (Unicode-lower-cased) columns; names fold ASCII letters only.
            for (i, col) in [
                "u.username_norm",
                "u.email_norm",
                "lower(u.phone)",
                "lower(u.first_name)",
                "lower(u.last_name)",
                "lower(u.display_name)",
            ]
            .into_iter()
            .enumerate()
            {
                if i > 0 {
                    b.push(" OR ");
                }
                b.push(format!("{col} LIKE ")).push_bind(p.clone()).push(" ESCAPE '\\'");
            }
            b.push(")");
        }
        if let Some(s) = q.status {
            b.push(" AND u.status = ").push_bind(s.as_str());
        }
        if let Some(r) = q.role {
            b.push(" AND EXISTS (SELECT 1 FROM user_roles ur WHERE ur.user_id = u.id AND ur.role_id = ")
                .push_bind(r.0)
                .push(")");
        }
        if let Some(t) = q.created_after {
            b.push(" AND u.created_at >= ").push_bind(t.unix_micros());
        }
        if let Some(t) = q.created_before {
            b.push(" AND u.created_at < ").push_bind(t.unix_micros());
        }
        if let Some(a) = q.after {
            b.push(" AND u.id > ").push_bind(a.0);
        }
        b.push(" ORDER BY u.id LIMIT ").push_bind(i64::from(q.limit));
        let rows = b.build().fetch_all(&self.reader).await.map_err(map_err)?;
        rows.iter().map(|r| user_from_row(r).map(|u| u.user)).collect()
    }

    pub(crate) async fn user_rows_with_secrets(
        &self,
        tenant: TenantId,
        after: Option<UserId>,
        limit: u32,
    ) -> StoreResult<Vec<UserWithSecret>> {
        let rows = sqlx::query(USER_PAGE.as_str())
            .bind(tenant.0)
            .bind(after.map_or(0, |a| a.0))
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await
            .map_err(map_err)?;
        rows.iter().map(user_from_row).collect()
    }

    pub(crate) async fn import_user_rows(&self, users: &[NewUser]) -> StoreResult<Vec<ImportOutcome>> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
        let mut out = Vec::with_capacity(users.len());
        for u in users {
            match insert_user_tx(&mut tx, u, true).await? {
                Some(id) => out.push(ImportOutcome::Created(id)),
                None => out.push(ImportOutcome::Taken(taken_field(&mut tx, u).await?)),
            }
        }
        tx.commit().await.map_err(map_err)?;
        Ok(out)
    }

    pub(crate) async fn password_scheme_rows(&self, tenant: TenantId) -> StoreResult<Vec<(String, u64)>> {
        // Case-sensitive prefix tests (LIKE would treat `_` as a wildcard and ignore case).
        let rows = sqlx::query(
            "SELECT CASE \
               WHEN password_hash IS NULL THEN 'none' \
               WHEN substr(password_hash, 1, 10) = '$argon2id$' THEN 'argon2id' \
               WHEN substr(password_hash, 1, 7) = '$argon2' THEN 'argon2' \
               WHEN substr(password_hash, 1, 4) IN ('$2a$', '$2b$', '$2y$') THEN 'bcrypt' \
               WHEN substr(password_hash, 1, 14) = 'pbkdf2_sha256$' THEN 'pbkdf2_sha256' \
               WHEN substr(password_hash, 1, 3) IN ('$P$', '$H$') THEN 'phpass' \
               WHEN substr(password_hash, 1, 12) = '$md5-salted$' THEN 'md5_salted' \
               WHEN substr(password_hash, 1, 6) = '$sha1$' THEN 'sha1' \
               WHEN substr(password_hash, 1, 15) = '$sha256-salted$' THEN 'sha256_salted' \
               WHEN substr(password_hash, 1, 19) = '$sha256-salt-first$' THEN 'sha256_salt_first' \
               ELSE 'unknown' END AS scheme, count(*) AS n \
             FROM users WHERE tenant_id = ?1 GROUP BY scheme ORDER BY scheme",
        )
        .bind(tenant.0)
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                let n: i64 = r.try_get("n").map_err(map_err)?;
                Ok((r.try_get("scheme").map_err(map_err)?, u64::try_from(n).unwrap_or(0)))
            })
            .collect()
    }

    pub(crate) async fn insert_api_key_row(&self, k: &NewApiKey) -> StoreResult<ApiKey> {
        let scopes: Vec<&str> = k.scopes.iter().map(|s| s.as_str()).collect();
        let scopes = serde_json::to_string(&scopes).map_err(|e| StoreError::Other(Box::new(e)))?;
        let row = sqlx::query(
            "INSERT INTO api_keys (tenant_id, name, prefix, key_hash, scopes, expires_at, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) RETURNING *",
        )
        .bind(k.tenant_id.map(|t| t.0))
        .bind(&k.name)
        .bind(&k.prefix)
        .bind(k.key_hash.as_bytes().to_vec())
        .bind(scopes)
        .bind(k.expires_at.map(Timestamp::unix_micros))
        .bind(k.now.unix_micros())
        .fetch_one(&self.writer)
        .await
        .map_err(map_err)?;
        api_key_from_row(&row)
    }

    pub(crate) async fn api_key_row_by_hash(&self, hash: &TokenHash) -> StoreResult<Option<ApiKey>> {
        let row = sqlx::query("SELECT * FROM api_keys WHERE key_hash = ?1")
            .bind(hash.as_bytes().to_vec())
            .fetch_optional(&self.reader)
            .await
            .map_err(map_err)?;
        row.as_ref().map(api_key_from_row).transpose()
    }

    pub(crate) async fn api_key_rows(&self, tenant: Option<TenantId>) -> StoreResult<Vec<ApiKey>> {
        let rows = sqlx::query("SELECT * FROM api_keys WHERE tenant_id IS ?1 ORDER BY id DESC")
            .bind(tenant.map(|t| t.0))
            .fetch_all(&self.reader)
            .await
            .map_err(map_err)?;
        rows.iter().map(api_key_from_row).collect()
    }

    pub(crate) async fn revoke_api_key_row(
        &self,
        tenant: Option<TenantId>,
        id: ApiKeyId,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = ?1, updated_at = ?1 WHERE id = ?2 AND tenant_id IS ?3 AND revoked_at IS NULL",
        )
        .bind(now.unix_micros())
        .bind(id.0)
        .bind(tenant.map(|t| t.0))
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    pub(crate) async fn touch_api_key_row(&self, id: ApiKeyId, now: Timestamp) -> StoreResult<()> {
        sqlx::query(
            "UPDATE api_keys SET last_used_at = max(coalesce(last_used_at, ?1), ?1) WHERE id = ?2 \
             AND (last_used_at IS NULL OR last_used_at < ?1)",
        )
        .bind(now.unix_micros())
        .bind(id.0)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    pub(crate) async fn insert_one_time_token_row(&self, t: &NewOneTimeToken) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO one_time_tokens (tenant_id, user_id, purpose, token_hash, data, expires_at, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        )
        .bind(t.tenant_id.0)
        .bind(t.user_id.0)
        .bind(&t.purpose)
        .bind(t.token_hash.as_bytes().to_vec())
        .bind(t.data.to_string())
        .bind(t.expires_at.unix_micros())
        .bind(t.now.unix_micros())
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    pub(crate) async fn consume_one_time_token_row(
        &self,
        hash: &TokenHash,
        purpose: &str,
        now: Timestamp,
    ) -> StoreResult<Option<ConsumedToken>> {
        // One statement: of two racing consumers, the second finds consumed_at already set.
        let row = sqlx::query(
            "UPDATE one_time_tokens SET consumed_at = ?1, updated_at = ?1 \
             WHERE token_hash = ?2 AND purpose = ?3 AND consumed_at IS NULL AND expires_at > ?1 \
             RETURNING tenant_id, user_id, data",
        )
        .bind(now.unix_micros())
        .bind(hash.as_bytes().to_vec())
        .bind(purpose)
        .fetch_optional(&self.writer)
        .await
        .map_err(map_err)?;
        row.map(|r| {
            let data: String = r.try_get("data").map_err(map_err)?;
            Ok(ConsumedToken {
                tenant_id: TenantId(r.try_get("tenant_id").map_err(map_err)?),
                user_id: UserId(r.try_get("user_id").map_err(map_err)?),
                data: serde_json::from_str(&data).map_err(|e| StoreError::Corrupt(format!("token data: {e}")))?,
            })
        })
        .transpose()
    }

    pub(crate) async fn insert_audit_rows(&self, events: &[NewAuditEvent]) -> StoreResult<()> {
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
                    .push_bind(e.actor.clone())
                    .push_bind(e.action.clone())
                    .push_bind(e.ip.clone())
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

    pub(crate) async fn audit_rows(&self, q: &AuditQuery) -> StoreResult<Vec<AuditEvent>> {
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
