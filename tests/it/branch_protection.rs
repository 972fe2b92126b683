//! Releases into a gitops repository whose `main` is protected (design §14): the release pull
//! request waits for the required check and merges once it is green, fails naming it when it is
//! red, and a mergeability GitHub has not computed yet only delays the merge.

use github_sim::Protection;

use super::support::stack::{GITOPS, Stack, wait_for, web_policy};

/// Staging takes every green build of main through a pull request merged at once.
const THROUGH_A_PULL: &str = "[env.staging]\nauto = { branch = \"main\" }\nmerge = \"auto\"\n";

/// The stack with gitops `main` requiring the status check `validate`.
fn protected() -> Stack {
    let stack = Stack::start_tuned(
        &web_policy(THROUGH_A_PULL),
        "reconcile_interval = \"2s\"",
        "",
        &[],
    );
    let rule = Protection {
        required_status_checks: vec!["validate".into()],
        ..Default::default()
    };
    stack.sim.protect_branch(GITOPS, "main", rule).unwrap();
    stack
}

/// The release pull request, once auger opened it and says it waits for `validate`.
fn waiting_pull(stack: &Stack, sha: &str) -> github_sim::PullRequest {
    wait_for("the release to wait for validate", || {
        stack
            .status(sha, "auger/staging")
            .is_some_and(|(s, d)| s == "pending" && d.contains("waiting for required checks: validate"))
    });
    let pulls = stack.auger_pulls("auger/staging/web");
    assert_eq!(pulls.len(), 1);
    assert!(pulls[0].open && !pulls[0].merged, "{:?}", pulls[0]);
    pulls[0].clone()
}

#[test]
fn the_release_waits_for_the_required_check_and_merges_once_it_is_green() {
    let stack = protected();
    let sha = stack.green_main("v1\n");
    let pr = waiting_pull(&stack, &sha);
    assert_eq!(stack.live("staging"), None, "not live while it waits");

    // The gitops repository's CI validates the pull request.
    stack
        .sim
        .set_status(GITOPS, &pr.head_sha, "success", "validate")
        .unwrap();
    wait_for("the merge", || {
        stack.live("staging").as_deref() == Some(sha.as_str())
    });
    assert!(stack.auger_pulls("auger/staging/web")[0].merged);
    assert_eq!(stack.status(&sha, "auger/staging").unwrap().0, "success");
}

#[test]
fn a_red_required_check_fails_the_release_naming_the_check() {
    let stack = protected();
    let sha = stack.green_main("v1\n");
    let pr = waiting_pull(&stack, &sha);

    stack
        .sim
        .set_status(GITOPS, &pr.head_sha, "failure", "validate")
        .unwrap();
    wait_for("the failure", || {
        stack
            .status(&sha, "auger/staging")
            .is_some_and(|(s, _)| s == "failure")
    });
    let (_, description) = stack.status(&sha, "auger/staging").unwrap();
    assert!(description.contains("validate"), "{description}");
    assert_eq!(stack.live("staging"), None);
    assert!(!stack.auger_pulls("auger/staging/web")[0].merged);
}

#[test]
fn a_base_modified_refusal_while_mergeability_is_computed_only_delays_the_merge() {
    let stack = Stack::start_tuned(
        &web_policy(THROUGH_A_PULL),
        "reconcile_interval = \"2s\"",
        "",
        &[],
    );
    // GitHub has not computed mergeability yet, and the first merge meets a moved base.
    stack.sim.set_mergeable_lag(3);
    let base_moved = github_sim::Fault::Status {
        status: 405,
        headers: Vec::new(),
        message: "Base branch was modified. Review and try the merge again.".into(),
    };
    stack
        .sim
        .inject_fault("PUT", "/repos/*/*/pulls/*/merge", 1, base_moved);
    let sha = stack.green_main("v1\n");
    wait_for("the release", || {
        stack.live("staging").as_deref() == Some(sha.as_str())
    });
    assert_eq!(stack.sim.faults_served(), 1, "the first merge was refused");
    let pulls = stack.auger_pulls("auger/staging/web");
    assert_eq!(pulls.len(), 1);
    assert!(pulls[0].merged);
    assert_eq!(stack.status(&sha, "auger/staging").unwrap().0, "success");
}
