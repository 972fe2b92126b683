//! `auger serve`: wires the configuration, stores, queue, worker and HTTP routes together.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpServer, web};
use anyhow::Context;

use crate::artifact::ArtifactStore;
use crate::catchup::CatchUp;
use crate::config::{Config, GithubAuth, QueueKind};
use crate::data_dir::{self, DataDirLock};
use crate::domain::{BranchName, RepoName};
use crate::forge::{Forge, GithubForge, RetryPolicy, Unconfigured};
use crate::gitops::{GitopsRepo, GitopsTarget, GitopsTargets};
use crate::handlers::{self, Ctx, Releases};
use crate::http::login::Login;
use crate::http::session::SessionKey;
use crate::http::{self, ApiTokens, AppState};
use crate::inbox::{self, Inbox};
use crate::metrics::Metrics;
use crate::notify::Notifier;
use crate::policy::{self, LivePolicies, Origin, PolicySet};
use crate::queue::{PgOptions, PgQueue, Queue};
use crate::release::{DesiredReleases, People, Releaser, ReleaserParts, SystemClock};
use crate::reload::{self, PolicySource};
use crate::webhook::WebhookSecrets;
use crate::worker::Worker;

/// Everything `serve` checks before it binds: a refusal here is a clear message and exit 1.
pub struct Prepared {
    pub state: AppState,
    pub listen: SocketAddr,
    /// This process's claim on `server.data_dir`, held until `run` returns.
    pub lock: DataDirLock,
    pub reconcile_every: Duration,
    /// Redelivers what GitHub failed to deliver (GitHub App authentication only).
    pub catch_up: Option<CatchUp>,
    /// Where SIGHUP and config pushes reload the policies from.
    pub policy_source: Arc<PolicySource>,
}

/// Everything `serve` needs before it binds; async for the PostgreSQL queue's connection.
pub async fn prepare(config: &Config) -> anyhow::Result<Prepared> {
    let secret_list = config.webhook_secrets()?;
    let secrets = WebhookSecrets::new(secret_list.iter().map(String::as_str))
        .with_context(|| format!("{}: github.webhook_secret_env", config.file.display()))?;
    let api_tokens = match config.api_tokens()? {
        Some(list) => ApiTokens::new(&list),
        None => {
            tracing::warn!(
                "{}: api.tokens_env: environment variable {} is not set or empty: the /api/v1 routes will refuse every request",
                config.file.display(),
                config.api.tokens_env
            );
            ApiTokens::default()
        }
    };
    let flux_secrets = report_secrets(config.flux_secrets(), "POST /webhooks/flux")
        .map(|list| {
            WebhookSecrets::new(list.iter().map(String::as_str))
                .with_context(|| format!("{}: verify.flux_secret_env", config.file.display()))
        })
        .transpose()?;
    let argocd_tokens =
        report_secrets(config.argocd_tokens(), "POST /webhooks/argocd").map(|list| ApiTokens::unnamed(&list));
    let policy_source = Arc::new(PolicySource::from_config(config)?);
    let (policies, origin) = initial_policies(config, &policy_source)?;
    std::fs::create_dir_all(&config.server.data_dir).with_context(|| {
        format!(
            "cannot create server.data_dir {}",
            config.server.data_dir.display()
        )
    })?;
    // Before anything under the data dir is opened: a second server, or a release command
    // already working there, is refused rather than run beside.
    let lock = data_dir::lock(&config.server.data_dir).with_context(|| {
        format!(
            "{}: server.data_dir: one auger process at a time works over a data dir",
            config.file.display()
        )
    })?;
    // The URL before anything else is opened: a missing variable is a config error.
    let queue_url = config.queue_url()?;
    let store = Arc::new(open_store(config, true)?);
    let policies = LivePolicies::new(policies, origin);
    let github = github_client(config)?;
    let gitops = open_gitops(config, &policies)?;
    if let Some(targets) = &gitops {
        policy_source.check_routes_against(targets.clone());
    }
    let api_stats = github.as_ref().map(|g| g.stats());
    let forge = github.map(|g| Arc::new(g) as Arc<dyn Forge>);
    let queue = open_queue(config, queue_url.as_deref()).await?;
    let releases = match &gitops {
        Some(targets) => {
            // Replicas share what the release loop wants released, and take turns at it (one
            // loop over every gitops repository).
            let desired = match &queue {
                Queue::Postgres(pg) => DesiredReleases::open_shared(
                    pg.document("desired-releases"),
                    &desired_releases_file(&config.server.data_dir)?,
                )
                .await
                .with_context(|| format!("{}: server.queue", config.file.display()))?,
                Queue::Journal { .. } => local_desired(config)?,
            };
            let mut releaser = releaser(
                config,
                store.clone(),
                policies.clone(),
                targets.clone(),
                forge.clone(),
                desired,
            )?;
            if let Queue::Postgres(pg) = &queue {
                releaser = releaser.with_replica_lock(pg.lock("release"));
            }
            Releases::On(Arc::new(releaser))
        }
        None => Releases::Off,
    };
    // Only an App may read and redeliver its webhook deliveries.
    let catch_up = match (&config.github.auth, &forge) {
        (GithubAuth::App { .. }, Some(forge)) => Some(CatchUp::new(
            forge.clone(),
            queue.clone(),
            &config.server.data_dir,
        )),
        _ => None,
    };
    let forge = forge.unwrap_or_else(|| Arc::new(Unconfigured));
    let login = match (config.dashboard_secrets()?, &config.dashboard) {
        (Some(secrets), Some(d)) => {
            let key = match secrets.session_key {
                Some(k) => SessionKey::new(k),
                None => SessionKey::random().context("cannot draw a session key")?,
            };
            Some(Login::new(d, secrets.client_secret, key, &config.github.api_url)?)
        }
        _ => None,
    };
    Ok(Prepared {
        state: AppState {
            secrets,
            api_tokens,
            flux_secrets,
            argocd_tokens,
            ledger_lock: match &queue {
                Queue::Postgres(pg) => Some(pg.lock("ledger")),
                Queue::Journal { .. } => None,
            },
            queue,
            store,
            policies,
            gitops_repos: gitops.as_ref().map(|t| t.repo_names()).unwrap_or_default(),
            config_repo: config
                .policies_repo
                .as_ref()
                .map(|p| (p.repo.clone(), p.branch.clone())),
            metrics: Arc::new(Metrics::default()),
            api_stats,
            people: People::new(forge.clone()),
            forge,
            login,
            gitops_fetched: Mutex::new(None),
            dora_gauges: Default::default(),
            gitops,
            releases,
        },
        listen: config.server.listen,
        lock,
        reconcile_every: config.server.reconcile_interval,
        catch_up,
        policy_source,
    })
}

