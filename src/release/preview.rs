//! Previews (design §1, §5 `[preview]`): a same-repository pull request whose head has an
//! artifact is released to `<preview-env>/<app>-pr-<n>/`; closing the pull request (or deleting
//! its branch) removes that folder in one commit. The pull request gets one comment, updated in
//! place. Fork pull requests never get previews (design §10). Previews live in the default
//! gitops repository (`[gitops]`), whatever repositories the app's envs release to.
//!
//! Every step re-reads the pull request from GitHub, so redelivered and out-of-order events
//! converge: a preview is written only for the *current* head of an *open* pull request, and
//! removal of a folder that is gone is a no-op.

use std::sync::Arc;

use super::steps::{self, blocking};
use super::{ReleaseError, ReleaseOutcome, Releaser, Result, text};
use crate::artifact::Artifact;
use crate::domain::{AppName, CommitSha, RepoName};
use crate::forge::{Forge, PullRequest, PullState};
use crate::gitops::{Target, WriteOutcome, preview_name};
use crate::policy::{Policy, PreviewPolicy};

/// One app's preview of one pull request.
pub(super) struct Preview<'a> {
    pub policy: &'a Policy,
    pub rules: &'a PreviewPolicy,
    pub pull: u64,
    /// `<app>-pr-<n>`, the preview's folder in `rules.env`.
    pub instance: AppName,
}

impl<'a> Preview<'a> {
    /// `None` when `policy` has no previews.
    fn of(policy: &'a Policy, pull: u64) -> Result<Option<Self>> {
        let Some(rules) = policy.preview() else {
            return Ok(None);
        };
        let instance = preview_name(policy.app(), pull).map_err(|e| ReleaseError::Internal(e.to_string()))?;
        Ok(Some(Preview {
            policy,
            rules,
            pull,
            instance,
        }))
    }
}

impl Releaser {
    /// The policies of `repo` that have previews.
    pub(super) fn preview_policies(&self, repo: &RepoName) -> Vec<Policy> {
        self.policies()
            .for_repo(repo)
            .filter(|p| p.preview().is_some())
            .cloned()
            .collect()
    }

    /// The artifact of `app` built from `sha`, if the ledger has it yet.
    pub(super) async fn built(&self, app: &AppName, sha: &CommitSha) -> Result<Option<Artifact>> {
        let store = self.store.clone();
        let (app, sha) = (app.clone(), sha.clone());
        blocking(move || store.get(&app, &sha)).await
    }

    /// An artifact gained pull requests: preview it where it is the open PR's head.
    pub(super) async fn previews_for_artifact(&self, artifact: &Artifact) {
        let (Some(forge), Some(policy)) = (self.forge.clone(), self.policies().get(&artifact.app).cloned())
        else {
            return;
        };
        if policy.preview().is_none() {
            return;
        }
        for &number in &artifact.pull_requests {
            let result = match forge.get_pull(&artifact.repo, number).await {
                Ok(pr) => self.preview_for(&policy, &pr, artifact).await,
                Err(e) => Err(e.into()),
            };
            if let Err(e) = result {
                tracing::warn!(app = %artifact.app, pull = number, error = %e, "preview failed");
            }
        }
    }

    /// Render, write (merging the preview's pull request at once), notify: the preview of
    /// `pr`'s head, if `artifact` is that head and the pull request is open and not a fork's.
    pub(super) async fn preview_for(
        &self,
        policy: &Policy,
        pr: &PullRequest,
        artifact: &Artifact,
    ) -> Result<Option<ReleaseOutcome>> {
        if policy.preview().is_none()
            || pr.state != PullState::Open
            || pr.is_from_fork(policy.repo())
            || pr.head.sha != artifact.sha
        {
            return Ok(None);
        }
        let _serial = self.begin().await;
        let Some(preview) = Preview::of(policy, pr.number)? else {
            return Ok(None);
        };
        let (files, info, url) = self.render_preview(&preview, artifact)?;
        let target = steps::target(preview.rules.merge);
        let spec = steps::preview_spec(&preview, artifact, files, info, target);
        let forge = self.forge_for(&preview.rules.env, preview.rules.merge)?;
        let commit = match self.write(spec).await? {
            WriteOutcome::Unchanged { .. } => return Ok(Some(ReleaseOutcome::AlreadyReleased)),
            WriteOutcome::Committed { commit, .. } if target == Target::Branch => commit,
            WriteOutcome::Committed { commit, .. } | WriteOutcome::Pending { commit, .. } => {
                let branch = self.pr_branch(&preview.rules.env, &preview.instance)?;
                let (title, body) = text::preview_pr_text(policy, pr, artifact);
                self.merge_preview_pull(forge.as_ref(), &branch, &title, &body, &commit)
                    .await?
            }
        };
        self.preview_released(forge.as_ref(), &preview, artifact, url.as_deref(), &commit)
            .await;
        tracing::info!(app = %policy.app(), pull = pr.number, %commit, "preview released");
        Ok(Some(ReleaseOutcome::Released { commit, pull: None }))
    }

