//! `auger serve` as GitHub and CI see it: signed deliveries in, artifacts in the ledger, clear
//! refusals for bad input, nothing lost across a SIGKILL.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::server::BEARER;
use crate::support::{SECRET, Setup, fixture, git, status_payload};

const HELLO: (&str, &str, &str) = (
    "hello",
    "Codertocat/Hello-World",
    "\"status:default\", \"check_run:Octocoders-linter\"",
);

fn sha(n: u64) -> String {
    // The varying part leads, so 12-digit artifact ids differ.
    format!("{:012x}{:028x}", 0xabc0_0000u64 + n, n)
}

#[test]
fn every_real_fixture_gets_the_right_answer() {
    let setup = Setup::new(&[HELLO], "");
    let server = setup.start();
    let expected: &[(&str, u16, &str)] = &[
        // The edge classifies each delivery into work; one that asks for nothing is answered
        // "ignored" and never stored.
        ("check_run.completed.payload.json", 202, "queued"),
        // A tag created: the tag's push carries the work.
        ("create.payload.json", 202, "ignored"),
        // A deleted tag, in a repository without previews.
        ("delete.payload.json", 202, "ignored"),
        // The App's installations changed: auger looks them up again.
        ("installation.created.payload.json", 202, "queued"),
        ("installation_repositories.added.payload.json", 202, "queued"),
        // A comment on an issue, not a pull request, and no command in it.
        ("issue_comment.created.payload.json", 202, "ignored"),
        ("issue_comment.edited.payload.json", 202, "ignored"),
        ("ping.payload.json", 200, "pong"),
        ("pull_request.closed.payload.json", 202, "queued"),
        ("pull_request.opened.payload.json", 202, "queued"),
        ("pull_request.synchronize.payload.json", 202, "queued"),
        // A review in an app repository (only the gitops repository's reviews matter).
        ("pull_request_review.submitted.payload.json", 202, "ignored"),
        // A tag deleted: nothing to record.
        ("push.payload.json", 202, "ignored"),
        // A branch pushed: CI signals, not pushes, make artifacts.
        ("push.with-new-branch.payload.json", 202, "ignored"),
        ("status.payload.json", 202, "queued"),
        // A repository no policy names.
        ("workflow_run.completed.payload.json", 202, "ignored"),
    ];
    let on_disk: Vec<String> =
        std::fs::read_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/webhooks"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".json"))
            .collect();
    assert_eq!(
        on_disk.len(),
        expected.len(),
        "a fixture without an expectation: {on_disk:?}"
    );
    for (i, (file, code, status)) in expected.iter().enumerate() {
        let event = file.split('.').next().unwrap();
        let (got, body) = server.deliver(event, &format!("fixture-{i}"), &fixture(file));
        assert_eq!(
            (got, body["status"].as_str().unwrap_or("")),
            (*code, *status),
            "{file}: {body}"
        );
    }
    server.wait_idle();
    // The green status and the green check run of the fixtures made the artifacts the policy
    // asks for, each with the facts its payload carries.
    let (code, text) = server.get("/api/v1/artifacts?app=hello");
    assert_eq!(code, 200, "{text}");
    let list: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let by_kind = |k: &str| {
        list.iter()
            .find(|a| a["source"]["kind"] == k)
            .unwrap_or_else(|| panic!("{k}: {text}"))
    };
    assert_eq!(list.len(), 2, "{text}");
    assert_eq!(
        by_kind("status")["sha"],
        "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
    );
    assert_eq!(by_kind("check_run")["branches"], serde_json::json!(["changes"]));
    assert_eq!(by_kind("check_run")["pull_requests"], serde_json::json!([2]));
}

