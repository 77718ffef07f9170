//! The account page: profile, e-mail address, password, sessions, the second factor, and
//! deleting the account. Each form posts to its own path and comes back to the page (303)
//! with a notice, or re-renders it with the form's errors.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::RawQuery;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use minijinja::{Value, context};
use portcullis_core::auth::AuthSession;
use portcullis_core::model::{AttributeDefinition, AttributeKind, Session, User};
use portcullis_core::profile::TextField;
use portcullis_core::totp::{Proof, RecoveryCodes};
use portcullis_core::{AccountInput, CoreError, Password, SessionId, Timestamp};
use serde_json::json;

use super::render::{Form, Page, field_errors};
use crate::shared::AppState;
use crate::shared::cookies::set_session_cookie;
use crate::shared::qr;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui/account", get(account_page))
        .route("/ui/account/profile", post(profile))
        .route("/ui/account/email", post(email))
        .route("/ui/account/verification", post(resend_verification))
        .route("/ui/account/password", post(password))
        .route("/ui/account/sessions/revoke", post(revoke_session))
        .route("/ui/account/sessions/end-all", post(end_all_sessions))
        .route("/ui/account/totp", post(begin_totp))
        .route("/ui/account/totp/confirm", post(confirm_totp))
        .route("/ui/account/totp/disable", post(disable_totp))
        .route("/ui/account/recovery-codes", post(recovery_codes))
        .route("/ui/account/delete", post(delete))
}

/// The profile fields the account page offers (besides username and phone).
const PROFILE_FIELDS: [TextField; 3] = [TextField::FirstName, TextField::LastName, TextField::DisplayName];

/// The log-in page, coming back to the account page after.
fn to_login(page: &Page) -> Response {
    let back = page.path("/ui/account");
    page.redirect(&format!("{}?return_to={}", page.path("/ui/login"), urlencode(&back)))
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)]).map(|e| e.trim_start_matches('=').to_owned()).unwrap_or_default()
}

/// How a form failed, for [`render_account`].
#[derive(Debug, Default)]
struct Failed {
    section: &'static str,
    errors: BTreeMap<String, String>,
    values: BTreeMap<String, String>,
    alert: Option<String>,
}

async fn account_page(page: Page, RawQuery(q): RawQuery) -> Response {
    let Some(auth) = page.session.clone() else { return to_login(&page) };
    let notice = super::render::param(q.as_deref(), "done").and_then(|d| notice_for(&d));
    render_account(&page, &auth, StatusCode::OK, Failed::default(), notice).await
}

fn notice_for(done: &str) -> Option<String> {
    Some(
        match done {
            "profile" => "Your profile is saved.",
            "email" => "We sent a confirmation link to the new address. It becomes your address once you follow it.",
            "verification" => "A new confirmation link is on its way.",
            "password" => "Your password is changed. Every other session has ended.",
            "session" => "That session has ended.",
            "second_factor_off" => "Two-step log-in is off.",
            _ => return None,
        }
        .to_owned(),
    )
}

