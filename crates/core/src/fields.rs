//! Parsing of the account fields a caller sends (sign-up, profile updates): identifiers,
//! profile fields and custom attributes, each checked against an allow-list for the caller.
//! Every surface hands the core a JSON object of fields in native names; the rules about which
//! fields exist, which the caller may set and what each may hold live here only.

use serde_json::{Map, Value};

use crate::error::{CoreError, CoreResult, FieldErrors};
use crate::model::AttributeDefinition;
use crate::parse::{Email, Phone, Username};
use crate::profile::{ProfileChange, is_profile_field, parse_profile_field};

/// Who is writing: users may set only what is theirs to set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Editor {
    /// The account's owner (sign-up, `PATCH /v1/me`).
    User,
    /// An operator or an API key allowed to manage users.
    Admin,
}

/// Fields that exist on an account but that users never set through these writes.
pub const READ_ONLY_FIELDS: &[&str] = &[
    "id",
    "tenant_id",
    "status",
    "roles",
    "email_verified",
    "phone_verified",
    "created_at",
    "updated_at",
    "last_login_at",
    "password_changed_at",
    "password",
    "password_hash",
];

/// Parsed account fields. `None` means "not sent"; `Some(None)` means "clear".
#[derive(Clone, Debug, Default)]
pub struct AccountChanges {
    /// Username.
    pub username: Option<Option<Username>>,
    /// E-mail address.
    pub email: Option<Option<Email>>,
    /// Primary phone.
    pub phone: Option<Option<Phone>>,
    /// Profile changes.
    pub profile: Vec<ProfileChange>,
    /// Attribute values to set or clear, with their definitions.
    pub attributes: Vec<(AttributeDefinition, Option<Value>)>,
}

/// Parses `fields`. Refuses fields the editor may not set with [`CoreError::NotEditable`]
/// (naming all of them); returns the valid changes together with the problems of the
/// unknown or invalid fields, so that callers can report them with their own checks at once.
pub fn parse_account_fields(
    fields: &Map<String, Value>,
    defs: &[AttributeDefinition],
    editor: Editor,
) -> CoreResult<(AccountChanges, FieldErrors)> {
    let mut out = AccountChanges::default();
    let mut errors = FieldErrors::new();
    let mut not_editable = Vec::new();

    for (name, value) in fields {
        match name.as_str() {
            "username" => out.username = identifier(name, value, Username::parse, &mut errors),
            "email" => out.email = identifier(name, value, Email::parse, &mut errors),
            "phone" => out.phone = identifier(name, value, Phone::parse, &mut errors),
            "attributes" => parse_attributes(value, defs, editor, &mut out, &mut errors, &mut not_editable),
            n if is_profile_field(n) => {
                if let Some(c) = parse_profile_field(n, value, &mut errors) {
                    out.profile.push(c);
                }
            }
            n if READ_ONLY_FIELDS.contains(&n) => not_editable.push(n.to_owned()),
            n => errors.add(n, "unknown field"),
        }
    }
    if !not_editable.is_empty() {
        not_editable.sort();
        return Err(CoreError::NotEditable(not_editable));
    }
    Ok((out, errors))
}

fn identifier<T>(
    name: &str,
    value: &Value,
    parse: fn(&str) -> Result<T, &'static str>,
    errors: &mut FieldErrors,
) -> Option<Option<T>> {
    match value {
        Value::Null => Some(None),
        Value::String(s) if s.trim().is_empty() => Some(None),
        Value::String(s) => match parse(s) {
            Ok(v) => Some(Some(v)),
            Err(m) => {
                errors.add(name, m);
                None
            }
        },
        _ => {
            errors.add(name, "must be a string or null");
            None
        }
    }
}

fn parse_attributes(
    value: &Value,
    defs: &[AttributeDefinition],
    editor: Editor,
    out: &mut AccountChanges,
    errors: &mut FieldErrors,
    not_editable: &mut Vec<String>,
) {
    let Value::Object(attrs) = value else {
        errors.add("attributes", "must be an object of attribute names to values");
        return;
    };
    for (name, v) in attrs {
        let key = format!("attributes.{name}");
        let Some(def) = defs.iter().find(|d| d.name == *name) else {
            errors.add(key, "unknown attribute");
            continue;
        };
        if editor == Editor::User && !def.user_editable {
            not_editable.push(key);
            continue;
        }
        if v.is_null() {
            out.attributes.push((def.clone(), None));
            continue;
        }
        match def.kind.coerce(v) {
            Ok(v) => out.attributes.push((def.clone(), Some(v))),
            Err(m) => errors.add(key, m),
        }
    }
}

/// Checks that every required attribute the editor can set has a value in `changes`.
pub fn check_required_attributes(
    changes: &AccountChanges,
    defs: &[AttributeDefinition],
    editor: Editor,
) -> FieldErrors {
    let mut errors = FieldErrors::new();
    for d in defs.iter().filter(|d| d.required && (editor == Editor::Admin || d.user_editable)) {
        let present = changes.attributes.iter().any(|(def, v)| def.id == d.id && v.is_some());
        if !present {
            errors.add(format!("attributes.{}", d.name), "is required");
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::ids::{AttributeId, TenantId};
    use crate::model::AttributeKind;
    use serde_json::json;

    fn defs() -> Vec<AttributeDefinition> {
        let d = |id, name: &str, kind, required, user_editable| AttributeDefinition {
            id: AttributeId(id),
            tenant_id: TenantId(1),
            name: name.into(),
            kind,
            required,
            user_editable,
            created_at: Timestamp::from_unix_micros(0),
        };
        vec![d(1, "team", AttributeKind::String, true, true), d(2, "plan", AttributeKind::String, false, false)]
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn users_cannot_set_protected_fields() {
        let err = parse_account_fields(
            &obj(json!({"status": "active", "roles": ["admin"], "attributes": {"plan": "gold"}})),
            &defs(),
            Editor::User,
        )
        .unwrap_err();
        match err {
            CoreError::NotEditable(f) => assert_eq!(f, vec!["attributes.plan", "roles", "status"]),
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn unknown_and_invalid_fields_are_all_reported() {
        let (_, f) = parse_account_fields(
            &obj(json!({"email": "nope", "shoe_size": 44, "attributes": {"nope": 1}})),
            &defs(),
            Editor::User,
        )
        .unwrap();
        assert_eq!(f.get("email"), Some("must be a valid e-mail address"));
        assert_eq!(f.get("shoe_size"), Some("unknown field"));
        assert_eq!(f.get("attributes.nope"), Some("unknown attribute"));
    }

    #[test]
    fn valid_fields_parse_and_required_attributes_are_checked() {
        let (c, errors) = parse_account_fields(
            &obj(json!({"username": "ada", "email": null, "first_name": "Ada", "attributes": {"team": "core"}})),
            &defs(),
            Editor::User,
        )
        .unwrap();
        assert!(errors.is_empty());
        assert_eq!(c.username.as_ref().unwrap().as_ref().unwrap().as_str(), "ada");
        assert!(matches!(c.email, Some(None)));
        assert_eq!(c.profile.len(), 1);
        assert!(check_required_attributes(&c, &defs(), Editor::User).is_empty());
        let (none, _) = parse_account_fields(&Map::new(), &defs(), Editor::User).unwrap();
        assert_eq!(check_required_attributes(&none, &defs(), Editor::User).get("attributes.team"), Some("is required"));
    }
}
