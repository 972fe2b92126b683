//! Freezes (design §17): the policy's weekly windows and `/freeze` by hand. A frozen (env, app)
//! takes no automatic deploy: the desired release waits (it is not dropped) and goes out when
//! the freeze lifts — at the window's end, which the timer wakes for, or at `/unfreeze`.
//! Freezes are per (env, app), like holds and like the policies that define them: an env's
//! deployers and overriders are an app's.

use chrono::{DateTime, Utc};

use super::steps::blocking;
use super::{Releaser, Result};
use crate::artifact::FreezeState;
use crate::domain::{AppName, EnvName};
use crate::policy::EnvPolicy;

/// A freeze in force: what the reply and the pending status say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frozen {
    /// When it lifts by itself; `None`: at `/unfreeze`.
    pub until: Option<DateTime<Utc>>,
    /// The policy window (`Fri 16:00–Mon 08:00 Europe/Berlin`), for a window's freeze.
    pub window: Option<String>,
    /// Who froze it by hand, and why.
    pub by: String,
    pub reason: String,
}

/// A freeze as `/status` and the dashboard show it: times as people read them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FrozenView {
    pub until: Option<String>,
    pub window: Option<String>,
    pub by: String,
    pub reason: String,
}

impl Frozen {
    pub fn view(&self) -> FrozenView {
        FrozenView {
            until: self.until.map(super::day_time),
            window: self.window.clone(),
            by: self.by.clone(),
            reason: self.reason.clone(),
        }
    }
}

/// The freeze in force at `now` from the env's windows and the state set by hand, if any. A
/// freeze by hand without an end outlasts any window; otherwise the later end counts.
pub fn frozen_at(rules: &EnvPolicy, by_hand: Option<&FreezeState>, now: DateTime<Utc>) -> Option<Frozen> {
    let window = rules
        .freeze
        .iter()
        .filter_map(|w| w.active_until(now).map(|end| (end, w)))
        .max_by_key(|(end, _)| *end);
    let by_hand = by_hand.filter(|s| s.in_force(now));
    match (by_hand, window) {
        (Some(s), Some((end, _))) if s.until.is_some_and(|u| u < end) => Some(window_freeze(end, rules, now)),
        (Some(s), _) => Some(Frozen {
            until: s.until,
            window: None,
            by: s.by.clone(),
            reason: s.reason.clone(),
        }),
        (None, Some((end, _))) => Some(window_freeze(end, rules, now)),
        (None, None) => None,
    }
}

fn window_freeze(end: DateTime<Utc>, rules: &EnvPolicy, now: DateTime<Utc>) -> Frozen {
    let windows: Vec<String> = rules
        .freeze
        .iter()
        .filter(|w| w.contains(now))
        .map(|w| format!("{}–{} {}", w.from, w.to, w.tz))
        .collect();
    Frozen {
        until: Some(end),
        window: Some(windows.join(", ")),
        by: String::new(),
        reason: String::new(),
    }
}

impl Releaser {
    /// The freeze on (env, app) now, if any.
    pub async fn frozen(&self, env: &EnvName, app: &AppName) -> Result<Option<Frozen>> {
        let (_, rules) = &self.rules(app, env)?;
        let rules = rules.clone();
        let by_hand = self.read_freeze(env, app).await?;
        Ok(frozen_at(&rules, by_hand.as_ref(), self.clock.now()))
    }

    /// `/freeze`: no automatic deploys of `app` to `env` until `until` (or `/unfreeze`).
    /// `false`: the same freeze was already in force.
    pub async fn freeze(
        &self,
        env: &EnvName,
        app: &AppName,
        by: &str,
        reason: &str,
        until: Option<DateTime<Utc>>,
    ) -> Result<bool> {
        self.rules(app, env)?;
        let state = FreezeState {
            frozen: true,
            by: by.to_owned(),
            reason: reason.to_owned(),
            until,
            time: self.clock.now(),
        };
        self.write_freeze(env, app, state).await
    }

