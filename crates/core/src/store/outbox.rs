//! The outbox part of the store: messages queued in the transaction of the event that causes
//! them, delivered by a sender task that claims them with a lease.

use std::fmt::Debug;
use std::time::Duration;

use serde_json::Value;

use super::StoreResult;
use crate::clock::Timestamp;
use crate::ids::{OutboxId, TenantId, UserId};
use crate::model::MailKind;

/// A message to queue. It says what to send and to whom, never a secret: a link is made when
/// the message is sent.
#[derive(Clone, Debug, PartialEq)]
pub struct NewOutboxMessage {
    /// The tenant it is sent for (its name, its templates, its links).
    pub tenant_id: TenantId,
    /// What it is.
    pub kind: MailKind,
    /// The account it is about, if known when it is queued.
    pub user_id: Option<UserId>,
    /// A fixed recipient (the old address told of a change; a test message); otherwise the
    /// account's address when the message is sent.
    pub recipient: Option<String>,
    /// What the message needs besides (an identifier typed, an address to verify).
    pub payload: Value,
    /// When it was queued; it is due at once.
    pub now: Timestamp,
}

/// A queued message, as a sender claims it.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxMessage {
    /// Identifier.
    pub id: OutboxId,
    /// The tenant it is sent for.
    pub tenant_id: TenantId,
    /// What it is.
    pub kind: MailKind,
    /// The account it is about.
    pub user_id: Option<UserId>,
    /// A fixed recipient.
    pub recipient: Option<String>,
    /// What else it needs.
    pub payload: Value,
    /// Delivery attempts so far, this one included.
    pub attempts: u32,
    /// The end of this claim's lease: it also names the claim, so that a sender whose lease
    /// ran out (and whose message another sender took) cannot record an outcome for it.
    pub lease: Timestamp,
    /// When it was queued.
    pub created_at: Timestamp,
}

/// The outbox.
#[async_trait::async_trait]
pub trait OutboxStore: Send + Sync + Debug {
    /// Queues a message (outside any unit of work; see [`super::UnitOfWork::enqueue_mail`]).
    async fn enqueue_mail(&self, m: &NewOutboxMessage) -> StoreResult<OutboxId>;
    /// Claims up to `limit` due messages, oldest first, for `lease`: no other sender gets them
    /// until the lease ends (a sender that died lets them go). Each claim counts an attempt.
    async fn claim_mail(&self, now: Timestamp, lease: Duration, limit: u32) -> StoreResult<Vec<OutboxMessage>>;
    /// A claimed message was delivered (or needs no delivery): it is removed. `false`, and
    /// nothing done, when the claim (`lease`) is no longer the message's.
    async fn complete_mail(&self, id: OutboxId, lease: Timestamp) -> StoreResult<bool>;
    /// A claimed message could not be delivered: it is due again at `retry_at`, or, with
    /// `None`, given up (kept with its error for the operator, its payload emptied). `false`,
    /// and nothing done, when the claim is no longer the message's.
    async fn fail_mail(
        &self,
        id: OutboxId,
        lease: Timestamp,
        error: &str,
        retry_at: Option<Timestamp>,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// How many messages wait (due or not), and how many were given up.
    async fn mail_backlog(&self) -> StoreResult<(u64, u64)>;
}
