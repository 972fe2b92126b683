//! The artifact ledger: a bare git repository that plain `git` can read (design §6).
//!
//! * `refs/notes/auger/artifacts/<app>`: git notes keyed by source commit. A note holds JSON
//!   lines, one record snapshot per write, newest last. The note tree uses a fixed fanout of one
//!   level (`ab/cdef…`), which `git notes` reads natively and which keeps each write to two
//!   small trees instead of one tree holding every artifact. The ref's commit log is the app's
//!   artifact log: each commit message lists `+ <id> <sha>` for new and `~ <id> <sha>` for
//!   updated artifacts.
//! * `refs/auger/branches/<app>/<percent-encoded branch>`: the newest artifact built from that
//!   branch, as a commit whose tree holds `artifact.json`; first-parent log = build history.
//! * `refs/auger/envs/<env>/<app>`: the artifact released in that environment, same shape.
//!
//! Every write is objects first, then one reference transaction holding every ref it moves,
//! each with compare-and-swap on the value read at the start. A crash before the transaction
//! leaves only unreachable objects (the old state); a lost race re-reads and replays, and since
//! merging a record is idempotent, a replay never duplicates.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auger_domain::{AppName, BranchName, CommitSha, EnvName, TagName};
use gix::ObjectId;
use gix::bstr::ByteSlice;
use gix::objs::tree::EntryKind;

use crate::git::{
    ARTIFACT_FILE, Attempt, BRANCHES_PREFIX, ENVS_PREFIX, MAX_ATTEMPTS, NOTES_PREFIX, Repo, Result,
    StoreError, apply, blob_text, cas_edit, commit_tree, ref_id, write_commit, write_commit_at,
};
use crate::model::{Artifact, ArtifactId, MergeError, fold_note};
use crate::pack;
use crate::remote::{Remote, SyncReport};

/// Batches of at least this many artifacts are written as one pack instead of loose objects.
const PACK_MIN_BATCH: usize = 64;

/// What [`ArtifactStore::record`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordOutcome {
    /// First signal for this (app, sha).
    Created(Artifact),
    /// Known artifact that gained facts (a branch, a tag, a PR, vars).
    Updated(Artifact),
    /// Nothing new: a redelivery or a replay.
    Unchanged(Artifact),
}

impl RecordOutcome {
    pub fn artifact(&self) -> &Artifact {
        match self {
            RecordOutcome::Created(a) | RecordOutcome::Updated(a) | RecordOutcome::Unchanged(a) => a,
        }
    }
}

/// Narrows [`ArtifactStore::list`].
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub branch: Option<BranchName>,
    pub tag: Option<TagName>,
    pub pull_request: Option<u64>,
}

impl ListFilter {
    fn accepts(&self, a: &Artifact) -> bool {
        self.branch.as_ref().is_none_or(|b| a.branches.contains(b))
            && self.tag.as_ref().is_none_or(|t| a.tags.contains(t))
            && self.pull_request.is_none_or(|n| a.pull_requests.contains(&n))
    }
}

/// The git-backed artifact ledger. Cheap to share between threads (`Arc<ArtifactStore>`);
/// several processes may write the same repository at once.
pub struct ArtifactStore {
    repo: Repo,
    /// Locked only while `repo` is held, so the two locks never invert.
    cache: Mutex<ReadCache>,
    remote: Option<Remote>,
}

/// Decoded note trees and folded note blobs, keyed by object id. Objects are immutable, so an
/// entry can never be stale whatever another process wrote: only refs move, and every read
/// still resolves the ref afresh. Bounded by dropping everything when full, which is cheap and
/// only costs re-decoding.
#[derive(Default)]
struct ReadCache {
    trees: HashMap<ObjectId, Arc<TreeIndex>>,
    records: HashMap<ObjectId, Artifact>,
}

/// Entry name → (object, kind).
type TreeIndex = HashMap<Box<[u8]>, (ObjectId, Kind)>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Blob,
    Tree,
    Other,
}

/// The fanout root plus the 256 subtrees, several generations of them.
const MAX_CACHED_TREES: usize = 2048;
/// About 1 KB each in memory.
const MAX_CACHED_RECORDS: usize = 32 * 1024;

impl ReadCache {
    fn tree(&mut self, repo: &gix::Repository, id: ObjectId) -> Result<Arc<TreeIndex>> {
        if let Some(t) = self.trees.get(&id) {
            return Ok(Arc::clone(t));
        }
        let tree = repo.find_tree(id)?;
        let mut index = TreeIndex::new();
        for e in tree.iter() {
            let e = e.map_err(StoreError::git)?;
            let mode = e.mode();
            let kind = if mode.is_blob() {
                Kind::Blob
            } else if mode.is_tree() {
                Kind::Tree
            } else {
                Kind::Other
            };
            index.insert(e.filename().to_vec().into(), (e.object_id(), kind));
        }
        if self.trees.len() >= MAX_CACHED_TREES {
            self.trees.clear();
        }
        let index = Arc::new(index);
        self.trees.insert(id, Arc::clone(&index));
        Ok(index)
    }

