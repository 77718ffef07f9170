//! Account operations: sign-up, creating users for operators, reading, updating and deleting
//! one's own account, and the tenant's custom attribute definitions and roles.

use serde_json::{Map, Value};

use crate::audit::AuditAction;
use crate::auth::{AuthSession, IssuedSession, password_inputs};
use crate::error::{CoreError, CoreResult, FieldErrors};
use crate::fields::{AccountChanges, Editor, check_required_attributes, parse_account_fields};
use crate::ids::TenantId;
use crate::model::{AttributeDefinition, AttributeKind, Policy, Role, User, UserStatus};
use crate::password::check_strength;
use crate::profile::Profile;
use crate::secret::Password;
use crate::store::{EndSessions, NewAttributeDefinition, NewRole, NewUser, UserUpdate};
use crate::{ClientInfo, Core};

/// A self-service sign-up.
#[derive(Debug)]
pub struct SignupCommand {
    /// Identifiers, profile fields and `attributes`, in native names.
    pub fields: Map<String, Value>,
    /// The chosen password.
    pub password: Option<Password>,
    /// The password typed a second time, if the client asks for it.
    pub password_confirmation: Option<Password>,
}

/// A user created by an operator (CLI) or, later, the admin API.
#[derive(Debug)]
pub struct CreateUserCommand {
    /// Identifiers, profile fields and `attributes`, in native names.
    pub fields: Map<String, Value>,
    /// Initial password, if any.
    pub password: Option<Password>,
    /// Whether the e-mail address is known to be verified.
    pub email_verified: bool,
    /// Roles to grant, by name.
    pub roles: Vec<String>,
    /// Initial status (active when absent).
    pub status: Option<UserStatus>,
}

/// The outcome of a sign-up.
#[derive(Debug)]
pub struct SignedUp {
    /// The new account.
    pub user: User,
    /// A session, unless the tenant requires a verified e-mail address before log-in.
    pub session: Option<IssuedSession>,
}

impl Core {
    /// Signs a user up and logs them in. Every field is validated and every problem reported
    /// at once; nothing is written unless everything is valid. Two concurrent sign-ups with the
    /// same identifier: the unique index lets exactly one through, the other gets
    /// [`CoreError::Conflict`].
    pub async fn signup(&self, tenant: TenantId, cmd: SignupCommand, client: &ClientInfo) -> CoreResult<SignedUp> {
        let (_, policy) = self.tenant_policy(tenant).await?;
        if !policy.signup_open {
            return Err(CoreError::SignupClosed);
        }
        let defs = self.store.attributes.attribute_definitions(tenant).await?;
        let (changes, mut errors) = parse_account_fields(&cmd.fields, &defs, Editor::User)?;
        errors.merge(check_new_account(&changes, &defs, &policy, Editor::User));
        match (&cmd.password, &cmd.password_confirmation) {
            (None, _) => errors.add("password", "is required"),
            (Some(p), Some(c)) if p.expose() != c.expose() => {
                errors.add("password_confirmation", "does not match the password")
            }
            _ => {}
        }
        let Some(password) = cmd.password else { return Err(CoreError::Validation(errors)) };
        if !errors.is_empty() {
            // Report cheap password problems with the rest, without spending a hash.
            if let Err(m) = check_strength(&password, policy.password_min_length, 0, &[]) {
                errors.add("password", m);
            }
            return Err(CoreError::Validation(errors));
        }
        let status = if policy.require_verified_email && changes.email.as_ref().is_some_and(Option::is_some) {
            UserStatus::Pending
        } else {
            UserStatus::Active
        };
        let new = self.new_user(tenant, changes, status, None)?;
        let hash = match self.hasher.check_and_hash(password, &policy, new_user_inputs(&new)).await? {
            Ok(h) => h,
            Err(m) => return Err(CoreError::field("password", m)),
        };
        let mut user = self.store.users.insert_user(&NewUser { password: Some(hash), ..new }).await?;
        let session = match self.ensure_may_log_in(&user, &policy) {
            Ok(()) => Some(self.open_session(&user, &policy, client).await?),
            Err(_) => None,
        };
        if let Some(s) = &session {
            user.last_login_at = Some(s.session.created_at);
        }
        self.audit(crate::audit::Audit {
            action: AuditAction::Signup,
            actor: crate::audit::Actor::User(user.id),
            tenant: Some(tenant),
            user: Some(user.id),
            client: Some(client),
            details: serde_json::json!({"session": session.is_some()}),
        });
        Ok(SignedUp { user, session })
    }

