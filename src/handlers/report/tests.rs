//! Scenarios of a release's verification (design §15) on the testbed: a direct-mode staging
//! that Flux verifies, its reports handed to the handler as the worker hands them.

use std::sync::Arc;

use crate::domain::{AppName, CommitSha, EnvName};
use crate::handlers::Handled;
use crate::handlers::testbed::{Bed, REPO, policy_with_staging};
use crate::release::{ManualClock, Releaser};
use crate::verify::state::VerifyState;
use crate::verify::{Controller, Health, Report, Revision};

/// Staging (direct, deployers with write) verified by Flux's `apps-staging`.
fn policy() -> String {
    policy_with_staging(
        r#"verify = { flux = "apps-staging", soak = "5m", timeout = "10m", on_failure = "rollback" }"#,
    )
}

struct Scene {
    bed: Bed,
    clock: Arc<ManualClock>,
}

impl Scene {
    fn new(policy: &str) -> Scene {
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let bed = Bed::with_policy(policy, clock.clone());
        Scene { bed, clock }
    }

    /// The report handed to the handler, as the worker hands it.
    async fn report(&self, report: Report) -> Handled {
        super::handle(&self.bed.ctx, report).await.unwrap()
    }

    fn releaser(&self) -> &Releaser {
        self.bed.releaser()
    }

    async fn build(&self, n: u32) -> CommitSha {
        self.bed.green_main(n).await
    }

