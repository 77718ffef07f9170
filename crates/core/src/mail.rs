//! Mail, as the core sees it: messages queued in the outbox in the same unit of work as the
//! event that causes them, and composed when a sender delivers them. The core renders no
//! template and speaks no SMTP (that is `portcullis-mail`); it decides who gets what, and makes
//! the one-time link a message carries at the moment the message leaves, so no link ever waits
//! in the database in clear.
//!
//! A sender (`portcullis-mail`) loops: [`Core::claim_mail`] leases due messages (no other node
//! gets them meanwhile), [`Core::compose_mail`] turns one into a [`ComposedMail`] (or says it
//! needs no delivery: the account is gone, the address was verified meanwhile, too many links
//! were sent lately), and [`Core::mail_delivered`] or [`Core::mail_failed`] records the outcome,
//! retrying with back-off and giving up after [`MAIL_GIVE_UP_AFTER`] attempts.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde_json::{Value, json};

use crate::Core;
use crate::audit::{Actor, Audit, AuditAction};
use crate::clock::Timestamp;
use crate::error::{CoreError, CoreResult};
use crate::ids::TenantId;
use crate::model::{MailKind, Policy, Tenant, TokenPurpose, User, UserStatus};
use crate::parse::LoginKey;
use crate::secret::Token;
use crate::store::{NewOneTimeToken, NewOutboxMessage, OutboxMessage};

/// How long a sender holds a claimed message before another may take it.
pub const MAIL_LEASE: Duration = Duration::from_secs(5 * 60);

/// The first retry of a failed delivery waits this long; each further one twice as long...
pub const MAIL_FIRST_RETRY: Duration = Duration::from_secs(30);

/// ...up to this.
pub const MAIL_MAX_RETRY: Duration = Duration::from_secs(60 * 60);

/// After this many attempts a message is given up (about a day of retries).
pub const MAIL_GIVE_UP_AFTER: u32 = 30;

/// At most this many links of one kind go to one account per [`LINK_WINDOW`]; requests beyond
/// are answered as usual and sent nothing (so the limit tells a stranger nothing).
pub const LINKS_PER_WINDOW: u32 = 3;

/// See [`LINKS_PER_WINDOW`].
pub const LINK_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Prefix of e-mail verification tokens.
pub const VERIFICATION_TOKEN_PREFIX: &str = "pcv_";

/// Prefix of password reset tokens.
pub const RESET_TOKEN_PREFIX: &str = "pcr_";

/// What a link's token is, before it is made.
struct LinkToken {
    purpose: TokenPurpose,
    prefix: &'static str,
    ttl: Duration,
    data: Value,
}

/// The paths of the hosted pages that mail links open, below a tenant's public address. The
/// pages surface serves them; they are here so that the links and the pages cannot disagree.
pub mod links {
    /// Verifies an e-mail address (`?token=`).
    pub const VERIFY: &str = "/ui/verify";
    /// Sets a new password (`?token=`).
    pub const RESET: &str = "/ui/reset";
    /// Logs in with a log-in link (`?token=`); asks for a click before it spends the token.
    pub const LOGIN_LINK: &str = "/ui/link";
    /// The account page.
    pub const ACCOUNT: &str = "/ui/account";
    /// The log-in page.
    pub const LOGIN: &str = "/ui/login";
}

/// A message ready to render and send. `vars` are what its templates may use; they may hold a
/// link with a one-time token, so `Debug` never shows them.
#[derive(Clone)]
pub struct ComposedMail {
    /// The recipient's address.
    pub to: String,
    /// What it is (selects the templates).
    pub kind: MailKind,
    /// The tenant's slug (selects its own templates, if it has any).
    pub tenant_slug: String,
    /// Template variables: always `tenant_name` and `public_url`; by kind `link`,
    /// `expires_in` (such as `30 minutes` or `48 hours`), `name`, `new_email`, `old_email`.
    pub vars: BTreeMap<&'static str, String>,
}

impl fmt::Debug for ComposedMail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ComposedMail")
            .field("kind", &self.kind)
            .field("tenant_slug", &self.tenant_slug)
            .finish_non_exhaustive()
    }
}

