//! Names and artifacts for the scenarios that use auger as a library.

use auger::artifact::{Artifact, Source};
use auger::domain::{AppName, BranchName, CommitSha, EnvName, RepoName};

pub fn app(s: &str) -> AppName {
    AppName::new(s).unwrap()
}

pub fn env(s: &str) -> EnvName {
    EnvName::new(s).unwrap()
}

pub fn branch(s: &str) -> BranchName {
    BranchName::new(s).unwrap()
}

/// A commit id that starts with `seed` in hex, so short ids of different seeds differ.
pub fn seed_sha(seed: u32) -> CommitSha {
    CommitSha::new(format!("{seed:08x}{}", "0".repeat(32))).unwrap()
}

/// An artifact of `acme/<app>` at [`seed_sha`]`(seed)`, recorded by CI through the API.
pub fn api_artifact(app_name: &str, seed: u32) -> Artifact {
    Artifact::new(
        app(app_name),
        RepoName::new(format!("acme/{app_name}")).unwrap(),
        seed_sha(seed),
        Source {
            kind: "api".into(),
            name: "ci".into(),
            target_url: None,
        },
    )
}
