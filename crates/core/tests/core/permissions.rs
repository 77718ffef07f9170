//! Every operation that acts for a caller decides, in the core, whether that caller may: the
//! scope it needs and the tenant it acts in. Each operation is tried here with a key that lacks
//! the scope (403), a key of another tenant (401, like an unknown key), a key with exactly
//! the scope, an operator key and the command-line operator — through the core, not HTTP.

use std::sync::Arc;

use portcullis_core::admin::ListUsers;
use portcullis_core::keys::CreateApiKeyCommand;
use portcullis_core::login::VerifyCredentials;
use portcullis_core::model::{AttributeKind, Scope};
use portcullis_core::parse::LoginKey;
use portcullis_core::password::HashingConfig;
use portcullis_core::settings::DefineAttribute;
use portcullis_core::store::{AuditQuery, TenantUpdate};
use portcullis_core::tenants::CreateTenantCommand;
use portcullis_core::{
    AccountInput, ApiKeyId, AttributeId, Caller, ClientInfo, Core, CoreConfig, CoreError, CoreResult, RoleId, TenantId,
    UserId,
};
use portcullis_testkit::{Backend, DbGuard, ManualClock};

/// What an operation needs.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Needs {
    Scope(Scope),
    Operator,
}

/// Every operation for servers and operators, with what it needs.
const OPERATIONS: &[(&str, Needs)] = &[
    ("user", Needs::Scope(Scope::UsersRead)),
    ("user_by_login", Needs::Scope(Scope::UsersRead)),
    ("list_users", Needs::Scope(Scope::UsersRead)),
    ("identifier_exists", Needs::Scope(Scope::UsersRead)),
    ("list_roles", Needs::Scope(Scope::UsersRead)),
    ("list_attributes", Needs::Scope(Scope::UsersRead)),
    ("verify_credentials", Needs::Scope(Scope::CredentialsVerify)),
    ("verify_credentials_for_login_token", Needs::Scope(Scope::CredentialsVerify)),
    ("request_password_reset_as", Needs::Scope(Scope::CredentialsVerify)),
    ("create_user", Needs::Scope(Scope::UsersManage)),
    ("update_user", Needs::Scope(Scope::UsersManage)),
    ("set_user_disabled", Needs::Scope(Scope::UsersManage)),
    ("delete_user", Needs::Scope(Scope::UsersManage)),
    ("end_user_sessions", Needs::Scope(Scope::UsersManage)),
    ("issue_login_token", Needs::Scope(Scope::UsersManage)),
    ("import_users", Needs::Scope(Scope::TenantAdmin)),
    ("create_role", Needs::Scope(Scope::TenantAdmin)),
    ("delete_role", Needs::Scope(Scope::TenantAdmin)),
    ("define_attribute", Needs::Scope(Scope::TenantAdmin)),
    ("update_attribute", Needs::Scope(Scope::TenantAdmin)),
    ("delete_attribute", Needs::Scope(Scope::TenantAdmin)),
    ("password_scheme_report", Needs::Scope(Scope::TenantAdmin)),
    ("export_users", Needs::Scope(Scope::TenantAdmin)),
    ("audit_events", Needs::Scope(Scope::TenantAdmin)),
    ("list_api_keys", Needs::Scope(Scope::TenantAdmin)),
    ("create_api_key", Needs::Scope(Scope::TenantAdmin)),
    ("revoke_api_key", Needs::Scope(Scope::TenantAdmin)),
    ("create_tenant", Needs::Operator),
    ("list_tenants", Needs::Operator),
    ("find_tenant", Needs::Operator),
    ("update_tenant", Needs::Operator),
    ("audit_events_everywhere", Needs::Operator),
    ("list_operator_keys", Needs::Operator),
    ("create_operator_key", Needs::Operator),
    ("revoke_operator_key", Needs::Operator),
];

