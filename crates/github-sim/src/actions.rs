//! State changes GitHub notifies about. The REST handlers and the test driver both go through
//! these, so a change made either way emits the same webhooks.

use chrono::Utc;
use serde_json::{Map, Value, json};

use crate::Inner;
use crate::error::{ApiError, ApiResult};
use crate::git::{Signature, ZERO_SHA};
use crate::protection;
use crate::render;
use crate::state::{
    AccountKind, CheckRun, CommitStatus, IssueComment, PullRequest, Reaction, Review, State, WorkflowRun,
};

/// The fields every event carries: repository, sender, installation (+ organization).
/// `installation` is left out where the App is not installed, which `emit` takes as "send nothing".
pub fn envelope(inner: &Inner, st: &State, repo: &str, sender: &str) -> Map<String, Value> {
    let u = &inner.urls;
    let mut m = Map::new();
    if let Some(r) = st.repo(repo) {
        m.insert("repository".into(), render::repo(st, u, r));
        if let Some(owner) = st
            .account(&r.owner)
            .filter(|a| a.kind == AccountKind::Organization)
        {
            let api = format!("{}/orgs/{}", u.api, owner.login);
            m.insert(
                "organization".into(),
                json!({
                    "login": owner.login, "id": owner.id, "node_id": format!("O_{}", owner.id),
                    "url": api, "repos_url": format!("{api}/repos"), "events_url": format!("{api}/events"),
                    "hooks_url": format!("{api}/hooks"), "issues_url": format!("{api}/issues"),
                    "members_url": format!("{api}/members{{/member}}"),
                    "public_members_url": format!("{api}/public_members{{/member}}"),
                    "avatar_url": format!("{}/avatars/u/{}", u.api, owner.id), "description": null,
                }),
            );
        }
    }
    m.insert("sender".into(), render::login(st, u, sender));
    // The App hears of a repository only through an installation that reaches it and is not
    // suspended; without one, `emit` sends nothing.
    let installation = st
        .repo(repo)
        .and_then(|r| st.installation_of(r))
        .filter(|i| i.suspended_at.is_none());
    if let Some(i) = installation {
        m.insert("installation".into(), render::installation_ref(i.id));
    }
    m
}

