//! Plain git, the way a user checks what auger wrote.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// `git --git-dir DIR ARGS`: its stdout whatever the exit, so a ref that does not exist yet
/// reads as empty.
pub fn git(git_dir: &Path, args: &[&str]) -> String {
    let out = at_git_dir(git_dir).args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `git --git-dir DIR ARGS`, which must succeed.
pub fn git_checked(git_dir: &Path, args: &[&str]) -> String {
    succeeded(args, at_git_dir(git_dir).args(args).output().unwrap())
}

/// `git -C DIR ARGS`, which must succeed; with an identity and `main` as the first branch, since
/// a fresh machine may have neither configured.
pub fn git_in(dir: &Path, args: &[&str]) -> String {
    succeeded(args, in_dir(dir).args(args).output().unwrap())
}

/// Whether `git -C DIR ARGS` succeeds (a push that may lose a race, an ancestry question).
pub fn git_ok_in(dir: &Path, args: &[&str]) -> bool {
    in_dir(dir).args(args).output().unwrap().status.success()
}

/// `git -C DIR ARGS` reading `input` on stdin, which must succeed.
pub fn git_in_with_stdin(dir: &Path, args: &[&str], input: &str) -> String {
    let mut child = in_dir(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    succeeded(args, child.wait_with_output().unwrap())
}

fn at_git_dir(git_dir: &Path) -> Command {
    let mut git = Command::new("git");
    git.arg("--git-dir").arg(git_dir);
    git
}

fn in_dir(dir: &Path) -> Command {
    let mut git = Command::new("git");
    git.args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args(["-c", "init.defaultBranch=main"])
        .arg("-C")
        .arg(dir);
    git
}

fn succeeded(args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The release commits on gitops main's first-parent history for staging/web, by the artifact
/// their `release.json` names (a pull request's merge counts once).
pub fn releases_by_artifact(gitops: &Path) -> std::collections::BTreeMap<String, usize> {
    let commits = git(
        gitops,
        &[
            "log",
            "--first-parent",
            "--format=%H",
            "main",
            "--",
            "staging/web",
        ],
    );
    let mut count = std::collections::BTreeMap::new();
    for c in commits.lines() {
        let json = git(gitops, &["show", &format!("{c}:staging/web/release.json")]);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        *count
            .entry(v["artifact"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    count
}
