//! The artifact ledger against real git: what auger writes, plain `git` reads; concurrent
//! writers (threads and processes) lose nothing; replicas converge through a bare remote.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use auger_domain::{AppName, BranchName, CommitSha, EnvName, RepoName, TagName};
use auger_ledger::{
    Artifact, ArtifactId, ArtifactStore, HoldState, ListFilter, RecordOutcome, Source, StateKind, StoreError,
};

fn app(name: &str) -> AppName {
    AppName::new(name).unwrap()
}

/// `git --git-dir DIR ARGS`, which must succeed; its output.
fn git_checked(git_dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(git_dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A new bare repository `dir/name` (first branch main) and its file URL.
fn bare(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    std::fs::create_dir_all(&path).unwrap();
    let out = Command::new("git")
        .args(["init", "--bare", "--quiet", "--initial-branch=main"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "git init --bare");
    let url = format!("file://{}", path.display());
    (path, url)
}

fn sha(n: u64, salt: u64) -> CommitSha {
    // The first 16 hex digits mix both inputs, so short ids stay unique across the test set.
    let mix = (n + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ salt.wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    CommitSha::new(format!("{mix:016x}{salt:016x}{n:08x}")).unwrap()
}

fn artifact(app: &str, sha: CommitSha, branch: Option<&str>) -> Artifact {
    let mut a = Artifact::new(
        AppName::new(app).unwrap(),
        RepoName::new(format!("acme/{app}")).unwrap(),
        sha,
        Source {
            kind: "status".into(),
            name: "ci/build".into(),
            target_url: Some("https://ci.example/1".into()),
        },
    );
    if let Some(b) = branch {
        a.branches.push(BranchName::new(b).unwrap());
    }
    a.message = Some("feat: something".into());
    a
}

/// Writes (or overwrites) web's note on `sha` with plain git, in git's own flat layout.
fn add_note_with_git(path: &Path, sha: &CommitSha, text: &str) {
    git_checked(
        path,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "notes",
            "--ref=auger/artifacts/web",
            "add",
            "-f",
            "-m",
            text,
            sha.as_str(),
        ],
    );
}

/// `git fsck --strict` finds nothing wrong (dangling objects from lost races are allowed).
fn assert_fsck_clean(path: &Path) {
    let fsck = Command::new("git")
        .arg("--git-dir")
        .arg(path)
        .args(["fsck", "--strict", "--no-dangling"])
        .output()
        .unwrap();
    assert!(fsck.status.success(), "{}", String::from_utf8_lossy(&fsck.stderr));
    assert!(!String::from_utf8_lossy(&fsck.stdout).contains("error"));
}

#[test]
fn plain_git_reads_what_auger_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("artifacts.git");
    let store = ArtifactStore::open_or_init(&path).unwrap();

    // CI turns main green on two commits; the first one is tagged later.
    let first = artifact("web", sha(1, 1), Some("main"));
    let second = artifact("web", sha(2, 1), Some("main"));
    assert!(matches!(store.record(&first).unwrap(), RecordOutcome::Created(_)));
    assert!(matches!(
        store.record(&second).unwrap(),
        RecordOutcome::Created(_)
    ));
    let mut tagged = artifact("web", sha(1, 1), None);
    tagged.tags.push(TagName::new("v1.0.0").unwrap());
    let RecordOutcome::Updated(merged) = store.record(&tagged).unwrap() else {
        panic!("a tag on a known commit updates the artifact")
    };
    assert_eq!(merged.branches, vec![BranchName::new("main").unwrap()]);
    assert_eq!(merged.tags, vec![TagName::new("v1.0.0").unwrap()]);
    assert!(matches!(
        store.record(&tagged).unwrap(),
        RecordOutcome::Unchanged(_)
    ));

    // `git notes show` prints the JSON lines, newest last.
    let note = git_checked(
        &path,
        &["notes", "--ref=auger/artifacts/web", "show", sha(1, 1).as_str()],
    );
    let lines: Vec<serde_json::Value> = note.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "one line per write: {note}");
    assert_eq!(lines[0]["tags"], serde_json::json!([]));
    assert_eq!(lines[1]["tags"], serde_json::json!(["v1.0.0"]));
    assert_eq!(lines[1]["id"], merged.id.to_string());
    assert_eq!(lines[1]["v"], 1);

    // The notes ref's log is the artifact log: three writes, the unchanged one made none.
    let log = git_checked(&path, &["log", "--format=%s", "refs/notes/auger/artifacts/web"]);
    assert_eq!(log.lines().count(), 3, "{log}");
    let body = git_checked(
        &path,
        &["log", "-1", "--format=%b", "refs/notes/auger/artifacts/web"],
    );
    assert!(
        body.contains(&format!("~ {} {}", merged.id, merged.sha)),
        "{body}"
    );

    // The branch ref's first-parent log is main's build history, newest first.
    let history = git_checked(
        &path,
        &[
            "log",
            "--first-parent",
            "--format=%s",
            "refs/auger/branches/web/main",
        ],
    );
    assert_eq!(history.lines().count(), 2);
    let snapshot = git_checked(&path, &["show", "refs/auger/branches/web/main:artifact.json"]);
    let snapshot: serde_json::Value = serde_json::from_str(&snapshot).unwrap();
    assert_eq!(snapshot["sha"], sha(2, 1).as_str());

    // Releases: the env ref moves, with history.
    let staging = EnvName::new("staging").unwrap();
    store.set_released(&staging, &app("web"), &merged).unwrap();
    store.set_released(&staging, &app("web"), &second).unwrap();
    assert_eq!(
        store.released(&staging, &app("web")).unwrap().unwrap().sha,
        second.sha
    );
    let releases = store.release_history(&staging, &app("web"), 10).unwrap();
    assert_eq!(
        releases.iter().map(|a| a.sha.clone()).collect::<Vec<_>>(),
        vec![second.sha.clone(), merged.sha.clone()]
    );
    // The env snapshot is refreshed from the note: a tag added after release shows up.
    assert_eq!(
        store.released(&staging, &app("web")).unwrap().unwrap().id,
        second.id
    );

    assert_fsck_clean(&path);
}

#[test]
fn reads_answer_by_sha_id_branch_and_filter() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open_or_init(&dir.path().join("a.git")).unwrap();
    for n in 0..5 {
        store
            .record(&artifact(
                "api",
                sha(n, 7),
                Some(if n % 2 == 0 { "main" } else { "release/1.0" }),
            ))
            .unwrap();
    }
    let api = app("api");
    let got = store.get(&api, &sha(3, 7)).unwrap().unwrap();
    assert_eq!(got.branches[0].as_str(), "release/1.0");
    assert!(store.get(&app("other"), &sha(3, 7)).unwrap().is_none());
    assert!(store.get(&api, &sha(99, 7)).unwrap().is_none());

    let id: ArtifactId = got.id.to_string().parse().unwrap();
    assert_eq!(store.get_by_id(&id).unwrap().unwrap().sha, got.sha);
    let short: ArtifactId = format!("api@{}", got.sha.short(7)).parse().unwrap();
    assert_eq!(store.get_by_id(&short).unwrap().unwrap().sha, got.sha);
    assert_eq!(store.find_by_sha_prefix(got.sha.short(10)).unwrap().len(), 1);

    let main = BranchName::new("main").unwrap();
    assert_eq!(store.latest(&api, &main).unwrap().unwrap().sha, sha(4, 7));
    let rel = BranchName::new("release/1.0").unwrap();
    assert_eq!(store.latest(&api, &rel).unwrap().unwrap().sha, sha(3, 7));
    // `release` and `release/1.0` never collide.
    assert!(
        store
            .latest(&api, &BranchName::new("release").unwrap())
            .unwrap()
            .is_none()
    );

    let all = store.list(&api, &ListFilter::default(), 10).unwrap();
    assert_eq!(
        all.iter().map(|a| a.sha.clone()).collect::<Vec<_>>(),
        (0..5).rev().map(|n| sha(n, 7)).collect::<Vec<_>>()
    );
    let two = store.list(&api, &ListFilter::default(), 2).unwrap();
    assert_eq!(two.len(), 2);
    let on_main = store
        .list(
            &api,
            &ListFilter {
                branch: Some(main),
                ..Default::default()
            },
            10,
        )
        .unwrap();
    assert_eq!(
        on_main.iter().map(|a| a.sha.clone()).collect::<Vec<_>>(),
        vec![sha(4, 7), sha(2, 7), sha(0, 7)]
    );
    assert_eq!(store.apps().unwrap(), vec![api]);
}

