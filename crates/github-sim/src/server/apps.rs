//! GitHub App authentication: the app JWT, installations and installation access tokens.

use actix_web::{HttpRequest, HttpResponse};
use chrono::{Duration, Utc};
use serde_json::json;

use super::{Ctx, created, ok};
use crate::Inner;
use crate::error::{ApiError, ApiResult};
use crate::render;
use crate::state::{Installation, Principal};

/// Resolves the `Authorization` header to a principal (401 with GitHub's messages otherwise).
pub(crate) fn authenticate(inner: &Inner, req: &HttpRequest) -> ApiResult<Principal> {
    let header = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::new(401, "Requires authentication"))?;
    let token = header
        .strip_prefix("token ")
        .or_else(|| header.strip_prefix("Bearer "))
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .ok_or_else(|| ApiError::new(401, "Bad credentials"))?;
    let st = inner.lock();
    let known = st.tokens.get(token).cloned();
    let suspended = |id: u64| st.installation(id).map(|i| i.suspended_at.is_some());
    let known = match known {
        Some(Principal::Installation { id, expires_at }) => match suspended(id) {
            _ if expires_at < Utc::now() => return Err(ApiError::new(401, "Bad credentials")),
            // Deleted: its tokens went with it.
            None => return Err(ApiError::new(401, "Bad credentials")),
            Some(true) => return Err(ApiError::forbidden("This installation has been suspended")),
            Some(false) => Some(Principal::Installation { id, expires_at }),
        },
        other => other,
    };
    drop(st);
    match known {
        Some(p) => Ok(p),
        None if token.matches('.').count() == 2 => verify_jwt(inner, token),
        None => Err(ApiError::new(401, "Bad credentials")),
    }
}

fn verify_jwt(inner: &Inner, token: &str) -> ApiResult<Principal> {
    let key = inner
        .app_key
        .as_ref()
        .ok_or_else(|| ApiError::new(401, "A JSON web token could not be decoded"))?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_required_spec_claims(&["exp"]);
    let data = jsonwebtoken::decode::<serde_json::Value>(token, key, &validation)
        .map_err(|e| ApiError::new(401, format!("A JSON web token could not be decoded: {e}")))?;
    let app_id = inner.lock().app.id;
    let iss_ok = match data.claims.get("iss") {
        Some(serde_json::Value::Number(n)) => n.as_u64() == Some(app_id),
        Some(serde_json::Value::String(s)) => s == &app_id.to_string(),
        _ => false,
    };
    if !iss_ok {
        return Err(ApiError::new(401, "'Issuer' claim ('iss') must be the app's id"));
    }
    Ok(Principal::App)
}

fn require_app(ctx: &Ctx) -> ApiResult<()> {
    if ctx.principal == Some(Principal::App) {
        Ok(())
    } else {
        Err(ApiError::new(401, "A JSON web token could not be decoded"))
    }
}

pub(crate) fn app(ctx: &Ctx) -> ApiResult<HttpResponse> {
    require_app(ctx)?;
    let st = ctx.inner.lock();
    ok(render::app(&st, &ctx.inner.urls))
}

/// `GET /app/installations`: the live installations, oldest first, a page at a time.
pub(crate) fn installations(ctx: &Ctx) -> ApiResult<HttpResponse> {
    require_app(ctx)?;
    let all: Vec<serde_json::Value> = {
        let st = ctx.inner.lock();
        st.installations
            .iter()
            .map(|i| render::installation(&st, &ctx.inner.urls, i))
            .collect()
    };
    super::paginate(ctx, all)
}

/// The live installation `id` (404 for one deleted or never made).
fn live_installation(ctx: &Ctx, id: &str) -> ApiResult<Installation> {
    require_app(ctx)?;
    let st = ctx.inner.lock();
    id.parse::<u64>()
        .ok()
        .and_then(|id| st.installation(id))
        .cloned()
        .ok_or_else(ApiError::not_found)
}

pub(crate) fn installation(ctx: &Ctx, id: &str) -> ApiResult<HttpResponse> {
    let inst = live_installation(ctx, id)?;
    let st = ctx.inner.lock();
    ok(render::installation(&st, &ctx.inner.urls, &inst))
}

/// `GET /repos/{owner}/{repo}/installation`: the installation that reaches the repository.
pub(crate) fn repo_installation(ctx: &Ctx, repo: &str) -> ApiResult<HttpResponse> {
    require_app(ctx)?;
    let st = ctx.inner.lock();
    let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
    let inst = st.installation_of(r).ok_or_else(ApiError::not_found)?;
    ok(render::installation(&st, &ctx.inner.urls, inst))
}

/// Mints an installation token valid for one hour, as GitHub does; a suspended installation
/// gets none.
pub(crate) fn access_token(ctx: &Ctx, id: &str) -> ApiResult<HttpResponse> {
    let inst = live_installation(ctx, id)?;
    if inst.suspended_at.is_some() {
        return Err(ApiError::forbidden("This installation has been suspended"));
    }
    let mut st = ctx.inner.lock();
    let token = format!("ghs_{}", uuid::Uuid::new_v4().simple());
    let expires_at = Utc::now() + Duration::hours(1);
    st.tokens.insert(
        token.clone(),
        Principal::Installation {
            id: inst.id,
            expires_at,
        },
    );
    created(json!({
        "token": token,
        "expires_at": render::ts(&expires_at),
        "permissions": render::app_permissions(),
        "repository_selection": if inst.selected.is_some() { "selected" } else { "all" },
    }))
}

/// `GET /installation/repositories`: the repositories the token's installation reaches.
pub(crate) fn installation_repositories(ctx: &Ctx) -> ApiResult<HttpResponse> {
    let Some(Principal::Installation { id, .. }) = ctx.principal else {
        return Err(ApiError::forbidden(
            "This endpoint requires an installation token",
        ));
    };
    let repos: Vec<serde_json::Value> = {
        let st = ctx.inner.lock();
        crate::installations::repositories_of(&st, id)
            .iter()
            .filter_map(|name| st.repo(name))
            .map(|r| render::repo(&st, &ctx.inner.urls, r))
            .collect()
    };
    super::paginate_wrapped(ctx, "repositories", repos)
}
