//! Merging into a protected branch the way GitHub does: required checks and approvals answer
//! 405 with GitHub's reason until met, `mergeable_state` says why, mergeability is computed
//! lazily (`null` first), and a base that moves under a merge answers 405 "Base branch was
//! modified" once.

use crate::common::{Api, seeded};
use github_sim::contract::{self, SUBSET_JSON};
use github_sim::{GithubSim, Protection, SimConfig};
use serde_json::{Value, json};

const REPO: &str = "acme/frontend";
const MERGE_DOCS: &str = "https://docs.github.com/rest/pulls/pulls#merge-a-pull-request";

fn requiring(checks: &[&str]) -> Protection {
    Protection {
        required_status_checks: checks.iter().map(|c| c.to_string()).collect(),
        ..Default::default()
    }
}

/// A branch with one new file and a PR from it into main, opened by `author`; (number, head).
fn open_pr(sim: &GithubSim, branch: &str, author: &str) -> (u64, String) {
    let head = sim
        .push(REPO, branch, &[(&format!("{branch}.txt"), "x\n")], branch, author)
        .unwrap();
    let number = sim.open_pr(REPO, branch, "main", branch, author).unwrap();
    (number, head)
}

async fn merge(api: &Api, number: u64) -> (u16, Value) {
    api.json(
        "PUT",
        &format!("/repos/acme/frontend/pulls/{number}/merge"),
        json!({}),
    )
    .await
}

/// Asserts a 405 with GitHub's message and the merge operation's documentation page.
fn assert_refused(answer: &(u16, Value), message: &str) {
    let (status, body) = answer;
    assert_eq!(*status, 405, "{body}");
    assert_eq!(body["message"], message, "{body}");
    assert_eq!(body["documentation_url"], MERGE_DOCS, "{body}");
}

