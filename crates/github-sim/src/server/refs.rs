//! Git references: read, create, move (fast-forward or forced), delete.

use actix_web::HttpResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Ctx, created, no_content, ok};
use crate::actions;
use crate::error::{ApiError, ApiResult};
use crate::state::{Repo, Role};

fn ref_json(ctx: &Ctx, r: &Repo, full_ref: &str, target: &str) -> Value {
    let kind = r.git.object_type(target).unwrap_or_else(|| "commit".into());
    let full = r.full_name();
    let obj_url = match kind.as_str() {
        "tag" => format!("{}/repos/{full}/git/tags/{target}", ctx.api()),
        _ => format!("{}/repos/{full}/git/commits/{target}", ctx.api()),
    };
    json!({
        "ref": full_ref,
        "node_id": format!("REF_{}", full_ref.replace('/', "_")),
        "url": format!("{}/repos/{full}/git/{full_ref}", ctx.api()),
        "object": {"type": kind, "sha": target, "url": obj_url},
    })
}

/// `git/ref/{ref}`: exactly that ref (`heads/main`), or 404.
pub(crate) fn get_ref(ctx: &Ctx, repo: &str, name: &str) -> ApiResult<HttpResponse> {
    let st = ctx.inner.lock();
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    let full_ref = format!("refs/{name}");
    let target = r
        .git
        .ref_target(&full_ref)
        .filter(|_| !name.is_empty())
        .ok_or_else(ApiError::not_found)?;
    ok(ref_json(ctx, r, &full_ref, &target))
}

pub(crate) fn matching(ctx: &Ctx, repo: &str, prefix: &str) -> ApiResult<HttpResponse> {
    let st = ctx.inner.lock();
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    let full_prefix = format!("refs/{prefix}");
    let list: Vec<Value> = r
        .git
        .list_refs("refs/")?
        .into_iter()
        .filter(|(n, _)| n.starts_with(&full_prefix) && !n.starts_with("refs/pull/"))
        .map(|(n, t)| ref_json(ctx, r, &n, &t))
        .collect();
    ok(Value::Array(list))
}

#[derive(Deserialize)]
struct CreateRef {
    #[serde(rename = "ref")]
    git_ref: String,
    sha: String,
}

pub(crate) fn create(ctx: &Ctx, repo: &str) -> ApiResult<HttpResponse> {
    let body: CreateRef = ctx.json()?;
    let login = ctx.require(repo, Role::Write)?;
    actions::create_ref(ctx.inner, repo, &body.git_ref, &body.sha, &login)?;
    let st = ctx.inner.lock();
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    created(ref_json(ctx, r, &body.git_ref, &body.sha))
}

#[derive(Deserialize)]
struct UpdateRef {
    sha: String,
    #[serde(default)]
    force: bool,
}

pub(crate) fn update(ctx: &Ctx, repo: &str, name: &str) -> ApiResult<HttpResponse> {
    let body: UpdateRef = ctx.json()?;
    let login = ctx.require(repo, Role::Write)?;
    let full_ref = format!("refs/{name}");
    actions::move_ref(ctx.inner, repo, &full_ref, &body.sha, body.force, &login)?;
    let st = ctx.inner.lock();
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    ok(ref_json(ctx, r, &full_ref, &body.sha))
}

pub(crate) fn delete(ctx: &Ctx, repo: &str, name: &str) -> ApiResult<HttpResponse> {
    let login = ctx.require(repo, Role::Write)?;
    actions::delete_ref(ctx.inner, repo, &format!("refs/{name}"), &login)?;
    no_content()
}
