//! Freezes (design §17) end to end: a policy window and `/freeze` stop automatic deploys (the
//! release waits, it is not dropped) and refuse `/deploy`; `--force` by a freeze overrider goes
//! through with an `Auger-Override` trailer; `/unfreeze` releases the newest desired artifact.

use chrono::{Datelike, Timelike, Utc};

use crate::support::{Stack, git, wait_for, web_policy};

const REPO: &str = "acme/web";

/// production deploys main by itself, writers may `/deploy`, only sre1 may force a freeze.
fn policy(freeze: &str) -> String {
    web_policy(&format!(
        r#"
[env.production]
auto = {{ branch = "main" }}
merge = "direct"
deployers = ["permission:write"]
freeze_overriders = ["user:sre1"]
{freeze}
"#
    ))
}

/// A weekly window (UTC) from an hour ago to two hours from now.
fn window_around_now() -> String {
    let now = Utc::now();
    let at = |t: chrono::DateTime<Utc>| format!("{} {:02}:{:02}", t.weekday(), t.hour(), t.minute());
    format!(
        "freeze = [{{ from = \"{}\", to = \"{}\", tz = \"UTC\" }}]",
        at(now - chrono::TimeDelta::hours(1)),
        at(now + chrono::TimeDelta::hours(2))
    )
}

#[test]
fn a_freeze_window_refuses_deploy_and_holds_an_auto_deploy() {
    let stack = Stack::start(&policy(&window_around_now()));
    let v1 = stack.green_main("v1");
    // The automatic release waits: nothing live, still desired.
    assert_eq!(stack.live("production"), None);
    assert_eq!(stack.server.metric("auger_releases_desired "), 1);

    let (pr, _) = stack.green_feature_pr("hotfix");
    let c = stack
        .sim
        .comment(REPO, pr, "alice", "/deploy production")
        .unwrap();
    stack.settle();
    let reply = stack.reply_to(REPO, pr, c).unwrap();
    assert!(reply.contains("🚫 production is frozen until"), "{reply}");
    assert!(reply.contains("freeze window"), "{reply}");
    assert!(reply.contains("`/deploy production --force`"), "{reply}");
    assert_eq!(stack.live("production"), None);
    // The API is refused too.
    let body =
        serde_json::json!({ "app": "web", "env": "production", "artifact": format!("web@{}", &v1[..12]) });
    let (code, answer) = stack
        .server
        .post("/api/v1/releases", Some(crate::support::server::BEARER), &body);
    assert_eq!(code, 409, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("production is frozen for web until"),
        "{answer}"
    );
    // Still waiting, not dropped.
    assert_eq!(stack.server.metric("auger_releases_desired "), 1);
    assert!(!git(&stack.gitops_dir, &["ls-tree", "-r", "--name-only", "main"]).contains("production/"));
    let (state, description) = stack.status(&v1, "auger/production").unwrap_or_default();
    assert_ne!(state, "success", "{description}");
}

#[test]
fn force_by_an_overrider_goes_through_a_freeze_with_the_trailer() {
    let stack = Stack::start(&policy(&window_around_now()));
    stack.sim.set_permission(REPO, "sre1", "write").unwrap();
    let v1 = stack.green_main("v1");
    let (pr, head) = stack.green_feature_pr("hotfix");

    // A deployer who is no overrider is refused, naming who may.
    let c = stack
        .sim
        .comment(REPO, pr, "alice", "/deploy production --force")
        .unwrap();
    stack.settle();
    let reply = stack.reply_to(REPO, pr, c).unwrap();
    assert!(
        reply.contains("@alice may not override the freeze of production (freeze_overriders: `user:sre1`)"),
        "{reply}"
    );
    assert_eq!(stack.live("production"), None);

    let c = stack
        .sim
        .comment(REPO, pr, "sre1", "/deploy production --force")
        .unwrap();
    stack.settle();
    wait_for("the forced release", || {
        stack.live("production").as_deref() == Some(head.as_str())
    });
    assert_eq!(stack.last_trailer("Auger-Override"), "freeze @sre1");
    assert_eq!(stack.last_trailer("Auger-Trigger"), "command @sre1");
    let reply = stack.reply_to(REPO, pr, c).unwrap();
    assert!(reply.contains("is released to **production**"), "{reply}");
    // One release is desired per (env, app): the forced one replaced main's waiting release.
    assert_eq!(stack.server.metric("auger_releases_desired "), 0);
    let (_, description) = stack.status(&v1, "auger/production").unwrap();
    assert!(description.contains("superseded"), "{description}");
}

#[test]
fn a_freeze_by_hand_holds_auto_deploys_and_unfreeze_releases_the_newest_desired() {
    let stack = Stack::start(&policy(""));
    let v1 = stack.green_main("v1");
    wait_for("v1 in production", || {
        stack.live("production").as_deref() == Some(v1.as_str())
    });
    let (pr, _) = stack.green_feature_pr("ops");

    let until = (Utc::now() + chrono::TimeDelta::days(1)).format("%Y-%m-%dT%H:%MZ");
    let c = stack
        .sim
        .comment(
            REPO,
            pr,
            "alice",
            &format!("/freeze production until {until} launch week"),
        )
        .unwrap();
    stack.settle();
    let reply = stack.reply_to(REPO, pr, c).unwrap();
    assert!(
        reply.contains("🧊 **web** in **production** is frozen until"),
        "{reply}"
    );
    let (_, dashboard) = stack.server.get("/");
    assert!(
        dashboard.contains("🧊 frozen: until ") && dashboard.contains(": launch week (@alice)"),
        "{dashboard}"
    );

    let v2 = stack.green_main("v2");
    let v3 = stack.green_main("v3");
    assert_eq!(stack.live("production").as_deref(), Some(v1.as_str()));
    assert_eq!(
        stack.server.metric("auger_releases_desired "),
        1,
        "v3 replaced v2"
    );
    let c = stack
        .sim
        .comment(REPO, pr, "alice", "/deploy production")
        .unwrap();
    stack.settle();
    let reply = stack.reply_to(REPO, pr, c).unwrap();
    assert!(
        reply.contains("production is frozen until") && reply.contains("by @alice: `launch week`"),
        "{reply}"
    );

    let c = stack
        .sim
        .comment(REPO, pr, "alice", "/unfreeze production")
        .unwrap();
    stack.settle();
    wait_for("v3 in production", || {
        stack.live("production").as_deref() == Some(v3.as_str())
    });
    let reply = stack.reply_to(REPO, pr, c).unwrap();
    assert!(
        reply.contains("▶️ **web** in **production** is unfrozen"),
        "{reply}"
    );
    let (state, description) = stack.status(&v2, "auger/production").unwrap();
    assert!(description.contains("superseded"), "{state}: {description}");
    // The ledger keeps the audit trail: the freeze and the unfreeze.
    let log = git(
        &stack.setup.ledger(),
        &["log", "--format=%s", "refs/auger/freezes/production/web"],
    );
    assert_eq!(log.lines().count(), 2, "{log}");
    assert!(
        log.lines()
            .next()
            .unwrap()
            .starts_with("unfreeze production/web by @alice"),
        "{log}"
    );
}