async fn mergeability(api: &Api, number: u64) -> (Value, Value) {
    let (status, pr) = api
        .send("GET", &format!("/repos/acme/frontend/pulls/{number}"), None)
        .await;
    assert_eq!(status, 200, "{pr}");
    (pr["mergeable"].clone(), pr["mergeable_state"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_commit_status_must_be_green_on_the_head_before_the_merge() {
    let sim = seeded(SimConfig::default());
    sim.protect_branch(REPO, "main", requiring(&["validate"]))
        .unwrap();
    let alice = Api::new(&sim, "alice");
    let (pr, head) = open_pr(&sim, "feature", "alice");

    assert_eq!(mergeability(&alice, pr).await, (json!(true), json!("blocked")));
    let expected = "Required status check \"validate\" is expected.";
    assert_refused(&merge(&alice, pr).await, expected);

    // Pending is not green yet; a status on another commit or context does not count.
    sim.set_status(REPO, &head, "pending", "validate").unwrap();
    sim.set_status(REPO, &head, "success", "lint").unwrap();
    let main = sim.branch_sha(REPO, "main").unwrap();
    sim.set_status(REPO, &main, "success", "validate").unwrap();
    assert_refused(&merge(&alice, pr).await, expected);

    sim.set_status(REPO, &head, "failure", "validate").unwrap();
    assert_refused(
        &merge(&alice, pr).await,
        "Required status check \"validate\" is failing.",
    );
    assert_eq!(mergeability(&alice, pr).await, (json!(true), json!("blocked")));
    assert!(
        sim.pull(REPO, pr).unwrap().open,
        "a refused merge changes nothing"
    );
    assert_eq!(sim.branch_sha(REPO, "main").unwrap(), main);

    // The latest status of the context counts: green now.
    sim.set_status(REPO, &head, "success", "validate").unwrap();
    assert_eq!(mergeability(&alice, pr).await, (json!(true), json!("clean")));
    let (status, merged) = merge(&alice, pr).await;
    assert_eq!(status, 200, "{merged}");
    assert_eq!(merged["merged"], true);
    assert!(sim.pull(REPO, pr).unwrap().merged);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_runs_satisfy_required_checks_and_a_status_of_the_same_name_must_pass_too() {
    let sim = seeded(SimConfig::default());
    sim.protect_branch(REPO, "main", requiring(&["validate", "build"]))
        .unwrap();
    let alice = Api::new(&sim, "alice");
    let (pr, head) = open_pr(&sim, "feature", "alice");

    assert_refused(
        &merge(&alice, pr).await,
        "2 of 2 required status checks are expected.",
    );
    let build = sim.create_check_run(REPO, &head, "build").unwrap();
    sim.complete_check_run(REPO, build, "success").unwrap();
    let run = sim.create_check_run(REPO, &head, "validate").unwrap();
    // In progress: still expected.
    assert_refused(
        &merge(&alice, pr).await,
        "Required status check \"validate\" is expected.",
    );
    sim.complete_check_run(REPO, run, "failure").unwrap();
    assert_refused(
        &merge(&alice, pr).await,
        "Required status check \"validate\" is failing.",
    );
    // A re-run that succeeds replaces the failed one.
    let rerun = sim.create_check_run(REPO, &head, "validate").unwrap();
    sim.complete_check_run(REPO, rerun, "success").unwrap();
    // A commit status with the same name is required as well.
    sim.set_status(REPO, &head, "error", "validate").unwrap();
    assert_refused(
        &merge(&alice, pr).await,
        "Required status check \"validate\" is failing.",
    );
    sim.set_status(REPO, &head, "success", "validate").unwrap();
    let (status, merged) = merge(&alice, pr).await;
    assert_eq!(status, 200, "{merged}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_from_reviewers_with_write_access_are_counted() {
    let sim = seeded(SimConfig::default());
    sim.create_user("erin").unwrap();
    sim.set_permission(REPO, "erin", "write").unwrap();
    sim.protect_branch(
        REPO,
        "main",
        Protection {
            required_approving_review_count: 1,
            ..Default::default()
        },
    )
    .unwrap();
    let erin = Api::new(&sim, "erin");
    let (pr, _) = open_pr(&sim, "feature", "erin");
    let one = "At least 1 approving review is required by reviewers with write access.";
    assert_refused(&merge(&erin, pr).await, one);
    assert_eq!(mergeability(&erin, pr).await, (json!(true), json!("blocked")));

    // bob can only read: his approval does not count.
    sim.review(REPO, pr, "bob", "APPROVED").unwrap();
    assert_refused(&merge(&erin, pr).await, one);
    // alice approves, then asks for changes: her latest verdict is what counts; a later
    // comment does not undo an approval.
    sim.review(REPO, pr, "alice", "APPROVED").unwrap();
    sim.review(REPO, pr, "alice", "CHANGES_REQUESTED").unwrap();
    assert_refused(&merge(&erin, pr).await, one);
    sim.review(REPO, pr, "alice", "APPROVED").unwrap();
    sim.review(REPO, pr, "alice", "COMMENTED").unwrap();
    assert_eq!(mergeability(&erin, pr).await, (json!(true), json!("clean")));
    assert_eq!(merge(&erin, pr).await.0, 200);

    // Two required: one approval is not enough.
    sim.protect_branch(
        REPO,
        "main",
        Protection {
            required_approving_review_count: 2,
            ..Default::default()
        },
    )
    .unwrap();
    let (second, _) = open_pr(&sim, "second", "erin");
    sim.review(REPO, second, "alice", "APPROVED").unwrap();
    assert_refused(
        &merge(&erin, second).await,
        "At least 2 approving reviews are required by reviewers with write access.",
    );
    sim.review(REPO, second, "carol", "APPROVED").unwrap();
    assert_eq!(merge(&erin, second).await.0, 200);

    assert!(
        sim.protect_branch(
            REPO,
            "main",
            Protection {
                required_approving_review_count: 7,
                ..Default::default()
            }
        )
        .is_err(),
        "GitHub takes 0 to 6"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_merge_through_unmet_requirements_unless_they_are_enforced_on_admins() {
    let sim = seeded(SimConfig::default());
    let mut protection = requiring(&["validate"]);
    protection.enforce_admins = true;
    sim.protect_branch(REPO, "main", protection.clone()).unwrap();
    let carol = Api::new(&sim, "carol");
    let (pr, _) = open_pr(&sim, "feature", "alice");
    assert_refused(
        &merge(&carol, pr).await,
        "Required status check \"validate\" is expected.",
    );
    protection.enforce_admins = false;
    sim.protect_branch(REPO, "main", protection).unwrap();
    let (status, merged) = merge(&carol, pr).await;
    assert_eq!(status, 200, "an admin bypasses: {merged}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strict_branch_needs_the_head_up_to_date_with_the_base() {
    let sim = seeded(SimConfig::default());
    sim.protect_branch(
        REPO,
        "main",
        Protection {
            required_status_checks: vec!["validate".into()],
            strict: true,
            ..Default::default()
        },
    )
    .unwrap();
    let alice = Api::new(&sim, "alice");
    let (pr, head) = open_pr(&sim, "feature", "alice");
    sim.set_status(REPO, &head, "success", "validate").unwrap();
    assert_eq!(mergeability(&alice, pr).await, (json!(true), json!("clean")));

    // main moves on: the green head no longer counts until the branch is updated.
    sim.push(REPO, "main", &[("other.txt", "o\n")], "Other", "carol")
        .unwrap();
    assert_eq!(mergeability(&alice, pr).await, (json!(true), json!("behind")));
    assert_refused(
        &merge(&alice, pr).await,
        "Required status check \"validate\" is expected.",
    );

    // Update the branch: the same change on top of the new main, then green again.
    let updated = sim
        .push(
            REPO,
            "feature-updated",
            &[("feature.txt", "x\n")],
            "feature",
            "alice",
        )
        .unwrap();
    sim.force_branch(REPO, "feature", &updated, "alice").unwrap();
    assert_eq!(mergeability(&alice, pr).await, (json!(true), json!("blocked")));
    sim.set_status(REPO, &updated, "success", "validate").unwrap();
    assert_eq!(merge(&alice, pr).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_stale_heads_and_unrequired_failures_keep_their_answers_on_a_protected_branch() {
    let sim = seeded(SimConfig::default());
    sim.protect_branch(REPO, "main", requiring(&["validate"]))
        .unwrap();
    let alice = Api::new(&sim, "alice");

    // Conflicts: dirty and GitHub's "not mergeable", whatever the checks say.
    let theirs = sim
        .push(REPO, "conflict", &[("README.md", "theirs\n")], "Theirs", "alice")
        .unwrap();
    sim.push(REPO, "main", &[("README.md", "ours\n")], "Ours", "carol")
        .unwrap();
    let conflict = sim
        .open_pr(REPO, "conflict", "main", "Conflict", "alice")
        .unwrap();
    sim.set_status(REPO, &theirs, "success", "validate").unwrap();
    assert_eq!(
        mergeability(&alice, conflict).await,
        (json!(false), json!("dirty"))
    );
    assert_refused(&merge(&alice, conflict).await, "Pull Request is not mergeable");

    // A stale expected head is still the 409.
    let (pr, head) = open_pr(&sim, "feature", "alice");
    let (status, body) = alice
        .json(
            "PUT",
            &format!("/repos/acme/frontend/pulls/{pr}/merge"),
            json!({"sha": theirs}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["message"],
        "Head branch was modified. Review and try the merge again."
    );

    // Required green, another check red: unstable, and it merges.
    sim.set_status(REPO, &head, "success", "validate").unwrap();
    sim.set_status(REPO, &head, "failure", "lint").unwrap();
    assert_eq!(mergeability(&alice, pr).await, (json!(true), json!("unstable")));
    assert_eq!(merge(&alice, pr).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mergeable_is_null_for_the_first_reads_and_a_moved_base_answers_405_once() {
    let sim = seeded(SimConfig::default());
    sim.set_mergeable_lag(2);
    let alice = Api::new(&sim, "alice");
    let (pr, _) = open_pr(&sim, "feature", "alice");
    let unknown = (Value::Null, json!("unknown"));
    assert_eq!(mergeability(&alice, pr).await, unknown);
    assert_eq!(mergeability(&alice, pr).await, unknown);
    assert_eq!(mergeability(&alice, pr).await, (json!(true), json!("clean")));
    assert_eq!(mergeability(&alice, pr).await, (json!(true), json!("clean")));
    // The `opened` webhook went out before anything was computed.
    sim.wait_deliveries_async().await;
    let opened = sim.deliveries_of("pull_request");
    let opened = opened.last().unwrap();
    assert_eq!(opened.payload["action"], "opened");
    assert_eq!(opened.payload["pull_request"]["mergeable"], Value::Null);
    assert_eq!(opened.payload["pull_request"]["mergeable_state"], "unknown");

    // The base moves: unknown again, and a merge before the new comparison is refused once.
    sim.push(REPO, "main", &[("other.txt", "o\n")], "Other", "carol")
        .unwrap();
    assert_eq!(mergeability(&alice, pr).await, unknown);
    let base_modified = "Base branch was modified. Review and try the merge again.";
    assert_refused(&merge(&alice, pr).await, base_modified);
    assert!(sim.pull(REPO, pr).unwrap().open);
    let (status, merged) = merge(&alice, pr).await;
    assert_eq!(status, 200, "the retry merges: {merged}");

    // A head that moves (base unchanged) is unknown too, but nothing stale: it merges at once.
    let (second, _) = open_pr(&sim, "second", "alice");
    assert_eq!(mergeability(&alice, second).await, unknown);
    assert_eq!(mergeability(&alice, second).await, unknown);
    assert_eq!(mergeability(&alice, second).await.0, json!(true));
    sim.push(REPO, "second", &[("more.txt", "m\n")], "More", "alice")
        .unwrap();
    assert_eq!(mergeability(&alice, second).await, unknown);
    assert_eq!(merge(&alice, second).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_driver_makes_the_next_merge_answer_base_branch_was_modified_once() {
    let sim = seeded(SimConfig::default());
    let alice = Api::new(&sim, "alice");
    let (pr, _) = open_pr(&sim, "feature", "alice");
    sim.base_modified_once(REPO, pr).unwrap();
    assert_refused(
        &merge(&alice, pr).await,
        "Base branch was modified. Review and try the merge again.",
    );
    assert!(sim.pull(REPO, pr).unwrap().open);
    assert_eq!(merge(&alice, pr).await.0, 200);
    assert!(
        sim.base_modified_once(REPO, pr).is_err(),
        "only open pull requests merge"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn branch_protection_is_readable_in_githubs_shape() {
    let sim = seeded(SimConfig::default());
    let alice = Api::new(&sim, "alice");
    sim.create_branch(REPO, "release/v1", "main", "alice").unwrap();
    let path = "/repos/acme/frontend/branches/release/v1/protection";

    let (status, body) = alice.send("GET", path, None).await;
    assert_eq!(
        (status, body["message"].clone()),
        (404, json!("Branch not protected"))
    );
    let (status, body) = alice
        .send("GET", "/repos/acme/frontend/branches/nope/protection", None)
        .await;
    assert_eq!(
        (status, body["message"].clone()),
        (404, json!("Branch not found"))
    );

    sim.protect_branch(
        REPO,
        "release/v1",
        Protection {
            required_status_checks: vec!["validate".into()],
            strict: true,
            required_approving_review_count: 2,
            enforce_admins: false,
        },
    )
    .unwrap();
    let (status, got) = alice.send("GET", path, None).await;
    assert_eq!(status, 200, "{got}");
    let url = format!("{}{path}", sim.url());
    assert_eq!(got["url"], url);
    let checks = &got["required_status_checks"];
    assert_eq!(checks["contexts"], json!(["validate"]));
    assert_eq!(checks["checks"], json!([{"context": "validate", "app_id": null}]));
    assert_eq!(checks["strict"], true);
    assert_eq!(
        got["required_pull_request_reviews"]["required_approving_review_count"],
        2
    );
    assert_eq!(got["enforce_admins"]["enabled"], false);
    // The answer conforms to GitHub's response schema for the operation.
    let subset: Value = serde_json::from_str(SUBSET_JSON).unwrap();
    let op = subset["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|op| {
            op["method"] == "GET" && op["path"] == "/repos/{owner}/{repo}/branches/{branch}/protection"
        })
        .expect("the route is in the contract subset");
    let violations = contract::violations(&op["responses"]["200"]["schema"], &got);
    assert!(violations.is_empty(), "{violations:?}");

    // The branch itself says it is protected.
    let (status, branch) = alice
        .send("GET", "/repos/acme/frontend/branches/release/v1", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(branch["protected"], true);
    assert_eq!(branch["protection"]["enabled"], true);
    assert_eq!(
        branch["protection"]["required_status_checks"]["contexts"],
        json!(["validate"])
    );

    // Without reviews or checks, those sections are absent, as on GitHub.
    sim.protect_branch(REPO, "release/v1", Protection::default())
        .unwrap();
    let (_, bare) = alice.send("GET", path, None).await;
    assert!(bare.get("required_status_checks").is_none(), "{bare}");
    assert!(bare.get("required_pull_request_reviews").is_none(), "{bare}");

    sim.unprotect_branch(REPO, "release/v1").unwrap();
    assert_eq!(alice.send("GET", path, None).await.0, 404);
    assert!(sim.unprotect_branch(REPO, "release/v1").is_err());
    let (_, branch) = alice
        .send("GET", "/repos/acme/frontend/branches/release/v1", None)
        .await;
    assert_eq!(branch["protected"], false);
}
