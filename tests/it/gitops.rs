//! Rendering, the gitops writer and the history reader against real git repositories: bare
//! repositories in temp folders play the remote, reached through `file://` URLs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use auger::artifact::Artifact;
use auger::domain::{AppName, BranchName, CommitSha};
use auger::gitops::{
    Files, GitopsRepo, HistoryEntry, HistoryFilter, ReleaseInfo, ReleaseSpec, RenderError, RenderExtra,
    Target, Trailer, Trigger, WriteOutcome, check_template, pr_branch, preview_name, render,
    render_command_output,
};
use auger::policy::{Policy, TemplateName, load_dir};

use crate::support::data::{api_artifact, app, env};
use crate::support::git::{git_in, git_in_with_stdin, git_ok_in};
use crate::support::remote::bare;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn open(dir: &Path, url: &str) -> GitopsRepo {
    GitopsRepo::open(&dir.join("cache.git"), url, BranchName::new("main").unwrap()).unwrap()
}

fn files(pairs: &[(&str, &str)]) -> Files {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect()
}

fn spec(env_name: &str, a: &Artifact, files: Files, target: Target) -> ReleaseSpec {
    let release = ReleaseInfo::new(env(env_name), a.app.clone(), a, Trigger::Policy);
    ReleaseSpec {
        env: env(env_name),
        app: a.app.clone(),
        files,
        message: format!("release {} to {env_name}", a.id),
        release,
        extra_trailers: Vec::new(),
        target,
    }
}

fn committed(outcome: WriteOutcome) -> CommitSha {
    match outcome {
        WriteOutcome::Committed { commit, .. } => commit,
        other => panic!("expected a commit, got {other:?}"),
    }
}

fn rev(repo: &Path, rev: &str) -> String {
    git_in(repo, &["rev-parse", rev]).trim().to_owned()
}

fn count(repo: &Path, rev: &str) -> usize {
    git_in(repo, &["rev-list", "--count", rev])
        .trim()
        .parse()
        .unwrap()
}

fn ls(repo: &Path, rev: &str, path: &str) -> Vec<String> {
    git_in(repo, &["ls-tree", "-r", "--name-only", rev, "--", path])
        .lines()
        .map(str::to_owned)
        .collect()
}

fn example_policies() -> auger::policy::PolicySet {
    load_dir(&root().join("policies"), &root().join("templates")).unwrap_or_else(|e| panic!("{e}"))
}

// ----- examples and rendering --------------------------------------------------------------

#[test]
fn shipped_policies_load_without_errors() {
    let set = example_policies();
    let apps: Vec<&str> = set.apps().map(|a| a.as_str()).collect();
    assert_eq!(apps, ["api", "frontend"]);
    let api = set.get(&app("api")).unwrap();
    assert_eq!(
        api.env(&env("staging")).unwrap().merge,
        auger::policy::MergeMode::Direct
    );
}

#[test]
fn starter_template_renders_a_deployment_with_the_policy_image() {
    let set = example_policies();
    let policy = set.get(&app("frontend")).unwrap();
    let a = api_artifact("frontend", 0xabcdef12);
    let out = render(
        &root().join("templates"),
        policy,
        &env("staging"),
        &a,
        &RenderExtra::new(Trigger::Policy),
    )
    .unwrap();
    let names: Vec<&str> = out.keys().map(String::as_str).collect();
    assert_eq!(names, ["deployment.yaml", "kustomization.yaml", "service.yaml"]);
    let deployment = String::from_utf8(out["deployment.yaml"].clone()).unwrap();
    assert!(deployment.contains("kind: Deployment"), "{deployment}");
    assert!(
        deployment.contains(&format!("image: \"ghcr.io/acme/frontend:{}\"", a.sha)),
        "{deployment}"
    );
    assert!(
        deployment.contains("replicas: 1"),
        "default replicas: {deployment}"
    );
    assert!(deployment.contains("env: staging"));
    assert!(deployment.contains(&format!("auger.dev/artifact: \"{}\"", a.id)));
    let kustomization = String::from_utf8(out["kustomization.yaml"].clone()).unwrap();
    assert!(kustomization.contains("- deployment.yaml") && kustomization.contains("- service.yaml"));

    let printed = render_command_output(&out);
    assert!(printed.starts_with("--- deployment.yaml\n# Rendered by auger"));
    assert!(printed.contains("\n--- service.yaml\napiVersion: v1\n"));
}

