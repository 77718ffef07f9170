//! Operations on users for servers and operators (the admin API and the CLI): listing and
//! searching, creating with any field, changing (e-mail, password, roles, status), disabling,
//! deleting, ending sessions, one-time log-in tokens, roles and attribute definitions.
//!
//! Every write is validated exactly as sign-up validates (the same field parser and policy),
//! with the admin's wider allow-list. Every write is audited with its actor.

use serde_json::{Map, Value, json};

use crate::accounts::CreateUserCommand;
use crate::audit::{Actor, Audit, AuditAction};
use crate::auth::{IssuedSession, password_inputs};
use crate::clock::Timestamp;
use crate::error::{CoreError, CoreResult, FieldErrors};
use crate::fields::{Editor, parse_account_fields};
use crate::ids::{AttributeId, RoleId, TenantId, UserId};
use crate::model::{AttributeDefinition, Role, TokenPurpose, User, UserStatus};
use crate::parse::{LoginKey, normalize_name};
use crate::secret::{Password, Token};
use crate::store::{NewOneTimeToken, UserQuery, UserUpdate};
use crate::{ClientInfo, Core};

/// Prefix of one-time log-in tokens.
pub const LOGIN_TOKEN_PREFIX: &str = "pcl_";

/// How long a one-time log-in token works.
pub const LOGIN_TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// What an admin sends to create or change a user: account fields (native names) plus the
/// fields only admins set.
#[derive(Debug, Default)]
pub struct AdminUserInput {
    /// Identifiers, profile fields and `attributes`.
    pub fields: Map<String, Value>,
    /// A new password (checked against the policy).
    pub password: Option<Password>,
    /// Replace the user's roles with these (by name).
    pub roles: Option<Vec<String>>,
    /// New status.
    pub status: Option<UserStatus>,
    /// Mark the e-mail address verified (`true`) or unverified (`false`).
    pub email_verified: Option<bool>,
}

impl AdminUserInput {
    /// Splits a JSON object into account fields and the admin-only `password`, `roles`,
    /// `status` and `email_verified`.
    pub fn from_json(mut fields: Map<String, Value>) -> CoreResult<Self> {
        let mut errors = FieldErrors::new();
        let password = match fields.remove("password") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(Password::new(s)),
            Some(_) => {
                errors.add("password", "has the wrong type");
                None
            }
        };
        let roles = match fields.remove("roles") {
            None => None,
            Some(Value::Null) => Some(Vec::new()),
            Some(Value::Array(a)) => {
                let names: Option<Vec<String>> = a.into_iter().map(|v| v.as_str().map(str::to_owned)).collect();
                if names.is_none() {
                    errors.add("roles", "must be a list of role names");
                }
                names
            }
            Some(_) => {
                errors.add("roles", "must be a list of role names");
                None
            }
        };
        let status = match fields.remove("status") {
            None => None,
            Some(Value::String(s)) => {
                let st = UserStatus::parse(&s);
                if st.is_none() {
                    errors.add("status", "must be active, pending or disabled");
                }
                st
            }
            Some(_) => {
                errors.add("status", "must be active, pending or disabled");
                None
            }
        };
        let email_verified = match fields.remove("email_verified") {
            None => None,
            Some(Value::Bool(b)) => Some(b),
            Some(_) => {
                errors.add("email_verified", "must be true or false");
                None
            }
        };
        errors.into_result()?;
        Ok(Self { fields, password, roles, status, email_verified })
    }
}

/// Filters for listing users.
#[derive(Clone, Debug, Default)]
pub struct ListUsers {
    /// Text the username, e-mail, phone or a name contains.
    pub search: Option<String>,
    /// Only this status.
    pub status: Option<UserStatus>,
    /// Only holders of the role with this name.
    pub role: Option<String>,
    /// Created at or after.
    pub created_after: Option<Timestamp>,
    /// Created before.
    pub created_before: Option<Timestamp>,
    /// After this id (the previous page's last).
    pub after: Option<UserId>,
    /// Page size, 1 to 1000.
    pub limit: u32,
}

