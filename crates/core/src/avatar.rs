//! Profile pictures. An upload (PNG, JPEG or WebP) is decoded within limits, cropped to a
//! square, resized to the five sizes legacy clients ask for, and re-encoded as JPEG — which
//! also drops whatever the original carried besides pixels (location, camera, comments). A
//! user without a picture gets a generated one, drawn from a hash of their tenant and id, so
//! that its URL says nothing about whether the account exists.
//!
//! Pictures are public: their URLs carry the user's id, the size and the picture's version
//! (a hash of the picture), so a new picture gets new URLs and a served one never changes.

use std::io::Cursor;
use std::time::Duration;

use image::imageops::FilterType;
use image::{ImageFormat, ImageReader, Limits, Rgb, RgbImage, RgbaImage};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::Core;
use crate::audit::AuditAction;
use crate::auth::AuthSession;
use crate::error::{CoreError, CoreResult, Field};
use crate::ids::{TenantId, UserId};
use crate::store::StoredImage;

/// Largest upload accepted, in bytes.
pub const MAX_UPLOAD_BYTES: usize = 5 * 1024 * 1024;

/// Largest width or height of an upload, in pixels.
pub const MAX_DIMENSION: u32 = 8192;

/// Most memory one decoding may take, in bytes.
const MAX_DECODE_ALLOC: u64 = 256 * 1024 * 1024;

/// JPEG quality of the stored sizes.
const JPEG_QUALITY: u8 = 85;

/// How long an upload waits for a free image worker before the server says it is busy.
const IMAGE_WAIT: Duration = Duration::from_secs(5);

/// How many images are processed at once (decoding is costly in memory and time).
pub(crate) const IMAGE_WORKERS: usize = 2;

/// The version of every generated picture.
pub const DEFAULT_VERSION: &str = "default";

/// The media type of every stored and generated picture.
pub const CONTENT_TYPE: &str = "image/jpeg";

/// A picture size, as OSSN names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AvatarSize {
    /// 20×20, for a top bar.
    Topbar,
    /// 32×32.
    Smaller,
    /// 50×50.
    Small,
    /// 100×100.
    Large,
    /// 200×200.
    Larger,
}

impl AvatarSize {
    /// Every size, smallest first.
    pub const ALL: [AvatarSize; 5] =
        [AvatarSize::Topbar, AvatarSize::Smaller, AvatarSize::Small, AvatarSize::Large, AvatarSize::Larger];

    /// The size's name in URLs.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Topbar => "topbar",
            Self::Smaller => "smaller",
            Self::Small => "small",
            Self::Large => "large",
            Self::Larger => "larger",
        }
    }

    /// Width and height, in pixels.
    pub const fn pixels(self) -> u32 {
        match self {
            Self::Topbar => 20,
            Self::Smaller => 32,
            Self::Small => 50,
            Self::Large => 100,
            Self::Larger => 200,
        }
    }

    /// The size with this name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// The path of one size of a user's picture, below the tenant's base URL.
pub fn avatar_path(user: UserId, size: AvatarSize, version: Option<&str>) -> String {
    format!("/avatars/{}/{}/{}.jpeg", user.0, size.name(), version.unwrap_or(DEFAULT_VERSION))
}

/// A picture to serve.
#[derive(Clone, Debug)]
pub struct AvatarImage {
    /// Its media type.
    pub content_type: &'static str,
    /// The encoded image.
    pub bytes: Vec<u8>,
}

impl Core {
    /// Replaces the requesting user's picture with an upload; returns the new version.
    /// Anything but a PNG, JPEG or WebP image within [`MAX_UPLOAD_BYTES`] and
    /// [`MAX_DIMENSION`] is a validation error on `avatar`. Audited.
    pub async fn set_avatar(&self, auth: &AuthSession, upload: Vec<u8>) -> CoreResult<String> {
        let s = &auth.session;
        // The session is checked before any decoding work is spent.
        self.me(auth).await?;
        if upload.len() > MAX_UPLOAD_BYTES {
            return Err(CoreError::field(Field::Param("avatar"), format!("must be at most {MAX_UPLOAD_BYTES} bytes")));
        }
        let images = self.on_image_worker(move || resize_upload(&upload)).await?;
        let images = images.map_err(|m| CoreError::field(Field::Param("avatar"), m))?;
        let version = version_of(&images);
        let stored: Vec<StoredImage> = images
            .into_iter()
            .map(|(size, bytes)| StoredImage { size: size.name().to_owned(), content_type: CONTENT_TYPE.into(), bytes })
            .collect();
        if !self.store.avatars.set_avatar(s.tenant_id, s.user_id, &version, &stored, self.now()).await? {
            return Err(CoreError::Unauthenticated);
        }
        self.audit_user(auth, AuditAction::AvatarChanged, None, json!({"version": version}));
        Ok(version)
    }

