//! Loading the policy set anew while auger runs (design §17): from the policy folder on SIGHUP,
//! or from the config repository (`[policies] repo`) on SIGHUP and on a push to its branch.
//!
//! A new set is checked as a whole, exactly as `auger policy check` and a start check it, and
//! put in force only when it has no error; otherwise the old set stays and the caller reports
//! why (a log line, or the `auger/policies` commit status on the config commit).

use std::path::{Path, PathBuf};

use std::sync::{Arc, OnceLock};

use crate::config::{Config, PoliciesRepoConfig};
use crate::domain::CommitSha;
use crate::gitops::{GitopsRepo, GitopsTargets};
use crate::policy::{self, GitopsNames, LivePolicies, Origin, PolicyErrors, PolicySet};

/// Where the policies are read from, and what a new set is checked against besides itself.
pub struct PolicySource {
    from: From,
    /// The gitops repositories auger.toml names: a policy naming another is refused, as at
    /// start.
    names: GitopsNames,
    /// Where releases are written, once the server has opened them: a set that sends an env
    /// to a (repository, branch) without a cache is refused (it takes a restart).
    targets: OnceLock<Arc<GitopsTargets>>,
}

#[allow(clippy::large_enum_variant, reason = "one per process")]
enum From {
    /// `[paths] policies` and `[paths] templates` on disk.
    Folder { policies: PathBuf, templates: PathBuf },
    /// A branch of the config repository, read through a local bare cache.
    Repo {
        config: PoliciesRepoConfig,
        cache: GitopsRepo,
        /// Used when the repository holds no templates (`[policies] templates` unset).
        local_templates: PathBuf,
        /// Where a commit's files are laid out for loading, then removed.
        scratch: PathBuf,
    },
}

/// Why a new set was not put in force.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The config repository could not be read (fetch failed, commit or folder missing).
    #[error("{0}")]
    Unreadable(String),
    /// The set has errors; `report` is what `auger policy check` prints for it.
    #[error("invalid policies:\n{report}")]
    Invalid {
        report: String,
        errors: usize,
        first: String,
    },
}

/// A set that loaded without errors, with where it came from.
pub struct Loaded {
    pub set: PolicySet,
    pub origin: Origin,
}