/// Runs one operation as `caller` in `tenant`, with arguments that name nothing in particular
/// and, where an operation reads input, input it must refuse: a caller without the right gets
/// 403 before its input is even read. What matters is whether it got past the permission check.
async fn run(core: &Core, op: &str, caller: &Caller, tenant: TenantId) -> CoreResult<()> {
    let nobody = UserId(999_999);
    let account = || {
        let mut a = AccountInput::new();
        a.set_email(Some("someone@example.com".into()));
        a
    };
    match op {
        "user" => core.user(caller, tenant, nobody).await.map(drop),
        "user_by_login" => core.user_by_login(caller, tenant, &LoginKey::username("nobody")).await.map(drop),
        "list_users" => core.list_users(caller, tenant, ListUsers { limit: 0, ..Default::default() }).await.map(drop),
        "identifier_exists" => core.identifier_exists(caller, tenant, [None; 4]).await.map(drop),
        "list_roles" => core.list_roles(caller, tenant).await.map(drop),
        "list_attributes" => core.list_attributes(caller, tenant).await.map(drop),
        "verify_credentials" => {
            let cmd =
                VerifyCredentials { login: Some("nobody".into()), end_user_ip: Some("x".into()), ..Default::default() };
            core.verify_credentials(caller, tenant, cmd).await.map(drop)
        }
        "verify_credentials_for_login_token" => {
            let cmd =
                VerifyCredentials { login: Some("nobody".into()), end_user_ip: Some("x".into()), ..Default::default() };
            core.verify_credentials_for_login_token(caller, tenant, cmd).await.map(drop)
        }
        "request_password_reset_as" => {
            core.request_password_reset_as(caller, tenant, "", &ClientInfo::default()).await.map(drop)
        }
        "create_user" => core.create_user(caller, tenant, account(), None).await.map(drop),
        "update_user" => core.update_user(caller, tenant, nobody, account(), None).await.map(drop),
        "set_user_disabled" => core.set_user_disabled(caller, tenant, nobody, true).await.map(drop),
        "delete_user" => core.delete_user(caller, tenant, nobody).await,
        "end_user_sessions" => core.end_user_sessions(caller, tenant, nobody).await.map(drop),
        "issue_login_token" => core.issue_login_token(caller, tenant, nobody).await.map(drop),
        "import_users" => core.import_users(caller, tenant, Vec::new()).await.map(drop),
        "create_role" => core.create_role(caller, tenant, "a role", None).await.map(drop),
        "delete_role" => core.delete_role(caller, tenant, RoleId(999_999)).await,
        "define_attribute" => {
            let def = DefineAttribute {
                name: "1 not a name".into(),
                kind: AttributeKind::String,
                required: false,
                user_editable: true,
                problems: Default::default(),
            };
            core.define_attribute(caller, tenant, def).await.map(drop)
        }
        "update_attribute" => core.update_attribute(caller, tenant, AttributeId(999_999), None, None).await.map(drop),
        "delete_attribute" => core.delete_attribute(caller, tenant, AttributeId(999_999)).await,
        "password_scheme_report" => core.password_scheme_report(caller, tenant).await.map(drop),
        "export_users" => core.export_users(caller, tenant, None, 10).await.map(drop),
        "audit_events" => {
            let q = AuditQuery { tenant_id: Some(tenant), limit: 0, ..Default::default() };
            core.audit_events(caller, q, Default::default()).await.map(drop)
        }
        "list_api_keys" => core.list_api_keys(caller, Some(tenant)).await.map(drop),
        "create_api_key" => core.create_api_key(caller, key_cmd(Some(tenant), Scope::UsersRead)).await.map(drop),
        "revoke_api_key" => core.revoke_api_key(caller, Some(tenant), ApiKeyId(999_999)).await,
        "create_tenant" => {
            let cmd = CreateTenantCommand { slug: "fresh".into(), ..Default::default() };
            core.create_tenant(caller, cmd).await.map(drop)
        }
        "list_tenants" => core.list_tenants(caller).await.map(drop),
        "find_tenant" => core.find_tenant(caller, "default").await.map(drop),
        "update_tenant" => {
            let u = TenantUpdate { name: Some("Renamed".into()), ..Default::default() };
            core.update_tenant(caller, tenant, u).await.map(drop)
        }
        "audit_events_everywhere" => core
            .audit_events(caller, AuditQuery { limit: 10, ..Default::default() }, Default::default())
            .await
            .map(drop),
        "list_operator_keys" => core.list_api_keys(caller, None).await.map(drop),
        "create_operator_key" => core.create_api_key(caller, key_cmd(None, Scope::Operator)).await.map(drop),
        "revoke_operator_key" => core.revoke_api_key(caller, None, ApiKeyId(999_999)).await,
        other => panic!("no such operation {other}"),
    }
}

