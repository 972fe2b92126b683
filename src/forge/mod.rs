//! The forge boundary (design §2, §10): everything auger asks of GitHub, in auger's own types.
//!
//! [`Forge`] is what the release loop and the command handler call; [`GithubForge`] implements
//! it on octocrab. No octocrab or GitHub wire type crosses this module's edge, so the rest of
//! auger can be tested against a fake forge and the transport can change without touching it.
//!
//! Retries follow [`retry`]: only calls that may be repeated are repeated, rate limits are
//! waited out, and a create that failed with a server error reports
//! [`ForgeError::OutcomeUnknown`] instead of being sent twice.

mod github;
pub mod pace;
pub mod retry;
mod unconfigured;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::{BranchName, CommitSha, RepoName};

pub use github::{GithubAuthSecret, GithubForge};
pub use retry::{ApiStats, ApiStatsSnapshot, RetryPolicy, Safety};
pub use unconfigured::Unconfigured;

/// Why a forge call failed. Callers branch on the variant; the text is for humans.
#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    #[error("not found on GitHub: {0}")]
    NotFound(String),
    /// The credentials are valid but lack the right (or the resource is off limits).
    #[error("forbidden by GitHub: {0}")]
    Forbidden(String),
    /// Credentials refused (401), or an App key or installation that does not work.
    #[error("GitHub refused the credentials: {0}")]
    Unauthorized(String),
    /// 409: the resource changed under us (a merge whose head moved, a ref race).
    #[error("conflict on GitHub: {0}")]
    Conflict(String),
    /// 422 and other 4xx: the request itself was refused.
    #[error("GitHub refused the request ({status}): {message}")]
    Invalid { status: u16, message: String },
    /// Rate limited beyond what the retry budget allows; try again after `retry_after`.
    #[error("rate limited by GitHub (retry after {retry_after:?}): {message}")]
    RateLimited {
        retry_after: Option<Duration>,
        message: String,
    },
    /// 5xx on a call that was retried as far as the policy allows.
    #[error("GitHub server error {status}: {message}")]
    Server { status: u16, message: String },
    /// A non-idempotent call (create a comment, PR or deployment; merge) failed in a way that
    /// leaves open whether GitHub performed it. It was not repeated; read back to find out.
    #[error("outcome of {what} is unknown ({reason}); it was not retried, check GitHub before repeating")]
    OutcomeUnknown { what: String, reason: String },
    /// No HTTP answer (connection, timeout) after the retries allowed.
    #[error("cannot reach GitHub: {0}")]
    Transport(String),
    /// GitHub answered something we cannot read.
    #[error("unexpected answer from GitHub: {0}")]
    Decode(String),
    /// A problem in our own setup (bad key, bad base URL).
    #[error("forge configuration: {0}")]
    Config(String),
}

pub type ForgeResult<T> = Result<T, ForgeError>;

/// A GitHub account as auger sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub login: String,
    pub id: u64,
    /// GitHub's `type == "Bot"`: design §8 ignores commands written by bots.
    pub is_bot: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PullState {
    Open,
    Closed,
}

/// The head of a pull request: where its commits come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullHead {
    pub branch: BranchName,
    pub sha: CommitSha,
    /// `owner/name` of the head repository; `None` when that fork was deleted.
    pub repo: Option<RepoName>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequest {
    pub number: u64,
    pub title: String,
    pub body: String,
    pub state: PullState,
    pub draft: bool,
    pub merged: bool,
    pub merge_commit_sha: Option<CommitSha>,
    pub head: PullHead,
    pub base_branch: BranchName,
    pub author: Actor,
    pub html_url: String,
}

impl PullRequest {
    /// Whether the head lives in another repository than `repo` (design §10: fork PRs never
    /// deploy). A deleted head repository counts as a fork: its origin cannot be checked.
    pub fn is_from_fork(&self, repo: &RepoName) -> bool {
        self.head
            .repo
            .as_ref()
            .is_none_or(|head| !head.as_str().eq_ignore_ascii_case(repo.as_str()))
    }
}

/// A review's state. The REST API answers upper case, webhooks lower case (design §13):
/// [`FromStr`] accepts both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReviewState {
    Approved,
    ChangesRequested,
    Commented,
    Dismissed,
    Pending,
}

impl FromStr for ReviewState {
    type Err = ForgeError;
    fn from_str(s: &str) -> ForgeResult<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "approved" => ReviewState::Approved,
            "changes_requested" => ReviewState::ChangesRequested,
            "commented" => ReviewState::Commented,
            "dismissed" => ReviewState::Dismissed,
            "pending" => ReviewState::Pending,
            other => return Err(ForgeError::Decode(format!("unknown review state {other:?}"))),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub id: u64,
    pub user: Actor,
    pub state: ReviewState,
    /// The head commit the review was given on; `None` for a pending review.
    pub commit_id: Option<CommitSha>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MergeMethod {
    Merge,
    Squash,
    Rebase,
}

impl MergeMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            MergeMethod::Merge => "merge",
            MergeMethod::Squash => "squash",
            MergeMethod::Rebase => "rebase",
        }
    }
}

