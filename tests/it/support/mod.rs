//! The shared test stack: a configured `auger serve` on loopback, the GitHub simulator seeded
//! with people and repositories, signed deliveries, plain git, and the small values the
//! scenarios build their data from. Scenario files hold scenarios; what builds the world they
//! run in lives here.
#![allow(dead_code)] // not every helper is used by every scenario group

pub mod browser;
pub mod cli;
pub mod data;
pub mod git;
pub mod postgres;
pub mod remote;
pub mod server;
pub mod sim;
pub mod slack;
pub mod snapshot;
pub mod stack;
pub mod webhooks;

pub use git::git;
pub use server::{API_TOKEN, Server, Setup};
pub use stack::{GITOPS, Stack, wait_for, web_policy};
pub use webhooks::{SECRET, fixture, status_payload};
