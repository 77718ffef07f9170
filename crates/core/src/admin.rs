//! What servers and operators do to users (the admin API and the CLI): reading, listing and
//! searching, creating with any field, changing (identifiers, password, roles, status),
//! disabling, deleting, ending sessions, one-time log-in tokens.
//!
//! Every operation takes its [`Caller`] and checks the scope and tenant itself. Every write is
//! validated exactly as sign-up validates (the same field parser and policy), with the admin's
//! wider allow-list, and audited with its actor.

use serde_json::json;

use crate::accounts::{check_identifiers_after_update, check_new_account, check_required_not_cleared, new_user_inputs};
use crate::audit::{Audit, AuditAction};
use crate::auth::password_inputs;
use crate::caller::Caller;
use crate::clock::Timestamp;
use crate::error::{CoreError, CoreResult, Field, FieldErrors};
use crate::fields::{AccountInput, Editor, parse_account_fields};
use crate::ids::{RoleId, TenantId, UserId};
use crate::login::{LOGIN_TOKEN_PREFIX, may_log_in};
use crate::model::{Role, Scope, TokenPurpose, User, UserStatus};
use crate::parse::{LoginKey, normalize_name};
use crate::secret::{Password, Token};
use crate::store::{NewOneTimeToken, UserQuery, UserUpdate};
use crate::{Core, MAX_PAGE};

/// How long a one-time log-in token works.
pub const LOGIN_TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// Longest search text when listing users, in characters.
pub const MAX_SEARCH_CHARS: usize = 200;

/// Filters for listing users.
#[derive(Clone, Debug, Default)]
pub struct ListUsers {
    /// Text the username, e-mail, phone or a name contains (reported as
    /// `Field::Param("search")`).
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
    /// Page size, 1 to [`MAX_PAGE`].
    pub limit: u32,
    /// Problems the surface found reading its parameters, reported with the core's own once
    /// the caller may list users.
    pub problems: FieldErrors,
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
    pub async fn user(&self, caller: &Caller, tenant: TenantId, id: UserId) -> CoreResult<User> {
        caller.require(tenant, Scope::UsersRead)?;
        self.store.users.user(tenant, id).await?.ok_or(CoreError::NotFound)
    }

    /// The user a login identifier (username, e-mail address or phone number) names in a tenant.
    pub async fn user_by_login(&self, caller: &Caller, tenant: TenantId, key: &LoginKey) -> CoreResult<User> {
        caller.require(tenant, Scope::UsersRead)?;
        Ok(self.store.users.user_with_secret(tenant, key).await?.ok_or(CoreError::NotFound)?.user)
    }

