//! What the release loop says to people, rendered from the templates built into the binary
//! (`templates/release/`, `templates/commands/preview.md.tera`): pull request titles and
//! bodies, commit subjects, the preview comment, and the short sentences that end up in
//! replies, statuses and Slack. The code decides what to say; the templates hold the words.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::artifact::{Artifact, ArtifactId, HoldState};
use crate::domain::{AppName, CommitSha, EnvName, RepoName};
use crate::forge::{Comparison, PullRequest};
use crate::notify::reply::render_or;
use crate::policy::{EnvPolicy, Policy, VerifyRule, VerifySource};
use crate::verify::state::Verification;

use super::plan::{Gate, Plan};

const PR_TITLE: &str = include_str!("../../templates/release/pr_title.txt.tera");
const PR_BODY: &str = include_str!("../../templates/release/pr_body.md.tera");
const PREVIEW_PR_TITLE: &str = include_str!("../../templates/release/preview_pr_title.txt.tera");
const PREVIEW_PR_BODY: &str = include_str!("../../templates/release/preview_pr_body.md.tera");
const COMMIT_MESSAGE: &str = include_str!("../../templates/release/commit_message.txt.tera");
const NOTICE: &str = include_str!("../../templates/release/notice.txt.tera");
const PREVIEW_COMMENT: &str = include_str!("../../templates/commands/preview.md.tera");

/// The tag if there is one, else the short sha: what people call a version.
pub(super) fn version(a: &Artifact) -> String {
    a.tags
        .last()
        .map(|t| t.to_string())
        .unwrap_or_else(|| a.sha.short(12).to_owned())
}

/// Title and body of a release pull request.
pub(super) fn pr_text(
    plan: &Plan,
    policy: &Policy,
    rules: &EnvPolicy,
    artifact: &Artifact,
    superseded: Option<&ArtifactId>,
    notes: &Notes,
) -> (String, String) {
    // The event's link to the commit; without one, no link (never a guessed host).
    let source_url = artifact.url.clone().unwrap_or_default();
    let mut ctx = tera::Context::new();
    ctx.insert("app", policy.app().as_str());
    ctx.insert("env", plan.env.as_str());
    ctx.insert("artifact", artifact);
    ctx.insert("short_sha", artifact.sha.short(12));
    ctx.insert("version", &version(artifact));
    ctx.insert("source_url", &source_url);
    ctx.insert(
        "headline",
        artifact
            .message
            .as_deref()
            .and_then(|m| m.lines().next())
            .unwrap_or(""),
    );
    ctx.insert("trigger", &plan.trigger.to_string());
    ctx.insert("reason", &plan.reason);
    ctx.insert("merge", rules.merge.as_str());
    ctx.insert("approvals", &rules.required_approvals());
    let approvers: Vec<String> = rules.approvers.iter().map(|p| p.to_string()).collect();
    ctx.insert("approvers", &approvers);
    ctx.insert("superseded", &superseded.map(|s| s.to_string()));
    ctx.insert("ci", &ci_run(artifact));
    ctx.insert("changelog", &notes.changelog);
    ctx.insert("diff", &notes.diff);
    let render = |name: &str, text: &str| {
        render_or(name, text, &ctx, || {
            format!("Release {} {} to {}", plan.app, artifact.id, plan.env)
        })
    };
    (
        render("pr_title.txt.tera", PR_TITLE).trim().to_owned(),
        render("pr_body.md.tera", PR_BODY),
    )
}

/// Commits a release pull request lists at most; the rest are behind the compare link.
pub(super) const CHANGELOG_MAX: usize = 50;
/// Characters of a commit's headline in the changelog: 50 long ones must still fit the body.
const HEADLINE_MAX: usize = 200;
/// Characters of the gitops diff a release pull request shows (GitHub's body holds 65536).
const DIFF_MAX: usize = 20_000;

/// What a release pull request says beyond the plan: the changelog and the gitops diff.
#[derive(Debug, Default)]
pub(super) struct Notes {
    pub changelog: Changelog,
    pub diff: Option<GitopsDiff>,
}

