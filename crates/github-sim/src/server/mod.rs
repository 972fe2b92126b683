//! The HTTP side: one actix service that records each request, applies injected faults,
//! authenticates, and routes by path segments to the per-resource modules.
//!
//! Routing by hand (instead of actix's router) keeps every answer GitHub-shaped: unknown routes,
//! bad JSON and auth failures all produce GitHub's `{"message", "documentation_url"}` body.
//!
//! Routes: the [`ROUTES`] table, one entry per operation of GitHub's OpenAPI description
//! (method and path template spelled as there). Before a handler runs, the request body is
//! checked against that operation's schema from the checked-in contract subset (`spec/`), and a
//! violation gets GitHub's 422 `Invalid request.`; see [`crate::contract`].

mod accounts;
mod apps;
mod checks;
mod deployments;
mod hook_deliveries;
mod issues;
mod oauth;
mod pulls;
mod refs;
mod repos;

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::faults::Fault;
use crate::state::{Principal, Role};
use crate::{Inner, RecordedRequest, relock};

pub(crate) use repos::resolve as resolve_rev;

/// Starts the server on its own thread; returns the handle that stops it.
pub(crate) fn start(
    inner: Arc<Inner>,
    listener: std::net::TcpListener,
) -> anyhow::Result<actix_web::dev::ServerHandle> {
    let data = web::Data::new(inner);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            // GitHub accepts bodies far beyond actix's 256 KiB default.
            .app_data(web::PayloadConfig::new(32 * 1024 * 1024))
            .default_service(web::to(dispatch))
    })
    .workers(2)
    .disable_signals()
    .listen(listener)?
    .run();
    let handle = server.handle();
    std::thread::Builder::new()
        .name("github-sim-http".into())
        .spawn(move || actix_web::rt::System::new().block_on(server))?;
    Ok(handle)
}

/// Per-request context handed to handlers.
pub(crate) struct Ctx<'a> {
    pub inner: &'a Inner,
    pub path: String,
    pub body: &'a [u8],
    pub principal: Option<Principal>,
    pub query: HashMap<String, String>,
    pub query_string: String,
}

impl Ctx<'_> {
    pub fn q(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str)
    }

    /// The acting login; app JWTs act as nobody and get 403 on repository routes.
    pub fn login(&self) -> ApiResult<String> {
        let st = self.inner.lock();
        self.principal
            .as_ref()
            .and_then(|p| st.principal_login(p))
            .ok_or_else(|| {
                ApiError::forbidden(
                    "A JSON web token could not be used for this endpoint; use an installation token",
                )
            })
    }

    pub fn json<T: DeserializeOwned>(&self) -> ApiResult<T> {
        let body = if self.body.is_empty() {
            b"{}".as_slice()
        } else {
            self.body
        };
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("Problems parsing JSON: {e}")))
    }

    /// Requires at least `role` on the repository (404 if it does not exist).
    pub fn require(&self, repo: &str, role: Role) -> ApiResult<String> {
        let login = self.login()?;
        let st = self.inner.lock();
        let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
        match st.role(r, &login) {
            Some(have) if have >= role => Ok(login),
            _ => Err(ApiError::forbidden(
                "Resource not accessible by personal access token",
            )),
        }
    }

    pub fn api(&self) -> &str {
        &self.inner.urls.api
    }
}

pub(crate) fn ok(v: Value) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(v))
}

pub(crate) fn created(v: Value) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Created().json(v))
}

pub(crate) fn no_content() -> ApiResult<HttpResponse> {
    Ok(HttpResponse::NoContent().finish())
}

