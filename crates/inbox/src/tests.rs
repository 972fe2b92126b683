use std::collections::{HashMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::*;

fn small() -> Options {
    Options {
        segment_bytes: 4096,
        max_batch: 64,
        dedupe_capacity: 10_000,
        channel_capacity: 64,
        max_pending_bytes: 1 << 20,
        max_body_bytes: 1 << 20,
        preallocate: true,
        linger: Duration::from_micros(100),
        linger_saturated: Duration::from_micros(300),
        saturated_rate: 10_000,
        max_queued: 64 * 1024,
        janitor_nice: Some(DEFAULT_JANITOR_NICE),
    }
}

/// For tests that depend on the exact segment layout: no spare, so no early rotation.
fn plain() -> Options {
    Options {
        preallocate: false,
        ..small()
    }
}

fn body(i: usize) -> Vec<u8> {
    // Distinct, binary, varying length (including empty).
    (0..(i * 37) % 700).map(|k| (k * 31 + i) as u8).collect()
}

fn segments_on_disk(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("seg-"))
        .collect();
    v.sort();
    v
}

/// Damages one byte of a file on disk (all its bits flipped).
fn flip_byte(path: &Path, at: usize) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at] ^= 0xff;
    fs::write(path, &bytes).unwrap();
}

fn last_segment(dir: &Path) -> std::path::PathBuf {
    let name = segments_on_disk(dir)
        .into_iter()
        .rfind(|n| n.ends_with(".log"))
        .unwrap();
    dir.join(name)
}

async fn take_all(inbox: &Inbox) -> Vec<Entry> {
    let mut all = Vec::new();
    loop {
        let got = inbox.try_take(1000).await.unwrap();
        if got.is_empty() {
            return all;
        }
        all.extend(got);
    }
}

/// Background work (the janitor runs at a lowered CPU priority) can starve for seconds on a
/// loaded machine: the wait is generous, and ends as soon as the condition holds.
async fn wait_for(mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "condition not reached in time");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn append_reopen_replays_unfinished_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("inbox");
    let (inbox, replay) = Inbox::open(&dir, small()).unwrap();
    assert_eq!((replay.pending, replay.next_seq), (0, 1));
    for i in 0..10 {
        let out = inbox.append(&format!("d-{i}"), "push", body(i)).await.unwrap();
        assert_eq!(out, AppendOutcome::Appended(i as u64 + 1));
    }
    assert_eq!(inbox.depth(), 10);
    // Consumers see them in order, bytes intact.
    let first = inbox.take(3).await.unwrap();
    assert_eq!(first.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(first[1].body, body(1));
    assert_eq!(first[1].delivery_id, "d-1");
    assert_eq!(first[1].event, "push");
    for seq in [2, 5, 7] {
        inbox.mark_done(seq).await.unwrap();
    }
    // Idempotent: again, and an unknown seq.
    inbox.mark_done(5).await.unwrap();
    inbox.mark_done(999).await.unwrap();
    assert_eq!(inbox.depth(), 7);
    inbox.close().await.unwrap();

    let (inbox, replay) = Inbox::open(&dir, small()).unwrap();
    assert_eq!(replay.pending, 7);
    assert_eq!(replay.first_pending, Some(1));
    assert_eq!(replay.next_seq, 11);
    assert_eq!(inbox.depth(), 7);
    let all = take_all(&inbox).await;
    let seqs: Vec<u64> = all.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 3, 4, 6, 8, 9, 10]);
    for e in &all {
        let i = (e.seq - 1) as usize;
        assert_eq!(e.body, body(i), "body of seq {}", e.seq);
        assert_eq!(e.delivery_id, format!("d-{i}"));
    }
    // New appends continue the sequence.
    assert_eq!(
        inbox.append("d-new", "ping", vec![]).await.unwrap(),
        AppendOutcome::Appended(11)
    );
    inbox.close().await.unwrap();
}

#[tokio::test]
async fn duplicates_in_run_and_after_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (inbox, _) = Inbox::open(dir, small()).unwrap();
    assert_eq!(
        inbox.append("a", "push", b"1".to_vec()).await.unwrap(),
        AppendOutcome::Appended(1)
    );
    assert_eq!(
        inbox.append("a", "push", b"2".to_vec()).await.unwrap(),
        AppendOutcome::Duplicate
    );
    assert_eq!(
        inbox.append("b", "push", b"3".to_vec()).await.unwrap(),
        AppendOutcome::Appended(2)
    );
    inbox.mark_done(2).await.unwrap();
    assert_eq!(inbox.stats().duplicates, 1);
    inbox.close().await.unwrap();

    let (inbox, _) = Inbox::open(dir, small()).unwrap();
    // Both a pending and a done id are remembered.
    for id in ["a", "b"] {
        assert_eq!(
            inbox.append(id, "push", b"x".to_vec()).await.unwrap(),
            AppendOutcome::Duplicate
        );
    }
    let all = take_all(&inbox).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].body, b"1");
    inbox.close().await.unwrap();
}

