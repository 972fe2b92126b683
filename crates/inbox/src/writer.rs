//! The single writer thread (group commit, rotation) and the janitor thread (segment deletion,
//! ids file upkeep).
//!
//! The writer is a plain OS thread: its work is blocking `write`/`fdatasync`, and owning the
//! dedupe set and segment accounting alone means none of it needs a lock.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::dedupe::Dedupe;
use super::frame::{self, ReadFrame, Record, SEGMENT_MAGIC};
use super::recover::{self, IDS_FILE, IDS_TMP, Recovered, SPARE_FILE};
use super::seqset::SeqSet;
use super::{AppendOutcome, Error, Loc, Options, Req, Result, Shared, io_err};

pub fn start(
    rec: Recovered,
    rx: mpsc::Receiver<Req>,
    shared: Arc<Shared>,
    opts: &Options,
    lock: File,
) -> Result<()> {
    let dir = shared.dir.clone();
    let (jtx, jrx) = std::sync::mpsc::channel();
    let janitor = Janitor {
        dir: dir.clone(),
        shared: shared.clone(),
        ids: rec.ids_file,
        ids_count: rec.ids_count,
        capacity: opts.dedupe_capacity,
        spare_bytes: opts.segment_bytes,
        preallocate: opts.preallocate,
        rx: jrx,
    };
    let nice = opts.janitor_nice;
    let janitor_thread = thread::Builder::new()
        .name("inbox-janitor".into())
        .spawn(move || {
            if let Some(nice) = nice {
                lower_thread_priority(nice);
            }
            janitor.run()
        })
        .map_err(io_err(&dir))?;
    let writer = Writer {
        rx,
        shared,
        dir: dir.clone(),
        active: rec.active,
        active_first: rec.active_first,
        active_len: rec.active_len,
        active_prealloc: false,
        preallocate: opts.preallocate,
        spare_requested: false,
        segment_bytes: opts.segment_bytes,
        max_batch: opts.max_batch,
        linger: opts.linger,
        linger_saturated: opts.linger_saturated,
        saturated_rate: opts.saturated_rate,
        next_seq: rec.next_seq,
        dedupe: rec.dedupe,
        undone: rec.undone,
        live: rec.live,
        batch_done: HashSet::new(),
        janitor: Some(jtx),
        janitor_thread: Some(janitor_thread),
        failed: None,
        buf: Vec::new(),
        lock: Some(lock),
    };
    thread::Builder::new()
        .name("inbox-writer".into())
        .spawn(move || writer.run())
        .map_err(io_err(&dir))?;
    Ok(())
}

/// Largest batch buffer kept between batches.
const BUF_KEEP: usize = 4 << 20;

/// What the writer decided for one request before the batch is synced.
enum Staged {
    Appended(Loc),
    Duplicate,
    /// The seqs of a done request that were actually written (not already done).
    Done(Vec<u64>),
    /// Whether each id of a `Known` request was accepted before.
    Known(Vec<bool>),
    Noop,
}

struct Writer {
    rx: mpsc::Receiver<Req>,
    shared: Arc<Shared>,
    dir: PathBuf,
    active: File,
    active_first: u64,
    active_len: u64,
    /// The active segment was zero-filled ahead: writes overwrite allocated blocks, so
    /// `fdatasync` needs no metadata (size, extent) journal commit.
    active_prealloc: bool,
    preallocate: bool,
    /// A `PrepareSpare` job is outstanding or its spare not yet taken.
    spare_requested: bool,
    segment_bytes: u64,
    max_batch: usize,
    linger: Duration,
    linger_saturated: Duration,
    saturated_rate: u64,
    next_seq: u64,
    dedupe: Dedupe,
    /// Entries appended and not yet done.
    undone: SeqSet,
    /// Segment first seq -> entries in it not yet done. The newest key is the active segment.
    live: BTreeMap<u64, u64>,
    /// Seqs marked done in the current batch (a seq marked twice in one batch is written once).
    batch_done: HashSet<u64>,
    janitor: Option<std::sync::mpsc::Sender<Job>>,
    janitor_thread: Option<JoinHandle<()>>,
    /// Set after an I/O error: the writer refuses everything from then on.
    failed: Option<String>,
    buf: Vec<u8>,
    /// The directory lock, released when the writer stops.
    lock: Option<File>,
}

