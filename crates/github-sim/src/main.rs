//! Runs the simulator standalone on loopback with a seed scenario (for `auger demo` and manual
//! poking) and prints its base URL on the first line of stdout.
//!
//! ```text
//! github-sim [--port N] [--dir DIR] [--webhook-url URL] [--webhook-secret S]
//!            [--app-id N] [--app-public-key FILE] [--no-seed]
//! ```

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use github_sim::{GithubSim, SimConfig};

fn parse_args() -> Result<(SimConfig, bool)> {
    let mut config = SimConfig::default();
    let mut seed = true;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--port" => config.port = value()?.parse().context("--port")?,
            "--dir" => config.dir = Some(PathBuf::from(value()?)),
            "--webhook-url" => config.webhook_url = Some(value()?),
            "--webhook-secret" => config.webhook_secret = value()?,
            "--app-id" => config.app_id = value()?.parse().context("--app-id")?,
            "--app-public-key" => {
                let path = value()?;
                config.app_public_key_pem =
                    Some(std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?);
            }
            "--no-seed" => seed = false,
            "-h" | "--help" => {
                println!(
                    "usage: github-sim [--port N] [--dir DIR] [--webhook-url URL] [--webhook-secret S] [--app-id N] [--app-public-key FILE] [--no-seed]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other} (try --help)"),
        }
    }
    Ok((config, seed))
}

/// The demo's cast: org `acme` with an app repo and a gitops repo, three people, two teams.
fn seed(sim: &GithubSim) -> Result<()> {
    sim.create_org("acme")?;
    for user in ["alice", "bob", "carol"] {
        sim.create_user(user)?;
    }
    sim.create_team("acme", "sre", &["carol"])?;
    sim.create_team("acme", "release-managers", &["alice", "carol"])?;
    for repo in ["acme/frontend", "acme/gitops"] {
        sim.create_repo(repo)?;
        sim.set_permission(repo, "alice", "write")?;
        sim.set_permission(repo, "bob", "read")?;
        sim.set_permission(repo, "carol", "admin")?;
    }
    sim.push(
        "acme/frontend",
        "main",
        &[
            ("README.md", "# frontend\n"),
            ("src/index.js", "console.log('hello');\n"),
        ],
        "Initial commit",
        "alice",
    )?;
    sim.push(
        "acme/gitops",
        "main",
        &[("README.md", "# gitops\nApplied by Flux.\n")],
        "Initial commit",
        "carol",
    )?;
    Ok(())
}

fn main() -> Result<()> {
    let (config, with_seed) = parse_args()?;
    let sim = GithubSim::start(config)?;
    if with_seed {
        seed(&sim)?;
    }
    println!("{}", sim.url());
    println!("git repositories: {}", sim.git_dir().display());
    if with_seed {
        for user in ["alice", "bob", "carol"] {
            println!("token {user}: {}", sim.create_token(user)?);
        }
        println!("installation token: {}", sim.create_installation_token());
        println!(
            "clone acme/frontend: file://{}",
            sim.repo_path("acme/frontend")?.display()
        );
        println!(
            "clone acme/gitops: file://{}",
            sim.repo_path("acme/gitops")?.display()
        );
    }
    println!("ready (Ctrl-C to stop)");
    loop {
        std::thread::park();
    }
}
