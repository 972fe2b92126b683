//! Rejects (design §17): a veto on one artifact, kept in its ledger record. A rejected
//! artifact never deploys automatically (its automatic release is dropped when the loop comes
//! to it); `/deploy <env> <sha> --force` by the env's deployers still releases it.

use super::steps::blocking;
use super::{Releaser, Result};
use crate::artifact::{ArtifactId, RecordOutcome, Rejection};

impl Releaser {
    /// Records that `id` is rejected. `None`: the ledger has no such artifact; an artifact
    /// already rejected keeps its first rejection ([`RecordOutcome::Unchanged`]).
    pub async fn reject(&self, id: &ArtifactId, by: &str, reason: &str) -> Result<Option<RecordOutcome>> {
        let store = self.store.clone();
        let rejection = Rejection {
            by: by.to_owned(),
            reason: reason.to_owned(),
            time: self.clock.now(),
        };
        let id = id.clone();
        let outcome = blocking(move || store.reject(&id, &rejection)).await?;
        if matches!(outcome, Some(RecordOutcome::Updated(_))) {
            // An automatic release of it waiting for a gate or a freeze is dropped now.
            self.tick().await;
        }
        Ok(outcome)
    }
}
