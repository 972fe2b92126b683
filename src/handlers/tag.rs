//! A tag pushed: add it to the artifacts its commit already has. A tag names a build that
//! exists; it never makes one.

use crate::artifact::{Artifact, RecordOutcome};
use crate::work::Tagged;

use super::{Ctx, Handled};

pub async fn handle(ctx: &Ctx, tagged: Tagged) -> anyhow::Result<Handled> {
    let store = ctx.store.clone();
    let recorded = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<(Artifact, RecordOutcome)>> {
        let mut recorded = Vec::new();
        for fact in tagged.tags {
            let Some(mut a) = store.get(&fact.app, &fact.sha)? else {
                continue;
            };
            a.tags.push(fact.tag.clone());
            let outcome = store.record(&a)?;
            // The facts this event brought, which the auto rules look at.
            let mut incoming = Artifact::new(a.app.clone(), a.repo.clone(), a.sha.clone(), a.source.clone());
            incoming.tags = vec![fact.tag];
            recorded.push((incoming, outcome));
        }
        Ok(recorded)
    })
    .await??;
    super::ci_signal::count(ctx, &recorded);
    if let Some(r) = ctx.releases.running() {
        r.on_recorded(&recorded).await;
    }
    Ok(Handled::from_bool(!recorded.is_empty()))
}
