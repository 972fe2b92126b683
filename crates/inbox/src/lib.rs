//! Durable webhook inbox: an append-only, group-committed journal with delivery-id dedupe.
//!
//! Every accepted GitHub delivery is appended here before the HTTP handler answers 2xx.
//! `append` resolves only once the record is `fdatasync`'d; a single writer thread batches
//! concurrent appends (and done markers) into one `write` + one `fdatasync` ("group commit").
//! Workers take entries in sequence order with [`Inbox::take`] / [`Inbox::next`] and call
//! [`Inbox::mark_done`] once the entry's effects are durable. Entries not marked done are handed
//! out again after a restart, so handlers must be idempotent (delivery is at-least-once).
//!
//! ```no_run
//! # async fn demo() -> Result<(), auger_inbox::Error> {
//! use auger_inbox::{AppendOutcome, Inbox, Options};
//! let (inbox, replay) = Inbox::open("auger-data/inbox", Options::default())?;
//! // HTTP handler (after the signature check): both outcomes mean "202 Accepted";
//! // Err(Invalid) is a 4xx, any other error a 503 (GitHub then shows the delivery as failed).
//! match inbox.append("72d3162e-cc78-11e3-81ab-4c9367dc0958", "push", b"{}".to_vec()).await? {
//!     AppendOutcome::Appended(_) | AppendOutcome::Duplicate => {}
//! }
//! // Worker: replayed entries (replay.pending of them) come first, then new ones.
//! while let Some(entry) = inbox.next().await? {
//!     // ... handle entry.event / entry.body idempotently, then:
//!     inbox.mark_done(entry.seq).await?;
//! }
//! # let _ = replay; Ok(()) }
//! ```
//!
//! # On disk (`dir` is e.g. `<data_dir>/inbox`)
//! - `LOCK`: held with `flock` for the life of the writer; a second process is refused.
//! - `seg-<first seq, 20 digits>.log`: the magic `AUGINBX1`, then frames
//!   `[len u32 LE][crc32 u32 LE][payload]` (crc over the length bytes and payload). A payload is
//!   an entry `[1][seq u64][id_len u8][id][event_len u8][event][body]` or a done marker
//!   `[2][seq u64]`. The newest segment is the only one written; it is sealed and a new one
//!   started once it exceeds `segment_bytes`. Segments are normally preallocated: zero-filled
//!   to `segment_bytes` ahead of time, so an 8-byte all-zero header marks the end of data (no
//!   real frame has length 0). Overwriting allocated blocks lets `fdatasync` skip the
//!   file-system journal commit that growing a file needs (measured ~3x more appends/s here).
//! - `seg.spare`: the next segment: a fully-done segment recycled by the janitor thread, or
//!   else a zero-filled file; renamed into place at rotation, deleted on open. A recycled file
//!   still holds old frames behind the new data; they are never taken as data (see
//!   `writer::Janitor::retire`), and a segment is trimmed to its data when it is sealed or the
//!   inbox is closed.
//! - `ids.log`: frames whose payload is a delivery id, copied from a segment just before the
//!   segment is deleted, so dedupe outlives the segment. Rewritten (temp file + rename) to the
//!   newest `dedupe_capacity` ids when it grows past twice that.
//! - `*.corrupt`: damaged segments set aside for inspection, never read again.
//!
//! # Crash-safety argument
//! An append is acknowledged only after the batch holding it was written and `fdatasync`'d,
//! and every segment was made durable (created, or renamed from the synced spare, then the
//! directory synced) before anything was written to it; so every acknowledged delivery
//! survives a crash or power loss, given a disk that honours flushes. A batch of done markers
//! alone is written but not synced: the next entry batch's sync, or the one that seals the
//! segment, carries it. A power cut may lose the newest done markers, and their entries are
//! then handed out again, which handlers must tolerate anyway (see `mark_done`). Writes
//! go only to the end of data of the newest segment, so the only bytes a crash can leave
//! unfinished are those after its last acknowledged record. Every frame carries its length and
//! a CRC-32 over length and payload; on open, the newest segment is read up to the first frame
//! that is short, fails its checksum, is out of sequence, or is an all-zero header, and the file
//! is truncated there. So a half record is never taken as valid, new appends start on a frame
//! boundary, and no intact but unacknowledged frame of a torn batch (possible behind a zero gap
//! in a preallocated file) survives to be read back later behind newer frames. A recycled file's
//! old frames behind the data cannot pass for data either: its old entries have lower seqs
//! (out of sequence), and its old done markers name only retired entries (no-ops). Older segments
//! were complete and synced before the next one was started, so damage there is media or
//! operator damage: reading that segment stops at the bad frame, the damage is reported, and
//! the file is set aside rather than deleted. Dedupe ids are rebuilt on open from the segments
//! and `ids.log`; a segment's ids reach `ids.log` (synced) before the segment is unlinked, so a
//! crash between the two steps leaves the ids in both places, never in neither. A segment is
//! deleted only after every older one, so no done marker that still matters is ever lost. After
//! an I/O error (including a failed `fdatasync`, after which the page cache can no longer be
//! trusted) the writer stops and fails every later call; a restart re-reads what is on disk.
//!
//! # Segment deletion
//! A sealed segment is deleted once all its entries are done *and* every older segment is gone.
//! Done markers are written to the newest segment, so they may sit after the entries they
//! finish; deleting only a prefix keeps every marker that still matters. The cost: an entry that
//! is never marked done pins its segment and all newer ones, so workers must mark even failed
//! deliveries done (after logging or dead-lettering them). A damaged segment is renamed to
//! `*.corrupt` instead of deleted.
//!
//! # Dedupe
//! The index is rebuilt on open by reading `ids.log` and the segments (which are read anyway to
//! find unfinished entries), not persisted as a separate structure: one source of truth, nothing
//! to keep consistent with the log, and rebuilding ~1 M ids takes well under a second. It holds
//! the newest `dedupe_capacity` ids, as 64-bit keyed fingerprints in a ring indexed by a table
//! of 4-byte positions (~19 bytes each, `dedupe.rs`). GitHub redelivers automatically within
//! seconds to minutes and manually within 3 days, so capacity should cover a few days of
//! deliveries; the default (917,504 = 7/8 × 2²⁰, the most a table of 2²⁰ slots holds before it
//! doubles) covers 3 days at 3.5 deliveries/s in 18 MB.
//!
//! # Memory
//! Bodies live in memory only between `append` and the `fdatasync` of their batch, bounded by
//! `max_pending_bytes` (appenders wait beyond it: back-pressure, never drops) plus the batch
//! buffer. Pending work is kept as locations (32 bytes each); bodies are read back from the
//! segment when a worker takes the entry. At most `max_queued` locations are kept: entries
//! appended beyond that stay on disk only (the queue remembers where the first of them is)
//! and are read back from the segments, by frame headers, as consumers drain the queue, so a
//! long burst with slow consumers grows the disk, not the memory. The writer's done
//! bookkeeping is a bitmap of unfinished seqs (one bit per seq from the oldest unfinished one),
//! and entries replayed at open all start in memory (the segments also hold entries finished
//! before the restart).
//!
//! # Cancellation
//! Dropping an `append` future after it started does not withdraw the delivery: it may still be
//! stored (the caller just does not learn the outcome). A redelivery then gets `Duplicate`.

