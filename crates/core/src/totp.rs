//! A second factor: TOTP authenticators (RFC 6238: 30-second steps, 6 digits, SHA-1, which
//! every authenticator app reads) and single-use recovery codes.
//!
//! Enrolment is two steps: [`Core::begin_totp`] makes a secret (sealed at rest with the
//! server's key, see [`crate::sealing`]) and the `otpauth://` URI an app scans;
//! [`Core::confirm_totp`] proves the app holds it with a first code and hands out ten recovery
//! codes, shown once and stored hashed. From then on every log-in, on every surface, ends in
//! [`Core::finish_login`](crate::login) asking for a code: in the same request, or in a
//! follow-up bound to the log-in by a short-lived, single-use step token
//! ([`Core::login_second_factor`]).
//!
//! A code is good once: the step it belongs to is recorded by one atomic statement, so neither
//! a replay within its 90-second window nor a race of two requests gets a second use. Guessing
//! is limited per account across every surface (`rate_limits.second_factor_per_account_per_minute`).

use std::fmt;
use std::time::Duration;

use serde_json::{Value, json};
use totp_rs::{Algorithm, Builder, Secret};
use zeroize::Zeroizing;

use crate::audit::{Actor, Audit, AuditAction};
use crate::auth::AuthSession;
use crate::caller::Caller;
use crate::error::{CoreError, CoreResult, Field};
use crate::ids::{TenantId, UserId};
use crate::login::{IssuedSession, LoginOutcome, SecondFactorRequired};
use crate::model::{Scope, TokenPurpose, User};
use crate::sealing::{STORED_KEY_NAME, Sealer, SecretKey};
use crate::secret::{Password, Token, TokenHash, random_bytes};
use crate::store::NewOneTimeToken;
use crate::{ClientInfo, Core};

/// Prefix of second-factor step tokens.
pub const STEP_TOKEN_PREFIX: &str = "pcf_";

/// How long a step token waits for its code.
pub const STEP_TOKEN_TTL: Duration = Duration::from_secs(5 * 60);

/// How recently a session must have been opened to stand in for the password of an account
/// that has none (an account that logs in by mailed links).
pub const RECENT_LOG_IN: Duration = Duration::from_secs(15 * 60);

/// How many recovery codes a user gets at a time.
pub const RECOVERY_CODES: usize = 10;

/// Length of a TOTP code, in digits.
pub const TOTP_DIGITS: usize = 6;

/// Length of a TOTP time step.
pub const TOTP_STEP_SECONDS: u64 = 30;

/// Steps either side of the current one whose codes are accepted (a clock a little off).
const TOTP_SKEW: u8 = 1;

/// Bytes of a TOTP secret (160 bits, as RFC 4226 recommends).
const TOTP_SECRET_BYTES: usize = 20;

/// Bytes of a recovery code (80 bits: 16 base32 characters).
const RECOVERY_CODE_BYTES: usize = 10;

/// A new authenticator's secret, for the user to put into their app. `Debug` hides it.
pub struct TotpEnrolment {
    /// The secret in base32, for typing into an app.
    pub secret: Zeroizing<String>,
    /// The `otpauth://totp/...` URI, for a QR code.
    pub uri: Zeroizing<String>,
}

impl fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpEnrolment(<redacted>)")
    }
}

/// Recovery codes, shown to the user once. `Debug` hides them.
pub struct RecoveryCodes(pub Vec<Zeroizing<String>>);

impl fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecoveryCodes({} codes)", self.0.len())
    }
}

/// What a user shows to change their second factor: their password, or a code (from their
/// authenticator, or a recovery code).
#[derive(Debug)]
pub enum Proof {
    /// The account's password.
    Password(Password),
    /// A TOTP code or a recovery code.
    Code(String),
}

impl Proof {
    /// The proof in a request: `password` or `code`, exactly one. Problems are on
    /// [`Field::Password`].
    pub fn from_fields(password: Option<Password>, code: Option<String>) -> CoreResult<Self> {
        let code = code.filter(|c| !c.trim().is_empty());
        match (password.filter(|p| !p.expose().is_empty()), code) {
            (Some(p), None) => Ok(Self::Password(p)),
            (None, Some(c)) => Ok(Self::Code(c)),
            (None, None) => Err(CoreError::field(Field::Password, "is required (or a second-factor code)")),
            (Some(_), Some(_)) => Err(CoreError::field(Field::Password, "give either the password or a code")),
        }
    }
}

