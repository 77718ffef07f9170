//! Bringing users over from another system, with their existing password hashes, and writing
//! them back out in the same format.
//!
//! A row is a JSON object in native field names (exactly what the admin API takes to create a
//! user) plus `password_hash`, `password_format` and `password_salt` (see
//! [`crate::legacy_hash::import_hash`]), `roles`, `status` and `email_verified`. Each row is
//! validated exactly as sign-up validates; the valid rows of a batch are written in one
//! transaction, and every refused row is reported with its reason. A legacy hash is replaced
//! by argon2id at the user's next log-in.

use serde_json::{Map, Value, json};

use crate::Core;
use crate::admin::match_roles;
use crate::audit::{Audit, AuditAction};
use crate::caller::Caller;
use crate::error::{CoreError, CoreResult, Field, FieldErrors};
use crate::fields::{AccountInput, Editor, parse_account_fields};
use crate::ids::{TenantId, UserId};
use crate::legacy_hash::{export_hash, import_hash};
use crate::model::{Scope, User, UserStatus};
use crate::password::HashedPassword;
use crate::profile::TextField;
use crate::store::{ImportOutcome, NewUser};

/// Most rows in one batch (one transaction).
pub const MAX_BATCH: usize = 5000;

/// One row to import.
#[derive(Debug)]
pub struct ImportRow {
    /// Where the row came from (line number), for the report.
    pub line: u64,
    /// Its fields.
    pub fields: Map<String, Value>,
}

/// What became of a row.
#[derive(Debug, PartialEq, Eq)]
pub struct RowOutcome {
    /// The row's line.
    pub line: u64,
    /// The new user's id, or why the row was refused.
    pub result: Result<UserId, String>,
}

fn take_text(fields: &mut Map<String, Value>, name: &str, field: Field, errors: &mut FieldErrors) -> Option<String> {
    match fields.remove(name) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            errors.add(field, "must be text");
            None
        }
    }
}

fn describe(e: CoreError) -> String {
    match e {
        CoreError::Validation(f) => f.describe().join("; "),
        CoreError::NotEditable(f) => {
            format!("fields that cannot be imported: {}", f.iter().map(Field::name).collect::<Vec<_>>().join(", "))
        }
        CoreError::Conflict(f) => format!("{} already taken", f.as_str()),
        other => other.to_string(),
    }
}

impl Core {
    /// Imports a batch of rows into a tenant (one transaction for the valid rows); returns
    /// one outcome per row, in order. Fails as a whole only if the database does. Imported rows
    /// carry password hashes no password policy checked: only a tenant's administrators import.
    pub async fn import_users(
        &self,
        caller: &Caller,
        tenant: TenantId,
        rows: Vec<ImportRow>,
    ) -> CoreResult<Vec<RowOutcome>> {
        caller.require(tenant, Scope::TenantAdmin)?;
        if rows.len() > MAX_BATCH {
            return Err(CoreError::field(Field::Param("rows"), format!("at most {MAX_BATCH} rows per batch")));
        }
        let (_, policy) = self.tenant_policy(tenant).await?;
        let defs = self.store.attributes.attribute_definitions(tenant).await?;
        let roles = self.store.roles.roles(tenant).await?;
        let now = self.now();
        let mut outcomes: Vec<RowOutcome> = Vec::with_capacity(rows.len());
        let mut valid: Vec<(usize, NewUser)> = Vec::new();
        for row in rows {
            let line = row.line;
            let parsed = (|| -> CoreResult<NewUser> {
                let mut fields = row.fields;
                let mut errors = FieldErrors::new();
                let hash = take_text(&mut fields, "password_hash", Field::PasswordHash, &mut errors);
                let format = take_text(&mut fields, "password_format", Field::Param("password_format"), &mut errors);
                let salt = take_text(&mut fields, "password_salt", Field::Param("password_salt"), &mut errors);
                if fields.contains_key("password") {
                    return Err(CoreError::field(
                        Field::Password,
                        "import takes password_hash (with password_format and password_salt), not clear passwords",
                    ));
                }
                let account = AccountInput::from_json(fields);
                let verified = account.email_verified().unwrap_or(false).then_some(now);
                let (mut changes, more) = parse_account_fields(account, &defs, Editor::Admin)?;
                errors.merge(more);
                errors.merge(crate::accounts::check_new_account(&changes, &defs, &policy, Editor::Admin));
                let role_ids = match match_roles(&roles, changes.roles.take().as_deref().unwrap_or_default()) {
                    Ok(ids) => ids,
                    Err(CoreError::Validation(f)) => {
                        errors.merge(f);
                        Vec::new()
                    }
                    Err(e) => return Err(e),
                };
                let stored = match (&hash, &format, &salt) {
                    (None, None, None) => None,
                    (None, _, _) => {
                        errors.add(Field::PasswordHash, "is required with password_format or password_salt");
                        None
                    }
                    (Some(h), f, s) => match import_hash(f.as_deref(), h, s.as_deref()) {
                        Ok(stored) if !self.hasher.can_verify(&stored) => {
                            errors.add(
                                Field::PasswordHash,
                                "its argon2 parameters cost far more than this server's (see docs/migration.md)",
                            );
                            None
                        }
                        Ok(stored) => {
                            let classified = HashedPassword::classify(stored);
                            if classified.is_none() {
                                errors.add(Field::PasswordHash, "the hash is in no recognised format");
                            }
                            classified
                        }
                        Err(m) => {
                            errors.add(Field::PasswordHash, m);
                            None
                        }
                    },
                };
                errors.into_result()?;
                let status = changes.status.unwrap_or(UserStatus::Active);
                let mut new = self.new_user(tenant, changes, status, verified);
                new.password = stored;
                new.roles = role_ids;
                Ok(new)
            })();
            match parsed {
                Ok(new) => {
                    valid.push((outcomes.len(), new));
                    outcomes.push(RowOutcome { line, result: Err(String::new()) });
                }
                Err(e) => outcomes.push(RowOutcome { line, result: Err(describe(e)) }),
            }
        }
        if !valid.is_empty() {
            let users: Vec<NewUser> = valid.iter().map(|(_, u)| u.clone()).collect();
            let written = self.store.import.import_users(&users).await?;
            for ((i, _), w) in valid.iter().zip(written) {
                if let Some(o) = outcomes.get_mut(*i) {
                    o.result = match w {
                        ImportOutcome::Created(id) => Ok(id),
                        ImportOutcome::Taken(f) => Err(format!("{} already taken", f.as_str())),
                    };
                }
            }
        }
        let created = outcomes.iter().filter(|o| o.result.is_ok()).count();
        self.audit(Audit {
            action: AuditAction::UsersImported,
            actor: caller.actor(),
            tenant: Some(tenant),
            user: None,
            client: Some(caller.client()),
            details: json!({"created": created, "refused": outcomes.len() - created}),
        });
        Ok(outcomes)
    }

