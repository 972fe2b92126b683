//! Notifications (design §6, the last link after the forge): commit statuses `auger/<env>`,
//! GitHub Deployments, and messages to Slack and generic webhooks, routed per env and app
//! (design §17: `[[notify.route]]`; the old single `[notify] slack_webhook_env` is a route
//! that takes everything).
//!
//! Nothing here may fail or delay a release. Every [`Notifier`] method returns no error:
//! problems are logged with `tracing::warn!` and counted in [`NotifyStats`]. GitHub calls go
//! through the [`Forge`] (which already retries idempotent calls); webhook POSTs run on a
//! background task with a 2 s timeout and one retry. A missing forge or URL skips that
//! channel.
//!
//! The caller keeps the GitHub deployment id between events: [`Notifier::release_pending`]
//! returns it, and later events take it back in [`ReleaseEvent::deployment_id`].

pub mod reply;
mod slack;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::artifact::{Artifact, ArtifactId};
use crate::config::{HookKind, NotifyRoute};
use crate::domain::{AppName, CommitSha, EnvName, RepoName};
use crate::forge::{
    CommitState, DeploymentId, DeploymentState, DeploymentStatusUpdate, Forge, ForgeError, NewDeployment,
    StatusUpdate,
};

pub use reply::{ReplyRef, ReplyText, answer_marker, render_reply};
pub use slack::{escape_json_fragment, escape_mrkdwn};

/// Slack and webhooks must not hold anything up: a short timeout per attempt (design: 2 s).
pub const SLACK_TIMEOUT: Duration = Duration::from_secs(2);

/// GitHub cuts status descriptions at 140 characters.
const STATUS_DESCRIPTION_MAX: usize = 140;

/// How many older deployments of an environment a success marks inactive. Older ones were
/// already marked by the successes before them; the bound keeps one release to a few calls.
const INACTIVATE_LIMIT: usize = 10;

/// The templates shipped in the binary; a template folder may override any of them.
const DEFAULT_TEMPLATES: [(&str, &str); 5] = [
    (
        "slack_release.json.tera",
        include_str!("../../templates/notify/slack_release.json.tera"),
    ),
    (
        "slack_rollback.json.tera",
        include_str!("../../templates/notify/slack_rollback.json.tera"),
    ),
    (
        "slack_failure.json.tera",
        include_str!("../../templates/notify/slack_failure.json.tera"),
    ),
    (
        "slack_preview.json.tera",
        include_str!("../../templates/notify/slack_preview.json.tera"),
    ),
    (
        "slack_preview_removed.json.tera",
        include_str!("../../templates/notify/slack_preview_removed.json.tera"),
    ),
];

/// The plain-text sentence of a generic webhook's `message` (a template folder may override it).
const WEBHOOK_MESSAGE: (&str, &str) = (
    "webhook_message.txt.tera",
    include_str!("../../templates/notify/webhook_message.txt.tera"),
);

/// What a message announces: the Slack template, and the `event` and `state` of the generic
/// webhook's body.
#[derive(Debug, Clone, Copy)]
struct Announcement {
    template: &'static str,
    event: &'static str,
    state: &'static str,
}

/// A destination and the envs and apps whose messages it takes (`None`: every one).
#[derive(Debug)]
struct Route {
    envs: Option<Vec<EnvName>>,
    apps: Option<Vec<AppName>>,
    kind: HookKind,
    sender: slack::SlackSender,
}

impl Route {
    /// Whether the route takes `ev`: its env and app are listed (or the lists left out). A
    /// preview instance `<app>-pr-<n>` counts as its app.
    fn takes(&self, ev: &ReleaseEvent) -> bool {
        let app_listed = |a: &AppName| {
            *a == ev.app
                || (ev.transient
                    && ev
                        .app
                        .as_str()
                        .strip_prefix(a.as_str())
                        .and_then(|rest| rest.strip_prefix("-pr-"))
                        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())))
        };
        self.envs.as_ref().is_none_or(|e| e.contains(&ev.env))
            && self.apps.as_ref().is_none_or(|a| a.iter().any(app_listed))
    }
}

/// One release as the notifier sees it. Built by the release loop; `deployment_id` is the
/// value [`Notifier::release_pending`] returned, carried to the later events.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseEvent {
    /// The app (or preview instance) released.
    pub app: AppName,
    pub env: EnvName,
    pub artifact: ArtifactId,
    /// The source repository and commit: statuses and deployments are put there.
    pub repo: RepoName,
    pub sha: CommitSha,
    /// The source commit's message (user-controlled: escaped before it reaches Slack).
    pub commit_message: Option<String>,
    /// Who or what asked for the release, for humans (`Trigger`'s display form).
    pub trigger: String,
    /// The gitops release commit, once there is one.
    pub gitops_commit_url: Option<String>,
    pub gitops_sha: Option<CommitSha>,
    /// Where the released environment can be opened.
    pub environment_url: Option<String>,
    /// A preview: GitHub shows transient environments as temporary.
    pub transient: bool,
    pub deployment_id: Option<DeploymentId>,
}

