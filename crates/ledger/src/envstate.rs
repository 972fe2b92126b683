//! Small per-(env, app) states kept beside the env refs: holds, freezes and release
//! verifications.
//!
//! `refs/auger/<kind>/<env>/<app>` is a commit whose tree holds one JSON file; every change
//! is a new commit on top, so `git log refs/auger/<kind>/<env>/<app>` is the audit trail and
//! the state replicates with the ledger's remote like everything else. A state is never
//! deleted (a deletion would not replicate through fetches, and the history would be lost).

use chrono::{DateTime, Utc};
use gix::ObjectId;
use gix::objs::tree::EntryKind;
use serde::Serialize;
use serde::de::DeserializeOwned;

use auger_domain::{AppName, EnvName};

use crate::git::{
    Attempt, FREEZES_PREFIX, HOLDS_PREFIX, Result, StoreError, VERIFY_PREFIX, apply, blob_text, cas_edit,
    commit_tree, ref_id, write_commit_at,
};
use crate::store::ArtifactStore;

/// Which state: its ref namespace and file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateKind {
    /// `/hold`, `/resume` and the hold a rollback sets (`hold.json`).
    Hold,
    /// Where the env's current release is in its verification (`verify.json`).
    Verify,
    /// `/freeze` and `/unfreeze` (`freeze.json`).
    Freeze,
}

impl StateKind {
    fn prefix(self) -> &'static str {
        match self {
            StateKind::Hold => HOLDS_PREFIX,
            StateKind::Verify => VERIFY_PREFIX,
            StateKind::Freeze => FREEZES_PREFIX,
        }
    }

    fn file(self) -> &'static str {
        match self {
            StateKind::Hold => "hold.json",
            StateKind::Verify => "verify.json",
            StateKind::Freeze => "freeze.json",
        }
    }

    fn reference(self, env: &EnvName, app: &AppName) -> String {
        format!("{}{env}/{app}", self.prefix())
    }
}

/// A state change's commit: its message and time.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    pub message: &'a str,
    pub time: DateTime<Utc>,
}

impl ArtifactStore {
    /// The current `kind` state of (env, app); `None` if it was never written.
    pub fn env_state<T: DeserializeOwned>(
        &self,
        kind: StateKind,
        env: &EnvName,
        app: &AppName,
    ) -> Result<Option<T>> {
        let reference = kind.reference(env, app);
        let repo = self.repo();
        let Some(tip) = ref_id(&repo, &reference)? else {
            return Ok(None);
        };
        read_state(&repo, tip, &reference, kind.file()).map(Some)
    }

    /// Writes `value` as the new `kind` state of (env, app), unless `same(&current)` says the
    /// current state already is it (`false`: nothing written). The commit says `change`.
    pub fn set_env_state<T: Serialize + DeserializeOwned>(
        &self,
        (kind, env, app): (StateKind, &EnvName, &AppName),
        value: &T,
        change: Change<'_>,
        same: impl Fn(&T) -> bool,
    ) -> Result<bool> {
        let Change { message, time } = change;
        let reference = kind.reference(env, app);
        let json = serde_json::to_string_pretty(value).map_err(|e| StoreError::CorruptRef {
            reference: reference.clone(),
            reason: e.to_string(),
        })? + "\n";
        let message = format!("{}\n", message.trim_end());
        let changed = self.retry(&format!("writing {reference}"), || {
            let repo = self.repo();
            let old = ref_id(&repo, &reference).map_err(Attempt::Fatal)?;
            if let Some(old) = old {
                // An unreadable old state is replaced, not a reason to refuse the new one.
                if let Ok(current) = read_state::<T>(&repo, old, &reference, kind.file())
                    && same(&current)
                {
                    return Ok(false);
                }
            }
            let commit = (|| -> Result<ObjectId> {
                let blob = repo.write_blob(json.as_bytes())?.detach();
                let mut editor = repo.edit_tree(ObjectId::empty_tree(repo.object_hash()))?;
                editor.upsert(kind.file(), EntryKind::Blob, blob)?;
                let tree = editor.write()?.detach();
                write_commit_at(
                    &repo,
                    tree,
                    old,
                    &message,
                    gix::date::Time::new(time.timestamp(), 0),
                )
            })()
            .map_err(Attempt::Fatal)?;
            apply(
                &repo,
                vec![cas_edit(&reference, old, commit, &message).map_err(Attempt::Fatal)?],
            )?;
            Ok(true)
        })?;
        if changed {
            self.push_after_write();
        }
        Ok(changed)
    }

    /// The `kind` states (env, app) has had, newest first, each with the time of its commit
    /// (the `time` of the [`Change`] that wrote it); at most `limit`. The ref's log is the
    /// history: what the DORA figures read verifications back from.
    pub fn env_state_log<T: DeserializeOwned>(
        &self,
        kind: StateKind,
        env: &EnvName,
        app: &AppName,
        limit: usize,
    ) -> Result<Vec<(DateTime<Utc>, T)>> {
        let reference = kind.reference(env, app);
        let repo = self.repo();
        let mut next = ref_id(&repo, &reference)?;
        let mut out = Vec::new();
        while let Some(id) = next {
            if out.len() >= limit {
                break;
            }
            let commit = repo.find_commit(id)?;
            let seconds = commit.time().map_err(StoreError::git)?.seconds;
            let time = DateTime::from_timestamp(seconds, 0).ok_or_else(|| StoreError::CorruptRef {
                reference: reference.clone(),
                reason: format!("commit time {seconds} is out of range"),
            })?;
            out.push((time, read_state(&repo, id, &reference, kind.file())?));
            next = commit.parent_ids().next().map(|p| p.detach());
        }
        Ok(out)
    }

    /// Every (env, app) with a `kind` state, and the state.
    pub fn env_states<T: DeserializeOwned>(&self, kind: StateKind) -> Result<Vec<(EnvName, AppName, T)>> {
        let repo = self.repo();
        let mut out = Vec::new();
        let refs = repo.references().map_err(|e| StoreError::Refs(e.to_string()))?;
        for r in refs
            .prefixed(kind.prefix())
            .map_err(|e| StoreError::Refs(e.to_string()))?
        {
            let r = r.map_err(|e| StoreError::Refs(e.to_string()))?;
            let name = r.name().as_bstr().to_string();
            let Some((env, app)) = name
                .strip_prefix(kind.prefix())
                .and_then(|rest| rest.split_once('/'))
                .and_then(|(e, a)| Some((EnvName::new(e).ok()?, AppName::new(a).ok()?)))
            else {
                continue;
            };
            let Some(id) = r.target().try_id().map(|id| id.to_owned()) else {
                continue;
            };
            out.push((env, app, read_state(&repo, id, &name, kind.file())?));
        }
        Ok(out)
    }
}

fn read_state<T: DeserializeOwned>(
    repo: &gix::Repository,
    commit: ObjectId,
    reference: &str,
    file: &str,
) -> Result<T> {
    let tree = repo.find_tree(commit_tree(repo, commit)?)?;
    let entry = tree.find_entry(file).ok_or_else(|| StoreError::CorruptRef {
        reference: reference.to_owned(),
        reason: format!("no {file}"),
    })?;
    serde_json::from_str(&blob_text(repo, entry.object_id())?).map_err(|e| StoreError::CorruptRef {
        reference: reference.to_owned(),
        reason: e.to_string(),
    })
}