/// Where a user stands with their second factor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecondFactorStatus {
    /// A confirmed authenticator: log-ins ask for a code.
    pub enabled: bool,
    /// An enrolment waits for its first code.
    pub enrolling: bool,
    /// Unused recovery codes.
    pub recovery_codes_left: u32,
}

/// How a second factor was proven, as the audit log records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecondFactorMethod {
    /// A code from the authenticator.
    Totp,
    /// A recovery code.
    RecoveryCode,
}

impl SecondFactorMethod {
    /// The recorded name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::RecoveryCode => "recovery_code",
        }
    }
}

/// A code as typed, in the shape it has: six digits (spaces and dashes dropped), or a
/// recovery code (16 base32 characters, any case, dashes and spaces dropped).
enum CodeShape {
    Totp(String),
    Recovery(TokenHash),
    Neither,
}

fn code_shape(code: &str) -> CodeShape {
    let kept: String = code.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
    if kept.len() == TOTP_DIGITS && kept.bytes().all(|b| b.is_ascii_digit()) {
        return CodeShape::Totp(kept);
    }
    let upper = kept.to_ascii_uppercase();
    if upper.len() == RECOVERY_CODE_BYTES * 8 / 5 && upper.bytes().all(|b| matches!(b, b'A'..=b'Z' | b'2'..=b'7')) {
        return CodeShape::Recovery(recovery_code_hash(&upper));
    }
    CodeShape::Neither
}

fn recovery_code_hash(normalized: &str) -> TokenHash {
    Token::from_client(format!("recovery:{normalized}")).hash()
}

/// New recovery codes, as shown (`ABCD-EFGH-IJKL-MNOP`) and as stored.
fn new_recovery_codes() -> CoreResult<(RecoveryCodes, Vec<TokenHash>)> {
    let mut shown = Vec::with_capacity(RECOVERY_CODES);
    let mut hashes = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let bytes = Zeroizing::new(random_bytes::<RECOVERY_CODE_BYTES>().map_err(CoreError::internal)?);
        let plain = Zeroizing::new(Secret::from(bytes.to_vec()).to_base32());
        hashes.push(recovery_code_hash(&plain));
        let grouped: Vec<&str> = plain.as_bytes().chunks(4).filter_map(|c| std::str::from_utf8(c).ok()).collect();
        shown.push(Zeroizing::new(grouped.join("-")));
    }
    Ok((RecoveryCodes(shown), hashes))
}

/// The authenticator for a secret. `label` (who and where) goes into the URI only.
fn authenticator(secret: &[u8], issuer: Option<String>, account: String) -> CoreResult<totp_rs::Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(TOTP_DIGITS as u8)
        .with_skew(TOTP_SKEW.into())
        .with_step_duration(TOTP_STEP_SECONDS)
        .with_secret(secret.to_vec())
        .with_issuer(issuer)
        .with_account_name(account)
        .build()
        .map_err(|e| CoreError::Internal(format!("TOTP: {e}").into()))
}

/// What an otpauth label may hold: no colon (it separates issuer and account), no control.
fn label_part(s: &str) -> String {
    s.chars().filter(|c| *c != ':' && !c.is_control()).collect::<String>().trim().to_owned()
}

fn seal_context(tenant: TenantId, user: UserId) -> Vec<u8> {
    format!("totp:{}:{}", tenant.0, user.0).into_bytes()
}

impl Core {
    /// The sealer for secrets the server reads back: with the configured key, or else with a
    /// key made once and kept in the database (every node then finds the same one).
    async fn sealer(&self) -> CoreResult<&Sealer> {
        self.sealer
            .get_or_try_init(|| async {
                let keys = &self.config.secrets;
                let key = match &keys.key {
                    Some(k) => k.clone(),
                    None => {
                        let candidate = SecretKey::generate()?;
                        let kept = self
                            .store
                            .database
                            .server_secret(STORED_KEY_NAME, candidate.as_bytes(), self.now())
                            .await?;
                        tracing::warn!(
                            "no secrets.key is configured: second-factor secrets are sealed with a key kept in the \
                             database, so a copy of the database holds both; set secrets.key_file in production"
                        );
                        SecretKey::from_slice(&kept)
                            .ok_or_else(|| CoreError::Internal("the stored sealing key has the wrong length".into()))?
                    }
                };
                Ok::<_, CoreError>(Sealer::with_previous(&key, &keys.previous))
            })
            .await
    }

