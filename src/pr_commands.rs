//! What PR comment commands do (design §8): the parser ([`crate::command`]) says what was
//! asked; this module decides whether the author may, runs it through the release loop, and
//! answers in one reply comment that is edited in place.
//!
//! Rules: only `issue_comment` *created* on a pull request counts, never from a bot or from
//! auger itself. auger reacts 👀 when it takes a command. Authority is re-read from GitHub at
//! execution time (permission, team membership, the user's numeric id), never taken from the
//! payload. A pull request from a fork never deploys. Refusals say why. A replayed delivery
//! finds its reply (by a hidden marker naming the comment it answers) and does not run twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::OnceCell;

use crate::artifact::{ArtifactId, ArtifactStore, HoldState};
use crate::command::{
    Command, ParseOutcome, RollbackTarget, ShaPrefix, error_reply, help_text, parse_comment,
};
use crate::domain::{AppName, CommitSha, EnvName, RepoName};
use crate::forge::{CommentId, Forge, Reaction};
use crate::gitops::Trigger;
use crate::notify::reply::render_markdown;
use crate::notify::{ReplyRef, ReplyText, answer_marker, render_reply};
use crate::policy::{Policy, PolicySet};
use crate::release::{People, Plan, ReleaseOutcome, Releaser};
use crate::webhook::events::IssueCommentEvent;

const STATUS_TEMPLATE: &str = include_str!("../templates/commands/status.md.tera");

pub struct PrCommands {
    releaser: Arc<Releaser>,
    forge: Arc<dyn Forge>,
    policies: Arc<PolicySet>,
    store: Arc<ArtifactStore>,
    people: People,
    own_login: OnceCell<String>,
    /// Recent heads of each pull request with the time they became the head (the
    /// `pull_request` events' `updated_at`). A `/deploy` without a sha deploys the head the
    /// pull request had when the comment was written; if GitHub's head is another one now, a
    /// push overtook the comment and the command is refused rather than deploying a commit the
    /// commenter never saw. Deliveries may arrive in any order; the times decide. Unknown
    /// (after a restart): GitHub's head is used.
    heads: Mutex<HashMap<PullKey, Vec<HeadSince>>>,
}

/// `(owner/name lowercased, pull request number)`.
type PullKey = (String, u64);
/// A head and the time it became the head.
type HeadSince = (DateTime<Utc>, CommitSha);

/// Who wrote the command.
struct Author<'a> {
    login: &'a str,
    id: u64,
    /// When the comment was written.
    at: DateTime<Utc>,
}

impl PrCommands {
    pub fn new(
        releaser: Arc<Releaser>,
        forge: Arc<dyn Forge>,
        policies: Arc<PolicySet>,
        store: Arc<ArtifactStore>,
    ) -> Self {
        PrCommands {
            people: People::new(forge.clone()),
            releaser,
            forge,
            policies,
            store,
            own_login: OnceCell::new(),
            heads: Mutex::new(HashMap::new()),
        }
    }