mod dedupe;
mod frame;
mod recover;
mod seqset;
mod writer;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

/// Longest delivery id or event name accepted (length is stored in one byte).
pub const MAX_NAME_LEN: usize = 255;
/// Largest body accepted unless `Options::max_body_bytes` says.
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 << 20;

/// Refuses a delivery whose id, event name or body (`body_len` bytes, at most `max_body_bytes`)
/// a queue does not take; every queue of deliveries keeps these limits.
pub fn check_delivery(delivery_id: &str, event: &str, body_len: usize, max_body_bytes: usize) -> Result<()> {
    if delivery_id.is_empty() || delivery_id.len() > MAX_NAME_LEN {
        return Err(Error::Invalid(format!(
            "delivery id must be 1..={MAX_NAME_LEN} bytes"
        )));
    }
    if event.len() > MAX_NAME_LEN {
        return Err(Error::Invalid(format!(
            "event name must be at most {MAX_NAME_LEN} bytes"
        )));
    }
    if body_len > max_body_bytes {
        return Err(Error::Invalid(format!(
            "body of {body_len} bytes exceeds {max_body_bytes}"
        )));
    }
    Ok(())
}
/// Default dedupe window: 7/8 of 2²⁰, the most ids a hash table of 2²⁰ slots holds before it
/// doubles (see `Options::dedupe_capacity`).
pub const DEFAULT_DEDUPE_CAPACITY: usize = 7 << 17;

