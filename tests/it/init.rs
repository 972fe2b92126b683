//! `auger init --gitops DIR` on three sample gitops repositories (kustomize overlays, Flux
//! HelmReleases, Argo CD Applications; `tests/fixtures/gitops-samples/`): what it proposes
//! passes `auger policy check`, maps what it should and says what it could not, and a release
//! through what it wrote changes exactly the pinned values.

use std::path::{Path, PathBuf};

use auger::domain::BranchName;
use auger::gitops::{
    EditSpec, GitopsRepo, ReleaseInfo, RenderExtra, Target, Trigger, WriteOutcome, apply_edits, render_edits,
};
use auger::policy::load_dir;
use auger_yaml_edit::documents;

use crate::support::cli::{auger, stderr, stdout};
use crate::support::data::{api_artifact, env};
use crate::support::git::git_in;
use crate::support::remote::bare;

fn sample(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gitops-samples")
        .join(name)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Runs `auger init` on a git checkout of sample `name` whose origin is GitHub's
/// `acme/gitops`, then `auger policy check` on what it wrote. Returns the folder and init's
/// output.
fn init(name: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("gitops");
    copy_dir(&sample(name), &repo);
    git_in(&repo, &["init", "-q", "--initial-branch=main"]);
    git_in(
        &repo,
        &["remote", "add", "origin", "https://github.com/acme/gitops.git"],
    );
    let out = auger(dir.path(), &["init", "--gitops", "gitops", "--out", "proposal"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let check = auger(
        dir.path(),
        &["policy", "check", "--config", "proposal/auger.toml"],
    );
    assert!(
        check.status.success(),
        "{name}: {}{}",
        stdout(&check),
        stderr(&check)
    );
    (dir, stdout(&out))
}

/// Every env of every proposed policy, rendered for an artifact and applied to the sample:
/// each changed file parses, and only lines holding the old pinned value differ.
fn every_edit_applies(dir: &Path, sample_dir: &Path) -> Vec<(String, String, usize)> {
    let proposal = dir.join("proposal");
    let set =
        load_dir(&proposal.join("policies"), &proposal.join("templates")).unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    for policy in set.iter() {
        let a = api_artifact(policy.app().as_str(), 7);
        for (name, _) in policy.envs() {
            let edits = render_edits(policy, name, &a, &RenderExtra::new(Trigger::Policy)).unwrap();
            let changed =
                apply_edits::<auger::gitops::Refused>(&edits, |p| Ok(std::fs::read(sample_dir.join(p)).ok()))
                    .unwrap();
            for (file, bytes) in &changed {
                let after = String::from_utf8(bytes.clone()).unwrap();
                documents(&after).unwrap_or_else(|e| panic!("{file}: {e}"));
                let before = std::fs::read_to_string(sample_dir.join(file)).unwrap();
                for (b, n) in before.lines().zip(after.lines()).filter(|(b, n)| b != n) {
                    assert!(n.contains(a.sha.as_str()), "{file}: {b:?} → {n:?}");
                }
            }
            out.push((policy.app().to_string(), name.to_string(), changed.len()));
        }
    }
    out
}

#[test]
fn init_on_kustomize_overlays_maps_the_app_and_skips_the_base_and_redis() {
    let (dir, printed) = init("kustomize");
    let policy = std::fs::read_to_string(dir.path().join("proposal/policies/web.toml")).unwrap();
    assert!(policy.contains("repo = \"acme/web\""), "{policy}");
    assert!(
        policy.contains("gitops = { path = \"overlays/staging\" }"),
        "{policy}"
    );
    assert!(
        policy.contains("kustomize_image = { file = \"kustomization.yaml\", name = \"ghcr.io/acme/web\", tag = \"{{ artifact.sha }}\" }"),
        "{policy}"
    );
    // staging first (auto), production after it with an approval.
    let staging = policy.find("[env.staging]").unwrap();
    let production = policy.find("[env.production]").unwrap();
    assert!(staging < production);
    assert!(policy[production..].contains("after = { env = \"staging\" }"));
    let config = std::fs::read_to_string(dir.path().join("proposal/auger.toml")).unwrap();
    assert!(
        config.contains("repo = \"acme/gitops\"")
            && config.contains("url = \"https://github.com/acme/gitops.git\"")
    );
    assert!(
        printed.contains("base/web/deployment.yaml: ghcr.io/acme/web:latest"),
        "{printed}"
    );
    assert!(printed.contains("no environment name in its path"), "{printed}");
    assert!(
        printed.contains("docker.io/library/redis") && printed.contains("Docker Hub official image"),
        "{printed}"
    );
    assert!(!dir.path().join("proposal/policies/redis.toml").exists());
    let applied = every_edit_applies(dir.path(), &dir.path().join("gitops"));
    assert_eq!(
        applied,
        [
            ("web".into(), "staging".into(), 1),
            ("web".into(), "production".into(), 1)
        ]
    );
}

#[test]
fn init_on_flux_helmreleases_maps_two_apps_and_leaves_infrastructure_alone() {
    let (dir, printed) = init("flux");
    let web = std::fs::read_to_string(dir.path().join("proposal/policies/web.toml")).unwrap();
    assert!(
        web.contains("yaml_set = { file = \"web.yaml\", path = \"spec.values.image.tag\", value = \"{{ artifact.sha }}\", kind = \"HelmRelease\", name = \"web\" }"),
        "{web}"
    );
    assert!(
        web.contains("gitops = { path = \"clusters/production/apps\" }"),
        "{web}"
    );
    assert!(dir.path().join("proposal/policies/api.toml").exists());
    assert!(
        printed.contains("infrastructure/ingress-nginx.yaml") && printed.contains("not under ghcr.io/acme/"),
        "{printed}"
    );
    let applied = every_edit_applies(dir.path(), &dir.path().join("gitops"));
    assert_eq!(applied.len(), 4, "{applied:?}");
    assert!(applied.iter().all(|(_, _, files)| *files == 1), "{applied:?}");
}

#[test]
fn init_on_argocd_applications_maps_the_helm_parameter_and_then_a_release_edits_it() {
    let (dir, printed) = init("argocd");
    let web = std::fs::read_to_string(dir.path().join("proposal/policies/web.toml")).unwrap();
    assert!(
        web.contains("yaml_set = { file = \"web-staging.yaml\", path = \"spec.source.helm.parameters[1].value\", value = \"{{ artifact.sha }}\", kind = \"Application\", name = \"web-staging\" }"),
        "{web}"
    );
    assert!(
        printed.contains("charts/web/templates/deployment.yaml") && printed.contains("a template expression"),
        "{printed}"
    );
    assert_eq!(
        every_edit_applies(dir.path(), &dir.path().join("gitops")).len(),
        2
    );

    // A release through what init wrote: the sample pushed to a gitops remote, staging edited.
    let gitops = dir.path().join("gitops");
    git_in(&gitops, &["add", "."]);
    git_in(
        &gitops,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "commit",
            "-q",
            "-m",
            "layout",
        ],
    );
    let (remote, url) = bare(dir.path(), "remote.git");
    git_in(&gitops, &["push", "-q", &url, "HEAD:main"]);
    let repo = GitopsRepo::open(&dir.path().join("cache"), &url, BranchName::new("main").unwrap()).unwrap();
    let set = load_dir(
        &dir.path().join("proposal/policies"),
        &dir.path().join("proposal/templates"),
    )
    .unwrap();
    let policy = set.iter().next().unwrap();
    let a = api_artifact("web", 9);
    let spec = EditSpec {
        env: env("staging"),
        app: a.app.clone(),
        edits: render_edits(policy, &env("staging"), &a, &RenderExtra::new(Trigger::Policy)).unwrap(),
        release: ReleaseInfo::new(env("staging"), a.app.clone(), &a, Trigger::Policy),
        message: "release".into(),
        extra_trailers: Vec::new(),
        target: Target::Branch,
    };
    assert!(matches!(
        repo.prepare_edit(&spec).unwrap(),
        WriteOutcome::Committed { .. }
    ));
    let diff = git_in(&remote, &["diff", "main~1", "main"]);
    let changed: Vec<&str> = diff
        .lines()
        .filter(|l| l.starts_with(['-', '+']) && !l.starts_with("---") && !l.starts_with("+++"))
        .collect();
    assert_eq!(
        changed,
        [
            "-          value: \"2.3.1\"".to_owned(),
            format!("+          value: \"{}\"", a.sha)
        ]
    );
}

#[test]
fn init_refuses_to_overwrite_an_existing_policy() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&sample("kustomize"), &dir.path().join("gitops"));
    std::fs::create_dir_all(dir.path().join("proposal/policies")).unwrap();
    std::fs::write(dir.path().join("proposal/policies/web.toml"), "mine\n").unwrap();
    let out = auger(dir.path(), &["init", "--gitops", "gitops", "--out", "proposal"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("proposal/policies/web.toml")).unwrap(),
        "mine\n"
    );
    assert!(
        !dir.path().join("proposal/auger.toml").exists(),
        "nothing written"
    );
}

