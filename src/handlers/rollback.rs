//! A rollback asked through the API.

use crate::work::RollbackRequest;

use super::{Ctx, Handled};

pub async fn handle(ctx: &Ctx, req: RollbackRequest) -> anyhow::Result<Handled> {
    let r = ctx.releases.require("rollback")?;
    r.rollback(&req.env, &req.app, req.to.as_ref(), &req.by, None)
        .await?;
    Ok(Handled::Acted)
}