    /// `/unfreeze`: lifts the freeze set by hand; the newest desired release of (env, app)
    /// goes out at once, unless a policy window still freezes it. `false`: it was not frozen
    /// by hand.
    pub async fn unfreeze(&self, env: &EnvName, app: &AppName, by: &str) -> Result<bool> {
        self.rules(app, env)?;
        let state = FreezeState {
            frozen: false,
            by: by.to_owned(),
            reason: "unfrozen".into(),
            until: None,
            time: self.clock.now(),
        };
        let changed = self.write_freeze(env, app, state).await?;
        {
            let _serial = self.begin().await;
            if let Err(e) = self
                .desired
                .due_now(|d| d.plan.env == *env && d.plan.app == *app)
                .await
            {
                tracing::warn!(error = %e, "cannot make the releases waiting for the freeze due");
            }
            self.pass().await;
        }
        Ok(changed)
    }

    /// The last freeze set by hand on (env, app).
    pub async fn freeze_state(&self, env: &EnvName, app: &AppName) -> Result<Option<FreezeState>> {
        self.read_freeze(env, app).await
    }

    async fn read_freeze(&self, env: &EnvName, app: &AppName) -> Result<Option<FreezeState>> {
        let store = self.store.clone();
        let (env, app) = (env.clone(), app.clone());
        blocking(move || store.freeze_state(&env, &app)).await
    }

    async fn write_freeze(&self, env: &EnvName, app: &AppName, state: FreezeState) -> Result<bool> {
        let store = self.store.clone();
        let (env, app) = (env.clone(), app.clone());
        blocking(move || store.set_freeze(&env, &app, &state)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn rules_with_weekend_window() -> EnvPolicy {
        toml::from_str(r#"freeze = [{ from = "Fri 16:00", to = "Mon 08:00", tz = "UTC" }]"#).unwrap()
    }

    fn by_hand(until: Option<&str>) -> FreezeState {
        FreezeState {
            frozen: true,
            by: "@alice".into(),
            reason: "incident".into(),
            until: until.map(utc),
            time: utc("2026-12-01T00:00:00Z"),
        }
    }

    #[test]
    fn a_window_freezes_until_its_end_and_a_freeze_by_hand_until_its_own() {
        let rules = rules_with_weekend_window();
        let saturday = utc("2026-12-05T12:00:00Z");
        let f = frozen_at(&rules, None, saturday).unwrap();
        assert_eq!(f.until, Some(utc("2026-12-07T08:00:00Z")));
        assert_eq!(f.window.as_deref(), Some("Fri 16:00–Mon 08:00 UTC"));
        let wednesday = utc("2026-12-09T12:00:00Z");
        assert_eq!(frozen_at(&rules, None, wednesday), None);

        // By hand without an end: in force whatever the windows say.
        let f = frozen_at(&rules, Some(&by_hand(None)), wednesday).unwrap();
        assert_eq!((f.until, f.by.as_str()), (None, "@alice"));
        let f = frozen_at(&rules, Some(&by_hand(None)), saturday).unwrap();
        assert_eq!(f.until, None, "an open-ended freeze outlasts the window");
        // By hand ending before the window does: the window's end counts.
        let f = frozen_at(&rules, Some(&by_hand(Some("2026-12-05T13:00:00Z"))), saturday).unwrap();
        assert_eq!(f.until, Some(utc("2026-12-07T08:00:00Z")));
        // Past its end it is over.
        assert_eq!(
            frozen_at(
                &EnvPolicy::default(),
                Some(&by_hand(Some("2026-12-05T13:00:00Z"))),
                wednesday
            ),
            None
        );
        // An unfreeze is no freeze.
        let mut lifted = by_hand(None);
        lifted.frozen = false;
        assert_eq!(frozen_at(&EnvPolicy::default(), Some(&lifted), wednesday), None);
    }
}
