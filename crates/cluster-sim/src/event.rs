//! Flux's event, as notification-controller's `generic-hmac` provider posts it.
//!
//! The field order, the omitted-when-empty fields and the timestamp precision follow the Go
//! type (`fluxcd/pkg/apis/event/v1beta1.Event` around a `corev1.ObjectReference`), so the body
//! serialises to the same bytes Flux would sign.

use std::collections::BTreeMap;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

/// API group of a Kustomization: the prefix kustomize-controller puts on its metadata keys.
pub const KUSTOMIZE_GROUP: &str = "kustomize.toolkit.fluxcd.io";
/// The apiVersion of the Kustomization objects this simulator reports about.
pub const KUSTOMIZE_API_VERSION: &str = "kustomize.toolkit.fluxcd.io/v1";
/// `reportingController` of every event.
pub const REPORTING_CONTROLLER: &str = "kustomize-controller";
/// What a real kustomize-controller pod's hostname looks like; Flux sends it as
/// `reportingInstance`.
pub const REPORTING_INSTANCE: &str = "kustomize-controller-6bc5d5b4f7-sim00";

/// How notification-controller names the metadata keys it forwards.
///
/// Flux 2.5 (notification-controller v1.5.0, RFC 0008) strips the involved object's API group
/// from the keys before posting (`revision`); earlier versions post them as the controller
/// recorded them (`kustomize.toolkit.fluxcd.io/revision`). A receiver must accept both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetadataKeys {
    /// `revision`, `commit_status`: what current Flux posts.
    #[default]
    Stripped,
    /// `kustomize.toolkit.fluxcd.io/revision`: what Flux before 2.5 posts.
    Prefixed,
}

/// `corev1.ObjectReference` as Flux's recorder fills it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct InvolvedObject {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub api_version: String,
    pub resource_version: String,
}

/// One Flux event. Serialise it with [`FluxEvent::to_body`] to get the bytes that are signed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FluxEvent {
    pub involved_object: InvolvedObject,
    pub severity: Severity,
    /// RFC 3339 in UTC with whole seconds, as `metav1.Time` marshals.
    pub timestamp: String,
    pub message: String,
    pub reason: String,
    /// Sorted keys, as Go marshals a map.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    pub reporting_controller: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reporting_instance: String,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Error => "error",
        }
    }
}

impl FluxEvent {
    /// The exact request body: compact JSON, as Go's `json.Marshal` writes it.
    pub fn to_body(&self) -> Vec<u8> {
        // Only strings and string maps: serialisation cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Metadata for an event about a Kustomization at `revision`; `commit_status` marks the
/// success event that Flux's git providers turn into a commit status.
pub fn kustomization_metadata(
    keys: MetadataKeys,
    revision: &str,
    commit_status: bool,
) -> BTreeMap<String, String> {
    let key = |name: &str| match keys {
        MetadataKeys::Stripped => name.to_string(),
        MetadataKeys::Prefixed => format!("{KUSTOMIZE_GROUP}/{name}"),
    };
    let mut metadata = BTreeMap::new();
    metadata.insert(key("revision"), revision.to_string());
    if commit_status {
        metadata.insert(key("commit_status"), "update".to_string());
    }
    metadata
}

/// The `X-Signature` header value of the `generic-hmac` provider:
/// `sha256=<hex HMAC-SHA256 of the body>`.
pub fn signature(body: &[u8], secret: &[u8]) -> String {
    // HMAC accepts keys of any length; new_from_slice only fails for fixed-size MACs.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC-SHA256 takes a key of any length"),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A stable UID for an object, shaped like a Kubernetes UID, so repeated runs report the same.
pub fn object_uid(kind: &str, namespace: &str, name: &str) -> String {
    use sha2::Digest;
    let digest = Sha256::digest(format!("{kind}/{namespace}/{name}").as_bytes());
    let h = hex::encode(&digest[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A duration written as Go's `time.Duration.String()` does ("1.5s", "10m0s", "250ms"), since
/// Flux's messages are built with it.
pub fn go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", fraction(nanos, 1_000));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", fraction(nanos, 1_000_000));
    }
    let secs = d.as_secs();
    let (h, m) = (secs / 3600, (secs % 3600) / 60);
    let s = fraction(
        u128::from(secs % 60) * 1_000_000_000 + u128::from(d.subsec_nanos()),
        1_000_000_000,
    );
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// `value / unit` with the remainder as decimals, trailing zeros dropped.
fn fraction(value: u128, unit: u128) -> String {
    let whole = value / unit;
    let rest = value % unit;
    if rest == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{rest:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_go() {
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(Duration::from_nanos(15)), "15ns");
        assert_eq!(go_duration(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(go_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(go_duration(Duration::from_millis(1200)), "1.2s");
        assert_eq!(go_duration(Duration::from_secs(600)), "10m0s");
        assert_eq!(go_duration(Duration::from_secs(3723)), "1h2m3s");
        assert_eq!(go_duration(Duration::from_nanos(2_000_000_001)), "2.000000001s");
        assert_eq!(go_duration(Duration::from_nanos(1_500)), "1.5µs");
    }

    #[test]
    fn body_has_flux_field_order_and_omits_empty_fields() {
        let event = FluxEvent {
            involved_object: InvolvedObject {
                kind: "Kustomization".into(),
                namespace: "flux-system".into(),
                name: "apps".into(),
                uid: "u".into(),
                api_version: KUSTOMIZE_API_VERSION.into(),
                resource_version: "7".into(),
            },
            severity: Severity::Info,
            timestamp: "2026-01-02T03:04:05Z".into(),
            message: "m".into(),
            reason: "ReconciliationSucceeded".into(),
            metadata: kustomization_metadata(MetadataKeys::Prefixed, "main@sha1:abc", true),
            reporting_controller: REPORTING_CONTROLLER.into(),
            reporting_instance: String::new(),
        };
        let body = String::from_utf8(event.to_body()).unwrap();
        assert_eq!(
            body,
            r#"{"involvedObject":{"kind":"Kustomization","namespace":"flux-system","name":"apps","uid":"u","apiVersion":"kustomize.toolkit.fluxcd.io/v1","resourceVersion":"7"},"severity":"info","timestamp":"2026-01-02T03:04:05Z","message":"m","reason":"ReconciliationSucceeded","metadata":{"kustomize.toolkit.fluxcd.io/commit_status":"update","kustomize.toolkit.fluxcd.io/revision":"main@sha1:abc"},"reportingController":"kustomize-controller"}"#
        );
    }

    #[test]
    fn signature_matches_a_known_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"what do ya want for nothing?", b"Jefe"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn uids_are_stable_and_shaped_like_kubernetes_uids() {
        let a = object_uid("Kustomization", "flux-system", "apps");
        assert_eq!(a, object_uid("Kustomization", "flux-system", "apps"));
        assert_ne!(a, object_uid("Kustomization", "flux-system", "infra"));
        let parts: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12]);
    }
}
