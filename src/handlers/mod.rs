//! One handler per kind of [`Work`]: free functions over one complete [`Ctx`].
//!
//! Handlers record facts and ask the release loop to act; they never parse GitHub payloads
//! (the edge did) and never build text people read (templates do). Every handler is
//! idempotent: an entry whose effects were durable but whose done marker was not is replayed
//! after a restart.

mod api_artifact;
mod api_release;
mod ci_signal;
mod comment;
pub mod dashboard;
#[cfg(test)]
mod edit_tests;
#[cfg(test)]
mod freeze_tests;
mod installation;
#[cfg(test)]
mod monorepo_tests;
mod policies;
mod pull_request;
mod report;
mod review;
mod rollback;
mod tag;
#[cfg(test)]
mod testbed;
pub mod timer;

use std::sync::Arc;

use crate::artifact::{Artifact, ArtifactStore, RecordOutcome};
use crate::forge::Forge;
use crate::metrics::Metrics;
use crate::policy::LivePolicies;
use crate::release::{People, Releaser};
use crate::work::Work;

pub use comment::PullHeads;

/// Everything a handler may use. A part that is switched off is a value that does nothing
/// ([`crate::forge::Unconfigured`], [`Releases::Off`]), never a missing one.
pub struct Ctx {
    pub store: Arc<ArtifactStore>,
    pub policies: Arc<LivePolicies>,
    pub metrics: Arc<Metrics>,
    pub forge: Arc<dyn Forge>,
    pub releases: Releases,
    /// Who may do what, asked of GitHub with a short cache.
    pub people: People,
    /// The heads pull requests had, and when (see [`PullHeads`]).
    pub heads: PullHeads,
    /// The login auger acts as, asked once.
    pub own_login: tokio::sync::OnceCell<String>,
    /// Where pushed policies are read from; `None` when nothing reloads them.
    pub policy_source: Option<Arc<crate::reload::PolicySource>>,
    /// With replicas (the PostgreSQL queue): the lock they take turns writing the ledger with.
    pub ledger_lock: Option<crate::queue::ReplicaLock>,
}

impl Ctx {
    pub fn new(
        store: Arc<ArtifactStore>,
        policies: Arc<LivePolicies>,
        metrics: Arc<Metrics>,
        forge: Arc<dyn Forge>,
        releases: Releases,
    ) -> Self {
        Ctx {
            people: People::new(forge.clone()),
            store,
            policies,
            metrics,
            forge,
            releases,
            heads: PullHeads::default(),
            own_login: tokio::sync::OnceCell::new(),
            policy_source: None,
            ledger_lock: None,
        }
    }

    /// Serializes this process's ledger writes with the other replicas' (design §18).
    pub fn with_ledger_lock(mut self, lock: crate::queue::ReplicaLock) -> Self {
        self.ledger_lock = Some(lock);
        self
    }

    /// With replicas: waits for their ledger lock and brings the ledger up to date under it,
    /// so a write decides from what the others wrote (a record they made is `Unchanged` here).
    /// Alone, nothing to wait for. An unreachable lock or remote is logged and the write goes
    /// on: the ledger's sync folds concurrent writes together, and every step after it is
    /// idempotent.
    pub async fn ledger_turn(&self) -> Option<crate::queue::ReplicaLockGuard> {
        ledger_turn(self.ledger_lock.as_ref(), &self.store).await
    }

    /// Reload pushed policies from `source` (`[policies] repo`).
    pub fn with_policy_source(mut self, source: Arc<crate::reload::PolicySource>) -> Self {
        self.policy_source = Some(source);
        self
    }
}

/// [`Ctx::ledger_turn`] for writers outside the worker (the API's artifact route).
pub async fn ledger_turn(
    lock: Option<&crate::queue::ReplicaLock>,
    store: &Arc<ArtifactStore>,
) -> Option<crate::queue::ReplicaLockGuard> {
    let lock = lock?;
    let guard = match lock.acquire().await {
        Ok(guard) => Some(guard),
        Err(e) => {
            tracing::warn!(error = %e, "cannot take the replicas' ledger lock; writing without it");
            None
        }
    };
    let store = store.clone();
    if let Ok(report) = tokio::task::spawn_blocking(move || store.sync()).await
        && let Some(e) = report.error
    {
        tracing::warn!(error = %e, "cannot bring the ledger up to date from its remote");
    }
    guard
}

/// The release loop, or its absence without a `[gitops]` section (artifacts are still
/// recorded; nothing is released).
#[derive(Clone)]
pub enum Releases {
    Off,
    On(Arc<Releaser>),
}

impl Releases {
    /// The release loop, or why there is none (for work that cannot be done without it).
    pub fn require(&self, what: impl std::fmt::Display) -> anyhow::Result<&Releaser> {
        match self {
            Releases::On(r) => Ok(r),
            Releases::Off => anyhow::bail!("{what} asked, but no [gitops] is configured"),
        }
    }

    /// The release loop, for work that simply has nothing to do without it.
    pub fn running(&self) -> Option<&Releaser> {
        match self {
            Releases::On(r) => Some(r),
            Releases::Off => None,
        }
    }
}

/// What handling one unit of work came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Something was recorded, released or answered.
    Acted,
    /// Nothing to do (already done, or nothing applies).
    Nothing,
}

impl Handled {
    fn from_bool(acted: bool) -> Self {
        if acted { Handled::Acted } else { Handled::Nothing }
    }
}

/// How a unit of work reached its handler.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Delivery {
    #[default]
    First,
    /// An entry an earlier run took but did not finish: a crash may have come between its
    /// effects (an artifact recorded, its release not yet desired).
    Replayed,
}

/// After the ledger recorded what a signal or tag brought (each incoming fact with the outcome):
/// log and count each outcome, then let the release loop decide what they call for.
async fn recorded(ctx: &Ctx, outcomes: &[(Artifact, RecordOutcome)], delivery: Delivery) -> Handled {
    for (_, outcome) in outcomes {
        let word = match outcome {
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
        ctx.metrics.artifact(word);
    }
    crate::crash::at(crate::crash::Point::Recorded);
    if let Some(r) = ctx.releases.running() {
        r.on_recorded(outcomes, delivery == Delivery::Replayed).await;
    }
    Handled::from_bool(!outcomes.is_empty())
}

/// Routes one unit of work to its handler.
pub async fn handle(ctx: &Ctx, work: Work, delivery: Delivery) -> anyhow::Result<Handled> {
    match work {
        Work::Build(b) => ci_signal::handle(ctx, b, delivery).await,
        Work::Tag(t) => tag::handle(ctx, t, delivery).await,
        Work::PullRequest(p) => pull_request::changed(ctx, p).await,
        Work::BranchDeleted(b) => pull_request::branch_deleted(ctx, b).await,
        Work::ReleaseReview(p) => review::reviewed(ctx, p).await,
        Work::ReleasePullClosed(p) => review::closed(ctx, p).await,
        Work::GitopsChecked => review::checked(ctx).await,
        Work::Comment(c) => comment::handle(ctx, c).await,
        Work::ApiArtifact(a) => api_artifact::handle(ctx, *a).await,
        Work::Release(r) => api_release::handle(ctx, r).await,
        Work::Rollback(r) => rollback::handle(ctx, r).await,
        Work::Dashboard(a) => dashboard::handle(ctx, a).await,
        Work::Installation(i) => Ok(installation::changed(ctx, &i)),
        Work::Report(r) => report::handle(ctx, r).await,
        Work::PoliciesPushed(p) => policies::pushed(ctx, p).await,
    }
}
