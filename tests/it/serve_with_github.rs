//! End to end with the GitHub simulator: GitHub sends real signed webhooks over HTTP to a
//! running `auger serve`, exactly as it would in production.

use std::time::Duration;

use crate::support::sim::acme_web_for_auger;
use crate::support::{SECRET, Server, Setup, git, wait_for};
use github_sim::{Fault, GithubSim, SimConfig};

/// The artifact of `web` built from `sha`, if it is recorded.
fn artifact(server: &Server, sha: &str) -> Option<serde_json::Value> {
    server.artifact(&format!("web@{}", &sha[..12]))
}

#[test]
fn ci_green_on_main_then_a_tag_then_a_red_build_then_a_redelivery() {
    let setup = Setup::new(&[("web", "acme/web", "\"status:ci/build\"")], "");
    let server = setup.start();
    let sim = GithubSim::start(SimConfig {
        webhook_url: Some(format!("{}/webhooks/github", server.url)),
        webhook_secret: SECRET.into(),
        ..SimConfig::default()
    })
    .unwrap();
    sim.create_org("acme").unwrap();
    sim.create_user("alice").unwrap();
    sim.create_repo("acme/web").unwrap();
    let main = sim
        .push("acme/web", "main", &[("app.txt", "v1")], "feat: first", "alice")
        .unwrap();

    // CI turns main green → the artifact is in the ledger with branch main.
    sim.set_status("acme/web", &main, "success", "ci/build").unwrap();
    assert!(sim.wait_deliveries());
    wait_for("the artifact", || artifact(&server, &main).is_some());
    let a = artifact(&server, &main).unwrap();
    assert_eq!(a["branches"], serde_json::json!(["main"]));
    assert_eq!(a["repo"], "acme/web");
    assert_eq!(a["source"]["name"], "ci/build");

    // The same commit is tagged later → the artifact gains the tag.
    sim.create_tag("acme/web", "v1.0.0", &main, "alice").unwrap();
    assert!(sim.wait_deliveries());
    wait_for("the tag", || {
        artifact(&server, &main).is_some_and(|a| a["tags"] == serde_json::json!(["v1.0.0"]))
    });

    // A failed build records nothing; an unrelated context records nothing.
    let second = sim
        .push("acme/web", "main", &[("app.txt", "v2")], "feat: second", "alice")
        .unwrap();
    sim.set_status("acme/web", &second, "failure", "ci/build")
        .unwrap();
    sim.set_status("acme/web", &second, "success", "lint").unwrap();
    assert!(sim.wait_deliveries());
    server.wait_idle();
    assert!(artifact(&server, &second).is_none());

    // GitHub redelivers the green status: acknowledged, not recorded again.
    let status = sim
        .deliveries_of("status")
        .into_iter()
        .find(|d| d.payload["sha"] == main.as_str() && d.payload["state"] == "success")
        .unwrap();
    sim.redeliver(&status.id).unwrap();
    assert!(sim.wait_deliveries());
    let last = sim.deliveries().into_iter().last().unwrap();
    assert!(last.redelivery);
    assert_eq!(
        last.status,
        Some(200),
        "a duplicate delivery is acknowledged with 200"
    );
    server.wait_idle();
    let note = git(
        &setup.ledger(),
        &["notes", "--ref=auger/artifacts/web", "show", &main],
    );
    assert_eq!(
        note.lines().count(),
        2,
        "the build and the tag, nothing twice: {note}"
    );
    // Every delivery the simulator sent was accepted.
    assert!(
        sim.deliveries()
            .iter()
            .all(|d| d.status.is_some_and(|s| (200..300).contains(&s)))
    );
}

/// The app `web` of `acme/web` (built on a green `ci/build`), with auger talking to `sim` as
/// GitHub with the token in `GITHUB_TOKEN`.
fn web_with_github(sim: &GithubSim) -> Setup {
    Setup::new(
        &[("web", "acme/web", "\"status:ci/build\"")],
        &format!(
            "[github]\napi_url = \"{}\"\ntoken_env = \"GITHUB_TOKEN\"\n",
            sim.url()
        ),
    )
}

