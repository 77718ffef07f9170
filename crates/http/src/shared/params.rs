//! Parameters as the legacy APIs take them: from the query string and from a body that is a
//! url-encoded form, a multipart form or a JSON object, merged into one list of names and
//! values. Which body formats a surface accepts is its own choice; how a failure is answered is
//! too.

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::Method;
use serde_json::Value;

use super::body::{self, BodyError};

/// Why the parameters could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamsError {
    /// The body is larger than `http.max_body_bytes`.
    TooLarge,
    /// The connection failed or the body was cut short.
    Unreadable,
    /// The body's media type is not one the surface takes (the type, lower-cased).
    UnsupportedMediaType(String),
    /// The body or the query string does not parse (what is wrong, without echoing input).
    Malformed(&'static str),
}

impl From<BodyError> for ParamsError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge => Self::TooLarge,
            BodyError::Unreadable => Self::Unreadable,
        }
    }
}

/// The body formats a surface takes.
#[derive(Debug, Clone, Copy, Default)]
pub struct BodyFormats {
    /// `application/x-www-form-urlencoded`.
    pub form: bool,
    /// `multipart/form-data` (text fields; file fields are ignored).
    pub multipart: bool,
    /// `application/json` (an object of scalar values).
    pub json: bool,
    /// A body with another media type, or none, is read as JSON (clients of some legacy APIs
    /// send JSON without saying so).
    pub json_whatever_type: bool,
}

impl BodyFormats {
    /// Forms, url-encoded or multipart.
    pub const FORMS: Self = Self { form: true, multipart: true, json: false, json_whatever_type: false };
}

/// Names and values, in the order given: the query string's first, then the body's. A name
/// given more than once has the last value given, as PHP's `$_REQUEST` would.
#[derive(Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be passwords: only the names are shown.
        f.debug_list().entries(self.0.iter().map(|(k, _)| k)).finish()
    }
}

impl Params {
    /// Parameters from a list of pairs.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Self(pairs)
    }

    /// The value of `name` (the last one given).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The value of `name`, trimmed, when not empty.
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).map(str::trim).filter(|v| !v.is_empty())
    }

    /// A boolean parameter as legacy clients write one: `1`, `true`, `yes`, `on` (any case)
    /// are true; `0`, `false`, `no`, `off` and the empty string are false; absent is `None`;
    /// anything else is `Some(Err(()))`.
    pub fn flag(&self, name: &str) -> Option<Result<bool, ()>> {
        self.get(name).map(|v| parse_flag(v).ok_or(()))
    }

    /// Whether `name` was given.
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    /// Every name and value, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    fn extend(&mut self, more: Vec<(String, String)>) {
        self.0.extend(more);
    }
}

/// A legacy boolean: see [`Params::flag`].
pub fn parse_flag(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

/// The parameters of a request: its query string, then its body in one of `formats`. A body
/// is read only for methods that carry one; an empty body is no body, whatever its type.
pub async fn read(req: Request, formats: BodyFormats) -> Result<Params, ParamsError> {
    let mut params = Params(query_pairs(req.uri().query())?);
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS | Method::DELETE)
        && req.headers().get(axum::http::header::CONTENT_LENGTH).is_none()
        && req.headers().get(axum::http::header::TRANSFER_ENCODING).is_none()
    {
        return Ok(params);
    }
    let media = body::media_type(req.headers());
    match media.as_deref() {
        Some("multipart/form-data") if formats.multipart => {
            params.extend(multipart_pairs(req).await?);
        }
        Some("application/x-www-form-urlencoded") if formats.form => {
            let bytes = body::read(req, &()).await?;
            params.extend(form_pairs(&bytes)?);
        }
        m if formats.json && (m.is_some_and(is_json_type) || formats.json_whatever_type) => {
            let bytes = body::read(req, &()).await?;
            if !bytes.iter().all(u8::is_ascii_whitespace) {
                params.extend(json_pairs(&bytes)?);
            }
        }
        m => {
            let bytes = body::read(req, &()).await?;
            if !bytes.is_empty() {
                return Err(ParamsError::UnsupportedMediaType(m.unwrap_or("none").to_owned()));
            }
        }
    }
    Ok(params)
}

fn is_json_type(m: &str) -> bool {
    m == "application/json" || m == "text/json" || (m.starts_with("application/") && m.ends_with("+json"))
}

/// The pairs of a query string.
pub fn query_pairs(query: Option<&str>) -> Result<Vec<(String, String)>, ParamsError> {
    match query {
        None | Some("") => Ok(Vec::new()),
        Some(q) => serde_urlencoded::from_str(q).map_err(|_| ParamsError::Malformed("the query string does not parse")),
    }
}