    /// [`find_note`] through decoded trees: hash lookups instead of scanning two trees, same
    /// candidates in the same order.
    fn find_note(
        &mut self,
        repo: &gix::Repository,
        tree: ObjectId,
        sha: &CommitSha,
    ) -> Result<Option<(String, ObjectId)>> {
        let s = sha.as_str();
        let (fan, rest) = s.split_at(2);
        let root = self.tree(repo, tree)?;
        let sub = match root.get(fan.as_bytes()) {
            Some(&(id, Kind::Tree)) => Some(self.tree(repo, id)?),
            _ => None,
        };
        if let Some(&(blob, Kind::Blob)) = sub.as_ref().and_then(|t| t.get(rest.as_bytes())) {
            return Ok(Some((format!("{fan}/{rest}"), blob)));
        }
        if let Some(&(blob, Kind::Blob)) = root.get(s.as_bytes()) {
            return Ok(Some((s.to_owned(), blob)));
        }
        let (fan2, rest2) = rest.split_at(2);
        if let Some(&(id, Kind::Tree)) = sub.as_ref().and_then(|t| t.get(fan2.as_bytes()))
            && let Some(&(blob, Kind::Blob)) = self.tree(repo, id)?.get(rest2.as_bytes())
        {
            return Ok(Some((format!("{fan}/{fan2}/{rest2}"), blob)));
        }
        Ok(None)
    }

    fn record(&self, blob: ObjectId) -> Option<Artifact> {
        self.records.get(&blob).cloned()
    }

    fn keep_record(&mut self, blob: ObjectId, a: &Artifact) {
        if self.records.len() >= MAX_CACHED_RECORDS {
            self.records.clear();
        }
        self.records.insert(blob, a.clone());
    }
}

impl std::fmt::Debug for ArtifactStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArtifactStore")
            .field("path", &self.repo.path())
            .field("remote", &self.remote.as_ref().map(|r| r.url()))
            .finish()
    }
}

