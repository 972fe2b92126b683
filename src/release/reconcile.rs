//! The reconcile (design §13b): events record what each (env, app) should run
//! ([`DesiredReleases`]), and one pass — after every event and on a periodic tick — moves what
//! runs toward it. Every step of a release first reads whether its effect already exists (the
//! writer finds its commit, the open pull request is found, a merged one is read back, the
//! ledger's env ref is compared), so a pass after a crash or a fault does only what is left.
//!
//! A failure GitHub or git may get over (a 5xx, an unknown outcome, a busy gitops branch)
//! keeps the release desired and tries it again after a backoff; one that cannot get better
//! (an unknown env, output that does not render, a merge GitHub refuses for good) ends it
//! with a failure status. Final statuses that GitHub did not take are owed and sent again on
//! every pass, so no release is left `pending`.

use chrono::{DateTime, Utc};

use super::desired::{Desired, Final, Owed, Want};
use super::plan::{Gate, Plan};
use super::{ReleaseError, ReleaseOutcome, Releaser, Result, text};
use crate::forge::ForgeError;
use crate::gitops::{RenderError, WriteError};
use crate::notify::{FailureKind, ReleaseEvent, ReplyText, render_reply};

/// The first retry waits this long; each failure in a row doubles it, up to the reconcile's
/// period.
const FIRST_BACKOFF: chrono::TimeDelta = chrono::TimeDelta::seconds(1);
/// How soon final statuses GitHub did not take are sent again.
const OWED_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(5);

/// Why an automatic release does not go out now.
enum Stopped {
    /// Its (env, app) is on hold: the desire is dropped.
    Held(String),
    /// Its `after` gate is closed: it waits, until `until` if the gate says.
    Gated {
        reason: String,
        until: Option<DateTime<Utc>>,
    },
}

/// Whether a failed release may succeed later without anybody changing anything.
fn may_recover(e: &ReleaseError) -> bool {
    match e {
        ReleaseError::Forge(f) => matches!(
            f,
            ForgeError::Server { .. }
                | ForgeError::Transport(_)
                | ForgeError::RateLimited { .. }
                | ForgeError::OutcomeUnknown { .. }
                | ForgeError::Conflict(_)
                | ForgeError::Decode(_)
        ),
        ReleaseError::Write(w) => matches!(
            w,
            WriteError::Contention { .. } | WriteError::Command { .. } | WriteError::Git(_)
        ),
        ReleaseError::NotMerged { retry, .. } => *retry,
        ReleaseError::Store(_) | ReleaseError::Desired(_) | ReleaseError::Internal(_) => true,
        _ => false,
    }
}

/// What a release that waits for another try is waiting for, as its pending status says.
fn waiting_reason(e: &ReleaseError) -> String {
    match e {
        ReleaseError::Write(WriteError::Contention { .. }) => "waiting: gitops branch busy".into(),
        ReleaseError::NotMerged { reason, .. } if reason.starts_with("waiting") => reason.clone(),
        other => format!("retrying: {other}"),
    }
}

/// How a release that cannot happen ends: a merge GitHub refuses for good failed (the
/// release was refused); anything else is an error auger could not get past.
fn failure(e: &ReleaseError) -> Final {
    match e {
        ReleaseError::NotMerged { pull, reason, .. } => Final::Failed {
            reason: text::unmergeable(*pull, reason),
            kind: FailureKind::Failed,
        },
        // An edit step that does not apply (design §16): the release is refused, not broken.
        ReleaseError::Write(WriteError::Edit { .. })
        | ReleaseError::Render(RenderError::EditValue { .. }) => Final::Failed {
            reason: e.to_string(),
            kind: FailureKind::Failed,
        },
        other => Final::Failed {
            reason: other.to_string(),
            kind: FailureKind::Error,
        },
    }
}

/// How long to wait after `attempts` failures in a row, at most `cap` (GitHub's own
/// `retry-after` wins).
fn backoff(attempts: u32, e: &ReleaseError, cap: chrono::TimeDelta) -> chrono::TimeDelta {
    if let ReleaseError::Forge(ForgeError::RateLimited {
        retry_after: Some(after),
        ..
    }) = e
        && let Ok(after) = chrono::TimeDelta::from_std(*after)
    {
        return after;
    }
    let doubled = FIRST_BACKOFF * (1 << attempts.saturating_sub(1).min(6));
    doubled.min(cap)
}

