//! SQL text built from the core's field table, and the mapping from rows to records.

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;

use portcullis_core::clock::Timestamp;
use portcullis_core::ids::{SessionId, TenantId, UserId};
use portcullis_core::model::{Session, User, UserStatus};
use portcullis_core::profile::{Profile, TextField};
use portcullis_core::store::{StoreError, StoreResult, UserWithSecret};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::map_err;

/// Columns of a user as selected (table alias `u`), with roles and attributes aggregated.
pub(crate) static USER_SELECT: LazyLock<String> = LazyLock::new(|| {
    let mut cols = vec![
        "u.id",
        "u.tenant_id",
        "u.username",
        "u.email",
        "u.email_verified_at",
        "u.phone",
        "u.phone_verified_at",
        "u.pending_email",
        "u.avatar_version",
        "u.password_hash",
        "u.status",
        "u.birth_date",
        "u.newsletter",
        "u.meta",
        "u.created_at",
        "u.updated_at",
        "u.last_login_at",
        "u.password_changed_at",
        "u.password_version",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect::<Vec<_>>();
    cols.extend(TextField::ALL.iter().map(|f| format!("u.{}", f.name())));
    cols.push(
        "EXISTS (SELECT 1 FROM totp_credentials t WHERE t.user_id = u.id AND t.confirmed_at IS NOT NULL) AS second_factor"
            .to_owned(),
    );
    cols.push(
        "(SELECT json_group_array(name) FROM (SELECT r.name AS name FROM user_roles ur JOIN roles r ON r.id = ur.role_id \
         WHERE ur.user_id = u.id ORDER BY r.name_norm)) AS roles_json"
            .to_owned(),
    );
    cols.push(
        "(SELECT json_group_object(d.name, json(ua.value)) FROM user_attributes ua \
         JOIN attribute_definitions d ON d.id = ua.attribute_id WHERE ua.user_id = u.id) AS attributes_json"
            .to_owned(),
    );
    format!("SELECT {} FROM users u", cols.join(", "))
});

/// `SELECT ... WHERE` variants for each way a user is found.
pub(crate) static USER_BY_ID: LazyLock<String> =
    LazyLock::new(|| format!("{} WHERE u.tenant_id = ?1 AND u.id = ?2", *USER_SELECT));
pub(crate) static USER_BY_USERNAME: LazyLock<String> =
    LazyLock::new(|| format!("{} WHERE u.tenant_id = ?1 AND u.username_norm = ?2", *USER_SELECT));
pub(crate) static USER_BY_EMAIL: LazyLock<String> =
    LazyLock::new(|| format!("{} WHERE u.tenant_id = ?1 AND u.email_norm = ?2", *USER_SELECT));
pub(crate) static USER_BY_PHONE: LazyLock<String> =
    LazyLock::new(|| format!("{} WHERE u.tenant_id = ?1 AND u.phone_norm = ?2", *USER_SELECT));
pub(crate) static USER_BY_USERNAME_OR_PHONE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{} WHERE u.tenant_id = ?1 AND (u.username_norm = ?2 OR u.phone_norm = ?3) \
         ORDER BY CASE WHEN u.username_norm = ?2 THEN 0 ELSE 1 END LIMIT 1",
        *USER_SELECT
    )
});

/// The user insert, with one placeholder per column.
pub(crate) static USER_INSERT: LazyLock<String> = LazyLock::new(|| {
    let mut cols = vec![
        "tenant_id",
        "username",
        "username_norm",
        "email",
        "email_norm",
        "email_verified_at",
        "phone",
        "phone_norm",
        "password_hash",
        "password_scheme",
        "status",
        "birth_date",
        "newsletter",
        "meta",
        "created_at",
        "updated_at",
        "password_changed_at",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect::<Vec<_>>();
    cols.extend(TextField::ALL.iter().map(|f| f.name().to_owned()));
    let placeholders = (1..=cols.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
    format!("INSERT INTO users ({}) VALUES ({placeholders}) RETURNING id", cols.join(", "))
});

pub(crate) fn ts(v: Option<i64>) -> Option<Timestamp> {
    v.map(Timestamp::from_unix_micros)
}

pub(crate) fn date_text(d: Option<time::Date>) -> Option<String> {
    d.map(|d| format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()))
}

fn parse_date(s: &str) -> StoreResult<time::Date> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &fmt).map_err(|e| StoreError::Corrupt(format!("birth_date {s:?}: {e}")))
}

