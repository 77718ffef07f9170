//! A tenant's own settings, for its administrators: roles, custom attribute definitions, and
//! the census of password hash schemes. Reading roles and attributes needs `users:read`;
//! changing them, `tenant:admin`. Every change is audited.

use serde_json::json;

use crate::Core;
use crate::audit::{Audit, AuditAction};
use crate::caller::Caller;
use crate::error::{CoreError, CoreResult, Field};
use crate::ids::{AttributeId, RoleId, TenantId};
use crate::model::{AttributeDefinition, AttributeKind, Role, Scope};
use crate::store::{NewAttributeDefinition, NewRole};

/// Longest role or attribute name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// Longest role description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 500;

/// A custom attribute to define.
#[derive(Clone, Debug)]
pub struct DefineAttribute {
    /// 1 to 64 letters, digits, `_` or `-`, starting with a letter; unique in the tenant.
    pub name: String,
    /// The type of its values.
    pub kind: AttributeKind,
    /// Whether every new account must have a value.
    pub required: bool,
    /// Whether users may set it themselves.
    pub user_editable: bool,
    /// Problems the surface found reading its request (a type it did not know), reported once
    /// the caller may define attributes.
    pub problems: crate::FieldErrors,
}

impl Core {
    /// A tenant's roles.
    pub async fn list_roles(&self, caller: &Caller, tenant: TenantId) -> CoreResult<Vec<Role>> {
        caller.require(tenant, Scope::UsersRead)?;
        self.tenant_policy(tenant).await?;
        Ok(self.store.roles.roles(tenant).await?)
    }

    /// Defines a role in a tenant.
    pub async fn create_role(
        &self,
        caller: &Caller,
        tenant: TenantId,
        name: &str,
        description: Option<&str>,
    ) -> CoreResult<Role> {
        caller.require(tenant, Scope::TenantAdmin)?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(CoreError::field(Field::Param("name"), format!("must be 1 to {MAX_NAME_CHARS} characters")));
        }
        let description = description.map(str::trim).filter(|d| !d.is_empty());
        if description.is_some_and(|d| {
            d.chars().count() > MAX_DESCRIPTION_CHARS || d.chars().any(|c| c.is_control() && c != '\n')
        }) {
            return Err(CoreError::field(
                Field::Param("description"),
                format!("must be at most {MAX_DESCRIPTION_CHARS} characters, without control characters"),
            ));
        }
        self.tenant_policy(tenant).await?;
        let r = NewRole {
            tenant_id: tenant,
            name: name.to_owned(),
            description: description.map(str::to_owned),
            now: self.now(),
        };
        let role = self.store.roles.insert_role(&r).await?;
        self.audit(Audit {
            action: AuditAction::RoleCreated,
            actor: caller.actor(),
            tenant: Some(tenant),
            user: None,
            client: Some(caller.client()),
            details: json!({"role_id": role.id, "name": role.name}),
        });
        Ok(role)
    }

    /// Deletes a role; its holders lose it.
    pub async fn delete_role(&self, caller: &Caller, tenant: TenantId, id: RoleId) -> CoreResult<()> {
        caller.require(tenant, Scope::TenantAdmin)?;
        if !self.store.roles.delete_role(tenant, id).await? {
            return Err(CoreError::NotFound);
        }
        self.audit(Audit {
            action: AuditAction::RoleDeleted,
            actor: caller.actor(),
            tenant: Some(tenant),
            user: None,
            client: Some(caller.client()),
            details: json!({"role_id": id}),
        });
        Ok(())
    }

    /// A tenant's custom attribute definitions (a disabled tenant's too: it can be exported).
    pub async fn list_attributes(&self, caller: &Caller, tenant: TenantId) -> CoreResult<Vec<AttributeDefinition>> {
        caller.require(tenant, Scope::UsersRead)?;
        Ok(self.store.attributes.attribute_definitions(tenant).await?)
    }

    /// Defines a custom attribute for a tenant's users.
    pub async fn define_attribute(
        &self,
        caller: &Caller,
        tenant: TenantId,
        def: DefineAttribute,
    ) -> CoreResult<AttributeDefinition> {
        caller.require(tenant, Scope::TenantAdmin)?;
        let mut errors = def.problems;
        let name = def.name.trim();
        let ok = !name.is_empty()
            && name.len() <= MAX_NAME_CHARS
            && name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !ok {
            errors.add(
                Field::Param("name"),
                format!("must be 1 to {MAX_NAME_CHARS} letters, digits, '_' or '-', starting with a letter"),
            );
        }
        errors.into_result()?;
        self.tenant_policy(tenant).await?;
        let d = NewAttributeDefinition {
            tenant_id: tenant,
            name: name.to_owned(),
            kind: def.kind,
            required: def.required,
            user_editable: def.user_editable,
            now: self.now(),
        };
        let d = self.store.attributes.insert_attribute_definition(&d).await?;
        self.audit(Audit {
            action: AuditAction::AttributeCreated,
            actor: caller.actor(),
            tenant: Some(tenant),
            user: None,
            client: Some(caller.client()),
            details: json!({"attribute_id": d.id, "name": d.name}),
        });
        Ok(d)
    }

    /// Changes whether an attribute is required and whether users may edit it (its type
    /// cannot change: existing values were checked against it).
    pub async fn update_attribute(
        &self,
        caller: &Caller,
        tenant: TenantId,
        id: AttributeId,
        required: Option<bool>,
        user_editable: Option<bool>,
    ) -> CoreResult<AttributeDefinition> {
        caller.require(tenant, Scope::TenantAdmin)?;
        let d = self
            .store
            .attributes
            .update_attribute_definition(tenant, id, required, user_editable, self.now())
            .await?
            .ok_or(CoreError::NotFound)?;
        self.audit(Audit {
            action: AuditAction::AttributeUpdated,
            actor: caller.actor(),
            tenant: Some(tenant),
            user: None,
            client: Some(caller.client()),
            details: json!({"attribute_id": d.id, "required": d.required, "user_editable": d.user_editable}),
        });
        Ok(d)
    }

    /// Deletes an attribute definition with every value of it.
    pub async fn delete_attribute(&self, caller: &Caller, tenant: TenantId, id: AttributeId) -> CoreResult<()> {
        caller.require(tenant, Scope::TenantAdmin)?;
        if !self.store.attributes.delete_attribute_definition(tenant, id).await? {
            return Err(CoreError::NotFound);
        }
        self.audit(Audit {
            action: AuditAction::AttributeDeleted,
            actor: caller.actor(),
            tenant: Some(tenant),
            user: None,
            client: Some(caller.client()),
            details: json!({"attribute_id": id}),
        });
        Ok(())
    }

    /// How many users of a tenant are on each password hash scheme (`none`: no password).
    pub async fn password_scheme_report(&self, caller: &Caller, tenant: TenantId) -> CoreResult<Vec<(String, u64)>> {
        caller.require(tenant, Scope::TenantAdmin)?;
        self.tenant_policy(tenant).await?;
        Ok(self.store.import.password_schemes(tenant).await?)
    }
}
