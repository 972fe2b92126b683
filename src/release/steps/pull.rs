//! The release pull request: one per (env, app), from `auger/<env>/<app>`, opened or updated
//! for the newest artifact, its approvals counted on the current head, merged with that head
//! pinned. What a pull request carries is always read from its head's `release.json` in git.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::record::Done;
use super::render::release_info;
use crate::artifact::{Artifact, ArtifactId};
use crate::domain::{AppName, BranchName, CommitSha, EnvName, RepoName};
use crate::forge::{DeploymentId, Forge, ForgeError, MergeMethod, MergeOutcome, PullHead, PullRequest};
use crate::gitops::{GitopsTarget, ReleaseInfo, pr_branch, same_repo};
use crate::policy::{EnvPolicy, MergeMode, Policy};
use crate::release::approval::{Tally, tally};
use crate::release::plan::Plan;
use crate::release::{
    ReleaseError, ReleaseOutcome, Releaser, Result, WAITING_FOR_CHECKS, parse_pr_branch, text,
};

/// What a 405 from GitHub's merge means for the release.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// Branch protection waits for something that may still come (a required check, reviews,
    /// mergeability being computed, a base that moved): tried again, with this reason.
    Waits(String),
    /// It will not merge as it is (a required check failed, the merge method is not allowed).
    Final,
}

/// Reads GitHub's 405 message. A conflict is not final either: the next attempt rebuilds the
/// release branch on the new base.
fn merge_refusal(message: &str) -> Refusal {
    let lower = message.to_ascii_lowercase();
    let check = || message.split('"').nth(1).unwrap_or("").to_owned();
    if lower.contains("is failing") || lower.contains("not allowed") {
        Refusal::Final
    } else if lower.contains("status check") || lower.contains("status checks") {
        let name = check();
        Refusal::Waits(if name.is_empty() {
            WAITING_FOR_CHECKS.into()
        } else {
            format!("{WAITING_FOR_CHECKS}: {name}")
        })
    } else if lower.contains("review") {
        Refusal::Waits("waiting for required reviews".into())
    } else if lower.contains("base branch was modified") {
        Refusal::Waits("waiting: the base branch moved; merging again".into())
    } else {
        Refusal::Waits(format!("waiting: GitHub will not merge yet ({message})"))
    }
}

/// How many merged pull requests [`Releaser::forget_merged_here`] remembers: more than can be
/// merged between a merge and its webhook.
const MERGED_HERE_KEPT: usize = 256;

/// One pull request auger opened, as read back from GitHub and the gitops repository.
pub(in crate::release) struct ReleasePull {
    pub pr: PullRequest,
    pub env: EnvName,
    pub app: AppName,
    pub info: ReleaseInfo,
}

/// The commit a merged pull request became (its head, if GitHub does not say).
pub(in crate::release) fn merge_commit(pr: &PullRequest) -> CommitSha {
    pr.merge_commit_sha.clone().unwrap_or(pr.head.sha.clone())
}

/// The pull request open for an (env, app) before a release, and the artifact it proposed
/// if that is another one.
#[derive(Default)]
pub(super) struct OpenPull {
    pub pr: Option<PullRequest>,
    pub superseded: Option<ArtifactId>,
}

impl Releaser {
    pub(in crate::release) fn pr_branch(&self, env: &EnvName, app: &AppName) -> Result<BranchName> {
        BranchName::new(pr_branch(env, app)).map_err(|e| ReleaseError::Internal(e.to_string()))
    }

    /// The release pull request open for `plan`'s (env, app), if any.
    pub(super) async fn open_pull(
        &self,
        plan: &Plan,
        rules: &EnvPolicy,
        artifact: &ArtifactId,
    ) -> Result<OpenPull> {
        let forge = self.forge_for(&plan.env, rules.merge)?;
        let branch = self.pr_branch(&plan.env, &plan.app)?;
        let repo = &self.target(&plan.env, &plan.app).repo;
        let pr = forge.find_open_pull(repo, &branch).await?;
        let proposed = match &pr {
            Some(pr) => self.proposed(pr, &plan.env, &plan.app).await,
            None => None,
        };
        Ok(OpenPull {
            pr,
            superseded: proposed.filter(|id| id != artifact),
        })
    }

