//! Writing releases into the gitops repository (design §7).
//!
//! A [`GitopsRepo`] keeps a bare cache of the gitops repository. Every write is
//! fetch → build on the fetched tip → push, under a lock, retried when the push loses a race:
//!
//! * Objects (blobs, trees, the commit) are built with gix in the cache; `git` fetches and
//!   pushes (gix cannot push).
//! * The remote's branches are tracked as `refs/remotes/origin/*` in the cache; nothing else
//!   is kept there, so the cache can be deleted at any time.
//! * `<env>/<app>/` is replaced as a whole: the new subtree is built from the rendered files
//!   plus `release.json` alone and put in place of the old one, so a file that left the
//!   template leaves the folder, and nothing outside `<env>/<app>/` can change.
//! * "Unchanged" compares the folder *without* `release.json` (which always differs: time,
//!   trigger) plus the artifact named in `release.json`: the same artifact with the same
//!   output is already released and makes no commit.
//! * Direct mode pushes to the gitops branch with `--force-with-lease=<branch>:<base>` and a
//!   commit whose only parent is `<base>`: the push succeeds only as a fast-forward from the
//!   exact tip the commit was built on. PR mode force-pushes `auger/<env>/<app>` with a fresh
//!   commit on the current tip, so the pull request only ever shows this release's diff.
//!
//! Concurrency: writes through any handle on one cache folder are serialized (one mutex per
//! folder in the process, plus an advisory file lock for other processes). Writers elsewhere
//! (humans, CI, another replica with its own cache) are handled by the lease: a push lands
//! only if the branch is still at the tip the commit was built on, so a lost race is refused,
//! never merged or overwritten, and the write starts over from a fresh fetch (bounded,
//! [`DEFAULT_MAX_ATTEMPTS`], short jittered backoff). Every commit has one parent, so the
//! branch stays linear; since each release only replaces its own `<env>/<app>/` on top of
//! whatever the new tip holds, rebuilding never undoes anyone else's change.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use gix::ObjectId;
use gix::bstr::ByteSlice;
use gix::objs::tree::EntryKind;

use super::edit::{self, FileEdit, Refused};
use super::git;
use super::record::{
    RELEASE_FILE, ReleaseInfo, TRAILER_ACTION, TRAILER_APP, TRAILER_ARTIFACT, TRAILER_ENV, Trailer,
    TrailerError, compose_message, parse_trailers, pr_branch,
};
use super::render::Files;
use crate::artifact::ArtifactId;
use crate::domain::{AppName, BranchName, CommitSha, EnvName};

/// Where the remote's branches are mirrored in the cache.
pub(super) const TRACKING: &str = "refs/remotes/origin/";
/// Default bound on fetch → build → push rounds for one write. Generous on purpose: another
/// replica releasing several apps in a row can win a handful of rounds in a row (it starts
/// each release right after its last push, while the loser is still backing off), and a
/// release that gives up on contention is worse than one that takes a few seconds.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 32;
const LOCK_FILE: &str = "auger-gitops.lock";

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("gitops cache {}: {reason}", path.display())]
    Open { path: PathBuf, reason: String },
    #[error("gitops cache: {0}")]
    Git(#[from] gix::Error),
    #[error("gitops repository {url}: git {command} failed: {message}")]
    Command {
        url: String,
        command: &'static str,
        message: String,
    },
    #[error("gitops repository {url}: the push to {branch} was refused: {reason}")]
    Refused {
        url: String,
        branch: String,
        reason: String,
    },
    #[error(
        "gitops repository {url}: gave up after {attempts} attempts, other writers kept moving {branch}; last: {last}"
    )]
    Contention {
        url: String,
        branch: String,
        attempts: u32,
        last: String,
    },
    #[error("release file {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error(transparent)]
    Trailer(#[from] TrailerError),
    #[error("release spec for {env}/{app} carries a release record for {record_env}/{record_app}")]
    Mismatch {
        env: EnvName,
        app: AppName,
        record_env: EnvName,
        record_app: AppName,
    },
    #[error("gitops commit {0} is not in the cache (fetch first?)")]
    UnknownCommit(String),
    #[error("{}: not a readable release record: {reason}", path)]
    CorruptRecord { path: String, reason: String },
    /// An edit step cannot be applied (edit mode): the release is refused, nothing written.
    #[error("edit {file}: {reason}")]
    Edit { file: String, reason: String },
}

pub type Result<T, E = WriteError> = std::result::Result<T, E>;

impl From<Refused> for WriteError {
    fn from(r: Refused) -> Self {
        WriteError::Edit {
            file: r.file,
            reason: r.reason,
        }
    }
}

/// One release in edit mode ([`super::edit`]).
#[derive(Debug, Clone)]
pub struct EditSpec {
    pub env: EnvName,
    pub app: AppName,
    /// Applied in order; several may edit one file.
    pub edits: Vec<FileEdit>,
    /// Not written to the repository: its trailers end the commit message.
    pub release: ReleaseInfo,
    pub message: String,
    pub extra_trailers: Vec<Trailer>,
    pub target: Target,
}

