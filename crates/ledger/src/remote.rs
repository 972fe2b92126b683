//! Replication of the ledger through a plain git remote (design §6).
//!
//! gix cannot push, so this side uses the `git` command line. Remote values are tracked under
//! `refs/remotes/auger/…`. A sync fetches, reconciles every ledger ref with its remote twin
//! (fast-forward, push, or replay local writes on top of the remote tip when both moved), then
//! pushes with `--atomic` and `--force-with-lease` pinned to the value just fetched. A push that
//! loses a race is retried from the fetch; a push after a write tries first without one. An
//! unreachable remote leaves local writes in place; the next sync pushes them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use gix::ObjectId;
use gix::bstr::ByteSlice;
use gix::objs::tree::EntryKind;

use auger_domain::CommitSha;

use crate::git::{
    BRANCHES_PREFIX, ENVS_PREFIX, FREEZES_PREFIX, HOLDS_PREFIX, NOTES_PREFIX, Repo, StoreError,
    VERIFY_PREFIX, apply, blob_text, cas_edit, commit_tree, find_note, write_commit,
};

const TRACKING: &str = "refs/remotes/auger/";
/// Rounds of fetch → reconcile → push before a sync gives up for now.
const MAX_ROUNDS: usize = 10;

/// How a sync begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    Fetch,
    Push,
}

#[derive(Debug, Clone)]
pub(crate) struct Remote {
    url: String,
    /// One sync at a time per store: two `git fetch`es into one repository race on the
    /// tracking refs' locks, and the loser's sync fails.
    syncing: std::sync::Arc<std::sync::Mutex<()>>,
}

/// What a sync did. `error` is set when the remote could not be brought up to date; local
/// state is intact either way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub pushed: Vec<String>,
    pub fast_forwarded: Vec<String>,
    pub replayed: Vec<String>,
    pub rounds: usize,
    pub error: Option<String>,
}

impl Remote {
    pub(crate) fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            syncing: std::sync::Arc::default(),
        }
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn sync(&self, repo: &Repo) -> SyncReport {
        self.sync_from(repo, Start::Fetch)
    }

    /// After a local write: push first, pinned to what the last sync saw of the remote, and
    /// fetch only when that push is refused because the remote moved since. A writer that
    /// synced just before (the replicas' ledger turn) saves a fetch per write; the lease makes
    /// the guess safe.
    pub(crate) fn push_after_write(&self, repo: &Repo) -> SyncReport {
        self.sync_from(repo, Start::Push)
    }

    fn sync_from(&self, repo: &Repo, start: Start) -> SyncReport {
        // A panic mid-sync leaves nothing to repair: the next sync starts from a fetch.
        let _one_at_a_time = self.syncing.lock().unwrap_or_else(|p| p.into_inner());
        let mut report = SyncReport::default();
        for round in 1..=MAX_ROUNDS {
            report.rounds = round;
            let fetch = round > 1 || start == Start::Fetch;
            match self.round(repo, fetch, &mut report) {
                Ok(true) => {
                    report.error = None;
                    return report;
                }
                Ok(false) => {
                    report.error = Some("the remote moved while pushing".into());
                }
                Err(e) => {
                    report.error = Some(e);
                    return report;
                }
            }
        }
        report
    }

    /// One fetch (unless `fetch` is off: the tracking refs as the last round left them) →
    /// reconcile → push. `Ok(false)` means a race was lost and another round helps.
    fn round(&self, repo: &Repo, fetch: bool, report: &mut SyncReport) -> Result<bool, String> {
        let dir = repo.path();
        if fetch {
            git(
                dir,
                &[
                    "fetch",
                    "--quiet",
                    "--no-tags",
                    "--prune",
                    &self.url,
                    &format!("+refs/notes/auger/*:{TRACKING}notes/auger/*"),
                    &format!("+refs/auger/*:{TRACKING}auger/*"),
                ],
            )
            .map_err(|e| format!("fetch failed: {e}"))?;
        }

        let (local, tracked) =
            repo.with(|repo| Ok::<_, String>((ledger_refs(repo)?, tracking_refs(repo)?)))?;
        let mut to_push: Vec<(String, ObjectId, Option<ObjectId>)> = Vec::new();
        let names: BTreeSet<&String> = local.keys().chain(tracked.keys()).collect();
        for name in names {
            let (l, r) = (local.get(name).copied(), tracked.get(name).copied());
            match (l, r) {
                (Some(l), Some(r)) if l == r => {}
                (Some(l), None) => to_push.push((name.clone(), l, None)),
                (None, Some(r)) => {
                    if !set_local(repo, name, None, r) {
                        return Ok(false);
                    }
                    report.fast_forwarded.push(name.clone());
                }
                (Some(l), Some(r)) => {
                    let base = merge_base(dir, l, r)?;
                    if base == Some(l) {
                        if !set_local(repo, name, Some(l), r) {
                            return Ok(false);
                        }
                        report.fast_forwarded.push(name.clone());
                    } else if base == Some(r) {
                        to_push.push((name.clone(), l, Some(r)));
                    } else {
                        let replayed = replay(repo, name, l, r, base)?;
                        if !set_local(repo, name, Some(l), replayed) {
                            return Ok(false);
                        }
                        report.replayed.push(name.clone());
                        to_push.push((name.clone(), replayed, Some(r)));
                    }
                }
                (None, None) => {}
            }
        }
        if to_push.is_empty() {
            return Ok(true);
        }
        let mut args: Vec<String> = vec!["push".into(), "--atomic".into(), "--porcelain".into()];
        for (name, _, expected) in &to_push {
            args.push(format!(
                "--force-with-lease={name}:{}",
                expected.map(|e| e.to_string()).unwrap_or_default()
            ));
        }
        args.push(self.url.clone());
        for (name, new, _) in &to_push {
            args.push(format!("{new}:{name}"));
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        match git(dir, &argv) {
            Ok(_) => {
                for (name, new, _) in &to_push {
                    // Remember what the remote now has, so the next lease is pinned to it.
                    let tracking = tracking_name(name);
                    let _ = git(dir, &["update-ref", &tracking, &new.to_string()]);
                    report.pushed.push(name.clone());
                }
                Ok(true)
            }
            Err(e) if e.contains("stale info") || e.contains("rejected") || e.contains("fetch first") => {
                Ok(false)
            }
            Err(e) => Err(format!("push failed: {e}")),
        }
    }
}

fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let mut msg = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        msg.push_str(&String::from_utf8_lossy(&out.stdout));
        Err(msg)
    }
}

/// What replicates: artifact notes, branch and env refs, and the per-(env, app) states (holds,
/// verifications, freezes), which other replicas act on as much as on the rest.
fn is_ledger_ref(name: &str) -> bool {
    name.starts_with(NOTES_PREFIX)
        || name.starts_with(BRANCHES_PREFIX)
        || name.starts_with(ENVS_PREFIX)
        || [HOLDS_PREFIX, VERIFY_PREFIX, FREEZES_PREFIX]
            .iter()
            .any(|p| name.starts_with(p))
}

fn tracking_name(local: &str) -> String {
    format!("{TRACKING}{}", local.trim_start_matches("refs/"))
}

fn refs_under(repo: &gix::Repository, prefix: &str) -> Result<BTreeMap<String, ObjectId>, String> {
    let mut out = BTreeMap::new();
    let platform = repo.references().map_err(|e| e.to_string())?;
    for r in platform.prefixed(prefix).map_err(|e| e.to_string())? {
        let r = r.map_err(|e| e.to_string())?;
        if let Some(id) = r.target().try_id() {
            out.insert(r.name().as_bstr().to_str_lossy().into_owned(), id.to_owned());
        }
    }
    Ok(out)
}

fn ledger_refs(repo: &gix::Repository) -> Result<BTreeMap<String, ObjectId>, String> {
    let mut all = refs_under(repo, "refs/notes/auger/")?;
    all.extend(refs_under(repo, "refs/auger/")?);
    Ok(all.into_iter().filter(|(n, _)| is_ledger_ref(n)).collect())
}

/// Remote values keyed by the local name they mirror.
fn tracking_refs(repo: &gix::Repository) -> Result<BTreeMap<String, ObjectId>, String> {
    Ok(refs_under(repo, TRACKING)?
        .into_iter()
        .map(|(n, id)| (format!("refs/{}", &n[TRACKING.len()..]), id))
        .filter(|(n, _)| is_ledger_ref(n))
        .collect())
}

fn merge_base(dir: &Path, a: ObjectId, b: ObjectId) -> Result<Option<ObjectId>, String> {
    match git(dir, &["merge-base", &a.to_string(), &b.to_string()]) {
        Ok(out) => Ok(ObjectId::from_hex(out.trim().as_bytes()).ok()),
        // Exit 1 with no output: unrelated histories.
        Err(e) if e.trim().is_empty() => Ok(None),
        Err(e) => Err(format!("merge-base failed: {e}")),
    }
}