async fn render_account(
    page: &Page,
    auth: &AuthSession,
    status: StatusCode,
    failed: Failed,
    notice: Option<String>,
) -> Response {
    let core = &page.st.core;
    let loaded = async {
        let user = core.me(auth).await?;
        let sessions = core.list_sessions(auth).await?;
        let second = core.second_factor_status(auth).await?;
        let form = core.account_form(page.tenant_id).await?;
        let has_password = core.has_own_password(auth).await?;
        Ok::<_, CoreError>((user, sessions, second, form, has_password))
    }
    .await;
    let (user, sessions, second, form, has_password) = match loaded {
        Ok(x) => x,
        Err(CoreError::Unauthenticated) => return page.redirect(&page.path("/ui/login")),
        Err(e) => {
            let (status, message) = page.problem(&e);
            return page.message(status, "Your account", &[&message], None);
        }
    };
    let mut values = current_values(&user);
    values.extend(failed.values);
    let attributes = attribute_fields(&form.attributes, &values);
    let sessions: Vec<Value> = sessions.iter().map(|s| session_row(s, auth.session.id)).collect();
    let ctx = context! {
        title => "Your account",
        wide => true,
        notice,
        user => context! {
            label => user.username.clone().or_else(|| user.email.clone()).or_else(|| user.phone.clone()).unwrap_or_default(),
            email => user.email.clone(),
            email_verified => user.email_verified_at.is_some(),
            pending_email => user.pending_email.clone(),
        },
        form => context! { require_username => form.require_username, require_phone => form.require_phone },
        attributes,
        values,
        errors => failed.errors,
        section => failed.section,
        alert_here => failed.alert,
        sessions,
        second_factor => context! { enabled => second.enabled, recovery_codes_left => second.recovery_codes_left },
        has_password,
        min_length => page.policy.password_min_length,
    };
    page.render(status, "account.html", ctx)
}

/// The form's values from the user as stored.
fn current_values(u: &User) -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    v.insert("username".into(), u.username.clone().unwrap_or_default());
    v.insert("phone".into(), u.phone.clone().unwrap_or_default());
    for f in PROFILE_FIELDS {
        v.insert(f.name().into(), u.profile.text(f).unwrap_or_default().to_owned());
    }
    for (name, value) in &u.attributes {
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        };
        v.insert(format!("attributes.{name}"), text);
    }
    v
}

fn session_row(s: &Session, current: SessionId) -> Value {
    context! {
        id => s.id.0,
        current => s.id == current,
        device => device(s.user_agent.as_deref()),
        ip => s.ip.map(|ip| ip.to_string()),
        created => when(s.created_at),
        last_seen => when(s.last_seen_at),
    }
}

/// A short name for the browser of a user agent.
fn device(ua: Option<&str>) -> String {
    let Some(ua) = ua.filter(|u| !u.is_empty()) else { return "Unknown device".into() };
    let browser = ["Edg/", "Firefox/", "Chrome/", "Safari/"].iter().find(|b| ua.contains(*b)).map(|b| match *b {
        "Edg/" => "Edge",
        "Firefox/" => "Firefox",
        "Chrome/" => "Chrome",
        _ => "Safari",
    });
    let os = [
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(k, _)| ua.contains(k))
    .map(|(_, v)| *v);
    match (browser, os) {
        (Some(b), Some(o)) => format!("{b} on {o}"),
        (Some(b), None) => b.to_owned(),
        _ => ua.chars().take(60).collect(),
    }
}

fn when(t: Timestamp) -> String {
    let d = t.to_offset_date_time();
    format!("{:04}-{:02}-{:02} {:02}:{:02} UTC", d.year(), u8::from(d.month()), d.day(), d.hour(), d.minute())
}

/// The custom attributes as form fields (`attributes.NAME`).
pub(super) fn attribute_fields(defs: &[AttributeDefinition], values: &BTreeMap<String, String>) -> Vec<Value> {
    defs.iter()
        .map(|d| {
            let field = format!("attributes.{}", d.name);
            let (input, inputmode) = match d.kind {
                AttributeKind::Integer => ("text", "numeric"),
                AttributeKind::Number => ("text", "decimal"),
                AttributeKind::Date => ("date", ""),
                AttributeKind::Boolean | AttributeKind::String => ("text", ""),
            };
            context! {
                value => values.get(&field).cloned().unwrap_or_default(),
                field,
                label => label_of(&d.name),
                kind => d.kind.as_str(),
                input,
                inputmode,
                required => d.required,
            }
        })
        .collect()
}

