//! `GET /`: the HTML dashboard (design §9). Server-rendered from
//! `templates/dashboard/index.html.tera` with tera's HTML escaping on, so every string that
//! came from a user (commit messages, branch names, titles) is shown as text. No script.
//!
//! What it shows is read back the way everything else is: the gitops repository (what runs
//! where, the last releases), the ledger (tags, source commit messages, holds), the release
//! loop (desired releases) and GitHub (open release pull requests and their approvals).

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::AppState;
use super::error;
use crate::gitops::{EnvironmentView, HistoryFilter, ReleaseView};
use crate::policy::{Policy, PolicySet};
use crate::release::{pull_request_branches, tally};

const TEMPLATE: &str = include_str!("../../templates/dashboard/index.html.tera");
const RECENT: usize = 50;

#[derive(Serialize)]
struct Cell {
    env: String,
    configured: bool,
    artifact: Option<String>,
    short_sha: String,
    tags: Vec<String>,
    age: String,
    released_by: String,
    held: bool,
    hold_reason: String,
    hold_by: String,
    waiting: String,
    /// Verification state of what runs (design §15), for envs that verify.
    verify: String,
    verify_detail: String,
    /// A freeze in force (design §17).
    frozen: Option<crate::release::FrozenView>,
    /// Who rejected what runs; empty when nobody did.
    rejected_by: String,
}

#[derive(Serialize)]
struct Row {
    app: String,
    cells: Vec<Cell>,
}

#[derive(Serialize)]
struct Pull {
    number: u64,
    url: String,
    title: String,
    env: String,
    app: String,
    approvals: usize,
    required: u32,
}

#[derive(Serialize)]
struct Release {
    time: String,
    env: String,
    app: String,
    artifact: String,
    rollback: bool,
    superseded: bool,
    source_url: String,
    source_short: String,
    source_message: String,
    branches: Vec<String>,
    trigger: String,
    commit: String,
    commit_short: String,
    gitops_url: String,
    /// The gitops repository the release is in (shown when there are several).
    gitops_repo: String,
}

/// The ledger's facts about an artifact that the page shows.
#[derive(Clone, Default)]
struct ArtifactFacts {
    tags: Vec<String>,
    branches: Vec<String>,
    /// The first line of the source commit's message.
    headline: String,
    /// Who rejected it (design §17), if anybody did.
    rejected_by: Option<String>,
}

/// What the page reads from git (blocking work, done off the HTTP thread).
struct FromGit {
    envs: Vec<EnvironmentView>,
    releases: Vec<ReleaseView>,
    /// Per artifact id shown anywhere on the page.
    facts: BTreeMap<String, ArtifactFacts>,
    /// Per "env/app": (reason, by) of a hold.
    holds: BTreeMap<String, (String, String)>,
    /// Per "env/app": the verification of what runs, for envs that verify.
    verifications: BTreeMap<String, crate::verify::current::CurrentRelease>,
    /// Per "env/app": the freeze in force.
    frozen: BTreeMap<String, crate::release::FrozenView>,
}

pub async fn index(state: web::Data<AppState>) -> HttpResponse {
    let s = state.clone();
    let git = match web::block(move || read_git(&s)).await {
        Ok(Ok(g)) => g,
        Ok(Err((status, why))) => return error(status, why),
        Err(_) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "reading the dashboard's data failed",
            );
        }
    };
    let now = Utc::now();
    let gitops_repo = state
        .gitops_repos
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let envs = env_columns(&state.policies);
    let rows = matrix(&state, &git, &envs, now);
    let pulls = open_pulls(&state).await;
    let html = html_urls(&state, &git).await;
    let releases = recent_releases(&git, &html);

    let mut ctx = tera::Context::new();
    ctx.insert("gitops_repo", &gitops_repo);
    ctx.insert("several_repos", &(state.gitops_repos.len() > 1));
    ctx.insert("now", &now.format("%Y-%m-%d %H:%M:%S UTC").to_string());
    ctx.insert("envs", &envs);
    ctx.insert("rows", &rows);
    ctx.insert("pulls", &pulls);
    ctx.insert("releases", &releases);
    match tera::Tera::one_off(TEMPLATE, &ctx, true) {
        Ok(html) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(html),
        Err(e) => {
            tracing::error!(error = %e, "dashboard template failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "the dashboard template failed")
        }
    }
}

