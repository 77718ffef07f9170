//! Secrets the server must read back — TOTP secrets — sealed at rest with XChaCha20-Poly1305
//! under the server's secret key, bound to what they belong to (a user of a tenant), so a
//! sealed value copied to another row does not open.
//!
//! The key comes from the configuration (`secrets.key` or `secrets.key_file`, kept apart from
//! the database and its backups), or, when none is configured, is made once and kept in the
//! database (`server_secrets`): then a stolen database yields the TOTP secrets too, and the
//! server says so when it starts. Either way every node of a deployment shares it.

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use crate::error::{CoreError, CoreResult};
use crate::secret::random_bytes;

/// Length of the key, in bytes.
pub const KEY_BYTES: usize = 32;

/// The name under which a key made by the server is kept in the database.
pub const STORED_KEY_NAME: &str = "sealing-key-v1";

/// The first byte of every sealed value: the format, so that it can change later.
const VERSION: u8 = 1;
const NONCE_BYTES: usize = 24;

/// The server's secret key. Its `Debug` output is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(Zeroizing<[u8; KEY_BYTES]>);

impl SecretKey {
    /// A key from its bytes.
    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// A key from bytes of the right length.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; KEY_BYTES]>::try_from(bytes).ok().map(Self::from_bytes)
    }

    /// A key from its base64 text (as in `secrets.key` and key files; surrounding whitespace
    /// is ignored).
    pub fn parse(text: &str) -> Result<Self, String> {
        use base64::Engine as _;
        let bytes =
            base64::engine::general_purpose::STANDARD.decode(text.trim()).map_err(|_| "is not base64".to_owned())?;
        Self::from_slice(&bytes)
            .ok_or_else(|| format!("must be {KEY_BYTES} bytes (base64 of {KEY_BYTES} random bytes)"))
    }

    /// A new random key.
    pub fn generate() -> CoreResult<Self> {
        random_bytes::<KEY_BYTES>().map(Self::from_bytes).map_err(CoreError::internal)
    }

    /// The key as base64 text (for a new key file).
    pub fn to_base64(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(self.0.as_ref())
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_BYTES] {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl Serialize for SecretKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

impl<'de> Deserialize<'de> for SecretKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(|m| serde::de::Error::custom(format!("the secret key {m}")))
    }
}

/// Seals values with the current key, and opens them with it or with a previous one (so that
/// the key can be changed without making every sealed value unreadable at once).
pub struct Sealer {
    current: XChaCha20Poly1305,
    previous: Vec<XChaCha20Poly1305>,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer")
    }
}

impl Sealer {
    /// A sealer with this key.
    pub fn new(key: &SecretKey) -> Self {
        Self::with_previous(key, &[])
    }

    /// A sealer with this key, which also opens values sealed with the previous keys.
    pub fn with_previous(key: &SecretKey, previous: &[SecretKey]) -> Self {
        let cipher = |k: &SecretKey| XChaCha20Poly1305::new(k.as_bytes().into());
        Self { current: cipher(key), previous: previous.iter().map(cipher).collect() }
    }

    /// Seals `plain`, bound to `context` (which must be given again to open it).
    pub fn seal(&self, plain: &[u8], context: &[u8]) -> CoreResult<Vec<u8>> {
        let nonce = random_bytes::<NONCE_BYTES>().map_err(CoreError::internal)?;
        let sealed = self
            .current
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad: context })
            .map_err(|_| CoreError::Internal("sealing failed".into()))?;
        let mut out = Vec::with_capacity(1 + NONCE_BYTES + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens a value sealed with this key (or a previous one) and `context`; an error for
    /// anything else (another key, another context, a changed byte).
    pub fn open(&self, sealed: &[u8], context: &[u8]) -> CoreResult<Zeroizing<Vec<u8>>> {
        let refuse = || CoreError::Internal("a sealed value does not open with the server's key".into());
        let (version, rest) = sealed.split_first().ok_or_else(refuse)?;
        if *version != VERSION || rest.len() < NONCE_BYTES {
            return Err(refuse());
        }
        let (nonce, body) = rest.split_at(NONCE_BYTES);
        let nonce = XNonce::from_slice(nonce);
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find_map(|c| c.decrypt(nonce, Payload { msg: body, aad: context }).ok())
            .map(Zeroizing::new)
            .ok_or_else(refuse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_context() {
        let key = SecretKey::generate().unwrap();
        let s = Sealer::new(&key);
        let sealed = s.seal(b"JBSWY3DPEHPK3PXP", b"user:7").unwrap();
        assert_eq!(s.open(&sealed, b"user:7").unwrap().as_slice(), b"JBSWY3DPEHPK3PXP");
        assert!(s.open(&sealed, b"user:8").is_err(), "bound to its context");
        assert!(Sealer::new(&SecretKey::generate().unwrap()).open(&sealed, b"user:7").is_err(), "and its key");
        let mut tampered = sealed.clone();
        if let Some(b) = tampered.last_mut() {
            *b ^= 1;
        }
        assert!(s.open(&tampered, b"user:7").is_err());
        assert_ne!(s.seal(b"JBSWY3DPEHPK3PXP", b"user:7").unwrap(), sealed, "a fresh nonce each time");
        assert!(!sealed.windows(16).any(|w| w == b"JBSWY3DPEHPK3PXP"));
    }

    #[test]
    fn previous_keys_still_open_what_they_sealed() {
        let old = SecretKey::generate().unwrap();
        let new = SecretKey::generate().unwrap();
        let sealed = Sealer::new(&old).seal(b"secret", b"ctx").unwrap();
        let rotated = Sealer::with_previous(&new, std::slice::from_ref(&old));
        assert_eq!(rotated.open(&sealed, b"ctx").unwrap().as_slice(), b"secret");
        assert!(Sealer::new(&new).open(&sealed, b"ctx").is_err());
        let resealed = rotated.seal(b"secret", b"ctx").unwrap();
        assert!(Sealer::new(&old).open(&resealed, b"ctx").is_err(), "new values use the new key");
    }

    #[test]
    fn keys_parse_from_base64_and_never_print() {
        let key = SecretKey::generate().unwrap();
        assert_eq!(SecretKey::parse(&format!(" {}\n", key.to_base64())).unwrap(), key);
        assert!(SecretKey::parse("c2hvcnQ=").is_err());
        assert!(SecretKey::parse("not base64!").is_err());
        assert!(!format!("{key:?}").contains(&key.to_base64()));
    }
}
