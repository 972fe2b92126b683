//! The forge against the GitHub simulator over real HTTP: every trait method, App auth end to
//! end, and the retry rules (what is repeated, what is not, how long it waits).

use std::time::{Duration, Instant};

use auger::domain::{CommitSha, RepoName};
use auger::forge::{
    CommitState, DeploymentState, DeploymentStatusUpdate, Forge, ForgeError, GithubAuthSecret, GithubForge,
    MergeMethod, MergeOutcome, NewDeployment, PermissionLevel, PullState, Reaction, RetryPolicy, ReviewState,
    StatusUpdate,
};
use github_sim::{Fault, GithubSim, SimConfig};

use crate::support::data::branch;
use crate::support::sim::{acme_frontend, quick_retry, rsa_key_pair, token_forge};

const REPO: &str = "acme/frontend";

/// Four attempts: the retry tests count them.
fn quick_policy() -> RetryPolicy {
    quick_retry(4)
}

/// The forge as the bot user `releaser`.
fn releaser_forge(sim: &GithubSim, policy: RetryPolicy) -> GithubForge {
    token_forge(sim, "releaser", policy)
}

fn repo() -> RepoName {
    RepoName::new(REPO).unwrap()
}

fn sha(s: &str) -> CommitSha {
    CommitSha::new(s).unwrap()
}

/// A deployment of `commit` to `environment` with no description or payload.
fn deployment(commit: &str, environment: &str, production: bool) -> NewDeployment {
    NewDeployment {
        sha: sha(commit),
        environment: environment.into(),
        description: None,
        transient: false,
        production,
        payload: serde_json::json!({}),
    }
}

/// alice's pull request from `feature` (one commit) into main: its number.
fn open_feature_pr(sim: &GithubSim) -> u64 {
    sim.push(REPO, "feature", &[("a.txt", "a")], "feature", "alice")
        .unwrap();
    sim.open_pr(REPO, "feature", "main", "Feature", "alice").unwrap()
}

