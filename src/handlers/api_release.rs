//! An ad hoc release asked through the API or `auger release make --server`.

use crate::release::Plan;
use crate::work::ReleaseRequest;

use super::{Ctx, Handled};

pub async fn handle(ctx: &Ctx, req: ReleaseRequest) -> anyhow::Result<Handled> {
    let r = ctx
        .releases
        .require(format_args!("release of {} to {}", req.artifact, req.env))?;
    let reason = format!("asked by {}", req.trigger);
    r.release(Plan {
        env: req.env,
        app: req.app,
        artifact: req.artifact,
        trigger: req.trigger,
        reason,
        reply: None,
    })
    .await?;
    Ok(Handled::Acted)
}
