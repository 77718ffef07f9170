//! Logging in: every way a session is opened from a proven credential ends in one place,
//! `Core::finish_login` (private to the core), which refuses accounts that may not log in (audited), will ask for
//! a second factor where one is set up, opens the session and records the success with how it
//! was made. No surface opens a session or writes a log-in audit event any other way: the
//! building blocks here are private to the core.
//!
//! The credentials themselves: a password ([`Core::login`], and a server's check of one,
//! [`Core::verify_credentials`]), a one-time log-in token ([`Core::login_with_token`]), and the
//! password just chosen at sign-up.

use serde_json::{Value, json};

use crate::audit::{Actor, Audit, AuditAction};
use crate::auth::SESSION_TOKEN_PREFIX;
use crate::caller::Caller;
use crate::clock::Timestamp;
use crate::error::{CoreError, CoreResult, Field, FieldErrors};
use crate::ids::{TenantId, UserId};
use crate::model::{Policy, Scope, Session, TokenPurpose, User, UserStatus};
use crate::parse::LoginKey;
use crate::secret::{Password, Token};
use crate::store::{EndSessions, NewSession, PasswordChange, StoreError, UserWithSecret};
use crate::totp::SecondFactorMethod;
use crate::{ClientInfo, Core};

/// Prefix of one-time log-in tokens.
pub const LOGIN_TOKEN_PREFIX: &str = "pcl_";

/// A log-in attempt.
#[derive(Debug)]
pub struct LoginCommand {
    /// Who is logging in.
    pub identifier: LoginKey,
    /// Their password.
    pub password: Password,
    /// A second-factor code sent with the password (for an account with a second factor;
    /// without one, such an account gets a step token to send the code with).
    pub second_factor: Option<String>,
}

impl LoginCommand {
    /// Builds a command from the usual fields: either a free-form `login` or exactly one of
    /// `username`, `email` and `phone`, and a password. Problems are reported on
    /// [`Field::Login`] and [`Field::Password`].
    pub fn from_fields(
        login: Option<&str>,
        username: Option<&str>,
        email: Option<&str>,
        phone: Option<&str>,
        password: Option<Password>,
    ) -> CoreResult<Self> {
        let mut errors = FieldErrors::new();
        let identifier =
            identifier_from_fields(login, username, email, phone).map_err(|m| errors.add(Field::Login, m)).ok();
        let password = password.filter(|p| !p.expose().is_empty());
        if password.is_none() {
            errors.add(Field::Password, "is required");
        }
        match (identifier, password) {
            (Some(identifier), Some(password)) if errors.is_empty() => {
                Ok(Self { identifier, password, second_factor: None })
            }
            _ => Err(CoreError::Validation(errors)),
        }
    }
}

/// The identifier of the usual fields: either a free-form `login` (matched against username,
/// e-mail and phone) or exactly one of `username`, `email` and `phone`. The error is the
/// message for [`Field::Login`].
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

/// A first factor was proven, and the account asks for a second before a session opens. The
/// step token binds the follow-up (the code) to this log-in: single-use and short-lived.
#[derive(Debug)]
pub struct SecondFactorRequired {
    /// The account.
    pub user_id: UserId,
    /// The step token, shown to the client once.
    pub step_token: Token,
    /// When the step token stops working.
    pub expires_at: Timestamp,
}

/// The outcome of a proven credential. `S` is what the caller gets with the user: an
/// [`IssuedSession`] for a log-in, an `Option<IssuedSession>` for a server's credential check
/// (which opens a session only when asked).
#[derive(Debug)]
// Made once per log-in and moved once: the size of the larger variant costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum LoginOutcome<S = IssuedSession> {
    /// The user is logged in.
    LoggedIn {
        /// The user (with this log-in's time).
        user: User,
        /// The session, if one was opened.
        session: S,
    },
    /// The credential was right, and a second factor is needed to go on.
    SecondFactorRequired(SecondFactorRequired),
}

/// How a log-in was made, as the audit log records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LoginMethod {
    Password,
    LoginToken,
    Signup,
    CredentialCheck,
}

