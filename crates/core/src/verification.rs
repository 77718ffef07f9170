//! E-mail verification: a link sent at sign-up, on a change of address and on request; and a
//! change of address that waits for its verification.
//!
//! A user who changes their address keeps logging in with the old one until the new one is
//! verified: the new address waits in `pending_email`, a verification link goes to it, and the
//! old address is told of the change. The change needs the password (or a code, see
//! `Core::confirm_sensitive`), and an address another account holds is refused at once (as
//! sign-up does); one taken by the time the link is followed is refused then.
//!
//! Following a link marks the address verified (a pending one becomes the login address) and
//! lets a pending account in. Links expire after the tenant's `email_verification_ttl` (48
//! hours by default); at most [`crate::mail::LINKS_PER_WINDOW`] go to one account per
//! quarter of an hour, however often they are asked for.

use serde_json::{Value, json};

use crate::audit::{Actor, Audit, AuditAction};
use crate::auth::AuthSession;
use crate::caller::Caller;
use crate::error::{CoreError, CoreResult, Field};
use crate::ids::{TenantId, UserId};
use crate::mail::{VERIFICATION_TOKEN_PREFIX, mail_for, mail_for_login};
use crate::model::{MailKind, Scope, TokenPurpose, User, UserStatus};
use crate::parse::Email;
use crate::secret::Token;
use crate::store::{NewOutboxMessage, UserUpdate};
use crate::{ClientInfo, Core};

impl Core {
    /// Verifies an e-mail address with a link's token. The address the link was sent to must
    /// still be the account's login address or its pending new one (which then becomes the
    /// login address: [`CoreError::Conflict`] if another account took it meanwhile). A token
    /// that is unknown, used, expired or stale is [`CoreError::InvalidToken`].
    pub async fn verify_email(&self, tenant: TenantId, token: &Token, client: &ClientInfo) -> CoreResult<User> {
        self.tenant_policy(tenant).await?;
        if !token.has_shape(VERIFICATION_TOKEN_PREFIX) {
            return Err(CoreError::InvalidToken);
        }
        let now = self.now();
        let hash = token.hash();
        let found = self.store.tokens.peek_one_time_token(&hash, TokenPurpose::EmailVerification, now).await?;
        let Some(found) = found.filter(|c| c.tenant_id == tenant) else { return Err(CoreError::InvalidToken) };
        let user = self.store.users.user(tenant, found.user_id).await?.ok_or(CoreError::InvalidToken)?;
        let Some(address) = found.data.get("email").and_then(Value::as_str).and_then(|a| Email::parse(a).ok()) else {
            return Err(CoreError::InvalidToken);
        };
        let same = |a: Option<&str>| {
            a.and_then(|a| Email::parse(a).ok()).is_some_and(|a| a.normalized() == address.normalized())
        };
        let status = (user.status == UserStatus::Pending).then_some(UserStatus::Active);
        let update = if same(user.pending_email.as_deref()) {
            UserUpdate {
                email: Some(Some(address.clone())),
                email_verified_at: Some(Some(now)),
                pending_email: Some(None),
                status,
                ..Default::default()
            }
        } else if same(user.email.as_deref()) {
            if user.email_verified_at.is_some() && status.is_none() {
                // Already verified: the link did its work before. Spend it all the same.
                UserUpdate { email_verified_at: Some(user.email_verified_at), ..Default::default() }
            } else {
                UserUpdate { email_verified_at: Some(Some(now)), status, ..Default::default() }
            }
        } else {
            return Err(CoreError::InvalidToken);
        };
        let mut unit = self.store.database.begin().await?;
        if unit.consume_one_time_token(&hash, TokenPurpose::EmailVerification, now).await?.is_none() {
            return Err(CoreError::InvalidToken);
        }
        let verified = unit.update_user(tenant, user.id, &update, now).await?.ok_or(CoreError::InvalidToken)?;
        unit.delete_one_time_tokens(tenant, user.id, TokenPurpose::EmailVerification).await?;
        unit.commit().await?;
        self.audit(Audit {
            action: AuditAction::EmailVerified,
            actor: Actor::User(user.id),
            tenant: Some(tenant),
            user: Some(user.id),
            client: Some(client),
            details: json!({"changed": update.email.is_some()}),
        });
        Ok(verified)
    }

    /// Sends the signed-in user a verification link again (for their pending new address, or
    /// their unverified login address).
    pub async fn resend_verification(&self, auth: &AuthSession) -> CoreResult<()> {
        let user = self.me(auth).await?;
        let unverified = user.email.is_some() && user.email_verified_at.is_none();
        if user.pending_email.is_none() && !unverified {
            return Err(CoreError::field(Field::Email, "is verified already"));
        }
        self.queue_mail(mail_for(&user, MailKind::EmailVerification, self.now())).await?;
        self.audit_user(auth, AuditAction::EmailVerificationRequested, None, json!({}));
        Ok(())
    }

    /// Asks for a verification link by identifier, for a user who cannot log in until their
    /// address is verified: the same answer whether or not the account exists, and a link only
    /// for an account with an address to verify.
    pub async fn request_verification(&self, tenant: TenantId, login: &str, client: &ClientInfo) -> CoreResult<()> {
        self.tenant_policy(tenant).await?;
        let login = crate::recovery::identifier(login)?;
        self.limit_request_by_identifier(tenant, login, client)?;
        self.queue_mail(mail_for_login(tenant, MailKind::EmailVerification, login, self.now())).await?;
        self.audit(Audit {
            action: AuditAction::EmailVerificationRequested,
            actor: Actor::Anonymous,
            tenant: Some(tenant),
            user: None,
            client: Some(client),
            details: json!({}),
        });
        Ok(())
    }

    /// Sends a user a verification link, for an operator or a server (`users:manage`).
    pub async fn send_verification(&self, caller: &Caller, tenant: TenantId, id: UserId) -> CoreResult<()> {
        caller.require(tenant, Scope::UsersManage)?;
        self.tenant_policy(tenant).await?;
        let user = self.store.users.user(tenant, id).await?.ok_or(CoreError::NotFound)?;
        let unverified = user.email.is_some() && user.email_verified_at.is_none();
        if user.pending_email.is_none() && !unverified {
            return Err(CoreError::field(Field::Email, "the user has no unverified address"));
        }
        self.queue_mail(mail_for(&user, MailKind::EmailVerification, self.now())).await?;
        self.audit(Audit {
            action: AuditAction::EmailVerificationRequested,
            actor: caller.actor(),
            tenant: Some(tenant),
            user: Some(id),
            client: Some(caller.client()),
            details: json!({"by": "admin"}),
        });
        Ok(())
    }
}

/// The messages a self-service change of address sends: a verification link to the new
/// address, and a notice to the old one.
pub(crate) fn change_of_address_mail(user: &User, new: &Email, now: crate::Timestamp) -> Vec<NewOutboxMessage> {
    let mut out = vec![mail_for(user, MailKind::EmailVerification, now)];
    if let Some(old) = &user.email {
        out.push(NewOutboxMessage {
            tenant_id: user.tenant_id,
            kind: MailKind::EmailChanged,
            user_id: Some(user.id),
            recipient: Some(old.clone()),
            payload: json!({"new_email": new.as_str()}),
            now,
        });
    }
    out
}
