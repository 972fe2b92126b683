//! `auger demo` (design §11): the GitHub simulator and `auger serve` on loopback, and the whole
//! release story played against them. Every step is checked, not just printed: the demo exits
//! non-zero at the first step that did not do what it claims.
//!
//! The bot runs as its own `auger serve` process (this binary), configured through a generated
//! `auger.toml` and environment variables, exactly as an operator runs it. The simulator runs
//! in this process; the story drives it as people would (pushes, CI statuses, tags, reviews,
//! comments) and reads the outcome where a person would look: GitHub's state, the gitops
//! repository and the ledger, through plain git and auger's API.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use github_sim::{GithubSim, SimConfig};

const WEB: &str = "acme/web";
const GITOPS: &str = "acme/gitops";
const SECRET: &str = "demo-webhook-secret";
const API_TOKEN: &str = "demo-api-token";
/// The key Flux's `generic-hmac` provider signs its events with (the simulated one too).
const FLUX_SECRET: &str = "demo-flux-secret";
/// Generous: a loaded CI machine is slow, and every wait ends as soon as the state is there.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

const POLICY: &str = r#"# The demo's policy: staging follows main, production follows release tags after two
# approvals by the SRE team, and every same-repo pull request gets a preview.
app = "web"
repo = "acme/web"
template = "web-service"

[artifact]
signals = ["status:ci/build"]

[vars]
image = "ghcr.io/acme/web:{{ artifact.sha }}"
namespace = "web"

[env.staging]
auto = { branch = "main" }
merge = "auto"
deployers = ["permission:write"]
# Live once Flux reports the Kustomization healthy; a failure rolls back and holds.
verify = { flux = "apps-staging", soak = "1s", on_failure = "rollback" }

[env.production]
auto = { tag = "v*" }
merge = "approval"
approvals = 2
approvers = ["team:acme/sre"]
deployers = ["team:acme/sre"]
verify = { flux = "apps-production" }

[preview]
env = "preview"
url = "https://{{ app }}.preview.acme.example"
"#;

const TEMPLATES: [(&str, &str); 3] = [
    (
        "deployment.yaml.tera",
        include_str!("../templates/web-service/deployment.yaml.tera"),
    ),
    (
        "service.yaml.tera",
        include_str!("../templates/web-service/service.yaml.tera"),
    ),
    (
        "kustomization.yaml.tera",
        include_str!("../templates/web-service/kustomization.yaml.tera"),
    ),
];

/// The demo's own manifest: what the simulated cluster checks. A build whose artifact carries
/// `simulate = "unhealthy"` renders the annotation that makes its health check fail.
const DEMO_HEALTH: &str = r#"# The demo's simulated cluster fails a revision whose manifest says so.
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ app }}-demo-health
  namespace: web
  annotations:
    auger.dev/simulate: {{ artifact.vars.simulate | default(value="healthy") }}
"#;

/// The `auger serve` child, shared with the signal watcher so that a SIGTERM or Ctrl-C to
/// the demo stops it too (the demo's own exit would leave it running).
type BotSlot = Arc<Mutex<Option<Child>>>;

/// How long the bot may take to stop on SIGTERM (it promises 10 s) before it is killed.
const BOT_STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// The bot process; killed when dropped.
struct Bot {
    child: BotSlot,
    url: String,
}

