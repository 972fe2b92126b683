//! The worker: takes work from the queue in order, one entry at a time, and hands each to its
//! handler ([`crate::handlers`]). Every handler is idempotent, because an entry whose effects
//! were durable but whose done marker was not is replayed: after a restart, or by another
//! replica once this one's lease ran out (PostgreSQL).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{Instrument, info_span};

use crate::domain::{BranchName, RepoName};
use crate::handlers::{self, Ctx, Delivery, Handled};
use crate::queue::{Entry, Queue};
use crate::work::{self, Scope};

/// Deliveries per second above which the inbox is in a burst (far above what even a large
/// organisation sends in steady state: GitHub is redelivering, or something is flooding).
const BURST_RATE: f64 = 2_000.0;
/// In a burst the worker rests this many times as long as its last batch took.
const BURST_REST: u32 = 3;

/// How long the worker rests after a batch that took `worked`, given `appended` deliveries
/// accepted in the `interval` that batch covered. During a burst it works a quarter of the
/// time: the CPU goes to acknowledging deliveries, whose senders wait (GitHub gives up after
/// 10 s), while what the worker would do is already on disk. Unlike a scheduling class, this
/// yields only to auger's own intake, so a host busy with other work never starves it.
fn rest_after(worked: Duration, appended: u64, interval: Duration) -> Duration {
    let secs = interval.as_secs_f64();
    if secs > 0.0 && appended as f64 / secs > BURST_RATE {
        worked * BURST_REST
    } else {
        Duration::ZERO
    }
}

/// The serial consumer of the queue.
pub struct Worker {
    pub queue: Queue,
    pub ctx: Arc<Ctx>,
    /// For entries an earlier auger stored as GitHub events, which are classified on reading.
    pub gitops_repos: Vec<RepoName>,
    /// The config repository and branch whose pushes reload the policies.
    pub config_repo: Option<(RepoName, BranchName)>,
    /// The release loop's reconcile period (`server.reconcile_interval`).
    pub reconcile_every: Duration,
}