/// Writers racing on one app through separate handles (so the compare-and-swap, not a mutex,
/// decides): every artifact and every branch-ref move survives.
#[test]
fn two_writer_threads_record_500_each_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("artifacts.git");
    ArtifactStore::open_or_init(&path).unwrap();
    let handles: Vec<_> = (0..2u64)
        .map(|w| {
            let path = path.clone();
            std::thread::spawn(move || {
                let store = ArtifactStore::open(&path).unwrap();
                for n in 0..500 {
                    store
                        .record(&artifact("web", sha(n, 100 + w), Some("main")))
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_complete(&path, &[100, 101], 500);
}

/// The same across processes: this test binary re-executes itself as the writer.
#[test]
fn two_writer_processes_record_500_each_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("artifacts.git");
    ArtifactStore::open_or_init(&path).unwrap();
    let children: Vec<_> = (0..2u64).map(|w| spawn_writer(&path, 200 + w, 500)).collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    assert_complete(&path, &[200, 201], 500);
}

fn spawn_writer(path: &Path, salt: u64, count: u64) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "writer_process", "--nocapture", "--test-threads=1"])
        .env("AUGER_TEST_WRITER", format!("{}|{salt}|{count}", path.display()))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Not a test on its own: the body of the writer process above (a no-op otherwise).
#[test]
fn writer_process() {
    let Ok(spec) = std::env::var("AUGER_TEST_WRITER") else {
        return;
    };
    let mut parts = spec.split('|');
    let path = PathBuf::from(parts.next().unwrap());
    let salt: u64 = parts.next().unwrap().parse().unwrap();
    let count: u64 = parts.next().unwrap().parse().unwrap();
    let store = ArtifactStore::open(&path).unwrap();
    for n in 0..count {
        store
            .record(&artifact("web", sha(n, salt), Some("main")))
            .unwrap();
    }
}

fn assert_complete(path: &Path, salts: &[u64], per_writer: u64) {
    let store = ArtifactStore::open(path).unwrap();
    let web = app("web");
    let expected: std::collections::BTreeSet<String> = salts
        .iter()
        .flat_map(|&s| (0..per_writer).map(move |n| sha(n, s).to_string()))
        .collect();

    // Every artifact is in the notes, exactly once.
    let notes = git_checked(path, &["notes", "--ref=auger/artifacts/web", "list"]);
    let annotated: Vec<&str> = notes
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(annotated.len(), expected.len());
    assert_eq!(
        annotated
            .iter()
            .map(|s| s.to_string())
            .collect::<std::collections::BTreeSet<_>>(),
        expected
    );
    for s in expected.iter().take(50) {
        let note = git_checked(path, &["notes", "--ref=auger/artifacts/web", "show", s]);
        assert_eq!(note.lines().count(), 1, "no duplicate record lines for {s}");
    }
    // The artifact log lists each exactly once as new.
    let listed = store.list(&web, &ListFilter::default(), usize::MAX).unwrap();
    assert_eq!(listed.len(), expected.len());
    // No lost branch-ref update: main's build history holds every build.
    let history = store
        .branch_history(&web, &BranchName::new("main").unwrap(), usize::MAX)
        .unwrap();
    assert_eq!(history.len(), expected.len());
    assert_eq!(
        history
            .iter()
            .map(|s| s.to_string())
            .collect::<std::collections::BTreeSet<_>>(),
        expected
    );
    let fsck = Command::new("git")
        .arg("--git-dir")
        .arg(path)
        .args(["fsck", "--connectivity-only"])
        .output()
        .unwrap();
    assert!(fsck.status.success());
}

#[test]
fn a_killed_writer_leaves_old_or_new_state_never_half() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("artifacts.git");
    ArtifactStore::open_or_init(&path).unwrap();
    let mut child = spawn_writer(&path, 300, 100_000);
    // Kill it mid-stream, once it has demonstrably written (a slow CI machine may need longer).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let count = Command::new("git")
            .arg("--git-dir")
            .arg(&path)
            .args(["rev-list", "--count", "refs/auger/branches/web/main"])
            .output()
            .unwrap();
        let n: usize = String::from_utf8_lossy(&count.stdout).trim().parse().unwrap_or(0);
        if n >= 20 || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // A new writer takes over (stale locks of the dead one are cleared) and the ledger is
    // consistent: every branch-ref build is in the notes and every note is in the log.
    let store = ArtifactStore::open(&path).unwrap();
    store.record(&artifact("web", sha(1, 301), Some("main"))).unwrap();
    let web = app("web");
    let history = store
        .branch_history(&web, &BranchName::new("main").unwrap(), usize::MAX)
        .unwrap();
    assert!(history.len() > 1, "the killed writer got some work done");
    for s in &history {
        assert!(
            store.get(&web, s).unwrap().is_some(),
            "branch ref points at a recorded artifact"
        );
    }
    let notes = git_checked(&path, &["notes", "--ref=auger/artifacts/web", "list"]);
    assert_eq!(notes.lines().count(), history.len());
    assert_eq!(
        store
            .list(&web, &ListFilter::default(), usize::MAX)
            .unwrap()
            .len(),
        history.len()
    );
}

