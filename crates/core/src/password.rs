//! Passwords: argon2id hashing on a bounded pool, and the strength policy.
//!
//! Hashing is the costly step of every log-in, so it runs off the async runtime, on a fixed
//! set of `workers` threads, each reusing one preallocated argon2 memory block (no 19 MiB
//! allocation and page-faulting per hash, and memory bounded by `workers` blocks). At most
//! `queue` jobs wait for a worker; beyond that a job is refused at once with
//! [`CoreError::Overloaded`] (503 with `Retry-After` on the wire), and a job that waited longer
//! than `max_wait` (the machine is busier than the queue length assumed) is refused too,
//! instead of being computed for a client that has likely given up. Jobs whose caller went
//! away are skipped. Under overload, memory and latency stay flat and clients are told to come
//! back. A log-in for an unknown account verifies against a dummy hash with the same
//! parameters, so it costs the same as a wrong password. Hashes imported from other systems
//! are verified through [`crate::legacy_hash`] (plus the dummy, so they cost no less) and
//! re-hashed with argon2id at the next successful log-in.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash as Phc, Salt};
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use serde::{Deserialize, Serialize};

use crate::error::{CoreError, CoreResult};
use crate::legacy_hash::{self, HashScheme};
use crate::model::Policy;
use crate::secret::{Password, random_bytes};

/// Longest password accepted, in bytes (as buddycloud documents; generous for passphrases,
/// small enough that hashing cost cannot be inflated by the input).
pub const PASSWORD_MAX_BYTES: usize = 1023;

/// What a client shed by an overloaded pool is told to wait before trying again.
pub const OVERLOAD_RETRY_AFTER: Duration = Duration::from_secs(1);

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
    /// Hashing threads; 0 means one per CPU core.
    pub workers: usize,
    /// Jobs allowed to wait for a worker; beyond that, requests are shed with 503.
    /// 0 means 8 per worker.
    pub queue: usize,
    /// Longest a job may wait for a worker before it is shed with 503 instead.
    #[serde(with = "humantime_serde")]
    pub max_wait: Duration,
}

impl Default for HashingConfig {
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
            workers: 0,
            queue: 0,
            max_wait: Duration::from_secs(1),
        }
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
        if self.queue == 0 { 8 * self.effective_workers() } else { self.queue }
    }

    /// The argon2 parameters, checked.
    pub fn params(&self) -> Result<Params, String> {
        Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| format!("invalid argon2 parameters: {e}"))
    }
}

/// A password hash ready to store, with the scheme the core recognised it as. The store keeps
/// both, so a report by scheme needs no knowledge of hash formats in SQL.
#[derive(Clone, PartialEq, Eq)]
pub struct HashedPassword {
    hash: String,
    scheme: HashScheme,
}

impl HashedPassword {
    /// A hash the core has classified.
    pub fn new(hash: String, scheme: HashScheme) -> Self {
        Self { hash, scheme }
    }

    /// A stored hash, classified by its form; `None` when no scheme recognises it.
    pub fn classify(hash: String) -> Option<Self> {
        legacy_hash::scheme_of(&hash).map(|scheme| Self { hash, scheme })
    }

    /// The stored form (a PHC string or a legacy format; see [`crate::legacy_hash`]).
    pub fn as_str(&self) -> &str {
        &self.hash
    }

    /// Its scheme.
    pub fn scheme(&self) -> HashScheme {
        self.scheme
    }
}

impl std::fmt::Debug for HashedPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashedPassword").field("scheme", &self.scheme).finish_non_exhaustive()
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

/// A hashing thread's tools: the parameters and a memory block reused for every hash.
#[derive(Debug)]
pub struct Worker {
    params: Params,
    memory: Vec<Block>,
    dummy_hash: Arc<str>,
    verifications: Arc<AtomicU64>,
    hashes: Arc<AtomicU64>,
    argon2_checks: Arc<AtomicU64>,
}

impl Worker {
    fn new(shared: &Shared) -> Self {
        Self {
            params: shared.params.clone(),
            memory: vec![Block::default(); shared.params.block_count()],
            dummy_hash: shared.dummy_hash.clone(),
            verifications: shared.verifications.clone(),
            hashes: shared.hashes.clone(),
            argon2_checks: shared.argon2_checks.clone(),
        }
    }

