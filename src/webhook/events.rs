//! The webhook events auger reads, as small serde structs holding only the fields it uses.
//!
//! Unknown fields are ignored (GitHub adds fields all the time), but fields whose shape GitHub
//! guarantees are validated while parsing (`CommitSha`, `RepoName`, `BranchName`), so a worker
//! never sees a malformed sha or repository name, and a refusal names the JSON path at fault.
//! Enumerated strings (actions, states) fall back to `Other(..)` so new values GitHub invents
//! parse and are ignored later instead of failing the delivery (design §10).
//!
//! A field GitHub's webhook schema lets be `null` or absent is an `Option` (or takes its default
//! for either), so a delivery the schema allows is never refused (design §14); what each absence
//! means is said at the field. `tests/it/webhook_nulls.rs` derives those fields from the schema.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::skim::{self, Shaped};
use crate::domain::{BranchName, CommitSha, RepoName, TagName};

/// Declares an enum over the strings GitHub sends, with an `Other(String)` fallback.
///
/// Matching ignores ASCII case: webhooks and the REST API disagree on case for some values
/// (review states, design §13), and no two values GitHub uses differ only by case.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $($variant:ident = $wire:literal,)+ }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)+
            /// A value this version of auger does not know, kept verbatim for logs.
            Other(String),
        }

        impl $name {
            /// Maps GitHub's spelling, in any case; anything else becomes `Other`.
            pub fn parse(s: &str) -> Self {
                $(if s.eq_ignore_ascii_case($wire) {
                    return Self::$variant;
                })+
                Self::Other(s.to_owned())
            }

            /// GitHub's (webhook) spelling, or the unknown value as received.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)+
                    Self::Other(s) => s,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Ok(Self::parse(&s))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Shared pieces
// ---------------------------------------------------------------------------------------------

/// Reads `null` as the type's default, as a missing field (with `#[serde(default)]`) is read.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

wire_enum! {
    /// What kind of GitHub account.
    pub enum AccountType {
        User = "User",
        Bot = "Bot",
        Organization = "Organization",
    }
}

/// A user, bot or organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub login: String,
    pub id: u64,
    /// Absent from some payloads' users; then only the login tells a bot (see [`Account::is_bot`]).
    #[serde(rename = "type", default)]
    pub kind: Option<AccountType>,
}

impl Account {
    /// Bots never issue commands (design §8). GitHub Apps act as `Bot` accounts named `x[bot]`;
    /// the login check also covers payloads that label them otherwise or not at all.
    pub fn is_bot(&self) -> bool {
        self.kind == Some(AccountType::Bot) || self.login.ends_with("[bot]")
    }
}

/// An account GitHub may describe only in part: an enterprise owning an installation has no
/// login or type, and a commit's author as a status describes it may lack any of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialAccount {
    #[serde(default)]
    pub login: Option<String>,
    #[serde(default)]
    pub id: Option<u64>,
    #[serde(rename = "type", default)]
    pub kind: Option<AccountType>,
}

/// A repository as webhooks describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repository {
    pub id: u64,
    pub full_name: RepoName,
    pub clone_url: String,
    pub html_url: String,
    pub default_branch: BranchName,
    pub private: bool,
    /// Null in `push` payloads for some owners; `full_name` names the owner in any case.
    #[serde(default)]
    pub owner: Option<Account>,
}

/// The GitHub App installation a delivery belongs to (present for App webhooks); needed to
/// mint an installation token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallationRef {
    pub id: u64,
}

/// Name and e-mail of a git author or committer (not necessarily a GitHub account).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitIdentity {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    /// The GitHub login, when GitHub could match the e-mail (push payloads only).
    #[serde(default)]
    pub username: Option<String>,
    /// When they authored or committed (ISO 8601; status payloads only). Kept as text so an odd
    /// format never refuses the delivery.
    #[serde(default)]
    pub date: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// status
// ---------------------------------------------------------------------------------------------

wire_enum! {
    /// A commit status state.
    pub enum StatusState {
        Pending = "pending",
        Success = "success",
        Failure = "failure",
        Error = "error",
    }
}

/// `status`: a commit status was set (a CI signal, design §5 `status:<context>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusEvent {
    pub id: u64,
    pub sha: CommitSha,
    pub context: String,
    pub state: StatusState,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub target_url: Option<String>,
    pub commit: StatusCommit,
    /// Branches whose tip is this commit (GitHub lists at most ten).
    #[serde(default)]
    pub branches: Vec<StatusBranch>,
    pub repository: Repository,
    pub sender: Account,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

/// The commit a status is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCommit {
    pub sha: CommitSha,
    #[serde(default)]
    pub html_url: Option<String>,
    pub commit: CommitDetails,
    /// The GitHub account of the author, when GitHub could match it (and then perhaps without
    /// a login); without one the git author's name stands for the author.
    #[serde(default)]
    pub author: Option<PartialAccount>,
}

/// The git part of a commit: message, author and committer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitDetails {
    pub message: String,
    #[serde(default)]
    pub author: Option<GitIdentity>,
    #[serde(default)]
    pub committer: Option<GitIdentity>,
}

/// A branch listed on a status event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusBranch {
    pub name: BranchName,
    pub commit: ShaRef,
}

/// `{ "sha": … }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShaRef {
    /// The schema lets a status's branch tip be null: such a branch is not known to point at
    /// the commit.
    #[serde(default)]
    pub sha: Option<CommitSha>,
}

// ---------------------------------------------------------------------------------------------
// check_run and workflow_run
// ---------------------------------------------------------------------------------------------

wire_enum! {
    /// Progress of a check run or workflow run.
    pub enum RunStatus {
        Requested = "requested",
        Queued = "queued",
        InProgress = "in_progress",
        Waiting = "waiting",
        Pending = "pending",
        Completed = "completed",
    }
}

wire_enum! {
    /// Outcome of a completed check run or workflow run.
    pub enum Conclusion {
        Success = "success",
        Failure = "failure",
        Neutral = "neutral",
        Cancelled = "cancelled",
        Skipped = "skipped",
        TimedOut = "timed_out",
        ActionRequired = "action_required",
        Stale = "stale",
        StartupFailure = "startup_failure",
    }
}

wire_enum! {
    /// `check_run` actions.
    pub enum CheckRunAction {
        Created = "created",
        Completed = "completed",
        Rerequested = "rerequested",
        RequestedAction = "requested_action",
    }
}

/// `check_run`: a check run changed (design §5 `check_run:<name>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRunEvent {
    pub action: CheckRunAction,
    pub check_run: CheckRun,
    pub repository: Repository,
    pub sender: Account,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRun {
    pub id: u64,
    pub name: String,
    pub head_sha: CommitSha,
    pub status: RunStatus,
    #[serde(default)]
    pub conclusion: Option<Conclusion>,
    #[serde(default)]
    pub html_url: Option<String>,
    #[serde(default)]
    pub details_url: Option<String>,
    pub check_suite: CheckSuite,
    /// Same-repository pull requests whose head is this commit.
    #[serde(default)]
    pub pull_requests: Vec<PullRequestRef>,
}

