//! What an (env, app) runs and how far its verification is: the answer of
//! `GET /api/v1/releases/current` and what `auger release wait` polls.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::state::{Verification, VerifyState};
use crate::artifact::{ArtifactId, ArtifactStore, StateKind, StoreError};
use crate::domain::{AppName, CommitSha, EnvName};

/// The current release of one (env, app).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentRelease {
    pub app: AppName,
    pub env: EnvName,
    pub artifact: ArtifactId,
    /// The source commit.
    pub sha: CommitSha,
    /// `merged`, `applied`, `healthy`, `verified`, `failed` or `timed_out`; without `verify`
    /// on the env, `merged` is as far as a release goes.
    pub state: VerifyState,
    /// When it entered `state`.
    pub since: DateTime<Utc>,
    /// Whether the env verifies its releases (else `merged` is final).
    pub verifies: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitops_commit: Option<CommitSha>,
    /// The controller's words, or why it timed out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak_until: Option<DateTime<Utc>>,
    /// The gitops repository (env, app) releases to, when the reader knows it (the API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitops_repo: Option<crate::domain::RepoName>,
}

impl CurrentRelease {
    /// Whether nothing more will happen to this release by itself.
    pub fn is_settled(&self) -> bool {
        self.state.is_final() || !self.verifies
    }

    /// Settled and good: verified, or merged in an env that does not verify.
    pub fn is_good(&self) -> bool {
        self.state == VerifyState::Verified || (!self.verifies && self.state == VerifyState::Merged)
    }
}

/// The release the ledger says (env, app) runs, with its verification when the env verifies
/// (`verifies`). `None`: nothing was ever released there.
pub fn current(
    store: &ArtifactStore,
    env: &EnvName,
    app: &AppName,
    verifies: bool,
) -> Result<Option<CurrentRelease>, StoreError> {
    let Some((artifact, live_since)) = store.released_at(env, app)? else {
        return Ok(None);
    };
    let record = if verifies {
        store
            .env_state::<Verification>(StateKind::Verify, env, app)?
            .filter(|v| v.artifact == artifact.id)
    } else {
        None
    };
    let mut out = CurrentRelease {
        app: app.clone(),
        env: env.clone(),
        artifact: artifact.id.clone(),
        sha: artifact.sha.clone(),
        state: VerifyState::Merged,
        since: live_since,
        verifies,
        gitops_commit: None,
        message: None,
        deadline: None,
        soak_until: None,
        gitops_repo: None,
    };
    if let Some(v) = record {
        out.state = v.state;
        out.since = v.since;
        out.deadline = v.is_open().then_some(v.deadline);
        out.soak_until = v.soak_until.filter(|_| v.state == VerifyState::Healthy);
        out.gitops_commit = Some(v.commit);
        out.message = Some(v.message).filter(|m| !m.is_empty());
    }
    Ok(Some(out))
}
