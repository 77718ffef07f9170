//! The Metrixstream dialect: the site API's authentication calls, `action=login | signup |
//! logout | forgotpassword`, with their parameters in the query string or a form body
//! (url-encoded or multipart), at one path (`/site/api` by default; the document names none).
//! Answers are `{"status": "ok", ...}` in JSON, or the same tree in XML when the client asks
//! (`wire`); sign-up's fields are mapped in `account`.
//!
//! Each action parses its parameters, calls one core operation as the end user's client, and
//! answers: limits, enumeration resistance, the second factor, the tenant's policy and the
//! audit log are the core's. Log-in opens a session: its token is in the answer and in the
//! session cookie; log-out takes it back as `Authorization: Bearer`, a `token` parameter or
//! that cookie.
//!
//! Every action changes something (a session, an account, a mail), and clients send them with
//! GET as well as POST; so a GET gets the cross-site check the shared layer gives a POST.

mod account;
mod wire;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use axum::routing::any;
use portcullis_core::login::{IssuedSession, LoginCommand, LoginOutcome};
use portcullis_core::parse::LoginKey;
use portcullis_core::{CoreError, Dialect, Field, FieldErrors, Password, TenantId, Token};
use serde_json::Value;

use self::wire::{Failure, Format, item, ok, session};
use crate::shared::cookies::set_session_cookie;
use crate::shared::credentials::{Authorization, authorization, cookie};
use crate::shared::csrf::cross_site;
use crate::shared::params::{self, BodyFormats, Params};
use crate::shared::{AppState, Client, CurrentTenant, Mount, MountedSurface, Rejection, Surface, mount};

/// The Metrixstream wire format.
#[derive(Debug)]
pub struct Metrixstream;

impl Surface for Metrixstream {
    // The shared layer's rejections cannot see the request, so they answer in the default
    // format, JSON. The dialect's own paths answer every method and sub-path themselves
    // (`api`, `unknown_path`), in the format the client asked for.
    fn reject(rejection: Rejection) -> Response {
        let failure = match rejection {
            Rejection::NotFound | Rejection::TenantNotFound => Failure::not_found(),
            Rejection::MethodNotAllowed => Failure::method_not_allowed(),
            Rejection::CrossSite => Failure::cross_site(),
            Rejection::Panic => Failure::internal(),
            Rejection::Core(e) => Failure::from(e),
        };
        failure.render(Format::Json)
    }
}

/// The Metrixstream surface, mounted at `prefix` (the API answers at `prefix` and `prefix/`).
pub fn surface(state: &AppState, prefix: &str) -> MountedSurface {
    let base = prefix.trim_end_matches('/');
    let mut routes =
        Router::new().route(&format!("{base}/"), any(api)).route(&format!("{base}/{{*rest}}"), any(unknown_path));
    if !base.is_empty() {
        routes = routes.route(base, any(api));
    }
    let m = Mount { name: "metrixstream", prefixes: vec![prefix.to_owned()], tenants: true, csrf: true };
    mount::<Metrixstream>(m, routes, state)
}

/// The tenant answers this dialect; otherwise the answer is the one an unknown tenant gets,
/// byte for byte.
async fn switched_on(st: &AppState, tenant: TenantId) -> Result<(), Response> {
    match st.core.dialect_policy(tenant, Dialect::Metrixstream).await {
        Ok(_) => Ok(()),
        Err(CoreError::NotFound) => Err(Metrixstream::reject(Rejection::TenantNotFound)),
        Err(e) => Err(Metrixstream::reject(Rejection::Core(e))),
    }
}

/// The one endpoint: reads the parameters, runs the action, answers.
async fn api(
    State(st): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    client: Client,
    req: Request,
) -> Response {
    if let Err(res) = switched_on(&st, tenant).await {
        return res;
    }
    let headers = req.headers().clone();
    // Until the body is read, the format comes from the query string and `Accept`.
    let early = early_format(&headers, req.uri().query());
    if !matches!(*req.method(), Method::GET | Method::POST) {
        let mut res = Failure::method_not_allowed().render(early);
        res.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
        return res;
    }
    if *req.method() == Method::GET && cross_site(&req) {
        return Failure::cross_site().render(early);
    }
    let params = match params::read(req, BodyFormats::FORMS).await {
        Ok(p) => p,
        Err(e) => return Failure::from(e).render(early),
    };
    let format = match Format::choose(&headers, params.get("format")) {
        Ok(f) => f,
        Err(f) => return f.render(early),
    };
    let action = params.non_empty("action").map(str::to_ascii_lowercase);
    let result = match action.as_deref() {
        Some("login") => login(&st, tenant, &client, &params).await,
        Some("signup") => signup(&st, tenant, &client, &params).await,
        Some("logout") => logout(&st, tenant, &client, &headers, &params).await,
        Some("forgotpassword") => forgot_password(&st, tenant, &client, &params).await,
        Some(_) => Err(Failure::unknown_action()),
        None => Err(Failure::missing_action()),
    };
    match result {
        Ok(reply) => reply.into_response(&st, &client, format),
        Err(f) => f.render(format),
    }
}

