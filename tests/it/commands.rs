//! PR comment commands, previews and rollbacks end to end: people comment on pull requests in
//! the GitHub simulator, which sends the webhooks to a running `auger serve`.

use crate::support::snapshot::Redactions;
use crate::support::{Stack, git, wait_for, web_policy};

const POLICY: &str = r#"
[env.staging]
merge = "direct"
deployers = ["permission:write"]

[env.production]
auto = { branch = "main" }
merge = "direct"
deployers = ["team:acme/sre"]

[preview]
env = "preview"
url = "https://{{ app }}.preview.acme.dev"
"#;

const REPO: &str = "acme/web";

/// `/deploy staging` by a writer → 👀, the reply edited to "released", staging holds the PR
/// head's artifact. A read-only user is refused with the reason. Commands in code blocks or HTML
/// comments, edited comments, auger's own comments → ignored. Two commands in one comment → an
/// error, nothing runs. Meanwhile the PR has a preview, removed when the PR closes; a fork's PR
/// gets neither a preview nor a deploy.
#[test]
fn deploy_from_a_pr_with_refusals_ignored_comments_and_the_preview_lifecycle() {
    let stack = Stack::start(&web_policy(POLICY));
    stack.sim.set_permission(REPO, "mallory", "read").unwrap();
    stack.green_main("base");
    let (pr, head) = stack.green_feature_pr("feature");
    // What auger answers to the comment `c`, with the numbers that change between runs named.
    let reply = |c: u64| {
        let text = stack.reply_to(REPO, pr, c).expect("a reply");
        // Gitops commits carry the time they were made.
        stack
            .gitops_log("%H")
            .iter()
            .fold(Redactions::new(), |r, commit| {
                r.value(&commit[..12], "<gitops-commit:12>")
            })
            .commit(&head, "head")
            .value(format!("web-pr-{pr}"), "web-pr-<pr>")
            .value(format!("{REPO}#{pr}"), "acme/web#<pr>")
            .answering(c)
            .apply(&text)
    };
    let preview_comment = || {
        stack
            .replies(REPO, pr)
            .into_iter()
            .find(|b| b.contains("<!-- auger:preview"))
            .map(|b| {
                Redactions::new()
                    .commit(&head, "head")
                    .value(format!("web-pr-{pr}"), "web-pr-<pr>")
                    .apply(&b)
            })
    };

    // The preview: folder, comment, transient deployment with the URL.
    wait_for("the preview folder", || {
        stack
            .gitops_file(&format!("preview/web-pr-{pr}/release.json"))
            .is_some()
    });
    assert!(
        stack
            .gitops_file(&format!("preview/web-pr-{pr}/deployment.yaml"))
            .unwrap()
            .contains(&head)
    );
    wait_for("the preview comment", || preview_comment().is_some());
    insta::assert_snapshot!("preview_comment", preview_comment().unwrap());
    let preview = stack
        .sim
        .deployments(REPO)
        .unwrap()
        .into_iter()
        .find(|d| d.environment == format!("preview/web-pr-{pr}") && d.sha == head)
        .expect("a preview deployment");
    assert!(preview.transient_environment);
    let last = preview.statuses.last().unwrap();
    assert_eq!(last.state, "success");
    assert_eq!(
        last.environment_url,
        format!("https://web-pr-{pr}.preview.acme.dev")
    );

    // A writer deploys the PR to staging.
    let c = stack
        .sim
        .comment(REPO, pr, "alice", "Ship it.\n/deploy staging\n")
        .unwrap();
    stack.settle();
    wait_for("the deploy reply", || {
        stack
            .reply_to(REPO, pr, c)
            .is_some_and(|b| b.contains("released to **staging**"))
    });
    insta::assert_snapshot!("deploy_released", reply(c));
    assert_eq!(stack.live("staging").as_deref(), Some(head.as_str()));
    let reactions = stack
        .sim
        .comments(REPO, pr)
        .unwrap()
        .into_iter()
        .find(|x| x.id == c)
        .unwrap()
        .reactions;
    assert!(reactions.iter().any(|r| r.content == "eyes" && r.user == "auger"));
    assert_eq!(stack.last_trailer("Auger-Trigger"), "command @alice");

    // A push that overtakes a `/deploy` comment: the new head is not deployed.
    let url = format!("{}/webhooks/github", stack.server.url);
    stack.sim.set_webhook(None, crate::support::SECRET);
    let c2 = stack.sim.comment(REPO, pr, "alice", "/deploy staging").unwrap();
    let moved = stack
        .sim
        .push(REPO, "feature", &[("app.txt", "moved")], "feat: moved", "alice")
        .unwrap();
    stack.sim.set_status(REPO, &moved, "success", "ci/build").unwrap();
    let held_back: Vec<String> = stack
        .sim
        .deliveries()
        .into_iter()
        .filter(|d| !d.delivered)
        .map(|d| d.id)
        .collect();
    stack.sim.set_webhook(Some(&url), crate::support::SECRET);
    for id in &held_back {
        stack.sim.redeliver(id).unwrap();
    }
    stack.settle();
    insta::assert_snapshot!(
        "deploy_refused_head_moved",
        Redactions::new()
            .commit(&head, "head")
            .commit(&moved, "moved")
            .answering(c2)
            .apply(&stack.reply_to(REPO, pr, c2).expect("a refusal"))
    );
    assert_eq!(stack.live("staging").as_deref(), Some(head.as_str()));

    // Refusals say why: an unknown env (with the known ones), a commit with no artifact, a
    // held env.
    let c = stack.sim.comment(REPO, pr, "alice", "/deploy prod").unwrap();
    stack.settle();
    insta::assert_snapshot!("deploy_refused_unknown_env", reply(c));
    let c = stack
        .sim
        .comment(REPO, pr, "alice", "/deploy staging 0000000")
        .unwrap();
    stack.settle();
    insta::assert_snapshot!("deploy_refused_no_artifact", reply(c));
    let c = stack.sim.comment(REPO, pr, "alice", "/hold staging").unwrap();
    stack.settle();
    insta::assert_snapshot!("hold_set", reply(c));
    let c = stack.sim.comment(REPO, pr, "alice", "/deploy staging").unwrap();
    stack.settle();
    insta::assert_snapshot!("deploy_refused_on_hold", reply(c));
    let c = stack.sim.comment(REPO, pr, "alice", "/resume staging").unwrap();
    stack.settle();
    insta::assert_snapshot!("resumed", reply(c));

    // A read-only user is refused, and told why.
    let c = stack
        .sim
        .comment(REPO, pr, "mallory", "/deploy production")
        .unwrap();
    stack.settle();
    insta::assert_snapshot!("deploy_refused_not_a_deployer", reply(c));
    assert_eq!(
        stack.live("production").as_deref().map(|s| s == head),
        Some(false)
    );

    // Not commands: code, HTML comments, quotes; an edit that adds a command; auger itself.
    let replies_before = stack.replies(REPO, pr).len();
    for body in [
        "```\n/deploy staging\n```",
        "<!-- /deploy staging -->",
        "> /deploy staging",
        "Run `/deploy staging` when ready",
    ] {
        stack.sim.comment(REPO, pr, "alice", body).unwrap();
    }
    let edited = stack.sim.comment(REPO, pr, "alice", "looks good").unwrap();
    stack
        .sim
        .edit_comment(REPO, edited, "looks good\n/deploy staging", "alice")
        .unwrap();
    stack.sim.comment(REPO, pr, "auger", "/deploy staging").unwrap();
    stack.settle();
    assert_eq!(
        stack.replies(REPO, pr).len(),
        replies_before,
        "none of these is a command: {:#?}",
        stack.replies(REPO, pr)
    );

    // Two side-effecting commands: an error, nothing runs.
    let staging_commits = stack.gitops_log("%H").len();
    let c = stack
        .sim
        .comment(REPO, pr, "alice", "/deploy staging\n/hold production")
        .unwrap();
    stack.settle();
    insta::assert_snapshot!("two_changing_commands", reply(c));
    assert_eq!(stack.gitops_log("%H").len(), staging_commits);

    // Closing the PR removes the preview: folder gone, deployment inactive, comment updated.
    stack.sim.close_pr(REPO, pr, "alice").unwrap();
    stack.settle();
    wait_for("the preview removal", || {
        stack
            .gitops_file(&format!("preview/web-pr-{pr}/release.json"))
            .is_none()
    });
    assert_eq!(stack.last_trailer("Auger-Action"), "remove");
    let preview = stack
        .sim
        .deployments(REPO)
        .unwrap()
        .into_iter()
        .find(|d| d.environment == format!("preview/web-pr-{pr}") && d.sha == head)
        .unwrap();
    assert_eq!(preview.statuses.last().unwrap().state, "inactive");
    wait_for("the preview comment update", || {
        preview_comment().is_some_and(|b| b.contains("was removed"))
    });
    insta::assert_snapshot!("preview_comment_removed", preview_comment().unwrap());

    // A fork's pull request: no preview, no deploy.
    stack.sim.fork_repo(REPO, "mallory").unwrap();
    let fork_head = stack
        .sim
        .push("mallory/web", "evil", &[("app.txt", "evil")], "evil", "mallory")
        .unwrap();
    let fork_pr = stack
        .sim
        .open_pr_with(
            REPO,
            &github_sim::NewPull {
                head: "mallory:evil".into(),
                base: "main".into(),
                title: "evil".into(),
                body: String::new(),
                draft: false,
            },
            "mallory",
        )
        .unwrap();
    stack.settle();
    stack
        .sim
        .set_status(REPO, &fork_head, "success", "ci/build")
        .unwrap();
    stack.settle();
    let c = stack
        .sim
        .comment(REPO, fork_pr, "alice", "/deploy staging")
        .unwrap();
    stack.settle();
    insta::assert_snapshot!(
        "deploy_refused_from_a_fork",
        Redactions::new()
            .commit(&fork_head, "fork-head")
            .answering(c)
            .apply(&stack.reply_to(REPO, fork_pr, c).expect("a refusal"))
    );
    assert!(
        stack
            .gitops_file(&format!("preview/web-pr-{fork_pr}/release.json"))
            .is_none()
    );
    assert_ne!(stack.live("staging").as_deref(), Some(fork_head.as_str()));
}

