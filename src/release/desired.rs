//! What each (env, app) should run until it runs, and the final statuses auger still owes:
//! the release loop's durable facts (design §13b), so that neither a crash nor a GitHub fault
//! loses a release or leaves a status `pending`.
//!
//! One small JSON document, rewritten whole on every change, so a crash leaves the old or the
//! new state: a file of the data dir (`<data_dir>/desired-releases.json`, written with
//! [`crate::data_dir::write_atomically`]) for one process, or with replicas a row of
//! PostgreSQL that every replica reads when its turn at the release loop starts
//! ([`DesiredReleases::refresh`]); a replica killed with releases still desired leaves them to
//! the next one. There is at most one desired release per (env, app): a newer one supersedes
//! it, and the superseded one is owed a final status.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::plan::Plan;
use crate::artifact::ArtifactId;
use crate::domain::{AppName, CommitSha, EnvName};
use crate::forge::DeploymentId;
use crate::gitops::Trigger;
use crate::notify::FailureKind;
use crate::queue::{PgDocument, Written};

/// Who wants a release, which decides what may stop it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Want {
    /// A policy rule: a hold drops it, an `after` gate makes it wait.
    #[default]
    Auto,
    /// Asked for through the API, the CLI or `/deploy`: no gate applies.
    Asked,
    /// Back to the files the plan's artifact last had in the env; `from` is the artifact it
    /// replaces.
    Rollback { from: Option<ArtifactId> },
}

/// The release one (env, app) should get.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Desired {
    pub plan: Plan,
    #[serde(default)]
    pub want: Want,
    pub since: DateTime<Utc>,
    /// Why it is not live yet, as last checked (a gate, a busy branch, a GitHub fault).
    pub reason: String,
    /// Failed attempts in a row; the next waits longer.
    #[serde(default)]
    pub attempts: u32,
    /// Not tried again before this (a backoff, or the end of a soak).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<DateTime<Utc>>,
    /// The GitHub deployment made for it, so another attempt neither makes a second one nor
    /// has to look for the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<DeploymentId>,
}

impl Desired {
    pub fn new(plan: Plan, want: Want, now: DateTime<Utc>) -> Self {
        Desired {
            plan,
            want,
            since: now,
            reason: String::new(),
            attempts: 0,
            retry_at: None,
            deployment: None,
        }
    }

    /// Whether a pass at `now` should work on it.
    pub fn due(&self, now: DateTime<Utc>) -> bool {
        self.retry_at.is_none_or(|at| at <= now)
    }
}

/// How a release ended, as its source commit's status must finally say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "ended")]
pub enum Final {
    Released {
        commit: CommitSha,
        rollback: bool,
        /// Verified by the cluster (design §15), not only merged.
        #[serde(default)]
        verified: bool,
    },
    Superseded {
        by: ArtifactId,
    },
    Failed {
        reason: String,
        kind: FailureKind,
    },
}

/// A final status GitHub did not take when it was sent; every pass sends it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owed {
    pub env: EnvName,
    pub app: AppName,
    pub artifact: ArtifactId,
    pub trigger: Trigger,
    pub outcome: Final,
    /// The release's GitHub deployment, when known (else it is looked up when sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<DeploymentId>,
}

#[derive(Debug, thiserror::Error)]
#[error("desired releases {at}: {message}")]
pub struct DesiredError {
    /// The file, or the PostgreSQL document.
    pub at: String,
    pub message: String,
}

#[derive(Default, Clone, PartialEq)]
struct State {
    desired: BTreeMap<String, Desired>,
    owed: Vec<Owed>,
    /// The shared document's version this state was read at or written as (0: none yet).
    version: i64,
}

/// The document's shape. An older auger wrote a bare list of plans held by gates (the same
/// fields as [`Desired`] without its newer ones), which is read as automatic releases.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum OnDisk {
    Current {
        v: u32,
        desired: Vec<Desired>,
        #[serde(default)]
        owed: Vec<Owed>,
    },
    Waiting(Vec<Desired>),
}