/// The second factor of a log-in, as far as it went.
#[derive(Clone, Copy, Debug)]
enum SecondStep<'a> {
    /// A code came with the first factor (or none did): check it in [`Core::finish_login`].
    Code(Option<&'a str>),
    /// Proven already, by a follow-up to a step token.
    Proven(SecondFactorMethod),
    /// Only a code that came along counts: a request that carries its credentials every time
    /// has no follow-up to send one with, so a missing code is
    /// [`CoreError::SecondFactorRequired`] rather than a step token.
    CodeOnly(Option<&'a str>),
}

impl LoginMethod {
    fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::LoginToken => "login_token",
            Self::Signup => "signup",
            Self::CredentialCheck => "credentials_verify",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "login_token" => Self::LoginToken,
            "credentials_verify" => Self::CredentialCheck,
            _ => Self::Password,
        }
    }
}

/// What [`Core::finish_login`] needs besides the user.
struct LoginEnd<'a> {
    method: LoginMethod,
    /// Who is logging in: the user, or a server checking their credentials.
    actor: Actor,
    /// The end user's client.
    client: &'a ClientInfo,
    open_session: bool,
    second: SecondStep<'a>,
}

/// A server's credential check (`POST /v1/credentials/verify` and the dialects), as sent:
/// the core reads it only once the caller may ask.
#[derive(Debug, Default)]
pub struct VerifyCredentials {
    /// `login` (any identifier) or exactly one of `username`, `email`, `phone`.
    pub login: Option<String>,
    /// Username only.
    pub username: Option<String>,
    /// E-mail address only.
    pub email: Option<String>,
    /// Phone number only.
    pub phone: Option<String>,
    /// The password.
    pub password: Option<Password>,
    /// Open a session for the user when the credentials are valid.
    pub open_session: bool,
    /// The end user's IP address as the calling server reports it (their attempts are limited
    /// like a log-in's); the calling server's own when absent.
    pub end_user_ip: Option<String>,
    /// The end user's user agent.
    pub end_user_agent: Option<String>,
    /// The user's second-factor code, for an account with a second factor.
    pub second_factor: Option<String>,
    /// The caller cannot send a code afterwards (a legacy API with no such step): an account
    /// with a second factor and no code is [`CoreError::SecondFactorRequired`] instead of a
    /// step token.
    pub code_only: bool,
}

impl Core {
    /// Logs a user in with a password.
    ///
    /// Every failure before the password is known to be right — unknown account, account
    /// without a password, wrong password — is the same [`CoreError::InvalidCredentials`], after
    /// the same amount of hashing work.
    pub async fn login(&self, tenant: TenantId, cmd: LoginCommand, client: &ClientInfo) -> CoreResult<LoginOutcome> {
        let (_, policy) = self.tenant_policy(tenant).await?;
        let user = self.check_password(tenant, &cmd.identifier, cmd.password, client).await?;
        let end = LoginEnd {
            method: LoginMethod::Password,
            actor: Actor::User(user.id),
            client,
            open_session: true,
            second: SecondStep::Code(cmd.second_factor.as_deref()),
        };
        with_session(self.finish_login(user, &policy, end).await?)
    }

