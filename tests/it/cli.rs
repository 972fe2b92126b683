//! The `auger` binary as an operator uses it: exit codes, messages naming file and key, and
//! the artifact commands on the store the config names.

use std::path::Path;

use crate::support::cli::{auger, stderr, stdout};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// A folder whose `auger.toml` keeps the ledger in `ledger.git` beside it.
fn with_ledger_config() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("auger.toml"),
        "[artifacts]\npath = \"ledger.git\"\n",
    )
    .unwrap();
    dir
}

/// `auger artifact add` of [`SHA`] of acme/web built on main with an image var, as JSON.
fn add_main_build(dir: &Path) -> serde_json::Value {
    let add = auger(
        dir,
        &[
            "artifact",
            "add",
            "--app",
            "web",
            "--repo",
            "acme/web",
            "--sha",
            SHA,
            "--branch",
            "main",
            "--var",
            "image=ghcr.io/acme/web:1",
            "--json",
        ],
    );
    assert!(add.status.success(), "{}", stderr(&add));
    serde_json::from_str(&stdout(&add)).unwrap()
}

#[test]
fn version_names_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let v = auger(dir.path(), &["--version"]);
    assert!(v.status.success());
    assert!(stdout(&v).starts_with("auger "));
}

#[test]
fn help_lists_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let help = auger(dir.path(), &["--help"]);
    for sub in [
        "serve", "demo", "policy", "render", "artifact", "release", "rollback",
    ] {
        assert!(stdout(&help).contains(sub), "{sub} missing from help");
    }
}

#[test]
fn artifact_add_records_in_the_store_the_config_names() {
    let dir = with_ledger_config();
    let added = add_main_build(dir.path());
    assert_eq!(added["outcome"], "recorded");
    assert_eq!(added["artifact"]["id"], "web@0123456789ab");
    assert!(
        dir.path().join("ledger.git").is_dir(),
        "store path resolved next to the config"
    );
}

#[test]
fn a_tag_added_later_updates_the_artifact_that_show_then_prints() {
    let dir = with_ledger_config();
    add_main_build(dir.path());
    let again = auger(
        dir.path(),
        &[
            "artifact", "add", "--app", "web", "--repo", "acme/web", "--sha", SHA, "--tag", "v1.0.0",
        ],
    );
    assert_eq!(stdout(&again).trim(), "updated web@0123456789ab (main, v1.0.0)");

    let show = auger(dir.path(), &["artifact", "show", "0123456", "--json"]);
    assert!(show.status.success(), "{}", stderr(&show));
    let shown: serde_json::Value = serde_json::from_str(&stdout(&show)).unwrap();
    assert_eq!(shown["tags"], serde_json::json!(["v1.0.0"]));
    assert_eq!(shown["vars"]["image"], "ghcr.io/acme/web:1");
    let by_id = auger(dir.path(), &["artifact", "show", "web@0123456789ab"]);
    assert!(stdout(&by_id).contains("branches  main"));
}

#[test]
fn artifact_list_filters_by_branch() {
    let dir = with_ledger_config();
    add_main_build(dir.path());
    let list = auger(
        dir.path(),
        &["artifact", "list", "--app", "web", "--branch", "main", "--json"],
    );
    let listed: Vec<serde_json::Value> = serde_json::from_str(&stdout(&list)).unwrap();
    assert_eq!(listed.len(), 1);
}

