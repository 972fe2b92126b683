use std::io::{BufRead, BufReader, Read, Write};

use github_sim::{GithubSim, SimConfig};

use super::*;
use crate::forge::{GithubAuthSecret, GithubForge, RetryPolicy};

fn at(minute: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap() + TimeDelta::minutes(minute)
}

fn attempt(id: u64, guid: &str, minute: i64, status_code: u16) -> HookDelivery {
    HookDelivery {
        id,
        guid: guid.into(),
        delivered_at: at(minute),
        redelivery: false,
        status_code,
        event: "status".into(),
        action: None,
    }
}

#[test]
fn an_event_is_missed_when_no_attempt_got_a_2xx_and_it_was_not_asked_for_too_often() {
    let attempts = [
        attempt(9, "late", 9, 502),
        attempt(8, "taken-later", 8, 202),
        attempt(7, "early", 7, 0),
        attempt(6, "taken-later", 6, 500),
        attempt(5, "early", 5, 500),
        attempt(4, "given-up", 4, 0),
        attempt(3, "too-soon", 3, 0),
    ];
    let mut progress = Progress::default();
    progress.redelivered.insert(
        "given-up".into(),
        Redelivered {
            times: MAX_TIMES,
            last: at(-100),
        },
    );
    progress.redelivered.insert(
        "too-soon".into(),
        Redelivered {
            times: 1,
            last: at(9),
        },
    );
    let now = at(10);
    let got = missed(&attempts, &progress, now);
    let summary: Vec<(&str, u64, DateTime<Utc>)> = got
        .iter()
        .map(|m| (m.guid.as_str(), m.attempt, m.first_at))
        .collect();
    // Oldest first; the newest attempt of each is the one named.
    assert_eq!(summary, [("early", 7, at(5)), ("late", 9, at(9))]);
    // Once the spacing has passed, the one asked for recently is due again.
    let later = missed(&attempts, &progress, now + RETRY_SPACING);
    assert!(later.iter().any(|m| m.guid == "too-soon"));
    assert!(later.iter().all(|m| m.guid != "given-up"));
}

#[test]
fn the_next_pass_starts_at_the_newest_attempt_or_at_what_was_left_for_it() {
    let attempts = [attempt(2, "a", 2, 0), attempt(1, "b", 1, 0)];
    assert_eq!(next_checkpoint(&attempts, None, Some(at(0))), Some(at(2)));
    let left = Missed {
        guid: "b".into(),
        attempt: 1,
        event: "status".into(),
        first_at: at(1),
    };
    assert_eq!(next_checkpoint(&attempts, Some(&left), None), Some(at(1)));
    assert_eq!(next_checkpoint(&[], None, Some(at(0))), Some(at(0)));
    assert_eq!(next_checkpoint(&[], None, None), None);
}

/// An HTTP receiver on loopback that answers every request with 202.
fn accepting_receiver() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/webhooks/github", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let _ =
                stream.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    url
}

/// A URL nothing listens on.
fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}/webhooks/github", listener.local_addr().unwrap())
}