/// Where a write goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Straight onto the gitops branch (`merge = "direct"`), fast-forward only.
    Branch,
    /// Force-pushed to `auger/<env>/<app>`, for a pull request against the gitops branch.
    PrBranch,
}

/// One release to write.
#[derive(Debug, Clone)]
pub struct ReleaseSpec {
    pub env: EnvName,
    /// The folder name: the app or a preview instance (`<app>-pr-<n>`).
    pub app: AppName,
    /// Rendered files, relative to `<env>/<app>/`, `/`-separated; `release.json` is added.
    pub files: Files,
    /// Written as `<env>/<app>/release.json`; its trailers end the commit message.
    pub release: ReleaseInfo,
    /// Subject (and optional body) of the commit message; trailers are appended.
    pub message: String,
    /// Trailers after the design §7 ones, e.g. `Auger-Supersedes`.
    pub extra_trailers: Vec<Trailer>,
    pub target: Target,
}

/// What a write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// `<env>/<app>/` already holds exactly this (or, for a removal, is already gone):
    /// nothing was committed. `tip` is the gitops branch tip that was compared.
    Unchanged { tip: Option<CommitSha> },
    /// PR mode: `branch` already proposes exactly this on top of the current tip; it was left
    /// alone so reviews on the pull request stay valid.
    Pending { commit: CommitSha, branch: String },
    /// A new commit, pushed to `pushed_to` (a branch name, without `refs/heads/`).
    Committed {
        commit: CommitSha,
        pushed_to: String,
        /// The gitops branch tip it was built on.
        base: Option<CommitSha>,
        /// Fetch → build → push rounds it took (more than 1 when others pushed meanwhile).
        attempts: u32,
    },
}

/// A handle on one gitops repository through its local bare cache. Handles are cheap to clone
/// and share (`Send + Sync`); all handles on the same cache folder share one write lock.
#[derive(Clone)]
pub struct GitopsRepo {
    cache: PathBuf,
    url: String,
    branch: BranchName,
    repo: gix::ThreadSafeRepository,
    lock: Arc<Mutex<()>>,
    max_attempts: u32,
    identity: (String, String),
    /// Credentials for an https remote (never printed: `Debug` leaves them out). Shared by
    /// every clone of the handle, so a refreshed token reaches them all.
    auth: Arc<std::sync::RwLock<Option<git::HttpAuth>>>,
}

impl std::fmt::Debug for GitopsRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitopsRepo")
            .field("cache", &self.cache)
            .field("url", &git::redact_url(&self.url))
            .field("branch", &self.branch)
            .finish()
    }
}

/// One lock per cache folder in this process, whatever the number of handles.
fn lock_for(path: &Path) -> Arc<Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>> = OnceLock::new();
    let mut map = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    map.entry(path.to_owned()).or_default().clone()
}

/// Held for the duration of one write: the in-process mutex, then an advisory file lock so a
/// second auger process on the same cache (a CLI `release make` next to the server) waits too.
struct WriteGuard<'a> {
    _mutex: MutexGuard<'a, ()>,
    _file: Option<File>,
}

impl GitopsRepo {
    /// Open the cache at `cache_dir` for the repository at `url` (any URL `git` accepts;
    /// credentials in it are never shown), creating an empty bare cache if needed. Nothing is
    /// fetched yet: writes fetch first, reads use what was last fetched (see [`Self::fetch`]).
    pub fn open(cache_dir: &Path, url: &str, branch: BranchName) -> Result<Self> {
        let open_err = |reason: String| WriteError::Open {
            path: cache_dir.to_owned(),
            reason,
        };
        let empty = !cache_dir.exists()
            || cache_dir
                .read_dir()
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
        if empty {
            std::fs::create_dir_all(cache_dir).map_err(|e| open_err(format!("cannot create: {e}")))?;
            gix::init_bare(cache_dir)
                .map_err(|e| open_err(format!("cannot initialise a bare repository: {e}")))?;
        }
        let repo = gix::ThreadSafeRepository::open_opts(cache_dir, gix::open::Options::isolated())
            .map_err(|e| open_err(format!("not a git repository: {e}")))?;
        if !repo.to_thread_local().is_bare() {
            return Err(open_err(
                "has a work tree; the cache must be a bare repository".into(),
            ));
        }
        let canonical = cache_dir.canonicalize().map_err(|e| open_err(e.to_string()))?;
        Ok(Self {
            lock: lock_for(&canonical),
            cache: canonical,
            url: url.to_owned(),
            branch,
            repo,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            identity: ("auger".into(), "auger@localhost".into()),
            auth: Arc::default(),
        })
    }

    /// Bound the fetch → build → push rounds of one write (at least 1).
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Author and committer of auger's commits (default `auger <auger@localhost>`).
    pub fn with_identity(mut self, name: &str, email: &str) -> Self {
        self.identity = (name.to_owned(), email.to_owned());
        self
    }

    /// A token for an https remote (GitHub accepts tokens and App installation tokens as
    /// `x-access-token`); ignored for `file://` and ssh remotes.
    pub fn with_token(self, token: Option<&str>) -> Self {
        self.set_token(token);
        self
    }

