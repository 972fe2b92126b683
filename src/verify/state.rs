//! A release's verification (design §15), pure: the record the ledger keeps per (env, app)
//! and how reports and time move it. `merged → applied → healthy → verified`, or `failed` /
//! `timed_out`; final states never move again, and a report about an older revision than the
//! one that last moved the record changes nothing.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Controller, Health};
use crate::artifact::ArtifactId;
use crate::domain::CommitSha;
use crate::forge::DeploymentId;
use crate::gitops::Trigger;
use crate::notify::ReplyRef;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifyState {
    /// The release commit is on the gitops branch; no controller has reported it yet.
    Merged,
    /// A controller applied a revision that contains it, and health is not known yet.
    Applied,
    /// Applied and healthy; verified once the soak is over.
    Healthy,
    Verified,
    Failed,
    TimedOut,
}

impl VerifyState {
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyState::Merged => "merged",
            VerifyState::Applied => "applied",
            VerifyState::Healthy => "healthy",
            VerifyState::Verified => "verified",
            VerifyState::Failed => "failed",
            VerifyState::TimedOut => "timed_out",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            VerifyState::Verified | VerifyState::Failed | VerifyState::TimedOut
        )
    }

    /// A failed or timed-out verification: what `on_failure` acts on.
    pub fn is_failure(self) -> bool {
        matches!(self, VerifyState::Failed | VerifyState::TimedOut)
    }
}

impl std::fmt::Display for VerifyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The verification of the release an (env, app) got last, as `verify.json` in the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub artifact: ArtifactId,
    /// The gitops commit that released it (or the merge commit of its pull request).
    pub commit: CommitSha,
    pub state: VerifyState,
    /// When it entered `state`.
    pub since: DateTime<Utc>,
    pub merged_at: DateTime<Utc>,
    /// No healthy report by then: timed out.
    pub deadline: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_at: Option<DateTime<Utc>>,
    /// Healthy until then (without a failure report): verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak_until: Option<DateTime<Utc>>,
    /// The gitops revision of the report that last moved it (full sha).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_by: Option<Controller>,
    /// The controller's words, or why it timed out.
    #[serde(default)]
    pub message: String,
    pub trigger: Trigger,
    /// The newest verified release before this one: what a failure rolls back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_verified: Option<ArtifactId>,
    /// What this release replaced, when it is a rollback (for its messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_from: Option<ArtifactId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<DeploymentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<ReplyRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull: Option<u64>,
}

/// What one report says about a release.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    pub by: Controller,
    pub health: Health,
    pub containment: Containment,
    /// The report's gitops revision, as a full sha.
    pub revision: &'a str,
    pub message: &'a str,
}

/// How a report's revision relates to the release commit and to what was seen before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Containment {
    /// The revision is the release commit or a later one built on it, and not older than the
    /// revision that last moved the record.
    Contains,
    /// The revision does not contain the release (an older one, or another branch).
    Unrelated,
    /// It contains the release but is older than the revision that last moved the record.
    Stale,
}

impl Verification {
    /// Whether a pass at some time should look at it again (not final).
    pub fn is_open(&self) -> bool {
        !self.state.is_final()
    }

    /// A rollback (by a person or by a failed verification) is never rolled back itself.
    pub fn is_rollback(&self) -> bool {
        self.trigger.is_rollback()
    }

    /// The record after `seen`; `None` when the report changes nothing. `soak` is how long
    /// the release must stay healthy.
    pub fn on_report(
        &self,
        seen: &Seen<'_>,
        soak: std::time::Duration,
        now: DateTime<Utc>,
    ) -> Option<Verification> {
        if self.state.is_final() || seen.containment != Containment::Contains {
            return None;
        }
        let mut next = self.clone();
        next.revision = Some(seen.revision.to_owned());
        next.reported_by = Some(seen.by);
        next.message = seen.message.to_owned();
        match (seen.health, self.state) {
            (Health::Failed, _) => next.enter(VerifyState::Failed, now),
            (Health::Progressing, VerifyState::Merged) => next.enter(VerifyState::Applied, now),
            (Health::Progressing, _) => return None,
            (Health::Healthy, VerifyState::Healthy) => return None,
            (Health::Healthy, _) => {
                next.healthy_at = Some(now);
                let soak = chrono::Duration::from_std(soak).unwrap_or(chrono::Duration::MAX);
                let until = now.checked_add_signed(soak).unwrap_or(DateTime::<Utc>::MAX_UTC);
                next.soak_until = Some(until);
                next.enter(VerifyState::Healthy, now);
                if until <= now {
                    next.enter(VerifyState::Verified, now);
                }
            }
        }
        Some(next)
    }

    /// The record once time has passed: a soak that ended verifies, a deadline without a
    /// healthy report times out. `None` when nothing is due.
    pub fn on_time(&self, now: DateTime<Utc>) -> Option<Verification> {
        let mut next = self.clone();
        match self.state {
            VerifyState::Healthy if self.soak_until.is_some_and(|u| u <= now) => {
                next.enter(VerifyState::Verified, now)
            }
            VerifyState::Merged | VerifyState::Applied if self.deadline <= now => {
                next.message = format!(
                    "no healthy report within {}",
                    humantime::format_duration((self.deadline - self.merged_at).to_std().unwrap_or_default())
                );
                next.enter(VerifyState::TimedOut, now)
            }
            _ => return None,
        }
        Some(next)
    }

