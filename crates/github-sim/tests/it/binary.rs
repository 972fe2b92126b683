//! The standalone binary starts with its seed scenario and prints the base URL first.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Kills the child even when an assertion fails first.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_the_seed_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_github-sim"))
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let url = lines.next().unwrap().unwrap();
    let mut token = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(t) = line.strip_prefix("token alice: ") {
            token = Some(t.to_string());
        }
        if line.starts_with("ready") {
            break;
        }
    }
    let gh = octocrab::Octocrab::builder()
        .base_uri(url.as_str())
        .unwrap()
        .personal_token(token.unwrap())
        .build()
        .unwrap();
    let result = gh.repos("acme", "gitops").get().await;
    drop(child);
    assert!(url.starts_with("http://127.0.0.1:"));
    assert_eq!(result.unwrap().default_branch.as_deref(), Some("main"));
    assert!(
        dir.path().join("git/acme/frontend.git/HEAD").exists(),
        "repos stay in --dir"
    );
}