#[test]
fn policy_vars_see_the_artifact_and_artifact_vars_win() {
    let set = example_policies();
    let policy = set.get(&app("api")).unwrap();
    let mut a = api_artifact("api", 0x12345678);
    let extra = RenderExtra::new(Trigger::Command("alice".into()));
    let out = render(&root().join("templates"), policy, &env("staging"), &a, &extra).unwrap();
    let deployment = String::from_utf8(out["deployment.yaml"].clone()).unwrap();
    assert!(
        deployment.contains(&format!("image: \"ghcr.io/acme/api:{}\"", a.sha.short(12))),
        "{deployment}"
    );
    assert!(deployment.contains("replicas: 2") && deployment.contains("containerPort: 9000"));

    a.vars
        .insert("image".into(), "ghcr.io/acme/api@sha256:feed".into());
    let out = render(&root().join("templates"), policy, &env("staging"), &a, &extra).unwrap();
    let deployment = String::from_utf8(out["deployment.yaml"].clone()).unwrap();
    assert!(
        deployment.contains("image: \"ghcr.io/acme/api@sha256:feed\""),
        "{deployment}"
    );
}

fn policy_with_template(template: &str) -> Policy {
    let text = format!(
        "app = \"web\"\nrepo = \"acme/web\"\ntemplate = \"{template}\"\n[vars]\nimage = \"img:{{{{ artifact.sha }}}}\"\n[env.staging]\nmerge = \"direct\"\n"
    );
    Policy::from_toml("web.toml", &text).unwrap()
}

#[test]
fn an_undefined_variable_names_the_file_and_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("t");
    std::fs::create_dir_all(t.join("sub")).unwrap();
    std::fs::write(t.join("ok.yaml.tera"), "image: {{ vars.image }}\n").unwrap();
    std::fs::write(t.join("sub/bad.yaml.tera"), "x: {{ vars.missing }}\n").unwrap();
    let err = render(
        dir.path(),
        &policy_with_template("t"),
        &env("staging"),
        &api_artifact("web", 1),
        &RenderExtra::new(Trigger::Policy),
    )
    .unwrap_err();
    match &err {
        RenderError::UndefinedVariable {
            template, variable, ..
        } => {
            assert_eq!(template, "sub/bad.yaml.tera");
            assert_eq!(variable, "vars.missing");
        }
        other => panic!("{other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("sub/bad.yaml.tera") && text.contains("missing"),
        "{text}"
    );
}

/// A template folder `t` with a partial, a template using it, a plain file and a dotfile.
fn template_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("t");
    std::fs::create_dir_all(t.join("_lib")).unwrap();
    std::fs::write(t.join("_lib/labels.tera"), "app: {{ app }}").unwrap();
    std::fs::write(t.join("cm.yaml.tera"), "{% include \"_lib/labels.tera\" %}\n").unwrap();
    std::fs::write(t.join("raw.txt"), "{{ not rendered }}").unwrap();
    std::fs::write(t.join(".gitkeep"), "").unwrap();
    dir
}

/// `t` of `templates` rendered for `env_name` with a policy that names it.
fn render_t(templates: &Path, env_name: &str) -> Result<Files, RenderError> {
    render(
        templates,
        &policy_with_template("t"),
        &env(env_name),
        &api_artifact("web", 1),
        &RenderExtra::new(Trigger::Policy),
    )
}

#[test]
fn templates_copy_plain_files_and_skip_partials_and_dotfiles() {
    let dir = template_folder();
    let out = render_t(dir.path(), "staging").unwrap();
    assert_eq!(out.keys().collect::<Vec<_>>(), ["cm.yaml", "raw.txt"]);
    assert_eq!(out["cm.yaml"], b"app: web\n");
    assert_eq!(out["raw.txt"], b"{{ not rendered }}");
}

