//! Record: the ledger's side of a release. The env ref (`refs/auger/envs/<env>/<app>`) moves
//! once a release is live, holds are written here, and a live release settles the plan that
//! waited for it.

use super::blocking;
use crate::artifact::{Artifact, ArtifactId, HoldState};
use crate::domain::{AppName, CommitSha, EnvName};
use crate::forge::DeploymentId;
use crate::gitops::Trigger;
use crate::notify::ReplyRef;
use crate::release::desired::{Final, Owed};
use crate::release::plan::Plan;
use crate::release::verify::Merged;
use crate::release::{ReleaseError, ReleaseOutcome, Releaser, Result};

/// How a release was completed, for the notifications.
#[derive(Clone, Copy)]
pub(in crate::release) struct Done<'a> {
    pub pull: Option<u64>,
    /// The GitHub deployment this release already has (made `in_progress` before the write).
    pub deployment: Option<DeploymentId>,
    pub reply: Option<&'a ReplyRef>,
    pub rollback_from: Option<&'a ArtifactId>,
}

impl Releaser {
    /// The release is live: statuses and deployment first, then the ledger's env ref (a
    /// replay after a crash in between repeats the notifications, never loses the ref). A
    /// second report of the same release (the merge webhook after auger merged) is a no-op.
    /// A final status GitHub did not take is owed, and sent again by every pass.
    pub(super) async fn released(
        &self,
        env: &EnvName,
        artifact: &Artifact,
        trigger: &Trigger,
        commit: &CommitSha,
        done: Done<'_>,
    ) -> Result<()> {
        let pull = done.pull;
        if pull.is_some() && self.runs(env, &artifact.app, &artifact.id).await? {
            return Ok(());
        }
        if let Some(rule) = self.verify_rule(env, &artifact.app) {
            // Live only once the cluster says so: the release waits for its reports.
            let previous = self.live(env, &artifact.app).await?;
            let merged = Merged {
                env,
                artifact,
                trigger,
                commit,
                pull,
                deployment: done.deployment,
                reply: done.reply,
                rollback_from: done.rollback_from,
                previous,
            };
            self.start_verification(merged, &rule).await?;
        } else if !self.announce_released(env, artifact, trigger, commit, done).await {
            self.desired
                .owe(Owed {
                    env: env.clone(),
                    app: artifact.app.clone(),
                    artifact: artifact.id.clone(),
                    trigger: trigger.clone(),
                    outcome: Final::Released {
                        commit: commit.clone(),
                        rollback: trigger.is_rollback(),
                        verified: false,
                    },
                    deployment: done.deployment,
                })
                .await?;
        }
        self.set_live(env, artifact).await?;
        self.desired.done(env, &artifact.app, &artifact.id).await?;
        tracing::info!(%env, artifact = %artifact.id, %commit, pull, "released");
        Ok(())
    }

    /// The gitops branch (at `tip`) already holds `plan`'s output. When the ledger does not
    /// know yet (`live`: what it said before the write, under the loop's lock), a crash or a
    /// fault came between the commit (or the merge) and the env ref: the release is finished
    /// now, notifications included.
    pub(super) async fn already_released(
        &self,
        plan: &Plan,
        artifact: &Artifact,
        live: bool,
        tip: Option<CommitSha>,
        rollback_from: Option<&ArtifactId>,
    ) -> Result<ReleaseOutcome> {
        if !live && let Some(commit) = tip {
            let done = Done {
                pull: None,
                deployment: None,
                reply: plan.reply.as_ref(),
                rollback_from,
            };
            self.released(&plan.env, artifact, &plan.trigger, &commit, done)
                .await?;
            return Ok(ReleaseOutcome::Released { commit, pull: None });
        }
        if let Some(reply) = &plan.reply {
            self.reply_already(reply, &plan.env, artifact).await;
        }
        Ok(ReleaseOutcome::AlreadyReleased)
    }

    pub(in crate::release) async fn artifact(&self, id: &ArtifactId) -> Result<Artifact> {
        let store = self.store.clone();
        let id2 = id.clone();
        blocking(move || store.get_by_id(&id2))
            .await?
            .ok_or_else(|| ReleaseError::UnknownArtifact(id.to_string()))
    }

    /// Whether the ledger says `env` runs artifact `id` of `app`.
    pub(in crate::release) async fn runs(
        &self,
        env: &EnvName,
        app: &AppName,
        id: &ArtifactId,
    ) -> Result<bool> {
        Ok(self.live(env, app).await?.as_ref() == Some(id))
    }

    /// The artifact the ledger says `env` runs.
    pub(in crate::release) async fn live(&self, env: &EnvName, app: &AppName) -> Result<Option<ArtifactId>> {
        let store = self.store.clone();
        let (env, app) = (env.clone(), app.clone());
        Ok(blocking(move || store.released(&env, &app)).await?.map(|a| a.id))
    }

    async fn set_live(&self, env: &EnvName, artifact: &Artifact) -> Result<()> {
        let store = self.store.clone();
        let (env, artifact, now) = (env.clone(), artifact.clone(), self.clock.now());
        blocking(move || store.set_released_at(&env, &artifact.app, &artifact, now)).await
    }

    pub(in crate::release) async fn read_hold(
        &self,
        env: &EnvName,
        app: &AppName,
    ) -> Result<Option<HoldState>> {
        let store = self.store.clone();
        let (env, app) = (env.clone(), app.clone());
        blocking(move || store.hold_state(&env, &app)).await
    }

    /// Holds (or resumes) automatic deploys of `app` to `env`; `false`: it already was so.
    pub(in crate::release) async fn set_hold(
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
}
