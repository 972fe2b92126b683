//! A complete [`Ctx`] over the GitHub simulator, a temporary ledger and a local gitops
//! repository, for the short tests beside each handler.

use std::path::Path;
use std::sync::Arc;

use github_sim::{GithubSim, SimConfig};

use super::{Ctx, Releases};
use crate::artifact::{Artifact, ArtifactStore, Source};
use crate::domain::{AppName, BranchName, CommitSha, RepoName};
use crate::forge::{Forge, GithubAuthSecret, GithubForge, RetryPolicy};
use crate::gitops::{GitopsRepo, GitopsTarget, GitopsTargets};
use crate::metrics::Metrics;
use crate::notify::Notifier;
use crate::policy::{LivePolicies, Policy, PolicySet};
use crate::release::{Clock, DesiredReleases, Releaser, ReleaserParts, SystemClock};
use crate::work::PullRequestComment;

pub const REPO: &str = "acme/web";

const POLICY: &str = r#"
app = "web"
repo = "acme/web"
template = "web"

[artifact]
signals = ["status:ci/build"]

[vars]
image = "ghcr.io/acme/web:{{ artifact.sha }}"

[env.staging]
auto = { branch = "main" }
merge = "direct"
deployers = ["permission:write"]
"#;

/// The bed's policy with `lines` added to its `[env.staging]` (its last table).
pub fn policy_with_staging(lines: &str) -> String {
    format!("{POLICY}{lines}\n")
}

/// `acme/web` with alice (write) and bob (read); auger acts as the user `auger`.
pub struct Bed {
    pub sim: GithubSim,
    pub ctx: Ctx,
    dir: tempfile::TempDir,
}

