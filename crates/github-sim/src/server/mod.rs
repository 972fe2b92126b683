//! The HTTP side: one actix service that records each request, applies injected faults,
//! authenticates, and routes by path segments to the per-resource modules.
//!
//! Routing by hand (instead of actix's router) keeps every answer GitHub-shaped: unknown routes,
//! bad JSON and auth failures all produce GitHub's `{"message", "documentation_url"}` body.
//!
//! Routes (all under the base URL):
//! - `GET /user`, `GET /users/{u}`, `GET /rate_limit`
//! - `GET /app`, `GET /app/installations`, `GET /app/installations/{id}`,
//!   `POST /app/installations/{id}/access_tokens`, `GET /repos/{o}/{r}/installation` (app JWT)
//! - `GET /orgs/{org}/teams/{team}/memberships/{u}`, `GET /orgs/{org}/teams/{team}/members`
//! - `GET /repos/{o}/{r}`, `GET /repos/{o}/{r}/contents/{path}?ref=`,
//!   `GET /repos/{o}/{r}/compare/{base}...{head}`, `GET /repos/{o}/{r}/commits/{ref}`,
//!   `GET /repos/{o}/{r}/commits/{sha}/pulls`, `GET /repos/{o}/{r}/branches/{branch}`
//! - `GET /repos/{o}/{r}/git/ref/{ref}`, `GET /repos/{o}/{r}/git/refs/{ref}`,
//!   `GET /repos/{o}/{r}/git/matching-refs/{prefix}`, `POST /repos/{o}/{r}/git/refs`,
//!   `PATCH /repos/{o}/{r}/git/refs/{ref}`, `DELETE /repos/{o}/{r}/git/refs/{ref}`
//! - `GET|POST /repos/{o}/{r}/pulls`, `GET|PATCH /repos/{o}/{r}/pulls/{n}`,
//!   `PUT /repos/{o}/{r}/pulls/{n}/merge`, `GET|POST /repos/{o}/{r}/pulls/{n}/reviews`
//! - `GET /installation/repositories` (installation token)
//! - `GET /repos/{o}/{r}/issues/{n}` (pull requests only), `GET|POST /repos/{o}/{r}/issues/{n}/comments`,
//!   `GET|PATCH /repos/{o}/{r}/issues/comments/{id}`,
//!   `GET|POST /repos/{o}/{r}/issues/comments/{id}/reactions`
//! - `POST /repos/{o}/{r}/statuses/{sha}`, `GET /repos/{o}/{r}/commits/{ref}/statuses`,
//!   `GET /repos/{o}/{r}/commits/{ref}/status`
//! - `POST /repos/{o}/{r}/check-runs`, `GET|PATCH /repos/{o}/{r}/check-runs/{id}`,
//!   `GET /repos/{o}/{r}/commits/{ref}/check-runs`,
//!   `GET /repos/{o}/{r}/actions/runs?head_sha=&branch=&status=`, `GET /repos/{o}/{r}/actions/runs/{id}`
//! - `GET|POST /repos/{o}/{r}/deployments`, `GET /repos/{o}/{r}/deployments/{id}`,
//!   `GET|POST /repos/{o}/{r}/deployments/{id}/statuses`
//! - `GET /repos/{o}/{r}/collaborators/{u}/permission`, `GET /repos/{o}/{r}/collaborators/{u}`

mod accounts;
mod apps;
mod checks;
mod deployments;
mod issues;
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