#[test]
fn a_template_cannot_read_the_environment() {
    let dir = template_folder();
    std::fs::write(dir.path().join("t/env.tera"), "{{ get_env(name=\"HOME\") }}").unwrap();
    let err = render_t(dir.path(), "staging").unwrap_err();
    assert!(err.to_string().contains("get_env"), "{err}");
}

#[test]
fn a_template_cannot_write_the_reserved_release_json() {
    let dir = template_folder();
    std::fs::write(dir.path().join("t/release.json"), "{}").unwrap();
    let err = render_t(dir.path(), "staging").unwrap_err();
    assert!(err.to_string().contains("reserved"), "{err}");
}

#[test]
fn rendering_for_an_env_the_policy_lacks_is_refused() {
    let dir = template_folder();
    let err = render_t(dir.path(), "production").unwrap_err();
    assert!(matches!(err, RenderError::UnknownEnv { .. }), "{err}");
}

/// The policy check sees syntax errors and collisions without an artifact.
#[test]
fn the_template_check_finds_collisions_and_syntax_errors() {
    let dir = template_folder();
    let t_name = TemplateName::new("t").unwrap();
    check_template(dir.path(), &t_name).unwrap();
    std::fs::write(t_name_path(dir.path(), "raw.txt.tera"), "x").unwrap();
    let err = check_template(dir.path(), &t_name).unwrap_err();
    assert!(err.to_string().contains("produced twice"), "{err}");
    std::fs::remove_file(t_name_path(dir.path(), "raw.txt.tera")).unwrap();
    std::fs::write(t_name_path(dir.path(), "broken.tera"), "{% if %}").unwrap();
    let err = check_template(dir.path(), &t_name).unwrap_err();
    assert!(err.to_string().contains("broken.tera"), "{err}");
}

#[test]
fn the_shipped_template_passes_the_check() {
    check_template(
        &root().join("templates"),
        &TemplateName::new("web-service").unwrap(),
    )
    .unwrap();
}

fn t_name_path(templates: &Path, file: &str) -> PathBuf {
    templates.join("t").join(file)
}

#[cfg(unix)]
#[test]
fn symlinked_templates_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.yaml"), "token: hunter2").unwrap();
    let templates = dir.path().join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    std::os::unix::fs::symlink(&outside, templates.join("t")).unwrap();
    let p = policy_with_template("t");
    let extra = RenderExtra::new(Trigger::Policy);
    let err = render(&templates, &p, &env("staging"), &api_artifact("web", 1), &extra).unwrap_err();
    assert!(matches!(err, RenderError::Symlink { .. }), "{err}");

    // A link inside a real template folder is refused as well.
    std::fs::remove_file(templates.join("t")).unwrap();
    std::fs::create_dir_all(templates.join("t")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.yaml"), templates.join("t/leak.yaml")).unwrap();
    let err = render(&templates, &p, &env("staging"), &api_artifact("web", 1), &extra).unwrap_err();
    assert!(matches!(err, RenderError::Symlink { .. }), "{err}");
}

#[test]
fn preview_names_cannot_carry_path_tricks() {
    assert_eq!(preview_name(&app("web"), 7).unwrap().as_str(), "web-pr-7");
    for bad in [
        "web-pr-1/..",
        "../web-pr-1",
        "web/pr-1",
        "..",
        "web-pr-1/../../etc",
    ] {
        assert!(AppName::new(bad).is_err(), "{bad}");
    }
    assert_eq!(pr_branch(&env("staging"), &app("web")), "auger/staging/web");
}

// ----- the writer ---------------------------------------------------------------------------