    /// A `pull_request` opened, reopened or synchronize event: `sha` is the head since `at`.
    pub fn saw_head(&self, repo: &RepoName, number: u64, sha: &CommitSha, at: DateTime<Utc>) {
        let mut heads = self.heads.lock().unwrap_or_else(|p| p.into_inner());
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
        let heads = self.heads.lock().unwrap_or_else(|p| p.into_inner());
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

    /// Handles one `issue_comment` delivery. `Ok(false)`: not a command for auger.
    pub async fn handle(&self, e: &IssueCommentEvent) -> anyhow::Result<bool> {
        if !e.is_on_pull_request() || e.comment.user.is_bot() {
            return Ok(false);
        }
        let own = self
            .own_login
            .get_or_try_init(|| async { self.forge.authenticated_login().await })
            .await?;
        if e.comment.user.login.eq_ignore_ascii_case(own) {
            return Ok(false);
        }
        let repo = &e.repository.full_name;
        let apps: Vec<&Policy> = self.policies.for_repo(repo).collect();
        if apps.is_empty() {
            return Ok(false);
        }
        let parsed = parse_comment(&e.comment.body);
        if parsed == ParseOutcome::NoCommand {
            return Ok(false);
        }
        let number = e.issue.number;
        let answered = CommentId(e.comment.id);
        let marker = answer_marker(answered);
        // A replay: the reply exists. Finished → nothing to do; still queued → run again
        // (every step is idempotent).
        let existing = self
            .forge
            .list_comments(repo, number)
            .await?
            .into_iter()
            .find(|c| c.body.contains(&marker));
        if let Some(c) = &existing
            && !c.body.contains("⏳")
        {
            return Ok(true);
        }
        if let Err(err) = self.forge.add_reaction(repo, answered, Reaction::Eyes).await {
            tracing::warn!(error = %err, "cannot react to the command");
        }
        let author = Author {
            login: &e.comment.user.login,
            id: e.comment.user.id,
            at: e.comment.created_at,
        };
        let commands = match parsed {
            ParseOutcome::Error(errors) => {
                self.write_reply(
                    repo,
                    number,
                    answered,
                    existing.map(|c| c.id),
                    &error_reply(&errors),
                )
                .await?;
                return Ok(true);
            }
            ParseOutcome::Commands(c) => c,
            ParseOutcome::NoCommand => return Ok(false),
        };
        let queued = render_reply(&ReplyText {
            state: "queued",
            command: &commands[0].to_string(),
            ..Default::default()
        });
        let reply_id = self
            .write_reply(repo, number, answered, existing.map(|c| c.id), &queued)
            .await?;
        let reply = ReplyRef {
            repo: repo.clone(),
            issue: number,
            comment: reply_id,
            answers: answered,
        };
        let mut texts = Vec::new();
        for cmd in &commands {
            if let Some(text) = self.run(cmd, &apps, repo, number, &author, &reply).await {
                texts.push(text);
            }
        }
        if !texts.is_empty() {
            self.write_reply(repo, number, answered, Some(reply_id), &texts.join("\n\n"))
                .await?;
        }
        Ok(true)
    }

    /// Runs one command; `None` when the release loop already wrote the reply.
    async fn run(
        &self,
        cmd: &Command,
        apps: &[&Policy],
        repo: &RepoName,
        number: u64,
        author: &Author<'_>,
        reply: &ReplyRef,
    ) -> Option<String> {
        let line = cmd.to_string();
        let say = |state: &str, detail: &str| {
            render_reply(&ReplyText {
                state,
                command: &line,
                detail,
                ..Default::default()
            })
        };
        match cmd {
            Command::Help => Some(help_text()),
            Command::Status => Some(self.status(apps).await),
            Command::Deploy { env, .. }
            | Command::Rollback { env, .. }
            | Command::Hold { env }
            | Command::Resume { env } => {
                let policy = match self.policy_with_env(apps, env) {
                    Ok(p) => p,
                    Err(why) => return Some(say("refused", &why)),
                };
                if let Err(why) = self.authorize(policy, env, author).await {
                    return Some(say("refused", &why));
                }
                let by = format!("@{}", author.login);
                let app = policy.app().as_str();
                let reply_text = |state: &str, artifact: &str, link: &str| {
                    render_reply(&ReplyText {
                        state,
                        command: &line,
                        app,
                        env: env.as_str(),
                        artifact,
                        link,
                        ..Default::default()
                    })
                };
                let result = match cmd {
                    Command::Deploy { sha, .. } => {
                        return self
                            .deploy(policy, env, sha.as_ref(), repo, number, author, reply, &line)
                            .await;
                    }
                    Command::Rollback { target, .. } => {
                        let to = match target {
                            Some(t) => match self.resolve_target(policy.app(), t) {
                                Ok(id) => Some(id),
                                Err(why) => return Some(say("refused", &why)),
                            },
                            None => None,
                        };
                        match self
                            .releaser
                            .rollback(env, policy.app(), to.as_ref(), &by, Some(reply.clone()))
                            .await
                        {
                            Ok((to, ReleaseOutcome::AwaitingApproval { url, .. })) => {
                                Ok(reply_text("rollback_awaiting", &to.to_string(), &url))
                            }
                            Ok((to, _)) => Ok(reply_text("rolled_back", &to.to_string(), "")),
                            Err(e) => Err(e),
                        }
                    }
                    Command::Hold { .. } => {
                        let reason = format!("held from {repo}#{number}");
                        self.releaser
                            .hold(env, policy.app(), &by, &reason)
                            .await
                            .map(|changed| {
                                reply_text(if changed { "hold_set" } else { "hold_already" }, "", "")
                            })
                    }
                    Command::Resume { .. } => self
                        .releaser
                        .resume(env, policy.app(), &by)
                        .await
                        .map(|changed| reply_text(if changed { "resumed" } else { "not_held" }, "", "")),
                    Command::Status | Command::Help => return None,
                };
                Some(match result {
                    Ok(text) => text,
                    Err(e) if e.is_user_error() => say("refused", &e.to_string()),
                    Err(e) => {
                        tracing::error!(error = %e, command = %line, "command failed");
                        say("failed", &format!("{e}"))
                    }
                })
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn deploy(
        &self,
        policy: &Policy,
        env: &EnvName,
        sha: Option<&ShaPrefix>,
        repo: &RepoName,
        number: u64,
        author: &Author<'_>,
        reply: &ReplyRef,
        line: &str,
    ) -> Option<String> {
        let say = |state: &str, detail: &str| {
            Some(render_reply(&ReplyText {
                state,
                command: line,
                detail,
                ..Default::default()
            }))
        };
        // Re-read the pull request now: its head, and whether it comes from a fork.
        let pr = match self.forge.get_pull(repo, number).await {
            Ok(pr) => pr,
            Err(e) => {
                return say(
                    "failed",
                    &format!("cannot read the pull request from GitHub: {e}"),
                );
            }
        };
        if pr.is_from_fork(repo) {
            return say(
                "refused",
                "this pull request comes from a fork; forks never deploy",
            );
        }
        match self.releaser.hold_state(env, policy.app()).await {
            Ok(Some(h)) if h.held => {
                return say(
                    "refused",
                    &format!(
                        "{env} is on hold ({}, by {}); `/resume {env}` first",
                        h.reason, h.by
                    ),
                );
            }
            Ok(_) => {}
            Err(e) => return say("failed", &e.to_string()),
        }
        if sha.is_none()
            && let Some(seen) = self.moved_since(repo, number, &pr.head.sha, author.at)
        {
            return say(
                "refused",
                &format!(
                    "the pull request's head moved to `{}` after this comment (it was `{}`); comment again to deploy the new head",
                    pr.head.sha.short(12),
                    seen.short(12)
                ),
            );
        }
        let artifact = match sha {
            Some(prefix) => {
                let found = self.store.find_by_sha_prefix(prefix.as_str()).map(|v| {
                    v.into_iter()
                        .filter(|a| a.app == *policy.app())
                        .collect::<Vec<_>>()
                });
                match found {
                    Ok(v) if v.len() == 1 => v.into_iter().next(),
                    Ok(v) if v.len() > 1 => {
                        return say(
                            "refused",
                            &format!("`{prefix}` matches several artifacts; give more digits"),
                        );
                    }
                    Ok(_) => None,
                    Err(e) => return say("failed", &e.to_string()),
                }
            }
            None => match self.store.get(policy.app(), &pr.head.sha) {
                Ok(a) => a,
                Err(e) => return say("failed", &e.to_string()),
            },
        };
        let Some(artifact) = artifact else {
            let what = sha
                .map(|s| s.as_str().to_owned())
                .unwrap_or_else(|| pr.head.sha.short(12).to_owned());
            return say(
                "refused",
                &format!(
                    "no artifact of {} for `{what}` yet: CI has not marked that commit green",
                    policy.app()
                ),
            );
        };
        let plan = Plan {
            env: env.clone(),
            app: policy.app().clone(),
            artifact: artifact.id.clone(),
            trigger: Trigger::Command(author.login.to_owned()),
            reason: format!("{line} on #{number}"),
            reply: Some(reply.clone()),
        };
        match self.releaser.release(plan).await {
            // The release loop wrote the reply (released, waiting, already there).
            Ok(_) => None,
            Err(e) if e.is_user_error() => say("refused", &e.to_string()),
            Err(e) => say("failed", &e.to_string()),
        }
    }

    /// The app of this repository that has `env`, or why none does.
    fn policy_with_env<'a>(&self, apps: &[&'a Policy], env: &EnvName) -> Result<&'a Policy, String> {
        if let Some(p) = apps.iter().find(|p| p.env(env).is_some()) {
            return Ok(p);
        }
        let mut known: Vec<&str> = apps
            .iter()
            .flat_map(|p| p.envs().map(|(n, _)| n.as_str()))
            .collect();
        known.sort();
        known.dedup();
        Err(format!(
            "unknown environment `{env}` (known: {})",
            known.join(", ")
        ))
    }

    async fn authorize(&self, policy: &Policy, env: &EnvName, author: &Author<'_>) -> Result<(), String> {
        let Some(rules) = policy.env(env) else {
            return Err(format!("unknown environment `{env}`"));
        };
        match self
            .people
            .admits_account(&rules.deployers, policy.repo(), author.login, Some(author.id))
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => {
                let who: Vec<String> = rules.deployers.iter().map(|p| format!("`{p}`")).collect();
                Err(format!(
                    "@{} is not allowed to deploy to {env} (allowed: {})",
                    author.login,
                    if who.is_empty() {
                        "nobody".into()
                    } else {
                        who.join(", ")
                    }
                ))
            }
            Err(e) => Err(format!("cannot check permissions on GitHub: {e}")),
        }
    }