    /// Replaces the token (App installation tokens expire within the hour).
    pub fn set_token(&self, token: Option<&str>) {
        let auth = token.and_then(|t| git::HttpAuth::new(&self.url, t.trim()));
        *self.auth.write().unwrap_or_else(|p| p.into_inner()) = auth;
    }

    /// Whether the remote is reached over http(s), where git needs a token.
    pub fn is_http(&self) -> bool {
        self.url.starts_with("https://") || self.url.starts_with("http://")
    }

    fn auth(&self) -> Option<git::HttpAuth> {
        self.auth.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn cache_dir(&self) -> &Path {
        &self.cache
    }

    /// The gitops branch releases land on.
    pub fn branch(&self) -> &BranchName {
        &self.branch
    }

    /// The repository URL with credentials masked.
    pub fn display_url(&self) -> String {
        git::redact_url(&self.url)
    }

    pub(super) fn gix(&self) -> gix::Repository {
        self.repo.to_thread_local()
    }

    fn write_guard(&self) -> WriteGuard<'_> {
        // Poisoning only means a writer panicked; the cache holds nothing half-done that the
        // next fetch does not overwrite, so carry on.
        let mutex = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.cache.join(LOCK_FILE))
            .ok()
            .filter(|f| f.lock().is_ok());
        WriteGuard {
            _mutex: mutex,
            _file: file,
        }
    }

    /// Bring the cache up to date with the remote's branches.
    pub fn fetch(&self) -> Result<()> {
        let _guard = self.write_guard();
        self.fetch_locked()
    }

    fn fetch_locked(&self) -> Result<()> {
        let refspec = format!("+refs/heads/*:{TRACKING}*");
        let out = git::run_with(
            &self.cache,
            &["fetch", "--quiet", "--no-tags", "--prune", &self.url, &refspec],
            self.auth().as_ref(),
        )
        .map_err(|message| self.command_error("fetch", message))?;
        if out.ok {
            Ok(())
        } else {
            Err(self.command_error("fetch", out.stderr))
        }
    }

    fn command_error(&self, command: &'static str, message: String) -> WriteError {
        WriteError::Command {
            url: self.display_url(),
            command,
            message: git::scrub(&message, &self.url),
        }
    }

    /// The gitops branch tip as last fetched.
    pub fn tip(&self) -> Result<Option<CommitSha>> {
        Ok(tracking_tip(&self.gix(), self.branch.as_str())?.map(to_sha))
    }

    /// Whether gitops revision `revision` (a full or abbreviated sha) contains commit
    /// `release`: it is that commit or a later one built on it. `None` when the cache does not
    /// know `revision` (not fetched yet, or not a commit of this repository).
    pub fn contains(&self, release: &CommitSha, revision: &str) -> Result<Option<bool>> {
        let Some(full) = self.resolve(revision)? else {
            return Ok(None);
        };
        if full == release.as_str() {
            return Ok(Some(true));
        }
        let out = git::run(
            &self.cache,
            &["merge-base", "--is-ancestor", release.as_str(), &full],
        )
        .map_err(|message| self.command_error("merge-base", message))?;
        // Exit 1 means "not an ancestor"; an unknown `release` also lands here: not contained.
        Ok(Some(out.ok))
    }

    /// The full sha of a commit named by a (possibly abbreviated) hex revision, if the cache
    /// has exactly one.
    pub fn resolve(&self, revision: &str) -> Result<Option<String>> {
        if revision.is_empty() || !revision.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let spec = format!("{revision}^{{commit}}");
        let out = git::run(&self.cache, &["rev-parse", "--verify", "--quiet", &spec])
            .map_err(|message| self.command_error("rev-parse", message))?;
        Ok(out.ok.then(|| out.stdout.trim().to_owned()))
    }

    /// Write a release (see the module docs for the algorithm).
    pub fn prepare_release(&self, spec: &ReleaseSpec) -> Result<WriteOutcome> {
        if spec.release.env != spec.env || spec.release.app != spec.app {
            return Err(WriteError::Mismatch {
                env: spec.env.clone(),
                app: spec.app.clone(),
                record_env: spec.release.env.clone(),
                record_app: spec.release.app.clone(),
            });
        }
        check_paths(&spec.files)?;
        let mut trailers = spec.release.trailers();
        trailers.extend(spec.extra_trailers.iter().cloned());
        let message = compose_message(&spec.message, &trailers)?;
        let release_json = spec.release.to_file_bytes();
        let folder = folder(&spec.env, &spec.app);
        let pr = pr_branch(&spec.env, &spec.app);

        self.write_loop(spec.target, &pr, |repo, base| {
            // The new folder: rendered files, then the same plus release.json.
            let mut editor = repo.edit_tree(ObjectId::empty_tree(repo.object_hash()))?;
            for (path, bytes) in &spec.files {
                let blob = repo.write_blob(bytes)?.detach();
                editor.upsert(path.as_str(), EntryKind::Blob, blob)?;
            }
            let content = editor.write()?.detach();
            let record_blob = repo.write_blob(&release_json)?.detach();
            editor.upsert(RELEASE_FILE, EntryKind::Blob, record_blob)?;
            let subtree = editor.write()?.detach();

            let same_as = |commit: ObjectId| -> Result<bool> {
                let Some(old) = folder_tree(repo, commit, &folder)? else {
                    return Ok(false);
                };
                Ok(without_record(repo, old)? == content
                    && record_artifact(repo, old)?.as_ref() == Some(&spec.release.artifact))
            };
            if let Some(base) = base
                && same_as(base)?
            {
                return Ok(Built::Unchanged);
            }
            if spec.target == Target::PrBranch
                && let Some(open) = tracking_tip(repo, &pr)?
                && repo.find_commit(open)?.parent_ids().next().map(|p| p.detach()) == base
                && same_as(open)?
            {
                return Ok(Built::Pending(open));
            }
            let root = match base {
                Some(b) => repo.find_commit(b)?.tree_id()?.detach(),
                None => ObjectId::empty_tree(repo.object_hash()),
            };
            let mut root_editor = repo.edit_tree(root)?;
            // Replacing the entry drops whatever the old folder held.
            root_editor.upsert(folder.as_str(), EntryKind::Tree, subtree)?;
            let tree = root_editor.write()?.detach();
            Ok(Built::Commit(self.commit(repo, tree, base, &message)?))
        })
    }

    /// Write a release in edit mode (see [`super::edit`]): the edits applied to the files of
    /// the freshly fetched tip, only changed files committed, with the release's trailers.
    /// `Unchanged` when every value is already set; `WriteError::Edit` when an edit cannot be
    /// applied, before anything is written.
    pub fn prepare_edit(&self, spec: &EditSpec) -> Result<WriteOutcome> {
        if spec.release.env != spec.env || spec.release.app != spec.app {
            return Err(WriteError::Mismatch {
                env: spec.env.clone(),
                app: spec.app.clone(),
                record_env: spec.release.env.clone(),
                record_app: spec.release.app.clone(),
            });
        }
        for e in &spec.edits {
            check_rel_path(&e.file)?;
        }
        let mut trailers = spec.release.trailers();
        trailers.extend(spec.extra_trailers.iter().cloned());
        let message = compose_message(&spec.message, &trailers)?;
        let artifact = spec.release.artifact.to_string();
        let pr = pr_branch(&spec.env, &spec.app);

        self.write_loop(spec.target, &pr, |repo, base| {
            let Some(base) = base else {
                let file = spec.edits.first().map(|e| e.file.clone()).unwrap_or_default();
                return Err(WriteError::Edit {
                    file,
                    reason: format!("the gitops branch {} has no commits yet", self.branch),
                });
            };
            let root = repo.find_commit(base)?.tree_id()?.detach();
            let mut modes = HashMap::new();
            let changed = edit::apply::<WriteError>(&spec.edits, |path| {
                let found = read_blob(repo, root, path)?;
                if let Some((_, kind)) = &found {
                    modes.insert(path.to_owned(), *kind);
                }
                Ok(found.map(|(bytes, _)| bytes))
            })?;
            if changed.is_empty() {
                return Ok(Built::Unchanged);
            }
            let mut editor = repo.edit_tree(root)?;
            for (path, bytes) in &changed {
                let blob = repo.write_blob(bytes)?.detach();
                let kind = modes.get(path).copied().unwrap_or(EntryKind::Blob);
                editor.upsert(path.as_str(), kind, blob)?;
            }
            let tree = editor.write()?.detach();
            if spec.target == Target::PrBranch
                && let Some(open) = tracking_tip(repo, &pr)?
            {
                let open_commit = repo.find_commit(open)?;
                let proposes = parse_trailers(&open_commit.message_raw_sloppy().to_str_lossy())
                    .iter()
                    .any(|t| t.key().eq_ignore_ascii_case(TRAILER_ARTIFACT) && t.value() == artifact);
                if open_commit.parent_ids().next().map(|p| p.detach()) == Some(base)
                    && open_commit.tree_id()?.detach() == tree
                    && proposes
                {
                    return Ok(Built::Pending(open));
                }
            }
            Ok(Built::Commit(self.commit(repo, tree, Some(base), &message)?))
        })
    }

    /// The values `edits` would set, as gitops commit `commit` holds them: what a rollback to
    /// the release that commit brought writes back.
    pub fn edit_values_at(&self, commit: &CommitSha, edits: &[FileEdit]) -> Result<Vec<FileEdit>> {
        let repo = self.gix();
        let root = repo
            .find_commit(self.known_commit(&repo, commit)?)?
            .tree_id()?
            .detach();
        edit::current_values::<WriteError>(edits, |path| {
            Ok(read_blob(&repo, root, path)?.map(|(bytes, _)| bytes))
        })
    }

    /// The patch commit `commit` makes to its first parent (the whole tree for a root
    /// commit), for people to read: no colour, without the `index` lines, whose blob ids tell
    /// a reader nothing, and without auger's own `release.json`, which the pull request's
    /// table says already.
    pub fn commit_diff(&self, commit: &CommitSha) -> Result<String> {
        let out = git::run(
            &self.cache,
            &[
                "show",
                "--format=",
                "--no-color",
                "--no-ext-diff",
                "--no-textconv",
                "--first-parent",
                "--patch",
                commit.as_str(),
                "--",
                ".",
                &format!(":(exclude,glob)**/{RELEASE_FILE}"),
            ],
        )
        .map_err(|message| self.command_error("show", message))?;
        if !out.ok {
            return Err(self.command_error("show", out.stderr));
        }
        Ok(out
            .stdout
            .lines()
            .filter(|l| !l.starts_with("index "))
            .map(|l| format!("{l}\n"))
            .collect())
    }

    /// Remove `<env>/<name>/` in one commit (preview cleanup). `Unchanged` when it is not
    /// there. The commit carries `Auger-App`, `Auger-Env`, `Auger-Action: remove`, then
    /// `trailers`.
    pub fn remove_path(
        &self,
        env: &EnvName,
        name: &AppName,
        message: &str,
        trailers: &[Trailer],
        target: Target,
    ) -> Result<WriteOutcome> {
        let mut all = vec![
            Trailer::new(TRAILER_APP, name.as_str())?,
            Trailer::new(TRAILER_ENV, env.as_str())?,
            Trailer::new(TRAILER_ACTION, "remove")?,
        ];
        all.extend(trailers.iter().cloned());
        let message = compose_message(message, &all)?;
        let folder = folder(env, name);
        let pr = pr_branch(env, name);
        self.write_loop(target, &pr, |repo, base| {
            let Some(base) = base else {
                return Ok(Built::Unchanged);
            };
            if folder_tree(repo, base, &folder)?.is_none() {
                return Ok(Built::Unchanged);
            }
            let mut editor = repo.edit_tree(repo.find_commit(base)?.tree_id()?.detach())?;
            editor.remove(folder.as_str())?;
            let tree = editor.write()?.detach();
            Ok(Built::Commit(self.commit(repo, tree, Some(base), &message)?))
        })
    }

    /// The files of `<env>/<app>/` at an earlier gitops commit, without `release.json`:
    /// exactly what a rollback to that release writes again. `None` if the folder was not
    /// there.
    pub fn tree_of(&self, commit: &CommitSha, env: &EnvName, app: &AppName) -> Result<Option<Files>> {
        let repo = self.gix();
        let Some(tree) = folder_tree(&repo, self.known_commit(&repo, commit)?, &folder(env, app))? else {
            return Ok(None);
        };
        let mut files = Files::new();
        read_tree(&repo, tree, "", &mut files)?;
        files.remove(RELEASE_FILE);
        Ok(Some(files))
    }

    /// Every file under `path` (relative to the repository root; `""` for all) at a fetched
    /// commit, keyed by its path below `path`; `None` if there is no such folder. Used for any
    /// repository auger reads through a cache, such as the config repository's policies.
    pub fn files_under(&self, commit: &CommitSha, path: &str) -> Result<Option<Files>> {
        let repo = self.gix();
        let id = self.known_commit(&repo, commit)?;
        let path = path.trim_matches('/');
        let tree = if path.is_empty() {
            Some(repo.find_commit(id)?.tree_id()?.detach())
        } else {
            folder_tree(&repo, id, path)?
        };
        let Some(tree) = tree else { return Ok(None) };
        let mut files = Files::new();
        read_tree(&repo, tree, "", &mut files)?;
        Ok(Some(files))
    }

    /// The folders directly under `<env>/` on the gitops branch as last fetched (a preview
    /// environment's instances); none when there is no branch or no such folder yet.
    pub fn folders_in(&self, env: &EnvName) -> Result<Vec<String>> {
        let repo = self.gix();
        let Some(tip) = tracking_tip(&repo, self.branch.as_str())? else {
            return Ok(Vec::new());
        };
        let Some(tree) = folder_tree(&repo, tip, env.as_str())? else {
            return Ok(Vec::new());
        };
        let mut names = Vec::new();
        for entry in repo.find_tree(tree)?.iter() {
            let entry = entry?;
            if entry.mode().is_tree() {
                names.push(entry.filename().to_string());
            }
        }
        Ok(names)
    }

    /// The `release.json` of `<env>/<app>/` at a gitops commit; for an edit-mode release (no
    /// `release.json`), the record its trailers make.
    pub fn release_at(
        &self,
        commit: &CommitSha,
        env: &EnvName,
        app: &AppName,
    ) -> Result<Option<ReleaseInfo>> {
        let repo = self.gix();
        let path = format!("{}/{RELEASE_FILE}", folder(env, app));
        let id = self.known_commit(&repo, commit)?;
        match read_record(&repo, id, &path)? {
            Some(record) => Ok(Some(record)),
            // Edit mode writes no release.json: the commit's own trailers say what it releases.
            None => record_from_trailers(&repo, id, env, app),
        }
    }

    /// The tree id of `<env>/<app>/` without `release.json` at a gitops commit: two releases
    /// with the same content have the same id (a rollback reproduces the earlier one's).
    pub fn content_tree_id(
        &self,
        commit: &CommitSha,
        env: &EnvName,
        app: &AppName,
    ) -> Result<Option<String>> {
        let repo = self.gix();
        match folder_tree(&repo, self.known_commit(&repo, commit)?, &folder(env, app))? {
            Some(t) => Ok(Some(without_record(&repo, t)?.to_string())),
            None => Ok(None),
        }
    }

    fn known_commit(&self, repo: &gix::Repository, commit: &CommitSha) -> Result<ObjectId> {
        let id = ObjectId::from_hex(commit.as_str().as_bytes())
            .map_err(|_| WriteError::UnknownCommit(commit.to_string()))?;
        match repo.find_commit(id) {
            Ok(_) => Ok(id),
            Err(_) => Err(WriteError::UnknownCommit(commit.to_string())),
        }
    }

    fn commit(
        &self,
        repo: &gix::Repository,
        tree: ObjectId,
        parent: Option<ObjectId>,
        message: &str,
    ) -> Result<ObjectId> {
        let sig = gix::actor::Signature {
            name: self.identity.0.as_str().into(),
            email: self.identity.1.as_str().into(),
            time: gix::date::Time::now_utc(),
        };
        let mut buf = gix::date::parse::TimeBuf::default();
        let sig_ref = sig.to_ref(&mut buf);
        Ok(repo.new_commit_as(sig_ref, sig_ref, message, tree, parent)?.id)
    }

    /// Serialize, then fetch → build → push until the push lands, `build` says there is
    /// nothing to do, or the attempts run out. `build` gets the freshly fetched gitops tip.
    fn write_loop(
        &self,
        target: Target,
        pr_branch: &str,
        mut build: impl FnMut(&gix::Repository, Option<ObjectId>) -> Result<Built>,
    ) -> Result<WriteOutcome> {
        let _guard = self.write_guard();
        let dest = match target {
            Target::Branch => self.branch.as_str(),
            Target::PrBranch => pr_branch,
        };
        let mut last = String::new();
        for attempt in 1..=self.max_attempts {
            if attempt > 1 {
                std::thread::sleep(backoff(attempt));
            }
            self.fetch_locked()?;
            let repo = self.gix();
            let base = tracking_tip(&repo, self.branch.as_str())?;
            let commit = match build(&repo, base)? {
                Built::Unchanged => {
                    return Ok(WriteOutcome::Unchanged {
                        tip: base.map(to_sha),
                    });
                }
                Built::Pending(c) => {
                    return Ok(WriteOutcome::Pending {
                        commit: to_sha(c),
                        branch: dest.to_owned(),
                    });
                }
                Built::Commit(c) => c,
            };
            match self.push(target, dest, commit, base)? {
                Pushed::Done => {
                    // Record what the remote now has, so reads see the release before the
                    // next fetch. A failure here only delays that until the next fetch.
                    let _ = git::run(
                        &self.cache,
                        &["update-ref", &format!("{TRACKING}{dest}"), &commit.to_string()],
                    );
                    tracing::info!(branch = dest, %commit, attempt, "gitops: pushed");
                    return Ok(WriteOutcome::Committed {
                        commit: to_sha(commit),
                        pushed_to: dest.to_owned(),
                        base: base.map(to_sha),
                        attempts: attempt,
                    });
                }
                Pushed::Lost(reason) => {
                    tracing::debug!(branch = dest, attempt, %reason, "gitops: push lost a race; rebuilding");
                    last = reason;
                }
            }
        }
        Err(WriteError::Contention {
            url: self.display_url(),
            branch: dest.to_owned(),
            attempts: self.max_attempts,
            last,
        })
    }

    fn push(&self, target: Target, dest: &str, commit: ObjectId, base: Option<ObjectId>) -> Result<Pushed> {
        let dest_ref = format!("refs/heads/{dest}");
        let (lease, refspec) = match target {
            // Only from the exact tip the commit was built on: a fast-forward by construction,
            // and never a resurrection of commits someone removed meanwhile.
            Target::Branch => (
                format!(
                    "--force-with-lease={dest_ref}:{}",
                    base.map(|b| b.to_string()).unwrap_or_default()
                ),
                format!("{commit}:{dest_ref}"),
            ),
            // The PR branch is auger's own: each release replaces it.
            Target::PrBranch => (String::new(), format!("+{commit}:{dest_ref}")),
        };
        let mut args = vec!["push", "--porcelain"];
        if !lease.is_empty() {
            args.push(&lease);
        }
        args.extend([self.url.as_str(), refspec.as_str()]);
        let out = git::run_with(&self.cache, &args, self.auth().as_ref())
            .map_err(|m| self.command_error("push", m))?;
        if out.ok {
            return Ok(Pushed::Done);
        }
        // `--porcelain` prints `!<TAB>src:dst<TAB>[rejected] (reason)` for a refused ref.
        let refused = out.stdout.lines().find(|l| l.starts_with('!'));
        let detail = match refused {
            Some(line) => line.rsplit('\t').next().unwrap_or(line).to_owned(),
            None => return Err(self.command_error("push", format!("{} {}", out.stderr, out.stdout))),
        };
        let detail = git::scrub(&detail, &self.url);
        if is_race(&detail) || is_race(&out.stderr) {
            Ok(Pushed::Lost(detail))
        } else {
            Err(WriteError::Refused {
                url: self.display_url(),
                branch: dest.to_owned(),
                reason: format!("{detail} {}", git::scrub(&out.stderr, &self.url))
                    .trim()
                    .to_owned(),
            })
        }
    }
}

