//! The roles part of the store: per-tenant roles that users hold.

use std::fmt::Debug;

use super::StoreResult;
use crate::clock::Timestamp;
use crate::ids::{RoleId, TenantId};
use crate::model::Role;

/// A role to create.
#[derive(Clone, Debug)]
pub struct NewRole {
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Name, unique in the tenant (case-insensitively).
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// Creation time.
    pub now: Timestamp,
}

/// Roles, unique by name (case-insensitively) within their tenant.
#[async_trait::async_trait]
pub trait RoleStore: Send + Sync + Debug {
    /// Creates a role.
    async fn insert_role(&self, r: &NewRole) -> StoreResult<Role>;
    /// The tenant's roles, by name.
    async fn roles(&self, tenant: TenantId) -> StoreResult<Vec<Role>>;
    /// Deletes a role (and every grant of it); `false` if absent.
    async fn delete_role(&self, tenant: TenantId, id: RoleId) -> StoreResult<bool>;
}
