//! Releases that always finish (design §13b): a crash between any two steps of a release, GitHub
//! faults, and a gitops branch that never stops moving delay a release, but never drop or
//! repeat it, and never leave a status `pending`.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use github_sim::Fault;

use super::support::git::{git, releases_by_artifact};
use super::support::stack::{GITOPS, Stack, WEB, wait_for, wait_long, web_policy};

/// Staging takes every green build of main through a pull request merged at once.
const THROUGH_A_PULL: &str = "[env.staging]\nauto = { branch = \"main\" }\nmerge = \"auto\"\n";
/// Staging takes every green build of main as a commit on the gitops branch.
const DIRECT: &str = "[env.staging]\nauto = { branch = \"main\" }\nmerge = \"direct\"\n";

/// A quick reconcile, so a test does not wait out the default minute between tries.
const QUICK: &str = "reconcile_interval = \"2s\"";

fn artifact_id(sha: &str) -> String {
    format!("web@{}", &sha[..12])
}

/// The newest `auger/staging` status of each commit, and the states its deployments ended in.
fn finals(stack: &Stack, shas: &[String]) -> Vec<(String, String)> {
    let deployments = stack.sim.deployments(WEB).unwrap();
    shas.iter()
        .map(|sha| {
            let status = stack
                .status(sha, "auger/staging")
                .map(|(state, _)| state)
                .unwrap_or_else(|| "none".into());
            let last_deployment_states: Vec<String> = deployments
                .iter()
                .filter(|d| d.sha == *sha && d.environment == "staging")
                .filter_map(|d| d.statuses.last().map(|s| s.state.clone()))
                .collect();
            (status, last_deployment_states.join(","))
        })
        .collect()
}

/// A status or deployment that says a release is still on its way.
fn unfinished(state: &str) -> bool {
    ["pending", "queued", "in_progress"]
        .iter()
        .any(|s| state.split(',').any(|x| x == *s))
}

/// Auger armed to abort at `point` sees a green build of main, dies there, and is started
/// again on the same folder: the release completes once, its status final, the env ref right.
fn crash_then_restart(point: &str, envs: &str) {
    let mut stack = Stack::start_tuned(&web_policy(envs), QUICK, "", &[("AUGER_CRASH_AT", point)]);
    let sha = stack.push_green_main("v1\n");
    let exit = stack.server.wait_exit(Duration::from_secs(30));
    assert!(!exit.success(), "auger aborted at {point}: {exit:?}");
    assert_eq!(
        stack.live("staging"),
        None,
        "the crash came before the ledger knew"
    );

    stack.restart(&[]);
    wait_for("staging to run the build", || {
        stack.live("staging").as_deref() == Some(sha.as_str())
    });
    stack.settle();

    let released = releases_by_artifact(&stack.gitops_dir);
    assert_eq!(released.get(&artifact_id(&sha)), Some(&1), "{released:?}");
    let (status, deployments) = finals(&stack, std::slice::from_ref(&sha)).remove(0);
    assert_eq!(status, "success");
    assert!(
        !unfinished(&deployments),
        "deployments left unfinished: {deployments}"
    );
    let pulls = stack.auger_pulls("auger/staging/web");
    assert!(pulls.len() <= 1, "one release, one pull request: {}", pulls.len());
    assert!(pulls.iter().all(|p| p.merged), "{pulls:?}");
}

#[test]
fn a_crash_after_the_artifact_is_recorded_still_releases_it() {
    crash_then_restart("recorded", THROUGH_A_PULL);
}

#[test]
fn a_crash_after_the_push_to_the_release_branch_still_opens_and_merges_once() {
    crash_then_restart("pushed", THROUGH_A_PULL);
}

#[test]
fn a_crash_after_the_direct_push_moves_the_env_ref_on_restart() {
    crash_then_restart("pushed", DIRECT);
}

#[test]
fn a_crash_after_the_pull_request_opened_merges_that_pull_request() {
    crash_then_restart("pull-opened", THROUGH_A_PULL);
}

#[test]
fn a_crash_after_the_merge_records_the_release_and_finishes_its_statuses() {
    crash_then_restart("merged", THROUGH_A_PULL);
}