enum Built {
    Unchanged,
    Pending(ObjectId),
    Commit(ObjectId),
}

enum Pushed {
    Done,
    Lost(String),
}

/// Reasons git gives when another writer got there first (as opposed to a hook or branch
/// protection refusing the push, which retrying cannot fix).
fn is_race(text: &str) -> bool {
    [
        "fetch first",
        "non-fast-forward",
        "stale info",
        "cannot lock ref",
        "failed to lock",
        "incorrect old value",
        "but expected",
    ]
    .iter()
    .any(|r| text.contains(r))
}

fn backoff(attempt: u32) -> Duration {
    // Short and jittered: the usual competitor is a human or CI push, which does not back off,
    // so waiting long only lowers our chances; jitter spreads auger replicas that collided.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let base_ms = 5u64 << attempt.min(5);
    Duration::from_millis(base_ms / 2 + u64::from(nanos) % base_ms)
}

pub(super) fn to_sha(id: ObjectId) -> CommitSha {
    // gix hex ids are 40 lowercase hex digits (sha1), which is exactly CommitSha's rule; the
    // fallback is unreachable but keeps this total.
    CommitSha::new(id.to_string()).unwrap_or_else(|_| unreachable!("sha1 ids are 40 hex"))
}

pub(super) fn folder(env: &EnvName, app: &AppName) -> String {
    format!("{env}/{app}")
}

