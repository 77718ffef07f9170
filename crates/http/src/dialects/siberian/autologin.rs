//! `GET {prefix}/autologin?email=...&token=...`: where `create` and `authenticate` send the
//! user's browser. It spends the one-time log-in token (the e-mail address must be the
//! account's), sets the session cookie and redirects (303) to the tenant's `application_url`,
//! or to the hosted account page when it has none.
//!
//! A browser never gets a JSON error here: a token that does not work (unknown, used, expired,
//! of another account, for an account that may not log in now or that needs its second factor)
//! sends the browser to the hosted log-in page, with nothing secret in that address; a tenant
//! that does not answer the dialect, or a server that cannot answer now, gets a small page.
//! Every answer carries `Referrer-Policy: no-referrer`, so the address with the token is never
//! passed on.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::error::error_chain;
use portcullis_core::login::LoginOutcome;
use portcullis_core::model::Policy;
use portcullis_core::{CoreError, Dialect, Token};

use crate::shared::cookies::set_session_cookie;
use crate::shared::{AppState, Client, CurrentTenant};

/// The automatic log-in.
pub(super) async fn autologin(
    State(st): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    client: Client,
    method: Method,
    RawQuery(query): RawQuery,
) -> Response {
    let policy = match st.core.dialect_policy(tenant, Dialect::Siberian).await {
        Ok(p) => p,
        Err(e) => return trouble(e),
    };
    // Link checkers and previews that only look do not spend the token.
    if method == Method::HEAD {
        return page(StatusCode::OK, "Log in", "Open this address in a browser to log in.");
    }
    let pairs: Vec<(String, String)> =
        query.as_deref().and_then(|q| serde_urlencoded::from_str(q).ok()).unwrap_or_default();
    let get = |name: &str| pairs.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.trim()).filter(|v| !v.is_empty());
    let (Some(email), Some(token)) = (get("email"), get("token")) else {
        return to_login_page(&client, &policy);
    };
    let token = Token::from_client(token);
    match st.core.login_with_token_for_email(tenant, &token, email, &client.info).await {
        Ok(LoginOutcome::LoggedIn { session, .. }) => {
            let account_page = format!("{}ui/account", client.cookie_path);
            let mut res = see_other(policy.application_url.as_deref().unwrap_or(&account_page), &account_page);
            set_session_cookie(&st, &client, &mut res, Some(&session));
            res
        }
        // The second factor is asked for on the log-in page (the token was spent).
        Ok(LoginOutcome::SecondFactorRequired(_)) => to_login_page(&client, &policy),
        Err(
            CoreError::InvalidCredentials
            | CoreError::AccountDisabled
            | CoreError::EmailNotVerified
            | CoreError::SecondFactorRequired
            | CoreError::SecondFactorInvalid
            | CoreError::InvalidToken,
        ) => to_login_page(&client, &policy),
        Err(e) => trouble(e),
    }
}

/// To the hosted log-in page, which sends the user on to the application once logged in
/// (when the tenant allows that address as a return target).
fn to_login_page(client: &Client, policy: &Policy) -> Response {
    let login = format!("{}ui/login", client.cookie_path);
    let to = match policy.application_url.as_deref() {
        Some(app) => match serde_urlencoded::to_string([("return_to", app)]) {
            Ok(q) => format!("{login}?{q}"),
            Err(_) => login.clone(),
        },
        None => login.clone(),
    };
    see_other(&to, &login)
}

/// A 303 to `to` (or to `fallback`, should `to` not fit in a header).
fn see_other(to: &str, fallback: &str) -> Response {
    let location = HeaderValue::from_str(to).or_else(|_| HeaderValue::from_str(fallback));
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(l) = location {
        res.headers_mut().insert(header::LOCATION, l);
    }
    res.headers_mut().insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    res
}

/// The answer to a failure a log-in page cannot help with, as a page.
pub(super) fn trouble(e: CoreError) -> Response {
    let retry = |after: std::time::Duration| {
        let mut res =
            page(StatusCode::SERVICE_UNAVAILABLE, "Try again shortly", "The service is busy. Try again in a moment.");
        if let Ok(v) = HeaderValue::from_str(&after.as_secs().max(1).to_string()) {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        res
    };
    match e {
        // No such tenant, or one that does not answer this dialect: nothing to log in to here.
        CoreError::NotFound => page(StatusCode::NOT_FOUND, "Link not valid", "This log-in link does not work here."),
        CoreError::RateLimited { retry_after } | CoreError::Overloaded { retry_after } => retry(retry_after),
        CoreError::Unavailable(cause) => {
            tracing::error!(error = %error_chain(&cause), "storage unavailable");
            retry(std::time::Duration::from_secs(1))
        }
        other => {
            tracing::error!(error = %error_chain(&other), "an automatic log-in failed");
            page(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "Something went wrong on our side.")
        }
    }
}

/// A small HTML page of fixed text, that loads nothing and may not be framed.
fn page(status: StatusCode, title: &'static str, text: &'static str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1><p>{text}</p></body></html>\n"
    );
    let mut res = (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    let h = res.headers_mut();
    h.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    );
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}