/// The embedded journal under the data dir, or the PostgreSQL queue (migrated on the way).
async fn open_queue(config: &Config, url: Option<&str>) -> anyhow::Result<Queue> {
    match (&config.server.queue, url) {
        (
            QueueKind::Postgres {
                lease, keep, ca_file, ..
            },
            Some(url),
        ) => {
            let name = PgQueue::replica_name();
            let opts = PgOptions {
                lease: *lease,
                keep: *keep,
                ca_file: ca_file.clone(),
                ..PgOptions::default()
            };
            let pg = PgQueue::open(url, &name, opts).await.with_context(|| {
                format!(
                    "{}: server.queue: cannot open the PostgreSQL queue",
                    config.file.display()
                )
            })?;
            tracing::info!(replica = %name, "work queue: PostgreSQL");
            Ok(Queue::Postgres(pg))
        }
        _ => {
            let (inbox, replay) =
                Inbox::open(config.server.data_dir.join("inbox"), inbox::Options::default()).with_context(
                    || format!("cannot open the inbox under {}", config.server.data_dir.display()),
                )?;
            if replay.pending > 0 {
                tracing::info!(
                    pending = replay.pending,
                    "replaying deliveries accepted before the restart"
                );
            }
            Ok(Queue::Journal {
                inbox,
                replay_below: replay.next_seq,
            })
        }
    }
}

/// The policies to start with: the config repository's tip when `[policies] repo` is set and
/// can be read now (else the folder, or none, until a reload succeeds), or the folder.
fn initial_policies(config: &Config, source: &PolicySource) -> anyhow::Result<(PolicySet, Origin)> {
    let Some((repo, cache)) = source.repo_cache() else {
        return Ok((load_policies(config)?, Origin::Folder));
    };
    cache.set_token(static_git_token(config).as_deref());
    match source.load() {
        Ok(loaded) => Ok((loaded.set, loaded.origin)),
        Err(e) => {
            tracing::error!(repo = %repo.repo, error = %e, "cannot load the policies from the config repository at start; trying again once serving");
            if config.paths.policies.is_dir() {
                Ok((load_policies(config)?, Origin::Folder))
            } else {
                Ok((PolicySet::from_policies([])?, Origin::Folder))
            }
        }
    }
}