impl Drop for Bot {
    fn drop(&mut self) {
        if let Some(mut child) = take_child(&self.child) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn take_child(slot: &BotSlot) -> Option<Child> {
    slot.lock().unwrap_or_else(|e| e.into_inner()).take()
}

/// Watches for SIGTERM and SIGINT from the moment it returns; on either, stops the bot the
/// way an operator would (SIGTERM, then SIGKILL after [`BOT_STOP_TIMEOUT`]), waits for it and
/// exits with the signal's conventional status.
fn stop_bot_on_signal(slot: BotSlot) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the signal watcher")?;
    // Registered here, before the bot exists, so no signal finds the default action.
    let (mut term, mut int) = {
        let _inside = runtime.enter();
        (
            signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
        )
    };
    std::thread::Builder::new()
        .name("demo-signals".into())
        .spawn(move || {
            let signo = runtime.block_on(async {
                tokio::select! {
                    _ = term.recv() => libc::SIGTERM,
                    _ = int.recv() => libc::SIGINT,
                }
            });
            if let Some(mut child) = take_child(&slot) {
                println!("\nStopping auger serve (pid {})…", child.id());
                stop_child(&mut child);
            }
            std::process::exit(128 + signo);
        })
        .context("cannot start the signal watcher")?;
    Ok(())
}

fn stop_child(child: &mut Child) {
    let Ok(pid) = libc::pid_t::try_from(child.id()) else {
        let _ = child.kill();
        let _ = child.wait();
        return;
    };
    // SAFETY: kill(2) with a pid this process spawned and has not reaped yet (the Child is
    // held, so it cannot have been reused).
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + BOT_STOP_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

struct Demo {
    sim: GithubSim,
    bot: Bot,
    /// Plays Flux: applies the gitops branch and reports to `/webhooks/flux`.
    _cluster: cluster_sim::ControllerHandle,
    root: PathBuf,
    step: usize,
}

/// `auger demo [--dir DIR] [--serve]`.
pub fn run(dir: Option<PathBuf>, serve: bool) -> anyhow::Result<()> {
    let (root, _keep) = match dir {
        Some(d) => {
            std::fs::create_dir_all(&d).with_context(|| format!("cannot create --dir {}", d.display()))?;
            let d = d.canonicalize()?;
            if d.join("auger.toml").exists() || d.join("github").exists() {
                bail!(
                    "--dir {}: already holds a demo; give an empty or new folder",
                    d.display()
                );
            }
            (d, None)
        }
        None => {
            let t = tempfile::Builder::new().prefix("auger-demo-").tempdir()?;
            (t.path().to_owned(), Some(t))
        }
    };
    println!("auger demo in {}", root.display());
    let slot = BotSlot::default();
    stop_bot_on_signal(slot.clone())?;
    let mut demo = Demo::start(&root, slot)?;
    demo.story()?;
    demo.epilogue();
    if serve {
        println!("\nServing until Ctrl-C or SIGTERM: {}", demo.bot.url);
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    if let Some(t) = _keep {
        // The repositories stay for inspection; the demo's temporary folder is not removed.
        let _ = t.keep();
    }
    Ok(())
}

impl Demo {
    fn start(root: &Path, slot: BotSlot) -> anyhow::Result<Demo> {
        let sim = GithubSim::start(SimConfig {
            dir: Some(root.join("github")),
            ..SimConfig::default()
        })?;
        sim.create_org("acme")?;
        for user in ["alice", "sre1", "sre2", "auger"] {
            sim.create_user(user)?;
        }
        sim.create_team("acme", "sre", &["sre1", "sre2"])?;
        sim.create_repo(WEB)?;
        let gitops = sim.create_repo(GITOPS)?;
        sim.push(
            GITOPS,
            "main",
            &[("README.md", "What Flux or Argo CD apply. Written by auger.\n")],
            "init",
            "alice",
        )?;
        for repo in [WEB, GITOPS] {
            sim.set_permission(repo, "auger", "write")?;
            sim.set_permission(repo, "alice", "write")?;
        }
        let token = sim.create_token("auger")?;

        std::fs::create_dir_all(root.join("policies"))?;
        std::fs::create_dir_all(root.join("templates/web-service"))?;
        std::fs::write(root.join("policies/web.toml"), POLICY)?;
        for (name, text) in TEMPLATES {
            std::fs::write(root.join("templates/web-service").join(name), text)?;
        }
        std::fs::write(
            root.join("templates/web-service/demo-health.yaml.tera"),
            DEMO_HEALTH,
        )?;
        std::fs::write(
            root.join("auger.toml"),
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"auger-data\"\n\n[github]\napi_url = \"{}\"\ntoken_env = \"GITHUB_TOKEN\"\nwebhook_secret_env = \"AUGER_WEBHOOK_SECRET\"\n\n[gitops]\nrepo = \"{GITOPS}\"\nurl = \"{}\"\nbranch = \"main\"\n\n[api]\ntokens_env = \"AUGER_API_TOKENS\"\n\n[verify]\nflux_secret_env = \"AUGER_FLUX_SECRET\"\n",
                sim.url(),
                gitops.clone_url
            ),
        )?;

        let exe = std::env::current_exe().context("cannot find the auger binary")?;
        // Spawned and stored under the slot's lock, so a signal in between still finds it.
        let mut spawned = slot.lock().unwrap_or_else(|e| e.into_inner());
        let mut child = Command::new(exe)
            .current_dir(root)
            .args(["serve", "--config", "auger.toml"])
            .env("GITHUB_TOKEN", &token)
            .env("AUGER_WEBHOOK_SECRET", SECRET)
            .env("AUGER_API_TOKENS", format!("demo:{API_TOKEN}"))
            .env("AUGER_FLUX_SECRET", FLUX_SECRET)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "error".into()),
            )
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start auger serve")?;
        let stdout = child.stdout.take().context("no stdout from auger serve")?;
        let pid = child.id();
        *spawned = Some(child);
        drop(spawned);
        // From here the bot is stopped when `Bot` is dropped, on every way out.
        let mut bot = Bot {
            child: slot,
            url: String::new(),
        };
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        bot.url = match line.trim().strip_prefix("auger listening on ") {
            Some(u) => u.to_owned(),
            None => bail!("auger serve did not start (it printed {line:?})"),
        };
        let url = bot.url.clone();
        sim.set_webhook(Some(&format!("{url}/webhooks/github")), SECRET);
        let cluster = cluster_sim::Controller::start(cluster_sim::ControllerConfig {
            repo: sim.repo_path(GITOPS)?.display().to_string(),
            objects: vec![
                cluster_sim::Watched::kustomization("apps-staging", "flux-system", "staging"),
                cluster_sim::Watched::kustomization("apps-production", "flux-system", "production"),
            ],
            report_to: format!("{url}/webhooks/flux"),
            secret: FLUX_SECRET.as_bytes().to_vec(),
            poll: Duration::from_millis(100),
            ..cluster_sim::ControllerConfig::default()
        })
        .context("cannot start the simulated cluster")?;
        println!(
            "GitHub simulator: {}\nauger:            {url} (pid {pid})\ncluster:          a simulated Flux applying {GITOPS} main, reporting to {url}/webhooks/flux\n",
            sim.url()
        );
        Ok(Demo {
            sim,
            bot,
            _cluster: cluster,
            root: root.to_owned(),
            step: 0,
        })
    }

