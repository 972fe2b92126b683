//! PR comment commands (design §8): the parser ([`crate::command`]) says what was asked; this
//! handler decides whether the author may, runs it through the release loop with one
//! `command_<verb>` per command, and answers in one reply comment that is edited in place.
//!
//! Rules: bots never command (the edge drops them) and auger ignores itself. auger reacts 👀
//! when it takes a command. Authority is re-read from GitHub at execution time (permission,
//! team membership, the user's numeric id), never taken from the payload. A pull request from
//! a fork never deploys. Refusals say why. A replayed delivery finds its reply (by a hidden
//! marker naming the comment it answers) and does not run twice.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::artifact::{ArtifactId, HoldState};
use crate::command::{
    Command, ParseOutcome, RollbackTarget, ShaPrefix, error_reply, help_text, parse_comment,
};
use crate::domain::{AppName, CommitSha, EnvName, RepoName};
use crate::forge::{CommentId, Reaction};
use crate::gitops::Trigger;
use crate::notify::reply::render_markdown;
use crate::notify::{ReplyRef, ReplyText, answer_marker, render_reply};
use crate::policy::{Policy, Principal};
use crate::release::{Plan, ReleaseOutcome, Releaser};
use crate::work::PullRequestComment;

use super::{Ctx, Handled};

const STATUS_TEMPLATE: &str = include_str!("../../templates/commands/status.md.tera");
const REFUSAL_TEMPLATE: &str = include_str!("../../templates/commands/refusal.md.tera");

/// Why a command was refused (a person's mistake or a rule) or could not run; worded in
/// `templates/commands/refusal.md.tera`.
#[derive(Debug, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
enum Refusal {
    Fork,
    OnHold {
        env: String,
        hold_reason: String,
        by: String,
    },
    HeadMoved {
        now: String,
        was: String,
    },
    Frozen {
        env: String,
        until: String,
        window: String,
        by: String,
        freeze_reason: String,
    },
    NotOverrider {
        author: String,
        env: String,
        allowed: Vec<String>,
    },
    TimePassed {
        until: String,
    },
    Rejected {
        artifact: String,
        env: String,
        sha: String,
        by: String,
        reject_reason: String,
    },
    NotADeployer {
        author: String,
        app: String,
    },
    AmbiguousSha {
        prefix: String,
    },
    NoArtifact {
        app: String,
        what: String,
    },
    UnknownEnv {
        env: String,
        known: Vec<String>,
    },
    /// Several apps of the repository have the env and the command named none.
    WhichApp {
        env: String,
        apps: Vec<String>,
    },
    UnknownApp {
        app: String,
        apps: Vec<String>,
    },
    NotAllowed {
        author: String,
        env: String,
        allowed: Vec<String>,
    },
    NotArtifactOf {
        target: String,
        app: String,
    },
    NoMatch {
        app: String,
        target: String,
    },
    SeveralMatch {
        target: String,
        app: String,
    },
    PullUnreadable {
        error: String,
    },
    PermissionsUnreadable {
        error: String,
    },
    /// An error whose own text says what happened (the ledger's, the release loop's).
    Error {
        error: String,
    },
}

impl Refusal {
    fn error(e: impl std::fmt::Display) -> Self {
        Refusal::Error { error: e.to_string() }
    }

    fn text(&self) -> String {
        match tera::Context::from_serialize(self) {
            Ok(ctx) => render_markdown("refusal", REFUSAL_TEMPLATE, &ctx)
                .trim()
                .to_owned(),
            Err(e) => format!("{self:?} ({e})"),
        }
    }
}

/// Recent heads of each pull request with the time they became the head (the `pull_request`
/// events' `updated_at`). A `/deploy` without a sha deploys the head the pull request had when
/// the comment was written; if GitHub's head is another one now, a push overtook the comment
/// and the command is refused rather than deploying a commit the commenter never saw.
/// Deliveries may arrive in any order; the times decide. Unknown (after a restart): GitHub's
/// head is used.
#[derive(Default)]
pub struct PullHeads(Mutex<HashMap<PullKey, Vec<HeadSince>>>);

/// `(owner/name lowercased, pull request number)`.
type PullKey = (String, u64);
/// A head and the time it became the head.
type HeadSince = (DateTime<Utc>, CommitSha);

impl PullHeads {
    /// A pull request opened, reopened or pushed to: `sha` is the head since `at`.
    pub fn saw(&self, repo: &RepoName, number: u64, sha: &CommitSha, at: DateTime<Utc>) {
        let mut heads = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if heads.len() > 50_000 {
            heads.clear();
        }
        let list = heads
            .entry((repo.as_str().to_ascii_lowercase(), number))
            .or_default();
        if !list.iter().any(|(t, s)| *t == at && s == sha) {
            list.push((at, sha.clone()));
            list.sort_by_key(|(t, _)| *t);
            if list.len() > 20 {
                list.remove(0);
            }
        }
    }

