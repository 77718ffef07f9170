//! The account fields a caller submits (sign-up, profile changes, accounts made by servers
//! and operators, imports): a typed builder that every surface fills from its own wire format,
//! and the one parser that checks it against an allow-list for the caller.
//!
//! A surface sets what its caller sent ([`AccountInput::set_username`], [`AccountInput::set_text`],
//! [`AccountInput::set_attribute`]...), records what it could not even read
//! ([`AccountInput::reject`]) or what nobody may write ([`AccountInput::refuse`]), and hands the
//! input to a core operation. Problems come back keyed by [`Field`], never by a wire name: each
//! surface renders its own names. The canonical JSON form (the native API's and the import
//! format's) is [`AccountInput::from_json`].

use serde_json::{Map, Value};

use crate::error::{CoreError, CoreResult, Field, FieldErrors};
use crate::model::{AttributeDefinition, UserStatus};
use crate::parse::{Email, Phone, Username};
use crate::profile::{
    ProfileChange, TextField, check_birth_date, check_meta, check_text, is_profile_field, parse_flag,
};

/// Who is writing: users may set only what is theirs to set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Editor {
    /// The account's owner (sign-up, changes to their own account).
    User,
    /// An operator or a server allowed to manage users.
    Admin,
}

/// Names in the canonical JSON form that exist on an account but that no caller writes
/// through account fields.
const READ_ONLY_FIELDS: &[&str] = &[
    "id",
    "tenant_id",
    "phone_verified",
    "created_at",
    "updated_at",
    "last_login_at",
    "password_changed_at",
    "password_hash",
];

/// Account fields as a caller submitted them, not yet checked. Everything is optional: an
/// unset field is left alone; a field set to `None` is cleared.
#[derive(Clone, Debug, Default)]
pub struct AccountInput {
    username: Option<Option<String>>,
    email: Option<Option<String>>,
    phone: Option<Option<String>>,
    text: Vec<(TextField, Option<String>)>,
    birth_date: Option<Option<String>>,
    newsletter: Option<bool>,
    meta: Option<Option<Map<String, Value>>>,
    attributes: Vec<(String, Option<Value>)>,
    roles: Option<Vec<String>>,
    status: Option<UserStatus>,
    email_verified: Option<bool>,
    problems: FieldErrors,
    refused: Vec<Field>,
    sent: Vec<Field>,
}

impl AccountInput {
    /// No fields.
    pub fn new() -> Self {
        Self::default()
    }

    fn mark(&mut self, f: Field) {
        if !self.sent.contains(&f) {
            self.sent.push(f);
        }
    }

    /// Sets (`Some`) or clears (`None`) the username.
    pub fn set_username(&mut self, v: Option<String>) -> &mut Self {
        self.mark(Field::Username);
        self.username = Some(v);
        self
    }

    /// Sets or clears the e-mail address.
    pub fn set_email(&mut self, v: Option<String>) -> &mut Self {
        self.mark(Field::Email);
        self.email = Some(v);
        self
    }

    /// Sets or clears the primary phone number.
    pub fn set_phone(&mut self, v: Option<String>) -> &mut Self {
        self.mark(Field::Phone);
        self.phone = Some(v);
        self
    }

    /// Sets or clears a free-text profile field.
    pub fn set_text(&mut self, f: TextField, v: Option<String>) -> &mut Self {
        self.mark(Field::Text(f));
        self.text.retain(|(g, _)| *g != f);
        self.text.push((f, v));
        self
    }

    /// Sets (as `YYYY-MM-DD`) or clears the date of birth.
    pub fn set_birth_date(&mut self, v: Option<String>) -> &mut Self {
        self.mark(Field::BirthDate);
        self.birth_date = Some(v);
        self
    }

    /// Sets the newsletter flag.
    pub fn set_newsletter(&mut self, v: bool) -> &mut Self {
        self.mark(Field::Newsletter);
        self.newsletter = Some(v);
        self
    }

    /// Replaces or clears the metadata object.
    pub fn set_meta(&mut self, v: Option<Map<String, Value>>) -> &mut Self {
        self.mark(Field::Meta);
        self.meta = Some(v);
        self
    }

