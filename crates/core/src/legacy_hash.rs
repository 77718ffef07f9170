//! Password hashes imported from other systems: recognising them, checking them at import,
//! and verifying a password against them until the first successful log-in re-hashes it with
//! argon2id (see [`crate::password::Worker::verify`]).
//!
//! Every stored hash (the text kept in `users.password_hash`) has one canonical form:
//!
//! | scheme (import format) | stored form |
//! |---|---|
//! | `argon2id`, `argon2` | the PHC string, as given (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) |
//! | `bcrypt` | as given: `$2a$`, `$2b$` or `$2y$`, two-digit cost, 53 characters |
//! | `pbkdf2_sha256` | as given (Django): `pbkdf2_sha256$<iterations>$<salt>$<base64 digest>` |
//! | `phpass` | as given (WordPress, phpBB): `$P$` or `$H$`, count, 8-character salt, 22-character digest |
//! | `md5_salted` | `$md5-salted$<salt, base64 without padding>$<32 lower-case hex>`: md5(password ‖ salt) |
//! | `sha1` | `$sha1$<40 lower-case hex>`: sha1(password) |
//! | `sha256_salted` | `$sha256-salted$<salt, base64 without padding>$<64 lower-case hex>`: sha256(password ‖ salt) |
//! | `sha256_salt_first` | `$sha256-salt-first$<salt, base64 without padding>$<64 lower-case hex>`: sha256(salt ‖ password) |
//!
//! Salts of the hex formats are arbitrary text, kept in base64 so that a `$` in a salt cannot
//! break parsing. Every parameter that sets the cost of a verification is bounded, both at
//! import and when a stored hash is read, so an imported hash cannot tie up a hashing worker
//! for minutes. Argon2 verification itself lives in [`crate::password`]; this module only
//! validates argon2 hashes at import.
//!
//! Nothing here may echo a hash or a salt in an error message: import reasons reach the
//! operator's client and logs.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, NO_PAD, STANDARD, STANDARD_NO_PAD};
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use argon2::Params;
use argon2::password_hash::phc::PasswordHash as Phc;

/// A password hash scheme Portcullis can verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashScheme {
    /// argon2id, the scheme Portcullis hashes new passwords with.
    Argon2id,
    /// argon2i or argon2d PHC strings.
    Argon2Other,
    /// bcrypt, `$2a$`, `$2b$` or `$2y$`.
    Bcrypt,
    /// Django's PBKDF2-HMAC-SHA256.
    DjangoPbkdf2Sha256,
    /// phpass portable hashes (`$P$`, `$H$`): iterated MD5.
    Phpass,
    /// Hex md5(password ‖ salt), as OSSN stores it.
    Md5Salted,
    /// Hex sha1(password), unsalted, as Siberian stores it.
    Sha1,
    /// Hex sha256(password ‖ salt).
    Sha256Salted,
    /// Hex sha256(salt ‖ password).
    Sha256SaltFirst,
}

impl HashScheme {
    const ALL: [HashScheme; 9] = [
        HashScheme::Argon2id,
        HashScheme::Argon2Other,
        HashScheme::Bcrypt,
        HashScheme::DjangoPbkdf2Sha256,
        HashScheme::Phpass,
        HashScheme::Md5Salted,
        HashScheme::Sha1,
        HashScheme::Sha256Salted,
        HashScheme::Sha256SaltFirst,
    ];

    /// The scheme's name, which is also its import `password_format` value.
    pub fn as_str(self) -> &'static str {
        match self {
            HashScheme::Argon2id => "argon2id",
            HashScheme::Argon2Other => "argon2",
            HashScheme::Bcrypt => "bcrypt",
            HashScheme::DjangoPbkdf2Sha256 => "pbkdf2_sha256",
            HashScheme::Phpass => "phpass",
            HashScheme::Md5Salted => "md5_salted",
            HashScheme::Sha1 => "sha1",
            HashScheme::Sha256Salted => "sha256_salted",
            HashScheme::Sha256SaltFirst => "sha256_salt_first",
        }
    }

    /// Whether a hash in this scheme is replaced with argon2id at the next successful log-in
    /// (every scheme but argon2id).
    pub fn is_legacy(self) -> bool {
        self != HashScheme::Argon2id
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    // The hex formats: (stored-form prefix, digest length in bytes, whether salted).
    fn hex_layout(self) -> Option<(&'static str, usize, bool)> {
        match self {
            HashScheme::Md5Salted => Some(("$md5-salted$", 16, true)),
            HashScheme::Sha1 => Some(("$sha1$", 20, false)),
            HashScheme::Sha256Salted => Some(("$sha256-salted$", 32, true)),
            HashScheme::Sha256SaltFirst => Some(("$sha256-salt-first$", 32, true)),
            _ => None,
        }
    }
}