    /// Users of a tenant matching the filters, by id.
    pub async fn list_users(&self, caller: &Caller, tenant: TenantId, f: ListUsers) -> CoreResult<Vec<User>> {
        caller.require(tenant, Scope::UsersRead)?;
        let mut errors = f.problems;
        if f.limit == 0 || f.limit > MAX_PAGE {
            errors.add(Field::Param("limit"), format!("must be between 1 and {MAX_PAGE}"));
        }
        if f.search.as_ref().is_some_and(|s| s.chars().count() > MAX_SEARCH_CHARS) {
            errors.add(Field::Param("search"), format!("must be at most {MAX_SEARCH_CHARS} characters"));
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

    /// Creates a user with any field, roles and attributes, an optional password, and a status
    /// (active unless given), validated as sign-up validates; sign-up need not be open.
    pub async fn create_user(
        &self,
        caller: &Caller,
        tenant: TenantId,
        account: AccountInput,
        password: Option<Password>,
    ) -> CoreResult<User> {
        caller.require(tenant, Scope::UsersManage)?;
        let (_, policy) = self.tenant_policy(tenant).await?;
        let defs = self.store.attributes.attribute_definitions(tenant).await?;
        let verified = account.email_verified().unwrap_or(false).then(|| self.now());
        let (mut changes, mut errors) = parse_account_fields(account, &defs, Editor::Admin)?;
        errors.merge(check_new_account(&changes, &defs, &policy, Editor::Admin));
        let roles = self.roles_or_errors(tenant, changes.roles.take(), &mut errors).await?;
        errors.into_result()?;
        let status = changes.status.unwrap_or(UserStatus::Active);
        let mut new = self.new_user(tenant, changes, status, verified);
        new.roles = roles.unwrap_or_default();
        if let Some(p) = password {
            new.password = Some(self.hash_new_password(p, &policy, new_user_inputs(&new), Field::Password).await?);
        }
        let user = self.store.users.insert_user(&new).await?;
        self.audit(Audit {
            action: AuditAction::UserCreated,
            actor: caller.actor(),
            tenant: Some(tenant),
            user: Some(user.id),
            client: Some(caller.client()),
            details: json!({"by": "admin"}),
        });
        Ok(user)
    }

    /// Changes a user. Everything is validated before anything is written; a new password
    /// ends every session of the user, and so does disabling.
    pub async fn update_user(
        &self,
        caller: &Caller,
        tenant: TenantId,
        id: UserId,
        account: AccountInput,
        password: Option<Password>,
    ) -> CoreResult<User> {
        caller.require(tenant, Scope::UsersManage)?;
        let (_, policy) = self.tenant_policy(tenant).await?;
        let current = self.store.users.user(tenant, id).await?.ok_or(CoreError::NotFound)?;
        let defs = self.store.attributes.attribute_definitions(tenant).await?;
        let email_verified = account.email_verified();
        let fields: Vec<String> = account
            .sent()
            .iter()
            .filter(|f| !matches!(f, Field::Roles | Field::Status | Field::EmailVerified))
            .map(Field::name)
            .collect();
        let (mut changes, mut errors) = parse_account_fields(account, &defs, Editor::Admin)?;
        errors.merge(check_identifiers_after_update(&current, &changes, &policy));
        errors.merge(check_required_not_cleared(&changes));
        let role_names = changes.roles.take();
        let roles_sent = role_names.is_some();
        let roles = self.roles_or_errors(tenant, role_names, &mut errors).await?;
        errors.into_result()?;
        let new_hash = match password {
            Some(p) => Some(self.hash_new_password(p, &policy, password_inputs(&current), Field::Password).await?),
            None => None,
        };
        let email_changed =
            changes.email.as_ref().is_some_and(|e| e.as_ref().map(|e| e.as_str()) != current.email.as_deref());
        let email_verified_at = match email_verified {
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
            // An address the admin sets replaces a change the user was waiting to confirm.
            pending_email: changes.email.as_ref().and(current.pending_email.as_ref()).map(|_| None),
            username: changes.username,
            email: changes.email,
            phone: changes.phone,
            profile: changes.profile,
            attributes: changes.attributes.into_iter().map(|(d, v)| (d.id, v)).collect(),
            status: changes.status,
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
                actor: caller.actor(),
                tenant: Some(tenant),
                user: Some(id),
                client: Some(caller.client()),
                details: json!({"sessions_ended": true}),
            });
        }
        if (UserUpdate { password: None, ..update.clone() }).is_empty() {
            return Ok(user);
        }
        self.audit(Audit {
            action: match update.status {
                Some(UserStatus::Disabled) => AuditAction::UserDisabled,
                Some(UserStatus::Active) if update.is_status_only() => AuditAction::UserEnabled,
                _ => AuditAction::UserUpdated,
            },
            actor: caller.actor(),
            tenant: Some(tenant),
            user: Some(id),
            client: Some(caller.client()),
            details: json!({
                "fields": fields,
                "roles": roles_sent,
                "status": update.status.map(UserStatus::as_str),
                "email_verified": email_verified,
            }),
        });
        Ok(user)
    }

    /// Disables (ending every session) or re-enables a user.
    pub async fn set_user_disabled(
        &self,
        caller: &Caller,
        tenant: TenantId,
        id: UserId,
        disabled: bool,
    ) -> CoreResult<User> {
        let mut account = AccountInput::new();
        account.set_status(if disabled { UserStatus::Disabled } else { UserStatus::Active });
        self.update_user(caller, tenant, id, account, None).await
    }

    /// Deletes a user with everything they own; their sessions end.
    pub async fn delete_user(&self, caller: &Caller, tenant: TenantId, id: UserId) -> CoreResult<()> {
        caller.require(tenant, Scope::UsersManage)?;
        if !self.store.users.delete_user(tenant, id, self.now()).await? {
            return Err(CoreError::NotFound);
        }
        self.sessions.evict_user(id, None);
        self.audit(Audit {
            action: AuditAction::UserDeleted,
            actor: caller.actor(),
            tenant: Some(tenant),
            user: Some(id),
            client: Some(caller.client()),
            details: json!({}),
        });
        Ok(())
    }

