//! DORA metrics (design §17) through a real server: a scripted history written with plain git
//! (release commits with their trailers at known committer times) and the ledger's
//! verification log (written at known times), then `GET /api/v1/metrics/dora`, `/metrics` and
//! the `/dora` page with its SVG charts. The figures are the ones worked out by hand in the
//! table on [`Scripted`].

use std::path::Path;
use std::process::Command;

use chrono::{DateTime, Datelike, Duration, NaiveTime, Utc};
use serde_json::Value;

use crate::support::Setup;
use crate::support::data::{api_artifact, app, env};
use crate::support::git::git_in;
use crate::support::remote::bare;
use auger::artifact::{ArtifactStore, Change, StateKind};
use auger::gitops::{ReleaseInfo, Trigger};
use auger::verify::state::{Verification, VerifyState};

/// Policies: web in staging (no verify) and production (verify), api in production (verify).
const POLICIES: [(&str, &str); 2] = [
    (
        "web",
        "[env.staging]\nmerge = \"direct\"\n[env.production]\nmerge = \"direct\"\nverify = { flux = \"apps\" }\n",
    ),
    (
        "api",
        "[env.production]\nmerge = \"direct\"\nverify = { flux = \"apps\" }\n",
    ),
];

/// One scripted release; hours after [`Scripted::base`].
struct Step {
    n: u32,
    env: &'static str,
    app: &'static str,
    source: f64,
    landed: f64,
    rollback: bool,
    healthy: Option<f64>,
    failed: Option<f64>,
}

const fn step(n: u32, env: &'static str, app: &'static str, source: f64, landed: f64) -> Step {
    Step {
        n,
        env,
        app,
        source,
        landed,
        rollback: false,
        healthy: None,
        failed: None,
    }
}

/// The history, hours after a Monday three weeks back:
///
/// | # | pair            | source | landed | verification | figures                              |
/// |---|-----------------|--------|--------|--------------|--------------------------------------|
/// | 1 | production/web  | 0      | 2      | healthy 3    | lead 3h                              |
/// | 2 | production/web  | 24     | 26     | failed 27    | failure, restored by 3: 1h           |
/// | 3 | production/web  | rollback | 28   | healthy 28.5 |                                      |
/// | 4 | production/web  | 48     | 50     | healthy 52   | lead 4h; rolled back by 5: 4h        |
/// | 5 | production/web  | rollback | 54   | healthy 54   |                                      |
/// | 6 | production/web  | 170    | 172    | healthy 173  | lead 3h                              |
/// | 7 | production/web  | 190    | 192    | failed 193   | failure, restored by 8 healthy: 8h   |
/// | 8 | production/web  | 195    | 200    | healthy 201  | lead 6h                              |
/// | 9 | staging/web     | 1      | 1.5    | (none)       | lead 0.5h (merged is live)           |
/// |10 | production/api  | 299    | 300    | failed 301   | failure, not restored                |
///
/// 10 deployments, 8 changes, 4 failures (rate 0.5); lead times 0.5, 3, 3, 4, 6 h (median 3h,
/// mean 3.3h); restores 1, 4, 8 h (median 4h, mean 4h20m); 1 unrestored. Weeks: 6 deployments
/// in the first, 4 in the second.
struct Scripted {
    base: DateTime<Utc>,
    _dir: tempfile::TempDir,
    url: String,
}

fn steps() -> Vec<Step> {
    let (p, s) = ("production", "staging");
    vec![
        Step {
            healthy: Some(3.0),
            ..step(1, p, "web", 0.0, 2.0)
        },
        Step {
            failed: Some(27.0),
            ..step(2, p, "web", 24.0, 26.0)
        },
        Step {
            rollback: true,
            healthy: Some(28.5),
            ..step(1, p, "web", 0.0, 28.0)
        },
        Step {
            healthy: Some(52.0),
            ..step(4, p, "web", 48.0, 50.0)
        },
        Step {
            rollback: true,
            healthy: Some(54.0),
            ..step(1, p, "web", 0.0, 54.0)
        },
        Step {
            healthy: Some(173.0),
            ..step(6, p, "web", 170.0, 172.0)
        },
        Step {
            failed: Some(193.0),
            ..step(7, p, "web", 190.0, 192.0)
        },
        Step {
            healthy: Some(201.0),
            ..step(8, p, "web", 195.0, 200.0)
        },
        step(9, s, "web", 1.0, 1.5),
        Step {
            failed: Some(301.0),
            ..step(10, p, "api", 299.0, 300.0)
        },
    ]
}

