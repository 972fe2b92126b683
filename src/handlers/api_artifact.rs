//! An artifact recorded through the API (the HTTP handler already wrote it to the ledger):
//! decide the automatic releases it calls for.

use crate::artifact::RecordOutcome;
use crate::work::ArtifactRecorded;

use super::{Ctx, Handled};

pub async fn handle(ctx: &Ctx, rec: ArtifactRecorded) -> anyhow::Result<Handled> {
    let Some(r) = ctx.releases.running() else {
        return Ok(Handled::Nothing);
    };
    let store = ctx.store.clone();
    let (app, sha) = (rec.incoming.app.clone(), rec.incoming.sha.clone());
    let Some(merged) = tokio::task::spawn_blocking(move || store.get(&app, &sha)).await?? else {
        return Ok(Handled::Nothing);
    };
    let done = r
        .on_recorded(&[(rec.incoming, RecordOutcome::Updated(merged))], false)
        .await;
    Ok(Handled::from_bool(!done.is_empty()))
}
