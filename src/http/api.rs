//! The REST API (design §9): CI pushes artifacts, operators query them; liveness and metrics.
//! Every error is JSON `{ "error": … }` with a fitting 4xx; writes are all-or-nothing.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::artifact::{Artifact, ArtifactId, ListFilter, RecordOutcome, Source, VarsError, check_vars};
use crate::domain::{AppName, BranchName, CommitSha, EnvName, RepoName, TagName};
use crate::gitops::{GitopsTargets, HistoryFilter, Trigger, WriteError};
use crate::work::{self, ArtifactRecorded, ReleaseRequest, RollbackRequest, Work};

use super::{ApiBody, ApiCaller, AppState, error, fresh_gitops};
use crate::config::{ApiTokenSpec, ApiVerb};

/// Bearer tokens from `AUGER_API_TOKENS` (see [`crate::config::parse_api_tokens`]), each with
/// its grants. Only digests are kept, and comparison is constant-time over digests, so neither
/// a token's content nor its length leaks through timing.
#[derive(Clone, Default)]
pub struct ApiTokens {
    tokens: Vec<(String, [u8; 32], Grant)>,
}

/// One verb on some apps (`None`: every app).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub verb: ApiVerb,
    pub apps: Option<Vec<AppName>>,
}

impl Grant {
    const EVERYTHING: Grant = Grant {
        verb: ApiVerb::All,
        apps: None,
    };
}

impl std::fmt::Debug for ApiTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.tokens.iter().map(|(n, _, _)| n.as_str()).collect();
        f.debug_struct("ApiTokens").field("names", &names).finish()
    }
}

impl ApiTokens {
    pub fn new(specs: &[ApiTokenSpec]) -> Self {
        let tokens = specs
            .iter()
            .map(|s| {
                let grant = Grant {
                    verb: s.verb,
                    apps: s.apps.clone(),
                };
                (s.name.clone(), digest(&s.secret), grant)
            })
            .collect();
        Self { tokens }
    }

    /// Tokens without names (`token-1`, …): each entry is a whole token, a `:` in it included.
    /// For senders that present one shared secret, like Argo CD Notifications.
    pub fn unnamed(entries: &[String]) -> Self {
        let tokens = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (format!("token-{}", i + 1), digest(e), Grant::EVERYTHING))
            .collect();
        Self { tokens }
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The caller whose token is presented in `Authorization: Bearer …`, with every grant its
    /// entries give, if it is one of ours.
    pub fn authenticate(&self, req: &HttpRequest) -> Option<ApiCaller> {
        let presented = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)?
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")?
            .trim();
        let d = digest(presented);
        let mut found: Option<ApiCaller> = None;
        // Look at every token, match or not, so timing does not say which one matched.
        for (name, t, grant) in &self.tokens {
            if bool::from(t.ct_eq(&d)) {
                found
                    .get_or_insert_with(|| ApiCaller {
                        name: name.clone(),
                        grants: Vec::new(),
                    })
                    .grants
                    .push(grant.clone());
            }
        }
        found
    }
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// Liveness: the path deployment files (fly.toml) check.
pub const HEALTH_PATH: &str = "/healthz";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(HEALTH_PATH, web::get().to(healthz))
        .route("/metrics", web::get().to(metrics))
        .service(
            web::scope("/api/v1")
                .wrap(actix_web::middleware::ErrorHandlers::new().default_handler(super::json_errors))
                .route("/artifacts", web::post().to(create_artifact))
                .route("/artifacts", web::get().to(list_artifacts))
                .route("/artifacts/{id}", web::get().to(get_artifact))
                .route("/artifacts/{id}/reject", web::post().to(reject_artifact))
                .route("/releases", web::get().to(list_releases))
                .route("/releases/current", web::get().to(current_release))
                .route("/releases", web::post().to(create_release))
                .route("/rollbacks", web::post().to(create_rollback))
                .route("/environments", web::get().to(list_environments))
                .route("/metrics/dora", web::get().to(super::dora::api)),
        );
}

