//! Who the client is: its IP address (forwarded headers believed only from trusted proxies),
//! its user agent, whether it reached the edge over HTTPS, and the path its cookies belong to.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
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
    let ip = if via_proxy {
        // Walk X-Forwarded-For from the right, past our own proxies, to the first address
        // we did not put there ourselves.
        let forwarded: Vec<IpAddr> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        forwarded.into_iter().rev().find(|ip| !trusted(ip)).or(peer)
    } else {
        peer
    };
    let https = via_proxy
        && parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    let user_agent = parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let cookie_path = match parts.extensions.get::<TenantSlug>() {
        Some(s) => format!("/t/{}/", s.0),
        None => "/".to_owned(),
    };
    let surface = super::surface_of(&parts.extensions);
    Client { info: ClientInfo { ip, user_agent, surface }, https, cookie_path }
}