#[test]
fn bad_deliveries_get_their_code_and_change_nothing() {
    let setup = Setup::new(&[HELLO], "");
    let server = setup.start();
    let body = status_payload(&sha(1), "success", Some("main"));
    let good_sig = auger::webhook::sign(SECRET, &body);
    let other_sig = auger::webhook::sign("another-secret", &body);
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<u8>, u16);
    let cases: Vec<Case> = vec![
        (
            "no signature",
            vec![("X-GitHub-Event", "status"), ("X-GitHub-Delivery", "d1")],
            body.clone(),
            401,
        ),
        (
            "wrong secret",
            vec![
                ("X-GitHub-Event", "status"),
                ("X-GitHub-Delivery", "d2"),
                ("X-Hub-Signature-256", &other_sig),
            ],
            body.clone(),
            401,
        ),
        (
            "tampered body",
            vec![
                ("X-GitHub-Event", "status"),
                ("X-GitHub-Delivery", "d3"),
                ("X-Hub-Signature-256", &good_sig),
            ],
            status_payload(&sha(2), "success", Some("main")),
            401,
        ),
        (
            "sha1 header only",
            vec![
                ("X-GitHub-Event", "status"),
                ("X-GitHub-Delivery", "d4"),
                ("X-Hub-Signature", "sha1=00"),
            ],
            body.clone(),
            401,
        ),
        (
            "no event header",
            vec![("X-GitHub-Delivery", "d5"), ("X-Hub-Signature-256", &good_sig)],
            body.clone(),
            400,
        ),
        (
            "no delivery header",
            vec![("X-GitHub-Event", "status"), ("X-Hub-Signature-256", &good_sig)],
            body.clone(),
            400,
        ),
    ];
    for (name, headers, body, code) in cases {
        let (got, json) = server.post_webhook(&headers, &body);
        assert_eq!(got, code, "{name}: {json}");
        assert!(
            json["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{name}: JSON error expected, got {json}"
        );
    }
    // Valid signatures over bad content.
    let malformed = b"{\"state\": \"success\", oops".to_vec();
    let (got, json) = server.deliver("status", "d6", &malformed);
    assert_eq!(got, 400, "{json}");
    let mut v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    v["sha"] = "not-a-sha".into();
    let (got, json) = server.deliver("status", "d7", &serde_json::to_vec(&v).unwrap());
    assert_eq!(got, 400);
    assert!(
        json["error"].as_str().unwrap().contains("sha"),
        "the error names the field: {json}"
    );
    // Over GitHub's 25 MB cap.
    let huge = vec![b' '; 25 * 1024 * 1024 + 1];
    let (got, json) = server.deliver("status", "d8", &huge);
    assert_eq!(got, 413, "{json}");
    // Unknown events are acknowledged and ignored.
    let (got, json) = server.deliver("sponsorship", "d9", b"{\"action\":\"created\"}");
    assert_eq!((got, json["status"].as_str().unwrap()), (202, "ignored"));

    assert_eq!(
        server.metric("auger_inbox_appended_total"),
        0,
        "nothing reached the inbox"
    );
    assert_eq!(
        git(&setup.ledger(), &["for-each-ref"]),
        "",
        "nothing reached the ledger"
    );
}

#[test]
fn green_status_records_a_tag_adds_a_failure_does_not_and_a_redelivery_counts_once() {
    let setup = Setup::new(&[HELLO], "");
    let server = setup.start();
    let (code, _) = server.deliver("status", "s1", &status_payload(&sha(1), "success", Some("main")));
    assert_eq!(code, 202);
    assert_eq!(
        server
            .deliver("status", "s1", &status_payload(&sha(1), "success", Some("main")))
            .0,
        200
    );
    assert_eq!(
        server
            .deliver("status", "s2", &status_payload(&sha(2), "failure", Some("main")))
            .0,
        202
    );
    let mut tag: serde_json::Value = serde_json::from_slice(&fixture("push.payload.json")).unwrap();
    tag["ref"] = "refs/tags/v1.0.0".into();
    tag["after"] = sha(1).into();
    tag["deleted"] = false.into();
    assert_eq!(
        server.deliver("push", "p1", &serde_json::to_vec(&tag).unwrap()).0,
        202
    );
    server.wait_idle();

    let (code, text) = server.get(&format!("/api/v1/artifacts/hello@{}", &sha(1)[..12]));
    assert_eq!(code, 200, "{text}");
    let a: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(a["branches"], serde_json::json!(["main"]));
    assert_eq!(a["tags"], serde_json::json!(["v1.0.0"]));
    assert_eq!(
        server
            .get(&format!("/api/v1/artifacts/hello@{}", &sha(2)[..12]))
            .0,
        404
    );
    let note = git(
        &setup.ledger(),
        &["notes", "--ref=auger/artifacts/hello", "show", &sha(1)],
    );
    assert_eq!(
        note.lines().count(),
        2,
        "one write for the build, one for the tag: {note}"
    );
}

