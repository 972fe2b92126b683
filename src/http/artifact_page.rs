//! `GET /artifacts/{id}`: one artifact on the dashboard (design §17): the ledger's facts about
//! it, where it ran (the gitops history's releases of it, and where it runs now), and its
//! changelog: the builds the ledger recorded on its branch since the artifact it replaced.
//!
//! "The artifact it replaced" is the one before it in the first env (in promotion order) that
//! ran it; for an artifact that never ran, what the first env runs now, which deploying it
//! would replace. Everything comes from the ledger's records; GitHub is asked only where it
//! shows a repository, for links.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde::Serialize;

use super::AppState;
use super::dashboard::{Message, message_page, promotion_order, render, viewer};
use crate::artifact::{Artifact, ArtifactId, ArtifactStore};
use crate::domain::{CommitSha, EnvName};
use crate::gitops::{HistoryFilter, ReleaseView};
use crate::policy::Policy;

/// At most this many builds in a changelog.
const CHANGELOG_MAX: usize = 50;
/// How far back the gitops history and the env logs are read for "where it ran".
const HISTORY_MAX: usize = 1000;

#[derive(Serialize)]
struct Facts {
    id: String,
    app: String,
    repo: String,
    sha: String,
    commit_url: String,
    branches: Vec<String>,
    tags: Vec<String>,
    pull_requests: Vec<u64>,
    author: String,
    message: String,
    url: String,
    created: String,
    source: String,
    source_url: String,
    vars: Vec<(String, String)>,
    rejected: Option<crate::artifact::Rejection>,
}

#[derive(Serialize)]
struct RunsNow {
    env: String,
    state: String,
}

#[derive(Serialize)]
struct Ran {
    time: String,
    env: String,
    trigger: String,
    rollback: bool,
    superseded: bool,
    commit_short: String,
    gitops_url: String,
}

#[derive(Serialize)]
struct Change {
    id: String,
    short_sha: String,
    headline: String,
    author: String,
    pull_requests: Vec<u64>,
    tags: Vec<String>,
    commit_url: String,
}

#[derive(Serialize, Default)]
struct Changelog {
    /// The artifact compared with; empty when there is none.
    previous: String,
    /// The env whose history named `previous`.
    previous_env: String,
    /// The branch the builds were read along.
    branch: String,
    changes: Vec<Change>,
    /// The previous artifact is not in the branch's build history (another branch, or more
    /// than [`CHANGELOG_MAX`] builds back): the list stops there.
    incomplete: bool,
}

/// What the page reads from the ledger and the gitops repository (blocking work).
struct Read {
    artifact: Artifact,
    runs_now: Vec<RunsNow>,
    ran: Vec<ReleaseView>,
    changelog: Changelog,
    changes: Vec<Artifact>,
}

pub async fn page(state: web::Data<AppState>, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let id: ArtifactId = match path.parse() {
        Ok(id) => id,
        Err(e) => {
            return message_page(
                StatusCode::BAD_REQUEST,
                &Message::BadRequest { error: e.to_string() },
            );
        }
    };
    let Some(policy) = state.policies.current().get(id.app()).cloned() else {
        return message_page(
            StatusCode::NOT_FOUND,
            &Message::BadRequest {
                error: format!("no policy for app {}", id.app()),
            },
        );
    };
    let s = state.clone();
    let lookup = id.clone();
    let read = match web::block(move || read(&s, &policy, &lookup)).await {
        Ok(Ok(Some(r))) => r,
        Ok(Ok(None)) => {
            return message_page(
                StatusCode::NOT_FOUND,
                &Message::BadRequest {
                    error: format!("no artifact {id} in the ledger"),
                },
            );
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "reading an artifact for the dashboard failed");
            return message_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                &Message::Failed {
                    error: "reading the ledger failed".into(),
                },
            );
        }
        Err(_) => {
            return message_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                &Message::Failed {
                    error: "reading the ledger failed".into(),
                },
            );
        }
    };
    let source_base = html_url(&state, read.artifact.repo.as_str()).await;
    // Each release links into the gitops repository it was written to.
    let mut gitops_bases = std::collections::BTreeMap::new();
    for repo in &state.gitops_repos {
        gitops_bases.insert(repo.to_string(), html_url(&state, repo.as_str()).await);
    }
    let gitops_base = |repo: Option<&crate::domain::RepoName>| {
        repo.or(state.gitops_repos.first())
            .and_then(|r| gitops_bases.get(r.as_str()))
            .cloned()
            .unwrap_or_default()
    };
    let commit_url = |base: &str, sha: &dyn std::fmt::Display| {
        if base.is_empty() {
            String::new()
        } else {
            format!("{base}/commit/{sha}")
        }
    };
    let a = &read.artifact;
    let facts = Facts {
        id: a.id.to_string(),
        app: a.app.to_string(),
        repo: a.repo.to_string(),
        sha: a.sha.to_string(),
        commit_url: commit_url(&source_base, &a.sha),
        branches: a.branches.iter().map(ToString::to_string).collect(),
        tags: a.tags.iter().map(ToString::to_string).collect(),
        pull_requests: a.pull_requests.clone(),
        author: a.author.clone().unwrap_or_default(),
        message: a.message.clone().unwrap_or_default(),
        url: a.url.clone().filter(|u| is_http(u)).unwrap_or_default(),
        created: a.created.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        source: format!("{} {}", a.source.kind, a.source.name),
        source_url: a
            .source
            .target_url
            .clone()
            .filter(|u| is_http(u))
            .unwrap_or_default(),
        vars: a.vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        rejected: a.rejected.clone(),
    };
    let ran: Vec<Ran> = read
        .ran
        .iter()
        .map(|r| Ran {
            time: r.time.format("%Y-%m-%d %H:%M UTC").to_string(),
            env: r.env.to_string(),
            trigger: r.trigger.to_string(),
            rollback: r.rollback,
            superseded: r.superseded,
            commit_short: r.commit.short(12).to_owned(),
            gitops_url: commit_url(&gitops_base(r.gitops_repo.as_ref()), &r.commit),
        })
        .collect();
    let mut changelog = read.changelog;
    changelog.changes = read
        .changes
        .iter()
        .map(|c| Change {
            id: c.id.to_string(),
            short_sha: c.sha.short(12).to_owned(),
            headline: c
                .message
                .as_deref()
                .and_then(|m| m.lines().next())
                .unwrap_or("")
                .to_owned(),
            author: c.author.clone().unwrap_or_default(),
            pull_requests: c.pull_requests.clone(),
            tags: c.tags.iter().map(ToString::to_string).collect(),
            commit_url: commit_url(&source_base, &c.sha),
        })
        .collect();
    let envs: Vec<String> = state
        .policies
        .current()
        .get(id.app())
        .map(|p| {
            promotion_order(p)
                .into_iter()
                .map(|(e, _)| e.to_string())
                .collect()
        })
        .unwrap_or_default();
    let mut ctx = tera::Context::new();
    ctx.insert("a", &facts);
    ctx.insert("runs_now", &read.runs_now);
    ctx.insert("ran", &ran);
    ctx.insert("changelog", &changelog);
    ctx.insert("envs", &envs);
    ctx.insert("now", &Utc::now().format("%Y-%m-%d %H:%M:%S UTC").to_string());
    viewer(&state, &req, &mut ctx);
    render(StatusCode::OK, "dashboard/artifact.html", &ctx)
}

