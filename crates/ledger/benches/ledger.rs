//! Benchmarks of the artifact ledger (issue 2), each against a baseline measured in the same
//! run, because the machine is shared and noisy: only the ratios are a claim.
//!
//! `cargo bench -p auger-ledger --bench ledger` (about 10 minutes with the default 100k population);
//! `AUGER_BENCH_N=10000 cargo bench -p auger-ledger --bench ledger` for a quick run on a smaller ledger.
//! The summary table at the end prints, per pair, the median of the per-sample times.
//!
//! * `record/*`: one durable `record` (its own commit and ref moves) into a ledger of N
//!   artifacts vs one `git notes add` process on a notes ref of N notes, as a script would.
//! * `batch/*`: `record_batch` of 10,000 new artifacts into a fresh ledger vs `git fast-import`
//!   writing the same 10,000 notes (same paths, same JSON lines) as one commit.
//! * `get/*`: `get(app, sha)` at N, warm (a fixed set of shas read once before) and over all N,
//!   vs a long-running `git cat-file --batch` reading the same note from the same repository
//!   (not the `git notes add` one: git re-fans the subtrees it touches to `ab/cd/…`).
//! * `latest/*`: `latest(app, branch)` with 1k and with N builds on the branch.

use std::hint::black_box;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use auger_domain::{AppName, BranchName, CommitSha, RepoName};
use auger_ledger::{Artifact, ArtifactStore, Source};
use criterion::Criterion;

const APP: &str = "web";
const NOTES_REF: &str = "refs/notes/auger/artifacts/web";
/// Chunk used to populate fixtures: one commit per chunk keeps setup to seconds.
const CHUNK: u64 = 10_000;
const BATCH: u64 = 10_000;
/// Shas read in the warm `get` benchmark (read once before measuring).
const WARM_SET: usize = 4096;

