//! Users: insert, look-ups, updates, deletion and password changes. The writes that a unit
//! of work may combine are functions over a connection, used by the store and by
//! [`crate::unit::SqliteUnit`] alike.

use portcullis_core::clock::Timestamp;
use portcullis_core::ids::{TenantId, UserId};
use portcullis_core::model::User;
use portcullis_core::parse::LoginKey;
use portcullis_core::profile::{ProfileChange, TextField};
use portcullis_core::store::{
    EndSessions, NewUser, PasswordChange, StoreError, StoreResult, UserQuery, UserStore, UserUpdate, UserWithSecret,
};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use crate::rows::{
    USER_BY_EMAIL, USER_BY_ID, USER_BY_PHONE, USER_BY_USERNAME, USER_BY_USERNAME_OR_PHONE, USER_INSERT, USER_SELECT,
    date_text, user_from_row,
};
use crate::{SqliteStore, map_err};

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

#[async_trait::async_trait]
impl UserStore for SqliteStore {
    async fn insert_user(&self, u: &NewUser) -> StoreResult<User> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
        let user = insert_and_fetch_user(&mut tx, u).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(user)
    }

    async fn user(&self, tenant: TenantId, id: UserId) -> StoreResult<Option<User>> {
        let mut conn = self.reader.acquire().await.map_err(map_err)?;
        Ok(fetch_user(&mut conn, tenant, id).await?.map(|u| u.user))
    }

    async fn user_with_secret(&self, tenant: TenantId, key: &LoginKey) -> StoreResult<Option<UserWithSecret>> {
        let q = match key {
            LoginKey::Nobody(_) => return Ok(None),
            LoginKey::Username(n) => sqlx::query(USER_BY_USERNAME.as_str()).bind(tenant.0).bind(n.clone()),
            LoginKey::Email(n) => sqlx::query(USER_BY_EMAIL.as_str()).bind(tenant.0).bind(n.clone()),
            LoginKey::Phone(n) => sqlx::query(USER_BY_PHONE.as_str()).bind(tenant.0).bind(n.clone()),
            LoginKey::UsernameOrPhone { username, phone } => sqlx::query(USER_BY_USERNAME_OR_PHONE.as_str())
                .bind(tenant.0)
                .bind(username.clone())
                .bind(phone.clone()),
        };
        let row = q.fetch_optional(&self.reader).await.map_err(map_err)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn user_with_secret_by_id(&self, tenant: TenantId, id: UserId) -> StoreResult<Option<UserWithSecret>> {
        let mut conn = self.reader.acquire().await.map_err(map_err)?;
        fetch_user(&mut conn, tenant, id).await
    }

    async fn update_user(
        &self,
        tenant: TenantId,
        id: UserId,
        u: &UserUpdate,
        now: Timestamp,
    ) -> StoreResult<Option<User>> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
        let user = update_user_tx(&mut tx, tenant, id, u, now).await?;
        if user.is_some() {
            tx.commit().await.map_err(map_err)?;
        }
        Ok(user)
    }

    async fn delete_user(&self, tenant: TenantId, id: UserId, now: Timestamp) -> StoreResult<bool> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE tenant_id = ?1 AND id = ?2")
            .bind(tenant.0)
            .bind(id.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        if exists.is_none() {
            return Ok(false);
        }
        end_sessions(&mut tx, id, EndSessions::All, now).await?;
        sqlx::query("DELETE FROM users WHERE tenant_id = ?1 AND id = ?2")
            .bind(tenant.0)
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn set_password_hash(&self, tenant: TenantId, id: UserId, change: &PasswordChange) -> StoreResult<bool> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
        let done = set_password_tx(&mut tx, tenant, id, change).await?;
        if done {
            tx.commit().await.map_err(map_err)?;
        }
        Ok(done)
    }

    async fn list_users(&self, q: &UserQuery) -> StoreResult<Vec<User>> {
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
}

/// Inserts a user on `conn` (inside the caller's transaction) and reads it back.
pub(crate) async fn insert_and_fetch_user(conn: &mut SqliteConnection, u: &NewUser) -> StoreResult<User> {
    let id = insert_user_tx(conn, u, false)
        .await?
        .ok_or_else(|| StoreError::Corrupt("user insert returned no id".into()))?;
    let user =
        fetch_user(conn, u.tenant_id, id).await?.ok_or_else(|| StoreError::Corrupt("inserted user vanished".into()))?;
    Ok(user.user)
}