#[tokio::test]
async fn known_tells_accepted_ids_in_run_and_after_reopen_without_storing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (inbox, _) = Inbox::open(dir, small()).unwrap();
    inbox.append("a", "push", b"1".to_vec()).await.unwrap();
    let seq = match inbox.append("b", "push", b"2".to_vec()).await.unwrap() {
        AppendOutcome::Appended(seq) => seq,
        other => panic!("{other:?}"),
    };
    inbox.mark_done(seq).await.unwrap();
    let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        inbox.known(ids(&["a", "b", "c"])).await.unwrap(),
        [true, true, false]
    );
    assert_eq!(inbox.known(Vec::new()).await.unwrap(), Vec::<bool>::new());
    // Asking stored nothing: "c" is still new.
    assert_eq!(
        inbox.append("c", "push", b"3".to_vec()).await.unwrap(),
        AppendOutcome::Appended(3)
    );
    inbox.close().await.unwrap();
    assert!(matches!(inbox.known(ids(&["a"])).await, Err(Error::Closed)));

    let (inbox, _) = Inbox::open(dir, small()).unwrap();
    assert_eq!(
        inbox.known(ids(&["a", "b", "c", "d"])).await.unwrap(),
        [true, true, true, false]
    );
    inbox.close().await.unwrap();
}

#[tokio::test]
async fn concurrent_duplicates_store_exactly_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (inbox, _) = Inbox::open(tmp.path(), small()).unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let inbox = inbox.clone();
            tokio::spawn(async move { inbox.append("same", "push", vec![1]).await.unwrap() })
        })
        .collect();
    let mut appended = 0;
    for t in tasks {
        if let AppendOutcome::Appended(_) = t.await.unwrap() {
            appended += 1;
        }
    }
    assert_eq!(appended, 1);
    assert_eq!(inbox.depth(), 1);
    inbox.close().await.unwrap();
}

#[tokio::test]
async fn torn_tail_garbage_is_truncated() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (inbox, _) = Inbox::open(dir, plain()).unwrap();
    for i in 0..3 {
        inbox.append(&format!("t{i}"), "push", body(i + 1)).await.unwrap();
    }
    inbox.close().await.unwrap();

    let seg = last_segment(dir);
    let clean_len = fs::metadata(&seg).unwrap().len();
    // Garbage that starts like a frame header claiming more bytes than follow.
    OpenOptions::new()
        .append(true)
        .open(&seg)
        .unwrap()
        .write_all(&[200, 0, 0, 0, 1, 2, 3, 4, 9, 9, 9])
        .unwrap();

    let (inbox, replay) = Inbox::open(dir, plain()).unwrap();
    assert_eq!(replay.truncated_bytes, 11);
    assert!(replay.corrupt.is_empty());
    assert_eq!(fs::metadata(&seg).unwrap().len(), clean_len);
    let all = take_all(&inbox).await;
    assert_eq!(all.len(), 3);
    assert_eq!(
        inbox.append("t3", "push", body(9)).await.unwrap(),
        AppendOutcome::Appended(4)
    );
    inbox.close().await.unwrap();

    let (inbox, _) = Inbox::open(dir, plain()).unwrap();
    let all = take_all(&inbox).await;
    assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(all[3].body, body(9));
    inbox.close().await.unwrap();
}

#[tokio::test]
async fn torn_last_frame_is_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (inbox, _) = Inbox::open(dir, plain()).unwrap();
    for i in 0..3 {
        inbox
            .append(&format!("t{i}"), "push", vec![7; 300])
            .await
            .unwrap();
    }
    inbox.close().await.unwrap();
    // Cut the last frame in half, as a crash during its write would.
    let seg = last_segment(dir);
    let len = fs::metadata(&seg).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 150)
        .unwrap();

    let (inbox, replay) = Inbox::open(dir, plain()).unwrap();
    assert!(replay.truncated_bytes > 0);
    let all = take_all(&inbox).await;
    assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
    // The torn entry was never acknowledged, so its id is not remembered: a redelivery
    // is accepted.
    assert_eq!(
        inbox.append("t2", "push", vec![8; 10]).await.unwrap(),
        AppendOutcome::Appended(3)
    );
    inbox.close().await.unwrap();
}

/// Twelve 500-byte entries (`c0`..`c11`, seqs 1..=12) in segments of 2,000 bytes: four per
/// segment, the first three sealed. Returns the options used and the segment names.
async fn twelve_entries_in_sealed_segments(dir: &Path) -> (Options, Vec<String>) {
    let opts = Options {
        segment_bytes: 2000,
        ..plain()
    };
    let (inbox, _) = Inbox::open(dir, opts.clone()).unwrap();
    for i in 0..12 {
        inbox
            .append(&format!("c{i}"), "push", vec![i as u8; 500])
            .await
            .unwrap();
    }
    inbox.close().await.unwrap();
    let segs = segments_on_disk(dir);
    assert!(segs.len() >= 3, "{segs:?}");
    (opts, segs)
}

/// Damage inside a sealed segment: reading that segment stops at the bad frame (the rest of
/// it is reported, not guessed at), later segments are read normally, and once its readable
/// entries are done the file is set aside as `*.corrupt` instead of deleted.
#[tokio::test]
async fn corrupt_frame_in_sealed_segment_stops_that_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (opts, segs) = twelve_entries_in_sealed_segments(dir).await;
    // Each entry frame is 8 + 11 + 2 + 4 + 500 = 525 bytes; segment 1 holds seqs 1..=4.
    // Flip a body byte of its second frame.
    let first = dir.join(&segs[0]);
    flip_byte(&first, 8 + 525 + 300);

    let (inbox, replay) = Inbox::open(dir, opts.clone()).unwrap();
    assert_eq!(replay.corrupt.len(), 1);
    assert_eq!(replay.corrupt[0].offset, 8 + 525);
    assert_eq!(replay.corrupt[0].reason, "checksum mismatch");
    let all = take_all(&inbox).await;
    let seqs: Vec<u64> = all.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 5, 6, 7, 8, 9, 10, 11, 12]);
    for e in &all {
        assert_eq!(e.body, vec![(e.seq - 1) as u8; 500]);
    }
    for e in &all {
        inbox.mark_done(e.seq).await.unwrap();
    }
    wait_for(|| inbox.stats().segments == 1).await;
    inbox.close().await.unwrap();
    let names = segments_on_disk(dir);
    assert!(names.contains(&format!("{}.corrupt", segs[0])), "{names:?}");
    assert_eq!(names.iter().filter(|n| n.ends_with(".log")).count(), 1);
}