    /// Whether `head` (GitHub's head now) replaced another head at or after `at`, the time a
    /// comment was written: then the comment was about another commit. GitHub's times have
    /// whole seconds, so a push in the same second as the comment counts as after it (the
    /// safe side: a refusal, and the user comments again). A head no event has announced yet
    /// is newer than everything seen, so it moved too. Nothing seen: not moved.
    fn moved_since(
        &self,
        repo: &RepoName,
        number: u64,
        head: &CommitSha,
        at: DateTime<Utc>,
    ) -> Option<CommitSha> {
        let heads = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let list = heads.get(&(repo.as_str().to_ascii_lowercase(), number))?;
        let before = list
            .iter()
            .rev()
            .find(|(t, s)| s != head && *t <= at)
            .map(|(_, s)| s.clone());
        match list.iter().rev().find(|(_, s)| s == head) {
            Some((t, _)) if *t >= at => before,
            Some(_) => None,
            None => list.last().map(|(_, s)| s.clone()),
        }
    }
}

/// One comment's commands being answered: what every `command_<verb>` needs.
struct Asked<'a> {
    ctx: &'a Ctx,
    releaser: &'a Releaser,
    /// The policies of the comment's repository.
    apps: Vec<&'a Policy>,
    comment: &'a PullRequestComment,
    reply: ReplyRef,
}

pub async fn handle(ctx: &Ctx, comment: PullRequestComment) -> anyhow::Result<Handled> {
    let Some(releaser) = ctx.releases.running() else {
        return Ok(Handled::Nothing);
    };
    if !ctx.forge.configured() {
        return Ok(Handled::Nothing);
    }
    let own = ctx
        .own_login
        .get_or_try_init(|| async { ctx.forge.authenticated_login().await })
        .await?;
    if comment.author.eq_ignore_ascii_case(own) {
        return Ok(Handled::Nothing);
    }
    let repo = &comment.repo;
    let policies = ctx.policies.current();
    let apps: Vec<&Policy> = policies.for_repo(repo).collect();
    if apps.is_empty() {
        return Ok(Handled::Nothing);
    }
    let commands = match parse_comment(&comment.body) {
        ParseOutcome::NoCommand => return Ok(Handled::Nothing),
        ParseOutcome::Error(errors) => Err(errors),
        ParseOutcome::Commands(c) => Ok(c),
    };
    let number = comment.number;
    let answered = CommentId(comment.comment_id);
    let marker = answer_marker(answered);
    // A replay: the reply exists. Finished → nothing to do; still queued → run again (every
    // step is idempotent). Only auger's own comment counts: anyone can write the marker.
    let existing = ctx
        .forge
        .list_comments(repo, number)
        .await?
        .into_iter()
        .find(|c| c.author.login.eq_ignore_ascii_case(own) && c.body.contains(&marker));
    if let Some(c) = &existing
        && !c.body.contains("⏳")
    {
        return Ok(Handled::Acted);
    }
    if let Err(err) = ctx.forge.add_reaction(repo, answered, Reaction::Eyes).await {
        tracing::warn!(error = %err, "cannot react to the command");
    }
    let existing = existing.map(|c| c.id);
    let commands = match commands {
        Ok(c) => c,
        Err(errors) => {
            write_reply(ctx, &comment, existing, &error_reply(&errors)).await?;
            return Ok(Handled::Acted);
        }
    };
    let queued = render_reply(&ReplyText {
        state: "queued",
        command: &commands[0].to_string(),
        ..Default::default()
    });
    let reply_id = write_reply(ctx, &comment, existing, &queued).await?;
    let asked = Asked {
        ctx,
        releaser,
        apps,
        comment: &comment,
        reply: ReplyRef {
            repo: repo.clone(),
            issue: number,
            comment: reply_id,
            answers: answered,
        },
    };
    let mut texts = Vec::new();
    for cmd in &commands {
        if let Some(text) = run(&asked, cmd).await {
            texts.push(text);
        }
    }
    if !texts.is_empty() {
        write_reply(ctx, &comment, Some(reply_id), &texts.join("\n\n")).await?;
    }
    Ok(Handled::Acted)
}

