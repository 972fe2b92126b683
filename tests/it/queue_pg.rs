//! The PostgreSQL queue (design §18) on a real PostgreSQL: dedupe by delivery id, claims that
//! skip each other, leases that run out and are claimed again, renewals, done entries that
//! never come back, migrations that replicas apply once, and the replicas' lock.

use std::time::{Duration, Instant};

use auger::inbox::AppendOutcome;
use auger::queue::{PgOptions, PgQueue, QueueError};

use crate::support::postgres::{
    database_name, fresh_database, query_strings, server_ca, server_url, with_query,
};

fn opts(lease_ms: u64) -> PgOptions {
    PgOptions {
        lease: Duration::from_millis(lease_ms),
        poll: Duration::from_millis(50),
        ..PgOptions::default()
    }
}

async fn replica(url: &str, name: &str, lease_ms: u64) -> PgQueue {
    PgQueue::open(url, name, opts(lease_ms)).await.unwrap()
}

#[tokio::test]
async fn a_delivery_id_is_accepted_once_even_after_it_is_done() {
    let url = fresh_database().await;
    let a = replica(&url, "a", 30_000).await;
    let b = replica(&url, "b", 30_000).await;
    let first = a.append("d-1", "status", b"one".to_vec()).await.unwrap();
    assert!(matches!(first, AppendOutcome::Appended(_)), "{first:?}");
    // Another replica, another body: still the same delivery.
    assert_eq!(
        b.append("d-1", "status", b"two".to_vec()).await.unwrap(),
        AppendOutcome::Duplicate
    );
    assert_eq!(
        a.known(&["d-1".into(), "d-2".into()]).await.unwrap(),
        vec![true, false]
    );
    let taken = b.try_take(10).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].body, b"one", "the bytes appended, as appended");
    assert_eq!(taken[0].event, "status");
    assert!(!taken[0].replayed);
    b.mark_done_many(&[taken[0].seq]).await.unwrap();
    assert_eq!(
        a.append("d-1", "status", b"one".to_vec()).await.unwrap(),
        AppendOutcome::Duplicate,
        "a redelivery after the work is done"
    );
    assert_eq!(a.depth().await.unwrap(), 0);
    assert!(
        a.try_take(10).await.unwrap().is_empty(),
        "done entries never come back"
    );
}

#[tokio::test]
async fn bad_input_is_refused_before_anything_is_stored() {
    let url = fresh_database().await;
    let q = replica(&url, "a", 30_000).await;
    for (id, event) in [
        ("", "status"),
        (&"x".repeat(256)[..], "status"),
        ("d", &"e".repeat(256)[..]),
    ] {
        let refused = q.append(id, event, Vec::new()).await;
        assert!(
            matches!(refused, Err(QueueError::Invalid(_))),
            "{id:.10} {event:.10}: {refused:?}"
        );
    }
    assert_eq!(q.depth().await.unwrap(), 0);
}

#[tokio::test]
async fn replicas_claim_disjoint_entries_oldest_first_and_done_ones_never_return() {
    let url = fresh_database().await;
    let a = replica(&url, "a", 30_000).await;
    let b = replica(&url, "b", 30_000).await;
    for i in 0..6 {
        a.append(&format!("d-{i}"), "status", vec![i]).await.unwrap();
    }
    let by_a = a.try_take(4).await.unwrap();
    let by_b = b.try_take(4).await.unwrap();
    let ids = |v: &[auger::queue::Entry]| v.iter().map(|e| e.delivery_id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&by_a), ["d-0", "d-1", "d-2", "d-3"]);
    assert_eq!(ids(&by_b), ["d-4", "d-5"], "b skips what a holds");
    assert!(a.try_take(4).await.unwrap().is_empty(), "everything is held");
    a.mark_done_many(&by_a.iter().map(|e| e.seq).collect::<Vec<_>>())
        .await
        .unwrap();
    b.mark_done_many(&by_b.iter().map(|e| e.seq).collect::<Vec<_>>())
        .await
        .unwrap();
    assert_eq!(a.depth().await.unwrap(), 0);
    assert_eq!(a.stats().await.claims, 4);
    assert_eq!(b.stats().await.claims, 2);
    let bodies = query_strings(&url, "SELECT count(*) FROM auger_queue WHERE length(body) > 0").await;
    assert_eq!(bodies, ["0"], "a done entry keeps its id, not its body");
}

