//! Artifacts: the model and the git-backed ledger that stores them.

mod hold;
pub mod intake;
mod model;
mod pack;
mod remote;
mod store;

pub use hold::HoldState;
pub use model::{
    Artifact, ArtifactId, ID_SHA_LEN, MergeError, NoteLineError, RECORD_VERSION, Source, fold_note,
};
pub use store::{ArtifactStore, ListFilter, RecordOutcome, StoreError};