#[test]
fn ci_pushes_artifacts_through_the_api_with_a_bearer_token() {
    let setup = Setup::new(&[HELLO], "");
    let server = setup.start();
    let post = |token: Option<&str>, body: serde_json::Value| server.post("/api/v1/artifacts", token, &body);
    let body = serde_json::json!({"app": "hello", "sha": sha(5), "branch": "main", "vars": {"digest": "sha256:abc"}});
    assert_eq!(post(None, body.clone()).0, 401);
    assert_eq!(post(Some("wrong"), body.clone()).0, 401);
    let (code, json) = post(Some(BEARER), body.clone());
    assert_eq!(code, 201, "{json}");
    assert_eq!(
        json["artifact"]["source"],
        serde_json::json!({"kind": "api", "name": "ci", "target_url": null})
    );
    assert_eq!(json["artifact"]["vars"]["digest"], "sha256:abc");
    let (code, json) = post(Some(BEARER), body);
    assert_eq!((code, json["outcome"].as_str().unwrap()), (200, "unchanged"));

    for (bad, fragment) in [
        (
            serde_json::json!({"app": "nope", "sha": sha(6)}),
            "no policy for app nope",
        ),
        (serde_json::json!({"app": "hello", "sha": "123"}), "sha"),
        (serde_json::json!({"app": "../x", "sha": sha(6)}), "app"),
        (
            serde_json::json!({"app": "hello", "sha": sha(6), "repo": "evil/repo"}),
            "is built from",
        ),
        (
            serde_json::json!({"app": "hello", "sha": sha(6), "colour": "red"}),
            "colour",
        ),
        (
            serde_json::json!({"app": "hello", "sha": sha(6), "vars": {"1st": "x"}}),
            "vars: variable name \"1st\" is invalid",
        ),
    ] {
        let (code, json) = post(Some(BEARER), bad);
        assert!((400..500).contains(&code), "{json}");
        assert!(
            json["error"].as_str().unwrap().contains(fragment),
            "{fragment}: {json}"
        );
    }
    let (code, text) = server.get("/api/v1/artifacts?app=hello&branch=main&limit=5");
    assert_eq!(code, 200);
    assert_eq!(
        serde_json::from_str::<Vec<serde_json::Value>>(&text)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(server.get("/api/v1/artifacts?app=Bad").0, 400);
    assert_eq!(server.get("/healthz").0, 200);
    assert!(
        server
            .get("/metrics")
            .1
            .contains("auger_artifacts_recorded_total{outcome=\"created\"} 1")
    );
}

#[test]
fn serve_refuses_to_start_without_a_secret_or_with_bad_policies() {
    let setup = Setup::new(&[HELLO], "");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_auger"))
        .current_dir(setup.path())
        .args(["serve"])
        .env_remove("AUGER_WEBHOOK_SECRET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("AUGER_WEBHOOK_SECRET is not set or empty"));

    std::fs::write(
        setup.path().join("policies/broken.toml"),
        "app = \"broken\"\nrepo = \"a/b\"\ntemplate = \"missing\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_auger"))
        .current_dir(setup.path())
        .args(["serve"])
        .env("AUGER_WEBHOOK_SECRET", "x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid policies") && err.contains("broken.toml: template"),
        "{err}"
    );
}

