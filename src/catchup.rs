//! Catch-up (design §14): GitHub never sends a failed webhook again by itself, so a delivery
//! that came while auger was down, or that it could not store, would be lost until some later
//! event happened to cover for it. With GitHub App authentication, auger reads the App's
//! delivery attempts on start and every `server.reconcile_interval`, and asks GitHub to
//! redeliver each event none of whose attempts got a 2xx and that the inbox never accepted.
//!
//! A pass reads the attempts made since the newest one the last pass saw (less a margin, for
//! attempts recorded late), and redelivers at most [`MAX_PER_PASS`] events, oldest first, each
//! at most [`MAX_TIMES`] times in all; what it saw and what it asked for are kept in
//! `catch-up.json` in the data directory, so a restart neither forgets nor repeats them. The
//! inbox drops a GUID it already holds, so a redelivery that crosses a late original costs a
//! duplicate answer, not a second effect. Errors are logged and the pass is tried again on the
//! next tick; nothing here stops the server.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::forge::{Forge, HookDelivery};
use crate::queue::Queue;

/// Events redelivered at most per pass; the rest wait for the next pass.
pub const MAX_PER_PASS: usize = 25;
/// Redeliveries asked at most for one event: one whose redeliveries keep failing (auger
/// refuses it, or is down again) is given up after this many passes.
pub const MAX_TIMES: u32 = 3;
/// An event redelivered is not asked for again sooner than this: GitHub may not have made the
/// attempt yet.
const RETRY_SPACING: TimeDelta = TimeDelta::minutes(2);
/// Attempts are read from this long before the newest one the last pass saw: GitHub lists an
/// attempt once it is over, so one that took long can appear older than one seen before it.
const OVERLAP: TimeDelta = TimeDelta::minutes(5);
/// With no pass on record (a new data directory), attempts of the last hour are read.
const FIRST_LOOKBACK: TimeDelta = TimeDelta::hours(1);
/// GitHub redelivers only deliveries of the last three days; older records are dropped.
const KEEP: TimeDelta = TimeDelta::days(3);

/// The file in the data directory that holds the catch-up's progress.
pub const STATE_FILE: &str = "catch-up.json";

/// What a pass remembers for the next (and across restarts).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// The newest attempt seen: the next pass reads from here, less [`OVERLAP`].
    pub checked_until: Option<DateTime<Utc>>,
    /// Events auger asked GitHub to redeliver, by GUID.
    pub redelivered: BTreeMap<String, Redelivered>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redelivered {
    pub times: u32,
    pub last: DateTime<Utc>,
}

/// An event to redeliver: its GUID, the attempt to name, and when it was first attempted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missed {
    pub guid: String,
    pub attempt: u64,
    pub event: String,
    pub first_at: DateTime<Utc>,
}

/// The events among `attempts` none of whose attempts got a 2xx and that may be asked for
/// again now, oldest first. Pure; the inbox is asked afterwards.
pub fn missed(attempts: &[HookDelivery], progress: &Progress, now: DateTime<Utc>) -> Vec<Missed> {
    let mut by_guid: HashMap<&str, Vec<&HookDelivery>> = HashMap::new();
    for a in attempts {
        by_guid.entry(a.guid.as_str()).or_default().push(a);
    }
    let mut out: Vec<Missed> = by_guid
        .into_iter()
        .filter(|(_, tries)| !tries.iter().any(|a| a.succeeded()))
        .filter(|(guid, _)| {
            progress
                .redelivered
                .get(*guid)
                .is_none_or(|r| r.times < MAX_TIMES && r.last + RETRY_SPACING <= now)
        })
        .filter_map(|(guid, tries)| {
            let newest = tries.iter().max_by_key(|a| a.id)?;
            let first_at = tries.iter().map(|a| a.delivered_at).min()?;
            Some(Missed {
                guid: guid.to_owned(),
                attempt: newest.id,
                event: newest.event.clone(),
                first_at,
            })
        })
        .collect();
    out.sort_by(|a, b| (a.first_at, &a.guid).cmp(&(b.first_at, &b.guid)));
    out
}

/// Where the next pass reads from: the newest attempt seen, but no later than the first event
/// this pass left for later. `None` when nothing says more than `fallback`.
fn next_checkpoint(
    attempts: &[HookDelivery],
    left: Option<&Missed>,
    fallback: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    let newest = attempts.iter().map(|a| a.delivered_at).max().or(fallback);
    match (newest, left) {
        (Some(n), Some(l)) => Some(n.min(l.first_at)),
        (n, l) => n.or(l.map(|l| l.first_at)),
    }
}

/// What one pass did, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Attempts read.
    pub read: usize,
    /// Attempt ids asked to be redelivered.
    pub redelivered: Vec<u64>,
    /// Events GitHub refused to redeliver (logged).
    pub refused: usize,
    /// Missed events left for the next pass by the per-pass bound.
    pub deferred: usize,
}