fn population() -> u64 {
    std::env::var("AUGER_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

/// Same scheme as the tests: unique, and spread over every fanout directory.
fn sha(n: u64, salt: u64) -> CommitSha {
    let mix = (n + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ salt.wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    CommitSha::new(format!("{mix:016x}{salt:016x}{n:08x}")).expect("valid sha")
}

fn artifact(n: u64, salt: u64, branch: bool) -> Artifact {
    let mut a = Artifact::new(
        AppName::new(APP).expect("app"),
        RepoName::new("acme/web").expect("repo"),
        sha(n, salt),
        Source {
            kind: "status".into(),
            name: "ci/build".into(),
            target_url: Some(format!("https://ci.example/builds/{n}")),
        },
    );
    if branch {
        a.branches.push(BranchName::new("main").expect("branch"));
    }
    a.author = Some("Dev <dev@example.com>".into());
    a.message = Some("feat: something worth deploying".into());
    a.url = Some(format!("https://github.com/acme/web/commit/{}", a.sha));
    a
}

fn git(dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.arg("--git-dir")
        .arg(dir)
        // Same identity and no user config for every git call, so runs are comparable.
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@localhost")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@localhost");
    c
}

fn run(mut c: Command) {
    let out = c.output().expect("spawn git");
    assert!(
        out.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn git_init(dir: &Path) {
    let mut c = Command::new("git");
    c.args(["init", "--quiet", "--bare"]).arg(dir);
    run(c);
    // No automatic gc in the middle of a measurement (auger never runs one either).
    let mut c = git(dir);
    c.args(["config", "gc.auto", "0"]);
    run(c);
}

/// A fast-import stream committing `arts` as notes on [`NOTES_REF`], in auger's layout and
/// with auger's JSON lines and commit message shape, on top of the ref's current value.
fn fast_import_stream(arts: &[Artifact], on_top: bool) -> Vec<u8> {
    let mut msg = format!("record {} artifact(s) of {APP}\n\n", arts.len());
    for a in arts {
        msg.push_str(&format!("+ {} {}\n", a.id, a.sha));
    }
    let mut s = Vec::with_capacity(arts.len() * 600);
    writeln!(s, "commit {NOTES_REF}").unwrap();
    writeln!(s, "committer bench <bench@localhost> 1700000000 +0000").unwrap();
    write!(s, "data {}\n{msg}\n", msg.len()).unwrap();
    if on_top {
        writeln!(s, "from {NOTES_REF}^0").unwrap();
    }
    for a in arts {
        let line = format!("{}\n", a.to_json_line());
        let sha = a.sha.as_str();
        write!(
            s,
            "M 100644 inline {}/{}\ndata {}\n{line}\n",
            &sha[..2],
            &sha[2..],
            line.len()
        )
        .unwrap();
    }
    s
}

fn fast_import(dir: &Path, stream: &[u8]) {
    let mut c = git(dir);
    c.args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    let mut child = c.spawn().expect("spawn git fast-import");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stream)
        .expect("feed fast-import");
    assert!(child.wait().expect("fast-import").success());
}

/// Record `count` artifacts (salt `salt`, all on `main`) with `record_batch` in chunks.
fn populate(store: &ArtifactStore, count: u64, salt: u64) {
    let mut n = 0;
    while n < count {
        let end = (n + CHUNK).min(count);
        let chunk: Vec<Artifact> = (n..end).map(|i| artifact(i, salt, true)).collect();
        store.record_batch(&chunk).expect("populate");
        n = end;
    }
}

/// Ledgers built once per process, on first use, so a filtered run builds only what it needs.
struct Fixture {
    _dir: tempfile::TempDir,
    /// N artifacts, all on `main`, written by auger.
    store: ArtifactStore,
    /// The same N notes, written by `git fast-import` in the same layout.
    git_repo: PathBuf,
    /// 1k artifacts on `main`.
    small: ArtifactStore,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let n = population();
        let dir = tempfile::tempdir().expect("tempdir");
        let t = Instant::now();
        let store = ArtifactStore::open_or_init(&dir.path().join("auger.git")).expect("store");
        populate(&store, n, 1);
        eprintln!("fixture: {n} artifacts via record_batch in {:.1?}", t.elapsed());

        let t = Instant::now();
        let git_repo = dir.path().join("git.git");
        git_init(&git_repo);
        let mut first = true;
        let mut i = 0;
        while i < n {
            let end = (i + CHUNK).min(n);
            let chunk: Vec<Artifact> = (i..end).map(|k| artifact(k, 1, true)).collect();
            fast_import(&git_repo, &fast_import_stream(&chunk, !first));
            first = false;
            i = end;
        }
        eprintln!("fixture: {n} notes via git fast-import in {:.1?}", t.elapsed());

        let small = ArtifactStore::open_or_init(&dir.path().join("small.git")).expect("store");
        populate(&small, 1_000, 3);
        Fixture {
            _dir: dir,
            store,
            git_repo,
            small,
        }
    })
}

/// Per benchmark id, the (iterations, time) of every call criterion made; the last
/// `SAMPLES` calls are its measurement samples (earlier ones are warm-up).
static TIMES: Mutex<Vec<(String, Samples)>> = Mutex::new(Vec::new());
/// (iterations, elapsed) of each call to a routine.
type Samples = Vec<(u64, Duration)>;
const SAMPLES: usize = 10;

fn note(id: &str, iters: u64, d: Duration) -> Duration {
    let mut t = TIMES.lock().unwrap_or_else(|p| p.into_inner());
    match t.iter_mut().find(|(k, _)| k == id) {
        Some((_, v)) => v.push((iters, d)),
        None => t.push((id.to_owned(), vec![(iters, d)])),
    }
    d
}

/// Median time per iteration over the measurement samples of `id`.
fn per_iter(id: &str) -> Option<Duration> {
    let t = TIMES.lock().unwrap_or_else(|p| p.into_inner());
    let (_, v) = t.iter().find(|(k, _)| k == id)?;
    let mut per: Vec<Duration> = v[v.len().saturating_sub(SAMPLES)..]
        .iter()
        .map(|(i, d)| d.div_f64(*i as f64))
        .collect();
    per.sort();
    per.get(per.len() / 2).copied()
}

fn bench_record(c: &mut Criterion) {
    let n = population();
    let mut g = c.benchmark_group("record");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(15));
    // New shas for every call on both sides; each side keeps its own counter.
    let mut next = 0u64;
    g.bench_function(format!("auger_record_at_{n}"), |b| {
        let f = fixture();
        b.iter_custom(|iters| {
            let arts: Vec<Artifact> = (next..next + iters).map(|i| artifact(i, 2, true)).collect();
            next += iters;
            let t = Instant::now();
            for a in &arts {
                black_box(f.store.record(a).expect("record"));
            }
            note("record/auger", iters, t.elapsed())
        })
    });
    let mut next = 0u64;
    g.bench_function(format!("git_notes_add_at_{n}"), |b| {
        let f = fixture();
        b.iter_custom(|iters| {
            let lines: Vec<(String, String)> = (next..next + iters)
                .map(|i| {
                    let a = artifact(i, 2, true);
                    (a.to_json_line(), a.sha.to_string())
                })
                .collect();
            next += iters;
            let t = Instant::now();
            for (line, sha) in &lines {
                let mut c = git(&f.git_repo);
                c.args(["notes", "--ref=auger/artifacts/web", "add", "-m", line, sha]);
                run(c);
            }
            note("record/git", iters, t.elapsed())
        })
    });
    g.finish();
}

