//! Crash points, for the tests that prove a release survives a crash between any two of its
//! steps. With `AUGER_CRASH_AT=<point>` in its environment, auger aborts the first time it
//! reaches that point: no destructor, no flush, no done marker, as under a SIGKILL. Unset (as
//! everywhere but those tests) a crash point is one comparison.

use std::sync::OnceLock;

/// The boundaries between a release's steps, where a crash leaves the most half-done state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// The ledger holds the new artifact; its release is not desired yet.
    Recorded,
    /// The release commit is pushed (to the gitops branch or the pull request's branch); the
    /// ledger's env ref has not moved.
    Pushed,
    /// The release pull request is open; it is not merged.
    PullOpened,
    /// GitHub merged the release pull request; auger has not recorded it.
    Merged,
}

impl Point {
    fn name(self) -> &'static str {
        match self {
            Point::Recorded => "recorded",
            Point::Pushed => "pushed",
            Point::PullOpened => "pull-opened",
            Point::Merged => "merged",
        }
    }
}

/// The variable that arms a crash point.
pub const VAR: &str = "AUGER_CRASH_AT";

fn armed() -> Option<&'static str> {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    ARMED.get_or_init(|| std::env::var(VAR).ok()).as_deref()
}

/// Aborts the process here if `point` is the armed one.
pub fn at(point: Point) {
    if armed() == Some(point.name()) {
        eprintln!("auger: {VAR}={}: aborting here", point.name());
        std::process::abort();
    }
}
