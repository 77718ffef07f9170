//! The audit log of security events: sign-ups, log-ins (succeeded and failed), log-outs,
//! password changes, administrative changes and API key use.
//!
//! Events are queued in memory and written in batches (every [`AUDIT_FLUSH_INTERVAL`], and at
//! shutdown), so that recording them adds no write, and no fsync, to a log-in. The price: a
//! crash of the machine may lose the last fraction of a second of events. The queue is
//! bounded; beyond [`AUDIT_QUEUE_LIMIT`] events (the database is down) new events are counted
//! and dropped rather than growing memory without bound.
//!
//! Nothing secret ever enters an event: callers pass identifiers, never passwords or tokens.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::caller::Caller;
use crate::error::{CoreResult, Field, FieldErrors};
use crate::ids::{ApiKeyId, TenantId, UserId};
use crate::model::{AuditEvent, Scope};
use crate::store::{AuditQuery, NewAuditEvent};
use crate::{ClientInfo, Core, MAX_PAGE};

/// How often queued events are written.
pub const AUDIT_FLUSH_INTERVAL: Duration = Duration::from_millis(250);

/// Most events held in memory while the database cannot take them.
pub const AUDIT_QUEUE_LIMIT: usize = 100_000;

/// Who did something.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A user acting on their own account (or trying to log in as one).
    User(UserId),
    /// A server holding an API key.
    Key(ApiKeyId),
    /// An operator at the command line.
    Cli,
    /// Nobody known (a failed log-in for an unknown account).
    Anonymous,
    /// The server itself (delivering mail).
    System,
}

impl Actor {
    /// The stored form: `user:ID`, `key:ID`, `cli`, `anonymous`.
    pub fn as_string(&self) -> String {
        match self {
            Self::User(id) => format!("user:{id}"),
            Self::Key(id) => format!("key:{id}"),
            Self::Cli => "cli".into(),
            Self::Anonymous => "anonymous".into(),
            Self::System => "system".into(),
        }
    }
}

