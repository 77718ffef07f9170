//! `portcullis user ...`: creating, showing, listing, setting the password of, disabling,
//! enabling and deleting users, through the same core operations as the admin API (validated
//! as sign-up validates, audited with the actor `cli`). Users are printed with
//! [`super::user_json`]: never a password hash.

use std::io::Read as _;

use clap::{Args, Subcommand};
use portcullis::config::Config;
use portcullis_core::MAX_PAGE;
use portcullis_core::admin::ListUsers;
use portcullis_core::model::{User, UserStatus};
use portcullis_core::parse::LoginKey;
use portcullis_core::{AccountInput, Caller, Core, Field, Password, TenantId, UserId};
use serde_json::{Map, Value, json};

use super::{
    Failure, Lines, OrNoSuch as _, enabled_tenant, operator, print_json, read_stdin_line, user_json, with_core,
};

/// User commands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (validated exactly as sign-up validates).
    Create(CreateArgs),
    /// Show one user.
    Show(Which),
    /// List and search users (JSON Lines, by id).
    List(ListArgs),
    /// Set a user's password, read from the first line of standard input; ends their sessions.
    SetPassword(Which),
    /// Disable a user: they cannot log in, and their sessions end.
    Disable(Which),
    /// Enable a disabled user.
    Enable(Which),
    /// Queue an e-mail verification link for a user (a running server sends it).
    SendVerification(Which),
    /// Queue a password reset link for a user (a running server sends it).
    SendPasswordReset(Which),
    /// Remove a user's second factor (authenticator and recovery codes), for a user who lost
    /// both. They log in with their password alone until they set up a new one.
    ResetSecondFactor(Which),
    /// Issue a one-time log-in token for a user (valid ten minutes, single-use).
    LoginToken(Which),
    /// Delete a user with everything they own (needs --yes).
    Delete {
        #[command(flatten)]
        which: Which,
        /// Confirm: deleting cannot be undone.
        #[arg(long)]
        yes: bool,
    },
}

/// Arguments of `user create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Tenant slug.
    #[arg(long, value_name = "SLUG", default_value = "default")]
    tenant: String,
    /// Username.
    #[arg(long)]
    username: Option<String>,
    /// E-mail address.
    #[arg(long)]
    email: Option<String>,
    /// Phone number (a login identifier).
    #[arg(long)]
    phone: Option<String>,
    /// Profile field or custom attribute, as NAME=VALUE (repeatable), e.g. --field first_name=Ada
    /// or --field attributes.team=core.
    #[arg(long = "field", value_name = "NAME=VALUE")]
    fields: Vec<String>,
    /// Grant this role (by name; repeatable). The role must exist in the tenant.
    #[arg(long = "role", value_name = "NAME")]
    roles: Vec<String>,
    /// Read the password from the first line of standard input.
    #[arg(long, conflicts_with_all = ["password", "json", "no_password"])]
    password_stdin: bool,
    /// The password. Visible to other local users in the process list: prefer --password-stdin.
    #[arg(long, conflicts_with_all = ["json", "no_password"])]
    password: Option<String>,
    /// Read the user as one JSON object from standard input, e.g.
    /// {"username": "ada", "email": "ada@example.com", "password": "...", "first_name": "Ada"}.
    /// Flags given as well override its fields.
    #[arg(long, conflicts_with = "no_password")]
    json: bool,
    /// Create the user without a password (they cannot log in until one is set).
    #[arg(long)]
    no_password: bool,
    /// Mark the e-mail address as verified.
    #[arg(long)]
    email_verified: bool,
}

/// Which user: by id or by login, in a tenant.
#[derive(Debug, Args)]
pub struct Which {
    /// Tenant slug.
    #[arg(long, value_name = "SLUG", default_value = "default")]
    tenant: String,
    /// The user's id.
    #[arg(long, required_unless_present = "login", conflicts_with = "login")]
    id: Option<i64>,
    /// The user's username, e-mail address or phone number.
    #[arg(long, value_name = "LOGIN")]
    login: Option<String>,
}

