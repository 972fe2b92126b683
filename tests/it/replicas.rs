//! Two `auger serve` replicas on one PostgreSQL queue (design §18), one ledger remote and one
//! gitops repository, behind a round-robin that fails over like a load balancer: a storm of
//! deliveries with one replica SIGKILLed in the middle loses nothing and repeats nothing.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use github_sim::{GithubSim, SimConfig};

use super::support::git::{git, releases_by_artifact};
use super::support::postgres::{fresh_database_blocking, query_strings};
use super::support::remote::bare;
use super::support::server::{Server, Setup};
use super::support::stack::{GITOPS, WEB, wait_long, web_policy};
use super::support::webhooks::{SECRET, status_payload};

/// Deliveries in the storm.
const STORM: usize = 1000;
/// Every this many builds is of main (and released to staging); the others are of feature
/// branches (recorded only). Each release makes a few content-creating GitHub calls, which
/// auger paces as GitHub's secondary limit asks (about one per 0.75 s), so a release of every
/// build would make the test take many minutes.
const MAIN_EVERY: usize = 100;
/// The feature branches the other builds are spread over (several builds each, as pushes to an
/// open pull request make). The ledger keeps a ref per branch, and every sync with its remote
/// reads them all: a storm over 1,000 new branches drains about three times slower
/// (BENCHMARKS.md).
const FEATURE_BRANCHES: usize = 50;
/// Concurrent senders, as GitHub's webhook workers are.
const SENDERS: usize = 4;

/// Fields drop in order: the servers go first, before the folders they run in.
struct Replicas {
    servers: Vec<Option<Server>>,
    sim: GithubSim,
    _ledger_dir: tempfile::TempDir,
    ledger: std::path::PathBuf,
    gitops_dir: std::path::PathBuf,
    queue_url: String,
    _setups: Vec<Setup>,
}

impl Replicas {
    fn start(policy: &str) -> Replicas {
        Replicas::start_with(policy, "", &[])
    }

    /// Two replicas with `extra` appended to their `auger.toml` and `env` set.
    fn start_with(policy: &str, extra: &str, env: &[(&str, &str)]) -> Replicas {
        let queue_url = fresh_database_blocking();
        let sim = GithubSim::start(SimConfig::default()).unwrap();
        sim.create_org("acme").unwrap();
        for user in ["alice", "auger"] {
            sim.create_user(user).unwrap();
        }
        sim.create_repo(WEB).unwrap();
        let gitops = sim.create_repo(GITOPS).unwrap();
        sim.push(GITOPS, "main", &[("README.md", "gitops\n")], "init", "alice")
            .unwrap();
        for repo in [WEB, GITOPS] {
            sim.set_permission(repo, "auger", "write").unwrap();
            sim.set_permission(repo, "alice", "write").unwrap();
        }
        let token = sim.create_token("auger").unwrap();
        let ledger_dir = tempfile::tempdir().unwrap();
        let (ledger, ledger_url) = bare(ledger_dir.path(), "ledger.git");
        let config = format!(
            "queue = \"postgres\"\nqueue_url_env = \"AUGER_QUEUE_URL\"\nqueue_lease = \"3s\"\nreconcile_interval = \"2s\"\n\
             [artifacts]\nremote = \"{ledger_url}\"\n\
             [github]\napi_url = \"{}\"\ntoken_env = \"GITHUB_TOKEN\"\n\
             [gitops]\nrepo = \"{GITOPS}\"\nurl = \"{}\"\nbranch = \"main\"\n\
             [api]\ntokens_env = \"AUGER_API_TOKENS\"\n{extra}",
            sim.url(),
            gitops.clone_url
        );
        let setups: Vec<Setup> = (0..2)
            .map(|_| {
                let setup = Setup::new(&[], &config);
                std::fs::write(setup.path().join("policies/web.toml"), policy).unwrap();
                setup
            })
            .collect();
        let servers = setups
            .iter()
            .map(|s| {
                let mut vars = vec![
                    ("GITHUB_TOKEN", token.as_str()),
                    ("AUGER_QUEUE_URL", queue_url.as_str()),
                ];
                vars.extend_from_slice(env);
                Some(s.start_with_env(&vars))
            })
            .collect();
        Replicas {
            gitops_dir: sim.repo_path(GITOPS).unwrap(),
            sim,
            _ledger_dir: ledger_dir,
            ledger,
            queue_url,
            _setups: setups,
            servers,
        }
    }