#[test]
fn replicas_converge_through_a_bare_remote_and_a_rejected_push_is_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let (remote, url) = bare(dir.path(), "remote.git");
    let (a, report) = ArtifactStore::open_or_init(&dir.path().join("a.git"))
        .unwrap()
        .with_remote(&url)
        .unwrap();
    assert_eq!(report.error, None);
    let (b, _) = ArtifactStore::open_or_init(&dir.path().join("b.git"))
        .unwrap()
        .with_remote(&url)
        .unwrap();
    let web = app("web");

    // A records; B sees it after a sync.
    a.record(&artifact("web", sha(1, 9), Some("main"))).unwrap();
    let report = b.sync();
    assert_eq!(report.error, None);
    assert!(b.get(&web, &sha(1, 9)).unwrap().is_some());

    // B's push is held in the remote's pre-receive hook while A pushes: the remote's ref moves
    // under B, its update is rejected, and B re-fetches, replays on A's write and pushes again.
    let hook = remote.join("hooks/pre-receive");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\ncat >/dev/null\nd={}\nif [ -f $d/slow ]; then rm $d/slow; touch $d/waiting; while [ ! -f $d/go ]; do sleep 0.01; done; fi\nexit 0\n",
            dir.path().display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.path().join("slow"), "").unwrap();
    let b = Arc::new(b);
    let b2 = Arc::clone(&b);
    let writer = std::thread::spawn(move || {
        let mut tagged = artifact("web", sha(1, 9), None);
        tagged.tags.push(TagName::new("v1.0.0").unwrap());
        b2.record(&tagged).unwrap();
        b2.record(&artifact("web", sha(3, 9), Some("main"))).unwrap();
    });
    while !dir.path().join("waiting").exists() {
        std::thread::sleep(Duration::from_millis(5));
    }
    a.record(&artifact("web", sha(2, 9), Some("main"))).unwrap();
    std::fs::write(dir.path().join("go"), "").unwrap();
    writer.join().unwrap();
    assert_eq!(a.sync().error, None);

    // Both replicas and the remote agree on the union; no history was rewritten on the remote.
    let (c, _) = ArtifactStore::open_or_init(&dir.path().join("c.git"))
        .unwrap()
        .with_remote(&url)
        .unwrap();
    for store in [&a, &*b, &c] {
        let all: std::collections::BTreeSet<_> = store
            .list(&web, &ListFilter::default(), 100)
            .unwrap()
            .into_iter()
            .map(|x| x.sha)
            .collect();
        assert_eq!(all, [sha(1, 9), sha(2, 9), sha(3, 9)].into_iter().collect());
        let first = store.get(&web, &sha(1, 9)).unwrap().unwrap();
        assert_eq!(
            first.tags,
            vec![TagName::new("v1.0.0").unwrap()],
            "B's tag survived the replay"
        );
        assert_eq!(
            store
                .branch_history(&web, &BranchName::new("main").unwrap(), 10)
                .unwrap()
                .len(),
            3,
            "every build on main survived"
        );
    }
    let remote_log = git_checked(&remote, &["log", "--format=%H", "refs/notes/auger/artifacts/web"]);
    assert!(remote_log.lines().count() >= 3);
}

