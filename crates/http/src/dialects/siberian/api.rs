//! The account calls: `create`, `update`, `exist`, `authenticate`, `forgotpassword`. Each reads
//! its parameters from the body (a form, url-encoded or multipart, or a JSON object), calls the
//! core as the server whose key it presented, and answers in Siberian's shape. Only the fields
//! the document names are read (`role_id`, `email`, `password`, `firstname`, `lastname`,
//! `user_id`), plus two Portcullis additions for `authenticate` and `forgotpassword`
//! (`second_factor`, `client_ip`); anything else a client sends (`api_version`...) is ignored
//! and never stored.

use std::net::IpAddr;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::Uri;
use portcullis_core::login::VerifyCredentials;
use portcullis_core::mail::tenant_base_url;
use portcullis_core::profile::TextField;
use portcullis_core::{AccountInput, ClientInfo, CoreError, Password, TenantId, UserId};

use super::caller::ApiCall;
use super::wire::{
    BAD_CLIENT_IP, Done, EMAIL_MISSING, EMAIL_REQUIRED, Exists, Failure, NO_SUCH_ADMIN, NO_SUCH_ROLE, NOT_AN_UPDATE,
    PASSWORD_REQUIRED, ROLE_ID_NOT_A_NUMBER, USER_ID_REQUIRED, Updated, WithToken,
};
use crate::shared::AppState;
use crate::shared::params::{self, BodyFormats, Params};

/// The bodies Siberian's clients send: forms (as PHP's `$_POST` reads them) and JSON.
const FORMATS: BodyFormats = BodyFormats { form: true, multipart: true, json: true, json_whatever_type: false };

/// The profile fields Siberian sets, by their names on its wire.
const NAMES: [(&str, TextField); 2] = [("firstname", TextField::FirstName), ("lastname", TextField::LastName)];

/// The role a new account gets when `create` names none.
const DEFAULT_ROLE_ID: i64 = 1;

/// The parameters of a call: its body only. Siberian read `$_POST`, never the query string;
/// so does this, and no password is ever taken from a URL.
async fn body_params(req: Request) -> Result<Params, Failure> {
    let (mut parts, body) = req.into_parts();
    if let Ok(path_only) = Uri::builder().path_and_query(parts.uri.path()).build() {
        parts.uri = path_only;
    }
    Ok(params::read(Request::from_parts(parts, body), FORMATS).await?)
}

/// `POST {prefix}/create` (`users:manage`): a new account with `email`, an optional
/// `password`, `firstname`, `lastname` and the role `role_id` names (1 by default); answers
/// its id and a one-time log-in token.
pub(super) async fn create(
    State(st): State<AppState>,
    call: ApiCall,
    req: Request,
) -> Result<Json<WithToken>, Failure> {
    let p = body_params(req).await?;
    if p.non_empty("user_id").is_some() {
        return Err(Failure::new(NOT_AN_UPDATE));
    }
    let email = p.non_empty("email").ok_or_else(|| Failure::new(EMAIL_REQUIRED))?;
    let base = autologin_base(&st, call.tenant).await?;
    let mut account = AccountInput::new();
    account.set_email(Some(email.to_owned()));
    for (name, field) in NAMES {
        if let Some(v) = p.non_empty(name) {
            account.set_text(field, Some(v.to_owned()));
        }
    }
    if let Some(role) = role_name(&st, &call, p.get("role_id"), Some(DEFAULT_ROLE_ID)).await? {
        account.set_roles(vec![role]);
    }
    let password = p.get("password").map(Password::new);
    let user = st.core.create_user(&call.caller, call.tenant, account, password).await?;
    let token = match st.core.issue_login_token(&call.caller, call.tenant, user.id).await {
        Ok(issued) => Some(issued.token),
        // The tenant lets the account in only once its address is verified: the account
        // exists, and the answer says so, without a token it could not use.
        Err(CoreError::EmailNotVerified | CoreError::AccountDisabled) => None,
        Err(e) => {
            tracing::warn!(error = %e, user = %user.id, "an account was created, but no log-in token could be issued");
            None
        }
    };
    let email = user.email.as_deref().unwrap_or(email);
    Ok(Json(WithToken {
        success: 1,
        user_id: user.id.0,
        redirect_url: token.as_ref().map(|t| base.url(email, t.expose())),
        token: token.map(|t| t.expose().to_owned()),
    }))
}

/// `POST {prefix}/update` (`users:manage`): changes the account `user_id` names — `email`,
/// `password` (every session of the user ends), `firstname`, `lastname`, and its role when
/// `role_id` is sent (left alone otherwise).
pub(super) async fn update(State(st): State<AppState>, call: ApiCall, req: Request) -> Result<Json<Updated>, Failure> {
    let p = body_params(req).await?;
    let id = p.non_empty("user_id").ok_or_else(|| Failure::new(USER_ID_REQUIRED))?;
    // A user_id that is not a number names nobody.
    let id = id.parse::<i64>().map(UserId).map_err(|_| Failure::new(NO_SUCH_ADMIN))?;
    let mut account = AccountInput::new();
    if let Some(email) = p.non_empty("email") {
        account.set_email(Some(email.to_owned()));
    }
    for (name, field) in NAMES {
        if p.has(name) {
            account.set_text(field, p.non_empty(name).map(str::to_owned));
        }
    }
    if let Some(role) = role_name(&st, &call, p.get("role_id"), None).await? {
        account.set_roles(vec![role]);
    }
    // Forms send an empty field for a password left blank: no password is set then.
    let password = p.get("password").filter(|v| !v.is_empty()).map(Password::new);
    let user = st.core.update_user(&call.caller, call.tenant, id, account, password).await.map_err(|e| match e {
        CoreError::NotFound => Failure::new(NO_SUCH_ADMIN),
        e => Failure::from(e),
    })?;
    Ok(Json(Updated { success: 1, user_id: user.id.0 }))
}