    /// Creates a user on an operator's behalf: the same validation as sign-up, any attribute,
    /// and sign-up need not be open.
    pub async fn create_user(&self, tenant: TenantId, cmd: CreateUserCommand) -> CoreResult<User> {
        let (_, policy) = self.tenant_policy(tenant).await?;
        let defs = self.store.attributes.attribute_definitions(tenant).await?;
        let (changes, mut errors) = parse_account_fields(&cmd.fields, &defs, Editor::Admin)?;
        errors.merge(check_new_account(&changes, &defs, &policy, Editor::Admin));
        let roles = match self.resolve_roles(tenant, &cmd.roles).await {
            Ok(r) => r,
            Err(CoreError::Validation(f)) => {
                errors.merge(f);
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        errors.into_result()?;
        let verified = cmd.email_verified.then(|| self.now());
        let mut new = self.new_user(tenant, changes, cmd.status.unwrap_or(UserStatus::Active), verified)?;
        new.roles = roles;
        let password = match cmd.password {
            Some(p) => match self.hasher.check_and_hash(p, &policy, new_user_inputs(&new)).await? {
                Ok(h) => Some(h),
                Err(m) => return Err(CoreError::field("password", m)),
            },
            None => None,
        };
        Ok(self.store.users.insert_user(&NewUser { password, ..new }).await?)
    }

    pub(crate) fn new_user(
        &self,
        tenant: TenantId,
        changes: AccountChanges,
        status: UserStatus,
        email_verified_at: Option<crate::Timestamp>,
    ) -> CoreResult<NewUser> {
        let mut profile = Profile::default();
        for c in &changes.profile {
            c.apply(&mut profile);
        }
        Ok(NewUser {
            tenant_id: tenant,
            username: changes.username.flatten(),
            email: changes.email.flatten(),
            email_verified_at,
            phone: changes.phone.flatten(),
            password: None,
            status,
            profile,
            attributes: changes.attributes.into_iter().filter_map(|(d, v)| v.map(|v| (d.id, v))).collect(),
            roles: Vec::new(),
            now: self.now(),
        })
    }

    /// The requesting user's account.
    pub async fn me(&self, auth: &AuthSession) -> CoreResult<User> {
        let s = &auth.session;
        self.store.users.user(s.tenant_id, s.user_id).await?.ok_or(CoreError::Unauthenticated)
    }

    /// Updates the requesting user's own fields. A field they may not edit is refused with
    /// [`CoreError::NotEditable`], never silently dropped. A new e-mail address or phone number
    /// is unverified.
    pub async fn update_me(&self, auth: &AuthSession, fields: Map<String, Value>) -> CoreResult<User> {
        let s = &auth.session;
        let (_, policy) = self.tenant_policy(s.tenant_id).await?;
        let defs = self.store.attributes.attribute_definitions(s.tenant_id).await?;
        let (changes, mut errors) = parse_account_fields(&fields, &defs, Editor::User)?;
        let current = self.me(auth).await?;
        errors.merge(check_identifiers_after_update(&current, &changes, &policy));
        for (d, v) in &changes.attributes {
            if d.required && v.is_none() {
                errors.add(format!("attributes.{}", d.name), "is required");
            }
        }
        errors.into_result()?;
        let update = UserUpdate {
            email_verified_at: changes
                .email
                .as_ref()
                .filter(|e| e.as_ref().map(|e| e.as_str()) != current.email.as_deref())
                .map(|_| None),
            phone_verified_at: changes
                .phone
                .as_ref()
                .filter(|p| p.as_ref().map(|p| p.as_str()) != current.phone.as_deref())
                .map(|_| None),
            username: changes.username,
            email: changes.email,
            phone: changes.phone,
            profile: changes.profile,
            attributes: changes.attributes.into_iter().map(|(d, v)| (d.id, v)).collect(),
            status: None,
            roles: None,
            password: None,
        };
        if update.is_empty() {
            return Ok(current);
        }
        let user = self
            .store
            .users
            .update_user(s.tenant_id, s.user_id, &update, self.now())
            .await?
            .ok_or(CoreError::Unauthenticated)?;
        let changed: Vec<&String> = fields.keys().collect();
        self.audit_user(auth, AuditAction::UserUpdated, None, serde_json::json!({"fields": changed}));
        Ok(user)
    }

    /// Deletes the requesting user's account after checking their password; every session of
    /// theirs ends with it.
    pub async fn delete_me(&self, auth: &AuthSession, password: Password) -> CoreResult<()> {
        let s = &auth.session;
        self.confirm_password(auth, password).await?;
        self.store.users.delete_user(s.tenant_id, s.user_id, self.now()).await?;
        self.sessions.evict_user(s.user_id, None);
        self.audit_user(auth, AuditAction::UserDeleted, None, serde_json::json!({"by": "self"}));
        Ok(())
    }

    /// Defines a custom attribute for a tenant's users.
    pub async fn define_attribute(
        &self,
        tenant: TenantId,
        name: &str,
        kind: AttributeKind,
        required: bool,
        user_editable: bool,
    ) -> CoreResult<AttributeDefinition> {
        let name = name.trim();
        let ok = !name.is_empty()
            && name.len() <= 64
            && name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !ok {
            return Err(CoreError::field(
                "name",
                "must be 1 to 64 letters, digits, '_' or '-', starting with a letter",
            ));
        }
        self.tenant_policy(tenant).await?;
        let d = NewAttributeDefinition {
            tenant_id: tenant,
            name: name.to_owned(),
            kind,
            required,
            user_editable,
            now: self.now(),
        };
        Ok(self.store.attributes.insert_attribute_definition(&d).await?)
    }

    /// Defines a role in a tenant.
    pub async fn create_role(&self, tenant: TenantId, name: &str, description: Option<&str>) -> CoreResult<Role> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err(CoreError::field("name", "must be 1 to 64 characters"));
        }
        let description = description.map(str::trim).filter(|d| !d.is_empty());
        if description.is_some_and(|d| d.chars().count() > 500 || d.chars().any(|c| c.is_control() && c != '\n')) {
            return Err(CoreError::field("description", "must be at most 500 characters, without control characters"));
        }
        self.tenant_policy(tenant).await?;
        let r = NewRole {
            tenant_id: tenant,
            name: name.to_owned(),
            description: description.map(str::to_owned),
            now: self.now(),
        };
        Ok(self.store.roles.insert_role(&r).await?)
    }

