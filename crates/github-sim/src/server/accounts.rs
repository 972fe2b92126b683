//! Users, teams and collaborator permissions.

use actix_web::HttpResponse;
use serde_json::{Value, json};

use super::{Ctx, no_content, ok, paginate};
use crate::error::{ApiError, ApiResult};
use crate::render;
use crate::state::{Account, Principal, State};

fn profile(st: &State, ctx: &Ctx, a: &Account) -> Value {
    let mut v = render::account(&ctx.inner.urls, a);
    if let Some(obj) = v.as_object_mut() {
        let extra = json!({
            "name": a.login, "company": null, "blog": "", "location": null,
            "email": render::noreply_email(st, &a.login), "hireable": null, "bio": null,
            "twitter_username": null, "public_repos": st.repos.values().filter(|r| r.owner == a.login).count(),
            "public_gists": 0, "followers": 0, "following": 0,
            "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
        });
        if let Value::Object(extra) = extra {
            obj.extend(extra);
        }
    }
    v
}

/// `GET /user`: the token's user; installation tokens get GitHub's 403.
pub(crate) fn me(ctx: &Ctx) -> ApiResult<HttpResponse> {
    if !matches!(ctx.principal, Some(Principal::User(_))) {
        return Err(ApiError::forbidden("Resource not accessible by integration"));
    }
    let login = ctx.login()?;
    let st = ctx.inner.lock();
    let a = st.account(&login).ok_or_else(ApiError::not_found)?;
    ok(profile(&st, ctx, a))
}

pub(crate) fn user(ctx: &Ctx, login: &str) -> ApiResult<HttpResponse> {
    let st = ctx.inner.lock();
    let a = st.account(login).ok_or_else(ApiError::not_found)?;
    ok(profile(&st, ctx, a))
}

/// Active membership (role `member`, or `maintainer` for none here) or 404.
pub(crate) fn team_membership(ctx: &Ctx, org: &str, team: &str, user: &str) -> ApiResult<HttpResponse> {
    let st = ctx.inner.lock();
    let t = st.team(org, team).ok_or_else(ApiError::not_found)?;
    if !t.members.iter().any(|m| m == user) {
        return Err(ApiError::not_found());
    }
    ok(json!({
        "url": format!("{}/teams/{}/memberships/{user}", ctx.api(), t.id),
        "role": "member",
        "state": "active",
    }))
}

pub(crate) fn team_members(ctx: &Ctx, org: &str, team: &str) -> ApiResult<HttpResponse> {
    let members: Vec<Value> = {
        let st = ctx.inner.lock();
        let t = st.team(org, team).ok_or_else(ApiError::not_found)?;
        t.members
            .iter()
            .map(|m| render::login(&st, &ctx.inner.urls, m))
            .collect()
    };
    paginate(ctx, members)
}

/// `permission` is GitHub's legacy value (admin/write/read/none); `role_name` the real role.
pub(crate) fn permission(ctx: &Ctx, repo: &str, user: &str) -> ApiResult<HttpResponse> {
    let st = ctx.inner.lock();
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    let a = st.account(user).ok_or_else(ApiError::not_found)?;
    let role = st.role(r, user);
    let (permission, role_name) = match role {
        Some(role) => (role.legacy(), role.name()),
        None if !r.private => ("read", "read"),
        None => ("none", "none"),
    };
    let mut user_json = render::account(&ctx.inner.urls, a);
    if let Some(obj) = user_json.as_object_mut() {
        let rank = role.map(|r| r as u8);
        let has = |min: u8| rank.is_some_and(|r| r >= min);
        obj.insert(
            "permissions".into(),
            json!({"admin": has(4), "maintain": has(3), "push": has(2), "triage": has(1), "pull": !r.private || rank.is_some()}),
        );
        obj.insert("role_name".into(), json!(role_name));
    }
    ok(json!({"permission": permission, "role_name": role_name, "user": user_json}))
}

pub(crate) fn is_collaborator(ctx: &Ctx, repo: &str, user: &str) -> ApiResult<HttpResponse> {
    let st = ctx.inner.lock();
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    match st.role(r, user) {
        Some(_) => no_content(),
        None => Err(ApiError::not_found()),
    }
}

/// `GET /rate_limit`: the sim never limits on its own (inject faults for that).
pub(crate) fn rate_limit(ctx: &Ctx) -> ApiResult<HttpResponse> {
    let reset = (chrono::Utc::now() + chrono::Duration::hours(1)).timestamp();
    let unmodeled = json!({"limit": 5000, "used": 1, "remaining": 4999, "reset": reset});
    let key = super::limit_key(ctx.inner, &super::principal_of(ctx));
    let core = crate::relock(&ctx.inner.limits)
        .core(&key)
        .unwrap_or_else(|| unmodeled.clone());
    ok(json!({
        "resources": {"core": core, "search": unmodeled, "graphql": unmodeled},
        "rate": core,
    }))
}
