//! Several gitops repositories (design §16): one repository per cluster, in kustomize style.
//! Staging edits `acme/gitops-staging`, production `acme/gitops-prod` through an approval pull
//! request opened on that repository; a rollback goes back there; history, the current release,
//! `/status` and the dashboard read across both. Also: a policy naming a repository auger.toml
//! does not know is refused with file and key, and a busy writer on one repository does not hold
//! up a write to another.

use std::path::PathBuf;
use std::time::Duration;

use auger::artifact::Artifact;
use auger::domain::{BranchName, RepoName};
use auger::gitops::{
    GitopsRepo, GitopsTarget, GitopsTargets, ReleaseInfo, ReleaseSpec, Target, Trigger, WriteOutcome,
};

use auger::webhook::{Algorithm, sign_as};

use crate::support::cli::{auger, auger_with_env, stderr, stdout};
use crate::support::data::{api_artifact, env};
use crate::support::remote::bare;
use crate::support::stack::{WEB, web_policy};
use crate::support::webhooks::report_fixture;
use crate::support::{API_TOKEN, GITOPS, Stack, git, wait_for};

const STAGING_REPO: &str = "acme/gitops-staging";
const PROD_REPO: &str = "acme/gitops-prod";
const STAGING: &str = "clusters/staging/apps/web/kustomization.yaml";
const PROD: &str = "clusters/prod/apps/web/kustomization.yaml";

const POLICY: &str = r#"
app = "web"
repo = "acme/web"

[artifact]
signals = ["status:ci/build"]

[env.staging]
auto = { branch = "main" }
merge = "direct"
deployers = ["permission:write"]
gitops = { repo = "acme/gitops-staging", path = "clusters/staging/apps/{{ app }}" }

[[env.staging.edit]]
kustomize_image = { file = "kustomization.yaml", name = "ghcr.io/acme/web", tag = "{{ artifact.sha }}" }

[env.production]
auto = { branch = "main" }
merge = "approval"
approvers = ["user:sre1"]
gitops = { repo = "acme/gitops-prod", path = "clusters/prod/apps/{{ app }}" }

[[env.production.edit]]
kustomize_image = { file = "kustomization.yaml", name = "ghcr.io/acme/web", tag = "{{ artifact.sha }}" }
"#;

fn kustomization() -> String {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gitops-edit/kustomization.yaml");
    std::fs::read_to_string(path).unwrap()
}

/// The kustomization with the app's `newTag` set to `sha`, every other byte as it was.
fn tagged(sha: &str) -> String {
    let before = kustomization();
    let after = before.replace("newTag: \"0.9.0\"", &format!("newTag: \"{sha}\""));
    assert_ne!(before, after);
    after
}

/// auger's pull requests from `branch` in the simulator's repository `repo`.
fn pulls(stack: &Stack, repo: &str, branch: &str) -> Vec<github_sim::PullRequest> {
    stack
        .sim
        .pulls(repo)
        .unwrap()
        .into_iter()
        .filter(|p| p.head_ref == branch)
        .collect()
}

fn tip(stack: &Stack, repo: &str) -> String {
    git(&stack.sim.repo_path(repo).unwrap(), &["rev-parse", "main"])
        .trim()
        .to_owned()
}

/// Approves the open production pull request in the prod repository and waits until
/// production runs `sha`.
fn approve_production(stack: &Stack, sha: &str) {
    wait_for("an open production pull request", || {
        pulls(stack, PROD_REPO, "auger/production/web")
            .iter()
            .any(|p| p.open)
    });
    let open = pulls(stack, PROD_REPO, "auger/production/web")
        .into_iter()
        .find(|p| p.open)
        .unwrap();
    stack
        .sim
        .review(PROD_REPO, open.number, "sre1", "APPROVED")
        .unwrap();
    stack.settle();
    wait_for("production released", || {
        stack.live("production").as_deref() == Some(sha)
    });
}