impl Releaser {
    /// Records that `d`'s (env, app) should run its artifact. A desire for another artifact
    /// that it replaces is owed "superseded by …".
    pub(super) async fn desire(&self, d: Desired) -> Result<()> {
        let by = d.plan.artifact.clone();
        if let Some(old) = self.desired.want(d).await? {
            tracing::info!(env = %old.plan.env, superseded = %old.plan.artifact, artifact = %by, "a newer release supersedes the desired one");
            self.settle(Owed {
                env: old.plan.env,
                app: old.plan.app,
                artifact: old.plan.artifact,
                trigger: old.plan.trigger,
                outcome: Final::Superseded { by },
                deployment: old.deployment,
            })
            .await;
        }
        Ok(())
    }

    /// One pass: owed statuses first, then every desire that is due, each app's envs in its
    /// policy's order. Repeated while releases go out (each may open another env's gate),
    /// bounded by the number of desires; a desire is worked on once per pass unless a gate
    /// held it. Returns the last outcome of each desire worked on.
    pub(super) async fn pass(&self) -> Vec<(Plan, Result<ReleaseOutcome>)> {
        self.pay_owed().await;
        self.verify_pass().await;
        let mut out: Vec<(Plan, Result<ReleaseOutcome>)> = Vec::new();
        let mut worked: Vec<Plan> = Vec::new();
        for _ in 0..=self.desired.list().len() {
            let now = self.clock.now();
            let mut released = false;
            for d in self.in_policy_order(self.desired.list()) {
                if !d.due(now) || worked.contains(&d.plan) {
                    continue;
                }
                let (plan, result) = self.advance(d).await;
                released |= matches!(result, Ok(ReleaseOutcome::Released { .. }));
                if !matches!(result, Ok(ReleaseOutcome::Held { .. })) {
                    worked.push(plan.clone());
                }
                out.retain(|(p, _)| *p != plan);
                out.push((plan, result));
            }
            if !released {
                break;
            }
        }
        self.rescheduled.notify_one();
        out
    }

    /// Returns when a pass may have moved [`Releaser::next_retry`] earlier than the timer
    /// last read it.
    pub async fn rescheduled(&self) {
        self.rescheduled.notified().await
    }

    /// Upstream envs before the ones whose gates wait for them.
    fn in_policy_order(&self, mut list: Vec<Desired>) -> Vec<Desired> {
        let rank = |d: &Desired| {
            let envs = self
                .policies()
                .get(&d.plan.app)
                .map(|p| p.envs().map(|(e, _)| e.clone()).collect::<Vec<_>>());
            let at = envs.and_then(|e| e.iter().position(|x| *x == d.plan.env));
            (d.plan.app.clone(), at.unwrap_or(usize::MAX))
        };
        list.sort_by_cached_key(rank);
        list
    }

    /// Works on one desire now, whatever its backoff, and brings its record up to date.
    pub(super) async fn advance(&self, mut d: Desired) -> (Plan, Result<ReleaseOutcome>) {
        let plan = d.plan.clone();
        let result = match self.stopped(&d).await {
            Ok(Some(Stopped::Held(reason))) => {
                self.forget(&d).await;
                return (plan, Ok(ReleaseOutcome::Held { reason }));
            }
            Ok(Some(Stopped::Gated { reason, until })) => {
                d.reason = reason.clone();
                (d.attempts, d.retry_at) = (0, until);
                self.keep(&d).await;
                return (plan, Ok(ReleaseOutcome::Held { reason }));
            }
            Ok(None) => match &d.want {
                Want::Rollback { from } => self.rollback_locked(&plan, from.as_ref()).await,
                Want::Auto | Want::Asked => self.release_locked(&plan, None).await,
            },
            Err(e) => Err(e),
        };
        if !matches!(&result, Err(e) if may_recover(e)) {
            super::steps::log_outcome(&plan, &result);
        }
        let result = match result {
            Ok(ReleaseOutcome::AwaitingApproval { pull, .. }) => {
                // Reviews re-check it as they come; the tick catches what a lost webhook missed.
                d.reason = format!("awaiting approval in #{pull}");
                let next = chrono::TimeDelta::from_std(self.reconcile_every).ok();
                (d.attempts, d.retry_at) = (0, next.map(|n| self.clock.now() + n));
                self.keep(&d).await;
                result
            }
            Ok(_) => {
                self.forget(&d).await;
                result
            }
            Err(e) if may_recover(&e) => Ok(self.retry_later(d, &e).await),
            Err(e) => {
                self.failed(&d, &e).await;
                Err(e)
            }
        };
        (plan, result)
    }