    /// Removes `policy`'s preview of pull request `number` of `repo`; `false`: there was none.
    pub(super) async fn remove_preview(
        &self,
        forge: &Arc<dyn Forge>,
        policy: &Policy,
        repo: &RepoName,
        number: u64,
    ) -> Result<bool> {
        self.remove_preview_because(forge, policy, repo, number, false)
            .await
    }

    /// [`Self::remove_preview`]; `expired`: the comment says the `ttl` passed.
    async fn remove_preview_because(
        &self,
        forge: &Arc<dyn Forge>,
        policy: &Policy,
        repo: &RepoName,
        number: u64,
        expired: bool,
    ) -> Result<bool> {
        let Some(preview) = Preview::of(policy, number)? else {
            return Ok(false);
        };
        let written = self.remove_preview_files(&preview).await?;
        if matches!(written, WriteOutcome::Unchanged { .. }) {
            return Ok(false);
        }
        // The deployments of the preview: the source sha is unknown here, so every recent
        // deployment of the environment name is marked inactive.
        let pr = forge.get_pull(repo, number).await?;
        let artifact = self.built(policy.app(), &pr.head.sha).await?;
        self.preview_removed(forge.as_ref(), &preview, artifact.as_ref(), expired)
            .await;
        tracing::info!(app = %policy.app(), pull = number, "preview removed");
        Ok(true)
    }

    /// Previews of pull requests that closed while auger was not listening (down, or a lost
    /// webhook), and previews past their `ttl`: every `<app>-pr-<n>/` folder in a preview
    /// environment whose pull request is no longer open, or that was last written `ttl` ago or
    /// more, is removed. Run at start and once per reconcile period. The number removed.
    pub async fn sweep_previews(&self) -> usize {
        let Some(forge) = self.forge.clone() else {
            return 0;
        };
        let _serial = self.begin().await;
        let gitops = self.gitops.default_target().cache.clone();
        if let Err(e) = blocking(move || gitops.fetch()).await {
            tracing::warn!(error = %e, "cannot fetch the gitops repository to look for stale previews");
            return 0;
        }
        let mut removed = 0;
        for policy in self.policies().iter() {
            let Some(rules) = policy.preview() else { continue };
            let gitops = self.gitops.default_target().cache.clone();
            let env = rules.env.clone();
            let folders = match blocking(move || gitops.folders_in(&env)).await {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot list the preview folders");
                    continue;
                }
            };
            let prefix = format!("{}-pr-", policy.app());
            let pulls = folders
                .iter()
                .filter_map(|f| f.strip_prefix(&prefix)?.parse::<u64>().ok());
            for number in pulls {
                match self.sweep_one(&forge, policy, number).await {
                    Ok(true) => removed += 1,
                    Ok(false) => {}
                    Err(e) => tracing::warn!(pull = number, error = %e, "cannot check a preview"),
                }
            }
        }
        removed
    }

    /// Removes `policy`'s preview of pull request `number` if that pull request is closed or
    /// the preview outlived its `ttl`.
    async fn sweep_one(&self, forge: &Arc<dyn Forge>, policy: &Policy, number: u64) -> Result<bool> {
        let pr = forge.get_pull(policy.repo(), number).await?;
        if pr.state != PullState::Open {
            tracing::info!(app = %policy.app(), pull = number, "pull request closed while auger was not listening");
            return self.remove_preview(forge, policy, policy.repo(), number).await;
        }
        if !self.expired(policy, number).await? {
            return Ok(false);
        }
        tracing::info!(app = %policy.app(), pull = number, "preview past its ttl");
        self.remove_preview_because(forge, policy, policy.repo(), number, true)
            .await
    }

    /// Whether the preview of pull request `number` was last written `ttl` ago or more. The
    /// time is the committer time of the gitops commit that last released into the preview's
    /// folder: every push whose build passes rewrites the folder, so it is the last push that
    /// produced a preview, read from git alone (no event auger may have missed, and the same
    /// answer after a restart).
    async fn expired(&self, policy: &Policy, number: u64) -> Result<bool> {
        let Some(preview) = Preview::of(policy, number)? else {
            return Ok(false);
        };
        // A ttl beyond chrono's range never expires.
        let Some(ttl) = preview.rules.ttl.and_then(|t| chrono::Duration::from_std(t).ok()) else {
            return Ok(false);
        };
        let gitops = self.gitops.default_target().cache.clone();
        let (env, instance) = (preview.rules.env.clone(), preview.instance.clone());
        let written = blocking(move || gitops.current(&env, &instance)).await?;
        Ok(written.is_some_and(|r| self.clock.now() - r.time >= ttl))
    }
}