impl CheckRun {
    /// Completed with conclusion `success`: the only state that makes an artifact.
    pub fn succeeded(&self) -> bool {
        self.status == RunStatus::Completed && self.conclusion == Some(Conclusion::Success)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckSuite {
    /// Not required by the schema; auger does not use it.
    #[serde(default)]
    pub id: Option<u64>,
    /// Null when the suite ran for a tag or a fork.
    #[serde(default)]
    pub head_branch: Option<BranchName>,
}

/// The short pull-request form inside check and workflow runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequestRef {
    pub id: u64,
    pub number: u64,
    pub head: RunPullRequestBranch,
    pub base: RunPullRequestBranch,
}

/// A head or base inside [`PullRequestRef`]; its repo has no `full_name`, only id and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunPullRequestBranch {
    #[serde(rename = "ref")]
    pub ref_name: BranchName,
    pub sha: CommitSha,
    pub repo: ShortRepository,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShortRepository {
    pub id: u64,
    pub name: String,
}

wire_enum! {
    /// `workflow_run` actions.
    pub enum WorkflowRunAction {
        Requested = "requested",
        InProgress = "in_progress",
        Completed = "completed",
    }
}

/// `workflow_run`: a GitHub Actions run changed (design §5 `workflow_run:<workflow name>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowRunEvent {
    pub action: WorkflowRunAction,
    #[serde(default)]
    pub workflow: Option<Workflow>,
    pub workflow_run: WorkflowRun,
    pub repository: Repository,
    pub sender: Account,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

impl WorkflowRunEvent {
    /// The workflow's name as policies name it: the workflow object's, else the run's.
    pub fn workflow_name(&self) -> &str {
        self.workflow
            .as_ref()
            .map(|w| w.name.as_str())
            .filter(|n| !n.is_empty())
            .or(self.workflow_run.name.as_deref())
            .unwrap_or_default()
    }

    /// True when the run built code from another repository (a fork PR): such runs never make
    /// deployable artifacts (design §10).
    pub fn is_from_fork(&self) -> bool {
        self.workflow_run
            .head_repository
            .as_ref()
            .is_none_or(|head| head.full_name != self.repository.full_name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workflow {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowRun {
    pub id: u64,
    #[serde(default)]
    pub name: Option<String>,
    pub head_sha: CommitSha,
    #[serde(default)]
    pub head_branch: Option<BranchName>,
    /// What triggered the run: `push`, `pull_request`, …
    pub event: String,
    pub status: RunStatus,
    #[serde(default)]
    pub conclusion: Option<Conclusion>,
    pub html_url: String,
    pub run_number: u64,
    #[serde(default)]
    pub run_attempt: Option<u64>,
    pub workflow_id: u64,
    #[serde(default)]
    pub pull_requests: Vec<PullRequestRef>,
    #[serde(default)]
    pub head_repository: Option<RunRepository>,
    #[serde(default)]
    pub head_commit: Option<RunHeadCommit>,
}

/// The commit a run built, as far as auger reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunHeadCommit {
    /// When it was made (ISO 8601). Kept as text so an odd format never refuses the delivery.
    #[serde(default)]
    pub timestamp: Option<String>,
}

impl WorkflowRun {
    /// Completed with conclusion `success`.
    pub fn succeeded(&self) -> bool {
        self.status == RunStatus::Completed && self.conclusion == Some(Conclusion::Success)
    }
}

/// The repository a run's code came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRepository {
    pub id: u64,
    pub full_name: RepoName,
}

// ---------------------------------------------------------------------------------------------
// push, create, delete
// ---------------------------------------------------------------------------------------------

/// `push`: commits (or a deletion) pushed to a branch or tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushEvent {
    /// The full ref: `refs/heads/<branch>` or `refs/tags/<tag>`.
    #[serde(rename = "ref")]
    pub ref_name: String,
    pub before: CommitSha,
    /// All zeros when the ref was deleted.
    pub after: CommitSha,
    #[serde(default)]
    pub created: bool,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub forced: bool,
    #[serde(default)]
    pub head_commit: Option<PushCommit>,
    pub pusher: Pusher,
    pub repository: Repository,
    /// Absent from some pushes (the schema does not require it): nobody to name.
    #[serde(default)]
    pub sender: Option<Account>,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

impl PushEvent {
    /// The branch pushed to, if `ref` is `refs/heads/<valid branch name>`.
    pub fn branch(&self) -> Option<BranchName> {
        short_ref(&self.ref_name, "refs/heads/")
    }

    /// The tag pushed, if `ref` is `refs/tags/<valid tag name>`.
    pub fn tag(&self) -> Option<TagName> {
        short_ref(&self.ref_name, "refs/tags/")
    }
}

fn short_ref<T: std::str::FromStr>(full: &str, prefix: &str) -> Option<T> {
    full.strip_prefix(prefix)?.parse().ok()
}

/// A commit in a push payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushCommit {
    pub id: CommitSha,
    pub message: String,
    #[serde(default)]
    pub url: Option<String>,
    pub author: GitIdentity,
}

/// Who pushed: a git identity, not an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pusher {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
}

wire_enum! {
    /// What a `create`/`delete` event is about.
    pub enum RefType {
        Branch = "branch",
        Tag = "tag",
    }
}

/// `create` and `delete`: a branch or tag was created or deleted. Both share this shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefEvent {
    /// The short name (no `refs/heads/` or `refs/tags/`).
    #[serde(rename = "ref")]
    pub ref_name: String,
    pub ref_type: RefType,
    pub repository: Repository,
    pub sender: Account,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

impl RefEvent {
    /// The branch, when this is about a branch with a valid name.
    pub fn branch(&self) -> Option<BranchName> {
        (self.ref_type == RefType::Branch)
            .then(|| self.ref_name.parse().ok())
            .flatten()
    }

