//! The release loop (design §2, §5, §7): an artifact meets a policy, and the gitops repo
//! changes.
//!
//! [`Releaser`] ties the parts together, one way: policy ([`plan`]) → render and write
//! ([`crate::gitops`]) → pull request, reviews and merge ([`crate::forge`]) → ledger env ref
//! and notifications ([`crate::notify`]). Callers (the worker, the API, the CLI) hand it
//! plans and GitHub events; it never reaches back into them.
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
pub mod people;
pub mod plan;
mod preview;
pub mod waiting;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use crate::artifact::{Artifact, ArtifactId, ArtifactStore, HoldState, RecordOutcome, StoreError};
use crate::domain::{AppName, BranchName, CommitSha, EnvName, RepoName};
use crate::forge::{DeploymentId, Forge, ForgeError, MergeMethod, MergeOutcome, PullRequest, PullState};
use crate::gitops::{
    Files, GitopsRepo, HistoryFilter, ReleaseInfo, ReleaseSpec, RenderError, RenderExtra, Target, Trailer,
    Trigger, WriteError, WriteOutcome, pr_branch, render,
};
use crate::notify::reply::render_or;
use crate::notify::{FailureKind, Notifier, ReleaseEvent, ReplyRef, ReplyText, render_reply};
use crate::policy::{EnvPolicy, MergeMode, Policy, PolicySet};

pub use approval::{Tally, tally};
pub use clock::{Clock, ManualClock, SystemClock};
pub use people::People;
pub use plan::{Gate, Plan, auto_plans, gate};
pub use waiting::{WaitingError, WaitingPlan, WaitingPlans};

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

/// The trailer that names the artifact a pull request proposed before this one.
pub const TRAILER_SUPERSEDES: &str = "Auger-Supersedes";

const PR_TITLE: &str = include_str!("../../templates/release/pr_title.txt.tera");
const PR_BODY: &str = include_str!("../../templates/release/pr_body.md.tera");
const PREVIEW_PR_TITLE: &str = include_str!("../../templates/release/preview_pr_title.txt.tera");
const PREVIEW_PR_BODY: &str = include_str!("../../templates/release/preview_pr_body.md.tera");

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
    Waiting(#[from] WaitingError),
    #[error("pull request #{pull} was not merged: {reason}")]
    NotMerged { pull: u64, reason: String },
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
    /// Held by an `after` gate; re-checked by [`Releaser::tick`].
    Held { reason: String },
}

/// What a [`Releaser`] works on.
pub struct ReleaserParts {
    pub store: Arc<ArtifactStore>,
    pub policies: Arc<PolicySet>,
    pub gitops: GitopsRepo,
    /// `owner/name` of the gitops repository, for pull requests.
    pub gitops_repo: RepoName,
    pub templates: PathBuf,
    pub forge: Option<Arc<dyn Forge>>,
    pub notifier: Arc<Notifier>,
    pub clock: Arc<dyn Clock>,
    pub waiting: WaitingPlans,
    /// Ask the forge for a token for git before gitops operations (App installation tokens
    /// expire); off when the operator gives git a fixed token.
    pub git_token_from_forge: bool,
}

pub struct Releaser {
    store: Arc<ArtifactStore>,
    policies: Arc<PolicySet>,
    gitops: GitopsRepo,
    gitops_repo: RepoName,
    templates: PathBuf,
    forge: Option<Arc<dyn Forge>>,
    people: Option<People>,
    notifier: Arc<Notifier>,
    clock: Arc<dyn Clock>,
    waiting: WaitingPlans,
    git_token_from_forge: bool,
    serial: tokio::sync::Mutex<()>,
}

/// How a release was completed, for the notifications.
#[derive(Clone, Copy)]
struct Done<'a> {
    pull: Option<u64>,
    /// The GitHub deployment this release already has (made `in_progress` before the write).
    deployment: Option<DeploymentId>,
    reply: Option<&'a ReplyRef>,
    rollback_from: Option<&'a ArtifactId>,
}

/// One pull request auger opened, as read back from GitHub and the gitops repository.
struct ReleasePull {
    pr: PullRequest,
    env: EnvName,
    app: AppName,
    info: ReleaseInfo,
}

impl Releaser {
    pub fn new(parts: ReleaserParts) -> Self {
        Releaser {
            people: parts.forge.clone().map(People::new),
            store: parts.store,
            policies: parts.policies,
            gitops: parts.gitops,
            gitops_repo: parts.gitops_repo,
            templates: parts.templates,
            forge: parts.forge,
            notifier: parts.notifier,
            clock: parts.clock,
            waiting: parts.waiting,
            git_token_from_forge: parts.git_token_from_forge,
            serial: tokio::sync::Mutex::new(()),
        }
    }

    pub fn gitops_repo(&self) -> &RepoName {
        &self.gitops_repo
    }

    /// The notifier, for its counters.
    pub fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    /// Plans held by `after` gates.
    pub fn waiting(&self) -> Vec<WaitingPlan> {
        self.waiting.list()
    }

