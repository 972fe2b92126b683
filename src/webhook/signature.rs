//! HMAC signatures over a webhook's raw body (design §10): GitHub's `X-Hub-Signature-256` and
//! Flux notification-controller's `X-Signature` (its `generic-hmac` provider), both
//! `<hash function>=<hex HMAC>`, compared in constant time against every configured secret so a
//! secret can be rotated without downtime. A [`Scheme`] says which header a sender uses and
//! which hash functions it may name.
//!
//! Configuration is one comma-separated value (`webhook_secret_env`, design §4), so a secret
//! cannot contain a comma. Entries are trimmed of surrounding whitespace and blank ones skipped;
//! none left is an error, because auger must not accept unauthenticated deliveries.

use std::fmt;

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::{Sha224, Sha256, Sha384, Sha512};

/// The header GitHub signs deliveries with.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";

/// A hash function a signature header may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl Algorithm {
    /// The name before the `=` in a header.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha224 => "sha224",
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha384 => "sha384",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// The MAC's length in bytes.
    fn len(self) -> usize {
        match self {
            Algorithm::Sha224 => 28,
            Algorithm::Sha256 => 32,
            Algorithm::Sha384 => 48,
            Algorithm::Sha512 => 64,
        }
    }
}

/// How a sender signs: the header, and the hash functions it may name there.
#[derive(Debug, Clone, Copy)]
pub struct Scheme {
    pub header: &'static str,
    pub algorithms: &'static [Algorithm],
}

/// GitHub: `X-Hub-Signature-256: sha256=<64 hex digits>`, nothing else.
pub const GITHUB: Scheme = Scheme {
    header: SIGNATURE_HEADER,
    algorithms: &[Algorithm::Sha256],
};