/// A commit status names no pull request: auger asks GitHub (through the forge, with a token)
/// which PRs carry the commit, so the artifact knows its PR.
#[test]
fn a_green_pr_head_learns_its_pull_request_from_the_github_api() {
    let (sim, token) = acme_web_for_auger();
    let setup = web_with_github(&sim);
    let server = setup.start_with_env(&[("GITHUB_TOKEN", &token)]);
    sim.set_webhook(Some(&format!("{}/webhooks/github", server.url)), SECRET);

    sim.push("acme/web", "main", &[("app.txt", "v1")], "init", "alice")
        .unwrap();
    let head = sim
        .push("acme/web", "feature", &[("app.txt", "v2")], "feat: x", "alice")
        .unwrap();
    let pr = sim
        .open_pr("acme/web", "feature", "main", "Feature", "alice")
        .unwrap();
    sim.set_status("acme/web", &head, "success", "ci/build").unwrap();
    assert!(sim.wait_deliveries());
    wait_for("the artifact with its PR", || {
        artifact(&server, &head).is_some_and(|a| a["pull_requests"] == serde_json::json!([pr]))
    });
    assert!(
        sim.requests()
            .iter()
            .any(|r| r.path.ends_with(&format!("/commits/{head}/pulls"))),
        "asked GitHub over HTTP"
    );
    assert!(server.metric("auger_github_api_calls_total{class=\"2xx\"}") >= 1);
}

/// SIGTERM while the worker waits on a GitHub that answers in 30 s: the call is dropped and
/// the process is gone within 10 s, with nothing of the delivery done. After a restart with
/// GitHub healthy the delivery is replayed and its effect happens once.
#[test]
fn sigterm_while_github_is_slow_exits_within_ten_seconds_and_the_delivery_is_replayed_once() {
    let (sim, token) = acme_web_for_auger();
    let setup = web_with_github(&sim);
    let mut server = setup.start_with_env(&[("GITHUB_TOKEN", &token)]);
    sim.set_webhook(
        Some(&format!("{}/webhooks/github", server.url)),
        crate::support::SECRET,
    );
    sim.push("acme/web", "main", &[("app.txt", "v1")], "init", "alice")
        .unwrap();
    let head = sim
        .push("acme/web", "feature", &[("app.txt", "v2")], "feat: x", "alice")
        .unwrap();
    let pr = sim
        .open_pr("acme/web", "feature", "main", "Feature", "alice")
        .unwrap();
    assert!(sim.wait_deliveries());
    server.wait_idle();

    // The green status makes the worker ask GitHub for the commit's pull requests: slowly.
    let pulls_path = format!("/repos/acme/web/commits/{head}/pulls");
    sim.inject_fault("GET", &pulls_path, 100, Fault::Delay(Duration::from_secs(30)));
    sim.set_status("acme/web", &head, "success", "ci/build").unwrap();
    assert!(sim.wait_deliveries());
    wait_for("the worker's call to GitHub", || {
        sim.requests().iter().any(|r| r.path == pulls_path)
    });

    let status = server.terminate(Duration::from_secs(10));
    assert!(status.success(), "a stop on request exits 0: {status:?}");
    let notes = || git(&setup.ledger(), &["notes", "--ref=auger/artifacts/web", "list"]);
    assert_eq!(notes(), "", "the interrupted delivery recorded nothing");

    sim.clear_faults();
    let server = setup.start_with_env(&[("GITHUB_TOKEN", &token)]);
    wait_for("the replayed delivery's artifact with its PR", || {
        artifact(&server, &head).is_some_and(|a| a["pull_requests"] == serde_json::json!([pr]))
    });
    server.wait_idle();
    let note = git(
        &setup.ledger(),
        &["notes", "--ref=auger/artifacts/web", "show", &head],
    );
    assert_eq!(note.lines().count(), 1, "recorded once: {note}");
}
