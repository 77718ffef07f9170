//! The tenants part of the store: isolated user bases, their domains and policy.

use std::fmt::Debug;

use super::StoreResult;
use crate::clock::Timestamp;
use crate::ids::TenantId;
use crate::model::{Tenant, TenantPolicy};

/// A tenant to create.
#[derive(Clone, Debug)]
pub struct NewTenant {
    /// Unique slug.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Domains that resolve to it (lower-case).
    pub domains: Vec<String>,
    /// Policy overrides.
    pub policy: TenantPolicy,
    /// Creation time.
    pub now: Timestamp,
}

/// Changes to a tenant. `None` leaves a field alone.
#[derive(Clone, Debug, Default)]
pub struct TenantUpdate {
    /// New display name.
    pub name: Option<String>,
    /// Replace the domains with these (lower-case).
    pub domains: Option<Vec<String>>,
    /// Replace the policy overrides with these.
    pub policy: Option<TenantPolicy>,
    /// Disable or enable.
    pub disabled: Option<bool>,
}

/// Tenants. The default tenant always exists; a domain belongs to one tenant at most.
#[async_trait::async_trait]
pub trait TenantStore: Send + Sync + Debug {
    /// The tenant with this id.
    async fn tenant(&self, id: TenantId) -> StoreResult<Option<Tenant>>;
    /// The tenant with this slug.
    async fn tenant_by_slug(&self, slug: &str) -> StoreResult<Option<Tenant>>;
    /// The tenant a domain belongs to.
    async fn tenant_by_domain(&self, domain: &str) -> StoreResult<Option<Tenant>>;
    /// Every tenant, by id.
    async fn tenants(&self) -> StoreResult<Vec<Tenant>>;
    /// Creates a tenant.
    async fn insert_tenant(&self, t: &NewTenant) -> StoreResult<Tenant>;
    /// Changes a tenant in one transaction; `None` when there is no such tenant.
    async fn update_tenant(&self, id: TenantId, u: &TenantUpdate, now: Timestamp) -> StoreResult<Option<Tenant>>;
}
