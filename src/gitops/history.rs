//! Release history read back from the gitops repository (design §7): the first-parent log of
//! the gitops branch, its commits' trailers and the `release.json` they wrote.
//!
//! Pull requests merged with a merge commit put the release commit on the second parent; the
//! merge commit itself says nothing, so for a merge without auger trailers the second parent
//! is read instead. The record's `commit` and `time` are then the merge's: the moment the
//! release reached the branch. Commits without auger trailers (human edits) are skipped.
//! Reads use the cache as last fetched; call [`GitopsRepo::fetch`] first for fresh data.

use chrono::{DateTime, Utc};
use gix::ObjectId;
use gix::bstr::ByteSlice;

use super::record::{
    RELEASE_FILE, ReleaseInfo, SourceRef, TRAILER_ACTION, TRAILER_APP, TRAILER_ARTIFACT, TRAILER_ENV,
    TRAILER_ROLLBACK_TO, TRAILER_SOURCE, TRAILER_TRIGGER, Trailer, Trigger, parse_trailers, trailer,
};
use super::writer::{GitopsRepo, Result, folder, read_record, to_sha, tracking_tip};
use crate::artifact::ArtifactId;
use crate::domain::{AppName, CommitSha, EnvName};

/// One release as the gitops branch records it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseRecord {
    /// The commit on the gitops branch's first-parent line that brought the release in.
    pub commit: CommitSha,
    /// Its committer time: when the release landed on the branch.
    pub time: DateTime<Utc>,
    pub env: EnvName,
    pub app: AppName,
    pub artifact: ArtifactId,
    pub source: SourceRef,
    pub trigger: Trigger,
    pub rollback_to: Option<ArtifactId>,
    /// The subject line of the release commit.
    pub message: String,
    /// `<env>/<app>/release.json` as of that commit, when readable.
    pub release: Option<Box<ReleaseInfo>>,
}

/// A release or the removal of a folder (preview cleanup).
#[derive(Debug, Clone, PartialEq)]
pub enum HistoryEntry {
    Release(ReleaseRecord),
    Removal {
        commit: CommitSha,
        time: DateTime<Utc>,
        env: EnvName,
        app: AppName,
        message: String,
    },
}

impl HistoryEntry {
    pub fn env(&self) -> &EnvName {
        match self {
            HistoryEntry::Release(r) => &r.env,
            HistoryEntry::Removal { env, .. } => env,
        }
    }

    pub fn app(&self) -> &AppName {
        match self {
            HistoryEntry::Release(r) => &r.app,
            HistoryEntry::Removal { app, .. } => app,
        }
    }
}

/// Which entries to return; everything by default.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    pub env: Option<EnvName>,
    pub app: Option<AppName>,
    /// At most this many entries (after filtering).
    pub limit: Option<usize>,
}

impl HistoryFilter {
    pub fn for_pair(env: &EnvName, app: &AppName) -> Self {
        Self {
            env: Some(env.clone()),
            app: Some(app.clone()),
            limit: None,
        }
    }

    fn accepts(&self, env: &EnvName, app: &AppName) -> bool {
        self.env.as_ref().is_none_or(|x| x == env) && self.app.as_ref().is_none_or(|x| x == app)
    }
}

impl GitopsRepo {
    /// Releases and removals, newest first.
    pub fn history(&self, filter: &HistoryFilter) -> Result<Vec<HistoryEntry>> {
        let mut out = Vec::new();
        self.walk(|e| {
            if filter.accepts(e.env(), e.app()) {
                out.push(e);
            }
            filter.limit.is_none_or(|l| out.len() < l)
        })?;
        Ok(out)
    }

    /// Releases only, newest first.
    pub fn releases(&self, filter: &HistoryFilter) -> Result<Vec<ReleaseRecord>> {
        self.releases_since(filter, DateTime::<Utc>::MIN_UTC)
    }

    /// Releases that landed at `since` or later, newest first: the walk stops at the first
    /// older entry of the first-parent line, so a long history is not read to its start.
    pub fn releases_since(&self, filter: &HistoryFilter, since: DateTime<Utc>) -> Result<Vec<ReleaseRecord>> {
        let mut out = Vec::new();
        self.walk(|e| {
            let time = match &e {
                HistoryEntry::Release(r) => r.time,
                HistoryEntry::Removal { time, .. } => *time,
            };
            if time < since {
                return false;
            }
            if let HistoryEntry::Release(r) = e
                && filter.accepts(&r.env, &r.app)
            {
                out.push(r);
            }
            filter.limit.is_none_or(|l| out.len() < l)
        })?;
        Ok(out)
    }

