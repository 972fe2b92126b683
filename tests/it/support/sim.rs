//! The GitHub simulator seeded for the scenarios that talk to it without a running auger, and
//! the forge that talks to it.

use std::time::Duration;

use auger::forge::{GithubAuthSecret, GithubForge, RetryPolicy};
use github_sim::{GithubSim, SimConfig};

/// Org `acme` with team `sre` = [carol]; `acme/frontend` with alice (write), bob (read),
/// carol (admin) and the bot user `releaser` (write) that the forge acts as, one commit on main.
pub fn acme_frontend(config: SimConfig) -> GithubSim {
    let repo = "acme/frontend";
    let sim = GithubSim::start(config).unwrap();
    sim.create_org("acme").unwrap();
    for u in ["alice", "bob", "carol", "dave"] {
        sim.create_user(u).unwrap();
    }
    sim.create_team("acme", "sre", &["carol"]).unwrap();
    sim.create_repo(repo).unwrap();
    sim.set_permission(repo, "alice", "write").unwrap();
    sim.set_permission(repo, "bob", "read").unwrap();
    sim.set_permission(repo, "carol", "admin").unwrap();
    sim.set_permission(repo, "releaser", "write").unwrap();
    sim.push(
        repo,
        "main",
        &[("README.md", "# frontend\n")],
        "Initial commit",
        "alice",
    )
    .unwrap();
    sim
}

/// `acme/web` with one commit on main by alice, which `releaser` may write; the sim and that
/// commit.
pub fn acme_web_with_a_commit() -> (GithubSim, String) {
    let repo = "acme/web";
    let sim = GithubSim::start(SimConfig::default()).unwrap();
    sim.create_org("acme").unwrap();
    sim.create_user("alice").unwrap();
    sim.create_repo(repo).unwrap();
    sim.set_permission(repo, "releaser", "write").unwrap();
    let sha = sim
        .push(
            repo,
            "main",
            &[("README.md", "# web\n")],
            "Initial commit",
            "alice",
        )
        .unwrap();
    (sim, sha)
}

/// Org `acme` with alice and the bot user `auger`, `acme/web` that auger may write; the sim
/// and auger's token.
pub fn acme_web_for_auger() -> (GithubSim, String) {
    let sim = GithubSim::start(SimConfig::default()).unwrap();
    sim.create_org("acme").unwrap();
    sim.create_user("alice").unwrap();
    sim.create_user("auger").unwrap();
    sim.create_repo("acme/web").unwrap();
    sim.set_permission("acme/web", "auger", "write").unwrap();
    let token = sim.create_token("auger").unwrap();
    (sim, token)
}

/// Small waits so retry tests stay fast; a budget large enough for a 1–2 s rate-limit reset.
pub fn quick_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        max_total_wait: Duration::from_secs(10),
    }
}

/// A forge acting as `login` with a personal token.
pub fn token_forge(sim: &GithubSim, login: &str, policy: RetryPolicy) -> GithubForge {
    let token = sim.create_token(login).unwrap();
    GithubForge::new(sim.url(), GithubAuthSecret::Token(token), policy).unwrap()
}

/// An RSA key pair for the App (see [`github_sim::rsa_key_pair`]).
pub fn rsa_key_pair() -> (String, String) {
    github_sim::rsa_key_pair().unwrap()
}