    /// Hold, reject, freeze and `after` gate, for automatic releases only.
    async fn stopped(&self, d: &Desired) -> Result<Option<Stopped>> {
        if d.want != Want::Auto {
            return Ok(None);
        }
        let plan = &d.plan;
        if let Some(h) = self.read_hold(&plan.env, &plan.app).await?
            && h.held
        {
            return Ok(Some(Stopped::Held(text::on_hold(&plan.env, &plan.app, &h))));
        }
        let artifact = self.artifact(&plan.artifact).await?;
        if let Some(r) = &artifact.rejected {
            return Ok(Some(Stopped::Held(text::rejected(&plan.artifact, r))));
        }
        // A freeze keeps the release desired; the timer wakes at the freeze's end.
        if let Some(f) = self.frozen(&plan.env, &plan.app).await? {
            let reason = text::frozen(&plan.env, &plan.app, &f);
            return Ok(Some(Stopped::Gated {
                reason,
                until: f.until,
            }));
        }
        let (_, gate) = self.check_gate(plan).await?;
        let until = match &gate {
            Gate::Soaking { until, .. } => Some(*until),
            _ => None,
        };
        Ok(text::closed_gate(&gate).map(|reason| Stopped::Gated { reason, until }))
    }

    /// The release did not go out for a reason that may pass: it stays desired, waits a
    /// little longer each time, and its pending status (and the command's reply) says why.
    async fn retry_later(&self, mut d: Desired, e: &ReleaseError) -> ReleaseOutcome {
        let reason = waiting_reason(e);
        d.attempts = d.attempts.saturating_add(1);
        let cap = chrono::TimeDelta::from_std(self.reconcile_every).unwrap_or(chrono::TimeDelta::MAX);
        d.retry_at = Some(self.clock.now() + backoff(d.attempts, e, cap));
        tracing::warn!(env = %d.plan.env, artifact = %d.plan.artifact, attempts = d.attempts, error = %e, "release not done; trying again later");
        if reason != d.reason {
            d.reason = reason.clone();
            self.say_waiting(&d).await;
        }
        self.keep(&d).await;
        ReleaseOutcome::Retrying { reason }
    }

    /// The release cannot happen: it is no longer desired, and its status says why.
    async fn failed(&self, d: &Desired, e: &ReleaseError) {
        self.forget(d).await;
        self.settle(Owed {
            env: d.plan.env.clone(),
            app: d.plan.app.clone(),
            artifact: d.plan.artifact.clone(),
            trigger: d.plan.trigger.clone(),
            outcome: failure(e),
            deployment: d.deployment,
        })
        .await;
    }

    /// A pending status (and the command's reply) saying what the release waits for.
    async fn say_waiting(&self, d: &Desired) {
        let Ok(artifact) = self.artifact(&d.plan.artifact).await else {
            return;
        };
        // Only the commit status says it: no deployment to look up.
        let ev = ReleaseEvent::for_artifact(&artifact, d.plan.env.clone(), d.plan.trigger.to_string());
        self.notifier.release_waiting(&ev, &d.reason).await;
        if let Some(reply) = &d.plan.reply {
            let text = render_reply(&ReplyText {
                state: "retrying",
                env: d.plan.env.as_str(),
                artifact: &d.plan.artifact.to_string(),
                detail: &d.reason,
                ..Default::default()
            });
            self.notifier.reply(reply, &text).await;
        }
    }

    async fn keep(&self, d: &Desired) {
        if let Err(e) = self.desired.update(d).await {
            tracing::error!(error = %e, "cannot record the desired release's progress");
        }
    }

    async fn forget(&self, d: &Desired) {
        if let Err(e) = self
            .desired
            .done(&d.plan.env, &d.plan.app, &d.plan.artifact)
            .await
        {
            tracing::error!(error = %e, "cannot drop a desired release that is done");
        }
    }