/// A batch with this many appends means concurrent deliveries: the next small batch lingers.
const BUSY_AT: usize = 4;
/// Batches with fewer appends than this linger when the inbox is busy.
const LINGER_BELOW: usize = 32;
/// The append rate that decides whether the inbox is saturated is measured over windows this
/// long.
const RATE_WINDOW: Duration = Duration::from_millis(10);
/// Bytes the spare's zero-fill writes (and syncs) at a time. Each chunk sits in the device
/// queue ahead of the writer's next `fdatasync`: with 1 MB chunks a sync during the fill took
/// up to ~1 ms longer, with 128 KB about a third of that, and the fill still ends in ~0.2 s.
const ZERO_FILL_CHUNK: usize = 128 << 10;

fn appends(batch: &[Req]) -> usize {
    batch.iter().filter(|r| matches!(r, Req::Append { .. })).count()
}

/// Answers every request of a batch that cannot be written with `msg` (close requests are
/// kept, to be answered once the writer stops).
fn refuse_all(batch: &mut Vec<Req>, close_replies: &mut Vec<oneshot::Sender<()>>, msg: &str) {
    for req in batch.drain(..) {
        match req {
            Req::Close { reply } => close_replies.push(reply),
            other => other.refuse(|| Error::Failed(msg.to_owned())),
        }
    }
}

/// Answers each request of a durable batch with what was decided for it.
fn acknowledge(batch: &mut Vec<Req>, staged: Vec<Staged>, close_replies: &mut Vec<oneshot::Sender<()>>) {
    for (req, s) in batch.drain(..).zip(staged) {
        // A caller that gave up waiting is not an error: its entry is stored regardless.
        match (req, s) {
            (Req::Append { reply, .. }, Staged::Appended(loc)) => {
                let _ = reply.send(Ok(AppendOutcome::Appended(loc.seq)));
            }
            (Req::Append { reply, .. }, _) => {
                let _ = reply.send(Ok(AppendOutcome::Duplicate));
            }
            (Req::Done { reply, .. }, _) => {
                let _ = reply.send(Ok(()));
            }
            (Req::Known { reply, .. }, Staged::Known(known)) => {
                let _ = reply.send(Ok(known));
            }
            (Req::Known { reply, .. }, _) => {
                let _ = reply.send(Err(Error::Failed("known ids were not looked up".into())));
            }
            (Req::Close { reply }, _) => close_replies.push(reply),
        }
    }
}

/// Whether appends arrive fast enough for the long linger: the rate over the last full window.
struct Pace {
    since: Instant,
    appends: u64,
    saturated: bool,
}

impl Pace {
    fn new(since: Instant) -> Self {
        Self {
            since,
            appends: 0,
            saturated: false,
        }
    }

    /// Counts a committed batch's appends; at the end of a window, decides `saturated` from it.
    fn record(&mut self, now: Instant, appends: usize, rate: u64) {
        self.appends += appends as u64;
        let elapsed = now.saturating_duration_since(self.since);
        if elapsed >= RATE_WINDOW {
            let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
            self.saturated = self.appends.saturating_mul(1_000_000) >= rate.saturating_mul(micros);
            self.appends = 0;
            self.since = now;
        }
    }
}

impl Writer {
    fn run(mut self) {
        // A retired segment becomes the spare, which saves zero-filling one.
        self.retire_done_segments();
        let mut batch = Vec::with_capacity(self.max_batch);
        let mut close_replies = Vec::new();
        let mut pace = Pace::new(Instant::now());
        let mut prev = 0;
        // Group commit: block for one request, then take whatever else is already queued.
        // While a batch is being synced, new requests pile up and form the next batch.
        while let Some(first) = self.rx.blocking_recv() {
            batch.push(first);
            self.drain_into(&mut batch);
            // Concurrent deliveries (the previous batch carried several) make a small batch
            // wait a moment for more: an `fdatasync` costs about the same CPU (file system,
            // block layer, interrupt, context switches) and device round trip whatever it
            // carries. At a saturating rate, where CPU is what runs out, it waits longer. A
            // delivery on a quiet server is never delayed.
            let wait = if pace.saturated {
                self.linger_saturated
            } else if prev >= BUSY_AT {
                self.linger
            } else {
                Duration::ZERO
            };
            if !wait.is_zero() && appends(&batch) < LINGER_BELOW {
                std::thread::sleep(wait);
                self.drain_into(&mut batch);
            }
            prev = appends(&batch);
            if self.commit(&mut batch, &mut close_replies) {
                break;
            }
            pace.record(Instant::now(), prev, self.saturated_rate);
        }
        self.shutdown(close_replies);
    }

