//! Profile fields: every field the five legacy specs name, in one table. Stores, validation
//! and surfaces iterate [`TextField::ALL`] instead of repeating the names, so adding a field is
//! one line here plus a migration.

use serde_json::{Map, Value};
use time::Date;

use crate::parse::Email;

/// How a text field is validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextKind {
    /// One line of text.
    Line,
    /// Free text that may span lines.
    Multiline,
    /// An `http` or `https` URL.
    Url,
    /// An e-mail address (not a login identifier).
    Email,
    /// A language tag such as `en` or `pt-BR`.
    Language,
    /// A phone or fax number (not a login identifier).
    Phone,
}

macro_rules! text_fields {
    ($( $(#[$doc:meta])* $variant:ident => $field:ident : $kind:ident, $max:expr; )*) => {
        /// A free-text profile field.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum TextField { $( $(#[$doc])* $variant, )* }

        impl TextField {
            /// Every text field, in column order.
            pub const ALL: &'static [TextField] = &[ $( TextField::$variant, )* ];

            /// The field's name on the native API and its column name.
            pub const fn name(self) -> &'static str {
                match self { $( TextField::$variant => stringify!($field), )* }
            }

            /// How the field is validated.
            pub const fn kind(self) -> TextKind {
                match self { $( TextField::$variant => TextKind::$kind, )* }
            }

            /// Longest value accepted, in characters.
            pub const fn max_chars(self) -> usize {
                match self { $( TextField::$variant => $max, )* }
            }

            /// The field with this name, if any.
            pub fn from_name(name: &str) -> Option<Self> {
                match name { $( stringify!($field) => Some(TextField::$variant), )* _ => None }
            }
        }

        /// A user's profile. Every field is optional.
        #[derive(Clone, Debug, Default, PartialEq)]
        pub struct Profile {
            $( $(#[$doc])* pub $field: Option<String>, )*
            /// Date of birth.
            pub birth_date: Option<Date>,
            /// Whether the user wants the newsletter.
            pub newsletter: bool,
            /// Free-form metadata, a JSON object.
            pub meta: Map<String, Value>,
        }

        impl Profile {
            /// The value of a text field.
            pub fn text(&self, f: TextField) -> Option<&str> {
                match f { $( TextField::$variant => self.$field.as_deref(), )* }
            }

            /// Sets a text field.
            pub fn set_text(&mut self, f: TextField, v: Option<String>) {
                match f { $( TextField::$variant => self.$field = v, )* }
            }
        }
    };
}

text_fields! {
    /// Given name.
    FirstName => first_name: Line, 100;
    /// Family name.
    LastName => last_name: Line, 100;
    /// Nickname.
    Nickname => nickname: Line, 100;
    /// Name shown to others; not unique.
    DisplayName => display_name: Line, 100;
    /// A short status line, as social sites show.
    DisplayStatus => display_status: Line, 280;
    /// Gender or sex, as the user states it (legacy systems used `M`/`F` or `male`/`female`).
    Gender => gender: Line, 32;
    /// About the user.
    Bio => bio: Multiline, 5000;
    /// Preferred language (BCP 47 tag, e.g. `en`, `pt-BR`).
    Language => language: Language, 35;
    /// Personal web site.
    Website => website: Url, 2048;
    /// Occupation.
    Occupation => occupation: Line, 100;
    /// Mobile phone (not used to log in; see the account's `phone`).
    Cellphone => cellphone: Phone, 32;
    /// Fax number.
    Fax => fax: Phone, 32;
    /// Postal address, first line.
    AddressLine1 => address_line1: Line, 200;
    /// Postal address, second line.
    AddressLine2 => address_line2: Line, 200;
    /// City.
    City => city: Line, 100;
    /// State, province or region.
    State => state: Line, 100;
    /// Postal or ZIP code.
    PostalCode => postal_code: Line, 32;
    /// Country (name or ISO code, as given).
    Country => country: Line, 100;
    /// Avatar image URL.
    AvatarUrl => avatar_url: Url, 2048;
    /// Cover image URL.
    CoverUrl => cover_url: Url, 2048;
    /// Billing contact: given name.
    BillingFirstName => billing_first_name: Line, 100;
    /// Billing contact: family name.
    BillingLastName => billing_last_name: Line, 100;
    /// Billing contact: company.
    BillingCompany => billing_company: Line, 200;
    /// Billing address, first line.
    BillingAddressLine1 => billing_address_line1: Line, 200;
    /// Billing address, second line.
    BillingAddressLine2 => billing_address_line2: Line, 200;
    /// Billing city.
    BillingCity => billing_city: Line, 100;
    /// Billing state, province or region.
    BillingState => billing_state: Line, 100;
    /// Billing postal or ZIP code.
    BillingPostalCode => billing_postal_code: Line, 32;
    /// Billing country.
    BillingCountry => billing_country: Line, 100;
    /// Billing contact phone.
    BillingPhone => billing_phone: Phone, 32;
    /// Billing contact fax.
    BillingFax => billing_fax: Phone, 32;
    /// Billing contact e-mail.
    BillingEmail => billing_email: Email, 254;
}

/// Largest accepted `meta` object, serialised.
pub const META_MAX_BYTES: usize = 16 * 1024;

/// One change to a profile.
#[derive(Clone, Debug, PartialEq)]
pub enum ProfileChange {
    /// Set or clear a text field.
    Text(TextField, Option<String>),
    /// Set or clear the birth date.
    BirthDate(Option<Date>),
    /// Set the newsletter flag.
    Newsletter(bool),
    /// Replace the metadata object.
    Meta(Map<String, Value>),
}

impl ProfileChange {
    /// Applies this change to a profile.
    pub fn apply(&self, p: &mut Profile) {
        match self {
            Self::Text(f, v) => p.set_text(*f, v.clone()),
            Self::BirthDate(d) => p.birth_date = *d,
            Self::Newsletter(b) => p.newsletter = *b,
            Self::Meta(m) => p.meta = m.clone(),
        }
    }
}

/// Whether `name` is the canonical name of a profile field.
pub fn is_profile_field(name: &str) -> bool {
    TextField::from_name(name).is_some() || matches!(name, "birth_date" | "newsletter" | "meta")
}

/// Checks a metadata object: no NUL character anywhere (no database stores one), at most
/// [`META_MAX_BYTES`] of JSON.
pub(crate) fn check_meta(m: &Map<String, Value>) -> Result<(), &'static str> {
    if m.iter().any(|(k, v)| k.contains('\0') || has_nul(v)) {
        return Err("must not contain NUL characters");
    }
    if serde_json::to_vec(m).map(|v| v.len()).unwrap_or(usize::MAX) > META_MAX_BYTES {
        return Err("must be at most 16 KiB of JSON");
    }
    Ok(())
}

/// Whether a JSON value holds a NUL character in any key or string (no database stores one).
fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// A boolean as JSON or as the strings and numbers form-encoded clients send.
pub fn parse_flag(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Some(true),
            "0" | "false" | "no" | "off" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Parses a date of birth, `YYYY-MM-DD`; blank input clears it.
pub(crate) fn check_birth_date(s: &str) -> Result<Option<Date>, &'static str> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    parse_birth_date(s).map(Some)
}

fn parse_birth_date(s: &str) -> Result<Date, &'static str> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let d = Date::parse(s, &fmt).map_err(|_| "must be a date in the form YYYY-MM-DD")?;
    if d.year() < 1900 {
        return Err("must be after 1900");
    }
    Ok(d)
}

/// Validates a text field's value; returns the value to store (`None` for blank input).
pub(crate) fn check_text(f: TextField, raw: &str) -> Result<Option<String>, String> {
    let multiline = f.kind() == TextKind::Multiline;
    let s = if multiline { raw.trim_end() } else { raw.trim() };
    if s.trim().is_empty() {
        return Ok(None);
    }
    if s.chars().count() > f.max_chars() {
        return Err(format!("must be at most {} characters", f.max_chars()));
    }
    let bad_control = |c: char| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t'));
    if s.chars().any(bad_control) {
        return Err("must not contain control characters".into());
    }
    match f.kind() {
        TextKind::Line | TextKind::Multiline => {}
        TextKind::Url => {
            let lower = s.to_ascii_lowercase();
            let rest = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://"));
            if !rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/')) || s.contains(char::is_whitespace) {
                return Err("must be an http or https URL".into());
            }
        }
        TextKind::Email => {
            Email::parse(s).map_err(str::to_owned)?;
        }
        TextKind::Language => {
            let mut parts = s.split('-');
            let primary_ok =
                parts.next().is_some_and(|p| (2..=3).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphabetic()));
            let rest_ok = parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
            if !primary_ok || !rest_ok {
                return Err("must be a language tag such as en or pt-BR".into());
            }
        }
        TextKind::Phone => {
            if !s.chars().all(|c| c.is_ascii_digit() || " +-.()".contains(c)) || !s.chars().any(|c| c.is_ascii_digit())
            {
                return Err("must be a phone number".into());
            }
        }
    }
    Ok(Some(s.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(name: &str, v: Value) -> Result<ProfileChange, String> {
        use crate::fields::{AccountInput, Editor, parse_account_fields};
        let mut m = Map::new();
        m.insert(name.to_owned(), v);
        let input = AccountInput::from_json(m);
        let field = input.problems().iter().next().map(|(f, _)| f.clone());
        let (changes, errors) = parse_account_fields(input, &[], Editor::Admin).map_err(|e| e.to_string())?;
        match (changes.profile.into_iter().next(), errors.iter().next(), field) {
            (Some(c), None, _) => Ok(c),
            (_, Some((_, m)), _) => Err(m.to_owned()),
            _ => Err("?".into()),
        }
    }

    #[test]
    fn field_table_is_consistent() {
        for f in TextField::ALL {
            assert_eq!(TextField::from_name(f.name()), Some(*f));
            assert!(is_profile_field(f.name()));
        }
        let mut p = Profile::default();
        for f in TextField::ALL {
            p.set_text(*f, Some(f.name().to_owned()));
        }
        for f in TextField::ALL {
            assert_eq!(p.text(*f), Some(f.name()));
        }
    }

    #[test]
    fn text_fields_are_validated_by_kind() {
        assert_eq!(
            parse("first_name", json!("  Ada ")),
            Ok(ProfileChange::Text(TextField::FirstName, Some("Ada".into())))
        );
        assert_eq!(parse("first_name", json!("   ")), Ok(ProfileChange::Text(TextField::FirstName, None)));
        assert_eq!(parse("first_name", json!(null)), Ok(ProfileChange::Text(TextField::FirstName, None)));
        assert!(parse("first_name", json!(3)).is_err());
        assert!(parse("first_name", json!("a\u{7}b")).is_err());
        assert!(parse("first_name", json!("x".repeat(101))).is_err());
        assert!(parse("bio", json!("line one\nline two")).is_ok());
        assert!(parse("website", json!("https://example.com/me")).is_ok());
        assert!(parse("website", json!("javascript:alert(1)")).is_err());
        assert!(parse("website", json!("https://")).is_err());
        assert!(parse("billing_email", json!("not-an-email")).is_err());
        assert!(parse("language", json!("pt-BR")).is_ok());
        assert!(parse("language", json!("english please")).is_err());
        assert!(parse("fax", json!("+1 416 555 0101")).is_ok());
        assert!(parse("fax", json!("none")).is_err());
    }

    #[test]
    fn typed_fields() {
        assert!(matches!(parse("birth_date", json!("1988-02-03")), Ok(ProfileChange::BirthDate(Some(_)))));
        assert!(parse("birth_date", json!("03/02/1988")).is_err());
        assert!(parse("birth_date", json!("1988-02-30")).is_err());
        assert_eq!(parse("newsletter", json!("1")), Ok(ProfileChange::Newsletter(true)));
        assert_eq!(parse("newsletter", json!(false)), Ok(ProfileChange::Newsletter(false)));
        assert!(parse("newsletter", json!("maybe")).is_err());
        assert!(parse("meta", json!({"lang": "en"})).is_ok());
        assert!(parse("meta", json!([1])).is_err());
        assert_eq!(parse("meta", json!({"k": ["a\u{0}b"]})), Err("must not contain NUL characters".into()));
        assert!(parse("meta", json!({"k\u{0}": 1})).is_err());
        assert!(parse("meta", json!({"x": "y".repeat(17 * 1024)})).is_err());
        assert_eq!(parse("favourite_colour", json!("blue")), Err("unknown field".into()));
    }
}