/// A path below the API's: nothing there, said in the client's format.
async fn unknown_path(State(st): State<AppState>, CurrentTenant(tenant): CurrentTenant, req: Request) -> Response {
    if let Err(res) = switched_on(&st, tenant).await {
        return res;
    }
    Failure::not_found().render(early_format(req.headers(), req.uri().query()))
}

/// The format a request asks for by its query string and `Accept` header (JSON when the
/// query string cannot be read or names no known format).
fn early_format(headers: &HeaderMap, query: Option<&str>) -> Format {
    let pairs = params::query_pairs(query).unwrap_or_default();
    let param = pairs.iter().rev().find(|(k, _)| k == "format").map(|(_, v)| v.as_str());
    Format::choose(headers, param).unwrap_or(Format::Json)
}

/// What a successful action answers: the tree, and what becomes of the session cookie.
#[derive(Debug)]
struct Reply {
    tree: Value,
    cookie: SessionCookie,
}

#[derive(Debug)]
enum SessionCookie {
    Untouched,
    Set(IssuedSession),
    Clear,
}

impl Reply {
    fn ok() -> Self {
        Self { tree: ok(Vec::new()), cookie: SessionCookie::Untouched }
    }

    fn into_response(self, st: &AppState, client: &Client, format: Format) -> Response {
        let mut res = format.render(StatusCode::OK, self.tree);
        match self.cookie {
            SessionCookie::Untouched => {}
            SessionCookie::Set(s) => set_session_cookie(st, client, &mut res, Some(&s)),
            SessionCookie::Clear => set_session_cookie(st, client, &mut res, None),
        }
        res
    }
}

/// `action=login`: `username` (a username; an e-mail address or phone number is taken too)
/// and `password`, and `code` for an account with a second factor. Or, after
/// `second_factor_required`, `step_token` and `code` without the password.
async fn login(st: &AppState, tenant: TenantId, client: &Client, p: &Params) -> Result<Reply, Failure> {
    if let Some(step) = p.non_empty("step_token") {
        let Some(code) = p.non_empty("code") else {
            return Err(CoreError::field(Field::Param("code"), "is required").into());
        };
        let out = st.core.login_second_factor(tenant, &Token::from_client(step), code, &client.info).await?;
        return logged_in(out);
    }
    let mut errors = FieldErrors::new();
    let username = p.non_empty("username");
    if username.is_none() {
        errors.add(Field::Login, "is required");
    }
    // A password is taken as typed: never trimmed.
    let password = p.get("password").filter(|v| !v.is_empty());
    if password.is_none() {
        errors.add(Field::Password, "is required");
    }
    let (Some(username), Some(password)) = (username, password) else {
        return Err(CoreError::Validation(errors).into());
    };
    let cmd = LoginCommand {
        identifier: LoginKey::from_login(username),
        password: Password::new(password),
        second_factor: p.non_empty("code").map(str::to_owned),
    };
    logged_in(st.core.login(tenant, cmd, &client.info).await?)
}

fn logged_in(out: LoginOutcome) -> Result<Reply, Failure> {
    match out {
        LoginOutcome::LoggedIn { user, session: s } => {
            Ok(Reply { tree: ok(vec![("item", item(&user)), ("session", session(&s))]), cookie: SessionCookie::Set(s) })
        }
        LoginOutcome::SecondFactorRequired(step) => Err(Failure::second_factor_required(Some(&step))),
    }
}

/// `action=signup`: the account, logged in at once unless the tenant wants its e-mail address
/// verified first (then the answer has no session).
async fn signup(st: &AppState, tenant: TenantId, client: &Client, p: &Params) -> Result<Reply, Failure> {
    let out = st.core.signup(tenant, account::signup_command(p), &client.info).await?;
    let mut members = vec![("item", item(&out.user))];
    if let Some(s) = &out.session {
        members.push(("session", session(s)));
    }
    let cookie = out.session.map_or(SessionCookie::Untouched, SessionCookie::Set);
    Ok(Reply { tree: ok(members), cookie })
}

/// `action=logout`: ends the session presented as `Authorization: Bearer`, else as a `token`
/// parameter, else in the session cookie.
async fn logout(
    st: &AppState,
    tenant: TenantId,
    client: &Client,
    headers: &HeaderMap,
    p: &Params,
) -> Result<Reply, Failure> {
    let token = match authorization(headers) {
        Authorization::Bearer(t) => Some(t),
        // Another scheme (a site behind HTTP Basic, say) is not a session.
        _ => p.non_empty("token").map(str::to_owned).or_else(|| cookie(headers, &st.config.cookie_name)),
    };
    let token = token.ok_or(CoreError::Unauthenticated)?;
    let auth = st.core.authenticate(tenant, &Token::from_client(token)).await?.through(client.info.surface);
    st.core.logout(&auth).await?;
    Ok(Reply { cookie: SessionCookie::Clear, ..Reply::ok() })
}

/// `action=forgotpassword`: `username`, a username or an e-mail address. `ok` whether or not
/// it names anyone; when it does, the account's address gets a link to set a new password.
async fn forgot_password(st: &AppState, tenant: TenantId, client: &Client, p: &Params) -> Result<Reply, Failure> {
    st.core.request_password_reset(tenant, p.get("username").unwrap_or_default(), &client.info).await?;
    Ok(Reply::ok())
}
