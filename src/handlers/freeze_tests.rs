//! A freeze window on the testbed with a clock the test moves: the automatic release waits,
//! the timer is told to wake at the window's end, and the release goes out then.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::testbed::{Bed, policy_with_staging};
use crate::release::{Clock, ManualClock};

/// Staging frozen every weekend, Berlin time.
fn policy() -> String {
    policy_with_staging(r#"freeze = [{ from = "Fri 16:00", to = "Mon 08:00", tz = "Europe/Berlin" }]"#)
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[tokio::test]
async fn an_automatic_release_waits_out_the_window_and_goes_at_its_end() {
    // Saturday noon in Berlin; the window ends Monday 08:00 Berlin, 07:00 UTC.
    let clock = Arc::new(ManualClock::new(utc("2026-12-05T11:00:00Z")));
    let bed = Bed::with_policy(&policy(), clock.clone());
    let releaser = bed.ctx.releases.running().unwrap();
    let sha = bed.green_main(1).await;

    assert_eq!(bed.live("staging"), None);
    let desired = releaser.desired();
    assert_eq!(desired.len(), 1, "kept, not dropped");
    assert!(
        desired[0]
            .reason
            .contains("staging/web is frozen until Mon 2026-12-07 07:00 UTC"),
        "{}",
        desired[0].reason
    );
    assert_eq!(
        releaser.next_retry(),
        Some(utc("2026-12-07T07:00:00Z")),
        "the timer wakes at the end"
    );

    // A pass before the end changes nothing.
    clock.advance(chrono::TimeDelta::hours(24));
    releaser.tick().await;
    assert_eq!(bed.live("staging"), None);

    clock.advance(chrono::TimeDelta::hours(20));
    assert!(releaser.next_retry().is_some_and(|t| t <= clock.now()));
    releaser.tick().await;
    assert_eq!(bed.live("staging"), Some(sha));
    assert!(releaser.desired().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn status_shows_a_window_freeze_and_a_rejected_artifact() {
    let clock = Arc::new(ManualClock::new(utc("2026-12-04T10:00:00Z")));
    let bed = Bed::with_policy(&policy(), clock.clone());
    let sha = bed.green_main(1).await;
    assert_eq!(
        bed.live("staging"),
        Some(sha.clone()),
        "Friday morning: not frozen"
    );
    let id = bed.artifact(&sha).id;
    bed.ctx
        .store
        .reject(
            &id,
            &crate::artifact::Rejection {
                by: "@bob".into(),
                reason: "leaks memory".into(),
                time: clock.now(),
            },
        )
        .unwrap();
    clock.advance(chrono::Duration::hours(8)); // Friday 18:00 Berlin
    let (pr, _) = bed.pull_request();
    let c = bed.comment(pr, "alice", "/status").await;
    super::comment::handle(&bed.ctx, c).await.unwrap();
    let reply = bed.comments(pr).await.pop().unwrap();
    assert!(reply.contains("⛔ rejected by @bob (leaks memory)"), "{reply}");
    assert!(
        reply.contains("frozen (Fri 16:00–Mon 08:00 Europe/Berlin) until Mon 2026-12-07 07:00 UTC"),
        "{reply}"
    );
}
