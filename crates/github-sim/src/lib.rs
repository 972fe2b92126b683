//! # github-sim: a stateful GitHub over real HTTP and real git
//!
//! A test double for auger: an actix-web server that answers the subset of GitHub's REST API
//! auger uses, backed by real bare git repositories, and sends signed webhooks the way GitHub
//! does. Clients (octocrab) talk to it over HTTP exactly as to `api.github.com`.
//!
//! ```no_run
//! use github_sim::{GithubSim, SimConfig};
//! let sim = GithubSim::start(SimConfig::default())?;
//! sim.create_org("acme")?;
//! sim.create_user("alice")?;
//! let repo = sim.create_repo("acme/frontend")?;          // repo.clone_url is a file:// URL
//! sim.set_permission("acme/frontend", "alice", "write")?;
//! let sha = sim.push("acme/frontend", "main", &[("README.md", "hi")], "init", "alice")?;
//! sim.push("acme/frontend", "feature", &[("a.txt", "a")], "feature", "alice")?;
//! let pr = sim.open_pr("acme/frontend", "feature", "main", "Add a", "alice")?;
//! let token = sim.create_token("alice")?;                // personal token for octocrab
//! sim.set_status("acme/frontend", &sha, "success", "ci/build")?;
//! sim.wait_deliveries();                                  // webhooks sent, in order
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! ## Driving API (plain calls, no HTTP)
//! Every call that changes state emits the webhooks GitHub would, in GitHub's order.
//! - Accounts: [`GithubSim::create_user`], [`GithubSim::create_bot`],
//!   [`GithubSim::create_org`], [`GithubSim::create_team`], [`GithubSim::set_permission`],
//!   [`GithubSim::create_token`], [`GithubSim::create_installation_token`],
//!   [`GithubSim::app_bot_login`], [`GithubSim::create_oauth_app`] (github.com's OAuth web
//!   flow: `/login/oauth/authorize` shows a page with a login field, and
//!   `/login/oauth/access_token` trades its code for a user token).
//! - Git: [`GithubSim::create_repo`], [`GithubSim::create_private_repo`],
//!   [`GithubSim::fork_repo`], [`GithubSim::push`], [`GithubSim::push_changes`],
//!   [`GithubSim::create_branch`], [`GithubSim::force_branch`], [`GithubSim::delete_branch`],
//!   [`GithubSim::create_tag`], [`GithubSim::create_annotated_tag`], [`GithubSim::delete_tag`],
//!   [`GithubSim::refuse_pushes`], [`GithubSim::resolve`], [`GithubSim::branch_sha`],
//!   [`GithubSim::repo_path`].
//! - Pull requests: [`GithubSim::open_pr`], [`GithubSim::open_pr_with`] (body, draft, fork
//!   head `owner:branch`), [`GithubSim::comment`], [`GithubSim::edit_comment`],
//!   [`GithubSim::review`], [`GithubSim::close_pr`], [`GithubSim::reopen_pr`],
//!   [`GithubSim::merge_pr`], [`GithubSim::merge_pr_with`], [`GithubSim::set_mergeable`],
//!   [`GithubSim::set_mergeable_lag`], [`GithubSim::base_modified_once`].
//! - Branch protection: [`GithubSim::protect_branch`] with a [`Protection`] (required checks,
//!   strict, approvals, enforce on admins), [`GithubSim::unprotect_branch`].
//! - CI: [`GithubSim::set_status`], [`GithubSim::set_status_with`],
//!   [`GithubSim::create_check_run`], [`GithubSim::complete_check_run`],
//!   [`GithubSim::create_workflow_run`], [`GithubSim::complete_workflow_run`].
//! - Webhooks: [`GithubSim::set_webhook`], [`GithubSim::deliveries`],
//!   [`GithubSim::deliveries_of`], [`GithubSim::redeliver`], [`GithubSim::wait_deliveries`],
//!   [`GithubSim::wait_deliveries_async`]; [`sign`] computes `X-Hub-Signature-256`. Each
//!   attempt is recorded with its status code; the App's deliveries API
//!   (`GET /app/hook/deliveries`, `POST /app/hook/deliveries/{id}/attempts`) serves them.
//! - App installations: [`GithubSim::install_app`], [`GithubSim::install_app_on`],
//!   [`GithubSim::install_app_on_enterprise`], [`GithubSim::uninstall_app`],
//!   [`GithubSim::suspend_app`], [`GithubSim::add_installation_repository`],
//!   [`GithubSim::remove_installation_repository`], [`GithubSim::installation_ids`],
//!   [`GithubSim::installation_of`].
//! - Faults: [`GithubSim::inject_fault`] (the next N matching requests) and
//!   [`GithubSim::inject_fault_rate`] (a seeded random share of them, until cleared) with
//!   [`Fault::status`], [`Fault::retry_after`], [`Fault::rate_limited`], [`Fault::delay_ms`],
//!   [`Fault::after_effect`] (the request takes effect, the client gets an error);
//!   [`GithubSim::clear_faults`], [`GithubSim::faults_served`].
//! - Rate limits (off by default): [`GithubSim::set_rate_limit`] (primary, per hour),
//!   [`GithubSim::set_secondary_limit`] (content creation, per rolling minute),
//!   [`GithubSim::clear_rate_limits`], [`GithubSim::advance_rate_limit_clock`].
//! - Inspection: [`GithubSim::response_violations`], [`GithubSim::requests`], [`GithubSim::clear_requests`], [`GithubSim::pull`],
//!   [`GithubSim::pulls`], [`GithubSim::reviews`], [`GithubSim::comments`] (with reactions),
//!   [`GithubSim::statuses`], [`GithubSim::check_runs`], [`GithubSim::workflow_runs`],
//!   [`GithubSim::deployments`] (with statuses), [`GithubSim::git_dir`].
//!
//! ## Semantics worth knowing
//! - Every state change enqueues its webhooks and returns; one worker posts them in order.
//!   Call `wait_deliveries` before asserting on what a receiver saw.
//! - The App starts with one installation (id [`SimConfig::installation_id`]) that reaches
//!   every repository of every account without an installation of its own. Webhook payloads
//!   carry the `installation` that reaches their repository; a repository no (unsuspended)
//!   installation reaches sends the App no webhooks. Installation tokens reach only their
//!   installation's repositories (404 elsewhere); a deleted installation's tokens get 401, a
//!   suspended one's 403.
//! - Authentication: `Authorization: token|Bearer <t>` with a token from `create_token`, an
//!   installation token minted via `POST /app/installations/{id}/access_tokens`, or (for `/app…`
//!   routes) an RS256 app JWT verified against [`SimConfig::app_public_key_pem`].
//! - Clients pushing over the `file://` clone URL trigger a `post-receive` hook, so their pushes
//!   produce push/create/delete and `synchronize` webhooks too (sender: the app's bot).
//! - A new branch pushed with [`GithubSim::push`] starts at the default branch's tip.
//! - Deleting a branch closes the open pull requests from or into it (`pull_request` closed).
//! - Writes need a role: refs, merges, PR edits, statuses and deployments need `write`;
//!   check runs need an installation token (403 for personal tokens, as on GitHub); private
//!   repositories answer 404 to users without a role. The app's bot has `write` everywhere.
//! - Routes: operations of GitHub's OpenAPI description only, listed in the `server` module
//!   (`src/server/mod.rs`); anything else answers 404 with GitHub's error body. POST is accepted
//!   where GitHub accepts it for PATCH.
//! - Merging into a protected branch (REST or driver) answers 405 with GitHub's reason until
//!   the required checks are green on the head (a commit status or check run of that name;
//!   both when both exist), the head contains the base tip (`strict`) and enough reviewers with
//!   write access approve; repository admins bypass unless `enforce_admins`. `mergeable_state`
//!   says which: `dirty`, `draft`, `behind`, `blocked`, `unstable` (a non-required check not
//!   green), `clean`. Pushes to protected branches are not restricted.
//! - Mergeability is computed lazily when [`GithubSim::set_mergeable_lag`] is set: reads of
//!   `GET …/pulls/{n}` answer `mergeable: null` / `unknown` for a while after the PR opens or
//!   its head or base moves, and a merge attempted meanwhile against a moved base answers 405
//!   "Base branch was modified. Review and try the merge again." once, as does a merge whose
//!   base moves under it.
//! - Request bodies are validated against GitHub's schemas (the checked-in subset in `spec/`,
//!   see [`contract`]): a `null` where only a string is allowed, a value outside an enum or a
//!   missing required field gets GitHub's 422 `Invalid request.` before anything happens.
//! - Answers are held to the same description: every JSON answer of a route is checked against
//!   the operation's response schema for its status and violations are recorded
//!   ([`GithubSim::response_violations`]); in debug builds dropping a simulator that recorded
//!   any panics, so every test of the workspace keeps the simulator honest.
//! - Rate limits, when set: every answer carries `x-ratelimit-limit/remaining/used/reset/
//!   resource` for the caller's budget (per user, installation, app JWT; `GET /rate_limit` is
//!   free and reports it); past it, 403 "API rate limit exceeded for …" until the reset. Writes
//!   (POST/PATCH/PUT/DELETE) beyond the secondary limit in a rolling minute get 403 "You have
//!   exceeded a secondary rate limit…" with `retry-after`. Without them the headers show a
//!   fixed 5000-request budget.

