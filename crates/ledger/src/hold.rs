//! Holds: `/hold`, `/rollback` and `/resume` stop and restart automatic deploys of an app to an
//! environment. The state lives in the ledger as an [`StateKind::Hold`] env state,
//! `refs/auger/holds/<env>/<app>` with `hold.json`
//! (`{"held": true, "by": "@alice", "reason": "rollback to web@…", "time": …}`), so it is
//! durable, replicated with the ledger's remote, and `git log` on the ref is the audit trail.
//! A resume writes `"held": false`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use auger_domain::{AppName, EnvName};

use crate::envstate::StateKind;
use crate::git::Result;
use crate::store::ArtifactStore;

/// One hold or resume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldState {
    pub held: bool,
    /// Who (`@login`, `api <token>`, `cli:<user>`).
    pub by: String,
    pub reason: String,
    pub time: DateTime<Utc>,
}

impl ArtifactStore {
    /// The current hold state of (env, app); `None` if it was never held.
    pub fn hold_state(&self, env: &EnvName, app: &AppName) -> Result<Option<HoldState>> {
        self.env_state(StateKind::Hold, env, app)
    }

    /// Whether automatic deploys of `app` to `env` are stopped.
    pub fn is_held(&self, env: &EnvName, app: &AppName) -> Result<bool> {
        Ok(self.hold_state(env, app)?.is_some_and(|h| h.held))
    }

    /// Records a hold or a resume. Writing the state it already has is a no-op (`false`).
    pub fn set_hold(&self, env: &EnvName, app: &AppName, state: &HoldState) -> Result<bool> {
        let message = format!(
            "{} {env}/{app} by {}: {}",
            if state.held { "hold" } else { "resume" },
            state.by,
            state.reason
        );
        self.set_env_state(
            StateKind::Hold,
            env,
            app,
            state,
            &message,
            state.time,
            |old: &HoldState| old.held == state.held,
        )
    }

    /// Every (env, app) that is held now.
    pub fn holds(&self) -> Result<Vec<(EnvName, AppName, HoldState)>> {
        let all = self.env_states::<HoldState>(StateKind::Hold)?;
        Ok(all.into_iter().filter(|(_, _, h)| h.held).collect())
    }
}
