//! The webhook events auger reads, as small serde structs holding only the fields it uses.
//!
//! Unknown fields are ignored (GitHub adds fields all the time), but fields whose shape GitHub
//! guarantees are validated while parsing (`CommitSha`, `RepoName`, `BranchName`), so a worker
//! never sees a malformed sha or repository name, and a refusal names the JSON path at fault.
//! Enumerated strings (actions, states) fall back to `Other(..)` so new values GitHub invents
//! parse and are ignored later instead of failing the delivery (design §10).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Deserializer};

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
    };
}

// ---------------------------------------------------------------------------------------------
// Shared pieces
// ---------------------------------------------------------------------------------------------

wire_enum! {
    /// What kind of GitHub account.
    pub enum AccountType {
        User = "User",
        Bot = "Bot",
        Organization = "Organization",
    }
}

/// A user, bot or organization.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Account {
    pub login: String,
    pub id: u64,
    #[serde(rename = "type")]
    pub kind: AccountType,
}

impl Account {
    /// Bots never issue commands (design §8). GitHub Apps act as `Bot` accounts named `x[bot]`;
    /// the login check also covers payloads that label them otherwise.
    pub fn is_bot(&self) -> bool {
        self.kind == AccountType::Bot || self.login.ends_with("[bot]")
    }
}

/// A repository as webhooks describe it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Repository {
    pub id: u64,
    pub full_name: RepoName,
    pub clone_url: String,
    pub html_url: String,
    pub default_branch: BranchName,
    pub private: bool,
    pub owner: Account,
}

/// The GitHub App installation a delivery belongs to (present for App webhooks); needed to
/// mint an installation token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct InstallationRef {
    pub id: u64,
}

/// Name and e-mail of a git author or committer (not necessarily a GitHub account).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GitIdentity {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    /// The GitHub login, when GitHub could match the e-mail (push payloads only).
    #[serde(default)]
    pub username: Option<String>,
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
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StatusCommit {
    pub sha: CommitSha,
    #[serde(default)]
    pub html_url: Option<String>,
    pub commit: CommitDetails,
    /// The GitHub account of the author, when GitHub could match it.
    #[serde(default)]
    pub author: Option<Account>,
}

/// The git part of a commit: message and author.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CommitDetails {
    pub message: String,
    #[serde(default)]
    pub author: Option<GitIdentity>,
}

/// A branch listed on a status event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StatusBranch {
    pub name: BranchName,
    pub commit: ShaRef,
}

/// `{ "sha": … }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ShaRef {
    pub sha: CommitSha,
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
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CheckRunEvent {
    pub action: CheckRunAction,
    pub check_run: CheckRun,
    pub repository: Repository,
    pub sender: Account,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CheckSuite {
    pub id: u64,
    /// Null when the suite ran for a tag or a fork.
    #[serde(default)]
    pub head_branch: Option<BranchName>,
}

/// The short pull-request form inside check and workflow runs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PullRequestRef {
    pub id: u64,
    pub number: u64,
    pub head: RunPullRequestBranch,
    pub base: RunPullRequestBranch,
}

/// A head or base inside [`PullRequestRef`]; its repo has no `full_name`, only id and name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RunPullRequestBranch {
    #[serde(rename = "ref")]
    pub ref_name: BranchName,
    pub sha: CommitSha,
    pub repo: ShortRepository,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Workflow {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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
}

impl WorkflowRun {
    /// Completed with conclusion `success`.
    pub fn succeeded(&self) -> bool {
        self.status == RunStatus::Completed && self.conclusion == Some(Conclusion::Success)
    }
}

/// The repository a run's code came from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RunRepository {
    pub id: u64,
    pub full_name: RepoName,
}

// ---------------------------------------------------------------------------------------------
// push, create, delete
// ---------------------------------------------------------------------------------------------

/// `push`: commits (or a deletion) pushed to a branch or tag.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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
    pub sender: Account,
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
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PushCommit {
    pub id: CommitSha,
    pub message: String,
    #[serde(default)]
    pub url: Option<String>,
    pub author: GitIdentity,
}

