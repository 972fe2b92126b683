//! `auger init --gitops DIR_OR_URL` (design §16): read a gitops repository a team already has, find
//! the images it pins (kustomizations, Flux HelmReleases, Argo CD Applications, plain
//! workloads, via `auger_yaml_edit::scan_images`) and propose `auger.toml` and one policy per
//! app whose environments edit exactly those values.
//!
//! The mapping is a guess a person reviews, so it is conservative and says what it did not map:
//! - the app is the image repository's last component; only images of the most common owner
//!   (`ghcr.io/acme/…`) become apps; others, and Docker Hub official images (a `redis` next to
//!   the app), are listed as not mapped;
//! - the environment is a path component or file-name part that is a usual environment name
//!   (`staging`, `production`, `prod`, `dev`, …); an image in a file without one (a kustomize
//!   base) is not mapped;
//! - an image pinned by digest alone is not mapped (which digest to write is CI's to say);
//! - the first environment (in the usual order dev → production) deploys `main` automatically
//!   and merges at once; each later one waits for the one before it and for an approval.
//!
//! Nothing here writes; [`write`] writes a [`Proposal`] and refuses to overwrite a file.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use auger_yaml_edit::{FoundImage, ImageSource, scan_images};

use crate::domain::{AppName, EnvName, RepoName};

/// Environment names recognised in paths, in promotion order.
const ENV_ORDER: [&str; 12] = [
    "dev",
    "development",
    "test",
    "qa",
    "stage",
    "staging",
    "uat",
    "preprod",
    "pre-production",
    "canary",
    "prod",
    "production",
];

/// Folders never scanned.
const SKIP_DIRS: [&str; 3] = [".git", "node_modules", ".github"];

/// At most this many files are read: a gitops repository is small; anything bigger is probably
/// the wrong folder.
const MAX_FILES: usize = 20_000;

/// One image reference and what it became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The file, relative to the scanned folder.
    pub file: String,
    pub image: FoundImage,
    /// (app, env) it was mapped to, or why not.
    pub mapped: Result<(AppName, EnvName), String>,
}

/// What `auger init` proposes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// `auger.toml`.
    pub config: String,
    /// `policies/<app>.toml` by app.
    pub policies: BTreeMap<AppName, String>,
    pub found: Vec<Found>,
    /// Files and facts that could not be mapped, each a sentence.
    pub unmapped: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("{}: already exists; auger init does not overwrite files (choose another --out)", .0.display())]
    Exists(PathBuf),
    #[error("{}: {reason}", path.display())]
    Write { path: PathBuf, reason: String },
}

/// One edit step of a proposed env.
struct Step {
    file: String,
    text: String,
}

/// Scans `dir` and proposes the configuration; `url`, `repo` and `branch` go into `auger.toml`'s
/// `[gitops]` (the caller reads them from the folder's git remote, or leaves placeholders).
pub fn propose(dir: &Path, repo: &RepoName, url: &str, branch: &str) -> Result<Proposal, InitError> {
    let mut files = Vec::new();
    collect_yaml(dir, dir, &mut files)?;
    files.sort();
    let mut unmapped = Vec::new();
    let mut found = Vec::new();
    for rel in &files {
        let path = dir.join(rel);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                unmapped.push(format!("{rel}: not read ({e})"));
                continue;
            }
        };
        match scan_images(&text) {
            Ok(images) => found.extend(images.into_iter().map(|image| Found {
                file: rel.clone(),
                image,
                mapped: Err(String::new()),
            })),
            // Helm chart templates and other non-YAML text: nothing auger can edit.
            Err(e) => unmapped.push(format!("{rel}: not YAML auger can edit ({e})")),
        }
    }

    let owner = main_owner(&found);
    for f in &mut found {
        f.mapped = map(f, owner.as_deref());
    }

    // (app, env) → steps, in file order.
    let mut apps: BTreeMap<AppName, BTreeMap<EnvName, Vec<Step>>> = BTreeMap::new();
    for f in &found {
        let Ok((app, env)) = &f.mapped else { continue };
        match step(f) {
            Ok(s) => apps
                .entry(app.clone())
                .or_default()
                .entry(env.clone())
                .or_default()
                .push(s),
            Err(reason) => unmapped.push(format!("{}: {}: {reason}", f.file, f.image.value)),
        }
    }
    for f in &found {
        if let Err(reason) = &f.mapped {
            unmapped.push(format!(
                "{}: {} ({}): {reason}",
                f.file, f.image.value, f.image.document
            ));
        }
    }

    let mut policies = BTreeMap::new();
    for (app, envs) in &apps {
        match policy_text(app, envs, owner.as_deref()) {
            Ok(text) => {
                policies.insert(app.clone(), text);
            }
            Err(reason) => unmapped.push(format!("app {app}: {reason}")),
        }
    }
    if !policies.is_empty() {
        unmapped.push(
            "CI: no [artifact] signals are set (artifacts come only through the API until you add e.g. signals = [\"workflow_run:CI\"])".into(),
        );
    }
    Ok(Proposal {
        config: config_text(repo, url, branch),
        policies,
        found,
        unmapped,
    })
}

