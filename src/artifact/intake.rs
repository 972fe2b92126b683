//! Artifact intake: what a GitHub event means for the ledger, decided by the policies alone
//! (no I/O). A green CI signal that a policy names is a build of those apps; a tag pushed onto
//! a commit that already has an artifact adds the tag. Everything else means nothing here.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::artifact::{Artifact, Source};
use crate::domain::{AppName, BranchName, CommitSha, RepoName, TagName};
use crate::policy::{PolicySet, SignalKind};
use crate::webhook::events::{CheckRunAction, Event, PullRequestRef, StatusState, WorkflowRunAction};

/// The ledger changes one event asks for.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Intake {
    /// A build to record (insert or merge), one artifact per app.
    pub build: Option<Build>,
    /// Tags to add to an artifact, but only if it already exists: a tag never creates a build.
    pub tags: Vec<(AppName, CommitSha, TagName)>,
}

impl Intake {
    pub fn is_empty(&self) -> bool {
        self.build.is_none() && self.tags.is_empty()
    }

    /// The artifacts the build makes (none without one).
    pub fn artifacts(&self) -> Vec<Artifact> {
        self.build.as_ref().map(Build::artifacts).unwrap_or_default()
    }
}

/// One commit built green: the apps whose policies name the signal (a monorepo builds several
/// from one commit) and what the signal says about the build, the same for each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Build {
    pub apps: Vec<AppName>,
    pub facts: BuildFacts,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildFacts {
    pub repo: RepoName,
    pub sha: CommitSha,
    pub source: Source,
    pub branches: Vec<BranchName>,
    /// The repository's default branch, as the event names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_branch: Option<BranchName>,
    pub pull_requests: Vec<u64>,
    pub author: Option<String>,
    pub message: Option<String>,
    pub url: Option<String>,
    /// When the commit was made, when the signal says (a status's committer date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed: Option<DateTime<Utc>>,
}

impl BuildFacts {
    /// Built only as the head of the default branch: no pull request proposes this commit
    /// (one from the default branch itself is not a thing people open).
    pub fn only_on_default_branch(&self) -> bool {
        !self.branches.is_empty()
            && self
                .branches
                .iter()
                .all(|b| Some(b) == self.default_branch.as_ref())
    }
}

impl Build {
    /// Whether an app of the build limits its artifacts to `[artifact] paths`: then the
    /// commit's changed files decide which apps it builds ([`Build::keep_changed`]).
    pub fn depends_on_paths(&self, policies: &PolicySet) -> bool {
        self.apps
            .iter()
            .any(|app| policies.get(app).is_some_and(|p| p.paths().is_some()))
    }

    /// Keeps the apps a commit that changed `files` builds: those without `[artifact] paths`,
    /// and those with a path among `files`. An app without a policy any more is dropped.
    pub fn keep_changed(&mut self, policies: &PolicySet, files: &[String]) {
        self.apps
            .retain(|app| policies.get(app).is_some_and(|p| p.built_by_change(files)));
    }

    /// One new artifact per app, recorded now.
    pub fn artifacts(&self) -> Vec<Artifact> {
        let f = &self.facts;
        self.apps
            .iter()
            .map(|app| {
                let mut a = Artifact::new(app.clone(), f.repo.clone(), f.sha.clone(), f.source.clone());
                a.branches = f.branches.clone();
                a.pull_requests = f.pull_requests.clone();
                a.author = f.author.clone();
                a.message = f.message.clone();
                a.url = f.url.clone();
                a.committed = f.committed;
                a
            })
            .collect()
    }
}

/// The first of `dates` that reads as an RFC 3339 time: a commit's time as a payload gives it.
fn commit_time<'a>(dates: impl IntoIterator<Item = Option<&'a str>>) -> Option<DateTime<Utc>> {
    dates
        .into_iter()
        .flatten()
        .find_map(|d| DateTime::parse_from_rfc3339(d).ok())
        .map(|d| d.to_utc())
}

