//! The Newspark dialect (`users.confirmCredentials`), over real HTTP: every request of its
//! document replayed on the REST (XML) and JSON paths and compared with the document's
//! samples, the variants real clients send, the `false` answers and their reason codes, the
//! second factor, the key and the vhost, malformed input, audit, and the way to the native API.

use std::time::Duration;

use portcullis_core::store::{AuditQuery, TenantUpdate};
use portcullis_core::{Dialect, TenantId, UserId};
use portcullis_testkit::totp_code;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both;
use crate::support::{Backend, PW, PW2, TestApp, api_key, enable_dialect, op, tenant};

both!(
    the_rest_answers_are_the_documents,
    the_json_answers_are_the_documents,
    parameters_come_by_get_and_by_form_post,
    the_identifier_is_the_username_the_email_or_the_phone,
    login_opens_a_session_the_native_api_accepts,
    wrong_credentials_get_one_false_at_one_cost,
    reasons_are_told_only_after_the_right_password,
    mfatoken_carries_the_second_factor,
    the_key_must_be_the_vhosts,
    malformed_requests_get_errors_in_the_dialects_format,
    too_many_attempts_are_refused_in_the_dialects_format,
    calls_are_audited_with_the_surface,
    accounts_are_shared_with_the_native_api,
);

const REST: &str = "/services/rest/users/confirmCredentials";
const JSON_PATH: &str = "/services/json";
const METHOD: (&str, &str) = ("method", "users.confirmCredentials");
const XML_TYPE: &str = "application/xml; charset=utf-8";

/// The document's second REST sample, as printed (placeholders in capitals).
const SAMPLE_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<result>
  <id>USER_ID</id>
  <user>USER_NAME</user>
  <email>USER_EMAIL</email>
  <firstname>USER_FIRSTNAME</firstname>
  <lastname>USER_LASTNAME</lastname>
  <city>Toronto</city>
  <gender>M</gender>
  <cellphone>4162222222</cellphone>
  <phone>4162222222</phone>
  <website/>
  <occupation/>
  <address1>1 Toronto Street</address1>
  <address2/>
  <state>ON</state>
  <country>CA</country>
  <newsletter>0</newsletter>
  <nickname/>
  <vhost>VHOST_ID</vhost>
  <meta>
    <lang>en</lang>
    <twitterUserName/>
    <rules>1</rules>
  </meta>
</result>
"#;

/// The document's second JSON sample, as printed.
const SAMPLE_JSON: &str = r#"{
    "status": true,
    "result": {
        "id": USER_ID,
        "user": "USER_NAME",
        "email": "USER_EMAIL",
        "firstname": "USER_FIRSTNAME",
        "lastname": "USER_LASTNAME",
        "city": "Toronto",
        "gender": "M",
        "cellphone": "4162222222",
        "phone": "4162222222",
        "website": "",
        "occupation": "",
        "address1": "1 Toronto Street",
        "address2": null,
        "state": "ON",
        "country": "CA",
        "newsletter": "0",
        "nickname": "",
        "vhost": VHOST_ID,
        "meta": {
            "lang": "en",
            "twitterUserName": "",
            "rules": "1"
        }
    }
}"#;

/// An answer, as a client sees it.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: StatusCode,
    content_type: String,
    www_authenticate: Option<String>,
    retry_after: Option<String>,
    body: String,
}

impl Answer {
    async fn of(res: reqwest::Response) -> Self {
        let header = |n: &str| res.headers().get(n).map(|v| v.to_str().unwrap().to_owned());
        let (content_type, www_authenticate, retry_after) =
            (header("content-type").unwrap_or_default(), header("www-authenticate"), header("retry-after"));
        Self { status: res.status(), content_type, www_authenticate, retry_after, body: res.text().await.unwrap() }
    }

    fn json(&self) -> Value {
        assert_eq!(self.content_type, "application/json", "{self:?}");
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// Asserts an XML document whose root holds only text; returns the text.
    fn xml_result(&self) -> String {
        assert_eq!((self.status, self.content_type.as_str()), (StatusCode::OK, XML_TYPE), "{self:?}");
        let text = self
            .body
            .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<result>")
            .and_then(|b| b.strip_suffix("</result>\n"))
            .unwrap_or_else(|| panic!("not a <result> document: {}", self.body));
        text.to_owned()
    }

    /// Asserts `{"status": true, "result": ...}`; returns the result.
    fn json_result(&self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "{self:?}");
        let v = self.json();
        assert_eq!(
            v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()),
            Some(vec!["status".into(), "result".into()])
        );
        assert_eq!(v["status"], true, "{v}");
        v["result"].clone()
    }

    /// Asserts an error answer in XML: status, `<error><code/><message/></error>`.
    fn xml_error(&self, status: StatusCode, code: &str) {
        assert_eq!((self.status, self.content_type.as_str()), (status, XML_TYPE), "{self:?}");
        let head = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<error>\n  <code>{code}</code>\n  <message>");
        assert!(self.body.starts_with(&head) && self.body.ends_with("</message>\n</error>\n"), "{}", self.body);
        assert!(self.body.len() > head.len() + 30, "a message: {}", self.body);
    }

    /// Asserts an error answer in JSON: status, `{"status": false, "error": {code, message}}`.
    fn json_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        let v = self.json();
        assert_eq!(v["status"], false, "{v}");
        assert_eq!(v["error"]["code"], code, "{v}");
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        assert_eq!(v.as_object().unwrap().len(), 2, "{v}");
        assert_eq!(v["error"].as_object().unwrap().len(), 2, "{v}");
    }
}

