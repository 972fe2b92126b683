//! Notify: commit statuses, GitHub Deployments, Slack and command replies, through
//! [`crate::notify`], which never fails or delays a release. The words come from
//! [`crate::release::text`] and `templates/commands/reply.md.tera`.

use super::pull::ReleasePull;
use super::record::Done;
use crate::artifact::{Artifact, ArtifactId};
use crate::domain::{AppName, CommitSha, EnvName};
use crate::forge::{DeploymentId, Forge};
use crate::gitops::Trigger;
use crate::notify::{FailureKind, ReleaseEvent, ReplyRef, ReplyText, render_reply};
use crate::policy::{EnvPolicy, MergeMode};
use crate::release::plan::Plan;
use crate::release::preview::Preview;
use crate::release::{ReleaseOutcome, Releaser, Result, text};

impl Releaser {
    /// A notification event, with the deployment already made for this release if any.
    pub(in crate::release) async fn release_event(
        &self,
        env: &EnvName,
        artifact: &Artifact,
        trigger: &Trigger,
    ) -> ReleaseEvent {
        let mut ev = ReleaseEvent::for_artifact(artifact, env.clone(), trigger.to_string());
        ev.deployment_id = self.notifier.existing_deployment(&ev).await;
        ev
    }

    /// The same, with the environment's URL: what a deployment shows.
    async fn env_event(&self, plan: &Plan, artifact: &Artifact, rules: &EnvPolicy) -> ReleaseEvent {
        let mut ev = self.release_event(&plan.env, artifact, &plan.trigger).await;
        ev.environment_url = rules.url.clone();
        ev
    }

    /// Before the write, a release that goes out now (not one waiting for approvals) gets its
    /// deployment `in_progress`; its success or failure follows. The desired release remembers
    /// its deployment; GitHub is asked for it only when an earlier attempt may have made one
    /// that went unrecorded.
    pub(super) async fn deployment_started(
        &self,
        plan: &Plan,
        artifact: &Artifact,
        rules: &EnvPolicy,
    ) -> Option<DeploymentId> {
        if rules.merge == MergeMode::Approval {
            return None;
        }
        let desired = self
            .desired
            .get(&plan.env, &plan.app)
            .filter(|d| d.plan.artifact == artifact.id);
        let mut ev = ReleaseEvent::for_artifact(artifact, plan.env.clone(), plan.trigger.to_string());
        ev.environment_url = rules.url.clone();
        ev.deployment_id = match &desired {
            Some(d) if d.deployment.is_some() => d.deployment,
            Some(d) if d.attempts == 0 => None,
            _ => self.notifier.existing_deployment(&ev).await,
        };
        let id = self.notifier.release_in_progress(&ev).await?;
        if desired.is_some_and(|d| d.deployment != Some(id))
            && let Err(e) = self
                .desired
                .note_deployment(&plan.env, &plan.app, &artifact.id, id)
                .await
        {
            tracing::warn!(error = %e, "cannot remember the release's deployment");
        }
        Some(id)
    }

    /// `old` waited in the release pull request that `by` now takes over: its pending status
    /// is closed. An artifact that cannot be read only costs this notice.
    pub(super) async fn announce_superseded(&self, plan: &Plan, old: &ArtifactId, by: &ArtifactId) {
        match self.artifact(old).await {
            Ok(a) => {
                let ev = self.release_event(&plan.env, &a, &plan.trigger).await;
                self.notifier.release_superseded(&ev, by).await;
            }
            Err(e) => {
                tracing::warn!(artifact = %old, error = %e, "cannot close the superseded release's status")
            }
        }
    }

    /// A release waiting for approvals shows as pending, once.
    pub(super) async fn release_pending(&self, plan: &Plan, artifact: &Artifact, rules: &EnvPolicy) {
        let ev = self.env_event(plan, artifact, rules).await;
        if ev.deployment_id.is_none() {
            self.notifier.release_pending(&ev).await;
        }
    }

    /// The release is live: success (or rollback) everywhere, and the reply says how. `true`
    /// when GitHub took the final status and deployment status.
    pub(super) async fn announce_released(
        &self,
        env: &EnvName,
        artifact: &Artifact,
        trigger: &Trigger,
        commit: &CommitSha,
        done: Done<'_>,
    ) -> bool {
        let mut ev = match done.deployment {
            Some(id) => {
                let mut ev = ReleaseEvent::for_artifact(artifact, env.clone(), trigger.to_string());
                ev.deployment_id = Some(id);
                ev
            }
            None => self.release_event(env, artifact, trigger).await,
        };
        ev.gitops_sha = Some(commit.clone());
        ev.gitops_commit_url = self.gitops_commit_url(env, &artifact.app, commit).await;
        ev.environment_url = self.environment_url(env, &artifact.app);
        let settled = if trigger.is_rollback() {
            self.notifier.rollback(&ev, done.rollback_from).await
        } else {
            self.notifier.release_succeeded(&ev).await
        };
        if let Some(reply) = done.reply {
            let text = render_reply(&ReplyText {
                state: "released",
                env: env.as_str(),
                artifact: &artifact.id.to_string(),
                link: &text::merged_by(done.pull, commit),
                ..Default::default()
            });
            self.notifier.reply(reply, &text).await;
        }
        settled
    }