macro_rules! audit_actions {
    ($( $(#[$doc:meta])* $variant:ident => $name:literal, )*) => {
        /// What happened, as recorded in the audit log. Stored and shown as its dotted name
        /// (`login.failed`); a query for `login` matches every `login.*` action.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum AuditAction { $( $(#[$doc])* $variant, )* }

        impl AuditAction {
            /// The stored name.
            pub const fn as_str(self) -> &'static str {
                match self { $( AuditAction::$variant => $name, )* }
            }
        }
    };
}

audit_actions! {
    /// A self-service sign-up.
    Signup => "signup",
    /// A log-in opened a session (or a server's credential check proved the credentials).
    LoginSucceeded => "login.succeeded",
    /// A log-in with a wrong identifier or password.
    LoginFailed => "login.failed",
    /// A right password for an account that may not log in (disabled, unverified).
    LoginRefused => "login.refused",
    /// A session ended at the user's request.
    Logout => "logout",
    /// Every session of the user ended at their request.
    LogoutAll => "logout.all",
    /// A user ended one of their sessions.
    SessionRevoked => "session.revoked",
    /// A user changed their password.
    PasswordChanged => "password.changed",
    /// A server checked a user's credentials.
    CredentialsVerified => "credentials.verified",
    /// A server asked whether an identifier is taken.
    IdentifierChecked => "user.identifier_checked",
    /// An account was created by an operator or a server.
    UserCreated => "user.created",
    /// An account was changed.
    UserUpdated => "user.updated",
    /// An account was disabled.
    UserDisabled => "user.disabled",
    /// An account was enabled again.
    UserEnabled => "user.enabled",
    /// An account was deleted.
    UserDeleted => "user.deleted",
    /// An operator or a server set a user's password.
    UserPasswordSet => "user.password_set",
    /// An operator or a server ended every session of a user.
    UserSessionsEnded => "user.sessions_ended",
    /// A one-time log-in token was issued for a user.
    UserLoginTokenIssued => "user.login_token_issued",
    /// A batch of users was imported.
    UsersImported => "users.imported",
    /// A role was defined.
    RoleCreated => "role.created",
    /// A role was deleted.
    RoleDeleted => "role.deleted",
    /// A custom attribute was defined.
    AttributeCreated => "attribute.created",
    /// A custom attribute definition was changed.
    AttributeUpdated => "attribute.updated",
    /// A custom attribute was deleted.
    AttributeDeleted => "attribute.deleted",
    /// An API key was issued.
    ApiKeyCreated => "api_key.created",
    /// An API key was used (recorded at most once a minute per key and node).
    ApiKeyUsed => "api_key.used",
    /// An API key was revoked.
    ApiKeyRevoked => "api_key.revoked",
    /// A tenant was created.
    TenantCreated => "tenant.created",
    /// A tenant was changed.
    TenantUpdated => "tenant.updated",
    /// A user set a new profile picture.
    AvatarChanged => "user.avatar_changed",
    /// A user removed their profile picture.
    AvatarRemoved => "user.avatar_removed",
    /// A legacy dialect was switched on for a tenant.
    DialectEnabled => "tenant.dialect_enabled",
    /// A legacy dialect was switched off for a tenant.
    DialectDisabled => "tenant.dialect_disabled",
    /// A tenant was disabled.
    TenantDisabled => "tenant.disabled",
    /// A tenant was enabled again.
    TenantEnabled => "tenant.enabled",
    /// Someone asked for a password reset link (for an identifier, known or not).
    PasswordResetRequested => "password.reset_requested",
    /// A password was set through a reset link.
    PasswordReset => "password.reset",
    /// Someone asked for a log-in link (for an identifier, known or not).
    LoginLinkRequested => "login.link_requested",
    /// A verification link was asked for again.
    EmailVerificationRequested => "email.verification_requested",
    /// An e-mail address was verified.
    EmailVerified => "email.verified",
    /// A user asked to change their address; the new one waits for its verification.
    EmailChangeRequested => "email.change_requested",
    /// A second factor (an authenticator app) was set up.
    SecondFactorEnabled => "second_factor.enabled",
    /// A second factor was removed by its user.
    SecondFactorDisabled => "second_factor.disabled",
    /// An operator or a server removed a user's second factor.
    SecondFactorReset => "second_factor.reset",
    /// A wrong second-factor code.
    SecondFactorFailed => "second_factor.failed",
    /// A recovery code was used.
    RecoveryCodeUsed => "second_factor.recovery_code_used",
    /// New recovery codes replaced the old ones.
    RecoveryCodesRegenerated => "second_factor.recovery_codes_regenerated",
    /// A message was delivered.
    MailSent => "mail.sent",
    /// A message was given up after its retries.
    MailFailed => "mail.failed",
}

/// The in-memory queue of events not yet written.
#[derive(Debug, Default)]
pub(crate) struct AuditQueue {
    events: Mutex<Vec<NewAuditEvent>>,
    dropped: AtomicU64,
}

impl AuditQueue {
    fn push(&self, e: NewAuditEvent) {
        let Ok(mut q) = self.events.lock() else { return };
        if q.len() >= AUDIT_QUEUE_LIMIT {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        q.push(e);
    }

    fn take(&self) -> Vec<NewAuditEvent> {
        self.events.lock().map(|mut q| std::mem::take(&mut *q)).unwrap_or_default()
    }

    // Puts events back at the front after a failed write, within the limit.
    fn restore(&self, mut batch: Vec<NewAuditEvent>) {
        let Ok(mut q) = self.events.lock() else { return };
        let room = AUDIT_QUEUE_LIMIT.saturating_sub(q.len());
        if batch.len() > room {
            self.dropped.fetch_add((batch.len() - room) as u64, Ordering::Relaxed);
            batch.truncate(room);
        }
        batch.append(&mut q);
        *q = batch;
    }
}

/// An event about to be recorded.
#[derive(Debug)]
pub struct Audit<'a> {
    /// What happened.
    pub action: AuditAction,
    /// Who did it.
    pub actor: Actor,
    /// Tenant concerned.
    pub tenant: Option<TenantId>,
    /// Account concerned.
    pub user: Option<UserId>,
    /// Where the request came from (for key and CLI actions: the caller, not the end user).
    pub client: Option<&'a ClientInfo>,
    /// More about it; never a secret.
    pub details: Value,
}

impl Core {
    /// Queues a security event. Only the core's operations record events, so that no surface
    /// can write one on their behalf.
    pub(crate) fn audit(&self, a: Audit<'_>) {
        self.audit.push(NewAuditEvent {
            tenant_id: a.tenant,
            user_id: a.user,
            actor: a.actor,
            action: a.action,
            ip: a.client.and_then(|c| c.ip),
            user_agent: a.client.and_then(ClientInfo::user_agent_truncated),
            details: with_surface(a.details, a.client.map_or("", |c| c.surface)),
            at: self.now(),
        });
    }

    /// Writes every queued event now (also called periodically and at shutdown).
    pub async fn flush_audit(&self) -> CoreResult<()> {
        let dropped = self.audit.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            tracing::error!(dropped, "audit events were dropped: the database could not take them in time");
        }
        let batch = self.audit.take();
        if batch.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.store.audit.insert_audit_events(&batch).await {
            self.audit.restore(batch);
            return Err(e.into());
        }
        Ok(())
    }

    /// Recorded events matching a query, newest first (queued events are written first, so a
    /// reader sees everything that happened before it asked). A tenant's log is for its
    /// administrators; every tenant's at once (`tenant_id` of `None`) for operators.
    /// `problems` are those the surface found reading its parameters, reported once the
    /// caller may read the log.
    pub async fn audit_events(
        &self,
        caller: &Caller,
        mut q: AuditQuery,
        problems: FieldErrors,
    ) -> CoreResult<Vec<AuditEvent>> {
        match q.tenant_id {
            Some(t) => caller.require(t, Scope::TenantAdmin)?,
            None => caller.require_operator()?,
        }
        let mut errors = problems;
        if q.limit == 0 || q.limit > MAX_PAGE {
            errors.add(Field::Param("limit"), format!("must be between 1 and {MAX_PAGE}"));
        }
        errors.into_result()?;
        if let Err(e) = self.flush_audit().await {
            tracing::warn!(error = %e, "could not write queued audit events");
        }
        q.action = q.action.filter(|a| !a.is_empty());
        Ok(self.store.audit.audit_events(&q).await?)
    }

    pub(crate) async fn flush_audit_periodically(&self) {
        let mut tick = tokio::time::interval(AUDIT_FLUSH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = self.flush_audit().await {
                tracing::warn!(error = %e, "could not write audit events; will retry");
            }
        }
    }
}