/// Runs one command; `None` when the release loop already wrote the reply.
async fn run(asked: &Asked<'_>, cmd: &Command) -> Option<String> {
    let line = cmd.to_string();
    match cmd {
        Command::Help => Some(command_help()),
        Command::Status => Some(command_status(asked).await),
        Command::Deploy { env, app, sha, force } => {
            command_deploy(asked, &line, env, app.as_ref(), sha.as_ref(), *force).await
        }
        Command::Rollback { env, target } => Some(command_rollback(asked, &line, env, target.as_ref()).await),
        Command::Hold { env } => Some(command_hold(asked, &line, env).await),
        Command::Resume { env } => Some(command_resume(asked, &line, env).await),
        Command::Freeze { env, until, reason } => {
            Some(command_freeze(asked, &line, env, *until, reason).await)
        }
        Command::Unfreeze { env } => Some(command_unfreeze(asked, &line, env).await),
        Command::Reject { target, reason } => Some(command_reject(asked, &line, target, reason).await),
    }
}

fn command_help() -> String {
    help_text()
}

/// The `/status` table (`templates/commands/status.md.tera`): per app and environment, what
/// runs and whether automatic deploys are on.
async fn command_status(asked: &Asked<'_>) -> String {
    #[derive(Serialize)]
    struct Row {
        app: String,
        env: String,
        running: String,
        /// Who rejected what runs, and why (design §17).
        rejected: Option<crate::artifact::Rejection>,
        /// How far its verification is (design §15), for envs that verify.
        state: Option<String>,
        /// Only a hold in force.
        hold: Option<HoldState>,
        /// Only a freeze in force: a policy window or one set by hand.
        frozen: Option<crate::release::FrozenView>,
        /// The gitops repository the env releases to (shown when there are several).
        gitops_repo: String,
    }
    let mut rows = Vec::new();
    for p in &asked.apps {
        for (env, rules) in p.envs() {
            let live = asked.ctx.store.released(env, p.app()).ok().flatten();
            let running = live.as_ref().map(|a| a.label()).unwrap_or_default();
            let rejected = live.and_then(|a| a.rejected);
            let frozen = match asked.releaser.frozen(env, p.app()).await {
                Ok(Some(f)) => Some(f.view()),
                _ => None,
            };
            let state = match rules.verify {
                Some(_) => crate::verify::current::current(&asked.ctx.store, env, p.app(), true)
                    .ok()
                    .flatten()
                    .map(|c| match c.message {
                        Some(m) if c.state.is_failure() => format!("{}: {m}", c.state),
                        _ => c.state.to_string(),
                    }),
                None => None,
            };
            let hold = match asked.releaser.hold_state(env, p.app()).await {
                Ok(Some(h)) if h.held => Some(h),
                _ => None,
            };
            rows.push(Row {
                app: p.app().to_string(),
                env: env.to_string(),
                running,
                rejected,
                state,
                hold,
                frozen,
                gitops_repo: asked.releaser.target(env, p.app()).repo.to_string(),
            });
        }
    }
    let mut ctx = tera::Context::new();
    ctx.insert("rows", &rows);
    ctx.insert("several_repos", &(asked.releaser.gitops().repo_names().len() > 1));
    render_markdown("status", STATUS_TEMPLATE, &ctx)
}

