//! Open-time recovery: truncate torn tails, rebuild the dedupe window, find unfinished entries.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::dedupe::Dedupe;
use super::frame::{self, HEADER, ReadFrame, Record, SEGMENT_MAGIC};
use super::seqset::SeqSet;
use super::{Corruption, Loc, Options, Replay, Result, io_err};

pub const IDS_FILE: &str = "ids.log";
pub const IDS_TMP: &str = "ids.log.tmp";
/// A zero-filled segment prepared ahead of rotation (see `writer::Janitor::prepare_spare`).
pub const SPARE_FILE: &str = "seg.spare";
const READ_BUF: usize = 1 << 20;

pub fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("seg-{first:020}.log"))
}

/// Where a damaged file is moved so it is kept for inspection but never scanned again.
pub fn corrupt_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".corrupt");
    PathBuf::from(s)
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("seg-")?.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub fn list_segments(dir: &Path) -> Result<Vec<u64>> {
    let mut firsts = Vec::new();
    for de in fs::read_dir(dir).map_err(io_err(dir))? {
        let de = de.map_err(io_err(dir))?;
        if let Some(first) = de.file_name().to_str().and_then(parse_segment_name) {
            firsts.push(first);
        }
    }
    firsts.sort_unstable();
    Ok(firsts)
}

/// Makes a directory entry (create, rename, unlink) durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))
}

/// Creates an empty (not preallocated) segment whose header and directory entry are durable
/// before any entry is written to it; returns a write handle (the writer uses positional
/// writes).
pub fn create_segment(dir: &Path, first: u64) -> Result<File> {
    let path = segment_path(dir, first);
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(io_err(&path))?;
    f.write_all_at(SEGMENT_MAGIC, 0)
        .and_then(|()| f.sync_all())
        .map_err(io_err(&path))?;
    sync_dir(dir)?;
    Ok(f)
}

fn read_only(path: &Path) -> Result<Arc<File>> {
    File::open(path).map(Arc::new).map_err(io_err(path))
}

/// Shrinks `path` to `len` durably (drops a torn tail).
fn truncate(path: &Path, len: u64) -> Result<()> {
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| {
            f.set_len(len)?;
            f.sync_all()
        })
        .map_err(io_err(path))
}

/// Everything the writer thread and the consumers start from.
pub struct Recovered {
    pub dedupe: Dedupe,
    pub ids_file: File,
    pub ids_count: usize,
    pub pending: VecDeque<Loc>,
    pub undone: SeqSet,
    /// Every scanned segment: first seq -> number of entries not yet done.
    pub live: BTreeMap<u64, u64>,
    pub readers: HashMap<u64, Arc<File>>,
    pub active: File,
    pub active_first: u64,
    pub active_len: u64,
    pub next_seq: u64,
    pub report: Replay,
}

/// Reads `ids.log` into `dedupe`, truncating a torn tail. Returns an append handle and the
/// number of ids in the file.
fn load_ids(dir: &Path, dedupe: &mut Dedupe, report: &mut Replay) -> Result<(File, usize)> {
    let path = dir.join(IDS_FILE);
    // A leftover temp file means a compaction died before its rename: ids.log is still whole.
    // Likewise a spare segment is only a cache of zeros; the janitor makes a new one.
    for leftover in [dir.join(IDS_TMP), dir.join(SPARE_FILE)] {
        if leftover.exists() {
            fs::remove_file(&leftover).map_err(io_err(&leftover))?;
        }
    }
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(&path)
        .map_err(io_err(&path))?;
    let len = file.metadata().map_err(io_err(&path))?.len();
    let mut r = BufReader::with_capacity(READ_BUF, &file);
    let mut payload = Vec::new();
    let (mut off, mut count) = (0u64, 0usize);
    loop {
        match frame::read_frame(&mut r, &mut payload).map_err(io_err(&path))? {
            ReadFrame::Frame => {
                if let Ok(id) = std::str::from_utf8(&payload) {
                    dedupe.insert(id);
                }
                count += 1;
                off += (HEADER + payload.len()) as u64;
            }
            ReadFrame::Eof => break,
            ReadFrame::Bad(reason) => {
                // The ids file is only appended to (or replaced by rename), so a bad frame is a
                // torn append whose segment still exists; its ids come back from the segment.
                tracing::warn!(path = %path.display(), offset = off, reason, "truncating torn ids file tail");
                report.truncated_bytes += len - off;
                break;
            }
        }
    }
    if off < len {
        truncate(&path, off)?;
    }
    drop(r);
    let mut file = file;
    file.seek(SeekFrom::End(0)).map_err(io_err(&path))?;
    Ok((file, count))
}

