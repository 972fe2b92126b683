//! The ledger's pack writer (`src/pack.rs`, compiled into this bench as is) against gix's own
//! pack writing on the objects of one 10,000-artifact batch: per artifact a note blob, a
//! snapshot blob, tree and commit; the notes fanout trees and the notes commit (40,258 objects).
//!
//! The gix side is the public API gix-pack offers for it: `data::output::Entry::from_data` per
//! object, `data::output::bytes::FromEntriesIter` for the pack bytes, then
//! `Bundle::write_to_directory`, which reads that pack back and indexes it (it has no entry
//! point that writes an index from ids the caller already knows). Both deflate at
//! `BEST_SPEED` and both sync the files they publish. The two run alternately within each
//! round so drift on a shared machine hits both alike; only the ratio is a claim.
//!
//! `cargo bench -p auger-ledger --bench pack_write`

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use gix::ObjectId;
use gix::objs::Kind;

// The file itself, not a copy: what is measured is what the ledger runs. Its other items and
// its unit tests (cfg(test) is set for benches) are unused here.
#[allow(dead_code, unused_imports)]
#[path = "../src/pack.rs"]
mod pack;

const ARTIFACTS: usize = 10_000;

type Object = (ObjectId, Kind, Vec<u8>);

fn object(kind: Kind, data: Vec<u8>) -> Object {
    let id = gix::objs::compute_hash(gix::hash::Kind::Sha1, kind, &data).expect("sha1 is available");
    (id, kind, data)
}

fn tree(entries: &[(&str, &[u8], ObjectId)]) -> Object {
    let mut data = Vec::new();
    for (mode, name, id) in entries {
        data.extend_from_slice(mode.as_bytes());
        data.push(b' ');
        data.extend_from_slice(name);
        data.push(0);
        data.extend_from_slice(id.as_bytes());
    }
    object(Kind::Tree, data)
}

fn commit(tree: ObjectId, parent: Option<ObjectId>, message: &str) -> Object {
    let mut text = format!("tree {tree}\n");
    if let Some(p) = parent {
        text.push_str(&format!("parent {p}\n"));
    }
    text.push_str("author auger <auger@localhost> 1764950400 +0000\n");
    text.push_str("committer auger <auger@localhost> 1764950400 +0000\n\n");
    text.push_str(message);
    object(Kind::Commit, text.into_bytes())
}

