//! Plans held by an `after` gate, kept on disk so a restart does not lose them.
//!
//! One small JSON file (`<data_dir>/waiting-plans.json`), rewritten whole on every change:
//! written to a temporary file, fsynced, renamed over the old one, and the folder fsynced, so
//! a crash leaves the old or the new list. There is at most one waiting plan per (env, app):
//! a newer artifact supersedes the one that waited.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::plan::Plan;
use crate::artifact::ArtifactId;
use crate::domain::{AppName, EnvName};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingPlan {
    pub plan: Plan,
    pub since: DateTime<Utc>,
    /// Why it waits, as last checked.
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
#[error("waiting plans {}: {message}", path.display())]
pub struct WaitingError {
    pub path: PathBuf,
    pub message: String,
}

pub struct WaitingPlans {
    path: PathBuf,
    plans: Mutex<BTreeMap<String, WaitingPlan>>,
}

fn key(env: &EnvName, app: &AppName) -> String {
    format!("{env}/{app}")
}

impl WaitingPlans {
    /// Loads the list at `path` (none yet: empty). A corrupt file is an error, not an empty
    /// list: silently dropping held releases is what this file exists to prevent.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, WaitingError> {
        let path = path.into();
        let plans = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<Vec<WaitingPlan>>(&bytes)
                .map_err(|e| WaitingError {
                    path: path.clone(),
                    message: format!("not a list of waiting plans: {e}"),
                })?
                .into_iter()
                .map(|w| (key(&w.plan.env, &w.plan.app), w))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                return Err(WaitingError {
                    path,
                    message: e.to_string(),
                });
            }
        };
        Ok(WaitingPlans {
            path,
            plans: Mutex::new(plans),
        })
    }

    /// Holds `plan`, replacing what waited for the same (env, app). Returns the artifact it
    /// superseded, if another one waited.
    pub fn hold(
        &self,
        plan: Plan,
        reason: String,
        now: DateTime<Utc>,
    ) -> Result<Option<ArtifactId>, WaitingError> {
        let mut plans = self.lock();
        let k = key(&plan.env, &plan.app);
        let previous = plans.get(&k).cloned();
        let since = match &previous {
            Some(p) if p.plan.artifact == plan.artifact => p.since,
            _ => now,
        };
        if previous
            .as_ref()
            .is_some_and(|p| p.plan == plan && p.reason == reason)
        {
            return Ok(None);
        }
        plans.insert(k.clone(), WaitingPlan { plan, since, reason });
        if let Err(e) = self.save(&plans) {
            match previous.clone() {
                Some(p) => plans.insert(k, p),
                None => plans.remove(&k),
            };
            return Err(e);
        }
        Ok(previous
            .map(|p| p.plan.artifact)
            .filter(|a| *a != plans[&k].plan.artifact))
    }

    /// Drops the plan for (env, app) if it is still for `artifact` (a newer one stays).
    pub fn release(&self, env: &EnvName, app: &AppName, artifact: &ArtifactId) -> Result<(), WaitingError> {
        let mut plans = self.lock();
        let k = key(env, app);
        if plans.get(&k).is_some_and(|w| &w.plan.artifact == artifact) {
            let old = plans.remove(&k);
            if let Err(e) = self.save(&plans) {
                if let Some(old) = old {
                    plans.insert(k, old);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    pub fn list(&self) -> Vec<WaitingPlan> {
        self.lock().values().cloned().collect()
    }

    pub fn get(&self, env: &EnvName, app: &AppName) -> Option<WaitingPlan> {
        self.lock().get(&key(env, app)).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, WaitingPlan>> {
        self.plans.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn save(&self, plans: &BTreeMap<String, WaitingPlan>) -> Result<(), WaitingError> {
        let err = |e: std::io::Error| WaitingError {
            path: self.path.clone(),
            message: e.to_string(),
        };
        let list: Vec<&WaitingPlan> = plans.values().collect();
        let bytes = serde_json::to_vec_pretty(&list).map_err(|e| WaitingError {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(err)?;
        let tmp = self.path.with_extension("json.tmp");
        let mut f = File::create(&tmp).map_err(err)?;
        f.write_all(&bytes).map_err(err)?;
        f.sync_all().map_err(err)?;
        fs::rename(&tmp, &self.path).map_err(err)?;
        File::open(dir).and_then(|d| d.sync_all()).map_err(err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::CommitSha;
    use crate::gitops::Trigger;

    fn plan(env: &str, sha: char) -> Plan {
        let app = AppName::new("web").unwrap();
        Plan {
            env: EnvName::new(env).unwrap(),
            artifact: ArtifactId::for_artifact(&app, &CommitSha::new(sha.to_string().repeat(40)).unwrap()),
            app,
            trigger: Trigger::Policy,
            reason: "tag v1".into(),
            reply: None,
        }
    }

    #[test]
    fn plans_survive_a_reopen_and_a_newer_artifact_supersedes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.json");
        let now = Utc::now();
        let w = WaitingPlans::open(&path).unwrap();
        assert_eq!(w.hold(plan("production", 'a'), "soak".into(), now).unwrap(), None);
        let superseded = w.hold(plan("production", 'b'), "soak".into(), now).unwrap();
        assert_eq!(superseded, Some(plan("production", 'a').artifact));
        w.hold(plan("canary", 'a'), "soak".into(), now).unwrap();
        drop(w);

        let w = WaitingPlans::open(&path).unwrap();
        let held: Vec<String> = w
            .list()
            .iter()
            .map(|p| format!("{}:{}", p.plan.env, p.plan.artifact))
            .collect();
        assert_eq!(held, ["canary:web@aaaaaaaaaaaa", "production:web@bbbbbbbbbbbb"]);
        // Releasing an artifact that no longer waits leaves the newer plan alone.
        let env = EnvName::new("production").unwrap();
        w.release(
            &env,
            &AppName::new("web").unwrap(),
            &plan("production", 'a').artifact,
        )
        .unwrap();
        assert!(w.get(&env, &AppName::new("web").unwrap()).is_some());
        w.release(
            &env,
            &AppName::new("web").unwrap(),
            &plan("production", 'b').artifact,
        )
        .unwrap();
        assert!(
            WaitingPlans::open(&path)
                .unwrap()
                .get(&env, &AppName::new("web").unwrap())
                .is_none()
        );
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.json");
        fs::write(&path, "{not json").unwrap();
        let e = WaitingPlans::open(&path).err().unwrap();
        assert!(e.to_string().contains("w.json"), "{e}");
    }
}