/// How a merge attempt ended when GitHub gave a definite answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeOutcome {
    Merged {
        sha: CommitSha,
    },
    /// 409: the head is no longer the commit that was approved; re-read and re-check.
    HeadMoved,
    /// 405: closed, draft, conflicting, or blocked by branch protection; GitHub's reason.
    NotMergeable(String),
}

/// A collaborator's effective role on a repository, weakest first, so `>=` compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PermissionLevel {
    None,
    Read,
    Triage,
    Write,
    Maintain,
    Admin,
}

impl PermissionLevel {
    /// GitHub's role names, and its legacy `permission` values (`pull`/`push` included).
    pub fn parse(s: &str) -> Option<PermissionLevel> {
        Some(match s.to_ascii_lowercase().as_str() {
            "none" => PermissionLevel::None,
            "read" | "pull" => PermissionLevel::Read,
            "triage" => PermissionLevel::Triage,
            "write" | "push" => PermissionLevel::Write,
            "maintain" => PermissionLevel::Maintain,
            "admin" => PermissionLevel::Admin,
            _ => return None,
        })
    }
}

/// A commit status state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommitState {
    Pending,
    Success,
    Failure,
    Error,
}

impl CommitState {
    pub fn as_str(self) -> &'static str {
        match self {
            CommitState::Pending => "pending",
            CommitState::Success => "success",
            CommitState::Failure => "failure",
            CommitState::Error => "error",
        }
    }
}

/// A commit status to set; `context` identifies it, a newer one with the same context wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusUpdate {
    pub state: CommitState,
    pub context: String,
    pub description: Option<String>,
    pub target_url: Option<String>,
}

macro_rules! id_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

id_newtype!(
    /// An issue or pull-request comment.
    CommentId
);
id_newtype!(
    /// A GitHub Deployment.
    DeploymentId
);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    pub id: CommentId,
    pub author: Actor,
    pub body: String,
    pub html_url: String,
}

/// The reactions GitHub allows on comments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaction {
    PlusOne,
    MinusOne,
    Laugh,
    Confused,
    Heart,
    Hooray,
    Rocket,
    Eyes,
}

impl Reaction {
    pub fn as_str(self) -> &'static str {
        match self {
            Reaction::PlusOne => "+1",
            Reaction::MinusOne => "-1",
            Reaction::Laugh => "laugh",
            Reaction::Confused => "confused",
            Reaction::Heart => "heart",
            Reaction::Hooray => "hooray",
            Reaction::Rocket => "rocket",
            Reaction::Eyes => "eyes",
        }
    }
}

/// A deployment to create (GitHub's Deployments API).
#[derive(Debug, Clone, PartialEq)]
pub struct NewDeployment {
    /// The commit deployed; passed as the deployment's `ref`.
    pub sha: CommitSha,
    pub environment: String,
    pub description: Option<String>,
    /// Previews: GitHub marks older deployments of a transient environment inactive.
    pub transient: bool,
    pub production: bool,
    /// Free JSON kept on the deployment (auger stores app and artifact id here).
    pub payload: serde_json::Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeploymentState {
    Error,
    Failure,
    Inactive,
    InProgress,
    Queued,
    Pending,
    Success,
}

impl DeploymentState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentState::Error => "error",
            DeploymentState::Failure => "failure",
            DeploymentState::Inactive => "inactive",
            DeploymentState::InProgress => "in_progress",
            DeploymentState::Queued => "queued",
            DeploymentState::Pending => "pending",
            DeploymentState::Success => "success",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentStatusUpdate {
    pub state: DeploymentState,
    pub environment_url: Option<String>,
    pub log_url: Option<String>,
    pub description: Option<String>,
    /// GitHub marks prior successful deployments of the environment inactive (not transient
    /// or production ones). Its default is true; auger says so only with a success.
    pub auto_inactive: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub id: DeploymentId,
    pub sha: CommitSha,
    pub environment: String,
    pub description: Option<String>,
    pub payload: serde_json::Value,
    pub transient: bool,
    pub production: bool,
    pub creator: Option<Actor>,
}

/// What GitHub's compare says lies between two commits of a repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comparison {
    /// Commits in head and not in base: all of them, however many were listed.
    pub total_commits: u64,
    /// Commits in base and not in head (a head older than the base is "behind").
    pub behind_by: u64,
    /// The comparison on GitHub, for people.
    pub html_url: String,
    /// The newest of those commits (at most the 250 GitHub lists), oldest first.
    pub commits: Vec<ComparedCommit>,
}

