//! Release history read back from the gitops repository: `auger release list` and the
//! `/api/v1/releases` and `/api/v1/environments` routes, against a bare repository reached
//! through a `file://` URL, checked against `git log` of that repository.

use std::path::{Path, PathBuf};

use crate::support::Setup;
use crate::support::cli::{auger, stderr, stdout};
use crate::support::data::api_artifact;
use crate::support::git::git_checked;
use crate::support::remote::bare;
use auger::artifact::Artifact;
use auger::domain::{BranchName, EnvName};
use auger::gitops::{GitopsRepo, ReleaseInfo, ReleaseSpec, Target, Trigger, WriteOutcome};
use serde_json::Value;

/// A bare remote holding four direct releases, oldest first: web v1 and v2 to staging, api to
/// production, then a rollback of web in staging to v1.
struct Gitops {
    _dir: tempfile::TempDir,
    bare: PathBuf,
    url: String,
    /// Commit ids of the four releases, oldest first.
    commits: Vec<String>,
    web_v1: Artifact,
}

impl Gitops {
    fn new() -> Gitops {
        let dir = tempfile::tempdir().unwrap();
        let (bare, url) = bare(dir.path(), "gitops.git");
        let repo = GitopsRepo::open(
            &dir.path().join("writer-cache"),
            &url,
            BranchName::new("main").unwrap(),
        )
        .unwrap();
        let web_v1 = api_artifact("web", 1);
        let web_v2 = api_artifact("web", 2);
        let api_v1 = api_artifact("api", 3);
        let mut rollback = ReleaseInfo::new(
            EnvName::new("staging").unwrap(),
            web_v1.app.clone(),
            &web_v1,
            Trigger::Rollback("alice".into()),
        );
        rollback.rollback_to = Some(web_v1.id.clone());
        let releases = [
            ("staging", &web_v1, None),
            ("staging", &web_v2, None),
            ("production", &api_v1, None),
            ("staging", &web_v1, Some(rollback)),
        ];
        let mut commits = Vec::new();
        for (env, a, info) in releases {
            let env = EnvName::new(env).unwrap();
            let release =
                info.unwrap_or_else(|| ReleaseInfo::new(env.clone(), a.app.clone(), a, Trigger::Policy));
            let spec = ReleaseSpec {
                env: env.clone(),
                app: a.app.clone(),
                files: [(
                    "deployment.yaml".to_string(),
                    format!("image: {}\n", a.sha).into_bytes(),
                )]
                .into_iter()
                .collect(),
                message: format!("release {} to {env}", a.id),
                release,
                extra_trailers: Vec::new(),
                target: Target::Branch,
            };
            match repo.prepare_release(&spec).unwrap() {
                WriteOutcome::Committed { commit, .. } => commits.push(commit.to_string()),
                other => panic!("expected a commit, got {other:?}"),
            }
        }
        Gitops {
            _dir: dir,
            bare,
            url,
            commits,
            web_v1,
        }
    }

    fn gitops_section(&self) -> String {
        format!(
            "[gitops]\nrepo = \"acme/gitops\"\nurl = \"{}\"\nbranch = \"main\"\n",
            self.url
        )
    }

    /// `git log` of the remote's gitops branch, newest first.
    fn log(&self) -> Vec<String> {
        git_checked(&self.bare, &["log", "--format=%H", "main"])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn newest_first(&self) -> Vec<String> {
        self.commits.iter().rev().cloned().collect()
    }
}

fn config(dir: &Path, gitops: &str) -> PathBuf {
    let file = dir.join("auger.toml");
    std::fs::write(&file, format!("[server]\ndata_dir = \"data\"\n{gitops}")).unwrap();
    file
}

fn list_json(config: &Path, filters: &[&str]) -> Vec<Value> {
    let mut args = vec!["release", "list", "--json", "--config", config.to_str().unwrap()];
    args.extend_from_slice(filters);
    let out = auger(config.parent().unwrap(), &args);
    assert!(
        out.status.success(),
        "release list {filters:?} failed: {}",
        stderr(&out)
    );
    serde_json::from_str(&stdout(&out)).unwrap()
}

fn commits(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|v| v["commit"].as_str().unwrap().to_owned())
        .collect()
}

/// The history with a config naming its gitops repository; the temp folder lives as long.
fn configured() -> (Gitops, tempfile::TempDir, PathBuf) {
    let gitops = Gitops::new();
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &gitops.gitops_section());
    (gitops, dir, config)
}