/// Writes `auger.toml`, `policies/<app>.toml` and an empty `templates/` under `out`, refusing to
/// overwrite any file. Returns the files written.
pub fn write(proposal: &Proposal, out: &Path) -> Result<Vec<PathBuf>, InitError> {
    let config = out.join("auger.toml");
    let policies = out.join("policies");
    let mut targets = vec![(config, proposal.config.clone())];
    for (app, text) in &proposal.policies {
        targets.push((policies.join(format!("{app}.toml")), text.clone()));
    }
    // Check everything first, so a refusal writes nothing.
    for (path, _) in &targets {
        if path.exists() {
            return Err(InitError::Exists(path.clone()));
        }
    }
    let write_err = |path: &Path, e: std::io::Error| InitError::Write {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    for dir in [policies.clone(), out.join("templates")] {
        std::fs::create_dir_all(&dir).map_err(|e| write_err(&dir, e))?;
    }
    let mut written = Vec::new();
    for (path, text) in targets {
        std::fs::write(&path, text).map_err(|e| write_err(&path, e))?;
        written.push(path);
    }
    Ok(written)
}

/// What `auger init` prints: what was found, what was proposed, what was not mapped.
pub fn report(proposal: &Proposal) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "found {} image reference(s):", proposal.found.len());
    for f in &proposal.found {
        let to = match &f.mapped {
            Ok((app, env)) => format!("→ {app} / {env}"),
            Err(_) => "→ not mapped".to_owned(),
        };
        let _ = writeln!(
            out,
            "  {}: {} at {} ({}) {to}",
            f.file,
            f.image.value,
            f.image.path,
            source_name(f.image.source)
        );
    }
    let _ = writeln!(out, "proposed {} policy file(s):", proposal.policies.len());
    for app in proposal.policies.keys() {
        let _ = writeln!(out, "  policies/{app}.toml");
    }
    if !proposal.unmapped.is_empty() {
        let _ = writeln!(out, "not mapped ({}):", proposal.unmapped.len());
        for u in &proposal.unmapped {
            let _ = writeln!(out, "  {u}");
        }
    }
    out
}

fn source_name(source: ImageSource) -> &'static str {
    match source {
        ImageSource::KustomizeImages => "kustomization images",
        ImageSource::HelmValues => "Helm values",
        ImageSource::HelmValuesImageString => "Helm values image string",
        ImageSource::HelmParameter => "Argo CD Helm parameter",
        ImageSource::ArgoKustomizeImage => "Argo CD kustomize image",
        ImageSource::Container => "container image",
    }
}

/// `*.yaml` / `*.yml` files under `dir`, relative, `/`-separated; symlinks are not followed.
fn collect_yaml(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), InitError> {
    let read_err = |e: std::io::Error| InitError::Read {
        path: dir.to_owned(),
        reason: e.to_string(),
    };
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type().map_err(read_err)?;
        let path = entry.path();
        if kind.is_dir() {
            if !SKIP_DIRS.contains(&name.as_str()) {
                collect_yaml(root, &path, out)?;
            }
        } else if kind.is_file() && (name.ends_with(".yaml") || name.ends_with(".yml")) {
            if out.len() >= MAX_FILES {
                return Err(InitError::Read {
                    path: root.to_owned(),
                    reason: format!("more than {MAX_FILES} YAML files: is this the gitops repository?"),
                });
            }
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let rel: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push(rel.join("/"));
        }
    }
    Ok(())
}