impl ArtifactStore {
    /// Open an existing ledger. A missing or non-repository path is an error that names it.
    pub fn open(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(StoreError::Open {
                path: path.to_owned(),
                reason:
                    "does not exist (it is created by the first recorded artifact, or check `artifacts.path`)"
                        .into(),
            });
        }
        // Every large batch adds a pack, and gix's object store can only learn of as many
        // pack indices per process as it has slots (32 by default): leave room for the
        // `pack::MAX_PACKS` auger writes before it falls back to loose objects.
        let slots = gix::odb::store::init::Slots::AsNeededByDiskState {
            multiplier: 2.0,
            minimum: 4 * pack::MAX_PACKS,
        };
        let options = gix::open::Options::isolated().object_store_slots(slots);
        let repo = gix::open_opts(path, options).map_err(|e| StoreError::Open {
            path: path.to_owned(),
            reason: format!("not a git repository: {e}"),
        })?;
        if !repo.is_bare() {
            return Err(StoreError::Open {
                path: path.to_owned(),
                reason: "is a repository with a work tree; the ledger must be a bare repository".into(),
            });
        }
        let store = Self::from_repo(path, repo);
        for app in store.apps()? {
            store.repair(&app)?;
        }
        Ok(store)
    }

    /// Open the ledger, creating an empty bare repository if nothing is there yet.
    pub fn open_or_init(path: &Path) -> Result<Self> {
        if path.exists() && path.read_dir().map(|mut d| d.next().is_some()).unwrap_or(true) {
            return Self::open(path);
        }
        std::fs::create_dir_all(path).map_err(|e| StoreError::Open {
            path: path.to_owned(),
            reason: format!("cannot create: {e}"),
        })?;
        let repo = gix::init_bare(path).map_err(|e| StoreError::Open {
            path: path.to_owned(),
            reason: format!("cannot initialise a bare repository: {e}"),
        })?;
        drop(repo);
        Self::open(path)
    }

    fn from_repo(path: &Path, mut repo: gix::Repository) -> Self {
        // Trees of the notes fanout are read on every lookup; keep them decoded.
        repo.object_cache_size_if_unset(32 * 1024 * 1024);
        Self {
            repo: Repo::new(path, repo),
            cache: Mutex::new(ReadCache::default()),
            remote: None,
        }
    }

    /// Attach a remote (design §6): fetch and reconcile now; from then on every write is
    /// pushed. An unreachable remote is not fatal: writes stay local until a later push works.
    pub fn with_remote(mut self, url: &str) -> Result<(Self, SyncReport)> {
        self.remote = Some(Remote::new(url));
        let report = self.sync();
        Ok((self, report))
    }

    pub fn path(&self) -> &Path {
        self.repo.path()
    }

    /// Fetch from the remote, fold in what others wrote, push what is only here. Returns what
    /// happened; errors are in the report so callers can log them and go on.
    pub fn sync(&self) -> SyncReport {
        match &self.remote {
            Some(remote) => remote.sync(&self.repo),
            None => SyncReport::default(),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, ReadCache> {
        // The cache holds only whole entries keyed by immutable ids, so a poisoned one is sound.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn repo(&self) -> std::sync::MutexGuard<'_, gix::Repository> {
        self.repo.lock()
    }

    // ----- reads -------------------------------------------------------------------------

    /// The artifact of `app` built from `sha`, if any.
    pub fn get(&self, app: &AppName, sha: &CommitSha) -> Result<Option<Artifact>> {
        let repo = self.repo();
        let tip = ref_id(&repo, &notes_ref(app))?;
        let Some(tip) = tip else { return Ok(None) };
        let tree = commit_tree(&repo, tip)?;
        let mut cache = self.cache();
        let Some((_, blob)) = cache.find_note(&repo, tree, sha)? else {
            return Ok(None);
        };
        if let Some(a) = cache.record(blob) {
            return Ok(Some(a));
        }
        let text = blob_text(&repo, blob)?;
        let folded = fold_note(&text).map_err(|source| StoreError::CorruptNote {
            app: app.clone(),
            sha: sha.clone(),
            reference: notes_ref(app),
            source: Box::new(source),
        })?;
        if let Some(a) = &folded {
            cache.keep_record(blob, a);
        }
        Ok(folded)
    }

    /// Resolve an id (`app@prefix`; a full 40-hex prefix is a direct lookup).
    /// Rejects the artifact `id` (design §17): the fact is added to its record like any other,
    /// so it replicates and `git log` shows it. `None`: no such artifact. A second rejection
    /// changes nothing (the first stands: [`RecordOutcome::Unchanged`]).
    pub fn reject(&self, id: &ArtifactId, rejection: &crate::Rejection) -> Result<Option<RecordOutcome>> {
        let Some(mut a) = self.get_by_id(id)? else {
            return Ok(None);
        };
        a.rejected = Some(rejection.clone());
        self.record(&a).map(Some)
    }

    pub fn get_by_id(&self, id: &ArtifactId) -> Result<Option<Artifact>> {
        let shas = self.shas_with_prefix(id.app(), id.sha_prefix())?;
        match shas.as_slice() {
            [] => Ok(None),
            [sha] => self.get(id.app(), sha),
            many => Err(StoreError::Ambiguous {
                id: id.to_string(),
                matches: many.iter().map(|s| format!("{}@{}", id.app(), s)).collect(),
            }),
        }
    }

    /// Every artifact whose commit starts with `prefix` (7–40 hex), across all apps.
    pub fn find_by_sha_prefix(&self, prefix: &str) -> Result<Vec<Artifact>> {
        let mut out = Vec::new();
        for app in self.apps()? {
            for sha in self.shas_with_prefix(&app, prefix)? {
                if let Some(a) = self.get(&app, &sha)? {
                    out.push(a);
                }
            }
        }
        Ok(out)
    }

    fn shas_with_prefix(&self, app: &AppName, prefix: &str) -> Result<Vec<CommitSha>> {
        if prefix.len() < 2 {
            return Ok(Vec::new());
        }
        if let Ok(full) = CommitSha::new(prefix) {
            return Ok(self.get(app, &full)?.map(|a| vec![a.sha]).unwrap_or_default());
        }
        let repo = self.repo();
        let Some(tip) = ref_id(&repo, &notes_ref(app))? else {
            return Ok(Vec::new());
        };
        let tree = repo.find_tree(commit_tree(&repo, tip)?)?;
        let (fan, rest) = prefix.split_at(2);
        let mut out = Vec::new();
        if let Some(sub) = tree.find_entry(fan) {
            let sub = repo.find_tree(sub.object_id())?;
            for e in sub.iter() {
                let e = e.map_err(StoreError::git)?;
                let name = e.filename().to_str_lossy();
                if name.starts_with(rest)
                    && let Ok(sha) = CommitSha::new(format!("{fan}{name}"))
                {
                    out.push(sha);
                }
            }
        }
        Ok(out)
    }

    /// Apps with at least one artifact.
    pub fn apps(&self) -> Result<Vec<AppName>> {
        let repo = self.repo();
        let mut out = Vec::new();
        for r in repo.references()?.prefixed(NOTES_PREFIX)? {
            let r = r.map_err(|e| StoreError::Refs(e.to_string()))?;
            let name = r.name().as_bstr().to_str_lossy();
            if let Some(app) = name.strip_prefix(NOTES_PREFIX).and_then(|a| AppName::new(a).ok()) {
                out.push(app);
            }
        }
        Ok(out)
    }

    /// The newest artifact built from `branch`: one ref read, one blob, one note lookup.
    pub fn latest(&self, app: &AppName, branch: &BranchName) -> Result<Option<Artifact>> {
        self.artifact_at_ref(app, &branch_ref(app, branch))
    }

    /// What is released in `env` for `app`.
    pub fn released(&self, env: &EnvName, app: &AppName) -> Result<Option<Artifact>> {
        self.artifact_at_ref(app, &env_ref(env, app))
    }

    /// Read the snapshot a branch or env ref points at, then the current record from the note
    /// (tags or PRs may have been added since the ref moved).
    /// What [`Self::released`] answers, with the time the env ref was moved to it (the time
    /// of the ref's commit): `after = { env, soak }` gates count the soak from there.
    pub fn released_at(
        &self,
        env: &EnvName,
        app: &AppName,
    ) -> Result<Option<(Artifact, chrono::DateTime<chrono::Utc>)>> {
        let reference = env_ref(env, app);
        let (snapshot, seconds) = {
            let repo = self.repo();
            let Some(tip) = ref_id(&repo, &reference)? else {
                return Ok(None);
            };
            let seconds = repo.find_commit(tip)?.time().map_err(StoreError::git)?.seconds;
            (read_snapshot(&repo, tip, &reference)?, seconds)
        };
        let time = chrono::DateTime::from_timestamp(seconds, 0).ok_or_else(|| StoreError::CorruptRef {
            reference: reference.clone(),
            reason: format!("commit time {seconds} is out of range"),
        })?;
        Ok(Some((self.get(app, &snapshot.sha)?.unwrap_or(snapshot), time)))
    }

    fn artifact_at_ref(&self, app: &AppName, reference: &str) -> Result<Option<Artifact>> {
        let snapshot = {
            let repo = self.repo();
            let Some(tip) = ref_id(&repo, reference)? else {
                return Ok(None);
            };
            read_snapshot(&repo, tip, reference)?
        };
        Ok(Some(self.get(app, &snapshot.sha)?.unwrap_or(snapshot)))
    }

    /// Artifacts of `app`, most recently first recorded first. With a branch filter this walks
    /// only that branch's build history.
    pub fn list(&self, app: &AppName, filter: &ListFilter, limit: usize) -> Result<Vec<Artifact>> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let candidates: Vec<CommitSha> = match &filter.branch {
            Some(branch) => self.branch_history(app, branch, usize::MAX)?,
            None => self.notes_log(app)?,
        };
        let mut seen = HashSet::new();
        for sha in candidates {
            if !seen.insert(sha.clone()) {
                continue;
            }
            if let Some(a) = self.get(app, &sha)?
                && filter.accepts(&a)
            {
                out.push(a);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Shas along a branch's first-parent history, newest first.
    pub fn branch_history(&self, app: &AppName, branch: &BranchName, limit: usize) -> Result<Vec<CommitSha>> {
        self.ref_history(&branch_ref(app, branch), limit)
    }

    /// Artifacts released to (env, app), newest first.
    pub fn release_history(&self, env: &EnvName, app: &AppName, limit: usize) -> Result<Vec<Artifact>> {
        let mut out = Vec::new();
        for sha in self.ref_history(&env_ref(env, app), limit)? {
            if let Some(a) = self.get(app, &sha)? {
                out.push(a);
            }
        }
        Ok(out)
    }

    fn ref_history(&self, reference: &str, limit: usize) -> Result<Vec<CommitSha>> {
        let repo = self.repo();
        let mut next = ref_id(&repo, reference)?;
        let mut out = Vec::new();
        while let Some(id) = next {
            if out.len() >= limit {
                break;
            }
            out.push(read_snapshot(&repo, id, reference)?.sha);
            next = repo.find_commit(id)?.parent_ids().next().map(|p| p.detach());
        }
        Ok(out)
    }

    /// Shas in the order they were first recorded, newest first, from the notes commit log.
    fn notes_log(&self, app: &AppName) -> Result<Vec<CommitSha>> {
        let repo = self.repo();
        let mut next = ref_id(&repo, &notes_ref(app))?;
        let mut out = Vec::new();
        while let Some(id) = next {
            let commit = repo.find_commit(id)?;
            let message = commit.message_raw_sloppy().to_str_lossy().into_owned();
            let mut new_here: Vec<CommitSha> = message
                .lines()
                .filter_map(|l| l.strip_prefix("+ "))
                .filter_map(|l| l.split_whitespace().nth(1))
                .filter_map(|s| CommitSha::new(s).ok())
                .collect();
            new_here.reverse();
            out.extend(new_here);
            next = commit.parent_ids().next().map(|p| p.detach());
        }
        Ok(out)
    }

    // ----- writes ------------------------------------------------------------------------

    /// Insert or merge one artifact; see [`ArtifactStore::record_batch`].
    pub fn record(&self, artifact: &Artifact) -> Result<RecordOutcome> {
        let mut outcomes = self.record_batch(std::slice::from_ref(artifact))?;
        Ok(outcomes.remove(0))
    }

    /// Insert or merge many artifacts with one commit per app. Same (app, sha) as an existing
    /// artifact merges into it (facts accumulate); unchanged records write nothing. Branch refs
    /// move to each artifact that newly gained that branch.
    pub fn record_batch(&self, artifacts: &[Artifact]) -> Result<Vec<RecordOutcome>> {
        let mut outcomes: Vec<Option<RecordOutcome>> = vec![None; artifacts.len()];
        let mut apps: Vec<&AppName> = artifacts.iter().map(|a| &a.app).collect();
        apps.sort();
        apps.dedup();
        for app in apps {
            let idx: Vec<usize> = (0..artifacts.len())
                .filter(|&i| &artifacts[i].app == app)
                .collect();
            let batch: Vec<&Artifact> = idx.iter().map(|&i| &artifacts[i]).collect();
            self.repair(app)?;
            let done = self.retry(&format!("recording artifacts of {app}"), || {
                self.try_record_app(app, &batch)
            })?;
            for (i, o) in idx.into_iter().zip(done) {
                outcomes[i] = Some(o);
            }
        }
        let outcomes: Vec<RecordOutcome> = outcomes.into_iter().flatten().collect();
        if outcomes.iter().any(|o| !matches!(o, RecordOutcome::Unchanged(_))) {
            self.push_after_write();
        }
        Ok(outcomes)
    }

    /// Point `refs/auger/envs/<env>/<app>` at `artifact`, on top of the previous release.
    pub fn set_released(&self, env: &EnvName, app: &AppName, artifact: &Artifact) -> Result<()> {
        self.set_released_at(env, app, artifact, chrono::Utc::now())
    }

    /// [`Self::set_released`] with the release time given (the commit's time, which
    /// [`Self::released_at`] reads back): the release loop passes its own clock's time.
    pub fn set_released_at(
        &self,
        env: &EnvName,
        app: &AppName,
        artifact: &Artifact,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<()> {
        let time = gix::date::Time::new(at.timestamp(), 0);
        if &artifact.app != app {
            return Err(StoreError::Merge(Box::new(MergeError::DifferentIdentity {
                a: app.to_string(),
                b: artifact.id.to_string(),
            })));
        }
        let reference = env_ref(env, app);
        self.retry(&format!("releasing {} to {env}", artifact.id), || {
            let repo = self.repo();
            let old = ref_id(&repo, &reference).map_err(Attempt::Fatal)?;
            let message = format!(
                "release {} to {env}\n\n{} {}\n",
                artifact.id, artifact.id, artifact.sha
            );
            let commit = snapshot_commit_at(&repo, artifact, old, &message, time).map_err(Attempt::Fatal)?;
            apply(&repo, vec![cas_edit(&reference, old, commit, &message)?])
        })?;
        self.push_after_write();
        Ok(())
    }

    pub(crate) fn push_after_write(&self) {
        if let Some(remote) = &self.remote {
            let report = remote.push_after_write(&self.repo);
            if let Some(err) = &report.error {
                tracing::warn!(remote = remote.url(), error = %err, "artifact store push failed; the write is kept locally and pushed later");
            }
        }
    }

    /// Folds a batch into the records it touches: per sha, the note as stored and the record
    /// after every incoming artifact of that sha is merged in; per incoming artifact, what
    /// recording it does (later ones of a sha see its final record).
    fn merge_batch(
        &self,
        repo: &gix::Repository,
        app: &AppName,
        notes_name: &str,
        base_tree: ObjectId,
        batch: &[&Artifact],
    ) -> Result<(Vec<Pending>, Vec<RecordOutcome>), Attempt> {
        let mut pending: Vec<Pending> = Vec::new();
        // Slot in `pending` per sha: a linear search would make a batch quadratic.
        let mut slots: HashMap<&CommitSha, usize> = HashMap::with_capacity(batch.len());
        let mut outcomes = Vec::with_capacity(batch.len());
        for incoming in batch {
            let slot = match slots.get(&incoming.sha) {
                Some(&i) => i,
                None => {
                    let found = self.cache().find_note(repo, base_tree, &incoming.sha);
                    let (old_path, text) = match found.map_err(Attempt::Fatal)? {
                        Some((path, blob)) => (Some(path), blob_text(repo, blob).map_err(Attempt::Fatal)?),
                        None => (None, String::new()),
                    };
                    let before = fold_note(&text).map_err(|source| {
                        Attempt::Fatal(StoreError::CorruptNote {
                            app: app.clone(),
                            sha: incoming.sha.clone(),
                            reference: notes_name.to_owned(),
                            source: Box::new(source),
                        })
                    })?;
                    let after = before.clone().unwrap_or_else(|| (*incoming).clone());
                    pending.push(Pending {
                        text,
                        before,
                        after,
                        old_path,
                    });
                    slots.insert(&incoming.sha, pending.len() - 1);
                    pending.len() - 1
                }
            };
            let p = &mut pending[slot];
            let prev = p.after.clone();
            p.after
                .merge(incoming)
                .map_err(|e| Attempt::Fatal(Box::new(e).into()))?;
            outcomes.push(match (&p.before, prev == p.after && p.before.is_some()) {
                (_, true) => RecordOutcome::Unchanged(p.after.clone()),
                (None, _) => RecordOutcome::Created(p.after.clone()),
                (Some(_), false) => RecordOutcome::Updated(p.after.clone()),
            });
        }
        // Later outcomes of the same sha in one batch see the final record.
        for o in &mut outcomes {
            if let Some(&i) = slots.get(&o.artifact().sha) {
                let a = pending[i].after.clone();
                *o = match o {
                    RecordOutcome::Created(_) => RecordOutcome::Created(a),
                    RecordOutcome::Updated(_) => RecordOutcome::Updated(a),
                    RecordOutcome::Unchanged(_) => RecordOutcome::Unchanged(a),
                };
            }
        }
        Ok((pending, outcomes))
    }

    /// One attempt at recording `batch` (all of one app). Reads the current tip, computes the
    /// merged notes, writes objects, then moves every ref in one CAS transaction.
    fn try_record_app(&self, app: &AppName, batch: &[&Artifact]) -> Result<Vec<RecordOutcome>, Attempt> {
        let repo = self.repo();
        let notes_name = notes_ref(app);
        let tip = ref_id(&repo, &notes_name).map_err(Attempt::Fatal)?;
        let base_tree = match tip {
            Some(t) => commit_tree(&repo, t).map_err(Attempt::Fatal)?,
            None => ObjectId::empty_tree(repo.object_hash()),
        };

        let (pending, outcomes) = self.merge_batch(&repo, app, &notes_name, base_tree, batch)?;
        let changed: Vec<&Pending> = pending
            .iter()
            .filter(|p| p.before.as_ref() != Some(&p.after))
            .collect();
        if changed.is_empty() {
            return Ok(outcomes);
        }

        // A large batch is written to memory and then as one pack: thousands of loose files
        // are what a batch costs on a real disk. Reads in between see the memory first.
        let objects_dir = repo.git_dir().join("objects");
        let mut packing = (batch.len() >= PACK_MIN_BATCH && pack::pack_count(&objects_dir) < pack::MAX_PACKS)
            .then(|| (*repo).clone().with_object_memory());
        let w: &gix::Repository = packing.as_ref().unwrap_or(&repo);

        // The plain editor, not `repo.edit_tree`: that one checks every entry of each tree it
        // writes exists (a stat per note, hundreds per write), and ours are known to exist.
        let base = if tip.is_some() {
            w.find_tree(base_tree)?
                .decode()
                .map_err(StoreError::git)
                .map_err(Attempt::Fatal)?
                .into()
        } else {
            gix::objs::Tree::empty()
        };
        let mut editor = gix::objs::tree::Editor::new(base, &w.objects, w.object_hash());
        let mut message = format!("record {} artifact(s) of {app}\n\n", changed.len());
        for p in &changed {
            let mut text = p.text.clone();
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&p.after.to_json_line());
            text.push('\n');
            let blob = w
                .write_blob(text.as_bytes())
                .map_err(|e| Attempt::Fatal(e.into()))?;
            let path = note_path(&p.after.sha);
            if let Some(old) = p.old_path.as_deref().filter(|old| *old != path) {
                editor
                    .remove(old.split('/'))
                    .map_err(|e| Attempt::Fatal(StoreError::git(e)))?;
            }
            editor
                .upsert(path.split('/'), EntryKind::Blob, blob.detach())
                .map_err(|e| Attempt::Fatal(StoreError::git(e)))?;
            let mark = if p.before.is_none() { '+' } else { '~' };
            message.push_str(&format!("{mark} {} {}\n", p.after.id, p.after.sha));
        }
        let moves = branch_moves(w, app, &changed)?;
        // The notes commit names every branch-ref move it implies (`> ref commit`), so a crash
        // between the ref renames is repaired from the notes, the source of truth.
        for m in &moves {
            message.push_str(&format!("> {} {}\n", m.name, m.new));
        }
        let tree = editor
            .write(|t| w.write_object(t).map(gix::Id::detach))
            .map_err(|e| Attempt::Fatal(StoreError::git(e)))?;
        let commit = write_commit(w, tree, tip, &message).map_err(Attempt::Fatal)?;
        if let Some(mut memory) = packing.as_mut().and_then(|m| m.objects.take_object_memory()) {
            let objects = memory
                .drain()
                .map(|(id, (kind, data))| (id, kind, data))
                .collect();
            pack::write_pack(&objects_dir, objects).map_err(|source| {
                Attempt::Fatal(StoreError::Io {
                    path: objects_dir.join("pack"),
                    source,
                })
            })?;
        }
        // Notes first: gix renames the locks in this order.
        let mut edits = vec![cas_edit(&notes_name, tip, commit, "auger: record artifacts")?];
        for m in moves {
            edits.push(cas_edit(&m.name, m.expected, m.new, "auger: new build")?);
        }
        apply(&repo, edits)?;
        Ok(outcomes)
    }

    /// Finish the branch-ref moves of the last notes commit of `app` if a crash interrupted
    /// them: a ref that is behind the commit recorded for it is fast-forwarded to it.
    fn repair(&self, app: &AppName) -> Result<()> {
        self.retry(&format!("repairing branch refs of {app}"), || {
            let repo = self.repo();
            let Some(tip) = ref_id(&repo, &notes_ref(app)).map_err(Attempt::Fatal)? else {
                return Ok(());
            };
            let commit = repo.find_commit(tip)?;
            let message = commit.message_raw_sloppy().to_str_lossy().into_owned();
            let mut edits = Vec::new();
            for line in message.lines().filter_map(|l| l.strip_prefix("> ")) {
                let Some((name, id)) = line.split_once(' ') else {
                    continue;
                };
                let Ok(want) = ObjectId::from_hex(id.trim().as_bytes()) else {
                    continue;
                };
                if !name.starts_with(BRANCHES_PREFIX) {
                    continue;
                }
                let cur = ref_id(&repo, name).map_err(Attempt::Fatal)?;
                if cur == Some(want) {
                    continue;
                }
                // Behind means `cur` is the parent of what was recorded (or the ref is missing).
                let parent = repo.find_commit(want)?.parent_ids().next().map(|p| p.detach());
                if parent == cur {
                    tracing::warn!(
                        reference = name,
                        "finishing a branch-ref move interrupted by a crash"
                    );
                    edits.push(cas_edit(name, cur, want, "auger: repair after crash")?);
                }
            }
            if edits.is_empty() {
                Ok(())
            } else {
                apply(&repo, edits)
            }
        })
    }

    /// Run `attempt` until it wins its compare-and-swap, with jittered backoff.
    pub(crate) fn retry<T>(&self, what: &str, mut attempt: impl FnMut() -> Result<T, Attempt>) -> Result<T> {
        let mut last = String::new();
        for n in 0..MAX_ATTEMPTS {
            match attempt() {
                Ok(v) => return Ok(v),
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Conflict(e)) => {
                    last = e;
                    if n % 8 == 7 {
                        sweep_stale_locks(&self.repo.path().join("refs"), STALE_LOCK_AGE);
                    }
                    std::thread::sleep(backoff(n));
                }
            }
        }
        Err(StoreError::Contention {
            what: what.to_owned(),
            last,
        })
    }
}

/// A ref lock is held for the microseconds of a rename; one this old belongs to a writer that
/// died (SIGKILL, power loss) and would block every later write, as git's own `.lock` files do.
const STALE_LOCK_AGE: Duration = Duration::from_secs(2);

/// Remove `*.lock` files under `dir` older than `age`.
fn sweep_stale_locks(dir: &Path, age: Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            sweep_stale_locks(&path, age);
        } else if path.extension().is_some_and(|e| e == "lock")
            && meta
                .modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|e| e > age)
        {
            tracing::warn!(lock = %path.display(), "removing a stale ref lock left by a dead writer");
            let _ = std::fs::remove_file(&path);
        }
    }
}

