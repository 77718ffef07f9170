//! The five calls of the buddycloud accounts API. Each reads its wire, finds the tenant the
//! identifier names ([`super::identity`]), calls one core operation and answers
//! ([`super::reply`]). Credentials come as HTTP Basic with every call: the core proves them
//! each time without opening a session (`prove_password` and the `_proven` operations), with
//! the log-in's limits, its cost for unknown accounts and its second factor.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use portcullis_core::accounts::SignupCommand;
use portcullis_core::login::LoginCommand;
use portcullis_core::{AccountInput, Password, TenantId};

use super::identity::{Foreign, Jid, Named, Resolved, resolve, served};
use super::reply::Reply;
use crate::shared::credentials::{Authorization, BasicCredentials, authorization};
use crate::shared::params::{self, BodyFormats, Params};
use crate::shared::{AppState, Client, CurrentTenant};

/// `GET /`: checks the credentials sent as HTTP Basic. Valid: the tenant's success status
/// (200 by default, 204 as the original answered). Anonymous: the same success, as the
/// original's API root was open to anyone. Anything else: 401 with the Basic challenge.
pub async fn check(
    State(st): State<AppState>,
    CurrentTenant(here): CurrentTenant,
    client: Client,
    headers: HeaderMap,
) -> Result<Reply, Reply> {
    match authorization(&headers) {
        Authorization::Absent => match served(&st.core, here).await? {
            Some(policy) => Ok(Reply::checked(policy.buddycloud_root_status)),
            None => Err(Reply::not_found()),
        },
        Authorization::Basic(basic) => {
            let (named, password) = account(&st, here, &basic).await?;
            st.core.prove_password(named.tenant, login(&named, password), &client.info).await?;
            Ok(Reply::checked(named.root_status))
        }
        Authorization::Bearer(_) | Authorization::Other => Err(Reply::unauthorized()),
    }
}

/// `POST /account`: creates an account. `username` is `user@domain` (the domain's tenant;
/// `user` becomes the username) or a bare username (the request's tenant); `password`;
/// `email`, which the tenant's policy may require. 200 `OK` when created.
pub async fn create(
    State(st): State<AppState>,
    CurrentTenant(here): CurrentTenant,
    client: Client,
    req: Request,
) -> Result<Reply, Reply> {
    let p = body_params(req).await?;
    let [username, password] = required(&p)?;
    let jid = Jid::split(username);
    if let Some(why) = jid.too_long() {
        return Err(Reply::fields(&[("username", why)]));
    }
    let named = match resolve(&st.core, here, username, Foreign::Refuse).await? {
        Resolved::Served(n) => n,
        Resolved::ForeignDomain | Resolved::Off if matches!(jid, Jid::Full { .. }) => {
            return Err(Reply::fields(&[("username", "its domain is not served here")]));
        }
        Resolved::ForeignDomain | Resolved::Off => return Err(Reply::not_found()),
    };
    let mut account = AccountInput::new();
    account.set_username(Some(named.name.as_login().to_owned()));
    if let Some(email) = p.non_empty("email") {
        account.set_email(Some(email.to_owned()));
    }
    // buddycloud clients send their credentials with every call and have no use for a session.
    let cmd = SignupCommand {
        account,
        password: Some(Password::new(password)),
        password_confirmation: None,
        no_session: true,
    };
    st.core.signup(named.tenant, cmd, &client.info).await?;
    Ok(Reply::ok())
}

/// `DELETE /account`: deletes the account whose credentials come as HTTP Basic; every
/// session of theirs ends.
pub async fn delete(
    State(st): State<AppState>,
    CurrentTenant(here): CurrentTenant,
    client: Client,
    headers: HeaderMap,
) -> Result<Reply, Reply> {
    let Authorization::Basic(basic) = authorization(&headers) else { return Err(Reply::unauthorized()) };
    let (named, password) = account(&st, here, &basic).await?;
    st.core.delete_account_proven(named.tenant, login(&named, password), &client.info).await?;
    Ok(Reply::ok())
}