/// Most memory an imported argon2 hash may ask for, in KiB (1 GiB).
pub const ARGON2_MAX_MEMORY_KIB: u32 = 1_048_576;
/// Most passes an imported argon2 hash may ask for.
pub const ARGON2_MAX_ITERATIONS: u32 = 64;
/// Most lanes an imported argon2 hash may ask for.
pub const ARGON2_MAX_PARALLELISM: u32 = 16;
/// Highest bcrypt cost accepted (2^16 rounds, a few seconds; the format allows 31).
pub const BCRYPT_MAX_COST: u32 = 16;
/// Most PBKDF2 iterations accepted (Django's default is below one million).
pub const PBKDF2_MAX_ITERATIONS: u32 = 10_000_000;
/// Highest phpass log2 iteration count accepted (phpass itself allows 30; WordPress uses 13).
pub const PHPASS_MAX_COUNT_LOG2: u32 = 24;
/// Longest salt accepted, in bytes.
pub const SALT_MAX_BYTES: usize = 256;

const BCRYPT_MIN_COST: u32 = 4;
const PHPASS_MIN_COUNT_LOG2: u32 = 7;
const PHPASS_ITOA64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BCRYPT_B64: GeneralPurpose = GeneralPurpose::new(&alphabet::BCRYPT, NO_PAD);

const UNKNOWN_FORMAT: &str = "unknown password format; expected one of argon2id, argon2, bcrypt, pbkdf2_sha256, \
                              phpass, md5_salted, sha1, sha256_salted, sha256_salt_first";
const UNRECOGNISED: &str =
    "the hash is in no recognised format (hex digests need an explicit format, such as md5_salted or sha1)";

/// A stored hash taken apart: what verification needs.
enum Parsed<'a> {
    Argon2 { id: bool },
    Bcrypt,
    DjangoPbkdf2 { iterations: u32, salt: &'a str, digest: Vec<u8> },
    Phpass { count_log2: u32, salt: &'a [u8], digest: &'a [u8] },
    Hex { scheme: HashScheme, salt: Option<String>, digest: Vec<u8> },
}

impl Parsed<'_> {
    fn scheme(&self) -> HashScheme {
        match self {
            Parsed::Argon2 { id: true } => HashScheme::Argon2id,
            Parsed::Argon2 { id: false } => HashScheme::Argon2Other,
            Parsed::Bcrypt => HashScheme::Bcrypt,
            Parsed::DjangoPbkdf2 { .. } => HashScheme::DjangoPbkdf2Sha256,
            Parsed::Phpass { .. } => HashScheme::Phpass,
            Parsed::Hex { scheme, .. } => *scheme,
        }
    }
}

/// The scheme of a stored hash, or `None` when unrecognised. A hash counts as recognised only
/// when it is well-formed and within the cost bounds that import applies.
pub fn scheme_of(stored: &str) -> Option<HashScheme> {
    parse(stored).ok().map(|p| p.scheme())
}

/// Turns an imported hash (optional format name, the hash text, optional salt) into the stored
/// form, refusing malformed hashes and absurd cost parameters with a short human-readable
/// reason (never echoing the hash or the salt).
///
/// When `format` is `None` the scheme is detected from the syntax (argon2 PHC, bcrypt,
/// `pbkdf2_sha256$`, `$P$`/`$H$`); the salted and unsalted hex formats need an explicit format.
/// A salt given for a format that has none (or missing for one that needs it) is an error; an
/// empty salt counts as given. Hex digests are accepted in either case and stored lower-case.
/// The format `argon2` accepts any argon2 variant, `argon2id` only argon2id.
pub fn import_hash(format: Option<&str>, hash: &str, salt: Option<&str>) -> Result<String, String> {
    // Self-describing hashes are stored as given: nothing that a database column cannot hold.
    if hash.chars().any(char::is_control) {
        return Err("the hash contains control characters".into());
    }
    let named = match format {
        Some(name) => Some(HashScheme::from_name(name).ok_or(UNKNOWN_FORMAT)?),
        None => None,
    };
    if let Some((prefix, len, salted)) = named.and_then(HashScheme::hex_layout) {
        let digest = hex_digest(hash, len, true)?;
        return match (salted, salt) {
            (true, Some(salt)) => {
                if salt.len() > SALT_MAX_BYTES {
                    return Err(format!("the salt is longer than {SALT_MAX_BYTES} bytes"));
                }
                Ok(format!("{prefix}{}${}", STANDARD_NO_PAD.encode(salt), hex::encode(digest)))
            }
            (true, None) => Err("this format needs a salt".into()),
            (false, Some(_)) => Err("this format takes no salt".into()),
            (false, None) => Ok(format!("{prefix}{}", hex::encode(digest))),
        };
    }
    if salt.is_some() {
        return Err("this format takes no separate salt (it is part of the hash)".into());
    }
    let parsed = parse(hash).map_err(|reason| match named {
        Some(scheme) if reason == UNRECOGNISED => format!("the hash is not in the {} format", scheme.as_str()),
        _ => reason.to_owned(),
    })?;
    let found = parsed.scheme();
    match named {
        // Self-describing formats only: a stored hex form is not an import syntax.
        None if found.hex_layout().is_some() => Err(UNRECOGNISED.into()),
        None => Ok(hash.to_owned()),
        Some(HashScheme::Argon2Other) if matches!(parsed, Parsed::Argon2 { .. }) => Ok(hash.to_owned()),
        Some(scheme) if scheme == found => Ok(hash.to_owned()),
        Some(scheme) => Err(format!("the hash is not in the {} format", scheme.as_str())),
    }
}