    fn urls(&self) -> Vec<Option<String>> {
        self.servers
            .iter()
            .map(|s| s.as_ref().map(|s| s.url.clone()))
            .collect()
    }

    fn alive(&self) -> &Server {
        self.servers.iter().flatten().next().expect("a replica alive")
    }

    fn sql(&self, sql: &str) -> Vec<String> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(query_strings(&self.queue_url, sql))
    }

    /// The source sha the shared ledger's `refs/auger/envs/<env>/web` names.
    fn live(&self, env: &str) -> Option<String> {
        let out = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(&self.ledger)
            .args(["show", &format!("refs/auger/envs/{env}/web:artifact.json")])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v["sha"].as_str().map(str::to_owned)
    }
}

/// POSTs a signed status delivery to the replica `first` (round-robin), and to the next one
/// while a replica does not answer, as a load balancer fails over: the answer's status code
/// and JSON, or `None` when no replica answered.
fn deliver(urls: &[Option<String>], first: usize, id: &str, body: &[u8]) -> Option<(u16, String)> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let sig = auger::webhook::sign(SECRET, body);
    for k in 0..urls.len() {
        let Some(url) = &urls[(first + k) % urls.len()] else {
            continue;
        };
        let sent = client
            .post(format!("{url}/webhooks/github"))
            .header("Content-Type", "application/json")
            .header("X-GitHub-Event", "status")
            .header("X-GitHub-Delivery", id)
            .header("X-Hub-Signature-256", &sig)
            .body(body.to_vec())
            .send();
        if let Ok(resp) = sent {
            let code = resp.status().as_u16();
            return Some((code, resp.text().unwrap_or_default()));
        }
    }
    None
}