async fn command_deploy(
    asked: &Asked<'_>,
    line: &str,
    env: &EnvName,
    app: Option<&AppName>,
    sha: Option<&ShaPrefix>,
    force: bool,
) -> Option<String> {
    let say = |state: &str, why: Refusal| Some(say(line, state, why));
    let policy = match deploy_policy(&asked.apps, env, app) {
        Ok(p) => p,
        Err(why) => return say("refused", why),
    };
    let policy = match authorized_for(asked, policy, env).await {
        Ok(p) => p,
        Err(why) => return say("refused", why),
    };
    let (ctx, repo, number) = (asked.ctx, &asked.comment.repo, asked.comment.number);
    // Re-read the pull request now: its head, and whether it comes from a fork.
    let pr = match ctx.forge.get_pull(repo, number).await {
        Ok(pr) => pr,
        Err(e) => return say("failed", Refusal::PullUnreadable { error: e.to_string() }),
    };
    if pr.is_from_fork(repo) {
        return say("refused", Refusal::Fork);
    }
    match asked.releaser.hold_state(env, policy.app()).await {
        Ok(Some(h)) if h.held => {
            let (env, hold_reason, by) = (env.to_string(), h.reason, h.by);
            return say("refused", Refusal::OnHold { env, hold_reason, by });
        }
        Ok(_) => {}
        Err(e) => return say("failed", Refusal::error(e)),
    }
    let mut overrides = Vec::new();
    match asked.releaser.frozen(env, policy.app()).await {
        Ok(None) => {}
        Ok(Some(f)) if !force => return say("refused", frozen_refusal(env, f)),
        Ok(Some(_)) => match may_override_freeze(asked, policy, env).await {
            Ok(()) => overrides.push(format!("freeze @{}", asked.comment.author)),
            Err(why) => return say("refused", why),
        },
        Err(e) => return say("failed", Refusal::error(e)),
    }
    if sha.is_none()
        && let Some(seen) = ctx
            .heads
            .moved_since(repo, number, &pr.head.sha, asked.comment.created_at)
    {
        let (now, was) = (pr.head.sha.short(12).to_owned(), seen.short(12).to_owned());
        return say("refused", Refusal::HeadMoved { now, was });
    }
    let artifact = match sha {
        Some(prefix) => {
            let found = ctx.store.find_by_sha_prefix(prefix.as_str()).map(|v| {
                v.into_iter()
                    .filter(|a| a.app == *policy.app())
                    .collect::<Vec<_>>()
            });
            match found {
                Ok(v) if v.len() == 1 => v.into_iter().next(),
                Ok(v) if v.len() > 1 => {
                    let prefix = prefix.to_string();
                    return say("refused", Refusal::AmbiguousSha { prefix });
                }
                Ok(_) => None,
                Err(e) => return say("failed", Refusal::error(e)),
            }
        }
        None => match ctx.store.get(policy.app(), &pr.head.sha) {
            Ok(a) => a,
            Err(e) => return say("failed", Refusal::error(e)),
        },
    };
    let Some(artifact) = artifact else {
        let what = sha
            .map(|s| s.as_str().to_owned())
            .unwrap_or_else(|| pr.head.sha.short(12).to_owned());
        let app = policy.app().to_string();
        return say("refused", Refusal::NoArtifact { app, what });
    };
    // `authorized` made the author a deployer of `env`: with `--force` they may release it.
    if let Some(r) = &artifact.rejected {
        if !force {
            return say(
                "refused",
                Refusal::Rejected {
                    artifact: artifact.id.to_string(),
                    env: env.to_string(),
                    sha: artifact.sha.short(12).to_owned(),
                    by: r.by.clone(),
                    reject_reason: r.reason.clone(),
                },
            );
        }
        overrides.push(format!("reject @{}", asked.comment.author));
    }
    let plan = Plan {
        env: env.clone(),
        app: policy.app().clone(),
        artifact: artifact.id.clone(),
        trigger: Trigger::Command(asked.comment.author.clone()),
        reason: format!("{line} on #{number}"),
        reply: Some(asked.reply.clone()),
        overrides,
    };
    match asked.releaser.release(plan).await {
        // The release loop wrote the reply (released, waiting, already there).
        Ok(_) => None,
        Err(e) if e.is_user_error() => say("refused", Refusal::error(e)),
        Err(e) => say("failed", Refusal::error(e)),
    }
}

async fn command_rollback(
    asked: &Asked<'_>,
    line: &str,
    env: &EnvName,
    target: Option<&RollbackTarget>,
) -> String {
    let policy = match authorized(asked, env).await {
        Ok(p) => p,
        Err(why) => return say(line, "refused", why),
    };
    let to = match target {
        Some(t) => match resolve_target(asked.ctx, policy.app(), t) {
            Ok(id) => Some(id),
            Err(why) => return say(line, "refused", why),
        },
        None => None,
    };
    let result = asked
        .releaser
        .rollback(
            env,
            policy.app(),
            to.as_ref(),
            &by(asked),
            Some(asked.reply.clone()),
        )
        .await;
    outcome(
        line,
        result.map(|(to, outcome)| match outcome {
            ReleaseOutcome::AwaitingApproval { url, .. } => {
                answer(line, policy, env, "rollback_awaiting", &to.to_string(), &url)
            }
            ReleaseOutcome::Retrying { reason } => render_reply(&ReplyText {
                state: "retrying",
                command: line,
                app: policy.app().as_str(),
                env: env.as_str(),
                artifact: &to.to_string(),
                detail: &reason,
                ..Default::default()
            }),
            _ => answer(line, policy, env, "rolled_back", &to.to_string(), ""),
        }),
    )
}

async fn command_hold(asked: &Asked<'_>, line: &str, env: &EnvName) -> String {
    let policy = match authorized(asked, env).await {
        Ok(p) => p,
        Err(why) => return say(line, "refused", why),
    };
    let reason = format!("held from {}#{}", asked.comment.repo, asked.comment.number);
    let result = asked.releaser.hold(env, policy.app(), &by(asked), &reason).await;
    outcome(
        line,
        result.map(|changed| {
            let state = if changed { "hold_set" } else { "hold_already" };
            answer(line, policy, env, state, "", "")
        }),
    )
}

async fn command_resume(asked: &Asked<'_>, line: &str, env: &EnvName) -> String {
    let policy = match authorized(asked, env).await {
        Ok(p) => p,
        Err(why) => return say(line, "refused", why),
    };
    let result = asked.releaser.resume(env, policy.app(), &by(asked)).await;
    outcome(
        line,
        result.map(|changed| {
            let state = if changed { "resumed" } else { "not_held" };
            answer(line, policy, env, state, "", "")
        }),
    )
}