/// `{"status": "ok", "queue": {"kind": …, "reachable": …}}`; 503 while the queue (PostgreSQL)
/// does not answer, so a load balancer sends deliveries to a replica that can store them.
async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let (kind, reachable) = state.queue.health().await;
    match reachable {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({
            "status": "ok",
            "queue": { "kind": kind, "reachable": true },
        })),
        Err(e) => {
            tracing::warn!(error = %e, "health check: the queue does not answer");
            HttpResponse::ServiceUnavailable().json(serde_json::json!({
                "status": "unavailable",
                "queue": { "kind": kind, "reachable": false },
            }))
        }
    }
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let stats = state.queue.stats().await;
    let mut extra = vec![
        ("auger_inbox_appended_total", "", stats.appended),
        ("auger_inbox_fsyncs_total", "", stats.fsyncs),
    ];
    if matches!(state.queue, crate::queue::Queue::Postgres(_)) {
        extra.extend([
            ("auger_queue_claims_total", "", stats.claims),
            ("auger_queue_lease_expiries_total", "", stats.lease_expiries),
        ]);
    }
    if let Some(api) = &state.api_stats {
        let s = api.snapshot();
        extra.extend([
            ("auger_github_api_calls_total", "{class=\"2xx\"}", s.status_2xx),
            ("auger_github_api_calls_total", "{class=\"3xx\"}", s.status_3xx),
            ("auger_github_api_calls_total", "{class=\"4xx\"}", s.status_4xx),
            ("auger_github_api_calls_total", "{class=\"5xx\"}", s.status_5xx),
            ("auger_github_api_calls_total", "{class=\"error\"}", s.errors),
            ("auger_github_api_retries_total", "", s.retries),
            ("auger_github_api_rate_limited_total", "", s.rate_limited),
        ]);
    }
    if let Some(r) = state.releases.running() {
        let desired = r.desired();
        let retrying = desired.iter().filter(|d| d.attempts > 0).count();
        extra.extend([
            ("auger_releases_desired", "", desired.len() as u64),
            ("auger_releases_retrying", "", retrying as u64),
            ("auger_statuses_owed", "", r.owed() as u64),
        ]);
    }
    let mut body = state.metrics.render(stats.depth, &extra);
    if let Some(r) = state.releases.running() {
        body.push_str(&r.notifier().stats().render_prometheus());
    }
    body.push_str(&super::dora::gauges(state.clone()).await);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(body)
}

/// What CI sends. `repo` defaults to the policy's repository.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewArtifact {
    app: AppName,
    sha: CommitSha,
    #[serde(default)]
    repo: Option<RepoName>,
    #[serde(default)]
    branch: Option<BranchName>,
    #[serde(default)]
    branches: Vec<BranchName>,
    #[serde(default)]
    tags: Vec<TagName>,
    #[serde(default)]
    pull_requests: Vec<u64>,
    #[serde(default)]
    vars: BTreeMap<String, String>,
    #[serde(default)]
    author: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    target_url: Option<String>,
    /// When the source commit was made (RFC 3339): where the DORA lead time starts.
    #[serde(default)]
    committed: Option<chrono::DateTime<chrono::Utc>>,
}

async fn create_artifact(
    caller: ApiCaller,
    ApiBody(body): ApiBody,
    state: web::Data<AppState>,
) -> HttpResponse {
    let resp = create_artifact_inner(&caller, &body, &state).await;
    state.metrics.api("artifacts.create", resp.status().as_u16());
    resp
}

