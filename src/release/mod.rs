//! The release loop (design §2, §5, §7): an artifact meets a policy, and the gitops repo
//! changes.
//!
//! [`Releaser`] ties the parts together, one way: policy ([`plan`]) → render and write
//! ([`crate::gitops`]) → pull request, reviews and merge ([`crate::forge`]) → ledger env ref
//! and notifications ([`crate::notify`]). Callers (the worker, the API, the CLI) hand it
//! plans and GitHub events; it never reaches back into them. Its public methods start from
//! the event at hand and run the steps in `steps/` (plan, render, write, pull, record,
//! notify); everything a person reads comes from `templates/` through `text`.
//!
//! Modes per environment: `direct` commits to the gitops branch; `auto` force-pushes
//! `auger/<env>/<app>`, opens (or updates) the one pull request for it and merges it at once;
//! `approval` does the same but merges only when [`approval::tally`] says the policy's rule
//! is met, re-checked on every review, on every release and after restarts. Merges pin the
//! head sha that was counted, so a head that moved is never merged.
//!
//! Every operation is idempotent (a replayed delivery finds the work done: the writer reports
//! "unchanged" or "pending", the ledger ref already points at the artifact) and all of them
//! run one at a time through one async lock: the loop is serial, like the worker that feeds it,
//! so two events can never open two pull requests for one (env, app).

pub mod approval;
pub mod clock;
pub mod desired;
mod freeze;
pub mod people;
pub mod plan;
mod preview;
mod reconcile;
mod reject;
mod steps;
mod text;
mod verify;

use std::path::PathBuf;
use std::sync::Arc;

use crate::artifact::{Artifact, ArtifactId, ArtifactStore, HoldState, RecordOutcome, StoreError};
use crate::domain::{AppName, BranchName, CommitSha, EnvName, RepoName};
use crate::forge::{Forge, ForgeError, PullState};
use crate::gitops::{GitopsTarget, GitopsTargets, RenderError, WriteError, pr_branch};
use crate::notify::{Notifier, ReplyRef};
use crate::policy::{EnvPolicy, LivePolicies, MergeMode, Policy, PolicySet};

use steps::{merge_commit, rollback_plan};

pub use approval::{Tally, tally};
pub use clock::{Clock, ManualClock, SystemClock};
pub use desired::{Desired, DesiredError, DesiredReleases, Want};
pub use freeze::{Frozen, FrozenView, frozen_at};
pub use people::People;
pub use plan::{Gate, Plan, auto_plans, gate};
pub use text::day_time;

/// Every environment of every policy whose releases go through a pull request, with the
/// branch auger opens that pull request from (`auger/<env>/<app>`).
pub fn pull_request_branches(
    policies: &PolicySet,
) -> impl Iterator<Item = (&Policy, &EnvName, &EnvPolicy, BranchName)> {
    policies.iter().flat_map(|policy| {
        policy
            .envs()
            .filter(|(_, rules)| rules.merge != MergeMode::Direct)
            .filter_map(move |(env, rules)| {
                let branch = BranchName::new(pr_branch(env, policy.app())).ok()?;
                Some((policy, env, rules, branch))
            })
    })
}

/// How a release waiting for branch protection's required checks says so.
pub const WAITING_FOR_CHECKS: &str = "waiting for required checks";

/// The trailer that names the artifact a pull request proposed before this one.
pub const TRAILER_SUPERSEDES: &str = "Auger-Supersedes";

