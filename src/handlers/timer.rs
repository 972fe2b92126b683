//! The release loop's clock: a reconcile at start (open release pull requests are re-checked
//! too: approvals may have come while auger was down), then every `reconcile_interval`, and as
//! soon as a desired release's backoff, a soak or a verification's deadline ends. Previews of pull requests closed while
//! auger was not listening are swept at start and once per period.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Ctx;

/// The shortest sleep between passes, so a desire that stays due cannot spin the loop.
const MIN_WAIT: Duration = Duration::from_millis(100);

/// Runs until the task is dropped; does nothing without a release loop.
pub async fn run(ctx: &Ctx, every: Duration) {
    let Some(r) = ctx.releases.running() else {
        return;
    };
    r.recheck_open_pulls().await;
    r.sweep_previews().await;
    let mut swept = std::time::Instant::now();
    loop {
        let sleep = tokio::time::sleep(wait(r.next_retry(), Utc::now(), every));
        tokio::select! {
            _ = sleep => {}
            // An event's pass may have set an earlier retry, soak end or deadline.
            _ = r.rescheduled() => continue,
        }
        r.tick().await;
        if swept.elapsed() >= every {
            r.sweep_previews().await;
            swept = std::time::Instant::now();
        }
    }
}

/// How long to sleep before the next pass: until the earliest retry, at most `every`.
fn wait(next_retry: Option<DateTime<Utc>>, now: DateTime<Utc>, every: Duration) -> Duration {
    let until_retry = next_retry.map(|at| (at - now).to_std().unwrap_or(Duration::ZERO));
    until_retry.map_or(every, |d| d.min(every)).max(MIN_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timer_wakes_for_the_earliest_retry_but_at_least_every_period() {
        let now = Utc::now();
        let minute = Duration::from_secs(60);
        assert_eq!(wait(None, now, minute), minute);
        let soon = now + chrono::TimeDelta::seconds(5);
        assert_eq!(wait(Some(soon), now, minute), Duration::from_secs(5));
        let late = now + chrono::TimeDelta::hours(2);
        assert_eq!(wait(Some(late), now, minute), minute);
        let past = now - chrono::TimeDelta::seconds(5);
        assert_eq!(wait(Some(past), now, minute), MIN_WAIT);
    }
}