/// A sealed segment whose header is not ours is set aside whole (`*.corrupt`, reported), and
/// the entries of the other segments are still handed out.
#[tokio::test]
async fn a_sealed_segment_with_a_damaged_header_is_set_aside() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (opts, segs) = twelve_entries_in_sealed_segments(dir).await;
    let first = dir.join(&segs[0]);
    flip_byte(&first, 0);

    let (inbox, replay) = Inbox::open(dir, opts).unwrap();
    assert_eq!(replay.corrupt.len(), 1);
    assert_eq!(replay.corrupt[0].reason, "bad segment header");
    assert_eq!(replay.corrupt[0].offset, 0);
    let seqs: Vec<u64> = take_all(&inbox).await.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (5..=12).collect::<Vec<_>>(), "segment 1 held seqs 1..=4");
    inbox.close().await.unwrap();
    let names = segments_on_disk(dir);
    assert!(names.contains(&format!("{}.corrupt", segs[0])), "{names:?}");
    assert!(!names.contains(&segs[0]), "{names:?}");
}

/// A crash while a new segment was being created leaves it shorter than its header. Nothing in
/// it was ever acknowledged, so it becomes an empty segment again and appends continue there.
#[tokio::test]
async fn a_newest_segment_torn_at_creation_starts_over_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (inbox, _) = Inbox::open(dir, plain()).unwrap();
    inbox.append("t1", "push", vec![7; 100]).await.unwrap();
    inbox.close().await.unwrap();
    // The next segment's file, as a crash after `create` but before its header was synced.
    let torn = dir.join(format!("seg-{:020}.log", 2));
    fs::write(&torn, b"AUG").unwrap();
    assert_eq!(segments_on_disk(dir).len(), 2, "{:?}", segments_on_disk(dir));

    let (inbox, replay) = Inbox::open(dir, plain()).unwrap();
    assert!(replay.corrupt.is_empty(), "{:?}", replay.corrupt);
    assert_eq!(replay.truncated_bytes, 3);
    assert_eq!(fs::read(&torn).unwrap().len(), 8, "a bare header again");
    let seq = match inbox.append("t2", "push", vec![8; 100]).await.unwrap() {
        AppendOutcome::Appended(seq) => seq,
        other => panic!("{other:?}"),
    };
    assert_eq!(seq, 2);
    let all = take_all(&inbox).await;
    assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
    inbox.close().await.unwrap();
    assert!(
        fs::metadata(&torn).unwrap().len() > 8,
        "t2 went to the segment that was torn"
    );
}

/// In the newest segment, damage cannot be told apart from a torn tail: everything from the
/// bad frame on is truncated (and counted in `truncated_bytes`).
#[tokio::test]
async fn corrupt_frame_in_active_segment_truncates_there() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (inbox, _) = Inbox::open(dir, plain()).unwrap();
    for i in 0..5 {
        inbox
            .append(&format!("a{i}"), "push", vec![1; 100])
            .await
            .unwrap();
    }
    inbox.close().await.unwrap();
    let seg = last_segment(dir);
    let mut bytes = fs::read(&seg).unwrap();
    let frame = 8 + 11 + 2 + 4 + 100;
    bytes[8 + 2 * frame + 20] ^= 1;
    fs::write(&seg, &bytes).unwrap();
    let (inbox, replay) = Inbox::open(dir, plain()).unwrap();
    assert_eq!(replay.truncated_bytes, 3 * frame as u64);
    assert_eq!(replay.pending, 2);
    inbox.close().await.unwrap();
}

/// A fresh inbox starts on a plain segment, where every batch's sync also commits the file's
/// growth. Its first entry asks for a spare, so the next batches go to a preallocated segment
/// long before a quarter of the plain one is written; an inbox that gets no entry writes none.
#[tokio::test]
async fn first_entry_moves_a_fresh_inbox_to_a_preallocated_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let opts = Options {
        segment_bytes: 1 << 20,
        ..small()
    };
    let spare = dir.join(recover::SPARE_FILE);

    let (inbox, _) = Inbox::open(dir, opts.clone()).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!spare.exists(), "a spare was written before any entry");
    inbox.close().await.unwrap();

    let (inbox, _) = Inbox::open(dir, opts.clone()).unwrap();
    inbox.append("a", "push", b"first".to_vec()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 0;
    // Each append after the spare is ready is a chance to rotate onto it.
    while inbox.stats().segments < 2 {
        assert!(Instant::now() < deadline, "never left the plain segment");
        tokio::time::sleep(Duration::from_millis(5)).await;
        n += 1;
        inbox
            .append(&format!("b{n}"), "push", b"next".to_vec())
            .await
            .unwrap();
    }
    // Far from a quarter of the segment: the rotation came from the first-entry request.
    assert!((n + 1) * 64 < (1 << 20) / 4);
    let seg = last_segment(dir);
    assert_eq!(
        fs::metadata(&seg).unwrap().len(),
        1 << 20,
        "the new segment is preallocated"
    );
    inbox.append("c", "push", b"on the spare".to_vec()).await.unwrap();
    inbox.close().await.unwrap();
    // Closing trims the preallocated segment to its data, and everything reads back.
    assert!(fs::metadata(&seg).unwrap().len() < 1 << 20);
    let (inbox, replay) = Inbox::open(dir, opts).unwrap();
    assert_eq!(replay.pending, n + 2);
    let ids: Vec<String> = take_all(&inbox)
        .await
        .into_iter()
        .map(|e| e.delivery_id)
        .collect();
    assert_eq!(ids.first().map(String::as_str), Some("a"));
    assert_eq!(ids.last().map(String::as_str), Some("c"));
    inbox.close().await.unwrap();
}