    fn argon(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Hashes a new password into a PHC string, in this worker's own memory block.
    pub fn hash(&mut self, password: &Password) -> CoreResult<String> {
        self.hashes.fetch_add(1, Ordering::Relaxed);
        let salt = random_bytes::<16>().map_err(CoreError::internal)?;
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        self.argon()
            .hash_password_into_with_memory(password.expose().as_bytes(), &salt, &mut out, &mut self.memory)
            .map_err(CoreError::internal)?;
        let phc = Phc {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params).map_err(CoreError::internal)?,
            salt: Some(Salt::new(&salt).map_err(CoreError::internal)?),
            hash: Some(Output::new(&out).map_err(CoreError::internal)?),
        };
        Ok(phc.to_string())
    }

    /// Checks a password against a stored hash (or against the dummy hash when there is
    /// none, at the same cost, answering "no"). Imported legacy hashes (see
    /// [`legacy_hash`]) are verified too, and a match asks for a re-hash with argon2id.
    pub fn verify(&mut self, password: &Password, stored: Option<&str>) -> Verification {
        self.verifications.fetch_add(1, Ordering::Relaxed);
        let no = Verification { matched: false, needs_rehash: false };
        let dummy = self.dummy_hash.clone();
        let Some(stored) = stored else {
            let _ = self.check(password.expose().as_bytes(), &dummy);
            return no;
        };
        if password.expose().len() > PASSWORD_MAX_BYTES {
            let _ = self.check(b"", &dummy);
            return no;
        }
        if password.expose().len() > LEGACY_PASSWORD_MAX_BYTES
            && legacy_hash::scheme_of(stored).is_some_and(|s| s != HashScheme::Argon2id && s != HashScheme::Argon2Other)
        {
            // phpass (iterated MD5 over the password) costs in proportion to the password's
            // length: a legacy hash is never checked against a password longer than the old
            // systems took. The answer is "no", after an unknown account's work.
            let _ = self.check(b"", &dummy);
            return no;
        }
        if let Some(matched) = legacy_hash::verify_legacy(stored, password.expose().as_bytes()) {
            // A legacy check can be far cheaper than argon2 (one MD5 or SHA-1); the dummy
            // check keeps the time of a log-in from telling which kind of hash, or whether an
            // imported account, is behind it. A match is re-hashed with argon2id by the caller.
            let _ = self.check(password.expose().as_bytes(), &dummy);
            return Verification { matched, needs_rehash: matched };
        }
        match self.check(password.expose().as_bytes(), stored) {
            Some((matched, current)) => {
                if !current {
                    // Parameters other than ours may be far cheaper (an import at m=8, t=1 fails
                    // in a millisecond): the dummy check keeps any failure at least as slow as
                    // an unknown account's, so the time does not point at the account. Costlier
                    // parameters are bounded by `affordable`. A match is re-hashed by the caller.
                    let _ = self.check(password.expose().as_bytes(), &dummy);
                }
                Verification { matched, needs_rehash: matched && !current }
            }
            None => {
                // An unreadable stored hash matches nothing; spend the same time anyway.
                tracing::warn!("stored password hash is in no format Portcullis can verify");
                let _ = self.check(password.expose().as_bytes(), &dummy);
                no
            }
        }
    }

    /// (matched, made with the current parameters), or `None` if `stored` is unreadable.
    fn check(&mut self, password: &[u8], stored: &str) -> Option<(bool, bool)> {
        self.argon2_checks.fetch_add(1, Ordering::Relaxed);
        let phc = Phc::new(stored).ok()?;
        let params = Params::try_from(&phc).ok()?;
        let current = phc.algorithm.as_str() == "argon2id"
            && phc.version == Some(0x13)
            && params.m_cost() == self.params.m_cost()
            && params.t_cost() == self.params.t_cost()
            && params.p_cost() == self.params.p_cost()
            && params.keyid().is_empty()
            && params.data().is_empty();
        match (&phc.salt, &phc.hash) {
            (Some(salt), Some(expected)) if current => {
                // Fast path: our parameters, computed in this worker's own memory block.
                let mut out = [0u8; 64];
                let out = out.get_mut(..expected.len())?;
                self.argon().hash_password_into_with_memory(password, salt, out, &mut self.memory).ok()?;
                let computed = Output::new(out).ok()?;
                Some((computed == *expected, true))
            }
            // Other parameters (an older configuration, an import) are computed outside the
            // worker's block, so they are bounded relative to ours: a stored hash must not be
            // able to make one log-in allocate gigabytes or run for seconds.
            _ if !affordable(&params, &self.params) => None,
            _ => Some((self.argon().verify_password(password, &phc).is_ok(), false)),
        }
    }
}