/// Against the simulator's deliveries API, with a real inbox: what failed and the inbox does
/// not hold is redelivered once per spacing, at most `MAX_TIMES` times; what the inbox holds
/// or a later attempt took is left alone; progress outlives the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deliveries_the_inbox_does_not_hold_are_redelivered_and_progress_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (private_pem, public_pem) = github_sim::rsa_key_pair().unwrap();
    let sim = GithubSim::start(SimConfig {
        app_id: 31,
        app_public_key_pem: Some(public_pem),
        webhook_url: Some(dead_url()),
        webhook_secret: "s".into(),
        ..SimConfig::default()
    })
    .unwrap();
    sim.create_org("acme").unwrap();
    sim.create_repo("acme/web").unwrap();
    let sha = sim
        .push("acme/web", "main", &[("a", "1")], "one", "alice")
        .unwrap();
    sim.set_status("acme/web", &sha, "success", "ci/build").unwrap();
    assert!(sim.wait_deliveries_async().await);
    let failed: Vec<_> = sim.deliveries().into_iter().filter(|d| d.delivered).collect();
    assert!(
        failed.len() >= 2 && failed.iter().all(|d| d.status.is_none()),
        "{failed:#?}"
    );
    let status_guid = failed.iter().find(|d| d.event == "status").unwrap().id.clone();

    let forge: Arc<dyn Forge> = Arc::new(
        GithubForge::new(
            sim.url(),
            GithubAuthSecret::App {
                app_id: 31,
                private_key_pem: private_pem,
            },
            RetryPolicy::none(),
        )
        .unwrap(),
    );
    let (inbox, _) =
        crate::inbox::Inbox::open(dir.path().join("inbox"), crate::inbox::Options::default()).unwrap();
    // auger took the status before (GitHub saw no answer in time): it is not asked for again.
    inbox
        .append(&status_guid, "work:status", b"{}".to_vec())
        .await
        .unwrap();
    let others: Vec<u64> = failed
        .iter()
        .filter(|d| d.id != status_guid)
        .map(|d| d.delivery_id)
        .collect();

    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut catch_up = CatchUp::new(forge.clone(), journal(&inbox), &data);
    let now = Utc::now();
    let first = catch_up.pass(now).await.unwrap();
    let mut asked = first.redelivered.clone();
    asked.sort_unstable();
    assert_eq!(asked, others, "every failed event but the one the inbox holds");
    assert!(sim.wait_deliveries_async().await);
    let redeliveries: Vec<_> = sim.deliveries().into_iter().filter(|d| d.redelivery).collect();
    assert_eq!(redeliveries.len(), others.len());
    assert!(redeliveries.iter().all(|d| d.id != status_guid));

    // Still failing (nothing listens yet): not asked again before the spacing is over.
    let soon = catch_up.pass(now + TimeDelta::seconds(30)).await.unwrap();
    assert!(soon.redelivered.is_empty(), "{soon:?}");

    // Progress outlives the process: a new catch-up over the same folder knows all that.
    let mut restarted = CatchUp::new(forge.clone(), journal(&inbox), &data);
    assert_eq!(restarted.progress(), catch_up.progress());
    assert!(restarted.progress().checked_until.is_some());

    // Someone listens now: after the spacing, asked a second time, and taken.
    sim.set_webhook(Some(&accepting_receiver()), "s");
    let second = restarted.pass(now + RETRY_SPACING).await.unwrap();
    assert_eq!(second.redelivered.len(), others.len(), "{second:?}");
    assert!(sim.wait_deliveries_async().await);
    let taken = sim
        .deliveries()
        .into_iter()
        .filter(|d| d.redelivery && d.status == Some(202))
        .count();
    assert_eq!(taken, others.len());
    let times: Vec<u32> = restarted
        .progress()
        .redelivered
        .values()
        .map(|r| r.times)
        .collect();
    assert!(times.iter().all(|t| *t == 2), "{times:?}");

    // Taken now: nothing more to do, however long after.
    let done = restarted.pass(now + RETRY_SPACING * 10).await.unwrap();
    assert!(done.redelivered.is_empty(), "{done:?}");
    inbox.close().await.unwrap();
}

#[test]
fn an_unreadable_progress_file_is_an_error_and_a_missing_one_is_a_fresh_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(STATE_FILE);
    assert_eq!(load(&file).unwrap(), Progress::default());
    std::fs::write(&file, b"{not json").unwrap();
    let e = load(&file).unwrap_err();
    assert!(format!("{e:#}").contains(STATE_FILE), "{e:#}");
    let mut p = Progress {
        checked_until: Some(at(3)),
        ..Progress::default()
    };
    p.redelivered.insert(
        "g".into(),
        Redelivered {
            times: 2,
            last: at(2),
        },
    );
    save(&file, &p).unwrap();
    assert_eq!(load(&file).unwrap(), p);
}

fn journal(inbox: &crate::inbox::Inbox) -> crate::queue::Queue {
    crate::queue::Queue::Journal {
        inbox: inbox.clone(),
        replay_below: 0,
    }
}
