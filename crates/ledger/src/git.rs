//! What the store, the holds and the remote sync share: the repository handle, the error type,
//! the ref namespace, compare-and-swap ref transactions and small object helpers. Nothing here
//! knows about the store or the remote, so both build on it without depending on each other.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use auger_domain::{AppName, CommitSha};
use gix::ObjectId;
use gix::refs::Target;
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};

use crate::model::{MergeError, NoteLineError};

pub(crate) const NOTES_PREFIX: &str = "refs/notes/auger/artifacts/";
pub(crate) const BRANCHES_PREFIX: &str = "refs/auger/branches/";
pub(crate) const ENVS_PREFIX: &str = "refs/auger/envs/";
/// Per-(env, app) states (`envstate`): holds, verifications, freezes.
pub(crate) const HOLDS_PREFIX: &str = "refs/auger/holds/";
pub(crate) const VERIFY_PREFIX: &str = "refs/auger/verify/";
pub(crate) const FREEZES_PREFIX: &str = "refs/auger/freezes/";
pub(crate) const ARTIFACT_FILE: &str = "artifact.json";
/// Attempts at a compare-and-swap before giving up. Each attempt re-reads, so this bounds only
/// pathological contention (hundreds of writers on one app), not correctness.
pub(crate) const MAX_ATTEMPTS: u32 = 400;
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("artifact store {}: {reason}", path.display())]
    Open { path: PathBuf, reason: String },
    #[error("artifact store: {0}")]
    Git(#[from] gix::Error),
    #[error("artifact store: the note for {app}@{sha} ({reference}) is corrupt: {source}")]
    CorruptNote {
        app: AppName,
        sha: CommitSha,
        reference: String,
        #[source]
        source: Box<NoteLineError>,
    },
    #[error("artifact store: {reference} does not hold a readable {ARTIFACT_FILE}: {reason}")]
    CorruptRef { reference: String, reason: String },
    #[error("artifact store: reading refs: {0}")]
    Refs(String),
    #[error(transparent)]
    Merge(#[from] Box<MergeError>),
    #[error("artifact id {id} is ambiguous: it matches {}", matches.join(", "))]
    Ambiguous { id: String, matches: Vec<String> },
    #[error(
        "artifact store: gave up on {what} after {MAX_ATTEMPTS} attempts (other writers kept winning); last error: {last}"
    )]
    Contention { what: String, last: String },
    #[error("artifact store remote {remote}: {reason}")]
    Remote { remote: String, reason: String },
    #[error("artifact store: writing {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    pub(crate) fn git(e: impl Into<gix::Error>) -> Self {
        StoreError::Git(e.into())
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The ledger's bare repository: its path and the one `gix::Repository` every reader and
/// writer of this process goes through.
pub(crate) struct Repo {
    path: PathBuf,
    repo: Mutex<gix::Repository>,
}

impl Repo {
    pub(crate) fn new(path: &Path, repo: gix::Repository) -> Self {
        Self {
            path: path.to_owned(),
            repo: Mutex::new(repo),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, gix::Repository> {
        // A panic while holding the lock cannot leave the repository half-written (refs move
        // in one transaction), so a poisoned lock is safe to take over.
        self.repo.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn with<T>(&self, f: impl FnOnce(&gix::Repository) -> T) -> T {
        f(&self.lock())
    }
}

/// Result of one optimistic attempt: a conflict is retried, anything else is returned.
pub(crate) enum Attempt {
    Conflict(String),
    Fatal(StoreError),
}

impl From<StoreError> for Attempt {
    fn from(e: StoreError) -> Self {
        Attempt::Fatal(e)
    }
}

impl From<gix::Error> for Attempt {
    fn from(e: gix::Error) -> Self {
        Attempt::Fatal(e.into())
    }
}

/// Apply ref edits in one transaction. A failed precondition or a held lock is a conflict: the
/// caller re-reads and tries again.
pub(crate) fn apply(repo: &gix::Repository, edits: Vec<RefEdit>) -> Result<(), Attempt> {
    repo.edit_references(edits)
        .map(|_| ())
        .map_err(|e| Attempt::Conflict(e.to_string()))
}

pub(crate) fn cas_edit(name: &str, expected: Option<ObjectId>, new: ObjectId, log: &str) -> Result<RefEdit> {
    let name = name
        .try_into()
        .map_err(|e| StoreError::Refs(format!("{name:?} is not a valid ref name: {e}")))?;
    Ok(RefEdit {
        change: Change::Update {
            log: LogChange {
                mode: RefLog::AndReference,
                force_create_reflog: false,
                message: log.into(),
            },
            expected: match expected {
                Some(id) => PreviousValue::MustExistAndMatch(Target::Object(id)),
                None => PreviousValue::MustNotExist,
            },
            new: Target::Object(new),
        },
        name,
        deref: false,
    })
}

pub(crate) fn ref_id(repo: &gix::Repository, name: &str) -> Result<Option<ObjectId>> {
    Ok(repo
        .try_find_reference(name)?
        .and_then(|r| r.target().try_id().map(|id| id.to_owned())))
}

pub(crate) fn commit_tree(repo: &gix::Repository, commit: ObjectId) -> Result<ObjectId> {
    Ok(repo.find_commit(commit)?.tree_id()?.detach())
}

/// Find the note blob for `sha`, whatever fanout wrote it: ours (`ab/cdef…`), git's flat
/// layout for small note sets, or two levels (`ab/cd/ef…`) for very large ones.
pub(crate) fn find_note(
    repo: &gix::Repository,
    tree: ObjectId,
    sha: &CommitSha,
) -> Result<Option<(String, ObjectId)>> {
    let tree = repo.find_tree(tree)?;
    let s = sha.as_str();
    let candidates = [
        format!("{}/{}", &s[..2], &s[2..]),
        s.to_owned(),
        format!("{}/{}/{}", &s[..2], &s[2..4], &s[4..]),
    ];
    for path in candidates {
        if let Some(e) = tree.lookup_entry(path.split('/'))?
            && e.mode().is_blob()
        {
            return Ok(Some((path, e.object_id())));
        }
    }
    Ok(None)
}

pub(crate) fn blob_text(repo: &gix::Repository, blob: ObjectId) -> Result<String> {
    let b = repo.find_blob(blob)?;
    Ok(String::from_utf8_lossy(&b.data).into_owned())
}

pub(crate) fn write_commit(
    repo: &gix::Repository,
    tree: ObjectId,
    parent: Option<ObjectId>,
    message: &str,
) -> Result<ObjectId> {
    write_commit_at(repo, tree, parent, message, gix::date::Time::now_utc())
}

pub(crate) fn write_commit_at(
    repo: &gix::Repository,
    tree: ObjectId,
    parent: Option<ObjectId>,
    message: &str,
    time: gix::date::Time,
) -> Result<ObjectId> {
    let sig = gix::actor::Signature {
        name: "auger".into(),
        email: "auger@localhost".into(),
        time,
    };
    let mut buf = gix::date::parse::TimeBuf::default();
    let sig_ref = sig.to_ref(&mut buf);
    Ok(repo.new_commit_as(sig_ref, sig_ref, message, tree, parent)?.id)
}