    /// A page of a tenant's users in the import format (password hashes included), by id
    /// after `after`. Returns the last id seen, to ask for the next page.
    /// Password hashes leave with the users: only a tenant's administrators may export.
    pub async fn export_users(
        &self,
        caller: &Caller,
        tenant: TenantId,
        after: Option<UserId>,
        limit: u32,
    ) -> CoreResult<(Vec<Map<String, Value>>, Option<UserId>)> {
        caller.require(tenant, Scope::TenantAdmin)?;
        let page = self.store.import.users_with_secrets(tenant, after, limit.clamp(1, MAX_BATCH as u32)).await?;
        let last = page.last().map(|u| u.user.id);
        let rows = page
            .into_iter()
            .map(|u| {
                let mut m = export_fields(&u.user);
                if let Some(h) = u.password_hash.as_deref() {
                    match export_hash(h) {
                        Some((format, hash, salt)) => {
                            m.insert("password_format".into(), json!(format));
                            m.insert("password_hash".into(), json!(hash));
                            if let Some(s) = salt {
                                m.insert("password_salt".into(), json!(s));
                            }
                        }
                        None => tracing::warn!(user = %u.user.id, "a stored password hash has no export form"),
                    }
                }
                m
            })
            .collect();
        Ok((rows, last))
    }
}

/// Most unclassified passwords classified per sweep.
const CLASSIFY_BATCH: u32 = 1000;

impl Core {
    /// Records the scheme of passwords that have none: those written by an older release
    /// while a newer one already ran (a rolling upgrade). Run by the periodic sweep.
    pub(crate) async fn classify_passwords(&self) -> CoreResult<()> {
        for (user, hash) in self.store.import.unclassified_passwords(CLASSIFY_BATCH).await? {
            let scheme = crate::legacy_hash::scheme_of(&hash).map_or("unknown", |s| s.as_str());
            self.store.import.set_password_scheme(user, &hash, scheme).await?;
        }
        Ok(())
    }
}

/// A user's fields in the import format, without the password; only fields that are set.
pub fn export_fields(u: &User) -> Map<String, Value> {
    let mut m = Map::new();
    for (k, v) in [("username", &u.username), ("email", &u.email), ("phone", &u.phone)] {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    }
    for f in TextField::ALL {
        if let Some(v) = u.profile.text(*f) {
            m.insert(f.name().into(), json!(v));
        }
    }
    if let Some(d) = u.profile.birth_date {
        m.insert("birth_date".into(), json!(format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())));
    }
    if u.profile.newsletter {
        m.insert("newsletter".into(), json!(true));
    }
    if !u.profile.meta.is_empty() {
        m.insert("meta".into(), Value::Object(u.profile.meta.clone()));
    }
    if !u.attributes.is_empty() {
        m.insert("attributes".into(), json!(u.attributes));
    }
    if !u.roles.is_empty() {
        m.insert("roles".into(), json!(u.roles));
    }
    if u.status != UserStatus::Active {
        m.insert("status".into(), json!(u.status.as_str()));
    }
    if u.email_verified_at.is_some() {
        m.insert("email_verified".into(), json!(true));
    }
    m
}
