//! The `auger` command line (design §12). Exit status: 0 done, 1 refused or failed (reason on
//! stderr), 2 usage error (clap's own).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use auger::artifact::{Artifact, ArtifactId, ArtifactStore, ListFilter, RecordOutcome, Source};
use auger::config::Config;
use auger::domain::{AppName, BranchName, CommitSha, EnvName, RepoName, TagName};
use auger::policy::VarName;

#[derive(Parser)]
#[command(
    name = "auger",
    version,
    about = "A git-native GitOps release manager that runs as a GitHub bot"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct ConfigArg {
    /// The configuration file; relative paths in it are read from its folder.
    #[arg(long, default_value = "auger.toml")]
    config: PathBuf,
}

#[derive(Args, Clone)]
struct ServerArg {
    /// Call a running auger's API instead of the local stores (token from AUGER_TOKEN).
    #[arg(long)]
    server: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the bot: webhooks, workers, API and dashboard.
    Serve {
        #[command(flatten)]
        config: ConfigArg,
        /// Log as JSON lines (for log shippers) instead of text.
        #[arg(long)]
        log_json: bool,
    },
    /// Start a GitHub simulator and the bot on loopback and play the whole release story.
    Demo {
        /// Keep everything the demo makes under this folder (default: a temporary one).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Keep serving the dashboard after the story, until Ctrl-C.
        #[arg(long)]
        serve: bool,
    },
    /// Policy files.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Print the files a release would write (edit mode: the values it would set).
    Render {
        #[arg(long)]
        app: AppName,
        #[arg(long)]
        env: EnvName,
        #[arg(long)]
        artifact: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Artifacts in the ledger.
    #[command(subcommand)]
    Artifact(ArtifactCommand),
    /// Releases to environments.
    #[command(subcommand)]
    Release(ReleaseCommand),
    /// Propose auger.toml and policies that edit an existing gitops repository in place.
    Init(InitArgs),
    /// Release an earlier artifact of (env, app) again.
    Rollback {
        #[arg(long)]
        app: AppName,
        #[arg(long)]
        env: EnvName,
        /// The artifact to go back to (default: the release before the current one).
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        server: ServerArg,
    },
}

#[derive(Args)]
struct InitArgs {
    /// The gitops repository to read: a folder (a checkout) or a git URL to clone.
    #[arg(long, value_name = "DIR_OR_URL")]
    gitops: String,
    /// Where to write auger.toml, policies/ and templates/ (never over existing files).
    #[arg(long, default_value = ".")]
    out: PathBuf,
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Validate policies and templates; exit 1 listing every error.
    Check(ConfigArg),
}

#[derive(Subcommand)]
enum ArtifactCommand {
    /// Record an artifact (or add facts to an existing one).
    Add(AddArgs),
    /// Show one artifact by id (`app@sha-prefix`) or commit sha (7–40 hex).
    Show {
        id: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Reject an artifact (by id, or a commit sha of 7–40 hex): it never deploys
    /// automatically; `/deploy <env> <sha> --force` still releases it.
    Reject {
        id: String,
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        server: ServerArg,
    },
    /// List an app's artifacts, newest first.
    List {
        #[arg(long)]
        app: AppName,
        #[arg(long)]
        branch: Option<BranchName>,
        #[arg(long)]
        tag: Option<TagName>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Args)]
struct AddArgs {
    #[arg(long)]
    app: AppName,
    #[arg(long)]
    repo: RepoName,
    #[arg(long)]
    sha: CommitSha,
    #[arg(long)]
    branch: Vec<BranchName>,
    #[arg(long)]
    tag: Vec<TagName>,
    #[arg(long = "pr")]
    pull_requests: Vec<u64>,
    /// Template variable, e.g. `--var image=ghcr.io/acme/web@sha256:…`.
    #[arg(long = "var", value_parser = parse_var)]
    vars: Vec<(String, String)>,
    #[arg(long)]
    author: Option<String>,
    #[arg(long)]
    message: Option<String>,
    #[arg(long)]
    url: Option<String>,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    config: ConfigArg,
    #[command(flatten)]
    server: ServerArg,
}

#[derive(Subcommand)]
enum ReleaseCommand {
    /// Release an artifact to an environment through its merge mode.
    Make {
        #[arg(long)]
        app: AppName,
        #[arg(long)]
        env: EnvName,
        #[arg(long)]
        artifact: String,
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Wait until a release is verified (exit 0) or failed / timed out (exit 1). Without
    /// --artifact: the release (env, app) runs now.
    Wait {
        #[arg(long)]
        app: AppName,
        #[arg(long)]
        env: EnvName,
        #[arg(long)]
        artifact: Option<String>,
        /// Give up (exit 1) after this long.
        #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Release history, read back from the gitops repository.
    List {
        #[arg(long)]
        env: Option<EnvName>,
        #[arg(long)]
        app: Option<AppName>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))?;
    // The rule policies' `[vars]` follow, so templates can name every var.
    VarName::new(k).map_err(|e| e.to_string())?;
    Ok((k.to_owned(), v.to_owned()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The server logs what it does; one-shot commands only warn.
    let (default_level, json) = match &cli.command {
        Command::Serve { log_json, .. } => ("info", *log_json),
        _ => ("warn", false),
    };
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default_level.into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("auger: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// `auger policy check`: every error and warning with file and key; exit 1 on any error.
fn policy_check(config: &ConfigArg) -> anyhow::Result<()> {
    let cfg = Config::load(&config.config)?;
    let result = auger::server::check_policies(&cfg);
    let (report, code) = auger::policy::policy_check_report(&result);
    if code == 0 {
        print!("{report}");
        Ok(())
    } else {
        eprint!("{report}");
        bail!("policy check failed")
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Artifact(ArtifactCommand::Add(args)) => artifact_add(args),
        Command::Artifact(ArtifactCommand::Show { id, json, config }) => artifact_show(&id, json, &config),
        Command::Artifact(ArtifactCommand::Reject {
            id,
            reason,
            config,
            server,
        }) => artifact_reject(&id, &reason, &config, server.server.as_deref()),
        Command::Artifact(ArtifactCommand::List {
            app,
            branch,
            tag,
            limit,
            json,
            config,
        }) => artifact_list(&app, branch, tag, limit, json, &config),
        Command::Serve { config, .. } => auger::server::serve(&config.config),
        Command::Demo { dir, serve } => auger::demo::run(dir, serve),
        Command::Policy(PolicyCommand::Check(config)) => policy_check(&config),
        Command::Init(args) => init(&args),
        Command::Render {
            app,
            env,
            artifact,
            config,
        } => render(&app, &env, &artifact, &config),
        Command::Release(ReleaseCommand::Make {
            app,
            env,
            artifact,
            config,
            server,
        }) => match &server.server {
            Some(url) => release_make_remote(url, &app, &env, &artifact),
            None => release_make(app, env, &artifact, &config),
        },
        Command::Release(ReleaseCommand::Wait {
            app,
            env,
            artifact,
            timeout,
            config,
            server,
        }) => release_wait(
            &app,
            &env,
            artifact.as_deref(),
            timeout,
            &config,
            server.server.as_deref(),
        ),
        Command::Release(ReleaseCommand::List {
            env,
            app,
            json,
            config,
        }) => release_list(env, app, json, &config),
        Command::Rollback {
            app,
            env,
            to,
            config,
            server,
        } => match &server.server {
            Some(url) => rollback_remote(url, &app, &env, to.as_deref()),
            None => rollback(app, env, to.as_deref(), &config),
        },
    }
}

/// `auger init`: the proposal, printed, then written. The gitops repository's GitHub name,
/// URL and branch come from its checkout (`origin`, `HEAD`) or the URL it was cloned from.
fn init(args: &InitArgs) -> anyhow::Result<()> {
    let source =
        auger::init::Source::locate(&args.gitops).with_context(|| format!("--gitops {}", args.gitops))?;
    let placeholder = RepoName::new("change-me/gitops").context("placeholder repository name")?;
    let mut proposal = auger::init::propose(
        &source.dir,
        source.repo.as_ref().unwrap_or(&placeholder),
        &source.url,
        &source.branch,
    )?;
    if source.repo.is_none() {
        proposal.unmapped.push(
            "auger.toml: the gitops repository's GitHub name is not known (no github.com origin): set [gitops] repo and url".into(),
        );
    }
    print!("{}", auger::init::report(&proposal));
    for path in auger::init::write(&proposal, &args.out)? {
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn open_store(config: &ConfigArg, create: bool) -> anyhow::Result<ArtifactStore> {
    auger::server::open_store(&Config::load(&config.config)?, create)
}

fn artifact_add(args: AddArgs) -> anyhow::Result<()> {
    if let Some(server) = &args.server.server {
        return artifact_add_remote(server, &args);
    }
    let mut a = Artifact::new(
        args.app,
        args.repo,
        args.sha,
        Source {
            kind: "cli".into(),
            name: whoami(),
            target_url: None,
        },
    );
    a.branches = args.branch;
    a.tags = args.tag;
    a.pull_requests = args.pull_requests;
    a.vars = args.vars.into_iter().collect();
    auger::artifact::check_vars(&a.vars)?;
    a.author = args.author;
    a.message = args.message;
    a.url = args.url;
    let store = open_store(&args.config, true)?;
    let outcome = store.record(&a).context("recording the artifact")?;
    let verb = match &outcome {
        RecordOutcome::Created(_) => "recorded",
        RecordOutcome::Updated(_) => "updated",
        RecordOutcome::Unchanged(_) => "unchanged",
    };
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "outcome": verb, "artifact": outcome.artifact() })
        );
    } else {
        println!("{verb} {}", outcome.artifact().label());
    }
    Ok(())
}

/// `auger release make`: the same path as the API and the bot, in this process: render,
/// write, and open/merge the pull request per the env's merge mode.
fn release_make(app: AppName, env: EnvName, artifact: &str, config: &ConfigArg) -> anyhow::Result<()> {
    use auger::release::{Plan, ReleaseOutcome};
    let (releaser, store, _lock) = local_releaser(config)?;
    let id = resolve_artifact(&store, &app, artifact)?;
    let plan = Plan {
        env: env.clone(),
        app: app.clone(),
        artifact: id,
        trigger: auger::gitops::Trigger::Api(format!("cli:{}", whoami())),
        reason: "auger release make".into(),
        reply: None,
        overrides: Vec::new(),
    };
    let outcome =
        actix_web::rt::System::new().block_on(async { anyhow::Ok(releaser.await?.release(plan).await?) })?;
    match outcome {
        ReleaseOutcome::Released { commit, pull: None } => {
            println!("released {app} to {env}: gitops commit {commit}")
        }
        ReleaseOutcome::Released {
            commit,
            pull: Some(n),
        } => {
            println!("released {app} to {env}: pull request #{n} merged as {commit}")
        }
        ReleaseOutcome::AlreadyReleased => println!("already released: {env}/{app} holds this artifact"),
        ReleaseOutcome::AwaitingApproval {
            pull,
            url,
            tally,
            required,
        } => println!(
            "pull request #{pull} waits for approval ({}/{required}): {url}",
            tally.approved_by.len()
        ),
        ReleaseOutcome::Held { reason } => println!("held: {reason}"),
        ReleaseOutcome::Retrying { reason } => anyhow::bail!(
            "not released yet ({reason}); the release stays desired and `auger serve` keeps trying"
        ),
    }
    Ok(())
}

/// `auger rollback`: the release loop's rollback, in this process.
fn rollback(app: AppName, env: EnvName, to: Option<&str>, config: &ConfigArg) -> anyhow::Result<()> {
    let (releaser, store, _lock) = local_releaser(config)?;
    let to = to.map(|t| resolve_artifact(&store, &app, t)).transpose()?;
    let by = format!("cli:{}", whoami());
    let (target, outcome) = actix_web::rt::System::new().block_on(async {
        releaser
            .await?
            .rollback(&env, &app, to.as_ref(), &by, None)
            .await
            .map_err(anyhow::Error::from)
    })?;
    match outcome {
        auger::release::ReleaseOutcome::AwaitingApproval { url, .. } => {
            println!("rollback of {app} in {env} to {target} waits for approval: {url}")
        }
        auger::release::ReleaseOutcome::Retrying { reason } => anyhow::bail!(
            "rollback of {app} in {env} to {target} not done yet ({reason}); it stays desired and `auger serve` keeps trying"
        ),
        _ => println!("rolled back {app} in {env} to {target}"),
    }
    println!("{env}/{app} is on hold: automatic deploys stop until /resume {env}");
    Ok(())
}

/// The release loop over the configured stores, for CLI commands that act in-process. The
/// releaser itself is built inside the async runtime (the GitHub client needs one). The data
/// dir's lock comes along and must be kept until the command is done: a running server (or
/// another such command) is refused, not run beside.
#[allow(clippy::type_complexity)]
fn local_releaser(
    config: &ConfigArg,
) -> anyhow::Result<(
    impl std::future::Future<Output = anyhow::Result<auger::release::Releaser>>,
    std::sync::Arc<ArtifactStore>,
    auger::data_dir::DataDirLock,
)> {
    let config = Config::load(&config.config)?;
    let lock = auger::data_dir::lock(&config.server.data_dir).map_err(|e| match e {
        auger::data_dir::LockError::InUse { .. } => anyhow::anyhow!(
            "{e}: this command would run a second release loop beside it; pass --server URL \
             (the running server's address, token in AUGER_TOKEN) to go through it instead"
        ),
        other => other.into(),
    })?;
    let store = std::sync::Arc::new(auger::server::open_store(&config, false)?);
    let policies = auger::policy::LivePolicies::fixed(auger::server::load_policies(&config)?);
    let gitops = std::sync::Arc::new(auger::server::open_gitops_targets(&config, &policies)?);
    let s2 = store.clone();
    let fut = async move {
        let forge = auger::server::github_client(&config)?
            .map(|g| std::sync::Arc::new(g) as std::sync::Arc<dyn auger::forge::Forge>);
        let desired = auger::server::local_desired(&config)?;
        auger::server::releaser(&config, s2, policies, gitops, forge, desired)
    };
    Ok((fut, store, lock))
}

/// `auger rollback --server URL`: queued by a running auger.
fn rollback_remote(server: &str, app: &AppName, env: &EnvName, to: Option<&str>) -> anyhow::Result<()> {
    post_to_server(
        server,
        "/api/v1/rollbacks",
        &serde_json::json!({ "app": app, "env": env, "to": to }),
    )?;
    println!("queued: rollback of {app} in {env}");
    Ok(())
}

/// POSTs `body` to a running auger's API with the token from `AUGER_TOKEN`; its JSON answer,
/// or the error it gave.
fn post_to_server(server: &str, path: &str, body: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
    let token = std::env::var("AUGER_TOKEN").context("AUGER_TOKEN must hold an API token for --server")?;
    let url = format!("{}{path}", server.trim_end_matches('/'));
    let resp = reqwest::blocking::Client::new()
        .post(&url)
        .bearer_auth(token.trim())
        .json(body)
        .send()
        .with_context(|| format!("cannot reach {url}"))?;
    let status = resp.status();
    let json: serde_json::Value = resp.json().unwrap_or(serde_json::Value::Null);
    if !status.is_success() {
        bail!(
            "{url} answered {status}: {}",
            json["error"].as_str().unwrap_or("no reason given")
        );
    }
    Ok(json)
}

/// An artifact id, or a full or short source sha of `app`.
fn resolve_artifact(
    store: &ArtifactStore,
    app: &AppName,
    given: &str,
) -> anyhow::Result<auger::artifact::ArtifactId> {
    let found = match given.parse::<auger::artifact::ArtifactId>() {
        Ok(id) => store.get_by_id(&id)?,
        Err(_) => {
            let mut matches: Vec<Artifact> = store
                .find_by_sha_prefix(given)?
                .into_iter()
                .filter(|a| &a.app == app)
                .collect();
            if matches.len() > 1 {
                bail!(
                    "--artifact {given}: ambiguous, it matches {} artifacts of {app}",
                    matches.len()
                );
            }
            matches.pop()
        }
    };
    match found {
        Some(a) if &a.app == app => Ok(a.id),
        Some(a) => bail!("--artifact {given}: {} is not an artifact of {app}", a.id),
        None => bail!("--artifact {given}: no such artifact of {app} in the ledger"),
    }
}

/// `auger release make --server URL`: queued by a running auger (token from `AUGER_TOKEN`).
fn release_make_remote(server: &str, app: &AppName, env: &EnvName, artifact: &str) -> anyhow::Result<()> {
    let body = serde_json::json!({ "app": app, "env": env, "artifact": artifact });
    let json = post_to_server(server, "/api/v1/releases", &body)?;
    println!(
        "queued: {} to {env}",
        json["artifact"].as_str().unwrap_or(artifact)
    );
    Ok(())
}

/// `auger release wait`: polls the ledger (or a running auger's API) until the release is
/// settled. A release that another one replaces before it settles is a failure to wait for.
fn release_wait(
    app: &AppName,
    env: &EnvName,
    artifact: Option<&str>,
    timeout: std::time::Duration,
    config: &ConfigArg,
    server: Option<&str>,
) -> anyhow::Result<()> {
    use auger::verify::current::CurrentRelease;
    let read: Box<dyn Fn() -> anyhow::Result<Option<CurrentRelease>>> = match server {
        Some(url) => {
            let url = format!(
                "{}/api/v1/releases/current?env={env}&app={app}",
                url.trim_end_matches('/')
            );
            Box::new(move || current_from_server(&url))
        }
        None => {
            let cfg = Config::load(&config.config)?;
            let policies = auger::policy::load_dir(&cfg.paths.policies, &cfg.paths.templates)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let verifies = policies
                .get(app)
                .and_then(|p| p.env(env))
                .with_context(|| format!("no environment {env} for app {app}"))?
                .verify
                .is_some();
            let store = auger::server::open_store(&cfg, false)?;
            let (env, app) = (env.clone(), app.clone());
            Box::new(move || Ok(auger::verify::current::current(&store, &env, &app, verifies)?))
        }
    };
    let wanted = match artifact {
        None => None,
        Some(given) if given.contains('@') => Some(given.to_owned()),
        Some(sha) => Some(format!(
            "{app}@{}",
            &sha[..sha.len().min(auger::artifact::ID_SHA_LEN)]
        )),
    };
    let started = std::time::Instant::now();
    let mut said = String::new();
    loop {
        let current = read()?;
        if let Some(c) = &current {
            let ours = wanted.as_ref().is_none_or(|w| c.artifact.to_string() == *w);
            let line = format!("{} in {env}: {}", c.artifact, c.state);
            if ours && line != said {
                eprintln!("{line}");
                said = line;
            }
            if ours && c.is_settled() {
                if c.is_good() {
                    println!("{} is {} in {env}", c.artifact, c.state);
                    return Ok(());
                }
                bail!(
                    "{} {} in {env}{}",
                    c.artifact,
                    c.state,
                    c.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
                );
            }
        }
        if started.elapsed() >= timeout {
            let state = current
                .map(|c| format!("{} is {}", c.artifact, c.state))
                .unwrap_or_default();
            bail!("gave up after {}: {state}", humantime::format_duration(timeout));
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

fn current_from_server(url: &str) -> anyhow::Result<Option<auger::verify::current::CurrentRelease>> {
    let token = std::env::var("AUGER_TOKEN").context("AUGER_TOKEN must hold an API token for --server")?;
    let resp = reqwest::blocking::Client::new()
        .get(url)
        .bearer_auth(token.trim())
        .send()
        .with_context(|| format!("cannot reach {url}"))?;
    let status = resp.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !status.is_success() {
        let json: serde_json::Value = resp.json().unwrap_or(serde_json::Value::Null);
        bail!(
            "{url} answered {status}: {}",
            json["error"].as_str().unwrap_or("no reason given")
        );
    }
    Ok(Some(resp.json().with_context(|| {
        format!("{url} answered something that is not a release")
    })?))
}

/// `auger artifact add --server URL`: the same record through a running auger's API, the way
/// CI pushes artifacts (token from `AUGER_TOKEN`).
fn artifact_add_remote(server: &str, args: &AddArgs) -> anyhow::Result<()> {
    let body = serde_json::json!({
        "app": args.app,
        "repo": args.repo,
        "sha": args.sha,
        "branches": args.branch,
        "tags": args.tag,
        "pull_requests": args.pull_requests,
        "vars": args.vars.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
        "author": args.author,
        "message": args.message,
        "url": args.url,
    });
    let json = post_to_server(server, "/api/v1/artifacts", &body)?;
    if args.json {
        println!("{json}");
    } else {
        println!(
            "{} {}",
            json["outcome"].as_str().unwrap_or("recorded"),
            json["artifact"]["id"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

fn artifact_show(id: &str, json: bool, config: &ConfigArg) -> anyhow::Result<()> {
    let store = open_store(config, false)?;
    let artifact = find_artifact(&store, id)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&artifact)?);
    } else {
        print_artifact(&artifact);
    }
    Ok(())
}

/// An artifact by id (`app@sha-prefix`) or by commit sha (7–40 hex) across apps.
fn find_artifact(store: &ArtifactStore, id: &str) -> anyhow::Result<Artifact> {
    if id.contains('@') {
        let id: ArtifactId = id.parse()?;
        return store.get_by_id(&id)?.with_context(|| format!("no artifact {id}"));
    }
    let prefix = id.to_ascii_lowercase();
    let ok = (7..=40).contains(&prefix.len()) && prefix.bytes().all(|b| b.is_ascii_hexdigit());
    if !ok {
        bail!("{id:?} is neither an artifact id (app@sha) nor a commit sha (7 to 40 hex digits)");
    }
    let mut found = store.find_by_sha_prefix(&prefix)?;
    match found.len() {
        0 => bail!("no artifact for commit {prefix}"),
        1 => Ok(found.remove(0)),
        _ => bail!(
            "commit {prefix} has several artifacts; name one: {}",
            found
                .iter()
                .map(|a| a.id.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `auger artifact reject`: in the local ledger, or through a running auger's API.
fn artifact_reject(id: &str, reason: &str, config: &ConfigArg, server: Option<&str>) -> anyhow::Result<()> {
    if reason.contains(['\n', '\r']) {
        bail!("--reason must be one line");
    }
    if let Some(server) = server {
        let id: ArtifactId = id
            .parse()
            .context("with --server, name the artifact by its id (app@sha)")?;
        let answer = post_to_server(
            server,
            &format!("/api/v1/artifacts/{id}/reject"),
            &serde_json::json!({ "reason": reason }),
        )?;
        println!("{}: {id}", answer["outcome"].as_str().unwrap_or("rejected"));
        return Ok(());
    }
    let store = open_store(config, false)?;
    let artifact = find_artifact(&store, id)?;
    let rejection = auger::artifact::Rejection {
        by: format!("cli:{}", whoami()),
        reason: reason.to_owned(),
        time: chrono::Utc::now(),
    };
    let outcome = store
        .reject(&artifact.id, &rejection)
        .context("rejecting the artifact")?;
    match outcome {
        Some(RecordOutcome::Unchanged(a)) => {
            let by = a.rejected.map(|r| r.by).unwrap_or_default();
            println!("already rejected: {} (by {by})", a.id);
        }
        Some(o) => println!("rejected: {}", o.artifact().id),
        None => bail!("no artifact {}", artifact.id),
    }
    Ok(())
}

/// `auger render`: the files a release of `artifact` to `env` would write, without writing.
fn render(app: &AppName, env: &EnvName, artifact: &str, config: &ConfigArg) -> anyhow::Result<()> {
    let cfg = Config::load(&config.config)?;
    let policies = auger::server::load_policies(&cfg)?;
    let policy = policies
        .get(app)
        .with_context(|| format!("no policy for app {app}"))?;
    if policy.env(env).is_none() {
        let known: Vec<String> = policy.envs().map(|(e, _)| e.to_string()).collect();
        bail!("app {app} has no environment {env} (known: {})", known.join(", "));
    }
    let store = auger::server::open_store(&cfg, false)?;
    let artifact = find_artifact(&store, artifact)?;
    if &artifact.app != app {
        bail!(
            "artifact {} belongs to app {}, not {app}",
            artifact.id,
            artifact.app
        );
    }
    let extra = auger::gitops::RenderExtra::new(auger::gitops::Trigger::Other("render".into()));
    if policy.env(env).is_some_and(|rules| rules.edits()) {
        // Edit mode: the values a release sets, file by file (the files live in the gitops repo).
        for edit in auger::gitops::render_edits(policy, env, &artifact, &extra)? {
            println!("edit {edit}");
        }
        return Ok(());
    }
    let files = auger::gitops::render(&cfg.paths.templates, policy, env, &artifact, &extra)?;
    print!("{}", auger::gitops::render_command_output(&files));
    Ok(())
}

fn artifact_list(
    app: &AppName,
    branch: Option<BranchName>,
    tag: Option<TagName>,
    limit: usize,
    json: bool,
    config: &ConfigArg,
) -> anyhow::Result<()> {
    let store = open_store(config, false)?;
    let filter = ListFilter {
        branch,
        tag,
        pull_request: None,
    };
    let list = store.list(app, &filter, limit)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        for a in &list {
            println!(
                "{}  {}  {}",
                a.created.format("%Y-%m-%d %H:%M"),
                a.label(),
                a.message.as_deref().and_then(|m| m.lines().next()).unwrap_or("")
            );
        }
    }
    Ok(())
}

/// `auger release list`: the gitops branch's releases, newest first, after a fetch.
fn release_list(
    env: Option<EnvName>,
    app: Option<AppName>,
    json: bool,
    config: &ConfigArg,
) -> anyhow::Result<()> {
    let cfg = Config::load(&config.config)?;
    // Every repository auger.toml names; the policies are not needed to list what git holds.
    let none = auger::policy::LivePolicies::fixed(auger::policy::PolicySet::default());
    let repo = auger::server::open_gitops_targets(&cfg, &none)?;
    repo.fetch_all()?;
    let filter = auger::gitops::HistoryFilter {
        env,
        app,
        limit: None,
    };
    let views = repo.release_views(&filter)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&views)?);
        return Ok(());
    }
    let several = repo.repo_names().len() > 1;
    for v in &views {
        // With several gitops repositories the commit says which one it is in.
        let commit = match (&v.gitops_repo, several) {
            (Some(r), true) => format!("{r}@{}", v.commit.short(12)),
            _ => v.commit.short(12).to_owned(),
        };
        let mut markers = Vec::new();
        if v.rollback {
            markers.push("rollback");
        }
        if v.superseded {
            markers.push("superseded");
        }
        // Padding needs plain strings: the name types' Display ignores the width.
        let (artifact, trigger) = (v.artifact.to_string(), v.trigger.to_string());
        let line = format!(
            "{}  {:<12} {:<20} {:<34} {:<24} {}  {}",
            v.time.format("%Y-%m-%d %H:%M:%S"),
            v.env.as_str(),
            v.app.as_str(),
            artifact,
            trigger,
            commit,
            markers.join(",")
        );
        println!("{}", line.trim_end());
    }
    Ok(())
}

fn print_artifact(a: &Artifact) {
    let join = |v: Vec<String>| {
        if v.is_empty() {
            "-".to_owned()
        } else {
            v.join(", ")
        }
    };
    println!("id        {}", a.id);
    println!("app       {}", a.app);
    println!("repo      {}", a.repo);
    println!("sha       {}", a.sha);
    println!(
        "branches  {}",
        join(a.branches.iter().map(|b| b.to_string()).collect())
    );
    println!(
        "tags      {}",
        join(a.tags.iter().map(|t| t.to_string()).collect())
    );
    println!(
        "prs       {}",
        join(a.pull_requests.iter().map(|n| format!("#{n}")).collect())
    );
    println!("source    {} {}", a.source.kind, a.source.name);
    println!("created   {}", a.created.to_rfc3339());
    if let Some(m) = &a.message {
        println!("message   {}", m.lines().next().unwrap_or(""));
    }
    for (k, v) in &a.vars {
        println!("var       {k}={v}");
    }
}

fn whoami() -> String {
    std::env::var("USER").unwrap_or_else(|_| "cli".into())
}
