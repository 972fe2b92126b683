//! [`Forge`] on GitHub's REST API, with octocrab as transport and authenticator.
//!
//! octocrab builds and signs requests (personal token, or App JWT exchanged for installation
//! tokens that it caches and refreshes 30 s before expiry); everything else is ours: each call
//! goes through octocrab's raw `execute`, so the status and headers (Retry-After, rate limits)
//! reach [`retry::run`], and answers are read into this module's own serde types. That also
//! sidesteps octocrab's models where they are wrong for us (design §13: the typed permission
//! call fails on `"write"`; there is no typed Deployments API).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use http::Method;
use octocrab::Octocrab;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::retry::{self, ApiStats, RawResponse, RetryPolicy, Safety, SendFailure};
use super::{
    Actor, ChangedFiles, Comment, CommentId, ComparedCommit, Comparison, Deployment, DeploymentId,
    DeploymentStatusUpdate, Forge, ForgeError, ForgeResult, HookDeliveries, HookDelivery, MergeMethod,
    MergeOutcome, NewDeployment, PermissionLevel, PullHead, PullRequest, PullState, Reaction, Review,
    ReviewState, StatusUpdate,
};
use crate::config::{GithubAuth, GithubConfig};
use crate::domain::{BranchName, CommitSha, RepoName};

/// The secret half of [`GithubAuth`], resolved by the caller (the forge reads no environment).
#[derive(Clone)]
pub enum GithubAuthSecret {
    /// A personal or installation token.
    Token(String),
    /// A GitHub App: its id and RSA private key (PEM).
    App { app_id: u64, private_key_pem: String },
}

impl std::fmt::Debug for GithubAuthSecret {
    // Secrets never reach logs (design §10), not even through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GithubAuthSecret::Token(_) => f.write_str("Token(<redacted>)"),
            GithubAuthSecret::App { app_id, .. } => write!(f, "App {{ app_id: {app_id}, key: <redacted> }}"),
        }
    }
}

/// Pages read at most by a listing, 100 items each: a bound, not an expected size.
const MAX_PAGES: usize = 50;
const PER_PAGE: usize = 100;
/// Pages of webhook deliveries read at most in one call: the catch-up reads what came since
/// its last pass, and a bound keeps one pass small whatever the backlog.
const MAX_DELIVERY_PAGES: usize = 10;
/// Pages of a commit's files: GitHub lists at most 3000 files, 300 a page.
const COMMIT_FILE_PAGES: usize = 10;
/// Installation tokens start with this; GitHub answers them 403 on `GET /user`.
const INSTALLATION_TOKEN_PREFIX: &str = "ghs_";

/// Characters escaped in one path segment or query value.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn enc(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

fn repo_path(repo: &RepoName) -> String {
    format!("/repos/{}/{}", enc(repo.owner()), enc(repo.name()))
}

enum Auth {
    /// The client, and the token itself for git (`x-access-token`).
    Token(Arc<Octocrab>, String),
    App {
        /// Authenticates as the App itself (JWT): only for `/app…` and installation lookups.
        app: Box<Octocrab>,
        installations: Mutex<Installations>,
    },
}

/// Installation clients, one per installation, found by lower-cased account login.
#[derive(Default)]
struct Installations {
    by_owner: HashMap<String, u64>,
    /// Shared through `Arc`: a cloned `Octocrab` copies its token cache, and each copy would
    /// mint tokens of its own.
    clients: HashMap<u64, Arc<Octocrab>>,
}

impl Installations {
    fn for_owner(&self, owner: &str) -> Option<Arc<Octocrab>> {
        self.by_owner
            .get(owner)
            .and_then(|id| self.clients.get(id))
            .cloned()
    }

    /// Drops `client` and the owners it served; the installation id it was for.
    fn forget(&mut self, client: &Octocrab) -> Option<u64> {
        let id = self
            .clients
            .iter()
            .find(|(_, c)| std::ptr::eq(Arc::as_ptr(c), client))
            .map(|(id, _)| *id)?;
        self.clients.remove(&id);
        self.by_owner.retain(|_, of| *of != id);
        Some(id)
    }
}

/// GitHub behind the [`Forge`] trait.
pub struct GithubForge {
    auth: Auth,
    policy: RetryPolicy,
    stats: Arc<ApiStats>,
    login: tokio::sync::OnceCell<String>,
    /// Content-creating calls keep GitHub's secondary-limit pace.
    pace: super::pace::Pace,
    /// Repositories' `html_url`, asked once each.
    html_urls: Mutex<HashMap<String, String>>,
    /// Installation tokens minted for git, by installation id, with their expiry.
    git_tokens: Mutex<HashMap<u64, (String, chrono::DateTime<chrono::Utc>)>>,
}

impl std::fmt::Debug for GithubForge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = match self.auth {
            Auth::Token(..) => "token",
            Auth::App { .. } => "app",
        };
        f.debug_struct("GithubForge")
            .field("auth", &auth)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

fn builder(
    api_url: &str,
) -> ForgeResult<
    octocrab::OctocrabBuilder<
        octocrab::NoSvc,
        octocrab::DefaultOctocrabBuilderConfig,
        octocrab::NoAuth,
        octocrab::NotLayerReady,
    >,
> {
    let builder = Octocrab::builder()
        .base_uri(api_url.trim_end_matches('/'))
        .map_err(|e| ForgeError::Config(format!("github.api_url {api_url:?}: {e}")))?
        // Off: octocrab would repeat POSTs and ignore Retry-After (design §13); `retry` decides.
        .add_retry_config(octocrab::service::middleware::retry::RetryConfig::None)
        .set_connect_timeout(Some(Duration::from_secs(10)))
        .set_read_timeout(Some(Duration::from_secs(60)))
        .set_write_timeout(Some(Duration::from_secs(60)));
    Ok(builder)
}