/// Tuning knobs; `Options::default()` suits production.
#[derive(Debug, Clone)]
pub struct Options {
    /// Seal the newest segment and start another once it is at least this large.
    pub segment_bytes: u64,
    /// Most requests (appends + done markers) committed by one `write` + `fdatasync`.
    pub max_batch: usize,
    /// How many delivery ids dedupe remembers (newest first). About 19 bytes of memory each;
    /// the default (917,504 ids, 18 MB) covers GitHub's 3-day redelivery window up to ~3.5
    /// deliveries per second sustained.
    pub dedupe_capacity: usize,
    /// Requests that may wait for the writer; further callers wait (back-pressure).
    pub channel_capacity: usize,
    /// Body bytes that may be in memory waiting for the writer; further appenders wait until
    /// earlier ones are written (back-pressure by bytes, since bodies range from 1 KB to 25 MB).
    /// A body larger than this waits until it is alone.
    pub max_pending_bytes: usize,
    /// Largest body accepted (GitHub caps deliveries at 25 MB).
    pub max_body_bytes: usize,
    /// Write into preallocated segments: a fully-done segment is recycled as the next one, or
    /// else the janitor zero-fills one ahead of time (one spare file of `segment_bytes` on disk,
    /// requested once the active segment is a quarter full, or holds its first entry if it is
    /// not preallocated). Overwriting allocated blocks lets `fdatasync` skip the file-system
    /// journal commit that growing a file needs: 0.6 of the time per sync here.
    pub preallocate: bool,
    /// Most entry locations kept in memory for consumers. Entries appended while that many
    /// wait are left on disk only and read back from the segments as the queue drains, so a
    /// long burst costs no memory per waiting delivery beyond this.
    pub max_queued: usize,
    /// How long a small batch waits for more appends after a batch of several (zero: never).
    /// Fewer, fuller `fdatasync`s when deliveries arrive together, for at most this much
    /// added latency.
    pub linger: std::time::Duration,
    /// How long a small batch waits instead while appends arrive at `saturated_rate` or more.
    pub linger_saturated: std::time::Duration,
    /// Appends per second (measured over 10 ms windows) from which `linger_saturated` applies.
    pub saturated_rate: u64,
    /// Nice value for the janitor thread (Linux: per thread), or `None` to leave its priority
    /// alone. Zero-filling spares and retiring segments can wait behind the threads that
    /// acknowledge deliveries: a late spare only means the writer starts a plain segment.
    pub janitor_nice: Option<i32>,
}

/// Default [`Options::janitor_nice`]: low enough that a burst of appends comes first, not so
/// low that a busy host starves the janitor.
pub const DEFAULT_JANITOR_NICE: i32 = 10;

impl Default for Options {
    fn default() -> Self {
        Self {
            segment_bytes: 64 << 20,
            max_batch: 512,
            dedupe_capacity: DEFAULT_DEDUPE_CAPACITY,
            channel_capacity: 1024,
            max_pending_bytes: 32 << 20,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            preallocate: true,
            linger: std::time::Duration::from_micros(100),
            linger_saturated: std::time::Duration::from_micros(300),
            saturated_rate: 10_000,
            max_queued: 64 * 1024,
            janitor_nice: Some(DEFAULT_JANITOR_NICE),
        }
    }
}

/// How long `open` retries a directory lock that is held (see [`Inbox::open`]).
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("inbox I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("inbox directory {0} is in use by another process")]
    Locked(PathBuf),
    #[error("invalid inbox request: {0}")]
    Invalid(String),
    #[error("corrupt inbox record in {path} at offset {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: &'static str,
    },
    #[error("inbox writer stopped after an I/O error: {0}")]
    Failed(String),
    #[error("inbox is closed")]
    Closed,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Stored durably under this sequence number.
    Appended(u64),
    /// The delivery id was already accepted (in this run or a remembered earlier one).
    Duplicate,
}

/// One delivery handed to a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub delivery_id: String,
    pub event: String,
    pub body: Vec<u8>,
}

/// Damage found while opening.
#[derive(Debug, Clone)]
pub struct Corruption {
    pub path: PathBuf,
    pub offset: u64,
    pub reason: &'static str,
}

