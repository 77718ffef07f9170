//! Conformance cases of the parts the journeys need: the mail outbox, second factors, token
//! housekeeping and the server's secret. Every single-use secret is raced 32 times across two
//! independent handles and must be good exactly once.

use std::sync::Arc;
use std::time::Duration;

use portcullis_core::ids::{OutboxId, TenantId, UserId};
use portcullis_core::model::{MailKind, TokenPurpose, User};
use portcullis_core::secret::{Token, TokenHash};
use portcullis_core::store::{NewOneTimeToken, NewOutboxMessage, OutboxMessage, Store, StoreError, UserUpdate};
use serde_json::json;

use crate::TestDb;
use crate::cases::{new_user, now};

const RACERS: usize = 32;

/// Runs `f` `RACERS` times at once, alternating between two independent handles on the
/// database; returns how many calls said yes.
async fn race<F, Fut>(db: &TestDb, f: F) -> usize
where
    F: Fn(Arc<dyn Store>) -> Fut,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let second = db.second_handle().await;
    let mut tasks = Vec::new();
    for i in 0..RACERS {
        let store = if i % 2 == 0 { db.store.clone() } else { second.clone() };
        tasks.push(tokio::spawn(f(store)));
    }
    let mut yes = 0;
    for t in tasks {
        if t.await.unwrap() {
            yes += 1;
        }
    }
    yes
}

async fn user(db: &TestDb, name: &str) -> User {
    db.store.insert_user(&new_user(TenantId::DEFAULT, Some(name), Some(&format!("{name}@example.com")))).await.unwrap()
}

fn mail(kind: MailKind, user: Option<UserId>) -> NewOutboxMessage {
    NewOutboxMessage {
        tenant_id: TenantId::DEFAULT,
        kind,
        user_id: user,
        recipient: None,
        payload: json!({"login": "someone"}),
        now: now(),
    }
}

pub async fn the_outbox_hands_each_message_to_one_sender_until_it_is_done(db: &TestDb) {
    let s = &db.store;
    let u = user(db, "mailee").await;
    let first = s.enqueue_mail(&mail(MailKind::PasswordReset, None)).await.unwrap();
    let mut unit = s.begin().await.unwrap();
    unit.enqueue_mail(&mail(MailKind::EmailVerification, Some(u.id))).await.unwrap();
    drop(unit);
    let mut unit = s.begin().await.unwrap();
    let third = unit.enqueue_mail(&mail(MailKind::EmailVerification, Some(u.id))).await.unwrap();
    unit.commit().await.unwrap();
    assert_eq!(s.mail_backlog().await.unwrap(), (2, 0), "the message of a rolled-back unit is not queued");

    // Two senders claiming at once share the messages out: each goes to exactly one.
    let other = db.second_handle().await;
    let lease = Duration::from_secs(60);
    let (a, b) = tokio::join!(s.claim_mail(now(), lease, 10), other.claim_mail(now(), lease, 10));
    let claimed: Vec<OutboxMessage> = a.unwrap().into_iter().chain(b.unwrap()).collect();
    let mut ids: Vec<i64> = claimed.iter().map(|m| m.id.0).collect();
    ids.sort();
    assert_eq!(ids, vec![first.0, third.0]);
    let lease_of = |id: OutboxId| claimed.iter().find(|m| m.id == id).map(|m| m.lease).unwrap();
    assert!(claimed.iter().all(|m| m.lease == now().plus(lease)));
    assert!(s.claim_mail(now(), lease, 10).await.unwrap().is_empty(), "leased messages are not handed out again");

    // A failed delivery comes back when it is due; a sender that died lets go at its lease's end.
    assert!(
        s.fail_mail(first, lease_of(first), "connection refused", Some(now().plus(Duration::from_secs(30))), now())
            .await
            .unwrap()
    );
    assert!(s.claim_mail(now(), lease, 10).await.unwrap().is_empty());
    let later = now().plus(Duration::from_secs(31));
    let again = s.claim_mail(later, lease, 10).await.unwrap();
    assert_eq!(again.iter().map(|m| (m.id, m.attempts)).collect::<Vec<_>>(), vec![(first, 2)]);
    assert_eq!(again[0].payload, json!({"login": "someone"}));
    let after_lease = now().plus(Duration::from_secs(61));
    let orphan = s.claim_mail(after_lease, lease, 10).await.unwrap();
    assert_eq!(orphan.iter().map(|m| m.id).collect::<Vec<_>>(), vec![third]);
    assert_eq!((orphan[0].kind, orphan[0].user_id), (MailKind::EmailVerification, Some(u.id)));
    // The sender that lost the lease can record nothing for it any more.
    assert!(!s.complete_mail(third, lease_of(third)).await.unwrap());
    assert!(!s.fail_mail(third, lease_of(third), "late", None, now()).await.unwrap());
    assert_eq!(s.mail_backlog().await.unwrap(), (2, 0));

    // Delivered messages leave; given-up ones stay, out of the queue, their payload emptied.
    assert!(s.complete_mail(third, orphan[0].lease).await.unwrap());
    assert!(s.fail_mail(first, again[0].lease, "mailbox unavailable", None, now()).await.unwrap());
    assert_eq!(s.mail_backlog().await.unwrap(), (0, 1));
    assert!(s.claim_mail(now().plus(Duration::from_secs(3600)), lease, 10).await.unwrap().is_empty());
}