/// Arguments of `user list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Tenant slug.
    #[arg(long, value_name = "SLUG", default_value = "default")]
    tenant: String,
    /// Text the username, e-mail address, phone number or a name contains.
    #[arg(long, value_name = "TEXT")]
    search: Option<String>,
    /// Only users with this status.
    #[arg(long, value_parser = ["active", "pending", "disabled"])]
    status: Option<String>,
    /// Only holders of this role (by name).
    #[arg(long, value_name = "NAME")]
    role: Option<String>,
    /// Print at most this many users.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    limit: u64,
}

/// Runs a user command.
pub async fn run(config: &Config, command: UserCommand) -> Result<(), Failure> {
    let caller = operator();
    match command {
        UserCommand::Create(a) => create(config, a, &caller).await,
        UserCommand::Show(w) => {
            with_core(config, async |core| {
                let (_, user) = find(core, &caller, &w).await?;
                print_json(&user_json(&user))
            })
            .await
        }
        UserCommand::List(a) => list(config, a, &caller).await,
        UserCommand::SetPassword(w) => {
            let password = read_stdin_line()?;
            if password.is_empty() {
                return Err(Failure::invalid("give the new password on the first line of standard input"));
            }
            with_core(config, async |core| {
                let (tenant, user) = find(core, &caller, &w).await?;
                let user = core
                    .update_user(&caller, tenant, user.id, AccountInput::new(), Some(Password::new(password)))
                    .await
                    .or_no_such(format_args!("user with id {}", user.id))?;
                print_json(&user_json(&user))
            })
            .await
        }
        UserCommand::Disable(w) => set_disabled(config, &w, true, &caller).await,
        UserCommand::Enable(w) => set_disabled(config, &w, false, &caller).await,
        UserCommand::SendVerification(w) => {
            with_core(config, async |core| {
                let (tenant, user) = find(core, &caller, &w).await?;
                core.send_verification(&caller, tenant, user.id).await?;
                print_json(&json!({"id": user.id.0, "queued": "email_verification"}))
            })
            .await
        }
        UserCommand::SendPasswordReset(w) => {
            with_core(config, async |core| {
                let (tenant, user) = find(core, &caller, &w).await?;
                core.send_password_reset(&caller, tenant, user.id).await?;
                print_json(&json!({"id": user.id.0, "queued": "password_reset"}))
            })
            .await
        }
        UserCommand::ResetSecondFactor(w) => {
            with_core(config, async |core| {
                let (tenant, user) = find(core, &caller, &w).await?;
                let removed = core.reset_second_factor(&caller, tenant, user.id).await?;
                print_json(&json!({"id": user.id.0, "second_factor_removed": removed}))
            })
            .await
        }
        UserCommand::LoginToken(w) => {
            with_core(config, async |core| {
                let (tenant, user) = find(core, &caller, &w).await?;
                let t = core.issue_login_token(&caller, tenant, user.id).await?;
                print_json(&json!({"id": user.id.0, "token": t.token.expose(), "expires_at": t.expires_at}))
            })
            .await
        }
        UserCommand::Delete { which, yes } => {
            if !yes {
                return Err(Failure::usage("deleting a user cannot be undone: add --yes to confirm"));
            }
            with_core(config, async |core| {
                let (tenant, user) = find(core, &caller, &which).await?;
                core.delete_user(&caller, tenant, user.id)
                    .await
                    .or_no_such(format_args!("user with id {}", user.id))?;
                print_json(&json!({"id": user.id.0, "deleted": true}))
            })
            .await
        }
    }
}

// The tenant and the user a `Which` names.
async fn find(core: &Core, caller: &Caller, w: &Which) -> Result<(TenantId, User), Failure> {
    let tenant = enabled_tenant(core, &w.tenant).await?.id;
    let user = match (w.id, &w.login) {
        (Some(id), _) => core.user(caller, tenant, UserId(id)).await.or_no_such(format_args!("user with id {id}"))?,
        (None, Some(login)) => core
            .user_by_login(caller, tenant, &LoginKey::from_login(login))
            .await
            .or_no_such(format_args!("user: {login:?}"))?,
        (None, None) => return Err(Failure::usage("give --id or --login")),
    };
    Ok((tenant, user))
}

