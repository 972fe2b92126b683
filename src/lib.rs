pub mod domain;
pub mod policy;