fn read_git(s: &AppState) -> Result<FromGit, (StatusCode, String)> {
    let repo = super::fresh_gitops(s)?;
    let internal = |e: &dyn std::fmt::Display| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    let envs = repo.environments().map_err(|e| internal(&e))?;
    let releases = repo
        .release_views(&HistoryFilter {
            limit: Some(RECENT),
            ..HistoryFilter::default()
        })
        .map_err(|e| internal(&e))?;
    let mut facts = BTreeMap::new();
    let ids = envs
        .iter()
        .map(|e| &e.artifact)
        .chain(releases.iter().map(|r| &r.artifact));
    for id in ids {
        let key = id.to_string();
        if facts.contains_key(&key) {
            continue;
        }
        // An artifact the ledger no longer has (or cannot read) is shown without its facts.
        if let Ok(Some(a)) = s.store.get_by_id(id) {
            let headline = a.message.as_deref().and_then(|m| m.lines().next()).unwrap_or("");
            facts.insert(
                key,
                ArtifactFacts {
                    tags: a.tags.iter().map(|t| t.to_string()).collect(),
                    branches: a.branches.iter().map(|b| b.to_string()).collect(),
                    headline: headline.to_owned(),
                    rejected_by: a.rejected.map(|r| r.by),
                },
            );
        }
    }
    let holds = s
        .store
        .holds()
        .map_err(|e| internal(&e))?
        .into_iter()
        .map(|(env, app, h)| (format!("{env}/{app}"), (h.reason, h.by)))
        .collect();
    let now = Utc::now();
    let (mut frozen, mut verifications) = (BTreeMap::new(), BTreeMap::new());
    for p in s.policies.iter() {
        for (env, rules) in p.envs() {
            let key = format!("{env}/{}", p.app());
            let by_hand = s.store.freeze_state(env, p.app()).ok().flatten();
            if let Some(f) = crate::release::frozen_at(rules, by_hand.as_ref(), now) {
                frozen.insert(key.clone(), f.view());
            }
            if rules.verify.is_some()
                && let Ok(Some(c)) = crate::verify::current::current(&s.store, env, p.app(), true)
            {
                verifications.insert(key, c);
            }
        }
    }
    Ok(FromGit {
        envs,
        releases,
        facts,
        holds,
        verifications,
        frozen,
    })
}

/// The columns: every environment a policy names, in the policies' order.
fn env_columns(policies: &PolicySet) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for p in policies.iter() {
        for (env, _) in p.envs() {
            if !names.iter().any(|e| e == env.as_str()) {
                names.push(env.to_string());
            }
        }
    }
    names
}

