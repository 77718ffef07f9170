//! The OSSN dialect over real HTTP: the document's request and answer, field by field, the
//! variants its clients send, and what it must never tell a stranger.

use portcullis_core::store::AuditQuery;
use portcullis_core::{Dialect, TenantId};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both;
use crate::support::{Backend, TestApp, api_key, enable_dialect, op, tenant};

const PW: &str = "correct horse battery staple";
const PATH: &str = "/api/v1.0/user_authenticate";

/// Sends `pairs` as OSSN clients do: a form POST, or a GET with a query string.
async fn call(app: &TestApp, method: Method, path: &str, pairs: &[(&str, &str)]) -> (StatusCode, Value) {
    let encoded = serde_urlencoded::to_string(pairs).unwrap();
    let req = if method == Method::GET {
        app.client.get(app.url(&format!("{path}?{encoded}")))
    } else {
        app.client
            .request(method, app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encoded)
    };
    let res = req.send().await.unwrap();
    let status = res.status();
    assert_eq!(res.headers()["content-type"], "application/json", "every answer is JSON");
    (status, res.json().await.unwrap())
}

/// A tenant that answers OSSN, a key allowed to check credentials, and Ada with a full profile.
async fn setup(app: &TestApp) -> String {
    enable_dialect(app, TenantId::DEFAULT, Dialect::Ossn).await;
    app.signup(json!({
        "username": "administrator", "email": "admin@example.com", "password": PW,
        "first_name": "System", "last_name": "Administrator", "birth_date": "1988-02-03",
        "gender": "Male", "language": "en",
    }))
    .await;
    api_key(app, Some(TenantId::DEFAULT), &["credentials:verify"]).await
}

both!(
    the_documented_answer_field_by_field,
    get_and_post_and_email_logins_answer_alike,
    an_unknown_user_is_answered_exactly_like_a_wrong_password,
    not_validated_is_said_only_after_the_right_password,
    every_failure_is_an_envelope_with_http_200,
    pictures_are_served_at_the_five_sizes_and_follow_uploads,
    calls_are_audited_as_ossn,
);

async fn the_documented_answer_field_by_field(b: Backend) {
    let app = TestApp::spawn(b).await;
    let key = setup(&app).await;
    let (status, body) =
        call(&app, Method::POST, PATH, &[("api_key_token", &key), ("username", "administrator"), ("password", PW)])
            .await;
    assert_eq!(status, StatusCode::OK);
    let keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["merchant", "url", "time_token", "payload", "code", "message"], "{body}");
    assert_eq!(body["merchant"], "Default");
    assert_eq!(body["url"], format!("{}/", app.base));
    assert_eq!(body["time_token"], json!(app.core.now().unix_micros() / 1_000_000));
    assert_eq!(body["code"], "100");
    assert_eq!(body["message"], "Request successfully executed");
    let p = &body["payload"];
    let keys: Vec<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "guid",
            "first_name",
            "last_name",
            "fullname",
            "username",
            "email",
            "birthdate",
            "gender",
            "icon",
            "cover_url",
            "language"
        ]
    );
    let id = p["guid"].as_str().expect("guid is a string");
    assert!(id.parse::<i64>().is_ok());
    assert_eq!(p["first_name"], "System");
    assert_eq!(p["last_name"], "Administrator");
    assert_eq!(p["fullname"], "System Administrator");
    assert_eq!(p["username"], "administrator");
    assert_eq!(p["email"], "admin@example.com");
    assert_eq!(p["birthdate"], "03/02/1988", "dd/mm/yyyy");
    assert_eq!(p["gender"], "male");
    assert_eq!(p["cover_url"], false);
    assert_eq!(p["language"], "en");
    let sizes: Vec<&str> = p["icon"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(sizes, ["topbar", "smaller", "small", "larger", "large"]);
    assert_eq!(p["icon"]["topbar"], format!("{}/avatars/{id}/topbar/default.jpeg", app.base));

    // A user with an empty profile still gets every field, empty.
    app.signup(json!({"username": "bare", "email": "bare@example.com", "password": PW})).await;
    let (_, body) =
        call(&app, Method::POST, PATH, &[("api_key_token", &key), ("username", "bare"), ("password", PW)]).await;
    let p = &body["payload"];
    assert_eq!((&p["first_name"], &p["last_name"], &p["fullname"]), (&json!(""), &json!(""), &json!("")));
    assert_eq!((&p["birthdate"], &p["gender"], &p["cover_url"]), (&json!(""), &json!(""), &json!(false)));
}