    /// The automatic releases that recorded artifacts call for. `recorded` pairs the facts
    /// one event brought with what the ledger made of them; unchanged records (redeliveries)
    /// call for nothing.
    pub async fn on_recorded(
        &self,
        recorded: &[(Artifact, RecordOutcome)],
    ) -> Vec<(Plan, Result<ReleaseOutcome>)> {
        let mut plans = Vec::new();
        for (incoming, outcome) in recorded {
            let merged = match outcome {
                RecordOutcome::Created(a) | RecordOutcome::Updated(a) => a,
                RecordOutcome::Unchanged(_) => continue,
            };
            let Some(policy) = self.policies.get(&merged.app) else {
                continue;
            };
            let store = self.store.clone();
            let latest: Vec<(BranchName, bool)> = incoming
                .branches
                .iter()
                .map(|b| {
                    let is_latest = store
                        .latest(&merged.app, b)
                        .ok()
                        .flatten()
                        .is_some_and(|l| l.sha == merged.sha);
                    (b.clone(), is_latest)
                })
                .collect();
            let found = auto_plans(policy, merged, incoming, |b| {
                latest.iter().any(|(x, l)| x == b && *l)
            });
            plans.extend(found);
        }
        for (incoming, outcome) in recorded {
            if !incoming.pull_requests.is_empty() && !matches!(outcome, RecordOutcome::Unchanged(_)) {
                self.previews_for_artifact(outcome.artifact()).await;
            }
        }
        let _serial = self.begin().await;
        let mut out = Vec::new();
        for plan in plans {
            let result = self.gated(plan.clone()).await;
            log_outcome(&plan, &result);
            out.push((plan, result));
        }
        self.drain_waiting().await;
        out
    }

    /// An explicit release (API, CLI, `/deploy`): no `after` gate, the env's merge mode.
    pub async fn release(&self, plan: Plan) -> Result<ReleaseOutcome> {
        let _serial = self.begin().await;
        let result = self.release_locked(&plan, None).await;
        log_outcome(&plan, &result);
        self.drain_waiting().await;
        result
    }

    /// Re-checks every held plan (a timer calls this). Returns the plans that went out.
    pub async fn tick(&self) -> Vec<(Plan, Result<ReleaseOutcome>)> {
        let _serial = self.begin().await;
        self.drain_waiting().await
    }

    /// A review was submitted or dismissed on pull request `number` of the gitops repository.
    pub async fn on_review(&self, number: u64) -> Result<Option<ReleaseOutcome>> {
        let _serial = self.begin().await;
        let Some(rp) = self.read_pull(number).await? else {
            return Ok(None);
        };
        if rp.pr.state != PullState::Open {
            return Ok(None);
        }
        let outcome = self.evaluate(&rp, None).await?;
        self.drain_waiting().await;
        Ok(Some(outcome))
    }

    /// Pull request `number` of the gitops repository was closed: merged means released
    /// (also when a human merged it); closed unmerged means the release was abandoned.
    pub async fn on_pull_closed(&self, number: u64) -> Result<Option<ReleaseOutcome>> {
        let _serial = self.begin().await;
        let Some(rp) = self.read_pull(number).await? else {
            return Ok(None);
        };
        let artifact = self.artifact(&rp.info.artifact).await?;
        let outcome = if rp.pr.merged {
            let commit = rp.pr.merge_commit_sha.clone().unwrap_or(rp.pr.head.sha.clone());
            Some(self.merged(&rp, &artifact, commit, None).await?)
        } else if rp.pr.state == PullState::Closed {
            let live = self.live(&rp.env, &rp.app).await?;
            if live.as_ref().map(|a| &a.id) != Some(&artifact.id) {
                let ev = self.event(&rp.env, &artifact, &rp.info.trigger).await;
                let reason = format!(
                    "release pull request #{} was closed without merging",
                    rp.pr.number
                );
                self.notifier
                    .release_failed(&ev, FailureKind::Error, &reason)
                    .await;
            }
            None
        } else {
            None
        };
        self.drain_waiting().await;
        Ok(outcome)
    }

