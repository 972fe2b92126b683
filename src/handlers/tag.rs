//! A tag pushed: add it to the artifacts its commit already has. A tag names a build that
//! exists; it never makes one.

use crate::artifact::{Artifact, RecordOutcome};
use crate::work::Tagged;

use super::{Ctx, Delivery, Handled, recorded};

pub async fn handle(ctx: &Ctx, tagged: Tagged, delivery: Delivery) -> anyhow::Result<Handled> {
    let turn = ctx.ledger_turn().await;
    let store = ctx.store.clone();
    let outcomes = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<(Artifact, RecordOutcome)>> {
        let mut outcomes = Vec::new();
        for fact in tagged.tags {
            let Some(mut a) = store.get(&fact.app, &fact.sha)? else {
                continue;
            };
            a.tags.push(fact.tag.clone());
            let outcome = store.record(&a)?;
            // The facts this event brought, which the auto rules look at.
            let mut incoming = Artifact::new(a.app.clone(), a.repo.clone(), a.sha.clone(), a.source.clone());
            incoming.tags = vec![fact.tag];
            outcomes.push((incoming, outcome));
        }
        Ok(outcomes)
    })
    .await??;
    drop(turn);
    Ok(recorded(ctx, &outcomes, delivery).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TagName;
    use crate::handlers::testbed::Bed;
    use crate::work::TagFact;

    fn tagged(bed: &Bed, sha: &crate::domain::CommitSha) -> Tagged {
        let a = bed.artifact(sha);
        Tagged {
            tags: vec![TagFact {
                app: a.app,
                repo: a.repo,
                sha: sha.clone(),
                tag: TagName::new("v1.0.0").unwrap(),
            }],
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_tag_on_a_commit_without_an_artifact_makes_none() {
        let bed = Bed::new(false);
        let (_, head) = bed.pull_request();
        assert_eq!(
            handle(&bed.ctx, tagged(&bed, &head), Delivery::First)
                .await
                .unwrap(),
            Handled::Nothing
        );
        assert_eq!(bed.ctx.store.get(&bed.artifact(&head).app, &head).unwrap(), None);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_tag_on_a_built_commit_is_added_to_its_artifact() {
        let bed = Bed::new(false);
        let (_, head) = bed.pull_request();
        bed.ctx.store.record(&bed.artifact(&head)).unwrap();
        assert_eq!(
            handle(&bed.ctx, tagged(&bed, &head), Delivery::First)
                .await
                .unwrap(),
            Handled::Acted
        );
        let a = bed
            .ctx
            .store
            .get(&bed.artifact(&head).app, &head)
            .unwrap()
            .unwrap();
        assert_eq!(a.tags, vec![TagName::new("v1.0.0").unwrap()]);
    }
}