/// The source commits from the artifact the env runs to the one proposed.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub(super) struct Changelog {
    /// `first` (nothing runs there), `same` (the same commit runs), `other_repo` (what runs
    /// was built from another repository), `unreadable` (the compare failed), `listed`, or
    /// `linked` (a pull request nobody waits on: the compare link alone).
    pub state: &'static str,
    /// The artifact the env runs.
    pub from: String,
    /// Why it could not be read (`unreadable`).
    pub error: String,
    /// Newest first, at most [`CHANGELOG_MAX`].
    pub commits: Vec<ChangelogCommit>,
    pub total: u64,
    /// Commits not listed; the compare link has them.
    pub more: u64,
    /// The proposed commit is older than what runs: commits that leave the env.
    pub behind: u64,
    pub compare_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(super) struct ChangelogCommit {
    pub short_sha: String,
    pub url: String,
    pub headline: String,
    /// The GitHub login, else the git author's name.
    pub author: String,
    pub is_login: bool,
    /// Pull requests of the source repository that brought the commit, as `owner/name#n`.
    pub pulls: Vec<String>,
}

impl Changelog {
    pub(super) fn first() -> Changelog {
        Changelog {
            state: "first",
            ..Changelog::default()
        }
    }

    pub(super) fn same(from: &ArtifactId) -> Changelog {
        Changelog {
            state: "same",
            from: from.to_string(),
            ..Changelog::default()
        }
    }

    pub(super) fn other_repo(from: &ArtifactId) -> Changelog {
        Changelog {
            state: "other_repo",
            from: from.to_string(),
            ..Changelog::default()
        }
    }

    pub(super) fn linked(from: &ArtifactId, compare_url: String) -> Changelog {
        Changelog {
            state: "linked",
            from: from.to_string(),
            compare_url,
            ..Changelog::default()
        }
    }

    pub(super) fn unreadable(from: &ArtifactId, error: impl std::fmt::Display) -> Changelog {
        Changelog {
            state: "unreadable",
            from: from.to_string(),
            error: error.to_string(),
            ..Changelog::default()
        }
    }

    /// The newest [`CHANGELOG_MAX`] commits of `compare`, newest first; `pulls` gives the
    /// pull request numbers of a commit.
    pub(super) fn listed(
        from: &ArtifactId,
        repo: &RepoName,
        compare: &Comparison,
        pulls: impl Fn(&CommitSha) -> Vec<u64>,
    ) -> Changelog {
        let commits: Vec<ChangelogCommit> = compare
            .commits
            .iter()
            .rev()
            .take(CHANGELOG_MAX)
            .map(|c| ChangelogCommit {
                short_sha: c.sha.short(7).to_owned(),
                url: c.html_url.clone(),
                headline: cut(c.message.lines().next().unwrap_or("").trim(), HEADLINE_MAX),
                is_login: c.author_login.is_some(),
                author: c
                    .author_login
                    .clone()
                    .unwrap_or_else(|| cut(c.author_name.trim(), HEADLINE_MAX)),
                pulls: pulls(&c.sha).iter().map(|n| format!("{repo}#{n}")).collect(),
            })
            .collect();
        Changelog {
            state: "listed",
            from: from.to_string(),
            more: compare.total_commits.saturating_sub(commits.len() as u64),
            total: compare.total_commits,
            behind: compare.behind_by,
            compare_url: compare.html_url.clone(),
            commits,
            error: String::new(),
        }
    }
}

/// `text` cut to `max` characters, with `…` when something was left out.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// The gitops change a release pull request makes, ready for a fenced block.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(super) struct GitopsDiff {
    pub text: String,
    /// A fence longer than any run of backticks in the text.
    pub fence: String,
    pub files: usize,
    pub cut: bool,
}

