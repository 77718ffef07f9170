//! The errors of core operations. Each surface maps [`CoreError`] to its own status code and
//! body in one place; internal causes are logged there and never shown to a client.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::store::StoreError;

/// Per-field problems, keyed by the field's wire name, each with a human-readable message.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct FieldErrors(BTreeMap<String, String>);

impl FieldErrors {
    /// No errors yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a problem with `field` (the first message for a field wins).
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.entry(field.into()).or_insert_with(|| message.into());
    }

    /// Whether any problem was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The recorded problems.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The message recorded for `field`, if any.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }

    /// `Ok(())` when empty, else a validation error carrying these problems.
    pub fn into_result(self) -> Result<(), CoreError> {
        if self.is_empty() { Ok(()) } else { Err(CoreError::Validation(self)) }
    }

    /// Moves every problem of `other` into `self`.
    pub fn merge(&mut self, other: FieldErrors) {
        for (k, v) in other.0 {
            self.0.entry(k).or_insert(v);
        }
    }
}

/// A field that must be unique within a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UniqueField {
    /// The username (compared case-insensitively).
    Username,
    /// The e-mail address (compared case-insensitively).
    Email,
    /// The primary phone number (compared in its normalised form).
    Phone,
    /// A tenant's slug.
    Slug,
    /// A tenant's domain (a domain belongs to one tenant).
    Domain,
    /// A name within a tenant (role, attribute definition).
    Name,
}

impl UniqueField {
    /// The wire name of the field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Username => "username",
            Self::Email => "email",
            Self::Phone => "phone",
            Self::Slug => "slug",
            Self::Domain => "domain",
            Self::Name => "name",
        }
    }
}

/// Why a core operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The request's fields are invalid; nothing was written.
    #[error("validation failed")]
    Validation(FieldErrors),
    /// The caller tried to set fields they may not set; nothing was written.
    #[error("fields not editable")]
    NotEditable(Vec<String>),
    /// A unique value is already taken in this tenant.
    #[error("{} already taken", .0.as_str())]
    Conflict(UniqueField),
    /// The login or password is wrong, or the account cannot log in. Deliberately one variant
    /// for every cause, so that no surface can tell an unknown account from a wrong password.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The password is right but the account is disabled. Only ever returned after the
    /// password was checked, so it tells nothing to someone who does not know it.
    #[error("account disabled")]
    AccountDisabled,
    /// The password is right but the tenant requires a verified e-mail address first.
    #[error("e-mail address not verified")]
    EmailNotVerified,
    /// The current password given to confirm a sensitive change is wrong.
    #[error("current password incorrect")]
    PasswordIncorrect,
    /// No valid session or credential was presented.
    #[error("unauthenticated")]
    Unauthenticated,
    /// The caller is authenticated but may not do this.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// The thing does not exist (or is not visible to this caller).
    #[error("not found")]
    NotFound,
    /// Self sign-up is closed for this tenant.
    #[error("sign-up closed")]
    SignupClosed,
    /// Too many attempts; try again after the given delay.
    #[error("rate limited")]
    RateLimited {
        /// When a retry may succeed.
        retry_after: Duration,
    },
    /// The password hashing pool is saturated; shed rather than queue without bound.
    #[error("overloaded")]
    Overloaded {
        /// A hint for the client.
        retry_after: Duration,
    },
    /// The database is unreachable or timed out.
    #[error("storage unavailable")]
    Unavailable(#[source] StoreError),
    /// A bug or an unexpected failure; details go to the log only.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl CoreError {
    /// Wraps an unexpected error.
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(e))
    }

    /// A validation error about one field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut f = FieldErrors::new();
        f.add(field, message);
        Self::Validation(f)
    }
}

impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(f) => Self::Conflict(f),
            StoreError::Unavailable(_) => Self::Unavailable(e),
            StoreError::Invalid(_) => Self::field("request", "contains characters that cannot be stored"),
            StoreError::Gone => Self::NotFound,
            other => Self::internal(other),
        }
    }
}

/// Result of a core operation.
pub type CoreResult<T> = Result<T, CoreError>;