pub(super) fn tracking_tip(repo: &gix::Repository, branch: &str) -> Result<Option<ObjectId>> {
    Ok(repo
        .try_find_reference(format!("{TRACKING}{branch}").as_str())?
        .and_then(|r| r.target().try_id().map(|id| id.to_owned())))
}

/// The tree at `folder` in `commit`, if it is a folder.
pub(super) fn folder_tree(
    repo: &gix::Repository,
    commit: ObjectId,
    folder: &str,
) -> Result<Option<ObjectId>> {
    let tree = repo.find_commit(commit)?.tree()?;
    Ok(tree
        .lookup_entry(folder.split('/'))?
        .filter(|e| e.mode().is_tree())
        .map(|e| e.object_id()))
}

fn without_record(repo: &gix::Repository, tree: ObjectId) -> Result<ObjectId> {
    let mut editor = repo.edit_tree(tree)?;
    editor.remove(RELEASE_FILE)?;
    Ok(editor.write()?.detach())
}

/// The artifact named by the `release.json` in a folder tree; `None` if absent or unreadable
/// (a hand-edited folder is then simply "changed").
fn record_artifact(repo: &gix::Repository, tree: ObjectId) -> Result<Option<ArtifactId>> {
    let tree = repo.find_tree(tree)?;
    let Some(entry) = tree.find_entry(RELEASE_FILE).map(|e| e.object_id()) else {
        return Ok(None);
    };
    let blob = repo.find_blob(entry)?;
    Ok(serde_json::from_slice::<serde_json::Value>(&blob.data)
        .ok()
        .and_then(|v| v.get("artifact")?.as_str()?.parse().ok()))
}