fn page_params(ctx: &Ctx) -> (usize, usize) {
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
fn link_header(ctx: &Ctx, total: usize, per_page: usize, page: usize) -> Option<String> {
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
    let result = route(&ctx, method, &segs);
    let resp = result.unwrap_or_else(|e| e.response());
    (resp, login)
}

fn route(ctx: &Ctx, method: &str, segs: &[&str]) -> ApiResult<HttpResponse> {
    match (method, segs) {
        ("GET", ["user"]) => accounts::me(ctx),
        ("GET", ["rate_limit"]) => accounts::rate_limit(ctx),
        ("GET", ["users", login]) => accounts::user(ctx, login),
        ("GET", ["app"]) => apps::app(ctx),
        ("GET", ["installation", "repositories"]) => apps::installation_repositories(ctx),
        ("GET", ["app", "installations"]) => apps::installations(ctx),
        ("GET", ["app", "installations", id]) => apps::installation(ctx, id),
        ("POST", ["app", "installations", id, "access_tokens"]) => apps::access_token(ctx, id),
        ("GET", ["orgs", org, "teams", team, "memberships", user]) => {
            accounts::team_membership(ctx, org, team, user)
        }
        ("GET", ["orgs", org, "teams", team, "members"]) => accounts::team_members(ctx, org, team),
        ("GET", ["repos", o, r, rest @ ..]) if ctx.principal == Some(Principal::App) => match rest {
            ["installation"] => apps::repo_installation(ctx, &format!("{o}/{r}")),
            _ => Err(ApiError::forbidden(
                "A JSON web token cannot be used for this endpoint",
            )),
        },
        (_, ["repos", o, r, rest @ ..]) => repo_route(ctx, method, &format!("{o}/{r}"), rest),
        _ => Err(ApiError::not_found()),
    }
}

fn repo_route(ctx: &Ctx, method: &str, repo: &str, rest: &[&str]) -> ApiResult<HttpResponse> {
    if ctx.principal == Some(Principal::App) {
        return Err(ApiError::forbidden(
            "A JSON web token cannot be used for this endpoint",
        ));
    }
    {
        // Private repositories are invisible (404, as on GitHub) to users without a role.
        let st = ctx.inner.lock();
        let r = st.repo(repo).ok_or_else(ApiError::not_found)?;
        let login = ctx.principal.as_ref().and_then(|p| st.principal_login(p));
        if r.private && login.is_none_or(|l| st.role(r, &l).is_none()) {
            return Err(ApiError::not_found());
        }
    }
    match (method, rest) {
        ("GET", []) => repos::get(ctx, repo),
        ("GET", ["contents", path @ ..]) => repos::contents(ctx, repo, &path.join("/")),
        ("GET", ["compare", spec @ ..]) => repos::compare(ctx, repo, &spec.join("/")),
        ("GET", ["branches", branch @ ..]) => repos::branch(ctx, repo, &branch.join("/")),
        ("GET", ["commits", sha, "pulls"]) => pulls::for_commit(ctx, repo, sha),
        ("GET", ["commits", git_ref @ .., "status"]) => checks::combined(ctx, repo, &git_ref.join("/")),
        ("GET", ["commits", git_ref @ .., "statuses"]) => {
            checks::list_statuses(ctx, repo, &git_ref.join("/"))
        }
        ("GET", ["statuses", git_ref @ ..]) => checks::list_statuses(ctx, repo, &git_ref.join("/")),
        ("GET", ["commits", git_ref @ .., "check-runs"]) => {
            checks::list_check_runs(ctx, repo, &git_ref.join("/"))
        }
        ("GET", ["commits", git_ref @ ..]) if !git_ref.is_empty() => {
            repos::commit(ctx, repo, &git_ref.join("/"))
        }
        ("GET", ["git", "ref", name @ ..]) => refs::get_ref(ctx, repo, &name.join("/"), true),
        ("GET", ["git", "refs", name @ ..]) => refs::get_ref(ctx, repo, &name.join("/"), false),
        ("GET", ["git", "matching-refs", prefix @ ..]) => refs::matching(ctx, repo, &prefix.join("/")),
        ("POST", ["git", "refs"]) => refs::create(ctx, repo),
        ("PATCH", ["git", "refs", name @ ..]) => refs::update(ctx, repo, &name.join("/")),
        ("DELETE", ["git", "refs", name @ ..]) => refs::delete(ctx, repo, &name.join("/")),
        ("GET", ["pulls"]) => pulls::list(ctx, repo),
        ("POST", ["pulls"]) => pulls::create(ctx, repo),
        ("GET", ["pulls", n]) => pulls::get(ctx, repo, number(n)?),
        ("PATCH" | "POST", ["pulls", n]) => pulls::update(ctx, repo, number(n)?),
        ("PUT", ["pulls", n, "merge"]) => pulls::merge(ctx, repo, number(n)?),
        ("GET", ["pulls", n, "merge"]) => pulls::is_merged(ctx, repo, number(n)?),
        ("GET", ["pulls", n, "reviews"]) => pulls::list_reviews(ctx, repo, number(n)?),
        ("POST", ["pulls", n, "reviews"]) => pulls::create_review(ctx, repo, number(n)?),
        ("GET", ["issues", "comments", id]) => issues::get_comment(ctx, repo, number(id)?),
        // GitHub accepts POST for PATCH (octocrab edits comments with POST).
        ("PATCH" | "POST", ["issues", "comments", id]) => issues::update_comment(ctx, repo, number(id)?),
        ("GET", ["issues", "comments", id, "reactions"]) => issues::list_reactions(ctx, repo, number(id)?),
        ("POST", ["issues", "comments", id, "reactions"]) => issues::create_reaction(ctx, repo, number(id)?),
        ("GET", ["issues", n]) => issues::get_issue(ctx, repo, number(n)?),
        ("GET", ["actions", "runs"]) => checks::list_workflow_runs(ctx, repo),
        ("GET", ["actions", "runs", id]) => checks::get_workflow_run(ctx, repo, number(id)?),
        ("GET", ["issues", n, "comments"]) => issues::list_comments(ctx, repo, number(n)?),
        ("POST", ["issues", n, "comments"]) => issues::create_comment(ctx, repo, number(n)?),
        ("POST", ["statuses", sha]) => checks::create_status(ctx, repo, sha),
        ("POST", ["check-runs"]) => checks::create_check_run(ctx, repo),
        ("GET", ["check-runs", id]) => checks::get_check_run(ctx, repo, number(id)?),
        ("PATCH" | "POST", ["check-runs", id]) => checks::update_check_run(ctx, repo, number(id)?),
        ("GET", ["deployments"]) => deployments::list(ctx, repo),
        ("POST", ["deployments"]) => deployments::create(ctx, repo),
        ("GET", ["deployments", id]) => deployments::get(ctx, repo, number(id)?),
        ("GET", ["deployments", id, "statuses"]) => deployments::list_statuses(ctx, repo, number(id)?),
        ("POST", ["deployments", id, "statuses"]) => deployments::create_status(ctx, repo, number(id)?),
        ("GET", ["collaborators", user, "permission"]) => accounts::permission(ctx, repo, user),
        ("GET", ["collaborators", user]) => accounts::is_collaborator(ctx, repo, user),
        _ => Err(ApiError::not_found()),
    }
}

/// Numbers in paths; anything else is a 404 like GitHub's router gives.
fn number(s: &str) -> ApiResult<u64> {
    s.parse().map_err(|_| ApiError::not_found())
}