/// A burst of deliveries, the server SIGKILLed in the middle, restarted: every delivery that
/// got a 2xx is processed, exactly once in effect.
#[test]
fn acknowledged_deliveries_survive_a_sigkill_and_are_processed_once() {
    let setup = Setup::new(&[HELLO], "");
    let mut server = setup.start();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let url = server.url.clone();
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let acked = Arc::clone(&acked);
            let url = url.clone();
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()
                    .unwrap();
                for i in 0..200u64 {
                    let n = t * 1000 + i;
                    let body = status_payload(&sha(n), "success", Some("main"));
                    let sig = auger::webhook::sign(SECRET, &body);
                    let resp = client
                        .post(format!("{url}/webhooks/github"))
                        .header("X-GitHub-Event", "status")
                        .header("X-GitHub-Delivery", format!("burst-{n}"))
                        .header("X-Hub-Signature-256", sig)
                        .body(body)
                        .send();
                    match resp {
                        Ok(r) if r.status().is_success() => acked.lock().unwrap().push(n),
                        _ => return, // the server is gone
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while acked.lock().unwrap().len() < 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill(); // SIGKILL
    for t in threads {
        t.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 200, "the burst was under way when the server died");

    let server = setup.start();
    server.wait_idle();
    let ledger = setup.ledger();
    let notes = git(&ledger, &["notes", "--ref=auger/artifacts/hello", "list"]);
    let recorded: std::collections::HashSet<String> = notes
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(str::to_owned)
        .collect();
    for n in &acked {
        assert!(
            recorded.contains(&sha(*n)),
            "acknowledged delivery burst-{n} was lost"
        );
    }
    for n in acked.iter().take(100) {
        let note = git(
            &ledger,
            &["notes", "--ref=auger/artifacts/hello", "show", &sha(*n)],
        );
        assert_eq!(note.lines().count(), 1, "burst-{n} was applied more than once");
    }
    // Redelivering an acknowledged id after the restart is still a duplicate.
    let n = acked[0];
    let (code, _) = server.deliver(
        "status",
        &format!("burst-{n}"),
        &status_payload(&sha(n), "success", Some("main")),
    );
    assert_eq!(code, 200);
}

/// SIGTERM: stop accepting, finish or persist in-flight work, exit 0; nothing acknowledged is
/// lost across the restart.
#[test]
fn sigterm_shuts_down_gracefully_and_keeps_every_acknowledged_delivery() {
    let setup = Setup::new(&[HELLO], "");
    let mut server = setup.start();
    for n in 0..50u64 {
        let (code, _) = server.deliver(
            "status",
            &format!("term-{n}"),
            &status_payload(&sha(500 + n), "success", Some("main")),
        );
        assert_eq!(code, 202);
    }
    let status = server.terminate(Duration::from_secs(20));
    assert!(status.success(), "a graceful stop exits 0: {status:?}");

    let server = setup.start();
    server.wait_idle();
    let notes = git(&setup.ledger(), &["notes", "--ref=auger/artifacts/hello", "list"]);
    for n in 0..50u64 {
        assert!(notes.contains(&sha(500 + n)), "term-{n} was lost");
    }
}

/// `auger artifact add --server URL` is the same record through the API, with `AUGER_TOKEN`.
#[test]
fn the_cli_records_through_a_running_server() {
    let setup = Setup::new(&[HELLO], "");
    let server = setup.start();
    let cli = |token: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_auger"))
            .args([
                "artifact",
                "add",
                "--app",
                "hello",
                "--repo",
                "Codertocat/Hello-World",
                "--sha",
                &sha(900),
            ])
            .args([
                "--branch",
                "main",
                "--var",
                "digest=sha256:1",
                "--server",
                &server.url,
            ])
            .env("AUGER_TOKEN", token)
            .output()
            .unwrap()
    };
    let refused = cli("wrong-token");
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let ok = cli(BEARER);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout).trim(),
        format!("created hello@{}", &sha(900)[..12])
    );
    let (code, text) = server.get(&format!("/api/v1/artifacts/hello@{}", &sha(900)[..12]));
    assert_eq!(code, 200);
    assert!(text.contains("sha256:1"));
}