    /// What is live in (env, app): the newest release, unless a removal came after it.
    pub fn current(&self, env: &EnvName, app: &AppName) -> Result<Option<ReleaseRecord>> {
        let filter = HistoryFilter {
            limit: Some(1),
            ..HistoryFilter::for_pair(env, app)
        };
        Ok(match self.history(&filter)?.into_iter().next() {
            Some(HistoryEntry::Release(r)) => Some(r),
            _ => None,
        })
    }

    /// Calls `visit` for each entry along the first-parent log, newest first, until it says
    /// stop (returns false).
    fn walk(&self, mut visit: impl FnMut(HistoryEntry) -> bool) -> Result<()> {
        let repo = self.gix();
        let mut next = tracking_tip(&repo, self.branch().as_str())?;
        while let Some(id) = next {
            let commit = repo.find_commit(id)?;
            let parents: Vec<ObjectId> = commit.parent_ids().map(|p| p.detach()).collect();
            let time = commit
                .time()
                .ok()
                .and_then(|t| DateTime::from_timestamp(t.seconds, 0))
                .unwrap_or_default();
            let mut source_commit = id;
            let mut message = commit.message_raw_sloppy().to_str_lossy().into_owned();
            let mut trailers = parse_trailers(&message);
            if trailer(&trailers, TRAILER_APP).is_none() {
                // A merge of a gitops pull request: the release commit is a later parent.
                for p in parents.iter().skip(1) {
                    let m = repo
                        .find_commit(*p)?
                        .message_raw_sloppy()
                        .to_str_lossy()
                        .into_owned();
                    let t = parse_trailers(&m);
                    if trailer(&t, TRAILER_APP).is_some() {
                        (source_commit, message, trailers) = (*p, m, t);
                        break;
                    }
                }
            }
            if let Some(entry) = entry(&repo, id, source_commit, time, &message, &trailers)?
                && !visit(entry)
            {
                break;
            }
            next = parents.first().copied();
        }
        Ok(())
    }
}

/// The history entry a commit stands for, if its trailers make one.
fn entry(
    repo: &gix::Repository,
    landed: ObjectId,
    release_commit: ObjectId,
    time: DateTime<Utc>,
    message: &str,
    trailers: &[Trailer],
) -> Result<Option<HistoryEntry>> {
    let names = (
        trailer(trailers, TRAILER_ENV).and_then(|e| EnvName::new(e).ok()),
        trailer(trailers, TRAILER_APP).and_then(|a| AppName::new(a).ok()),
    );
    let (Some(env), Some(app)) = names else {
        return Ok(None);
    };
    let subject = message.lines().next().unwrap_or("").to_owned();
    if trailer(trailers, TRAILER_ACTION) == Some("remove") {
        return Ok(Some(HistoryEntry::Removal {
            commit: to_sha(landed),
            time,
            env,
            app,
            message: subject,
        }));
    }
    let artifact = trailer(trailers, TRAILER_ARTIFACT).and_then(|a| a.parse::<ArtifactId>().ok());
    let source = trailer(trailers, TRAILER_SOURCE).and_then(|s| s.parse::<SourceRef>().ok());
    let (Some(artifact), Some(source)) = (artifact, source) else {
        tracing::warn!(commit = %landed, "gitops history: auger trailers without a readable artifact or source; skipped");
        return Ok(None);
    };
    let trigger = trailer(trailers, TRAILER_TRIGGER)
        .map(|t| t.parse().unwrap_or(Trigger::Other(t.to_owned())))
        .unwrap_or(Trigger::Other(String::new()));
    let rollback_to = trailer(trailers, TRAILER_ROLLBACK_TO).and_then(|a| a.parse().ok());
    // A record that does not parse any more is history all the same: keep the trailers' view.
    let path = format!("{}/{RELEASE_FILE}", folder(&env, &app));
    let release = read_record(repo, release_commit, &path)
        .ok()
        .flatten()
        .map(Box::new);
    Ok(Some(HistoryEntry::Release(ReleaseRecord {
        commit: to_sha(landed),
        time,
        env,
        app,
        artifact,
        source,
        trigger,
        rollback_to,
        message: subject,
        release,
    })))
}
