//! The simulator's integration tests, one binary (one link, less disk): octocrab against every
//! route, routes and request bodies against GitHub's OpenAPI description, real git merges,
//! webhook deliveries and their shapes, injected faults, the binary.

mod common;

mod app_lifecycle;
mod binary;
mod contract;
mod faults;
mod git_and_merges;
mod oauth;
mod octocrab_api;
mod protection;
mod rate_limits;
mod responses;
mod webhook_delivery;
mod webhook_shapes;