async fn command_freeze(
    asked: &Asked<'_>,
    line: &str,
    env: &EnvName,
    until: Option<DateTime<Utc>>,
    reason: &str,
) -> String {
    let policy = match authorized(asked, env).await {
        Ok(p) => p,
        Err(why) => return say(line, "refused", why),
    };
    if let Some(t) = until
        && t <= Utc::now()
    {
        let until = t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        return say(line, "refused", Refusal::TimePassed { until });
    }
    let reason = if reason.is_empty() {
        format!("frozen from {}#{}", asked.comment.repo, asked.comment.number)
    } else {
        reason.to_owned()
    };
    let result = asked
        .releaser
        .freeze(env, policy.app(), &by(asked), &reason, until)
        .await;
    outcome(
        line,
        result.map(|changed| {
            let state = if changed { "freeze_set" } else { "freeze_already" };
            let detail = until.map(|t| format!("until {}", crate::release::day_time(t)));
            render_reply(&ReplyText {
                state,
                command: line,
                app: policy.app().as_str(),
                env: env.as_str(),
                detail: detail.as_deref().unwrap_or_default(),
                ..Default::default()
            })
        }),
    )
}

async fn command_unfreeze(asked: &Asked<'_>, line: &str, env: &EnvName) -> String {
    let policy = match authorized(asked, env).await {
        Ok(p) => p,
        Err(why) => return say(line, "refused", why),
    };
    let result = asked.releaser.unfreeze(env, policy.app(), &by(asked)).await;
    // A policy window may still be in force: say so rather than promise a release.
    let still = match asked.releaser.frozen(env, policy.app()).await {
        Ok(Some(f)) => f.until.map(|t| {
            format!(
                "a freeze window is still in force until {}",
                crate::release::day_time(t)
            )
        }),
        _ => None,
    };
    outcome(
        line,
        result.map(|changed| {
            let state = if changed { "unfrozen" } else { "not_frozen" };
            render_reply(&ReplyText {
                state,
                command: line,
                app: policy.app().as_str(),
                env: env.as_str(),
                detail: still.as_deref().unwrap_or_default(),
                ..Default::default()
            })
        }),
    )
}

/// `/reject`: by a deployer of any of the app's environments.
async fn command_reject(asked: &Asked<'_>, line: &str, target: &RollbackTarget, reason: &str) -> String {
    // The app: the one the artifact id names, or the repository's app that has the sha.
    let candidates: Vec<&Policy> = match target {
        RollbackTarget::Artifact { app, .. } => {
            asked.apps.iter().copied().filter(|p| p.app() == app).collect()
        }
        RollbackTarget::Sha(_) => asked.apps.clone(),
    };
    let mut found = Vec::new();
    for p in &candidates {
        match resolve_target(asked.ctx, p.app(), target) {
            Ok(id) => found.push((*p, id)),
            Err(Refusal::NoMatch { .. }) => {}
            Err(why) => return say(line, "refused", why),
        }
    }
    let (policy, id) = match found.as_slice() {
        [one] => one.clone(),
        [] => {
            let names: Vec<&str> = asked.apps.iter().map(|p| p.app().as_str()).collect();
            let app = match target {
                RollbackTarget::Artifact { app, .. } => app.to_string(),
                RollbackTarget::Sha(_) => names.join(", "),
            };
            let target = target.to_string();
            return say(line, "refused", Refusal::NoMatch { app, target });
        }
        _ => {
            let (target, app) = (target.to_string(), "this repository".to_owned());
            return say(line, "refused", Refusal::SeveralMatch { target, app });
        }
    };
    let mut allowed = false;
    for (_, rules) in policy.envs() {
        match admits(asked, policy, &rules.deployers).await {
            Ok(true) => {
                allowed = true;
                break;
            }
            Ok(false) => {}
            Err(why) => return say(line, "refused", why),
        }
    }
    if !allowed {
        let (author, app) = (asked.comment.author.clone(), policy.app().to_string());
        return say(line, "refused", Refusal::NotADeployer { author, app });
    }
    let reason = if reason.is_empty() {
        format!("rejected from {}#{}", asked.comment.repo, asked.comment.number)
    } else {
        reason.to_owned()
    };
    match asked.releaser.reject(&id, &by(asked), &reason).await {
        Ok(Some(crate::artifact::RecordOutcome::Unchanged(a))) => {
            let detail = a
                .rejected
                .map(|r| format!("by {}: {}", r.by, r.reason))
                .unwrap_or_default();
            render_reply(&ReplyText {
                state: "reject_already",
                command: line,
                artifact: &id.to_string(),
                detail: &detail,
                ..Default::default()
            })
        }
        Ok(Some(_)) => render_reply(&ReplyText {
            state: "rejected",
            command: line,
            app: policy.app().as_str(),
            artifact: &id.to_string(),
            ..Default::default()
        }),
        Ok(None) => {
            let (app, target) = (policy.app().to_string(), target.to_string());
            say(line, "refused", Refusal::NoMatch { app, target })
        }
        Err(e) => outcome(line, Err(e)),
    }
}

