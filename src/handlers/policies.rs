//! A push to the config repository's policy branch (design §17): load the whole set at the
//! branch's tip, put it in force only if it is valid, and say so on the config commit with the
//! `auger/policies` status.

use crate::forge::{CommitState, StatusUpdate};
use crate::reload::{self, Refused};
use crate::work::PoliciesPushed;

use super::{Ctx, Handled};

/// The commit status auger sets on config commits.
pub const STATUS_CONTEXT: &str = "auger/policies";

pub async fn pushed(ctx: &Ctx, pushed: PoliciesPushed) -> anyhow::Result<Handled> {
    let Some(source) = ctx.policy_source.clone() else {
        return Ok(Handled::Nothing);
    };
    // The tip is read, not the pushed commit: deliveries can arrive out of order, and an older
    // push must not bring older policies back.
    let done = reload::reload_now(
        source,
        ctx.policies.clone(),
        ctx.forge.as_ref(),
        &ctx.metrics,
        "push",
    )
    .await;
    let state = match &done.outcome {
        Ok(_) => CommitState::Success,
        Err(Refused::Invalid { .. }) => CommitState::Failure,
        Err(Refused::Unreadable(_)) => CommitState::Error,
    };
    let status = StatusUpdate {
        state,
        context: STATUS_CONTEXT.into(),
        description: Some(reload::status_description(
            &done.outcome,
            ctx.policies.current().len(),
        )),
        target_url: None,
    };
    let commit = done.commit.unwrap_or(pushed.sha);
    ctx.forge
        .set_status(&pushed.repo, &commit, &status)
        .await
        .map_err(|e| anyhow::anyhow!("cannot set {STATUS_CONTEXT} on {}@{commit}: {e}", pushed.repo))?;
    Ok(Handled::Acted)
}