#[test]
fn direct_releases_commit_with_trailers_and_skip_unchanged_output() {
    let dir = tempfile::tempdir().unwrap();
    let (remote_path, url) = bare(dir.path(), "gitops.git");
    let repo = open(dir.path(), &url);
    let v1 = api_artifact("web", 1);
    let body = files(&[
        ("deployment.yaml", "image: web:1\n"),
        ("service.yaml", "kind: Service\n"),
    ]);

    let c1 = committed(
        repo.prepare_release(&spec("staging", &v1, body.clone(), Target::Branch))
            .unwrap(),
    );
    assert_eq!(rev(&remote_path, "main"), c1.as_str());
    assert_eq!(
        ls(&remote_path, "main", "staging/web"),
        [
            "staging/web/deployment.yaml",
            "staging/web/release.json",
            "staging/web/service.yaml"
        ]
    );
    let message = git_in(&remote_path, &["log", "-1", "--format=%B", "main"]);
    let parsed = git_in_with_stdin(&remote_path, &["interpret-trailers", "--parse"], &message);
    assert_eq!(
        parsed.lines().collect::<Vec<_>>(),
        [
            "Auger-App: web",
            "Auger-Env: staging",
            &format!("Auger-Artifact: {}", v1.id),
            &format!("Auger-Source: acme/web@{}", v1.sha),
            "Auger-Trigger: policy",
        ]
    );
    let record: serde_json::Value =
        serde_json::from_str(&git_in(&remote_path, &["show", "main:staging/web/release.json"])).unwrap();
    assert_eq!(record["artifact"], v1.id.to_string());
    assert_eq!(record["trigger"], "policy");

    // Same artifact, same output (a later trigger and time do not count): no commit.
    let again = repo
        .prepare_release(&spec("staging", &v1, body.clone(), Target::Branch))
        .unwrap();
    assert_eq!(
        again,
        WriteOutcome::Unchanged {
            tip: Some(c1.clone())
        }
    );
    assert_eq!(count(&remote_path, "main"), 1);

    // A new artifact whose template dropped a file: new commit, the file is gone.
    let v2 = api_artifact("web", 2);
    let c2 = committed(
        repo.prepare_release(&spec(
            "staging",
            &v2,
            files(&[("deployment.yaml", "image: web:2\n")]),
            Target::Branch,
        ))
        .unwrap(),
    );
    assert_eq!(rev(&remote_path, "main"), c2.as_str());
    assert_eq!(rev(&remote_path, "main^"), c1.as_str());
    assert_eq!(
        ls(&remote_path, "main", "staging/web"),
        ["staging/web/deployment.yaml", "staging/web/release.json"]
    );
}

#[test]
fn nothing_outside_the_app_folder_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (remote_path, url) = bare(dir.path(), "gitops.git");
    // Someone else's files in the gitops repo, including a sibling with a common prefix.
    let work = dir.path().join("work");
    git_in(dir.path(), &["clone", "--quiet", &url, work.to_str().unwrap()]);
    for (p, c) in [
        ("README.md", "hi"),
        ("staging/web-api/x.yaml", "keep"),
        ("staging/web/old.yaml", "old"),
    ] {
        let path = work.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, c).unwrap();
    }
    git_in(&work, &["add", "-A"]);
    git_in(&work, &["commit", "--quiet", "-m", "seed"]);
    git_in(&work, &["push", "--quiet", "origin", "HEAD:main"]);

    let repo = open(dir.path(), &url);
    let a = api_artifact("web", 1);
    committed(
        repo.prepare_release(&spec("staging", &a, files(&[("d.yaml", "x")]), Target::Branch))
            .unwrap(),
    );
    let all = ls(&remote_path, "main", ".");
    assert_eq!(
        all,
        [
            "README.md",
            "staging/web-api/x.yaml",
            "staging/web/d.yaml",
            "staging/web/release.json"
        ]
    );
}

#[test]
fn file_paths_outside_the_app_folder_are_refused_and_commit_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (remote_path, url) = bare(dir.path(), "gitops.git");
    let repo = open(dir.path(), &url);
    let a = api_artifact("web", 1);
    committed(
        repo.prepare_release(&spec("staging", &a, files(&[("d.yaml", "x")]), Target::Branch))
            .unwrap(),
    );
    for bad in [
        "../escape.yaml",
        "/abs.yaml",
        "a/../../b",
        ".git/config",
        "release.json",
    ] {
        let err = repo
            .prepare_release(&spec("staging", &a, files(&[(bad, "x")]), Target::Branch))
            .unwrap_err();
        assert!(err.to_string().contains(bad), "{err}");
    }
    assert_eq!(count(&remote_path, "main"), 1);
}

