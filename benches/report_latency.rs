//! Issue 19's latency benchmark: how long from a Flux report reaching `POST /webhooks/flux` to
//! the GitHub deployment status `success` it causes, on the GitHub simulator, with a real
//! `auger serve`. The baseline, measured in the same run: from CI's green status to the
//! release merged and waiting for Flux (its status says so): a whole release (record, render,
//! commit, push, statuses).
//!
//! `cargo bench --bench report_latency` (env `AUGER_BENCH_N`: releases, default 10). Each
//! release and its verification cost about 7 content-creating GitHub calls, which auger paces
//! at GitHub's 80 a minute (a bucket of 80): beyond ~11 releases in a row the figures measure
//! that pace, not auger.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use github_sim::{GithubSim, SimConfig};

const WEB: &str = "acme/web";
const GITOPS: &str = "acme/gitops";
const SECRET: &str = "bench-webhook-secret";
const FLUX_SECRET: &str = "bench-flux-secret";

const POLICY: &str = r#"app = "web"
repo = "acme/web"
template = "web"
[artifact]
signals = ["status:ci/build"]
[vars]
image = "ghcr.io/acme/web:{{ artifact.sha }}"
[env.staging]
auto = { branch = "main" }
merge = "direct"
verify = { flux = "apps-staging" }
"#;

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("AUGER_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let sim = GithubSim::start(SimConfig::default())?;
    sim.create_org("acme")?;
    for user in ["alice", "auger"] {
        sim.create_user(user)?;
    }
    sim.create_repo(WEB)?;
    let gitops = sim.create_repo(GITOPS)?;
    sim.push(GITOPS, "main", &[("README.md", "gitops\n")], "init", "alice")?;
    for repo in [WEB, GITOPS] {
        sim.set_permission(repo, "auger", "write")?;
        sim.set_permission(repo, "alice", "write")?;
    }
    let token = sim.create_token("auger")?;
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    std::fs::create_dir_all(root.join("policies"))?;
    std::fs::create_dir_all(root.join("templates/web"))?;
    std::fs::write(root.join("policies/web.toml"), POLICY)?;
    std::fs::write(
        root.join("templates/web/deployment.yaml.tera"),
        "image: {{ vars.image }}\n",
    )?;
    std::fs::write(
        root.join("auger.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n[github]\napi_url = \"{}\"\ntoken_env = \"GITHUB_TOKEN\"\nwebhook_secret_env = \"AUGER_WEBHOOK_SECRET\"\n[gitops]\nrepo = \"{GITOPS}\"\nurl = \"{}\"\nbranch = \"main\"\n[verify]\nflux_secret_env = \"AUGER_FLUX_SECRET\"\n",
            sim.url(),
            gitops.clone_url
        ),
    )?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_auger"))
        .current_dir(root)
        .args(["serve", "--config", "auger.toml"])
        .env("GITHUB_TOKEN", &token)
        .env("AUGER_WEBHOOK_SECRET", SECRET)
        .env("AUGER_FLUX_SECRET", FLUX_SECRET)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("no stdout")?).read_line(&mut line)?;
    let url = line
        .trim()
        .strip_prefix("auger listening on ")
        .context("auger did not start")?
        .to_owned();
    sim.set_webhook(Some(&format!("{url}/webhooks/github")), SECRET);
    let client = reqwest::blocking::Client::new();

    let (mut release, mut report) = (Vec::new(), Vec::new());
    for i in 0..n {
        let sha = sim.push(
            WEB,
            "main",
            &[("app.txt", &format!("v{i}\n"))],
            &format!("v{i}"),
            "alice",
        )?;
        let t0 = Instant::now();
        sim.set_status(WEB, &sha, "success", "ci/build")?;
        wait_merged(&sim, &sha)?;
        release.push(t0.elapsed());

        let tip = sim.branch_sha(GITOPS, "main").context("no gitops tip")?;
        let body = serde_json::to_vec(&serde_json::json!({
            "involvedObject": { "kind": "Kustomization", "namespace": "flux-system", "name": "apps-staging" },
            "severity": "info",
            "timestamp": "2026-12-05T10:15:02Z",
            "message": "Reconciliation finished in 2.41s, next run in 10m0s",
            "reason": "ReconciliationSucceeded",
            "metadata": { "revision": format!("main@sha1:{tip}") },
            "reportingController": "kustomize-controller"
        }))?;
        let t0 = Instant::now();
        let resp = client
            .post(format!("{url}/webhooks/flux"))
            .header("Content-Type", "application/json")
            .header(
                "X-Signature",
                cluster_sim::signature(&body, FLUX_SECRET.as_bytes()),
            )
            .body(body)
            .send()?;
        if resp.status().as_u16() != 202 {
            bail!("the report was answered {}", resp.status());
        }
        wait_deployment(&sim, &sha, "success")?;
        report.push(t0.elapsed());
    }
    let _ = child.kill();
    let _ = child.wait();
    let p = |v: &mut Vec<Duration>, q: f64| {
        v.sort();
        v[((v.len() as f64 - 1.0) * q).round() as usize]
    };
    println!("{n} releases, each verified by one Flux report");
    println!(
        "release (green CI status → merged, waiting for Flux): p50 {:?}  p90 {:?}",
        p(&mut release, 0.5),
        p(&mut release, 0.9)
    );
    println!(
        "report (POST /webhooks/flux → deployment success): p50 {:?}  p90 {:?}",
        p(&mut report, 0.5),
        p(&mut report, 0.9)
    );
    Ok(())
}

/// Polls the simulator until the release of `sha` is merged and waits for Flux (its status
/// `auger/staging` says so).
fn wait_merged(sim: &GithubSim, sha: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let merged = sim.statuses(WEB, sha)?.iter().any(|s| {
            s.context == "auger/staging"
                && s.description
                    .as_deref()
                    .is_some_and(|d| d.contains("waiting for Flux"))
        });
        if merged {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{sha} was never merged");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Polls the simulator until the deployment of `sha` has the state `state` last.
fn wait_deployment(sim: &GithubSim, sha: &str, state: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = sim
            .deployments(WEB)?
            .iter()
            .any(|d| d.sha == sha && d.statuses.last().is_some_and(|s| s.state == state));
        if done {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("no deployment {state} for {sha}");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
