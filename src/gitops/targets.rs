//! Several gitops repositories (design §16): every (env, app) writes to one (repository,
//! branch), auger.toml's `[gitops]` unless the env's `[env.X.gitops] repo / branch` names
//! another. [`GitopsTargets`] holds one [`GitopsRepo`] cache per (repository, branch) in use,
//! each with its own write lock, so a write to one never waits on another; [`GitopsTargets::for_env`]
//! is the one lookup every write and read of an (env, app) goes through, and the readers here
//! merge the history of all of them.

use std::collections::HashSet;
use std::sync::Arc;

use super::audit::{EnvironmentView, ReleaseView, environment_views, release_views};
use super::history::{HistoryFilter, ReleaseRecord};
use super::writer::{GitopsRepo, Result};
use crate::domain::{AppName, BranchName, EnvName, RepoName};
use crate::policy::{LivePolicies, PolicySet};

/// One gitops repository and the branch releases land on, through its cache.
#[derive(Debug, Clone)]
pub struct GitopsTarget {
    /// `owner/name`, for pull requests and links.
    pub repo: RepoName,
    /// The cache; its branch is the target's.
    pub cache: GitopsRepo,
}

impl GitopsTarget {
    pub fn branch(&self) -> &BranchName {
        self.cache.branch()
    }

    fn is(&self, repo: &RepoName, branch: &BranchName) -> bool {
        same_repo(&self.repo, repo) && self.cache.branch() == branch
    }
}

/// GitHub compares owner and name without case.
pub fn same_repo(a: &RepoName, b: &RepoName) -> bool {
    a.as_str().eq_ignore_ascii_case(b.as_str())
}

/// Every gitops target in use and which (env, app) writes where.
#[derive(Clone)]
pub struct GitopsTargets {
    /// `[0]` is auger.toml's `[gitops]`; a repository's first target is at its own branch.
    targets: Vec<GitopsTarget>,
    /// The policies in force, whose `[env.X.gitops]` says where each (env, app) writes: read
    /// on every lookup, so a reload moves an env without a restart. `None`: all to the default.
    policies: Option<Arc<LivePolicies>>,
}

impl std::fmt::Debug for GitopsTargets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitopsTargets")
            .field("targets", &self.targets)
            .finish()
    }
}

impl GitopsTargets {
    /// Only the default target: every (env, app) writes there.
    pub fn single(default: GitopsTarget) -> Self {
        Self {
            targets: vec![default],
            policies: None,
        }
    }

    /// Routes by `live` from now on ([`Self::route_policies`] opens the targets it names).
    pub fn follow(&mut self, live: Arc<LivePolicies>) {
        self.policies = Some(live);
    }

    /// Adds a target unless one for its (repository, branch) is there; its index.
    pub fn add(&mut self, target: GitopsTarget) -> usize {
        match self
            .targets
            .iter()
            .position(|t| t.is(&target.repo, target.branch()))
        {
            Some(at) => at,
            None => {
                self.targets.push(target);
                self.targets.len() - 1
            }
        }
    }

    /// Routes every (env, app) whose policy names a repository or branch to its target, added
    /// when new. `open` gives the cache of a repository at the env's branch, or at the
    /// repository's own branch when the env names none; it fails for a repository the
    /// configuration does not know (which policy loading refuses first).
    pub fn route_policies<E>(
        &mut self,
        policies: &PolicySet,
        mut open: impl FnMut(&RepoName, Option<&BranchName>) -> std::result::Result<GitopsRepo, E>,
    ) -> std::result::Result<(), E> {
        for policy in policies.iter() {
            for (_, rules) in policy.envs() {
                let (repo, branch) = rules.gitops_target();
                if repo.is_none() && branch.is_none() {
                    continue;
                }
                let repo = repo.unwrap_or(&self.targets[0].repo);
                // Spelled as the configuration spells it (GitHub ignores case; links do not).
                let repo = self
                    .targets
                    .iter()
                    .find(|t| same_repo(&t.repo, repo))
                    .map_or_else(|| repo.clone(), |t| t.repo.clone());
                // Opening a cache that exists is cheap, and handles on one folder share its
                // lock: a second env on the same (repository, branch) reuses the first target.
                let cache = open(&repo, branch)?;
                self.add(GitopsTarget { repo, cache });
            }
        }
        Ok(())
    }

