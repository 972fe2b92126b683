//! A configured `auger serve` on loopback: the folder it runs in and the running process.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::webhooks::SECRET;

/// The API token the server accepts, as `AUGER_API_TOKENS` spells it (`name:token`).
pub const API_TOKEN: &str = "ci:test-token";
/// The bearer token of [`API_TOKEN`].
pub const BEARER: &str = "test-token";

/// A folder with `auger.toml`, policies and templates for apps built from the given repos.
pub struct Setup {
    pub dir: tempfile::TempDir,
}

impl Setup {
    /// `apps`: (app, repo, signals as TOML array items, e.g. `"status:default"`).
    pub fn new(apps: &[(&str, &str, &str)], extra_config: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("policies")).unwrap();
        std::fs::create_dir_all(root.join("templates/web")).unwrap();
        std::fs::write(
            root.join("templates/web/deployment.yaml.tera"),
            "image: {{ vars.image }}\n",
        )
        .unwrap();
        for (app, repo, signals) in apps {
            std::fs::write(
                root.join(format!("policies/{app}.toml")),
                format!(
                    "app = \"{app}\"\nrepo = \"{repo}\"\ntemplate = \"web\"\n[artifact]\nsignals = [{signals}]\n[vars]\nimage = \"x\"\n"
                ),
            )
            .unwrap();
        }
        std::fs::write(
            root.join("auger.toml"),
            format!("[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n{extra_config}"),
        )
        .unwrap();
        Setup { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn ledger(&self) -> PathBuf {
        self.path().join("data/artifacts.git")
    }

    pub fn start(&self) -> Server {
        Server::spawn(Server::command(self.path()))
    }

    pub fn start_with_env(&self, env: &[(&str, &str)]) -> Server {
        let mut command = Server::command(self.path());
        command.envs(env.iter().copied());
        Server::spawn(command)
    }

    /// `auger serve --log-json`, its log (stderr) written to `log`, filtered by `rust_log`.
    pub fn start_logging_json(&self, log: &Path, rust_log: &str) -> Server {
        let mut command = Server::command(self.path());
        command
            .arg("--log-json")
            .env("RUST_LOG", rust_log)
            .stderr(std::fs::File::create(log).unwrap());
        Server::spawn(command)
    }
}

/// A running `auger serve`; killed (SIGKILL) when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Server {
    /// `auger serve` in `dir` with the test secret and API token, quiet logs on stderr.
    pub fn command(dir: &Path) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_auger"));
        command
            .current_dir(dir)
            .args(["serve", "--config", "auger.toml"])
            .env("AUGER_WEBHOOK_SECRET", SECRET)
            .env("AUGER_API_TOKENS", API_TOKEN)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        command
    }

    /// Starts `command` and waits for the line that says where it listens.
    pub fn spawn(mut command: Command) -> Server {
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let url = line
            .trim()
            .strip_prefix("auger listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_owned();
        Server { child, url }
    }

    /// Sends SIGTERM and waits for the exit; fails the test if it takes longer than `limit`.
    pub fn terminate(&mut self, limit: Duration) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid}");
        self.wait_exit(limit)
    }

    /// Waits for the process to end by itself; fails the test after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "auger did not exit within {limit:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// GET with the test API token: the status code and the body.
    pub fn get(&self, path: &str) -> (u16, String) {
        let resp = reqwest::blocking::Client::new()
            .get(format!("{}{path}", self.url))
            .bearer_auth(BEARER)
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.text().unwrap())
    }

    /// POST JSON with an optional bearer token: the status code and the JSON answer (null when
    /// the answer is not JSON).
    pub fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let mut req = reqwest::blocking::Client::new()
            .post(format!("{}{path}", self.url))
            .json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().unwrap();
        let code = resp.status().as_u16();
        (code, resp.json().unwrap_or(serde_json::Value::Null))
    }

    /// The artifact `id` (`app@sha-prefix`) as the API shows it, if it is recorded.
    pub fn artifact(&self, id: &str) -> Option<serde_json::Value> {
        let (code, text) = self.get(&format!("/api/v1/artifacts/{id}"));
        (code == 200).then(|| serde_json::from_str(&text).unwrap())
    }

    /// A metric's value from `/metrics` (0 when absent).
    pub fn metric(&self, line_prefix: &str) -> u64 {
        let (_, text) = self.get("/metrics");
        text.lines()
            .find(|l| l.starts_with(line_prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// Wait until the worker has drained the inbox.
    pub fn wait_idle(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.metric("auger_inbox_depth ") != 0 {
            assert!(Instant::now() < deadline, "the inbox never drained");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