    fn resolve_target(&self, app: &AppName, target: &RollbackTarget) -> Result<ArtifactId, String> {
        if let RollbackTarget::Artifact { app: named, .. } = target
            && named != app
        {
            return Err(format!("`{target}` is not an artifact of {app}"));
        }
        let found = self
            .store
            .find_by_sha_prefix(target.sha().as_str())
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|a| &a.app == app)
            .collect::<Vec<_>>();
        match found.as_slice() {
            [one] => Ok(one.id.clone()),
            [] => Err(format!("no artifact of {app} matches `{target}`")),
            _ => Err(format!(
                "`{target}` matches several artifacts of {app}; give more digits"
            )),
        }
    }

    /// The `/status` table (`templates/commands/status.md.tera`): per app and environment, what
    /// runs and whether automatic deploys are on.
    async fn status(&self, apps: &[&Policy]) -> String {
        #[derive(Serialize)]
        struct Row {
            app: String,
            env: String,
            running: String,
            /// Only a hold in force.
            hold: Option<HoldState>,
        }
        let mut rows = Vec::new();
        for p in apps {
            for (env, _) in p.envs() {
                let running = self
                    .store
                    .released(env, p.app())
                    .ok()
                    .flatten()
                    .map(|a| a.label())
                    .unwrap_or_default();
                let hold = match self.releaser.hold_state(env, p.app()).await {
                    Ok(Some(h)) if h.held => Some(h),
                    _ => None,
                };
                rows.push(Row {
                    app: p.app().to_string(),
                    env: env.to_string(),
                    running,
                    hold,
                });
            }
        }
        let mut ctx = tera::Context::new();
        ctx.insert("rows", &rows);
        render_markdown("status", STATUS_TEMPLATE, &ctx)
    }

    /// Creates the reply, or edits it in place; the marker names the answered comment.
    async fn write_reply(
        &self,
        repo: &RepoName,
        number: u64,
        answered: CommentId,
        existing: Option<CommentId>,
        text: &str,
    ) -> anyhow::Result<CommentId> {
        let body = format!("{text}\n\n{}", answer_marker(answered));
        Ok(match existing {
            Some(id) => {
                self.forge.update_comment(repo, id, &body).await?;
                id
            }
            None => self.forge.create_comment(repo, number, &body).await?,
        })
    }
}