/// `POST /account/pw/change`: sets `password` as the new password of the account whose
/// credentials come as HTTP Basic. `username` must name that same account (403 otherwise).
/// Every session of the user ends.
pub async fn change_password(
    State(st): State<AppState>,
    CurrentTenant(here): CurrentTenant,
    client: Client,
    headers: HeaderMap,
    req: Request,
) -> Result<Reply, Reply> {
    let Authorization::Basic(basic) = authorization(&headers) else { return Err(Reply::unauthorized()) };
    let p = body_params(req).await?;
    let [username, new] = required(&p)?;
    let (named, password) = account(&st, here, &basic).await?;
    let target = match resolve(&st.core, here, username, Foreign::AsEmail).await? {
        Resolved::Served(t) => Some(t),
        Resolved::ForeignDomain | Resolved::Off => None,
    };
    if !target.as_ref().is_some_and(|t| t.same_as(&named)) {
        // Spelt differently (a bare username for a JID, an address for a username), or
        // another account: the credentials decide who is asking, then the name is compared
        // with the account they prove.
        let user = st.core.prove_password(named.tenant, login(&named, password.clone()), &client.info).await?;
        if !target.is_some_and(|t| t.names(&user)) {
            return Err(Reply::detailed(StatusCode::FORBIDDEN, "username is not the account of the credentials"));
        }
    }
    st.core.change_password_proven(named.tenant, login(&named, password), Password::new(new), &client.info).await?;
    Ok(Reply::ok())
}

/// `POST /account/pw/reset`: mails a link to set a new password to the account `username`
/// names, if there is one. The same answer, after the same work, whether or not there is.
pub async fn reset_password(
    State(st): State<AppState>,
    CurrentTenant(here): CurrentTenant,
    client: Client,
    req: Request,
) -> Result<Reply, Reply> {
    let p = body_params(req).await?;
    let Some(username) = p.non_empty("username") else { return Err(Reply::fields(&[("username", "is required")])) };
    match resolve(&st.core, here, username, Foreign::AsEmail).await? {
        Resolved::Served(n) => st.core.request_password_reset(n.tenant, n.name.as_login(), &client.info).await?,
        Resolved::ForeignDomain | Resolved::Off => return Err(Reply::not_found()),
    }
    Ok(Reply::ok())
}

/// The account Basic credentials name, and their password. An identifier that leads to no
/// tenant answering the dialect is refused like a wrong password, after the same work.
async fn account(st: &AppState, here: TenantId, basic: &BasicCredentials) -> Result<(Named, Password), Reply> {
    match resolve(&st.core, here, &basic.user, Foreign::AsEmail).await? {
        Resolved::Served(n) => Ok((n, basic.password())),
        Resolved::ForeignDomain | Resolved::Off => Err(st.core.refuse_credentials(basic.password()).await.map_or_else(
            |e| match e {
                portcullis_core::CoreError::InvalidCredentials => Reply::unauthorized(),
                e => Reply::from(e),
            },
            |()| Reply::unauthorized(),
        )),
    }
}

/// `username` and `password`, both required (every missing one named at once). A password
/// is taken as sent, spaces and all.
fn required(p: &Params) -> Result<[&str; 2], Reply> {
    match (p.non_empty("username"), p.get("password").filter(|v| !v.is_empty())) {
        (Some(u), Some(pw)) => Ok([u, pw]),
        (u, pw) => {
            let missing: Vec<(&str, &str)> = [("username", u.is_none()), ("password", pw.is_none())]
                .into_iter()
                .filter(|(_, m)| *m)
                .map(|(name, _)| (name, "is required"))
                .collect();
            Err(Reply::fields(&missing))
        }
    }
}

fn login(named: &Named, password: Password) -> LoginCommand {
    LoginCommand { identifier: named.name.key(), password, second_factor: None }
}

/// The parameters of a JSON body, whatever its `Content-Type` says: the original parsed the
/// body as JSON without looking at the type, and its clients send none, `text/plain`, or the
/// form type `curl -d` puts on. The query string is not read: the original took these
/// parameters from the body only, and a password has no business in a URL.
async fn body_params(mut req: Request) -> Result<Params, Reply> {
    let path = req.uri().path().to_owned();
    if let Ok(uri) = path.parse::<Uri>() {
        *req.uri_mut() = uri;
    }
    let json = BodyFormats { json: true, json_whatever_type: true, ..BodyFormats::default() };
    Ok(params::read(req, json).await?)
}