    /// `head` is on the pull request branch: the pull request says so, and is merged if its
    /// rule is met already.
    pub(super) async fn propose(
        &self,
        plan: &Plan,
        rules: &EnvPolicy,
        artifact: &Artifact,
        open: OpenPull,
        head: CommitSha,
        deployment: Option<DeploymentId>,
    ) -> Result<ReleaseOutcome> {
        let pr = self.ensure_pull(plan, artifact, open, &head).await?;
        crate::crash::at(crate::crash::Point::PullOpened);
        let rp = ReleasePull {
            env: plan.env.clone(),
            app: plan.app.clone(),
            info: release_info(plan, artifact),
            pr: PullRequest {
                head: PullHead {
                    sha: head,
                    ..pr.head.clone()
                },
                ..pr
            },
        };
        if rules.merge == MergeMode::Approval {
            self.release_pending(plan, artifact, rules).await;
        }
        let outcome = self.evaluate(&rp, deployment).await?;
        if let Some(reply) = &plan.reply {
            self.reply_awaiting(reply, &outcome).await;
        }
        Ok(outcome)
    }

    /// Opens the release pull request, or updates the open one (title, body) for a newer
    /// artifact. The body's changelog and diff are read only when the body is written.
    async fn ensure_pull(
        &self,
        plan: &Plan,
        artifact: &Artifact,
        open: OpenPull,
        head: &CommitSha,
    ) -> Result<PullRequest> {
        let (policy, rules) = &self.rules(&plan.app, &plan.env)?;
        let forge = self.forge_for(&plan.env, rules.merge)?;
        let superseded = open.superseded.as_ref();
        let (title, _) = text::pr_text(plan, policy, rules, artifact, superseded, &text::Notes::default());
        if let Some(pr) = &open.pr
            && superseded.is_none()
            && pr.title == title
        {
            return Ok(pr.clone());
        }
        let mut artifact = artifact.clone();
        if artifact.url.is_none()
            && let Ok(base) = forge.repo_html_url(&artifact.repo).await
        {
            artifact.url = Some(format!("{base}/commit/{}", artifact.sha));
        }
        let notes = self
            .release_notes(
                forge.as_ref(),
                &plan.env,
                &artifact,
                head,
                rules.merge == MergeMode::Approval,
            )
            .await;
        let (title, mut body) = text::pr_text(plan, policy, rules, &artifact, superseded, &notes);
        if let Some(reply) = &plan.reply {
            body.push_str(&reply.marker());
            body.push('\n');
        }
        let target = self.target(&plan.env, &plan.app);
        match open.pr {
            Some(pr) if open.superseded.is_some() || pr.title != title => {
                Ok(forge.update_pull(&target.repo, pr.number, &title, &body).await?)
            }
            Some(pr) => Ok(pr),
            None => {
                let branch = self.pr_branch(&plan.env, &plan.app)?;
                self.create_pull(forge.as_ref(), target, &branch, &title, &body)
                    .await
            }
        }
    }

