//! Managing tenants (for operators), and finding the tenant a request or a `user@domain`
//! login is for.

use std::sync::Arc;

use crate::Core;
use crate::audit::{Audit, AuditAction};
use crate::caller::Caller;
use crate::error::{CoreError, CoreResult, Field, FieldErrors};
use crate::ids::TenantId;
use crate::model::{Tenant, TenantPolicy};
use crate::parse::Slug;
use crate::store::{NewTenant, TenantUpdate};

/// Every domain, with its tenant and whether that tenant is disabled.
pub(crate) type DomainMap = std::collections::HashMap<String, (TenantId, bool)>;

/// The domain map and when it was loaded.
pub(crate) type DomainCache = std::sync::Mutex<Option<(std::time::Instant, Arc<DomainMap>)>>;

/// A tenant to create.
#[derive(Clone, Debug, Default)]
pub struct CreateTenantCommand {
    /// Unique slug (the `{slug}` of `/t/{slug}/...` paths).
    pub slug: String,
    /// Display name; the slug when absent.
    pub name: Option<String>,
    /// Domains that resolve to it.
    pub domains: Vec<String>,
    /// Its overrides of the server policy.
    pub policy: TenantPolicy,
}

/// Longest tenant name, in characters.
pub const MAX_TENANT_NAME_CHARS: usize = 100;

/// Most domains one tenant may have.
pub const MAX_DOMAINS: usize = 100;

/// Parses a domain name: lower-cased, without a trailing dot, made of LDH labels (RFC 1035:
/// labels of at most 63 octets, names of at most 253).
pub fn parse_domain(input: &str) -> Result<String, &'static str> {
    let d = input.trim().trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if d.is_empty() || d.len() > 253 || !d.split('.').all(label_ok) {
        return Err("must be a domain name such as example.com");
    }
    Ok(d)
}

fn parse_name(name: &str) -> Result<String, &'static str> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > MAX_TENANT_NAME_CHARS || n.chars().any(char::is_control) {
        return Err("must be 1 to 100 characters");
    }
    Ok(n.to_owned())
}

fn parse_domains(domains: &[String], errors: &mut FieldErrors) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for d in domains {
        match parse_domain(d) {
            Ok(d) if !out.contains(&d) => out.push(d),
            Ok(_) => {}
            Err(m) => errors.add(Field::Param("domains"), m),
        }
    }
    if out.len() > MAX_DOMAINS {
        errors.add(Field::Param("domains"), format!("at most {MAX_DOMAINS} domains"));
    }
    out.sort();
    out
}

impl Core {
    fn check_tenant_policy(&self, p: &TenantPolicy, errors: &mut FieldErrors) {
        if let Err(m) = self.config.policy.overlay(p).check() {
            errors.add(Field::Param("policy"), m);
        }
    }

    /// Creates a tenant (operators only).
    pub async fn create_tenant(&self, caller: &Caller, cmd: CreateTenantCommand) -> CoreResult<Tenant> {
        caller.require_operator()?;
        let mut errors = FieldErrors::new();
        let slug = Slug::parse(&cmd.slug).map_err(|m| errors.add(Field::Param("slug"), m)).ok();
        let name = match &cmd.name {
            Some(n) => parse_name(n).map_err(|m| errors.add(Field::Param("name"), m)).ok(),
            None => slug.as_ref().map(|s| s.as_str().to_owned()),
        };
        let domains = parse_domains(&cmd.domains, &mut errors);
        self.check_tenant_policy(&cmd.policy, &mut errors);
        errors.into_result()?;
        let (Some(slug), Some(name)) = (slug, name) else {
            return Err(CoreError::Internal("a valid tenant lacks a slug or a name".into()));
        };
        let t = NewTenant { slug: slug.as_str().to_owned(), name, domains, policy: cmd.policy, now: self.now() };
        let tenant = self.store.tenants.insert_tenant(&t).await?;
        self.forget_domains();
        self.audit(Audit {
            action: AuditAction::TenantCreated,
            actor: caller.actor(),
            tenant: Some(tenant.id),
            user: None,
            client: Some(caller.client()),
            details: serde_json::json!({"slug": tenant.slug}),
        });
        Ok(tenant)
    }

    /// Every tenant, disabled ones included (operators only).
    pub async fn list_tenants(&self, caller: &Caller) -> CoreResult<Vec<Tenant>> {
        caller.require_operator()?;
        Ok(self.store.tenants.tenants().await?)
    }