/// `favourite_colour` → `Favourite colour`.
fn label_of(name: &str) -> String {
    let spaced = name.replace(['_', '-', '.'], " ");
    let mut c = spaced.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// Puts the custom attributes of a form into an account change. A blank field is left out at
/// sign-up and cleared on the account page; a checkbox is true when ticked.
pub(super) fn set_attributes(account: &mut AccountInput, defs: &[AttributeDefinition], form: &Form, editing: bool) {
    for d in defs {
        let field = format!("attributes.{}", d.name);
        let raw = form.get(&field).map(str::trim);
        let value = match (d.kind, raw) {
            (AttributeKind::Boolean, v) => Some(json!(v.is_some())),
            (_, None) if editing => None,
            (_, None) => continue,
            (AttributeKind::Integer, Some(v)) => Some(v.parse::<i64>().map(|n| json!(n)).unwrap_or_else(|_| json!(v))),
            (AttributeKind::Number, Some(v)) => Some(v.parse::<f64>().map(|n| json!(n)).unwrap_or_else(|_| json!(v))),
            (_, Some(v)) => Some(json!(v)),
        };
        account.set_attribute(d.name.clone(), value);
    }
}

/// Runs an account action: on success, back to the page with a notice; on failure, the page
/// again with the form's errors.
async fn finish(
    page: &Page,
    auth: &AuthSession,
    section: &'static str,
    form: &Form,
    result: Result<&str, CoreError>,
) -> Response {
    match result {
        Ok(done) => page.redirect(&format!("{}?done={done}#{}", page.path("/ui/account"), section.replace('_', "-"))),
        Err(CoreError::Unauthenticated) => page.redirect(&page.path("/ui/login")),
        Err(e) => {
            let (status, message) = page.problem(&e);
            let errors = field_errors(&e, &rename_for(section));
            let alert = Some(message);
            let values = if section == "profile" || section == "email" { form.values() } else { BTreeMap::new() };
            render_account(page, auth, status, Failed { section, errors, values, alert }, None).await
        }
    }
}

/// The core's field names as this page's forms name them.
fn rename_for(section: &str) -> Vec<(&'static str, &'static str)> {
    match section {
        "second_factor" => vec![("password", "totp_password"), ("current_password", "totp_password")],
        "email" => vec![("current_password", "email_password"), ("code", "email_password")],
        "delete" => {
            vec![("password", "delete_password"), ("current_password", "delete_password"), ("code", "delete_password")]
        }
        _ => Vec::new(),
    }
}

async fn profile(page: Page, form: Form) -> Response {
    let Some(auth) = page.session.clone() else { return to_login(&page) };
    let defs = match page.st.core.account_form(page.tenant_id).await {
        Ok(f) => f.attributes,
        Err(e) => return finish(&page, &auth, "profile", &form, Err(e)).await,
    };
    let text = |n: &str| form.get(n).map(|v| v.trim().to_owned());
    let mut account = AccountInput::new();
    account.set_username(text("username")).set_phone(text("phone"));
    for f in PROFILE_FIELDS {
        account.set_text(f, text(f.name()));
    }
    set_attributes(&mut account, &defs, &form, true);
    let result = page.st.core.update_me(&auth, account, None).await.map(|_| "profile");
    finish(&page, &auth, "profile", &form, result).await
}

async fn email(page: Page, form: Form) -> Response {
    let Some(auth) = page.session.clone() else { return to_login(&page) };
    let mut account = AccountInput::new();
    match form.get("email") {
        Some(e) => {
            account.set_email(Some(e.trim().to_owned()));
        }
        None => {
            account.reject(portcullis_core::Field::Email, "is required");
        }
    }
    let proof = form.raw("email_password").filter(|p| !p.is_empty()).map(proof_of);
    let result = page.st.core.update_me(&auth, account, proof).await.map(|_| "email");
    finish(&page, &auth, "email", &form, result).await
}

async fn resend_verification(page: Page, form: Form) -> Response {
    let Some(auth) = page.session.clone() else { return to_login(&page) };
    let result = page.st.core.resend_verification(&auth).await.map(|()| "verification");
    finish(&page, &auth, "email", &form, result).await
}

async fn password(page: Page, form: Form) -> Response {
    let Some(auth) = page.session.clone() else { return to_login(&page) };
    let pw = |n: &str| Password::new(form.raw(n).unwrap_or_default());
    let confirmation = form.raw("new_password_confirmation").map(Password::new);
    let result = page
        .st
        .core
        .change_password(&auth, pw("current_password"), pw("new_password"), confirmation)
        .await
        .map(|()| "password");
    let result = result.map_err(|e| match e {
        CoreError::PasswordIncorrect => CoreError::field(portcullis_core::Field::CurrentPassword, "is wrong"),
        other => other,
    });
    finish(&page, &auth, "password", &form, result).await
}

async fn revoke_session(page: Page, form: Form) -> Response {
    let Some(auth) = page.session.clone() else { return to_login(&page) };
    let id = form.get("id").and_then(|i| i.parse::<i64>().ok()).unwrap_or(0);
    let result = page.st.core.revoke_session(&auth, SessionId(id)).await.map(|()| "session");
    finish(&page, &auth, "sessions", &form, result).await
}

async fn end_all_sessions(page: Page, form: Form) -> Response {
    let Some(auth) = page.session.clone() else { return to_login(&page) };
    match page.st.core.logout_all(&auth).await {
        Ok(_) => {
            let mut res = page.message(
                StatusCode::OK,
                "Logged out everywhere",
                &["Every session of your account has ended, this one included."],
                Some(("Log in", page.path("/ui/login"))),
            );
            set_session_cookie(&page.st, &page.client, &mut res, None);
            res
        }
        Err(e) => finish(&page, &auth, "sessions", &form, Err(e)).await,
    }
}

/// A proof typed into one box: a code when it has a code's shape, else the password.
fn proof_of(text: &str) -> Proof {
    let compact: String = text.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
    let code_like = (compact.len() == 6 && compact.bytes().all(|b| b.is_ascii_digit()))
        || (compact.len() == 16 && compact.bytes().all(|b| b.is_ascii_alphanumeric()) && text.contains('-'));
    if code_like { Proof::Code(text.to_owned()) } else { Proof::Password(Password::new(text)) }
}

async fn begin_totp(page: Page, form: Form) -> Response {
    let Some(auth) = page.session.clone() else { return to_login(&page) };
    let password = form.raw("totp_password").filter(|p| !p.is_empty()).map(Password::new);
    match page.st.core.begin_totp(&auth, password).await {
        Ok(e) => enrol_page(&page, StatusCode::OK, &e.secret, &e.uri, None),
        Err(CoreError::PasswordIncorrect) => {
            let e = CoreError::field(portcullis_core::Field::Password, "is wrong");
            finish(&page, &auth, "second_factor", &form, Err(e)).await
        }
        Err(e) => finish(&page, &auth, "second_factor", &form, Err(e)).await,
    }
}

fn enrol_page(page: &Page, status: StatusCode, secret: &str, uri: &str, error: Option<String>) -> Response {
    let Some(qr) = qr::svg_data_url(uri) else {
        return page.message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Set up an authenticator app",
            &["Something went wrong on our side."],
            None,
        );
    };
    let errors: BTreeMap<String, String> = error.into_iter().map(|e| ("code".to_owned(), e)).collect();
    let ctx = context! { title => "Set up an authenticator app", qr, secret, uri, errors };
    page.render(status, "totp_enrol.html", ctx)
}

