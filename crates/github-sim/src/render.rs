//! GitHub's JSON shapes, built from the simulator's state. The REST handlers and the webhook
//! payloads share these builders, which is what keeps the two consistent (as on GitHub).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::git::CommitInfo;
use crate::state::{
    Account, AccountKind, CheckRun, CommitStatus, Deployment, DeploymentStatus, InstallTarget, Installation,
    IssueComment, Protection, PullRequest, Reaction, Repo, Review, State, WorkflowRun,
};

/// GitHub's timestamp format (`2019-05-15T15:20:21Z`).
pub fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Git's ISO dates (`2026-01-01T10:00:00+00:00`) in GitHub's format.
pub fn git_ts(iso: &str) -> String {
    DateTime::parse_from_rfc3339(iso)
        .map(|t| ts(&t.with_timezone(&Utc)))
        .unwrap_or_else(|_| iso.to_string())
}

fn node_id(kind: &str, id: u64) -> String {
    format!("{kind}_kgDO{id:08}")
}

/// The URL prefixes for one simulator instance (API and "web" share the host).
#[derive(Debug, Clone)]
pub struct Urls {
    pub api: String,
}

impl Urls {
    pub fn html(&self) -> &str {
        &self.api
    }
}

pub fn account(u: &Urls, a: &Account) -> Value {
    let api = format!("{}/users/{}", u.api, a.login);
    json!({
        "login": a.login,
        "id": a.id,
        "node_id": node_id("U", a.id),
        "avatar_url": format!("{}/avatars/u/{}", u.api, a.id),
        "gravatar_id": "",
        "url": api,
        "html_url": format!("{}/{}", u.html(), a.login),
        "followers_url": format!("{api}/followers"),
        "following_url": format!("{api}/following{{/other_user}}"),
        "gists_url": format!("{api}/gists{{/gist_id}}"),
        "starred_url": format!("{api}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{api}/subscriptions"),
        "organizations_url": format!("{api}/orgs"),
        "repos_url": format!("{api}/repos"),
        "events_url": format!("{api}/events{{/privacy}}"),
        "received_events_url": format!("{api}/received_events"),
        "type": a.kind.as_str(),
        "site_admin": false,
    })
}

/// An account by login; unknown logins render as plain users with id 0 (never expected).
pub fn login(state: &State, u: &Urls, login: &str) -> Value {
    match state.account(login) {
        Some(a) => account(u, a),
        None => account(
            u,
            &Account {
                id: 0,
                login: login.to_string(),
                kind: AccountKind::User,
            },
        ),
    }
}