/// The plain segment a fresh inbox leaves early is small. Recycled as the spare, it would
/// make the next segment grow past its few preallocated bytes for all the rest of its life; it
/// is deleted instead, and the next spare is zero-filled to the full size.
#[tokio::test]
async fn a_segment_sealed_early_is_not_recycled() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let seg_bytes = 64u64 << 10;
    let opts = Options {
        segment_bytes: seg_bytes,
        ..small()
    };
    let (inbox, _) = Inbox::open(dir, opts).unwrap();
    let plain = last_segment(dir);
    let mut n = 0;
    // A worker that keeps up; appends go on until the plain segment was left and retired.
    while plain.exists() {
        n += 1;
        assert!(n < 2000, "the plain segment was never left and retired");
        inbox
            .append(&format!("a{n}"), "push", vec![1; 100])
            .await
            .unwrap();
        let e = inbox.next().await.unwrap().unwrap();
        inbox.mark_done(e.seq).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // The janitor is retiring the plain segment (its file is gone): deleted, not kept.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        inbox.stats().recycled,
        0,
        "a small sealed segment became the spare"
    );
    // Fill the preallocated segment past its end, so the next rotation takes the spare.
    for i in 0..40 {
        inbox
            .append(&format!("b{i}"), "push", vec![2; 2500])
            .await
            .unwrap();
        let e = inbox.next().await.unwrap().unwrap();
        inbox.mark_done(e.seq).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // The segment written now was a full-size spare (zero-filled, not a recycled stub).
    let seg = last_segment(dir);
    assert!(fs::metadata(&seg).unwrap().len() >= seg_bytes);
    inbox.close().await.unwrap();
}

/// A torn batch in a preallocated segment can leave a zero gap with intact, never-acknowledged
/// frames behind it. Open must cut them, or frames written later could end right where a stale
/// frame starts and resurrect it.
#[tokio::test]
async fn preallocated_tail_with_stale_frames_is_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let opts = Options {
        segment_bytes: 64 << 10,
        ..small()
    };
    let (inbox, _) = Inbox::open(dir, opts.clone()).unwrap();
    for i in 0..10 {
        // 10 x 2.5 KB: past a quarter of the segment, the spare is requested.
        inbox
            .append(&format!("p{i}"), "push", vec![i as u8; 2500])
            .await
            .unwrap();
        // Give the janitor time to prepare the spare, so later entries go to a
        // preallocated segment.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        inbox.stats().segments >= 2,
        "never moved to a preallocated segment"
    );
    inbox.close().await.unwrap();
    // A clean close trims the segment to its data; a crash leaves the preallocated zeros.
    let seg = last_segment(dir);
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(64 << 10)
        .unwrap();

    // Find the end of data, then plant: zeros (an unwritten page) and a complete, valid frame
    // with the next seq (a later page of the same torn batch that did reach the disk).
    let bytes = fs::read(&seg).unwrap();
    let mut r = &bytes[frame::SEGMENT_MAGIC.len()..];
    let mut payload = Vec::new();
    while frame::read_frame(&mut r, &mut payload).unwrap() == frame::ReadFrame::Frame {}
    let end = (bytes.len() - r.len() - frame::HEADER) as u64;
    let mut stale = Vec::new();
    frame::encode_entry(&mut stale, 11, "stale", "push", b"never acknowledged");
    let f = OpenOptions::new().write(true).open(&seg).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &stale, end + 100).unwrap();
    drop(f);

    let (inbox, replay) = Inbox::open(dir, opts.clone()).unwrap();
    assert_eq!(replay.pending, 10);
    assert_eq!(replay.next_seq, 11);
    assert_eq!(fs::metadata(&seg).unwrap().len(), end);
    for i in 0..3 {
        inbox.append(&format!("n{i}"), "push", vec![]).await.unwrap();
    }
    inbox.close().await.unwrap();

    let (inbox, _) = Inbox::open(dir, opts).unwrap();
    let all = take_all(&inbox).await;
    assert_eq!(
        all.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=13).collect::<Vec<u64>>()
    );
    assert!(all.iter().all(|e| e.delivery_id != "stale"));
    assert_eq!(
        inbox.append("stale", "push", vec![]).await.unwrap(),
        AppendOutcome::Appended(14)
    );
    inbox.close().await.unwrap();
}