impl GitopsDiff {
    pub(super) fn new(diff: &str) -> GitopsDiff {
        let files = diff.lines().filter(|l| l.starts_with("diff --git ")).count();
        let mut text = String::new();
        let mut cut = false;
        for line in diff.split_inclusive('\n') {
            if text.len() + line.len() > DIFF_MAX {
                cut = true;
                break;
            }
            text.push_str(line);
        }
        let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
        GitopsDiff {
            fence: "`".repeat(longest.max(2) + 1),
            text: text.trim_end().to_owned(),
            files,
            cut,
        }
    }
}

/// The CI run that made the artifact, as the ledger recorded it: what made it and its link.
fn ci_run(artifact: &Artifact) -> serde_json::Value {
    let source = &artifact.source;
    let kind = source.kind.replace('_', " ");
    let label = match source.name.as_str() {
        "" => kind,
        name => format!("{kind} {name}"),
    };
    serde_json::json!({
        "label": label,
        "url": source.target_url.as_deref().unwrap_or(""),
    })
}

/// Title and body of a preview's pull request on the gitops repository.
pub(super) fn preview_pr_text(policy: &Policy, pr: &PullRequest, artifact: &Artifact) -> (String, String) {
    let mut ctx = tera::Context::new();
    ctx.insert("app", policy.app().as_str());
    ctx.insert("repo", policy.repo().as_str());
    ctx.insert("pull", &pr.number);
    ctx.insert("pull_url", &pr.html_url);
    ctx.insert("artifact", &artifact.id.to_string());
    let render = |name: &str, text: &str| {
        render_or(name, text, &ctx, || {
            format!("Preview {} of #{}", policy.app(), pr.number)
        })
    };
    (
        render("preview_pr_title.txt.tera", PREVIEW_PR_TITLE)
            .trim()
            .to_owned(),
        render("preview_pr_body.md.tera", PREVIEW_PR_BODY),
    )
}

/// The preview comment on a source pull request, without its marker; `artifact` is `None`
/// once the preview is removed, `expired` the `ttl` that removed it. `None` when the template
/// fails (logged): no comment beats a wrong one.
pub(super) fn preview_comment(
    policy: &Policy,
    env: &EnvName,
    instance: &AppName,
    artifact: Option<&Artifact>,
    url: Option<&str>,
    expired: Option<std::time::Duration>,
) -> Option<String> {
    let mut ctx = tera::Context::new();
    ctx.insert("removed", &artifact.is_none());
    ctx.insert("expired", &expired.is_some());
    ctx.insert(
        "ttl",
        &expired
            .map(|t| humantime::format_duration(t).to_string())
            .unwrap_or_default(),
    );
    ctx.insert("app", policy.app().as_str());
    ctx.insert("env", env.as_str());
    ctx.insert("instance", instance.as_str());
    ctx.insert(
        "artifact",
        &artifact.map(|a| a.id.to_string()).unwrap_or_default(),
    );
    ctx.insert("url", &url.unwrap_or_default());
    match tera::Tera::one_off(PREVIEW_COMMENT, &ctx, false) {
        Ok(t) => Some(t.trim().to_owned()),
        Err(e) => {
            tracing::error!(error = %e, "preview comment template failed");
            None
        }
    }
}

/// One line from `template`, chosen by `kind`; the fallback (a bug: the templates are tested)
/// is the kind itself, so the line still says what happened.
fn line(name: &str, template: &str, kind: &str, fill: impl FnOnce(&mut tera::Context)) -> String {
    let mut ctx = tera::Context::new();
    ctx.insert("kind", kind);
    fill(&mut ctx);
    render_or(name, template, &ctx, || kind.replace('_', " "))
        .trim()
        .to_owned()
}

fn commit_message(kind: &str, fill: impl FnOnce(&mut tera::Context)) -> String {
    line("commit_message.txt.tera", COMMIT_MESSAGE, kind, fill)
}

fn notice(kind: &str, fill: impl FnOnce(&mut tera::Context)) -> String {
    line("notice.txt.tera", NOTICE, kind, fill)
}

