//! Deliveries are signed, carry GitHub's headers, are recorded with the receiver's answer,
//! and can be redelivered with the same id.

use crate::common::{Receiver, seeded};
use github_sim::{GithubSim, SimConfig, sign};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const SECRET: &str = "s3cret";

/// The check a receiver does, written independently of the sim's `sign`.
fn verifies(secret: &str, body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

#[test]
fn signatures_match_githubs_published_test_vector() {
    assert_eq!(
        sign("It's a Secret to Everybody", b"Hello, World!"),
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    );
    assert!(verifies(
        "It's a Secret to Everybody",
        b"Hello, World!",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    ));
}

#[test]
fn a_receiver_gets_signed_deliveries_with_githubs_headers() {
    let receiver = Receiver::start(202);
    let sim = seeded(SimConfig {
        webhook_url: Some(receiver.url.clone()),
        webhook_secret: SECRET.into(),
        ..Default::default()
    });
    sim.push("acme/frontend", "feature", &[("a", "a")], "a", "alice")
        .unwrap();
    let pr = sim
        .open_pr("acme/frontend", "feature", "main", "A", "alice")
        .unwrap();
    sim.comment("acme/frontend", pr, "bob", "/deploy staging")
        .unwrap();
    sim.wait_deliveries();

    let got = receiver.all();
    let sent = sim.deliveries();
    assert_eq!(
        got.len(),
        sent.len(),
        "every recorded delivery reached the receiver"
    );
    for (r, d) in got.iter().zip(&sent) {
        assert_eq!(r.path, "/webhooks/github");
        assert_eq!(r.header("x-github-event"), Some(d.event.as_str()));
        assert_eq!(r.header("x-github-delivery"), Some(d.id.as_str()));
        assert!(uuid::Uuid::parse_str(&d.id).is_ok());
        assert!(r.header("user-agent").unwrap().starts_with("GitHub-Hookshot/"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        let sig = r.header("x-hub-signature-256").unwrap();
        assert!(
            verifies(SECRET, &r.body, sig),
            "signature verifies over the raw body"
        );
        assert!(!verifies("wrong", &r.body, sig));
        assert_eq!(d.status, Some(202), "the receiver's status is recorded");
        assert!(d.delivered);
    }
    let comment = got
        .iter()
        .find(|r| r.header("x-github-event") == Some("issue_comment"))
        .unwrap()
        .json();
    assert_eq!(comment["comment"]["body"], "/deploy staging");
    assert_eq!(comment["sender"]["login"], "bob");
}

#[test]
fn a_delivery_can_be_redelivered_with_the_same_id() {
    let receiver = Receiver::start(500);
    let sim = seeded(SimConfig {
        webhook_url: Some(receiver.url.clone()),
        webhook_secret: SECRET.into(),
        ..Default::default()
    });
    sim.wait_deliveries();
    let first = sim.deliveries().pop().unwrap();
    assert_eq!(first.status, Some(500), "a failing receiver is recorded as such");
    sim.redeliver(&first.id).unwrap();
    sim.wait_deliveries();

    let again = sim.deliveries().pop().unwrap();
    assert!(again.redelivery);
    assert_eq!(again.id, first.id);
    let got = receiver.all();
    let (a, b) = (&got[got.len() - 2], &got[got.len() - 1]);
    assert_eq!(a.header("x-github-delivery"), b.header("x-github-delivery"));
    assert_eq!(a.body, b.body);
    assert!(sim.redeliver("no-such-id").is_err());
}

#[test]
fn without_a_url_deliveries_are_only_recorded_until_one_is_set() {
    let sim = GithubSim::start(SimConfig::default()).unwrap();
    sim.create_repo("acme/web").unwrap();
    sim.push("acme/web", "main", &[("a", "a")], "a", "alice").unwrap();
    sim.wait_deliveries();
    let recorded = sim.deliveries();
    assert!(!recorded.is_empty());
    assert!(recorded.iter().all(|d| !d.delivered && d.status.is_none()));

    let receiver = Receiver::start(200);
    sim.set_webhook(Some(&receiver.url), SECRET);
    sim.redeliver(&recorded[0].id).unwrap();
    sim.wait_deliveries();
    assert_eq!(receiver.all().len(), 1);
}

/// The receiver runs on the test's own single-threaded runtime: waiting must not block it.
#[tokio::test(flavor = "current_thread")]
async fn async_tests_can_wait_for_deliveries_to_a_receiver_on_their_runtime() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 1 << 20];
            let mut n = 0;
            // Read until headers and the announced body are in.
            loop {
                n += s.read(&mut buf[n..]).await.unwrap();
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if n >= end + 4 + len {
                        break;
                    }
                }
            }
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
        }
    });
    let sim = GithubSim::start(SimConfig {
        webhook_url: Some(url),
        webhook_secret: SECRET.into(),
        ..Default::default()
    })
    .unwrap();
    sim.create_repo("acme/web").unwrap();
    sim.push("acme/web", "main", &[("a", "a")], "a", "alice").unwrap();
    sim.wait_deliveries_async().await;
    assert_eq!(
        count.load(std::sync::atomic::Ordering::SeqCst),
        sim.deliveries().len()
    );
    assert!(sim.deliveries().iter().all(|d| d.status == Some(200)));
}
