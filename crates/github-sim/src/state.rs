//! The simulator's in-memory model of GitHub: accounts, repositories and everything hanging off
//! them. Git content itself lives in the bare repositories (see `git.rs`); this holds the rest.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::git::BareRepo;

/// GitHub's account kinds, as they appear in the `type` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AccountKind {
    User,
    Bot,
    Organization,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::User => "User",
            AccountKind::Bot => "Bot",
            AccountKind::Organization => "Organization",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Account {
    pub id: u64,
    pub login: String,
    pub kind: AccountKind,
}

#[derive(Debug, Clone, Serialize)]
pub struct Team {
    pub id: u64,
    pub org: String,
    pub slug: String,
    pub name: String,
    pub members: Vec<String>,
}

/// Collaborator roles, ordered from least to most access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Role {
    Read,
    Triage,
    Write,
    Maintain,
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "read" | "pull" => Role::Read,
            "triage" => Role::Triage,
            "write" | "push" => Role::Write,
            "maintain" => Role::Maintain,
            "admin" => Role::Admin,
            _ => return None,
        })
    }

    /// The role's own name (`role_name` in the permission response).
    pub fn name(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Triage => "triage",
            Role::Write => "write",
            Role::Maintain => "maintain",
            Role::Admin => "admin",
        }
    }

    /// The legacy `permission` value GitHub still returns: admin, write or read.
    pub fn legacy(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Write | Role::Maintain => "write",
            Role::Read | Role::Triage => "read",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Review {
    pub id: u64,
    pub user: String,
    /// REST spelling: `APPROVED`, `CHANGES_REQUESTED`, `COMMENTED`.
    pub state: String,
    pub body: String,
    pub commit_id: String,
    pub submitted_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PullRequest {
    pub id: u64,
    pub number: u64,
    pub title: String,
    pub body: String,
    pub user: String,
    /// Full name of the repository holding the head branch (differs for fork PRs).
    pub head_repo: String,
    pub head_ref: String,
    pub head_sha: String,
    pub base_ref: String,
    /// Base tip when the PR was last updated; refreshed while open.
    pub base_sha: String,
    pub open: bool,
    pub draft: bool,
    pub merged: bool,
    pub merged_at: Option<DateTime<Utc>>,
    pub merged_by: Option<String>,
    pub merge_commit_sha: Option<String>,
    /// Test override for mergeability; `None` = computed by a trial merge.
    pub mergeable_override: Option<bool>,
    /// Reads of the pull request left that answer `mergeable: null` (GitHub's background job
    /// still running); reset to `GithubSim::set_mergeable_lag`'s value when the PR opens or its
    /// head or base moves.
    pub unknown_reads: u32,
    /// Base tip the head was last compared against (at open, or when mergeability was last
    /// computed). A merge attempted while mergeability is unknown and the base has moved past
    /// it answers 405 "Base branch was modified".
    pub compared_base_sha: String,
    /// Armed by the driver: the next merge attempt answers 405 "Base branch was modified" once.
    pub base_modified_once: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub reviews: Vec<Review>,
}

/// Classic branch protection on one branch: what a pull request into it needs before it merges.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Protection {
    /// Commit-status contexts or check-run names that must be green on the PR's head.
    pub required_status_checks: Vec<String>,
    /// "Require branches to be up to date before merging": the head must contain the base tip.
    pub strict: bool,
    /// Approvals (latest review per reviewer with write access) the PR needs; 0 to 6.
    pub required_approving_review_count: u32,
    /// Holds administrators to the rules too. Off (GitHub's default), repository admins merge
    /// through unmet requirements, as GitHub lets them.
    pub enforce_admins: bool,
}

impl PullRequest {
    /// GitHub starts computing mergeability again (the PR opened, reopened, or its head or base
    /// moved): the next `lag` reads answer `null`; with no lag the head is compared against
    /// `base_tip` at once.
    pub(crate) fn recompute_mergeability(&mut self, lag: u32, base_tip: &str) {
        self.unknown_reads = lag;
        if lag == 0 {
            self.compared_base_sha = base_tip.to_string();
        }
    }

    /// One read of the pull request while mergeability is unknown; the last one finishes the
    /// comparison against the current base.
    pub(crate) fn count_read(&mut self) {
        if self.open && self.unknown_reads > 0 {
            self.unknown_reads -= 1;
            if self.unknown_reads == 0 {
                self.compared_base_sha = self.base_sha.clone();
            }
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Reaction {
    pub id: u64,
    pub user: String,
    pub content: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IssueComment {
    pub id: u64,
    pub issue_number: u64,
    pub user: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub reactions: Vec<Reaction>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CommitStatus {
    pub id: u64,
    pub sha: String,
    pub state: String,
    pub context: String,
    pub description: Option<String>,
    pub target_url: Option<String>,
    pub creator: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckRun {
    pub id: u64,
    pub check_suite_id: u64,
    pub name: String,
    pub head_sha: String,
    /// The branch the sim associates with the run (for `check_suite.head_branch`).
    pub head_branch: Option<String>,
    pub status: String,
    pub conclusion: Option<String>,
    pub details_url: Option<String>,
    pub external_id: Option<String>,
    pub output_title: Option<String>,
    pub output_summary: Option<String>,
    pub output_text: Option<String>,
    pub started_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WorkflowRun {
    pub id: u64,
    pub workflow_id: u64,
    pub check_suite_id: u64,
    pub name: String,
    pub path: String,
    pub head_sha: String,
    pub head_branch: String,
    pub event: String,
    pub status: String,
    pub conclusion: Option<String>,
    pub run_number: u64,
    pub actor: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeploymentStatus {
    pub id: u64,
    pub state: String,
    pub description: String,
    pub environment: String,
    pub log_url: String,
    pub environment_url: String,
    pub creator: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Deployment {
    pub id: u64,
    pub sha: String,
    pub git_ref: String,
    pub task: String,
    pub environment: String,
    pub description: Option<String>,
    pub payload: serde_json::Value,
    pub production_environment: bool,
    pub transient_environment: bool,
    pub creator: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub statuses: Vec<DeploymentStatus>,
}

#[derive(Debug)]
pub struct Repo {
    pub id: u64,
    pub owner: String,
    pub name: String,
    pub git: BareRepo,
    pub default_branch: String,
    pub private: bool,
    /// Full name of the parent when this repository is a fork.
    pub fork_of: Option<String>,
    pub created_at: DateTime<Utc>,
    pub collaborators: BTreeMap<String, Role>,
    /// Issue/PR numbers share one sequence, as on GitHub.
    pub next_number: u64,
    pub pulls: Vec<PullRequest>,
    pub comments: Vec<IssueComment>,
    pub statuses: Vec<CommitStatus>,
    pub check_runs: Vec<CheckRun>,
    pub workflow_runs: Vec<WorkflowRun>,
    pub deployments: Vec<Deployment>,
    /// Protected branches by name.
    pub protections: BTreeMap<String, Protection>,
}

impl Repo {
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    pub fn pull(&self, number: u64) -> Option<&PullRequest> {
        self.pulls.iter().find(|p| p.number == number)
    }

    pub fn pull_mut(&mut self, number: u64) -> Option<&mut PullRequest> {
        self.pulls.iter_mut().find(|p| p.number == number)
    }
}

/// Who a request's credentials belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A personal access token of this login.
    User(String),
    /// An installation access token; acts as the app's bot user.
    Installation { id: u64, expires_at: DateTime<Utc> },
    /// A verified app JWT (only good for `/app…` routes).
    App,
}

/// The one GitHub App the simulator knows.
#[derive(Debug, Clone)]
pub struct AppInfo {
    pub id: u64,
    pub slug: String,
    /// The installation the simulator starts with ([`InstallTarget::Everywhere`]).
    pub installation_id: u64,
    /// Login of the bot account the app acts as (`<slug>[bot]`).
    pub bot_login: String,
}

/// Where an installation of the App lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallTarget {
    /// The installation the simulator starts with: every account no other installation is on.
    /// It shows the first organization (else the first user) as its account.
    Everywhere,
    /// A user or an organization, by login.
    Account(String),
    /// An enterprise: a slug and a name, no login; it holds no repositories itself.
    Enterprise { id: u64, slug: String },
}

/// One installation of the App. Deleting it removes it; installing again makes a new one with
/// a new id, as on GitHub.
#[derive(Debug, Clone)]
pub struct Installation {
    pub id: u64,
    pub target: InstallTarget,
    /// `None`: every repository of the account (`repository_selection: all`); else the
    /// selected ones, by full name.
    pub selected: Option<BTreeSet<String>>,
    pub suspended_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl Installation {
    /// Whether the installation reaches `repo` (a repository of its account).
    fn selects(&self, full_name: &str) -> bool {
        self.selected
            .as_ref()
            .is_none_or(|set| set.iter().any(|r| r.eq_ignore_ascii_case(full_name)))
    }

    /// The account login it is on, for user and organization installations.
    pub fn account_login(&self) -> Option<&str> {
        match &self.target {
            InstallTarget::Account(login) => Some(login),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub struct State {
    next_id: u64,
    pub accounts: BTreeMap<String, Account>,
    pub teams: Vec<Team>,
    pub repos: BTreeMap<String, Repo>,
    pub tokens: HashMap<String, Principal>,
    pub app: AppInfo,
    /// How many reads of a pull request answer `mergeable: null` after it opens or its head or
    /// base moves; 0 computes mergeability at once.
    pub mergeable_lag: u32,
    /// Live installations, oldest first.
    pub installations: Vec<Installation>,
    /// OAuth apps by client id (the web application flow, `crate::server::oauth`).
    pub oauth_apps: HashMap<String, OAuthApp>,
    /// Authorization codes handed out and not yet exchanged.
    pub oauth_codes: HashMap<String, OAuthCode>,
}

/// An OAuth app: its secret and the callback URL it registered.
#[derive(Debug, Clone)]
pub struct OAuthApp {
    pub secret: String,
    pub callback_url: String,
}

/// A code from the authorize step: whose it is, for which redirect and until when (GitHub's
/// codes expire after ten minutes and work once).
#[derive(Debug, Clone)]
pub struct OAuthCode {
    pub client_id: String,
    pub login: String,
    pub redirect_uri: String,
    pub expires_at: DateTime<Utc>,
}

impl State {
    pub fn new(app: AppInfo) -> Self {
        State {
            next_id: 1000,
            accounts: BTreeMap::new(),
            teams: Vec::new(),
            repos: BTreeMap::new(),
            tokens: HashMap::new(),
            installations: vec![Installation {
                id: app.installation_id,
                target: InstallTarget::Everywhere,
                selected: None,
                suspended_at: None,
                created_at: Utc::now(),
            }],
            app,
            mergeable_lag: 0,
            oauth_apps: HashMap::new(),
            oauth_codes: HashMap::new(),
        }
    }

    pub fn installation(&self, id: u64) -> Option<&Installation> {
        self.installations.iter().find(|i| i.id == id)
    }

    pub fn installation_mut(&mut self, id: u64) -> Option<&mut Installation> {
        self.installations.iter_mut().find(|i| i.id == id)
    }

    /// The installation that reaches `repo`: one on its owner's account if there is any (then
    /// only if it selects the repository), else the installation the simulator started with.
    pub fn installation_of(&self, repo: &Repo) -> Option<&Installation> {
        let full_name = repo.full_name();
        let on_owner = |i: &&Installation| {
            i.account_login()
                .is_some_and(|a| a.eq_ignore_ascii_case(&repo.owner))
        };
        if self.installations.iter().any(|i| on_owner(&i)) {
            return self
                .installations
                .iter()
                .filter(on_owner)
                .find(|i| i.selects(&full_name));
        }
        self.installations
            .iter()
            .find(|i| i.target == InstallTarget::Everywhere && i.selects(&full_name))
    }

    /// A fresh id; one sequence for every kind of object keeps ids unique and ordered.
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn account(&self, login: &str) -> Option<&Account> {
        self.accounts.get(login)
    }

    /// Returns the account, creating a `User` for unknown logins (tests rarely care to declare
    /// every committer).
    pub fn ensure_account(&mut self, login: &str, kind: AccountKind) -> Account {
        if let Some(a) = self.accounts.get(login) {
            return a.clone();
        }
        let id = self.next_id();
        let account = Account {
            id,
            login: login.to_string(),
            kind,
        };
        self.accounts.insert(login.to_string(), account.clone());
        account
    }

    pub fn repo(&self, full_name: &str) -> Option<&Repo> {
        self.repos.get(full_name)
    }

    pub fn repo_mut(&mut self, full_name: &str) -> Option<&mut Repo> {
        self.repos.get_mut(full_name)
    }

    /// Effective role of `login` on a repository: owner, org team-less collaborator map, or none.
    pub fn role(&self, repo: &Repo, login: &str) -> Option<Role> {
        if repo.owner == login {
            return Some(Role::Admin);
        }
        if login == self.app.bot_login {
            return Some(Role::Write);
        }
        repo.collaborators.get(login).copied()
    }

    pub fn team(&self, org: &str, slug: &str) -> Option<&Team> {
        self.teams.iter().find(|t| t.org == org && t.slug == slug)
    }

    /// The login a principal acts as.
    pub fn principal_login(&self, p: &Principal) -> Option<String> {
        match p {
            Principal::User(login) => Some(login.clone()),
            Principal::Installation { .. } => Some(self.app.bot_login.clone()),
            Principal::App => None,
        }
    }
}
