//! The legacy account APIs Portcullis speaks on the wire, and which tenants answer them.
//!
//! A dialect is a surface: it parses its wire format and calls the same core operations as
//! the native API. What the core knows of it is its name (audit events carry it as their
//! surface) and whether a tenant has it switched on (its `policy.dialects`); a request through
//! a dialect a tenant has not switched on is refused as though the tenant did not exist there.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Core;
use crate::audit::{Audit, AuditAction};
use crate::caller::Caller;
use crate::error::{CoreError, CoreResult};
use crate::ids::TenantId;
use crate::model::{Policy, Tenant};
use crate::store::TenantUpdate;

/// A legacy account API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// The Metrixstream site API (`action=login | signup | logout | forgotpassword`).
    Metrixstream,
    /// Open Source Social Network's `user_authenticate` service.
    Ossn,
    /// Newspark's `users.confirmCredentials`.
    Newspark,
    /// The buddycloud HTTP API's accounts.
    Buddycloud,
    /// Siberian CMS's `api_account` admin API.
    Siberian,
}

impl Dialect {
    /// Every dialect.
    pub const ALL: [Dialect; 5] =
        [Dialect::Metrixstream, Dialect::Ossn, Dialect::Newspark, Dialect::Buddycloud, Dialect::Siberian];

    /// Its name, as configuration, the admin API and the audit log spell it.
    pub const fn name(self) -> &'static str {
        match self {
            Dialect::Metrixstream => "metrixstream",
            Dialect::Ossn => "ossn",
            Dialect::Newspark => "newspark",
            Dialect::Buddycloud => "buddycloud",
            Dialect::Siberian => "siberian",
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dialect {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Dialect::ALL.into_iter().find(|d| d.name().eq_ignore_ascii_case(s.trim())).ok_or_else(|| {
            let names: Vec<&str> = Dialect::ALL.iter().map(|d| d.name()).collect();
            format!("unknown dialect {s:?}; the dialects are {}", names.join(", "))
        })
    }
}

impl Core {
    /// The policy in force for a tenant (the server's, overlaid with the tenant's overrides),
    /// whether the tenant is enabled or not.
    pub fn effective_policy(&self, tenant: &Tenant) -> Policy {
        self.config.policy.overlay(&tenant.policy)
    }

    /// The policy of a tenant that answers `dialect`: [`CoreError::NotFound`] when the tenant
    /// does not exist, is disabled, or has not switched the dialect on.
    pub async fn dialect_policy(&self, tenant: TenantId, dialect: Dialect) -> CoreResult<Policy> {
        let (_, policy) = self.tenant_policy(tenant).await?;
        if policy.dialects.contains(&dialect) { Ok(policy) } else { Err(CoreError::NotFound) }
    }

    /// Switches a dialect on or off for a tenant (operators only); audited. Other overrides of
    /// the tenant's policy are kept. A tenant that follows the server's list of dialects gets
    /// its own list from then on: the server's, with this change.
    pub async fn set_dialect(
        &self,
        caller: &Caller,
        tenant: TenantId,
        dialect: Dialect,
        on: bool,
    ) -> CoreResult<Tenant> {
        caller.require_operator()?;
        let current = self.store.tenants.tenant(tenant).await?.ok_or(CoreError::NotFound)?;
        let mut policy = current.policy.clone();
        let mut list = policy.dialects.clone().unwrap_or_else(|| self.config.policy.dialects.clone());
        list.retain(|d| *d != dialect);
        if on {
            list.push(dialect);
        }
        list.sort();
        policy.dialects = Some(list);
        let update = TenantUpdate { name: None, domains: None, policy: Some(policy), disabled: None };
        let tenant = self.update_tenant(caller, tenant, update).await?;
        self.audit(Audit {
            action: if on { AuditAction::DialectEnabled } else { AuditAction::DialectDisabled },
            actor: caller.actor(),
            tenant: Some(tenant.id),
            user: None,
            client: Some(caller.client()),
            details: json!({"dialect": dialect.name()}),
        });
        Ok(tenant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for d in Dialect::ALL {
            assert_eq!(d.name().parse::<Dialect>(), Ok(d));
            assert_eq!(serde_json::to_value(d).ok(), Some(serde_json::Value::String(d.name().into())));
        }
        assert!("OSSN".parse::<Dialect>().is_ok());
        assert!("soap".parse::<Dialect>().is_err());
    }
}