async fn confirm_totp(page: Page, form: Form) -> Response {
    let Some(auth) = page.session.clone() else { return to_login(&page) };
    let code = form.get("code").unwrap_or_default().to_owned();
    match page.st.core.confirm_totp(&auth, &code).await {
        Ok(codes) => codes_page(&page, &codes),
        Err(e) => {
            // The enrolment is still waiting: show it again, with the secret the form carried.
            let (secret, uri) = (form.get("secret").unwrap_or_default(), form.get("uri").unwrap_or_default());
            let (status, message) = page.problem(&e);
            let message = field_errors(&e, &[]).into_values().next().unwrap_or(message);
            if secret.is_empty() || !uri.starts_with("otpauth://") {
                return finish(&page, &auth, "second_factor", &form, Err(e)).await;
            }
            enrol_page(&page, status, secret, uri, Some(message))
        }
    }
}

fn codes_page(page: &Page, codes: &RecoveryCodes) -> Response {
    let codes: Vec<String> = codes.0.iter().map(|c| c.to_string()).collect();
    page.render(StatusCode::OK, "recovery_codes.html", context! { title => "Your recovery codes", codes })
}

async fn disable_totp(page: Page, form: Form) -> Response {
    let Some(auth) = page.session.clone() else { return to_login(&page) };
    let text = form.raw("disable_password").unwrap_or_default();
    let result = if text.is_empty() {
        Err(CoreError::field(portcullis_core::Field::Param("disable_password"), "is required"))
    } else {
        page.st.core.disable_totp(&auth, proof_of(text)).await.map(|()| "second_factor_off")
    };
    let result = result.map_err(|e| match e {
        CoreError::PasswordIncorrect | CoreError::SecondFactorInvalid => {
            CoreError::field(portcullis_core::Field::Param("disable_password"), "is wrong")
        }
        CoreError::Validation(_) => CoreError::field(portcullis_core::Field::Param("disable_password"), "is wrong"),
        other => other,
    });
    finish(&page, &auth, "second_factor", &form, result).await
}