/// GitHub's status event for a green `ci/build` of `sha` on acme/web's `branch`.
fn green_build(sha: &str, branch: &str) -> Vec<u8> {
    let mut v: serde_json::Value =
        serde_json::from_slice(&status_payload(sha, "success", Some(branch))).unwrap();
    v["context"] = "ci/build".into();
    v["name"] = WEB.into();
    v["repository"]["full_name"] = WEB.into();
    v["repository"]["name"] = "web".into();
    v["repository"]["owner"]["login"] = "acme".into();
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn two_replicas_lose_and_repeat_nothing_when_one_is_killed_mid_storm() {
    let direct = "[env.staging]\nauto = { branch = \"main\" }\nmerge = \"direct\"\n";
    let mut replicas = Replicas::start(&web_policy(direct));
    let branch_of = |n: usize| {
        if n == STORM || n % MAIN_EVERY == MAIN_EVERY - 1 {
            "main".to_owned()
        } else {
            format!("feature-{}", n % FEATURE_BRANCHES)
        }
    };
    let builds: Vec<(String, String)> = (0..=STORM)
        .map(|n| {
            let branch = branch_of(n);
            let sha = replicas
                .sim
                .push(
                    WEB,
                    &branch,
                    &[("app.txt", &format!("v{n}\n"))],
                    &format!("feat: v{n}"),
                    "alice",
                )
                .unwrap();
            (sha, branch)
        })
        .collect();
    let shas: Vec<String> = builds.iter().map(|(sha, _)| sha.clone()).collect();
    let (storm, last) = builds.split_at(STORM);

    // The storm: senders take deliveries in turn and spread them round-robin; every tenth is
    // redelivered to the other replica. Halfway through, replica 0 is SIGKILLed.
    let urls = Arc::new(Mutex::new(replicas.urls()));
    let next = Arc::new(AtomicUsize::new(0));
    let answers: Arc<Mutex<Vec<(String, u16, String)>>> = Arc::default();
    let storm_shas = Arc::new(storm.to_vec());
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| {
            let (urls, next, answers, shas) =
                (urls.clone(), next.clone(), answers.clone(), storm_shas.clone());
            std::thread::spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some((sha, branch)) = shas.get(i) else { break };
                    let body = green_build(sha, branch);
                    let id = format!("storm-{i}");
                    let targets = urls.lock().unwrap().clone();
                    let answer = deliver(&targets, i, &id, &body).expect("no replica answered");
                    answers.lock().unwrap().push((id.clone(), answer.0, answer.1));
                    if i % 10 == 0 {
                        let again = deliver(&targets, i + 1, &id, &body).expect("no replica answered");
                        answers.lock().unwrap().push((id, again.0, again.1));
                    }
                }
            })
        })
        .collect();
    wait_long("half the storm sent", Duration::from_secs(60), || {
        next.load(Ordering::SeqCst) >= STORM / 2
    });
    let pending_at_kill = replicas.sql("SELECT count(*) FROM auger_queue WHERE done_at IS NULL");
    if let Some(mut killed) = replicas.servers[0].take() {
        killed.kill();
    }
    urls.lock().unwrap()[0] = None;
    for s in senders {
        s.join().unwrap();
    }

    // Every delivery was acknowledged, and queued at most once. A first send can be answered
    // `duplicate` when the replica that committed it died before it answered and the
    // balancer sent it to the other one; a redelivery is always a duplicate.
    let answers = answers.lock().unwrap().clone();
    assert!(
        answers.iter().all(|(_, code, _)| matches!(code, 200 | 202)),
        "not acknowledged: {:?}",
        answers
            .iter()
            .filter(|(_, c, _)| !matches!(c, 200 | 202))
            .collect::<Vec<_>>()
    );
    let redelivered = answers.len() - STORM;
    let mut queued: BTreeMap<&str, usize> = BTreeMap::new();
    for (id, _, body) in &answers {
        let entry = queued.entry(id.as_str()).or_default();
        if body.contains("queued") {
            *entry += 1;
        } else {
            assert!(body.contains("duplicate"), "{id}: {body}");
        }
    }
    assert_eq!(queued.len(), STORM);
    let twice: Vec<_> = queued.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "queued twice: {twice:?}");

    // The survivor works off everything, the killed replica's claims once their lease ran out.
    let started = Instant::now();
    let mut said = Instant::now();
    wait_long("the queue drained", Duration::from_secs(900), || {
        let pending = replicas.sql("SELECT count(*) FROM auger_queue WHERE done_at IS NULL");
        if said.elapsed() > Duration::from_secs(15) {
            eprintln!("after {:?}: {} pending", started.elapsed(), pending.join(""));
            said = Instant::now();
        }
        pending == ["0"]
    });
    eprintln!("drained {:?} after the storm", started.elapsed());
    assert_eq!(
        replicas.sql("SELECT count(*) FROM auger_queue"),
        [STORM.to_string()],
        "one row per delivery id"
    );
    // The newest build, delivered after the storm, goes out.
    let newest = &last[0].0;
    let answer = deliver(&replicas.urls(), 1, "final", &green_build(newest, "main"));
    assert_eq!(answer.map(|a| a.0), Some(202));
    wait_long("the newest build on staging", Duration::from_secs(120), || {
        replicas.live("staging").as_deref() == Some(newest.as_str())
    });
    let release = git(&replicas.gitops_dir, &["show", "main:staging/web/release.json"]);
    let release: serde_json::Value = serde_json::from_str(&release).unwrap();
    assert_eq!(release["artifact"], format!("web@{}", &newest[..12]));

    // 0 lost artifacts: every acknowledged build is in the shared ledger, recorded once.
    let notes = git(
        &replicas.ledger,
        &["notes", "--ref=refs/notes/auger/artifacts/web", "list"],
    );
    let recorded: std::collections::HashSet<&str> = notes
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    let lost: Vec<&String> = shas.iter().filter(|s| !recorded.contains(s.as_str())).collect();
    assert!(lost.is_empty(), "{} artifacts lost: {lost:?}", lost.len());
    // 0 duplicated release commits.
    let released = releases_by_artifact(&replicas.gitops_dir);
    let twice: Vec<_> = released.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "released more than once: {twice:?}");

    let replayed = replicas.sql("SELECT count(*) FROM auger_queue WHERE claims > 1");
    let survivor = replicas.alive();
    eprintln!(
        "{STORM} deliveries (+{redelivered} redelivered), replica 0 killed with {} pending: \
         {} releases to staging, {} entries claimed again, survivor's lease expiries: {}",
        pending_at_kill.join(""),
        released.len(),
        replayed.join(""),
        survivor.metric("auger_queue_lease_expiries_total ")
    );
    let (code, health) = survivor.get("/healthz");
    assert_eq!(code, 200, "{health}");
    assert!(
        health.contains(r#""kind":"postgres""#) && health.contains(r#""reachable":true"#),
        "{health}"
    );
    assert!(survivor.metric("auger_queue_claims_total ") > 0);
}