/// The public address of a tenant: its own `public_url`, else the server's for the default
/// tenant and `{server}/t/{slug}` for the others. No trailing slash.
pub fn tenant_base_url(tenant: &Tenant, policy: &Policy) -> String {
    let base = match &tenant.policy.public_url {
        Some(own) => own.clone(),
        None if tenant.id == TenantId::DEFAULT => policy.public_url.clone(),
        None => format!("{}/t/{}", policy.public_url.trim_end_matches('/'), tenant.slug),
    };
    base.trim_end_matches('/').to_owned()
}

impl Core {
    /// Queues a message outside any other write (an operator's test message; requests that
    /// write nothing else). Messages caused by a write are queued in its unit of work.
    pub(crate) async fn queue_mail(&self, m: NewOutboxMessage) -> CoreResult<()> {
        self.store.outbox.enqueue_mail(&m).await?;
        self.mail_queued();
        Ok(())
    }

    /// Wakes this node's sender: a message was just queued.
    pub(crate) fn mail_queued(&self) {
        self.mail_waiting.notify_one();
    }

    /// Resolves when a message was queued on this node since the last call (a sender waits
    /// on this, and polls besides for messages queued by other nodes and retries coming due).
    pub async fn mail_waiting(&self) {
        self.mail_waiting.notified().await;
    }

    /// Leases up to `limit` due messages for delivery.
    pub async fn claim_mail(&self, limit: u32) -> CoreResult<Vec<OutboxMessage>> {
        Ok(self.store.outbox.claim_mail(self.now(), MAIL_LEASE, limit).await?)
    }

