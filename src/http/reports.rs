//! `POST /webhooks/flux` and `POST /webhooks/argocd`: the cluster's controllers report on the
//! gitops repository (design §15). Like GitHub's webhooks: authenticate over the raw body, parse
//! into a [`Report`], store it in the inbox, then answer; nothing is done here.
//!
//! A route whose secret is not configured answers 404. The delivery id is the controller and
//! the SHA-256 of the body, so a controller's retry of the same report is stored once.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use sha2::{Digest, Sha256};

use super::webhook::{header_str, store};
use super::{AppState, JsonError, error};
use crate::inbox::AppendOutcome;
use crate::verify::{self, Controller, Report};
use crate::webhook::FLUX;
use crate::work::{Work, inbox_kind};

/// The largest report read. Flux caps an event's message at 39,000 characters and its own
/// example receiver reads 1 MiB; the Argo CD body is whatever our template renders, far less.
pub const MAX_REPORT_BYTES: usize = 1024 * 1024;

/// `POST /webhooks/flux`: an event from Flux notification-controller's `generic-hmac` provider.
pub async fn flux(req: HttpRequest, payload: web::Payload, state: web::Data<AppState>) -> HttpResponse {
    receive(&req, payload, &state, Controller::Flux).await
}

/// `POST /webhooks/argocd`: a notification from Argo CD's `webhook` service with our template.
pub async fn argocd(req: HttpRequest, payload: web::Payload, state: web::Data<AppState>) -> HttpResponse {
    receive(&req, payload, &state, Controller::ArgoCd).await
}

async fn receive(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    controller: Controller,
) -> HttpResponse {
    let refuse = |outcome: &'static str, e: JsonError| {
        state.metrics.report(controller, outcome);
        actix_web::ResponseError::error_response(&e)
    };
    if !configured(state, controller) {
        return refuse("not_configured", not_configured(controller));
    }
    let body = match super::read_capped(req, payload.into_inner(), MAX_REPORT_BYTES).await {
        Ok(body) => body,
        Err(e) => {
            let outcome = if e.status == StatusCode::PAYLOAD_TOO_LARGE {
                "too_large"
            } else {
                "bad_request"
            };
            return refuse(outcome, e);
        }
    };
    // Authenticity first, over the raw bytes, before anything is parsed.
    if let Err(why) = authenticate(state, controller, req, &body) {
        tracing::warn!(%controller, error = %why, "report refused");
        return refuse("unauthorized", JsonError::new(StatusCode::UNAUTHORIZED, why));
    }
    let report = match parse(controller, &body) {
        Ok(report) => report,
        Err(e) => return refuse("bad_request", JsonError::new(StatusCode::BAD_REQUEST, e)),
    };
    let id = format!("{controller}:{}", hex::encode(Sha256::digest(&body)));
    let summary = (report.object.clone(), report.health);
    match store(
        state,
        &id,
        &inbox_kind(controller.as_str()),
        &Work::Report(report),
    )
    .await
    {
        Ok(outcome) => {
            let word = match outcome {
                AppendOutcome::Appended(_) => "queued",
                AppendOutcome::Duplicate => "duplicate",
            };
            state.metrics.report(controller, word);
            tracing::debug!(%controller, object = %summary.0, health = %summary.1, outcome = word, "report accepted");
            // A duplicate is accepted too: the controller's retry must not look like a failure.
            HttpResponse::Accepted()
                .content_type(actix_web::http::header::ContentType::json())
                .body(r#"{"accepted":true}"#)
        }
        Err(refused) => refuse(refused.outcome, refused.error),
    }
}

fn configured(state: &AppState, controller: Controller) -> bool {
    match controller {
        Controller::Flux => state.flux_secrets.is_some(),
        Controller::ArgoCd => state.argocd_tokens.is_some(),
        // Commit statuses arrive as GitHub webhooks: there is no route of their own.
        Controller::Status => false,
    }
}

fn not_configured(controller: Controller) -> JsonError {
    let key = match controller {
        Controller::ArgoCd => "argocd_token_env",
        Controller::Flux | Controller::Status => "flux_secret_env",
    };
    JsonError::new(
        StatusCode::NOT_FOUND,
        format!(
            "POST /webhooks/{controller} is not configured: set [verify] {key} in auger.toml and that environment variable"
        ),
    )
}

/// Flux: `X-Signature` is an HMAC of the body with one of the configured secrets. Argo CD:
/// `Authorization: Bearer <token>` is one of the configured tokens.
fn authenticate(
    state: &AppState,
    controller: Controller,
    req: &HttpRequest,
    body: &[u8],
) -> Result<(), String> {
    match controller {
        Controller::Flux => match &state.flux_secrets {
            Some(secrets) => secrets
                .verify_as(&FLUX, body, header_str(req, FLUX.header))
                .map_err(|e| e.to_string()),
            None => Err("not configured".into()),
        },
        Controller::ArgoCd => match &state.argocd_tokens {
            Some(tokens) if tokens.authenticate(req).is_some() => Ok(()),
            _ => Err("missing or invalid bearer token".into()),
        },
        Controller::Status => Err("commit statuses arrive as GitHub webhooks".into()),
    }
}

fn parse(controller: Controller, body: &[u8]) -> Result<Report, verify::ReportError> {
    match controller {
        Controller::ArgoCd => verify::argocd::parse(body),
        Controller::Flux | Controller::Status => verify::flux::parse(body),
    }
}

/// The routes, each answering other methods with a JSON 405.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/webhooks/flux")
            .route(web::post().to(flux))
            .default_service(web::to(not_posted)),
    )
    .service(
        web::resource("/webhooks/argocd")
            .route(web::post().to(argocd))
            .default_service(web::to(not_posted)),
    );
}

async fn not_posted() -> HttpResponse {
    error(StatusCode::METHOD_NOT_ALLOWED, "reports are POSTed")
}
