//! The controller against a real bare git repository and a real HTTP receiver.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster_sim::{Controller, ControllerConfig, ControllerHandle, Format, MetadataKeys, Retry, Watched};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const SECRET: &[u8] = b"flux-hmac-token";

/// A bare repository with a work tree that commits and pushes to it.
struct Repo {
    _dir: tempfile::TempDir,
    bare: PathBuf,
    work: PathBuf,
}

impl Repo {
    fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let bare = dir.path().join("gitops.git");
        let work = dir.path().join("work");
        git(
            dir.path(),
            &[
                "init",
                "--quiet",
                "--bare",
                "--initial-branch=main",
                bare.to_str().unwrap(),
            ],
        );
        git(
            dir.path(),
            &["init", "--quiet", "--initial-branch=main", work.to_str().unwrap()],
        );
        Repo {
            _dir: dir,
            bare,
            work,
        }
    }

    /// Writes `files`, commits them and pushes `main`; returns the commit sha.
    fn commit(&self, files: &[(&str, &str)], message: &str) -> String {
        for (path, text) in files {
            let full = self.work.join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, text).unwrap();
        }
        git(&self.work, &["add", "-A"]);
        git(&self.work, &["commit", "--quiet", "-m", message]);
        git(
            &self.work,
            &["push", "--quiet", self.bare.to_str().unwrap(), "main"],
        );
        git(&self.work, &["rev-parse", "HEAD"]).trim().to_string()
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[derive(Debug, Clone)]
struct Request {
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Request {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A minimal HTTP/1.1 server: records each request and answers with the next scripted status
/// (202 once the script is used up); a scripted 0 reads the request and never answers.
struct Receiver {
    url: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Receiver {
    fn start(script: &[u16]) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/webhooks/flux", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<u16>>()));
        let recorded = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let recorded = Arc::clone(&recorded);
                let script = Arc::clone(&script);
                std::thread::spawn(move || serve(stream, &recorded, &script));
            }
        });
        Receiver { url, requests }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, recorded: &Mutex<Vec<Request>>, script: &Mutex<VecDeque<u16>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap();
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
    }
    let len: usize = headers.get("content-length").map_or(0, |v| v.parse().unwrap());
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    recorded.lock().unwrap().push(Request { path, headers, body });
    let status = script.lock().unwrap().pop_front().unwrap_or(202);
    if status == 0 {
        // Hold the connection open without answering.
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
}

fn config(repo: &str, receiver: &Receiver, objects: Vec<Watched>) -> ControllerConfig {
    ControllerConfig {
        repo: repo.to_string(),
        branch: "main".into(),
        objects,
        report_to: receiver.url.clone(),
        secret: SECRET.to_vec(),
        poll: Duration::from_millis(50),
        apply_delay: Duration::from_millis(20),
        ..ControllerConfig::default()
    }
}

fn staging() -> Watched {
    Watched::kustomization("apps-staging", "flux-system", "staging")
}

fn production() -> Watched {
    Watched::kustomization("apps-production", "flux-system", "production")
}

fn wait_until(what: &str, handle: &ControllerHandle, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; sent {:?}, last error {:?}",
            handle.sent(),
            handle.last_error()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Lets several polls go by, to show that nothing more happens.
fn settle() {
    std::thread::sleep(Duration::from_millis(400));
}

fn hmac_hex(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

const HEALTHY: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 1
";

const UNHEALTHY: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  annotations:
    auger.dev/simulate: unhealthy
spec:
  replicas: 1
";

#[test]
fn a_healthy_revision_is_reported_once_signed_with_its_revision() {
    let repo = Repo::new();
    let sha = repo.commit(&[("staging/web.yaml", HEALTHY)], "web 1.0");
    let receiver = Receiver::start(&[]);
    let handle = Controller::start(config(repo.bare.to_str().unwrap(), &receiver, vec![staging()])).unwrap();

    wait_until("one event", &handle, || receiver.requests().len() == 1);
    settle();
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1, "the same revision is reported once");
    let req = &requests[0];
    assert_eq!(req.path, "/webhooks/flux");
    assert_eq!(req.headers["content-type"], "application/json");
    assert_eq!(req.headers["gotk-component"], "kustomize-controller");
    assert_eq!(
        req.headers["x-signature"],
        format!("sha256={}", hmac_hex(&req.body))
    );

    let event = req.json();
    assert_eq!(event["involvedObject"]["kind"], "Kustomization");
    assert_eq!(event["involvedObject"]["name"], "apps-staging");
    assert_eq!(event["involvedObject"]["namespace"], "flux-system");
    assert_eq!(
        event["involvedObject"]["apiVersion"],
        "kustomize.toolkit.fluxcd.io/v1"
    );
    assert_eq!(event["severity"], "info");
    assert_eq!(event["reason"], "ReconciliationSucceeded");
    assert_eq!(event["reportingController"], "kustomize-controller");
    assert_eq!(event["metadata"]["revision"], format!("main@sha1:{sha}"));
    assert_eq!(event["metadata"]["commit_status"], "update");
    let message = event["message"].as_str().unwrap();
    assert!(
        message.starts_with("Reconciliation finished in ") && message.ends_with(", next run in 10m0s"),
        "{message}"
    );
    let timestamp = event["timestamp"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(timestamp).is_ok(),
        "{timestamp}"
    );

    assert_eq!(handle.applied().as_deref(), Some(sha.as_str()));
    let sent = handle.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].status, Some(202));
    assert!(sent[0].delivered());
    assert_eq!(sent[0].body, req.body, "the recorded body is the one posted");
    assert_eq!(sent[0].revision, format!("main@sha1:{sha}"));
    assert_eq!(
        sent[0].header("x-signature"),
        Some(req.headers["x-signature"].as_str())
    );
}