impl GithubForge {
    /// A forge for `api_url` (`https://api.github.com`, a GHES `…/api/v3`, or a simulator).
    pub fn new(api_url: &str, secret: GithubAuthSecret, policy: RetryPolicy) -> ForgeResult<GithubForge> {
        let auth = match secret {
            GithubAuthSecret::Token(token) => {
                if token.trim().is_empty() {
                    return Err(ForgeError::Config("the GitHub token is empty".into()));
                }
                let token_for_git = token.clone();
                let client = builder(api_url)?
                    .personal_token(token)
                    .build()
                    .map_err(|e| ForgeError::Config(format!("cannot build the GitHub client: {e}")))?;
                Auth::Token(Arc::new(client), token_for_git)
            }
            GithubAuthSecret::App {
                app_id,
                private_key_pem,
            } => {
                let key = octocrab::jsonwebtoken::EncodingKey::from_rsa_pem(private_key_pem.as_bytes())
                    .map_err(|e| {
                        ForgeError::Config(format!("the App private key is not an RSA PEM key: {e}"))
                    })?;
                let app = builder(api_url)?
                    .app(octocrab::models::AppId(app_id), key)
                    .build()
                    .map_err(|e| ForgeError::Config(format!("cannot build the GitHub client: {e}")))?;
                Auth::App {
                    app: Box::new(app),
                    installations: Mutex::new(Installations::default()),
                }
            }
        };
        Ok(GithubForge {
            auth,
            policy,
            stats: Arc::new(ApiStats::default()),
            login: tokio::sync::OnceCell::new(),
            html_urls: Mutex::new(HashMap::new()),
            pace: super::pace::Pace::default(),
            git_tokens: Mutex::new(HashMap::new()),
        })
    }

    /// From `auger.toml`'s `[github]`: `token` is the value of `token_env` (read by the caller);
    /// for App auth the private key file is read here.
    pub fn from_config(
        config: &GithubConfig,
        token: Option<String>,
        policy: RetryPolicy,
    ) -> ForgeResult<Self> {
        let secret = match &config.auth {
            GithubAuth::Token { env } => GithubAuthSecret::Token(
                token.ok_or_else(|| ForgeError::Config(format!("no token: set the variable {env}")))?,
            ),
            GithubAuth::App {
                app_id,
                private_key_file,
            } => GithubAuthSecret::App {
                app_id: *app_id,
                private_key_pem: std::fs::read_to_string(private_key_file).map_err(|e| {
                    ForgeError::Config(format!("cannot read {}: {e}", private_key_file.display()))
                })?,
            },
            GithubAuth::None => {
                return Err(ForgeError::Config(
                    "no GitHub credentials configured (github.token_env or github.app_id)".into(),
                ));
            }
        };
        let forge = Self::new(&config.api_url, secret, policy)?;
        Ok(match &config.bot_login {
            Some(login) => forge.with_bot_login(login),
            None => forge,
        })
    }

    /// Takes `login` as the login auger acts as, instead of asking GitHub (`github.bot_login`:
    /// needed with an installation token, which cannot read `GET /user`).
    pub fn with_bot_login(self, login: &str) -> Self {
        let login = login.trim();
        if !login.is_empty() {
            // A fresh cell: setting it cannot fail.
            let _ = self.login.set(login.to_string());
        }
        self
    }

    /// Call counters, shared: hand the `Arc` to the metrics endpoint.
    pub fn stats(&self) -> Arc<ApiStats> {
        Arc::clone(&self.stats)
    }

    /// The client that acts on `repo`: the token client, or the App's installation there.
    async fn client_for_repo(&self, repo: &RepoName) -> ForgeResult<Arc<Octocrab>> {
        match &self.auth {
            Auth::Token(client, _) => Ok(Arc::clone(client)),
            Auth::App { app, installations } => {
                let owner = repo.owner().to_ascii_lowercase();
                if let Some(c) = lock(installations).for_owner(&owner) {
                    return Ok(c);
                }
                let path = format!("{}/installation", repo_path(repo));
                let inst: WireInstallation = self
                    .fetch(app, &Call::get(path, "find the App installation"))
                    .await?;
                self.install(app, installations, &owner, inst.id)
            }
        }
    }

    /// The client for calls that name no repository (teams of `org`, users).
    async fn client_for_owner(&self, org: Option<&str>) -> ForgeResult<Arc<Octocrab>> {
        match &self.auth {
            Auth::Token(client, _) => Ok(Arc::clone(client)),
            Auth::App { app, installations } => {
                let wanted = org.map(str::to_ascii_lowercase);
                {
                    let cache = lock(installations);
                    let hit = match &wanted {
                        Some(o) => cache.for_owner(o),
                        None => cache.clients.values().next().cloned(),
                    };
                    if let Some(c) = hit {
                        return Ok(c);
                    }
                }
                let all: Vec<WireInstallation> = self
                    .list_all(app, "/app/installations", "list App installations")
                    .await?;
                // An enterprise's installation has an account without a login: it is on no
                // organization, and serves calls that name none only when nothing else can.
                let login = |i: &WireInstallation| {
                    i.account
                        .as_ref()
                        .and_then(|a| a.login.as_deref())
                        .map(str::to_ascii_lowercase)
                };
                let pick = match &wanted {
                    Some(w) => all.iter().find(|i| login(i).as_ref() == Some(w)),
                    None => all.iter().find(|i| login(i).is_some()).or(all.first()),
                };
                let Some(inst) = pick else {
                    return Err(ForgeError::NotFound(format!(
                        "the App has no installation on {}",
                        org.unwrap_or("any account")
                    )));
                };
                let key = login(inst).unwrap_or_else(|| inst.id.to_string());
                self.install(app, installations, &key, inst.id)
            }
        }
    }