pub async fn a_totp_code_is_good_once_per_time_step_even_when_raced(db: &TestDb) {
    let s = &db.store;
    let u = user(db, "otp").await;
    assert!(s.totp(TenantId::DEFAULT, u.id).await.unwrap().is_none());
    assert!(s.begin_totp(TenantId::DEFAULT, u.id, b"sealed one", now()).await.unwrap());
    assert!(s.begin_totp(TenantId::DEFAULT, u.id, b"sealed two", now()).await.unwrap(), "an enrolment restarts");
    assert!(!s.use_totp_step(TenantId::DEFAULT, u.id, 100, now()).await.unwrap(), "not before it is confirmed");
    assert!(!s.user(TenantId::DEFAULT, u.id).await.unwrap().unwrap().second_factor);
    let codes = [TokenHash([1; 32]), TokenHash([2; 32])];
    assert!(s.confirm_totp(TenantId::DEFAULT, u.id, 100, &codes, now()).await.unwrap());
    assert!(!s.confirm_totp(TenantId::DEFAULT, u.id, 101, &codes, now()).await.unwrap(), "confirmed once");
    assert!(!s.begin_totp(TenantId::DEFAULT, u.id, b"sealed three", now()).await.unwrap(), "no silent replacement");
    let cred = s.totp(TenantId::DEFAULT, u.id).await.unwrap().unwrap();
    assert_eq!((cred.sealed_secret.as_slice(), cred.last_used_step), (&b"sealed two"[..], 100));
    assert!(cred.confirmed_at.is_some());
    assert!(s.user(TenantId::DEFAULT, u.id).await.unwrap().unwrap().second_factor);
    assert!(!s.use_totp_step(TenantId::DEFAULT, u.id, 100, now()).await.unwrap(), "the confirming code is spent");

    let id = u.id;
    let won =
        race(db, move |st| async move { st.use_totp_step(TenantId::DEFAULT, id, 101, now()).await.unwrap() }).await;
    assert_eq!(won, 1, "one code, one step, one acceptance");
    assert!(!s.use_totp_step(TenantId::DEFAULT, u.id, 99, now()).await.unwrap(), "no going back in time");
    assert!(s.use_totp_step(TenantId::DEFAULT, u.id, 102, now()).await.unwrap());
    let other = crate::cases::tenant_id(s, "elsewhere").await;
    assert!(!s.use_totp_step(other, u.id, 103, now()).await.unwrap(), "not across tenants");
    assert!(s.totp(other, u.id).await.unwrap().is_none());

    assert!(s.delete_totp(TenantId::DEFAULT, u.id).await.unwrap());
    assert!(!s.delete_totp(TenantId::DEFAULT, u.id).await.unwrap());
    assert_eq!(s.recovery_codes_left(TenantId::DEFAULT, u.id).await.unwrap(), 0, "codes go with it");
    assert!(!s.user(TenantId::DEFAULT, u.id).await.unwrap().unwrap().second_factor);
}

