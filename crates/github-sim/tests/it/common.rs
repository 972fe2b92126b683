//! Shared test helpers: a tiny webhook receiver, RSA keys for app auth, octocrab clients.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use github_sim::{GithubSim, SimConfig};
use serde_json::Value;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    /// Header names lower-cased.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A std-only HTTP receiver on 127.0.0.1 answering every request with `status`.
pub struct Receiver {
    pub url: String,
    pub received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub fn start(status: u16) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/webhooks/github", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&received);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let path = request_line.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut headers = HashMap::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = line.trim_end().split_once(':') {
                        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                    }
                }
                let len: usize = headers
                    .get("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; len];
                reader.read_exact(&mut body).unwrap();
                sink.lock().unwrap().push(Received { path, headers, body });
                let reason = if status < 300 { "OK" } else { "Error" };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        Receiver { url, received }
    }

    pub fn all(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// An RSA key pair for the App (see [`github_sim::rsa_key_pair`]).
pub fn rsa_key_pair() -> (String, String) {
    github_sim::rsa_key_pair().unwrap()
}

/// A simulator with an org `acme`, users alice (write), bob (read), carol (admin), team
/// `acme/sre` = [carol], repo `acme/frontend` with one commit on main.
pub fn seeded(config: SimConfig) -> GithubSim {
    let sim = GithubSim::start(config).unwrap();
    sim.create_org("acme").unwrap();
    for u in ["alice", "bob", "carol"] {
        sim.create_user(u).unwrap();
    }
    sim.create_team("acme", "sre", &["carol"]).unwrap();
    sim.create_repo("acme/frontend").unwrap();
    sim.set_permission("acme/frontend", "alice", "write").unwrap();
    sim.set_permission("acme/frontend", "bob", "read").unwrap();
    sim.set_permission("acme/frontend", "carol", "admin").unwrap();
    sim.push(
        "acme/frontend",
        "main",
        &[("README.md", "# frontend\n")],
        "Initial commit",
        "alice",
    )
    .unwrap();
    sim
}

/// octocrab with a personal token against the simulator.
pub fn octocrab_for(sim: &GithubSim, token: &str) -> octocrab::Octocrab {
    octocrab::Octocrab::builder()
        .base_uri(sim.url())
        .unwrap()
        .personal_token(token.to_string())
        .build()
        .unwrap()
}

/// Runs `git` in `dir` (a worktree clone in tests), panicking on failure.
pub fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Like `git` but returns whether it succeeded.
pub fn git_ok(dir: &std::path::Path, args: &[&str]) -> bool {
    std::process::Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap()
        .status
        .success()
}

/// A plain HTTP client with a personal token: status and JSON body of each answer, for
/// asserting on GitHub's exact error messages.
pub struct Api {
    pub url: String,
    pub token: String,
    pub client: reqwest::Client,
}

impl Api {
    pub fn new(sim: &GithubSim, login: &str) -> Api {
        Api {
            url: sim.url().to_string(),
            token: sim.create_token(login).unwrap(),
            client: reqwest::Client::new(),
        }
    }

    pub async fn send(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn json(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        self.send(method, path, Some(&body.to_string())).await
    }
}