/// Who pushed: a git identity, not an account.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PullRequestEvent {
    pub action: PullRequestAction,
    pub number: u64,
    pub pull_request: PullRequest,
    pub repository: Repository,
    pub sender: Account,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

impl PullRequestEvent {
    /// See [`PullRequest::is_from_fork`].
    pub fn is_from_fork(&self) -> bool {
        self.pull_request.is_from_fork()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PullRequest {
    pub id: u64,
    pub number: u64,
    pub state: PullRequestState,
    pub title: String,
    #[serde(default)]
    pub body: Option<String>,
    pub html_url: String,
    pub user: Account,
    #[serde(default)]
    pub draft: bool,
    /// Absent from some payloads (e.g. `pull_request_review`); see [`PullRequest::is_merged`].
    #[serde(default)]
    pub merged: bool,
    #[serde(default)]
    pub merged_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub merge_commit_sha: Option<CommitSha>,
    pub head: PullRequestBranch,
    pub base: PullRequestBranch,
}

impl PullRequest {
    /// Merged, judged by `merged` or, where that field is missing, `merged_at`.
    pub fn is_merged(&self) -> bool {
        self.merged || self.merged_at.is_some()
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
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PullRequestReviewEvent {
    pub action: ReviewAction,
    pub review: Review,
    pub pull_request: PullRequest,
    pub repository: Repository,
    pub sender: Account,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Review {
    pub id: u64,
    pub user: Account,
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
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IssuePullRequestLinks {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub html_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Comment {
    pub id: u64,
    pub body: String,
    pub user: Account,
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
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct InstallationEvent {
    pub action: InstallationAction,
    pub installation: Installation,
    /// The repositories granted, on `created` (absent otherwise).
    #[serde(default)]
    pub repositories: Vec<InstallationRepository>,
    pub sender: Account,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Installation {
    pub id: u64,
    pub account: Account,
    #[serde(default)]
    pub app_id: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct InstallationRepository {
    pub id: u64,
    pub full_name: RepoName,
    #[serde(default)]
    pub private: bool,
}

/// `ping`: sent when a webhook is created. Repository and sender are absent for App-level hooks.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
            Event::Installation(_) | Event::Unknown { .. } => None,
        }
    }

    /// `owner/name` of [`Event::repository`].
    pub fn repo(&self) -> Option<&RepoName> {
        self.repository().map(|r| &r.full_name)
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
            Event::Push(e) => Some(&e.sender),
            Event::Create(e) | Event::Delete(e) => Some(&e.sender),
            Event::PullRequest(e) => Some(&e.sender),
            Event::PullRequestReview(e) => Some(&e.sender),
            Event::IssueComment(e) => Some(&e.sender),
            Event::Installation(e) => Some(&e.sender),
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
pub fn parse_event(event_name: &str, body: &[u8]) -> Result<Event, EventError> {
    let event = match event_name {
        "status" => Event::Status(parse_body(event_name, body)?),
        "check_run" => Event::CheckRun(parse_body(event_name, body)?),
        "workflow_run" => Event::WorkflowRun(parse_body(event_name, body)?),
        "push" => Event::Push(parse_body(event_name, body)?),
        "create" => Event::Create(parse_body(event_name, body)?),
        "delete" => Event::Delete(parse_body(event_name, body)?),
        "pull_request" => Event::PullRequest(parse_body(event_name, body)?),
        "pull_request_review" => Event::PullRequestReview(parse_body(event_name, body)?),
        "issue_comment" => Event::IssueComment(parse_body(event_name, body)?),
        "installation" => Event::Installation(parse_body(event_name, body)?),
        "ping" => Event::Ping(parse_body(event_name, body)?),
        _ => {
            parse_body::<IgnoredAny>(event_name, body)?;
            Event::Unknown {
                event: event_name.to_owned(),
            }
        }
    };
    Ok(event)
}

fn parse_body<T: DeserializeOwned>(event: &str, body: &[u8]) -> Result<Box<T>, EventError> {
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