async fn recovery_codes(page: Page, form: Form) -> Response {
    let Some(auth) = page.session.clone() else { return to_login(&page) };
    let text = form.raw("codes_password").unwrap_or_default();
    if text.is_empty() {
        let e = CoreError::field(portcullis_core::Field::Param("codes_password"), "is required");
        return finish(&page, &auth, "second_factor", &form, Err(e)).await;
    }
    match page.st.core.regenerate_recovery_codes(&auth, proof_of(text)).await {
        Ok(codes) => codes_page(&page, &codes),
        Err(CoreError::PasswordIncorrect | CoreError::SecondFactorInvalid | CoreError::Validation(_)) => {
            let e = CoreError::field(portcullis_core::Field::Param("codes_password"), "is wrong");
            finish(&page, &auth, "second_factor", &form, Err(e)).await
        }
        Err(e) => finish(&page, &auth, "second_factor", &form, Err(e)).await,
    }
}

async fn delete(page: Page, form: Form) -> Response {
    let Some(auth) = page.session.clone() else { return to_login(&page) };
    let proof = form.raw("delete_password").filter(|p| !p.is_empty()).map(proof_of);
    match page.st.core.delete_me(&auth, proof).await {
        Ok(()) => {
            let mut res = page.message(
                StatusCode::OK,
                "Account deleted",
                &["Your account and everything in it are deleted."],
                None,
            );
            set_session_cookie(&page.st, &page.client, &mut res, None);
            res
        }
        Err(CoreError::PasswordIncorrect) => {
            let e = CoreError::field(portcullis_core::Field::Param("delete_password"), "is wrong");
            finish(&page, &auth, "delete", &form, Err(e)).await
        }
        Err(e) => finish(&page, &auth, "delete", &form, Err(e)).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_named_briefly() {
        let chrome =
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
        assert_eq!(device(Some(chrome)), "Chrome on Linux");
        assert_eq!(device(None), "Unknown device");
        assert_eq!(device(Some("curl/8.0")), "curl/8.0");
    }

    #[test]
    fn a_code_shaped_proof_is_a_code() {
        assert!(matches!(proof_of("123 456"), Proof::Code(_)));
        assert!(matches!(proof_of("ABCD-EFGH-IJKL-MNOP"), Proof::Code(_)));
        assert!(matches!(proof_of("correct horse battery staple"), Proof::Password(_)));
        assert_eq!(label_of("favourite_colour"), "Favourite colour");
    }
}