    /// Starts enrolling an authenticator for the signed-in user: a new secret and its URI. The
    /// account's password is asked for (an account without one needs a fresh log-in, see
    /// `Core::confirm_sensitive`), so that a stolen session cannot put the account behind an
    /// authenticator its owner does not have. An enrolment not yet confirmed is replaced.
    pub async fn begin_totp(&self, auth: &AuthSession, password: Option<Password>) -> CoreResult<TotpEnrolment> {
        let s = &auth.session;
        let (tenant, _) = self.tenant_policy(s.tenant_id).await?;
        let user = self.me(auth).await?;
        if user.second_factor {
            return Err(CoreError::Forbidden("An authenticator is set up already; disable it first."));
        }
        self.confirm_sensitive(auth, &user, password.map(Proof::Password), Field::Password).await?;
        let secret = Zeroizing::new(random_bytes::<TOTP_SECRET_BYTES>().map_err(CoreError::internal)?);
        let sealed = self.sealer().await?.seal(secret.as_slice(), &seal_context(s.tenant_id, s.user_id))?;
        if !self.store.second_factors.begin_totp(s.tenant_id, s.user_id, &sealed, self.now()).await? {
            return Err(CoreError::Forbidden("An authenticator is set up already; disable it first."));
        }
        let account = [&user.email, &user.username, &user.phone]
            .into_iter()
            .flatten()
            .map(|a| label_part(a))
            .find(|a| !a.is_empty())
            .unwrap_or_else(|| user.id.to_string());
        let issuer = Some(label_part(&tenant.name)).filter(|i| !i.is_empty());
        let totp = authenticator(secret.as_slice(), issuer, account)?;
        let uri = totp.to_url().map_err(|e| CoreError::Internal(format!("TOTP URI: {e}").into()))?;
        Ok(TotpEnrolment {
            secret: Zeroizing::new(Secret::from(secret.to_vec()).to_base32()),
            uri: Zeroizing::new(uri),
        })
    }

    /// Confirms the enrolment with a first code from the app; from now on log-ins ask for a
    /// code. Returns the recovery codes, which are shown this once.
    pub async fn confirm_totp(&self, auth: &AuthSession, code: &str) -> CoreResult<RecoveryCodes> {
        let s = &auth.session;
        self.tenant_policy(s.tenant_id).await?;
        let pending = self.store.second_factors.totp(s.tenant_id, s.user_id).await?;
        let Some(pending) = pending.filter(|c| c.confirmed_at.is_none()) else {
            return Err(CoreError::field(Field::Param("code"), "no enrolment is waiting for a code; start one first"));
        };
        self.limiter.check_second_factor(None, &second_factor_key(s.tenant_id, s.user_id))?;
        let CodeShape::Totp(digits) = code_shape(code) else {
            return Err(CoreError::field(Field::Param("code"), "must be the 6-digit code the app shows"));
        };
        let secret = self.sealer().await?.open(&pending.sealed_secret, &seal_context(s.tenant_id, s.user_id))?;
        let totp = authenticator(&secret, None, String::new())?;
        let Some(step) = totp.check(&digits, self.unix_seconds()) else {
            self.audit_user(auth, AuditAction::SecondFactorFailed, None, json!({"during": "enrolment"}));
            return Err(CoreError::field(
                Field::Param("code"),
                "is wrong: check the app's clock and try the next code",
            ));
        };
        let (codes, hashes) = new_recovery_codes()?;
        let step = i64::try_from(step).map_err(CoreError::internal)?;
        if !self.store.second_factors.confirm_totp(s.tenant_id, s.user_id, step, &hashes, self.now()).await? {
            return Err(CoreError::field(Field::Param("code"), "no enrolment is waiting for a code; start one first"));
        }
        self.audit_user(auth, AuditAction::SecondFactorEnabled, None, json!({"method": "totp"}));
        Ok(codes)
    }

