//! Typed work: what one accepted delivery or API call asks auger to do.
//!
//! The edge decides once, with the policies, what a verified GitHub delivery means
//! ([`classify`]); the API builds the same values. The inbox stores [`Work`] (versioned serde,
//! [`encode`] / [`decode`]), so the worker dispatches on a type and never looks at
//! GitHub-shaped JSON again.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::artifact::intake::{self, Build};
use crate::artifact::{Artifact, ArtifactId};
use crate::command::{ParseOutcome, parse_comment};
use crate::domain::{AppName, BranchName, CommitSha, EnvName, RepoName, TagName};
use crate::gitops::Trigger;
use crate::policy::PolicySet;
use crate::verify::{Controller, Health, Report, Revision};
use crate::webhook::events::{
    CheckRun, CheckRunAction, Conclusion, Event, IssueCommentAction, PullRequestAction, PullRequestEvent,
    ReviewAction, RunStatus, StatusEvent, StatusState, parse_event,
};

/// The inbox kind of an entry written as [`Work`] starts with this, followed by where the work
/// came from (the GitHub event name, or `api`), which logs show. Entries with any other kind
/// were written by an earlier version of auger and are read through [`decode`]'s legacy path.
pub const INBOX_KIND_PREFIX: &str = "work:";

/// The inbox kind for work that came from `source` (a GitHub event name, or `api`).
pub fn inbox_kind(source: &str) -> std::borrow::Cow<'static, str> {
    // The kinds work comes from, spelled out so the edge's hot path allocates nothing here.
    const KNOWN: [&str; 11] = [
        "work:status",
        "work:check_run",
        "work:workflow_run",
        "work:push",
        "work:pull_request",
        "work:pull_request_review",
        "work:issue_comment",
        "work:delete",
        "work:api",
        "work:flux",
        "work:argocd",
    ];
    match KNOWN.iter().find(|k| &k[INBOX_KIND_PREFIX.len()..] == source) {
        Some(k) => std::borrow::Cow::Borrowed(k),
        None => std::borrow::Cow::Owned(format!("{INBOX_KIND_PREFIX}{source}")),
    }
}

/// Where the work in an entry of this inbox kind came from, for logs: the GitHub event name,
/// `api`, or the kind itself for an entry an earlier auger wrote.
pub fn source_of(kind: &str) -> &str {
    kind.strip_prefix(INBOX_KIND_PREFIX).unwrap_or(kind)
}

/// The stored format's version; bump it with a migration when [`Work`] changes incompatibly.
const VERSION: u32 = 1;

/// One unit of work for the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Work {
    /// A green CI signal that policies name: the apps it built (`handlers::ci_signal`).
    Build(Build),
    /// A tag pushed onto commits that may already be artifacts (`handlers::tag`).
    Tag(Tagged),
    /// A pull request of an app's repository moved or closed (`handlers::pull_request`).
    PullRequest(PullRequestChange),
    /// A branch of an app's repository with previews was deleted (`handlers::pull_request`).
    BranchDeleted(BranchDeleted),
    /// A review on a release pull request of the gitops repository (`handlers::review`).
    ReleaseReview(ReleasePull),
    /// A release pull request was closed or merged (`handlers::review`).
    ReleasePullClosed(ReleasePull),
    /// A check or status settled on a commit of the gitops repository: a release pull request
    /// may have what branch protection waited for (`handlers::review`).
    GitopsChecked,
    /// A comment on an app's pull request that holds a command (`handlers::comment`).
    Comment(PullRequestComment),
    /// An artifact recorded through the API, whose automatic releases are still to be decided
    /// (`handlers::api_artifact`).
    ApiArtifact(Box<ArtifactRecorded>),
    /// An ad hoc release asked through the API or the CLI (`handlers::api_release`).
    Release(ReleaseRequest),
    /// A rollback asked through the API (`handlers::rollback`).
    Rollback(RollbackRequest),
    /// A deploy, rollback, hold or resume a logged-in person asked for on the dashboard
    /// (`handlers::dashboard`).
    Dashboard(DashboardAction),
    /// An installation of the App was created, deleted, suspended or given other repositories
    /// (`handlers::installation`).
    Installation(InstallationChange),
    /// A controller reported on the gitops repository: Flux or Argo CD through their own routes
    /// (`handlers::report`). Stored under the inbox kind `work:flux` or `work:argocd`.
    Report(crate::verify::Report),
    /// The config repository's policy branch moved: load the policies at its tip
    /// (`handlers::policies`).
    PoliciesPushed(PoliciesPushed),
}

