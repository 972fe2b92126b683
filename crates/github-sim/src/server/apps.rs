//! GitHub App authentication: the app JWT, installations and installation access tokens.

use actix_web::{HttpRequest, HttpResponse};
use chrono::{Duration, Utc};
use serde_json::json;

use super::{Ctx, created, ok};
use crate::Inner;
use crate::error::{ApiError, ApiResult};
use crate::render;
use crate::state::Principal;

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
    let known = inner.lock().tokens.get(token).cloned();
    match known {
        Some(Principal::Installation { expires_at, .. }) if expires_at < Utc::now() => {
            Err(ApiError::new(401, "Bad credentials"))
        }
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

pub(crate) fn installations(ctx: &Ctx) -> ApiResult<HttpResponse> {
    require_app(ctx)?;
    let st = ctx.inner.lock();
    let inst = render::installation(&st, &ctx.inner.urls);
    drop(st);
    super::paginate(ctx, vec![inst])
}

fn check_installation(ctx: &Ctx, id: &str) -> ApiResult<()> {
    require_app(ctx)?;
    let installation_id = ctx.inner.lock().app.installation_id;
    if id.parse::<u64>().ok() != Some(installation_id) {
        return Err(ApiError::not_found());
    }
    Ok(())
}

pub(crate) fn installation(ctx: &Ctx, id: &str) -> ApiResult<HttpResponse> {
    check_installation(ctx, id)?;
    let st = ctx.inner.lock();
    ok(render::installation(&st, &ctx.inner.urls))
}

pub(crate) fn repo_installation(ctx: &Ctx, repo: &str) -> ApiResult<HttpResponse> {
    require_app(ctx)?;
    let st = ctx.inner.lock();
    st.repo(repo).ok_or_else(ApiError::not_found)?;
    ok(render::installation(&st, &ctx.inner.urls))
}

/// Mints an installation token valid for one hour, as GitHub does.
pub(crate) fn access_token(ctx: &Ctx, id: &str) -> ApiResult<HttpResponse> {
    check_installation(ctx, id)?;
    let mut st = ctx.inner.lock();
    let token = format!("ghs_{}", uuid::Uuid::new_v4().simple());
    let expires_at = Utc::now() + Duration::hours(1);
    let installation_id = st.app.installation_id;
    st.tokens.insert(
        token.clone(),
        Principal::Installation {
            id: installation_id,
            expires_at,
        },
    );
    created(json!({
        "token": token,
        "expires_at": render::ts(&expires_at),
        "permissions": render::app_permissions(),
        "repository_selection": "all",
    }))
}

/// `GET /installation/repositories`: every repository (the app is installed on all).
pub(crate) fn installation_repositories(ctx: &Ctx) -> ApiResult<HttpResponse> {
    if !matches!(ctx.principal, Some(Principal::Installation { .. })) {
        return Err(ApiError::forbidden(
            "This endpoint requires an installation token",
        ));
    }
    let repos: Vec<serde_json::Value> = {
        let st = ctx.inner.lock();
        st.repos
            .values()
            .map(|r| render::repo(&st, &ctx.inner.urls, r))
            .collect()
    };
    super::paginate_wrapped(ctx, "repositories", repos)
}