    fn drain_into(&mut self, batch: &mut Vec<Req>) {
        while batch.len() < self.max_batch {
            match self.rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
    }

    /// Writes, syncs and acknowledges one batch. Returns true if it held a close request.
    fn commit(&mut self, batch: &mut Vec<Req>, close_replies: &mut Vec<oneshot::Sender<()>>) -> bool {
        let closing = batch.iter().any(|r| matches!(r, Req::Close { .. }));
        if let Some(msg) = self.failed.clone() {
            refuse_all(batch, close_replies, &msg);
            return closing;
        }
        let staged = self.stage(batch);
        if let Err(msg) = self.write_and_sync(&staged) {
            tracing::error!(error = %msg, "inbox write failed; refusing further writes until restart");
            refuse_all(batch, close_replies, &msg);
            self.failed = Some(msg);
            return closing;
        }
        let dones = self.publish(&staged);
        acknowledge(batch, staged, close_replies);
        self.upkeep(dones);
        closing
    }

    /// Decides each request in commit order and encodes what it writes into `self.buf`.
    fn stage(&mut self, batch: &[Req]) -> Vec<Staged> {
        self.buf.clear();
        let mut staged = Vec::with_capacity(batch.len());
        for req in batch {
            staged.push(match req {
                Req::Append { id, event, body, .. } => {
                    // Dedupe is decided here, in commit order, so of two concurrent appends
                    // of one id exactly one is stored.
                    if self.dedupe.insert(id) {
                        let seq = self.next_seq;
                        self.next_seq += 1;
                        let offset = self.active_len + self.buf.len() as u64;
                        let len = frame::encode_entry(&mut self.buf, seq, id, event, body);
                        Staged::Appended(Loc {
                            seq,
                            seg: self.active_first,
                            offset,
                            len: len as u32,
                        })
                    } else {
                        Staged::Duplicate
                    }
                }
                Req::Done { seqs, .. } => {
                    let mut written = Vec::with_capacity(seqs.len());
                    for &seq in seqs {
                        if self.undone.contains(seq) && self.batch_done.insert(seq) {
                            frame::encode_done(&mut self.buf, seq);
                            written.push(seq);
                        }
                    }
                    Staged::Done(written)
                }
                // Answered in commit order: an id appended earlier in this batch counts.
                Req::Known { ids, .. } => {
                    Staged::Known(ids.iter().map(|id| self.dedupe.contains(id)).collect())
                }
                Req::Close { .. } => Staged::Noop,
            });
        }
        self.batch_done.clear();
        staged
    }

    /// Appends `self.buf` to the active segment, synced if it holds new entries. The error is
    /// the message every request is then refused with.
    fn write_and_sync(&mut self, staged: &[Staged]) -> std::result::Result<(), String> {
        if self.buf.is_empty() {
            return Ok(());
        }
        // Only new entries need the sync before their answer. A batch of done markers alone is
        // written and left to the next entry batch's `fdatasync` (same file) or to the sync
        // that seals its segment (`cut_active`): losing one to a power cut only replays an
        // entry whose effects are already durable, which handlers are idempotent for. Under a
        // steady stream this saves the worker's fsyncs, which the acks would otherwise queue
        // behind.
        let appended = staged.iter().any(|s| matches!(s, Staged::Appended(_)));
        let synced = self
            .active
            .write_all_at(&self.buf, self.active_len)
            .and_then(|()| if appended { self.active.sync_data() } else { Ok(()) });
        if let Err(e) = synced {
            let path = recover::segment_path(&self.dir, self.active_first);
            return Err(format!("{}: {e}", path.display()));
        }
        if appended {
            self.shared.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        self.active_len += self.buf.len() as u64;
        Ok(())
    }

    /// The batch is durable: updates the accounting and hands new entries to consumers.
    /// Returns how many entries it marked done.
    fn publish(&mut self, staged: &[Staged]) -> u64 {
        let mut new_locs = Vec::new();
        let (mut dups, mut dones) = (0u64, 0u64);
        for s in staged {
            match s {
                Staged::Appended(loc) => {
                    self.undone.insert(loc.seq);
                    *self.live.entry(loc.seg).or_insert(0) += 1;
                    new_locs.push(*loc);
                }
                Staged::Done(seqs) => {
                    for seq in seqs {
                        self.undone.remove(*seq);
                        if let Some((_, n)) = self.live.range_mut(..=*seq).next_back() {
                            *n = n.saturating_sub(1);
                        }
                    }
                    dones += seqs.len() as u64;
                }
                Staged::Duplicate => dups += 1,
                Staged::Known(_) | Staged::Noop => {}
            }
        }
        let sh = &self.shared;
        let added = new_locs.len() as u64;
        sh.appended.fetch_add(added, Ordering::Relaxed);
        sh.duplicates.fetch_add(dups, Ordering::Relaxed);
        sh.done.fetch_add(dones, Ordering::Relaxed);
        sh.depth.fetch_add(added, Ordering::Relaxed);
        sh.depth.fetch_sub(dones, Ordering::Relaxed);
        {
            let mut q = sh.lock_queue();
            q.durable = (self.active_first, self.active_len);
            if q.spilled.is_none() {
                let room = q.cap.saturating_sub(q.locs.len());
                if let Some(first_spilled) = new_locs.get(room) {
                    // Full: this entry and all later ones stay on disk until consumers catch up.
                    q.spilled = Some((first_spilled.seg, first_spilled.offset));
                    new_locs.truncate(room);
                }
                q.locs.extend(new_locs);
            }
        }
        if added > 0 {
            sh.notify.notify_waiters();
        }
        dones
    }

    /// After a batch: segment rotation and retirement, the next spare, the buffer's size.
    fn upkeep(&mut self, dones: u64) {
        // Rotate when full, or early to leave a segment that is not preallocated (the one
        // recovered at open) as soon as a preallocated one is ready. A segment with no entry
        // is never rotated: its name is its first seq.
        let spare_ready = self.shared.spare_ready.load(Ordering::Acquire);
        if (self.active_len >= self.segment_bytes || (!self.active_prealloc && spare_ready))
            && self.next_seq > self.active_first
            && let Err(e) = self.rotate()
        {
            tracing::error!(error = %e, "inbox segment rotation failed; refusing further writes until restart");
            self.failed = Some(e.to_string());
        }
        if dones > 0 || self.live.len() > 1 {
            self.retire_done_segments();
        }
        // Ask for the next spare a quarter in: a segment retired meanwhile (the usual case when
        // workers keep up) is then recycled instead of zero-filling a new file, and most of
        // the segment's time is left for a zero-fill. A plain segment (the one open found or
        // made) asks as soon as it holds an entry, since until it is left every batch pays the
        // journal commit of a growing file; an inbox that never gets an entry writes no spare.
        let plain_in_use = !self.active_prealloc && self.next_seq > self.active_first;
        if self.active_len >= self.segment_bytes / 4 || plain_in_use {
            self.request_spare();
        }
        // Don't keep a huge buffer around after a batch of large bodies.
        if self.buf.capacity() > BUF_KEEP {
            self.buf = Vec::new();
        }
    }

    fn rotate(&mut self) -> Result<()> {
        // A sealed segment ends exactly at its data: a recycled file may hold stale frames
        // past that point, and open treats anything after a sealed segment's data as damage.
        self.cut_active()?;
        let first = self.next_seq;
        let path = recover::segment_path(&self.dir, first);
        // Hand-off: the janitor touches the spare file only while the flag is false and sets
        // it once the spare is complete; the writer touches it only while the flag is true and
        // clears it only after the rename. (Clearing first would let the janitor start a new
        // spare under the same name while this rename is still pending.)
        let file = if self.shared.spare_ready.load(Ordering::Acquire) {
            let spare = self.dir.join(SPARE_FILE);
            fs::rename(&spare, &path).map_err(io_err(&spare))?;
            self.shared.spare_ready.store(false, Ordering::Release);
            recover::sync_dir(&self.dir)?;
            self.active_prealloc = true;
            self.spare_requested = false;
            OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(io_err(&path))?
        } else {
            self.active_prealloc = false;
            recover::create_segment(&self.dir, first)?
        };
        let reader = File::open(&path).map_err(io_err(&path))?;
        self.shared.lock_readers().insert(first, Arc::new(reader));
        self.live.insert(first, 0);
        self.active = file;
        self.active_first = first;
        self.active_len = SEGMENT_MAGIC.len() as u64;
        self.shared.segments.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(first, "inbox segment rotated");
        Ok(())
    }

    fn request_spare(&mut self) {
        if self.preallocate
            && !self.spare_requested
            && !self.shared.spare_ready.load(Ordering::Acquire)
            && let Some(j) = &self.janitor
        {
            self.spare_requested = true;
            let _ = j.send(Job::PrepareSpare);
        }
    }

    /// Shrinks the active segment file to its data (drops preallocated or recycled space) and
    /// syncs it, done markers written since the last entry batch included.
    fn cut_active(&mut self) -> Result<()> {
        let path = recover::segment_path(&self.dir, self.active_first);
        let len = self.active.metadata().map_err(io_err(&path))?.len();
        if len > self.active_len {
            self.active.set_len(self.active_len).map_err(io_err(&path))?;
        }
        self.active.sync_all().map_err(io_err(&path))
    }

    /// Hands the oldest sealed segments whose entries are all done to the janitor. Only a
    /// prefix is retired: a segment's done markers may refer to entries of older segments, so
    /// deleting it before them would make those entries look unfinished after a restart.
    fn retire_done_segments(&mut self) {
        while let Some((&first, &undone)) = self.live.iter().next() {
            if first == self.active_first || undone > 0 {
                break;
            }
            self.live.remove(&first);
            if let Some(j) = &self.janitor {
                let _ = j.send(Job::Retire(first));
            }
        }
    }

    fn shutdown(mut self, mut close_replies: Vec<oneshot::Sender<()>>) {
        // After a clean stop the next open finds no stale bytes to cut (and reports no damage).
        if self.failed.is_none()
            && let Err(e) = self.cut_active()
        {
            tracing::warn!(error = %e, "could not trim the inbox segment on close");
        }
        self.shared.closed.store(true, Ordering::Release);
        self.shared.notify.notify_waiters();
        self.rx.close();
        while let Ok(req) = self.rx.try_recv() {
            match req {
                Req::Close { reply } => close_replies.push(reply),
                other => other.refuse(|| Error::Closed),
            }
        }
        drop(self.janitor.take());
        if let Some(h) = self.janitor_thread.take()
            && h.join().is_err()
        {
            tracing::error!("inbox janitor thread panicked");
        }
        drop(self.lock.take());
        tracing::info!(dir = %self.dir.display(), "inbox closed");
        for reply in close_replies {
            let _ = reply.send(());
        }
    }
}

/// Work for the janitor thread, in order.
enum Job {
    /// Delete this fully-done segment (first seq), keeping its ids.
    Retire(u64),
    /// Make a zero-filled segment ready for the next rotation, if none is.
    PrepareSpare,
}

struct Janitor {
    dir: PathBuf,
    shared: Arc<Shared>,
    ids: File,
    ids_count: usize,
    capacity: usize,
    spare_bytes: u64,
    preallocate: bool,
    rx: std::sync::mpsc::Receiver<Job>,
}

impl Janitor {
    fn run(mut self) {
        if let Err(e) = self.maybe_compact() {
            tracing::error!(error = %e, "inbox ids file compaction failed");
        }
        let mut stuck = false;
        while let Ok(job) = self.rx.recv() {
            match job {
                // After a failure, retire nothing more this run: deleting later segments (and
                // the done markers in them) past a segment left behind would make its entries
                // look unfinished on the next open. That open retries the whole prefix.
                Job::Retire(_) if stuck => {}
                Job::Retire(first) => {
                    if let Err(e) = self.retire(first) {
                        tracing::error!(segment = first, error = %e, "could not retire inbox segment; retrying on next open");
                        stuck = true;
                    }
                }
                Job::PrepareSpare => {
                    if let Err(e) = self.prepare_spare() {
                        // Rotation then falls back to a plain (slower to sync) segment.
                        tracing::warn!(error = %e, "could not preallocate an inbox segment");
                    }
                }
            }
        }
    }

    /// Copies a fully-done segment's delivery ids into the ids file (synced), then recycles the
    /// file as the next spare (its blocks are allocated, so overwriting it syncs fast), deletes
    /// it, or sets it aside if it is damaged. Stale frames left in a recycled file are harmless:
    /// its old entries have lower seqs than any entry written to it later, so open rejects them
    /// as out of sequence; its old done markers name entries that are all done and retired.
    fn retire(&mut self, first: u64) -> Result<()> {
        let path = recover::segment_path(&self.dir, first);
        let file = File::open(&path).map_err(io_err(&path))?;
        // Only a full segment makes a spare: one sealed early (a plain segment left as soon as
        // a spare was ready) is small, and a segment written into it would grow the file past
        // its end, paying a journal commit per batch for the rest of the segment.
        let full = file.metadata().map_err(io_err(&path))?.len() >= self.spare_bytes;
        let mut r = BufReader::with_capacity(1 << 20, file);
        let mut magic = [0u8; 8];
        let mut damaged = r.read_exact(&mut magic).is_err() || &magic != SEGMENT_MAGIC;
        let (mut out, mut payload, mut n) = (Vec::new(), Vec::new(), 0usize);
        while !damaged {
            match frame::read_frame(&mut r, &mut payload).map_err(io_err(&path))? {
                ReadFrame::Eof => break,
                ReadFrame::Bad(_) => damaged = true,
                ReadFrame::Frame => match frame::decode(&payload) {
                    Ok(Record::Entry { id, .. }) => {
                        frame::encode(&mut out, &[id.as_bytes()]);
                        n += 1;
                    }
                    Ok(Record::Done { .. }) => {}
                    Err(_) => damaged = true,
                },
            }
        }
        if n > 0 && self.capacity > 0 {
            let ids_path = self.dir.join(IDS_FILE);
            self.ids
                .write_all(&out)
                .and_then(|()| self.ids.sync_data())
                .map_err(io_err(&ids_path))?;
            self.ids_count += n;
        }
        self.shared.lock_readers().remove(&first);
        let recycle =
            !damaged && full && self.preallocate && !self.shared.spare_ready.load(Ordering::Acquire);
        if damaged {
            let aside = recover::corrupt_path(&path);
            tracing::warn!(path = %aside.display(), "damaged inbox segment set aside");
            fs::rename(&path, &aside).map_err(io_err(&path))?;
        } else if recycle {
            let spare = self.dir.join(SPARE_FILE);
            fs::rename(&path, &spare).map_err(io_err(&path))?;
        } else {
            fs::remove_file(&path).map_err(io_err(&path))?;
        }
        recover::sync_dir(&self.dir)?;
        self.shared.segments.fetch_sub(1, Ordering::Relaxed);
        if recycle {
            self.shared.recycled.fetch_add(1, Ordering::Relaxed);
            self.shared.spare_ready.store(true, Ordering::Release);
        }
        tracing::debug!(first, ids = n, "inbox segment retired");
        self.maybe_compact()
    }

    /// Writes `SEGMENT_MAGIC` and zeros up to the segment size into the spare file and syncs it.
    /// Real zeros rather than `fallocate`: unwritten extents would still need a metadata
    /// update on first write.
    fn prepare_spare(&mut self) -> Result<()> {
        if self.shared.spare_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let path = self.dir.join(SPARE_FILE);
        let mut f = File::create(&path).map_err(io_err(&path))?;
        let chunk = vec![0u8; ZERO_FILL_CHUNK];
        let total = self.spare_bytes.max(SEGMENT_MAGIC.len() as u64);
        f.write_all(SEGMENT_MAGIC).map_err(io_err(&path))?;
        let mut written = SEGMENT_MAGIC.len() as u64;
        while written < total {
            // Closing: stop here. The flag stays false and open deletes the partial spare.
            if self.shared.closed.load(Ordering::Acquire) {
                return Ok(());
            }
            let n = (total - written).min(chunk.len() as u64) as usize;
            // Sync every chunk: the writer's fdatasync waits for the device queue, so keep
            // what the zero-fill has in flight small.
            f.write_all(&chunk[..n])
                .and_then(|()| f.sync_data())
                .map_err(io_err(&path))?;
            written += n as u64;
        }
        f.sync_all().map_err(io_err(&path))?;
        self.shared.spare_ready.store(true, Ordering::Release);
        tracing::debug!(bytes = total, "inbox spare segment ready");
        Ok(())
    }

    /// Keeps the ids file to at most twice the dedupe capacity by rewriting it with its newest
    /// `capacity` ids (older ones would be evicted from memory on open anyway).
    fn maybe_compact(&mut self) -> Result<()> {
        if self.ids_count <= self.capacity.saturating_mul(2) {
            return Ok(());
        }
        let path = self.dir.join(IDS_FILE);
        let tmp = self.dir.join(IDS_TMP);
        let skip = self.ids_count.saturating_sub(self.capacity);
        let src = File::open(&path).map_err(io_err(&path))?;
        let mut r = BufReader::with_capacity(1 << 20, src);
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&tmp).map_err(io_err(&tmp))?);
        let (mut payload, mut frame_buf, mut seen, mut kept) = (Vec::new(), Vec::new(), 0, 0);
        while let ReadFrame::Frame = frame::read_frame(&mut r, &mut payload).map_err(io_err(&path))? {
            seen += 1;
            if seen > skip {
                frame_buf.clear();
                frame::encode(&mut frame_buf, &[&payload]);
                w.write_all(&frame_buf).map_err(io_err(&tmp))?;
                kept += 1;
            }
        }
        let f = w.into_inner().map_err(|e| io_err(&tmp)(e.into_error()))?;
        f.sync_all().map_err(io_err(&tmp))?;
        fs::rename(&tmp, &path).map_err(io_err(&tmp))?;
        recover::sync_dir(&self.dir)?;
        self.ids = reopen_append(&path)?;
        tracing::debug!(before = self.ids_count, after = kept, "inbox ids file compacted");
        self.ids_count = kept;
        Ok(())
    }
}

