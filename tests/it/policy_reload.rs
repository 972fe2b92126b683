//! Policy reloads (design §17) end to end: a policy pushed to the config repository takes effect
//! without a restart and is acknowledged with the `auger/policies` status; a broken one is
//! refused with a failure status naming the file and key, and the old set stays in force.
//! SIGHUP reloads the policy folder the same way.

use std::process::Command;

use crate::support::{GITOPS, Stack, wait_for, web_policy};

const CONFIG_REPO: &str = "acme/auger-config";

/// staging takes every green main commit.
fn staging_only() -> String {
    web_policy("[env.staging]\nauto = { branch = \"main\" }\nmerge = \"direct\"\n")
}

/// staging and qa both take every green main commit.
fn staging_and_qa() -> String {
    web_policy(
        "[env.staging]\nauto = { branch = \"main\" }\nmerge = \"direct\"\n\
         [env.qa]\nauto = { branch = \"main\" }\nmerge = \"direct\"\n",
    )
}

/// staging_and_qa with a merge mode that does not exist.
fn broken() -> String {
    staging_and_qa().replace(
        "[env.qa]\nauto = { branch = \"main\" }\nmerge = \"direct\"",
        "[env.qa]\nmerge = \"sideways\"",
    )
}

/// The `auger/policies` status on a config commit: (state, description).
fn policies_status(stack: &Stack, sha: &str) -> Option<(String, String)> {
    let statuses = stack.sim.statuses(CONFIG_REPO, sha).unwrap();
    statuses
        .iter()
        .rev()
        .find(|s| s.context == "auger/policies")
        .map(|s| (s.state.clone(), s.description.clone().unwrap_or_default()))
}

/// Commits `policy` as `policies/web.toml` on `branch` of the config repository; its sha.
fn push_policy(stack: &Stack, branch: &str, policy: &str, message: &str) -> String {
    stack
        .sim
        .push(
            CONFIG_REPO,
            branch,
            &[("policies/web.toml", policy)],
            message,
            "alice",
        )
        .unwrap()
}

fn hangup(stack: &Stack) {
    let pid = stack.server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
}

/// A stack whose policies come from `acme/auger-config` (holding `policy` as
/// `policies/web.toml`) instead of the folder.
fn stack_on_config_repo(policy: &str) -> (Stack, String) {
    stack_on_config_repo_tuned(policy, "")
}

/// [`stack_on_config_repo`] with `server_keys` in auger.toml's `[server]`.
fn stack_on_config_repo_tuned(policy: &str, server_keys: &str) -> (Stack, String) {
    let mut stack = Stack::start_tuned(&staging_only(), server_keys, "", &[]);
    let repo = stack.sim.create_repo(CONFIG_REPO).unwrap();
    stack.sim.set_permission(CONFIG_REPO, "auger", "write").unwrap();
    let first = push_policy(&stack, "main", policy, "web: staging");
    // The folder is left behind on purpose: what is in force must come from the repository.
    std::fs::remove_file(stack.setup.path().join("policies/web.toml")).unwrap();
    let config = stack.setup.path().join("auger.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[policies]\nrepo = \"{CONFIG_REPO}\"\nurl = \"{}\"\nbranch = \"main\"\npath = \"policies\"\n",
        repo.clone_url
    ));
    std::fs::write(&config, text).unwrap();
    stack.restart(&[]);
    (stack, first)
}

#[test]
fn a_policy_pushed_to_the_config_repo_takes_effect_without_a_restart() {
    let (stack, _) = stack_on_config_repo(&staging_only());
    let v1 = stack.green_main("v1");
    assert_eq!(stack.live("staging").as_deref(), Some(v1.as_str()));
    assert_eq!(stack.live("qa"), None);

    let change = push_policy(&stack, "main", &staging_and_qa(), "web: add qa");
    stack.settle();
    let (state, description) = policies_status(&stack, &change).expect("a status on the config commit");
    assert_eq!(state, "success", "{description}");
    assert_eq!(description, "in force: 1 policy");

    let v2 = stack.green_main("v2");
    assert_eq!(stack.live("qa").as_deref(), Some(v2.as_str()));
    assert_eq!(stack.live("staging").as_deref(), Some(v2.as_str()));
}

