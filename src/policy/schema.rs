//! The typed shape of one `policies/<app>.toml` (design §5). Every table refuses unknown keys,
//! and every name goes through its validated newtype, so a typo fails the check instead of
//! being ignored. Rules that span several keys (cycles, template folders, approvals) are
//! checked by [`super::load_dir`].
//!
//! Defaults, chosen to fail safe:
//! - `merge` defaults to `"approval"` (one approving review), so forgetting it never releases
//!   without a human; `approvals` defaults to 1 under `"approval"`.
//! - `deployers` and `approvers` default to nobody.
//! - without `auto`, an environment is only deployed by `/deploy`.
//! - `after.soak` defaults to zero: live there at all is enough.
//! - `[preview]`: `env = "preview"`, `on = "pull_request"`, `cleanup = "closed"`,
//!   `merge = "direct"`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, de};

use super::edit::{EditStep, EnvGitops};
use super::glob::RefGlobs;
use super::principal::Principal;
use super::signal::Signal;
use crate::domain::{AppName, BranchName, EnvName, RepoName, TagName, string_newtype};
use crate::verify::Controller;

/// One policy file as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    pub app: AppName,
    pub repo: RepoName,
    /// Required when any environment (or the preview) renders; see `load::check_template_needed`.
    pub template: Option<TemplateName>,
    #[serde(default)]
    pub artifact: ArtifactRule,
    /// Template variables, kept as unrendered tera strings.
    #[serde(default)]
    pub vars: BTreeMap<VarName, String>,
    #[serde(default)]
    pub env: BTreeMap<EnvName, EnvPolicy>,
    pub preview: Option<PreviewPolicy>,
}

/// Which CI successes make an artifact. Without signals, artifacts only come through the API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactRule {
    #[serde(default)]
    pub signals: Vec<Signal>,
    /// Monorepos (design §16): a signal makes an artifact only when the commit changes a file
    /// these globs match (`services/web/**`; `!` carves out). Without it, every commit does.
    #[serde(default)]
    pub paths: Option<RefGlobs>,
}

/// How a release reaches the gitops branch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MergeMode {
    /// A pull request that auger merges at once.
    Auto,
    /// A pull request merged once it has enough approving reviews from approvers.
    #[default]
    Approval,
    /// A commit pushed straight to the gitops branch.
    Direct,
}

impl MergeMode {
    pub fn as_str(self) -> &'static str {
        match self {
            MergeMode::Auto => "auto",
            MergeMode::Approval => "approval",
            MergeMode::Direct => "direct",
        }
    }
}

impl fmt::Display for MergeMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[env.<name>]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvPolicy {
    #[serde(default)]
    pub auto: AutoRule,
    #[serde(default)]
    pub merge: MergeMode,
    /// As written; see [`EnvPolicy::required_approvals`] for the effective number.
    pub approvals: Option<u32>,
    #[serde(default)]
    pub approvers: Vec<Principal>,
    /// Who may `/deploy` here; nobody when empty.
    #[serde(default)]
    pub deployers: Vec<Principal>,
    pub after: Option<AfterRule>,
    /// Environment URL, an unrendered tera string.
    pub url: Option<String>,
    /// How the cluster says a release is applied and healthy (design §15); without it a
    /// merged release counts as live.
    pub verify: Option<VerifyRule>,
    /// `[[env.<name>.edit]]`: edit files in place instead of rendering (design §16).
    #[serde(default)]
    pub edit: Vec<EditStep>,
    /// `[env.<name>.gitops]`: the folder edit files are relative to, and another gitops
    /// repository or branch than auger.toml's `[gitops]`.
    pub gitops: Option<EnvGitops>,
    /// Weekly freeze windows (design §17): no automatic deploys, `/deploy` needs `--force`.
    #[serde(default)]
    pub freeze: Vec<super::freeze::FreezeWindow>,
    /// Who may `/deploy --force` through a freeze; nobody when empty.
    #[serde(default)]
    pub freeze_overriders: Vec<Principal>,
}

impl EnvPolicy {
    /// Whether releases here edit files in place (`edit` steps) rather than render templates.
    pub fn edits(&self) -> bool {
        !self.edit.is_empty()
    }