    /// A token git can use on `repo`: the configured token, or an installation token of the
    /// App, minted and kept until five minutes before it expires (they last an hour).
    async fn token_for_git(&self, repo: &RepoName) -> ForgeResult<Option<String>> {
        let Auth::App { app, installations } = &self.auth else {
            let Auth::Token(_, token) = &self.auth else {
                return Ok(None);
            };
            return Ok(Some(token.clone()));
        };
        self.client_for_repo(repo).await?;
        let owner = repo.owner().to_ascii_lowercase();
        let Some(id) = lock(installations).by_owner.get(&owner).copied() else {
            return Ok(None);
        };
        let now = chrono::Utc::now();
        if let Some((token, expires)) = lock(&self.git_tokens).get(&id)
            && *expires > now + chrono::Duration::minutes(5)
        {
            return Ok(Some(token.clone()));
        }
        let path = format!("/app/installations/{id}/access_tokens");
        // Minting twice only makes two tokens: safe to retry.
        let call = Call::new(Method::POST, path, "mint a token for git").repeatable();
        let minted: WireAccessToken = self.fetch(app, &call).await?;
        let expires = minted
            .expires_at
            .unwrap_or_else(|| now + chrono::Duration::minutes(50));
        lock(&self.git_tokens).insert(id, (minted.token.clone(), expires));
        Ok(Some(minted.token))
    }

    fn install(
        &self,
        app: &Octocrab,
        cache: &Mutex<Installations>,
        owner: &str,
        id: u64,
    ) -> ForgeResult<Arc<Octocrab>> {
        let mut cache = lock(cache);
        cache.by_owner.insert(owner.to_string(), id);
        // Another task may have raced us here; keep its client and its token.
        if let Some(c) = cache.clients.get(&id) {
            return Ok(Arc::clone(c));
        }
        let client = app
            .installation(octocrab::models::InstallationId(id))
            .map_err(|e| ForgeError::Config(format!("cannot act as installation {id}: {e}")))?;
        tracing::info!(installation = id, owner, "using GitHub App installation");
        let client = Arc::new(client);
        cache.clients.insert(id, Arc::clone(&client));
        Ok(client)
    }

    /// One call with the retry rules. Returns the final answer whatever its status.
    async fn send(&self, client: &Octocrab, call: &Call<'_>) -> ForgeResult<RawResponse> {
        if call.method != Method::GET {
            self.pace.admit().await;
        }
        let result = retry::run(&self.policy, &self.stats, call.safety, call.what, || {
            send_once(client, call.method.clone(), &call.path, call.body.as_ref())
        })
        .await;
        let refused = match &result {
            Ok(answer) => answer.status == 401,
            Err(ForgeError::Unauthorized(message)) => message.starts_with(MINTING),
            Err(_) => false,
        };
        if refused {
            self.forget_installation_of(client);
        }
        result
    }

    /// GitHub refused `client`'s installation token, or to mint one (the installation was
    /// deleted, or the App lost access): forget the installation, so the next call finds
    /// where the App is installed now even when the `installation` webhook that said so was
    /// missed. The App's own client is not an installation's and is never forgotten.
    fn forget_installation_of(&self, client: &Octocrab) {
        let Auth::App { installations, .. } = &self.auth else {
            return;
        };
        if let Some(id) = lock(installations).forget(client) {
            lock(&self.git_tokens).remove(&id);
            tracing::warn!(
                installation = id,
                "GitHub refused the installation's token; it is looked up again on the next call"
            );
        }
    }

    /// The App's client (JWT), or the error saying this forge is no App.
    fn app_client(&self) -> ForgeResult<&Octocrab> {
        match &self.auth {
            Auth::App { app, .. } => Ok(app),
            Auth::Token(..) => Err(ForgeError::Config(
                "the webhook deliveries API needs GitHub App authentication (github.app_id)".into(),
            )),
        }
    }

    /// One call that must succeed, its JSON answer decoded.
    async fn fetch<T: DeserializeOwned>(&self, client: &Octocrab, call: &Call<'_>) -> ForgeResult<T> {
        decode(ok_or_error(self.send(client, call).await?, call.what)?)
    }

    /// One call that must succeed, its answer not needed.
    async fn perform(&self, client: &Octocrab, call: &Call<'_>) -> ForgeResult<()> {
        ok_or_error(self.send(client, call).await?, call.what).map(drop)
    }

    /// All pages of a listing under `path` (which may carry a query already).
    async fn list_all<T: DeserializeOwned>(
        &self,
        client: &Octocrab,
        path: &str,
        what: &str,
    ) -> ForgeResult<Vec<T>> {
        // Page numbers rather than the `Link` header: its absolute URLs would make octocrab
        // drop the Authorization header for any host but api.github.com.
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut all = Vec::new();
        for page in 1..=MAX_PAGES {
            let url = format!("{path}{sep}per_page={PER_PAGE}&page={page}");
            let items: Vec<T> = self.fetch(client, &Call::get(url, what)).await?;
            let n = items.len();
            all.extend(items);
            if n < PER_PAGE {
                return Ok(all);
            }
        }
        tracing::warn!(call = what, pages = MAX_PAGES, "listing truncated");
        Ok(all)
    }
}

/// One REST call: what it is for (in errors, logs and metrics), and whether GitHub may see it
/// twice (the retry helper repeats only calls that are safe to repeat).
struct Call<'a> {
    method: Method,
    path: String,
    body: Option<Value>,
    safety: Safety,
    what: &'a str,
}