#[test]
fn holds_verifications_and_freezes_replicate_through_the_remote() {
    let dir = tempfile::tempdir().unwrap();
    let (remote, url) = bare(dir.path(), "remote.git");
    let open = |name: &str| {
        ArtifactStore::open_or_init(&dir.path().join(name))
            .unwrap()
            .with_remote(&url)
            .unwrap()
            .0
    };
    let (a, b) = (open("a.git"), open("b.git"));
    let (staging, web) = (EnvName::new("staging").unwrap(), app("web"));
    let now = chrono::Utc::now();
    let hold = HoldState {
        held: true,
        by: "@alice".into(),
        reason: "incident".into(),
        time: now,
    };
    a.set_hold(&staging, &web, &hold).unwrap();
    let freeze = auger_ledger::FreezeState {
        frozen: true,
        by: "@alice".into(),
        reason: "release week".into(),
        until: None,
        time: now,
    };
    a.set_freeze(&staging, &web, &freeze).unwrap();
    let verify = serde_json::json!({ "state": "merged", "artifact": "web@aaaaaaaaaaaa" });
    let change = auger_ledger::Change {
        message: "verify staging/web",
        time: now,
    };
    a.set_env_state((StateKind::Verify, &staging, &web), &verify, change, |old| {
        *old == verify
    })
    .unwrap();
    for kind in ["holds", "verify", "freezes"] {
        let on_remote = git_checked(&remote, &["rev-parse", &format!("refs/auger/{kind}/staging/web")]);
        assert_eq!(on_remote.trim().len(), 40, "{kind} pushed");
    }

    assert_eq!(b.sync().error, None);
    assert_eq!(b.hold_state(&staging, &web).unwrap(), Some(hold.clone()));
    assert_eq!(b.freeze_state(&staging, &web).unwrap(), Some(freeze));
    let seen: Option<serde_json::Value> = b.env_state(StateKind::Verify, &staging, &web).unwrap();
    assert_eq!(seen, Some(verify));

    // B lifts the hold; A, syncing, sees it lifted.
    let lifted = HoldState {
        held: false,
        reason: "resumed".into(),
        ..hold
    };
    b.set_hold(&staging, &web, &lifted).unwrap();
    assert_eq!(a.sync().error, None);
    assert_eq!(a.hold_state(&staging, &web).unwrap(), Some(lifted));
}

