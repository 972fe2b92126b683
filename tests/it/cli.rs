//! The `auger` binary as an operator uses it: exit codes, messages naming file and key, and
//! the artifact commands on the store the config names.

use std::path::Path;
use std::process::{Command, Output};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

fn auger(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_auger"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn version_and_help_work() {
    let dir = tempfile::tempdir().unwrap();
    let v = auger(dir.path(), &["--version"]);
    assert!(v.status.success());
    assert!(stdout(&v).starts_with("auger "));
    let help = auger(dir.path(), &["--help"]);
    for sub in [
        "serve", "demo", "policy", "render", "artifact", "release", "rollback",
    ] {
        assert!(stdout(&help).contains(sub), "{sub} missing from help");
    }
}

#[test]
fn artifact_add_show_list_on_the_configured_store() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("auger.toml"),
        "[artifacts]\npath = \"ledger.git\"\n",
    )
    .unwrap();
    let add = auger(
        dir.path(),
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
    let added: serde_json::Value = serde_json::from_str(&stdout(&add)).unwrap();
    assert_eq!(added["outcome"], "recorded");
    assert_eq!(added["artifact"]["id"], "web@0123456789ab");
    assert!(
        dir.path().join("ledger.git").is_dir(),
        "store path resolved next to the config"
    );

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

    let list = auger(
        dir.path(),
        &["artifact", "list", "--app", "web", "--branch", "main", "--json"],
    );
    let listed: Vec<serde_json::Value> = serde_json::from_str(&stdout(&list)).unwrap();
    assert_eq!(listed.len(), 1);

    let missing = auger(dir.path(), &["artifact", "show", "fedcba9"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("no artifact for commit fedcba9"));

    // A var a template could not name is refused before anything is written.
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
}

#[test]
fn bad_input_exits_with_a_reason_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("auger.toml"),
        "[artifacts]\npath = \"ledger.git\"\n",
    )
    .unwrap();
    // Invalid names are usage errors (exit 2) naming the rule.
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

    // A config error names the file and the key.
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

    // Reading a store that does not exist says so and creates nothing.
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
fn policy_check_passes_a_valid_folder_and_lists_every_error_of_a_bad_one() {
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

#[test]
fn render_prints_the_files_a_release_would_write_from_the_shipped_example() {
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
