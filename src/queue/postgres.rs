//! The PostgreSQL queue (design §18): any replica appends, any replica claims.
//!
//! A delivery is one row of `auger_queue` (`migrations/`), inserted with its delivery id as the
//! unique key; the insert commits before the caller answers 2xx. A worker claims the oldest rows
//! nobody holds with `FOR UPDATE SKIP LOCKED`, stamping its name and a lease; it renews the lease
//! while it works ([`PgQueue::keep_claimed`]) and marks the rows done when their effects are
//! durable. A replica that dies stops renewing: once the lease runs out any replica claims the
//! row again, as a replay (handlers are idempotent). Inserts `NOTIFY` the workers, who also poll,
//! so a lost notification or an expired lease costs at most one poll interval.
//!
//! [`ReplicaLock`] is a session advisory lock on a connection of its own: what one process
//! serialized with a mutex, replicas serialize with it. A replica that dies holding one loses
//! its connection, and PostgreSQL releases the lock with it.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, Notify, mpsc, oneshot};
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{AsyncMessage, Client, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{Entry, QueueError, QueueStats};
use crate::inbox::{AppendOutcome, DEFAULT_MAX_BODY_BYTES, check_delivery};

/// The schema, in order; each runs once per database (`auger_migrations`).
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../../migrations/0001_queue.sql")),
    (2, include_str!("../../migrations/0002_documents.sql")),
];
/// Serializes migrations of replicas that start together (an arbitrary, fixed key).
const MIGRATION_LOCK: i64 = 0x6175_6765_725f_6d67; // "auger_mg"
/// The channel inserts notify and workers listen on.
const CHANNEL: &str = "auger_queue";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Tuning of the PostgreSQL queue.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// How long a claim holds an entry without a renewal; renewed every third of it.
    pub lease: Duration,
    /// How often an idle worker looks for work without a notification (expired leases).
    pub poll: Duration,
    /// How long a done row is kept as the record that refuses a redelivery of its id.
    pub keep: Duration,
    /// PEM certificates trusted for the server's TLS certificate beside the system's roots.
    pub ca_file: Option<std::path::PathBuf>,
}

/// The default of [`PgOptions::keep`]: GitHub redelivers for 3 days; a week leaves margin.
pub const DEFAULT_KEEP: Duration = Duration::from_secs(7 * 24 * 3600);
/// How often a replica deletes the done rows past [`PgOptions::keep`].
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            lease: Duration::from_secs(30),
            poll: Duration::from_secs(1),
            keep: DEFAULT_KEEP,
            ca_file: None,
        }
    }
}

/// The PostgreSQL queue; cheap to clone.
#[derive(Clone)]
pub struct PgQueue {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    /// This replica's name in `claimed_by`.
    claimer: String,
    opts: PgOptions,
    /// Poked by a notification: there may be work.
    wake: Arc<Notify>,
    closed: AtomicBool,
    on_close: Notify,
    appended: AtomicU64,
    claims: AtomicU64,
    lease_expiries: AtomicU64,
    listener: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(l) = self.listener.lock().unwrap_or_else(|p| p.into_inner()).take() {
            l.abort();
        }
    }
}

fn pg(e: tokio_postgres::Error) -> QueueError {
    QueueError::Postgres(describe(&e))
}

/// The error with PostgreSQL's own message (tokio-postgres' `Display` alone says "db error").
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

/// The stream of a connection, TLS or not as the URL's `sslmode` says.
type Stream = <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream;
type Connection = tokio_postgres::Connection<Socket, Stream>;

/// How to open a connection: the parsed URL and the TLS setup. The URL's `sslmode` decides as
/// libpq's does (`disable`, `prefer` by default, `require`), except that a certificate is
/// always verified: against the system's roots and `ca_file`, for the URL's host.
#[derive(Clone)]
struct Connector {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
}

impl Connector {
    fn new(url: &str, ca_file: Option<&std::path::Path>) -> Result<Connector, QueueError> {
        let mut config = tokio_postgres::Config::from_str(url)
            // The parser's message can quote the URL, which holds the password.
            .map_err(|_| QueueError::Postgres("the URL is not a valid PostgreSQL connection URL".into()))?;
        config.connect_timeout(CONNECT_TIMEOUT);
        // A peer that vanished without closing (a node lost) is noticed in seconds, not hours.
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(10));
        if config.get_application_name().is_none() {
            config.application_name("auger");
        }
        Ok(Connector {
            config,
            tls: MakeRustlsConnect::new(tls_config(ca_file)?),
        })
    }

    async fn connect(&self) -> Result<(Client, Connection), QueueError> {
        match tokio::time::timeout(CONNECT_TIMEOUT, self.config.connect(self.tls.clone())).await {
            Ok(Ok(pair)) => Ok(pair),
            Ok(Err(e)) => Err(pg(e)),
            Err(_) => Err(QueueError::Postgres(format!(
                "no connection within {}s",
                CONNECT_TIMEOUT.as_secs()
            ))),
        }
    }
}

