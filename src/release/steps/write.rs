//! Write: one commit to the gitops repository, on its branch (`direct`) or on the release pull
//! request's branch (`auto`, `approval`). The writer is idempotent: output already there is
//! "unchanged", a pull request branch already holding it is "pending".

use super::blocking;
use super::render::{Content, Rendered};
use crate::artifact::{Artifact, ArtifactId};
use crate::gitops::{EditSpec, Files, ReleaseInfo, ReleaseSpec, Target, Trailer, WriteOutcome};
use crate::policy::MergeMode;
use crate::release::plan::Plan;
use crate::release::preview::Preview;
use crate::release::text;
use crate::release::{ReleaseError, Releaser, Result, TRAILER_SUPERSEDES};

/// Where a merge mode writes: `direct` onto the gitops branch, the others onto
/// `auger/<env>/<app>` for a pull request.
pub(in crate::release) fn target(merge: MergeMode) -> Target {
    match merge {
        MergeMode::Direct => Target::Branch,
        MergeMode::Auto | MergeMode::Approval => Target::PrBranch,
    }
}

/// A release's commit: a rendered folder, or edits in place.
pub(super) enum Commit {
    Render(ReleaseSpec),
    Edit(EditSpec),
}

/// The commit for `plan`: its files (or edits), its subject, and `Auger-Supersedes` when it
/// replaces the artifact its pull request proposed before.
pub(super) fn release_spec(
    plan: &Plan,
    artifact: &Artifact,
    rendered: Rendered,
    target: Target,
    superseded: Option<&ArtifactId>,
    rollback_from: Option<&ArtifactId>,
) -> Commit {
    let mut extra_trailers = Vec::new();
    if let Some(old) = superseded
        && let Ok(t) = Trailer::new(TRAILER_SUPERSEDES, &old.to_string())
    {
        extra_trailers.push(t);
    }
    let message = match rollback_from {
        Some(from) => text::rollback_message(&plan.app, &plan.env, artifact, from),
        None => text::release_message(&plan.app, &plan.env, artifact),
    };
    match rendered.content {
        Content::Files(files) => Commit::Render(ReleaseSpec {
            env: plan.env.clone(),
            app: plan.app.clone(),
            files,
            release: rendered.info,
            message,
            extra_trailers,
            target,
        }),
        Content::Edits(edits) => Commit::Edit(EditSpec {
            env: plan.env.clone(),
            app: plan.app.clone(),
            edits,
            release: rendered.info,
            message,
            extra_trailers,
            target,
        }),
    }
}

/// The commit of a preview into `<env>/<instance>/`.
pub(in crate::release) fn preview_spec(
    preview: &Preview<'_>,
    artifact: &Artifact,
    files: Files,
    info: ReleaseInfo,
    target: Target,
) -> ReleaseSpec {
    ReleaseSpec {
        env: preview.rules.env.clone(),
        app: preview.instance.clone(),
        files,
        release: info,
        message: text::preview_message(preview.policy.app(), preview.pull, &artifact.id),
        extra_trailers: Vec::new(),
        target,
    }
}

impl Releaser {
    /// Commits `spec` (or finds it already there).
    pub(in crate::release) async fn write(&self, spec: ReleaseSpec) -> Result<WriteOutcome> {
        let gitops = self.target(&spec.env, &spec.app).cache.clone();
        blocking(move || gitops.prepare_release(&spec)).await
    }

    /// Commits a release's change, rendered or edited.
    pub(super) async fn write_commit(&self, commit: Commit) -> Result<WriteOutcome> {
        match commit {
            Commit::Render(spec) => self.write(spec).await,
            Commit::Edit(spec) => {
                let gitops = self.target(&spec.env, &spec.app).cache.clone();
                blocking(move || gitops.prepare_edit(&spec)).await
            }
        }
    }

    /// Removes a preview's folder in one commit on the gitops branch.
    pub(in crate::release) async fn remove_preview_files(
        &self,
        preview: &Preview<'_>,
    ) -> Result<WriteOutcome> {
        let (policy, pull) = (preview.policy, preview.pull);
        let trailers = vec![
            Trailer::new("Auger-Pull-Request", &format!("{}#{pull}", policy.repo()))
                .map_err(|e| ReleaseError::Internal(e.to_string()))?,
        ];
        let message = text::preview_removed_message(policy.app(), pull);
        let gitops = self.gitops.default_target().cache.clone();
        let (env, instance) = (preview.rules.env.clone(), preview.instance.clone());
        blocking(move || gitops.remove_path(&env, &instance, &message, &trailers, Target::Branch)).await
    }
}