fn pairs(p: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(p).unwrap()
}

async fn get(app: &TestApp, path: &str, p: &[(&str, &str)]) -> Answer {
    let url = format!("{}?{}", app.url(path), pairs(p));
    Answer::of(app.client.get(url).send().await.unwrap()).await
}

/// POST with `query` in the URL and `body` as a url-encoded form.
async fn post_form(app: &TestApp, path: &str, query: &[(&str, &str)], body: &[(&str, &str)]) -> Answer {
    let url = if query.is_empty() { app.url(path) } else { format!("{}?{}", app.url(path), pairs(query)) };
    let res = app
        .client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(pairs(body))
        .send()
        .await
        .unwrap();
    Answer::of(res).await
}

async fn post_multipart(app: &TestApp, path: &str, body: &[(&str, &str)]) -> Answer {
    let mut text = String::new();
    for (k, v) in body {
        text.push_str(&format!("--BOUNDARY\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"));
    }
    text.push_str("--BOUNDARY--\r\n");
    let res = app
        .client
        .post(app.url(path))
        .header("content-type", "multipart/form-data; boundary=BOUNDARY")
        .body(text)
        .send()
        .await
        .unwrap();
    Answer::of(res).await
}

async fn raw(app: &TestApp, method: &str, path: &str, ct: Option<&str>, body: Vec<u8>) -> Answer {
    let mut req = app.client.request(Method::from_bytes(method.as_bytes()).unwrap(), app.url(path));
    if let Some(ct) = ct {
        req = req.header("content-type", ct);
    }
    Answer::of(req.body(body).send().await.unwrap()).await
}

/// The default tenant with Newspark on, a key that may verify credentials, and `ada`, whose
/// profile is the document's sample user.
struct Fixture {
    app: TestApp,
    key: String,
    id: i64,
    /// Ada's session from her sign-up.
    session: String,
}

impl Fixture {
    /// The parameters of a call for `ada` with her password, then `extra` (later wins).
    fn params<'a>(&'a self, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut p = vec![("vhost", "1"), ("username", "ada"), ("password", PW), ("APIKEY", self.key.as_str())];
        p.extend_from_slice(extra);
        p
    }

    async fn rest(&self, extra: &[(&str, &str)]) -> Answer {
        get(&self.app, REST, &self.params(extra)).await
    }

    async fn json(&self, extra: &[(&str, &str)]) -> Answer {
        let mut p = vec![METHOD];
        p.extend(self.params(extra));
        get(&self.app, JSON_PATH, &p).await
    }
}

async fn fixture_with(b: Backend, tweak: impl FnOnce(&mut portcullis::config::Config)) -> Fixture {
    let app = TestApp::spawn_with(b, tweak).await;
    enable_dialect(&app, TenantId::DEFAULT, Dialect::Newspark).await;
    let key = api_key(&app, Some(TenantId::DEFAULT), &["credentials:verify"]).await;
    let body = app
        .signup(json!({
            "username": "ada", "email": "ada@example.com", "phone": "4162222222", "password": PW,
            "first_name": "Ada", "last_name": "Lovelace", "city": "Toronto", "gender": "male",
            "cellphone": "4162222222", "address_line1": "1 Toronto Street", "state": "ON", "country": "CA",
            "meta": {"lang": "en", "twitterUserName": "", "rules": "1"},
        }))
        .await;
    let id = body["user"]["id"].as_i64().unwrap();
    // No session when the vhost wants verified addresses first.
    let session = body["session"]["token"].as_str().unwrap_or_default().to_owned();
    Fixture { app, key, id, session }
}

async fn fixture(b: Backend) -> Fixture {
    fixture_with(b, |_| {}).await
}

/// The sample with `ada`'s values in its placeholders.
fn sample(text: &str, id: i64) -> String {
    text.replace("USER_ID", &id.to_string())
        .replace("USER_NAME", "ada")
        .replace("USER_EMAIL", "ada@example.com")
        .replace("USER_FIRSTNAME", "Ada")
        .replace("USER_LASTNAME", "Lovelace")
        .replace("VHOST_ID", "1")
}

/// How many sessions `ada` has that the dialect opened (those of the test client itself carry
/// its user agent), as she sees them with the session of her sign-up.
async fn dialect_sessions(f: &Fixture) -> usize {
    let (s, list) = f.app.send(Method::GET, "/v1/sessions", &f.session, None).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    list["sessions"].as_array().unwrap().iter().filter(|s| s["user_agent"] != "portcullis-tests/1.0").count()
}

