//! Holds: `/hold`, `/rollback` and `/resume` stop and restart automatic deploys of an app to an
//! environment. The state lives in the ledger, beside the env refs, so it is durable, replicated
//! with the ledger's remote, and readable with plain git:
//!
//! `refs/auger/holds/<env>/<app>` is a commit whose tree holds `hold.json`
//! (`{"held": true, "by": "@alice", "reason": "rollback to web@…", "time": …}`); every hold and
//! resume is a new commit on top, so `git log refs/auger/holds/production/web` is the audit
//! trail. A resume writes `"held": false` rather than deleting the ref: a deletion would not
//! replicate through fetches, and the history would be lost.

use chrono::{DateTime, Utc};
use gix::ObjectId;
use gix::objs::tree::EntryKind;
use serde::{Deserialize, Serialize};

use auger_domain::{AppName, EnvName};

use crate::git::{
    Attempt, Result, StoreError, apply, blob_text, cas_edit, commit_tree, ref_id, write_commit_at,
};
use crate::store::ArtifactStore;

pub(crate) const HOLDS_PREFIX: &str = "refs/auger/holds/";
const HOLD_FILE: &str = "hold.json";

/// One hold or resume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldState {
    pub held: bool,
    /// Who (`@login`, `api <token>`, `cli:<user>`).
    pub by: String,
    pub reason: String,
    pub time: DateTime<Utc>,
}

fn hold_ref(env: &EnvName, app: &AppName) -> String {
    format!("{HOLDS_PREFIX}{env}/{app}")
}

impl ArtifactStore {
    /// The current hold state of (env, app); `None` if it was never held.
    pub fn hold_state(&self, env: &EnvName, app: &AppName) -> Result<Option<HoldState>> {
        let reference = hold_ref(env, app);
        let repo = self.repo();
        let Some(tip) = ref_id(&repo, &reference)? else {
            return Ok(None);
        };
        read_hold(&repo, tip, &reference).map(Some)
    }

    /// Whether automatic deploys of `app` to `env` are stopped.
    pub fn is_held(&self, env: &EnvName, app: &AppName) -> Result<bool> {
        Ok(self.hold_state(env, app)?.is_some_and(|h| h.held))
    }

    /// Records a hold or a resume. Writing the state it already has is a no-op (`false`).
    pub fn set_hold(&self, env: &EnvName, app: &AppName, state: &HoldState) -> Result<bool> {
        let reference = hold_ref(env, app);
        let message = format!(
            "{} {env}/{app} by {}: {}\n",
            if state.held { "hold" } else { "resume" },
            state.by,
            state.reason
        );
        let json = serde_json::to_string_pretty(state).unwrap_or_default() + "\n";
        let changed = self.retry(&format!("setting the hold of {env}/{app}"), || {
            let repo = self.repo();
            let old = ref_id(&repo, &reference).map_err(Attempt::Fatal)?;
            if let Some(old) = old
                && read_hold(&repo, old, &reference).map_err(Attempt::Fatal)?.held == state.held
            {
                return Ok(false);
            }
            let commit = (|| -> Result<ObjectId> {
                let blob = repo.write_blob(json.as_bytes())?.detach();
                let mut editor = repo.edit_tree(ObjectId::empty_tree(repo.object_hash()))?;
                editor.upsert(HOLD_FILE, EntryKind::Blob, blob)?;
                let tree = editor.write()?.detach();
                write_commit_at(
                    &repo,
                    tree,
                    old,
                    &message,
                    gix::date::Time::new(state.time.timestamp(), 0),
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

    /// Every (env, app) that is held now.
    pub fn holds(&self) -> Result<Vec<(EnvName, AppName, HoldState)>> {
        let repo = self.repo();
        let mut out = Vec::new();
        let refs = repo.references().map_err(|e| StoreError::Refs(e.to_string()))?;
        for r in refs
            .prefixed(HOLDS_PREFIX)
            .map_err(|e| StoreError::Refs(e.to_string()))?
        {
            let r = r.map_err(|e| StoreError::Refs(e.to_string()))?;
            let name = r.name().as_bstr().to_string();
            let Some((env, app)) = name
                .strip_prefix(HOLDS_PREFIX)
                .and_then(|rest| rest.split_once('/'))
                .and_then(|(e, a)| Some((EnvName::new(e).ok()?, AppName::new(a).ok()?)))
            else {
                continue;
            };
            let Some(id) = r.target().try_id().map(|id| id.to_owned()) else {
                continue;
            };
            let state = read_hold(&repo, id, &name)?;
            if state.held {
                out.push((env, app, state));
            }
        }
        Ok(out)
    }
}

fn read_hold(repo: &gix::Repository, commit: ObjectId, reference: &str) -> Result<HoldState> {
    let tree = repo.find_tree(commit_tree(repo, commit)?)?;
    let entry = tree.find_entry(HOLD_FILE).ok_or_else(|| StoreError::CorruptRef {
        reference: reference.to_owned(),
        reason: format!("no {HOLD_FILE}"),
    })?;
    serde_json::from_str(&blob_text(repo, entry.object_id())?).map_err(|e| StoreError::CorruptRef {
        reference: reference.to_owned(),
        reason: e.to_string(),
    })
}
