//! The composite GitHub Action (`action.yml`, design §17): its step, `scripts/action-record.sh`,
//! run with bash the way a runner runs it (INPUT_* and GITHUB_* variables) against a running
//! auger, recording through the real API.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::Setup;
use crate::support::server::{BEARER, Server};

const SHA: &str = "abc0000000000000000000000000000000000001";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The action's step with `inputs` (name, value) as action.yml maps them, on a runner that
/// built `SHA` of Codertocat/Hello-World for a push to main; `GITHUB_OUTPUT` is `output`.
fn run_step(server: &Server, inputs: &[(&str, &str)], output: &Path) -> Output {
    step(server, inputs, output, None)
}

/// [`run_step`] on a runner whose workspace (the checkout) is `workspace`, if any.
fn step(server: &Server, inputs: &[(&str, &str)], output: &Path, workspace: Option<&str>) -> Output {
    let mut cmd = Command::new("bash");
    cmd.arg(repo_root().join("scripts/action-record.sh"))
        .env("INPUT_SERVER", &server.url)
        .env("GITHUB_SHA", SHA)
        .env("GITHUB_REPOSITORY", "Codertocat/Hello-World")
        .env("GITHUB_REF_NAME", "main")
        .env("GITHUB_REF_TYPE", "branch")
        .env("GITHUB_OUTPUT", output);
    // Whatever the machine running the tests has, the step sees only what a runner would set.
    for name in [
        "TOKEN",
        "APP",
        "VARS",
        "SHA",
        "REPO",
        "BRANCH",
        "TAGS",
        "COMMITTED",
    ] {
        cmd.env_remove(format!("INPUT_{name}"));
    }
    match workspace {
        Some(dir) => cmd.env("GITHUB_WORKSPACE", dir),
        None => cmd.env_remove("GITHUB_WORKSPACE"),
    };
    for (name, value) in inputs {
        cmd.env(format!("INPUT_{}", name.to_ascii_uppercase()), value);
    }
    cmd.output().unwrap()
}

#[test]
fn action_yml_hands_every_input_to_the_script() {
    let text = std::fs::read_to_string(repo_root().join("action.yml")).unwrap();
    assert!(text.contains("using: composite"), "{text}");
    assert!(
        text.contains(r#"run: bash "${{ github.action_path }}/scripts/action-record.sh""#),
        "{text}"
    );
    for input in [
        "server",
        "token",
        "app",
        "vars",
        "sha",
        "repo",
        "branch",
        "tags",
        "committed",
    ] {
        assert!(
            text.contains(&format!("\n  {input}:\n")),
            "input {input} not declared"
        );
        let mapped = format!("INPUT_{}: ${{{{ inputs.{input} }}}}", input.to_ascii_uppercase());
        assert!(text.contains(&mapped), "{mapped} missing");
    }
}

#[test]
fn the_action_records_an_artifact_with_its_vars_and_the_pushed_branch() {
    let setup = Setup::new(&[("hello", "Codertocat/Hello-World", "\"status:default\"")], "");
    let server = setup.start();
    let output = setup.path().join("github-output");
    let vars = "image=ghcr.io/codertocat/hello:abc\n\n digest =sha256:x=y\r\n";
    let out = run_step(
        &server,
        &[
            ("token", BEARER),
            ("app", "hello"),
            ("vars", vars),
            ("tags", "v1.0.0, v1"),
        ],
        &output,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let written = std::fs::read_to_string(&output).unwrap();
    let id = written
        .trim()
        .strip_prefix("id=")
        .unwrap_or_else(|| panic!("{written}"));
    assert!(id.starts_with("hello@abc"), "{id}");

    let artifact = server.artifact(id).expect("the artifact is recorded");
    let got = |k: &str| artifact[k].clone();
    assert_eq!(got("sha"), SHA, "{artifact:#}");
    assert_eq!(
        got("vars")["image"],
        "ghcr.io/codertocat/hello:abc",
        "{artifact:#}"
    );
    assert_eq!(got("vars")["digest"], "sha256:x=y", "{artifact:#}");
    assert_eq!(got("repo"), "Codertocat/Hello-World", "{artifact:#}");
    assert_eq!(got("branches"), serde_json::json!(["main"]), "{artifact:#}");
    assert_eq!(got("tags"), serde_json::json!(["v1.0.0", "v1"]), "{artifact:#}");
}

#[test]
fn a_wrong_token_or_a_bad_vars_line_fails_the_step_with_the_reason_and_records_nothing() {
    let setup = Setup::new(&[("hello", "Codertocat/Hello-World", "\"status:default\"")], "");
    let server = setup.start();
    let output = setup.path().join("github-output");

    // auger's own answer to that token, which the step must print.
    let body = serde_json::json!({ "app": "hello", "sha": SHA });
    let (code, answer) = server.post("/api/v1/artifacts", Some("not-the-token"), &body);
    assert_eq!(code, 401, "{answer}");
    let error = answer["error"].as_str().unwrap().to_owned();

    let out = run_step(&server, &[("token", "not-the-token"), ("app", "hello")], &output);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("HTTP 401: {error}")), "{stderr}");

    let out = run_step(
        &server,
        &[
            ("token", BEARER),
            ("app", "hello"),
            ("vars", "image=x\nno equals sign"),
        ],
        &output,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("vars line 2 is not KEY=VALUE: no equals sign"),
        "{stderr}"
    );

    assert!(!output.exists(), "no id was written");
    let (code, text) = server.get("/api/v1/artifacts?app=hello");
    assert_eq!((code, text.as_str()), (200, "[]"), "nothing was recorded");
}