impl<'a> Call<'a> {
    /// A GET, always safe to repeat.
    fn get(path: String, what: &'a str) -> Self {
        Self {
            method: Method::GET,
            path,
            body: None,
            safety: Safety::Idempotent,
            what,
        }
    }

    /// A call that changes something: not repeated unless marked [`Call::repeatable`].
    fn new(method: Method, path: String, what: &'a str) -> Self {
        Self {
            method,
            path,
            body: None,
            safety: Safety::NotIdempotent,
            what,
        }
    }

    fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    /// Safe to send twice, so the retry helper may repeat it after a failure.
    fn repeatable(mut self) -> Self {
        self.safety = Safety::Idempotent;
        self
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere cannot leave a half-written client map; keep using it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn send_once(
    client: &Octocrab,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<RawResponse, SendFailure> {
    let builder = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::ACCEPT, "application/vnd.github+json");
    let request = client
        .build_request(builder, body)
        .map_err(|e| SendFailure::Fatal(ForgeError::Config(format!("cannot build request {path}: {e}"))))?;
    let response = client.execute(request).await.map_err(send_failure)?;
    let (parts, body) = response.into_parts();
    let body = client
        .body_to_string(http::Response::new(body))
        .await
        .map_err(|e| SendFailure::Lost(format!("reading the answer failed: {e}")))?;
    Ok(RawResponse {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    })
}

/// How an error from minting an installation token begins.
const MINTING: &str = "minting the installation token";

/// Sorts an octocrab error from `execute` by whether the request can have reached GitHub.
fn send_failure(e: octocrab::Error) -> SendFailure {
    match e {
        // `execute` maps no statuses itself: a GitHub error here comes from minting the
        // installation token, before our request was sent.
        octocrab::Error::GitHub { source, .. } => {
            let status = source.status_code.as_u16();
            if status >= 500 || status == 429 {
                SendFailure::NotSent(format!("{MINTING}: {status} {}", source.message))
            } else {
                SendFailure::Fatal(ForgeError::Unauthorized(format!(
                    "{MINTING}: {status} {}",
                    source.message
                )))
            }
        }
        octocrab::Error::JWT { source, .. } => {
            SendFailure::Fatal(ForgeError::Config(format!("cannot sign the App JWT: {source}")))
        }
        other => {
            if is_connect_error(&other) {
                SendFailure::NotSent(error_chain(&other))
            } else {
                SendFailure::Lost(error_chain(&other))
            }
        }
    }
}

/// Whether the failure was establishing the connection (so nothing was sent).
fn is_connect_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(h) = err.downcast_ref::<hyper_util::client::legacy::Error>()
            && h.is_connect()
        {
            return true;
        }
        cur = err.source();
    }
    false
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(err) = cur {
        out.push_str(": ");
        out.push_str(&err.to_string());
        cur = err.source();
    }
    out
}

/// The answer if it is a success, else the error its status means.
fn ok_or_error(resp: RawResponse, what: &str) -> ForgeResult<RawResponse> {
    if (200..300).contains(&resp.status) {
        return Ok(resp);
    }
    let message = format!("{what}: {}", retry::error_message(&resp.body));
    Err(match resp.status {
        401 => ForgeError::Unauthorized(message),
        403 => ForgeError::Forbidden(message),
        404 | 410 => ForgeError::NotFound(message),
        409 => ForgeError::Conflict(message),
        s if s >= 500 => ForgeError::Server { status: s, message },
        s => ForgeError::Invalid { status: s, message },
    })
}

fn decode<T: DeserializeOwned>(resp: RawResponse) -> ForgeResult<T> {
    let de = &mut serde_json::Deserializer::from_str(&resp.body);
    serde_path_to_error::deserialize(de)
        .map_err(|e| ForgeError::Decode(format!("at {}: {}", e.path(), e.inner())))
}

// Wire types: only the fields auger reads; GitHub's extra fields are ignored.

#[derive(Deserialize)]
struct WireAccount {
    login: String,
    id: u64,
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

impl From<WireAccount> for Actor {
    fn from(a: WireAccount) -> Actor {
        Actor {
            is_bot: a.kind.as_deref() == Some("Bot"),
            login: a.login,
            id: a.id,
        }
    }
}

#[derive(Deserialize)]
struct WireAccessToken {
    token: String,
    #[serde(default)]
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Deserialize)]
struct WireInstallation {
    id: u64,
    account: Option<WireInstallationAccount>,
}

/// A user or organization, or an enterprise (which has a slug and no login).
#[derive(Deserialize)]
struct WireInstallationAccount {
    #[serde(default)]
    login: Option<String>,
}

#[derive(Deserialize)]
struct WireHookDelivery {
    id: u64,
    guid: String,
    delivered_at: chrono::DateTime<chrono::Utc>,
    #[serde(default)]
    redelivery: bool,
    #[serde(default)]
    status_code: Option<u16>,
    event: String,
    #[serde(default)]
    action: Option<String>,
}

impl From<WireHookDelivery> for HookDelivery {
    fn from(d: WireHookDelivery) -> HookDelivery {
        HookDelivery {
            id: d.id,
            guid: d.guid,
            delivered_at: d.delivered_at,
            redelivery: d.redelivery,
            status_code: d.status_code.unwrap_or(0),
            event: d.event,
            action: d.action,
        }
    }
}

/// The `cursor` of the `next` page in a `Link` header, if there is one. The cursor, not the
/// URL: an absolute URL would make octocrab drop the Authorization header for any host but
/// api.github.com.
fn next_cursor(headers: &http::HeaderMap) -> Option<String> {
    let link = headers.get(http::header::LINK)?.to_str().ok()?;
    let next = link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == "rel=\"next\"")
            .then(|| url.trim().trim_start_matches('<').trim_end_matches('>'))
    })?;
    let query = next.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        let value = kv.strip_prefix("cursor=")?;
        percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .ok()
            .map(|v| v.into_owned())
    })
}

