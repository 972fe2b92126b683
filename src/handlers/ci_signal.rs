//! A green CI signal: record the builds it made, then let the release loop decide what they
//! call for.

use crate::artifact::intake::Build;
use crate::artifact::{Artifact, RecordOutcome};

use super::{Ctx, Delivery, Handled, recorded};

pub async fn handle(ctx: &Ctx, mut build: Build, delivery: Delivery) -> anyhow::Result<Handled> {
    if build.depends_on_paths(&ctx.policies.current()) {
        keep_changed_apps(ctx, &mut build).await;
        if build.apps.is_empty() {
            tracing::info!(repo = %build.facts.repo, sha = %build.facts.sha, "the commit changes no app's [artifact] paths: no artifact");
            return Ok(Handled::Nothing);
        }
    }
    let mut incoming = build.artifacts();
    if !build.facts.only_on_default_branch() {
        add_pull_requests(ctx, &mut incoming).await;
    }
    let turn = ctx.ledger_turn().await;
    let store = ctx.store.clone();
    let outcomes = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<(Artifact, RecordOutcome)>> {
        let outcomes = store.record_batch(&incoming)?;
        Ok(incoming.into_iter().zip(outcomes).collect())
    })
    .await??;
    drop(turn);
    Ok(recorded(ctx, &outcomes, delivery).await)
}

/// Monorepos (design §16): the apps with `[artifact] paths` keep the build only when the commit
/// changed one of their paths, as GitHub lists the commit's files against its first parent.
/// When that list cannot be read, or GitHub cut it short, the build keeps every app: a needless
/// artifact is better than a change that never deploys.
async fn keep_changed_apps(ctx: &Ctx, build: &mut Build) {
    let (repo, sha) = (&build.facts.repo, &build.facts.sha);
    match ctx.forge.commit_files(repo, sha).await {
        Ok(files) if !files.truncated => build.keep_changed(&ctx.policies.current(), &files.paths),
        Ok(_) => {
            tracing::warn!(%repo, %sha, "GitHub lists only part of the commit's files; every app builds")
        }
        Err(e) => {
            tracing::warn!(error = %e, %repo, %sha, "cannot read the commit's files; every app builds")
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::testbed::Bed;

    #[tokio::test(flavor = "multi_thread")]
    async fn a_build_is_recorded_with_the_pull_requests_that_have_its_commit() {
        let bed = Bed::new(false);
        let (pr, head) = bed.pull_request();
        let build = bed.build(&head);
        assert_eq!(
            handle(&bed.ctx, build, Delivery::First).await.unwrap(),
            Handled::Acted
        );
        let stored = bed
            .ctx
            .store
            .get(&bed.artifact(&head).app, &head)
            .unwrap()
            .unwrap();
        assert_eq!(stored.pull_requests, vec![pr]);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_redelivered_build_changes_nothing() {
        let bed = Bed::new(false);
        let (_, head) = bed.pull_request();
        let build = bed.build(&head);
        handle(&bed.ctx, build.clone(), Delivery::First).await.unwrap();
        let before = bed.ctx.store.get(&bed.artifact(&head).app, &head).unwrap();
        handle(&bed.ctx, build, Delivery::First).await.unwrap();
        assert_eq!(
            bed.ctx.store.get(&bed.artifact(&head).app, &head).unwrap(),
            before
        );
        let metrics = bed.ctx.metrics.render(0, &[]);
        assert!(
            metrics.contains("auger_artifacts_recorded_total{outcome=\"unchanged\"} 1"),
            "{metrics}"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_build_replayed_after_a_crash_before_its_release_is_released() {
        let bed = Bed::new(true);
        let (_, head) = bed.pull_request();
        let mut build = bed.build(&head);
        build.facts.branches = vec![crate::domain::BranchName::new("main").unwrap()];
        // The crash came after the ledger recorded the build, before its release was desired.
        bed.ctx.store.record_batch(&build.artifacts()).unwrap();
        handle(&bed.ctx, build, Delivery::Replayed).await.unwrap();
        assert_eq!(bed.live("staging"), Some(head));
    }
}