impl Scripted {
    /// Writes the gitops history to a bare repository and the verifications to `ledger`.
    fn write(ledger: &Path) -> Scripted {
        let now = Utc::now();
        let three_weeks_back = (now - Duration::weeks(3)).date_naive();
        let monday =
            three_weeks_back - Duration::days(i64::from(three_weeks_back.weekday().num_days_from_monday()));
        let base = monday.and_time(NaiveTime::MIN).and_utc();
        let at = |hours: f64| base + Duration::seconds((hours * 3600.0) as i64);

        let dir = tempfile::tempdir().unwrap();
        let (_, url) = bare(dir.path(), "gitops.git");
        let work = dir.path().join("work");
        git_in(dir.path(), &["clone", "-q", &url, work.to_str().unwrap()]);
        let store = ArtifactStore::open_or_init(ledger).unwrap();
        for s in steps() {
            let mut artifact = api_artifact(s.app, s.n);
            // The commit's own time when CI gave it (even steps), else the first record's.
            if s.n % 2 == 0 {
                artifact.committed = Some(at(s.source));
                artifact.created = at(s.landed);
            } else {
                artifact.created = at(s.source);
            }
            let trigger = if s.rollback {
                Trigger::Rollback("alice".into())
            } else {
                Trigger::Policy
            };
            let mut info = ReleaseInfo::new(env(s.env), app(s.app), &artifact, trigger);
            info.time = at(s.landed);
            if s.rollback {
                info.rollback_to = Some(artifact.id.clone());
            }
            let folder = work.join(s.env).join(s.app);
            std::fs::create_dir_all(&folder).unwrap();
            std::fs::write(folder.join("release.json"), info.to_file_bytes()).unwrap();
            std::fs::write(
                folder.join("deployment.yaml"),
                format!("image: {} # landed {}\n", artifact.sha, s.landed),
            )
            .unwrap();
            let trailers: Vec<String> = info
                .trailers()
                .iter()
                .map(|t| format!("{}: {}", t.key(), t.value()))
                .collect();
            let message = format!(
                "release {} to {}\n\n{}\n",
                artifact.id,
                s.env,
                trailers.join("\n")
            );
            git_in(&work, &["add", "."]);
            let date = at(s.landed).to_rfc3339();
            let out = Command::new("git")
                .args([
                    "-c",
                    "user.name=auger",
                    "-c",
                    "user.email=auger@example.com",
                    "-C",
                ])
                .arg(&work)
                .args(["commit", "-q", "-m", &message])
                .env("GIT_AUTHOR_DATE", &date)
                .env("GIT_COMMITTER_DATE", &date)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let commit = git_in(&work, &["rev-parse", "HEAD"]).trim().to_owned();
            if s.env == "production" {
                let mut v = Verification {
                    artifact: artifact.id.clone(),
                    commit: auger::domain::CommitSha::new(&commit).unwrap(),
                    state: VerifyState::Merged,
                    since: at(s.landed),
                    merged_at: at(s.landed),
                    deadline: at(s.landed + 1.0),
                    healthy_at: None,
                    soak_until: None,
                    revision: None,
                    reported_by: None,
                    message: String::new(),
                    trigger: info.trigger.clone(),
                    last_verified: None,
                    rollback_from: None,
                    deployment: None,
                    reply: None,
                    pull: None,
                };
                let mut states = vec![(at(s.landed), v.clone())];
                if let Some(h) = s.healthy {
                    v.state = VerifyState::Healthy;
                    v.since = at(h);
                    v.healthy_at = Some(at(h));
                    v.soak_until = Some(at(h));
                    states.push((at(h), v.clone()));
                    v.state = VerifyState::Verified;
                    states.push((at(h), v.clone()));
                }
                if let Some(f) = s.failed {
                    v.state = VerifyState::Failed;
                    v.since = at(f);
                    v.message = "Deployment web: 0/1 ready".into();
                    states.push((at(f), v.clone()));
                }
                for (time, state) in states {
                    let change = Change {
                        message: state.state.as_str(),
                        time,
                    };
                    store
                        .set_env_state(
                            (StateKind::Verify, &env(s.env), &app(s.app)),
                            &state,
                            change,
                            |_| false,
                        )
                        .unwrap();
                }
            }
        }
        git_in(&work, &["push", "-q", "origin", "HEAD:main"]);
        Scripted { base, _dir: dir, url }
    }
}