/// Requests the simulator saw for `method path`.
fn count(sim: &GithubSim, method: &str, path: &str) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r.method == method && r.path == path)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_pull_request_is_opened_found_updated_reviewed_and_merged() {
    let sim = acme_frontend(SimConfig::default());
    let forge = releaser_forge(&sim, quick_policy());
    let head = sim
        .push(
            REPO,
            "auger/staging/web",
            &[("staging/web/app.yaml", "v1\n")],
            "Release v1",
            "releaser",
        )
        .unwrap();

    assert_eq!(
        forge
            .find_open_pull(&repo(), &branch("auger/staging/web"))
            .await
            .unwrap(),
        None
    );
    let pr = forge
        .create_pull(
            &repo(),
            &branch("auger/staging/web"),
            &branch("main"),
            "Release web",
            "v1",
        )
        .await
        .unwrap();
    assert_eq!(pr.head.sha.as_str(), head);
    assert_eq!(pr.head.branch.as_str(), "auger/staging/web");
    assert_eq!(pr.base_branch.as_str(), "main");
    assert_eq!(pr.author.login, "releaser");
    assert_eq!(pr.state, PullState::Open);
    assert!(!pr.merged && pr.merge_commit_sha.is_none());
    assert!(!pr.is_from_fork(&repo()));

    let found = forge
        .find_open_pull(&repo(), &branch("auger/staging/web"))
        .await
        .unwrap()
        .expect("the open PR is found by its head branch");
    assert_eq!(found.number, pr.number);
    assert_eq!(
        forge.find_open_pull(&repo(), &branch("other")).await.unwrap(),
        None
    );

    let updated = forge
        .update_pull(&repo(), pr.number, "Release web v2", "supersedes v1")
        .await
        .unwrap();
    assert_eq!(
        (updated.title.as_str(), updated.body.as_str()),
        ("Release web v2", "supersedes v1")
    );
    let got = forge.get_pull(&repo(), pr.number).await.unwrap();
    assert_eq!(got.title, "Release web v2");
    assert_eq!(sim.pull(REPO, pr.number).unwrap().title, "Release web v2");

    sim.review(REPO, pr.number, "carol", "APPROVED").unwrap();
    sim.review(REPO, pr.number, "bob", "CHANGES_REQUESTED").unwrap();
    let reviews = forge.list_reviews(&repo(), pr.number).await.unwrap();
    let summary: Vec<(&str, ReviewState)> =
        reviews.iter().map(|r| (r.user.login.as_str(), r.state)).collect();
    assert_eq!(
        summary,
        [
            ("carol", ReviewState::Approved),
            ("bob", ReviewState::ChangesRequested)
        ]
    );
    assert_eq!(
        reviews[0].commit_id.as_ref().map(CommitSha::as_str),
        Some(head.as_str())
    );

    // The head moved since approval: GitHub refuses with 409, the forge says so.
    let main_before = sim.branch_sha(REPO, "main").unwrap();
    let stale = forge
        .merge_pull(
            &repo(),
            pr.number,
            &sha(&main_before),
            MergeMethod::Merge,
            "Release web",
            "",
        )
        .await
        .unwrap();
    assert_eq!(stale, MergeOutcome::HeadMoved);
    assert_eq!(
        sim.branch_sha(REPO, "main").unwrap(),
        main_before,
        "nothing merged"
    );

    let merged = forge
        .merge_pull(
            &repo(),
            pr.number,
            &sha(&head),
            MergeMethod::Merge,
            "Release web",
            "",
        )
        .await
        .unwrap();
    let MergeOutcome::Merged { sha: merge_sha } = merged else {
        panic!("expected a merge, got {merged:?}")
    };
    assert_eq!(
        sim.branch_sha(REPO, "main").unwrap(),
        merge_sha.as_str(),
        "main is the merge commit"
    );
    let parents = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(sim.repo_path(REPO).unwrap())
        .args(["rev-list", "--parents", "-n1", merge_sha.as_str()])
        .output()
        .unwrap();
    let parents = String::from_utf8(parents.stdout).unwrap();
    assert!(
        parents.contains(&head) && parents.contains(&main_before),
        "{parents}"
    );
    let after = forge.get_pull(&repo(), pr.number).await.unwrap();
    assert!(after.merged);
    assert_eq!(after.state, PullState::Closed);
    assert_eq!(after.merge_commit_sha, Some(merge_sha.clone()));

    // A merged PR is no longer mergeable: 405 with GitHub's reason.
    let again = forge
        .merge_pull(&repo(), pr.number, &sha(&head), MergeMethod::Merge, "again", "")
        .await
        .unwrap();
    assert!(
        matches!(again, MergeOutcome::NotMergeable(ref why) if why.contains("not mergeable")),
        "{again:?}"
    );

    assert_eq!(
        forge.pulls_for_commit(&repo(), &sha(&head)).await.unwrap(),
        [pr.number]
    );
    assert!(
        forge
            .pulls_for_commit(&repo(), &sha(&main_before))
            .await
            .unwrap()
            .is_empty()
    );

    // close_pull on a second PR.
    sim.push(
        REPO,
        "auger/prod/web",
        &[("prod/web/app.yaml", "v1\n")],
        "Release",
        "releaser",
    )
    .unwrap();
    let second = forge
        .create_pull(&repo(), &branch("auger/prod/web"), &branch("main"), "Prod", "")
        .await
        .unwrap();
    forge.close_pull(&repo(), second.number).await.unwrap();
    assert_eq!(
        forge.get_pull(&repo(), second.number).await.unwrap().state,
        PullState::Closed
    );
    assert!(
        forge
            .find_open_pull(&repo(), &branch("auger/prod/web"))
            .await
            .unwrap()
            .is_none()
    );

    let missing = forge.get_pull(&repo(), 999).await.unwrap_err();
    assert!(matches!(missing, ForgeError::NotFound(_)), "{missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_pull_request_is_recognised_as_one() {
    let sim = acme_frontend(SimConfig::default());
    sim.fork_repo(REPO, "dave").unwrap();
    sim.push("dave/frontend", "evil", &[("x", "x")], "x", "dave")
        .unwrap();
    let number = sim
        .open_pr_with(
            REPO,
            &github_sim::NewPull {
                head: "dave:evil".into(),
                base: "main".into(),
                title: "From a fork".into(),
                ..Default::default()
            },
            "dave",
        )
        .unwrap();
    let forge = releaser_forge(&sim, quick_policy());
    let pr = forge.get_pull(&repo(), number).await.unwrap();
    assert_eq!(pr.head.repo.as_ref().map(RepoName::as_str), Some("dave/frontend"));
    assert!(pr.is_from_fork(&repo()));
    // Looking up auger's own branch name never returns the fork's PR.
    assert!(
        forge
            .find_open_pull(&repo(), &branch("evil"))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_come_from_github_on_every_call() {
    let sim = acme_frontend(SimConfig::default());
    sim.create_private_repo("acme/secrets").unwrap();
    let forge = releaser_forge(&sim, quick_policy());

    let level = |login: &'static str| {
        let forge = &forge;
        async move { forge.permission(&repo(), login).await.unwrap() }
    };
    assert_eq!(level("alice").await, PermissionLevel::Write);
    assert_eq!(level("bob").await, PermissionLevel::Read);
    assert_eq!(level("carol").await, PermissionLevel::Admin);
    // A stranger can read a public repository, nothing more.
    assert_eq!(level("dave").await, PermissionLevel::Read);
    assert!(level("dave").await < PermissionLevel::Write);
    assert_eq!(level("nobody-at-all").await, PermissionLevel::None);
    sim.set_permission("acme/secrets", "releaser", "admin").unwrap();
    let secrets = RepoName::new("acme/secrets").unwrap();
    assert_eq!(
        forge.permission(&secrets, "dave").await.unwrap(),
        PermissionLevel::None
    );
    sim.set_permission(REPO, "dave", "maintain").unwrap();
    assert_eq!(
        level("dave").await,
        PermissionLevel::Maintain,
        "re-read on every call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_membership_comes_from_github() {
    let sim = acme_frontend(SimConfig::default());
    let forge = releaser_forge(&sim, quick_policy());
    assert!(forge.is_team_member("acme", "sre", "carol").await.unwrap());
    assert!(!forge.is_team_member("acme", "sre", "alice").await.unwrap());
    assert!(
        !forge
            .is_team_member("acme", "no-such-team", "carol")
            .await
            .unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_looked_up_by_login() {
    let sim = acme_frontend(SimConfig::default());
    let dave_id = sim.create_user("dave").unwrap();
    let forge = releaser_forge(&sim, quick_policy());
    assert_eq!(forge.user_id("dave").await.unwrap(), dave_id);
    assert!(matches!(
        forge.user_id("nobody-at-all").await,
        Err(ForgeError::NotFound(_))
    ));
    assert_eq!(forge.authenticated_login().await.unwrap(), "releaser");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_comments_and_reactions_reach_the_pull_request() {
    let sim = acme_frontend(SimConfig::default());
    let forge = releaser_forge(&sim, quick_policy());
    let head = sim
        .push(REPO, "feature", &[("a.txt", "a")], "feature", "alice")
        .unwrap();
    let number = sim.open_pr(REPO, "feature", "main", "Feature", "alice").unwrap();
    let command = sim.comment(REPO, number, "alice", "/deploy staging").unwrap();

    forge
        .set_status(
            &repo(),
            &sha(&head),
            &StatusUpdate {
                state: CommitState::Pending,
                context: "auger/staging".into(),
                description: Some("deploying".into()),
                target_url: Some("https://auger.example/r/1".into()),
            },
        )
        .await
        .unwrap();
    let statuses = sim.statuses(REPO, &head).unwrap();
    let s = statuses
        .iter()
        .find(|s| s.context == "auger/staging")
        .expect("status set");
    assert_eq!(s.state, "pending");
    assert_eq!(s.description.as_deref(), Some("deploying"));
    assert_eq!(s.target_url.as_deref(), Some("https://auger.example/r/1"));
    assert_eq!(s.creator, "releaser");

    forge
        .add_reaction(&repo(), auger::forge::CommentId(command), Reaction::Eyes)
        .await
        .unwrap();
    let reply = forge
        .create_comment(&repo(), number, "<!-- auger:reply -->\nDeploying…")
        .await
        .unwrap();
    forge
        .update_comment(&repo(), reply, "<!-- auger:reply -->\nDeployed to staging")
        .await
        .unwrap();

    let in_sim = sim.comments(REPO, number).unwrap();
    let cmd = in_sim.iter().find(|c| c.id == command).unwrap();
    assert_eq!(cmd.reactions.len(), 1);
    assert_eq!(
        (cmd.reactions[0].content.as_str(), cmd.reactions[0].user.as_str()),
        ("eyes", "releaser")
    );
    let ours = in_sim.iter().find(|c| c.id == reply.0).unwrap();
    assert_eq!(ours.body, "<!-- auger:reply -->\nDeployed to staging");

    // auger finds its own earlier reply by the marker and its login.
    let me = forge.authenticated_login().await.unwrap();
    let comments = forge.list_comments(&repo(), number).await.unwrap();
    assert_eq!(comments.len(), 2);
    assert_eq!(comments[0].author.login, "alice");
    assert!(!comments[0].author.is_bot);
    let mine: Vec<_> = comments
        .iter()
        .filter(|c| c.author.login == me && c.body.contains("<!-- auger:reply -->"))
        .collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].id, reply);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comment_listings_follow_every_page() {
    let sim = acme_frontend(SimConfig::default());
    let number = open_feature_pr(&sim);
    for i in 0..105 {
        sim.comment(REPO, number, "bob", &format!("comment {i}")).unwrap();
    }
    let forge = releaser_forge(&sim, quick_policy());
    let comments = forge.list_comments(&repo(), number).await.unwrap();
    assert_eq!(comments.len(), 105);
    assert_eq!(comments[104].body, "comment 104");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_and_their_statuses_are_recorded() {
    let sim = acme_frontend(SimConfig::default());
    let forge = releaser_forge(&sim, quick_policy());
    let main = sim.branch_sha(REPO, "main").unwrap();
    let id = forge
        .create_deployment(
            &repo(),
            &NewDeployment {
                sha: sha(&main),
                environment: "staging".into(),
                description: Some("web 1.2.0".into()),
                transient: false,
                production: false,
                payload: serde_json::json!({"app": "web", "artifact": "web@abc"}),
            },
        )
        .await
        .unwrap();
    for state in [DeploymentState::InProgress, DeploymentState::Success] {
        forge
            .set_deployment_status(
                &repo(),
                id,
                &DeploymentStatusUpdate {
                    state,
                    environment_url: Some("https://staging.example".into()),
                    log_url: Some("https://auger.example/r/1".into()),
                    description: None,
                    auto_inactive: state == DeploymentState::Success,
                },
            )
            .await
            .unwrap();
    }
    forge
        .create_deployment(&repo(), &deployment(&main, "production", true))
        .await
        .unwrap();

    let in_sim = sim.deployments(REPO).unwrap();
    let d = in_sim.iter().find(|d| d.id == id.0).unwrap();
    assert_eq!(d.environment, "staging");
    assert_eq!(d.sha, main);
    let states: Vec<&str> = d.statuses.iter().map(|s| s.state.as_str()).collect();
    assert_eq!(states, ["in_progress", "success"]);
    assert_eq!(d.statuses[1].environment_url, "https://staging.example");

    let staging = forge.list_deployments(&repo(), "staging").await.unwrap();
    assert_eq!(staging.len(), 1, "filtered by environment");
    assert_eq!(staging[0].id, id);
    assert_eq!(staging[0].payload["artifact"], "web@abc");
    assert!(!staging[0].production);
    assert_eq!(
        staging[0].creator.as_ref().map(|c| c.login.as_str()),
        Some("releaser")
    );
    let prod = forge.list_deployments(&repo(), "production").await.unwrap();
    assert!(prod.len() == 1 && prod[0].production);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_github_app_acts_as_its_bot_through_one_cached_installation_token() {
    let (private_pem, public_pem) = rsa_key_pair();
    let sim = acme_frontend(SimConfig {
        app_id: 4242,
        installation_id: 77,
        app_public_key_pem: Some(public_pem),
        ..SimConfig::default()
    });
    let forge = GithubForge::new(
        sim.url(),
        GithubAuthSecret::App {
            app_id: 4242,
            private_key_pem: private_pem,
        },
        quick_policy(),
    )
    .unwrap();
    assert_eq!(forge.authenticated_login().await.unwrap(), "auger[bot]");

    let number = open_feature_pr(&sim);
    let id = forge
        .create_comment(&repo(), number, "hello from the app")
        .await
        .unwrap();
    forge
        .update_comment(&repo(), id, "edited by the app")
        .await
        .unwrap();
    let comments = forge.list_comments(&repo(), number).await.unwrap();
    assert_eq!(comments[0].author.login, "auger[bot]");
    assert!(comments[0].author.is_bot);
    assert_eq!(
        forge.permission(&repo(), "alice").await.unwrap(),
        PermissionLevel::Write
    );
    assert!(forge.is_team_member("acme", "sre", "carol").await.unwrap());
    assert!(forge.user_id("alice").await.unwrap() > 0);

    let reqs = sim.requests();
    assert_eq!(
        count(&sim, "GET", "/repos/acme/frontend/installation"),
        1,
        "installation looked up once"
    );
    assert_eq!(
        count(&sim, "POST", "/app/installations/77/access_tokens"),
        1,
        "one token minted and reused: {:?}",
        reqs.iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect::<Vec<_>>()
    );
    let acting: Vec<_> = reqs
        .iter()
        .filter(|r| r.path.starts_with("/repos/acme/frontend/issues"))
        .map(|r| r.login.as_deref())
        .collect();
    assert!(
        !acting.is_empty() && acting.iter().all(|l| *l == Some("auger[bot]")),
        "{acting:?}"
    );

    // A repository the App cannot see: a clear NotFound, not a panic.
    let err = forge
        .get_pull(&RepoName::new("elsewhere/nothing").unwrap(), 1)
        .await
        .unwrap_err();
    assert!(matches!(err, ForgeError::NotFound(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_the_app_does_not_own_is_refused() {
    let (_, public_pem) = rsa_key_pair();
    let (other_private, _) = rsa_key_pair();
    let sim = acme_frontend(SimConfig {
        app_public_key_pem: Some(public_pem),
        ..SimConfig::default()
    });
    let forge = GithubForge::new(
        sim.url(),
        GithubAuthSecret::App {
            app_id: 1,
            private_key_pem: other_private,
        },
        quick_policy(),
    )
    .unwrap();
    let err = forge.get_pull(&repo(), 1).await.unwrap_err();
    assert!(matches!(err, ForgeError::Unauthorized(_)), "{err:?}");
    assert!(matches!(
        GithubForge::new(
            sim.url(),
            GithubAuthSecret::App {
                app_id: 1,
                private_key_pem: "not a key".into()
            },
            quick_policy()
        ),
        Err(ForgeError::Config(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_answered_500_twice_then_ok_succeeds_on_the_third_request() {
    let sim = acme_frontend(SimConfig::default());
    let number = open_feature_pr(&sim);
    let forge = releaser_forge(&sim, quick_policy());
    let path = format!("/repos/acme/frontend/pulls/{number}");
    sim.inject_fault("GET", &path, 2, Fault::status(500));

    let pr = forge.get_pull(&repo(), number).await.unwrap();
    assert_eq!(pr.number, number);
    assert_eq!(count(&sim, "GET", &path), 3);
    let stats = forge.stats().snapshot();
    assert_eq!((stats.status_5xx, stats.retries), (2, 2));
    assert!(stats.status_2xx >= 1);

    // Past the attempt budget the server error is reported as such.
    sim.inject_fault("GET", &path, 10, Fault::status(502));
    let err = forge.get_pull(&repo(), number).await.unwrap_err();
    assert!(matches!(err, ForgeError::Server { status: 502, .. }), "{err:?}");
    assert_eq!(count(&sim, "GET", &path), 3 + 4);
    sim.clear_faults();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secondary_rate_limit_is_waited_out_for_retry_after_seconds() {
    let sim = acme_frontend(SimConfig::default());
    let forge = releaser_forge(&sim, quick_policy());
    let path = "/repos/acme/frontend/collaborators/alice/permission";
    sim.inject_fault("GET", path, 1, Fault::retry_after(403, 1));

    let started = Instant::now();
    assert_eq!(
        forge.permission(&repo(), "alice").await.unwrap(),
        PermissionLevel::Write
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(count(&sim, "GET", path), 2);
    assert_eq!(forge.stats().snapshot().rate_limited, 1);

    // Longer than the budget allows: no sleep, a RateLimited error saying when to come back.
    sim.inject_fault("GET", path, 1, Fault::retry_after(429, 3600));
    let started = Instant::now();
    let err = forge.permission(&repo(), "alice").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        matches!(err, ForgeError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(3600)),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_primary_rate_limit_waits_until_the_reset() {
    let sim = acme_frontend(SimConfig::default());
    let forge = releaser_forge(&sim, quick_policy());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    sim.inject_fault(
        "GET",
        "/orgs/acme/teams/sre/memberships/carol",
        1,
        Fault::rate_limited(now + 1),
    );

    let started = Instant::now();
    assert!(forge.is_team_member("acme", "sre", "carol").await.unwrap());
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(count(&sim, "GET", "/orgs/acme/teams/sre/memberships/carol"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comment_post_answered_500_is_sent_once_and_reports_an_unknown_outcome() {
    let sim = acme_frontend(SimConfig::default());
    let number = open_feature_pr(&sim);
    let forge = releaser_forge(&sim, quick_policy());
    let path = format!("/repos/acme/frontend/issues/{number}/comments");
    sim.inject_fault("POST", &path, 1, Fault::status(500));

    let err = forge.create_comment(&repo(), number, "once").await.unwrap_err();
    assert!(matches!(err, ForgeError::OutcomeUnknown { .. }), "{err:?}");
    assert!(err.to_string().contains("not retried"), "{err}");
    assert_eq!(count(&sim, "POST", &path), 1, "a comment POST is never repeated");
    assert!(sim.comments(REPO, number).unwrap().is_empty());
}

/// A rate limit is a refusal before any effect: even a create is sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_comment_post_is_sent_again_after_the_wait() {
    let sim = acme_frontend(SimConfig::default());
    let number = open_feature_pr(&sim);
    let forge = releaser_forge(&sim, quick_policy());
    let path = format!("/repos/acme/frontend/issues/{number}/comments");
    sim.inject_fault("POST", &path, 1, Fault::retry_after(403, 1));
    forge
        .create_comment(&repo(), number, "after the wait")
        .await
        .unwrap();
    assert_eq!(count(&sim, "POST", &path), 2);
    assert_eq!(sim.comments(REPO, number).unwrap().len(), 1);
}

/// The comment rule holds for deployments (and merges, below) too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_post_answered_503_is_sent_once_and_reports_an_unknown_outcome() {
    let sim = acme_frontend(SimConfig::default());
    let forge = releaser_forge(&sim, quick_policy());
    let dep_path = "/repos/acme/frontend/deployments";
    sim.inject_fault("POST", dep_path, 1, Fault::status(503));
    let main = sim.branch_sha(REPO, "main").unwrap();
    let err = forge
        .create_deployment(&repo(), &deployment(&main, "staging", false))
        .await
        .unwrap_err();
    assert!(matches!(err, ForgeError::OutcomeUnknown { .. }), "{err:?}");
    assert_eq!(count(&sim, "POST", dep_path), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn octocrabs_own_retries_are_off() {
    let sim = acme_frontend(SimConfig::default());
    // Our policy allows one send; any second request would be octocrab's.
    let forge = releaser_forge(&sim, RetryPolicy::none());
    sim.inject_fault("GET", "/users/alice", 1, Fault::status(500));
    let err = forge.user_id("alice").await.unwrap_err();
    assert!(matches!(err, ForgeError::Server { status: 500, .. }), "{err:?}");
    assert_eq!(count(&sim, "GET", "/users/alice"), 1);

    sim.inject_fault("GET", "/users/bob", 1, Fault::status(429));
    let err = forge.user_id("bob").await.unwrap_err();
    assert!(matches!(err, ForgeError::RateLimited { .. }), "{err:?}");
    assert_eq!(count(&sim, "GET", "/users/bob"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_posts_are_repeated_after_a_server_error() {
    let sim = acme_frontend(SimConfig::default());
    let forge = releaser_forge(&sim, quick_policy());
    let main = sim.branch_sha(REPO, "main").unwrap();
    let path = format!("/repos/acme/frontend/statuses/{main}");
    sim.inject_fault("POST", &path, 1, Fault::status(502));
    forge
        .set_status(
            &repo(),
            &sha(&main),
            &StatusUpdate {
                state: CommitState::Success,
                context: "auger/production".into(),
                description: None,
                target_url: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(count(&sim, "POST", &path), 2);
    let statuses = sim.statuses(REPO, &main).unwrap();
    assert!(
        statuses
            .iter()
            .any(|s| s.context == "auger/production" && s.state == "success")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_github_is_a_transport_error_after_the_retries() {
    // A port nobody listens on: connect fails, nothing was sent, so even a create may retry.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let forge = GithubForge::new(&url, GithubAuthSecret::Token("t".into()), quick_policy()).unwrap();
    let err = forge.create_comment(&repo(), 1, "x").await.unwrap_err();
    assert!(matches!(err, ForgeError::Transport(_)), "{err:?}");
    assert_eq!(forge.stats().snapshot().errors, 4, "all four attempts were made");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_answered_500_is_not_repeated_and_a_re_read_tells_the_truth() {
    let sim = acme_frontend(SimConfig::default());
    let head = sim
        .push(REPO, "feature", &[("a.txt", "a")], "feature", "alice")
        .unwrap();
    let number = sim.open_pr(REPO, "feature", "main", "Feature", "alice").unwrap();
    let forge = releaser_forge(&sim, quick_policy());
    let path = format!("/repos/acme/frontend/pulls/{number}/merge");
    sim.inject_fault("PUT", &path, 1, Fault::status(500));

    let err = forge
        .merge_pull(&repo(), number, &sha(&head), MergeMethod::Squash, "Feature", "")
        .await
        .unwrap_err();
    assert!(matches!(err, ForgeError::OutcomeUnknown { .. }), "{err:?}");
    assert_eq!(count(&sim, "PUT", &path), 1);
    assert!(!forge.get_pull(&repo(), number).await.unwrap().merged);
}

/// git cannot sign JWTs: the forge hands it a token. With a token, that token; with an App, an
/// installation token GitHub accepts, minted once and reused until it nears expiry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_gets_a_token_that_github_accepts_minted_once_per_installation() {
    let (private_pem, public_pem) = rsa_key_pair();
    let sim = acme_frontend(SimConfig {
        app_id: 4242,
        installation_id: 77,
        app_public_key_pem: Some(public_pem),
        ..SimConfig::default()
    });
    let token_forge = releaser_forge(&sim, quick_policy());
    let plain = token_forge.git_token(&repo()).await.unwrap().unwrap();
    assert!(!plain.is_empty());

    let app = GithubForge::new(
        sim.url(),
        GithubAuthSecret::App {
            app_id: 4242,
            private_key_pem: private_pem,
        },
        quick_policy(),
    )
    .unwrap();
    let first = app
        .git_token(&repo())
        .await
        .unwrap()
        .expect("an installation token");
    let again = app.git_token(&repo()).await.unwrap().unwrap();
    assert_eq!(first, again, "reused while valid");
    assert_eq!(count(&sim, "POST", "/app/installations/77/access_tokens"), 1);
    // GitHub accepts it as the installation's token (installation tokens cannot read /user).
    let as_token = GithubForge::new(sim.url(), GithubAuthSecret::Token(first), quick_policy()).unwrap();
    assert_eq!(
        as_token.permission(&repo(), "alice").await.unwrap(),
        PermissionLevel::Write
    );
    let bogus = GithubForge::new(
        sim.url(),
        GithubAuthSecret::Token("ghs_bogus".into()),
        quick_policy(),
    )
    .unwrap();
    assert!(bogus.permission(&repo(), "alice").await.is_err());
}
