//! The API keys part of the store: keys for servers, stored only as hashes.

use std::fmt::Debug;

use super::StoreResult;
use crate::clock::Timestamp;
use crate::ids::{ApiKeyId, TenantId};
use crate::model::{ApiKey, Scope};
use crate::secret::TokenHash;

/// An API key to create.
#[derive(Clone)]
pub struct NewApiKey {
    /// Owning tenant; `None` for an operator key.
    pub tenant_id: Option<TenantId>,
    /// What the key is for.
    pub name: String,
    /// The key's first characters (not a secret).
    pub prefix: String,
    /// SHA-256 of the key.
    pub key_hash: TokenHash,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// When it stops working.
    pub expires_at: Option<Timestamp>,
    /// Creation time.
    pub now: Timestamp,
}

impl Debug for NewApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiKey")
            .field("tenant_id", &self.tenant_id)
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// API keys of tenants, and operator keys (which belong to no tenant).
#[async_trait::async_trait]
pub trait ApiKeyStore: Send + Sync + Debug {
    /// Creates an API key.
    async fn insert_api_key(&self, k: &NewApiKey) -> StoreResult<ApiKey>;
    /// The API key with this hash (revoked and expired ones included).
    async fn api_key_by_hash(&self, hash: &TokenHash) -> StoreResult<Option<ApiKey>>;
    /// API keys of a tenant (`Some`) or operator keys (`None`), newest first.
    async fn api_keys(&self, tenant: Option<TenantId>) -> StoreResult<Vec<ApiKey>>;
    /// Revokes a key of a tenant (`Some`) or an operator key (`None`); `false` if there is no
    /// such live key.
    async fn revoke_api_key(&self, tenant: Option<TenantId>, id: ApiKeyId, now: Timestamp) -> StoreResult<bool>;
    /// Records that a key was used.
    async fn touch_api_key(&self, id: ApiKeyId, now: Timestamp) -> StoreResult<()>;
}
