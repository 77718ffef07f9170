//! Secrets: passwords and opaque tokens. Their `Debug` output is redacted so that no secret
//! can reach a log through a `{:?}`; tokens are stored only as their SHA-256 hash.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// A password as typed by a user. Zeroed on drop; never printed.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

impl Password {
    /// Wraps a password; no policy is applied here (see [`crate::password::check_strength`]).
    pub fn new(s: impl Into<String>) -> Self {
        Self(Zeroizing::new(s.into()))
    }

    /// The password text, for hashing and strength checks only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl<'de> serde::Deserialize<'de> for Password {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Password::new)
    }
}

/// Random bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], getrandom::Error> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out)?;
    Ok(out)
}

/// An opaque bearer token handed to a client once (session tokens, later log-in links and
/// API keys). 256 random bits, URL-safe base64, behind a short prefix that says what it is
/// so that secret scanners and people can recognise a leaked one.
#[derive(Clone)]
pub struct Token(Zeroizing<String>);

impl Token {
    /// A fresh random token with the given prefix (for example `pcs_` for sessions).
    pub fn generate(prefix: &str) -> Result<Self, getrandom::Error> {
        let bytes = Zeroizing::new(random_bytes::<32>()?);
        let mut s = String::with_capacity(prefix.len() + 43);
        s.push_str(prefix);
        URL_SAFE_NO_PAD.encode_string(bytes.as_slice(), &mut s);
        Ok(Self(Zeroizing::new(s)))
    }

    /// Wraps a token received from a client.
    pub fn from_client(s: impl Into<String>) -> Self {
        Self(Zeroizing::new(s.into()))
    }

    /// The token text, to hand to the client once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the token has the shape of one this server issues with `prefix` (the prefix,
    /// then 43 URL-safe base64 characters); checked before any look-up, so garbage costs
    /// nothing.
    pub fn has_shape(&self, prefix: &str) -> bool {
        self.0
            .strip_prefix(prefix)
            .is_some_and(|b| b.len() == 43 && b.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'))
    }

    /// The hash under which this token is stored.
    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.0.as_bytes()).into())
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// SHA-256 of a token. Tokens carry 256 bits of entropy, so a fast hash is enough: nothing
/// can be guessed from it, and a lookup by hash costs no more than a lookup by value.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// The hash bytes, as stored.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses stored bytes; `None` when the length is wrong.
    pub fn from_slice(b: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(b).ok().map(Self)
    }
}

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The first bytes are enough to tell hashes apart in a log; the hash is not a secret
        // but there is no reason to print all of it either.
        write!(f, "TokenHash({:02x}{:02x}{:02x}{:02x}…)", self.0[0], self.0[1], self.0[2], self.0[3])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_a_secret() {
        let p = Password::new("hunter2-hunter2");
        let t = Token::generate("pcs_").unwrap();
        assert_eq!(format!("{p:?}"), "Password(<redacted>)");
        assert!(!format!("{t:?}").contains(&t.expose()[4..]));
    }

    #[test]
    fn tokens_are_long_random_and_prefixed() {
        let a = Token::generate("pcs_").unwrap();
        let b = Token::generate("pcs_").unwrap();
        assert!(a.expose().starts_with("pcs_"));
        assert_eq!(a.expose().len(), 4 + 43); // 32 bytes in unpadded base64
        assert_ne!(a.expose(), b.expose());
        assert_ne!(a.hash(), b.hash());
        assert_eq!(Token::from_client(a.expose()).hash(), a.hash());
    }
}
