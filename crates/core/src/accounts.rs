//! A user's own account: signing up, reading and changing it, deleting it. (What servers and
//! operators do to accounts is [`crate::admin`].)

use serde_json::json;

use crate::auth::{AuthSession, password_inputs};
use crate::error::{CoreError, CoreResult, Field, FieldErrors};
use crate::fields::{AccountChanges, AccountInput, Editor, check_required_attributes, parse_account_fields};
use crate::ids::TenantId;
use crate::login::IssuedSession;
use crate::mail::mail_for;
use crate::model::{AttributeDefinition, MailKind, Policy, User, UserStatus};
use crate::parse::LoginKey;
use crate::password::check_strength;
use crate::profile::Profile;
use crate::secret::Password;
use crate::store::{NewUser, UserUpdate};
use crate::{ClientInfo, Core};

/// A self-service sign-up.
#[derive(Debug, Default)]
pub struct SignupCommand {
    /// Identifiers, profile fields and custom attributes.
    pub account: AccountInput,
    /// The chosen password.
    pub password: Option<Password>,
    /// The password typed a second time, if the client asks for it.
    pub password_confirmation: Option<Password>,
    /// Open no session (for clients that send credentials with every call and have no use for
    /// one); otherwise the new user is logged in when the tenant lets them in at once.
    pub no_session: bool,
}

/// The outcome of a sign-up.
#[derive(Debug)]
pub struct SignedUp {
    /// The new account.
    pub user: User,
    /// A session, unless the tenant requires a verified e-mail address before log-in.
    pub session: Option<IssuedSession>,
}

/// What a tenant's own forms ask of a user: which identifiers sign-up needs, and the custom
/// attributes users fill in themselves. Public: a sign-up page shows as much to anyone.
#[derive(Clone, Debug)]
pub struct AccountForm {
    /// Sign-up needs a username.
    pub require_username: bool,
    /// Sign-up needs an e-mail address.
    pub require_email: bool,
    /// Sign-up needs a phone number.
    pub require_phone: bool,
    /// Anyone may sign up.
    pub signup_open: bool,
    /// Users may ask for a log-in link by e-mail.
    pub passwordless_login: bool,
    /// The custom attributes users may set themselves, by name.
    pub attributes: Vec<AttributeDefinition>,
}

impl Core {
    /// What the tenant's forms ask of a user.
    pub async fn account_form(&self, tenant: TenantId) -> CoreResult<AccountForm> {
        let (_, policy) = self.tenant_policy(tenant).await?;
        let mut attributes: Vec<AttributeDefinition> = self
            .store
            .attributes
            .attribute_definitions(tenant)
            .await?
            .into_iter()
            .filter(|d| d.user_editable)
            .collect();
        attributes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(AccountForm {
            require_username: policy.require_username,
            require_email: policy.require_email,
            require_phone: policy.require_phone,
            signup_open: policy.signup_open,
            passwordless_login: policy.passwordless_login,
            attributes,
        })
    }

    /// Signs a user up and logs them in. Every field is validated and every problem reported
    /// at once; nothing is written unless everything is valid. Two concurrent sign-ups with the
    /// same identifier: the unique index lets exactly one through, the other gets
    /// [`CoreError::Conflict`].
    pub async fn signup(&self, tenant: TenantId, cmd: SignupCommand, client: &ClientInfo) -> CoreResult<SignedUp> {
        let (_, policy) = self.tenant_policy(tenant).await?;
        if !policy.signup_open {
            return Err(CoreError::SignupClosed);
        }
        // A sign-up says whether its identifiers are taken: limited per client address.
        self.limiter.check_identifier_question(self.address_key(tenant, client.ip).as_deref(), None)?;
        let defs = self.store.attributes.attribute_definitions(tenant).await?;
        let (changes, mut errors) = parse_account_fields(cmd.account, &defs, Editor::User)?;
        errors.merge(check_new_account(&changes, &defs, &policy, Editor::User));
        match (&cmd.password, &cmd.password_confirmation) {
            (None, _) => errors.add(Field::Password, "is required"),
            (Some(p), Some(c)) if p.expose() != c.expose() => {
                errors.add(Field::PasswordConfirmation, "does not match the password")
            }
            _ => {}
        }
        let Some(password) = cmd.password else { return Err(CoreError::Validation(errors)) };
        if !errors.is_empty() {
            // Report cheap password problems with the rest, without spending a hash.
            if let Err(m) = check_strength(&password, policy.password_min_length, 0, &[]) {
                errors.add(Field::Password, m);
            }
            return Err(CoreError::Validation(errors));
        }
        let status = if policy.require_verified_email && changes.email.as_ref().is_some_and(Option::is_some) {
            UserStatus::Pending
        } else {
            UserStatus::Active
        };
        let mut new = self.new_user(tenant, changes, status, None);
        new.password = Some(self.hash_new_password(password, &policy, new_user_inputs(&new), Field::Password).await?);
        // The account and the link that verifies its address commit together.
        let mut unit = self.store.database.begin().await?;
        let user = unit.insert_user(&new).await?;
        if user.email.is_some() {
            unit.enqueue_mail(&mail_for(&user, MailKind::EmailVerification, user.created_at)).await?;
        }
        unit.commit().await?;
        self.mail_queued();
        self.audit(crate::audit::Audit {
            action: crate::audit::AuditAction::Signup,
            actor: crate::audit::Actor::User(user.id),
            tenant: Some(tenant),
            user: Some(user.id),
            client: Some(client),
            details: json!({"session": !cmd.no_session && crate::login::may_log_in(&user, &policy).is_ok()}),
        });
        if cmd.no_session {
            return Ok(SignedUp { user, session: None });
        }
        let (user, session) = self.login_after_signup(user, &policy, client).await?;
        Ok(SignedUp { user, session })
    }