#[test]
fn a_manifest_marked_unhealthy_fails_its_health_check() {
    let repo = Repo::new();
    repo.commit(&[("staging/web.yaml", HEALTHY)], "web 1.0");
    let receiver = Receiver::start(&[]);
    let handle = Controller::start(ControllerConfig {
        metadata_keys: MetadataKeys::Prefixed,
        ..config(repo.bare.to_str().unwrap(), &receiver, vec![staging()])
    })
    .unwrap();
    wait_until("the first event", &handle, || receiver.requests().len() == 1);

    let bad = repo.commit(&[("staging/web.yaml", UNHEALTHY)], "web 1.1 (bad)");
    wait_until("the second event", &handle, || receiver.requests().len() == 2);
    let req = &receiver.requests()[1];
    assert_eq!(
        req.headers["x-signature"],
        format!("sha256={}", hmac_hex(&req.body))
    );
    let event = req.json();
    assert_eq!(event["severity"], "error");
    assert_eq!(event["reason"], "HealthCheckFailed");
    assert_eq!(
        event["metadata"]["kustomize.toolkit.fluxcd.io/revision"],
        format!("main@sha1:{bad}"),
        "Flux before 2.5 keeps the group prefix"
    );
    assert!(event["metadata"].get("revision").is_none());
    assert!(
        event["metadata"]
            .get("kustomize.toolkit.fluxcd.io/commit_status")
            .is_none()
    );
    let message = event["message"].as_str().unwrap();
    assert!(message.starts_with("health check failed after "), "{message}");
    assert!(
        message.ends_with(": failed early due to stalled resources: [Deployment/shop/web status: 'Failed']"),
        "{message}"
    );
    assert_eq!(handle.applied().as_deref(), Some(bad.as_str()));
}

#[test]
fn only_objects_whose_folder_changed_are_reported() {
    let repo = Repo::new();
    let first = repo.commit(
        &[("staging/web.yaml", HEALTHY), ("production/web.yaml", HEALTHY)],
        "both envs",
    );
    let receiver = Receiver::start(&[]);
    // A URL rather than a path: the controller reads it through its mirror all the same.
    let url = format!("file://{}", repo.bare.display());
    let handle = Controller::start(config(&url, &receiver, vec![staging(), production()])).unwrap();
    wait_until("both objects reported", &handle, || {
        receiver.requests().len() == 2
    });
    let names: Vec<String> = receiver
        .requests()
        .iter()
        .map(|r| r.json()["involvedObject"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["apps-staging", "apps-production"]);
    assert_eq!(handle.applied().as_deref(), Some(first.as_str()));

    let docs = repo.commit(&[("README.md", "gitops\n")], "docs only");
    wait_until("the docs commit applied", &handle, || {
        handle.applied().as_deref() == Some(docs.as_str())
    });
    settle();
    assert_eq!(
        receiver.requests().len(),
        2,
        "a commit outside both folders reports nothing"
    );

    let prod = repo.commit(&[("production/web.yaml", UNHEALTHY)], "prod only");
    wait_until("the production event", &handle, || receiver.requests().len() == 3);
    settle();
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3, "staging did not change");
    let event = requests[2].json();
    assert_eq!(event["involvedObject"]["name"], "apps-production");
    assert_eq!(event["severity"], "error");
    assert_eq!(event["metadata"]["revision"], format!("main@sha1:{prod}"));
}