impl ReleaseEvent {
    /// An event for `artifact` going to `env`, with the optional fields empty.
    pub fn for_artifact(artifact: &Artifact, env: EnvName, trigger: impl Into<String>) -> ReleaseEvent {
        ReleaseEvent {
            app: artifact.app.clone(),
            env,
            artifact: artifact.id.clone(),
            repo: artifact.repo.clone(),
            sha: artifact.sha.clone(),
            commit_message: artifact.message.clone(),
            trigger: trigger.into(),
            gitops_commit_url: None,
            gitops_sha: None,
            environment_url: None,
            transient: false,
            deployment_id: None,
        }
    }

    fn context(&self) -> String {
        format!("auger/{}", self.env)
    }

    fn is_production(&self) -> bool {
        self.env.as_str() == "production"
    }

    /// The GitHub environment of its deployments. Each preview (`transient`) has its own,
    /// `<preview env>/<instance>`, so marking one pull request's older deployments inactive
    /// never switches off another's live preview.
    fn deployment_environment(&self) -> String {
        if self.transient {
            format!("{}/{}", self.env, self.app)
        } else {
            self.env.to_string()
        }
    }
}

/// How a failed release is reported on the commit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The release was refused or its rollout failed (`failure`).
    Failed,
    /// auger itself could not complete it (`error`).
    Error,
}

/// The notification channels, for counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Channel {
    Status,
    Deployment,
    Slack,
    /// Generic JSON webhooks (`[[notify.route]] webhook_url_env`).
    Webhook,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Status => "status",
            Channel::Deployment => "deployment",
            Channel::Slack => "slack",
            Channel::Webhook => "webhook",
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    sent: [AtomicU64; 4],
    failed: [AtomicU64; 4],
}