fn get_json(stack: &Stack, path: &str) -> serde_json::Value {
    let (code, body) = stack.server.get(path);
    assert_eq!(code, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn two_clusters_in_two_repositories_release_approve_and_roll_back_each_in_its_own() {
    let stack = Stack::start_with_gitops_repos(POLICY, &[STAGING_REPO, PROD_REPO], "", &[]);
    for (repo, path) in [(STAGING_REPO, STAGING), (PROD_REPO, PROD)] {
        stack
            .sim
            .push(
                repo,
                "main",
                &[(path, &kustomization())],
                "the team's layout",
                "alice",
            )
            .unwrap();
    }
    let default_tip = tip(&stack, GITOPS);
    let first = stack.green_main("v1");

    // Staging: a direct commit in acme/gitops-staging that changes `newTag` and nothing else.
    wait_for("the staging release", || {
        stack.live("staging").as_deref() == Some(first.as_str())
    });
    assert_eq!(stack.file_in(STAGING_REPO, STAGING).unwrap(), tagged(&first));
    let staging_git = stack.sim.repo_path(STAGING_REPO).unwrap();
    let changed = git(&staging_git, &["diff", "--name-only", "main~1", "main"]);
    assert_eq!(changed.trim(), STAGING);
    let trailers = git(
        &staging_git,
        &["log", "-1", "--format=%(trailers:only,unfold)", "main"],
    );
    assert!(trailers.contains("Auger-Env: staging"), "{trailers}");
    assert_eq!(stack.status(&first, "auger/staging").unwrap().0, "success");

    // Production: an approval pull request on acme/gitops-prod, nowhere else; main keeps the
    // old tag until it is approved.
    wait_for("the production pull request", || {
        !pulls(&stack, PROD_REPO, "auger/production/web").is_empty()
    });
    let pr = &pulls(&stack, PROD_REPO, "auger/production/web")[0];
    assert!(pr.open);
    assert_eq!(pr.base_ref, "main");
    assert_eq!(
        git(
            &stack.sim.repo_path(PROD_REPO).unwrap(),
            &["show", &format!("{}:{PROD}", pr.head_sha)]
        ),
        tagged(&first)
    );
    assert_eq!(stack.file_in(PROD_REPO, PROD).unwrap(), kustomization());
    assert_eq!(stack.status(&first, "auger/production").unwrap().0, "pending");
    for repo in [GITOPS, STAGING_REPO] {
        assert!(
            stack.sim.pulls(repo).unwrap().is_empty(),
            "a pull request in {repo}"
        );
    }
    approve_production(&stack, &first);
    assert_eq!(stack.file_in(PROD_REPO, PROD).unwrap(), tagged(&first));
    assert_eq!(stack.status(&first, "auger/production").unwrap().0, "success");

    // A second build goes the same way; its approval pull request in the prod repository
    // carries the changelog from what production runs, and the gitops change of that repository.
    let second = stack.green_main("v2");
    wait_for("staging runs v2", || {
        stack.live("staging").as_deref() == Some(second.as_str())
    });
    wait_for("the second production pull request", || {
        pulls(&stack, PROD_REPO, "auger/production/web")
            .iter()
            .any(|p| p.open && p.body.contains(&second[..7]))
    });
    let pr = pulls(&stack, PROD_REPO, "auger/production/web")
        .into_iter()
        .find(|p| p.open)
        .unwrap();
    let since = format!(
        "1 commit(s) since `web@{}`, what **production** runs:",
        &first[..12]
    );
    assert!(pr.body.contains(&since), "{}", pr.body);
    let url = stack.sim.url();
    assert!(
        pr.body.contains(&format!(
            "- [`{}`]({url}/acme/web/commit/{second}) feat: v2 by **alice**",
            &second[..7]
        )),
        "{}",
        pr.body
    );
    assert!(
        pr.body
            .contains("<details>\n<summary>Gitops changes (1 file(s))</summary>")
            && pr.body.contains(PROD)
            && pr.body.contains(&format!("+    newTag: \"{second}\"")),
        "{}",
        pr.body
    );
    approve_production(&stack, &second);
    assert_eq!(stack.file_in(PROD_REPO, PROD).unwrap(), tagged(&second));
    assert_eq!(stack.file_in(STAGING_REPO, STAGING).unwrap(), tagged(&second));

    // A rollback of production restores the old tag in the prod repository, through its
    // approval pull request there.
    let token = API_TOKEN.split_once(':').unwrap().1;
    let body = serde_json::json!({ "app": "web", "env": "production" });
    let (code, answer) = stack.server.post("/api/v1/rollbacks", Some(token), &body);
    assert_eq!(code, 202, "{answer}");
    stack.settle();
    approve_production(&stack, &first);
    assert_eq!(stack.file_in(PROD_REPO, PROD).unwrap(), tagged(&first));
    assert_eq!(stack.file_in(STAGING_REPO, STAGING).unwrap(), tagged(&second));
    // The default repository was never written to.
    assert_eq!(tip(&stack, GITOPS), default_tip);

    // History reads across both repositories, each release with the repository it is in.
    let releases = get_json(&stack, "/api/v1/releases?app=web");
    let in_env = |env: &str| -> Vec<&serde_json::Value> {
        releases
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["env"] == env)
            .collect()
    };
    assert_eq!(in_env("staging").len(), 2, "{releases:#}");
    assert_eq!(in_env("production").len(), 3, "{releases:#}");
    assert!(in_env("staging").iter().all(|r| r["gitops_repo"] == STAGING_REPO));
    assert!(in_env("production").iter().all(|r| r["gitops_repo"] == PROD_REPO));
    assert_eq!(in_env("production")[0]["rollback"], true);
    assert_eq!(in_env("production")[0]["source_sha"], first.as_str());

    let envs = get_json(&stack, "/api/v1/environments");
    let envs: Vec<(String, String, String)> = envs
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["env"].as_str().unwrap().to_owned(),
                e["gitops_repo"].as_str().unwrap().to_owned(),
                e["artifact"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        envs,
        [
            (
                "production".into(),
                PROD_REPO.into(),
                format!("web@{}", &first[..12])
            ),
            (
                "staging".into(),
                STAGING_REPO.into(),
                format!("web@{}", &second[..12])
            ),
        ]
    );
    let current = get_json(&stack, "/api/v1/releases/current?env=production&app=web");
    assert_eq!(current["gitops_repo"], PROD_REPO);
    assert_eq!(current["sha"], first.as_str());

    // The dashboard names both repositories and links each release's commit in its own.
    let (code, page) = stack.server.get("/");
    assert_eq!(code, 200);
    for repo in [STAGING_REPO, PROD_REPO] {
        let escaped = repo.replace('/', "&#x2F;");
        assert!(
            page.contains(&format!("data-gitops-repo=\"{escaped}\"")),
            "{repo} in {page}"
        );
    }

    // `/status` on a pull request of the app shows each env with its repository.
    let (number, _) = stack.green_feature_pr("feature");
    stack.sim.comment(WEB, number, "alice", "/status").unwrap();
    stack.settle();
    wait_for("the /status reply", || !stack.replies(WEB, number).is_empty());
    let reply = stack.replies(WEB, number).join("\n");
    for row in [
        format!("| web | staging | {STAGING_REPO} |"),
        format!("| web | production | {PROD_REPO} |"),
    ] {
        assert!(reply.contains(&row), "missing {row:?} in {reply}");
    }
}

#[test]
fn policy_check_refuses_a_gitops_repository_the_configuration_does_not_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("policies")).unwrap();
    std::fs::create_dir_all(dir.path().join("templates")).unwrap();
    std::fs::write(
        dir.path().join("auger.toml"),
        "[gitops]\nrepo = \"acme/gitops\"\nurl = \"file:///nowhere\"\n\
         [gitops.repos.\"acme/gitops-prod\"]\nurl = \"file:///nowhere-prod\"\n",
    )
    .unwrap();
    let policy = |repo: &str| {
        format!(
            "app = \"web\"\nrepo = \"acme/web\"\n[env.production]\nmerge = \"direct\"\n\
             gitops = {{ repo = \"{repo}\", path = \"clusters/prod\" }}\n\
             [[env.production.edit]]\n\
             kustomize_image = {{ file = \"kustomization.yaml\", name = \"web\", tag = \"x\" }}\n"
        )
    };
    std::fs::write(dir.path().join("policies/web.toml"), policy("acme/gitops-qa")).unwrap();
    let bad = auger(dir.path(), &["policy", "check"]);
    assert_eq!(bad.status.code(), Some(1), "{}", stdout(&bad));
    let err = stderr(&bad);
    assert!(
        err.contains(
            "policies/web.toml: env.production.gitops.repo: unknown gitops repository \"acme/gitops-qa\": "
        ),
        "{err}"
    );
    assert!(
        err.contains("auger.toml names acme/gitops, acme/gitops-prod"),
        "{err}"
    );
    // `auger serve` refuses it the same way, before binding.
    let serve = auger_with_env(dir.path(), &["serve"], &[("AUGER_WEBHOOK_SECRET", "s")]);
    assert_eq!(serve.status.code(), Some(1));
    assert!(
        stderr(&serve).contains("env.production.gitops.repo"),
        "{}",
        stderr(&serve)
    );

    // Case does not matter to GitHub, nor here.
    std::fs::write(dir.path().join("policies/web.toml"), policy("Acme/Gitops-Prod")).unwrap();
    let ok = auger(dir.path(), &["policy", "check"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
}

fn spec(a: &Artifact, env_name: &str) -> ReleaseSpec {
    let release = ReleaseInfo::new(env(env_name), a.app.clone(), a, Trigger::Policy);
    ReleaseSpec {
        env: env(env_name),
        app: a.app.clone(),
        files: [("deployment.yaml".to_owned(), b"image: x\n".to_vec())].into(),
        message: format!("release {} to {env_name}", a.id),
        release,
        extra_trailers: Vec::new(),
        target: Target::Branch,
    }
}

#[test]
fn a_busy_writer_on_one_repository_does_not_hold_up_a_write_to_another() {
    let dir = tempfile::tempdir().unwrap();
    let (_, staging_url) = bare(dir.path(), "staging.git");
    let (_, prod_url) = bare(dir.path(), "prod.git");
    let main = BranchName::new("main").unwrap();
    let open = |name: &str, url: &str| GitopsTarget {
        repo: RepoName::new(name).unwrap(),
        cache: GitopsRepo::open(
            &dir.path().join(format!("cache-{}", name.replace('/', "+"))),
            url,
            main.clone(),
        )
        .unwrap(),
    };
    let mut targets = GitopsTargets::single(open(STAGING_REPO, &staging_url));
    targets.add(open(PROD_REPO, &prod_url));
    let [staging, prod] = targets.all() else {
        panic!("two targets")
    };

    // Another process (a CLI `release make`, say) is writing to staging: it holds the cache's
    // file lock.
    let lock = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(staging.cache.cache_dir().join("auger-gitops.lock"))
        .unwrap();
    lock.lock().unwrap();

    let a = api_artifact("web", 1);
    let waiting = {
        let (cache, spec) = (staging.cache.clone(), spec(&a, "staging"));
        std::thread::spawn(move || cache.prepare_release(&spec))
    };
    // Production's write lands while staging's waits.
    let written = prod.cache.prepare_release(&spec(&a, "production")).unwrap();
    assert!(matches!(written, WriteOutcome::Committed { .. }), "{written:?}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !waiting.is_finished(),
        "the staging write did not wait for the lock"
    );

    lock.unlock().unwrap();
    let staged = waiting.join().unwrap().unwrap();
    assert!(matches!(staged, WriteOutcome::Committed { .. }), "{staged:?}");
}

const FLUX_SECRET: &str = "flux-hmac-secret";

/// Staging and production, each in its repository, merging directly and both verifying with
/// `verify`: released once; the stack and the two repositories' tips.
fn both_verifying(verify: &str) -> (Stack, String, String) {
    let policy = web_policy(&format!(
        r#"
[env.staging]
auto = {{ branch = "main" }}
merge = "direct"
gitops = {{ repo = "{STAGING_REPO}" }}
verify = {verify}
[env.production]
auto = {{ branch = "main" }}
merge = "direct"
gitops = {{ repo = "{PROD_REPO}" }}
verify = {verify}
"#
    ));
    let stack = Stack::start_with_gitops_repos(
        &policy,
        &[STAGING_REPO, PROD_REPO],
        "[verify]\nflux_secret_env = \"AUGER_FLUX_SECRET\"\n",
        &[("AUGER_FLUX_SECRET", FLUX_SECRET)],
    );
    let sha = stack.green_main("v1");
    wait_for("both envs released", || {
        stack.live("staging").as_deref() == Some(sha.as_str())
            && stack.live("production").as_deref() == Some(sha.as_str())
    });
    // Rendered in each env's own repository, not in the default one.
    assert!(
        stack
            .file_in(STAGING_REPO, "staging/web/deployment.yaml")
            .is_some()
    );
    assert!(
        stack
            .file_in(PROD_REPO, "production/web/deployment.yaml")
            .is_some()
    );
    assert!(stack.gitops_file("staging/web/deployment.yaml").is_none());
    let staging_tip = stack.sim.branch_sha(STAGING_REPO, "main").unwrap();
    let prod_tip = stack.sim.branch_sha(PROD_REPO, "main").unwrap();
    (stack, staging_tip, prod_tip)
}

fn state(stack: &Stack, env: &str) -> String {
    get_json(stack, &format!("/api/v1/releases/current?env={env}&app=web"))["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A commit status speaks for the repository it is on: only the env releasing there moves.
#[test]
fn a_status_on_one_gitops_repository_verifies_only_the_env_that_releases_there() {
    let (stack, staging_tip, prod_tip) = both_verifying("{ status = \"kustomization/apps/*\" }");
    stack
        .sim
        .set_status(STAGING_REPO, &staging_tip, "success", "kustomization/apps/1")
        .unwrap();
    stack.settle();
    assert_eq!(state(&stack, "staging"), "verified");
    assert_eq!(state(&stack, "production"), "merged");
    stack
        .sim
        .set_status(PROD_REPO, &prod_tip, "success", "kustomization/apps/1")
        .unwrap();
    stack.settle();
    assert_eq!(state(&stack, "production"), "verified");
}

/// A Flux report names no repository: its revision is looked for in each listening env's own
/// repository, so one cluster's report verifies its env alone.
#[test]
fn a_flux_report_verifies_only_the_env_whose_repository_holds_its_revision() {
    let (stack, _, prod_tip) = both_verifying("{ flux = \"apps\" }");
    let mut event: serde_json::Value =
        serde_json::from_slice(&report_fixture("flux", "kustomization-succeeded.json")).unwrap();
    event["involvedObject"]["name"] = "apps".into();
    event["metadata"] = serde_json::json!({ "revision": format!("main@sha1:{prod_tip}") });
    let body = serde_json::to_vec(&event).unwrap();
    let signature = sign_as(Algorithm::Sha256, FLUX_SECRET, &body);
    let (code, answer) = stack
        .server
        .post_report("/webhooks/flux", &[("X-Signature", &signature)], &body);
    assert_eq!(code, 202, "{answer}");
    stack.settle();
    assert_eq!(state(&stack, "production"), "verified");
    assert_eq!(state(&stack, "staging"), "merged");
}