pub(super) fn read_record(
    repo: &gix::Repository,
    commit: ObjectId,
    path: &str,
) -> Result<Option<ReleaseInfo>> {
    let tree = repo.find_commit(commit)?.tree()?;
    let Some(entry) = tree.lookup_entry(path.split('/'))?.filter(|e| e.mode().is_blob()) else {
        return Ok(None);
    };
    let blob = repo.find_blob(entry.object_id())?;
    serde_json::from_slice(&blob.data)
        .map(Some)
        .map_err(|e| WriteError::CorruptRecord {
            path: path.to_owned(),
            reason: e.to_string(),
        })
}

/// The release a commit's trailers describe, if they name (env, app) and a readable artifact
/// and source. Approvals and the artifact record are not in trailers: left empty.
fn record_from_trailers(
    repo: &gix::Repository,
    commit: ObjectId,
    env: &EnvName,
    app: &AppName,
) -> Result<Option<ReleaseInfo>> {
    let commit = repo.find_commit(commit)?;
    let trailers = parse_trailers(&commit.message_raw_sloppy().to_str_lossy());
    let get = |key: &str| super::record::trailer(&trailers, key);
    if get(TRAILER_ENV) != Some(env.as_str()) || get(TRAILER_APP) != Some(app.as_str()) {
        return Ok(None);
    }
    let artifact = get(TRAILER_ARTIFACT).and_then(|a| a.parse().ok());
    let source = get(super::record::TRAILER_SOURCE).and_then(|s| s.parse().ok());
    let (Some(artifact), Some(source)) = (artifact, source) else {
        return Ok(None);
    };
    let time = commit
        .time()
        .ok()
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0))
        .unwrap_or_default();
    Ok(Some(ReleaseInfo {
        v: super::record::RELEASE_RECORD_VERSION,
        env: env.clone(),
        app: app.clone(),
        artifact,
        source,
        trigger: get(super::record::TRAILER_TRIGGER)
            .map(|t| t.parse().unwrap_or(super::record::Trigger::Other(t.to_owned())))
            .unwrap_or(super::record::Trigger::Other(String::new())),
        time,
        approvals: Vec::new(),
        rollback_to: get(super::record::TRAILER_ROLLBACK_TO).and_then(|a| a.parse().ok()),
        overrides: trailers
            .iter()
            .filter(|t| t.key() == super::record::TRAILER_OVERRIDE)
            .map(|t| t.value().to_owned())
            .collect(),
        record: None,
        extra: serde_json::Map::new(),
    }))
}

