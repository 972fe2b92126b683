//! The simulator's answers against GitHub's response schemas: a representative scenario over
//! HTTP (repositories, pushes, pull requests opened, reviewed, merged and closed, comments,
//! statuses, check runs, deployments and their statuses, installations, branch protection)
//! leaves no violation in `response_violations`.

use github_sim::{GithubSim, Protection, SimConfig};
use serde_json::{Value, json};

use crate::common::{Api, git, rsa_key_pair, seeded};

const REPO: &str = "/repos/acme/frontend";

/// `method path` with `auth` (a bearer token or JWT): status and JSON answer.
async fn call(
    sim: &github_sim::GithubSim,
    method: &str,
    path: &str,
    auth: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", sim.url()))
        .bearer_auth(auth);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn app_jwt(app_id: u64, private_pem: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"iat": now - 60, "exp": now + 540, "iss": app_id.to_string()});
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &key,
    )
    .unwrap()
}

/// Drives the representative scenario over HTTP; the simulator, with what it answered and sent.
async fn representative_scenario() -> GithubSim {
    let (private_pem, public_pem) = rsa_key_pair();
    let sim = seeded(SimConfig {
        app_id: 4242,
        installation_id: 77,
        app_public_key_pem: Some(public_pem),
        ..Default::default()
    });
    let jwt = app_jwt(4242, &private_pem);
    let api = Api::new(&sim, "alice");
    let carol = Api::new(&sim, "carol");
    let expect = |answer: (u16, Value), status: u16, what: &str| -> Value {
        assert_eq!(answer.0, status, "{what}: {}", answer.1);
        answer.1
    };

    // Installations and a token, through the App's JWT.
    expect(call(&sim, "GET", "/app", &jwt, None).await, 200, "app");
    expect(
        call(&sim, "GET", "/app/installations", &jwt, None).await,
        200,
        "installations",
    );
    expect(
        call(&sim, "GET", "/app/installations/77", &jwt, None).await,
        200,
        "installation",
    );
    expect(
        call(&sim, "GET", &format!("{REPO}/installation"), &jwt, None).await,
        200,
        "repo installation",
    );
    let token = expect(
        call(&sim, "POST", "/app/installations/77/access_tokens", &jwt, None).await,
        201,
        "token",
    )["token"]
        .as_str()
        .unwrap()
        .to_string();
    expect(
        call(&sim, "GET", "/installation/repositories", &token, None).await,
        200,
        "installation repos",
    );

    // Accounts and the repository.
    expect(api.send("GET", "/user", None).await, 200, "user");
    expect(api.send("GET", "/users/bob", None).await, 200, "users/bob");
    expect(api.send("GET", "/rate_limit", None).await, 200, "rate_limit");
    expect(api.send("GET", REPO, None).await, 200, "repo");
    expect(
        api.send("GET", &format!("{REPO}/contents/README.md"), None).await,
        200,
        "contents",
    );
    expect(
        api.send("GET", &format!("{REPO}/branches/main"), None).await,
        200,
        "branch",
    );
    expect(
        api.send("GET", &format!("{REPO}/collaborators/bob/permission"), None)
            .await,
        200,
        "permission",
    );
    expect(
        api.send("GET", "/orgs/acme/teams/sre/members", None).await,
        200,
        "team members",
    );
    expect(
        api.send("GET", "/orgs/acme/teams/sre/memberships/carol", None)
            .await,
        200,
        "membership",
    );

    // Pushes, refs and commits.
    let main = sim.branch_sha("acme/frontend", "main").unwrap();
    let head = sim
        .push("acme/frontend", "feature", &[("a.txt", "a\n")], "Add a", "alice")
        .unwrap();
    expect(
        api.send("GET", &format!("{REPO}/commits/{head}"), None).await,
        200,
        "commit",
    );
    expect(
        api.send("GET", &format!("{REPO}/compare/{main}...{head}"), None)
            .await,
        200,
        "compare",
    );
    // Commits written with plain git by someone whose email maps to no account: GitHub
    // answers `author: null` and keeps the git author in `commit.author`. Compare lists them
    // oldest first, pages them when asked (files on page 1 only) and counts them all.
    let work = tempfile::tempdir().unwrap();
    let clone = work.path().join("clone");
    let url = format!("file://{}", sim.repo_path("acme/frontend").unwrap().display());
    git(work.path(), &["clone", "--quiet", &url, "clone"]);
    git(&clone, &["checkout", "--quiet", "-b", "outside", head.as_str()]);
    for n in 1..=3 {
        std::fs::write(clone.join("outside.txt"), format!("{n}\n")).unwrap();
        git(&clone, &["add", "."]);
        git(
            &clone,
            &[
                "commit",
                "--quiet",
                "--author=Jane Doe <jane@example.com>",
                "-m",
                &format!("Outside {n}"),
            ],
        );
    }
    git(&clone, &["push", "--quiet", "origin", "outside"]);
    let outside = git(&clone, &["rev-parse", "HEAD"]);
    let commit = expect(
        api.send("GET", &format!("{REPO}/commits/{outside}"), None).await,
        200,
        "commit by an unknown email",
    );
    assert!(commit["author"].is_null(), "{commit:#}");
    assert_eq!(commit["commit"]["author"]["name"], "Jane Doe");
    let all = expect(
        api.send("GET", &format!("{REPO}/compare/{main}...outside"), None)
            .await,
        200,
        "compare with unknown authors",
    );
    assert_eq!(all["total_commits"], 4);
    assert_eq!(all["ahead_by"], 4);
    let shas: Vec<&str> = all["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sha"].as_str().unwrap())
        .collect();
    assert_eq!(shas.first().copied(), Some(head.as_str()), "oldest first");
    assert_eq!(shas.last().copied(), Some(outside.as_str()));
    assert_eq!(all["commits"][0]["author"]["login"], "alice");
    assert!(all["commits"][3]["author"].is_null());
    assert_eq!(all["commits"][3]["commit"]["author"]["name"], "Jane Doe");
    assert!(
        all["html_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/acme/frontend/compare/{main}...outside"))
    );
    let page = expect(
        api.send(
            "GET",
            &format!("{REPO}/compare/{main}...outside?per_page=3&page=2"),
            None,
        )
        .await,
        200,
        "compare, page 2",
    );
    assert_eq!(page["total_commits"], 4);
    assert_eq!(page["commits"].as_array().unwrap().len(), 1);
    assert_eq!(page["commits"][0]["sha"], outside.as_str());
    assert_eq!(page["files"], json!([]), "files come with page 1 only");
    for unknown in [
        format!("{main}...no-such-branch"),
        format!("no-such-branch...{head}"),
    ] {
        expect(
            api.send("GET", &format!("{REPO}/compare/{unknown}"), None).await,
            404,
            "compare with an unknown ref",
        );
    }
    let pulls = expect(
        api.send("GET", &format!("{REPO}/commits/{outside}/pulls"), None)
            .await,
        200,
        "PRs of a commit in none",
    );
    assert_eq!(pulls, json!([]));
    expect(
        api.send("GET", &format!("{REPO}/git/ref/heads/feature"), None)
            .await,
        200,
        "ref",
    );
    expect(
        api.send("GET", &format!("{REPO}/git/matching-refs/heads/"), None)
            .await,
        200,
        "matching refs",
    );
    expect(
        api.json(
            "POST",
            &format!("{REPO}/git/refs"),
            json!({"ref": "refs/heads/copy", "sha": head}),
        )
        .await,
        201,
        "create ref",
    );
    expect(
        api.json(
            "PATCH",
            &format!("{REPO}/git/refs/heads/copy"),
            json!({"sha": main, "force": true}),
        )
        .await,
        200,
        "update ref",
    );
    expect(
        api.send("DELETE", &format!("{REPO}/git/refs/heads/copy"), None)
            .await,
        204,
        "delete ref",
    );

    // An open pull request, reviewed and commented on.
    let pr = expect(
        api.json(
            "POST",
            &format!("{REPO}/pulls"),
            json!({"title": "Add a", "head": "feature", "base": "main", "body": "please"}),
        )
        .await,
        201,
        "open PR",
    );
    let number = pr["number"].as_u64().unwrap();
    for (field, what) in [
        ("merged_at", "merged_at"),
        ("closed_at", "closed_at"),
        ("merge_commit_sha", "merge_commit_sha"),
    ] {
        assert!(pr[field].is_null(), "an open PR's {what} is null: {pr:#}");
    }
    expect(
        api.send("GET", &format!("{REPO}/pulls/{number}"), None).await,
        200,
        "get PR",
    );
    expect(
        api.send("GET", &format!("{REPO}/pulls?state=all"), None).await,
        200,
        "list PRs",
    );
    expect(
        api.send("GET", &format!("{REPO}/commits/{head}/pulls"), None)
            .await,
        200,
        "PRs of commit",
    );
    expect(
        api.send("GET", &format!("{REPO}/issues/{number}"), None).await,
        200,
        "issue",
    );
    expect(
        carol
            .json(
                "POST",
                &format!("{REPO}/pulls/{number}/reviews"),
                json!({"event": "APPROVE", "body": "ok"}),
            )
            .await,
        200,
        "review",
    );
    sim.review("acme/frontend", number, "bob", "commented").unwrap();
    expect(
        api.send("GET", &format!("{REPO}/pulls/{number}/reviews"), None)
            .await,
        200,
        "reviews",
    );
    let comment = expect(
        api.json(
            "POST",
            &format!("{REPO}/issues/{number}/comments"),
            json!({"body": "hello"}),
        )
        .await,
        201,
        "comment",
    );
    let comment_id = comment["id"].as_u64().unwrap();
    sim.comment("acme/frontend", number, "bob", "me too").unwrap();
    expect(
        api.send("GET", &format!("{REPO}/issues/{number}/comments"), None)
            .await,
        200,
        "comments",
    );
    expect(
        api.send("GET", &format!("{REPO}/issues/comments/{comment_id}"), None)
            .await,
        200,
        "comment",
    );
    expect(
        api.json(
            "PATCH",
            &format!("{REPO}/issues/comments/{comment_id}"),
            json!({"body": "hello!"}),
        )
        .await,
        200,
        "edit comment",
    );
    expect(
        api.json(
            "POST",
            &format!("{REPO}/issues/comments/{comment_id}/reactions"),
            json!({"content": "+1"}),
        )
        .await,
        201,
        "reaction",
    );
    expect(
        api.send(
            "GET",
            &format!("{REPO}/issues/comments/{comment_id}/reactions"),
            None,
        )
        .await,
        200,
        "reactions",
    );

    // Statuses and check runs on the head.
    expect(
        api.json(
            "POST",
            &format!("{REPO}/statuses/{head}"),
            json!({"state": "success", "context": "ci/build", "target_url": "https://ci.example/1"}),
        )
        .await,
        201,
        "status",
    );
    sim.set_status("acme/frontend", &head, "pending", "ci/lint")
        .unwrap();
    expect(
        api.send("GET", &format!("{REPO}/commits/{head}/status"), None)
            .await,
        200,
        "combined status",
    );
    expect(
        api.send("GET", &format!("{REPO}/commits/{head}/statuses"), None)
            .await,
        200,
        "statuses",
    );
    let run = expect(
        call(
            &sim,
            "POST",
            &format!("{REPO}/check-runs"),
            &token,
            Some(json!({"name": "validate", "head_sha": head, "status": "in_progress"})),
        )
        .await,
        201,
        "check run",
    );
    let run_id = run["id"].as_u64().unwrap();
    expect(
        call(
            &sim,
            "PATCH",
            &format!("{REPO}/check-runs/{run_id}"),
            &token,
            Some(json!({"status": "completed", "conclusion": "success"})),
        )
        .await,
        200,
        "complete check run",
    );
    sim.create_check_run("acme/frontend", &head, "lint").unwrap();
    expect(
        call(&sim, "GET", &format!("{REPO}/check-runs/{run_id}"), &token, None).await,
        200,
        "get check run",
    );
    expect(
        api.send("GET", &format!("{REPO}/commits/{head}/check-runs"), None)
            .await,
        200,
        "check runs",
    );
    let wf = sim
        .create_workflow_run("acme/frontend", "CI", &head, "feature", "alice")
        .unwrap();
    sim.complete_workflow_run("acme/frontend", wf, "success").unwrap();
    expect(
        api.send("GET", &format!("{REPO}/actions/runs"), None).await,
        200,
        "workflow runs",
    );
    expect(
        api.send("GET", &format!("{REPO}/actions/runs/{wf}"), None).await,
        200,
        "workflow run",
    );

    // Branch protection, then the merge.
    sim.protect_branch(
        "acme/frontend",
        "main",
        Protection {
            required_status_checks: vec!["ci/build".into()],
            required_approving_review_count: 1,
            ..Default::default()
        },
    )
    .unwrap();
    expect(
        api.send("GET", &format!("{REPO}/branches/main/protection"), None)
            .await,
        200,
        "protection",
    );
    expect(
        api.send("GET", &format!("{REPO}/branches/main"), None).await,
        200,
        "protected branch",
    );
    expect(
        api.json(
            "PUT",
            &format!("{REPO}/pulls/{number}/merge"),
            json!({"merge_method": "merge"}),
        )
        .await,
        200,
        "merge",
    );
    expect(
        api.send("GET", &format!("{REPO}/pulls/{number}"), None).await,
        200,
        "merged PR",
    );

    // A second pull request, closed unmerged.
    sim.push("acme/frontend", "other", &[("b.txt", "b\n")], "Add b", "alice")
        .unwrap();
    let other = sim
        .open_pr("acme/frontend", "other", "main", "Add b", "alice")
        .unwrap();
    expect(
        api.json(
            "PATCH",
            &format!("{REPO}/pulls/{other}"),
            json!({"state": "closed"}),
        )
        .await,
        200,
        "close PR",
    );

    // Deployments and their statuses.
    let deployment = expect(
        api.json(
            "POST",
            &format!("{REPO}/deployments"),
            json!({"ref": "main", "environment": "production", "auto_merge": false, "required_contexts": []}),
        )
        .await,
        201,
        "deployment",
    );
    let deployment_id = deployment["id"].as_u64().unwrap();
    expect(
        api.json(
            "POST",
            &format!("{REPO}/deployments/{deployment_id}/statuses"),
            json!({"state": "success", "environment_url": "https://app.example", "log_url": "https://ci.example/2"}),
        )
        .await,
        201,
        "deployment status",
    );
    expect(
        api.send("GET", &format!("{REPO}/deployments"), None).await,
        200,
        "deployments",
    );
    expect(
        api.send("GET", &format!("{REPO}/deployments/{deployment_id}"), None)
            .await,
        200,
        "get deployment",
    );
    expect(
        api.send(
            "GET",
            &format!("{REPO}/deployments/{deployment_id}/statuses"),
            None,
        )
        .await,
        200,
        "deployment statuses",
    );

    // Errors are answered in GitHub's shape too.
    expect(
        api.send("GET", "/repos/acme/nope", None).await,
        404,
        "missing repo",
    );
    expect(
        api.send("GET", &format!("{REPO}/pulls/999"), None).await,
        404,
        "missing PR",
    );

    sim
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_representative_scenario_answers_only_what_githubs_response_schemas_allow() {
    let sim = representative_scenario().await;
    let violations = sim.response_violations();
    assert!(
        violations.is_empty(),
        "{} violations:\n{}",
        violations.len(),
        violations.join("\n")
    );
}