/// `ghcr.io/acme/web` → `ghcr.io/acme`.
fn owner_of(repository: &str) -> Option<&str> {
    repository.rsplit_once('/').map(|(owner, _)| owner)
}

/// A Docker Hub official image (`redis`, `docker.io/library/redis`): never the team's app.
fn official(repository: &str) -> bool {
    !repository.contains('/')
        || repository.starts_with("docker.io/library/")
        || repository.starts_with("library/")
}

/// The owner most images belong to (the team's registry namespace).
fn main_owner(found: &[Found]) -> Option<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for f in found {
        if let Some(owner) = f
            .image
            .repository
            .as_deref()
            .filter(|r| !official(r))
            .and_then(owner_of)
        {
            *counts.entry(owner).or_default() += 1;
        }
    }
    let best = counts.values().copied().max()?;
    // A tie is no evidence: then every owner counts.
    let top: Vec<&str> = counts
        .iter()
        .filter(|(_, c)| **c == best)
        .map(|(o, _)| *o)
        .collect();
    (top.len() == 1).then(|| top[0].to_owned())
}

fn map(f: &Found, owner: Option<&str>) -> Result<(AppName, EnvName), String> {
    if f.image.value.contains("{{") {
        return Err("a template expression (a Helm chart template?), not a pinned value".into());
    }
    let repository = f
        .image
        .repository
        .as_deref()
        .ok_or("the file does not name the image's repository")?;
    if official(repository) {
        return Err("a Docker Hub official image (third-party)".into());
    }
    if let Some(owner) = owner
        && owner_of(repository) != Some(owner)
    {
        return Err(format!(
            "not under {owner}/ like the other images (a third-party image?)"
        ));
    }
    let last = repository.rsplit('/').next().unwrap_or(repository);
    let app = AppName::new(sanitize(last)).map_err(|e| format!("no app name from {repository:?}: {e}"))?;
    let env = env_of(&f.file).ok_or("no environment name in its path (a shared base?)")?;
    Ok((app, env))
}

/// Lowercase letters, digits and `-`, as app names need.
fn sanitize(s: &str) -> String {
    let mapped: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    mapped.trim_matches('-').chars().take(53).collect()
}

/// The environment a file belongs to: the last path component, or part of one split at `-`,
/// `_` and `.`, that is a usual environment name.
fn env_of(file: &str) -> Option<EnvName> {
    let mut found = None;
    for component in file.split('/') {
        let stem = component
            .strip_suffix(".yaml")
            .or_else(|| component.strip_suffix(".yml"));
        let component = stem.unwrap_or(component).to_ascii_lowercase();
        if ENV_ORDER.contains(&component.as_str()) {
            found = Some(component);
            continue;
        }
        for part in component.split(['-', '_', '.']) {
            if ENV_ORDER.contains(&part) {
                found = Some(part.to_owned());
            }
        }
    }
    found.and_then(|e| EnvName::new(e).ok())
}

