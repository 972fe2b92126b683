//! What a policy check reports: one [`Diagnostic`] per problem, and [`PolicyErrors`] when the
//! folder is not usable. Shared by the loader and the set, so neither imports the other for it.

use std::fmt;
use std::path::{Path, PathBuf};

/// One error or warning: which file, which dotted key (empty for the file as a whole), what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub key: String,
    pub message: String,
}

impl Diagnostic {
    pub(crate) fn new(file: &Path, key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}: {}: {}", self.file.display(), self.key, self.message)
        }
    }
}

impl std::error::Error for Diagnostic {}

/// The folder is not usable: at least one error. Warnings found on the way come along so a
/// report can show everything in one run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid policies:\n{}", lines(.errors))]
pub struct PolicyErrors {
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
    /// How many policy files were looked at.
    pub files: usize,
}

fn lines(d: &[Diagnostic]) -> String {
    d.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}
