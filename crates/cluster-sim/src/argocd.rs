//! The Argo CD report: what Argo CD Notifications' webhook service posts with the body template
//! auger documents (`docs/controllers.md`, `template.auger-report`). Argo CD has no fixed event
//! format (the body is whatever the template renders), so the simulator renders the fields of
//! that template, and a test keeps the two in step.

/// Message of a sync whose every task ran, as Argo CD words it.
pub const SYNC_SUCCEEDED: &str = "successfully synced (all tasks run)";

/// The rendered body: the Application's name and its status fields at the time of the trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgoCdReport {
    /// `.app.metadata.name`
    pub app: String,
    /// `.app.metadata.namespace`
    pub namespace: String,
    /// `.app.status.sync.revision`: the full commit sha.
    pub revision: String,
    /// `.app.status.sync.status`: `Synced`, `OutOfSync` or `Unknown`.
    pub sync: String,
    /// `.app.status.health.status`: `Healthy`, `Progressing`, `Degraded`, `Suspended`,
    /// `Missing` or `Unknown`.
    pub health: String,
    /// `.app.status.health.message`
    pub health_message: String,
    /// `.app.status.operationState.phase`: `Running`, `Succeeded`, `Failed`, `Error` or
    /// `Terminating`.
    pub phase: String,
    /// `.app.status.operationState.message`.
    pub message: String,
    /// `.app.status.operationState.finishedAt` (RFC 3339).
    pub finished_at: String,
}

impl ArgoCdReport {
    /// The body as the documented template renders it (single-source apps: `revisions` empty).
    pub fn to_body(&self) -> Vec<u8> {
        serde_json::json!({
            "app": self.app,
            "namespace": self.namespace,
            "revision": self.revision,
            "revisions": [],
            "sync": self.sync,
            "health": self.health,
            "healthMessage": self.health_message,
            "phase": self.phase,
            "message": self.message,
            "finishedAt": self.finished_at,
        })
        .to_string()
        .into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The member names of the body in auger's documented template.
    fn documented_members() -> Vec<String> {
        let doc = include_str!("../../../docs/controllers.md");
        let start = doc
            .find("template.auger-report")
            .expect("the template is documented");
        let body = &doc[start..];
        let body = &body[body.find("body: |").expect("a body")..];
        let body = &body[..body.find("trigger.").expect("triggers follow")];
        body.lines()
            .filter_map(|l| {
                l.trim()
                    .strip_prefix('"')?
                    .split_once('"')
                    .map(|(k, _)| k.to_owned())
            })
            .collect()
    }

    #[test]
    fn the_body_has_the_members_of_the_documented_template_and_is_valid_json() {
        let report = ArgoCdReport {
            app: "web-staging".into(),
            namespace: "argocd".into(),
            revision: "abc".into(),
            sync: "Synced".into(),
            health: "Degraded".into(),
            health_message: String::new(),
            phase: "Succeeded".into(),
            message: "say \"hi\"".into(),
            finished_at: "2026-12-05T10:15:02Z".into(),
        };
        let v: serde_json::Value = serde_json::from_slice(&report.to_body()).unwrap();
        assert_eq!(v["message"], "say \"hi\"");
        let mut members: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        let mut documented = documented_members();
        members.sort();
        documented.sort();
        assert_eq!(members, documented);
    }
}
