//! Render: what `<env>/<app>/` holds for an artifact, or in edit mode (design §16) the values
//! the env's `edit` steps set. A release renders the policy's templates (or its edit values);
//! a rollback takes the tree (or the values) of the release it returns to; a preview renders
//! into its own instance folder.

use super::blocking;
use crate::artifact::Artifact;
use crate::domain::{AppName, EnvName};
use crate::gitops::{
    FileEdit, Files, ReleaseInfo, ReleaseRecord, RenderExtra, Trigger, edit_shape, render, render_edits,
    render_policy_string,
};
use crate::release::plan::Plan;
use crate::release::preview::Preview;
use crate::release::{ReleaseError, Releaser, Result};

/// What a release changes: the files of `<env>/<app>/` (rendered), or values in files that
/// are there already (edit mode).
pub(in crate::release) enum Content {
    Files(Files),
    Edits(Vec<FileEdit>),
}

/// What a release writes, and its record: `release.json` beside rendered files, the commit
/// trailers alone in edit mode.
pub(in crate::release) struct Rendered {
    pub content: Content,
    pub info: ReleaseInfo,
}

impl Releaser {
    /// The policy's templates (or the env's edit values) rendered for `plan`'s artifact.
    pub(super) fn render(&self, plan: &Plan, artifact: &Artifact) -> Result<Rendered> {
        let (policy, rules) = &self.rules(&plan.app, &plan.env)?;
        let now = self.clock.now();
        let mut extra = RenderExtra::new(plan.trigger.clone());
        extra.time = now;
        let content = if rules.edits() {
            Content::Edits(render_edits(policy, &plan.env, artifact, &extra)?)
        } else {
            Content::Files(render(&self.templates, policy, &plan.env, artifact, &extra)?)
        };
        let mut info = release_info(plan, artifact);
        info.time = now;
        Ok(Rendered { content, info })
    }

    /// The artifact of an earlier release and what that release wrote: `<env>/<app>/`, or in
    /// edit mode the values the env's edit steps set, as that release's gitops commit holds
    /// them. An artifact the ledger no longer has is taken from the record's `release.json`.
    pub(in crate::release) async fn rollback_source(
        &self,
        env: &EnvName,
        app: &AppName,
        record: &ReleaseRecord,
    ) -> Result<(Artifact, Content)> {
        let (policy, rules) = &self.rules(app, env)?;
        let gitops = self.target(env, app).cache.clone();
        let content = if rules.edits() {
            let shape = edit_shape(policy, env)?;
            let commit = record.commit.clone();
            Content::Edits(blocking(move || gitops.edit_values_at(&commit, &shape)).await?)
        } else {
            let (commit, e2, a2) = (record.commit.clone(), env.clone(), app.clone());
            Content::Files(
                blocking(move || gitops.tree_of(&commit, &e2, &a2))
                    .await?
                    .ok_or_else(|| {
                        ReleaseError::Internal(format!(
                            "release commit {} has no {env}/{app}/",
                            record.commit
                        ))
                    })?,
            )
        };
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
        Ok((artifact, content))
    }

    /// A rollback's files with a `release.json` that names what it rolls back to.
    pub(in crate::release) fn rollback_rendered(
        &self,
        plan: &Plan,
        artifact: &Artifact,
        content: Content,
    ) -> Rendered {
        let mut info = release_info(plan, artifact);
        info.time = self.clock.now();
        info.rollback_to = Some(artifact.id.clone());
        Rendered { content, info }
    }

    /// A preview in `<preview env>/<instance>/`, and its URL if the policy gives one.
    pub(in crate::release) fn render_preview(
        &self,
        preview: &Preview<'_>,
        artifact: &Artifact,
    ) -> Result<(Files, ReleaseInfo, Option<String>)> {
        let (policy, env) = (preview.policy, &preview.rules.env);
        let mut extra = RenderExtra::new(Trigger::Policy);
        extra.time = self.clock.now();
        extra.instance = Some(preview.instance.clone());
        extra.pull_request = Some(preview.pull);
        let files = render(&self.templates, policy, env, artifact, &extra)?;
        let url = match &preview.rules.url {
            Some(t) => Some(render_policy_string(t, policy, env, artifact, &extra)?),
            None => None,
        };
        let mut info = ReleaseInfo::new(env.clone(), preview.instance.clone(), artifact, Trigger::Policy);
        info.time = extra.time;
        Ok((files, info, url))
    }
}

/// The `release.json` of `plan`'s artifact, timed by the caller.
pub(super) fn release_info(plan: &Plan, artifact: &Artifact) -> ReleaseInfo {
    let mut info = ReleaseInfo::new(plan.env.clone(), plan.app.clone(), artifact, plan.trigger.clone());
    info.overrides = plan.overrides.clone();
    info
}