/// The document with the lines of its `<meta>` element sorted: `meta` is kept as a JSON
/// object, and PostgreSQL's `jsonb` does not keep the order of its keys.
fn meta_sorted(doc: &str) -> String {
    let (head, rest) = doc.split_once("  <meta>\n").unwrap_or_else(|| panic!("no <meta>: {doc}"));
    let (meta, tail) = rest.split_once("  </meta>\n").unwrap();
    let mut lines: Vec<&str> = meta.lines().collect();
    lines.sort_unstable();
    format!("{head}  <meta>\n{}\n  </meta>\n{tail}", lines.join("\n"))
}

async fn the_rest_answers_are_the_documents(b: Backend) {
    let f = fixture(b).await;
    // The first sample: the user id alone.
    let a = f.rest(&[]).await;
    assert_eq!(a.xml_result(), f.id.to_string());
    assert_eq!(a.body, format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<result>{}</result>\n", f.id));

    // The second: the user struct, element for element, in the sample's order. The one
    // addition is `postal`, which the document's table names and its sample leaves out.
    let a = f.rest(&[("returnUserInfo", "true")]).await;
    let want = sample(SAMPLE_XML, f.id).replace("  <country>CA</country>\n", "  <country>CA</country>\n  <postal/>\n");
    assert_eq!((a.status, a.content_type.as_str()), (StatusCode::OK, XML_TYPE));
    assert_eq!(meta_sorted(&a.body), meta_sorted(&want));

    // A wrong password: the word false.
    let a = f.rest(&[("password", "not the password")]).await;
    assert_eq!(a.xml_result(), "false");
    let a = f.rest(&[("password", "not the password"), ("returnUserInfo", "true")]).await;
    assert_eq!(a.xml_result(), "false", "returnUserInfo changes nothing for a wrong password");

    // Values that need escaping are escaped, and the profile's other fields come through.
    let token = f.app.token("ada", PW).await;
    let patch = json!({"first_name": "Ada <&> \"Byron\"", "website": "https://ada.example", "newsletter": true,
        "postal_code": "M5V 2T6", "address_line2": "Suite 5", "nickname": "Countess", "occupation": "Analyst",
        "gender": "F", "meta": {}});
    let (s, _) = f.app.send(Method::PATCH, "/v1/me", &token, Some(patch)).await;
    assert_eq!(s, StatusCode::OK);
    let a = f.rest(&[("returnUserInfo", "1")]).await;
    for line in [
        "<firstname>Ada &lt;&amp;&gt; &quot;Byron&quot;</firstname>",
        "<website>https://ada.example</website>",
        "<newsletter>1</newsletter>",
        "<postal>M5V 2T6</postal>",
        "<address2>Suite 5</address2>",
        "<nickname>Countess</nickname>",
        "<occupation>Analyst</occupation>",
        "<gender>F</gender>",
        "<meta/>",
    ] {
        assert!(a.body.contains(&format!("  {line}\n")), "{line} in {}", a.body);
    }
}

async fn the_json_answers_are_the_documents(b: Backend) {
    let f = fixture(b).await;
    let a = f.json(&[]).await;
    assert_eq!(a.json(), json!({"status": true, "result": f.id}));
    assert!(a.json_result().is_i64(), "the user id is a number");

    let a = f.json(&[("returnUserInfo", "true")]).await;
    let got = a.json();
    let mut want: Value = serde_json::from_str(&sample(SAMPLE_JSON, f.id)).unwrap();
    want["result"]["postal"] = json!("");
    assert_eq!(got, want, "every key, every value, every type");
    // In the sample's order, `postal` after `country`.
    let keys: Vec<&str> = got["result"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "id",
            "user",
            "email",
            "firstname",
            "lastname",
            "city",
            "gender",
            "cellphone",
            "phone",
            "website",
            "occupation",
            "address1",
            "address2",
            "state",
            "country",
            "postal",
            "newsletter",
            "nickname",
            "vhost",
            "meta"
        ]
    );
    assert!(got["result"]["id"].is_i64() && got["result"]["vhost"].is_i64());
    assert!(got["result"]["newsletter"].is_string() && got["result"]["meta"]["rules"].is_string());
    assert!(got["result"]["address2"].is_null());

    let a = f.json(&[("password", "not the password")]).await;
    assert_eq!(a.body, r#"{"status":true,"result":false}"#);
    assert_eq!((a.status, a.content_type.as_str()), (StatusCode::OK, "application/json"));

    // A second address line is a string once set.
    let token = f.app.token("ada", PW).await;
    f.app.send(Method::PATCH, "/v1/me", &token, Some(json!({"address_line2": "Suite 5"}))).await;
    assert_eq!(f.json(&[("returnUserInfo", "yes")]).await.json_result()["address2"], "Suite 5");
}

async fn parameters_come_by_get_and_by_form_post(b: Backend) {
    let f = fixture(b).await;
    let id = f.id.to_string();
    let all = f.params(&[]);
    // A url-encoded form, a multipart form, and a form with the key in the query string.
    assert_eq!(post_form(&f.app, REST, &[], &all).await.xml_result(), id);
    assert_eq!(post_multipart(&f.app, REST, &all).await.xml_result(), id);
    let key = [("APIKEY", f.key.as_str()), ("vhost", "1")];
    assert_eq!(post_form(&f.app, REST, &key, &[("username", "ada"), ("password", PW)]).await.xml_result(), id);
    let mut with_method = vec![METHOD];
    with_method.extend_from_slice(&all);
    assert_eq!(post_form(&f.app, JSON_PATH, &[], &with_method).await.json_result(), json!(f.id));
    assert_eq!(post_multipart(&f.app, JSON_PATH, &with_method).await.json_result(), json!(f.id));
    // The method in the query string, the rest in the body; its name in any case.
    let a = post_form(&f.app, JSON_PATH, &[("method", "Users.ConfirmCredentials")], &all).await;
    assert_eq!(a.json_result(), json!(f.id));
    // The body wins over the query string, as PHP's $_REQUEST would have it.
    let a = post_form(&f.app, REST, &[("password", "wrong")], &all).await;
    assert_eq!(a.xml_result(), id);
    // Parameters the document does not name are ignored; flags as clients write them.
    let a = f.rest(&[("format", "xml"), ("callback", "x"), ("api_version", "2"), ("returnUserInfo", "0")]).await;
    assert_eq!(a.xml_result(), id);
    for yes in ["1", "true", "TRUE", "yes", "on"] {
        let a = f.json(&[("returnUserInfo", yes)]).await;
        assert!(a.json_result().is_object(), "{yes}");
    }
    for no in ["0", "false", "no", "off", ""] {
        assert_eq!(f.json(&[("returnUserInfo", no)]).await.json_result(), json!(f.id), "{no}");
    }
    // A HEAD request gets the headers of a GET.
    let url = format!("{}?{}", f.app.url(REST), pairs(&all));
    let head = f.app.client.head(url).send().await.unwrap();
    assert_eq!((head.status(), head.headers()["content-type"].to_str().unwrap()), (StatusCode::OK, XML_TYPE));
    // The key may come as a bearer token instead of APIKEY.
    let no_key: Vec<_> = all.iter().copied().filter(|(k, _)| *k != "APIKEY").collect();
    let url = format!("{}?{}", f.app.url(REST), pairs(&no_key));
    let res = f.app.client.get(url).bearer_auth(&f.key).send().await.unwrap();
    assert_eq!(Answer::of(res).await.xml_result(), id);
    // Under a tenant prefix too (the vhost still names the tenant).
    let a = get(&f.app, &format!("/t/default{REST}"), &all).await;
    assert_eq!(a.xml_result(), id);
}

async fn the_identifier_is_the_username_the_email_or_the_phone(b: Backend) {
    let f = fixture(b).await;
    let id = json!(f.id);
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], bool);
    let cases: [Case; 12] = [
        ("ada", &[], true),
        ("ADA", &[], true),
        (" ada ", &[], true),
        ("ada@example.com", &[("isEmail", "true")], true),
        ("Ada@Example.com", &[("isEmail", "1")], true),
        ("4162222222", &[("isPhone", "true")], true),
        ("416-222-2222", &[("isPhone", "true")], true),
        // Without a flag, the username only...
        ("4162222222", &[], false),
        // ...but an `@` is never in a username, so it is an e-mail address.
        ("ada@example.com", &[], true),
        // With a flag, that field only.
        ("ada", &[("isEmail", "true")], false),
        ("ada", &[("isPhone", "true")], false),
        ("ada@example.com", &[("isPhone", "true")], false),
    ];
    for (username, flags, ok) in cases {
        let mut extra = vec![("username", username)];
        extra.extend_from_slice(flags);
        let got = f.json(&extra).await.json_result();
        assert_eq!(got, if ok { id.clone() } else { json!(false) }, "{username} {flags:?}");
    }
    // Both flags at once: which field is meant is unclear, and the call says so.
    f.json(&[("isEmail", "1"), ("isPhone", "1")]).await.json_error(StatusCode::BAD_REQUEST, "INVALID_PARAMETER");
}