/// Where the state is kept.
enum Backing {
    File(PathBuf),
    Shared(PgDocument),
}

impl Backing {
    fn at(&self) -> String {
        match self {
            Backing::File(path) => path.display().to_string(),
            Backing::Shared(doc) => format!("in PostgreSQL (auger_documents {:?})", doc.name()),
        }
    }
}

pub struct DesiredReleases {
    backing: Backing,
    state: Mutex<State>,
    /// One change at a time is saved (the state is swapped in once its save went through).
    writing: tokio::sync::Mutex<()>,
}

/// Writes of one change over states other replicas keep changing, before it gives up.
const STALE_TRIES: usize = 5;

fn key(env: &EnvName, app: &AppName) -> String {
    format!("{env}/{app}")
}

/// Reads a saved state. A corrupt one is an error, not an empty list: silently dropping
/// releases is what this document exists to prevent.
fn parse(bytes: &[u8]) -> Result<State, String> {
    let disk: OnDisk =
        serde_json::from_slice(bytes).map_err(|e| format!("not a list of desired releases: {e}"))?;
    let (desired, owed) = match disk {
        OnDisk::Current { v: 1, desired, owed } => (desired, owed),
        OnDisk::Current { v, .. } => return Err(format!("version {v} is not one this auger reads (1)")),
        OnDisk::Waiting(list) => (list, Vec::new()),
    };
    Ok(State {
        desired: desired
            .into_iter()
            .map(|d| (key(&d.plan.env, &d.plan.app), d))
            .collect(),
        owed,
        version: 0,
    })
}

fn render(state: &State) -> Result<String, String> {
    let disk = OnDisk::Current {
        v: 1,
        desired: state.desired.values().cloned().collect(),
        owed: state.owed.clone(),
    };
    serde_json::to_string_pretty(&disk).map_err(|e| e.to_string())
}

