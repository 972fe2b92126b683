//! Branch protection and mergeability: what GitHub checks before it merges a pull request, and
//! the `mergeable` / `mergeable_state` it reports meanwhile.
//!
//! The 405 wordings are GitHub's, as its merge endpoint answers them: "Required status check
//! \"x\" is expected." / "… is failing.", "N of M required status checks are expected." and
//! "At least 1 approving review is required by reviewers with write access.".

use std::collections::BTreeMap;

use crate::state::{Protection, PullRequest, Repo, Role, State};

/// GitHub's 405 when the base moved under a merge, or mergeability was stale.
pub const BASE_MODIFIED: &str = "Base branch was modified. Review and try the merge again.";

/// GitHub's 405 for a closed, merged, draft or conflicting pull request.
pub const NOT_MERGEABLE: &str = "Pull Request is not mergeable";

/// Where one required check stands on a commit, from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Check {
    Passing,
    Pending,
    Missing,
    Failing,
}

fn status_state(state: &str) -> Check {
    match state {
        "success" => Check::Passing,
        "pending" => Check::Pending,
        _ => Check::Failing, // failure, error
    }
}

fn run_state(status: &str, conclusion: Option<&str>) -> Check {
    match (status, conclusion) {
        // GitHub counts neutral and skipped runs as passing required checks.
        ("completed", Some("success" | "neutral" | "skipped")) => Check::Passing,
        ("completed", _) => Check::Failing,
        _ => Check::Pending,
    }
}

/// A required name on the head: the latest commit status with that context and the latest
/// check run with that name. When both exist both must pass, as on GitHub.
fn required_check(r: &Repo, sha: &str, name: &str) -> Check {
    let status = r
        .statuses
        .iter()
        .rev()
        .find(|s| s.sha == sha && s.context == name)
        .map(|s| status_state(&s.state));
    let run = r
        .check_runs
        .iter()
        .rev()
        .find(|c| c.head_sha == sha && c.name == name)
        .map(|c| run_state(&c.status, c.conclusion.as_deref()));
    status.into_iter().chain(run).max().unwrap_or(Check::Missing)
}

/// Reviewers with write access whose latest approving-or-not review approves. Comments do not
/// replace an earlier verdict; approvals on older heads still count (stale reviews are not
/// dismissed unless the branch asks for it, which the simulator does not model).
fn approvals(st: &State, r: &Repo, pr: &PullRequest) -> u32 {
    let mut latest: BTreeMap<&str, &str> = BTreeMap::new();
    for rv in pr.reviews.iter().filter(|rv| rv.state != "COMMENTED") {
        latest.insert(&rv.user, &rv.state);
    }
    let count = latest
        .iter()
        .filter(|(user, state)| {
            **state == "APPROVED" && st.role(r, user).is_some_and(|role| role >= Role::Write)
        })
        .count();
    u32::try_from(count).unwrap_or(u32::MAX)
}

/// Why branch protection refuses a merge.
pub struct Refusal {
    /// The head lacks the base tip on a branch that requires up-to-date heads.
    pub behind: bool,
    /// GitHub's 405 message.
    pub message: String,
}

fn protection_of<'r>(r: &'r Repo, pr: &PullRequest) -> Option<&'r Protection> {
    r.protections.get(&pr.base_ref)
}

fn expected(unmet: &[&String], total: usize) -> String {
    match unmet {
        [one] => format!("Required status check \"{one}\" is expected."),
        _ => format!("{} of {total} required status checks are expected.", unmet.len()),
    }
}