async fn login_opens_a_session_the_native_api_accepts(b: Backend) {
    let f = fixture(b).await;
    let a = f.json(&[("returnUserInfo", "true"), ("login", "true")]).await;
    let user = a.json_result();
    let token = user["sessiontoken"].as_str().unwrap().to_owned();
    assert!(token.starts_with("pcs_"), "a Portcullis session token");
    let keys: Vec<&str> = user.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.last(), Some(&"sessiontoken"), "after the documented fields");
    assert_eq!(f.app.session_status(&token).await, StatusCode::OK, "the native API accepts it");
    let (_, me) = f.app.send(Method::GET, "/v1/me", &token, None).await;
    assert_eq!(me["user"]["username"], "ada", "{me}");

    // The REST form: `<sessiontoken>` in the struct.
    let a = f.rest(&[("returnUserInfo", "true"), ("login", "1")]).await;
    let line = a.body.lines().find(|l| l.starts_with("  <sessiontoken>")).unwrap();
    let token2 = line.trim().strip_prefix("<sessiontoken>").unwrap().strip_suffix("</sessiontoken>").unwrap();
    assert_ne!(token2, token);
    assert_eq!(f.app.session_status(token2).await, StatusCode::OK);
    assert_eq!(dialect_sessions(&f).await, 2);

    // "If the returnUserInfo is false, login will be ignored": no session, no token.
    assert_eq!(f.json(&[("login", "true")]).await.json_result(), json!(f.id));
    let without = f.json(&[("returnUserInfo", "true")]).await.json_result();
    assert!(without.get("sessiontoken").is_none(), "{without}");
    assert_eq!(dialect_sessions(&f).await, 2, "no session was opened");
    // A wrong password opens none either.
    let a = f.json(&[("returnUserInfo", "true"), ("login", "true"), ("password", "wrong")]).await;
    assert_eq!(a.json_result(), json!(false));
    assert_eq!(dialect_sessions(&f).await, 2);
}