    /// Replaces the signed-in user's recovery codes (the old ones stop working).
    pub async fn regenerate_recovery_codes(&self, auth: &AuthSession, proof: Proof) -> CoreResult<RecoveryCodes> {
        let s = &auth.session;
        self.tenant_policy(s.tenant_id).await?;
        let user = self.me(auth).await?;
        if !user.second_factor {
            return Err(CoreError::Forbidden("Recovery codes come with an authenticator; set one up first."));
        }
        self.check_proof(auth, &user, proof).await?;
        let (codes, hashes) = new_recovery_codes()?;
        if !self.store.second_factors.replace_recovery_codes(s.tenant_id, s.user_id, &hashes, self.now()).await? {
            return Err(CoreError::Forbidden("Recovery codes come with an authenticator; set one up first."));
        }
        self.audit_user(auth, AuditAction::RecoveryCodesRegenerated, None, json!({}));
        Ok(codes)
    }

    /// Turns the signed-in user's second factor off (the authenticator and every recovery
    /// code go), on proof of the password or a code.
    pub async fn disable_totp(&self, auth: &AuthSession, proof: Proof) -> CoreResult<()> {
        let s = &auth.session;
        self.tenant_policy(s.tenant_id).await?;
        let user = self.me(auth).await?;
        let status = self.second_factor_status(auth).await?;
        if !status.enabled && !status.enrolling {
            return Err(CoreError::NotFound);
        }
        if status.enabled {
            self.check_proof(auth, &user, proof).await?;
        }
        if !self.store.second_factors.delete_totp(s.tenant_id, s.user_id).await? {
            return Err(CoreError::NotFound);
        }
        if status.enabled {
            self.audit_user(auth, AuditAction::SecondFactorDisabled, None, json!({"method": "totp"}));
        }
        Ok(())
    }

    /// The signed-in user's second factor.
    pub async fn second_factor_status(&self, auth: &AuthSession) -> CoreResult<SecondFactorStatus> {
        let s = &auth.session;
        let totp = self.store.second_factors.totp(s.tenant_id, s.user_id).await?;
        let enabled = totp.as_ref().is_some_and(|t| t.confirmed_at.is_some());
        let recovery_codes_left =
            if enabled { self.store.second_factors.recovery_codes_left(s.tenant_id, s.user_id).await? } else { 0 };
        Ok(SecondFactorStatus { enabled, enrolling: totp.is_some() && !enabled, recovery_codes_left })
    }

    /// Removes a user's second factor for an operator or a server (`users:manage`), for a user
    /// who lost their authenticator and their recovery codes. Audited.
    pub async fn reset_second_factor(&self, caller: &Caller, tenant: TenantId, id: UserId) -> CoreResult<bool> {
        caller.require(tenant, Scope::UsersManage)?;
        self.tenant_policy(tenant).await?;
        self.store.users.user(tenant, id).await?.ok_or(CoreError::NotFound)?;
        let removed = self.store.second_factors.delete_totp(tenant, id).await?;
        self.audit(Audit {
            action: AuditAction::SecondFactorReset,
            actor: caller.actor(),
            tenant: Some(tenant),
            user: Some(id),
            client: Some(caller.client()),
            details: json!({"removed": removed}),
        });
        Ok(removed)
    }

    /// Finishes a log-in that asked for a second factor: the step token from the first step
    /// and a code (TOTP or recovery). A wrong code leaves the step token usable until it
    /// expires (guesses are limited per account); the right one spends both.
    pub async fn login_second_factor(
        &self,
        tenant: TenantId,
        step: &Token,
        code: &str,
        client: &ClientInfo,
    ) -> CoreResult<LoginOutcome> {
        let (_, policy) = self.tenant_policy(tenant).await?;
        if !step.has_shape(STEP_TOKEN_PREFIX) {
            return Err(CoreError::InvalidToken);
        }
        let hash = step.hash();
        let found = self.store.tokens.peek_one_time_token(&hash, TokenPurpose::SecondFactorStep, self.now()).await?;
        let Some(found) = found.filter(|c| c.tenant_id == tenant) else { return Err(CoreError::InvalidToken) };
        let user = self.store.users.user(tenant, found.user_id).await?.ok_or(CoreError::InvalidToken)?;
        if found.data.get("password_version").and_then(Value::as_i64) != Some(user.password_version) {
            return Err(CoreError::InvalidToken);
        }
        let method = self.check_second_factor(&user, code, client).await?;
        let consumed =
            self.store.tokens.consume_one_time_token(&hash, TokenPurpose::SecondFactorStep, self.now()).await?;
        if consumed.is_none_or(|c| c.user_id != user.id) {
            return Err(CoreError::InvalidToken);
        }
        let first = found.data.get("method").and_then(Value::as_str).unwrap_or("password");
        let outcome: LoginOutcome<Option<IssuedSession>> =
            self.finish_second_step(user, &policy, client, first, method).await?;
        crate::login::with_session(outcome)
    }

