//! The audit view of the gitops history (design §7, §9): what `auger release list`,
//! `GET /api/v1/releases` and `GET /api/v1/environments` show. Plain serde data derived from
//! [`ReleaseRecord`]s; like the history reader, it reads the cache as last fetched.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::history::{HistoryEntry, HistoryFilter, ReleaseRecord};
use super::record::Trigger;
use super::writer::{GitopsRepo, Result};
use crate::artifact::ArtifactId;
use crate::domain::{AppName, CommitSha, EnvName, RepoName};

/// One release, as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReleaseView {
    /// The gitops commit that brought the release onto the branch.
    pub commit: CommitSha,
    /// When it landed on the branch.
    pub time: DateTime<Utc>,
    pub env: EnvName,
    pub app: AppName,
    pub artifact: ArtifactId,
    pub source_repo: RepoName,
    pub source_sha: CommitSha,
    pub trigger: Trigger,
    pub rollback_to: Option<ArtifactId>,
    /// A later release of the same (env, app) exists.
    pub superseded: bool,
    /// A rollback: it names the artifact it went back to, or a rollback triggered it.
    pub rollback: bool,
    /// Subject line of the release commit.
    pub message: String,
    /// The gitops repository the release is in, when read across several
    /// ([`super::GitopsTargets`]); `None` from one cache's own reader.
    pub gitops_repo: Option<RepoName>,
}

/// What runs in one (env, app): its current release.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvironmentView {
    pub env: EnvName,
    pub app: AppName,
    pub artifact: ArtifactId,
    pub commit: CommitSha,
    /// When the current release landed.
    pub since: DateTime<Utc>,
    /// The trigger of the current release.
    pub released_by: Trigger,
    /// Whether automatic deploys are held. The hold state lives in the ledger, so the history
    /// reader leaves this `None`; the API fills it in.
    pub on_hold: Option<bool>,
    /// Open gitops pull requests for (env, app). Reading them needs the forge, which the
    /// history reader does not use: empty here (the dashboard asks GitHub).
    pub pending_prs: Vec<PendingPr>,
    /// The gitops repository (env, app) writes to, when read across several
    /// ([`super::GitopsTargets`]); `None` from one cache's own reader.
    pub gitops_repo: Option<RepoName>,
}

/// An open gitops pull request waiting to release an artifact.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PendingPr {
    pub number: u64,
    pub artifact: ArtifactId,
}

/// Views of `records`, which must be newest first and hold every release of each (env, app)
/// that is newer than the oldest one listed, as [`GitopsRepo::releases`] returns them for any
/// filter and limit: then "superseded" is exactly "a pair seen before in the list".
pub fn release_views(records: Vec<ReleaseRecord>) -> Vec<ReleaseView> {
    let mut seen: HashSet<(EnvName, AppName)> = HashSet::new();
    records
        .into_iter()
        .map(|r| {
            let superseded = !seen.insert((r.env.clone(), r.app.clone()));
            let rollback = r.rollback_to.is_some() || r.trigger.is_rollback();
            ReleaseView {
                commit: r.commit,
                time: r.time,
                env: r.env,
                app: r.app,
                artifact: r.artifact,
                source_repo: r.source.repo,
                source_sha: r.source.sha,
                trigger: r.trigger,
                rollback_to: r.rollback_to,
                superseded,
                rollback,
                message: r.message,
                gitops_repo: None,
            }
        })
        .collect()
}

/// What runs where, from history newest first: each pair's newest entry, if it is a release
/// (a later removal means nothing runs there any more, as [`GitopsRepo::current`] says).
/// Sorted by env, then app.
pub fn environment_views(history: Vec<HistoryEntry>) -> Vec<EnvironmentView> {
    let mut seen: HashSet<(EnvName, AppName)> = HashSet::new();
    let mut out: Vec<EnvironmentView> = history
        .into_iter()
        .filter(|e| seen.insert((e.env().clone(), e.app().clone())))
        .filter_map(|e| match e {
            HistoryEntry::Release(r) => Some(EnvironmentView {
                env: r.env,
                app: r.app,
                artifact: r.artifact,
                commit: r.commit,
                since: r.time,
                released_by: r.trigger,
                on_hold: None,
                pending_prs: Vec::new(),
                gitops_repo: None,
            }),
            HistoryEntry::Removal { .. } => None,
        })
        .collect();
    out.sort_by(|a, b| (&a.env, &a.app).cmp(&(&b.env, &b.app)));
    out
}

impl GitopsRepo {
    /// [`release_views`] of the releases `filter` selects, newest first.
    pub fn release_views(&self, filter: &HistoryFilter) -> Result<Vec<ReleaseView>> {
        Ok(release_views(self.releases(filter)?))
    }

    /// [`environment_views`] of the whole history: one walk, not one per pair.
    pub fn environments(&self) -> Result<Vec<EnvironmentView>> {
        Ok(environment_views(self.history(&HistoryFilter::default())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitops::SourceRef;

    fn record(n: u8, env: &str, app: &str, rollback_to: Option<&str>) -> ReleaseRecord {
        let sha = |n: u8| CommitSha::new(format!("{n:02x}").repeat(20)).unwrap();
        ReleaseRecord {
            commit: sha(n),
            time: DateTime::from_timestamp(1_700_000_000 + i64::from(n), 0).unwrap(),
            env: EnvName::new(env).unwrap(),
            app: AppName::new(app).unwrap(),
            artifact: format!("{app}@{}", sha(n + 100)).parse().unwrap(),
            source: SourceRef {
                repo: RepoName::new(format!("acme/{app}")).unwrap(),
                sha: sha(n + 100),
            },
            trigger: Trigger::Policy,
            rollback_to: rollback_to.map(|a| a.parse().unwrap()),
            message: format!("release {n}"),
            release: None,
        }
    }

    #[test]
    fn only_the_newest_release_of_a_pair_is_not_superseded() {
        let to = format!("web@{}", "aa".repeat(20));
        let views = release_views(vec![
            record(4, "staging", "web", Some(&to)),
            record(3, "production", "api", None),
            record(2, "staging", "web", None),
            record(1, "production", "web", None),
        ]);
        let flags: Vec<(bool, bool)> = views.iter().map(|v| (v.superseded, v.rollback)).collect();
        assert_eq!(
            flags,
            [(false, true), (false, false), (true, false), (false, false)]
        );
        let json = serde_json::to_value(&views[0]).unwrap();
        assert_eq!(json["trigger"], "policy");
        assert_eq!(json["rollback_to"], to.as_str());
        assert_eq!(json["source_repo"], "acme/web");
    }

    #[test]
    fn environments_are_the_newest_release_per_pair_unless_removed() {
        let removal = HistoryEntry::Removal {
            commit: CommitSha::new("ff".repeat(20)).unwrap(),
            time: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            env: EnvName::new("preview").unwrap(),
            app: AppName::new("web-pr-1").unwrap(),
            message: "remove".into(),
        };
        let envs = environment_views(vec![
            removal,
            HistoryEntry::Release(record(3, "staging", "web", None)),
            HistoryEntry::Release(record(2, "preview", "web-pr-1", None)),
            HistoryEntry::Release(record(1, "staging", "web", None)),
        ]);
        assert_eq!(envs.len(), 1);
        assert_eq!(envs[0].commit, record(3, "staging", "web", None).commit);
        assert_eq!(envs[0].on_hold, None);
    }
}
