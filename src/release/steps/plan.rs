//! Plan: which releases recorded artifacts call for (the policy's `auto` rules), whether an
//! `after` gate lets one through now, and the release a rollback returns to, read from the
//! gitops history.

use super::blocking;
use crate::artifact::{Artifact, ArtifactId, RecordOutcome};
use crate::domain::{AppName, BranchName, EnvName};
use crate::gitops::{HistoryFilter, ReleaseRecord, Trigger};
use crate::notify::ReplyRef;
use crate::release::plan::{Gate, Plan, auto_plans, gate};
use crate::release::{ReleaseError, ReleaseOutcome, Releaser, Result};

/// The release a rollback returns to, and the artifact live before it.
pub(in crate::release) struct RollbackTarget {
    pub record: ReleaseRecord,
    pub current: Option<ArtifactId>,
}

/// The plan of a rollback of (env, app) to `artifact`, asked for by `by`.
pub(in crate::release) fn rollback_plan(
    env: &EnvName,
    app: &AppName,
    artifact: &Artifact,
    by: &str,
    reply: Option<ReplyRef>,
) -> Plan {
    Plan {
        env: env.clone(),
        app: app.clone(),
        artifact: artifact.id.clone(),
        trigger: Trigger::Rollback(by.trim_start_matches('@').to_owned()),
        reason: format!("rollback to {}", artifact.id),
        reply,
        overrides: Vec::new(),
    }
}

impl Releaser {
    /// The automatic releases that recorded artifacts call for; unchanged records
    /// (redeliveries) call for nothing, unless the event is replayed after a crash.
    pub(in crate::release) fn plans_for(
        &self,
        recorded: &[(Artifact, RecordOutcome)],
        replayed: bool,
    ) -> Vec<Plan> {
        let mut plans = Vec::new();
        for (incoming, outcome) in recorded {
            let merged = match outcome {
                RecordOutcome::Created(a) | RecordOutcome::Updated(a) => a,
                RecordOutcome::Unchanged(a) if replayed => a,
                RecordOutcome::Unchanged(_) => continue,
            };
            let Some(policy) = self.policies().get(&merged.app).cloned() else {
                continue;
            };
            let latest: Vec<(BranchName, bool)> = incoming
                .branches
                .iter()
                .map(|b| {
                    let is_latest = self
                        .store
                        .latest(&merged.app, b)
                        .ok()
                        .flatten()
                        .is_some_and(|l| l.sha == merged.sha);
                    (b.clone(), is_latest)
                })
                .collect();
            plans.extend(auto_plans(&policy, merged, incoming, |b| {
                latest.iter().any(|(x, l)| x == b && *l)
            }));
        }
        plans
    }

    /// The plan's artifact and whether its `after` gate lets it through now.
    pub(in crate::release) async fn check_gate(&self, plan: &Plan) -> Result<(Artifact, Gate)> {
        let (_, rules) = &self.rules(&plan.app, &plan.env)?;
        let artifact = self.artifact(&plan.artifact).await?;
        let Some(after) = &rules.after else {
            return Ok((artifact, Gate::Open));
        };
        let store = self.store.clone();
        let (env, app) = (after.env.clone(), plan.app.clone());
        let mut live = blocking(move || store.released_at(&env, &app)).await?;
        // Upstream verifies: the soak counts from healthy, and a release not (or no longer)
        // healthy there does not count at all.
        let verifies = self.verify_rule(&after.env, &plan.app).is_some();
        if verifies {
            let v = self.verification(&after.env, &plan.app).await?;
            live = live.and_then(|(a, _)| {
                let v = v.filter(|v| v.artifact == a.id && !v.state.is_failure())?;
                Some((a, v.healthy_at?))
            });
        }
        let gate = gate(
            Some(after),
            &artifact.sha,
            live.as_ref().map(|(a, t)| (&a.sha, *t)),
            verifies,
            self.clock.now(),
        );
        Ok((artifact, gate))
    }

    /// A rollback's release: `<env>/<app>/` as the newest release of `plan`'s artifact there
    /// wrote it, through the env's merge mode. Once it is written, that newest release is the
    /// rollback itself, whose files are the same: a repeat finds nothing to change.
    pub(in crate::release) async fn rollback_locked(
        &self,
        plan: &Plan,
        from: Option<&ArtifactId>,
    ) -> Result<ReleaseOutcome> {
        self.rules(&plan.app, &plan.env)?;
        let history = self.release_history(&plan.env, &plan.app).await?;
        let record = history
            .into_iter()
            .find(|r| r.artifact == plan.artifact)
            .ok_or_else(|| ReleaseError::NeverReleased {
                env: plan.env.clone(),
                artifact: plan.artifact.clone(),
            })?;
        let (artifact, content) = self.rollback_source(&plan.env, &plan.app, &record).await?;
        let rendered = self.rollback_rendered(plan, &artifact, content);
        self.deliver(plan, &artifact, rendered, from.cloned()).await
    }

    /// The releases of (env, app) in the gitops history, newest first, after a fetch.
    async fn release_history(&self, env: &EnvName, app: &AppName) -> Result<Vec<ReleaseRecord>> {
        let gitops = self.target(env, app).cache.clone();
        let filter = HistoryFilter::for_pair(env, app);
        blocking(move || {
            gitops.fetch()?;
            gitops.releases(&filter)
        })
        .await
    }

    /// The release of (env, app) a rollback returns to: the newest of `to`, else the newest
    /// one of another artifact than the live one. Returning to what runs is refused.
    pub(in crate::release) async fn rollback_target(
        &self,
        env: &EnvName,
        app: &AppName,
        to: Option<&ArtifactId>,
    ) -> Result<RollbackTarget> {
        let history = self.release_history(env, app).await?;
        let current = history.first().map(|r| r.artifact.clone());
        let record = match to {
            Some(to) => history.into_iter().find(|r| &r.artifact == to).ok_or_else(|| {
                ReleaseError::NeverReleased {
                    env: env.clone(),
                    artifact: to.clone(),
                }
            })?,
            None => history
                .into_iter()
                .find(|r| Some(&r.artifact) != current.as_ref())
                .ok_or_else(|| ReleaseError::NothingToRollBack {
                    env: env.clone(),
                    app: app.clone(),
                })?,
        };
        if Some(&record.artifact) == current.as_ref() {
            return Err(ReleaseError::AlreadyLive {
                env: env.clone(),
                artifact: record.artifact,
            });
        }
        Ok(RollbackTarget { record, current })
    }
}