/// The subject of a release commit, and of the merge of its pull request.
pub(super) fn release_message(app: &AppName, env: &EnvName, artifact: &Artifact) -> String {
    commit_message("release", |ctx| {
        ctx.insert("app", app.as_str());
        ctx.insert("env", env.as_str());
        ctx.insert("version", &version(artifact));
    })
}

/// The subject of a rollback's commit; `from` is the artifact it replaces.
pub(super) fn rollback_message(
    app: &AppName,
    env: &EnvName,
    artifact: &Artifact,
    from: &ArtifactId,
) -> String {
    commit_message("rollback", |ctx| {
        ctx.insert("app", app.as_str());
        ctx.insert("env", env.as_str());
        ctx.insert("version", &version(artifact));
        ctx.insert("replaced", &from.to_string());
    })
}

/// The subject of a preview's commit.
pub(super) fn preview_message(app: &AppName, pull: u64, artifact: &ArtifactId) -> String {
    commit_message("preview", |ctx| {
        ctx.insert("app", app.as_str());
        ctx.insert("pull", &pull);
        ctx.insert("artifact", &artifact.to_string());
    })
}

/// The subject of the commit that removes a preview.
pub(super) fn preview_removed_message(app: &AppName, pull: u64) -> String {
    commit_message("preview_removed", |ctx| {
        ctx.insert("app", app.as_str());
        ctx.insert("pull", &pull);
    })
}

/// Why an automatic release of a held (env, app) did not go out, and how to undo the hold.
pub(super) fn on_hold(env: &EnvName, app: &AppName, hold: &HoldState) -> String {
    notice("on_hold", |ctx| {
        ctx.insert("env", env.as_str());
        ctx.insert("app", app.as_str());
        ctx.insert("reason", &hold.reason);
        ctx.insert("by", &hold.by);
    })
}

/// Why (env, app) takes no automatic deploy now, and what lifts the freeze.
pub(super) fn frozen(env: &EnvName, app: &AppName, freeze: &super::Frozen) -> String {
    notice("frozen", |ctx| {
        ctx.insert("env", env.as_str());
        ctx.insert("app", app.as_str());
        ctx.insert("until", &freeze.until.map(day_time));
        ctx.insert("window", &freeze.window);
        ctx.insert("by", &freeze.by);
        ctx.insert("reason", &freeze.reason);
    })
}

/// Why a rejected artifact does not deploy automatically.
pub(super) fn rejected(id: &ArtifactId, r: &crate::artifact::Rejection) -> String {
    notice("rejected", |ctx| {
        ctx.insert("artifact", &id.to_string());
        ctx.insert("by", &r.by);
        ctx.insert("reason", &r.reason);
    })
}

/// Why an `after` gate is closed; `None` when it is open.
pub(super) fn closed_gate(gate: &Gate) -> Option<String> {
    match gate {
        Gate::Open => None,
        Gate::Soaking { env, until } => Some(soaking(env, *until)),
        Gate::Upstream { env, soak, healthy } => Some(waiting_upstream(env, *soak, *healthy)),
    }
}

/// Why an `after` gate is closed: the artifact is live upstream, soaking until `until`.
fn soaking(env: &EnvName, until: DateTime<Utc>) -> String {
    notice("soaking", |ctx| {
        ctx.insert("env", env.as_str());
        ctx.insert("until", &until.to_rfc3339_opts(SecondsFormat::Secs, true));
    })
}

/// Why an `after` gate is closed: the artifact is not live upstream yet.
fn waiting_upstream(env: &EnvName, soak: Duration, healthy: bool) -> String {
    notice("waiting_upstream", |ctx| {
        ctx.insert("env", env.as_str());
        ctx.insert("healthy", &healthy);
        let soak = if soak > Duration::ZERO {
            humantime::format_duration(soak).to_string()
        } else {
            String::new()
        };
        ctx.insert("soak", &soak);
    })
}

/// The failure reason of a release whose pull request someone closed.
pub(super) fn closed_unmerged(pull: u64) -> String {
    notice("closed_unmerged", |ctx| ctx.insert("pull", &pull))
}

