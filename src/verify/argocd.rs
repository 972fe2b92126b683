//! The body auger's Argo CD Notifications template renders for the `webhook` service (the
//! template is in `docs/controllers.md`; Argo CD itself has no fixed webhook body):
//!
//! ```json
//! {"app": "web-production", "namespace": "argocd", "revision": "<sha>", "revisions": [],
//!  "sync": "Synced", "health": "Healthy", "phase": "Succeeded",
//!  "message": "successfully synced (all tasks run)", "finishedAt": "2026-12-05T10:00:00Z"}
//! ```
//!
//! `revision` is `.status.sync.revision`; multi-source Applications leave it empty and list
//! one revision per source in `revisions`, of which the first that names a git commit is
//! taken. Every member but `app` may be empty, `null` or absent.

use serde::Deserialize;

use super::{Controller, Health, Report, ReportError, Revision, from_json, required, timestamp};

const SOURCE: &str = "argocd notification";

#[derive(Deserialize)]
struct Body {
    app: Option<String>,
    namespace: Option<String>,
    revision: Option<String>,
    revisions: Option<Vec<Option<String>>>,
    sync: Option<String>,
    health: Option<String>,
    phase: Option<String>,
    message: Option<String>,
    #[serde(rename = "healthMessage")]
    health_message: Option<String>,
    #[serde(rename = "finishedAt")]
    finished_at: Option<String>,
}

