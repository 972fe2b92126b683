//! Policies: `policies/<app>.toml`, one per app (design §5).
//!
//! [`load_dir`] reads the whole folder, checks every file and the files against each other,
//! and either hands out a [`PolicySet`] (with warnings) or every problem at once as
//! [`PolicyErrors`]. Each problem is a [`Diagnostic`] displayed as
//! `policies/frontend.toml: env.production.after.env: unknown environment "stagin" (known: staging, production)`.
//! [`policy_check_report`] turns the outcome into what `auger policy check` prints.
//!
//! The schema and its defaults are in [`schema`]; globs in [`glob`]; who may deploy or
//! approve in [`principal`]; CI signals in [`signal`].
//!
//! Decisions an operator should know:
//! - Only `*.toml` files directly in the folder are policies; other files and subfolders are
//!   ignored. `policies/<app>.toml` must say `app = "<app>"`; if another file claims the same
//!   app, the file named after it keeps it and the other is an error.
//! - Safe defaults: `merge = "approval"` with one approval; empty `deployers`/`approvers` admit
//!   nobody (an approval environment without approvers is a warning: it can never release).
//! - `*` in a glob stops at `/`, `**` crosses it; a pattern list needs one positive pattern.
//! - Signal names compare exactly; repositories, logins and teams case-insensitively, as on
//!   GitHub.
//! - Every error of a file is reported, not just the first; warnings are only given for files
//!   without errors, since on a half-read file they may be echoes of an error.

mod diagnostic;
pub mod edit;
pub mod freeze;
pub mod glob;
pub mod live;
mod load;
pub mod principal;
mod report;
pub mod schema;
mod set;
pub mod signal;

pub use diagnostic::{Diagnostic, PolicyErrors};
pub use edit::{EditStep, EnvGitops, KustomizeImageStep, YamlSetStep};
pub use freeze::{FreezeWindow, frozen_until};
pub use glob::{RefGlob, RefGlobs};
pub use live::{LivePolicies, Origin};
pub use load::{GitopsNames, load_dir, load_dir_with};
pub use principal::{Actor, Level, Principal, any_admits};
pub use report::policy_check_report;
pub use schema::{
    AfterRule, ArtifactRule, AutoRule, DEFAULT_VERIFY_TIMEOUT, EnvPolicy, MergeMode, OnFailure, PolicyFile,
    PreviewCleanup, PreviewPolicy, PreviewTrigger, TemplateName, VarName, VerifyRule, VerifySource,
};
pub use set::{Policy, PolicySet};
pub use signal::{Signal, SignalKind};
