//! Verification (design §15): a merged release is live only once the cluster says so. The
//! record of each (env, app)'s current release lives in the ledger
//! (`refs/auger/verify/<env>/<app>`); reports from Flux, Argo CD or commit statuses on the
//! gitops commit move it, the release loop's timer ends soaks and times out silent
//! controllers, and a failure does what the env's `on_failure` says.

use chrono::{DateTime, Utc};

use super::desired::{Desired, Final, Owed, Want};
use super::plan::Plan;
use super::steps::blocking;
use super::{Releaser, Result, text};
use crate::artifact::{Artifact, ArtifactId, Change, StateKind};
use crate::domain::{AppName, CommitSha, EnvName};
use crate::forge::DeploymentId;
use crate::gitops::{GitopsTarget, Trigger, same_repo};
use crate::notify::{FailureKind, ReleaseEvent, ReplyRef, ReplyText, render_reply};
use crate::policy::{OnFailure, VerifyRule};
use crate::verify::state::{Containment, Seen, Verification, VerifyState};
use crate::verify::{Controller, Report};

/// Who a rollback after a failed verification is by, in holds and logs.
const VERIFY_ACTOR: &str = "auger verify";

/// When an open verification may next end by itself (a soak or a deadline), as far as the
/// ledger was last read; until the first read nothing is known, so the first pass reads it.
#[derive(Debug, Default)]
pub(super) struct Due {
    scanned: bool,
    next: Option<DateTime<Utc>>,
}

/// A merged release that the env verifies: what [`Releaser::start_verification`] needs.
pub(super) struct Merged<'a> {
    pub env: &'a EnvName,
    pub artifact: &'a Artifact,
    pub trigger: &'a Trigger,
    pub commit: &'a CommitSha,
    pub pull: Option<u64>,
    pub deployment: Option<DeploymentId>,
    pub reply: Option<&'a ReplyRef>,
    pub rollback_from: Option<&'a ArtifactId>,
    /// What the env ran before this release, if the ledger knew.
    pub previous: Option<ArtifactId>,
}

impl Releaser {
    /// The env's `verify` rule, if it has one.
    pub(super) fn verify_rule(&self, env: &EnvName, app: &AppName) -> Option<VerifyRule> {
        self.policies().get(app)?.env(env)?.verify.clone()
    }

    /// The verification record of (env, app)'s current release.
    pub async fn verification(&self, env: &EnvName, app: &AppName) -> Result<Option<Verification>> {
        let store = self.store.clone();
        let (env, app) = (env.clone(), app.clone());
        blocking(move || store.env_state::<Verification>(StateKind::Verify, &env, &app)).await
    }

    /// Every verification record, final or not.
    pub async fn verifications(&self) -> Result<Vec<(EnvName, AppName, Verification)>> {
        let store = self.store.clone();
        blocking(move || store.env_states::<Verification>(StateKind::Verify)).await
    }

    async fn save_verification(
        &self,
        env: &EnvName,
        app: &AppName,
        v: &Verification,
        what: &str,
    ) -> Result<()> {
        let store = self.store.clone();
        let message = format!("verify {env}/{app} {}: {} {what}", v.artifact, v.state);
        let (env, app, v2, now) = (env.clone(), app.clone(), v.clone(), self.clock.now());
        blocking(move || {
            let change = Change {
                message: &message,
                time: now,
            };
            store.set_env_state((StateKind::Verify, &env, &app), &v2, change, |old| *old == v2)
        })
        .await?;
        self.note_verify_due(v);
        Ok(())
    }

