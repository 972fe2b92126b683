//! Shared test fixtures: a configured `auger serve` process on loopback, signed deliveries.
#![allow(dead_code)] // not every helper is used by every scenario group

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SECRET: &str = "test-secret";
pub const API_TOKEN: &str = "ci:test-token";

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/webhooks")
            .join(name),
    )
    .unwrap()
}

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
        Server::start(self.path(), &[])
    }

    pub fn start_with_env(&self, env: &[(&str, &str)]) -> Server {
        Server::start(self.path(), env)
    }
}

/// A running `auger serve`; killed (SIGKILL) when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Server {
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_auger"))
            .current_dir(dir)
            .envs(env.iter().copied())
            .args(["serve", "--config", "auger.toml"])
            .env("AUGER_WEBHOOK_SECRET", SECRET)
            .env("AUGER_API_TOKENS", API_TOKEN)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
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

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// POST a delivery signed with the test secret.
    pub fn deliver(&self, event: &str, id: &str, body: &[u8]) -> (u16, serde_json::Value) {
        let sig = auger::webhook::sign(SECRET, body);
        self.post_webhook(
            &[
                ("X-GitHub-Event", event),
                ("X-GitHub-Delivery", id),
                ("X-Hub-Signature-256", &sig),
            ],
            body,
        )
    }

    pub fn post_webhook(&self, headers: &[(&str, &str)], body: &[u8]) -> (u16, serde_json::Value) {
        let client = reqwest::blocking::Client::new();
        let mut req = client
            .post(format!("{}/webhooks/github", self.url))
            .header("Content-Type", "application/json")
            .header("User-Agent", "GitHub-Hookshot/test")
            .body(body.to_vec());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or(serde_json::Value::Null))
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        let resp = reqwest::blocking::Client::new()
            .get(format!("{}{path}", self.url))
            .bearer_auth("test-token")
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.text().unwrap())
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

/// A status payload from the real fixture, for another commit and state.
pub fn status_payload(sha: &str, state: &str, branch: Option<&str>) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(&fixture("status.payload.json")).unwrap();
    v["sha"] = sha.into();
    v["commit"]["sha"] = sha.into();
    v["state"] = state.into();
    v["branches"] = match branch {
        Some(b) => {
            serde_json::json!([{ "name": b, "commit": { "sha": sha, "url": "" }, "protected": false }])
        }
        None => serde_json::json!([]),
    };
    serde_json::to_vec(&v).unwrap()
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}
