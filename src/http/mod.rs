//! The HTTP edge: the shared state every route reads, the routes, one JSON error type, and
//! the extractors that authenticate a caller (an API token) before a handler runs. The
//! webhook route lives in [`webhook`], the controllers' report routes in [`reports`], the REST
//! API in [`api`], the dashboard in [`dashboard`] (with [`artifact_page`], its login in
//! [`login`] and [`session`], its actions in [`actions`]).
//! Nothing here does work: requests become [`crate::work::Work`] in the inbox.

mod actions;
mod api;
mod artifact_page;
mod charts;
mod dashboard;
mod dora;
pub mod login;
pub mod reports;
pub mod session;
pub mod webhook;

use std::future::{Ready, ready};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use futures_util::StreamExt;

use crate::artifact::ArtifactStore;
use crate::config::ApiVerb;
use crate::domain::{AppName, RepoName};
use crate::forge::{ApiStats, Forge};
use crate::gitops::GitopsTargets;
use crate::handlers::Releases;
use crate::metrics::Metrics;
use crate::policy::LivePolicies;
use crate::queue::Queue;
use crate::webhook::WebhookSecrets;

pub use api::{ApiTokens, HEALTH_PATH};

/// Shared by every request handler.
pub struct AppState {
    pub secrets: WebhookSecrets,
    pub api_tokens: ApiTokens,
    /// Flux's `generic-hmac` keys; `None`: `POST /webhooks/flux` answers 404.
    pub flux_secrets: Option<WebhookSecrets>,
    /// Argo CD Notifications' bearer tokens; `None`: `POST /webhooks/argocd` answers 404.
    pub argocd_tokens: Option<ApiTokens>,
    /// Where accepted work waits: the journal, or PostgreSQL shared by the replicas.
    pub queue: Queue,
    /// With replicas (the PostgreSQL queue): the lock they take turns writing the ledger with.
    pub ledger_lock: Option<crate::queue::ReplicaLock>,
    pub store: Arc<ArtifactStore>,
    pub policies: Arc<LivePolicies>,
    /// Every gitops repository releases go to, the default first (empty without `[gitops]`):
    /// events on them are release events.
    pub gitops_repos: Vec<RepoName>,
    /// The config repository and branch whose pushes reload the policies (`[policies]`).
    pub config_repo: Option<(RepoName, crate::domain::BranchName)>,
    pub metrics: Arc<Metrics>,
    /// GitHub API call counters, when a GitHub client is configured.
    pub api_stats: Option<Arc<ApiStats>>,
    pub forge: Arc<dyn Forge>,
    /// The gitops repositories' caches, when `[gitops]` is configured: read for release
    /// history across all of them.
    pub gitops: Option<Arc<GitopsTargets>>,
    /// When the history routes last fetched successfully (see [`fresh_gitops`]).
    pub gitops_fetched: Mutex<Option<Instant>>,
    /// The release loop, off without `[gitops]`.
    pub releases: Releases,
    /// The dashboard's GitHub login; `None` (no `[dashboard] oauth_client_id`): read-only.
    pub login: Option<login::Login>,
    /// Who may act from the dashboard, asked of GitHub (the rules of the PR commands).
    pub people: crate::release::People,
    /// The DORA gauges of `/metrics` as last computed.
    pub dora_gauges: dora::GaugeCache,
}

/// Every route auger answers; anything else is a JSON 404.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(dashboard::index))
        .route("/artifacts/{id}", web::get().to(artifact_page::page))
        .configure(login::routes)
        .configure(actions::routes)
        .route("/dora", web::get().to(dora::page))
        .service(
            web::resource("/webhooks/github")
                .route(web::post().to(webhook::receive))
                .default_service(web::to(|| async {
                    error(StatusCode::METHOD_NOT_ALLOWED, "webhooks are POSTed")
                })),
        )
        .configure(reports::routes)
        .configure(api::routes)
        .default_service(web::to(|| async {
            error(StatusCode::NOT_FOUND, "no such route")
        }));
}

/// The history routes fetch at most once per interval: a dashboard polling several routes
/// costs one fetch, and a release shows up within seconds of landing.
const GITOPS_FETCH_INTERVAL: Duration = Duration::from_secs(2);

/// The gitops targets after a fetch of every one unless one succeeded within
/// [`GITOPS_FETCH_INTERVAL`], or the refusal to answer. Blocking (runs git): call it inside
/// `web::block`. The lock is held across the fetch so concurrent requests wait for one fetch
/// instead of each starting one.
fn fresh_gitops(state: &AppState) -> Result<&GitopsTargets, (StatusCode, String)> {
    let Some(repo) = &state.gitops else {
        return Err((
            StatusCode::CONFLICT,
            "no gitops repository is configured (the [gitops] section of the configuration)".into(),
        ));
    };
    // Poisoning only means a fetch panicked; the timestamp is still meaningful.
    let mut last = state.gitops_fetched.lock().unwrap_or_else(|p| p.into_inner());
    if last.is_none_or(|t| t.elapsed() >= GITOPS_FETCH_INTERVAL) {
        if let Err(e) = repo.fetch_all() {
            tracing::warn!(error = %e, "fetching the gitops repository failed");
            // The message names the URL with credentials masked.
            return Err((
                StatusCode::BAD_GATEWAY,
                format!("cannot read the gitops repository: {e}"),
            ));
        }
        *last = Some(Instant::now());
    }
    Ok(repo)
}