async fn wrong_credentials_get_one_false_at_one_cost(b: Backend) {
    let f = fixture(b).await;
    let unknown_user: &[(&str, &str)] = &[("username", "nobody")];
    let wrong_password: &[(&str, &str)] = &[("password", "not the password")];
    let unknown_email: &[(&str, &str)] = &[("username", "nobody@example.com"), ("isEmail", "true")];
    let wrong_password_by_email: &[(&str, &str)] =
        &[("username", "ada@example.com"), ("isEmail", "true"), ("password", "wrong")];
    let unknown_phone: &[(&str, &str)] = &[("username", "+1 555 0100"), ("isPhone", "true")];
    let long_username = "x".repeat(5000);
    let long: &[(&str, &str)] = &[("username", long_username.as_str())];
    let long_password = "p".repeat(5000);
    let long_pw: &[(&str, &str)] = &[("password", long_password.as_str())];
    let with_code: &[(&str, &str)] = &[("password", "wrong"), ("mfatoken", "123456")];
    let causes =
        [unknown_user, wrong_password, unknown_email, wrong_password_by_email, unknown_phone, long, long_pw, with_code];
    for detailed in [None, Some(("detailedError", "true"))] {
        let mut rest = Vec::new();
        let mut json = Vec::new();
        for cause in causes {
            let mut extra = cause.to_vec();
            extra.extend(detailed);
            for (answers, format) in [(&mut rest, "rest"), (&mut json, "json")] {
                let before = f.app.core.hasher().verifications();
                let a = if format == "rest" { f.rest(&extra).await } else { f.json(&extra).await };
                assert_eq!(f.app.core.hasher().verifications(), before + 1, "{extra:?}: one verification");
                answers.push(a);
            }
        }
        for a in &rest {
            assert_eq!(a, &rest[0], "one answer in XML");
        }
        for a in &json {
            assert_eq!(a, &json[0], "one answer in JSON");
        }
        let (x, j) = if detailed.is_some() {
            ("INVALID_CREDENTIALS", json!("INVALID_CREDENTIALS"))
        } else {
            ("false", json!(false))
        };
        assert_eq!(rest[0].xml_result(), x);
        assert_eq!(json[0].json_result(), j);
        assert_eq!((rest[0].www_authenticate.as_ref(), json[0].www_authenticate.as_ref()), (None, None));
    }
}

