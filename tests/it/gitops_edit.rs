//! Edit mode of the gitops writer (design §16) against real git repositories: values changed
//! in files a team already keeps, every other byte kept, refusals that write nothing, and the
//! history read back from the commit trailers alone (no `release.json`).

use std::path::{Path, PathBuf};

use auger::artifact::Artifact;
use auger::domain::{BranchName, CommitSha};
use auger::gitops::{
    EditOp, EditSpec, FileEdit, GitopsRepo, HistoryFilter, ReleaseInfo, Target, Trigger, WriteError,
    WriteOutcome,
};
use auger_yaml_edit::{DocSelector, YamlPath};

use crate::support::data::{api_artifact, app, env};
use crate::support::git::git_in;
use crate::support::remote::bare;

const DIR: &str = "clusters/staging/apps/web";

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gitops-edit")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

/// A gitops remote holding the kustomize overlay and the HelmRelease under [`DIR`], and a
/// writer on it.
struct World {
    _dir: tempfile::TempDir,
    remote: PathBuf,
    repo: GitopsRepo,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let (remote, url) = bare(dir.path(), "gitops.git");
        let work = dir.path().join("seed");
        git_in(dir.path(), &["clone", "-q", &url, work.to_str().unwrap()]);
        std::fs::create_dir_all(work.join(DIR)).unwrap();
        for f in ["kustomization.yaml", "helmrelease.yaml"] {
            std::fs::write(work.join(DIR).join(f), fixture(f)).unwrap();
        }
        std::fs::write(work.join("README.md"), "gitops\n").unwrap();
        git_in(&work, &["add", "."]);
        git_in(&work, &["commit", "-q", "-m", "the team's layout"]);
        git_in(&work, &["push", "-q", "origin", "HEAD:main"]);
        let repo = GitopsRepo::open(
            &dir.path().join("cache.git"),
            &url,
            BranchName::new("main").unwrap(),
        )
        .unwrap();
        World {
            _dir: dir,
            remote,
            repo,
        }
    }

    fn file(&self, rev: &str, path: &str) -> String {
        git_in(&self.remote, &["show", &format!("{rev}:{path}")])
    }

    fn rev(&self, rev: &str) -> String {
        git_in(&self.remote, &["rev-parse", rev]).trim().to_owned()
    }
}

fn remote_path(w: &World) -> &Path {
    &w.remote
}

fn image_tag(tag: &str) -> FileEdit {
    FileEdit {
        file: format!("{DIR}/kustomization.yaml"),
        op: EditOp::KustomizeImage {
            name: "ghcr.io/acme/web".into(),
            tag: Some(tag.into()),
            digest: None,
        },
    }
}

fn helm_tag(tag: &str) -> FileEdit {
    FileEdit {
        file: format!("{DIR}/helmrelease.yaml"),
        op: EditOp::YamlSet {
            path: YamlPath::parse("spec.values.image.tag").unwrap(),
            value: tag.into(),
            select: Some(DocSelector {
                kind: Some("HelmRelease".into()),
                name: Some("web".into()),
            }),
        },
    }
}

