//! The pages of getting in: log-in and its second-factor step, sign-up, log-out, a forgotten
//! password, and the landings of the links we mail (reset, verification, log-in link).

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::RawQuery;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use minijinja::context;
use portcullis_core::accounts::SignupCommand;
use portcullis_core::login::{IssuedSession, LoginCommand, LoginOutcome, SecondFactorRequired};
use portcullis_core::{AccountInput, CoreError, Password, Token};

use super::account::{attribute_fields, set_attributes};
use super::render::{Form, Page, field_errors};
use crate::shared::AppState;
use crate::shared::cookies::set_session_cookie;

/// The cookie a reset link's token waits in.
const RESET_COOKIE: &str = "portcullis_reset";
/// The cookie a verification link's token waits in.
const VERIFY_COOKIE: &str = "portcullis_verify";
/// The cookie a log-in link's token waits in.
const LOGIN_LINK_COOKIE: &str = "portcullis_login_link";

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui", get(home))
        .route("/ui/", get(home))
        .route("/ui/login", get(login_page).post(login))
        .route("/ui/login/second-factor", post(second_factor))
        .route("/ui/signup", get(signup_page).post(signup))
        .route("/ui/logout", post(logout))
        .route("/ui/forgot", get(forgot_page).post(forgot))
        .route("/ui/reset", get(reset_page).post(reset))
        .route("/ui/verify", get(verify_page).post(verify))
        .route("/ui/verify/request", post(request_verification))
        .route("/ui/link", get(link_page).post(link))
        .route("/ui/link/request", get(link_request_page).post(link_request))
}

async fn home(page: Page) -> Response {
    let to = if page.session.is_some() { "/ui/account" } else { "/ui/login" };
    page.redirect(&page.path(to))
}

fn empty() -> BTreeMap<String, String> {
    BTreeMap::new()
}

async fn login_page(page: Page, RawQuery(q): RawQuery) -> Response {
    let raw = super::render::param(q.as_deref(), "return_to");
    if page.session.is_some() {
        return page.redirect(&page.return_target(raw.as_deref()));
    }
    render_login(&page, StatusCode::OK, raw.as_deref(), empty(), empty(), None, false).await
}

async fn render_login(
    page: &Page,
    status: StatusCode,
    return_to: Option<&str>,
    values: BTreeMap<String, String>,
    errors: BTreeMap<String, String>,
    alert: Option<String>,
    resend: bool,
) -> Response {
    let form = match page.st.core.account_form(page.tenant_id).await {
        Ok(f) => f,
        Err(e) => return page.message(page.problem(&e).0, "Log in", &[&page.problem(&e).1], None),
    };
    let ctx = context! {
        title => "Log in",
        return_to => page.keep_return_to(return_to),
        values, errors, alert, resend,
        form => context! { signup_open => form.signup_open, passwordless_login => form.passwordless_login },
    };
    page.render(status, "login.html", ctx)
}

async fn login(page: Page, form: Form) -> Response {
    let return_to = form.get("return_to").map(str::to_owned);
    let cmd = LoginCommand::from_fields(form.get("login"), None, None, None, form.raw("password").map(Password::new));
    let result = match cmd {
        Ok(cmd) => page.st.core.login(page.tenant_id, cmd, &page.client.info).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(outcome) => logged_in(&page, outcome, return_to.as_deref()),
        Err(e) => {
            let (status, message) = page.problem(&e);
            let errors = field_errors(&e, &[]);
            let alert = Some(message);
            let resend = matches!(e, CoreError::EmailNotVerified);
            render_login(&page, status, return_to.as_deref(), form.values(), errors, alert, resend).await
        }
    }
}

/// After a proven credential: the session cookie and on to the return target; or the
/// second-factor step.
fn logged_in(page: &Page, outcome: LoginOutcome, return_to: Option<&str>) -> Response {
    match outcome {
        LoginOutcome::LoggedIn { session, .. } => with_session(page, &session, &page.return_target(return_to)),
        LoginOutcome::SecondFactorRequired(step) => {
            second_factor_page(page, StatusCode::OK, &step_of(&step), return_to, None)
        }
    }
}

fn step_of(s: &SecondFactorRequired) -> String {
    s.step_token.expose().to_owned()
}

fn with_session(page: &Page, session: &IssuedSession, to: &str) -> Response {
    let mut res = page.redirect(to);
    set_session_cookie(&page.st, &page.client, &mut res, Some(session));
    res
}

fn second_factor_page(
    page: &Page,
    status: StatusCode,
    step: &str,
    return_to: Option<&str>,
    error: Option<String>,
) -> Response {
    let errors: BTreeMap<String, String> = error.into_iter().map(|e| ("code".to_owned(), e)).collect();
    let ctx = context! {
        title => "Two-step log-in",
        step_token => step,
        return_to => page.keep_return_to(return_to),
        errors,
    };
    page.render(status, "second_factor.html", ctx)
}

