//! Sessions once open: checking them on every request, logging out, listing and ending them,
//! and changing a password. (Opening one is [`crate::login`].)

use std::sync::Arc;

use serde_json::json;

use crate::audit::{Actor, Audit, AuditAction};
use crate::clock::Timestamp;
use crate::error::{CoreError, CoreResult, Field};
use crate::ids::{SessionId, TenantId};
use crate::model::{Policy, Session, User};
use crate::password::HashedPassword;
use crate::secret::{Password, Token, TokenHash};
use crate::sessions::CachedSession;
use crate::store::{EndSessions, PasswordChange};
use crate::{ClientInfo, Core};

/// Prefix of session tokens.
pub const SESSION_TOKEN_PREFIX: &str = "pcs_";

/// A request authenticated by a session.
#[derive(Clone, Debug)]
pub struct AuthSession {
    /// The session (last-seen time as known on this node).
    pub session: Session,
    /// Hash of the token that authenticated the request.
    pub token_hash: TokenHash,
    /// The surface the request came through, recorded with the audit events it causes (see
    /// [`AuthSession::through`]).
    pub surface: &'static str,
}

impl AuthSession {
    /// This session, as used through `surface`.
    #[must_use]
    pub fn through(mut self, surface: &'static str) -> Self {
        self.surface = surface;
        self
    }
}

impl Core {
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
        Ok(AuthSession { session: entry.snapshot(), token_hash: hash, surface: "" })
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
            return Err(CoreError::field(Field::NewPasswordConfirmation, "does not match the new password"));
        }
        let s = &auth.session;
        let (_, policy) = self.tenant_policy(s.tenant_id).await?;
        let user = self.confirm_password(auth, current).await?;
        let hash = self.hash_new_password(new, &policy, password_inputs(&user), Field::NewPassword).await?;
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

    /// Changes the password of a user proven by the credentials that came with this very
    /// request (see [`Core::prove_password`]), for the dialects that send them with every
    /// call; every session of the user ends. Audited.
    pub async fn change_password_proven(
        &self,
        tenant: TenantId,
        cmd: crate::login::LoginCommand,
        new: Password,
        client: &ClientInfo,
    ) -> CoreResult<()> {
        let user = self.prove_password(tenant, cmd, client).await?;
        let (_, policy) = self.tenant_policy(tenant).await?;
        let hash = self.hash_new_password(new, &policy, password_inputs(&user), Field::NewPassword).await?;
        let change = PasswordChange {
            hash,
            expected_current: None,
            end_sessions: EndSessions::All,
            is_new_password: true,
            now: self.now(),
        };
        if !self.store.users.set_password_hash(tenant, user.id, &change).await? {
            return Err(CoreError::InvalidCredentials);
        }
        self.sessions.evict_user(user.id, None);
        self.audit(Audit {
            action: AuditAction::PasswordChanged,
            actor: Actor::User(user.id),
            tenant: Some(tenant),
            user: Some(user.id),
            client: Some(client),
            details: json!({"other_sessions_ended": true}),
        });
        Ok(())
    }

    /// Deletes the account of a user proven by the credentials that came with this very
    /// request (see [`Core::prove_password`]); every session of theirs ends. Audited.
    pub async fn delete_account_proven(
        &self,
        tenant: TenantId,
        cmd: crate::login::LoginCommand,
        client: &ClientInfo,
    ) -> CoreResult<()> {
        let user = self.prove_password(tenant, cmd, client).await?;
        if !self.store.users.delete_user(tenant, user.id, self.now()).await? {
            return Err(CoreError::InvalidCredentials);
        }
        self.sessions.evict_user(user.id, None);
        self.audit(Audit {
            action: AuditAction::UserDeleted,
            actor: Actor::User(user.id),
            tenant: Some(tenant),
            user: Some(user.id),
            client: Some(client),
            details: json!({"by": "self"}),
        });
        Ok(())
    }

    /// Checks a new password against the tenant's policy (length, strength, not built from the
    /// user's own details) and hashes it, as one job on the hashing pool. A password the policy
    /// refuses is a validation error on `field`.
    pub(crate) async fn hash_new_password(
        &self,
        password: Password,
        policy: &Policy,
        user_inputs: Vec<String>,
        field: Field,
    ) -> CoreResult<HashedPassword> {
        match self.hasher.check_and_hash(password, policy, user_inputs).await? {
            Ok(h) => Ok(h),
            Err(m) => Err(CoreError::field(field, m)),
        }
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
        let from_session = ClientInfo { ip: s.ip, user_agent: s.user_agent.clone(), surface: auth.surface };
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
    fn session_token_shape() {
        let t = Token::generate(SESSION_TOKEN_PREFIX).unwrap();
        assert!(looks_like_session_token(t.expose()));
        assert!(!looks_like_session_token("pcs_short"));
        assert!(!looks_like_session_token(&t.expose().replace("pcs_", "xyz_")));
    }
}