/// What `open` found. The unfinished entries themselves are handed out by `take`/`next` first,
/// in sequence order, before anything appended in this run.
#[derive(Debug, Clone, Default)]
pub struct Replay {
    /// Entries appended but not done before the restart.
    pub pending: usize,
    pub first_pending: Option<u64>,
    /// Sequence number the next append will get.
    pub next_seq: u64,
    /// Bytes cut from the end of the newest segment after a bad frame (a torn write; includes
    /// the preallocated space behind it).
    pub truncated_bytes: u64,
    /// Damage that was not a torn tail (reported, files set aside).
    pub corrupt: Vec<Corruption>,
    /// Delivery ids remembered for dedupe.
    pub known_ids: usize,
    pub segments: usize,
}

/// Counters for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Appended (durably) but not yet marked done, including replayed entries.
    pub depth: u64,
    pub appended: u64,
    pub duplicates: u64,
    pub done: u64,
    /// `fdatasync` calls made for batches (each acknowledges a whole batch).
    pub fsyncs: u64,
    /// Segment files on disk (not counting the spare).
    pub segments: u64,
    /// Retired segments reused as the next segment instead of zero-filling a new file.
    pub recycled: u64,
    /// Entry locations held in memory for consumers (at most `Options::max_queued`).
    pub queued: u64,
}

/// Entries read back per refill of a spilled queue.
const REFILL: usize = 4096;

/// What consumers take from: locations in memory, and possibly more entries on disk only.
#[derive(Default)]
struct Queue {
    locs: VecDeque<Loc>,
    /// The queue was full: entries from this (segment, offset) on are on disk only.
    spilled: Option<(u64, u64)>,
    /// End of written data, (segment, length), published by the writer with every batch.
    /// Every entry before it is durable (only done markers are ever written unsynced).
    durable: (u64, u64),
    /// Most entries `locs` takes from the writer ([`Options::max_queued`]).
    cap: usize,
}

/// Where an entry lives; the pending queue holds only these, never bodies.
#[derive(Debug, Clone, Copy)]
struct Loc {
    seq: u64,
    seg: u64,
    offset: u64,
    len: u32,
}

enum Req {
    Append {
        id: String,
        event: String,
        body: Vec<u8>,
        reply: oneshot::Sender<Result<AppendOutcome>>,
        /// Released when the writer drops the request, i.e. once the body left memory.
        _bytes: OwnedSemaphorePermit,
    },
    Done {
        seqs: Vec<u64>,
        reply: oneshot::Sender<Result<()>>,
    },
    /// Which of `ids` were accepted before (and are still remembered).
    Known {
        ids: Vec<String>,
        reply: oneshot::Sender<Result<Vec<bool>>>,
    },
    Close {
        reply: oneshot::Sender<()>,
    },
}

impl Req {
    fn refuse(self, err: impl Fn() -> Error) {
        // A caller that stopped waiting is no error of ours: ignore failed sends.
        match self {
            Req::Append { reply, .. } => drop(reply.send(Err(err()))),
            Req::Done { reply, .. } => drop(reply.send(Err(err()))),
            Req::Known { reply, .. } => drop(reply.send(Err(err()))),
            Req::Close { reply } => drop(reply.send(())),
        }
    }
}

/// State shared by the handle, the writer thread and the janitor thread.
struct Shared {
    dir: PathBuf,
    /// Durable entries not yet taken by a worker, in seq order.
    queue: Mutex<Queue>,
    /// Held while spilled entries are read back, so two consumers do not read the same ones.
    refill: Mutex<()>,
    notify: Notify,
    /// Read handles per segment (first seq), for positional reads by consumers.
    readers: Mutex<HashMap<u64, Arc<File>>>,
    closed: AtomicBool,
    /// The janitor has a zero-filled spare segment ready for the writer to take.
    spare_ready: AtomicBool,
    depth: AtomicU64,
    appended: AtomicU64,
    duplicates: AtomicU64,
    done: AtomicU64,
    fsyncs: AtomicU64,
    segments: AtomicU64,
    recycled: AtomicU64,
}