#[test]
fn pr_mode_force_updates_the_release_branch_and_leaves_main_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (remote_path, url) = bare(dir.path(), "gitops.git");
    let repo = open(dir.path(), &url);
    let seed = api_artifact("other", 9);
    let main_tip = committed(
        repo.prepare_release(&spec("staging", &seed, files(&[("a", "1")]), Target::Branch))
            .unwrap(),
    );

    let v1 = api_artifact("web", 1);
    let out = repo
        .prepare_release(&spec("staging", &v1, files(&[("d.yaml", "1")]), Target::PrBranch))
        .unwrap();
    let WriteOutcome::Committed {
        commit: p1,
        pushed_to,
        ..
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!(pushed_to, "auger/staging/web");
    assert_eq!(rev(&remote_path, "main"), main_tip.as_str());
    assert_eq!(rev(&remote_path, "auger/staging/web"), p1.as_str());
    assert_eq!(rev(&remote_path, "auger/staging/web^"), main_tip.as_str());

    // Asking again for the same thing leaves the branch (and its reviews) alone.
    let again = repo
        .prepare_release(&spec("staging", &v1, files(&[("d.yaml", "1")]), Target::PrBranch))
        .unwrap();
    assert_eq!(
        again,
        WriteOutcome::Pending {
            commit: p1.clone(),
            branch: "auger/staging/web".into()
        }
    );

    // A newer artifact replaces the proposal: one commit on the current main tip.
    let v2 = api_artifact("web", 2);
    let p2 = committed(
        repo.prepare_release(&spec("staging", &v2, files(&[("d.yaml", "2")]), Target::PrBranch))
            .unwrap(),
    );
    assert_eq!(rev(&remote_path, "auger/staging/web"), p2.as_str());
    assert_eq!(rev(&remote_path, "auger/staging/web^"), main_tip.as_str());
    assert_eq!(rev(&remote_path, "main"), main_tip.as_str());
    assert!(!git_ok_in(
        &remote_path,
        &["merge-base", "--is-ancestor", p1.as_str(), "auger/staging/web"]
    ));
}

#[test]
fn rollback_reproduces_the_earlier_tree() {
    let dir = tempfile::tempdir().unwrap();
    let (_remote_path, url) = bare(dir.path(), "gitops.git");
    let repo = open(dir.path(), &url);
    let (s, w) = (env("staging"), app("web"));
    let v1 = api_artifact("web", 1);
    let c1 = committed(
        repo.prepare_release(&spec(
            "staging",
            &v1,
            files(&[("d.yaml", "v1"), ("cfg/x.env", "A=1")]),
            Target::Branch,
        ))
        .unwrap(),
    );
    let v2 = api_artifact("web", 2);
    committed(
        repo.prepare_release(&spec("staging", &v2, files(&[("d.yaml", "v2")]), Target::Branch))
            .unwrap(),
    );

    let old = repo.tree_of(&c1, &s, &w).unwrap().unwrap();
    assert_eq!(old, files(&[("cfg/x.env", "A=1"), ("d.yaml", "v1")]));
    let mut back = spec("staging", &v1, old, Target::Branch);
    back.release.trigger = Trigger::Rollback("alice".into());
    back.release.rollback_to = Some(v1.id.clone());
    let c3 = committed(repo.prepare_release(&back).unwrap());
    assert_eq!(
        repo.content_tree_id(&c3, &s, &w).unwrap(),
        repo.content_tree_id(&c1, &s, &w).unwrap()
    );
    assert!(repo.content_tree_id(&c3, &s, &app("nope")).unwrap().is_none());
    assert_eq!(
        repo.release_at(&c3, &s, &w).unwrap().unwrap().rollback_to,
        Some(v1.id.clone())
    );
}

