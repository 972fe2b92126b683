//! The simulator against GitHub's OpenAPI description: its routes exist there, its checked-in
//! subset is what the generator makes of the pinned description, and request bodies that break
//! the description get GitHub's 422 while conforming ones still work.

use std::path::PathBuf;

use crate::common::{Api, seeded};
use github_sim::SimConfig;
use github_sim::contract::{self, SUBSET_JSON, SUBSET_PATH, SUPPORTED_KEYWORDS};
use serde_json::{Value, json};

/// Where `scripts/fetch-specs` puts GitHub's description.
fn spec_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/specs/openapi")
}

/// GitHub's full (unresolved) description, fetched by `scripts/fetch-specs`.
fn full_spec() -> (Value, String) {
    let path = spec_dir().join("api.github.com.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}. GitHub's OpenAPI description is fetched by scripts/fetch-specs \
             (scripts/test runs it before cargo test)",
            path.display()
        )
    });
    let version = std::fs::read_to_string(spec_dir().join("VERSION"))
        .expect("target/specs/openapi/VERSION: run scripts/fetch-specs");
    (
        serde_json::from_str(&text).unwrap(),
        format!("@octokit/openapi {}", version.trim()),
    )
}

#[test]
fn every_route_the_simulator_serves_is_an_operation_of_githubs_description() {
    let (spec, _) = full_spec();
    let routes = github_sim::served_routes();
    assert!(routes.len() > 40, "the router lists its routes: {routes:?}");
    let missing: Vec<String> = routes
        .iter()
        .filter(|(method, path)| spec["paths"][path][method.to_ascii_lowercase()].is_null())
        .map(|(method, path)| format!("{method} {path}"))
        .collect();
    assert!(
        missing.is_empty(),
        "the simulator serves routes GitHub's description does not have: {missing:?}"
    );
}

#[test]
fn the_checked_in_subset_is_what_scripts_spec_subset_makes_of_the_pinned_description() {
    let (spec, source) = full_spec();
    let generated = contract::generate_subset(&spec, &source, &github_sim::served_routes()).unwrap();
    if generated != SUBSET_JSON {
        // Name the first operation that differs rather than print half a megabyte.
        let differing = generated
            .lines()
            .zip(SUBSET_JSON.lines())
            .find(|(a, b)| a != b)
            .map(
                |(a, _)| match serde_json::from_str::<Value>(a.trim_end_matches(',')) {
                    Ok(op) => format!("{} {}", op["method"], op["path"]),
                    Err(_) => a.chars().take(160).collect(),
                },
            );
        panic!(
            "crates/github-sim/{SUBSET_PATH} is not what scripts/spec-subset generates from \
             {source}; run scripts/spec-subset. First difference: {differing:?}"
        );
    }
}