impl Counters {
    fn index(channel: Channel) -> usize {
        match channel {
            Channel::Status => 0,
            Channel::Deployment => 1,
            Channel::Slack => 2,
            Channel::Webhook => 3,
        }
    }
    pub(crate) fn sent(&self, channel: Channel) {
        self.sent[Self::index(channel)].fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn failed(&self, channel: Channel) {
        self.failed[Self::index(channel)].fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts of notifications sent and failed, by channel (for `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelStats {
    pub sent: u64,
    pub failed: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NotifyStats {
    pub status: ChannelStats,
    pub deployment: ChannelStats,
    pub slack: ChannelStats,
    pub webhook: ChannelStats,
}

impl NotifyStats {
    pub fn channel(&self, channel: Channel) -> ChannelStats {
        match channel {
            Channel::Status => self.status,
            Channel::Deployment => self.deployment,
            Channel::Slack => self.slack,
            Channel::Webhook => self.webhook,
        }
    }

    /// Prometheus text lines `auger_notifications_total{channel,result}`.
    pub fn render_prometheus(&self) -> String {
        let mut out = String::from(
            "# HELP auger_notifications_total Notifications by channel and result.\n\
             # TYPE auger_notifications_total counter\n",
        );
        for ch in [
            Channel::Status,
            Channel::Deployment,
            Channel::Slack,
            Channel::Webhook,
        ] {
            let s = self.channel(ch);
            for (result, n) in [("sent", s.sent), ("failed", s.failed)] {
                out.push_str(&format!(
                    "auger_notifications_total{{channel=\"{}\",result=\"{result}\"}} {n}\n",
                    ch.as_str()
                ));
            }
        }
        out
    }
}

/// A template folder that cannot be used (a startup problem, reported once).
#[derive(Debug, thiserror::Error)]
#[error("notification templates in {dir}: {message}")]
pub struct TemplateError {
    pub dir: String,
    pub message: String,
}

/// Sends release notifications to GitHub, Slack and webhooks. Cheap to share behind an `Arc`.
pub struct Notifier {
    forge: Option<Arc<dyn Forge>>,
    /// Every matching route gets a message, in the configuration's order.
    routes: Vec<Route>,
    tera: tera::Tera,
    counters: Arc<Counters>,
    slack_in_flight: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("forge", &self.forge.is_some())
            .field("routes", &self.routes.len())
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// `slack_webhook_url` is the secret URL (read from the env var the config names); an
    /// empty one counts as none. It takes the messages of every env and app. Uses the built-in
    /// templates.
    pub fn new(forge: Option<Arc<dyn Forge>>, slack_webhook_url: Option<String>) -> Notifier {
        let mut n = Notifier {
            forge,
            routes: Vec::new(),
            tera: default_tera(),
            counters: Arc::new(Counters::default()),
            slack_in_flight: Arc::new(AtomicUsize::new(0)),
        };
        if let Some(url) = slack_webhook_url.filter(|u| !u.trim().is_empty()) {
            n.add_route(None, None, HookKind::Slack, url);
        }
        n
    }

    /// Adds the `[[notify.route]]`s, each with the URL its variable holds, after the
    /// catch-all Slack webhook of [`Notifier::new`].
    pub fn with_routes(mut self, routes: impl IntoIterator<Item = (NotifyRoute, String)>) -> Notifier {
        for (r, url) in routes {
            self.add_route(r.envs, r.apps, r.kind, url);
        }
        self
    }

    fn add_route(
        &mut self,
        envs: Option<Vec<EnvName>>,
        apps: Option<Vec<AppName>>,
        kind: HookKind,
        url: String,
    ) {
        let channel = match kind {
            HookKind::Slack => Channel::Slack,
            HookKind::Webhook => Channel::Webhook,
        };
        let sender = slack::SlackSender::new(
            url,
            channel,
            SLACK_TIMEOUT,
            self.counters.clone(),
            self.slack_in_flight.clone(),
        );
        if let Some(sender) = sender {
            self.routes.push(Route {
                envs,
                apps,
                kind,
                sender,
            });
        }
    }

    /// Overrides built-in templates with the `*.tera` files of `dir` (same names). Every
    /// template is checked at load, so a broken one is found at startup, not at release time.
    pub fn with_template_dir(mut self, dir: &Path) -> Result<Notifier, TemplateError> {
        let err = |message: String| TemplateError {
            dir: dir.display().to_string(),
            message,
        };
        let entries = std::fs::read_dir(dir).map_err(|e| err(e.to_string()))?;
        let mut overrides = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| err(e.to_string()))?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !name.ends_with(".tera") || !path.is_file() {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(|e| err(format!("{name}: {e}")))?;
            overrides.push((name.to_owned(), text));
        }
        self.tera
            .add_raw_templates(overrides)
            .map_err(|e| err(tera_error_text(&e)))?;
        Ok(self)
    }

    /// Counts so far.
    pub fn stats(&self) -> NotifyStats {
        let c = &self.counters;
        let get = |ch: Channel| ChannelStats {
            sent: c.sent[Counters::index(ch)].load(Ordering::Relaxed),
            failed: c.failed[Counters::index(ch)].load(Ordering::Relaxed),
        };
        NotifyStats {
            status: get(Channel::Status),
            deployment: get(Channel::Deployment),
            slack: get(Channel::Slack),
            webhook: get(Channel::Webhook),
        }
    }

    /// Waits until no Slack or webhook message is being sent, at most `timeout`; `true` when idle. For
    /// graceful shutdown and tests; releases never wait for it.
    pub async fn slack_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.slack_in_flight.load(Ordering::SeqCst) == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A release PR is open and waits for approval: status pending, a deployment created and
    /// `queued`. Returns the deployment id to keep for the later events (`None` when there is
    /// no forge or GitHub refused).
    pub async fn release_pending(&self, ev: &ReleaseEvent) -> Option<DeploymentId> {
        self.status(
            ev,
            CommitState::Pending,
            format!("{} waiting for approval", ev.artifact),
        )
        .await;
        let id = self.ensure_deployment(ev).await?;
        self.deployment_status(ev, id, DeploymentState::Queued, None, "waiting for approval")
            .await;
        Some(id)
    }

    /// The release is being applied: status pending, deployment `in_progress`.
    pub async fn release_in_progress(&self, ev: &ReleaseEvent) -> Option<DeploymentId> {
        self.status(ev, CommitState::Pending, format!("releasing {}", ev.artifact))
            .await;
        let id = self.ensure_deployment(ev).await?;
        self.deployment_status(ev, id, DeploymentState::InProgress, None, "releasing")
            .await;
        Some(id)
    }

    /// The release is live: status success, deployment `success` (with the environment URL),
    /// older deployments of the environment `inactive`, and a Slack message. `true` when
    /// GitHub took the status and the deployment's.
    pub async fn release_succeeded(&self, ev: &ReleaseEvent) -> bool {
        let what = if ev.transient {
            Announcement {
                template: "slack_preview.json.tera",
                event: "preview_deployed",
                state: "success",
            }
        } else {
            Announcement {
                template: "slack_release.json.tera",
                event: "released",
                state: "success",
            }
        };
        self.announce(what, ev, &[]);
        self.succeeded(ev, format!("released {}", ev.artifact)).await
    }

    /// A rollback is live: like [`Self::release_succeeded`], with its own Slack message.
    /// `from` is the artifact that was replaced, when known.
    pub async fn rollback(&self, ev: &ReleaseEvent, from: Option<&ArtifactId>) -> bool {
        let from = from.map(|a| a.to_string()).unwrap_or_default();
        let what = Announcement {
            template: "slack_rollback.json.tera",
            event: "rolled_back",
            state: "success",
        };
        self.announce(what, ev, &[("rollback_from", from.as_str())]);
        self.succeeded(ev, format!("rolled back to {}", ev.artifact))
            .await
    }

    /// The release failed (`reason` is shown to humans): status failure or error, deployment
    /// `failure` or `error`, and a Slack message. `true` when GitHub took the statuses.
    pub async fn release_failed(&self, ev: &ReleaseEvent, kind: FailureKind, reason: &str) -> bool {
        let what = Announcement {
            template: "slack_failure.json.tera",
            event: "failed",
            state: match kind {
                FailureKind::Failed => "failure",
                FailureKind::Error => "error",
            },
        };
        self.announce(what, ev, &[("reason", reason)]);
        let (state, dstate) = match kind {
            FailureKind::Failed => (CommitState::Failure, DeploymentState::Failure),
            FailureKind::Error => (CommitState::Error, DeploymentState::Error),
        };
        let status = self.status(ev, state, format!("{}: {reason}", ev.artifact)).await;
        // No deployment to close when none was created: do not open one just to fail it.
        let deployment = match ev.deployment_id {
            Some(id) => self.deployment_status(ev, id, dstate, None, reason).await,
            None => true,
        };
        status && deployment
    }

    /// A release waits for another try (a GitHub fault, a busy gitops branch): its status
    /// stays pending and says why.
    pub async fn release_waiting(&self, ev: &ReleaseEvent, reason: &str) {
        self.status(ev, CommitState::Pending, format!("{}: {reason}", ev.artifact))
            .await;
    }

    /// The final success of a live release, sent again because GitHub did not take it the
    /// first time (no second Slack message). `true` when it went through.
    pub async fn success_again(&self, ev: &ReleaseEvent, rollback: bool, verified: bool) -> bool {
        let description = match (rollback, verified) {
            (true, false) => format!("rolled back to {}", ev.artifact),
            (true, true) => format!("rolled back to {}, verified", ev.artifact),
            (false, false) => format!("released {}", ev.artifact),
            (false, true) => format!("verified {}", ev.artifact),
        };
        self.succeeded(ev, description).await
    }

    /// A merged release the cluster has not verified yet (design §15): status pending with
    /// `detail` ("applying …"), deployment `in_progress`. Returns the deployment.
    pub async fn release_applying(&self, ev: &ReleaseEvent, detail: &str) -> Option<DeploymentId> {
        self.status(ev, CommitState::Pending, format!("{}: {detail}", ev.artifact))
            .await;
        let id = self.ensure_deployment(ev).await?;
        self.deployment_status(ev, id, DeploymentState::InProgress, None, detail)
            .await;
        Some(id)
    }

    /// The cluster reports the release healthy: its deployment succeeds (the commit status
    /// waits for the soak). `true` when GitHub took it.
    pub async fn release_healthy(&self, ev: &ReleaseEvent) -> bool {
        let Some(id) = self.ensure_deployment(ev).await else {
            return self.forge.is_none();
        };
        let ok = self
            .deployment_status(
                ev,
                id,
                DeploymentState::Success,
                ev.environment_url.clone(),
                "healthy",
            )
            .await;
        if ev.is_production() {
            self.inactivate_others(ev, Some(id), "superseded").await;
        }
        ok
    }

    /// The release is verified (healthy for the soak): status success and the Slack message.
    /// `true` when GitHub took the status.
    pub async fn release_verified(
        &self,
        ev: &ReleaseEvent,
        rollback: bool,
        from: Option<&ArtifactId>,
    ) -> bool {
        let from = from.map(|a| a.to_string()).unwrap_or_default();
        if rollback {
            let what = Announcement {
                template: "slack_rollback.json.tera",
                event: "rolled_back",
                state: "verified",
            };
            self.announce(what, ev, &[("rollback_from", from.as_str()), ("verified", "yes")]);
        } else {
            let what = Announcement {
                template: "slack_release.json.tera",
                event: "verified",
                state: "verified",
            };
            self.announce(what, ev, &[("verified", "yes")]);
        }
        let description = if rollback {
            format!("rolled back to {}, verified", ev.artifact)
        } else {
            format!("verified {}", ev.artifact)
        };
        self.status(ev, CommitState::Success, description).await
    }

    /// A newer artifact took over the release pull request this one waited in: its status
    /// becomes final (`error`, "superseded by …") instead of staying pending, and its
    /// deployment, if it has one, `inactive`.
    pub async fn release_superseded(&self, ev: &ReleaseEvent, by: &ArtifactId) -> bool {
        let description = format!("superseded by {by}");
        let status = self.status(ev, CommitState::Error, description.clone()).await;
        let deployment = match ev.deployment_id {
            Some(id) => {
                self.deployment_status(ev, id, DeploymentState::Inactive, None, &description)
                    .await
            }
            None => true,
        };
        status && deployment
    }

    /// A preview environment was torn down: its deployments become `inactive`. Without a
    /// known id, every recent deployment of the environment is marked.
    pub async fn preview_removed(&self, ev: &ReleaseEvent) {
        let what = Announcement {
            template: "slack_preview_removed.json.tera",
            event: "preview_removed",
            state: "inactive",
        };
        self.announce(what, ev, &[]);
        match ev.deployment_id {
            Some(id) => {
                self.deployment_status(ev, id, DeploymentState::Inactive, None, "preview removed")
                    .await;
            }
            None => self.inactivate_others(ev, None, "preview removed").await,
        }
    }

    /// Status success and deployment `success`; `true` when GitHub took both. GitHub marks the
    /// environment's older deployments inactive itself (`auto_inactive`), except production
    /// and transient ones, which auger marks (tidying, not part of the answer).
    async fn succeeded(&self, ev: &ReleaseEvent, description: String) -> bool {
        let status = self.status(ev, CommitState::Success, description).await;
        if self.forge.is_none() {
            return true;
        }
        let Some(id) = self.ensure_deployment(ev).await else {
            return false;
        };
        let deployment = self
            .deployment_status(
                ev,
                id,
                DeploymentState::Success,
                ev.environment_url.clone(),
                "released",
            )
            .await;
        if ev.is_production() || ev.transient {
            self.inactivate_others(ev, Some(id), "superseded").await;
        }
        status && deployment
    }

    /// `true` when GitHub took it (or there is no GitHub to tell).
    async fn status(&self, ev: &ReleaseEvent, state: CommitState, description: String) -> bool {
        let Some(forge) = &self.forge else { return true };
        let update = StatusUpdate {
            state,
            context: ev.context(),
            description: Some(truncate(&description, STATUS_DESCRIPTION_MAX)),
            target_url: ev.gitops_commit_url.clone(),
        };
        match forge.set_status(&ev.repo, &ev.sha, &update).await {
            Ok(()) => {
                self.counters.sent(Channel::Status);
                true
            }
            Err(e) => {
                self.counters.failed(Channel::Status);
                tracing::warn!(repo = %ev.repo, sha = %ev.sha, context = %update.context, state = state.as_str(), error = %e, "cannot set commit status");
                false
            }
        }
    }

    /// The event's deployment, created when the caller has none yet.
    async fn ensure_deployment(&self, ev: &ReleaseEvent) -> Option<DeploymentId> {
        if let Some(id) = ev.deployment_id {
            return Some(id);
        }
        let forge = self.forge.as_ref()?;
        let new = NewDeployment {
            sha: ev.sha.clone(),
            environment: ev.deployment_environment(),
            description: Some(ev.artifact.to_string()),
            transient: ev.transient,
            production: ev.is_production(),
            payload: serde_json::json!({
                "auger": { "app": ev.app.as_str(), "artifact": ev.artifact.to_string() }
            }),
        };
        match forge.create_deployment(&ev.repo, &new).await {
            Ok(id) => {
                self.counters.sent(Channel::Deployment);
                Some(id)
            }
            Err(e) => {
                self.counters.failed(Channel::Deployment);
                tracing::warn!(repo = %ev.repo, env = %ev.env, error = %e, "cannot create deployment");
                if matches!(e, ForgeError::OutcomeUnknown { .. }) {
                    // The create was not repeated (it is not idempotent); GitHub may still
                    // have made it, so look for it rather than leave it dangling.
                    return self.find_deployment(forge.as_ref(), ev).await;
                }
                None
            }
        }
    }

    /// Edits a command reply (best effort, like every notification).
    pub async fn reply(&self, to: &ReplyRef, body: &str) {
        let Some(forge) = &self.forge else { return };
        let body = format!("{body}\n\n{}", answer_marker(to.answers));
        if let Err(e) = forge.update_comment(&to.repo, to.comment, &body).await {
            tracing::warn!(repo = %to.repo, comment = %to.comment, error = %e, "cannot update a command reply");
        }
    }

    /// The deployment already made for this release (same environment, commit and
    /// artifact), so a later event of the same release does not open a second one.
    pub async fn existing_deployment(&self, ev: &ReleaseEvent) -> Option<DeploymentId> {
        let forge = self.forge.as_ref()?;
        self.find_deployment(forge.as_ref(), ev).await
    }

    async fn find_deployment(&self, forge: &dyn Forge, ev: &ReleaseEvent) -> Option<DeploymentId> {
        let artifact = ev.artifact.to_string();
        match forge
            .list_deployments(&ev.repo, &ev.deployment_environment())
            .await
        {
            Ok(list) => list
                .into_iter()
                .find(|d| {
                    d.sha == ev.sha && d.payload["auger"]["artifact"].as_str() == Some(artifact.as_str())
                })
                .map(|d| d.id),
            Err(e) => {
                tracing::warn!(repo = %ev.repo, env = %ev.env, error = %e, "cannot list deployments");
                None
            }
        }
    }

    async fn deployment_status(
        &self,
        ev: &ReleaseEvent,
        id: DeploymentId,
        state: DeploymentState,
        environment_url: Option<String>,
        description: &str,
    ) -> bool {
        let Some(forge) = &self.forge else { return true };
        let update = DeploymentStatusUpdate {
            state,
            environment_url,
            log_url: ev.gitops_commit_url.clone(),
            description: Some(truncate(description, STATUS_DESCRIPTION_MAX)),
            auto_inactive: state == DeploymentState::Success,
        };
        match forge.set_deployment_status(&ev.repo, id, &update).await {
            Ok(()) => {
                self.counters.sent(Channel::Deployment);
                true
            }
            Err(e) => {
                self.counters.failed(Channel::Deployment);
                tracing::warn!(repo = %ev.repo, deployment = %id, state = state.as_str(), error = %e, "cannot set deployment status");
                false
            }
        }
    }

    /// Marks the environment's recent deployments other than `keep` inactive, so GitHub shows
    /// one live deployment per environment.
    async fn inactivate_others(&self, ev: &ReleaseEvent, keep: Option<DeploymentId>, description: &str) {
        let Some(forge) = &self.forge else { return };
        let list = match forge
            .list_deployments(&ev.repo, &ev.deployment_environment())
            .await
        {
            Ok(list) => list,
            Err(e) => {
                self.counters.failed(Channel::Deployment);
                tracing::warn!(repo = %ev.repo, env = %ev.env, error = %e, "cannot list deployments to mark them inactive");
                return;
            }
        };
        let others = list
            .into_iter()
            .filter(|d| Some(d.id) != keep)
            .take(INACTIVATE_LIMIT);
        for d in others {
            self.deployment_status(ev, d.id, DeploymentState::Inactive, None, description)
                .await;
        }
    }

    /// Posts `what` about `ev` in the background to every route that takes (env, app): the
    /// Slack template to Slack routes, the JSON body of [`Notifier::webhook_body`] to webhooks.
    /// Each body is rendered once, however many routes get it.
    fn announce(&self, what: Announcement, ev: &ReleaseEvent, extra: &[(&str, &str)]) {
        let mut slack: Option<Result<String, String>> = None;
        let mut webhook: Option<Result<String, String>> = None;
        for route in self.routes.iter().filter(|r| r.takes(ev)) {
            let (body, channel) = match route.kind {
                HookKind::Slack => (
                    slack.get_or_insert_with(|| self.render(what.template, ev, extra)),
                    Channel::Slack,
                ),
                HookKind::Webhook => (
                    webhook.get_or_insert_with(|| self.webhook_body(what, ev, extra).map(|v| v.to_string())),
                    Channel::Webhook,
                ),
            };
            match body {
                Ok(body) => route.sender.send(what.template, body.clone()),
                Err(message) => {
                    self.counters.failed(channel);
                    tracing::warn!(template = what.template, channel = channel.as_str(), %message, "cannot render a notification");
                }
            }
        }
    }

    /// The generic webhook's JSON body (README, "Notifications"): `event`, `app`, `env`,
    /// `artifact`, `repo`, `sha`, `state`, `trigger`, `message` (a sentence from
    /// `webhook_message.txt.tera`), `reason`, `rollback_from`, and `links` with the
    /// `gitops_commit` and `environment` URLs that are known.
    fn webhook_body(
        &self,
        what: Announcement,
        ev: &ReleaseEvent,
        extra: &[(&str, &str)],
    ) -> Result<serde_json::Value, String> {
        let get = |key: &str| {
            extra
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| truncate(v, 1000))
                .unwrap_or_default()
        };
        let mut ctx = tera::Context::new();
        ctx.insert("event", what.event);
        ctx.insert("state", what.state);
        ctx.insert("app", ev.app.as_str());
        ctx.insert("env", ev.env.as_str());
        ctx.insert("artifact", &ev.artifact.to_string());
        ctx.insert("trigger", &ev.trigger);
        ctx.insert("reason", &get("reason"));
        ctx.insert("rollback_from", &get("rollback_from"));
        let message = self
            .tera
            .render(WEBHOOK_MESSAGE.0, &ctx)
            .map_err(|e| tera_error_text(&e))?;
        let mut links = serde_json::Map::new();
        if let Some(url) = &ev.gitops_commit_url {
            links.insert("gitops_commit".into(), url.clone().into());
        }
        if let Some(url) = &ev.environment_url {
            links.insert("environment".into(), url.clone().into());
        }
        Ok(serde_json::json!({
            "event": what.event,
            "app": ev.app,
            "env": ev.env,
            "artifact": ev.artifact,
            "repo": ev.repo,
            "sha": ev.sha,
            "state": what.state,
            "trigger": ev.trigger,
            "message": message.trim(),
            "reason": get("reason"),
            "rollback_from": Some(get("rollback_from")).filter(|r| !r.is_empty()),
            "commit_message": ev.commit_message.as_deref().and_then(|m| m.lines().next()).map(|l| truncate(l, 300)),
            "links": links,
        }))
    }

    /// The Slack JSON for `template`; public so the templates can be previewed and tested.
    pub fn render(
        &self,
        template: &str,
        ev: &ReleaseEvent,
        extra: &[(&str, &str)],
    ) -> Result<String, String> {
        let mut vars: BTreeMap<&str, String> = BTreeMap::new();
        let first_line = ev
            .commit_message
            .as_deref()
            .and_then(|m| m.lines().next())
            .unwrap_or_default();
        vars.insert("app", ev.app.to_string());
        vars.insert("env", ev.env.to_string());
        vars.insert("artifact", ev.artifact.to_string());
        vars.insert("repo", ev.repo.to_string());
        vars.insert("sha", ev.sha.to_string());
        vars.insert("sha_short", ev.sha.short(12).to_owned());
        vars.insert("commit_message", truncate(first_line, 300));
        vars.insert("trigger", ev.trigger.clone());
        vars.insert("gitops_url", ev.gitops_commit_url.clone().unwrap_or_default());
        vars.insert("environment_url", ev.environment_url.clone().unwrap_or_default());
        vars.insert("reason", String::new());
        vars.insert("rollback_from", String::new());
        for (k, v) in extra {
            vars.insert(*k, truncate(v, 1000));
        }
        let mut ctx = tera::Context::new();
        for (k, v) in vars {
            // Every value is user-influenced somewhere (commit messages, reasons, logins):
            // escape for mrkdwn, then for the JSON string the template puts it in.
            ctx.insert(k, &escape_json_fragment(&escape_mrkdwn(&v)));
        }
        let text = self
            .tera
            .render(template, &ctx)
            .map_err(|e| tera_error_text(&e))?;
        // Only valid JSON goes out: a broken override template is caught here, not by Slack.
        serde_json::from_str::<serde_json::Value>(&text)
            .map_err(|e| format!("{template} did not render to JSON: {e}"))?;
        Ok(text)
    }
}

fn default_tera() -> tera::Tera {
    let mut tera = tera::Tera::default();
    // Plain-text output: Tera's HTML escaping would mangle the already escaped values.
    tera.autoescape_on(vec![]);
    if let Err(e) = tera.add_raw_templates(DEFAULT_TEMPLATES.into_iter().chain([WEBHOOK_MESSAGE])) {
        // Shipped templates are checked by the unit tests; should one break, Slack is off
        // (render fails and is counted) while statuses and deployments still work.
        tracing::warn!(error = %tera_error_text(&e), "built-in notification templates do not parse");
    }
    tera
}

/// Tera's error with its causes, which carry the useful part (line, column).
fn tera_error_text(e: &tera::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// At most `max` characters, with `…` when cut.
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> ReleaseEvent {
        ReleaseEvent {
            app: AppName::new("web").unwrap(),
            env: EnvName::new("staging").unwrap(),
            artifact: "web@0123456789ab".parse().unwrap(),
            repo: RepoName::new("acme/web").unwrap(),
            sha: CommitSha::new("0123456789abcdef0123456789abcdef01234567").unwrap(),
            commit_message: Some("Fix \"quotes\" <!channel> & <script>\nsecond line".into()),
            trigger: "command @alice".into(),
            gitops_commit_url: Some("https://example.test/c?a=1&b=2".into()),
            gitops_sha: None,
            environment_url: Some("https://staging.example.test".into()),
            transient: false,
            deployment_id: None,
        }
    }

    #[test]
    fn every_built_in_template_renders_valid_slack_json() {
        let n = Notifier::new(None, None);
        for (name, _) in DEFAULT_TEMPLATES {
            let text = n
                .render(
                    name,
                    &event(),
                    &[("reason", "boom <x>"), ("rollback_from", "web@aaaaaaa")],
                )
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            let t = v["text"].as_str().unwrap();
            assert!(t.contains("web") && t.contains("staging"), "{name}: {t}");
            assert!(v["blocks"].is_array(), "{name}");
            assert!(
                !text.contains("<!channel>") && !text.contains("<script>"),
                "{name}: {text}"
            );
        }
    }

    #[test]
    fn the_release_message_escapes_the_commit_message_and_keeps_links() {
        let n = Notifier::new(None, None);
        let text = n.render("slack_release.json.tera", &event(), &[]).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let section = v["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(
            section.contains("Fix \"quotes\" &lt;!channel&gt; &amp; &lt;script&gt;"),
            "{section}"
        );
        assert!(!section.contains("second line"));
        assert!(
            section.contains("<https://staging.example.test|open>"),
            "{section}"
        );
        let context = v["blocks"][1]["elements"][0]["text"].as_str().unwrap();
        assert!(
            context.contains("<https://example.test/c?a=1&amp;b=2|release commit>"),
            "{context}"
        );
    }

    #[test]
    fn an_override_folder_replaces_a_template_and_a_broken_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("slack_release.json.tera"),
            r#"{"text": "custom {{ app }}"}"#,
        )
        .unwrap();
        let n = Notifier::new(None, None).with_template_dir(dir.path()).unwrap();
        let text = n.render("slack_release.json.tera", &event(), &[]).unwrap();
        assert_eq!(text, r#"{"text": "custom web"}"#);
        // The others keep their built-in text.
        assert!(n.render("slack_failure.json.tera", &event(), &[]).is_ok());

        std::fs::write(dir.path().join("slack_failure.json.tera"), "{% if %}").unwrap();
        assert!(Notifier::new(None, None).with_template_dir(dir.path()).is_err());
    }

    #[test]
    fn a_template_that_is_not_json_is_refused_at_render() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("slack_release.json.tera"), "not json {{ app }}").unwrap();
        let n = Notifier::new(None, None).with_template_dir(dir.path()).unwrap();
        assert!(n.render("slack_release.json.tera", &event(), &[]).is_err());
    }

    #[test]
    fn every_webhook_event_gets_a_sentence_and_unescaped_values() {
        let n = Notifier::new(None, None);
        let cases = [
            (
                "released",
                "success",
                "web@0123456789ab released to staging (command @alice)",
            ),
            (
                "verified",
                "verified",
                "web@0123456789ab verified in staging (command @alice)",
            ),
            (
                "rolled_back",
                "verified",
                "staging rolled back to web@0123456789ab from web@aaaaaaaaaaaa, verified (command @alice)",
            ),
            (
                "failed",
                "failure",
                "web@0123456789ab failed in staging: boom <x> (command @alice)",
            ),
            (
                "preview_deployed",
                "success",
                "preview web deployed with web@0123456789ab (command @alice)",
            ),
            (
                "preview_removed",
                "inactive",
                "preview web removed (command @alice)",
            ),
        ];
        for (name, state, message) in cases {
            let what = Announcement {
                template: "slack_release.json.tera",
                event: name,
                state,
            };
            let body = n
                .webhook_body(
                    what,
                    &event(),
                    &[("reason", "boom <x>"), ("rollback_from", "web@aaaaaaaaaaaa")],
                )
                .unwrap();
            assert_eq!(body["message"], message, "{name}");
            assert_eq!(
                (body["event"].as_str(), body["state"].as_str()),
                (Some(name), Some(state))
            );
            assert_eq!(body["commit_message"], "Fix \"quotes\" <!channel> & <script>");
            assert_eq!(body["links"]["gitops_commit"], "https://example.test/c?a=1&b=2");
            assert_eq!(body["links"]["environment"], "https://staging.example.test");
        }
    }

    #[test]
    fn a_route_takes_its_envs_and_apps_and_the_previews_of_its_apps() {
        let n = Notifier::new(None, None).with_routes([(
            NotifyRoute {
                envs: None,
                apps: Some(vec![AppName::new("web").unwrap()]),
                kind: HookKind::Webhook,
                var: "X".into(),
            },
            "http://127.0.0.1:9/hook".into(),
        )]);
        let route = &n.routes[0];
        let mut ev = event();
        assert!(route.takes(&ev));
        ev.app = AppName::new("web-pr-12").unwrap();
        assert!(!route.takes(&ev), "not a preview: another app");
        ev.transient = true;
        assert!(route.takes(&ev));
        for other in ["webshop-pr-1", "web-pr-x", "api"] {
            ev.app = AppName::new(other).unwrap();
            assert!(!route.takes(&ev), "{other}");
        }
    }

    #[test]
    fn descriptions_are_cut_to_githubs_limit() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "ab…");
        assert_eq!(truncate(&"é".repeat(200), 140).chars().count(), 140);
    }

    #[test]
    fn stats_render_as_prometheus_counters() {
        let s = NotifyStats {
            slack: ChannelStats { sent: 2, failed: 1 },
            ..Default::default()
        };
        let text = s.render_prometheus();
        assert!(text.contains("auger_notifications_total{channel=\"slack\",result=\"failed\"} 1\n"));
        assert!(text.contains("auger_notifications_total{channel=\"status\",result=\"sent\"} 0\n"));
    }
}