impl PolicySource {
    /// The source the configuration names; the config repository's cache lives under the data
    /// dir.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let from = match &config.policies_repo {
            None => From::Folder {
                policies: config.paths.policies.clone(),
                templates: config.paths.templates.clone(),
            },
            Some(repo) => {
                let dir = config.server.data_dir.join("config-repo");
                let cache = GitopsRepo::open(&dir.join("cache.git"), &repo.url, repo.branch.clone())
                    .with_context(|| format!("{}: policies.url", config.file.display()))?;
                From::Repo {
                    config: repo.clone(),
                    cache,
                    local_templates: config.paths.templates.clone(),
                    scratch: dir.join("scratch"),
                }
            }
        };
        Ok(PolicySource {
            from,
            names: config.gitops_names(),
            targets: OnceLock::new(),
        })
    }

    /// From now on, a set must route every env to one of `targets`.
    pub fn check_routes_against(&self, targets: Arc<GitopsTargets>) {
        let _ = self.targets.set(targets);
    }

    /// The config repository's cache, whose token needs refreshing like the gitops one.
    pub fn repo_cache(&self) -> Option<(&PoliciesRepoConfig, &GitopsRepo)> {
        match &self.from {
            From::Folder { .. } => None,
            From::Repo { config, cache, .. } => Some((config, cache)),
        }
    }

    /// Loads a folder as a whole: the policies against each other, the templates and
    /// auger.toml's gitops repositories, then the routes against the open targets.
    fn load_dir(&self, policies: &Path, templates: &Path) -> Result<PolicySet, PolicyErrors> {
        let mut result = policy::load_dir_with(policies, templates, Some(&self.names));
        if let (Ok(set), Some(targets)) = (&result, self.targets.get()) {
            let unopened = targets.unopened(set);
            if !unopened.is_empty() {
                result = Err(PolicyErrors {
                    errors: unopened
                        .into_iter()
                        .map(|(file, key, target)| {
                            policy::Diagnostic::new(
                                &file,
                                key,
                                format!("{target}: auger has no cache for this gitops repository and branch yet; it takes a restart"),
                            )
                        })
                        .collect(),
                    warnings: Vec::new(),
                    files: set.len(),
                });
            }
        }
        result
    }

    /// Reads and checks the whole set: the folder, or the config branch's tip after a fetch.
    /// Blocking (disk and git).
    pub fn load(&self) -> Result<Loaded, Refused> {
        match &self.from {
            From::Folder { policies, templates } => Ok(Loaded {
                set: check(self.load_dir(policies, templates), None)?,
                origin: Origin::Folder,
            }),
            From::Repo { .. } => {
                let tip = self.fetch_tip()?;
                self.load_commit(&tip)
            }
        }
    }

    /// Fetches the config repository and names its branch's tip.
    fn fetch_tip(&self) -> Result<CommitSha, Refused> {
        let From::Repo { config, cache, .. } = &self.from else {
            return Err(Refused::Unreadable("no config repository".into()));
        };
        cache
            .fetch()
            .map_err(|e| Refused::Unreadable(format!("cannot fetch {}: {e}", config.repo)))?;
        cache
            .tip()
            .map_err(|e| Refused::Unreadable(e.to_string()))?
            .ok_or_else(|| Refused::Unreadable(format!("{} has no branch {}", config.repo, config.branch)))
    }

    /// Reads and checks the set at one fetched commit of the config repository.
    fn load_commit(&self, commit: &CommitSha) -> Result<Loaded, Refused> {
        let From::Repo {
            config,
            cache,
            local_templates,
            scratch,
        } = &self.from
        else {
            return Err(Refused::Unreadable("no config repository".into()));
        };
        let unreadable = |e: &dyn std::fmt::Display| Refused::Unreadable(e.to_string());
        let short = &commit.as_str()[..7];
        let dir = scratch.join(commit.as_str());
        let _ = std::fs::remove_dir_all(&dir);
        let laid_out = (|| {
            let policies = cache
                .files_under(commit, &config.path)
                .map_err(|e| unreadable(&e))?
                .ok_or_else(|| {
                    Refused::Unreadable(format!("{}@{short} has no folder {:?}", config.repo, config.path))
                })?;
            lay_out(&dir.join(&config.path), &policies).map_err(|e| unreadable(&e))?;
            let templates = match &config.templates {
                None => local_templates.clone(),
                Some(path) => {
                    let files = cache.files_under(commit, path).map_err(|e| unreadable(&e))?;
                    let at = dir.join(path);
                    lay_out(&at, &files.unwrap_or_default()).map_err(|e| unreadable(&e))?;
                    at
                }
            };
            Ok::<_, Refused>(self.load_dir(&dir.join(&config.path), &templates))
        })();
        let _ = std::fs::remove_dir_all(&dir);
        // Messages name the file as `owner/repo@abc1234:policies/web.toml`, not the scratch copy.
        let origin = format!("{}@{short}:", config.repo);
        let set = check(laid_out?, Some((&dir, &origin)))?;
        Ok(Loaded {
            set,
            origin: Origin::Commit(commit.clone()),
        })
    }
}

/// A checked set, or every error as one refusal; `rename` replaces a scratch folder in the
/// messages.
fn check(
    result: Result<PolicySet, PolicyErrors>,
    rename: Option<(&Path, &str)>,
) -> Result<PolicySet, Refused> {
    match result {
        Ok(set) => Ok(set),
        Err(e) => {
            let errors = e.errors.len();
            let rename = |text: String| match rename {
                Some((dir, origin)) => text.replace(&format!("{}/", dir.display()), origin),
                None => text,
            };
            let first = rename(e.errors.first().map(|d| d.to_string()).unwrap_or_default());
            let (report, _) = policy::policy_check_report(&Err(e));
            Err(Refused::Invalid {
                report: rename(report).trim_end().to_owned(),
                errors,
                first,
            })
        }
    }
}