async fn reasons_are_told_only_after_the_right_password(b: Backend) {
    let f = fixture_with(b, |c| c.policy.require_verified_email = true).await;
    let detailed = ("detailedError", "true");
    // The sign-up left the address unverified.
    assert_eq!(f.json(&[detailed]).await.json_result(), "EMAIL_NOT_VERIFIED");
    assert_eq!(f.rest(&[detailed]).await.xml_result(), "EMAIL_NOT_VERIFIED");
    assert_eq!(f.json(&[]).await.json_result(), json!(false), "without detailedError: false");
    assert_eq!(f.json(&[detailed, ("password", "wrong")]).await.json_result(), "INVALID_CREDENTIALS");

    let admin = api_key(&f.app, Some(TenantId::DEFAULT), &["users:manage"]).await;
    let path = format!("/v1/admin/users/{}", f.id);
    let (s, _) =
        f.app.send(Method::PATCH, &path, &admin, Some(json!({"email_verified": true, "status": "active"}))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(f.json(&[detailed]).await.json_result(), json!(f.id), "a right answer is the id, detailed or not");

    f.app.core.set_user_disabled(&op(), TenantId::DEFAULT, UserId(f.id), true).await.unwrap();
    assert_eq!(f.json(&[detailed]).await.json_result(), "ACCOUNT_DISABLED");
    assert_eq!(f.rest(&[detailed, ("returnUserInfo", "1")]).await.xml_result(), "ACCOUNT_DISABLED");
    assert_eq!(f.rest(&[]).await.xml_result(), "false");
    assert_eq!(f.json(&[detailed, ("password", "wrong")]).await.json_result(), "INVALID_CREDENTIALS");
    assert_eq!(f.json(&[detailed, ("username", "nobody")]).await.json_result(), "INVALID_CREDENTIALS");
}

/// The code the user's app shows at the application's time.
fn code(app: &TestApp, secret: &str) -> String {
    totp_code(secret, u64::try_from(app.core.now().unix_seconds()).unwrap())
}

async fn mfatoken_carries_the_second_factor(b: Backend) {
    // More codes are tried here than the default budget of five a minute allows.
    let f = fixture_with(b, |c| c.rate_limits.second_factor_per_account_per_minute = 100).await;
    let token = f.app.token("ada", PW).await;
    let (_, e) = f.app.send(Method::POST, "/v1/me/second-factor/totp", &token, Some(json!({"password": PW}))).await;
    let secret = e["secret"].as_str().unwrap().to_owned();
    let (s, c) = f
        .app
        .send(Method::POST, "/v1/me/second-factor/totp/confirm", &token, Some(json!({"code": code(&f.app, &secret)})))
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    let recovery = c["recovery_codes"][0].as_str().unwrap().to_owned();
    f.app.clock.advance(Duration::from_secs(30));

    let detailed = ("detailedError", "1");
    // Without a code: false (there is no second step in Newspark), and no session.
    assert_eq!(f.json(&[]).await.json_result(), json!(false));
    assert_eq!(f.json(&[detailed, ("returnUserInfo", "1"), ("login", "1")]).await.json_result(), "MFA_REQUIRED");
    assert_eq!(f.rest(&[detailed, ("mfatoken", "")]).await.xml_result(), "MFA_REQUIRED");
    let now = code(&f.app, &secret);
    let wrong = if now == "000000" { "111111" } else { "000000" };
    assert_eq!(f.json(&[detailed, ("mfatoken", wrong)]).await.json_result(), "MFA_INVALID");
    assert_eq!(f.json(&[("mfatoken", wrong)]).await.json_result(), json!(false));
    // A wrong password says nothing about the second factor, whatever code comes with it.
    let a = f.json(&[detailed, ("mfatoken", now.as_str()), ("password", "wrong")]).await;
    assert_eq!(a.json_result(), "INVALID_CREDENTIALS");
    // The right code, with a session.
    let a = f.json(&[("mfatoken", now.as_str()), ("returnUserInfo", "1"), ("login", "1")]).await;
    let user = a.json_result();
    assert_eq!(user["id"], json!(f.id));
    assert_eq!(f.app.session_status(user["sessiontoken"].as_str().unwrap()).await, StatusCode::OK);
    // The same code again: used.
    assert_eq!(f.json(&[detailed, ("mfatoken", now.as_str())]).await.json_result(), "MFA_INVALID");
    // A recovery code works once.
    assert_eq!(f.rest(&[("mfatoken", recovery.as_str())]).await.xml_result(), f.id.to_string());
    assert_eq!(f.rest(&[("mfatoken", recovery.as_str())]).await.xml_result(), "false");
}

async fn the_key_must_be_the_vhosts(b: Backend) {
    let f = fixture(b).await;
    let app = &f.app;
    let acme = tenant(app, "acme", &[]).await;
    enable_dialect(app, acme, Dialect::Newspark).await;
    let acme_key = api_key(app, Some(acme), &["credentials:verify"]).await;
    let off = tenant(app, "off", &[]).await;
    let off_key = api_key(app, Some(off), &["credentials:verify"]).await;
    let gone = tenant(app, "gone", &[]).await;
    enable_dialect(app, gone, Dialect::Newspark).await;
    let gone_key = api_key(app, Some(gone), &["credentials:verify"]).await;
    let update = TenantUpdate { disabled: Some(true), ..Default::default() };
    app.core.update_tenant(&op(), gone, update).await.unwrap();
    let reader = api_key(app, Some(TenantId::DEFAULT), &["users:read"]).await;
    let operator = api_key(app, None, &["operator"]).await;
    let (acme_id, off_id, gone_id) = (acme.0.to_string(), off.0.to_string(), gone.0.to_string());
    let forged = format!("pck_{}", "A".repeat(43));
    let long = format!("pck_{}", "A".repeat(5000));

    // Every way the key is not the vhost's gets one answer, the same as a vhost that does not
    // exist, is disabled or has not switched Newspark on.
    let refused: Vec<Vec<(&str, &str)>> = vec![
        vec![("APIKEY", "nonsense")],
        vec![("APIKEY", forged.as_str())],
        vec![("APIKEY", long.as_str())],
        vec![("APIKEY", acme_key.as_str())],
        vec![("vhost", acme_id.as_str())],
        vec![("vhost", "999999")],
        vec![("vhost", "-3")],
        vec![("vhost", off_id.as_str()), ("APIKEY", off_key.as_str())],
        vec![("vhost", gone_id.as_str()), ("APIKEY", gone_key.as_str())],
    ];
    let mut rest = Vec::new();
    let mut json = Vec::new();
    for extra in &refused {
        let before = app.core.hasher().verifications();
        rest.push(f.rest(extra).await);
        json.push(f.json(extra).await);
        assert_eq!(app.core.hasher().verifications(), before, "{extra:?}: no password is checked");
    }
    rest[0].xml_error(StatusCode::UNAUTHORIZED, "INVALID_APIKEY");
    json[0].json_error(StatusCode::UNAUTHORIZED, "INVALID_APIKEY");
    assert_eq!(rest[0].www_authenticate.as_deref(), Some("Bearer realm=\"portcullis\""));
    for (i, extra) in refused.iter().enumerate() {
        assert_eq!(rest[i], rest[0], "{extra:?}");
        assert_eq!(json[i], json[0], "{extra:?}");
    }

    // A key of the vhost without the scope is told so.
    f.rest(&[("APIKEY", reader.as_str())]).await.xml_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    f.json(&[("APIKEY", reader.as_str())]).await.json_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    // An operator key serves every vhost; the vhost's own key serves it.
    assert_eq!(f.json(&[("APIKEY", operator.as_str())]).await.json_result(), json!(f.id));
    let a = f.json(&[("vhost", acme_id.as_str()), ("APIKEY", acme_key.as_str())]).await;
    assert_eq!(a.json_result(), json!(false), "ada is the default vhost's, not acme's");
    // Once switched off, the vhost stops answering.
    app.core.set_dialect(&op(), TenantId::DEFAULT, Dialect::Newspark, false).await.unwrap();
    assert_eq!(f.json(&[]).await, json[0]);
}

async fn malformed_requests_get_errors_in_the_dialects_format(b: Backend) {
    let f = fixture(b).await;
    let app = &f.app;
    let without = |name: &str| -> Vec<(&str, &str)> { f.params(&[]).into_iter().filter(|(k, _)| *k != name).collect() };
    for name in ["vhost", "username", "password", "APIKEY"] {
        let p = without(name);
        let a = get(app, REST, &p).await;
        a.xml_error(StatusCode::BAD_REQUEST, "MISSING_PARAMETER");
        assert!(a.body.contains(name), "{name}: {}", a.body);
        let mut with_method = vec![METHOD];
        with_method.extend(p);
        get(app, JSON_PATH, &with_method).await.json_error(StatusCode::BAD_REQUEST, "MISSING_PARAMETER");
        // Empty is missing too (a password of spaces is a password).
        let blank = f.params(&[(name, "")]);
        get(app, REST, &blank).await.xml_error(StatusCode::BAD_REQUEST, "MISSING_PARAMETER");
    }
    get(app, JSON_PATH, &f.params(&[])).await.json_error(StatusCode::BAD_REQUEST, "MISSING_PARAMETER");
    let mut other = vec![("method", "users.create")];
    other.extend(f.params(&[]));
    get(app, JSON_PATH, &other).await.json_error(StatusCode::BAD_REQUEST, "UNKNOWN_METHOD");
    let digits = "9".repeat(100);
    for bad in [
        vec![("vhost", "one")],
        vec![("vhost", "1.5")],
        vec![("vhost", digits.as_str())],
        vec![("returnUserInfo", "maybe")],
        vec![("login", "2")],
        vec![("isEmail", "sure")],
        vec![("detailedError", "verbose")],
    ] {
        f.rest(&bad).await.xml_error(StatusCode::BAD_REQUEST, "INVALID_PARAMETER");
        f.json(&bad).await.json_error(StatusCode::BAD_REQUEST, "INVALID_PARAMETER");
    }
    // A password of spaces is checked, not refused.
    assert_eq!(f.json(&[("password", "   ")]).await.json_result(), json!(false));

    // Bodies: JSON, plain text, too large, a broken multipart, a broken query string.
    let form = pairs(&f.params(&[]));
    for (path, json_answer) in [(REST, false), (JSON_PATH, true)] {
        let check = |a: Answer, status: StatusCode, code: &str| {
            if json_answer { a.json_error(status, code) } else { a.xml_error(status, code) }
        };
        let body = serde_json::to_vec(&json!({"vhost": 1, "username": "ada", "password": PW})).unwrap();
        check(
            raw(app, "POST", path, Some("application/json"), body).await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
        );
        check(
            raw(app, "POST", path, Some("text/plain"), form.clone().into_bytes()).await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
        );
        check(
            raw(app, "POST", path, None, form.clone().into_bytes()).await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
        );
        let huge = format!("{form}&bio={}", "x".repeat(70 * 1024));
        check(
            raw(app, "POST", path, Some("application/x-www-form-urlencoded"), huge.into_bytes()).await,
            StatusCode::PAYLOAD_TOO_LARGE,
            "REQUEST_TOO_LARGE",
        );
        let broken = b"--B\r\nContent-Disposition: form-data; name=\"vhost\"\r\n\r\n1".to_vec();
        check(
            raw(app, "POST", path, Some("multipart/form-data; boundary=B"), broken).await,
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER",
        );
        check(
            raw(app, "POST", path, Some("multipart/form-data"), b"x".to_vec()).await,
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER",
        );
        // Other methods.
        for method in ["PUT", "DELETE", "PATCH"] {
            check(raw(app, method, path, None, vec![]).await, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
        }
    }
    // Paths that do not exist, each in the format of the route it is under.
    for path in [
        "/services/rest/users/confirmcredentials",
        "/services/rest/users/create",
        "/services/rest",
        "/services",
        "/services/soap",
    ] {
        raw(app, "GET", path, None, vec![]).await.xml_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    }
    // The tenant is the vhost's: a /t/{slug} prefix changes nothing, even one naming no tenant.
    raw(app, "GET", "/t/nope/services/rest/users/confirmCredentials", None, vec![])
        .await
        .xml_error(StatusCode::BAD_REQUEST, "MISSING_PARAMETER");
    raw(app, "GET", "/services/json/users.confirmCredentials", None, vec![])
        .await
        .json_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    // Nothing was written: no session, and ada still logs in.
    assert_eq!(dialect_sessions(&f).await, 0);
}

async fn too_many_attempts_are_refused_in_the_dialects_format(b: Backend) {
    let f = fixture_with(b, |c| c.rate_limits.login_per_identifier_per_minute = 3).await;
    for _ in 0..3 {
        assert_eq!(f.json(&[("password", "wrong")]).await.json_result(), json!(false));
    }
    let a = f.json(&[]).await;
    a.json_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    assert!(a.retry_after.as_deref().is_some_and(|s| s.parse::<u64>().is_ok_and(|n| n >= 1)), "{a:?}");
    let a = f.rest(&[]).await;
    a.xml_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    assert!(a.retry_after.is_some());
    // Unknown accounts are limited alike.
    for _ in 0..3 {
        f.json(&[("username", "nobody")]).await;
    }
    f.json(&[("username", "nobody")]).await.json_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
}

async fn calls_are_audited_with_the_surface(b: Backend) {
    let f = fixture(b).await;
    f.json(&[("returnUserInfo", "1"), ("login", "1")]).await;
    f.rest(&[("password", "wrong")]).await;
    f.app.core.flush_audit().await.unwrap();
    let q = AuditQuery {
        tenant_id: Some(TenantId::DEFAULT),
        action: Some("credentials.verified".into()),
        limit: 100,
        ..Default::default()
    };
    let events = f.app.core.audit_events(&op(), q, Default::default()).await.unwrap();
    let seen: Vec<(Option<i64>, Value, Value, Value)> = events
        .iter()
        .map(|e| {
            (
                e.user_id.map(|u| u.0),
                e.details["surface"].clone(),
                e.details["outcome"].clone(),
                e.details["session"].clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (None, json!("newspark"), json!("invalid_credentials"), json!(false)),
            (Some(f.id), json!("newspark"), json!("valid"), json!(true)),
        ]
    );
    assert!(events.iter().all(|e| e.actor.starts_with("key:")), "the calling server acted");
    // The session opened is recorded with its surface too, and no secret is anywhere.
    let q = AuditQuery { tenant_id: Some(TenantId::DEFAULT), limit: 100, ..Default::default() };
    let all = f.app.core.audit_events(&op(), q, Default::default()).await.unwrap();
    let text = serde_json::to_string(&all.iter().map(|e| &e.details).collect::<Vec<_>>()).unwrap();
    assert!(!text.contains(PW) && !text.contains(&f.key) && !text.contains("pcs_"), "{text}");
    let via_dialect = all.iter().filter(|e| e.details["surface"] == "newspark").count();
    assert!(via_dialect >= 3, "{text}");
}

async fn accounts_are_shared_with_the_native_api(b: Backend) {
    let app = TestApp::spawn(b).await;
    let acme = tenant(&app, "acme", &[]).await;
    enable_dialect(&app, acme, Dialect::Newspark).await;
    let key = api_key(&app, Some(acme), &["credentials:verify"]).await;
    // Created natively in acme, checked here with acme's vhost.
    let res = app
        .post("/t/acme/v1/signup", json!({"username": "grace", "email": "grace@example.com", "password": PW2}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let vhost = acme.0.to_string();
    let p = [
        ("vhost", vhost.as_str()),
        ("username", "grace"),
        ("password", PW2),
        ("APIKEY", key.as_str()),
        ("returnUserInfo", "1"),
        ("login", "1"),
    ];
    let user = get(&app, REST, &p).await;
    assert!(user.body.contains(&format!("  <vhost>{vhost}</vhost>\n")), "{}", user.body);
    let line = user.body.lines().find(|l| l.starts_with("  <sessiontoken>")).unwrap();
    let token = line.trim().trim_start_matches("<sessiontoken>").trim_end_matches("</sessiontoken>");
    // The session it opened is acme's, on the native API.
    let res = app.call(Method::GET, "/t/acme/v1/session", Some(token), None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app.call(Method::GET, "/v1/session", Some(token), None).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "not the default tenant's");
    // And the user logs in natively with the same password.
    let res = app.post("/t/acme/v1/login", json!({"login": "grace", "password": PW2})).await;
    assert_eq!(res.status(), StatusCode::OK);
}