// GitHub's big JSON objects nest deeper than serde_json's `json!` allows by default.
#![recursion_limit = "256"]

mod actions;
pub mod contract;
mod driver;
pub use driver::RepoInfo;
mod error;
mod faults;
mod git;
mod installations;
mod keys;
mod limits;
mod protection;
mod render;
mod server;
pub use server::served_routes;
mod state;
mod webhooks;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context;

pub use actions::{CheckRunFields, MergeOptions, NewPull, NewStatus};
pub use error::ApiError;
pub use faults::Fault;
pub use git::ZERO_SHA;
pub use keys::rsa_key_pair;
pub use state::{
    CheckRun, CommitStatus, Deployment, DeploymentStatus, IssueComment, Protection, PullRequest, Reaction,
    Review, WorkflowRun,
};
pub use webhooks::{Delivery, sign};

/// How to start a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where bare repositories live; a temporary directory (removed on drop) when `None`.
    pub dir: Option<PathBuf>,
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    pub app_id: u64,
    /// The app's slug; its bot user is `<slug>[bot]`.
    pub app_slug: String,
    pub installation_id: u64,
    /// PEM public key that app JWTs (RS256) must verify against; `None` rejects all JWTs.
    pub app_public_key_pem: Option<String>,
    pub webhook_url: Option<String>,
    pub webhook_secret: String,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            dir: None,
            port: 0,
            app_id: 1,
            app_slug: "auger".into(),
            installation_id: 1,
            app_public_key_pem: None,
            webhook_url: None,
            webhook_secret: String::new(),
        }
    }
}

