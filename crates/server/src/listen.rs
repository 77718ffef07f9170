//! Accepting connections without letting slow or idle clients exhaust the server: a limit on
//! open connections, overall and per client address; a deadline for a request's headers (and
//! for the next request on a kept-alive connection); a deadline for a whole request, body
//! included; and a graceful stop that lets requests in flight finish.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode};
use axum::response::IntoResponse as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use portcullis_http::HttpConfig;
use tokio::net::TcpListener;
use tower::ServiceExt as _;

/// How connections are limited.
#[derive(Clone, Debug)]
pub struct Limits {
    /// See [`HttpConfig::header_read_timeout`].
    pub header_read_timeout: Duration,
    /// See [`HttpConfig::request_timeout`].
    pub request_timeout: Duration,
    /// See [`HttpConfig::max_connections`].
    pub max_connections: usize,
    /// See [`HttpConfig::max_connections_per_ip`].
    pub max_connections_per_ip: usize,
    /// IPv6 clients are counted per network of this many bits.
    pub ipv6_prefix: u8,
}

impl Limits {
    /// The limits of a configuration.
    pub fn new(http: &HttpConfig, ipv6_prefix: u8) -> Self {
        Self {
            header_read_timeout: http.header_read_timeout,
            request_timeout: http.request_timeout,
            max_connections: http.max_connections,
            max_connections_per_ip: http.max_connections_per_ip,
            ipv6_prefix,
        }
    }
}

/// Open connections, overall and per client address.
#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// One admitted connection; counted until dropped.
struct Admitted {
    counts: Arc<Mutex<Counts>>,
    client: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Ok(mut c) = self.counts.lock() {
            c.total = c.total.saturating_sub(1);
            if let Some(n) = c.per_client.get_mut(&self.client) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    c.per_client.remove(&self.client);
                }
            }
        }
    }
}

/// The address a client is counted under: IPv4 itself, IPv6 its network.
fn client_key(ip: IpAddr, ipv6_prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let len = u32::from(ipv6_prefix.min(128));
                let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
                IpAddr::V6((u128::from(v6) & mask).into())
            }
        },
        v4 => v4,
    }
}

fn admit(counts: &Arc<Mutex<Counts>>, limits: &Limits, peer: IpAddr) -> Option<Admitted> {
    let client = client_key(peer, limits.ipv6_prefix);
    let mut c = counts.lock().ok()?;
    let mine = c.per_client.get(&client).copied().unwrap_or(0);
    if c.total >= limits.max_connections || mine >= limits.max_connections_per_ip {
        return None;
    }
    c.total += 1;
    *c.per_client.entry(client).or_insert(0) += 1;
    Some(Admitted { counts: counts.clone(), client })
}

/// Serves `app` on `listener` until `shutdown` completes; then stops accepting, lets the
/// requests in flight finish within `grace`, and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
    grace: Duration,
) -> std::io::Result<()> {
    let counts = Arc::new(Mutex::new(Counts::default()));
    let graceful = GracefulShutdown::new();
    let mut refused_logged = false;
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // A failed accept (out of file descriptors, a reset) is the client's or the
                // moment's, not the server's: wait a little and go on.
                Err(e) => {
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(admitted) = admit(&counts, &limits, peer.ip()) else {
            if !refused_logged {
                tracing::warn!("connection limit reached: closing new connections until some end");
                refused_logged = true;
            }
            drop(stream);
            continue;
        };
        refused_logged = false;
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let request_timeout = limits.request_timeout;
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let app = app.clone();
            async move {
                let req = req.map(Body::new);
                let answer: Response<Body> = match tokio::time::timeout(request_timeout, app.oneshot(req)).await {
                    Ok(Ok(res)) => res,
                    Ok(Err(never)) => match never {},
                    Err(_) => (StatusCode::REQUEST_TIMEOUT, "The request took too long to arrive.\n").into_response(),
                };
                Ok::<_, Infallible>(answer)
            }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let watched = graceful.watch(conn);
        tokio::spawn(async move {
            // A connection that ends badly (reset, timed out, malformed) is the client's doing.
            let _ = watched.await;
            drop(admitted);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            tracing::warn!("shutdown grace period over; stopping with requests still in flight");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_counted_per_client_and_freed_when_they_end() {
        let limits = Limits {
            header_read_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(1),
            max_connections: 3,
            max_connections_per_ip: 2,
            ipv6_prefix: 64,
        };
        let counts = Arc::new(Mutex::new(Counts::default()));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let first = admit(&counts, &limits, a).unwrap();
        let _second = admit(&counts, &limits, a).unwrap();
        assert!(admit(&counts, &limits, a).is_none(), "per client");
        let _v6 = admit(&counts, &limits, "2001:db8::1".parse().unwrap()).unwrap();
        assert!(admit(&counts, &limits, "2001:db8::2".parse().unwrap()).is_none(), "in all");
        drop(first);
        let _v6b = admit(&counts, &limits, "2001:db8::2".parse().unwrap()).expect("a place is free again");
        assert!(admit(&counts, &limits, "2001:db8::3".parse().unwrap()).is_none(), "its /64 holds two");
        assert_eq!(counts.lock().unwrap().total, 3);
    }
}