fn backoff(attempt: u32) -> Duration {
    // Cheap jitter without a RNG dependency: the clock's low bits differ between racers.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let cap = 200u64.saturating_mul(1 + u64::from(attempt.min(20)));
    Duration::from_micros(50 + u64::from(nanos) % cap)
}

pub(crate) fn notes_ref(app: &AppName) -> String {
    format!("{NOTES_PREFIX}{app}")
}

pub(crate) fn branch_ref(app: &AppName, branch: &BranchName) -> String {
    format!("{BRANCHES_PREFIX}{app}/{}", branch.ref_component())
}

pub(crate) fn env_ref(env: &EnvName, app: &AppName) -> String {
    format!("{ENVS_PREFIX}{env}/{app}")
}

/// A branch ref a batch moves: from the tip it expects to the newest build's snapshot commit.
struct RefMove {
    name: String,
    expected: Option<ObjectId>,
    new: ObjectId,
}

/// The branch-ref moves a batch implies: each artifact that newly gained a branch becomes that
/// branch's newest build, chained in batch order so the first-parent log keeps every build.
fn branch_moves(w: &gix::Repository, app: &AppName, changed: &[&Pending]) -> Result<Vec<RefMove>, Attempt> {
    let mut moves: Vec<RefMove> = Vec::new();
    for p in changed {
        let had: &[BranchName] = p.before.as_ref().map_or(&[], |b| &b.branches);
        for branch in p.after.branches.iter().filter(|b| !had.contains(b)) {
            let name = branch_ref(app, branch);
            let (expected, parent) = match moves.iter().find(|m| m.name == name) {
                Some(m) => (m.expected, Some(m.new)),
                None => {
                    let cur = ref_id(w, &name).map_err(Attempt::Fatal)?;
                    (cur, cur)
                }
            };
            // Already the tip (a replay after a crash between ref renames): nothing to add.
            if let Some(parent) = parent
                && read_snapshot(w, parent, &name).is_ok_and(|s| s.sha == p.after.sha)
            {
                continue;
            }
            let msg = format!(
                "build {} on {branch}\n\n{} {}\n",
                p.after.id, p.after.id, p.after.sha
            );
            let c = snapshot_commit(w, &p.after, parent, &msg).map_err(Attempt::Fatal)?;
            moves.retain(|m| m.name != name);
            moves.push(RefMove {
                name,
                expected,
                new: c,
            });
        }
    }
    Ok(moves)
}

