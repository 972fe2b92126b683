//! A freeze window on the testbed with a clock the test moves: the automatic release waits,
//! the timer is told to wake at the window's end, and the release goes out then.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::Delivery;
use super::ci_signal::handle;
use super::testbed::{Bed, REPO};
use crate::domain::{BranchName, CommitSha};
use crate::release::{Clock, ManualClock};

const POLICY: &str = r#"
app = "web"
repo = "acme/web"
template = "web"

[artifact]
signals = ["status:ci/build"]

[vars]
image = "ghcr.io/acme/web:{{ artifact.sha }}"

[env.staging]
auto = { branch = "main" }
merge = "direct"
freeze = [{ from = "Fri 16:00", to = "Mon 08:00", tz = "Europe/Berlin" }]
"#;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[tokio::test]
async fn an_automatic_release_waits_out_the_window_and_goes_at_its_end() {
    // Saturday noon in Berlin; the window ends Monday 08:00 Berlin, 07:00 UTC.
    let clock = Arc::new(ManualClock::new(utc("2026-12-05T11:00:00Z")));
    let bed = Bed::with_policy(POLICY, clock.clone());
    let releaser = bed.ctx.releases.running().unwrap();
    let head = bed
        .sim
        .push(REPO, "main", &[("app.txt", "v1\n")], "v1", "alice")
        .unwrap();
    let sha = CommitSha::new(head).unwrap();
    let mut build = bed.build(&sha);
    build.facts.branches = vec![BranchName::new("main").unwrap()];
    handle(&bed.ctx, build, Delivery::First).await.unwrap();

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
