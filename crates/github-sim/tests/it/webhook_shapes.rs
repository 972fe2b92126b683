//! Sim-generated webhook payloads have the key structure of real GitHub payloads
//! (the bot's `tests/fixtures/webhooks/`, overridable with `AUGER_WEBHOOK_FIXTURES`).
//!
//! Two checks per event:
//! 1. the keys a bot reads (listed explicitly below) exist in both with the same kind
//!    (object / array / scalar; `null` matches anything);
//! 2. every key path of the fixture exists in the sim payload (recursively; arrays compared by
//!    their first element when both are non-empty), except the few listed as not simulated.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use github_sim::{Delivery, GithubSim, SimConfig};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Object,
    Array,
    EmptyArray,
    Scalar,
    Null,
}

fn kind(v: &Value) -> Kind {
    match v {
        Value::Object(_) => Kind::Object,
        Value::Array(a) if a.is_empty() => Kind::EmptyArray,
        Value::Array(_) => Kind::Array,
        Value::Null => Kind::Null,
        _ => Kind::Scalar,
    }
}

/// Flattens a payload to `path -> kind`; array elements appear as `[]` (first element only).
fn shape(v: &Value, prefix: &str, out: &mut BTreeMap<String, Kind>) {
    let mut child = |key: &str, v: &Value| {
        let path = if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}.{key}")
        };
        out.insert(path.clone(), kind(v));
        shape(v, &path, out);
    };
    match v {
        Value::Object(m) => m.iter().for_each(|(k, v)| child(k, v)),
        Value::Array(a) => {
            if let Some(first) = a.first() {
                child("[]", first)
            }
        }
        _ => {}
    }
}

fn compatible(a: Kind, b: Kind) -> bool {
    let arrays = [Kind::Array, Kind::EmptyArray];
    a == b || a == Kind::Null || b == Kind::Null || (arrays.contains(&a) && arrays.contains(&b))
}

/// Whether the sim has `null` or `[]` above `key`: then what lies below is content the scenario
/// didn't produce (no assignee, no labels), not a structural difference.
fn below_empty(sim: &BTreeMap<String, Kind>, key: &str) -> bool {
    key.match_indices('.')
        .any(|(i, _)| matches!(sim.get(&key[..i]), Some(Kind::Null | Kind::EmptyArray)))
}

fn fixture(name: &str) -> Value {
    let dir = std::env::var("AUGER_WEBHOOK_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/webhooks"));
    let text = std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// Keys every event a bot handles must carry.
const COMMON: &[&str] = &[
    "repository",
    "repository.id",
    "repository.name",
    "repository.full_name",
    "repository.owner",
    "repository.owner.login",
    "repository.owner.id",
    "repository.owner.type",
    "repository.private",
    "repository.clone_url",
    "repository.default_branch",
    "repository.html_url",
    "sender",
    "sender.login",
    "sender.id",
    "sender.type",
];

const PULL_REQUEST: &[&str] = &[
    "pull_request.number",
    "pull_request.state",
    "pull_request.draft",
    "pull_request.head",
    "pull_request.head.ref",
    "pull_request.head.sha",
    "pull_request.head.repo",
    "pull_request.head.repo.full_name",
    "pull_request.base",
    "pull_request.base.ref",
    "pull_request.base.sha",
    "pull_request.base.repo",
    "pull_request.base.repo.full_name",
    "pull_request.user",
    "pull_request.user.login",
    "pull_request.user.id",
    "pull_request.html_url",
    "pull_request.title",
    "pull_request.body",
];

/// Fixture key paths the simulator deliberately leaves out (none matter to a bot): the fixture
/// app's own permission set is content, not structure.
const NOT_SIMULATED: &[&str] = &[
    "check_run.app.permissions",
    "check_run.check_suite.app.permissions",
    "installation.permissions",
];