    /// The release is merged in an env that verifies: the record starts at `merged` (a
    /// replay of the same release finds it and does nothing), the status says "applying",
    /// and an earlier release still being verified is superseded.
    pub(super) async fn start_verification(&self, m: Merged<'_>, rule: &VerifyRule) -> Result<()> {
        let app = &m.artifact.app;
        let old = self.verification(m.env, app).await?;
        if let Some(old) = &old
            && old.artifact == m.artifact.id
            && old.commit == *m.commit
        {
            return Ok(());
        }
        let now = self.clock.now();
        let last_verified = match &old {
            Some(o) if o.state == VerifyState::Verified => Some(o.artifact.clone()),
            Some(o) => o.last_verified.clone(),
            // Verification is new here: what ran before it is the last known good release.
            None => m.previous.clone(),
        }
        .filter(|a| *a != m.artifact.id);
        if let Some(old) = old.filter(|o| o.is_open()) {
            self.settle(Owed {
                env: m.env.clone(),
                app: app.clone(),
                artifact: old.artifact.clone(),
                trigger: old.trigger.clone(),
                outcome: Final::Superseded {
                    by: m.artifact.id.clone(),
                },
                deployment: old.deployment,
            })
            .await;
        }
        let mut ev = self
            .verify_event(m.env, m.artifact, m.trigger, m.deployment)
            .await;
        ev.gitops_sha = Some(m.commit.clone());
        ev.gitops_commit_url = self.gitops_commit_url(m.env, app, m.commit).await;
        let deployment = self
            .notifier
            .release_applying(&ev, &format!("merged, {}", text::verify_waits_for(rule)))
            .await;
        let timeout = chrono::Duration::from_std(rule.timeout).unwrap_or(chrono::Duration::MAX);
        let v = Verification {
            artifact: m.artifact.id.clone(),
            commit: m.commit.clone(),
            state: VerifyState::Merged,
            since: now,
            merged_at: now,
            deadline: now
                .checked_add_signed(timeout)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
            healthy_at: None,
            soak_until: None,
            revision: None,
            reported_by: None,
            message: String::new(),
            trigger: m.trigger.clone(),
            last_verified,
            rollback_from: m.rollback_from.cloned(),
            deployment: deployment.or(m.deployment),
            reply: m.reply.cloned(),
            pull: m.pull,
        };
        if let Some(reply) = m.reply {
            let text = render_reply(&ReplyText {
                state: "applying",
                env: m.env.as_str(),
                artifact: &m.artifact.id.to_string(),
                link: &text::merged_by(m.pull, m.commit),
                detail: &text::verify_waits_for(rule),
                ..Default::default()
            });
            self.notifier.reply(reply, &text).await;
        }
        self.save_verification(m.env, app, &v, "(release merged)").await
    }

    /// A controller report: every open verification it speaks for (the env listens to that
    /// controller and object, the report is about the env's gitops repository, and the
    /// reported revision contains the release) moves on.
    /// Returns how many moved.
    pub async fn on_report(&self, report: &Report) -> Result<usize> {
        let _serial = self.begin().await;
        let Some(revision) = &report.revision else {
            tracing::info!(controller = ?report.controller, object = %report.object, "report names no gitops revision: ignored");
            return Ok(0);
        };
        let listening: Vec<(EnvName, AppName, std::time::Duration)> = self
            .policies()
            .iter()
            .flat_map(|p| {
                p.envs().filter_map(move |(env, rules)| {
                    let rule = rules.verify.as_ref()?;
                    let hears = rule.by.hears(report.controller, &report.object);
                    hears.then(|| (env.clone(), p.app().clone(), rule.soak))
                })
            })
            .collect();
        if listening.is_empty() {
            tracing::info!(controller = ?report.controller, object = %report.object, "no environment listens to this report: ignored");
            return Ok(0);
        }
        // Each env hears the report against its own gitops repository: the revision is looked
        // up (once per repository) in the cache of the repository the env releases to.
        let mut resolved: Vec<(std::path::PathBuf, Option<String>)> = Vec::new();
        let mut moved = 0;
        for (env, app, soak) in listening {
            let target = self.target(&env, &app).clone();
            if report.repo.as_ref().is_some_and(|r| !same_repo(r, &target.repo)) {
                continue;
            }
            let Some(v) = self.verification(&env, &app).await? else {
                continue;
            };
            if !v.is_open() {
                continue;
            }
            let dir = target.cache.cache_dir().to_owned();
            let full = match resolved.iter().find(|(d, _)| *d == dir) {
                Some((_, full)) => full.clone(),
                None => {
                    let full = self.resolve_revision(&target, revision.as_str()).await?;
                    if full.is_none() {
                        tracing::info!(
                            revision = revision.as_str(),
                            repo = %target.repo,
                            "report names a revision this gitops repository does not have"
                        );
                    }
                    resolved.push((dir, full.clone()));
                    full
                }
            };
            let Some(full) = full else { continue };
            let containment = self.containment(&target, &v, &full).await?;
            let now = self.clock.now();
            let seen = Seen {
                by: report.controller,
                health: report.health,
                containment,
                revision: &full,
                message: &report.message,
            };
            let Some(next) = v.on_report(&seen, soak, now) else {
                continue;
            };
            self.verification_moved(&env, &app, &v, next).await?;
            moved += 1;
        }
        if moved > 0 {
            self.pass().await;
        }
        Ok(moved)
    }

