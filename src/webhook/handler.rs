//! `POST /webhooks/github`: verify, persist, answer. No work happens here (design §2): a
//! delivery is on disk in the inbox before the 2xx, and workers take it from there.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use tracing::{Instrument, info_span};

use super::events::{
    CheckRunAction, Event, IssueCommentAction, PullRequestAction, ReviewAction, WorkflowRunAction,
};
use super::{DELIVERY_HEADER, Delivery, EVENT_HEADER, SIGNATURE_HEADER};
use crate::inbox::AppendOutcome;
use crate::server::AppState;

/// GitHub caps webhook payloads at 25 MB; anything larger is not from GitHub.
pub const MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

pub fn error(status: StatusCode, message: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({ "error": message.to_string() }))
}

/// `{"status": what}`; `what` is one of a few fixed words, so no JSON value is built.
fn ok(status: StatusCode, what: &'static str) -> HttpResponse {
    debug_assert!(what.bytes().all(|b| b.is_ascii_lowercase()));
    HttpResponse::build(status)
        .content_type(actix_web::http::header::ContentType::json())
        .body(format!(r#"{{"status":"{what}"}}"#))
}

pub async fn receive(req: HttpRequest, payload: web::Payload, state: web::Data<AppState>) -> HttpResponse {
    let event_name = header_str(&req, EVENT_HEADER).unwrap_or("unknown").to_owned();
    let span = info_span!(
        "delivery",
        delivery = header_str(&req, DELIVERY_HEADER).unwrap_or("-"),
        event = %event_name,
        repo = tracing::field::Empty,
        pr = tracing::field::Empty
    );
    async move {
        let header = |name: &str| header_str(&req, name);
        let body = match read_body(&req, payload).await {
            Ok(b) => b,
            Err(resp) => {
                state.metrics.delivery(&event_name, "too_large");
                return resp;
            }
        };
        // Authenticity first, over the raw bytes, before anything is parsed.
        if let Err(e) = state.secrets.verify(&body, header(SIGNATURE_HEADER)) {
            state.metrics.delivery(&event_name, "unauthorized");
            tracing::warn!(error = %e, "webhook signature refused");
            return error(StatusCode::UNAUTHORIZED, e);
        }
        let delivery = match Delivery::from_headers(header(DELIVERY_HEADER), header(EVENT_HEADER)) {
            Ok(d) => d,
            Err(e) => {
                state.metrics.delivery(&event_name, "bad_request");
                return error(StatusCode::BAD_REQUEST, e);
            }
        };
        let (event, kept) = match delivery.parse_kept(&body) {
            Ok(e) => e,
            Err(e) => {
                state.metrics.delivery(&event_name, "bad_request");
                return error(StatusCode::BAD_REQUEST, e);
            }
        };
        crate::webhook::record_in_span(&tracing::Span::current(), &event);
        if matches!(event, Event::Ping(_)) {
            state.metrics.delivery(&event_name, "ping");
            return ok(StatusCode::OK, "pong");
        }
        if !wanted(&event, &state) {
            state.metrics.delivery(&event_name, "ignored");
            return ok(StatusCode::ACCEPTED, "ignored");
        }
        // What the worker will read, not the whole payload (see `parse_event_kept`).
        let stored = kept.unwrap_or_else(|| body.to_vec());
        match state.inbox.append(delivery.id(), delivery.event(), stored).await {
            Ok(AppendOutcome::Appended(seq)) => {
                state.metrics.delivery(&event_name, "queued");
                tracing::debug!(seq, "delivery queued");
                ok(StatusCode::ACCEPTED, "queued")
            }
            Ok(AppendOutcome::Duplicate) => {
                state.metrics.delivery(&event_name, "duplicate");
                ok(StatusCode::OK, "duplicate")
            }
            Err(crate::inbox::Error::Invalid(m)) => {
                state.metrics.delivery(&event_name, "bad_request");
                error(StatusCode::BAD_REQUEST, m)
            }
            Err(e) => {
                // Not stored: GitHub sees a 5xx and the delivery can be redelivered.
                state.metrics.delivery(&event_name, "unavailable");
                tracing::error!(error = %e, "inbox append failed");
                error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the delivery could not be stored; retry later",
                )
            }
        }
    }
    .instrument(span)
    .await
}

fn header_str<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Read the body, refusing early on a declared length over the cap and stopping as soon as the
/// stream passes it, so an oversized upload costs no more than the cap in memory. A body that
/// arrives as one chunk (the usual case) is used as it is, without a copy.
async fn read_body(req: &HttpRequest, mut payload: web::Payload) -> Result<web::Bytes, HttpResponse> {
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body exceeds {MAX_BODY_BYTES} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(too_large());
    }
    let mut first: Option<web::Bytes> = None;
    let mut joined: Option<web::BytesMut> = None;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| error(StatusCode::BAD_REQUEST, format!("reading the body: {e}")))?;
        let so_far = first.as_ref().map_or(0, |b| b.len()) + joined.as_ref().map_or(0, |b| b.len());
        if so_far + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        match (&mut joined, first.take()) {
            (Some(all), _) => all.extend_from_slice(&chunk),
            (None, None) => first = Some(chunk),
            (None, Some(head)) => {
                let cap = declared.unwrap_or(head.len() + chunk.len()).min(MAX_BODY_BYTES);
                let mut all = web::BytesMut::with_capacity(cap.max(head.len() + chunk.len()));
                all.extend_from_slice(&head);
                all.extend_from_slice(&chunk);
                joined = Some(all);
            }
        }
    }
    Ok(match (joined, first) {
        (Some(all), _) => all.freeze(),
        (None, Some(one)) => one,
        (None, None) => web::Bytes::new(),
    })
}

/// Whether a delivery can matter to auger: its repository is one a policy names or the
/// gitops repository, and its action is one a worker acts on. Everything else is answered 202
/// and never touches the disk.
fn wanted(event: &Event, state: &AppState) -> bool {
    let Some(repo) = event.repo() else {
        return matches!(event, Event::Installation(_));
    };
    let known = state.policies.for_repo(repo).next().is_some()
        || state
            .gitops_repo
            .as_ref()
            .is_some_and(|g| g.as_str().eq_ignore_ascii_case(repo.as_str()));
    if !known {
        return false;
    }
    match event {
        Event::Status(_) | Event::Push(_) | Event::Create(_) | Event::Delete(_) | Event::Installation(_) => {
            true
        }
        Event::CheckRun(e) => e.action == CheckRunAction::Completed,
        Event::WorkflowRun(e) => e.action == WorkflowRunAction::Completed,
        Event::PullRequest(e) => matches!(
            e.action,
            PullRequestAction::Opened
                | PullRequestAction::Reopened
                | PullRequestAction::Synchronize
                | PullRequestAction::Closed
        ),
        Event::PullRequestReview(e) => matches!(e.action, ReviewAction::Submitted | ReviewAction::Dismissed),
        Event::IssueComment(e) => e.action == IssueCommentAction::Created,
        Event::Ping(_) | Event::Unknown { .. } => false,
    }
}