/// Applies changes to a user on `conn`, inside the caller's transaction.
pub(crate) async fn update_user_tx(
    conn: &mut SqliteConnection,
    tenant: TenantId,
    id: UserId,
    u: &UserUpdate,
    now: Timestamp,
) -> StoreResult<Option<User>> {
    let now_us = now.unix_micros();
    let mut b: QueryBuilder<Sqlite> = QueryBuilder::new("UPDATE users SET updated_at = ");
    b.push_bind(now_us);
    if let Some(v) = &u.username {
        b.push(", username = ").push_bind(v.as_ref().map(|x| x.as_str().to_owned()));
        b.push(", username_norm = ").push_bind(v.as_ref().map(|x| x.normalized().to_owned()));
    }
    if let Some(v) = &u.email {
        b.push(", email = ").push_bind(v.as_ref().map(|x| x.as_str().to_owned()));
        b.push(", email_norm = ").push_bind(v.as_ref().map(|x| x.normalized().to_owned()));
    }
    if let Some(v) = &u.email_verified_at {
        b.push(", email_verified_at = ").push_bind(v.map(Timestamp::unix_micros));
    }
    if let Some(v) = &u.phone {
        b.push(", phone = ").push_bind(v.as_ref().map(|x| x.as_str().to_owned()));
        b.push(", phone_norm = ").push_bind(v.as_ref().map(|x| x.normalized().to_owned()));
    }
    if let Some(v) = &u.phone_verified_at {
        b.push(", phone_verified_at = ").push_bind(v.map(Timestamp::unix_micros));
    }
    if let Some(v) = &u.pending_email {
        b.push(", pending_email = ").push_bind(v.clone());
    }
    if let Some(s) = u.status {
        b.push(", status = ").push_bind(s.as_str());
    }
    if let Some(h) = &u.password {
        b.push(", password_hash = ").push_bind(h.as_str().to_owned());
        b.push(", password_scheme = ").push_bind(h.scheme().as_str());
        b.push(", password_changed_at = ").push_bind(now_us);
        b.push(", password_version = password_version + 1");
    }
    for c in &u.profile {
        match c {
            ProfileChange::Text(f, v) => {
                b.push(", ").push(f.name()).push(" = ").push_bind(v.clone());
            }
            ProfileChange::BirthDate(d) => {
                b.push(", birth_date = ").push_bind(date_text(*d));
            }
            ProfileChange::Newsletter(n) => {
                b.push(", newsletter = ").push_bind(*n);
            }
            ProfileChange::Meta(m) => {
                let meta = serde_json::to_string(m).map_err(|e| StoreError::Other(Box::new(e)))?;
                b.push(", meta = ").push_bind(meta);
            }
        }
    }
    b.push(" WHERE tenant_id = ").push_bind(tenant.0).push(" AND id = ").push_bind(id.0);
    let done = b.build().execute(&mut *conn).await.map_err(map_err)?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    for (attr, value) in &u.attributes {
        match value {
            Some(v) => sqlx::query(
                "INSERT INTO user_attributes (user_id, attribute_id, value, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4) \
                 ON CONFLICT (user_id, attribute_id) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            )
            .bind(id.0)
            .bind(attr.0)
            .bind(v.to_string())
            .bind(now_us),
            None => sqlx::query("DELETE FROM user_attributes WHERE user_id = ?1 AND attribute_id = ?2").bind(id.0).bind(attr.0),
        }
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    }
    if let Some(roles) = &u.roles {
        sqlx::query("DELETE FROM user_roles WHERE user_id = ?1")
            .bind(id.0)
            .execute(&mut *conn)
            .await
            .map_err(map_err)?;
        for r in roles {
            insert_role_grant(&mut *conn, id, r.0, now_us).await?;
        }
    }
    if u.status == Some(portcullis_core::model::UserStatus::Disabled) || u.password.is_some() {
        end_sessions(&mut *conn, id, EndSessions::All, now).await?;
    }
    let user = fetch_user(&mut *conn, tenant, id).await?;
    Ok(user.map(|u| u.user))
}

/// Sets a user's password hash on `conn`, inside the caller's transaction.
pub(crate) async fn set_password_tx(
    conn: &mut SqliteConnection,
    tenant: TenantId,
    id: UserId,
    c: &PasswordChange,
) -> StoreResult<bool> {
    let now = c.now.unix_micros();
    let done = sqlx::query(
        "UPDATE users SET password_hash = ?1, password_scheme = ?7, updated_at = ?2, \
         password_changed_at = CASE WHEN ?3 THEN ?2 ELSE password_changed_at END, \
         password_version = password_version + CASE WHEN ?3 THEN 1 ELSE 0 END \
         WHERE tenant_id = ?4 AND id = ?5 AND (?6 IS NULL OR password_hash = ?6)",
    )
    .bind(c.hash.as_str())
    .bind(now)
    .bind(c.is_new_password)
    .bind(tenant.0)
    .bind(id.0)
    .bind(c.expected_current.clone())
    .bind(c.hash.scheme().as_str())
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    end_sessions(&mut *conn, id, c.end_sessions, c.now).await?;
    Ok(true)
}

static USER_INSERT_SKIPPING: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| USER_INSERT.replace(" RETURNING id", " ON CONFLICT DO NOTHING RETURNING id"));

