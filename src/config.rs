//! `auger.toml` (design §4). Typed, strict (`deny_unknown_fields`), with paths resolved against
//! the file's own folder. Secrets never live in the file: it names environment variables, and
//! reading them is a separate, explicit step so commands that need no secret never ask for one.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::domain::{AppName, BranchName, EnvName, RepoName};

/// A configuration problem, always naming the file and the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}{message}", file.display(), if key.is_empty() { String::new() } else { format!("{key}: ") })]
pub struct ConfigError {
    pub file: PathBuf,
    /// Dotted key path, e.g. `server.listen`; empty for whole-file problems.
    pub key: String,
    pub message: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    github: RawGithub,
    #[serde(default)]
    artifacts: RawArtifacts,
    gitops: Option<RawGitops>,
    #[serde(default)]
    api: RawApi,
    #[serde(default)]
    paths: RawPaths,
    #[serde(default)]
    notify: RawNotify,
    #[serde(default)]
    verify: RawVerify,
    policies: Option<RawPolicies>,
    #[serde(default)]
    dashboard: RawDashboard,
}

/// `[policies]`: a config repository whose pushes reload the policies (design §17).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicies {
    repo: String,
    url: String,
    #[serde(default = "default_branch")]
    branch: String,
    #[serde(default = "default_policies")]
    path: String,
    /// The templates' folder in the config repository; without it, `[paths] templates`.
    templates: Option<String>,
}

/// `[dashboard]`: GitHub OAuth login for the dashboard's actions (design §17). Without
/// `oauth_client_id` the dashboard is read-only.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDashboard {
    /// The OAuth app's client id (public; the secret is in `oauth_client_secret_env`).
    oauth_client_id: Option<String>,
    /// The variable holding the OAuth app's client secret.
    oauth_client_secret_env: Option<String>,
    /// The variable holding the key that signs session cookies (at least 32 bytes); unset,
    /// a random key per start (everyone logs in again after a restart).
    session_key_env: Option<String>,
    /// Where GitHub's web pages are (`/login/oauth/*`): `https://github.com`, or a GitHub
    /// Enterprise Server's host.
    github_url: Option<String>,
    /// The dashboard's public address (`https://auger.example.com`): the OAuth callback is
    /// `<url>/oauth/callback`. Unset: taken from each request's host.
    url: Option<String>,
}

/// `[verify]`: the secrets the cluster's controllers authenticate their reports with (design
/// §15), each through a named variable. A route whose variable is not named, or not set,
/// answers 404.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVerify {
    /// The variable holding the `token` of Flux's `generic-hmac` Provider secret (the HMAC key
    /// of `X-Signature`); comma-separated for rotation.
    flux_secret_env: Option<String>,
    /// The variable holding the bearer token Argo CD Notifications sends; comma-separated for
    /// rotation.
    argocd_token_env: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotify {
    /// The variable holding a Slack incoming-webhook URL (a secret: never in the file).
    slack_webhook_env: Option<String>,
    /// `[[notify.route]]`: where the notifications of some envs and apps go.
    #[serde(default)]
    route: Vec<RawRoute>,
}

/// One `[[notify.route]]`: the envs and apps it takes (absent: all) and one destination.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    envs: Option<Vec<String>>,
    apps: Option<Vec<String>>,
    /// The variable holding a Slack incoming-webhook URL.
    slack_webhook_env: Option<String>,
    /// The variable holding the URL of a generic JSON webhook.
    webhook_url_env: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    #[serde(default = "default_listen")]
    listen: String,
    #[serde(default = "default_data_dir")]
    data_dir: String,
    /// How often the release loop reconciles without an event (`1m`, `30s`).
    #[serde(default)]
    reconcile_interval: Option<String>,
    /// Where accepted work waits: `"journal"` (the embedded inbox) or `"postgres"` (design §18).
    #[serde(default)]
    queue: Option<String>,
    /// With `queue = "postgres"`: the variable holding the PostgreSQL URL (it has a password).
    #[serde(default)]
    queue_url_env: Option<String>,
    /// With `queue = "postgres"`: how long a claim holds an entry without being renewed; a
    /// replica that died is replaced after this long.
    #[serde(default)]
    queue_lease: Option<String>,
    /// With `queue = "postgres"`: how long a done delivery's row is kept, refusing a
    /// redelivery of its id.
    #[serde(default)]
    queue_keep: Option<String>,
    /// With `queue = "postgres"`: PEM certificates to trust for the database's TLS certificate
    /// beside the system's (a managed database's own CA).
    #[serde(default)]
    queue_ca_file: Option<String>,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            data_dir: default_data_dir(),
            reconcile_interval: None,
            queue: None,
            queue_url_env: None,
            queue_lease: None,
            queue_keep: None,
            queue_ca_file: None,
        }
    }
}

/// How long a PostgreSQL claim lasts without a renewal, unless `server.queue_lease` says.
pub const DEFAULT_QUEUE_LEASE: std::time::Duration = std::time::Duration::from_secs(30);

/// The shortest `server.queue_keep`: GitHub's redelivery window.
const MIN_QUEUE_KEEP: std::time::Duration = std::time::Duration::from_secs(3 * 24 * 3600);

/// The variable `queue_url_env` defaults to.
pub const DEFAULT_QUEUE_URL_ENV: &str = "AUGER_QUEUE_URL";

/// The reconcile's default period: a release held up by a fault or a gate is tried again at
/// least this often, even when no event comes.
pub const DEFAULT_RECONCILE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGithub {
    #[serde(default = "default_api_url")]
    api_url: String,
    app_id: Option<u64>,
    private_key_file: Option<String>,
    token_env: Option<String>,
    #[serde(default = "default_webhook_secret_env")]
    webhook_secret_env: String,
    /// The login auger acts as, when GitHub cannot be asked (an installation token).
    bot_login: Option<String>,
}

