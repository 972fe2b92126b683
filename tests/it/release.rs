//! The release loop end to end: the GitHub simulator sends signed webhooks to a running
//! `auger serve`, which writes the gitops repository (a real bare repository the simulator
//! hosts), opens and merges pull requests through the GitHub API, and reports back with
//! commit statuses. Everything is checked where a user would look: GitHub's state and plain
//! `git` on the gitops and ledger repositories.

use crate::support::cli::{auger_with_env, stderr, stdout};
use crate::support::snapshot::Redactions;
use std::time::Duration;

use crate::support::{API_TOKEN, GITOPS, SECRET, Stack, git, wait_for, web_policy};

const STAGING_AND_QA: &str = r#"
[env.staging]
auto = { branch = "main" }
merge = "auto"

[env.qa]
auto = { branch = "main" }
merge = "approval"
approvals = 1
approvers = ["user:sre1"]
"#;

/// CI turns main green → the staging PR is opened and merged by auger → `staging/web/` holds
/// the rendered files and release.json → status `auger/staging` is success on the source
/// commit → the ledger's env ref names the artifact. Meanwhile the qa PR waits for approval,
/// and a newer main build updates that same PR instead of opening a second one.
#[test]
fn main_green_releases_staging_through_a_merged_pr_and_a_newer_build_updates_the_waiting_qa_pr() {
    let stack = Stack::start(&web_policy(STAGING_AND_QA));
    let first = stack.green_main("v1");

    wait_for("the staging release on main", || stack.live("staging").is_some());
    let staging = stack.auger_pulls("auger/staging/web");
    assert_eq!(staging.len(), 1, "one staging PR");
    assert!(staging[0].merged, "merged by auger at once (merge = auto)");
    assert_eq!(
        stack.gitops_file("staging/web/deployment.yaml").unwrap(),
        format!("image: ghcr.io/acme/web:{first}\n")
    );
    let record = stack.release_json("staging");
    assert_eq!(record["artifact"], format!("web@{}", &first[..12]));
    assert_eq!(record["trigger"], "policy");
    assert_eq!(stack.live("staging").as_deref(), Some(first.as_str()));
    let (state, _) = stack.status(&first, "auger/staging").unwrap();
    assert_eq!(state, "success");
    // One GitHub deployment for the release: in_progress, then success.
    let deployments: Vec<_> = stack
        .sim
        .deployments("acme/web")
        .unwrap()
        .into_iter()
        .filter(|d| d.environment == "staging" && d.sha == first)
        .collect();
    assert_eq!(deployments.len(), 1);
    let states: Vec<&str> = deployments[0].statuses.iter().map(|s| s.state.as_str()).collect();
    assert_eq!(states, ["in_progress", "success"]);
    // The release commit carries the design §7 trailers, readable with plain git.
    let trailers = git(
        &stack.gitops_dir,
        &[
            "log",
            "-1",
            "--format=%(trailers:only,unfold)",
            &staging[0].head_sha,
        ],
    );
    for want in [
        "Auger-App: web",
        "Auger-Env: staging",
        &format!("Auger-Artifact: web@{}", &first[..12]),
        &format!("Auger-Source: acme/web@{first}"),
        "Auger-Trigger: policy",
    ] {
        assert!(trailers.contains(want), "missing {want:?} in:\n{trailers}");
    }
    // So does the merge commit: the first-parent log of main is the release history alone.
    let merge = staging[0].merge_commit_sha.clone().unwrap();
    let merge_trailers = git(
        &stack.gitops_dir,
        &["log", "-1", "--format=%(trailers:only,unfold)", &merge],
    );
    assert_eq!(merge_trailers.trim(), trailers.trim());

    // qa needs an approval: its PR is open, the status pending, nothing in qa/ yet.
    let qa = stack.auger_pulls("auger/qa/web");
    assert_eq!(qa.len(), 1);
    assert!(qa[0].open);
    let names = || {
        Redactions::new()
            .commit(&first, "first")
            .value(stack.sim.url(), "<github>")
    };
    insta::assert_snapshot!("qa_pr_title", names().apply(&qa[0].title));
    insta::assert_snapshot!("qa_pr_body", names().apply(&qa[0].body));
    assert_eq!(stack.status(&first, "auger/qa").unwrap().0, "pending");
    assert!(stack.gitops_file("qa/web/release.json").is_none());
    assert_eq!(stack.live("qa"), None);

    // A newer build of main: staging moves on, and the same qa PR now proposes it.
    let second = stack.green_main("v2");
    wait_for("staging on the second build", || {
        stack.live("staging").as_deref() == Some(second.as_str())
    });
    let qa_after = stack.auger_pulls("auger/qa/web");
    assert_eq!(qa_after.len(), 1, "no second qa PR");
    assert_eq!(qa_after[0].number, qa[0].number);
    assert!(qa_after[0].open);
    assert_ne!(
        qa_after[0].head_sha, qa[0].head_sha,
        "the branch was force-updated"
    );
    // The first build's qa status is final, not left pending.
    assert_eq!(
        stack.status(&first, "auger/qa"),
        Some((
            "error".to_string(),
            format!("superseded by web@{}", &second[..12])
        ))
    );
    // The body names the superseded version.
    insta::assert_snapshot!(
        "qa_pr_body_superseding",
        names().commit(&second, "second").apply(&qa_after[0].body)
    );

    // The approver approves the current head → merged → qa is live with the second build.
    stack
        .sim
        .review(GITOPS, qa[0].number, "sre1", "APPROVED")
        .unwrap();
    stack.settle();
    wait_for("qa released", || {
        stack.live("qa").as_deref() == Some(second.as_str())
    });
    assert!(stack.sim.pull(GITOPS, qa[0].number).unwrap().merged);
    assert_eq!(stack.status(&second, "auger/qa").unwrap().0, "success");
    // History stays linear where auger commits directly; merges come only from PRs.
    assert!(stack.release_json("qa")["artifact"] == format!("web@{}", &second[..12]));
}

