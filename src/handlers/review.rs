//! Release pull requests of the gitops repositories: a review may complete the approvals a
//! release waits for; a merge by a person completes the release.

use crate::work::ReleasePull;

use super::{Ctx, Handled};

pub async fn reviewed(ctx: &Ctx, p: ReleasePull) -> anyhow::Result<Handled> {
    let Some(r) = ctx.releases.running() else {
        return Ok(Handled::Nothing);
    };
    Ok(Handled::from_bool(
        r.on_review(p.repo.as_ref(), p.number).await?.is_some(),
    ))
}

/// A check settled on the gitops repository: releases waiting for required checks try again.
pub async fn checked(ctx: &Ctx) -> anyhow::Result<Handled> {
    let Some(r) = ctx.releases.running() else {
        return Ok(Handled::Nothing);
    };
    Ok(Handled::from_bool(!r.on_gitops_checked().await.is_empty()))
}

pub async fn closed(ctx: &Ctx, p: ReleasePull) -> anyhow::Result<Handled> {
    let Some(r) = ctx.releases.running() else {
        return Ok(Handled::Nothing);
    };
    Ok(Handled::from_bool(
        r.on_pull_closed(p.repo.as_ref(), p.number).await?.is_some(),
    ))
}
