//! The `auger` binary as an operator runs it.

use std::path::Path;
use std::process::{Command, Output};

/// `auger ARGS` in `dir`, with quiet logs.
pub fn auger(dir: &Path, args: &[&str]) -> Output {
    auger_with_env(dir, args, &[])
}

/// `auger ARGS` in `dir` with extra environment variables.
pub fn auger_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_auger"))
        .current_dir(dir)
        .args(args)
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
