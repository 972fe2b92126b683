//! The facts behind the DORA figures, read from git: releases from the gitops history (when
//! each landed, whether it was a rollback, the artifact record it carried), verifications
//! from the log of the ledger's `refs/auger/verify/<env>/<app>` (when each release became
//! healthy or failed). Only the (env, app) pairs the policies declare are read, so previews
//! and apps no policy names any more stay out, and the Prometheus labels stay bounded.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use super::ReleaseFact;
use crate::artifact::{ArtifactStore, StateKind, StoreError};
use crate::domain::{AppName, CommitSha, EnvName};
use crate::gitops::{GitopsRepo, GitopsTargets, HistoryFilter, WriteError};
use crate::policy::PolicySet;
use crate::verify::state::Verification;

/// How many verification state changes of one pair are read back at most: a release makes a
/// handful, so this covers years of releases.
const VERIFY_LOG_LIMIT: usize = 20_000;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("reading the gitops history: {0}")]
    Gitops(#[from] WriteError),
    #[error("reading the ledger: {0}")]
    Ledger(#[from] StoreError),
}

/// Which pairs to read: an env, an app, and the apps a caller may read (`None`: all).
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub env: Option<EnvName>,
    pub app: Option<AppName>,
    pub readable: Option<Vec<AppName>>,
}

impl Scope {
    fn accepts(&self, env: &EnvName, app: &AppName) -> bool {
        self.env.as_ref().is_none_or(|e| e == env)
            && self.app.as_ref().is_none_or(|a| a == app)
            && self.readable.as_ref().is_none_or(|r| r.contains(app))
    }
}

/// The (env, app) pairs `policies` declare within `scope`, each with whether the env verifies.
pub fn pairs(policies: &PolicySet, scope: &Scope) -> BTreeMap<(EnvName, AppName), bool> {
    let mut out = BTreeMap::new();
    for p in policies.iter() {
        for (env, rules) in p.envs() {
            if scope.accepts(env, p.app()) {
                out.insert((env.clone(), p.app().clone()), rules.verify.is_some());
            }
        }
    }
    out
}

/// What the verification log says about one release (by its gitops commit).
#[derive(Debug, Default, Clone, Copy)]
struct Outcome {
    healthy: Option<DateTime<Utc>>,
    failed: Option<DateTime<Utc>>,
}

/// The facts of every release of `pairs` that landed at `since` or later. Blocking (git).
pub fn facts(
    targets: &GitopsTargets,
    store: &ArtifactStore,
    pairs: &BTreeMap<(EnvName, AppName), bool>,
    since: DateTime<Utc>,
) -> Result<Vec<ReleaseFact>, ReadError> {
    // Each pair's history is in the repository it writes to now (design §16).
    let mut out = Vec::new();
    for target in targets.all() {
        let mine: BTreeMap<(EnvName, AppName), bool> = pairs
            .iter()
            .filter(|((env, app), _)| std::ptr::eq(targets.for_env(env, app), target))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        out.extend(facts_in(&target.cache, store, &mine, since)?);
    }
    out.sort_by_key(|f| f.landed);
    Ok(out)
}

/// [`facts`] of the pairs that write to one gitops repository and branch.
fn facts_in(
    repo: &GitopsRepo,
    store: &ArtifactStore,
    pairs: &BTreeMap<(EnvName, AppName), bool>,
    since: DateTime<Utc>,
) -> Result<Vec<ReleaseFact>, ReadError> {
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    // One pair: let the walk filter; several: one walk, filtered here.
    let filter = match pairs.keys().next() {
        Some((env, app)) if pairs.len() == 1 => HistoryFilter::for_pair(env, app),
        _ => HistoryFilter::default(),
    };
    let records = repo.releases_since(&filter, since)?;
    let mut outcomes: HashMap<(EnvName, AppName), HashMap<CommitSha, Outcome>> = HashMap::new();
    for ((env, app), verifies) in pairs {
        if *verifies {
            outcomes.insert((env.clone(), app.clone()), verify_outcomes(store, env, app)?);
        }
    }
    let mut out = Vec::new();
    for r in records {
        let Some(verifies) = pairs.get(&(r.env.clone(), r.app.clone())) else {
            continue;
        };
        // The commit's own time when CI or the signal gave it; else the artifact's first record.
        let source_time = match r.release.as_ref().and_then(|i| i.record.as_ref()) {
            Some(a) => Some(a.committed.unwrap_or(a.created)),
            // An older release record without the artifact: the ledger has it.
            None => store
                .get_by_id(&r.artifact)?
                .map(|a| a.committed.unwrap_or(a.created)),
        };
        let outcome = if *verifies {
            outcomes
                .get(&(r.env.clone(), r.app.clone()))
                .and_then(|m| m.get(&r.commit))
                .copied()
                .unwrap_or_default()
        } else {
            Outcome {
                healthy: Some(r.time),
                failed: None,
            }
        };
        out.push(ReleaseFact {
            rollback: r.rollback_to.is_some() || r.trigger.is_rollback(),
            env: r.env,
            app: r.app,
            artifact: r.artifact,
            landed: r.time,
            source_time,
            live: outcome.healthy,
            failed: outcome.failed,
        });
    }
    Ok(out)
}

/// Per gitops commit, when its release was healthy and when it failed, from every state the
/// pair's verification record went through.
fn verify_outcomes(
    store: &ArtifactStore,
    env: &EnvName,
    app: &AppName,
) -> Result<HashMap<CommitSha, Outcome>, StoreError> {
    let mut out: HashMap<CommitSha, Outcome> = HashMap::new();
    for (_, v) in store.env_state_log::<Verification>(StateKind::Verify, env, app, VERIFY_LOG_LIMIT)? {
        let o = out.entry(v.commit.clone()).or_default();
        o.healthy = o.healthy.or(v.healthy_at);
        if v.state.is_failure() {
            o.failed = Some(o.failed.map_or(v.since, |f| f.min(v.since)));
        }
    }
    Ok(out)
}