#[test]
fn a_remote_that_is_down_keeps_the_local_write_and_the_next_sync_pushes_it() {
    let dir = tempfile::tempdir().unwrap();
    let (remote, url) = bare(dir.path(), "remote.git");
    let (a, _) = ArtifactStore::open_or_init(&dir.path().join("a.git"))
        .unwrap()
        .with_remote(&url)
        .unwrap();

    let away = dir.path().join("away.git");
    std::fs::rename(&remote, &away).unwrap();
    a.record(&artifact("web", sha(1, 5), Some("main"))).unwrap();
    assert!(
        a.get(&app("web"), &sha(1, 5)).unwrap().is_some(),
        "the local write is kept"
    );
    assert!(a.sync().error.is_some(), "the remote is down");

    std::fs::rename(&away, &remote).unwrap();
    let report = a.sync();
    assert_eq!(report.error, None);
    assert!(
        report
            .pushed
            .iter()
            .any(|r| r == "refs/notes/auger/artifacts/web"),
        "{report:?}"
    );
    let note = git_checked(
        &remote,
        &["notes", "--ref=auger/artifacts/web", "show", sha(1, 5).as_str()],
    );
    assert_eq!(note.lines().count(), 1);
}

#[test]
fn opening_a_missing_path_or_a_plain_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();

    // A missing path: named, and not created by a read.
    let missing = dir.path().join("nope.git");
    let e = ArtifactStore::open(&missing).unwrap_err().to_string();
    assert!(e.contains("nope.git") && e.contains("does not exist"), "{e}");
    assert!(!missing.exists());
    // A file where the repository should be.
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let e = ArtifactStore::open(&file).unwrap_err().to_string();
    assert!(e.contains("not a git repository"), "{e}");
}