#[test]
fn init_on_a_url_clones_it_and_names_that_url_in_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    copy_dir(&sample("kustomize"), &work);
    git_in(&work, &["init", "-q", "--initial-branch=trunk"]);
    git_in(&work, &["add", "-A"]);
    git_in(&work, &["commit", "-q", "-m", "layout"]);
    let remote = dir.path().join("gitops.git");
    git_in(dir.path(), &["clone", "-q", "--bare", "work", "gitops.git"]);
    let url = format!("file://{}", remote.display());

    let out = auger(dir.path(), &["init", "--gitops", &url, "--out", "proposal"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let config = std::fs::read_to_string(dir.path().join("proposal/auger.toml")).unwrap();
    assert!(config.contains(&format!("url = \"{url}\"")), "{config}");
    assert!(config.contains("branch = \"trunk\""), "{config}");
    // Not a github.com URL: the repository's name is left for the operator, and init says so.
    assert!(
        stdout(&out).contains("GitHub name is not known"),
        "{}",
        stdout(&out)
    );
    let policy = std::fs::read_to_string(dir.path().join("proposal/policies/web.toml")).unwrap();
    assert!(
        policy.contains("gitops = { path = \"overlays/staging\" }"),
        "{policy}"
    );
    let check = auger(
        dir.path(),
        &["policy", "check", "--config", "proposal/auger.toml"],
    );
    assert!(check.status.success(), "{}{}", stdout(&check), stderr(&check));
}

#[test]
fn init_on_a_url_that_cannot_be_cloned_says_so_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}/missing.git", dir.path().display());
    let out = auger(dir.path(), &["init", "--gitops", &url, "--out", "proposal"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!("--gitops {url}")) && err.contains("cannot clone"),
        "{err}"
    );
    assert!(!dir.path().join("proposal").exists());
}
