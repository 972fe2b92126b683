//! `POST /webhooks/github`: verify, classify into work, persist, answer. No work happens here
//! (design §2): the work is durable in the queue (the journal, or PostgreSQL) before the 2xx,
//! and a worker takes it from there.

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use futures_util::future::LocalBoxFuture;
use tracing::{Instrument, info_span};

use super::{AppState, JsonError, error};
use crate::inbox::AppendOutcome;
use crate::webhook::events::Event;
use crate::webhook::{DELIVERY_HEADER, Delivery, EVENT_HEADER, SIGNATURE_HEADER};
use crate::work::{Ignored, Scope, Work, classify, encode, inbox_kind};

/// GitHub caps webhook payloads at 25 MB; anything larger is not from GitHub.
pub const MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

/// `{"status": what}`; `what` is one of a few fixed words, so no JSON value is built.
fn ok(status: StatusCode, what: &'static str) -> HttpResponse {
    debug_assert!(what.bytes().all(|b| b.is_ascii_lowercase()));
    HttpResponse::build(status)
        .content_type(actix_web::http::header::ContentType::json())
        .body(format!(r#"{{"status":"{what}"}}"#))
}

/// A delivery whose signature checked out against the raw body, with valid delivery headers.
/// Extracting it answers the refusals itself (413, 401, 400, as JSON) and counts them.
pub struct VerifiedDelivery {
    pub delivery: Delivery,
    pub body: web::Bytes,
    /// The `delivery` span its handling is logged in.
    pub span: tracing::Span,
}

impl FromRequest for VerifiedDelivery {
    type Error = JsonError;
    type Future = LocalBoxFuture<'static, Result<Self, JsonError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let payload = payload.take();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(|| JsonError::new(StatusCode::INTERNAL_SERVER_ERROR, "server state missing"))?;
            let event_name = header_str(&req, EVENT_HEADER).unwrap_or("unknown");
            let span = info_span!(
                "delivery",
                delivery = header_str(&req, DELIVERY_HEADER).unwrap_or("-"),
                event = %event_name,
                repo = tracing::field::Empty,
                pr = tracing::field::Empty
            );
            let refuse = |outcome: &'static str, e: JsonError| {
                state.metrics.delivery(event_name, outcome);
                e
            };
            let body = super::read_capped(&req, payload, MAX_BODY_BYTES)
                .await
                .map_err(|e| refuse("too_large", e))?;
            // Authenticity first, over the raw bytes, before anything is parsed.
            if let Err(e) = state.secrets.verify(&body, header_str(&req, SIGNATURE_HEADER)) {
                span.in_scope(|| tracing::warn!(error = %e, "webhook signature refused"));
                return Err(refuse(
                    "unauthorized",
                    JsonError::new(StatusCode::UNAUTHORIZED, e),
                ));
            }
            let delivery =
                Delivery::from_headers(header_str(&req, DELIVERY_HEADER), header_str(&req, EVENT_HEADER))
                    .map_err(|e| refuse("bad_request", JsonError::new(StatusCode::BAD_REQUEST, e)))?;
            Ok(VerifiedDelivery { delivery, body, span })
        })
    }
}

/// `POST /webhooks/github`: parse, classify into work, persist, answer.
pub async fn receive(verified: VerifiedDelivery, state: web::Data<AppState>) -> HttpResponse {
    let VerifiedDelivery { delivery, body, span } = verified;
    accept(&delivery, &body, &state).instrument(span).await
}

async fn accept(delivery: &Delivery, body: &[u8], state: &AppState) -> HttpResponse {
    let event_name = delivery.event();
    // The skimming parse: the edge's fast path over the members auger reads.
    let event = match delivery.parse_kept(body) {
        Ok((e, _)) => e,
        Err(e) => {
            state.metrics.delivery(event_name, "bad_request");
            return error(StatusCode::BAD_REQUEST, e);
        }
    };
    crate::webhook::record_in_span(&tracing::Span::current(), &event);
    if matches!(event, Event::Ping(_)) {
        state.metrics.delivery(event_name, "ping");
        return ok(StatusCode::OK, "pong");
    }
    let policies = state.policies.current();
    let scope = Scope {
        policies: &policies,
        gitops_repos: &state.gitops_repos,
        config_repo: state.config_repo.as_ref().map(|(r, b)| (r, b)),
    };
    let work = match classify(&event, scope) {
        Ok(work) => work,
        Err(why) => {
            if let Ignored::NoAuthor(what) = why {
                tracing::warn!(
                    what,
                    "delivery ignored: GitHub sent the {what} without its author, whose authority cannot be checked"
                );
            }
            state.metrics.delivery(event_name, "ignored");
            return ok(StatusCode::ACCEPTED, "ignored");
        }
    };
    match store(state, delivery.id(), &inbox_kind(event_name), &work).await {
        Ok(AppendOutcome::Appended(seq)) => {
            state.metrics.delivery(event_name, "queued");
            tracing::debug!(seq, work = work.kind(), "delivery queued");
            ok(StatusCode::ACCEPTED, "queued")
        }
        Ok(AppendOutcome::Duplicate) => {
            state.metrics.delivery(event_name, "duplicate");
            ok(StatusCode::OK, "duplicate")
        }
        Err(refused) => {
            state.metrics.delivery(event_name, refused.outcome);
            refused.error.error_response()
        }
    }
}

/// Why work was not stored: the answer to give and the outcome to count.
pub(super) struct Refused {
    pub outcome: &'static str,
    pub error: JsonError,
}

/// Appends `work` to the queue under `delivery_id` (a redelivered id is a duplicate) and
/// returns once it is durable (synced, or committed), so the caller's 2xx means durable. Every route that accepts
/// work from outside stores it through here.
pub(super) async fn store(
    state: &AppState,
    delivery_id: &str,
    kind: &str,
    work: &Work,
) -> Result<AppendOutcome, Refused> {
    match state.queue.append(delivery_id, kind, encode(work)).await {
        Ok(outcome) => Ok(outcome),
        Err(crate::queue::QueueError::Invalid(m)) => Err(Refused {
            outcome: "bad_request",
            error: JsonError::new(StatusCode::BAD_REQUEST, m),
        }),
        Err(e) => {
            // Not stored: the sender sees a 5xx and can deliver again.
            tracing::error!(error = %e, "queue append failed");
            Err(Refused {
                outcome: "unavailable",
                error: JsonError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the delivery could not be stored; retry later",
                ),
            })
        }
    }
}

pub(super) fn header_str<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}