/// What the base branch's protection says against merging `pr` now; `None` when nothing does
/// (or the branch is not protected). Checks come first, then reviews.
pub fn refusal(st: &State, r: &Repo, pr: &PullRequest) -> Option<Refusal> {
    let p = protection_of(r, pr)?;
    let required = &p.required_status_checks;
    let base_tip = r
        .git
        .resolve(&format!("refs/heads/{}", pr.base_ref))
        .unwrap_or_else(|| pr.base_sha.clone());
    if p.strict && !r.git.is_ancestor(&base_tip, &pr.head_sha) {
        // An out-of-date head's results do not count: GitHub reports every required check as
        // expected until the branch is updated.
        let all: Vec<&String> = required.iter().collect();
        let message = if all.is_empty() {
            "Head branch is not up to date with the base branch.".to_string()
        } else {
            expected(&all, required.len())
        };
        return Some(Refusal {
            behind: true,
            message,
        });
    }
    let states: Vec<(&String, Check)> = required
        .iter()
        .map(|name| (name, required_check(r, &pr.head_sha, name)))
        .collect();
    if let Some((name, _)) = states.iter().find(|(_, c)| *c == Check::Failing) {
        return Some(Refusal {
            behind: false,
            message: format!("Required status check \"{name}\" is failing."),
        });
    }
    let unmet: Vec<&String> = states
        .iter()
        .filter(|(_, c)| *c != Check::Passing)
        .map(|(name, _)| *name)
        .collect();
    if !unmet.is_empty() {
        return Some(Refusal {
            behind: false,
            message: expected(&unmet, required.len()),
        });
    }
    let need = p.required_approving_review_count;
    if need > 0 && approvals(st, r, pr) < need {
        let message = if need == 1 {
            "At least 1 approving review is required by reviewers with write access.".to_string()
        } else {
            format!("At least {need} approving reviews are required by reviewers with write access.")
        };
        return Some(Refusal {
            behind: false,
            message,
        });
    }
    None
}

/// Repository admins merge through unmet requirements unless the branch enforces them on
/// admins too (GitHub's `enforce_admins`).
pub fn bypasses(st: &State, r: &Repo, pr: &PullRequest, login: &str) -> bool {
    protection_of(r, pr).is_some_and(|p| !p.enforce_admins) && st.role(r, login) == Some(Role::Admin)
}

/// A status context or check run on the head that is not (yet) green, required or not.
fn has_unsettled_checks(r: &Repo, sha: &str) -> bool {
    let mut latest: BTreeMap<&str, Check> = BTreeMap::new();
    for s in r.statuses.iter().filter(|s| s.sha == sha) {
        latest.insert(&s.context, status_state(&s.state));
    }
    let statuses_unsettled = latest.values().any(|c| *c != Check::Passing);
    let mut runs: BTreeMap<&str, Check> = BTreeMap::new();
    for c in r.check_runs.iter().filter(|c| c.head_sha == sha) {
        runs.insert(&c.name, run_state(&c.status, c.conclusion.as_deref()));
    }
    statuses_unsettled || runs.values().any(|c| *c != Check::Passing)
}

/// `mergeable` (a trial merge, or the test override) and `mergeable_state` as GitHub reports
/// them: `null` / `unknown` while the background job runs, `dirty` on conflicts, then `draft`,
/// `behind`, `blocked` (protection unmet), `unstable` (a non-required check not green), `clean`.
pub fn mergeability(st: &State, r: &Repo, pr: &PullRequest) -> (Option<bool>, &'static str) {
    if !pr.open || pr.unknown_reads > 0 {
        return (None, "unknown");
    }
    let mergeable = match pr.mergeable_override {
        Some(m) => Some(m),
        None => r
            .git
            .resolve(&format!("refs/heads/{}", pr.base_ref))
            .and_then(|base| r.git.merge_tree(&base, &pr.head_sha).ok())
            .map(|tree| tree.is_some()),
    };
    let state = match mergeable {
        None => "unknown",
        Some(false) => "dirty",
        Some(true) if pr.draft => "draft",
        Some(true) => match refusal(st, r, pr) {
            Some(refusal) if refusal.behind => "behind",
            Some(_) => "blocked",
            None if has_unsettled_checks(r, &pr.head_sha) => "unstable",
            None => "clean",
        },
    };
    (mergeable, state)
}
