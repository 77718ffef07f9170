//! `portcullis key ...`: issuing, listing and revoking API keys. A key's secret is printed once,
//! by `key create`, and never again: the store keeps only its hash.

use clap::{ArgGroup, Args, Subcommand};
use portcullis::config::Config;
use portcullis_core::keys::CreateApiKeyCommand;
use portcullis_core::model::{ApiKey, Scope};
use portcullis_core::{ApiKeyId, Core, TenantId, Timestamp};
use serde_json::{Map, Value, json};

use super::{Failure, Lines, OrNoSuch as _, any_tenant, enabled_tenant, print_json, with_core};

/// API key commands.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Issue a key; prints it with its secret, which is shown this once only.
    Create(CreateArgs),
    /// List the keys of a tenant, or the operator keys (JSON Lines; never the secrets).
    List(Owner),
    /// Revoke a key: it stops working at once.
    Revoke {
        /// The key's id (see `key list`).
        id: i64,
        #[command(flatten)]
        owner: Owner,
    },
}

/// Arguments of `key create`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("owner").required(true).args(["tenant", "operator"])))]
pub struct CreateArgs {
    /// What the key is for (shown in listings).
    #[arg(long)]
    name: String,
    /// The tenant the key works in (it is refused in every other tenant).
    #[arg(long, value_name = "SLUG", requires = "scopes")]
    tenant: Option<String>,
    /// What the key may do; repeatable. tenant:admin includes users:manage, which includes
    /// users:read; tenant:admin also includes credentials:verify.
    #[arg(long = "scope", value_name = "SCOPE", value_parser = tenant_scope_names(), requires = "tenant")]
    scopes: Vec<String>,
    /// An operator key: no tenant, may do everything in every tenant and manage tenants.
    #[arg(long, conflicts_with_all = ["tenant", "scopes"])]
    operator: bool,
    /// When the key stops working (RFC 3339, e.g. 2027-01-31T00:00:00Z).
    #[arg(long, value_name = "TIME")]
    expires: Option<String>,
}

/// Whose keys: a tenant's (the default tenant unless told) or the operator keys.
#[derive(Debug, Args)]
pub struct Owner {
    /// The tenant whose keys these are.
    #[arg(long, value_name = "SLUG", default_value = "default", conflicts_with = "operator")]
    tenant: String,
    /// Operator keys (keys of no tenant).
    #[arg(long)]
    operator: bool,
}

fn tenant_scope_names() -> clap::builder::PossibleValuesParser {
    let names: Vec<&'static str> =
        Scope::ALL.into_iter().filter(|s| *s != Scope::Operator).map(Scope::as_str).collect();
    clap::builder::PossibleValuesParser::new(names)
}

fn parse_time(raw: &str) -> Result<Timestamp, Failure> {
    time::OffsetDateTime::parse(raw.trim(), &time::format_description::well_known::Rfc3339)
        .map(Timestamp::from_offset_date_time)
        .map_err(|_| {
            Failure::invalid(format!("--expires {raw:?}: expected an RFC 3339 time, e.g. 2027-01-31T00:00:00Z"))
        })
}

fn key_json(k: &ApiKey, tenant_slug: Option<&str>) -> Value {
    json!({
        "id": k.id.0,
        "name": k.name,
        "prefix": k.prefix,
        "scopes": k.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "tenant": tenant_slug,
        "expires_at": k.expires_at,
        "last_used_at": k.last_used_at,
        "revoked_at": k.revoked_at,
        "created_at": k.created_at,
    })
}

// The tenant an `Owner` names, with its slug; `None` for operator keys.
async fn owner(core: &Core, o: &Owner) -> Result<Option<(TenantId, String)>, Failure> {
    if o.operator {
        return Ok(None);
    }
    // Keys of a disabled tenant can still be listed and revoked.
    let t = any_tenant(core, &o.tenant).await?;
    Ok(Some((t.id, t.slug)))
}

/// Runs a key command.
pub async fn run(config: &Config, command: KeyCommand) -> Result<(), Failure> {
    let caller = super::operator();
    match command {
        KeyCommand::Create(a) => {
            let expires_at = a.expires.as_deref().map(parse_time).transpose()?;
            let scopes: Vec<Scope> = if a.operator {
                vec![Scope::Operator]
            } else {
                a.scopes.iter().filter_map(|s| Scope::parse(s)).collect()
            };
            with_core(config, async |core| {
                let tenant = match &a.tenant {
                    Some(slug) => Some(enabled_tenant(core, slug).await?),
                    None => None,
                };
                let cmd = CreateApiKeyCommand {
                    tenant: tenant.as_ref().map(|t| t.id),
                    name: a.name,
                    scopes,
                    expires_at,
                    problems: Default::default(),
                };
                let issued = core.create_api_key(&caller, cmd).await?;
                let mut out = Map::new();
                out.insert("key".into(), json!(issued.key.expose()));
                if let Value::Object(record) = key_json(&issued.record, tenant.as_ref().map(|t| t.slug.as_str())) {
                    out.extend(record);
                }
                print_json(&Value::Object(out))
            })
            .await
        }
        KeyCommand::List(o) => {
            with_core(config, async |core| {
                let owner = owner(core, &o).await?;
                let keys = core.list_api_keys(&caller, owner.as_ref().map(|(id, _)| *id)).await?;
                let mut out = Lines::stdout();
                for k in &keys {
                    out.line(&key_json(k, owner.as_ref().map(|(_, slug)| slug.as_str())))?;
                }
                out.finish()
            })
            .await
        }
        KeyCommand::Revoke { id, owner: o } => {
            with_core(config, async |core| {
                let owner = owner(core, &o).await?;
                let whose = match &owner {
                    Some((_, slug)) => format!("key {id} in tenant {slug:?}"),
                    None => format!("operator key {id}"),
                };
                core.revoke_api_key(&caller, owner.as_ref().map(|(t, _)| *t), ApiKeyId(id))
                    .await
                    .or_no_such(format_args!("{whose} (or it is already revoked)"))?;
                print_json(&json!({"id": id, "revoked": true}))
            })
            .await
        }
    }
}
