//! What a release commit says about itself: the `release.json` record written next to the
//! rendered files, the trigger, and the commit-message trailers (design §7).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::artifact::{Artifact, ArtifactId};
use crate::domain::{AppName, CommitSha, EnvName, RepoName};

/// The file auger writes into every `<env>/<app>/` folder. Templates may not produce it.
pub const RELEASE_FILE: &str = "release.json";

/// Version of the `release.json` layout this build writes.
pub const RELEASE_RECORD_VERSION: u32 = 1;

pub const TRAILER_APP: &str = "Auger-App";
pub const TRAILER_ENV: &str = "Auger-Env";
pub const TRAILER_ARTIFACT: &str = "Auger-Artifact";
pub const TRAILER_SOURCE: &str = "Auger-Source";
pub const TRAILER_TRIGGER: &str = "Auger-Trigger";
pub const TRAILER_ROLLBACK_TO: &str = "Auger-Rollback-To";
/// A rule the release went through by someone's right (design §17): `freeze @alice`.
pub const TRAILER_OVERRIDE: &str = "Auger-Override";
/// Marks a commit that removed `<env>/<app>/` (preview cleanup) instead of releasing.
pub const TRAILER_ACTION: &str = "Auger-Action";

/// Who or what asked for a release, as the `Auger-Trigger` trailer spells it:
/// `policy`, `command @login`, `api <token name>`, `rollback @login`. Anything else a newer
/// auger (or a human) wrote is kept verbatim in [`Trigger::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// An automatic deploy rule of the policy.
    Policy,
    /// A `/deploy` comment by this GitHub login.
    Command(String),
    /// The REST API, with the name of the token used.
    Api(String),
    /// A rollback asked for by this login.
    Rollback(String),
    /// A rollback after a failed verification, by this controller (`flux`, `argocd`,
    /// `status`).
    Verify(String),
    Other(String),
}

impl Trigger {
    /// A rollback, asked for by a person or done after a failed verification.
    pub fn is_rollback(&self) -> bool {
        matches!(self, Trigger::Rollback(_) | Trigger::Verify(_))
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::Policy => f.write_str("policy"),
            Trigger::Command(login) => write!(f, "command @{login}"),
            Trigger::Api(token) => write!(f, "api {token}"),
            Trigger::Rollback(login) => write!(f, "rollback @{login}"),
            Trigger::Verify(by) => write!(f, "verify {by}"),
            Trigger::Other(s) => f.write_str(s),
        }
    }
}

impl FromStr for Trigger {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Ok(if s == "policy" {
            Trigger::Policy
        } else if let Some(login) = s.strip_prefix("command @") {
            Trigger::Command(login.to_owned())
        } else if let Some(login) = s.strip_prefix("rollback @") {
            Trigger::Rollback(login.to_owned())
        } else if let Some(by) = s.strip_prefix("verify ") {
            Trigger::Verify(by.to_owned())
        } else if let Some(token) = s.strip_prefix("api ") {
            Trigger::Api(token.to_owned())
        } else {
            Trigger::Other(s.to_owned())
        })
    }
}

impl Serialize for Trigger {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Trigger {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(s.parse().unwrap_or(Trigger::Other(s)))
    }
}

/// `<owner/repo>@<sha>`: the source commit an artifact was built from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SourceRef {
    pub repo: RepoName,
    pub sha: CommitSha,
}

impl fmt::Display for SourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.repo, self.sha)
    }
}

impl FromStr for SourceRef {
    type Err = crate::domain::NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Repository names cannot contain '@', so the last one separates the sha.
        let (repo, sha) = s.trim().rsplit_once('@').unwrap_or((s, ""));
        Ok(Self {
            repo: RepoName::new(repo)?,
            sha: CommitSha::new(sha)?,
        })
    }
}