    /// The tenant with this slug, disabled or not (operators only).
    pub async fn find_tenant(&self, caller: &Caller, slug: &str) -> CoreResult<Tenant> {
        caller.require_operator()?;
        self.store.tenants.tenant_by_slug(slug).await?.ok_or(CoreError::NotFound)
    }

    /// Changes a tenant (operators only). The default tenant cannot be disabled.
    pub async fn update_tenant(&self, caller: &Caller, id: TenantId, update: TenantUpdate) -> CoreResult<Tenant> {
        caller.require_operator()?;
        let mut errors = FieldErrors::new();
        let name = update
            .name
            .as_deref()
            .map(parse_name)
            .transpose()
            .map_err(|m| errors.add(Field::Param("name"), m))
            .ok()
            .flatten();
        let domains = update.domains.as_ref().map(|d| parse_domains(d, &mut errors));
        if let Some(p) = &update.policy {
            self.check_tenant_policy(p, &mut errors);
        }
        if id == TenantId::DEFAULT && update.disabled == Some(true) {
            errors.add(Field::Param("disabled"), "the default tenant cannot be disabled");
        }
        errors.into_result()?;
        let u = TenantUpdate { name, domains, policy: update.policy, disabled: update.disabled };
        let tenant = self.store.tenants.update_tenant(id, &u, self.now()).await?.ok_or(CoreError::NotFound)?;
        self.forget_tenant(id);
        self.forget_domains();
        let action = match u.disabled {
            Some(true) => AuditAction::TenantDisabled,
            Some(false) => AuditAction::TenantEnabled,
            None => AuditAction::TenantUpdated,
        };
        self.audit(Audit {
            action,
            actor: caller.actor(),
            tenant: Some(id),
            user: None,
            client: Some(caller.client()),
            details: serde_json::json!({"slug": tenant.slug}),
        });
        Ok(tenant)
    }

    /// The tenant a domain belongs to (a request's `Host`, the domain of a `user@domain`
    /// login): `Ok(None)` for a domain of no tenant, [`CoreError::NotFound`] for a domain of a
    /// disabled tenant. Every domain is held in memory, reloaded at most every
    /// [`crate::TENANT_CACHE_TTL`], so arbitrary `Host` headers cost no database query.
    pub async fn tenant_for_domain(&self, domain: &str) -> CoreResult<Option<TenantId>> {
        let map = self.domain_map().await?;
        // Most installations give no tenant a domain: then every request's Host is answered
        // without parsing or allocating anything.
        if map.is_empty() {
            return Ok(None);
        }
        let Ok(domain) = parse_domain(domain) else { return Ok(None) };
        match map.get(&domain) {
            Some((_, true)) => Err(CoreError::NotFound),
            Some((id, false)) => Ok(Some(*id)),
            None => Ok(None),
        }
    }

    async fn domain_map(&self) -> CoreResult<Arc<DomainMap>> {
        if let Ok(guard) = self.domains.lock()
            && let Some((loaded, map)) = guard.as_ref()
            && loaded.elapsed() < crate::TENANT_CACHE_TTL
        {
            return Ok(map.clone());
        }
        let mut map = DomainMap::new();
        for t in self.store.tenants.tenants().await? {
            for d in &t.domains {
                map.insert(d.clone(), (t.id, t.disabled));
            }
        }
        let map = Arc::new(map);
        if let Ok(mut guard) = self.domains.lock() {
            *guard = Some((std::time::Instant::now(), map.clone()));
        }
        Ok(map)
    }

    pub(crate) fn forget_domains(&self) {
        if let Ok(mut guard) = self.domains.lock() {
            *guard = None;
        }
    }

    /// The enabled tenant with this slug, from the cache when possible (for request routing).
    pub async fn tenant_id_for_slug(&self, slug: &str) -> CoreResult<TenantId> {
        if let Some(id) = self.slugs.get(slug) {
            return self.tenant_policy(id).await.map(|(t, _)| t.id);
        }
        let t = self.tenant_by_slug(slug).await?;
        self.slugs.insert(slug.to_owned(), t.id);
        self.tenants.insert(t.id, Arc::new(t.clone()));
        Ok(t.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_normalised_and_checked() {
        assert_eq!(parse_domain(" Chat.Example.COM. "), Ok("chat.example.com".to_owned()));
        assert!(parse_domain("exa mple.com").is_err());
        assert!(parse_domain("-bad.example").is_err());
        assert!(parse_domain("").is_err());
        assert!(parse_domain("a..b").is_err());
    }
}
