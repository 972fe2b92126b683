//! Bare repositories in temp folders that play a gitops or ledger remote, reached through
//! `file://` URLs.

use std::path::{Path, PathBuf};

use super::git::git_in;

/// An empty bare repository `dir/name` whose first branch is `main`, and its `file://` URL.
pub fn bare(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    std::fs::create_dir_all(&path).unwrap();
    git_in(&path, &["init", "--bare", "--quiet", "--initial-branch=main"]);
    let url = format!("file://{}", path.display());
    (path, url)
}

/// A bare gitops repository with one commit (a README) on main.
pub struct GitopsRemote {
    _dir: tempfile::TempDir,
    pub bare: PathBuf,
    pub url: String,
}

impl GitopsRemote {
    pub fn with_readme() -> GitopsRemote {
        let dir = tempfile::tempdir().unwrap();
        let (bare, url) = bare(dir.path(), "gitops.git");
        let work = dir.path().join("seed");
        git_in(dir.path(), &["clone", "-q", &url, work.to_str().unwrap()]);
        std::fs::write(work.join("README.md"), "gitops\n").unwrap();
        git_in(&work, &["add", "."]);
        git_in(&work, &["commit", "-q", "-m", "init"]);
        git_in(&work, &["push", "-q", "origin", "HEAD:main"]);
        GitopsRemote { _dir: dir, bare, url }
    }
}
