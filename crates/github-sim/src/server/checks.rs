//! CI signals: commit statuses (and the combined status) and check runs.

use actix_web::HttpResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::repos::resolve;
use super::{Ctx, created, ok, paginate, paginate_wrapped};
use crate::actions::{self, CheckRunFields, NewStatus};
use crate::error::{ApiError, ApiResult};
use crate::render;
use crate::state::{Principal, Role};

#[derive(Deserialize)]
struct StatusBody {
    state: String,
    target_url: Option<String>,
    description: Option<String>,
    context: Option<String>,
}

pub(crate) fn create_status(ctx: &Ctx, repo: &str, sha: &str) -> ApiResult<HttpResponse> {
    let body: StatusBody = ctx.json()?;
    let login = ctx.require(repo, Role::Write)?;
    let new = NewStatus {
        state: body.state,
        context: body.context.unwrap_or_else(|| "default".into()),
        description: body.description,
        target_url: body.target_url,
    };
    let id = actions::create_status(ctx.inner, repo, sha, &new, &login)?;
    let st = ctx.inner.lock();
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    let s = r
        .statuses
        .iter()
        .find(|s| s.id == id)
        .ok_or_else(ApiError::not_found)?;
    created(render::status(&st, &ctx.inner.urls, r, s))
}

/// Every status for the ref, newest first.
pub(crate) fn list_statuses(ctx: &Ctx, repo: &str, git_ref: &str) -> ApiResult<HttpResponse> {
    let items: Vec<Value> = {
        let st = ctx.inner.lock();
        let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
        let sha = resolve(r, git_ref).ok_or_else(ApiError::not_found)?;
        r.statuses
            .iter()
            .rev()
            .filter(|s| s.sha == sha)
            .map(|s| render::status(&st, &ctx.inner.urls, r, s))
            .collect()
    };
    paginate(ctx, items)
}

/// The latest status per context and GitHub's combined state.
pub(crate) fn combined(ctx: &Ctx, repo: &str, git_ref: &str) -> ApiResult<HttpResponse> {
    let st = ctx.inner.lock();
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    let sha = resolve(r, git_ref).ok_or_else(ApiError::not_found)?;
    let latest = render::latest_statuses(r, &sha);
    let full = r.full_name();
    ok(json!({
        "state": render::combined_state(&latest),
        "statuses": latest.iter().map(|s| render::status(&st, &ctx.inner.urls, r, s)).collect::<Vec<_>>(),
        "sha": sha,
        "total_count": latest.len(),
        "repository": render::repo(&st, &ctx.inner.urls, r),
        "commit_url": format!("{}/repos/{full}/commits/{sha}", ctx.api()),
        "url": format!("{}/repos/{full}/commits/{sha}/status", ctx.api()),
    }))
}

#[derive(Deserialize, Default)]
struct Output {
    title: Option<String>,
    summary: Option<String>,
    text: Option<String>,
}

#[derive(Deserialize)]
struct CheckRunBody {
    name: Option<String>,
    head_sha: Option<String>,
    status: Option<String>,
    conclusion: Option<String>,
    details_url: Option<String>,
    external_id: Option<String>,
    output: Option<Output>,
}

impl CheckRunBody {
    fn fields(self) -> CheckRunFields {
        let out = self.output.unwrap_or_default();
        CheckRunFields {
            name: self.name,
            head_sha: self.head_sha,
            status: self.status,
            conclusion: self.conclusion,
            details_url: self.details_url,
            external_id: self.external_id,
            title: out.title,
            summary: out.summary,
            text: out.text,
        }
    }
}

/// Only GitHub Apps may write check runs (GitHub answers 403 to personal tokens).
fn require_app_installation(ctx: &Ctx) -> ApiResult<String> {
    match ctx.principal {
        Some(Principal::Installation { .. }) => ctx.login(),
        _ => Err(ApiError::forbidden("You must authenticate via a GitHub App.")),
    }
}

fn check_run_json(ctx: &Ctx, repo: &str, id: u64) -> ApiResult<Value> {
    let st = ctx.inner.lock();
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    let c = r
        .check_runs
        .iter()
        .find(|c| c.id == id)
        .ok_or_else(ApiError::not_found)?;
    Ok(render::check_run(&st, &ctx.inner.urls, r, c))
}

pub(crate) fn create_check_run(ctx: &Ctx, repo: &str) -> ApiResult<HttpResponse> {
    let body: CheckRunBody = ctx.json()?;
    let login = require_app_installation(ctx)?;
    let id = actions::create_check_run(ctx.inner, repo, &body.fields(), &login)?;
    created(check_run_json(ctx, repo, id)?)
}

pub(crate) fn update_check_run(ctx: &Ctx, repo: &str, id: u64) -> ApiResult<HttpResponse> {
    let body: CheckRunBody = ctx.json()?;
    let login = require_app_installation(ctx)?;
    actions::update_check_run(ctx.inner, repo, id, &body.fields(), &login)?;
    ok(check_run_json(ctx, repo, id)?)
}

pub(crate) fn get_check_run(ctx: &Ctx, repo: &str, id: u64) -> ApiResult<HttpResponse> {
    ok(check_run_json(ctx, repo, id)?)
}

/// `GET /commits/{ref}/check-runs?check_name=&status=`: newest first.
pub(crate) fn list_check_runs(ctx: &Ctx, repo: &str, git_ref: &str) -> ApiResult<HttpResponse> {
    let items: Vec<Value> = {
        let st = ctx.inner.lock();
        let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
        let sha = resolve(r, git_ref).ok_or_else(ApiError::not_found)?;
        r.check_runs
            .iter()
            .rev()
            .filter(|c| c.head_sha == sha)
            .filter(|c| ctx.q("check_name").is_none_or(|n| c.name == n))
            .filter(|c| ctx.q("status").is_none_or(|s| c.status == s))
            .map(|c| render::check_run(&st, &ctx.inner.urls, r, c))
            .collect()
    };
    paginate_wrapped(ctx, "check_runs", items)
}

/// `GET /actions/runs?head_sha=&branch=&status=&event=`: newest first.
pub(crate) fn list_workflow_runs(ctx: &Ctx, repo: &str) -> ApiResult<HttpResponse> {
    let items: Vec<Value> = {
        let st = ctx.inner.lock();
        let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
        r.workflow_runs
            .iter()
            .rev()
            .filter(|w| ctx.q("head_sha").is_none_or(|v| w.head_sha == v))
            .filter(|w| ctx.q("branch").is_none_or(|v| w.head_branch == v))
            .filter(|w| ctx.q("event").is_none_or(|v| w.event == v))
            .filter(|w| {
                ctx.q("status")
                    .is_none_or(|v| w.status == v || w.conclusion.as_deref() == Some(v))
            })
            .map(|w| render::workflow_run(&st, &ctx.inner.urls, r, w))
            .collect()
    };
    paginate_wrapped(ctx, "workflow_runs", items)
}

pub(crate) fn get_workflow_run(ctx: &Ctx, repo: &str, id: u64) -> ApiResult<HttpResponse> {
    let st = ctx.inner.lock();
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    let w = r
        .workflow_runs
        .iter()
        .find(|w| w.id == id)
        .ok_or_else(ApiError::not_found)?;
    ok(render::workflow_run(&st, &ctx.inner.urls, r, w))
}