/// Compares one sim payload with its fixture. `keys`: must exist in both; `sim_only`: keys
/// GitHub documents that this particular fixture happens not to contain.
fn assert_same_structure(event: &str, fixture: &Value, sim: &Value, keys: &[&str], sim_only: &[&str]) {
    let mut f = BTreeMap::new();
    shape(fixture, "", &mut f);
    let mut s = BTreeMap::new();
    shape(sim, "", &mut s);
    let mut problems = Vec::new();
    for key in keys {
        match (f.get(*key), s.get(*key)) {
            (Some(a), Some(b)) if compatible(*a, *b) => {}
            (Some(a), Some(b)) => problems.push(format!("{key}: fixture {a:?}, sim {b:?}")),
            (None, _) => problems.push(format!("{key}: not in the fixture (test list is wrong)")),
            (_, None) => problems.push(format!("{key}: missing in sim payload")),
        }
    }
    for key in sim_only {
        if !s.contains_key(*key) {
            problems.push(format!("{key}: missing in sim payload"));
        }
    }
    for (key, k) in &f {
        if below_empty(&s, key) || NOT_SIMULATED.iter().any(|n| key.starts_with(&format!("{n}."))) {
            continue;
        }
        match s.get(key) {
            Some(sk) if compatible(*k, *sk) => {}
            Some(sk) => problems.push(format!("{key}: fixture {k:?}, sim {sk:?}")),
            None => problems.push(format!("{key}: in fixture, missing in sim")),
        }
    }
    assert!(
        problems.is_empty(),
        "{event}: key structure differs from the real payload:\n  {}",
        problems.join("\n  ")
    );
}

