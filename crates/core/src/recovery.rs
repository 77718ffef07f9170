//! A forgotten password, and log-in links by e-mail.
//!
//! A request names an identifier (username, e-mail address or phone number) and always gets
//! the same answer after the same work, whether or not an account has it: nothing is looked
//! up while the request is answered. The request queues a message for "whoever this identifier
//! names"; the sender looks the account up later, and sends a link only if there is one (see
//! [`crate::mail`]). No password is ever sent by e-mail: the link lets the user set one.
//!
//! A reset link's token is random (256 bits), stored as its SHA-256, works once, expires after
//! the tenant's `password_reset_ttl` (30 minutes by default), and dies with any change of
//! password. Setting a password through it ends every session of the user and spends every
//! other reset link of theirs, in one transaction.

use serde_json::{Value, json};

use crate::audit::{Actor, Audit, AuditAction};
use crate::auth::password_inputs;
use crate::caller::Caller;
use crate::error::{CoreError, CoreResult, Field};
use crate::ids::{TenantId, UserId};
use crate::mail::{RESET_TOKEN_PREFIX, mail_for, mail_for_login};
use crate::model::{MailKind, Scope, TokenPurpose, User, UserStatus};
use crate::parse::Email;
use crate::secret::{Password, Token};
use crate::store::{EndSessions, PasswordChange, UserUpdate, UserWithSecret};
use crate::{ClientInfo, Core};

/// Longest identifier a recovery request takes, in characters (an e-mail address may be 254).
pub const MAX_IDENTIFIER_CHARS: usize = 320;

/// Checks the identifier of a request by identifier: present and of a sane length.
pub(crate) fn identifier(login: &str) -> CoreResult<&str> {
    let login = login.trim();
    if login.is_empty() {
        return Err(CoreError::field(Field::Login, "is required"));
    }
    if login.chars().count() > MAX_IDENTIFIER_CHARS || login.chars().any(char::is_control) {
        return Err(CoreError::field(Field::Login, "is not a username, e-mail address or phone number"));
    }
    Ok(login)
}

impl Core {
    /// Counts a request by identifier against the client's budget and the identifier's (the
    /// log-in limits, keyed on the identifier as typed: the same for accounts that do not
    /// exist), so that nobody floods the outbox or one person's mailbox.
    pub(crate) fn limit_request_by_identifier(
        &self,
        tenant: TenantId,
        login: &str,
        client: &ClientInfo,
    ) -> CoreResult<()> {
        let ip = self.address_key(tenant, client.ip);
        let key = format!("{}:mail:{}", tenant.0, crate::parse::LoginKey::from_login(login).limiter_key());
        self.limiter.check(ip.as_deref(), &key)
    }

    /// Asks for a password reset link for whoever `login` names in the tenant. The same answer,
    /// after the same work, whether or not the account exists.
    pub async fn request_password_reset(&self, tenant: TenantId, login: &str, client: &ClientInfo) -> CoreResult<()> {
        self.tenant_policy(tenant).await?;
        let login = identifier(login)?;
        self.limit_request_by_identifier(tenant, login, client)?;
        self.queue_mail(mail_for_login(tenant, MailKind::PasswordReset, login, self.now())).await?;
        // Neither the identifier typed nor whether it names anyone is recorded.
        self.audit(Audit {
            action: AuditAction::PasswordResetRequested,
            actor: Actor::Anonymous,
            tenant: Some(tenant),
            user: None,
            client: Some(client),
            details: json!({}),
        });
        Ok(())
    }