impl Default for RawGithub {
    fn default() -> Self {
        Self {
            api_url: default_api_url(),
            app_id: None,
            private_key_file: None,
            token_env: None,
            bot_login: None,
            webhook_secret_env: default_webhook_secret_env(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArtifacts {
    path: Option<String>,
    #[serde(default)]
    remote: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGitops {
    repo: String,
    url: String,
    #[serde(default = "default_branch")]
    branch: String,
    /// `[gitops.repos."owner/name"]`: other gitops repositories a policy's
    /// `[env.X.gitops] repo` may name (design §16).
    #[serde(default)]
    repos: std::collections::BTreeMap<String, RawGitopsRepo>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGitopsRepo {
    url: String,
    #[serde(default = "default_branch")]
    branch: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    #[serde(default = "default_tokens_env")]
    tokens_env: String,
}

impl Default for RawApi {
    fn default() -> Self {
        Self {
            tokens_env: default_tokens_env(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPaths {
    #[serde(default = "default_policies")]
    policies: String,
    #[serde(default = "default_templates")]
    templates: String,
}

impl Default for RawPaths {
    fn default() -> Self {
        Self {
            policies: default_policies(),
            templates: default_templates(),
        }
    }
}

/// Validates `[dashboard]`: `None` unless a client id is set; the other keys need one.
fn dashboard_config(
    raw: RawDashboard,
    err: &dyn Fn(&str, String) -> ConfigError,
) -> Result<Option<DashboardConfig>, ConfigError> {
    let Some(client_id) = raw.oauth_client_id else {
        let stray = [
            (
                "dashboard.oauth_client_secret_env",
                raw.oauth_client_secret_env.is_some(),
            ),
            ("dashboard.session_key_env", raw.session_key_env.is_some()),
            ("dashboard.github_url", raw.github_url.is_some()),
            ("dashboard.url", raw.url.is_some()),
        ];
        if let Some((key, _)) = stray.iter().find(|(_, set)| *set) {
            return Err(err(
                key,
                "needs dashboard.oauth_client_id (login is off without it)".into(),
            ));
        }
        return Ok(None);
    };
    let client_id = client_id.trim().to_owned();
    if client_id.is_empty()
        || !client_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(err(
            "dashboard.oauth_client_id",
            "an OAuth client id: letters, digits, '.', '_' and '-'".into(),
        ));
    }
    let secret_env = raw
        .oauth_client_secret_env
        .unwrap_or_else(|| DEFAULT_OAUTH_SECRET_ENV.to_owned());
    check_env_name(&secret_env).map_err(|m| err("dashboard.oauth_client_secret_env", m))?;
    if let Some(var) = &raw.session_key_env {
        check_env_name(var).map_err(|m| err("dashboard.session_key_env", m))?;
    }
    let http_url = |key: &str, value: String| -> Result<String, ConfigError> {
        let v = value.trim().trim_end_matches('/').to_owned();
        let host = v
            .strip_prefix("https://")
            .or_else(|| v.strip_prefix("http://"))
            .unwrap_or("");
        if host.is_empty() || host.contains(['?', '#', ' ']) {
            return Err(err(key, format!("{value:?} is not an http(s) URL")));
        }
        Ok(v)
    };
    let github_url = http_url(
        "dashboard.github_url",
        raw.github_url.unwrap_or_else(|| "https://github.com".into()),
    )?;
    let url = raw.url.map(|u| http_url("dashboard.url", u)).transpose()?;
    Ok(Some(DashboardConfig {
        oauth_client_id: client_id,
        oauth_client_secret_env: secret_env,
        session_key_env: raw.session_key_env,
        github_url,
        url,
    }))
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_data_dir() -> String {
    "./auger-data".into()
}
fn default_api_url() -> String {
    "https://api.github.com".into()
}
fn default_webhook_secret_env() -> String {
    "AUGER_WEBHOOK_SECRET".into()
}
fn default_branch() -> String {
    "main".into()
}
fn default_tokens_env() -> String {
    "AUGER_API_TOKENS".into()
}
fn default_policies() -> String {
    "policies".into()
}
fn default_templates() -> String {
    "templates".into()
}

/// A folder inside a repository: relative, `/`-separated, without `.` or `..` parts (it is
/// read from git trees, never joined onto a disk path).
fn repo_folder(path: &str) -> Result<String, String> {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    if trimmed
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == ".." || part.contains('\\'))
    {
        return Err(format!(
            "{path:?} is not a folder of the repository (relative, no \".\" or \"..\" parts)"
        ));
    }
    Ok(trimmed.to_owned())
}

/// The validated configuration. Paths are absolute or relative to the current directory,
/// already resolved against the config file's folder.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub server: ServerConfig,
    pub github: GithubConfig,
    pub artifacts: ArtifactsConfig,
    pub gitops: Option<GitopsConfig>,
    pub api: ApiConfig,
    pub paths: PathsConfig,
    /// `[notify] slack_webhook_env`: the variable that holds the Slack webhook URL.
    pub slack_webhook_env: Option<String>,
    /// `[[notify.route]]`, in the file's order.
    pub notify_routes: Vec<NotifyRoute>,
    pub verify: VerifyConfig,
    /// `[policies]`: where policies are reloaded from on a push; `None` reads `paths.policies`.
    pub policies_repo: Option<PoliciesRepoConfig>,
    /// `[dashboard]` with an OAuth client: login and actions; `None`: read-only.
    pub dashboard: Option<DashboardConfig>,
}

/// `[policies]`: the config repository, its branch, and the folders in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoliciesRepoConfig {
    pub repo: RepoName,
    pub url: String,
    pub branch: BranchName,
    /// The policy folder, relative to the repository root.
    pub path: String,
    /// The templates' folder in the repository, if it holds them.
    pub templates: Option<String>,
}

/// `[dashboard]`: the OAuth app the dashboard logs people in with (design §17).
#[derive(Debug, Clone)]
pub struct DashboardConfig {
    pub oauth_client_id: String,
    pub oauth_client_secret_env: String,
    pub session_key_env: Option<String>,
    /// Without a trailing `/`.
    pub github_url: String,
    /// Without a trailing `/`.
    pub url: Option<String>,
}

/// The secrets `[dashboard]` names, read from the environment.
pub struct DashboardSecrets {
    pub client_secret: String,
    /// `None`: draw a key per start.
    pub session_key: Option<Vec<u8>>,
}

/// The default `[dashboard] oauth_client_secret_env`.
pub const DEFAULT_OAUTH_SECRET_ENV: &str = "AUGER_OAUTH_CLIENT_SECRET";

/// Where a `[[notify.route]]` posts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    /// A Slack incoming webhook: the Slack message templates.
    Slack,
    /// A generic webhook: auger's JSON body (README, "Notifications").
    Webhook,
}

/// One `[[notify.route]]`: the notifications of these envs and apps (`None`: every one) go to
/// the URL in the variable `var`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyRoute {
    pub envs: Option<Vec<EnvName>>,
    pub apps: Option<Vec<AppName>>,
    pub kind: HookKind,
    pub var: String,
}

/// `[verify]`: which variables hold the controllers' report secrets.
#[derive(Debug, Clone, Default)]
pub struct VerifyConfig {
    /// `verify.flux_secret_env`: HMAC keys for `POST /webhooks/flux`.
    pub flux_secret_env: Option<String>,
    /// `verify.argocd_token_env`: bearer tokens for `POST /webhooks/argocd`.
    pub argocd_token_env: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub reconcile_interval: std::time::Duration,
    pub queue: QueueKind,
}

/// Where accepted work waits until a worker is done with it (`server.queue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueKind {
    /// The embedded journal under `data_dir` (the default): one process.
    Journal,
    /// A PostgreSQL database shared by every replica; the URL is read from the named variable.
    Postgres {
        url_env: String,
        /// How long a claim lasts without a renewal (`server.queue_lease`, default 30s).
        lease: std::time::Duration,
        /// How long done rows are kept (`server.queue_keep`, default 7d).
        keep: std::time::Duration,
        /// Certificates trusted for the database's TLS beside the system's
        /// (`server.queue_ca_file`).
        ca_file: Option<PathBuf>,
    },
}

#[derive(Debug, Clone)]
pub enum GithubAuth {
    /// GitHub App: JWT from the private key, exchanged for installation tokens.
    App { app_id: u64, private_key_file: PathBuf },
    /// A personal or installation token read from the named variable.
    Token { env: String },
    /// Nothing configured: fine for offline commands, refused by `serve`.
    None,
}

#[derive(Debug, Clone)]
pub struct GithubConfig {
    pub api_url: String,
    pub auth: GithubAuth,
    pub webhook_secret_env: String,
    /// `github.bot_login`: the login auger acts as, taken as given instead of asked of GitHub
    /// (`GET /user` refuses installation tokens).
    pub bot_login: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ArtifactsConfig {
    pub path: PathBuf,
    pub remote: Option<String>,
}

/// `[gitops]`: the default gitops repository, and the others policies may write to.
#[derive(Debug, Clone)]
pub struct GitopsConfig {
    pub repo: RepoName,
    pub url: String,
    pub branch: BranchName,
    /// `[gitops.repos."owner/name"]`, never the default repository itself.
    pub repos: std::collections::BTreeMap<RepoName, GitopsRepoConfig>,
}

/// One `[gitops.repos."owner/name"]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitopsRepoConfig {
    pub url: String,
    /// The branch releases land on unless a policy names another.
    pub branch: BranchName,
}

impl GitopsConfig {
    /// The clone URL and default branch of `repo`, if it is the default or one of `repos`.
    pub fn lookup(&self, repo: &RepoName) -> Option<(&str, &BranchName)> {
        if same_repo(repo, &self.repo) {
            return Some((&self.url, &self.branch));
        }
        self.repos
            .iter()
            .find(|(name, _)| same_repo(name, repo))
            .map(|(_, r)| (r.url.as_str(), &r.branch))
    }

    /// Every repository named: the default first.
    pub fn repo_names(&self) -> Vec<RepoName> {
        std::iter::once(self.repo.clone())
            .chain(self.repos.keys().cloned())
            .collect()
    }
}

/// GitHub compares owner and name without case.
fn same_repo(a: &RepoName, b: &RepoName) -> bool {
    a.as_str().eq_ignore_ascii_case(b.as_str())
}

#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub tokens_env: String,
}

#[derive(Debug, Clone)]
pub struct PathsConfig {
    pub policies: PathBuf,
    pub templates: PathBuf,
}

impl Config {
    /// The gitops repositories this file names, which every policy's `[env.X.gitops] repo`
    /// must be one of (at start and at every reload).
    pub fn gitops_names(&self) -> crate::policy::GitopsNames {
        crate::policy::GitopsNames {
            config: self.file.clone(),
            repos: self.gitops.as_ref().map(|g| g.repo_names()).unwrap_or_default(),
        }
    }

    /// Read and validate `file`. Every problem names the file and the key.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|e| ConfigError {
            file: file.to_owned(),
            key: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(file, &text)
    }

    /// Validate `text` as if read from `file` (whose folder anchors relative paths).
    pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
        let err = |key: &str, message: String| ConfigError {
            file: file.to_owned(),
            key: key.to_owned(),
            message,
        };
        let de = toml::Deserializer::parse(text).map_err(|e| err("", toml_message(&e)))?;
        let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let key = if key == "." { String::new() } else { key };
            err(&key, toml_message(e.inner()))
        })?;