fn bench_batch(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(20));
    let arts: Vec<Artifact> = (0..BATCH).map(|i| artifact(i, 5, false)).collect();
    g.bench_function(format!("auger_record_batch_{BATCH}"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().expect("tempdir");
                let store = ArtifactStore::open_or_init(&dir.path().join("a.git")).expect("store");
                let t = Instant::now();
                black_box(store.record_batch(&arts).expect("batch"));
                total += t.elapsed();
            }
            note("batch/auger", iters, total)
        })
    });
    let stream = fast_import_stream(&arts, false);
    g.bench_function(format!("git_fast_import_{BATCH}"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().expect("tempdir");
                let repo = dir.path().join("g.git");
                git_init(&repo);
                let t = Instant::now();
                fast_import(&repo, &stream);
                total += t.elapsed();
            }
            note("batch/git", iters, total)
        })
    });
    g.finish();
}

/// A long-running `git cat-file --batch`: the cheapest way plain git answers "the note of X".
struct CatFile {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl CatFile {
    fn new(repo: &Path) -> Self {
        let mut c = git(repo);
        c.args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut child = c.spawn().expect("spawn cat-file");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Self { child, stdin, stdout }
    }

    fn note(&mut self, sha: &str) -> Vec<u8> {
        writeln!(self.stdin, "{NOTES_REF}:{}/{}", &sha[..2], &sha[2..]).expect("ask");
        self.stdin.flush().expect("flush");
        let mut header = String::new();
        self.stdout.read_line(&mut header).expect("header");
        let size: usize = header
            .split_whitespace()
            .nth(2)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("cat-file: {header}"));
        let mut body = vec![0; size + 1];
        self.stdout.read_exact(&mut body).expect("body");
        body
    }
}

impl Drop for CatFile {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Deterministic pseudo-random indices in `0..n` (no RNG dependency needed).
fn shuffled(n: u64, count: usize, seed: u64) -> Vec<u64> {
    let mut x = seed | 1;
    (0..count)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        })
        .collect()
}