fn setup() -> (Setup, Scripted) {
    let setup = Setup::new(&[], "");
    let scripted = Scripted::write(&setup.ledger());
    for (name, envs) in POLICIES {
        std::fs::write(
            setup.path().join(format!("policies/{name}.toml")),
            format!(
                "app = \"{name}\"\nrepo = \"acme/{name}\"\ntemplate = \"web\"\n[artifact]\nsignals = [\"status:default\"]\n[vars]\nimage = \"x\"\n{envs}"
            ),
        )
        .unwrap();
    }
    let config = setup.path().join("auger.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "[gitops]\nrepo = \"acme/gitops\"\nurl = \"{}\"\nbranch = \"main\"\n",
        scripted.url
    ));
    std::fs::write(&config, text).unwrap();
    (setup, scripted)
}

fn get_json(url: &str, token: &str) -> (u16, Value) {
    let resp = reqwest::blocking::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

const HOUR: f64 = 3600.0;

#[test]
fn the_dora_route_answers_the_hand_computed_figures_of_a_scripted_history() {
    let (setup, scripted) = setup();
    let server = setup.start_with_env(&[("AUGER_API_TOKENS", "ci:test-token:*;viewer:view-secret:read@api")]);
    let since = scripted.base.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let url = |query: &str| format!("{}/api/v1/metrics/dora?{query}", server.url);

    let (status, all) = get_json(&url(&format!("since={since}")), "test-token");
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["deployments"], 10, "{all}");
    assert_eq!(all["changes"], 8);
    assert_eq!(all["failures"], 4);
    assert_eq!(all["change_failure_rate"], 0.5);
    assert_eq!(all["lead_time"]["count"], 5);
    assert_eq!(all["lead_time"]["median_seconds"], 3.0 * HOUR);
    assert_eq!(all["lead_time"]["mean_seconds"], 16.5 * HOUR / 5.0);
    assert_eq!(all["time_to_restore"]["count"], 3);
    assert_eq!(all["time_to_restore"]["median_seconds"], 4.0 * HOUR);
    assert_eq!(all["time_to_restore"]["mean_seconds"], 13.0 * HOUR / 3.0);
    assert_eq!(all["unrestored"], 1);
    let until = DateTime::parse_from_rfc3339(all["until"].as_str().unwrap()).unwrap();
    let days = (until.to_utc() - scripted.base).num_seconds() as f64 / 86_400.0;
    let per_day = all["deployments_per_day"].as_f64().unwrap();
    assert!(
        (per_day - 10.0 / days).abs() < 1e-6,
        "{per_day} vs {}",
        10.0 / days
    );
    let weeks = all["weeks"].as_array().unwrap();
    let deploys: Vec<u64> = weeks.iter().map(|w| w["deployments"].as_u64().unwrap()).collect();
    assert_eq!(&deploys[..2], [6, 4]);
    assert!(deploys[2..].iter().all(|d| *d == 0), "{deploys:?}");
    assert_eq!(weeks[1]["lead_time_median_seconds"], 4.5 * HOUR);

    // One pair at a time.
    let (_, staging) = get_json(&url(&format!("since={since}&env=staging")), "test-token");
    assert_eq!(
        (staging["deployments"].as_u64(), staging["failures"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(staging["lead_time"]["median_seconds"], 0.5 * HOUR);
    assert_eq!(staging["env"], "staging");
    let (_, api) = get_json(&url(&format!("since={since}&app=api")), "test-token");
    assert_eq!(
        (
            api["deployments"].as_u64(),
            api["failures"].as_u64(),
            api["unrestored"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );
    // A later `since` leaves the first week out; a duration counts back from now.
    let (_, late) = get_json(&url("since=1s"), "test-token");
    assert_eq!(late["deployments"], 0, "{late}");

    // A token that may read api only: its figures without asking, 403 for web.
    let (status, viewer) = get_json(&url(&format!("since={since}")), "view-secret");
    assert_eq!(status, 200, "{viewer}");
    assert_eq!(viewer["deployments"], 1);
    let (status, refused) = get_json(&url("app=web"), "view-secret");
    assert_eq!(status, 403, "{refused}");
    assert!(refused["error"].is_string());

    for bad in [
        "since=last%20tuesday",
        "since=2999-01-01",
        "env=Bad",
        "app=../x",
        "limit=3",
    ] {
        let (status, body) = get_json(&url(bad), "test-token");
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"].is_string(), "{bad}: {body}");
    }
    let (status, _) = get_json(&url(""), "wrong");
    assert_eq!(status, 401);

    // CI may say when the commit was made: the record keeps it for the lead time.
    let (status, recorded) = server.post(
        "/api/v1/artifacts",
        Some("test-token"),
        &serde_json::json!({"app": "web", "sha": "f".repeat(40), "committed": "2026-11-02T09:30:00Z"}),
    );
    assert_eq!(status, 201, "{recorded}");
    assert_eq!(recorded["artifact"]["committed"], "2026-11-02T09:30:00Z");
    let (status, refused) = server.post(
        "/api/v1/artifacts",
        Some("test-token"),
        &serde_json::json!({"app": "web", "sha": "e".repeat(40), "committed": "yesterday"}),
    );
    assert_eq!(status, 400, "{refused}");

    // The gauges: one set per pair the policies declare, over the last 30 days.
    let (_, metrics) = server.get("/metrics");
    for pair in [
        "env=\"production\",app=\"web\"",
        "env=\"staging\",app=\"web\"",
        "env=\"production\",app=\"api\"",
    ] {
        assert!(
            metrics.contains(&format!("auger_dora_deployments{{{pair}}} ")),
            "{pair}:\n{metrics}"
        );
    }
    assert!(metrics.contains("# TYPE auger_dora_time_to_restore_seconds gauge"));
}

#[test]
fn the_dora_page_draws_one_bar_per_week_as_well_formed_svg() {
    let (setup, _scripted) = setup();
    let server = setup.start();
    let resp = reqwest::blocking::get(format!("{}/dora?weeks=4", server.url)).unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let html = resp.text().unwrap();
    assert!(!html.contains("<script"), "no JavaScript");
    let svgs: Vec<&str> = html
        .match_indices("<svg")
        .map(|(start, _)| {
            let end = html[start..].find("</svg>").unwrap() + start + "</svg>".len();
            &html[start..end]
        })
        .collect();
    assert_eq!(svgs.len(), 2, "two charts");
    let deploys = roxmltree::Document::parse(svgs[0]).unwrap_or_else(|e| panic!("{e}:\n{}", svgs[0]));
    let bars: Vec<u64> = deploys
        .descendants()
        .filter(|n| n.has_tag_name("rect") && n.attribute("class") == Some("bar"))
        .map(|n| n.attribute("data-value").unwrap().parse().unwrap())
        .collect();
    // Four weeks back from now touch five weeks: the scripted history's first Monday is the
    // second of them.
    assert_eq!(bars, [0, 6, 4, 0, 0], "{}", svgs[0]);
    let failed: Vec<u64> = deploys
        .descendants()
        .filter(|n| n.has_tag_name("rect") && n.attribute("class") == Some("failed"))
        .map(|n| n.attribute("data-value").unwrap().parse().unwrap())
        .collect();
    assert_eq!(failed, [2, 2]);
    let lead = roxmltree::Document::parse(svgs[1]).unwrap_or_else(|e| panic!("{e}:\n{}", svgs[1]));
    let hours: Vec<&str> = lead
        .descendants()
        .filter(|n| n.has_tag_name("circle"))
        .map(|n| n.attribute("data-hours").unwrap())
        .collect();
    assert_eq!(hours, ["3.0", "4.5"]);

    let resp = reqwest::blocking::get(format!("{}/dora?weeks=0", server.url)).unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let dashboard = reqwest::blocking::get(format!("{}/", server.url))
        .unwrap()
        .text()
        .unwrap();
    assert!(
        dashboard.contains("href=\"/dora\""),
        "the dashboard links the page"
    );
}