/// The bytes and kind of the regular file at `path` in `tree`; `None` when there is none (a
/// folder, a symlink or a submodule there counts as none: edits touch regular files only).
fn read_blob(repo: &gix::Repository, tree: ObjectId, path: &str) -> Result<Option<(Vec<u8>, EntryKind)>> {
    let tree = repo.find_tree(tree)?;
    let Some(entry) = tree.lookup_entry(path.split('/'))? else {
        return Ok(None);
    };
    let kind = match entry.mode().kind() {
        EntryKind::Blob => EntryKind::Blob,
        EntryKind::BlobExecutable => EntryKind::BlobExecutable,
        _ => return Ok(None),
    };
    Ok(Some((repo.find_blob(entry.object_id())?.data.clone(), kind)))
}

fn read_tree(repo: &gix::Repository, tree: ObjectId, prefix: &str, out: &mut Files) -> Result<()> {
    let tree = repo.find_tree(tree)?;
    for entry in tree.iter() {
        let entry = entry.map_err(WriteError::Git)?;
        let path = format!("{prefix}{}", entry.filename().to_str_lossy());
        let id = entry.object_id();
        if entry.mode().is_tree() {
            read_tree(repo, id, &format!("{path}/"), out)?;
        } else if entry.mode().is_blob() {
            out.insert(path, repo.find_blob(id)?.data.clone());
        }
        // Symlinks and submodules are never written by auger; a hand-made one is left out of
        // a rollback rather than turned into a regular file.
    }
    Ok(())
}