    /// The target `set` sends (env, app) to, when it is open: the default without
    /// `[env.X.gitops]`, a repository's own branch when the env names none.
    fn routed<'a>(&'a self, set: &PolicySet, env: &EnvName, app: &AppName) -> Option<&'a GitopsTarget> {
        let Some(rules) = set.get(app).and_then(|p| p.env(env)) else {
            return Some(&self.targets[0]);
        };
        let (repo, branch) = rules.gitops_target();
        let repo = repo.unwrap_or(&self.targets[0].repo);
        match branch {
            Some(b) => self.targets.iter().find(|t| t.is(repo, b)),
            None => self.targets.iter().find(|t| same_repo(&t.repo, repo)),
        }
    }

    /// Every env of `set` whose (repository, branch) has no cache here: (policy file, key,
    /// `repo@branch`). A reload that needs one is refused (it takes a restart).
    pub fn unopened(&self, set: &PolicySet) -> Vec<(std::path::PathBuf, String, String)> {
        let mut out = Vec::new();
        for policy in set.iter() {
            for (env, rules) in policy.envs() {
                if self.routed(set, env, policy.app()).is_none() {
                    let (repo, branch) = rules.gitops_target();
                    let repo = repo.unwrap_or(&self.targets[0].repo);
                    let branch = branch.map_or_else(|| "its branch".to_owned(), |b| b.to_string());
                    out.push((
                        policy.file().to_owned(),
                        format!("env.{env}.gitops"),
                        format!("{repo}@{branch}"),
                    ));
                }
            }
        }
        out
    }

    /// auger.toml's `[gitops]`: previews and pairs without a policy go there.
    pub fn default_target(&self) -> &GitopsTarget {
        &self.targets[0]
    }

    /// Where (env, app) writes and reads its releases.
    pub fn for_env(&self, env: &EnvName, app: &AppName) -> &GitopsTarget {
        let Some(live) = &self.policies else {
            return &self.targets[0];
        };
        match self.routed(&live.current(), env, app) {
            Some(t) => t,
            None => {
                // Reloads refuse a set with such a pair (`unopened`), so this is a bug.
                tracing::error!(%env, %app, "no gitops cache for where the policy sends this env; using the default repository");
                &self.targets[0]
            }
        }
    }

    /// Every target, the default first.
    pub fn all(&self) -> &[GitopsTarget] {
        &self.targets
    }

    /// The targets in repository `repo` (several when envs use several of its branches).
    pub fn in_repo<'a>(&'a self, repo: &'a RepoName) -> impl Iterator<Item = &'a GitopsTarget> + 'a {
        self.targets.iter().filter(move |t| same_repo(&t.repo, repo))
    }

    /// The names of the repositories, each once, the default first.
    pub fn repo_names(&self) -> Vec<RepoName> {
        let mut out: Vec<RepoName> = Vec::new();
        for t in &self.targets {
            if !out.iter().any(|r| same_repo(r, &t.repo)) {
                out.push(t.repo.clone());
            }
        }
        out
    }

    /// Whether `target` is where (env, app) writes now: history an env left behind in a
    /// repository it no longer uses does not say what runs.
    fn serves(&self, target: usize, env: &EnvName, app: &AppName) -> bool {
        std::ptr::eq(self.for_env(env, app), &self.targets[target])
    }

    /// Brings every cache up to date; the first failure, after trying them all.
    pub fn fetch_all(&self) -> Result<()> {
        let mut first = None;
        for t in &self.targets {
            if let Err(e) = t.cache.fetch() {
                tracing::warn!(repo = %t.repo, branch = %t.branch(), error = %e, "fetching a gitops repository failed");
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// The releases `filter` selects across every target, newest first, each with the
    /// repository it is in. Reads the caches as last fetched.
    pub fn release_views(&self, filter: &HistoryFilter) -> Result<Vec<ReleaseView>> {
        let mut lists: Vec<std::collections::VecDeque<ReleaseRecord>> = Vec::new();
        for t in &self.targets {
            lists.push(t.cache.releases(filter)?.into());
        }
        // Merged newest first, each repository's own order kept (its history order, which the
        // times need not follow to the second). Each list holds its repository's newest
        // `limit`: the newest `limit` of the union are among them, and with them every later
        // release of the pairs they show.
        let mut all: Vec<(RepoName, ReleaseRecord)> = Vec::new();
        while filter.limit.is_none_or(|l| all.len() < l) {
            let newest = lists
                .iter()
                .enumerate()
                .filter_map(|(i, l)| l.front().map(|r| (i, r.time)))
                .fold(None, |best: Option<(usize, _)>, (i, t)| match best {
                    Some((_, bt)) if bt >= t => best,
                    _ => Some((i, t)),
                });
            let Some((i, _)) = newest else { break };
            if let Some(r) = lists[i].pop_front() {
                all.push((self.targets[i].repo.clone(), r));
            }
        }
        let (repos, records): (Vec<RepoName>, Vec<ReleaseRecord>) = all.into_iter().unzip();
        let mut views = release_views(records);
        for (v, repo) in views.iter_mut().zip(repos) {
            v.gitops_repo = Some(repo);
        }
        Ok(views)
    }

    /// What runs in every (env, app), each read from the target it writes to, sorted by env,
    /// then app.
    pub fn environments(&self) -> Result<Vec<EnvironmentView>> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for (i, t) in self.targets.iter().enumerate() {
            let views = environment_views(t.cache.history(&HistoryFilter::default())?);
            for mut v in views {
                if self.serves(i, &v.env, &v.app) && seen.insert((v.env.clone(), v.app.clone())) {
                    v.gitops_repo = Some(t.repo.clone());
                    out.push(v);
                }
            }
        }
        out.sort_by(|a, b| (&a.env, &a.app).cmp(&(&b.env, &b.app)));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;

    fn name(s: &str) -> RepoName {
        RepoName::new(s).unwrap()
    }

    fn branch(s: &str) -> BranchName {
        BranchName::new(s).unwrap()
    }

    /// web: staging in the default repository, production and canary in acme/gitops-prod
    /// (canary on its own branch), qa on another branch of the default repository.
    const POLICY: &str = r#"
app = "web"
repo = "acme/web"
template = "web"
[env.staging]
merge = "direct"
[env.production]
merge = "approval"
approvers = ["user:sre1"]
gitops = { repo = "acme/gitops-prod" }
[env.canary]
merge = "direct"
gitops = { repo = "Acme/Gitops-Prod", branch = "canary" }
[env.qa]
merge = "direct"
gitops = { branch = "qa" }
"#;

    #[test]
    fn each_env_finds_its_repository_and_branch_and_pairs_share_one_target() {
        let dir = tempfile::tempdir().unwrap();
        let policies =
            PolicySet::from_policies([Policy::from_toml("policies/web.toml", POLICY).unwrap()]).unwrap();
        let open = |repo: &RepoName, b: &BranchName| {
            let folder = dir
                .path()
                .join(repo.as_str().replace('/', "+"))
                .join(b.ref_component());
            GitopsRepo::open(&folder, "file:///nowhere", b.clone())
        };
        let default = GitopsTarget {
            repo: name("acme/gitops"),
            cache: open(&name("acme/gitops"), &branch("main")).unwrap(),
        };
        let mut targets = GitopsTargets::single(default);
        // The configured repository at its own branch, as `auger serve` adds it.
        targets.add(GitopsTarget {
            repo: name("acme/gitops-prod"),
            cache: open(&name("acme/gitops-prod"), &branch("live")).unwrap(),
        });
        let mut asked = Vec::new();
        targets
            .route_policies(&policies, |repo, b| {
                asked.push((repo.to_string(), b.map(|b| b.to_string())));
                open(repo, b.unwrap_or(&branch("live")))
            })
            .unwrap();
        assert_eq!(asked.len(), 3, "{asked:?}");
        targets.follow(LivePolicies::fixed(policies.clone()));

        let app = AppName::new("web").unwrap();
        let at = |env: &str| {
            let t = targets.for_env(&EnvName::new(env).unwrap(), &app);
            (t.repo.to_string(), t.branch().to_string())
        };
        assert_eq!(at("staging"), ("acme/gitops".into(), "main".into()));
        assert_eq!(at("production"), ("acme/gitops-prod".into(), "live".into()));
        assert_eq!(at("canary"), ("acme/gitops-prod".into(), "canary".into()));
        assert_eq!(at("qa"), ("acme/gitops".into(), "qa".into()));
        // A pair no policy routes (a preview instance) writes to the default.
        assert_eq!(at("preview"), ("acme/gitops".into(), "main".into()));
        // main, live, canary, qa: production reused the configured target.
        assert_eq!(targets.all().len(), 4);
        assert_eq!(
            targets.repo_names(),
            [name("acme/gitops"), name("acme/gitops-prod")]
        );
        assert_eq!(targets.in_repo(&name("ACME/GITOPS-PROD")).count(), 2);
        // Every target has a cache folder of its own, hence a write lock of its own.
        let mut dirs: Vec<_> = targets
            .all()
            .iter()
            .map(|t| t.cache.cache_dir().to_owned())
            .collect();
        dirs.sort();
        dirs.dedup();
        assert_eq!(dirs.len(), 4);
    }

    #[test]
    fn a_repository_the_configuration_does_not_know_fails_the_routing() {
        let dir = tempfile::tempdir().unwrap();
        let policies =
            PolicySet::from_policies([Policy::from_toml("policies/web.toml", POLICY).unwrap()]).unwrap();
        let cache = GitopsRepo::open(&dir.path().join("c"), "file:///nowhere", branch("main")).unwrap();
        let mut targets = GitopsTargets::single(GitopsTarget {
            repo: name("acme/gitops"),
            cache,
        });
        let err = targets
            .route_policies(&policies, |repo, _| Err(format!("no gitops repository {repo}")))
            .unwrap_err();
        assert_eq!(err, "no gitops repository acme/gitops-prod");
    }
}