/// Whether argon2 parameters found in a stored hash cost at most a few times what the server's
/// own do: memory up to 4 times (at least 64 MiB allowed), passes up to 10 (or ours), lanes up
/// to 8 (or ours).
fn affordable(stored: &Params, ours: &Params) -> bool {
    stored.m_cost() <= ours.m_cost().saturating_mul(4).max(65_536)
        && stored.t_cost() <= ours.t_cost().max(10)
        && stored.p_cost() <= ours.p_cost().max(8)
}

/// Checks passwords on the calling thread exactly as the pool does, with its own memory
/// block; for the benchmark's baseline.
#[derive(Debug)]
pub struct Verifier(Worker);

impl Verifier {
    /// Checks a password against a stored hash.
    pub fn verify(&mut self, password: &Password, stored: Option<&str>) -> Verification {
        self.0.verify(password, stored)
    }
}

#[derive(Debug)]
struct Shared {
    params: Params,
    dummy_hash: Arc<str>,
    verifications: Arc<AtomicU64>,
    hashes: Arc<AtomicU64>,
    argon2_checks: Arc<AtomicU64>,
}

type JobFn = Box<dyn FnOnce(Option<&mut Worker>) + Send>;

struct Job {
    enqueued: Instant,
    run: JobFn,
}

/// The bounded hashing pool. Cheap to clone; the threads stop when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Shared,
    jobs: SyncSender<Job>,
    shed: AtomicU64,
    retry_after: Duration,
    max_wait: Duration,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher").field("params", &self.shared.params).finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// Builds the pool and starts its threads. Computes one hash (the dummy) to check the
    /// parameters work.
    pub fn new(cfg: &HashingConfig) -> Result<Self, String> {
        let params = cfg.params()?;
        let workers = cfg.effective_workers();
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let filler = random_bytes::<16>().map_err(|e| format!("no randomness: {e}"))?;
        let salt = random_bytes::<16>().map_err(|e| format!("no randomness: {e}"))?;
        let dummy_hash: Arc<str> = argon
            .hash_password_with_salt(&filler, &salt)
            .map_err(|e| format!("argon2 failed: {e}"))?
            .to_string()
            .into();
        let shared = Shared {
            params,
            dummy_hash,
            verifications: Arc::new(AtomicU64::new(0)),
            argon2_checks: Arc::new(AtomicU64::new(0)),
            hashes: Arc::new(AtomicU64::new(0)),
        };
        let (tx, rx) = sync_channel::<Job>(cfg.effective_queue());
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers {
            let (rx, mut worker, max_wait) = (rx.clone(), Worker::new(&shared), cfg.max_wait);
            std::thread::Builder::new()
                .name(format!("portcullis-hash-{i}"))
                .spawn(move || work(&rx, &mut worker, max_wait))
                .map_err(|e| format!("cannot start a hashing thread: {e}"))?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                shared,
                jobs: tx,
                shed: AtomicU64::new(0),
                retry_after: OVERLOAD_RETRY_AFTER,
                max_wait: cfg.max_wait,
            }),
        })
    }

    /// Runs CPU-heavy password work on the pool: admitted at once or refused with
    /// [`CoreError::Overloaded`].
    pub async fn run<T, F>(&self, job: F) -> CoreResult<T>
    where
        F: FnOnce(&mut Worker) -> T + Send + 'static,
        T: Send + 'static,
    {
        let (tx, mut rx) = tokio::sync::oneshot::channel::<Option<T>>();
        let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let started_by_worker = started.clone();
        let run: JobFn = Box::new(move |worker| {
            if tx.is_closed() {
                return; // the caller gave up; do not spend a hash on nobody
            }
            started_by_worker.store(true, Ordering::SeqCst);
            let _ = tx.send(worker.map(job));
        });
        match self.inner.jobs.try_send(Job { enqueued: Instant::now(), run }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(self.overloaded()),
            Err(TrySendError::Disconnected(_)) => return Err(CoreError::Internal("hashing pool stopped".into())),
        }
        // A job still waiting in the queue when its deadline passes is shed at that moment,
        // not when a worker gets to it: the caller hears 503 after `max_wait`, not after the
        // jobs ahead of it. (Dropping the receiver makes the worker skip it.) A job a worker
        // has started is waited for.
        let result = match tokio::time::timeout(self.inner.max_wait, &mut rx).await {
            Ok(r) => r,
            Err(_) if !started.load(Ordering::SeqCst) => {
                rx.close();
                // The worker may have taken it in the meantime and answered already.
                match rx.try_recv() {
                    Ok(Some(v)) => return Ok(v),
                    _ => return Err(self.overloaded()),
                }
            }
            Err(_) => rx.await,
        };
        match result {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(self.overloaded()),
            Err(_) => Err(CoreError::Internal("hashing job lost".into())),
        }
    }

    fn overloaded(&self) -> CoreError {
        self.inner.shed.fetch_add(1, Ordering::Relaxed);
        CoreError::Overloaded { retry_after: self.inner.retry_after }
    }

    /// Hashes a new password with argon2id.
    pub async fn hash(&self, password: Password) -> CoreResult<HashedPassword> {
        let phc = self.run(move |w| w.hash(&password)).await??;
        Ok(HashedPassword::new(phc, HashScheme::Argon2id))
    }

    /// Checks a password against a stored hash. With no stored hash (unknown account, or an
    /// account without a password) the dummy hash is checked instead and the answer is "no",
    /// so both paths cost the same.
    pub async fn verify(&self, password: Password, stored: Option<String>) -> CoreResult<Verification> {
        self.run(move |w| w.verify(&password, stored.as_deref())).await
    }

    /// Checks a new password against the policy and hashes it, as one pool job (both steps are
    /// CPU-heavy). Returns the field message when the policy refuses the password.
    pub async fn check_and_hash(
        &self,
        password: Password,
        policy: &Policy,
        user_inputs: Vec<String>,
    ) -> CoreResult<Result<HashedPassword, String>> {
        let (min_len, min_score) = (policy.password_min_length, policy.password_min_score);
        self.run(move |w| {
            let inputs: Vec<&str> = user_inputs.iter().map(String::as_str).collect();
            match check_strength(&password, min_len, min_score, &inputs) {
                Ok(()) => w.hash(&password).map(|phc| Ok(HashedPassword::new(phc, HashScheme::Argon2id))),
                Err(m) => Ok(Err(m)),
            }
        })
        .await?
    }

    /// Whether a stored hash is one this pool will verify: a legacy format, or argon2 with
    /// parameters it can afford (see the import limits in `docs/migration.md`).
    pub fn can_verify(&self, stored: &str) -> bool {
        // Parsing checks a legacy hash's form and cost limits without computing it.
        match crate::legacy_hash::scheme_of(stored) {
            Some(s) if s.is_legacy() && s != HashScheme::Argon2Other => return true,
            _ => {}
        }
        let Ok(phc) = Phc::new(stored) else { return false };
        let Ok(params) = Params::try_from(&phc) else { return false };
        phc.salt.is_some()
            && phc.hash.is_some()
            && params.keyid().is_empty()
            && affordable(&params, &self.inner.shared.params)
    }

    /// How many argon2 computations verifications have run (a legacy check runs one too); for
    /// tests of timing equality.
    pub fn argon2_checks(&self) -> u64 {
        self.inner.shared.argon2_checks.load(Ordering::Relaxed)
    }

    /// How many verifications have run (real or dummy); for tests and metrics.
    pub fn verifications(&self) -> u64 {
        self.inner.shared.verifications.load(Ordering::Relaxed)
    }

    /// How many jobs were refused because the queue was full or they waited too long.
    pub fn shed(&self) -> u64 {
        self.inner.shed.load(Ordering::Relaxed)
    }

    /// The PHC string that unknown accounts are checked against (same parameters as real
    /// hashes); exposed so tests can prove it.
    pub fn dummy_hash(&self) -> &str {
        &self.inner.shared.dummy_hash
    }

    /// A verifier for the calling thread, doing exactly what the pool's workers do.
    pub fn verifier(&self) -> Verifier {
        Verifier(Worker::new(&self.inner.shared))
    }
}