/// Why a release did not happen. [`ReleaseError::is_user_error`] separates what the person
/// who asked should be told from what an operator must look at.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("no policy for app {0}")]
    UnknownApp(AppName),
    #[error("app {app} has no environment {env} (known: {known})")]
    UnknownEnv {
        app: AppName,
        env: EnvName,
        known: String,
    },
    #[error("no artifact {0} in the ledger")]
    UnknownArtifact(String),
    #[error("cannot render the release: {0}")]
    Render(#[from] RenderError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Forge(#[from] ForgeError),
    #[error("environment {env} merges by pull request ({mode}), which needs GitHub credentials")]
    NoForge { env: EnvName, mode: MergeMode },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Desired(#[from] DesiredError),
    /// `retry`: the same merge may work on a later try (the head moved, GitHub did not say).
    #[error("pull request #{pull} was not merged: {reason}")]
    NotMerged { pull: u64, reason: String, retry: bool },
    #[error("{env} has no earlier release of {app} to roll back to")]
    NothingToRollBack { env: EnvName, app: AppName },
    #[error("{artifact} was never released to {env}")]
    NeverReleased { env: EnvName, artifact: ArtifactId },
    #[error("{artifact} is what {env} runs now: nothing to roll back")]
    AlreadyLive { env: EnvName, artifact: ArtifactId },
    #[error("internal error: {0}")]
    Internal(String),
}

impl ReleaseError {
    /// Errors in the request itself (say so to the requester), not in auger or GitHub.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            ReleaseError::UnknownApp(_)
                | ReleaseError::UnknownEnv { .. }
                | ReleaseError::UnknownArtifact(_)
                | ReleaseError::NothingToRollBack { .. }
                | ReleaseError::NeverReleased { .. }
                | ReleaseError::AlreadyLive { .. }
        )
    }
}

pub type Result<T, E = ReleaseError> = std::result::Result<T, E>;

/// What a release did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseOutcome {
    /// Live: committed to the gitops branch directly or through the merged pull request.
    Released { commit: CommitSha, pull: Option<u64> },
    /// `<env>/<app>/` already holds this artifact's output: nothing was committed.
    AlreadyReleased,
    /// The pull request is open and waits for approvals.
    AwaitingApproval {
        pull: u64,
        url: String,
        tally: Tally,
        required: u32,
    },
    /// Held by an `after` gate (re-checked by [`Releaser::tick`]) or by a hold (dropped).
    Held { reason: String },
    /// Not done yet for a reason that may pass (a GitHub fault, a busy gitops branch): it
    /// stays desired and is tried again after a backoff.
    Retrying { reason: String },
}

/// What a [`Releaser`] works on.
pub struct ReleaserParts {
    pub store: Arc<ArtifactStore>,
    pub policies: Arc<LivePolicies>,
    /// Every gitops repository and branch the policies write to ([`GitopsTargets::for_env`]).
    pub gitops: Arc<GitopsTargets>,
    pub templates: PathBuf,
    pub forge: Option<Arc<dyn Forge>>,
    pub notifier: Arc<Notifier>,
    pub clock: Arc<dyn Clock>,
    pub desired: DesiredReleases,
    /// Ask the forge for a token for git before gitops operations (App installation tokens
    /// expire); off when the operator gives git a fixed token.
    pub git_token_from_forge: bool,
    /// The reconcile's period: the longest a release held up by a fault waits between tries.
    pub reconcile_every: std::time::Duration,
}

pub struct Releaser {
    store: Arc<ArtifactStore>,
    policies: Arc<LivePolicies>,
    gitops: Arc<GitopsTargets>,
    templates: PathBuf,
    forge: Option<Arc<dyn Forge>>,
    people: Option<People>,
    notifier: Arc<Notifier>,
    clock: Arc<dyn Clock>,
    desired: DesiredReleases,
    git_token_from_forge: bool,
    reconcile_every: std::time::Duration,
    /// Release pull requests (repository, number) this process merged and recorded: their
    /// `closed` webhook brings nothing new, so it costs no GitHub call. Bounded; after a
    /// restart it is empty.
    merged_here: std::sync::Mutex<std::collections::VecDeque<(RepoName, u64)>>,
    /// The earliest time an open verification may end by itself (soak or deadline), so the
    /// timer wakes for it; refreshed by every pass.
    verify_due: std::sync::Mutex<verify::Due>,
    /// Poked when a pass may have moved the next retry earlier, so the timer re-reads it.
    rescheduled: tokio::sync::Notify,
    serial: tokio::sync::Mutex<()>,
    /// With replicas (the PostgreSQL queue): the lock they take turns with, held inside
    /// `serial`, so one operation at a time runs across all of them.
    across_replicas: Option<crate::queue::ReplicaLock>,
}