/// Inserts a user with their attributes and roles in the caller's transaction. With
/// `skip_conflicts`, a taken identifier inserts nothing and gives `None` instead of an error.
pub(crate) async fn insert_user_tx(
    conn: &mut SqliteConnection,
    u: &NewUser,
    skip_conflicts: bool,
) -> StoreResult<Option<UserId>> {
    let meta = serde_json::to_string(&u.profile.meta).map_err(|e| StoreError::Other(Box::new(e)))?;
    let now = u.now.unix_micros();
    let sql = if skip_conflicts { USER_INSERT_SKIPPING.as_str() } else { USER_INSERT.as_str() };
    let mut q = sqlx::query_scalar::<_, i64>(sql)
        .bind(u.tenant_id.0)
        .bind(u.username.as_ref().map(|x| x.as_str().to_owned()))
        .bind(u.username.as_ref().map(|x| x.normalized().to_owned()))
        .bind(u.email.as_ref().map(|x| x.as_str().to_owned()))
        .bind(u.email.as_ref().map(|x| x.normalized().to_owned()))
        .bind(u.email_verified_at.map(Timestamp::unix_micros))
        .bind(u.phone.as_ref().map(|x| x.as_str().to_owned()))
        .bind(u.phone.as_ref().map(|x| x.normalized().to_owned()))
        .bind(u.password.as_ref().map(|p| p.as_str().to_owned()))
        .bind(u.password.as_ref().map(|p| p.scheme().as_str()))
        .bind(u.status.as_str())
        .bind(date_text(u.profile.birth_date))
        .bind(u.profile.newsletter)
        .bind(meta)
        .bind(now)
        .bind(now)
        .bind(u.password.as_ref().map(|_| now));
    for f in TextField::ALL {
        q = q.bind(u.profile.text(*f).map(str::to_owned));
    }
    let Some(id) = q.fetch_optional(&mut *conn).await.map_err(map_err)? else { return Ok(None) };
    for (attr, value) in &u.attributes {
        sqlx::query(
            "INSERT INTO user_attributes (user_id, attribute_id, value, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
        )
        .bind(id)
        .bind(attr.0)
        .bind(value.to_string())
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    }
    for role in &u.roles {
        insert_role_grant(conn, UserId(id), role.0, now).await?;
    }
    Ok(Some(UserId(id)))
}

pub(crate) async fn fetch_user(
    conn: &mut SqliteConnection,
    tenant: TenantId,
    id: UserId,
) -> StoreResult<Option<UserWithSecret>> {
    let row =
        sqlx::query(USER_BY_ID.as_str()).bind(tenant.0).bind(id.0).fetch_optional(&mut *conn).await.map_err(map_err)?;
    row.as_ref().map(user_from_row).transpose()
}

async fn insert_role_grant(conn: &mut SqliteConnection, user: UserId, role: i64, now: i64) -> StoreResult<()> {
    // The role must belong to the user's tenant; a role of another tenant matches no row and
    // is reported as corrupt input rather than silently granted.
    let done = sqlx::query(
        "INSERT INTO user_roles (user_id, role_id, created_at, updated_at) \
         SELECT u.id, r.id, ?3, ?3 FROM users u JOIN roles r ON r.tenant_id = u.tenant_id WHERE u.id = ?1 AND r.id = ?2",
    )
    .bind(user.0)
    .bind(role)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Corrupt(format!("role {role} is not a role of the user's tenant")));
    }
    Ok(())
}

/// Deletes sessions of a user as asked and records each on the revocation feed, in the
/// caller's transaction.
pub(crate) async fn end_sessions(
    conn: &mut SqliteConnection,
    user: UserId,
    which: EndSessions,
    now: Timestamp,
) -> StoreResult<u64> {
    let hashes: Vec<Vec<u8>> = match which {
        EndSessions::None => return Ok(0),
        EndSessions::All => sqlx::query_scalar("DELETE FROM sessions WHERE user_id = ?1 RETURNING token_hash")
            .bind(user.0)
            .fetch_all(&mut *conn)
            .await
            .map_err(map_err)?,
        EndSessions::AllExcept(keep) => {
            sqlx::query_scalar("DELETE FROM sessions WHERE user_id = ?1 AND id <> ?2 RETURNING token_hash")
                .bind(user.0)
                .bind(keep.0)
                .fetch_all(&mut *conn)
                .await
                .map_err(map_err)?
        }
    };
    crate::revocations::record_revocations(conn, &hashes, now).await?;
    Ok(hashes.len() as u64)
}