    /// Removes the requesting user's picture (a generated one is shown again). Audited.
    pub async fn remove_avatar(&self, auth: &AuthSession) -> CoreResult<()> {
        let s = &auth.session;
        self.me(auth).await?;
        if self.store.avatars.remove_avatar(s.tenant_id, s.user_id, self.now()).await? {
            self.audit_user(auth, AuditAction::AvatarRemoved, None, json!({}));
        }
        Ok(())
    }

    /// One size of a picture, public: the stored one while `version` is current, a generated
    /// one for [`DEFAULT_VERSION`] (for any id, without asking the database, so that the
    /// answer tells nothing about the account); [`CoreError::NotFound`] otherwise.
    pub async fn avatar_image(
        &self,
        tenant: TenantId,
        user: UserId,
        size: AvatarSize,
        version: &str,
    ) -> CoreResult<AvatarImage> {
        self.tenant_policy(tenant).await?;
        if version == DEFAULT_VERSION {
            let bytes = self.on_image_worker(move || generated_picture(tenant, user, size)).await?;
            return Ok(AvatarImage { content_type: CONTENT_TYPE, bytes });
        }
        let valid = version.len() == 32 && version.bytes().all(|b| b.is_ascii_hexdigit());
        if !valid {
            return Err(CoreError::NotFound);
        }
        let found = self.store.avatars.avatar_image(tenant, user, size.name(), version).await?;
        found.map(|i| AvatarImage { content_type: CONTENT_TYPE, bytes: i.bytes }).ok_or(CoreError::NotFound)
    }

    /// Runs image work off the async runtime, at most [`IMAGE_WORKERS`] at once; busy when no
    /// worker frees up within [`IMAGE_WAIT`].
    async fn on_image_worker<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> CoreResult<T> {
        let busy = CoreError::Overloaded { retry_after: Duration::from_secs(1) };
        let permit = match tokio::time::timeout(IMAGE_WAIT, self.images.acquire()).await {
            Ok(Ok(p)) => p,
            _ => return Err(busy),
        };
        let result = tokio::task::spawn_blocking(work).await.map_err(CoreError::internal);
        drop(permit);
        result
    }
}

/// The version of a picture: a hash of its largest size.
fn version_of(images: &[(AvatarSize, Vec<u8>)]) -> String {
    let largest = images.iter().find(|(s, _)| *s == AvatarSize::Larger).map(|(_, b)| b.as_slice()).unwrap_or_default();
    hex::encode(&Sha256::digest(largest)[..16])
}

/// Decodes an upload and makes every size of it.
fn resize_upload(upload: &[u8]) -> Result<Vec<(AvatarSize, Vec<u8>)>, String> {
    let reader =
        ImageReader::new(Cursor::new(upload)).with_guessed_format().map_err(|_| "could not be read".to_owned())?;
    match reader.format() {
        Some(ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP) => {}
        _ => return Err("must be a PNG, JPEG or WebP image".into()),
    }
    let mut reader = reader;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    reader.limits(limits);
    let image = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => format!("must be at most {MAX_DIMENSION}×{MAX_DIMENSION} pixels"),
        _ => "is not a valid PNG, JPEG or WebP image".to_owned(),
    })?;
    if image.width() == 0 || image.height() == 0 {
        return Err("is empty".into());
    }
    let rgba = image.to_rgba8();
    AvatarSize::ALL
        .iter()
        .rev()
        .map(|&size| {
            let px = size.pixels();
            let square = image::DynamicImage::ImageRgba8(rgba.clone()).resize_to_fill(px, px, FilterType::Lanczos3);
            Ok((size, encode_jpeg(&on_white(&square.to_rgba8()))?))
        })
        .collect()
}