/// The failure reason of a release whose pull request GitHub refuses to merge.
pub(super) fn unmergeable(pull: u64, reason: &str) -> String {
    notice("unmergeable", |ctx| {
        ctx.insert("pull", &pull);
        ctx.insert("reason", reason);
    })
}

/// How a release went live, for the reply: its merged pull request, else its gitops commit.
pub(super) fn merged_by(pull: Option<u64>, commit: &CommitSha) -> String {
    match pull {
        Some(pull) => notice("merged_by_pull", |ctx| ctx.insert("pull", &pull)),
        None => notice("merged_by_commit", |ctx| ctx.insert("commit", commit.short(12))),
    }
}

/// What a merged release in a verifying env waits for.
pub(super) fn verify_waits_for(rule: &VerifyRule) -> String {
    let (controller, object) = match &rule.by {
        VerifySource::Flux(name) => ("Flux", name.clone()),
        VerifySource::ArgoCd(name) => ("Argo CD", name.clone()),
        VerifySource::Status(globs) => ("status", globs.to_string()),
    };
    notice("verify_waits_for", |ctx| {
        ctx.insert("controller", controller);
        ctx.insert("object", &object);
    })
}

/// Why a verification failed, for statuses, replies and Slack.
pub(super) fn verify_failed(env: &EnvName, v: &Verification) -> String {
    notice("verify_failed", |ctx| {
        ctx.insert("env", env.as_str());
        ctx.insert("state", v.state.as_str());
        ctx.insert("by", v.reported_by.map(|c| c.as_str()).unwrap_or_default());
        ctx.insert("message", v.message.trim());
    })
}

/// What followed a failed verification: a rollback to `to` and a hold, or a hold alone
/// (`why` not rolled back).
pub(super) fn verify_then_held(env: &EnvName, to: Option<&ArtifactId>, why: Option<&str>) -> String {
    notice("verify_then", |ctx| {
        ctx.insert("env", env.as_str());
        ctx.insert("to", &to.map(|a| a.to_string()).unwrap_or_default());
        ctx.insert("why", why.unwrap_or_default());
    })
}

/// A day and time people read in a status (`Mon 2026-12-07 07:00 UTC`).
pub fn day_time(at: DateTime<Utc>) -> String {
    at.format("%a %Y-%m-%d %H:%M UTC").to_string()
}

/// A time of day people read in a status (`14:05:09 UTC`).
pub(super) fn clock_time(at: DateTime<Utc>) -> String {
    at.format("%H:%M:%S UTC").to_string()
}

