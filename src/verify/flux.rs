//! Flux notification-controller's events, as its `generic` and `generic-hmac` providers post
//! them: the JSON `Event` of fluxcd/pkg (`involvedObject`, `severity`, `timestamp`, `message`,
//! `reason`, `metadata`, `reportingController`, …). Everything Flux may leave out is optional
//! here except the object's name and the severity; fields auger does not read are ignored.
//!
//! The revision is in `metadata`. Controllers record it under `<api group>/revision` (also
//! `originRevision`, `commit`); notification-controller versions differ in whether they strip
//! that group prefix before posting, so both spellings are read, in Flux's own order of
//! preference: `commit`, then `originRevision`, then `revision`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Controller, Health, Report, ReportError, Revision, from_json, required, timestamp};

const SOURCE: &str = "flux event";

/// The metadata keys that may hold the revision, most specific first (fluxcd/pkg
/// `Event.GetRevision`).
const REVISION_KEYS: [&str; 3] = ["commit", "originRevision", "revision"];

/// `info` reasons that mean the object is applied and healthy: the Ready reason of a
/// Kustomization, and helm-controller's successful actions.
const SUCCEEDED: [&str; 5] = [
    "ReconciliationSucceeded",
    "Succeeded",
    "InstallSucceeded",
    "UpgradeSucceeded",
    "TestSucceeded",
];

/// `info` reasons of a HelmRelease remediation: it worked, but undid the release.
const UNDONE: [&str; 2] = ["RollbackSucceeded", "UninstallSucceeded"];

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "involvedObject")]
    involved_object: Option<ObjectRef>,
    severity: Option<String>,
    timestamp: Option<String>,
    message: Option<String>,
    reason: Option<String>,
    /// `map[string]string` in Go; anything but a string value is skipped rather than refused.
    metadata: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct ObjectRef {
    kind: Option<String>,
    name: Option<String>,
    namespace: Option<String>,
}

/// Reads one Flux event.
pub fn parse(body: &[u8]) -> Result<Report, ReportError> {
    let event: Event = from_json(SOURCE, body)?;
    let object = event.involved_object.ok_or(ReportError::Missing {
        what: SOURCE,
        field: "involvedObject",
    })?;
    let name = required(SOURCE, "involvedObject.name", object.name)?;
    let severity = required(SOURCE, "severity", event.severity)?;
    let reason = event.reason.unwrap_or_default();
    let health = match severity.as_str() {
        "error" => Health::Failed,
        "info" if SUCCEEDED.contains(&reason.as_str()) => Health::Healthy,
        "info" if UNDONE.contains(&reason.as_str()) => Health::Failed,
        // Newer controllers also emit `trace` events about steps of a reconciliation.
        "info" | "trace" => Health::Progressing,
        other => {
            return Err(ReportError::Invalid {
                what: SOURCE,
                field: "severity".into(),
                message: format!("{other:?} is not info, error or trace"),
            });
        }
    };
    Ok(Report {
        controller: Controller::Flux,
        object: name,
        kind: object.kind.filter(|k| !k.is_empty()),
        namespace: object.namespace.filter(|n| !n.is_empty()),
        revision: event.metadata.as_ref().and_then(revision),
        health,
        reason,
        message: event.message.unwrap_or_default(),
        at: timestamp(SOURCE, "timestamp", event.timestamp.as_deref())?,
        repo: None,
    })
}