    /// The tera template of the folder edit files are relative to.
    pub fn gitops_path_template(&self) -> &str {
        self.gitops
            .as_ref()
            .map_or(super::edit::DEFAULT_GITOPS_PATH, EnvGitops::path_template)
    }

    /// The gitops repository and branch this env names, when not auger.toml's default.
    pub fn gitops_target(
        &self,
    ) -> (
        Option<&crate::domain::RepoName>,
        Option<&crate::domain::BranchName>,
    ) {
        match &self.gitops {
            Some(g) => (g.repo.as_ref(), g.branch.as_ref()),
            None => (None, None),
        }
    }

    /// Approving reviews a release needs: 0 unless `merge = "approval"`, where it is
    /// `approvals` or 1.
    pub fn required_approvals(&self) -> u32 {
        match self.merge {
            MergeMode::Approval => self.approvals.unwrap_or(1),
            MergeMode::Auto | MergeMode::Direct => 0,
        }
    }
}

/// `auto = { branch = ..., tag = ..., pull_request = true }`: which artifacts deploy here
/// without a command. Gates such as `after` still apply; checking them is the caller's job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoRule {
    pub branch: Option<RefGlobs>,
    pub tag: Option<RefGlobs>,
    #[serde(default)]
    pub pull_request: bool,
}

impl AutoRule {
    pub fn matches_branch(&self, branch: &BranchName) -> bool {
        self.branch.as_ref().is_some_and(|g| g.matches(branch.as_str()))
    }

    pub fn matches_tag(&self, tag: &TagName) -> bool {
        self.tag.as_ref().is_some_and(|g| g.matches(tag.as_str()))
    }

    /// Whether artifacts built from (same-repo) pull request heads deploy here.
    pub fn pull_request(&self) -> bool {
        self.pull_request
    }
}

/// `after = { env = "staging", soak = "30m" }`: the artifact must have been live in `env` for
/// at least `soak` before it may go here.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AfterRule {
    pub env: EnvName,
    #[serde(default, deserialize_with = "deserialize_duration")]
    pub soak: Duration,
}

/// `[env.<name>.verify]`: who reports on this environment's releases, how long to wait for a
/// healthy report, how long it must stay healthy, and what a failure does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyRule {
    pub by: VerifySource,
    pub timeout: Duration,
    pub soak: Duration,
    pub on_failure: OnFailure,
}

/// The one report source an environment listens to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifySource {
    /// A Flux Kustomization or HelmRelease, by name.
    Flux(String),
    /// An Argo CD Application, by name.
    ArgoCd(String),
    /// Commit statuses or check runs on the gitops commit whose context (name) matches.
    Status(RefGlobs),
}

impl VerifySource {
    /// Whether an env listening here hears a report from `controller` about `object` (a Flux
    /// object, an Argo CD Application, or a status context).
    pub fn hears(&self, controller: Controller, object: &str) -> bool {
        match (self, controller) {
            (VerifySource::Flux(name), Controller::Flux)
            | (VerifySource::ArgoCd(name), Controller::ArgoCd) => name == object,
            (VerifySource::Status(globs), Controller::Status) => globs.matches(object),
            _ => false,
        }
    }
}

/// What a failed or timed-out verification does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Back to the last verified release, then hold the environment.
    Rollback,
    /// Hold the environment: no automatic deploy until `/resume`.
    Hold,
    /// Say so, nothing else.
    #[default]
    Report,
}

impl OnFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::Rollback => "rollback",
            OnFailure::Hold => "hold",
            OnFailure::Report => "report",
        }
    }
}

/// The default `verify.timeout`: no healthy report 15 minutes after the merge is a failure.
pub const DEFAULT_VERIFY_TIMEOUT: Duration = Duration::from_secs(15 * 60);