    /// The gitops branch tip.
    fn gitops_tip(&self) -> String {
        let out = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(self.bed.gitops_remote())
            .args(["rev-parse", "main"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// A person's commit on the gitops branch, after whatever is there; returns its sha.
    fn human_commit(&self) -> String {
        let dir = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| {
            let ok = std::process::Command::new("git")
                .args(["-c", "user.name=p", "-c", "user.email=p@example.com"])
                .args(args)
                .current_dir(dir.path())
                .output()
                .unwrap();
            assert!(ok.status.success(), "{args:?}");
        };
        git(&["clone", "-q", self.bed.gitops_remote().to_str().unwrap(), "."]);
        std::fs::write(dir.path().join("other.txt"), "x\n").unwrap();
        git(&["add", "."]);
        git(&["commit", "-q", "-m", "unrelated"]);
        git(&["push", "-q", "origin", "HEAD:main"]);
        self.gitops_tip()
    }

    fn flux(&self, revision: &str, health: Health, message: &str) -> Report {
        Report {
            controller: Controller::Flux,
            object: "apps-staging".into(),
            kind: Some("Kustomization".into()),
            namespace: Some("flux-system".into()),
            revision: Revision::parse(&format!("main@sha1:{revision}")),
            health,
            reason: "ReconciliationSucceeded".into(),
            message: message.into(),
            at: None,
            repo: None,
        }
    }

    async fn state(&self) -> VerifyState {
        self.releaser()
            .verification(&env(), &app())
            .await
            .unwrap()
            .unwrap()
            .state
    }

    /// The `auger/staging` statuses of source commit `sha`, oldest first.
    fn statuses(&self, sha: &CommitSha) -> Vec<(String, String)> {
        self.bed
            .sim
            .statuses(REPO, sha.as_str())
            .unwrap()
            .into_iter()
            .filter(|s| s.context == "auger/staging")
            .map(|s| (s.state, s.description.unwrap_or_default()))
            .collect()
    }

    /// The states of the deployment of source commit `sha`, oldest first.
    fn deployment_states(&self, sha: &CommitSha) -> Vec<String> {
        let all = self.bed.sim.deployments(REPO).unwrap();
        let d = all.iter().find(|d| d.sha == sha.as_str()).unwrap();
        d.statuses.iter().map(|s| s.state.clone()).collect()
    }
}

fn env() -> EnvName {
    EnvName::new("staging").unwrap()
}

fn app() -> AppName {
    AppName::new("web").unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_merged_release_says_applying_until_the_cluster_reports() {
    let s = Scene::new(&policy());
    let sha = s.build(1).await;
    assert_eq!(s.bed.live("staging"), Some(sha.clone()));
    assert_eq!(s.state().await, VerifyState::Merged);
    let (state, description) = s.statuses(&sha).pop().unwrap();
    assert_eq!(state, "pending");
    assert!(
        description.contains("waiting for Flux apps-staging"),
        "{description}"
    );
    assert_eq!(s.deployment_states(&sha).last().unwrap(), "in_progress");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_report_then_the_soak_verifies_the_release() {
    let s = Scene::new(&policy());
    let sha = s.build(1).await;
    let handled = s
        .report(s.flux(&s.gitops_tip(), Health::Healthy, "Applied"))
        .await;
    assert_eq!(handled, Handled::Acted);
    assert_eq!(s.state().await, VerifyState::Healthy);
    assert_eq!(s.deployment_states(&sha).last().unwrap(), "success");
    assert_eq!(s.statuses(&sha).pop().unwrap().0, "pending", "still soaking");
    s.clock.advance(chrono::Duration::minutes(5));
    s.releaser().tick().await;
    assert_eq!(s.state().await, VerifyState::Verified);
    let (state, description) = s.statuses(&sha).pop().unwrap();
    assert_eq!(
        (state.as_str(), description.as_str()),
        ("success", format!("verified web@{}", sha.short(12)).as_str())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_report_for_a_later_revision_verifies_what_it_contains() {
    let s = Scene::new(&policy());
    s.build(1).await;
    let release_commit = s.gitops_tip();
    // Somebody else's commit lands on the gitops branch after the release.
    let later = s.human_commit();
    assert_ne!(later, release_commit);
    s.report(s.flux(&later, Health::Healthy, "Applied")).await;
    assert_eq!(s.state().await, VerifyState::Healthy);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_error_for_an_older_revision_changes_nothing() {
    let s = Scene::new(&policy());
    s.build(1).await;
    let first = s.gitops_tip();
    s.build(2).await;
    let second = s.gitops_tip();
    // Flux's error about the first release arrives after the second merged: it is not about
    // the second.
    let handled = s.report(s.flux(&first, Health::Failed, "old failure")).await;
    assert_eq!(handled, Handled::Nothing);
    assert_eq!(s.state().await, VerifyState::Merged);
    s.report(s.flux(&second, Health::Healthy, "Applied")).await;
    assert_eq!(s.state().await, VerifyState::Healthy);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_rolls_back_to_the_last_verified_release_and_holds() {
    let s = Scene::new(&policy());
    let good = s.build(1).await;
    s.report(s.flux(&s.gitops_tip(), Health::Healthy, "Applied"))
        .await;
    s.clock.advance(chrono::Duration::minutes(5));
    s.releaser().tick().await;
    assert_eq!(s.state().await, VerifyState::Verified);

    let bad = s.build(2).await;
    assert_eq!(s.bed.live("staging"), Some(bad.clone()));
    let message = "health check failed after 30s: Deployment/web/web status: 'Failed'";
    s.report(s.flux(&s.gitops_tip(), Health::Failed, message)).await;

    assert_eq!(s.bed.live("staging"), Some(good.clone()), "rolled back");
    let (state, description) = s.statuses(&bad).pop().unwrap();
    assert_eq!(state, "failure");
    assert!(description.contains("Deployment/web/web"), "{description}");
    assert_eq!(s.deployment_states(&bad).last().unwrap(), "failure");
    let hold = s.releaser().hold_state(&env(), &app()).await.unwrap().unwrap();
    assert!(hold.held);
    // The rollback commit says why and what it returns to.
    let log = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(s.bed.gitops_remote())
        .args(["log", "-1", "--format=%B", "main"])
        .output()
        .unwrap();
    let message = String::from_utf8(log.stdout).unwrap();
    assert!(message.contains("Auger-Trigger: verify flux"), "{message}");
    assert!(
        message.contains(&format!("Auger-Rollback-To: web@{}", good.short(12))),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_rollback_is_not_rolled_back_again() {
    let s = Scene::new(&policy());
    s.build(1).await;
    s.report(s.flux(&s.gitops_tip(), Health::Healthy, "ok")).await;
    s.clock.advance(chrono::Duration::minutes(5));
    s.releaser().tick().await;
    s.build(2).await;
    s.report(s.flux(&s.gitops_tip(), Health::Failed, "broken")).await;
    let rollback_commit = s.gitops_tip();
    // The rollback itself fails: it stays, held; no third release.
    s.report(s.flux(&rollback_commit, Health::Failed, "still broken"))
        .await;
    assert_eq!(s.state().await, VerifyState::Failed);
    assert_eq!(s.gitops_tip(), rollback_commit);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_healthy_report_before_the_timeout_fails_the_release() {
    let policy = policy().replace("on_failure = \"rollback\"", "on_failure = \"hold\"");
    let s = Scene::new(&policy);
    let sha = s.build(1).await;
    s.clock.advance(chrono::Duration::minutes(9));
    s.releaser().tick().await;
    assert_eq!(s.state().await, VerifyState::Merged);
    s.clock.advance(chrono::Duration::minutes(1));
    s.releaser().tick().await;
    assert_eq!(s.state().await, VerifyState::TimedOut);
    let (state, description) = s.statuses(&sha).pop().unwrap();
    assert_eq!(state, "failure");
    assert!(
        description.contains("no healthy report within 10m"),
        "{description}"
    );
    assert!(
        s.releaser()
            .hold_state(&env(), &app())
            .await
            .unwrap()
            .unwrap()
            .held
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_report_for_another_object_is_ignored() {
    let s = Scene::new(&policy());
    s.build(1).await;
    let mut report = s.flux(&s.gitops_tip(), Health::Failed, "not ours");
    report.object = "apps-production".into();
    assert_eq!(s.report(report).await, Handled::Nothing);
    assert_eq!(s.state().await, VerifyState::Merged);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_next_release_supersedes_one_still_being_verified() {
    let s = Scene::new(&policy());
    let first = s.build(1).await;
    s.build(2).await;
    let (state, description) = s.statuses(&first).pop().unwrap();
    assert_eq!(state, "error");
    assert!(description.starts_with("superseded by web@"), "{description}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_soak_of_an_after_gate_counts_from_healthy() {
    let policy = format!(
        "{}\n[env.production]\nauto = {{ branch = \"main\" }}\nmerge = \"direct\"\nafter = {{ env = \"staging\", soak = \"10m\" }}\n",
        policy()
    );
    let s = Scene::new(&policy);
    let sha = s.build(1).await;
    s.clock.advance(chrono::Duration::minutes(3));
    s.releaser().tick().await;
    assert_eq!(s.bed.live("production"), None, "merged is not healthy");
    s.report(s.flux(&s.gitops_tip(), Health::Healthy, "ok")).await;
    s.clock.advance(chrono::Duration::minutes(9));
    s.releaser().tick().await;
    assert_eq!(s.bed.live("production"), None, "soaking");
    s.clock.advance(chrono::Duration::minutes(1));
    s.releaser().tick().await;
    assert_eq!(s.bed.live("production"), Some(sha));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_error_for_a_revision_older_than_the_healthy_one_changes_nothing() {
    let s = Scene::new(&policy());
    s.build(1).await;
    let release_commit = s.gitops_tip();
    let later = s.human_commit();
    s.report(s.flux(&later, Health::Healthy, "Applied")).await;
    assert_eq!(s.state().await, VerifyState::Healthy);
    // Flux's error about the release commit itself arrives late: the newer revision already
    // said healthy, so the release is not failed (it soaks on).
    let handled = s
        .report(s.flux(&release_commit, Health::Failed, "late news"))
        .await;
    assert_eq!(handled, Handled::Nothing);
    assert_eq!(s.state().await, VerifyState::Healthy);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_reply_says_applying_then_verified() {
    let s = Scene::new(&policy());
    let (pr, head) = s.bed.pull_request();
    s.bed.ctx.store.record(&s.bed.artifact(&head)).unwrap();
    let c = s.bed.comment(pr, "alice", "/deploy staging").await;
    crate::handlers::comment::handle(&s.bed.ctx, c.clone())
        .await
        .unwrap();
    let reply = s.bed.comments(pr).await.pop().unwrap();
    assert!(reply.contains("is merged into **staging**"), "{reply}");
    assert!(reply.contains("waiting for Flux apps-staging"), "{reply}");
    s.report(s.flux(&s.gitops_tip(), Health::Healthy, "Applied"))
        .await;
    s.clock.advance(chrono::Duration::minutes(5));
    s.releaser().tick().await;
    let reply = s.bed.comments(pr).await.pop().unwrap();
    assert!(
        reply.contains("is released to **staging** and verified"),
        "{reply}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn status_shows_how_far_the_verification_is() {
    let s = Scene::new(&policy());
    s.build(1).await;
    s.report(s.flux(
        &s.gitops_tip(),
        Health::Failed,
        "Deployment/web/web status: 'Failed'",
    ))
    .await;
    let (pr, _) = s.bed.pull_request();
    let c = s.bed.comment(pr, "alice", "/status").await;
    crate::handlers::comment::handle(&s.bed.ctx, c).await.unwrap();
    let reply = s.bed.comments(pr).await.pop().unwrap();
    assert!(
        reply.contains("| failed: Deployment/web/web status: 'Failed' |"),
        "{reply}"
    );
}