impl Releaser {
    pub fn new(parts: ReleaserParts) -> Self {
        Releaser {
            people: parts.forge.clone().map(People::new),
            store: parts.store,
            policies: parts.policies,
            gitops: parts.gitops,
            templates: parts.templates,
            forge: parts.forge,
            notifier: parts.notifier,
            clock: parts.clock,
            desired: parts.desired,
            git_token_from_forge: parts.git_token_from_forge,
            reconcile_every: parts.reconcile_every,
            merged_here: std::sync::Mutex::new(std::collections::VecDeque::new()),
            verify_due: std::sync::Mutex::default(),
            rescheduled: tokio::sync::Notify::new(),
            serial: tokio::sync::Mutex::new(()),
            across_replicas: None,
        }
    }

    /// Serializes this loop with the other replicas' through `lock` (design §18). Each
    /// operation then starts from the shared ledger as the replica before it left it.
    pub fn with_replica_lock(mut self, lock: crate::queue::ReplicaLock) -> Self {
        self.across_replicas = Some(lock);
        self
    }

    /// The policies in force now; one pass or one release works on the snapshot it took.
    pub fn policies(&self) -> Arc<PolicySet> {
        self.policies.current()
    }

    /// The gitops repositories and branches releases go to.
    pub fn gitops(&self) -> &GitopsTargets {
        &self.gitops
    }

    /// The one lookup of where (env, app) writes and reads its releases.
    pub(crate) fn target(&self, env: &EnvName, app: &AppName) -> &GitopsTarget {
        self.gitops.for_env(env, app)
    }

    /// The repository a release pull request event names; an event an older auger stored
    /// without one is about the default repository.
    fn pull_repo<'a>(&'a self, repo: Option<&'a RepoName>) -> &'a RepoName {
        repo.unwrap_or(&self.gitops.default_target().repo)
    }

    /// The notifier, for its counters.
    pub fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    /// The automatic releases that recorded artifacts call for, desired and then worked on.
    /// `recorded` pairs the facts one event brought with what the ledger made of them;
    /// unchanged records (redeliveries) call for nothing, unless the event is `replayed`
    /// after a crash, which may have come between the record and the desire.
    pub async fn on_recorded(
        &self,
        recorded: &[(Artifact, RecordOutcome)],
        replayed: bool,
    ) -> Vec<(Plan, Result<ReleaseOutcome>)> {
        let plans = self.plans_for(recorded, replayed);
        for (incoming, outcome) in recorded {
            if !incoming.pull_requests.is_empty() && !matches!(outcome, RecordOutcome::Unchanged(_)) {
                self.previews_for_artifact(outcome.artifact()).await;
            }
        }
        let _serial = self.begin().await;
        let mut refused = Vec::new();
        for plan in &plans {
            match self.runs(&plan.env, &plan.app, &plan.artifact).await {
                Ok(true) => continue, // a replay of what went out already
                Ok(false) => {}
                Err(e) => {
                    refused.push((plan.clone(), Err(e)));
                    continue;
                }
            }
            let wanted = Desired::new(plan.clone(), Want::Auto, self.clock.now());
            if let Err(e) = self.desire(wanted).await {
                refused.push((plan.clone(), Err(e)));
            }
        }
        let mut out = self.pass().await;
        out.retain(|(p, _)| plans.contains(p));
        out.extend(refused);
        out
    }

