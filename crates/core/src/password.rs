//! Passwords: argon2id hashing on a bounded pool, and the strength policy.
//!
//! Hashing is the costly step of every log-in, so it runs off the async runtime, on at most
//! `workers` threads at once, behind a queue of at most `queue` waiting jobs. When the queue is
//! full a job is refused at once with [`CoreError::Overloaded`] (503 with `Retry-After` on
//! the wire) instead of waiting without bound: under overload, memory and latency stay flat
//! and clients are told to come back. A log-in for an unknown account verifies against a
//! dummy hash with the same parameters, so it costs the same as a wrong password.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::error::{CoreError, CoreResult};
use crate::model::Policy;
use crate::secret::{Password, random_bytes};

/// Longest password accepted, in bytes (as buddycloud documents; generous for passphrases,
/// small enough that hashing cost cannot be inflated by the input).
pub const PASSWORD_MAX_BYTES: usize = 1023;

/// Hashing parameters and pool size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HashingConfig {
    /// argon2id memory cost in KiB (OWASP: 19456).
    pub memory_kib: u32,
    /// argon2id passes (OWASP: 2).
    pub iterations: u32,
    /// argon2id lanes (OWASP: 1).
    pub parallelism: u32,
    /// Hashes computed at once; 0 means one per CPU core.
    pub workers: usize,
    /// Jobs allowed to wait for a worker; beyond that, requests are shed with 503.
    /// 0 means 32 per worker.
    pub queue: usize,
}

impl Default for HashingConfig {
    fn default() -> Self {
        Self { memory_kib: 19_456, iterations: 2, parallelism: 1, workers: 0, queue: 0 }
    }
}

impl HashingConfig {
    /// Workers after resolving 0 to the number of cores.
    pub fn effective_workers(&self) -> usize {
        if self.workers == 0 {
            std::thread::available_parallelism().map(usize::from).unwrap_or(1)
        } else {
            self.workers
        }
    }

    /// Queue length after resolving 0 to the default.
    pub fn effective_queue(&self) -> usize {
        if self.queue == 0 { 32 * self.effective_workers() } else { self.queue }
    }

    /// The argon2 parameters, checked.
    pub fn params(&self) -> Result<Params, String> {
        Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| format!("invalid argon2 parameters: {e}"))
    }
}

/// Outcome of checking a password against a stored hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verification {
    /// Whether the password matched.
    pub matched: bool,
    /// Whether the stored hash should be replaced with one made with the current parameters.
    pub needs_rehash: bool,
}

/// The bounded hashing pool.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    params: Params,
    workers: Arc<Semaphore>,
    admission: Arc<Semaphore>,
    dummy_hash: String,
    verifications: AtomicU64,
    hashes: AtomicU64,
    shed: AtomicU64,
    retry_after: Duration,
}

impl PasswordHasher {
    /// Builds the pool. Computes one hash (the dummy) to check the parameters work.
    pub fn new(cfg: &HashingConfig) -> Result<Self, String> {
        let params = cfg.params()?;
        let workers = cfg.effective_workers();
        let queue = cfg.effective_queue();
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let filler = random_bytes::<16>().map_err(|e| format!("no randomness: {e}"))?;
        let salt = random_bytes::<16>().map_err(|e| format!("no randomness: {e}"))?;
        let dummy_hash =
            argon.hash_password_with_salt(&filler, &salt).map_err(|e| format!("argon2 failed: {e}"))?.to_string();
        Ok(Self {
            inner: Arc::new(Inner {
                params,
                workers: Arc::new(Semaphore::new(workers)),
                admission: Arc::new(Semaphore::new(workers + queue)),
                dummy_hash,
                verifications: AtomicU64::new(0),
                hashes: AtomicU64::new(0),
                shed: AtomicU64::new(0),
                retry_after: Duration::from_secs(1),
            }),
        })
    }

