//! `X-Hub-Signature-256` verification (design §10): HMAC-SHA256 over the raw body, compared in
//! constant time, against every configured secret so a secret can be rotated without downtime.
//!
//! Configuration is one comma-separated value (`webhook_secret_env`, design §4), so a secret
//! cannot contain a comma. Entries are trimmed of surrounding whitespace and blank ones skipped;
//! none left is an error, because auger must not accept unauthenticated deliveries.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The header GitHub signs deliveries with.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";

const PREFIX: &str = "sha256=";

/// Why the configured secrets could not be used. Never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    #[error("environment variable {var} is not set: a webhook secret is required")]
    Missing { var: String },
    #[error("environment variable {var} is not valid UTF-8")]
    NotUnicode { var: String },
    #[error("no webhook secret configured (empty value{})", var_suffix(.var))]
    Empty { var: Option<String> },
}

fn var_suffix(var: &Option<String>) -> String {
    var.as_ref().map(|v| format!(" in {v}")).unwrap_or_default()
}

/// Why a delivery's signature was refused. Every variant means 401; they differ for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing {SIGNATURE_HEADER} header")]
    MissingHeader,
    #[error("malformed {SIGNATURE_HEADER} header: {0}")]
    MalformedHeader(&'static str),
    #[error("{SIGNATURE_HEADER} does not match the body for any configured secret")]
    Mismatch,
}

/// One or more webhook secrets. Several are accepted at once so an operator can rotate: add the
/// new secret, switch GitHub over, then drop the old one.
///
/// Only keyed HMAC states are kept (not the secrets themselves), and `Debug` shows nothing but
/// the count, so the value is safe to log as part of a larger config.
#[derive(Clone)]
pub struct WebhookSecrets {
    /// The current secret, used by [`WebhookSecrets::sign`]. Split from `others` so the type
    /// itself says there is at least one.
    primary: HmacSha256,
    others: Vec<HmacSha256>,
}

impl WebhookSecrets {
    /// Builds from the given secrets; blank entries are skipped and at least one must remain.
    pub fn new<I, S>(secrets: I) -> Result<Self, SecretsError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::build(secrets, None)
    }

    /// Parses a comma-separated list such as the value of `AUGER_WEBHOOK_SECRET`. Entries are
    /// trimmed, because secrets mounted from files often end in a newline that GitHub never saw.
    pub fn from_list(value: &str) -> Result<Self, SecretsError> {
        Self::new(value.split(','))
    }

    /// Reads the comma-separated list from environment variable `var`; missing or empty is an
    /// error because auger must not start without a way to authenticate deliveries.
    pub fn from_env(var: &str) -> Result<Self, SecretsError> {
        match std::env::var(var) {
            Ok(value) => Self::build(value.split(','), Some(var)),
            Err(std::env::VarError::NotPresent) => Err(SecretsError::Missing { var: var.to_owned() }),
            Err(std::env::VarError::NotUnicode(_)) => Err(SecretsError::NotUnicode { var: var.to_owned() }),
        }
    }

    fn build<I, S>(secrets: I, var: Option<&str>) -> Result<Self, SecretsError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut keys = secrets.into_iter().filter_map(|s| {
            let s = s.as_ref().trim();
            (!s.is_empty()).then(|| keyed(s.as_bytes()))
        });
        let primary = keys.next().ok_or_else(|| SecretsError::Empty {
            var: var.map(str::to_owned),
        })?;
        Ok(Self {
            primary,
            others: keys.collect(),
        })
    }

    /// How many secrets are accepted (at least one).
    pub fn count(&self) -> usize {
        1 + self.others.len()
    }

    /// Checks `header` (the `X-Hub-Signature-256` value) against `body`, the exact bytes
    /// received. Call this before parsing anything.
    pub fn verify(&self, body: &[u8], header: Option<&str>) -> Result<(), SignatureError> {
        let expected = decode_header(header.ok_or(SignatureError::MissingHeader)?)?;
        // `verify_slice` compares in constant time. Trying every key leaks only which key
        // matched, not anything about the secrets.
        let ok = std::iter::once(&self.primary).chain(&self.others).any(|key| {
            let mut mac = key.clone();
            mac.update(body);
            mac.verify_slice(&expected).is_ok()
        });
        if ok { Ok(()) } else { Err(SignatureError::Mismatch) }
    }

    /// Signs `body` with the first (current) secret, as GitHub would.
    pub fn sign(&self, body: &[u8]) -> String {
        sign_with(self.primary.clone(), body)
    }
}

impl fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSecrets")
            .field("secrets", &format_args!("[redacted; {}]", self.count()))
            .finish()
    }
}

/// The `X-Hub-Signature-256` value GitHub would send for `body` signed with `secret`. For tests
/// and the simulator; the secret is used as given (not trimmed).
pub fn sign(secret: &str, body: &[u8]) -> String {
    sign_with(keyed(secret.as_bytes()), body)
}

