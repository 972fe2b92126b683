//! The notifier against the GitHub simulator over real HTTP and a tiny local Slack receiver:
//! statuses and deployments through a release's life, Slack bodies and their escaping, and
//! that a Slack or GitHub outage neither fails nor delays a release.

use std::sync::Arc;
use std::time::{Duration, Instant};

use auger::config::{HookKind, NotifyRoute};
use auger::domain::{AppName, CommitSha, EnvName, RepoName};
use auger::forge::Forge;
use auger::notify::{FailureKind, Notifier, ReleaseEvent};
use github_sim::{Fault, GithubSim};

use crate::support::sim::{acme_web_with_a_commit, quick_retry, token_forge};
use crate::support::slack::{SlackReceiver, closed_port_url};

const REPO: &str = "acme/web";

fn forge(sim: &GithubSim) -> Arc<dyn Forge> {
    Arc::new(token_forge(sim, "releaser", quick_retry(3)))
}

fn event(sha: &str, env: &str) -> ReleaseEvent {
    let sha = CommitSha::new(sha).unwrap();
    let app = AppName::new("web").unwrap();
    ReleaseEvent {
        artifact: format!("web@{}", sha.short(12)).parse().unwrap(),
        app,
        env: EnvName::new(env).unwrap(),
        repo: RepoName::new(REPO).unwrap(),
        sha,
        commit_message: Some("Add login page".into()),
        trigger: "command @alice".into(),
        gitops_commit_url: None,
        gitops_sha: None,
        environment_url: None,
        transient: false,
        deployment_id: None,
    }
}

fn states(statuses: &[github_sim::CommitStatus], context: &str) -> Vec<String> {
    statuses
        .iter()
        .filter(|s| s.context == context)
        .map(|s| s.state.clone())
        .collect()
}