/// The worker runs on its own thread at a lower CPU priority than the threads that answer
/// GitHub (so a burst is acknowledged first), and still does its work.
#[test]
fn the_worker_yields_the_cpu_to_the_http_workers_and_still_records() {
    let setup = Setup::new(&[HELLO], "");
    let server = setup.start();
    let (code, _) = server.deliver(
        "status",
        "nice-1",
        &status_payload(&sha(950), "success", Some("main")),
    );
    assert_eq!(code, 202);
    server.wait_idle();
    let notes = git(&setup.ledger(), &["notes", "--ref=auger/artifacts/hello", "list"]);
    assert!(notes.contains(&sha(950)));

    // Field 19 of /proc/<pid>/task/<tid>/stat is the thread's nice value.
    let tasks = format!("/proc/{}/task", server.child.id());
    let mut nice_by_name = std::collections::BTreeMap::new();
    for task in std::fs::read_dir(&tasks).unwrap() {
        let dir = task.unwrap().path();
        let name = std::fs::read_to_string(dir.join("comm"))
            .unwrap()
            .trim()
            .to_owned();
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap();
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        let nice: i32 = after_name.split(' ').nth(16).unwrap().parse().unwrap();
        nice_by_name.insert(name, nice);
    }
    assert_eq!(nice_by_name.get("auger-worker"), Some(&10), "{nice_by_name:?}");
    // Its blocking-I/O threads (the ledger writes) inherit the worker's priority.
    assert_eq!(nice_by_name.get("auger-worker-bl"), Some(&10), "{nice_by_name:?}");
    assert_eq!(nice_by_name.get("inbox-janitor"), Some(&10), "{nice_by_name:?}");
    assert_eq!(nice_by_name.get("inbox-writer"), Some(&0), "{nice_by_name:?}");
    assert!(
        nice_by_name
            .iter()
            .any(|(name, nice)| name.starts_with("actix-rt") && *nice == 0),
        "the HTTP workers keep the normal priority: {nice_by_name:?}"
    );
}

/// A delivery that arrives in many small chunks is read whole (not just its first chunk), and a
/// chunked upload without a declared length is still cut off at the 25 MB cap.
#[test]
fn a_chunked_delivery_is_read_whole_and_an_endless_one_is_refused() {
    let setup = Setup::new(&[HELLO], "");
    let server = setup.start();
    let body = status_payload(&sha(960), "success", Some("main"));
    assert_eq!(server.deliver_chunked("chunked-1", &body, 700), 202);
    server.wait_idle();
    let notes = git(&setup.ledger(), &["notes", "--ref=auger/artifacts/hello", "list"]);
    assert!(notes.contains(&sha(960)), "{notes}");

    let huge = vec![b' '; 25 * 1024 * 1024 + 1];
    assert_eq!(server.deliver_chunked("chunked-2", &huge, 1 << 20), 413);
    assert_eq!(server.metric("auger_inbox_appended_total"), 1);
}

#[test]
fn log_lines_of_a_delivery_carry_its_id_repository_pull_request_and_app() {
    // CI turns a commit green and a pull request opens → the JSON log says which delivery,
    // repository and pull request, where the delivery was accepted and where the worker
    // recorded the artifact (with the app).
    let setup = Setup::new(&[("hello", "Codertocat/Hello-World", "\"status:default\"")], "");
    let log = setup.path().join("serve.log");
    // The edge logs an accepted delivery at debug level only (it is the hot path).
    let mut server = setup.start_logging_json(&log, "info,auger::http=debug");
    let (code, _) = server.deliver("status", "log-delivery-1", &fixture("status.payload.json"));
    assert_eq!(code, 202);
    let (code, _) = server.deliver(
        "pull_request",
        "log-delivery-2",
        &fixture("pull_request.opened.payload.json"),
    );
    assert_eq!(code, 202);
    server.wait_idle();
    server.kill();

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}")))
        .collect();
    let span_of = |message: &str, delivery: &str| -> serde_json::Value {
        let line = lines
            .iter()
            .find(|l| l["fields"]["message"] == message && l["span"]["delivery"] == delivery)
            .unwrap_or_else(|| panic!("no {message:?} line for {delivery} in {lines:#?}"));
        line["span"].clone()
    };
    let recorded = span_of("artifact recorded", "log-delivery-1");
    assert_eq!(recorded["name"], "work");
    assert_eq!(recorded["event"], "status");
    assert_eq!(recorded["repo"], "Codertocat/Hello-World");
    assert_eq!(recorded["app"], "hello");
    let queued = span_of("delivery queued", "log-delivery-1");
    assert_eq!(queued["name"], "delivery");
    assert_eq!(queued["repo"], "Codertocat/Hello-World");
    assert_eq!(
        queued["pr"],
        serde_json::Value::Null,
        "a status is about no pull request"
    );
    let pull = span_of("delivery queued", "log-delivery-2");
    assert_eq!(pull["repo"], "Codertocat/Hello-World");
    assert_eq!(pull["pr"], 2);
}
