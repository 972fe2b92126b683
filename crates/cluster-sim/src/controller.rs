//! The controller loop and the handle its starter keeps.
//!
//! The loop runs on its own thread with its own single-threaded tokio runtime, so it serves a
//! plain `#[test]` and a tokio program alike, and stopping it never depends on the caller's
//! runtime making progress (the receiver it posts to may run on that very runtime).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use tokio::sync::watch;

use crate::argocd::{self, ArgoCdReport};
use crate::event::{
    self, FluxEvent, InvolvedObject, KUSTOMIZE_API_VERSION, REPORTING_CONTROLLER, REPORTING_INSTANCE,
    Severity,
};
use crate::git::Mirror;
use crate::health;
use crate::{ControllerConfig, Error, Format, Retry, Watched};

/// Flux's usual Kustomization interval, quoted in its success message.
const INTERVAL: Duration = Duration::from_secs(600);
/// Namespace of manifests that name none.
const DEFAULT_NAMESPACE: &str = "default";
/// A POST that takes longer than this counts as failed (Flux's provider default timeout).
const POST_TIMEOUT: Duration = Duration::from_secs(15);

/// One POST attempt of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentReport {
    /// `Kind/namespace/name` of the involved object.
    pub object: String,
    /// Flux: `<branch>@sha1:<sha>`; Argo CD: the sha.
    pub revision: String,
    /// Argo CD reports carry none; `error` stands for a degraded or failed sync.
    pub severity: Severity,
    /// Flux: the event's reason; Argo CD: the notification trigger (`on-deployed`, ...).
    pub reason: String,
    pub message: String,
    /// The exact body posted.
    pub body: Vec<u8>,
    /// Headers sent besides `Content-Type`: `Gotk-Component` and `X-Signature` (Flux),
    /// `Authorization` (Argo CD).
    pub headers: Vec<(String, String)>,
    /// 1 for the first try, 2 for the first retry, ...
    pub attempt: u32,
    /// The HTTP status, `None` when no response came (connection refused, timeout).
    pub status: Option<u16>,
    /// Why the attempt failed, when it did.
    pub error: Option<String>,
}

impl SentReport {
    /// The value of a header sent with the report (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn delivered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// The posted body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

pub struct Controller;

impl Controller {
    /// Validates `cfg` and starts reconciling on a thread of its own.
    pub fn start(cfg: ControllerConfig) -> Result<ControllerHandle, Error> {
        let cfg = validate(cfg)?;
        let shared = Arc::new(Shared::default());
        let (stop_tx, stop_rx) = watch::channel(false);
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("cluster-sim".to_string())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        thread_shared.set_error(format!("building the runtime: {e}"));
                        return;
                    }
                };
                runtime.block_on(run_until_stopped(cfg, thread_shared, stop_rx));
            })?;
        Ok(ControllerHandle {
            stop: stop_tx,
            thread: Mutex::new(Some(thread)),
            shared,
        })
    }
}

/// A running controller. Dropping it stops the controller.
pub struct ControllerHandle {
    stop: watch::Sender<bool>,
    thread: Mutex<Option<JoinHandle<()>>>,
    shared: Arc<Shared>,
}

impl ControllerHandle {
    /// Stops the controller and waits for its thread: a git command or POST in flight is
    /// abandoned. Calling it again does nothing.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
        let thread = lock(&self.thread).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }

    /// Every POST attempt so far, oldest first.
    pub fn sent(&self) -> Vec<SentReport> {
        lock(&self.shared.sent).clone()
    }

    /// The sha of the last revision applied.
    pub fn applied(&self) -> Option<String> {
        lock(&self.shared.applied).clone()
    }

    /// The last error reading the repository, if the latest poll failed.
    pub fn last_error(&self) -> Option<String> {
        lock(&self.shared.last_error).clone()
    }
}

impl Drop for ControllerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

#[derive(Default)]
struct Shared {
    sent: Mutex<Vec<SentReport>>,
    applied: Mutex<Option<String>>,
    last_error: Mutex<Option<String>>,
}

impl Shared {
    fn set_error(&self, message: String) {
        tracing::warn!(error = %message, "cluster-sim poll failed");
        *lock(&self.last_error) = Some(message);
    }
}