/// One sha's record while a batch is recorded.
struct Pending {
    /// The note as stored (one JSON line per recorded state).
    text: String,
    /// The record before the batch, if there was one.
    before: Option<Artifact>,
    /// The record after the batch.
    after: Artifact,
    /// Where the note is in the notes tree now (its fan-out may differ from the new path).
    old_path: Option<String>,
}

fn note_path(sha: &CommitSha) -> String {
    let s = sha.as_str();
    format!("{}/{}", &s[..2], &s[2..])
}

fn read_snapshot(repo: &gix::Repository, commit: ObjectId, reference: &str) -> Result<Artifact> {
    let tree = repo.find_tree(commit_tree(repo, commit)?)?;
    let entry = tree
        .find_entry(ARTIFACT_FILE)
        .ok_or_else(|| StoreError::CorruptRef {
            reference: reference.to_owned(),
            reason: "missing".into(),
        })?;
    let text = blob_text(repo, entry.object_id())?;
    serde_json::from_str(&text).map_err(|e| StoreError::CorruptRef {
        reference: reference.to_owned(),
        reason: e.to_string(),
    })
}

fn snapshot_commit(
    repo: &gix::Repository,
    a: &Artifact,
    parent: Option<ObjectId>,
    message: &str,
) -> Result<ObjectId> {
    snapshot_commit_at(repo, a, parent, message, gix::date::Time::now_utc())
}

