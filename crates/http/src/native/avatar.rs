//! Profile pictures: the user's own (`PUT` / `DELETE /v1/me/avatar`) and the public pictures
//! every user has (`GET /avatars/{id}/{size}/{version}.jpeg`, a stored upload or a generated
//! picture).

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use portcullis_core::avatar::{AvatarSize, MAX_UPLOAD_BYTES, avatar_path};
use portcullis_core::mail::tenant_base_url;
use portcullis_core::{CoreError, TenantId, UserId};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::json::error::{ApiError, ErrorBody};
use crate::json::extract::Authenticated;
use crate::shared::body::{self, BodyError};
use crate::shared::{AppState, CurrentTenant};

/// Where the public pictures are served.
pub const PREFIX: &str = "/avatars";

/// How long a browser or proxy may keep a stored picture (its URL changes with it).
const STORED_MAX_AGE: &str = "public, max-age=31536000, immutable";

/// How long a generated picture may be kept.
const GENERATED_MAX_AGE: &str = "public, max-age=86400";

/// The routes of the user's own picture, relative to `/v1`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(put_avatar, delete_avatar)).layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES))
}

/// The public pictures, below [`PREFIX`].
pub fn public_routes() -> Router<AppState> {
    Router::new().route(&format!("{PREFIX}/{{user}}/{{size}}/{{file}}"), get(picture))
}

/// The user's picture.
#[derive(Debug, Serialize, ToSchema)]
pub struct AvatarResponse {
    /// The picture's version (part of its URLs; `default` for a generated picture).
    version: String,
    /// Its URL at each size: `topbar` (20 px), `smaller` (32), `small` (50), `large` (100),
    /// `larger` (200).
    #[schema(value_type = Object)]
    urls: Map<String, Value>,
}

async fn response(
    st: &AppState,
    tenant: TenantId,
    user: UserId,
    version: Option<&str>,
) -> Result<AvatarResponse, ApiError> {
    let (t, policy) = st.core.tenant_policy(tenant).await?;
    let base = tenant_base_url(&t, &policy);
    let urls = AvatarSize::ALL
        .iter()
        .map(|s| (s.name().to_owned(), json!(format!("{base}{}", avatar_path(user, *s, version)))))
        .collect();
    Ok(AvatarResponse { version: version.unwrap_or(portcullis_core::avatar::DEFAULT_VERSION).to_owned(), urls })
}

/// Set the user's picture: the body is a PNG, JPEG or WebP image (with its `Content-Type`),
/// or a `multipart/form-data` form whose first file is one. At most 5 MiB and 8192 pixels
/// across; it is cropped to a square and stored at every size as JPEG.
#[utoipa::path(
    put, path = "/me/avatar", tag = "accounts",
    request_body(content = Vec<u8>, content_type = "image/png", description = "The picture: image/png, image/jpeg or image/webp, or a multipart/form-data form with one file"),
    responses(
        (status = 200, description = "Stored; its URLs", body = AvatarResponse),
        (status = 401, body = ErrorBody),
        (status = 413, description = "Larger than 5 MiB", body = ErrorBody),
        (status = 415, description = "Not an image type or a form", body = ErrorBody),
        (status = 422, description = "Not a PNG, JPEG or WebP image within the limits", body = ErrorBody),
        (status = 503, description = "Busy: retry after the Retry-After delay", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
async fn put_avatar(
    State(st): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    a: Authenticated,
    req: Request,
) -> Result<Json<AvatarResponse>, ApiError> {
    let too_large =
        || ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "The picture must be at most 5 MiB.");
    let upload: Bytes = match body::media_type(req.headers()).as_deref() {
        Some("image/png" | "image/jpeg" | "image/jpg" | "image/webp") => {
            body::read(req, &st).await.map_err(|e| match e {
                BodyError::TooLarge => too_large(),
                BodyError::Unreadable => ApiError::malformed("The body could not be read."),
            })?
        }
        Some("multipart/form-data") => first_file(req, &st).await.map_err(|e| e.unwrap_or_else(too_large))?,
        _ => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send the picture as the body with Content-Type image/png, image/jpeg or image/webp, or as a file in a multipart/form-data form.",
            ));
        }
    };
    let version = st.core.set_avatar(&a.auth, upload.to_vec()).await?;
    Ok(Json(response(&st, tenant, a.auth.session.user_id, Some(&version)).await?))
}

/// The first file of a multipart form; `Err(None)` when the body is too large.
async fn first_file(req: Request, st: &AppState) -> Result<Bytes, Option<ApiError>> {
    use axum::extract::FromRequest as _;
    let malformed = || Some(ApiError::malformed("The multipart form could not be read."));
    let mut form = Multipart::from_request(req, st).await.map_err(|_| malformed())?;
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => {
                return Err(Some(
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", "The form holds no file.")
                        .with_field("avatar", "is required"),
                ));
            }
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(None),
            Err(_) => return Err(malformed()),
        };
        if field.file_name().is_none() {
            continue;
        }
        return field
            .bytes()
            .await
            .map_err(|e| if e.status() == StatusCode::PAYLOAD_TOO_LARGE { None } else { malformed() });
    }
}

/// Remove the user's picture: a generated one is shown again.
#[utoipa::path(
    delete, path = "/me/avatar", tag = "accounts",
    responses((status = 200, description = "Removed; the generated picture's URLs", body = AvatarResponse), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("cookie" = []))
)]
async fn delete_avatar(
    State(st): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    a: Authenticated,
) -> Result<Json<AvatarResponse>, ApiError> {
    st.core.remove_avatar(&a.auth).await?;
    Ok(Json(response(&st, tenant, a.auth.session.user_id, None).await?))
}

/// A picture: `GET /avatars/{id}/{size}/{version}.jpeg`. Public.
async fn picture(
    State(st): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    Path((user, size, file)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let (Ok(user), Some(size), Some(version)) = (
        user.parse::<i64>(),
        AvatarSize::from_name(&size),
        file.strip_suffix(".jpeg").or_else(|| file.strip_suffix(".jpg")),
    ) else {
        return Err(CoreError::NotFound.into());
    };
    if user <= 0 {
        return Err(CoreError::NotFound.into());
    }
    let image = st.core.avatar_image(tenant, UserId(user), size, version).await?;
    let cache = if version == portcullis_core::avatar::DEFAULT_VERSION { GENERATED_MAX_AGE } else { STORED_MAX_AGE };
    let mut res = image.bytes.into_response();
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(image.content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    Ok(res)
}