fn short_sha(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

pub(crate) fn emit(inner: &Inner, event: &str, head: Value, env: Map<String, Value>) {
    let mut payload = match head {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    for (k, v) in env {
        payload.entry(k).or_insert(v);
    }
    if !payload.contains_key("installation") {
        return;
    }
    inner.hooks.enqueue(event, Value::Object(payload));
}

pub fn signature(st: &State, login: &str) -> Signature {
    Signature {
        name: login.to_string(),
        email: render::noreply_email(st, login),
    }
}

fn repo_exists(st: &State, repo: &str) -> ApiResult<()> {
    st.repo(repo).map(|_| ()).ok_or_else(ApiError::not_found)
}

/// Emits push (+ create/delete) for a ref change and keeps pull requests in step with their
/// head branches (refs/pull/N/head, `synchronize`).
pub fn ref_updated(
    inner: &Inner,
    st: &mut State,
    repo: &str,
    full_ref: &str,
    old: Option<&str>,
    new: Option<&str>,
    sender: &str,
) -> ApiResult<()> {
    let u = &inner.urls;
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    let (ref_type, short) = if let Some(b) = full_ref.strip_prefix("refs/heads/") {
        ("branch", b)
    } else if let Some(t) = full_ref.strip_prefix("refs/tags/") {
        ("tag", t)
    } else {
        return Ok(()); // other namespaces (refs/pull, notes) make no events
    };
    let commit_of = |obj: &str| r.git.resolve(obj);
    let new_commit = new.and_then(commit_of);
    let old_commit = old.and_then(commit_of);
    // Commits new to the repository (created ref) or new on this ref (update), max 20 like GitHub.
    let commits: Vec<String> = match (&old_commit, &new_commit) {
        (_, None) => Vec::new(),
        (Some(o), Some(n)) => r.git.rev_list(n, &[o], 20)?,
        (None, Some(n)) => {
            let others: Vec<String> = r
                .git
                .list_refs("refs/heads/")?
                .into_iter()
                .filter(|(name, _)| name != full_ref)
                .map(|(_, sha)| sha)
                .collect();
            let others: Vec<&str> = others.iter().map(String::as_str).collect();
            r.git.rev_list(n, &others, 20)?
        }
    };
    let mut commit_json = Vec::new();
    for sha in &commits {
        let info = r.git.commit_info(sha)?;
        let parent = info.parents.first().cloned();
        let changes = r.git.diff_files(parent.as_deref(), sha)?;
        commit_json.push(render::push_commit(st, u, r, &info, &changes));
    }
    let head_commit = match &new_commit {
        Some(n) => {
            let info = r.git.commit_info(n)?;
            let parent = info.parents.first().cloned();
            let changes = r.git.diff_files(parent.as_deref(), n)?;
            render::push_commit(st, u, r, &info, &changes)
        }
        None => Value::Null,
    };
    let forced = matches!((&old_commit, &new_commit), (Some(o), Some(n)) if !r.git.is_ancestor(o, n));
    let before = old.unwrap_or(ZERO_SHA);
    let after = new.unwrap_or(ZERO_SHA);
    let html = format!("{}/{}", u.html(), r.full_name());
    let compare = match (old, new) {
        (Some(o), Some(n)) => format!("{html}/compare/{}...{}", short_sha(o), short_sha(n)),
        (None, Some(n)) => format!("{html}/commit/{n}"),
        _ => format!("{html}/compare/{}...0000000000", short_sha(before)),
    };
    let mut env = envelope(inner, st, repo, sender);
    env.insert("repository".into(), render::push_repo(st, u, r));
    let push = json!({
        "ref": full_ref,
        "before": before,
        "after": after,
        "created": old.is_none(),
        "deleted": new.is_none(),
        "forced": forced,
        "base_ref": null,
        "compare": compare,
        "commits": commit_json,
        "head_commit": head_commit,
        "pusher": {"name": sender, "email": render::noreply_email(st, sender)},
    });
    emit(inner, "push", push, env);
    if old.is_none() {
        let head = json!({
            "ref": short, "ref_type": ref_type, "master_branch": r.default_branch,
            "description": null, "pusher_type": "user",
        });
        emit(inner, "create", head, envelope(inner, st, repo, sender));
    }
    if new.is_none() {
        let head = json!({"ref": short, "ref_type": ref_type, "pusher_type": "user"});
        emit(inner, "delete", head, envelope(inner, st, repo, sender));
    }

    if ref_type == "branch" {
        match &new_commit {
            Some(n) => sync_pulls_with_head(inner, st, repo, short, n, sender)?,
            None => close_pulls_of_deleted_branch(inner, st, repo, short, sender)?,
        }
        refresh_base_shas(st, repo, short, new_commit.as_deref());
    }
    Ok(())
}

/// GitHub closes open PRs whose head or base branch is deleted (`pull_request` closed).
fn close_pulls_of_deleted_branch(
    inner: &Inner,
    st: &mut State,
    repo: &str,
    branch: &str,
    sender: &str,
) -> ApiResult<()> {
    let mut targets: Vec<(String, u64)> = Vec::new();
    for (name, r) in &st.repos {
        for p in r.pulls.iter().filter(|p| p.open) {
            let head_gone = p.head_repo == repo && p.head_ref == branch;
            let base_gone = name == repo && p.base_ref == branch;
            if head_gone || base_gone {
                targets.push((name.clone(), p.number));
            }
        }
    }
    for (base_repo, number) in targets {
        if let Some(pr) = st.repo_mut(&base_repo).and_then(|r| r.pull_mut(number)) {
            let now = Utc::now();
            pr.open = false;
            pr.closed_at = Some(now);
            pr.updated_at = now;
        }
        let head = pull_event(inner, st, &base_repo, number, "closed")?;
        emit(
            inner,
            "pull_request",
            head,
            envelope(inner, st, &base_repo, sender),
        );
    }
    Ok(())
}

/// Open PRs whose head is `repo:branch` move to `sha` and announce `synchronize`.
fn sync_pulls_with_head(
    inner: &Inner,
    st: &mut State,
    repo: &str,
    branch: &str,
    sha: &str,
    sender: &str,
) -> ApiResult<()> {
    let targets: Vec<(String, u64)> = st
        .repos
        .iter()
        .flat_map(|(name, r)| {
            r.pulls
                .iter()
                .filter(|p| p.open && p.head_repo == repo && p.head_ref == branch && p.head_sha != sha)
                .map(move |p| (name.clone(), p.number))
        })
        .collect();
    let lag = st.mergeable_lag;
    for (base_repo, number) in targets {
        let head_path = st
            .repo(repo)
            .map(|r| r.git.path().to_path_buf())
            .ok_or_else(ApiError::not_found)?;
        let r = st.repo_mut(&base_repo).ok_or_else(ApiError::not_found)?;
        r.git.fetch_ref(
            &head_path,
            &format!("refs/heads/{branch}"),
            &format!("refs/pull/{number}/head"),
        )?;
        let Some(pr) = r.pull_mut(number) else {
            continue;
        };
        let before = std::mem::replace(&mut pr.head_sha, sha.to_string());
        let base_tip = pr.base_sha.clone();
        pr.recompute_mergeability(lag, &base_tip);
        pr.updated_at = Utc::now();
        let head = pull_event(inner, st, &base_repo, number, "synchronize")?;
        let mut head = head;
        if let Some(obj) = head.as_object_mut() {
            obj.insert("before".into(), json!(before));
            obj.insert("after".into(), json!(sha));
        }
        emit(
            inner,
            "pull_request",
            head,
            envelope(inner, st, &base_repo, sender),
        );
    }
    Ok(())
}

fn refresh_base_shas(st: &mut State, repo: &str, branch: &str, sha: Option<&str>) {
    let Some(sha) = sha else { return };
    let lag = st.mergeable_lag;
    if let Some(r) = st.repo_mut(repo) {
        for p in r
            .pulls
            .iter_mut()
            .filter(|p| p.open && p.base_ref == branch && p.base_sha != sha)
        {
            p.base_sha = sha.to_string();
            p.recompute_mergeability(lag, sha);
        }
    }
}

fn pull_event(inner: &Inner, st: &State, repo: &str, number: u64, action: &str) -> ApiResult<Value> {
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    let pr = r.pull(number).ok_or_else(ApiError::not_found)?;
    Ok(json!({
        "action": action,
        "number": number,
        "pull_request": render::pull(st, &inner.urls, r, pr),
    }))
}

/// Commits `files` on top of `branch` (a new branch starts at the default branch's tip) and
/// emits the push.
/// A `None` content deletes the path.
pub fn push_files(
    inner: &Inner,
    repo: &str,
    branch: &str,
    files: &[(&str, Option<&str>)],
    message: &str,
    author: &str,
) -> ApiResult<String> {
    let mut st = inner.lock();
    st.ensure_account(author, AccountKind::User);
    let sig = signature(&st, author);
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    let full_ref = format!("refs/heads/{branch}");
    let old = r.git.ref_target(&full_ref);
    // A new branch starts from the default branch, like `git switch -c` would.
    let parent = old
        .clone()
        .or_else(|| r.git.resolve(&format!("refs/heads/{}", r.default_branch)));
    let new = r.git.commit_files(parent.as_deref(), files, message, &sig)?;
    r.git.update_ref(&full_ref, &new, old.as_deref())?;
    ref_updated(
        inner,
        &mut st,
        repo,
        &full_ref,
        old.as_deref(),
        Some(&new),
        author,
    )?;
    Ok(new)
}

/// Creates a ref (`refs/heads/…` or `refs/tags/…`) at `sha`; 422 when it exists.
pub fn create_ref(inner: &Inner, repo: &str, full_ref: &str, sha: &str, sender: &str) -> ApiResult<()> {
    let mut st = inner.lock();
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    if !full_ref.starts_with("refs/") || full_ref.matches('/').count() < 2 {
        return Err(ApiError::unprocessable(
            "Reference name must start with 'refs/' and have at least two slashes.",
        ));
    }
    if r.git.ref_target(full_ref).is_some() {
        return Err(ApiError::unprocessable("Reference already exists"));
    }
    if r.git.object_type(sha).is_none() {
        return Err(ApiError::unprocessable("Object does not exist"));
    }
    r.git.update_ref(full_ref, sha, None)?;
    ref_updated(inner, &mut st, repo, full_ref, None, Some(sha), sender)
}

/// Moves a ref; without `force` only fast-forwards (GitHub's 422 otherwise).
pub fn move_ref(
    inner: &Inner,
    repo: &str,
    full_ref: &str,
    sha: &str,
    force: bool,
    sender: &str,
) -> ApiResult<()> {
    let mut st = inner.lock();
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    let old = r
        .git
        .ref_target(full_ref)
        .ok_or_else(|| ApiError::unprocessable("Reference does not exist"))?;
    if r.git.object_type(sha).is_none() {
        return Err(ApiError::unprocessable("Object does not exist"));
    }
    if !force && !r.git.is_ancestor(&old, sha) {
        return Err(ApiError::unprocessable("Update is not a fast forward"));
    }
    if old == sha {
        return Ok(());
    }
    r.git.update_ref(full_ref, sha, Some(&old))?;
    ref_updated(inner, &mut st, repo, full_ref, Some(&old), Some(sha), sender)
}

pub fn delete_ref(inner: &Inner, repo: &str, full_ref: &str, sender: &str) -> ApiResult<()> {
    let mut st = inner.lock();
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    let old = r
        .git
        .ref_target(full_ref)
        .ok_or_else(|| ApiError::unprocessable("Reference does not exist"))?;
    r.git.delete_ref(full_ref, &old)?;
    ref_updated(inner, &mut st, repo, full_ref, Some(&old), None, sender)
}

/// Replays ref updates a client pushed over git (reported by the post-receive hook).
pub fn external_push(inner: &Inner, repo: &str, lines: &str, sender: &str) -> ApiResult<()> {
    let mut st = inner.lock();
    repo_exists(&st, repo)?;
    for line in lines.lines() {
        let mut it = line.split_whitespace();
        let (Some(old), Some(new), Some(name)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let is_sha = |s: &str| s.len() == 40 && s.chars().all(|c| c.is_ascii_hexdigit());
        if !is_sha(old) || !is_sha(new) {
            return Err(ApiError::bad_request(format!("not a post-receive line: {line}")));
        }
        let old = (old != ZERO_SHA).then_some(old);
        let new = (new != ZERO_SHA).then_some(new);
        ref_updated(inner, &mut st, repo, name, old, new, sender)?;
    }
    Ok(())
}

/// Parameters for opening a pull request.
#[derive(Debug, Clone, Default)]
pub struct NewPull {
    /// `branch` (same repository) or `owner:branch` (a fork of the base repository).
    pub head: String,
    pub base: String,
    pub title: String,
    pub body: String,
    pub draft: bool,
}

pub fn open_pull(inner: &Inner, repo: &str, new: &NewPull, user: &str) -> ApiResult<u64> {
    let mut st = inner.lock();
    st.ensure_account(user, AccountKind::User);
    let base_repo = st.repo(repo).ok_or_else(ApiError::not_found)?;
    let (head_repo, head_ref) = match new.head.split_once(':') {
        Some((owner, branch)) if owner != base_repo.owner => {
            // A fork: the head repository is the owner's fork of the base repository.
            let fork = st
                .repos
                .values()
                .find(|r| r.owner == owner && r.fork_of.as_deref() == Some(repo))
                .map(|r| r.full_name())
                .ok_or_else(|| {
                    ApiError::validation(
                        "PullRequest",
                        format!("head repository {owner} has no fork of {repo}"),
                    )
                })?;
            (fork, branch.to_string())
        }
        Some((_, branch)) => (repo.to_string(), branch.to_string()),
        None => (repo.to_string(), new.head.clone()),
    };
    let head_git = st.repo(&head_repo).ok_or_else(ApiError::not_found)?;
    let head_sha = head_git
        .git
        .resolve(&format!("refs/heads/{head_ref}"))
        .ok_or_else(|| ApiError::validation("PullRequest", "head: invalid"))?;
    let head_path = head_git.git.path().to_path_buf();
    let base_repo = st.repo(repo).ok_or_else(ApiError::not_found)?;
    let base_sha = base_repo
        .git
        .resolve(&format!("refs/heads/{}", new.base))
        .ok_or_else(|| ApiError::validation("PullRequest", "base: invalid"))?;
    if base_repo
        .pulls
        .iter()
        .any(|p| p.open && p.head_repo == head_repo && p.head_ref == head_ref && p.base_ref == new.base)
    {
        let owner = head_repo.split('/').next().unwrap_or_default();
        return Err(ApiError::validation(
            "PullRequest",
            format!("A pull request already exists for {owner}:{head_ref}."),
        ));
    }
    if base_repo.git.is_ancestor(&head_sha, &base_sha) && head_repo == repo {
        return Err(ApiError::validation(
            "PullRequest",
            format!("No commits between {} and {head_ref}", new.base),
        ));
    }
    let id = st.next_id();
    let lag = st.mergeable_lag;
    let r = st.repo_mut(repo).ok_or_else(ApiError::not_found)?;
    r.next_number += 1;
    let number = r.next_number;
    r.git.fetch_ref(
        &head_path,
        &format!("refs/heads/{head_ref}"),
        &format!("refs/pull/{number}/head"),
    )?;
    let now = Utc::now();
    r.pulls.push(PullRequest {
        id,
        number,
        title: new.title.clone(),
        body: new.body.clone(),
        user: user.to_string(),
        head_repo,
        head_ref,
        head_sha,
        base_ref: new.base.clone(),
        compared_base_sha: base_sha.clone(),
        base_sha,
        open: true,
        draft: new.draft,
        merged: false,
        merged_at: None,
        merged_by: None,
        merge_commit_sha: None,
        mergeable_override: None,
        unknown_reads: lag,
        base_modified_once: false,
        created_at: now,
        updated_at: now,
        closed_at: None,
        reviews: Vec::new(),
    });
    let head = pull_event(inner, &st, repo, number, "opened")?;
    emit(inner, "pull_request", head, envelope(inner, &st, repo, user));
    Ok(number)
}

/// Edits title/body (`edited` with `changes`) and closes or reopens (`closed` / `reopened`).
pub fn edit_pull(
    inner: &Inner,
    repo: &str,
    number: u64,
    title: Option<String>,
    body: Option<String>,
    open: Option<bool>,
    sender: &str,
) -> ApiResult<()> {
    let mut st = inner.lock();
    let lag = st.mergeable_lag;
    let r = st.repo_mut(repo).ok_or_else(ApiError::not_found)?;
    let pr = r.pull_mut(number).ok_or_else(ApiError::not_found)?;
    let mut changes = Map::new();
    if let Some(t) = title.filter(|t| *t != pr.title) {
        changes.insert(
            "title".into(),
            json!({"from": std::mem::replace(&mut pr.title, t)}),
        );
    }
    if let Some(b) = body.filter(|b| *b != pr.body) {
        changes.insert("body".into(), json!({"from": std::mem::replace(&mut pr.body, b)}));
    }
    pr.updated_at = Utc::now();
    let action = match open {
        Some(false) if pr.open => {
            pr.open = false;
            pr.closed_at = Some(Utc::now());
            Some("closed")
        }
        Some(true) if !pr.open && !pr.merged => {
            pr.open = true;
            pr.closed_at = None;
            let tip = pr.base_sha.clone();
            pr.recompute_mergeability(lag, &tip);
            Some("reopened")
        }
        Some(true) if pr.merged => {
            return Err(ApiError::validation(
                "PullRequest",
                "state cannot be changed. The pull request has been merged.",
            ));
        }
        _ => None,
    };
    if !changes.is_empty() {
        let mut head = pull_event(inner, &st, repo, number, "edited")?;
        if let Some(obj) = head.as_object_mut() {
            obj.insert("changes".into(), Value::Object(changes));
        }
        emit(inner, "pull_request", head, envelope(inner, &st, repo, sender));
    }
    if let Some(action) = action {
        let head = pull_event(inner, &st, repo, number, action)?;
        emit(inner, "pull_request", head, envelope(inner, &st, repo, sender));
    }
    Ok(())
}

/// How to merge (the body of `PUT /pulls/{n}/merge`).
#[derive(Debug, Clone, Default)]
pub struct MergeOptions {
    /// Refuse with 409 unless the PR head is still this commit.
    pub expected_sha: Option<String>,
    /// `merge` (default), `squash`, or `rebase` (simulated as one squashed commit).
    pub method: Option<String>,
    pub title: Option<String>,
    pub message: Option<String>,
}

/// Merges for real in the bare repository and emits push + `pull_request` closed (merged).
pub fn merge_pull(
    inner: &Inner,
    repo: &str,
    number: u64,
    opts: &MergeOptions,
    sender: &str,
) -> ApiResult<String> {
    let method = opts.method.as_deref().unwrap_or("merge");
    let title = opts.title.as_deref();
    let message = opts.message.as_deref();
    let mut st = inner.lock();
    st.ensure_account(sender, AccountKind::User);
    let sig = signature(&st, sender);
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    let pr = r.pull(number).ok_or_else(ApiError::not_found)?;
    if !pr.open || pr.merged || pr.draft || pr.mergeable_override == Some(false) {
        return Err(ApiError::new(405, protection::NOT_MERGEABLE));
    }
    if let Some(expected) = &opts.expected_sha
        && *expected != pr.head_sha
    {
        return Err(ApiError::new(
            409,
            "Head branch was modified. Review and try the merge again.",
        ));
    }
    let base_ref = format!("refs/heads/{}", pr.base_ref);
    let base_tip = r
        .git
        .resolve(&base_ref)
        .ok_or_else(|| ApiError::new(405, "Base branch was deleted"))?;
    // Mergeability still being computed against a base that has since moved (or the driver's
    // one-off): GitHub refuses rather than merge what nobody compared. The attempt itself
    // compares them, so a retry goes through.
    let stale = pr.unknown_reads > 0 && pr.compared_base_sha != base_tip;
    if pr.base_modified_once || stale {
        let pr = st
            .repo_mut(repo)
            .and_then(|r| r.pull_mut(number))
            .ok_or_else(ApiError::not_found)?;
        pr.base_modified_once = false;
        pr.compared_base_sha = base_tip;
        return Err(ApiError::new(405, protection::BASE_MODIFIED));
    }
    let tree = r
        .git
        .merge_tree(&base_tip, &pr.head_sha)?
        .ok_or_else(|| ApiError::new(405, protection::NOT_MERGEABLE))?;
    if let Some(refusal) = protection::refusal(&st, r, pr)
        && !protection::bypasses(&st, r, pr, sender)
    {
        return Err(ApiError::new(405, refusal.message));
    }
    let head_label = format!(
        "{}/{}",
        pr.head_repo.split('/').next().unwrap_or_default(),
        pr.head_ref
    );
    let default_title = match method {
        "merge" => format!("Merge pull request #{number} from {head_label}"),
        _ => format!("{} (#{number})", pr.title),
    };
    let mut msg = title.map(str::to_string).unwrap_or(default_title);
    let body = message.map(str::to_string).unwrap_or_else(|| {
        if method == "merge" {
            pr.title.clone()
        } else {
            String::new()
        }
    });
    if !body.is_empty() {
        msg = format!("{msg}\n\n{body}");
    }
    let merge_sha = match method {
        "merge" => r.git.commit_tree(&tree, &[&base_tip, &pr.head_sha], &msg, &sig)?,
        "squash" | "rebase" => r.git.commit_tree(&tree, &[&base_tip], &msg, &sig)?,
        other => {
            return Err(ApiError::validation(
                "PullRequest",
                format!("merge_method {other} is not supported"),
            ));
        }
    };
    // Compare-and-swap: a concurrent push to the base loses nothing, the merge fails instead.
    r.git
        .update_ref(&base_ref, &merge_sha, Some(&base_tip))
        .map_err(|_| ApiError::new(405, protection::BASE_MODIFIED))?;
    let r = st.repo_mut(repo).ok_or_else(ApiError::not_found)?;
    let base_branch;
    {
        let pr = r.pull_mut(number).ok_or_else(ApiError::not_found)?;
        let now = Utc::now();
        pr.open = false;
        pr.merged = true;
        pr.merged_at = Some(now);
        pr.closed_at = Some(now);
        pr.updated_at = now;
        pr.merged_by = Some(sender.to_string());
        pr.merge_commit_sha = Some(merge_sha.clone());
        pr.base_sha = base_tip.clone();
        base_branch = pr.base_ref.clone();
    }
    ref_updated(
        inner,
        &mut st,
        repo,
        &format!("refs/heads/{base_branch}"),
        Some(&base_tip),
        Some(&merge_sha),
        sender,
    )?;
    let head = pull_event(inner, &st, repo, number, "closed")?;
    emit(inner, "pull_request", head, envelope(inner, &st, repo, sender));
    Ok(merge_sha)
}

/// Submits a review. `state` in REST spelling: `APPROVED`, `CHANGES_REQUESTED`, `COMMENTED`.
pub fn submit_review(
    inner: &Inner,
    repo: &str,
    number: u64,
    user: &str,
    state: &str,
    body: &str,
    commit_id: Option<&str>,
) -> ApiResult<u64> {
    if !matches!(state, "APPROVED" | "CHANGES_REQUESTED" | "COMMENTED") {
        return Err(ApiError::validation(
            "PullRequestReview",
            format!("unknown review state {state}"),
        ));
    }
    let mut st = inner.lock();
    st.ensure_account(user, AccountKind::User);
    let id = st.next_id();
    let r = st.repo_mut(repo).ok_or_else(ApiError::not_found)?;
    let pr = r.pull_mut(number).ok_or_else(ApiError::not_found)?;
    if pr.user == user && state != "COMMENTED" {
        return Err(ApiError::unprocessable("Can not approve your own pull request"));
    }
    let review = Review {
        id,
        user: user.to_string(),
        state: state.to_string(),
        body: body.to_string(),
        commit_id: commit_id
            .map(str::to_string)
            .unwrap_or_else(|| pr.head_sha.clone()),
        submitted_at: Utc::now(),
    };
    pr.reviews.push(review);
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    let pr = r.pull(number).ok_or_else(ApiError::not_found)?;
    let rv = pr.reviews.last().ok_or_else(ApiError::not_found)?;
    let head = json!({
        "action": "submitted",
        "review": render::review(&st, &inner.urls, r, pr, rv, true),
        "pull_request": render::pull(&st, &inner.urls, r, pr),
    });
    emit(
        inner,
        "pull_request_review",
        head,
        envelope(inner, &st, repo, user),
    );
    Ok(id)
}

fn comment_event(
    inner: &Inner,
    st: &State,
    repo: &str,
    id: u64,
    action: &str,
    changes: Option<Value>,
) -> ApiResult<Value> {
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    let c = r
        .comments
        .iter()
        .find(|c| c.id == id)
        .ok_or_else(ApiError::not_found)?;
    let pr = r.pull(c.issue_number).ok_or_else(ApiError::not_found)?;
    let mut v = json!({
        "action": action,
        "issue": render::issue_of_pull(st, &inner.urls, r, pr),
        "comment": render::comment(st, &inner.urls, r, c),
    });
    if let (Some(changes), Some(obj)) = (changes, v.as_object_mut()) {
        obj.insert("changes".into(), changes);
    }
    Ok(v)
}

/// Comments on a pull request's conversation (issue comments).
pub fn create_comment(inner: &Inner, repo: &str, number: u64, user: &str, body: &str) -> ApiResult<u64> {
    let mut st = inner.lock();
    st.ensure_account(user, AccountKind::User);
    let id = st.next_id();
    let r = st.repo_mut(repo).ok_or_else(ApiError::not_found)?;
    if r.pull(number).is_none() {
        return Err(ApiError::not_found());
    }
    let now = Utc::now();
    r.comments.push(IssueComment {
        id,
        issue_number: number,
        user: user.to_string(),
        body: body.to_string(),
        created_at: now,
        updated_at: now,
        reactions: Vec::new(),
    });
    let head = comment_event(inner, &st, repo, id, "created", None)?;
    emit(inner, "issue_comment", head, envelope(inner, &st, repo, user));
    Ok(id)
}

pub fn edit_comment(inner: &Inner, repo: &str, id: u64, body: &str, sender: &str) -> ApiResult<()> {
    let mut st = inner.lock();
    let r = st.repo_mut(repo).ok_or_else(ApiError::not_found)?;
    let c = r
        .comments
        .iter_mut()
        .find(|c| c.id == id)
        .ok_or_else(ApiError::not_found)?;
    let from = std::mem::replace(&mut c.body, body.to_string());
    c.updated_at = Utc::now();
    let changes = json!({"body": {"from": from}});
    let head = comment_event(inner, &st, repo, id, "edited", Some(changes))?;
    emit(inner, "issue_comment", head, envelope(inner, &st, repo, sender));
    Ok(())
}

pub const REACTIONS: [&str; 8] = [
    "+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes",
];

/// Adds a reaction; returns (reaction id, newly created). A repeat by the same user is not new.
pub fn add_reaction(
    inner: &Inner,
    repo: &str,
    comment_id: u64,
    user: &str,
    content: &str,
) -> ApiResult<(u64, bool)> {
    if !REACTIONS.contains(&content) {
        return Err(ApiError::validation(
            "Reaction",
            format!("content {content} is not a valid reaction"),
        ));
    }
    let mut st = inner.lock();
    let id = st.next_id();
    let r = st.repo_mut(repo).ok_or_else(ApiError::not_found)?;
    let c = r
        .comments
        .iter_mut()
        .find(|c| c.id == comment_id)
        .ok_or_else(ApiError::not_found)?;
    if let Some(existing) = c
        .reactions
        .iter()
        .find(|x| x.user == user && x.content == content)
    {
        return Ok((existing.id, false));
    }
    c.reactions.push(Reaction {
        id,
        user: user.to_string(),
        content: content.to_string(),
        created_at: Utc::now(),
    });
    Ok((id, true))
}

/// Parameters of a commit status.
#[derive(Debug, Clone, Default)]
pub struct NewStatus {
    pub state: String,
    pub context: String,
    pub description: Option<String>,
    pub target_url: Option<String>,
}

pub fn create_status(inner: &Inner, repo: &str, sha: &str, new: &NewStatus, creator: &str) -> ApiResult<u64> {
    if !matches!(new.state.as_str(), "error" | "failure" | "pending" | "success") {
        return Err(ApiError::validation(
            "Status",
            "state is not included in the list",
        ));
    }
    let mut st = inner.lock();
    let id = st.next_id();
    let r = st.repo_mut(repo).ok_or_else(ApiError::not_found)?;
    let sha = r
        .git
        .resolve(sha)
        .ok_or_else(|| ApiError::unprocessable(format!("No commit found for SHA: {sha}")))?;
    let now = Utc::now();
    r.statuses.push(CommitStatus {
        id,
        sha: sha.clone(),
        state: new.state.clone(),
        context: if new.context.is_empty() {
            "default".into()
        } else {
            new.context.clone()
        },
        description: new.description.clone(),
        target_url: new.target_url.clone(),
        creator: creator.to_string(),
        created_at: now,
        updated_at: now,
    });
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    let s = r.statuses.last().ok_or_else(ApiError::not_found)?;
    let info = r.git.commit_info(&sha)?;
    let branches: Vec<Value> = r
        .git
        .list_refs("refs/heads/")?
        .into_iter()
        .filter(|(_, tip)| *tip == sha || r.git.is_ancestor(&sha, tip))
        .take(10)
        .map(|(name, tip)| {
            json!({
                "name": name.trim_start_matches("refs/heads/"),
                "commit": {"sha": tip, "url": format!("{}/repos/{}/commits/{tip}", inner.urls.api, r.full_name())},
                "protected": r.protections.contains_key(name.trim_start_matches("refs/heads/")),
            })
        })
        .collect();
    let head = json!({
        "id": s.id,
        "sha": sha,
        "name": r.full_name(),
        "target_url": s.target_url,
        "avatar_url": null,
        "context": s.context,
        "description": s.description,
        "state": s.state,
        "commit": render::commit(&st, &inner.urls, r, &info),
        "branches": branches,
        "created_at": render::ts(&s.created_at),
        "updated_at": render::ts(&s.updated_at),
    });
    emit(inner, "status", head, envelope(inner, &st, repo, creator));
    Ok(id)
}

/// Fields of a check run (create and update).
#[derive(Debug, Clone, Default)]
pub struct CheckRunFields {
    pub name: Option<String>,
    pub head_sha: Option<String>,
    pub status: Option<String>,
    pub conclusion: Option<String>,
    pub details_url: Option<String>,
    pub external_id: Option<String>,
    pub title: Option<String>,
    pub summary: Option<String>,
    pub text: Option<String>,
}

fn check_run_event(
    inner: &Inner,
    st: &State,
    repo: &str,
    id: u64,
    action: &str,
    sender: &str,
) -> ApiResult<()> {
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    let c = r
        .check_runs
        .iter()
        .find(|c| c.id == id)
        .ok_or_else(ApiError::not_found)?;
    let head = json!({"action": action, "check_run": render::check_run(st, &inner.urls, r, c)});
    emit(inner, "check_run", head, envelope(inner, st, repo, sender));
    Ok(())
}

fn branch_containing(st: &State, repo: &str, sha: &str) -> Option<String> {
    let r = st.repo(repo)?;
    let refs = r.git.list_refs("refs/heads/").ok()?;
    refs.iter()
        .find(|(_, tip)| tip == sha)
        .or_else(|| refs.iter().find(|(_, tip)| r.git.is_ancestor(sha, tip)))
        .map(|(name, _)| name.trim_start_matches("refs/heads/").to_string())
}

pub fn create_check_run(inner: &Inner, repo: &str, f: &CheckRunFields, sender: &str) -> ApiResult<u64> {
    let name = f
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::validation("CheckRun", "name wasn't supplied"))?;
    let head_sha = f
        .head_sha
        .clone()
        .ok_or_else(|| ApiError::validation("CheckRun", "head_sha wasn't supplied"))?;
    let mut st = inner.lock();
    let id = st.next_id();
    let suite = st.next_id();
    let head_branch = branch_containing(&st, repo, &head_sha);
    let r = st.repo_mut(repo).ok_or_else(ApiError::not_found)?;
    let head_sha = r
        .git
        .resolve(&head_sha)
        .ok_or_else(|| ApiError::validation("CheckRun", "No commit found for SHA"))?;
    let completed = f.conclusion.is_some() || f.status.as_deref() == Some("completed");
    let now = Utc::now();
    r.check_runs.push(CheckRun {
        id,
        check_suite_id: suite,
        name,
        head_sha,
        head_branch,
        status: if completed {
            "completed".into()
        } else {
            f.status.clone().unwrap_or_else(|| "queued".into())
        },
        conclusion: f.conclusion.clone(),
        details_url: f.details_url.clone(),
        external_id: f.external_id.clone(),
        output_title: f.title.clone(),
        output_summary: f.summary.clone(),
        output_text: f.text.clone(),
        started_at: now,
        completed_at: completed.then_some(now),
    });
    check_run_event(inner, &st, repo, id, "created", sender)?;
    if completed {
        check_run_event(inner, &st, repo, id, "completed", sender)?;
    }
    Ok(id)
}

pub fn update_check_run(
    inner: &Inner,
    repo: &str,
    id: u64,
    f: &CheckRunFields,
    sender: &str,
) -> ApiResult<()> {
    let mut st = inner.lock();
    let r = st.repo_mut(repo).ok_or_else(ApiError::not_found)?;
    let c = r
        .check_runs
        .iter_mut()
        .find(|c| c.id == id)
        .ok_or_else(ApiError::not_found)?;
    let was_completed = c.status == "completed";
    if let Some(n) = &f.name {
        c.name = n.clone();
    }
    if let Some(s) = &f.status {
        c.status = s.clone();
    }
    if let Some(conclusion) = &f.conclusion {
        c.conclusion = Some(conclusion.clone());
        c.status = "completed".into();
    }
    if f.details_url.is_some() {
        c.details_url = f.details_url.clone();
    }
    if f.title.is_some() {
        c.output_title = f.title.clone();
    }
    if f.summary.is_some() {
        c.output_summary = f.summary.clone();
    }
    if f.text.is_some() {
        c.output_text = f.text.clone();
    }
    if c.status == "completed" && c.completed_at.is_none() {
        c.completed_at = Some(Utc::now());
    }
    // Only the transition to completed is announced (GitHub's `completed` action).
    if c.status == "completed" && !was_completed {
        check_run_event(inner, &st, repo, id, "completed", sender)?;
    }
    Ok(())
}

/// Starts a workflow run (`requested` event) for `sha` on `branch`.
pub fn create_workflow_run(
    inner: &Inner,
    repo: &str,
    name: &str,
    sha: &str,
    branch: &str,
    event: &str,
    actor: &str,
) -> ApiResult<u64> {
    let mut st = inner.lock();
    st.ensure_account(actor, AccountKind::User);
    let id = st.next_id();
    let suite = st.next_id();
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    let sha = r
        .git
        .resolve(sha)
        .ok_or_else(|| ApiError::unprocessable("No commit found for SHA"))?;
    // Same name, same workflow id: run numbers count up per workflow like on GitHub.
    let previous = r.workflow_runs.iter().filter(|w| w.name == name).count() as u64;
    let workflow_id = r
        .workflow_runs
        .iter()
        .find(|w| w.name == name)
        .map(|w| w.workflow_id);
    let workflow_id = match workflow_id {
        Some(w) => w,
        None => st.next_id(),
    };
    let r = st.repo_mut(repo).ok_or_else(ApiError::not_found)?;
    let now = Utc::now();
    r.workflow_runs.push(WorkflowRun {
        id,
        workflow_id,
        check_suite_id: suite,
        name: name.to_string(),
        path: format!(".github/workflows/{}.yml", name.to_lowercase().replace(' ', "-")),
        head_sha: sha,
        head_branch: branch.to_string(),
        event: event.to_string(),
        status: "queued".into(),
        conclusion: None,
        run_number: previous + 1,
        actor: actor.to_string(),
        created_at: now,
        updated_at: now,
    });
    workflow_run_event(inner, &st, repo, id, "requested", actor)?;
    Ok(id)
}

pub fn complete_workflow_run(
    inner: &Inner,
    repo: &str,
    id: u64,
    conclusion: &str,
    sender: &str,
) -> ApiResult<()> {
    let mut st = inner.lock();
    let r = st.repo_mut(repo).ok_or_else(ApiError::not_found)?;
    let w = r
        .workflow_runs
        .iter_mut()
        .find(|w| w.id == id)
        .ok_or_else(ApiError::not_found)?;
    w.status = "completed".into();
    w.conclusion = Some(conclusion.to_string());
    w.updated_at = Utc::now();
    workflow_run_event(inner, &st, repo, id, "completed", sender)
}

fn workflow_run_event(
    inner: &Inner,
    st: &State,
    repo: &str,
    id: u64,
    action: &str,
    sender: &str,
) -> ApiResult<()> {
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    let w = r
        .workflow_runs
        .iter()
        .find(|w| w.id == id)
        .ok_or_else(ApiError::not_found)?;
    let head = json!({
        "action": action,
        "workflow": render::workflow(&inner.urls, r, w),
        "workflow_run": render::workflow_run(st, &inner.urls, r, w),
    });
    emit(inner, "workflow_run", head, envelope(inner, st, repo, sender));
    Ok(())
}