    fn story(&mut self) -> anyhow::Result<()> {
        self.say("CI turns main green → staging is released through an auto-merged PR");
        let v1 = self.green_main("v1")?;
        self.wait("staging runs the main build", || {
            self.live("staging").as_deref() == Some(v1.as_str())
        })?;
        self.done(&format!(
            "merged: staging/web/ holds image ghcr.io/acme/web:{}",
            &v1[..12],
        ))?;
        self.wait("Flux to verify staging", || {
            self.verification("staging")
                .is_some_and(|(a, s)| a.ends_with(&v1[..12]) && s == "verified")
        })?;
        self.done(&format!(
            "Flux applied it, healthy, verified: status auger/staging = {} ({})",
            self.status(&v1, "auger/staging"),
            self.status_description(&v1, "auger/staging")
        ))?;

        self.say("Tag v1.0.0 → the production PR waits for two SRE approvals");
        self.sim.create_tag(WEB, "v1.0.0", &v1, "alice")?;
        let pr = self.wait_open_pr("auger/production/web")?;
        self.done(&format!(
            "PR #{pr} in {GITOPS} is open; status auger/production = {}",
            self.status(&v1, "auger/production")
        ))?;
        self.sim.review(GITOPS, pr, "sre1", "APPROVED")?;
        self.settle();
        if self.sim.pull(GITOPS, pr)?.merged {
            bail!(
                "step {}: one approval merged PR #{pr}; two are required",
                self.step
            );
        }
        self.done("one approval: still waiting")?;
        self.sim.review(GITOPS, pr, "sre2", "APPROVED")?;
        self.wait("production runs v1.0.0", || {
            self.live("production").as_deref() == Some(v1.as_str())
        })?;
        self.done(&format!("two approvals: PR #{pr} merged, production runs v1.0.0"))?;

        self.say("A feature PR gets a preview; /deploy staging from the PR; closing it removes the preview");
        let head = self.sim.push(
            WEB,
            "feature/login",
            &[("app.txt", "login")],
            "feat: login page",
            "alice",
        )?;
        let feature = self
            .sim
            .open_pr(WEB, "feature/login", "main", "Login page", "alice")?;
        self.settle();
        self.sim.set_status(WEB, &head, "success", "ci/build")?;
        let folder = format!("preview/web-pr-{feature}/release.json");
        self.wait("the preview folder", || self.gitops_file(&folder).is_some())?;
        self.done(&format!(
            "preview/web-pr-{feature}/ written, https://web-pr-{feature}.preview.acme.example"
        ))?;
        let comment = self.sim.comment(WEB, feature, "alice", "/deploy staging")?;
        self.wait("the /deploy reply", || {
            self.reply_to(feature, comment)
                .is_some_and(|r| r.contains("released to **staging**"))
        })?;
        if self.live("staging").as_deref() != Some(head.as_str()) {
            bail!("step {}: staging does not run the PR head", self.step);
        }
        self.done("staging runs the PR head; the reply says released")?;
        self.sim.close_pr(WEB, feature, "alice")?;
        self.wait("the preview removal", || self.gitops_file(&folder).is_none())?;
        self.done("PR closed: preview folder removed in one commit")?;

        self.say("v1.1.0 goes to production, then /rollback production → held → /resume");
        let v2 = self.green_main("v2")?;
        self.sim.create_tag(WEB, "v1.1.0", &v2, "alice")?;
        let pr = self.wait_open_pr("auger/production/web")?;
        self.sim.review(GITOPS, pr, "sre1", "APPROVED")?;
        self.sim.review(GITOPS, pr, "sre2", "APPROVED")?;
        self.wait("production runs v1.1.0", || {
            self.live("production").as_deref() == Some(v2.as_str())
        })?;
        self.done("production runs v1.1.0")?;
        self.sim
            .push(WEB, "ops", &[("ops.txt", "ops")], "ops notes", "sre1")?;
        let issue = self.sim.open_pr(WEB, "ops", "main", "Operations", "sre1")?;
        let comment = self.sim.comment(WEB, issue, "sre1", "/rollback production")?;
        let pr = self.wait_open_pr("auger/production/web")?;
        self.done(&format!(
            "rollback PR #{pr} opened (production merges by approval)"
        ))?;
        self.sim.review(GITOPS, pr, "sre1", "APPROVED")?;
        self.sim.review(GITOPS, pr, "sre2", "APPROVED")?;
        self.wait("production runs v1.0.0 again", || {
            self.live("production").as_deref() == Some(v1.as_str())
        })?;
        let log = self.git_gitops(&[
            "log",
            "--format=%(trailers:key=Auger-Rollback-To,valueonly)",
            "main",
        ]);
        let rollback_to = log
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or_default();
        if rollback_to != format!("web@{}", &v1[..12]) {
            bail!(
                "step {}: the rollback commit names {rollback_to:?}, not v1.0.0's artifact",
                self.step
            );
        }
        self.done(&format!(
            "production runs v1.0.0 again (Auger-Rollback-To: {rollback_to})"
        ))?;
        self.wait("the rollback reply", || self.reply_to(issue, comment).is_some())?;
        let v3 = self.green_main("v3")?;
        self.sim.create_tag(WEB, "v1.2.0", &v3, "alice")?;
        self.settle();
        if self.open_pr("auger/production/web").is_some() {
            bail!(
                "step {}: production is on hold, yet v1.2.0 opened a release PR",
                self.step
            );
        }
        self.done("on hold: tag v1.2.0 did not open a production PR")?;
        let comment = self.sim.comment(WEB, issue, "sre1", "/resume production")?;
        self.wait("the /resume reply", || {
            self.reply_to(issue, comment)
                .is_some_and(|r| r.contains("back on"))
        })?;
        self.done("/resume production: automatic deploys are back on")?;

        self.say("A build the cluster finds unhealthy → Flux reports the failure → auger rolls staging back and holds it");
        self.wait("staging to verify v3", || {
            self.verification("staging")
                .is_some_and(|(a, s)| a.ends_with(&v3[..12]) && s == "verified")
        })?;
        let bad = self
            .sim
            .push(WEB, "main", &[("app.txt", "v4")], "feat: v4", "alice")?;
        self.record_artifact(&bad, &[("simulate", "unhealthy")])?;
        self.wait("the failed verification", || {
            self.status(&bad, "auger/staging") == "failure"
        })?;
        self.done(&format!(
            "status auger/staging = failure ({})",
            self.status_description(&bad, "auger/staging")
        ))?;
        self.wait("staging back on v3", || {
            self.live("staging").as_deref() == Some(v3.as_str())
                && self
                    .verification("staging")
                    .is_some_and(|(a, s)| a.ends_with(&v3[..12]) && s == "verified")
        })?;
        let trigger = self.git_gitops(&[
            "log",
            "-1",
            "--format=%(trailers:key=Auger-Trigger,valueonly)",
            "main",
        ]);
        if trigger.trim() != "verify flux" {
            bail!(
                "step {}: the rollback commit says Auger-Trigger {trigger:?}",
                self.step
            );
        }
        self.done("rolled back to v3 (Auger-Trigger: verify flux), verified again by Flux")?;
        let v5 = self.green_main("v5")?;
        self.settle();
        if self.live("staging").as_deref() == Some(v5.as_str()) {
            bail!("step {}: staging is on hold, yet v5 was released", self.step);
        }
        self.done("staging is on hold: the next green build waits for /resume staging")?;
        Ok(())
    }