pub fn repo(state: &State, u: &Urls, r: &Repo) -> Value {
    let full = r.full_name();
    let api = format!("{}/repos/{full}", u.api);
    let html = format!("{}/{full}", u.html());
    let clone_url = format!("file://{}", r.git.path().display());
    let created = ts(&r.created_at);
    let open_issues = r.pulls.iter().filter(|p| p.open).count();
    let parent = r
        .fork_of
        .as_deref()
        .and_then(|p| state.repo(p))
        .map(|p| repo_min(state, u, p));
    let mut v = json!({
        "id": r.id,
        "node_id": node_id("R", r.id),
        "name": r.name,
        "full_name": full,
        "private": r.private,
        "owner": login(state, u, &r.owner),
        "html_url": html,
        "description": null,
        "fork": r.fork_of.is_some(),
        "url": api,
        "forks_url": format!("{api}/forks"),
        "keys_url": format!("{api}/keys{{/key_id}}"),
        "collaborators_url": format!("{api}/collaborators{{/collaborator}}"),
        "teams_url": format!("{api}/teams"),
        "hooks_url": format!("{api}/hooks"),
        "issue_events_url": format!("{api}/issues/events{{/number}}"),
        "events_url": format!("{api}/events"),
        "assignees_url": format!("{api}/assignees{{/user}}"),
        "branches_url": format!("{api}/branches{{/branch}}"),
        "tags_url": format!("{api}/tags"),
        "blobs_url": format!("{api}/git/blobs{{/sha}}"),
        "git_tags_url": format!("{api}/git/tags{{/sha}}"),
        "git_refs_url": format!("{api}/git/refs{{/sha}}"),
        "trees_url": format!("{api}/git/trees{{/sha}}"),
        "statuses_url": format!("{api}/statuses/{{sha}}"),
        "languages_url": format!("{api}/languages"),
        "stargazers_url": format!("{api}/stargazers"),
        "contributors_url": format!("{api}/contributors"),
        "subscribers_url": format!("{api}/subscribers"),
        "subscription_url": format!("{api}/subscription"),
        "commits_url": format!("{api}/commits{{/sha}}"),
        "git_commits_url": format!("{api}/git/commits{{/sha}}"),
        "comments_url": format!("{api}/comments{{/number}}"),
        "issue_comment_url": format!("{api}/issues/comments{{/number}}"),
        "contents_url": format!("{api}/contents/{{+path}}"),
        "compare_url": format!("{api}/compare/{{base}}...{{head}}"),
        "merges_url": format!("{api}/merges"),
        "archive_url": format!("{api}/{{archive_format}}{{/ref}}"),
        "downloads_url": format!("{api}/downloads"),
        "issues_url": format!("{api}/issues{{/number}}"),
        "pulls_url": format!("{api}/pulls{{/number}}"),
        "milestones_url": format!("{api}/milestones{{/number}}"),
        "notifications_url": format!("{api}/notifications{{?since,all,participating}}"),
        "labels_url": format!("{api}/labels{{/name}}"),
        "releases_url": format!("{api}/releases{{/id}}"),
        "deployments_url": format!("{api}/deployments"),
        "created_at": created,
        "updated_at": created,
        "pushed_at": created,
        "git_url": clone_url,
        "ssh_url": clone_url,
        "clone_url": clone_url,
        "svn_url": html,
        "homepage": null,
        "size": 0,
        "stargazers_count": 0,
        "watchers_count": 0,
        "language": null,
        "has_issues": true,
        "has_projects": true,
        "has_downloads": true,
        "has_wiki": true,
        "has_pages": false,
        "has_discussions": false,
        "forks_count": 0,
        "mirror_url": null,
        "archived": false,
        "disabled": false,
        "open_issues_count": open_issues,
        "license": null,
        "forks": 0,
        "open_issues": open_issues,
        "watchers": 0,
        "default_branch": r.default_branch,
        "is_template": false,
        "topics": [],
        "visibility": if r.private { "private" } else { "public" },
        "web_commit_signoff_required": false,
        "custom_properties": {},
    });
    if let (Some(parent), Some(obj)) = (parent, v.as_object_mut()) {
        obj.insert("parent".into(), parent.clone());
        obj.insert("source".into(), parent);
    }
    v
}

/// The short repository shape GitHub nests in check-suite pull requests.
pub fn repo_min(_state: &State, u: &Urls, r: &Repo) -> Value {
    json!({
        "id": r.id,
        "url": format!("{}/repos/{}", u.api, r.full_name()),
        "name": r.name,
    })
}

/// A repository as the `push` event shows it (epoch timestamps, owner with name/email).
pub fn push_repo(state: &State, u: &Urls, r: &Repo) -> Value {
    let mut v = repo(state, u, r);
    if let Some(obj) = v.as_object_mut() {
        let epoch = r.created_at.timestamp();
        obj.insert("created_at".into(), json!(epoch));
        obj.insert("pushed_at".into(), json!(Utc::now().timestamp()));
        obj.insert("stargazers".into(), json!(0));
        obj.insert("master_branch".into(), json!(r.default_branch));
        if let Some(owner) = obj.get_mut("owner").and_then(Value::as_object_mut) {
            owner.insert("name".into(), json!(r.owner));
            owner.insert("email".into(), json!(noreply_email(state, &r.owner)));
        }
    }
    v
}

pub fn noreply_email(state: &State, login: &str) -> String {
    let id = state.account(login).map(|a| a.id).unwrap_or(0);
    format!("{id}+{login}@users.noreply.github.com")
}

fn branch_side(state: &State, u: &Urls, repo_name: &str, git_ref: &str, sha: &str) -> Value {
    let repo = state.repo(repo_name);
    let owner = repo_name.split('/').next().unwrap_or_default();
    json!({
        "label": format!("{owner}:{git_ref}"),
        "ref": git_ref,
        "sha": sha,
        "user": login(state, u, owner),
        "repo": repo.map(|r| self::repo(state, u, r)).unwrap_or(Value::Null),
    })
}