/// The token git uses for https remotes when it is not asked of GitHub each time:
/// `AUGER_GIT_TOKEN`, else the GitHub token (token auth).
fn static_git_token(config: &Config) -> Option<String> {
    std::env::var("AUGER_GIT_TOKEN")
        .ok()
        .or_else(|| match &config.github.auth {
            GithubAuth::Token { env } => std::env::var(env).ok(),
            _ => None,
        })
}

/// A report route's secrets; a variable that `[verify]` names but that is unset or empty leaves
/// the route off (404) with a warning, as a missing API token list leaves the API off.
fn report_secrets(
    list: Result<Option<Vec<String>>, crate::config::ConfigError>,
    route: &str,
) -> Option<Vec<String>> {
    list.unwrap_or_else(|e| {
        tracing::warn!("{e}: {route} will answer 404");
        None
    })
}

/// Where the desired releases are kept. An older auger kept only the plans its gates held,
/// in `waiting-plans.json`, which this file takes over (the same records, read as automatic
/// releases).
fn desired_releases_file(data_dir: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    let path = data_dir.join("desired-releases.json");
    let older = data_dir.join("waiting-plans.json");
    if !path.exists() && older.exists() {
        std::fs::rename(&older, &path)
            .with_context(|| format!("cannot move {} to {}", older.display(), path.display()))?;
    }
    Ok(path)
}

/// The desired releases of one process, in its data dir.
pub fn local_desired(config: &Config) -> anyhow::Result<DesiredReleases> {
    Ok(DesiredReleases::open(desired_releases_file(
        &config.server.data_dir,
    )?)?)
}

/// The release loop over the configured stores and `desired`.
pub fn releaser(
    config: &Config,
    store: Arc<ArtifactStore>,
    policies: Arc<LivePolicies>,
    gitops: Arc<GitopsTargets>,
    forge: Option<Arc<dyn Forge>>,
    desired: DesiredReleases,
) -> anyhow::Result<Releaser> {
    Ok(Releaser::new(ReleaserParts {
        store,
        policies,
        gitops,
        templates: config.paths.templates.clone(),
        notifier: Arc::new(
            Notifier::new(forge.clone(), config.slack_webhook_url()).with_routes(config.notify_route_urls()),
        ),
        forge,
        clock: Arc::new(SystemClock),
        desired,
        // AUGER_GIT_TOKEN is the operator's fixed choice (see `open_gitops_cache`).
        git_token_from_forge: std::env::var_os("AUGER_GIT_TOKEN").is_none(),
        reconcile_every: config.server.reconcile_interval,
    }))
}

/// The GitHub client, with octocrab's blind retries off and our own retry policy (design §13).
/// Without credentials auger still ingests CI signals, but cannot ask GitHub for facts.
pub fn github_client(config: &Config) -> anyhow::Result<Option<GithubForge>> {
    let token = match &config.github.auth {
        GithubAuth::None => {
            tracing::warn!(
                "no GitHub credentials configured (github.token_env or github.app_id): GitHub API calls are off"
            );
            return Ok(None);
        }
        GithubAuth::Token { env } => Some(
            std::env::var(env)
                .ok()
                .filter(|t| !t.trim().is_empty())
                .with_context(|| {
                    format!(
                        "{}: github.token_env: environment variable {env} is not set or empty",
                        config.file.display()
                    )
                })?,
        ),
        GithubAuth::App { .. } => None,
    };
    if token.as_deref().is_some_and(|t| t.starts_with("ghs_")) && config.github.bot_login.is_none() {
        tracing::warn!(
            "github.token_env holds an installation token, which cannot ask GitHub who it is: \
             set github.bot_login, or commands and preview comments cannot tell auger's own comments"
        );
    }
    let forge = GithubForge::from_config(&config.github, token, RetryPolicy::default())
        .with_context(|| format!("{}: [github]", config.file.display()))?;
    Ok(Some(forge))
}

/// The gitops targets, fetched once. An unreachable remote does not stop the server: the
/// history routes fetch again on request and say what failed.
fn open_gitops(config: &Config, policies: &Arc<LivePolicies>) -> anyhow::Result<Option<Arc<GitopsTargets>>> {
    if config.gitops.is_none() {
        return Ok(None);
    }
    let targets = open_gitops_targets(config, policies)?;
    if let Err(e) = targets.fetch_all() {
        tracing::warn!(error = %e, "gitops repository unreachable; history routes will retry");
    }
    Ok(Some(Arc::new(targets)))
}

