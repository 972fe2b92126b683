//! The HTML dashboard (design §9, §17): `GET /`, per app the envs in promotion order with what
//! runs there, its verification, soak, pending approvals, holds and freezes; and `GET
//! /artifacts/{id}` ([`super::artifact_page`]). Server-rendered from `templates/dashboard/`
//! with tera's HTML escaping on, so every string that came from a user (commit messages,
//! branch names, titles) is shown as text. No script.
//!
//! What it shows is read back the way everything else is: the gitops repository (what runs
//! where, the last releases), the ledger (tags, source commit messages, holds), the release
//! loop (desired releases) and GitHub (open release pull requests and their approvals). With a
//! login ([`super::login`]) each env gets the action forms of [`super::actions`].

use std::collections::BTreeMap;

use std::sync::OnceLock;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::AppState;
use super::error;
use crate::domain::EnvName;
use crate::gitops::{EnvironmentView, HistoryFilter, ReleaseView};
use crate::handlers::dashboard::Refused;
use crate::policy::{EnvPolicy, Policy};
use crate::release::{pull_request_branches, tally};

const RECENT: usize = 50;

/// The dashboard's templates, by the names they include each other with. A part of the page
/// is a template of its own, included from `dashboard/index.html`.
const TEMPLATES: [(&str, &str); 4] = [
    (
        "dashboard/base.html",
        include_str!("../../templates/dashboard/base.html.tera"),
    ),
    (
        "dashboard/index.html",
        include_str!("../../templates/dashboard/index.html.tera"),
    ),
    (
        "dashboard/artifact.html",
        include_str!("../../templates/dashboard/artifact.html.tera"),
    ),
    (
        "dashboard/message.html",
        include_str!("../../templates/dashboard/message.html.tera"),
    ),
];

