//! The release loop as a library, with a clock the test moves: soak gates, held plans that
//! survive a restart and are superseded by newer artifacts, and many releases racing other
//! writers into one gitops repository. Real git on both sides (the ledger and a bare gitops
//! repository in temp folders), the GitHub simulator behind octocrab for statuses.

use std::sync::Arc;

use auger::artifact::{Artifact, ArtifactStore, Source};
use auger::domain::{AppName, BranchName, CommitSha, RepoName, TagName};
use auger::forge::{Forge, GithubAuthSecret, GithubForge, RetryPolicy};
use auger::gitops::{GitopsRepo, GitopsTarget, GitopsTargets};
use auger::notify::Notifier;
use auger::policy::{LivePolicies, Policy, PolicySet};
use auger::release::{DesiredReleases, ManualClock, ReleaseOutcome, Releaser, ReleaserParts};
use chrono::Duration;
use github_sim::GithubSim;

use crate::support::data::env;
use crate::support::git::{git_in, git_ok_in};
use crate::support::remote::GitopsRemote;
use crate::support::sim::acme_web_for_auger;

struct Loop {
    dir: tempfile::TempDir,
    store: Arc<ArtifactStore>,
    policies: Arc<LivePolicies>,
    forge: Arc<dyn Forge>,
    clock: Arc<ManualClock>,
    remote_url: String,
}

impl Loop {
    fn new(policies: &[&str], remote: &GitopsRemote, sim: &GithubSim, token: &str) -> Loop {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("templates/web")).unwrap();
        std::fs::write(
            dir.path().join("templates/web/deployment.yaml.tera"),
            "image: {{ vars.image }}\n",
        )
        .unwrap();
        let store = Arc::new(ArtifactStore::open_or_init(&dir.path().join("ledger.git")).unwrap());
        let set = PolicySet::from_policies(
            policies
                .iter()
                .enumerate()
                .map(|(i, text)| Policy::from_toml(format!("p{i}.toml"), text).unwrap()),
        )
        .unwrap();
        let forge: Arc<dyn Forge> = Arc::new(
            GithubForge::new(
                sim.url(),
                GithubAuthSecret::Token(token.into()),
                RetryPolicy::default(),
            )
            .unwrap(),
        );
        Loop {
            dir,
            store,
            policies: LivePolicies::fixed(set),
            forge,
            clock: Arc::new(ManualClock::new(chrono::Utc::now())),
            remote_url: remote.url.clone(),
        }
    }

    /// A releaser as `auger serve` builds one; `cache` names its gitops cache folder (two
    /// names play two replicas).
    fn releaser(&self, cache: &str) -> Releaser {
        let gitops = GitopsRepo::open(
            &self.dir.path().join(cache),
            &self.remote_url,
            BranchName::new("main").unwrap(),
        )
        .unwrap();
        Releaser::new(ReleaserParts {
            store: self.store.clone(),
            policies: self.policies.clone(),
            gitops: Arc::new(GitopsTargets::single(GitopsTarget {
                repo: RepoName::new("acme/gitops").unwrap(),
                cache: gitops,
            })),
            templates: self.dir.path().join("templates"),
            forge: Some(self.forge.clone()),
            notifier: Arc::new(Notifier::new(Some(self.forge.clone()), None)),
            clock: self.clock.clone(),
            // Each replica has its data dir, as each `auger serve` does.
            desired: DesiredReleases::open(
                self.dir
                    .path()
                    .join(format!("data-{cache}/desired-releases.json")),
            )
            .unwrap(),
            git_token_from_forge: true,
            reconcile_every: auger::config::DEFAULT_RECONCILE_INTERVAL,
        })
    }

    /// Records a CI artifact and returns what the event brought with the ledger's outcome.
    fn record(
        &self,
        app: &str,
        sha: &str,
        branch: Option<&str>,
        tag: Option<&str>,
    ) -> Vec<(Artifact, auger::artifact::RecordOutcome)> {
        let mut a = Artifact::new(
            AppName::new(app).unwrap(),
            RepoName::new("acme/web").unwrap(),
            CommitSha::new(sha).unwrap(),
            Source {
                kind: "status".into(),
                name: "ci/build".into(),
                target_url: None,
            },
        );
        a.branches = branch.iter().map(|b| BranchName::new(*b).unwrap()).collect();
        a.tags = tag.iter().map(|t| TagName::new(*t).unwrap()).collect();
        let outcome = self.store.record(&a).unwrap();
        vec![(a, outcome)]
    }
}

/// acme/web with three commits on main, and an empty acme/gitops: the sim, auger's token and
/// the commits, oldest first.
fn sim_with_source() -> (GithubSim, String, Vec<String>) {
    let (sim, token) = acme_web_for_auger();
    sim.create_repo("acme/gitops").unwrap();
    let shas = (1..=3)
        .map(|i| {
            sim.push(
                "acme/web",
                "main",
                &[("app.txt", &format!("v{i}"))],
                &format!("v{i}"),
                "alice",
            )
            .unwrap()
        })
        .collect();
    (sim, token, shas)
}

