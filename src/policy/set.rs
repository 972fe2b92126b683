//! The validated policies, as later code queries them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::diagnostic::{Diagnostic, PolicyErrors};
use super::glob::RefGlobs;
use super::schema::{EnvPolicy, PolicyFile, PreviewPolicy, TemplateName, VarName};
use super::signal::{Signal, SignalKind};
use crate::domain::{AppName, BranchName, EnvName, RepoName, TagName};

/// One app's policy that passed every check of [`super::load_dir`] (or of
/// `Policy::from_toml`, which lives with the loader).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    file: PathBuf,
    spec: PolicyFile,
    /// Environment names in the order the file lists them (staging before production, as the
    /// author wrote it), which the typed map alone would lose.
    env_order: Vec<EnvName>,
}

impl Policy {
    /// `env_order` lists every key of `spec.env` once, in file order.
    pub(crate) fn new(file: PathBuf, spec: PolicyFile, env_order: Vec<EnvName>) -> Self {
        Self {
            file,
            spec,
            env_order,
        }
    }

    /// The file it was read from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Everything as written, typed.
    pub fn spec(&self) -> &PolicyFile {
        &self.spec
    }

    pub fn app(&self) -> &AppName {
        &self.spec.app
    }

    pub fn repo(&self) -> &RepoName {
        &self.spec.repo
    }

    /// The template folder; `None` when every environment edits files in place.
    pub fn template(&self) -> Option<&TemplateName> {
        self.spec.template.as_ref()
    }

    /// Template variables, unrendered.
    pub fn vars(&self) -> &BTreeMap<VarName, String> {
        &self.spec.vars
    }

    pub fn signals(&self) -> &[Signal] {
        &self.spec.artifact.signals
    }

    /// `[artifact] paths`: the files whose change makes an artifact, if the policy limits them.
    pub fn paths(&self) -> Option<&RefGlobs> {
        self.spec.artifact.paths.as_ref()
    }

    /// Whether a commit that changed `files` (repository paths) is a build of this app: any
    /// file matches `[artifact] paths`, or the policy names no paths.
    pub fn built_by_change<S: AsRef<str>>(&self, files: &[S]) -> bool {
        self.paths()
            .is_none_or(|globs| files.iter().any(|f| globs.matches(f.as_ref())))
    }

    /// Whether a successful CI event of this kind and name makes an artifact of this app.
    pub fn accepts_signal(&self, kind: SignalKind, name: &str) -> bool {
        self.signals().iter().any(|s| s.matches(kind, name))
    }

    /// A normal environment (the preview environment is under [`Policy::preview`]).
    pub fn env(&self, name: &EnvName) -> Option<&EnvPolicy> {
        self.spec.env.get(name)
    }

    /// Normal environments in file order.
    pub fn envs(&self) -> impl Iterator<Item = (&EnvName, &EnvPolicy)> {
        self.env_order
            .iter()
            .filter_map(|n| self.spec.env.get_key_value(n))
    }

    /// Environments whose `auto.branch` matches, in file order. `after` gates are not applied
    /// here: the caller knows what is live where.
    pub fn auto_targets_for_branch(&self, branch: &BranchName) -> Vec<&EnvName> {
        self.auto_targets(|e| e.auto.matches_branch(branch))
    }

    /// Environments whose `auto.tag` matches, in file order.
    pub fn auto_targets_for_tag(&self, tag: &TagName) -> Vec<&EnvName> {
        self.auto_targets(|e| e.auto.matches_tag(tag))
    }

    /// Environments with `auto.pull_request = true`, in file order. Fork pull requests must be
    /// filtered out by the caller before asking.
    pub fn auto_targets_for_pull_request(&self) -> Vec<&EnvName> {
        self.auto_targets(|e| e.auto.pull_request())
    }

    fn auto_targets(&self, pick: impl Fn(&EnvPolicy) -> bool) -> Vec<&EnvName> {
        self.envs().filter(|(_, e)| pick(e)).map(|(n, _)| n).collect()
    }