/// The TLS client: the system's roots and the certificates of `ca_file`, on the ring provider.
fn tls_config(ca_file: Option<&std::path::Path>) -> Result<rustls::ClientConfig, QueueError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable system certificates only narrow what is trusted; `ca_file` may be all a
    // private database needs.
    let system = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(system.certs);
    if let Some(path) = ca_file {
        let bad = |m: String| QueueError::Invalid(format!("server.queue_ca_file {}: {m}", path.display()));
        let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| bad(format!("not PEM certificates: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| bad(format!("a certificate is not usable as a root: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(bad("holds no PEM certificate".into()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| QueueError::Postgres(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A client that reconnects on first use after its connection dropped. Connections run as
/// tasks on the runtime that opened the queue, so a caller's runtime may end without taking
/// them along.
struct Db {
    connector: Connector,
    runtime: tokio::runtime::Handle,
    client: Mutex<Option<Arc<Client>>>,
}

impl Db {
    fn new(url: &str, ca_file: Option<&std::path::Path>) -> Result<Db, QueueError> {
        Ok(Db {
            connector: Connector::new(url, ca_file)?,
            runtime: tokio::runtime::Handle::current(),
            client: Mutex::new(None),
        })
    }

    async fn client(&self) -> Result<Arc<Client>, QueueError> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let (client, connection) = self.connector.connect().await?;
        self.runtime.spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %describe(&e), "PostgreSQL connection lost; reconnecting on next use");
            }
        });
        let client = Arc::new(client);
        *slot = Some(client.clone());
        Ok(client)
    }
}

impl PgQueue {
    /// Connects, applies the migrations not yet applied (replicas starting together take turns)
    /// and starts listening for inserts. `claimer` names this replica in `claimed_by`.
    pub async fn open(url: &str, claimer: &str, opts: PgOptions) -> Result<PgQueue, QueueError> {
        let db = Db::new(url, opts.ca_file.as_deref())?;
        migrate(&db).await?;
        let poll = opts.poll;
        let inner = Arc::new(Inner {
            db,
            claimer: claimer.to_owned(),
            opts,
            wake: Arc::new(Notify::new()),
            closed: AtomicBool::new(false),
            on_close: Notify::new(),
            appended: AtomicU64::new(0),
            claims: AtomicU64::new(0),
            lease_expiries: AtomicU64::new(0),
            listener: std::sync::Mutex::new(None),
        });
        let listener = inner
            .db
            .runtime
            .spawn(listen(inner.db.connector.clone(), inner.wake.clone(), poll));
        *inner.listener.lock().unwrap_or_else(|p| p.into_inner()) = Some(listener);
        Ok(PgQueue { inner })
    }

    /// A name for this replica: host, process id and a random suffix (a restarted process may
    /// get the same pid).
    pub fn replica_name() -> String {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default();
        format!("{host}:{}:{:08x}", std::process::id(), fastrand::u32(..))
    }

    fn check_open(&self) -> Result<(), QueueError> {
        if self.inner.closed.load(Ordering::Acquire) {
            Err(QueueError::Closed)
        } else {
            Ok(())
        }
    }

    /// Inserts the delivery; the row is committed when this returns `Appended`.
    pub async fn append(
        &self,
        delivery_id: &str,
        event: &str,
        body: Vec<u8>,
    ) -> Result<AppendOutcome, QueueError> {
        self.check_open()?;
        // The journal's limits, its default body size included.
        check_delivery(delivery_id, event, body.len(), DEFAULT_MAX_BODY_BYTES)?;
        let client = self.inner.db.client().await?;
        // One statement, so one implicit transaction: the notification goes out at its commit.
        let rows = client
            .query(
                "WITH ins AS (
                    INSERT INTO auger_queue (delivery_id, event, body) VALUES ($1, $2, $3)
                    ON CONFLICT (delivery_id) DO NOTHING RETURNING seq)
                 SELECT seq, pg_notify($4, '') FROM ins",
                &[&delivery_id, &event, &body, &CHANNEL],
            )
            .await
            .map_err(pg)?;
        match rows.first() {
            Some(row) => {
                self.inner.appended.fetch_add(1, Ordering::Relaxed);
                Ok(AppendOutcome::Appended(seq_of(row.get::<_, i64>(0))))
            }
            None => Ok(AppendOutcome::Duplicate),
        }
    }

    /// Claims up to `max` entries nobody holds (never claimed, or whose lease ran out), oldest
    /// first, without waiting. Other replicas' claims in flight are skipped, not waited for.
    pub async fn try_take(&self, max: usize) -> Result<Vec<Entry>, QueueError> {
        self.check_open()?;
        let client = self.inner.db.client().await?;
        let max = i64::try_from(max.max(1)).unwrap_or(i64::MAX);
        let rows = client
            .query(
                "WITH picked AS (
                    SELECT seq, lease_until IS NOT NULL AS expired FROM auger_queue
                    WHERE done_at IS NULL AND (lease_until IS NULL OR lease_until < clock_timestamp())
                    ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED)
                 UPDATE auger_queue q
                    SET claimed_by = $2,
                        lease_until = clock_timestamp() + make_interval(secs => $3::float8),
                        claims = q.claims + 1
                   FROM picked WHERE q.seq = picked.seq
                 RETURNING q.seq, q.delivery_id, q.event, q.body, q.claims, picked.expired",
                &[&max, &self.inner.claimer, &self.inner.opts.lease.as_secs_f64()],
            )
            .await
            .map_err(pg)?;
        let mut entries: Vec<Entry> = rows
            .iter()
            .map(|row| {
                if row.get::<_, bool>(5) {
                    self.inner.lease_expiries.fetch_add(1, Ordering::Relaxed);
                }
                Entry {
                    seq: seq_of(row.get(0)),
                    delivery_id: row.get(1),
                    event: row.get(2),
                    body: row.get(3),
                    replayed: row.get::<_, i32>(4) > 1,
                }
            })
            .collect();
        self.inner
            .claims
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        entries.sort_by_key(|e| e.seq);
        Ok(entries)
    }

    /// Claims up to `max` entries, waiting for at least one; empty once the queue closed. A
    /// database that does not answer is waited out (logged), not an end of the worker.
    pub async fn take(&self, max: usize) -> Result<Vec<Entry>, QueueError> {
        let mut failing = false;
        loop {
            match self.try_take(max).await {
                Ok(entries) if !entries.is_empty() => return Ok(entries),
                Ok(_) => failing = false,
                Err(QueueError::Closed) => return Ok(Vec::new()),
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "cannot claim work from PostgreSQL; trying again");
                    }
                    failing = true;
                }
            }
            let closed = self.inner.on_close.notified();
            if self.inner.closed.load(Ordering::Acquire) {
                return Ok(Vec::new());
            }
            tokio::select! {
                () = closed => return Ok(Vec::new()),
                () = self.inner.wake.notified() => {}
                () = tokio::time::sleep(self.inner.opts.poll) => {}
            }
        }
    }

    /// Renews the lease of `seqs` every third of the lease until the guard is dropped.
    pub fn keep_claimed(&self, seqs: &[u64]) -> Renewal {
        let queue = self.clone();
        let seqs: Vec<i64> = seqs.iter().filter_map(|&s| i64::try_from(s).ok()).collect();
        let every = self.inner.opts.lease / 3;
        Renewal(self.inner.db.runtime.spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match queue.renew(&seqs).await {
                    Ok(kept) if kept < seqs.len() => tracing::warn!(
                        lost = seqs.len() - kept,
                        "the lease on entries in hand ran out and another replica may have claimed them"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot renew the lease on the entries in hand"),
                }
            }
        }))
    }

    /// Extends the lease of those of `seqs` this replica still holds; how many those were.
    pub async fn renew(&self, seqs: &[i64]) -> Result<usize, QueueError> {
        let client = self.inner.db.client().await?;
        let n = client
            .execute(
                "UPDATE auger_queue
                    SET lease_until = clock_timestamp() + make_interval(secs => $3::float8)
                  WHERE seq = ANY($1) AND claimed_by = $2 AND done_at IS NULL",
                &[&seqs, &self.inner.claimer, &self.inner.opts.lease.as_secs_f64()],
            )
            .await
            .map_err(pg)?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// Ends this replica's lease on `seqs` now: any replica may claim them again.
    pub async fn give_back(&self, seqs: &[u64]) -> Result<(), QueueError> {
        let seqs: Vec<i64> = seqs.iter().filter_map(|&s| i64::try_from(s).ok()).collect();
        let client = self.inner.db.client().await?;
        client
            .execute(
                "UPDATE auger_queue SET lease_until = clock_timestamp()
                  WHERE seq = ANY($1) AND claimed_by = $2 AND done_at IS NULL",
                &[&seqs, &self.inner.claimer],
            )
            .await
            .map_err(pg)?;
        Ok(())
    }

    /// Marks entries done, whoever holds them now: their effects are durable, so a replica
    /// that claimed one after a lease ran out finds its work done. The body is dropped; the
    /// row stays as the record that keeps a redelivery out.
    pub async fn mark_done_many(&self, seqs: &[u64]) -> Result<(), QueueError> {
        let seqs: Vec<i64> = seqs.iter().filter_map(|&s| i64::try_from(s).ok()).collect();
        let client = self.inner.db.client().await?;
        client
            .execute(
                "UPDATE auger_queue SET done_at = now(), lease_until = NULL, body = ''::bytea
                  WHERE seq = ANY($1) AND done_at IS NULL",
                &[&seqs],
            )
            .await
            .map_err(pg)?;
        Ok(())
    }

    /// Deletes the rows done longer ago than `keep`; how many. Rows not done stay, however
    /// old: they are work not yet finished.
    pub async fn prune(&self, keep: Duration) -> Result<u64, QueueError> {
        let client = self.inner.db.client().await?;
        client
            .execute(
                "DELETE FROM auger_queue WHERE done_at < now() - make_interval(secs => $1::float8)",
                &[&keep.as_secs_f64()],
            )
            .await
            .map_err(pg)
    }

    /// Prunes now and then every hour until the queue closes; a failure is logged and tried
    /// again at the next hour. Every replica runs it: a second delete finds nothing.
    pub async fn keep_pruned(self) {
        loop {
            match self.prune(self.inner.opts.keep).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "pruned done deliveries from the PostgreSQL queue"),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot prune done deliveries from the PostgreSQL queue")
                }
            }
            let closed = self.inner.on_close.notified();
            if self.inner.closed.load(Ordering::Acquire) {
                return;
            }
            tokio::select! {
                () = closed => return,
                () = tokio::time::sleep(PRUNE_EVERY) => {}
            }
        }
    }

    /// Which of `ids` were accepted before.
    pub async fn known(&self, ids: &[String]) -> Result<Vec<bool>, QueueError> {
        self.check_open()?;
        let client = self.inner.db.client().await?;
        let rows = client
            .query(
                "SELECT delivery_id FROM auger_queue WHERE delivery_id = ANY($1)",
                &[&ids],
            )
            .await
            .map_err(pg)?;
        let found: std::collections::HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
        Ok(ids.iter().map(|id| found.contains(id)).collect())
    }

    /// Entries accepted and not yet done, across all replicas.
    pub async fn depth(&self) -> Result<u64, QueueError> {
        let client = self.inner.db.client().await?;
        let row = client
            .query_one("SELECT count(*) FROM auger_queue WHERE done_at IS NULL", &[])
            .await
            .map_err(pg)?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }

    pub fn appended(&self) -> u64 {
        self.inner.appended.load(Ordering::Relaxed)
    }

    pub async fn stats(&self) -> QueueStats {
        QueueStats {
            // An unreachable database shows as depth 0; `/healthz` says why.
            depth: self.depth().await.unwrap_or(0),
            appended: self.appended(),
            fsyncs: 0,
            claims: self.inner.claims.load(Ordering::Relaxed),
            lease_expiries: self.inner.lease_expiries.load(Ordering::Relaxed),
        }
    }

    /// Whether the database answers within `within`.
    pub async fn ping(&self, within: Duration) -> Result<(), String> {
        let ask = async {
            let client = self.inner.db.client().await?;
            client.simple_query("SELECT 1").await.map_err(pg)?;
            Ok::<(), QueueError>(())
        };
        match tokio::time::timeout(within, ask).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {}s", within.as_secs())),
        }
    }

    /// Stops handing out and accepting work. Leases held stay until they run out.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.on_close.notify_waiters();
        if let Some(l) = self
            .inner
            .listener
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            l.abort();
        }
    }

    /// A lock shared by every replica on this database, named by `name`.
    pub fn lock(&self, name: &str) -> ReplicaLock {
        ReplicaLock::new(
            self.inner.db.connector.clone(),
            self.inner.db.runtime.clone(),
            name,
        )
    }

    /// The shared document `name` (a row of `auger_documents`), written as this replica.
    pub fn document(&self, name: &str) -> PgDocument {
        PgDocument {
            queue: self.clone(),
            name: name.to_owned(),
        }
    }
}