        let base = file.parent().map(Path::to_owned).unwrap_or_default();
        let resolve = |p: &str| -> PathBuf {
            let p = Path::new(p);
            if p.is_absolute() {
                p.to_owned()
            } else {
                base.join(p)
            }
        };
        let non_empty = |key: &str, v: &str| -> Result<(), ConfigError> {
            if v.trim().is_empty() {
                Err(err(key, "must not be empty".into()))
            } else {
                Ok(())
            }
        };

        let listen: SocketAddr = raw.server.listen.parse().map_err(|_| {
            err(
                "server.listen",
                format!("{:?} is not an address like 127.0.0.1:8080", raw.server.listen),
            )
        })?;
        non_empty("server.data_dir", &raw.server.data_dir)?;
        let data_dir = resolve(&raw.server.data_dir);
        let one_second = (std::time::Duration::from_secs(1), "1s");
        let reconcile_interval = duration_setting(
            raw.server.reconcile_interval.as_deref(),
            DEFAULT_RECONCILE_INTERVAL,
            one_second,
            "1m or 30s",
        )
        .map_err(|m| err("server.reconcile_interval", m))?;

        if !(raw.github.api_url.starts_with("https://") || raw.github.api_url.starts_with("http://")) {
            return Err(err(
                "github.api_url",
                format!("{:?} is not an http(s) URL", raw.github.api_url),
            ));
        }
        check_env_name(&raw.github.webhook_secret_env).map_err(|m| err("github.webhook_secret_env", m))?;
        let auth = match (
            raw.github.app_id,
            raw.github.private_key_file,
            raw.github.token_env,
        ) {
            (Some(_), Some(_), Some(_)) => {
                return Err(err(
                    "github.token_env",
                    "set either app_id + private_key_file (GitHub App) or token_env, not both".into(),
                ));
            }
            (Some(app_id), Some(key), None) => {
                non_empty("github.private_key_file", &key)?;
                GithubAuth::App {
                    app_id,
                    private_key_file: resolve(&key),
                }
            }
            (Some(_), None, _) => {
                return Err(err(
                    "github.private_key_file",
                    "is required with github.app_id".into(),
                ));
            }
            (None, Some(_), _) => {
                return Err(err(
                    "github.app_id",
                    "is required with github.private_key_file".into(),
                ));
            }
            (None, None, Some(env)) => {
                check_env_name(&env).map_err(|m| err("github.token_env", m))?;
                GithubAuth::Token { env }
            }
            (None, None, None) => GithubAuth::None,
        };

