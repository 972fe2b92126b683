//! Previews (design §1, §5 `[preview]`): a same-repository pull request whose head has an
//! artifact is released to `<preview-env>/<app>-pr-<n>/`; closing the pull request (or deleting
//! its branch) removes that folder in one commit. The pull request gets one comment, updated in
//! place. Fork pull requests never get previews (design §10).
//!
//! Every step re-reads the pull request from GitHub, so redelivered and out-of-order events
//! converge: a preview is written only for the *current* head of an *open* pull request, and
//! removal of a folder that is gone is a no-op.

use super::{ReleaseError, ReleaseOutcome, Releaser, Result, blocking, preview_pr_text};
use crate::artifact::Artifact;
use crate::domain::{AppName, RepoName};
use crate::forge::{Forge, MergeMethod, MergeOutcome, PullRequest, PullState};
use crate::gitops::{
    ReleaseInfo, ReleaseSpec, RenderExtra, Target, Trailer, Trigger, WriteOutcome, preview_name, render,
    render_policy_string,
};
use crate::notify::ReleaseEvent;
use crate::policy::{MergeMode, Policy};

const COMMENT: &str = include_str!("../../templates/commands/preview.md.tera");

impl Releaser {
    /// A pull request of `repo` was opened, reopened or pushed to: preview its head for every
    /// app of the repository that has `[preview]`, if the head's artifact exists yet (if not,
    /// the artifact's arrival does it).
    pub async fn on_pull_request(&self, repo: &RepoName, number: u64) -> Result<Vec<ReleaseOutcome>> {
        let policies: Vec<&Policy> = self
            .policies
            .for_repo(repo)
            .filter(|p| p.preview().is_some())
            .collect();
        // Most pull request events concern no preview: ask GitHub only when one may.
        let (Some(forge), false) = (self.forge.clone(), policies.is_empty()) else {
            return Ok(Vec::new());
        };
        let pr = forge.get_pull(repo, number).await?;
        let mut out = Vec::new();
        for policy in policies {
            let store = self.store.clone();
            let (app, sha) = (policy.app().clone(), pr.head.sha.clone());
            let Some(artifact) = blocking(move || store.get(&app, &sha)).await? else {
                continue;
            };
            if let Some(o) = self.preview_for(policy, &pr, &artifact).await? {
                out.push(o);
            }
        }
        Ok(out)
    }

    /// An artifact gained pull requests: preview it where it is the open PR's head.
    pub(super) async fn previews_for_artifact(&self, artifact: &Artifact) {
        let (Some(forge), Some(policy)) = (self.forge.clone(), self.policies.get(&artifact.app)) else {
            return;
        };
        if policy.preview().is_none() {
            return;
        }
        for &number in &artifact.pull_requests {
            let result = match forge.get_pull(&artifact.repo, number).await {
                Ok(pr) => self.preview_for(policy, &pr, artifact).await,
                Err(e) => Err(e.into()),
            };
            if let Err(e) = result {
                tracing::warn!(app = %artifact.app, pull = number, error = %e, "preview failed");
            }
        }
    }

    async fn preview_for(
        &self,
        policy: &Policy,
        pr: &PullRequest,
        artifact: &Artifact,
    ) -> Result<Option<ReleaseOutcome>> {
        let Some(preview) = policy.preview() else {
            return Ok(None);
        };
        if pr.state != PullState::Open || pr.is_from_fork(policy.repo()) || pr.head.sha != artifact.sha {
            return Ok(None);
        }
        let _serial = self.begin().await;
        let instance =
            preview_name(policy.app(), pr.number).map_err(|e| ReleaseError::Internal(e.to_string()))?;
        let env = preview.env.clone();
        let mut extra = RenderExtra::new(Trigger::Policy);
        extra.time = self.clock.now();
        extra.instance = Some(instance.clone());
        extra.pull_request = Some(pr.number);
        let files = render(&self.templates, policy, &env, artifact, &extra)?;
        let url = match &preview.url {
            Some(t) => Some(render_policy_string(t, policy, &env, artifact, &extra)?),
            None => None,
        };
        let mut info = ReleaseInfo::new(env.clone(), instance.clone(), artifact, Trigger::Policy);
        info.time = extra.time;
        let target = if preview.merge == MergeMode::Direct {
            Target::Branch
        } else {
            Target::PrBranch
        };
        let spec = ReleaseSpec {
            env: env.clone(),
            app: instance.clone(),
            files,
            release: info,
            message: format!(
                "Preview {} of pull request #{} ({})",
                policy.app(),
                pr.number,
                artifact.id
            ),
            extra_trailers: Vec::new(),
            target,
        };
        let gitops = self.gitops.clone();
        let written = blocking(move || gitops.prepare_release(&spec)).await?;
        let commit = match written {
            WriteOutcome::Unchanged { .. } => return Ok(Some(ReleaseOutcome::AlreadyReleased)),
            WriteOutcome::Committed { commit, .. } if target == Target::Branch => commit,
            WriteOutcome::Committed { commit, .. } | WriteOutcome::Pending { commit, .. } => {
                // A preview's pull request is merged at once: previews need no approval.
                let forge = self.forge_for(&env, preview.merge)?;
                let branch = self.pr_branch(&env, &instance)?;
                let (title, body) = preview_pr_text(policy, pr, artifact);
                let gitops_pr = match forge.find_open_pull(&self.gitops_repo, &branch).await? {
                    Some(p) => p,
                    None => {
                        forge
                            .create_pull(&self.gitops_repo, &branch, self.gitops.branch(), &title, &body)
                            .await?
                    }
                };
                match forge
                    .merge_pull(
                        &self.gitops_repo,
                        gitops_pr.number,
                        &commit,
                        MergeMethod::Merge,
                        &title,
                    )
                    .await?
                {
                    MergeOutcome::Merged { sha } => sha,
                    MergeOutcome::HeadMoved | MergeOutcome::NotMergeable(_) => {
                        return Err(ReleaseError::NotMerged {
                            pull: gitops_pr.number,
                            reason: "the preview pull request could not be merged".into(),
                        });
                    }
                }
            }
        };
        let mut ev = ReleaseEvent::for_artifact(artifact, env.clone(), Trigger::Policy.to_string());
        ev.app = instance.clone();
        ev.transient = true;
        ev.environment_url = url.clone();
        ev.gitops_sha = Some(commit.clone());
        self.notifier.release_succeeded(&ev).await;
        self.preview_comment(
            self.forge_for(&env, preview.merge)?.as_ref(),
            policy,
            pr.number,
            &instance,
            Some(artifact),
            url.as_deref(),
        )
        .await;
        tracing::info!(app = %policy.app(), pull = pr.number, %commit, "preview released");
        Ok(Some(ReleaseOutcome::Released { commit, pull: None }))
    }