async fn set_disabled(config: &Config, w: &Which, disabled: bool, caller: &Caller) -> Result<(), Failure> {
    with_core(config, async |core| {
        let (tenant, user) = find(core, caller, w).await?;
        let user = core
            .set_user_disabled(caller, tenant, user.id, disabled)
            .await
            .or_no_such(format_args!("user with id {}", user.id))?;
        print_json(&user_json(&user))
    })
    .await
}

async fn list(config: &Config, a: ListArgs, caller: &Caller) -> Result<(), Failure> {
    let status = a.status.as_deref().and_then(UserStatus::parse);
    with_core(config, async |core| {
        let tenant = enabled_tenant(core, &a.tenant).await?.id;
        let mut out = Lines::stdout();
        let mut left = a.limit;
        let mut after = None;
        while left > 0 {
            let page = u32::try_from(left.min(u64::from(MAX_PAGE))).unwrap_or(MAX_PAGE);
            let f = ListUsers {
                search: a.search.clone(),
                status,
                role: a.role.clone(),
                after,
                limit: page,
                ..Default::default()
            };
            let users = core.list_users(caller, tenant, f).await?;
            for u in &users {
                out.line(&user_json(u))?;
            }
            left = left.saturating_sub(users.len() as u64);
            match users.last() {
                Some(last) if users.len() == page as usize => after = Some(last.id),
                _ => break,
            }
        }
        out.finish()
    })
    .await
}

async fn create(config: &Config, args: CreateArgs, caller: &Caller) -> Result<(), Failure> {
    let mut fields = Map::new();
    let mut password = args.password.map(Password::new);
    if args.json {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure::new(super::EXIT_UNEXPECTED, format!("cannot read standard input: {e}")))?;
        let Value::Object(mut obj) = serde_json::from_str(&text)
            .map_err(|e| Failure::invalid(format!("standard input is not a JSON object: {e}")))?
        else {
            return Err(Failure::invalid("standard input is not a JSON object"));
        };
        match obj.remove("password") {
            Some(Value::String(p)) => password = Some(Password::new(p)),
            Some(Value::Null) | None => {}
            Some(_) => return Err(Failure::invalid("password must be a string")),
        }
        fields = obj;
    }
    if args.password_stdin {
        password = Some(Password::new(read_stdin_line()?));
    }
    for (k, v) in [("username", args.username), ("email", args.email), ("phone", args.phone)] {
        if let Some(v) = v {
            fields.insert(k.into(), Value::String(v));
        }
    }
    for f in &args.fields {
        let Some((k, v)) = f.split_once('=') else {
            return Err(Failure::invalid(format!("--field {f:?}: expected NAME=VALUE")));
        };
        if let Some(attr) = k.strip_prefix("attributes.") {
            let attrs = fields.entry("attributes").or_insert_with(|| json!({}));
            if let Value::Object(m) = attrs {
                m.insert(attr.to_owned(), Value::String(v.to_owned()));
            }
        } else {
            fields.insert(k.to_owned(), Value::String(v.to_owned()));
        }
    }
    if password.is_none() && !args.no_password {
        return Err(Failure::invalid("give a password (--password-stdin, --password or in --json), or --no-password"));
    }
    // Roles, status and verification have flags of their own; as fields they are refused.
    let flagged: Vec<Field> =
        [("roles", Field::Roles), ("status", Field::Status), ("email_verified", Field::EmailVerified)]
            .into_iter()
            .filter(|(name, _)| fields.remove(*name).is_some())
            .map(|(_, f)| f)
            .collect();
    let mut account = AccountInput::from_json(fields);
    for f in flagged {
        account.refuse(f);
    }
    account.set_roles(args.roles).set_email_verified(args.email_verified);
    with_core(config, async |core| {
        let tenant = enabled_tenant(core, &args.tenant).await?;
        let user = core.create_user(caller, tenant.id, account, password).await?;
        let mut out = user_json(&user);
        if let Value::Object(m) = &mut out {
            m.insert("tenant".into(), json!(tenant.slug));
        }
        print_json(&out)
    })
    .await
}
