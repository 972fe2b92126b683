//! An ad hoc release asked through the API or `auger release make --server`.

use crate::release::Plan;
use crate::work::ReleaseRequest;

use super::{Ctx, Handled};

pub async fn handle(ctx: &Ctx, req: ReleaseRequest) -> anyhow::Result<Handled> {
    let r = ctx
        .releases
        .require(format_args!("release of {} to {}", req.artifact, req.env))?;
    let reason = format!("asked by {}", req.trigger);
    r.release(Plan {
        env: req.env,
        app: req.app,
        artifact: req.artifact,
        trigger: req.trigger,
        reason,
        reply: None,
        overrides: Vec::new(),
    })
    .await?;
    Ok(Handled::Acted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AppName, EnvName};
    use crate::gitops::Trigger;
    use crate::handlers::testbed::Bed;

    #[tokio::test(flavor = "multi_thread")]
    async fn a_release_without_gitops_fails_saying_so() {
        let bed = Bed::new(false);
        let (_, head) = bed.pull_request();
        let req = ReleaseRequest {
            app: AppName::new("web").unwrap(),
            env: EnvName::new("staging").unwrap(),
            artifact: bed.artifact(&head).id,
            trigger: Trigger::Api("ci".into()),
        };
        let err = handle(&bed.ctx, req).await.unwrap_err();
        assert!(err.to_string().contains("no [gitops] is configured"), "{err}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_release_asked_through_the_api_goes_live() {
        let bed = Bed::new(true);
        let (_, head) = bed.pull_request();
        let artifact = bed.artifact(&head);
        bed.ctx.store.record(&artifact).unwrap();
        let env = EnvName::new("staging").unwrap();
        let req = ReleaseRequest {
            app: artifact.app.clone(),
            env: env.clone(),
            artifact: artifact.id.clone(),
            trigger: Trigger::Api("ci".into()),
        };
        assert_eq!(handle(&bed.ctx, req).await.unwrap(), Handled::Acted);
        let live = bed.ctx.store.released(&env, &artifact.app).unwrap();
        assert_eq!(live.map(|a| a.id), Some(artifact.id));
    }
}
