//! The errors of core operations. Each surface maps [`CoreError`] to its own status code and
//! body in one place; internal causes are logged there and never shown to a client.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::profile::TextField;
use crate::store::StoreError;

/// A field the core reports a problem with. Surfaces render their own names for it (the native
/// API and the import format use [`Field::name`]); the core never speaks any wire format.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// A login identifier (username, e-mail address or phone number, whichever was typed).
    Login,
    /// The username.
    Username,
    /// The e-mail address.
    Email,
    /// The primary phone number.
    Phone,
    /// A password (a new account's, or the one being checked).
    Password,
    /// The password typed a second time.
    PasswordConfirmation,
    /// The current password, confirming a sensitive change.
    CurrentPassword,
    /// The new password of a change.
    NewPassword,
    /// The new password typed a second time.
    NewPasswordConfirmation,
    /// A free-text profile field.
    Text(TextField),
    /// The date of birth.
    BirthDate,
    /// The newsletter flag.
    Newsletter,
    /// The free-form metadata object.
    Meta,
    /// The custom attribute with this name.
    Attribute(String),
    /// The roles of an account.
    Roles,
    /// The status of an account.
    Status,
    /// Whether the e-mail address is verified.
    EmailVerified,
    /// An imported password hash (with its format and salt).
    PasswordHash,
    /// A parameter of an operation other than an account field (a page size, a name, a
    /// scope...), named by the operation.
    Param(&'static str),
    /// A field of the caller's own wire format that the core has no name for (an unknown or
    /// read-only field), named as the caller sent it.
    Other(String),
}

impl Field {
    /// The canonical name: the one the native API and the import format use.
    pub fn name(&self) -> String {
        match self {
            Self::Login => "login".into(),
            Self::Username => "username".into(),
            Self::Email => "email".into(),
            Self::Phone => "phone".into(),
            Self::Password => "password".into(),
            Self::PasswordConfirmation => "password_confirmation".into(),
            Self::CurrentPassword => "current_password".into(),
            Self::NewPassword => "new_password".into(),
            Self::NewPasswordConfirmation => "new_password_confirmation".into(),
            Self::Text(f) => f.name().into(),
            Self::BirthDate => "birth_date".into(),
            Self::Newsletter => "newsletter".into(),
            Self::Meta => "meta".into(),
            Self::Attribute(name) => format!("attributes.{name}"),
            Self::Roles => "roles".into(),
            Self::Status => "status".into(),
            Self::EmailVerified => "email_verified".into(),
            Self::PasswordHash => "password_hash".into(),
            Self::Param(name) => (*name).into(),
            Self::Other(name) => name.clone(),
        }
    }
}

/// Problems with fields, each with a human-readable message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(BTreeMap<Field, String>);

impl FieldErrors {
    /// No errors yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a problem with `field` (the first message for a field wins).
    pub fn add(&mut self, field: Field, message: impl Into<String>) {
        self.0.entry(field).or_insert_with(|| message.into());
    }

    /// Whether any problem was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The recorded problems.
    pub fn iter(&self) -> impl Iterator<Item = (&Field, &str)> {
        self.0.iter().map(|(k, v)| (k, v.as_str()))
    }

    /// The recorded problems as `name: message`, in the order of their canonical names.
    pub fn describe(&self) -> Vec<String> {
        let mut v: Vec<(String, &str)> = self.iter().map(|(k, m)| (k.name(), m)).collect();
        v.sort();
        v.into_iter().map(|(k, m)| format!("{k}: {m}")).collect()
    }

    /// The message recorded for `field`, if any.
    pub fn get(&self, field: &Field) -> Option<&str> {
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
    NotEditable(Vec<Field>),
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
    /// A one-time link's token is unknown, used, expired, or for something that changed since
    /// (one answer for every cause).
    #[error("invalid or expired token")]
    InvalidToken,
    /// The second-factor code is wrong, or was used already.
    #[error("invalid second-factor code")]
    SecondFactorInvalid,
    /// The password is right, the account has a second factor, and no code came with a
    /// request that cannot ask for one afterwards. Only ever returned after the password was
    /// checked.
    #[error("second factor required")]
    SecondFactorRequired,
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
    pub fn field(field: Field, message: impl Into<String>) -> Self {
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
            StoreError::Invalid(_) => Self::field(Field::Param("request"), "contains characters that cannot be stored"),
            StoreError::Gone => Self::NotFound,
            other => Self::internal(other),
        }
    }
}

/// An error and its causes, on one line, for a log or an operator's console (never for a
/// client: causes may name internals).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Result of a core operation.
pub type CoreResult<T> = Result<T, CoreError>;
