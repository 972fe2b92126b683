//! A controller's report on the gitops repository (design §15): the release loop decides which
//! releases it moves; this logs what it came to.

use crate::verify::Report;

use super::{Ctx, Handled};

pub async fn handle(ctx: &Ctx, report: Report) -> anyhow::Result<Handled> {
    let revision = report.revision.as_ref().map(|r| r.as_str()).unwrap_or("-");
    let Some(r) = ctx.releases.running() else {
        tracing::info!(
            controller = %report.controller,
            object = %report.object,
            revision,
            health = %report.health,
            "report ignored: no [gitops] is configured"
        );
        return Ok(Handled::Nothing);
    };
    let moved = r.on_report(&report).await?;
    tracing::info!(
        controller = %report.controller,
        object = %report.object,
        kind = report.kind.as_deref().unwrap_or("-"),
        revision,
        health = %report.health,
        reason = %report.reason,
        releases = moved,
        "report handled"
    );
    Ok(Handled::from_bool(moved > 0))
}

#[cfg(test)]
mod tests;