/// `POST {prefix}/exist` (`users:read`): whether an account has the address `email`.
pub(super) async fn exist(State(st): State<AppState>, call: ApiCall, req: Request) -> Result<Json<Exists>, Failure> {
    let p = body_params(req).await?;
    let email = p.non_empty("email").ok_or_else(|| Failure::new(EMAIL_REQUIRED))?;
    let exists = st.core.identifier_exists(&call.caller, call.tenant, [None, None, Some(email), None]).await?;
    Ok(Json(Exists { success: 1, exists }))
}

/// `POST {prefix}/authenticate` (`credentials:verify`): checks `email` and `password` (and
/// `second_factor`, the code of an account that has one); answers the user's id and a one-time
/// log-in token. Every failure before the password is known to be right is one answer.
pub(super) async fn authenticate(
    State(st): State<AppState>,
    call: ApiCall,
    req: Request,
) -> Result<Json<WithToken>, Failure> {
    let p = body_params(req).await?;
    let email = p.non_empty("email").ok_or_else(|| Failure::new(EMAIL_REQUIRED))?;
    let password = p.get("password").filter(|v| !v.is_empty()).ok_or_else(|| Failure::new(PASSWORD_REQUIRED))?;
    let base = autologin_base(&st, call.tenant).await?;
    let cmd = VerifyCredentials {
        email: Some(email.to_owned()),
        password: Some(Password::new(password)),
        end_user_ip: p.non_empty("client_ip").map(str::to_owned),
        second_factor: p.non_empty("second_factor").map(str::to_owned),
        ..VerifyCredentials::default()
    };
    let (user, issued) = st.core.verify_credentials_for_login_token(&call.caller, call.tenant, cmd).await?;
    let email = user.email.as_deref().unwrap_or(email);
    Ok(Json(WithToken {
        success: 1,
        user_id: user.id.0,
        redirect_url: Some(base.url(email, issued.token.expose())),
        token: Some(issued.token.expose().to_owned()),
    }))
}

/// `POST {prefix}/forgotpassword` (`credentials:verify`): mails a link to set a new password
/// to the account with the address `email`, if there is one; the same answer either way.
pub(super) async fn forgot_password(
    State(st): State<AppState>,
    call: ApiCall,
    req: Request,
) -> Result<Json<Done>, Failure> {
    let p = body_params(req).await?;
    let email = p.non_empty("email").ok_or_else(|| Failure::new(EMAIL_MISSING))?;
    let end_user = match p.non_empty("client_ip") {
        Some(ip) => {
            let ip: IpAddr = ip.parse().map_err(|_| Failure::new(BAD_CLIENT_IP))?;
            ClientInfo { ip: Some(ip), user_agent: None, surface: call.client.info.surface }
        }
        None => call.client.info.clone(),
    };
    st.core.request_password_reset_as(&call.caller, call.tenant, email, &end_user).await?;
    Ok(Json(Done { success: 1 }))
}

/// The name of the tenant's role that `role_id` names (`default` when it is not sent); `None`
/// for no role. A role id that is sent must name a role of the tenant; the default need not.
async fn role_name(
    st: &AppState,
    call: &ApiCall,
    sent: Option<&str>,
    default: Option<i64>,
) -> Result<Option<String>, Failure> {
    let sent = match sent.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => Some(v.parse::<i64>().map_err(|_| Failure::new(ROLE_ID_NOT_A_NUMBER))?),
        None => None,
    };
    let Some(wanted) = sent.or(default) else { return Ok(None) };
    let roles = st.core.list_roles(&call.caller, call.tenant).await?;
    match roles.into_iter().find(|r| r.id.0 == wanted) {
        Some(r) => Ok(Some(r.name)),
        None if sent.is_some() => Err(Failure::new(NO_SUCH_ROLE)),
        None => Ok(None),
    }
}

/// Where a tenant's automatic log-ins are: `{public address}{prefix}/autologin`.
#[derive(Debug)]
struct AutologinBase(String);

impl AutologinBase {
    /// The address that logs the holder of `token` in through the browser. The token travels
    /// in it by Siberian's design; it is single-use and short-lived.
    fn url(&self, email: &str, token: &str) -> String {
        let query = serde_urlencoded::to_string([("email", email), ("token", token)]).unwrap_or_default();
        format!("{}?{query}", self.0)
    }
}

async fn autologin_base(st: &AppState, tenant: TenantId) -> Result<AutologinBase, Failure> {
    let (t, policy) = st.core.tenant_policy(tenant).await?;
    let prefix = st.config.dialect_paths.siberian.trim_end_matches('/');
    Ok(AutologinBase(format!("{}{prefix}/autologin", tenant_base_url(&t, &policy))))
}