#[test]
fn the_action_sends_the_commit_time_from_the_checkout_or_its_input() {
    let setup = Setup::new(&[("hello", "Codertocat/Hello-World", "\"status:default\"")], "");
    let server = setup.start();
    // A checkout whose commit was made at a known time, as actions/checkout leaves it.
    let checkout = setup.path().join("checkout");
    std::fs::create_dir_all(&checkout).unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .arg("-C")
            .arg(&checkout)
            .args(args)
            .env("GIT_COMMITTER_DATE", "2026-11-30T10:00:00+01:00")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    git(&["init", "-q"]);
    git(&["commit", "-q", "--allow-empty", "-m", "build me"]);
    let sha = git(&["rev-parse", "HEAD"]);
    let committed = |artifact: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(
            artifact["committed"]
                .as_str()
                .unwrap_or_else(|| panic!("{artifact:#}")),
        )
        .unwrap()
    };

    let output = setup.path().join("out-1");
    let workspace = checkout.to_str().unwrap();
    let out = run_step(
        &server,
        &[("token", BEARER), ("app", "hello"), ("sha", &sha)],
        &output,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Without the checkout (GITHUB_WORKSPACE unset, the commit unknown here) no time is sent.
    let id = format!("hello@{}", &sha[..12]);
    assert!(server.artifact(&id).unwrap()["committed"].is_null());

    let mut cmd_env = vec![("token", BEARER), ("app", "hello"), ("sha", sha.as_str())];
    let out = step(&server, &cmd_env, &output, Some(workspace));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let artifact = server.artifact(&id).unwrap();
    assert_eq!(
        committed(&artifact),
        chrono::DateTime::parse_from_rfc3339("2026-11-30T09:00:00Z").unwrap(),
        "{artifact:#}"
    );

    // The input wins over the checkout (the first value recorded stands, so a new commit).
    git(&["commit", "-q", "--allow-empty", "-m", "again"]);
    let second = git(&["rev-parse", "HEAD"]);
    cmd_env[2] = ("sha", second.as_str());
    cmd_env.push(("committed", "2026-01-02T03:04:05Z"));
    let out = step(&server, &cmd_env, &output, Some(workspace));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let artifact = server.artifact(&format!("hello@{}", &second[..12])).unwrap();
    assert_eq!(
        committed(&artifact),
        chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z").unwrap()
    );
}