/// One JSON document every replica reads and writes whole, with optimistic concurrency: a
/// write names the version it read and is refused when another replica wrote since.
#[derive(Clone)]
pub struct PgDocument {
    queue: PgQueue,
    name: String,
}

/// What a write of a [`PgDocument`] came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    /// Stored as this version.
    At(i64),
    /// Another replica wrote since the version named; nothing was written.
    Stale,
}

impl PgDocument {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The document's version and JSON text; `None` before its first write.
    pub async fn read(&self) -> Result<Option<(i64, String)>, QueueError> {
        let client = self.queue.inner.db.client().await?;
        let row = client
            .query_opt(
                "SELECT version, body::text FROM auger_documents WHERE name = $1",
                &[&self.name],
            )
            .await
            .map_err(pg)?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    /// Writes `json` over version `read` (0: the document did not exist yet).
    pub async fn write(&self, read: i64, json: &str) -> Result<Written, QueueError> {
        let client = self.queue.inner.db.client().await?;
        let by = &self.queue.inner.claimer;
        let row = if read == 0 {
            client
                .query_opt(
                    "INSERT INTO auger_documents (name, version, body, updated_by)
                     VALUES ($1, 1, $2::text::jsonb, $3)
                     ON CONFLICT (name) DO NOTHING RETURNING version",
                    &[&self.name, &json, by],
                )
                .await
        } else {
            client
                .query_opt(
                    "UPDATE auger_documents
                        SET version = version + 1, body = $3::text::jsonb, updated_at = now(), updated_by = $4
                      WHERE name = $1 AND version = $2 RETURNING version",
                    &[&self.name, &read, &json, by],
                )
                .await
        }
        .map_err(pg)?;
        Ok(match row {
            Some(r) => Written::At(r.get(0)),
            None => Written::Stale,
        })
    }
}

fn seq_of(seq: i64) -> u64 {
    // BIGSERIAL starts at 1 and only grows.
    u64::try_from(seq).unwrap_or(0)
}

/// Renews leases while it lives (see [`PgQueue::keep_claimed`]).
pub struct Renewal(tokio::task::JoinHandle<()>);

impl Drop for Renewal {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Applies the migrations not yet recorded in `auger_migrations`, in one transaction under a
/// transaction advisory lock: replicas starting together apply each once, and a failure
/// leaves the schema as it was.
async fn migrate(db: &Db) -> Result<(), QueueError> {
    let (mut client, connection) = db.connector.connect().await?;
    let driver = db.runtime.spawn(connection);
    let result = async {
        let tx = client.transaction().await.map_err(pg)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(pg)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS auger_migrations (
                version INTEGER PRIMARY KEY,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await
        .map_err(pg)?;
        for (version, sql) in MIGRATIONS {
            let applied = tx
                .query_opt("SELECT 1 FROM auger_migrations WHERE version = $1", &[version])
                .await
                .map_err(pg)?
                .is_some();
            if applied {
                continue;
            }
            tx.batch_execute(sql)
                .await
                .map_err(|e| QueueError::Postgres(format!("migration {version}: {}", describe(&e))))?;
            tx.execute("INSERT INTO auger_migrations (version) VALUES ($1)", &[version])
                .await
                .map_err(pg)?;
            tracing::info!(version, "applied a PostgreSQL migration");
        }
        tx.commit().await.map_err(pg)
    }
    .await;
    drop(client);
    let _ = driver.await;
    result
}

/// Drives a connection that `LISTEN`s on [`CHANNEL`] and pokes `wake` on every notification;
/// reconnects after a failure (workers poll meanwhile).
async fn listen(connector: Connector, wake: Arc<Notify>, retry: Duration) {
    loop {
        match connector.connect().await {
            Ok((client, mut connection)) => {
                let (ended, mut on_end) = oneshot::channel::<()>();
                let wake = wake.clone();
                let driver = tokio::spawn(async move {
                    while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                        match message {
                            Ok(AsyncMessage::Notification(_)) => wake.notify_one(),
                            Ok(_) => {}
                            Err(e) => {
                                tracing::debug!(error = %describe(&e), "queue listener connection ended");
                                break;
                            }
                        }
                    }
                    let _ = ended.send(());
                });
                if let Err(e) = client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
                    tracing::debug!(error = %describe(&e), "cannot LISTEN for queue inserts");
                    driver.abort();
                } else {
                    let _ = (&mut on_end).await;
                }
            }
            Err(e) => tracing::debug!(error = %e, "queue listener cannot connect"),
        }
        tokio::time::sleep(retry).await;
    }
}

/// A session advisory lock every replica on the database contends for (a gitops repository's
/// release loop, the ledger's writes). It lives on a connection of its own, driven by one task
/// that takes and gives back the lock in the order asked; a replica that dies holding it drops
/// the connection, which releases the lock. It excludes other replicas, not this process's own
/// tasks (session locks nest): those keep their own mutexes.
#[derive(Clone)]
pub struct ReplicaLock {
    name: Arc<str>,
    commands: mpsc::UnboundedSender<Command>,
}

enum Command {
    Lock(oneshot::Sender<Result<(), QueueError>>),
    Unlock,
}

impl ReplicaLock {
    fn new(connector: Connector, runtime: tokio::runtime::Handle, name: &str) -> ReplicaLock {
        let (commands, received) = mpsc::unbounded_channel();
        runtime.spawn(hold_locks(connector, lock_key(name), name.to_owned(), received));
        ReplicaLock {
            name: name.into(),
            commands,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits for the lock; held until the guard is dropped.
    pub async fn acquire(&self) -> Result<ReplicaLockGuard, QueueError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Lock(reply))
            .map_err(|_| QueueError::Closed)?;
        answer.await.map_err(|_| QueueError::Closed)??;
        Ok(ReplicaLockGuard {
            commands: self.commands.clone(),
        })
    }
}

/// Gives the lock back when dropped.
pub struct ReplicaLockGuard {
    commands: mpsc::UnboundedSender<Command>,
}

impl Drop for ReplicaLockGuard {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Unlock);
    }
}