    /// Sets (`Some`) or removes (`None`) the value of the custom attribute `name`. Form
    /// clients may send every type as text; the attribute's type decides how it is read.
    pub fn set_attribute(&mut self, name: impl Into<String>, v: Option<Value>) -> &mut Self {
        let name = name.into();
        self.mark(Field::Attribute(name.clone()));
        self.attributes.retain(|(n, _)| *n != name);
        self.attributes.push((name, v));
        self
    }

    /// Replaces the account's roles with these, by name (admins only).
    pub fn set_roles(&mut self, names: Vec<String>) -> &mut Self {
        self.mark(Field::Roles);
        self.roles = Some(names);
        self
    }

    /// Sets the account's status (admins only).
    pub fn set_status(&mut self, v: UserStatus) -> &mut Self {
        self.mark(Field::Status);
        self.status = Some(v);
        self
    }

    /// Marks the e-mail address verified or not (admins only).
    pub fn set_email_verified(&mut self, v: bool) -> &mut Self {
        self.mark(Field::EmailVerified);
        self.email_verified = Some(v);
        self
    }

    /// Records a field the surface could not read (the wrong type on its wire, an unknown
    /// name): reported with every other problem of the request.
    pub fn reject(&mut self, f: Field, message: impl Into<String>) -> &mut Self {
        self.problems.add(f, message);
        self
    }

    /// Records a field that exists but that no caller may write here (an id, a timestamp, a
    /// password outside the password operations): the request is refused as not editable.
    pub fn refuse(&mut self, f: Field) -> &mut Self {
        if !self.refused.contains(&f) {
            self.refused.push(f);
        }
        self
    }

    /// The problems recorded by the surface so far.
    pub fn problems(&self) -> &FieldErrors {
        &self.problems
    }

    /// The fields that were sent, in the order they were first set.
    pub fn sent(&self) -> &[Field] {
        &self.sent
    }

    /// Whether the e-mail address was verified, as an admin says (`None`: not said).
    pub(crate) fn email_verified(&self) -> Option<bool> {
        self.email_verified
    }

    /// The account fields of an object in the canonical JSON form: identifiers and profile
    /// fields by name, `attributes` as an object, and the admin-only `roles`, `status` and
    /// `email_verified`. `null` (and, for text, an empty string) clears a field. Passwords are
    /// not account fields: a caller that takes one removes it first; one left here is refused.
    pub fn from_json(fields: Map<String, Value>) -> Self {
        let mut input = Self::new();
        for (name, value) in fields {
            input.set_json(name, value);
        }
        input
    }

    fn set_json(&mut self, name: String, value: Value) {
        let text = |v: Value| match v {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            _ => Err(()),
        };
        match name.as_str() {
            "username" | "email" | "phone" => {
                let field = match name.as_str() {
                    "username" => Field::Username,
                    "email" => Field::Email,
                    _ => Field::Phone,
                };
                match (text(value), &field) {
                    (Ok(v), Field::Username) => {
                        self.set_username(v);
                    }
                    (Ok(v), Field::Email) => {
                        self.set_email(v);
                    }
                    (Ok(v), _) => {
                        self.set_phone(v);
                    }
                    (Err(()), _) => {
                        self.reject(field, "must be a string or null");
                    }
                }
            }
            "attributes" => match value {
                Value::Object(attrs) => {
                    for (n, v) in attrs {
                        self.set_attribute(n, Some(v).filter(|v| !v.is_null()));
                    }
                }
                _ => {
                    self.reject(Field::Other(name), "must be an object of attribute names to values");
                }
            },
            "roles" => match value {
                Value::Null => {
                    self.set_roles(Vec::new());
                }
                Value::Array(a) => match a.into_iter().map(|v| v.as_str().map(str::to_owned)).collect() {
                    Some(names) => {
                        self.set_roles(names);
                    }
                    None => {
                        self.reject(Field::Roles, "must be a list of role names");
                    }
                },
                _ => {
                    self.reject(Field::Roles, "must be a list of role names");
                }
            },
            "status" => match value.as_str().and_then(UserStatus::parse) {
                Some(s) => {
                    self.set_status(s);
                }
                None => {
                    self.reject(Field::Status, "must be active, pending or disabled");
                }
            },
            "email_verified" => match value {
                Value::Bool(b) => {
                    self.set_email_verified(b);
                }
                _ => {
                    self.reject(Field::EmailVerified, "must be true or false");
                }
            },
            "birth_date" => match text(value) {
                Ok(v) => {
                    self.set_birth_date(v);
                }
                Err(()) => {
                    self.reject(Field::BirthDate, "must be a date (YYYY-MM-DD) or null");
                }
            },
            "newsletter" => match parse_flag(&value) {
                Some(b) => {
                    self.set_newsletter(b);
                }
                None => {
                    self.reject(Field::Newsletter, "must be true or false");
                }
            },
            "meta" => match value {
                Value::Null => {
                    self.set_meta(None);
                }
                Value::Object(m) => {
                    self.set_meta(Some(m));
                }
                _ => {
                    self.reject(Field::Meta, "must be a JSON object or null");
                }
            },
            "password" => {
                self.refuse(Field::Password);
            }
            n if is_profile_field(n) => {
                let Some(f) = TextField::from_name(n) else { return };
                match text(value) {
                    Ok(v) => {
                        self.set_text(f, v);
                    }
                    Err(()) => {
                        self.reject(Field::Text(f), "must be a string or null");
                    }
                }
            }
            n if READ_ONLY_FIELDS.contains(&n) => {
                self.refuse(Field::Other(name));
            }
            _ => {
                self.reject(Field::Other(name), "unknown field");
            }
        }
    }
}

