//! App keys for tests that authenticate as the simulator's GitHub App.

use anyhow::{Context, Result, ensure};

/// A fresh 2048-bit RSA key pair from the `openssl` CLI: (PKCS#1 private PEM, SPKI public PEM),
/// the shapes GitHub hands out and the simulator checks App JWTs with.
pub fn rsa_key_pair() -> Result<(String, String)> {
    let dir = tempfile::tempdir()?;
    let key = dir.path().join("key.pem");
    let generated = std::process::Command::new("openssl")
        .args(["genrsa", "-traditional", "-out"])
        .arg(&key)
        .arg("2048")
        .stderr(std::process::Stdio::null())
        .status()
        .context("cannot run openssl")?;
    ensure!(generated.success(), "openssl genrsa failed");
    let public = std::process::Command::new("openssl")
        .args(["rsa", "-pubout", "-in"])
        .arg(&key)
        .stderr(std::process::Stdio::null())
        .output()
        .context("cannot run openssl")?;
    ensure!(public.status.success(), "openssl rsa -pubout failed");
    Ok((std::fs::read_to_string(&key)?, String::from_utf8(public.stdout)?))
}