/// Why `/deploy` without `--force` is refused during a freeze.
fn frozen_refusal(env: &EnvName, f: crate::release::Frozen) -> Refusal {
    Refusal::Frozen {
        env: env.to_string(),
        until: f.until.map(crate::release::day_time).unwrap_or_default(),
        window: f.window.unwrap_or_default(),
        by: f.by,
        freeze_reason: f.reason,
    }
}

/// Whether the comment's author is one of the env's `freeze_overriders` (read on GitHub now).
async fn may_override_freeze(asked: &Asked<'_>, policy: &Policy, env: &EnvName) -> Result<(), Refusal> {
    let Some(rules) = policy.env(env) else {
        let (env, known) = (env.to_string(), Vec::new());
        return Err(Refusal::UnknownEnv { env, known });
    };
    if admits(asked, policy, &rules.freeze_overriders).await? {
        return Ok(());
    }
    Err(Refusal::NotOverrider {
        author: asked.comment.author.clone(),
        env: env.to_string(),
        allowed: rules.freeze_overriders.iter().map(ToString::to_string).collect(),
    })
}

/// Whether the comment's author is one of `principals` of `policy`'s repository, asked of
/// GitHub now.
async fn admits(asked: &Asked<'_>, policy: &Policy, principals: &[Principal]) -> Result<bool, Refusal> {
    asked
        .ctx
        .people
        .admits_account(
            principals,
            policy.repo(),
            &asked.comment.author,
            Some(asked.comment.author_id),
        )
        .await
        .map_err(|e| Refusal::PermissionsUnreadable { error: e.to_string() })
}

/// Who acts, as hold and rollback records name them.
fn by(asked: &Asked<'_>) -> String {
    format!("@{}", asked.comment.author)
}

/// A reply that refuses or fails, saying why.
fn say(line: &str, state: &str, why: Refusal) -> String {
    render_reply(&ReplyText {
        state,
        command: line,
        detail: &why.text(),
        ..Default::default()
    })
}

/// A reply about one app and environment.
fn answer(line: &str, policy: &Policy, env: &EnvName, state: &str, artifact: &str, link: &str) -> String {
    render_reply(&ReplyText {
        state,
        command: line,
        app: policy.app().as_str(),
        env: env.as_str(),
        artifact,
        link,
        ..Default::default()
    })
}

/// The reply for a release-loop result: a person's mistake is a refusal, anything else a
/// failure that is also logged.
fn outcome(line: &str, result: crate::release::Result<String>) -> String {
    match result {
        Ok(text) => text,
        Err(e) if e.is_user_error() => say(line, "refused", Refusal::error(e)),
        Err(e) => {
            tracing::error!(error = %e, command = %line, "command failed");
            say(line, "failed", Refusal::error(e))
        }
    }
}

/// The app of this repository that has `env`, if the comment's author may deploy there; or
/// why not.
async fn authorized<'a>(asked: &Asked<'a>, env: &EnvName) -> Result<&'a Policy, Refusal> {
    let policy = policy_with_env(&asked.apps, env)?;
    authorized_for(asked, policy, env).await
}

/// `policy` if the comment's author is one of its deployers of `env`, else why not.
async fn authorized_for<'a>(
    asked: &Asked<'_>,
    policy: &'a Policy,
    env: &EnvName,
) -> Result<&'a Policy, Refusal> {
    let Some(rules) = policy.env(env) else {
        let (env, known) = (env.to_string(), Vec::new());
        return Err(Refusal::UnknownEnv { env, known });
    };
    if admits(asked, policy, &rules.deployers).await? {
        return Ok(policy);
    }
    Err(Refusal::NotAllowed {
        author: asked.comment.author.clone(),
        env: env.to_string(),
        allowed: rules.deployers.iter().map(ToString::to_string).collect(),
    })
}

