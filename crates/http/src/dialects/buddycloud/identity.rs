//! Who a buddycloud identifier names. buddycloud accounts are XMPP addresses, `user@domain`;
//! clients also send a bare `user` (the original server then added its own domain). Here:
//!
//! - `user@domain`, where `domain` is a domain of a tenant: that tenant (whatever the request's
//!   path or `Host` says), and `user` is the username there;
//! - `user@domain`, where `domain` belongs to no tenant: the request's tenant, and the whole
//!   identifier is an e-mail address there (so a tenant without domains still lets its users
//!   in by their address); account creation refuses such an identifier instead, so that no
//!   domain is ever silently dropped;
//! - `user` without `@`: the request's tenant (its `/t/{slug}` path, its `Host`, or the default
//!   tenant), and `user` is the username.
//!
//! Either way the tenant must answer the dialect ([`Core::dialect_policy`]); a domain of a
//! disabled tenant, or a tenant that has the dialect off, leads nowhere. Nothing here looks an
//! account up: resolution depends only on tenants, never on whether an account exists.

use portcullis_core::model::{Policy, User};
use portcullis_core::parse::LoginKey;
use portcullis_core::{Core, CoreError, CoreResult, Dialect, TenantId};

/// The longest local part and the longest domain the document accepts, in bytes.
pub const MAX_PART_BYTES: usize = 1023;

/// An identifier as sent, split at its last `@`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jid<'a> {
    /// `local@domain`.
    Full {
        /// Before the `@`.
        local: &'a str,
        /// After the `@`.
        domain: &'a str,
    },
    /// No `@`.
    Bare(&'a str),
}

impl<'a> Jid<'a> {
    /// Splits an identifier (surrounding whitespace ignored).
    pub fn split(s: &'a str) -> Self {
        let s = s.trim();
        match s.rsplit_once('@') {
            Some((local, domain)) => Self::Full { local, domain },
            None => Self::Bare(s),
        }
    }

    /// What the document's length limits say of it, as field problems.
    pub fn too_long(&self) -> Option<&'static str> {
        match self {
            Self::Full { local, .. } | Self::Bare(local) if local.len() > MAX_PART_BYTES => {
                Some("the part before @ must be at most 1023 bytes")
            }
            Self::Full { domain, .. } if domain.len() > MAX_PART_BYTES => Some("the domain must be at most 1023 bytes"),
            _ => None,
        }
    }
}

/// How an account is named in the tenant that serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Name {
    /// By username (a JID's local part, or a bare username).
    Username(String),
    /// By e-mail address (a JID whose domain is no tenant's).
    Email(String),
}

impl Name {
    /// The key the core looks the account up by.
    pub fn key(&self) -> LoginKey {
        match self {
            Self::Username(u) => LoginKey::username(u),
            Self::Email(e) => LoginKey::email(e),
        }
    }

    /// The identifier as the core's requests by identifier take it.
    pub fn as_login(&self) -> &str {
        match self {
            Self::Username(s) | Self::Email(s) => s,
        }
    }
}

/// An account named in a tenant that answers the dialect.
#[derive(Debug, Clone)]
pub struct Named {
    /// The tenant.
    pub tenant: TenantId,
    /// Its status for a successful credential check (`buddycloud_root_status`).
    pub root_status: u16,
    /// The account's name there.
    pub name: Name,
}

impl Named {
    /// Whether two identifiers name the same account, as written (the same tenant and the
    /// same normalised key).
    pub fn same_as(&self, other: &Named) -> bool {
        self.tenant == other.tenant && self.name.key() == other.name.key()
    }

    /// Whether this identifier names `user`.
    pub fn names(&self, user: &User) -> bool {
        let key = self.name.key();
        self.tenant == user.tenant_id
            && match &self.name {
                Name::Username(_) => user.username.as_deref().is_some_and(|u| LoginKey::username(u) == key),
                Name::Email(_) => user.email.as_deref().is_some_and(|e| LoginKey::email(e) == key),
            }
    }
}

/// What to make of `user@domain` when the domain is no tenant's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Foreign {
    /// The whole identifier is an e-mail address in the request's tenant.
    AsEmail,
    /// Refuse it (account creation).
    Refuse,
}

/// Where an identifier leads.
#[derive(Debug, Clone)]
pub enum Resolved {
    /// A tenant that answers the dialect.
    Served(Named),
    /// A domain that is no tenant's, and [`Foreign::Refuse`] was asked.
    ForeignDomain,
    /// A domain of a disabled tenant, or a tenant with the dialect off.
    Off,
}

/// Resolves an identifier sent to the request's tenant `here`.
pub async fn resolve(core: &Core, here: TenantId, ident: &str, foreign: Foreign) -> CoreResult<Resolved> {
    let (tenant, name) = match Jid::split(ident) {
        Jid::Bare(user) => (here, Name::Username(user.to_owned())),
        Jid::Full { local, domain } => match core.tenant_for_domain(domain).await {
            Ok(Some(t)) => (t, Name::Username(local.to_owned())),
            Ok(None) if foreign == Foreign::AsEmail => (here, Name::Email(ident.trim().to_owned())),
            Ok(None) => return Ok(Resolved::ForeignDomain),
            Err(CoreError::NotFound) => return Ok(Resolved::Off),
            Err(e) => return Err(e),
        },
    };
    served(core, tenant).await.map(|p| match p {
        Some(policy) => Resolved::Served(Named { tenant, root_status: policy.buddycloud_root_status, name }),
        None => Resolved::Off,
    })
}

/// The policy of `tenant` when it answers the dialect; `None` when it does not (unknown,
/// disabled, or the dialect off).
pub async fn served(core: &Core, tenant: TenantId) -> CoreResult<Option<Policy>> {
    match core.dialect_policy(tenant, Dialect::Buddycloud).await {
        Ok(p) => Ok(Some(p)),
        Err(CoreError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_split_at_the_last_at_sign() {
        assert_eq!(Jid::split(" juliet@buddycloud.com "), Jid::Full { local: "juliet", domain: "buddycloud.com" });
        assert_eq!(Jid::split("a@b@c.org"), Jid::Full { local: "a@b", domain: "c.org" });
        assert_eq!(Jid::split("juliet"), Jid::Bare("juliet"));
        assert_eq!(Jid::split("@x.org"), Jid::Full { local: "", domain: "x.org" });
    }

    #[test]
    fn each_part_is_limited_to_1023_bytes() {
        let long = "é".repeat(512);
        assert!(Jid::split(&long).too_long().is_some(), "1024 bytes in 512 characters");
        assert!(Jid::split(&format!("{}@x.org", "a".repeat(1023))).too_long().is_none());
        assert!(Jid::split(&format!("a@{}", "b".repeat(1024))).too_long().is_some());
    }

    #[test]
    fn names_compare_in_their_normalised_form() {
        let named = |name| Named { tenant: TenantId::DEFAULT, root_status: 200, name };
        assert!(named(Name::Username("Juliet".into())).same_as(&named(Name::Username("juliet".into()))));
        assert!(!named(Name::Username("juliet".into())).same_as(&named(Name::Email("juliet@x.org".into()))));
    }
}