/// Done segments are reused as the next segment file (no zero-filling); what they held never
/// comes back, even when a crash leaves it right behind the new data.
#[tokio::test]
async fn retired_segments_are_recycled_without_resurrecting_frames() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let opts = Options {
        segment_bytes: 4096,
        ..small()
    };
    let (inbox, _) = Inbox::open(dir, opts.clone()).unwrap();
    // A worker that keeps up: each sealed segment is retired soon after rotation.
    for i in 0..40 {
        inbox
            .append(&format!("a{i}"), "push", vec![1; 500])
            .await
            .unwrap();
        let e = inbox.next().await.unwrap().unwrap();
        inbox.mark_done(e.seq).await.unwrap();
    }
    wait_for(|| inbox.stats().recycled >= 1).await;
    for i in 0..40 {
        inbox.append(&format!("b{i}"), "push", body(i)).await.unwrap();
    }
    inbox.close().await.unwrap();

    // What a crash can leave behind the data of a recycled file: its old frames, i.e. done
    // markers of retired entries and entries with lower seqs.
    let seg = last_segment(dir);
    let mut stale = Vec::new();
    frame::encode_done(&mut stale, 3);
    frame::encode_entry(&mut stale, 5, "a4", "push", &[1; 500]);
    frame::encode_done(&mut stale, 7);
    OpenOptions::new()
        .append(true)
        .open(&seg)
        .unwrap()
        .write_all(&stale)
        .unwrap();

    let (inbox, replay) = Inbox::open(dir, opts.clone()).unwrap();
    assert_eq!(replay.pending, 40);
    assert_eq!(replay.next_seq, 81);
    let all = take_all(&inbox).await;
    for (i, e) in all.iter().enumerate() {
        assert_eq!(
            (e.seq, e.delivery_id.as_str()),
            (41 + i as u64, format!("b{i}").as_str())
        );
        assert_eq!(e.body, body(i));
    }
    assert_eq!(
        inbox.append("c", "push", vec![]).await.unwrap(),
        AppendOutcome::Appended(81)
    );
    assert_eq!(
        inbox.append("a4", "push", vec![]).await.unwrap(),
        AppendOutcome::Duplicate
    );
    inbox.close().await.unwrap();
    let (inbox, replay) = Inbox::open(dir, opts).unwrap();
    assert_eq!(replay.pending, 41);
    inbox.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_group_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let opts = Options {
        segment_bytes: 256 << 10,
        ..Options::default()
    };
    let (inbox, _) = Inbox::open(dir, opts.clone()).unwrap();
    let tasks: Vec<_> = (0..64)
        .map(|t| {
            let inbox = inbox.clone();
            tokio::spawn(async move {
                let mut seqs = Vec::new();
                for i in 0..200 {
                    let id = format!("t{t}-{i}");
                    match inbox.append(&id, "push", id.as_bytes().repeat(20)).await {
                        Ok(AppendOutcome::Appended(seq)) => seqs.push(seq),
                        other => panic!("{id}: {other:?}"),
                    }
                }
                seqs
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.extend(t.await.unwrap());
    }
    let stats = inbox.stats();
    assert_eq!(stats.appended, 12_800);
    assert!(
        stats.fsyncs < stats.appended / 4,
        "appends were not grouped: {stats:?}"
    );
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=12_800).collect::<Vec<u64>>());
    inbox.close().await.unwrap();

    let (inbox, replay) = Inbox::open(dir, opts).unwrap();
    assert_eq!(replay.pending, 12_800);
    let all = take_all(&inbox).await;
    let ids: HashSet<&str> = all.iter().map(|e| e.delivery_id.as_str()).collect();
    assert_eq!(ids.len(), 12_800);
    assert!(all.windows(2).all(|w| w[0].seq + 1 == w[1].seq));
    for e in &all {
        assert_eq!(e.body, e.delivery_id.as_bytes().repeat(20));
    }
    inbox.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_pressure_with_tiny_channel() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = Options {
        channel_capacity: 1,
        max_batch: 2,
        max_pending_bytes: 200,
        ..small()
    };
    let (inbox, _) = Inbox::open(tmp.path(), opts).unwrap();
    // A consumer that marks everything done, sharing the same tiny channel.
    let consumer = {
        let inbox = inbox.clone();
        tokio::spawn(async move {
            let mut n = 0;
            while n < 1600 {
                let seqs: Vec<u64> = inbox.take(50).await.unwrap().iter().map(|e| e.seq).collect();
                n += seqs.len();
                inbox.mark_done_many(seqs).await.unwrap();
            }
        })
    };
    let tasks: Vec<_> = (0..32)
        .map(|t| {
            let inbox = inbox.clone();
            tokio::spawn(async move {
                for i in 0..50 {
                    // Task 0 sends bodies larger than the whole byte budget: they pass alone.
                    let len = if t == 0 { 500 } else { 64 };
                    let r = inbox.append(&format!("{t}/{i}"), "e", vec![0; len]).await;
                    assert!(matches!(r, Ok(AppendOutcome::Appended(_))), "{r:?}");
                }
            })
        })
        .collect();
    tokio::time::timeout(Duration::from_secs(60), async {
        for t in tasks {
            t.await.unwrap();
        }
        consumer.await.unwrap();
    })
    .await
    .expect("deadlock under back-pressure");
    assert_eq!(inbox.stats().appended, 1600);
    assert_eq!(inbox.depth(), 0);
    inbox.close().await.unwrap();
}

#[tokio::test]
async fn rotation_deletes_done_segments_and_keeps_their_ids() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let opts = Options {
        segment_bytes: 2048,
        ..small()
    };
    let (inbox, _) = Inbox::open(dir, opts.clone()).unwrap();
    for i in 0..40 {
        inbox
            .append(&format!("r{i}"), "push", vec![3; 500])
            .await
            .unwrap();
    }
    assert!(inbox.stats().segments >= 10);
    // Finish all but the first entry: nothing can be deleted yet (prefix rule).
    let all = take_all(&inbox).await;
    for e in &all[1..] {
        inbox.mark_done(e.seq).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(inbox.stats().segments >= 10);
    inbox.mark_done(all[0].seq).await.unwrap();
    wait_for(|| inbox.stats().segments == 1).await;
    assert_eq!(segments_on_disk(dir).len(), 1);
    assert_eq!(inbox.depth(), 0);
    inbox.close().await.unwrap();

    let (inbox, replay) = Inbox::open(dir, opts).unwrap();
    assert_eq!(replay.pending, 0);
    assert_eq!(replay.known_ids, 40);
    assert_eq!(replay.next_seq, 41);
    for i in 0..40 {
        assert_eq!(
            inbox.append(&format!("r{i}"), "push", vec![]).await.unwrap(),
            AppendOutcome::Duplicate,
            "r{i}"
        );
    }
    assert_eq!(
        inbox.append("fresh", "push", vec![]).await.unwrap(),
        AppendOutcome::Appended(41)
    );
    inbox.close().await.unwrap();
}

