//! Bulk import of users, and the census of password hash schemes that tells an operator how
//! many imported passwords still wait for their owner's next log-in to be re-hashed.
//!
//! A batch is imported set-wise, in a few statements whatever its size (one round trip per
//! user made 100,000 users take most of a minute):
//!
//! 1. ids are drawn from the users' sequence up front, one per row, increasing in batch order;
//! 2. one `INSERT ... SELECT FROM unnest(...) ORDER BY id ON CONFLICT DO NOTHING` inserts every
//!    row whose identifiers are free. Rows go in in batch order, so of two rows of the batch
//!    that share an identifier the first wins, as if they were inserted one by one. The ids
//!    returned say which rows went in;
//! 3. for the rows that did not, one statement looks up which identifier is taken, ignoring
//!    rows of the batch that went in after them (they could not have been in the way);
//! 4. one statement each inserts the attribute values and the role grants of the new users.

use std::collections::HashSet;
use std::sync::LazyLock;

use portcullis_core::UniqueField;
use portcullis_core::ids::{TenantId, UserId};
use portcullis_core::profile::TextField;
use portcullis_core::store::{ImportOutcome, ImportStore, NewUser, StoreError, StoreResult, UserWithSecret};

use crate::rows::{USER_SELECT, user_from_row};
use sqlx::types::Json;
use sqlx::{PgConnection, Postgres, Row as _};
use time::OffsetDateTime;

use crate::{PostgresStore, map_err, odt};

/// How many times rows are tried again whose insert met a taken identifier that was gone by
/// the time it was looked up (its holder deleted or renamed concurrently).
const IMPORT_ROUNDS: usize = 3;

/// A row of a batch: where it is in the batch, the user, and the id drawn for it.
#[derive(Clone, Copy)]
struct BatchRow<'a> {
    at: usize,
    user: &'a NewUser,
    id: i64,
}

#[async_trait::async_trait]
impl ImportStore for PostgresStore {
    async fn unclassified_passwords(&self, limit: u32) -> StoreResult<Vec<(UserId, String)>> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, password_hash FROM users WHERE password_scheme IS NULL AND password_hash IS NOT NULL \
             ORDER BY id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(rows.into_iter().map(|(id, h)| (UserId(id), h)).collect())
    }

    async fn set_password_scheme(&self, user: UserId, hash: &str, scheme: &str) -> StoreResult<()> {
        sqlx::query("UPDATE users SET password_scheme = $3 WHERE id = $1 AND password_hash = $2")
            .bind(user.0)
            .bind(hash)
            .bind(scheme)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn import_users(&self, users: &[NewUser]) -> StoreResult<Vec<ImportOutcome>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        // An error returns early and drops the transaction, which rolls the batch back.
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let ids = reserve_user_ids(&mut tx, users.len()).await?;
        let mut pending: Vec<BatchRow<'_>> =
            users.iter().zip(ids).enumerate().map(|(at, (user, id))| BatchRow { at, user, id }).collect();
        let mut outcomes: Vec<Option<ImportOutcome>> = vec![None; users.len()];
        let mut set = |at: usize, outcome: ImportOutcome| {
            if let Some(slot) = outcomes.get_mut(at) {
                *slot = Some(outcome);
            }
        };
        for _ in 0..IMPORT_ROUNDS {
            if pending.is_empty() {
                break;
            }
            let created = insert_users(&mut tx, &pending).await?;
            let (made, skipped): (Vec<BatchRow<'_>>, Vec<BatchRow<'_>>) =
                pending.iter().partition(|r| created.contains(&r.id));
            insert_attribute_values(&mut tx, &made).await?;
            grant_roles(&mut tx, &made).await?;
            for r in &made {
                set(r.at, ImportOutcome::Created(UserId(r.id)));
            }
            let taken = taken_fields(&mut tx, &skipped, &created).await?;
            pending = Vec::new();
            for (r, field) in skipped.into_iter().zip(taken) {
                match field {
                    Some(field) => set(r.at, ImportOutcome::Taken(field)),
                    None => pending.push(r),
                }
            }
        }
        if !pending.is_empty() {
            return Err(StoreError::Unavailable("identifiers of imported users kept changing concurrently".into()));
        }
        tx.commit().await.map_err(map_err)?;
        outcomes
            .into_iter()
            .map(|o| o.ok_or_else(|| StoreError::Corrupt("an imported row has no outcome".into())))
            .collect()
    }

    async fn users_with_secrets(
        &self,
        tenant: TenantId,
        after: Option<UserId>,
        limit: u32,
    ) -> StoreResult<Vec<UserWithSecret>> {
        static SQL: LazyLock<String> =
            LazyLock::new(|| format!("{} WHERE u.tenant_id = $1 AND u.id > $2 ORDER BY u.id LIMIT $3", *USER_SELECT));
        // A plain lower bound (rather than `$2 IS NULL OR ...`) keeps the plan an index range scan.
        let rows = sqlx::query(SQL.as_str())
            .bind(tenant.0)
            .bind(after.map_or(i64::MIN, |a| a.0))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(user_from_row).collect()
    }

    async fn password_schemes(&self, tenant: TenantId) -> StoreResult<Vec<(String, u64)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT CASE WHEN password_hash IS NULL THEN 'none' ELSE coalesce(password_scheme, 'unclassified') END \
             AS scheme, count(*) AS n FROM users \
             WHERE tenant_id = $1 GROUP BY 1",
        )
        .bind(tenant.0)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        let mut out = rows
            .into_iter()
            .map(|(scheme, n)| {
                let n = u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("count {n} of {scheme}")))?;
                Ok((scheme, n))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        // Sorted here rather than in SQL: the database's collation need not be byte order
        // (under en_US, `sha256_salted` sorts before `sha256_salt_first`).
        out.sort();
        Ok(out)
    }
}