#[test]
fn history_reads_trailers_newest_first_with_filters_merges_and_removals() {
    let dir = tempfile::tempdir().unwrap();
    let (remote_path, url) = bare(dir.path(), "gitops.git");
    let repo = open(dir.path(), &url);
    let web1 = api_artifact("web", 1);
    let web2 = api_artifact("web", 2);
    let api1 = api_artifact("api", 3);
    committed(
        repo.prepare_release(&spec("staging", &web1, files(&[("d", "1")]), Target::Branch))
            .unwrap(),
    );
    committed(
        repo.prepare_release(&spec("staging", &api1, files(&[("d", "3")]), Target::Branch))
            .unwrap(),
    );
    let mut prod = spec("production", &web1, files(&[("d", "1")]), Target::Branch);
    prod.release.trigger = Trigger::Command("alice".into());
    committed(repo.prepare_release(&prod).unwrap());
    // web2 reaches staging through a pull request merged with a merge commit, as GitHub does.
    let pr = committed(
        repo.prepare_release(&spec("staging", &web2, files(&[("d", "2")]), Target::PrBranch))
            .unwrap(),
    );
    let work = dir.path().join("work");
    git_in(dir.path(), &["clone", "--quiet", &url, work.to_str().unwrap()]);
    git_in(
        &work,
        &[
            "merge",
            "--quiet",
            "--no-ff",
            "-m",
            "Merge pull request #1",
            "origin/auger/staging/web",
        ],
    );
    git_in(&work, &["push", "--quiet", "origin", "HEAD:main"]);
    // A preview that came and went.
    let preview = preview_name(&app("web"), 5).unwrap();
    let mut pv = spec("preview", &web2, files(&[("d", "p")]), Target::Branch);
    pv.app = preview.clone();
    pv.release.app = preview.clone();
    committed(repo.prepare_release(&pv).unwrap());
    assert!(repo.current(&env("preview"), &preview).unwrap().is_some());
    let cleanup = Trailer::new("Auger-Trigger", "pull_request closed #5").unwrap();
    committed(
        repo.remove_path(
            &env("preview"),
            &preview,
            "remove preview web-pr-5",
            std::slice::from_ref(&cleanup),
            Target::Branch,
        )
        .unwrap(),
    );
    assert!(matches!(
        repo.remove_path(&env("preview"), &preview, "again", &[cleanup], Target::Branch)
            .unwrap(),
        WriteOutcome::Unchanged { .. }
    ));
    assert!(ls(&remote_path, "main", "preview").is_empty());

    repo.fetch().unwrap();
    let all = repo.releases(&HistoryFilter::default()).unwrap();
    let seen: Vec<(String, String, String)> = all
        .iter()
        .map(|r| (r.env.to_string(), r.app.to_string(), r.artifact.to_string()))
        .collect();
    let id = |a: &Artifact| a.id.to_string();
    assert_eq!(
        seen,
        [
            ("preview".into(), "web-pr-5".into(), id(&web2)),
            ("staging".into(), "web".into(), id(&web2)),
            ("production".into(), "web".into(), id(&web1)),
            ("staging".into(), "api".into(), id(&api1)),
            ("staging".into(), "web".into(), id(&web1)),
        ]
    );
    let merged = &all[1];
    assert_eq!(
        merged.commit.as_str(),
        rev(&remote_path, "main~2"),
        "the merge commit landed it"
    );
    assert_ne!(merged.commit, pr);
    assert_eq!(merged.release.as_ref().unwrap().artifact, web2.id);

    let staging_web = repo
        .releases(&HistoryFilter::for_pair(&env("staging"), &app("web")))
        .unwrap();
    assert_eq!(staging_web.len(), 2);
    assert!(staging_web[0].time >= staging_web[1].time);
    let prod_web = repo.current(&env("production"), &app("web")).unwrap().unwrap();
    assert_eq!(prod_web.trigger, Trigger::Command("alice".into()));
    assert_eq!(prod_web.source.to_string(), format!("acme/web@{}", web1.sha));
    assert_eq!(prod_web.message, format!("release {} to production", web1.id));
    assert!(
        repo.current(&env("preview"), &preview).unwrap().is_none(),
        "removed"
    );
    let entries = repo
        .history(&HistoryFilter::for_pair(&env("preview"), &preview))
        .unwrap();
    assert!(matches!(entries[0], HistoryEntry::Removal { .. }));
    let only_api = HistoryFilter {
        app: Some(app("api")),
        ..Default::default()
    };
    assert_eq!(repo.releases(&only_api).unwrap().len(), 1);
}