impl<'de> Deserialize<'de> for VerifyRule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Written {
            flux: Option<String>,
            argocd: Option<String>,
            status: Option<RefGlobs>,
            #[serde(default, deserialize_with = "deserialize_optional_duration")]
            timeout: Option<Duration>,
            #[serde(default, deserialize_with = "deserialize_optional_duration")]
            soak: Option<Duration>,
            #[serde(default)]
            on_failure: OnFailure,
        }
        let w = Written::deserialize(d)?;
        let by = match (w.flux, w.argocd, w.status) {
            (Some(name), None, None) => VerifySource::Flux(object_name("flux", name)?),
            (None, Some(name), None) => VerifySource::ArgoCd(object_name("argocd", name)?),
            (None, None, Some(globs)) => VerifySource::Status(globs),
            (None, None, None) => {
                return Err(de::Error::custom(
                    "needs one of flux = \"<Kustomization or HelmRelease>\", argocd = \"<Application>\" or status = \"<context glob>\"",
                ));
            }
            _ => {
                return Err(de::Error::custom(
                    "names more than one of flux, argocd and status: an environment listens to one",
                ));
            }
        };
        Ok(VerifyRule {
            by,
            timeout: w.timeout.unwrap_or(DEFAULT_VERIFY_TIMEOUT),
            soak: w.soak.unwrap_or_default(),
            on_failure: w.on_failure,
        })
    }
}

/// A Kubernetes object name as a controller reports it: refused when empty or not a name, so
/// a typo cannot wait for reports that never match.
fn object_name<E: de::Error>(key: &str, name: String) -> Result<String, E> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    if ok {
        Ok(name)
    } else {
        Err(E::custom(format!(
            "{key} = {name:?} is not a Kubernetes object name (lowercase letters, digits, '-' and '.')"
        )))
    }
}

fn deserialize_optional_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    deserialize_duration(d).map(Some)
}

/// `[preview]`: per-pull-request environments.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewPolicy {
    #[serde(default = "default_preview_env")]
    pub env: EnvName,
    #[serde(default)]
    pub on: PreviewTrigger,
    #[serde(default)]
    pub cleanup: PreviewCleanup,
    /// `auto` or `direct`; previews have no approvers, so `approval` is refused by the check.
    #[serde(default = "default_preview_merge")]
    pub merge: MergeMode,
    pub url: Option<String>,
    /// A preview whose folder was last written this long ago (no push brought a new build)
    /// is removed by the sweep; a later push brings it back. `None`: previews live until the
    /// pull request closes.
    #[serde(default, deserialize_with = "deserialize_ttl")]
    pub ttl: Option<Duration>,
}

/// `ttl = "72h"`; zero is refused, since it would remove every preview as soon as it is written.
fn deserialize_ttl<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let ttl = deserialize_duration(d)?;
    if ttl.is_zero() {
        return Err(de::Error::custom(
            "must be longer than zero (leave ttl out to keep previews until the pull request closes)",
        ));
    }
    Ok(Some(ttl))
}

fn default_preview_env() -> EnvName {
    // A literal that satisfies the naming rule; built by hand so no parse can fail here.
    EnvName::new("preview").unwrap_or_else(|_| unreachable!("\"preview\" is a valid env name"))
}

fn default_preview_merge() -> MergeMode {
    MergeMode::Direct
}

/// What opens a preview. Only same-repository pull requests; forks never get one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PreviewTrigger {
    #[default]
    PullRequest,
}

/// What removes a preview: the pull request closing (merged or not) or its branch being
/// deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PreviewCleanup {
    #[default]
    Closed,
}

/// `30m`, `1h30m`, `45s`, `1h 30m`: humantime's syntax. Plain numbers are refused because the
/// unit would be a guess.
fn deserialize_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map_err(|e| de::Error::custom(format!("invalid duration {s:?}: {e}")))
}

string_newtype!(
    /// A folder directly under `templates/`. One path component, so it cannot escape the
    /// templates folder.
    TemplateName,
    "template name",
    |s| {
        let ok = !s.is_empty()
            && s.len() <= 100
            && !s.starts_with('.')
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if ok {
            Ok(())
        } else {
            Err("must be one folder name (letters, digits, '-', '_', '.', not starting with '.')")
        }
    }
);

