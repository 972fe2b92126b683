//! Replies to PR comment commands: one comment per command, edited in place as the work
//! progresses (queued → pull request waiting → released / failed). A hidden marker ties a reply
//! to the comment it answers, so a replayed delivery finds its reply instead of posting a
//! second one, and a release pull request carries the reply's address to the merge.

use serde::{Deserialize, Serialize};

use crate::domain::RepoName;
use crate::forge::CommentId;

const TEMPLATE: &str = include_str!("../../templates/commands/reply.md.tera");

/// Where a reply lives: a comment on an issue or pull request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyRef {
    pub repo: RepoName,
    pub issue: u64,
    /// The reply itself.
    pub comment: CommentId,
    /// The comment with the command it answers.
    pub answers: CommentId,
}

impl ReplyRef {
    /// `<!-- auger:reply owner/name#12 345 344 -->`, put in a release pull request's body.
    pub fn marker(&self) -> String {
        format!(
            "<!-- auger:reply {}#{} {} {} -->",
            self.repo, self.issue, self.comment, self.answers
        )
    }

    /// The reference a [`ReplyRef::marker`] in `text` names, if any.
    pub fn find_in(text: &str) -> Option<ReplyRef> {
        let rest = &text[text.find("<!-- auger:reply ")? + "<!-- auger:reply ".len()..];
        let rest = &rest[..rest.find("-->")?];
        let mut words = rest.split_whitespace();
        let (repo, issue) = words.next()?.rsplit_once('#')?;
        Some(ReplyRef {
            repo: RepoName::new(repo).ok()?,
            issue: issue.parse().ok()?,
            comment: CommentId(words.next()?.parse().ok()?),
            answers: CommentId(words.next()?.parse().ok()?),
        })
    }
}

/// The marker in a reply that names the comment it answers.
pub fn answer_marker(comment: CommentId) -> String {
    format!("<!-- auger:answer {comment} -->")
}

/// What a reply says.
#[derive(Debug, Clone, Default)]
pub struct ReplyText<'a> {
    /// `queued`, `awaiting`, `retrying`, `released`, `already`, `held`, `rolled_back`, `rollback_awaiting`,
    /// `hold_set`, `hold_already`, `resumed`, `not_held`, `freeze_set`, `freeze_already`,
    /// `unfrozen`, `not_frozen`, `rejected`, `reject_already`, `refused`, `failed`, or anything else
    /// for `detail` alone.
    pub state: &'a str,
    /// The command as auger understood it (`/deploy staging`), canonical form.
    pub command: &'a str,
    pub app: &'a str,
    pub env: &'a str,
    pub artifact: &'a str,
    /// Markdown link or reference (`#12`, a URL).
    pub link: &'a str,
    pub detail: &'a str,
}

/// Renders a text from a template built into the binary (Markdown or plain text, no escaping).
/// The templates are tested, so a failure is a bug: it is logged, and `fallback` stands in.
pub fn render_or(
    what: &str,
    template: &str,
    ctx: &tera::Context,
    fallback: impl FnOnce() -> String,
) -> String {
    tera::Tera::one_off(template, ctx, false).unwrap_or_else(|e| {
        tracing::error!(error = %e, template = what, "built-in template failed");
        fallback()
    })
}

/// [`render_or`] for a reply, which says it failed rather than say nothing.
pub fn render_markdown(what: &str, template: &str, ctx: &tera::Context) -> String {
    render_or(what, template, ctx, || {
        format!("(auger could not write its {what} reply; its log says why)")
    })
}

/// Renders a reply (templates/commands/reply.md.tera).
pub fn render_reply(r: &ReplyText<'_>) -> String {
    let mut ctx = tera::Context::new();
    ctx.insert("state", r.state);
    ctx.insert("command", r.command);
    ctx.insert("app", r.app);
    ctx.insert("env", r.env);
    ctx.insert("artifact", r.artifact);
    ctx.insert("link", r.link);
    ctx.insert("detail", r.detail);
    tera::Tera::one_off(TEMPLATE, &ctx, false)
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "reply template failed");
            format!("{} {}", r.command, r.detail)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_round_trips_and_garbage_is_none() {
        let r = ReplyRef {
            repo: RepoName::new("acme/web").unwrap(),
            issue: 12,
            comment: CommentId(345),
            answers: CommentId(344),
        };
        let body = format!("Release…\n\n{}\n", r.marker());
        assert_eq!(ReplyRef::find_in(&body), Some(r));
        assert_eq!(ReplyRef::find_in("<!-- auger:reply ../x#1 2 3 -->"), None);
        assert_eq!(ReplyRef::find_in("nothing"), None);
    }

    /// Every state's text, one per line, as `render_reply` writes them.
    #[test]
    fn replies_render_per_state() {
        let texts: Vec<String> = [
            ("released", "/deploy staging", "", "web@0123456789ab", "", ""),
            ("refused", "/deploy prod", "", "", "", "unknown environment"),
            ("rolled_back", "/x production", "web", "web@0123456789ab", "", ""),
            (
                "rollback_awaiting",
                "/x production",
                "web",
                "web@0123456789ab",
                "#7",
                "",
            ),
            ("hold_set", "/x production", "web", "", "", ""),
            ("hold_already", "/x production", "web", "", "", ""),
            ("resumed", "/x production", "web", "", "", ""),
            ("not_held", "/x production", "web", "", "", ""),
        ]
        .into_iter()
        .map(|(state, command, app, artifact, link, detail)| {
            let env = command.rsplit(' ').next().unwrap_or_default();
            let text = render_reply(&ReplyText {
                state,
                command,
                app,
                env,
                artifact,
                link,
                detail,
            });
            format!("{state}: {text}")
        })
        .collect();
        insta::assert_snapshot!(texts.join("\n"));
    }
}
