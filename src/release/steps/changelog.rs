//! What a release pull request tells its reviewers beyond the plan: the source commits from
//! the artifact the env runs to the proposed one (GitHub's compare, each commit's pull
//! requests), and the gitops change itself. Neither may hold a release up: what cannot be read
//! is said in the body instead. A pull request auger merges at once has no reviewer: it gets
//! the compare link alone, which keeps such a release within its REST budget (design §14).

use futures_util::StreamExt;

use super::blocking;
use crate::artifact::Artifact;
use crate::domain::{CommitSha, EnvName};
use crate::forge::Forge;
use crate::release::Releaser;
use crate::release::text::{CHANGELOG_MAX, Changelog, GitopsDiff, Notes};

/// Pull request look-ups in flight at once: enough to keep 50 short, few enough for GitHub.
const PULL_LOOKUPS: usize = 4;

impl Releaser {
    /// The changelog for `artifact` in `env`, and the diff of gitops commit `head`.
    pub(super) async fn release_notes(
        &self,
        forge: &dyn Forge,
        env: &EnvName,
        artifact: &Artifact,
        head: &CommitSha,
        reviewed: bool,
    ) -> Notes {
        let changelog = self.changelog(forge, env, artifact, reviewed).await;
        let gitops = self.target(env, &artifact.app).cache.clone();
        let commit = head.clone();
        let diff = match blocking(move || gitops.commit_diff(&commit)).await {
            Ok(diff) => Some(GitopsDiff::new(&diff)),
            Err(e) => {
                tracing::warn!(error = %e, commit = %head, "cannot read the gitops diff for the release pull request");
                None
            }
        };
        Notes { changelog, diff }
    }

    async fn changelog(
        &self,
        forge: &dyn Forge,
        env: &EnvName,
        artifact: &Artifact,
        reviewed: bool,
    ) -> Changelog {
        let store = self.store.clone();
        let (e, app) = (env.clone(), artifact.app.clone());
        let live = match blocking(move || store.released(&e, &app)).await {
            Ok(live) => live,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read what the env runs for the changelog");
                return Changelog {
                    state: "unreadable",
                    error: e.to_string(),
                    ..Changelog::default()
                };
            }
        };
        let Some(live) = live else {
            return Changelog::first();
        };
        if live.sha == artifact.sha {
            return Changelog::same(&live.id);
        }
        if live.repo != artifact.repo {
            return Changelog::other_repo(&live.id);
        }
        if !reviewed {
            // The repository's link is asked once per process: no call per release.
            return match forge.repo_html_url(&artifact.repo).await {
                Ok(base) => Changelog::linked(
                    &live.id,
                    format!("{base}/compare/{}...{}", live.sha, artifact.sha),
                ),
                Err(e) => Changelog::unreadable(&live.id, e),
            };
        }
        let compare = match forge.compare(&artifact.repo, &live.sha, &artifact.sha).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, from = %live.id, to = %artifact.id, "cannot read the changelog");
                return Changelog::unreadable(&live.id, e);
            }
        };
        let shown: Vec<CommitSha> = compare
            .commits
            .iter()
            .rev()
            .take(CHANGELOG_MAX)
            .map(|c| c.sha.clone())
            .collect();
        let repo = &artifact.repo;
        // A commit whose pull requests cannot be read is listed without them.
        let pulls: std::collections::HashMap<CommitSha, Vec<u64>> = futures_util::stream::iter(shown)
            .map(|sha| async move {
                let numbers = match forge.pulls_for_commit(repo, &sha).await {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!(error = %e, commit = %sha, "cannot read the pull requests of a commit");
                        Vec::new()
                    }
                };
                (sha, numbers)
            })
            .buffered(PULL_LOOKUPS)
            .collect()
            .await;
        Changelog::listed(&live.id, repo, &compare, |sha| {
            pulls.get(sha).cloned().unwrap_or_default()
        })
    }
}