/// A poisoned lock only means a reader panicked; the data is still whole.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn validate(mut cfg: ControllerConfig) -> Result<ControllerConfig, Error> {
    let bad = |m: String| Err(Error::Config(m));
    if cfg.repo.trim().is_empty() {
        return bad("repo is empty".into());
    }
    let b = &cfg.branch;
    if b.is_empty()
        || b.starts_with('-')
        || b.starts_with('/')
        || b.ends_with('/')
        || b.contains("..")
        || b.chars().any(|c| c.is_whitespace() || "~^:?*[\\".contains(c))
    {
        return bad(format!("branch {b:?} is not a valid branch name"));
    }
    match reqwest::Url::parse(&cfg.report_to) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => {}
        Ok(_) | Err(_) => {
            return bad(format!("report_to {:?} is not an http(s) URL", cfg.report_to));
        }
    }
    if cfg.secret.is_empty() {
        // notification-controller refuses an empty HMAC key too.
        return bad("secret is empty".into());
    }
    if cfg.poll.is_zero() {
        return bad("poll must be longer than zero".into());
    }
    if cfg.objects.is_empty() {
        return bad("no objects to watch".into());
    }
    for obj in &mut cfg.objects {
        let kind = match cfg.format {
            Format::Flux => "Kustomization",
            Format::ArgoCd => "Application",
        };
        if obj.kind != kind {
            return bad(format!(
                "{}: the {:?} controller reconciles {kind} objects only",
                obj.kind, cfg.format
            ));
        }
        if obj.name.is_empty() || obj.namespace.is_empty() {
            return bad(format!("{} needs a name and a namespace", obj.kind));
        }
        obj.path = normalise_path(&obj.path).ok_or_else(|| {
            Error::Config(format!(
                "path {:?} of {} is not a folder of the repository",
                obj.path, obj.name
            ))
        })?;
    }
    Ok(cfg)
}

/// `./staging/` → `staging`, `.` → `` (the root); `None` for paths leaving the repository.
fn normalise_path(path: &str) -> Option<String> {
    let mut parts = Vec::new();
    if path.starts_with('/') {
        return None;
    }
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

async fn run_until_stopped(cfg: ControllerConfig, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    tokio::select! {
        _ = stop.wait_for(|stopped| *stopped) => {}
        () = run(cfg, Arc::clone(&shared)) => {}
    }
}

async fn run(cfg: ControllerConfig, shared: Arc<Shared>) {
    let mirror = match Mirror::create(&cfg.repo, &cfg.branch).await {
        Ok(m) => m,
        Err(e) => {
            shared.set_error(e.to_string());
            return;
        }
    };
    let client = match reqwest::Client::builder().timeout(POST_TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            shared.set_error(format!("building the HTTP client: {e}"));
            return;
        }
    };
    let mut state = State {
        cfg,
        mirror,
        client,
        shared,
        resource_version: AtomicU64::new(1000),
    };
    loop {
        match state.poll().await {
            Ok(()) => *lock(&state.shared.last_error) = None,
            Err(e) => state.shared.set_error(e.to_string()),
        }
        tokio::time::sleep(state.cfg.poll).await;
    }
}

struct State {
    cfg: ControllerConfig,
    mirror: Mirror,
    client: reqwest::Client,
    shared: Arc<Shared>,
    resource_version: AtomicU64,
}

impl State {
    async fn poll(&mut self) -> Result<(), Error> {
        let Some(tip) = self.mirror.remote_tip().await? else {
            return Ok(());
        };
        let previous = lock(&self.shared.applied).clone();
        if previous.as_deref() == Some(tip.as_str()) {
            return Ok(());
        }
        self.mirror.fetch(&tip).await?;

        let mut due = Vec::new();
        for obj in &self.cfg.objects {
            let changed = match &previous {
                None => true,
                Some(prev) => self.mirror.path_changed(prev, &tip, &obj.path).await?,
            };
            if changed {
                due.push(obj.clone());
            }
        }

        let started = Instant::now();
        tokio::time::sleep(self.cfg.apply_delay).await;
        // Every verdict is read before anything is posted, so a git failure retries the whole
        // revision on the next poll without having reported half of it.
        let mut verdicts = Vec::new();
        for obj in &due {
            verdicts.push(self.verdict(obj, &tip).await?);
        }
        let elapsed = started.elapsed();
        *lock(&self.shared.applied) = Some(tip.clone());
        tracing::info!(revision = %tip, objects = due.len(), "cluster-sim applied");
        for (obj, verdict) in due.iter().zip(verdicts) {
            let report = match self.cfg.format {
                Format::Flux => self.flux_report(obj, &tip, &verdict, elapsed),
                Format::ArgoCd => self.argocd_report(obj, &tip, &verdict),
            };
            self.post(report).await;
        }
        Ok(())
    }

