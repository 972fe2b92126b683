//! Preview lifecycles end to end (design §5 `[preview]`, §17 `ttl`): through real webhooks from
//! the simulator, the real server and plain git on the gitops repository.

use std::time::{Duration, Instant};

use super::support::fixture;
use super::support::stack::{Stack, WEB, wait_for, web_policy};

/// A quick reconcile, so the preview sweep runs every two seconds.
const QUICK: &str = "reconcile_interval = \"2s\"";

/// The preview comment auger keeps on the pull request `pr`, as it reads now.
fn preview_comment(stack: &Stack, pr: u64) -> String {
    stack
        .replies(WEB, pr)
        .into_iter()
        .find(|b| b.contains("<!-- auger:preview web -->"))
        .unwrap_or_default()
}

#[test]
fn deleting_a_pull_requests_branch_removes_its_preview_in_one_commit() {
    let policy = web_policy("[env.staging]\nmerge = \"direct\"\n[preview]\nenv = \"preview\"\n");
    // The default reconcile period (a minute) keeps the sweep out of it: the webhooks do it.
    let stack = Stack::start(&policy);
    stack.green_main("v0\n");
    let (pr, _) = stack.green_feature_pr("feature");
    let folder = format!("preview/web-pr-{pr}/release.json");
    wait_for("the preview", || stack.gitops_file(&folder).is_some());

    stack.sim.delete_branch(WEB, "feature", "alice").unwrap();
    stack.settle();
    wait_for("the preview removed", || stack.gitops_file(&folder).is_none());
    assert_eq!(stack.last_trailer("Auger-Action"), "remove");
    let removals = stack
        .gitops_log("%s")
        .into_iter()
        .filter(|s| s.starts_with("Remove the preview of web"))
        .count();
    assert_eq!(removals, 1, "{:#?}", stack.gitops_log("%s"));
    wait_for("the comment to say so", || {
        preview_comment(&stack, pr).starts_with("🧹 The preview of **web**")
    });
}

/// GitHub's `delete` event can beat the pull request's `closed` (and GitHub's API can still show
/// the pull request open): the branch-deleted path removes the preview on its own.
#[test]
fn a_delete_event_for_a_pull_requests_branch_removes_its_preview_while_the_pull_request_is_open() {
    let policy = web_policy("[env.staging]\nmerge = \"direct\"\n[preview]\nenv = \"preview\"\n");
    let stack = Stack::start(&policy);
    stack.green_main("v0\n");
    let (pr, _) = stack.green_feature_pr("feature");
    let folder = format!("preview/web-pr-{pr}/release.json");
    wait_for("the preview", || stack.gitops_file(&folder).is_some());

    // GitHub's recorded `delete` payload, for acme/web's branch `feature`.
    let mut event: serde_json::Value = serde_json::from_slice(&fixture("delete.payload.json")).unwrap();
    event["ref"] = "feature".into();
    event["ref_type"] = "branch".into();
    event["repository"]["full_name"] = WEB.into();
    event["repository"]["name"] = "web".into();
    event["repository"]["owner"]["login"] = "acme".into();
    let (code, answer) =
        stack
            .server
            .deliver("delete", "delete-feature", &serde_json::to_vec(&event).unwrap());
    assert!((200..300).contains(&code), "{code} {answer}");
    stack.settle();
    wait_for("the preview removed", || stack.gitops_file(&folder).is_none());
    assert_eq!(stack.last_trailer("Auger-Action"), "remove");
    assert!(stack.sim.pull(WEB, pr).unwrap().open, "the close played no part");
}

#[test]
fn a_preview_without_a_push_for_its_ttl_goes_and_the_next_push_brings_it_back() {
    let policy =
        web_policy("[env.staging]\nmerge = \"direct\"\n[preview]\nenv = \"preview\"\nttl = \"8s\"\n");
    let stack = Stack::start_tuned(&policy, QUICK, "", &[]);
    stack.green_main("v0\n");
    let (pr, _) = stack.green_feature_pr("feature");
    let folder = format!("preview/web-pr-{pr}/release.json");
    wait_for("the preview", || stack.gitops_file(&folder).is_some());

    // A sweep every two seconds: at least one runs before the ttl, and leaves the preview.
    std::thread::sleep(Duration::from_secs(4));
    assert!(stack.gitops_file(&folder).is_some(), "removed before its ttl");
    let deadline = Instant::now() + Duration::from_secs(40);
    while stack.gitops_file(&folder).is_some() {
        assert!(Instant::now() < deadline, "the preview outlived its ttl");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(stack.last_trailer("Auger-Action"), "remove");
    // Not before: git's own times put the removal at least a ttl after the preview's commit.
    let times: Vec<i64> = stack
        .gitops_log("%ct")
        .iter()
        .map(|t| t.parse().unwrap())
        .collect();
    assert!(
        times[0] - times[1] >= 8,
        "removed {}s after it was written",
        times[0] - times[1]
    );
    wait_for("the comment to say it expired", || {
        preview_comment(&stack, pr).starts_with(
            "⌛ The preview of **web** for this pull request was removed after 8s without a push",
        )
    });

    // A push to the pull request whose build passes: the preview is back, at the new head.
    let head = stack
        .sim
        .push(WEB, "feature", &[("app.txt", "feature 2")], "feat: more", "alice")
        .unwrap();
    stack.settle();
    stack.sim.set_status(WEB, &head, "success", "ci/build").unwrap();
    stack.settle();
    wait_for("the preview back", || {
        stack.gitops_file(&folder).is_some_and(|t| t.contains(&head))
    });
    assert!(preview_comment(&stack, pr).starts_with("🔭 Preview of **web**"));
}
