//! `auger demo` is itself a test of the whole story: it exits 0 only if every step did what
//! it claimed. Here it runs with `--dir`, and the final state is checked with plain git.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::git;

#[test]
fn the_demo_plays_the_whole_story_and_leaves_the_repositories_to_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("demo");
    let out = Command::new(env!("CARGO_BIN_EXE_auger"))
        .args(["demo", "--dir"])
        .arg(&root)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Every step checked"), "{stdout}");
    assert_eq!(stdout.matches("✔").count(), 16, "{stdout}");

    // Everything lives under --dir.
    for path in [
        "auger.toml",
        "policies/web.toml",
        "templates/web-service",
        "auger-data/artifacts.git",
    ] {
        assert!(root.join(path).exists(), "{path} missing under --dir");
    }
    let gitops = root.join("github/git/acme/gitops.git");
    let show = |path: &str| git(&gitops, &["show", &format!("main:{path}")]);
    let production: serde_json::Value = serde_json::from_str(&show("production/web/release.json")).unwrap();
    assert!(
        production["rollback_to"].is_string(),
        "production ends on the rollback: {production}"
    );
    assert_eq!(production["artifact"], production["rollback_to"]);
    assert!(show("staging/web/deployment.yaml").contains("image: \"ghcr.io/acme/web:"));
    assert_eq!(
        git(&gitops, &["ls-tree", "--name-only", "main", "preview/"]).trim(),
        "",
        "the preview was removed"
    );
    let held = git(
        &root.join("auger-data/artifacts.git"),
        &["show", "refs/auger/holds/production/web:hold.json"],
    );
    assert!(held.contains("\"held\": false"), "resumed at the end: {held}");
    // Staging's verifications, read with plain git: the bad build failed, the rollback after it
    // was verified, and staging stays held.
    let ledger = root.join("auger-data/artifacts.git");
    let story = git(&ledger, &["log", "--format=%s", "refs/auger/verify/staging/web"]);
    assert!(
        story.lines().next().unwrap_or_default().contains(": verified"),
        "{story}"
    );
    assert!(story.contains(": failed"), "{story}");
    let staging_hold = git(&ledger, &["show", "refs/auger/holds/staging/web:hold.json"]);
    assert!(staging_hold.contains("\"held\": true"), "{staging_hold}");

    // A second run into the same folder is refused rather than mixing two demos.
    let again = Command::new(env!("CARGO_BIN_EXE_auger"))
        .args(["demo", "--dir"])
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a demo"));
}

/// Whatever a failed assertion leaves running is killed.
struct Reap {
    demo: Child,
    bot: Option<String>,
}

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.demo.kill();
        let _ = self.demo.wait();
        if let Some(pid) = &self.bot {
            let _ = Command::new("kill")
                .args(["-KILL", pid])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// SIGTERM to `auger demo --serve` stops its `auger serve` child as well, and waits for it,
/// instead of leaving it running.
#[test]
fn sigterm_to_a_serving_demo_stops_its_auger_serve_child() {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = Command::new(env!("CARGO_BIN_EXE_auger"))
        .args(["demo", "--serve", "--dir"])
        .arg(dir.path().join("demo"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = demo.stdout.take().unwrap();
    let mut reap = Reap { demo, bot: None };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut seen = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("no 'Serving' line ({e}):\n{seen}"));
        if let Some(pid) = line
            .strip_prefix("auger:")
            .and_then(|rest| rest.split("(pid ").nth(1))
            .and_then(|rest| rest.strip_suffix(')'))
        {
            reap.bot = Some(pid.to_owned());
        }
        seen.push_str(&line);
        seen.push('\n');
        if line.starts_with("Serving until") {
            break;
        }
    }
    let bot = reap
        .bot
        .clone()
        .unwrap_or_else(|| panic!("no bot pid printed:\n{seen}"));
    let proc_dir = format!("/proc/{bot}");
    assert!(
        Path::new(&proc_dir).exists(),
        "the bot runs while the demo serves"
    );

    let demo_pid = reap.demo.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &demo_pid])
            .status()
            .unwrap()
            .success()
    );
    let signalled = Instant::now();
    let status = loop {
        if let Some(s) = reap.demo.try_wait().unwrap() {
            break s;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(30),
            "the demo did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(128 + 15), "{status:?}");
    // Waited for by the demo, so not even a zombie is left.
    assert!(
        !Path::new(&proc_dir).exists(),
        "auger serve (pid {bot}) outlived the demo"
    );
}
