//! Counting approvals on a release pull request (pure; the caller resolves who is an
//! approver through GitHub first).
//!
//! The rules, as GitHub reviewers expect them:
//! - Each reviewer's latest *deciding* review counts (APPROVED, CHANGES_REQUESTED or
//!   DISMISSED); a COMMENTED review neither adds nor takes away.
//! - An approval counts only if it was given on the current head commit: a force-push with a
//!   newer artifact needs fresh approvals.
//! - Only approvers count, and never the author of the source commit (nobody approves their own
//!   change into production).
//! - A standing CHANGES_REQUESTED by an approver blocks the merge, whatever the count.

use std::collections::BTreeMap;

use crate::domain::CommitSha;
use crate::forge::{Review, ReviewState};

/// Where a pull request stands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tally {
    /// Approvers whose approval on the head counts, in review order.
    pub approved_by: Vec<String>,
    /// Approvers whose latest review requests changes.
    pub blocked_by: Vec<String>,
    /// Approvals that did not count, with the reason (for the PR status and logs).
    pub ignored: Vec<(String, &'static str)>,
}

impl Tally {
    pub fn met(&self, required: u32) -> bool {
        self.blocked_by.is_empty() && self.approved_by.len() >= required as usize
    }
}

/// `is_approver(login)` says whether a reviewer is covered by the policy's `approvers`;
/// `source_author` is the login of the source commit's author, when known.
pub fn tally(
    reviews: &[Review],
    head: &CommitSha,
    source_author: Option<&str>,
    is_approver: impl Fn(&str) -> bool,
) -> Tally {
    // Latest deciding review per reviewer (by numeric id: a renamed account stays one person).
    let mut latest: BTreeMap<u64, &Review> = BTreeMap::new();
    let mut order: Vec<u64> = Vec::new();
    for r in reviews {
        if matches!(r.state, ReviewState::Commented | ReviewState::Pending) {
            continue;
        }
        if latest.insert(r.user.id, r).is_none() {
            order.push(r.user.id);
        }
    }
    let mut out = Tally::default();
    for id in order {
        let r = latest[&id];
        let login = r.user.login.clone();
        match r.state {
            ReviewState::Approved => {
                if source_author.is_some_and(|a| a.eq_ignore_ascii_case(&login)) {
                    out.ignored.push((login, "author of the source commit"));
                } else if !is_approver(&login) {
                    out.ignored.push((login, "not an approver"));
                } else if r.commit_id.as_ref() != Some(head) {
                    out.ignored.push((login, "approved an earlier head"));
                } else {
                    out.approved_by.push(login);
                }
            }
            ReviewState::ChangesRequested if is_approver(&login) => out.blocked_by.push(login),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forge::Actor;

    fn sha(c: char) -> CommitSha {
        CommitSha::new(c.to_string().repeat(40)).unwrap()
    }

    fn review(id: u64, login: &str, state: ReviewState, on: char) -> Review {
        Review {
            id: id * 100,
            user: Actor {
                login: login.into(),
                id,
                is_bot: false,
            },
            state,
            commit_id: Some(sha(on)),
        }
    }

    const SRE: [&str; 3] = ["sre1", "sre2", "Dev"];

    fn approver(login: &str) -> bool {
        SRE.iter().any(|s| s.eq_ignore_ascii_case(login))
    }

    #[test]
    fn two_approvers_on_the_head_meet_two() {
        let r = [
            review(1, "sre1", ReviewState::Approved, 'a'),
            review(2, "sre2", ReviewState::Approved, 'a'),
        ];
        let t = tally(&r, &sha('a'), None, approver);
        assert_eq!(t.approved_by, ["sre1", "sre2"]);
        assert!(t.met(2));
        assert!(!t.met(3));
    }

    #[test]
    fn outsiders_the_source_author_and_stale_heads_do_not_count() {
        let r = [
            review(1, "mallory", ReviewState::Approved, 'a'),
            review(2, "dev", ReviewState::Approved, 'a'),
            review(3, "sre1", ReviewState::Approved, 'b'),
        ];
        let t = tally(&r, &sha('a'), Some("DEV"), approver);
        assert!(t.approved_by.is_empty());
        let reasons: Vec<&str> = t.ignored.iter().map(|(_, why)| *why).collect();
        assert_eq!(
            reasons,
            [
                "not an approver",
                "author of the source commit",
                "approved an earlier head"
            ]
        );
    }

    #[test]
    fn changes_requested_blocks_until_the_same_reviewer_approves() {
        let mut r = vec![
            review(1, "sre1", ReviewState::Approved, 'a'),
            review(2, "sre2", ReviewState::ChangesRequested, 'a'),
        ];
        let t = tally(&r, &sha('a'), None, approver);
        assert_eq!(t.blocked_by, ["sre2"]);
        assert!(!t.met(1));
        // A comment does not lift the block; a later approval does.
        r.push(review(2, "sre2", ReviewState::Commented, 'a'));
        assert!(!tally(&r, &sha('a'), None, approver).met(1));
        r.push(review(2, "sre2", ReviewState::Approved, 'a'));
        assert!(tally(&r, &sha('a'), None, approver).met(2));
    }

    #[test]
    fn a_dismissed_review_counts_for_nothing() {
        let r = [
            review(1, "sre1", ReviewState::Approved, 'a'),
            review(1, "sre1", ReviewState::Dismissed, 'a'),
            review(2, "mallory", ReviewState::ChangesRequested, 'a'),
        ];
        let t = tally(&r, &sha('a'), None, approver);
        assert!(t.approved_by.is_empty());
        assert!(t.blocked_by.is_empty(), "a non-approver cannot block");
        assert!(t.met(0));
    }
}