pub fn from_event(event: &Event, policies: &PolicySet) -> Intake {
    let mut out = Intake::default();
    match event {
        Event::Status(e) if e.state == StatusState::Success => {
            let signal = CiSignal {
                repo: &e.repository.full_name,
                default_branch: &e.repository.default_branch,
                sha: &e.sha,
                kind: SignalKind::Status,
                name: &e.context,
                target_url: e.target_url.clone(),
            };
            out.build = signal.build(policies, |f| {
                f.branches = e
                    .branches
                    .iter()
                    .filter(|b| b.commit.sha.as_ref() == Some(&e.sha))
                    .map(|b| b.name.clone())
                    .collect();
                f.author = e
                    .commit
                    .author
                    .as_ref()
                    .and_then(|u| u.login.clone())
                    .or_else(|| e.commit.commit.author.as_ref().map(|g| g.name.clone()));
                f.message = Some(e.commit.commit.message.clone());
                f.url = e.commit.html_url.clone();
                let details = &e.commit.commit;
                f.committed = commit_time(
                    [&details.committer, &details.author]
                        .into_iter()
                        .map(|g| g.as_ref().and_then(|g| g.date.as_deref())),
                );
            });
        }
        Event::CheckRun(e) if e.action == CheckRunAction::Completed && e.check_run.succeeded() => {
            let run = &e.check_run;
            let signal = CiSignal {
                repo: &e.repository.full_name,
                default_branch: &e.repository.default_branch,
                sha: &run.head_sha,
                kind: SignalKind::CheckRun,
                name: &run.name,
                target_url: run.details_url.clone().or_else(|| run.html_url.clone()),
            };
            out.build = signal.build(policies, |f| {
                f.branches = run.check_suite.head_branch.iter().cloned().collect();
                f.pull_requests = same_head_prs(&run.pull_requests, &run.head_sha);
            });
        }
        // A run that built a fork's code is never an artifact (design §10).
        Event::WorkflowRun(e)
            if e.action == WorkflowRunAction::Completed
                && e.workflow_run.succeeded()
                && !e.is_from_fork() =>
        {
            let run = &e.workflow_run;
            let signal = CiSignal {
                repo: &e.repository.full_name,
                default_branch: &e.repository.default_branch,
                sha: &run.head_sha,
                kind: SignalKind::WorkflowRun,
                name: e.workflow_name(),
                target_url: Some(run.html_url.clone()),
            };
            out.build = signal.build(policies, |f| {
                f.branches = run.head_branch.iter().cloned().collect();
                f.pull_requests = same_head_prs(&run.pull_requests, &run.head_sha);
                f.committed = commit_time([run.head_commit.as_ref().and_then(|c| c.timestamp.as_deref())]);
            });
        }
        Event::Push(e) if !e.deleted => {
            if let Some(tag) = e.tag() {
                for p in policies.for_repo(&e.repository.full_name) {
                    out.tags.push((p.app().clone(), e.after.clone(), tag.clone()));
                }
            }
        }
        _ => {}
    }
    out
}

/// A green CI signal about one commit, before it is matched to the apps whose policies name it.
struct CiSignal<'a> {
    repo: &'a RepoName,
    default_branch: &'a BranchName,
    sha: &'a CommitSha,
    kind: SignalKind,
    name: &'a str,
    target_url: Option<String>,
}

impl CiSignal<'_> {
    /// The build of every app of the repository whose policy names this signal, if any; `facts`
    /// adds what the payload says about the build.
    fn build(&self, policies: &PolicySet, facts: impl FnOnce(&mut BuildFacts)) -> Option<Build> {
        let apps: Vec<AppName> = policies
            .for_repo(self.repo)
            .filter(|p| p.accepts_signal(self.kind, self.name))
            .map(|p| p.app().clone())
            .collect();
        if apps.is_empty() {
            return None;
        }
        let mut f = BuildFacts {
            repo: self.repo.clone(),
            sha: self.sha.clone(),
            source: Source {
                kind: self.kind.as_str().into(),
                name: self.name.to_owned(),
                target_url: self.target_url.clone(),
            },
            branches: Vec::new(),
            default_branch: Some(self.default_branch.clone()),
            pull_requests: Vec::new(),
            author: None,
            message: None,
            url: None,
            committed: None,
        };
        facts(&mut f);
        Some(Build { apps, facts: f })
    }
}