    /// The tag, when this is about a tag with a valid name.
    pub fn tag(&self) -> Option<TagName> {
        (self.ref_type == RefType::Tag)
            .then(|| self.ref_name.parse().ok())
            .flatten()
    }
}

// ---------------------------------------------------------------------------------------------
// pull_request and pull_request_review
// ---------------------------------------------------------------------------------------------

wire_enum! {
    /// `pull_request` actions auger reacts to; the many others are `Other`.
    pub enum PullRequestAction {
        Opened = "opened",
        Reopened = "reopened",
        Synchronize = "synchronize",
        Closed = "closed",
        Edited = "edited",
        ReadyForReview = "ready_for_review",
        ConvertedToDraft = "converted_to_draft",
        Labeled = "labeled",
        Unlabeled = "unlabeled",
    }
}

wire_enum! {
    /// `open` or `closed`.
    pub enum PullRequestState {
        Open = "open",
        Closed = "closed",
    }
}

/// `pull_request`: previews, artifact PR facts, and merged gitops PRs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequestEvent {
    pub action: PullRequestAction,
    pub number: u64,
    pub pull_request: PullRequest,
    pub repository: Repository,
    /// Absent from some actions (`edited`, `milestoned`, …): nobody to name.
    #[serde(default)]
    pub sender: Option<Account>,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

impl PullRequestEvent {
    /// See [`PullRequest::is_from_fork`].
    pub fn is_from_fork(&self) -> bool {
        self.pull_request.is_from_fork()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequest {
    pub id: u64,
    pub number: u64,
    pub state: PullRequestState,
    pub title: String,
    #[serde(default)]
    pub body: Option<String>,
    pub html_url: String,
    /// Null for most actions' pull requests when the author's account is gone; unused.
    #[serde(default)]
    pub user: Option<Account>,
    /// Absent from some actions' payloads: not a draft.
    #[serde(default, deserialize_with = "null_as_default")]
    pub draft: bool,
    /// Null or absent in many payloads (e.g. `synchronize`, `pull_request_review`); see
    /// [`PullRequest::is_merged`].
    #[serde(default)]
    pub merged: Option<bool>,
    #[serde(default)]
    pub merged_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub merge_commit_sha: Option<CommitSha>,
    pub head: PullRequestBranch,
    pub base: PullRequestBranch,
    /// When the pull request last changed; on `synchronize`, when its head moved.
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
}

impl PullRequest {
    /// Merged, judged by `merged` or, where that field is null or missing, `merged_at`: a
    /// payload that says neither is not merged.
    pub fn is_merged(&self) -> bool {
        self.merged == Some(true) || self.merged_at.is_some()
    }

    /// True when the head lives in another repository than the base, or its repository is
    /// gone (a deleted fork). Fork PRs never deploy and get no preview (design §5, §10).
    pub fn is_from_fork(&self) -> bool {
        match (&self.head.repo, &self.base.repo) {
            (Some(head), Some(base)) => head.full_name != base.full_name,
            _ => true,
        }
    }
}

/// A pull request's head or base.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequestBranch {
    #[serde(rename = "ref")]
    pub ref_name: BranchName,
    pub sha: CommitSha,
    /// Null when the head's fork was deleted.
    #[serde(default)]
    pub repo: Option<Repository>,
}

wire_enum! {
    /// `pull_request_review` actions.
    pub enum ReviewAction {
        Submitted = "submitted",
        Edited = "edited",
        Dismissed = "dismissed",
    }
}

wire_enum! {
    /// A review's state. Webhooks send lower case (`approved`), the REST API upper case
    /// (`APPROVED`, design §13); both parse to the same variant.
    pub enum ReviewState {
        Approved = "approved",
        ChangesRequested = "changes_requested",
        Commented = "commented",
        Dismissed = "dismissed",
        Pending = "pending",
    }
}

/// `pull_request_review`: the approval gate of gitops PRs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequestReviewEvent {
    pub action: ReviewAction,
    pub review: Review,
    pub pull_request: PullRequest,
    pub repository: Repository,
    pub sender: Account,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub id: u64,
    /// Null when GitHub does not say who reviewed: such a review is ignored at the edge (see
    /// `work::classify`), as it cannot be an approval by anyone auger could count.
    #[serde(default)]
    pub user: Option<Account>,
    #[serde(default)]
    pub body: Option<String>,
    /// The head commit the review was given on; approvals of an older head do not count.
    pub commit_id: CommitSha,
    pub state: ReviewState,
    #[serde(default)]
    pub submitted_at: Option<DateTime<Utc>>,
}

// ---------------------------------------------------------------------------------------------
// issue_comment
// ---------------------------------------------------------------------------------------------

wire_enum! {
    /// `issue_comment` actions. Only `created` carries commands (design §8).
    pub enum IssueCommentAction {
        Created = "created",
        Edited = "edited",
        Deleted = "deleted",
    }
}

/// `issue_comment`: a comment on an issue or a pull request (PR comments are issue comments).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueCommentEvent {
    pub action: IssueCommentAction,
    pub issue: Issue,
    pub comment: Comment,
    pub repository: Repository,
    pub sender: Account,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

impl IssueCommentEvent {
    /// True when the comment is on a pull request rather than a plain issue.
    pub fn is_on_pull_request(&self) -> bool {
        self.issue.pull_request.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    pub number: u64,
    pub title: String,
    pub user: Account,
    pub html_url: String,
    /// Present only when the issue is a pull request.
    #[serde(default)]
    pub pull_request: Option<IssuePullRequestLinks>,
}

/// The marker (and links) that make an issue a pull request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuePullRequestLinks {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub html_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    pub id: u64,
    pub body: String,
    /// Null when GitHub does not say who wrote it: its commands are ignored at the edge (see
    /// `work::classify`), as nobody's authority can be checked.
    #[serde(default)]
    pub user: Option<Account>,
    pub html_url: String,
    pub created_at: DateTime<Utc>,
}

// ---------------------------------------------------------------------------------------------
// installation and ping
// ---------------------------------------------------------------------------------------------

wire_enum! {
    /// `installation` actions.
    pub enum InstallationAction {
        Created = "created",
        Deleted = "deleted",
        Suspend = "suspend",
        Unsuspend = "unsuspend",
        NewPermissionsAccepted = "new_permissions_accepted",
    }
}

/// `installation`: the GitHub App was installed, removed or changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallationEvent {
    pub action: InstallationAction,
    pub installation: Installation,
    /// The repositories granted, on `created` (absent otherwise).
    #[serde(default, deserialize_with = "null_as_default")]
    pub repositories: Vec<InstallationRepository>,
    pub sender: Account,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installation {
    pub id: u64,
    /// A user or organization, or an enterprise (no login, no type); the schema also lets it
    /// be null.
    #[serde(default)]
    pub account: Option<PartialAccount>,
    #[serde(default)]
    pub app_id: Option<u64>,
}

wire_enum! {
    /// `installation_repositories` actions.
    pub enum InstallationRepositoriesAction {
        Added = "added",
        Removed = "removed",
    }
}

/// `installation_repositories`: repositories were added to or removed from an installation.
/// Only that it happened matters to auger (which installation acts where is asked again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallationRepositoriesEvent {
    pub action: InstallationRepositoriesAction,
    pub installation: Installation,
    pub sender: Account,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallationRepository {
    pub id: u64,
    pub full_name: RepoName,
    #[serde(default)]
    pub private: bool,
}

/// `ping`: sent when a webhook is created. Repository and sender are absent for App-level hooks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingEvent {
    #[serde(default)]
    pub zen: Option<String>,
    #[serde(default)]
    pub hook_id: Option<u64>,
    #[serde(default)]
    pub repository: Option<Repository>,
    #[serde(default)]
    pub sender: Option<Account>,
}

// ---------------------------------------------------------------------------------------------
// Event
// ---------------------------------------------------------------------------------------------

/// A parsed delivery. Payloads are boxed: they differ widely in size and the enum is moved
/// through queues.
/// Serializes as the inner event's JSON alone (untagged): the event name travels beside it,
/// in the inbox entry, and [`parse_event`] reads it back by that name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Event {
    Status(Box<StatusEvent>),
    CheckRun(Box<CheckRunEvent>),
    WorkflowRun(Box<WorkflowRunEvent>),
    Push(Box<PushEvent>),
    Create(Box<RefEvent>),
    Delete(Box<RefEvent>),
    PullRequest(Box<PullRequestEvent>),
    PullRequestReview(Box<PullRequestReviewEvent>),
    IssueComment(Box<IssueCommentEvent>),
    Installation(Box<InstallationEvent>),
    InstallationRepositories(Box<InstallationRepositoriesEvent>),
    Ping(Box<PingEvent>),
    /// An event auger does not handle: acknowledged and ignored (design §10).
    Unknown {
        event: String,
    },
}

impl Event {
    /// The `X-GitHub-Event` name this was parsed as.
    pub fn name(&self) -> &str {
        match self {
            Event::Status(_) => "status",
            Event::CheckRun(_) => "check_run",
            Event::WorkflowRun(_) => "workflow_run",
            Event::Push(_) => "push",
            Event::Create(_) => "create",
            Event::Delete(_) => "delete",
            Event::PullRequest(_) => "pull_request",
            Event::PullRequestReview(_) => "pull_request_review",
            Event::IssueComment(_) => "issue_comment",
            Event::Installation(_) => "installation",
            Event::InstallationRepositories(_) => "installation_repositories",
            Event::Ping(_) => "ping",
            Event::Unknown { event } => event,
        }
    }