    /// Turns a claimed message into one ready to send, making its link now; `None` when it
    /// needs no delivery (the caller then calls [`Core::mail_delivered`] all the same).
    pub async fn compose_mail(&self, m: &OutboxMessage) -> CoreResult<Option<ComposedMail>> {
        let tenant = match self.tenant_policy(m.tenant_id).await {
            Ok((t, _)) => t,
            // A tenant disabled or deleted since: nothing to send for it.
            Err(CoreError::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        let policy = self.config.policy.overlay(&tenant.policy);
        let base = tenant_base_url(&tenant, &policy);
        let mut vars = BTreeMap::new();
        vars.insert("tenant_name", tenant.name.clone());
        vars.insert("public_url", base.clone());
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let (to, user) = match m.kind {
            MailKind::Test => match &m.recipient {
                Some(to) => (to.clone(), None),
                None => return Ok(None),
            },
            MailKind::EmailChanged => {
                let Some(to) = m.recipient.clone() else { return Ok(None) };
                if let Some(new) = text(&m.payload, "new_email") {
                    vars.insert("new_email", new);
                }
                vars.insert("old_email", to.clone());
                vars.insert("link", format!("{base}{}", links::ACCOUNT));
                (to, None)
            }
            MailKind::EmailVerification => {
                let Some(user) = self.mail_user(m).await? else { return Ok(None) };
                // The address to verify: the pending new one, or the login address.
                let address = match (&user.pending_email, &user.email) {
                    (Some(p), _) => p.clone(),
                    (None, Some(e)) if user.email_verified_at.is_none() => e.clone(),
                    _ => return Ok(None),
                };
                let link = LinkToken {
                    purpose: TokenPurpose::EmailVerification,
                    prefix: VERIFICATION_TOKEN_PREFIX,
                    ttl: policy.email_verification_ttl,
                    data: json!({"email": address}),
                };
                let Some(token) = self.issue_link_token(&user, m, link).await? else { return Ok(None) };
                vars.insert("link", format!("{base}{}?token={}", links::VERIFY, token.expose()));
                vars.insert("expires_in", human_duration(policy.email_verification_ttl));
                (address, Some(user))
            }
            MailKind::PasswordReset | MailKind::LoginLink => {
                let Some(user) = self.mail_user(m).await? else { return Ok(None) };
                let Some(to) = user.email.clone() else { return Ok(None) };
                if user.status == UserStatus::Disabled {
                    return Ok(None);
                }
                // The tenant may have stopped offering log-in links since the request.
                if m.kind == MailKind::LoginLink && !policy.passwordless_login {
                    return Ok(None);
                }
                let (purpose, prefix, ttl, path) = match m.kind {
                    MailKind::PasswordReset => {
                        (TokenPurpose::PasswordReset, RESET_TOKEN_PREFIX, policy.password_reset_ttl, links::RESET)
                    }
                    _ => (
                        TokenPurpose::Login,
                        crate::login::LOGIN_TOKEN_PREFIX,
                        policy.login_link_ttl,
                        links::LOGIN_LINK,
                    ),
                };
                let data = json!({"password_version": user.password_version, "email": to});
                let link = LinkToken { purpose, prefix, ttl, data };
                let Some(token) = self.issue_link_token(&user, m, link).await? else { return Ok(None) };
                vars.insert("link", format!("{base}{path}?token={}", token.expose()));
                vars.insert("expires_in", human_duration(ttl));
                (to, Some(user))
            }
        };
        if let Some(u) = &user {
            let name = u
                .profile
                .display_name
                .clone()
                .or_else(|| u.profile.first_name.clone())
                .or_else(|| u.username.clone())
                .unwrap_or_default();
            vars.insert("name", name);
        }
        Ok(Some(ComposedMail { to, kind: m.kind, tenant_slug: tenant.slug.clone(), vars }))
    }

    /// The account a message is for: by id, or by the identifier a stranger typed (looked up
    /// only now, after the request was answered, so the answer could not depend on it).
    async fn mail_user(&self, m: &OutboxMessage) -> CoreResult<Option<User>> {
        if let Some(id) = m.user_id {
            return Ok(self.store.users.user(m.tenant_id, id).await?);
        }
        let Some(login) = m.payload.get("login").and_then(Value::as_str) else { return Ok(None) };
        let key = LoginKey::from_login(login);
        Ok(self.store.users.user_with_secret(m.tenant_id, &key).await?.map(|u| u.user))
    }

    /// Makes the link a message carries. On the message's first attempt, at most
    /// [`LINKS_PER_WINDOW`] links of a purpose go to one account per [`LINK_WINDOW`] (counted
    /// and stored by one atomic step, whatever the number of nodes): `None` beyond. A retry
    /// carries a link already allowed (the links of failed attempts were never seen by anyone,
    /// and simply expire).
    async fn issue_link_token(&self, user: &User, m: &OutboxMessage, link: LinkToken) -> CoreResult<Option<Token>> {
        let token = Token::generate(link.prefix).map_err(CoreError::internal)?;
        let now = self.now();
        let t = NewOneTimeToken {
            tenant_id: user.tenant_id,
            user_id: user.id,
            purpose: link.purpose,
            token_hash: token.hash(),
            data: link.data,
            expires_at: now.plus(link.ttl),
            now,
        };
        let stored = if m.attempts > 1 {
            self.store.tokens.insert_one_time_token(&t).await.map(|()| true)
        } else {
            self.store.tokens.insert_one_time_token_within(&t, LINKS_PER_WINDOW, now.minus(LINK_WINDOW)).await
        };
        match stored {
            Ok(true) => Ok(Some(token)),
            Ok(false) => {
                tracing::info!(user = %user.id, purpose = link.purpose.as_str(), "not sending another link yet");
                Ok(None)
            }
            // The account was deleted meanwhile: nothing to send.
            Err(crate::store::StoreError::Gone) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// A claimed message was delivered (or needed no delivery): it leaves the outbox.
    pub async fn mail_delivered(&self, m: &OutboxMessage, sent: bool) -> CoreResult<()> {
        if !self.store.outbox.complete_mail(m.id, m.lease).await? {
            tracing::warn!(kind = m.kind.as_str(), "a message's lease ran out before its delivery was recorded");
        }
        if sent {
            self.audit(Audit {
                action: AuditAction::MailSent,
                actor: Actor::System,
                tenant: Some(m.tenant_id),
                user: m.user_id,
                client: None,
                details: json!({"kind": m.kind.as_str(), "attempts": m.attempts}),
            });
        }
        Ok(())
    }

    /// A claimed message could not be delivered. Unless `permanent` (the server refused the
    /// recipient), it is retried with back-off; after [`MAIL_GIVE_UP_AFTER`] attempts it is
    /// given up, kept in the outbox with its error for the operator.
    pub async fn mail_failed(&self, m: &OutboxMessage, error: &str, permanent: bool) -> CoreResult<()> {
        let now = self.now();
        let give_up = permanent || m.attempts >= MAIL_GIVE_UP_AFTER;
        let retry_at = (!give_up).then(|| now.plus(mail_backoff(m.attempts)));
        let error: String = error.chars().filter(|c| !c.is_control()).take(500).collect();
        if !self.store.outbox.fail_mail(m.id, m.lease, &error, retry_at, now).await? {
            tracing::warn!(kind = m.kind.as_str(), "a message's lease ran out before its failure was recorded");
            return Ok(());
        }
        if give_up {
            tracing::error!(kind = m.kind.as_str(), attempts = m.attempts, error = %error, "gave up delivering a message");
            self.audit(Audit {
                action: AuditAction::MailFailed,
                actor: Actor::System,
                tenant: Some(m.tenant_id),
                user: m.user_id,
                client: None,
                details: json!({"kind": m.kind.as_str(), "attempts": m.attempts, "error": error}),
            });
        } else {
            tracing::warn!(kind = m.kind.as_str(), attempts = m.attempts, error = %error, "a message will be retried");
        }
        Ok(())
    }

    /// How many messages wait for delivery, and how many were given up.
    pub async fn mail_backlog(&self, caller: &crate::Caller) -> CoreResult<(u64, u64)> {
        caller.require_operator()?;
        Ok(self.store.outbox.mail_backlog().await?)
    }

    /// A test message to `to` for an operator checking the mail settings (sent at once by
    /// the caller, not through the outbox, so that a mistake shows at once).
    pub async fn compose_test_mail(
        &self,
        caller: &crate::Caller,
        tenant: TenantId,
        to: &str,
    ) -> CoreResult<ComposedMail> {
        caller.require_operator()?;
        let to = crate::parse::Email::parse(to).map_err(|m| CoreError::field(crate::Field::Email, m))?;
        let (tenant, policy) = self.tenant_policy(tenant).await?;
        let mut vars = BTreeMap::new();
        vars.insert("tenant_name", tenant.name.clone());
        vars.insert("public_url", tenant_base_url(&tenant, &policy));
        Ok(ComposedMail { to: to.as_str().to_owned(), kind: MailKind::Test, tenant_slug: tenant.slug.clone(), vars })
    }
}

/// A link's lifetime as a person reads it: `30 minutes`, `1 hour`, `48 hours`, `7 days`.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (n, unit) = if secs >= 3 * 86_400 && secs.is_multiple_of(86_400) {
        (secs / 86_400, "day")
    } else if secs >= 3600 && secs.is_multiple_of(3600) {
        (secs / 3600, "hour")
    } else {
        ((secs / 60).max(1), "minute")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// The wait before retry number `attempts` (1 after the first failure): 30 s, 1 min, 2 min, …,
/// at most an hour.
pub fn mail_backoff(attempts: u32) -> Duration {
    let factor = 1u32.checked_shl(attempts.saturating_sub(1).min(16)).unwrap_or(u32::MAX);
    MAIL_FIRST_RETRY.saturating_mul(factor).min(MAIL_MAX_RETRY)
}

/// A message queued now for a user.
pub(crate) fn mail_for(user: &User, kind: MailKind, now: Timestamp) -> NewOutboxMessage {
    NewOutboxMessage {
        tenant_id: user.tenant_id,
        kind,
        user_id: Some(user.id),
        recipient: None,
        payload: json!({}),
        now,
    }
}

/// A message queued now for whoever `login` names in a tenant (looked up when it is sent).
pub(crate) fn mail_for_login(tenant: TenantId, kind: MailKind, login: &str, now: Timestamp) -> NewOutboxMessage {
    NewOutboxMessage { tenant_id: tenant, kind, user_id: None, recipient: None, payload: json!({"login": login}), now }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lifetimes_read_as_people_say_them() {
        use super::human_duration;
        use std::time::Duration;
        assert_eq!(human_duration(Duration::from_secs(30 * 60)), "30 minutes");
        assert_eq!(human_duration(Duration::from_secs(3600)), "1 hour");
        assert_eq!(human_duration(Duration::from_secs(48 * 3600)), "48 hours");
        assert_eq!(human_duration(Duration::from_secs(7 * 86_400)), "7 days");
        assert_eq!(human_duration(Duration::from_secs(20)), "1 minute");
    }

    use super::*;

    #[test]
    fn retries_back_off_to_an_hour() {
        assert_eq!(mail_backoff(1), Duration::from_secs(30));
        assert_eq!(mail_backoff(2), Duration::from_secs(60));
        assert_eq!(mail_backoff(5), Duration::from_secs(480));
        assert_eq!(mail_backoff(30), MAIL_MAX_RETRY);
        assert_eq!(mail_backoff(u32::MAX), MAIL_MAX_RETRY);
    }
}
