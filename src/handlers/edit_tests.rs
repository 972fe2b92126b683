//! Scenarios of edit mode (design §16) on the testbed: a gitops repository in kustomize style
//! that the team already keeps (`clusters/staging/apps/web/` with a kustomization and a Flux
//! HelmRelease), released to by CI builds, refused on a typo, and rolled back.

use super::testbed::{Bed, REPO};
use crate::domain::{AppName, CommitSha, EnvName};
use crate::release::{ReleaseOutcome, Releaser, SystemClock};

const DIR: &str = "clusters/staging/apps/web";

const KUSTOMIZATION: &str = include_str!("../../tests/fixtures/gitops-edit/kustomization.yaml");
const HELMRELEASE: &str = include_str!("../../tests/fixtures/gitops-edit/helmrelease.yaml");

/// Staging edits the overlay's `newTag` and the HelmRelease's `spec.values.image.tag`; no
/// template (no env renders).
fn policy(image: &str) -> String {
    format!(
        r#"
app = "web"
repo = "acme/web"

[artifact]
signals = ["status:ci/build"]

[env.staging]
auto = {{ branch = "main" }}
merge = "direct"
deployers = ["permission:write"]
gitops = {{ path = "clusters/{{{{ env }}}}/apps/{{{{ app }}}}" }}

[[env.staging.edit]]
kustomize_image = {{ file = "kustomization.yaml", name = "{image}", tag = "{{{{ artifact.sha }}}}" }}

[[env.staging.edit]]
yaml_set = {{ file = "helmrelease.yaml", path = "spec.values.image.tag", value = "v{{{{ artifact.short_sha }}}}", kind = "HelmRelease", name = "web" }}
"#
    )
}

struct Scene {
    bed: Bed,
    _seed: tempfile::TempDir,
}

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

impl Scene {
    /// The testbed under `policy`, its gitops repository holding the team's files.
    fn new(policy: &str) -> Scene {
        let bed = Bed::with_policy(policy, std::sync::Arc::new(SystemClock));
        let seed = tempfile::tempdir().unwrap();
        let url = format!("file://{}", bed.gitops_remote().display());
        git(seed.path(), &["clone", "-q", &url, "work"]);
        let work = seed.path().join("work");
        std::fs::create_dir_all(work.join(DIR)).unwrap();
        std::fs::write(work.join(DIR).join("kustomization.yaml"), KUSTOMIZATION).unwrap();
        std::fs::write(work.join(DIR).join("helmrelease.yaml"), HELMRELEASE).unwrap();
        git(&work, &["add", "."]);
        git(&work, &["commit", "-q", "-m", "the team's layout"]);
        git(&work, &["push", "-q", "origin", "HEAD:main"]);
        Scene { bed, _seed: seed }
    }

    fn releaser(&self) -> &Releaser {
        self.bed.releaser()
    }

    async fn build(&self, n: u32) -> CommitSha {
        self.bed.green_main(n).await
    }

    fn gitops(&self, args: &[&str]) -> String {
        git(&self.bed.gitops_remote(), args)
    }

    fn file(&self, name: &str) -> String {
        self.gitops(&["show", &format!("main:{DIR}/{name}")])
    }

    fn tip(&self) -> String {
        self.gitops(&["rev-parse", "main"]).trim().to_owned()
    }

    /// The newest status `context` on source commit `sha`: state and description.
    fn status(&self, sha: &CommitSha, context: &str) -> Option<(String, String)> {
        self.bed
            .sim
            .statuses(REPO, sha.as_str())
            .unwrap()
            .into_iter()
            .filter(|s| s.context == context)
            .max_by_key(|s| s.id)
            .map(|s| (s.state, s.description.unwrap_or_default()))
    }
}

fn short(sha: &CommitSha) -> &str {
    &sha.as_str()[..12]
}

