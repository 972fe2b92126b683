//! The worker: takes deliveries from the inbox in order, one at a time, and acts on them.
//! Every handler is idempotent, because an entry whose effects were durable but whose done
//! marker was not is replayed after a restart.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{Instrument, info_span};

use serde::{Deserialize, Serialize};

use crate::artifact::{Artifact, ArtifactId, ArtifactStore, RecordOutcome, intake};
use crate::domain::{AppName, EnvName};
use crate::forge::Forge;
use crate::gitops::Trigger;
use crate::inbox::{Entry, Inbox};
use crate::metrics::Metrics;
use crate::policy::PolicySet;
use crate::pr_commands::PrCommands;
use crate::release::{Plan, Releaser};
use crate::webhook::Event;
use crate::webhook::events::{PullRequestAction, PullRequestEvent, RefEvent, parse_event};

/// Inbox entries auger writes itself (never accepted from the webhook route, which only takes
/// GitHub's event names): an ad hoc release, and an artifact recorded through the API whose
/// automatic releases are still to be decided.
pub const EVENT_RELEASE: &str = "auger.release";
pub const EVENT_ARTIFACT: &str = "auger.artifact";
pub const EVENT_ROLLBACK: &str = "auger.rollback";

/// The body of an [`EVENT_ROLLBACK`] entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RollbackRequest {
    pub app: AppName,
    pub env: EnvName,
    pub to: Option<ArtifactId>,
    /// Who asked (`api <token name>`).
    pub by: String,
}

/// The body of an [`EVENT_RELEASE`] entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReleaseRequest {
    pub app: AppName,
    pub env: EnvName,
    pub artifact: ArtifactId,
    pub trigger: Trigger,
}

/// The body of an [`EVENT_ARTIFACT`] entry: the facts one API call brought.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArtifactRecorded {
    pub incoming: Artifact,
}

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

/// What the worker needs; cheap to clone into its task.
#[derive(Clone)]
pub struct Worker {
    pub inbox: Inbox,
    pub store: Arc<ArtifactStore>,
    pub policies: Arc<PolicySet>,
    pub metrics: Arc<Metrics>,
    /// GitHub, for facts a payload lacks; `None` when no credentials are configured.
    pub forge: Option<Arc<dyn Forge>>,
    /// The release loop; `None` without a `[gitops]` section (artifacts are still recorded).
    pub releaser: Option<Arc<Releaser>>,
    /// PR comment commands; `None` without a release loop or GitHub credentials.
    pub commands: Option<Arc<PrCommands>>,
}

impl Worker {
    /// Run until the inbox closes or `stop` resolves. On `stop` the delivery in hand is
    /// dropped where it waits (a GitHub call, a git task's result) and not marked done, so it
    /// is replayed on the next start; entries finished before it are still marked done.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut since = (Instant::now(), self.inbox.appended());
        loop {
            let taken = tokio::select! {
                biased;
                () = &mut stop => return,
                taken = self.inbox.take(32) => taken,
            };
            let entries = match taken {
                Ok(e) if e.is_empty() => return, // closed
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(error = %e, "inbox read failed; worker stops");
                    return;
                }
            };
            // Done markers go out once per batch: one inbox write instead of one per entry. An
            // entry whose effects are durable but whose marker is not is replayed after a
            // crash, which every handler tolerates.
            let mut done = Vec::with_capacity(entries.len());
            let mut stopped = false;
            let batch_started = Instant::now();
            for entry in entries {
                let seq = entry.seq;
                // `repo`, `pr` and `app` are filled in once the payload is parsed (a field must
                // be declared here to be recordable later).
                let span = info_span!(
                    "work",
                    delivery = %entry.delivery_id,
                    event = %entry.event,
                    seq,
                    repo = tracing::field::Empty,
                    pr = tracing::field::Empty,
                    app = tracing::field::Empty
                );
                let started = Instant::now();
                let result = tokio::select! {
                    biased;
                    () = &mut stop => {
                        stopped = true;
                        break;
                    }
                    result = self.handle(&entry).instrument(span.clone()) => result,
                };
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
                done.push(seq);
            }
            if let Err(e) = self.inbox.mark_done_many(done).await {
                // Replayed after a restart; handlers are idempotent.
                tracing::warn!(error = %e, "could not mark deliveries done");
                return;
            }
            if stopped {
                return;
            }
            let now = (Instant::now(), self.inbox.appended());
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

