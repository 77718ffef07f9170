//! Reading a request body within the configured limit, and telling its media type. What a
//! too-large or unreadable body gets is each surface's to answer.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};

/// Why a body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Larger than `http.max_body_bytes` (by its `Content-Length` or as it arrived).
    TooLarge,
    /// The connection failed or the body was cut short.
    Unreadable,
}

/// The whole body, within the configured limit.
pub async fn read<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, BodyError> {
    Bytes::from_request(req, state).await.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE { BodyError::TooLarge } else { BodyError::Unreadable }
    })
}

/// The media type of the body, lower-cased, without parameters (`application/json`).
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
}

/// Whether the body is declared JSON (`application/json` or `application/*+json`).
pub fn is_json(headers: &HeaderMap) -> bool {
    media_type(headers)
        .is_some_and(|m| m == "application/json" || (m.starts_with("application/") && m.ends_with("+json")))
}