/// An image with transparency laid on white (JPEG has no alpha channel).
fn on_white(img: &RgbaImage) -> RgbImage {
    RgbImage::from_fn(img.width(), img.height(), |x, y| {
        let p = img.get_pixel(x, y).0;
        let a = u16::from(p[3]);
        let blend = |c: u8| ((u16::from(c) * a + 255 * (255 - a)) / 255) as u8;
        Rgb([blend(p[0]), blend(p[1]), blend(p[2])])
    })
}

fn encode_jpeg(img: &RgbImage) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
        .encode_image(img)
        .map_err(|_| "could not be encoded".to_owned())?;
    Ok(out)
}

/// A generated picture: a symmetric 5×5 pattern in a colour, both drawn from a hash of the
/// tenant and the user id.
fn generated_picture(tenant: TenantId, user: UserId, size: AvatarSize) -> Vec<u8> {
    let digest = Sha256::digest(format!("portcullis avatar {}:{}", tenant.0, user.0).as_bytes());
    let colour = hue_to_rgb(u16::from_be_bytes([digest[0], digest[1]]) % 360);
    let background = Rgb([240, 240, 240]);
    let px = size.pixels();
    // A 5×5 grid inside a margin of half a cell: 6 cells across.
    let cell = f64::from(px) / 6.0;
    let on = |col: usize, row: usize| {
        let col = if col > 2 { 4 - col } else { col };
        let bit = row * 3 + col;
        digest[2 + bit / 8] >> (bit % 8) & 1 == 1
    };
    let img = RgbImage::from_fn(px, px, |x, y| {
        let gx = f64::from(x) / cell - 0.5;
        let gy = f64::from(y) / cell - 0.5;
        if !(0.0..5.0).contains(&gx) || !(0.0..5.0).contains(&gy) {
            return background;
        }
        if on(gx as usize, gy as usize) { colour } else { background }
    });
    // Encoding an image built in memory cannot fail; an empty answer would be served as a
    // broken image rather than a panic.
    encode_jpeg(&img).unwrap_or_default()
}

/// A saturated, mid-light colour of a hue (degrees).
fn hue_to_rgb(hue: u16) -> Rgb<u8> {
    let h = f64::from(hue) / 60.0;
    let (c, l) = (0.55, 0.5);
    let x = c * (1.0 - (h % 2.0 - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = l - c / 2.0;
    let to = |v: f64| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    Rgb([to(r), to(g), to(b)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = RgbaImage::from_fn(w, h, |x, y| image::Rgba([(x % 256) as u8, (y % 256) as u8, 90, 200]));
        let mut out = Vec::new();
        image::DynamicImage::ImageRgba8(img).write_to(&mut Cursor::new(&mut out), ImageFormat::Png).unwrap();
        out
    }

    #[test]
    fn uploads_become_every_size_as_jpeg() {
        let sizes = resize_upload(&png(640, 480)).unwrap();
        assert_eq!(sizes.len(), 5);
        for (size, bytes) in &sizes {
            let img = image::load_from_memory_with_format(bytes, ImageFormat::Jpeg).unwrap();
            assert_eq!((img.width(), img.height()), (size.pixels(), size.pixels()));
        }
    }

    #[test]
    fn anything_but_a_picture_is_refused() {
        assert!(resize_upload(b"GIF89a....").is_err());
        assert!(resize_upload(b"<svg xmlns='http://www.w3.org/2000/svg'/>").is_err());
        let mut cut = png(64, 64);
        cut.truncate(cut.len() / 2);
        assert!(resize_upload(&cut).is_err());
        assert!(resize_upload(&png(MAX_DIMENSION + 1, 1)).unwrap_err().contains("pixels"));
    }

    #[test]
    fn generated_pictures_differ_by_user_and_have_every_size() {
        let a = generated_picture(TenantId(1), UserId(1), AvatarSize::Larger);
        let b = generated_picture(TenantId(1), UserId(2), AvatarSize::Larger);
        assert_ne!(a, b);
        assert_eq!(a, generated_picture(TenantId(1), UserId(1), AvatarSize::Larger));
        for size in AvatarSize::ALL {
            let img = image::load_from_memory(&generated_picture(TenantId(1), UserId(1), size)).unwrap();
            assert_eq!(img.width(), size.pixels());
        }
    }
}
