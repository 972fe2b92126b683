//! The steps a release is made of, one module per kind of work:
//!
//! - [`plan`]: which releases go out now (auto plans of recorded artifacts, holds, `after`
//!   gates, the release a rollback returns to);
//! - [`render`]: the files and `release.json` of `<env>/<app>/` for an artifact;
//! - [`write`]: the commit on the gitops branch or on the pull request branch;
//! - [`pull`]: the release pull request: opened or updated, approvals counted, merged;
//! - [`record`]: the ledger: the env ref, holds, and what a live release settles;
//! - [`notify`]: statuses, deployments, Slack and replies, through [`crate::notify`].
//!
//! [`Releaser::deliver`] strings them together for one plan; the public methods of
//! [`Releaser`] start it, or a step of it, from the event at hand.

mod changelog;
mod notify;
mod plan;
mod pull;
mod record;
mod render;
mod write;

use std::sync::Arc;

use super::plan::Plan;
use super::{ReleaseError, ReleaseOutcome, Releaser, Result};
use crate::artifact::{Artifact, ArtifactId};
use crate::domain::{AppName, EnvName};
use crate::forge::Forge;
use crate::gitops::{Target, WriteOutcome};

use crate::policy::{EnvPolicy, MergeMode, Policy};
use record::Done;
use render::Rendered;

pub(super) use plan::rollback_plan;
pub(super) use pull::merge_commit;
pub(super) use write::{preview_spec, target};

/// The release loop's turn: this process's mutex and, with replicas, their lock (given back
/// first: fields drop in order).
pub(super) struct Serial<'a> {
    _across: Option<crate::queue::ReplicaLockGuard>,
    _local: tokio::sync::MutexGuard<'a, ()>,
}

impl Releaser {
    /// Takes the loop's lock (and, with replicas, theirs, then brings the ledger up to date
    /// with what they wrote), then makes sure git has a current token for every https gitops
    /// remote (each repository's own: an App may be installed on each separately). A failure
    /// to get one is logged: the previous token may still work.
    pub(super) async fn begin(&self) -> Serial<'_> {
        let local = self.serial.lock().await;
        let across = match &self.across_replicas {
            None => None,
            Some(lock) => Some(self.across(lock).await),
        };
        let guard = Serial {
            _across: across,
            _local: local,
        };
        if self.git_token_from_forge
            && let Some(forge) = &self.forge
        {
            for target in self.gitops.all().iter().filter(|t| t.cache.is_http()) {
                match forge.git_token(&target.repo).await {
                    Ok(Some(token)) => target.cache.set_token(Some(&token)),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(repo = %target.repo, error = %e, "cannot get a token for git from GitHub")
                    }
                }
            }
        }
        guard
    }

    /// Waits for the replicas' lock, however long the database is away: an operation run
    /// beside another replica's could open a second pull request for one (env, app). Then
    /// reads what the replica before left: the ledger and the desired releases.
    async fn across(&self, lock: &crate::queue::ReplicaLock) -> crate::queue::ReplicaLockGuard {
        let mut warned = false;
        let guard = loop {
            match lock.acquire().await {
                Ok(guard) => break guard,
                Err(e) => {
                    if !warned {
                        tracing::warn!(lock = lock.name(), error = %e, "cannot take the replicas' release lock; waiting");
                        warned = true;
                    }
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        };
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.sync()).await {
            Ok(report) => {
                if let Some(e) = report.error {
                    tracing::warn!(error = %e, "cannot bring the ledger up to date from its remote; working on the local copy");
                }
            }
            Err(e) => tracing::warn!(error = %e, "ledger sync task failed"),
        }
        if let Err(e) = self.desired.refresh().await {
            tracing::warn!(error = %e, "cannot read the desired releases the other replicas left; working on this replica's copy");
        }
        guard
    }

    /// Render, write, then finish according to the env's merge mode. `artifact` is the
    /// plan's, when the caller has already read it.
    pub(super) async fn release_locked(
        &self,
        plan: &Plan,
        artifact: Option<&Artifact>,
    ) -> Result<ReleaseOutcome> {
        self.rules(&plan.app, &plan.env)?;
        let artifact = match artifact {
            Some(a) => a.clone(),
            None => self.artifact(&plan.artifact).await?,
        };
        let rendered = self.render(plan, &artifact)?;
        self.deliver(plan, &artifact, rendered, None).await
    }

    /// Writes `rendered` for `plan` and finishes per the env's merge mode: a direct commit is
    /// live at once, a pull request branch goes through the release pull request.
    /// `rollback_from` is the artifact a rollback replaces.
    pub(super) async fn deliver(
        &self,
        plan: &Plan,
        artifact: &Artifact,
        rendered: Rendered,
        rollback_from: Option<ArtifactId>,
    ) -> Result<ReleaseOutcome> {
        let (_, rules) = &self.rules(&plan.app, &plan.env)?;
        let target = write::target(rules.merge);
        let open = match target {
            Target::Branch => pull::OpenPull::default(),
            Target::PrBranch => self.open_pull(plan, rules, &artifact.id).await?,
        };
        let spec = write::release_spec(
            plan,
            artifact,
            rendered,
            target,
            open.superseded.as_ref(),
            rollback_from.as_ref(),
        );
        // What already runs is not started again: its final status stays as it is.
        let live = self.runs(&plan.env, &plan.app, &artifact.id).await?;
        let deployment = match live {
            true => None,
            false => self.deployment_started(plan, artifact, rules).await,
        };
        let written = self.write_commit(spec).await?;
        if matches!(written, WriteOutcome::Committed { .. }) {
            crate::crash::at(crate::crash::Point::Pushed);
        }
        match (written, target) {
            (WriteOutcome::Unchanged { tip }, _) => {
                self.already_released(plan, artifact, live, tip, rollback_from.as_ref())
                    .await
            }
            (WriteOutcome::Committed { commit, .. }, Target::Branch) => {
                let done = Done {
                    pull: None,
                    deployment,
                    reply: plan.reply.as_ref(),
                    rollback_from: rollback_from.as_ref(),
                };
                self.released(&plan.env, artifact, &plan.trigger, &commit, done)
                    .await?;
                Ok(ReleaseOutcome::Released { commit, pull: None })
            }
            // (The writer answers `Pending` only for a pull-request branch.)
            (WriteOutcome::Committed { commit, .. } | WriteOutcome::Pending { commit, .. }, _) => {
                if let Some(old) = &open.superseded {
                    self.announce_superseded(plan, old, &artifact.id).await;
                }
                self.propose(plan, rules, artifact, open, commit, deployment)
                    .await
            }
        }
    }

    /// The policy of `app` and its rules for `env`; an unknown app or env is the caller's error.
    pub(super) fn rules(&self, app: &AppName, env: &EnvName) -> Result<(Policy, EnvPolicy)> {
        let policies = self.policies();
        let policy = policies
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
        Ok((policy.clone(), rules.clone()))
    }

    /// The forge, which every merge mode but `direct` needs.
    pub(super) fn forge_for(&self, env: &EnvName, mode: MergeMode) -> Result<&Arc<dyn Forge>> {
        self.forge.as_ref().ok_or_else(|| ReleaseError::NoForge {
            env: env.clone(),
            mode,
        })
    }
}

pub(in crate::release) fn log_outcome(plan: &Plan, result: &Result<ReleaseOutcome>) {
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

/// Runs blocking git work off the async threads.
pub(super) async fn blocking<T, E>(
    f: impl FnOnce() -> std::result::Result<T, E> + Send + 'static,
) -> Result<T>
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