/// The templates, parsed once; names ending in `.html` are HTML-escaped.
fn tera() -> Result<&'static tera::Tera, String> {
    static TERA: OnceLock<Result<tera::Tera, String>> = OnceLock::new();
    TERA.get_or_init(|| {
        let mut t = tera::Tera::default();
        t.add_raw_templates(TEMPLATES).map_err(|e| format!("{e:?}"))?;
        Ok(t)
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Renders template `name` as a page with `status`.
pub(super) fn render(status: StatusCode, name: &str, ctx: &tera::Context) -> HttpResponse {
    match tera().and_then(|t| t.render(name, ctx).map_err(|e| format!("{e:?}"))) {
        Ok(html) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
            // The pages run no script and are never framed.
            .insert_header((
                actix_web::http::header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
            ))
            .body(html),
        Err(e) => {
            tracing::error!(error = %e, template = name, "dashboard template failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "the dashboard template failed")
        }
    }
}

/// What a page about an action or a login says; worded in `message.html.tera`.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Message {
    /// Login and actions are off: no `[dashboard] oauth_client_id`.
    ReadOnly,
    NotLoggedIn,
    BadCsrf,
    BadRequest {
        error: String,
    },
    LoginFailed {
        error: String,
    },
    Failed {
        error: String,
    },
    Refused(Refused),
    Queued {
        verb: String,
        app: String,
        env: String,
        artifact: String,
    },
}

/// A page saying `message`, with `status`.
pub fn message_page(status: StatusCode, message: &Message) -> HttpResponse {
    let mut ctx = tera::Context::new();
    ctx.insert("m", message);
    ctx.insert("status", &status.as_u16());
    render(status, "dashboard/message.html", &ctx)
}

/// Who is logged in, for the page's header and forms: `(login, csrf)`; `oauth` says whether
/// login exists at all.
pub(super) fn viewer(state: &AppState, req: &HttpRequest, ctx: &mut tera::Context) {
    let session = state.login.as_ref().and_then(|l| l.session(req));
    ctx.insert("oauth", &state.login.is_some());
    ctx.insert("user", &session.as_ref().map(|s| s.login.clone()));
    ctx.insert("csrf", &session.map(|s| s.csrf).unwrap_or_default());
    ctx.insert("here", req.uri().path());
}

/// One env of an app's pipeline: what runs there and what stands in the way of the next one.
#[derive(Serialize)]
struct Stage {
    env: String,
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
    /// How long the verification still soaks, while it does ("12m").
    soak_left: String,
    /// `after = { env, soak }`: the env this one takes its artifacts from.
    after: String,
    /// Open release pull requests of this env and app, with their approvals.
    pending: Vec<Pull>,
    /// A freeze in force (design §17).
    frozen: Option<crate::release::FrozenView>,
    /// Who rejected what runs; empty when nobody did.
    rejected_by: String,
    /// What the env before it runs (its `after` env, else the previous stage), when that is
    /// another artifact: what a promotion would deploy here.
    promote: String,
    promote_short: String,
    promote_from: String,
}

/// One app: its envs in promotion order.
#[derive(Serialize)]
struct AppView {
    app: String,
    repo: String,
    stages: Vec<Stage>,
}

#[derive(Serialize, Clone)]
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

pub async fn index(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
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
    let pulls = open_pulls(&state).await;
    let apps = pipelines(&state, &git, &pulls, now);
    let html = html_urls(&state, &git).await;
    let releases = recent_releases(&git, &html);

    let mut ctx = tera::Context::new();
    ctx.insert("gitops_repo", &gitops_repo);
    ctx.insert("several_repos", &(state.gitops_repos.len() > 1));
    ctx.insert("now", &now.format("%Y-%m-%d %H:%M:%S UTC").to_string());
    ctx.insert("apps", &apps);
    ctx.insert("pulls", &pulls);
    ctx.insert("releases", &releases);
    viewer(&state, &req, &mut ctx);
    render(StatusCode::OK, "dashboard/index.html", &ctx)
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
    for p in s.policies.current().iter() {
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

/// An app's envs in promotion order: an env comes after the env its `after` gate names, and
/// otherwise in the policy's order.
pub(super) fn promotion_order(policy: &Policy) -> Vec<(&EnvName, &EnvPolicy)> {
    let mut left: Vec<(&EnvName, &EnvPolicy)> = policy.envs().collect();
    let mut out: Vec<(&EnvName, &EnvPolicy)> = Vec::with_capacity(left.len());
    while !left.is_empty() {
        let ready = left.iter().position(|(_, rules)| {
            rules.after.as_ref().is_none_or(|a| {
                out.iter().any(|(n, _)| **n == a.env) || !left.iter().any(|(n, _)| **n == a.env)
            })
        });
        // A cycle of `after` gates is refused when policies load; should one get here, the
        // rest keep the file's order rather than vanish.
        let i = ready.unwrap_or(0);
        out.push(left.remove(i));
    }
    out
}

/// Per app, one stage per env in promotion order: what runs there, whether it is held or
/// frozen, the release it waits for and the approvals that release needs.
fn pipelines(state: &AppState, git: &FromGit, pulls: &[Pull], now: DateTime<Utc>) -> Vec<AppView> {
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
    let stage = |p: &Policy, env: &EnvName, rules: &EnvPolicy| {
        let key = format!("{env}/{}", p.app());
        let live = git.envs.iter().find(|v| v.env == *env && v.app == *p.app());
        let hold = git.holds.get(&key);
        let facts = live.and_then(|v| git.facts.get(&v.artifact.to_string()));
        let verification = git.verifications.get(&key);
        Stage {
            env: env.to_string(),
            artifact: live.map(|v| v.artifact.to_string()),
            short_sha: live
                .map(|v| v.artifact.sha_prefix().to_owned())
                .unwrap_or_default(),
            tags: facts.map(|f| f.tags.clone()).unwrap_or_default(),
            age: live.map(|v| age(now, v.since)).unwrap_or_default(),
            released_by: live.map(|v| v.released_by.to_string()).unwrap_or_default(),
            held: hold.is_some(),
            hold_reason: hold.map(|h| h.0.clone()).unwrap_or_default(),
            hold_by: hold.map(|h| h.1.clone()).unwrap_or_default(),
            waiting: waiting.get(&key).cloned().unwrap_or_default(),
            verify: verification.map(|c| c.state.to_string()).unwrap_or_default(),
            verify_detail: verification
                .and_then(|c| c.message.clone().filter(|_| c.state.is_failure()))
                .unwrap_or_default(),
            soak_left: verification
                .and_then(|c| c.soak_until)
                .filter(|until| *until > now)
                .map(|until| age(until, now))
                .unwrap_or_default(),
            after: rules
                .after
                .as_ref()
                .map(|a| {
                    if a.soak.is_zero() {
                        format!("after {}", a.env)
                    } else {
                        format!("after {}, soak {}", a.env, humantime::format_duration(a.soak))
                    }
                })
                .unwrap_or_default(),
            pending: pulls
                .iter()
                .filter(|pr| pr.env == env.as_str() && pr.app == p.app().as_str())
                .cloned()
                .collect(),
            frozen: git.frozen.get(&key).cloned(),
            rejected_by: facts.and_then(|f| f.rejected_by.clone()).unwrap_or_default(),
            promote: String::new(),
            promote_short: String::new(),
            promote_from: rules
                .after
                .as_ref()
                .map(|a| a.env.to_string())
                .unwrap_or_default(),
        }
    };
    // Upstream of each stage: its `after` env, else the stage before it.
    let promotions = |mut stages: Vec<Stage>| {
        for i in 0..stages.len() {
            if stages[i].promote_from.is_empty() && i > 0 {
                stages[i].promote_from = stages[i - 1].env.clone();
            }
            let upstream = stages
                .iter()
                .find(|s| s.env == stages[i].promote_from)
                .and_then(|s| s.artifact.clone().map(|a| (a, s.short_sha.clone())));
            if let Some((artifact, short)) = upstream
                && stages[i].artifact.as_ref() != Some(&artifact)
            {
                stages[i].promote = artifact;
                stages[i].promote_short = short;
            }
        }
        stages
    };
    state
        .policies
        .current()
        .iter()
        .map(|p| AppView {
            app: p.app().to_string(),
            repo: p.repo().to_string(),
            stages: promotions(
                promotion_order(p)
                    .into_iter()
                    .map(|(env, rules)| stage(p, env, rules))
                    .collect(),
            ),
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
    for (p, env, rules, branch) in pull_request_branches(&state.policies.current()) {
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
pub(super) fn age(now: DateTime<Utc>, since: DateTime<Utc>) -> String {
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