fn spec(a: &Artifact, edits: Vec<FileEdit>, target: Target) -> EditSpec {
    EditSpec {
        env: env("staging"),
        app: a.app.clone(),
        edits,
        release: ReleaseInfo::new(env("staging"), a.app.clone(), a, Trigger::Policy),
        message: format!("release {} to staging", a.id),
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

#[test]
fn an_edit_changes_only_the_named_values_and_commits_only_changed_files() {
    let w = World::new();
    let v1 = api_artifact("web", 1);
    let c1 = committed(
        w.repo
            .prepare_edit(&spec(
                &v1,
                vec![image_tag("1.0.0"), helm_tag("v1.0.0")],
                Target::Branch,
            ))
            .unwrap(),
    );
    assert_eq!(w.rev("main"), c1.as_str());
    assert_eq!(
        w.file("main", &format!("{DIR}/kustomization.yaml")),
        fixture("kustomization.yaml").replace("newTag: \"0.9.0\"", "newTag: \"1.0.0\"")
    );
    assert_eq!(
        w.file("main", &format!("{DIR}/helmrelease.yaml")),
        fixture("helmrelease.yaml").replace("tag: v0.9.0", "tag: v1.0.0")
    );
    // Two files changed, nothing else; no release.json anywhere.
    let changed = git_in(remote_path(&w), &["diff", "--name-only", "main~1", "main"]);
    assert_eq!(
        changed.lines().collect::<Vec<_>>(),
        [
            format!("{DIR}/helmrelease.yaml"),
            format!("{DIR}/kustomization.yaml")
        ]
    );
    let trailers = git_in(
        remote_path(&w),
        &["log", "-1", "--format=%(trailers:only,unfold)", "main"],
    );
    assert!(
        trailers.contains(&format!("Auger-Artifact: {}", v1.id)),
        "{trailers}"
    );

    // Only one file changes the second time: the other value is already set.
    let v2 = api_artifact("web", 2);
    committed(
        w.repo
            .prepare_edit(&spec(
                &v2,
                vec![image_tag("2.0.0"), helm_tag("v1.0.0")],
                Target::Branch,
            ))
            .unwrap(),
    );
    let changed = git_in(remote_path(&w), &["diff", "--name-only", "main~1", "main"]);
    assert_eq!(changed.trim(), format!("{DIR}/kustomization.yaml"));

    // Every value as it is already: unchanged, no commit.
    let tip = w.rev("main");
    let again = w
        .repo
        .prepare_edit(&spec(
            &v2,
            vec![image_tag("2.0.0"), helm_tag("v1.0.0")],
            Target::Branch,
        ))
        .unwrap();
    assert!(matches!(again, WriteOutcome::Unchanged { .. }), "{again:?}");
    assert_eq!(w.rev("main"), tip);
}

#[test]
fn a_missing_image_file_or_path_refuses_and_writes_nothing() {
    let w = World::new();
    let tip = w.rev("main");
    let v1 = api_artifact("web", 1);
    let typo = FileEdit {
        file: format!("{DIR}/kustomization.yaml"),
        op: EditOp::KustomizeImage {
            name: "ghcr.io/acme/wbe".into(),
            tag: Some("1.0.0".into()),
            digest: None,
        },
    };
    // The good edit comes first: it must not be written either.
    let err = w
        .repo
        .prepare_edit(&spec(&v1, vec![helm_tag("v1.0.0"), typo], Target::Branch))
        .unwrap_err();
    assert!(matches!(err, WriteError::Edit { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "edit {DIR}/kustomization.yaml: image `ghcr.io/acme/wbe` is not in the kustomization's images (listed: ghcr.io/acme/web, ghcr.io/acme/web-migrations)"
        )
    );
    let missing = FileEdit {
        file: format!("{DIR}/values.yaml"),
        ..helm_tag("x")
    };
    let err = w
        .repo
        .prepare_edit(&spec(&v1, vec![missing], Target::Branch))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("edit {DIR}/values.yaml: no such file on the gitops branch")
    );
    let mut no_path = helm_tag("x");
    if let EditOp::YamlSet { path, .. } = &mut no_path.op {
        *path = YamlPath::parse("spec.values.image.digest").unwrap();
    }
    let err = w
        .repo
        .prepare_edit(&spec(&v1, vec![no_path], Target::Branch))
        .unwrap_err();
    assert!(err.to_string().contains("has no `digest`"), "{err}");
    // An ambiguous path: `metadata.name` is in both documents.
    let ambiguous = FileEdit {
        file: format!("{DIR}/helmrelease.yaml"),
        op: EditOp::YamlSet {
            path: YamlPath::parse("metadata.namespace").unwrap(),
            value: "x".into(),
            select: None,
        },
    };
    let err = w
        .repo
        .prepare_edit(&spec(&v1, vec![ambiguous], Target::Branch))
        .unwrap_err();
    assert!(err.to_string().contains("is in 2 documents"), "{err}");
    assert_eq!(w.rev("main"), tip, "nothing was pushed");
}

#[test]
fn history_and_current_read_edit_releases_from_their_trailers() {
    let w = World::new();
    let (s, web) = (env("staging"), app("web"));
    let v1 = api_artifact("web", 1);
    let v2 = api_artifact("web", 2);
    let c1 = committed(
        w.repo
            .prepare_edit(&spec(&v1, vec![image_tag("1")], Target::Branch))
            .unwrap(),
    );
    let mut second = spec(&v2, vec![image_tag("2")], Target::Branch);
    second.release.trigger = Trigger::Command("alice".into());
    let c2 = committed(w.repo.prepare_edit(&second).unwrap());

    let history = w.repo.releases(&HistoryFilter::for_pair(&s, &web)).unwrap();
    let seen: Vec<(&str, String, String)> = history
        .iter()
        .map(|r| (r.commit.as_str(), r.artifact.to_string(), r.trigger.to_string()))
        .collect();
    assert_eq!(
        seen,
        [
            (c2.as_str(), v2.id.to_string(), "command @alice".to_owned()),
            (c1.as_str(), v1.id.to_string(), "policy".to_owned()),
        ]
    );
    assert!(
        history.iter().all(|r| r.release.is_none()),
        "no release.json in edit mode"
    );
    let current = w.repo.current(&s, &web).unwrap().unwrap();
    assert_eq!(
        (current.artifact, current.source.sha),
        (v2.id.clone(), v2.sha.clone())
    );

    // What a release commit proposes, read back without a release.json (the PR path does so).
    let record = w.repo.release_at(&c1, &s, &web).unwrap().unwrap();
    assert_eq!(
        (record.artifact, record.trigger),
        (v1.id.clone(), Trigger::Policy)
    );
    assert!(
        w.repo
            .release_at(&c1, &env("production"), &web)
            .unwrap()
            .is_none()
    );

    // The values a rollback to the first release writes back, read at its commit.
    let back = w
        .repo
        .edit_values_at(&c1, &[image_tag("{{ artifact.sha }}")])
        .unwrap();
    assert_eq!(back, [image_tag("1")]);
}

#[test]
fn pr_mode_edits_land_on_the_release_branch_and_a_repeat_is_pending() {
    let w = World::new();
    let tip = w.rev("main");
    let v1 = api_artifact("web", 1);
    let first = w
        .repo
        .prepare_edit(&spec(&v1, vec![image_tag("1.0.0")], Target::PrBranch))
        .unwrap();
    let commit = committed(first);
    assert_eq!(w.rev("main"), tip, "main is left alone");
    assert_eq!(w.rev("auger/staging/web"), commit.as_str());
    assert!(
        w.file("auger/staging/web", &format!("{DIR}/kustomization.yaml"))
            .contains("newTag: \"1.0.0\"")
    );
    let again = w
        .repo
        .prepare_edit(&spec(&v1, vec![image_tag("1.0.0")], Target::PrBranch))
        .unwrap();
    assert_eq!(
        again,
        WriteOutcome::Pending {
            commit: commit.clone(),
            branch: "auger/staging/web".into()
        }
    );
    // Another artifact with the same values is a new proposal, not the pending one.
    let v2 = api_artifact("web", 2);
    let other = w
        .repo
        .prepare_edit(&spec(&v2, vec![image_tag("1.0.0")], Target::PrBranch))
        .unwrap();
    assert_ne!(committed(other), commit);
}
