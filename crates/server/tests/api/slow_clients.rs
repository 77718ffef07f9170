//! Slow and idle clients cannot exhaust the server: thousands of connections that send half a
//! request's headers, or a body a byte at a time, while an honest client keeps its latency;
//! connection limits overall and per client address.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::both;
use crate::support::{Backend, TestApp};

both!(stalled_connections_are_closed_and_honest_clients_keep_their_latency, connections_are_limited_per_client_address);

fn addr(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_owned()
}

/// Whether the server closed `conn` (end of stream or a reset) within `within`; a 408 it may
/// write first counts as closing.
async fn closed_within(conn: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 512];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

async fn stalled_connections_are_closed_and_honest_clients_keep_their_latency(b: Backend) {
    let app = TestApp::spawn_with(b, |c| {
        c.http.header_read_timeout = Duration::from_secs(1);
        c.http.request_timeout = Duration::from_secs(2);
        c.http.max_connections_per_ip = 5_000;
    })
    .await;
    let target = addr(&app);
    // 1,500 connections: half a header each, nothing, or a body that trickles.
    let mut stalled = Vec::new();
    for i in 0..1_500 {
        let mut c = TcpStream::connect(&target).await.unwrap();
        match i % 3 {
            0 => c.write_all(b"GET /v1/session HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap(),
            1 => {}
            _ => c
                .write_all(b"POST /v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
                .await
                .unwrap(),
        }
        stalled.push(c);
    }
    // Meanwhile an honest client is answered as fast as ever.
    let mut worst = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        let res = app.client.get(app.url("/healthz")).send().await.unwrap();
        assert!(res.status().is_success());
        worst = worst.max(started.elapsed());
    }
    assert!(worst < Duration::from_millis(500), "an honest request took {worst:?}");
    // Every stalled connection is closed once its deadline passes (header: 1 s; body: 2 s).
    let mut open = 0;
    for c in &mut stalled {
        if !closed_within(c, Duration::from_secs(4)).await {
            open += 1;
        }
    }
    assert_eq!(open, 0, "connections left open by slow clients");
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert!(res.status().is_success());
}

async fn connections_are_limited_per_client_address(b: Backend) {
    let app = TestApp::spawn_with(b, |c| c.http.max_connections_per_ip = 5).await;
    let target = addr(&app);
    let mut idle = Vec::new();
    for _ in 0..5 {
        idle.push(TcpStream::connect(&target).await.unwrap());
    }
    // Give the server a moment to count them.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut sixth = TcpStream::connect(&target).await.unwrap();
    sixth.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    assert!(closed_within(&mut sixth, Duration::from_secs(2)).await, "the sixth connection is closed");
    drop(idle);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fresh = reqwest::Client::new();
    let res = fresh.get(app.url("/healthz")).send().await.unwrap();
    assert!(res.status().is_success(), "places free up as connections end");
}