async fn second_factor(page: Page, form: Form) -> Response {
    let return_to = form.get("return_to").map(str::to_owned);
    let step = form.get("step_token").unwrap_or_default().to_owned();
    let code = form.get("code").unwrap_or_default().to_owned();
    if code.is_empty() {
        return second_factor_page(
            &page,
            StatusCode::UNPROCESSABLE_ENTITY,
            &step,
            return_to.as_deref(),
            Some("Enter the code.".into()),
        );
    }
    match page
        .st
        .core
        .login_second_factor(page.tenant_id, &Token::from_client(step.clone()), &code, &page.client.info)
        .await
    {
        Ok(outcome) => logged_in(&page, outcome, return_to.as_deref()),
        Err(CoreError::InvalidToken) => {
            let alert = Some("That took too long. Log in again.".to_owned());
            render_login(&page, StatusCode::BAD_REQUEST, return_to.as_deref(), empty(), empty(), alert, false).await
        }
        Err(e) => {
            let (status, message) = page.problem(&e);
            second_factor_page(&page, status, &step, return_to.as_deref(), Some(message))
        }
    }
}

async fn signup_page(page: Page, RawQuery(q): RawQuery) -> Response {
    let raw = super::render::param(q.as_deref(), "return_to");
    render_signup(&page, StatusCode::OK, raw.as_deref(), empty(), empty(), None).await
}

async fn render_signup(
    page: &Page,
    status: StatusCode,
    return_to: Option<&str>,
    values: BTreeMap<String, String>,
    errors: BTreeMap<String, String>,
    alert: Option<String>,
) -> Response {
    let form = match page.st.core.account_form(page.tenant_id).await {
        Ok(f) => f,
        Err(e) => return page.message(page.problem(&e).0, "Create an account", &[&page.problem(&e).1], None),
    };
    if !form.signup_open {
        return page.message(
            StatusCode::FORBIDDEN,
            "Create an account",
            &["Sign-up is closed here."],
            Some(("Log in", page.path("/ui/login"))),
        );
    }
    let attributes = attribute_fields(&form.attributes, &values);
    let ctx = context! {
        title => "Create an account",
        return_to => page.keep_return_to(return_to),
        form => context! {
            require_email => form.require_email,
            require_username => form.require_username,
            require_phone => form.require_phone,
        },
        attributes, values, errors, alert,
        min_length => page.policy.password_min_length,
    };
    page.render(status, "signup.html", ctx)
}

async fn signup(page: Page, form: Form) -> Response {
    let return_to = form.get("return_to").map(str::to_owned);
    let defs = match page.st.core.account_form(page.tenant_id).await {
        Ok(f) => f.attributes,
        Err(e) => return page.message(page.problem(&e).0, "Create an account", &[&page.problem(&e).1], None),
    };
    let mut account = AccountInput::new();
    let text = |n: &str| form.get(n).map(str::to_owned);
    account.set_email(text("email")).set_username(text("username")).set_phone(text("phone"));
    for f in [portcullis_core::profile::TextField::FirstName, portcullis_core::profile::TextField::LastName] {
        if let Some(v) = text(f.name()) {
            account.set_text(f, Some(v));
        }
    }
    set_attributes(&mut account, &defs, &form, false);
    let cmd = SignupCommand {
        account,
        password: form.raw("password").filter(|p| !p.is_empty()).map(Password::new),
        password_confirmation: form.raw("password_confirmation").map(Password::new),
        no_session: false,
    };
    match page.st.core.signup(page.tenant_id, cmd, &page.client.info).await {
        Ok(out) => match out.session {
            Some(s) => with_session(&page, &s, &page.return_target(return_to.as_deref())),
            None => page.message(
                StatusCode::CREATED,
                "Check your inbox",
                &["Your account is created. We sent a link to your e-mail address: follow it to confirm the address, then log in."],
                Some(("Log in", page.path("/ui/login"))),
            ),
        },
        Err(e) => {
            let (status, message) = page.problem(&e);
            let errors = field_errors(&e, &[("attributes", "attributes")]);
            let alert = Some(message);
            render_signup(&page, status, return_to.as_deref(), form.values(), errors, alert).await
        }
    }
}

async fn logout(page: Page, _form: Form) -> Response {
    if let Some(auth) = &page.session
        && let Err(e) = page.st.core.logout(auth).await
    {
        tracing::warn!(error = %portcullis_core::error::error_chain(&e), "a log-out failed");
    }
    let mut res = page.redirect(&page.path("/ui/login"));
    set_session_cookie(&page.st, &page.client, &mut res, None);
    res
}