impl Worker {
    /// Run until the queue closes or `stop` resolves. On `stop` the entry in hand is dropped
    /// where it waits (a GitHub call, a git task's result) and not marked done, so it is
    /// replayed on the next start; entries finished before it are still marked done.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut since = (Instant::now(), self.queue.appended());
        loop {
            let taken = tokio::select! {
                biased;
                () = &mut stop => return,
                taken = self.queue.take(self.batch()) => taken,
            };
            let entries = match taken {
                Ok(e) if e.is_empty() => return, // closed
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(error = %e, "queue read failed; worker stops");
                    return;
                }
            };
            // Done markers go out once per batch: one queue write instead of one per entry. An
            // entry whose effects are durable but whose marker is not is replayed after a
            // crash, which every handler tolerates.
            let mut done = Vec::with_capacity(entries.len());
            let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
            let lease = self.queue.keep_claimed(&seqs);
            let batch_started = Instant::now();
            let mut stopped = false;
            for entry in entries {
                tokio::select! {
                    biased;
                    () = &mut stop => {
                        stopped = true;
                        break;
                    }
                    () = self.work_on(&entry) => done.push(entry.seq),
                }
            }
            let unfinished: Vec<u64> = seqs.iter().copied().filter(|s| !done.contains(s)).collect();
            let marked = self.queue.mark_done_many(done).await;
            drop(lease);
            if stopped {
                // Another replica may take them now rather than when their lease runs out.
                self.queue.give_back(&unfinished).await;
            }
            if let Err(e) = marked {
                // Replayed after a restart; handlers are idempotent.
                tracing::warn!(error = %e, "could not mark deliveries done");
                return;
            }
            if stopped {
                return;
            }
            let now = (Instant::now(), self.queue.appended());
            let rest = rest_after(
                now.0 - batch_started,
                now.1.saturating_sub(since.1),
                now.0 - since.0,
            );
            since = now;
            if !rest.is_zero() {
                tokio::select! {
                    biased;
                    () = &mut stop => return,
                    () = tokio::time::sleep(rest) => {}
                }
            }
        }
    }

    /// Decodes one entry and hands it to its handler. A failure is logged and counted, and the
    /// entry is still done: a delivery that fails for a reason of its own must not block every
    /// later one.
    async fn work_on(&self, entry: &Entry) {
        // `work`, `repo`, `pr` and `app` are filled in once the entry is decoded (a field must
        // be declared here to be recordable later).
        let span = info_span!(
            "work",
            delivery = %entry.delivery_id,
            event = work::source_of(&entry.event),
            seq = entry.seq,
            work = tracing::field::Empty,
            repo = tracing::field::Empty,
            pr = tracing::field::Empty,
            app = tracing::field::Empty
        );
        let started = Instant::now();
        let policies = self.ctx.policies.current();
        let scope = Scope {
            policies: &policies,
            gitops_repos: &self.gitops_repos,
            config_repo: self.config_repo.as_ref().map(|(r, b)| (r, b)),
        };
        let (kind, result) = match work::decode(&entry.event, &entry.body, scope) {
            Ok(Some(w)) => {
                let kind = w.kind();
                record_in_span(&span, &self.ctx, &w);
                (
                    kind,
                    handlers::handle(&self.ctx, w, self.delivery(entry))
                        .instrument(span.clone())
                        .await,
                )
            }
            Ok(None) => ("none", Ok(Handled::Nothing)),
            Err(e) => ("unreadable", Err(e.into())),
        };
        let outcome = match &result {
            Ok(Handled::Acted) => "ok",
            Ok(Handled::Nothing) => "ignored",
            Err(e) => {
                span.in_scope(|| tracing::error!(error = %format!("{e:#}"), "delivery failed"));
                "error"
            }
        };
        self.ctx.metrics.processed(kind, outcome, started.elapsed());
    }

    /// Entries claimed at once. Replicas share the PostgreSQL queue: a small claim leaves the
    /// rest to the others, and a replica that dies holds little behind its lease.
    fn batch(&self) -> usize {
        match self.queue {
            Queue::Journal { .. } => 32,
            Queue::Postgres(_) => 4,
        }
    }

    fn delivery(&self, entry: &Entry) -> Delivery {
        if entry.replayed {
            Delivery::Replayed
        } else {
            Delivery::First
        }
    }
}

/// Names the work's kind, repository, pull request and (only for a span that is logged) the
/// apps whose policies name the repository.
fn record_in_span(span: &tracing::Span, ctx: &Ctx, w: &work::Work) {
    span.record("work", w.kind());
    if let Some(pr) = w.pull_number() {
        span.record("pr", pr);
    }
    let Some(repo) = w.repo() else { return };
    span.record("repo", repo.as_str());
    if !span.is_disabled() {
        let policies = ctx.policies.current();
        let apps: Vec<&str> = policies.for_repo(repo).map(|p| p.app().as_str()).collect();
        if !apps.is_empty() {
            span.record("app", apps.join(",").as_str());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_worker_rests_only_while_deliveries_pour_in() {
        // A burst: 30,000 deliveries/s while a batch took 4 ms → rest 12 ms (a quarter duty).
        assert_eq!(rest_after(4 * MS, 300, 10 * MS), 12 * MS);
        // Busy but ordinary: 500/s, or a batch after an idle wait (long interval).
        assert_eq!(rest_after(4 * MS, 5, 10 * MS), Duration::ZERO);
        assert_eq!(rest_after(4 * MS, 2_000, 5_000 * MS), Duration::ZERO);
        // Nothing new at all, or no time passed.
        assert_eq!(rest_after(4 * MS, 0, 10 * MS), Duration::ZERO);
        assert_eq!(rest_after(4 * MS, 10, Duration::ZERO), Duration::ZERO);
    }
}