#[test]
fn release_list_reads_the_gitops_log_newest_first_with_audit_markers() {
    let (gitops, _dir, config) = configured();

    let all = list_json(&config, &[]);
    assert_eq!(commits(&all), gitops.log(), "the list agrees with git log");
    assert_eq!(commits(&all), gitops.newest_first());
    let marks: Vec<(&str, &str, bool, bool)> = all
        .iter()
        .map(|v| {
            (
                v["env"].as_str().unwrap(),
                v["app"].as_str().unwrap(),
                v["superseded"].as_bool().unwrap(),
                v["rollback"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        marks,
        [
            ("staging", "web", false, true),
            ("production", "api", false, false),
            ("staging", "web", true, false),
            ("staging", "web", true, false),
        ]
    );
    let newest = &all[0];
    assert_eq!(newest["artifact"], gitops.web_v1.id.to_string());
    assert_eq!(newest["rollback_to"], gitops.web_v1.id.to_string());
    assert_eq!(newest["trigger"], "rollback @alice");
    assert_eq!(newest["source_repo"], "acme/web");
    assert_eq!(newest["source_sha"], gitops.web_v1.sha.to_string());
    assert_eq!(all[1]["trigger"], "policy");
    assert!(all[1]["rollback_to"].is_null());
    assert!(newest["time"].as_str().unwrap().contains('T'), "RFC 3339 time");
}

#[test]
fn release_list_filters_by_env_and_app() {
    let (gitops, _dir, config) = configured();
    let c = gitops.newest_first();
    let staging = list_json(&config, &["--env", "staging"]);
    assert_eq!(commits(&staging), [c[0].clone(), c[2].clone(), c[3].clone()]);
    let api = list_json(&config, &["--app", "api"]);
    assert_eq!(commits(&api), [c[1].clone()]);
    assert!(list_json(&config, &["--env", "production", "--app", "web"]).is_empty());
}

#[test]
fn release_list_prints_a_table_newest_first_with_the_markers() {
    let (gitops, _dir, config) = configured();
    let c = gitops.newest_first();
    let out = auger(
        config.parent().unwrap(),
        &["release", "list", "--config", config.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    assert!(lines[0].contains("rollback @alice") && lines[0].ends_with("rollback"));
    assert!(lines[0].contains(&c[0][..12]));
    assert!(lines[2].ends_with("superseded"));
    assert!(lines[1].contains("production") && lines[1].contains("api@"));
}

#[test]
fn release_list_refuses_a_bad_filter_as_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "");
    // Exit 2, before anything is read: this config names no gitops repository at all.
    let out = auger(
        dir.path(),
        &[
            "release",
            "list",
            "--env",
            "Bad",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn release_list_without_a_gitops_section_names_the_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "");
    let out = auger(
        dir.path(),
        &["release", "list", "--config", config.to_str().unwrap()],
    );
    assert!(!out.status.success());
    let stderr = stderr(&out);
    assert!(
        stderr.contains("auger.toml") && stderr.contains("gitops"),
        "{stderr}"
    );
}

fn json(resp: (u16, String)) -> (u16, Value) {
    (resp.0, serde_json::from_str(&resp.1).unwrap())
}

#[test]
fn the_api_serves_the_same_history_and_what_runs_where() {
    let gitops = Gitops::new();
    let setup = Setup::new(
        &[("web", "acme/web", "\"status:default\"")],
        &gitops.gitops_section(),
    );
    let server = setup.start();
    let c = gitops.newest_first();

    let (status, all) = json(server.get("/api/v1/releases"));
    assert_eq!(status, 200, "{all}");
    let all = all.as_array().unwrap();
    assert_eq!(commits(all), gitops.log());

    let (status, staging) = json(server.get("/api/v1/releases?env=staging"));
    assert_eq!(status, 200);
    let staging = staging.as_array().unwrap();
    assert_eq!(commits(staging), [c[0].clone(), c[2].clone(), c[3].clone()]);
    assert_eq!(staging[0]["rollback"], true);
    assert_eq!(staging[1]["superseded"], true);

    let (_, limited) = json(server.get("/api/v1/releases?app=web&limit=1"));
    assert_eq!(commits(limited.as_array().unwrap()), [c[0].clone()]);

    let (status, envs) = json(server.get("/api/v1/environments"));
    assert_eq!(status, 200, "{envs}");
    let pairs: Vec<(&str, &str, &str, &str)> = envs
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["env"].as_str().unwrap(),
                e["app"].as_str().unwrap(),
                e["commit"].as_str().unwrap(),
                e["released_by"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        [
            ("production", "api", c[1].as_str(), "policy"),
            ("staging", "web", c[0].as_str(), "rollback @alice"),
        ]
    );
    assert_eq!(envs[1]["artifact"], gitops.web_v1.id.to_string());
    assert_eq!(envs[1]["since"], all[0]["time"]);
    assert_eq!(
        envs[1]["on_hold"], false,
        "read from the ledger: nothing was held"
    );
    assert_eq!(envs[1]["pending_prs"], serde_json::json!([]));

    for bad in [
        "/api/v1/releases?env=Bad",
        "/api/v1/releases?app=../x",
        "/api/v1/releases?limit=0",
        "/api/v1/releases?limit=lots",
    ] {
        let (status, body) = json(server.get(bad));
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"].is_string());
    }
    for path in ["/api/v1/releases", "/api/v1/environments"] {
        let resp = reqwest::blocking::get(format!("{}{path}", server.url)).unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{path}");
    }
}

#[test]
fn the_history_routes_say_when_no_gitops_repository_is_configured() {
    let setup = Setup::new(&[("web", "acme/web", "\"status:default\"")], "");
    let server = setup.start();
    for path in ["/api/v1/releases", "/api/v1/environments"] {
        let (status, body) = json(server.get(path));
        assert_eq!(status, 409, "{path}");
        assert!(body["error"].as_str().unwrap().contains("gitops"), "{body}");
    }
}
