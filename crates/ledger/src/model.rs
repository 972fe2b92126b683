//! The artifact record (version 1, design §6): what one green build of one app at one commit
//! is, and how two records of the same (app, sha) merge.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use auger_domain::{AppName, BranchName, CommitSha, NameError, RepoName, TagName};

/// The record version this build writes. Readers accept any version and keep fields they
/// do not know (see [`Artifact::extra`]).
pub const RECORD_VERSION: u32 = 1;

/// Hex digits of the sha in an artifact id: long enough to never collide in practice, short
/// enough to type in a PR comment.
pub const ID_SHA_LEN: usize = 12;

/// `<app>@<first 12 hex of the sha>`, e.g. `frontend@0123456789ab`. Derived from the identity
/// (app, sha), so the same build always gets the same id on every replica.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArtifactId {
    app: AppName,
    sha_prefix: String,
}

impl ArtifactId {
    pub fn for_artifact(app: &AppName, sha: &CommitSha) -> Self {
        Self {
            app: app.clone(),
            sha_prefix: sha.short(ID_SHA_LEN).to_owned(),
        }
    }

    pub fn app(&self) -> &AppName {
        &self.app
    }

    /// The hex prefix of the commit sha (at least 7 digits when parsed from user input).
    pub fn sha_prefix(&self) -> &str {
        &self.sha_prefix
    }
}

impl FromStr for ArtifactId {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        let bad = || NameError::Invalid {
            kind: "artifact id",
            value: s.chars().take(120).collect(),
            rule: "must be <app>@<7 to 40 lowercase hex digits of the commit sha>",
        };
        let (app, prefix) = s.split_once('@').ok_or_else(bad)?;
        let app = AppName::new(app)?;
        let hex_ok = (7..=40).contains(&prefix.len())
            && prefix
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hex_ok {
            return Err(bad());
        }
        Ok(Self {
            app,
            sha_prefix: prefix.to_owned(),
        })
    }
}

impl fmt::Display for ArtifactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.app, self.sha_prefix)
    }
}

impl Serialize for ArtifactId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ArtifactId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Which signal made the artifact: `status`, `check_run`, `workflow_run`, `api` or `cli`.
/// Kept as free text so a newer writer's kinds survive an older reader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub target_url: Option<String>,
}

/// One artifact record. Unknown fields (from a newer auger) are kept in `extra` and written
/// back unchanged, so a rolling upgrade never drops data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    pub v: u32,
    pub id: ArtifactId,
    pub app: AppName,
    pub repo: RepoName,
    pub sha: CommitSha,
    #[serde(default)]
    pub branches: Vec<BranchName>,
    #[serde(default)]
    pub tags: Vec<TagName>,
    #[serde(default)]
    pub pull_requests: Vec<u64>,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    /// When the source commit was made (its committer time), when the signal or CI said: where
    /// the DORA lead time starts. The first value recorded stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed: Option<DateTime<Utc>>,
    pub created: DateTime<Utc>,
    pub source: Source,
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// A veto (design §17): a rejected artifact never deploys automatically.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<Rejection>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Who rejected an artifact, when and why. The first rejection recorded stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// `@login`, `api <token>`, `cli:<user>`.
    pub by: String,
    #[serde(default)]
    pub reason: String,
    pub time: DateTime<Utc>,
}

/// Two records for the same (app, sha) that cannot be one artifact.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    #[error("artifact {id} is from repository {existing}, not {incoming}")]
    RepoMismatch {
        id: ArtifactId,
        existing: RepoName,
        incoming: RepoName,
    },
    #[error("cannot merge records of different artifacts ({a} and {b})")]
    DifferentIdentity { a: String, b: String },
}

impl Artifact {
    /// A fresh record with empty facts; callers add branches, tags, PRs and vars.
    pub fn new(app: AppName, repo: RepoName, sha: CommitSha, source: Source) -> Self {
        Self {
            v: RECORD_VERSION,
            id: ArtifactId::for_artifact(&app, &sha),
            app,
            repo,
            sha,
            branches: Vec::new(),
            tags: Vec::new(),
            pull_requests: Vec::new(),
            author: None,
            message: None,
            url: None,
            committed: None,
            created: Utc::now(),
            source,
            vars: BTreeMap::new(),
            rejected: None,
            extra: serde_json::Map::new(),
        }
    }

    /// Fold `newer` into `self`. Facts (branches, tags, PRs, vars, unknown fields) accumulate;
    /// what describes the build itself (created, source, commit author/message) stays as first
    /// recorded, because a later signal for the same commit is the same build.
    pub fn merge(&mut self, newer: &Artifact) -> Result<(), MergeError> {
        if self.app != newer.app || self.sha != newer.sha {
            return Err(MergeError::DifferentIdentity {
                a: format!("{}@{}", self.app, self.sha),
                b: format!("{}@{}", newer.app, newer.sha),
            });
        }
        if self.repo != newer.repo {
            return Err(MergeError::RepoMismatch {
                id: self.id.clone(),
                existing: self.repo.clone(),
                incoming: newer.repo.clone(),
            });
        }
        union_into(&mut self.branches, &newer.branches);
        union_into(&mut self.tags, &newer.tags);
        union_into(&mut self.pull_requests, &newer.pull_requests);
        for (k, v) in &newer.vars {
            self.vars.insert(k.clone(), v.clone());
        }
        fill(&mut self.author, &newer.author);
        fill(&mut self.message, &newer.message);
        fill(&mut self.url, &newer.url);
        if self.committed.is_none() {
            self.committed = newer.committed;
        }
        if newer.created < self.created {
            self.created = newer.created;
        }
        if self.rejected.is_none() {
            self.rejected.clone_from(&newer.rejected);
        }
        self.v = self.v.max(newer.v);
        for (k, v) in &newer.extra {
            self.extra.insert(k.clone(), v.clone());
        }
        Ok(())
    }