/// A stable 64-bit advisory lock key for a name (PostgreSQL's key space is one `bigint`).
fn lock_key(name: &str) -> i64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("auger:{name}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// The lock's task: one connection, locks taken and given back in the order asked. Session
/// advisory locks count: a lock taken while an unlock is still queued nests, and the unlocks
/// balance it.
async fn hold_locks(
    connector: Connector,
    key: i64,
    name: String,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut client: Option<Client> = None;
    // Locks this connection holds (session advisory locks count per session).
    let mut held = 0u32;
    while let Some(command) = commands.recv().await {
        match command {
            Command::Lock(reply) => {
                if client.as_ref().is_none_or(Client::is_closed) {
                    if held > 0 {
                        tracing::warn!(lock = %name, "the connection holding a replica lock dropped; the lock was released with it");
                    }
                    held = 0;
                    client = match connector.connect().await {
                        Ok((c, connection)) => {
                            tokio::spawn(async move {
                                if let Err(e) = connection.await {
                                    tracing::warn!(error = %describe(&e), "replica lock connection lost");
                                }
                            });
                            Some(c)
                        }
                        Err(e) => {
                            let _ = reply.send(Err(e));
                            continue;
                        }
                    };
                }
                let Some(c) = client.as_ref() else { continue };
                match c.execute("SELECT pg_advisory_lock($1)", &[&key]).await {
                    Ok(_) => {
                        held += 1;
                        if reply.send(Ok(())).is_err() {
                            // The caller stopped waiting (a stop request): give it back.
                            if c.execute("SELECT pg_advisory_unlock($1)", &[&key]).await.is_ok() {
                                held -= 1;
                            }
                        }
                    }
                    Err(e) => {
                        let _ = reply.send(Err(pg(e)));
                    }
                }
            }
            Command::Unlock => {
                let Some(c) = client.as_ref().filter(|_| held > 0) else {
                    continue;
                };
                match c.execute("SELECT pg_advisory_unlock($1)", &[&key]).await {
                    Ok(_) => held -= 1,
                    // The session is gone, and the lock with it.
                    Err(e) => {
                        tracing::warn!(lock = %name, error = %describe(&e), "cannot give back a replica lock");
                        held = 0;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable_and_differ_by_name() {
        assert_eq!(lock_key("ledger"), lock_key("ledger"));
        assert_ne!(lock_key("ledger"), lock_key("release:org/gitops"));
    }
}