    /// Runs CPU-heavy password work on the pool: admitted at once or refused with
    /// [`CoreError::Overloaded`], then run on a blocking thread once a worker is free.
    pub async fn run<T, F>(&self, job: F) -> CoreResult<T>
    where
        F: FnOnce(&Argon2<'static>) -> T + Send + 'static,
        T: Send + 'static,
    {
        let Ok(admitted) = self.inner.admission.clone().try_acquire_owned() else {
            self.inner.shed.fetch_add(1, Ordering::Relaxed);
            return Err(CoreError::Overloaded { retry_after: self.inner.retry_after });
        };
        let worker = self.inner.workers.clone().acquire_owned().await.map_err(CoreError::internal)?;
        let params = self.inner.params.clone();
        tokio::task::spawn_blocking(move || {
            let _permits = (admitted, worker);
            let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
            job(&argon)
        })
        .await
        .map_err(CoreError::internal)
    }

    /// Hashes a new password into a PHC string.
    pub async fn hash(&self, password: Password) -> CoreResult<String> {
        let inner = self.inner.clone();
        self.run(move |argon| hash_with(argon, &password, &inner.hashes)).await?
    }

    /// Checks a password against a stored hash. With no stored hash (unknown account, or an
    /// account without a password) the dummy hash is checked instead and the answer is "no",
    /// so both paths cost the same.
    pub async fn verify(&self, password: Password, stored: Option<String>) -> CoreResult<Verification> {
        let inner = self.inner.clone();
        self.run(move |argon| inner.verify_blocking(argon, &password, stored.as_deref())).await
    }

    /// Checks a new password against the policy and hashes it, as one pool job (both steps are
    /// CPU-heavy). Returns the field message when the policy refuses the password.
    pub async fn check_and_hash(
        &self,
        password: Password,
        policy: &Policy,
        user_inputs: Vec<String>,
    ) -> CoreResult<Result<String, String>> {
        let inner = self.inner.clone();
        let (min_len, min_score) = (policy.password_min_length, policy.password_min_score);
        self.run(move |argon| {
            let inputs: Vec<&str> = user_inputs.iter().map(String::as_str).collect();
            match check_strength(&password, min_len, min_score, &inputs) {
                Ok(()) => hash_with(argon, &password, &inner.hashes).map(Ok),
                Err(m) => Ok(Err(m)),
            }
        })
        .await?
    }

    /// How many verifications have run (real or dummy); for tests and metrics.
    pub fn verifications(&self) -> u64 {
        self.inner.verifications.load(Ordering::Relaxed)
    }

    /// How many jobs were refused because the queue was full.
    pub fn shed(&self) -> u64 {
        self.inner.shed.load(Ordering::Relaxed)
    }

    /// The PHC string that unknown accounts are checked against (same parameters as real
    /// hashes); exposed so tests can prove it.
    pub fn dummy_hash(&self) -> &str {
        &self.inner.dummy_hash
    }

    /// Checks a password against a PHC hash on the calling thread, exactly as the pool does;
    /// for the benchmark's baseline.
    pub fn verify_blocking(&self, password: &Password, stored: Option<&str>) -> Verification {
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, self.inner.params.clone());
        self.inner.verify_blocking(&argon, password, stored)
    }
}

impl Inner {
    fn verify_blocking(&self, argon: &Argon2<'static>, password: &Password, stored: Option<&str>) -> Verification {
        self.verifications.fetch_add(1, Ordering::Relaxed);
        let no = Verification { matched: false, needs_rehash: false };
        let Some(stored) = stored else {
            let _ = argon.verify_password(password.expose().as_bytes(), self.dummy_hash.as_str());
            return no;
        };
        if password.expose().len() > PASSWORD_MAX_BYTES {
            let _ = argon.verify_password(b"", self.dummy_hash.as_str());
            return no;
        }
        match argon2::password_hash::phc::PasswordHash::new(stored) {
            Ok(phc) => {
                let matched = argon.verify_password(password.expose().as_bytes(), &phc).is_ok();
                let current = phc.algorithm.as_str() == "argon2id"
                    && Params::try_from(&phc).is_ok_and(|p| {
                        p.m_cost() == self.params.m_cost()
                            && p.t_cost() == self.params.t_cost()
                            && p.p_cost() == self.params.p_cost()
                    });
                Verification { matched, needs_rehash: matched && !current }
            }
            Err(_) => {
                // An unreadable stored hash matches nothing; spend the same time anyway.
                tracing::warn!("stored password hash is not a PHC string");
                let _ = argon.verify_password(password.expose().as_bytes(), self.dummy_hash.as_str());
                no
            }
        }
    }
}

