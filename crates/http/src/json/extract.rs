//! Extractors of the JSON API. Each rejects with an [`ApiError`], so a malformed request gets
//! the API's own JSON error shape, never axum's default plain-text rejection.

use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequest, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use portcullis_core::auth::AuthSession;
use portcullis_core::{Caller, CoreError, TenantId, Token};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::shared::body::{self, BodyError};
use crate::shared::client::client_of;
use crate::shared::credentials::{Authorization, authorization, cookie};
use crate::shared::{AppState, CurrentTenant};

/// A JSON request body of type `T`: `Content-Type: application/json` required (415), size
/// bounded by the configured limit (413), syntax errors 400, type and field errors 422 — all
/// in the API's error shape, and without echoing submitted values back.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !body::is_json(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "The body must be JSON, sent with Content-Type: application/json.",
            ));
        }
        let bytes = body::read(req, state).await.map_err(|e| match e {
            BodyError::TooLarge => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "The body is too large.")
            }
            BodyError::Unreadable => ApiError::malformed("The body could not be read."),
        })?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// A body that may be left out: no `Content-Type` and nothing (or only white space) in the
/// body is `None`; anything else is read as [`JsonBody`].
impl<S: Send + Sync, T: DeserializeOwned> OptionalFromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        if req.headers().contains_key(axum::http::header::CONTENT_TYPE) {
            return <Self as FromRequest<S>>::from_request(req, state).await.map(Some);
        }
        let bytes = body::read(req, state).await.map_err(|e| match e {
            BodyError::TooLarge => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "The body is too large.")
            }
            BodyError::Unreadable => ApiError::malformed("The body could not be read."),
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "The body must be JSON, sent with Content-Type: application/json.",
        ))
    }
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
        let Ok(CurrentTenant(tenant)) = CurrentTenant::from_request_parts(parts, state).await;
        let (token, via) = match authorization(&parts.headers) {
            Authorization::Bearer(t) => (t, Via::Bearer),
            Authorization::Absent => match cookie(&parts.headers, &state.config.cookie_name) {
                Some(c) => (c, Via::Cookie),
                None => return Err(CoreError::Unauthenticated.into()),
            },
            Authorization::Basic(_) | Authorization::Other => return Err(CoreError::Unauthenticated.into()),
        };
        let auth = state.core.authenticate(tenant, &Token::from_client(token)).await?;
        let auth = auth.through(crate::shared::surface_of(&parts.extensions));
        Ok(Authenticated { auth, via })
    }
}

/// A request authenticated by an API key (`Authorization: Bearer pck_...`) that works in the
/// request's tenant. What the key may do there is decided by each core operation.
#[derive(Clone, Debug)]
pub struct KeyAuth {
    /// The caller, for the core.
    pub caller: Caller,
    /// The tenant the request is for.
    pub tenant: TenantId,
}

impl FromRequestParts<AppState> for KeyAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Ok(CurrentTenant(tenant)) = CurrentTenant::from_request_parts(parts, state).await;
        let key = match authorization(&parts.headers) {
            Authorization::Bearer(k) => k,
            Authorization::Absent => {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthenticated",
                    "This endpoint needs an API key: Authorization: Bearer pck_...",
                ));
            }
            Authorization::Basic(_) | Authorization::Other => return Err(CoreError::Unauthenticated.into()),
        };
        let client = client_of(parts, state).info;
        let caller = state.core.authenticate_key(&Token::from_client(key), tenant, client).await?;
        Ok(KeyAuth { caller, tenant })
    }
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
}
