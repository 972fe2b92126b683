//! The test-driving API: plain Rust calls on [`GithubSim`] that change state the way users, CI
//! and GitHub itself would, emitting the same webhooks as the equivalent API calls.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use chrono::Utc;

use crate::actions::{self, CheckRunFields, MergeOptions, NewPull, NewStatus};
use crate::faults::{Fault, FaultRule, RateRule};
use crate::git::BareRepo;
use crate::state::{
    AccountKind, CheckRun, CommitStatus, Deployment, IssueComment, Principal, Protection, PullRequest, Repo,
    Review, Role, Team, WorkflowRun,
};
use crate::webhooks::Delivery;
use crate::{GithubSim, RecordedRequest, relock};

/// What `create_repo` returns.
#[derive(Debug, Clone)]
pub struct RepoInfo {
    pub id: u64,
    pub full_name: String,
    /// `file://…/owner/name.git`: clone, fetch and push with plain git.
    pub clone_url: String,
    pub default_branch: String,
}

/// `"*"` matches any method; methods compare case-insensitively.
fn fault_method(method: &str) -> Option<String> {
    (method != "*").then(|| method.to_uppercase())
}

fn split_repo(full: &str) -> Result<(&str, &str)> {
    full.split_once('/')
        .filter(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains('/'))
        .ok_or_else(|| anyhow!("repository names are owner/name, got {full:?}"))
}

impl GithubSim {
    // ----- webhooks -------------------------------------------------------------------------

    /// Where deliveries go and the secret they are signed with; `None` only records them.
    pub fn set_webhook(&self, url: Option<&str>, secret: &str) {
        self.inner
            .hooks
            .configure(url.map(str::to_string), secret.to_string());
    }

