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

pub mod glob;
mod load;
pub mod principal;
mod report;
pub mod schema;
mod set;
pub mod signal;

pub use glob::{RefGlob, RefGlobs};
pub use load::{Diagnostic, PolicyErrors, load_dir};
pub use principal::{Actor, Level, Principal, any_admits};
pub use report::policy_check_report;
pub use schema::{
    AfterRule, ArtifactRule, AutoRule, EnvPolicy, MergeMode, PolicyFile, PreviewCleanup,
    PreviewPolicy, PreviewTrigger, TemplateName, VarName,
};
pub use set::{Policy, PolicySet};
pub use signal::{Signal, SignalKind};