fn deployment_states(d: &github_sim::Deployment) -> Vec<String> {
    d.statuses.iter().map(|s| s.state.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_goes_pending_then_success_and_supersedes_the_previous_one() {
    let (sim, sha) = acme_web_with_a_commit();
    let notifier = Notifier::new(Some(forge(&sim)), None);

    let mut ev = event(&sha, "staging");
    ev.deployment_id = notifier.release_pending(&ev).await;
    assert!(ev.deployment_id.is_some());
    ev.environment_url = Some("https://staging.example.test".into());
    assert!(notifier.release_succeeded(&ev).await, "GitHub took every status");

    let statuses = sim.statuses(REPO, &sha).unwrap();
    assert_eq!(states(&statuses, "auger/staging"), ["pending", "success"]);
    let success = statuses.iter().rfind(|s| s.context == "auger/staging").unwrap();
    assert!(
        success.description.as_deref().unwrap().contains("web@"),
        "{success:?}"
    );

    let deployments = sim.deployments(REPO).unwrap();
    assert_eq!(deployments.len(), 1);
    let first = &deployments[0];
    assert_eq!(first.environment, "staging");
    assert_eq!(first.sha, sha);
    assert!(!first.transient_environment && !first.production_environment);
    assert_eq!(deployment_states(first), ["queued", "success"]);
    assert_eq!(first.statuses[1].environment_url, "https://staging.example.test");

    // A second release of the same environment, straight to success.
    let sha2 = sim
        .push(REPO, "main", &[("app.txt", "v2\n")], "Second", "alice")
        .unwrap();
    let ev2 = event(&sha2, "staging");
    assert!(notifier.release_succeeded(&ev2).await);
    let id2 = notifier.existing_deployment(&ev2).await.unwrap();
    let deployments = sim.deployments(REPO).unwrap();
    assert_eq!(deployments.len(), 2);
    let first = deployments.iter().find(|d| d.id == first.id).unwrap();
    assert_eq!(deployment_states(first), ["queued", "success", "inactive"]);
    let second = deployments.iter().find(|d| d.id == id2.0).unwrap();
    assert_eq!(deployment_states(second), ["success"]);

    let stats = notifier.stats();
    assert_eq!(stats.status.failed + stats.deployment.failed, 0, "{stats:?}");
    assert_eq!(stats.status.sent, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_waiting_for_approval_that_a_newer_one_supersedes_ends_its_status_and_deployment() {
    let (sim, sha) = acme_web_with_a_commit();
    let notifier = Notifier::new(Some(forge(&sim)), None);
    let mut ev = event(&sha, "qa");
    ev.deployment_id = notifier.release_pending(&ev).await;
    let newer = "web@0123456789ab".parse().unwrap();
    notifier.release_superseded(&ev, &newer).await;

    let statuses = sim.statuses(REPO, &sha).unwrap();
    assert_eq!(states(&statuses, "auger/qa"), ["pending", "error"]);
    let last = statuses.iter().rfind(|s| s.context == "auger/qa").unwrap();
    assert_eq!(
        last.description.as_deref(),
        Some("superseded by web@0123456789ab")
    );
    let deployments = sim.deployments(REPO).unwrap();
    assert_eq!(deployment_states(&deployments[0]), ["queued", "inactive"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_deployments_are_marked_and_failures_reported() {
    let (sim, sha) = acme_web_with_a_commit();
    let notifier = Notifier::new(Some(forge(&sim)), None);
    let mut ev = event(&sha, "production");
    ev.deployment_id = notifier.release_pending(&ev).await;
    notifier.release_in_progress(&ev).await;
    notifier
        .release_failed(&ev, FailureKind::Failed, "rollout timed out")
        .await;

    let statuses = sim.statuses(REPO, &sha).unwrap();
    assert_eq!(
        states(&statuses, "auger/production"),
        ["pending", "pending", "failure"]
    );
    let d = &sim.deployments(REPO).unwrap()[0];
    assert!(d.production_environment);
    assert_eq!(deployment_states(d), ["queued", "in_progress", "failure"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_is_transient_in_its_own_environment_and_inactive_once_removed() {
    let (sim, sha) = acme_web_with_a_commit();
    let slack = SlackReceiver::start(200);
    let notifier = Notifier::new(Some(forge(&sim)), Some(slack.url.clone()));
    let preview = |n: u64| {
        let mut ev = event(&sha, "preview");
        ev.app = AppName::new(format!("web-pr-{n}")).unwrap();
        ev.transient = true;
        ev.environment_url = Some(format!("https://pr-{n}.preview.example.test"));
        ev
    };
    let mut ev = preview(7);
    assert!(notifier.release_succeeded(&ev).await);
    // Another pull request's preview goes live: the first one stays live.
    assert!(notifier.release_succeeded(&preview(8)).await);
    ev.deployment_id = notifier.existing_deployment(&ev).await;
    notifier.preview_removed(&ev).await;

    let deployments = sim.deployments(REPO).unwrap();
    let of = |env: &str| deployments.iter().find(|d| d.environment == env).unwrap();
    assert!(of("preview/web-pr-7").transient_environment);
    assert_eq!(deployment_states(of("preview/web-pr-7")), ["success", "inactive"]);
    assert_eq!(deployment_states(of("preview/web-pr-8")), ["success"]);

    assert!(notifier.slack_idle(Duration::from_secs(5)).await);
    let texts: Vec<String> = slack
        .bodies()
        .iter()
        .map(|b| b["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts.len(), 3, "{texts:?}");
    assert!(
        texts
            .iter()
            .any(|t| t.contains("web-pr-7") && t.contains("is up")),
        "{texts:?}"
    );
    assert!(texts.iter().any(|t| t.contains("removed")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_gets_escaped_json_naming_app_env_and_artifact() {
    let slack = SlackReceiver::start(200);
    // No forge: only Slack is notified.
    let notifier = Notifier::new(None, Some(slack.url.clone()));
    let mut ev = event(&"a".repeat(40), "staging");
    ev.commit_message = Some("<script>alert(1)</script> <!channel> & friends".into());
    notifier.release_succeeded(&ev).await;
    notifier.rollback(&ev, None).await;
    notifier
        .release_failed(&ev, FailureKind::Error, "policy <denied>")
        .await;
    assert!(notifier.slack_idle(Duration::from_secs(5)).await);

    let bodies = slack.bodies();
    assert_eq!(bodies.len(), 3);
    let release = bodies
        .iter()
        .find(|b| b["text"].as_str().unwrap().contains("released"))
        .unwrap();
    let text = release["text"].as_str().unwrap();
    assert!(text.contains("web") && text.contains("staging") && text.contains("web@aaaaaaaaaaaa"));
    let raw = release.to_string();
    assert!(!raw.contains("<script>") && !raw.contains("<!channel>"), "{raw}");
    assert!(raw.contains("&lt;script&gt;") && raw.contains("&lt;!channel&gt; &amp; friends"));
    let failure = bodies
        .iter()
        .find(|b| b["text"].as_str().unwrap().contains("failed"))
        .unwrap();
    assert!(failure.to_string().contains("policy &lt;denied&gt;"));
    assert_eq!(notifier.stats().slack.sent, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_down_neither_fails_nor_delays_and_statuses_still_happen() {
    let (sim, sha) = acme_web_with_a_commit();
    let notifier = Notifier::new(Some(forge(&sim)), Some(closed_port_url()));
    let ev = event(&sha, "staging");
    let started = Instant::now();
    notifier.release_succeeded(&ev).await;
    notifier.release_failed(&ev, FailureKind::Failed, "x").await;
    // Under the 2 s Slack timeout: the caller never waits for Slack, even on a loaded machine.
    assert!(
        started.elapsed() < Duration::from_millis(1900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        states(&sim.statuses(REPO, &sha).unwrap(), "auger/staging"),
        ["success", "failure"]
    );

    assert!(notifier.slack_idle(Duration::from_secs(10)).await);
    let stats = notifier.stats();
    assert_eq!((stats.slack.sent, stats.slack.failed), (0, 2), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_answering_500_is_retried_once_then_counted() {
    let slack = SlackReceiver::start(500);
    let notifier = Notifier::new(None, Some(slack.url.clone()));
    let started = Instant::now();
    notifier
        .release_succeeded(&event(&"b".repeat(40), "staging"))
        .await;
    assert!(started.elapsed() < Duration::from_millis(1900));
    assert!(notifier.slack_idle(Duration::from_secs(10)).await);
    assert_eq!(slack.bodies().len(), 2, "one try and one retry");
    assert_eq!(notifier.stats().slack.failed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_api_down_still_sets_statuses() {
    let (sim, sha) = acme_web_with_a_commit();
    sim.inject_fault("POST", "/repos/*/*/deployments", 5, Fault::status(500));
    let notifier = Notifier::new(Some(forge(&sim)), None);
    let mut ev = event(&sha, "staging");
    ev.deployment_id = notifier.release_pending(&ev).await;
    assert!(ev.deployment_id.is_none());
    notifier
        .release_failed(&ev, FailureKind::Error, "could not write the gitops repo")
        .await;

    assert_eq!(
        states(&sim.statuses(REPO, &sha).unwrap(), "auger/staging"),
        ["pending", "error"]
    );
    assert!(sim.deployments(REPO).unwrap().is_empty());
    let stats = notifier.stats();
    assert!(stats.deployment.failed >= 1, "{stats:?}");
    assert_eq!(stats.status.sent, 2);
}

fn route(envs: &[&str], apps: &[&str], kind: HookKind) -> NotifyRoute {
    NotifyRoute {
        envs: (!envs.is_empty()).then(|| envs.iter().map(|e| EnvName::new(*e).unwrap()).collect()),
        apps: (!apps.is_empty()).then(|| apps.iter().map(|a| AppName::new(*a).unwrap()).collect()),
        kind,
        var: "UNUSED".into(),
    }
}

/// Route 1 takes production/web, route 2 staging, route 3 (a generic webhook) api everywhere:
/// each event reaches exactly the routes that name its env and app, and the webhook gets the
/// documented JSON body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_event_goes_to_the_routes_of_its_env_and_app() {
    let (prod_web, staging, hook) = (
        SlackReceiver::start(200),
        SlackReceiver::start(200),
        SlackReceiver::start(200),
    );
    let notifier = Notifier::new(None, None).with_routes([
        (
            route(&["production"], &["web"], HookKind::Slack),
            prod_web.url.clone(),
        ),
        (route(&["staging"], &[], HookKind::Slack), staging.url.clone()),
        (route(&[], &["api"], HookKind::Webhook), hook.url.clone()),
    ]);
    let web_prod = event(&"a".repeat(40), "production");
    notifier.release_succeeded(&web_prod).await;
    assert!(notifier.slack_idle(Duration::from_secs(5)).await);
    assert_eq!(prod_web.bodies().len(), 1, "production/web: route 1");
    assert!(
        staging.bodies().is_empty() && hook.bodies().is_empty(),
        "and no other"
    );

    notifier
        .release_succeeded(&event(&"b".repeat(40), "staging"))
        .await;
    assert!(notifier.slack_idle(Duration::from_secs(5)).await);
    assert_eq!(staging.bodies().len(), 1, "staging: route 2");
    assert_eq!(prod_web.bodies().len(), 1);
    assert!(hook.bodies().is_empty());

    let mut api = event(&"c".repeat(40), "production");
    api.app = AppName::new("api").unwrap();
    api.artifact = "api@cccccccccccc".parse().unwrap();
    api.gitops_commit_url = Some("https://github.example/acme/gitops/commit/1".into());
    notifier
        .release_failed(&api, FailureKind::Failed, "Deployment api: 0/1 <ready>")
        .await;
    assert!(notifier.slack_idle(Duration::from_secs(5)).await);
    assert_eq!((prod_web.bodies().len(), staging.bodies().len()), (1, 1));
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1);
    let body = &bodies[0];
    assert_eq!(body["event"], "failed");
    assert_eq!(body["app"], "api");
    assert_eq!(body["env"], "production");
    assert_eq!(body["artifact"], "api@cccccccccccc");
    assert_eq!(body["sha"], "c".repeat(40));
    assert_eq!(body["repo"], REPO);
    assert_eq!(body["state"], "failure");
    assert_eq!(body["trigger"], "command @alice");
    assert_eq!(
        body["reason"], "Deployment api: 0/1 <ready>",
        "plain JSON: no Slack escaping"
    );
    assert_eq!(
        body["message"],
        "api@cccccccccccc failed in production: Deployment api: 0/1 <ready> (command @alice)"
    );
    assert_eq!(
        body["links"]["gitops_commit"],
        "https://github.example/acme/gitops/commit/1"
    );
    assert!(body["links"].get("environment").is_none(), "{body}");
    let stats = notifier.stats();
    assert_eq!((stats.slack.sent, stats.webhook.sent), (2, 1), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_down_neither_fails_nor_delays_and_is_retried_once() {
    let (sim, sha) = acme_web_with_a_commit();
    let failing = SlackReceiver::start(503);
    let notifier = Notifier::new(Some(forge(&sim)), None).with_routes([
        (route(&[], &[], HookKind::Webhook), failing.url.clone()),
        (route(&[], &[], HookKind::Webhook), closed_port_url()),
    ]);
    let ev = event(&sha, "staging");
    let started = Instant::now();
    assert!(notifier.release_succeeded(&ev).await, "GitHub took the statuses");
    assert!(
        started.elapsed() < Duration::from_millis(1900),
        "{:?}",
        started.elapsed()
    );
    assert!(notifier.slack_idle(Duration::from_secs(10)).await);
    assert_eq!(failing.bodies().len(), 2, "one try and one retry");
    assert_eq!(notifier.stats().webhook.failed, 2);
    assert_eq!(
        states(&sim.statuses(REPO, &sha).unwrap(), "auger/staging"),
        ["success"]
    );
}

/// A real server with the old catch-all Slack webhook and three routes: main goes green, web
/// goes to staging and production; each receiver gets the messages of its envs.
#[test]
fn a_server_routes_release_messages_by_env_with_the_old_webhook_taking_everything() {
    use crate::support::stack::{Stack, wait_for, web_policy};
    let (all, prod, staging, hook) = (
        SlackReceiver::start(200),
        SlackReceiver::start(200),
        SlackReceiver::start(200),
        SlackReceiver::start(200),
    );
    let policy = web_policy(
        "[env.staging]\nauto = { branch = \"main\" }\nmerge = \"direct\"\n\
         [env.production]\nauto = { branch = \"main\" }\nmerge = \"direct\"\n",
    );
    let config = "[notify]\nslack_webhook_env = \"SLACK_ALL\"\n\
         [[notify.route]]\nenvs = [\"production\"]\napps = [\"web\"]\nslack_webhook_env = \"SLACK_PROD\"\n\
         [[notify.route]]\nenvs = [\"staging\"]\nslack_webhook_env = \"SLACK_STAGING\"\n\
         [[notify.route]]\napps = [\"web\"]\nwebhook_url_env = \"OPS_HOOK\"\n\
         [[notify.route]]\napps = [\"api\"]\nwebhook_url_env = \"UNSET_HOOK_VAR\"\n";
    let stack = Stack::start_with(
        &policy,
        config,
        &[
            ("SLACK_ALL", all.url.as_str()),
            ("SLACK_PROD", prod.url.as_str()),
            ("SLACK_STAGING", staging.url.as_str()),
            ("OPS_HOOK", hook.url.as_str()),
        ],
    );
    let v1 = stack.green_main("v1");
    wait_for("v1 in both envs", || {
        stack.live("staging").as_deref() == Some(v1.as_str())
            && stack.live("production").as_deref() == Some(v1.as_str())
    });
    wait_for("the messages", || {
        all.bodies().len() == 2 && hook.bodies().len() == 2
    });
    let texts = |r: &SlackReceiver| -> Vec<String> {
        r.bodies()
            .iter()
            .map(|b| b["text"].as_str().unwrap().to_owned())
            .collect()
    };
    let prod_texts = texts(&prod);
    assert_eq!(prod_texts.len(), 1, "{prod_texts:?}");
    assert!(prod_texts[0].contains("production") && !prod_texts[0].contains("staging"));
    let staging_texts = texts(&staging);
    assert_eq!(staging_texts.len(), 1, "{staging_texts:?}");
    assert!(staging_texts[0].contains("staging"));
    let mut envs: Vec<String> = hook
        .bodies()
        .iter()
        .map(|b| {
            assert_eq!(b["event"], "released", "{b}");
            assert_eq!(b["app"], "web");
            assert_eq!(b["sha"], v1.as_str());
            assert_eq!(b["state"], "success");
            assert!(b["message"].as_str().unwrap().contains("released to"), "{b}");
            assert!(b["links"].is_object());
            b["env"].as_str().unwrap().to_owned()
        })
        .collect();
    envs.sort();
    assert_eq!(envs, ["production", "staging"]);
}