/// Columns of the user insert other than the profile's text fields, with their types.
const INSERT_COLUMNS: [(&str, &str); 18] = [
    ("id", "bigint"),
    ("tenant_id", "bigint"),
    ("username", "text"),
    ("username_norm", "text"),
    ("email", "text"),
    ("email_norm", "text"),
    ("email_verified_at", "timestamptz"),
    ("phone", "text"),
    ("phone_norm", "text"),
    ("password_hash", "text"),
    ("password_scheme", "text"),
    ("status", "text"),
    ("birth_date", "date"),
    ("newsletter", "boolean"),
    ("meta", "jsonb"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
    ("password_changed_at", "timestamptz"),
];

/// The set-wise user insert: one array per column ([`INSERT_COLUMNS`], then the text fields).
static BULK_INSERT: LazyLock<String> = LazyLock::new(|| {
    let columns: Vec<(&str, &str)> =
        INSERT_COLUMNS.into_iter().chain(TextField::ALL.iter().map(|f| (f.name(), "text"))).collect();
    let names = columns.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(", ");
    let arrays = columns.iter().enumerate().map(|(i, (_, t))| format!("${}::{t}[]", i + 1)).collect::<Vec<_>>();
    format!(
        "INSERT INTO users ({names}) SELECT * FROM unnest({}) AS i ({names}) ORDER BY i.id \
         ON CONFLICT DO NOTHING RETURNING id",
        arrays.join(", ")
    )
});

/// Draws `n` user ids from the sequence, in increasing order.
async fn reserve_user_ids(conn: &mut PgConnection, n: usize) -> StoreResult<Vec<i64>> {
    let n = i64::try_from(n).map_err(|_| StoreError::Invalid("batch too large".into()))?;
    let mut ids: Vec<i64> =
        sqlx::query_scalar("SELECT nextval(pg_get_serial_sequence('users', 'id')) FROM generate_series(1, $1::bigint)")
            .bind(n)
            .fetch_all(&mut *conn)
            .await
            .map_err(map_err)?;
    ids.sort_unstable();
    Ok(ids)
}

/// One value per row.
fn column<'a, T>(rows: &[BatchRow<'a>], f: impl Fn(&'a NewUser) -> T) -> Vec<T> {
    rows.iter().map(|r| f(r.user)).collect()
}

