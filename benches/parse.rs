//! What the edge spends turning a webhook body into a typed event and the bytes the inbox
//! keeps, against the way it did that before the skimmer (issue 4), in the same run: only the
//! ratio is a claim on this shared machine.
//!
//! `cargo bench --bench parse`
//!
//! * `whole`: serde_json parses the whole payload into the typed event, which is serialized
//!   again for the inbox (`Event::compact`), the path before `webhook::skim`.
//! * `skim`: `parse_event_kept`, the edge's path: the skimmer checks the body and keeps the
//!   members auger reads, serde parses only those.
//!
//! And where typed work moved the policy decision (issue 16), for a green `status` a policy names:
//!
//! * `edge/kept`: the edge before: skim-parse, then store the kept members as they are.
//! * `edge/work`: the edge now: skim-parse, `work::classify`, `work::encode` (and each of the
//!   last two alone: `classify_only`, `encode_only`).
//! * `worker/event`: the worker before: parse the kept members back, `intake::from_event`.
//! * `worker/work`: the worker now: `work::decode`.

use std::hint::black_box;
use std::path::Path;

use auger::artifact::intake;
use auger::policy::{Policy, PolicySet};
use auger::webhook::events::{PullRequestEvent, StatusEvent};
use auger::webhook::{parse_event, parse_event_kept};
use auger::work::{self, Scope};
use criterion::Criterion;
use serde::de::DeserializeOwned;

fn fixture(file: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/webhooks")
        .join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The pre-skimmer path for one event type.
type Baseline = fn(&[u8]) -> Vec<u8>;

fn whole<T: DeserializeOwned + serde::Serialize>(body: &[u8]) -> Vec<u8> {
    let event: T = serde_json::from_slice(body).unwrap();
    serde_json::to_vec(&event).unwrap()
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let cases: [(&str, &str, Baseline); 2] = [
        ("status", "status.payload.json", whole::<StatusEvent>),
        (
            "pull_request",
            "pull_request.opened.payload.json",
            whole::<PullRequestEvent>,
        ),
    ];
    for (event, file, baseline) in cases {
        let body = fixture(file);
        let mut group = c.benchmark_group(format!("parse/{event} ({} bytes)", body.len()));
        group.bench_function("whole", |b| b.iter(|| baseline(black_box(&body))));
        group.bench_function("skim", |b| {
            b.iter(|| parse_event_kept(event, black_box(&body)).unwrap())
        });
        group.finish();
    }
    typed_work(&mut c);
    c.final_summary();
}

fn typed_work(c: &mut Criterion) {
    let body = fixture("status.payload.json");
    let text = "app = \"hello\"\nrepo = \"Codertocat/Hello-World\"\ntemplate = \"t\"\n[artifact]\nsignals = [\"status:default\"]\n";
    let policies = PolicySet::from_policies([Policy::from_toml("p.toml", text).unwrap()]).unwrap();
    let scope = Scope {
        policies: &policies,
        gitops_repos: &[],
        config_repo: None,
    };
    let mut edge = c.benchmark_group("edge/status");
    edge.bench_function("kept", |b| {
        b.iter(|| parse_event_kept("status", black_box(&body)).unwrap().1)
    });
    edge.bench_function("work", |b| {
        b.iter(|| {
            let (event, _) = parse_event_kept("status", black_box(&body)).unwrap();
            work::encode(&work::classify(&event, scope).unwrap())
        })
    });
    let (ev, _) = parse_event_kept("status", &body).unwrap();
    edge.bench_function("classify_only", |b| {
        b.iter(|| work::classify(black_box(&ev), scope))
    });
    let w = work::classify(&ev, scope).unwrap();
    edge.bench_function("encode_only", |b| b.iter(|| work::encode(black_box(&w))));
    edge.finish();
    let kept = parse_event_kept("status", &body).unwrap().1.unwrap();
    let (event, _) = parse_event_kept("status", &body).unwrap();
    let stored = work::encode(&work::classify(&event, scope).unwrap());
    let kind = work::inbox_kind("status");
    let mut worker = c.benchmark_group("worker/status");
    worker.bench_function("event", |b| {
        b.iter(|| intake::from_event(&parse_event("status", black_box(&kept)).unwrap(), &policies))
    });
    worker.bench_function("work", |b| {
        b.iter(|| work::decode(&kind, black_box(&stored), scope).unwrap())
    });
    worker.finish();
}
