//! The avatars part of the store: each user's profile picture, re-encoded at every size, and
//! its version (part of its URLs) on the user.

use std::fmt::Debug;

use super::StoreResult;
use crate::clock::Timestamp;
use crate::ids::{TenantId, UserId};

/// One size of a profile picture, as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredImage {
    /// The size's name (`topbar`, `smaller`, `small`, `large`, `larger`).
    pub size: String,
    /// Its media type (`image/jpeg`).
    pub content_type: String,
    /// The encoded image.
    pub bytes: Vec<u8>,
}

impl Debug for StoredImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredImage")
            .field("size", &self.size)
            .field("content_type", &self.content_type)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// Profile pictures.
#[async_trait::async_trait]
pub trait AvatarStore: Send + Sync + Debug {
    /// Replaces the user's picture with `images` (every size) under `version`, and sets the
    /// user's `avatar_version`, atomically. `false`, and nothing written, when the user is gone.
    async fn set_avatar(
        &self,
        tenant: TenantId,
        user: UserId,
        version: &str,
        images: &[StoredImage],
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Removes the user's picture; `false` when the user is gone or had none.
    async fn remove_avatar(&self, tenant: TenantId, user: UserId, now: Timestamp) -> StoreResult<bool>;
    /// One size of the user's current picture, if `version` is still current.
    async fn avatar_image(
        &self,
        tenant: TenantId,
        user: UserId,
        size: &str,
        version: &str,
    ) -> StoreResult<Option<StoredImage>>;
}