pub fn pull(state: &State, u: &Urls, r: &Repo, pr: &PullRequest) -> Value {
    let full = r.full_name();
    let api = format!("{}/repos/{full}/pulls/{}", u.api, pr.number);
    let issue = format!("{}/repos/{full}/issues/{}", u.api, pr.number);
    let html = format!("{}/{full}/pull/{}", u.html(), pr.number);
    let statuses = format!("{}/repos/{full}/statuses/{}", u.api, pr.head_sha);
    let (mergeable, mergeable_state) = crate::protection::mergeability(state, r, pr);
    let comments = r.comments.iter().filter(|c| c.issue_number == pr.number).count();
    let commits = r
        .git
        .merge_base(&pr.base_sha, &pr.head_sha)
        .and_then(|mb| r.git.rev_list(&pr.head_sha, &[&mb], 10_000).ok())
        .map(|v| v.len())
        .unwrap_or(0);
    let changed = r
        .git
        .merge_base(&pr.base_sha, &pr.head_sha)
        .and_then(|mb| r.git.diff_files(Some(&mb), &pr.head_sha).ok())
        .map(|v| v.len())
        .unwrap_or(0);
    json!({
        "url": api,
        "id": pr.id,
        "node_id": node_id("PR", pr.id),
        "html_url": html,
        "diff_url": format!("{html}.diff"),
        "patch_url": format!("{html}.patch"),
        "issue_url": issue,
        "number": pr.number,
        "state": if pr.open { "open" } else { "closed" },
        "locked": false,
        "title": pr.title,
        "user": login(state, u, &pr.user),
        "body": pr.body,
        "created_at": ts(&pr.created_at),
        "updated_at": ts(&pr.updated_at),
        "closed_at": pr.closed_at.as_ref().map(ts),
        "merged_at": pr.merged_at.as_ref().map(ts),
        "merge_commit_sha": pr.merge_commit_sha,
        "assignee": null,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "labels": [],
        "milestone": null,
        "draft": pr.draft,
        "commits_url": format!("{api}/commits"),
        "review_comments_url": format!("{api}/comments"),
        "review_comment_url": format!("{}/repos/{full}/pulls/comments{{/number}}", u.api),
        "comments_url": format!("{issue}/comments"),
        "statuses_url": statuses,
        "head": branch_side(state, u, &pr.head_repo, &pr.head_ref, &pr.head_sha),
        "base": branch_side(state, u, &full, &pr.base_ref, &pr.base_sha),
        "_links": {
            "self": {"href": api},
            "html": {"href": html},
            "issue": {"href": issue},
            "comments": {"href": format!("{issue}/comments")},
            "review_comments": {"href": format!("{api}/comments")},
            "review_comment": {"href": format!("{}/repos/{full}/pulls/comments{{/number}}", u.api)},
            "commits": {"href": format!("{api}/commits")},
            "statuses": {"href": statuses},
        },
        "author_association": association(state, r, &pr.user),
        "auto_merge": null,
        "active_lock_reason": null,
        "merged": pr.merged,
        "mergeable": mergeable,
        "rebaseable": mergeable,
        "mergeable_state": mergeable_state,
        "merged_by": pr.merged_by.as_deref().map(|l| login(state, u, l)),
        "comments": comments,
        "review_comments": 0,
        "maintainer_can_modify": false,
        "commits": commits,
        "additions": 0,
        "deletions": 0,
        "changed_files": changed,
    })
}

/// `GET …/branches/{branch}/protection`: GitHub's branch-protection object. Status checks and
/// reviews appear only when the branch requires them, as GitHub leaves them out otherwise.
pub fn branch_protection(u: &Urls, r: &Repo, branch: &str, p: &Protection) -> Value {
    let url = format!("{}/repos/{}/branches/{branch}/protection", u.api, r.full_name());
    let mut v = json!({
        "url": url,
        "required_signatures": {"url": format!("{url}/required_signatures"), "enabled": false},
        "enforce_admins": {"url": format!("{url}/enforce_admins"), "enabled": p.enforce_admins},
        "required_linear_history": {"enabled": false},
        "allow_force_pushes": {"enabled": false},
        "allow_deletions": {"enabled": false},
        "block_creations": {"enabled": false},
        "required_conversation_resolution": {"enabled": false},
        "lock_branch": {"enabled": false},
        "allow_fork_syncing": {"enabled": false},
    });
    let Some(obj) = v.as_object_mut() else {
        return v;
    };
    if !p.required_status_checks.is_empty() || p.strict {
        obj.insert(
            "required_status_checks".into(),
            json!({
                "url": format!("{url}/required_status_checks"),
                "strict": p.strict,
                "contexts": p.required_status_checks,
                "contexts_url": format!("{url}/required_status_checks/contexts"),
                "checks": required_checks(p),
            }),
        );
    }
    if p.required_approving_review_count > 0 {
        obj.insert(
            "required_pull_request_reviews".into(),
            json!({
                "url": format!("{url}/required_pull_request_reviews"),
                "dismiss_stale_reviews": false,
                "require_code_owner_reviews": false,
                "required_approving_review_count": p.required_approving_review_count,
                "require_last_push_approval": false,
            }),
        );
    }
    v
}

