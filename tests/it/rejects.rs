//! Rejects (design §17) end to end: `/reject`, `POST /api/v1/artifacts/{id}/reject` and
//! `auger artifact reject` veto an artifact; it never deploys automatically, `/deploy` says
//! why, and `/deploy <env> <sha> --force` by the env's deployers releases it.

use crate::support::cli::{auger, auger_with_env, stderr, stdout};
use crate::support::server::BEARER;
use crate::support::{Stack, wait_for, web_policy};

const REPO: &str = "acme/web";

/// production deploys tags by itself; writers may `/deploy` there.
const POLICY: &str = r#"
[env.production]
auto = { tag = "v*" }
merge = "direct"
deployers = ["permission:write"]
"#;

#[test]
fn a_rejected_artifact_is_skipped_by_auto_deploy_and_needs_force() {
    let stack = Stack::start(&web_policy(POLICY));
    stack.sim.set_permission(REPO, "mallory", "read").unwrap();
    let v1 = stack.green_main("v1");
    stack.sim.create_tag(REPO, "v1.0.0", &v1, "alice").unwrap();
    stack.settle();
    wait_for("v1 in production", || {
        stack.live("production").as_deref() == Some(v1.as_str())
    });
    let v2 = stack.green_main("v2");
    let (pr, _) = stack.green_feature_pr("ops");

    // Only deployers reject.
    let c = stack
        .sim
        .comment(REPO, pr, "mallory", &format!("/reject {}", &v2[..7]))
        .unwrap();
    stack.settle();
    let reply = stack.reply_to(REPO, pr, c).unwrap();
    assert!(
        reply.contains("@mallory may not reject artifacts of web"),
        "{reply}"
    );

    let c = stack
        .sim
        .comment(REPO, pr, "alice", &format!("/reject {} bad migration", &v2[..7]))
        .unwrap();
    stack.settle();
    let reply = stack.reply_to(REPO, pr, c).unwrap();
    assert!(
        reply.contains(&format!("⛔ **web@{}** is rejected", &v2[..12])),
        "{reply}"
    );

    // Tagging it would release it; rejected, it is skipped and not kept waiting.
    stack.sim.create_tag(REPO, "v2.0.0", &v2, "alice").unwrap();
    stack.settle();
    assert_eq!(stack.live("production").as_deref(), Some(v1.as_str()));
    assert_eq!(stack.server.metric("auger_releases_desired "), 0);

    // `/deploy` says why; `--force` by a deployer goes through, and the commit says so.
    let c = stack
        .sim
        .comment(REPO, pr, "alice", &format!("/deploy production {}", &v2[..12]))
        .unwrap();
    stack.settle();
    let reply = stack.reply_to(REPO, pr, c).unwrap();
    assert!(
        reply.contains("is rejected (by @alice: `bad migration`)"),
        "{reply}"
    );
    assert!(
        reply.contains(&format!("`/deploy production {} --force`", &v2[..12])),
        "{reply}"
    );
    assert_eq!(stack.live("production").as_deref(), Some(v1.as_str()));

    stack
        .sim
        .comment(
            REPO,
            pr,
            "alice",
            &format!("/deploy production {} --force", &v2[..12]),
        )
        .unwrap();
    stack.settle();
    wait_for("v2 in production", || {
        stack.live("production").as_deref() == Some(v2.as_str())
    });
    assert_eq!(stack.last_trailer("Auger-Override"), "reject @alice");
}

#[test]
fn the_api_and_the_cli_reject_and_the_ledger_keeps_it() {
    let stack = Stack::start(&web_policy(POLICY));
    let v1 = stack.green_main("v1");
    let id = format!("web@{}", &v1[..12]);
    let path = format!("/api/v1/artifacts/{id}/reject");
    let body = serde_json::json!({ "reason": "CVE-2026-1234" });

    let (code, answer) = stack.server.post(&path, Some(BEARER), &body);
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["outcome"], "rejected");
    assert_eq!(answer["artifact"]["rejected"]["by"], "api ci");
    let (code, answer) = stack.server.post(&path, Some(BEARER), &serde_json::json!({}));
    assert_eq!((code, &answer["outcome"]), (200, &serde_json::json!("unchanged")));
    let shown = stack.server.artifact(&id).unwrap();
    assert_eq!(shown["rejected"]["reason"], "CVE-2026-1234");
    let (code, _) = stack
        .server
        .post("/api/v1/artifacts/web@0000000/reject", Some(BEARER), &body);
    assert_eq!(code, 404);
    let (code, _) = stack.server.post(&path, None, &body);
    assert_eq!(code, 401);

    // Nor does the API: going through a veto is a person's `/deploy … --force`.
    let release = serde_json::json!({ "app": "web", "env": "production", "artifact": id });
    let (code, answer) = stack.server.post("/api/v1/releases", Some(BEARER), &release);
    assert_eq!(code, 409, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("is rejected (by api ci: CVE-2026-1234)"),
        "{answer}"
    );

    // A tag does not release it.
    stack.sim.create_tag(REPO, "v1.0.0", &v1, "alice").unwrap();
    stack.settle();
    assert_eq!(stack.live("production"), None);

    // The CLI, through the running server and on the local ledger.
    let v2 = stack.green_main("v2");
    let dir = stack.setup.path();
    let remote = auger_with_env(
        dir,
        &[
            "artifact",
            "reject",
            &format!("web@{}", &v2[..12]),
            "--reason",
            "flaky",
            "--server",
            &stack.server.url,
        ],
        &[("AUGER_TOKEN", BEARER)],
    );
    assert!(remote.status.success(), "{}", stderr(&remote));
    assert_eq!(stdout(&remote).trim(), format!("rejected: web@{}", &v2[..12]));
    let v3 = stack.green_main("v3");
    let local = auger(dir, &["artifact", "reject", &v3[..9], "--reason", "slow"]);
    assert!(local.status.success(), "{}", stderr(&local));
    assert_eq!(stdout(&local).trim(), format!("rejected: web@{}", &v3[..12]));
    let shown = stack.server.artifact(&format!("web@{}", &v3[..12])).unwrap();
    assert!(
        shown["rejected"]["by"].as_str().unwrap().starts_with("cli:"),
        "{shown}"
    );
    let again = auger(dir, &["artifact", "reject", &v3[..9]]);
    assert!(
        stdout(&again).starts_with("already rejected"),
        "{}",
        stdout(&again)
    );
}