fn key_cmd(tenant: Option<TenantId>, scope: Scope) -> CreateApiKeyCommand {
    CreateApiKeyCommand {
        tenant,
        name: "made in a test".into(),
        scopes: vec![scope],
        expires_at: None,
        problems: Default::default(),
    }
}

struct World {
    core: Arc<Core>,
    other: TenantId,
    keys: Vec<(Option<Scope>, Caller)>,
    _db: DbGuard,
}

/// A core with two tenants and a key of each scope in the default tenant (and an operator key).
async fn world() -> World {
    let (store, db) = portcullis_testkit::fresh_store(Backend::Sqlite).await.unwrap();
    let config = CoreConfig {
        password: HashingConfig { memory_kib: 1024, iterations: 1, ..Default::default() },
        ..Default::default()
    };
    let core = Arc::new(Core::new(store, Arc::new(ManualClock::starting_now()), config).unwrap());
    let op = Caller::operator(ClientInfo::default());
    let cmd = CreateTenantCommand { slug: "other".into(), ..Default::default() };
    let other = core.create_tenant(&op, cmd).await.unwrap().id;
    let mut keys = Vec::new();
    for scope in [Scope::CredentialsVerify, Scope::UsersRead, Scope::UsersManage, Scope::TenantAdmin] {
        let issued = core.create_api_key(&op, key_cmd(Some(TenantId::DEFAULT), scope)).await.unwrap();
        let caller = core.authenticate_key(&issued.key, TenantId::DEFAULT, ClientInfo::default()).await.unwrap();
        keys.push((Some(scope), caller));
    }
    let issued = core.create_api_key(&op, key_cmd(None, Scope::Operator)).await.unwrap();
    let caller = core.authenticate_key(&issued.key, other, ClientInfo::default()).await.unwrap();
    keys.push((Some(Scope::Operator), caller));
    World { core, other, keys, _db: db }
}

fn refused(r: &CoreResult<()>) -> Option<&'static str> {
    match r {
        Err(CoreError::Forbidden(_)) => Some("forbidden"),
        Err(CoreError::Unauthenticated) => Some("unauthenticated"),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_checks_scope_and_tenant_itself() {
    let w = world().await;
    for (op, needs) in OPERATIONS {
        for (scope, caller) in &w.keys {
            let allowed = match (needs, scope) {
                (_, Some(Scope::Operator)) => true,
                (Needs::Scope(n), Some(s)) => s.grants(*n),
                _ => false,
            };
            let at_home = run(&w.core, op, caller, TenantId::DEFAULT).await;
            if allowed {
                assert_eq!(refused(&at_home), None, "{op} as {scope:?}: {at_home:?}");
            } else {
                assert_eq!(refused(&at_home), Some("forbidden"), "{op} as {scope:?}: {at_home:?}");
            }
            // In another tenant, a tenant's key is worth nothing: refused like an unknown key,
            // before its scopes are even looked at.
            if *needs != Needs::Operator && *scope != Some(Scope::Operator) {
                let away = run(&w.core, op, caller, w.other).await;
                assert_eq!(refused(&away), Some("unauthenticated"), "{op} as {scope:?} in another tenant: {away:?}");
            }
        }
        // The operator at the command line may do everything.
        let cli = Caller::operator(ClientInfo::default());
        let r = run(&w.core, op, &cli, TenantId::DEFAULT).await;
        assert_eq!(refused(&r), None, "{op} from the command line: {r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_presented_to_another_tenant_is_refused_like_an_unknown_key() {
    let w = world().await;
    let op = Caller::operator(ClientInfo::default());
    let issued = w.core.create_api_key(&op, key_cmd(Some(TenantId::DEFAULT), Scope::TenantAdmin)).await.unwrap();
    let away = w.core.authenticate_key(&issued.key, w.other, ClientInfo::default()).await;
    assert!(matches!(away, Err(CoreError::Unauthenticated)));
    let unknown = portcullis_core::Token::generate(portcullis_core::keys::API_KEY_PREFIX).unwrap();
    let nobody = w.core.authenticate_key(&unknown, TenantId::DEFAULT, ClientInfo::default()).await;
    assert!(matches!(nobody, Err(CoreError::Unauthenticated)));
    w.core.revoke_api_key(&op, Some(TenantId::DEFAULT), issued.record.id).await.unwrap();
    let revoked = w.core.authenticate_key(&issued.key, TenantId::DEFAULT, ClientInfo::default()).await;
    assert!(matches!(revoked, Err(CoreError::Unauthenticated)));
}