/// Whether a `Link` header names a next page.
fn has_next(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::LINK)
        .and_then(|l| l.to_str().ok())
        .is_some_and(|l| l.contains("rel=\"next\""))
}

#[derive(Deserialize)]
struct WireComparison {
    total_commits: u64,
    behind_by: u64,
    html_url: String,
    #[serde(default)]
    commits: Vec<WireCommit>,
}

#[derive(Deserialize)]
struct WireCommit {
    sha: String,
    html_url: String,
    commit: WireGitCommit,
    #[serde(default)]
    author: Option<Value>,
}

#[derive(Deserialize)]
struct WireGitCommit {
    #[serde(default)]
    message: String,
    #[serde(default)]
    author: Option<WireGitUser>,
}

#[derive(Deserialize)]
struct WireGitUser {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct WireRepo {
    full_name: String,
}

#[derive(Deserialize)]
struct WireRef {
    #[serde(rename = "ref")]
    name: String,
    sha: String,
    repo: Option<WireRepo>,
}

#[derive(Deserialize)]
struct WirePull {
    number: u64,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    body: Option<String>,
    state: String,
    #[serde(default)]
    draft: Option<bool>,
    #[serde(default)]
    merged: Option<bool>,
    #[serde(default)]
    merged_at: Option<String>,
    #[serde(default)]
    merge_commit_sha: Option<String>,
    head: WireRef,
    base: WireRef,
    user: WireAccount,
    html_url: String,
}

fn sha(s: &str, field: &str) -> ForgeResult<CommitSha> {
    CommitSha::new(s).map_err(|e| ForgeError::Decode(format!("{field}: {e}")))
}

impl TryFrom<WirePull> for PullRequest {
    type Error = ForgeError;
    fn try_from(p: WirePull) -> ForgeResult<PullRequest> {
        let branch = |r: &WireRef, field: &str| {
            BranchName::new(r.name.as_str()).map_err(|e| ForgeError::Decode(format!("{field}: {e}")))
        };
        let head_repo = match &p.head.repo {
            Some(r) => Some(
                RepoName::new(r.full_name.as_str())
                    .map_err(|e| ForgeError::Decode(format!("head.repo.full_name: {e}")))?,
            ),
            None => None,
        };
        let state = match p.state.as_str() {
            "open" => PullState::Open,
            "closed" => PullState::Closed,
            other => return Err(ForgeError::Decode(format!("pull request state {other:?}"))),
        };
        // Listings omit `merged`; `merged_at` is in both shapes.
        let merged = p.merged.unwrap_or(p.merged_at.is_some());
        // GitHub fills merge_commit_sha with a test merge while open; only a merged PR's counts.
        let merge_commit_sha = match (&p.merge_commit_sha, merged) {
            (Some(s), true) => Some(sha(s, "merge_commit_sha")?),
            _ => None,
        };
        Ok(PullRequest {
            number: p.number,
            title: p.title.clone().unwrap_or_default(),
            body: p.body.clone().unwrap_or_default(),
            state,
            draft: p.draft.unwrap_or(false),
            merged,
            merge_commit_sha,
            head: PullHead {
                branch: branch(&p.head, "head.ref")?,
                sha: sha(&p.head.sha, "head.sha")?,
                repo: head_repo,
            },
            base_branch: branch(&p.base, "base.ref")?,
            author: p.user.into(),
            html_url: p.html_url,
        })
    }
}

#[derive(Deserialize)]
struct WireReview {
    id: u64,
    user: Option<WireAccount>,
    state: String,
    #[serde(default)]
    commit_id: Option<String>,
}

#[derive(Deserialize)]
struct WireComment {
    id: u64,
    user: WireAccount,
    #[serde(default)]
    body: Option<String>,
    html_url: String,
}

#[derive(Deserialize)]
struct WireDeployment {
    id: u64,
    sha: String,
    environment: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    payload: Value,
    #[serde(default)]
    transient_environment: bool,
    #[serde(default)]
    production_environment: bool,
    #[serde(default)]
    creator: Option<WireAccount>,
}

#[derive(Deserialize)]
struct WireId {
    id: u64,
}

#[async_trait]
impl Forge for GithubForge {
    async fn git_token(&self, repo: &RepoName) -> ForgeResult<Option<String>> {
        self.token_for_git(repo).await
    }

    async fn authenticated_login(&self) -> ForgeResult<String> {
        self.login
            .get_or_try_init(|| async {
                match &self.auth {
                    Auth::Token(_, token) if token.starts_with(INSTALLATION_TOKEN_PREFIX) => {
                        Err(ForgeError::Config(
                            "an installation token cannot ask GitHub who it is (GET /user \
                             answers 403): set github.bot_login to the App's bot login \
                             (<app slug>[bot])"
                                .into(),
                        ))
                    }
                    Auth::Token(client, _) => {
                        let me: WireAccount =
                            self.fetch(client, &Call::get("/user".into(), "who am I")).await?;
                        Ok(me.login)
                    }
                    Auth::App { app, .. } => {
                        #[derive(Deserialize)]
                        struct WireApp {
                            slug: String,
                        }
                        let me: WireApp = self
                            .fetch(app, &Call::get("/app".into(), "which App am I"))
                            .await?;
                        Ok(format!("{}[bot]", me.slug))
                    }
                }
            })
            .await
            .cloned()
    }