fn hash_with(argon: &Argon2<'static>, password: &Password, counter: &AtomicU64) -> CoreResult<String> {
    counter.fetch_add(1, Ordering::Relaxed);
    let salt = random_bytes::<16>().map_err(CoreError::internal)?;
    argon
        .hash_password_with_salt(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(CoreError::internal)
}

/// Checks a new password against the length rules and zxcvbn. `user_inputs` (username,
/// e-mail, names) make passwords built from the user's own details score lower.
pub fn check_strength(password: &Password, min_len: u32, min_score: u8, user_inputs: &[&str]) -> Result<(), String> {
    let p = password.expose();
    if p.is_empty() {
        return Err("must not be empty".into());
    }
    if p.len() > PASSWORD_MAX_BYTES {
        return Err(format!("must be at most {PASSWORD_MAX_BYTES} bytes"));
    }
    let chars = p.chars().count();
    if chars < min_len as usize {
        return Err(format!("must be at least {min_len} characters"));
    }
    if min_score > 0 {
        let entropy = zxcvbn::zxcvbn(p, user_inputs);
        let score = u8::from(entropy.score());
        if score < min_score {
            let why = entropy.feedback().and_then(|f| f.warning()).map(|w| format!(" ({w})")).unwrap_or_default();
            return Err(format!("is too weak or too common{why}; choose a longer or less predictable password"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> HashingConfig {
        HashingConfig { memory_kib: 1024, iterations: 1, parallelism: 1, workers: 1, queue: 1 }
    }

    #[tokio::test]
    async fn hashes_are_argon2id_phc_with_configured_parameters() {
        let h = PasswordHasher::new(&cheap()).unwrap();
        let hash = h.hash(Password::new("correct horse battery staple")).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{hash}");
        let ok = h.verify(Password::new("correct horse battery staple"), Some(hash.clone())).await.unwrap();
        assert_eq!(ok, Verification { matched: true, needs_rehash: false });
        let bad = h.verify(Password::new("wrong"), Some(hash)).await.unwrap();
        assert!(!bad.matched);
    }

    #[tokio::test]
    async fn default_parameters_are_owasp() {
        let p = HashingConfig::default().params().unwrap();
        assert_eq!((p.m_cost(), p.t_cost(), p.p_cost()), (19_456, 2, 1));
    }

    #[tokio::test]
    async fn unknown_accounts_cost_one_verification_with_the_same_parameters() {
        let h = PasswordHasher::new(&cheap()).unwrap();
        assert!(h.dummy_hash().starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        let before = h.verifications();
        let v = h.verify(Password::new("whatever"), None).await.unwrap();
        assert!(!v.matched);
        assert_eq!(h.verifications(), before + 1);
    }

    #[tokio::test]
    async fn hashes_made_with_other_parameters_are_upgraded() {
        let old = PasswordHasher::new(&HashingConfig { memory_kib: 2048, ..cheap() }).unwrap();
        let hash = old.hash(Password::new("pw")).await.unwrap();
        let new = PasswordHasher::new(&cheap()).unwrap();
        let v = new.verify(Password::new("pw"), Some(hash)).await.unwrap();
        assert_eq!(v, Verification { matched: true, needs_rehash: true });
    }

    #[tokio::test]
    async fn garbage_hashes_match_nothing() {
        let h = PasswordHasher::new(&cheap()).unwrap();
        let v = h.verify(Password::new("pw"), Some("not a hash".into())).await.unwrap();
        assert!(!v.matched);
    }

    #[tokio::test]
    async fn a_full_queue_sheds_instead_of_waiting() {
        let h = PasswordHasher::new(&cheap()).unwrap(); // 1 worker + 1 queued
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let block = |rx: Arc<std::sync::Mutex<std::sync::mpsc::Receiver<()>>>| {
            let h = h.clone();
            tokio::spawn(async move { h.run(move |_| rx.lock().unwrap().recv().ok()).await })
        };
        let a = block(rx.clone());
        let b = block(rx.clone());
        // Wait until both are admitted (one running, one queued).
        for _ in 0..200 {
            if h.inner.admission.available_permits() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let third = h.run(|_| ()).await;
        assert!(matches!(third, Err(CoreError::Overloaded { .. })), "{third:?}");
        assert_eq!(h.shed(), 1);
        tx.send(()).unwrap();
        tx.send(()).unwrap();
        a.await.unwrap().unwrap();
        b.await.unwrap().unwrap();
        assert!(h.run(|_| ()).await.is_ok(), "capacity comes back");
    }

    #[test]
    fn strength_policy() {
        let p = |s: &str| Password::new(s);
        assert!(check_strength(&p(""), 8, 2, &[]).is_err());
        assert_eq!(check_strength(&p("short"), 8, 0, &[]), Err("must be at least 8 characters".into()));
        assert!(check_strength(&p(&"x".repeat(1024)), 8, 0, &[]).unwrap_err().contains("1023 bytes"));
        assert!(check_strength(&p("password"), 8, 2, &[]).unwrap_err().contains("too weak or too common"));
        assert!(check_strength(&p("alicealice1"), 8, 3, &["alice"]).is_err());
        assert!(check_strength(&p("correct horse battery staple"), 8, 3, &[]).is_ok());
        assert!(check_strength(&p("password"), 8, 0, &[]).is_ok(), "score 0 turns the check off");
    }
}