    /// When [`Verification::on_time`] may next change it.
    pub fn due(&self) -> Option<DateTime<Utc>> {
        match self.state {
            VerifyState::Merged | VerifyState::Applied => Some(self.deadline),
            VerifyState::Healthy => self.soak_until,
            _ => None,
        }
    }

    fn enter(&mut self, state: VerifyState, now: DateTime<Utc>) {
        self.state = state;
        self.since = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn t(minutes: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .to_utc()
            + chrono::Duration::minutes(minutes)
    }

    fn merged() -> Verification {
        Verification {
            artifact: "web@aaaaaaaaaaaa".parse().unwrap(),
            commit: CommitSha::new("c".repeat(40)).unwrap(),
            state: VerifyState::Merged,
            since: t(0),
            merged_at: t(0),
            deadline: t(15),
            healthy_at: None,
            soak_until: None,
            revision: None,
            reported_by: None,
            message: String::new(),
            trigger: Trigger::Policy,
            last_verified: None,
            rollback_from: None,
            deployment: None,
            reply: None,
            pull: None,
        }
    }

    const R: &str = "dddddddddddddddddddddddddddddddddddddddd";

    fn report(v: &Verification, health: Health, c: Containment, soak: u64, at: i64) -> Option<Verification> {
        let seen = Seen {
            by: Controller::Flux,
            health,
            containment: c,
            revision: R,
            message: "msg",
        };
        v.on_report(&seen, Duration::from_secs(soak * 60), t(at))
    }

    #[test]
    fn a_healthy_report_without_soak_verifies_at_once() {
        let v = report(&merged(), Health::Healthy, Containment::Contains, 0, 2).unwrap();
        assert_eq!(v.state, VerifyState::Verified);
        assert_eq!(v.healthy_at, Some(t(2)));
        assert_eq!(v.revision.as_deref(), Some(R));
    }

    #[test]
    fn a_soak_verifies_when_it_ends_and_not_before() {
        let v = report(&merged(), Health::Healthy, Containment::Contains, 5, 2).unwrap();
        assert_eq!(v.state, VerifyState::Healthy);
        assert_eq!(v.due(), Some(t(7)));
        assert!(v.on_time(t(6)).is_none());
        assert_eq!(v.on_time(t(7)).unwrap().state, VerifyState::Verified);
    }

    #[test]
    fn a_failure_during_the_soak_fails_the_release() {
        let healthy = report(&merged(), Health::Healthy, Containment::Contains, 5, 2).unwrap();
        let failed = report(&healthy, Health::Failed, Containment::Contains, 5, 3).unwrap();
        assert_eq!(failed.state, VerifyState::Failed);
        assert_eq!(failed.message, "msg");
    }

    #[test]
    fn progress_moves_merged_to_applied_only() {
        let applied = report(&merged(), Health::Progressing, Containment::Contains, 0, 1).unwrap();
        assert_eq!(applied.state, VerifyState::Applied);
        assert!(report(&applied, Health::Progressing, Containment::Contains, 0, 2).is_none());
        let healthy = report(&applied, Health::Healthy, Containment::Contains, 5, 2).unwrap();
        assert!(report(&healthy, Health::Progressing, Containment::Contains, 5, 3).is_none());
    }

    #[test]
    fn reports_that_do_not_contain_the_release_or_are_stale_change_nothing() {
        let m = merged();
        assert!(report(&m, Health::Failed, Containment::Unrelated, 0, 1).is_none());
        assert!(report(&m, Health::Healthy, Containment::Unrelated, 0, 1).is_none());
        let healthy = report(&m, Health::Healthy, Containment::Contains, 5, 2).unwrap();
        assert!(report(&healthy, Health::Failed, Containment::Stale, 5, 3).is_none());
    }

    #[test]
    fn final_states_never_move() {
        let verified = report(&merged(), Health::Healthy, Containment::Contains, 0, 2).unwrap();
        assert!(report(&verified, Health::Failed, Containment::Contains, 0, 3).is_none());
        assert!(verified.on_time(t(60)).is_none());
        let failed = report(&merged(), Health::Failed, Containment::Contains, 0, 2).unwrap();
        assert!(report(&failed, Health::Healthy, Containment::Contains, 0, 3).is_none());
    }

    #[test]
    fn no_healthy_report_by_the_deadline_times_out() {
        let m = merged();
        assert!(m.on_time(t(14)).is_none());
        let out = m.on_time(t(15)).unwrap();
        assert_eq!(out.state, VerifyState::TimedOut);
        assert_eq!(out.message, "no healthy report within 15m");
        let applied = report(&m, Health::Progressing, Containment::Contains, 0, 1).unwrap();
        assert_eq!(applied.on_time(t(16)).unwrap().state, VerifyState::TimedOut);
    }

    #[test]
    fn rollbacks_are_marked_as_such() {
        let mut v = merged();
        assert!(!v.is_rollback());
        v.trigger = Trigger::Verify("flux".into());
        assert!(v.is_rollback());
        v.trigger = Trigger::Rollback("alice".into());
        assert!(v.is_rollback());
    }
}