/// The webhook schemas' key for an event and action: `pull_request` + `opened` →
/// `pull-request-opened`.
fn webhook_key(event: &str, action: Option<&str>) -> String {
    let mut key = event.replace('_', "-");
    if let Some(action) = action {
        key.push('-');
        key.push_str(&action.replace('_', "-"));
    }
    key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhooks_of_that_scenario_are_what_githubs_webhook_schemas_allow() {
    let spec = webhook_spec();
    let sim = representative_scenario().await;
    let deliveries = sim.deliveries();
    assert!(
        deliveries.len() >= 5,
        "the scenario sends webhooks: {}",
        deliveries.len()
    );
    let mut checked = std::collections::BTreeSet::new();
    let mut violations = Vec::new();
    for d in &deliveries {
        let key = webhook_key(&d.event, d.action.as_deref());
        let pointer = format!("/webhooks/{key}/post/requestBody/content/application~1json/schema");
        let Some(schema) = spec.pointer(&pointer) else {
            violations.push(format!("{key}: no such webhook in GitHub's schemas"));
            continue;
        };
        let schema = github_sim::contract::inline_schema(&spec, schema).unwrap();
        for v in github_sim::contract::violations(&schema, &d.payload) {
            violations.push(format!("{key}: {v}"));
        }
        checked.insert(key);
    }
    eprintln!("webhooks checked: {checked:?}");
    assert!(
        violations.is_empty(),
        "{} violations:\n{}",
        violations.len(),
        violations.join("\n")
    );
}

/// GitHub's webhook schemas, fetched by `scripts/fetch-specs`.
fn webhook_spec() -> Value {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/specs/openapi-webhooks/api.github.com.json");
    let text = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}. GitHub's webhook schemas are fetched by scripts/fetch-specs",
            path.display()
        )
    });
    serde_json::from_slice(&text).unwrap()
}