fn snapshot_commit_at(
    repo: &gix::Repository,
    a: &Artifact,
    parent: Option<ObjectId>,
    message: &str,
    time: gix::date::Time,
) -> Result<ObjectId> {
    let mut json = serde_json::to_string_pretty(a).unwrap_or_default();
    json.push('\n');
    let blob = repo.write_blob(json.as_bytes())?.detach();
    let mut editor = repo.edit_tree(ObjectId::empty_tree(repo.object_hash()))?;
    editor.upsert(ARTIFACT_FILE, EntryKind::Blob, blob)?;
    let tree = editor.write()?.detach();
    write_commit_at(repo, tree, parent, message, time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Source;
    use auger_domain::{RepoName, TagName};

    /// The read cache is keyed by object ids, so a note rewritten behind the store's back (by
    /// another process or plain git) is read afresh, never served stale.
    #[test]
    fn cached_reads_follow_writes_from_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.git");
        let store = ArtifactStore::open_or_init(&path).unwrap();
        let app = AppName::new("web").unwrap();
        let sha = CommitSha::new("0123456789abcdef0123456789abcdef01234567").unwrap();
        let a = Artifact::new(
            app.clone(),
            RepoName::new("acme/web").unwrap(),
            sha.clone(),
            Source {
                kind: "status".into(),
                name: "ci".into(),
                target_url: None,
            },
        );
        store.record(&a).unwrap();
        assert!(store.get(&app, &sha).unwrap().unwrap().tags.is_empty());

        // Another store on the same repository (as another process would) adds a tag.
        let other = ArtifactStore::open(&path).unwrap();
        let mut tagged = a.clone();
        tagged.tags.push(TagName::new("v1").unwrap());
        other.record(&tagged).unwrap();
        assert_eq!(store.get(&app, &sha).unwrap().unwrap().tags, tagged.tags);
    }
}