/// The inverse of [`import_hash`], for export: (format name, hash text, salt) such that
/// `import_hash(Some(format), hash, salt)` gives back `stored`. `None` when `stored` is in no
/// recognised format.
pub fn export_hash(stored: &str) -> Option<(&'static str, String, Option<String>)> {
    match parse(stored).ok()? {
        Parsed::Hex { scheme, salt, digest } => Some((scheme.as_str(), hex::encode(digest), salt)),
        parsed => Some((parsed.scheme().as_str(), stored.to_owned(), None)),
    }
}

/// Checks a password against a stored legacy hash (not argon2, which
/// [`crate::password::Worker`] verifies). `None` when `stored` is not a legacy format this
/// module knows, or is out of bounds. Digests are compared in constant time.
pub fn verify_legacy(stored: &str, password: &[u8]) -> Option<bool> {
    let matched = match parse(stored).ok()? {
        Parsed::Argon2 { .. } => return None,
        // The bcrypt crate truncates at 72 bytes, as every bcrypt implementation does, and
        // verifies `$2y$` (PHP's name for `$2b$`) too.
        Parsed::Bcrypt => bcrypt::verify(password, stored).unwrap_or(false),
        Parsed::DjangoPbkdf2 { iterations, salt, digest } => {
            let mut out = [0u8; 32];
            pbkdf2::pbkdf2_hmac::<Sha256>(password, salt.as_bytes(), iterations, &mut out);
            bool::from(out.as_slice().ct_eq(&digest))
        }
        Parsed::Phpass { count_log2, salt, digest } => {
            bool::from(phpass_digest(password, salt, count_log2).as_bytes().ct_eq(digest))
        }
        Parsed::Hex { scheme, salt, digest } => {
            let salt = salt.as_deref().unwrap_or_default().as_bytes();
            let computed: Vec<u8> = match scheme {
                HashScheme::Md5Salted => Md5::new().chain_update(password).chain_update(salt).finalize().to_vec(),
                HashScheme::Sha1 => Sha1::digest(password).to_vec(),
                HashScheme::Sha256Salted => Sha256::new().chain_update(password).chain_update(salt).finalize().to_vec(),
                HashScheme::Sha256SaltFirst => {
                    Sha256::new().chain_update(salt).chain_update(password).finalize().to_vec()
                }
                _ => return None,
            };
            bool::from(computed.as_slice().ct_eq(&digest))
        }
    };
    Some(matched)
}

fn parse(stored: &str) -> Result<Parsed<'_>, &'static str> {
    for scheme in [HashScheme::Md5Salted, HashScheme::Sha1, HashScheme::Sha256Salted, HashScheme::Sha256SaltFirst] {
        if let Some((prefix, len, salted)) = scheme.hex_layout()
            && let Some(rest) = stored.strip_prefix(prefix)
        {
            return parse_hex(scheme, rest, len, salted);
        }
    }
    if let Some(rest) = stored.strip_prefix("pbkdf2_sha256$") {
        return parse_django(rest);
    }
    if let Some(rest) = stored.strip_prefix("$P$").or_else(|| stored.strip_prefix("$H$")) {
        return parse_phpass(rest);
    }
    if stored.starts_with("$2") {
        return parse_bcrypt(stored);
    }
    if stored.starts_with("$argon2") {
        return parse_argon2(stored);
    }
    Err(UNRECOGNISED)
}

fn parse_hex(scheme: HashScheme, rest: &str, len: usize, salted: bool) -> Result<Parsed<'_>, &'static str> {
    const MALFORMED: &str = "the stored hex hash is malformed";
    let (salt, hex) = if salted {
        let (salt, hex) = rest.split_once('$').ok_or(MALFORMED)?;
        let salt = STANDARD_NO_PAD.decode(salt).map_err(|_| MALFORMED)?;
        if salt.len() > SALT_MAX_BYTES {
            return Err(MALFORMED);
        }
        (Some(String::from_utf8(salt).map_err(|_| MALFORMED)?), hex)
    } else {
        (None, rest)
    };
    let digest = hex_digest(hex, len, false).map_err(|_| MALFORMED)?;
    Ok(Parsed::Hex { scheme, salt, digest })
}

// `len` bytes as hex; upper-case digits only where `any_case` (import), since the stored form
// is canonical.
fn hex_digest(hex: &str, len: usize, any_case: bool) -> Result<Vec<u8>, String> {
    let digits = 2 * len;
    let ok = hex.len() == digits
        && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f') || (any_case && matches!(b, b'A'..=b'F')));
    if !ok {
        return Err(format!("the hash is not {digits} hexadecimal digits"));
    }
    hex::decode(hex).map_err(|_| format!("the hash is not {digits} hexadecimal digits"))
}