/// A page that asks for an identifier only.
struct IdentifierPage {
    title: &'static str,
    intro: &'static str,
    action: &'static str,
    submit: &'static str,
}

const FORGOT: IdentifierPage = IdentifierPage {
    title: "Forgot your password?",
    intro: "Enter your username, e-mail address or phone number. If an account matches, we send a link to set a new password to its e-mail address.",
    action: "/ui/forgot",
    submit: "Send link",
};

const LINK_REQUEST: IdentifierPage = IdentifierPage {
    title: "E-mail me a log-in link",
    intro: "Enter your username, e-mail address or phone number. If an account matches, we send a log-in link to its e-mail address.",
    action: "/ui/link/request",
    submit: "Send link",
};

impl IdentifierPage {
    fn render(
        &self,
        page: &Page,
        status: StatusCode,
        values: BTreeMap<String, String>,
        errors: BTreeMap<String, String>,
    ) -> Response {
        let ctx = context! {
            title => self.title,
            intro => self.intro,
            action => page.path(self.action),
            submit => self.submit,
            values,
            errors,
        };
        page.render(status, "identifier.html", ctx)
    }

    /// The answer to the form: `sent` (the same whether or not an account matched), the form
    /// again with a field's problem, or the problem (too many requests, say) on its own.
    fn answer(&self, page: &Page, form: &Form, result: Result<(), CoreError>, sent: &str) -> Response {
        let back = || Some(("Back to log-in", page.path("/ui/login")));
        match result {
            Ok(()) => page.message(StatusCode::OK, "Check your inbox", &[sent], back()),
            Err(e) => {
                let errors = field_errors(&e, &[]);
                let (status, message) = page.problem(&e);
                if errors.is_empty() {
                    return page.message(status, self.title, &[&message], back());
                }
                self.render(page, status, form.values(), errors)
            }
        }
    }
}

async fn forgot_page(page: Page) -> Response {
    FORGOT.render(&page, StatusCode::OK, empty(), empty())
}

async fn forgot(page: Page, form: Form) -> Response {
    let login = form.get("login").unwrap_or_default().to_owned();
    let result = page.st.core.request_password_reset(page.tenant_id, &login, &page.client.info).await;
    let sent = "If an account matches, a link to set a new password is on its way to its e-mail address. It works once, for a limited time.";
    FORGOT.answer(&page, &form, result, sent)
}

fn invalid_link(page: &Page, what: &str, again: (&str, String)) -> Response {
    page.message(StatusCode::BAD_REQUEST, what, &["This link has expired or has been used already."], Some(again))
}

async fn reset_page(page: Page, RawQuery(q): RawQuery) -> Response {
    if let Some(t) = super::render::param(q.as_deref(), "token") {
        return page.stash_link_token(RESET_COOKIE, &t, "/ui/reset");
    }
    if page.link_token(RESET_COOKIE).is_none() {
        return invalid_link(&page, "Set a new password", ("Ask for a new link", page.path("/ui/forgot")));
    }
    render_reset(&page, StatusCode::OK, empty(), None)
}

fn render_reset(page: &Page, status: StatusCode, errors: BTreeMap<String, String>, alert: Option<String>) -> Response {
    let ctx = context! { title => "Set a new password", errors, alert, min_length => page.policy.password_min_length };
    page.render(status, "reset.html", ctx)
}

async fn reset(page: Page, form: Form) -> Response {
    let Some(token) = page.link_token(RESET_COOKIE) else {
        return invalid_link(&page, "Set a new password", ("Ask for a new link", page.path("/ui/forgot")));
    };
    let new = Password::new(form.raw("password").unwrap_or_default());
    let confirmation = form.raw("password_confirmation").map(Password::new);
    match page.st.core.reset_password(page.tenant_id, &token, new, confirmation, &page.client.info).await {
        Ok(_) => {
            let mut res = page.message(
                StatusCode::OK,
                "Password set",
                &["Your new password is set, and every session of your account has ended. Log in with the new password."],
                Some(("Log in", page.path("/ui/login"))),
            );
            page.forget_link_token(&mut res, RESET_COOKIE);
            set_session_cookie(&page.st, &page.client, &mut res, None);
            res
        }
        Err(CoreError::InvalidToken) => {
            let mut res = invalid_link(&page, "Set a new password", ("Ask for a new link", page.path("/ui/forgot")));
            page.forget_link_token(&mut res, RESET_COOKIE);
            res
        }
        Err(e) => {
            let (status, message) = page.problem(&e);
            let errors = field_errors(&e, &[]);
            render_reset(&page, status, errors, Some(message))
        }
    }
}