/// Every write auger makes to GitHub during a release fails one time in five: before its
/// effect (a 5xx) or after it (a 502 from a proxy in front of GitHub).
fn arm_faults(stack: &Stack) {
    let rules: [(&str, &str, Fault); 7] = [
        ("POST", "/repos/*/*/pulls", Fault::status(502)),
        ("PATCH", "/repos/*/*/pulls/*", Fault::after_effect(502)),
        ("PUT", "/repos/*/*/pulls/*/merge", Fault::after_effect(502)),
        ("GET", "/repos/*/*/pulls", Fault::status(500)),
        ("POST", "/repos/*/*/statuses/*", Fault::status(500)),
        ("POST", "/repos/*/*/deployments", Fault::after_effect(502)),
        ("POST", "/repos/*/*/deployments/*/statuses", Fault::status(503)),
    ];
    for (seed, (method, path, fault)) in rules.into_iter().enumerate() {
        stack
            .sim
            .inject_fault_rate(method, path, 0.2, fault, seed as u64 + 17)
            .unwrap();
    }
}

#[test]
fn twelve_releases_through_github_faults_end_with_the_newest_live_and_nothing_pending() {
    let stack = Stack::start_tuned(&web_policy(THROUGH_A_PULL), QUICK, "", &[]);
    arm_faults(&stack);
    let shas: Vec<String> = (1..=12).map(|n| stack.green_main(&format!("v{n}\n"))).collect();
    assert!(stack.sim.faults_served() > 0, "the faults really happened");

    stack.sim.clear_faults();
    let newest = shas.last().unwrap();
    wait_long("the newest build in staging", Duration::from_secs(60), || {
        stack.live("staging").as_deref() == Some(newest.as_str())
    });
    wait_long("every status final", Duration::from_secs(60), || {
        finals(&stack, &shas)
            .iter()
            .all(|(s, d)| !unfinished(s) && !unfinished(d))
    });
    wait_long("nothing left desired or owed", Duration::from_secs(30), || {
        let (_, metrics) = stack.server.get("/metrics");
        let lines: Vec<&str> = metrics.lines().collect();
        lines.contains(&"auger_releases_desired 0") && lines.contains(&"auger_statuses_owed 0")
    });
    let released = releases_by_artifact(&stack.gitops_dir);
    assert!(released.values().all(|n| *n == 1), "released twice: {released:?}");
    assert_eq!(released.get(&artifact_id(newest)), Some(&1), "{released:?}");
    let finals = finals(&stack, &shas);
    eprintln!(
        "12 builds under faults: {} faults served, {} released, {} superseded",
        stack.sim.faults_served(),
        released.len(),
        finals.iter().filter(|(s, _)| s == "error").count()
    );
    let (last, _) = finals.last().unwrap();
    assert_eq!(last, "success");
    // Each earlier build went out or was superseded by a newer one; none says nothing.
    for ((status, _), sha) in finals.iter().zip(&shas) {
        let expected = if released.contains_key(&artifact_id(sha)) {
            "success"
        } else {
            "error"
        };
        assert_eq!(status, expected, "{}: {finals:?}", &sha[..12]);
    }
}

/// Sets its flag when dropped.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Whether a pending status on one of `shas` said the gitops branch was busy.
fn said_busy(stack: &Stack, shas: &[String]) -> bool {
    shas.iter().any(|sha| {
        stack.sim.statuses(WEB, sha).unwrap().iter().any(|s| {
            s.state == "pending"
                && s.description
                    .as_deref()
                    .unwrap_or("")
                    .contains("gitops branch busy")
        })
    })
}