/// Required checks in the `checks` form: any app may report them (`app_id: null`).
fn required_checks(p: &Protection) -> Vec<Value> {
    p.required_status_checks
        .iter()
        .map(|c| json!({"context": c, "app_id": null}))
        .collect()
}

/// The `protection` summary inside `GET …/branches/{branch}`.
pub fn branch_protection_summary(p: Option<&Protection>) -> Value {
    let Some(p) = p else {
        return json!({"enabled": false, "required_status_checks": {"enforcement_level": "off", "contexts": [], "checks": []}});
    };
    let level = match (p.required_status_checks.is_empty(), p.enforce_admins) {
        (true, _) => "off",
        (false, true) => "everyone",
        (false, false) => "non_admins",
    };
    json!({
        "enabled": true,
        "required_status_checks": {
            "enforcement_level": level,
            "contexts": p.required_status_checks,
            "checks": required_checks(p),
        },
    })
}

/// The short pull-request shape nested in check runs and suites.
pub fn pull_min(state: &State, u: &Urls, r: &Repo, pr: &PullRequest) -> Value {
    let head_repo = state.repo(&pr.head_repo).map(|h| repo_min(state, u, h));
    json!({
        "url": format!("{}/repos/{}/pulls/{}", u.api, r.full_name(), pr.number),
        "id": pr.id,
        "number": pr.number,
        "head": {"ref": pr.head_ref, "sha": pr.head_sha, "repo": head_repo},
        "base": {"ref": pr.base_ref, "sha": pr.base_sha, "repo": repo_min(state, u, r)},
    })
}

/// GitHub's `author_association` for a login on a repository.
pub fn association(state: &State, r: &Repo, login: &str) -> &'static str {
    if r.owner == login {
        "OWNER"
    } else if r.collaborators.contains_key(login) {
        "COLLABORATOR"
    } else if state
        .teams
        .iter()
        .any(|t| t.org == r.owner && t.members.iter().any(|m| m == login))
    {
        "MEMBER"
    } else {
        "NONE"
    }
}

/// A review; `webhook` selects the lower-case state GitHub puts in `pull_request_review` events.
pub fn review(state: &State, u: &Urls, r: &Repo, pr: &PullRequest, rv: &Review, webhook: bool) -> Value {
    let full = r.full_name();
    let pr_api = format!("{}/repos/{full}/pulls/{}", u.api, pr.number);
    let html = format!(
        "{}/{full}/pull/{}#pullrequestreview-{}",
        u.html(),
        pr.number,
        rv.id
    );
    let state_str = if webhook {
        rv.state.to_lowercase()
    } else {
        rv.state.clone()
    };
    json!({
        "id": rv.id,
        "node_id": node_id("PRR", rv.id),
        "user": login(state, u, &rv.user),
        "body": rv.body,
        "commit_id": rv.commit_id,
        "submitted_at": ts(&rv.submitted_at),
        "state": state_str,
        "html_url": html,
        "pull_request_url": pr_api,
        "author_association": association(state, r, &rv.user),
        "_links": {"html": {"href": html}, "pull_request": {"href": pr_api}},
    })
}

pub fn reactions_summary(url: &str, reactions: &[Reaction]) -> Value {
    let count = |c: &str| reactions.iter().filter(|r| r.content == c).count();
    json!({
        "url": url,
        "total_count": reactions.len(),
        "+1": count("+1"),
        "-1": count("-1"),
        "laugh": count("laugh"),
        "hooray": count("hooray"),
        "confused": count("confused"),
        "heart": count("heart"),
        "rocket": count("rocket"),
        "eyes": count("eyes"),
    })
}

pub fn comment(state: &State, u: &Urls, r: &Repo, c: &IssueComment) -> Value {
    let full = r.full_name();
    let api = format!("{}/repos/{full}/issues/comments/{}", u.api, c.id);
    json!({
        "url": api,
        "html_url": format!("{}/{full}/pull/{}#issuecomment-{}", u.html(), c.issue_number, c.id),
        "issue_url": format!("{}/repos/{full}/issues/{}", u.api, c.issue_number),
        "id": c.id,
        "node_id": node_id("IC", c.id),
        "user": login(state, u, &c.user),
        "created_at": ts(&c.created_at),
        "updated_at": ts(&c.updated_at),
        "author_association": association(state, r, &c.user),
        "performed_via_github_app": null,
        "body": c.body,
        "reactions": reactions_summary(&format!("{api}/reactions"), &c.reactions),
    })
}