    pub fn preview(&self) -> Option<&PreviewPolicy> {
        self.spec.preview.as_ref()
    }
}

/// Every policy of the folder, valid as a whole, plus the warnings found on the way.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    pub(crate) policies: BTreeMap<AppName, Policy>,
    pub(crate) warnings: Vec<Diagnostic>,
}

impl PolicySet {
    /// A set of policies checked one by one (see [`Policy::from_toml`]); refuses two policies
    /// for one app.
    pub fn from_policies(policies: impl IntoIterator<Item = Policy>) -> Result<Self, PolicyErrors> {
        let mut set = PolicySet::default();
        let mut errors = Vec::new();
        let mut files = 0;
        for policy in policies {
            files += 1;
            if let Some(first) = set.policies.get(policy.app()) {
                errors.push(Diagnostic::new(
                    policy.file(),
                    "app",
                    format!(
                        "app \"{}\" is already defined in {}",
                        policy.app(),
                        first.file().display()
                    ),
                ));
            } else {
                set.policies.insert(policy.app().clone(), policy);
            }
        }
        if errors.is_empty() {
            Ok(set)
        } else {
            Err(PolicyErrors {
                errors,
                warnings: Vec::new(),
                files,
            })
        }
    }

    pub fn get(&self, app: &AppName) -> Option<&Policy> {
        self.policies.get(app)
    }

    /// Policies of apps built from `repo`; several for a monorepo. GitHub treats repository
    /// names case-insensitively, so this does too.
    pub fn for_repo<'a>(&'a self, repo: &'a RepoName) -> impl Iterator<Item = &'a Policy> + 'a {
        self.policies
            .values()
            .filter(move |p| p.repo().as_str().eq_ignore_ascii_case(repo.as_str()))
    }

    /// App names, sorted.
    pub fn apps(&self) -> impl Iterator<Item = &AppName> {
        self.policies.keys()
    }

    /// Policies, sorted by app name.
    pub fn iter(&self) -> impl Iterator<Item = &Policy> {
        self.policies.values()
    }

    pub fn len(&self) -> usize {
        self.policies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// Non-fatal findings: the set is usable, but something probably is not what was meant.
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(app: &str, repo: &str) -> Policy {
        let text = format!(
            "app = \"{app}\"\nrepo = \"{repo}\"\ntemplate = \"any\"\n[artifact]\nsignals = [\"check_run:build\"]\n[env.dev]\nauto = {{ branch = \"**\", pull_request = true }}\nmerge = \"direct\"\n"
        );
        Policy::from_toml(format!("{app}.toml"), &text).unwrap()
    }

    #[test]
    fn a_single_policy_can_be_parsed_without_a_folder() {
        let p = policy("api", "acme/api");
        assert!(p.accepts_signal(SignalKind::CheckRun, "build"));
        assert!(!p.accepts_signal(SignalKind::Status, "build"));
        let any = BranchName::new("feature/x").unwrap();
        assert_eq!(p.auto_targets_for_branch(&any).len(), 1);
        assert_eq!(p.auto_targets_for_pull_request().len(), 1);
        assert!(p.preview().is_none());

        let errors = Policy::from_toml("x.toml", "app = \"x\"\n").unwrap_err();
        let keys: Vec<&str> = errors.iter().map(|d| d.key.as_str()).collect();
        assert_eq!(keys, ["repo", "template"]);
    }

    #[test]
    fn a_set_refuses_two_policies_for_one_app() {
        let set = PolicySet::from_policies([policy("a", "acme/mono"), policy("b", "acme/mono")]).unwrap();
        let repo = RepoName::new("ACME/mono").unwrap();
        assert_eq!(set.for_repo(&repo).count(), 2);
        let e = PolicySet::from_policies([policy("a", "acme/a"), policy("a", "acme/b")]).unwrap_err();
        assert_eq!(
            e.errors[0].to_string(),
            "a.toml: app: app \"a\" is already defined in a.toml"
        );
    }
}
