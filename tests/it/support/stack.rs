//! The whole stack: the GitHub simulator with people, teams, the source and gitops
//! repositories, sending signed webhooks to a running auger configured against it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use github_sim::{GithubSim, SimConfig};

use super::git::git;
use super::server::{Server, Setup};
use super::sim::rsa_key_pair;
use super::webhooks::SECRET;

pub const GITOPS: &str = "acme/gitops";
/// The source repository of the app `web`.
pub const WEB: &str = "acme/web";

/// A policy for the app `web` of `acme/web`: built on a green `ci/build`, its image named after
/// the commit, with the given `[env.*]` (and `[preview]`) sections.
pub fn web_policy(envs: &str) -> String {
    format!(
        r#"
app = "web"
repo = "acme/web"
template = "web"

[artifact]
signals = ["status:ci/build"]

[vars]
image = "ghcr.io/acme/web:{{{{ artifact.sha }}}}"
{envs}"#
    )
}

/// The App id of [`Stack::start_app`].
pub const APP_ID: u64 = 4242;

#[derive(Clone, Copy)]
enum Auth {
    /// A personal token of the user `auger`.
    Token,
    /// The GitHub App [`APP_ID`].
    App,
}

/// A loopback port free right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

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

    /// With extra `auger.toml` text (`{sim}` in it stands for the simulator's URL) and
    /// environment variables for the server.
    pub fn start_with(policy: &str, extra_config: &str, env: &[(&str, &str)]) -> Stack {
        Stack::start_tuned(policy, "", extra_config, env)
    }

    /// Also with `server_keys`: lines of `auger.toml`'s `[server]` table.
    pub fn start_tuned(policy: &str, server_keys: &str, extra_config: &str, env: &[(&str, &str)]) -> Stack {
        Stack::start_as(policy, server_keys, extra_config, env, Auth::Token, &[])
    }

    /// With more gitops repositories besides [`GITOPS`] (each with a README on main, auger and
    /// alice writing to it), named in `auger.toml` as `[gitops.repos."<name>"]`, and extra
    /// `auger.toml` text.
    pub fn start_with_gitops_repos(
        policy: &str,
        repos: &[&str],
        extra_config: &str,
        env: &[(&str, &str)],
    ) -> Stack {
        Stack::start_as(policy, "", extra_config, env, Auth::Token, repos)
    }

    /// auger authenticated as the GitHub App [`APP_ID`] (JWT, installation tokens; its bot is
    /// `auger[bot]`), listening on one port for all its restarts, as a server behind a fixed
    /// webhook URL does.
    pub fn start_app(policy: &str, server_keys: &str) -> Stack {
        Stack::start_as(policy, server_keys, "", &[], Auth::App, &[])
    }

    fn start_as(
        policy: &str,
        server_keys: &str,
        extra_config: &str,
        env: &[(&str, &str)],
        auth: Auth,
        more_gitops: &[&str],
    ) -> Stack {
        let (key, sim_config) = match auth {
            Auth::Token => (None, SimConfig::default()),
            Auth::App => {
                let (private_pem, public_pem) = rsa_key_pair();
                let config = SimConfig {
                    app_id: APP_ID,
                    app_public_key_pem: Some(public_pem),
                    ..SimConfig::default()
                };
                (Some(private_pem), config)
            }
        };
        let sim = GithubSim::start(sim_config).unwrap();
        sim.create_org("acme").unwrap();
        for user in ["alice", "mallory", "sre1", "sre2", "sre3", "auger"] {
            sim.create_user(user).unwrap();
        }
        // alice writes the code and is also on the SRE team: her own approval must not count.
        sim.create_team("acme", "sre", &["sre1", "sre2", "sre3", "alice"])
            .unwrap();
        sim.create_repo(WEB).unwrap();
        let gitops = sim.create_repo(GITOPS).unwrap();
        sim.push(GITOPS, "main", &[("README.md", "gitops\n")], "init", "alice")
            .unwrap();
        let mut repos_config = String::new();
        for repo in more_gitops {
            let created = sim.create_repo(repo).unwrap();
            sim.push(repo, "main", &[("README.md", "gitops\n")], "init", "alice")
                .unwrap();
            repos_config.push_str(&format!(
                "[gitops.repos.\"{repo}\"]\nurl = \"{}\"\n",
                created.clone_url
            ));
        }
        for repo in [WEB, GITOPS].iter().chain(more_gitops) {
            sim.set_permission(repo, "auger", "write").unwrap();
            sim.set_permission(repo, "alice", "write").unwrap();
        }
        let token = sim.create_token("auger").unwrap();
        let credentials = match auth {
            Auth::Token => "token_env = \"GITHUB_TOKEN\"".to_owned(),
            Auth::App => format!("app_id = {APP_ID}\nprivate_key_file = \"app.pem\""),
        };
        let extra_config = extra_config.replace("{sim}", sim.url());
        let setup = Setup::new(
            &[],
            &format!(
                "{server_keys}\n[github]\napi_url = \"{}\"\n{credentials}\n[gitops]\nrepo = \"{GITOPS}\"\nurl = \"{}\"\nbranch = \"main\"\n{repos_config}[api]\ntokens_env = \"AUGER_API_TOKENS\"\n{extra_config}",
                sim.url(),
                gitops.clone_url
            ),
        );
        if let Some(key) = key {
            std::fs::write(setup.path().join("app.pem"), key).unwrap();
            // One address for every start: the App's webhook URL does not move.
            let file = setup.path().join("auger.toml");
            let text = std::fs::read_to_string(&file).unwrap();
            let listen = format!("127.0.0.1:{}", free_port());
            std::fs::write(&file, text.replacen("127.0.0.1:0", &listen, 1)).unwrap();
        }
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

    /// Starts auger again on the same folder (a crash or a stop ended the last one), with
    /// `env` besides its token, and points the webhooks at it.
    pub fn restart(&mut self, env: &[(&str, &str)]) {
        self.server.kill();
        let mut vars = vec![("GITHUB_TOKEN", self.token.as_str())];
        vars.extend_from_slice(env);
        self.server = self.setup.start_with_env(&vars);
        self.sim
            .set_webhook(Some(&format!("{}/webhooks/github", self.server.url)), SECRET);
    }

    /// Every webhook delivered and every inbox entry worked off.
    pub fn settle(&self) {
        assert!(self.sim.wait_deliveries());
        self.server.wait_idle();
    }

    /// A commit on main of acme/web whose CI turned green, once auger has worked it off.
    pub fn green_main(&self, content: &str) -> String {
        let sha = self.push_green_main(content);
        self.settle();
        sha
    }

    /// A commit on main of acme/web whose CI turns green, without waiting for auger.
    pub fn push_green_main(&self, content: &str) -> String {
        let sha = self
            .sim
            .push(
                WEB,
                "main",
                &[("app.txt", content)],
                &format!("feat: {content}"),
                "alice",
            )
            .unwrap();
        self.sim.set_status(WEB, &sha, "success", "ci/build").unwrap();
        sha
    }

    /// A same-repo feature PR of acme/web whose head CI turned green: its number and head.
    pub fn green_feature_pr(&self, branch: &str) -> (u64, String) {
        let head = self
            .sim
            .push(
                WEB,
                branch,
                &[("app.txt", branch)],
                &format!("feat: {branch}"),
                "alice",
            )
            .unwrap();
        let pr = self.sim.open_pr(WEB, branch, "main", branch, "alice").unwrap();
        self.settle();
        self.sim.set_status(WEB, &head, "success", "ci/build").unwrap();
        self.settle();
        (pr, head)
    }

    /// What auger wrote on the pull request `pr` of `repo`, oldest first.
    pub fn replies(&self, repo: &str, pr: u64) -> Vec<String> {
        self.sim
            .comments(repo, pr)
            .unwrap()
            .into_iter()
            // auger's own writing carries a marker; a test may also post as auger, without one.
            .filter(|c| c.user == "auger" && c.body.contains("<!-- auger:"))
            .map(|c| c.body)
            .collect()
    }

    /// The reply auger wrote to the comment `id` on the pull request `pr` of `repo`.
    pub fn reply_to(&self, repo: &str, pr: u64, id: u64) -> Option<String> {
        let marker = format!("<!-- auger:answer {id} -->");
        self.replies(repo, pr).into_iter().find(|b| b.contains(&marker))
    }

    /// auger's pull requests on the gitops repository from `branch`.
    pub fn auger_pulls(&self, branch: &str) -> Vec<github_sim::PullRequest> {
        self.sim
            .pulls(GITOPS)
            .unwrap()
            .into_iter()
            .filter(|p| p.head_ref == branch)
            .collect()
    }

    /// The newest status `context` on the acme/web commit `sha`: state and description.
    pub fn status(&self, sha: &str, context: &str) -> Option<(String, String)> {
        web_status(&self.sim, sha, context)
    }

    /// A file of the gitops repository's main branch, read with plain git.
    pub fn gitops_file(&self, path: &str) -> Option<String> {
        self.file_in(GITOPS, path)
    }

    /// A file on the main branch of the simulator's repository `repo`, read with plain git.
    pub fn file_in(&self, repo: &str, path: &str) -> Option<String> {
        let out = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(self.sim.repo_path(repo).unwrap())
            .args(["show", &format!("main:{path}")])
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `env/web/release.json` on the gitops repository's main branch.
    pub fn release_json(&self, env: &str) -> serde_json::Value {
        let text = self
            .gitops_file(&format!("{env}/web/release.json"))
            .unwrap_or_else(|| panic!("no {env}/web/release.json on main"));
        serde_json::from_str(&text).unwrap()
    }

    /// The value of the trailer `key` on the newest commit of the gitops repository's main.
    pub fn last_trailer(&self, key: &str) -> String {
        let format = format!("--format=%(trailers:key={key},valueonly)");
        git(&self.gitops_dir, &["log", "-1", &format, "main"])
            .trim()
            .to_owned()
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
}

/// Polls `ok` until it holds; fails the test after 30 s.
pub fn wait_for(what: &str, ok: impl FnMut() -> bool) {
    wait_long(what, Duration::from_secs(30), ok)
}

/// Polls `ok` until it holds; fails the test after `limit`.
pub fn wait_long(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The newest status `context` on the acme/web commit `sha` in `sim`: state and description.
pub fn web_status(sim: &GithubSim, sha: &str, context: &str) -> Option<(String, String)> {
    sim.statuses(WEB, sha)
        .unwrap()
        .into_iter()
        .filter(|s| s.context == context)
        .max_by_key(|s| s.id)
        .map(|s| (s.state, s.description.unwrap_or_default()))
}
