//! The App's webhook deliveries API: every attempt the simulator made, newest first, with
//! cursor pagination as GitHub pages it, one attempt in detail, and redelivery. App JWT only.

use actix_web::HttpResponse;
use serde_json::{Value, json};

use super::{Ctx, ok};
use crate::error::{ApiError, ApiResult};
use crate::render;
use crate::webhooks::Delivery;

/// Cursors name the last attempt of the page before: `v1_<id>`; a page holds older attempts.
const CURSOR_PREFIX: &str = "v1_";

fn require_app(ctx: &Ctx) -> ApiResult<()> {
    if ctx.principal == Some(crate::state::Principal::App) {
        Ok(())
    } else {
        Err(ApiError::new(401, "A JSON web token could not be decoded"))
    }
}

/// An attempt as the list shows it ("simple webhook delivery").
fn summary(d: &Delivery) -> Value {
    json!({
        "id": d.delivery_id,
        "guid": d.id,
        "delivered_at": d.delivered_at.as_ref().map(render::ts),
        "redelivery": d.redelivery,
        "duration": d.duration,
        "status": d.status_text(),
        "status_code": d.status.unwrap_or(0),
        "event": d.event,
        "action": d.action,
        "installation_id": d.installation_id,
        "repository_id": d.repository_id,
        "throttled_at": null,
    })
}

/// `GET /app/hook/deliveries`: `per_page` (30, at most 100), `cursor` from the `Link` header's
/// `next`, `status` (`success` or `failure`).
pub(crate) fn list(ctx: &Ctx) -> ApiResult<HttpResponse> {
    require_app(ctx)?;
    let per_page = match ctx.q("per_page") {
        None => 30,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| ApiError::unprocessable(format!("per_page {v:?} is not a number")))?
            .clamp(1, 100),
    };
    let before = match ctx.q("cursor") {
        None | Some("") => None,
        Some(c) => Some(
            c.strip_prefix(CURSOR_PREFIX)
                .and_then(|id| id.parse::<u64>().ok())
                .ok_or_else(|| ApiError::unprocessable(format!("Invalid cursor {c:?}")))?,
        ),
    };
    let wanted: Option<bool> = match ctx.q("status") {
        None => None,
        Some("success") => Some(true),
        Some("failure") => Some(false),
        Some(other) => {
            return Err(ApiError::unprocessable(format!(
                "status must be success or failure, not {other:?}"
            )));
        }
    };
    let matching: Vec<Delivery> = ctx
        .inner
        .hooks
        .attempts()
        .into_iter()
        .filter(|d| before.is_none_or(|b| d.delivery_id < b))
        .filter(|d| wanted.is_none_or(|w| d.succeeded() == w))
        .collect();
    let page: Vec<Value> = matching.iter().take(per_page).map(summary).collect();
    let mut resp = HttpResponse::Ok();
    if matching.len() > per_page
        && let Some(last) = matching.get(per_page - 1)
    {
        let mut query = vec![
            format!("per_page={per_page}"),
            format!("cursor={CURSOR_PREFIX}{}", last.delivery_id),
        ];
        if let Some(s) = ctx.q("status") {
            query.push(format!("status={s}"));
        }
        let next = format!("{}{}?{}", ctx.api(), ctx.path, query.join("&"));
        resp.insert_header(("Link", format!("<{next}>; rel=\"next\"")));
    }
    Ok(resp.json(page))
}

fn attempt(ctx: &Ctx, delivery_id: u64) -> ApiResult<Delivery> {
    ctx.inner
        .hooks
        .attempts()
        .into_iter()
        .find(|d| d.delivery_id == delivery_id)
        .ok_or_else(ApiError::not_found)
}

/// `GET /app/hook/deliveries/{delivery_id}`: the attempt with what was sent and answered.
pub(crate) fn get(ctx: &Ctx, delivery_id: u64) -> ApiResult<HttpResponse> {
    require_app(ctx)?;
    let d = attempt(ctx, delivery_id)?;
    let mut v = summary(&d);
    v["url"] = json!(ctx.inner.hooks.url());
    v["request"] = json!({
        "headers": {
            "Accept": "*/*",
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/github-sim",
            "X-GitHub-Delivery": d.id,
            "X-GitHub-Event": d.event,
            "X-GitHub-Hook-ID": "1",
            "X-GitHub-Hook-Installation-Target-Type": "integration",
            "X-Hub-Signature-256": d.signature,
        },
        "payload": d.payload,
    });
    v["response"] = json!({"headers": {}, "payload": d.response});
    ok(v)
}

/// `POST /app/hook/deliveries/{delivery_id}/attempts`: sends the attempt again, as a new
/// attempt with its own id, the same GUID and `redelivery: true`. 202.
pub(crate) fn redeliver(ctx: &Ctx, delivery_id: u64) -> ApiResult<HttpResponse> {
    require_app(ctx)?;
    ctx.inner
        .hooks
        .redeliver_attempt(delivery_id)
        .ok_or_else(ApiError::not_found)?;
    Ok(HttpResponse::Accepted().json(json!({})))
}
