//! CI signals that turn a commit into an artifact: `status:<context>`, `check_run:<name>`,
//! `workflow_run:<workflow name>`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, de};

/// The kind of GitHub event a signal comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SignalKind {
    /// A commit status (`status` event), named by its context.
    Status,
    /// A check run (`check_run` event), named by the check's name.
    CheckRun,
    /// A workflow run (`workflow_run` event), named by the workflow's name.
    WorkflowRun,
}

impl SignalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SignalKind::Status => "status",
            SignalKind::CheckRun => "check_run",
            SignalKind::WorkflowRun => "workflow_run",
        }
    }
}

impl fmt::Display for SignalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One accepted CI success. Names compare exactly: GitHub shows them as typed, and a loose
/// match could let an unrelated check produce an artifact.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Signal {
    Status(String),
    CheckRun(String),
    WorkflowRun(String),
}

impl Signal {
    pub fn kind(&self) -> SignalKind {
        match self {
            Signal::Status(_) => SignalKind::Status,
            Signal::CheckRun(_) => SignalKind::CheckRun,
            Signal::WorkflowRun(_) => SignalKind::WorkflowRun,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Signal::Status(n) | Signal::CheckRun(n) | Signal::WorkflowRun(n) => n,
        }
    }

    pub fn matches(&self, kind: SignalKind, name: &str) -> bool {
        self.kind() == kind && self.name() == name
    }
}

impl FromStr for Signal {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        const EXPECTED: &str = "expected status:<context>, check_run:<name> or workflow_run:<workflow name>";
        // Split at the first colon only: status contexts may themselves contain colons.
        let Some((kind, name)) = s.split_once(':') else {
            return Err(format!("invalid signal {s:?}: {EXPECTED}"));
        };
        if name.trim().is_empty() {
            return Err(format!("invalid signal {s:?}: the name after {kind:?} is empty"));
        }
        let name = name.to_owned();
        match kind {
            "status" => Ok(Signal::Status(name)),
            "check_run" => Ok(Signal::CheckRun(name)),
            "workflow_run" => Ok(Signal::WorkflowRun(name)),
            other => Err(format!(
                "invalid signal {s:?}: unknown kind {other:?}; {EXPECTED}"
            )),
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind(), self.name())
    }
}

impl<'de> Deserialize<'de> for Signal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_from_kind_and_name() {
        assert_eq!(
            "status:ci/build".parse::<Signal>(),
            Ok(Signal::Status("ci/build".into()))
        );
        assert_eq!(
            "check_run:build".parse::<Signal>(),
            Ok(Signal::CheckRun("build".into()))
        );
        assert_eq!(
            "workflow_run:CI".parse::<Signal>(),
            Ok(Signal::WorkflowRun("CI".into()))
        );
        // Only the first colon separates the kind.
        let s: Signal = "status:ci/circleci: build".parse().unwrap();
        assert_eq!(s.name(), "ci/circleci: build");
        assert_eq!(s.to_string(), "status:ci/circleci: build");
    }

    #[test]
    fn malformed_signals_say_what_is_expected() {
        let e = "build".parse::<Signal>().unwrap_err();
        assert!(e.contains("expected status:<context>"), "{e}");
        let e = "check:build".parse::<Signal>().unwrap_err();
        assert!(e.contains("unknown kind \"check\""), "{e}");
        let e = "status: ".parse::<Signal>().unwrap_err();
        assert!(e.contains("is empty"), "{e}");
    }

    #[test]
    fn matching_needs_both_kind_and_exact_name() {
        let s = Signal::CheckRun("build".into());
        assert!(s.matches(SignalKind::CheckRun, "build"));
        assert!(!s.matches(SignalKind::Status, "build"));
        assert!(!s.matches(SignalKind::CheckRun, "Build"));
    }
}