        let bot_login = match raw.github.bot_login {
            None => None,
            Some(login) => {
                let valid = !login.is_empty()
                    && login.len() <= 100
                    && login
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '[' | ']'));
                if !valid {
                    return Err(err(
                        "github.bot_login",
                        format!("{login:?} is not a GitHub login (like my-app[bot])"),
                    ));
                }
                Some(login)
            }
        };

        let artifacts_path = match raw.artifacts.path {
            Some(p) => {
                non_empty("artifacts.path", &p)?;
                resolve(&p)
            }
            None => data_dir.join("artifacts.git"),
        };
        let remote = Some(raw.artifacts.remote.trim().to_owned()).filter(|r| !r.is_empty());

        let queue_lease = duration_setting(
            raw.server.queue_lease.as_deref(),
            DEFAULT_QUEUE_LEASE,
            one_second,
            "30s",
        )
        .map_err(|m| err("server.queue_lease", m))?;
        let queue_keep = duration_setting(
            raw.server.queue_keep.as_deref(),
            crate::queue::postgres::DEFAULT_KEEP,
            (
                MIN_QUEUE_KEEP,
                "3 days: GitHub redelivers for 3 days, and a redelivery of a row already deleted would be worked again",
            ),
            "7d",
        )
        .map_err(|m| err("server.queue_keep", m))?;
        for (key, set) in [
            ("server.queue_lease", raw.server.queue_lease.is_some()),
            ("server.queue_keep", raw.server.queue_keep.is_some()),
            ("server.queue_ca_file", raw.server.queue_ca_file.is_some()),
        ] {
            if raw.server.queue.as_deref() != Some("postgres") && set {
                return Err(err(key, "is only read with server.queue = \"postgres\"".into()));
            }
        }
        let queue = match (raw.server.queue.as_deref(), raw.server.queue_url_env) {
            (None | Some("journal"), None) => QueueKind::Journal,
            (None | Some("journal"), Some(_)) => {
                return Err(err(
                    "server.queue_url_env",
                    "is only read with server.queue = \"postgres\"".into(),
                ));
            }
            (Some("postgres"), url_env) => {
                let url_env = url_env.unwrap_or_else(|| DEFAULT_QUEUE_URL_ENV.to_owned());
                check_env_name(&url_env).map_err(|m| err("server.queue_url_env", m))?;
                // Replicas share one ledger only through its remote (design §18).
                if remote.is_none() {
                    return Err(err(
                        "artifacts.remote",
                        "is required with server.queue = \"postgres\": every replica reads and writes one ledger through it".into(),
                    ));
                }
                let ca_file = match &raw.server.queue_ca_file {
                    Some(p) => {
                        non_empty("server.queue_ca_file", p)?;
                        Some(resolve(p))
                    }
                    None => None,
                };
                QueueKind::Postgres {
                    url_env,
                    lease: queue_lease,
                    keep: queue_keep,
                    ca_file,
                }
            }
            (Some(other), _) => {
                let hint = if other.contains("://") {
                    " (the URL is a secret: put it in the variable server.queue_url_env names, and set queue = \"postgres\")"
                } else {
                    ""
                };
                return Err(err(
                    "server.queue",
                    format!("{other:?} is not a queue: \"journal\" or \"postgres\"{hint}"),
                ));
            }
        };

        let gitops = match raw.gitops {
            None => None,
            Some(g) => {
                let repo = RepoName::new(&g.repo).map_err(|e| err("gitops.repo", e.to_string()))?;
                non_empty("gitops.url", &g.url)?;
                let branch = BranchName::new(&g.branch).map_err(|e| err("gitops.branch", e.to_string()))?;
                let mut repos = std::collections::BTreeMap::new();
                for (name, r) in g.repos {
                    let key = |k: &str| format!("gitops.repos.\"{name}\"{k}");
                    let other = RepoName::new(&name).map_err(|e| err(&key(""), e.to_string()))?;
                    if same_repo(&other, &repo) {
                        return Err(err(
                            &key(""),
                            format!(
                                "{name} is the default repository of [gitops]: set its url and branch there"
                            ),
                        ));
                    }
                    if repos.keys().any(|known| same_repo(known, &other)) {
                        return Err(err(
                            &key(""),
                            format!("{name} is named twice (GitHub ignores case)"),
                        ));
                    }
                    non_empty(&key(".url"), &r.url)?;
                    let branch =
                        BranchName::new(&r.branch).map_err(|e| err(&key(".branch"), e.to_string()))?;
                    repos.insert(other, GitopsRepoConfig { url: r.url, branch });
                }
                Some(GitopsConfig {
                    repo,
                    url: g.url,
                    branch,
                    repos,
                })
            }
        };

        check_env_name(&raw.api.tokens_env).map_err(|m| err("api.tokens_env", m))?;
        for (key, var) in [
            ("verify.flux_secret_env", &raw.verify.flux_secret_env),
            ("verify.argocd_token_env", &raw.verify.argocd_token_env),
        ] {
            if let Some(var) = var {
                check_env_name(var).map_err(|m| err(key, m))?;
            }
        }
        let policies_repo = match raw.policies {
            None => None,
            Some(p) => {
                let repo = RepoName::new(&p.repo).map_err(|e| err("policies.repo", e.to_string()))?;
                non_empty("policies.url", &p.url)?;
                let branch = BranchName::new(&p.branch).map_err(|e| err("policies.branch", e.to_string()))?;
                let path = repo_folder(&p.path).map_err(|m| err("policies.path", m))?;
                let templates = p
                    .templates
                    .map(|t| repo_folder(&t).map_err(|m| err("policies.templates", m)))
                    .transpose()?;
                Some(PoliciesRepoConfig {
                    repo,
                    url: p.url,
                    branch,
                    path,
                    templates,
                })
            }
        };
        let mut notify_routes = Vec::new();
        for (i, r) in raw.notify.route.iter().enumerate() {
            let at = |key: &str| format!("notify.route[{i}]{key}");
            let (kind, var) = match (&r.slack_webhook_env, &r.webhook_url_env) {
                (Some(v), None) => (HookKind::Slack, v),
                (None, Some(v)) => (HookKind::Webhook, v),
                _ => {
                    return Err(err(
                        &at(""),
                        "give exactly one of slack_webhook_env and webhook_url_env".into(),
                    ));
                }
            };
            let var_key = match kind {
                HookKind::Slack => ".slack_webhook_env",
                HookKind::Webhook => ".webhook_url_env",
            };
            check_env_name(var).map_err(|m| err(&at(var_key), m))?;
            let envs = match &r.envs {
                None => None,
                Some(list) if list.is_empty() => {
                    return Err(err(
                        &at(".envs"),
                        "an empty list takes nothing; leave the key out for every env".into(),
                    ));
                }
                Some(list) => Some(
                    list.iter()
                        .map(|e| EnvName::new(e).map_err(|m| err(&at(".envs"), m.to_string())))
                        .collect::<Result<Vec<_>, _>>()?,
                ),
            };
            let apps = match &r.apps {
                None => None,
                Some(list) if list.is_empty() => {
                    return Err(err(
                        &at(".apps"),
                        "an empty list takes nothing; leave the key out for every app".into(),
                    ));
                }
                Some(list) => Some(
                    list.iter()
                        .map(|a| AppName::new(a).map_err(|m| err(&at(".apps"), m.to_string())))
                        .collect::<Result<Vec<_>, _>>()?,
                ),
            };
            notify_routes.push(NotifyRoute {
                envs,
                apps,
                kind,
                var: var.clone(),
            });
        }
        non_empty("paths.policies", &raw.paths.policies)?;
        non_empty("paths.templates", &raw.paths.templates)?;
        let dashboard = dashboard_config(raw.dashboard, &err)?;

        Ok(Config {
            file: file.to_owned(),
            server: ServerConfig {
                listen,
                data_dir,
                reconcile_interval,
                queue,
            },
            github: GithubConfig {
                api_url: raw.github.api_url.trim_end_matches('/').to_owned(),
                auth,
                webhook_secret_env: raw.github.webhook_secret_env,
                bot_login,
            },
            artifacts: ArtifactsConfig {
                path: artifacts_path,
                remote,
            },
            gitops,
            api: ApiConfig {
                tokens_env: raw.api.tokens_env,
            },
            paths: PathsConfig {
                policies: resolve(&raw.paths.policies),
                templates: resolve(&raw.paths.templates),
            },
            slack_webhook_env: raw.notify.slack_webhook_env,
            notify_routes,
            verify: VerifyConfig {
                flux_secret_env: raw.verify.flux_secret_env,
                argocd_token_env: raw.verify.argocd_token_env,
            },
            policies_repo,
            dashboard,
        })
    }

    /// The `[gitops]` section, or an error naming the file and the keys to set.
    pub fn require_gitops(&self) -> Result<&GitopsConfig, ConfigError> {
        self.gitops.as_ref().ok_or_else(|| ConfigError {
            file: self.file.clone(),
            key: "gitops".into(),
            message: "no [gitops] section: set gitops.repo and gitops.url to read or write releases".into(),
        })
    }

    /// The local bare cache of the gitops repository, shared by the server and the CLI (their
    /// writes are serialized by the cache's file lock).
    pub fn gitops_cache_dir(&self) -> PathBuf {
        self.server.data_dir.join("gitops-cache")
    }

    /// The cache of one (repository, branch) writes go to: the default repository's own
    /// branch keeps [`Self::gitops_cache_dir`]; every other pair gets a folder of its own under
    /// `gitops-caches/`, so each has its own write lock.
    pub fn gitops_cache_dir_for(&self, repo: &RepoName, branch: &BranchName) -> PathBuf {
        if let Some(g) = &self.gitops
            && same_repo(repo, &g.repo)
            && *branch == g.branch
        {
            return self.gitops_cache_dir();
        }
        // Owner and name are plain (`RepoName` refuses `/` inside them and `..`); the branch's
        // ref component is one %-encoded folder name.
        self.server
            .data_dir
            .join("gitops-caches")
            .join(repo.as_str().to_ascii_lowercase())
            .join(branch.ref_component())
    }

    /// The webhook secrets (comma-separated for rotation). Missing or empty is an error naming
    /// the key and the variable; the values themselves never appear in messages.
    pub fn webhook_secrets(&self) -> Result<Vec<String>, ConfigError> {
        self.secret_list("github.webhook_secret_env", &self.github.webhook_secret_env)
    }

    /// The PostgreSQL URL of `server.queue = "postgres"`, from the variable `queue_url_env`
    /// names; `Ok(None)` for the journal. The error names the variable, never its value.
    pub fn queue_url(&self) -> Result<Option<String>, ConfigError> {
        self.queue_url_from(|var| std::env::var(var).ok())
    }

    fn queue_url_from(&self, var: impl Fn(&str) -> Option<String>) -> Result<Option<String>, ConfigError> {
        let QueueKind::Postgres { url_env, .. } = &self.server.queue else {
            return Ok(None);
        };
        let value = var(url_env).unwrap_or_default();
        let value = value.trim();
        if value.is_empty() {
            return Err(ConfigError {
                file: self.file.clone(),
                key: "server.queue_url_env".into(),
                message: format!("environment variable {url_env} is not set or empty"),
            });
        }
        if !(value.starts_with("postgres://") || value.starts_with("postgresql://")) {
            return Err(ConfigError {
                file: self.file.clone(),
                key: "server.queue_url_env".into(),
                message: format!("environment variable {url_env} does not hold a postgres:// URL"),
            });
        }
        Ok(Some(value.to_owned()))
    }

    /// The Slack webhook URL, when `[notify] slack_webhook_env` names a variable that is set.
    pub fn slack_webhook_url(&self) -> Option<String> {
        let var = self.slack_webhook_env.as_ref()?;
        std::env::var(var)
            .ok()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// Each `[[notify.route]]` with the URL its variable holds; a route whose variable is unset
    /// or empty is left out with a warning (as an unset `slack_webhook_env` turns Slack off).
    pub fn notify_route_urls(&self) -> Vec<(NotifyRoute, String)> {
        self.notify_routes
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let url = std::env::var(&r.var).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
                if url.is_none() {
                    tracing::warn!(route = i, var = %r.var, "notify.route: the variable is not set; this route is off");
                }
                Some((r.clone(), url?))
            })
            .collect()
    }

    /// The API tokens (design §17), or `Ok(None)` when the variable is unset or empty (the API
    /// then refuses every request). A malformed value is an error naming the variable and the
    /// entry, never the secret.
    pub fn api_tokens(&self) -> Result<Option<Vec<ApiTokenSpec>>, ConfigError> {
        let var = &self.api.tokens_env;
        let value = std::env::var(var).unwrap_or_default();
        if value.trim().is_empty() {
            return Ok(None);
        }
        parse_api_tokens(&value).map(Some).map_err(|message| ConfigError {
            file: self.file.clone(),
            key: "api.tokens_env".into(),
            message: format!("environment variable {var}: {message}"),
        })
    }

    /// The HMAC keys Flux signs reports with, or why `POST /webhooks/flux` stays off: the key is
    /// not set, or its variable is unset or empty (the error names both).
    pub fn flux_secrets(&self) -> Result<Option<Vec<String>>, ConfigError> {
        self.optional_secret_list("verify.flux_secret_env", self.verify.flux_secret_env.as_deref())
    }

    /// The bearer tokens Argo CD Notifications sends, as [`Config::flux_secrets`].
    pub fn argocd_tokens(&self) -> Result<Option<Vec<String>>, ConfigError> {
        self.optional_secret_list("verify.argocd_token_env", self.verify.argocd_token_env.as_deref())
    }

    /// `Ok(None)` when `key` names no variable; the variable's list when it does and is set;
    /// an error naming the key and the variable when it is unset or empty.
    /// The OAuth client secret and the session key (`None`: make one per start) of
    /// `[dashboard]`; errors name the key and the variable, never the value.
    pub fn dashboard_secrets(&self) -> Result<Option<DashboardSecrets>, ConfigError> {
        let Some(d) = &self.dashboard else {
            return Ok(None);
        };
        let err = |key: &str, message: String| ConfigError {
            file: self.file.clone(),
            key: key.to_owned(),
            message,
        };
        let secret = std::env::var(&d.oauth_client_secret_env)
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                err(
                    "dashboard.oauth_client_secret_env",
                    format!(
                        "environment variable {} is not set or empty",
                        d.oauth_client_secret_env
                    ),
                )
            })?;
        let key = match &d.session_key_env {
            None => None,
            Some(var) => {
                let value = std::env::var(var).unwrap_or_default();
                if value.len() < 32 {
                    return Err(err(
                        "dashboard.session_key_env",
                        format!("environment variable {var} must hold at least 32 bytes"),
                    ));
                }
                Some(value.into_bytes())
            }
        };
        Ok(Some(DashboardSecrets {
            client_secret: secret,
            session_key: key,
        }))
    }

    fn optional_secret_list(&self, key: &str, var: Option<&str>) -> Result<Option<Vec<String>>, ConfigError> {
        var.map(|var| self.secret_list(key, var)).transpose()
    }

    fn secret_list(&self, key: &str, var: &str) -> Result<Vec<String>, ConfigError> {
        let value = std::env::var(var).unwrap_or_default();
        let list: Vec<String> = value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if list.is_empty() {
            return Err(ConfigError {
                file: self.file.clone(),
                key: key.to_owned(),
                message: format!("environment variable {var} is not set or empty"),
            });
        }
        Ok(list)
    }
}

