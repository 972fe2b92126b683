//! Load test for the durable inbox: appends/s and per-append latency (each append resolves only
//! after its batch is fdatasync'd).
//!
//! cargo run --release --example inbox_load -- [DIR] [BODY_BYTES]
//!
//! DIR defaults to a temporary directory under $TMPDIR; point it at the disk the bot will use.
//! INBOX_LOAD_PREALLOC=0 turns segment preallocation off (for comparison).
//! INBOX_LOAD_IDS=N adds a run of N small append+done pairs and times the reopen (dedupe
//! rebuild of N ids).

use std::sync::Arc;
use std::time::{Duration, Instant};

use auger::inbox::{AppendOutcome, Inbox, Options};

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn report(name: &str, n: usize, elapsed: Duration, mut lat: Vec<Duration>, inbox: &Inbox) {
    lat.sort_unstable();
    let s = inbox.stats();
    println!(
        "{name:<34} {n:>7} appends {:>9.0}/s  p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>6.2} ms  fsyncs {:>6}  ({:.1} appends/fsync)",
        n as f64 / elapsed.as_secs_f64(),
        pct(&lat, 0.50).as_secs_f64() * 1e3,
        pct(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        s.fsyncs,
        s.appended as f64 / s.fsyncs.max(1) as f64,
    );
}

fn options() -> Options {
    Options {
        preallocate: std::env::var("INBOX_LOAD_PREALLOC").map_or(true, |v| v != "0"),
        ..Options::default()
    }
}

fn open(root: &std::path::Path, name: &str) -> Inbox {
    let (inbox, _) = Inbox::open(root.join(name), options()).expect("open inbox");
    inbox
}

/// `tasks` appenders each doing `per_task` appends back to back; optionally a worker that
/// takes entries and marks them done concurrently (done markers share the group commit).
async fn closed_loop(
    root: &std::path::Path,
    tasks: usize,
    per_task: usize,
    body: Arc<Vec<u8>>,
    with_worker: bool,
) {
    let name = format!("closed-{tasks}-{with_worker}");
    let inbox = open(root, &name);
    let worker = with_worker.then(|| {
        let inbox = inbox.clone();
        tokio::spawn(async move {
            loop {
                let batch = inbox.take(256).await.expect("take");
                let seqs: Vec<u64> = batch.iter().map(|e| e.seq).collect();
                // Fails with Closed once the run is over; the entries are simply replayed.
                if seqs.is_empty() || inbox.mark_done_many(seqs).await.is_err() {
                    return;
                }
            }
        })
    });
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let inbox = inbox.clone();
            let body = body.clone();
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(per_task);
                for i in 0..per_task {
                    let id = format!("{t:04}-{i:08}-0000-0000-000000000000");
                    let t0 = Instant::now();
                    let out = inbox.append(&id, "push", body.to_vec()).await;
                    lat.push(t0.elapsed());
                    assert!(matches!(out, Ok(AppendOutcome::Appended(_))), "{out:?}");
                }
                lat
            })
        })
        .collect();
    let mut lat = Vec::new();
    for h in handles {
        lat.extend(h.await.expect("task"));
    }
    let elapsed = start.elapsed();
    let label = format!("{tasks} appenders{}", if with_worker { " + worker" } else { "" });
    report(&label, tasks * per_task, elapsed, lat, &inbox);
    inbox.close().await.expect("close");
    if let Some(w) = worker {
        w.await.expect("worker");
    }
    reopen(&root.join(&name));
}

/// Recovery time: scan, checksum and dedupe rebuild of what the run left.
fn reopen(dir: &std::path::Path) {
    let t0 = Instant::now();
    let (inbox, replay) = Inbox::open(dir, options()).expect("reopen");
    println!(
        "{:<34} {:>7} pending, {} ids, {} segments: {:.0} ms",
        "  reopen",
        replay.pending,
        replay.known_ids,
        replay.segments,
        t0.elapsed().as_secs_f64() * 1e3
    );
    drop(inbox);
}

/// Many small deliveries, all done: exercises segment retirement, `ids.log` and the dedupe
/// rebuild at `n` ids.
async fn many_ids(root: &std::path::Path, n: usize) {
    let name = "many-ids";
    let inbox = open(root, name);
    let start = Instant::now();
    let handles: Vec<_> = (0..256)
        .map(|t| {
            let inbox = inbox.clone();
            tokio::spawn(async move {
                for i in (t..n).step_by(256) {
                    let id = format!("{i:08}-0000-0000-0000-000000000000");
                    if let Ok(AppendOutcome::Appended(seq)) = inbox.append(&id, "ping", vec![b'x'; 64]).await
                    {
                        inbox.mark_done(seq).await.expect("done");
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.await.expect("task");
    }
    println!(
        "{:<34} {n:>7} append+done pairs in {:.1} s",
        "small bodies, 256 appenders",
        start.elapsed().as_secs_f64()
    );
    inbox.close().await.expect("close");
    reopen(&root.join(name));
}

/// Appends issued at a fixed rate regardless of completions (open loop), so latency is not
/// flattered by callers backing off.
async fn open_loop(root: &std::path::Path, rate: u64, secs: u64, body: Arc<Vec<u8>>) {
    let inbox = open(root, &format!("open-{rate}"));
    let per_ms = rate / 1000;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let start = Instant::now();
    let mut handles = Vec::with_capacity((rate * secs) as usize);
    for ms in 0..secs * 1000 {
        tick.tick().await;
        for k in 0..per_ms {
            let inbox = inbox.clone();
            let body = body.clone();
            handles.push(tokio::spawn(async move {
                let id = format!("{ms:08}-{k:04}-0000-0000-000000000000");
                let t0 = Instant::now();
                let out = inbox.append(&id, "push", body.to_vec()).await;
                assert!(matches!(out, Ok(AppendOutcome::Appended(_))), "{out:?}");
                t0.elapsed()
            }));
        }
    }
    let mut lat = Vec::with_capacity(handles.len());
    for h in handles {
        lat.push(h.await.expect("task"));
    }
    let elapsed = start.elapsed();
    let n = lat.len();
    report(&format!("open loop at {rate}/s"), n, elapsed, lat, &inbox);
    inbox.close().await.expect("close");
}

fn main() {
    let mut args = std::env::args().skip(1);
    let root = match args.next() {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .expect("temp dir");
    let body_len: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(7 * 1024);
    // JSON-ish filler of the size of a typical webhook body.
    let body: Arc<Vec<u8>> = Arc::new(
        b"{\"action\":\"completed\",\"check_run\":{\"id\":1234567890,\"head_sha\":\"0123456789abcdef\"}} "
            .iter()
            .copied()
            .cycle()
            .take(body_len)
            .collect(),
    );
    println!(
        "inbox load: dir {} body {} bytes, {} cpus",
        root.path().display(),
        body_len,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        if std::env::var("INBOX_LOAD_ONLY_OPEN").is_ok() {
            open_loop(root.path(), 5_000, 5, body.clone()).await;
            return;
        }
        closed_loop(root.path(), 1, 2_000, body.clone(), false).await;
        closed_loop(root.path(), 64, 1_000, body.clone(), false).await;
        closed_loop(root.path(), 256, 250, body.clone(), false).await;
        closed_loop(root.path(), 64, 1_000, body.clone(), true).await;
        open_loop(root.path(), 5_000, 5, body.clone()).await;
        open_loop(root.path(), 20_000, 3, body.clone()).await;
        if let Some(n) = std::env::var("INBOX_LOAD_IDS").ok().and_then(|v| v.parse().ok()) {
            many_ids(root.path(), n).await;
        }
    });
}