#[test]
fn a_failed_post_is_retried_and_every_attempt_recorded() {
    let repo = Repo::new();
    repo.commit(
        &[("staging/web.yaml", HEALTHY), ("production/web.yaml", HEALTHY)],
        "v1",
    );
    // staging: 500, 503, then 202; production: 400, which is not retried.
    let receiver = Receiver::start(&[500, 503, 202, 400]);
    let handle = Controller::start(ControllerConfig {
        retry: Retry {
            max_retries: 4,
            wait_min: Duration::from_millis(10),
            wait_max: Duration::from_millis(40),
        },
        ..config(
            repo.bare.to_str().unwrap(),
            &receiver,
            vec![staging(), production()],
        )
    })
    .unwrap();
    wait_until("four attempts", &handle, || handle.sent().len() == 4);
    settle();
    let sent = handle.sent();
    let summary: Vec<(&str, u32, Option<u16>)> = sent
        .iter()
        .map(|s| (s.object.as_str(), s.attempt, s.status))
        .collect();
    assert_eq!(
        summary,
        [
            ("Kustomization/flux-system/apps-staging", 1, Some(500)),
            ("Kustomization/flux-system/apps-staging", 2, Some(503)),
            ("Kustomization/flux-system/apps-staging", 3, Some(202)),
            ("Kustomization/flux-system/apps-production", 1, Some(400)),
        ]
    );
    assert!(sent[0].error.as_deref().unwrap().contains("500"));
    assert!(sent[2].delivered() && sent[2].error.is_none());
    assert_eq!(sent[0].body, sent[2].body, "a retry posts the same bytes");
    let requests = receiver.requests();
    assert_eq!(requests.len(), 4);
    assert_eq!(requests[0].body, requests[2].body);
}

#[test]
fn an_unreachable_receiver_gets_a_bounded_number_of_attempts() {
    let repo = Repo::new();
    repo.commit(&[("staging/web.yaml", HEALTHY)], "v1");
    // Bind and drop: nothing listens on this port any more.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let receiver = Receiver {
        url: format!("http://127.0.0.1:{port}/webhooks/flux"),
        requests: Arc::default(),
    };
    let handle = Controller::start(ControllerConfig {
        retry: Retry {
            max_retries: 2,
            wait_min: Duration::from_millis(5),
            wait_max: Duration::from_millis(5),
        },
        ..config(repo.bare.to_str().unwrap(), &receiver, vec![staging()])
    })
    .unwrap();
    wait_until("three attempts", &handle, || handle.sent().len() == 3);
    settle();
    let sent = handle.sent();
    assert_eq!(sent.len(), 3, "one try and two retries");
    assert!(sent.iter().all(|s| s.status.is_none() && s.error.is_some()));
}

#[test]
fn stop_ends_the_controller_promptly_even_mid_apply() {
    let repo = Repo::new();
    repo.commit(&[("staging/web.yaml", HEALTHY)], "v1");
    let receiver = Receiver::start(&[]);
    let handle = Controller::start(ControllerConfig {
        apply_delay: Duration::from_secs(30),
        ..config(repo.bare.to_str().unwrap(), &receiver, vec![staging()])
    })
    .unwrap();
    // Long enough to be inside the apply delay of the first revision.
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    handle.stop();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "stop took {:?}",
        started.elapsed()
    );
    handle.stop(); // a second stop is harmless
    settle();
    assert!(receiver.requests().is_empty());
    assert!(handle.sent().is_empty());
}

#[test]
fn stop_abandons_a_post_that_never_gets_an_answer() {
    let repo = Repo::new();
    repo.commit(&[("staging/web.yaml", HEALTHY)], "v1");
    let receiver = Receiver::start(&[0]);
    let handle = Controller::start(config(repo.bare.to_str().unwrap(), &receiver, vec![staging()])).unwrap();
    wait_until("the hanging request", &handle, || receiver.requests().len() == 1);
    let started = Instant::now();
    drop(handle);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "drop took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_stopped_controller_applies_nothing_new() {
    let repo = Repo::new();
    repo.commit(&[("staging/web.yaml", HEALTHY)], "v1");
    let receiver = Receiver::start(&[]);
    let handle = Controller::start(config(repo.bare.to_str().unwrap(), &receiver, vec![staging()])).unwrap();
    wait_until("the first event", &handle, || receiver.requests().len() == 1);
    let applied = handle.applied();
    handle.stop();
    repo.commit(&[("staging/web.yaml", UNHEALTHY)], "v2");
    settle();
    assert_eq!(receiver.requests().len(), 1);
    assert_eq!(handle.applied(), applied);
}

