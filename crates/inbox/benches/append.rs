//! Append throughput of the inbox: durable appends (each acknowledged only after its batch's
//! `fdatasync`) from one appender that waits for each acknowledgement, against many concurrent
//! appenders whose appends the writer thread commits together ("group commit"). The ratio of
//! the two throughputs is the claim; the absolute numbers depend on the disk's flush latency.
//!
//! `cargo bench -p auger-inbox` (the inbox lives under `$TMPDIR`; `TMPDIR=/dev/shm` measures
//! the CPU side alone, since tmpfs flushes cost nothing).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use auger_inbox::{AppendOutcome, Inbox, Options};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// A webhook body of typical size (GitHub `status` deliveries are a few KB).
const BODY: usize = 4096;

/// Appends per iteration with one appender (each waits for its own sync).
const SEQUENTIAL: u64 = 32;
/// Concurrent appenders, and appends each makes per iteration.
const APPENDERS: u64 = 64;
const PER_APPENDER: u64 = 8;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let tmp = tempfile::tempdir().expect("temporary directory");
    let (inbox, _) = rt
        .block_on(async { Inbox::open(tmp.path().join("inbox"), Options::default()) })
        .expect("open the inbox");
    let next_id = AtomicU64::new(0);
    let id = || format!("delivery-{}", next_id.fetch_add(1, Ordering::Relaxed));

    let mut group = c.benchmark_group("append");
    group.sample_size(20).measurement_time(Duration::from_secs(10));

    group.throughput(Throughput::Elements(SEQUENTIAL));
    group.bench_function("one_appender", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let ids: Vec<String> = (0..SEQUENTIAL).map(|_| id()).collect();
                spent += rt.block_on(async {
                    let t = Instant::now();
                    for id in &ids {
                        let out = inbox.append(id, "status", vec![7; BODY]).await.expect("append");
                        assert!(matches!(out, AppendOutcome::Appended(_)));
                    }
                    t.elapsed()
                });
                rt.block_on(drain(&inbox, SEQUENTIAL as usize));
            }
            spent
        })
    });

    group.throughput(Throughput::Elements(APPENDERS * PER_APPENDER));
    group.bench_function("concurrent_appenders", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let batches: Vec<Vec<String>> = (0..APPENDERS)
                    .map(|_| (0..PER_APPENDER).map(|_| id()).collect())
                    .collect();
                spent += rt.block_on(async {
                    let t = Instant::now();
                    let tasks: Vec<_> = batches
                        .into_iter()
                        .map(|ids| {
                            let inbox = inbox.clone();
                            tokio::spawn(async move {
                                for id in &ids {
                                    let out =
                                        inbox.append(id, "status", vec![7; BODY]).await.expect("append");
                                    assert!(matches!(out, AppendOutcome::Appended(_)));
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.expect("appender task");
                    }
                    t.elapsed()
                });
                rt.block_on(drain(&inbox, (APPENDERS * PER_APPENDER) as usize));
            }
            spent
        })
    });
    group.finish();

    let stats = inbox.stats();
    println!(
        "inbox: {} appends in {} fdatasyncs ({:.1} appends per sync overall)",
        stats.appended,
        stats.fsyncs,
        stats.appended as f64 / stats.fsyncs.max(1) as f64
    );
    rt.block_on(inbox.close()).expect("close the inbox");
}

/// Take and finish what an iteration appended (untimed), so segments are retired and recycled
/// as in production instead of piling up on disk.
async fn drain(inbox: &Inbox, n: usize) {
    let mut left = n;
    while left > 0 {
        let taken = inbox.take(left).await.expect("take");
        left -= taken.len();
        inbox
            .mark_done_many(taken.into_iter().map(|e| e.seq).collect())
            .await
            .expect("mark done");
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