/// Writes `files` (paths relative to `dir`, as read from a git tree) under `dir`.
fn lay_out(dir: &Path, files: &crate::gitops::Files) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, bytes) in files {
        // Git trees cannot hold `..` or absolute names, but the scratch folder must never be
        // left whatever a tree says.
        if name.split('/').any(|p| p.is_empty() || p == "." || p == "..") {
            return Err(std::io::Error::other(format!(
                "unsafe path {name:?} in the repository"
            )));
        }
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, bytes)?;
    }
    Ok(())
}

/// What one reload came to, for the caller's report.
#[derive(Debug)]
pub enum Reloaded {
    /// The new set is in force.
    InForce { apps: usize, warnings: usize },
    /// The commit is already the one in force: nothing changed.
    Unchanged,
}

/// One reload: the config commit it read (none for the folder, or when the repository could
/// not be fetched) and what came of it.
#[derive(Debug)]
pub struct Reload {
    pub commit: Option<CommitSha>,
    pub outcome: Result<Reloaded, Refused>,
}

/// Loads from `source` and, when the set is valid, puts it in force. Blocking.
pub fn reload(source: &PolicySource, live: &LivePolicies) -> Reload {
    let (commit, loaded) = match &source.from {
        From::Folder { .. } => (None, source.load()),
        From::Repo { .. } => match source.fetch_tip() {
            Ok(tip) => (Some(tip.clone()), source.load_commit(&tip)),
            Err(e) => (None, Err(e)),
        },
    };
    let outcome = loaded.map(|loaded| {
        if matches!(loaded.origin, Origin::Commit(_)) && loaded.origin == live.origin() {
            return Reloaded::Unchanged;
        }
        let (apps, warnings) = (loaded.set.len(), loaded.set.warnings().len());
        live.replace(loaded.set, loaded.origin);
        Reloaded::InForce { apps, warnings }
    });
    Reload { commit, outcome }
}

/// The `auger/policies` status description for a reload's outcome (GitHub keeps 140
/// characters).
pub fn status_description(outcome: &Result<Reloaded, Refused>, in_force: usize) -> String {
    const TEMPLATE: &str = include_str!("../templates/policies/status.txt.tera");
    let mut ctx = tera::Context::new();
    match outcome {
        Ok(Reloaded::InForce { apps, warnings }) => {
            ctx.insert("kind", "loaded");
            ctx.insert("apps", apps);
            ctx.insert("warnings", warnings);
        }
        Ok(Reloaded::Unchanged) => {
            ctx.insert("kind", "loaded");
            ctx.insert("apps", &in_force);
            ctx.insert("warnings", &0);
        }
        Err(Refused::Invalid { errors, first, .. }) => {
            ctx.insert("kind", "refused");
            ctx.insert("errors", errors);
            ctx.insert("first", first);
        }
        Err(Refused::Unreadable(why)) => {
            ctx.insert("kind", "unreadable");
            ctx.insert("first", why);
        }
    }
    let text = tera::Tera::one_off(TEMPLATE, &ctx, false).unwrap_or_else(|e| {
        tracing::error!(error = %e, "policies status template failed");
        "policies reloaded".into()
    });
    clip(text.trim(), 140)
}

/// `text` cut to `max` characters, with an ellipsis when cut.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

impl Reload {
    /// The outcome's metric label.
    pub fn label(&self) -> &'static str {
        match &self.outcome {
            Ok(Reloaded::InForce { .. }) => "loaded",
            Ok(Reloaded::Unchanged) => "unchanged",
            Err(Refused::Invalid { .. }) => "invalid",
            Err(Refused::Unreadable(_)) => "unreadable",
        }
    }
}