/// The edit step for one mapped image.
fn step(f: &Found) -> Result<Step, String> {
    let image = &f.image;
    if image.tag.is_none() && image.digest.is_some() {
        return Err("pinned by digest alone: set a digest = \"{{ vars.digest }}\" step by hand".into());
    }
    let file = f.file.rsplit('/').next().unwrap_or(&f.file).to_owned();
    let text = match image.source {
        ImageSource::KustomizeImages => {
            let name = image.repository.as_deref().unwrap_or_default();
            format!(
                "kustomize_image = {{ file = {}, name = {}, tag = \"{{{{ artifact.sha }}}}\" }}",
                toml_str(&file),
                toml_str(name)
            )
        }
        _ => {
            // The whole `repo:tag` string, or the tag alone: keep what precedes the tag.
            let value = match &image.tag {
                Some(tag) if image.value == *tag => "{{ artifact.sha }}".to_owned(),
                Some(tag) if image.value.ends_with(&format!(":{tag}")) => {
                    format!(
                        "{}{{{{ artifact.sha }}}}",
                        &image.value[..image.value.len() - tag.len()]
                    )
                }
                _ => return Err("no tag to replace".into()),
            };
            let mut select = String::new();
            if let Some(kind) = &image.document.kind {
                let _ = write!(select, ", kind = {}", toml_str(kind));
            }
            if let Some(name) = &image.document.name {
                let _ = write!(select, ", name = {}", toml_str(name));
            }
            format!(
                "yaml_set = {{ file = {}, path = {}, value = {}{select} }}",
                toml_str(&file),
                toml_str(&image.path.to_string()),
                toml_str(&value)
            )
        }
    };
    Ok(Step {
        file: f.file.clone(),
        text,
    })
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn env_rank(env: &EnvName) -> (usize, String) {
    let rank = ENV_ORDER
        .iter()
        .position(|e| *e == env.as_str())
        .unwrap_or(ENV_ORDER.len());
    (rank, env.to_string())
}

fn policy_text(
    app: &AppName,
    envs: &BTreeMap<EnvName, Vec<Step>>,
    owner: Option<&str>,
) -> Result<String, String> {
    let mut order: Vec<&EnvName> = envs.keys().collect();
    order.sort_by_key(|e| env_rank(e));
    // ghcr.io/<owner>/<app> usually builds from github.com/<owner>/<app>.
    let source = owner
        .and_then(|o| {
            o.strip_prefix("ghcr.io/")
                .or_else(|| o.strip_prefix("docker.io/"))
        })
        .filter(|o| !o.contains('/'))
        .and_then(|o| RepoName::new(format!("{o}/{app}")).ok());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Proposed by `auger init`: review every line, then `auger policy check`."
    );
    let _ = writeln!(out, "app = \"{app}\"");
    match &source {
        Some(repo) => {
            let _ = writeln!(out, "repo = \"{repo}\"   # guessed from the image name");
        }
        None => {
            let _ = writeln!(
                out,
                "repo = \"change-me/{app}\"   # the source repository of {app}: not known"
            );
        }
    }
    let _ = writeln!(out, "\n[artifact]\nsignals = []   # e.g. [\"workflow_run:CI\"]");
    let mut previous: Option<&EnvName> = None;
    for env in order {
        let steps = &envs[env];
        let folders: BTreeSet<&str> = steps
            .iter()
            .map(|s| s.file.rsplit_once('/').map_or("", |(d, _)| d))
            .collect();
        let [folder] = folders.into_iter().collect::<Vec<_>>()[..] else {
            return Err(format!(
                "environment {env} edits files in several folders; write its steps by hand"
            ));
        };
        if folder.is_empty() {
            return Err(format!(
                "environment {env} edits files at the repository root; write its steps by hand"
            ));
        }
        let _ = writeln!(out, "\n[env.{env}]");
        match previous {
            None => {
                let _ = writeln!(out, "auto = {{ branch = \"main\" }}\nmerge = \"auto\"");
            }
            Some(before) => {
                let _ = writeln!(
                    out,
                    "merge = \"approval\"\napprovers = [\"permission:maintain\"]\nafter = {{ env = \"{before}\" }}"
                );
            }
        }
        let _ = writeln!(out, "deployers = [\"permission:write\"]");
        let _ = writeln!(out, "gitops = {{ path = {} }}", toml_str(folder));
        for s in steps {
            let _ = writeln!(out, "\n[[env.{env}.edit]]\n{}", s.text);
        }
        previous = Some(env);
    }
    Ok(out)
}

/// The gitops repository `auger init` reads: a checkout, or a fresh shallow clone of a URL.
pub struct Source {
    /// The folder to scan.
    pub dir: PathBuf,
    /// `owner/name` on GitHub, when the URL is a github.com one.
    pub repo: Option<RepoName>,
    /// What `[gitops] url` should say.
    pub url: String,
    pub branch: String,
    /// The clone of a URL, removed when the source is dropped.
    _clone: Option<tempfile::TempDir>,
}

