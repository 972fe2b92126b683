//! Plan: which releases go out now. Recorded artifacts call for the policy's `auto` releases;
//! a held (env, app) takes none; an `after` gate that is still closed parks the plan in the
//! waiting list, which every operation re-checks; a rollback returns to an earlier release
//! read from the gitops history.

use super::{blocking, log_outcome};
use crate::artifact::{Artifact, ArtifactId, RecordOutcome};
use crate::domain::{AppName, BranchName, EnvName};
use crate::gitops::{HistoryFilter, ReleaseRecord, Trigger};
use crate::notify::ReplyRef;
use crate::release::plan::{Gate, Plan, auto_plans, gate};
use crate::release::waiting::WaitingPlan;
use crate::release::{ReleaseError, ReleaseOutcome, Releaser, Result, text};

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
    }
}

impl Releaser {
    /// The automatic releases that recorded artifacts call for; unchanged records
    /// (redeliveries) call for nothing.
    pub(in crate::release) fn plans_for(&self, recorded: &[(Artifact, RecordOutcome)]) -> Vec<Plan> {
        let mut plans = Vec::new();
        for (incoming, outcome) in recorded {
            let merged = match outcome {
                RecordOutcome::Created(a) | RecordOutcome::Updated(a) => a,
                RecordOutcome::Unchanged(_) => continue,
            };
            let Some(policy) = self.policies.get(&merged.app) else {
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
            plans.extend(auto_plans(policy, merged, incoming, |b| {
                latest.iter().any(|(x, l)| x == b && *l)
            }));
        }
        plans
    }

    /// Hold, then gate, then release or park.
    pub(in crate::release) async fn gated(&self, plan: Plan) -> Result<ReleaseOutcome> {
        self.rules(&plan.app, &plan.env)?;
        if let Some(h) = self.read_hold(&plan.env, &plan.app).await?
            && h.held
        {
            return Ok(ReleaseOutcome::Held {
                reason: text::on_hold(&plan.env, &plan.app, &h),
            });
        }
        let (artifact, gate) = self.check_gate(&plan).await?;
        match text::closed_gate(&gate) {
            None => self.release_locked(&plan, Some(&artifact)).await,
            Some(reason) => {
                if let Some(old) = self
                    .waiting
                    .hold(plan.clone(), reason.clone(), self.clock.now())?
                {
                    tracing::info!(env = %plan.env, superseded = %old, artifact = %plan.artifact, "a newer artifact supersedes the waiting one");
                }
                Ok(ReleaseOutcome::Held { reason })
            }
        }
    }

    /// The plan's artifact and whether its `after` gate lets it through now.
    async fn check_gate(&self, plan: &Plan) -> Result<(Artifact, Gate)> {
        let (_, rules) = self.rules(&plan.app, &plan.env)?;
        let artifact = self.artifact(&plan.artifact).await?;
        let Some(after) = &rules.after else {
            return Ok((artifact, Gate::Open));
        };
        let store = self.store.clone();
        let (env, app) = (after.env.clone(), plan.app.clone());
        let live = blocking(move || store.released_at(&env, &app)).await?;
        let gate = gate(
            Some(after),
            &artifact.sha,
            live.as_ref().map(|(a, t)| (&a.sha, *t)),
            self.clock.now(),
        );
        Ok((artifact, gate))
    }

    /// Held plans whose gate opened go out; repeated while releases open further gates
    /// (staging → canary → production with no soak), bounded by the number of plans.
    pub(in crate::release) async fn drain_waiting(&self) -> Vec<(Plan, Result<ReleaseOutcome>)> {
        let mut out = Vec::new();
        for _ in 0..=self.waiting.list().len() {
            let before = out.len();
            for w in self.waiting.list() {
                if let Some(done) = self.retry_waiting(w).await {
                    out.push(done);
                }
            }
            if out.len() == before {
                break;
            }
        }
        out
    }

    /// One waiting plan: dropped if its (env, app) is on hold, released if its gate opened,
    /// else left waiting with its reason brought up to date. `Some` when it was released.
    async fn retry_waiting(&self, w: WaitingPlan) -> Option<(Plan, Result<ReleaseOutcome>)> {
        let plan = w.plan;
        if matches!(self.read_hold(&plan.env, &plan.app).await, Ok(Some(h)) if h.held) {
            let _ = self.waiting.release(&plan.env, &plan.app, &plan.artifact);
            return None;
        }
        match self
            .check_gate(&plan)
            .await
            .map(|(artifact, gate)| (artifact, text::closed_gate(&gate)))
        {
            Ok((artifact, None)) => {
                let result = self.release_locked(&plan, Some(&artifact)).await;
                log_outcome(&plan, &result);
                if !matches!(result, Err(ref e) if !e.is_user_error()) {
                    // Released, or can never be (the app or env is gone): done with it.
                    // An internal error keeps it for the next tick.
                    if let Err(e) = self.waiting.release(&plan.env, &plan.app, &plan.artifact) {
                        tracing::error!(error = %e, "cannot update the waiting plans");
                    }
                }
                Some((plan, result))
            }
            Ok((_, Some(reason))) => {
                if reason != w.reason {
                    let _ = self.waiting.hold(plan, reason, self.clock.now());
                }
                None
            }
            Err(e) => {
                tracing::warn!(env = %plan.env, app = %plan.app, error = %e, "cannot check a waiting plan");
                None
            }
        }
    }

    /// The release of (env, app) a rollback returns to: the newest of `to`, else the newest
    /// one of another artifact than the live one. Returning to what runs is refused.
    pub(in crate::release) async fn rollback_target(
        &self,
        env: &EnvName,
        app: &AppName,
        to: Option<&ArtifactId>,
    ) -> Result<RollbackTarget> {
        let gitops = self.gitops.clone();
        let filter = HistoryFilter::for_pair(env, app);
        let history = blocking(move || {
            gitops.fetch()?;
            gitops.releases(&filter)
        })
        .await?;
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