fn bench_get(c: &mut Criterion) {
    let n = population();
    let app = AppName::new(APP).expect("app");
    let mut g = c.benchmark_group("get");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let warm: Vec<CommitSha> = shuffled(n, WARM_SET, 7).into_iter().map(|i| sha(i, 1)).collect();
    let all: Vec<CommitSha> = shuffled(n, 1 << 18, 11).into_iter().map(|i| sha(i, 1)).collect();

    g.bench_function(format!("auger_get_warm_at_{n}"), |b| {
        let f = fixture();
        for s in &warm {
            assert!(f.store.get(&app, s).expect("get").is_some());
        }
        let mut k = 0;
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                black_box(f.store.get(&app, &warm[k % warm.len()]).expect("get"));
                k += 1;
            }
            note("get-warm/auger", iters, t.elapsed())
        })
    });
    g.bench_function(format!("git_cat_file_batch_warm_at_{n}"), |b| {
        let f = fixture();
        let mut cat = CatFile::new(f.store.path());
        for s in &warm {
            cat.note(s.as_str());
        }
        let mut k = 0;
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                black_box(cat.note(warm[k % warm.len()].as_str()));
                k += 1;
            }
            note("get-warm/git", iters, t.elapsed())
        })
    });
    g.bench_function(format!("auger_get_any_of_{n}"), |b| {
        let f = fixture();
        let mut k = 0;
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                black_box(f.store.get(&app, &all[k % all.len()]).expect("get"));
                k += 1;
            }
            note("get-any/auger", iters, t.elapsed())
        })
    });
    g.bench_function(format!("git_cat_file_batch_any_of_{n}"), |b| {
        let f = fixture();
        let mut cat = CatFile::new(f.store.path());
        let mut k = 0;
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                black_box(cat.note(all[k % all.len()].as_str()));
                k += 1;
            }
            note("get-any/git", iters, t.elapsed())
        })
    });
    g.finish();
}

fn bench_latest(c: &mut Criterion) {
    let n = population();
    let app = AppName::new(APP).expect("app");
    let main = BranchName::new("main").expect("branch");
    let mut g = c.benchmark_group("latest");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for (id, label) in [
        ("latest/1k", "auger_latest_1k_builds".to_owned()),
        ("latest/n", format!("auger_latest_{n}_builds")),
    ] {
        g.bench_function(label, |b| {
            let f = fixture();
            let store = if id == "latest/1k" { &f.small } else { &f.store };
            assert!(store.latest(&app, &main).expect("latest").is_some());
            b.iter_custom(|iters| {
                let t = Instant::now();
                for _ in 0..iters {
                    black_box(store.latest(&app, &main).expect("latest"));
                }
                note(id, iters, t.elapsed())
            })
        });
    }
    g.finish();
}

fn summary() {
    let n = population();
    let fmt = |d: Option<Duration>| d.map_or("-".to_owned(), |d| format!("{d:.2?}"));
    // (benchmark, auger id, baseline id, how the ratio reads, target)
    let rows = [
        (
            format!("durable record at {n}"),
            "record/auger",
            "record/git",
            "git / auger (× faster)",
            ">= 5",
        ),
        (
            format!("record_batch of {BATCH}"),
            "batch/auger",
            "batch/git",
            "auger rate / fast-import rate",
            ">= 0.5",
        ),
        (
            format!("get warm at {n}"),
            "get-warm/auger",
            "get-warm/git",
            "git / auger (× faster)",
            "<= 50 µs",
        ),
        (
            format!("get any of {n}"),
            "get-any/auger",
            "get-any/git",
            "git / auger (× faster)",
            "-",
        ),
        (
            format!("latest: {n} vs 1k builds"),
            "latest/n",
            "latest/1k",
            "latest@N / latest@1k",
            "~ 1",
        ),
    ];
    println!("\n| benchmark | auger | baseline | ratio | ratio means | target |");
    println!("|---|---|---|---|---|---|");
    for (name, a, b, means, target) in rows {
        let (ta, tb) = (per_iter(a), per_iter(b));
        let ratio = match (ta, tb) {
            (Some(x), Some(y)) if !x.is_zero() && !y.is_zero() => {
                let r = if a == "latest/n" {
                    x.as_secs_f64() / y.as_secs_f64()
                } else {
                    y.as_secs_f64() / x.as_secs_f64()
                };
                format!("{r:.2}")
            }
            _ => "-".to_owned(),
        };
        println!(
            "| {name} | {} | {} | {ratio} | {means} | {target} |",
            fmt(ta),
            fmt(tb)
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_record(&mut c);
    bench_batch(&mut c);
    bench_get(&mut c);
    bench_latest(&mut c);
    c.final_summary();
    summary();
}