async fn get_and_post_and_email_logins_answer_alike(b: Backend) {
    let app = TestApp::spawn(b).await;
    let key = setup(&app).await;
    let by_post =
        call(&app, Method::POST, PATH, &[("api_key_token", &key), ("username", "administrator"), ("password", PW)])
            .await;
    let by_get =
        call(&app, Method::GET, PATH, &[("api_key_token", &key), ("username", "administrator"), ("password", PW)])
            .await;
    // OSSN looks a username with an @ up as an e-mail address.
    let by_email =
        call(&app, Method::POST, PATH, &[("api_key_token", &key), ("username", "admin@example.com"), ("password", PW)])
            .await;
    assert_eq!(by_post, by_get);
    assert_eq!(by_post, by_email);
    // Extra parameters are ignored; a multipart form works too.
    let form = multipart::form(&[("api_key_token", &key), ("username", "administrator"), ("password", PW)]);
    let res = app
        .client
        .post(app.url(PATH))
        .header("content-type", format!("multipart/form-data; boundary={}", form.0))
        .body(form.1)
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap(), by_post.1);
    let extra = call(
        &app,
        Method::POST,
        PATH,
        &[("api_key_token", &key), ("username", "administrator"), ("password", PW), ("api_version", "1")],
    )
    .await;
    assert_eq!(extra, by_post);
    // Under a tenant's path, with the tenant's key.
    let acme = tenant(&app, "acme", &[]).await;
    enable_dialect(&app, acme, Dialect::Ossn).await;
    let acme_key = api_key(&app, Some(acme), &["credentials:verify"]).await;
    let (_, body) = call(
        &app,
        Method::POST,
        &format!("/t/acme{PATH}"),
        &[("api_key_token", &acme_key), ("username", "administrator"), ("password", PW)],
    )
    .await;
    assert_eq!(body["code"], "105", "acme has no such user: {body}");
    assert_eq!(body["url"], format!("{}/t/acme/", app.base));
}