/// One row per app, one cell per environment: what runs there, and whether it is held or has a
/// release waiting.
fn matrix(state: &AppState, git: &FromGit, envs: &[String], now: DateTime<Utc>) -> Vec<Row> {
    // Per "env/app": the waiting artifact and why it waits.
    let waiting: BTreeMap<String, String> = state
        .releases
        .running()
        .map(|r| {
            r.desired()
                .into_iter()
                .map(|w| {
                    (
                        format!("{}/{}", w.plan.env, w.plan.app),
                        format!("{} ({})", w.plan.artifact, w.reason),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let cell = |p: &Policy, env: &String| {
        let key = format!("{env}/{}", p.app());
        let live = git
            .envs
            .iter()
            .find(|v| v.env.as_str() == env && v.app == *p.app());
        let hold = git.holds.get(&key);
        let tags = live
            .and_then(|v| git.facts.get(&v.artifact.to_string()))
            .map(|f| f.tags.clone())
            .unwrap_or_default();
        Cell {
            env: env.clone(),
            configured: p.envs().any(|(n, _)| n.as_str() == env),
            artifact: live.map(|v| v.artifact.to_string()),
            short_sha: live
                .map(|v| v.artifact.sha_prefix().to_owned())
                .unwrap_or_default(),
            tags,
            age: live.map(|v| age(now, v.since)).unwrap_or_default(),
            released_by: live.map(|v| v.released_by.to_string()).unwrap_or_default(),
            held: hold.is_some(),
            hold_reason: hold.map(|h| h.0.clone()).unwrap_or_default(),
            hold_by: hold.map(|h| h.1.clone()).unwrap_or_default(),
            waiting: waiting.get(&key).cloned().unwrap_or_default(),
            verify: git
                .verifications
                .get(&key)
                .map(|c| c.state.to_string())
                .unwrap_or_default(),
            verify_detail: git
                .verifications
                .get(&key)
                .map(|c| match (&c.message, c.soak_until) {
                    (Some(m), _) if c.state.is_failure() => m.clone(),
                    (_, Some(until)) => format!("soaking until {}", until.format("%H:%M:%S UTC")),
                    _ => String::new(),
                })
                .unwrap_or_default(),
            frozen: git.frozen.get(&key).cloned(),
            rejected_by: live
                .and_then(|v| git.facts.get(&v.artifact.to_string()))
                .and_then(|f| f.rejected_by.clone())
                .unwrap_or_default(),
        }
    };
    state
        .policies
        .iter()
        .map(|p| Row {
            app: p.app().to_string(),
            cells: envs.iter().map(|env| cell(p, env)).collect(),
        })
        .collect()
}

/// Where GitHub shows each repository the releases name (their `html_url`, asked once each);
/// a repository GitHub does not answer for gets no links.
async fn html_urls(state: &AppState, git: &FromGit) -> BTreeMap<String, String> {
    let mut repos: Vec<crate::domain::RepoName> =
        git.releases.iter().map(|r| r.source_repo.clone()).collect();
    repos.extend(state.gitops_repos.iter().cloned());
    repos.sort();
    repos.dedup();
    let mut out = BTreeMap::new();
    if !state.forge.configured() {
        return out;
    }
    for repo in repos {
        if let Ok(url) = state.forge.repo_html_url(&repo).await {
            out.insert(repo.to_string(), url);
        }
    }
    out
}

/// The last releases, newest first, with links to the source and gitops commits.
fn recent_releases(git: &FromGit, html: &BTreeMap<String, String>) -> Vec<Release> {
    let commit_url = |repo: &str, sha: &dyn std::fmt::Display| {
        html.get(repo)
            .map(|base| format!("{base}/commit/{sha}"))
            .unwrap_or_default()
    };
    git.releases
        .iter()
        .map(|r| {
            let facts = git
                .facts
                .get(&r.artifact.to_string())
                .cloned()
                .unwrap_or_default();
            Release {
                time: r.time.format("%Y-%m-%d %H:%M UTC").to_string(),
                env: r.env.to_string(),
                app: r.app.to_string(),
                artifact: r.artifact.to_string(),
                rollback: r.rollback,
                superseded: r.superseded,
                source_url: commit_url(r.source_repo.as_str(), &r.source_sha),
                source_short: r.source_sha.short(12).to_owned(),
                source_message: facts.headline,
                branches: facts.branches,
                trigger: r.trigger.to_string(),
                commit: r.commit.to_string(),
                commit_short: r.commit.short(12).to_owned(),
                gitops_url: r
                    .gitops_repo
                    .as_ref()
                    .map(|repo| commit_url(repo.as_str(), &r.commit))
                    .unwrap_or_default(),
                gitops_repo: r.gitops_repo.as_ref().map(|g| g.to_string()).unwrap_or_default(),
            }
        })
        .collect()
}

/// Open release pull requests and their approvals on the current head, from GitHub. A GitHub
/// error leaves a pull request out rather than failing the page.
async fn open_pulls(state: &AppState) -> Vec<Pull> {
    let (forge, Some(gitops)) = (&state.forge, &state.gitops) else {
        return Vec::new();
    };
    if !forge.configured() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (p, env, rules, branch) in pull_request_branches(&state.policies) {
        let repo = &gitops.for_env(env, p.app()).repo;
        let Ok(Some(pr)) = forge.find_open_pull(repo, &branch).await else {
            continue;
        };
        // The loop's own count, without its approver and author filters: what GitHub shows.
        let approvals = match forge.list_reviews(repo, pr.number).await {
            Ok(reviews) => tally(&reviews, &pr.head.sha, None, |_| true).approved_by.len(),
            Err(_) => 0,
        };
        out.push(Pull {
            number: pr.number,
            url: pr.html_url.clone(),
            title: pr.title.clone(),
            env: env.to_string(),
            app: p.app().to_string(),
            approvals,
            required: rules.required_approvals(),
        });
    }
    out
}

/// "42s", "5m", "3h", "2d".
fn age(now: DateTime<Utc>, since: DateTime<Utc>) -> String {
    let s = (now - since).num_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_people_say_them() {
        let t = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let at = |secs| age(t + chrono::Duration::seconds(secs), t);
        assert_eq!(
            [at(5), at(300), at(7200), at(200_000), at(-3)],
            ["5s", "5m", "2h", "2d", "0s"]
        );
    }
}
