//! The four calls of the document as its clients send them, answered field by field: log-in
//! (in JSON and XML, with the second factor), log-out, forgotten password.

use std::time::Duration;

use portcullis_testkit::totp_code;

use super::*;
use crate::both;
use crate::support::{PW2, ReceivedMail, SmtpSink, tenant};

both!(
    login_answers_as_the_document_says,
    login_answers_xml_when_asked,
    forgotpassword_answers_ok_for_anyone_and_mails_a_link_to_accounts,
    logout_ends_the_session_presented_by_bearer_token_or_cookie,
    second_factor_is_asked_for_and_taken_as_a_code,
);

async fn login_answers_as_the_document_says(b: Backend) {
    let app = spawn(b).await;
    app.user("ada", PW).await;
    let id = user_id(&app, TenantId::DEFAULT, "ada").await;

    // The document's request, as a form POST, a GET, a multipart POST; `@` in the username
    // is the e-mail address; extra parameters are ignored.
    let by_post = post(&app, &[("action", "login"), ("username", "ada"), ("password", PW)]).await;
    let token = assert_logged_in(&by_post, id, "ada", "ada@example.com");
    assert_eq!(app.session_status(&token).await, StatusCode::OK, "a session like any other");
    let by_get = get(&app, &[("action", "login"), ("username", "ADA"), ("password", PW)]).await;
    assert_logged_in(&by_get, id, "ada", "ada@example.com");
    let multipart = [("action", "login"), ("username", "ada@example.com"), ("password", PW)];
    let by_multipart = send(&app, Method::POST, API, Body::Multipart(&multipart), &[]).await;
    assert_logged_in(&by_multipart, id, "ada", "ada@example.com");
    let extra = [("action", "LOGIN"), ("username", " Ada@Example.com "), ("password", PW), ("submit", "Log in")];
    assert_logged_in(&post(&app, &extra).await, id, "ada", "ada@example.com");
    // The action in the query string, the credentials in the body.
    let split = send(
        &app,
        Method::POST,
        &format!("{API}?action=login"),
        Body::Form(&[("username", "ada"), ("password", PW)]),
        &[],
    )
    .await;
    assert_logged_in(&split, id, "ada", "ada@example.com");
    // At the trailing-slash path too.
    let slash = send(
        &app,
        Method::POST,
        &format!("{API}/"),
        Body::Form(&[("action", "login"), ("username", "ada"), ("password", PW)]),
        &[],
    )
    .await;
    assert_logged_in(&slash, id, "ada", "ada@example.com");

    // Missing parameters are named.
    let v = post(&app, &[("action", "login")]).await.error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(v["fields"], json!({"password": "is required", "username": "is required"}));
    let v = post(&app, &[("action", "login"), ("username", "ada")])
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(v["fields"], json!({"password": "is required"}));
    let v = get(&app, &[("action", "login"), ("username", " "), ("password", PW)])
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(v["fields"], json!({"username": "is required"}));
    // A password is taken as typed: with spaces around it, it is another password.
    let padded = format!(" {PW} ");
    post(&app, &[("action", "login"), ("username", "ada"), ("password", &padded)])
        .await
        .error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    // An over-long username names nobody.
    let long = "a".repeat(5000);
    let r = post(&app, &[("action", "login"), ("username", &long), ("password", PW)]).await;
    r.error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    assert!(r.cookie().is_none());
}