/// What the segments hold, gathered by [`scan_segment`].
#[derive(Default)]
struct Found {
    entries: Vec<Loc>,
    done: HashSet<u64>,
    max_seq: u64,
}

/// Reads the records of segment `first` into `found` (their ids into `dedupe`), and repairs
/// what a crash can leave in the newest segment (`last`). Returns where its data ends, or
/// `None` if its header was damaged and the file was set aside.
fn scan_segment(
    dir: &Path,
    first: u64,
    last: bool,
    found: &mut Found,
    dedupe: &mut Dedupe,
    report: &mut Replay,
) -> Result<Option<u64>> {
    let mut payload = Vec::new();
    let path = segment_path(dir, first);
    let file = File::open(&path).map_err(io_err(&path))?;
    let len = file.metadata().map_err(io_err(&path))?.len();
    let mut r = BufReader::with_capacity(READ_BUF, &file);
    let mut magic = [0u8; 8];
    let got = (&mut r).take(8).read(&mut magic).map_err(io_err(&path))?;
    if got < 8 || &magic != SEGMENT_MAGIC {
        if last && len <= SEGMENT_MAGIC.len() as u64 {
            // Crash while creating the segment: nothing was ever acknowledged in it.
            drop(r);
            let mut w = OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(&path)
                .map_err(io_err(&path))?;
            w.write_all(SEGMENT_MAGIC)
                .and_then(|()| w.sync_all())
                .map_err(io_err(&path))?;
            report.truncated_bytes += len;
            return Ok(Some(SEGMENT_MAGIC.len() as u64));
        }
        tracing::error!(path = %path.display(), "segment header damaged; setting the file aside");
        report.corrupt.push(Corruption {
            path: path.clone(),
            offset: 0,
            reason: "bad segment header",
        });
        let aside = corrupt_path(&path);
        fs::rename(&path, &aside).map_err(io_err(&path))?;
        sync_dir(dir)?;
        return Ok(None);
    }
    let mut off = SEGMENT_MAGIC.len() as u64;
    let mut last_seq = 0u64;
    loop {
        let reason = match frame::read_frame(&mut r, &mut payload).map_err(io_err(&path))? {
            // Sealed segments are full (rotation happens only then), so zeros before their
            // end are damage; in the newest one they are preallocated space.
            ReadFrame::Eof if !last && off < len => "zeroed frame header before end of segment",
            ReadFrame::Eof => {
                if last && off < len {
                    // Preallocated zeros, possibly with unacknowledged frames of a torn
                    // batch behind them: cut it all so nothing stale can reappear behind
                    // frames written later.
                    drop(r);
                    truncate(&path, off)?;
                }
                return Ok(Some(off));
            }
            ReadFrame::Bad(reason) => reason,
            ReadFrame::Frame => {
                let flen = (HEADER + payload.len()) as u64;
                match frame::decode(&payload) {
                    // Seqs only grow within a segment; anything else is not our data.
                    Ok(Record::Entry { seq, .. }) if seq < first || seq <= last_seq => {
                        "sequence out of order"
                    }
                    Ok(Record::Entry { seq, id, .. }) => {
                        last_seq = seq;
                        dedupe.insert(id);
                        found.entries.push(Loc {
                            seq,
                            seg: first,
                            offset: off,
                            len: flen as u32,
                        });
                        found.max_seq = found.max_seq.max(seq);
                        off += flen;
                        continue;
                    }
                    Ok(Record::Done { seq }) => {
                        found.done.insert(seq);
                        off += flen;
                        continue;
                    }
                    Err(reason) => reason,
                }
            }
        };
        if last {
            // Only the tail of the newest segment can be torn: every earlier byte was
            // fdatasync'd before anything after it was acknowledged. Damage in the middle
            // of the newest segment cannot be told apart from a torn tail; it is dropped
            // the same way (and reported).
            tracing::warn!(path = %path.display(), offset = off, reason, dropped = len - off, "truncating torn segment tail");
            report.truncated_bytes += len - off;
            drop(r);
            truncate(&path, off)?;
            return Ok(Some(off));
        }
        // A sealed segment was complete and synced before rotation: this is media or
        // operator damage. Keep what precedes it; the janitor sets the file aside (not
        // deleted) once those entries are done.
        tracing::error!(path = %path.display(), offset = off, reason, "corrupt record in sealed segment; later records of this segment are unreadable");
        report.corrupt.push(Corruption {
            path,
            offset: off,
            reason,
        });
        return Ok(Some(off));
    }
}