#[test]
fn artifact_show_of_an_unknown_commit_says_so() {
    let dir = with_ledger_config();
    add_main_build(dir.path());
    let missing = auger(dir.path(), &["artifact", "show", "fedcba9"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("no artifact for commit fedcba9"));
}

/// A var a template could not name is refused before anything is written.
#[test]
fn artifact_add_refuses_a_var_name_templates_cannot_use() {
    let dir = with_ledger_config();
    let bad_var = auger(
        dir.path(),
        &[
            "artifact", "add", "--app", "web", "--repo", "acme/web", "--sha", SHA, "--var", "1st=x",
        ],
    );
    assert!(!bad_var.status.success());
    assert!(
        stderr(&bad_var).contains(r#"variable name "1st" is invalid"#),
        "{}",
        stderr(&bad_var)
    );
    assert!(!dir.path().join("ledger.git").exists(), "nothing was written");
}

/// A var value over the API's limit is refused by the CLI too, before anything is written.
#[test]
fn artifact_add_refuses_a_var_value_over_a_kilobyte() {
    let dir = with_ledger_config();
    let long = format!("image={}", "x".repeat(1025));
    let out = auger(
        dir.path(),
        &[
            "artifact", "add", "--app", "web", "--repo", "acme/web", "--sha", SHA, "--var", &long,
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("vars.image: the value is longer than 1024 bytes"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("ledger.git").exists(), "nothing was written");
}

/// Invalid names are usage errors (exit 2) naming the rule, and write nothing.
#[test]
fn invalid_names_are_usage_errors_and_write_nothing() {
    let dir = with_ledger_config();
    for (flag, value) in [
        ("--app", "../etc"),
        ("--app", "Web"),
        ("--sha", "xyz"),
        ("--repo", "acme"),
    ] {
        let mut args = vec![
            "artifact", "add", "--app", "web", "--repo", "acme/web", "--sha", SHA,
        ];
        let pos = args.iter().position(|a| *a == flag).unwrap();
        args[pos + 1] = value;
        let o = auger(dir.path(), &args);
        assert_eq!(o.status.code(), Some(2), "{flag} {value}");
        assert!(stderr(&o).contains("invalid"), "{}", stderr(&o));
    }
    assert!(!dir.path().join("ledger.git").exists(), "nothing was written");
}

#[test]
fn a_config_error_names_the_file_and_the_key() {
    let dir = with_ledger_config();
    std::fs::write(dir.path().join("bad.toml"), "[artifacts]\npaht = \"x\"\n").unwrap();
    let o = auger(
        dir.path(),
        &["artifact", "list", "--app", "web", "--config", "bad.toml"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("bad.toml: artifacts.paht: unknown field"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn reading_a_store_that_does_not_exist_says_so_and_creates_nothing() {
    let dir = with_ledger_config();
    let o = auger(dir.path(), &["artifact", "list", "--app", "web"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
    assert!(!dir.path().join("ledger.git").exists());
}

#[test]
fn release_commands_without_a_config_name_the_file_they_could_not_read() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["rollback", "--app", "web", "--env", "staging"][..],
        &[
            "release",
            "make",
            "--app",
            "web",
            "--env",
            "staging",
            "--artifact",
            "web@0123456",
        ],
    ] {
        let o = auger(dir.path(), args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(stderr(&o).contains("auger.toml"), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn policy_check_passes_a_valid_folder() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/policies/valid");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("auger.toml"),
        format!(
            "[paths]\npolicies = \"{}\"\ntemplates = \"{}\"\n",
            fixtures.join("policies").display(),
            fixtures.join("templates").display()
        ),
    )
    .unwrap();
    let ok = auger(dir.path(), &["policy", "check"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(stdout(&ok).contains("2 policies, 0 errors"), "{}", stdout(&ok));
}

#[test]
fn policy_check_lists_every_error_of_a_bad_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("policies")).unwrap();
    std::fs::create_dir_all(dir.path().join("templates/web-service")).unwrap();
    std::fs::write(
        dir.path().join("policies/web.toml"),
        "app = \"web\"\nrepo = \"acme/web\"\ntemplate = \"nope\"\n[env.production]\nmerge = \"approval\"\napprovals = 1\napprovers = [\"squad:x\"]\nafter = { env = \"stagin\", soak = \"soon\" }\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("auger.toml"), "").unwrap();
    let bad = auger(dir.path(), &["policy", "check"]);
    assert_eq!(bad.status.code(), Some(1));
    let err = stderr(&bad);
    for expected in [
        "policies/web.toml: template:",
        "policies/web.toml: env.production.approvers[0]:",
        "policies/web.toml: env.production.after.soak:",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
}

/// The shipped example policies and templates, with a build of acme/frontend recorded.
fn shipped_example_with_a_frontend_build() -> tempfile::TempDir {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("auger.toml"),
        format!(
            "[artifacts]\npath = \"ledger.git\"\n[paths]\npolicies = \"{}\"\ntemplates = \"{}\"\n",
            root.join("policies").display(),
            root.join("templates").display()
        ),
    )
    .unwrap();
    let add = auger(
        dir.path(),
        &[
            "artifact",
            "add",
            "--app",
            "frontend",
            "--repo",
            "acme/frontend",
            "--sha",
            SHA,
            "--branch",
            "main",
        ],
    );
    assert!(add.status.success(), "{}", stderr(&add));
    dir
}

#[test]
fn render_prints_the_files_a_release_would_write_from_the_shipped_example() {
    let dir = shipped_example_with_a_frontend_build();
    let out = auger(
        dir.path(),
        &[
            "render",
            "--app",
            "frontend",
            "--env",
            "staging",
            "--artifact",
            "frontend@0123456789ab",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("--- deployment.yaml"), "{text}");
    assert!(
        text.contains(&format!("ghcr.io/acme/frontend:{SHA}")),
        "the image comes from the policy vars: {text}"
    );
    assert!(text.contains("--- kustomization.yaml"));
}

#[test]
fn render_refuses_an_unknown_env_or_artifact_with_the_reason() {
    let dir = shipped_example_with_a_frontend_build();
    let unknown_env = auger(
        dir.path(),
        &["render", "--app", "frontend", "--env", "qa", "--artifact", SHA],
    );
    assert_eq!(unknown_env.status.code(), Some(1));
    assert!(
        stderr(&unknown_env).contains("no environment qa (known: "),
        "{}",
        stderr(&unknown_env)
    );
    let missing = auger(
        dir.path(),
        &[
            "render",
            "--app",
            "frontend",
            "--env",
            "staging",
            "--artifact",
            "fedcba9",
        ],
    );
    assert!(stderr(&missing).contains("no artifact for commit fedcba9"));
}

#[test]
fn render_prints_the_values_an_edit_mode_environment_would_set() {
    let dir = with_ledger_config();
    std::fs::create_dir_all(dir.path().join("policies")).unwrap();
    std::fs::write(
        dir.path().join("policies/web.toml"),
        r#"
app = "web"
repo = "acme/web"
[env.staging]
merge = "direct"
gitops = { path = "clusters/{{ env }}/{{ app }}" }
[[env.staging.edit]]
kustomize_image = { file = "kustomization.yaml", name = "ghcr.io/acme/web", tag = "{{ artifact.sha }}" }
[[env.staging.edit]]
yaml_set = { file = "release.yaml", path = "spec.values.image.tag", value = "{{ vars.image }}", kind = "HelmRelease" }
"#,
    )
    .unwrap();
    add_main_build(dir.path());
    let out = auger(
        dir.path(),
        &["render", "--app", "web", "--env", "staging", "--artifact", SHA],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "edit clusters/staging/web/kustomization.yaml: image ghcr.io/acme/web newTag \"{SHA}\"\nedit clusters/staging/web/release.yaml: spec.values.image.tag = \"ghcr.io/acme/web:1\" (in the document of kind HelmRelease)\n"
        )
    );
}
