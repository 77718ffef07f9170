//! Who asks the core to act: a server holding an API key (with its tenant and scopes) or the
//! operator at the command line. (A user acting on their own account is an
//! [`crate::auth::AuthSession`].)
//!
//! Every operation that acts for a caller takes the caller and decides, here in the core,
//! whether it may: the scope it needs *and* the tenant it acts in. No surface decides a
//! permission. A key caller can only be made by [`crate::Core::authenticate_key`], so a surface
//! cannot claim more than the key it was shown.

use crate::ClientInfo;
use crate::audit::Actor;
use crate::error::{CoreError, CoreResult};
use crate::ids::TenantId;
use crate::model::{ApiKey, Scope};

/// A caller of the core's operations for servers and operators.
#[derive(Clone, Debug)]
pub struct Caller {
    principal: Principal,
    client: ClientInfo,
}

#[derive(Clone, Debug)]
enum Principal {
    Key(ApiKey),
    Operator,
}

impl Caller {
    /// The operator at the command line, who may do everything. Only the CLI makes this
    /// caller: it acts with the access of whoever can open the database.
    pub fn operator(client: ClientInfo) -> Self {
        Self { principal: Principal::Operator, client }
    }

    /// A server that presented a live API key (see [`crate::Core::authenticate_key`]).
    pub(crate) fn with_key(key: ApiKey, client: ClientInfo) -> Self {
        Self { principal: Principal::Key(key), client }
    }

    /// Who this caller is, for the audit log.
    pub fn actor(&self) -> Actor {
        match &self.principal {
            Principal::Key(k) => Actor::Key(k.id),
            Principal::Operator => Actor::Cli,
        }
    }

    /// Where the call came from (the calling server, not an end user it acts for).
    pub fn client(&self) -> &ClientInfo {
        &self.client
    }

    /// The key the caller presented, if it is a server.
    pub fn key(&self) -> Option<&ApiKey> {
        match &self.principal {
            Principal::Key(k) => Some(k),
            Principal::Operator => None,
        }
    }

    /// Allows the call if the caller may act in `tenant` with `scope`. A key of another tenant
    /// gets [`CoreError::Unauthenticated`], the same answer as an unknown key; a key without
    /// the scope gets [`CoreError::Forbidden`].
    pub(crate) fn require(&self, tenant: TenantId, scope: Scope) -> CoreResult<()> {
        match &self.principal {
            Principal::Operator => Ok(()),
            Principal::Key(k) if k.tenant_id.is_some_and(|t| t != tenant) => Err(CoreError::Unauthenticated),
            Principal::Key(k) if k.grants(scope) => Ok(()),
            Principal::Key(_) => Err(CoreError::Forbidden("This API key lacks the scope needed here.")),
        }
    }

    /// Allows the call if the caller may act outside any tenant (manage tenants and operator
    /// keys, read every tenant's audit log).
    pub(crate) fn require_operator(&self) -> CoreResult<()> {
        match &self.principal {
            Principal::Operator => Ok(()),
            Principal::Key(k) if k.grants(Scope::Operator) => Ok(()),
            Principal::Key(_) => Err(CoreError::Forbidden("This API key lacks the scope needed here.")),
        }
    }

    /// Allows the call if the caller may manage `tenant`'s keys (`Some`) or operator keys
    /// (`None`).
    pub(crate) fn require_admin_of(&self, tenant: Option<TenantId>) -> CoreResult<()> {
        match tenant {
            Some(t) => self.require(t, Scope::TenantAdmin),
            None => self.require_operator(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::ids::ApiKeyId;

    fn caller(tenant: Option<i64>, scopes: &[Scope]) -> Caller {
        let key = ApiKey {
            id: ApiKeyId(1),
            tenant_id: tenant.map(TenantId),
            name: "k".into(),
            prefix: "pck_abcdefgh".into(),
            scopes: scopes.to_vec(),
            expires_at: None,
            last_used_at: None,
            revoked_at: None,
            created_at: Timestamp::from_unix_micros(0),
        };
        Caller::with_key(key, ClientInfo::default())
    }

    #[test]
    fn scopes_nest_and_keys_stay_in_their_tenant() {
        let reader = caller(Some(2), &[Scope::UsersRead]);
        assert!(reader.require(TenantId(2), Scope::UsersRead).is_ok());
        assert!(matches!(reader.require(TenantId(2), Scope::UsersManage), Err(CoreError::Forbidden(_))));
        assert!(matches!(reader.require(TenantId(3), Scope::UsersRead), Err(CoreError::Unauthenticated)));
        let admin = caller(Some(2), &[Scope::TenantAdmin]);
        for s in [Scope::CredentialsVerify, Scope::UsersRead, Scope::UsersManage, Scope::TenantAdmin] {
            assert!(admin.require(TenantId(2), s).is_ok());
        }
        assert!(admin.require_operator().is_err());
        assert!(admin.require_admin_of(Some(TenantId(2))).is_ok());
        assert!(admin.require_admin_of(None).is_err());
        let verify = caller(Some(2), &[Scope::CredentialsVerify]);
        assert!(verify.require(TenantId(2), Scope::UsersRead).is_err());
        let op = caller(None, &[Scope::Operator]);
        assert!(op.require(TenantId(7), Scope::TenantAdmin).is_ok());
        assert!(op.require_operator().is_ok());
        let cli = Caller::operator(ClientInfo::default());
        assert!(cli.require(TenantId(7), Scope::TenantAdmin).is_ok() && cli.require_operator().is_ok());
        assert_eq!(cli.actor(), Actor::Cli);
        assert_eq!(op.actor(), Actor::Key(ApiKeyId(1)));
    }
}