    /// Whether an identifier is taken in a tenant: `login` (any identifier) or exactly one of
    /// `username`, `email`, `phone`. It reveals whether an account exists, so only a caller
    /// allowed to read the tenant's users may ask.
    pub async fn identifier_exists(
        &self,
        caller: &Caller,
        tenant: TenantId,
        [login, username, email, phone]: [Option<&str>; 4],
    ) -> CoreResult<bool> {
        caller.require(tenant, Scope::UsersRead)?;
        let key = crate::login::identifier_from_fields(login, username, email, phone)
            .map_err(|m| CoreError::field(Field::Login, m))?;
        self.tenant_policy(tenant).await?;
        let found = self.store.users.user_with_secret(tenant, &key).await?;
        // Who asked, and the answer; the identifier asked about is not recorded.
        self.audit(Audit {
            action: AuditAction::IdentifierChecked,
            actor: caller.actor(),
            tenant: Some(tenant),
            user: found.as_ref().map(|u| u.user.id),
            client: Some(caller.client()),
            details: json!({"exists": found.is_some()}),
        });
        Ok(found.is_some())
    }

    /// Ends every session of a user.
    pub async fn end_user_sessions(&self, caller: &Caller, tenant: TenantId, id: UserId) -> CoreResult<u64> {
        caller.require(tenant, Scope::UsersManage)?;
        let user = self.store.users.user(tenant, id).await?.ok_or(CoreError::NotFound)?;
        let n = self
            .store
            .sessions
            .delete_sessions_of_user(user.tenant_id, user.id, crate::store::EndSessions::All, self.now())
            .await?;
        self.sessions.evict_user(user.id, None);
        self.audit(Audit {
            action: AuditAction::UserSessionsEnded,
            actor: caller.actor(),
            tenant: Some(tenant),
            user: Some(id),
            client: Some(caller.client()),
            details: json!({"sessions_ended": n}),
        });
        Ok(n)
    }

    /// Issues a one-time log-in token for a user: random, stored hashed, single-use, valid
    /// for [`LOGIN_TOKEN_TTL`]. Exchanged for a session with [`Core::login_with_token`].
    pub async fn issue_login_token(
        &self,
        caller: &Caller,
        tenant: TenantId,
        id: UserId,
    ) -> CoreResult<IssuedLoginToken> {
        caller.require(tenant, Scope::UsersManage)?;
        let user = self.store.users.user(tenant, id).await?.ok_or(CoreError::NotFound)?;
        self.mint_login_token(caller, &user, None).await
    }

    /// Makes a one-time log-in token for `user`, for a caller whose right to one was checked.
    /// A token the exchange would refuse (the account may not log in) is not made.
    /// `second_factor`: how the user proved their second factor to the caller along with their
    /// password, so that the exchange does not ask for it again.
    pub(crate) async fn mint_login_token(
        &self,
        caller: &Caller,
        user: &User,
        second_factor: Option<crate::totp::SecondFactorMethod>,
    ) -> CoreResult<IssuedLoginToken> {
        let (tenant, id) = (user.tenant_id, user.id);
        let (_, policy) = self.tenant_policy(tenant).await?;
        may_log_in(user, &policy)?;
        let token = Token::generate(LOGIN_TOKEN_PREFIX).map_err(CoreError::internal)?;
        let now = self.now();
        let expires_at = now.plus(LOGIN_TOKEN_TTL);
        let t = NewOneTimeToken {
            tenant_id: tenant,
            user_id: id,
            purpose: TokenPurpose::Login,
            token_hash: token.hash(),
            // The password version it was issued under: a password change voids it.
            data: match second_factor {
                Some(m) => json!({"password_version": user.password_version, "second_factor": m.as_str()}),
                None => json!({"password_version": user.password_version}),
            },
            expires_at,
            now,
        };
        self.store.tokens.insert_one_time_token(&t).await?;
        self.audit(Audit {
            action: AuditAction::UserLoginTokenIssued,
            actor: caller.actor(),
            tenant: Some(tenant),
            user: Some(id),
            client: Some(caller.client()),
            details: json!({"expires_at": expires_at}),
        });
        Ok(IssuedLoginToken { token, expires_at })
    }

    /// Role names to ids, or their problems added to `errors` (`Ok(None)` when none were sent).
    async fn roles_or_errors(
        &self,
        tenant: TenantId,
        names: Option<Vec<String>>,
        errors: &mut FieldErrors,
    ) -> CoreResult<Option<Vec<RoleId>>> {
        let Some(names) = names else { return Ok(None) };
        match self.resolve_roles(tenant, &names).await {
            Ok(ids) => Ok(Some(ids)),
            Err(CoreError::Validation(f)) => {
                errors.merge(f);
                Ok(None)
            }
            Err(e) => Err(e),
        }
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
        return Err(CoreError::field(Field::Roles, format!("no such role: {}", unknown.join(", "))));
    }
    Ok(ids)
}

impl UserUpdate {
    fn is_status_only(&self) -> bool {
        self.status.is_some() && UserUpdate { status: None, ..self.clone() }.is_empty()
    }
}