/// The inbox as the folder holds it: the ids file, every segment read back (a torn tail of the
/// newest cut, damage elsewhere reported or set aside), the entries not yet done, and the
/// segment to append to.
pub fn recover(dir: &Path, opts: &Options) -> Result<Recovered> {
    let mut report = Replay::default();
    let mut dedupe = Dedupe::new(opts.dedupe_capacity);
    let (ids_file, ids_count) = load_ids(dir, &mut dedupe, &mut report)?;

    let firsts = list_segments(dir)?;
    let mut found = Found::default();
    let mut live = BTreeMap::new();
    let mut readers = HashMap::new();
    let mut active_len = SEGMENT_MAGIC.len() as u64;
    let mut dropped_last = false;
    for (i, &first) in firsts.iter().enumerate() {
        let last = i + 1 == firsts.len();
        let Some(end) = scan_segment(dir, first, last, &mut found, &mut dedupe, &mut report)? else {
            dropped_last |= last;
            continue;
        };
        if last {
            active_len = end;
        }
        live.insert(first, 0);
        readers.insert(first, read_only(&segment_path(dir, first))?);
    }
    let Found {
        entries,
        done,
        max_seq,
    } = found;
    let mut pending = VecDeque::new();
    let mut undone = SeqSet::default();
    for loc in entries {
        if !done.contains(&loc.seq) && undone.insert(loc.seq) {
            *live.entry(loc.seg).or_insert(0) += 1;
            pending.push_back(loc);
        }
    }

    let last_first = live.keys().next_back().copied();
    // Never reuse a live segment's name: if the newest was set aside, the newest remaining
    // one may hold no entry yet, so start past its name.
    let floor = last_first.map_or(1, |f| if dropped_last { f + 1 } else { f });
    let next_seq = (max_seq + 1).max(floor);
    let (active, active_first) = match last_first {
        Some(first) if !dropped_last => {
            let path = segment_path(dir, first);
            let f = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(io_err(&path))?;
            (f, first)
        }
        _ => {
            active_len = SEGMENT_MAGIC.len() as u64;
            let f = create_segment(dir, next_seq)?;
            live.insert(next_seq, 0);
            readers.insert(next_seq, read_only(&segment_path(dir, next_seq))?);
            (f, next_seq)
        }
    };

    report.pending = pending.len();
    report.first_pending = pending.front().map(|l| l.seq);
    report.next_seq = next_seq;
    report.known_ids = dedupe.len();
    report.segments = live.len();
    if report.truncated_bytes > 0 || !report.corrupt.is_empty() {
        tracing::warn!(
            truncated = report.truncated_bytes,
            corrupt = report.corrupt.len(),
            "inbox recovered with damage"
        );
    }
    Ok(Recovered {
        dedupe,
        ids_file,
        ids_count,
        pending,
        undone,
        live,
        readers,
        active,
        active_first,
        active_len,
        next_seq,
        report,
    })
}