/// v1 → v2 released to production automatically → `/rollback production` → production's folder
/// is v1's tree again, with `Auger-Rollback-To`, and production is on hold: the next build of
/// main does not deploy; `/resume production` lets the one after through. The release history
/// API agrees with `git log`. All of it while Slack is unreachable and GitHub's deployments API
/// answers 500: notifications never block a release.
#[test]
fn rollback_holds_production_until_resume_while_slack_and_deployments_are_down() {
    let stack = Stack::start_with(
        &web_policy(POLICY),
        "[notify]\nslack_webhook_env = \"SLACK_URL\"\n",
        &[("SLACK_URL", "http://127.0.0.1:9/unreachable")],
    );
    stack.sim.inject_fault(
        "POST",
        &format!("/repos/{REPO}/deployments"),
        100,
        github_sim::Fault::status(500),
    );
    let v1 = stack.green_main("v1");
    wait_for("v1 in production", || {
        stack.live("production").as_deref() == Some(v1.as_str())
    });
    let v1_tree = git(
        &stack.gitops_dir,
        &["rev-parse", "main:production/web/deployment.yaml"],
    );
    let v2 = stack.green_main("v2");
    wait_for("v2 in production", || {
        stack.live("production").as_deref() == Some(v2.as_str())
    });

    let (pr, _) = stack.green_feature_pr("ops");
    let reply = |c: u64| {
        let text = stack.reply_to(REPO, pr, c).expect("a reply");
        Redactions::new()
            .commit(&v1, "v1")
            .commit(&v2, "v2")
            .answering(c)
            .apply(&text)
    };
    // mallory has no rights; alice is on the SRE team.
    let c = stack
        .sim
        .comment(REPO, pr, "alice", "/rollback production")
        .unwrap();
    stack.settle();
    wait_for("the rollback", || {
        stack.live("production").as_deref() == Some(v1.as_str())
    });
    assert_eq!(
        git(
            &stack.gitops_dir,
            &["rev-parse", "main:production/web/deployment.yaml"]
        ),
        v1_tree,
        "production holds v1's files again"
    );
    let trailers = git(
        &stack.gitops_dir,
        &["log", "-1", "--format=%(trailers:only,unfold)", "main"],
    );
    assert!(
        trailers.contains(&format!("Auger-Rollback-To: web@{}", &v1[..12])),
        "{trailers}"
    );
    assert!(trailers.contains("Auger-Trigger: rollback @alice"), "{trailers}");
    insta::assert_snapshot!("rolled_back", reply(c));

    // On hold: a new build of main does not reach production.
    let v3 = stack.green_main("v3");
    assert_eq!(stack.live("production").as_deref(), Some(v1.as_str()));
    let c = stack.sim.comment(REPO, pr, "alice", "/status").unwrap();
    stack.settle();
    insta::assert_snapshot!("status_on_hold_after_rollback", reply(c));
    let (_, envs) = stack.server.get("/api/v1/environments");
    let envs: serde_json::Value = serde_json::from_str(&envs).unwrap();
    let prod = envs
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["env"] == "production")
        .unwrap();
    assert_eq!(prod["on_hold"], true);

    // /resume: the next build goes through.
    let c = stack
        .sim
        .comment(REPO, pr, "alice", "/resume production")
        .unwrap();
    stack.settle();
    insta::assert_snapshot!("resumed_production", reply(c));
    assert_eq!(
        stack.live("production").as_deref(),
        Some(v1.as_str()),
        "resume alone deploys nothing"
    );
    let v4 = stack.green_main("v4");
    wait_for("v4 in production", || {
        stack.live("production").as_deref() == Some(v4.as_str())
    });
    assert_ne!(v3, v4);

    // The history API agrees with git log, newest first, the rollback marked.
    let (code, text) = stack.server.get("/api/v1/releases?env=production&app=web");
    assert_eq!(code, 200, "{text}");
    let api: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let api_commits: Vec<&str> = api.iter().map(|r| r["commit"].as_str().unwrap()).collect();
    let log = git(
        &stack.gitops_dir,
        &["log", "--format=%H", "main", "--", "production/web"],
    );
    let git_commits: Vec<&str> = log.lines().collect();
    assert_eq!(api_commits, git_commits);
    assert_eq!(api.iter().filter(|r| r["rollback"] == true).count(), 1);

    // The deployments API failed every time and Slack was down, yet every release completed;
    // the failures are counted.
    assert!(stack.sim.deployments(REPO).unwrap().is_empty());
    assert!(
        stack
            .server
            .metric("auger_notifications_total{channel=\"deployment\",result=\"failed\"}")
            >= 4
    );
    assert!(
        stack
            .server
            .metric("auger_notifications_total{channel=\"status\",result=\"sent\"}")
            >= 4
    );
    assert_eq!(stack.status(&v4, "auger/production").unwrap().0, "success");
}