    /// A new account from checked fields: the profile, identifiers and attribute values (roles
    /// and a password are the caller's to add).
    pub(crate) fn new_user(
        &self,
        tenant: TenantId,
        changes: AccountChanges,
        status: UserStatus,
        email_verified_at: Option<crate::Timestamp>,
    ) -> NewUser {
        let mut profile = Profile::default();
        for c in &changes.profile {
            c.apply(&mut profile);
        }
        NewUser {
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
        }
    }

    /// The requesting user's account.
    pub async fn me(&self, auth: &AuthSession) -> CoreResult<User> {
        let s = &auth.session;
        self.store.users.user(s.tenant_id, s.user_id).await?.ok_or(CoreError::Unauthenticated)
    }

    /// Updates the requesting user's own fields. A field they may not edit is refused with
    /// [`CoreError::NotEditable`], never silently dropped. A new phone number is unverified. A
    /// new e-mail address waits in `pending_email` until it is verified (the old one stays the
    /// login address meanwhile): a link goes to it and a notice to the old address, in the
    /// same transaction as the change.
    ///
    /// A new e-mail address is a sensitive change (it would let a stolen session take the
    /// account over through a reset link): it needs `proof`, see `Core::confirm_sensitive`.
    pub async fn update_me(
        &self,
        auth: &AuthSession,
        account: AccountInput,
        proof: Option<crate::totp::Proof>,
    ) -> CoreResult<User> {
        let s = &auth.session;
        let (_, policy) = self.tenant_policy(s.tenant_id).await?;
        let defs = self.store.attributes.attribute_definitions(s.tenant_id).await?;
        let sent: Vec<String> = account.sent().iter().map(Field::name).collect();
        let (changes, mut errors) = parse_account_fields(account, &defs, Editor::User)?;
        if changes.username.is_some() || changes.email.is_some() || changes.phone.is_some() {
            // A change of identifiers says whether the new one is taken: limited per account
            // and per the address the session was opened from.
            let account = format!("{}:{}", s.tenant_id.0, s.user_id.0);
            let ip = self.address_key(s.tenant_id, s.ip);
            self.limiter.check_identifier_question(ip.as_deref(), Some(&account))?;
        }
        let current = self.me(auth).await?;
        errors.merge(check_identifiers_after_update(&current, &changes, &policy));
        errors.merge(check_required_not_cleared(&changes));
        errors.into_result()?;
        let now = self.now();
        let (email, pending_email, mail) = email_change(&current, changes.email, now);
        if let Some(Some(new)) = &pending_email {
            self.confirm_sensitive(auth, &current, proof, Field::CurrentPassword).await?;
            // Taken now: say so at once (sign-up says as much). Taken by the time it is
            // verified: the verification says so.
            let holder = self.store.users.user_with_secret(s.tenant_id, &LoginKey::email(new)).await?;
            if holder.is_some_and(|h| h.user.id != s.user_id) {
                return Err(CoreError::Conflict(crate::error::UniqueField::Email));
            }
        }
        let update = UserUpdate {
            email_verified_at: email.as_ref().map(|_| None),
            phone_verified_at: changes
                .phone
                .as_ref()
                .filter(|p| p.as_ref().map(|p| p.as_str()) != current.phone.as_deref())
                .map(|_| None),
            username: changes.username,
            email,
            phone: changes.phone,
            profile: changes.profile,
            attributes: changes.attributes.into_iter().map(|(d, v)| (d.id, v)).collect(),
            pending_email,
            status: None,
            roles: None,
            password: None,
        };
        if update.is_empty() {
            return Ok(current);
        }
        let mut unit = self.store.database.begin().await?;
        let user = unit.update_user(s.tenant_id, s.user_id, &update, now).await?.ok_or(CoreError::Unauthenticated)?;
        for m in &mail {
            unit.enqueue_mail(m).await?;
        }
        unit.commit().await?;
        if !mail.is_empty() {
            self.mail_queued();
        }
        self.audit_user(auth, crate::audit::AuditAction::UserUpdated, None, json!({"fields": sent}));
        if let Some(Some(new)) = &update.pending_email {
            let domain = new.rsplit_once('@').map(|(_, d)| d.to_owned());
            self.audit_user(auth, crate::audit::AuditAction::EmailChangeRequested, None, json!({"new_domain": domain}));
        }
        Ok(user)
    }