/// Only http(s) links become `href`s: a `javascript:` URL in a record must not be one.
fn is_http(u: &str) -> bool {
    u.starts_with("https://") || u.starts_with("http://")
}

async fn html_url(state: &AppState, repo: &str) -> String {
    let Ok(repo) = crate::domain::RepoName::new(repo) else {
        return String::new();
    };
    if !state.forge.configured() {
        return String::new();
    }
    state.forge.repo_html_url(&repo).await.unwrap_or_default()
}

fn read(state: &AppState, policy: &Policy, id: &ArtifactId) -> anyhow::Result<Option<Read>> {
    let store = &state.store;
    let Some(artifact) = store.get_by_id(id)? else {
        return Ok(None);
    };
    let app = policy.app();
    let order: Vec<EnvName> = promotion_order(policy)
        .into_iter()
        .map(|(e, _)| e.clone())
        .collect();
    let mut runs_now = Vec::new();
    for env in &order {
        if store.released(env, app)?.is_some_and(|a| a.id == artifact.id) {
            let verifies = policy.env(env).is_some_and(|r| r.verify.is_some());
            let state = crate::verify::current::current(store, env, app, verifies)?
                .map(|c| c.state.to_string())
                .unwrap_or_default();
            runs_now.push(RunsNow {
                env: env.to_string(),
                state,
            });
        }
    }
    // Where it ran: the gitops history; without a readable gitops repository, none.
    let ran = match super::fresh_gitops(state) {
        Ok(repo) => repo
            .release_views(&HistoryFilter {
                env: None,
                app: Some(app.clone()),
                limit: Some(HISTORY_MAX),
            })?
            .into_iter()
            .filter(|r| r.artifact == artifact.id)
            .collect(),
        Err(_) => Vec::new(),
    };
    let (changelog, changes) = changelog(store, &order, &artifact)?;
    Ok(Some(Read {
        artifact,
        runs_now,
        ran,
        changelog,
        changes,
    }))
}

/// The artifact `artifact` replaced (or would replace) and the builds between the two.
fn changelog(
    store: &ArtifactStore,
    order: &[EnvName],
    artifact: &Artifact,
) -> anyhow::Result<(Changelog, Vec<Artifact>)> {
    let app = &artifact.app;
    let mut previous: Option<(Artifact, &EnvName)> = None;
    for env in order {
        let history = store.release_history(env, app, HISTORY_MAX)?;
        if let Some(i) = history.iter().position(|a| a.id == artifact.id) {
            previous = history
                .into_iter()
                .skip(i + 1)
                .find(|a| a.id != artifact.id)
                .map(|a| (a, env));
            break;
        }
    }
    if previous.is_none()
        && let Some(first) = order.first()
        && let Some(live) = store.released(first, app)?
        && live.id != artifact.id
    {
        previous = Some((live, first));
    }
    let mut log = Changelog {
        previous: previous
            .as_ref()
            .map(|(a, _)| a.id.to_string())
            .unwrap_or_default(),
        previous_env: previous.as_ref().map(|(_, e)| e.to_string()).unwrap_or_default(),
        ..Changelog::default()
    };
    let Some(branch) = artifact.branches.first() else {
        return Ok((log, vec![artifact.clone()]));
    };
    log.branch = branch.to_string();
    let shas: Vec<CommitSha> = store.branch_history(app, branch, 5 * HISTORY_MAX)?;
    let Some(start) = shas.iter().position(|s| *s == artifact.sha) else {
        return Ok((log, vec![artifact.clone()]));
    };
    let stop = previous.as_ref().map(|(a, _)| a.sha.clone());
    let mut changes = Vec::new();
    let mut reached = stop.is_none();
    for sha in shas.into_iter().skip(start) {
        if Some(&sha) == stop.as_ref() {
            reached = true;
            break;
        }
        if changes.len() == CHANGELOG_MAX {
            break;
        }
        if let Some(a) = store.get(app, &sha)? {
            changes.push(a);
        }
    }
    // Without a previous artifact, every build back to the branch's first is new.
    log.incomplete = !reached;
    Ok((log, changes))
}