// Django: `pbkdf2_sha256$<iterations>$<salt>$<base64 of the 32-byte digest>`.
fn parse_django(rest: &str) -> Result<Parsed<'_>, &'static str> {
    const MALFORMED: &str = "not a well-formed pbkdf2_sha256 hash";
    let mut parts = rest.split('$');
    let (Some(iterations), Some(salt), Some(digest), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(MALFORMED);
    };
    if iterations.is_empty() || !iterations.bytes().all(|b| b.is_ascii_digit()) {
        return Err(MALFORMED);
    }
    let iterations = iterations
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=PBKDF2_MAX_ITERATIONS).contains(n))
        .ok_or("pbkdf2_sha256 iterations must be between 1 and 10000000")?;
    // Django refuses to make a hash with an empty salt; the bound keeps the input small.
    if salt.is_empty() || salt.len() > SALT_MAX_BYTES {
        return Err(MALFORMED);
    }
    let digest = STANDARD.decode(digest).map_err(|_| MALFORMED)?;
    if digest.len() != 32 {
        return Err(MALFORMED);
    }
    Ok(Parsed::DjangoPbkdf2 { iterations, salt, digest })
}

// phpass portable hash, after `$P$` or `$H$`: one itoa64 character giving log2 of the
// iteration count, 8 salt characters, 22 characters of the MD5 digest in phpass's encoding.
fn parse_phpass(rest: &str) -> Result<Parsed<'_>, &'static str> {
    const MALFORMED: &str = "not a well-formed phpass hash";
    let bytes = rest.as_bytes();
    if bytes.len() != 31 || !bytes.iter().all(|b| PHPASS_ITOA64.contains(b)) {
        return Err(MALFORMED);
    }
    let (count, salt, digest) = (&bytes[..1], &bytes[1..9], &bytes[9..]);
    let count_log2 = PHPASS_ITOA64
        .iter()
        .position(|c| count.first() == Some(c))
        .and_then(|p| u32::try_from(p).ok())
        .filter(|n| (PHPASS_MIN_COUNT_LOG2..=PHPASS_MAX_COUNT_LOG2).contains(n))
        .ok_or("phpass iteration count must be between 2^7 and 2^24")?;
    Ok(Parsed::Phpass { count_log2, salt, digest })
}

// Modular crypt bcrypt: `$2b$12$` then 22 characters of salt and 31 of digest, in bcrypt's
// base64 alphabet.
fn parse_bcrypt(stored: &str) -> Result<Parsed<'_>, &'static str> {
    const MALFORMED: &str = "not a well-formed bcrypt hash";
    if stored.starts_with("$2x$") {
        // crypt_blowfish before 1.1 mishandled 8-bit characters; `$2x$` marks its hashes,
        // which no maintained implementation reproduces faithfully.
        return Err("bcrypt $2x$ hashes (from the buggy crypt_blowfish) are not supported");
    }
    let rest = ["$2a$", "$2b$", "$2y$"].into_iter().find_map(|p| stored.strip_prefix(p)).ok_or(MALFORMED)?;
    let bytes = rest.as_bytes();
    if bytes.len() != 56 || bytes.get(2) != Some(&b'$') {
        return Err(MALFORMED);
    }
    let (cost, salt, digest) = (&bytes[..2], &bytes[3..25], &bytes[25..]);
    if !cost.iter().all(u8::is_ascii_digit) {
        return Err(MALFORMED);
    }
    let cost = cost.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0'));
    if !(BCRYPT_MIN_COST..=BCRYPT_MAX_COST).contains(&cost) {
        return Err("bcrypt cost must be between 4 and 16");
    }
    // Decoding also refuses stray bits in the last character, which the bcrypt crate refuses.
    match (BCRYPT_B64.decode(salt), BCRYPT_B64.decode(digest)) {
        (Ok(s), Ok(d)) if s.len() == 16 && d.len() == 23 => Ok(Parsed::Bcrypt),
        _ => Err(MALFORMED),
    }
}

fn parse_argon2(stored: &str) -> Result<Parsed<'_>, &'static str> {
    const MALFORMED: &str = "not a well-formed argon2 PHC string";
    let phc = Phc::new(stored).map_err(|_| MALFORMED)?;
    let id = match phc.algorithm.as_str() {
        "argon2id" => true,
        "argon2i" | "argon2d" => false,
        _ => return Err(MALFORMED),
    };
    if !matches!(phc.version, None | Some(0x10) | Some(0x13)) {
        return Err("unknown argon2 version");
    }
    if phc.salt.is_none() || phc.hash.is_none() {
        return Err("the argon2 hash lacks its salt or digest");
    }
    let params = Params::try_from(&phc).map_err(|_| "the argon2 parameters are invalid")?;
    if params.m_cost() > ARGON2_MAX_MEMORY_KIB {
        return Err("argon2 memory cost must be at most 1048576 KiB (1 GiB)");
    }
    if params.t_cost() > ARGON2_MAX_ITERATIONS {
        return Err("argon2 time cost must be at most 64");
    }
    if params.p_cost() > ARGON2_MAX_PARALLELISM {
        return Err("argon2 parallelism must be at most 16");
    }
    if !params.keyid().is_empty() {
        // A key id means the hash was made with a secret key (a pepper) we do not have.
        return Err("argon2 hashes made with a secret key cannot be verified");
    }
    Ok(Parsed::Argon2 { id })
}