    /// (artifact id, state) of what `env` runs, from auger's API.
    fn verification(&self, env: &str) -> Option<(String, String)> {
        let v: serde_json::Value = reqwest::blocking::Client::new()
            .get(format!(
                "{}/api/v1/releases/current?env={env}&app=web",
                self.bot.url
            ))
            .bearer_auth(API_TOKEN)
            .send()
            .ok()?
            .json()
            .ok()?;
        Some((
            v["artifact"].as_str()?.to_owned(),
            v["state"].as_str()?.to_owned(),
        ))
    }

    /// CI records an artifact through the API (as the GitHub Action does), with `vars`.
    fn record_artifact(&self, sha: &str, vars: &[(&str, &str)]) -> anyhow::Result<()> {
        let vars: serde_json::Map<String, serde_json::Value> =
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).into())).collect();
        let resp = reqwest::blocking::Client::new()
            .post(format!("{}/api/v1/artifacts", self.bot.url))
            .bearer_auth(API_TOKEN)
            .json(&serde_json::json!({
                "app": "web", "repo": WEB, "sha": sha, "branches": ["main"], "vars": vars,
            }))
            .send()?;
        if !resp.status().is_success() {
            bail!(
                "step {}: the API refused the artifact: {}",
                self.step,
                resp.text().unwrap_or_default()
            );
        }
        Ok(())
    }

    fn epilogue(&self) {
        let gitops = self.sim.repo_path(GITOPS).unwrap_or_default();
        println!("\nEvery step checked. Where to look:");
        println!("  gitops repository:  {}", gitops.display());
        println!(
            "    git --git-dir {} log --format='%h %s%n    %(trailers:key=Auger-Trigger)' main",
            gitops.display()
        );
        println!(
            "  artifact ledger:    {}",
            self.root.join("auger-data/artifacts.git").display()
        );
        println!(
            "    git --git-dir {} log refs/auger/envs/production/web",
            self.root.join("auger-data/artifacts.git").display()
        );
        println!("  config, policies:   {}", self.root.display());
        println!(
            "  dashboard:          {}/  (run with --serve to keep it up)",
            self.bot.url
        );
        println!(
            "  API:                {}/api/v1/environments  (Authorization: Bearer {API_TOKEN})",
            self.bot.url
        );
    }

    // ---- steps and checks ----

    fn say(&mut self, what: &str) {
        self.step += 1;
        println!("{}. {what}", self.step);
    }

    fn done(&self, what: &str) -> anyhow::Result<()> {
        println!("   ✔ {what}");
        Ok(())
    }

    fn wait(&self, what: &str, mut ok: impl FnMut() -> bool) -> anyhow::Result<()> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            self.settle();
            if ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("step {}: timed out waiting for {what}", self.step);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Webhooks delivered and auger's inbox worked off.
    fn settle(&self) {
        self.sim.wait_deliveries();
        let deadline = Instant::now() + STEP_TIMEOUT;
        while self.metric("auger_inbox_depth ") != Some(0) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn metric(&self, prefix: &str) -> Option<u64> {
        let text = reqwest::blocking::get(format!("{}/metrics", self.bot.url))
            .ok()?
            .text()
            .ok()?;
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    fn green_main(&self, content: &str) -> anyhow::Result<String> {
        let sha = self.sim.push(
            WEB,
            "main",
            &[("app.txt", content)],
            &format!("feat: {content}"),
            "alice",
        )?;
        self.sim.set_status(WEB, &sha, "success", "ci/build")?;
        Ok(sha)
    }

    fn open_pr(&self, branch: &str) -> Option<u64> {
        self.sim
            .pulls(GITOPS)
            .ok()?
            .into_iter()
            .find(|p| p.open && p.head_ref == branch)
            .map(|p| p.number)
    }

    fn wait_open_pr(&self, branch: &str) -> anyhow::Result<u64> {
        self.wait(&format!("an open PR from {branch}"), || {
            self.open_pr(branch).is_some()
        })?;
        self.open_pr(branch).context("the PR closed again")
    }

    /// The source sha the ledger says runs in `env`.
    fn live(&self, env: &str) -> Option<String> {
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(self.root.join("auger-data/artifacts.git"))
            .args(["show", &format!("refs/auger/envs/{env}/web:artifact.json")])
            .output()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v["sha"].as_str().map(str::to_owned)
    }

    fn status(&self, sha: &str, context: &str) -> String {
        self.sim
            .statuses(WEB, sha)
            .unwrap_or_default()
            .into_iter()
            .filter(|s| s.context == context)
            .max_by_key(|s| s.id)
            .map(|s| s.state)
            .unwrap_or_else(|| "none".into())
    }

    fn status_description(&self, sha: &str, context: &str) -> String {
        self.sim
            .statuses(WEB, sha)
            .unwrap_or_default()
            .into_iter()
            .filter(|s| s.context == context)
            .max_by_key(|s| s.id)
            .and_then(|s| s.description)
            .unwrap_or_default()
    }

    fn reply_to(&self, issue: u64, comment: u64) -> Option<String> {
        let marker = format!("<!-- auger:answer {comment} -->");
        self.sim
            .comments(WEB, issue)
            .ok()?
            .into_iter()
            .find(|c| c.body.contains(&marker) && !c.body.contains("⏳"))
            .map(|c| c.body)
    }

    fn git_gitops(&self, args: &[&str]) -> String {
        let Ok(dir) = self.sim.repo_path(GITOPS) else {
            return String::new();
        };
        Command::new("git")
            .arg("--git-dir")
            .arg(dir)
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    fn gitops_file(&self, path: &str) -> Option<String> {
        let dir = self.sim.repo_path(GITOPS).ok()?;
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(dir)
            .args(["show", &format!("main:{path}")])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}
