//! API keys: issuing them (shown once, stored as a hash), checking them on every call, and
//! deciding what a key may do in which tenant.
//!
//! A key belongs to one tenant and is worthless in any other: presented to another tenant it
//! is refused exactly like an unknown key. An operator key belongs to no tenant and may act in
//! all of them.

use std::time::Duration;

use crate::audit::{Actor, Audit, AuditAction};
use crate::clock::Timestamp;
use crate::error::{CoreError, CoreResult, FieldErrors};
use crate::ids::{ApiKeyId, TenantId};
use crate::model::{ApiKey, Scope};
use crate::secret::Token;
use crate::store::NewApiKey;
use crate::{ClientInfo, Core};

/// Prefix of API keys.
pub const API_KEY_PREFIX: &str = "pck_";

/// How many characters of a key are kept in clear to tell keys apart (the prefix and 8
/// random characters: 48 bits, useless to an attacker, enough for a person).
const SHOWN_CHARS: usize = API_KEY_PREFIX.len() + 8;

/// How often a key's last use is written (at most).
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// A key to issue.
#[derive(Clone, Debug)]
pub struct CreateApiKeyCommand {
    /// Owning tenant; `None` for an operator key.
    pub tenant: Option<TenantId>,
    /// What it is for.
    pub name: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// When it stops working.
    pub expires_at: Option<Timestamp>,
}

/// A key just issued: the secret is shown this once.
#[derive(Debug)]
pub struct IssuedApiKey {
    /// The secret key.
    pub key: Token,
    /// Its record.
    pub record: ApiKey,
}

/// A caller authenticated by an API key.
#[derive(Clone, Debug)]
pub struct KeyCaller {
    /// The key.
    pub key: ApiKey,
}

impl KeyCaller {
    /// Who this caller is, for the audit log.
    pub fn actor(&self) -> Actor {
        Actor::Key(self.key.id)
    }

    /// Allows the call if the key works in `tenant` and grants `scope`. A key of another
    /// tenant gets [`CoreError::Unauthenticated`], the same answer as an unknown key.
    pub fn require(&self, tenant: TenantId, scope: Scope) -> CoreResult<()> {
        if self.key.tenant_id.is_some_and(|t| t != tenant) {
            return Err(CoreError::Unauthenticated);
        }
        self.require_scope(scope)
    }

    /// Allows the call if the key grants `scope` (for calls outside any tenant).
    pub fn require_scope(&self, scope: Scope) -> CoreResult<()> {
        if self.key.grants(scope) {
            Ok(())
        } else {
            Err(CoreError::Forbidden("This API key lacks the scope needed here."))
        }
    }
}

/// Whether text has the shape of an API key (checked before any look-up).
pub fn looks_like_api_key(s: &str) -> bool {
    Token::from_client(s).has_shape(API_KEY_PREFIX)
}