/// The pid in a `claimed_by` replica name (`host:pid:suffix`).
fn pid_of(claimer: &str) -> u32 {
    claimer.split(':').nth(1).and_then(|p| p.parse().ok()).unwrap()
}

impl Replicas {
    /// SIGKILLs the replica that claimed (and finished) delivery `id`.
    fn kill_the_one_that_worked(&mut self, id: &str) {
        let done =
            format!("SELECT claimed_by FROM auger_queue WHERE delivery_id = '{id}' AND done_at IS NOT NULL");
        let mut claimer = Vec::new();
        wait_long("the delivery marked done", Duration::from_secs(30), || {
            claimer = self.sql(&done);
            !claimer.is_empty()
        });
        let pid = pid_of(&claimer[0]);
        let worker = self
            .servers
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| s.child.id() == pid))
            .expect("the claimer is one of the replicas");
        if let Some(mut killed) = self.servers[worker].take() {
            killed.kill();
        }
    }

    /// The newest commit status `context` on acme/web's `sha`: (state, description).
    fn status(&self, sha: &str, context: &str) -> Option<(String, String)> {
        super::support::stack::web_status(&self.sim, sha, context)
    }
}

#[test]
fn a_release_waiting_at_a_killed_replica_is_finished_by_the_other() {
    let policy = "[env.staging]\nauto = { branch = \"main\" }\nmerge = \"direct\"\n\
                  [env.production]\nauto = { branch = \"main\" }\nmerge = \"direct\"\n\
                  after = { env = \"staging\", soak = \"10s\" }\n";
    let mut replicas = Replicas::start(&web_policy(policy));
    let sha = replicas
        .sim
        .push(WEB, "main", &[("app.txt", "v1\n")], "feat: v1", "alice")
        .unwrap();
    let answer = deliver(&replicas.urls(), 0, "gated", &green_build(&sha, "main"));
    assert_eq!(answer.map(|a| a.0), Some(202));
    wait_long("the build on staging", Duration::from_secs(60), || {
        replicas.live("staging").as_deref() == Some(sha.as_str())
    });
    // Production waits for the soak, in the state both replicas share; the replica that
    // worked the delivery (and marked it done) is killed before the soak ends.
    // (Staging is live in the ledger a moment before its desire is dropped.)
    let desired = "SELECT d->'plan'->>'env' FROM auger_documents, jsonb_array_elements(body->'desired') d \
                   WHERE name = 'desired-releases'";
    wait_long("only production desired", Duration::from_secs(10), || {
        replicas.sql(desired) == ["production"]
    });
    assert_eq!(replicas.live("production"), None, "killed before the soak ended");
    replicas.kill_the_one_that_worked("gated");

    wait_long("the build on production", Duration::from_secs(60), || {
        replicas.live("production").as_deref() == Some(sha.as_str())
    });
    let log = git(
        &replicas.gitops_dir,
        &[
            "log",
            "--first-parent",
            "--format=%H",
            "main",
            "--",
            "production/web",
        ],
    );
    assert_eq!(log.lines().count(), 1, "released to production once");
    assert!(
        replicas.sql(
            "SELECT jsonb_array_length(body->'desired') FROM auger_documents WHERE name = 'desired-releases'"
        ) == ["0"],
        "nothing is desired any more"
    );
}