/// PR numbers whose head is the built commit (a run also lists PRs whose head moved on).
fn same_head_prs(prs: &[PullRequestRef], sha: &CommitSha) -> Vec<u64> {
    prs.iter()
        .filter(|pr| &pr.head.sha == sha)
        .map(|pr| pr.number)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use crate::webhook::events::parse_event;

    fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/webhooks")
            .join(name);
        std::fs::read(path).unwrap()
    }

    /// A policy for the repository the fixture events come from.
    fn policies_for(repo: &str, signals: &str) -> PolicySet {
        let text = format!(
            "app = \"web\"\nrepo = \"{repo}\"\ntemplate = \"t\"\n[artifact]\nsignals = [{signals}]\n"
        );
        PolicySet::from_policies([Policy::from_toml("policies/web.toml", &text).unwrap()]).unwrap()
    }

    fn with_status_state(state: &str) -> Event {
        let mut v: serde_json::Value = serde_json::from_slice(&fixture("status.payload.json")).unwrap();
        v["state"] = state.into();
        parse_event("status", &serde_json::to_vec(&v).unwrap()).unwrap()
    }

    #[test]
    fn only_a_build_of_the_default_branch_alone_needs_no_pull_request_lookup() {
        let ev = with_status_state("success");
        let Event::Status(s) = &ev else { panic!() };
        let policies = policies_for(
            s.repository.full_name.as_str(),
            &format!("\"status:{}\"", s.context),
        );
        let mut facts = from_event(&ev, &policies).build.unwrap().facts;
        let default = s.repository.default_branch.clone();
        assert_eq!(facts.default_branch.as_ref(), Some(&default));
        facts.branches = vec![default.clone()];
        assert!(facts.only_on_default_branch());
        facts.branches.push(BranchName::new("feature").unwrap());
        assert!(
            !facts.only_on_default_branch(),
            "also the head of a feature branch"
        );
        facts.branches.clear();
        assert!(
            !facts.only_on_default_branch(),
            "no branch named: a fork's commit"
        );
    }

    #[test]
    fn green_status_named_by_a_policy_makes_an_artifact() {
        let ev = with_status_state("success");
        let Event::Status(s) = &ev else { panic!() };
        let repo = s.repository.full_name.to_string();
        let policies = policies_for(&repo, &format!("\"status:{}\"", s.context));
        let intake = from_event(&ev, &policies);
        let artifacts = intake.artifacts();
        assert_eq!(artifacts.len(), 1);
        let a = &artifacts[0];
        assert_eq!(a.sha, s.sha);
        assert_eq!(a.source.kind, "status");
        assert_eq!(a.message.as_deref(), Some(s.commit.commit.message.as_str()));
        assert_eq!(
            a.committed.map(|t| t.to_rfc3339()).as_deref(),
            Some("2019-05-15T15:19:25+00:00"),
            "the committer's date starts the lead time"
        );
        let heads: Vec<_> = s
            .branches
            .iter()
            .filter(|b| b.commit.sha.as_ref() == Some(&s.sha))
            .map(|b| b.name.clone())
            .collect();
        assert_eq!(a.branches, heads);
    }

    #[test]
    fn failed_pending_or_unnamed_signals_make_nothing() {
        let ev = with_status_state("failure");
        let Event::Status(s) = &ev else { panic!() };
        let repo = s.repository.full_name.to_string();
        let policies = policies_for(&repo, &format!("\"status:{}\"", s.context));
        assert!(from_event(&ev, &policies).is_empty());
        assert!(from_event(&with_status_state("pending"), &policies).is_empty());
        let other_context = policies_for(&repo, "\"status:ci/other\"");
        assert!(from_event(&with_status_state("success"), &other_context).is_empty());
        let other_repo = policies_for("acme/unrelated", &format!("\"status:{}\"", s.context));
        assert!(from_event(&with_status_state("success"), &other_repo).is_empty());
    }

    #[test]
    fn completed_green_check_run_makes_an_artifact_with_its_branch() {
        let mut v: serde_json::Value =
            serde_json::from_slice(&fixture("check_run.completed.payload.json")).unwrap();
        v["check_run"]["conclusion"] = "success".into();
        v["check_run"]["status"] = "completed".into();
        let ev = parse_event("check_run", &serde_json::to_vec(&v).unwrap()).unwrap();
        let Event::CheckRun(c) = &ev else { panic!() };
        let policies = policies_for(
            c.repository.full_name.as_str(),
            &format!("\"check_run:{}\"", c.check_run.name),
        );
        let intake = from_event(&ev, &policies);
        assert_eq!(intake.artifacts().len(), 1);
        assert_eq!(
            intake.artifacts()[0].branches,
            c.check_run
                .check_suite
                .head_branch
                .iter()
                .cloned()
                .collect::<Vec<_>>()
        );
        v["check_run"]["conclusion"] = "failure".into();
        let failed = parse_event("check_run", &serde_json::to_vec(&v).unwrap()).unwrap();
        assert!(from_event(&failed, &policies).is_empty());
    }

    #[test]
    fn workflow_run_from_a_fork_never_makes_an_artifact() {
        let mut v: serde_json::Value =
            serde_json::from_slice(&fixture("workflow_run.completed.payload.json")).unwrap();
        v["workflow_run"]["conclusion"] = "success".into();
        v["workflow_run"]["status"] = "completed".into();
        let ev = parse_event("workflow_run", &serde_json::to_vec(&v).unwrap()).unwrap();
        let Event::WorkflowRun(w) = &ev else { panic!() };
        let policies = policies_for(
            w.repository.full_name.as_str(),
            &format!("\"workflow_run:{}\"", w.workflow_name()),
        );
        assert!(!w.is_from_fork(), "the fixture's run built its own repository");
        let artifacts = from_event(&ev, &policies).artifacts();
        assert_eq!(artifacts.len(), 1);
        assert_eq!(
            artifacts[0].committed.map(|t| t.to_rfc3339()).as_deref(),
            Some("2020-10-05T16:32:07+00:00"),
            "the head commit's timestamp"
        );
        v["workflow_run"]["head_repository"]["full_name"] = "mallory/fork".into();
        let fork = parse_event("workflow_run", &serde_json::to_vec(&v).unwrap()).unwrap();
        assert!(from_event(&fork, &policies).is_empty());
    }

    #[test]
    fn tag_push_asks_to_tag_an_existing_artifact() {
        let mut v: serde_json::Value = serde_json::from_slice(&fixture("push.payload.json")).unwrap();
        v["ref"] = "refs/tags/v1.2.0".into();
        v["deleted"] = false.into();
        let ev = parse_event("push", &serde_json::to_vec(&v).unwrap()).unwrap();
        let Event::Push(p) = &ev else { panic!() };
        let policies = policies_for(p.repository.full_name.as_str(), "\"status:ci\"");
        let intake = from_event(&ev, &policies);
        assert!(intake.artifacts().is_empty());
        assert_eq!(
            intake.tags,
            vec![(
                AppName::new("web").unwrap(),
                p.after.clone(),
                TagName::new("v1.2.0").unwrap()
            )]
        );
    }

    #[test]
    fn a_monorepo_build_keeps_the_apps_whose_paths_the_commit_changed() {
        let policy = |app: &str, paths: &str| {
            let text = format!(
                "app = \"{app}\"\nrepo = \"acme/mono\"\ntemplate = \"t\"\n[artifact]\nsignals = [\"status:ci\"]\n{paths}"
            );
            Policy::from_toml(format!("policies/{app}.toml"), &text).unwrap()
        };
        let policies = PolicySet::from_policies([
            policy(
                "web",
                "paths = [\"services/web/**\", \"!services/web/docs/**\"]\n",
            ),
            policy("api", "paths = [\"services/api/**\", \"libs/**\"]\n"),
            policy("tools", ""),
        ])
        .unwrap();
        let app = |a: &str| AppName::new(a).unwrap();
        let build = Build {
            apps: vec![app("web"), app("api"), app("tools")],
            facts: BuildFacts {
                repo: RepoName::new("acme/mono").unwrap(),
                sha: CommitSha::new("a".repeat(40)).unwrap(),
                source: Source {
                    kind: "status".into(),
                    name: "ci".into(),
                    target_url: None,
                },
                branches: Vec::new(),
                default_branch: None,
                pull_requests: Vec::new(),
                author: None,
                message: None,
                url: None,
                committed: None,
            },
        };
        assert!(build.depends_on_paths(&policies));
        let kept = |files: &[&str]| {
            let mut b = build.clone();
            let files: Vec<String> = files.iter().map(|f| f.to_string()).collect();
            b.keep_changed(&policies, &files);
            b.apps.iter().map(|a| a.to_string()).collect::<Vec<_>>()
        };
        assert_eq!(kept(&["services/api/main.go"]), ["api", "tools"]);
        assert_eq!(kept(&["services/web/src/app.ts", "README.md"]), ["web", "tools"]);
        assert_eq!(
            kept(&["services/web/docs/intro.md"]),
            ["tools"],
            "a negated path carves out"
        );
        assert_eq!(
            kept(&["libs/auth/x.rs", "services/web/a"]),
            ["web", "api", "tools"]
        );
        assert_eq!(kept(&[]), ["tools"]);
        let plain = Build {
            apps: vec![app("tools")],
            ..build.clone()
        };
        assert!(!plain.depends_on_paths(&policies));
    }
}