#[tokio::test]
async fn dedupe_window_is_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let opts = Options {
        segment_bytes: 1024,
        dedupe_capacity: 10,
        ..small()
    };
    let (inbox, _) = Inbox::open(dir, opts.clone()).unwrap();
    for i in 0..60 {
        let seq = match inbox.append(&format!("w{i}"), "push", vec![1; 200]).await {
            Ok(AppendOutcome::Appended(seq)) => seq,
            other => panic!("{other:?}"),
        };
        inbox.mark_done(seq).await.unwrap();
    }
    wait_for(|| inbox.stats().segments == 1).await;
    inbox.close().await.unwrap();
    // The ids file was compacted to at most twice the capacity.
    let ids = fs::read(dir.join("ids.log")).unwrap();
    let frame = 8 + 3; // "wNN"
    assert!(ids.len() <= 2 * 10 * frame, "ids.log has {} bytes", ids.len());

    let (inbox, replay) = Inbox::open(dir, opts).unwrap();
    assert_eq!(replay.known_ids, 10);
    // The newest ids are remembered, the oldest forgotten.
    assert_eq!(
        inbox.append("w59", "push", vec![]).await.unwrap(),
        AppendOutcome::Duplicate
    );
    assert!(matches!(
        inbox.append("w0", "push", vec![]).await.unwrap(),
        AppendOutcome::Appended(_)
    ));
    inbox.close().await.unwrap();
}

#[tokio::test]
async fn second_open_is_refused_until_closed() {
    let tmp = tempfile::tempdir().unwrap();
    let (inbox, _) = Inbox::open(tmp.path(), small()).unwrap();
    assert!(matches!(Inbox::open(tmp.path(), small()), Err(Error::Locked(_))));
    inbox.close().await.unwrap();
    let (inbox, _) = Inbox::open(tmp.path(), small()).unwrap();
    inbox.close().await.unwrap();
}

/// The nice value in a `/proc/.../stat` line (field 19; the command name may hold spaces).
#[cfg(target_os = "linux")]
fn nice_of(stat: &str) -> Option<i32> {
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(16)?.parse().ok()
}