pub(crate) fn page_params(ctx: &Ctx) -> (usize, usize) {
    let per_page = ctx
        .q("per_page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(30usize)
        .clamp(1, 100);
    let page = ctx
        .q("page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1usize)
        .max(1);
    (per_page, page)
}

/// GitHub's `Link` header (`<url>; rel="next", …`) for a page of `total` items.
pub(crate) fn link_header(ctx: &Ctx, total: usize, per_page: usize, page: usize) -> Option<String> {
    let last = total.div_ceil(per_page).max(1);
    if last <= 1 {
        return None;
    }
    let url_for = |p: usize| {
        let mut params: Vec<String> = ctx
            .query_string
            .split('&')
            .filter(|kv| !kv.is_empty() && !kv.starts_with("page=") && !kv.starts_with("per_page="))
            .map(str::to_string)
            .collect();
        params.push(format!("per_page={per_page}"));
        params.push(format!("page={p}"));
        format!("{}{}?{}", ctx.api(), ctx.path, params.join("&"))
    };
    let mut links = Vec::new();
    if page < last {
        links.push(format!("<{}>; rel=\"next\"", url_for(page + 1)));
        links.push(format!("<{}>; rel=\"last\"", url_for(last)));
    }
    if page > 1 {
        links.push(format!("<{}>; rel=\"first\"", url_for(1)));
        links.push(format!("<{}>; rel=\"prev\"", url_for(page - 1)));
    }
    Some(links.join(", "))
}

fn page_slice(items: Vec<Value>, per_page: usize, page: usize) -> Vec<Value> {
    items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect()
}

/// A paginated JSON array.
pub(crate) fn paginate(ctx: &Ctx, items: Vec<Value>) -> ApiResult<HttpResponse> {
    let (per_page, page) = page_params(ctx);
    let link = link_header(ctx, items.len(), per_page, page);
    let mut resp = HttpResponse::Ok();
    if let Some(link) = link {
        resp.insert_header(("Link", link));
    }
    Ok(resp.json(page_slice(items, per_page, page)))
}

/// A paginated `{"total_count": n, "<key>": [...]}` object (check runs, workflow runs).
pub(crate) fn paginate_wrapped(ctx: &Ctx, key: &str, items: Vec<Value>) -> ApiResult<HttpResponse> {
    let (per_page, page) = page_params(ctx);
    let total = items.len();
    let link = link_header(ctx, total, per_page, page);
    let mut resp = HttpResponse::Ok();
    if let Some(link) = link {
        resp.insert_header(("Link", link));
    }
    Ok(resp.json(json!({"total_count": total, key: page_slice(items, per_page, page)})))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An injected error answer: `status`, the fault's extra headers and GitHub's error body.
fn fault_response(status: u16, headers: &[(String, String)], message: &str) -> HttpResponse {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = HttpResponse::build(code);
    for (k, v) in headers {
        resp.insert_header((k.as_str(), v.as_str()));
    }
    resp.json(Fault::body(message))
}

async fn dispatch(req: HttpRequest, body: web::Bytes, inner: web::Data<Arc<Inner>>) -> HttpResponse {
    let inner: &Inner = inner.get_ref();
    let method = req.method().as_str().to_string();
    let path = req.path().to_string();
    let query_string = req.query_string().to_string();
    // The sim's own plumbing (post-receive reports) is neither recorded nor faulted.
    if path.starts_with("/_sim/") {
        return handle(inner, &req, &method, &path, &query_string, &body).0;
    }
    let idx = {
        let mut reqs = relock(&inner.requests);
        reqs.push(RecordedRequest {
            method: method.clone(),
            path: path.clone(),
            query: query_string.clone(),
            body: String::from_utf8_lossy(&body).into_owned(),
            login: None,
            status: 0,
        });
        reqs.len() - 1
    };
    let fault = relock(&inner.faults).take(&method, &path);
    let (resp, login) = match fault {
        None => handle(inner, &req, &method, &path, &query_string, &body),
        Some(Fault::Delay(d)) => {
            actix_web::rt::time::sleep(d).await;
            handle(inner, &req, &method, &path, &query_string, &body)
        }
        Some(Fault::Status {
            status,
            headers,
            message,
        }) => (fault_response(status, &headers, &message), None),
        Some(Fault::AfterEffect { status, message }) => {
            // The effect (and its webhooks) happens; only the answer is lost on the way back.
            let (_real, login) = handle(inner, &req, &method, &path, &query_string, &body);
            (fault_response(status, &[], &message), login)
        }
    };
    if let Some(rec) = relock(&inner.requests).get_mut(idx) {
        rec.status = resp.status().as_u16();
        rec.login = login;
    }
    let mut resp = resp;
    add_github_headers(&mut resp);
    resp
}

/// Headers GitHub sends on every answer; clients read the rate-limit ones to pace themselves.
/// Injected faults that set their own rate-limit headers keep them.
fn add_github_headers(resp: &mut HttpResponse) {
    use actix_web::http::header::{HeaderName, HeaderValue};
    let reset = (chrono::Utc::now() + chrono::Duration::hours(1))
        .timestamp()
        .to_string();
    let request_id = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
    let headers = resp.headers_mut();
    let defaults = [
        ("x-ratelimit-limit", "5000".to_string()),
        ("x-ratelimit-remaining", "4999".to_string()),
        ("x-ratelimit-used", "1".to_string()),
        ("x-ratelimit-reset", reset),
        ("x-ratelimit-resource", "core".to_string()),
        ("x-github-api-version-selected", "2022-11-28".to_string()),
        ("x-github-request-id", request_id),
    ];
    for (name, value) in defaults {
        let name = HeaderName::from_static(name);
        if !headers.contains_key(&name)
            && let Ok(value) = HeaderValue::from_str(&value)
        {
            headers.insert(name, value);
        }
    }
}

fn handle(
    inner: &Inner,
    req: &HttpRequest,
    method: &str,
    path: &str,
    query_string: &str,
    body: &[u8],
) -> (HttpResponse, Option<String>) {
    let segs: Vec<String> = path.trim_matches('/').split('/').map(percent_decode).collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    // Reports from the repositories' post-receive hooks: loopback-only plumbing, no auth.
    if let ("POST", ["_sim", "post-receive", owner, name]) = (method, segs.as_slice()) {
        let repo = format!("{owner}/{name}");
        let bot = inner.lock().app.bot_login.clone();
        let text = String::from_utf8_lossy(body);
        let resp = match crate::actions::external_push(inner, &repo, &text, &bot) {
            Ok(()) => HttpResponse::NoContent().finish(),
            Err(e) => e.response(),
        };
        return (resp, None);
    }
    // github.com's OAuth web flow: the browser and the app's server call it without a token.
    if segs.first() == Some(&"login") {
        let accept_json = req
            .headers()
            .get("accept")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/json"));
        if let Some(resp) = oauth::serve(inner, method, &segs, query_string, body, accept_json) {
            return (resp, None);
        }
    }
    let principal = match apps::authenticate(inner, req) {
        Ok(p) => p,
        Err(e) => return (e.response(), None),
    };
    let query = web::Query::<HashMap<String, String>>::from_query(query_string)
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let ctx = Ctx {
        inner,
        path: path.to_string(),
        body,
        principal: Some(principal),
        query,
        query_string: query_string.to_string(),
    };
    let login = ctx
        .principal
        .as_ref()
        .and_then(|p| inner.lock().principal_login(p));
    let request_id = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
    let key = limit_key(inner, &principal_of(&ctx));
    let admission = relock(&inner.limits).admit(key, method, path, &request_id);
    let resp = match admission.refusal {
        Some(refusal) => HttpResponse::Forbidden().json(refusal.body),
        None => route_and_serve(inner, &ctx, method, &segs),
    };
    let mut resp = resp;
    let headers = resp.headers_mut();
    for (name, value) in admission
        .headers
        .into_iter()
        .chain([("x-github-request-id", request_id)])
    {
        if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&value) {
            headers.insert(actix_web::http::header::HeaderName::from_static(name), value);
        }
    }
    (resp, login)
}

pub(crate) fn principal_of(ctx: &Ctx) -> Principal {
    ctx.principal.clone().unwrap_or(Principal::App)
}

/// Whose budget a request spends: GitHub counts per user (named by id) and per installation.
pub(crate) fn limit_key(inner: &Inner, principal: &Principal) -> String {
    let user_id = match principal {
        Principal::User(login) => inner.lock().account(login).map(|a| a.id),
        _ => None,
    };
    crate::limits::bucket(principal, user_id)
}

fn route_and_serve(inner: &Inner, ctx: &Ctx, method: &str, segs: &[&str]) -> HttpResponse {
    match find_route(method, segs) {
        None => ApiError::not_found().response(),
        Some((route, params)) => {
            let resp = match serve(ctx, route, &params) {
                Ok(resp) => resp,
                Err(e) => match crate::contract::operation(route.method, route.path) {
                    Some(op) => e.documented(&op.documentation_url).response(),
                    None => e.response(),
                },
            };
            check_response(inner, route, resp)
        }
    }
}

/// Holds the answer to the operation's response schema for its status, recording violations
/// for [`crate::GithubSim::response_violations`]: the sim's renderers cannot drift from what
/// GitHub documents without a test noticing.
fn check_response(inner: &Inner, route: &Route, resp: HttpResponse) -> HttpResponse {
    use actix_web::body::{BoxBody, MessageBody};
    let status = resp.status().as_u16();
    let (head, body) = resp.into_parts();
    match body.try_into_bytes() {
        Ok(bytes) => {
            if !bytes.is_empty() {
                let found = crate::contract::check_response(route.method, route.path, status, &bytes);
                if !found.is_empty() {
                    relock(&inner.response_violations).extend(found);
                }
            }
            head.set_body(BoxBody::new(bytes))
        }
        // Streaming bodies: the simulator sends none, and they cannot be read here.
        Err(body) => head.set_body(body),
    }
}

/// One operation of GitHub's REST API that the simulator answers: its method and path template
/// exactly as GitHub's OpenAPI description spells them, and the handler.
pub(crate) struct Route {
    pub method: &'static str,
    pub path: &'static str,
    handler: fn(&Ctx, &Params) -> ApiResult<HttpResponse>,
}

const fn op(
    method: &'static str,
    path: &'static str,
    handler: fn(&Ctx, &Params) -> ApiResult<HttpResponse>,
) -> Route {
    Route {
        method,
        path,
        handler,
    }
}

/// Everything the simulator serves. The checked-in contract subset (`spec/`) is generated from
/// this table, and a test holds every entry to GitHub's full description, so a route GitHub
/// does not have cannot creep in.
/// Every operation the simulator serves: (method, path template as in GitHub's description).
pub fn served_routes() -> Vec<(&'static str, &'static str)> {
    ROUTES.iter().map(|r| (r.method, r.path)).collect()
}

pub(crate) static ROUTES: &[Route] = &[
    op("GET", "/user", |c, _| accounts::me(c)),
    op("GET", "/rate_limit", |c, _| accounts::rate_limit(c)),
    op("GET", "/users/{username}", |c, p| {
        accounts::user(c, p.get("username"))
    }),
    op("GET", "/app", |c, _| apps::app(c)),
    op("GET", "/app/hook/deliveries", |c, _| hook_deliveries::list(c)),
    op("GET", "/app/hook/deliveries/{delivery_id}", |c, p| {
        hook_deliveries::get(c, p.num("delivery_id")?)
    }),
    op("POST", "/app/hook/deliveries/{delivery_id}/attempts", |c, p| {
        hook_deliveries::redeliver(c, p.num("delivery_id")?)
    }),
    op("GET", "/app/installations", |c, _| apps::installations(c)),
    op("GET", "/app/installations/{installation_id}", |c, p| {
        apps::installation(c, p.get("installation_id"))
    }),
    op(
        "POST",
        "/app/installations/{installation_id}/access_tokens",
        |c, p| apps::access_token(c, p.get("installation_id")),
    ),
    op("GET", "/installation/repositories", |c, _| {
        apps::installation_repositories(c)
    }),
    op(
        "GET",
        "/orgs/{org}/teams/{team_slug}/memberships/{username}",
        |c, p| accounts::team_membership(c, p.get("org"), p.get("team_slug"), p.get("username")),
    ),
    op("GET", "/orgs/{org}/teams/{team_slug}/members", |c, p| {
        accounts::team_members(c, p.get("org"), p.get("team_slug"))
    }),
    op("GET", "/repos/{owner}/{repo}/installation", |c, p| {
        apps::repo_installation(c, &p.repo())
    }),
    op("GET", "/repos/{owner}/{repo}", |c, p| repos::get(c, &p.repo())),
    op("GET", "/repos/{owner}/{repo}/contents/{path}", |c, p| {
        repos::contents(c, &p.repo(), p.get("path"))
    }),
    op("GET", "/repos/{owner}/{repo}/compare/{basehead}", |c, p| {
        repos::compare(c, &p.repo(), p.get("basehead"))
    }),
    op("GET", "/repos/{owner}/{repo}/branches/{branch}", |c, p| {
        repos::branch(c, &p.repo(), p.get("branch"))
    }),
    op(
        "GET",
        "/repos/{owner}/{repo}/branches/{branch}/protection",
        |c, p| repos::protection(c, &p.repo(), p.get("branch")),
    ),
    op("GET", "/repos/{owner}/{repo}/commits/{ref}", |c, p| {
        repos::commit(c, &p.repo(), p.get("ref"))
    }),
    op(
        "GET",
        "/repos/{owner}/{repo}/commits/{commit_sha}/pulls",
        |c, p| pulls::for_commit(c, &p.repo(), p.get("commit_sha")),
    ),
    op("GET", "/repos/{owner}/{repo}/commits/{ref}/status", |c, p| {
        checks::combined(c, &p.repo(), p.get("ref"))
    }),
    op("GET", "/repos/{owner}/{repo}/commits/{ref}/statuses", |c, p| {
        checks::list_statuses(c, &p.repo(), p.get("ref"))
    }),
    op("GET", "/repos/{owner}/{repo}/commits/{ref}/check-runs", |c, p| {
        checks::list_check_runs(c, &p.repo(), p.get("ref"))
    }),
    op("POST", "/repos/{owner}/{repo}/statuses/{sha}", |c, p| {
        checks::create_status(c, &p.repo(), p.get("sha"))
    }),
    op("GET", "/repos/{owner}/{repo}/git/ref/{ref}", |c, p| {
        refs::get_ref(c, &p.repo(), p.get("ref"))
    }),
    op("GET", "/repos/{owner}/{repo}/git/matching-refs/{ref}", |c, p| {
        refs::matching(c, &p.repo(), p.get("ref"))
    }),
    op("POST", "/repos/{owner}/{repo}/git/refs", |c, p| {
        refs::create(c, &p.repo())
    }),
    op("PATCH", "/repos/{owner}/{repo}/git/refs/{ref}", |c, p| {
        refs::update(c, &p.repo(), p.get("ref"))
    }),
    op("DELETE", "/repos/{owner}/{repo}/git/refs/{ref}", |c, p| {
        refs::delete(c, &p.repo(), p.get("ref"))
    }),
    op("GET", "/repos/{owner}/{repo}/pulls", |c, p| {
        pulls::list(c, &p.repo())
    }),
    op("POST", "/repos/{owner}/{repo}/pulls", |c, p| {
        pulls::create(c, &p.repo())
    }),
    op("GET", "/repos/{owner}/{repo}/pulls/{pull_number}", |c, p| {
        pulls::get(c, &p.repo(), p.num("pull_number")?)
    }),
    op("PATCH", "/repos/{owner}/{repo}/pulls/{pull_number}", |c, p| {
        pulls::update(c, &p.repo(), p.num("pull_number")?)
    }),
    op(
        "PUT",
        "/repos/{owner}/{repo}/pulls/{pull_number}/merge",
        |c, p| pulls::merge(c, &p.repo(), p.num("pull_number")?),
    ),
    op(
        "GET",
        "/repos/{owner}/{repo}/pulls/{pull_number}/merge",
        |c, p| pulls::is_merged(c, &p.repo(), p.num("pull_number")?),
    ),
    op(
        "GET",
        "/repos/{owner}/{repo}/pulls/{pull_number}/reviews",
        |c, p| pulls::list_reviews(c, &p.repo(), p.num("pull_number")?),
    ),
    op(
        "POST",
        "/repos/{owner}/{repo}/pulls/{pull_number}/reviews",
        |c, p| pulls::create_review(c, &p.repo(), p.num("pull_number")?),
    ),
    op("GET", "/repos/{owner}/{repo}/issues/{issue_number}", |c, p| {
        issues::get_issue(c, &p.repo(), p.num("issue_number")?)
    }),
    op(
        "GET",
        "/repos/{owner}/{repo}/issues/{issue_number}/comments",
        |c, p| issues::list_comments(c, &p.repo(), p.num("issue_number")?),
    ),
    op(
        "POST",
        "/repos/{owner}/{repo}/issues/{issue_number}/comments",
        |c, p| issues::create_comment(c, &p.repo(), p.num("issue_number")?),
    ),
    op(
        "GET",
        "/repos/{owner}/{repo}/issues/comments/{comment_id}",
        |c, p| issues::get_comment(c, &p.repo(), p.num("comment_id")?),
    ),
    op(
        "PATCH",
        "/repos/{owner}/{repo}/issues/comments/{comment_id}",
        |c, p| issues::update_comment(c, &p.repo(), p.num("comment_id")?),
    ),
    op(
        "GET",
        "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions",
        |c, p| issues::list_reactions(c, &p.repo(), p.num("comment_id")?),
    ),
    op(
        "POST",
        "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions",
        |c, p| issues::create_reaction(c, &p.repo(), p.num("comment_id")?),
    ),
    op("POST", "/repos/{owner}/{repo}/check-runs", |c, p| {
        checks::create_check_run(c, &p.repo())
    }),
    op(
        "GET",
        "/repos/{owner}/{repo}/check-runs/{check_run_id}",
        |c, p| checks::get_check_run(c, &p.repo(), p.num("check_run_id")?),
    ),
    op(
        "PATCH",
        "/repos/{owner}/{repo}/check-runs/{check_run_id}",
        |c, p| checks::update_check_run(c, &p.repo(), p.num("check_run_id")?),
    ),
    op("GET", "/repos/{owner}/{repo}/actions/runs", |c, p| {
        checks::list_workflow_runs(c, &p.repo())
    }),
    op("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}", |c, p| {
        checks::get_workflow_run(c, &p.repo(), p.num("run_id")?)
    }),
    op("GET", "/repos/{owner}/{repo}/deployments", |c, p| {
        deployments::list(c, &p.repo())
    }),
    op("POST", "/repos/{owner}/{repo}/deployments", |c, p| {
        deployments::create(c, &p.repo())
    }),
    op(
        "GET",
        "/repos/{owner}/{repo}/deployments/{deployment_id}",
        |c, p| deployments::get(c, &p.repo(), p.num("deployment_id")?),
    ),
    op(
        "GET",
        "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses",
        |c, p| deployments::list_statuses(c, &p.repo(), p.num("deployment_id")?),
    ),
    op(
        "POST",
        "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses",
        |c, p| deployments::create_status(c, &p.repo(), p.num("deployment_id")?),
    ),
    op("GET", "/repos/{owner}/{repo}/collaborators/{username}", |c, p| {
        accounts::is_collaborator(c, &p.repo(), p.get("username"))
    }),
    op(
        "GET",
        "/repos/{owner}/{repo}/collaborators/{username}/permission",
        |c, p| accounts::permission(c, &p.repo(), p.get("username")),
    ),
];

/// Path parameters that may hold slashes (`heads/feature/x`, `src/app.js`): GitHub's router
/// takes the rest of the path for them. `path` may also be empty (the repository's root).
const SLASHED_PARAMS: [&str; 4] = ["ref", "path", "branch", "basehead"];

/// The values of a matched route's path parameters, percent-decoded.
pub(crate) struct Params {
    values: Vec<(&'static str, String)>,
}

impl Params {
    /// The named parameter; every name a handler asks for is in its route's template.
    pub fn get(&self, name: &str) -> &str {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// `owner/repo` of a `/repos/{owner}/{repo}/…` route.
    pub fn repo(&self) -> String {
        format!("{}/{}", self.get("owner"), self.get("repo"))
    }

    /// A numeric parameter; anything else is the 404 GitHub's router gives.
    pub fn num(&self, name: &str) -> ApiResult<u64> {
        self.get(name).parse().map_err(|_| ApiError::not_found())
    }
}

/// Matches `segs` against one template's segments, filling `out`; backtracks over how many
/// segments a slashed parameter takes.
fn match_template(tmpl: &[&'static str], segs: &[&str], out: &mut Vec<(&'static str, String)>) -> bool {
    let Some((first, rest)) = tmpl.split_first() else {
        return segs.is_empty();
    };
    let Some(name) = first.strip_prefix('{').and_then(|t| t.strip_suffix('}')) else {
        return segs.first() == Some(first) && match_template(rest, &segs[1..], out);
    };
    let (min, max) = if SLASHED_PARAMS.contains(&name) {
        (usize::from(name != "path"), segs.len())
    } else {
        (1, 1.min(segs.len()))
    };
    for take in min..=max {
        out.push((name, segs[..take].join("/")));
        if match_template(rest, &segs[take..], out) {
            return true;
        }
        out.pop();
    }
    false
}

fn match_route(route: &'static Route, segs: &[&str]) -> Option<Params> {
    let tmpl: Vec<&'static str> = route.path.trim_start_matches('/').split('/').collect();
    let mut values = Vec::new();
    match_template(&tmpl, segs, &mut values).then_some(Params { values })
}

/// The route for a request: of the templates that match, the one with the most literal
/// segments (`commits/{ref}/status` over `commits/{ref}`). GitHub takes POST wherever it takes
/// PATCH (octocrab edits comments that way), so a POST no route has falls back to PATCH.
fn find_route(method: &str, segs: &[&str]) -> Option<(&'static Route, Params)> {
    let best = |method: &str| {
        let mut best: Option<(usize, &'static Route, Params)> = None;
        for route in ROUTES.iter().filter(|r| r.method == method) {
            let Some(params) = match_route(route, segs) else {
                continue;
            };
            let literals = route.path.split('/').filter(|s| !s.starts_with('{')).count();
            if best.as_ref().is_none_or(|(most, _, _)| literals > *most) {
                best = Some((literals, route, params));
            }
        }
        best.map(|(_, route, params)| (route, params))
    };
    best(method).or_else(|| if method == "POST" { best("PATCH") } else { None })
}

/// Access rules shared by every route, the body's schema check, then the handler.
fn serve(ctx: &Ctx, route: &Route, params: &Params) -> ApiResult<HttpResponse> {
    if route.path.starts_with("/repos/{owner}/{repo}") {
        let repo = params.repo();
        let app_jwt = ctx.principal == Some(Principal::App);
        if app_jwt && route.path != "/repos/{owner}/{repo}/installation" {
            return Err(ApiError::forbidden(
                "A JSON web token cannot be used for this endpoint",
            ));
        }
        if !app_jwt {
            // Private repositories are invisible (404, as on GitHub) to users without a role.
            let st = ctx.inner.lock();
            let r = st.repo(&repo).ok_or_else(ApiError::not_found)?;
            let login = ctx.principal.as_ref().and_then(|p| st.principal_login(p));
            if r.private && login.is_none_or(|l| st.role(r, &l).is_none()) {
                return Err(ApiError::not_found());
            }
            // An installation token reaches its installation's repositories only.
            if let Some(Principal::Installation { id, .. }) = &ctx.principal
                && st.installation_of(r).is_none_or(|i| i.id != *id)
            {
                return Err(ApiError::not_found());
            }
        }
    }
    crate::contract::check_request_body(route.method, route.path, ctx.body)?;
    (route.handler)(ctx, params)
}