async fn login_answers_xml_when_asked(b: Backend) {
    let app = spawn(b).await;
    app.user("xena", PW).await;
    let id = user_id(&app, TenantId::DEFAULT, "xena").await;
    let creds = [("action", "login"), ("username", "xena"), ("password", PW)];
    for (path, headers) in [
        (API.to_owned(), vec![("accept", "application/xml")]),
        (API.to_owned(), vec![("accept", "text/xml, application/json;q=0.5")]),
        (format!("{API}?format=xml"), vec![]),
        (format!("{API}?format=XML"), vec![("accept", "application/json")]),
    ] {
        let r = send(&app, Method::POST, &path, Body::Form(&creds), &headers).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.header("content-type"), Some("application/xml; charset=utf-8"));
        let token = tag(&r.text, "token");
        let expires = tag(&r.text, "expires_at");
        assert_eq!(
            r.text,
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<response>\n  <status>ok</status>\n  <item>\n    <user>\n      \
                 <id>{id}</id>\n      <username>xena</username>\n      <email>xena@example.com</email>\n    </user>\n  \
                 </item>\n  <session>\n    <token>{token}</token>\n    <expires_at>{expires}</expires_at>\n  </session>\n\
                 </response>\n"
            )
        );
        assert!(r.cookie().unwrap().starts_with(&format!("portcullis_session={token};")));
    }
    // `format` in a form body counts too; failures come in XML alike.
    let wrong = [("action", "login"), ("username", "xena"), ("password", PW2), ("format", "xml")];
    let r = post(&app, &wrong).await;
    assert_eq!(
        (r.status, r.header("content-type")),
        (StatusCode::UNAUTHORIZED, Some("application/xml; charset=utf-8"))
    );
    assert_eq!(
        r.text,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<response>\n  <status>error</status>\n  \
         <code>invalid_credentials</code>\n  <message>The username or password is incorrect.</message>\n</response>\n"
    );
    let r = send(&app, Method::POST, API, Body::Form(&[("action", "login")]), &[("accept", "application/xml")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text.contains(
            "<fields>\n    <password>is required</password>\n    <username>is required</username>\n  </fields>"
        ),
        "{}",
        r.text
    );
    // A browser's default Accept prefers HTML: it gets JSON.
    let browser = [("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")];
    let r = send(&app, Method::POST, API, Body::Form(&creds), &browser).await;
    assert_logged_in(&r, id, "xena", "xena@example.com");
    let r = send(&app, Method::POST, &format!("{API}?format=php"), Body::Form(&creds), &[]).await;
    r.error(StatusCode::BAD_REQUEST, "invalid_format");
    assert!(r.cookie().is_none(), "nothing was done");
}