/// The first metadata value, in [`REVISION_KEYS`] order, that names a git commit, under its
/// bare key or any `<group>/` prefix. An OCI digest under `revision` thus yields to the git
/// commit under `originRevision`.
fn revision(metadata: &BTreeMap<String, serde_json::Value>) -> Option<Revision> {
    REVISION_KEYS.iter().find_map(|want| {
        metadata
            .iter()
            .filter(|(key, _)| key.rsplit('/').next() == Some(want))
            .find_map(|(_, value)| value.as_str().and_then(Revision::parse))
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    fn parse_value(v: &serde_json::Value) -> Result<Report, ReportError> {
        parse(&serde_json::to_vec(v).unwrap())
    }

    fn event(severity: &str, reason: &str, metadata: serde_json::Value) -> serde_json::Value {
        json!({
            "involvedObject": {
                "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
                "kind": "Kustomization",
                "name": "apps-production",
                "namespace": "flux-system",
                "uid": "7d0cdc51-ddcf-4743-b223-83ca5c699632"
            },
            "severity": severity,
            "timestamp": "2026-12-05T10:00:00Z",
            "message": "msg",
            "reason": reason,
            "metadata": metadata,
            "reportingController": "kustomize-controller"
        })
    }

    #[test]
    fn kustomization_succeeded_fixture() {
        let r = parse(include_bytes!(
            "../../tests/fixtures/flux/kustomization-succeeded.json"
        ))
        .unwrap();
        assert_eq!(r.controller, Controller::Flux);
        assert_eq!(r.object, "apps-production");
        assert_eq!(r.kind.as_deref(), Some("Kustomization"));
        assert_eq!(r.namespace.as_deref(), Some("flux-system"));
        assert_eq!(r.health, Health::Healthy);
        assert_eq!(r.reason, "ReconciliationSucceeded");
        assert_eq!(
            r.revision.as_ref().map(Revision::as_str),
            Some("4f1c0a5e2b3d4c5e6f708192a3b4c5d6e7f80912")
        );
        assert_eq!(r.at.unwrap().to_rfc3339(), "2026-12-05T10:15:02+00:00");
        assert!(r.message.starts_with("Reconciliation finished"), "{}", r.message);
    }

    #[test]
    fn kustomization_failed_fixture() {
        let r = parse(include_bytes!(
            "../../tests/fixtures/flux/kustomization-failed.json"
        ))
        .unwrap();
        assert_eq!(r.health, Health::Failed);
        assert_eq!(r.reason, "HealthCheckFailed");
        assert!(r.message.contains("Deployment/web/web"), "{}", r.message);
        assert_eq!(
            r.revision.as_ref().map(Revision::as_str),
            Some("9a8b7c6d5e4f30211203f4e5d6c7b8a9f0e1d2c3")
        );
    }

    #[test]
    fn helmrelease_upgrade_succeeded_fixture() {
        let r = parse(include_bytes!(
            "../../tests/fixtures/flux/helmrelease-upgrade-succeeded.json"
        ))
        .unwrap();
        assert_eq!(r.kind.as_deref(), Some("HelmRelease"));
        assert_eq!(r.object, "web");
        assert_eq!(r.health, Health::Healthy);
        assert_eq!(r.reason, "UpgradeSucceeded");
        // The chart came from the gitops repository with `reconcileStrategy: Revision`: its
        // version carries the source revision as build metadata.
        assert_eq!(r.revision.as_ref().map(Revision::as_str), Some("4f1c0a5e2b3d"));
    }

    #[test]
    fn helmrelease_failed_fixture() {
        let r = parse(include_bytes!(
            "../../tests/fixtures/flux/helmrelease-failed.json"
        ))
        .unwrap();
        assert_eq!(r.health, Health::Failed);
        assert_eq!(r.reason, "UpgradeFailed");
        assert_eq!(r.revision, None, "a plain chart version names no commit");
    }

    #[test]
    fn the_revision_is_read_with_or_without_the_group_prefix() {
        for key in ["revision", "kustomize.toolkit.fluxcd.io/revision"] {
            let r = parse_value(&event(
                "info",
                "Progressing",
                json!({ key: format!("main@sha1:{SHA}") }),
            ))
            .unwrap();
            assert_eq!(r.revision.map(String::from).as_deref(), Some(SHA), "{key}");
            assert_eq!(r.health, Health::Progressing);
        }
        // The older format, as Flux's own docs still show it.
        let r = parse_value(&event(
            "info",
            "ReconciliationSucceeded",
            json!({"revision": format!("main/{SHA}")}),
        ))
        .unwrap();
        assert_eq!(r.revision.map(String::from).as_deref(), Some(SHA));
    }

    #[test]
    fn an_origin_revision_is_preferred_and_an_oci_digest_yields_to_it() {
        let meta = json!({
            "revision": "latest@sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
            "originRevision": format!("main@sha1:{SHA}"),
            "token": "abc"
        });
        let r = parse_value(&event("info", "ReconciliationSucceeded", meta)).unwrap();
        assert_eq!(r.revision.map(String::from).as_deref(), Some(SHA));
        let only_oci = json!({"revision": "latest@sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"});
        let r = parse_value(&event("info", "ReconciliationSucceeded", only_oci)).unwrap();
        assert_eq!(r.revision, None);
    }

    #[test]
    fn severities_and_reasons_map_to_health() {
        let cases = [
            ("error", "ReconciliationFailed", Health::Failed),
            ("error", "ReconciliationSucceeded", Health::Failed),
            ("info", "ReconciliationSucceeded", Health::Healthy),
            ("info", "InstallSucceeded", Health::Healthy),
            ("info", "TestSucceeded", Health::Healthy),
            ("info", "Progressing", Health::Progressing),
            ("info", "DependencyNotReady", Health::Progressing),
            ("info", "RollbackSucceeded", Health::Failed),
            ("trace", "Progressing", Health::Progressing),
        ];
        for (severity, reason, health) in cases {
            let r = parse_value(&event(severity, reason, json!({}))).unwrap();
            assert_eq!(r.health, health, "{severity} {reason}");
        }
    }

    #[test]
    fn what_flux_may_leave_out_or_send_as_null_is_optional() {
        let r = parse_value(&json!({
            "involvedObject": {"name": "apps", "kind": null, "namespace": null},
            "severity": "info",
            "timestamp": null,
            "message": null,
            "reason": null,
            "metadata": null,
            "reportingController": null,
            "someFutureField": {"x": 1}
        }))
        .unwrap();
        assert_eq!(
            (r.object.as_str(), r.kind, r.namespace, r.revision, r.at, r.health),
            ("apps", None, None, None, None, Health::Progressing)
        );
        // A metadata value that is not a string is skipped, not refused.
        let r = parse_value(&event(
            "info",
            "Progressing",
            json!({"token": 7, "revision": format!("main@sha1:{SHA}")}),
        ))
        .unwrap();
        assert!(r.revision.is_some());
    }

    #[test]
    fn refusals_name_the_field() {
        let mut no_name = event("info", "Progressing", json!({}));
        no_name["involvedObject"]["name"] = json!(null);
        let mut no_object = event("info", "Progressing", json!({}));
        no_object.as_object_mut().unwrap().remove("involvedObject");
        let mut no_severity = event("info", "Progressing", json!({}));
        no_severity.as_object_mut().unwrap().remove("severity");
        let mut bad_name = event("info", "Progressing", json!({}));
        bad_name["involvedObject"]["name"] = json!(12);
        let cases = [
            (no_name, "flux event: missing involvedObject.name"),
            (no_object, "flux event: missing involvedObject"),
            (no_severity, "flux event: missing severity"),
            (
                event("warning", "X", json!({})),
                "flux event: severity: \"warning\" is not info, error or trace",
            ),
            (bad_name, "flux event: involvedObject.name: invalid type"),
        ];
        for (v, want) in cases {
            let e = parse_value(&v).unwrap_err().to_string();
            assert!(e.starts_with(want), "{e} (wanted {want})");
        }
        let mut bad_time = event("info", "Progressing", json!({}));
        bad_time["timestamp"] = json!("yesterday");
        let e = parse_value(&bad_time).unwrap_err().to_string();
        assert!(e.starts_with("flux event: timestamp: \"yesterday\""), "{e}");
        for body in [&b"{\"severity\": \"info\", oops"[..], b"[]", b"", b"{} {}"] {
            let e = parse(body).unwrap_err();
            assert!(e.to_string().starts_with("flux event: "), "{e}");
        }
    }

    /// The simulated controller (`auger demo`, the tests) posts what this parser reads, in
    /// both metadata key styles.
    #[test]
    fn the_simulated_flux_events_parse_as_flux_events() {
        for keys in [
            cluster_sim::MetadataKeys::Stripped,
            cluster_sim::MetadataKeys::Prefixed,
        ] {
            for (severity, reason, health) in [
                (
                    cluster_sim::Severity::Info,
                    "ReconciliationSucceeded",
                    Health::Healthy,
                ),
                (cluster_sim::Severity::Error, "HealthCheckFailed", Health::Failed),
            ] {
                let event = cluster_sim::FluxEvent {
                    involved_object: cluster_sim::event::InvolvedObject {
                        kind: "Kustomization".into(),
                        namespace: "flux-system".into(),
                        name: "apps-staging".into(),
                        uid: "u".into(),
                        api_version: "kustomize.toolkit.fluxcd.io/v1".into(),
                        resource_version: "1".into(),
                    },
                    severity,
                    timestamp: "2026-12-05T10:00:00Z".into(),
                    message: "m".into(),
                    reason: reason.into(),
                    metadata: cluster_sim::event::kustomization_metadata(
                        keys,
                        &format!("main@sha1:{SHA}"),
                        true,
                    ),
                    reporting_controller: "kustomize-controller".into(),
                    reporting_instance: String::new(),
                };
                let report = parse(&event.to_body()).unwrap();
                assert_eq!(report.health, health, "{reason}");
                assert_eq!(report.object, "apps-staging");
                assert_eq!(report.revision.unwrap().as_str(), SHA);
            }
        }
    }
}
