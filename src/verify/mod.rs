//! What the cluster's controllers say about the gitops repository (design §15), read into one
//! typed [`Report`] whichever way it came: Flux notification-controller's events ([`flux`]),
//! the body our Argo CD Notifications template renders ([`argocd`]), or a commit status.
//!
//! Pure: no I/O. The HTTP edge authenticates and then parses here; what a report does to a
//! release is the release loop's business.

pub mod argocd;
pub mod current;
pub mod flux;
pub mod state;

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Which controller a report came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Controller {
    Flux,
    #[serde(rename = "argocd")]
    ArgoCd,
    /// A commit status (or check run) on the gitops commit, from Flux's `github` provider or
    /// Argo CD's `github` service.
    Status,
}

impl Controller {
    pub fn as_str(self) -> &'static str {
        match self {
            Controller::Flux => "flux",
            Controller::ArgoCd => "argocd",
            Controller::Status => "status",
        }
    }
}

impl fmt::Display for Controller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a report says about the workload at its revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Applied, or being applied, and not (yet) known healthy.
    Progressing,
    /// Applied and healthy.
    Healthy,
    /// Applying or becoming healthy failed.
    Failed,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Progressing => "progressing",
            Health::Healthy => "healthy",
            Health::Failed => "failed",
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One controller's report about one object, in the terms auger acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub controller: Controller,
    /// Flux `involvedObject.name`; the Argo CD Application's name; the status context.
    pub object: String,
    /// Flux `involvedObject.kind` (`Kustomization`, `HelmRelease`).
    pub kind: Option<String>,
    pub namespace: Option<String>,
    /// The gitops commit the report is about, when it names one.
    pub revision: Option<Revision>,
    pub health: Health,
    /// Flux's `reason`; for Argo CD `<sync>/<health>/<phase>`.
    pub reason: String,
    pub message: String,
    pub at: Option<DateTime<Utc>>,
    /// The gitops repository the report is about, when it says (a status or check run is on
    /// one repository's commit); only envs releasing to that repository hear it. Flux and
    /// Argo CD reports name none: their revision is looked for in each listening env's own
    /// repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<crate::domain::RepoName>,
}

/// A git commit named by a report: lowercase hex, 7 to 40 digits (full or abbreviated).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Revision(String);

/// The shortest abbreviation accepted (git's default).
const MIN_HEX: usize = 7;
const MAX_HEX: usize = 40;

impl Revision {
    /// The git commit in any revision format Flux or Argo CD put in reports, or `None` when
    /// the value names no git commit:
    /// - Flux since v2.0: `<ref>@sha1:<sha>` (`main@sha1:…`, `refs/heads/main@sha1:…`,
    ///   `v1.0@sha1:…`) or `sha1:<sha>`; another algorithm (`latest@sha256:…`, an OCI digest)
    ///   is not a git commit;
    /// - Flux before v2.0: `<ref>/<sha>` (`main/…`, `feature/x/…`);
    /// - a bare sha (Argo CD's `sync.revision`);
    /// - a Helm chart version whose build metadata is the source revision (`1.2.3+<sha>`, a
    ///   HelmChart with `reconcileStrategy: Revision`); a plain chart version gives `None`.
    pub fn parse(text: &str) -> Option<Revision> {
        let text = text.trim();
        // `<ref>@<algo>:<digest>`: the digest never holds an `@`, a ref may.
        let tail = text.rsplit_once('@').map_or(text, |(_, tail)| tail);
        if let Some((algo, digest)) = tail.split_once(':') {
            return if algo == "sha1" { Self::hex(digest) } else { None };
        }
        if text.contains('@') {
            return None;
        }
        // A ref may hold a `+`, a chart version never holds a `/`.
        if let Some((reference, sha)) = text.rsplit_once('/') {
            return if reference.is_empty() {
                None
            } else {
                Self::hex(sha)
            };
        }
        match text.split_once('+') {
            Some((version, build)) if !version.is_empty() => Self::hex(build),
            Some(_) => None,
            None => Self::hex(text),
        }
    }

    /// `text` itself as a revision: 7 to 40 hex digits (upper case is lowered).
    pub fn hex(text: &str) -> Option<Revision> {
        let ok = (MIN_HEX..=MAX_HEX).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_hexdigit());
        ok.then(|| Revision(text.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is a full 40-digit sha rather than an abbreviation.
    pub fn is_full(&self) -> bool {
        self.0.len() == MAX_HEX
    }

    /// Whether this revision names the commit `sha` (a full or abbreviated sha, any case):
    /// one is a prefix of the other.
    pub fn names(&self, sha: &str) -> bool {
        let sha = sha.to_ascii_lowercase();
        sha.starts_with(&self.0) || (sha.len() >= MIN_HEX && self.0.starts_with(&sha))
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Revision {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Revision::hex(&s).ok_or_else(|| format!("{s:?} is not a git commit (7 to 40 hex digits)"))
    }
}

impl From<Revision> for String {
    fn from(r: Revision) -> String {
        r.0
    }
}

/// Why a report body was refused (400). The message names the source and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("{what}: malformed JSON: {message}")]
    Json { what: &'static str, message: String },
    #[error("{what}: missing {field}")]
    Missing { what: &'static str, field: &'static str },
    #[error("{what}: {field}: {message}")]
    Invalid {
        what: &'static str,
        field: String,
        message: String,
    },
}

/// Deserializes `body` as `T`, naming the field of a type error (`involvedObject.name: invalid
/// type: integer …`).
fn from_json<'de, T: Deserialize<'de>>(source: &'static str, body: &'de [u8]) -> Result<T, ReportError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_data() && field != "." {
            ReportError::Invalid {
                what: source,
                field,
                message: inner.to_string(),
            }
        } else {
            ReportError::Json {
                what: source,
                message: inner.to_string(),
            }
        }
    })?;
    de.end().map_err(|e| ReportError::Json {
        what: source,
        message: e.to_string(),
    })?;
    Ok(value)
}