    /// Ends every session of a user (for operators; the admin API and CLI build on it).
    pub async fn end_all_sessions(&self, user: &User) -> CoreResult<u64> {
        let n =
            self.store.sessions.delete_sessions_of_user(user.tenant_id, user.id, EndSessions::All, self.now()).await?;
        self.sessions.evict_user(user.id, None);
        Ok(n)
    }
}

/// The identifier rules for a new account, plus required attributes.
pub(crate) fn check_new_account(
    changes: &AccountChanges,
    defs: &[AttributeDefinition],
    policy: &Policy,
    editor: Editor,
) -> FieldErrors {
    let mut errors = check_required_attributes(changes, defs, editor);
    fn has<T>(f: &Option<Option<T>>) -> bool {
        f.as_ref().is_some_and(Option::is_some)
    }
    let (u, e, p) = (has(&changes.username), has(&changes.email), has(&changes.phone));
    if policy.require_username && !u {
        errors.add("username", "is required");
    }
    if policy.require_email && !e {
        errors.add("email", "is required");
    }
    if policy.require_phone && !p {
        errors.add("phone", "is required");
    }
    if !u && !e && !p && errors.is_empty() {
        errors.add("username", "a username, e-mail address or phone number is required");
    }
    errors
}

/// An update may not remove an identifier the tenant requires, nor the last one. (An account
/// that predates a policy change and lacks an identifier is not locked out of other changes.)
pub(crate) fn check_identifiers_after_update(current: &User, c: &AccountChanges, policy: &Policy) -> FieldErrors {
    fn clears<T>(change: &Option<Option<T>>, now: &Option<String>) -> bool {
        matches!(change, Some(None)) && now.is_some()
    }
    fn after<T>(change: &Option<Option<T>>, now: &Option<String>) -> bool {
        match change {
            Some(v) => v.is_some(),
            None => now.is_some(),
        }
    }
    let mut errors = FieldErrors::new();
    if policy.require_username && clears(&c.username, &current.username) {
        errors.add("username", "is required");
    }
    if policy.require_email && clears(&c.email, &current.email) {
        errors.add("email", "is required");
    }
    if policy.require_phone && clears(&c.phone, &current.phone) {
        errors.add("phone", "is required");
    }
    let any_left =
        after(&c.username, &current.username) || after(&c.email, &current.email) || after(&c.phone, &current.phone);
    if !any_left && errors.is_empty() {
        errors.add("username", "an account needs a username, e-mail address or phone number");
    }
    errors
}

fn new_user_inputs(u: &NewUser) -> Vec<String> {
    let as_user = User {
        id: crate::UserId(0),
        tenant_id: u.tenant_id,
        username: u.username.as_ref().map(|x| x.as_str().to_owned()),
        email: u.email.as_ref().map(|x| x.as_str().to_owned()),
        email_verified_at: None,
        phone: None,
        phone_verified_at: None,
        status: u.status,
        profile: u.profile.clone(),
        attributes: Default::default(),
        roles: Vec::new(),
        created_at: u.now,
        updated_at: u.now,
        last_login_at: None,
        password_changed_at: None,
        password_version: 0,
    };
    password_inputs(&as_user)
}