#[test]
fn a_broken_policy_pushed_to_the_config_repo_is_refused_and_the_old_set_stays() {
    let (stack, _) = stack_on_config_repo(&staging_and_qa());
    let bad = push_policy(&stack, "main", &broken(), "web: oops");
    stack.settle();
    let (state, description) = policies_status(&stack, &bad).expect("a status on the config commit");
    assert_eq!(state, "failure", "{description}");
    assert!(
        description.starts_with("refused, the previous policies stay: 1 error"),
        "{description}"
    );
    assert!(
        description.contains(&format!("{CONFIG_REPO}@{}:policies/web.toml", &bad[..7])),
        "names the file in the repository: {description}"
    );
    assert!(description.contains("merge"), "names the key: {description}");
    assert!(description.chars().count() <= 140, "{description}");
    assert_eq!(
        stack
            .server
            .metric("auger_policy_reloads_total{trigger=\"push\",outcome=\"invalid\"}"),
        1
    );

    // qa still releases: the set before the broken push is in force.
    let v1 = stack.green_main("v1");
    assert_eq!(stack.live("qa").as_deref(), Some(v1.as_str()));

    // A push to another branch of the config repository changes nothing.
    let other = push_policy(&stack, "draft", &staging_only(), "draft");
    stack.settle();
    assert_eq!(policies_status(&stack, &other), None);
}

#[test]
fn sighup_reloads_the_policy_folder_and_keeps_the_old_set_when_it_is_broken() {
    let stack = Stack::start(&staging_only());
    let file = stack.setup.path().join("policies/web.toml");
    std::fs::write(&file, staging_and_qa()).unwrap();
    hangup(&stack);
    wait_for("the reload", || {
        stack
            .server
            .metric("auger_policy_reloads_total{trigger=\"sighup\",outcome=\"loaded\"}")
            == 1
    });
    let v1 = stack.green_main("v1");
    assert_eq!(stack.live("qa").as_deref(), Some(v1.as_str()));

    std::fs::write(&file, broken()).unwrap();
    hangup(&stack);
    wait_for("the refused reload", || {
        stack
            .server
            .metric("auger_policy_reloads_total{trigger=\"sighup\",outcome=\"invalid\"}")
            == 1
    });
    let v2 = stack.green_main("v2");
    assert_eq!(stack.live("qa").as_deref(), Some(v2.as_str()));
}

#[test]
fn a_reload_moves_an_env_to_another_gitops_repository_and_refuses_a_branch_without_a_cache() {
    const OTHER: &str = "acme/gitops-other";
    let stack = Stack::start_with_gitops_repos(&staging_only(), &[OTHER], "", &[]);
    let file = "staging/web/deployment.yaml";
    let v1 = stack.green_main("v1");
    assert!(stack.file_in(GITOPS, file).unwrap().contains(&v1));

    let policy = stack.setup.path().join("policies/web.toml");
    let moved = |gitops: &str| {
        staging_only().replace(
            "merge = \"direct\"\n",
            &format!("merge = \"direct\"\ngitops = {gitops}\n"),
        )
    };
    std::fs::write(&policy, moved(&format!("{{ repo = \"{OTHER}\" }}"))).unwrap();
    hangup(&stack);
    let loaded = "auger_policy_reloads_total{trigger=\"sighup\",outcome=\"loaded\"}";
    wait_for("the reload", || stack.server.metric(loaded) == 1);
    let v2 = stack.green_main("v2");
    assert!(stack.file_in(OTHER, file).unwrap().contains(&v2));
    assert!(
        stack.file_in(GITOPS, file).unwrap().contains(&v1),
        "the old repository is left as it was"
    );

    // A branch auger opened no cache for cannot be written to without a restart: refused whole.
    std::fs::write(&policy, moved("{ branch = \"brand-new\" }")).unwrap();
    hangup(&stack);
    let invalid = "auger_policy_reloads_total{trigger=\"sighup\",outcome=\"invalid\"}";
    wait_for("the refused reload", || stack.server.metric(invalid) == 1);
    let v3 = stack.green_main("v3");
    assert!(stack.file_in(OTHER, file).unwrap().contains(&v3));
}

#[test]
fn a_config_push_whose_webhook_never_came_takes_effect_at_the_next_poll() {
    let (stack, _) = stack_on_config_repo_tuned(&staging_only(), "reconcile_interval = \"1s\"");
    // The push reaches the repository but not auger (a lost delivery, or another replica's).
    stack.sim.set_webhook(None, crate::support::webhooks::SECRET);
    push_policy(&stack, "main", &staging_and_qa(), "web: add qa");
    stack.sim.set_webhook(
        Some(&format!("{}/webhooks/github", stack.server.url)),
        crate::support::webhooks::SECRET,
    );
    let polled = "auger_policy_reloads_total{trigger=\"poll\",outcome=\"loaded\"}";
    wait_for("the poll that loads the new tip", || {
        stack.server.metric(polled) == 1
    });
    let v1 = stack.green_main("v1");
    assert_eq!(stack.live("qa").as_deref(), Some(v1.as_str()));
    // Later polls find the same tip: nothing is replaced again.
    wait_for("an unchanged poll", || {
        stack
            .server
            .metric("auger_policy_reloads_total{trigger=\"poll\",outcome=\"unchanged\"}")
            >= 1
    });
    assert_eq!(stack.server.metric(polled), 1);
}
