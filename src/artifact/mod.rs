//! Artifacts: the ledger engine (`auger-ledger`) and the bot's policy-dependent intake, which
//! turns a CI signal into artifacts.

pub mod intake;

pub use auger_ledger::{
    Artifact, ArtifactId, ArtifactStore, HoldState, ID_SHA_LEN, ListFilter, MergeError, NoteLineError,
    RECORD_VERSION, RecordOutcome, Source, StoreError, SyncReport, fold_note,
};
