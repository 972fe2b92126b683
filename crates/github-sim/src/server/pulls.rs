//! Pull requests: create, read, list, update (close/reopen), merge; reviews.

use actix_web::HttpResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Ctx, created, no_content, ok, paginate};
use crate::actions::{self, MergeOptions, NewPull};
use crate::error::{ApiError, ApiResult};
use crate::render;
use crate::state::Role;

fn pull_json(ctx: &Ctx, repo: &str, number: u64) -> ApiResult<Value> {
    let st = ctx.inner.lock();
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    let pr = r.pull(number).ok_or_else(ApiError::not_found)?;
    Ok(render::pull(&st, &ctx.inner.urls, r, pr))
}

/// `GET /pulls/{n}`: each read while mergeability is unknown counts toward GitHub's background
/// job finishing (`GithubSim::set_mergeable_lag`).
pub(crate) fn get(ctx: &Ctx, repo: &str, number: u64) -> ApiResult<HttpResponse> {
    let mut st = ctx.inner.lock();
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    let pr = r.pull(number).ok_or_else(ApiError::not_found)?;
    let v = render::pull(&st, &ctx.inner.urls, r, pr);
    if let Some(pr) = st.repo_mut(repo).and_then(|r| r.pull_mut(number)) {
        pr.count_read();
    }
    ok(v)
}

/// `GET /pulls?state=&head=owner:branch&base=&direction=`: newest first by default.
pub(crate) fn list(ctx: &Ctx, repo: &str) -> ApiResult<HttpResponse> {
    let items: Vec<Value> = {
        let st = ctx.inner.lock();
        let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
        let state = ctx.q("state").unwrap_or("open");
        let mut pulls: Vec<_> = r
            .pulls
            .iter()
            .filter(|p| match state {
                "open" => p.open,
                "closed" => !p.open,
                _ => true,
            })
            .filter(|p| ctx.q("base").is_none_or(|b| p.base_ref == b))
            .filter(|p| {
                ctx.q("head").is_none_or(|h| {
                    let (owner, branch) = h.split_once(':').unwrap_or((r.owner.as_str(), h));
                    p.head_ref == branch && p.head_repo.split('/').next() == Some(owner)
                })
            })
            .collect();
        if ctx.q("direction") != Some("asc") {
            pulls.reverse();
        }
        pulls
            .iter()
            .map(|p| render::pull(&st, &ctx.inner.urls, r, p))
            .collect()
    };
    paginate(ctx, items)
}

#[derive(Deserialize)]
struct CreatePull {
    title: Option<String>,
    head: String,
    base: String,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    draft: bool,
}

pub(crate) fn create(ctx: &Ctx, repo: &str) -> ApiResult<HttpResponse> {
    let body: CreatePull = ctx.json()?;
    let login = ctx.login()?;
    let new = NewPull {
        title: body.title.unwrap_or_default(),
        head: body.head,
        base: body.base,
        body: body.body.unwrap_or_default(),
        draft: body.draft,
    };
    let number = actions::open_pull(ctx.inner, repo, &new, &login)?;
    created(pull_json(ctx, repo, number)?)
}

#[derive(Deserialize)]
struct UpdatePull {
    title: Option<String>,
    body: Option<String>,
    state: Option<String>,
}

pub(crate) fn update(ctx: &Ctx, repo: &str, number: u64) -> ApiResult<HttpResponse> {
    let body: UpdatePull = ctx.json()?;
    let login = ctx.require(repo, Role::Write)?;
    let open = match body.state.as_deref() {
        None => None,
        Some("open") => Some(true),
        Some("closed") => Some(false),
        Some(other) => {
            return Err(ApiError::validation(
                "PullRequest",
                format!("state {other} is not valid"),
            ));
        }
    };
    actions::edit_pull(ctx.inner, repo, number, body.title, body.body, open, &login)?;
    ok(pull_json(ctx, repo, number)?)
}

#[derive(Deserialize, Default)]
struct MergeBody {
    commit_title: Option<String>,
    commit_message: Option<String>,
    sha: Option<String>,
    merge_method: Option<String>,
}