/// Refreshes the config repository's git token (App installation tokens expire), then
/// reloads from `source` on a blocking thread and counts the outcome under `trigger`.
pub async fn reload_now(
    source: std::sync::Arc<PolicySource>,
    live: std::sync::Arc<LivePolicies>,
    forge: &dyn crate::forge::Forge,
    metrics: &crate::metrics::Metrics,
    trigger: &'static str,
) -> Reload {
    if let Some((config, cache)) = source.repo_cache()
        && cache.is_http()
    {
        match forge.git_token(&config.repo).await {
            Ok(Some(token)) => cache.set_token(Some(&token)),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, repo = %config.repo, "cannot get a token for the config repository")
            }
        }
    }
    let done = tokio::task::spawn_blocking(move || reload(&source, &live)).await;
    let done = done.unwrap_or_else(|e| Reload {
        commit: None,
        outcome: Err(Refused::Unreadable(format!("the reload stopped: {e}"))),
    });
    metrics.policy_reload(trigger, done.label());
    match &done.outcome {
        Ok(Reloaded::InForce { apps, warnings }) => {
            tracing::info!(trigger, commit = ?done.commit, apps, warnings, "policies reloaded")
        }
        Ok(Reloaded::Unchanged) => tracing::info!(trigger, commit = ?done.commit, "policies unchanged"),
        Err(e) => {
            tracing::error!(trigger, commit = ?done.commit, error = %e, "policies not reloaded; the previous ones stay")
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(errors: usize, first: &str) -> Result<Reloaded, Refused> {
        Err(Refused::Invalid {
            report: String::new(),
            errors,
            first: first.into(),
        })
    }

    #[test]
    fn the_status_says_what_is_in_force_or_why_not() {
        let loaded = Ok(Reloaded::InForce { apps: 3, warnings: 1 });
        assert_eq!(status_description(&loaded, 0), "in force: 3 policies, 1 warning");
        assert_eq!(
            status_description(&Ok(Reloaded::Unchanged), 1),
            "in force: 1 policy"
        );
        assert_eq!(
            status_description(&invalid(2, "web.toml: env.qa.merge: unknown"), 1),
            "refused, the previous policies stay: 2 errors, first: web.toml: env.qa.merge: unknown"
        );
        let unreadable = Err(Refused::Unreadable("cannot fetch acme/config".into()));
        assert_eq!(
            status_description(&unreadable, 1),
            "refused, the previous policies stay: cannot fetch acme/config"
        );
    }

    #[test]
    fn a_long_reason_is_cut_to_what_github_keeps() {
        let text = status_description(&invalid(1, &"x".repeat(300)), 1);
        assert_eq!(text.chars().count(), 140);
        assert!(text.ends_with('…'));
    }

    #[test]
    fn a_folder_reload_puts_a_valid_set_in_force_and_keeps_the_old_one_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let (policies, templates) = (dir.path().join("policies"), dir.path().join("templates"));
        std::fs::create_dir_all(templates.join("basic")).unwrap();
        std::fs::write(templates.join("basic/d.yaml.tera"), "x: 1\n").unwrap();
        std::fs::create_dir_all(&policies).unwrap();
        let policy = |app: &str, merge: &str| {
            format!(
                "app = \"{app}\"\nrepo = \"acme/{app}\"\ntemplate = \"basic\"\n[artifact]\nsignals = [\"status:ci\"]\n[env.staging]\nmerge = \"{merge}\"\n"
            )
        };
        std::fs::write(policies.join("web.toml"), policy("web", "direct")).unwrap();
        let source = PolicySource {
            from: From::Folder {
                policies: policies.clone(),
                templates,
            },
            names: GitopsNames {
                config: "auger.toml".into(),
                repos: Vec::new(),
            },
            targets: OnceLock::new(),
        };
        let live = LivePolicies::fixed(source.load().unwrap().set);

        std::fs::write(policies.join("api.toml"), policy("api", "direct")).unwrap();
        let done = reload(&source, &live);
        assert!(
            matches!(done.outcome, Ok(Reloaded::InForce { apps: 2, .. })),
            "{done:?}"
        );
        assert_eq!(live.current().len(), 2);

        std::fs::write(policies.join("api.toml"), policy("api", "sideways")).unwrap();
        let done = reload(&source, &live);
        let Err(Refused::Invalid { errors, first, .. }) = &done.outcome else {
            panic!("{done:?}")
        };
        assert_eq!(*errors, 1);
        assert!(first.contains("api.toml: env.staging.merge"), "{first}");
        assert_eq!(live.current().len(), 2, "the old set stays");
        assert_eq!(done.label(), "invalid");
    }

    #[test]
    fn a_tree_path_that_climbs_out_is_never_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = crate::gitops::Files::new();
        files.insert("../escape.toml".into(), b"x".to_vec());
        assert!(lay_out(&dir.path().join("in"), &files).is_err());
        assert!(!dir.path().join("escape.toml").exists());
    }
}
