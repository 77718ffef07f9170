//! The attributes part of the store: per-tenant definitions of custom user attributes.

use std::fmt::Debug;

use super::StoreResult;
use crate::clock::Timestamp;
use crate::ids::{AttributeId, TenantId};
use crate::model::{AttributeDefinition, AttributeKind};

/// A custom attribute definition to create.
#[derive(Clone, Debug)]
pub struct NewAttributeDefinition {
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Name, unique in the tenant.
    pub name: String,
    /// Value type.
    pub kind: AttributeKind,
    /// Whether required at creation.
    pub required: bool,
    /// Whether users may set it.
    pub user_editable: bool,
    /// Creation time.
    pub now: Timestamp,
}

/// Custom attribute definitions, unique by name within their tenant. (Values live with the
/// users: see [`super::UserStore`].)
#[async_trait::async_trait]
pub trait AttributeStore: Send + Sync + Debug {
    /// Creates a custom attribute definition.
    async fn insert_attribute_definition(&self, d: &NewAttributeDefinition) -> StoreResult<AttributeDefinition>;
    /// The tenant's attribute definitions, by name.
    async fn attribute_definitions(&self, tenant: TenantId) -> StoreResult<Vec<AttributeDefinition>>;
    /// Changes whether an attribute is required and whether users may edit it; `None` when
    /// there is no such definition in the tenant.
    async fn update_attribute_definition(
        &self,
        tenant: TenantId,
        id: AttributeId,
        required: Option<bool>,
        user_editable: Option<bool>,
        now: Timestamp,
    ) -> StoreResult<Option<AttributeDefinition>>;
    /// Deletes an attribute definition (and every value of it); `false` if absent.
    async fn delete_attribute_definition(&self, tenant: TenantId, id: AttributeId) -> StoreResult<bool>;
}
