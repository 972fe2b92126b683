//! The Argo CD report: what Argo CD Notifications' webhook service posts with the body template
//! below. Argo CD has no fixed event format (the body is whatever the template renders), so
//! this body and [`BODY_TEMPLATE`] go together: auger's README gives the template to paste, and
//! the simulator posts what that template renders.

/// The webhook template, for `argocd-notifications-cm` (`template.<name>: |` then
/// `webhook: <service>: {method: POST, body: ...}`). `toJson` (Sprig, which notifications-engine
/// loads) quotes each value, so a message with quotes stays valid JSON.
pub const BODY_TEMPLATE: &str = r#"{"app": {{toJson .app.metadata.name}}, "revision": {{toJson .app.status.sync.revision}}, "sync": {{toJson .app.status.sync.status}}, "health": {{toJson .app.status.health.status}}, "phase": {{toJson .app.status.operationState.phase}}, "message": {{toJson .app.status.operationState.message}}}"#;

/// Message of a sync whose every task ran, as Argo CD words it.
pub const SYNC_SUCCEEDED: &str = "successfully synced (all tasks run)";

/// The rendered body: the Application's name and its status fields at the time of the trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgoCdReport {
    /// `.app.metadata.name`
    pub app: String,
    /// `.app.status.sync.revision`: the full commit sha.
    pub revision: String,
    /// `.app.status.sync.status`: `Synced`, `OutOfSync` or `Unknown`.
    pub sync: String,
    /// `.app.status.health.status`: `Healthy`, `Progressing`, `Degraded`, `Suspended`,
    /// `Missing` or `Unknown`.
    pub health: String,
    /// `.app.status.operationState.phase`: `Running`, `Succeeded`, `Failed`, `Error` or
    /// `Terminating`.
    pub phase: String,
    /// `.app.status.operationState.message`.
    pub message: String,
}

impl ArgoCdReport {
    /// The body with the spacing the template renders (`"key": value`), so a test comparing
    /// bytes with a rendered template agrees.
    pub fn to_body(&self) -> Vec<u8> {
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        format!(
            "{{\"app\": {}, \"revision\": {}, \"sync\": {}, \"health\": {}, \"phase\": {}, \"message\": {}}}",
            q(&self.app),
            q(&self.revision),
            q(&self.sync),
            q(&self.health),
            q(&self.phase),
            q(&self.message)
        )
        .into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_what_the_template_renders_and_valid_json() {
        let report = ArgoCdReport {
            app: "web-staging".into(),
            revision: "abc".into(),
            sync: "Synced".into(),
            health: "Degraded".into(),
            phase: "Succeeded".into(),
            message: "say \"hi\"".into(),
        };
        let body = String::from_utf8(report.to_body()).unwrap();
        // Substituting each `{{toJson …}}` with its quoted value gives the same text.
        let rendered = BODY_TEMPLATE
            .replace("{{toJson .app.metadata.name}}", "\"web-staging\"")
            .replace("{{toJson .app.status.sync.revision}}", "\"abc\"")
            .replace("{{toJson .app.status.sync.status}}", "\"Synced\"")
            .replace("{{toJson .app.status.health.status}}", "\"Degraded\"")
            .replace("{{toJson .app.status.operationState.phase}}", "\"Succeeded\"")
            .replace(
                "{{toJson .app.status.operationState.message}}",
                "\"say \\\"hi\\\"\"",
            );
        assert_eq!(body, rendered);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["message"], "say \"hi\"");
    }
}