const SOAKED: &str = r#"
app = "web"
repo = "acme/web"
template = "web"
[vars]
image = "img:{{ artifact.sha }}"
[env.staging]
auto = { branch = "main" }
merge = "direct"
[env.production]
auto = { tag = "v*" }
merge = "direct"
after = { env = "staging", soak = "30m" }
"#;

fn live(l: &Loop, e: &str) -> Option<String> {
    l.store
        .released(&env(e), &AppName::new("web").unwrap())
        .unwrap()
        .map(|a| a.sha.to_string())
}

/// `after = { env = "staging", soak = "30m" }`: a tagged build is held until it has been live
/// in staging for 30 minutes of the (manual) clock; the hold survives a restart; a newer
/// tagged build supersedes the held one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_waits_for_the_staging_soak_across_a_restart_and_a_newer_tag_supersedes() {
    let (sim, token, shas) = sim_with_source();
    let remote = GitopsRemote::with_readme();
    let l = Loop::new(&[SOAKED], &remote, &sim, &token);
    let r = l.releaser("cache");

    // Built on main and tagged at once: staging goes out, production is held.
    let done = r
        .on_recorded(&l.record("web", &shas[0], Some("main"), Some("v1.0.0")), false)
        .await;
    let outcomes: Vec<(String, &ReleaseOutcome)> = done
        .iter()
        .map(|(p, o)| (p.env.to_string(), o.as_ref().unwrap()))
        .collect();
    assert!(
        outcomes[0].0 == "staging" && matches!(outcomes[0].1, ReleaseOutcome::Released { .. }),
        "{outcomes:?}"
    );
    assert!(
        outcomes[1].0 == "production"
            && matches!(outcomes[1].1, ReleaseOutcome::Held { reason } if reason.contains("soaking in staging")),
        "{outcomes:?}"
    );
    assert_eq!(live(&l, "staging").as_deref(), Some(shas[0].as_str()));
    assert_eq!(live(&l, "production"), None);

    l.clock.advance(Duration::minutes(29));
    assert!(r.tick().await.is_empty(), "29 minutes are not 30");

    // auger restarts: the held plan is read back from disk.
    drop(r);
    let r = l.releaser("cache");
    assert_eq!(r.desired().len(), 1);
    assert_eq!(
        r.desired()[0].plan.artifact.to_string(),
        format!("web@{}", &shas[0][..12])
    );

    l.clock.advance(Duration::minutes(2));
    let ticked = r.tick().await;
    assert_eq!(ticked.len(), 1);
    assert!(matches!(
        ticked[0].1,
        Ok(ReleaseOutcome::Released { pull: None, .. })
    ));
    assert_eq!(live(&l, "production").as_deref(), Some(shas[0].as_str()));
    assert!(r.desired().is_empty());
    let status = sim
        .statuses("acme/web", &shas[0])
        .unwrap()
        .into_iter()
        .filter(|s| s.context == "auger/production")
        .max_by_key(|s| s.id)
        .unwrap();
    assert_eq!(status.state, "success");

    // v1.1.0 is tagged before it ever reached staging: held; v1.2.0 on a newer build
    // supersedes it; once that build is in staging and soaked, only v1.2.0 goes out.
    r.on_recorded(&l.record("web", &shas[1], None, Some("v1.1.0")), false)
        .await;
    assert!(
        r.desired()[0].reason.contains("live in staging"),
        "{:?}",
        r.desired()
    );
    r.on_recorded(&l.record("web", &shas[2], Some("main"), Some("v1.2.0")), false)
        .await;
    let held = r.desired();
    assert_eq!(held.len(), 1, "one held plan per (env, app)");
    assert_eq!(
        held[0].plan.artifact.to_string(),
        format!("web@{}", &shas[2][..12])
    );
    assert_eq!(live(&l, "staging").as_deref(), Some(shas[2].as_str()));
    l.clock.advance(Duration::minutes(31));
    r.tick().await;
    assert_eq!(live(&l, "production").as_deref(), Some(shas[2].as_str()));
    let production_log = git_in(
        &remote.bare,
        &[
            "log",
            "--format=%(trailers:key=Auger-Artifact,valueonly)",
            "main",
            "--",
            "production/web",
        ],
    );
    let released: Vec<&str> = production_log.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(
        released,
        [
            format!("web@{}", &shas[2][..12]),
            format!("web@{}", &shas[0][..12])
        ],
        "v1.1.0 never went to production"
    );
}

fn direct_policy(app: &str) -> String {
    format!(
        "app = \"{app}\"\nrepo = \"acme/web\"\ntemplate = \"web\"\n[vars]\nimage = \"img/{app}:{{{{ artifact.sha }}}}\"\n[env.prod]\nmerge = \"direct\"\n"
    )
}