    async fn find_open_pull(&self, repo: &RepoName, head: &BranchName) -> ForgeResult<Option<PullRequest>> {
        // `head=owner:branch` limits the answer to same-repository branches, never forks.
        let path = format!(
            "{}/pulls?state=open&head={}",
            repo_path(repo),
            enc(&format!("{}:{}", repo.owner(), head))
        );
        let client = self.client_for_repo(repo).await?;
        let pulls: Vec<WirePull> = self.fetch(&client, &Call::get(path, "find pull request")).await?;
        // Oldest first, should GitHub ever hold two for one head.
        let oldest = pulls.into_iter().min_by_key(|p| p.number);
        oldest.map(PullRequest::try_from).transpose()
    }

    async fn create_pull(
        &self,
        repo: &RepoName,
        head: &BranchName,
        base: &BranchName,
        title: &str,
        body: &str,
    ) -> ForgeResult<PullRequest> {
        let path = format!("{}/pulls", repo_path(repo));
        let req = json!({"head": head.as_str(), "base": base.as_str(), "title": title, "body": body});
        let call = Call::new(Method::POST, path, "create pull request").json(req);
        let client = self.client_for_repo(repo).await?;
        self.fetch::<WirePull>(&client, &call).await?.try_into()
    }

    async fn update_pull(
        &self,
        repo: &RepoName,
        number: u64,
        title: &str,
        body: &str,
    ) -> ForgeResult<PullRequest> {
        let path = format!("{}/pulls/{number}", repo_path(repo));
        let req = json!({"title": title, "body": body});
        let call = Call::new(Method::PATCH, path, "update pull request")
            .json(req)
            .repeatable();
        let client = self.client_for_repo(repo).await?;
        self.fetch::<WirePull>(&client, &call).await?.try_into()
    }

