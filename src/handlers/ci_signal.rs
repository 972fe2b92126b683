//! A green CI signal: record the builds it made, then let the release loop decide what they
//! call for.

use crate::artifact::{Artifact, RecordOutcome};
use crate::work::Build;

use super::{Ctx, Handled};

pub async fn handle(ctx: &Ctx, mut build: Build) -> anyhow::Result<Handled> {
    add_pull_requests(ctx, &mut build.artifacts).await;
    let store = ctx.store.clone();
    let incoming = build.artifacts;
    let recorded = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<(Artifact, RecordOutcome)>> {
        let outcomes = store.record_batch(&incoming)?;
        Ok(incoming.into_iter().zip(outcomes).collect())
    })
    .await??;
    count(ctx, &recorded);
    if let Some(r) = ctx.releases.running() {
        r.on_recorded(&recorded).await;
    }
    Ok(Handled::from_bool(!recorded.is_empty()))
}

/// Logs and counts what the ledger made of each record (shared with the tag handler).
pub(super) fn count(ctx: &Ctx, recorded: &[(Artifact, RecordOutcome)]) {
    for (_, outcome) in recorded {
        let word = match outcome {
            RecordOutcome::Created(a) => {
                tracing::info!(artifact = %a.id, "artifact recorded");
                "created"
            }
            RecordOutcome::Updated(a) => {
                tracing::info!(artifact = %a.id, "artifact updated");
                "updated"
            }
            RecordOutcome::Unchanged(_) => "unchanged",
        };
        ctx.metrics.artifact(word);
    }
}

/// A commit status names no pull request; ask GitHub which open PRs have this commit, so
/// `/deploy` from a PR finds its artifact. A GitHub outage (or no GitHub at all) costs only
/// this fact.
async fn add_pull_requests(ctx: &Ctx, artifacts: &mut [Artifact]) {
    if !ctx.forge.configured() {
        return;
    }
    for a in artifacts.iter_mut().filter(|a| a.pull_requests.is_empty()) {
        match ctx.forge.pulls_for_commit(&a.repo, &a.sha).await {
            Ok(prs) => a.pull_requests = prs,
            Err(e) => {
                tracing::warn!(error = %e, artifact = %a.id, "could not ask GitHub for the commit's pull requests")
            }
        }
    }
}