fn reopen_append(path: &Path) -> Result<File> {
    OpenOptions::new().append(true).open(path).map_err(io_err(path))
}

/// Set the calling thread's nice value (Linux: per thread). Failing is harmless: the thread
/// then competes on equal terms.
fn lower_thread_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority only read their integer arguments.
    unsafe {
        let tid = libc::gettid();
        if libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) != 0 {
            tracing::debug!(nice, "could not change the inbox janitor's priority");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

#[cfg(test)]
mod pace_tests {
    use super::*;

    #[test]
    fn saturated_only_while_the_rate_of_the_last_window_is_high() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut pace = Pace::new(t0);
        // 150 appends in 10 ms: 15,000/s, above a 10,000/s threshold, but only known at the
        // window's end.
        pace.record(ms(5), 100, 10_000);
        assert!(!pace.saturated, "decided before the window ended");
        pace.record(ms(10), 50, 10_000);
        assert!(pace.saturated);
        // The next window carries 5,000/s (a paced stream): not saturated.
        pace.record(ms(20), 50, 10_000);
        assert!(!pace.saturated);
        // A burst after a quiet second is judged on its own window, not diluted by the pause.
        pace.record(ms(1020), 1, 10_000);
        assert!(!pace.saturated);
        pace.record(ms(1030), 200, 10_000);
        assert!(pace.saturated);
        // Exactly the threshold counts as saturated; a clock that went backwards changes nothing.
        pace.record(ms(1040), 100, 10_000);
        assert!(pace.saturated);
        pace.record(ms(1000), 0, 10_000);
        assert!(pace.saturated);
    }
}
