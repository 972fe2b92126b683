//! The forge auger has when no GitHub credentials are configured: every call is refused with
//! [`ForgeError::Config`], so code that needs GitHub fails clearly instead of branching on an
//! `Option` everywhere. Artifacts are still recorded without it.

use async_trait::async_trait;

use super::*;

pub struct Unconfigured;

fn refuse<T>() -> ForgeResult<T> {
    Err(ForgeError::Config(
        "no GitHub credentials are configured ([github] in auger.toml)".into(),
    ))
}

#[async_trait]
impl Forge for Unconfigured {
    fn configured(&self) -> bool {
        false
    }
    async fn authenticated_login(&self) -> ForgeResult<String> {
        refuse()
    }
    async fn find_open_pull(&self, _: &RepoName, _: &BranchName) -> ForgeResult<Option<PullRequest>> {
        refuse()
    }
    async fn repo_html_url(&self, _: &RepoName) -> ForgeResult<String> {
        refuse()
    }
    async fn create_pull(
        &self,
        _: &RepoName,
        _: &BranchName,
        _: &BranchName,
        _: &str,
        _: &str,
    ) -> ForgeResult<PullRequest> {
        refuse()
    }
    async fn update_pull(&self, _: &RepoName, _: u64, _: &str, _: &str) -> ForgeResult<PullRequest> {
        refuse()
    }
    async fn get_pull(&self, _: &RepoName, _: u64) -> ForgeResult<PullRequest> {
        refuse()
    }
    async fn list_reviews(&self, _: &RepoName, _: u64) -> ForgeResult<Vec<Review>> {
        refuse()
    }
    async fn merge_pull(
        &self,
        _: &RepoName,
        _: u64,
        _: &CommitSha,
        _: MergeMethod,
        _: &str,
        _: &str,
    ) -> ForgeResult<MergeOutcome> {
        refuse()
    }
    async fn close_pull(&self, _: &RepoName, _: u64) -> ForgeResult<()> {
        refuse()
    }
    async fn compare(&self, _: &RepoName, _: &CommitSha, _: &CommitSha) -> ForgeResult<Comparison> {
        refuse()
    }
    async fn commit_files(&self, _: &RepoName, _: &CommitSha) -> ForgeResult<ChangedFiles> {
        refuse()
    }
    async fn pulls_for_commit(&self, _: &RepoName, _: &CommitSha) -> ForgeResult<Vec<u64>> {
        refuse()
    }
    async fn permission(&self, _: &RepoName, _: &str) -> ForgeResult<PermissionLevel> {
        refuse()
    }
    async fn is_team_member(&self, _: &str, _: &str, _: &str) -> ForgeResult<bool> {
        refuse()
    }
    async fn user_id(&self, _: &str) -> ForgeResult<u64> {
        refuse()
    }
    async fn set_status(&self, _: &RepoName, _: &CommitSha, _: &StatusUpdate) -> ForgeResult<()> {
        refuse()
    }
    async fn create_comment(&self, _: &RepoName, _: u64, _: &str) -> ForgeResult<CommentId> {
        refuse()
    }
    async fn update_comment(&self, _: &RepoName, _: CommentId, _: &str) -> ForgeResult<()> {
        refuse()
    }
    async fn add_reaction(&self, _: &RepoName, _: CommentId, _: Reaction) -> ForgeResult<()> {
        refuse()
    }
    async fn list_comments(&self, _: &RepoName, _: u64) -> ForgeResult<Vec<Comment>> {
        refuse()
    }
    async fn create_deployment(&self, _: &RepoName, _: &NewDeployment) -> ForgeResult<DeploymentId> {
        refuse()
    }
    async fn set_deployment_status(
        &self,
        _: &RepoName,
        _: DeploymentId,
        _: &DeploymentStatusUpdate,
    ) -> ForgeResult<()> {
        refuse()
    }
    async fn list_deployments(&self, _: &RepoName, _: &str) -> ForgeResult<Vec<Deployment>> {
        refuse()
    }
}