#[test]
fn a_gitops_branch_that_never_stops_moving_still_gets_the_newest_build() {
    let stack = Stack::start_tuned(&web_policy(DIRECT), QUICK, "", &[]);
    let stop = AtomicBool::new(false);
    // People push to the gitops branch without pause at first, so auger loses race after
    // race until it gives up a round; then every 100 ms, as a busy monorepo sees all day.
    let pause_ms = AtomicU64::new(0);
    let pushed = AtomicUsize::new(0);
    let shas: Vec<String> = std::thread::scope(|scope| {
        // However this thread ends, a panic included, the people stop, so the scope can end.
        let _stop_people = StopOnDrop(&stop);
        scope.spawn(|| {
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let path = format!("people/change-{}.txt", n + 1);
                // A push that lost the race to auger is made again on the new tip.
                if stack
                    .sim
                    .push(
                        GITOPS,
                        "main",
                        &[(path.as_str(), "x\n")],
                        "people: a change",
                        "alice",
                    )
                    .is_ok()
                {
                    n += 1;
                    pushed.store(n, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(pause_ms.load(Ordering::Relaxed)));
            }
        });
        // Three green builds, without waiting for auger: it is busy losing races.
        let shas: Vec<String> = (1..=3)
            .map(|n| stack.push_green_main(&format!("v{n}\n")))
            .collect();
        wait_long(
            "auger to say the gitops branch is busy",
            Duration::from_secs(90),
            || {
                said_busy(&stack, &shas)
                    || stack.live("staging").as_deref() == shas.last().map(String::as_str)
            },
        );
        pause_ms.store(100, Ordering::Relaxed);
        let newest = shas.last().unwrap().clone();
        wait_long(
            "the newest build in staging while people push",
            Duration::from_secs(90),
            || stack.live("staging").as_deref() == Some(newest.as_str()),
        );
        stop.store(true, Ordering::Relaxed);
        shas
    });
    let newest = shas.last().unwrap();

    let files = git(&stack.gitops_dir, &["ls-tree", "--name-only", "main", "people/"]);
    assert_eq!(
        files.lines().count(),
        pushed.load(Ordering::Relaxed),
        "no human commit lost"
    );
    assert_eq!(
        stack.gitops_file("staging/web/deployment.yaml").as_deref(),
        Some(format!("image: ghcr.io/acme/web:{newest}\n").as_str())
    );
    wait_long("every status final", Duration::from_secs(30), || {
        finals(&stack, &shas).iter().all(|(s, _)| !unfinished(s))
    });
    // While it lost race after race, its pending status said why (on a loaded machine auger
    // can win before a round of attempts runs out; then there was nothing to say).
    let waiting: Vec<String> = shas
        .iter()
        .flat_map(|sha| stack.sim.statuses(WEB, sha).unwrap())
        .filter_map(|s| {
            s.description
                .filter(|d| s.state == "pending" && d.contains("waiting"))
        })
        .collect();
    assert!(
        waiting.iter().all(|d| d.contains("gitops branch busy")),
        "{waiting:?}"
    );
}

#[test]
fn a_secondary_rate_limit_on_statuses_delays_the_final_status_but_it_lands() {
    let stack = Stack::start_tuned(&web_policy(DIRECT), QUICK, "", &[]);
    // GitHub's secondary limit: 403 with retry-after, on every status post for a while.
    stack
        .sim
        .inject_fault("POST", "/repos/*/*/statuses/*", 4, Fault::retry_after(403, 1));
    let sha = stack.green_main("v1\n");
    wait_for("staging to run the build", || {
        stack.live("staging").as_deref() == Some(sha.as_str())
    });
    wait_long("the success status", Duration::from_secs(30), || {
        stack.status(&sha, "auger/staging").map(|(s, _)| s).as_deref() == Some("success")
    });
    assert!(stack.sim.faults_served() >= 4, "the limit was really hit");
}

#[test]
fn a_preview_whose_pull_request_closed_while_auger_was_down_is_removed_on_restart() {
    let policy = web_policy("[env.staging]\nmerge = \"direct\"\n[preview]\nenv = \"preview\"\n");
    let mut stack = Stack::start_tuned(&policy, QUICK, "", &[]);
    stack.green_main("v0\n");
    let (pr, _) = stack.green_feature_pr("feature");
    let folder = format!("preview/web-pr-{pr}/release.json");
    wait_for("the preview", || stack.gitops_file(&folder).is_some());

    // auger is down when the pull request closes: the webhook finds nobody.
    stack.server.kill();
    stack.sim.close_pr(WEB, pr, "alice").unwrap();
    assert!(stack.sim.wait_deliveries());
    stack.restart(&[]);
    wait_for("the stale preview removed", || {
        stack.gitops_file(&folder).is_none()
    });
    assert_eq!(stack.last_trailer("Auger-Action"), "remove");
}