    /// Exchanges a one-time log-in token for a session. The token is used up by the first
    /// attempt, whatever its outcome; every failure is [`CoreError::InvalidCredentials`].
    pub async fn login_with_token(
        &self,
        tenant: TenantId,
        token: &Token,
        client: &ClientInfo,
    ) -> CoreResult<LoginOutcome> {
        let (_, policy) = self.tenant_policy(tenant).await?;
        if !token.has_shape(LOGIN_TOKEN_PREFIX) {
            return Err(CoreError::InvalidCredentials);
        }
        // A token shown to another tenant is refused without spending it: its own tenant's
        // link still works (the token never changes tenant, so the look and the spending
        // cannot disagree).
        let peeked = self.store.tokens.peek_one_time_token(&token.hash(), TokenPurpose::Login, self.now()).await?;
        if peeked.is_some_and(|p| p.tenant_id != tenant) {
            return Err(CoreError::InvalidCredentials);
        }
        let consumed = self.store.tokens.consume_one_time_token(&token.hash(), TokenPurpose::Login, self.now()).await?;
        let Some(c) = consumed.filter(|c| c.tenant_id == tenant) else {
            return Err(CoreError::InvalidCredentials);
        };
        let mut user = self.store.users.user(tenant, c.user_id).await?.ok_or(CoreError::InvalidCredentials)?;
        if c.data.get("password_version").and_then(Value::as_i64) != Some(user.password_version) {
            return Err(CoreError::InvalidCredentials);
        }
        // A log-in link came by mail: following it proves the user reads that address.
        if let Some(verified) = self.verify_by_link(&user, &c.data).await? {
            user = verified;
        }
        // A token minted after a check that proved the second factor too carries how.
        let second = match c.data.get("second_factor").and_then(Value::as_str) {
            Some("totp") => SecondStep::Proven(SecondFactorMethod::Totp),
            Some("recovery_code") => SecondStep::Proven(SecondFactorMethod::RecoveryCode),
            _ => SecondStep::Code(None),
        };
        let end = LoginEnd {
            method: LoginMethod::LoginToken,
            actor: Actor::User(user.id),
            client,
            open_session: true,
            second,
        };
        with_session(self.finish_login(user, &policy, end).await?)
    }

    /// Marks the account's address verified when a link mailed to it was followed (its token's
    /// data names the address) and it is still the account's, unverified. The account then
    /// leaves `pending`.
    pub(crate) async fn verify_by_link(&self, user: &User, data: &Value) -> CoreResult<Option<User>> {
        let sent_to = data.get("email").and_then(Value::as_str).and_then(|e| crate::parse::Email::parse(e).ok());
        let current = user.email.as_deref().and_then(|e| crate::parse::Email::parse(e).ok());
        let same = sent_to.zip(current).is_some_and(|(a, b)| a.normalized() == b.normalized());
        if !same || user.email_verified_at.is_some() {
            return Ok(None);
        }
        let now = self.now();
        let update = crate::store::UserUpdate {
            email_verified_at: Some(Some(now)),
            status: (user.status == UserStatus::Pending).then_some(UserStatus::Active),
            ..Default::default()
        };
        Ok(self.store.users.update_user(user.tenant_id, user.id, &update, now).await?)
    }

