//! The repositories are real git: merges are real merges, clients push over file:// URLs,
//! pushes can be refused, and fork pull requests point at the fork.

use crate::common::{git, git_ok, octocrab_for, seeded};
use github_sim::{NewPull, SimConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merging_a_pull_request_makes_a_real_merge_commit_and_stale_shas_are_refused() {
    let sim = seeded(SimConfig::default());
    let repo = "acme/frontend";
    let main_before = sim.branch_sha(repo, "main").unwrap();
    sim.push(
        repo,
        "main",
        &[("CHANGELOG", "main moved on\n")],
        "Main moves",
        "carol",
    )
    .unwrap();
    let head = sim
        .push(repo, "feature", &[("app.js", "1\n")], "Add app", "alice")
        .unwrap();
    let pr = sim.open_pr(repo, "feature", "main", "Add app", "alice").unwrap();
    let gh = octocrab_for(&sim, &sim.create_token("carol").unwrap());

    let merged = gh
        .pulls("acme", "frontend")
        .merge(pr)
        .sha(head.clone())
        .send()
        .await
        .unwrap();
    let merge_sha = merged.sha.unwrap();

    // `git log` of the bare repository shows the merge with both parents.
    let bare = sim.repo_path(repo).unwrap();
    let log = git(&bare, &["log", "--merges", "--format=%H %P %s", "main"]);
    let main_tip = sim.branch_sha(repo, "main").unwrap();
    assert_eq!(main_tip, merge_sha);
    assert!(log.starts_with(&merge_sha), "{log}");
    assert!(log.contains(&head), "head is a parent: {log}");
    assert!(log.contains("Merge pull request #1 from acme/feature"), "{log}");
    assert!(git(&bare, &["ls-tree", "--name-only", "main"]).contains("app.js"));
    assert_ne!(main_before, main_tip);
    let state = sim.pull(repo, pr).unwrap();
    assert!(state.merged && !state.open);
    assert_eq!(state.merge_commit_sha.as_deref(), Some(merge_sha.as_str()));

    // A second PR whose head moved after the reviewer looked: the stale sha is refused (409).
    let first = sim
        .push(repo, "fix", &[("fix.txt", "1\n")], "Fix", "alice")
        .unwrap();
    let pr2 = sim.open_pr(repo, "fix", "main", "Fix", "alice").unwrap();
    sim.push(repo, "fix", &[("fix.txt", "2\n")], "Fix more", "alice")
        .unwrap();
    let stale = gh.pulls("acme", "frontend").merge(pr2).sha(first).send().await;
    assert_eq!(github_status(stale), 409);
    assert!(sim.pull(repo, pr2).unwrap().open);

    // Merging an already merged PR is "not mergeable" (405).
    assert_eq!(
        github_status(gh.pulls("acme", "frontend").merge(pr).send().await),
        405
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_or_unmergeable_pull_requests_answer_405() {
    let sim = seeded(SimConfig::default());
    let repo = "acme/frontend";
    sim.push(repo, "conflict", &[("README.md", "theirs\n")], "Theirs", "alice")
        .unwrap();
    sim.push(repo, "main", &[("README.md", "ours\n")], "Ours", "carol")
        .unwrap();
    let pr = sim
        .open_pr(repo, "conflict", "main", "Conflict", "alice")
        .unwrap();
    let gh = octocrab_for(&sim, &sim.create_token("carol").unwrap());
    let got = gh.pulls("acme", "frontend").get(pr).await.unwrap();
    assert_eq!(got.mergeable, Some(false));
    assert_eq!(
        github_status(gh.pulls("acme", "frontend").merge(pr).send().await),
        405
    );

    sim.push(repo, "clean", &[("new.txt", "x\n")], "Clean", "alice")
        .unwrap();
    let clean = sim.open_pr(repo, "clean", "main", "Clean", "alice").unwrap();
    sim.set_mergeable(repo, clean, Some(false)).unwrap();
    assert_eq!(
        github_status(gh.pulls("acme", "frontend").merge(clean).send().await),
        405
    );
    sim.set_mergeable(repo, clean, None).unwrap();
    assert!(
        gh.pulls("acme", "frontend")
            .merge(clean)
            .send()
            .await
            .unwrap()
            .merged
    );

    // Read-only collaborators may not merge.
    sim.push(repo, "ro", &[("ro.txt", "x\n")], "ro", "alice").unwrap();
    let ro = sim.open_pr(repo, "ro", "main", "ro", "alice").unwrap();
    let bob = octocrab_for(&sim, &sim.create_token("bob").unwrap());
    assert_eq!(
        github_status(bob.pulls("acme", "frontend").merge(ro).send().await),
        403
    );
}

#[test]
fn a_fork_pull_request_has_the_fork_as_head_repo_and_merges_from_it() {
    let sim = seeded(SimConfig::default());
    sim.create_user("mallory").unwrap();
    let fork = sim.fork_repo("acme/frontend", "mallory").unwrap();
    assert_eq!(fork.full_name, "mallory/frontend");
    let head = sim
        .push(
            "mallory/frontend",
            "patch",
            &[("p.txt", "p\n")],
            "Patch",
            "mallory",
        )
        .unwrap();
    let new = NewPull {
        head: "mallory:patch".into(),
        base: "main".into(),
        title: "Patch".into(),
        body: "pls".into(),
        draft: false,
    };
    let pr = sim.open_pr_with("acme/frontend", &new, "mallory").unwrap();
    sim.wait_deliveries();

    let opened = sim.deliveries_of("pull_request").pop().unwrap().payload;
    assert_eq!(
        opened["pull_request"]["head"]["repo"]["full_name"],
        "mallory/frontend"
    );
    assert_eq!(
        opened["pull_request"]["base"]["repo"]["full_name"],
        "acme/frontend"
    );
    assert_eq!(opened["pull_request"]["head"]["repo"]["fork"], true);
    assert_eq!(opened["pull_request"]["head"]["sha"], head.as_str());
    // GitHub keeps the head commit in the base repository as refs/pull/N/head.
    let bare = sim.repo_path("acme/frontend").unwrap();
    assert_eq!(git(&bare, &["rev-parse", &format!("refs/pull/{pr}/head")]), head);

    // The fork moves on: the PR synchronizes.
    let next = sim
        .push(
            "mallory/frontend",
            "patch",
            &[("p.txt", "p2\n")],
            "Patch 2",
            "mallory",
        )
        .unwrap();
    sim.wait_deliveries();
    let sync = sim.deliveries_of("pull_request").pop().unwrap().payload;
    assert_eq!(sync["action"], "synchronize");
    assert_eq!(sync["after"], next.as_str());
    let merge = sim.merge_pr("acme/frontend", pr, "carol").unwrap();
    assert_eq!(git(&bare, &["rev-parse", "main^2"]), next);
    assert_eq!(sim.branch_sha("acme/frontend", "main").unwrap(), merge);
}

#[test]
fn clients_push_over_the_clone_url_and_the_push_makes_webhooks() {
    let sim = seeded(SimConfig::default());
    let info = sim.create_repo("acme/gitops").unwrap();
    sim.push("acme/gitops", "main", &[("staging/.keep", "")], "init", "carol")
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("clone");
    git(work.path(), &["clone", "--quiet", &info.clone_url, "clone"]);
    std::fs::write(dir.join("staging/app.yaml"), "image: a\n").unwrap();
    git(&dir, &["add", "."]);
    git(&dir, &["commit", "--quiet", "-m", "Release app to staging"]);
    git(
        &dir,
        &["push", "--quiet", "origin", "HEAD:refs/heads/auger/staging/app"],
    );
    let pushed = git(&dir, &["rev-parse", "HEAD"]);
    sim.wait_deliveries();

    assert_eq!(
        sim.branch_sha("acme/gitops", "auger/staging/app").unwrap(),
        pushed
    );
    let push = sim.deliveries_of("push").pop().unwrap().payload;
    assert_eq!(push["ref"], "refs/heads/auger/staging/app");
    assert_eq!(push["after"], pushed.as_str());
    assert_eq!(push["sender"]["login"], "auger[bot]");
    let create = sim.deliveries_of("create").pop().unwrap().payload;
    assert_eq!(create["ref"], "auger/staging/app");

    // Refused pushes fail like a rejected pre-receive hook; lifting the switch lets them in.
    sim.refuse_pushes("acme/gitops", true).unwrap();
    std::fs::write(dir.join("staging/app.yaml"), "image: b\n").unwrap();
    git(&dir, &["commit", "--quiet", "-am", "Second release"]);
    assert!(!git_ok(
        &dir,
        &["push", "--quiet", "origin", "HEAD:refs/heads/auger/staging/app"]
    ));
    assert_eq!(
        sim.branch_sha("acme/gitops", "auger/staging/app").unwrap(),
        pushed
    );
    sim.refuse_pushes("acme/gitops", false).unwrap();
    assert!(git_ok(
        &dir,
        &["push", "--quiet", "origin", "HEAD:refs/heads/auger/staging/app"]
    ));
}

#[test]
fn branch_and_tag_lifecycle_emits_create_push_and_delete() {
    let sim = seeded(SimConfig::default());
    let repo = "acme/frontend";
    sim.wait_deliveries();
    let seeded = sim.deliveries().len();
    let sha = sim.create_branch(repo, "preview", "main", "alice").unwrap();
    sim.create_annotated_tag(repo, "v1.2.0", "main", "Release 1.2.0", "alice")
        .unwrap();
    sim.delete_branch(repo, "preview", "alice").unwrap();
    sim.wait_deliveries();

    let events: Vec<(String, String)> = sim
        .deliveries()
        .iter()
        .skip(seeded)
        .filter(|d| ["create", "delete"].contains(&d.event.as_str()))
        .map(|d| {
            (
                d.event.clone(),
                format!(
                    "{}:{}",
                    d.payload["ref_type"].as_str().unwrap(),
                    d.payload["ref"].as_str().unwrap()
                ),
            )
        })
        .collect();
    assert_eq!(
        events,
        vec![
            ("create".into(), "branch:preview".into()),
            ("create".into(), "tag:v1.2.0".into()),
            ("delete".into(), "branch:preview".into()),
        ]
    );
    let deleted = sim.deliveries_of("push").pop().unwrap().payload;
    assert_eq!(deleted["deleted"], true);
    assert_eq!(deleted["before"], sha.as_str());
    assert_eq!(deleted["after"], github_sim::ZERO_SHA);
    assert!(deleted["head_commit"].is_null());
    let tag_push = sim
        .deliveries_of("push")
        .into_iter()
        .find(|d| d.payload["ref"] == "refs/tags/v1.2.0")
        .unwrap();
    assert_eq!(
        tag_push.payload["head_commit"]["id"],
        sha.as_str(),
        "head_commit is the tagged commit"
    );
}

fn github_status<T: std::fmt::Debug>(r: octocrab::Result<T>) -> u16 {
    match r {
        Err(octocrab::Error::GitHub { source, .. }) => source.status_code.as_u16(),
        other => panic!("expected a GitHub error, got {other:?}"),
    }
}

#[test]
fn deleting_a_pull_requests_branch_closes_it() {
    let sim = seeded(SimConfig::default());
    let repo = "acme/frontend";
    sim.push(repo, "preview-me", &[("p", "p")], "p", "alice").unwrap();
    let pr = sim
        .open_pr(repo, "preview-me", "main", "Preview", "alice")
        .unwrap();
    sim.delete_branch(repo, "preview-me", "alice").unwrap();
    sim.wait_deliveries();

    let state = sim.pull(repo, pr).unwrap();
    assert!(!state.open && !state.merged);
    let closed = sim.deliveries_of("pull_request").pop().unwrap().payload;
    assert_eq!(closed["action"], "closed");
    assert_eq!(closed["pull_request"]["merged"], false);
    let order: Vec<String> = sim
        .deliveries()
        .iter()
        .rev()
        .take(3)
        .map(|d| d.event.clone())
        .collect();
    assert_eq!(
        order,
        ["pull_request", "delete", "push"],
        "push and delete come first"
    );
}