/// A store at `dir/artifacts.git` holding one good artifact of web (salt 3).
fn store_with_one_artifact(dir: &Path) -> (PathBuf, ArtifactStore, Artifact) {
    let path = dir.join("artifacts.git");
    let store = ArtifactStore::open_or_init(&path).unwrap();
    let good = artifact("web", sha(1, 3), Some("main"));
    store.record(&good).unwrap();
    (path, store, good)
}

#[test]
fn a_corrupt_note_is_an_error_naming_the_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (path, store, good) = store_with_one_artifact(dir.path());
    // A corrupt note line (written by hand with plain git, in git's own flat layout).
    let bad_sha = sha(2, 3);
    add_note_with_git(&path, &bad_sha, "{not json");
    let tip = git_checked(&path, &["rev-parse", "refs/notes/auger/artifacts/web"]);
    let e = store.get(&app("web"), &bad_sha).unwrap_err();
    assert!(matches!(e, StoreError::CorruptNote { .. }));
    assert!(e.to_string().contains("line 1"), "{e}");
    let e = store
        .record(&artifact("web", bad_sha.clone(), Some("main")))
        .unwrap_err();
    assert!(e.to_string().contains("corrupt"), "{e}");
    assert_eq!(
        git_checked(&path, &["rev-parse", "refs/notes/auger/artifacts/web"]),
        tip,
        "nothing written"
    );
    // The good artifact, in auger's fanout next to git's flat note, still reads.
    assert!(store.get(&app("web"), &good.sha).unwrap().is_some());
}

#[test]
fn the_same_sha_from_another_repository_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (path, store, good) = store_with_one_artifact(dir.path());
    let tip = git_checked(&path, &["rev-parse", "refs/notes/auger/artifacts/web"]);
    // Same sha from another repository: refused, nothing written.
    let mut other = good.clone();
    other.repo = RepoName::new("evil/web").unwrap();
    assert!(store.record(&other).unwrap_err().to_string().contains("evil/web"));
    assert_eq!(
        git_checked(&path, &["rev-parse", "refs/notes/auger/artifacts/web"]),
        tip
    );
}

#[test]
fn an_ambiguous_short_id_is_refused_with_the_candidates() {
    let dir = tempfile::tempdir().unwrap();
    let (_path, store, _good) = store_with_one_artifact(dir.path());
    // An ambiguous short id is refused with the candidates.
    let s1 = CommitSha::new(format!("abcdef1{}", "0".repeat(33))).unwrap();
    let s2 = CommitSha::new(format!("abcdef1{}", "1".repeat(33))).unwrap();
    store.record(&artifact("web", s1, None)).unwrap();
    store.record(&artifact("web", s2, None)).unwrap();
    let e = store.get_by_id(&"web@abcdef1".parse().unwrap()).unwrap_err();
    assert!(
        matches!(e, StoreError::Ambiguous { ref matches, .. } if matches.len() == 2),
        "{e}"
    );
}

#[test]
fn a_note_written_by_git_is_read_and_merged_into_auger_layout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("artifacts.git");
    let store = ArtifactStore::open_or_init(&path).unwrap();
    let a = artifact("web", sha(4, 4), Some("main"));
    // A replica (or an operator) wrote the record with plain git.
    add_note_with_git(&path, &a.sha, &a.to_json_line());
    assert_eq!(store.get(&app("web"), &a.sha).unwrap().unwrap().sha, a.sha);
    let mut tagged = a.clone();
    tagged.tags.push(TagName::new("v2").unwrap());
    assert!(matches!(
        store.record(&tagged).unwrap(),
        RecordOutcome::Updated(_)
    ));
    let note = git_checked(
        &path,
        &["notes", "--ref=auger/artifacts/web", "show", a.sha.as_str()],
    );
    assert_eq!(note.lines().count(), 2, "{note}");
    let tree = git_checked(
        &path,
        &["ls-tree", "-r", "--name-only", "refs/notes/auger/artifacts/web"],
    );
    assert_eq!(
        tree.lines().count(),
        1,
        "moved to the fanout path, not duplicated: {tree}"
    );
}