pub fn reaction(state: &State, u: &Urls, rc: &Reaction) -> Value {
    json!({
        "id": rc.id,
        "node_id": node_id("REA", rc.id),
        "user": login(state, u, &rc.user),
        "content": rc.content,
        "created_at": ts(&rc.created_at),
    })
}

/// The issue side of a pull request (what `issue_comment` events carry).
pub fn issue_of_pull(state: &State, u: &Urls, r: &Repo, pr: &PullRequest) -> Value {
    let full = r.full_name();
    let api = format!("{}/repos/{full}/issues/{}", u.api, pr.number);
    let html = format!("{}/{full}/pull/{}", u.html(), pr.number);
    let comments = r.comments.iter().filter(|c| c.issue_number == pr.number).count();
    json!({
        "url": api,
        "repository_url": format!("{}/repos/{full}", u.api),
        "labels_url": format!("{api}/labels{{/name}}"),
        "comments_url": format!("{api}/comments"),
        "events_url": format!("{api}/events"),
        "html_url": html,
        "id": pr.id,
        "node_id": node_id("I", pr.id),
        "number": pr.number,
        "title": pr.title,
        "user": login(state, u, &pr.user),
        "labels": [],
        "state": if pr.open { "open" } else { "closed" },
        "locked": false,
        "assignee": null,
        "assignees": [],
        "milestone": null,
        "comments": comments,
        "created_at": ts(&pr.created_at),
        "updated_at": ts(&pr.updated_at),
        "closed_at": pr.closed_at.as_ref().map(ts),
        "author_association": association(state, r, &pr.user),
        "active_lock_reason": null,
        "body": pr.body,
        "reactions": reactions_summary(&format!("{api}/reactions"), &[]),
        "draft": pr.draft,
        "pull_request": {
            "url": format!("{}/repos/{full}/pulls/{}", u.api, pr.number),
            "html_url": html,
            "diff_url": format!("{html}.diff"),
            "patch_url": format!("{html}.patch"),
            "merged_at": pr.merged_at.as_ref().map(ts),
        },
    })
}

pub fn status(state: &State, u: &Urls, r: &Repo, s: &CommitStatus) -> Value {
    json!({
        "url": format!("{}/repos/{}/statuses/{}", u.api, r.full_name(), s.sha),
        "avatar_url": null,
        "id": s.id,
        "node_id": node_id("SC", s.id),
        "state": s.state,
        "description": s.description,
        "target_url": s.target_url,
        "context": s.context,
        "created_at": ts(&s.created_at),
        "updated_at": ts(&s.updated_at),
        "creator": login(state, u, &s.creator),
    })
}

/// The newest status per context for a sha, newest first (what "combined" reports).
pub fn latest_statuses<'a>(r: &'a Repo, sha: &str) -> Vec<&'a CommitStatus> {
    let mut seen = std::collections::HashSet::new();
    r.statuses
        .iter()
        .rev()
        .filter(|s| s.sha == sha)
        .filter(|s| seen.insert(s.context.clone()))
        .collect()
}

/// GitHub's combined state: failure if any failed/errored, pending if any pending or none.
pub fn combined_state(statuses: &[&CommitStatus]) -> &'static str {
    if statuses
        .iter()
        .any(|s| s.state == "failure" || s.state == "error")
    {
        "failure"
    } else if statuses.is_empty() || statuses.iter().any(|s| s.state == "pending") {
        "pending"
    } else {
        "success"
    }
}

fn git_user(name: &str, email: &str, date: &str) -> Value {
    json!({"name": name, "email": email, "date": git_ts(date)})
}

