//! Where accepted work waits until a worker is done with it (design §18): the embedded journal
//! ([`crate::inbox`], the default: one process) or a PostgreSQL table that several replicas
//! share ([`postgres`]). The HTTP edge appends through [`Queue::append`] and answers 2xx only
//! once the work is durable there; the worker takes, works and marks done. Both keep the same
//! contract: a delivery id is accepted once, an entry is handed to one worker at a time, and an
//! entry not marked done is handed out again (after a restart, or when its lease runs out).

pub mod postgres;

use std::time::Duration;

use crate::inbox::{self, AppendOutcome, Inbox};

pub use postgres::{PgDocument, PgOptions, PgQueue, ReplicaLock, ReplicaLockGuard, Written};

/// Why the queue refused or failed a call.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Bad input (an empty or overlong id or kind, a body over the limit): the sender's fault.
    #[error("invalid queue request: {0}")]
    Invalid(String),
    #[error(transparent)]
    Journal(inbox::Error),
    #[error("PostgreSQL queue: {0}")]
    Postgres(String),
    #[error("the queue is closed")]
    Closed,
}

impl From<inbox::Error> for QueueError {
    fn from(e: inbox::Error) -> Self {
        match e {
            inbox::Error::Invalid(m) => QueueError::Invalid(m),
            inbox::Error::Closed => QueueError::Closed,
            other => QueueError::Journal(other),
        }
    }
}

/// One piece of accepted work, as handed to the worker.
#[derive(Debug, Clone)]
pub struct Entry {
    pub seq: u64,
    pub delivery_id: String,
    pub event: String,
    /// The `Work` encoding, byte for byte as appended.
    pub body: Vec<u8>,
    /// Handed out before without being marked done: accepted before this start (journal), or
    /// claimed before by a replica whose lease ran out (PostgreSQL).
    pub replayed: bool,
}

/// The queue's counters for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub depth: u64,
    pub appended: u64,
    /// Journal only: `fdatasync` calls.
    pub fsyncs: u64,
    /// PostgreSQL only: entries this replica claimed, and how many of them had a lease that
    /// ran out (another replica, or an earlier run, had claimed them and never finished).
    pub claims: u64,
    pub lease_expiries: u64,
}

/// The embedded journal or the PostgreSQL queue; cheap to clone.
#[derive(Clone)]
pub enum Queue {
    Journal {
        inbox: Inbox,
        /// Entries numbered below this were appended before this run started.
        replay_below: u64,
    },
    Postgres(PgQueue),
}

impl Queue {
    /// Appends `body` under `delivery_id`; resolves once it is durable (synced to the journal,
    /// or committed in PostgreSQL). A delivery id seen before is a `Duplicate`.
    pub async fn append(
        &self,
        delivery_id: &str,
        event: &str,
        body: Vec<u8>,
    ) -> Result<AppendOutcome, QueueError> {
        match self {
            Queue::Journal { inbox, .. } => Ok(inbox.append(delivery_id, event, body).await?),
            Queue::Postgres(pg) => pg.append(delivery_id, event, body).await,
        }
    }

    /// Up to `max` entries, waiting until there is at least one; empty once the queue closed.
    pub async fn take(&self, max: usize) -> Result<Vec<Entry>, QueueError> {
        match self {
            Queue::Journal { inbox, replay_below } => Ok(inbox
                .take(max)
                .await?
                .into_iter()
                .map(|e| Entry {
                    replayed: e.seq < *replay_below,
                    seq: e.seq,
                    delivery_id: e.delivery_id,
                    event: e.event,
                    body: e.body,
                })
                .collect()),
            Queue::Postgres(pg) => pg.take(max).await,
        }
    }

    /// Keeps the entries `seqs` claimed while the returned guard lives (PostgreSQL renews their
    /// lease; the journal hands an entry to no one else anyway).
    pub fn keep_claimed(&self, seqs: &[u64]) -> Option<postgres::Renewal> {
        match self {
            Queue::Journal { .. } => None,
            Queue::Postgres(pg) => Some(pg.keep_claimed(seqs)),
        }
    }

    /// The entries' effects are durable: they are never handed out again.
    pub async fn mark_done_many(&self, seqs: Vec<u64>) -> Result<(), QueueError> {
        if seqs.is_empty() {
            return Ok(());
        }
        match self {
            Queue::Journal { inbox, .. } => Ok(inbox.mark_done_many(seqs).await?),
            Queue::Postgres(pg) => pg.mark_done_many(&seqs).await,
        }
    }

    /// Entries taken and not finished (a stop): PostgreSQL ends their lease now, so any
    /// replica takes them again at once, as a replay; the journal replays them on its next
    /// start anyway. Best effort, bounded: a stop must not wait on the database.
    pub async fn give_back(&self, seqs: &[u64]) {
        let Queue::Postgres(pg) = self else { return };
        if seqs.is_empty() {
            return;
        }
        match tokio::time::timeout(Duration::from_secs(1), pg.give_back(seqs)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot give back the entries in hand; their lease runs out instead")
            }
            Err(_) => {
                tracing::warn!("giving back the entries in hand took too long; their lease runs out instead")
            }
        }
    }

    /// Which of `ids` were accepted before (what `append` would call duplicates).
    pub async fn known(&self, ids: Vec<String>) -> Result<Vec<bool>, QueueError> {
        match self {
            Queue::Journal { inbox, .. } => Ok(inbox.known(ids).await?),
            Queue::Postgres(pg) => pg.known(&ids).await,
        }
    }

    /// Deliveries this process accepted since it started (the worker's burst detection).
    pub fn appended(&self) -> u64 {
        match self {
            Queue::Journal { inbox, .. } => inbox.appended(),
            Queue::Postgres(pg) => pg.appended(),
        }
    }

    pub async fn stats(&self) -> QueueStats {
        match self {
            Queue::Journal { inbox, .. } => {
                let s = inbox.stats();
                QueueStats {
                    depth: s.depth,
                    appended: s.appended,
                    fsyncs: s.fsyncs,
                    ..QueueStats::default()
                }
            }
            Queue::Postgres(pg) => pg.stats().await,
        }
    }

    /// `/healthz`: which queue, and whether it answers now.
    pub async fn health(&self) -> (&'static str, Result<(), String>) {
        match self {
            Queue::Journal { .. } => ("journal", Ok(())),
            Queue::Postgres(pg) => ("postgres", pg.ping(Duration::from_secs(2)).await),
        }
    }

    /// Stops the queue; later calls fail with [`QueueError::Closed`] and `take` returns empty.
    pub async fn close(&self) -> Result<(), QueueError> {
        match self {
            Queue::Journal { inbox, .. } => Ok(inbox.close().await?),
            Queue::Postgres(pg) => {
                pg.close();
                Ok(())
            }
        }
    }
}
