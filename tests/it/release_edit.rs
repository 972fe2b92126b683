//! Edit mode end to end (design §16): a running `auger serve` against the GitHub simulator,
//! whose gitops repository holds a team's own layout (a kustomize overlay for staging, a Flux
//! HelmRelease for production). CI green → staging's `newTag` changes through a merged pull
//! request and production's image tag waits in an approval pull request; nothing else in either
//! file changes.

use std::path::PathBuf;

use crate::support::{GITOPS, Stack, git, wait_for};

const POLICY: &str = r#"
app = "web"
repo = "acme/web"

[artifact]
signals = ["status:ci/build"]

[env.staging]
auto = { branch = "main" }
merge = "auto"
gitops = { path = "clusters/{{ env }}/apps/{{ app }}" }

[[env.staging.edit]]
kustomize_image = { file = "kustomization.yaml", name = "ghcr.io/acme/web", tag = "{{ artifact.sha }}" }

[env.production]
auto = { branch = "main" }
merge = "approval"
approvers = ["user:sre1"]
gitops = { path = "clusters/{{ env }}/apps/{{ app }}" }

[[env.production.edit]]
yaml_set = { file = "helmrelease.yaml", path = "spec.values.image.tag", value = "v{{ artifact.short_sha }}", kind = "HelmRelease" }
"#;

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gitops-edit")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

const STAGING: &str = "clusters/staging/apps/web/kustomization.yaml";
const PRODUCTION: &str = "clusters/production/apps/web/helmrelease.yaml";

#[test]
fn ci_green_edits_staging_through_a_merged_pr_and_production_waits_for_approval() {
    let stack = Stack::start(POLICY);
    stack
        .sim
        .push(
            GITOPS,
            "main",
            &[
                (STAGING, &fixture("kustomization.yaml")),
                (PRODUCTION, &fixture("helmrelease.yaml")),
            ],
            "the team's layout",
            "alice",
        )
        .unwrap();
    let first = stack.green_main("v1");

    wait_for("the staging release", || stack.live("staging").is_some());
    assert_eq!(stack.live("staging").as_deref(), Some(first.as_str()));
    let staging = stack.auger_pulls("auger/staging/web");
    assert_eq!(staging.len(), 1);
    assert!(staging[0].merged);
    assert_eq!(
        stack.gitops_file(STAGING).unwrap(),
        fixture("kustomization.yaml").replace("newTag: \"0.9.0\"", &format!("newTag: \"{first}\""))
    );
    // The release commit changed that one file and carries the trailers; no release.json.
    let changed = git(
        &stack.gitops_dir,
        &[
            "diff",
            "--name-only",
            &format!("{}~1", staging[0].head_sha),
            &staging[0].head_sha,
        ],
    );
    assert_eq!(changed.trim(), STAGING);
    let trailers = git(
        &stack.gitops_dir,
        &[
            "log",
            "-1",
            "--format=%(trailers:only,unfold)",
            &staging[0].head_sha,
        ],
    );
    assert!(
        trailers.contains(&format!("Auger-Artifact: web@{}", &first[..12])),
        "{trailers}"
    );
    assert!(stack.gitops_file("staging/web/release.json").is_none());
    assert_eq!(stack.status(&first, "auger/staging").unwrap().0, "success");

    // Production: an approval PR whose head edits the HelmRelease alone; main keeps the old tag.
    let production = stack.auger_pulls("auger/production/web");
    assert_eq!(production.len(), 1);
    assert!(production[0].open);
    assert_eq!(stack.status(&first, "auger/production").unwrap().0, "pending");
    assert_eq!(
        stack.gitops_file(PRODUCTION).unwrap(),
        fixture("helmrelease.yaml")
    );
    let proposed = fixture("helmrelease.yaml").replace("tag: v0.9.0", &format!("tag: v{}", &first[..12]));
    assert_eq!(
        git(
            &stack.gitops_dir,
            &["show", &format!("{}:{PRODUCTION}", production[0].head_sha)]
        ),
        proposed
    );

    stack
        .sim
        .review(GITOPS, production[0].number, "sre1", "APPROVED")
        .unwrap();
    stack.settle();
    wait_for("production released", || {
        stack.live("production").as_deref() == Some(first.as_str())
    });
    assert_eq!(stack.gitops_file(PRODUCTION).unwrap(), proposed);
    assert_eq!(stack.status(&first, "auger/production").unwrap().0, "success");
}