/// The app a `/deploy` acts on: the one named, or the only app of the repository with `env`.
/// Several apps with `env` and none named is ambiguous: the refusal lists them (design §16).
fn deploy_policy<'a>(
    apps: &[&'a Policy],
    env: &EnvName,
    app: Option<&AppName>,
) -> Result<&'a Policy, Refusal> {
    let Some(app) = app else {
        let with_env: Vec<&'a Policy> = apps.iter().copied().filter(|p| p.env(env).is_some()).collect();
        return match with_env.as_slice() {
            [] => policy_with_env(apps, env),
            [one] => Ok(one),
            several => Err(Refusal::WhichApp {
                env: env.to_string(),
                apps: several.iter().map(|p| p.app().to_string()).collect(),
            }),
        };
    };
    match apps.iter().find(|p| p.app() == app) {
        Some(p) if p.env(env).is_some() => Ok(p),
        Some(p) => Err(Refusal::UnknownEnv {
            env: env.to_string(),
            known: p.envs().map(|(n, _)| n.to_string()).collect(),
        }),
        None => Err(Refusal::UnknownApp {
            app: app.to_string(),
            apps: apps.iter().map(|p| p.app().to_string()).collect(),
        }),
    }
}

/// The app of this repository that has `env`, or why none does.
fn policy_with_env<'a>(apps: &[&'a Policy], env: &EnvName) -> Result<&'a Policy, Refusal> {
    if let Some(p) = apps.iter().find(|p| p.env(env).is_some()) {
        return Ok(p);
    }
    let mut known: Vec<String> = apps
        .iter()
        .flat_map(|p| p.envs().map(|(n, _)| n.to_string()))
        .collect();
    known.sort();
    known.dedup();
    Err(Refusal::UnknownEnv {
        env: env.to_string(),
        known,
    })
}

fn resolve_target(ctx: &Ctx, app: &AppName, target: &RollbackTarget) -> Result<ArtifactId, Refusal> {
    let (target_text, app_text) = (target.to_string(), app.to_string());
    if let RollbackTarget::Artifact { app: named, .. } = target
        && named != app
    {
        return Err(Refusal::NotArtifactOf {
            target: target_text,
            app: app_text,
        });
    }
    let found = ctx
        .store
        .find_by_sha_prefix(target.sha().as_str())
        .map_err(Refusal::error)?
        .into_iter()
        .filter(|a| &a.app == app)
        .collect::<Vec<_>>();
    match found.as_slice() {
        [one] => Ok(one.id.clone()),
        [] => Err(Refusal::NoMatch {
            app: app_text,
            target: target_text,
        }),
        _ => Err(Refusal::SeveralMatch {
            target: target_text,
            app: app_text,
        }),
    }
}