impl Core {
    /// Issues an API key. Operator keys (no tenant) carry exactly the `operator` scope, and
    /// only they do.
    pub async fn create_api_key(
        &self,
        cmd: CreateApiKeyCommand,
        actor: Actor,
        client: &ClientInfo,
    ) -> CoreResult<IssuedApiKey> {
        let mut errors = FieldErrors::new();
        let name = cmd.name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            errors.add("name", "must be 1 to 100 characters");
        }
        let mut scopes = cmd.scopes.clone();
        scopes.sort();
        scopes.dedup();
        match cmd.tenant {
            None if scopes != [Scope::Operator] => {
                errors.add("scopes", "a key without a tenant is an operator key: its only scope is operator")
            }
            Some(_) if scopes.is_empty() => errors.add("scopes", "give at least one scope"),
            Some(_) if scopes.contains(&Scope::Operator) => errors.add("scopes", "operator keys belong to no tenant"),
            _ => {}
        }
        if cmd.expires_at.is_some_and(|e| e <= self.now()) {
            errors.add("expires_at", "must be in the future");
        }
        errors.into_result()?;
        if let Some(t) = cmd.tenant {
            self.tenant_policy(t).await?;
        }
        let key = Token::generate(API_KEY_PREFIX).map_err(CoreError::internal)?;
        let new = NewApiKey {
            tenant_id: cmd.tenant,
            name: name.to_owned(),
            prefix: key.expose().chars().take(SHOWN_CHARS).collect(),
            key_hash: key.hash(),
            scopes,
            expires_at: cmd.expires_at,
            now: self.now(),
        };
        let record = self.store.api_keys.insert_api_key(&new).await?;
        self.audit(Audit {
            action: AuditAction::ApiKeyCreated,
            actor,
            tenant: cmd.tenant,
            user: None,
            client: Some(client),
            details: serde_json::json!({
                "key_id": record.id,
                "prefix": record.prefix,
                "scopes": record.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            }),
        });
        Ok(IssuedApiKey { key, record })
    }

    /// Issues an API key on behalf of another key, which it cannot outlive: without an expiry
    /// the new key expires with its creator, and a later expiry is refused.
    pub async fn create_api_key_as(
        &self,
        creator: &KeyCaller,
        mut cmd: CreateApiKeyCommand,
        client: &ClientInfo,
    ) -> CoreResult<IssuedApiKey> {
        if let Some(own) = creator.key.expires_at {
            match cmd.expires_at {
                Some(e) if e > own => {
                    return Err(CoreError::field(
                        "expires_at",
                        "must not be later than the expiry of the key creating it",
                    ));
                }
                None => cmd.expires_at = Some(own),
                Some(_) => {}
            }
        }
        self.create_api_key(cmd, creator.actor(), client).await
    }

    /// Checks a presented API key: it must exist, not be revoked and not be expired. Its last
    /// use is recorded (at most once a minute per key and node).
    pub async fn authenticate_key(&self, key: &Token) -> CoreResult<KeyCaller> {
        if !key.has_shape(API_KEY_PREFIX) {
            return Err(CoreError::Unauthenticated);
        }
        let now = self.now();
        let found = self.store.api_keys.api_key_by_hash(&key.hash()).await?;
        let Some(k) = found.filter(|k| k.is_live_at(now)) else { return Err(CoreError::Unauthenticated) };
        if self.key_touches.get(&k.id).is_none() {
            self.key_touches.insert(k.id, ());
            if let Err(e) = self.store.api_keys.touch_api_key(k.id, now).await {
                tracing::warn!(error = %e, "could not record an API key's use");
            }
            self.audit(Audit {
                action: AuditAction::ApiKeyUsed,
                actor: Actor::Key(k.id),
                tenant: k.tenant_id,
                user: None,
                client: None,
                details: serde_json::json!({"prefix": k.prefix}),
            });
        }
        Ok(KeyCaller { key: k })
    }

    /// Keys of a tenant, or operator keys (`None`), newest first.
    pub async fn list_api_keys(&self, tenant: Option<TenantId>) -> CoreResult<Vec<ApiKey>> {
        Ok(self.store.api_keys.api_keys(tenant).await?)
    }

    /// Revokes a key of a tenant (or an operator key with `None`).
    pub async fn revoke_api_key(
        &self,
        tenant: Option<TenantId>,
        id: ApiKeyId,
        actor: Actor,
        client: &ClientInfo,
    ) -> CoreResult<()> {
        if !self.store.api_keys.revoke_api_key(tenant, id, self.now()).await? {
            return Err(CoreError::NotFound);
        }
        self.audit(Audit {
            action: AuditAction::ApiKeyRevoked,
            actor,
            tenant,
            user: None,
            client: Some(client),
            details: serde_json::json!({"key_id": id}),
        });
        Ok(())
    }
}

pub(crate) fn key_touch_cache() -> moka::sync::Cache<ApiKeyId, ()> {
    moka::sync::Cache::builder().max_capacity(100_000).time_to_live(TOUCH_EVERY).build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;

    fn caller(tenant: Option<i64>, scopes: &[Scope]) -> KeyCaller {
        KeyCaller {
            key: ApiKey {
                id: ApiKeyId(1),
                tenant_id: tenant.map(TenantId),
                name: "k".into(),
                prefix: "pck_abcdefgh".into(),
                scopes: scopes.to_vec(),
                expires_at: None,
                last_used_at: None,
                revoked_at: None,
                created_at: Timestamp::from_unix_micros(0),
            },
        }
    }

    #[test]
    fn scopes_nest_and_keys_stay_in_their_tenant() {
        let reader = caller(Some(2), &[Scope::UsersRead]);
        assert!(reader.require(TenantId(2), Scope::UsersRead).is_ok());
        assert!(matches!(reader.require(TenantId(2), Scope::UsersManage), Err(CoreError::Forbidden(_))));
        assert!(matches!(reader.require(TenantId(3), Scope::UsersRead), Err(CoreError::Unauthenticated)));
        let admin = caller(Some(2), &[Scope::TenantAdmin]);
        for s in [Scope::CredentialsVerify, Scope::UsersRead, Scope::UsersManage, Scope::TenantAdmin] {
            assert!(admin.require(TenantId(2), s).is_ok());
        }
        assert!(admin.require_scope(Scope::Operator).is_err());
        let verify = caller(Some(2), &[Scope::CredentialsVerify]);
        assert!(verify.require(TenantId(2), Scope::UsersRead).is_err());
        let op = caller(None, &[Scope::Operator]);
        assert!(op.require(TenantId(7), Scope::TenantAdmin).is_ok());
        assert!(op.require_scope(Scope::Operator).is_ok());
    }

    #[test]
    fn key_shape() {
        let k = Token::generate(API_KEY_PREFIX).unwrap();
        assert!(looks_like_api_key(k.expose()));
        assert!(!looks_like_api_key(&k.expose().replace("pck_", "pcs_")));
    }
}
