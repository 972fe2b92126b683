//! Artifacts: the ledger engine (`auger-ledger`) and the bot's policy-dependent intake, which
//! turns a CI signal into artifacts.

pub mod intake;

pub use auger_ledger::{
    Artifact, ArtifactId, ArtifactStore, HoldState, ID_SHA_LEN, ListFilter, MergeError, NoteLineError,
    RECORD_VERSION, RecordOutcome, Source, StoreError, SyncReport, fold_note,
};

use std::collections::BTreeMap;

use crate::policy::VarName;

/// At most this many `vars` per artifact: every write stores a snapshot of the record in the
/// ledger, so a record's size bounds what each write costs for good.
pub const MAX_VARS: usize = 64;
/// The longest `vars` value, in bytes (an image reference with a digest is ~150).
pub const MAX_VAR_VALUE_BYTES: usize = 1024;

/// Why an artifact's `vars` cannot be recorded, if they cannot: a key templates could not name
/// (the rule of policies' `[vars]`, which also bounds its length), too many keys, or a value
/// too long. The same rule for the API and the CLI.
pub fn check_vars(vars: &BTreeMap<String, String>) -> Result<(), VarsError> {
    if vars.len() > MAX_VARS {
        return Err(VarsError::TooMany(vars.len()));
    }
    for (k, v) in vars {
        VarName::new(k.as_str()).map_err(|e| VarsError::Name(e.to_string()))?;
        if v.len() > MAX_VAR_VALUE_BYTES {
            return Err(VarsError::TooLong(k.clone()));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VarsError {
    #[error("vars: {0}")]
    Name(String),
    #[error("vars: {0} keys, at most {MAX_VARS} are allowed")]
    TooMany(usize),
    #[error("vars.{0}: the value is longer than {MAX_VAR_VALUE_BYTES} bytes")]
    TooLong(String),
}