async fn create_artifact_inner(caller: &ApiCaller, body: &[u8], state: &web::Data<AppState>) -> HttpResponse {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let new: NewArtifact = match serde_path_to_error::deserialize(de) {
        Ok(n) => n,
        Err(e) => {
            let path = e.path().to_string();
            let msg = e.inner().to_string();
            let where_ = if path == "." {
                String::new()
            } else {
                format!("{path}: ")
            };
            return error(StatusCode::BAD_REQUEST, format!("{where_}{msg}"));
        }
    };
    if let Err(e) = caller.may(ApiVerb::ArtifactsWrite, &new.app) {
        return e.error_response();
    }
    match check_vars(&new.vars) {
        Ok(()) => {}
        Err(e @ VarsError::Name(_)) => return error(StatusCode::BAD_REQUEST, e),
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, e),
    }
    let policies = state.policies.current();
    let Some(policy) = policies.get(&new.app) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("no policy for app {}", new.app),
        );
    };
    let repo = new.repo.clone().unwrap_or_else(|| policy.repo().clone());
    if !repo.as_str().eq_ignore_ascii_case(policy.repo().as_str()) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("app {} is built from {}, not {repo}", new.app, policy.repo()),
        );
    }
    let mut a = Artifact::new(
        new.app,
        policy.repo().clone(),
        new.sha,
        Source {
            kind: "api".into(),
            name: caller.name.clone(),
            target_url: new.target_url,
        },
    );
    a.branches = new.branch.into_iter().chain(new.branches).collect();
    a.tags = new.tags;
    a.pull_requests = new.pull_requests;
    a.vars = new.vars;
    a.author = new.author;
    a.message = new.message;
    a.url = new.url;
    a.committed = new.committed;
    let turn = crate::handlers::ledger_turn(state.ledger_lock.as_ref(), &state.store).await;
    let store = state.store.clone();
    let incoming = a.clone();
    let recorded = web::block(move || store.record(&a)).await;
    drop(turn);
    match recorded {
        Ok(Ok(outcome)) => {
            if state.releases.running().is_some() && !matches!(outcome, RecordOutcome::Unchanged(_)) {
                // The worker decides the automatic releases, in order with GitHub's events.
                let body = work::encode(&Work::ApiArtifact(Box::new(ArtifactRecorded { incoming })));
                if let Err(e) = state
                    .queue
                    .append(&internal_id(), &work::inbox_kind("api"), body)
                    .await
                {
                    tracing::error!(error = %e, "artifact recorded, but its automatic releases could not be queued");
                }
            }
            let (status, word) = match &outcome {
                RecordOutcome::Created(_) => (StatusCode::CREATED, "created"),
                RecordOutcome::Updated(_) => (StatusCode::OK, "updated"),
                RecordOutcome::Unchanged(_) => (StatusCode::OK, "unchanged"),
            };
            state.metrics.artifact(word);
            HttpResponse::build(status)
                .json(serde_json::json!({ "outcome": word, "artifact": outcome.artifact() }))
        }
        Ok(Err(e)) => match e {
            crate::artifact::StoreError::Merge(m) => error(StatusCode::CONFLICT, m),
            other => {
                tracing::error!(error = %other, "recording an artifact from the API failed");
                error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the artifact store failed; nothing was recorded",
                )
            }
        },
        Err(e) => {
            tracing::error!(error = %e, "artifact store task failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the artifact store failed; nothing was recorded",
            )
        }
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    app: Option<String>,
    branch: Option<String>,
    tag: Option<String>,
    limit: Option<usize>,
}