pub async fn a_recovery_code_is_good_once_even_when_raced(db: &TestDb) {
    let s = &db.store;
    let u = user(db, "recover").await;
    let codes: Vec<TokenHash> = (0..10u8).map(|i| TokenHash([i; 32])).collect();
    assert!(!s.replace_recovery_codes(TenantId::DEFAULT, u.id, &codes, now()).await.unwrap(), "needs an authenticator");
    s.begin_totp(TenantId::DEFAULT, u.id, b"sealed", now()).await.unwrap();
    s.confirm_totp(TenantId::DEFAULT, u.id, 7, &codes, now()).await.unwrap();
    assert_eq!(s.recovery_codes_left(TenantId::DEFAULT, u.id).await.unwrap(), 10);

    let id = u.id;
    let won = race(db, move |st| async move {
        st.use_recovery_code(TenantId::DEFAULT, id, &TokenHash([3; 32]), now()).await.unwrap()
    })
    .await;
    assert_eq!(won, 1);
    assert_eq!(s.recovery_codes_left(TenantId::DEFAULT, u.id).await.unwrap(), 9);
    let stranger = user(db, "stranger").await;
    assert!(!s.use_recovery_code(TenantId::DEFAULT, stranger.id, &TokenHash([4; 32]), now()).await.unwrap());

    let fresh: Vec<TokenHash> = (20..30u8).map(|i| TokenHash([i; 32])).collect();
    assert!(s.replace_recovery_codes(TenantId::DEFAULT, u.id, &fresh, now()).await.unwrap());
    assert!(!s.use_recovery_code(TenantId::DEFAULT, u.id, &TokenHash([4; 32]), now()).await.unwrap(), "old codes die");
    assert!(s.use_recovery_code(TenantId::DEFAULT, u.id, &TokenHash([20; 32]), now()).await.unwrap());
    assert_eq!(s.recovery_codes_left(TenantId::DEFAULT, u.id).await.unwrap(), 9);
}

pub async fn links_within_a_limit_are_counted_atomically_across_handles(db: &TestDb) {
    let u = user(db, "limited").await;
    let since = now().minus(Duration::from_secs(900));
    let new = move || NewOneTimeToken {
        tenant_id: TenantId::DEFAULT,
        user_id: u.id,
        purpose: TokenPurpose::PasswordReset,
        token_hash: Token::generate("pct_").unwrap().hash(),
        data: json!({}),
        expires_at: now().plus(Duration::from_secs(600)),
        now: now(),
    };
    let stored =
        race(db, move |s| async move { s.insert_one_time_token_within(&new(), 3, since).await.unwrap() }).await;
    assert_eq!(stored, 3, "32 concurrent makers on two handles, a limit of three");
    let count = db.store.count_one_time_tokens(TenantId::DEFAULT, u.id, TokenPurpose::PasswordReset, since).await;
    assert_eq!(count.unwrap(), 3);
    // Older tokens do not count; other users and purposes are apart; a deleted user is gone.
    let later = now().plus(Duration::from_secs(1000));
    let t = NewOneTimeToken { now: later, ..new() };
    assert!(db.store.insert_one_time_token_within(&t, 3, later.minus(Duration::from_secs(900))).await.unwrap());
    let other = NewOneTimeToken { purpose: TokenPurpose::EmailVerification, ..new() };
    assert!(db.store.insert_one_time_token_within(&other, 3, since).await.unwrap());
    let nobody = NewOneTimeToken { user_id: UserId(999_999), ..new() };
    assert!(matches!(db.store.insert_one_time_token_within(&nobody, 3, since).await, Err(StoreError::Gone)));
}

pub async fn tokens_of_a_purpose_are_counted_and_spent_together(db: &TestDb) {
    let s = &db.store;
    let u = user(db, "resetter").await;
    let t0 = now();
    let mut tokens = Vec::new();
    for (i, purpose) in [TokenPurpose::PasswordReset, TokenPurpose::PasswordReset, TokenPurpose::EmailVerification]
        .into_iter()
        .enumerate()
    {
        let t = Token::generate("pct_").unwrap();
        s.insert_one_time_token(&NewOneTimeToken {
            tenant_id: TenantId::DEFAULT,
            user_id: u.id,
            purpose,
            token_hash: t.hash(),
            data: json!({}),
            expires_at: t0.plus(Duration::from_secs(600)),
            now: t0.plus(Duration::from_secs(i as u64)),
        })
        .await
        .unwrap();
        tokens.push(t);
    }
    let count = |since| s.count_one_time_tokens(TenantId::DEFAULT, u.id, TokenPurpose::PasswordReset, since);
    assert_eq!(count(t0).await.unwrap(), 2);
    assert_eq!(count(t0.plus(Duration::from_secs(1))).await.unwrap(), 1);
    let mut unit = s.begin().await.unwrap();
    assert_eq!(unit.delete_one_time_tokens(TenantId::DEFAULT, u.id, TokenPurpose::PasswordReset).await.unwrap(), 2);
    unit.commit().await.unwrap();
    assert_eq!(count(t0).await.unwrap(), 0);
    assert!(s.consume_one_time_token(&tokens[0].hash(), TokenPurpose::PasswordReset, now()).await.unwrap().is_none());
    assert!(
        s.consume_one_time_token(&tokens[2].hash(), TokenPurpose::EmailVerification, now()).await.unwrap().is_some(),
        "other purposes are untouched"
    );
}