/// Turns an error response that is not JSON (actix's own: a method a resource does not take,
/// an extractor's refusal) into the JSON error body every route answers with.
pub(crate) fn json_errors<B>(
    res: actix_web::dev::ServiceResponse<B>,
) -> actix_web::Result<actix_web::middleware::ErrorHandlerResponse<B>> {
    use actix_web::middleware::ErrorHandlerResponse;
    let is_json = res
        .response()
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let (req, _) = res.into_parts();
    let reason = status.canonical_reason().unwrap_or("error").to_ascii_lowercase();
    let json = actix_web::dev::ServiceResponse::new(req, error(status, reason));
    Ok(ErrorHandlerResponse::Response(json.map_into_right_body()))
}

/// The one error body every route answers with: `{"error": "…"}` and a fitting status.
#[derive(Debug)]
pub struct JsonError {
    pub status: StatusCode,
    pub message: String,
}

impl JsonError {
    pub fn new(status: StatusCode, message: impl std::fmt::Display) -> Self {
        JsonError {
            status,
            message: message.to_string(),
        }
    }
}

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl ResponseError for JsonError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(serde_json::json!({ "error": self.message }))
    }
}

/// A JSON error response (see [`JsonError`]).
pub fn error(status: StatusCode, message: impl std::fmt::Display) -> HttpResponse {
    JsonError::new(status, message).error_response()
}

/// The largest body an API route reads; GitHub's webhooks have their own cap
/// ([`webhook::MAX_BODY_BYTES`]).
pub const MAX_API_BODY_BYTES: usize = 1024 * 1024;

/// The body of an API request: JSON (`Content-Type: application/json`, or a `+json` type),
/// at most [`MAX_API_BODY_BYTES`]. Extracting it refuses anything else with a JSON 415 or 413
/// before the body is parsed, and reads no more than the cap.
pub struct ApiBody(pub web::Bytes);

impl FromRequest for ApiBody {
    type Error = JsonError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, JsonError>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        let payload = payload.take();
        Box::pin(async move {
            if !is_json(&req) {
                return Err(JsonError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "the body must be JSON (Content-Type: application/json)",
                ));
            }
            read_capped(&req, payload, MAX_API_BODY_BYTES).await.map(ApiBody)
        })
    }
}

/// Read the body, refusing early on a declared length over the cap and stopping as soon as the
/// stream passes it, so an oversized upload costs no more than the cap in memory. A body that
/// arrives as one chunk (the usual case) is used as it is, without a copy.
pub(super) async fn read_capped(
    req: &HttpRequest,
    mut payload: actix_web::dev::Payload,
    cap: usize,
) -> Result<web::Bytes, JsonError> {
    let too_large = || JsonError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("body exceeds {cap} bytes"));
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > cap) {
        return Err(too_large());
    }
    let mut first: Option<web::Bytes> = None;
    let mut joined: Option<web::BytesMut> = None;
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| JsonError::new(StatusCode::BAD_REQUEST, format!("reading the body: {e}")))?;
        let so_far = first.as_ref().map_or(0, |b| b.len()) + joined.as_ref().map_or(0, |b| b.len());
        if so_far + chunk.len() > cap {
            return Err(too_large());
        }
        match (&mut joined, first.take()) {
            (Some(all), _) => all.extend_from_slice(&chunk),
            (None, None) => first = Some(chunk),
            (None, Some(head)) => {
                let size = declared.unwrap_or(head.len() + chunk.len()).min(cap);
                let mut all = web::BytesMut::with_capacity(size.max(head.len() + chunk.len()));
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

/// Whether the request says its body is JSON: `application/json` or `application/<x>+json`,
/// parameters (`; charset=utf-8`) allowed.
fn is_json(req: &HttpRequest) -> bool {
    let Some(value) = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}

/// The API token a request presented: its name and what it may do (design §17). Extracting it
/// refuses the request with a JSON 401 when the token is missing or unknown, or when the API has
/// no tokens at all; each route then asks [`ApiCaller::may`] for its verb and app, a 403.
#[derive(Debug, Clone)]
pub struct ApiCaller {
    pub name: String,
    pub grants: Vec<api::Grant>,
}

impl ApiCaller {
    /// Whether some grant of this token covers `verb` on `app`; the 403 saying what is missing
    /// when none does.
    pub fn may(&self, verb: ApiVerb, app: &AppName) -> Result<(), JsonError> {
        let allowed = self
            .grants
            .iter()
            .any(|g| g.verb.covers(verb) && g.apps.as_ref().is_none_or(|apps| apps.contains(app)));
        if allowed {
            return Ok(());
        }
        let verb_ok = self.grants.iter().any(|g| g.verb.covers(verb));
        let why = if verb_ok {
            format!("token {} may not touch app {app}", self.name)
        } else {
            format!("token {} lacks the verb {}", self.name, verb.as_str())
        };
        Err(JsonError::new(StatusCode::FORBIDDEN, why))
    }

    /// The apps this token may `verb` on: `None` for every app, otherwise the list (empty when
    /// it may not `verb` at all). For routes that list several apps.
    pub fn apps_for(&self, verb: ApiVerb) -> Option<Vec<AppName>> {
        let mut apps = Vec::new();
        for g in self.grants.iter().filter(|g| g.verb.covers(verb)) {
            match &g.apps {
                None => return None,
                Some(list) => apps.extend(list.iter().cloned()),
            }
        }
        Some(apps)
    }
}

impl FromRequest for ApiCaller {
    type Error = JsonError;
    type Future = Ready<Result<Self, JsonError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let unauthorized = |why: &str| JsonError::new(StatusCode::UNAUTHORIZED, why);
        let Some(state) = req.app_data::<web::Data<AppState>>() else {
            return ready(Err(JsonError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server state missing",
            )));
        };
        ready(if state.api_tokens.is_empty() {
            Err(unauthorized("the API is disabled: no tokens are configured"))
        } else {
            state
                .api_tokens
                .authenticate(req)
                .ok_or_else(|| unauthorized("missing or invalid bearer token"))
        })
    }
}
