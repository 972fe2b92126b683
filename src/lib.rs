pub mod artifact;
pub mod catchup;
pub mod command;
pub mod config;
pub mod crash;
pub mod data_dir;
pub mod demo;
pub mod dora;
pub mod forge;
pub mod gitops;
pub mod handlers;
pub mod http;
pub mod init;
pub mod metrics;
pub mod notify;
pub mod policy;
pub mod priority;
pub mod queue;
pub mod release;
pub mod reload;
pub mod server;
pub mod verify;
pub mod webhook;
pub mod work;
pub mod worker;

// The engines live in their own crates; these names keep `crate::domain::…` and
// `crate::inbox::…` paths working across the bot.
pub use auger_domain as domain;
pub use auger_inbox as inbox;