    /// Pull request `number` of `repo` closed, or its branch was deleted: remove its previews.
    pub async fn remove_previews(&self, repo: &RepoName, number: u64) -> Result<usize> {
        let Some(forge) = self.forge.clone() else {
            return Ok(0);
        };
        let _serial = self.begin().await;
        let mut removed = 0;
        let policies: Vec<&Policy> = self
            .policies
            .for_repo(repo)
            .filter(|p| p.preview().is_some())
            .collect();
        for policy in policies {
            let Some(preview) = policy.preview() else { continue };
            let instance =
                preview_name(policy.app(), number).map_err(|e| ReleaseError::Internal(e.to_string()))?;
            let env = preview.env.clone();
            let trailers = vec![
                Trailer::new("Auger-Pull-Request", &format!("{}#{number}", policy.repo()))
                    .map_err(|e| ReleaseError::Internal(e.to_string()))?,
            ];
            let gitops = self.gitops.clone();
            let (e2, i2) = (env.clone(), instance.clone());
            let message = format!(
                "Remove the preview of {} for pull request #{number}",
                policy.app()
            );
            let written =
                blocking(move || gitops.remove_path(&e2, &i2, &message, &trailers, Target::Branch)).await?;
            if matches!(written, WriteOutcome::Unchanged { .. }) {
                continue;
            }
            removed += 1;
            // The deployments of the preview: the source sha is unknown here, so every
            // recent deployment of the environment name is marked inactive.
            let pr = forge.get_pull(repo, number).await?;
            let store = self.store.clone();
            let (app, sha) = (policy.app().clone(), pr.head.sha.clone());
            if let Some(artifact) = blocking(move || store.get(&app, &sha)).await? {
                let mut ev = ReleaseEvent::for_artifact(&artifact, env.clone(), "policy");
                ev.app = instance.clone();
                ev.transient = true;
                ev.deployment_id = self.notifier.existing_deployment(&ev).await;
                self.notifier.preview_removed(&ev).await;
            }
            self.preview_comment(forge.as_ref(), policy, number, &instance, None, None)
                .await;
            tracing::info!(app = %policy.app(), pull = number, "preview removed");
        }
        Ok(removed)
    }

    /// The one preview comment on the pull request, created or edited in place.
    async fn preview_comment(
        &self,
        forge: &dyn Forge,
        policy: &Policy,
        number: u64,
        instance: &AppName,
        artifact: Option<&Artifact>,
        url: Option<&str>,
    ) {
        let Some(preview) = policy.preview() else { return };
        let marker = format!("<!-- auger:preview {} -->", policy.app());
        let mut ctx = tera::Context::new();
        ctx.insert("removed", &artifact.is_none());
        ctx.insert("app", policy.app().as_str());
        ctx.insert("env", preview.env.as_str());
        ctx.insert("instance", instance.as_str());
        ctx.insert(
            "artifact",
            &artifact.map(|a| a.id.to_string()).unwrap_or_default(),
        );
        ctx.insert("url", &url.unwrap_or_default());
        let text = match tera::Tera::one_off(COMMENT, &ctx, false) {
            Ok(t) => format!("{}\n\n{marker}\n", t.trim()),
            Err(e) => {
                tracing::error!(error = %e, "preview comment template failed");
                return;
            }
        };
        let repo = policy.repo();
        let existing = match forge.list_comments(repo, number).await {
            Ok(list) => list.into_iter().find(|c| c.body.contains(&marker)),
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