/// Checked account fields. `None` means "not sent"; `Some(None)` means "clear".
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
    /// Role names to hold (admins only).
    pub roles: Option<Vec<String>>,
    /// New status (admins only).
    pub status: Option<UserStatus>,
}

/// Checks `input` for `editor`. Refuses fields the editor may not set with
/// [`CoreError::NotEditable`] (naming all of them); returns the valid changes together with
/// every other problem, so that callers can report them with their own checks at once.
pub fn parse_account_fields(
    input: AccountInput,
    defs: &[AttributeDefinition],
    editor: Editor,
) -> CoreResult<(AccountChanges, FieldErrors)> {
    let AccountInput {
        username,
        email,
        phone,
        text,
        birth_date,
        newsletter,
        meta,
        attributes,
        roles,
        status,
        email_verified,
        problems,
        mut refused,
        sent: _,
    } = input;
    if editor == Editor::User {
        for (f, set) in [
            (Field::Roles, roles.is_some()),
            (Field::Status, status.is_some()),
            (Field::EmailVerified, email_verified.is_some()),
        ] {
            if set || problems.get(&f).is_some() {
                refused.push(f);
            }
        }
    }
    let mut out = AccountChanges { roles, status, ..Default::default() };
    let mut errors = FieldErrors::new();
    for (name, v) in attributes {
        let field = Field::Attribute(name.clone());
        let Some(def) = defs.iter().find(|d| d.name == name) else {
            errors.add(field, "unknown attribute");
            continue;
        };
        if editor == Editor::User && !def.user_editable {
            refused.push(field);
            continue;
        }
        match v {
            None => out.attributes.push((def.clone(), None)),
            Some(v) => match def.kind.coerce(&v) {
                Ok(v) => out.attributes.push((def.clone(), Some(v))),
                Err(m) => errors.add(field, m),
            },
        }
    }
    if !refused.is_empty() {
        refused.sort_by_key(Field::name);
        refused.dedup();
        return Err(CoreError::NotEditable(refused));
    }
    errors.merge(problems);
    out.username = identifier(Field::Username, username, Username::parse, &mut errors);
    out.email = identifier(Field::Email, email, Email::parse, &mut errors);
    out.phone = identifier(Field::Phone, phone, Phone::parse, &mut errors);
    for (f, v) in text {
        match v.as_deref().map(|raw| check_text(f, raw)).transpose() {
            Ok(v) => out.profile.push(ProfileChange::Text(f, v.flatten())),
            Err(m) => errors.add(Field::Text(f), m),
        }
    }
    if let Some(v) = birth_date {
        match v.as_deref().map(check_birth_date).transpose() {
            Ok(d) => out.profile.push(ProfileChange::BirthDate(d.flatten())),
            Err(m) => errors.add(Field::BirthDate, m),
        }
    }
    if let Some(b) = newsletter {
        out.profile.push(ProfileChange::Newsletter(b));
    }
    if let Some(m) = meta {
        let m = m.unwrap_or_default();
        match check_meta(&m) {
            Ok(()) => out.profile.push(ProfileChange::Meta(m)),
            Err(why) => errors.add(Field::Meta, why),
        }
    }
    Ok((out, errors))
}

