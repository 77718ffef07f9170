//! Logging in and out, checking sessions, listing and ending them, and changing a password.

use std::sync::Arc;

use serde_json::json;

use crate::audit::{Actor, Audit, AuditAction};
use crate::clock::Timestamp;
use crate::error::{CoreError, CoreResult, FieldErrors};
use crate::ids::{SessionId, TenantId};
use crate::model::{Policy, Session, User, UserStatus};
use crate::parse::LoginKey;
use crate::secret::{Password, Token, TokenHash};
use crate::sessions::CachedSession;
use crate::store::{EndSessions, NewSession, PasswordChange, StoreError, UserWithSecret};
use crate::{ClientInfo, Core};

/// Prefix of session tokens.
pub const SESSION_TOKEN_PREFIX: &str = "pcs_";

/// A log-in attempt.
#[derive(Debug)]
pub struct LoginCommand {
    /// Who is logging in.
    pub identifier: LoginKey,
    /// Their password.
    pub password: Password,
}

impl LoginCommand {
    /// Builds a command from the usual wire fields: either a free-form `login` or exactly one
    /// of `username`, `email` and `phone`, and a password.
    pub fn from_fields(
        login: Option<&str>,
        username: Option<&str>,
        email: Option<&str>,
        phone: Option<&str>,
        password: Option<Password>,
    ) -> CoreResult<Self> {
        let mut errors = FieldErrors::new();
        let identifier = identifier_from_fields(login, username, email, phone).map_err(|m| errors.add("login", m)).ok();
        let password = password.filter(|p| !p.expose().is_empty());
        if password.is_none() {
            errors.add("password", "is required");
        }
        match (identifier, password) {
            (Some(identifier), Some(password)) if errors.is_empty() => Ok(Self { identifier, password }),
            _ => Err(CoreError::Validation(errors)),
        }
    }
}

/// The identifier of the usual wire fields: either a free-form `login` (matched against
/// username, e-mail and phone) or exactly one of `username`, `email` and `phone`. The error is
/// the message for the `login` field.
pub fn identifier_from_fields(
    login: Option<&str>,
    username: Option<&str>,
    email: Option<&str>,
    phone: Option<&str>,
) -> Result<LoginKey, &'static str> {
    let given: Vec<(&str, &str)> = [("login", login), ("username", username), ("email", email), ("phone", phone)]
        .into_iter()
        .filter_map(|(k, v)| v.filter(|v| !v.trim().is_empty()).map(|v| (k, v)))
        .collect();
    match given.as_slice() {
        [("login", v)] => Ok(LoginKey::from_login(v)),
        [("username", v)] => Ok(LoginKey::username(v)),
        [("email", v)] => Ok(LoginKey::email(v)),
        [("phone", v)] => Ok(LoginKey::phone(v)),
        [] => Err("is required (or one of username, email, phone)"),
        _ => Err("give only one of login, username, email, phone"),
    }
}

/// A session just opened: the token is shown to the client once and never again.
#[derive(Debug)]
pub struct IssuedSession {
    /// The bearer token.
    pub token: Token,
    /// The session record.
    pub session: Session,
}

/// A request authenticated by a session.
#[derive(Clone, Debug)]
pub struct AuthSession {
    /// The session (last-seen time as known on this node).
    pub session: Session,
    /// Hash of the token that authenticated the request.
    pub token_hash: TokenHash,
}

impl Core {
    /// Logs a user in with a password and opens a session.
    ///
    /// Every failure before the password is known to be right — unknown account, account
    /// without a password, wrong password — is the same [`CoreError::InvalidCredentials`], after
    /// the same amount of hashing work.
    pub async fn login(
        &self,
        tenant: TenantId,
        cmd: LoginCommand,
        client: &ClientInfo,
    ) -> CoreResult<(User, IssuedSession)> {
        let (_, policy) = self.tenant_policy(tenant).await?;
        let user = self.check_password(tenant, &cmd.identifier, cmd.password, client).await?;
        self.finish_login(user, &policy, client, "password").await
    }

