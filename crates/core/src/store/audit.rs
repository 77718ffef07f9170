//! The audit part of the store: the append-only log of security events.

use std::fmt::Debug;
use std::net::IpAddr;

use serde_json::Value;

use super::StoreResult;
use crate::audit::{Actor, AuditAction};
use crate::clock::Timestamp;
use crate::ids::{AuditEventId, TenantId, UserId};
use crate::model::AuditEvent;

/// A security event to record.
#[derive(Clone, Debug, PartialEq)]
pub struct NewAuditEvent {
    /// Tenant concerned.
    pub tenant_id: Option<TenantId>,
    /// Account concerned.
    pub user_id: Option<UserId>,
    /// Who acted.
    pub actor: Actor,
    /// What happened.
    pub action: AuditAction,
    /// Client IP.
    pub ip: Option<IpAddr>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// More about it; never a secret.
    pub details: Value,
    /// When.
    pub at: Timestamp,
}

/// Which audit events to read, newest first.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    /// Only this tenant's (`None`: every tenant; operators only).
    pub tenant_id: Option<TenantId>,
    /// Only events about this account.
    pub user_id: Option<UserId>,
    /// Only this action, or actions starting with it followed by `.` (e.g. `login`).
    pub action: Option<String>,
    /// Only events by this actor.
    pub actor: Option<String>,
    /// Only events at or after this time.
    pub since: Option<Timestamp>,
    /// Only events before this time.
    pub until: Option<Timestamp>,
    /// Only events older than this one (the previous page's last id).
    pub before: Option<AuditEventId>,
    /// At most this many.
    pub limit: u32,
}

/// The audit log.
#[async_trait::async_trait]
pub trait AuditStore: Send + Sync + Debug {
    /// Appends security events.
    async fn insert_audit_events(&self, events: &[NewAuditEvent]) -> StoreResult<()>;
    /// Security events matching a query, newest first.
    async fn audit_events(&self, q: &AuditQuery) -> StoreResult<Vec<AuditEvent>>;
}