/// Every keyword a request schema in the subset uses is one the validator enforces.
#[test]
fn the_validator_knows_every_keyword_of_the_served_request_bodies() {
    fn keywords(schema: &Value, found: &mut Vec<String>) {
        let Some(obj) = schema.as_object() else {
            return;
        };
        for (key, value) in obj {
            found.push(key.clone());
            match key.as_str() {
                "properties" => value
                    .as_object()
                    .into_iter()
                    .flatten()
                    .for_each(|(_, s)| keywords(s, found)),
                "oneOf" | "anyOf" | "allOf" => value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .for_each(|s| keywords(s, found)),
                "items" | "not" | "additionalProperties" => keywords(value, found),
                _ => {}
            }
        }
    }
    let subset: Value = serde_json::from_str(SUBSET_JSON).unwrap();
    let mut found = Vec::new();
    let mut bodies = 0;
    for op in subset["operations"].as_array().unwrap() {
        if let Some(schema) = op.pointer("/requestBody/schema") {
            bodies += 1;
            keywords(schema, &mut found);
        }
    }
    assert!(bodies >= 14, "request bodies in the subset: {bodies}");
    found.sort();
    found.dedup();
    let unknown: Vec<&String> = found
        .iter()
        .filter(|k| !SUPPORTED_KEYWORDS.contains(&k.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "request schemas use keywords the validator ignores: {unknown:?}"
    );
}

fn assert_invalid(answer: &(u16, Value), what: &str, docs: &str) {
    let (status, body) = answer;
    assert_eq!(*status, 422, "{body}");
    assert_eq!(body["message"], format!("Invalid request.\n\n{what}"), "{body}");
    assert_eq!(body["documentation_url"], docs, "{body}");
    assert_eq!(body["status"], "422");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_status_with_a_null_url_is_refused_as_github_refuses_it() {
    let sim = seeded(SimConfig::default());
    let api = Api::new(&sim, "alice");
    let (status, dep) = api
        .json(
            "POST",
            "/repos/acme/frontend/deployments",
            json!({"ref": "main", "environment": "production", "description": null, "payload": {"v": 1}}),
        )
        .await;
    assert_eq!(status, 201, "{dep}");
    let statuses = format!("/repos/acme/frontend/deployments/{}/statuses", dep["id"]);
    let docs = "https://docs.github.com/rest/deployments/statuses#create-a-deployment-status";

    let refused = api
        .json(
            "POST",
            &statuses,
            json!({"state": "inactive", "environment_url": null}),
        )
        .await;
    assert_invalid(
        &refused,
        "For 'properties/environment_url', nil is not a string.",
        docs,
    );
    let refused = api
        .json(
            "POST",
            &statuses,
            json!({"state": "failure", "log_url": null, "environment_url": null}),
        )
        .await;
    assert_invalid(
        &refused,
        "For 'properties/environment_url', nil is not a string.\nFor 'properties/log_url', nil is not a string.",
        docs,
    );
    let refused = api.json("POST", &statuses, json!({"state": "destroyed"})).await;
    assert_invalid(
        &refused,
        "For 'properties/state', \"destroyed\" is not a member of [\"error\", \"failure\", \"inactive\", \"in_progress\", \"queued\", \"pending\", \"success\"].",
        docs,
    );
    // A required body that is missing altogether.
    let refused = api.send("POST", &statuses, None).await;
    assert_invalid(&refused, "For 'links/0/schema', nil is not an object.", docs);
    assert!(sim.deployments("acme/frontend").unwrap()[0].statuses.is_empty());

    let (status, body) = api
        .json(
            "POST",
            &statuses,
            json!({"state": "success", "environment_url": "https://frontend.example", "log_url": "https://ci.example/1"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["environment_url"], "https://frontend.example");
    assert_eq!(sim.deployments("acme/frontend").unwrap()[0].statuses.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_status_outside_the_enum_is_refused_and_nullable_fields_take_null() {
    let sim = seeded(SimConfig::default());
    let api = Api::new(&sim, "alice");
    let sha = sim.branch_sha("acme/frontend", "main").unwrap();
    let path = format!("/repos/acme/frontend/statuses/{sha}");
    let refused = api
        .json("POST", &path, json!({"state": "bogus", "context": "ci/build"}))
        .await;
    assert_invalid(
        &refused,
        "For 'properties/state', \"bogus\" is not a member of [\"error\", \"failure\", \"pending\", \"success\"].",
        "https://docs.github.com/rest/commits/statuses#create-a-commit-status",
    );
    let refused = api.json("POST", &path, json!({"context": 7})).await;
    assert_invalid(
        &refused,
        "\"state\" wasn't supplied.\nFor 'properties/context', 7 is not a string.",
        "https://docs.github.com/rest/commits/statuses#create-a-commit-status",
    );
    assert!(sim.statuses("acme/frontend", &sha).unwrap().is_empty());

    // `target_url` and `description` are nullable in the description.
    let (status, body) = api
        .json(
            "POST",
            &path,
            json!({"state": "success", "context": "ci/build", "target_url": null, "description": null}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(sim.statuses("acme/frontend", &sha).unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_without_head_is_refused_and_edits_are_checked_even_when_posted() {
    let sim = seeded(SimConfig::default());
    sim.push("acme/frontend", "feature", &[("a.txt", "a")], "feature", "alice")
        .unwrap();
    let api = Api::new(&sim, "alice");
    let docs = "https://docs.github.com/rest/pulls/pulls#create-a-pull-request";
    let refused = api
        .json(
            "POST",
            "/repos/acme/frontend/pulls",
            json!({"title": "t", "base": "main"}),
        )
        .await;
    assert_invalid(&refused, "\"head\" wasn't supplied.", docs);
    let refused = api
        .json(
            "POST",
            "/repos/acme/frontend/pulls",
            json!({"title": null, "head": "feature", "base": "main"}),
        )
        .await;
    assert_invalid(&refused, "For 'properties/title', nil is not a string.", docs);
    assert!(sim.pulls("acme/frontend").unwrap().is_empty());

    let (status, pr) = api
        .json(
            "POST",
            "/repos/acme/frontend/pulls",
            json!({"title": "Add a", "head": "feature", "base": "main", "body": "b", "draft": false}),
        )
        .await;
    assert_eq!(status, 201, "{pr}");
    let n = pr["number"].as_u64().unwrap();

    // PATCH and the POST GitHub takes for it share the operation's schema.
    let pull = format!("/repos/acme/frontend/pulls/{n}");
    let update_docs = "https://docs.github.com/rest/pulls/pulls#update-a-pull-request";
    for method in ["PATCH", "POST"] {
        let refused = api.json(method, &pull, json!({"state": "merged"})).await;
        assert_invalid(
            &refused,
            "For 'properties/state', \"merged\" is not a member of [\"open\", \"closed\"].",
            update_docs,
        );
    }
    assert!(sim.pull("acme/frontend", n).unwrap().open);
    let (status, body) = api.json("POST", &pull, json!({"state": "closed"})).await;
    assert_eq!(status, 200, "{body}");
    assert!(!sim.pull("acme/frontend", n).unwrap().open);

    // A merge's body is optional; a wrong merge method is not.
    let refused = api
        .json(
            "PUT",
            &format!("{pull}/merge"),
            json!({"merge_method": "octopus"}),
        )
        .await;
    assert_eq!(refused.0, 422, "{}", refused.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_reactions_refs_and_check_runs_are_held_to_their_schemas() {
    let sim = seeded(SimConfig::default());
    sim.push("acme/frontend", "feature", &[("a.txt", "a")], "feature", "alice")
        .unwrap();
    let n = sim
        .open_pr("acme/frontend", "feature", "main", "Add a", "alice")
        .unwrap();
    let api = Api::new(&sim, "alice");
    let comments = format!("/repos/acme/frontend/issues/{n}/comments");
    let refused = api.json("POST", &comments, json!({"body": null})).await;
    assert_invalid(
        &refused,
        "For 'properties/body', nil is not a string.",
        "https://docs.github.com/rest/issues/comments#create-an-issue-comment",
    );
    let (status, c) = api.json("POST", &comments, json!({"body": "hi"})).await;
    assert_eq!(status, 201, "{c}");
    let reactions = format!("/repos/acme/frontend/issues/comments/{}/reactions", c["id"]);
    let refused = api.json("POST", &reactions, json!({"content": "thumbsup"})).await;
    assert_eq!(refused.0, 422, "{}", refused.1);
    let (status, _) = api.json("POST", &reactions, json!({"content": "+1"})).await;
    assert_eq!(status, 201);

    let main = sim.branch_sha("acme/frontend", "main").unwrap();
    let refused = api
        .json(
            "POST",
            "/repos/acme/frontend/git/refs",
            json!({"ref": "refs/heads/x"}),
        )
        .await;
    assert_invalid(
        &refused,
        "\"sha\" wasn't supplied.",
        "https://docs.github.com/rest/git/refs#create-a-reference",
    );
    let (status, _) = api
        .json(
            "POST",
            "/repos/acme/frontend/git/refs",
            json!({"ref": "refs/heads/x", "sha": main}),
        )
        .await;
    assert_eq!(status, 201);
    let refused = api
        .json(
            "PATCH",
            "/repos/acme/frontend/git/refs/heads/x",
            json!({"sha": main, "force": "yes"}),
        )
        .await;
    assert_eq!(refused.0, 422, "{}", refused.1);

    // Check runs: an installation token, and a completed run needs its conclusion.
    let app = Api {
        url: sim.url().to_string(),
        token: sim.create_installation_token(),
        client: reqwest::Client::new(),
    };
    let (status, run) = app
        .json(
            "POST",
            "/repos/acme/frontend/check-runs",
            json!({"name": "lint", "head_sha": main}),
        )
        .await;
    assert_eq!(status, 201, "{run}");
    let run_path = format!("/repos/acme/frontend/check-runs/{}", run["id"]);
    let refused = app.json("PATCH", &run_path, json!({"status": "completed"})).await;
    assert_invalid(
        &refused,
        "No subschema in \"anyOf\" matched.",
        "https://docs.github.com/rest/checks/runs#update-a-check-run",
    );
    let (status, body) = app
        .json(
            "PATCH",
            &run_path,
            json!({"status": "completed", "conclusion": "success"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_json_is_a_400_and_errors_name_the_operations_documentation() {
    let sim = seeded(SimConfig::default());
    let api = Api::new(&sim, "alice");
    let (status, body) = api
        .send("POST", "/repos/acme/frontend/pulls", Some("{\"head\": "))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Problems parsing JSON")
    );

    let (status, body) = api.send("GET", "/repos/acme/frontend/pulls/99", None).await;
    assert_eq!(status, 404);
    assert_eq!(
        body["documentation_url"],
        "https://docs.github.com/rest/pulls/pulls#get-a-pull-request"
    );
    // Routes GitHub's description lacks are not served (the legacy prefix listing of refs).
    let (status, body) = api.send("GET", "/repos/acme/frontend/git/refs/heads", None).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["documentation_url"], "https://docs.github.com/rest");
}
