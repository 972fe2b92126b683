pub mod artifact;
pub mod command;
pub mod config;
pub mod domain;
pub mod forge;
pub mod inbox;
pub mod policy;
pub mod webhook;