impl Serialize for SourceRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SourceRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// `<env>/<app>/release.json`: the release record. Unknown fields survive a read-modify-write
/// through `extra`, as for artifact records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseInfo {
    pub v: u32,
    pub env: EnvName,
    /// The folder name: the app, or a preview instance `<app>-pr-<n>`.
    pub app: AppName,
    pub artifact: ArtifactId,
    pub source: SourceRef,
    pub trigger: Trigger,
    /// When auger made the release commit (not when it was merged).
    pub time: DateTime<Utc>,
    /// Logins whose approving reviews let the release through (filled in by the merge step;
    /// empty for direct and auto merges).
    #[serde(default)]
    pub approvals: Vec<String>,
    /// The artifact this release rolled back to, for rollbacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_to: Option<ArtifactId>,
    /// Rules overridden for this release (`freeze @alice`), one `Auger-Override` each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<String>,
    /// The artifact record as it was at release time (branches, tags, vars…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<Artifact>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl ReleaseInfo {
    /// A record for releasing `artifact` as `app` (the app itself or a preview instance) in
    /// `env`, now.
    pub fn new(env: EnvName, app: AppName, artifact: &Artifact, trigger: Trigger) -> Self {
        Self {
            v: RELEASE_RECORD_VERSION,
            env,
            app,
            artifact: artifact.id.clone(),
            source: SourceRef {
                repo: artifact.repo.clone(),
                sha: artifact.sha.clone(),
            },
            trigger,
            time: Utc::now(),
            approvals: Vec::new(),
            rollback_to: None,
            overrides: Vec::new(),
            record: Some(artifact.clone()),
            extra: serde_json::Map::new(),
        }
    }

    /// Pretty JSON with a final newline, as stored.
    pub fn to_file_bytes(&self) -> Vec<u8> {
        // Plain data with string keys: serializing cannot fail.
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text.into_bytes()
    }

    /// The design §7 trailers this release's commit carries, in a fixed order.
    pub fn trailers(&self) -> Vec<Trailer> {
        let mut t = vec![
            Trailer::raw(TRAILER_APP, self.app.as_str()),
            Trailer::raw(TRAILER_ENV, self.env.as_str()),
            Trailer::raw(TRAILER_ARTIFACT, &self.artifact.to_string()),
            Trailer::raw(TRAILER_SOURCE, &self.source.to_string()),
            Trailer::raw(TRAILER_TRIGGER, &self.trigger.to_string()),
        ];
        if let Some(to) = &self.rollback_to {
            t.push(Trailer::raw(TRAILER_ROLLBACK_TO, &to.to_string()));
        }
        for o in &self.overrides {
            t.push(Trailer::raw(TRAILER_OVERRIDE, o));
        }
        t
    }
}

/// A `Key: value` line at the end of a commit message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trailer {
    key: String,
    value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid trailer {key:?}: {reason}")]
pub struct TrailerError {
    pub key: String,
    pub reason: &'static str,
}

impl Trailer {
    /// A trailer `git interpret-trailers` will read back: the key is letters, digits and
    /// `-`; the value is one line of printable text (a newline would end the trailer block or
    /// start a continuation).
    pub fn new(key: &str, value: &str) -> Result<Self, TrailerError> {
        let bad = |reason| TrailerError {
            key: key.chars().take(60).collect(),
            reason,
        };
        if key.is_empty()
            || key.len() > 60
            || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            || key.starts_with('-')
        {
            return Err(bad("the key must be letters, digits and '-'"));
        }
        if value.trim().is_empty() || value.len() > 500 || value.chars().any(char::is_control) {
            return Err(bad("the value must be one non-empty line of at most 500 bytes"));
        }
        Ok(Self {
            key: key.to_owned(),
            value: value.trim().to_owned(),
        })
    }

    /// Built from values that may still be odd (a login, a token name); checked again when the
    /// message is composed, so an invalid one is an error there, not a broken message.
    pub(crate) fn raw(key: &str, value: &str) -> Self {
        Self {
            key: key.to_owned(),
            value: value.to_owned(),
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    pub(crate) fn validated(&self) -> Result<Self, TrailerError> {
        Self::new(&self.key, &self.value)
    }
}

impl fmt::Display for Trailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.value)
    }
}