/// Creates the reply, or edits it in place; the marker names the answered comment.
async fn write_reply(
    ctx: &Ctx,
    comment: &PullRequestComment,
    existing: Option<CommentId>,
    text: &str,
) -> anyhow::Result<CommentId> {
    let body = format!("{text}\n\n{}", answer_marker(CommentId(comment.comment_id)));
    Ok(match existing {
        Some(id) => {
            ctx.forge.update_comment(&comment.repo, id, &body).await?;
            id
        }
        None => {
            ctx.forge
                .create_comment(&comment.repo, comment.number, &body)
                .await?
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::testbed::{Bed, REPO};

    #[tokio::test(flavor = "multi_thread")]
    async fn auger_ignores_its_own_comments() {
        let bed = Bed::new(true);
        let (pr, _) = bed.pull_request();
        let c = bed.comment(pr, "auger", "/deploy staging").await;
        assert_eq!(handle(&bed.ctx, c.clone()).await.unwrap(), Handled::Nothing);
        assert_eq!(bed.comments(c.number).await.len(), 1, "no reply");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_reader_is_refused_with_the_reason() {
        let bed = Bed::new(true);
        let (pr, _) = bed.pull_request();
        let c = bed.comment(pr, "bob", "/deploy staging").await;
        assert_eq!(handle(&bed.ctx, c.clone()).await.unwrap(), Handled::Acted);
        let comments = bed.comments(c.number).await;
        assert_eq!(comments.len(), 2, "{comments:?}");
        assert!(
            comments[1].contains("@bob is not allowed to deploy to staging"),
            "{}",
            comments[1]
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_replayed_command_with_a_final_reply_does_not_run_again() {
        let bed = Bed::new(true);
        let (pr, _) = bed.pull_request();
        let c = bed.comment(pr, "bob", "/deploy staging").await;
        handle(&bed.ctx, c.clone()).await.unwrap();
        let first = bed.comments(c.number).await;
        assert_eq!(handle(&bed.ctx, c.clone()).await.unwrap(), Handled::Acted);
        assert_eq!(bed.comments(c.number).await, first);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_reply_marker_planted_by_someone_else_neither_stops_the_command_nor_gets_edited() {
        let bed = Bed::new(true);
        let (pr, head) = bed.pull_request();
        bed.ctx.store.record(&bed.artifact(&head)).unwrap();
        // bob guesses the id the next comment gets and plants auger's marker for it.
        let planted = bed.comment(pr, "bob", "first").await.comment_id;
        let marker = answer_marker(CommentId(planted + 1));
        let planted_body = format!("✅ done already\n\n{marker}");
        bed.sim.edit_comment(REPO, planted, &planted_body, "bob").unwrap();
        let c = bed.comment(pr, "alice", "/deploy staging").await;
        assert_eq!(c.comment_id, planted + 1, "the guess was right");

        assert_eq!(handle(&bed.ctx, c.clone()).await.unwrap(), Handled::Acted);
        assert_eq!(bed.live("staging"), Some(head));
        let comments = bed.comments(pr).await;
        assert_eq!(comments[0], planted_body, "bob's comment is untouched");
        assert!(
            comments.last().unwrap().contains(&marker),
            "auger wrote its own reply"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_writer_deploys_the_head_artifact() {
        let bed = Bed::new(true);
        let (pr, head) = bed.pull_request();
        bed.ctx.store.record(&bed.artifact(&head)).unwrap();
        let c = bed.comment(pr, "alice", "/deploy staging").await;
        assert_eq!(handle(&bed.ctx, c.clone()).await.unwrap(), Handled::Acted);
        assert_eq!(bed.live("staging"), Some(head));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_deploy_that_meets_a_fault_says_it_keeps_trying_then_that_it_is_released() {
        let bed = Bed::new(true);
        let (pr, head) = bed.pull_request();
        bed.ctx.store.record(&bed.artifact(&head)).unwrap();
        // The gitops host is down.
        let remote = bed.gitops_remote();
        let away = remote.with_extension("away");
        std::fs::rename(&remote, &away).unwrap();
        let c = bed.comment(pr, "alice", "/deploy staging").await;
        handle(&bed.ctx, c.clone()).await.unwrap();
        let reply = bed.comments(pr).await.pop().unwrap();
        assert!(reply.contains("is not released to **staging** yet"), "{reply}");
        assert!(reply.contains("auger keeps trying"), "{reply}");

        // It is back; the next pass after the backoff releases what was asked.
        std::fs::rename(&away, &remote).unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        bed.ctx.releases.running().unwrap().tick().await;
        assert_eq!(bed.live("staging"), Some(head));
        let reply = bed.comments(pr).await.pop().unwrap();
        assert!(reply.contains("is released to **staging**"), "{reply}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn without_a_release_loop_commands_are_not_answered() {
        let bed = Bed::new(false);
        let (pr, _) = bed.pull_request();
        let c = bed.comment(pr, "alice", "/deploy staging").await;
        assert_eq!(handle(&bed.ctx, c.clone()).await.unwrap(), Handled::Nothing);
        assert_eq!(bed.comments(c.number).await.len(), 1);
    }

    #[test]
    fn every_refusal_has_its_own_sentence() {
        let s = || "x".to_string();
        let all = [
            Refusal::Fork,
            Refusal::OnHold {
                env: s(),
                hold_reason: s(),
                by: s(),
            },
            Refusal::HeadMoved { now: s(), was: s() },
            Refusal::AmbiguousSha { prefix: s() },
            Refusal::NoArtifact { app: s(), what: s() },
            Refusal::UnknownEnv {
                env: s(),
                known: vec![s()],
            },
            Refusal::NotAllowed {
                author: s(),
                env: s(),
                allowed: vec![],
            },
            Refusal::NotArtifactOf {
                target: s(),
                app: s(),
            },
            Refusal::NoMatch {
                app: s(),
                target: s(),
            },
            Refusal::SeveralMatch {
                target: s(),
                app: s(),
            },
            Refusal::PullUnreadable { error: s() },
            Refusal::PermissionsUnreadable { error: s() },
        ];
        let texts: Vec<String> = all.iter().map(Refusal::text).collect();
        for (r, t) in all.iter().zip(&texts) {
            assert!(t.len() > 10, "{r:?} renders as {t:?}");
        }
        let mut unique = texts.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), texts.len(), "{texts:#?}");
        assert_eq!(Refusal::error("the ledger failed").text(), "the ledger failed");
    }

    #[test]
    fn a_head_pushed_after_the_comment_counts_as_moved() {
        let heads = PullHeads::default();
        let repo = RepoName::new("acme/web").unwrap();
        let (old, new) = (
            CommitSha::new("a".repeat(40)).unwrap(),
            CommitSha::new("b".repeat(40)).unwrap(),
        );
        let t = |s: i64| DateTime::from_timestamp(s, 0).unwrap();
        heads.saw(&repo, 1, &old, t(100));
        heads.saw(&repo, 1, &new, t(200));
        assert_eq!(heads.moved_since(&repo, 1, &new, t(150)), Some(old.clone()));
        assert_eq!(heads.moved_since(&repo, 1, &new, t(250)), None);
    }
}