impl Work {
    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Work::Build(_) => "build",
            Work::Tag(_) => "tag",
            Work::PullRequest(_) => "pull_request",
            Work::BranchDeleted(_) => "branch_deleted",
            Work::ReleaseReview(_) => "release_review",
            Work::ReleasePullClosed(_) => "release_pull_closed",
            Work::GitopsChecked => "gitops_checked",
            Work::Comment(_) => "comment",
            Work::ApiArtifact(_) => "api_artifact",
            Work::Release(_) => "release",
            Work::Rollback(_) => "rollback",
            Work::Dashboard(_) => "dashboard",
            Work::Installation(_) => "installation",
            Work::Report(_) => "report",
            Work::PoliciesPushed(_) => "policies_pushed",
        }
    }

    /// The repository this work is about, for log spans.
    pub fn repo(&self) -> Option<&RepoName> {
        match self {
            Work::Build(b) => Some(&b.facts.repo),
            Work::Tag(t) => t.tags.first().map(|t| &t.repo),
            Work::PullRequest(p) => Some(&p.repo),
            Work::BranchDeleted(b) => Some(&b.repo),
            Work::Comment(c) => Some(&c.repo),
            Work::ApiArtifact(a) => Some(&a.incoming.repo),
            Work::ReleaseReview(p) | Work::ReleasePullClosed(p) => p.repo.as_ref(),
            Work::GitopsChecked
            | Work::Release(_)
            | Work::Rollback(_)
            | Work::Dashboard(_)
            | Work::Installation(_)
            | Work::Report(_) => None,
            Work::PoliciesPushed(p) => Some(&p.repo),
        }
    }

    /// The pull request this work is about, for log spans.
    pub fn pull_number(&self) -> Option<u64> {
        match self {
            Work::PullRequest(p) => Some(p.number),
            Work::ReleaseReview(p) | Work::ReleasePullClosed(p) => Some(p.number),
            Work::Comment(c) => Some(c.number),
            _ => None,
        }
    }
}

/// Tags to add to artifacts that already exist: a tag never creates a build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tagged {
    pub tags: Vec<TagFact>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TagFact {
    pub app: AppName,
    pub repo: RepoName,
    pub sha: CommitSha,
    pub tag: TagName,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PullRequestChange {
    pub repo: RepoName,
    pub number: u64,
    pub change: PullChange,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PullChange {
    /// Opened, reopened or pushed to: `sha` is the head since `at` (GitHub's `updated_at`,
    /// which the schema allows to be absent).
    HeadMoved {
        sha: CommitSha,
        at: Option<DateTime<Utc>>,
    },
    Closed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BranchDeleted {
    pub repo: RepoName,
    pub branch: BranchName,
}

/// A pull request of a gitops repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleasePull {
    pub number: u64,
    /// Which gitops repository; absent in entries an auger with one gitops repository stored
    /// (then it is the default one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<RepoName>,
}

/// A comment on a pull request, by a person, that holds at least one command line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PullRequestComment {
    pub repo: RepoName,
    pub number: u64,
    pub comment_id: u64,
    pub author: String,
    pub author_id: u64,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

/// The facts one `POST /api/v1/artifacts` call brought.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactRecorded {
    pub incoming: Artifact,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseRequest {
    pub app: AppName,
    pub env: EnvName,
    pub artifact: ArtifactId,
    pub trigger: Trigger,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackRequest {
    pub app: AppName,
    pub env: EnvName,
    pub to: Option<ArtifactId>,
    /// Who asked (`api <token name>`).
    pub by: String,
}

/// A push to the config repository's policy branch (`[policies] repo` and `branch`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoliciesPushed {
    pub repo: RepoName,
    /// The commit the branch moved to.
    pub sha: CommitSha,
}

/// What a person asked for on the dashboard, and who: the GitHub account the session names
/// (checked again against `deployers` when the worker runs it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DashboardAction {
    pub login: String,
    pub user_id: u64,
    pub app: AppName,
    pub env: EnvName,
    pub action: DashboardVerb,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verb", rename_all = "snake_case")]
pub enum DashboardVerb {
    Deploy {
        artifact: ArtifactId,
    },
    /// To `to`, or to the release before the current one.
    Rollback {
        to: Option<ArtifactId>,
    },
    Hold,
    Resume,
}

impl DashboardVerb {
    pub fn as_str(&self) -> &'static str {
        match self {
            DashboardVerb::Deploy { .. } => "deploy",
            DashboardVerb::Rollback { .. } => "rollback",
            DashboardVerb::Hold => "hold",
            DashboardVerb::Resume => "resume",
        }
    }
}

/// An installation of the App changed (`installation` or `installation_repositories`): which
/// installation acts where is to be asked again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstallationChange {
    pub installation_id: u64,
    /// The event's action (`created`, `deleted`, `added`, …), for logs.
    pub action: String,
}

/// What the edge needs to know besides the policies: which repositories are gitops ones.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub policies: &'a PolicySet,
    /// Every gitops repository releases go to (none without `[gitops]`).
    pub gitops_repos: &'a [RepoName],
    /// The config repository and branch whose pushes reload the policies (`[policies]`).
    pub config_repo: Option<(&'a RepoName, &'a BranchName)>,
}