    /// Deletes the requesting user's account once they confirm it (their password, or a code;
    /// see `Core::confirm_sensitive`); every session of theirs ends with it.
    pub async fn delete_me(&self, auth: &AuthSession, proof: Option<crate::totp::Proof>) -> CoreResult<()> {
        let s = &auth.session;
        let user = self.me(auth).await?;
        self.confirm_sensitive(auth, &user, proof, Field::Password).await?;
        self.store.users.delete_user(s.tenant_id, s.user_id, self.now()).await?;
        self.sessions.evict_user(s.user_id, None);
        self.audit_user(auth, crate::audit::AuditAction::UserDeleted, None, json!({"by": "self"}));
        Ok(())
    }
}

/// What a self-service change of the e-mail field does: (the new login address, the new
/// pending address, the messages to send). A different address waits for its verification;
/// the current one again cancels a pending change; clearing the field clears both.
fn email_change(
    current: &User,
    change: Option<Option<crate::parse::Email>>,
    now: crate::Timestamp,
) -> (Option<Option<crate::parse::Email>>, Option<Option<String>>, Vec<crate::store::NewOutboxMessage>) {
    let Some(change) = change else { return (None, None, Vec::new()) };
    let Some(new) = change else {
        return (Some(None), current.pending_email.as_ref().map(|_| None), Vec::new());
    };
    let unchanged = current
        .email
        .as_deref()
        .and_then(|e| crate::parse::Email::parse(e).ok())
        .is_some_and(|e| e.normalized() == new.normalized());
    if unchanged {
        return (None, current.pending_email.as_ref().map(|_| None), Vec::new());
    }
    let mail = crate::verification::change_of_address_mail(current, &new, now);
    (None, Some(Some(new.as_str().to_owned())), mail)
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
        errors.add(Field::Username, "is required");
    }
    if policy.require_email && !e {
        errors.add(Field::Email, "is required");
    }
    if policy.require_phone && !p {
        errors.add(Field::Phone, "is required");
    }
    if !u && !e && !p && errors.is_empty() {
        errors.add(Field::Username, "a username, e-mail address or phone number is required");
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
        errors.add(Field::Username, "is required");
    }
    if policy.require_email && clears(&c.email, &current.email) {
        errors.add(Field::Email, "is required");
    }
    if policy.require_phone && clears(&c.phone, &current.phone) {
        errors.add(Field::Phone, "is required");
    }
    let any_left =
        after(&c.username, &current.username) || after(&c.email, &current.email) || after(&c.phone, &current.phone);
    if !any_left && errors.is_empty() {
        errors.add(Field::Username, "an account needs a username, e-mail address or phone number");
    }
    errors
}

/// A change may not remove the value of a required attribute.
pub(crate) fn check_required_not_cleared(c: &AccountChanges) -> FieldErrors {
    let mut errors = FieldErrors::new();
    for (d, v) in &c.attributes {
        if d.required && v.is_none() {
            errors.add(Field::Attribute(d.name.clone()), "is required");
        }
    }
    errors
}

/// What a new account's password should not be built from.
pub(crate) fn new_user_inputs(u: &NewUser) -> Vec<String> {
    let as_user = User {
        id: crate::UserId(0),
        tenant_id: u.tenant_id,
        username: u.username.as_ref().map(|x| x.as_str().to_owned()),
        email: u.email.as_ref().map(|x| x.as_str().to_owned()),
        email_verified_at: None,
        phone: None,
        phone_verified_at: None,
        pending_email: None,
        avatar_version: None,
        second_factor: false,
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