/// Flux's `generic-hmac` provider: `X-Signature: <hash function>=<hex>`. Flux signs with
/// `sha256` today and documents that the default may change; its verification example accepts
/// `sha224`, `sha256`, `sha384` and `sha512`, so auger does too (and nothing weaker).
pub const FLUX: Scheme = Scheme {
    header: "X-Signature",
    algorithms: &[
        Algorithm::Sha224,
        Algorithm::Sha256,
        Algorithm::Sha384,
        Algorithm::Sha512,
    ],
};

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
/// Each names the header it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("malformed {0} header: {1}")]
    MalformedHeader(&'static str, String),
    #[error("{0} does not match the body for any configured secret")]
    Mismatch(&'static str),
}

/// One secret, keyed for every hash function a [`Scheme`] may name. Keyed once, so a delivery
/// costs one clone of the prepared state, and the secret itself is not kept.
#[derive(Clone)]
struct Keyed {
    sha224: Hmac<Sha224>,
    sha256: Hmac<Sha256>,
    sha384: Hmac<Sha384>,
    sha512: Hmac<Sha512>,
}

impl Keyed {
    fn new(secret: &[u8]) -> Self {
        Keyed {
            sha224: keyed(secret),
            sha256: keyed(secret),
            sha384: keyed(secret),
            sha512: keyed(secret),
        }
    }

    /// Whether `expected` is this key's MAC of `body`; `verify_slice` compares in constant time.
    fn matches(&self, algorithm: Algorithm, body: &[u8], expected: &[u8]) -> bool {
        fn check<M: Mac + Clone>(key: &M, body: &[u8], expected: &[u8]) -> bool {
            let mut mac = key.clone();
            mac.update(body);
            mac.verify_slice(expected).is_ok()
        }
        match algorithm {
            Algorithm::Sha224 => check(&self.sha224, body, expected),
            Algorithm::Sha256 => check(&self.sha256, body, expected),
            Algorithm::Sha384 => check(&self.sha384, body, expected),
            Algorithm::Sha512 => check(&self.sha512, body, expected),
        }
    }

    fn sign(&self, algorithm: Algorithm, body: &[u8]) -> String {
        fn mac<M: Mac + Clone>(key: &M, body: &[u8]) -> String {
            let mut mac = key.clone();
            mac.update(body);
            hex::encode(mac.finalize().into_bytes())
        }
        let hex = match algorithm {
            Algorithm::Sha224 => mac(&self.sha224, body),
            Algorithm::Sha256 => mac(&self.sha256, body),
            Algorithm::Sha384 => mac(&self.sha384, body),
            Algorithm::Sha512 => mac(&self.sha512, body),
        };
        format!("{}={hex}", algorithm.name())
    }
}

/// One or more webhook secrets. Several are accepted at once so an operator can rotate: add the
/// new secret, switch the sender over, then drop the old one.
///
/// Only keyed HMAC states are kept (not the secrets themselves), and `Debug` shows nothing but
/// the count, so the value is safe to log as part of a larger config.
#[derive(Clone)]
pub struct WebhookSecrets {
    /// The current secret, used by [`WebhookSecrets::sign`]. Split from `others` so the type
    /// itself says there is at least one.
    primary: Keyed,
    others: Vec<Keyed>,
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
            (!s.is_empty()).then(|| Keyed::new(s.as_bytes()))
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
        self.verify_as(&GITHUB, body, header)
    }

    /// Checks `header`, the value of `scheme.header`, against `body`. Trying every key leaks
    /// only which key matched, not anything about the secrets.
    pub fn verify_as(
        &self,
        scheme: &Scheme,
        body: &[u8],
        header: Option<&str>,
    ) -> Result<(), SignatureError> {
        let (algorithm, expected) = decode_header(
            scheme,
            header.ok_or(SignatureError::MissingHeader(scheme.header))?,
        )?;
        let ok = std::iter::once(&self.primary)
            .chain(&self.others)
            .any(|key| key.matches(algorithm, body, &expected));
        if ok {
            Ok(())
        } else {
            Err(SignatureError::Mismatch(scheme.header))
        }
    }

    /// Signs `body` with the first (current) secret, as GitHub would.
    pub fn sign(&self, body: &[u8]) -> String {
        self.primary.sign(Algorithm::Sha256, body)
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
    sign_as(Algorithm::Sha256, secret, body)
}

/// `<algorithm>=<hex HMAC of body>` with `secret`, as Flux's `generic-hmac` provider sends it
/// in `X-Signature`. For tests and simulators.
pub fn sign_as(algorithm: Algorithm, secret: &str, body: &[u8]) -> String {
    Keyed::new(secret.as_bytes()).sign(algorithm, body)
}

fn keyed<M: Mac + KeyInit>(secret: &[u8]) -> M {
    // HMAC takes keys of any length (long ones are hashed), so `new_from_slice` cannot fail;
    // the `Result` only exists because the trait is shared with fixed-key MACs.
    match <M as Mac>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

/// `<name>=` with a name the scheme allows, followed by exactly the MAC's length in lowercase
/// hex digits. Anything else is refused before any MAC is computed.
fn decode_header(scheme: &Scheme, header: &str) -> Result<(Algorithm, Vec<u8>), SignatureError> {
    let malformed = |why: String| SignatureError::MalformedHeader(scheme.header, why);
    let allowed = || {
        scheme
            .algorithms
            .iter()
            .map(|a| format!("\"{}=\"", a.name()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (name, hex_part) = header
        .split_once('=')
        .ok_or_else(|| malformed(format!("expected the prefix {}", allowed())))?;
    let algorithm = scheme
        .algorithms
        .iter()
        .copied()
        .find(|a| a.name() == name)
        .ok_or_else(|| {
            malformed(format!(
                "unsupported hash function {name:?}; expected the prefix {}",
                allowed()
            ))
        })?;
    let digits = 2 * algorithm.len();
    if hex_part.len() != digits {
        return Err(malformed(format!(
            "expected {digits} hex digits after \"{name}=\""
        )));
    }
    if !hex_part
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(malformed(format!(
            "expected lowercase hex digits after \"{name}=\""
        )));
    }
    let bytes = hex::decode(hex_part).map_err(|_| malformed("invalid hex digits".into()))?;
    Ok((algorithm, bytes))
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
            Err(SignatureError::Mismatch(SIGNATURE_HEADER))
        );
    }

    #[test]
    fn tampered_body_fails() {
        let secrets = WebhookSecrets::new([SECRET]).unwrap();
        assert_eq!(
            secrets.verify(b"Hello, World?", Some(EXPECTED)),
            Err(SignatureError::Mismatch(SIGNATURE_HEADER))
        );
        assert_eq!(
            secrets.verify(b"", Some(EXPECTED)),
            Err(SignatureError::Mismatch(SIGNATURE_HEADER))
        );
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
                    Err(SignatureError::MalformedHeader(SIGNATURE_HEADER, _))
                ),
                "{header:?}"
            );
        }
        assert_eq!(
            secrets.verify(PAYLOAD, None),
            Err(SignatureError::MissingHeader(SIGNATURE_HEADER))
        );
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

    #[test]
    fn flux_signs_with_any_hash_function_it_documents() {
        let secrets = WebhookSecrets::from_list("old-token,flux-token").unwrap();
        let body = br#"{"severity":"info"}"#;
        for algorithm in [
            Algorithm::Sha224,
            Algorithm::Sha256,
            Algorithm::Sha384,
            Algorithm::Sha512,
        ] {
            let header = sign_as(algorithm, "flux-token", body);
            assert!(header.starts_with(&format!("{}=", algorithm.name())), "{header}");
            assert_eq!(header.len(), algorithm.name().len() + 1 + 2 * algorithm.len());
            assert_eq!(secrets.verify_as(&FLUX, body, Some(&header)), Ok(()), "{header}");
            assert_eq!(
                secrets.verify_as(&FLUX, b"{}", Some(&header)),
                Err(SignatureError::Mismatch("X-Signature")),
                "tampered body under {header}"
            );
        }
        // The sha256 MAC of the GitHub test vector is the same whichever header carries it.
        let secrets = WebhookSecrets::new([SECRET]).unwrap();
        assert_eq!(secrets.verify_as(&FLUX, PAYLOAD, Some(EXPECTED)), Ok(()));
    }

    #[test]
    fn flux_refuses_what_it_does_not_document() {
        let secrets = WebhookSecrets::new(["flux-token"]).unwrap();
        let body = b"{}";
        let good = sign_as(Algorithm::Sha256, "flux-token", body);
        let hex = good.strip_prefix("sha256=").unwrap();
        // A real SHA-1 HMAC is 40 hex digits: refused for its name, not its length.
        let cases = [
            format!("sha1={}", &hex[..40]),
            format!("md5={}", &hex[..32]),
            format!("sha512={hex}"),
            format!("SHA256={hex}"),
            hex.to_owned(),
            String::new(),
        ];
        for header in &cases {
            let got = secrets.verify_as(&FLUX, body, Some(header));
            assert!(
                matches!(got, Err(SignatureError::MalformedHeader("X-Signature", _))),
                "{header:?}: {got:?}"
            );
        }
        assert_eq!(
            secrets.verify_as(&FLUX, body, None),
            Err(SignatureError::MissingHeader("X-Signature"))
        );
        // GitHub's scheme stays sha256 only.
        let wide = sign_as(Algorithm::Sha512, "flux-token", body);
        assert!(matches!(
            secrets.verify(body, Some(&wide)),
            Err(SignatureError::MalformedHeader(SIGNATURE_HEADER, _))
        ));
    }
}