    /// Where a gitops commit of (env, app)'s repository is shown, on the host GitHub names for
    /// the repository (none when it cannot be asked: no link rather than a guessed one).
    pub(in crate::release) async fn gitops_commit_url(
        &self,
        env: &EnvName,
        app: &AppName,
        commit: &CommitSha,
    ) -> Option<String> {
        let forge = self.forge.as_ref()?;
        match forge.repo_html_url(&self.target(env, app).repo).await {
            Ok(base) => Some(format!("{base}/commit/{commit}")),
            Err(e) => {
                tracing::warn!(error = %e, "cannot learn where the gitops repository is shown");
                None
            }
        }
    }

    /// The environment's URL from the policy, if it gives one.
    pub(in crate::release) fn environment_url(&self, env: &EnvName, app: &AppName) -> Option<String> {
        self.policies()
            .get(app)
            .and_then(|p| p.env(env))
            .and_then(|r| r.url.clone())
    }

    pub(super) async fn reply_already(&self, reply: &ReplyRef, env: &EnvName, artifact: &Artifact) {
        let text = render_reply(&ReplyText {
            state: "already",
            env: env.as_str(),
            artifact: &artifact.id.to_string(),
            ..Default::default()
        });
        self.notifier.reply(reply, &text).await;
    }

    /// A pull request that waits for approvals says so in the reply, with its count.
    pub(super) async fn reply_awaiting(&self, reply: &ReplyRef, outcome: &ReleaseOutcome) {
        let ReleaseOutcome::AwaitingApproval {
            url, tally, required, ..
        } = outcome
        else {
            return;
        };
        let detail = text::approvals(tally.approved_by.len(), *required);
        let text = render_reply(&ReplyText {
            state: "awaiting",
            link: url,
            detail: &detail,
            ..Default::default()
        });
        self.notifier.reply(reply, &text).await;
    }

    /// A release pull request was closed unmerged: the release failed, unless what it
    /// proposed is live anyway.
    pub(in crate::release) async fn abandoned(&self, rp: &ReleasePull, artifact: &Artifact) -> Result<()> {
        if self.runs(&rp.env, &rp.app, &artifact.id).await? {
            return Ok(());
        }
        let ev = self.release_event(&rp.env, artifact, &rp.info.trigger).await;
        self.notifier
            .release_failed(&ev, FailureKind::Error, &text::closed_unmerged(rp.pr.number))
            .await;
        Ok(())
    }

    /// A preview is live: its deployment succeeds and the source pull request's comment
    /// points at it.
    pub(in crate::release) async fn preview_released(
        &self,
        forge: &dyn Forge,
        preview: &Preview<'_>,
        artifact: &Artifact,
        url: Option<&str>,
        commit: &CommitSha,
    ) {
        let mut ev =
            ReleaseEvent::for_artifact(artifact, preview.rules.env.clone(), Trigger::Policy.to_string());
        ev.app = preview.instance.clone();
        ev.transient = true;
        ev.environment_url = url.map(str::to_owned);
        ev.gitops_sha = Some(commit.clone());
        self.notifier.release_succeeded(&ev).await;
        self.preview_comment(forge, preview, Some(artifact), url, None)
            .await;
    }

    /// A preview was removed: its deployments go inactive (`artifact` is the pull request's
    /// head, if the ledger has it) and the comment says it is gone (`expired`: because its
    /// `ttl` passed without a push).
    pub(in crate::release) async fn preview_removed(
        &self,
        forge: &dyn Forge,
        preview: &Preview<'_>,
        artifact: Option<&Artifact>,
        expired: bool,
    ) {
        if let Some(artifact) = artifact {
            let mut ev = ReleaseEvent::for_artifact(artifact, preview.rules.env.clone(), "policy");
            ev.app = preview.instance.clone();
            ev.transient = true;
            ev.deployment_id = self.notifier.existing_deployment(&ev).await;
            self.notifier.preview_removed(&ev).await;
        }
        let ttl = if expired { preview.rules.ttl } else { None };
        self.preview_comment(forge, preview, None, None, ttl).await;
    }

    /// The one preview comment on the pull request, created or edited in place.
    async fn preview_comment(
        &self,
        forge: &dyn Forge,
        preview: &Preview<'_>,
        artifact: Option<&Artifact>,
        url: Option<&str>,
        expired: Option<std::time::Duration>,
    ) {
        let (policy, number) = (preview.policy, preview.pull);
        let marker = format!("<!-- auger:preview {} -->", policy.app());
        let Some(comment) = text::preview_comment(
            policy,
            &preview.rules.env,
            &preview.instance,
            artifact,
            url,
            expired,
        ) else {
            return;
        };
        let text = format!("{comment}\n\n{marker}\n");
        let repo = policy.repo();
        // Only auger's own comment is the preview comment: anyone can write the marker.
        let own = match forge.authenticated_login().await {
            Ok(login) => login,
            Err(e) => {
                tracing::warn!(error = %e, "cannot tell which comments are auger's own");
                return;
            }
        };
        let existing = match forge.list_comments(repo, number).await {
            Ok(list) => list
                .into_iter()
                .find(|c| c.author.login.eq_ignore_ascii_case(&own) && c.body.contains(&marker)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the pull request's comments");
                return;
            }
        };
        let result = match existing {
            Some(c) if c.body == text => Ok(()),
            Some(c) => forge.update_comment(repo, c.id, &text).await,
            None if artifact.is_none() => Ok(()),
            None => forge.create_comment(repo, number, &text).await.map(|_| ()),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "cannot write the preview comment");
        }
    }
}