/// `PUT /pulls/{n}/merge`: a real merge; 409 on a stale `sha`, 405 when not mergeable, when
/// the base branch's protection is unmet, or when the base moved under it.
pub(crate) fn merge(ctx: &Ctx, repo: &str, number: u64) -> ApiResult<HttpResponse> {
    let body: MergeBody = ctx.json()?;
    let login = ctx.require(repo, Role::Write)?;
    let opts = MergeOptions {
        expected_sha: body.sha,
        method: body.merge_method,
        title: body.commit_title,
        message: body.commit_message,
    };
    let sha = actions::merge_pull(ctx.inner, repo, number, &opts, &login)?;
    ok(json!({"sha": sha, "merged": true, "message": "Pull Request successfully merged"}))
}

/// `GET /pulls/{n}/merge`: 204 if merged, 404 otherwise.
pub(crate) fn is_merged(ctx: &Ctx, repo: &str, number: u64) -> ApiResult<HttpResponse> {
    let merged = {
        let st = ctx.inner.lock();
        let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
        r.pull(number).ok_or_else(ApiError::not_found)?.merged
    };
    if merged {
        no_content()
    } else {
        Err(ApiError::not_found())
    }
}

pub(crate) fn list_reviews(ctx: &Ctx, repo: &str, number: u64) -> ApiResult<HttpResponse> {
    let items: Vec<Value> = {
        let st = ctx.inner.lock();
        let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
        let pr = r.pull(number).ok_or_else(ApiError::not_found)?;
        pr.reviews
            .iter()
            .map(|rv| render::review(&st, &ctx.inner.urls, r, pr, rv, false))
            .collect()
    };
    paginate(ctx, items)
}

#[derive(Deserialize)]
struct CreateReview {
    event: Option<String>,
    body: Option<String>,
    commit_id: Option<String>,
}

/// `POST /pulls/{n}/reviews` with an `event`; pending (event-less) reviews are not simulated.
pub(crate) fn create_review(ctx: &Ctx, repo: &str, number: u64) -> ApiResult<HttpResponse> {
    let body: CreateReview = ctx.json()?;
    let login = ctx.login()?;
    let state = match body.event.as_deref() {
        Some("APPROVE") => "APPROVED",
        Some("REQUEST_CHANGES") => "CHANGES_REQUESTED",
        Some("COMMENT") => "COMMENTED",
        _ => {
            return Err(ApiError::validation(
                "PullRequestReview",
                "event must be APPROVE, REQUEST_CHANGES or COMMENT",
            ));
        }
    };
    let id = actions::submit_review(
        ctx.inner,
        repo,
        number,
        &login,
        state,
        body.body.as_deref().unwrap_or_default(),
        body.commit_id.as_deref(),
    )?;
    let st = ctx.inner.lock();
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    let pr = r.pull(number).ok_or_else(ApiError::not_found)?;
    let rv = pr
        .reviews
        .iter()
        .find(|rv| rv.id == id)
        .ok_or_else(ApiError::not_found)?;
    ok(render::review(&st, &ctx.inner.urls, r, pr, rv, false))
}

/// `GET /commits/{sha}/pulls`: PRs whose head is or contains the commit, or that merged it.
pub(crate) fn for_commit(ctx: &Ctx, repo: &str, sha: &str) -> ApiResult<HttpResponse> {
    let items: Vec<Value> = {
        let st = ctx.inner.lock();
        let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
        let sha = super::repos::resolve(r, sha)
            .ok_or_else(|| ApiError::unprocessable(format!("No commit found for SHA: {sha}")))?;
        r.pulls
            .iter()
            .filter(|p| {
                p.head_sha == sha
                    || p.merge_commit_sha.as_deref() == Some(sha.as_str())
                    || (r.git.is_ancestor(&sha, &p.head_sha) && !r.git.is_ancestor(&sha, &p.base_sha))
            })
            .map(|p| render::pull(&st, &ctx.inner.urls, r, p))
            .collect()
    };
    paginate(ctx, items)
}
