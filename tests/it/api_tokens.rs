//! Scoped API tokens (design §17): each `AUGER_API_TOKENS` entry grants one verb on some apps;
//! a request outside its grants is a JSON 403 and changes nothing.

use crate::support::server::Server;
use crate::support::{Setup, Stack, wait_for, web_policy};

const DIRECT: &str = r#"
[env.dev]
merge = "direct"
"#;

/// `ci` may release `web` only, `ro` may only read, `ops` (the helpers' `test-token`) may do
/// everything.
const SCOPED: &str = "ci:ci-secret:releases:write@web;ro:ro-secret:read;ops:test-token:*";

/// A second app, `api`, beside the stack's `web`.
fn add_api_app(stack: &mut Stack) {
    let policy = web_policy(DIRECT)
        .replace("app = \"web\"", "app = \"api\"")
        .replace("repo = \"acme/web\"", "repo = \"acme/api\"");
    std::fs::write(stack.setup.path().join("policies/api.toml"), policy).unwrap();
    stack.restart(&[("AUGER_API_TOKENS", SCOPED)]);
}

#[test]
fn a_token_scoped_to_web_releases_web_and_is_refused_api_with_nothing_written() {
    let mut stack = Stack::start_with(&web_policy(DIRECT), "", &[("AUGER_API_TOKENS", SCOPED)]);
    add_api_app(&mut stack);
    let sha = stack.green_main("v1");
    let commits_before = stack.gitops_log("%H").len();

    // The same token, the other app: 403 before anything is queued.
    let api_body = serde_json::json!({ "app": "api", "env": "dev", "artifact": sha });
    let (code, answer) = stack
        .server
        .post("/api/v1/releases", Some("ci-secret"), &api_body);
    assert_eq!(code, 403, "{answer}");
    assert_eq!(answer["error"], "token ci may not touch app api");
    let (code, answer) = stack.server.post(
        "/api/v1/rollbacks",
        Some("ci-secret"),
        &serde_json::json!({ "app": "api", "env": "dev" }),
    );
    assert_eq!(code, 403, "{answer}");

    // Its own app goes out.
    let web_body = serde_json::json!({ "app": "web", "env": "dev", "artifact": sha });
    let (code, answer) = stack
        .server
        .post("/api/v1/releases", Some("ci-secret"), &web_body);
    assert_eq!(code, 202, "{answer}");
    assert_eq!(answer["trigger"], "api ci");
    stack.settle();
    wait_for("dev released", || {
        stack.live("dev").as_deref() == Some(sha.as_str())
    });
    assert_eq!(
        stack.gitops_log("%H").len(),
        commits_before + 1,
        "only web's release"
    );
    assert!(stack.gitops_file("dev/api/release.json").is_none());

    // `ci` has no `read`: reading is refused too.
    let resp = reqwest::blocking::Client::new()
        .get(format!("{}/api/v1/artifacts?app=web", stack.server.url))
        .bearer_auth("ci-secret")
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let answer: serde_json::Value = resp.json().unwrap();
    assert_eq!(answer["error"], "token ci lacks the verb read");
}

#[test]
fn a_read_token_reads_but_cannot_post() {
    let setup = Setup::new(&[("hello", "Codertocat/Hello-World", "\"status:default\"")], "");
    let server = setup.start_with_env(&[("AUGER_API_TOKENS", SCOPED)]);
    let artifact = serde_json::json!({ "app": "hello", "sha": "abc0000000000000000000000000000000000001" });
    let (code, answer) = server.post("/api/v1/artifacts", Some("ro-secret"), &artifact);
    assert_eq!(code, 403, "{answer}");
    assert_eq!(answer["error"], "token ro lacks the verb artifacts:write");
    let read = |token: &str| {
        let resp = reqwest::blocking::Client::new()
            .get(format!("{}/api/v1/artifacts?app=hello", server.url))
            .bearer_auth(token)
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.text().unwrap())
    };
    assert_eq!(read("ro-secret"), (200, "[]".into()), "nothing was written");
    let (code, answer) = server.post(
        "/api/v1/artifacts/hello@abc0000000000/reject",
        Some("ro-secret"),
        &serde_json::json!({}),
    );
    assert_eq!(code, 403, "{answer}");
    assert_eq!(answer["error"], "token ro lacks the verb releases:write");
    // `*` writes.
    let (code, answer) = server.post("/api/v1/artifacts", Some("test-token"), &artifact);
    assert_eq!(code, 201, "{answer}");
    assert_eq!(read("ro-secret").0, 200);
}

#[test]
fn old_comma_separated_tokens_still_allow_everything() {
    let setup = Setup::new(&[("hello", "Codertocat/Hello-World", "\"status:default\"")], "");
    let server = setup.start_with_env(&[("AUGER_API_TOKENS", "ci:test-token,other:second")]);
    let artifact = serde_json::json!({ "app": "hello", "sha": "abc0000000000000000000000000000000000001" });
    let (code, answer) = server.post("/api/v1/artifacts", Some("second"), &artifact);
    assert_eq!(code, 201, "{answer}");
    assert_eq!(answer["artifact"]["source"]["name"], "other");
    let (code, text) = server.get("/api/v1/artifacts?app=hello");
    assert_eq!(code, 200, "{text}");
}

#[test]
fn a_malformed_token_list_stops_the_start_naming_the_variable_and_entry_not_the_secret() {
    let setup = Setup::new(&[], "");
    let out = Server::command(setup.path())
        .env("AUGER_API_TOKENS", "ops:fine:*;ci:hunter2:write@web")
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("AUGER_API_TOKENS") && stderr.contains("entry 2 (ci)"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "the secret leaked: {stderr}");
}