    /// Soaks that ended and deadlines that passed, for every open verification.
    /// Reads the ledger only when something may be due: a pass runs after every event.
    pub(super) async fn verify_pass(&self) {
        let now = self.clock.now();
        {
            let due = self.verify_due.lock().unwrap_or_else(|p| p.into_inner());
            if due.scanned && due.next.is_none_or(|at| at > now) {
                return;
            }
        }
        let all = match self.verifications().await {
            Ok(all) => all,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the verifications");
                return;
            }
        };
        let mut next_due: Option<DateTime<Utc>> = None;
        for (env, app, v) in all {
            let v = match v.on_time(now) {
                Some(next) => match self.verification_moved(&env, &app, &v, next.clone()).await {
                    Ok(()) => next,
                    Err(e) => {
                        tracing::error!(%env, %app, error = %e, "cannot record a verification's end");
                        v
                    }
                },
                None => v,
            };
            next_due = next_due.into_iter().chain(v.due()).min();
        }
        *self.verify_due.lock().unwrap_or_else(|p| p.into_inner()) = Due {
            scanned: true,
            next: next_due,
        };
    }

    /// The next time a verification may end by itself.
    pub(super) fn next_verify_due(&self) -> Option<DateTime<Utc>> {
        self.verify_due.lock().unwrap_or_else(|p| p.into_inner()).next
    }

    fn note_verify_due(&self, v: &Verification) {
        let Some(due) = v.due() else { return };
        let mut known = self.verify_due.lock().unwrap_or_else(|p| p.into_inner());
        known.next = Some(known.next.map_or(due, |n| n.min(due)));
    }

    /// Records `next` and says so where people look; a failure then does what the env's
    /// `on_failure` says.
    async fn verification_moved(
        &self,
        env: &EnvName,
        app: &AppName,
        old: &Verification,
        next: Verification,
    ) -> Result<()> {
        tracing::info!(%env, %app, artifact = %next.artifact, from = %old.state, to = %next.state, message = %next.message, "verification moved");
        let what = match &next.revision {
            Some(r) if next.revision != old.revision => format!("at {}", &r[..r.len().min(12)]),
            _ => String::new(),
        };
        self.save_verification(env, app, &next, &what).await?;
        let Ok(artifact) = self.artifact(&next.artifact).await else {
            return Ok(());
        };
        let mut ev = self
            .verify_event(env, &artifact, &next.trigger, next.deployment)
            .await;
        ev.gitops_sha = Some(next.commit.clone());
        ev.gitops_commit_url = self.gitops_commit_url(env, app, &next.commit).await;
        ev.environment_url = self.environment_url(env, app);
        let became_healthy = old.healthy_at.is_none() && next.healthy_at.is_some();
        match next.state {
            VerifyState::Merged => {}
            VerifyState::Applied => {
                self.notifier
                    .release_applying(&ev, "applied, waiting for healthy")
                    .await;
            }
            VerifyState::Healthy => {
                self.notifier.release_healthy(&ev).await;
                let until = next.soak_until.map(text::clock_time).unwrap_or_default();
                self.notifier
                    .release_waiting(&ev, &format!("healthy, soaking until {until}"))
                    .await;
            }
            VerifyState::Verified => {
                if became_healthy {
                    self.notifier.release_healthy(&ev).await;
                }
                let rollback = next.trigger.is_rollback();
                if !self
                    .notifier
                    .release_verified(&ev, rollback, next.rollback_from.as_ref())
                    .await
                {
                    self.desired
                        .owe(Owed {
                            env: env.clone(),
                            app: app.clone(),
                            artifact: next.artifact.clone(),
                            trigger: next.trigger.clone(),
                            outcome: Final::Released {
                                commit: next.commit.clone(),
                                rollback,
                                verified: true,
                            },
                            deployment: next.deployment,
                        })
                        .await?;
                }
                self.reply_verified(env, &next, "verified", "").await;
            }
            VerifyState::Failed | VerifyState::TimedOut => {
                let reason = text::verify_failed(env, &next);
                self.settle(Owed {
                    env: env.clone(),
                    app: app.clone(),
                    artifact: next.artifact.clone(),
                    trigger: next.trigger.clone(),
                    outcome: Final::Failed {
                        reason: reason.clone(),
                        kind: FailureKind::Failed,
                    },
                    deployment: next.deployment,
                })
                .await;
                let then = self.after_failure(env, app, &next).await?;
                self.reply_verified(env, &next, "verify_failed", &format!("{reason}{then}"))
                    .await;
            }
        }
        Ok(())
    }

    /// What a failed verification does next (`on_failure`); returns what to add to the
    /// messages ("; rolled back to …").
    async fn after_failure(&self, env: &EnvName, app: &AppName, v: &Verification) -> Result<String> {
        let Some(rule) = self.verify_rule(env, app) else {
            return Ok(String::new());
        };
        if rule.on_failure == OnFailure::Report {
            return Ok(String::new());
        }
        let reason = format!(
            "verification of {} {}",
            v.artifact,
            v.state.as_str().replace('_', " ")
        );
        self.set_hold(env, app, true, VERIFY_ACTOR, &reason).await?;
        if rule.on_failure == OnFailure::Hold {
            return Ok(text::verify_then_held(env, None, None));
        }
        if v.is_rollback() {
            return Ok(text::verify_then_held(env, None, Some("it is a rollback itself")));
        }
        let Some(target) = v.last_verified.clone() else {
            return Ok(text::verify_then_held(
                env,
                None,
                Some("no verified release to roll back to"),
            ));
        };
        let by = v
            .reported_by
            .map(Controller::as_str)
            .unwrap_or("timeout")
            .to_owned();
        let plan = Plan {
            env: env.clone(),
            app: app.clone(),
            artifact: target.clone(),
            trigger: Trigger::Verify(by),
            reason: format!("rollback to {target} after {reason}"),
            reply: None,
            overrides: Vec::new(),
        };
        let wanted = Desired::new(
            plan,
            Want::Rollback {
                from: Some(v.artifact.clone()),
            },
            self.clock.now(),
        );
        self.desire(wanted).await?;
        Ok(text::verify_then_held(env, Some(&target), None))
    }

    async fn reply_verified(&self, env: &EnvName, v: &Verification, state: &str, detail: &str) {
        let Some(reply) = &v.reply else { return };
        let text = render_reply(&ReplyText {
            state,
            env: env.as_str(),
            artifact: &v.artifact.to_string(),
            link: &text::merged_by(v.pull, &v.commit),
            detail,
            ..Default::default()
        });
        self.notifier.reply(reply, &text).await;
    }

    /// A notification event for a release's verification, on its known deployment.
    async fn verify_event(
        &self,
        env: &EnvName,
        artifact: &Artifact,
        trigger: &Trigger,
        deployment: Option<DeploymentId>,
    ) -> ReleaseEvent {
        match deployment {
            Some(id) => {
                let mut ev = ReleaseEvent::for_artifact(artifact, env.clone(), trigger.to_string());
                ev.deployment_id = Some(id);
                ev
            }
            None => self.release_event(env, artifact, trigger).await,
        }
    }

    /// The full commit `revision` names in `target`'s repository, fetching once if unknown.
    async fn resolve_revision(&self, target: &GitopsTarget, revision: &str) -> Result<Option<String>> {
        let gitops = target.cache.clone();
        let rev = revision.to_owned();
        blocking(move || match gitops.resolve(&rev)? {
            Some(full) => Ok(Some(full)),
            // A report can be about a commit the cache has not fetched yet.
            None => {
                gitops.fetch()?;
                gitops.resolve(&rev)
            }
        })
        .await
    }

    /// How the revision `full` relates to `v`'s release and to the revision that last moved it.
    async fn containment(&self, target: &GitopsTarget, v: &Verification, full: &str) -> Result<Containment> {
        let gitops = target.cache.clone();
        let (commit, full2, seen) = (v.commit.clone(), full.to_owned(), v.revision.clone());
        blocking(move || {
            if gitops.contains(&commit, &full2)? != Some(true) {
                return Ok::<_, crate::gitops::WriteError>(Containment::Unrelated);
            }
            if let Some(seen) = seen
                && seen != full2
                && let Ok(reported) = CommitSha::new(full2.clone())
                && gitops.contains(&reported, &seen)? == Some(true)
            {
                // The reported revision is older than the one already seen: old news.
                return Ok(Containment::Stale);
            }
            Ok(Containment::Contains)
        })
        .await
    }
}
