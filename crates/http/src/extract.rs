//! Extractors of the native API. Each rejects with an [`ApiError`], so a malformed request
//! gets the API's own JSON error shape, never axum's default plain-text rejection.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use portcullis_core::auth::AuthSession;
use portcullis_core::{ClientInfo, TenantId, Token};
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::ApiError;

/// A JSON request body of type `T`: `Content-Type: application/json` required (415), size
/// bounded by the configured limit (413), syntax errors 400, type and field errors 422 — all
/// in the API's error shape, and without echoing submitted values back.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "The body must be JSON, sent with Content-Type: application/json.",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "The body is too large.")
            } else {
                ApiError::malformed("The body could not be read.")
            }
        })?;
        parse_json(&bytes).map(JsonBody)
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let mime = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// Parses JSON into `T` with errors in the API's shape.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every JSON body of this API is an object. Serde would also accept a struct written as
    // an array of its fields in order; nothing should rely on that.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|b| *b != b'{') {
        return Err(ApiError::malformed("The body must be a JSON object."));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.inner();
        match inner.classify() {
            serde_json::error::Category::Data => data_error(&path, &inner.to_string()),
            _ => ApiError::malformed(format!(
                "The body is not valid JSON (line {}, column {}).",
                inner.line(),
                inner.column()
            )),
        }
    })?;
    de.end().map_err(|e| {
        ApiError::malformed(format!("The body is not valid JSON (line {}, column {}).", e.line(), e.column()))
    })?;
    Ok(value)
}

fn data_error(path: &str, msg: &str) -> ApiError {
    let quoted = |prefix: &str| msg.strip_prefix(prefix).and_then(|r| r.split('`').next()).map(str::to_owned);
    let join = |field: &str| if path.is_empty() || path == "." { field.to_owned() } else { format!("{path}.{field}") };
    let (field, what) = if let Some(f) = quoted("unknown field `") {
        // The path of an unknown field already ends with the field itself.
        (if path.ends_with(&f) { path.to_owned() } else { join(&f) }, "unknown field")
    } else if let Some(f) = quoted("missing field `") {
        (join(&f), "is required")
    } else if msg.starts_with("invalid type") || msg.starts_with("invalid value") || msg.starts_with("invalid length") {
        if path.is_empty() || path == "." {
            return ApiError::malformed("The body must be a JSON object.");
        }
        (path.to_owned(), "has the wrong type")
    } else {
        (if path.is_empty() { "body".to_owned() } else { path.to_owned() }, "is invalid")
    };
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", "Some fields are invalid.")
        .with_field(field, what)
}

/// Query parameters of type `T`, with errors in the API's shape (unknown parameters refused).
#[derive(Debug)]
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(q).map(QueryParams).map_err(|e| {
            let msg = e.to_string();
            let (field, what) = if let Some(f) = msg.strip_prefix("unknown field `").and_then(|r| r.split('`').next()) {
                (f.to_owned(), "unknown parameter")
            } else {
                ("query".to_owned(), "has a parameter of the wrong type")
            };
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", "Some parameters are invalid.")
                .with_field(field, what)
        })
    }
}

/// The tenant a request is for: set by the router for tenant-scoped paths; the default
/// tenant otherwise.
#[derive(Clone, Copy, Debug)]
pub struct CurrentTenant(pub TenantId);

impl<S: Send + Sync> FromRequestParts<S> for CurrentTenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<CurrentTenant>().copied().unwrap_or(CurrentTenant(TenantId::DEFAULT)))
    }
}

/// Who the client is: IP (forwarded headers honoured only from trusted proxies), user agent,
/// and whether the request reached the edge over HTTPS.
#[derive(Clone, Debug)]
pub struct Client {
    /// What the core is told.
    pub info: ClientInfo,
    /// Whether the request came over TLS (as far as trusted proxies say).
    pub https: bool,
    /// The path the session cookie is scoped to: `/t/{slug}/` for a request made under a
    /// tenant prefix (so tenants sharing a host keep separate cookies), `/` otherwise.
    pub cookie_path: String,
}

impl FromRequestParts<AppState> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(client_of(parts, state))
    }
}

pub(crate) fn client_of(parts: &Parts, state: &AppState) -> Client {
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let trusted = |ip: &IpAddr| state.config.trusted_proxies.iter().any(|n| n.contains(ip));
    let via_proxy = peer.as_ref().is_some_and(trusted);
    let ip = if via_proxy {
        // Walk X-Forwarded-For from the right, past our own proxies, to the first address
        // we did not put there ourselves.
        let forwarded: Vec<IpAddr> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        forwarded.into_iter().rev().find(|ip| !trusted(ip)).or(peer)
    } else {
        peer
    };
    let https = via_proxy
        && parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    let user_agent = parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let cookie_path = match parts.extensions.get::<crate::tenant::TenantSlug>() {
        Some(s) => format!("/t/{}/", s.0),
        None => "/".to_owned(),
    };
    Client { info: ClientInfo { ip, user_agent }, https, cookie_path }
}