/// A one-time log-in token just issued; shown once.
#[derive(Debug)]
pub struct IssuedLoginToken {
    /// The token.
    pub token: Token,
    /// When it stops working.
    pub expires_at: Timestamp,
}

impl Core {
    /// Names of roles to their ids in a tenant; unknown names are a field error on `roles`.
    pub(crate) async fn resolve_roles(&self, tenant: TenantId, names: &[String]) -> CoreResult<Vec<RoleId>> {
        let roles = self.store.roles.roles(tenant).await?;
        match_roles(&roles, names)
    }

    /// A user of a tenant.
    pub async fn admin_user(&self, tenant: TenantId, id: UserId) -> CoreResult<User> {
        self.store.users.user(tenant, id).await?.ok_or(CoreError::NotFound)
    }

    /// Users of a tenant matching the filters, by id.
    pub async fn admin_list_users(&self, tenant: TenantId, f: ListUsers) -> CoreResult<Vec<User>> {
        let mut errors = FieldErrors::new();
        if f.limit == 0 || f.limit > 1000 {
            errors.add("limit", "must be between 1 and 1000");
        }
        if f.search.as_ref().is_some_and(|s| s.chars().count() > 200) {
            errors.add("q", "must be at most 200 characters");
        }
        errors.into_result()?;
        self.tenant_policy(tenant).await?;
        let role = match &f.role {
            Some(name) => match self.resolve_roles(tenant, std::slice::from_ref(name)).await {
                Ok(ids) => ids.first().copied(),
                // An unknown role has no holders.
                Err(CoreError::Validation(_)) => return Ok(Vec::new()),
                Err(e) => return Err(e),
            },
            None => None,
        };
        let q = UserQuery {
            tenant_id: tenant,
            search: f.search.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()),
            status: f.status,
            role,
            created_after: f.created_after,
            created_before: f.created_before,
            after: f.after,
            limit: f.limit,
        };
        Ok(self.store.users.list_users(&q).await?)
    }

    /// Creates a user with any field, roles and attributes, validated as sign-up validates.
    pub async fn admin_create_user(
        &self,
        tenant: TenantId,
        input: AdminUserInput,
        actor: Actor,
        client: &ClientInfo,
    ) -> CoreResult<User> {
        let cmd = CreateUserCommand {
            fields: input.fields,
            password: input.password,
            email_verified: input.email_verified.unwrap_or(false),
            roles: input.roles.unwrap_or_default(),
            status: input.status,
        };
        let user = self.create_user(tenant, cmd).await?;
        self.audit(Audit {
            action: AuditAction::UserCreated,
            actor,
            tenant: Some(tenant),
            user: Some(user.id),
            client: Some(client),
            details: json!({"by": "admin"}),
        });
        Ok(user)
    }

    /// Changes a user. Everything is validated before anything is written; a new password
    /// ends every session of the user, and so does disabling.
    pub async fn admin_update_user(
        &self,
        tenant: TenantId,
        id: UserId,
        input: AdminUserInput,
        actor: Actor,
        client: &ClientInfo,
    ) -> CoreResult<User> {
        let (_, policy) = self.tenant_policy(tenant).await?;
        let current = self.admin_user(tenant, id).await?;
        let defs = self.store.attributes.attribute_definitions(tenant).await?;
        let (changes, mut errors) = parse_account_fields(&input.fields, &defs, Editor::Admin)?;
        errors.merge(crate::accounts::check_identifiers_after_update(&current, &changes, &policy));
        for (d, v) in &changes.attributes {
            if d.required && v.is_none() {
                errors.add(format!("attributes.{}", d.name), "is required");
            }
        }
        let roles = match &input.roles {
            Some(names) => match self.resolve_roles(tenant, names).await {
                Ok(ids) => Some(ids),
                Err(CoreError::Validation(f)) => {
                    errors.merge(f);
                    None
                }
                Err(e) => return Err(e),
            },
            None => None,
        };
        errors.into_result()?;
        let new_hash = match input.password {
            Some(p) => match self.hasher.check_and_hash(p, &policy, password_inputs(&current)).await? {
                Ok(h) => Some(h),
                Err(m) => return Err(CoreError::field("password", m)),
            },
            None => None,
        };
        let email_changed =
            changes.email.as_ref().is_some_and(|e| e.as_ref().map(|e| e.as_str()) != current.email.as_deref());
        let email_verified_at = match input.email_verified {
            Some(true) => Some(Some(current.email_verified_at.unwrap_or(self.now()))),
            Some(false) => Some(None),
            None if email_changed => Some(None),
            None => None,
        };
        let phone_changed =
            changes.phone.as_ref().is_some_and(|p| p.as_ref().map(|p| p.as_str()) != current.phone.as_deref());
        let update = UserUpdate {
            email_verified_at,
            phone_verified_at: phone_changed.then_some(None),
            username: changes.username,
            email: changes.email,
            phone: changes.phone,
            profile: changes.profile,
            attributes: changes.attributes.into_iter().map(|(d, v)| (d.id, v)).collect(),
            status: input.status,
            roles,
            password: new_hash,
        };
        if update.is_empty() {
            return Ok(current);
        }
        // One transaction: a new password (which ends every session) lands with the rest or
        // not at all.
        let user = self.store.users.update_user(tenant, id, &update, self.now()).await?.ok_or(CoreError::NotFound)?;
        if update.status == Some(UserStatus::Disabled) || update.password.is_some() {
            self.sessions.evict_user(id, None);
        }
        if update.password.is_some() {
            self.audit(Audit {
                action: AuditAction::UserPasswordSet,
                actor,
                tenant: Some(tenant),
                user: Some(id),
                client: Some(client),
                details: json!({"sessions_ended": true}),
            });
        }
        if (UserUpdate { password: None, ..update.clone() }).is_empty() {
            return Ok(user);
        }
        let changed: Vec<&String> = input.fields.keys().collect();
        self.audit(Audit {
            action: match update.status {
                Some(UserStatus::Disabled) => AuditAction::UserDisabled,
                Some(UserStatus::Active) if update.is_status_only() => AuditAction::UserEnabled,
                _ => AuditAction::UserUpdated,
            },
            actor,
            tenant: Some(tenant),
            user: Some(id),
            client: Some(client),
            details: json!({
                "fields": changed,
                "roles": input.roles.is_some(),
                "status": update.status.map(UserStatus::as_str),
                "email_verified": input.email_verified,
            }),
        });
        Ok(user)
    }

    /// Disables (ending every session) or re-enables a user.
    pub async fn admin_set_disabled(
        &self,
        tenant: TenantId,
        id: UserId,
        disabled: bool,
        actor: Actor,
        client: &ClientInfo,
    ) -> CoreResult<User> {
        let status = if disabled { UserStatus::Disabled } else { UserStatus::Active };
        let input = AdminUserInput { status: Some(status), ..Default::default() };
        self.admin_update_user(tenant, id, input, actor, client).await
    }

    /// Deletes a user with everything they own; their sessions end.
    pub async fn admin_delete_user(
        &self,
        tenant: TenantId,
        id: UserId,
        actor: Actor,
        client: &ClientInfo,
    ) -> CoreResult<()> {
        if !self.store.users.delete_user(tenant, id, self.now()).await? {
            return Err(CoreError::NotFound);
        }
        self.sessions.evict_user(id, None);
        self.audit(Audit {
            action: AuditAction::UserDeleted,
            actor,
            tenant: Some(tenant),
            user: Some(id),
            client: Some(client),
            details: json!({}),
        });
        Ok(())
    }

    /// Whether an identifier is taken in a tenant (for callers allowed to read users).
    pub async fn identifier_exists(&self, tenant: TenantId, key: &LoginKey) -> CoreResult<bool> {
        self.tenant_policy(tenant).await?;
        Ok(self.store.users.user_with_secret(tenant, key).await?.is_some())
    }

    /// Ends every session of a user.
    pub async fn admin_end_sessions(
        &self,
        tenant: TenantId,
        id: UserId,
        actor: Actor,
        client: &ClientInfo,
    ) -> CoreResult<u64> {
        let user = self.admin_user(tenant, id).await?;
        let n = self.end_all_sessions(&user).await?;
        self.audit(Audit {
            action: AuditAction::UserSessionsEnded,
            actor,
            tenant: Some(tenant),
            user: Some(id),
            client: Some(client),
            details: json!({"sessions_ended": n}),
        });
        Ok(n)
    }

    /// Issues a one-time log-in token for a user: random, stored hashed, single-use, valid
    /// for [`LOGIN_TOKEN_TTL`]. Exchanged for a session with [`Core::login_with_token`].
    pub async fn issue_login_token(
        &self,
        tenant: TenantId,
        id: UserId,
        actor: Actor,
        client: &ClientInfo,
    ) -> CoreResult<IssuedLoginToken> {
        let (_, policy) = self.tenant_policy(tenant).await?;
        let user = self.admin_user(tenant, id).await?;
        // A token the exchange would refuse is not issued.
        self.ensure_may_log_in(&user, &policy)?;
        let token = Token::generate(LOGIN_TOKEN_PREFIX).map_err(CoreError::internal)?;
        let now = self.now();
        let expires_at = now.plus(LOGIN_TOKEN_TTL);
        let t = NewOneTimeToken {
            tenant_id: tenant,
            user_id: id,
            purpose: TokenPurpose::Login,
            token_hash: token.hash(),
            // The password version it was issued under: a password change voids it.
            data: json!({"password_version": user.password_version}),
            expires_at,
            now,
        };
        self.store.tokens.insert_one_time_token(&t).await?;
        self.audit(Audit {
            action: AuditAction::UserLoginTokenIssued,
            actor,
            tenant: Some(tenant),
            user: Some(id),
            client: Some(client),
            details: json!({"expires_at": expires_at}),
        });
        Ok(IssuedLoginToken { token, expires_at })
    }

    /// Exchanges a one-time log-in token for a session. The token is used up by the first
    /// attempt, whatever its outcome; every failure is [`CoreError::InvalidCredentials`].
    pub async fn login_with_token(
        &self,
        tenant: TenantId,
        token: &Token,
        client: &ClientInfo,
    ) -> CoreResult<(User, IssuedSession)> {
        let (_, policy) = self.tenant_policy(tenant).await?;
        if !token.has_shape(LOGIN_TOKEN_PREFIX) {
            return Err(CoreError::InvalidCredentials);
        }
        let consumed = self.store.tokens.consume_one_time_token(&token.hash(), TokenPurpose::Login, self.now()).await?;
        let Some(c) = consumed.filter(|c| c.tenant_id == tenant) else {
            return Err(CoreError::InvalidCredentials);
        };
        let user = self.store.users.user(tenant, c.user_id).await?.ok_or(CoreError::InvalidCredentials)?;
        if c.data.get("password_version").and_then(Value::as_i64) != Some(user.password_version) {
            return Err(CoreError::InvalidCredentials);
        }
        self.finish_login(user, &policy, client, "login_token").await
    }

    /// Defines a role, audited.
    pub async fn admin_create_role(
        &self,
        tenant: TenantId,
        name: &str,
        description: Option<&str>,
        actor: Actor,
        client: &ClientInfo,
    ) -> CoreResult<Role> {
        let role = self.create_role(tenant, name, description).await?;
        self.audit(Audit {
            action: AuditAction::RoleCreated,
            actor,
            tenant: Some(tenant),
            user: None,
            client: Some(client),
            details: json!({"role_id": role.id, "name": role.name}),
        });
        Ok(role)
    }

    /// Defines a custom attribute, audited.
    pub async fn admin_define_attribute(
        &self,
        tenant: TenantId,
        def: (&str, crate::model::AttributeKind, bool, bool),
        actor: Actor,
        client: &ClientInfo,
    ) -> CoreResult<AttributeDefinition> {
        let (name, kind, required, user_editable) = def;
        let d = self.define_attribute(tenant, name, kind, required, user_editable).await?;
        self.audit(Audit {
            action: AuditAction::AttributeCreated,
            actor,
            tenant: Some(tenant),
            user: None,
            client: Some(client),
            details: json!({"attribute_id": d.id, "name": d.name}),
        });
        Ok(d)
    }

    /// Changes whether an attribute is required and whether users may edit it (its type
    /// cannot change: existing values were checked against it).
    pub async fn admin_update_attribute(
        &self,
        tenant: TenantId,
        id: AttributeId,
        required: Option<bool>,
        user_editable: Option<bool>,
        actor: Actor,
        client: &ClientInfo,
    ) -> CoreResult<AttributeDefinition> {
        let d = self
            .store
            .attributes
            .update_attribute_definition(tenant, id, required, user_editable, self.now())
            .await?
            .ok_or(CoreError::NotFound)?;
        self.audit(Audit {
            action: AuditAction::AttributeUpdated,
            actor,
            tenant: Some(tenant),
            user: None,
            client: Some(client),
            details: json!({"attribute_id": d.id, "required": d.required, "user_editable": d.user_editable}),
        });
        Ok(d)
    }

    /// A tenant's roles.
    pub async fn list_roles(&self, tenant: TenantId) -> CoreResult<Vec<Role>> {
        self.tenant_policy(tenant).await?;
        Ok(self.store.roles.roles(tenant).await?)
    }

    /// Deletes a role; its holders lose it.
    pub async fn delete_role(&self, tenant: TenantId, id: RoleId, actor: Actor, client: &ClientInfo) -> CoreResult<()> {
        if !self.store.roles.delete_role(tenant, id).await? {
            return Err(CoreError::NotFound);
        }
        self.audit(Audit {
            action: AuditAction::RoleDeleted,
            actor,
            tenant: Some(tenant),
            user: None,
            client: Some(client),
            details: json!({"role_id": id}),
        });
        Ok(())
    }

    /// A tenant's custom attribute definitions.
    pub async fn list_attributes(&self, tenant: TenantId) -> CoreResult<Vec<AttributeDefinition>> {
        self.tenant_policy(tenant).await?;
        Ok(self.store.attributes.attribute_definitions(tenant).await?)
    }

    /// Deletes an attribute definition with every value of it.
    pub async fn delete_attribute(
        &self,
        tenant: TenantId,
        id: AttributeId,
        actor: Actor,
        client: &ClientInfo,
    ) -> CoreResult<()> {
        if !self.store.attributes.delete_attribute_definition(tenant, id).await? {
            return Err(CoreError::NotFound);
        }
        self.audit(Audit {
            action: AuditAction::AttributeDeleted,
            actor,
            tenant: Some(tenant),
            user: None,
            client: Some(client),
            details: json!({"attribute_id": id}),
        });
        Ok(())
    }

    /// How many users of a tenant are on each password hash scheme (`none`: no password).
    pub async fn password_scheme_report(&self, tenant: TenantId) -> CoreResult<Vec<(String, u64)>> {
        self.tenant_policy(tenant).await?;
        Ok(self.store.import.password_schemes(tenant).await?)
    }
}

/// Role names (compared case-insensitively) to the ids of a tenant's roles, without
/// duplicates; unknown names are a field error on `roles`.
pub(crate) fn match_roles(roles: &[Role], names: &[String]) -> CoreResult<Vec<RoleId>> {
    let mut ids = Vec::new();
    let mut unknown = Vec::new();
    for n in names {
        match roles.iter().find(|r| normalize_name(&r.name) == normalize_name(n)) {
            Some(r) if !ids.contains(&r.id) => ids.push(r.id),
            Some(_) => {}
            None => unknown.push(n.chars().take(64).collect::<String>()),
        }
    }
    if !unknown.is_empty() {
        return Err(CoreError::field("roles", format!("no such role: {}", unknown.join(", "))));
    }
    Ok(ids)
}

impl UserUpdate {
    fn is_status_only(&self) -> bool {
        self.status.is_some() && UserUpdate { status: None, ..self.clone() }.is_empty()
    }
}
