pub mod domain;
pub mod webhook;