    /// Opens a pull request from `branch` against `target`'s branch. Not repeated on an
    /// unclear answer (opening is not idempotent): GitHub may have opened it anyway, so it is
    /// looked for.
    async fn create_pull(
        &self,
        forge: &dyn Forge,
        target: &GitopsTarget,
        branch: &BranchName,
        title: &str,
        body: &str,
    ) -> Result<PullRequest> {
        match forge
            .create_pull(&target.repo, branch, target.branch(), title, body)
            .await
        {
            Ok(pr) => Ok(pr),
            Err(
                ForgeError::OutcomeUnknown { .. } | ForgeError::Invalid { .. } | ForgeError::Server { .. },
            ) => match forge.find_open_pull(&target.repo, branch).await? {
                Some(pr) => Ok(pr),
                None => Err(ReleaseError::Internal(format!(
                    "opening the release pull request from {branch} failed and none is open"
                ))),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Counts approvals on a release pull request and merges it when the rule is met
    /// (`auto` mode: at once).
    pub(in crate::release) async fn evaluate(
        &self,
        rp: &ReleasePull,
        deployment: Option<DeploymentId>,
    ) -> Result<ReleaseOutcome> {
        let (policy, rules) = &self.rules(&rp.app, &rp.env)?;
        let forge = self.forge_for(&rp.env, rules.merge)?;
        let artifact = self.artifact(&rp.info.artifact).await?;
        let required = rules.required_approvals();
        let t = match rules.merge {
            MergeMode::Approval => {
                self.count_approvals(forge.as_ref(), policy, rules, rp, &artifact)
                    .await?
            }
            MergeMode::Auto | MergeMode::Direct => Tally::default(),
        };
        if !t.met(required) {
            tracing::info!(
                pull = rp.pr.number, env = %rp.env, app = %rp.app,
                approvals = t.approved_by.len(), required, blocked_by = ?t.blocked_by, ignored = ?t.ignored,
                "release pull request waits for approval"
            );
            return Ok(ReleaseOutcome::AwaitingApproval {
                pull: rp.pr.number,
                url: rp.pr.html_url.clone(),
                tally: t,
                required,
            });
        }
        let commit = self.merge(forge.as_ref(), rp, &artifact).await?;
        crate::crash::at(crate::crash::Point::Merged);
        let outcome = self.merged(rp, &artifact, commit, deployment).await?;
        self.remember_merged_here(&self.target(&rp.env, &rp.app).repo, rp.pr.number);
        Ok(outcome)
    }

    /// The reviews on the pull request's current head, counting only the policy's approvers.
    async fn count_approvals(
        &self,
        forge: &dyn Forge,
        policy: &Policy,
        rules: &EnvPolicy,
        rp: &ReleasePull,
        artifact: &Artifact,
    ) -> Result<Tally> {
        let repo = &self.target(&rp.env, &rp.app).repo;
        let reviews = forge.list_reviews(repo, rp.pr.number).await?;
        let people = self.people.as_ref().ok_or_else(|| ReleaseError::NoForge {
            env: rp.env.clone(),
            mode: rules.merge,
        })?;
        let logins: BTreeSet<String> = reviews
            .iter()
            .map(|r| r.user.login.to_ascii_lowercase())
            .collect();
        let mut approvers = BTreeSet::new();
        for login in logins {
            if people.admits(&rules.approvers, policy.repo(), &login).await? {
                approvers.insert(login);
            }
        }
        Ok(tally(
            &reviews,
            &rp.pr.head.sha,
            artifact.author.as_deref(),
            |l| approvers.contains(&l.to_ascii_lowercase()),
        ))
    }

    /// Merges the pull request at the head that was counted; the merge commit.
    async fn merge(&self, forge: &dyn Forge, rp: &ReleasePull, artifact: &Artifact) -> Result<CommitSha> {
        let title = text::release_message(&rp.app, &rp.env, artifact);
        // The release's trailers close the merge commit too, so `git log --first-parent` of
        // the gitops branch reads as the release history on its own.
        let trailers: Vec<String> = rp.info.trailers().iter().map(ToString::to_string).collect();
        let repo = &self.target(&rp.env, &rp.app).repo;
        let merged = forge
            .merge_pull(
                repo,
                rp.pr.number,
                &rp.pr.head.sha,
                MergeMethod::Merge,
                &title,
                &trailers.join("\n"),
            )
            .await;
        let not_merged = |reason: &str, retry: bool| ReleaseError::NotMerged {
            pull: rp.pr.number,
            reason: reason.into(),
            retry,
        };
        match merged {
            Ok(MergeOutcome::Merged { sha }) => Ok(sha),
            Ok(MergeOutcome::HeadMoved) => Err(not_merged(
                "its head moved since the approvals were counted; re-checking on the next event",
                true,
            )),
            Ok(MergeOutcome::NotMergeable(message)) => match merge_refusal(&message) {
                Refusal::Waits(why) => Err(not_merged(&why, true)),
                Refusal::Final => Err(not_merged(&message, false)),
            },
            Err(ForgeError::OutcomeUnknown { .. } | ForgeError::Server { .. }) => {
                // Read back: GitHub may have merged it (a 5xx after the effect is possible).
                let pr = forge.get_pull(repo, rp.pr.number).await?;
                match (pr.merged, pr.merge_commit_sha) {
                    (true, Some(sha)) => Ok(sha),
                    _ => Err(not_merged("GitHub did not confirm the merge", true)),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A release pull request was merged (by auger or by a person) as `commit`: the release
    /// is live.
    pub(in crate::release) async fn merged(
        &self,
        rp: &ReleasePull,
        artifact: &Artifact,
        commit: CommitSha,
        deployment: Option<DeploymentId>,
    ) -> Result<ReleaseOutcome> {
        let reply = crate::notify::ReplyRef::find_in(&rp.pr.body);
        let done = Done {
            pull: Some(rp.pr.number),
            deployment,
            reply: reply.as_ref(),
            rollback_from: None,
        };
        self.released(&rp.env, artifact, &rp.info.trigger, &commit, done)
            .await?;
        Ok(ReleaseOutcome::Released {
            commit,
            pull: Some(rp.pr.number),
        })
    }

    /// Notes that this process merged and recorded pull request `number` of `repo`.
    fn remember_merged_here(&self, repo: &RepoName, number: u64) {
        let mut merged = self.merged_here.lock().unwrap_or_else(|p| p.into_inner());
        if merged.len() >= MERGED_HERE_KEPT {
            merged.pop_front();
        }
        merged.push_back((repo.clone(), number));
    }

    /// Whether this process merged and recorded pull request `number` of `repo` (then
    /// forgotten: its `closed` webhook comes once).
    pub(in crate::release) fn forget_merged_here(&self, repo: &RepoName, number: u64) -> bool {
        let mut merged = self.merged_here.lock().unwrap_or_else(|p| p.into_inner());
        match merged
            .iter()
            .position(|(r, n)| *n == number && same_repo(r, repo))
        {
            Some(at) => merged.remove(at).is_some(),
            None => false,
        }
    }

    /// Re-evaluates the pull request open from `branch`, if any (after a restart).
    pub(in crate::release) async fn recheck_pull(
        &self,
        forge: &Arc<dyn Forge>,
        env: &EnvName,
        app: &AppName,
        branch: &BranchName,
    ) -> Option<(u64, Result<ReleaseOutcome>)> {
        let repo = &self.target(env, app).repo;
        let pr = match forge.find_open_pull(repo, branch).await {
            Ok(Some(pr)) => pr,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(%env, %app, error = %e, "cannot look for an open release pull request");
                return None;
            }
        };
        let number = pr.number;
        let result = match self.read_pull(repo, number).await {
            Ok(Some(rp)) => self.evaluate(&rp, None).await,
            Ok(None) => return None,
            Err(e) => Err(e),
        };
        Some((number, result))
    }

    /// Pull request `number` of gitops repository `repo` re-read from GitHub; `None` when it
    /// is not one of auger's release pull requests (another branch, a preview, an app without
    /// policy, an (env, app) that releases to another repository).
    pub(in crate::release) async fn read_pull(
        &self,
        repo: &RepoName,
        number: u64,
    ) -> Result<Option<ReleasePull>> {
        let Some(forge) = &self.forge else { return Ok(None) };
        let pr = forge.get_pull(repo, number).await?;
        let Some((env, app)) = parse_pr_branch(pr.head.branch.as_str()) else {
            return Ok(None);
        };
        if pr.is_from_fork(repo) || self.rules(&app, &env).is_err() {
            return Ok(None);
        }
        if !same_repo(&self.target(&env, &app).repo, repo) {
            tracing::info!(pull = number, %repo, %env, %app, "a release branch in another repository than the env releases to; ignored");
            return Ok(None);
        }
        let Some(info) = self.release_at_head(&pr, &env, &app).await? else {
            tracing::warn!(
                pull = number,
                "release pull request without a release.json at its head; ignored"
            );
            return Ok(None);
        };
        Ok(Some(ReleasePull { pr, env, app, info }))
    }

    /// The artifact a release pull request's head proposes (its `release.json`).
    async fn proposed(&self, pr: &PullRequest, env: &EnvName, app: &AppName) -> Option<ArtifactId> {
        match self.release_at_head(pr, env, app).await {
            Ok(info) => info.map(|i| i.artifact),
            Err(e) => {
                tracing::warn!(pull = pr.number, error = %e, "cannot read what the open release pull request proposes");
                None
            }
        }
    }

    /// The `release.json` of `<env>/<app>/` at a pull request's head, after a fetch (the head
    /// may have been pushed since the last one).
    async fn release_at_head(
        &self,
        pr: &PullRequest,
        env: &EnvName,
        app: &AppName,
    ) -> Result<Option<ReleaseInfo>> {
        let gitops = self.target(env, app).cache.clone();
        let (sha, env, app) = (pr.head.sha.clone(), env.clone(), app.clone());
        super::blocking(move || {
            gitops.fetch()?;
            gitops.release_at(&sha, &env, &app)
        })
        .await
    }

    /// Opens (or finds) a preview's pull request from `branch` and merges it at `head` at
    /// once: previews need no approval.
    pub(in crate::release) async fn merge_preview_pull(
        &self,
        forge: &dyn Forge,
        branch: &BranchName,
        title: &str,
        body: &str,
        head: &CommitSha,
    ) -> Result<CommitSha> {
        // Previews live in the default gitops repository.
        let target = self.gitops.default_target();
        let gitops_pr = match forge.find_open_pull(&target.repo, branch).await? {
            Some(p) => p,
            None => {
                forge
                    .create_pull(&target.repo, branch, target.branch(), title, body)
                    .await?
            }
        };
        match forge
            .merge_pull(
                &target.repo,
                gitops_pr.number,
                head,
                MergeMethod::Merge,
                title,
                "",
            )
            .await?
        {
            MergeOutcome::Merged { sha } => Ok(sha),
            MergeOutcome::HeadMoved | MergeOutcome::NotMergeable(_) => Err(ReleaseError::NotMerged {
                pull: gitops_pr.number,
                reason: "the preview pull request could not be merged".into(),
                retry: false,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_required_check_waits_and_names_the_check() {
        assert_eq!(
            merge_refusal("Required status check \"validate\" is expected."),
            Refusal::Waits("waiting for required checks: validate".into())
        );
    }

    #[test]
    fn a_failing_required_check_or_a_refused_method_is_final() {
        assert_eq!(
            merge_refusal("Required status check \"validate\" is failing."),
            Refusal::Final
        );
        assert_eq!(
            merge_refusal("Merge commits are not allowed on this repository."),
            Refusal::Final
        );
    }

    #[test]
    fn reviews_a_moved_base_and_a_conflict_wait() {
        assert_eq!(
            merge_refusal("At least 1 approving review is required by reviewers with write access."),
            Refusal::Waits("waiting for required reviews".into())
        );
        assert!(matches!(
            merge_refusal("Base branch was modified. Review and try the merge again."),
            Refusal::Waits(_)
        ));
        assert!(matches!(
            merge_refusal("Pull Request is not mergeable"),
            Refusal::Waits(_)
        ));
    }
}