/// The catch-up of one `auger serve`.
pub struct CatchUp {
    forge: Arc<dyn Forge>,
    inbox: Queue,
    file: PathBuf,
    progress: Progress,
}

impl CatchUp {
    /// Over `data_dir`'s progress file; an unreadable one is reported and started afresh
    /// (it only says how far back to look).
    pub fn new(forge: Arc<dyn Forge>, inbox: Queue, data_dir: &Path) -> CatchUp {
        let file = data_dir.join(STATE_FILE);
        let progress = match load(&file) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "catch-up progress unreadable; starting afresh"
                );
                Progress::default()
            }
        };
        CatchUp {
            forge,
            inbox,
            file,
            progress,
        }
    }

    /// A pass at once, then one every `every`, until the task is dropped.
    pub async fn run(mut self, every: Duration) {
        loop {
            match self.pass(Utc::now()).await {
                Ok(report) if !report.redelivered.is_empty() || report.deferred > 0 => {
                    tracing::info!(
                        read = report.read,
                        redelivered = report.redelivered.len(),
                        refused = report.refused,
                        deferred = report.deferred,
                        "catch-up: asked GitHub to redeliver webhooks auger missed"
                    );
                }
                Ok(report) => tracing::debug!(read = report.read, "catch-up: nothing missed"),
                Err(e) => tracing::warn!(
                    error = format!("{e:#}"),
                    "catch-up pass failed; tried again next time"
                ),
            }
            tokio::time::sleep(every).await;
        }
    }

    /// One pass at `now`: read, decide, redeliver, remember.
    pub async fn pass(&mut self, now: DateTime<Utc>) -> anyhow::Result<PassReport> {
        let since = self
            .progress
            .checked_until
            .map_or(now - FIRST_LOOKBACK, |t| t - OVERLAP)
            .max(now - KEEP);
        let listed = self
            .forge
            .hook_deliveries(since)
            .await
            .context("listing the App's webhook deliveries")?;
        if listed.truncated {
            tracing::warn!(
                %since,
                "catch-up: more webhook deliveries than one pass reads; older ones are not checked"
            );
        }
        let mut missed = missed(&listed.attempts, &self.progress, now);
        let accepted = self
            .inbox
            .known(missed.iter().map(|m| m.guid.clone()).collect())
            .await
            .context("asking the inbox which deliveries it holds")?;
        let mut accepted = accepted.into_iter();
        missed.retain(|_| !accepted.next().unwrap_or(false));
        let later = missed.split_off(missed.len().min(MAX_PER_PASS));
        let mut report = PassReport {
            read: listed.attempts.len(),
            deferred: later.len(),
            ..PassReport::default()
        };
        for m in &missed {
            match self.forge.redeliver(m.attempt).await {
                Ok(()) => {
                    tracing::info!(guid = %m.guid, event = %m.event, attempt = m.attempt, "catch-up: redelivery asked");
                    report.redelivered.push(m.attempt);
                }
                Err(e) => {
                    tracing::warn!(guid = %m.guid, event = %m.event, error = %e, "catch-up: GitHub refused the redelivery");
                    report.refused += 1;
                }
            }
            // Counted either way: an event GitHub will not redeliver is not asked for forever.
            let entry = self
                .progress
                .redelivered
                .entry(m.guid.clone())
                .or_insert(Redelivered { times: 0, last: now });
            entry.times += 1;
            entry.last = now;
        }
        self.progress.checked_until = next_checkpoint(
            &listed.attempts,
            later.first(),
            self.progress.checked_until.or(Some(since)),
        );
        self.progress.redelivered.retain(|_, r| r.last + KEEP > now);
        let (file, progress) = (self.file.clone(), self.progress.clone());
        tokio::task::spawn_blocking(move || save(&file, &progress))
            .await
            .context("the catch-up's save task")??;
        Ok(report)
    }

    /// What the catch-up remembers now.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    v: u32,
    #[serde(flatten)]
    progress: Progress,
}

fn load(file: &Path) -> anyhow::Result<Progress> {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Progress::default()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    let disk: OnDisk =
        serde_json::from_slice(&bytes).with_context(|| format!("{} is not readable", file.display()))?;
    anyhow::ensure!(disk.v == 1, "{}: version {} is not known", file.display(), disk.v);
    Ok(disk.progress)
}

/// A crash leaves one whole version.
fn save(file: &Path, progress: &Progress) -> anyhow::Result<()> {
    let bytes = serde_json::to_vec_pretty(&OnDisk {
        v: 1,
        progress: progress.clone(),
    })?;
    crate::data_dir::write_atomically(file, &bytes).with_context(|| format!("writing {}", file.display()))
}

#[cfg(test)]
mod tests;