/// Every gitops repository auger.toml names, each at its branch, plus the (repository,
/// branch) pairs the policies in force route envs to: one cache each (design §16). The
/// targets follow `policies` when they are reloaded.
pub fn open_gitops_targets(config: &Config, policies: &Arc<LivePolicies>) -> anyhow::Result<GitopsTargets> {
    let g = config.require_gitops()?;
    let default = GitopsTarget {
        repo: g.repo.clone(),
        cache: open_gitops_cache(config, &g.repo, &g.branch)?,
    };
    let mut targets = GitopsTargets::single(default);
    for (repo, r) in &g.repos {
        let cache = open_gitops_cache(config, repo, &r.branch)?;
        targets.add(GitopsTarget {
            repo: repo.clone(),
            cache,
        });
    }
    targets.route_policies(&policies.current(), |repo, branch| {
        let (_, own) = g.lookup(repo).with_context(|| {
            format!(
                "gitops repository {repo} is not in {} (policy check refuses this first)",
                config.file.display()
            )
        })?;
        open_gitops_cache(config, repo, branch.unwrap_or(own))
    })?;
    targets.follow(policies.clone());
    Ok(targets)
}

/// The cache handle of one gitops (repository, branch), with the credentials git needs for an
/// https remote: `AUGER_GIT_TOKEN` when set, else the GitHub token (token auth). With App auth
/// the release loop sets a fresh installation token before each operation
/// (`Forge::git_token`, asked per repository).
fn open_gitops_cache(config: &Config, repo: &RepoName, branch: &BranchName) -> anyhow::Result<GitopsRepo> {
    let g = config.require_gitops()?;
    let (url, _) = g
        .lookup(repo)
        .with_context(|| format!("{}: no gitops repository {repo}", config.file.display()))?;
    let token = static_git_token(config);
    let dir = config.gitops_cache_dir_for(repo, branch);
    let cache = GitopsRepo::open(&dir, url, branch.clone()).with_context(|| {
        if crate::gitops::same_repo(repo, &g.repo) {
            format!("{}: [gitops]", config.file.display())
        } else {
            format!("{}: [gitops.repos.\"{repo}\"]", config.file.display())
        }
    })?;
    Ok(cache.with_token(token.as_deref()))
}

/// The policy folder the config names, checked against it (templates, gitops repositories).
pub fn check_policies(config: &Config) -> Result<PolicySet, policy::PolicyErrors> {
    policy::load_dir_with(
        &config.paths.policies,
        &config.paths.templates,
        Some(&config.gitops_names()),
    )
}

/// The policy folder the config names, or every error in it as one message.
pub fn load_policies(config: &Config) -> anyhow::Result<PolicySet> {
    check_policies(config).map_err(|e| {
        let (report, _) = policy::policy_check_report(&Err(e));
        anyhow::anyhow!("invalid policies:\n{}", report.trim_end())
    })
}

/// The ledger the config names, synced with its remote when one is set. `create` makes an
/// empty ledger where none exists (writers); readers get an error naming the path instead.
/// An unreachable remote is a warning: work goes on with the local copy.
pub fn open_store(config: &Config, create: bool) -> anyhow::Result<ArtifactStore> {
    let path = &config.artifacts.path;
    let store = if create {
        ArtifactStore::open_or_init(path)?
    } else {
        ArtifactStore::open(path)?
    };
    Ok(match &config.artifacts.remote {
        None => store,
        Some(url) => {
            let (store, report) = store.with_remote(url)?;
            if let Some(e) = report.error {
                tracing::warn!(remote = %url, error = %e, "artifact remote unreachable; working on the local copy");
            }
            store
        }
    })
}

/// What a stop request (SIGTERM, SIGINT, SIGQUIT) may take before the process is gone.
const EXIT_WITHIN: Duration = Duration::from_secs(9);
/// The orderly part of a stop ends here; the rest of [`EXIT_WITHIN`] is the margin for
/// runtimes and threads to wind down before the hard exit.
const STOP_WITHIN: Duration = Duration::from_secs(7);
/// In-flight HTTP requests may finish this long after a stop request (a webhook is answered
/// in milliseconds; this is for slow clients mid-upload).
const HTTP_DRAIN_SECS: u64 = 3;

