//! Who calls the account API: a server presenting a Portcullis API key the way Siberian's API
//! users presented their credentials — `Api-Auth-Bearer: Bearer <key>` (Siberian's own header,
//! for servers where `Authorization` never reaches the application), or HTTP Basic with the key
//! as the password (the user part is ignored: put the key's name there if the client insists
//! on one), or `Authorization: Bearer <key>`. What the key may do is the core's to decide, per
//! call; a tenant that has the dialect off refuses every caller, in the same words as a wrong
//! key.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use portcullis_core::{Caller, Dialect, TenantId, Token};

use super::wire::Failure;
use crate::shared::client::client_of;
use crate::shared::credentials::{Authorization, authorization};
use crate::shared::{AppState, Client, CurrentTenant};

/// Siberian's header for a bearer credential.
const BEARER_HEADER: &str = "api-auth-bearer";

/// A call of the account API by a server whose key was accepted in the request's tenant.
#[derive(Debug)]
pub(super) struct ApiCall {
    /// The caller, for the core to check per operation.
    pub caller: Caller,
    /// The tenant the call is for.
    pub tenant: TenantId,
    /// The calling server.
    pub client: Client,
}

impl FromRequestParts<AppState> for ApiCall {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let tenant = parts.extensions.get::<CurrentTenant>().map_or(TenantId::DEFAULT, |t| t.0);
        let client = client_of(parts, st);
        // Checked first: a tenant without the dialect tells nobody whether a key is good.
        st.core.dialect_policy(tenant, Dialect::Siberian).await?;
        let key = presented_key(&parts.headers).ok_or_else(Failure::caller_refused)?;
        let caller = st.core.authenticate_key(&Token::from_client(key), tenant, client.info.clone()).await?;
        Ok(Self { caller, tenant, client })
    }
}

/// The key the request presents, if any: Siberian's bearer header first (as Siberian read
/// it), then `Authorization`.
fn presented_key(headers: &HeaderMap) -> Option<String> {
    let bearer = headers
        .get(BEARER_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .and_then(|v| v.split_at_checked(6))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim());
    let key = match bearer {
        Some(k) => k.to_owned(),
        None => match authorization(headers) {
            Authorization::Basic(b) => b.password,
            Authorization::Bearer(k) => k,
            Authorization::Absent | Authorization::Other => return None,
        },
    };
    Some(key).filter(|k| !k.is_empty())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn keys_are_read_from_each_header_siberian_clients_use() {
        assert_eq!(presented_key(&headers(&[("api-auth-bearer", "Bearer pck_a")])).as_deref(), Some("pck_a"));
        assert_eq!(presented_key(&headers(&[("api-auth-bearer", "bearer  pck_a ")])).as_deref(), Some("pck_a"));
        // "anyone:pck_b"
        let basic = [("authorization", "Basic YW55b25lOnBja19i")];
        assert_eq!(presented_key(&headers(&basic)).as_deref(), Some("pck_b"));
        assert_eq!(presented_key(&headers(&[("authorization", "Bearer pck_c")])).as_deref(), Some("pck_c"));
        // Siberian's header wins; one that is not a bearer credential leaves Authorization.
        let both = [("api-auth-bearer", "Bearer pck_a"), ("authorization", "Bearer pck_c")];
        assert_eq!(presented_key(&headers(&both)).as_deref(), Some("pck_a"));
        let odd = [("api-auth-bearer", "Token pck_a"), ("authorization", "Bearer pck_c")];
        assert_eq!(presented_key(&headers(&odd)).as_deref(), Some("pck_c"));
        assert_eq!(presented_key(&headers(&[])), None);
        assert_eq!(presented_key(&headers(&[("api-auth-bearer", "Bearer ")])), None);
        assert_eq!(presented_key(&headers(&[("authorization", "Digest x")])), None);
        assert_eq!(presented_key(&headers(&[("api-auth-bearer", "Bé")])), None);
    }
}
