//! `auger demo` is itself a test of the whole story: it exits 0 only if every step did what
//! it claimed. Here it runs with `--dir`, and the final state is checked with plain git.

use std::process::Command;

use crate::support::git;

#[test]
fn the_demo_plays_the_whole_story_and_leaves_the_repositories_to_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("demo");
    let out = Command::new(env!("CARGO_BIN_EXE_auger"))
        .args(["demo", "--dir"])
        .arg(&root)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Every step checked"), "{stdout}");
    assert_eq!(stdout.matches("✔").count(), 12, "{stdout}");

    // Everything lives under --dir.
    for path in [
        "auger.toml",
        "policies/web.toml",
        "templates/web-service",
        "auger-data/artifacts.git",
    ] {
        assert!(root.join(path).exists(), "{path} missing under --dir");
    }
    let gitops = root.join("github/git/acme/gitops.git");
    let show = |path: &str| git(&gitops, &["show", &format!("main:{path}")]);
    let production: serde_json::Value = serde_json::from_str(&show("production/web/release.json")).unwrap();
    assert!(
        production["rollback_to"].is_string(),
        "production ends on the rollback: {production}"
    );
    assert_eq!(production["artifact"], production["rollback_to"]);
    assert!(show("staging/web/deployment.yaml").contains("image: \"ghcr.io/acme/web:"));
    assert_eq!(
        git(&gitops, &["ls-tree", "--name-only", "main", "preview/"]).trim(),
        "",
        "the preview was removed"
    );
    let held = git(
        &root.join("auger-data/artifacts.git"),
        &["show", "refs/auger/holds/production/web:hold.json"],
    );
    assert!(held.contains("\"held\": false"), "resumed at the end: {held}");

    // A second run into the same folder is refused rather than mixing two demos.
    let again = Command::new(env!("CARGO_BIN_EXE_auger"))
        .args(["demo", "--dir"])
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a demo"));
}