    async fn repo_html_url(&self, repo: &RepoName) -> ForgeResult<String> {
        let key = repo.as_str().to_ascii_lowercase();
        if let Some(url) = self.html_urls.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(url.clone());
        }
        #[derive(Deserialize)]
        struct WireRepoPage {
            html_url: String,
        }
        let client = self.client_for_repo(repo).await?;
        let page: WireRepoPage = self
            .fetch(&client, &Call::get(repo_path(repo), "get repository"))
            .await?;
        let url = page.html_url.trim_end_matches('/').to_owned();
        self.html_urls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, url.clone());
        Ok(url)
    }

    async fn get_pull(&self, repo: &RepoName, number: u64) -> ForgeResult<PullRequest> {
        let path = format!("{}/pulls/{number}", repo_path(repo));
        let client = self.client_for_repo(repo).await?;
        self.fetch::<WirePull>(&client, &Call::get(path, "get pull request"))
            .await?
            .try_into()
    }

    async fn list_reviews(&self, repo: &RepoName, number: u64) -> ForgeResult<Vec<Review>> {
        let client = self.client_for_repo(repo).await?;
        let path = format!("{}/pulls/{number}/reviews", repo_path(repo));
        let wire: Vec<WireReview> = self.list_all(&client, &path, "list reviews").await?;
        let mut reviews = Vec::with_capacity(wire.len());
        for r in wire {
            // A deleted account leaves `user: null`; such a review can approve nothing.
            let Some(user) = r.user else { continue };
            let state = match r.state.parse::<ReviewState>() {
                Ok(s) => s,
                Err(_) => {
                    // A state GitHub adds later is no approval; skip it rather than fail the gate.
                    tracing::warn!(review = r.id, state = %r.state, "ignoring review with unknown state");
                    continue;
                }
            };
            let commit_id = match r.commit_id.as_deref() {
                Some(s) => Some(sha(s, "review commit_id")?),
                None => None,
            };
            reviews.push(Review {
                id: r.id,
                user: user.into(),
                state,
                commit_id,
            });
        }
        Ok(reviews)
    }

    async fn merge_pull(
        &self,
        repo: &RepoName,
        number: u64,
        expected_head_sha: &CommitSha,
        method: MergeMethod,
        commit_title: &str,
        commit_message: &str,
    ) -> ForgeResult<MergeOutcome> {
        let path = format!("{}/pulls/{number}/merge", repo_path(repo));
        let mut req = json!({
            "sha": expected_head_sha.as_str(),
            "merge_method": method.as_str(),
            "commit_title": commit_title,
        });
        if !commit_message.is_empty() {
            req["commit_message"] = json!(commit_message);
        }
        // A PUT, but not repeated after a 5xx: a merge that did happen would then answer 405
        // and be reported as refused. OutcomeUnknown makes the caller re-read the PR instead.
        let call = Call::new(Method::PUT, path, "merge pull request").json(req);
        let client = self.client_for_repo(repo).await?;
        let resp = self.send(&client, &call).await?;
        match resp.status {
            409 => Ok(MergeOutcome::HeadMoved),
            405 => Ok(MergeOutcome::NotMergeable(retry::error_message(&resp.body))),
            _ => {
                #[derive(Deserialize)]
                struct Merged {
                    sha: String,
                }
                let merged: Merged = decode(ok_or_error(resp, call.what)?)?;
                Ok(MergeOutcome::Merged {
                    sha: sha(&merged.sha, "merge sha")?,
                })
            }
        }
    }

    async fn close_pull(&self, repo: &RepoName, number: u64) -> ForgeResult<()> {
        let path = format!("{}/pulls/{number}", repo_path(repo));
        let req = json!({"state": "closed"});
        let call = Call::new(Method::PATCH, path, "close pull request")
            .json(req)
            .repeatable();
        let client = self.client_for_repo(repo).await?;
        self.perform(&client, &call).await
    }

    async fn pulls_for_commit(&self, repo: &RepoName, sha: &CommitSha) -> ForgeResult<Vec<u64>> {
        #[derive(Deserialize)]
        struct Number {
            number: u64,
        }
        let client = self.client_for_repo(repo).await?;
        let path = format!("{}/commits/{}/pulls", repo_path(repo), sha.as_str());
        let pulls: Vec<Number> = self.list_all(&client, &path, "pull requests for commit").await?;
        Ok(pulls.into_iter().map(|p| p.number).collect())
    }

    async fn compare(&self, repo: &RepoName, base: &CommitSha, head: &CommitSha) -> ForgeResult<Comparison> {
        let client = self.client_for_repo(repo).await?;
        // No paging parameters: GitHub then lists the newest 250 commits, which is what a
        // changelog shows; `total_commits` still counts them all.
        let path = format!(
            "{}/compare/{}...{}",
            repo_path(repo),
            base.as_str(),
            head.as_str()
        );
        let wire: WireComparison = self.fetch(&client, &Call::get(path, "compare commits")).await?;
        let mut commits = Vec::with_capacity(wire.commits.len());
        for c in wire.commits {
            // `author` is the account GitHub matched to the email: null, or `{}`, when none.
            let author_login = c
                .author
                .as_ref()
                .and_then(|a| a.get("login"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            commits.push(ComparedCommit {
                sha: sha(&c.sha, "commits[].sha")?,
                message: c.commit.message,
                author_name: c.commit.author.and_then(|a| a.name).unwrap_or_default(),
                author_login,
                html_url: c.html_url,
            });
        }
        Ok(Comparison {
            total_commits: wire.total_commits,
            behind_by: wire.behind_by,
            html_url: wire.html_url,
            commits,
        })
    }

    async fn commit_files(&self, repo: &RepoName, commit: &CommitSha) -> ForgeResult<ChangedFiles> {
        #[derive(Deserialize)]
        struct File {
            filename: String,
            #[serde(default)]
            previous_filename: Option<String>,
        }
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            files: Vec<File>,
        }
        let client = self.client_for_repo(repo).await?;
        let mut out = ChangedFiles::default();
        // GitHub lists 300 files a page, up to 3000, and says in `Link` when there are more.
        for page in 1..=COMMIT_FILE_PAGES {
            let path = format!("{}/commits/{}?page={page}", repo_path(repo), commit.as_str());
            let call = Call::get(path, "get commit");
            let resp = ok_or_error(self.send(&client, &call).await?, call.what)?;
            let more = has_next(&resp.headers);
            let page: Page = decode(resp)?;
            for f in page.files {
                out.paths.push(f.filename);
                out.paths.extend(f.previous_filename);
            }
            if !more {
                return Ok(out);
            }
        }
        out.truncated = true;
        Ok(out)
    }

    async fn permission(&self, repo: &RepoName, login: &str) -> ForgeResult<PermissionLevel> {
        // Raw JSON on purpose (design §13): octocrab's typed call fails on `"write"`.
        #[derive(Deserialize)]
        struct Wire {
            permission: Option<String>,
            role_name: Option<String>,
        }
        let path = format!("{}/collaborators/{}/permission", repo_path(repo), enc(login));
        let call = Call::get(path, "read permission");
        let client = self.client_for_repo(repo).await?;
        let resp = self.send(&client, &call).await?;
        if resp.status == 404 {
            // No such account (or not visible to us): it has no rights here.
            return Ok(PermissionLevel::None);
        }
        let wire: Wire = decode(ok_or_error(resp, call.what)?)?;
        // `role_name` names custom and fine-grained roles too; a custom role we cannot rank
        // falls back to the legacy `permission` it maps onto.
        let level = wire
            .role_name
            .as_deref()
            .and_then(PermissionLevel::parse)
            .or_else(|| wire.permission.as_deref().and_then(PermissionLevel::parse));
        level.ok_or_else(|| {
            ForgeError::Decode(format!(
                "permission of {login}: neither role_name {:?} nor permission {:?} is known",
                wire.role_name, wire.permission
            ))
        })
    }

    async fn is_team_member(&self, org: &str, team_slug: &str, login: &str) -> ForgeResult<bool> {
        #[derive(Deserialize)]
        struct Membership {
            state: String,
        }
        let client = self.client_for_owner(Some(org)).await?;
        let path = format!(
            "/orgs/{}/teams/{}/memberships/{}",
            enc(org),
            enc(team_slug),
            enc(login)
        );
        let call = Call::get(path, "team membership");
        let resp = self.send(&client, &call).await?;
        if resp.status == 404 {
            return Ok(false);
        }
        let m: Membership = decode(ok_or_error(resp, call.what)?)?;
        // `pending`: invited but not joined; grants nothing yet.
        Ok(m.state == "active")
    }

    async fn user_id(&self, login: &str) -> ForgeResult<u64> {
        let client = self.client_for_owner(None).await?;
        let path = format!("/users/{}", enc(login));
        let user: WireAccount = self.fetch(&client, &Call::get(path, "get user")).await?;
        Ok(user.id)
    }

    async fn set_status(&self, repo: &RepoName, sha: &CommitSha, status: &StatusUpdate) -> ForgeResult<()> {
        let path = format!("{}/statuses/{}", repo_path(repo), sha.as_str());
        let req = json!({
            "state": status.state.as_str(),
            "context": status.context,
            "description": status.description,
            "target_url": status.target_url,
        });
        // A POST, yet repeatable: the newest status per context wins, a duplicate changes nothing.
        let call = Call::new(Method::POST, path, "set commit status")
            .json(req)
            .repeatable();
        let client = self.client_for_repo(repo).await?;
        self.perform(&client, &call).await
    }

    async fn create_comment(&self, repo: &RepoName, issue_number: u64, body: &str) -> ForgeResult<CommentId> {
        let path = format!("{}/issues/{issue_number}/comments", repo_path(repo));
        let req = json!({"body": body});
        let call = Call::new(Method::POST, path, "create comment").json(req);
        let client = self.client_for_repo(repo).await?;
        let c: WireId = self.fetch(&client, &call).await?;
        Ok(CommentId(c.id))
    }

    async fn update_comment(&self, repo: &RepoName, id: CommentId, body: &str) -> ForgeResult<()> {
        let path = format!("{}/issues/comments/{id}", repo_path(repo));
        let req = json!({"body": body});
        let call = Call::new(Method::PATCH, path, "update comment")
            .json(req)
            .repeatable();
        let client = self.client_for_repo(repo).await?;
        self.perform(&client, &call).await
    }

    async fn add_reaction(&self, repo: &RepoName, id: CommentId, reaction: Reaction) -> ForgeResult<()> {
        let path = format!("{}/issues/comments/{id}/reactions", repo_path(repo));
        let req = json!({"content": reaction.as_str()});
        // GitHub answers 200 with the existing reaction when it is already there.
        let call = Call::new(Method::POST, path, "add reaction")
            .json(req)
            .repeatable();
        let client = self.client_for_repo(repo).await?;
        self.perform(&client, &call).await
    }

    async fn list_comments(&self, repo: &RepoName, issue_number: u64) -> ForgeResult<Vec<Comment>> {
        let client = self.client_for_repo(repo).await?;
        let path = format!("{}/issues/{issue_number}/comments", repo_path(repo));
        let wire: Vec<WireComment> = self.list_all(&client, &path, "list comments").await?;
        Ok(wire
            .into_iter()
            .map(|c| Comment {
                id: CommentId(c.id),
                author: c.user.into(),
                body: c.body.unwrap_or_default(),
                html_url: c.html_url,
            })
            .collect())
    }

    async fn create_deployment(&self, repo: &RepoName, d: &NewDeployment) -> ForgeResult<DeploymentId> {
        let path = format!("{}/deployments", repo_path(repo));
        let req = json!({
            "ref": d.sha.as_str(),
            "environment": d.environment,
            "description": d.description,
            "transient_environment": d.transient,
            "production_environment": d.production,
            "payload": d.payload,
            // auger deploys through git; GitHub must not block on CI contexts or auto-merge.
            "auto_merge": false,
            "required_contexts": [],
        });
        let call = Call::new(Method::POST, path, "create deployment").json(req);
        let client = self.client_for_repo(repo).await?;
        let created: WireId = self.fetch(&client, &call).await?;
        Ok(DeploymentId(created.id))
    }

    async fn set_deployment_status(
        &self,
        repo: &RepoName,
        id: DeploymentId,
        status: &DeploymentStatusUpdate,
    ) -> ForgeResult<()> {
        let path = format!("{}/deployments/{id}/statuses", repo_path(repo));
        // The spec types the URLs and the description as strings: absent, never null.
        let mut req = json!({
            "state": status.state.as_str(),
            "auto_inactive": status.auto_inactive,
        });
        for (key, value) in [
            ("environment_url", &status.environment_url),
            ("log_url", &status.log_url),
            ("description", &status.description),
        ] {
            if let Some(v) = value {
                req[key] = json!(v);
            }
        }
        // Like commit statuses: the newest wins, so a repeat is harmless.
        let call = Call::new(Method::POST, path, "set deployment status")
            .json(req)
            .repeatable();
        let client = self.client_for_repo(repo).await?;
        self.perform(&client, &call).await
    }

    async fn list_deployments(&self, repo: &RepoName, environment: &str) -> ForgeResult<Vec<Deployment>> {
        let client = self.client_for_repo(repo).await?;
        let path = format!("{}/deployments?environment={}", repo_path(repo), enc(environment));
        let wire: Vec<WireDeployment> = self.list_all(&client, &path, "list deployments").await?;
        wire.into_iter()
            .map(|d| {
                Ok(Deployment {
                    id: DeploymentId(d.id),
                    sha: sha(&d.sha, "deployment sha")?,
                    environment: d.environment,
                    description: d.description,
                    payload: d.payload,
                    transient: d.transient_environment,
                    production: d.production_environment,
                    creator: d.creator.map(Actor::from),
                })
            })
            .collect()
    }

    async fn hook_deliveries(&self, since: chrono::DateTime<chrono::Utc>) -> ForgeResult<HookDeliveries> {
        let app = self.app_client()?;
        let mut out = HookDeliveries::default();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_DELIVERY_PAGES {
            let mut path = format!("/app/hook/deliveries?per_page={PER_PAGE}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={}", enc(c)));
            }
            let call = Call::get(path, "list webhook deliveries");
            let resp = ok_or_error(self.send(app, &call).await?, call.what)?;
            let next = next_cursor(&resp.headers);
            let page: Vec<WireHookDelivery> = decode(resp)?;
            // Newest first: once a page reaches back before `since`, older pages add nothing.
            let reached = page.last().is_none_or(|d| d.delivered_at < since);
            out.attempts.extend(
                page.into_iter()
                    .filter(|d| d.delivered_at >= since)
                    .map(HookDelivery::from),
            );
            match next {
                Some(c) if !reached => cursor = Some(c),
                _ => return Ok(out),
            }
        }
        out.truncated = true;
        Ok(out)
    }

    async fn redeliver(&self, delivery_id: u64) -> ForgeResult<()> {
        let app = self.app_client()?;
        let path = format!("/app/hook/deliveries/{delivery_id}/attempts");
        // A second redelivery only sends the same GUID again, which the inbox drops.
        let call = Call::new(Method::POST, path, "redeliver a webhook").repeatable();
        self.perform(app, &call).await
    }

    fn installations_changed(&self) {
        if let Auth::App { installations, .. } = &self.auth {
            *lock(installations) = Installations::default();
            lock(&self.git_tokens).clear();
            tracing::info!("an App installation changed: installations are looked up again");
        }
    }
}
