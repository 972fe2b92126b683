//! Issue comments on pull requests, and their reactions.

use actix_web::HttpResponse;
use serde::Deserialize;
use serde_json::Value;

use super::{Ctx, created, ok, paginate};
use crate::actions;
use crate::error::{ApiError, ApiResult};
use crate::render;

fn comment_json(ctx: &Ctx, repo: &str, id: u64) -> ApiResult<Value> {
    let st = ctx.inner.lock();
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    let c = r
        .comments
        .iter()
        .find(|c| c.id == id)
        .ok_or_else(ApiError::not_found)?;
    Ok(render::comment(&st, &ctx.inner.urls, r, c))
}

#[derive(Deserialize)]
struct CommentBody {
    body: String,
}

pub(crate) fn create_comment(ctx: &Ctx, repo: &str, number: u64) -> ApiResult<HttpResponse> {
    let body: CommentBody = ctx.json()?;
    let login = ctx.login()?;
    let id = actions::create_comment(ctx.inner, repo, number, &login, &body.body)?;
    created(comment_json(ctx, repo, id)?)
}

pub(crate) fn get_comment(ctx: &Ctx, repo: &str, id: u64) -> ApiResult<HttpResponse> {
    ok(comment_json(ctx, repo, id)?)
}

/// Only the author may edit (GitHub also lets maintainers; not needed here).
pub(crate) fn update_comment(ctx: &Ctx, repo: &str, id: u64) -> ApiResult<HttpResponse> {
    let body: CommentBody = ctx.json()?;
    let login = ctx.login()?;
    let author = {
        let st = ctx.inner.lock();
        let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
        r.comments
            .iter()
            .find(|c| c.id == id)
            .ok_or_else(ApiError::not_found)?
            .user
            .clone()
    };
    if author != login {
        return Err(ApiError::forbidden("Must be the comment's author to edit it"));
    }
    actions::edit_comment(ctx.inner, repo, id, &body.body, &login)?;
    ok(comment_json(ctx, repo, id)?)
}

/// Oldest first, like GitHub (`since` is ignored).
pub(crate) fn list_comments(ctx: &Ctx, repo: &str, number: u64) -> ApiResult<HttpResponse> {
    let items: Vec<Value> = {
        let st = ctx.inner.lock();
        let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
        r.pull(number).ok_or_else(ApiError::not_found)?;
        r.comments
            .iter()
            .filter(|c| c.issue_number == number)
            .map(|c| render::comment(&st, &ctx.inner.urls, r, c))
            .collect()
    };
    paginate(ctx, items)
}

#[derive(Deserialize)]
struct ReactionBody {
    content: String,
}

/// 201 for a new reaction, 200 when this user already reacted with this content.
pub(crate) fn create_reaction(ctx: &Ctx, repo: &str, id: u64) -> ApiResult<HttpResponse> {
    let body: ReactionBody = ctx.json()?;
    let login = ctx.login()?;
    let (rid, new) = actions::add_reaction(ctx.inner, repo, id, &login, &body.content)?;
    let st = ctx.inner.lock();
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    let rc = r
        .comments
        .iter()
        .flat_map(|c| c.reactions.iter())
        .find(|x| x.id == rid)
        .ok_or_else(ApiError::not_found)?;
    let v = render::reaction(&st, &ctx.inner.urls, rc);
    if new { created(v) } else { ok(v) }
}

pub(crate) fn list_reactions(ctx: &Ctx, repo: &str, id: u64) -> ApiResult<HttpResponse> {
    let items: Vec<Value> = {
        let st = ctx.inner.lock();
        let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
        let c = r
            .comments
            .iter()
            .find(|c| c.id == id)
            .ok_or_else(ApiError::not_found)?;
        c.reactions
            .iter()
            .filter(|x| ctx.q("content").is_none_or(|want| x.content == want))
            .map(|x| render::reaction(&st, &ctx.inner.urls, x))
            .collect()
    };
    paginate(ctx, items)
}

/// `GET /issues/{n}`: the issue side of a pull request (the sim has no plain issues).
pub(crate) fn get_issue(ctx: &Ctx, repo: &str, number: u64) -> ApiResult<HttpResponse> {
    let st = ctx.inner.lock();
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    let pr = r.pull(number).ok_or_else(ApiError::not_found)?;
    ok(render::issue_of_pull(&st, &ctx.inner.urls, r, pr))
}
