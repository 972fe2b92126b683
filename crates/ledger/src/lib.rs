//! The artifact ledger: artifacts (what CI built from which commit, and what is released
//! where) kept in a bare git repository that plain `git` can read, with optional replication
//! through a git remote. See README.md for the guarantees and the layout.
//!
//! Modules depend one way: `hold` (release holds) builds on `envstate` (small per-(env, app)
//! states under `refs/auger/<kind>/`), which extends `store` (the public
//! [`ArtifactStore`]), which builds on `remote` (sync through a git remote) and `pack` (large
//! batches as one pack); `store`, `hold` and `remote` build on `git` (the repository handle,
//! the error type, ref transactions and object helpers), which builds on `model`.

mod envstate;
mod freeze;
mod git;
mod hold;
mod model;
mod pack;
mod remote;
mod store;

pub use envstate::{Change, StateKind};
pub use freeze::FreezeState;
pub use git::{Result, StoreError};
pub use hold::HoldState;
pub use model::{
    Artifact, ArtifactId, ID_SHA_LEN, MergeError, NoteLineError, NoteLineProblem, RECORD_VERSION, Rejection,
    Source, fold_note,
};
pub use remote::SyncReport;
pub use store::{ArtifactStore, ListFilter, RecordOutcome};
