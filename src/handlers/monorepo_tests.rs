//! Monorepos (design §16) on the testbed: two apps built from one repository, each only from
//! commits that change its `[artifact] paths`, and `/deploy` that names the app when the
//! repository has several.

use super::testbed::{Bed, REPO};
use super::{Delivery, Handled, ci_signal, comment};
use crate::artifact::intake::Build;
use crate::domain::{AppName, BranchName, CommitSha};

fn policy(app: &str) -> String {
    format!(
        r#"
app = "{app}"
repo = "acme/web"
template = "web"

[artifact]
signals = ["status:ci/build"]
paths = ["services/{app}/**"]

[vars]
image = "ghcr.io/acme/{app}:{{{{ artifact.sha }}}}"

[env.staging]
auto = {{ branch = "main" }}
merge = "direct"
deployers = ["permission:write"]
"#
    )
}

fn bed() -> Bed {
    Bed::with_policies(&[&policy("web"), &policy("api")])
}

/// A green `ci/build` on `sha`, as the edge classifies it: a build of both apps, since both
/// policies name the signal.
async fn green(bed: &Bed, sha: &CommitSha, branch: Option<&str>) -> Handled {
    let mut build: Build = bed.build(sha);
    build.apps = vec![AppName::new("web").unwrap(), AppName::new("api").unwrap()];
    build.facts.branches = branch.into_iter().map(|b| BranchName::new(b).unwrap()).collect();
    ci_signal::handle(&bed.ctx, build, Delivery::First).await.unwrap()
}

fn artifact_of(bed: &Bed, app: &str, sha: &CommitSha) -> bool {
    bed.ctx
        .store
        .get(&AppName::new(app).unwrap(), sha)
        .unwrap()
        .is_some()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_commit_builds_only_the_apps_whose_paths_it_changes() {
    let bed = bed();
    let push = |files: &[(&str, &str)], message: &str| {
        CommitSha::new(bed.sim.push(REPO, "main", files, message, "alice").unwrap()).unwrap()
    };
    let api = push(&[("services/api/main.go", "package main\n")], "api: start");
    assert_eq!(green(&bed, &api, Some("main")).await, Handled::Acted);
    assert!(artifact_of(&bed, "api", &api), "an api artifact");
    assert!(!artifact_of(&bed, "web", &api), "no web artifact");
    assert_eq!(bed.live_of("staging", "api"), Some(api.clone()));
    assert_eq!(bed.live_of("staging", "web"), None);

    let docs = push(&[("README.md", "# mono\n")], "docs");
    assert_eq!(
        green(&bed, &docs, Some("main")).await,
        Handled::Nothing,
        "a commit outside both apps builds neither"
    );
    assert!(!artifact_of(&bed, "api", &docs) && !artifact_of(&bed, "web", &docs));

    let both = push(
        &[
            ("services/web/index.html", "<p>hi</p>\n"),
            ("services/api/main.go", "package api\n"),
        ],
        "both",
    );
    green(&bed, &both, Some("main")).await;
    assert!(artifact_of(&bed, "api", &both) && artifact_of(&bed, "web", &both));
    assert_eq!(bed.live_of("staging", "web"), Some(both));
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_names_the_app_when_the_repository_has_several() {
    let bed = bed();
    let head = CommitSha::new(
        bed.sim
            .push(
                REPO,
                "feature",
                &[("services/web/app.js", "v2\n")],
                "web: v2",
                "alice",
            )
            .unwrap(),
    )
    .unwrap();
    let pr = bed
        .sim
        .open_pr(REPO, "feature", "main", "web: v2", "alice")
        .unwrap();
    green(&bed, &head, Some("feature")).await;
    assert!(artifact_of(&bed, "web", &head) && !artifact_of(&bed, "api", &head));

    let ambiguous = bed.comment(pr, "alice", "/deploy staging").await;
    assert_eq!(
        comment::handle(&bed.ctx, ambiguous).await.unwrap(),
        Handled::Acted
    );
    let reply = bed.comments(pr).await.pop().unwrap();
    assert!(
        reply.contains(
            "this repository has several apps in staging: `api`, `web`; name one, as in `/deploy staging api`"
        ),
        "{reply}"
    );
    assert_eq!(bed.live_of("staging", "web"), None, "nothing deployed");
    assert_eq!(bed.live_of("staging", "api"), None);

    let unknown = bed.comment(pr, "alice", "/deploy staging shop").await;
    comment::handle(&bed.ctx, unknown).await.unwrap();
    let reply = bed.comments(pr).await.pop().unwrap();
    assert!(
        reply.contains("this repository has no app `shop` (apps: `api`, `web`)"),
        "{reply}"
    );

    let named = bed.comment(pr, "alice", "/deploy staging web").await;
    assert_eq!(comment::handle(&bed.ctx, named).await.unwrap(), Handled::Acted);
    assert_eq!(bed.live_of("staging", "web"), Some(head));
    assert_eq!(bed.live_of("staging", "api"), None);
}
