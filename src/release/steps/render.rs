//! Render: what `<env>/<app>/` holds for an artifact, or in edit mode (design §16) the values
//! the env's `edit` steps set. A release renders the policy's templates (or its edit values);
//! a rollback takes the tree (or the values) of the release it returns to; a preview renders
//! into its own instance folder.

use super::blocking;
use crate::artifact::Artifact;
use crate::domain::{AppName, EnvName};
use crate::gitops::{
    EditOp, FileEdit, Files, ReleaseInfo, ReleaseRecord, RenderError, RenderExtra, Trigger, render,
    render_gitops_path, render_policy_string,
};
use crate::policy::{EditStep, EnvPolicy, Policy};
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
        let (policy, rules) = self.rules(&plan.app, &plan.env)?;
        let now = self.clock.now();
        let mut extra = RenderExtra::new(plan.trigger.clone());
        extra.time = now;
        let content = if rules.edits() {
            Content::Edits(edits(policy, &plan.env, rules, |key, text| {
                render_policy_string(text, policy, &plan.env, artifact, &extra).map_err(|e| {
                    RenderError::EditValue {
                        key: key.to_owned(),
                        message: e.to_string(),
                    }
                })
            })?)
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
        let (policy, rules) = self.rules(app, env)?;
        let gitops = self.gitops.clone();
        let content = if rules.edits() {
            // Which values to read; the policy's value templates themselves are not needed.
            let shape = edits(policy, env, rules, |_, text| Ok(text.to_owned()))?;
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

/// The env's edit steps as changes to files named from the repository root, each value
/// rendered by `value(key, text)` (`key` names the step's value in the policy, for errors).
fn edits(
    policy: &Policy,
    env: &EnvName,
    rules: &EnvPolicy,
    mut value: impl FnMut(&str, &str) -> std::result::Result<String, RenderError>,
) -> Result<Vec<FileEdit>> {
    let folder = render_gitops_path(rules.gitops_path_template(), env, policy.app())?;
    let mut out = Vec::with_capacity(rules.edit.len());
    for (i, step) in rules.edit.iter().enumerate() {
        let key = |k: &str| format!("env.{env}.edit[{i}].{}.{k}", step.kind());
        let op = match step {
            EditStep::KustomizeImage(k) => EditOp::KustomizeImage {
                name: k.name.clone(),
                tag: k.tag.as_deref().map(|t| value(&key("tag"), t)).transpose()?,
                digest: k
                    .digest
                    .as_deref()
                    .map(|d| value(&key("digest"), d))
                    .transpose()?,
            },
            EditStep::YamlSet(y) => EditOp::YamlSet {
                path: auger_yaml_edit::YamlPath::parse(&y.path).map_err(|e| RenderError::EditValue {
                    key: key("path"),
                    message: e.to_string(),
                })?,
                value: value(&key("value"), &y.value)?,
                select: (y.kind.is_some() || y.name.is_some()).then(|| auger_yaml_edit::DocSelector {
                    kind: y.kind.clone(),
                    name: y.name.clone(),
                }),
            },
        };
        out.push(FileEdit {
            file: format!("{folder}/{}", step.file()),
            op,
        });
    }
    Ok(out)
}

/// The `release.json` of `plan`'s artifact, timed by the caller.
pub(super) fn release_info(plan: &Plan, artifact: &Artifact) -> ReleaseInfo {
    ReleaseInfo::new(plan.env.clone(), plan.app.clone(), artifact, plan.trigger.clone())
}
