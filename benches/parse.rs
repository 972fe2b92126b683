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

use std::hint::black_box;
use std::path::Path;

use auger::webhook::events::{PullRequestEvent, StatusEvent};
use auger::webhook::parse_event_kept;
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
    c.final_summary();
}