    /// The repository the event happened in, if any.
    pub fn repository(&self) -> Option<&Repository> {
        match self {
            Event::Status(e) => Some(&e.repository),
            Event::CheckRun(e) => Some(&e.repository),
            Event::WorkflowRun(e) => Some(&e.repository),
            Event::Push(e) => Some(&e.repository),
            Event::Create(e) | Event::Delete(e) => Some(&e.repository),
            Event::PullRequest(e) => Some(&e.repository),
            Event::PullRequestReview(e) => Some(&e.repository),
            Event::IssueComment(e) => Some(&e.repository),
            Event::Ping(e) => e.repository.as_ref(),
            Event::Installation(_) | Event::InstallationRepositories(_) | Event::Unknown { .. } => None,
        }
    }

    /// `owner/name` of [`Event::repository`].
    pub fn repo(&self) -> Option<&RepoName> {
        self.repository().map(|r| &r.full_name)
    }

    /// The pull request the event is about, if any (a comment on a plain issue is not).
    pub fn pull_number(&self) -> Option<u64> {
        match self {
            Event::PullRequest(e) => Some(e.number),
            Event::PullRequestReview(e) => Some(e.pull_request.number),
            Event::IssueComment(e) if e.is_on_pull_request() => Some(e.issue.number),
            _ => None,
        }
    }

    /// The fields auger reads, as JSON that [`parse_event`] under [`Event::name`] turns back
    /// into an equal `Event`; `None` for `ping` and unknown events, which are never stored.
    /// What the inbox keeps when the skimmer declined a body serde accepted (see
    /// [`parse_event_kept`]).
    pub fn compact(&self) -> Option<Vec<u8>> {
        if matches!(self, Event::Ping(_) | Event::Unknown { .. }) {
            return None;
        }
        // Plain structs with string keys always serialize; `None` keeps the caller on the
        // raw body should that ever change.
        serde_json::to_vec(self).ok()
    }

    /// The `action` field as received, for events that have one.
    pub fn action_str(&self) -> Option<&str> {
        match self {
            Event::CheckRun(e) => Some(e.action.as_str()),
            Event::WorkflowRun(e) => Some(e.action.as_str()),
            Event::PullRequest(e) => Some(e.action.as_str()),
            Event::PullRequestReview(e) => Some(e.action.as_str()),
            Event::IssueComment(e) => Some(e.action.as_str()),
            Event::Installation(e) => Some(e.action.as_str()),
            Event::InstallationRepositories(e) => Some(e.action.as_str()),
            Event::Status(_)
            | Event::Push(_)
            | Event::Create(_)
            | Event::Delete(_)
            | Event::Ping(_)
            | Event::Unknown { .. } => None,
        }
    }

    /// Who triggered the event.
    pub fn sender(&self) -> Option<&Account> {
        match self {
            Event::Status(e) => Some(&e.sender),
            Event::CheckRun(e) => Some(&e.sender),
            Event::WorkflowRun(e) => Some(&e.sender),
            Event::Push(e) => e.sender.as_ref(),
            Event::Create(e) | Event::Delete(e) => Some(&e.sender),
            Event::PullRequest(e) => e.sender.as_ref(),
            Event::PullRequestReview(e) => Some(&e.sender),
            Event::IssueComment(e) => Some(&e.sender),
            Event::Installation(e) => Some(&e.sender),
            Event::InstallationRepositories(e) => Some(&e.sender),
            Event::Ping(e) => e.sender.as_ref(),
            Event::Unknown { .. } => None,
        }
    }

    /// True when the sender is a bot (auger itself included), whose events must not trigger
    /// commands or loops.
    pub fn sender_is_bot(&self) -> bool {
        self.sender().is_some_and(Account::is_bot)
    }

    /// The GitHub App installation id, for an installation token.
    pub fn installation_id(&self) -> Option<u64> {
        match self {
            Event::Status(e) => e.installation.map(|i| i.id),
            Event::CheckRun(e) => e.installation.map(|i| i.id),
            Event::WorkflowRun(e) => e.installation.map(|i| i.id),
            Event::Push(e) => e.installation.map(|i| i.id),
            Event::Create(e) | Event::Delete(e) => e.installation.map(|i| i.id),
            Event::PullRequest(e) => e.installation.map(|i| i.id),
            Event::PullRequestReview(e) => e.installation.map(|i| i.id),
            Event::IssueComment(e) => e.installation.map(|i| i.id),
            Event::Installation(e) => Some(e.installation.id),
            Event::InstallationRepositories(e) => Some(e.installation.id),
            Event::Ping(_) | Event::Unknown { .. } => None,
        }
    }
}

/// Why a payload could not be turned into an [`Event`]. Both mean 400 for a signed delivery.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The body is not JSON at all (or has trailing garbage).
    #[error("{event} payload is not valid JSON: {source}")]
    Malformed {
        event: String,
        #[source]
        source: serde_json::Error,
    },
    /// JSON, but a field is missing, mistyped or invalid; `path` locates it
    /// (e.g. `pull_request.head.sha`).
    #[error("{event} payload: {path}: {message}")]
    Invalid {
        event: String,
        path: String,
        message: String,
    },
}

impl EventError {
    /// The JSON path at fault, for [`EventError::Invalid`].
    pub fn path(&self) -> Option<&str> {
        match self {
            EventError::Invalid { path, .. } => Some(path),
            EventError::Malformed { .. } => None,
        }
    }
}

/// Parses a delivery body given its `X-GitHub-Event` name. Unknown event names give
/// [`Event::Unknown`] once the body is checked to be JSON, so malformed bodies are refused
/// consistently whatever the event.
///
/// serde reads the whole body: this is the worker's path, over what the inbox kept (all of
/// which it reads), where skimming would only copy the bytes once more.
pub fn parse_event(event_name: &str, body: &[u8]) -> Result<Event, EventError> {
    parse(event_name, body, false).map(|(event, _)| event)
}

/// [`parse_event`], also returning what the inbox keeps of the delivery: the members auger
/// reads, as JSON that [`parse_event`] turns back into an equal event. `None` for `ping` and
/// unknown events, which are never stored.
///
/// The raw payload stays with GitHub, which can redeliver it; the inbox holds a few hundred
/// bytes instead of 10–30 KB, so the edge writes and syncs a fraction of the bytes. The edge's
/// path: the skimmer keeps those members before serde sees them (see [`parse_body`]).
pub fn parse_event_kept(event_name: &str, body: &[u8]) -> Result<(Event, Option<Vec<u8>>), EventError> {
    parse(event_name, body, true)
}

/// Parses by event name, skimming first (and returning what was kept) when `skim_first`.
fn parse(event_name: &str, body: &[u8], skim_first: bool) -> Result<(Event, Option<Vec<u8>>), EventError> {
    fn boxed<T>(
        wrap: fn(Box<T>) -> Event,
        (value, kept): (Box<T>, Option<Vec<u8>>),
    ) -> (Event, Option<Vec<u8>>) {
        (wrap(value), kept)
    }
    let (event, kept) = match event_name {
        "status" => boxed(Event::Status, parse_body(event_name, body, skim_first)?),
        "check_run" => boxed(Event::CheckRun, parse_body(event_name, body, skim_first)?),
        "workflow_run" => boxed(Event::WorkflowRun, parse_body(event_name, body, skim_first)?),
        "push" => boxed(Event::Push, parse_body(event_name, body, skim_first)?),
        "create" => boxed(Event::Create, parse_body(event_name, body, skim_first)?),
        "delete" => boxed(Event::Delete, parse_body(event_name, body, skim_first)?),
        "pull_request" => boxed(Event::PullRequest, parse_body(event_name, body, skim_first)?),
        "pull_request_review" => boxed(
            Event::PullRequestReview,
            parse_body(event_name, body, skim_first)?,
        ),
        "issue_comment" => boxed(Event::IssueComment, parse_body(event_name, body, skim_first)?),
        "installation" => boxed(Event::Installation, parse_body(event_name, body, skim_first)?),
        "installation_repositories" => boxed(
            Event::InstallationRepositories,
            parse_body(event_name, body, skim_first)?,
        ),
        "ping" => return Ok((Event::Ping(parse_body(event_name, body, skim_first)?.0), None)),
        _ => {
            // An empty shape keeps nothing: the skimmer only checks the JSON.
            if skim::prune(body, &[]).is_none() {
                parse_whole::<IgnoredAny>(event_name, body)?;
            }
            let event = Event::Unknown {
                event: event_name.to_owned(),
            };
            return Ok((event, None));
        }
    };
    // The skimmer declined the body, but serde took it: keep the typed event's own JSON.
    let kept = if skim_first {
        kept.or_else(|| event.compact())
    } else {
        None
    };
    Ok((event, kept))
}

