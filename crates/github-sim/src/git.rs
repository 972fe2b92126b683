//! Thin wrapper over the `git` CLI, run inside bare repositories.
//!
//! Everything works without a worktree: commits are built with a temporary index file, merges
//! with `git merge-tree --write-tree`, and every ref update is compare-and-swap
//! (`git update-ref <ref> <new> <old>`), so a concurrent push by the client under test cannot be
//! silently overwritten.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::{Context, Result, bail};

/// The all-zero object id git and GitHub use for "no commit" (branch created or deleted).
pub const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

/// Author identity and timestamp for a commit the simulator writes.
#[derive(Debug, Clone)]
pub struct Signature {
    pub name: String,
    pub email: String,
}

/// What `git show` knows about one commit.
#[derive(Debug, Clone)]
pub struct CommitInfo {
    pub sha: String,
    pub tree: String,
    pub parents: Vec<String>,
    pub author_name: String,
    pub author_email: String,
    pub author_date: String,
    pub committer_name: String,
    pub committer_email: String,
    pub committer_date: String,
    pub message: String,
}

/// One changed path between two commits.
#[derive(Debug, Clone)]
pub struct FileChange {
    /// `added`, `removed` or `modified` (GitHub's words).
    pub status: &'static str,
    pub path: String,
}

/// A bare repository on disk.
#[derive(Debug, Clone)]
pub struct BareRepo {
    path: PathBuf,
}

impl BareRepo {
    /// Creates (or reopens) a bare repository with `default_branch` as HEAD.
    pub fn init(path: &Path, default_branch: &str) -> Result<Self> {
        std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
        let repo = BareRepo {
            path: path.to_path_buf(),
        };
        repo.run(&[
            "init",
            "--bare",
            "--quiet",
            &format!("--initial-branch={default_branch}"),
        ])?;
        // Clients push into these repos over file://; let them update the checked-out branch.
        repo.run(&["config", "receive.denyCurrentBranch", "ignore"])?;
        Ok(repo)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("git");
        cmd.arg("--git-dir").arg(&self.path);
        // Keep the host's configuration (signing, hooks paths, editors) out of the simulation.
        cmd.env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(Stdio::null());
        cmd
    }

    fn output(&self, args: &[&str], envs: &[(&str, &str)], input: Option<&[u8]>) -> Result<Output> {
        let mut cmd = self.command();
        cmd.args(args);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let out = if let Some(input) = input {
            use std::io::Write;
            cmd.stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = cmd.spawn().context("spawning git")?;
            if let Some(mut stdin) = child.stdin.take() {
                stdin.write_all(input)?;
            }
            child.wait_with_output()?
        } else {
            cmd.output().context("spawning git")?
        };
        Ok(out)
    }