    /// Sends a final status; when GitHub does not take it, it is owed and sent again by
    /// every pass.
    pub(super) async fn settle(&self, owed: Owed) {
        if !self.send_final(&owed).await
            && let Err(e) = self.desired.owe(owed).await
        {
            tracing::error!(error = %e, "cannot remember a final status to send again");
        }
    }

    async fn pay_owed(&self) {
        for owed in self.desired.owed() {
            if self.send_final(&owed).await
                && let Err(e) = self.desired.paid(&owed).await
            {
                tracing::error!(error = %e, "cannot forget a final status that was sent");
            }
        }
    }

    /// `true` when GitHub took the status (and the deployment's, if there is one). An
    /// artifact the ledger no longer has has nothing left to say.
    async fn send_final(&self, o: &Owed) -> bool {
        let Ok(artifact) = self.artifact(&o.artifact).await else {
            return true;
        };
        let mut ev = match o.deployment {
            Some(id) => {
                let mut ev = ReleaseEvent::for_artifact(&artifact, o.env.clone(), o.trigger.to_string());
                ev.deployment_id = Some(id);
                ev
            }
            None => self.release_event(&o.env, &artifact, &o.trigger).await,
        };
        match &o.outcome {
            Final::Released {
                commit,
                rollback,
                verified,
            } => {
                ev.gitops_sha = Some(commit.clone());
                ev.gitops_commit_url = self.gitops_commit_url(&o.env, &o.app, commit).await;
                ev.environment_url = self.environment_url(&o.env, &o.app);
                self.notifier.success_again(&ev, *rollback, *verified).await
            }
            Final::Superseded { by } => self.notifier.release_superseded(&ev, by).await,
            Final::Failed { reason, kind } => self.notifier.release_failed(&ev, *kind, reason).await,
        }
    }

    /// The earliest time a desire waits for (or owed statuses are due again), so the timer
    /// can wake for it.
    pub fn next_retry(&self) -> Option<DateTime<Utc>> {
        let owed = (self.desired.owed_count() > 0).then(|| self.clock.now() + OWED_EVERY);
        let verify = self.next_verify_due();
        self.desired
            .next_retry()
            .into_iter()
            .chain(owed)
            .chain(verify)
            .min()
    }

    /// How many final statuses GitHub has not taken yet.
    pub fn owed(&self) -> usize {
        self.desired.owed_count()
    }

    /// What is desired and not live yet, with why.
    pub fn desired(&self) -> Vec<Desired> {
        self.desired.list()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_error() -> ReleaseError {
        ReleaseError::Forge(ForgeError::Server {
            status: 502,
            message: "Bad Gateway".into(),
        })
    }

    #[test]
    fn backoff_doubles_up_to_the_reconcile_period() {
        let e = server_error();
        let minute = chrono::TimeDelta::seconds(60);
        let secs: Vec<i64> = (1..=9).map(|n| backoff(n, &e, minute).num_seconds()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn github_retry_after_sets_the_wait() {
        let e = ReleaseError::Forge(ForgeError::RateLimited {
            retry_after: Some(std::time::Duration::from_secs(90)),
            message: "secondary rate limit".into(),
        });
        assert_eq!(backoff(1, &e, chrono::TimeDelta::seconds(60)).num_seconds(), 90);
    }

    #[test]
    fn faults_are_retried_and_refusals_are_not() {
        assert!(may_recover(&server_error()));
        assert!(may_recover(&ReleaseError::Write(WriteError::Contention {
            url: "file:///g".into(),
            branch: "main".into(),
            attempts: 32,
            last: "fetch first".into(),
        })));
        assert!(!may_recover(&ReleaseError::Forge(ForgeError::Invalid {
            status: 422,
            message: "Validation Failed".into(),
        })));
        assert!(!may_recover(&ReleaseError::UnknownArtifact("web@x".into())));
        assert!(!may_recover(&ReleaseError::NotMerged {
            pull: 3,
            reason: "merge conflict".into(),
            retry: false,
        }));
    }

    #[test]
    fn a_busy_branch_says_so_and_other_faults_say_what_they_were() {
        let busy = ReleaseError::Write(WriteError::Contention {
            url: "file:///g".into(),
            branch: "main".into(),
            attempts: 32,
            last: "fetch first".into(),
        });
        assert_eq!(waiting_reason(&busy), "waiting: gitops branch busy");
        assert!(waiting_reason(&server_error()).starts_with("retrying: GitHub server error 502"));
    }
}