/// An RFC 3339 time, or `None` for an empty one; anything else names the field.
fn timestamp(
    source: &'static str,
    field: &str,
    text: Option<&str>,
) -> Result<Option<DateTime<Utc>>, ReportError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => DateTime::parse_from_rfc3339(t)
            .map(|d| Some(d.with_timezone(&Utc)))
            .map_err(|e| ReportError::Invalid {
                what: source,
                field: field.to_owned(),
                message: format!("{t:?} is not an RFC 3339 time: {e}"),
            }),
    }
}

/// A required string that must not be blank.
fn required(source: &'static str, field: &'static str, value: Option<String>) -> Result<String, ReportError> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(ReportError::Missing { what: source, field }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "731f7eaddfb6af01cb2173e18f0f75b0ba780ef1";

    fn rev(text: &str) -> Option<String> {
        Revision::parse(text).map(String::from)
    }

    #[test]
    fn flux_current_revisions_parse() {
        for text in [
            format!("main@sha1:{SHA}"),
            format!("refs/heads/main@sha1:{SHA}"),
            format!("v1.0@sha1:{SHA}"),
            format!("refs/tags/v1.0@sha1:{SHA}"),
            format!("sha1:{SHA}"),
            format!("  main@sha1:{SHA}\n"),
        ] {
            assert_eq!(rev(&text).as_deref(), Some(SHA), "{text}");
        }
    }

    #[test]
    fn flux_older_revisions_parse() {
        assert_eq!(rev(&format!("main/{SHA}")).as_deref(), Some(SHA));
        assert_eq!(rev(&format!("feature/x/{SHA}")).as_deref(), Some(SHA));
        assert_eq!(rev(&format!("release+1/{SHA}")).as_deref(), Some(SHA));
        assert_eq!(rev(&format!("/{SHA}")), None, "a ref is needed before the slash");
    }

    #[test]
    fn bare_shas_parse_full_or_abbreviated() {
        assert_eq!(rev(SHA).as_deref(), Some(SHA));
        assert_eq!(rev(&SHA[..7]).as_deref(), Some(&SHA[..7]));
        assert_eq!(
            rev(&SHA.to_uppercase()).as_deref(),
            Some(SHA),
            "upper case is lowered"
        );
        assert_eq!(rev(&SHA[..6]), None, "too short");
        assert_eq!(rev(&format!("{SHA}0")), None, "too long");
    }

    #[test]
    fn helm_chart_versions_carry_the_source_revision_only_in_build_metadata() {
        assert_eq!(rev(&format!("0.1.0+{}", &SHA[..12])).as_deref(), Some(&SHA[..12]));
        assert_eq!(rev(&format!("1.2.3+{SHA}")).as_deref(), Some(SHA));
        assert_eq!(rev("1.2.3"), None);
        assert_eq!(rev("1.2.3-rc.1"), None);
        assert_eq!(rev("1.2.3+build.7"), None);
        assert_eq!(rev(&format!("+{SHA}")), None);
    }

    #[test]
    fn oci_digests_and_other_text_are_refused() {
        let digest = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
        for text in [
            digest.to_owned(),
            format!("latest@{digest}"),
            format!("main@sha256:{SHA}"),
            format!("main@sha1:{}", &SHA[..6]),
            format!("main@sha1:{}z", &SHA[..39]),
            format!("main@{SHA}"),
            "main".to_owned(),
            String::new(),
            "   ".to_owned(),
            "HEAD".to_owned(),
            format!("{} ", &SHA[..20]) + &SHA[20..],
        ] {
            assert_eq!(rev(&text), None, "{text:?}");
        }
    }

    #[test]
    fn a_revision_names_its_commit_by_prefix_either_way() {
        let short = Revision::hex(&SHA[..7]).unwrap();
        let full = Revision::hex(SHA).unwrap();
        assert!(short.names(SHA) && full.names(SHA) && full.names(&SHA[..7]));
        assert!(full.names(&SHA.to_uppercase()));
        assert!(!full.names(&SHA[..6]), "too short to name anything");
        assert!(!short.names("0000000000000000000000000000000000000000"));
        assert!(full.is_full() && !short.is_full());
    }

    #[test]
    fn a_revision_is_validated_when_read_back() {
        let r: Revision = serde_json::from_str(&format!("\"{SHA}\"")).unwrap();
        assert_eq!(r.as_str(), SHA);
        assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{SHA}\""));
        assert!(serde_json::from_str::<Revision>("\"main\"").is_err());
    }

    #[test]
    fn controllers_and_health_spell_their_names() {
        assert_eq!(Controller::ArgoCd.to_string(), "argocd");
        assert_eq!(serde_json::to_string(&Controller::ArgoCd).unwrap(), "\"argocd\"");
        assert_eq!(Controller::Flux.as_str(), "flux");
        assert_eq!(Controller::Status.as_str(), "status");
        assert_eq!(Health::Healthy.to_string(), "healthy");
    }
}