    /// Checks a user's credentials for a server holding a key with `credentials:verify`; opens
    /// a session when asked. Failures are those of a log-in: [`CoreError::InvalidCredentials`]
    /// for every cause, and [`CoreError::EmailNotVerified`] / [`CoreError::AccountDisabled`]
    /// only once the password is known to be right.
    pub async fn verify_credentials(
        &self,
        caller: &Caller,
        tenant: TenantId,
        cmd: VerifyCredentials,
    ) -> CoreResult<LoginOutcome<Option<IssuedSession>>> {
        caller.require(tenant, Scope::CredentialsVerify)?;
        let mut errors = FieldErrors::new();
        let ip = match cmd.end_user_ip.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => {
                s.parse().map_err(|_| errors.add(Field::Param("client_ip"), "must be an IPv4 or IPv6 address")).ok()
            }
            // Without the end user's address, limit per calling server rather than not at all.
            None => caller.client().ip,
        };
        let login = LoginCommand::from_fields(
            cmd.login.as_deref(),
            cmd.username.as_deref(),
            cmd.email.as_deref(),
            cmd.phone.as_deref(),
            cmd.password,
        );
        let login = match login {
            Ok(l) => Some(l),
            Err(CoreError::Validation(f)) => {
                errors.merge(f);
                None
            }
            Err(e) => return Err(e),
        };
        errors.into_result()?;
        let Some(login) = login else { return Err(CoreError::Internal("a valid log-in without a command".into())) };
        let (_, policy) = self.tenant_policy(tenant).await?;
        let end_user = &ClientInfo { ip, user_agent: cmd.end_user_agent, surface: caller.client().surface };
        let result = async {
            let user = self.check_password(tenant, &login.identifier, login.password, end_user).await?;
            let end = LoginEnd {
                method: LoginMethod::CredentialCheck,
                actor: caller.actor(),
                client: end_user,
                open_session: cmd.open_session,
                second: if cmd.code_only {
                    SecondStep::CodeOnly(cmd.second_factor.as_deref())
                } else {
                    SecondStep::Code(cmd.second_factor.as_deref())
                },
            };
            self.finish_login(user, &policy, end).await
        }
        .await;
        let (outcome, user) = match &result {
            Ok(LoginOutcome::LoggedIn { user, .. }) => ("valid", Some(user.id)),
            Ok(LoginOutcome::SecondFactorRequired(s)) => ("second_factor_required", Some(s.user_id)),
            Err(CoreError::InvalidCredentials) => ("invalid_credentials", None),
            Err(CoreError::EmailNotVerified) => ("email_not_verified", None),
            Err(CoreError::AccountDisabled) => ("account_disabled", None),
            Err(CoreError::SecondFactorInvalid) => ("second_factor_invalid", None),
            Err(CoreError::SecondFactorRequired) => ("second_factor_required", None),
            Err(_) => ("error", None),
        };
        self.audit(Audit {
            action: AuditAction::CredentialsVerified,
            actor: caller.actor(),
            tenant: Some(tenant),
            user,
            client: Some(end_user),
            details: json!({"outcome": outcome, "session": cmd.open_session}),
        });
        result
    }

    /// The end of every log-in once the user is known: refuses accounts that may not log in
    /// (audited), asks for the second factor where one is set up (checking a code that came
    /// along, or answering with a step token), opens the session (when asked), and records
    /// the success with how it was made. The one place a second factor is asked for, so that
    /// it gates every surface.
    async fn finish_login(
        &self,
        mut user: User,
        policy: &Policy,
        end: LoginEnd<'_>,
    ) -> CoreResult<LoginOutcome<Option<IssuedSession>>> {
        self.ensure_may_log_in_audited(&user, policy, end.client)?;
        let second = match end.second {
            SecondStep::Proven(m) => Some(m),
            // A new account has no second factor to ask for.
            SecondStep::Code(_) | SecondStep::CodeOnly(_)
                if end.method == LoginMethod::Signup || !user.second_factor =>
            {
                None
            }
            SecondStep::Code(Some(code)) | SecondStep::CodeOnly(Some(code)) if !code.trim().is_empty() => {
                Some(self.check_second_factor(&user, code, end.client).await?)
            }
            SecondStep::CodeOnly(_) => return Err(CoreError::SecondFactorRequired),
            SecondStep::Code(_) => {
                let step = self.issue_step_token(&user, end.method.as_str()).await?;
                return Ok(LoginOutcome::SecondFactorRequired(step));
            }
        };
        if !end.open_session {
            return Ok(LoginOutcome::LoggedIn { user, session: None });
        }
        let issued = self.open_session(&user, policy, end.client).await?;
        user.last_login_at = Some(issued.session.created_at);
        self.audit(Audit {
            action: AuditAction::LoginSucceeded,
            actor: end.actor,
            tenant: Some(user.tenant_id),
            user: Some(user.id),
            client: Some(end.client),
            details: match second {
                Some(m) => json!({"method": end.method.as_str(), "second_factor": m.as_str()}),
                None => json!({"method": end.method.as_str()}),
            },
        });
        Ok(LoginOutcome::LoggedIn { user, session: Some(issued) })
    }

    /// The end of a log-in whose second factor was proven in a follow-up to a step token made
    /// by a log-in of method `first`.
    pub(crate) async fn finish_second_step(
        &self,
        user: User,
        policy: &Policy,
        client: &ClientInfo,
        first: &str,
        proven: SecondFactorMethod,
    ) -> CoreResult<LoginOutcome<Option<IssuedSession>>> {
        let end = LoginEnd {
            method: LoginMethod::parse(first),
            actor: Actor::User(user.id),
            client,
            open_session: true,
            second: SecondStep::Proven(proven),
        };
        self.finish_login(user, policy, end).await
    }

    /// Proves a user by the password that came with this one request, for the dialects whose
    /// clients send credentials with every call (HTTP Basic): the whole log-in path — the
    /// same limits, the same work for an unknown account, the account's status, the second
    /// factor (its code must come along: [`CoreError::SecondFactorRequired`] otherwise, and
    /// only once the password is known to be right) — without opening a session.
    pub async fn prove_password(&self, tenant: TenantId, cmd: LoginCommand, client: &ClientInfo) -> CoreResult<User> {
        let (_, policy) = self.tenant_policy(tenant).await?;
        let user = self.check_password(tenant, &cmd.identifier, cmd.password, client).await?;
        let end = LoginEnd {
            method: LoginMethod::Password,
            actor: Actor::User(user.id),
            client,
            open_session: false,
            second: SecondStep::CodeOnly(cmd.second_factor.as_deref()),
        };
        match self.finish_login(user, &policy, end).await? {
            LoginOutcome::LoggedIn { user, .. } => {
                self.audit(Audit {
                    action: AuditAction::CredentialsVerified,
                    actor: Actor::User(user.id),
                    tenant: Some(tenant),
                    user: Some(user.id),
                    client: Some(client),
                    details: json!({"outcome": "valid", "session": false}),
                });
                Ok(user)
            }
            LoginOutcome::SecondFactorRequired(_) => Err(CoreError::SecondFactorRequired),
        }
    }

    /// Logs a user in right after sign-up, when the tenant lets a new account in at once.
    /// `None` when it does not (an e-mail address to verify first).
    pub(crate) async fn login_after_signup(
        &self,
        user: User,
        policy: &Policy,
        client: &ClientInfo,
    ) -> CoreResult<(User, Option<IssuedSession>)> {
        if may_log_in(&user, policy).is_err() {
            return Ok((user, None));
        }
        let end = LoginEnd {
            method: LoginMethod::Signup,
            actor: Actor::User(user.id),
            client,
            open_session: true,
            second: SecondStep::Code(None),
        };
        let created = user.clone();
        match self.finish_login(user, policy, end).await? {
            LoginOutcome::LoggedIn { user, session } => Ok((user, session)),
            // A new account has no second factor yet; were it to have one, it would log in
            // with it.
            LoginOutcome::SecondFactorRequired(_) => Ok((created, None)),
        }
    }

    /// Checks a login identifier and password; the user when they match (with the password
    /// version that was checked, to open a session against).
    async fn check_password(
        &self,
        tenant: TenantId,
        key: &LoginKey,
        password: Password,
        client: &ClientInfo,
    ) -> CoreResult<User> {
        // Per tenant, so that a server checking credentials for its users (with their IPs) in
        // one tenant cannot spend the log-in budget of an address in another.
        let ip = self.address_key(tenant, client.ip);
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

    /// [`may_log_in`], recording a refusal in the audit log.
    fn ensure_may_log_in_audited(&self, user: &User, policy: &Policy, client: &ClientInfo) -> CoreResult<()> {
        may_log_in(user, policy).inspect_err(|e| {
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
    async fn open_session(&self, user: &User, policy: &Policy, client: &ClientInfo) -> CoreResult<IssuedSession> {
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
}

/// Hand-offs to a browser: a server proves a user's credentials and gets a one-time log-in
/// token for them (the legacy APIs whose credential check answers with a token the user's
/// browser then logs in with, Siberian's `authenticate` and `autologin`).
impl Core {
    /// Checks a user's credentials like [`Core::verify_credentials`] (scope
    /// `credentials:verify`, the same failures, audit and limits), with `code_only` (an
    /// account with a second factor needs its code along, [`CoreError::SecondFactorRequired`]
    /// otherwise) and no session; on success issues a one-time log-in token for the user, as
    /// [`Core::issue_login_token`] does. The scope is enough: a caller that may open a session
    /// for a user it proved may as well hand them a token that opens one, once.
    pub async fn verify_credentials_for_login_token(
        &self,
        caller: &Caller,
        tenant: TenantId,
        cmd: VerifyCredentials,
    ) -> CoreResult<(User, crate::admin::IssuedLoginToken)> {
        let cmd = VerifyCredentials { open_session: false, code_only: true, ..cmd };
        // What the code that came along was, should the account need one: the exchange of the
        // token then opens the session without asking again.
        let code_kind = cmd.second_factor.as_deref().map(|c| {
            let digits = c.chars().filter(char::is_ascii_digit).count();
            if digits == 6 && c.chars().all(|c| c.is_ascii_digit() || c == ' ' || c == '-') {
                SecondFactorMethod::Totp
            } else {
                SecondFactorMethod::RecoveryCode
            }
        });
        match self.verify_credentials(caller, tenant, cmd).await? {
            LoginOutcome::LoggedIn { user, .. } => {
                let proven = if user.second_factor { code_kind } else { None };
                let issued = self.mint_login_token(caller, &user, proven).await?;
                Ok((user, issued))
            }
            LoginOutcome::SecondFactorRequired(_) => Err(CoreError::SecondFactorRequired),
        }
    }

    /// Refuses credentials that lead to no tenant a surface serves, after the work of a failed
    /// password check (the dummy verification an unknown account gets), so that the refusal
    /// takes as long as a wrong password's. Always [`CoreError::InvalidCredentials`], or the
    /// pool's refusal when it is full.
    pub async fn refuse_credentials(&self, password: Password) -> CoreResult<()> {
        self.hasher.verify(password, None).await?;
        Err(CoreError::InvalidCredentials)
    }

    /// [`Core::login_with_token`] for a link that also names the account's e-mail address: a
    /// token of an account other than the one `email` names is refused like an unknown token
    /// (and spent all the same, as every failed exchange spends it), before any session opens.
    pub async fn login_with_token_for_email(
        &self,
        tenant: TenantId,
        token: &Token,
        email: &str,
        client: &ClientInfo,
    ) -> CoreResult<LoginOutcome> {
        self.tenant_policy(tenant).await?;
        if token.has_shape(LOGIN_TOKEN_PREFIX) {
            let now = self.now();
            let peeked = self.store.tokens.peek_one_time_token(&token.hash(), TokenPurpose::Login, now).await?;
            if let Some(p) = peeked.filter(|p| p.tenant_id == tenant) {
                let user = self.store.users.user(tenant, p.user_id).await?;
                let named = crate::parse::Email::parse(email).ok().is_some_and(|e| {
                    user.as_ref()
                        .and_then(|u| u.email.as_deref())
                        .and_then(|own| crate::parse::Email::parse(own).ok())
                        .is_some_and(|own| own.normalized() == e.normalized())
                });
                if !named {
                    self.store.tokens.consume_one_time_token(&token.hash(), TokenPurpose::Login, now).await?;
                    return Err(CoreError::InvalidCredentials);
                }
            }
        }
        self.login_with_token(tenant, token, client).await
    }
}

/// Refuses accounts that may not log in, once their credential is known to be right: a
/// disabled account, and (when the tenant requires it) an unverified e-mail address.
pub(crate) fn may_log_in(user: &User, policy: &Policy) -> CoreResult<()> {
    if user.status == UserStatus::Disabled {
        return Err(CoreError::AccountDisabled);
    }
    if policy.require_verified_email && user.email.is_some() && user.email_verified_at.is_none() {
        return Err(CoreError::EmailNotVerified);
    }
    Ok(())
}

/// A log-in asks for a session: the outcome always has one.
pub(crate) fn with_session(o: LoginOutcome<Option<IssuedSession>>) -> CoreResult<LoginOutcome> {
    match o {
        LoginOutcome::LoggedIn { user, session: Some(session) } => Ok(LoginOutcome::LoggedIn { user, session }),
        LoginOutcome::LoggedIn { session: None, .. } => Err(CoreError::Internal("a log-in opened no session".into())),
        LoginOutcome::SecondFactorRequired(s) => Ok(LoginOutcome::SecondFactorRequired(s)),
    }
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
        assert!(matches!(both, CoreError::Validation(f) if f.get(&Field::Login).is_some()));
        let none = LoginCommand::from_fields(None, None, None, None, None).unwrap_err();
        assert!(
            matches!(none, CoreError::Validation(f) if f.get(&Field::Login).is_some() && f.get(&Field::Password).is_some())
        );
    }
}