/// Reads one notification rendered by the documented template.
pub fn parse(body: &[u8]) -> Result<Report, ReportError> {
    let b: Body = from_json(SOURCE, body)?;
    let app = required(SOURCE, "app", b.app)?;
    let word = |s: &Option<String>| s.as_deref().map(str::trim).unwrap_or("").to_owned();
    let (sync, health, phase) = (word(&b.sync), word(&b.health), word(&b.phase));
    let state = if health == "Degraded" || phase == "Failed" || phase == "Error" {
        Health::Failed
    } else if sync == "Synced" && health == "Healthy" {
        Health::Healthy
    } else {
        Health::Progressing
    };
    let revision = b.revision.as_deref().and_then(Revision::parse).or_else(|| {
        b.revisions
            .iter()
            .flatten()
            .flatten()
            .find_map(|r| Revision::parse(r))
    });
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_owned()
        } else {
            s.to_owned()
        }
    };
    let message = [b.message, b.health_message]
        .into_iter()
        .flatten()
        .find(|m| !m.trim().is_empty())
        .unwrap_or_default();
    Ok(Report {
        controller: Controller::ArgoCd,
        object: app,
        kind: Some("Application".to_owned()),
        namespace: b.namespace.filter(|n| !n.is_empty()),
        revision,
        health: state,
        reason: format!("{}/{}/{}", dash(&sync), dash(&health), dash(&phase)),
        message,
        at: timestamp(SOURCE, "finishedAt", b.finished_at.as_deref())?,
        repo: None,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const SHA: &str = "4f1c0a5e2b3d4c5e6f708192a3b4c5d6e7f80912";

    fn parse_value(v: &serde_json::Value) -> Result<Report, ReportError> {
        parse(&serde_json::to_vec(v).unwrap())
    }

    fn body(sync: &str, health: &str, phase: &str) -> serde_json::Value {
        json!({"app": "web", "revision": SHA, "sync": sync, "health": health, "phase": phase, "message": ""})
    }

    #[test]
    fn synced_healthy_fixture() {
        let r = parse(include_bytes!("../../tests/fixtures/argocd/synced-healthy.json")).unwrap();
        assert_eq!(r.controller, Controller::ArgoCd);
        assert_eq!(r.object, "web-production");
        assert_eq!(r.namespace.as_deref(), Some("argocd"));
        assert_eq!(r.health, Health::Healthy);
        assert_eq!(r.reason, "Synced/Healthy/Succeeded");
        assert_eq!(r.revision.map(String::from).as_deref(), Some(SHA));
        assert_eq!(r.at.unwrap().to_rfc3339(), "2026-12-05T10:15:02+00:00");
    }

    #[test]
    fn degraded_fixture() {
        let r = parse(include_bytes!("../../tests/fixtures/argocd/degraded.json")).unwrap();
        assert_eq!(r.health, Health::Failed);
        assert_eq!(r.reason, "Synced/Degraded/Succeeded");
        // The operation succeeded; the health message says what is wrong.
        assert!(r.message.contains("CrashLoopBackOff"), "{}", r.message);
    }

    #[test]
    fn sync_failed_fixture() {
        let r = parse(include_bytes!("../../tests/fixtures/argocd/sync-failed.json")).unwrap();
        assert_eq!(r.health, Health::Failed);
        assert_eq!(r.reason, "OutOfSync/Missing/Failed");
        // The message holds quotes and a newline: the template's toJson kept the body JSON.
        assert!(
            r.message.contains("\"web\"") && r.message.contains('\n'),
            "{}",
            r.message
        );
    }

    #[test]
    fn states_map_to_health() {
        let cases = [
            (("Synced", "Healthy", "Succeeded"), Health::Healthy),
            (("Synced", "Healthy", ""), Health::Healthy),
            (("Synced", "Progressing", "Succeeded"), Health::Progressing),
            (("OutOfSync", "Healthy", "Running"), Health::Progressing),
            (("Synced", "Degraded", "Succeeded"), Health::Failed),
            (("Synced", "Healthy", "Failed"), Health::Failed),
            (("OutOfSync", "Missing", "Error"), Health::Failed),
            (("Unknown", "Unknown", ""), Health::Progressing),
        ];
        for ((sync, health, phase), want) in cases {
            let r = parse_value(&body(sync, health, phase)).unwrap();
            assert_eq!(r.health, want, "{sync}/{health}/{phase}");
        }
        assert_eq!(
            parse_value(&body("Synced", "Healthy", "")).unwrap().reason,
            "Synced/Healthy/-"
        );
    }

    #[test]
    fn a_multi_source_app_gives_its_first_git_revision() {
        let v = json!({"app": "web", "revision": "", "revisions": ["1.2.3", null, SHA], "sync": "Synced", "health": "Healthy"});
        assert_eq!(
            parse_value(&v).unwrap().revision.map(String::from).as_deref(),
            Some(SHA)
        );
        let v = json!({"app": "web", "revision": "1.2.3", "sync": "Synced", "health": "Healthy"});
        assert_eq!(parse_value(&v).unwrap().revision, None, "a Helm chart version");
    }

    #[test]
    fn everything_but_the_app_may_be_missing() {
        let r = parse_value(&json!({"app": "web", "revision": null, "finishedAt": ""})).unwrap();
        assert_eq!((r.revision, r.at, r.health), (None, None, Health::Progressing));
        assert_eq!(r.reason, "-/-/-");
    }

    #[test]
    fn refusals_name_the_field() {
        let cases = [
            (json!({"sync": "Synced"}), "argocd notification: missing app"),
            (json!({"app": " "}), "argocd notification: missing app"),
            (json!({"app": 3}), "argocd notification: app: invalid type"),
            (
                json!({"app": "web", "revisions": "x"}),
                "argocd notification: revisions: invalid type",
            ),
            (
                json!({"app": "web", "finishedAt": "soon"}),
                "argocd notification: finishedAt: \"soon\"",
            ),
        ];
        for (v, want) in cases {
            let e = parse_value(&v).unwrap_err().to_string();
            assert!(e.starts_with(want), "{e} (wanted {want})");
        }
        let e = parse(b"{\"app\": \"web\", \"message\": \"unescaped \" quote\"}").unwrap_err();
        assert!(matches!(e, ReportError::Json { .. }), "{e}");
    }

    /// The simulated Argo CD posts what this parser reads.
    #[test]
    fn the_simulated_argocd_bodies_parse() {
        for (health, phase, expect) in [
            ("Healthy", "Succeeded", Health::Healthy),
            ("Degraded", "Succeeded", Health::Failed),
        ] {
            let body = cluster_sim::ArgoCdReport {
                app: "web-staging".into(),
                namespace: "argocd".into(),
                revision: "0123456789abcdef0123456789abcdef01234567".into(),
                sync: "Synced".into(),
                health: health.into(),
                health_message: String::new(),
                phase: phase.into(),
                message: "successfully synced (all tasks run)".into(),
                finished_at: "2026-12-05T10:15:02Z".into(),
            }
            .to_body();
            let report = parse(&body).unwrap();
            assert_eq!((report.object.as_str(), report.health), ("web-staging", expect));
        }
    }
}
