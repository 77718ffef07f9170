//! Typed integer identifiers. Legacy clients expect integer ids, and typed wrappers keep a
//! user id from being passed where a tenant id belongs.

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A tenant: an isolated user base.
    TenantId
);
id_type!(
    /// A user, unique across tenants.
    UserId
);
id_type!(
    /// A session.
    SessionId
);
id_type!(
    /// A role, defined per tenant.
    RoleId
);
id_type!(
    /// A custom attribute definition, defined per tenant.
    AttributeId
);

impl TenantId {
    /// The tenant that always exists; `/v1/...` without a tenant prefix serves it.
    pub const DEFAULT: TenantId = TenantId(1);
}
id_type!(
    /// An API key.
    ApiKeyId
);
id_type!(
    /// An audit event.
    AuditEventId
);
id_type!(
    /// A message in the outbox.
    OutboxId
);