pub async fn a_pending_email_waits_beside_the_login_address(db: &TestDb) {
    let s = &db.store;
    let u = user(db, "mover").await;
    let change = UserUpdate { pending_email: Some(Some("new@example.com".into())), ..Default::default() };
    let after = s.update_user(TenantId::DEFAULT, u.id, &change, now()).await.unwrap().unwrap();
    assert_eq!(
        (after.email.as_deref(), after.pending_email.as_deref()),
        (Some("mover@example.com"), Some("new@example.com"))
    );
    let clear = UserUpdate { pending_email: Some(None), ..Default::default() };
    assert_eq!(s.update_user(TenantId::DEFAULT, u.id, &clear, now()).await.unwrap().unwrap().pending_email, None);
}

pub async fn every_node_gets_the_same_server_secret(db: &TestDb) {
    let won = race(db, |st| async move {
        let candidate = portcullis_core::secret::random_bytes::<32>().unwrap();
        let got = st.server_secret("test-key", &candidate, now()).await.unwrap();
        got == candidate
    })
    .await;
    assert_eq!(won, 1, "one candidate is kept");
    let a = db.store.server_secret("test-key", b"another", now()).await.unwrap();
    let b = db.second_handle().await.server_secret("test-key", b"yet another", now()).await.unwrap();
    assert_eq!(a, b);
    assert_eq!(a.len(), 32);
}

pub async fn a_picture_is_replaced_whole_and_stays_in_its_tenant(db: &TestDb) {
    use portcullis_core::store::{NewTenant, StoredImage};
    let s = &db.store;
    let ada = user(db, "ada").await;
    let images = |tag: u8| -> Vec<StoredImage> {
        ["topbar", "large"]
            .iter()
            .map(|size| StoredImage {
                size: (*size).into(),
                content_type: "image/jpeg".into(),
                bytes: vec![tag, 0, 255],
            })
            .collect()
    };
    assert!(s.set_avatar(TenantId::DEFAULT, ada.id, "v1", &images(1), now()).await.unwrap());
    let got = s.avatar_image(TenantId::DEFAULT, ada.id, "large", "v1").await.unwrap().unwrap();
    assert_eq!((got.size.as_str(), got.bytes.as_slice()), ("large", &[1, 0, 255][..]));
    let found = s.user(TenantId::DEFAULT, ada.id).await.unwrap().unwrap();
    assert_eq!(found.avatar_version.as_deref(), Some("v1"));
    // A new picture replaces every size; the old version is gone.
    assert!(s.set_avatar(TenantId::DEFAULT, ada.id, "v2", &images(2), now()).await.unwrap());
    assert!(s.avatar_image(TenantId::DEFAULT, ada.id, "large", "v1").await.unwrap().is_none());
    assert_eq!(s.avatar_image(TenantId::DEFAULT, ada.id, "topbar", "v2").await.unwrap().unwrap().bytes, [2, 0, 255]);
    assert!(s.avatar_image(TenantId::DEFAULT, ada.id, "small", "v2").await.unwrap().is_none());
    // Not across tenants, not for a missing user.
    let other = s
        .insert_tenant(&NewTenant {
            slug: "other".into(),
            name: "Other".into(),
            domains: vec![],
            policy: Default::default(),
            now: now(),
        })
        .await
        .unwrap()
        .id;
    assert!(!s.set_avatar(other, ada.id, "v3", &images(3), now()).await.unwrap());
    assert!(s.avatar_image(other, ada.id, "large", "v2").await.unwrap().is_none());
    assert!(!s.set_avatar(TenantId::DEFAULT, UserId(999_999), "v3", &images(3), now()).await.unwrap());
    // Removal clears the version and every size; a second removal reports nothing to remove.
    assert!(s.remove_avatar(TenantId::DEFAULT, ada.id, now()).await.unwrap());
    assert!(!s.remove_avatar(TenantId::DEFAULT, ada.id, now()).await.unwrap());
    assert!(s.avatar_image(TenantId::DEFAULT, ada.id, "large", "v2").await.unwrap().is_none());
    assert_eq!(s.user(TenantId::DEFAULT, ada.id).await.unwrap().unwrap().avatar_version, None);
    // Deleting the user deletes the pictures.
    assert!(s.set_avatar(TenantId::DEFAULT, ada.id, "v4", &images(4), now()).await.unwrap());
    assert!(s.delete_user(TenantId::DEFAULT, ada.id, now()).await.unwrap());
    assert!(s.avatar_image(TenantId::DEFAULT, ada.id, "large", "v4").await.unwrap().is_none());
}
