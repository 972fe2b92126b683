pub mod command;
pub mod domain;