    /// Every delivery so far, oldest first (redeliveries are separate entries, same id).
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.inner.hooks.deliveries()
    }

    /// Deliveries of one event type (`push`, `pull_request`, …).
    pub fn deliveries_of(&self, event: &str) -> Vec<Delivery> {
        self.deliveries()
            .into_iter()
            .filter(|d| d.event == event)
            .collect()
    }

    /// Sends a recorded delivery again with the same `X-GitHub-Delivery` id.
    pub fn redeliver(&self, delivery_id: &str) -> Result<()> {
        if self.inner.hooks.redeliver(delivery_id) {
            Ok(())
        } else {
            bail!("no delivery {delivery_id}")
        }
    }

    /// Blocks until every queued delivery was sent (max 30 s). Don't call it from the thread
    /// that runs the receiver (e.g. a current-thread tokio test): use `wait_deliveries_async`.
    /// Returns `false` if deliveries were still pending after the timeout.
    pub fn wait_deliveries(&self) -> bool {
        self.inner.hooks.wait_idle(Duration::from_secs(30))
    }

    /// `wait_deliveries` for async tests; the receiver may run on the same runtime.
    pub async fn wait_deliveries_async(&self) -> bool {
        let hooks = std::sync::Arc::clone(&self.inner.hooks);
        tokio::task::spawn_blocking(move || hooks.wait_idle(Duration::from_secs(30)))
            .await
            .unwrap_or(false)
    }

    // ----- faults and inspection ------------------------------------------------------------

    /// Applies `fault` to the next `times` requests matching `method` (`"*"` = any) and `path`
    /// (segments, `*` or `{name}` for one segment, trailing `**` for the rest).
    /// Counted rules are used before rate rules.
    pub fn inject_fault(&self, method: &str, path: &str, times: usize, fault: Fault) {
        relock(&self.inner.faults).arm(FaultRule {
            method: fault_method(method),
            pattern: path.to_string(),
            remaining: times,
            fault,
        });
    }

    /// Applies `fault` to each request matching `method` and `pattern` (as for `inject_fault`)
    /// with `probability` (0.0 to 1.0), until `clear_faults`. The draws come from a generator
    /// seeded with `seed`, so the same seed and request order fault the same requests.
    /// One rule per method and pattern: arming the same pair again replaces it. Where armed
    /// patterns overlap, the rule armed first decides.
    pub fn inject_fault_rate(
        &self,
        method: &str,
        pattern: &str,
        probability: f64,
        fault: Fault,
        seed: u64,
    ) -> Result<()> {
        if !(0.0..=1.0).contains(&probability) {
            bail!("a fault probability is between 0.0 and 1.0, got {probability}");
        }
        relock(&self.inner.faults).arm_rate(RateRule::new(
            fault_method(method),
            pattern.to_string(),
            probability,
            fault,
            seed,
        ));
        Ok(())
    }

    /// Disarms every fault rule, counted and rate alike (`faults_served` keeps counting).
    pub fn clear_faults(&self) {
        relock(&self.inner.faults).clear();
    }

    /// How many requests got an injected fault (of any kind) since the simulator started.
    pub fn faults_served(&self) -> usize {
        relock(&self.inner.faults).served()
    }

    /// Every API request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        relock(&self.inner.requests).clone()
    }

    pub fn clear_requests(&self) {
        relock(&self.inner.requests).clear();
    }

    /// Where the simulator's JSON answers broke their operation's response schema in GitHub's
    /// description (for the status they answered), oldest first. Every answer is checked.
    pub fn response_violations(&self) -> Vec<String> {
        relock(&self.inner.response_violations).clone()
    }

    // ----- rate limits ----------------------------------------------------------------------

    /// Models GitHub's primary rate limit: each user, installation and the app's JWT get
    /// `per_hour` requests per window (from its first request to an hour later); answers carry
    /// `x-ratelimit-limit/remaining/used/reset/resource`; past the limit, 403 "API rate limit
    /// exceeded for …" with `x-ratelimit-remaining: 0` until `x-ratelimit-reset`. Off by default.
    pub fn set_rate_limit(&self, per_hour: u32) {
        relock(&self.inner.limits).set_primary(Some(per_hour));
    }

    /// Models GitHub's secondary limit on content creation: more than
    /// `content_creating_per_minute` POST/PATCH/PUT/DELETE requests of one principal in a
    /// rolling minute get 403 with `retry-after` (seconds) and GitHub's secondary-limit
    /// message. Off by default.
    pub fn set_secondary_limit(&self, content_creating_per_minute: u32) {
        relock(&self.inner.limits).set_secondary(Some(content_creating_per_minute));
    }

    /// Turns both modeled rate limits off again.
    pub fn clear_rate_limits(&self) {
        let mut limits = relock(&self.inner.limits);
        limits.set_primary(None);
        limits.set_secondary(None);
    }

    /// Moves the rate limits' clock forward by `by`, as if that much time had passed: a test
    /// reaches `x-ratelimit-reset` or the end of a `retry-after` without waiting for it.
    pub fn advance_rate_limit_clock(&self, by: std::time::Duration) {
        let by = chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
        relock(&self.inner.limits).advance(by);
    }

    // ----- accounts -------------------------------------------------------------------------

    fn create_account(&self, login: &str, kind: AccountKind) -> Result<u64> {
        let mut st = self.inner.lock();
        if let Some(a) = st.account(login) {
            if a.kind != kind {
                bail!("{login} already exists as a {}", a.kind.as_str());
            }
            return Ok(a.id);
        }
        Ok(st.ensure_account(login, kind).id)
    }

    /// Creates a user (idempotent); returns its numeric id.
    pub fn create_user(&self, login: &str) -> Result<u64> {
        self.create_account(login, AccountKind::User)
    }

    /// Creates a bot account (`type: Bot`), e.g. `dependabot[bot]`.
    pub fn create_bot(&self, login: &str) -> Result<u64> {
        self.create_account(login, AccountKind::Bot)
    }

    pub fn create_org(&self, login: &str) -> Result<u64> {
        self.create_account(login, AccountKind::Organization)
    }

    /// Creates (or replaces the members of) team `slug` in `org`.
    pub fn create_team(&self, org: &str, slug: &str, members: &[&str]) -> Result<u64> {
        let mut st = self.inner.lock();
        match st.account(org) {
            Some(a) if a.kind == AccountKind::Organization => {}
            _ => bail!("{org} is not an organization"),
        }
        for m in members {
            st.ensure_account(m, AccountKind::User);
        }
        let members: Vec<String> = members.iter().map(|m| m.to_string()).collect();
        if let Some(t) = st.teams.iter_mut().find(|t| t.org == org && t.slug == slug) {
            t.members = members;
            return Ok(t.id);
        }
        let id = st.next_id();
        st.teams.push(Team {
            id,
            org: org.into(),
            slug: slug.into(),
            name: slug.into(),
            members,
        });
        Ok(id)
    }

    /// Sets a collaborator role: `read`, `triage`, `write`, `maintain`, `admin`, or `none`.
    pub fn set_permission(&self, repo: &str, login: &str, role: &str) -> Result<()> {
        let mut st = self.inner.lock();
        st.ensure_account(login, AccountKind::User);
        let r = st.repo_mut(repo).ok_or_else(|| anyhow!("no repository {repo}"))?;
        if role == "none" {
            r.collaborators.remove(login);
            return Ok(());
        }
        let role = Role::parse(role).ok_or_else(|| anyhow!("unknown role {role}"))?;
        r.collaborators.insert(login.to_string(), role);
        Ok(())
    }

    /// A personal access token for `login` (creating the user if needed).
    pub fn create_token(&self, login: &str) -> Result<String> {
        let mut st = self.inner.lock();
        st.ensure_account(login, AccountKind::User);
        let token = format!("ghp_{}", uuid::Uuid::new_v4().simple());
        st.tokens
            .insert(token.clone(), Principal::User(login.to_string()));
        Ok(token)
    }

    /// Registers an OAuth app (the web application flow of `/login/oauth/*`) with its client
    /// id, secret and callback URL; redirects must stay at or below the callback.
    pub fn create_oauth_app(&self, client_id: &str, secret: &str, callback_url: &str) {
        self.inner.lock().oauth_apps.insert(
            client_id.to_owned(),
            crate::state::OAuthApp {
                secret: secret.to_owned(),
                callback_url: callback_url.to_owned(),
            },
        );
    }

    /// An installation token without the JWT dance (acts as the app's bot user): of the
    /// installation the simulator started with, or the oldest live one once that is deleted.
    pub fn create_installation_token(&self) -> String {
        let mut st = self.inner.lock();
        let token = format!("ghs_{}", uuid::Uuid::new_v4().simple());
        let started_with = st.app.installation_id;
        let id = st
            .installation(started_with)
            .or_else(|| st.installations.first())
            .map_or(started_with, |i| i.id);
        let expires_at = Utc::now() + chrono::Duration::hours(1);
        st.tokens
            .insert(token.clone(), Principal::Installation { id, expires_at });
        token
    }

    /// The login of the simulated app's bot user (`<slug>[bot]`).
    pub fn app_bot_login(&self) -> String {
        self.inner.lock().app.bot_login.clone()
    }

    // ----- repositories and git -------------------------------------------------------------

    /// Creates an empty repository `owner/name` (default branch `main`), creating the owner as
    /// a user if unknown.
    pub fn create_repo(&self, full_name: &str) -> Result<RepoInfo> {
        self.create_repo_inner(full_name, None, false)
    }

    /// Creates a private repository.
    pub fn create_private_repo(&self, full_name: &str) -> Result<RepoInfo> {
        self.create_repo_inner(full_name, None, true)
    }

    /// Forks `parent` as `<owner>/<same name>` with all its branches and tags.
    pub fn fork_repo(&self, parent: &str, owner: &str) -> Result<RepoInfo> {
        let (_, name) = split_repo(parent)?;
        let info = self.create_repo_inner(&format!("{owner}/{name}"), Some(parent), false)?;
        let st = self.inner.lock();
        let p = st.repo(parent).ok_or_else(|| anyhow!("no repository {parent}"))?;
        let fork = st.repo(&info.full_name).ok_or_else(|| anyhow!("fork vanished"))?;
        fork.git.fetch_ref(p.git.path(), "refs/heads/*", "refs/heads/*")?;
        fork.git.fetch_ref(p.git.path(), "refs/tags/*", "refs/tags/*")?;
        Ok(info)
    }

    fn create_repo_inner(&self, full_name: &str, fork_of: Option<&str>, private: bool) -> Result<RepoInfo> {
        let (owner, name) = split_repo(full_name)?;
        let mut st = self.inner.lock();
        if st.repo(full_name).is_some() {
            bail!("repository {full_name} exists");
        }
        if st.account(owner).is_none() {
            st.ensure_account(owner, AccountKind::User);
        }
        let path = self.inner.git_root.join(owner).join(format!("{name}.git"));
        let git = BareRepo::init(&path, "main")?;
        git.install_post_receive(&format!(
            "{}/_sim/post-receive/{owner}/{name}",
            self.inner.urls.api
        ))?;
        let id = st.next_id();
        let repo = Repo {
            id,
            owner: owner.to_string(),
            name: name.to_string(),
            git,
            default_branch: "main".into(),
            private,
            fork_of: fork_of.map(str::to_string),
            created_at: Utc::now(),
            collaborators: Default::default(),
            next_number: 0,
            pulls: Vec::new(),
            comments: Vec::new(),
            statuses: Vec::new(),
            check_runs: Vec::new(),
            workflow_runs: Vec::new(),
            deployments: Vec::new(),
            protections: Default::default(),
        };
        let info = RepoInfo {
            id,
            full_name: full_name.to_string(),
            clone_url: format!("file://{}", path.display()),
            default_branch: "main".into(),
        };
        st.repos.insert(full_name.to_string(), repo);
        Ok(info)
    }

    /// Commits `files` (path, content) on `branch` as `author` (a new branch starts at the
    /// default branch's tip, an empty repository gets a root commit) and emits push (+ create, + synchronize on open PRs). Returns the sha.
    pub fn push(
        &self,
        repo: &str,
        branch: &str,
        files: &[(&str, &str)],
        message: &str,
        author: &str,
    ) -> Result<String> {
        let files: Vec<(&str, Option<&str>)> = files.iter().map(|(p, c)| (*p, Some(*c))).collect();
        self.push_changes(repo, branch, &files, message, author)
    }

    /// Like `push`, but a `None` content deletes the path.
    pub fn push_changes(
        &self,
        repo: &str,
        branch: &str,
        files: &[(&str, Option<&str>)],
        message: &str,
        author: &str,
    ) -> Result<String> {
        Ok(actions::push_files(
            &self.inner,
            repo,
            branch,
            files,
            message,
            author,
        )?)
    }

    /// Creates `branch` at `from` (a branch, tag or sha); emits create + push.
    pub fn create_branch(&self, repo: &str, branch: &str, from: &str, sender: &str) -> Result<String> {
        let sha = self.resolve(repo, from)?;
        actions::create_ref(&self.inner, repo, &format!("refs/heads/{branch}"), &sha, sender)?;
        Ok(sha)
    }

    /// Creates a lightweight tag at `target` (branch, tag or sha); emits create + push.
    pub fn create_tag(&self, repo: &str, tag: &str, target: &str, sender: &str) -> Result<String> {
        let sha = self.resolve(repo, target)?;
        actions::create_ref(&self.inner, repo, &format!("refs/tags/{tag}"), &sha, sender)?;
        Ok(sha)
    }

    /// Creates an annotated tag; the ref points at the tag object, webhooks name the tag ref.
    pub fn create_annotated_tag(
        &self,
        repo: &str,
        tag: &str,
        target: &str,
        message: &str,
        sender: &str,
    ) -> Result<String> {
        let sha = self.resolve(repo, target)?;
        let object = {
            let st = self.inner.lock();
            let r = st.repo(repo).ok_or_else(|| anyhow!("no repository {repo}"))?;
            r.git
                .make_tag_object(tag, &sha, message, &actions::signature(&st, sender))?
        };
        actions::create_ref(&self.inner, repo, &format!("refs/tags/{tag}"), &object, sender)?;
        Ok(object)
    }

    /// Deletes a branch; emits push (deleted: true) + delete, and closes open PRs from or into
    /// it (`pull_request` closed), as GitHub does.
    pub fn delete_branch(&self, repo: &str, branch: &str, sender: &str) -> Result<()> {
        Ok(actions::delete_ref(
            &self.inner,
            repo,
            &format!("refs/heads/{branch}"),
            sender,
        )?)
    }

    pub fn delete_tag(&self, repo: &str, tag: &str, sender: &str) -> Result<()> {
        Ok(actions::delete_ref(
            &self.inner,
            repo,
            &format!("refs/tags/{tag}"),
            sender,
        )?)
    }

    /// Moves `branch` to `sha` (force allowed), like a force push; emits push (+ synchronize).
    pub fn force_branch(&self, repo: &str, branch: &str, sha: &str, sender: &str) -> Result<()> {
        Ok(actions::move_ref(
            &self.inner,
            repo,
            &format!("refs/heads/{branch}"),
            sha,
            true,
            sender,
        )?)
    }

    /// Makes the repository refuse every push over git (a failing `pre-receive` hook).
    pub fn refuse_pushes(&self, repo: &str, refuse: bool) -> Result<()> {
        let st = self.inner.lock();
        let r = st.repo(repo).ok_or_else(|| anyhow!("no repository {repo}"))?;
        r.git.set_refuse_pushes(refuse)
    }

    /// The commit a branch, tag or sha resolves to.
    pub fn resolve(&self, repo: &str, rev: &str) -> Result<String> {
        let st = self.inner.lock();
        let r = st.repo(repo).ok_or_else(|| anyhow!("no repository {repo}"))?;
        crate::server::resolve_rev(r, rev).ok_or_else(|| anyhow!("{rev} does not resolve in {repo}"))
    }

    /// Tip of a branch, `None` if absent.
    pub fn branch_sha(&self, repo: &str, branch: &str) -> Option<String> {
        let st = self.inner.lock();
        st.repo(repo)?.git.resolve(&format!("refs/heads/{branch}"))
    }

    /// Path of the bare repository.
    pub fn repo_path(&self, repo: &str) -> Result<std::path::PathBuf> {
        let st = self.inner.lock();
        Ok(st
            .repo(repo)
            .ok_or_else(|| anyhow!("no repository {repo}"))?
            .git
            .path()
            .to_path_buf())
    }

    // ----- pull requests --------------------------------------------------------------------

    /// Opens a PR from `head` (`branch`, or `owner:branch` for a fork) into `base`.
    pub fn open_pr(&self, repo: &str, head: &str, base: &str, title: &str, user: &str) -> Result<u64> {
        let new = NewPull {
            head: head.into(),
            base: base.into(),
            title: title.into(),
            ..Default::default()
        };
        self.open_pr_with(repo, &new, user)
    }

    /// `open_pr` with body and draft flag.
    pub fn open_pr_with(&self, repo: &str, new: &NewPull, user: &str) -> Result<u64> {
        Ok(actions::open_pull(&self.inner, repo, new, user)?)
    }

    pub fn close_pr(&self, repo: &str, number: u64, sender: &str) -> Result<()> {
        Ok(actions::edit_pull(
            &self.inner,
            repo,
            number,
            None,
            None,
            Some(false),
            sender,
        )?)
    }

    pub fn reopen_pr(&self, repo: &str, number: u64, sender: &str) -> Result<()> {
        Ok(actions::edit_pull(
            &self.inner,
            repo,
            number,
            None,
            None,
            Some(true),
            sender,
        )?)
    }

    /// Merges with a merge commit (real git merge in the bare repo); returns the merge sha.
    pub fn merge_pr(&self, repo: &str, number: u64, sender: &str) -> Result<String> {
        self.merge_pr_with(repo, number, &MergeOptions::default(), sender)
    }

    /// Merges with explicit options (expected head sha, method, commit title/message).
    pub fn merge_pr_with(
        &self,
        repo: &str,
        number: u64,
        opts: &MergeOptions,
        sender: &str,
    ) -> Result<String> {
        Ok(actions::merge_pull(&self.inner, repo, number, opts, sender)?)
    }

    /// Forces `mergeable` (`Some(false)`: merges answer 405), `None` = computed again.
    pub fn set_mergeable(&self, repo: &str, number: u64, mergeable: Option<bool>) -> Result<()> {
        let mut st = self.inner.lock();
        let r = st.repo_mut(repo).ok_or_else(|| anyhow!("no repository {repo}"))?;
        r.pull_mut(number)
            .ok_or_else(|| anyhow!("no PR #{number}"))?
            .mergeable_override = mergeable;
        Ok(())
    }

    /// Protects `branch` (it need not exist yet), replacing any earlier protection: merges into
    /// it need the required checks green on the head, the head up to date when `strict`, and
    /// the approvals; otherwise `PUT …/merge` answers 405 with GitHub's reason. Pushes to the
    /// branch are not restricted.
    pub fn protect_branch(&self, repo: &str, branch: &str, protection: Protection) -> Result<()> {
        if protection.required_approving_review_count > 6 {
            bail!(
                "GitHub requires 0 to 6 approving reviews, got {}",
                protection.required_approving_review_count
            );
        }
        if protection
            .required_status_checks
            .iter()
            .any(|c| c.trim().is_empty())
        {
            bail!("a required status check needs a context name");
        }
        let mut st = self.inner.lock();
        let r = st.repo_mut(repo).ok_or_else(|| anyhow!("no repository {repo}"))?;
        r.protections.insert(branch.to_string(), protection);
        Ok(())
    }

    /// Removes `branch`'s protection; an error if it had none.
    pub fn unprotect_branch(&self, repo: &str, branch: &str) -> Result<()> {
        let mut st = self.inner.lock();
        let r = st.repo_mut(repo).ok_or_else(|| anyhow!("no repository {repo}"))?;
        r.protections
            .remove(branch)
            .map(|_| ())
            .ok_or_else(|| anyhow!("{branch} is not protected in {repo}"))
    }

    /// GitHub computes mergeability in the background: after a PR opens or is reopened, or its
    /// head or base moves, the next `reads` of `GET …/pulls/{n}` answer `"mergeable": null` and
    /// `"mergeable_state": "unknown"`. Applies to changes from now on; 0 (the default) computes
    /// it at once.
    pub fn set_mergeable_lag(&self, reads: u32) {
        self.inner.lock().mergeable_lag = reads;
    }

    /// The next merge of this open PR answers 405 "Base branch was modified. Review and try
    /// the merge again." once, as when another merge lands between GitHub's check and its
    /// write; the attempt after that merges normally.
    pub fn base_modified_once(&self, repo: &str, number: u64) -> Result<()> {
        let mut st = self.inner.lock();
        let r = st.repo_mut(repo).ok_or_else(|| anyhow!("no repository {repo}"))?;
        let pr = r.pull_mut(number).ok_or_else(|| anyhow!("no PR #{number}"))?;
        if !pr.open {
            bail!("PR #{number} is not open");
        }
        pr.base_modified_once = true;
        Ok(())
    }

    /// Comments on a PR as `user`; emits `issue_comment` created. Returns the comment id.
    pub fn comment(&self, repo: &str, number: u64, user: &str, body: &str) -> Result<u64> {
        Ok(actions::create_comment(&self.inner, repo, number, user, body)?)
    }

    /// Edits a comment; emits `issue_comment` edited with `changes.body.from`.
    pub fn edit_comment(&self, repo: &str, comment_id: u64, body: &str, sender: &str) -> Result<()> {
        Ok(actions::edit_comment(
            &self.inner,
            repo,
            comment_id,
            body,
            sender,
        )?)
    }

    /// Reviews a PR's current head as `user`: `APPROVED`, `CHANGES_REQUESTED` or `COMMENTED`
    /// (also accepts `approve`, `request_changes`, `comment`). Returns the review id.
    pub fn review(&self, repo: &str, number: u64, user: &str, state: &str) -> Result<u64> {
        let state = match state.to_ascii_uppercase().as_str() {
            "APPROVE" | "APPROVED" => "APPROVED",
            "REQUEST_CHANGES" | "CHANGES_REQUESTED" => "CHANGES_REQUESTED",
            "COMMENT" | "COMMENTED" => "COMMENTED",
            other => bail!("unknown review state {other}"),
        };
        Ok(actions::submit_review(
            &self.inner,
            repo,
            number,
            user,
            state,
            "",
            None,
        )?)
    }

    // ----- CI -------------------------------------------------------------------------------

    /// Sets a commit status as the app's bot; emits `status`. Returns the status id.
    pub fn set_status(&self, repo: &str, sha: &str, state: &str, context: &str) -> Result<u64> {
        let new = NewStatus {
            state: state.into(),
            context: context.into(),
            ..Default::default()
        };
        let bot = self.app_bot_login();
        Ok(actions::create_status(&self.inner, repo, sha, &new, &bot)?)
    }

    /// Sets a commit status with description / target URL as `creator`; emits `status`.
    pub fn set_status_with(&self, repo: &str, sha: &str, status: &NewStatus, creator: &str) -> Result<u64> {
        Ok(actions::create_status(&self.inner, repo, sha, status, creator)?)
    }

    /// Creates an in-progress check run `name` on `sha`; emits `check_run` created.
    pub fn create_check_run(&self, repo: &str, sha: &str, name: &str) -> Result<u64> {
        let fields = CheckRunFields {
            name: Some(name.into()),
            head_sha: Some(sha.into()),
            status: Some("in_progress".into()),
            ..Default::default()
        };
        let bot = self.app_bot_login();
        Ok(actions::create_check_run(&self.inner, repo, &fields, &bot)?)
    }

    /// Completes a check run with `conclusion` (`success`, `failure`, …); emits `completed`.
    pub fn complete_check_run(&self, repo: &str, id: u64, conclusion: &str) -> Result<()> {
        let fields = CheckRunFields {
            conclusion: Some(conclusion.into()),
            ..Default::default()
        };
        let bot = self.app_bot_login();
        Ok(actions::update_check_run(&self.inner, repo, id, &fields, &bot)?)
    }

    /// Starts workflow run `name` for `sha` on `branch` (event `push`); emits `requested`.
    pub fn create_workflow_run(
        &self,
        repo: &str,
        name: &str,
        sha: &str,
        branch: &str,
        actor: &str,
    ) -> Result<u64> {
        Ok(actions::create_workflow_run(
            &self.inner,
            repo,
            name,
            sha,
            branch,
            "push",
            actor,
        )?)
    }

    /// Completes a workflow run; emits `workflow_run` completed.
    pub fn complete_workflow_run(&self, repo: &str, id: u64, conclusion: &str) -> Result<()> {
        let actor = {
            let st = self.inner.lock();
            let r = st.repo(repo).ok_or_else(|| anyhow!("no repository {repo}"))?;
            r.workflow_runs
                .iter()
                .find(|w| w.id == id)
                .map(|w| w.actor.clone())
                .context("no such workflow run")?
        };
        Ok(actions::complete_workflow_run(
            &self.inner,
            repo,
            id,
            conclusion,
            &actor,
        )?)
    }

    // ----- state queries --------------------------------------------------------------------

    fn with_repo<T>(&self, repo: &str, f: impl FnOnce(&Repo) -> T) -> Result<T> {
        let st = self.inner.lock();
        let r = st.repo(repo).ok_or_else(|| anyhow!("no repository {repo}"))?;
        Ok(f(r))
    }

    pub fn pull(&self, repo: &str, number: u64) -> Result<PullRequest> {
        self.with_repo(repo, |r| r.pull(number).cloned())?
            .ok_or_else(|| anyhow!("no PR #{number}"))
    }

    pub fn pulls(&self, repo: &str) -> Result<Vec<PullRequest>> {
        self.with_repo(repo, |r| r.pulls.clone())
    }

    pub fn reviews(&self, repo: &str, number: u64) -> Result<Vec<Review>> {
        Ok(self.pull(repo, number)?.reviews)
    }

    /// Issue comments on a PR (with their reactions), oldest first.
    pub fn comments(&self, repo: &str, number: u64) -> Result<Vec<IssueComment>> {
        self.with_repo(repo, |r| {
            r.comments
                .iter()
                .filter(|c| c.issue_number == number)
                .cloned()
                .collect()
        })
    }

    /// Statuses on a commit, oldest first.
    pub fn statuses(&self, repo: &str, sha: &str) -> Result<Vec<CommitStatus>> {
        self.with_repo(repo, |r| {
            r.statuses.iter().filter(|s| s.sha == sha).cloned().collect()
        })
    }

    pub fn check_runs(&self, repo: &str) -> Result<Vec<CheckRun>> {
        self.with_repo(repo, |r| r.check_runs.clone())
    }

    pub fn workflow_runs(&self, repo: &str) -> Result<Vec<WorkflowRun>> {
        self.with_repo(repo, |r| r.workflow_runs.clone())
    }

    /// Deployments with their statuses, oldest first.
    pub fn deployments(&self, repo: &str) -> Result<Vec<Deployment>> {
        self.with_repo(repo, |r| r.deployments.clone())
    }
}