#[test]
fn concurrent_releases_and_a_foreign_pusher_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (remote_path, url) = bare(dir.path(), "gitops.git");
    let shared = Arc::new(open(dir.path(), &url).with_max_attempts(60));
    committed(
        shared
            .prepare_release(&spec(
                "staging",
                &api_artifact("seed", 0),
                files(&[("x", "0")]),
                Target::Branch,
            ))
            .unwrap(),
    );

    // Another writer pushes unrelated commits to main in a loop, retrying its own losses.
    let stop = Arc::new(AtomicBool::new(false));
    let foreign_pushes = Arc::new(AtomicUsize::new(0));
    let work = dir.path().join("work");
    git_in(dir.path(), &["clone", "--quiet", &url, work.to_str().unwrap()]);
    let pusher = {
        let (stop, pushes, work) = (stop.clone(), foreign_pushes.clone(), work.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) || pushes.load(Ordering::SeqCst) < 3 {
                n += 1;
                git_in(
                    &work,
                    &[
                        "commit",
                        "--quiet",
                        "--allow-empty",
                        "-m",
                        &format!("foreign {n}"),
                    ],
                );
                // As fast as it can: the releases must win their pushes against this.
                if git_ok_in(&work, &["push", "--quiet", "origin", "HEAD:main"]) {
                    pushes.fetch_add(1, Ordering::SeqCst);
                } else {
                    git_in(&work, &["fetch", "--quiet", "origin"]);
                    git_in(&work, &["reset", "--quiet", "--hard", "origin/main"]);
                }
                // A busy writer, but not a tight loop: a tight one can starve any
                // fetch-then-push writer, which is what the attempt bound is for.
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        })
    };

    let threads: Vec<_> = (0..10u32)
        .map(|i| {
            // Half share one handle, half open their own on the same cache.
            let repo = if i % 2 == 0 {
                shared.clone()
            } else {
                Arc::new(open(dir.path(), &url).with_max_attempts(60))
            };
            std::thread::spawn(move || {
                let a = api_artifact(&format!("app{i}"), i + 1);
                let body = files(&[("deployment.yaml", &format!("app{i}"))]);
                match repo
                    .prepare_release(&spec("staging", &a, body, Target::Branch))
                    .unwrap()
                {
                    WriteOutcome::Committed { commit, attempts, .. } => (commit, attempts),
                    other => panic!("{other:?}"),
                }
            })
        })
        .collect();
    // Join everything before failing, so the temp folder outlives every writer.
    let joined: Vec<_> = threads.into_iter().map(|t| t.join()).collect();
    stop.store(true, Ordering::SeqCst);
    pusher.join().unwrap();
    let (commits, attempts): (Vec<CommitSha>, Vec<u32>) = joined.into_iter().map(|r| r.unwrap()).unzip();
    // Not asserted (timing decides), but shows in `--nocapture` whether races were retried.
    eprintln!("attempts per release: {attempts:?}");

    for c in &commits {
        assert!(
            git_ok_in(&remote_path, &["merge-base", "--is-ancestor", c.as_str(), "main"]),
            "release commit {c} was lost"
        );
    }
    let tree = ls(&remote_path, "main", "staging");
    for i in 0..10 {
        assert!(
            tree.contains(&format!("staging/app{i}/deployment.yaml")),
            "{tree:?}"
        );
    }
    assert!(
        git_in(&remote_path, &["rev-list", "--merges", "main"])
            .trim()
            .is_empty()
    );
    let foreign = git_in(&remote_path, &["log", "--format=%s", "main"])
        .lines()
        .filter(|l| l.starts_with("foreign"))
        .count();
    assert_eq!(
        foreign,
        foreign_pushes.load(Ordering::SeqCst),
        "no foreign commit lost either"
    );
    assert!(foreign >= 3);
    // 1 seed + 10 releases + the foreign commits, one line.
    assert_eq!(count(&remote_path, "main"), 11 + foreign);
    let by_app: BTreeMap<String, usize> = shared
        .releases(&HistoryFilter::default())
        .unwrap()
        .into_iter()
        .fold(BTreeMap::new(), |mut m, r| {
            *m.entry(r.app.to_string()).or_default() += 1;
            m
        });
    assert_eq!(by_app.len(), 11);
}