/// A tiny multipart encoder for the tests (reqwest is built without its own).
mod multipart {
    pub fn form(pairs: &[(&str, &str)]) -> (String, String) {
        let boundary = "----portcullis-test-boundary".to_owned();
        let mut body = String::new();
        for (k, v) in pairs {
            body.push_str(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"));
        }
        body.push_str(&format!("--{boundary}--\r\n"));
        (boundary, body)
    }
}

async fn an_unknown_user_is_answered_exactly_like_a_wrong_password(b: Backend) {
    let app = TestApp::spawn(b).await;
    let key = setup(&app).await;
    let mut answers = Vec::new();
    for username in ["administrator", "nobody", "admin@example.com", "nobody@example.com"] {
        let before = app.core.hasher().verifications();
        let answer =
            call(&app, Method::POST, PATH, &[("api_key_token", &key), ("username", username), ("password", "wrong")])
                .await;
        assert_eq!(app.core.hasher().verifications(), before + 1, "{username}: exactly one verification");
        answers.push(answer);
    }
    assert_eq!(answers[0].1["code"], "105");
    assert_eq!(answers[0].1["message"], "Invalid username and password");
    assert_eq!(answers[0].1["payload"], Value::Null);
    for a in &answers {
        assert_eq!(a, &answers[0], "the same answer, byte for byte");
    }
}

async fn not_validated_is_said_only_after_the_right_password(b: Backend) {
    let app = TestApp::spawn(b).await;
    let acme = tenant(&app, "strict", &[]).await;
    let update = portcullis_core::store::TenantUpdate {
        policy: Some(portcullis_core::model::TenantPolicy {
            require_verified_email: Some(true),
            dialects: Some(vec![Dialect::Ossn]),
            ..Default::default()
        }),
        ..Default::default()
    };
    app.core.update_tenant(&op(), acme, update).await.unwrap();
    let key = api_key(&app, Some(acme), &["credentials:verify"]).await;
    let res = app
        .post("/t/strict/v1/signup", json!({"username": "newbie", "email": "new@example.com", "password": PW}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let path = format!("/t/strict{PATH}");
    let (_, wrong) =
        call(&app, Method::POST, &path, &[("api_key_token", &key), ("username", "newbie"), ("password", "nope")]).await;
    assert_eq!(wrong["code"], "105");
    let (_, right) =
        call(&app, Method::POST, &path, &[("api_key_token", &key), ("username", "newbie"), ("password", PW)]).await;
    assert_eq!((&right["code"], &right["message"]), (&json!("104"), &json!("User not validated")));
    assert_eq!(right["payload"], Value::Null);
}

async fn every_failure_is_an_envelope_with_http_200(b: Backend) {
    let app = TestApp::spawn(b).await;
    let key = setup(&app).await;
    let no_scope = api_key(&app, Some(TenantId::DEFAULT), &["users:read"]).await;
    let other = tenant(&app, "other", &[]).await;
    let others_key = api_key(&app, Some(other), &["credentials:verify"]).await;
    let creds = |k: &'static str| [("username", "administrator"), ("password", PW), ("api_key_token", k)];
    let leak = |k: &str| -> &'static str { Box::leak(k.to_owned().into_boxed_str()) };
    for (what, pairs) in [
        ("no key", vec![("username", "administrator"), ("password", PW)]),
        ("a wrong key", creds("pck_wrong").to_vec()),
        ("a key without credentials:verify", creds(leak(&no_scope)).to_vec()),
        ("another tenant's key", creds(leak(&others_key)).to_vec()),
    ] {
        let (status, body) = call(&app, Method::POST, PATH, &pairs).await;
        assert_eq!((status, &body["code"]), (StatusCode::OK, &json!("106")), "{what}: {body}");
        assert_eq!(body["message"], "Invalid API key");
    }
    for pairs in
        [vec![("api_key_token", key.as_str())], vec![("api_key_token", key.as_str()), ("username", "administrator")]]
    {
        let (status, body) = call(&app, Method::POST, PATH, &pairs).await;
        assert_eq!((status, &body["code"]), (StatusCode::OK, &json!("105")), "missing credentials: {body}");
    }
    let (status, body) = call(&app, Method::PUT, PATH, &creds(leak(&key))).await;
    assert_eq!((status, &body["code"], &body["message"]), (StatusCode::OK, &json!("101"), &json!("Invalid method")));
    let (status, body) = call(&app, Method::POST, "/api/v1.0/user_delete", &creds(leak(&key))).await;
    assert_eq!((status, &body["code"]), (StatusCode::OK, &json!("101")), "{body}");
    let keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["merchant", "url", "time_token", "payload", "code", "message"]);
    // JSON is not a body OSSN takes.
    let res = app
        .client
        .post(app.url(PATH))
        .json(&json!({"api_key_token": key, "username": "administrator", "password": PW}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "107", "{body}");
    // A tenant without the dialect, and a disabled one, answer as though there were no such service.
    let (status, body) = call(&app, Method::POST, &format!("/t/other{PATH}"), &creds(leak(&others_key))).await;
    assert_eq!((status, &body["code"]), (StatusCode::OK, &json!("101")), "{body}");
    let (status, body) = call(&app, Method::POST, &format!("/t/nosuch{PATH}"), &creds(leak(&key))).await;
    assert_eq!((status, &body["code"]), (StatusCode::OK, &json!("101")), "{body}");
    // Nothing was written by any of it: the user is as before and can log in.
    assert_eq!(app.login("administrator", PW).await.0, StatusCode::OK);
}

async fn pictures_are_served_at_the_five_sizes_and_follow_uploads(b: Backend) {
    let app = TestApp::spawn(b).await;
    let key = setup(&app).await;
    let pairs = [("api_key_token", key.as_str()), ("username", "administrator"), ("password", PW)];
    let (_, body) = call(&app, Method::POST, PATH, &pairs).await;
    for (size, px) in [("topbar", 20), ("smaller", 32), ("small", 50), ("large", 100), ("larger", 200)] {
        let url = body["payload"]["icon"][size].as_str().unwrap().replace(&app.base, "");
        let res = app.client.get(app.url(&url)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{url}");
        assert_eq!(res.headers()["content-type"], "image/jpeg");
        let img = image::load_from_memory(&res.bytes().await.unwrap()).unwrap();
        assert_eq!((img.width(), img.height()), (px, px), "{size}");
    }
    // An uploaded picture replaces the generated one under new URLs.
    let token = app.token("administrator", PW).await;
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(300, 200, image::Rgb([200, 10, 10])))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let res = app
        .client
        .put(app.url("/v1/me/avatar"))
        .bearer_auth(&token)
        .header("content-type", "image/png")
        .body(png)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let uploaded: Value = res.json().await.unwrap();
    let (_, body) = call(&app, Method::POST, PATH, &pairs).await;
    assert_eq!(body["payload"]["icon"]["large"], uploaded["urls"]["large"]);
    let url = body["payload"]["icon"]["larger"].as_str().unwrap().replace(&app.base, "");
    assert!(!url.ends_with("/default.jpeg"), "{url}");
    let res = app.client.get(app.url(&url)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let img = image::load_from_memory(&res.bytes().await.unwrap()).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (200, 200));
    let p = img.get_pixel(100, 100).0;
    assert!(p[0] > 150 && p[1] < 60, "the uploaded picture, red: {p:?}");
}

async fn calls_are_audited_as_ossn(b: Backend) {
    let app = TestApp::spawn(b).await;
    let key = setup(&app).await;
    call(&app, Method::POST, PATH, &[("api_key_token", &key), ("username", "administrator"), ("password", PW)]).await;
    call(&app, Method::POST, PATH, &[("api_key_token", &key), ("username", "administrator"), ("password", "no")]).await;
    let q = AuditQuery { tenant_id: Some(TenantId::DEFAULT), limit: 100, ..Default::default() };
    let events = app.core.audit_events(&op(), q, Default::default()).await.unwrap();
    let ossn: Vec<(&str, &Value)> = events
        .iter()
        .filter(|e| e.details["surface"] == "ossn")
        .map(|e| (e.action.as_str(), &e.details["outcome"]))
        .collect();
    assert!(ossn.contains(&("credentials.verified", &json!("valid"))), "{ossn:?}");
    assert!(ossn.contains(&("credentials.verified", &json!("invalid_credentials"))), "{ossn:?}");
    assert!(ossn.iter().any(|(a, _)| *a == "login.failed"), "{ossn:?}");
}