impl Shared {
    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().expect("inbox queue mutex poisoned")
    }

    /// Moves spilled entries back into the queue (up to `REFILL`, and no more than it has room
    /// for): reads frame headers from the spill position up to the durable end, across sealed
    /// segments. A segment already retired (its entries all done) is skipped.
    fn refill(&self) -> Result<()> {
        let _one = self.refill.lock().expect("inbox refill mutex poisoned");
        let (mut seg, mut off, durable, room) = {
            let q = self.lock_queue();
            match q.spilled {
                Some((seg, off)) => (
                    seg,
                    off,
                    q.durable,
                    q.cap.saturating_sub(q.locs.len()).min(REFILL),
                ),
                None => return Ok(()),
            }
        };
        let mut found = Vec::new();
        let mut head = [0u8; frame::HEADER + 9];
        loop {
            let file = self.lock_readers().get(&seg).cloned();
            let path = recover::segment_path(&self.dir, seg);
            let end = match (&file, seg == durable.0) {
                (_, true) => durable.1,
                (Some(f), false) => f.metadata().map_err(io_err(&path))?.len(),
                (None, false) => 0,
            };
            if off >= end {
                if seg == durable.0 {
                    break;
                }
                // A sealed segment (trimmed to its data when it was sealed) is finished: on
                // to the next one.
                let next = self.lock_readers().keys().copied().filter(|&k| k > seg).min();
                match next {
                    Some(n) if n <= durable.0 => (seg, off) = (n, frame::SEGMENT_MAGIC.len() as u64),
                    _ => break,
                }
                continue;
            }
            if found.len() >= room {
                break;
            }
            let Some(file) = file else { break };
            let corrupt = |reason| Error::Corrupt {
                path: path.clone(),
                offset: off,
                reason,
            };
            file.read_exact_at(&mut head, off).map_err(io_err(&path))?;
            let payload_len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
            if payload_len == 0 || payload_len > frame::MAX_FRAME_PAYLOAD {
                return Err(corrupt("bad frame length behind the spill position"));
            }
            let len = frame::HEADER as u64 + u64::from(payload_len);
            // The payload starts with its kind; an entry's seq follows (see `frame`).
            if head[frame::HEADER] == frame::KIND_ENTRY {
                let mut seq = [0u8; 8];
                seq.copy_from_slice(&head[frame::HEADER + 1..]);
                found.push(Loc {
                    seq: u64::from_le_bytes(seq),
                    seg,
                    offset: off,
                    len: u32::try_from(len).map_err(|_| corrupt("frame too long"))?,
                });
            }
            off += len;
        }
        let mut q = self.lock_queue();
        q.locs.extend(found);
        // Caught up with everything durable: the writer queues new entries itself again.
        q.spilled = if (seg, off) == q.durable {
            None
        } else {
            Some((seg, off))
        };
        Ok(())
    }

    fn lock_readers(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<File>>> {
        self.readers.lock().expect("inbox readers mutex poisoned")
    }

    fn read_entry(&self, loc: Loc) -> Result<Entry> {
        let path = recover::segment_path(&self.dir, loc.seg);
        let file = self.lock_readers().get(&loc.seg).cloned();
        let file = file.ok_or(Error::Corrupt {
            path: path.clone(),
            offset: loc.offset,
            reason: "segment of a pending entry is gone",
        })?;
        let corrupt = |reason| Error::Corrupt {
            path: path.clone(),
            offset: loc.offset,
            reason,
        };
        let mut buf = vec![0u8; loc.len as usize];
        file.read_exact_at(&mut buf, loc.offset).map_err(io_err(&path))?;
        let payload = frame::check_frame(&buf).map_err(corrupt)?;
        match frame::decode(payload).map_err(corrupt)? {
            frame::Record::Entry {
                seq,
                id,
                event,
                body_at,
            } if seq == loc.seq => Ok(Entry {
                seq,
                delivery_id: id.to_owned(),
                event: event.to_owned(),
                body: payload[body_at..].to_vec(),
            }),
            _ => Err(corrupt("record is not the expected entry")),
        }
    }
}

struct Handle {
    tx: mpsc::Sender<Req>,
    shared: Arc<Shared>,
    max_body_bytes: usize,
    /// Permits are body bytes (see `Options::max_pending_bytes`).
    pending_bytes: Arc<Semaphore>,
    max_pending_bytes: u32,
}

