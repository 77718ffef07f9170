//! API keys: issuing them (shown once, stored as a hash) and checking them on every call.
//! What a key may do in which tenant is decided by [`crate::caller::Caller`].
//!
//! A key belongs to one tenant and is worthless in any other: presented to another tenant it
//! is refused exactly like an unknown key. An operator key belongs to no tenant and may act in
//! all of them.

use std::time::Duration;

use crate::audit::{Actor, Audit, AuditAction};
use crate::caller::Caller;
use crate::clock::Timestamp;
use crate::error::{CoreError, CoreResult, Field, FieldErrors};
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

/// Most keys a node remembers having recorded the use of (a remembered key is not written
/// again within [`TOUCH_EVERY`]).
const TOUCHED_KEYS_CAPACITY: u64 = 100_000;

/// Longest key name, in characters.
pub const MAX_KEY_NAME_CHARS: usize = 100;

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
    /// Problems the surface found reading its request (an unknown scope, a malformed time),
    /// reported with the core's own once the caller may create keys.
    pub problems: FieldErrors,
}

/// A key just issued: the secret is shown this once.
#[derive(Debug)]
pub struct IssuedApiKey {
    /// The secret key.
    pub key: Token,
    /// Its record.
    pub record: ApiKey,
}

/// Whether text has the shape of an API key (checked before any look-up).
pub fn looks_like_api_key(s: &str) -> bool {
    Token::from_client(s).has_shape(API_KEY_PREFIX)
}

impl Core {
    /// Issues an API key: for a tenant (the caller administers it), or an operator key
    /// (operators only). Operator keys carry exactly the `operator` scope, and only they do. A
    /// key creating a key cannot let it outlive itself: without an expiry the new key expires
    /// with its creator, and a later expiry is refused.
    pub async fn create_api_key(&self, caller: &Caller, mut cmd: CreateApiKeyCommand) -> CoreResult<IssuedApiKey> {
        caller.require_admin_of(cmd.tenant)?;
        let mut errors = std::mem::take(&mut cmd.problems);
        let name = cmd.name.trim();
        if name.is_empty() || name.chars().count() > MAX_KEY_NAME_CHARS || name.chars().any(char::is_control) {
            errors.add(Field::Param("name"), format!("must be 1 to {MAX_KEY_NAME_CHARS} characters"));
        }
        let mut scopes = cmd.scopes.clone();
        scopes.sort();
        scopes.dedup();
        match cmd.tenant {
            None if scopes != [Scope::Operator] => errors
                .add(Field::Param("scopes"), "a key without a tenant is an operator key: its only scope is operator"),
            Some(_) if scopes.is_empty() => errors.add(Field::Param("scopes"), "give at least one scope"),
            Some(_) if scopes.contains(&Scope::Operator) => {
                errors.add(Field::Param("scopes"), "operator keys belong to no tenant")
            }
            _ => {}
        }
        if cmd.expires_at.is_some_and(|e| e <= self.now()) {
            errors.add(Field::Param("expires_at"), "must be in the future");
        }
        if let Some(own) = caller.key().and_then(|k| k.expires_at) {
            match cmd.expires_at {
                Some(e) if e > own => {
                    errors.add(Field::Param("expires_at"), "must not be later than the expiry of the key creating it")
                }
                None => cmd.expires_at = Some(own),
                Some(_) => {}
            }
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
            actor: caller.actor(),
            tenant: cmd.tenant,
            user: None,
            client: Some(caller.client()),
            details: serde_json::json!({
                "key_id": record.id,
                "prefix": record.prefix,
                "scopes": record.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            }),
        });
        Ok(IssuedApiKey { key, record })
    }

    /// Checks a key presented to `tenant`: it must exist, not be revoked, not be expired, and
    /// belong to that tenant (or to no tenant: an operator key). A key of another tenant is
    /// refused exactly like an unknown key. Its last use is recorded (at most once a minute
    /// per key and node). What the key may do is decided by each operation.
    pub async fn authenticate_key(&self, key: &Token, tenant: TenantId, client: ClientInfo) -> CoreResult<Caller> {
        if !key.has_shape(API_KEY_PREFIX) {
            return Err(CoreError::Unauthenticated);
        }
        let now = self.now();
        let found = self.store.api_keys.api_key_by_hash(&key.hash()).await?;
        let Some(k) = found.filter(|k| k.is_live_at(now) && k.tenant_id.is_none_or(|t| t == tenant)) else {
            return Err(CoreError::Unauthenticated);
        };
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
        Ok(Caller::with_key(k, client))
    }

    /// Keys of a tenant, or operator keys (`None`), newest first.
    pub async fn list_api_keys(&self, caller: &Caller, tenant: Option<TenantId>) -> CoreResult<Vec<ApiKey>> {
        caller.require_admin_of(tenant)?;
        Ok(self.store.api_keys.api_keys(tenant).await?)
    }

    /// Revokes a key of a tenant (or an operator key with `None`).
    pub async fn revoke_api_key(&self, caller: &Caller, tenant: Option<TenantId>, id: ApiKeyId) -> CoreResult<()> {
        caller.require_admin_of(tenant)?;
        if !self.store.api_keys.revoke_api_key(tenant, id, self.now()).await? {
            return Err(CoreError::NotFound);
        }
        self.audit(Audit {
            action: AuditAction::ApiKeyRevoked,
            actor: caller.actor(),
            tenant,
            user: None,
            client: Some(caller.client()),
            details: serde_json::json!({"key_id": id}),
        });
        Ok(())
    }
}

pub(crate) fn key_touch_cache() -> moka::sync::Cache<ApiKeyId, ()> {
    moka::sync::Cache::builder().max_capacity(TOUCHED_KEYS_CAPACITY).time_to_live(TOUCH_EVERY).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_shape() {
        let k = Token::generate(API_KEY_PREFIX).unwrap();
        assert!(looks_like_api_key(k.expose()));
        assert!(!looks_like_api_key(&k.expose().replace("pck_", "pcs_")));
    }
}
