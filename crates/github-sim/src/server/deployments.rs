//! Deployments and deployment statuses (no webhooks: auger only writes them).

use actix_web::HttpResponse;
use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;

use super::repos::resolve;
use super::{Ctx, created, ok, paginate};
use crate::error::{ApiError, ApiResult};
use crate::render;
use crate::state::{Deployment, DeploymentStatus, Role};

#[derive(Deserialize)]
struct CreateDeployment {
    #[serde(rename = "ref")]
    git_ref: String,
    task: Option<String>,
    payload: Option<Value>,
    environment: Option<String>,
    description: Option<String>,
    transient_environment: Option<bool>,
    production_environment: Option<bool>,
}

fn deployment_json(ctx: &Ctx, repo: &str, id: u64) -> ApiResult<Value> {
    let st = ctx.inner.lock();
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    let d = r
        .deployments
        .iter()
        .find(|d| d.id == id)
        .ok_or_else(ApiError::not_found)?;
    Ok(render::deployment(&st, &ctx.inner.urls, r, d))
}

/// Required status contexts are not enforced (GitHub would 409 on failing ones).
pub(crate) fn create(ctx: &Ctx, repo: &str) -> ApiResult<HttpResponse> {
    let body: CreateDeployment = ctx.json()?;
    let login = ctx.require(repo, Role::Write)?;
    let id = {
        let mut st = ctx.inner.lock();
        let id = st.next_id();
        let r = st.repo_mut(repo).ok_or_else(ApiError::not_found)?;
        let sha = resolve(r, &body.git_ref).ok_or_else(|| {
            ApiError::validation("Deployment", format!("No ref found for: {}", body.git_ref))
        })?;
        let environment = body.environment.unwrap_or_else(|| "production".into());
        let now = Utc::now();
        r.deployments.push(Deployment {
            id,
            sha,
            git_ref: body.git_ref,
            task: body.task.unwrap_or_else(|| "deploy".into()),
            production_environment: body.production_environment.unwrap_or(environment == "production"),
            transient_environment: body.transient_environment.unwrap_or(false),
            environment,
            description: body.description,
            payload: body.payload.unwrap_or_else(|| Value::Object(Default::default())),
            creator: login,
            created_at: now,
            updated_at: now,
            statuses: Vec::new(),
        });
        id
    };
    created(deployment_json(ctx, repo, id)?)
}

/// Newest first; filters `sha`, `ref`, `task`, `environment`.
pub(crate) fn list(ctx: &Ctx, repo: &str) -> ApiResult<HttpResponse> {
    let items: Vec<Value> = {
        let st = ctx.inner.lock();
        let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
        r.deployments
            .iter()
            .rev()
            .filter(|d| ctx.q("sha").is_none_or(|v| d.sha == v))
            .filter(|d| ctx.q("ref").is_none_or(|v| d.git_ref == v))
            .filter(|d| ctx.q("task").is_none_or(|v| d.task == v))
            .filter(|d| ctx.q("environment").is_none_or(|v| d.environment == v))
            .map(|d| render::deployment(&st, &ctx.inner.urls, r, d))
            .collect()
    };
    paginate(ctx, items)
}

pub(crate) fn get(ctx: &Ctx, repo: &str, id: u64) -> ApiResult<HttpResponse> {
    ok(deployment_json(ctx, repo, id)?)
}

#[derive(Deserialize)]
struct CreateStatus {
    state: String,
    description: Option<String>,
    environment: Option<String>,
    log_url: Option<String>,
    target_url: Option<String>,
    environment_url: Option<String>,
    /// GitHub's default is true: a success marks prior successful deployments of the same
    /// environment inactive, unless they are transient or production ones.
    auto_inactive: Option<bool>,
}

const DEPLOYMENT_STATES: [&str; 7] = [
    "error",
    "failure",
    "inactive",
    "in_progress",
    "queued",
    "pending",
    "success",
];

pub(crate) fn create_status(ctx: &Ctx, repo: &str, id: u64) -> ApiResult<HttpResponse> {
    let body: CreateStatus = ctx.json()?;
    if !DEPLOYMENT_STATES.contains(&body.state.as_str()) {
        return Err(ApiError::validation(
            "DeploymentStatus",
            "state is not included in the list",
        ));
    }
    let login = ctx.require(repo, Role::Write)?;
    let mut st = ctx.inner.lock();
    let sid = st.next_id();
    let r = st.repo_mut(repo).ok_or_else(ApiError::not_found)?;
    let d = r
        .deployments
        .iter_mut()
        .find(|d| d.id == id)
        .ok_or_else(ApiError::not_found)?;
    let now = Utc::now();
    d.updated_at = now;
    let env = body.environment.clone().unwrap_or_else(|| d.environment.clone());
    let inactivate_prior = body.state == "success" && body.auto_inactive.unwrap_or(true);
    d.statuses.push(DeploymentStatus {
        id: sid,
        state: body.state,
        description: body.description.unwrap_or_default(),
        environment: body.environment.unwrap_or_else(|| d.environment.clone()),
        log_url: body.log_url.or(body.target_url).unwrap_or_default(),
        environment_url: body.environment_url.unwrap_or_default(),
        creator: login,
        created_at: now,
    });
    if inactivate_prior {
        auto_inactivate(&mut st, repo, id, &env, now);
    }
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    let d = r
        .deployments
        .iter()
        .find(|d| d.id == id)
        .ok_or_else(ApiError::not_found)?;
    let s = d.statuses.last().ok_or_else(ApiError::not_found)?;
    created(render::deployment_status(&st, &ctx.inner.urls, r, d, s))
}

/// `auto_inactive`: prior deployments of `env` whose latest state is success, and that are
/// neither transient nor production, get an `inactive` status by the same creator.
fn auto_inactivate(st: &mut crate::state::State, repo: &str, id: u64, env: &str, now: chrono::DateTime<Utc>) {
    let Some(r) = st.repo(repo) else { return };
    let prior: Vec<(u64, String)> = r
        .deployments
        .iter()
        .filter(|p| p.id < id && p.environment == env)
        .filter(|p| !p.transient_environment && !p.production_environment)
        .filter(|p| p.statuses.last().is_some_and(|s| s.state == "success"))
        .filter_map(|p| p.statuses.last().map(|s| (p.id, s.creator.clone())))
        .collect();
    for (pid, creator) in prior {
        let sid = st.next_id();
        let Some(r) = st.repo_mut(repo) else { return };
        if let Some(p) = r.deployments.iter_mut().find(|p| p.id == pid) {
            p.updated_at = now;
            p.statuses.push(DeploymentStatus {
                id: sid,
                state: "inactive".into(),
                description: String::new(),
                environment: p.environment.clone(),
                log_url: String::new(),
                environment_url: String::new(),
                creator,
                created_at: now,
            });
        }
    }
}

/// Newest first.
pub(crate) fn list_statuses(ctx: &Ctx, repo: &str, id: u64) -> ApiResult<HttpResponse> {
    let items: Vec<Value> = {
        let st = ctx.inner.lock();
        let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
        let d = r
            .deployments
            .iter()
            .find(|d| d.id == id)
            .ok_or_else(ApiError::not_found)?;
        d.statuses
            .iter()
            .rev()
            .map(|s| render::deployment_status(&st, &ctx.inner.urls, r, d, s))
            .collect()
    };
    paginate(ctx, items)
}