/// Bind, print the address, serve until SIGTERM/SIGINT/SIGQUIT, then stop within
/// [`EXIT_WITHIN`] whatever the worker is doing: the worker drops the delivery in hand at
/// once (not marked done, so it is replayed on the next start), HTTP stops accepting and
/// drains, and the inbox is closed once the worker has stopped. Work that cannot be
/// interrupted (a git subprocess) is abandoned, not waited for: its entry is replayed too.
pub async fn run(prepared: Prepared, announce: impl FnOnce(SocketAddr)) -> anyhow::Result<()> {
    let Prepared {
        state,
        listen,
        lock: _lock,
        reconcile_every,
        catch_up,
        policy_source,
    } = prepared;
    let mut ctx = Ctx::new(
        state.store.clone(),
        state.policies.clone(),
        state.metrics.clone(),
        state.forge.clone(),
        state.releases.clone(),
    );
    if policy_source.repo_cache().is_some() {
        ctx = ctx.with_policy_source(policy_source.clone());
    }
    if let Some(lock) = &state.ledger_lock {
        ctx = ctx.with_ledger_lock(lock.clone());
    }
    let reloads = AbortOnDrop(actix_web::rt::spawn(reload_on_sighup(
        policy_source,
        state.policies.clone(),
        state.forge.clone(),
        state.metrics.clone(),
        reconcile_every,
    )?));
    let worker = Worker {
        queue: state.queue.clone(),
        ctx: Arc::new(ctx),
        gitops_repos: state.gitops_repos.clone(),
        config_repo: state.config_repo.clone(),
        reconcile_every,
    };
    let inbox = state.queue.clone();
    // Listen before serving, so a signal sent right after the address is printed is ours and
    // not the default action (which would exit without closing the inbox).
    let mut signals = StopSignals::new()?;
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut worker_stopped = spawn_background(worker, stopping)?;
    let state = web::Data::new(state);
    let server = HttpServer::new(move || App::new().app_data(state.clone()).configure(http::routes))
        .disable_signals()
        .shutdown_timeout(HTTP_DRAIN_SECS)
        .bind(listen)
        .with_context(|| format!("cannot listen on {listen}"))?;
    let bound = server.addrs().first().copied().unwrap_or(listen);
    announce(bound);
    let server = server.run();
    let http = server.handle();
    let mut serving = actix_web::rt::spawn(server);
    // Once listening: what it asks GitHub to redeliver comes here.
    let catch_up = catch_up.map(|c| AbortOnDrop(actix_web::rt::spawn(c.run(reconcile_every))));
    let _pruning = match &inbox {
        Queue::Postgres(pg) => Some(AbortOnDrop(actix_web::rt::spawn(pg.clone().keep_pruned()))),
        Queue::Journal { .. } => None,
    };
    let signal = tokio::select! {
        served = &mut serving => {
            drop(catch_up);
            // Without a stop request only a failure ends serving; the rest stops as on one.
            exit_no_later_than(EXIT_WITHIN, 1);
            let deadline = tokio::time::Instant::now() + STOP_WITHIN;
            let _ = stop.send(true);
            let worker = tokio::time::timeout_at(deadline, &mut worker_stopped).await;
            close_inbox(&inbox, worker.is_ok(), deadline).await?;
            served.context("HTTP server task failed")?.context("HTTP server failed")?;
            return Ok(());
        }
        signal = signals.recv() => signal,
    };
    exit_no_later_than(EXIT_WITHIN, 0);
    drop(catch_up);
    drop(reloads);
    let deadline = tokio::time::Instant::now() + STOP_WITHIN;
    tracing::info!(signal, "shutting down: stopping the worker and the HTTP server");
    let _ = stop.send(true);
    // Both stop at once: the HTTP drain does not wait for the worker, nor the other way round.
    let (_, worker) = tokio::join!(
        tokio::time::timeout_at(deadline, async {
            http.stop(true).await;
            let _ = serving.await;
        }),
        tokio::time::timeout_at(deadline, &mut worker_stopped),
    );
    close_inbox(&inbox, worker.is_ok(), deadline).await
}

