//! The gitops side of a release (design §7): rendering templates into files ([`render()`];
//! the rules are in [`mod@render`]), writing them as commits or pull-request branches into the
//! gitops repository ([`GitopsRepo`]), and reading the release history back from it
//! ([`GitopsRepo::history`]). With several gitops repositories (design §16), [`GitopsTargets`]
//! says which cache an (env, app) writes to and reads history across all of them.
//!
//! Layout written: `<env>/<app>/…` (rendered files) and `<env>/<app>/release.json` (the
//! [`ReleaseInfo`]); previews in `<preview-env>/<app>-pr-<n>/`. Each release commit ends with
//! the trailers `Auger-App`, `Auger-Env`, `Auger-Artifact`, `Auger-Source: <owner/repo>@<sha>`,
//! `Auger-Trigger` and, for rollbacks, `Auger-Rollback-To`; a preview removal carries
//! `Auger-App`, `Auger-Env` and `Auger-Action: remove`. Only validated [`EnvName`]s and
//! [`AppName`]s build paths, so nothing is written outside `<env>/<app>/`.
//!
//! [`EnvName`]: crate::domain::EnvName
//! [`AppName`]: crate::domain::AppName

mod audit;
mod edit;
mod git;
mod history;
mod record;
pub mod render;
mod targets;
mod writer;

pub use audit::{EnvironmentView, PendingPr, ReleaseView, environment_views, release_views};
pub use edit::{EditOp, FileEdit, Refused, apply as apply_edits};
pub use history::{HistoryEntry, HistoryFilter, ReleaseRecord};
pub use record::{
    RELEASE_FILE, RELEASE_RECORD_VERSION, ReleaseInfo, SourceRef, TRAILER_ACTION, TRAILER_APP,
    TRAILER_ARTIFACT, TRAILER_ENV, TRAILER_ROLLBACK_TO, TRAILER_SOURCE, TRAILER_TRIGGER, Trailer,
    TrailerError, Trigger, parse_trailers, pr_branch, preview_name, trailer,
};
pub use render::{
    Files, RenderError, RenderExtra, check_template, edit_shape, render, render_command_output, render_edits,
    render_gitops_path, render_policy_string,
};
pub use targets::{GitopsTarget, GitopsTargets, same_repo};
pub use writer::{DEFAULT_MAX_ATTEMPTS, EditSpec, GitopsRepo, ReleaseSpec, Target, WriteError, WriteOutcome};