async fn list_artifacts(caller: ApiCaller, req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let q = match web::Query::<ListQuery>::from_query(req.query_string()) {
        Ok(q) => q.into_inner(),
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let Some(app) = q.app else {
        return error(StatusCode::BAD_REQUEST, "app is required (?app=NAME)");
    };
    let app = match AppName::new(app) {
        Ok(a) => a,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    if let Err(e) = caller.may(ApiVerb::Read, &app) {
        return e.error_response();
    }
    let branch = match q.branch.map(BranchName::new).transpose() {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let tag = match q.tag.map(TagName::new).transpose() {
        Ok(t) => t,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let limit = q.limit.unwrap_or(50).min(1000);
    let store = state.store.clone();
    let filter = ListFilter {
        branch,
        tag,
        pull_request: None,
    };
    match web::block(move || store.list(&app, &filter, limit)).await {
        Ok(Ok(list)) => HttpResponse::Ok().json(list),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "listing artifacts failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "the artifact store failed")
        }
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "the artifact store failed"),
    }
}

async fn get_artifact(
    caller: ApiCaller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let id: ArtifactId = match path.parse() {
        Ok(id) => id,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    if let Err(e) = caller.may(ApiVerb::Read, id.app()) {
        return e.error_response();
    }
    let store = state.store.clone();
    match web::block(move || store.get_by_id(&id).map(|a| (id, a))).await {
        Ok(Ok((_, Some(a)))) => HttpResponse::Ok().json(a),
        Ok(Ok((id, None))) => error(StatusCode::NOT_FOUND, format!("no artifact {id}")),
        Ok(Err(crate::artifact::StoreError::Ambiguous { id, matches })) => error(
            StatusCode::BAD_REQUEST,
            format!("artifact id {id} is ambiguous: {}", matches.join(", ")),
        ),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "reading an artifact failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "the artifact store failed")
        }
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "the artifact store failed"),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRejection {
    #[serde(default)]
    reason: String,
}

/// `POST /api/v1/artifacts/{id}/reject` (design §17): the artifact never deploys
/// automatically. Needs `releases:write` on its app: a veto decides what is released. Written to
/// the ledger before the answer; 200 with the record (a second rejection keeps the first).
async fn reject_artifact(
    caller: ApiCaller,
    path: web::Path<String>,
    ApiBody(body): ApiBody,
    state: web::Data<AppState>,
) -> HttpResponse {
    let resp = reject_artifact_inner(&caller, &path, &body, &state).await;
    state.metrics.api("artifacts.reject", resp.status().as_u16());
    resp
}

async fn reject_artifact_inner(caller: &ApiCaller, id: &str, body: &[u8], state: &AppState) -> HttpResponse {
    let id: ArtifactId = match id.parse() {
        Ok(id) => id,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    if let Err(e) = caller.may(ApiVerb::ReleasesWrite, id.app()) {
        return e.error_response();
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    let new: NewRejection = match serde_path_to_error::deserialize(de) {
        Ok(n) => n,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("{}: {}", e.path(), e.inner())),
    };
    if new.reason.len() > 1024 || new.reason.contains(['\n', '\r']) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "reason: one line of at most 1024 bytes",
        );
    }
    let by = format!("api {}", caller.name);
    let outcome = match state.releases.running() {
        // Through the release loop, so a waiting automatic release of it is dropped at once.
        Some(r) => r.reject(&id, &by, &new.reason).await.map_err(|e| e.to_string()),
        None => {
            let store = state.store.clone();
            let rejection = crate::artifact::Rejection {
                by,
                reason: new.reason,
                time: chrono::Utc::now(),
            };
            let id2 = id.clone();
            match web::block(move || store.reject(&id2, &rejection)).await {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        }
    };
    match outcome {
        Ok(Some(o)) => {
            let word = if matches!(o, RecordOutcome::Unchanged(_)) {
                "unchanged"
            } else {
                "rejected"
            };
            HttpResponse::Ok().json(serde_json::json!({ "outcome": word, "artifact": o.artifact() }))
        }
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no artifact {id}")),
        Err(e) => {
            tracing::error!(error = %e, "rejecting an artifact failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the artifact store failed; nothing was recorded ({e})"),
            )
        }
    }
}

/// Runs `read` on a freshly fetched gitops handle off the async runtime and answers its
/// result as JSON.
async fn gitops_read<T, F>(state: web::Data<AppState>, what: &'static str, read: F) -> HttpResponse
where
    T: serde::Serialize + Send + 'static,
    F: FnOnce(&GitopsTargets) -> Result<T, WriteError> + Send + 'static,
{
    let done = web::block(move || fresh_gitops(&state).map(read)).await;
    match done {
        Ok(Ok(Ok(value))) => HttpResponse::Ok().json(value),
        Ok(Err((status, why))) => error(status, why),
        Ok(Ok(Err(e))) => {
            tracing::error!(error = %e, "reading {what} from the gitops cache failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "reading the gitops history failed",
            )
        }
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "reading the gitops history failed",
        ),
    }
}

#[derive(Debug, Deserialize)]
struct ReleasesQuery {
    env: Option<String>,
    app: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/v1/releases?env=&app=&limit=`: releases newest first (default 50, at most 1000).
async fn list_releases(caller: ApiCaller, req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let q = match web::Query::<ReleasesQuery>::from_query(req.query_string()) {
        Ok(q) => q.into_inner(),
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let env = match q.env.map(EnvName::new).transpose() {
        Ok(e) => e,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let app = match q.app.map(AppName::new).transpose() {
        Ok(a) => a,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let limit = match q.limit {
        Some(0) => return error(StatusCode::BAD_REQUEST, "limit must be at least 1"),
        l => l.unwrap_or(50).min(1000),
    };
    match (&app, caller.apps_for(ApiVerb::Read)) {
        (Some(app), _) => {
            if let Err(e) = caller.may(ApiVerb::Read, app) {
                return e.error_response();
            }
        }
        (None, None) => {}
        // A limit over a filtered list would come back short: such a token names its app.
        (None, Some(_)) => {
            return error(
                StatusCode::FORBIDDEN,
                format!(
                    "token {} may read only some apps: name one (?app=NAME)",
                    caller.name
                ),
            );
        }
    }
    let filter = HistoryFilter {
        env,
        app,
        limit: Some(limit),
    };
    gitops_read(state, "releases", move |repo| repo.release_views(&filter)).await
}

#[derive(Debug, Deserialize)]
struct CurrentQuery {
    env: String,
    app: String,
}

/// `GET /api/v1/releases/current?env=&app=`: what (env, app) runs and how far its
/// verification is (design §15). 404 when nothing was released there.
async fn current_release(caller: ApiCaller, req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let q = match web::Query::<CurrentQuery>::from_query(req.query_string()) {
        Ok(q) => q.into_inner(),
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let (env, app) = match (EnvName::new(&q.env), AppName::new(&q.app)) {
        (Ok(env), Ok(app)) => (env, app),
        (Err(e), _) => return error(StatusCode::BAD_REQUEST, format!("env: {e}")),
        (_, Err(e)) => return error(StatusCode::BAD_REQUEST, format!("app: {e}")),
    };
    if let Err(e) = caller.may(ApiVerb::Read, &app) {
        return e.error_response();
    }
    let policies = state.policies.current();
    let Some(rules) = policies.get(&app).and_then(|p| p.env(&env)) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no environment {env} for app {app}"),
        );
    };
    let verifies = rules.verify.is_some();
    let store = state.store.clone();
    let (env2, app2) = (env.clone(), app.clone());
    match web::block(move || crate::verify::current::current(&store, &env2, &app2, verifies)).await {
        Ok(Ok(Some(mut current))) => {
            current.gitops_repo = state.gitops.as_ref().map(|g| g.for_env(&env, &app).repo.clone());
            HttpResponse::Ok().json(current)
        }
        Ok(Ok(None)) => error(
            StatusCode::NOT_FOUND,
            format!("nothing was released to {env} for {app} yet"),
        ),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "reading the current release failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "reading the ledger failed")
        }
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "reading the ledger failed"),
    }
}

/// `GET /api/v1/environments`: the current release of every (env, app) in the history.
async fn list_environments(caller: ApiCaller, state: web::Data<AppState>) -> HttpResponse {
    let store = state.store.clone();
    let readable = caller.apps_for(ApiVerb::Read);
    // Hold state lives in the ledger; the rest is read back from the gitops repository.
    gitops_read(state, "environments", move |repo| {
        let mut views = repo.environments()?;
        if let Some(apps) = &readable {
            views.retain(|v| apps.contains(&v.app));
        }
        for v in &mut views {
            v.on_hold = store.is_held(&v.env, &v.app).ok();
        }
        Ok(views)
    })
    .await
}

/// An inbox id for entries auger writes itself; never collides with GitHub's uuids.
fn internal_id() -> String {
    format!("auger-{:032x}", fastrand::u128(..))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRelease {
    app: AppName,
    env: EnvName,
    /// An artifact id (`app@sha12`) or a full source commit sha.
    artifact: String,
}

/// `POST /api/v1/releases`: checked here (so a wrong request is a 4xx at once), performed by
/// the worker through the env's merge mode: 202 means queued durably.
async fn create_release(
    caller: ApiCaller,
    ApiBody(body): ApiBody,
    state: web::Data<AppState>,
) -> HttpResponse {
    let resp = create_release_inner(&caller, &body, &state).await;
    state.metrics.api("releases.create", resp.status().as_u16());
    resp
}

async fn create_release_inner(caller: &ApiCaller, body: &[u8], state: &web::Data<AppState>) -> HttpResponse {
    let new = match check_release_request(body, state, caller, |n: &NewRelease| (&n.app, &n.env)) {
        Ok(x) => x,
        Err((status, why)) => return error(status, why),
    };
    let id = match (
        new.artifact.parse::<ArtifactId>(),
        CommitSha::new(new.artifact.clone()),
    ) {
        (Ok(id), _) if id.app() == &new.app => id,
        (Ok(id), _) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("artifact {id} is not an artifact of app {}", new.app),
            );
        }
        (Err(_), Ok(sha)) => ArtifactId::for_artifact(&new.app, &sha),
        (Err(e), Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("artifact: {e} (give an artifact id app@sha12 or a 40-hex commit sha)"),
            );
        }
    };
    let store = state.store.clone();
    let lookup = id.clone();
    let found = match web::block(move || store.get_by_id(&lookup)).await {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => return error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "the artifact store failed"),
    };
    let Some(artifact) = found else {
        return error(StatusCode::NOT_FOUND, format!("no artifact {id} in the ledger"));
    };
    // Going through a veto or a freeze is a person's `/deploy … --force` (design §17).
    if let Some(r) = &artifact.rejected {
        return error(
            StatusCode::CONFLICT,
            format!(
                "{} is rejected (by {}: {}); only `/deploy {} {} --force` by a deployer releases it",
                artifact.id,
                r.by,
                r.reason,
                new.env,
                artifact.sha.short(12)
            ),
        );
    }
    if let Some(releaser) = state.releases.running() {
        match releaser.frozen(&new.env, &new.app).await {
            Ok(None) => {}
            Ok(Some(f)) => {
                let until = f
                    .until
                    .map(|t| format!(" until {}", t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
                    .unwrap_or_default();
                return error(
                    StatusCode::CONFLICT,
                    format!(
                        "{} is frozen for {}{until}; only `/deploy {} --force` by a freeze overrider goes through",
                        new.env, new.app, new.env
                    ),
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "reading the freeze state failed");
                return error(StatusCode::INTERNAL_SERVER_ERROR, "reading the ledger failed");
            }
        }
    }
    let request = ReleaseRequest {
        app: new.app,
        env: new.env,
        artifact: artifact.id.clone(),
        trigger: Trigger::Api(caller.name.clone()),
    };
    let answer = serde_json::json!({
        "queued": true,
        "app": request.app,
        "env": request.env,
        "artifact": request.artifact,
        "trigger": request.trigger,
    });
    queue(state, Work::Release(request), answer).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRollback {
    app: AppName,
    env: EnvName,
    /// An artifact id to go back to; default: the release before the current one.
    #[serde(default)]
    to: Option<String>,
}

/// `POST /api/v1/rollbacks`: checked here, performed by the worker (202 = queued durably).
async fn create_rollback(
    caller: ApiCaller,
    ApiBody(body): ApiBody,
    state: web::Data<AppState>,
) -> HttpResponse {
    let resp = create_rollback_inner(&caller, &body, &state).await;
    state.metrics.api("rollbacks.create", resp.status().as_u16());
    resp
}

async fn create_rollback_inner(caller: &ApiCaller, body: &[u8], state: &web::Data<AppState>) -> HttpResponse {
    let new = match check_release_request(body, state, caller, |n: &NewRollback| (&n.app, &n.env)) {
        Ok(x) => x,
        Err((status, why)) => return error(status, why),
    };
    let to = match new.to.as_deref().map(str::parse::<ArtifactId>) {
        None => None,
        Some(Ok(id)) if id.app() == &new.app => Some(id),
        Some(Ok(id)) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("artifact {id} is not an artifact of app {}", new.app),
            );
        }
        Some(Err(e)) => return error(StatusCode::BAD_REQUEST, format!("to: {e}")),
    };
    let request = RollbackRequest {
        app: new.app,
        env: new.env,
        to,
        by: format!("api {}", caller.name),
    };
    let answer = serde_json::json!({
        "queued": true, "app": request.app, "env": request.env, "to": request.to,
    });
    queue(state, Work::Rollback(request), answer).await
}

/// What `POST /api/v1/releases` and `/rollbacks` check before queuing: the body, that the
/// token may release the app, that releases are on, and that the app has the env.
fn check_release_request<T: serde::de::DeserializeOwned>(
    body: &[u8],
    state: &AppState,
    caller: &ApiCaller,
    app_env: impl Fn(&T) -> (&AppName, &EnvName),
) -> Result<T, (StatusCode, String)> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let new: T = serde_path_to_error::deserialize(de)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("{}: {}", e.path(), e.inner())))?;
    let (app, _) = app_env(&new);
    caller
        .may(ApiVerb::ReleasesWrite, app)
        .map_err(|e| (e.status, e.message))?;
    if state.releases.running().is_none() {
        return Err((
            StatusCode::CONFLICT,
            "releases are off: the configuration has no [gitops] section".into(),
        ));
    }
    let (app, env) = app_env(&new);
    let policies = state.policies.current();
    let Some(policy) = policies.get(app) else {
        return Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("no policy for app {app}"),
        ));
    };
    if policy.env(env).is_none() {
        let known: Vec<&str> = policy.envs().map(|(n, _)| n.as_str()).collect();
        return Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("app {app} has no environment {env} (known: {})", known.join(", ")),
        ));
    }
    Ok(new)
}

/// Appends work for the worker: 202 once it is on disk.
async fn queue(state: &AppState, work: Work, answer: serde_json::Value) -> HttpResponse {
    match state
        .queue
        .append(&internal_id(), &work::inbox_kind("api"), work::encode(&work))
        .await
    {
        Ok(_) => HttpResponse::Accepted().json(answer),
        Err(e) => {
            tracing::error!(error = %e, work = work.kind(), "cannot queue a request");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot queue the request; nothing was done",
            )
        }
    }
}
