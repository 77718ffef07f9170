//! The JSON API's own wire format, shared by the surfaces that speak it — the native API
//! (`native/`), the admin API (`admin/`) and the probes: the error shape and its rendering of
//! every rejection, the extractors (JSON bodies, query parameters, sessions, API keys) that
//! refuse in that shape, and the user as JSON. Nothing here is used by the pages or a dialect.

pub mod error;
pub mod extract;
pub mod user;

use portcullis_core::{AccountInput, Field, Password};
use serde_json::{Map, Value};

/// The account fields of a JSON object in the native names, after taking out the password
/// fields named; a password of the wrong type is reported with every other problem.
pub fn account_with<const N: usize>(
    mut fields: Map<String, Value>,
    passwords: [Field; N],
) -> (AccountInput, [Option<Password>; N]) {
    let mut wrong = Vec::new();
    let taken = passwords.map(|f| match fields.remove(&f.name()) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(Password::new(s)),
        Some(_) => {
            wrong.push(f);
            None
        }
    });
    let mut account = AccountInput::from_json(fields);
    for f in wrong {
        account.reject(f, "has the wrong type");
    }
    (account, taken)
}