/// What the two files hold after a release of `sha`: the fixtures with the two values set.
fn expected(sha: &CommitSha) -> (String, String) {
    (
        KUSTOMIZATION.replace("newTag: \"0.9.0\"", &format!("newTag: \"{sha}\"")),
        HELMRELEASE.replace("tag: v0.9.0", &format!("tag: v{}", short(sha))),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn ci_green_sets_stagings_values_and_nothing_else_then_a_rollback_restores_them() {
    let scene = Scene::new(&policy("ghcr.io/acme/web"));
    let before = scene.tip();
    let a = scene.build(1).await;
    assert_eq!(scene.bed.live("staging"), Some(a.clone()));
    let (kustomization, helmrelease) = expected(&a);
    assert_eq!(scene.file("kustomization.yaml"), kustomization);
    assert_eq!(scene.file("helmrelease.yaml"), helmrelease);
    // One commit, the two files, no release.json.
    let changed = scene.gitops(&["diff", "--name-only", &before, "main"]);
    assert_eq!(
        changed.lines().collect::<Vec<_>>(),
        [
            format!("{DIR}/helmrelease.yaml"),
            format!("{DIR}/kustomization.yaml")
        ]
    );
    assert_eq!(scene.status(&a, "auger/staging").unwrap().0, "success");

    let b = scene.build(2).await;
    assert_eq!(scene.bed.live("staging"), Some(b.clone()));
    assert_eq!(scene.file("kustomization.yaml"), expected(&b).0);
    let after_b = scene.tip();

    // History reads the edit releases back from the trailers: a rollback goes to A.
    let (env, app) = (EnvName::new("staging").unwrap(), AppName::new("web").unwrap());
    let (to, outcome) = scene
        .releaser()
        .rollback(&env, &app, None, "alice", None)
        .await
        .unwrap();
    assert_eq!(to, scene.bed.artifact(&a).id);
    assert!(matches!(outcome, ReleaseOutcome::Released { .. }), "{outcome:?}");
    assert_eq!(
        scene.file("kustomization.yaml"),
        kustomization,
        "A's tag, every other byte as before"
    );
    assert_eq!(scene.file("helmrelease.yaml"), helmrelease);
    assert_eq!(scene.bed.live("staging"), Some(a.clone()));
    let message = scene.gitops(&["log", "-1", "--format=%B", "main"]);
    assert!(
        message.contains(&format!("Auger-Rollback-To: web@{}", short(&a))),
        "{message}"
    );
    assert!(message.contains("Auger-Trigger: rollback @alice"), "{message}");
    assert_eq!(scene.gitops(&["rev-parse", "main~1"]).trim(), after_b);

    // Rolling back to B (a rollback may name any earlier release) writes B's values again.
    let tip = scene.tip();
    let (_, again) = scene
        .releaser()
        .rollback(&env, &app, Some(&scene.bed.artifact(&b).id), "alice", None)
        .await
        .unwrap();
    assert!(matches!(again, ReleaseOutcome::Released { .. }), "{again:?}");
    assert_eq!(scene.file("kustomization.yaml"), expected(&b).0);
    assert_ne!(scene.tip(), tip);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_image_name_refuses_the_release_with_the_reason_and_writes_nothing() {
    let scene = Scene::new(&policy("ghcr.io/acme/wbe"));
    let before = scene.tip();
    let a = scene.build(1).await;
    assert_eq!(scene.tip(), before, "nothing written");
    assert_eq!(scene.bed.live("staging"), None);
    let (state, description) = scene.status(&a, "auger/staging").unwrap();
    assert_eq!(state, "failure", "{description}");
    assert!(
        description.contains("ghcr.io/acme/wbe") && description.contains("kustomization.yaml"),
        "{description}"
    );
    // Refused for good: not desired any more, so the next pass does not try again.
    scene.releaser().tick().await;
    assert_eq!(scene.tip(), before);
    assert_eq!(scene.status(&a, "auger/staging").unwrap().0, "failure");
}