/// A commit in the REST shape (`GET /repos/{o}/{r}/commits/{ref}`, compare, status events).
pub fn commit(state: &State, u: &Urls, r: &Repo, c: &CommitInfo) -> Value {
    let full = r.full_name();
    let api = format!("{}/repos/{full}/commits/{}", u.api, c.sha);
    let html = format!("{}/{full}/commit/{}", u.html(), c.sha);
    let author = account_by_email(state, u, &c.author_email);
    let committer = account_by_email(state, u, &c.committer_email);
    json!({
        "sha": c.sha,
        "node_id": format!("C_{}", c.sha),
        "commit": {
            "author": git_user(&c.author_name, &c.author_email, &c.author_date),
            "committer": git_user(&c.committer_name, &c.committer_email, &c.committer_date),
            "message": c.message,
            "tree": {"sha": c.tree, "url": format!("{}/repos/{full}/git/trees/{}", u.api, c.tree)},
            "url": format!("{}/repos/{full}/git/commits/{}", u.api, c.sha),
            "comment_count": 0,
            "verification": {"verified": false, "reason": "unsigned", "signature": null, "payload": null, "verified_at": null},
        },
        "url": api,
        "html_url": html,
        "comments_url": format!("{api}/comments"),
        "author": author,
        "committer": committer,
        "parents": c.parents.iter().map(|p| json!({
            "sha": p,
            "url": format!("{}/repos/{full}/commits/{p}", u.api),
            "html_url": format!("{}/{full}/commit/{p}", u.html()),
        })).collect::<Vec<_>>(),
    })
}

/// Commits the sim writes use `<id>+<login>@users.noreply.github.com`; map them back to accounts.
fn account_by_email(state: &State, u: &Urls, email: &str) -> Value {
    email
        .split_once('+')
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(login, _)| state.account(login))
        .map(|a| account(u, a))
        .unwrap_or(Value::Null)
}

/// A push commit's author or committer: `username` only when the email maps to an account
/// (GitHub leaves it out, never `null`).
fn git_person(name: &str, email: &str, username: Option<String>) -> Value {
    let mut v = json!({"name": name, "email": email});
    if let Some(login) = username {
        v["username"] = json!(login);
    }
    v
}

/// A commit as push events list it.
pub fn push_commit(
    state: &State,
    u: &Urls,
    r: &Repo,
    c: &CommitInfo,
    changes: &[crate::git::FileChange],
) -> Value {
    let pick = |s: &str| {
        changes
            .iter()
            .filter(|f| f.status == s)
            .map(|f| f.path.clone())
            .collect::<Vec<_>>()
    };
    let username = |email: &str| {
        email
            .split_once('+')
            .and_then(|(_, rest)| rest.split_once('@'))
            .map(|(l, _)| l.to_string())
            .filter(|l| state.account(l).is_some())
    };
    json!({
        "id": c.sha,
        "tree_id": c.tree,
        "distinct": true,
        "message": c.message,
        "timestamp": git_ts(&c.committer_date),
        "url": format!("{}/{}/commit/{}", u.html(), r.full_name(), c.sha),
        "author": git_person(&c.author_name, &c.author_email, username(&c.author_email)),
        "committer": git_person(&c.committer_name, &c.committer_email, username(&c.committer_email)),
        "added": pick("added"),
        "removed": pick("removed"),
        "modified": pick("modified"),
    })
}

pub fn app(state: &State, u: &Urls) -> Value {
    let app = &state.app;
    json!({
        "id": app.id,
        "slug": app.slug,
        "node_id": node_id("A", app.id),
        "owner": account(u, &Account { id: 1, login: "github-sim".into(), kind: AccountKind::Organization }),
        "name": app.slug,
        "description": "GitHub App simulated by github-sim",
        "external_url": u.api,
        "html_url": format!("{}/apps/{}", u.html(), app.slug),
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
        "permissions": app_permissions(),
        "events": ["push", "create", "delete", "pull_request", "pull_request_review", "issue_comment", "status", "check_run", "workflow_run"],
        "installations_count": state.installations.len(),
    })
}

pub fn app_permissions() -> Value {
    json!({
        "checks": "write", "contents": "write", "deployments": "write", "issues": "write",
        "members": "read", "metadata": "read", "pull_requests": "write", "statuses": "write",
        "actions": "read",
    })
}