    /// Act on one delivery. `Ok(false)`: nothing to do for it.
    async fn handle(&self, entry: &Entry) -> anyhow::Result<bool> {
        match entry.event.as_str() {
            EVENT_RELEASE => return self.ad_hoc_release(&entry.body).await,
            EVENT_ARTIFACT => return self.api_artifact(&entry.body).await,
            EVENT_ROLLBACK => {
                let req: RollbackRequest = serde_json::from_slice(&entry.body)?;
                let Some(r) = &self.releaser else {
                    anyhow::bail!("rollback asked, but no [gitops] is configured")
                };
                r.rollback(&req.env, &req.app, req.to.as_ref(), &req.by, None)
                    .await?;
                return Ok(true);
            }
            _ => {}
        }
        let event = parse_event(&entry.event, &entry.body)?;
        let span = tracing::Span::current();
        crate::webhook::record_in_span(&span, &event);
        // The apps are looked up only for a span that is logged.
        if !span.is_disabled()
            && let Some(repo) = event.repo()
        {
            let apps: Vec<&str> = self.policies.for_repo(repo).map(|p| p.app().as_str()).collect();
            if !apps.is_empty() {
                span.record("app", apps.join(",").as_str());
            }
        }
        match &event {
            Event::Status(_) | Event::CheckRun(_) | Event::WorkflowRun(_) | Event::Push(_) => {
                self.intake(&event).await
            }
            Event::PullRequestReview(e) if self.is_gitops(&e.repository.full_name) => {
                let Some(r) = &self.releaser else { return Ok(false) };
                Ok(r.on_review(e.pull_request.number).await?.is_some())
            }
            Event::PullRequest(e)
                if e.action == PullRequestAction::Closed && self.is_gitops(&e.repository.full_name) =>
            {
                let Some(r) = &self.releaser else { return Ok(false) };
                Ok(r.on_pull_closed(e.number).await?.is_some())
            }
            Event::PullRequest(e) => self.app_pull_request(e).await,
            Event::Delete(e) => self.branch_deleted(e).await,
            Event::IssueComment(e) => match &self.commands {
                Some(c) => c.handle(e).await,
                None => Ok(false),
            },
            _ => Ok(false),
        }
    }

    /// A pull request of an app's repository: its previews follow it, and the command
    /// handler learns its head (so a `/deploy` names the commit the person saw).
    async fn app_pull_request(&self, e: &PullRequestEvent) -> anyhow::Result<bool> {
        let Some(r) = &self.releaser else { return Ok(false) };
        let repo = &e.repository.full_name;
        let head_moved = matches!(
            e.action,
            PullRequestAction::Opened | PullRequestAction::Reopened | PullRequestAction::Synchronize
        );
        if head_moved
            && let Some(c) = &self.commands
            && let Some(at) = e.pull_request.updated_at
        {
            c.saw_head(repo, e.number, &e.pull_request.head.sha, at);
        }
        match e.action {
            _ if head_moved => Ok(!r.on_pull_request(repo, e.number).await?.is_empty()),
            PullRequestAction::Closed => Ok(r.remove_previews(repo, e.number).await? > 0),
            _ => Ok(false),
        }
    }

    /// A deleted branch ends its pull request's preview (GitHub usually closes the pull request
    /// too; whichever comes first removes it, the other finds it gone).
    async fn branch_deleted(&self, e: &RefEvent) -> anyhow::Result<bool> {
        let (Some(r), Some(forge), Some(branch)) = (&self.releaser, &self.forge, e.branch()) else {
            return Ok(false);
        };
        let repo = &e.repository.full_name;
        if self.policies.for_repo(repo).all(|p| p.preview().is_none()) {
            return Ok(false);
        }
        match forge.find_open_pull(repo, &branch).await? {
            Some(pr) => Ok(r.remove_previews(repo, pr.number).await? > 0),
            None => Ok(false),
        }
    }

    fn is_gitops(&self, repo: &crate::domain::RepoName) -> bool {
        self.releaser
            .as_ref()
            .is_some_and(|r| r.gitops_repo().as_str().eq_ignore_ascii_case(repo.as_str()))
    }

    async fn ad_hoc_release(&self, body: &[u8]) -> anyhow::Result<bool> {
        let req: ReleaseRequest = serde_json::from_slice(body)?;
        let Some(r) = &self.releaser else {
            anyhow::bail!(
                "release of {} to {} asked, but no [gitops] is configured",
                req.artifact,
                req.env
            );
        };
        let reason = format!("asked by {}", req.trigger);
        r.release(Plan {
            env: req.env,
            app: req.app,
            artifact: req.artifact,
            trigger: req.trigger,
            reason,
            reply: None,
        })
        .await?;
        Ok(true)
    }

    async fn api_artifact(&self, body: &[u8]) -> anyhow::Result<bool> {
        let rec: ArtifactRecorded = serde_json::from_slice(body)?;
        let Some(r) = &self.releaser else { return Ok(false) };
        let store = self.store.clone();
        let (app, sha) = (rec.incoming.app.clone(), rec.incoming.sha.clone());
        let Some(merged) = tokio::task::spawn_blocking(move || store.get(&app, &sha)).await?? else {
            return Ok(false);
        };
        let done = r
            .on_recorded(&[(rec.incoming, RecordOutcome::Updated(merged))])
            .await;
        Ok(!done.is_empty())
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
        // Each outcome with the facts this event brought (what the auto rules look at).
        let recorded =
            tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<(Artifact, RecordOutcome)>> {
                let outcomes = store.record_batch(&wanted.artifacts)?;
                let mut recorded: Vec<(Artifact, RecordOutcome)> =
                    wanted.artifacts.into_iter().zip(outcomes).collect();
                // A tag names a build that already exists; it never makes one.
                for (app, sha, tag) in &wanted.tags {
                    if let Some(mut a) = store.get(app, sha)? {
                        a.tags.push(tag.clone());
                        let outcome = store.record(&a)?;
                        let mut incoming =
                            Artifact::new(a.app.clone(), a.repo.clone(), a.sha.clone(), a.source.clone());
                        incoming.tags = vec![tag.clone()];
                        recorded.push((incoming, outcome));
                    }
                }
                Ok(recorded)
            })
            .await??;
        let outcomes: Vec<&RecordOutcome> = recorded.iter().map(|(_, o)| o).collect();
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
        let any = !outcomes.is_empty();
        if let Some(r) = &self.releaser {
            r.on_recorded(&recorded).await;
        }
        Ok(any)
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