    /// After a restart: approvals may have arrived while auger was down.
    pub async fn recheck_open_pulls(&self) -> Vec<(u64, Result<ReleaseOutcome>)> {
        let Some(forge) = &self.forge else {
            return Vec::new();
        };
        let _serial = self.begin().await;
        let mut out = Vec::new();
        for (policy, env, _, branch) in pull_request_branches(&self.policies) {
            let pr = match forge.find_open_pull(&self.gitops_repo, &branch).await {
                Ok(Some(pr)) => pr,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(%env, app = %policy.app(), error = %e, "cannot look for an open release pull request");
                    continue;
                }
            };
            let number = pr.number;
            let result = match self.read_pull(number).await {
                Ok(Some(rp)) => self.evaluate(&rp, None).await,
                Ok(None) => continue,
                Err(e) => Err(e),
            };
            out.push((number, result));
        }
        self.drain_waiting().await;
        out
    }

    /// Takes the loop's lock, then makes sure git has a current token for an https gitops
    /// remote. A failure to get one is logged: the previous token may still work.
    async fn begin(&self) -> tokio::sync::MutexGuard<'_, ()> {
        let guard = self.serial.lock().await;
        if self.git_token_from_forge
            && self.gitops.is_http()
            && let Some(forge) = &self.forge
        {
            match forge.git_token(&self.gitops_repo).await {
                Ok(Some(token)) => self.gitops.set_token(Some(&token)),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot get a token for git from GitHub"),
            }
        }
        guard
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
        let store = self.store.clone();
        let (env, app) = (env.clone(), app.clone());
        blocking(move || store.hold_state(&env, &app)).await
    }

    async fn set_hold(
        &self,
        env: &EnvName,
        app: &AppName,
        held: bool,
        by: &str,
        reason: &str,
    ) -> Result<bool> {
        let store = self.store.clone();
        let state = HoldState {
            held,
            by: by.to_owned(),
            reason: reason.to_owned(),
            time: self.clock.now(),
        };
        let (env, app) = (env.clone(), app.clone());
        blocking(move || store.set_hold(&env, &app, &state)).await
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
        let gitops = self.gitops.clone();
        let filter = HistoryFilter::for_pair(env, app);
        let history = blocking(move || {
            gitops.fetch()?;
            gitops.releases(&filter)
        })
        .await?;
        let current = history.first().map(|r| r.artifact.clone());
        let record = match to {
            Some(to) => {
                history
                    .iter()
                    .find(|r| &r.artifact == to)
                    .ok_or_else(|| ReleaseError::NeverReleased {
                        env: env.clone(),
                        artifact: to.clone(),
                    })?
            }
            None => history
                .iter()
                .find(|r| Some(&r.artifact) != current.as_ref())
                .ok_or_else(|| ReleaseError::NothingToRollBack {
                    env: env.clone(),
                    app: app.clone(),
                })?,
        };
        if Some(&record.artifact) == current.as_ref() {
            return Err(ReleaseError::AlreadyLive {
                env: env.clone(),
                artifact: record.artifact.clone(),
            });
        }
        let gitops = self.gitops.clone();
        let (commit, e2, a2) = (record.commit.clone(), env.clone(), app.clone());
        let files = blocking(move || gitops.tree_of(&commit, &e2, &a2))
            .await?
            .ok_or_else(|| {
                ReleaseError::Internal(format!("release commit {} has no {env}/{app}/", record.commit))
            })?;
        let artifact =
            match self.artifact(&record.artifact).await {
                Ok(a) => a,
                Err(ReleaseError::UnknownArtifact(_)) => record
                    .release
                    .as_ref()
                    .and_then(|r| r.record.clone())
                    .ok_or_else(|| ReleaseError::UnknownArtifact(record.artifact.to_string()))?,
                Err(e) => return Err(e),
            };
        let login = by.trim_start_matches('@').to_owned();
        let reason = format!("rollback to {}", artifact.id);
        self.set_hold(env, app, true, by, &reason).await?;
        let trigger = Trigger::Rollback(login);
        let mut info = ReleaseInfo::new(env.clone(), app.clone(), &artifact, trigger.clone());
        info.time = self.clock.now();
        info.rollback_to = Some(artifact.id.clone());
        let plan = Plan {
            env: env.clone(),
            app: app.clone(),
            artifact: artifact.id.clone(),
            trigger,
            reason,
            reply,
        };
        let from = current.filter(|c| *c != artifact.id);
        let outcome = self.write_release(&plan, &artifact, files, info, from).await;
        log_outcome(&plan, &outcome);
        Ok((artifact.id, outcome?))
    }

    // ---- the steps ----

    /// Gate, then release or hold.
    async fn gated(&self, plan: Plan) -> Result<ReleaseOutcome> {
        self.rules(&plan.app, &plan.env)?;
        if let Some(h) = self.hold_state(&plan.env, &plan.app).await?
            && h.held
        {
            return Ok(ReleaseOutcome::Held {
                reason: format!(
                    "{}/{} is on hold ({}, by {}); automatic deploys resume with /resume {}",
                    plan.env, plan.app, h.reason, h.by, plan.env
                ),
            });
        }
        let (artifact, gate) = self.check_gate(&plan).await?;
        match gate {
            Gate::Open => self.release_locked(&plan, Some(&artifact)).await,
            Gate::Closed { reason, .. } => {
                if let Some(old) = self
                    .waiting
                    .hold(plan.clone(), reason.clone(), self.clock.now())?
                {
                    tracing::info!(env = %plan.env, superseded = %old, artifact = %plan.artifact, "a newer artifact supersedes the waiting one");
                }
                Ok(ReleaseOutcome::Held { reason })
            }
        }
    }

    /// The plan's artifact and whether its `after` gate lets it through now.
    async fn check_gate(&self, plan: &Plan) -> Result<(Artifact, Gate)> {
        let (_, rules) = self.rules(&plan.app, &plan.env)?;
        let artifact = self.artifact(&plan.artifact).await?;
        let Some(after) = &rules.after else {
            return Ok((artifact, Gate::Open));
        };
        let store = self.store.clone();
        let (env, app) = (after.env.clone(), plan.app.clone());
        let live = blocking(move || store.released_at(&env, &app)).await?;
        let gate = gate(
            Some(after),
            &artifact.sha,
            live.as_ref().map(|(a, t)| (&a.sha, *t)),
            self.clock.now(),
        );
        Ok((artifact, gate))
    }

    /// Held plans whose gate opened go out; repeated while releases open further gates
    /// (staging → canary → production with no soak), bounded by the number of plans.
    async fn drain_waiting(&self) -> Vec<(Plan, Result<ReleaseOutcome>)> {
        let mut out = Vec::new();
        for _ in 0..=self.waiting.list().len() {
            let mut progressed = false;
            for w in self.waiting.list() {
                let plan = w.plan;
                if matches!(self.hold_state(&plan.env, &plan.app).await, Ok(Some(h)) if h.held) {
                    let _ = self.waiting.release(&plan.env, &plan.app, &plan.artifact);
                    continue;
                }
                match self.check_gate(&plan).await {
                    Ok((artifact, Gate::Open)) => {
                        let result = self.release_locked(&plan, Some(&artifact)).await;
                        log_outcome(&plan, &result);
                        if !matches!(result, Err(ref e) if !e.is_user_error()) {
                            // Released, or can never be (the app or env is gone): done with it.
                            // An internal error keeps it for the next tick.
                            if let Err(e) = self.waiting.release(&plan.env, &plan.app, &plan.artifact) {
                                tracing::error!(error = %e, "cannot update the waiting plans");
                            }
                        }
                        out.push((plan, result));
                        progressed = true;
                    }
                    Ok((_, Gate::Closed { reason, .. })) => {
                        if reason != w.reason {
                            let _ = self.waiting.hold(plan, reason, self.clock.now());
                        }
                    }
                    Err(e) => {
                        tracing::warn!(env = %plan.env, app = %plan.app, error = %e, "cannot check a waiting plan")
                    }
                }
            }
            if !progressed {
                break;
            }
        }
        out
    }

    /// Render, write, then finish according to the env's merge mode.
    async fn release_locked(&self, plan: &Plan, artifact: Option<&Artifact>) -> Result<ReleaseOutcome> {
        let (policy, _) = self.rules(&plan.app, &plan.env)?;
        let artifact = match artifact {
            Some(a) => a.clone(),
            None => self.artifact(&plan.artifact).await?,
        };
        let now = self.clock.now();
        let mut extra = RenderExtra::new(plan.trigger.clone());
        extra.time = now;
        let files = render(&self.templates, policy, &plan.env, &artifact, &extra)?;
        let mut info = ReleaseInfo::new(
            plan.env.clone(),
            plan.app.clone(),
            &artifact,
            plan.trigger.clone(),
        );
        info.time = now;
        self.write_release(plan, &artifact, files, info, None).await
    }

    /// Writes `files` + `info` for `plan` and finishes per the env's merge mode.
    /// `rollback_from` is the artifact a rollback replaces.
    async fn write_release(
        &self,
        plan: &Plan,
        artifact: &Artifact,
        files: Files,
        info: ReleaseInfo,
        rollback_from: Option<ArtifactId>,
    ) -> Result<ReleaseOutcome> {
        let (policy, rules) = self.rules(&plan.app, &plan.env)?;
        let artifact = artifact.clone();
        let target = match rules.merge {
            MergeMode::Direct => Target::Branch,
            MergeMode::Auto | MergeMode::Approval => Target::PrBranch,
        };
        // The pull request open for this (env, app), and the artifact it proposed.
        let (open, superseded) = match target {
            Target::Branch => (None, None),
            Target::PrBranch => {
                let forge = self.forge_for(&plan.env, rules.merge)?;
                let branch = self.pr_branch(&plan.env, &plan.app)?;
                let open = forge.find_open_pull(&self.gitops_repo, &branch).await?;
                let proposed = match &open {
                    Some(pr) => self.proposed(pr, &plan.env, &plan.app).await,
                    None => None,
                };
                (open, proposed.filter(|id| *id != artifact.id))
            }
        };
        let mut extra_trailers = Vec::new();
        if let Some(old) = &superseded
            && let Ok(t) = Trailer::new(TRAILER_SUPERSEDES, &old.to_string())
        {
            extra_trailers.push(t);
        }
        let spec = ReleaseSpec {
            env: plan.env.clone(),
            app: plan.app.clone(),
            files,
            release: info,
            message: match &rollback_from {
                Some(from) => format!(
                    "Roll back {} in {} to {} (from {from})",
                    plan.app,
                    plan.env,
                    version(&artifact)
                ),
                None => format!("Release {} {} to {}", plan.app, version(&artifact), plan.env),
            },
            extra_trailers,
            target,
        };
        let deployment = if rules.merge != MergeMode::Approval {
            // The deployment goes in_progress now; the success (or failure) follows below.
            let mut ev = self.event(&plan.env, &artifact, &plan.trigger).await;
            ev.environment_url = rules.url.clone();
            self.notifier.release_in_progress(&ev).await
        } else {
            None
        };
        let gitops = self.gitops.clone();
        let written = blocking(move || gitops.prepare_release(&spec)).await?;

        match (written, target) {
            (WriteOutcome::Unchanged { .. }, _) => {
                // Already in the gitops branch; make sure the ledger agrees (a crash may have
                // come between the commit and the ref update).
                if self.live(&plan.env, &plan.app).await?.map(|a| a.id) != Some(artifact.id.clone()) {
                    self.set_live(&plan.env, &artifact).await?;
                }
                if let Some(reply) = &plan.reply {
                    let text = render_reply(&ReplyText {
                        state: "already",
                        env: plan.env.as_str(),
                        artifact: &artifact.id.to_string(),
                        ..Default::default()
                    });
                    self.notifier.reply(reply, &text).await;
                }
                Ok(ReleaseOutcome::AlreadyReleased)
            }
            (WriteOutcome::Committed { commit, .. }, Target::Branch) => {
                let done = Done {
                    pull: None,
                    deployment,
                    reply: plan.reply.as_ref(),
                    rollback_from: rollback_from.as_ref(),
                };
                self.released(&plan.env, &artifact, &plan.trigger, &commit, done)
                    .await?;
                Ok(ReleaseOutcome::Released { commit, pull: None })
            }
            // (The writer answers `Pending` only for a pull-request branch.)
            (WriteOutcome::Committed { commit, .. } | WriteOutcome::Pending { commit, .. }, _) => {
                let pr = self
                    .ensure_pull(plan, policy, rules, &artifact, open, superseded.as_ref())
                    .await?;
                let info = ReleaseInfo::new(
                    plan.env.clone(),
                    plan.app.clone(),
                    &artifact,
                    plan.trigger.clone(),
                );
                let rp = ReleasePull {
                    env: plan.env.clone(),
                    app: plan.app.clone(),
                    info,
                    pr: PullRequest {
                        head: crate::forge::PullHead {
                            sha: commit,
                            ..pr.head.clone()
                        },
                        ..pr
                    },
                };
                if rules.merge == MergeMode::Approval {
                    let mut ev = self.event(&plan.env, &artifact, &plan.trigger).await;
                    ev.environment_url = rules.url.clone();
                    if ev.deployment_id.is_none() {
                        self.notifier.release_pending(&ev).await;
                    }
                }
                let outcome = self.evaluate(&rp, deployment).await?;
                if let (
                    ReleaseOutcome::AwaitingApproval {
                        url, tally, required, ..
                    },
                    Some(reply),
                ) = (&outcome, &plan.reply)
                {
                    let detail = format!("{} of {required} approvals", tally.approved_by.len());
                    let text = render_reply(&ReplyText {
                        state: "awaiting",
                        link: url,
                        detail: &detail,
                        ..Default::default()
                    });
                    self.notifier.reply(reply, &text).await;
                }
                Ok(outcome)
            }
        }
    }

    /// Opens the release pull request, or updates the open one (title, body) for a newer
    /// artifact.
    async fn ensure_pull(
        &self,
        plan: &Plan,
        policy: &Policy,
        rules: &EnvPolicy,
        artifact: &Artifact,
        open: Option<PullRequest>,
        superseded: Option<&ArtifactId>,
    ) -> Result<PullRequest> {
        let forge = self.forge_for(&plan.env, rules.merge)?;
        let branch = self.pr_branch(&plan.env, &plan.app)?;
        let (title, mut body) = pr_text(plan, policy, rules, artifact, superseded);
        if let Some(reply) = &plan.reply {
            body.push_str(&reply.marker());
            body.push('\n');
        }
        match open {
            Some(pr) if superseded.is_some() || pr.title != title => Ok(forge
                .update_pull(&self.gitops_repo, pr.number, &title, &body)
                .await?),
            Some(pr) => Ok(pr),
            None => {
                match forge
                    .create_pull(&self.gitops_repo, &branch, self.gitops.branch(), &title, &body)
                    .await
                {
                    Ok(pr) => Ok(pr),
                    // Not repeated (it is not idempotent): GitHub may have opened it anyway.
                    Err(ForgeError::OutcomeUnknown { .. } | ForgeError::Invalid { .. }) => {
                        match forge.find_open_pull(&self.gitops_repo, &branch).await? {
                            Some(pr) => Ok(pr),
                            None => Err(ReleaseError::Internal(format!(
                                "opening the release pull request from {branch} failed and none is open"
                            ))),
                        }
                    }
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    /// Counts approvals on a release pull request and merges it when the rule is met
    /// (`auto` mode: at once).
    async fn evaluate(&self, rp: &ReleasePull, deployment: Option<DeploymentId>) -> Result<ReleaseOutcome> {
        let (policy, rules) = self.rules(&rp.app, &rp.env)?;
        let forge = self.forge_for(&rp.env, rules.merge)?;
        let artifact = self.artifact(&rp.info.artifact).await?;
        let required = rules.required_approvals();
        let t = match rules.merge {
            MergeMode::Approval => {
                let reviews = forge.list_reviews(&self.gitops_repo, rp.pr.number).await?;
                let people = self.people.as_ref().ok_or_else(|| ReleaseError::NoForge {
                    env: rp.env.clone(),
                    mode: rules.merge,
                })?;
                let logins: BTreeSet<String> = reviews
                    .iter()
                    .map(|r| r.user.login.to_ascii_lowercase())
                    .collect();
                let mut approvers = BTreeSet::new();
                for login in logins {
                    if people.admits(&rules.approvers, policy.repo(), &login).await? {
                        approvers.insert(login);
                    }
                }
                tally(&reviews, &rp.pr.head.sha, artifact.author.as_deref(), |l| {
                    approvers.contains(&l.to_ascii_lowercase())
                })
            }
            MergeMode::Auto | MergeMode::Direct => Tally::default(),
        };
        if !t.met(required) {
            tracing::info!(
                pull = rp.pr.number, env = %rp.env, app = %rp.app,
                approvals = t.approved_by.len(), required, blocked_by = ?t.blocked_by, ignored = ?t.ignored,
                "release pull request waits for approval"
            );
            return Ok(ReleaseOutcome::AwaitingApproval {
                pull: rp.pr.number,
                url: rp.pr.html_url.clone(),
                tally: t,
                required,
            });
        }
        let title = format!("Release {} {} to {}", rp.app, version(&artifact), rp.env);
        let merged = forge
            .merge_pull(
                &self.gitops_repo,
                rp.pr.number,
                &rp.pr.head.sha,
                MergeMethod::Merge,
                &title,
            )
            .await;
        let commit = match merged {
            Ok(MergeOutcome::Merged { sha }) => sha,
            Ok(MergeOutcome::HeadMoved) => {
                return Err(ReleaseError::NotMerged {
                    pull: rp.pr.number,
                    reason: "its head moved since the approvals were counted; re-checking on the next event"
                        .into(),
                });
            }
            Ok(MergeOutcome::NotMergeable(reason)) => {
                let ev = self.event(&rp.env, &artifact, &rp.info.trigger).await;
                let why = format!(
                    "release pull request #{} cannot be merged: {reason}",
                    rp.pr.number
                );
                self.notifier.release_failed(&ev, FailureKind::Failed, &why).await;
                return Err(ReleaseError::NotMerged {
                    pull: rp.pr.number,
                    reason,
                });
            }
            Err(ForgeError::OutcomeUnknown { .. }) => {
                // Read back: GitHub may have merged it.
                let pr = forge.get_pull(&self.gitops_repo, rp.pr.number).await?;
                match (pr.merged, pr.merge_commit_sha) {
                    (true, Some(sha)) => sha,
                    _ => {
                        return Err(ReleaseError::NotMerged {
                            pull: rp.pr.number,
                            reason: "GitHub did not confirm the merge".into(),
                        });
                    }
                }
            }
            Err(e) => return Err(e.into()),
        };
        self.merged(rp, &artifact, commit, deployment).await
    }

    /// A release pull request was merged (by auger or by a person) as `commit`: the release
    /// is live.
    async fn merged(
        &self,
        rp: &ReleasePull,
        artifact: &Artifact,
        commit: CommitSha,
        deployment: Option<DeploymentId>,
    ) -> Result<ReleaseOutcome> {
        let reply = ReplyRef::find_in(&rp.pr.body);
        let done = Done {
            pull: Some(rp.pr.number),
            deployment,
            reply: reply.as_ref(),
            rollback_from: None,
        };
        self.released(&rp.env, artifact, &rp.info.trigger, &commit, done)
            .await?;
        Ok(ReleaseOutcome::Released {
            commit,
            pull: Some(rp.pr.number),
        })
    }

    /// The release is live: statuses and deployment first, then the ledger's env ref (a
    /// replay after a crash in between repeats the notifications, never loses the ref). A
    /// second report of the same release (the merge webhook after auger merged) is a no-op.
    async fn released(
        &self,
        env: &EnvName,
        artifact: &Artifact,
        trigger: &Trigger,
        commit: &CommitSha,
        done: Done<'_>,
    ) -> Result<()> {
        let pull = done.pull;
        if pull.is_some() && self.live(env, &artifact.app).await?.map(|a| a.id) == Some(artifact.id.clone()) {
            return Ok(());
        }
        let mut ev = match done.deployment {
            Some(id) => {
                let mut ev = ReleaseEvent::for_artifact(artifact, env.clone(), trigger.to_string());
                ev.deployment_id = Some(id);
                ev
            }
            None => self.event(env, artifact, trigger).await,
        };
        ev.gitops_sha = Some(commit.clone());
        ev.gitops_commit_url = Some(format!("https://github.com/{}/commit/{commit}", self.gitops_repo));
        ev.environment_url = self
            .policies
            .get(&artifact.app)
            .and_then(|p| p.env(env))
            .and_then(|r| r.url.clone());
        if matches!(trigger, Trigger::Rollback(_)) {
            self.notifier.rollback(&ev, done.rollback_from).await;
        } else {
            self.notifier.release_succeeded(&ev).await;
        }
        if let Some(reply) = done.reply {
            let link = pull
                .map(|n| format!("pull request #{n} merged"))
                .unwrap_or_else(|| format!("gitops commit {}", commit.short(12)));
            let text = render_reply(&ReplyText {
                state: "released",
                env: env.as_str(),
                artifact: &artifact.id.to_string(),
                link: &link,
                ..Default::default()
            });
            self.notifier.reply(reply, &text).await;
        }
        self.set_live(env, artifact).await?;
        self.waiting.release(env, &artifact.app, &artifact.id)?;
        tracing::info!(%env, artifact = %artifact.id, %commit, pull, "released");
        Ok(())
    }

    // ---- reading ----

    fn rules(&self, app: &AppName, env: &EnvName) -> Result<(&Policy, &EnvPolicy)> {
        let policy = self
            .policies
            .get(app)
            .ok_or_else(|| ReleaseError::UnknownApp(app.clone()))?;
        let rules = policy.env(env).ok_or_else(|| ReleaseError::UnknownEnv {
            app: app.clone(),
            env: env.clone(),
            known: policy
                .envs()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
        Ok((policy, rules))
    }

    fn forge_for(&self, env: &EnvName, mode: MergeMode) -> Result<&Arc<dyn Forge>> {
        self.forge.as_ref().ok_or_else(|| ReleaseError::NoForge {
            env: env.clone(),
            mode,
        })
    }

    fn pr_branch(&self, env: &EnvName, app: &AppName) -> Result<BranchName> {
        BranchName::new(pr_branch(env, app)).map_err(|e| ReleaseError::Internal(e.to_string()))
    }

    async fn artifact(&self, id: &ArtifactId) -> Result<Artifact> {
        let store = self.store.clone();
        let id2 = id.clone();
        blocking(move || store.get_by_id(&id2))
            .await?
            .ok_or_else(|| ReleaseError::UnknownArtifact(id.to_string()))
    }

    async fn live(&self, env: &EnvName, app: &AppName) -> Result<Option<Artifact>> {
        let store = self.store.clone();
        let (env, app) = (env.clone(), app.clone());
        blocking(move || store.released(&env, &app)).await
    }

    async fn set_live(&self, env: &EnvName, artifact: &Artifact) -> Result<()> {
        let store = self.store.clone();
        let (env, artifact, now) = (env.clone(), artifact.clone(), self.clock.now());
        blocking(move || store.set_released_at(&env, &artifact.app, &artifact, now)).await
    }

    /// The artifact a release pull request's head proposes (its `release.json`).
    async fn proposed(&self, pr: &PullRequest, env: &EnvName, app: &AppName) -> Option<ArtifactId> {
        match self.release_at_head(pr, env, app).await {
            Ok(info) => info.map(|i| i.artifact),
            Err(e) => {
                tracing::warn!(pull = pr.number, error = %e, "cannot read what the open release pull request proposes");
                None
            }
        }
    }

    /// A gitops pull request re-read from GitHub; `None` when it is not one of auger's
    /// release pull requests (another branch, a preview, an app without policy).
    async fn read_pull(&self, number: u64) -> Result<Option<ReleasePull>> {
        let Some(forge) = &self.forge else { return Ok(None) };
        let pr = forge.get_pull(&self.gitops_repo, number).await?;
        let Some((env, app)) = parse_pr_branch(pr.head.branch.as_str()) else {
            return Ok(None);
        };
        if pr.is_from_fork(&self.gitops_repo) || self.rules(&app, &env).is_err() {
            return Ok(None);
        }
        let Some(info) = self.release_at_head(&pr, &env, &app).await? else {
            tracing::warn!(
                pull = number,
                "release pull request without a release.json at its head; ignored"
            );
            return Ok(None);
        };
        Ok(Some(ReleasePull { pr, env, app, info }))
    }

    /// The `release.json` of `<env>/<app>/` at a pull request's head, after a fetch (the head
    /// may have been pushed since the last one).
    async fn release_at_head(
        &self,
        pr: &PullRequest,
        env: &EnvName,
        app: &AppName,
    ) -> Result<Option<ReleaseInfo>> {
        let gitops = self.gitops.clone();
        let (sha, env, app) = (pr.head.sha.clone(), env.clone(), app.clone());
        blocking(move || {
            gitops.fetch()?;
            gitops.release_at(&sha, &env, &app)
        })
        .await
    }

    /// A notification event, with the deployment already made for this release if any.
    async fn event(&self, env: &EnvName, artifact: &Artifact, trigger: &Trigger) -> ReleaseEvent {
        let mut ev = ReleaseEvent::for_artifact(artifact, env.clone(), trigger.to_string());
        ev.deployment_id = self.notifier.existing_deployment(&ev).await;
        ev
    }
}

fn log_outcome(plan: &Plan, result: &Result<ReleaseOutcome>) {
    match result {
        Ok(o) => {
            tracing::info!(env = %plan.env, artifact = %plan.artifact, reason = %plan.reason, outcome = ?o, "release plan done")
        }
        Err(e) if e.is_user_error() => {
            tracing::warn!(env = %plan.env, artifact = %plan.artifact, error = %e, "release refused")
        }
        Err(e) => tracing::error!(env = %plan.env, artifact = %plan.artifact, error = %e, "release failed"),
    }
}

/// `auger/<env>/<app>` → (env, app).
pub fn parse_pr_branch(branch: &str) -> Option<(EnvName, AppName)> {
    let (env, app) = branch.strip_prefix("auger/")?.split_once('/')?;
    Some((EnvName::new(env).ok()?, AppName::new(app).ok()?))
}

/// The tag if there is one, else the short sha: what people call a version.
fn version(a: &Artifact) -> String {
    a.tags
        .last()
        .map(|t| t.to_string())
        .unwrap_or_else(|| a.sha.short(12).to_owned())
}

/// Title and body of a release pull request, from `templates/release/`.
fn pr_text(
    plan: &Plan,
    policy: &Policy,
    rules: &EnvPolicy,
    artifact: &Artifact,
    superseded: Option<&ArtifactId>,
) -> (String, String) {
    let source_url = artifact
        .url
        .clone()
        .unwrap_or_else(|| format!("https://github.com/{}/commit/{}", artifact.repo, artifact.sha));
    let mut ctx = tera::Context::new();
    ctx.insert("app", policy.app().as_str());
    ctx.insert("env", plan.env.as_str());
    ctx.insert("artifact", artifact);
    ctx.insert("short_sha", artifact.sha.short(12));
    ctx.insert("version", &version(artifact));
    ctx.insert("source_url", &source_url);
    ctx.insert(
        "headline",
        artifact
            .message
            .as_deref()
            .and_then(|m| m.lines().next())
            .unwrap_or(""),
    );
    ctx.insert("trigger", &plan.trigger.to_string());
    ctx.insert("reason", &plan.reason);
    ctx.insert("merge", rules.merge.as_str());
    ctx.insert("approvals", &rules.required_approvals());
    let approvers: Vec<String> = rules.approvers.iter().map(|p| p.to_string()).collect();
    ctx.insert("approvers", &approvers);
    ctx.insert("superseded", &superseded.map(|s| s.to_string()));
    let render = |name: &str, text: &str| {
        render_or(name, text, &ctx, || {
            format!("Release {} {} to {}", plan.app, artifact.id, plan.env)
        })
    };
    (
        render("pr_title.txt.tera", PR_TITLE).trim().to_owned(),
        render("pr_body.md.tera", PR_BODY),
    )
}

/// Title and body of a preview's pull request on the gitops repository, from
/// `templates/release/`.
fn preview_pr_text(policy: &Policy, pr: &PullRequest, artifact: &Artifact) -> (String, String) {
    let mut ctx = tera::Context::new();
    ctx.insert("app", policy.app().as_str());
    ctx.insert("repo", policy.repo().as_str());
    ctx.insert("pull", &pr.number);
    ctx.insert("pull_url", &pr.html_url);
    ctx.insert("artifact", &artifact.id.to_string());
    let render = |name: &str, text: &str| {
        render_or(name, text, &ctx, || {
            format!("Preview {} of #{}", policy.app(), pr.number)
        })
    };
    (
        render("preview_pr_title.txt.tera", PREVIEW_PR_TITLE)
            .trim()
            .to_owned(),
        render("preview_pr_body.md.tera", PREVIEW_PR_BODY),
    )
}

/// Runs blocking git work off the async threads.
async fn blocking<T, E>(f: impl FnOnce() -> std::result::Result<T, E> + Send + 'static) -> Result<T>
where
    T: Send + 'static,
    E: Send + 'static,
    ReleaseError: From<E>,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(ReleaseError::from),
        Err(e) => Err(ReleaseError::Internal(format!("blocking task failed: {e}"))),
    }
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

    const POLICY: &str = r#"
app = "web"
repo = "acme/web"
template = "t"
[env.staging]
merge = "auto"
[env.production]
merge = "approval"
approvals = 2
approvers = ["team:acme/sre", "user:bob"]
"#;

    fn artifact() -> Artifact {
        Artifact::new(
            AppName::new("web").unwrap(),
            RepoName::new("acme/web").unwrap(),
            CommitSha::new("a".repeat(40)).unwrap(),
            crate::artifact::Source {
                kind: "status".into(),
                name: "ci".into(),
                target_url: None,
            },
        )
    }

    #[test]
    fn the_release_pull_request_states_its_merge_rule() {
        let policy = Policy::from_toml("web.toml", POLICY).unwrap();
        let a = artifact();
        let body = |env: &str| {
            let env = EnvName::new(env).unwrap();
            let plan = Plan {
                env: env.clone(),
                app: policy.app().clone(),
                artifact: a.id.clone(),
                trigger: Trigger::Policy,
                reason: "branch main".into(),
                reply: None,
            };
            let (title, body) = pr_text(&plan, &policy, policy.env(&env).unwrap(), &a, None);
            assert_eq!(title, format!("Release web aaaaaaaaaaaa to {env}"));
            body
        };
        assert!(
            body("production").contains(
                "| Merge rule | 2 approving review(s) from team:acme/sre, user:bob on the current head; the source commit's author does not count |"
            ),
            "{}",
            body("production")
        );
        assert!(body("staging").contains("| Merge rule | merged by auger at once |"));
    }

    #[test]
    fn a_preview_pull_request_names_the_app_and_the_source_pull_request() {
        let policy = Policy::from_toml("web.toml", POLICY).unwrap();
        let a = artifact();
        let pr = PullRequest {
            number: 7,
            title: "feat".into(),
            body: String::new(),
            state: crate::forge::PullState::Open,
            draft: false,
            merged: false,
            merge_commit_sha: None,
            head: crate::forge::PullHead {
                branch: BranchName::new("feat").unwrap(),
                sha: a.sha.clone(),
                repo: Some(RepoName::new("acme/web").unwrap()),
            },
            base_branch: BranchName::new("main").unwrap(),
            author: crate::forge::Actor {
                login: "alice".into(),
                id: 1,
                is_bot: false,
            },
            html_url: "https://github.com/acme/web/pull/7".into(),
        };
        let (title, body) = preview_pr_text(&policy, &pr, &a);
        assert_eq!(title, "Preview web of acme/web#7");
        assert_eq!(
            body,
            "Preview of `web@aaaaaaaaaaaa` for https://github.com/acme/web/pull/7.\n"
        );
    }
}