    /// The end of every log-in once the user is known: refuses accounts that may not log in
    /// (audited), opens the session, and records the success with how it was made.
    pub(crate) async fn finish_login(
        &self,
        mut user: User,
        policy: &Policy,
        client: &ClientInfo,
        method: &str,
    ) -> CoreResult<(User, IssuedSession)> {
        self.ensure_may_log_in_audited(&user, policy, client)?;
        let issued = self.open_session(&user, policy, client).await?;
        user.last_login_at = Some(issued.session.created_at);
        self.audit(Audit {
            action: AuditAction::LoginSucceeded,
            actor: Actor::User(user.id),
            tenant: Some(user.tenant_id),
            user: Some(user.id),
            client: Some(client),
            details: json!({"method": method}),
        });
        Ok((user, issued))
    }

    /// Checks a login identifier and password; the user when they match (with the password
    /// version that was checked, to open a session against). Shared by every surface that
    /// checks credentials.
    pub async fn check_password(
        &self,
        tenant: TenantId,
        key: &LoginKey,
        password: Password,
        client: &ClientInfo,
    ) -> CoreResult<User> {
        // Per tenant, so that a server checking credentials for its users (with their IPs) in
        // one tenant cannot spend the log-in budget of an address in another.
        let ip = client.ip_string().map(|ip| format!("{}:{ip}", tenant.0));
        self.limiter.check(ip.as_deref(), &format!("{}:{}", tenant.0, key.limiter_key()))?;
        let found = self.store.users.user_with_secret(tenant, key).await?;
        let stored = found.as_ref().and_then(|u| u.password_hash.clone());
        let v = self.hasher.verify(password.clone(), stored.clone()).await?;
        match found {
            Some(UserWithSecret { user, .. }) if v.matched => {
                if v.needs_rehash {
                    self.upgrade_hash(&user, password, stored).await;
                }
                Ok(user)
            }
            _ => {
                // The identifier typed is not recorded: people type passwords into it.
                let user = found.as_ref().map(|u| u.user.id);
                self.audit(Audit {
                    action: AuditAction::LoginFailed,
                    actor: user.map_or(Actor::Anonymous, Actor::User),
                    tenant: Some(tenant),
                    user,
                    client: Some(client),
                    details: json!({"reason": "invalid_credentials"}),
                });
                Err(CoreError::InvalidCredentials)
            }
        }
    }

    /// [`Core::ensure_may_log_in`], recording a refusal in the audit log.
    pub fn ensure_may_log_in_audited(&self, user: &User, policy: &Policy, client: &ClientInfo) -> CoreResult<()> {
        self.ensure_may_log_in(user, policy).inspect_err(|e| {
            let reason = match e {
                CoreError::AccountDisabled => "account_disabled",
                _ => "email_not_verified",
            };
            self.audit(Audit {
                action: AuditAction::LoginRefused,
                actor: Actor::User(user.id),
                tenant: Some(user.tenant_id),
                user: Some(user.id),
                client: Some(client),
                details: json!({"reason": reason}),
            });
        })
    }

    /// Refuses accounts that may not log in, once their password is known to be right: a
    /// disabled account, and (when the tenant requires it) an unverified e-mail address.
    pub fn ensure_may_log_in(&self, user: &User, policy: &Policy) -> CoreResult<()> {
        if user.status == UserStatus::Disabled {
            return Err(CoreError::AccountDisabled);
        }
        if policy.require_verified_email && user.email.is_some() && user.email_verified_at.is_none() {
            return Err(CoreError::EmailNotVerified);
        }
        Ok(())
    }