/// With `skim_first`, the fast path: the skimmer checks the body and keeps `T`'s members, serde
/// parses those. Anything it declines, or that fails, is parsed whole (see [`parse_whole`]),
/// which is the authority on what the body means and says where it is wrong.
fn parse_body<T: DeserializeOwned + Shaped>(
    event: &str,
    body: &[u8],
    skim_first: bool,
) -> Result<(Box<T>, Option<Vec<u8>>), EventError> {
    if skim_first
        && let Some(kept) = skim::prune(body, T::SHAPE)
        && let Ok(value) = serde_json::from_slice::<T>(&kept)
    {
        return Ok((Box::new(value), Some(kept)));
    }
    Ok((parse_whole(event, body)?, None))
}

fn parse_whole<T: DeserializeOwned>(event: &str, body: &[u8]) -> Result<Box<T>, EventError> {
    // Plain serde_json first. Only a body that fails is parsed again with path tracking, which
    // costs on every field, to say where it failed.
    if let Ok(value) = serde_json::from_slice::<T>(body) {
        return Ok(Box::new(value));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_data() {
            EventError::Invalid {
                event: event.to_owned(),
                path,
                message: inner.to_string(),
            }
        } else {
            EventError::Malformed {
                event: event.to_owned(),
                source: inner,
            }
        }
    })?;
    de.end().map_err(|source| EventError::Malformed {
        event: event.to_owned(),
        source,
    })?;
    Ok(Box::new(value))
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use serde_json::{Value, json};

    use super::*;

    fn fixtures_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/webhooks")
    }

    fn fixture_bytes(file: &str) -> Vec<u8> {
        let path = fixtures_dir().join(file);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn fixture_json(file: &str) -> Value {
        serde_json::from_slice(&fixture_bytes(file)).unwrap()
    }

    /// The fixture parsed under the event name its file name gives.
    fn fixture(file: &str) -> Event {
        let name = file.split('.').next().unwrap();
        parse_event(name, &fixture_bytes(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
    }

    fn parse_value(event: &str, value: &Value) -> Result<Event, EventError> {
        parse_event(event, &serde_json::to_vec(value).unwrap())
    }

    fn sha(s: &str) -> CommitSha {
        CommitSha::new(s).unwrap()
    }

    const HELLO_WORLD: &str = "Codertocat/Hello-World";
    const HEAD_SHA: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
    const BASE_SHA: &str = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e";

    #[test]
    fn the_pull_request_an_event_is_about() {
        assert_eq!(fixture("pull_request.opened.payload.json").pull_number(), Some(2));
        let review = fixture("pull_request_review.submitted.payload.json");
        let Event::PullRequestReview(r) = &review else {
            panic!("{review:?}")
        };
        assert_eq!(review.pull_number(), Some(r.pull_request.number));
        // The fixture's comment is on a plain issue; the same comment on a pull request counts.
        let mut comment = fixture_json("issue_comment.created.payload.json");
        assert_eq!(
            parse_value("issue_comment", &comment).unwrap().pull_number(),
            None
        );
        comment["issue"]["pull_request"] = json!({ "url": "https://api.github.com/repos/o/r/pulls/1" });
        assert_eq!(
            parse_value("issue_comment", &comment).unwrap().pull_number(),
            Some(1)
        );
        assert_eq!(fixture("status.payload.json").pull_number(), None);
    }

    #[test]
    fn every_fixture_parses_into_its_variant() {
        let mut seen = 0;
        let dir = fixtures_dir();
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{} (shared/ must sit beside the repo): {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let file = path.file_name().unwrap().to_str().unwrap().to_owned();
            let name = file.split('.').next().unwrap();
            let event = fixture(&file);
            assert_eq!(event.name(), name, "{file}");
            assert!(!matches!(event, Event::Unknown { .. }), "{file}");
            // Every fixture but the App's installations happens in a repository.
            assert_eq!(
                event.repo().is_some(),
                !name.starts_with("installation"),
                "{file}"
            );
            assert!(event.sender().is_some(), "{file}");
            assert!(!event.sender_is_bot(), "{file}");
            seen += 1;
        }
        assert!(seen >= 15, "only {seen} fixtures found");
    }

    /// What the inbox stores of each fixture: a fraction of its bytes that parses back into the
    /// same event, so a worker reading it acts exactly as on the original payload.
    #[test]
    fn every_fixture_compacts_into_json_that_parses_back_equal() {
        let mut compacted = 0;
        for entry in std::fs::read_dir(fixtures_dir()).unwrap() {
            let path = entry.unwrap().path();
            let file = path.file_name().unwrap().to_str().unwrap().to_owned();
            if !file.ends_with(".json") {
                continue;
            }
            let raw = fixture_bytes(&file);
            let event = fixture(&file);
            let Some(compact) = event.compact() else {
                assert_eq!(event.name(), "ping", "{file}: only ping is not stored");
                continue;
            };
            let again = parse_event(event.name(), &compact)
                .unwrap_or_else(|e| panic!("{file}: compact form does not parse: {e}"));
            assert_eq!(again, event, "{file}");
            assert_eq!(again.compact(), Some(compact.clone()), "{file}: stable");
            assert!(
                compact.len() * 3 < raw.len(),
                "{file}: {} of {} bytes",
                compact.len(),
                raw.len()
            );
            compacted += 1;
        }
        assert!(compacted >= 14, "only {compacted} fixtures compacted");
    }

    /// The shape and the authoritative (whole-body serde) parse of an event name.
    fn shape_and_whole_parse(name: &str, body: &[u8]) -> (skim::Shape, Event) {
        macro_rules! slow {
            ($t:ty, $wrap:expr) => {
                (<$t>::SHAPE, $wrap(parse_whole::<$t>(name, body).unwrap()))
            };
        }
        match name {
            "status" => slow!(StatusEvent, Event::Status),
            "check_run" => slow!(CheckRunEvent, Event::CheckRun),
            "workflow_run" => slow!(WorkflowRunEvent, Event::WorkflowRun),
            "push" => slow!(PushEvent, Event::Push),
            "create" => slow!(RefEvent, Event::Create),
            "delete" => slow!(RefEvent, Event::Delete),
            "pull_request" => slow!(PullRequestEvent, Event::PullRequest),
            "pull_request_review" => slow!(PullRequestReviewEvent, Event::PullRequestReview),
            "issue_comment" => slow!(IssueCommentEvent, Event::IssueComment),
            "installation" => slow!(InstallationEvent, Event::Installation),
            "installation_repositories" => {
                slow!(InstallationRepositoriesEvent, Event::InstallationRepositories)
            }
            "ping" => slow!(PingEvent, Event::Ping),
            other => panic!("no shape for {other}"),
        }
    }

    #[test]
    fn every_fixture_is_skimmed_to_what_serde_reads_and_parses_as_the_whole_body_does() {
        let mut skimmed = 0;
        for entry in std::fs::read_dir(fixtures_dir()).unwrap() {
            let file = entry.unwrap().file_name().into_string().unwrap();
            if !file.ends_with(".json") {
                continue;
            }
            let raw = fixture_bytes(&file);
            let name = fixture(&file).name().to_owned();
            let (shape, whole) = shape_and_whole_parse(&name, &raw);
            let (event, kept) = parse_event_kept(&name, &raw).unwrap();
            assert_eq!(
                event, whole,
                "{file}: the skimmed parse differs from the whole-body parse"
            );
            if name == "ping" {
                assert_eq!(kept, None, "{file}: ping is never stored");
                continue;
            }
            let kept = kept.unwrap();
            assert_eq!(
                Some(&kept),
                skim::prune(&raw, shape).as_ref(),
                "{file}: took the slow path"
            );
            assert!(
                kept.len() * 3 < raw.len(),
                "{file}: kept {} of {} bytes",
                kept.len(),
                raw.len()
            );
            // What the inbox keeps parses back equal, and keeping it again changes nothing.
            assert_eq!(
                parse_event_kept(&name, &kept).unwrap(),
                (event.clone(), Some(kept.clone())),
                "{file}"
            );
            // The shape holds every member the typed event has, at every depth: pruning the
            // event's own JSON loses nothing.
            let own = serde_json::to_vec(&event).unwrap();
            assert_eq!(
                parse_event(&name, &skim::prune(&own, shape).unwrap()).unwrap(),
                event,
                "{file}"
            );
            skimmed += 1;
        }
        assert!(skimmed >= 14, "only {skimmed} fixtures skimmed");
    }

    #[test]
    fn a_body_the_skimmer_declines_is_parsed_whole_and_kept_as_the_typed_json() {
        let raw = fixture_bytes("status.payload.json");
        let want = parse_event("status", &raw).unwrap();
        // JSON allows escaped keys; GitHub never sends them, so the skimmer leaves them to serde.
        let text = String::from_utf8(raw)
            .unwrap()
            .replacen("\"state\"", "\"st\\u0061te\"", 1);
        assert_eq!(skim::prune(text.as_bytes(), StatusEvent::SHAPE), None);
        let (event, kept) = parse_event_kept("status", text.as_bytes()).unwrap();
        assert_eq!(event, want);
        assert_eq!(kept, want.compact());
        // Broken JSON in a part auger never reads is still refused, whichever path sees it.
        let broken = String::from_utf8(fixture_bytes("status.payload.json"))
            .unwrap()
            .replacen("\"gravatar_id\": \"\"", "\"gravatar_id\": \"\\x\"", 1);
        assert!(matches!(
            parse_event_kept("status", broken.as_bytes()),
            Err(EventError::Malformed { .. })
        ));
        assert!(matches!(
            parse_event_kept("zen_garden", b"{\"a\": tru}"),
            Err(EventError::Malformed { .. })
        ));
    }

    #[test]
    fn unknown_enum_values_survive_compaction_verbatim() {
        let mut v = fixture_json("check_run.completed.payload.json");
        v["action"] = json!("Brand_New_Action");
        v["check_run"]["conclusion"] = json!("Unheard_Of");
        let event = parse_value("check_run", &v).unwrap();
        let again = parse_event("check_run", &event.compact().unwrap()).unwrap();
        let Event::CheckRun(e) = &again else {
            panic!("not a check run")
        };
        assert_eq!(e.action, CheckRunAction::Other("Brand_New_Action".into()));
        assert_eq!(
            e.check_run.conclusion,
            Some(Conclusion::Other("Unheard_Of".into()))
        );
        assert_eq!(again, event);
    }

    #[test]
    fn status_fixture() {
        let Event::Status(e) = fixture("status.payload.json") else {
            panic!("not a status")
        };
        assert_eq!(e.sha, sha("6113728f27ae82c7b1a177c8d03f9e96e0adf246"));
        assert_eq!(e.state, StatusState::Success);
        assert_eq!(e.context, "default");
        assert_eq!(e.target_url, None);
        assert_eq!(e.commit.sha, e.sha);
        assert_eq!(e.commit.commit.message, "Initial commit");
        assert_eq!(e.commit.commit.author.as_ref().unwrap().name, "Codertocat");
        let branches: Vec<_> = e.branches.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(branches, ["master", "changes", "gh-pages"]);
        assert_eq!(e.repository.full_name.as_str(), HELLO_WORLD);
        assert_eq!(e.repository.default_branch.as_str(), "master");
        assert_eq!(e.repository.owner.as_ref().unwrap().kind, Some(AccountType::User));
        assert!(!e.repository.private);
        assert_eq!(
            e.repository.clone_url,
            "https://github.com/Codertocat/Hello-World.git"
        );
        assert_eq!(Event::Status(e).action_str(), None);
    }

    #[test]
    fn check_run_fixture() {
        let event = fixture("check_run.completed.payload.json");
        assert_eq!(event.action_str(), Some("completed"));
        let Event::CheckRun(e) = event else {
            panic!("not a check_run")
        };
        assert_eq!(e.action, CheckRunAction::Completed);
        let run = &e.check_run;
        assert_eq!(run.name, "Octocoders-linter");
        assert_eq!(run.head_sha, sha(HEAD_SHA));
        assert_eq!(run.conclusion, Some(Conclusion::Success));
        assert!(run.succeeded());
        assert_eq!(run.check_suite.head_branch.as_ref().unwrap().as_str(), "changes");
        assert_eq!(run.pull_requests.len(), 1);
        assert_eq!(run.pull_requests[0].number, 2);
        assert_eq!(run.pull_requests[0].base.ref_name.as_str(), "master");
    }

    #[test]
    fn workflow_run_fixture() {
        let Event::WorkflowRun(e) = fixture("workflow_run.completed.payload.json") else {
            panic!("not a workflow_run")
        };
        assert_eq!(e.action, WorkflowRunAction::Completed);
        // The run's own name is empty here: the workflow object's name is the one to match.
        assert_eq!(e.workflow_name(), "test");
        assert_eq!(
            e.workflow_run.head_sha,
            sha("3484a3fb816e0859fd6e1cea078d76385ff50625")
        );
        assert_eq!(e.workflow_run.head_branch.as_ref().unwrap().as_str(), "master");
        assert_eq!(e.workflow_run.event, "repository_dispatch");
        assert!(e.workflow_run.succeeded());
        assert!(!e.is_from_fork());
        assert_eq!(
            e.repository.owner.as_ref().unwrap().kind,
            Some(AccountType::Organization)
        );
    }

    #[test]
    fn push_fixtures() {
        let Event::Push(tag) = fixture("push.payload.json") else {
            panic!("not a push")
        };
        assert_eq!(tag.ref_name, "refs/tags/simple-tag");
        assert_eq!(tag.tag().unwrap().as_str(), "simple-tag");
        assert_eq!(tag.branch(), None);
        assert!(tag.deleted);
        assert_eq!(tag.after, sha(&"0".repeat(40)));
        assert_eq!(tag.head_commit, None);

        let Event::Push(branch) = fixture("push.with-new-branch.payload.json") else {
            panic!("not a push")
        };
        assert_eq!(branch.branch().unwrap().as_str(), "master");
        assert_eq!(branch.tag(), None);
        assert!(branch.created && !branch.deleted);
        let head = branch.head_commit.as_ref().unwrap();
        assert_eq!(head.id, sha("6113728f27ae82c7b1a177c8d03f9e96e0adf246"));
        assert_eq!(head.message, "Initial commit");
        assert_eq!(head.author.username.as_deref(), Some("Codertocat"));
        assert_eq!(branch.pusher.name, "Codertocat");
        assert_eq!(Event::Push(branch).installation_id(), Some(1));
    }

    #[test]
    fn create_and_delete_fixtures() {
        let Event::Create(created) = fixture("create.payload.json") else {
            panic!("not a create")
        };
        assert_eq!(created.ref_type, RefType::Tag);
        assert_eq!(created.tag().unwrap().as_str(), "simple-tag");
        assert_eq!(created.branch(), None);

        let Event::Delete(deleted) = fixture("delete.payload.json") else {
            panic!("not a delete")
        };
        assert_eq!(deleted.tag().unwrap().as_str(), "simple-tag");
        assert_eq!(deleted.repository.full_name.as_str(), HELLO_WORLD);
    }

    #[test]
    fn pull_request_fixtures() {
        for (file, action) in [
            ("pull_request.opened.payload.json", PullRequestAction::Opened),
            (
                "pull_request.synchronize.payload.json",
                PullRequestAction::Synchronize,
            ),
            ("pull_request.closed.payload.json", PullRequestAction::Closed),
        ] {
            let Event::PullRequest(e) = fixture(file) else {
                panic!("{file}: not a pull_request")
            };
            assert_eq!(e.action, action, "{file}");
            assert_eq!(e.number, 2);
            let pr = &e.pull_request;
            assert_eq!(pr.head.ref_name.as_str(), "changes");
            assert_eq!(pr.head.sha, sha(HEAD_SHA));
            assert_eq!(pr.base.ref_name.as_str(), "master");
            assert_eq!(pr.base.sha, sha(BASE_SHA));
            assert_eq!(pr.head.repo.as_ref().unwrap().full_name.as_str(), HELLO_WORLD);
            assert!(!e.is_from_fork(), "{file}");
            // The closed fixture is a PR closed without merging.
            assert!(!pr.is_merged(), "{file}");
            assert_eq!(e.installation, Some(InstallationRef { id: 1 }));
        }
        let Event::PullRequest(closed) = fixture("pull_request.closed.payload.json") else {
            panic!("not a pull_request")
        };
        assert_eq!(closed.pull_request.state, PullRequestState::Closed);
        assert_eq!(
            closed.pull_request.merge_commit_sha,
            Some(sha("c4295bd74fb0f4fda03689c3df3f2803b658fd85"))
        );
    }

    #[test]
    fn pull_request_review_fixture() {
        let event = fixture("pull_request_review.submitted.payload.json");
        assert_eq!(event.action_str(), Some("submitted"));
        let Event::PullRequestReview(e) = event else {
            panic!("not a pull_request_review")
        };
        assert_eq!(e.review.state, ReviewState::Commented);
        assert_eq!(e.review.commit_id, sha(HEAD_SHA));
        assert_eq!(e.review.user.as_ref().unwrap().login, "Codertocat");
        assert!(e.review.submitted_at.is_some());
        assert_eq!(e.pull_request.number, 2);
        // This payload's pull request has no `merged` field at all.
        assert!(!e.pull_request.is_merged());
    }

    #[test]
    fn issue_comment_fixtures() {
        let Event::IssueComment(created) = fixture("issue_comment.created.payload.json") else {
            panic!("not an issue_comment")
        };
        assert_eq!(created.action, IssueCommentAction::Created);
        assert_eq!(
            created.comment.body,
            "You are totally right! I'll get this fixed right away."
        );
        assert_eq!(created.issue.number, 1);
        assert!(!created.is_on_pull_request());
        assert!(!created.comment.user.as_ref().unwrap().is_bot());

        let Event::IssueComment(edited) = fixture("issue_comment.edited.payload.json") else {
            panic!("not an issue_comment")
        };
        assert_eq!(edited.action, IssueCommentAction::Edited);
        assert_eq!(
            edited.comment.body,
            "You are totally right! I'll get this fixed today."
        );
    }

    #[test]
    fn installation_and_ping_fixtures() {
        let event = fixture("installation.created.payload.json");
        assert_eq!(event.installation_id(), Some(957387));
        let Event::Installation(e) = event else {
            panic!("not an installation")
        };
        assert_eq!(e.action, InstallationAction::Created);
        assert_eq!(
            e.installation.account.as_ref().unwrap().login.as_deref(),
            Some("Codertocat")
        );
        assert_eq!(e.installation.app_id, Some(29310));
        assert_eq!(e.repositories[0].full_name.as_str(), HELLO_WORLD);

        let event = fixture("ping.payload.json");
        assert_eq!(event.repo().unwrap().as_str(), "Octocoders/Hello-World");
        let Event::Ping(e) = event else {
            panic!("not a ping")
        };
        assert_eq!(e.hook_id, Some(109948940));
        assert!(e.zen.is_some());
    }

    #[test]
    fn unknown_actions_parse_to_other() {
        let mut v = fixture_json("pull_request.opened.payload.json");
        v["action"] = json!("auto_merge_enabled");
        let event = parse_value("pull_request", &v).unwrap();
        assert_eq!(event.action_str(), Some("auto_merge_enabled"));
        let Event::PullRequest(e) = event else {
            panic!("not a pull_request")
        };
        assert_eq!(e.action, PullRequestAction::Other("auto_merge_enabled".into()));

        let mut v = fixture_json("check_run.completed.payload.json");
        v["check_run"]["conclusion"] = json!("brand_new_conclusion");
        let Event::CheckRun(e) = parse_value("check_run", &v).unwrap() else {
            panic!("not a check_run")
        };
        assert!(!e.check_run.succeeded());
    }

    #[test]
    fn review_state_accepts_both_cases() {
        let mut v = fixture_json("pull_request_review.submitted.payload.json");
        for (wire, state) in [
            ("approved", ReviewState::Approved),
            ("APPROVED", ReviewState::Approved),
            ("CHANGES_REQUESTED", ReviewState::ChangesRequested),
            ("changes_requested", ReviewState::ChangesRequested),
            ("DISMISSED", ReviewState::Dismissed),
        ] {
            v["review"]["state"] = json!(wire);
            let Event::PullRequestReview(e) = parse_value("pull_request_review", &v).unwrap() else {
                panic!("not a review")
            };
            assert_eq!(e.review.state, state, "{wire}");
            assert_eq!(ReviewState::parse(wire), state);
        }
        assert_eq!(ReviewState::Approved.as_str(), "approved");
    }

    #[test]
    fn missing_field_names_its_path() {
        let mut v = fixture_json("pull_request.opened.payload.json");
        v["pull_request"]["head"].as_object_mut().unwrap().remove("sha");
        let err = parse_value("pull_request", &v).unwrap_err();
        assert_eq!(err.path(), Some("pull_request.head"));
        let msg = err.to_string();
        assert!(msg.contains("pull_request.head: missing field `sha`"), "{msg}");
        assert!(msg.starts_with("pull_request payload"), "{msg}");
    }

    #[test]
    fn wrong_type_names_its_path() {
        let mut v = fixture_json("status.payload.json");
        v["branches"][1]["name"] = json!(7);
        let err = parse_value("status", &v).unwrap_err();
        assert_eq!(err.path(), Some("branches[1].name"), "{err}");

        let mut v = fixture_json("issue_comment.created.payload.json");
        v["issue"]["number"] = json!("one");
        let err = parse_value("issue_comment", &v).unwrap_err();
        assert_eq!(err.path(), Some("issue.number"), "{err}");
    }

    #[test]
    fn invalid_names_are_refused_with_their_path() {
        let mut v = fixture_json("pull_request.synchronize.payload.json");
        v["pull_request"]["head"]["sha"] = json!("EC26C3E57CA3A959CA5AAD62DE7213C562F8C821");
        let msg = parse_value("pull_request", &v).unwrap_err().to_string();
        assert!(
            msg.contains("pull_request.head.sha: commit sha \"EC26C3E"),
            "{msg}"
        );

        let mut v = fixture_json("push.payload.json");
        v["repository"]["full_name"] = json!("../../etc");
        let err = parse_value("push", &v).unwrap_err();
        assert_eq!(err.path(), Some("repository.full_name"), "{err}");

        let mut v = fixture_json("status.payload.json");
        v["sha"] = json!("6113728");
        let err = parse_value("status", &v).unwrap_err();
        assert_eq!(err.path(), Some("sha"), "{err}");
    }

    #[test]
    fn extra_fields_are_ignored() {
        let mut v = fixture_json("push.with-new-branch.payload.json");
        v["brand_new_top_level"] = json!({"nested": [1, 2, 3]});
        v["repository"]["owner"]["new_flag"] = json!(true);
        v["head_commit"]["signature"] = json!(null);
        assert!(matches!(parse_value("push", &v), Ok(Event::Push(_))));
    }

    #[test]
    fn malformed_json_is_refused() {
        for (event, body) in [
            ("push", &b"{\"ref\": "[..]),
            ("push", b"not json"),
            ("ping", b"{} trailing"),
            ("ping", b""),
            // Unknown events are still checked to be JSON.
            ("sponsorship", b"{"),
        ] {
            let err = parse_event(event, body).unwrap_err();
            assert!(matches!(err, EventError::Malformed { .. }), "{err}");
            assert_eq!(err.path(), None);
        }
    }

    #[test]
    fn unknown_event_names_are_not_errors() {
        let event = parse_event("sponsorship", br#"{"action":"created"}"#).unwrap();
        assert_eq!(
            event,
            Event::Unknown {
                event: "sponsorship".into()
            }
        );
        assert_eq!(event.name(), "sponsorship");
        assert_eq!(event.repo(), None);
        assert_eq!(event.action_str(), None);
    }

    #[test]
    fn fork_detection() {
        let base = fixture_json("pull_request.opened.payload.json");

        let mut v = base.clone();
        v["pull_request"]["head"]["repo"] = Value::Null;
        let Event::PullRequest(e) = parse_value("pull_request", &v).unwrap() else {
            panic!("not a pull_request")
        };
        assert!(e.is_from_fork(), "deleted fork");

        let mut v = base;
        v["pull_request"]["head"]["repo"]["full_name"] = json!("mallory/Hello-World");
        let Event::PullRequest(e) = parse_value("pull_request", &v).unwrap() else {
            panic!("not a pull_request")
        };
        assert!(e.is_from_fork(), "other repository");
    }

    #[test]
    fn merged_pull_request() {
        let mut v = fixture_json("pull_request.closed.payload.json");
        v["pull_request"]["merged"] = json!(true);
        v["pull_request"]["merged_at"] = json!("2019-05-15T15:21:18Z");
        let Event::PullRequest(e) = parse_value("pull_request", &v).unwrap() else {
            panic!("not a pull_request")
        };
        assert!(e.pull_request.is_merged());
    }

    #[test]
    fn merged_is_read_from_merged_at_where_merged_is_null_or_absent() {
        let merged_at = json!("2019-05-15T15:21:18Z");
        for (merged, at, want) in [
            (Some(Value::Null), Value::Null, false),
            (None, Value::Null, false),
            (Some(Value::Null), merged_at.clone(), true),
            (None, merged_at.clone(), true),
            (Some(json!(true)), Value::Null, true),
            (Some(json!(false)), Value::Null, false),
        ] {
            let mut v = fixture_json("pull_request.synchronize.payload.json");
            let pr = v["pull_request"].as_object_mut().unwrap();
            match &merged {
                Some(m) => pr.insert("merged".into(), m.clone()),
                None => pr.remove("merged"),
            };
            pr.insert("merged_at".into(), at.clone());
            let Event::PullRequest(e) = parse_value("pull_request", &v).unwrap() else {
                panic!("not a pull_request")
            };
            assert_eq!(
                e.pull_request.is_merged(),
                want,
                "merged {merged:?}, merged_at {at}"
            );
        }
    }

    #[test]
    fn an_enterprise_installation_has_an_account_without_login() {
        let mut v = fixture_json("installation.created.payload.json");
        v["installation"]["account"] = json!({"id": 7, "slug": "acme-corp", "name": "Acme Corp"});
        let Event::Installation(e) = parse_value("installation", &v).unwrap() else {
            panic!("not an installation")
        };
        let account = e.installation.account.unwrap();
        assert_eq!((account.id, account.login, account.kind), (Some(7), None, None));
        v["installation"]["account"] = Value::Null;
        let Event::Installation(e) = parse_value("installation", &v).unwrap() else {
            panic!("not an installation")
        };
        assert_eq!(e.installation.account, None);
    }

    #[test]
    fn an_account_without_type_is_a_bot_only_by_its_login() {
        let mut v = fixture_json("issue_comment.created.payload.json");
        v["comment"]["user"].as_object_mut().unwrap().remove("type");
        let Event::IssueComment(e) = parse_value("issue_comment", &v).unwrap() else {
            panic!("not an issue_comment")
        };
        let user = e.comment.user.unwrap();
        assert_eq!(user.kind, None);
        assert!(!user.is_bot());
        v["comment"]["user"]["login"] = json!("auger[bot]");
        let Event::IssueComment(e) = parse_value("issue_comment", &v).unwrap() else {
            panic!("not an issue_comment")
        };
        assert!(e.comment.user.unwrap().is_bot());
    }

    #[test]
    fn comment_on_a_pull_request_by_a_bot() {
        let mut v = fixture_json("issue_comment.created.payload.json");
        v["issue"]["pull_request"] = json!({
            "url": "https://api.github.com/repos/Codertocat/Hello-World/pulls/1",
            "html_url": "https://github.com/Codertocat/Hello-World/pull/1"
        });
        v["comment"]["body"] = json!("/deploy staging");
        v["sender"]["type"] = json!("Bot");
        let event = parse_value("issue_comment", &v).unwrap();
        assert!(event.sender_is_bot());
        let Event::IssueComment(e) = event else {
            panic!("not an issue_comment")
        };
        assert!(e.is_on_pull_request());
        assert_eq!(e.comment.body, "/deploy staging");

        // An App's login ends in [bot] even when the type says otherwise.
        let account = Account {
            login: "auger[bot]".into(),
            id: 1,
            kind: Some(AccountType::User),
        };
        assert!(account.is_bot());
        let mut v = fixture_json("issue_comment.created.payload.json");
        v["sender"]["type"] = json!("Mannequin");
        let event = parse_value("issue_comment", &v).unwrap();
        assert_eq!(
            event.sender().unwrap().kind,
            Some(AccountType::Other("Mannequin".into()))
        );
        assert!(!event.sender_is_bot());
    }
}
