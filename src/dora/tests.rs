use super::*;

/// Monday 2026-11-02 00:00 UTC plus `minutes`.
fn t(minutes: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-02T00:00:00Z")
        .unwrap()
        .to_utc()
        + Duration::minutes(minutes)
}

fn h(hours: i64) -> DateTime<Utc> {
    t(hours * 60)
}

struct F {
    env: &'static str,
    app: &'static str,
    source: Option<DateTime<Utc>>,
    landed: DateTime<Utc>,
    rollback: bool,
    live: Option<DateTime<Utc>>,
    failed: Option<DateTime<Utc>>,
}

fn fact(n: u8, f: F) -> ReleaseFact {
    ReleaseFact {
        env: EnvName::new(f.env).unwrap(),
        app: AppName::new(f.app).unwrap(),
        artifact: format!("{}@{}", f.app, format!("{n:x}").repeat(12))
            .parse()
            .unwrap(),
        landed: f.landed,
        source_time: f.source,
        rollback: f.rollback,
        live: f.live,
        failed: f.failed,
    }
}

fn change(
    env: &'static str,
    app: &'static str,
    source: i64,
    landed: i64,
    live: Option<i64>,
    failed: Option<i64>,
) -> F {
    F {
        env,
        app,
        source: Some(h(source)),
        landed: h(landed),
        rollback: false,
        live: live.map(h),
        failed: failed.map(h),
    }
}

fn rollback(env: &'static str, app: &'static str, landed: i64, live: Option<i64>) -> F {
    F {
        env,
        app,
        source: Some(h(0)),
        landed: h(landed),
        rollback: true,
        live: live.map(h),
        failed: None,
    }
}

/// The scripted history (hours after Monday 2026-11-02 00:00 UTC):
/// production/web (verifies):
///  1 change   source 0,   landed 2,   healthy 3             lead 3h
///  2 change   source 24,  landed 26,  failed 27             failure, restored by 3: 1h
///  3 rollback landed 28 (healthy 28.5)
///  4 change   source 48,  landed 50,  healthy 52            lead 4h; rolled back by 5: failure, 4h
///  5 rollback landed 54
///  6 change   source 170, landed 172, healthy 173           lead 3h
///  7 change   source 190, landed 192, failed 193            failure, restored by 8: 8h
///  8 change   source 195, landed 200, healthy 201           lead 6h
/// staging/web (does not verify: live = landed):
///  9 change   source 1,   landed 1.5                        lead 0.5h
/// production/api:
/// 10 change   source 299, landed 300, failed 301            failure, unrestored
fn history() -> Vec<ReleaseFact> {
    let (p, s) = ("production", "staging");
    let mut list = vec![
        fact(8, change(p, "web", 195, 200, Some(201), None)),
        fact(1, change(p, "web", 0, 2, Some(3), None)),
        fact(2, change(p, "web", 24, 26, None, Some(27))),
        fact(
            3,
            F {
                live: Some(t(28 * 60 + 30)),
                ..rollback(p, "web", 28, None)
            },
        ),
        fact(4, change(p, "web", 48, 50, Some(52), None)),
        fact(5, rollback(p, "web", 54, Some(54))),
        fact(6, change(p, "web", 170, 172, Some(173), None)),
        fact(7, change(p, "web", 190, 192, None, Some(193))),
        fact(
            9,
            F {
                env: s,
                app: "web",
                source: Some(h(1)),
                landed: t(90),
                rollback: false,
                live: Some(t(90)),
                failed: None,
            },
        ),
        fact(10, change(p, "api", 299, 300, None, Some(301))),
    ];
    // The order facts come in does not matter.
    list.swap(3, 7);
    list
}

const HOUR: f64 = 3600.0;

/// A week's start, deployments, changes, failures and median lead time.
type WeekRow = (DateTime<Utc>, u64, u64, u64, Option<f64>);