    // Re-hashes a password whose stored hash uses old parameters. Best effort: a failure is
    // logged and the log-in goes on; the compare-and-set keeps a concurrent change intact (and
    // two log-ins upgrading at once simply leave one of their hashes).
    async fn upgrade_hash(&self, user: &User, password: Password, stored: Option<String>) {
        let result = async {
            let hash = self.hasher.hash(password).await?;
            let change = PasswordChange {
                hash,
                expected_current: stored,
                end_sessions: EndSessions::None,
                is_new_password: false,
                now: self.now(),
            };
            self.store.users.set_password_hash(user.tenant_id, user.id, &change).await?;
            Ok::<_, CoreError>(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(user = %user.id, error = %e, "could not upgrade a password hash");
        }
    }

    /// Opens a session for a user under a tenant's policy, provided the user's password is
    /// still the one that was checked (same password version) and the account is not
    /// disabled; otherwise (a password change, deletion or disabling won the race) the log-in
    /// fails like a wrong password.
    pub async fn open_session(&self, user: &User, policy: &Policy, client: &ClientInfo) -> CoreResult<IssuedSession> {
        let token = Token::generate(SESSION_TOKEN_PREFIX).map_err(CoreError::internal)?;
        let now = self.now();
        let new = NewSession {
            tenant_id: user.tenant_id,
            user_id: user.id,
            checked_password_version: user.password_version,
            token_hash: token.hash(),
            now,
            expires_at: now.plus(policy.session_absolute_ttl),
            idle_timeout: policy.session_idle_ttl,
            user_agent: client.user_agent_truncated(),
            ip: client.ip,
        };
        match self.store.sessions.insert_session(&new).await {
            Ok(Some(session)) => Ok(IssuedSession { token, session }),
            Ok(None) | Err(StoreError::Gone) => Err(CoreError::InvalidCredentials),
            Err(e) => Err(e.into()),
        }
    }

    /// Checks a session token presented to `tenant`. Never writes on the request path: use
    /// is noted and written in batches.
    pub async fn authenticate(&self, tenant: TenantId, token: &Token) -> CoreResult<AuthSession> {
        if !token.has_shape(SESSION_TOKEN_PREFIX) {
            return Err(CoreError::Unauthenticated);
        }
        let hash = token.hash();
        let now = self.now();
        let entry = match self.sessions.get(&hash) {
            Some(e) if e.session.now_valid(now, e.last_seen()) => e,
            // Expired by this node's knowledge; another node may have seen later use, so ask
            // the store before refusing.
            _ => self.load_session(&hash, now).await?,
        };
        if entry.session.tenant_id != tenant {
            return Err(CoreError::Unauthenticated);
        }
        self.sessions.note_use(&entry, now);
        Ok(AuthSession { session: entry.snapshot(), token_hash: hash })
    }

    async fn load_session(&self, hash: &TokenHash, now: Timestamp) -> CoreResult<Arc<CachedSession>> {
        let generation = self.sessions.generation();
        let session = self.store.sessions.session_by_token_hash(hash).await?.ok_or(CoreError::Unauthenticated)?;
        if !session.is_valid_at(now) {
            if let Err(e) = self.store.sessions.delete_session_by_token_hash(hash, now).await {
                tracing::warn!(error = %e, "could not delete an expired session");
            }
            return Err(CoreError::Unauthenticated);
        }
        let entry = Arc::new(CachedSession::new(session));
        self.sessions.insert(*hash, entry.clone(), generation);
        Ok(entry)
    }

    /// Ends the session that made the request.
    pub async fn logout(&self, auth: &AuthSession) -> CoreResult<()> {
        self.store.sessions.delete_session_by_token_hash(&auth.token_hash, self.now()).await?;
        self.sessions.evict_token(&auth.token_hash);
        self.audit_user(auth, AuditAction::Logout, None, json!({"session_id": auth.session.id}));
        Ok(())
    }

    /// Ends every session of the requesting user, this one included.
    pub async fn logout_all(&self, auth: &AuthSession) -> CoreResult<u64> {
        let s = &auth.session;
        let n =
            self.store.sessions.delete_sessions_of_user(s.tenant_id, s.user_id, EndSessions::All, self.now()).await?;
        self.sessions.evict_user(s.user_id, None);
        self.audit_user(auth, AuditAction::LogoutAll, None, json!({"sessions_ended": n}));
        Ok(n)
    }

    /// The requesting user's live sessions, newest first.
    pub async fn list_sessions(&self, auth: &AuthSession) -> CoreResult<Vec<Session>> {
        let s = &auth.session;
        let now = self.now();
        let mut all = self.store.sessions.sessions_of_user(s.tenant_id, s.user_id).await?;
        all.retain(|x| x.is_valid_at(now) || x.id == s.id);
        for x in &mut all {
            if x.id == s.id {
                x.last_seen_at = x.last_seen_at.max(s.last_seen_at);
            }
        }
        Ok(all)
    }

    /// Ends one of the requesting user's sessions; [`CoreError::NotFound`] if it is not theirs.
    pub async fn revoke_session(&self, auth: &AuthSession, id: SessionId) -> CoreResult<()> {
        let s = &auth.session;
        if !self.store.sessions.delete_session(s.tenant_id, s.user_id, id, self.now()).await? {
            return Err(CoreError::NotFound);
        }
        self.sessions.evict_session(id);
        self.audit_user(auth, AuditAction::SessionRevoked, None, json!({"session_id": id}));
        Ok(())
    }

    /// Changes the requesting user's password after checking the current one, and ends every
    /// other session of theirs. `confirmation`, when the client sends one, must match `new`.
    pub async fn change_password(
        &self,
        auth: &AuthSession,
        current: Password,
        new: Password,
        confirmation: Option<Password>,
    ) -> CoreResult<()> {
        if confirmation.is_some_and(|c| c.expose() != new.expose()) {
            return Err(CoreError::field("new_password_confirmation", "does not match the new password"));
        }
        let s = &auth.session;
        let (_, policy) = self.tenant_policy(s.tenant_id).await?;
        let user = self.confirm_password(auth, current).await?;
        let hash = match self.hasher.check_and_hash(new, &policy, password_inputs(&user)).await? {
            Ok(h) => h,
            Err(m) => return Err(CoreError::field("new_password", m)),
        };
        let change = PasswordChange {
            hash,
            expected_current: None,
            end_sessions: EndSessions::AllExcept(s.id),
            is_new_password: true,
            now: self.now(),
        };
        if !self.store.users.set_password_hash(s.tenant_id, s.user_id, &change).await? {
            return Err(CoreError::Unauthenticated);
        }
        self.sessions.evict_user(s.user_id, Some(s.id));
        self.audit_user(auth, AuditAction::PasswordChanged, None, json!({"other_sessions_ended": true}));
        Ok(())
    }

    /// Records an event a user caused on their own account.
    pub(crate) fn audit_user(
        &self,
        auth: &AuthSession,
        action: AuditAction,
        client: Option<&ClientInfo>,
        details: serde_json::Value,
    ) {
        let s = &auth.session;
        let from_session = ClientInfo { ip: s.ip, user_agent: s.user_agent.clone() };
        self.audit(Audit {
            action,
            actor: Actor::User(s.user_id),
            tenant: Some(s.tenant_id),
            user: Some(s.user_id),
            client: Some(client.unwrap_or(&from_session)),
            details,
        });
    }

    /// Checks the requesting user's current password before a sensitive change.
    pub(crate) async fn confirm_password(&self, auth: &AuthSession, password: Password) -> CoreResult<User> {
        let s = &auth.session;
        self.limiter.check(None, &format!("{}:id:{}", s.tenant_id.0, s.user_id.0))?;
        let found = self.store.users.user_with_secret_by_id(s.tenant_id, s.user_id).await?;
        let Some(found) = found else { return Err(CoreError::Unauthenticated) };
        let v = self.hasher.verify(password, found.password_hash.clone()).await?;
        if !v.matched {
            return Err(CoreError::PasswordIncorrect);
        }
        Ok(found.user)
    }
}

impl Session {
    fn now_valid(&self, now: Timestamp, last_seen: Timestamp) -> bool {
        now < self.expires_at && now < last_seen.plus(self.idle_timeout)
    }
}

/// Whether text has the shape of a session token (checked before any look-up, so garbage
/// costs nothing).
pub fn looks_like_session_token(s: &str) -> bool {
    Token::from_client(s).has_shape(SESSION_TOKEN_PREFIX)
}

/// What a password should not be built from: the user's own identifiers and names.
pub(crate) fn password_inputs(user: &User) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(u) = &user.username {
        v.push(u.clone());
    }
    if let Some(e) = &user.email {
        v.push(e.clone());
        if let Some((local, _)) = e.split_once('@') {
            v.push(local.to_owned());
        }
    }
    for name in [&user.profile.first_name, &user.profile.last_name, &user.profile.nickname, &user.profile.display_name]
        .into_iter()
        .flatten()
    {
        v.push(name.clone());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_fields_need_exactly_one_identifier_and_a_password() {
        let pw = || Some(Password::new("pw"));
        assert!(LoginCommand::from_fields(Some("alice"), None, None, None, pw()).is_ok());
        assert!(LoginCommand::from_fields(None, None, Some("a@example.com"), None, pw()).is_ok());
        let both = LoginCommand::from_fields(Some("alice"), Some("alice"), None, None, pw()).unwrap_err();
        assert!(matches!(both, CoreError::Validation(f) if f.get("login").is_some()));
        let none = LoginCommand::from_fields(None, None, None, None, None).unwrap_err();
        assert!(matches!(none, CoreError::Validation(f) if f.get("login").is_some() && f.get("password").is_some()));
    }

    #[test]
    fn session_token_shape() {
        let t = Token::generate(SESSION_TOKEN_PREFIX).unwrap();
        assert!(looks_like_session_token(t.expose()));
        assert!(!looks_like_session_token("pcs_short"));
        assert!(!looks_like_session_token(&t.expose().replace("pcs_", "xyz_")));
    }
}

/// A server's credential check (`POST /v1/credentials/verify`).
#[derive(Debug)]
pub struct VerifyCredentials {
    /// The login and password to check.
    pub login: LoginCommand,
    /// Open a session for the user when the credentials are valid.
    pub open_session: bool,
    /// The end user the calling server acts for (their IP is limited like a log-in's).
    pub end_user: ClientInfo,
}

impl Core {
    /// Checks a user's credentials for a server holding an API key; opens a session when
    /// asked. Failures are those of a log-in: [`CoreError::InvalidCredentials`] for every
    /// cause, and [`CoreError::EmailNotVerified`] / [`CoreError::AccountDisabled`] only once the
    /// password is known to be right.
    pub async fn verify_credentials(
        &self,
        tenant: TenantId,
        cmd: VerifyCredentials,
        caller: &crate::keys::KeyCaller,
    ) -> CoreResult<(User, Option<IssuedSession>)> {
        let (_, policy) = self.tenant_policy(tenant).await?;
        let result = async {
            let user = self.check_password(tenant, &cmd.login.identifier, cmd.login.password, &cmd.end_user).await?;
            self.ensure_may_log_in_audited(&user, &policy, &cmd.end_user)?;
            let session = if cmd.open_session {
                let issued = self.open_session(&user, &policy, &cmd.end_user).await?;
                self.audit(Audit {
                    action: AuditAction::LoginSucceeded,
                    actor: caller.actor(),
                    tenant: Some(tenant),
                    user: Some(user.id),
                    client: Some(&cmd.end_user),
                    details: json!({"method": "credentials_verify"}),
                });
                Some(issued)
            } else {
                None
            };
            Ok((user, session))
        }
        .await;
        let outcome = match &result {
            Ok(_) => "valid",
            Err(CoreError::InvalidCredentials) => "invalid_credentials",
            Err(CoreError::EmailNotVerified) => "email_not_verified",
            Err(CoreError::AccountDisabled) => "account_disabled",
            Err(_) => "error",
        };
        self.audit(Audit {
            action: AuditAction::CredentialsVerified,
            actor: caller.actor(),
            tenant: Some(tenant),
            user: result.as_ref().ok().map(|(u, _)| u.id),
            client: Some(&cmd.end_user),
            details: json!({"outcome": outcome, "session": cmd.open_session}),
        });
        result
    }
}