/// Cloneable handle; all clones share one writer. Dropping the last clone stops the writer
/// after it has committed what it already received; prefer [`Inbox::close`] to wait for that.
#[derive(Clone)]
pub struct Inbox {
    inner: Arc<Handle>,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("dir", &self.inner.shared.dir)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Inbox {
    /// Opens (creating if needed) the inbox in `dir`, recovers it and starts the writer.
    /// Blocking: it scans the segments. Call it before serving, or via `spawn_blocking`.
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<(Inbox, Replay)> {
        let dir = dir.as_ref().to_path_buf();
        if opts.max_batch == 0
            || opts.channel_capacity == 0
            || opts.segment_bytes == 0
            || opts.max_pending_bytes == 0
        {
            return Err(Error::Invalid(
                "max_batch, channel_capacity, max_pending_bytes and segment_bytes must be positive".into(),
            ));
        }
        // Frames above this are treated as garbage when read back, so never write one.
        let body_limit = frame::MAX_FRAME_PAYLOAD as usize - 16 - 2 * MAX_NAME_LEN;
        if opts.max_body_bytes > body_limit {
            return Err(Error::Invalid(format!(
                "max_body_bytes must be at most {body_limit}"
            )));
        }
        // Permits are counted in u32 by tokio's acquire_many.
        let max_pending_bytes = u32::try_from(opts.max_pending_bytes).unwrap_or(u32::MAX);
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let lock_path = dir.join("LOCK");
        let lock = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        // A lock just released can still be held for a moment by a child process that another
        // thread of this process is starting (between its fork and its exec, the child shares
        // our descriptors): retry briefly before calling the directory taken.
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(std::fs::TryLockError::WouldBlock) => return Err(Error::Locked(dir)),
                Err(std::fs::TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
            }
        }

        let mut rec = recover::recover(&dir, &opts)?;
        let report = rec.report.clone();
        tracing::info!(
            dir = %dir.display(),
            pending = report.pending,
            next_seq = report.next_seq,
            known_ids = report.known_ids,
            segments = report.segments,
            "inbox opened"
        );
        let shared = Arc::new(Shared {
            dir: dir.clone(),
            depth: AtomicU64::new(rec.pending.len() as u64),
            // Replayed entries all start in memory (their locations only): the segments also
            // hold entries finished before the restart, which a read-back would not know.
            queue: Mutex::new(Queue {
                locs: std::mem::take(&mut rec.pending),
                spilled: None,
                durable: (rec.active_first, rec.active_len),
                cap: opts.max_queued.max(1),
            }),
            refill: Mutex::new(()),
            notify: Notify::new(),
            readers: Mutex::new(std::mem::take(&mut rec.readers)),
            closed: AtomicBool::new(false),
            spare_ready: AtomicBool::new(false),
            appended: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            done: AtomicU64::new(0),
            fsyncs: AtomicU64::new(0),
            segments: AtomicU64::new(rec.live.len() as u64),
            recycled: AtomicU64::new(0),
        });
        let (tx, rx) = mpsc::channel(opts.channel_capacity);
        writer::start(rec, rx, shared.clone(), &opts, lock)?;
        let inbox = Inbox {
            inner: Arc::new(Handle {
                tx,
                shared,
                max_body_bytes: opts.max_body_bytes,
                pending_bytes: Arc::new(Semaphore::new(max_pending_bytes as usize)),
                max_pending_bytes,
            }),
        };
        Ok((inbox, report))
    }

