//! Counters for `GET /metrics`, rendered in Prometheus' text format. Plain atomics and small
//! maps: a few label sets, written once per delivery, so no metrics framework is needed.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the processing-latency histogram.
const LATENCY_BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

#[derive(Debug, Default)]
pub struct Metrics {
    deliveries: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    processed: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    artifacts: Mutex<BTreeMap<&'static str, u64>>,
    api_requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    reports: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    policy_reloads: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
}

fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
    let mut m = map.lock().unwrap_or_else(|p| p.into_inner());
    *m.entry(key).or_default() += 1;
}

impl Metrics {
    /// A webhook delivery answered at the edge: `queued`, `duplicate`, `ignored`, `ping`,
    /// `unauthorized`, `bad_request`, `too_large`, `unavailable`.
    pub fn delivery(&self, event: &str, outcome: &'static str) {
        bump(&self.deliveries, (event_label(event), outcome));
    }

    /// Work the worker finished, by its kind (`build`, `comment`, …): `ok`, `ignored` or
    /// `error`.
    pub fn processed(&self, work: &'static str, result: &'static str, took: Duration) {
        bump(&self.processed, (work, result));
        let secs = took.as_secs_f64();
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros.fetch_add(
            took.as_micros().min(u128::from(u64::MAX)) as u64,
            Ordering::Relaxed,
        );
    }

    /// An artifact write: `created`, `updated` or `unchanged`.
    pub fn artifact(&self, outcome: &'static str) {
        bump(&self.artifacts, outcome);
    }

    /// A controller's report answered at the edge, by controller (`flux`, `argocd`): `queued`,
    /// `duplicate`, `unauthorized`, `bad_request`, `too_large`, `unavailable`, `not_configured`.
    pub fn report(&self, controller: crate::verify::Controller, outcome: &'static str) {
        bump(&self.reports, (controller.as_str(), outcome));
    }

    /// A policy reload by what asked for it (`sighup`, `push`): `loaded`, `unchanged`,
    /// `invalid` or `unreadable`.
    pub fn policy_reload(&self, trigger: &'static str, outcome: &'static str) {
        bump(&self.policy_reloads, (trigger, outcome));
    }

    /// An API request by route and status code.
    pub fn api(&self, route: &'static str, status: u16) {
        bump(&self.api_requests, (route, status));
    }