const PRODUCTION: &str = r#"
[env.production]
auto = { tag = "v*" }
merge = "approval"
approvals = 2
approvers = ["team:acme/sre"]
"#;

fn assert_waits(stack: &Stack, pull: u64, why: &str) {
    stack.settle();
    let pr = stack.sim.pull(GITOPS, pull).unwrap();
    assert!(!pr.merged && pr.open, "{why}: the PR must still wait");
}

/// Tag v1.2.0 → the production PR waits; a non-approver's approval does not merge it; the
/// source commit's author approving does not count (even as an SRE); two SRE approvals merge
/// it. On the next tag, a standing CHANGES_REQUESTED by an SRE blocks two approvals until
/// that SRE approves.
#[test]
fn a_tag_opens_a_production_pr_that_merges_only_on_two_valid_approvals() {
    let stack = Stack::start(&web_policy(PRODUCTION));
    let sha = stack.green_main("v1");
    stack.sim.create_tag("acme/web", "v1.2.0", &sha, "alice").unwrap();
    stack.settle();
    wait_for("the production PR", || {
        stack.auger_pulls("auger/production/web").len() == 1
    });
    let pr = stack.auger_pulls("auger/production/web").remove(0);
    let names = Redactions::new()
        .commit(&sha, "tagged")
        .value(stack.sim.url(), "<github>");
    insta::assert_snapshot!("production_pr_title", names.apply(&pr.title));
    insta::assert_snapshot!("production_pr_body", names.apply(&pr.body));
    assert_eq!(stack.status(&sha, "auger/production").unwrap().0, "pending");

    stack
        .sim
        .review(GITOPS, pr.number, "mallory", "APPROVED")
        .unwrap();
    assert_waits(&stack, pr.number, "mallory is no approver");
    stack.sim.review(GITOPS, pr.number, "alice", "APPROVED").unwrap();
    assert_waits(&stack, pr.number, "alice wrote the source commit");
    stack.sim.review(GITOPS, pr.number, "sre1", "APPROVED").unwrap();
    assert_waits(&stack, pr.number, "one of two approvals");
    assert_eq!(stack.live("production"), None);

    stack.sim.review(GITOPS, pr.number, "sre2", "APPROVED").unwrap();
    stack.settle();
    wait_for("the merge", || {
        stack.live("production").as_deref() == Some(sha.as_str())
    });
    assert!(stack.sim.pull(GITOPS, pr.number).unwrap().merged);
    assert_eq!(stack.status(&sha, "auger/production").unwrap().0, "success");
    let record = stack.release_json("production");
    assert_eq!(record["artifact"], format!("web@{}", &sha[..12]));

    // Next release: a request for changes by an approver blocks, whatever the count.
    let next = stack.green_main("v2");
    stack
        .sim
        .create_tag("acme/web", "v1.3.0", &next, "alice")
        .unwrap();
    stack.settle();
    wait_for("the second production PR", || {
        stack.auger_pulls("auger/production/web").iter().any(|p| p.open)
    });
    let second = stack
        .auger_pulls("auger/production/web")
        .into_iter()
        .find(|p| p.open)
        .unwrap();
    assert_ne!(second.number, pr.number);
    stack
        .sim
        .review(GITOPS, second.number, "sre1", "CHANGES_REQUESTED")
        .unwrap();
    stack
        .sim
        .review(GITOPS, second.number, "sre2", "APPROVED")
        .unwrap();
    stack
        .sim
        .review(GITOPS, second.number, "sre3", "APPROVED")
        .unwrap();
    assert_waits(&stack, second.number, "sre1 requested changes");
    assert_eq!(stack.live("production").as_deref(), Some(sha.as_str()));
    stack
        .sim
        .review(GITOPS, second.number, "sre1", "APPROVED")
        .unwrap();
    stack.settle();
    wait_for("the second merge", || {
        stack.live("production").as_deref() == Some(next.as_str())
    });

    // A release PR closed without merging: the release is abandoned, and says so.
    let third = stack.green_main("v3");
    stack
        .sim
        .create_tag("acme/web", "v1.4.0", &third, "alice")
        .unwrap();
    stack.settle();
    let open = stack
        .auger_pulls("auger/production/web")
        .into_iter()
        .find(|p| p.open)
        .expect("a third production PR");
    stack.sim.close_pr(GITOPS, open.number, "sre1").unwrap();
    stack.settle();
    let (state, why) = stack.status(&third, "auger/production").unwrap();
    assert_eq!(state, "error");
    assert!(why.contains("closed without merging"), "{why}");
    assert_eq!(stack.live("production").as_deref(), Some(next.as_str()));
}

