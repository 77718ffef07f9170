//! The core's handling of the revocation feed, against a feed the test drives. Every other
//! part of the store is the real SQLite store.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use portcullis_core::auth::SESSION_TOKEN_PREFIX;
use portcullis_core::clock::Clock as _;
use portcullis_core::model::UserStatus;
use portcullis_core::parse::Username;
use portcullis_core::password::HashingConfig;
use portcullis_core::profile::Profile;
use portcullis_core::store::{
    NewSession, NewUser, Revocation, RevocationFeed, RevocationStore, StoreError, StoreResult, Stores,
};
use portcullis_core::{Core, CoreConfig, TenantId, Token};
use portcullis_testkit::{Backend, ManualClock};
use tokio::sync::{Semaphore, mpsc};

/// A revocation feed that the test drives: each feed opened is a channel the test sends on.
#[derive(Debug)]
struct DrivenFeed {
    opens: AtomicUsize,
    // Each open after the first waits for a permit, so the test sees the gap.
    reopen: Semaphore,
    feeds: Mutex<Vec<mpsc::UnboundedSender<StoreResult<Revocation>>>>,
}

#[async_trait::async_trait]
impl RevocationStore for DrivenFeed {
    async fn revocations(&self) -> StoreResult<RevocationFeed> {
        if self.opens.fetch_add(1, Ordering::SeqCst) > 0 {
            self.reopen.acquire().await.map_err(|e| StoreError::Other(Box::new(e)))?.forget();
        }
        let (tx, rx) = mpsc::unbounded_channel();
        self.feeds.lock().unwrap().push(tx);
        Ok(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }).boxed())
    }
}

async fn until(what: &str, f: impl Fn() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_feed_stops_caching_until_a_new_feed_listens() {
    let (store, _db) = portcullis_testkit::fresh_store(Backend::Sqlite).await.unwrap();
    let clock = ManualClock::starting_now();
    let now = clock.now();
    let user = store
        .insert_user(&NewUser {
            tenant_id: TenantId::DEFAULT,
            username: Some(Username::parse("ada").unwrap()),
            email: None,
            email_verified_at: None,
            phone: None,
            password: None,
            status: UserStatus::Active,
            profile: Profile::default(),
            attributes: vec![],
            roles: vec![],
            now,
        })
        .await
        .unwrap();
    let token = Token::generate(SESSION_TOKEN_PREFIX).unwrap();
    let session = NewSession {
        tenant_id: TenantId::DEFAULT,
        user_id: user.id,
        checked_password_version: user.password_version,
        token_hash: token.hash(),
        now,
        expires_at: now.plus(Duration::from_secs(3600)),
        idle_timeout: Duration::from_secs(3600),
        user_agent: None,
        ip: None,
    };
    store.insert_session(&session).await.unwrap().unwrap();

    let feed = Arc::new(DrivenFeed { opens: AtomicUsize::new(0), reopen: Semaphore::new(0), feeds: Mutex::default() });
    let stores = Stores { revocations: feed.clone(), ..Stores::new(store) };
    let config = CoreConfig {
        password: HashingConfig { memory_kib: 1024, iterations: 1, ..Default::default() },
        ..Default::default()
    };
    let core = Arc::new(Core::with_stores(stores, Arc::new(clock), config).unwrap());
    let maintenance = tokio::spawn(core.clone().run_maintenance());
    let cache = core.session_cache();

    until("the feed listens", || cache.is_feed_live()).await;
    core.authenticate(TenantId::DEFAULT, &token).await.unwrap();
    assert_eq!(cache.len(), 1, "cached while the feed listens");

    // The feed reports that it lost track.
    let first = feed.feeds.lock().unwrap()[0].clone();
    first.send(Err(StoreError::Unavailable("connection lost".into()))).unwrap();
    until("the core asks for a new feed", || feed.opens.load(Ordering::SeqCst) == 2).await;
    assert!(!cache.is_feed_live());
    assert_eq!(cache.len(), 0, "everything cached before the loss is forgotten");
    core.authenticate(TenantId::DEFAULT, &token).await.unwrap();
    assert_eq!(cache.len(), 0, "nothing is cached while no feed listens");
    assert!(first.is_closed(), "the lost feed was dropped, not read on");

    // A new feed listens: caching resumes, and its revocations are applied.
    feed.reopen.add_permits(1);
    until("the new feed listens", || cache.is_feed_live()).await;
    core.authenticate(TenantId::DEFAULT, &token).await.unwrap();
    assert_eq!(cache.len(), 1);
    let second = feed.feeds.lock().unwrap()[1].clone();
    second.send(Ok(Revocation::Session(token.hash()))).unwrap();
    until("the revocation is applied", || cache.is_empty()).await;
    maintenance.abort();
}