/// What an API token may do (design §17): one verb per entry; `*` is every verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVerb {
    Read,
    ArtifactsWrite,
    ReleasesWrite,
    All,
}

impl ApiVerb {
    const SPELLINGS: [(&'static str, ApiVerb); 4] = [
        ("read", ApiVerb::Read),
        ("artifacts:write", ApiVerb::ArtifactsWrite),
        ("releases:write", ApiVerb::ReleasesWrite),
        ("*", ApiVerb::All),
    ];

    pub fn as_str(self) -> &'static str {
        Self::SPELLINGS
            .iter()
            .find(|(_, v)| *v == self)
            .map_or("*", |(s, _)| s)
    }

    /// Whether a token granted `self` may do `wanted`.
    pub fn covers(self, wanted: ApiVerb) -> bool {
        self == ApiVerb::All || self == wanted
    }
}

/// One entry of `AUGER_API_TOKENS`: a named secret, its verb, and the apps it may touch
/// (`None`: every app). The secret stays out of `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiTokenSpec {
    pub name: String,
    pub secret: String,
    pub verb: ApiVerb,
    pub apps: Option<Vec<AppName>>,
}

impl std::fmt::Debug for ApiTokenSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiTokenSpec")
            .field("name", &self.name)
            .field("verb", &self.verb)
            .field("apps", &self.apps)
            .finish_non_exhaustive()
    }
}

/// Reads `AUGER_API_TOKENS`. Two spellings: the scoped one, `name:secret:verb[@app,app]`
/// entries separated by `;`, and the older comma-separated list of `name:secret` (or bare
/// secret) entries, each allowed everything. A value is scoped when it has a `;` or an entry
/// with more than one `:`, so an old list keeps its meaning. Messages name entries by number and
/// name and never quote what could be part of a secret.
pub fn parse_api_tokens(value: &str) -> Result<Vec<ApiTokenSpec>, String> {
    let scoped = value.contains(';') || value.split(',').any(|e| e.matches(':').count() > 1);
    if !scoped {
        return Ok(value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .enumerate()
            .map(|(i, e)| {
                let (name, secret) = match e.split_once(':') {
                    Some((name, secret)) if !name.is_empty() && !secret.is_empty() => {
                        (name.to_owned(), secret.to_owned())
                    }
                    _ => (format!("token-{}", i + 1), e.to_owned()),
                };
                ApiTokenSpec {
                    name,
                    secret,
                    verb: ApiVerb::All,
                    apps: None,
                }
            })
            .collect());
    }
    let mut specs: Vec<ApiTokenSpec> = Vec::new();
    for (i, entry) in value.split(';').map(str::trim).enumerate() {
        if entry.is_empty() {
            continue;
        }
        let n = i + 1;
        let mut parts = entry.splitn(3, ':');
        let (name, secret, rest) = match (parts.next(), parts.next(), parts.next()) {
            (Some(name), Some(secret), Some(rest)) => (name.trim(), secret, rest.trim()),
            _ => return Err(format!("entry {n}: expected name:secret:verb[@app,…]")),
        };
        let name_ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !name_ok {
            return Err(format!(
                "entry {n}: the name (before the first ':') must be letters, digits, '-', '_' or '.'"
            ));
        }
        let at = |why: String| format!("entry {n} ({name}): {why}");
        if secret.trim().is_empty() {
            return Err(at("the secret is empty".into()));
        }
        let (verb, apps) = match rest.split_once('@') {
            Some((verb, apps)) => (verb.trim(), Some(apps)),
            None => (rest, None),
        };
        let Some(verb) = ApiVerb::SPELLINGS
            .iter()
            .find(|(s, _)| *s == verb)
            .map(|(_, v)| *v)
        else {
            return Err(at(
                "the verb (after the secret) must be one of read, artifacts:write, releases:write, *".into(),
            ));
        };
        let apps = match apps {
            None => None,
            Some(list) => {
                let mut names = Vec::new();
                for (j, app) in list.split(',').map(str::trim).enumerate() {
                    let app = AppName::new(app).map_err(|e| at(format!("app {} after '@': {e}", j + 1)))?;
                    names.push(app);
                }
                Some(names)
            }
        };
        if let Some(other) = specs.iter().find(|s| s.secret == secret && s.name != name) {
            return Err(at(format!(
                "it has the secret of the entry named {}; one secret is one token",
                other.name
            )));
        }
        specs.push(ApiTokenSpec {
            name: name.to_owned(),
            secret: secret.to_owned(),
            verb,
            apps,
        });
    }
    if specs.is_empty() {
        return Err("no entries".into());
    }
    Ok(specs)
}

