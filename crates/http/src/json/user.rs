//! The user as the JSON API shows it, and its OpenAPI schema. The user object is flat: every
//! profile field sits beside the identifiers, exactly as clients send them. Its schema is built
//! from the core's field table so the document cannot drift from the code.

use std::borrow::Cow;

use portcullis_core::model::User;
use portcullis_core::profile::{TextField, TextKind};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::{PartialSchema, ToSchema};

/// The JSON form of a user.
pub fn user_json(u: &User) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(u.id.0));
    m.insert("username".into(), json!(u.username));
    m.insert("email".into(), json!(u.email));
    m.insert("email_verified".into(), json!(u.email_verified_at.is_some()));
    m.insert("pending_email".into(), json!(u.pending_email));
    m.insert("phone".into(), json!(u.phone));
    m.insert("phone_verified".into(), json!(u.phone_verified_at.is_some()));
    m.insert("status".into(), json!(u.status.as_str()));
    m.insert("second_factor".into(), json!(u.second_factor));
    m.insert("avatar_version".into(), json!(u.avatar_version));
    m.insert("roles".into(), json!(u.roles));
    m.insert("attributes".into(), json!(u.attributes));
    for f in TextField::ALL {
        m.insert(f.name().into(), json!(u.profile.text(*f)));
    }
    let birth = u.profile.birth_date.map(|d| format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()));
    m.insert("birth_date".into(), json!(birth));
    m.insert("newsletter".into(), json!(u.profile.newsletter));
    m.insert("meta".into(), Value::Object(u.profile.meta.clone()));
    m.insert("created_at".into(), json!(u.created_at));
    m.insert("updated_at".into(), json!(u.updated_at));
    m.insert("last_login_at".into(), json!(u.last_login_at));
    m.insert("password_changed_at".into(), json!(u.password_changed_at));
    Value::Object(m)
}

/// A user, as the native API shows it.
#[derive(Debug)]
pub struct UserBody;

pub(crate) fn nullable(t: Type) -> SchemaType {
    SchemaType::from_iter([t, Type::Null])
}

fn string_field(kind: TextKind, max: usize, nullable_: bool) -> ObjectBuilder {
    let ty = if nullable_ { nullable(Type::String) } else { SchemaType::new(Type::String) };
    let b = ObjectBuilder::new().schema_type(ty).max_length(Some(max));
    match kind {
        TextKind::Url => b.description(Some("An http or https URL.")),
        TextKind::Email => b.format(Some(SchemaFormat::KnownFormat(KnownFormat::Email))),
        _ => b,
    }
}

/// Adds every profile field to an object schema.
pub(crate) fn with_profile(mut b: ObjectBuilder) -> ObjectBuilder {
    for f in TextField::ALL {
        b = b.property(f.name(), string_field(f.kind(), f.max_chars(), true));
    }
    b.property(
        "birth_date",
        ObjectBuilder::new()
            .schema_type(nullable(Type::String))
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date))),
    )
    .property("newsletter", ObjectBuilder::new().schema_type(Type::Boolean))
    .property(
        "meta",
        ObjectBuilder::new()
            .schema_type(nullable(Type::Object))
            .description(Some("Free-form metadata (a JSON object, at most 16 KiB).")),
    )
}

pub(crate) fn attributes_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::FreeForm(true)))
        .description(Some("Custom attributes by name; their types are defined per tenant."))
}

fn timestamp(nullable_: bool) -> ObjectBuilder {
    let ty = if nullable_ { nullable(Type::String) } else { SchemaType::new(Type::String) };
    ObjectBuilder::new().schema_type(ty).format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
}

impl PartialSchema for UserBody {
    fn schema() -> RefOr<Schema> {
        let b = ObjectBuilder::new()
            .property(
                "id",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64))),
            )
            .property("username", ObjectBuilder::new().schema_type(nullable(Type::String)))
            .property(
                "email",
                ObjectBuilder::new()
                    .schema_type(nullable(Type::String))
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email))),
            )
            .property("email_verified", ObjectBuilder::new().schema_type(Type::Boolean))
            .property(
                "pending_email",
                ObjectBuilder::new()
                    .schema_type(nullable(Type::String))
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
                    .description(Some(
                        "A new address waiting for its verification; `email` stays the login until then.",
                    )),
            )
            .property("phone", ObjectBuilder::new().schema_type(nullable(Type::String)))
            .property("phone_verified", ObjectBuilder::new().schema_type(Type::Boolean))
            .property(
                "status",
                ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["active", "pending", "disabled"])),
            )
            .property(
                "second_factor",
                ObjectBuilder::new()
                    .schema_type(Type::Boolean)
                    .description(Some("Whether log-ins ask for a second factor (a confirmed authenticator).")),
            )
            .property(
                "avatar_version",
                ObjectBuilder::new().schema_type(nullable(Type::String)).description(Some(
                    "The version of the user's picture, served at /avatars/{id}/{size}/{version}.jpeg; null: a generated picture, at /avatars/{id}/{size}/default.jpeg.",
                )),
            )
            .property("roles", ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::String)))
            .property("attributes", attributes_schema());
        let b = with_profile(b)
            .property("created_at", timestamp(false))
            .property("updated_at", timestamp(false))
            .property("last_login_at", timestamp(true))
            .property("password_changed_at", timestamp(true));
        let required = [
            "id",
            "username",
            "email",
            "email_verified",
            "pending_email",
            "phone",
            "phone_verified",
            "status",
            "second_factor",
            "roles",
            "attributes",
            "created_at",
            "updated_at",
        ];
        RefOr::T(Schema::Object(required.into_iter().fold(b, |b, r| b.required(r)).build()))
    }
}

impl ToSchema for UserBody {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("User")
    }
}

/// Answer of `GET /v1/me` and `PATCH /v1/me`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeResponse {
    /// The account.
    #[schema(value_type = UserBody)]
    pub user: Value,
}
