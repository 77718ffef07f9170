//! Sign-up's parameters as the core's account fields. An allow-list: the document's fields
//! each have their place in [`AccountInput`], `attr:user:NAME` names a custom attribute (the
//! core decides whether it exists and whether users may set it), and any other parameter is
//! ignored, as the original's PHP ignored what it did not read. Nothing here decides whether
//! a value is acceptable: the core does, and reports by [`Field`], which the wire names.

use portcullis_core::accounts::SignupCommand;
use portcullis_core::{AccountInput, Field, Password};
use serde_json::Value;
use time::{Date, Month};

use super::wire::{ATTRIBUTE_PREFIX, TEXT_FIELDS};
use crate::shared::params::Params;

/// What a date of birth that cannot be read is told.
const DOB_FORMS: &str = "must be a date: YYYY-MM-DD, MM/DD/YYYY or MM-DD-YYYY";

/// The sign-up a Metrixstream client sent. `username`, `email` and `password` are the
/// document's required parameters; `password2`, when given and not empty, must repeat the
/// password.
pub(super) fn signup_command(p: &Params) -> SignupCommand {
    let mut account = AccountInput::new();
    match p.non_empty("username") {
        Some(u) => account.set_username(Some(u.to_owned())),
        None => account.reject(Field::Username, "is required"),
    };
    match p.non_empty("email") {
        Some(e) => account.set_email(Some(e.to_owned())),
        None => account.reject(Field::Email, "is required"),
    };
    if let Some(phone) = p.non_empty("phone") {
        account.set_phone(Some(phone.to_owned()));
    }
    for (name, field) in TEXT_FIELDS {
        if let Some(v) = p.get(name) {
            account.set_text(field, Some(v.to_owned()));
        }
    }
    if let Some(dob) = p.non_empty("dob") {
        match parse_dob(dob) {
            Ok(d) => account.set_birth_date(Some(d)),
            Err(why) => account.reject(Field::BirthDate, why),
        };
    }
    for (name, value) in p.iter().filter(|(n, _)| n.starts_with("attr:")) {
        match name.strip_prefix(ATTRIBUTE_PREFIX).filter(|n| !n.is_empty()) {
            // An empty value is no value: the form's field was left blank.
            Some(_) if value.trim().is_empty() => {}
            Some(attr) => {
                account.set_attribute(attr, Some(Value::String(value.to_owned())));
            }
            None if name.starts_with(ATTRIBUTE_PREFIX) => {
                account.reject(Field::Other(name.to_owned()), "names no custom field");
            }
            None => {
                account.reject(Field::Other(name.to_owned()), "only custom fields of users (attr:user:NAME) are taken");
            }
        }
    }
    // Passwords are taken as typed: never trimmed.
    let secret = |name| p.get(name).filter(|v| !v.is_empty()).map(Password::new);
    SignupCommand {
        account,
        password: secret("password"),
        password_confirmation: secret("password2"),
        no_session: false,
    }
}

/// A date of birth as Metrixstream sites collected it, as `YYYY-MM-DD`: ISO order
/// (`1990-07-04`, also with `/`), or the United States' month-first order (`07/04/1990`,
/// `7/4/1990`, `07-04-1990`). Day-first dates are not taken: `04/07/1990` would be read
/// wrongly, and a two-digit year cannot be placed in its century.
pub(super) fn parse_dob(s: &str) -> Result<String, &'static str> {
    let s = s.trim();
    let sep = if s.contains('/') { '/' } else { '-' };
    let parts: Vec<&str> = s.split(sep).collect();
    let digits = |p: &&str| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit());
    if parts.len() != 3 || !parts.iter().all(digits) {
        return Err(DOB_FORMS);
    }
    let (y, m, d) = match (parts[0].len(), parts[1].len(), parts[2].len()) {
        (4, 1..=2, 1..=2) => (parts[0], parts[1], parts[2]),
        (1..=2, 1..=2, 4) => (parts[2], parts[0], parts[1]),
        _ => return Err(DOB_FORMS),
    };
    let (Ok(y), Ok(m), Ok(d)) = (y.parse::<i32>(), m.parse::<u8>(), d.parse::<u8>()) else { return Err(DOB_FORMS) };
    let month = Month::try_from(m).map_err(|_| DOB_FORMS)?;
    let date = Date::from_calendar_date(y, month, d).map_err(|_| "is not a date that exists")?;
    Ok(format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_of_birth_are_read_in_iso_and_us_order() {
        for (given, want) in [
            ("1990-07-04", "1990-07-04"),
            ("1990/7/4", "1990-07-04"),
            ("07/04/1990", "1990-07-04"),
            ("7/4/1990", "1990-07-04"),
            ("07-04-1990", "1990-07-04"),
            (" 12/31/1999 ", "1999-12-31"),
        ] {
            assert_eq!(parse_dob(given).as_deref(), Ok(want), "{given}");
        }
        for bad in [
            "04.07.1990",
            "7/4/90",
            "1990-13-01",
            "13/01/1990",
            "1990-07",
            "yesterday",
            "1990-07-04T00:00",
            "1990/07-04",
        ] {
            assert!(parse_dob(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_dob("02/30/2000"), Err("is not a date that exists"));
    }

    #[test]
    fn only_the_documents_fields_and_user_attributes_are_taken() {
        let p = Params::from_pairs(
            [
                ("username", "ada"),
                ("email", "ada@example.com"),
                ("password", " pw with spaces "),
                ("password2", ""),
                ("sex", "F"),
                ("billing_zip", "02139"),
                ("attr:user:team", "core"),
                ("attr:user:blank", " "),
                ("attr:video:x", "1"),
                ("status", "active"),
                ("roles", "admin"),
            ]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        );
        let cmd = signup_command(&p);
        assert_eq!(cmd.password.as_ref().map(Password::expose), Some(" pw with spaces "));
        assert!(cmd.password_confirmation.is_none(), "an empty password2 is not given");
        let sent = cmd.account.sent();
        assert!(sent.contains(&Field::Attribute("team".into())));
        assert!(!sent.contains(&Field::Attribute("blank".into())));
        assert!(!sent.contains(&Field::Roles) && !sent.contains(&Field::Status), "not on the allow-list");
        assert_eq!(sent.len(), 5, "{sent:?}");
        assert!(cmd.account.problems().get(&Field::Other("attr:video:x".into())).is_some());
    }
}