    /// An explicit release (API, CLI, `/deploy`): no `after` gate, the env's merge mode. It
    /// stays desired until it is live, so a fault only delays it ([`ReleaseOutcome::Retrying`]).
    pub async fn release(&self, plan: Plan) -> Result<ReleaseOutcome> {
        let _serial = self.begin().await;
        self.rules(&plan.app, &plan.env)?;
        self.artifact(&plan.artifact).await?;
        let wanted = Desired::new(plan, Want::Asked, self.clock.now());
        self.desire(wanted.clone()).await?;
        let (_, result) = self.advance(wanted).await;
        self.pass().await;
        result
    }

    /// One reconcile pass (a timer calls this): owed statuses, then every desired release
    /// that is due. Returns what was worked on.
    pub async fn tick(&self) -> Vec<(Plan, Result<ReleaseOutcome>)> {
        let _serial = self.begin().await;
        self.pass().await
    }

    /// A check or status settled on the gitops repository: releases that wait for required
    /// checks are due now, then one pass.
    pub async fn on_gitops_checked(&self) -> Vec<(Plan, Result<ReleaseOutcome>)> {
        let _serial = self.begin().await;
        if let Err(e) = self
            .desired
            .due_now(|d| d.reason.starts_with(WAITING_FOR_CHECKS))
            .await
        {
            tracing::warn!(error = %e, "cannot make the releases waiting for checks due");
        }
        self.pass().await
    }

    /// A review was submitted or dismissed on pull request `number` of gitops repository
    /// `repo` (`None`: the default one).
    pub async fn on_review(&self, repo: Option<&RepoName>, number: u64) -> Result<Option<ReleaseOutcome>> {
        let _serial = self.begin().await;
        let Some(rp) = self.read_pull(self.pull_repo(repo), number).await? else {
            return Ok(None);
        };
        if rp.pr.state != PullState::Open {
            return Ok(None);
        }
        let outcome = self.evaluate(&rp, None).await?;
        self.pass().await;
        Ok(Some(outcome))
    }

    /// Pull request `number` of gitops repository `repo` (`None`: the default one) was
    /// closed: merged means released (also when a human merged it); closed unmerged means the
    /// release was abandoned, and is no longer desired.
    pub async fn on_pull_closed(
        &self,
        repo: Option<&RepoName>,
        number: u64,
    ) -> Result<Option<ReleaseOutcome>> {
        let _serial = self.begin().await;
        let repo = self.pull_repo(repo);
        if self.forget_merged_here(repo, number) {
            return Ok(None);
        }
        let Some(rp) = self.read_pull(repo, number).await? else {
            return Ok(None);
        };
        let artifact = self.artifact(&rp.info.artifact).await?;
        let mut outcome = None;
        if rp.pr.merged {
            let commit = merge_commit(&rp.pr);
            outcome = Some(self.merged(&rp, &artifact, commit, None).await?);
        } else if rp.pr.state == PullState::Closed {
            self.abandoned(&rp, &artifact).await?;
            self.desired.done(&rp.env, &rp.app, &artifact.id).await?;
        }
        self.pass().await;
        Ok(outcome)
    }

    /// After a restart: approvals may have arrived while auger was down, and releases that
    /// were desired resume.
    pub async fn recheck_open_pulls(&self) -> Vec<(u64, Result<ReleaseOutcome>)> {
        let Some(forge) = &self.forge else {
            self.tick().await;
            return Vec::new();
        };
        let _serial = self.begin().await;
        let mut out = Vec::new();
        for (policy, env, _, branch) in pull_request_branches(&self.policies()) {
            if let Some(checked) = self.recheck_pull(forge, env, policy.app(), &branch).await {
                out.push(checked);
            }
        }
        self.pass().await;
        out
    }

    // ---- holds and rollbacks ----

    /// Stops automatic deploys of `app` to `env` (`/hold`). `false`: it was already held.
    pub async fn hold(&self, env: &EnvName, app: &AppName, by: &str, reason: &str) -> Result<bool> {
        self.rules(app, env)?;
        self.set_hold(env, app, true, by, reason).await
    }