fn git(dir: &Path, args: &[&str]) {
    let status = std::process::Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

impl Bed {
    /// With the release loop on, or off (no `[gitops]`).
    pub fn new(releases_on: bool) -> Bed {
        Bed::with(POLICY, Arc::new(SystemClock), releases_on)
    }

    /// With the release loop on, under `policy` (of app `web`, repo `acme/web`, template
    /// `web`) and `clock`.
    pub fn with_policy(policy: &str, clock: Arc<dyn Clock>) -> Bed {
        Bed::with(policy, clock, true)
    }

    /// With the release loop on, under several policies of `acme/web` (a monorepo), each
    /// using the template `web`.
    pub fn with_policies(policies: &[&str]) -> Bed {
        Bed::with_all(policies, Arc::new(SystemClock), true)
    }

    fn with(policy: &str, clock: Arc<dyn Clock>, releases_on: bool) -> Bed {
        Bed::with_all(&[policy], clock, releases_on)
    }

    fn with_all(policies: &[&str], clock: Arc<dyn Clock>, releases_on: bool) -> Bed {
        let sim = GithubSim::start(SimConfig::default()).unwrap();
        sim.create_org("acme").unwrap();
        for u in ["alice", "bob", "auger"] {
            sim.create_user(u).unwrap();
        }
        sim.create_repo(REPO).unwrap();
        sim.set_permission(REPO, "alice", "write").unwrap();
        sim.set_permission(REPO, "bob", "read").unwrap();
        sim.set_permission(REPO, "auger", "write").unwrap();
        sim.push(
            REPO,
            "main",
            &[("README.md", "# web\n")],
            "Initial commit",
            "alice",
        )
        .unwrap();
        let token = sim.create_token("auger").unwrap();
        let forge: Arc<dyn Forge> = Arc::new(
            GithubForge::new(sim.url(), GithubAuthSecret::Token(token), RetryPolicy::default()).unwrap(),
        );

        let dir = tempfile::tempdir().unwrap();
        let templates = dir.path().join("templates");
        std::fs::create_dir_all(templates.join("web")).unwrap();
        std::fs::write(
            templates.join("web/deployment.yaml.tera"),
            "image: {{ vars.image }}\n",
        )
        .unwrap();
        let store = Arc::new(ArtifactStore::open_or_init(&dir.path().join("ledger.git")).unwrap());
        let policies = LivePolicies::fixed(
            PolicySet::from_policies(
                policies
                    .iter()
                    .enumerate()
                    .map(|(i, text)| Policy::from_toml(format!("policies/{i}.toml"), text).unwrap()),
            )
            .unwrap(),
        );
        let releases = if releases_on {
            let remote = dir.path().join("gitops.git");
            std::fs::create_dir_all(&remote).unwrap();
            git(&remote, &["init", "--bare", "-q", "--initial-branch=main"]);
            let seed = dir.path().join("seed");
            let url = format!("file://{}", remote.display());
            git(dir.path(), &["clone", "-q", &url, seed.to_str().unwrap()]);
            std::fs::write(seed.join("README.md"), "gitops\n").unwrap();
            git(&seed, &["add", "."]);
            git(&seed, &["commit", "-q", "-m", "init"]);
            git(&seed, &["push", "-q", "origin", "HEAD:main"]);
            let gitops =
                GitopsRepo::open(&dir.path().join("cache"), &url, BranchName::new("main").unwrap()).unwrap();
            Releases::On(Arc::new(Releaser::new(ReleaserParts {
                store: store.clone(),
                policies: policies.clone(),
                gitops: Arc::new(GitopsTargets::single(GitopsTarget {
                    repo: RepoName::new("acme/gitops").unwrap(),
                    cache: gitops,
                })),
                templates,
                forge: Some(forge.clone()),
                notifier: Arc::new(Notifier::new(Some(forge.clone()), None)),
                clock,
                desired: DesiredReleases::open(dir.path().join("desired.json")).unwrap(),
                git_token_from_forge: false,
                reconcile_every: crate::config::DEFAULT_RECONCILE_INTERVAL,
            })))
        } else {
            Releases::Off
        };
        let ctx = Ctx::new(store, policies, Arc::new(Metrics::default()), forge, releases);
        Bed { sim, ctx, dir }
    }

    /// The bare repository the gitops writes go to (with the release loop on).
    pub fn gitops_remote(&self) -> std::path::PathBuf {
        self.dir.path().join("gitops.git")
    }

    /// The release loop (the bed has one unless made with `Bed::new(false)`).
    pub fn releaser(&self) -> &Releaser {
        self.ctx
            .releases
            .running()
            .expect("a bed with the release loop on")
    }

    /// A commit on main of `acme/web` whose build CI turned green, handled as the worker
    /// handles it; returns its sha.
    pub async fn green_main(&self, n: u32) -> CommitSha {
        let content = format!("v{n}\n");
        let head = self
            .sim
            .push(
                REPO,
                "main",
                &[("app.txt", content.as_str())],
                &format!("v{n}"),
                "alice",
            )
            .unwrap();
        let sha = CommitSha::new(head).unwrap();
        let mut build = self.build(&sha);
        build.facts.branches = vec![BranchName::new("main").unwrap()];
        super::ci_signal::handle(&self.ctx, build, super::Delivery::First)
            .await
            .unwrap();
        sha
    }

    /// The source commit the ledger says `env` runs.
    pub fn live(&self, env: &str) -> Option<CommitSha> {
        self.live_of(env, "web")
    }

    /// The source commit the ledger says `env` runs of `app`.
    pub fn live_of(&self, env: &str, app: &str) -> Option<CommitSha> {
        let env = crate::domain::EnvName::new(env).unwrap();
        let app = AppName::new(app).unwrap();
        self.ctx.store.released(&env, &app).unwrap().map(|a| a.sha)
    }

    /// The artifact CI would make of commit `sha`.
    pub fn artifact(&self, sha: &CommitSha) -> Artifact {
        Artifact::new(
            AppName::new("web").unwrap(),
            RepoName::new(REPO).unwrap(),
            sha.clone(),
            Source {
                kind: "status".into(),
                name: "ci/build".into(),
                target_url: None,
            },
        )
    }

    /// The build CI's green status on commit `sha` asks for.
    pub fn build(&self, sha: &CommitSha) -> crate::artifact::intake::Build {
        let a = self.artifact(sha);
        crate::artifact::intake::Build {
            apps: vec![a.app],
            facts: crate::artifact::intake::BuildFacts {
                repo: a.repo,
                sha: a.sha,
                source: a.source,
                branches: Vec::new(),
                default_branch: Some(crate::domain::BranchName::new("main").unwrap()),
                pull_requests: Vec::new(),
                author: None,
                message: None,
                url: None,
                committed: None,
            },
        }
    }

    /// A pull request with one commit on its branch: its number and head.
    pub fn pull_request(&self) -> (u64, CommitSha) {
        let head = self
            .sim
            .push(REPO, "feature", &[("app.txt", "v2\n")], "A feature", "alice")
            .unwrap();
        let number = self
            .sim
            .open_pr(REPO, "feature", "main", "A feature", "alice")
            .unwrap();
        (number, CommitSha::new(head).unwrap())
    }

    /// `author`'s comment `body` on pull request `number`, as the edge would classify it.
    pub async fn comment(&self, number: u64, author: &str, body: &str) -> PullRequestComment {
        let id = self.sim.comment(REPO, number, author, body).unwrap();
        PullRequestComment {
            repo: RepoName::new(REPO).unwrap(),
            number,
            comment_id: id,
            author: author.into(),
            author_id: self.ctx.forge.user_id(author).await.unwrap(),
            body: body.into(),
            created_at: chrono::Utc::now(),
        }
    }

    /// The bodies of every comment on pull request `number`, oldest first.
    pub async fn comments(&self, number: u64) -> Vec<String> {
        self.ctx
            .forge
            .list_comments(&RepoName::new(REPO).unwrap(), number)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.body)
            .collect()
    }
}
