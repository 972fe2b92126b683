//! The worker: takes deliveries from the inbox in order, one at a time, and acts on them.
//! Every handler is idempotent, because an entry whose effects were durable but whose done
//! marker was not is replayed after a restart.

use std::sync::Arc;
use std::time::Instant;

use tracing::{Instrument, info_span};

use crate::artifact::{ArtifactStore, RecordOutcome, intake};
use crate::forge::Forge;
use crate::inbox::{Entry, Inbox};
use crate::metrics::Metrics;
use crate::policy::PolicySet;
use crate::webhook::Event;
use crate::webhook::events::parse_event;

/// What the worker needs; cheap to clone into its task.
#[derive(Clone)]
pub struct Worker {
    pub inbox: Inbox,
    pub store: Arc<ArtifactStore>,
    pub policies: Arc<PolicySet>,
    pub metrics: Arc<Metrics>,
    /// GitHub, for facts a payload lacks; `None` when no credentials are configured.
    pub forge: Option<Arc<dyn Forge>>,
}

impl Worker {
    /// Run until the inbox closes.
    pub async fn run(self) {
        loop {
            let entries = match self.inbox.take(32).await {
                Ok(e) if e.is_empty() => return, // closed
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(error = %e, "inbox read failed; worker stops");
                    return;
                }
            };
            for entry in entries {
                let seq = entry.seq;
                let span = info_span!("work", delivery = %entry.delivery_id, event = %entry.event, seq);
                let started = Instant::now();
                let result = self.handle(&entry).instrument(span.clone()).await;
                let outcome = match &result {
                    Ok(true) => "ok",
                    Ok(false) => "ignored",
                    Err(e) => {
                        // Logged, counted and done: a delivery that fails for a reason of its
                        // own must not block every later one.
                        span.in_scope(|| tracing::error!(error = %format!("{e:#}"), "delivery failed"));
                        "error"
                    }
                };
                self.metrics.processed(&entry.event, outcome, started.elapsed());
                if let Err(e) = self.inbox.mark_done(seq).await {
                    // Replayed after a restart; handlers are idempotent.
                    tracing::warn!(error = %e, seq, "could not mark a delivery done");
                    return;
                }
            }
        }
    }

    /// Act on one delivery. `Ok(false)`: nothing to do for it.
    async fn handle(&self, entry: &Entry) -> anyhow::Result<bool> {
        let event = parse_event(&entry.event, &entry.body)?;
        if let Some(repo) = event.repo() {
            tracing::Span::current().record("repo", repo.as_str());
        }
        match &event {
            Event::Status(_) | Event::CheckRun(_) | Event::WorkflowRun(_) | Event::Push(_) => {
                self.intake(&event).await
            }
            _ => Ok(false),
        }
    }

    /// A commit status names no pull request; ask GitHub which open PRs have this commit, so
    /// `/deploy` from a PR finds its artifact. A GitHub outage costs only this fact.
    async fn add_pull_requests(&self, artifacts: &mut [crate::artifact::Artifact]) {
        let Some(forge) = &self.forge else { return };
        for a in artifacts.iter_mut().filter(|a| a.pull_requests.is_empty()) {
            match forge.pulls_for_commit(&a.repo, &a.sha).await {
                Ok(prs) => a.pull_requests = prs,
                Err(e) => {
                    tracing::warn!(error = %e, artifact = %a.id, "could not ask GitHub for the commit's pull requests")
                }
            }
        }
    }

    async fn intake(&self, event: &Event) -> anyhow::Result<bool> {
        let mut wanted = intake::from_event(event, &self.policies);
        if wanted.is_empty() {
            return Ok(false);
        }
        self.add_pull_requests(&mut wanted.artifacts).await;
        let store = self.store.clone();
        let outcomes = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<RecordOutcome>> {
            let mut outcomes = store.record_batch(&wanted.artifacts)?;
            // A tag names a build that already exists; it never makes one.
            for (app, sha, tag) in &wanted.tags {
                if let Some(mut a) = store.get(app, sha)? {
                    a.tags.push(tag.clone());
                    outcomes.push(store.record(&a)?);
                }
            }
            Ok(outcomes)
        })
        .await??;
        for o in &outcomes {
            let word = match o {
                RecordOutcome::Created(a) => {
                    tracing::info!(artifact = %a.id, "artifact recorded");
                    "created"
                }
                RecordOutcome::Updated(a) => {
                    tracing::info!(artifact = %a.id, "artifact updated");
                    "updated"
                }
                RecordOutcome::Unchanged(_) => "unchanged",
            };
            self.metrics.artifact(word);
        }
        Ok(!outcomes.is_empty())
    }
}