/// An installation as the REST API and the `installation` webhooks show it.
pub fn installation(state: &State, u: &Urls, inst: &Installation) -> Value {
    let app = &state.app;
    let id = inst.id;
    let (account_json, target_id, target_type) = match &inst.target {
        InstallTarget::Everywhere => {
            // The first organization, else the first user.
            let shown = state
                .accounts
                .values()
                .find(|a| a.kind == AccountKind::Organization)
                .or_else(|| state.accounts.values().find(|a| a.kind == AccountKind::User))
                .cloned()
                .unwrap_or(Account {
                    id: 1,
                    login: "github-sim".into(),
                    kind: AccountKind::Organization,
                });
            (account(u, &shown), shown.id, shown.kind.as_str())
        }
        InstallTarget::Account(login) => {
            let a = state.account(login).cloned().unwrap_or(Account {
                id: 0,
                login: login.clone(),
                kind: AccountKind::User,
            });
            (account(u, &a), a.id, a.kind.as_str())
        }
        InstallTarget::Enterprise { id: ent, slug } => (
            // GitHub's `enterprise` shape: no login, no type.
            json!({
                "id": ent,
                "slug": slug,
                "name": slug,
                "node_id": node_id("E", *ent),
                "avatar_url": format!("{}/avatars/e/{ent}", u.api),
                "description": null,
                "website_url": null,
                "html_url": format!("{}/enterprises/{slug}", u.html()),
                "created_at": "2024-01-01T00:00:00Z",
                "updated_at": "2024-01-01T00:00:00Z",
            }),
            *ent,
            "Enterprise",
        ),
    };
    let suspended_by = inst.suspended_at.map(|_| {
        account(
            u,
            &Account {
                id: 1,
                login: "github-sim".into(),
                kind: AccountKind::User,
            },
        )
    });
    json!({
        "id": id,
        "account": account_json,
        "repository_selection": if inst.selected.is_some() { "selected" } else { "all" },
        "access_tokens_url": format!("{}/app/installations/{id}/access_tokens", u.api),
        "repositories_url": format!("{}/installation/repositories", u.api),
        "html_url": format!("{}/settings/installations/{id}", u.html()),
        "app_id": app.id,
        "app_slug": app.slug,
        "target_id": target_id,
        "target_type": target_type,
        "permissions": app_permissions(),
        "events": ["push", "pull_request", "issue_comment"],
        "created_at": ts(&inst.created_at),
        "updated_at": ts(&inst.created_at),
        "single_file_name": null,
        "suspended_at": inst.suspended_at.as_ref().map(ts),
        "suspended_by": suspended_by,
    })
}

/// The `installation` object other webhook payloads carry.
pub fn installation_ref(id: u64) -> Value {
    json!({"id": id, "node_id": node_id("IN", id)})
}

/// A repository as `installation` and `installation_repositories` webhooks list it.
pub fn installation_repo(r: &Repo) -> Value {
    json!({
        "id": r.id,
        "node_id": node_id("R", r.id),
        "name": r.name,
        "full_name": r.full_name(),
        "private": r.private,
    })
}

pub fn check_run(state: &State, u: &Urls, r: &Repo, c: &CheckRun) -> Value {
    let full = r.full_name();
    let api = format!("{}/repos/{full}/check-runs/{}", u.api, c.id);
    let prs: Vec<Value> = r
        .pulls
        .iter()
        .filter(|p| p.open && p.head_sha == c.head_sha)
        .map(|p| pull_min(state, u, r, p))
        .collect();
    json!({
        "id": c.id,
        "node_id": node_id("CR", c.id),
        "head_sha": c.head_sha,
        "external_id": c.external_id.clone().unwrap_or_default(),
        "url": api,
        "html_url": format!("{}/{full}/runs/{}", u.html(), c.id),
        // GitHub: "If the integrator does not provide this, then the homepage of the GitHub
        // app is used"; never null (the webhook schema types it a string).
        "details_url": c
            .details_url
            .clone()
            .unwrap_or_else(|| format!("{}/apps/{}", u.html(), state.app.slug)),
        "status": c.status,
        "conclusion": c.conclusion,
        "started_at": ts(&c.started_at),
        "completed_at": c.completed_at.as_ref().map(ts),
        "output": {
            "title": c.output_title,
            "summary": c.output_summary,
            "text": c.output_text,
            "annotations_count": 0,
            "annotations_url": format!("{api}/annotations"),
        },
        "name": c.name,
        "check_suite": {
            "id": c.check_suite_id,
            "node_id": node_id("CS", c.check_suite_id),
            "head_branch": c.head_branch,
            "head_sha": c.head_sha,
            "status": c.status,
            "conclusion": c.conclusion,
            "url": format!("{}/repos/{full}/check-suites/{}", u.api, c.check_suite_id),
            "before": null,
            "after": c.head_sha,
            "pull_requests": prs.clone(),
            "app": app(state, u),
            "created_at": ts(&c.started_at),
            "updated_at": ts(&c.completed_at.unwrap_or(c.started_at)),
        },
        "app": app(state, u),
        "pull_requests": prs,
    })
}