/// toml's messages carry a source excerpt with line breaks; keep the first line, plus the
/// line number, so each error fits one line.
/// A duration setting: `default` when absent; refused when under `min` (the message names it
/// as `min.1`) or when it is not a duration (`example` shows one).
fn duration_setting(
    text: Option<&str>,
    default: std::time::Duration,
    min: (std::time::Duration, &str),
    example: &str,
) -> Result<std::time::Duration, String> {
    let Some(text) = text else { return Ok(default) };
    match humantime::parse_duration(text) {
        Ok(d) if d >= min.0 => Ok(d),
        Ok(_) => Err(format!("{text:?} is under {}", min.1)),
        Err(e) => Err(format!("{text:?} is not a duration like {example}: {e}")),
    }
}

fn toml_message(e: &toml::de::Error) -> String {
    e.message().lines().next().unwrap_or("invalid TOML").to_owned()
}

fn check_env_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not an environment variable name (letters, digits, '_'); secrets go in the environment, not in this file"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/auger/auger.toml"), text)
    }

    #[test]
    fn design_example_parses_with_paths_resolved_next_to_the_file() {
        let c = parse(
            r#"
[server]
listen = "127.0.0.1:8080"
data_dir = "./auger-data"
[github]
api_url = "https://api.github.com"
token_env = "GITHUB_TOKEN"
webhook_secret_env = "AUGER_WEBHOOK_SECRET"
[artifacts]
path = "./auger-data/artifacts.git"
remote = ""
[gitops]
repo = "acme/gitops"
url = "https://github.com/acme/gitops.git"
branch = "main"
[api]
tokens_env = "AUGER_API_TOKENS"
[paths]
policies = "policies"
templates = "/srv/templates"
"#,
        )
        .unwrap();
        assert_eq!(
            c.artifacts.path,
            Path::new("/etc/auger/./auger-data/artifacts.git")
        );
        assert_eq!(c.paths.policies, Path::new("/etc/auger/policies"));
        assert_eq!(c.paths.templates, Path::new("/srv/templates"));
        assert_eq!(c.artifacts.remote, None);
        assert!(matches!(c.github.auth, GithubAuth::Token { ref env } if env == "GITHUB_TOKEN"));
        assert_eq!(c.gitops.unwrap().repo.as_str(), "acme/gitops");
    }

    #[test]
    fn other_gitops_repositories_have_a_url_a_branch_and_a_cache_of_their_own() {
        let c = parse(
            "[gitops]\nrepo = \"acme/gitops\"\nurl = \"file:///g\"\n\
             [gitops.repos.\"acme/gitops-prod\"]\nurl = \"file:///p\"\nbranch = \"live\"\n\
             [gitops.repos.\"acme/gitops-staging\"]\nurl = \"file:///s\"\n",
        )
        .unwrap();
        let g = c.gitops.as_ref().unwrap();
        let name = |s: &str| RepoName::new(s).unwrap();
        let (url, branch) = g.lookup(&name("ACME/gitops-prod")).unwrap();
        assert_eq!((url, branch.as_str()), ("file:///p", "live"));
        assert_eq!(g.lookup(&name("acme/gitops-staging")).unwrap().1.as_str(), "main");
        assert_eq!(g.lookup(&name("acme/gitops")).unwrap().0, "file:///g");
        assert!(g.lookup(&name("acme/other")).is_none());
        assert_eq!(g.repo_names().len(), 3);
        let main = BranchName::new("main").unwrap();
        assert_eq!(
            c.gitops_cache_dir_for(&name("acme/gitops"), &main),
            c.gitops_cache_dir()
        );
        let other = BranchName::new("release/1").unwrap();
        let dirs = [
            c.gitops_cache_dir_for(&name("acme/gitops"), &other),
            c.gitops_cache_dir_for(&name("acme/gitops-prod"), &main),
            c.gitops_cache_dir_for(&name("acme/gitops-prod"), &other),
        ];
        for (i, d) in dirs.iter().enumerate() {
            assert!(d.starts_with(c.server.data_dir.join("gitops-caches")), "{d:?}");
            assert!(dirs[i + 1..].iter().all(|o| o != d), "{d:?} is shared");
        }
    }

    #[test]
    fn empty_file_gets_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.server.listen.port(), 8080);
        assert_eq!(
            c.artifacts.path,
            Path::new("/etc/auger/./auger-data/artifacts.git")
        );
        assert!(matches!(c.github.auth, GithubAuth::None));
    }

    #[test]
    fn the_queue_is_the_journal_unless_postgres_is_asked_for_with_a_remote_ledger() {
        assert_eq!(parse("").unwrap().server.queue, QueueKind::Journal);
        assert_eq!(
            parse("[server]\nqueue = \"journal\"\n").unwrap().server.queue,
            QueueKind::Journal
        );
        let c = parse("[server]\nqueue = \"postgres\"\n[artifacts]\nremote = \"/srv/ledger.git\"\n").unwrap();
        assert_eq!(
            c.server.queue,
            QueueKind::Postgres {
                url_env: DEFAULT_QUEUE_URL_ENV.into(),
                lease: DEFAULT_QUEUE_LEASE,
                keep: crate::queue::postgres::DEFAULT_KEEP,
                ca_file: None,
            }
        );
        let c = parse(
            "[server]\nqueue = \"postgres\"\nqueue_url_env = \"PG_URL\"\nqueue_lease = \"5s\"\nqueue_keep = \"14d\"\nqueue_ca_file = \"pg-ca.pem\"\n[artifacts]\nremote = \"/srv/ledger.git\"\n",
        )
        .unwrap();
        assert_eq!(
            c.server.queue,
            QueueKind::Postgres {
                url_env: "PG_URL".into(),
                lease: std::time::Duration::from_secs(5),
                keep: std::time::Duration::from_secs(14 * 24 * 3600),
                ca_file: Some(PathBuf::from("/etc/auger/pg-ca.pem")),
            }
        );
        let e = parse("[server]\nqueue_lease = \"5s\"\n").unwrap_err();
        assert_eq!(e.key, "server.queue_lease", "{e}");
        let e = parse("[server]\nqueue_keep = \"7d\"\n").unwrap_err();
        assert_eq!(e.key, "server.queue_keep", "{e}");
    }

    #[test]
    fn done_deliveries_are_kept_at_least_as_long_as_github_redelivers() {
        let e =
            parse("[server]\nqueue = \"postgres\"\nqueue_keep = \"1d\"\n[artifacts]\nremote = \"/r.git\"\n")
                .unwrap_err();
        assert_eq!(e.key, "server.queue_keep", "{e}");
        assert!(e.to_string().contains("under 3 days"), "{e}");
        let e = parse(
            "[server]\nqueue = \"postgres\"\nqueue_keep = \"a week\"\n[artifacts]\nremote = \"/r.git\"\n",
        )
        .unwrap_err();
        assert_eq!(e.key, "server.queue_keep", "{e}");
    }

    #[test]
    fn a_postgres_queue_without_a_ledger_remote_or_with_a_url_in_the_file_names_the_key() {
        let e = parse("[server]\nqueue = \"postgres\"\n").unwrap_err();
        assert_eq!(e.key, "artifacts.remote", "{e}");
        assert!(
            e.to_string()
                .starts_with("/etc/auger/auger.toml: artifacts.remote: is required"),
            "{e}"
        );
        let e = parse("[server]\nqueue = \"postgres://u:secret@db/auger\"\n").unwrap_err();
        assert_eq!(e.key, "server.queue", "{e}");
        assert!(e.to_string().contains("queue_url_env"), "{e}");
        let e = parse("[server]\nqueue = \"redis\"\n").unwrap_err();
        assert_eq!(e.key, "server.queue", "{e}");
        let e = parse("[server]\nqueue_url_env = \"PG_URL\"\n").unwrap_err();
        assert_eq!(e.key, "server.queue_url_env", "{e}");
        let e = parse(
            "[server]\nqueue = \"postgres\"\nqueue_url_env = \"postgres://x\"\n[artifacts]\nremote = \"/r.git\"\n",
        )
        .unwrap_err();
        assert_eq!(e.key, "server.queue_url_env", "{e}");
    }

    #[test]
    fn the_queue_url_comes_from_its_variable_and_its_value_is_never_in_an_error() {
        let c = parse(
            "[server]\nqueue = \"postgres\"\nqueue_url_env = \"AUGER_CONFIG_TEST_QUEUE_URL\"\n[artifacts]\nremote = \"/r.git\"\n",
        )
        .unwrap();
        let holding = |value: &'static str| {
            move |var: &str| (var == "AUGER_CONFIG_TEST_QUEUE_URL").then(|| value.to_owned())
        };
        let e = c.queue_url_from(|_| None).unwrap_err();
        assert_eq!(e.key, "server.queue_url_env");
        assert!(
            e.message.contains("AUGER_CONFIG_TEST_QUEUE_URL is not set"),
            "{e}"
        );
        let e = c.queue_url_from(holding("mysql://u:hunter2@db")).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert_eq!(
            c.queue_url_from(holding("postgres://u:hunter2@db/auger"))
                .unwrap()
                .as_deref(),
            Some("postgres://u:hunter2@db/auger")
        );
        assert_eq!(parse("").unwrap().queue_url().unwrap(), None);
    }

    #[test]
    fn the_reconcile_interval_defaults_to_a_minute_and_takes_humantime() {
        assert_eq!(
            parse("").unwrap().server.reconcile_interval,
            DEFAULT_RECONCILE_INTERVAL
        );
        let c = parse("[server]\nreconcile_interval = \"30s\"\n").unwrap();
        assert_eq!(c.server.reconcile_interval, std::time::Duration::from_secs(30));
    }

    #[test]
    fn a_bot_login_is_taken_when_it_is_a_login() {
        let c = parse("[github]\ntoken_env = \"T\"\nbot_login = \"auger[bot]\"\n").unwrap();
        assert_eq!(c.github.bot_login.as_deref(), Some("auger[bot]"));
        assert_eq!(parse("").unwrap().github.bot_login, None);
        for bad in ["", "a b", "x/y"] {
            let e = parse(&format!("[github]\nbot_login = \"{bad}\"\n")).unwrap_err();
            assert_eq!(e.key, "github.bot_login", "{bad}: {e}");
        }
    }

    #[test]
    fn a_reconcile_interval_that_is_no_duration_or_too_short_names_the_key() {
        for bad in ["soon", "100ms", "60"] {
            let e = parse(&format!("[server]\nreconcile_interval = \"{bad}\"\n")).unwrap_err();
            assert_eq!(e.key, "server.reconcile_interval", "{bad}: {e}");
        }
    }

    #[test]
    fn unknown_key_names_the_section() {
        let e = parse("[server]\nlisten = \"127.0.0.1:1\"\nport = 3\n").unwrap_err();
        assert_eq!(e.key, "server.port");
        assert!(e.message.contains("unknown field `port`"), "{e}");
        assert!(
            e.to_string().starts_with("/etc/auger/auger.toml: server.port: "),
            "{e}"
        );
    }

    #[test]
    fn wrong_type_names_the_key() {
        let e = parse("[github]\napp_id = \"twelve\"\n").unwrap_err();
        assert_eq!(e.key, "github.app_id");
    }

    #[test]
    fn syntax_error_is_reported() {
        let e = parse("[server\n").unwrap_err();
        assert_eq!(e.key, "");
        assert!(!e.message.is_empty());
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases = [
            ("[server]\nlisten = \"localhost\"\n", "server.listen"),
            ("[server]\ndata_dir = \" \"\n", "server.data_dir"),
            ("[github]\napi_url = \"ftp://x\"\n", "github.api_url"),
            (
                "[github]\nwebhook_secret_env = \"s3cr3t value!\"\n",
                "github.webhook_secret_env",
            ),
            ("[github]\napp_id = 1\n", "github.private_key_file"),
            ("[github]\nprivate_key_file = \"k.pem\"\n", "github.app_id"),
            (
                "[github]\napp_id = 1\nprivate_key_file = \"k.pem\"\ntoken_env = \"T\"\n",
                "github.token_env",
            ),
            (
                "[gitops]\nrepo = \"../etc\"\nurl = \"file:///x\"\n",
                "gitops.repo",
            ),
            ("[gitops]\nrepo = \"a/b\"\nurl = \"\"\n", "gitops.url"),
            (
                "[gitops]\nrepo = \"a/b\"\nurl = \"file:///x\"\nbranch = \"a..b\"\n",
                "gitops.branch",
            ),
            (
                "[gitops]\nrepo = \"a/b\"\nurl = \"file:///x\"\n[gitops.repos.\"a/c\"]\nurl = \" \"\n",
                "gitops.repos.\"a/c\".url",
            ),
            (
                "[gitops]\nrepo = \"a/b\"\nurl = \"file:///x\"\n[gitops.repos.\"a/c\"]\nurl = \"file:///c\"\nbranch = \"x..y\"\n",
                "gitops.repos.\"a/c\".branch",
            ),
            (
                "[gitops]\nrepo = \"a/b\"\nurl = \"file:///x\"\n[gitops.repos.\"not a repo\"]\nurl = \"file:///c\"\n",
                "gitops.repos.\"not a repo\"",
            ),
            (
                "[gitops]\nrepo = \"a/b\"\nurl = \"file:///x\"\n[gitops.repos.\"A/B\"]\nurl = \"file:///c\"\n",
                "gitops.repos.\"A/B\"",
            ),
            ("[api]\ntokens_env = \"\"\n", "api.tokens_env"),
            ("[paths]\npolicies = \"\"\n", "paths.policies"),
        ];
        for (text, key) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.key, key, "{text:?} → {e}");
        }
    }

    #[test]
    fn missing_secret_names_the_variable_but_never_a_value() {
        let c = parse("[github]\nwebhook_secret_env = \"AUGER_TEST_UNSET_SECRET_1\"\n").unwrap();
        let e = c.webhook_secrets().unwrap_err();
        assert_eq!(e.key, "github.webhook_secret_env");
        assert!(e.message.contains("AUGER_TEST_UNSET_SECRET_1"));
    }

    #[test]
    fn verify_names_the_report_secrets_variables_or_nothing() {
        let c = parse("").unwrap();
        assert_eq!(c.verify.flux_secret_env, None);
        assert_eq!(c.flux_secrets().unwrap(), None, "no key: the route is off");
        assert_eq!(c.argocd_tokens().unwrap(), None);
        let c = parse(
            "[verify]\nflux_secret_env = \"AUGER_TEST_UNSET_FLUX_1\"\nargocd_token_env = \"AUGER_TEST_UNSET_ARGO_1\"\n",
        )
        .unwrap();
        assert_eq!(
            c.verify.flux_secret_env.as_deref(),
            Some("AUGER_TEST_UNSET_FLUX_1")
        );
        let e = c.flux_secrets().unwrap_err();
        assert_eq!(e.key, "verify.flux_secret_env");
        assert!(e.message.contains("AUGER_TEST_UNSET_FLUX_1"), "{e}");
        assert_eq!(c.argocd_tokens().unwrap_err().key, "verify.argocd_token_env");
        for (text, key) in [
            (
                "[verify]\nflux_secret_env = \"not a var\"\n",
                "verify.flux_secret_env",
            ),
            ("[verify]\nargocd_token_env = \"\"\n", "verify.argocd_token_env"),
            ("[verify]\nflux_secret = \"X\"\n", "verify.flux_secret"),
        ] {
            assert_eq!(parse(text).unwrap_err().key, key, "{text}");
        }
    }

    #[test]
    fn the_dashboard_logs_in_only_with_a_client_id_and_its_secret() {
        let c = parse("").unwrap();
        assert!(c.dashboard.is_none(), "read-only by default");
        assert!(c.dashboard_secrets().unwrap().is_none());
        let c = parse(
            "[dashboard]\noauth_client_id = \"Iv1.abc\"\noauth_client_secret_env = \"AUGER_TEST_UNSET_OAUTH_1\"\ngithub_url = \"https://ghe.example.com/\"\n",
        )
        .unwrap();
        let d = c.dashboard.as_ref().unwrap();
        assert_eq!(d.oauth_client_id, "Iv1.abc");
        assert_eq!(d.github_url, "https://ghe.example.com");
        assert_eq!(d.url, None);
        let e = c.dashboard_secrets().err().unwrap();
        assert_eq!(e.key, "dashboard.oauth_client_secret_env");
        assert!(e.message.contains("AUGER_TEST_UNSET_OAUTH_1"), "{e}");
        let d = parse("[dashboard]\noauth_client_id = \"x\"\n")
            .unwrap()
            .dashboard
            .unwrap();
        assert_eq!(d.oauth_client_secret_env, DEFAULT_OAUTH_SECRET_ENV);
        assert_eq!(d.github_url, "https://github.com");
        for (text, key) in [
            (
                "[dashboard]\noauth_client_secret_env = \"X\"\n",
                "dashboard.oauth_client_secret_env",
            ),
            ("[dashboard]\nurl = \"https://a\"\n", "dashboard.url"),
            (
                "[dashboard]\noauth_client_id = \"a b\"\n",
                "dashboard.oauth_client_id",
            ),
            (
                "[dashboard]\noauth_client_id = \"x\"\nurl = \"auger.example.com\"\n",
                "dashboard.url",
            ),
            (
                "[dashboard]\noauth_client_id = \"x\"\nsession_key_env = \"not a var\"\n",
                "dashboard.session_key_env",
            ),
            ("[dashboard]\noauth_client = \"x\"\n", "dashboard.oauth_client"),
        ] {
            assert_eq!(parse(text).unwrap_err().key, key, "{text}");
        }
    }

    #[test]
    fn notify_routes_parse_with_envs_apps_and_one_destination() {
        let c = parse(
            "[notify]\nslack_webhook_env = \"SLACK_ALL\"\n\
             [[notify.route]]\nenvs = [\"production\"]\napps = [\"web\"]\nslack_webhook_env = \"SLACK_PROD_WEB\"\n\
             [[notify.route]]\nenvs = [\"staging\"]\nwebhook_url_env = \"HOOK_STAGING\"\n",
        )
        .unwrap();
        assert_eq!(c.slack_webhook_env.as_deref(), Some("SLACK_ALL"));
        assert_eq!(c.notify_routes.len(), 2);
        let first = &c.notify_routes[0];
        assert_eq!(first.kind, HookKind::Slack);
        assert_eq!(first.var, "SLACK_PROD_WEB");
        assert_eq!(
            first.envs.as_deref(),
            Some(&[EnvName::new("production").unwrap()][..])
        );
        assert_eq!(first.apps.as_deref(), Some(&[AppName::new("web").unwrap()][..]));
        let second = &c.notify_routes[1];
        assert_eq!((second.kind, second.apps.is_none()), (HookKind::Webhook, true));
        assert!(parse("").unwrap().notify_routes.is_empty());
    }

    #[test]
    fn a_bad_notify_route_names_its_key() {
        for (route, key) in [
            ("envs = [\"production\"]\n", "notify.route[0]"),
            (
                "slack_webhook_env = \"A\"\nwebhook_url_env = \"B\"\n",
                "notify.route[0]",
            ),
            (
                "webhook_url_env = \"https://hooks\"\n",
                "notify.route[0].webhook_url_env",
            ),
            (
                "slack_webhook_env = \"A\"\nenvs = [\"Prod\"]\n",
                "notify.route[0].envs",
            ),
            ("slack_webhook_env = \"A\"\napps = []\n", "notify.route[0].apps"),
            (
                "slack_webhook_env = \"A\"\nchannel = \"#x\"\n",
                "notify.route[0].channel",
            ),
        ] {
            let e = parse(&format!("[[notify.route]]\n{route}")).unwrap_err();
            assert_eq!(e.key, key, "{route} → {e}");
            assert!(e.to_string().starts_with("/etc/auger/auger.toml: "), "{e}");
        }
    }

    #[test]
    fn missing_file_names_it() {
        let e = Config::load(Path::new("/nonexistent/auger.toml")).unwrap_err();
        assert!(
            e.to_string().starts_with("/nonexistent/auger.toml: cannot read"),
            "{e}"
        );
    }

    #[test]
    fn scoped_api_tokens_parse_with_verbs_and_apps() {
        let specs =
            parse_api_tokens("ci:secret:artifacts:write@web,api;ops:secret2:*; ro:s3:read ;").unwrap();
        let got: Vec<(&str, &str, ApiVerb, Option<Vec<&str>>)> = specs
            .iter()
            .map(|s| {
                let apps = s.apps.as_ref().map(|a| a.iter().map(|a| a.as_str()).collect());
                (s.name.as_str(), s.secret.as_str(), s.verb, apps)
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("ci", "secret", ApiVerb::ArtifactsWrite, Some(vec!["web", "api"])),
                ("ops", "secret2", ApiVerb::All, None),
                ("ro", "s3", ApiVerb::Read, None),
            ]
        );
        // One scoped entry without a `;` is still scoped.
        let one = parse_api_tokens("ci:secret:releases:write@web").unwrap();
        assert_eq!(one[0].verb, ApiVerb::ReleasesWrite);
        // The same token under several entries: one verb each.
        let two = parse_api_tokens("ci:s:read;ci:s:releases:write").unwrap();
        assert_eq!(two.len(), 2);
    }

    #[test]
    fn old_comma_separated_api_tokens_still_mean_everything() {
        let specs = parse_api_tokens("ci:test-token, bare-token").unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!(
            (specs[0].name.as_str(), specs[0].secret.as_str()),
            ("ci", "test-token")
        );
        assert_eq!(
            (specs[1].name.as_str(), specs[1].secret.as_str()),
            ("token-2", "bare-token")
        );
        assert!(specs.iter().all(|s| s.verb == ApiVerb::All && s.apps.is_none()));
    }

    #[test]
    fn malformed_api_tokens_name_the_entry_and_never_the_secret() {
        for (value, want) in [
            ("ci:hunter2:write", "entry 1 (ci): the verb"),
            ("ok:s1:read;ci:hunter2:read@", "entry 2 (ci): app 1 after '@'"),
            ("ci:hunter2:read@web,../x", "entry 1 (ci): app 2 after '@'"),
            ("ci:s1:read;hunter2", "entry 2: expected name:secret:verb"),
            ("c i:hunter2:read;", "entry 1: the name"),
            ("ci::read;x:y:read", "entry 1 (ci): the secret is empty"),
            (
                "a:hunter2:read;b:hunter2:*",
                "entry 2 (b): it has the secret of the entry named a",
            ),
            (";;", "no entries"),
        ] {
            let e = parse_api_tokens(value).unwrap_err();
            assert!(e.contains(want), "{value}: {e}");
            assert!(!e.contains("hunter2"), "{value}: the secret leaked: {e}");
        }
        let unset = parse("[api]\ntokens_env = \"AUGER_TEST_UNSET_TOKENS_1\"\n").unwrap();
        assert_eq!(unset.api_tokens().unwrap(), None);
    }
}