fn ids(rows: &[BatchRow<'_>]) -> Vec<i64> {
    rows.iter().map(|r| r.id).collect()
}

/// Inserts the rows whose identifiers are free; returns the ids of those inserted.
async fn insert_users(conn: &mut PgConnection, rows: &[BatchRow<'_>]) -> StoreResult<HashSet<i64>> {
    let now = |u: &NewUser| odt(u.now);
    let mut q = sqlx::query::<Postgres>(BULK_INSERT.as_str());
    for (name, _) in INSERT_COLUMNS {
        q = match name {
            "id" => q.bind(ids(rows)),
            "tenant_id" => q.bind(column(rows, |u| u.tenant_id.0)),
            "username" => q.bind(column(rows, |u| u.username.as_ref().map(|x| x.as_str()))),
            "username_norm" => q.bind(column(rows, |u| u.username.as_ref().map(|x| x.normalized()))),
            "email" => q.bind(column(rows, |u| u.email.as_ref().map(|x| x.as_str()))),
            "email_norm" => q.bind(column(rows, |u| u.email.as_ref().map(|x| x.normalized()))),
            "email_verified_at" => q.bind(column(rows, |u| u.email_verified_at.map(odt))),
            "phone" => q.bind(column(rows, |u| u.phone.as_ref().map(|x| x.as_str()))),
            "phone_norm" => q.bind(column(rows, |u| u.phone.as_ref().map(|x| x.normalized()))),
            "password_hash" => q.bind(column(rows, |u| u.password.as_ref().map(|p| p.as_str()))),
            "password_scheme" => q.bind(column(rows, |u| u.password.as_ref().map(|p| p.scheme().as_str()))),
            "status" => q.bind(column(rows, |u| u.status.as_str())),
            "birth_date" => q.bind(column(rows, |u| u.profile.birth_date)),
            "newsletter" => q.bind(column(rows, |u| u.profile.newsletter)),
            "meta" => q.bind(column(rows, |u| Json(&u.profile.meta))),
            "created_at" | "updated_at" => q.bind(column(rows, now)),
            // As a single insert does: a password set now was changed now.
            "password_changed_at" => q.bind(column(rows, |u| u.password.as_ref().map(|_| now(u)))),
            other => return Err(StoreError::Corrupt(format!("no value for column {other}"))),
        };
    }
    for f in TextField::ALL {
        q = q.bind(column(rows, |u| u.profile.text(*f)));
    }
    let created: Vec<i64> = q
        .fetch_all(&mut *conn)
        .await
        .map_err(map_err)?
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, _>>()
        .map_err(map_err)?;
    Ok(created.into_iter().collect())
}

/// For rows that were not inserted, which identifier is taken: `$1` ids, `$2` tenants, `$3`
/// to `$5` normalised username, e-mail and phone, `$6` the ids inserted by the same round.
static TAKEN: LazyLock<String> = LazyLock::new(|| {
    let held = |col: &str| {
        format!(
            "EXISTS (SELECT 1 FROM users x WHERE x.tenant_id = s.tenant_id AND x.{col} = s.{col} \
             AND NOT (x.id > s.id AND x.id = ANY($6)))"
        )
    };
    format!(
        "SELECT CASE WHEN {} THEN 'username' WHEN {} THEN 'email' WHEN {} THEN 'phone' END AS taken \
         FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY \
              AS s (id, tenant_id, username_norm, email_norm, phone_norm, n) \
         ORDER BY s.n",
        held("username_norm"),
        held("email_norm"),
        held("phone_norm"),
    )
});

/// For each row that was not inserted, which identifier is taken (`None` if none is any more).
/// Rows that this round inserted (`created`) after the row are ignored: the row went in before
/// them, so they were not what stopped it.
async fn taken_fields(
    conn: &mut PgConnection,
    rows: &[BatchRow<'_>],
    created: &HashSet<i64>,
) -> StoreResult<Vec<Option<UniqueField>>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let found: Vec<Option<String>> = sqlx::query_scalar(TAKEN.as_str())
        .bind(ids(rows))
        .bind(column(rows, |u| u.tenant_id.0))
        .bind(column(rows, |u| u.username.as_ref().map(|x| x.normalized())))
        .bind(column(rows, |u| u.email.as_ref().map(|x| x.normalized())))
        .bind(column(rows, |u| u.phone.as_ref().map(|x| x.normalized())))
        .bind(created.iter().copied().collect::<Vec<i64>>())
        .fetch_all(&mut *conn)
        .await
        .map_err(map_err)?;
    Ok(found
        .into_iter()
        .map(|t| match t.as_deref() {
            Some("username") => Some(UniqueField::Username),
            Some("email") => Some(UniqueField::Email),
            Some("phone") => Some(UniqueField::Phone),
            _ => None,
        })
        .collect())
}

/// Inserts the attribute values of the new users. Only definitions of the user's tenant match,
/// so one of another tenant is refused rather than attached.
async fn insert_attribute_values(conn: &mut PgConnection, rows: &[BatchRow<'_>]) -> StoreResult<()> {
    let (mut user_ids, mut tenants, mut attrs, mut values, mut ats) = (vec![], vec![], vec![], vec![], vec![]);
    for &BatchRow { user: u, id, .. } in rows {
        for (attr, value) in &u.attributes {
            user_ids.push(id);
            tenants.push(u.tenant_id.0);
            attrs.push(attr.0);
            values.push(Json(value));
            ats.push(odt(u.now));
        }
    }
    if user_ids.is_empty() {
        return Ok(());
    }
    let done = sqlx::query(
        "INSERT INTO user_attributes (user_id, attribute_id, value, created_at, updated_at) \
         SELECT v.user_id, d.id, v.value, v.at, v.at \
         FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::jsonb[], $5::timestamptz[]) \
              AS v (user_id, tenant_id, attribute_id, value, at) \
         JOIN attribute_definitions d ON d.id = v.attribute_id AND d.tenant_id = v.tenant_id",
    )
    .bind(&user_ids)
    .bind(tenants)
    .bind(attrs)
    .bind(values)
    .bind(ats)
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    if done.rows_affected() != user_ids.len() as u64 {
        return Err(StoreError::Corrupt("an attribute is not defined in the user's tenant".into()));
    }
    Ok(())
}

/// Grants the roles of the new users. As for a single insert, a role of another tenant matches
/// no row and is refused rather than silently granted.
async fn grant_roles(conn: &mut PgConnection, rows: &[BatchRow<'_>]) -> StoreResult<()> {
    let (mut user_ids, mut tenants, mut roles, mut ats): (Vec<i64>, Vec<i64>, Vec<i64>, Vec<OffsetDateTime>) =
        (vec![], vec![], vec![], vec![]);
    for &BatchRow { user: u, id, .. } in rows {
        let mut granted: Vec<i64> = u.roles.iter().map(|r| r.0).collect();
        granted.sort_unstable();
        granted.dedup();
        for role in granted {
            user_ids.push(id);
            tenants.push(u.tenant_id.0);
            roles.push(role);
            ats.push(odt(u.now));
        }
    }
    if user_ids.is_empty() {
        return Ok(());
    }
    let done = sqlx::query(
        "INSERT INTO user_roles (user_id, role_id, created_at, updated_at) \
         SELECT v.user_id, r.id, v.at, v.at \
         FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::timestamptz[]) AS v (user_id, tenant_id, role_id, at) \
         JOIN roles r ON r.id = v.role_id AND r.tenant_id = v.tenant_id",
    )
    .bind(&user_ids)
    .bind(tenants)
    .bind(roles)
    .bind(ats)
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    if done.rows_affected() != user_ids.len() as u64 {
        return Err(StoreError::Corrupt("a role is not a role of the user's tenant".into()));
    }
    Ok(())
}
