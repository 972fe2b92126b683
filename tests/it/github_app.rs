//! auger as a GitHub App (design §14): deliveries GitHub failed to make are redelivered by the
//! catch-up, installation events make auger look its installations up again (a reinstall with
//! a new id needs no restart), installations are read a page at a time past enterprise
//! accounts, and with an installation token the bot login comes from the configuration.

use std::time::SystemTime;

use auger::config::Config;
use auger::forge::{Forge, ForgeError, GithubAuthSecret, GithubForge, RetryPolicy};
use github_sim::SimConfig;

use crate::support::sim::{acme_frontend, quick_retry, rsa_key_pair};
use crate::support::stack::{Stack, WEB, wait_for, web_policy};

/// Staging takes every green build of main as a commit on the gitops branch.
const DIRECT: &str = "[env.staging]\nauto = { branch = \"main\" }\nmerge = \"direct\"\n";

impl Stack {
    /// When the catch-up last wrote down its progress (`None`: never).
    fn catch_up_saved(&self) -> Option<SystemTime> {
        let file = self.setup.path().join("data").join(auger::catchup::STATE_FILE);
        std::fs::metadata(file).and_then(|m| m.modified()).ok()
    }

    /// Requests for `method` whose path starts with `prefix`.
    fn calls(&self, method: &str, prefix: &str) -> usize {
        self.sim
            .requests()
            .iter()
            .filter(|r| r.method == method && r.path.starts_with(prefix))
            .count()
    }

    /// Release commits of the gitops history for the build `sha` of web.
    fn releases_of(&self, sha: &str) -> usize {
        self.gitops_log("%(trailers:key=Auger-Source,valueonly)")
            .iter()
            .filter(|source| source.contains(sha))
            .count()
    }
}

#[test]
fn a_delivery_that_failed_while_auger_was_down_is_redelivered_on_start_and_acted_on_once() {
    let mut stack = Stack::start_app(&web_policy(DIRECT), "");
    let v1 = stack.green_main("v1\n");
    wait_for("v1 in staging", || {
        stack.live("staging").as_deref() == Some(v1.as_str())
    });
    wait_for("the catch-up's first pass", || stack.catch_up_saved().is_some());

    // auger is down while CI turns v2 green: GitHub's attempts find nobody.
    stack.server.kill();
    let v2 = stack.push_green_main("v2\n");
    assert!(stack.sim.wait_deliveries());
    let missed = stack
        .sim
        .deliveries_of("status")
        .into_iter()
        .rfind(|d| d.payload["sha"] == v2.as_str())
        .expect("the status of v2");
    assert!(missed.delivered && missed.status.is_none(), "{missed:?}");

    // On start, the catch-up asks GitHub to send it again; auger acts on it once.
    stack.restart(&[]);
    wait_for("the status redelivered and taken", || {
        stack
            .sim
            .deliveries()
            .iter()
            .any(|d| d.id == missed.id && d.redelivery && d.succeeded())
    });
    wait_for("v2 in staging", || {
        stack.live("staging").as_deref() == Some(v2.as_str())
    });
    stack.settle();
    let attempts: Vec<_> = stack
        .sim
        .deliveries()
        .into_iter()
        .filter(|d| d.id == missed.id)
        .collect();
    assert_eq!(
        attempts.len(),
        2,
        "the original and one redelivery: {attempts:#?}"
    );
    let (code, text) = stack.server.get("/api/v1/artifacts?app=web");
    assert_eq!(code, 200, "{text}");
    let artifacts: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(
        artifacts.iter().filter(|a| a["sha"] == v2.as_str()).count(),
        1,
        "{text}"
    );
    assert_eq!(stack.releases_of(&v2), 1, "one release of v2");
    assert_eq!(stack.status(&v2, "auger/staging").unwrap().0, "success");

    // Once taken, nothing is redelivered again, however often auger starts.
    let redeliveries = stack.calls("POST", "/app/hook/deliveries/");
    let saved = stack.catch_up_saved();
    stack.restart(&[]);
    wait_for("the catch-up's pass after the restart", || {
        stack.catch_up_saved() != saved
    });
    stack.settle();
    assert_eq!(stack.calls("POST", "/app/hook/deliveries/"), redeliveries);
    assert_eq!(stack.releases_of(&v2), 1);
}

#[test]
fn after_a_reinstall_with_a_new_installation_id_the_next_release_works_without_a_restart() {
    let stack = Stack::start_app(&web_policy(DIRECT), "");
    let v1 = stack.green_main("v1\n");
    wait_for("v1 in staging", || {
        stack.live("staging").as_deref() == Some(v1.as_str())
    });
    let old = stack.sim.installation_of(WEB).unwrap();

    // The App is removed and installed again: a new installation, a new id.
    stack.sim.uninstall_app(old, "alice").unwrap();
    let new = stack.sim.install_app("acme", "alice").unwrap();
    assert_ne!(new, old);
    stack.settle();
    stack.sim.clear_requests();

    let v2 = stack.green_main("v2\n");
    wait_for("v2 in staging", || {
        stack.live("staging").as_deref() == Some(v2.as_str())
    });
    stack.settle();
    assert_eq!(stack.status(&v2, "auger/staging").unwrap().0, "success");
    let requests = stack.sim.requests();
    // The installation events came first: auger asked where it is installed before acting,
    // and never used the deleted installation's token.
    assert_eq!(stack.calls("GET", "/repos/acme/web/installation"), 1);
    assert_eq!(
        stack.calls("POST", &format!("/app/installations/{new}/access_tokens")),
        1,
        "one token of the new installation"
    );
    let refused: Vec<String> = requests
        .iter()
        .filter(|r| r.status == 401)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(refused.is_empty(), "{refused:?}");
    assert!(
        requests
            .iter()
            .filter(|r| r.path.starts_with("/repos/acme/web/statuses"))
            .all(|r| r.login.as_deref() == Some("auger[bot]"))
    );
}

