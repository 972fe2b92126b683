//! Artifacts: the ledger engine (`auger-ledger`) and the bot's policy-dependent intake, which
//! turns a CI signal into artifacts.

pub mod intake;

pub use auger_ledger::{
    Artifact, ArtifactId, ArtifactStore, Change, FreezeState, HoldState, ID_SHA_LEN, ListFilter, MergeError,
    NoteLineError, RECORD_VERSION, RecordOutcome, Rejection, Source, StateKind, StoreError, SyncReport,
    fold_note,
};

use std::collections::BTreeMap;

use crate::policy::VarName;

/// At most this many `vars` per artifact: every write stores a snapshot of the record in the
/// ledger, so a record's size bounds what each write costs for good.
pub const MAX_VARS: usize = 64;
/// The longest `vars` key, in bytes (a template names it, so it is short).
pub const MAX_VAR_KEY_BYTES: usize = 64;
/// The longest `vars` value, in bytes (an image reference with a digest is ~150).
pub const MAX_VAR_VALUE_BYTES: usize = 1024;

/// Why an artifact's `vars` cannot be recorded, if they cannot: a key templates could not name
/// (the rule of policies' `[vars]`), too many keys, or a key or value too long. The same rule
/// for the API and the CLI.
pub fn check_vars(vars: &BTreeMap<String, String>) -> Result<(), VarsError> {
    if vars.len() > MAX_VARS {
        return Err(VarsError::TooMany(vars.len()));
    }
    for (k, v) in vars {
        if k.len() > MAX_VAR_KEY_BYTES {
            return Err(VarsError::KeyTooLong(k.chars().take(32).collect()));
        }
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
    /// The key's first 32 characters.
    #[error("vars: key `{0}…` is longer than {MAX_VAR_KEY_BYTES} bytes")]
    KeyTooLong(String),
    #[error("vars.{0}: the value is longer than {MAX_VAR_VALUE_BYTES} bytes")]
    TooLong(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(String, String)]) -> BTreeMap<String, String> {
        pairs.iter().cloned().collect()
    }

    #[test]
    fn a_key_over_64_bytes_is_refused_naming_its_start() {
        let key = "k".repeat(65);
        let err = check_vars(&vars(&[(key, "v".into())])).unwrap_err();
        assert_eq!(err, VarsError::KeyTooLong("k".repeat(32)));
    }

    #[test]
    fn keys_and_values_at_their_limits_are_accepted() {
        let at_limit = vars(&[("k".repeat(64), "v".repeat(MAX_VAR_VALUE_BYTES))]);
        assert_eq!(check_vars(&at_limit), Ok(()));
    }
}