impl Source {
    /// `arg` is a folder (a checkout: its `origin` and `HEAD` name the repository, URL and
    /// branch) or a git URL (https, ssh, `git@host:path`, `file://`), cloned shallowly into a
    /// temporary folder. A folder that exists wins over a URL-looking name.
    pub fn locate(arg: &str) -> Result<Source, InitError> {
        let path = Path::new(arg);
        if path.exists() || !looks_like_url(arg) {
            let dir = path.canonicalize().map_err(|e| InitError::Read {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
            let origin = git_output(&dir, &["remote", "get-url", "origin"]);
            let branch =
                git_output(&dir, &["symbolic-ref", "--short", "HEAD"]).unwrap_or_else(|| "main".into());
            return Ok(Source {
                repo: origin.as_deref().and_then(github_repo_name),
                url: origin.unwrap_or_else(|| format!("file://{}", dir.display())),
                branch,
                dir,
                _clone: None,
            });
        }
        let clone = tempfile::Builder::new()
            .prefix("auger-init-")
            .tempdir()
            .map_err(|e| InitError::Read {
                path: std::env::temp_dir(),
                reason: format!("cannot make a folder to clone into: {e}"),
            })?;
        let dir = clone.path().join("gitops");
        let out = std::process::Command::new("git")
            .args(["clone", "--quiet", "--depth", "1", "--", arg])
            .arg(&dir)
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()
            .map_err(|e| InitError::Read {
                path: PathBuf::from(arg),
                reason: format!("cannot run git: {e}"),
            })?;
        if !out.status.success() {
            return Err(InitError::Read {
                path: PathBuf::from(arg),
                reason: format!("cannot clone: {}", String::from_utf8_lossy(&out.stderr).trim()),
            });
        }
        let branch = git_output(&dir, &["symbolic-ref", "--short", "HEAD"]).unwrap_or_else(|| "main".into());
        Ok(Source {
            repo: github_repo_name(arg),
            url: arg.to_owned(),
            branch,
            dir,
            _clone: Some(clone),
        })
    }
}

/// Whether `arg` names a remote rather than a folder.
fn looks_like_url(arg: &str) -> bool {
    arg.contains("://") || (arg.starts_with("git@") && arg.contains(':'))
}

/// What `git -C dir <argv>` prints, trimmed; `None` when it fails or prints nothing.
fn git_output(dir: &Path, argv: &[&str]) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(argv)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// `owner/name` of a github.com remote URL (https or ssh).
pub fn github_repo_name(url: &str) -> Option<RepoName> {
    let rest = url
        .strip_prefix("https://github.com/")
        .or_else(|| url.strip_prefix("git@github.com:"))
        .or_else(|| url.strip_prefix("ssh://git@github.com/"))?;
    RepoName::new(rest.trim_end_matches('/').trim_end_matches(".git")).ok()
}

fn config_text(repo: &RepoName, url: &str, branch: &str) -> String {
    format!(
        "# Proposed by `auger init`: review, then `auger policy check` and `auger serve`.\n\
         [gitops]\n\
         repo = {}\n\
         url = {}\n\
         branch = {}\n\
         \n\
         [paths]\n\
         policies = \"policies\"\n\
         templates = \"templates\"\n",
        toml_str(repo.as_str()),
        toml_str(url),
        toml_str(branch)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environments_come_from_path_components_and_file_name_parts() {
        let env = |f: &str| env_of(f).map(|e| e.to_string());
        assert_eq!(
            env("overlays/staging/web/kustomization.yaml").as_deref(),
            Some("staging")
        );
        assert_eq!(env("apps/web-production.yaml").as_deref(), Some("production"));
        assert_eq!(
            env("clusters/prod/apps/web/release.yaml").as_deref(),
            Some("prod")
        );
        assert_eq!(env("base/web/deployment.yaml"), None);
    }

    #[test]
    fn app_names_are_made_valid() {
        assert_eq!(sanitize("Web_API"), "web-api");
        assert_eq!(sanitize("-x-"), "x");
    }
}