fn sign_with(mut mac: HmacSha256, body: &[u8]) -> String {
    mac.update(body);
    format!("{PREFIX}{}", hex::encode(mac.finalize().into_bytes()))
}

fn keyed(secret: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length (long ones are hashed), so `new_from_slice` cannot fail;
    // the `Result` only exists because the trait is shared with fixed-key MACs.
    match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

/// `sha256=` followed by exactly 64 lowercase hex digits, the only form GitHub sends. Anything
/// else is refused before any MAC is computed.
fn decode_header(header: &str) -> Result<[u8; 32], SignatureError> {
    let hex_part = header
        .strip_prefix(PREFIX)
        .ok_or(SignatureError::MalformedHeader("expected the prefix \"sha256=\""))?;
    if hex_part.len() != 64 {
        return Err(SignatureError::MalformedHeader(
            "expected 64 hex digits after \"sha256=\"",
        ));
    }
    if !hex_part
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(SignatureError::MalformedHeader(
            "expected lowercase hex digits after \"sha256=\"",
        ));
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_part, &mut out)
        .map_err(|_| SignatureError::MalformedHeader("invalid hex digits"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // GitHub's published test vector (docs: "Validating webhook deliveries").
    const SECRET: &str = "It's a Secret to Everybody";
    const PAYLOAD: &[u8] = b"Hello, World!";
    const EXPECTED: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn github_test_vector() {
        assert_eq!(sign(SECRET, PAYLOAD), EXPECTED);
        let secrets = WebhookSecrets::new([SECRET]).unwrap();
        assert_eq!(secrets.sign(PAYLOAD), EXPECTED);
        assert_eq!(secrets.verify(PAYLOAD, Some(EXPECTED)), Ok(()));
    }

    #[test]
    fn rotation_accepts_every_configured_secret() {
        let secrets = WebhookSecrets::from_list(&format!("new-secret, {SECRET} ,,")).unwrap();
        assert_eq!(secrets.count(), 2);
        assert_eq!(secrets.verify(PAYLOAD, Some(EXPECTED)), Ok(()));
        let by_new = sign("new-secret", PAYLOAD);
        assert_eq!(secrets.verify(PAYLOAD, Some(&by_new)), Ok(()));
        // The first secret is the one used to sign.
        assert_eq!(secrets.sign(PAYLOAD), by_new);
        let other = sign("retired", PAYLOAD);
        assert_eq!(
            secrets.verify(PAYLOAD, Some(&other)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn tampered_body_fails() {
        let secrets = WebhookSecrets::new([SECRET]).unwrap();
        assert_eq!(
            secrets.verify(b"Hello, World?", Some(EXPECTED)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(secrets.verify(b"", Some(EXPECTED)), Err(SignatureError::Mismatch));
    }

    #[test]
    fn malformed_headers_are_refused() {
        let secrets = WebhookSecrets::new([SECRET]).unwrap();
        let hex = &EXPECTED[7..];
        let cases = [
            EXPECTED.to_uppercase(),
            format!("sha256={}", hex.to_uppercase()),
            format!("sha1={hex}"),
            format!("SHA256={hex}"),
            hex.to_owned(),
            format!("sha256= {hex}"),
            format!("sha256={}", &hex[..63]),
            format!("sha256={hex}0"),
            format!("sha256={hex}\n"),
            format!("sha256={}g", &hex[..63]),
            String::new(),
        ];
        for header in &cases {
            assert!(
                matches!(
                    secrets.verify(PAYLOAD, Some(header)),
                    Err(SignatureError::MalformedHeader(_))
                ),
                "{header:?}"
            );
        }
        assert_eq!(secrets.verify(PAYLOAD, None), Err(SignatureError::MissingHeader));
    }

    #[test]
    fn zero_secrets_is_an_error() {
        assert_eq!(
            WebhookSecrets::from_list("").unwrap_err(),
            SecretsError::Empty { var: None }
        );
        assert!(WebhookSecrets::from_list(" , ,\n").is_err());
        assert!(WebhookSecrets::new(Vec::<String>::new()).is_err());
    }

    #[test]
    fn from_env_reports_the_variable() {
        let err = WebhookSecrets::from_env("AUGER_TEST_WEBHOOK_SECRET_SURELY_UNSET").unwrap_err();
        assert!(err.to_string().contains("AUGER_TEST_WEBHOOK_SECRET_SURELY_UNSET"));
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let secrets = WebhookSecrets::from_list("hunter2-very-secret,It's a Secret").unwrap();
        let debug = format!("{secrets:?} {secrets:#?}");
        assert!(debug.contains("redacted; 2"), "{debug}");
        for needle in ["hunter2", "very-secret", "Secret to", "It's"] {
            assert!(!debug.contains(needle), "{debug}");
        }
    }
}