string_newtype!(
    /// A key of `[vars]`. Identifiers only, so templates can write `{{ vars.image }}`.
    VarName,
    "variable name",
    |s| {
        let mut bytes = s.bytes();
        let ok = bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if ok {
            Ok(())
        } else {
            Err("must match [A-Za-z_][A-Za-z0-9_]*")
        }
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    const DESIGN_EXAMPLE: &str = r#"
app = "frontend"
repo = "acme/frontend"
template = "web-service"

[artifact]
signals = ["status:ci/build", "check_run:build", "workflow_run:CI"]

[vars]
image = "ghcr.io/acme/frontend:{{ artifact.sha }}"

[env.staging]
auto = { branch = "main" }
merge = "auto"
deployers = ["permission:write"]

[env.production]
auto = { tag = "v*" }
merge = "approval"
approvals = 2
approvers = ["team:acme/sre", "user:alice"]
deployers = ["team:acme/release-managers"]
after = { env = "staging", soak = "30m" }

[preview]
env = "preview"
on = "pull_request"
cleanup = "closed"
"#;

    fn env(s: &str) -> EnvName {
        EnvName::new(s).unwrap()
    }

    #[test]
    fn the_design_example_parses_into_typed_values() {
        let p: PolicyFile = toml::from_str(DESIGN_EXAMPLE).unwrap();
        assert_eq!(p.app.as_str(), "frontend");
        assert_eq!(p.template.as_ref().unwrap().as_str(), "web-service");
        assert_eq!(p.artifact.signals[2], Signal::WorkflowRun("CI".into()));
        let prod = &p.env[&env("production")];
        assert_eq!(prod.merge, MergeMode::Approval);
        assert_eq!(prod.required_approvals(), 2);
        let after = prod.after.as_ref().unwrap();
        assert_eq!(
            (after.env.as_str(), after.soak),
            ("staging", Duration::from_secs(1800))
        );
        assert!(prod.auto.matches_tag(&TagName::new("v1.0.0").unwrap()));
        assert!(!prod.auto.matches_branch(&BranchName::new("main").unwrap()));
        let preview = p.preview.unwrap();
        assert_eq!(preview.merge, MergeMode::Direct);
        assert_eq!(preview.on, PreviewTrigger::PullRequest);
    }

    #[test]
    fn omitted_keys_take_the_safe_defaults() {
        let p: PolicyFile =
            toml::from_str("app = \"a\"\nrepo = \"o/a\"\ntemplate = \"t\"\n[env.qa]\n[preview]\n").unwrap();
        let qa = &p.env[&env("qa")];
        assert_eq!(qa.merge, MergeMode::Approval);
        assert_eq!(qa.required_approvals(), 1);
        assert!(qa.deployers.is_empty() && qa.approvers.is_empty());
        assert!(!qa.auto.matches_branch(&BranchName::new("main").unwrap()));
        assert!(!qa.auto.pull_request());
        assert_eq!(p.preview.unwrap().env.as_str(), "preview");
        assert!(p.artifact.signals.is_empty());
    }

    #[test]
    fn durations_accept_compound_units_and_refuse_bare_numbers() {
        let parse = |s: &str| {
            toml::from_str::<AfterRule>(&format!("env = \"a\"\nsoak = {s}"))
                .map(|a| a.soak)
                .map_err(|e| e.message().to_owned())
        };
        assert_eq!(parse("\"1h30m\""), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("\"45s\""), Ok(Duration::from_secs(45)));
        assert!(
            parse("\"30 parsecs\"")
                .unwrap_err()
                .contains("invalid duration \"30 parsecs\"")
        );
        assert!(parse("30").unwrap_err().contains("expected a string"));
    }

    #[test]
    fn template_and_var_names_cannot_be_paths_or_odd_keys() {
        assert!(TemplateName::new("web-service").is_ok());
        for bad in ["", "..", "../x", "a/b", ".hidden"] {
            assert!(TemplateName::new(bad).is_err(), "{bad:?}");
        }
        assert!(VarName::new("image_tag").is_ok());
        for bad in ["", "1x", "my-var", "a.b"] {
            assert!(VarName::new(bad).is_err(), "{bad:?}");
        }
    }
}