    /// Prometheus text exposition. `inbox_depth` is sampled by the caller.
    pub fn render(&self, inbox_depth: u64, extra: &[(&str, &str, u64)]) -> String {
        let mut out = String::new();
        let lock = |m: &Mutex<BTreeMap<(&'static str, &'static str), u64>>| {
            m.lock().unwrap_or_else(|p| p.into_inner()).clone()
        };
        let _ = writeln!(
            out,
            "# HELP auger_webhook_deliveries_total Webhook deliveries by event and outcome."
        );
        let _ = writeln!(out, "# TYPE auger_webhook_deliveries_total counter");
        for ((event, outcome), n) in lock(&self.deliveries) {
            let _ = writeln!(
                out,
                "auger_webhook_deliveries_total{{event=\"{event}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP auger_deliveries_processed_total Deliveries processed by workers."
        );
        let _ = writeln!(out, "# TYPE auger_deliveries_processed_total counter");
        for ((work, result), n) in lock(&self.processed) {
            let _ = writeln!(
                out,
                "auger_deliveries_processed_total{{work=\"{work}\",result=\"{result}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP auger_processing_seconds Time from taking a delivery to marking it done."
        );
        let _ = writeln!(out, "# TYPE auger_processing_seconds histogram");
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            let n = self.latency_buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "auger_processing_seconds_bucket{{le=\"{bound}\"}} {n}");
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let sum = self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "auger_processing_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "auger_processing_seconds_sum {sum}");
        let _ = writeln!(out, "auger_processing_seconds_count {count}");
        let _ = writeln!(
            out,
            "# HELP auger_inbox_depth Deliveries accepted and not yet processed."
        );
        let _ = writeln!(out, "# TYPE auger_inbox_depth gauge");
        let _ = writeln!(out, "auger_inbox_depth {inbox_depth}");
        let _ = writeln!(
            out,
            "# HELP auger_artifacts_recorded_total Artifact writes by outcome."
        );
        let _ = writeln!(out, "# TYPE auger_artifacts_recorded_total counter");
        for (outcome, n) in self.artifacts.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "auger_artifacts_recorded_total{{outcome=\"{outcome}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP auger_api_requests_total API requests by route and status."
        );
        let _ = writeln!(out, "# TYPE auger_api_requests_total counter");
        for ((route, status), n) in self.api_requests.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(
                out,
                "auger_api_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP auger_reports_total Controller reports by controller and outcome."
        );
        let _ = writeln!(out, "# TYPE auger_reports_total counter");
        for ((controller, outcome), n) in lock(&self.reports) {
            let _ = writeln!(
                out,
                "auger_reports_total{{controller=\"{controller}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP auger_policy_reloads_total Policy reloads by trigger and outcome."
        );
        let _ = writeln!(out, "# TYPE auger_policy_reloads_total counter");
        for ((trigger, outcome), n) in lock(&self.policy_reloads) {
            let _ = writeln!(
                out,
                "auger_policy_reloads_total{{trigger=\"{trigger}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        for (name, labels, value) in extra {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
        out
    }
}

/// Event label values: the events auger reads and its own queued requests, under their own
/// names; anything else counts as `other`. The event header is counted before the signature is
/// checked, so a free-form label would let anyone grow the metrics without bound.
const EVENT_LABELS: [(&str, &str); 15] = [
    ("status", "status"),
    ("check_run", "check_run"),
    ("workflow_run", "workflow_run"),
    ("push", "push"),
    ("create", "create"),
    ("delete", "delete"),
    ("pull_request", "pull_request"),
    ("pull_request_review", "pull_request_review"),
    ("issue_comment", "issue_comment"),
    ("installation", "installation"),
    ("installation_repositories", "installation_repositories"),
    ("ping", "ping"),
    ("auger.release", "auger_release"),
    ("auger.artifact", "auger_artifact"),
    ("auger.rollback", "auger_rollback"),
];

fn event_label(event: &str) -> &'static str {
    EVENT_LABELS
        .iter()
        .find(|(name, _)| *name == event)
        .map_or("other", |(_, label)| label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histogram() {
        let m = Metrics::default();
        m.delivery("status", "queued");
        m.delivery("status", "queued");
        m.delivery("evil\"}\n", "ignored");
        m.delivery("zen_garden", "ignored");
        m.processed("release", "ok", Duration::from_millis(20));
        m.processed("build", "ok", Duration::from_millis(3));
        m.artifact("created");
        m.report(crate::verify::Controller::Flux, "queued");
        m.report(crate::verify::Controller::Flux, "queued");
        m.report(crate::verify::Controller::ArgoCd, "unauthorized");
        let text = m.render(7, &[]);
        assert!(
            text.contains("auger_reports_total{controller=\"flux\",outcome=\"queued\"} 2"),
            "{text}"
        );
        assert!(text.contains("auger_reports_total{controller=\"argocd\",outcome=\"unauthorized\"} 1"));
        assert!(text.contains("auger_webhook_deliveries_total{event=\"status\",outcome=\"queued\"} 2"));
        assert!(
            text.contains("auger_webhook_deliveries_total{event=\"other\",outcome=\"ignored\"} 2"),
            "events auger does not know share one label:\n{text}"
        );
        assert!(!text.contains("evil") && !text.contains("zen"), "{text}");
        assert!(text.contains("auger_deliveries_processed_total{work=\"release\",result=\"ok\"} 1"));
        assert!(text.contains("auger_processing_seconds_bucket{le=\"0.001\"} 0"));
        assert!(text.contains("auger_processing_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("auger_inbox_depth 7"));
        assert!(text.contains("auger_artifacts_recorded_total{outcome=\"created\"} 1"));
    }
}