/// Nice values of this process's threads called `name` (other tests may run their own).
#[cfg(target_os = "linux")]
fn thread_nices(name: &str) -> Vec<i32> {
    let Ok(tasks) = fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter(|t| fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim_end() == name))
        .filter_map(|t| nice_of(&fs::read_to_string(t.path().join("stat")).ok()?))
        .collect()
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_janitor_runs_at_the_nice_value_it_is_given() {
    let tmp = tempfile::tempdir().unwrap();
    let own = nice_of(&fs::read_to_string("/proc/thread-self/stat").unwrap()).unwrap();
    // Not DEFAULT_JANITOR_NICE, which the other tests' janitors run at.
    let want = (own + 3).min(19);
    assert_ne!(want, DEFAULT_JANITOR_NICE);
    let opts = Options {
        janitor_nice: Some(want),
        ..small()
    };
    let (inbox, _) = Inbox::open(tmp.path(), opts).unwrap();
    let mut seen = Vec::new();
    for _ in 0..200 {
        seen = thread_nices("inbox-janitor");
        if seen.contains(&want) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(seen.contains(&want), "janitor nice values {seen:?}, want {want}");
    inbox.close().await.unwrap();
}

#[tokio::test]
async fn close_stops_writes_and_wakes_consumers() {
    let tmp = tempfile::tempdir().unwrap();
    let (inbox, _) = Inbox::open(tmp.path(), small()).unwrap();
    let waiter = {
        let inbox = inbox.clone();
        tokio::spawn(async move { inbox.next().await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    inbox.close().await.unwrap();
    assert!(waiter.await.unwrap().unwrap().is_none());
    assert!(matches!(
        inbox.append("x", "push", vec![]).await,
        Err(Error::Closed)
    ));
    assert!(matches!(inbox.mark_done(1).await, Err(Error::Closed)));
    inbox.close().await.unwrap(); // twice is fine
}

#[tokio::test]
async fn rejects_invalid_input() {
    let tmp = tempfile::tempdir().unwrap();
    let (inbox, _) = Inbox::open(tmp.path(), small()).unwrap();
    for (id, ev, len) in [
        ("", "push", 0),
        (&*"x".repeat(256), "push", 0),
        ("ok", "push", 2 << 20),
    ] {
        assert!(matches!(
            inbox.append(id, ev, vec![0; len]).await,
            Err(Error::Invalid(_))
        ));
    }
    inbox.close().await.unwrap();
}

const CHILD_DIR: &str = "AUGER_INBOX_CRASH_DIR";
const CHILD_ROUND: &str = "AUGER_INBOX_CRASH_ROUND";
/// Rounds that drain: a worker takes everything and marks it done, so segments are retired
/// and recycled while the process is killed. Other rounds keep entries for the durability check.
const DRAIN_ROUNDS: [usize; 2] = [0, 1];
const CRASH_ROUNDS: usize = 3;

/// Not a test on its own: the body of the writer process that `crash_sigkill_*` kills.
#[test]
fn crash_child_writer() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let round: usize = std::env::var(CHILD_ROUND).unwrap().parse().unwrap();
    let drain = DRAIN_ROUNDS.contains(&round);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let opts = Options {
            segment_bytes: 32 << 10,
            ..Options::default()
        };
        let (inbox, _) = Inbox::open(&dir, opts).unwrap();
        // One write per line (< PIPE_BUF, so atomic), straight to fd 1, not the test
        // harness's capture.
        fn say(line: String) {
            std::io::stdout().lock().write_all(line.as_bytes()).unwrap();
        }
        if drain {
            let inbox = inbox.clone();
            tokio::spawn(async move {
                loop {
                    let seqs: Vec<u64> = inbox.take(64).await.unwrap().iter().map(|e| e.seq).collect();
                    inbox.mark_done_many(seqs.clone()).await.unwrap();
                    for seq in seqs {
                        say(format!("D {seq} .\n"));
                    }
                }
            });
        }
        let tasks: Vec<_> = (0..16)
            .map(|t| {
                let inbox = inbox.clone();
                tokio::spawn(async move {
                    for i in 0u64.. {
                        let id = format!("r{round}-t{t}-{i}");
                        let seq = match inbox.append(&id, "push", id.as_bytes().repeat(50)).await {
                            Ok(AppendOutcome::Appended(seq)) => seq,
                            other => panic!("{other:?}"),
                        };
                        say(format!("A {seq} {id} .\n"));
                        if !drain && i % 3 == 0 {
                            // Announce the attempt: a kill between the durable done marker
                            // and the "D" line leaves the parent unsure, and it must allow both.
                            say(format!("M {seq} .\n"));
                            inbox.mark_done(seq).await.unwrap();
                            say(format!("D {seq} .\n"));
                        }
                        if i % 5 == 4 {
                            let prev = format!("r{round}-t{t}-{}", i - 1);
                            let again = inbox.append(&prev, "push", vec![]).await.unwrap();
                            if again != AppendOutcome::Duplicate {
                                say(format!("X {prev} .\n"));
                            }
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
}

/// SIGKILLs a writer process mid-stream, several times on one directory (first while a worker
/// drains it, so segments are retired and recycled under the kill, then while entries are kept)
/// and checks that every acknowledged append is present with its bytes, every acknowledged done
/// marker holds, and dedupe remembers every acknowledged id.
#[test]
fn crash_sigkill_keeps_acknowledged_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("inbox");
    let exe = std::env::current_exe().unwrap();
    let mut acked: HashMap<u64, (usize, String)> = HashMap::new();
    let mut done: HashSet<u64> = HashSet::new();
    let mut maybe_done: HashSet<u64> = HashSet::new();
    for round in 0..CRASH_ROUNDS {
        let mut child = Command::new(&exe)
            .args([
                "tests::crash_child_writer",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, &dir)
            .env(CHILD_ROUND, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Kill at a different point each round, once the writer is well under way.
        let want = 3_000 + round * 1_500;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut lines = Vec::new();
        while lines.len() < want && Instant::now() < deadline {
            if let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) {
                lines.push(l);
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        lines.extend(rx.try_iter());
        assert!(lines.len() >= want, "child produced only {} lines", lines.len());
        for line in lines {
            let parts: Vec<&str> = line.split(' ').collect();
            match parts.as_slice() {
                ["A", seq, id, "."] => {
                    let seq: u64 = seq.parse().unwrap();
                    if let Some(old) = acked.insert(seq, (round, id.to_string())) {
                        panic!("seq {seq} acknowledged twice: {old:?} and {id} (round {round})");
                    }
                }
                ["D", seq, "."] => {
                    done.insert(seq.parse().unwrap());
                }
                ["M", seq, "."] => {
                    maybe_done.insert(seq.parse().unwrap());
                }
                ["X", id, "."] => panic!("{id} was not recognised as a duplicate"),
                _ => {} // harness chatter
            }
        }
    }
    // The drain rounds retired segments: their ids moved to ids.log.
    assert!(
        fs::metadata(dir.join("ids.log")).unwrap().len() > 0,
        "no segment was retired"
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (inbox, _) = Inbox::open(&dir, Options::default()).unwrap();
        let pending: HashMap<u64, Entry> = take_all(&inbox).await.into_iter().map(|e| (e.seq, e)).collect();
        let mut in_doubt = 0;
        for (seq, (round, id)) in &acked {
            if let Some(e) = pending.get(seq) {
                assert!(!done.contains(seq), "done seq {seq} replayed");
                assert_eq!(&e.delivery_id, id);
                assert_eq!(e.body, id.as_bytes().repeat(50));
            } else if done.contains(seq) || DRAIN_ROUNDS.contains(round) {
                // Done, or taken by a worker that may have marked it just before a kill.
            } else if maybe_done.contains(seq) {
                // Its done marker became durable but the child died before saying so.
                in_doubt += 1;
            } else {
                panic!("acknowledged seq {seq} ({id}) lost");
            }
        }
        // At most one in-flight mark_done per writer task.
        assert!(in_doubt <= 16, "{in_doubt} done markers in doubt");
        for (_, id) in acked.values() {
            assert_eq!(
                inbox.append(id, "push", vec![]).await.unwrap(),
                AppendOutcome::Duplicate,
                "{id} forgotten"
            );
        }
        inbox.close().await.unwrap();
    });
    assert!(!acked.is_empty() && !done.is_empty());
}

/// Handles are shared across actix/tokio worker threads and futures are spawned.
#[test]
fn handle_and_futures_are_send() {
    fn send<T: Send + Sync + Clone + 'static>(_: &T) {}
    fn send_future<F: std::future::Future + Send>(_: F) {}
    let tmp = tempfile::tempdir().unwrap();
    let (inbox, _) = Inbox::open(tmp.path(), small()).unwrap();
    send(&inbox);
    send_future(inbox.append("id", "push", vec![]));
    send_future(inbox.mark_done(1));
    send_future(inbox.take(1));
    send_future(inbox.close());
}

/// A burst larger than the in-memory queue: the rest stays on disk only, is read back from
/// the segments (across rotations and retired segments) as consumers drain, and every entry
/// is handed out once, in order, while appends keep coming.
#[tokio::test]
async fn a_burst_beyond_the_queue_is_read_back_from_disk_in_order_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("inbox");
    let opts = Options {
        max_queued: 10,
        ..small()
    };
    let (inbox, _) = Inbox::open(&dir, opts.clone()).unwrap();
    let appends: Vec<_> = (0..300)
        .map(|i| {
            let inbox = inbox.clone();
            async move { inbox.append(&format!("d-{i}"), "push", body(i)).await.unwrap() }
        })
        .collect();
    futures_util::future::join_all(appends).await;
    let stats = inbox.stats();
    assert_eq!(stats.depth, 300);
    assert!(
        stats.queued <= 10,
        "memory holds at most max_queued locations: {stats:?}"
    );
    assert!(stats.segments >= 3, "the burst spans several segments: {stats:?}");

    // More appends while a consumer drains and marks done (so old segments retire).
    let producer = {
        let inbox = inbox.clone();
        tokio::spawn(async move {
            for i in 300..500 {
                inbox.append(&format!("d-{i}"), "push", body(i)).await.unwrap();
            }
        })
    };
    let mut seen = Vec::new();
    let mut ids = std::collections::BTreeSet::new();
    while seen.len() < 500 {
        let got = inbox.take(7).await.unwrap();
        assert!(!got.is_empty());
        let seqs: Vec<u64> = got.iter().map(|e| e.seq).collect();
        for e in &got {
            // Concurrent appends take seqs in commit order, not in `i` order.
            let i: usize = e.delivery_id.strip_prefix("d-").unwrap().parse().unwrap();
            assert_eq!(e.body, body(i), "body of {}", e.delivery_id);
            ids.insert(i);
        }
        seen.extend(seqs.iter().copied());
        inbox.mark_done_many(seqs).await.unwrap();
        assert!(inbox.stats().queued <= 10);
    }
    producer.await.unwrap();
    assert_eq!(seen, (1..=500).collect::<Vec<u64>>(), "each entry once, in order");
    assert_eq!(ids, (0..500).collect(), "every delivery handed out");
    assert!(inbox.try_take(10).await.unwrap().is_empty());
    assert_eq!(inbox.depth(), 0);
    // Back to normal: a new append is queued in memory and handed out.
    inbox.append("d-after", "push", body(1)).await.unwrap();
    let after = inbox.take(10).await.unwrap();
    assert_eq!(after[0].delivery_id, "d-after");
    inbox.mark_done(after[0].seq).await.unwrap();
    inbox.close().await.unwrap();

    // Spilled entries that were never taken are replayed after a restart like any other.
    let (inbox, _) = Inbox::open(&dir, opts.clone()).unwrap();
    for i in 0..50 {
        inbox.append(&format!("e-{i}"), "push", body(i)).await.unwrap();
    }
    let first = inbox.take(5).await.unwrap();
    inbox
        .mark_done_many(first.iter().map(|e| e.seq).collect())
        .await
        .unwrap();
    inbox.close().await.unwrap();
    let (inbox, replay) = Inbox::open(&dir, opts).unwrap();
    assert_eq!(replay.pending, 45);
    let rest = take_all(&inbox).await;
    let ids: Vec<String> = rest.iter().map(|e| e.delivery_id.clone()).collect();
    assert_eq!(ids, (5..50).map(|i| format!("e-{i}")).collect::<Vec<_>>());
    inbox.close().await.unwrap();
}

/// Done markers alone cost no `fdatasync`: they ride on the next entry batch's sync or the one
/// that seals their segment, and a reopened inbox still sees them.
#[tokio::test]
async fn done_markers_alone_are_not_synced_but_still_count() {
    let tmp = tempfile::tempdir().unwrap();
    let (inbox, _) = Inbox::open(tmp.path(), plain()).unwrap();
    for i in 0..3 {
        inbox.append(&format!("d-{i}"), "push", body(i)).await.unwrap();
    }
    let synced = inbox.stats().fsyncs;
    assert!(synced >= 1);
    let seqs: Vec<u64> = take_all(&inbox).await.iter().map(|e| e.seq).collect();
    inbox.mark_done_many(seqs[..2].to_vec()).await.unwrap();
    assert_eq!(inbox.stats().fsyncs, synced, "done markers alone: no sync");
    inbox.append("d-3", "push", body(3)).await.unwrap();
    assert_eq!(
        inbox.stats().fsyncs,
        synced + 1,
        "an entry is synced before its answer"
    );
    inbox.close().await.unwrap();
    drop(inbox);

    let (inbox, replay) = Inbox::open(tmp.path(), plain()).unwrap();
    assert_eq!(replay.pending, 2, "d-2 and d-3 are unfinished, d-0 and d-1 done");
    let left: Vec<String> = take_all(&inbox)
        .await
        .into_iter()
        .map(|e| e.delivery_id)
        .collect();
    assert_eq!(left, ["d-2", "d-3"]);
}