/// The state in the file at `path`; none yet: nothing desired.
fn read_file(path: &std::path::Path) -> Result<State, String> {
    match fs::read(path) {
        Ok(bytes) => parse(&bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
        Err(e) => Err(e.to_string()),
    }
}

impl DesiredReleases {
    /// Loads the file at `path` (none yet: nothing desired).
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, DesiredError> {
        let path = path.into();
        let state = read_file(&path).map_err(|message| DesiredError {
            at: path.display().to_string(),
            message,
        })?;
        Ok(Self::with(Backing::File(path), state))
    }

    /// Loads the document every replica shares. The first replica to start on a database
    /// where it does not exist yet seeds it from the file at `seed` (a single process moving
    /// to replicas keeps what it desired); the others read what that one wrote.
    pub async fn open_shared(doc: PgDocument, seed: &std::path::Path) -> Result<Self, DesiredError> {
        let this = Self::with(Backing::Shared(doc), State::default());
        if let Some(state) = this.read_shared().await? {
            *this.lock() = state;
            return Ok(this);
        }
        let state = read_file(seed).map_err(|message| DesiredError {
            at: seed.display().to_string(),
            message,
        })?;
        if !state.desired.is_empty() || !state.owed.is_empty() {
            tracing::info!(file = %seed.display(), "seeding the shared desired releases from this replica's file");
        }
        // Losing this race to another replica is fine: its seed is read below.
        let json = render(&state).map_err(|m| this.error(m))?;
        if let Backing::Shared(doc) = &this.backing {
            doc.write(0, &json).await.map_err(|e| this.error(e.to_string()))?;
        }
        this.refresh().await?;
        Ok(this)
    }

    fn with(backing: Backing, state: State) -> Self {
        DesiredReleases {
            backing,
            state: Mutex::new(state),
            writing: tokio::sync::Mutex::new(()),
        }
    }

    fn error(&self, message: impl Into<String>) -> DesiredError {
        DesiredError {
            at: self.backing.at(),
            message: message.into(),
        }
    }

    async fn read_shared(&self) -> Result<Option<State>, DesiredError> {
        let Backing::Shared(doc) = &self.backing else {
            return Ok(None);
        };
        let Some((version, json)) = doc.read().await.map_err(|e| self.error(e.to_string()))? else {
            return Ok(None);
        };
        let mut state = parse(json.as_bytes()).map_err(|m| self.error(m))?;
        state.version = version;
        Ok(Some(state))
    }

    /// Takes in what other replicas wrote since this one last read (nothing to do with a
    /// file, which only this process writes). Called at the start of each turn at the loop.
    pub async fn refresh(&self) -> Result<(), DesiredError> {
        let _writing = self.writing.lock().await;
        if let Some(state) = self.read_shared().await?
            && state.version != self.lock().version
        {
            *self.lock() = state;
        }
        Ok(())
    }

    /// Wants `d`, replacing what was desired for its (env, app). Returns the desire it
    /// superseded when that was for another artifact (its commit is owed a final status).
    /// Wanting the same artifact again keeps its age and tries it at once.
    pub async fn want(&self, d: Desired) -> Result<Option<Desired>, DesiredError> {
        self.change(|s| {
            let mut d = d.clone();
            let k = key(&d.plan.env, &d.plan.app);
            let previous = s.desired.get(&k).cloned();
            if let Some(p) = &previous
                && p.plan.artifact == d.plan.artifact
            {
                d.since = p.since;
                d.deployment = d.deployment.or(p.deployment);
            }
            let artifact = d.plan.artifact.clone();
            s.desired.insert(k, d);
            previous.filter(|p| p.plan.artifact != artifact)
        })
        .await
    }

    /// Brings the desire for `d`'s (env, app) up to date (reason, attempts, next try), if it
    /// is still for the same artifact.
    pub async fn update(&self, d: &Desired) -> Result<(), DesiredError> {
        self.change(|s| {
            if let Some(cur) = s.desired.get_mut(&key(&d.plan.env, &d.plan.app))
                && cur.plan.artifact == d.plan.artifact
            {
                *cur = d.clone();
            }
        })
        .await
    }

    /// Makes the desires `which` picks due at once (an event brought what they waited for).
    pub async fn due_now(&self, which: impl Fn(&Desired) -> bool) -> Result<(), DesiredError> {
        self.change(|s| {
            for d in s.desired.values_mut().filter(|d| which(d)) {
                d.retry_at = None;
            }
        })
        .await
    }

    /// Remembers the deployment made for the desire of (env, app), if it is still for
    /// `artifact`.
    pub async fn note_deployment(
        &self,
        env: &EnvName,
        app: &AppName,
        artifact: &ArtifactId,
        id: DeploymentId,
    ) -> Result<(), DesiredError> {
        self.change(|s| {
            if let Some(d) = s.desired.get_mut(&key(env, app))
                && &d.plan.artifact == artifact
            {
                d.deployment = Some(id);
            }
        })
        .await
    }

    /// Drops the desire for (env, app) if it is still for `artifact` (a newer one stays).
    /// `true` when one was dropped.
    pub async fn done(
        &self,
        env: &EnvName,
        app: &AppName,
        artifact: &ArtifactId,
    ) -> Result<bool, DesiredError> {
        let k = key(env, app);
        self.change(|s| {
            let desired = s.desired.get(&k).is_some_and(|d| &d.plan.artifact == artifact);
            desired && s.desired.remove(&k).is_some()
        })
        .await
    }

    pub fn list(&self) -> Vec<Desired> {
        self.lock().desired.values().cloned().collect()
    }

    pub fn get(&self, env: &EnvName, app: &AppName) -> Option<Desired> {
        self.lock().desired.get(&key(env, app)).cloned()
    }

    /// The earliest time a desire waits for, if any waits.
    pub fn next_retry(&self) -> Option<DateTime<Utc>> {
        self.lock().desired.values().filter_map(|d| d.retry_at).min()
    }

    /// Remembers a final status to send again. One per (env, app, artifact): a later outcome
    /// replaces an earlier one.
    pub async fn owe(&self, o: Owed) -> Result<(), DesiredError> {
        self.change(|s| {
            s.owed
                .retain(|x| !(x.env == o.env && x.app == o.app && x.artifact == o.artifact));
            s.owed.push(o.clone());
        })
        .await
    }

    /// The final status `o` went through.
    pub async fn paid(&self, o: &Owed) -> Result<(), DesiredError> {
        self.change(|s| s.owed.retain(|x| x != o)).await
    }

    pub fn owed(&self) -> Vec<Owed> {
        self.lock().owed.clone()
    }

    pub fn owed_count(&self) -> usize {
        self.lock().owed.len()
    }

    /// Applies `f` to a copy and saves it when it changed anything; the copy becomes the
    /// state only once saved, so a failed save changes nothing. With replicas, a save over a
    /// state another replica changed since this one read it is refused: `f` is applied again
    /// to the newer state (every change here means the same on any state), a few times.
    async fn change<T>(&self, f: impl Fn(&mut State) -> T) -> Result<T, DesiredError> {
        let _writing = self.writing.lock().await;
        for _ in 0..STALE_TRIES {
            let current = self.lock().clone();
            let mut next = current.clone();
            let out = f(&mut next);
            if next == current {
                return Ok(out);
            }
            let json = render(&next).map_err(|m| self.error(m))?;
            match &self.backing {
                Backing::File(path) => crate::data_dir::write_atomically(path, json.as_bytes())
                    .map_err(|e| self.error(e.to_string()))?,
                Backing::Shared(doc) => match doc.write(next.version, &json).await {
                    Ok(Written::At(version)) => next.version = version,
                    Ok(Written::Stale) => {
                        tracing::info!(
                            "another replica changed the desired releases since this one read them; applying the change to theirs"
                        );
                        if let Some(newer) = self.read_shared().await? {
                            *self.lock() = newer;
                        }
                        continue;
                    }
                    Err(e) => return Err(self.error(e.to_string())),
                },
            }
            *self.lock() = next;
            return Ok(out);
        }
        Err(self.error(format!(
            "other replicas changed them {STALE_TRIES} times while this one wrote; the change is not saved"
        )))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(env: &str, sha: char) -> Plan {
        let app = AppName::new("web").unwrap();
        Plan {
            env: EnvName::new(env).unwrap(),
            artifact: ArtifactId::for_artifact(&app, &CommitSha::new(sha.to_string().repeat(40)).unwrap()),
            app,
            trigger: Trigger::Policy,
            reason: "tag v1".into(),
            reply: None,
            overrides: Vec::new(),
        }
    }

    fn env(name: &str) -> EnvName {
        EnvName::new(name).unwrap()
    }

    fn web() -> AppName {
        AppName::new("web").unwrap()
    }

    #[tokio::test]
    async fn desires_survive_a_reopen_and_a_newer_artifact_supersedes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.json");
        let now = Utc::now();
        let d = DesiredReleases::open(&path).unwrap();
        assert_eq!(
            d.want(Desired::new(plan("production", 'a'), Want::Auto, now))
                .await
                .unwrap(),
            None
        );
        let superseded = d
            .want(Desired::new(plan("production", 'b'), Want::Auto, now))
            .await
            .unwrap();
        assert_eq!(
            superseded.map(|s| s.plan.artifact),
            Some(plan("production", 'a').artifact)
        );
        d.want(Desired::new(plan("canary", 'a'), Want::Auto, now))
            .await
            .unwrap();
        drop(d);

        let d = DesiredReleases::open(&path).unwrap();
        let held: Vec<String> = d
            .list()
            .iter()
            .map(|p| format!("{}:{}", p.plan.env, p.plan.artifact))
            .collect();
        assert_eq!(held, ["canary:web@aaaaaaaaaaaa", "production:web@bbbbbbbbbbbb"]);
    }

    #[tokio::test]
    async fn done_drops_only_the_artifact_that_is_still_desired() {
        let dir = tempfile::tempdir().unwrap();
        let d = DesiredReleases::open(dir.path().join("d.json")).unwrap();
        let now = Utc::now();
        d.want(Desired::new(plan("production", 'a'), Want::Auto, now))
            .await
            .unwrap();
        d.want(Desired::new(plan("production", 'b'), Want::Auto, now))
            .await
            .unwrap();
        assert!(
            !d.done(&env("production"), &web(), &plan("production", 'a').artifact)
                .await
                .unwrap()
        );
        assert!(d.get(&env("production"), &web()).is_some());
        assert!(
            d.done(&env("production"), &web(), &plan("production", 'b').artifact)
                .await
                .unwrap()
        );
        assert!(d.get(&env("production"), &web()).is_none());
    }

    #[tokio::test]
    async fn wanting_the_same_artifact_again_keeps_its_age_and_clears_the_backoff() {
        let dir = tempfile::tempdir().unwrap();
        let d = DesiredReleases::open(dir.path().join("d.json")).unwrap();
        let then = Utc::now() - chrono::Duration::hours(1);
        let mut first = Desired::new(plan("staging", 'a'), Want::Auto, then);
        d.want(first.clone()).await.unwrap();
        first.attempts = 3;
        first.retry_at = Some(Utc::now() + chrono::Duration::minutes(1));
        d.update(&first).await.unwrap();
        let again = d
            .want(Desired::new(plan("staging", 'a'), Want::Asked, Utc::now()))
            .await
            .unwrap();
        assert_eq!(again, None, "the same artifact supersedes nothing");
        let now = d.get(&env("staging"), &web()).unwrap();
        assert!(now.due(Utc::now()));
        assert_eq!((now.since, now.attempts, now.want), (then, 0, Want::Asked));
    }

    #[tokio::test]
    async fn owed_statuses_survive_a_reopen_until_paid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.json");
        let d = DesiredReleases::open(&path).unwrap();
        let owed = Owed {
            env: env("staging"),
            app: web(),
            artifact: plan("staging", 'a').artifact,
            trigger: Trigger::Policy,
            outcome: Final::Superseded {
                by: plan("staging", 'b').artifact,
            },
            deployment: None,
        };
        d.owe(owed.clone()).await.unwrap();
        drop(d);
        let d = DesiredReleases::open(&path).unwrap();
        assert_eq!(d.owed(), std::slice::from_ref(&owed));
        d.paid(&owed).await.unwrap();
        assert!(DesiredReleases::open(&path).unwrap().owed().is_empty());
    }

    #[test]
    fn the_list_an_older_auger_kept_of_gated_plans_reads_as_automatic_desires() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.json");
        let old = serde_json::json!([{
            "plan": plan("production", 'a'),
            "since": "2026-01-01T00:00:00Z",
            "reason": "waiting until it is live in staging for 30m"
        }]);
        fs::write(&path, old.to_string()).unwrap();
        let d = DesiredReleases::open(&path).unwrap();
        let w = d.get(&env("production"), &web()).unwrap();
        assert_eq!((w.want, w.attempts), (Want::Auto, 0));
        assert!(w.reason.contains("staging"));
    }

    #[tokio::test]
    async fn a_change_that_cannot_be_saved_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blocked").join("d.json");
        let d = DesiredReleases::open(&path).unwrap();
        // Its folder becomes a file: no write can succeed.
        fs::write(dir.path().join("blocked"), "").unwrap();
        let e = d
            .want(Desired::new(plan("staging", 'a'), Want::Auto, Utc::now()))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("d.json"), "{e}");
        assert!(d.list().is_empty(), "the desire is not kept in memory only");
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.json");
        fs::write(&path, "{not json").unwrap();
        let e = DesiredReleases::open(&path).err().unwrap();
        assert!(e.to_string().contains("d.json"), "{e}");
    }
}