/// Every path is valid, and none is both a file and the folder of another (which a tree
/// cannot hold; the later upsert would silently win).
fn check_paths(files: &Files) -> Result<()> {
    for path in files.keys() {
        check_rel_path(path)?;
        let mut prefix = path.as_str();
        while let Some((parent, _)) = prefix.rsplit_once('/') {
            if files.contains_key(parent) {
                return Err(WriteError::InvalidPath {
                    path: parent.to_owned(),
                    reason: "is both a file and a folder",
                });
            }
            prefix = parent;
        }
    }
    Ok(())
}

/// A path inside `<env>/<app>/`: relative, `/`-separated, no empty, `.` or `..` components,
/// no `.git`, no backslashes or control characters, and not the release record.
fn check_rel_path(path: &str) -> Result<()> {
    let bad = |reason| {
        Err(WriteError::InvalidPath {
            path: path.chars().take(200).collect(),
            reason,
        })
    };
    if path.is_empty() || path.len() > 1024 {
        return bad("must be 1 to 1024 bytes");
    }
    if path.chars().any(|c| c.is_control() || c == '\\') {
        return bad("must not contain control characters or backslashes");
    }
    for c in path.split('/') {
        if c.is_empty() || c == "." || c == ".." {
            return bad("must be relative with no empty, '.' or '..' components");
        }
        if c.eq_ignore_ascii_case(".git") {
            return bad("must not contain a .git component");
        }
    }
    if path == RELEASE_FILE {
        return bad("is reserved for auger's release record");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_paths_stay_inside_the_folder() {
        for ok in ["deployment.yaml", "config/app.env", "a.b/c"] {
            assert!(check_rel_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            "a/",
            ".git/config",
            "a/.GIT/x",
            "a\\b",
            "a\nb",
            "release.json",
        ] {
            assert!(check_rel_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_path_cannot_be_a_file_and_a_folder() {
        let files: Files = [("a".to_owned(), vec![]), ("a/b".to_owned(), vec![])].into();
        assert!(check_paths(&files).is_err());
        let files: Files = [("a-b".to_owned(), vec![]), ("a/b".to_owned(), vec![])].into();
        assert!(check_paths(&files).is_ok());
    }

    #[test]
    fn races_are_told_apart_from_refusals() {
        assert!(is_race("[rejected] (fetch first)"));
        assert!(is_race("[rejected] (stale info)"));
        assert!(is_race("[remote rejected] (cannot lock ref 'refs/heads/main')"));
        assert!(!is_race("[remote rejected] (protected branch hook declined)"));
    }
}
