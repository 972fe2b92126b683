//! Freezes set by hand (design §17): `/freeze <env> [until <time>] [reason]` and `/unfreeze`.
//! Like holds, a [`StateKind::Freeze`] env state per (env, app),
//! `refs/auger/freezes/<env>/<app>` with `freeze.json`, so `git log` on the ref is the audit
//! trail. A freeze with `until` lifts by itself then; `/unfreeze` writes `"frozen": false`.
//! The policy's weekly windows are not stored: they are the policy's.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use auger_domain::{AppName, EnvName};

use crate::envstate::{Change, StateKind};
use crate::git::Result;
use crate::store::ArtifactStore;

/// One freeze or unfreeze.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreezeState {
    pub frozen: bool,
    /// Who (`@login`, `api <token>`).
    pub by: String,
    pub reason: String,
    /// When the freeze lifts by itself; `None`: at `/unfreeze`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    pub time: DateTime<Utc>,
}

impl FreezeState {
    /// Whether this state freezes deploys at `now`.
    pub fn in_force(&self, now: DateTime<Utc>) -> bool {
        self.frozen && self.until.is_none_or(|u| now < u)
    }
}

impl ArtifactStore {
    /// The last freeze or unfreeze of (env, app); `None` if it was never frozen by hand.
    pub fn freeze_state(&self, env: &EnvName, app: &AppName) -> Result<Option<FreezeState>> {
        self.env_state(StateKind::Freeze, env, app)
    }

    /// Records a freeze or an unfreeze. Writing what is already in force is a no-op
    /// (`false`): the same freeze (same end and reason) again, or an unfreeze of what is not
    /// frozen.
    pub fn set_freeze(&self, env: &EnvName, app: &AppName, state: &FreezeState) -> Result<bool> {
        let message = format!(
            "{} {env}/{app} by {}: {}",
            if state.frozen { "freeze" } else { "unfreeze" },
            state.by,
            state.reason
        );
        let now = state.time;
        let change = Change {
            message: &message,
            time: state.time,
        };
        self.set_env_state(
            (StateKind::Freeze, env, app),
            state,
            change,
            |old: &FreezeState| {
                if state.frozen {
                    old.in_force(now) && old.until == state.until && old.reason == state.reason
                } else {
                    !old.in_force(now)
                }
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freeze_is_recorded_lifts_at_its_end_and_unfreezes_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open_or_init(dir.path()).unwrap();
        let (env, app) = (EnvName::new("production").unwrap(), AppName::new("web").unwrap());
        assert_eq!(store.freeze_state(&env, &app).unwrap(), None);
        let t0 = DateTime::parse_from_rfc3339("2026-12-04T15:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let freeze = FreezeState {
            frozen: true,
            by: "@alice".into(),
            reason: "release party".into(),
            until: Some(t0 + chrono::TimeDelta::hours(2)),
            time: t0,
        };
        assert!(store.set_freeze(&env, &app, &freeze).unwrap());
        assert!(
            !store.set_freeze(&env, &app, &freeze).unwrap(),
            "the same freeze again"
        );
        let read = store.freeze_state(&env, &app).unwrap().unwrap();
        assert_eq!(read, freeze);
        assert!(read.in_force(t0 + chrono::TimeDelta::minutes(119)));
        assert!(!read.in_force(t0 + chrono::TimeDelta::hours(2)));

        let unfreeze = FreezeState {
            frozen: false,
            by: "@bob".into(),
            reason: "unfrozen".into(),
            until: None,
            time: t0 + chrono::TimeDelta::hours(1),
        };
        assert!(store.set_freeze(&env, &app, &unfreeze).unwrap());
        assert!(
            !store.set_freeze(&env, &app, &unfreeze).unwrap(),
            "not frozen any more"
        );
        assert!(!store.freeze_state(&env, &app).unwrap().unwrap().in_force(t0));
        // Another app in the same env is untouched.
        assert_eq!(
            store.freeze_state(&env, &AppName::new("api").unwrap()).unwrap(),
            None
        );
    }
}
