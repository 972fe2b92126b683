//! Pull requests of an app's repository: their previews follow them, and the comment handler
//! learns their heads (so a `/deploy` names the commit the person saw).

use crate::work::{BranchDeleted, PullChange, PullRequestChange};

use super::{Ctx, Handled};

pub async fn changed(ctx: &Ctx, p: PullRequestChange) -> anyhow::Result<Handled> {
    let Some(r) = ctx.releases.running() else {
        return Ok(Handled::Nothing);
    };
    match p.change {
        PullChange::HeadMoved { sha, at } => {
            if let Some(at) = at {
                ctx.heads.saw(&p.repo, p.number, &sha, at);
            }
            Ok(Handled::from_bool(
                !r.on_pull_request(&p.repo, p.number).await?.is_empty(),
            ))
        }
        PullChange::Closed => Ok(Handled::from_bool(
            r.remove_previews(&p.repo, p.number).await? > 0,
        )),
    }
}

/// A deleted branch ends its pull request's preview (GitHub usually closes the pull request
/// too; whichever comes first removes it, the other finds it gone).
pub async fn branch_deleted(ctx: &Ctx, b: BranchDeleted) -> anyhow::Result<Handled> {
    let Some(r) = ctx.releases.running() else {
        return Ok(Handled::Nothing);
    };
    if !ctx.forge.configured() {
        return Ok(Handled::Nothing);
    }
    match ctx.forge.find_open_pull(&b.repo, &b.branch).await? {
        Some(pr) => Ok(Handled::from_bool(
            r.remove_previews(&b.repo, pr.number).await? > 0,
        )),
        None => Ok(Handled::Nothing),
    }
}