    async fn verdict(&self, obj: &Watched, sha: &str) -> Result<Verdict, Error> {
        if !self.mirror.path_exists(sha, &obj.path).await? {
            return Ok(Verdict::PathMissing);
        }
        let files = self.mirror.files(sha, &obj.path).await?;
        let failing = health::unhealthy(&files, DEFAULT_NAMESPACE);
        Ok(if failing.is_empty() {
            Verdict::Healthy
        } else {
            Verdict::Unhealthy(failing)
        })
    }

    /// The event kustomize-controller would send, with the words it uses.
    fn flux_report(&self, obj: &Watched, sha: &str, verdict: &Verdict, elapsed: Duration) -> Report {
        let revision = format!("{}@sha1:{sha}", self.cfg.branch);
        let elapsed = event::go_duration(elapsed);
        let (severity, reason, message, commit_status) = match verdict {
            Verdict::Healthy => (
                Severity::Info,
                "ReconciliationSucceeded",
                format!(
                    "Reconciliation finished in {elapsed}, next run in {}",
                    event::go_duration(INTERVAL)
                ),
                true,
            ),
            Verdict::Unhealthy(failing) => {
                let stalled: Vec<String> = failing
                    .iter()
                    .map(|u| format!("{} status: 'Failed'", u.flux_id()))
                    .collect();
                (
                    Severity::Error,
                    "HealthCheckFailed",
                    format!(
                        "health check failed after {elapsed}: failed early due to stalled resources: [{}]",
                        stalled.join(", ")
                    ),
                    false,
                )
            }
            Verdict::PathMissing => (
                Severity::Error,
                "ArtifactFailed",
                format!(
                    "kustomization path not found: stat {}: no such file or directory",
                    obj.path
                ),
                false,
            ),
        };
        let resource_version = self.resource_version.fetch_add(1, Ordering::Relaxed);
        let event = FluxEvent {
            involved_object: InvolvedObject {
                kind: obj.kind.clone(),
                namespace: obj.namespace.clone(),
                name: obj.name.clone(),
                uid: event::object_uid(&obj.kind, &obj.namespace, &obj.name),
                api_version: KUSTOMIZE_API_VERSION.to_string(),
                resource_version: resource_version.to_string(),
            },
            severity,
            timestamp: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
            message,
            reason: reason.to_string(),
            metadata: event::kustomization_metadata(self.cfg.metadata_keys, &revision, commit_status),
            reporting_controller: REPORTING_CONTROLLER.to_string(),
            reporting_instance: REPORTING_INSTANCE.to_string(),
        };
        let body = event.to_body();
        let signature = event::signature(&body, &self.cfg.secret);
        Report {
            object: object_id(obj),
            revision,
            severity,
            reason: event.reason,
            message: event.message,
            headers: vec![
                ("Gotk-Component", REPORTING_CONTROLLER.to_string()),
                ("X-Signature", signature),
            ],
            body,
        }
    }

