//! octocrab, the real client, drives every implemented route and deserializes every answer
//! into its own models (raw JSON only where octocrab has no typed call or a known bug).

use crate::common::{octocrab_for, rsa_key_pair, seeded};
use github_sim::{GithubSim, SimConfig};
use octocrab::models::pulls::{MergeableState, PullRequest};
use octocrab::models::{CombinedStatus, StatusState};
use octocrab::params::repos::{Commitish, Reference};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_developer_token_drives_repos_pulls_comments_and_statuses() {
    let sim = seeded(SimConfig::default());
    let main_sha = sim.branch_sha("acme/frontend", "main").unwrap();
    let feature_sha = sim
        .push(
            "acme/frontend",
            "feature",
            &[("src/app.js", "console.log(1)\n")],
            "Add app",
            "alice",
        )
        .unwrap();
    let gh = octocrab_for(&sim, &sim.create_token("alice").unwrap());
    let repo = gh.repos("acme", "frontend");

    // Who am I, and the repository.
    let me = gh.current().user().await.unwrap();
    assert_eq!(me.login, "alice");
    let r = repo.get().await.unwrap();
    assert_eq!(r.full_name.as_deref(), Some("acme/frontend"));
    assert_eq!(r.default_branch.as_deref(), Some("main"));
    assert!(r.clone_url.unwrap().as_str().starts_with("file://"));
    assert!(r.permissions.unwrap().push);

    // Contents (file and directory) and commits.
    let content = repo
        .get_content()
        .path("README.md")
        .r#ref("main")
        .send()
        .await
        .unwrap();

    assert_eq!(
        content.items[0].decoded_content().as_deref(),
        Some("# frontend\n")
    );
    let dir = repo
        .get_content()
        .path("src")
        .r#ref("feature")
        .send()
        .await
        .unwrap();

    assert_eq!(dir.items[0].name, "app.js");
    let commit = gh.commits("acme", "frontend").get(&feature_sha).await.unwrap();
    assert_eq!(commit.sha, feature_sha);
    assert_eq!(commit.parents[0].sha.as_deref(), Some(main_sha.as_str()));
    let cmp = gh
        .commits("acme", "frontend")
        .compare("main", "feature")
        .send()
        .await
        .unwrap();
    assert_eq!(cmp.ahead_by, 1);
    assert_eq!(cmp.behind_by, 0);
    assert_eq!(cmp.commits[0].sha, feature_sha);

    // Refs: read, create, fast-forward update, delete.
    let main_ref = repo.get_ref(&Reference::Branch("main".into())).await.unwrap();
    assert_eq!(main_ref.ref_field, "refs/heads/main");
    let created = repo
        .create_ref(&Reference::Branch("release".into()), &main_sha)
        .await
        .unwrap();
    assert_eq!(created.ref_field, "refs/heads/release");
    let moved: octocrab::models::repos::Ref = gh
        .patch(
            "/repos/acme/frontend/git/refs/heads/release",
            Some(&json!({"sha": feature_sha})),
        )
        .await
        .unwrap();
    assert!(
        matches!(moved.object, octocrab::models::repos::Object::Commit { ref sha, .. } if *sha == feature_sha)
    );
    let backwards: Result<Value, _> = gh
        .patch(
            "/repos/acme/frontend/git/refs/heads/release",
            Some(&json!({"sha": main_sha})),
        )
        .await;
    assert_eq!(status_of(backwards), Some(422), "non fast-forward without force");
    let del = gh
        ._delete("/repos/acme/frontend/git/refs/heads/release", None::<&()>)
        .await
        .unwrap();
    assert_eq!(del.status(), 204);

    // Pull requests: create, get, list, update.
    let pr = gh
        .pulls("acme", "frontend")
        .create("Add app", "feature", "main")
        .body("Adds the app")
        .send()
        .await
        .unwrap();
    assert_eq!(pr.number, 1);
    assert_eq!(pr.head.sha, feature_sha);
    assert_eq!(pr.base.ref_field, "main");
    let got = gh.pulls("acme", "frontend").get(1).await.unwrap();
    assert_eq!(got.mergeable, Some(true));
    assert_eq!(got.mergeable_state, Some(MergeableState::Clean));
    let open = gh
        .pulls("acme", "frontend")
        .list()
        .state(octocrab::params::State::Open)
        .send()
        .await
        .unwrap();
    assert_eq!(open.items.len(), 1);
    let renamed = gh
        .pulls("acme", "frontend")
        .update(1)
        .title("Add the app")
        .send()
        .await
        .unwrap();
    assert_eq!(renamed.title.as_deref(), Some("Add the app"));
    sim.wait_deliveries_async().await;
    let edited = sim.deliveries_of("pull_request").pop().unwrap().payload;
    assert_eq!(edited["action"], "edited");
    assert_eq!(edited["changes"]["title"]["from"], "Add app");
    let for_commit: Vec<PullRequest> = gh
        .get(
            format!("/repos/acme/frontend/commits/{feature_sha}/pulls"),
            None::<&()>,
        )
        .await
        .unwrap();
    assert_eq!(for_commit[0].number, 1);

    // Comments, edits, reactions.
    let c = gh
        .issues("acme", "frontend")
        .create_comment(1, "/deploy staging")
        .await
        .unwrap();
    assert_eq!(c.user.login, "alice");
    let edited = gh
        .issues("acme", "frontend")
        .update_comment(c.id, "/deploy production")
        .await
        .unwrap();
    assert_eq!(edited.body.as_deref(), Some("/deploy production"));
    let reaction = gh
        .issues("acme", "frontend")
        .create_comment_reaction(c.id, octocrab::models::reactions::ReactionContent::Eyes)
        .await
        .unwrap();
    assert_eq!(
        reaction.content,
        octocrab::models::reactions::ReactionContent::Eyes
    );
    let comments = gh
        .issues("acme", "frontend")
        .list_comments(1)
        .send()
        .await
        .unwrap();
    assert_eq!(comments.items.len(), 1);
    assert_eq!(
        sim.comments("acme/frontend", 1).unwrap()[0].reactions[0].content,
        "eyes"
    );

    // Statuses: create, list, combined.
    let s = repo
        .create_status(feature_sha.clone(), StatusState::Success)
        .context("ci/build".to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(s.state, StatusState::Success);
    let list = repo.list_statuses(feature_sha.clone()).send().await.unwrap();
    assert_eq!(list.items.len(), 1);
    let combined: CombinedStatus = repo
        .combined_status_for_ref(&Reference::Branch("feature".into()))
        .await
        .unwrap();
    assert_eq!(combined.state, StatusState::Success);
    assert_eq!(combined.total_count, 1);

    // Reviews by someone else, then the merge.
    sim.review("acme/frontend", 1, "carol", "APPROVED").unwrap();
    let reviews = gh.pulls("acme", "frontend").list_reviews(1).send().await.unwrap();
    assert_eq!(
        reviews.items[0].state,
        Some(octocrab::models::pulls::ReviewState::Approved)
    );
    assert_eq!(reviews.items[0].commit_id.as_deref(), Some(feature_sha.as_str()));
    let merge = gh
        .pulls("acme", "frontend")
        .merge(1)
        .sha(feature_sha.clone())
        .send()
        .await
        .unwrap();
    assert!(merge.merged);
    let merged = gh.pulls("acme", "frontend").get(1).await.unwrap();
    assert!(merged.merged_at.is_some());
    assert_eq!(merged.merge_commit_sha, merge.sha);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_permissions_and_teams_via_raw_json() {
    let sim = seeded(SimConfig::default());
    let sha = sim.branch_sha("acme/frontend", "main").unwrap();
    let gh = octocrab_for(&sim, &sim.create_token("alice").unwrap());

    let dep: Value = gh
        .post(
            "/repos/acme/frontend/deployments",
            Some(&json!({"ref": sha, "environment": "staging", "auto_merge": false, "required_contexts": [], "payload": {"artifact": "a1"}})),
        )
        .await
        .unwrap();
    let id = dep["id"].as_u64().unwrap();
    assert_eq!(dep["environment"], "staging");
    assert_eq!(dep["sha"], sha.as_str());
    let st: Value = gh
        .post(
            format!("/repos/acme/frontend/deployments/{id}/statuses"),
            Some(&json!({"state": "success", "environment_url": "https://staging.example"})),
        )
        .await
        .unwrap();
    assert_eq!(st["state"], "success");
    let deps: Vec<Value> = gh
        .get(
            "/repos/acme/frontend/deployments?environment=staging",
            None::<&()>,
        )
        .await
        .unwrap();
    assert_eq!(deps.len(), 1);
    let statuses: Vec<Value> = gh
        .get(
            format!("/repos/acme/frontend/deployments/{id}/statuses"),
            None::<&()>,
        )
        .await
        .unwrap();
    assert_eq!(statuses[0]["environment_url"], "https://staging.example");
    assert_eq!(sim.deployments("acme/frontend").unwrap()[0].statuses.len(), 1);

    // Collaborator permission (raw JSON: octocrab 0.54's typed call rejects "write").
    let perm: Value = gh
        .get("/repos/acme/frontend/collaborators/alice/permission", None::<&()>)
        .await
        .unwrap();
    assert_eq!(perm["permission"], "write");
    assert_eq!(perm["role_name"], "write");
    assert_eq!(perm["user"]["login"], "alice");
    let carol: Value = gh
        .get("/repos/acme/frontend/collaborators/carol/permission", None::<&()>)
        .await
        .unwrap();
    assert_eq!(carol["permission"], "admin");

    // Team membership: 200 for members, 404 otherwise.
    let m: octocrab::models::memberships::TeamMembership = gh
        .get("/orgs/acme/teams/sre/memberships/carol", None::<&()>)
        .await
        .unwrap();
    assert_eq!(m.state, octocrab::models::memberships::State::Active);
    let not_member: Result<Value, _> = gh
        .get("/orgs/acme/teams/sre/memberships/alice", None::<&()>)
        .await;
    assert_eq!(status_of(not_member), Some(404));
}

/// The states of each deployment's statuses, oldest first, by deployment id.
fn deployment_states(sim: &GithubSim) -> Vec<(u64, Vec<String>)> {
    sim.deployments("acme/frontend")
        .unwrap()
        .into_iter()
        .map(|d| (d.id, d.statuses.into_iter().map(|s| s.state).collect()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_success_marks_prior_successful_deployments_of_its_environment_inactive() {
    let sim = seeded(SimConfig::default());
    let sha = sim.branch_sha("acme/frontend", "main").unwrap();
    let gh = octocrab_for(&sim, &sim.create_token("alice").unwrap());
    let deploy = |env: &'static str, production: bool| {
        let gh = gh.clone();
        let sha = sha.clone();
        async move {
            let d: Value = gh
                .post(
                    "/repos/acme/frontend/deployments",
                    Some(&json!({"ref": sha, "environment": env, "required_contexts": [], "production_environment": production})),
                )
                .await
                .unwrap();
            d["id"].as_u64().unwrap()
        }
    };
    let status = |id: u64, body: Value| {
        let gh = gh.clone();
        async move {
            let _: Value = gh
                .post(
                    format!("/repos/acme/frontend/deployments/{id}/statuses"),
                    Some(&body),
                )
                .await
                .unwrap();
        }
    };
    let live = deploy("staging", false).await;
    status(live, json!({"state": "success"})).await;
    let failed = deploy("staging", false).await;
    status(failed, json!({"state": "failure"})).await;
    let other_env = deploy("qa", false).await;
    status(other_env, json!({"state": "success"})).await;
    let prod = deploy("production", true).await;
    status(prod, json!({"state": "success"})).await;

    let next = deploy("staging", false).await;
    status(next, json!({"state": "success"})).await;
    let prod_next = deploy("production", true).await;
    status(prod_next, json!({"state": "success", "auto_inactive": true})).await;

    let of = |id: u64| states_of(&sim, id);
    assert_eq!(of(live), "success,inactive", "the prior live one of staging");
    assert_eq!(of(failed), "failure", "only successful ones");
    assert_eq!(of(other_env), "success", "another environment");
    assert_eq!(of(prod), "success", "production deployments are left alone");
    assert_eq!(of(next), "success");

    // auto_inactive: false leaves the prior one live.
    let again = deploy("staging", false).await;
    status(again, json!({"state": "success", "auto_inactive": false})).await;
    assert_eq!(of(next), "success");
}

/// The states of deployment `id`'s statuses, oldest first, comma-separated.
fn states_of(sim: &GithubSim, id: u64) -> String {
    let states = deployment_states(sim);
    states.iter().find(|(d, _)| *d == id).unwrap().1.join(",")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_paginate_with_link_headers() {
    let sim = seeded(SimConfig::default());
    sim.push("acme/frontend", "feature", &[("a", "a")], "a", "alice")
        .unwrap();
    let n = sim
        .open_pr("acme/frontend", "feature", "main", "A", "alice")
        .unwrap();
    for i in 0..5 {
        sim.comment("acme/frontend", n, "bob", &format!("comment {i}"))
            .unwrap();
    }
    let gh = octocrab_for(&sim, &sim.create_token("alice").unwrap());
    let first = gh
        .issues("acme", "frontend")
        .list_comments(n)
        .per_page(2)
        .send()
        .await
        .unwrap();
    assert_eq!(first.items.len(), 2);
    assert!(first.next.is_some());
    assert!(first.last.is_some());
    let all = gh.all_pages(first).await.unwrap();
    let bodies: Vec<_> = all.iter().map(|c| c.body.clone().unwrap()).collect();
    assert_eq!(bodies, (0..5).map(|i| format!("comment {i}")).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_bad_credentials_answer_like_github() {
    let sim = seeded(SimConfig::default());
    let gh = octocrab_for(&sim, &sim.create_token("alice").unwrap());
    let err = gh
        .get::<Value, _, _>("/repos/acme/frontend/nope", None::<&()>)
        .await
        .unwrap_err();
    match err {
        octocrab::Error::GitHub { source, .. } => {
            assert_eq!(source.status_code, 404);
            assert_eq!(source.message, "Not Found");
            assert!(source.documentation_url.is_some());
        }
        other => panic!("unexpected {other:?}"),
    }
    // Private repositories are invisible to users without a role.
    sim.create_private_repo("acme/secret").unwrap();
    let bob = octocrab_for(&sim, &sim.create_token("bob").unwrap());
    assert_eq!(status_of(bob.repos("acme", "secret").get().await), Some(404));
    sim.set_permission("acme/secret", "bob", "read").unwrap();
    assert!(bob.repos("acme", "secret").get().await.unwrap().private.unwrap());

    let stranger = octocrab_for(&sim, "ghp_not_a_token");
    assert_eq!(
        status_of(stranger.get::<Value, _, _>("/user", None::<&()>).await),
        Some(401)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_github_app_authenticates_with_a_jwt_and_acts_through_an_installation() {
    let (private_pem, public_pem) = rsa_key_pair();
    let sim = seeded(SimConfig {
        app_id: 4242,
        installation_id: 77,
        app_public_key_pem: Some(public_pem),
        ..Default::default()
    });
    let sha = sim.branch_sha("acme/frontend", "main").unwrap();
    let key = octocrab::EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap();
    let app = octocrab::Octocrab::builder()
        .base_uri(sim.url())
        .unwrap()
        .app(octocrab::models::AppId(4242), key)
        .build()
        .unwrap();

    let me = app.current().app().await.unwrap();
    assert_eq!(me.id, octocrab::models::AppId(4242));
    let installs = app.apps().installations().send().await.unwrap();
    assert_eq!(installs.items[0].id, octocrab::models::InstallationId(77));

    // The installation client mints a token on first use and acts as auger[bot].
    let inst = app.installation(octocrab::models::InstallationId(77)).unwrap();
    let run = inst
        .checks("acme", "frontend")
        .create_check_run("build", &sha)
        .send()
        .await
        .unwrap();
    assert_eq!(run.name, "build");
    let done = inst
        .checks("acme", "frontend")
        .update_check_run(run.id)
        .status(octocrab::params::checks::CheckRunStatus::Completed)
        .conclusion(octocrab::params::checks::CheckRunConclusion::Success)
        .send()
        .await
        .unwrap();
    assert_eq!(done.conclusion.as_deref(), Some("success"));
    let runs = inst
        .checks("acme", "frontend")
        .list_check_runs_for_git_ref(Commitish(sha.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(runs.total_count, 1);
    let c = inst.issues("acme", "frontend");
    sim.push("acme/frontend", "f", &[("x", "x")], "x", "alice")
        .unwrap();
    let n = sim.open_pr("acme/frontend", "f", "main", "X", "alice").unwrap();
    let comment = c.create_comment(n, "Deployed").await.unwrap();
    assert_eq!(comment.user.login, "auger[bot]");
    assert_eq!(comment.user.r#type, "Bot");
    let pulls = inst.pulls("acme", "frontend").list().send().await.unwrap();
    assert_eq!(pulls.items.len(), 1);
    let issue = inst.issues("acme", "frontend").get(n).await.unwrap();
    assert!(issue.pull_request.is_some());
    let repos: octocrab::models::InstallationRepositories =
        inst.get("/installation/repositories", None::<&()>).await.unwrap();
    assert_eq!(repos.repositories[0].full_name.as_deref(), Some("acme/frontend"));

    // Workflow runs, as CI reports them.
    let run_id = sim
        .create_workflow_run("acme/frontend", "CI", &sha, "main", "alice")
        .unwrap();
    sim.complete_workflow_run("acme/frontend", run_id, "success")
        .unwrap();
    let runs = inst
        .workflows("acme", "frontend")
        .list_all_runs()
        .send()
        .await
        .unwrap();
    assert_eq!(runs.items[0].conclusion.as_deref(), Some("success"));
    assert_eq!(runs.items[0].head_sha, sha);
    let one: octocrab::models::workflows::Run = inst
        .get(format!("/repos/acme/frontend/actions/runs/{run_id}"), None::<&()>)
        .await
        .unwrap();
    assert_eq!(one.name, "CI");

    // A JWT signed by another key is refused; an app JWT is no repository credential.
    let (other_private, _) = rsa_key_pair();
    let forged = octocrab::Octocrab::builder()
        .base_uri(sim.url())
        .unwrap()
        .app(
            octocrab::models::AppId(4242),
            octocrab::EncodingKey::from_rsa_pem(other_private.as_bytes()).unwrap(),
        )
        .build()
        .unwrap();
    assert_eq!(status_of(forged.current().app().await), Some(401));
    assert_eq!(
        status_of(
            app.get::<Value, _, _>("/repos/acme/frontend/pulls", None::<&()>)
                .await
        ),
        Some(403)
    );
    // Check runs are for apps only.
    let dev = octocrab_for(&sim, &sim.create_token("alice").unwrap());
    assert_eq!(
        status_of(
            dev.checks("acme", "frontend")
                .create_check_run("x", &sha)
                .send()
                .await
        ),
        Some(403)
    );
}

fn status_of<T: std::fmt::Debug>(r: octocrab::Result<T>) -> Option<u16> {
    match r {
        Err(octocrab::Error::GitHub { source, .. }) => Some(source.status_code.as_u16()),
        other => panic!("expected a GitHub error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_remaining_routes_deserialize_into_octocrab_models() {
    let (private_pem, public_pem) = rsa_key_pair();
    let sim = seeded(SimConfig {
        app_public_key_pem: Some(public_pem),
        ..Default::default()
    });
    let sha = sim
        .push("acme/frontend", "feature", &[("f", "f")], "f", "alice")
        .unwrap();
    sim.create_tag("acme/frontend", "v1.0.0", "main", "alice")
        .unwrap();
    sim.create_tag("acme/frontend", "v1.1.0", "main", "alice")
        .unwrap();
    let n = sim
        .open_pr("acme/frontend", "feature", "main", "F", "alice")
        .unwrap();
    let gh = octocrab_for(&sim, &sim.create_token("carol").unwrap());
    let repo = gh.repos("acme", "frontend");

    let profile = gh.users("alice").profile().await.unwrap();
    assert_eq!(profile.login, "alice");
    let members = gh.teams("acme").members("sre").send().await.unwrap();
    assert_eq!(members.items[0].login, "carol");
    assert!(repo.is_collaborator("alice").await.unwrap());
    assert!(!repo.is_collaborator("mallory").await.unwrap());

    let branch: octocrab::models::repos::Branch = gh
        .get("/repos/acme/frontend/branches/feature", None::<&()>)
        .await
        .unwrap();
    assert_eq!(branch.commit.sha, sha);
    let tags: Vec<octocrab::models::repos::Ref> = gh
        .get("/repos/acme/frontend/git/matching-refs/tags/v1", None::<&()>)
        .await
        .unwrap();
    assert_eq!(tags.len(), 2);

    // Reviews through the API (as a reviewer would), then merge state.
    let review: octocrab::models::pulls::Review = gh
        .post(
            format!("/repos/acme/frontend/pulls/{n}/reviews"),
            Some(&json!({"event": "REQUEST_CHANGES", "body": "no"})),
        )
        .await
        .unwrap();
    assert_eq!(
        review.state,
        Some(octocrab::models::pulls::ReviewState::ChangesRequested)
    );
    assert!(!gh.pulls("acme", "frontend").is_merged(n).await.unwrap());
    sim.merge_pr("acme/frontend", n, "carol").unwrap();
    assert!(gh.pulls("acme", "frontend").is_merged(n).await.unwrap());

    // Single comment, its reactions, the statuses list, one check run, one deployment.
    let cid = sim.comment("acme/frontend", n, "bob", "nice").unwrap();
    let comment = gh
        .issues("acme", "frontend")
        .get_comment(octocrab::models::CommentId(cid))
        .await
        .unwrap();
    assert_eq!(comment.body.as_deref(), Some("nice"));
    gh.issues("acme", "frontend")
        .create_comment_reaction(cid, octocrab::models::reactions::ReactionContent::Rocket)
        .await
        .unwrap();
    let reactions = gh
        .issues("acme", "frontend")
        .list_comment_reactions(cid)
        .send()
        .await
        .unwrap();
    assert_eq!(reactions.items[0].user.login, "carol");
    sim.set_status("acme/frontend", &sha, "pending", "ci/build")
        .unwrap();
    let listed: Vec<octocrab::models::Status> = gh
        .get(
            format!("/repos/acme/frontend/commits/{sha}/statuses"),
            None::<&()>,
        )
        .await
        .unwrap();
    assert_eq!(listed[0].state, octocrab::models::StatusState::Pending);
    let run = sim.create_check_run("acme/frontend", &sha, "lint").unwrap();
    let got = gh
        .checks("acme", "frontend")
        .get_check_run(octocrab::models::CheckRunId(run))
        .send()
        .await
        .unwrap();
    assert_eq!(got.name, "lint");
    let dep: Value = gh
        .post(
            "/repos/acme/frontend/deployments",
            Some(&json!({"ref": "main", "environment": "production"})),
        )
        .await
        .unwrap();
    let one: Value = gh
        .get(
            format!("/repos/acme/frontend/deployments/{}", dep["id"]),
            None::<&()>,
        )
        .await
        .unwrap();
    assert_eq!(one["production_environment"], true);

    // App-JWT routes for one installation and a repository's installation.
    let key = octocrab::EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap();
    let app = octocrab::Octocrab::builder()
        .base_uri(sim.url())
        .unwrap()
        .app(octocrab::models::AppId(1), key)
        .build()
        .unwrap();
    let inst = app
        .apps()
        .installation(octocrab::models::InstallationId(1))
        .await
        .unwrap();
    assert_eq!(inst.id, octocrab::models::InstallationId(1));
    let repo_inst = app
        .apps()
        .get_repository_installation("acme", "frontend")
        .await
        .unwrap();
    assert_eq!(repo_inst.id, inst.id);

    // The plumbing behind git pushes is not an API request.
    assert!(sim.requests().iter().all(|r| !r.path.starts_with("/_sim/")));
}
