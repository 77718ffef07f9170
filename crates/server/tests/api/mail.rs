//! The outbox under trouble: an SMTP outage, a refusal, a restart, two nodes on one database.
//! Every message is delivered once — never lost, never twice.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{Answer, PW, SmtpSink, TestApp, op};

const WAIT: Duration = Duration::from_secs(15);

/// Asks for a reset link for each user.
async fn ask_resets(app: &TestApp, users: &[String]) {
    for u in users {
        let res = app.post("/v1/password/forgot", json!({"login": u})).await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
    }
}

/// Signs users up (each gets a verification message) and waits until those are delivered.
async fn users(app: &TestApp, sink: &SmtpSink, prefix: &str, n: usize) -> Vec<String> {
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
    for name in &names {
        app.signup(json!({"username": name, "email": format!("{name}@example.com"), "password": PW})).await;
    }
    for name in &names {
        assert_eq!(sink.wait_for(&format!("{name}@example.com"), 1, WAIT).await.len(), 1);
    }
    names
}

/// Counts messages per Message-ID: each must appear once.
fn assert_no_duplicates(sink: &SmtpSink) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for m in sink.messages() {
        *seen.entry(m.message_id).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
}

async fn an_outage_delays_mail_and_loses_none(b: crate::support::Backend) {
    let (app, mut sink) = TestApp::spawn_with_mail(b, |_| {}).await;
    let names = users(&app, &sink, "out", 3).await;
    sink.go_down();
    ask_resets(&app, &names).await;
    // The sender tries, fails, and backs off.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (waiting, given_up) = app.core.mail_backlog(&op()).await.unwrap();
    assert_eq!((waiting, given_up), (3, 0));
    sink.resume().await.unwrap();
    // The server answers "try later" for a while: still retried.
    sink.answer_with(Answer::TryLater);
    app.clock.advance(Duration::from_secs(60));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.messages().len(), 3, "nothing new accepted yet");
    sink.answer_with(Answer::Accept);
    app.clock.advance(Duration::from_secs(300));
    for n in &names {
        let got = sink.wait_for(&format!("{n}@example.com"), 2, WAIT).await;
        assert_eq!(got.len(), 2, "{n}");
        assert!(got[1].subject.contains("Set a new password"));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.messages().len(), 6);
    assert_no_duplicates(&sink);
    assert_eq!(app.core.mail_backlog(&op()).await.unwrap(), (0, 0));
}

async fn a_refused_recipient_is_given_up_and_recorded(b: crate::support::Backend) {
    let (app, sink) = TestApp::spawn_with_mail(b, |_| {}).await;
    let names = users(&app, &sink, "ref", 1).await;
    sink.answer_with(Answer::Refuse);
    ask_resets(&app, &names).await;
    let mut backlog = (1, 0);
    for _ in 0..100 {
        backlog = app.core.mail_backlog(&op()).await.unwrap();
        if backlog == (0, 1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(backlog, (0, 1), "given up at once, kept for the operator");
    app.core.flush_audit().await.unwrap();
    let q = portcullis_core::store::AuditQuery { action: Some("mail.failed".into()), limit: 10, ..Default::default() };
    let events = app.core.audit_events(&op(), q, Default::default()).await.unwrap();
    assert_eq!(events.len(), 1);
    assert!(events[0].details["error"].as_str().unwrap().contains("550"), "{:?}", events[0].details);
}

async fn a_restart_delivers_what_was_queued(b: crate::support::Backend) {
    let (app, mut sink) = TestApp::spawn_with_mail(b, |_| {}).await;
    let names = users(&app, &sink, "rst", 4).await;
    sink.go_down();
    ask_resets(&app, &names).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The node stops with its messages undelivered; another starts on the same database.
    let next = app.second_node().await;
    app.stop().await;
    sink.resume().await.unwrap();
    next.clock.advance(Duration::from_secs(600));
    for n in &names {
        assert_eq!(sink.wait_for(&format!("{n}@example.com"), 2, WAIT).await.len(), 2, "{n}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_no_duplicates(&sink);
    assert_eq!(sink.messages().len(), 8);
}

async fn two_nodes_never_send_a_message_twice(b: crate::support::Backend) {
    let (app, sink) = TestApp::spawn_with_mail(b, |_| {}).await;
    let other = app.second_node().await;
    let names = users(&app, &sink, "two", 4).await;
    // Forty messages queued on both nodes at once; both senders race for them.
    let mut asks = Vec::new();
    for round in 0..5 {
        for (i, n) in names.iter().enumerate() {
            let node = if (round + i) % 2 == 0 { &app } else { &other };
            asks.push(node.post("/v1/password/forgot", json!({"login": n})));
            asks.push(node.post("/v1/email/verification", json!({"login": n})));
        }
    }
    for r in futures::future::join_all(asks).await {
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    // Each user: at most three reset links per window (the rest are answered and dropped),
    // and their address is unverified, so at most three verification links in all.
    for n in &names {
        sink.wait_for(&format!("{n}@example.com"), 6, WAIT).await;
    }
    for _ in 0..100 {
        if app.core.mail_backlog(&op()).await.unwrap() == (0, 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_no_duplicates(&sink);
    for n in &names {
        let got = sink.messages_to(&format!("{n}@example.com"));
        assert_eq!(got.len(), 6, "{n}: the signup link, two more verification links, three reset links");
    }
}

async fn a_stalling_server_holds_up_nothing_for_long(b: crate::support::Backend) {
    let (app, sink) = TestApp::spawn_with_mail(b, |c| {
        if let Some(s) = &mut c.mail.smtp {
            s.timeout = Duration::from_secs(1);
        }
    })
    .await;
    let names = users(&app, &sink, "stall", 2).await;
    // The server takes the message and never answers: each attempt ends at the timeout.
    sink.answer_with(Answer::Stall);
    ask_resets(&app, &names).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(app.core.mail_backlog(&op()).await.unwrap(), (2, 0), "both wait for a retry, none lost");
    sink.answer_with(Answer::Accept);
    app.clock.advance(Duration::from_secs(600));
    for n in &names {
        assert_eq!(sink.wait_for(&format!("{n}@example.com"), 2, WAIT).await.len(), 2, "{n}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_no_duplicates(&sink);
    assert_eq!(app.core.mail_backlog(&op()).await.unwrap(), (0, 0));
}

crate::both!(
    a_stalling_server_holds_up_nothing_for_long,
    an_outage_delays_mail_and_loses_none,
    a_refused_recipient_is_given_up_and_recorded,
    a_restart_delivers_what_was_queued,
    two_nodes_never_send_a_message_twice,
);