const DIRECT: &str = r#"
[env.dev]
merge = "direct"
"#;

/// `POST /api/v1/releases` in `direct` mode commits straight to the gitops branch; the same
/// release again makes no commit; bad requests are refused with a JSON error and queue
/// nothing; `auger release make` goes through the same path.
#[test]
fn ad_hoc_direct_releases_through_the_api_and_the_cli_and_an_unchanged_one_makes_no_commit() {
    let mut stack = Stack::start(&web_policy(DIRECT));
    let sha = stack.green_main("v1");
    let commits_before = stack.gitops_log("%H").len();
    let token = API_TOKEN.split_once(':').unwrap().1;
    let id = format!("web@{}", &sha[..12]);

    let body = serde_json::json!({ "app": "web", "env": "dev", "artifact": id });
    let (code, answer) = stack.server.post("/api/v1/releases", Some(token), &body);
    assert_eq!(code, 202, "{answer}");
    assert_eq!(answer["trigger"], "api ci");
    stack.settle();
    wait_for("dev released", || {
        stack.live("dev").as_deref() == Some(sha.as_str())
    });
    assert_eq!(stack.gitops_log("%H").len(), commits_before + 1);
    assert_eq!(
        stack.gitops_log("%P")[0].split(' ').count(),
        1,
        "a plain commit, no merge"
    );
    assert_eq!(stack.last_trailer("Auger-Trigger"), "api ci");
    assert_eq!(stack.status(&sha, "auger/dev").unwrap().0, "success");
    assert!(
        stack.auger_pulls("auger/dev/web").is_empty(),
        "direct mode opens no PR"
    );

    // The same release again: already released, no commit.
    let (code, _) = stack.server.post("/api/v1/releases", Some(token), &body);
    assert_eq!(code, 202);
    stack.settle();
    assert_eq!(stack.gitops_log("%H").len(), commits_before + 1);

    // Refusals: JSON errors, nothing queued.
    for (body, token, want_code, want_text) in [
        (
            serde_json::json!({ "app": "web", "env": "prod", "artifact": id }),
            Some(token),
            422,
            "known: dev",
        ),
        (
            serde_json::json!({ "app": "web", "env": "dev", "artifact": "web@0123456789ab" }),
            Some(token),
            404,
            "no artifact",
        ),
        (
            serde_json::json!({ "app": "nope", "env": "dev", "artifact": id }),
            Some(token),
            422,
            "no policy",
        ),
        (
            serde_json::json!({ "app": "../x", "env": "dev", "artifact": id }),
            Some(token),
            400,
            "app",
        ),
        (
            serde_json::json!({ "app": "web", "env": "dev", "artifact": id }),
            None,
            401,
            "token",
        ),
    ] {
        let (code, answer) = stack.server.post("/api/v1/releases", token, &body);
        assert_eq!(code, want_code, "{body}: {answer}");
        assert!(answer["error"].as_str().unwrap().contains(want_text), "{answer}");
    }
    stack.settle();
    assert_eq!(stack.gitops_log("%H").len(), commits_before + 1);

    // The CLI, in its own process, on the same stores once the server has stopped (beside a
    // running one it is refused): a second build goes to dev.
    let next = stack.green_main("v2");
    stack.server.kill();
    let release_make = |env: &str, artifact: &str| {
        auger_with_env(
            stack.setup.path(),
            &[
                "release",
                "make",
                "--app",
                "web",
                "--env",
                env,
                "--artifact",
                artifact,
            ],
            &[("GITHUB_TOKEN", stack.token.as_str())],
        )
    };
    let made = release_make("dev", &next[..10]);
    assert!(made.status.success(), "{}{}", stdout(&made), stderr(&made));
    assert!(
        stdout(&made).starts_with("released web to dev"),
        "{}",
        stdout(&made)
    );
    assert_eq!(stack.live("dev").as_deref(), Some(next.as_str()));
    assert!(
        stack
            .gitops_file("dev/web/deployment.yaml")
            .unwrap()
            .contains(&next),
        "the new image is on main"
    );
    let refused = release_make("nope", &next);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("known: dev"));
}