/// How far a release pull request is from its approval rule.
pub(super) fn approvals(approved: usize, required: u32) -> String {
    notice("approvals", |ctx| {
        ctx.insert("approved", &approved);
        ctx.insert("required", &required);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{BranchName, RepoName, TagName};
    use crate::gitops::Trigger;

    #[test]
    fn a_gate_waiting_upstream_says_where_and_how_long() {
        let gate = Gate::Upstream {
            env: EnvName::new("staging").unwrap(),
            soak: Duration::from_secs(30 * 60),
            healthy: false,
        };
        assert_eq!(
            closed_gate(&gate).as_deref(),
            Some("waiting until it is live in staging for 30m")
        );
        let verifying = Gate::Upstream {
            env: EnvName::new("staging").unwrap(),
            soak: Duration::ZERO,
            healthy: true,
        };
        assert_eq!(
            closed_gate(&verifying).as_deref(),
            Some("waiting until it is healthy in staging")
        );
        assert_eq!(closed_gate(&Gate::Open), None);
    }

    const POLICY: &str = r#"
app = "web"
repo = "acme/web"
template = "t"
[env.staging]
merge = "auto"
[env.production]
merge = "approval"
approvals = 2
approvers = ["team:acme/sre", "user:bob"]
"#;

    fn artifact() -> Artifact {
        crate::release::plan::tests::artifact(&[], &[], &[])
    }

    fn names() -> (AppName, EnvName) {
        (AppName::new("web").unwrap(), EnvName::new("production").unwrap())
    }

    #[test]
    fn the_release_pull_request_states_its_merge_rule() {
        let policy = Policy::from_toml("web.toml", POLICY).unwrap();
        let a = artifact();
        let body = |env: &str| {
            let env = EnvName::new(env).unwrap();
            let plan = Plan {
                env: env.clone(),
                app: policy.app().clone(),
                artifact: a.id.clone(),
                trigger: Trigger::Policy,
                reason: "branch main".into(),
                reply: None,
                overrides: Vec::new(),
            };
            let (title, body) = pr_text(
                &plan,
                &policy,
                policy.env(&env).unwrap(),
                &a,
                None,
                &Notes::default(),
            );
            assert_eq!(title, format!("Release web aaaaaaaaaaaa to {env}"));
            body
        };
        assert!(
            body("production").contains(
                "| Merge rule | 2 approving review(s) from team:acme/sre, user:bob on the current head; the source commit's author does not count |"
            ),
            "{}",
            body("production")
        );
        assert!(body("staging").contains("| Merge rule | merged by auger at once |"));
    }

    fn production_body(a: &Artifact, notes: &Notes) -> String {
        let policy = Policy::from_toml("web.toml", POLICY).unwrap();
        let env = EnvName::new("production").unwrap();
        let plan = Plan {
            env: env.clone(),
            app: policy.app().clone(),
            artifact: a.id.clone(),
            trigger: Trigger::Policy,
            reason: "tag v1".into(),
            reply: None,
            overrides: Vec::new(),
        };
        pr_text(&plan, &policy, policy.env(&env).unwrap(), a, None, notes).1
    }

    fn comparison(n: usize) -> Comparison {
        let commits = (0..n)
            .map(|i| crate::forge::ComparedCommit {
                sha: CommitSha::new(format!("{i:02}{}", "c".repeat(38))).unwrap(),
                message: format!("change {i}\n\nmore words"),
                author_name: format!("Dev {i}"),
                // Every third commit's email maps to no GitHub account.
                author_login: (i % 3 != 0).then(|| format!("dev{i}")),
                html_url: format!("https://github.com/acme/web/commit/{i:02}"),
            })
            .collect();
        Comparison {
            total_commits: n as u64,
            behind_by: 0,
            html_url: "https://github.com/acme/web/compare/a...b".into(),
            commits,
        }
    }

    #[test]
    fn the_changelog_lists_the_newest_fifty_commits_then_links_the_full_comparison() {
        let from: ArtifactId = "web@bbbbbbbbbbbb".parse().unwrap();
        let repo = RepoName::new("acme/web").unwrap();
        let few = Changelog::listed(&from, &repo, &comparison(3), |sha| {
            if sha.as_str().starts_with("01") {
                vec![12, 14]
            } else {
                Vec::new()
            }
        });
        let body = production_body(
            &artifact(),
            &Notes {
                changelog: few,
                diff: None,
            },
        );
        assert!(
            body.contains("3 commit(s) since `web@bbbbbbbbbbbb`, what **production** runs:\n\n- [`02ccccc`](https://github.com/acme/web/commit/02) change 2 by **dev2**\n"),
            "{body}"
        );
        assert!(
            body.contains("change 1 (acme/web#12, acme/web#14) by **dev1**\n"),
            "{body}"
        );
        assert!(
            body.contains(") change 0 by Dev 0\n"),
            "a null author is the git name: {body}"
        );
        assert!(body.contains("[The comparison on GitHub](https://github.com/acme/web/compare/a...b)."));

        let many = Changelog::listed(&from, &repo, &comparison(60), |_| Vec::new());
        let body = production_body(
            &artifact(),
            &Notes {
                changelog: many,
                diff: None,
            },
        );
        assert_eq!(body.matches("\n- [`").count(), 50, "{body}");
        assert!(
            body.contains("60 commit(s) since `web@bbbbbbbbbbbb`, what **production** runs; the newest 50:")
        );
        assert!(
            body.contains("runs; the newest 50:\n\n- [`59ccccc`](https://github.com/acme/web/commit/59) change 59 by **dev59**\n"),
            "newest first: {body}"
        );
        assert!(body.contains(") change 57 by Dev 57\n"), "{body}");
        assert!(
            !body.contains("change 9 "),
            "the oldest ten are left to the link: {body}"
        );
        assert!(
            body.contains(
                "… and 10 more: [the full comparison on GitHub](https://github.com/acme/web/compare/a...b)."
            ),
            "{body}"
        );
    }

    #[test]
    fn the_body_says_when_there_is_no_changelog_and_shows_the_diff_and_the_ci_run() {
        let from: ArtifactId = "web@bbbbbbbbbbbb".parse().unwrap();
        let mut a = artifact();
        let first = production_body(
            &a,
            &Notes {
                changelog: Changelog::first(),
                diff: None,
            },
        );
        assert!(
            first.contains("Nothing runs in **production** yet: this is the first release of **web** there."),
            "{first}"
        );
        assert!(
            first.contains("| CI run | status ci (no link recorded) |"),
            "{first}"
        );
        assert!(!first.contains("<details>"), "{first}");

        let failed = Changelog::unreadable(&from, "cannot reach GitHub: timed out");
        a.source = crate::artifact::Source {
            kind: "workflow_run".into(),
            name: "CI".into(),
            target_url: Some("https://github.com/acme/web/actions/runs/9".into()),
        };
        let diff = "diff --git a/production/web/deployment.yaml b/production/web/deployment.yaml\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-image: a\n+image: b ```\n";
        let body = production_body(
            &a,
            &Notes {
                changelog: failed,
                diff: Some(GitopsDiff::new(diff)),
            },
        );
        assert!(
            body.contains("The changelog from `web@bbbbbbbbbbbb` (what **production** runs) could not be read from GitHub: cannot reach GitHub: timed out"),
            "{body}"
        );
        assert!(
            body.contains("| CI run | [workflow run CI](https://github.com/acme/web/actions/runs/9) |"),
            "{body}"
        );
        assert!(
            body.contains("<details>\n<summary>Gitops changes (1 file(s))</summary>\n\n````diff\ndiff --git"),
            "a fence longer than the diff's backticks: {body}"
        );
        assert!(body.contains("+image: b ```\n````\n"), "{body}");
    }

    #[test]
    fn a_long_headline_is_cut() {
        let from: ArtifactId = "web@bbbbbbbbbbbb".parse().unwrap();
        let mut c = comparison(1);
        c.commits[0].message = format!("{}\nbody", "é".repeat(300));
        let log = Changelog::listed(&from, &RepoName::new("acme/web").unwrap(), &c, |_| Vec::new());
        assert_eq!(log.commits[0].headline, format!("{}…", "é".repeat(HEADLINE_MAX)));
    }

    #[test]
    fn a_long_diff_is_cut_at_a_line() {
        let line = "+".repeat(99) + "\n";
        let d = GitopsDiff::new(&line.repeat(300));
        assert!(d.cut);
        assert!(d.text.len() <= DIFF_MAX);
        assert!(d.text.lines().all(|l| l.len() == 99));
        assert_eq!(d.fence, "```");
    }

    #[test]
    fn a_preview_pull_request_names_the_app_and_the_source_pull_request() {
        let policy = Policy::from_toml("web.toml", POLICY).unwrap();
        let a = artifact();
        let pr = PullRequest {
            number: 7,
            title: "feat".into(),
            body: String::new(),
            state: crate::forge::PullState::Open,
            draft: false,
            merged: false,
            merge_commit_sha: None,
            head: crate::forge::PullHead {
                branch: BranchName::new("feat").unwrap(),
                sha: a.sha.clone(),
                repo: Some(RepoName::new("acme/web").unwrap()),
            },
            base_branch: BranchName::new("main").unwrap(),
            author: crate::forge::Actor {
                login: "alice".into(),
                id: 1,
                is_bot: false,
            },
            html_url: "https://github.com/acme/web/pull/7".into(),
        };
        let (title, body) = preview_pr_text(&policy, &pr, &a);
        assert_eq!(title, "Preview web of acme/web#7");
        assert_eq!(
            body,
            "Preview of `web@aaaaaaaaaaaa` for https://github.com/acme/web/pull/7.\n"
        );
    }

    #[test]
    fn commit_subjects_name_app_version_and_env() {
        let (app, env) = names();
        let mut a = artifact();
        assert_eq!(
            release_message(&app, &env, &a),
            "Release web aaaaaaaaaaaa to production"
        );
        a.tags.push(TagName::new("v1.2.0").unwrap());
        assert_eq!(
            release_message(&app, &env, &a),
            "Release web v1.2.0 to production"
        );
        let from: ArtifactId = "web@bbbbbbbbbbbb".parse().unwrap();
        assert_eq!(
            rollback_message(&app, &env, &a, &from),
            "Roll back web in production to v1.2.0 (from web@bbbbbbbbbbbb)"
        );
        assert_eq!(
            preview_message(&app, 7, &a.id),
            "Preview web of pull request #7 (web@aaaaaaaaaaaa)"
        );
        assert_eq!(
            preview_removed_message(&app, 7),
            "Remove the preview of web for pull request #7"
        );
    }

    #[test]
    fn notices_say_what_happened_and_what_to_do() {
        let (app, env) = names();
        let hold = HoldState {
            held: true,
            by: "@alice".into(),
            reason: "incident 42".into(),
            time: chrono::DateTime::UNIX_EPOCH,
        };
        assert_eq!(
            on_hold(&env, &app, &hold),
            "production/web is on hold (incident 42, by @alice); automatic deploys resume with /resume production"
        );
        let until = DateTime::parse_from_rfc3339("2026-01-01T10:30:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            soaking(&env, until),
            "soaking in production until 2026-01-01T10:30:00Z"
        );
        assert_eq!(
            waiting_upstream(&env, Duration::ZERO, false),
            "waiting until it is live in production"
        );
        assert_eq!(
            waiting_upstream(&env, Duration::from_secs(5400), false),
            "waiting until it is live in production for 1h 30m"
        );
        assert_eq!(
            closed_unmerged(7),
            "release pull request #7 was closed without merging"
        );
        assert_eq!(
            unmergeable(7, "conflict"),
            "release pull request #7 cannot be merged: conflict"
        );
        let commit = CommitSha::new("c".repeat(40)).unwrap();
        assert_eq!(merged_by(Some(7), &commit), "pull request #7 merged");
        assert_eq!(merged_by(None, &commit), "gitops commit cccccccccccc");
        assert_eq!(approvals(1, 2), "1 of 2 approvals");
    }

    #[test]
    fn the_preview_comment_says_where_the_preview_runs_and_when_it_is_gone() {
        let policy = Policy::from_toml("web.toml", POLICY).unwrap();
        let (env, instance) = (
            EnvName::new("preview").unwrap(),
            AppName::new("web-pr-7").unwrap(),
        );
        let a = artifact();
        let live = preview_comment(
            &policy,
            &env,
            &instance,
            Some(&a),
            Some("https://pr-7.example"),
            None,
        )
        .unwrap();
        assert!(
            live.starts_with(
                "🔭 Preview of **web** for this pull request: `web@aaaaaaaaaaaa` is released to `preview/web-pr-7/`: https://pr-7.example."
            ),
            "{live}"
        );
        let removed = preview_comment(&policy, &env, &instance, None, None, None).unwrap();
        assert_eq!(
            removed,
            "🧹 The preview of **web** for this pull request was removed (`preview/web-pr-7/`)."
        );
        let ttl = std::time::Duration::from_secs(72 * 3600);
        let expired = preview_comment(&policy, &env, &instance, None, None, Some(ttl)).unwrap();
        assert_eq!(
            expired,
            "⌛ The preview of **web** for this pull request was removed after 3days without a push (`preview/web-pr-7/`); the next push brings it back."
        );
    }
}