/// CAS the local ref; false when a local writer moved it meanwhile.
fn set_local(repo: &Repo, name: &str, expected: Option<ObjectId>, new: ObjectId) -> bool {
    repo.with(|repo| match cas_edit(name, expected, new, "auger: sync") {
        Ok(edit) => apply(repo, vec![edit]).is_ok(),
        Err(e) => {
            tracing::warn!(error = %e, "skipping a ref the remote sent that is not a valid name");
            false
        }
    })
}

/// Rebuild the local-only part of `name` on top of the remote tip `remote`.
fn replay(
    repo: &Repo,
    name: &str,
    local: ObjectId,
    remote: ObjectId,
    base: Option<ObjectId>,
) -> Result<ObjectId, String> {
    let dir = repo.path();
    let range = match base {
        Some(b) => format!("{b}..{local}"),
        None => local.to_string(),
    };
    let commits: Vec<ObjectId> = git(dir, &["rev-list", "--reverse", "--first-parent", &range])?
        .lines()
        .filter_map(|l| ObjectId::from_hex(l.trim().as_bytes()).ok())
        .collect();
    if name.starts_with(NOTES_PREFIX) {
        let changed = match base {
            Some(b) => git(
                dir,
                &[
                    "diff-tree",
                    "-r",
                    "--name-only",
                    "--no-renames",
                    &b.to_string(),
                    &local.to_string(),
                ],
            )?,
            None => git(dir, &["ls-tree", "-r", "--name-only", &local.to_string()])?,
        };
        repo.with(|repo| replay_notes(repo, &changed, &commits, local, remote))
            .map_err(|e| format!("replaying {name}: {e}"))
    } else {
        repo.with(|repo| {
            let mut tip = remote;
            for c in &commits {
                let commit = repo.find_commit(*c)?;
                let message = commit.message_raw_sloppy().to_str_lossy().into_owned();
                tip = write_commit(repo, commit.tree_id()?.detach(), Some(tip), &message)?;
            }
            Ok::<_, StoreError>(tip)
        })
        .map_err(|e| format!("replaying {name}: {e}"))
    }
}

/// Notes merge like git's `cat_sort_uniq`, but order-preserving: the remote's lines, then the
/// local lines it lacks. Record lines are snapshots that fold commutatively, so the result reads
/// as the union of both replicas' facts.
fn replay_notes(
    repo: &gix::Repository,
    changed_paths: &str,
    local_commits: &[ObjectId],
    local: ObjectId,
    remote: ObjectId,
) -> Result<ObjectId, StoreError> {
    let local_tree = commit_tree(repo, local)?;
    let remote_tree = commit_tree(repo, remote)?;
    let mut editor = repo.edit_tree(remote_tree)?;
    for path in changed_paths.lines() {
        let Ok(sha) = CommitSha::new(path.replace('/', "")) else {
            continue;
        };
        let Some((_, local_blob)) = find_note(repo, local_tree, &sha)? else {
            continue;
        };
        let local_text = blob_text(repo, local_blob)?;
        let (remote_path, mut merged) = match find_note(repo, remote_tree, &sha)? {
            Some((p, b)) => (Some(p), blob_text(repo, b)?),
            None => (None, String::new()),
        };
        let have: BTreeSet<String> = merged.lines().map(str::to_owned).collect();
        if !merged.is_empty() && !merged.ends_with('\n') {
            merged.push('\n');
        }
        for line in local_text.lines().filter(|l| !have.contains(*l)) {
            merged.push_str(line);
            merged.push('\n');
        }
        let canonical = format!("{}/{}", &sha.as_str()[..2], &sha.as_str()[2..]);
        if let Some(old) = remote_path.filter(|p| *p != canonical) {
            editor.remove(old.as_str())?;
        }
        let blob = repo.write_blob(merged.as_bytes())?.detach();
        editor.upsert(canonical.as_str(), EntryKind::Blob, blob)?;
    }
    let tree = editor.write()?.detach();
    let mut message = format!(
        "replay {} local write(s) on the remote tip\n\n",
        local_commits.len()
    );
    for c in local_commits {
        let commit = repo.find_commit(*c)?;
        let text = commit.message_raw_sloppy().to_str_lossy().into_owned();
        for line in text
            .lines()
            .filter(|l| l.starts_with("+ ") || l.starts_with("~ "))
        {
            message.push_str(line);
            message.push('\n');
        }
    }
    write_commit(repo, tree, Some(remote), &message)
}
