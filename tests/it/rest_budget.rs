//! How many REST calls a steady-state release costs, counted from the simulator's request log:
//! auger's calls only (the test's own are made as alice). Design §14 budgets 8.

use super::support::stack::{Stack, web_policy};

/// Staging takes every green build of main through a pull request merged at once.
const THROUGH_A_PULL: &str = "[env.staging]\nauto = { branch = \"main\" }\nmerge = \"auto\"\n";
/// Staging takes every green build of main as a commit on the gitops branch.
const DIRECT: &str = "[env.staging]\nauto = { branch = \"main\" }\nmerge = \"direct\"\n";

/// The calls auger made for each of `n` releases after a first one (which finds nothing yet and
/// is not steady state): method and path.
fn calls_per_release(envs: &str, n: usize) -> Vec<Vec<String>> {
    let stack = Stack::start(&web_policy(envs));
    stack.green_main("v0\n");
    (1..=n)
        .map(|i| {
            stack.sim.clear_requests();
            let sha = stack.green_main(&format!("v{i}\n"));
            super::support::stack::wait_for("the release", || {
                stack.live("staging").as_deref() == Some(sha.as_str())
            });
            stack.settle();
            stack
                .sim
                .requests()
                .into_iter()
                .filter(|r| r.login.as_deref() == Some("auger"))
                .map(|r| format!("{} {}", r.method, r.path))
                .collect()
        })
        .collect()
}

fn median(mut counts: Vec<usize>) -> usize {
    counts.sort_unstable();
    counts[counts.len() / 2]
}

#[test]
fn a_release_through_a_pull_request_costs_at_most_8_rest_calls() {
    let calls = calls_per_release(THROUGH_A_PULL, 10);
    let counts: Vec<usize> = calls.iter().map(Vec::len).collect();
    eprintln!(
        "REST calls per release (pull request): {counts:?}\n{:#?}",
        calls[0]
    );
    assert!(median(counts.clone()) <= 8, "{counts:?}: {:#?}", calls[0]);
}

#[test]
fn a_direct_release_costs_at_most_5_rest_calls() {
    let calls = calls_per_release(DIRECT, 10);
    let counts: Vec<usize> = calls.iter().map(Vec::len).collect();
    eprintln!("REST calls per release (direct): {counts:?}\n{:#?}", calls[0]);
    assert!(median(counts.clone()) <= 5, "{counts:?}: {:#?}", calls[0]);
}