fn work(jobs: &Mutex<Receiver<Job>>, worker: &mut Worker, max_wait: Duration) {
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return }; // the pool was dropped
        if job.enqueued.elapsed() > max_wait {
            (job.run)(None);
        } else {
            (job.run)(Some(worker));
        }
    }
}

/// Longest password checked against a legacy (imported, non-argon2) hash, in bytes: the cost
/// of some legacy schemes grows with the password's length, and the systems they come from
/// took shorter passwords.
pub const LEGACY_PASSWORD_MAX_BYTES: usize = 256;

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
        HashingConfig {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
            workers: 1,
            queue: 1,
            max_wait: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn hashes_are_argon2id_phc_with_configured_parameters() {
        let h = PasswordHasher::new(&cheap()).unwrap();
        let hash = h.hash(Password::new("correct horse battery staple")).await.unwrap().as_str().to_owned();
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{hash}");
        let ok = h.verify(Password::new("correct horse battery staple"), Some(hash.clone())).await.unwrap();
        assert_eq!(ok, Verification { matched: true, needs_rehash: false });
        let bad = h.verify(Password::new("wrong"), Some(hash)).await.unwrap();
        assert!(!bad.matched);
    }

    #[tokio::test]
    async fn our_hashes_verify_with_the_reference_implementation() {
        let h = PasswordHasher::new(&cheap()).unwrap();
        let hash = h.hash(Password::new("portable")).await.unwrap().as_str().to_owned();
        let phc = Phc::new(&hash).unwrap();
        assert!(Argon2::default().verify_password(b"portable", &phc).is_ok());
        assert!(Argon2::default().verify_password(b"other", &phc).is_err());
        // And a hash made by the reference implementation verifies with ours.
        let reference = Argon2::new(Algorithm::Argon2id, Version::V0x13, cheap().params().unwrap())
            .hash_password_with_salt(b"portable", b"0123456789abcdef")
            .unwrap()
            .to_string();
        let v = h.verify(Password::new("portable"), Some(reference)).await.unwrap();
        assert_eq!(v, Verification { matched: true, needs_rehash: false });
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
        // A different hash with the same parameters verifies on the fast path, the old one on
        // the general path; both match.
        let hash = old.hash(Password::new("pw")).await.unwrap().as_str().to_owned();
        let new = PasswordHasher::new(&cheap()).unwrap();
        let v = new.verify(Password::new("pw"), Some(hash)).await.unwrap();
        assert_eq!(v, Verification { matched: true, needs_rehash: true });
    }

    #[tokio::test]
    async fn legacy_hashes_verify_and_ask_for_a_rehash() {
        let h = PasswordHasher::new(&cheap()).unwrap();
        // sha1("correct horse"), from Python's hashlib.
        let stored = "$sha1$2f9e53523b62abc141a2b4d6019d23cba835dbd0".to_owned();
        let before = h.verifications();
        let argon_before = h.argon2_checks();
        let ok = h.verify(Password::new("correct horse"), Some(stored.clone())).await.unwrap();
        assert_eq!(ok, Verification { matched: true, needs_rehash: true });
        let bad = h.verify(Password::new("correct horsE"), Some(stored.clone())).await.unwrap();
        assert_eq!(bad, Verification { matched: false, needs_rehash: false });
        assert_eq!(h.verifications(), before + 2);
        assert_eq!(h.argon2_checks(), argon_before + 2, "each legacy check also costs one argon2id run");
        // As many as an unknown account costs.
        h.verify(Password::new("correct horse"), None).await.unwrap();
        assert_eq!(h.argon2_checks(), argon_before + 3);
        let mut v = h.verifier();
        assert!(v.verify(&Password::new("correct horse"), Some(&stored)).needs_rehash);
    }

    #[tokio::test]
    async fn a_long_password_is_never_run_through_a_legacy_hash() {
        let h = PasswordHasher::new(&cheap()).unwrap();
        // phpass at 2^24 rounds: with a 1,000-byte password, tens of seconds of MD5.
        let phpass = "$P$Mabcdefgh0123456789ABCDEFGHIJKL";
        assert_eq!(legacy_hash::scheme_of(phpass), Some(HashScheme::Phpass), "2^24 rounds, well formed");
        let started = Instant::now();
        let v = h.verify(Password::new("x".repeat(1000)), Some(phpass.into())).await.unwrap();
        assert!(!v.matched);
        assert!(started.elapsed() < Duration::from_secs(1), "not computed: {:?}", started.elapsed());
    }

    #[tokio::test]
    async fn cheap_imported_argon2_costs_at_least_an_unknown_account() {
        let h = PasswordHasher::new(&cheap()).unwrap();
        let weak = PasswordHasher::new(&HashingConfig { memory_kib: 8, iterations: 1, ..cheap() }).unwrap();
        let stored = weak.hash(Password::new("right")).await.unwrap().as_str().to_owned();
        let before = h.argon2_checks();
        let bad = h.verify(Password::new("wrong"), Some(stored.clone())).await.unwrap();
        assert!(!bad.matched);
        assert_eq!(h.argon2_checks(), before + 2, "the stored hash and the dummy, as for an unknown account");
        let ok = h.verify(Password::new("right"), Some(stored)).await.unwrap();
        assert_eq!(ok, Verification { matched: true, needs_rehash: true }, "and upgraded at the first log-in");
        // Our own parameters need no padding: one check.
        let own = h.hash(Password::new("right")).await.unwrap().as_str().to_owned();
        let before = h.argon2_checks();
        assert!(!h.verify(Password::new("wrong"), Some(own)).await.unwrap().matched);
        assert_eq!(h.argon2_checks(), before + 1);
    }

    #[tokio::test]
    async fn costly_stored_parameters_are_refused_not_computed() {
        let h = PasswordHasher::new(&cheap()).unwrap();
        let huge = "$argon2id$v=19$m=1048576,t=64,p=16$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
        assert!(!h.can_verify(huge));
        let started = std::time::Instant::now();
        assert!(!h.verify(Password::new("pw"), Some(huge.into())).await.unwrap().matched);
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "not computed");
        let modest = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
        assert!(h.can_verify(modest));
        assert!(h.can_verify("$sha1$2f9e53523b62abc141a2b4d6019d23cba835dbd0"));
        assert!(!h.can_verify("garbage"));
    }

    #[tokio::test]
    async fn garbage_hashes_match_nothing() {
        let h = PasswordHasher::new(&cheap()).unwrap();
        let v = h.verify(Password::new("pw"), Some("not a hash".into())).await.unwrap();
        assert!(!v.matched);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_sheds_instead_of_waiting() {
        let h = PasswordHasher::new(&cheap()).unwrap(); // 1 worker + 1 queued
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = Arc::new(Mutex::new(rx));
        let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
        // One job occupies the worker until told to finish...
        let busy = {
            let (h, rx) = (h.clone(), rx.clone());
            tokio::spawn(async move {
                h.run(move |_| {
                    let _ = started_tx.send(());
                    rx.lock().unwrap().recv().ok()
                })
                .await
            })
        };
        started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        // ... one waits in the queue ...
        let queued = {
            let h = h.clone();
            tokio::spawn(async move { h.run(|_| ()).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        // ... and the next is refused at once.
        let third = h.run(|_| ()).await;
        assert!(matches!(third, Err(CoreError::Overloaded { .. })), "{third:?}");
        assert_eq!(h.shed(), 1);
        tx.send(()).unwrap();
        busy.await.unwrap().unwrap();
        queued.await.unwrap().unwrap();
        assert!(h.run(|_| ()).await.is_ok(), "capacity comes back");
    }

    #[tokio::test]
    async fn a_job_that_waited_too_long_is_shed_not_run() {
        let h = PasswordHasher::new(&HashingConfig { max_wait: Duration::from_millis(50), ..cheap() }).unwrap();
        let blocker = h.clone();
        let busy = tokio::spawn(async move { blocker.run(|_| std::thread::sleep(Duration::from_millis(300))).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let ran = Arc::new(AtomicU64::new(0));
        let r = ran.clone();
        let asked = Instant::now();
        let late = h.run(move |_| r.fetch_add(1, Ordering::SeqCst)).await;
        assert!(matches!(late, Err(CoreError::Overloaded { .. })), "{late:?}");
        assert!(asked.elapsed() < Duration::from_millis(200), "shed at its deadline, not when a worker frees up");
        busy.await.unwrap().unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 0, "the work was not done");
    }

    #[tokio::test]
    async fn the_verifier_and_the_pool_agree() {
        let h = PasswordHasher::new(&cheap()).unwrap();
        let hash = h.hash(Password::new("pw one")).await.unwrap().as_str().to_owned();
        let mut v = h.verifier();
        assert!(v.verify(&Password::new("pw one"), Some(&hash)).matched);
        assert!(!v.verify(&Password::new("pw two"), Some(&hash)).matched);
        assert!(!v.verify(&Password::new("pw one"), None).matched);
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