    fn run_env(&self, args: &[&str], envs: &[(&str, &str)], input: Option<&[u8]>) -> Result<String> {
        let out = self.output(args, envs, input)?;
        if !out.status.success() {
            bail!(
                "git {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    }

    fn run(&self, args: &[&str]) -> Result<String> {
        self.run_env(args, &[], None)
    }

    /// Resolves a revision to a commit sha, `None` when it does not exist.
    pub fn resolve(&self, rev: &str) -> Option<String> {
        let spec = format!("{rev}^{{commit}}");
        let out = self
            .output(&["rev-parse", "--verify", "--quiet", &spec], &[], None)
            .ok()?;
        if out.status.success() {
            Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            None
        }
    }

    /// The object a ref points at (a tag object for annotated tags), `None` when absent.
    pub fn ref_target(&self, full_ref: &str) -> Option<String> {
        let out = self
            .output(&["rev-parse", "--verify", "--quiet", full_ref], &[], None)
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// All refs under `prefix` (e.g. `refs/heads/`) with their targets, sorted by name.
    pub fn list_refs(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        let out = self.run(&["for-each-ref", "--format=%(refname) %(objectname)", prefix])?;
        Ok(out
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(r, s)| (r.to_string(), s.to_string()))
            .collect())
    }

    /// Compare-and-swap ref update; `old` = `None` means "must not exist yet".
    pub fn update_ref(&self, full_ref: &str, new: &str, old: Option<&str>) -> Result<()> {
        let old = old.unwrap_or(ZERO_SHA);
        self.run(&["update-ref", full_ref, new, old])?;
        Ok(())
    }

    /// Deletes a ref if it still points at `old`.
    pub fn delete_ref(&self, full_ref: &str, old: &str) -> Result<()> {
        self.run(&["update-ref", "-d", full_ref, old])?;
        Ok(())
    }

    /// Writes a commit whose tree is `parent`'s tree with `files` (path, content) written over it;
    /// `None` as content removes the path.
    pub fn commit_files(
        &self,
        parent: Option<&str>,
        files: &[(&str, Option<&str>)],
        message: &str,
        author: &Signature,
    ) -> Result<String> {
        let index = tempfile::NamedTempFile::new().context("temporary index")?;
        let index_path = index.path().to_string_lossy().to_string();
        let env = [("GIT_INDEX_FILE", index_path.as_str())];
        match parent {
            Some(p) => self.run_env(&["read-tree", p], &env, None)?,
            None => self.run_env(&["read-tree", "--empty"], &env, None)?,
        };
        for (path, content) in files {
            match content {
                Some(content) => {
                    let blob =
                        self.run_env(&["hash-object", "-w", "--stdin"], &[], Some(content.as_bytes()))?;
                    let info = format!("100644,{blob},{path}");
                    self.run_env(&["update-index", "--add", "--cacheinfo", &info], &env, None)?;
                }
                None => {
                    self.run_env(&["update-index", "--force-remove", path], &env, None)?;
                }
            }
        }
        let tree = self.run_env(&["write-tree"], &env, None)?;
        let parents: Vec<&str> = parent.into_iter().collect();
        self.commit_tree(&tree, &parents, message, author)
    }

    /// `git commit-tree` with an explicit identity (author = committer).
    pub fn commit_tree(
        &self,
        tree: &str,
        parents: &[&str],
        message: &str,
        author: &Signature,
    ) -> Result<String> {
        let mut args = vec!["commit-tree", tree];
        for p in parents {
            args.push("-p");
            args.push(p);
        }
        let env = [
            ("GIT_AUTHOR_NAME", author.name.as_str()),
            ("GIT_AUTHOR_EMAIL", author.email.as_str()),
            ("GIT_COMMITTER_NAME", author.name.as_str()),
            ("GIT_COMMITTER_EMAIL", author.email.as_str()),
        ];
        self.run_env(&args, &env, Some(message.as_bytes()))
    }

    /// Merges `theirs` into `ours` in memory; `Ok(None)` on conflicts.
    pub fn merge_tree(&self, ours: &str, theirs: &str) -> Result<Option<String>> {
        let out = self.output(&["merge-tree", "--write-tree", ours, theirs], &[], None)?;
        match out.status.code() {
            Some(0) => {
                let text = String::from_utf8_lossy(&out.stdout);
                Ok(text.lines().next().map(str::to_string))
            }
            Some(1) => Ok(None),
            _ => bail!(
                "git merge-tree failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        }
    }

    pub fn merge_base(&self, a: &str, b: &str) -> Option<String> {
        self.run(&["merge-base", a, b]).ok().filter(|s| !s.is_empty())
    }

    pub fn is_ancestor(&self, ancestor: &str, descendant: &str) -> bool {
        self.output(&["merge-base", "--is-ancestor", ancestor, descendant], &[], None)
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    /// Commits reachable from `include` but from none of `exclude`, oldest first.
    pub fn rev_list(&self, include: &str, exclude: &[&str], limit: usize) -> Result<Vec<String>> {
        let max = format!("--max-count={limit}");
        let mut args = vec!["rev-list", "--topo-order", &max, include];
        let negated: Vec<String> = exclude.iter().map(|e| format!("^{e}")).collect();
        args.extend(negated.iter().map(String::as_str));
        let out = self.run(&args)?;
        let mut shas: Vec<String> = out.lines().map(str::to_string).collect();
        shas.reverse();
        Ok(shas)
    }

    pub fn commit_info(&self, sha: &str) -> Result<CommitInfo> {
        let fmt = "--format=%H%x00%T%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B";
        let out = self.run(&["show", "-s", fmt, sha])?;
        let parts: Vec<&str> = out.splitn(10, '\0').collect();
        if parts.len() != 10 {
            bail!("unexpected git show output for {sha}");
        }
        Ok(CommitInfo {
            sha: parts[0].to_string(),
            tree: parts[1].to_string(),
            parents: parts[2].split_whitespace().map(str::to_string).collect(),
            author_name: parts[3].to_string(),
            author_email: parts[4].to_string(),
            author_date: parts[5].to_string(),
            committer_name: parts[6].to_string(),
            committer_email: parts[7].to_string(),
            committer_date: parts[8].to_string(),
            message: parts[9].trim_end().to_string(),
        })
    }

    /// Paths changed from `from` (or the empty tree) to `to`.
    pub fn diff_files(&self, from: Option<&str>, to: &str) -> Result<Vec<FileChange>> {
        let out = match from {
            Some(from) => self.run(&["diff-tree", "-r", "--no-renames", "--name-status", from, to])?,
            None => self.run(&[
                "diff-tree",
                "-r",
                "--root",
                "--no-commit-id",
                "--no-renames",
                "--name-status",
                to,
            ])?,
        };
        Ok(out
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(st, path)| FileChange {
                status: match st {
                    "A" => "added",
                    "D" => "removed",
                    _ => "modified",
                },
                path: path.to_string(),
            })
            .collect())
    }

    /// The object type at `rev:path` (`blob`, `tree`), `None` when absent.
    pub fn object_type(&self, object: &str) -> Option<String> {
        let out = self.output(&["cat-file", "-t", object], &[], None).ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    pub fn object_sha(&self, object: &str) -> Option<String> {
        let out = self
            .output(&["rev-parse", "--verify", "--quiet", object], &[], None)
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    pub fn blob(&self, sha: &str) -> Result<Vec<u8>> {
        let out = self.output(&["cat-file", "blob", sha], &[], None)?;
        if !out.status.success() {
            bail!("no blob {sha}");
        }
        Ok(out.stdout)
    }

    /// Entries of a tree: (mode, type, sha, name).
    pub fn ls_tree(&self, tree_ish: &str) -> Result<Vec<(String, String, String, String)>> {
        let out = self.run(&["ls-tree", tree_ish])?;
        Ok(out
            .lines()
            .filter_map(|l| {
                let (meta, name) = l.split_once('\t')?;
                let mut it = meta.split_whitespace();
                Some((
                    it.next()?.to_string(),
                    it.next()?.to_string(),
                    it.next()?.to_string(),
                    name.to_string(),
                ))
            })
            .collect())
    }

    /// Copies `src_ref` of another repository into `dst_ref` here (how GitHub keeps
    /// `refs/pull/N/head` for fork pull requests).
    pub fn fetch_ref(&self, from: &Path, src: &str, dst: &str) -> Result<()> {
        let from = from.to_string_lossy().to_string();
        let spec = format!("+{src}:{dst}");
        self.run(&["fetch", "--quiet", "--no-tags", &from, &spec])?;
        Ok(())
    }

    /// Creates an annotated tag object pointing at `target`.
    pub fn make_tag_object(
        &self,
        name: &str,
        target: &str,
        message: &str,
        who: &Signature,
    ) -> Result<String> {
        let now = chrono::Utc::now().timestamp();
        let text = format!(
            "object {target}\ntype commit\ntag {name}\ntagger {} <{}> {now} +0000\n\n{message}\n",
            who.name, who.email
        );
        self.run_env(
            &["hash-object", "-t", "tag", "-w", "--stdin"],
            &[],
            Some(text.as_bytes()),
        )
    }

    /// Installs (or removes) a `pre-receive` hook that refuses every push.
    pub fn set_refuse_pushes(&self, refuse: bool) -> Result<()> {
        let hooks = self.path.join("hooks");
        std::fs::create_dir_all(&hooks)?;
        let hook = hooks.join("pre-receive");
        if refuse {
            write_executable(
                &hook,
                "#!/bin/sh\necho 'github-sim: pushes to this repository are refused' >&2\nexit 1\n",
            )?;
        } else if hook.exists() {
            std::fs::remove_file(&hook)?;
        }
        Ok(())
    }

    /// Installs a `post-receive` hook that reports pushes made by clients (auger pushing over
    /// file://) to the simulator, so it can emit the webhooks GitHub would.
    pub fn install_post_receive(&self, notify_url: &str) -> Result<()> {
        let hooks = self.path.join("hooks");
        std::fs::create_dir_all(&hooks)?;
        let script = format!(
            "#!/bin/sh\ncurl -s --max-time 10 -o /dev/null -X POST -H 'Content-Type: text/plain' --data-binary @- '{notify_url}' || true\n"
        );
        write_executable(&hooks.join("post-receive"), &script)
    }
}

fn write_executable(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}