#[test]
fn the_scripted_history_gives_the_hand_computed_figures() {
    let window = Window {
        since: h(0),
        until: h(14 * 24),
    };
    let f = figures(&history(), window);
    assert_eq!(f.deployments, 10);
    assert_eq!(f.deployments_per_day, 10.0 / 14.0);
    assert_eq!(f.changes, 8, "rollbacks 3 and 5 are no changes");
    assert_eq!(
        f.failures, 4,
        "2 and 7 failed verification, 4 was rolled back, 10 failed"
    );
    assert_eq!(f.change_failure_rate, Some(0.5));
    // Lead times 0.5h, 3h, 3h, 4h, 6h (the failed 2, 7 and 10 were never live).
    assert_eq!(
        f.lead_time,
        Spread {
            count: 5,
            median_seconds: Some(3.0 * HOUR),
            mean_seconds: Some(16.5 * HOUR / 5.0),
        }
    );
    // Restores 1h (2 → rollback 3), 4h (4 → rollback 5), 8h (7 → 8 healthy); 10 is open.
    assert_eq!(
        f.time_to_restore,
        Spread {
            count: 3,
            median_seconds: Some(4.0 * HOUR),
            mean_seconds: Some(13.0 * HOUR / 3.0),
        }
    );
    assert_eq!(f.unrestored, 1);
    let weeks: Vec<WeekRow> = f
        .weeks
        .iter()
        .map(|w| {
            (
                w.start,
                w.deployments,
                w.changes,
                w.failures,
                w.lead_time_median_seconds,
            )
        })
        .collect();
    assert_eq!(
        weeks,
        [
            // 1, 2, 3, 4, 5 and 9; leads 3h, 4h, 0.5h.
            (h(0), 6, 4, 2, Some(3.0 * HOUR)),
            // 6, 7, 8 and 10; leads 3h and 6h.
            (h(7 * 24), 4, 4, 2, Some(4.5 * HOUR)),
            (h(14 * 24), 0, 0, 0, None),
        ]
    );
}

#[test]
fn the_window_keeps_releases_that_landed_in_it_and_restores_before_its_end() {
    // From hour 100 to hour 195: releases 6 and 7 only; 7's restore (hour 201) comes after.
    let f = figures(
        &history(),
        Window {
            since: h(100),
            until: h(195),
        },
    );
    assert_eq!((f.deployments, f.changes, f.failures, f.unrestored), (2, 2, 1, 1));
    assert_eq!(f.time_to_restore.count, 0);
    assert_eq!(f.lead_time.median_seconds, Some(3.0 * HOUR));
    // The window starts on a Thursday: its first week is that Monday's.
    assert_eq!(f.weeks.first().map(|w| w.start), Some(h(0)));
    assert_eq!(f.weeks.len(), 2);
}

#[test]
fn one_pair_alone_and_nothing_at_all() {
    let only_staging: Vec<ReleaseFact> = history()
        .into_iter()
        .filter(|f| f.env.as_str() == "staging")
        .collect();
    let window = Window {
        since: h(0),
        until: h(24),
    };
    let f = figures(&only_staging, window);
    assert_eq!((f.deployments, f.changes, f.failures), (1, 1, 0));
    assert_eq!(f.change_failure_rate, Some(0.0));
    assert_eq!(f.lead_time.median_seconds, Some(0.5 * HOUR));
    assert_eq!(f.deployments_per_day, 1.0);

    let none = figures(&[], window);
    assert_eq!((none.deployments, none.changes), (0, 0));
    assert_eq!(none.change_failure_rate, None);
    assert_eq!(none.lead_time.median_seconds, None);
    assert_eq!(none.time_to_restore.mean_seconds, None);
}

#[test]
fn a_rollback_that_is_itself_rolled_back_is_no_failed_change() {
    // A change, its rollback, a rollback of the rollback: one failure (the change), restored
    // by the first rollback.
    let list = vec![
        fact(1, change("production", "web", 0, 1, Some(2), None)),
        fact(2, rollback("production", "web", 3, Some(3))),
        fact(3, rollback("production", "web", 5, Some(5))),
    ];
    let f = figures(
        &list,
        Window {
            since: h(0),
            until: h(10),
        },
    );
    assert_eq!((f.deployments, f.changes, f.failures), (3, 1, 1));
    assert_eq!(f.time_to_restore.median_seconds, Some(2.0 * HOUR));
}
