//! Several gitops repositories (design §16): every (env, app) writes to one (repository,
//! branch), auger.toml's `[gitops]` unless the env's `[env.X.gitops] repo / branch` names
//! another. [`GitopsTargets`] holds one [`GitopsRepo`] cache per (repository, branch) in use,
//! each with its own write lock, so a write to one never waits on another; [`GitopsTargets::for_env`]
//! is the one lookup every write and read of an (env, app) goes through, and the readers here
//! merge the history of all of them.

use std::collections::{HashMap, HashSet};

use super::audit::{EnvironmentView, ReleaseView, environment_views, release_views};
use super::history::{HistoryFilter, ReleaseRecord};
use super::writer::{GitopsRepo, Result};
use crate::domain::{AppName, BranchName, EnvName, RepoName};
use crate::policy::PolicySet;

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
#[derive(Debug, Clone)]
pub struct GitopsTargets {
    /// `[0]` is auger.toml's `[gitops]`.
    targets: Vec<GitopsTarget>,
    /// (env, app) pairs that write elsewhere than the default; index into `targets`.
    routes: HashMap<(EnvName, AppName), usize>,
}

impl GitopsTargets {
    /// Only the default target: every (env, app) writes there.
    pub fn single(default: GitopsTarget) -> Self {
        Self {
            targets: vec![default],
            routes: HashMap::new(),
        }
    }

    /// Adds a target unless one for its (repository, branch) is there; its index.
    pub fn add(&mut self, target: GitopsTarget) -> usize {
        match self.targets.iter().position(|t| t.is(&target.repo, target.branch())) {
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
            for (env, rules) in policy.envs() {
                let (repo, branch) = rules.gitops_target();
                if repo.is_none() && branch.is_none() {
                    continue;
                }
                let repo = repo.unwrap_or(&self.targets[0].repo).clone();
                // Opening a cache that exists is cheap, and handles on one folder share its
                // lock: a second env on the same (repository, branch) reuses the first target.
                let cache = open(&repo, branch)?;
                let at = self.add(GitopsTarget { repo, cache });
                if at != 0 {
                    self.routes.insert((env.clone(), policy.app().clone()), at);
                }
            }
        }
        Ok(())
    }

    /// auger.toml's `[gitops]`: previews and pairs without a policy go there.
    pub fn default_target(&self) -> &GitopsTarget {
        &self.targets[0]
    }

    /// Where (env, app) writes and reads its releases.
    pub fn for_env(&self, env: &EnvName, app: &AppName) -> &GitopsTarget {
        let at = self.routes.get(&(env.clone(), app.clone())).copied().unwrap_or(0);
        &self.targets[at]
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
        self.routes.get(&(env.clone(), app.clone())).copied().unwrap_or(0) == target
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
        let mut all: Vec<(RepoName, ReleaseRecord)> = Vec::new();
        for t in &self.targets {
            all.extend(t.cache.releases(filter)?.into_iter().map(|r| (t.repo.clone(), r)));
        }
        // Each list holds its repository's newest `limit`: the newest `limit` of the union are
        // among them, and with them every later release of the pairs they show.
        all.sort_by(|a, b| b.1.time.cmp(&a.1.time));
        if let Some(limit) = filter.limit {
            all.truncate(limit);
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
