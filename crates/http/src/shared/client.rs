//! Who the client is: its IP address (forwarded headers believed only from trusted proxies),
//! its user agent, whether it reached the edge over HTTPS, and the path its cookies belong to.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use portcullis_core::ClientInfo;

use super::AppState;
use super::tenant::TenantSlug;

/// Who the client is.
#[derive(Clone, Debug)]
pub struct Client {
    /// What the core is told.
    pub info: ClientInfo,
    /// Whether the request came over TLS (as far as trusted proxies say).
    pub https: bool,
    /// The path cookies are scoped to: `/t/{slug}/` for a request made under a tenant prefix
    /// (so tenants sharing a host keep separate cookies), `/` otherwise.
    pub cookie_path: String,
}

impl FromRequestParts<AppState> for Client {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(client_of(parts, state))
    }
}

/// The client of a request.
pub fn client_of(parts: &Parts, state: &AppState) -> Client {
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let trusted = |ip: &IpAddr| state.config.trusted_proxies.iter().any(|n| n.contains(ip));
    let via_proxy = peer.as_ref().is_some_and(trusted);
    let ip = if via_proxy { forwarded_client(&parts.headers, &trusted).or(peer) } else { peer };
    let https = via_proxy && forwarded_https(&parts.headers);
    let user_agent = parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let cookie_path = match parts.extensions.get::<TenantSlug>() {
        Some(s) => format!("/t/{}/", s.0),
        None => "/".to_owned(),
    };
    let surface = super::surface_of(&parts.extensions);
    Client { info: ClientInfo { ip, user_agent, surface }, https, cookie_path }
}

/// The client a chain of trusted proxies reports, from the standard `Forwarded` header when a
/// proxy wrote one, else from `X-Forwarded-For`. The chain is walked from the right (the entry
/// our nearest proxy appended) past our own proxies; the first entry that is not one of them —
/// or that does not parse as an address (`unknown`, an obfuscated name, garbage a client
/// sent) — ends the walk: an address is believed only when every hop after it is ours. `None`
/// when the walk ends on an entry that is not an address, or the chain is all proxies (the
/// peer is then the client).
pub fn forwarded_client(headers: &HeaderMap, trusted: &impl Fn(&IpAddr) -> bool) -> Option<IpAddr> {
    let forwarded: Vec<&str> = headers.get_all(header::FORWARDED).iter().filter_map(|v| v.to_str().ok()).collect();
    let entries: Vec<Option<IpAddr>> = if forwarded.is_empty() {
        headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|e| parse_node(e.trim()))
            .collect()
    } else {
        forwarded.iter().flat_map(|v| v.split(',')).map(forwarded_for).collect()
    };
    for entry in entries.into_iter().rev() {
        match entry {
            Some(ip) if trusted(&ip) => continue,
            Some(ip) => return Some(ip),
            None => return None,
        }
    }
    None
}

/// The `for=` node of one element of a `Forwarded` header (RFC 7239); `None` when it has none
/// or it is not an address.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        k.trim().eq_ignore_ascii_case("for").then(|| parse_node(v.trim().trim_matches('"'))).flatten()
    })
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]`,
/// `[2001:db8::1]:5678`. Anything else (`unknown`, `_hidden`) is `None`.
fn parse_node(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (addr, after) = rest.split_once(']')?;
        let port_ok = after.is_empty() || after.strip_prefix(':').is_some_and(|p| p.parse::<u16>().is_ok());
        return if port_ok { addr.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6) } else { None };
    }
    let (addr, port) = s.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    addr.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// Whether the nearest proxy says the request reached it over HTTPS (`Forwarded: proto=`, else
/// `X-Forwarded-Proto`; the last value, the one our proxy wrote).
fn forwarded_https(headers: &HeaderMap) -> bool {
    let from_forwarded = headers
        .get_all(header::FORWARDED)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (k, v) = pair.trim().split_once('=')?;
                k.trim().eq_ignore_ascii_case("proto").then(|| v.trim().trim_matches('"').to_owned())
            })
        })
        .next_back();
    let proto = from_forwarded.or_else(|| {
        headers
            .get_all("x-forwarded-proto")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|p| p.trim().to_owned())
            .next_back()
    });
    proto.is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        h
    }

    fn client(pairs: &[(&str, &str)]) -> Option<String> {
        let proxies: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()];
        forwarded_client(&headers(pairs), &|ip: &IpAddr| proxies.iter().any(|n| n.contains(ip)))
            .map(|ip| ip.to_string())
    }

    #[test]
    fn the_walk_stops_at_the_first_entry_that_is_not_ours_or_not_an_address() {
        let xff = |v: &str| client(&[("x-forwarded-for", v)]);
        assert_eq!(xff("1.2.3.4"), Some("1.2.3.4".into()));
        assert_eq!(xff("6.6.6.6, 1.2.3.4, 10.0.0.6"), Some("1.2.3.4".into()), "past our proxy only");
        assert_eq!(xff("6.6.6.6, 5.5.5.6:4711"), Some("5.5.5.6".into()), "ip:port is the client, not skipped");
        assert_eq!(xff("6.6.6.6, 10.0.0.6:4711"), Some("6.6.6.6".into()), "our proxy with a port is still ours");
        assert_eq!(xff("6.6.6.6, unknown"), None, "unknown ends the walk");
        assert_eq!(xff("6.6.6.6, unknown, 10.0.0.6"), None);
        assert_eq!(xff("6.6.6.6, garbage!, 10.0.0.6"), None);
        assert_eq!(xff("6.6.6.6, [2001:db8::7]:443"), Some("2001:db8::7".into()));
        assert_eq!(xff("2001:db8::7, fd00::1"), Some("2001:db8::7".into()));
        assert_eq!(xff("10.0.0.1, 10.0.0.2"), None, "all proxies: the peer is the client");
        let two = client(&[("x-forwarded-for", "6.6.6.6"), ("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(two, Some("1.2.3.4".into()), "several headers are one list");
    }

    #[test]
    fn the_standard_forwarded_header_wins() {
        let f = |v: &str| client(&[("forwarded", v), ("x-forwarded-for", "9.9.9.9")]);
        assert_eq!(f("for=1.2.3.4"), Some("1.2.3.4".into()));
        assert_eq!(f("for=6.6.6.6, for=1.2.3.4;proto=https, for=10.0.0.6"), Some("1.2.3.4".into()));
        assert_eq!(f(r#"for="[2001:db8::7]:4711";proto=https"#), Some("2001:db8::7".into()));
        assert_eq!(f("for=unknown"), None);
        assert_eq!(f("for=_hidden, for=10.0.0.6"), None);
        assert_eq!(f("proto=https"), None, "an element without for= is not an address");
    }

    #[test]
    fn https_is_what_the_nearest_proxy_says() {
        assert!(forwarded_https(&headers(&[("x-forwarded-proto", "https")])));
        assert!(!forwarded_https(&headers(&[("x-forwarded-proto", "https, http")])));
        assert!(forwarded_https(&headers(&[("forwarded", "for=1.2.3.4;proto=https")])));
        assert!(!forwarded_https(&headers(&[])));
    }
}
