//! Cross-site request forgery protection without tokens, after the scheme of Go 1.25's
//! `http.CrossOriginProtection` (as tower-http's `CsrfLayer` also implements it), with one
//! difference that layer cannot express: a request carrying a bearer credential
//! (`Authorization: Bearer`) passes, because a browser never attaches one on another site's
//! behalf. (It does attach HTTP Basic credentials it has cached, so those get no pass.) What is
//! left to protect are requests that ride on a cookie or on cached credentials.
//!
//! A state-changing request passes when its method is safe (GET, HEAD, OPTIONS), when it
//! carries a bearer credential, when `Sec-Fetch-Site` is `same-origin` or `none`, when neither
//! `Sec-Fetch-Site` nor `Origin` is present (not a browser), or when `Origin` names this host.

use axum::extract::Request;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::Response;

use super::{Rejection, Surface};

/// The middleware; a refusal is answered in the surface's format.
pub(crate) async fn guard<S: Surface>(req: Request, next: Next) -> Response {
    if allowed(&req) { next.run(req).await } else { S::reject(Rejection::CrossSite) }
}

fn allowed(req: &Request) -> bool {
    matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) || !cross_site(req)
}

/// Whether a request, whatever its method, comes from a browser on another site: never when
/// it carries a bearer credential; by `Sec-Fetch-Site` when the browser sends it; otherwise by
/// `Origin` against the host; a client that sends neither is no browser.
pub fn cross_site(req: &Request) -> bool {
    let h = req.headers();
    let bearer = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"));
    if bearer {
        return false;
    }
    if let Some(site) = h.get("sec-fetch-site") {
        return !matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(origin) = h.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return false };
    let authority = origin.split_once("://").map(|(_, rest)| rest).unwrap_or_default();
    let host = req.uri().authority().map(|a| a.as_str()).or_else(|| h.get(header::HOST).and_then(|v| v.to_str().ok()));
    !host.is_some_and(|host| !authority.is_empty() && authority.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn req(method: &str, headers: &[(&str, &str)]) -> Request {
        let mut b = Request::builder().method(method).uri("/v1/logout");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Body::empty()).unwrap()
    }

    #[test]
    fn cross_site_cookie_requests_are_refused() {
        assert!(allowed(&req("GET", &[("sec-fetch-site", "cross-site")])));
        assert!(!allowed(&req("POST", &[("sec-fetch-site", "cross-site")])));
        assert!(!allowed(&req("POST", &[("sec-fetch-site", "same-site")])));
        assert!(allowed(&req("POST", &[("sec-fetch-site", "same-origin")])));
        assert!(allowed(&req("POST", &[("sec-fetch-site", "none")])));
        assert!(allowed(&req("POST", &[("sec-fetch-site", "cross-site"), ("authorization", "Bearer x")])));
        assert!(
            !allowed(&req("POST", &[("sec-fetch-site", "cross-site"), ("authorization", "Basic YTpi")])),
            "a browser sends cached Basic credentials on its own"
        );
        assert!(allowed(&req("POST", &[])), "not a browser");
        assert!(allowed(&req("POST", &[("origin", "https://id.example.com"), ("host", "id.example.com")])));
        assert!(!allowed(&req("POST", &[("origin", "https://evil.example"), ("host", "id.example.com")])));
        assert!(!allowed(&req("DELETE", &[("origin", "null"), ("host", "id.example.com")])));
    }
}