/// Whether some env verifies its releases by statuses (or check runs) named like `context`
/// on the gitops commit (design §15: Flux's `github` provider, Argo CD's `github` service).
fn verifies_by_status(policies: &PolicySet, context: &str) -> bool {
    policies.iter().any(|p| {
        p.envs()
            .filter_map(|(_, rules)| rules.verify.as_ref())
            .any(|v| v.by.hears(Controller::Status, context))
    })
}

/// A commit status on the gitops commit as a controller report: success is healthy, failure
/// and error failed, pending applying.
fn status_report(s: &StatusEvent) -> Report {
    let repo = Some(s.repository.full_name.clone());
    let health = match s.state {
        StatusState::Success => Health::Healthy,
        StatusState::Failure | StatusState::Error => Health::Failed,
        _ => Health::Progressing,
    };
    Report {
        controller: Controller::Status,
        object: s.context.clone(),
        kind: None,
        namespace: None,
        revision: Revision::hex(s.sha.as_str()),
        health,
        reason: s.state.as_str().to_owned(),
        message: s.description.clone().unwrap_or_default(),
        at: None,
        repo,
    }
}

/// A check run on the gitops commit as a controller report; `None` for conclusions that say
/// nothing about health (neutral, skipped, stale).
fn check_run_report(run: &CheckRun, repo: &RepoName) -> Option<Report> {
    let health = match (&run.status, &run.conclusion) {
        (RunStatus::Completed, Some(Conclusion::Success)) => Health::Healthy,
        (RunStatus::Completed, Some(Conclusion::Neutral | Conclusion::Skipped | Conclusion::Stale)) => {
            return None;
        }
        (RunStatus::Completed, _) => Health::Failed,
        _ => Health::Progressing,
    };
    let reason = match &run.conclusion {
        Some(c) => c.as_str().to_owned(),
        None => run.status.as_str().to_owned(),
    };
    Some(Report {
        controller: Controller::Status,
        object: run.name.clone(),
        kind: None,
        namespace: None,
        revision: Revision::hex(run.head_sha.as_str()),
        health,
        message: format!("check run {} {reason}", run.name),
        reason,
        at: None,
        repo: Some(repo.clone()),
    })
}

impl Scope<'_> {
    fn is_gitops(&self, repo: &RepoName) -> bool {
        self.gitops_repos
            .iter()
            .any(|g| g.as_str().eq_ignore_ascii_case(repo.as_str()))
    }

    /// A push that moved the config repository's policy branch (not one that deleted it).
    fn policies_pushed(&self, push: &crate::webhook::events::PushEvent) -> Option<PoliciesPushed> {
        let (repo, branch) = self.config_repo?;
        let same_repo = push
            .repository
            .full_name
            .as_str()
            .eq_ignore_ascii_case(repo.as_str());
        let moved = !push.deleted && push.after.as_str().bytes().any(|b| b != b'0');
        (same_repo && moved && push.branch().as_ref() == Some(branch)).then(|| PoliciesPushed {
            repo: repo.clone(),
            sha: push.after.clone(),
        })
    }

    fn has_apps(&self, repo: &RepoName) -> bool {
        self.policies.for_repo(repo).next().is_some()
    }
}

/// Why a verified delivery asks nothing of auger; it is answered "ignored" without touching the
/// disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// Nothing in it concerns auger (the usual case).
    NotWanted,
    /// A review or command comment that would be work, but GitHub sent it without its author
    /// (the schema lets `user` be null): nobody's authority can be checked, so it counts for
    /// nothing. The edge logs it; the value names what came without an author.
    NoAuthor(&'static str),
}