    /// The one-line JSON form stored in the note.
    pub fn to_json_line(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The short form people read: `frontend@0123456789ab (main, v1.2.0)`.
    pub fn label(&self) -> String {
        let mut facts: Vec<&str> = self.branches.iter().map(|b| b.as_str()).collect();
        facts.extend(self.tags.iter().map(|t| t.as_str()));
        if facts.is_empty() {
            self.id.to_string()
        } else {
            format!("{} ({})", self.id, facts.join(", "))
        }
    }
}

fn union_into<T: PartialEq + Clone>(into: &mut Vec<T>, from: &[T]) {
    for x in from {
        if !into.contains(x) {
            into.push(x.clone());
        }
    }
}

fn fill(into: &mut Option<String>, from: &Option<String>) {
    if into.as_deref().is_none_or(str::is_empty)
        && let Some(v) = from.as_deref().filter(|v| !v.is_empty())
    {
        *into = Some(v.to_owned());
    }
}

/// A bad line in a stored note: names the line so an operator can find it with plain git.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {source}")]
pub struct NoteLineError {
    pub line: usize,
    #[source]
    pub source: NoteLineProblem,
}

#[derive(Debug, thiserror::Error)]
pub enum NoteLineProblem {
    #[error("not an artifact record: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Merge(#[from] MergeError),
}

/// Fold the JSON lines of a note (oldest first) into the current record. Lines may repeat or
/// come in any order after a `cat_sort_uniq` merge of two replicas; merging is commutative for
/// the accumulated facts, so the result is the same.
pub fn fold_note(text: &str) -> Result<Option<Artifact>, NoteLineError> {
    let mut current: Option<Artifact> = None;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let rec: Artifact = serde_json::from_str(line).map_err(|e| NoteLineError {
            line: i + 1,
            source: e.into(),
        })?;
        match current.as_mut() {
            None => current = Some(rec),
            Some(cur) => cur.merge(&rec).map_err(|e| NoteLineError {
                line: i + 1,
                source: e.into(),
            })?,
        }
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    fn sample() -> Artifact {
        let mut a = Artifact::new(
            AppName::new("frontend").unwrap(),
            RepoName::new("acme/frontend").unwrap(),
            CommitSha::new(SHA).unwrap(),
            Source {
                kind: "status".into(),
                name: "ci/build".into(),
                target_url: None,
            },
        );
        a.branches.push(BranchName::new("main").unwrap());
        a
    }

    #[test]
    fn id_is_app_at_twelve_hex() {
        let a = sample();
        assert_eq!(a.id.to_string(), "frontend@0123456789ab");
        let parsed: ArtifactId = "frontend@0123456".parse().unwrap();
        assert_eq!(parsed.sha_prefix(), "0123456");
        for bad in [
            "frontend",
            "frontend@012",
            "Front@0123456",
            "x@0123456789XY",
            "../x@0123456",
        ] {
            assert!(bad.parse::<ArtifactId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn record_round_trips_and_keeps_unknown_fields() {
        let mut line: serde_json::Value = serde_json::from_str(&sample().to_json_line()).unwrap();
        line["from_the_future"] = serde_json::json!({"x": 1});
        let rec: Artifact = serde_json::from_value(line.clone()).unwrap();
        assert_eq!(rec.extra["from_the_future"]["x"], 1);
        let again: serde_json::Value = serde_json::from_str(&rec.to_json_line()).unwrap();
        assert_eq!(again, line);
    }

    #[test]
    fn second_signal_accumulates_facts_and_keeps_the_build() {
        let mut a = sample();
        let mut b = sample();
        b.branches = vec![BranchName::new("release/1.0").unwrap()];
        b.tags = vec![TagName::new("v1.0.0").unwrap()];
        b.pull_requests = vec![7];
        b.vars.insert("image".into(), "x@sha256:1".into());
        b.source.kind = "check_run".into();
        a.merge(&b).unwrap();
        assert_eq!(a.branches.len(), 2);
        assert_eq!(a.tags[0].as_str(), "v1.0.0");
        assert_eq!(a.pull_requests, vec![7]);
        assert_eq!(a.vars["image"], "x@sha256:1");
        assert_eq!(a.source.kind, "status", "the first signal made the build");
        a.merge(&b).unwrap();
        assert_eq!(a.branches.len(), 2, "merging twice changes nothing");
    }

    #[test]
    fn same_sha_from_another_repo_is_refused() {
        let mut a = sample();
        let mut b = sample();
        b.repo = RepoName::new("evil/frontend").unwrap();
        assert!(matches!(a.merge(&b), Err(MergeError::RepoMismatch { .. })));
    }

    #[test]
    fn corrupt_note_line_is_named() {
        let text = format!("{}\n{{not json\n", sample().to_json_line());
        let err = fold_note(&text).unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.to_string().starts_with("line 2: not an artifact record"));
    }
}