    /// Sets a new password with a reset link's token. Every session of the user ends, and every
    /// other reset link of theirs stops working; the address the link was sent to is verified
    /// by the same stroke. A token that is unknown, used, expired, of another tenant, or older
    /// than the last change of password is [`CoreError::InvalidToken`]; a password the policy
    /// refuses is a field error, and leaves the token usable.
    pub async fn reset_password(
        &self,
        tenant: TenantId,
        token: &Token,
        new: Password,
        confirmation: Option<Password>,
        client: &ClientInfo,
    ) -> CoreResult<User> {
        if confirmation.is_some_and(|c| c.expose() != new.expose()) {
            return Err(CoreError::field(Field::PasswordConfirmation, "does not match the password"));
        }
        let (_, policy) = self.tenant_policy(tenant).await?;
        if !token.has_shape(RESET_TOKEN_PREFIX) {
            return Err(CoreError::InvalidToken);
        }
        let hash = token.hash();
        let found = self.store.tokens.peek_one_time_token(&hash, TokenPurpose::PasswordReset, self.now()).await?;
        let Some(found) = found.filter(|c| c.tenant_id == tenant) else { return Err(CoreError::InvalidToken) };
        let current = self.store.users.user_with_secret_by_id(tenant, found.user_id).await?;
        let Some(UserWithSecret { user, password_hash: current_hash }) = current else {
            return Err(CoreError::InvalidToken);
        };
        if found.data.get("password_version").and_then(Value::as_i64) != Some(user.password_version) {
            return Err(CoreError::InvalidToken);
        }
        // The costly, refusable part first: a weak password costs the user no link.
        let new_hash = self.hash_new_password(new, &policy, password_inputs(&user), Field::Password).await?;
        let now = self.now();
        let mut unit = self.store.database.begin().await?;
        let consumed = unit.consume_one_time_token(&hash, TokenPurpose::PasswordReset, now).await?;
        if consumed.is_none_or(|c| c.user_id != user.id) {
            // Another request used it first.
            return Err(CoreError::InvalidToken);
        }
        // Only over the password the link was checked against: a change of password made
        // while this one was being hashed wins, and the link dies with it.
        let change = PasswordChange {
            hash: new_hash,
            expected_current: current_hash,
            end_sessions: EndSessions::All,
            is_new_password: true,
            now,
        };
        if !unit.set_password_hash(tenant, user.id, &change).await? {
            return Err(CoreError::InvalidToken);
        }
        unit.delete_one_time_tokens(tenant, user.id, TokenPurpose::PasswordReset).await?;
        // The link went to the address in its data: following it proves the user reads it,
        // if that is still the account's address.
        let sent_to = found.data.get("email").and_then(Value::as_str).and_then(|e| Email::parse(e).ok());
        let same = |a: Option<&str>| {
            a.and_then(|a| Email::parse(a).ok())
                .zip(sent_to.as_ref())
                .is_some_and(|(a, b)| a.normalized() == b.normalized())
        };
        if user.email_verified_at.is_none() && same(user.email.as_deref()) {
            let verified = UserUpdate {
                email_verified_at: Some(Some(now)),
                status: (user.status == UserStatus::Pending).then_some(UserStatus::Active),
                ..Default::default()
            };
            unit.update_user(tenant, user.id, &verified, now).await?;
        }
        unit.commit().await?;
        self.sessions.evict_user(user.id, None);
        self.audit(Audit {
            action: AuditAction::PasswordReset,
            actor: Actor::User(user.id),
            tenant: Some(tenant),
            user: Some(user.id),
            client: Some(client),
            details: json!({"sessions_ended": true}),
        });
        self.store.users.user(tenant, user.id).await?.ok_or(CoreError::InvalidToken)
    }

    /// Asks for a log-in link for whoever `login` names, where the tenant allows password-less
    /// log-in: the same answer whether or not the account exists. The link is a one-time
    /// log-in token, exchanged by [`Core::login_with_token`].
    pub async fn request_login_link(&self, tenant: TenantId, login: &str, client: &ClientInfo) -> CoreResult<()> {
        let (_, policy) = self.tenant_policy(tenant).await?;
        if !policy.passwordless_login {
            return Err(CoreError::Forbidden("Log-in links are not offered here."));
        }
        let login = identifier(login)?;
        self.limit_request_by_identifier(tenant, login, client)?;
        self.queue_mail(mail_for_login(tenant, MailKind::LoginLink, login, self.now())).await?;
        self.audit(Audit {
            action: AuditAction::LoginLinkRequested,
            actor: Actor::Anonymous,
            tenant: Some(tenant),
            user: None,
            client: Some(client),
            details: json!({}),
        });
        Ok(())
    }

    /// [`Core::request_password_reset`] on behalf of a server holding a key with
    /// `credentials:verify`, for the legacy APIs that offer it to API callers only (Siberian's
    /// `forgotpassword`): the same answer, after the same work, whether or not the account
    /// exists. `client` is the end user's, as far as the server tells.
    pub async fn request_password_reset_as(
        &self,
        caller: &Caller,
        tenant: TenantId,
        login: &str,
        client: &ClientInfo,
    ) -> CoreResult<()> {
        caller.require(tenant, Scope::CredentialsVerify)?;
        self.request_password_reset(tenant, login, client).await
    }

    /// Sends a user a password reset link, for an operator or a server (`users:manage`).
    pub async fn send_password_reset(&self, caller: &Caller, tenant: TenantId, id: UserId) -> CoreResult<()> {
        caller.require(tenant, Scope::UsersManage)?;
        self.tenant_policy(tenant).await?;
        let user = self.store.users.user(tenant, id).await?.ok_or(CoreError::NotFound)?;
        if user.email.as_deref().and_then(|e| Email::parse(e).ok()).is_none() {
            return Err(CoreError::field(Field::Email, "the user has no e-mail address to send a link to"));
        }
        self.queue_mail(mail_for(&user, MailKind::PasswordReset, self.now())).await?;
        self.audit(Audit {
            action: AuditAction::PasswordResetRequested,
            actor: caller.actor(),
            tenant: Some(tenant),
            user: Some(id),
            client: Some(caller.client()),
            details: json!({"by": "admin"}),
        });
        Ok(())
    }
}