/// Reads a user row selected with [`USER_SELECT`].
pub(crate) fn user_from_row(row: &SqliteRow) -> StoreResult<UserWithSecret> {
    let status: String = row.try_get("status").map_err(map_err)?;
    let status = UserStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("status {status:?}")))?;
    let mut profile = Profile::default();
    for f in TextField::ALL {
        profile.set_text(*f, row.try_get(f.name()).map_err(map_err)?);
    }
    profile.birth_date =
        row.try_get::<Option<String>, _>("birth_date").map_err(map_err)?.as_deref().map(parse_date).transpose()?;
    profile.newsletter = row.try_get::<i64, _>("newsletter").map_err(map_err)? != 0;
    let meta: String = row.try_get("meta").map_err(map_err)?;
    profile.meta = serde_json::from_str(&meta).map_err(|e| StoreError::Corrupt(format!("meta: {e}")))?;
    let roles: String = row.try_get("roles_json").map_err(map_err)?;
    let roles: Vec<String> = serde_json::from_str(&roles).map_err(|e| StoreError::Corrupt(format!("roles: {e}")))?;
    let attributes: String = row.try_get("attributes_json").map_err(map_err)?;
    let attributes: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(&attributes).map_err(|e| StoreError::Corrupt(format!("attributes: {e}")))?;
    let user = User {
        id: UserId(row.try_get("id").map_err(map_err)?),
        tenant_id: TenantId(row.try_get("tenant_id").map_err(map_err)?),
        username: row.try_get("username").map_err(map_err)?,
        email: row.try_get("email").map_err(map_err)?,
        email_verified_at: ts(row.try_get("email_verified_at").map_err(map_err)?),
        phone: row.try_get("phone").map_err(map_err)?,
        phone_verified_at: ts(row.try_get("phone_verified_at").map_err(map_err)?),
        pending_email: row.try_get("pending_email").map_err(map_err)?,
        avatar_version: row.try_get("avatar_version").map_err(map_err)?,
        second_factor: row.try_get::<i64, _>("second_factor").map_err(map_err)? != 0,
        status,
        profile,
        attributes,
        roles,
        created_at: Timestamp::from_unix_micros(row.try_get("created_at").map_err(map_err)?),
        updated_at: Timestamp::from_unix_micros(row.try_get("updated_at").map_err(map_err)?),
        last_login_at: ts(row.try_get("last_login_at").map_err(map_err)?),
        password_changed_at: ts(row.try_get("password_changed_at").map_err(map_err)?),
        password_version: row.try_get("password_version").map_err(map_err)?,
    };
    Ok(UserWithSecret { user, password_hash: row.try_get("password_hash").map_err(map_err)? })
}

/// Columns of a session as selected.
pub(crate) const SESSION_COLUMNS: &str =
    "id, tenant_id, user_id, created_at, expires_at, idle_timeout_secs, last_seen_at, user_agent, ip";

/// Reads a session row selected with [`SESSION_COLUMNS`].
pub(crate) fn session_from_row(row: &SqliteRow) -> StoreResult<Session> {
    let idle: i64 = row.try_get("idle_timeout_secs").map_err(map_err)?;
    Ok(Session {
        id: SessionId(row.try_get("id").map_err(map_err)?),
        tenant_id: TenantId(row.try_get("tenant_id").map_err(map_err)?),
        user_id: UserId(row.try_get("user_id").map_err(map_err)?),
        created_at: Timestamp::from_unix_micros(row.try_get("created_at").map_err(map_err)?),
        expires_at: Timestamp::from_unix_micros(row.try_get("expires_at").map_err(map_err)?),
        idle_timeout: Duration::from_secs(u64::try_from(idle).unwrap_or(0)),
        last_seen_at: Timestamp::from_unix_micros(row.try_get("last_seen_at").map_err(map_err)?),
        user_agent: row.try_get("user_agent").map_err(map_err)?,
        ip: ip(row.try_get("ip").map_err(map_err)?)?,
    })
}

/// A stored client IP address. One that does not parse (a hand-edited row) reads as unknown
/// rather than failing the session or the audit page it belongs to.
pub(crate) fn ip(text: Option<String>) -> StoreResult<Option<std::net::IpAddr>> {
    Ok(text.and_then(|t| match t.parse() {
        Ok(ip) => Some(ip),
        Err(_) => {
            tracing::warn!("a stored client IP address does not parse; reading it as unknown");
            None
        }
    }))
}