/// Reloads the policies on every SIGHUP; with a config repository also every `poll` (a push
/// webhook that never came, or a push another replica took, still takes effect), and once at
/// start when the repository could not be read then. A reload that fails keeps the set in force.
fn reload_on_sighup(
    source: Arc<PolicySource>,
    live: Arc<LivePolicies>,
    forge: Arc<dyn crate::forge::Forge>,
    metrics: Arc<Metrics>,
    poll: Duration,
) -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    let from_repo = source.repo_cache().is_some();
    Ok(async move {
        if from_repo && live.origin() == Origin::Folder {
            reload::reload_now(source.clone(), live.clone(), forge.as_ref(), &metrics, "start").await;
        }
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + poll, poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let trigger = tokio::select! {
                got = hup.recv() => match got {
                    Some(()) => "sighup",
                    None => return,
                },
                _ = tick.tick(), if from_repo => "poll",
            };
            reload::reload_now(source.clone(), live.clone(), forge.as_ref(), &metrics, trigger).await;
        }
    })
}

/// A background task that ends with its owner (the catch-up ends when serving does).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The last step of a stop, once nothing appends any more: close the inbox, but only under a
/// stopped worker. Closing it under a running one could let the worker act after "closed";
/// leaving it open is a crash, which the inbox recovers from on the next start.
async fn close_inbox(
    inbox: &Queue,
    worker_stopped: bool,
    deadline: tokio::time::Instant,
) -> anyhow::Result<()> {
    if !worker_stopped {
        tracing::warn!("the worker did not stop in time; its delivery is replayed on the next start");
        return Ok(());
    }
    tracing::info!("shutting down: closing the inbox");
    match tokio::time::timeout_at(deadline, inbox.close()).await {
        Ok(closed) => closed.context("closing the inbox"),
        Err(_) => {
            tracing::warn!("the inbox did not close in time; unfinished work is replayed on the next start");
            Ok(())
        }
    }
}

/// The signals that stop `auger serve`.
struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    quit: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn new() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let listen =
            |kind: SignalKind, name: &str| signal(kind).with_context(|| format!("cannot listen for {name}"));
        Ok(Self {
            term: listen(SignalKind::terminate(), "SIGTERM")?,
            int: listen(SignalKind::interrupt(), "SIGINT")?,
            quit: listen(SignalKind::quit(), "SIGQUIT")?,
        })
    }

    /// The name of the first stop signal received.
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
            _ = self.quit.recv() => "SIGQUIT",
        }
    }
}

/// The hard bound on a stop: threads that cannot be interrupted (a blocking git call, a
/// runtime waiting for one) must not keep the process alive. Unfinished work is replayed on
/// the next start, as after a crash. `code`: the exit status the orderly path would give.
fn exit_no_later_than(bound: Duration, code: i32) {
    let spawned = std::thread::Builder::new()
        .name("auger-exit".into())
        .spawn(move || {
            std::thread::sleep(bound);
            tracing::warn!(
                "still stopping after {}s: exiting now; unfinished work is replayed on the next start",
                bound.as_secs()
            );
            std::process::exit(code);
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the exit timer; the stop is not time-bounded");
    }
}

/// The worker and the release loop's timer on their own thread and runtime, at a lower CPU
/// priority than the HTTP workers. Resolves when the worker has stopped: when the inbox
/// closes, or at once when `stopping` turns true (the delivery in hand is dropped).
fn spawn_background(
    worker: Worker,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<tokio::sync::oneshot::Receiver<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("auger-worker-blocking")
        .build()
        .context("cannot start the worker's runtime")?;
    let (stopped, on_stop) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("auger-worker".into())
        .spawn(move || {
            crate::priority::background();
            runtime.block_on(async move {
                let ctx = worker.ctx.clone();
                let every = worker.reconcile_every;
                let timer = tokio::spawn(async move { handlers::timer::run(&ctx, every).await });
                worker
                    .run(async move {
                        // A dropped sender means the server is gone: stop as well.
                        let _ = stopping.wait_for(|&stop| stop).await;
                    })
                    .await;
                timer.abort();
            });
            let _ = stopped.send(());
            // Blocking tasks still running (git subprocesses) are left to finish or to die with
            // the process; waiting for them here would hold nothing but this thread.
            runtime.shutdown_background();
        })
        .context("cannot start the worker thread")?;
    Ok(on_stop)
}

/// `auger serve --config FILE`.
pub fn serve(config_file: &Path) -> anyhow::Result<()> {
    let config = Config::load(config_file)?;
    // Inside the runtime: the GitHub client spawns its connection workers on it.
    actix_web::rt::System::new().block_on(async {
        let prepared = prepare(&config).await?;
        run(prepared, |addr| println!("auger listening on http://{addr}")).await
    })
}