#[test]
fn a_large_batch_is_one_pack_that_git_and_a_fresh_store_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("artifacts.git");
    let store = ArtifactStore::open_or_init(&path).unwrap();
    let web = app("web");

    // An import of 300 builds of main and 200 of a release branch, in one batch.
    let batch: Vec<Artifact> = (0..500)
        .map(|n| {
            artifact(
                "web",
                sha(n, 21),
                Some(if n < 300 { "main" } else { "release-1" }),
            )
        })
        .collect();
    let outcomes = store.record_batch(&batch).unwrap();
    assert!(outcomes.iter().all(|o| matches!(o, RecordOutcome::Created(_))));

    // Written as one pack: no loose object files, one .pack + .idx that git verifies.
    let loose: usize = std::fs::read_dir(path.join("objects"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().len() == 2)
        .map(|e| std::fs::read_dir(e.path()).unwrap().count())
        .sum();
    assert_eq!(loose, 0, "a large batch writes no loose objects");
    let packs: Vec<PathBuf> = std::fs::read_dir(path.join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(packs.len(), 2, "{packs:?}");
    let idx = packs.iter().find(|p| p.extension().unwrap() == "idx").unwrap();
    git_checked(&path, &["verify-pack", idx.to_str().unwrap()]);
    assert_fsck_clean(&path);
    assert_eq!(
        git_checked(&path, &["notes", "--ref=auger/artifacts/web", "list"])
            .lines()
            .count(),
        500
    );
    let history = git_checked(
        &path,
        &[
            "log",
            "--first-parent",
            "--format=%s",
            "refs/auger/branches/web/main",
        ],
    );
    assert_eq!(
        history.lines().count(),
        300,
        "every build of main is in its history"
    );

    // The same store (which had no pack when it opened) and a fresh one read it all.
    let fresh = ArtifactStore::open(&path).unwrap();
    for s in [&store, &fresh] {
        assert_eq!(s.get(&web, &sha(123, 21)).unwrap().unwrap().sha, sha(123, 21));
        assert_eq!(
            s.latest(&web, &BranchName::new("release-1").unwrap())
                .unwrap()
                .unwrap()
                .sha,
            sha(499, 21)
        );
    }

    // Later writes build on the packed objects: a tag on a packed artifact, a new build.
    let mut tagged = artifact("web", sha(7, 21), None);
    tagged.tags.push(TagName::new("v1.0.0").unwrap());
    assert!(matches!(
        fresh.record(&tagged).unwrap(),
        RecordOutcome::Updated(_)
    ));
    fresh
        .record(&artifact("web", sha(500, 21), Some("main")))
        .unwrap();
    assert_eq!(
        store.get(&web, &sha(7, 21)).unwrap().unwrap().tags,
        vec![TagName::new("v1.0.0").unwrap()]
    );
    assert_eq!(
        store
            .latest(&web, &BranchName::new("main").unwrap())
            .unwrap()
            .unwrap()
            .sha,
        sha(500, 21)
    );
    assert_fsck_clean(&path);
}

/// gix's object store learns of new packs through a fixed number of slots per process (32 by
/// default): one long-lived store writing many large batches must keep reading all of them.
#[test]
fn forty_large_batches_in_one_process_stay_readable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("artifacts.git");
    let store = ArtifactStore::open_or_init(&path).unwrap();
    let web = app("web");
    for chunk in 0..40u64 {
        let batch: Vec<Artifact> = (0..64)
            .map(|n| artifact("web", sha(chunk * 64 + n, 31), Some("main")))
            .collect();
        store.record_batch(&batch).unwrap();
    }
    let packs = std::fs::read_dir(path.join("objects/pack"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "idx"))
        .count();
    assert_eq!(packs, 40);
    for n in [0, 64 * 20 + 5, 64 * 40 - 1] {
        assert_eq!(store.get(&web, &sha(n, 31)).unwrap().unwrap().sha, sha(n, 31));
    }
    assert_eq!(
        store
            .latest(&web, &BranchName::new("main").unwrap())
            .unwrap()
            .unwrap()
            .sha,
        sha(64 * 40 - 1, 31)
    );
    assert_fsck_clean(&path);
}