    /// What Argo CD Notifications posts for the trigger this verdict fires: `on-deployed`
    /// (synced and healthy), `on-health-degraded`, or `on-sync-failed`.
    fn argocd_report(&self, obj: &Watched, sha: &str, verdict: &Verdict) -> Report {
        let (trigger, severity, sync, health, phase, message) = match verdict {
            Verdict::Healthy => (
                "on-deployed",
                Severity::Info,
                "Synced",
                "Healthy",
                "Succeeded",
                argocd::SYNC_SUCCEEDED.to_string(),
            ),
            // The sync itself went through; the workload then never became ready.
            Verdict::Unhealthy(_) => (
                "on-health-degraded",
                Severity::Error,
                "Synced",
                "Degraded",
                "Succeeded",
                argocd::SYNC_SUCCEEDED.to_string(),
            ),
            Verdict::PathMissing => (
                "on-sync-failed",
                Severity::Error,
                "Unknown",
                "Missing",
                "Failed",
                format!("{}: app path does not exist", obj.path),
            ),
        };
        let report = ArgoCdReport {
            app: obj.name.clone(),
            namespace: obj.namespace.clone(),
            revision: sha.to_string(),
            sync: sync.to_string(),
            health: health.to_string(),
            health_message: String::new(),
            phase: phase.to_string(),
            message,
            finished_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        let token = String::from_utf8_lossy(&self.cfg.secret).into_owned();
        Report {
            object: object_id(obj),
            revision: sha.to_string(),
            severity,
            reason: trigger.to_string(),
            body: report.to_body(),
            message: report.message,
            headers: vec![("Authorization", format!("Bearer {token}"))],
        }
    }

    /// POSTs one report, retrying like the controllers' HTTP client (go-retryablehttp).
    async fn post(&self, report: Report) {
        let Retry {
            max_retries,
            wait_min,
            wait_max,
        } = self.cfg.retry;
        for attempt in 1..=max_retries.saturating_add(1) {
            let mut request = self
                .client
                .post(&self.cfg.report_to)
                .header("Content-Type", "application/json");
            for (name, value) in &report.headers {
                request = request.header(*name, value);
            }
            let result = request.body(report.body.clone()).send().await;
            let (status, error, retry) = match result {
                Ok(resp) => {
                    let s = resp.status().as_u16();
                    let ok = (200..300).contains(&s);
                    let error = (!ok).then(|| format!("request failed with status code {s}"));
                    (Some(s), error, s == 429 || (s >= 500 && s != 501))
                }
                Err(e) => (None, Some(e.to_string()), true),
            };
            tracing::info!(object = %report.object, revision = %report.revision, attempt, ?status, "cluster-sim posted a report");
            lock(&self.shared.sent).push(SentReport {
                object: report.object.clone(),
                revision: report.revision.clone(),
                severity: report.severity,
                reason: report.reason.clone(),
                message: report.message.clone(),
                body: report.body.clone(),
                headers: report
                    .headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.clone()))
                    .collect(),
                attempt,
                status,
                error,
            });
            if !retry || attempt > max_retries {
                return;
            }
            let wait = wait_min
                .saturating_mul(2u32.saturating_pow(attempt - 1))
                .min(wait_max);
            tokio::time::sleep(wait).await;
        }
    }
}

enum Verdict {
    Healthy,
    Unhealthy(Vec<health::Unhealthy>),
    PathMissing,
}

/// A report ready to post.
struct Report {
    object: String,
    revision: String,
    severity: Severity,
    reason: String,
    message: String,
    /// Besides `Content-Type`.
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

fn object_id(obj: &Watched) -> String {
    format!("{}/{}/{}", obj.kind, obj.namespace, obj.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ControllerConfig {
        ControllerConfig {
            repo: "/tmp/x.git".into(),
            report_to: "http://127.0.0.1:1/webhooks/flux".into(),
            secret: b"k".to_vec(),
            objects: vec![Watched::kustomization("apps", "flux-system", "./staging/")],
            ..ControllerConfig::default()
        }
    }

    #[test]
    fn paths_are_normalised_and_escapes_refused() {
        assert_eq!(normalise_path("./staging/").as_deref(), Some("staging"));
        assert_eq!(normalise_path("clusters//prod").as_deref(), Some("clusters/prod"));
        assert_eq!(normalise_path(".").as_deref(), Some(""));
        assert_eq!(normalise_path("../etc"), None);
        assert_eq!(normalise_path("/etc"), None);
    }

    #[test]
    fn bad_configs_are_refused_with_the_reason() {
        assert_eq!(validate(config()).unwrap().objects[0].path, "staging");
        let cases: Vec<(ControllerConfig, &str)> = vec![
            (
                ControllerConfig {
                    secret: vec![],
                    ..config()
                },
                "secret is empty",
            ),
            (
                ControllerConfig {
                    report_to: "ftp://x".into(),
                    ..config()
                },
                "not an http(s) URL",
            ),
            (
                ControllerConfig {
                    branch: "a..b".into(),
                    ..config()
                },
                "not a valid branch",
            ),
            (
                ControllerConfig {
                    repo: " ".into(),
                    ..config()
                },
                "repo is empty",
            ),
            (
                ControllerConfig {
                    poll: Duration::ZERO,
                    ..config()
                },
                "poll",
            ),
            (
                ControllerConfig {
                    objects: vec![],
                    ..config()
                },
                "no objects",
            ),
            (
                ControllerConfig {
                    objects: vec![Watched::kustomization("a", "b", "../x")],
                    ..config()
                },
                "not a folder",
            ),
            (
                ControllerConfig {
                    objects: vec![Watched {
                        kind: "HelmRelease".into(),
                        ..Watched::kustomization("a", "b", "x")
                    }],
                    ..config()
                },
                "Kustomization objects only",
            ),
            (
                ControllerConfig {
                    format: Format::ArgoCd,
                    ..config()
                },
                "Application objects only",
            ),
        ];
        for (cfg, want) in cases {
            let err = Controller::start(cfg).err().expect("refused").to_string();
            assert!(err.contains(want), "{err:?} should mention {want:?}");
        }
    }
}