#[test]
fn a_refused_push_is_an_error_not_a_retry_loop() {
    let dir = tempfile::tempdir().unwrap();
    let (remote_path, url) = bare(dir.path(), "gitops.git");
    let hook = remote_path.join("hooks/pre-receive");
    std::fs::write(&hook, "#!/bin/sh\necho 'protected branch' >&2\nexit 1\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let repo = open(dir.path(), &url);
    let err = repo
        .prepare_release(&spec(
            "staging",
            &api_artifact("web", 1),
            files(&[("d", "1")]),
            Target::Branch,
        ))
        .unwrap_err();
    assert!(matches!(err, auger::gitops::WriteError::Refused { .. }), "{err}");
}

#[cfg(unix)]
#[test]
fn a_push_that_loses_a_race_is_rebuilt_on_the_new_tip() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (remote_path, url) = bare(dir.path(), "gitops.git");
    let repo = open(dir.path(), &url);
    committed(
        repo.prepare_release(&spec(
            "staging",
            &api_artifact("seed", 0),
            files(&[("x", "0")]),
            Target::Branch,
        ))
        .unwrap(),
    );
    // Between auger's fetch and its ref update, another writer moves main (once): the remote
    // then refuses auger's update because main is no longer where auger's lease says.
    let hook = remote_path.join("hooks/pre-receive");
    std::fs::write(
        &hook,
        r#"#!/bin/sh
if [ ! -e raced ]; then
  touch raced
  unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES
  old=$(git rev-parse refs/heads/main)
  new=$(git -c user.name=Other -c user.email=o@example.com commit-tree "$old^{tree}" -p "$old" -m foreign)
  git update-ref refs/heads/main "$new" "$old"
fi
"#,
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();

    let out = repo
        .prepare_release(&spec(
            "staging",
            &api_artifact("web", 1),
            files(&[("d", "1")]),
            Target::Branch,
        ))
        .unwrap();
    let WriteOutcome::Committed {
        commit,
        attempts,
        base,
        ..
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!(attempts, 2);
    assert_eq!(rev(&remote_path, "main"), commit.as_str());
    assert_eq!(
        git_in(&remote_path, &["log", "-1", "--format=%s", "main^"]).trim(),
        "foreign"
    );
    assert_eq!(base.unwrap().as_str(), rev(&remote_path, "main^"));
    assert!(
        git_in(&remote_path, &["rev-list", "--merges", "main"])
            .trim()
            .is_empty()
    );
}

#[test]
fn an_unreachable_remote_is_an_error_without_its_credentials() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback: refused at once, no network needed.
    let url = "http://auger:s3cr3t-token@127.0.0.1:1/acme/gitops.git";
    let repo = open(dir.path(), url);
    assert!(!format!("{repo:?}").contains("s3cr3t"));
    let err = repo
        .prepare_release(&spec(
            "staging",
            &api_artifact("web", 1),
            files(&[("d", "1")]),
            Target::Branch,
        ))
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, auger::gitops::WriteError::Command { .. }), "{text}");
    assert!(!text.contains("s3cr3t"), "{text}");
    assert!(text.contains("127.0.0.1"), "{text}");
}

/// An https/http gitops remote gets the token as an `Authorization` header scoped to its URL,
/// through git's environment configuration: never in the URL, the command line or a message.
#[test]
fn the_token_reaches_an_http_remote_as_a_header_and_nowhere_else() {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let mut stream = stream;
        let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        head
    });
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}/acme/gitops.git");
    let repo = GitopsRepo::open(&dir.path().join("cache"), &url, BranchName::new("main").unwrap())
        .unwrap()
        .with_token(Some("s3cret-token"));
    let err = repo.fetch().unwrap_err().to_string();
    assert!(!err.contains("s3cret-token"), "{err}");
    let head = seen.join().unwrap();
    // base64("x-access-token:s3cret-token")
    assert!(
        head.contains("Authorization: Basic eC1hY2Nlc3MtdG9rZW46czNjcmV0LXRva2Vu"),
        "{head}"
    );
    assert!(!head.contains("s3cret-token"));
}