#[tokio::test]
async fn a_lease_that_runs_out_is_claimed_by_another_replica_as_a_replay() {
    let url = fresh_database().await;
    let a = replica(&url, "a", 600).await;
    let b = replica(&url, "b", 600).await;
    a.append("d-1", "status", b"w".to_vec()).await.unwrap();
    let held = a.try_take(1).await.unwrap();
    assert_eq!(held.len(), 1);
    // a "dies": it never renews nor marks done.
    assert!(b.try_take(1).await.unwrap().is_empty(), "the lease still holds");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let retaken = b.try_take(1).await.unwrap();
    assert_eq!(retaken.len(), 1, "the lease ran out");
    assert_eq!(retaken[0].seq, held[0].seq);
    assert!(retaken[0].replayed, "claimed before: handlers see a replay");
    assert_eq!(b.stats().await.lease_expiries, 1);
    assert_eq!(a.stats().await.lease_expiries, 0);
    let claimed_by = query_strings(&url, "SELECT claimed_by FROM auger_queue").await;
    assert_eq!(claimed_by, ["b"]);
    b.mark_done_many(&[retaken[0].seq]).await.unwrap();
    // a comes back and finishes late: nothing changes, nothing returns.
    a.mark_done_many(&[held[0].seq]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(a.try_take(1).await.unwrap().is_empty());
    assert!(b.try_take(1).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_renewed_lease_holds_and_a_lost_one_is_reported() {
    let url = fresh_database().await;
    let a = replica(&url, "a", 600).await;
    let b = replica(&url, "b", 600).await;
    a.append("d-1", "status", b"w".to_vec()).await.unwrap();
    let held = a.try_take(1).await.unwrap();
    let renewing = a.keep_claimed(&[held[0].seq]);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(b.try_take(1).await.unwrap().is_empty(), "renewed past two leases");
    drop(renewing);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let retaken = b.try_take(1).await.unwrap();
    assert_eq!(retaken.len(), 1, "not renewed any more");
    let seq = [i64::try_from(held[0].seq).unwrap()];
    assert_eq!(a.renew(&seq).await.unwrap(), 0, "a no longer holds it");
    assert_eq!(b.renew(&seq).await.unwrap(), 1);
}

#[tokio::test]
async fn entries_given_back_at_a_stop_are_claimed_again_at_once() {
    let url = fresh_database().await;
    let a = replica(&url, "a", 30_000).await;
    let b = replica(&url, "b", 30_000).await;
    a.append("d-1", "status", b"w".to_vec()).await.unwrap();
    a.append("d-2", "status", b"w".to_vec()).await.unwrap();
    let held = a.try_take(2).await.unwrap();
    // b cannot give back what a holds.
    b.give_back(&[held[0].seq, held[1].seq]).await.unwrap();
    assert!(b.try_take(2).await.unwrap().is_empty());
    a.give_back(&[held[1].seq]).await.unwrap();
    let retaken = b.try_take(2).await.unwrap();
    assert_eq!(
        retaken.len(),
        1,
        "only the entry given back, long before its 30 s lease ends"
    );
    assert_eq!(retaken[0].seq, held[1].seq);
    assert!(retaken[0].replayed);
}

#[tokio::test]
async fn a_waiting_take_wakes_on_an_insert_by_another_replica() {
    let url = fresh_database().await;
    // Polling every 10 s: only the notification can wake it in time.
    let waiting = PgQueue::open(
        &url,
        "a",
        PgOptions {
            lease: Duration::from_secs(30),
            poll: Duration::from_secs(10),
            ..PgOptions::default()
        },
    )
    .await
    .unwrap();
    let appender = replica(&url, "b", 30_000).await;
    let taker = tokio::spawn(async move {
        let started = Instant::now();
        let entries = waiting.take(4).await.unwrap();
        (entries, started.elapsed())
    });
    // Let the take find nothing and wait, and the listener subscribe.
    tokio::time::sleep(Duration::from_millis(500)).await;
    appender.append("d-1", "status", b"w".to_vec()).await.unwrap();
    let (entries, waited) = tokio::time::timeout(Duration::from_secs(5), taker)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entries.len(), 1);
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}

#[tokio::test]
async fn a_closed_queue_ends_a_waiting_take_and_refuses_appends() {
    let url = fresh_database().await;
    let q = replica(&url, "a", 30_000).await;
    let waiting = q.clone();
    let taker = tokio::spawn(async move { waiting.take(4).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    q.close();
    let taken = tokio::time::timeout(Duration::from_secs(2), taker)
        .await
        .unwrap()
        .unwrap();
    assert!(taken.unwrap().is_empty());
    assert!(matches!(
        q.append("d", "status", Vec::new()).await,
        Err(QueueError::Closed)
    ));
}

#[tokio::test]
async fn replicas_starting_together_migrate_once() {
    let url = fresh_database().await;
    let opened = futures_util::future::join_all((0..4).map(|i| {
        let url = url.clone();
        async move { PgQueue::open(&url, &format!("r{i}"), opts(30_000)).await }
    }))
    .await;
    for q in &opened {
        assert!(q.is_ok(), "{:?}", q.as_ref().err());
    }
    // One row per file of migrations/, each applied once.
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .count();
    let every_once = (1..=files).map(|v| v.to_string()).collect::<Vec<_>>().join(",");
    let applied = "SELECT string_agg(version::text, ',' ORDER BY version) FROM auger_migrations";
    assert_eq!(
        query_strings(&url, applied).await,
        std::slice::from_ref(&every_once)
    );
    // And again on a migrated database.
    PgQueue::open(&url, "late", opts(30_000)).await.unwrap();
    assert_eq!(query_strings(&url, applied).await, [every_once]);
}

#[tokio::test]
async fn an_unreachable_database_is_an_error_that_does_not_show_the_password() {
    let refused = PgQueue::open("postgres://auger:hunter2@127.0.0.1:1/auger", "a", opts(30_000)).await;
    let Err(e) = refused else {
        panic!("opened a queue on a closed port")
    };
    assert!(matches!(e, QueueError::Postgres(_)), "{e:?}");
    assert!(!e.to_string().contains("hunter2"), "{e}");
    let refused = PgQueue::open("postgres://auger:hunter2@[bad", "a", opts(30_000)).await;
    let Err(e) = refused else {
        panic!("parsed a broken URL")
    };
    assert!(!e.to_string().contains("hunter2"), "{e}");
}

#[tokio::test]
async fn the_replicas_lock_is_held_by_one_and_released_when_its_holder_dies() {
    let url = fresh_database().await;
    let b = replica(&url, "b", 30_000).await;
    let b_lock = b.lock("release:acme/gitops");
    // Replica a lives on a runtime of its own, so it can die with its connections.
    let a_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let a_url = url.clone();
    let a_guard = a_runtime
        .spawn(async move {
            let a = PgQueue::open(&a_url, "a", opts(30_000)).await.unwrap();
            let lock = a.lock("release:acme/gitops");
            let guard = lock.acquire().await.unwrap();
            (a, lock, guard)
        })
        .await
        .unwrap();
    // Another name is another lock.
    let other = b.lock("ledger").acquire().await.unwrap();
    drop(other);
    let waiting = tokio::time::timeout(Duration::from_millis(500), b_lock.acquire()).await;
    assert!(waiting.is_err(), "b got the lock a holds");
    // a gives it back: b gets it; b gives it back, a takes it again.
    drop(a_guard.2);
    let b_guard = tokio::time::timeout(Duration::from_secs(5), b_lock.acquire())
        .await
        .expect("b waits for a lock a gave back")
        .unwrap();
    drop(b_guard);
    let a_lock = a_guard.1.clone();
    let a_again = a_runtime
        .spawn(async move { a_lock.acquire().await.unwrap() })
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(500), b_lock.acquire())
            .await
            .is_err()
    );
    // a dies holding it: its runtime and connections go, and PostgreSQL lets go of the lock.
    std::mem::forget(a_again);
    drop(a_guard.0);
    drop(a_guard.1);
    a_runtime.shutdown_background();
    let b_guard = tokio::time::timeout(Duration::from_secs(10), b_lock.acquire())
        .await
        .expect("the lock of a replica that died is released")
        .unwrap();
    drop(b_guard);
}

#[tokio::test]
async fn a_ping_says_when_the_database_is_gone() {
    let url = fresh_database().await;
    let q = replica(&url, "a", 30_000).await;
    assert_eq!(q.ping(Duration::from_secs(2)).await, Ok(()));
    let name = database_name(&url);
    query_strings(&server_url(), &format!("DROP DATABASE {name} WITH (FORCE)")).await;
    let gone = q.ping(Duration::from_secs(2)).await;
    assert!(gone.is_err(), "{gone:?}");
}

fn desire(env: &str, sha: char) -> auger::release::Desired {
    use auger::artifact::ArtifactId;
    use auger::domain::{AppName, CommitSha, EnvName};
    let app = AppName::new("web").unwrap();
    let plan = auger::release::Plan {
        env: EnvName::new(env).unwrap(),
        artifact: ArtifactId::for_artifact(&app, &CommitSha::new(sha.to_string().repeat(40)).unwrap()),
        app,
        trigger: auger::gitops::Trigger::Policy,
        reason: "branch main".into(),
        reply: None,
        overrides: Vec::new(),
    };
    auger::release::Desired::new(plan, auger::release::Want::Auto, chrono::Utc::now())
}

fn desired_list(d: &auger::release::DesiredReleases) -> Vec<String> {
    d.list()
        .iter()
        .map(|d| format!("{}:{}", d.plan.env, d.plan.artifact))
        .collect()
}

/// The desired releases as replicas "a" and "b" on the database `url` share them (and the
/// folder of their files).
async fn two_replicas_wanting(
    url: &str,
) -> (
    auger::release::DesiredReleases,
    auger::release::DesiredReleases,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let mut shared = Vec::new();
    for name in ["a", "b"] {
        let q = replica(url, name, 30_000).await;
        let file = dir.path().join(format!("{name}.json"));
        shared.push(
            auger::release::DesiredReleases::open_shared(q.document("desired-releases"), &file)
                .await
                .unwrap(),
        );
    }
    let b = shared.pop().unwrap();
    let a = shared.pop().unwrap();
    (a, b, dir)
}

#[tokio::test]
async fn a_release_one_replica_wants_is_wanted_by_the_next_one_to_take_its_turn() {
    let url = fresh_database().await;
    let (at_a, at_b, _dir) = two_replicas_wanting(&url).await;
    at_a.want(desire("production", 'a')).await.unwrap();
    assert!(desired_list(&at_b).is_empty(), "b has not taken its turn yet");
    at_b.refresh().await.unwrap();
    assert_eq!(desired_list(&at_b), ["production:web@aaaaaaaaaaaa"]);
    // The row is plain JSON an operator can read.
    let rows = query_strings(
        &url,
        "SELECT body->'desired'->0->'plan'->>'env' || ' by ' || updated_by FROM auger_documents WHERE name = 'desired-releases'",
    )
    .await;
    assert_eq!(rows, ["production by a"]);
}

#[tokio::test]
async fn a_change_written_over_a_newer_state_is_made_to_that_state_without_undoing_it() {
    let url = fresh_database().await;
    let (at_a, at_b, _dir) = two_replicas_wanting(&url).await;
    at_a.want(desire("staging", 'a')).await.unwrap();
    at_b.refresh().await.unwrap();
    // b released it and dropped the desire; a, which lost its turn without knowing, still
    // thinks it is desired. Its next change must neither bring it back nor be lost.
    let staging = auger::domain::EnvName::new("staging").unwrap();
    let web = auger::domain::AppName::new("web").unwrap();
    let artifact = desire("staging", 'a').plan.artifact;
    assert!(at_b.done(&staging, &web, &artifact).await.unwrap());
    assert_eq!(
        desired_list(&at_a),
        ["staging:web@aaaaaaaaaaaa"],
        "a's copy is stale"
    );
    at_a.want(desire("production", 'b')).await.unwrap();
    assert_eq!(desired_list(&at_a), ["production:web@bbbbbbbbbbbb"]);
    at_b.refresh().await.unwrap();
    assert_eq!(desired_list(&at_b), ["production:web@bbbbbbbbbbbb"]);
    // A stale "done" of what b already dropped is no change at all.
    assert!(!at_a.done(&staging, &web, &artifact).await.unwrap());
    let version = "SELECT version FROM auger_documents WHERE name = 'desired-releases'";
    assert_eq!(
        query_strings(&url, version).await,
        ["4"],
        "seed, want, done, want"
    );
}

#[tokio::test]
async fn the_first_replica_on_a_database_seeds_the_shared_state_from_its_file() {
    use auger::release::DesiredReleases;
    let url = fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("desired-releases.json");
    let alone = DesiredReleases::open(&file).unwrap();
    alone.want(desire("production", 'c')).await.unwrap();
    drop(alone);
    let a = replica(&url, "a", 30_000).await;
    let shared = DesiredReleases::open_shared(a.document("desired-releases"), &file)
        .await
        .unwrap();
    assert_eq!(desired_list(&shared), ["production:web@cccccccccccc"]);
    // A second replica with a file of its own reads the shared state, not its file.
    let other = dir.path().join("other.json");
    let mine = DesiredReleases::open(&other).unwrap();
    mine.want(desire("staging", 'd')).await.unwrap();
    drop(mine);
    let b = replica(&url, "b", 30_000).await;
    let at_b = DesiredReleases::open_shared(b.document("desired-releases"), &other)
        .await
        .unwrap();
    assert_eq!(desired_list(&at_b), ["production:web@cccccccccccc"]);
}

#[tokio::test]
async fn pruning_deletes_only_done_rows_older_than_the_window() {
    let url = fresh_database().await;
    let q = replica(&url, "a", 30_000).await;
    for id in ["old-done", "new-done", "old-pending"] {
        q.append(id, "status", b"x".to_vec()).await.unwrap();
    }
    let taken = q.try_take(10).await.unwrap();
    let done: Vec<u64> = taken
        .iter()
        .filter(|e| e.delivery_id.ends_with("-done"))
        .map(|e| e.seq)
        .collect();
    q.mark_done_many(&done).await.unwrap();
    query_strings(
        &url,
        "UPDATE auger_queue SET done_at = now() - interval '8 days' WHERE delivery_id = 'old-done'; \
         UPDATE auger_queue SET accepted_at = now() - interval '8 days' WHERE delivery_id = 'old-pending'",
    )
    .await;
    assert_eq!(q.prune(Duration::from_secs(7 * 24 * 3600)).await.unwrap(), 1);
    assert_eq!(
        query_strings(
            &url,
            "SELECT string_agg(delivery_id, ',' ORDER BY seq) FROM auger_queue"
        )
        .await,
        ["new-done,old-pending"]
    );
    // The pruned id is a new delivery again; the kept one is still refused.
    assert!(matches!(
        q.append("old-done", "status", Vec::new()).await.unwrap(),
        AppendOutcome::Appended(_)
    ));
    assert_eq!(
        q.append("new-done", "status", Vec::new()).await.unwrap(),
        AppendOutcome::Duplicate
    );
}

#[tokio::test]
async fn a_queue_asked_for_tls_talks_tls_to_a_server_it_trusts_and_refuses_one_it_does_not() {
    let url = fresh_database().await;
    let tls_url = with_query(&url, "sslmode=require&application_name=auger-tls-test");
    let trusting = PgOptions {
        ca_file: Some(server_ca()),
        ..opts(30_000)
    };
    let q = PgQueue::open(&tls_url, "a", trusting).await.unwrap();
    q.append("over-tls", "status", b"x".to_vec()).await.unwrap();
    let ssl = query_strings(
        &url,
        "SELECT bool_and(s.ssl)::text || ' ' || count(*) FROM pg_stat_ssl s \
         JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'auger-tls-test'",
    )
    .await;
    assert_eq!(ssl.len(), 1);
    assert!(
        ssl[0].starts_with("true "),
        "every connection of the queue is TLS: {ssl:?}"
    );

    // Without the CA the server's certificate is not trusted: no connection, and why.
    let refused = PgQueue::open(&tls_url, "b", opts(30_000)).await.err().unwrap();
    assert!(
        refused.to_string().to_lowercase().contains("certificate"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_ca_file_without_certificates_is_refused_naming_the_key() {
    let url = fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ca.pem");
    std::fs::write(&file, "not a certificate\n").unwrap();
    let e = PgQueue::open(
        &url,
        "a",
        PgOptions {
            ca_file: Some(file),
            ..opts(30_000)
        },
    )
    .await
    .err()
    .unwrap();
    assert!(matches!(e, QueueError::Invalid(_)), "{e:?}");
    assert!(e.to_string().contains("server.queue_ca_file"), "{e}");
}