/// One commit of a [`Comparison`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComparedCommit {
    pub sha: CommitSha,
    pub message: String,
    /// The git author's name, as written in the commit.
    pub author_name: String,
    /// The GitHub account of the author's email; `None` when the email maps to no account.
    pub author_login: Option<String>,
    pub html_url: String,
}

/// The files a commit changed, against its first parent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChangedFiles {
    pub paths: Vec<String>,
    /// GitHub lists at most 3000 files of a commit: more may have changed than `paths` holds.
    pub truncated: bool,
}

/// One attempt at delivering a webhook of the App, as GitHub's deliveries API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookDelivery {
    /// This attempt's id (what a redelivery names).
    pub id: u64,
    /// The `X-GitHub-Delivery` GUID, shared by every attempt of one event.
    pub guid: String,
    pub delivered_at: chrono::DateTime<chrono::Utc>,
    pub redelivery: bool,
    /// The receiver's HTTP status; 0 when there was no answer.
    pub status_code: u16,
    pub event: String,
    pub action: Option<String>,
}

impl HookDelivery {
    /// The receiver took it (2xx).
    pub fn succeeded(&self) -> bool {
        (200..300).contains(&self.status_code)
    }
}

/// The App's delivery attempts since some time, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookDeliveries {
    pub attempts: Vec<HookDelivery>,
    /// Pages ran out of the bound before reaching the time asked for: older attempts were not
    /// read.
    pub truncated: bool,
}

/// Everything auger asks of the forge. Every repository-scoped call takes the repository it
/// acts on; implementations re-read from GitHub on each call (design §10: never trust the
/// webhook payload for authority), so callers may cache only what they can afford to be stale.
#[async_trait]
pub trait Forge: Send + Sync {
    /// False only for [`Unconfigured`]: the forge auger has without credentials.
    fn configured(&self) -> bool {
        true
    }

    /// The login auger acts as (`<slug>[bot]` for a GitHub App), to recognise its own comments.
    async fn authenticated_login(&self) -> ForgeResult<String>;

    /// Where people see `repo` (its `html_url`): links are built on it, never on a hard-coded
    /// host, so GitHub Enterprise Server works.
    async fn repo_html_url(&self, repo: &RepoName) -> ForgeResult<String>;

    /// A token `git` can push to `repo` with over https (`x-access-token`): the configured
    /// token, or a fresh App installation token. `None`: no credentials to give.
    async fn git_token(&self, _repo: &RepoName) -> ForgeResult<Option<String>> {
        Ok(None)
    }

    // Pull requests.
    /// The open pull request from `head` (a branch of `repo` itself, not a fork), if any.
    async fn find_open_pull(&self, repo: &RepoName, head: &BranchName) -> ForgeResult<Option<PullRequest>>;
    /// Not retried on server errors: a second send could open a second PR.
    async fn create_pull(
        &self,
        repo: &RepoName,
        head: &BranchName,
        base: &BranchName,
        title: &str,
        body: &str,
    ) -> ForgeResult<PullRequest>;
    async fn update_pull(
        &self,
        repo: &RepoName,
        number: u64,
        title: &str,
        body: &str,
    ) -> ForgeResult<PullRequest>;
    async fn get_pull(&self, repo: &RepoName, number: u64) -> ForgeResult<PullRequest>;
    /// All reviews, oldest first (pages followed).
    async fn list_reviews(&self, repo: &RepoName, number: u64) -> ForgeResult<Vec<Review>>;
    /// Merges only if the head is still `expected_head_sha` (what was approved). Not retried
    /// on server errors (`OutcomeUnknown`: re-read the PR to learn whether it merged).
    /// `commit_message` (empty: GitHub's own) follows the title in the merge commit.
    async fn merge_pull(
        &self,
        repo: &RepoName,
        number: u64,
        expected_head_sha: &CommitSha,
        method: MergeMethod,
        commit_title: &str,
        commit_message: &str,
    ) -> ForgeResult<MergeOutcome>;
    async fn close_pull(&self, repo: &RepoName, number: u64) -> ForgeResult<()>;
    /// Numbers of the pull requests that contain `sha` (open and merged ones).
    async fn pulls_for_commit(&self, repo: &RepoName, sha: &CommitSha) -> ForgeResult<Vec<u64>>;

    // Commits.
    /// GitHub's compare of `base...head`: what head has that base has not.
    async fn compare(&self, repo: &RepoName, base: &CommitSha, head: &CommitSha) -> ForgeResult<Comparison>;
    /// The paths commit `sha` changed (renames count both names), pages followed.
    async fn commit_files(&self, repo: &RepoName, sha: &CommitSha) -> ForgeResult<ChangedFiles>;