/// One API request as the simulator received it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: String,
    /// Login the credentials belong to (`None`: unauthenticated or an app JWT).
    pub login: Option<String>,
    /// Status the simulator answered with.
    pub status: u16,
}

/// Shared between the HTTP server, the driver and the webhook worker.
pub(crate) struct Inner {
    state: Mutex<state::State>,
    urls: render::Urls,
    hooks: Arc<webhooks::Hooks>,
    faults: Mutex<faults::Faults>,
    requests: Mutex<Vec<RecordedRequest>>,
    /// Where answers broke their operation's response schema (see `response_violations`).
    response_violations: Mutex<Vec<String>>,
    /// Modeled rate limits; off until a driver call sets them.
    limits: Mutex<limits::Limits>,
    app_key: Option<jsonwebtoken::DecodingKey>,
    git_root: PathBuf,
}

fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Poisoning only means some thread panicked mid-test; keep serving what is there.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    pub(crate) fn lock(&self) -> MutexGuard<'_, state::State> {
        relock(&self.state)
    }
}

/// A running simulator. Dropping it stops the server and the webhook worker.
pub struct GithubSim {
    inner: Arc<Inner>,
    server: actix_web::dev::ServerHandle,
    _tempdir: Option<tempfile::TempDir>,
}

impl GithubSim {
    /// Binds 127.0.0.1, starts the HTTP server on its own thread and the webhook worker.
    /// Usable from sync and async code alike.
    pub fn start(config: SimConfig) -> anyhow::Result<GithubSim> {
        contract::check_routes(&server::served_routes())?;
        let (tempdir, root) = match &config.dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                (None, dir.canonicalize()?)
            }
            None => {
                let t = tempfile::Builder::new().prefix("github-sim-").tempdir()?;
                let root = t.path().canonicalize()?;
                (Some(t), root)
            }
        };
        let app_key = match &config.app_public_key_pem {
            Some(pem) => Some(
                jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes())
                    .context("app_public_key_pem is not an RSA public key in PEM form")?,
            ),
            None => None,
        };
        let listener = std::net::TcpListener::bind(("127.0.0.1", config.port))?;
        let addr = listener.local_addr()?;
        let hooks = Arc::new(webhooks::Hooks::default());
        hooks.configure(config.webhook_url.clone(), config.webhook_secret.clone());
        hooks.set_app_id(config.app_id);
        hooks.spawn_worker()?;
        let app = state::AppInfo {
            id: config.app_id,
            slug: config.app_slug.clone(),
            installation_id: config.installation_id,
            bot_login: format!("{}[bot]", config.app_slug),
        };
        let mut st = state::State::new(app.clone());
        st.ensure_account(&app.bot_login, state::AccountKind::Bot);
        let inner = Arc::new(Inner {
            state: Mutex::new(st),
            urls: render::Urls {
                api: format!("http://{addr}"),
            },
            hooks,
            faults: Mutex::new(faults::Faults::default()),
            requests: Mutex::new(Vec::new()),
            response_violations: Mutex::new(Vec::new()),
            limits: Mutex::new(limits::Limits::default()),
            app_key,
            git_root: root.join("git"),
        });
        let server = server::start(Arc::clone(&inner), listener)?;
        Ok(GithubSim {
            inner,
            server,
            _tempdir: tempdir,
        })
    }

    /// Base URL of the API (`http://127.0.0.1:PORT`), for `Octocrab::builder().base_uri`.
    pub fn url(&self) -> &str {
        &self.inner.urls.api
    }

    /// Directory holding the bare repositories (`<dir>/<owner>/<name>.git`).
    pub fn git_dir(&self) -> &Path {
        &self.inner.git_root
    }
}

impl Drop for GithubSim {
    fn drop(&mut self) {
        // `stop` sends its command eagerly; the returned future only waits for completion,
        // which we skip so dropping inside an async runtime never blocks.
        drop(self.server.stop(false));
        // Debug builds (every test of the workspace) fail the test whose simulator answered
        // against GitHub's response schemas, so no test can lean on an answer GitHub never gives.
        // Not while already unwinding: a second panic would abort the test binary.
        if cfg!(debug_assertions) && !std::thread::panicking() {
            let violations = relock(&self.inner.response_violations);
            if !violations.is_empty() {
                panic!(
                    "github-sim answered against GitHub's response schemas:\n{}",
                    violations.join("\n")
                );
            }
        }
        self.inner.hooks.shutdown();
    }
}