    /// Checks a second-factor code for a user whose first factor was just proven: a TOTP code
    /// (once per time step) or a recovery code (once). Limited per account; failures audited.
    pub(crate) async fn check_second_factor(
        &self,
        user: &User,
        code: &str,
        client: &ClientInfo,
    ) -> CoreResult<SecondFactorMethod> {
        let ip = self.address_key(user.tenant_id, client.ip);
        self.limiter.check_second_factor(ip.as_deref(), &second_factor_key(user.tenant_id, user.id))?;
        let (tenant, id) = (user.tenant_id, user.id);
        let accepted = match code_shape(code) {
            CodeShape::Totp(digits) => {
                let cred = self.store.second_factors.totp(tenant, id).await?;
                match cred.filter(|c| c.confirmed_at.is_some()) {
                    Some(cred) => {
                        let secret = self.sealer().await?.open(&cred.sealed_secret, &seal_context(tenant, id))?;
                        let step = authenticator(&secret, None, String::new())?.check(&digits, self.unix_seconds());
                        match step.and_then(|s| i64::try_from(s).ok()) {
                            Some(step) => self
                                .store
                                .second_factors
                                .use_totp_step(tenant, id, step, self.now())
                                .await?
                                .then_some(SecondFactorMethod::Totp),
                            None => None,
                        }
                    }
                    None => None,
                }
            }
            CodeShape::Recovery(hash) => self
                .store
                .second_factors
                .use_recovery_code(tenant, id, &hash, self.now())
                .await?
                .then_some(SecondFactorMethod::RecoveryCode),
            CodeShape::Neither => None,
        };
        match accepted {
            Some(m) => {
                if m == SecondFactorMethod::RecoveryCode {
                    let left = self.store.second_factors.recovery_codes_left(tenant, id).await?;
                    self.audit(Audit {
                        action: AuditAction::RecoveryCodeUsed,
                        actor: Actor::User(id),
                        tenant: Some(tenant),
                        user: Some(id),
                        client: Some(client),
                        details: json!({"left": left}),
                    });
                }
                Ok(m)
            }
            None => {
                self.audit(Audit {
                    action: AuditAction::SecondFactorFailed,
                    actor: Actor::User(id),
                    tenant: Some(tenant),
                    user: Some(id),
                    client: Some(client),
                    details: json!({}),
                });
                Err(CoreError::SecondFactorInvalid)
            }
        }
    }

    /// Issues the step token that binds a log-in's second step to its first.
    pub(crate) async fn issue_step_token(&self, user: &User, first: &str) -> CoreResult<SecondFactorRequired> {
        let token = Token::generate(STEP_TOKEN_PREFIX).map_err(CoreError::internal)?;
        let now = self.now();
        let expires_at = now.plus(STEP_TOKEN_TTL);
        self.store
            .tokens
            .insert_one_time_token(&NewOneTimeToken {
                tenant_id: user.tenant_id,
                user_id: user.id,
                purpose: TokenPurpose::SecondFactorStep,
                token_hash: token.hash(),
                data: json!({"password_version": user.password_version, "method": first}),
                expires_at,
                now,
            })
            .await?;
        Ok(SecondFactorRequired { user_id: user.id, step_token: token, expires_at })
    }

