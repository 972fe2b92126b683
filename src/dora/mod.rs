//! DORA figures (design §17): deployment frequency, lead time, change failure rate and time to
//! restore, computed from a list of release facts. Pure: [`read`] gathers the facts from the
//! gitops history and the ledger; everything here is arithmetic a test can do by hand.
//!
//! The rules, per (env, app), releases in the order they landed:
//! - **Deployments**: every release that landed in the window, rollbacks included.
//! - **Lead time** of a change (a release that is not a rollback): from its source time to when
//!   it was live (healthy where the env verifies, merged where it does not). A change that
//!   never became healthy has none.
//! - **Change failure rate**: the changes whose verification failed (or timed out), or that
//!   the next release of the pair rolled back, over all changes.
//! - **Time to restore** of a failed change: from its failure (the failed verification, or its
//!   landing when a rollback followed without one) to the next release of the pair that was a
//!   rollback (its landing) or that became live. A failure with no such release yet is
//!   `unrestored`.

pub mod read;

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveTime, Utc};
use serde::Serialize;

use crate::artifact::ArtifactId;
use crate::domain::{AppName, EnvName};

/// What the figures need to know about one release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseFact {
    pub env: EnvName,
    pub app: AppName,
    pub artifact: ArtifactId,
    /// When it landed on the gitops branch (merged).
    pub landed: DateTime<Utc>,
    /// When its source commit was made, as far as auger knows; `None` leaves it out of lead
    /// time.
    pub source_time: Option<DateTime<Utc>>,
    /// A rollback (by a person or after a failed verification): not a change of its own.
    pub rollback: bool,
    /// When it was live: healthy where the env verifies, `landed` where it does not; `None`
    /// when it never became healthy.
    pub live: Option<DateTime<Utc>>,
    /// When its verification failed or timed out.
    pub failed: Option<DateTime<Utc>>,
}

/// The span the figures cover: releases that landed in `since..=until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

impl Window {
    fn contains(&self, t: DateTime<Utc>) -> bool {
        self.since <= t && t <= self.until
    }

    fn days(&self) -> f64 {
        (self.until - self.since).num_seconds().max(1) as f64 / 86_400.0
    }
}

/// A set of durations: how many, their median and mean, in seconds (`None` when empty).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spread {
    pub count: u64,
    pub median_seconds: Option<f64>,
    pub mean_seconds: Option<f64>,
}

impl Spread {
    fn of(mut seconds: Vec<i64>) -> Spread {
        seconds.sort_unstable();
        let n = seconds.len();
        let median = match n {
            0 => None,
            _ if n % 2 == 1 => Some(seconds[n / 2] as f64),
            _ => Some((seconds[n / 2 - 1] as f64 + seconds[n / 2] as f64) / 2.0),
        };
        let mean = (n > 0).then(|| seconds.iter().map(|s| *s as f64).sum::<f64>() / n as f64);
        Spread {
            count: n as u64,
            median_seconds: median,
            mean_seconds: mean,
        }
    }
}

/// One week of the window (weeks start on Monday, 00:00 UTC): what the charts draw.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Week {
    pub start: DateTime<Utc>,
    pub deployments: u64,
    pub changes: u64,
    pub failures: u64,
    /// Median lead time of the week's changes.
    pub lead_time_median_seconds: Option<f64>,
}

/// The four figures over a window, and the week by week series behind them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub deployments: u64,
    pub deployments_per_day: f64,
    pub lead_time: Spread,
    /// Releases that were not rollbacks.
    pub changes: u64,
    /// Changes that failed verification or were rolled back.
    pub failures: u64,
    /// `failures / changes`; `None` without changes.
    pub change_failure_rate: Option<f64>,
    pub time_to_restore: Spread,
    /// Failures no later release has restored (yet).
    pub unrestored: u64,
    /// Oldest first, every week the window touches.
    pub weeks: Vec<Week>,
}

/// The figures of `facts` (any order, any pairs) over `window`.
pub fn figures(facts: &[ReleaseFact], window: Window) -> Figures {
    let mut pairs: BTreeMap<(&EnvName, &AppName), Vec<&ReleaseFact>> = BTreeMap::new();
    for f in facts {
        pairs.entry((&f.env, &f.app)).or_default().push(f);
    }
    let mut weeks = week_starts(window);
    let mut week_leads: Vec<Vec<i64>> = vec![Vec::new(); weeks.len()];
    let week_of = |t: DateTime<Utc>, weeks: &[Week]| weeks.iter().rposition(|w| w.start <= t);
    let (mut deployments, mut changes, mut failures, mut unrestored) = (0u64, 0u64, 0u64, 0u64);
    let (mut leads, mut restores) = (Vec::new(), Vec::new());
    for list in pairs.values_mut() {
        // Stable: releases landing in the same second keep the order they were given in.
        list.sort_by_key(|f| f.landed);
        for (i, f) in list.iter().enumerate() {
            if !window.contains(f.landed) {
                continue;
            }
            let week = week_of(f.landed, &weeks);
            deployments += 1;
            if let Some(w) = week {
                weeks[w].deployments += 1;
            }
            if f.rollback {
                continue;
            }
            changes += 1;
            if let Some(w) = week {
                weeks[w].changes += 1;
            }
            if let (Some(source), Some(live)) = (f.source_time, f.live) {
                let lead = (live - source).num_seconds().max(0);
                leads.push(lead);
                if let Some(w) = week {
                    week_leads[w].push(lead);
                }
            }
            let later = &list[i + 1..];
            let rolled_back = later.first().is_some_and(|n| n.rollback);
            if f.failed.is_none() && !rolled_back {
                continue;
            }
            failures += 1;
            if let Some(w) = week {
                weeks[w].failures += 1;
            }
            let start = f.failed.unwrap_or(f.landed);
            let restored = later
                .iter()
                .find_map(|n| if n.rollback { Some(n.landed) } else { n.live })
                .filter(|end| *end <= window.until);
            match restored {
                Some(end) => restores.push((end - start).num_seconds().max(0)),
                None => unrestored += 1,
            }
        }
    }
    for (w, l) in weeks.iter_mut().zip(week_leads) {
        w.lead_time_median_seconds = Spread::of(l).median_seconds;
    }
    Figures {
        since: window.since,
        until: window.until,
        deployments,
        deployments_per_day: deployments as f64 / window.days(),
        lead_time: Spread::of(leads),
        changes,
        failures,
        change_failure_rate: (changes > 0).then(|| failures as f64 / changes as f64),
        time_to_restore: Spread::of(restores),
        unrestored,
        weeks,
    }
}

/// Empty weeks from the Monday of `since`'s week through `until`'s week.
fn week_starts(window: Window) -> Vec<Week> {
    let date = window.since.date_naive();
    let monday = date - Duration::days(i64::from(date.weekday().num_days_from_monday()));
    let mut start = monday.and_time(NaiveTime::MIN).and_utc();
    let mut out = Vec::new();
    while start <= window.until {
        out.push(Week {
            start,
            deployments: 0,
            changes: 0,
            failures: 0,
            lead_time_median_seconds: None,
        });
        start += Duration::weeks(1);
    }
    out
}

#[cfg(test)]
mod tests;