/// `message` followed by a blank line and the trailers. Trailers already present in the
/// message body are not the caller's business: ours always form the last paragraph.
pub(crate) fn compose_message(message: &str, trailers: &[Trailer]) -> Result<String, TrailerError> {
    let mut out = message.trim_end().to_owned();
    if out.is_empty() {
        out.push_str("auger release");
    }
    out.push_str("\n\n");
    for t in trailers {
        out.push_str(&t.validated()?.to_string());
        out.push('\n');
    }
    Ok(out)
}

/// The trailers of a commit message: the `Key: value` lines of its last paragraph, if every
/// line of that paragraph is one (git's rule is looser, but auger writes exactly this shape).
pub fn parse_trailers(message: &str) -> Vec<Trailer> {
    let trimmed = message.trim_end();
    let last = trimmed.rsplit("\n\n").next().unwrap_or("");
    if last.len() == trimmed.len() {
        // A one-paragraph message is a subject, never trailers.
        return Vec::new();
    }
    let mut out = Vec::new();
    for line in last.lines() {
        match line.split_once(':') {
            Some((k, v)) if Trailer::new(k, v).is_ok() => out.push(Trailer::raw(k, v.trim())),
            _ => return Vec::new(),
        }
    }
    out
}

/// The value of the first trailer named `key` (case-insensitive, as git compares them).
pub fn trailer<'a>(trailers: &'a [Trailer], key: &str) -> Option<&'a str> {
    trailers
        .iter()
        .find(|t| t.key.eq_ignore_ascii_case(key))
        .map(|t| t.value.as_str())
}

/// The folder name of a preview instance: `<app>-pr-<n>`, validated like any app name (so a
/// name too long for the rule is refused rather than truncated).
pub fn preview_name(app: &AppName, pull_request: u64) -> Result<AppName, crate::domain::NameError> {
    AppName::new(format!("{app}-pr-{pull_request}"))
}

/// The branch a pull request for (env, app) comes from (design §7).
pub fn pr_branch(env: &EnvName, app: &AppName) -> String {
    format!("auger/{env}/{app}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_round_trip_through_their_trailer_text() {
        for t in [
            Trigger::Policy,
            Trigger::Command("alice".into()),
            Trigger::Api("ci-frontend".into()),
            Trigger::Rollback("bob".into()),
            Trigger::Other("preview cleanup".into()),
        ] {
            assert_eq!(t.to_string().parse::<Trigger>().unwrap(), t);
        }
    }

    #[test]
    fn trailers_are_composed_and_parsed_back() {
        let trailers = [
            Trailer::new("Auger-App", "web").unwrap(),
            Trailer::new("Auger-Trigger", "command @alice").unwrap(),
        ];
        let msg = compose_message("release web\n\nbody: with a colon\n", &trailers).unwrap();
        assert_eq!(parse_trailers(&msg), trailers);
        assert_eq!(trailer(&trailers, "auger-app"), Some("web"));
        assert!(parse_trailers("just: a subject").is_empty());
        assert!(Trailer::new("Bad Key", "x").is_err());
        assert!(Trailer::new("K", "two\nlines").is_err());
        let broken = [Trailer::raw("K", "a\nb")];
        assert!(compose_message("m", &broken).is_err());
    }

    #[test]
    fn preview_names_are_validated_app_names() {
        let app = AppName::new("web").unwrap();
        assert_eq!(preview_name(&app, 12).unwrap().as_str(), "web-pr-12");
        assert!(preview_name(&AppName::new("a".repeat(50)).unwrap(), 12345).is_err());
    }

    #[test]
    fn source_refs_split_at_the_last_at() {
        let s: SourceRef = "acme/web@0123456789abcdef0123456789abcdef01234567"
            .parse()
            .unwrap();
        assert_eq!(s.repo.as_str(), "acme/web");
        assert!("acme/web".parse::<SourceRef>().is_err());
    }
}