/// A rejection (design §17) is a fact of the artifact's record: it survives later signals
/// (which merge into the record), the first one stands, and plain git shows it in the note.
#[test]
fn a_rejection_is_kept_on_the_record_and_the_first_one_stands() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("artifacts.git");
    let store = ArtifactStore::open_or_init(&path).unwrap();
    let s = sha(1, 77);
    let a = artifact("web", s.clone(), Some("main"));
    store.record(&a).unwrap();
    let id = a.id.clone();
    let at = chrono::DateTime::parse_from_rfc3339("2026-12-05T10:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let first = auger_ledger::Rejection {
        by: "@alice".into(),
        reason: "leaks memory".into(),
        time: at,
    };
    assert!(matches!(
        store.reject(&id, &first).unwrap(),
        Some(RecordOutcome::Updated(_))
    ));
    let second = auger_ledger::Rejection {
        by: "@bob".into(),
        reason: "also slow".into(),
        time: at,
    };
    assert!(matches!(
        store.reject(&id, &second).unwrap(),
        Some(RecordOutcome::Unchanged(_))
    ));
    // A later signal for the same build (a new tag) keeps the rejection.
    let mut tagged = artifact("web", s.clone(), None);
    tagged.tags.push(TagName::new("v1.0.0").unwrap());
    store.record(&tagged).unwrap();
    let read = store.get(&app("web"), &s).unwrap().unwrap();
    assert_eq!(read.rejected, Some(first));
    assert_eq!(read.tags.len(), 1);
    let note = git_checked(
        &path,
        &[
            "notes",
            "--ref",
            "refs/notes/auger/artifacts/web",
            "show",
            s.as_str(),
        ],
    );
    assert!(note.contains("\"rejected\":{\"by\":\"@alice\""), "{note}");
    // Unknown artifacts are not rejected.
    let missing: ArtifactId = "web@0000000".parse().unwrap();
    assert!(store.reject(&missing, &second).unwrap().is_none());
}

#[test]
fn an_env_state_log_reads_every_change_newest_first_with_its_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open_or_init(&dir.path().join("artifacts.git")).unwrap();
    let (env, web) = (EnvName::new("production").unwrap(), app("web"));
    let t = |h: i64| {
        chrono::DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc)
            + chrono::Duration::hours(h)
    };
    assert!(
        store
            .env_state_log::<HoldState>(StateKind::Hold, &env, &web, 10)
            .unwrap()
            .is_empty()
    );
    for (h, held) in [(1, true), (2, false), (5, true)] {
        let state = HoldState {
            held,
            by: "@alice".into(),
            reason: format!("hour {h}"),
            time: t(h),
        };
        let change = auger_ledger::Change {
            message: "hold",
            time: t(h),
        };
        assert!(
            store
                .set_env_state((StateKind::Hold, &env, &web), &state, change, |_| false)
                .unwrap()
        );
    }
    let log = store
        .env_state_log::<HoldState>(StateKind::Hold, &env, &web, 10)
        .unwrap();
    let seen: Vec<(chrono::DateTime<chrono::Utc>, bool, String)> =
        log.into_iter().map(|(at, s)| (at, s.held, s.reason)).collect();
    assert_eq!(
        seen,
        [
            (t(5), true, "hour 5".to_owned()),
            (t(2), false, "hour 2".to_owned()),
            (t(1), true, "hour 1".to_owned()),
        ]
    );
    let newest = store
        .env_state_log::<HoldState>(StateKind::Hold, &env, &web, 1)
        .unwrap();
    assert_eq!(newest.len(), 1);
    assert_eq!(newest[0].0, t(5));
}