#[test]
fn a_missing_repository_is_an_error_and_reports_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(&[]);
    let missing = dir.path().join("nope.git");
    let handle = Controller::start(config(missing.to_str().unwrap(), &receiver, vec![staging()])).unwrap();
    wait_until("an error", &handle, || handle.last_error().is_some());
    assert!(
        handle.last_error().unwrap().contains("ls-remote"),
        "{:?}",
        handle.last_error()
    );
    assert!(handle.sent().is_empty() && handle.applied().is_none());
}

#[test]
fn a_folder_missing_at_the_revision_fails_like_flux() {
    let repo = Repo::new();
    let sha = repo.commit(&[("production/web.yaml", HEALTHY)], "no staging yet");
    let receiver = Receiver::start(&[]);
    let handle = Controller::start(config(repo.bare.to_str().unwrap(), &receiver, vec![staging()])).unwrap();
    wait_until("the event", &handle, || receiver.requests().len() == 1);
    let event = receiver.requests()[0].json();
    assert_eq!(event["severity"], "error");
    assert_eq!(event["reason"], "ArtifactFailed");
    assert!(
        event["message"]
            .as_str()
            .unwrap()
            .starts_with("kustomization path not found")
    );
    assert_eq!(event["metadata"]["revision"], format!("main@sha1:{sha}"));
}

#[test]
fn as_argo_cd_it_posts_the_template_body_with_a_bearer_token() {
    let repo = Repo::new();
    let good = repo.commit(&[("staging/web.yaml", HEALTHY)], "web 1.0");
    let receiver = Receiver::start(&[]);
    let handle = Controller::start(ControllerConfig {
        format: Format::ArgoCd,
        secret: b"argo-token".to_vec(),
        ..config(
            repo.bare.to_str().unwrap(),
            &receiver,
            vec![Watched::application("web-staging", "argocd", "staging")],
        )
    })
    .unwrap();
    wait_until("the deployed report", &handle, || receiver.requests().len() == 1);
    let bad = repo.commit(&[("staging/web.yaml", UNHEALTHY)], "web 1.1 (bad)");
    wait_until("the degraded report", &handle, || receiver.requests().len() == 2);
    // The controller logs a delivery once its answer is read, just after the receiver has it.
    wait_until("the degraded report logged", &handle, || handle.sent().len() == 2);

    let requests = receiver.requests();
    for req in &requests {
        assert_eq!(req.headers["authorization"], "Bearer argo-token");
        assert_eq!(req.headers["content-type"], "application/json");
        assert!(!req.headers.contains_key("x-signature"));
    }
    let mut deployed = requests[0].json();
    assert!(deployed["finishedAt"].as_str().is_some_and(|t| t.ends_with('Z')));
    deployed["finishedAt"] = "".into();
    assert_eq!(
        deployed,
        serde_json::json!({
            "app": "web-staging", "namespace": "argocd", "revision": good, "revisions": [],
            "sync": "Synced", "health": "Healthy", "healthMessage": "",
            "phase": "Succeeded", "message": "successfully synced (all tasks run)", "finishedAt": ""
        })
    );
    let degraded = requests[1].json();
    assert_eq!(degraded["revision"], bad.as_str());
    assert_eq!(degraded["health"], "Degraded");
    let sent = handle.sent();
    assert_eq!(sent[1].reason, "on-health-degraded");
    assert_eq!(sent[1].object, "Application/argocd/web-staging");
    assert_eq!(sent[1].header("authorization"), Some("Bearer argo-token"));
}

/// A tokio program on a single-threaded runtime: the receiver runs on the caller's runtime,
/// and stopping the controller from async code does not wait on that runtime.
#[tokio::test(flavor = "current_thread")]
async fn a_tokio_caller_receives_reports_and_stops_the_controller() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let repo = Repo::new();
    repo.commit(&[("staging/web.yaml", HEALTHY)], "v1");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = Receiver {
        url: format!("http://{}/webhooks/flux", listener.local_addr().unwrap()),
        requests: Arc::default(),
    };
    let handle = Controller::start(config(repo.bare.to_str().unwrap(), &receiver, vec![staging()])).unwrap();

    let (mut conn, _) = tokio::time::timeout(Duration::from_secs(20), listener.accept())
        .await
        .expect("the controller posts")
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("\"reportingController\"") {
        let n = conn.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed early");
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&seen).starts_with("POST /webhooks/flux HTTP/1.1"));
    // Answer only after stopping: the POST is still in flight when the handle goes.
    let started = Instant::now();
    drop(handle);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "drop took {:?}",
        started.elapsed()
    );
    let _ = conn
        .write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
        .await;
}