    /// Stores a delivery durably. Resolves after the batch holding it is `fdatasync`'d, with
    /// `Duplicate` if the id was accepted before (nothing is stored then). Waits when the
    /// writer's queue is full (back-pressure), never drops.
    pub async fn append(&self, delivery_id: &str, event: &str, body: Vec<u8>) -> Result<AppendOutcome> {
        check_delivery(delivery_id, event, body.len(), self.inner.max_body_bytes)?;
        // At least one permit so empty bodies are bounded by the channel as well; at most all
        // of them so an oversized body still gets through, alone.
        let want = u32::try_from(body.len())
            .unwrap_or(u32::MAX)
            .clamp(1, self.inner.max_pending_bytes);
        let permit = self
            .inner
            .pending_bytes
            .clone()
            .acquire_many_owned(want)
            .await
            .map_err(|_| Error::Closed)?;
        let (reply, rx) = oneshot::channel();
        let req = Req::Append {
            id: delivery_id.to_owned(),
            event: event.to_owned(),
            body,
            reply,
            _bytes: permit,
        };
        self.inner.tx.send(req).await.map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Records that entry `seq` is finished, so it is not handed out after a restart. Done
    /// markers share the appends' group commit but are not synced on their own: after a power
    /// cut (not a process crash) the newest ones may be lost and their entries handed out
    /// again. Marking an unknown or already-done seq is a no-op (so a retried handler may call
    /// it twice). Only mark entries you took: an entry marked done while still queued is still
    /// handed out once.
    pub async fn mark_done(&self, seq: u64) -> Result<()> {
        self.mark_done_many(vec![seq]).await
    }

    /// [`Inbox::mark_done`] for several entries with one request (cheaper for batch workers).
    pub async fn mark_done_many(&self, seqs: Vec<u64>) -> Result<()> {
        if seqs.is_empty() {
            return Ok(());
        }
        let (reply, rx) = oneshot::channel();
        self.inner
            .tx
            .send(Req::Done { seqs, reply })
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// For each of `ids`, whether a delivery with that id was accepted before (in this run, or
    /// among the newest `dedupe_capacity` before it): what `append` would call a duplicate.
    /// Answered after every append sent before it is committed. Stores nothing.
    pub async fn known(&self, ids: Vec<String>) -> Result<Vec<bool>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, rx) = oneshot::channel();
        self.inner
            .tx
            .send(Req::Known { ids, reply })
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Waits for at least one entry and returns up to `max`, oldest first. Returns an empty
    /// vector once the inbox is closed (or if `max` is 0). Each entry is handed to one caller
    /// only; an entry that is taken but never marked done is handed out again after a restart.
    pub async fn take(&self, max: usize) -> Result<Vec<Entry>> {
        self.take_inner(max, true).await
    }

    /// Like [`Inbox::take`] but returns at once, possibly empty.
    pub async fn try_take(&self, max: usize) -> Result<Vec<Entry>> {
        self.take_inner(max, false).await
    }

    async fn take_inner(&self, max: usize, wait: bool) -> Result<Vec<Entry>> {
        let shared = &self.inner.shared;
        loop {
            // Register interest before looking, so a push between the look and the wait
            // still wakes us.
            let notified = shared.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if shared.closed.load(Ordering::Acquire) {
                return Ok(Vec::new());
            }
            let (locs, spilled) = {
                let mut q = shared.lock_queue();
                let n = max.min(q.locs.len());
                (q.locs.drain(..n).collect::<Vec<Loc>>(), q.spilled.is_some())
            };
            if locs.is_empty() && spilled && max > 0 {
                let shared = shared.clone();
                tokio::task::spawn_blocking(move || shared.refill())
                    .await
                    .map_err(|e| Error::Failed(format!("reader task: {e}")))??;
                continue;
            }
            if !locs.is_empty() {
                let shared = shared.clone();
                // Positional reads are blocking file I/O; keep them off the async workers.
                // If one fails, the entries of this call stay undone and are replayed after a
                // restart.
                return tokio::task::spawn_blocking(move || {
                    locs.into_iter().map(|l| shared.read_entry(l)).collect()
                })
                .await
                .map_err(|e| Error::Failed(format!("reader task: {e}")))?;
            }
            if max == 0 || !wait {
                return Ok(Vec::new());
            }
            notified.await;
        }
    }

    /// The next entry, or `None` once the inbox is closed.
    pub async fn next(&self) -> Result<Option<Entry>> {
        Ok(self.take(1).await?.pop())
    }

    /// Entries appended (including replayed ones) and not yet marked done.
    pub fn depth(&self) -> u64 {
        self.inner.shared.depth.load(Ordering::Relaxed)
    }

    /// Deliveries appended since open (`Stats::appended`, without taking the queue lock).
    pub fn appended(&self) -> u64 {
        self.inner.shared.appended.load(Ordering::Relaxed)
    }

    pub fn stats(&self) -> Stats {
        let s = &self.inner.shared;
        Stats {
            depth: s.depth.load(Ordering::Relaxed),
            appended: s.appended.load(Ordering::Relaxed),
            duplicates: s.duplicates.load(Ordering::Relaxed),
            done: s.done.load(Ordering::Relaxed),
            fsyncs: s.fsyncs.load(Ordering::Relaxed),
            segments: s.segments.load(Ordering::Relaxed),
            recycled: s.recycled.load(Ordering::Relaxed),
            queued: s.lock_queue().locs.len() as u64,
        }
    }

    /// Commits everything sent before this call, stops the writer (later calls on any clone
    /// fail with `Closed`), wakes waiting consumers (they get nothing more) and releases the
    /// directory lock. Entries not marked done are replayed on the next open.
    pub async fn close(&self) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        if self.inner.tx.send(Req::Close { reply }).await.is_err() {
            return Ok(()); // writer already gone
        }
        // A dropped reply also means the writer is gone; either way it has stopped.
        let _ = rx.await;
        Ok(())
    }
}