#[test]
fn a_replica_whose_database_is_gone_says_so_and_acknowledges_nothing() {
    let replicas = Replicas::start(&web_policy(
        "[env.staging]\nauto = { branch = \"main\" }\nmerge = \"direct\"\n",
    ));
    let server = replicas.alive();
    assert_eq!(server.get("/healthz").0, 200);
    let name = super::support::postgres::database_name(&replicas.queue_url).to_owned();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(query_strings(
            &super::support::postgres::server_url(),
            &format!("DROP DATABASE {name} WITH (FORCE)"),
        ));

    let (code, health) = server.get("/healthz");
    assert_eq!(code, 503, "{health}");
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["queue"]["kind"], "postgres");
    assert_eq!(health["queue"]["reachable"], false);
    // A delivery it cannot store is not acknowledged: GitHub (or the balancer) tries again.
    let sha = "a".repeat(40);
    let (code, body) = deliver(
        &[Some(server.url.clone())],
        0,
        "no-db",
        &green_build(&sha, "main"),
    )
    .unwrap();
    assert!(code >= 500, "{code} {body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(body["error"].is_string(), "{body}");
}

#[test]
fn a_release_merged_by_a_killed_replica_is_verified_by_the_other() {
    const SECRET_FLUX: &str = "flux-hmac-secret";
    let policy = "[env.staging]\nauto = { branch = \"main\" }\nmerge = \"direct\"\n\
                  verify = { flux = \"apps-staging\" }\n";
    let mut replicas = Replicas::start_with(
        &web_policy(policy),
        "[verify]\nflux_secret_env = \"AUGER_FLUX_SECRET\"\n",
        &[("AUGER_FLUX_SECRET", SECRET_FLUX)],
    );
    let sha = replicas
        .sim
        .push(WEB, "main", &[("app.txt", "v1\n")], "feat: v1", "alice")
        .unwrap();
    let answer = deliver(&replicas.urls(), 0, "build", &green_build(&sha, "main"));
    assert_eq!(answer.map(|a| a.0), Some(202));
    wait_long("the build merged on staging", Duration::from_secs(60), || {
        replicas
            .status(&sha, "auger/staging")
            .is_some_and(|(_, d)| d.contains("waiting for Flux apps-staging"))
    });
    replicas.kill_the_one_that_worked("build");

    // Flux reports the release healthy to the replica left: it finds the verification the
    // killed one started in the shared ledger and finishes it.
    let gitops_tip = replicas.sim.branch_sha(GITOPS, "main").unwrap();
    let mut event: serde_json::Value = serde_json::from_slice(&super::support::webhooks::report_fixture(
        "flux",
        "kustomization-succeeded.json",
    ))
    .unwrap();
    event["involvedObject"]["name"] = "apps-staging".into();
    event["metadata"] = serde_json::json!({ "revision": format!("main@sha1:{gitops_tip}") });
    let body = serde_json::to_vec(&event).unwrap();
    let signature = auger::webhook::sign_as(auger::webhook::Algorithm::Sha256, SECRET_FLUX, &body);
    let (code, json) = replicas
        .alive()
        .post_report("/webhooks/flux", &[("X-Signature", &signature)], &body);
    assert_eq!(code, 202, "{json}");
    wait_long("the release verified", Duration::from_secs(60), || {
        replicas
            .status(&sha, "auger/staging")
            .is_some_and(|(state, _)| state == "success")
    });
}