/// Beside a running server, the CLI commands that would run a second release loop over the
/// same data dir are refused with the data dir named and `--server` suggested; so is a second
/// server. Nothing is released by the refused commands.
#[test]
fn release_commands_and_a_second_server_beside_a_running_server_are_refused() {
    let stack = Stack::start(&web_policy(DIRECT));
    let sha = stack.green_main("v1");
    let data_dir = stack.setup.path().join("data").canonicalize().unwrap();
    let commits_before = stack.gitops_log("%H").len();
    let id = format!("web@{}", &sha[..12]);
    let auger = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_auger"))
            .current_dir(stack.setup.path())
            .env("GITHUB_TOKEN", &stack.token)
            .env("AUGER_WEBHOOK_SECRET", SECRET)
            .args(args)
            .output()
            .unwrap()
    };
    for args in [
        &[
            "release",
            "make",
            "--app",
            "web",
            "--env",
            "dev",
            "--artifact",
            &id,
        ][..],
        &["rollback", "--app", "web", "--env", "dev", "--to", &id],
    ] {
        let out = auger(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("the data dir {} is in use", data_dir.display())),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains("--server URL"), "{args:?}: {stderr}");
    }
    let out = auger(&["serve", "--config", "auger.toml"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("the data dir {} is in use", data_dir.display())),
        "{stderr}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).is_empty(),
        "it never listened"
    );

    assert_eq!(stack.live("dev"), None, "nothing was released");
    assert_eq!(stack.gitops_log("%H").len(), commits_before);
    // The server itself still works over its data dir.
    let token = API_TOKEN.split_once(':').unwrap().1;
    let body = serde_json::json!({ "app": "web", "env": "dev", "artifact": id });
    let (code, answer) = stack.server.post("/api/v1/releases", Some(token), &body);
    assert_eq!(code, 202, "{answer}");
    stack.settle();
    wait_for("dev released", || {
        stack.live("dev").as_deref() == Some(sha.as_str())
    });
}

/// A git push cannot be interrupted from inside auger (a blocking subprocess): SIGTERM while
/// one hangs still ends the process within 10 s. The release is replayed after the restart
/// and lands once.
#[test]
fn sigterm_during_a_hanging_git_push_exits_within_ten_seconds_and_the_release_lands_once() {
    let mut stack = Stack::start(&web_policy(DIRECT));
    let sha = stack.green_main("v1");
    let commits_before = stack.gitops_log("%H").len();
    // The gitops remote takes 20 s to refuse the push, and says when it has started.
    let started = stack.setup.path().join("push-started");
    let hook = stack.gitops_dir.join("hooks/pre-receive");
    std::fs::write(
        &hook,
        format!("#!/bin/sh\ntouch '{}'\nsleep 20\nexit 1\n", started.display()),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let token = API_TOKEN.split_once(':').unwrap().1;
    let id = format!("web@{}", &sha[..12]);
    let body = serde_json::json!({ "app": "web", "env": "dev", "artifact": id });
    let (code, answer) = stack.server.post("/api/v1/releases", Some(token), &body);
    assert_eq!(code, 202, "{answer}");
    wait_for("the push to start", || started.exists());

    let status = stack.server.terminate(Duration::from_secs(10));
    assert!(status.success(), "a stop on request exits 0: {status:?}");
    assert_eq!(
        stack.live("dev"),
        None,
        "the interrupted release recorded nothing"
    );

    std::fs::remove_file(&hook).unwrap();
    stack.server = stack
        .setup
        .start_with_env(&[("GITHUB_TOKEN", stack.token.as_str())]);
    stack
        .sim
        .set_webhook(Some(&format!("{}/webhooks/github", stack.server.url)), SECRET);
    wait_for("the replayed release", || {
        stack.live("dev").as_deref() == Some(sha.as_str())
    });
    stack.settle();
    assert_eq!(stack.gitops_log("%H").len(), commits_before + 1, "released once");
}