// phpass `crypt_private`: md5(salt ‖ password), then 2^count_log2 times md5(hash ‖ password),
// written with phpass's own little-endian base64 (`encode64`).
fn phpass_digest(password: &[u8], salt: &[u8], count_log2: u32) -> String {
    let mut hash: [u8; 16] = Md5::new().chain_update(salt).chain_update(password).finalize().into();
    for _ in 0..(1u32 << count_log2) {
        hash = Md5::new().chain_update(hash).chain_update(password).finalize().into();
    }
    let mut out = String::with_capacity(22);
    for chunk in hash.chunks(3) {
        let value = chunk.iter().rev().fold(0u32, |v, &b| (v << 8) | u32::from(b));
        // n input bytes give n + 1 characters, least significant six bits first.
        for k in 0..=chunk.len() {
            out.push(char::from(PHPASS_ITOA64[((value >> (6 * k)) & 0x3f) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    //! Vectors made outside this code: Python's `bcrypt` 5.0 (the `$2y$` one is its `$2b$`
    //! hash renamed, which Python's `checkpw` accepts), passlib 1.7.4 (`django_pbkdf2_sha256`,
    //! `phpass`), argon2-cffi, and `hashlib` for the hex digests.

    use super::*;

    const PW: &str = "correct horse";
    const PW2: &str = "pässwörd €";

    const BCRYPT_2A: &str = "$2a$04$oe4jAVKlLPPJ95027bkxCeanwBNl.UJUNIE2.ZlJ7RYDM9L.HudR2"; // PW
    const BCRYPT_2B: &str = "$2b$05$0hoVOC3Y6fPB890vmPF8PutNESZhJHY1ocf717LvJ91HDREFVoFx6"; // PW2
    const BCRYPT_2Y: &str = "$2y$04$jV2Tl50BH6S4Mc5Se3Rn8eF2AMiVTai8ai0vNww1ovptqlrfuHham"; // PW
    const DJANGO: &str = "pbkdf2_sha256$10000$7qPsv5JFz67m$SSfXUm3gsnHtFA5TkjZRYJimrVBVU1WHRL3DecgWhmA="; // PW
    const DJANGO_1: &str = "pbkdf2_sha256$1$GCxSEQOFek1a$bi2Qx9h23GA/C21462aoa4fyps6OpA4STvmUK3FXJ2s="; // PW2
    const PHPASS_P: &str = "$P$BYbY5qz8LD.tg/67q5YzI5XWSnUA8B1"; // PW, 2^13 (WordPress)
    const PHPASS_H: &str = "$H$9gRQSgVPF3UBzFlAz8LC1YQnEYIhHi."; // PW2, 2^11 (phpBB)
    const PHPASS_P7: &str = "$P$5IWIKU3sLG3l4vXfrY7vzzcF25UT9m/"; // PW, 2^7
    const ARGON2ID: &str =
        "$argon2id$v=19$m=1024,t=1,p=1$wLLrrcxpRcxxjE29TsLmQA$8nF/XtwbMCHk/VpaUhOIoLoOywkdv7/h4s7846/rqfc";
    const ARGON2I: &str =
        "$argon2i$v=19$m=1024,t=2,p=1$9S4RCBRuMVBcCWIe8qkVYw$jFMgkD54rxV9BjGBV+UvBPdMxMqZeHhlBZgRhkZoVWE";
    const ARGON2D: &str =
        "$argon2d$v=19$m=1024,t=1,p=1$er0nb+YAI4Xu8Ic+o4JNQA$SwoH3wfWUpF3amJal74M6cJKAD84sb0CHDuvEum7CBI";
    // md5(PW ‖ "aB3$x9!z") and md5(PW2 ‖ "ossnsalt").
    const MD5_SALT: &str = "aB3$x9!z";
    const MD5: &str = "110585a466427ac72821adbf7c084257";
    const MD5_2: &str = "fa7d30545f722bcb1fe0e510ff95931c";
    // sha1(PW), sha1(PW2).
    const SHA1: &str = "2f9e53523b62abc141a2b4d6019d23cba835dbd0";
    const SHA1_2: &str = "58baec5f058a0ffe07b5a21d23918d828f645749";
    // sha256(PW ‖ salt) and sha256(salt ‖ PW).
    const SHA256_SALT: &str = "s@lt$€";
    const SHA256_SALTED: &str = "9eea0d746f82073325f3af556026ac833c0c86dffe21960224f6402caff1e905";
    const SHA256_SALT_FIRST: &str = "cd955b69bf8fdb5e80738b2418fdf232eca572e69147b5e9b89de0dd8e02f307";

    fn import(format: Option<&str>, hash: &str, salt: Option<&str>) -> String {
        import_hash(format, hash, salt).unwrap_or_else(|e| panic!("{format:?} refused: {e}"))
    }

    fn refuse(format: Option<&str>, hash: &str, salt: Option<&str>) -> String {
        let reason = import_hash(format, hash, salt).expect_err("should be refused");
        // (Short strings could occur in a reason by chance.)
        if hash.len() >= 8 {
            assert!(!reason.contains(hash), "the reason echoes the hash: {reason}");
        }
        if let Some(salt) = salt.filter(|s| s.len() >= 6) {
            assert!(!reason.contains(salt), "the reason echoes the salt: {reason}");
        }
        reason
    }

    fn checks(stored: &str, right: &str, wrong: &str) {
        assert_eq!(verify_legacy(stored, right.as_bytes()), Some(true), "{stored} with the right password");
        assert_eq!(verify_legacy(stored, wrong.as_bytes()), Some(false), "{stored} with a wrong password");
    }

    #[test]
    fn bcrypt_verifies_every_accepted_prefix() {
        for (hash, pw) in [(BCRYPT_2A, PW), (BCRYPT_2B, PW2), (BCRYPT_2Y, PW)] {
            let stored = import(None, hash, None);
            assert_eq!(stored, hash, "stored as given");
            assert_eq!(import(Some("bcrypt"), hash, None), hash);
            checks(&stored, pw, "correct horse ");
        }
    }

    #[test]
    fn django_pbkdf2_sha256_verifies() {
        checks(&import(None, DJANGO, None), PW, "Correct horse");
        checks(&import(Some("pbkdf2_sha256"), DJANGO_1, None), PW2, PW);
    }

    #[test]
    fn phpass_verifies() {
        checks(&import(None, PHPASS_P, None), PW, "correct hors");
        checks(&import(Some("phpass"), PHPASS_H, None), PW2, PW);
        checks(&import(None, PHPASS_P7, None), PW, PW2);
    }

    #[test]
    fn salted_md5_verifies() {
        let stored = import(Some("md5_salted"), MD5, Some(MD5_SALT));
        assert_eq!(stored, "$md5-salted$YUIzJHg5IXo$110585a466427ac72821adbf7c084257");
        checks(&stored, PW, PW2);
        checks(&import(Some("md5_salted"), &MD5_2.to_uppercase(), Some("ossnsalt")), PW2, PW);
        // The salt is part of the input: the same digest under another salt does not match.
        assert_eq!(verify_legacy(&import(Some("md5_salted"), MD5, Some("aB3$x9!Z")), PW.as_bytes()), Some(false));
    }

    #[test]
    fn sha1_verifies() {
        let stored = import(Some("sha1"), SHA1, None);
        assert_eq!(stored, format!("$sha1${SHA1}"));
        checks(&stored, PW, PW2);
        let upper = import(Some("sha1"), &SHA1_2.to_uppercase(), None);
        assert_eq!(upper, format!("$sha1${SHA1_2}"), "stored lower-case");
        checks(&upper, PW2, PW);
    }

    #[test]
    fn salted_sha256_verifies_in_both_orders() {
        let salted = import(Some("sha256_salted"), SHA256_SALTED, Some(SHA256_SALT));
        let first = import(Some("sha256_salt_first"), SHA256_SALT_FIRST, Some(SHA256_SALT));
        assert!(salted.starts_with("$sha256-salted$") && first.starts_with("$sha256-salt-first$"));
        checks(&salted, PW, PW2);
        checks(&first, PW, PW2);
        // The order matters.
        let swapped = import(Some("sha256_salt_first"), SHA256_SALTED, Some(SHA256_SALT));
        assert_eq!(verify_legacy(&swapped, PW.as_bytes()), Some(false));
    }

    #[test]
    fn argon2_is_validated_but_not_verified_here() {
        assert_eq!(import(None, ARGON2ID, None), ARGON2ID);
        assert_eq!(import(Some("argon2id"), ARGON2ID, None), ARGON2ID);
        assert_eq!(import(Some("argon2"), ARGON2ID, None), ARGON2ID);
        assert_eq!(import(Some("argon2"), ARGON2I, None), ARGON2I);
        assert_eq!(import(None, ARGON2D, None), ARGON2D);
        refuse(Some("argon2id"), ARGON2I, None);
        assert_eq!(verify_legacy(ARGON2ID, PW.as_bytes()), None, "password.rs verifies argon2");
        assert_eq!(verify_legacy(ARGON2I, PW.as_bytes()), None);
    }

    #[test]
    fn import_refuses_malformed_hashes() {
        let cases: &[(Option<&str>, &str, Option<&str>)] = &[
            (None, "not a hash at all", None),
            (None, "", None),
            (None, SHA1, None), // hex needs a named format
            (None, &BCRYPT_2B[..59], None),
            (Some("bcrypt"), &format!("{BCRYPT_2B}x"), None),
            (Some("bcrypt"), &BCRYPT_2B.replace("$05$", "$5$$"), None),
            (Some("bcrypt"), &BCRYPT_2B.replace('0', "!"), None),
            (Some("bcrypt"), PHPASS_P, None), // a valid hash, of another format
            (Some("pbkdf2_sha256"), &DJANGO.replace('=', ""), None),
            (Some("pbkdf2_sha256"), &DJANGO.replace("$10000$", "$1e4$"), None),
            (Some("pbkdf2_sha256"), &DJANGO.replace("7qPsv5JFz67m", ""), None),
            (Some("pbkdf2_sha256"), &format!("{DJANGO}$"), None),
            (Some("phpass"), &PHPASS_P[..33], None),
            (Some("phpass"), &PHPASS_P.replace('Y', "#"), None),
            (Some("argon2"), "$argon2id$v=19$m=1024,t=1,p=1", None),
            (
                Some("argon2"),
                "$argon2id$v=19$m=1024,t=1,p=1,keyid=AAAA$wLLrrcxpRcxxjE29TsLmQA$8nF/XtwbMCHk/VpaUhOIoLoOywkdv7/h4s7846/rqfc",
                None,
            ),
            (
                Some("argon2"),
                "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E",
                None,
            ),
            (Some("sha1"), &SHA1[..39], None),
            (Some("sha1"), &format!("{SHA1}0"), None),
            (Some("sha1"), &SHA1.replace('f', "g"), None),
            (Some("sha1"), &format!("$sha1${SHA1}"), None),
            (Some("md5_salted"), SHA1, Some("NaCl-42")),
            (Some("sha256_salted"), MD5, Some("NaCl-42")),
            (Some("sha256_salt_first"), &format!("{SHA256_SALTED} "), Some("NaCl-42")),
        ];
        for (format, hash, salt) in cases {
            refuse(*format, hash, *salt);
        }
    }

    #[test]
    fn import_refuses_absurd_costs() {
        assert!(refuse(Some("bcrypt"), &BCRYPT_2A.replace("$04$", "$31$"), None).contains("cost"));
        assert!(refuse(None, &BCRYPT_2A.replace("$04$", "$17$"), None).contains("cost"));
        assert!(refuse(None, &BCRYPT_2A.replace("$04$", "$03$"), None).contains("cost"));
        assert_eq!(import(None, &BCRYPT_2A.replace("$04$", "$16$"), None).len(), 60);
        assert!(refuse(None, &DJANGO.replace("$10000$", "$0$"), None).contains("iterations"));
        assert!(refuse(None, &DJANGO.replace("$10000$", "$100000000$"), None).contains("iterations"));
        assert!(refuse(None, &DJANGO.replace("$10000$", "$99999999999999999999$"), None).contains("iterations"));
        import(None, &DJANGO.replace("$10000$", "$10000000$"), None);
        // itoa64 index 25 ('N') is within phpass's 30 but absurd; 'Z' is past 30; '4' is 6.
        for count in ['N', 'Z', 'z', '4'] {
            let hash = format!("$P${count}{}", &PHPASS_P[4..]);
            assert!(refuse(None, &hash, None).contains("iteration count"), "{count}");
        }
        import(None, &format!("$P$M{}", &PHPASS_P[4..]), None); // 2^24
        let argon = |params: &str| ARGON2ID.replace("m=1024,t=1,p=1", params);
        assert!(refuse(None, &argon("m=1048577,t=1,p=1"), None).contains("memory"));
        assert!(refuse(None, &argon("m=1024,t=65,p=1"), None).contains("time"));
        assert!(refuse(None, &argon("m=1024,t=1,p=17"), None).contains("parallelism"));
        import(None, &argon("m=1048576,t=64,p=16"), None);
    }

    #[test]
    fn import_refuses_2x_bcrypt() {
        let reason = refuse(None, &BCRYPT_2A.replace("$2a$", "$2x$"), None);
        assert!(reason.contains("$2x$"), "{reason}");
        refuse(Some("bcrypt"), &BCRYPT_2A.replace("$2a$", "$2x$"), None);
        assert_eq!(scheme_of(&BCRYPT_2A.replace("$2a$", "$2x$")), None);
        assert_eq!(verify_legacy(&BCRYPT_2A.replace("$2a$", "$2x$"), PW.as_bytes()), None);
    }

    #[test]
    fn import_checks_salts_and_format_names() {
        assert_eq!(refuse(Some("md5_salted"), MD5, None), "this format needs a salt");
        assert_eq!(refuse(Some("sha256_salt_first"), SHA256_SALT_FIRST, None), "this format needs a salt");
        assert_eq!(refuse(Some("sha1"), SHA1, Some("NaCl-42")), "this format takes no salt");
        assert!(refuse(Some("bcrypt"), BCRYPT_2A, Some("NaCl-42")).contains("no separate salt"));
        assert!(refuse(None, PHPASS_P, Some("")).contains("no separate salt"));
        assert!(refuse(Some("md5"), MD5, Some("NaCl-42")).starts_with("unknown password format"));
        assert!(refuse(Some("SHA1"), SHA1, None).starts_with("unknown password format"));
        assert!(refuse(Some("md5_salted"), MD5, Some(&"s".repeat(257))).contains("256 bytes"));
        let long = "s".repeat(256);
        assert_eq!(export_hash(&import(Some("md5_salted"), MD5, Some(&long))).unwrap().2.as_deref(), Some(&*long));
        // An empty salt is a salt (md5(password) under this format).
        import(Some("md5_salted"), MD5, Some(""));
    }

    #[test]
    fn export_gives_back_what_import_takes() {
        let cases: &[(Option<&str>, &str, Option<&str>)] = &[
            (None, ARGON2ID, None),
            (None, ARGON2I, None),
            (None, BCRYPT_2A, None),
            (None, BCRYPT_2B, None),
            (None, BCRYPT_2Y, None),
            (None, DJANGO, None),
            (None, PHPASS_P, None),
            (None, PHPASS_H, None),
            (Some("md5_salted"), MD5, Some(MD5_SALT)),
            (Some("md5_salted"), MD5, Some("")),
            (Some("sha1"), &SHA1.to_uppercase(), None),
            (Some("sha256_salted"), SHA256_SALTED, Some(SHA256_SALT)),
            (Some("sha256_salt_first"), SHA256_SALT_FIRST, Some(SHA256_SALT)),
        ];
        for (format, hash, salt) in cases {
            let stored = import(*format, hash, *salt);
            let (format, hash, salt) = export_hash(&stored).unwrap_or_else(|| panic!("{stored} does not export"));
            assert_eq!(import(Some(format), &hash, salt.as_deref()), stored, "{format}");
            assert_eq!(scheme_of(&stored).map(HashScheme::as_str), Some(format));
        }
        assert_eq!(export_hash(ARGON2ID).unwrap(), ("argon2id", ARGON2ID.to_owned(), None));
        assert_eq!(export_hash(ARGON2I).unwrap().0, "argon2");
        let md5 = export_hash(&import(Some("md5_salted"), &MD5.to_uppercase(), Some(MD5_SALT))).unwrap();
        assert_eq!(md5, ("md5_salted", MD5.to_owned(), Some(MD5_SALT.to_owned())));
        assert_eq!(export_hash("not a hash"), None);
    }

    #[test]
    fn scheme_of_classifies_stored_hashes() {
        let md5 = import(Some("md5_salted"), MD5, Some(MD5_SALT));
        let sha1 = import(Some("sha1"), SHA1, None);
        let salted = import(Some("sha256_salted"), SHA256_SALTED, Some(SHA256_SALT));
        let first = import(Some("sha256_salt_first"), SHA256_SALT_FIRST, Some(SHA256_SALT));
        let cases = [
            (ARGON2ID, Some(HashScheme::Argon2id)),
            (ARGON2I, Some(HashScheme::Argon2Other)),
            (ARGON2D, Some(HashScheme::Argon2Other)),
            (BCRYPT_2A, Some(HashScheme::Bcrypt)),
            (BCRYPT_2Y, Some(HashScheme::Bcrypt)),
            (DJANGO, Some(HashScheme::DjangoPbkdf2Sha256)),
            (PHPASS_P, Some(HashScheme::Phpass)),
            (PHPASS_H, Some(HashScheme::Phpass)),
            (&md5, Some(HashScheme::Md5Salted)),
            (&sha1, Some(HashScheme::Sha1)),
            (&salted, Some(HashScheme::Sha256Salted)),
            (&first, Some(HashScheme::Sha256SaltFirst)),
            (SHA1, None),
            ("", None),
            ("$sha1$ABCDEF", None),
        ];
        for (stored, scheme) in cases {
            assert_eq!(scheme_of(stored), scheme, "{stored}");
        }
        // Stored forms are canonical: upper-case hex is not one.
        assert_eq!(scheme_of(&sha1.to_uppercase().replace("$SHA1$", "$sha1$")), None);
        assert!(HashScheme::ALL.iter().all(|s| s.is_legacy() == (*s != HashScheme::Argon2id)));
        assert!(HashScheme::ALL.iter().all(|s| HashScheme::from_name(s.as_str()) == Some(*s)));
    }

    #[test]
    fn verification_refuses_what_it_cannot_read() {
        assert_eq!(verify_legacy("", PW.as_bytes()), None);
        assert_eq!(verify_legacy(SHA1, PW.as_bytes()), None);
        assert_eq!(verify_legacy(&BCRYPT_2A.replace("$04$", "$31$"), PW.as_bytes()), None, "too costly to try");
        assert_eq!(verify_legacy(&format!("$P$Z{}", &PHPASS_P[4..]), PW.as_bytes()), None);
        assert_eq!(verify_legacy("$md5-salted$!!!$110585a466427ac72821adbf7c084257", PW.as_bytes()), None);
        // Empty and over-long (bcrypt truncates at 72 bytes) passwords are simply wrong.
        assert_eq!(verify_legacy(&format!("$sha1${SHA1}"), b""), Some(false));
        assert_eq!(verify_legacy(BCRYPT_2A, &[b'x'; 1023]), Some(false));
    }
}