/// How a request presented its session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// `Authorization: Bearer`.
    Bearer,
    /// The session cookie.
    Cookie,
}

/// A request authenticated by a session of the current tenant.
#[derive(Clone, Debug)]
pub struct Authenticated {
    /// The session.
    pub auth: AuthSession,
    /// How it was presented.
    pub via: Via,
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let CurrentTenant(tenant) = CurrentTenant::from_request_parts(parts, state).await?;
        let (token, via) = if let Some(v) = parts.headers.get(header::AUTHORIZATION) {
            let v = v.to_str().unwrap_or_default();
            let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(portcullis_core::CoreError::Unauthenticated.into());
            }
            (rest.trim().to_owned(), Via::Bearer)
        } else if let Some(c) = cookie(&parts.headers, &state.config.cookie_name) {
            (c, Via::Cookie)
        } else {
            return Err(portcullis_core::CoreError::Unauthenticated.into());
        };
        let auth = state.core.authenticate(tenant, &Token::from_client(token)).await?;
        Ok(Authenticated { auth, via })
    }
}

/// A request authenticated by an API key (`Authorization: Bearer pck_...`). Whether the key
/// may act in the current tenant, with the needed scope, is checked by the handler through
/// [`portcullis_core::keys::KeyCaller::require`].
#[derive(Clone, Debug)]
pub struct KeyAuth {
    /// The caller.
    pub caller: portcullis_core::keys::KeyCaller,
    /// The tenant the request is for.
    pub tenant: TenantId,
    /// The calling server.
    pub client: ClientInfo,
}

impl KeyAuth {
    /// Allows the call if the key works in the request's tenant with `scope`.
    pub fn require(&self, scope: portcullis_core::model::Scope) -> Result<(), ApiError> {
        Ok(self.caller.require(self.tenant, scope)?)
    }

    /// Who acts, for the audit log.
    pub fn actor(&self) -> portcullis_core::audit::Actor {
        self.caller.actor()
    }
}

impl FromRequestParts<AppState> for KeyAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let CurrentTenant(tenant) = CurrentTenant::from_request_parts(parts, state).await?;
        let Some(v) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "This endpoint needs an API key: Authorization: Bearer pck_...",
            ));
        };
        let v = v.to_str().unwrap_or_default();
        let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(portcullis_core::CoreError::Unauthenticated.into());
        }
        let caller = state.core.authenticate_key(&Token::from_client(rest.trim())).await?;
        // A key of another tenant is refused before anything else is looked at, exactly like
        // an unknown key.
        if caller.key.tenant_id.is_some_and(|t| t != tenant) {
            return Err(portcullis_core::CoreError::Unauthenticated.into());
        }
        Ok(KeyAuth { caller, tenant, client: client_of(parts, state).info })
    }
}

/// The value of a cookie, from any `Cookie` header.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Login {
        login: String,
        password: String,
    }

    fn err(body: &str) -> ApiError {
        parse_json::<Login>(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn json_errors_are_classified_and_never_echo_values() {
        let e = err("{\"login\": ");
        assert_eq!((e.status(), e.code()), (StatusCode::BAD_REQUEST, "malformed_request"));
        let e = err("[1, 2]");
        assert_eq!((e.status(), e.code()), (StatusCode::BAD_REQUEST, "malformed_request"));
        let e = err(r#"{"login": "a", "password": "b", "admin": true}"#);
        assert_eq!((e.status(), e.code()), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"));
        assert_eq!(e.field("admin"), Some("unknown field"));
        let e = err(r#"{"login": "a"}"#);
        assert_eq!(e.field("password"), Some("is required"));
        let e = err(r#"{"login": "a", "password": 12345678}"#);
        assert_eq!(e.field("password"), Some("has the wrong type"));
        assert!(!format!("{e:?}").contains("12345678"));
        let e = err(r#"{"login": "a", "password": "b"} trailing"#);
        assert_eq!(e.code(), "malformed_request");
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, "a=1; portcullis_session=pcs_abc; b=2".parse().unwrap());
        assert_eq!(cookie(&h, "portcullis_session").as_deref(), Some("pcs_abc"));
        assert_eq!(cookie(&h, "missing"), None);
    }
}