pub fn workflow(u: &Urls, r: &Repo, w: &WorkflowRun) -> Value {
    let full = r.full_name();
    json!({
        "badge_url": format!("{}/{full}/workflows/{}/badge.svg", u.html(), w.name),
        "created_at": ts(&w.created_at),
        "html_url": format!("{}/{full}/blob/{}/{}", u.html(), r.default_branch, w.path),
        "id": w.workflow_id,
        "name": w.name,
        "node_id": node_id("W", w.workflow_id),
        "path": w.path,
        "state": "active",
        "updated_at": ts(&w.created_at),
        "url": format!("{}/repos/{full}/actions/workflows/{}", u.api, w.workflow_id),
    })
}

pub fn workflow_run(state: &State, u: &Urls, r: &Repo, w: &WorkflowRun) -> Value {
    let full = r.full_name();
    let api = format!("{}/repos/{full}/actions/runs/{}", u.api, w.id);
    let head_commit = r.git.commit_info(&w.head_sha).ok().map(|c| {
        json!({
            "id": c.sha,
            "tree_id": c.tree,
            "message": c.message,
            "timestamp": git_ts(&c.committer_date),
            "author": {"name": c.author_name, "email": c.author_email},
            "committer": {"name": c.committer_name, "email": c.committer_email},
        })
    });
    let prs: Vec<Value> = r
        .pulls
        .iter()
        .filter(|p| p.open && p.head_sha == w.head_sha)
        .map(|p| pull_min(state, u, r, p))
        .collect();
    json!({
        "id": w.id,
        "name": w.name,
        "node_id": node_id("WFR", w.id),
        "head_branch": w.head_branch,
        "head_sha": w.head_sha,
        "path": w.path,
        "display_title": w.name,
        "run_number": w.run_number,
        "run_attempt": 1,
        "event": w.event,
        "status": w.status,
        "conclusion": w.conclusion,
        "workflow_id": w.workflow_id,
        "check_suite_id": w.check_suite_id,
        "check_suite_node_id": node_id("CS", w.check_suite_id),
        "url": api,
        "html_url": format!("{}/{full}/actions/runs/{}", u.html(), w.id),
        "pull_requests": prs,
        "created_at": ts(&w.created_at),
        "updated_at": ts(&w.updated_at),
        "run_started_at": ts(&w.created_at),
        "actor": login(state, u, &w.actor),
        "triggering_actor": login(state, u, &w.actor),
        "jobs_url": format!("{api}/jobs"),
        "logs_url": format!("{api}/logs"),
        "check_suite_url": format!("{}/repos/{full}/check-suites/{}", u.api, w.check_suite_id),
        "artifacts_url": format!("{api}/artifacts"),
        "cancel_url": format!("{api}/cancel"),
        "rerun_url": format!("{api}/rerun"),
        "previous_attempt_url": null,
        "workflow_url": format!("{}/repos/{full}/actions/workflows/{}", u.api, w.workflow_id),
        "head_commit": head_commit,
        "repository": repo(state, u, r),
        "head_repository": repo(state, u, r),
    })
}

pub fn deployment(state: &State, u: &Urls, r: &Repo, d: &Deployment) -> Value {
    let api = format!("{}/repos/{}/deployments/{}", u.api, r.full_name(), d.id);
    json!({
        "url": api,
        "id": d.id,
        "node_id": node_id("DE", d.id),
        "sha": d.sha,
        "ref": d.git_ref,
        "task": d.task,
        "payload": d.payload,
        "original_environment": d.environment,
        "environment": d.environment,
        "description": d.description,
        "creator": login(state, u, &d.creator),
        "created_at": ts(&d.created_at),
        "updated_at": ts(&d.updated_at),
        "statuses_url": format!("{api}/statuses"),
        "repository_url": format!("{}/repos/{}", u.api, r.full_name()),
        "transient_environment": d.transient_environment,
        "production_environment": d.production_environment,
        "performed_via_github_app": null,
    })
}

pub fn deployment_status(state: &State, u: &Urls, r: &Repo, d: &Deployment, s: &DeploymentStatus) -> Value {
    let dep = format!("{}/repos/{}/deployments/{}", u.api, r.full_name(), d.id);
    json!({
        "url": format!("{dep}/statuses/{}", s.id),
        "id": s.id,
        "node_id": node_id("DES", s.id),
        "state": s.state,
        "creator": login(state, u, &s.creator),
        "description": s.description,
        "environment": s.environment,
        "target_url": s.log_url,
        "log_url": s.log_url,
        "environment_url": s.environment_url,
        "created_at": ts(&s.created_at),
        "updated_at": ts(&s.created_at),
        "deployment_url": dep,
        "repository_url": format!("{}/repos/{}", u.api, r.full_name()),
        "performed_via_github_app": null,
    })
}