/// What a verified delivery asks auger to do, or why it asks nothing. Pure: the same event and
/// policies always give the same answer.
pub fn classify(event: &Event, scope: Scope<'_>) -> Result<Work, Ignored> {
    match event {
        Event::Status(s) if scope.is_gitops(&s.repository.full_name) => {
            if verifies_by_status(scope.policies, &s.context) {
                return Ok(Work::Report(status_report(s)));
            }
            match s.state {
                StatusState::Pending => Err(Ignored::NotWanted),
                _ => Ok(Work::GitopsChecked),
            }
        }
        Event::CheckRun(c) if scope.is_gitops(&c.repository.full_name) => {
            if verifies_by_status(scope.policies, &c.check_run.name) {
                return check_run_report(&c.check_run, &c.repository.full_name)
                    .map(Work::Report)
                    .ok_or(Ignored::NotWanted);
            }
            match c.action {
                CheckRunAction::Completed => Ok(Work::GitopsChecked),
                _ => Err(Ignored::NotWanted),
            }
        }
        Event::Push(p) if let Some(pushed) = scope.policies_pushed(p) => Ok(Work::PoliciesPushed(pushed)),
        Event::Status(_) | Event::CheckRun(_) | Event::WorkflowRun(_) | Event::Push(_) => {
            let wanted = intake::from_event(event, scope.policies);
            if let Some(build) = wanted.build {
                Ok(Work::Build(build))
            } else if !wanted.tags.is_empty() {
                let repo = event.repo().ok_or(Ignored::NotWanted)?.clone();
                let tags = wanted
                    .tags
                    .into_iter()
                    .map(|(app, sha, tag)| TagFact {
                        app,
                        repo: repo.clone(),
                        sha,
                        tag,
                    })
                    .collect();
                Ok(Work::Tag(Tagged { tags }))
            } else {
                Err(Ignored::NotWanted)
            }
        }
        Event::PullRequest(e) => pull_request(e, scope),
        Event::Installation(e) => Ok(Work::Installation(InstallationChange {
            installation_id: e.installation.id,
            action: e.action.as_str().to_owned(),
        })),
        Event::InstallationRepositories(e) => Ok(Work::Installation(InstallationChange {
            installation_id: e.installation.id,
            action: e.action.as_str().to_owned(),
        })),
        Event::PullRequestReview(e)
            if scope.is_gitops(&e.repository.full_name)
                && matches!(e.action, ReviewAction::Submitted | ReviewAction::Dismissed) =>
        {
            if e.review.user.is_none() {
                return Err(Ignored::NoAuthor("review"));
            }
            Ok(Work::ReleaseReview(ReleasePull {
                number: e.pull_request.number,
                repo: Some(e.repository.full_name.clone()),
            }))
        }
        Event::Delete(e) => {
            let repo = &e.repository.full_name;
            let branch = e.branch().ok_or(Ignored::NotWanted)?;
            if !scope.policies.for_repo(repo).any(|p| p.preview().is_some()) {
                return Err(Ignored::NotWanted);
            }
            Ok(Work::BranchDeleted(BranchDeleted {
                repo: repo.clone(),
                branch,
            }))
        }
        Event::IssueComment(e)
            if e.action == IssueCommentAction::Created
                && e.is_on_pull_request()
                && scope.has_apps(&e.repository.full_name)
                && parse_comment(&e.comment.body) != ParseOutcome::NoCommand =>
        {
            let user = e.comment.user.as_ref().ok_or(Ignored::NoAuthor("comment"))?;
            if user.is_bot() {
                return Err(Ignored::NotWanted);
            }
            Ok(Work::Comment(PullRequestComment {
                repo: e.repository.full_name.clone(),
                number: e.issue.number,
                comment_id: e.comment.id,
                author: user.login.clone(),
                author_id: user.id,
                body: e.comment.body.clone(),
                created_at: e.comment.created_at,
            }))
        }
        _ => Err(Ignored::NotWanted),
    }
}

fn pull_request(e: &PullRequestEvent, scope: Scope<'_>) -> Result<Work, Ignored> {
    let repo = &e.repository.full_name;
    if e.action == PullRequestAction::Closed && scope.is_gitops(repo) {
        return Ok(Work::ReleasePullClosed(ReleasePull {
            number: e.number,
            repo: Some(repo.clone()),
        }));
    }
    if !scope.has_apps(repo) {
        return Err(Ignored::NotWanted);
    }
    let change = match e.action {
        PullRequestAction::Opened | PullRequestAction::Reopened | PullRequestAction::Synchronize => {
            PullChange::HeadMoved {
                sha: e.pull_request.head.sha.clone(),
                at: e.pull_request.updated_at,
            }
        }
        PullRequestAction::Closed => PullChange::Closed,
        _ => return Err(Ignored::NotWanted),
    };
    Ok(Work::PullRequest(PullRequestChange {
        repo: repo.clone(),
        number: e.number,
        change,
    }))
}

#[derive(Serialize)]
struct StoredRef<'a> {
    v: u32,
    work: &'a Work,
}

#[derive(Deserialize)]
struct Stored {
    v: u32,
    work: Work,
}

/// The bytes the inbox stores for `work` (under an [`inbox_kind`]).
pub fn encode(work: &Work) -> Vec<u8> {
    // Most work is a few hundred bytes: one allocation instead of growing from serde_json's 128.
    let mut out = Vec::with_capacity(1024);
    // Serializing owned strings and numbers into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, &StoredRef { v: VERSION, work });
    out
}

/// Why a stored entry could not be read back as work.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("stored work has version {0}, this auger reads version {VERSION}")]
    Version(u32),
    #[error("stored work is not readable: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("stored delivery: {0}")]
    Event(#[from] crate::webhook::EventError),
}

