//! The simulator's integration tests, one binary (one link, less disk): octocrab against every
//! route, real git merges, webhook deliveries and their shapes, injected faults, the binary.

mod common;

mod binary;
mod faults;
mod git_and_merges;
mod octocrab_api;
mod webhook_delivery;
mod webhook_shapes;
