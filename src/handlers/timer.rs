//! The release loop's clock: plans held by `after` gates are re-checked on a timer, and open
//! release pull requests once at start (approvals may have come while auger was down).

use std::time::Duration;

use super::Ctx;

/// How often plans held by `after` gates are re-checked.
pub const RECHECK_EVERY: Duration = Duration::from_secs(10);

/// Runs until the task is dropped; does nothing without a release loop.
pub async fn run(ctx: &Ctx) {
    let Some(r) = ctx.releases.running() else {
        return;
    };
    r.recheck_open_pulls().await;
    let mut every = tokio::time::interval(RECHECK_EVERY);
    loop {
        every.tick().await;
        r.tick().await;
    }
}