fn join(parts: &[&[&'static str]]) -> Vec<&'static str> {
    parts.iter().flat_map(|p| p.iter().copied()).collect()
}

#[test]
fn the_comparison_catches_renamed_and_moved_keys() {
    let real = serde_json::json!({"action": "opened", "pull_request": {"head": {"ref": "x", "sha": "1"}}});
    let renamed =
        serde_json::json!({"action": "opened", "pull_request": {"head": {"branch": "x", "sha": "1"}}});
    let moved = serde_json::json!({"action": "opened", "pull_request": {"ref": "x", "head": {"sha": "1"}}, "head": {"ref": "x"}});
    let scalar = serde_json::json!({"action": "opened", "pull_request": {"head": "x"}});
    for bad in [renamed, moved, scalar] {
        let r = std::panic::catch_unwind(|| {
            assert_same_structure("t", &real, &bad, &["pull_request.head.ref"], &[])
        });
        assert!(r.is_err(), "{bad} should not match");
    }
    assert_same_structure("t", &real, &real, &["pull_request.head.ref"], &[]);
}

/// One scenario that makes every event type once; deliveries only recorded (no URL).
fn deliveries() -> &'static Vec<Delivery> {
    static D: OnceLock<Vec<Delivery>> = OnceLock::new();
    D.get_or_init(|| {
        let sim = GithubSim::start(SimConfig::default()).unwrap();
        sim.create_org("acme").unwrap();
        sim.create_repo("acme/web").unwrap();
        sim.set_permission("acme/web", "alice", "write").unwrap();
        let base = sim
            .push(
                "acme/web",
                "main",
                &[("README.md", "hi\n")],
                "Initial commit",
                "alice",
            )
            .unwrap();
        sim.push("acme/web", "main", &[("a.txt", "a\n")], "Second", "alice")
            .unwrap();
        sim.push("acme/web", "feature", &[("b.txt", "b\n")], "Feature", "alice")
            .unwrap();
        let n = sim
            .open_pr("acme/web", "feature", "main", "Add b", "alice")
            .unwrap();
        let head = sim
            .push("acme/web", "feature", &[("b.txt", "b2\n")], "More", "alice")
            .unwrap();
        let c = sim.comment("acme/web", n, "bob", "/deploy staging").unwrap();
        sim.edit_comment("acme/web", c, "/deploy production", "bob")
            .unwrap();
        sim.review("acme/web", n, "carol", "APPROVED").unwrap();
        sim.set_status("acme/web", &head, "success", "ci/build").unwrap();
        let run = sim.create_check_run("acme/web", &head, "build").unwrap();
        sim.complete_check_run("acme/web", run, "success").unwrap();
        let wf = sim
            .create_workflow_run("acme/web", "CI", &head, "feature", "alice")
            .unwrap();
        sim.complete_workflow_run("acme/web", wf, "success").unwrap();
        sim.create_tag("acme/web", "v1.0.0", &base, "alice").unwrap();
        sim.delete_tag("acme/web", "v1.0.0", "alice").unwrap();
        sim.merge_pr("acme/web", n, "carol").unwrap();
        sim.push("acme/web", "other", &[("o.txt", "o\n")], "Other", "alice")
            .unwrap();
        let other = sim
            .open_pr("acme/web", "other", "main", "Other", "alice")
            .unwrap();
        sim.close_pr("acme/web", other, "alice").unwrap();
        sim.reopen_pr("acme/web", other, "alice").unwrap();
        sim.wait_deliveries();
        sim.deliveries()
    })
}

fn find(event: &str, pred: impl Fn(&Value) -> bool) -> Value {
    deliveries()
        .iter()
        .find(|d| d.event == event && pred(&d.payload))
        .unwrap_or_else(|| panic!("no {event} delivery"))
        .payload
        .clone()
}

fn action(a: &'static str) -> impl Fn(&Value) -> bool {
    move |p| p["action"] == a
}

#[test]
fn pull_request_opened_synchronize_closed_and_reopened_match_github() {
    let keys = join(&[
        COMMON,
        PULL_REQUEST,
        &[
            "action",
            "number",
            "installation",
            "installation.id",
            "pull_request.merged",
        ],
    ]);
    for (name, act) in [
        ("opened", "opened"),
        ("synchronize", "synchronize"),
        ("closed", "closed"),
        // No `reopened` fixture exists; GitHub sends it with the `opened` shape.
        ("opened", "reopened"),
    ] {
        let sim = find("pull_request", action(act));
        let mut keys = keys.clone();
        if act == "synchronize" {
            keys.extend(["before", "after"]);
        }
        assert_same_structure(
            &format!("pull_request.{act}"),
            &fixture(&format!("pull_request.{name}.payload.json")),
            &sim,
            &keys,
            &[],
        );
    }
    let merged = find("pull_request", action("closed"));
    assert_eq!(merged["pull_request"]["merged"], true);
    let reopened = find("pull_request", action("reopened"));
    assert_eq!(reopened["pull_request"]["state"], "open");
}

#[test]
fn pull_request_review_submitted_matches_github_with_lowercase_state() {
    let keys = join(&[
        COMMON,
        PULL_REQUEST,
        &[
            "action",
            "installation",
            "installation.id",
            "review",
            "review.id",
            "review.state",
            "review.commit_id",
            "review.user",
            "review.user.login",
            "review.body",
        ],
    ]);
    let sim = find("pull_request_review", action("submitted"));
    assert_same_structure(
        "pull_request_review",
        &fixture("pull_request_review.submitted.payload.json"),
        &sim,
        &keys,
        &[],
    );
    assert_eq!(
        sim["review"]["state"], "approved",
        "webhooks carry lower-case review states"
    );
}

#[test]
fn issue_comment_created_and_edited_match_github() {
    let keys = join(&[
        COMMON,
        &[
            "action",
            "issue",
            "issue.number",
            "comment",
            "comment.id",
            "comment.body",
            "comment.user",
            "comment.user.login",
            "comment.user.id",
            "comment.user.type",
            "comment.created_at",
        ],
    ]);
    // The fixtures comment on a plain issue; on a PR GitHub adds `issue.pull_request.url`.
    let sim_only = ["installation.id", "issue.pull_request", "issue.pull_request.url"];
    let created = find("issue_comment", action("created"));
    assert_same_structure(
        "issue_comment.created",
        &fixture("issue_comment.created.payload.json"),
        &created,
        &keys,
        &sim_only,
    );
    let mut edited_keys = keys.clone();
    edited_keys.extend(["changes", "changes.body", "changes.body.from"]);
    let edited = find("issue_comment", action("edited"));
    assert_same_structure(
        "issue_comment.edited",
        &fixture("issue_comment.edited.payload.json"),
        &edited,
        &edited_keys,
        &sim_only,
    );
    assert_eq!(edited["changes"]["body"]["from"], "/deploy staging");
}

#[test]
fn push_events_match_github() {
    let keys = join(&[
        COMMON,
        &[
            "ref",
            "before",
            "after",
            "created",
            "deleted",
            "forced",
            "commits",
            "head_commit",
            "pusher",
        ],
    ]);
    let commit_keys = [
        "commits.[]",
        "commits.[].id",
        "commits.[].message",
        "commits.[].added",
        "head_commit.id",
        "head_commit.message",
        "head_commit.author",
    ];
    // A new branch with its first commit.
    let created = find("push", |p| {
        p["created"] == true && p["ref"] == "refs/heads/feature"
    });
    let mut k = keys.clone();
    k.extend(commit_keys);
    k.extend(["installation", "installation.id"]);
    assert_same_structure(
        "push (new branch)",
        &fixture("push.with-new-branch.payload.json"),
        &created,
        &k,
        &[],
    );
    // An update of an existing branch.
    let updated = find("push", |p| p["created"] == false && p["deleted"] == false);
    assert_same_structure(
        "push",
        &fixture("push.payload.json"),
        &updated,
        &keys,
        &["installation.id", "commits.[].id"],
    );
    assert!(updated["commits"].as_array().is_some_and(|c| c.len() == 1));
}

#[test]
fn create_and_delete_match_github() {
    let keys = join(&[COMMON, &["ref", "ref_type", "pusher_type"]]);
    let create = find("create", |p| p["ref_type"] == "tag");
    assert_same_structure(
        "create",
        &fixture("create.payload.json"),
        &create,
        &keys,
        &["installation.id"],
    );
    assert_eq!(create["ref"], "v1.0.0");
    let delete = find("delete", |p| p["ref_type"] == "tag");
    assert_same_structure(
        "delete",
        &fixture("delete.payload.json"),
        &delete,
        &keys,
        &["installation.id"],
    );
}

#[test]
fn status_matches_github() {
    let keys = join(&[
        COMMON,
        &[
            "sha",
            "state",
            "context",
            "description",
            "target_url",
            "branches",
            "branches.[]",
            "branches.[].name",
            "commit",
            "commit.sha",
        ],
    ]);
    let sim = find("status", |_| true);
    assert_same_structure(
        "status",
        &fixture("status.payload.json"),
        &sim,
        &keys,
        &["installation.id"],
    );
    assert_eq!(sim["state"], "success");
    assert_eq!(sim["context"], "ci/build");
}

#[test]
fn check_run_completed_matches_github() {
    let keys = join(&[
        COMMON,
        &[
            "action",
            "check_run",
            "check_run.name",
            "check_run.status",
            "check_run.conclusion",
            "check_run.head_sha",
            "check_run.check_suite",
            "check_run.check_suite.head_branch",
            "check_run.pull_requests",
        ],
    ]);
    let sim = find("check_run", action("completed"));
    assert_same_structure(
        "check_run",
        &fixture("check_run.completed.payload.json"),
        &sim,
        &keys,
        &["installation.id"],
    );
    assert_eq!(sim["check_run"]["conclusion"], "success");
    assert_eq!(sim["check_run"]["check_suite"]["head_branch"], "feature");
}

#[test]
fn workflow_run_completed_matches_github() {
    let keys = join(&[
        COMMON,
        &[
            "action",
            "workflow_run",
            "workflow_run.name",
            "workflow_run.status",
            "workflow_run.conclusion",
            "workflow_run.head_sha",
            "workflow_run.head_branch",
            "workflow_run.event",
            "workflow",
            "organization",
        ],
    ]);
    let sim = find("workflow_run", action("completed"));
    assert_same_structure(
        "workflow_run",
        &fixture("workflow_run.completed.payload.json"),
        &sim,
        &keys,
        &["installation.id"],
    );
    assert_eq!(sim["workflow_run"]["name"], "CI");
    assert_eq!(sim["workflow_run"]["conclusion"], "success");
}

#[test]
fn installation_and_installation_repositories_match_github() {
    let sim = GithubSim::start(SimConfig::default()).unwrap();
    sim.create_org("acme").unwrap();
    sim.create_user("alice").unwrap();
    sim.create_repo("acme/web").unwrap();
    sim.create_repo("acme/api").unwrap();
    let id = sim.install_app_on("acme", &["acme/web"], "alice").unwrap();
    sim.add_installation_repository(id, "acme/api", "alice").unwrap();
    sim.wait_deliveries();
    let recorded = sim.deliveries();
    let of = |event: &str| {
        recorded
            .iter()
            .find(|d| d.event == event)
            .unwrap_or_else(|| panic!("no {event} delivery"))
            .payload
            .clone()
    };
    let installation = [
        "action",
        "installation",
        "installation.id",
        "installation.account",
        "installation.account.login",
        "installation.account.type",
        "installation.app_id",
        "installation.repository_selection",
        "sender",
        "sender.login",
    ];
    let created = of("installation");
    let mut keys = installation.to_vec();
    keys.extend(["repositories", "repositories.[].full_name", "repositories.[].id"]);
    assert_same_structure(
        "installation",
        &fixture("installation.created.payload.json"),
        &created,
        &keys,
        &[],
    );
    assert_eq!(created["installation"]["id"], id);
    let added = of("installation_repositories");
    let mut keys = installation.to_vec();
    keys.extend([
        "repository_selection",
        "repositories_added",
        "repositories_added.[].full_name",
        "repositories_removed",
    ]);
    assert_same_structure(
        "installation_repositories",
        &fixture("installation_repositories.added.payload.json"),
        &added,
        &keys,
        &[],
    );
    assert_eq!(added["repositories_added"][0]["full_name"], "acme/api");
}