/// The objects a batch of `n` new artifacts of one app on one branch adds to the ledger.
fn batch_objects(n: usize) -> Vec<Object> {
    let mut objects = Vec::with_capacity(n * 4 + 258);
    let mut fanout: Vec<Vec<(String, ObjectId)>> = vec![Vec::new(); 256];
    let mut branch_tip = None;
    let mut log = String::from("record batch\n\n");
    for i in 0..n {
        // Spread over the whole fanout, as real commit shas are.
        let mix = (i as u128 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
        let sha = format!("{mix:032x}{i:08x}");
        let id = format!("web-{}", &sha[..12]);
        let record = format!(
            r#"{{"v":1,"id":"{id}","app":"web","repo":"acme/web","sha":"{sha}","created_at":"2026-12-05T18:00:00Z","sources":[{{"kind":"status","name":"ci/build","at":"2026-12-05T18:00:00Z"}}],"branches":["main"],"tags":[],"pull_requests":[],"vars":{{"image":"registry.example.com/web:{sha}"}}}}"#
        );
        let note = object(Kind::Blob, format!("{record}\n").into_bytes());
        fanout[usize::from_str_radix(&sha[..2], 16).expect("hex")].push((sha[2..].to_owned(), note.0));
        objects.push(note);
        let snapshot = object(
            Kind::Blob,
            format!("{record}\n").replace(",\"", ",\n  \"").into_bytes(),
        );
        let snap_tree = tree(&[("100644", b"artifact.json", snapshot.0)]);
        let snap_commit = commit(
            snap_tree.0,
            branch_tip,
            &format!("build {id} on main\n\n{id} {sha}\n"),
        );
        branch_tip = Some(snap_commit.0);
        log.push_str(&format!("+ {id} {sha}\n"));
        objects.extend([snapshot, snap_tree, snap_commit]);
    }
    let mut root = Vec::new();
    for (fan, mut entries) in fanout.into_iter().enumerate() {
        if entries.is_empty() {
            continue;
        }
        entries.sort();
        let sub = tree(
            &entries
                .iter()
                .map(|(name, id)| ("100644", name.as_bytes(), *id))
                .collect::<Vec<_>>(),
        );
        root.push((format!("{fan:02x}"), sub.0));
        objects.push(sub);
    }
    let root = tree(
        &root
            .iter()
            .map(|(name, id)| ("40000", name.as_bytes(), *id))
            .collect::<Vec<_>>(),
    );
    let notes_commit = commit(root.0, None, &log);
    objects.extend([root, notes_commit]);
    objects
}

/// gix's pack writing: encode the entries, write the pack stream, let the bundle writer index
/// it into `objects/pack`, then sync both files (as `pack.rs` does before it renames).
fn gix_write_pack(objects_dir: &Path, objects: &[Object]) -> PathBuf {
    use gix_pack::data::output;
    let entries: Vec<output::Entry> = objects
        .iter()
        .map(|(id, kind, data)| {
            let count = output::Count::from_data(*id, None);
            output::Entry::from_data(
                &count,
                &gix::objs::Data::new(data, *kind, gix::hash::Kind::Sha1),
                gix::zlib::Compression::BEST_SPEED,
            )
            .expect("deflate")
        })
        .collect();
    let mut bytes = output::bytes::FromEntriesIter::new(
        std::iter::once(Ok(entries)),
        Vec::new(),
        u32::try_from(objects.len()).expect("fewer than 2^32 objects"),
        gix_pack::data::Version::V2,
        gix::hash::Kind::Sha1,
    );
    for written in &mut bytes {
        written.expect("write pack bytes");
    }
    let pack = bytes.into_write();
    let dir = objects_dir.join("pack");
    std::fs::create_dir_all(&dir).expect("pack directory");
    let outcome = gix_pack::Bundle::write_to_directory(
        &mut &pack[..],
        Some(&dir),
        &mut gix::progress::Discard,
        &AtomicBool::new(false),
        None::<gix::objs::find::Never>,
        gix::hash::Kind::Sha1,
        // Its fastest settings: the pack was just made here, so no re-hash of the trailer.
        gix_pack::bundle::write::Options {
            iteration_mode: gix_pack::data::input::Mode::AsIs,
            ..Default::default()
        },
    )
    .expect("gix writes the pack and its index");
    let data_path = outcome.data_path.expect("a pack path");
    for path in [&data_path, &outcome.index_path.expect("an index path")] {
        std::fs::File::open(path)
            .and_then(|f| f.sync_all())
            .expect("sync");
    }
    if let Some(keep) = outcome.keep_path {
        // A `.keep` protects a received pack from gc until refs point at it; not wanted here.
        let _ = std::fs::remove_file(keep);
    }
    data_path
}

/// A fresh `objects/` folder in a throwaway bare repository.
fn fresh(root: &Path, n: usize) -> PathBuf {
    let repo = root.join(format!("r{n}.git"));
    gix::init_bare(&repo).expect("init bare");
    repo.join("objects")
}

/// `git verify-pack` accepts the pack and lists `expected` objects.
fn check(pack: &Path, expected: usize) {
    let idx = pack.with_extension("idx");
    let out = std::process::Command::new("git")
        .args(["verify-pack", "-v"])
        .arg(&idx)
        .output()
        .expect("run git verify-pack");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            l.split(' ')
                .nth(1)
                .is_some_and(|k| ["blob", "tree", "commit"].contains(&k))
        })
        .count();
    assert_eq!(listed, expected);
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::var("AUGER_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let objects = batch_objects(ARTIFACTS);
    let tmp = tempfile::tempdir().expect("temporary directory");
    let mut n = 0;

    // Both writers produce a pack git accepts, with every object.
    let ours = pack::write_pack(&fresh(tmp.path(), n), objects.clone()).expect("pack.rs");
    check(&ours, objects.len());
    n += 1;
    let theirs = gix_write_pack(&fresh(tmp.path(), n), &objects);
    check(&theirs, objects.len());
    n += 1;

    let (mut by_pack_rs, mut by_gix) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Alternate which goes first, so neither always runs on a warmer cache.
        for first in [round % 2 == 0, round % 2 != 0] {
            let dir = fresh(tmp.path(), n);
            n += 1;
            let t = Instant::now();
            if first {
                let input = objects.clone();
                let t = Instant::now();
                black_box(pack::write_pack(&dir, input).expect("pack.rs"));
                by_pack_rs.push(t.elapsed());
            } else {
                black_box(gix_write_pack(&dir, &objects));
                by_gix.push(t.elapsed());
            }
        }
    }
    let (a, b) = (median(by_pack_rs), median(by_gix));
    println!(
        "pack of a {ARTIFACTS}-artifact batch ({} objects), median of {rounds} rounds:\n  pack.rs {:>8.1} ms\n  gix     {:>8.1} ms  ({:.2}x pack.rs)",
        objects.len(),
        a.as_secs_f64() * 1e3,
        b.as_secs_f64() * 1e3,
        b.as_secs_f64() / a.as_secs_f64()
    );
}
