//! The release loop end to end: the GitHub simulator sends signed webhooks to a running
//! `auger serve`, which writes the gitops repository (a real bare repository the simulator
//! hosts), opens and merges pull requests through the GitHub API, and reports back with
//! commit statuses. Everything is checked where a user would look: GitHub's state and plain
//! `git` on the gitops and ledger repositories.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::support::{API_TOKEN, SECRET, Server, Setup, git};
use github_sim::{GithubSim, SimConfig};

pub const GITOPS: &str = "acme/gitops";

/// The simulator with people, teams, the source and gitops repositories, and a running auger
/// configured against them.
pub struct Stack {
    pub sim: GithubSim,
    pub setup: Setup,
    pub server: Server,
    pub gitops_dir: PathBuf,
    /// auger's GitHub token, for CLI runs beside the server.
    pub token: String,
}

impl Stack {
    pub fn start(policy: &str) -> Stack {
        Stack::start_with(policy, "", &[])
    }

    /// With extra `auger.toml` text and environment variables for the server.
    pub fn start_with(policy: &str, extra_config: &str, env: &[(&str, &str)]) -> Stack {
        let sim = GithubSim::start(SimConfig::default()).unwrap();
        sim.create_org("acme").unwrap();
        for user in ["alice", "mallory", "sre1", "sre2", "sre3", "auger"] {
            sim.create_user(user).unwrap();
        }
        // alice writes the code and is also on the SRE team: her own approval must not count.
        sim.create_team("acme", "sre", &["sre1", "sre2", "sre3", "alice"])
            .unwrap();
        sim.create_repo("acme/web").unwrap();
        let gitops = sim.create_repo(GITOPS).unwrap();
        sim.push(GITOPS, "main", &[("README.md", "gitops\n")], "init", "alice")
            .unwrap();
        for repo in ["acme/web", GITOPS] {
            sim.set_permission(repo, "auger", "write").unwrap();
            sim.set_permission(repo, "alice", "write").unwrap();
        }
        let token = sim.create_token("auger").unwrap();
        let setup = Setup::new(
            &[],
            &format!(
                "[github]\napi_url = \"{}\"\ntoken_env = \"GITHUB_TOKEN\"\n[gitops]\nrepo = \"{GITOPS}\"\nurl = \"{}\"\nbranch = \"main\"\n[api]\ntokens_env = \"AUGER_API_TOKENS\"\n{extra_config}",
                sim.url(),
                gitops.clone_url
            ),
        );
        std::fs::write(setup.path().join("policies/web.toml"), policy).unwrap();
        let mut vars = vec![("GITHUB_TOKEN", token.as_str())];
        vars.extend_from_slice(env);
        let server = setup.start_with_env(&vars);
        sim.set_webhook(Some(&format!("{}/webhooks/github", server.url)), SECRET);
        let gitops_dir = sim.repo_path(GITOPS).unwrap();
        Stack {
            sim,
            setup,
            server,
            gitops_dir,
            token,
        }
    }

    /// Every webhook delivered and every inbox entry worked off.
    pub fn settle(&self) {
        assert!(self.sim.wait_deliveries());
        self.server.wait_idle();
    }

    /// A commit on main of acme/web whose CI turned green.
    pub fn green_main(&self, content: &str) -> String {
        let sha = self
            .sim
            .push(
                "acme/web",
                "main",
                &[("app.txt", content)],
                &format!("feat: {content}"),
                "alice",
            )
            .unwrap();
        self.sim
            .set_status("acme/web", &sha, "success", "ci/build")
            .unwrap();
        self.settle();
        sha
    }

    pub fn auger_pulls(&self, branch: &str) -> Vec<github_sim::PullRequest> {
        self.sim
            .pulls(GITOPS)
            .unwrap()
            .into_iter()
            .filter(|p| p.head_ref == branch)
            .collect()
    }