fn form_pairs(bytes: &[u8]) -> Result<Vec<(String, String)>, ParamsError> {
    serde_urlencoded::from_bytes(bytes).map_err(|_| ParamsError::Malformed("the form body does not parse"))
}

fn json_pairs(bytes: &[u8]) -> Result<Vec<(String, String)>, ParamsError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|_| ParamsError::Malformed("the JSON body does not parse"))?;
    let Value::Object(map) = value else { return Err(ParamsError::Malformed("the JSON body must be an object")) };
    let mut pairs = Vec::with_capacity(map.len());
    for (k, v) in map {
        let v = match v {
            Value::Null => continue,
            Value::String(s) => s,
            Value::Bool(b) => if b { "1" } else { "0" }.to_owned(),
            Value::Number(n) => n.to_string(),
            Value::Array(_) | Value::Object(_) => {
                return Err(ParamsError::Malformed("the JSON body's values must be strings, numbers or booleans"));
            }
        };
        pairs.push((k, v));
    }
    Ok(pairs)
}

async fn multipart_pairs(req: Request) -> Result<Vec<(String, String)>, ParamsError> {
    let malformed = |_| ParamsError::Malformed("the multipart body does not parse");
    let mut form = Multipart::from_request(req, &())
        .await
        .map_err(|_| ParamsError::Malformed("the multipart body has no boundary"))?;
    let mut pairs = Vec::new();
    while let Some(field) = form.next_field().await.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE { ParamsError::TooLarge } else { malformed(e) }
    })? {
        let Some(name) = field.name().map(str::to_owned) else { continue };
        if field.file_name().is_some() {
            continue;
        }
        let text = field.text().await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE { ParamsError::TooLarge } else { malformed(e) }
        })?;
        pairs.push((name, text));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use axum::body::Body;

    use super::*;

    fn request(method: &str, uri: &str, ct: Option<&str>, body: &'static str) -> Request {
        let mut b = Request::builder().method(method).uri(uri).header("content-length", body.len());
        if let Some(ct) = ct {
            b = b.header("content-type", ct);
        }
        b.body(Body::from(body)).unwrap()
    }

    #[tokio::test]
    async fn query_and_form_merge_with_the_body_winning() {
        let req = request("POST", "/x?a=1&b=2", Some("application/x-www-form-urlencoded"), "b=3&c=%40");
        let p = read(req, BodyFormats::FORMS).await.unwrap();
        assert_eq!((p.get("a"), p.get("b"), p.get("c")), (Some("1"), Some("3"), Some("@")));
    }

    #[tokio::test]
    async fn multipart_text_fields_are_read_and_files_skipped() {
        let body = "--XX\r\nContent-Disposition: form-data; name=\"action\"\r\n\r\nlogin\r\n\
                    --XX\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n\r\nzzz\r\n--XX--\r\n";
        let req = request("POST", "/x", Some("multipart/form-data; boundary=XX"), body);
        let p = read(req, BodyFormats::FORMS).await.unwrap();
        assert_eq!(p.get("action"), Some("login"));
        assert!(!p.has("f"));
    }

    #[tokio::test]
    async fn json_scalars_become_strings_and_other_types_are_refused_where_not_taken() {
        let json = BodyFormats { json: true, ..BodyFormats::default() };
        let req = request("POST", "/x", Some("application/json"), r#"{"n":2,"b":true,"s":"x","z":null}"#);
        let p = read(req, json).await.unwrap();
        assert_eq!((p.get("n"), p.get("b"), p.get("s"), p.has("z")), (Some("2"), Some("1"), Some("x"), false));
        let req = request("POST", "/x", Some("text/plain"), "a=1");
        assert_eq!(
            read(req, BodyFormats::FORMS).await.unwrap_err(),
            ParamsError::UnsupportedMediaType("text/plain".into())
        );
        let req = request("POST", "/x", None, r#"{"a":"1"}"#);
        let sniff = BodyFormats { json: true, json_whatever_type: true, ..BodyFormats::default() };
        assert_eq!(read(req, sniff).await.unwrap().get("a"), Some("1"));
        let req = request("POST", "/x", Some("application/json"), r#"[1]"#);
        assert!(matches!(read(req, json).await, Err(ParamsError::Malformed(_))));
    }

    #[test]
    fn flags_read_as_legacy_clients_write_them() {
        for (v, want) in [
            ("1", Some(true)),
            ("TRUE", Some(true)),
            ("on", Some(true)),
            ("0", Some(false)),
            ("", Some(false)),
            ("maybe", None),
        ] {
            assert_eq!(parse_flag(v), want, "{v}");
        }
    }
}
