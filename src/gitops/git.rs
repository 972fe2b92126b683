//! The `git` command line, for what gix cannot do yet (fetch into a bare cache, push).

use std::path::Path;
use std::process::Command;

/// Output of a git command that ran (successfully or not).
pub(super) struct GitOutput {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Credentials for an https remote: sent as an HTTP header scoped to that URL, through git's
/// environment-variable configuration (git ≥ 2.31), so the token is never in the remote URL,
/// in a file, or in the command line that `ps` shows.
#[derive(Clone)]
pub(super) struct HttpAuth {
    url: String,
    header: String,
}

impl HttpAuth {
    /// `None` for non-http remotes (`file://`, ssh), which need no token.
    pub(super) fn new(url: &str, token: &str) -> Option<HttpAuth> {
        use base64::Engine;
        if !(url.starts_with("https://") || url.starts_with("http://")) || token.is_empty() {
            return None;
        }
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
        Some(HttpAuth {
            url: url.to_owned(),
            header: format!("Authorization: Basic {basic}"),
        })
    }
}

/// Run `git --git-dir <dir> <args>` without prompting. Errors only when git cannot be started.
pub(super) fn run(dir: &Path, args: &[&str]) -> Result<GitOutput, String> {
    run_with(dir, args, None)
}

/// [`run`], with credentials for the remote when it needs them.
pub(super) fn run_with(dir: &Path, args: &[&str], auth: Option<&HttpAuth>) -> Result<GitOutput, String> {
    let mut cmd = Command::new("git");
    if let Some(a) = auth {
        cmd.env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", format!("http.{}.extraHeader", a.url))
            .env("GIT_CONFIG_VALUE_0", &a.header);
    }
    let out = cmd
        // Housekeeping that `fetch` starts must finish inside the caller's write lock: detached,
        // a `gc` could prune an old unreachable object that gix then reuses for a new commit
        // (gix does not freshen existing objects the way git does).
        .args(["-c", "gc.autoDetach=false", "-c", "maintenance.autoDetach=false"])
        .arg("--git-dir")
        .arg(dir)
        .args(args)
        // A credential prompt would hang a worker forever; fail instead.
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    Ok(GitOutput {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    })
}

/// `url` with any password or token replaced by `***`, for messages and logs (design §10).
pub(super) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or("***", |(u, _)| u);
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// `text` with every occurrence of the credentials in `url` masked: git echoes URLs in errors.
pub(super) fn scrub(text: &str, url: &str) -> String {
    let redacted = redact_url(url);
    if redacted == url {
        return text.to_owned();
    }
    let mut out = text.replace(url, &redacted);
    if let Some((_, rest)) = url.split_once("://")
        && let Some((userinfo, _)) = rest.split('/').next().unwrap_or("").rsplit_once('@')
        && let Some((_, secret)) = userinfo.split_once(':')
        && !secret.is_empty()
    {
        out = out.replace(secret, "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_reach_messages() {
        let url = "https://x-access-token:ghs_secret@github.com/acme/gitops.git";
        assert_eq!(
            redact_url(url),
            "https://x-access-token:***@github.com/acme/gitops.git"
        );
        assert_eq!(redact_url("file:///tmp/x.git"), "file:///tmp/x.git");
        let msg = format!("fatal: unable to access '{url}': token ghs_secret refused");
        let clean = scrub(&msg, url);
        assert!(!clean.contains("ghs_secret"), "{clean}");
    }
}