/// Ten releases of ten apps fired at once from two replicas (separate caches), while another
/// writer keeps pushing to the same branch: every release commit lands, nothing of the other
/// writer is lost, and the history stays linear.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_releases_and_a_foreign_writer_lose_nothing() {
    let (sim, token, shas) = sim_with_source();
    let remote = GitopsRemote::with_readme();
    let texts: Vec<String> = (0..10).map(|i| direct_policy(&format!("app{i}"))).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let l = Loop::new(&refs, &remote, &sim, &token);
    for i in 0..10 {
        l.record(&format!("app{i}"), &shas[0], None, None);
    }
    let replicas = [Arc::new(l.releaser("cache-a")), Arc::new(l.releaser("cache-b"))];

    // The other writer: a human pushing unrelated commits, retrying when it loses a race.
    let foreign = {
        let bare = remote.bare.clone();
        std::thread::spawn(move || {
            let dir = tempfile::tempdir().unwrap();
            let work = dir.path().join("w");
            git_in(
                dir.path(),
                &["clone", "-q", bare.to_str().unwrap(), work.to_str().unwrap()],
            );
            for i in 0..8 {
                std::fs::write(work.join(format!("human-{i}.txt")), "x").unwrap();
                git_in(&work, &["add", "."]);
                git_in(&work, &["commit", "-q", "-m", &format!("human change {i}")]);
                while !git_ok_in(&work, &["push", "-q", "origin", "HEAD:main"]) {
                    git_in(&work, &["pull", "-q", "--rebase", "origin", "main"]);
                }
            }
        })
    };

    let mut tasks = Vec::new();
    for i in 0..10 {
        let r = replicas[i % 2].clone();
        let id = format!("app{i}@{}", &shas[0][..12]);
        tasks.push(tokio::spawn(async move {
            r.release(auger::release::Plan {
                env: env("prod"),
                app: AppName::new(format!("app{i}")).unwrap(),
                artifact: id.parse().unwrap(),
                trigger: auger::gitops::Trigger::Api("load".into()),
                reason: "test".into(),
                reply: None,
                overrides: Vec::new(),
            })
            .await
        }));
    }
    for t in tasks {
        let outcome = t.await.unwrap().unwrap();
        assert!(
            matches!(outcome, ReleaseOutcome::Released { pull: None, .. }),
            "{outcome:?}"
        );
    }
    foreign.join().unwrap();

    let subjects = git_in(&remote.bare, &["log", "--format=%s", "main"]);
    for i in 0..10 {
        assert!(
            subjects.contains(&format!("Release app{i} ")),
            "release of app{i} missing:\n{subjects}"
        );
        assert!(
            git_in(&remote.bare, &["ls-tree", "main", &format!("prod/app{i}/")]).contains("release.json")
        );
    }
    for i in 0..8 {
        assert!(
            subjects.contains(&format!("human change {i}")),
            "human change {i} lost"
        );
    }
    assert_eq!(
        git_in(&remote.bare, &["rev-list", "--merges", "main"]).trim(),
        "",
        "linear history"
    );
    assert_eq!(subjects.lines().count(), 1 + 10 + 8);
}

/// A policy whose template refers to a variable nobody defines.
const UNRENDERABLE: &str = r#"
app = "web"
repo = "acme/web"
template = "broken"
[vars]
image = "img:{{ artifact.sha }}"
[env.staging]
auto = { branch = "main" }
merge = "direct"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_that_cannot_render_fails_with_its_reason_and_is_not_tried_again() {
    let (sim, token, shas) = sim_with_source();
    let remote = GitopsRemote::with_readme();
    let l = Loop::new(&[UNRENDERABLE], &remote, &sim, &token);
    std::fs::create_dir_all(l.dir.path().join("templates/broken")).unwrap();
    std::fs::write(
        l.dir.path().join("templates/broken/deployment.yaml.tera"),
        "image: {{ vars.nobody_defines_this }}\n",
    )
    .unwrap();
    let r = l.releaser("cache");

    let done = r
        .on_recorded(&l.record("web", &shas[0], Some("main"), None), false)
        .await;
    assert!(
        matches!(done[0].1, Err(auger::release::ReleaseError::Render(_))),
        "{done:?}"
    );
    assert!(r.desired().is_empty(), "it can never happen: no longer desired");
    assert!(r.tick().await.is_empty(), "and not tried again");
    let status = sim
        .statuses("acme/web", &shas[0])
        .unwrap()
        .into_iter()
        .filter(|s| s.context == "auger/staging")
        .max_by_key(|s| s.id)
        .unwrap();
    assert_eq!(status.state, "error");
    assert!(
        status.description.as_deref().unwrap().contains("cannot render"),
        "{status:?}"
    );
    assert_eq!(live(&l, "staging"), None);
}