fn confirm_page(page: &Page, title: &str, intro: &str, action: &str, submit: &str) -> Response {
    page.render(StatusCode::OK, "confirm.html", context! { title, intro, action => page.path(action), submit })
}

async fn verify_page(page: Page, RawQuery(q): RawQuery) -> Response {
    if let Some(t) = super::render::param(q.as_deref(), "token") {
        return page.stash_link_token(VERIFY_COOKIE, &t, "/ui/verify");
    }
    if page.link_token(VERIFY_COOKIE).is_none() {
        return invalid_link(&page, "Confirm your e-mail address", ("Log in", page.path("/ui/login")));
    }
    confirm_page(
        &page,
        "Confirm your e-mail address",
        "Press the button to confirm your e-mail address.",
        "/ui/verify",
        "Confirm my address",
    )
}

async fn verify(page: Page, _form: Form) -> Response {
    let Some(token) = page.link_token(VERIFY_COOKIE) else {
        return invalid_link(&page, "Confirm your e-mail address", ("Log in", page.path("/ui/login")));
    };
    let mut res = match page.st.core.verify_email(page.tenant_id, &token, &page.client.info).await {
        Ok(user) => {
            let text = format!("{} is confirmed.", user.email.unwrap_or_default());
            let next = if page.session.is_some() {
                ("Go to your account", page.path("/ui/account"))
            } else {
                ("Log in", page.path("/ui/login"))
            };
            page.message(StatusCode::OK, "Address confirmed", &[&text], Some(next))
        }
        Err(CoreError::InvalidToken) => {
            invalid_link(&page, "Confirm your e-mail address", ("Log in", page.path("/ui/login")))
        }
        Err(CoreError::Conflict(_)) => page.message(
            StatusCode::CONFLICT,
            "Confirm your e-mail address",
            &["Another account uses this address now, so it cannot become yours."],
            Some(("Go to your account", page.path("/ui/account"))),
        ),
        Err(e) => {
            let (status, message) = page.problem(&e);
            page.message(status, "Confirm your e-mail address", &[&message], None)
        }
    };
    page.forget_link_token(&mut res, VERIFY_COOKIE);
    res
}

async fn request_verification(page: Page, form: Form) -> Response {
    let login = form.get("login").unwrap_or_default().to_owned();
    match page.st.core.request_verification(page.tenant_id, &login, &page.client.info).await {
        Ok(()) => page.message(
            StatusCode::OK,
            "Check your inbox",
            &["If the account's address still needs confirming, a new link is on its way."],
            Some(("Back to log-in", page.path("/ui/login"))),
        ),
        Err(e) => {
            let (status, message) = page.problem(&e);
            page.message(
                status,
                "Confirm your e-mail address",
                &[&message],
                Some(("Back to log-in", page.path("/ui/login"))),
            )
        }
    }
}

async fn link_page(page: Page, RawQuery(q): RawQuery) -> Response {
    if let Some(t) = super::render::param(q.as_deref(), "token") {
        return page.stash_link_token(LOGIN_LINK_COOKIE, &t, "/ui/link");
    }
    if page.link_token(LOGIN_LINK_COOKIE).is_none() {
        return invalid_link(&page, "Log in", ("Log in", page.path("/ui/login")));
    }
    let intro = format!("Press the button to log in to {}.", page.tenant.name);
    confirm_page(&page, "Log in", &intro, "/ui/link", "Log in")
}

async fn link(page: Page, _form: Form) -> Response {
    let Some(token) = page.link_token(LOGIN_LINK_COOKIE) else {
        return invalid_link(&page, "Log in", ("Log in", page.path("/ui/login")));
    };
    let mut res = match page.st.core.login_with_token(page.tenant_id, &token, &page.client.info).await {
        Ok(outcome) => logged_in(&page, outcome, None),
        Err(CoreError::InvalidCredentials) => invalid_link(&page, "Log in", ("Log in", page.path("/ui/login"))),
        Err(e) => {
            let (status, message) = page.problem(&e);
            page.message(status, "Log in", &[&message], Some(("Log in", page.path("/ui/login"))))
        }
    };
    page.forget_link_token(&mut res, LOGIN_LINK_COOKIE);
    res
}

async fn link_request_page(page: Page) -> Response {
    LINK_REQUEST.render(&page, StatusCode::OK, empty(), empty())
}

async fn link_request(page: Page, form: Form) -> Response {
    let login = form.get("login").unwrap_or_default().to_owned();
    let result = page.st.core.request_login_link(page.tenant_id, &login, &page.client.info).await;
    let sent =
        "If an account matches, a log-in link is on its way to its e-mail address. It works once, for a few minutes.";
    LINK_REQUEST.answer(&page, &form, result, sent)
}