/// An event's details with the surface it came through, when known.
fn with_surface(details: Value, surface: &'static str) -> Value {
    match details {
        Value::Object(mut m) if !surface.is_empty() => {
            m.entry("surface").or_insert_with(|| Value::String(surface.to_owned()));
            Value::Object(m)
        }
        Value::Null if !surface.is_empty() => serde_json::json!({"surface": surface}),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;

    fn ev(n: i64) -> NewAuditEvent {
        NewAuditEvent {
            tenant_id: None,
            user_id: Some(UserId(n)),
            actor: Actor::Cli,
            action: AuditAction::Signup,
            ip: None,
            user_agent: None,
            details: Value::Null,
            at: Timestamp::from_unix_micros(0),
        }
    }

    #[test]
    fn the_queue_is_bounded_and_keeps_order_after_a_failed_write() {
        let q = AuditQueue::default();
        q.push(ev(1));
        q.push(ev(2));
        let batch = q.take();
        q.push(ev(3));
        q.restore(batch);
        let ids: Vec<_> = q.take().into_iter().map(|e| e.user_id.map(|u| u.0)).collect();
        assert_eq!(ids, [Some(1), Some(2), Some(3)]);
        for i in 0..AUDIT_QUEUE_LIMIT + 5 {
            q.push(ev(i as i64));
        }
        assert_eq!(q.take().len(), AUDIT_QUEUE_LIMIT);
        assert_eq!(q.dropped.load(Ordering::Relaxed), 5);
    }
}