#[test]
fn a_reinstall_whose_events_were_lost_heals_at_the_first_refused_token() {
    let stack = Stack::start_app(&web_policy(DIRECT), "reconcile_interval = \"1s\"\n");
    let v1 = stack.green_main("v1\n");
    wait_for("v1 in staging", || {
        stack.live("staging").as_deref() == Some(v1.as_str())
    });
    let old = stack.sim.installation_of(WEB).unwrap();

    // Reinstalled while the App's webhook pointed nowhere: auger never hears of it.
    let url = format!("{}/webhooks/github", stack.server.url);
    stack.sim.set_webhook(None, crate::support::SECRET);
    stack.sim.uninstall_app(old, "alice").unwrap();
    let new = stack.sim.install_app("acme", "alice").unwrap();
    stack.sim.set_webhook(Some(&url), crate::support::SECRET);

    // The first call with the deleted installation's token is refused; auger looks again and
    // the release goes through on a later pass.
    let v2 = stack.green_main("v2\n");
    wait_for("v2 in staging", || {
        stack.live("staging").as_deref() == Some(v2.as_str())
    });
    wait_for("the success status of v2", || {
        stack
            .status(&v2, "auger/staging")
            .is_some_and(|(state, _)| state == "success")
    });
    assert!(stack.calls("POST", &format!("/app/installations/{new}/access_tokens")) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installations_are_read_a_page_at_a_time_past_an_enterprise_without_a_login() {
    let (private_pem, public_pem) = rsa_key_pair();
    let sim = acme_frontend(SimConfig {
        app_id: 4242,
        app_public_key_pem: Some(public_pem),
        ..SimConfig::default()
    });
    // An enterprise first, then a hundred organizations, then acme: acme's installation is on
    // the second page of a hundred.
    for id in sim.installation_ids() {
        sim.uninstall_app(id, "carol").unwrap();
    }
    let enterprise = sim.install_app_on_enterprise("megacorp", "carol").unwrap();
    for n in 0..100 {
        let org = format!("org{n:03}");
        sim.create_org(&org).unwrap();
        sim.install_app(&org, "carol").unwrap();
    }
    let acme = sim.install_app("acme", "carol").unwrap();
    let forge = GithubForge::new(
        sim.url(),
        GithubAuthSecret::App {
            app_id: 4242,
            private_key_pem: private_pem,
        },
        quick_retry(4),
    )
    .unwrap();

    assert!(forge.is_team_member("acme", "sre", "carol").await.unwrap());
    let listings: Vec<String> = sim
        .requests()
        .iter()
        .filter(|r| r.path == "/app/installations")
        .map(|r| r.query.clone())
        .collect();
    assert_eq!(listings.len(), 2, "two pages: {listings:?}");
    let minted = |id: u64| {
        sim.requests()
            .iter()
            .filter(|r| r.path == format!("/app/installations/{id}/access_tokens"))
            .count()
    };
    assert_eq!(minted(acme), 1);

    // A call that names no account takes an installation on one, not the enterprise's.
    assert!(forge.user_id("alice").await.unwrap() > 0);
    assert_eq!(minted(enterprise), 0);
    let err = forge.is_team_member("nobody", "sre", "carol").await.unwrap_err();
    assert!(matches!(err, ForgeError::NotFound(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_installation_token_the_bot_login_comes_from_the_configuration_never_get_user() {
    let sim = acme_frontend(SimConfig::default());
    let token = sim.create_installation_token();

    // Without `bot_login`: a clear error, and no `GET /user` (GitHub answers it 403).
    let plain = GithubForge::new(
        sim.url(),
        GithubAuthSecret::Token(token.clone()),
        RetryPolicy::none(),
    )
    .unwrap();
    let err = plain.authenticated_login().await.unwrap_err();
    assert!(
        matches!(&err, ForgeError::Config(m) if m.contains("github.bot_login")),
        "{err:?}"
    );

    // With it, from `auger.toml`.
    let dir = tempfile::tempdir().unwrap();
    let config = Config::parse(
        &dir.path().join("auger.toml"),
        &format!(
            "[github]\napi_url = \"{}\"\ntoken_env = \"GITHUB_TOKEN\"\nbot_login = \"auger[bot]\"\n",
            sim.url()
        ),
    )
    .unwrap();
    let forge = GithubForge::from_config(&config.github, Some(token), RetryPolicy::none()).unwrap();
    assert_eq!(forge.authenticated_login().await.unwrap(), "auger[bot]");
    assert_eq!(
        sim.requests().iter().filter(|r| r.path == "/user").count(),
        0,
        "GET /user is never asked"
    );
    // The token works for everything else.
    let repo = auger::domain::RepoName::new("acme/frontend").unwrap();
    let got = forge.permission(&repo, "alice").await.unwrap();
    assert_eq!(got, auger::forge::PermissionLevel::Write);
    // A personal token still asks GitHub who it is.
    let personal = GithubForge::new(
        sim.url(),
        GithubAuthSecret::Token(sim.create_token("bob").unwrap()),
        RetryPolicy::none(),
    )
    .unwrap();
    assert_eq!(personal.authenticated_login().await.unwrap(), "bob");
}
