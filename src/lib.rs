pub mod domain;
pub mod inbox;
