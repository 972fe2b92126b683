//! Reading the watched branch with the `git` CLI, through a private bare mirror.
//!
//! The mirror is fetched into rather than reading the source repository in place, so a local
//! path and a URL behave the same, and a repository being pushed to while we read it is never
//! seen half-written: we only read objects a completed fetch brought in.

use std::path::{Path, PathBuf};
use std::process::Output;

use tokio::process::Command;

use crate::Error;

pub(crate) struct Mirror {
    source: String,
    branch: String,
    dir: tempfile::TempDir,
}

impl Mirror {
    pub(crate) async fn create(source: &str, branch: &str) -> Result<Mirror, Error> {
        let dir = tempfile::Builder::new()
            .prefix("cluster-sim-mirror-")
            .tempdir()
            .map_err(|e| Error::Git(format!("creating the mirror directory: {e}")))?;
        let mirror = Mirror {
            source: source.to_string(),
            branch: branch.to_string(),
            dir,
        };
        let path = mirror.git_dir().to_string_lossy().into_owned();
        run(None, &["init", "--quiet", "--bare", &path]).await?;
        Ok(mirror)
    }

    fn git_dir(&self) -> PathBuf {
        self.dir.path().join("mirror.git")
    }

    /// The tip of the branch in the source repository, `None` while the branch does not exist.
    pub(crate) async fn remote_tip(&self) -> Result<Option<String>, Error> {
        let refname = format!("refs/heads/{}", self.branch);
        let out = run(None, &["ls-remote", "--", &self.source, &refname]).await?;
        let text = String::from_utf8_lossy(&out.stdout);
        for line in text.lines() {
            if let Some((sha, name)) = line.split_once('\t')
                && name == refname
            {
                return Ok(Some(sha.to_string()));
            }
        }
        Ok(None)
    }

    /// Brings `sha` (the tip just seen) into the mirror.
    pub(crate) async fn fetch(&self, sha: &str) -> Result<(), Error> {
        let refspec = format!("+refs/heads/{0}:refs/heads/{0}", self.branch);
        self.git(&["fetch", "--quiet", "--no-tags", "--", &self.source, &refspec])
            .await?;
        // The branch may have moved again between ls-remote and fetch; what matters is that
        // the commit we decided to apply is here.
        self.git(&["cat-file", "-e", &format!("{sha}^{{commit}}")])
            .await
            .map(|_| ())
    }

    /// Whether anything under `path` differs between two commits.
    pub(crate) async fn path_changed(&self, from: &str, to: &str, path: &str) -> Result<bool, Error> {
        let pathspec = pathspec(path);
        let out = self
            .git_status(&["diff", "--quiet", from, to, "--", &pathspec])
            .await?;
        match out.status.code() {
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            _ => Err(failure("git diff", &out)),
        }
    }

    /// Whether `path` exists at `sha` (the whole tree when `path` is empty).
    pub(crate) async fn path_exists(&self, sha: &str, path: &str) -> Result<bool, Error> {
        let spec = if path.is_empty() {
            format!("{sha}^{{tree}}")
        } else {
            format!("{sha}:{path}")
        };
        let out = self
            .git_status(&["rev-parse", "--verify", "--quiet", &spec])
            .await?;
        Ok(out.status.success())
    }

    /// The files under `path` at `sha`, with their contents.
    pub(crate) async fn files(&self, sha: &str, path: &str) -> Result<Vec<(String, String)>, Error> {
        let pathspec = pathspec(path);
        let out = self
            .git(&["ls-tree", "-r", "-z", "--name-only", sha, "--", &pathspec])
            .await?;
        let mut files = Vec::new();
        for name in out.stdout.split(|b| *b == 0).filter(|n| !n.is_empty()) {
            let name = String::from_utf8_lossy(name).into_owned();
            let blob = self.git(&["cat-file", "blob", &format!("{sha}:{name}")]).await?;
            files.push((name, String::from_utf8_lossy(&blob.stdout).into_owned()));
        }
        Ok(files)
    }

    async fn git(&self, args: &[&str]) -> Result<Output, Error> {
        run(Some(&self.git_dir()), args).await
    }

    async fn git_status(&self, args: &[&str]) -> Result<Output, Error> {
        output(Some(&self.git_dir()), args).await
    }
}

/// A pathspec for a folder of the repository; the empty path is the whole tree.
fn pathspec(path: &str) -> String {
    if path.is_empty() {
        ".".to_string()
    } else {
        path.to_string()
    }
}

async fn output(git_dir: Option<&Path>, args: &[&str]) -> Result<Output, Error> {
    let mut cmd = Command::new("git");
    if let Some(dir) = git_dir {
        cmd.arg("--git-dir").arg(dir);
    }
    cmd.args(args)
        // Never wait on a credential prompt: the controller runs unattended.
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null())
        // Stopping the controller drops the future; the child must not outlive it.
        .kill_on_drop(true);
    cmd.output()
        .await
        .map_err(|e| Error::Git(format!("running git {}: {e}", args.join(" "))))
}

async fn run(git_dir: Option<&Path>, args: &[&str]) -> Result<Output, Error> {
    let out = output(git_dir, args).await?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(failure(
            &format!("git {}", args.first().copied().unwrap_or("")),
            &out,
        ))
    }
}

fn failure(what: &str, out: &Output) -> Error {
    Error::Git(format!(
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}