    /// Restarts automatic deploys (`/resume`). `false`: it was not held.
    pub async fn resume(&self, env: &EnvName, app: &AppName, by: &str) -> Result<bool> {
        self.rules(app, env)?;
        self.set_hold(env, app, false, by, "resumed").await
    }

    pub async fn hold_state(&self, env: &EnvName, app: &AppName) -> Result<Option<HoldState>> {
        self.read_hold(env, app).await
    }

    /// A rollback (design §7): a new release whose `<env>/<app>/` is the tree of the previous
    /// release (or of the newest release of `to`), with `Auger-Rollback-To`, through the env's
    /// merge mode. The (env, app) goes on hold first, so no automatic deploy undoes it.
    pub async fn rollback(
        &self,
        env: &EnvName,
        app: &AppName,
        to: Option<&ArtifactId>,
        by: &str,
        reply: Option<ReplyRef>,
    ) -> Result<(ArtifactId, ReleaseOutcome)> {
        let _serial = self.begin().await;
        self.rules(app, env)?;
        let target = self.rollback_target(env, app, to).await?;
        let (artifact, _) = self.rollback_source(env, app, &target.record).await?;
        let plan = rollback_plan(env, app, &artifact, by, reply);
        self.set_hold(env, app, true, by, &plan.reason).await?;
        let from = target.current.filter(|c| *c != artifact.id);
        let wanted = Desired::new(plan, Want::Rollback { from }, self.clock.now());
        self.desire(wanted.clone()).await?;
        let (_, result) = self.advance(wanted).await;
        self.pass().await;
        Ok((artifact.id, result?))
    }

    // ---- previews ----

    /// A pull request of `repo` was opened, reopened or pushed to: preview its head for every
    /// app of the repository that has `[preview]`, if the head's artifact exists yet (if not,
    /// the artifact's arrival does it).
    pub async fn on_pull_request(&self, repo: &RepoName, number: u64) -> Result<Vec<ReleaseOutcome>> {
        let policies = self.preview_policies(repo);
        // Most pull request events concern no preview: ask GitHub only when one may.
        let (Some(forge), false) = (self.forge.clone(), policies.is_empty()) else {
            return Ok(Vec::new());
        };
        let pr = forge.get_pull(repo, number).await?;
        let mut out = Vec::new();
        for policy in policies {
            let Some(artifact) = self.built(policy.app(), &pr.head.sha).await? else {
                continue;
            };
            if let Some(o) = self.preview_for(&policy, &pr, &artifact).await? {
                out.push(o);
            }
        }
        Ok(out)
    }

    /// Pull request `number` of `repo` closed, or its branch was deleted: remove its previews.
    pub async fn remove_previews(&self, repo: &RepoName, number: u64) -> Result<usize> {
        let Some(forge) = self.forge.clone() else {
            return Ok(0);
        };
        let _serial = self.begin().await;
        let mut removed = 0;
        for policy in self.preview_policies(repo) {
            if self.remove_preview(&forge, &policy, repo, number).await? {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// `auger/<env>/<app>` → (env, app).
pub fn parse_pr_branch(branch: &str) -> Option<(EnvName, AppName)> {
    let (env, app) = branch.strip_prefix("auger/")?.split_once('/')?;
    Some((EnvName::new(env).ok()?, AppName::new(app).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_branches_parse_back_to_env_and_app() {
        let (env, app) = parse_pr_branch("auger/production/web").unwrap();
        assert_eq!((env.as_str(), app.as_str()), ("production", "web"));
        assert!(parse_pr_branch("feature/x").is_none());
        assert!(parse_pr_branch("auger/production").is_none());
        assert!(parse_pr_branch("auger/production/../x").is_none());
        assert!(parse_pr_branch("auger/Prod/web").is_none());
    }
}
