//! A simulated GitOps controller for `auger demo` and auger's tests.
//!
//! It plays Flux's kustomize-controller and notification-controller (with the `generic-hmac`
//! provider) against a real git repository: it polls a branch, "applies" each new tip to the
//! Kustomizations whose folder changed, decides their health from the manifests (see
//! [`health`]), and POSTs Flux's event JSON, signed with `X-Signature: sha256=<hex>`, to a URL.
//! Nothing reaches a cluster; the point is that auger hears what a real controller would say.
//!
//! ```no_run
//! use std::time::Duration;
//! use cluster_sim::{Controller, ControllerConfig, Watched};
//!
//! let handle = Controller::start(ControllerConfig {
//!     repo: "/tmp/gitops.git".into(),
//!     branch: "main".into(),
//!     objects: vec![Watched::kustomization("apps-staging", "flux-system", "staging")],
//!     report_to: "http://127.0.0.1:8080/webhooks/flux".into(),
//!     secret: b"s3cret".to_vec(),
//!     poll: Duration::from_millis(200),
//!     apply_delay: Duration::from_millis(500),
//!     ..ControllerConfig::default()
//! })?;
//! // ... push to the branch, wait for handle.sent() ...
//! handle.stop();
//! # Ok::<(), cluster_sim::Error>(())
//! ```

pub mod argocd;
mod controller;
pub mod event;
mod git;
pub mod health;

use std::time::Duration;

pub use argocd::ArgoCdReport;
pub use controller::{Controller, ControllerHandle, SentReport};
pub use event::{FluxEvent, MetadataKeys, Severity, signature};

/// What the controller watches and where it reports.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// A git URL or a local path (the GitHub simulator's bare repositories are local folders).
    pub repo: String,
    /// The branch the controller follows, e.g. `main`.
    pub branch: String,
    /// The Flux objects this controller reconciles.
    pub objects: Vec<Watched>,
    /// Where events are posted, e.g. `http://127.0.0.1:PORT/webhooks/flux`.
    pub report_to: String,
    /// Flux: the `generic-hmac` provider's key (the `token` of its Secret). Argo CD: the bearer
    /// token of the webhook service's `Authorization` header. Must not be empty.
    pub secret: Vec<u8>,
    /// How often the branch is read.
    pub poll: Duration,
    /// How long "applying" and the health check of a revision take before it is reported.
    pub apply_delay: Duration,
    /// Which controller to play.
    pub format: Format,
    /// Metadata key style of Flux events: current Flux's by default.
    pub metadata_keys: MetadataKeys,
    /// Retries of a failed POST.
    pub retry: Retry,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            repo: String::new(),
            branch: "main".to_string(),
            objects: Vec::new(),
            report_to: String::new(),
            secret: Vec::new(),
            poll: Duration::from_millis(500),
            apply_delay: Duration::ZERO,
            format: Format::default(),
            metadata_keys: MetadataKeys::default(),
            retry: Retry::default(),
        }
    }
}

/// The controller played, which decides the objects' kind and the report's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Flux: `Kustomization` objects, events as notification-controller's `generic-hmac`
    /// provider posts them.
    #[default]
    Flux,
    /// Argo CD: `Application` objects, bodies as Argo CD Notifications' webhook service posts
    /// them with the body template auger documents (`docs/controllers.md`), `Authorization: Bearer <secret>`.
    ArgoCd,
}

/// An object the controller reconciles from a folder of the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    /// `Kustomization` (Flux) or `Application` (Argo CD).
    pub kind: String,
    pub name: String,
    pub namespace: String,
    /// The folder of the repository this object applies (`spec.path` of a Kustomization,
    /// `spec.source.path` of an Application); `""` or `.` is the root.
    pub path: String,
}

impl Watched {
    pub fn kustomization(name: &str, namespace: &str, path: &str) -> Watched {
        Watched {
            kind: "Kustomization".to_string(),
            name: name.to_string(),
            namespace: namespace.to_string(),
            path: path.to_string(),
        }
    }

    pub fn application(name: &str, namespace: &str, path: &str) -> Watched {
        Watched {
            kind: "Application".to_string(),
            ..Watched::kustomization(name, namespace, path)
        }
    }
}

/// Retries of a POST that got no response, a 429 or a 5xx other than 501: the cases both
/// controllers' client (go-retryablehttp) retries. The wait doubles from `wait_min` up to
/// `wait_max`. Flux retries 4 times waiting 2s to 30s, Argo CD's webhook service 3 times
/// waiting 1s to 5s; the simulator defaults to 4 retries and shorter waits so a demo does not
/// stall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub max_retries: u32,
    pub wait_min: Duration,
    pub wait_max: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            max_retries: 4,
            wait_min: Duration::from_millis(200),
            wait_max: Duration::from_secs(3),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid controller config: {0}")]
    Config(String),
    #[error("git: {0}")]
    Git(String),
    #[error("starting the controller thread: {0}")]
    Spawn(#[from] std::io::Error),
}