    /// Checks what a user shows to change their second factor. A wrong code is a field error
    /// (the user is signed in: a 401 would read as a lost session).
    async fn check_proof(&self, auth: &AuthSession, user: &User, proof: Proof) -> CoreResult<()> {
        match proof {
            Proof::Password(p) => self.confirm_password(auth, p).await.map(|_| ()),
            Proof::Code(c) => {
                let s = &auth.session;
                let client = ClientInfo { ip: s.ip, user_agent: s.user_agent.clone(), surface: "" };
                match self.check_second_factor(user, &c, &client).await {
                    Ok(_) => Ok(()),
                    Err(CoreError::SecondFactorInvalid) => {
                        Err(CoreError::field(Field::Param("code"), "is wrong, or was used already"))
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Confirms a sensitive change of the signed-in user's own account (a new e-mail address,
    /// an authenticator, deleting the account): with `proof` — the password, or a code for an
    /// account with a second factor. An account with neither a password nor a second factor
    /// has nothing to show: its session must be fresh ([`RECENT_LOG_IN`]), so that an old,
    /// stolen session cannot do it.
    /// A missing proof is reported on `field` (where the caller's request carries the password).
    pub(crate) async fn confirm_sensitive(
        &self,
        auth: &AuthSession,
        user: &User,
        proof: Option<Proof>,
        field: Field,
    ) -> CoreResult<()> {
        if let Some(p) = proof {
            return self.check_proof(auth, user, p).await;
        }
        if self.has_password(user).await? {
            let what = if user.second_factor { "is required (or a second-factor code)" } else { "is required" };
            return Err(CoreError::field(field, what));
        }
        if user.second_factor {
            return Err(CoreError::field(Field::Param("code"), "is required"));
        }
        if self.now().since(auth.session.created_at) > RECENT_LOG_IN {
            return Err(CoreError::Forbidden("Log in again to do this."));
        }
        Ok(())
    }

    /// Whether the signed-in user's account has a password.
    pub async fn has_own_password(&self, auth: &AuthSession) -> CoreResult<bool> {
        let user = self.me(auth).await?;
        self.has_password(&user).await
    }

    async fn has_password(&self, user: &User) -> CoreResult<bool> {
        let found = self.store.users.user_with_secret_by_id(user.tenant_id, user.id).await?;
        Ok(found.is_some_and(|u| u.password_hash.is_some()))
    }

    fn unix_seconds(&self) -> u64 {
        u64::try_from(self.now().unix_seconds()).unwrap_or(0)
    }
}

/// The limiter's key for an account's second-factor guesses.
fn second_factor_key(tenant: TenantId, user: UserId) -> String {
    format!("{}:2fa:{}", tenant.0, user.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_read_in_the_shapes_people_type() {
        assert!(matches!(code_shape("123456"), CodeShape::Totp(d) if d == "123456"));
        assert!(matches!(code_shape(" 123 456 "), CodeShape::Totp(d) if d == "123456"));
        assert!(matches!(code_shape("12345"), CodeShape::Neither));
        assert!(matches!(code_shape("abcdefg"), CodeShape::Neither));
        let (codes, hashes) = new_recovery_codes().unwrap();
        assert_eq!(codes.0.len(), RECOVERY_CODES);
        let first = codes.0[0].as_str();
        assert_eq!(first.len(), 19, "four groups of four: {first}");
        let CodeShape::Recovery(h) = code_shape(&first.to_lowercase()) else { panic!("not a recovery code") };
        assert_eq!(h, hashes[0]);
        let CodeShape::Recovery(h) = code_shape(&first.replace('-', " ")) else { panic!("not a recovery code") };
        assert_eq!(h, hashes[0]);
        assert!(!format!("{codes:?}").contains(first));
    }

    #[test]
    fn the_authenticator_follows_rfc_6238() {
        // RFC 6238 appendix B, SHA-1, 8 digits cut to the last 6.
        let totp = authenticator(b"12345678901234567890", None, String::new()).unwrap();
        assert_eq!(totp.generate(59).to_string(), "287082");
        assert_eq!(totp.generate(1_111_111_109).to_string(), "081804");
        assert_eq!(totp.check("287082", 59 + 30), Some(1), "a step late is accepted, and says which step");
        assert_eq!(totp.check("287082", 59 + 90), None);
    }

    #[test]
    fn labels_lose_their_colons() {
        assert_eq!(label_part("Acme: Inc"), "Acme Inc");
        assert!(authenticator(&[7; 20], Some(label_part("a:b")), label_part("c:d")).is_ok());
    }
}