/// Reads an inbox entry back. Entries of an [`inbox_kind`] are [`Work`]; entries an earlier
/// auger wrote (a GitHub event name with the payload members it kept, or one of its
/// `auger.release` / `auger.artifact` / `auger.rollback` requests) are classified now, so an
/// upgrade replays what the old version accepted. `Ok(None)`: nothing to do for it.
pub fn decode(kind: &str, body: &[u8], scope: Scope<'_>) -> Result<Option<Work>, DecodeError> {
    match kind {
        _ if kind.starts_with(INBOX_KIND_PREFIX) => {
            let stored: Stored = serde_json::from_slice(body)?;
            if stored.v != VERSION {
                return Err(DecodeError::Version(stored.v));
            }
            Ok(Some(stored.work))
        }
        "auger.release" => Ok(Some(Work::Release(serde_json::from_slice(body)?))),
        "auger.artifact" => Ok(Some(Work::ApiArtifact(Box::new(serde_json::from_slice(body)?)))),
        "auger.rollback" => Ok(Some(Work::Rollback(serde_json::from_slice(body)?))),
        event => Ok(classify(&parse_event(event, body)?, scope).ok()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::policy::Policy;

    const REPO: &str = "Codertocat/Hello-World";
    const GITOPS: &str = "acme/gitops";

    fn fixture(name: &str) -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/webhooks")
            .join(name);
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    fn event(name: &str, v: &Value) -> Event {
        parse_event(name, &serde_json::to_vec(v).unwrap()).unwrap()
    }

    /// The fixtures' repository with status and check-run signals, and previews when asked.
    fn policies(preview: bool) -> PolicySet {
        let mut text = format!(
            "app = \"hello\"\nrepo = \"{REPO}\"\ntemplate = \"t\"\n[artifact]\nsignals = [\"status:default\"]\n"
        );
        if preview {
            text.push_str("[preview]\nenv = \"preview\"\n");
        }
        PolicySet::from_policies([Policy::from_toml("policies/hello.toml", &text).unwrap()]).unwrap()
    }

    fn classify_with(policies: &PolicySet, name: &str, v: &Value) -> Option<Work> {
        classify_why(policies, name, v).ok()
    }

    fn classify_why(policies: &PolicySet, name: &str, v: &Value) -> Result<Work, Ignored> {
        let gitops = [RepoName::new(GITOPS).unwrap()];
        classify(
            &event(name, v),
            Scope {
                policies,
                gitops_repos: &gitops,
                config_repo: None,
            },
        )
    }

    #[test]
    fn a_green_status_a_policy_names_is_a_build() {
        let got = classify_with(&policies(false), "status", &fixture("status.payload.json"));
        let Some(Work::Build(b)) = got else {
            panic!("{got:?}")
        };
        assert_eq!(b.apps, [AppName::new("hello").unwrap()]);
        assert_eq!(b.facts.source.name, "default");
    }

    #[test]
    fn installation_events_ask_for_the_installations_to_be_looked_up_again() {
        let got = classify_with(
            &policies(false),
            "installation",
            &fixture("installation.created.payload.json"),
        );
        assert_eq!(
            got,
            Some(Work::Installation(InstallationChange {
                installation_id: 957387,
                action: "created".into(),
            }))
        );
        // An enterprise's installation: an account without a login.
        let mut enterprise = fixture("installation.created.payload.json");
        enterprise["installation"]["account"] = json!({"id": 7, "slug": "megacorp", "name": "Megacorp"});
        enterprise["action"] = json!("deleted");
        let Some(Work::Installation(change)) = classify_with(&policies(false), "installation", &enterprise)
        else {
            panic!("an enterprise installation is work too")
        };
        assert_eq!(change.action, "deleted");
        let got = classify_with(
            &policies(false),
            "installation_repositories",
            &fixture("installation_repositories.added.payload.json"),
        );
        assert_eq!(
            got,
            Some(Work::Installation(InstallationChange {
                installation_id: 957387,
                action: "added".into(),
            }))
        );
    }

    #[test]
    fn a_pending_status_is_ignored() {
        let mut v = fixture("status.payload.json");
        v["state"] = "pending".into();
        assert_eq!(classify_with(&policies(false), "status", &v), None);
    }

    /// The fixture's status, as if on a commit of the gitops repository, in `state`.
    fn gitops_status(state: &str) -> Value {
        let mut v = fixture("status.payload.json");
        v["state"] = state.into();
        v["repository"]["full_name"] = GITOPS.into();
        v["repository"]["name"] = "gitops".into();
        v
    }

    #[test]
    fn a_settled_status_on_the_gitops_repository_wakes_the_releases_waiting_for_checks() {
        for state in ["success", "failure", "error"] {
            let got = classify_with(&policies(false), "status", &gitops_status(state));
            assert_eq!(got, Some(Work::GitopsChecked), "{state}");
        }
        let pending = classify_with(&policies(false), "status", &gitops_status("pending"));
        assert_eq!(pending, None);
    }

    /// Staging verifies by the statuses Flux's `github` provider posts on the gitops commit.
    fn verifying_policies() -> PolicySet {
        let text = format!(
            "app = \"hello\"\nrepo = \"{REPO}\"\ntemplate = \"t\"\n[env.staging]\nverify = {{ status = \"kustomization/apps-staging/*\" }}\n"
        );
        PolicySet::from_policies([Policy::from_toml("policies/hello.toml", &text).unwrap()]).unwrap()
    }

    #[test]
    fn a_status_an_env_verifies_by_is_a_controller_report() {
        for (state, health) in [
            ("success", Health::Healthy),
            ("failure", Health::Failed),
            ("error", Health::Failed),
            ("pending", Health::Progressing),
        ] {
            let mut v = gitops_status(state);
            v["context"] = "kustomization/apps-staging/1a2b3c4d".into();
            v["description"] = "Applied revision main@sha1:abc".into();
            let Some(Work::Report(r)) = classify_with(&verifying_policies(), "status", &v) else {
                panic!("{state}: not a report");
            };
            assert_eq!((r.controller, r.health), (Controller::Status, health), "{state}");
            assert_eq!(r.object, "kustomization/apps-staging/1a2b3c4d");
            assert_eq!(r.revision.as_ref().map(|x| x.as_str()), v["sha"].as_str());
            assert_eq!(r.message, "Applied revision main@sha1:abc");
        }
    }

    #[test]
    fn a_status_no_env_verifies_by_still_wakes_the_releases_waiting_for_checks() {
        let mut v = gitops_status("success");
        v["context"] = "kustomization/apps-production/1a2b3c4d".into();
        assert_eq!(
            classify_with(&verifying_policies(), "status", &v),
            Some(Work::GitopsChecked)
        );
    }

    #[test]
    fn a_pushed_tag_is_tag_work_for_each_app_of_the_repository() {
        let mut v = fixture("push.payload.json");
        v["deleted"] = false.into();
        v["after"] = "6113728f27ae82c7b1a177c8d03f9e96e0adf246".into();
        let got = classify_with(&policies(false), "push", &v);
        let Some(Work::Tag(t)) = got else {
            panic!("{got:?}")
        };
        assert_eq!(t.tags.len(), 1);
        assert_eq!(t.tags[0].tag.as_str(), "simple-tag");
        assert_eq!(t.tags[0].repo.as_str(), REPO);
    }

    #[test]
    fn a_push_to_the_config_branch_reloads_policies_and_nothing_else_does() {
        let mut v = fixture("push.payload.json");
        v["ref"] = "refs/heads/main".into();
        v["deleted"] = false.into();
        v["after"] = "6113728f27ae82c7b1a177c8d03f9e96e0adf246".into();
        let repo = RepoName::new(v["repository"]["full_name"].as_str().unwrap()).unwrap();
        let (main, other) = (
            BranchName::new("main").unwrap(),
            BranchName::new("config").unwrap(),
        );
        let set = PolicySet::from_policies([]).unwrap();
        let classify_for = |branch: &BranchName, v: &Value| {
            classify(
                &event("push", v),
                Scope {
                    policies: &set,
                    gitops_repos: &[],
                    config_repo: Some((&repo, branch)),
                },
            )
        };
        let Ok(Work::PoliciesPushed(p)) = classify_for(&main, &v) else {
            panic!("{:?}", classify_for(&main, &v))
        };
        assert_eq!(p.sha.as_str(), "6113728f27ae82c7b1a177c8d03f9e96e0adf246");
        assert_eq!(p.repo, repo);
        // Another branch, or the config branch deleted, reloads nothing.
        assert!(classify_for(&other, &v).is_err());
        v["deleted"] = true.into();
        v["after"] = "0000000000000000000000000000000000000000".into();
        assert!(classify_for(&main, &v).is_err());
    }

    #[test]
    fn an_app_pull_request_opened_carries_its_head_and_time() {
        let v = fixture("pull_request.opened.payload.json");
        let got = classify_with(&policies(false), "pull_request", &v);
        let Some(Work::PullRequest(p)) = got else {
            panic!("{got:?}")
        };
        assert_eq!(p.number, v["number"].as_u64().unwrap());
        let PullChange::HeadMoved { sha, at } = p.change else {
            panic!()
        };
        assert_eq!(sha.as_str(), v["pull_request"]["head"]["sha"].as_str().unwrap());
        assert!(at.is_some());
    }

    #[test]
    fn a_closed_pull_request_of_the_gitops_repository_is_a_release_pull_closed() {
        let mut v = fixture("pull_request.closed.payload.json");
        v["repository"]["full_name"] = GITOPS.into();
        let got = classify_with(&policies(false), "pull_request", &v);
        let number = v["number"].as_u64().unwrap();
        let repo = Some(RepoName::new(GITOPS).unwrap());
        assert_eq!(got, Some(Work::ReleasePullClosed(ReleasePull { number, repo })));
    }

    #[test]
    fn every_gitops_repository_is_one_and_its_events_name_it() {
        let p = policies(false);
        let repos = [
            RepoName::new(GITOPS).unwrap(),
            RepoName::new("acme/gitops-prod").unwrap(),
        ];
        let scope = Scope {
            policies: &p,
            gitops_repos: &repos,
            config_repo: None,
        };
        let mut v = fixture("pull_request_review.submitted.payload.json");
        v["repository"]["full_name"] = "Acme/Gitops-Prod".into();
        let number = v["pull_request"]["number"].as_u64().unwrap();
        let got = classify(&event("pull_request_review", &v), scope).unwrap();
        let Work::ReleaseReview(ReleasePull {
            number: n,
            repo: Some(repo),
        }) = got
        else {
            panic!("{got:?}")
        };
        assert_eq!((n, repo.as_str()), (number, "Acme/Gitops-Prod"));
        // A status there settles checks of that repository; elsewhere it is an app's signal.
        let mut v = fixture("status.payload.json");
        v["repository"]["full_name"] = "acme/gitops-prod".into();
        assert_eq!(classify(&event("status", &v), scope), Ok(Work::GitopsChecked));
        // An entry an older auger stored without the repository reads back with none.
        let old = br#"{"v":1,"work":{"release_pull_closed":{"number":7}}}"#;
        assert_eq!(
            decode("work:pull_request", old, scope).unwrap(),
            Some(Work::ReleasePullClosed(ReleasePull {
                number: 7,
                repo: None
            }))
        );
    }

    #[test]
    fn a_review_counts_only_in_the_gitops_repository() {
        let mut v = fixture("pull_request_review.submitted.payload.json");
        assert_eq!(classify_with(&policies(false), "pull_request_review", &v), None);
        v["repository"]["full_name"] = GITOPS.into();
        let number = v["pull_request"]["number"].as_u64().unwrap();
        let repo = Some(RepoName::new(GITOPS).unwrap());
        assert_eq!(
            classify_with(&policies(false), "pull_request_review", &v),
            Some(Work::ReleaseReview(ReleasePull { number, repo }))
        );
    }

    #[test]
    fn a_review_without_its_author_is_ignored_for_want_of_one() {
        let mut v = fixture("pull_request_review.submitted.payload.json");
        v["repository"]["full_name"] = GITOPS.into();
        v["review"]["user"] = Value::Null;
        let why = classify_why(&policies(false), "pull_request_review", &v);
        assert_eq!(why, Err(Ignored::NoAuthor("review")));
        v["review"].as_object_mut().unwrap().remove("user");
        let why = classify_why(&policies(false), "pull_request_review", &v);
        assert_eq!(why, Err(Ignored::NoAuthor("review")));
        // Outside the gitops repository it is simply not wanted.
        v["repository"]["full_name"] = REPO.into();
        let why = classify_why(&policies(false), "pull_request_review", &v);
        assert_eq!(why, Err(Ignored::NotWanted));
    }

    #[test]
    fn a_deleted_branch_matters_only_where_previews_are_on() {
        let mut v = fixture("delete.payload.json");
        v["ref_type"] = "branch".into();
        v["ref"] = "feature".into();
        assert_eq!(classify_with(&policies(false), "delete", &v), None);
        let got = classify_with(&policies(true), "delete", &v);
        let Some(Work::BranchDeleted(b)) = got else {
            panic!("{got:?}")
        };
        assert_eq!(b.branch.as_str(), "feature");
    }

    /// The fixture's comment, moved onto a pull request, saying `body`.
    fn pr_comment(body: &str) -> Value {
        let mut v = fixture("issue_comment.created.payload.json");
        v["issue"]["pull_request"] = json!({"url": "https://api.github.com/repos/x/y/pulls/1"});
        v["comment"]["body"] = body.into();
        v
    }

    #[test]
    fn a_command_on_a_pull_request_is_comment_work() {
        let got = classify_with(&policies(false), "issue_comment", &pr_comment("/deploy staging"));
        let Some(Work::Comment(c)) = got else {
            panic!("{got:?}")
        };
        assert_eq!(c.body, "/deploy staging");
        assert_eq!(c.repo.as_str(), REPO);
    }

    #[test]
    fn a_command_without_its_author_is_ignored_for_want_of_one() {
        let mut v = pr_comment("/deploy staging");
        v["comment"]["user"] = Value::Null;
        let why = classify_why(&policies(false), "issue_comment", &v);
        assert_eq!(why, Err(Ignored::NoAuthor("comment")));
        // Without a command there is nothing to attribute.
        v["comment"]["body"] = "thanks".into();
        let why = classify_why(&policies(false), "issue_comment", &v);
        assert_eq!(why, Err(Ignored::NotWanted));
    }

    #[test]
    fn a_comment_without_a_command_is_ignored() {
        let got = classify_with(&policies(false), "issue_comment", &pr_comment("looks good"));
        assert_eq!(got, None);
    }

    #[test]
    fn a_bot_never_commands() {
        let mut v = pr_comment("/deploy staging");
        v["comment"]["user"]["type"] = "Bot".into();
        assert_eq!(classify_with(&policies(false), "issue_comment", &v), None);
    }

    #[test]
    fn a_comment_on_a_plain_issue_is_ignored() {
        let mut v = pr_comment("/deploy staging");
        v["issue"]["pull_request"] = Value::Null;
        assert_eq!(classify_with(&policies(false), "issue_comment", &v), None);
    }

    #[test]
    fn events_of_a_repository_no_policy_names_are_ignored() {
        let mut v = fixture("status.payload.json");
        v["repository"]["full_name"] = "acme/unrelated".into();
        assert_eq!(classify_with(&policies(false), "status", &v), None);
    }

    fn scope(p: &PolicySet) -> Scope<'_> {
        Scope {
            policies: p,
            gitops_repos: &[],
            config_repo: None,
        }
    }

    #[test]
    fn stored_work_reads_back_equal() {
        let p = policies(false);
        let work = classify_with(&p, "status", &fixture("status.payload.json")).unwrap();
        let kind = inbox_kind("status");
        assert_eq!(decode(&kind, &encode(&work), scope(&p)).unwrap(), Some(work));
        assert_eq!(source_of(&kind), "status");
        assert_eq!(source_of(&inbox_kind("ping")), "ping");
    }

    #[test]
    fn a_stored_report_reads_back_equal() {
        use crate::verify::{Controller, Health, Report, Revision};
        let p = policies(false);
        let report = Report {
            controller: Controller::Flux,
            object: "apps-production".into(),
            kind: Some("Kustomization".into()),
            namespace: Some("flux-system".into()),
            revision: Revision::parse("main@sha1:4f1c0a5e2b3d4c5e6f708192a3b4c5d6e7f80912"),
            health: Health::Failed,
            reason: "HealthCheckFailed".into(),
            message: "timeout waiting for: [Deployment/web/web status: 'InProgress']".into(),
            at: DateTime::parse_from_rfc3339("2026-12-05T10:25:40Z")
                .ok()
                .map(|t| t.with_timezone(&Utc)),
            repo: None,
        };
        let work = Work::Report(report.clone());
        let kind = inbox_kind("flux");
        assert!(matches!(kind, std::borrow::Cow::Borrowed("work:flux")));
        assert_eq!(
            decode(&kind, &encode(&work), scope(&p)).unwrap(),
            Some(work.clone())
        );
        // The stored form is plain JSON with the revision as its sha.
        let stored: Value = serde_json::from_slice(&encode(&work)).unwrap();
        assert_eq!(stored["v"], 1);
        assert_eq!(
            stored["work"]["report"]["revision"],
            "4f1c0a5e2b3d4c5e6f708192a3b4c5d6e7f80912"
        );
        assert_eq!(stored["work"]["report"]["controller"], "flux");
        assert_eq!(work.kind(), "report");
        // An argocd report with nothing optional reads back too.
        let bare = Work::Report(Report {
            controller: Controller::ArgoCd,
            object: "web".into(),
            kind: None,
            namespace: None,
            revision: None,
            health: Health::Healthy,
            reason: "Synced/Healthy/-".into(),
            message: String::new(),
            at: None,
            repo: None,
        });
        assert_eq!(
            decode("work:argocd", &encode(&bare), scope(&p)).unwrap(),
            Some(bare)
        );
        // A stored revision that is no sha is refused rather than read as something else.
        let mut tampered = stored.clone();
        tampered["work"]["report"]["revision"] = "main".into();
        let body = serde_json::to_vec(&tampered).unwrap();
        assert!(decode("work:flux", &body, scope(&p)).is_err());
    }

    #[test]
    fn stored_work_of_another_version_is_refused() {
        let p = policies(false);
        let body = br#"{"v":2,"work":{"release_review":{"number":1}}}"#;
        let err = decode("work:api", body, scope(&p)).unwrap_err();
        assert!(matches!(err, DecodeError::Version(2)), "{err}");
    }

    #[test]
    fn a_github_event_an_earlier_auger_stored_is_classified_on_reading() {
        let p = policies(false);
        let body = serde_json::to_vec(&fixture("status.payload.json")).unwrap();
        let got = decode("status", &body, scope(&p)).unwrap();
        assert!(matches!(got, Some(Work::Build(_))), "{got:?}");
    }

    #[test]
    fn an_api_request_an_earlier_auger_stored_reads_as_its_work() {
        let p = policies(false);
        let body = br#"{"app":"hello","env":"production","to":null,"by":"api ci"}"#;
        let got = decode("auger.rollback", body, scope(&p)).unwrap();
        let Some(Work::Rollback(r)) = got else {
            panic!("{got:?}")
        };
        assert_eq!(
            (r.app.as_str(), r.env.as_str(), r.by.as_str()),
            ("hello", "production", "api ci")
        );
    }
}