    // People.
    /// The role of `login` on `repo`; an unknown account has [`PermissionLevel::None`].
    async fn permission(&self, repo: &RepoName, login: &str) -> ForgeResult<PermissionLevel>;
    /// Active membership only (a pending invitation does not count).
    async fn is_team_member(&self, org: &str, team_slug: &str, login: &str) -> ForgeResult<bool>;
    async fn user_id(&self, login: &str) -> ForgeResult<u64>;

    // Commit statuses.
    async fn set_status(&self, repo: &RepoName, sha: &CommitSha, status: &StatusUpdate) -> ForgeResult<()>;

    // Comments.
    /// Not retried on server errors: a second send would post the comment twice.
    async fn create_comment(&self, repo: &RepoName, issue_number: u64, body: &str) -> ForgeResult<CommentId>;
    async fn update_comment(&self, repo: &RepoName, id: CommentId, body: &str) -> ForgeResult<()>;
    async fn add_reaction(&self, repo: &RepoName, id: CommentId, reaction: Reaction) -> ForgeResult<()>;
    /// All comments on an issue or pull request, oldest first (pages followed).
    async fn list_comments(&self, repo: &RepoName, issue_number: u64) -> ForgeResult<Vec<Comment>>;

    // Deployments.
    /// Not retried on server errors: a second send would create a second deployment.
    async fn create_deployment(
        &self,
        repo: &RepoName,
        deployment: &NewDeployment,
    ) -> ForgeResult<DeploymentId>;
    async fn set_deployment_status(
        &self,
        repo: &RepoName,
        id: DeploymentId,
        status: &DeploymentStatusUpdate,
    ) -> ForgeResult<()>;
    /// Deployments to `environment`, newest first (pages followed).
    async fn list_deployments(&self, repo: &RepoName, environment: &str) -> ForgeResult<Vec<Deployment>>;

    // The App itself (GitHub App authentication only; other forges refuse).
    /// The App's webhook delivery attempts made at or after `since`, newest first.
    async fn hook_deliveries(&self, _since: chrono::DateTime<chrono::Utc>) -> ForgeResult<HookDeliveries> {
        Err(ForgeError::Config(
            "the webhook deliveries API needs GitHub App authentication".into(),
        ))
    }
    /// Asks GitHub to deliver the attempt `delivery_id` again (same GUID, new attempt).
    async fn redeliver(&self, _delivery_id: u64) -> ForgeResult<()> {
        Err(ForgeError::Config(
            "the webhook deliveries API needs GitHub App authentication".into(),
        ))
    }
    /// An installation of the App was created, deleted, suspended or given other
    /// repositories: forget which installation acts where, and its tokens, so the next call
    /// looks again (a reinstall has a new id).
    fn installations_changed(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn review_states_parse_in_both_cases() {
        assert_eq!("APPROVED".parse::<ReviewState>().unwrap(), ReviewState::Approved);
        assert_eq!("approved".parse::<ReviewState>().unwrap(), ReviewState::Approved);
        assert_eq!(
            "CHANGES_REQUESTED".parse::<ReviewState>().unwrap(),
            ReviewState::ChangesRequested
        );
        assert_eq!(
            "dismissed".parse::<ReviewState>().unwrap(),
            ReviewState::Dismissed
        );
        assert!("LGTM".parse::<ReviewState>().is_err());
    }

    #[test]
    fn permission_levels_order_and_parse_legacy_names() {
        assert!(PermissionLevel::Admin > PermissionLevel::Maintain);
        assert!(PermissionLevel::Write > PermissionLevel::Triage);
        assert!(PermissionLevel::Read > PermissionLevel::None);
        assert_eq!(PermissionLevel::parse("push"), Some(PermissionLevel::Write));
        assert_eq!(PermissionLevel::parse("WRITE"), Some(PermissionLevel::Write));
        assert_eq!(PermissionLevel::parse("security-manager"), None);
    }

    #[test]
    fn a_pull_from_another_repo_or_a_deleted_fork_is_a_fork() {
        let repo = RepoName::new("acme/web").unwrap();
        let mut pr = PullRequest {
            number: 1,
            title: String::new(),
            body: String::new(),
            state: PullState::Open,
            draft: false,
            merged: false,
            merge_commit_sha: None,
            head: PullHead {
                branch: BranchName::new("x").unwrap(),
                sha: CommitSha::new("a".repeat(40)).unwrap(),
                repo: Some(RepoName::new("Acme/Web").unwrap()),
            },
            base_branch: BranchName::new("main").unwrap(),
            author: Actor {
                login: "a".into(),
                id: 1,
                is_bot: false,
            },
            html_url: String::new(),
        };
        assert!(!pr.is_from_fork(&repo), "owner/name compare case-insensitively");
        pr.head.repo = Some(RepoName::new("mallory/web").unwrap());
        assert!(pr.is_from_fork(&repo));
        pr.head.repo = None;
        assert!(pr.is_from_fork(&repo));
    }
}