async fn forgotpassword_answers_ok_for_anyone_and_mails_a_link_to_accounts(b: Backend) {
    let (app, sink) = TestApp::spawn_with_mail(b, |_| {}).await;
    enable_dialect(&app, TenantId::DEFAULT, Dialect::Metrixstream).await;
    app.user("pia", PW).await;
    wait_mail(&sink, "pia@example.com", 1).await;
    let mut answers = Vec::new();
    for name in ["pia", "nobody", "PIA@example.com", "nobody@example.com"] {
        let before = app.core.hasher().verifications();
        let r = post(&app, &[("action", "forgotpassword"), ("username", name)]).await;
        assert_eq!(app.core.hasher().verifications(), before, "{name}: no password work either way");
        answers.push((r.status, r.header("content-type").map(str::to_owned), r.cookie().map(str::to_owned), r.text));
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    assert_eq!(answers[0].0, StatusCode::OK);
    assert_eq!(serde_json::from_str::<Value>(&answers[0].3).unwrap(), json!({"status": "ok"}));
    // By GET, in XML.
    let r = get(&app, &[("action", "forgotpassword"), ("username", "nobody"), ("format", "xml")]).await;
    assert_eq!(r.text, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<response>\n  <status>ok</status>\n</response>\n");

    // The account got two links (by username and by address), nobody else anything; no
    // password travels by mail.
    let first = wait_mail(&sink, "pia@example.com", 2).await;
    let second = wait_mail(&sink, "pia@example.com", 3).await;
    for m in [&first, &second] {
        assert!(m.subject.contains("Set a new password"), "{}", m.subject);
        assert!(!m.text.contains(PW));
    }
    let token = first.token(&format!("{}/ui/reset", app.base)).unwrap();
    let res = app.post("/v1/password/reset", json!({"token": token, "password": PW2})).await;
    assert_eq!(res.status(), StatusCode::OK, "the link works");
    let r = post(&app, &[("action", "login"), ("username", "pia"), ("password", PW2)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(sink.messages().iter().all(|m| m.to == "pia@example.com"), "{:?}", sink.messages());

    // No identifier, or one no account could have: a clear refusal, the same for everyone.
    let v =
        post(&app, &[("action", "forgotpassword")]).await.error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(v["fields"], json!({"username": "is required"}));
    let long = "a".repeat(400);
    let v = post(&app, &[("action", "forgotpassword"), ("username", &long)])
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(v["fields"]["username"].is_string());
}

async fn wait_mail(sink: &SmtpSink, to: &str, n: usize) -> ReceivedMail {
    let got = sink.wait_for(to, n, Duration::from_secs(15)).await;
    assert_eq!(got.len(), n, "messages to {to}: {got:#?}");
    got[n - 1].clone()
}

async fn logout_ends_the_session_presented_by_bearer_token_or_cookie(b: Backend) {
    let app = spawn(b).await;
    app.user("leo", PW).await;
    let fresh = || login_token(&app, "leo");

    // Bearer.
    let t = fresh().await;
    let auth = format!("Bearer {t}");
    let r = send(&app, Method::POST, API, Body::Form(&[("action", "logout")]), &[("authorization", &auth)]).await;
    assert_eq!((r.status, r.json()), (StatusCode::OK, json!({"status": "ok"})));
    assert!(r.cookie().unwrap().starts_with("portcullis_session=;") && r.cookie().unwrap().contains("Max-Age=0"));
    assert_eq!(app.session_status(&t).await, StatusCode::UNAUTHORIZED, "the session ended");
    // Twice: nobody is logged in any more.
    let r = send(&app, Method::POST, API, Body::Form(&[("action", "logout")]), &[("authorization", &auth)]).await;
    r.error(StatusCode::UNAUTHORIZED, "not_logged_in");
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"portcullis\""));

    // A `token` parameter, by GET or POST.
    let t = fresh().await;
    assert_eq!(get(&app, &[("action", "logout"), ("token", &t)]).await.status, StatusCode::OK);
    assert_eq!(app.session_status(&t).await, StatusCode::UNAUTHORIZED);
    let t = fresh().await;
    assert_eq!(post(&app, &[("action", "logout"), ("token", &t)]).await.status, StatusCode::OK);
    assert_eq!(app.session_status(&t).await, StatusCode::UNAUTHORIZED);

    // The cookie, as a browser on the site sends it.
    let t = fresh().await;
    let cookie = format!("other=1; portcullis_session={t}");
    let r = send(
        &app,
        Method::POST,
        API,
        Body::Form(&[("action", "logout")]),
        &[("cookie", &cookie), ("sec-fetch-site", "same-origin")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(app.session_status(&t).await, StatusCode::UNAUTHORIZED);
    let t = fresh().await;
    let cookie = format!("portcullis_session={t}");
    let r = send(&app, Method::GET, &format!("{API}?action=logout"), Body::None, &[("cookie", &cookie)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(app.session_status(&t).await, StatusCode::UNAUTHORIZED);

    // The header wins over a parameter; another scheme is no session, and the cookie counts.
    let t = fresh().await;
    let r = send(
        &app,
        Method::POST,
        API,
        Body::Form(&[("action", "logout"), ("token", &t)]),
        &[("authorization", "Bearer pcs_nothing")],
    )
    .await;
    r.error(StatusCode::UNAUTHORIZED, "not_logged_in");
    assert_eq!(app.session_status(&t).await, StatusCode::OK);
    let cookie = format!("portcullis_session={t}");
    let r = send(
        &app,
        Method::POST,
        API,
        Body::Form(&[("action", "logout")]),
        &[("authorization", "Basic c2l0ZTpzaXRl"), ("cookie", &cookie)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(app.session_status(&t).await, StatusCode::UNAUTHORIZED);

    // Nothing presented.
    post(&app, &[("action", "logout")]).await.error(StatusCode::UNAUTHORIZED, "not_logged_in");
    // A session of another tenant is none here.
    let acme = tenant(&app, "acme", &[]).await;
    enable_dialect(&app, acme, Dialect::Metrixstream).await;
    let t = fresh().await;
    let r = send(&app, Method::POST, &format!("/t/acme{API}"), Body::Form(&[("action", "logout"), ("token", &t)]), &[])
        .await;
    r.error(StatusCode::UNAUTHORIZED, "not_logged_in");
    assert_eq!(app.session_status(&t).await, StatusCode::OK);
}

/// Signs `name` up natively and sets up an authenticator; returns its secret.
async fn enrolled(app: &TestApp, name: &str) -> String {
    let token = app.user(name, PW).await;
    let (status, e) = app.send(Method::POST, "/v1/me/second-factor/totp", &token, Some(json!({"password": PW}))).await;
    assert_eq!(status, StatusCode::OK, "{e}");
    let secret = e["secret"].as_str().unwrap().to_owned();
    let (status, c) = app
        .send(Method::POST, "/v1/me/second-factor/totp/confirm", &token, Some(json!({"code": code(app, &secret)})))
        .await;
    assert_eq!(status, StatusCode::OK, "{c}");
    secret
}

fn code(app: &TestApp, secret: &str) -> String {
    totp_code(secret, u64::try_from(app.core.now().unix_seconds()).unwrap())
}

async fn second_factor_is_asked_for_and_taken_as_a_code(b: Backend) {
    let app = spawn(b).await;
    let secret = enrolled(&app, "tess").await;
    let id = user_id(&app, TenantId::DEFAULT, "tess").await;
    app.clock.advance(Duration::from_secs(30));

    // Without a code: the password was right, the code is asked for (with a step token).
    let r = post(&app, &[("action", "login"), ("username", "tess"), ("password", PW)]).await;
    let v = r.error(StatusCode::UNAUTHORIZED, "second_factor_required");
    assert!(r.cookie().is_none());
    let step = v["second_factor"]["step_token"].as_str().unwrap().to_owned();
    assert!(v["second_factor"]["expires_at"].is_string());
    // A wrong password says nothing of the second factor.
    post(&app, &[("action", "login"), ("username", "tess"), ("password", PW2)])
        .await
        .error(StatusCode::UNAUTHORIZED, "invalid_credentials");

    // Retried with the code: logged in.
    let c = code(&app, &secret);
    let wrong = if c == "000000" { "111111" } else { "000000" };
    post(&app, &[("action", "login"), ("username", "tess"), ("password", PW), ("code", wrong)])
        .await
        .error(StatusCode::UNAUTHORIZED, "second_factor_invalid");
    let r = post(&app, &[("action", "login"), ("username", "tess"), ("password", PW), ("code", &c)]).await;
    assert_logged_in(&r, id, "tess", "tess@example.com");
    // A code works once.
    post(&app, &[("action", "login"), ("username", "tess"), ("password", PW), ("code", &c)])
        .await
        .error(StatusCode::UNAUTHORIZED, "second_factor_invalid");

    // Or the step token with the next code, without the password.
    app.clock.advance(Duration::from_secs(30));
    post(&app, &[("action", "login"), ("step_token", &step)])
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let r = post(&app, &[("action", "login"), ("step_token", &step), ("code", &code(&app, &secret))]).await;
    assert_logged_in(&r, id, "tess", "tess@example.com");
    let r = post(&app, &[("action", "login"), ("step_token", &step), ("code", &code(&app, &secret))]).await;
    r.error(StatusCode::UNAUTHORIZED, "invalid_token");
    post(&app, &[("action", "login"), ("step_token", "pcs_forged"), ("code", "123456")])
        .await
        .error(StatusCode::UNAUTHORIZED, "invalid_token");
}