    pub fn status(&self, sha: &str, context: &str) -> Option<(String, String)> {
        self.sim
            .statuses("acme/web", sha)
            .unwrap()
            .into_iter()
            .filter(|s| s.context == context)
            .max_by_key(|s| s.id)
            .map(|s| (s.state, s.description.unwrap_or_default()))
    }

    /// A file of the gitops repository's main branch, read with plain git.
    pub fn gitops_file(&self, path: &str) -> Option<String> {
        let out = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(&self.gitops_dir)
            .args(["show", &format!("main:{path}")])
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn gitops_log(&self, format: &str) -> Vec<String> {
        git(&self.gitops_dir, &["log", &format!("--format={format}"), "main"])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The source sha the ledger's `refs/auger/envs/<env>/web` names.
    pub fn live(&self, env: &str) -> Option<String> {
        let text = git(
            &self.setup.ledger(),
            &["show", &format!("refs/auger/envs/{env}/web:artifact.json")],
        );
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        v["sha"].as_str().map(str::to_owned)
    }

    pub fn post(&self, path: &str, token: Option<&str>, body: serde_json::Value) -> (u16, serde_json::Value) {
        let mut req = reqwest::blocking::Client::new()
            .post(format!("{}{path}", self.server.url))
            .json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().unwrap();
        let code = resp.status().as_u16();
        (code, resp.json().unwrap_or(serde_json::Value::Null))
    }
}

pub fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn release_json(stack: &Stack, env: &str) -> serde_json::Value {
    let text = stack
        .gitops_file(&format!("{env}/web/release.json"))
        .unwrap_or_else(|| panic!("no {env}/web/release.json on main"));
    serde_json::from_str(&text).unwrap()
}

const STAGING_AND_QA: &str = r#"
app = "web"
repo = "acme/web"
template = "web"

[artifact]
signals = ["status:ci/build"]

[vars]
image = "ghcr.io/acme/web:{{ artifact.sha }}"

[env.staging]
auto = { branch = "main" }
merge = "auto"

[env.qa]
auto = { branch = "main" }
merge = "approval"
approvals = 1
approvers = ["user:sre1"]
"#;

/// CI turns main green → the staging PR is opened and merged by auger → `staging/web/` holds
/// the rendered files and release.json → status `auger/staging` is success on the source
/// commit → the ledger's env ref names the artifact. Meanwhile the qa PR waits for approval,
/// and a newer main build updates that same PR instead of opening a second one.
#[test]
fn main_green_releases_staging_through_a_merged_pr_and_a_newer_build_updates_the_waiting_qa_pr() {
    let stack = Stack::start(STAGING_AND_QA);
    let first = stack.green_main("v1");

    wait_for("the staging release on main", || stack.live("staging").is_some());
    let staging = stack.auger_pulls("auger/staging/web");
    assert_eq!(staging.len(), 1, "one staging PR");
    assert!(staging[0].merged, "merged by auger at once (merge = auto)");
    assert_eq!(
        stack.gitops_file("staging/web/deployment.yaml").unwrap(),
        format!("image: ghcr.io/acme/web:{first}\n")
    );
    let record = release_json(&stack, "staging");
    assert_eq!(record["artifact"], format!("web@{}", &first[..12]));
    assert_eq!(record["trigger"], "policy");
    assert_eq!(stack.live("staging").as_deref(), Some(first.as_str()));
    let (state, _) = stack.status(&first, "auger/staging").unwrap();
    assert_eq!(state, "success");
    // One GitHub deployment for the release: in_progress, then success.
    let deployments: Vec<_> = stack
        .sim
        .deployments("acme/web")
        .unwrap()
        .into_iter()
        .filter(|d| d.environment == "staging" && d.sha == first)
        .collect();
    assert_eq!(deployments.len(), 1);
    let states: Vec<&str> = deployments[0].statuses.iter().map(|s| s.state.as_str()).collect();
    assert_eq!(states, ["in_progress", "success"]);
    // The release commit carries the design §7 trailers, readable with plain git.
    let trailers = git(
        &stack.gitops_dir,
        &[
            "log",
            "-1",
            "--format=%(trailers:only,unfold)",
            &staging[0].head_sha,
        ],
    );
    for want in [
        "Auger-App: web",
        "Auger-Env: staging",
        &format!("Auger-Artifact: web@{}", &first[..12]),
        &format!("Auger-Source: acme/web@{first}"),
        "Auger-Trigger: policy",
    ] {
        assert!(trailers.contains(want), "missing {want:?} in:\n{trailers}");
    }

    // qa needs an approval: its PR is open, the status pending, nothing in qa/ yet.
    let qa = stack.auger_pulls("auger/qa/web");
    assert_eq!(qa.len(), 1);
    assert!(qa[0].open);
    assert!(
        qa[0].body.contains(&format!("web@{}", &first[..12])),
        "{}",
        qa[0].body
    );
    assert_eq!(stack.status(&first, "auger/qa").unwrap().0, "pending");
    assert!(stack.gitops_file("qa/web/release.json").is_none());
    assert_eq!(stack.live("qa"), None);

    // A newer build of main: staging moves on, and the same qa PR now proposes it.
    let second = stack.green_main("v2");
    wait_for("staging on the second build", || {
        stack.live("staging").as_deref() == Some(second.as_str())
    });
    let qa_after = stack.auger_pulls("auger/qa/web");
    assert_eq!(qa_after.len(), 1, "no second qa PR");
    assert_eq!(qa_after[0].number, qa[0].number);
    assert!(qa_after[0].open);
    assert_ne!(
        qa_after[0].head_sha, qa[0].head_sha,
        "the branch was force-updated"
    );
    assert!(qa_after[0].body.contains(&format!("web@{}", &second[..12])));
    assert!(
        qa_after[0]
            .body
            .contains(&format!("supersedes `web@{}`", &first[..12])),
        "the body names the superseded version:\n{}",
        qa_after[0].body
    );

    // The approver approves the current head → merged → qa is live with the second build.
    stack
        .sim
        .review(GITOPS, qa[0].number, "sre1", "APPROVED")
        .unwrap();
    stack.settle();
    wait_for("qa released", || {
        stack.live("qa").as_deref() == Some(second.as_str())
    });
    assert!(stack.sim.pull(GITOPS, qa[0].number).unwrap().merged);
    assert_eq!(stack.status(&second, "auger/qa").unwrap().0, "success");
    // History stays linear where auger commits directly; merges come only from PRs.
    assert!(release_json(&stack, "qa")["artifact"] == format!("web@{}", &second[..12]));
}

const PRODUCTION: &str = r#"
app = "web"
repo = "acme/web"
template = "web"

[artifact]
signals = ["status:ci/build"]

[vars]
image = "ghcr.io/acme/web:{{ artifact.sha }}"

[env.production]
auto = { tag = "v*" }
merge = "approval"
approvals = 2
approvers = ["team:acme/sre"]
"#;

fn assert_waits(stack: &Stack, pull: u64, why: &str) {
    stack.settle();
    let pr = stack.sim.pull(GITOPS, pull).unwrap();
    assert!(!pr.merged && pr.open, "{why}: the PR must still wait");
}

/// Tag v1.2.0 → the production PR waits; a non-approver's approval does not merge it; the
/// source commit's author approving does not count (even as an SRE); two SRE approvals merge
/// it. On the next tag, a standing CHANGES_REQUESTED by an SRE blocks two approvals until
/// that SRE approves.
#[test]
fn a_tag_opens_a_production_pr_that_merges_only_on_two_valid_approvals() {
    let stack = Stack::start(PRODUCTION);
    let sha = stack.green_main("v1");
    stack.sim.create_tag("acme/web", "v1.2.0", &sha, "alice").unwrap();
    stack.settle();
    wait_for("the production PR", || {
        stack.auger_pulls("auger/production/web").len() == 1
    });
    let pr = stack.auger_pulls("auger/production/web").remove(0);
    assert!(pr.title.contains("v1.2.0"), "{}", pr.title);
    assert_eq!(stack.status(&sha, "auger/production").unwrap().0, "pending");

    stack
        .sim
        .review(GITOPS, pr.number, "mallory", "APPROVED")
        .unwrap();
    assert_waits(&stack, pr.number, "mallory is no approver");
    stack.sim.review(GITOPS, pr.number, "alice", "APPROVED").unwrap();
    assert_waits(&stack, pr.number, "alice wrote the source commit");
    stack.sim.review(GITOPS, pr.number, "sre1", "APPROVED").unwrap();
    assert_waits(&stack, pr.number, "one of two approvals");
    assert_eq!(stack.live("production"), None);

    stack.sim.review(GITOPS, pr.number, "sre2", "APPROVED").unwrap();
    stack.settle();
    wait_for("the merge", || {
        stack.live("production").as_deref() == Some(sha.as_str())
    });
    assert!(stack.sim.pull(GITOPS, pr.number).unwrap().merged);
    assert_eq!(stack.status(&sha, "auger/production").unwrap().0, "success");
    let record = release_json(&stack, "production");
    assert_eq!(record["artifact"], format!("web@{}", &sha[..12]));

    // Next release: a request for changes by an approver blocks, whatever the count.
    let next = stack.green_main("v2");
    stack
        .sim
        .create_tag("acme/web", "v1.3.0", &next, "alice")
        .unwrap();
    stack.settle();
    wait_for("the second production PR", || {
        stack.auger_pulls("auger/production/web").iter().any(|p| p.open)
    });
    let second = stack
        .auger_pulls("auger/production/web")
        .into_iter()
        .find(|p| p.open)
        .unwrap();
    assert_ne!(second.number, pr.number);
    stack
        .sim
        .review(GITOPS, second.number, "sre1", "CHANGES_REQUESTED")
        .unwrap();
    stack
        .sim
        .review(GITOPS, second.number, "sre2", "APPROVED")
        .unwrap();
    stack
        .sim
        .review(GITOPS, second.number, "sre3", "APPROVED")
        .unwrap();
    assert_waits(&stack, second.number, "sre1 requested changes");
    assert_eq!(stack.live("production").as_deref(), Some(sha.as_str()));
    stack
        .sim
        .review(GITOPS, second.number, "sre1", "APPROVED")
        .unwrap();
    stack.settle();
    wait_for("the second merge", || {
        stack.live("production").as_deref() == Some(next.as_str())
    });

    // A release PR closed without merging: the release is abandoned, and says so.
    let third = stack.green_main("v3");
    stack
        .sim
        .create_tag("acme/web", "v1.4.0", &third, "alice")
        .unwrap();
    stack.settle();
    let open = stack
        .auger_pulls("auger/production/web")
        .into_iter()
        .find(|p| p.open)
        .expect("a third production PR");
    stack.sim.close_pr(GITOPS, open.number, "sre1").unwrap();
    stack.settle();
    let (state, why) = stack.status(&third, "auger/production").unwrap();
    assert_eq!(state, "error");
    assert!(why.contains("closed without merging"), "{why}");
    assert_eq!(stack.live("production").as_deref(), Some(next.as_str()));
}

const DIRECT: &str = r#"
app = "web"
repo = "acme/web"
template = "web"

[artifact]
signals = ["status:ci/build"]

[vars]
image = "ghcr.io/acme/web:{{ artifact.sha }}"

[env.dev]
merge = "direct"
"#;

/// `POST /api/v1/releases` in `direct` mode commits straight to the gitops branch; the same
/// release again makes no commit; bad requests are refused with a JSON error and queue
/// nothing; `auger release make` goes through the same path.
#[test]
fn ad_hoc_direct_releases_through_the_api_and_the_cli_and_an_unchanged_one_makes_no_commit() {
    let mut stack = Stack::start(DIRECT);
    let sha = stack.green_main("v1");
    let commits_before = stack.gitops_log("%H").len();
    let token = API_TOKEN.split_once(':').unwrap().1;
    let id = format!("web@{}", &sha[..12]);

    let body = serde_json::json!({ "app": "web", "env": "dev", "artifact": id });
    let (code, answer) = stack.post("/api/v1/releases", Some(token), body.clone());
    assert_eq!(code, 202, "{answer}");
    assert_eq!(answer["trigger"], "api ci");
    stack.settle();
    wait_for("dev released", || {
        stack.live("dev").as_deref() == Some(sha.as_str())
    });
    assert_eq!(stack.gitops_log("%H").len(), commits_before + 1);
    assert_eq!(
        stack.gitops_log("%P")[0].split(' ').count(),
        1,
        "a plain commit, no merge"
    );
    assert_eq!(
        git(
            &stack.gitops_dir,
            &[
                "log",
                "-1",
                "--format=%(trailers:key=Auger-Trigger,valueonly)",
                "main"
            ]
        )
        .trim(),
        "api ci"
    );
    assert_eq!(stack.status(&sha, "auger/dev").unwrap().0, "success");
    assert!(
        stack.auger_pulls("auger/dev/web").is_empty(),
        "direct mode opens no PR"
    );

    // The same release again: already released, no commit.
    let (code, _) = stack.post("/api/v1/releases", Some(token), body);
    assert_eq!(code, 202);
    stack.settle();
    assert_eq!(stack.gitops_log("%H").len(), commits_before + 1);

    // Refusals: JSON errors, nothing queued.
    for (body, token, want_code, want_text) in [
        (
            serde_json::json!({ "app": "web", "env": "prod", "artifact": id }),
            Some(token),
            422,
            "known: dev",
        ),
        (
            serde_json::json!({ "app": "web", "env": "dev", "artifact": "web@0123456789ab" }),
            Some(token),
            404,
            "no artifact",
        ),
        (
            serde_json::json!({ "app": "nope", "env": "dev", "artifact": id }),
            Some(token),
            422,
            "no policy",
        ),
        (
            serde_json::json!({ "app": "../x", "env": "dev", "artifact": id }),
            Some(token),
            400,
            "app",
        ),
        (
            serde_json::json!({ "app": "web", "env": "dev", "artifact": id }),
            None,
            401,
            "token",
        ),
    ] {
        let (code, answer) = stack.post("/api/v1/releases", token, body.clone());
        assert_eq!(code, want_code, "{body}: {answer}");
        assert!(answer["error"].as_str().unwrap().contains(want_text), "{answer}");
    }
    stack.settle();
    assert_eq!(stack.gitops_log("%H").len(), commits_before + 1);

    // The CLI, in its own process, on the same stores once the server has stopped (beside a
    // running one it is refused): a second build goes to dev.
    let next = stack.green_main("v2");
    stack.server.kill();
    let token_env = stack.token.clone();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_auger"))
        .current_dir(stack.setup.path())
        .env("GITHUB_TOKEN", &token_env)
        .args([
            "release",
            "make",
            "--app",
            "web",
            "--env",
            "dev",
            "--artifact",
            &next[..10],
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("released web to dev"), "{stdout}");
    assert_eq!(stack.live("dev").as_deref(), Some(next.as_str()));
    assert!(
        stack
            .gitops_file("dev/web/deployment.yaml")
            .unwrap()
            .contains(&next),
        "the new image is on main"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_auger"))
        .current_dir(stack.setup.path())
        .env("GITHUB_TOKEN", &token_env)
        .args([
            "release",
            "make",
            "--app",
            "web",
            "--env",
            "nope",
            "--artifact",
            &next,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("known: dev"));
}

/// Beside a running server, the CLI commands that would run a second release loop over the
/// same data dir are refused with the data dir named and `--server` suggested; so is a second
/// server. Nothing is released by the refused commands.
#[test]
fn release_commands_and_a_second_server_beside_a_running_server_are_refused() {
    let stack = Stack::start(DIRECT);
    let sha = stack.green_main("v1");
    let data_dir = stack.setup.path().join("data").canonicalize().unwrap();
    let commits_before = stack.gitops_log("%H").len();
    let id = format!("web@{}", &sha[..12]);
    let auger = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_auger"))
            .current_dir(stack.setup.path())
            .env("GITHUB_TOKEN", &stack.token)
            .env("AUGER_WEBHOOK_SECRET", SECRET)
            .args(args)
            .output()
            .unwrap()
    };
    for args in [
        &[
            "release",
            "make",
            "--app",
            "web",
            "--env",
            "dev",
            "--artifact",
            &id,
        ][..],
        &["rollback", "--app", "web", "--env", "dev", "--to", &id],
    ] {
        let out = auger(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("the data dir {} is in use", data_dir.display())),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains("--server URL"), "{args:?}: {stderr}");
    }
    let out = auger(&["serve", "--config", "auger.toml"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("the data dir {} is in use", data_dir.display())),
        "{stderr}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).is_empty(),
        "it never listened"
    );

    assert_eq!(stack.live("dev"), None, "nothing was released");
    assert_eq!(stack.gitops_log("%H").len(), commits_before);
    // The server itself still works over its data dir.
    let token = API_TOKEN.split_once(':').unwrap().1;
    let body = serde_json::json!({ "app": "web", "env": "dev", "artifact": id });
    let (code, answer) = stack.post("/api/v1/releases", Some(token), body);
    assert_eq!(code, 202, "{answer}");
    stack.settle();
    wait_for("dev released", || {
        stack.live("dev").as_deref() == Some(sha.as_str())
    });
}

/// A git push cannot be interrupted from inside auger (a blocking subprocess): SIGTERM while
/// one hangs still ends the process within 10 s. The release is replayed after the restart
/// and lands once.
#[test]
fn sigterm_during_a_hanging_git_push_exits_within_ten_seconds_and_the_release_lands_once() {
    let mut stack = Stack::start(DIRECT);
    let sha = stack.green_main("v1");
    let commits_before = stack.gitops_log("%H").len();
    // The gitops remote takes 20 s to refuse the push, and says when it has started.
    let started = stack.setup.path().join("push-started");
    let hook = stack.gitops_dir.join("hooks/pre-receive");
    std::fs::write(
        &hook,
        format!("#!/bin/sh\ntouch '{}'\nsleep 20\nexit 1\n", started.display()),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let token = API_TOKEN.split_once(':').unwrap().1;
    let id = format!("web@{}", &sha[..12]);
    let body = serde_json::json!({ "app": "web", "env": "dev", "artifact": id });
    let (code, answer) = stack.post("/api/v1/releases", Some(token), body);
    assert_eq!(code, 202, "{answer}");
    wait_for("the push to start", || started.exists());

    let pid = stack.server.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let signalled = Instant::now();
    let status = loop {
        if let Some(s) = stack.server.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(10),
            "auger was still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "a stop on request exits 0: {status:?}");
    assert_eq!(
        stack.live("dev"),
        None,
        "the interrupted release recorded nothing"
    );

    std::fs::remove_file(&hook).unwrap();
    stack.server = stack
        .setup
        .start_with_env(&[("GITHUB_TOKEN", stack.token.as_str())]);
    stack
        .sim
        .set_webhook(Some(&format!("{}/webhooks/github", stack.server.url)), SECRET);
    wait_for("the replayed release", || {
        stack.live("dev").as_deref() == Some(sha.as_str())
    });
    stack.settle();
    assert_eq!(stack.gitops_log("%H").len(), commits_before + 1, "released once");
}
