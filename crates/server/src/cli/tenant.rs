//! `portcullis tenant ...`: creating, listing, showing, changing, disabling and enabling
//! tenants. Every change goes through the core's tenant operations and is audited with the
//! actor `cli`.

use clap::{Args, Subcommand};
use portcullis::config::Config;
use portcullis_core::model::{Tenant, TenantPolicy};
use portcullis_core::store::TenantUpdate;
use portcullis_core::tenants::CreateTenantCommand;
use portcullis_core::{Caller, Dialect};
use serde_json::{Value, json};

use super::{Failure, Lines, OrNoSuch as _, any_tenant, print_json, with_core};

/// Tenant commands.
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant; prints it as JSON.
    Create(CreateArgs),
    /// List every tenant, disabled ones included (JSON Lines).
    List,
    /// Show one tenant.
    Show {
        /// The tenant's slug.
        slug: String,
    },
    /// Change a tenant's name, domains or policy; prints it as JSON.
    Update(UpdateArgs),
    /// Disable a tenant: it serves nobody until enabled again (its data is kept).
    Disable {
        /// The tenant's slug.
        slug: String,
    },
    /// Enable a disabled tenant.
    Enable {
        /// The tenant's slug.
        slug: String,
    },
    /// Switch a legacy dialect on for a tenant (metrixstream, ossn, newspark, buddycloud,
    /// siberian); prints the tenant.
    EnableDialect {
        /// The tenant's slug.
        slug: String,
        /// The dialect.
        dialect: Dialect,
    },
    /// Switch a legacy dialect off for a tenant; prints the tenant.
    DisableDialect {
        /// The tenant's slug.
        slug: String,
        /// The dialect.
        dialect: Dialect,
    },
}

/// Arguments of `tenant create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Unique slug, used in URLs (/t/SLUG/v1/...).
    #[arg(long)]
    slug: String,
    /// Display name (default: the slug).
    #[arg(long)]
    name: Option<String>,
    /// A domain that resolves to this tenant (user@DOMAIN log-ins, Host headers); repeatable.
    #[arg(long = "domain", value_name = "DOMAIN")]
    domains: Vec<String>,
    /// Overrides of the server policy, as JSON, e.g.
    /// '{"password_min_length": 12, "require_username": true}'.
    #[arg(long, value_name = "JSON")]
    policy: Option<String>,
}

/// Arguments of `tenant update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The tenant's slug.
    slug: String,
    /// New display name.
    #[arg(long)]
    name: Option<String>,
    /// Replace the domains with these; repeatable.
    #[arg(long = "domain", value_name = "DOMAIN", conflicts_with = "no_domains")]
    domains: Vec<String>,
    /// Remove every domain.
    #[arg(long)]
    no_domains: bool,
    /// Replace the policy overrides with this JSON object ('{}' removes every override).
    #[arg(long, value_name = "JSON")]
    policy: Option<String>,
}

fn parse_policy(json: Option<&str>) -> Result<Option<TenantPolicy>, Failure> {
    json.map(|text| serde_json::from_str::<TenantPolicy>(text).map_err(|e| Failure::invalid(format!("--policy: {e}"))))
        .transpose()
}

/// A tenant as printed, with the dialects it answers under the server's policy.
pub fn tenant_json(config: &Config, t: &Tenant) -> Value {
    let dialects: Vec<&str> = config.policy.overlay(&t.policy).dialects.iter().map(|d| d.name()).collect();
    json!({
        "id": t.id.0,
        "slug": t.slug,
        "name": t.name,
        "domains": t.domains,
        "policy": t.policy,
        "dialects": dialects,
        "disabled": t.disabled,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
    })
}

/// Runs a tenant command.
pub async fn run(config: &Config, command: TenantCommand) -> Result<(), Failure> {
    let caller = super::operator();
    match command {
        TenantCommand::Create(a) => {
            let policy = parse_policy(a.policy.as_deref())?.unwrap_or_default();
            let cmd = CreateTenantCommand { slug: a.slug, name: a.name, domains: a.domains, policy };
            with_core(config, async |core| {
                let t = core.create_tenant(&caller, cmd).await?;
                print_json(&tenant_json(config, &t))
            })
            .await
        }
        TenantCommand::List => {
            with_core(config, async |core| {
                let mut out = Lines::stdout();
                for t in core.list_tenants(&caller).await? {
                    out.line(&tenant_json(config, &t))?;
                }
                out.finish()
            })
            .await
        }
        TenantCommand::Show { slug } => {
            with_core(config, async |core| print_json(&tenant_json(config, &any_tenant(core, &slug).await?))).await
        }
        TenantCommand::Update(a) => {
            let policy = parse_policy(a.policy.as_deref())?;
            let domains = if a.no_domains { Some(Vec::new()) } else { Some(a.domains).filter(|d| !d.is_empty()) };
            if a.name.is_none() && domains.is_none() && policy.is_none() {
                return Err(Failure::usage("nothing to change: give --name, --domain, --no-domains or --policy"));
            }
            let update = TenantUpdate { name: a.name, domains, policy, disabled: None };
            change(config, &a.slug, update, &caller).await
        }
        TenantCommand::Disable { slug } => {
            change(config, &slug, TenantUpdate { disabled: Some(true), ..Default::default() }, &caller).await
        }
        TenantCommand::Enable { slug } => {
            change(config, &slug, TenantUpdate { disabled: Some(false), ..Default::default() }, &caller).await
        }
        TenantCommand::EnableDialect { slug, dialect } => set_dialect(config, &slug, dialect, true, &caller).await,
        TenantCommand::DisableDialect { slug, dialect } => set_dialect(config, &slug, dialect, false, &caller).await,
    }
}

async fn change(config: &Config, slug: &str, update: TenantUpdate, caller: &Caller) -> Result<(), Failure> {
    with_core(config, async |core| {
        let t = any_tenant(core, slug).await?;
        let t = core.update_tenant(caller, t.id, update).await.or_no_such(format_args!("tenant {slug:?}"))?;
        print_json(&tenant_json(config, &t))
    })
    .await
}

async fn set_dialect(config: &Config, slug: &str, dialect: Dialect, on: bool, caller: &Caller) -> Result<(), Failure> {
    with_core(config, async |core| {
        let t = any_tenant(core, slug).await?;
        let t = core.set_dialect(caller, t.id, dialect, on).await.or_no_such(format_args!("tenant {slug:?}"))?;
        print_json(&tenant_json(config, &t))
    })
    .await
}