fn identifier<T>(
    field: Field,
    value: Option<Option<String>>,
    parse: fn(&str) -> Result<T, &'static str>,
    errors: &mut FieldErrors,
) -> Option<Option<T>> {
    match value? {
        None => Some(None),
        Some(s) if s.trim().is_empty() => Some(None),
        Some(s) => match parse(&s) {
            Ok(v) => Some(Some(v)),
            Err(m) => {
                errors.add(field, m);
                None
            }
        },
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
            errors.add(Field::Attribute(d.name.clone()), "is required");
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

    fn json_input(v: Value) -> AccountInput {
        AccountInput::from_json(v.as_object().cloned().unwrap())
    }

    #[test]
    fn users_cannot_set_protected_fields() {
        let input = json_input(json!({"status": "active", "roles": ["admin"], "attributes": {"plan": "gold"}}));
        match parse_account_fields(input, &defs(), Editor::User).unwrap_err() {
            CoreError::NotEditable(f) => {
                assert_eq!(f, vec![Field::Attribute("plan".into()), Field::Roles, Field::Status])
            }
            e => panic!("{e:?}"),
        }
        // Not even with a value that could not be read.
        let input = json_input(json!({"status": 7, "id": 3}));
        match parse_account_fields(input, &defs(), Editor::User).unwrap_err() {
            CoreError::NotEditable(f) => assert_eq!(f, vec![Field::Other("id".into()), Field::Status]),
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn unknown_and_invalid_fields_are_all_reported() {
        let input = json_input(json!({"email": "nope", "shoe_size": 44, "attributes": {"nope": 1}}));
        let (_, f) = parse_account_fields(input, &defs(), Editor::User).unwrap();
        assert_eq!(f.get(&Field::Email), Some("must be a valid e-mail address"));
        assert_eq!(f.get(&Field::Other("shoe_size".into())), Some("unknown field"));
        assert_eq!(f.get(&Field::Attribute("nope".into())), Some("unknown attribute"));
    }

    #[test]
    fn valid_fields_parse_and_required_attributes_are_checked() {
        let input =
            json_input(json!({"username": "ada", "email": null, "first_name": "Ada", "attributes": {"team": "core"}}));
        let (c, errors) = parse_account_fields(input, &defs(), Editor::User).unwrap();
        assert!(errors.is_empty());
        assert_eq!(c.username.as_ref().unwrap().as_ref().unwrap().as_str(), "ada");
        assert!(matches!(c.email, Some(None)));
        assert_eq!(c.profile.len(), 1);
        assert!(check_required_attributes(&c, &defs(), Editor::User).is_empty());
        let (none, _) = parse_account_fields(AccountInput::new(), &defs(), Editor::User).unwrap();
        assert_eq!(
            check_required_attributes(&none, &defs(), Editor::User).get(&Field::Attribute("team".into())),
            Some("is required")
        );
    }

    #[test]
    fn a_surface_fills_the_builder_with_its_own_names() {
        // As a form-encoded dialect would: every value arrives as text.
        let mut input = AccountInput::new();
        input
            .set_username(Some("grace".into()))
            .set_text(TextField::City, Some("Arlington".into()))
            .set_birth_date(Some("1906-12-09".into()))
            .set_attribute("team", Some(json!("navy")))
            .reject(Field::Other("attr:user:shoe".into()), "no such attribute");
        assert_eq!(input.sent().len(), 4);
        let (c, errors) = parse_account_fields(input, &defs(), Editor::User).unwrap();
        assert_eq!(errors.iter().count(), 1, "the surface's own problem comes back under its own name");
        assert_eq!(errors.get(&Field::Other("attr:user:shoe".into())), Some("no such attribute"));
        assert_eq!(c.profile.len(), 2);
        assert_eq!(c.attributes.len(), 1);
    }
}
