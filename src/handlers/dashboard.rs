//! What a logged-in person asked for on the dashboard (design §17): deploy, rollback, hold and
//! resume, run through the release loop as the PR commands are, named after the GitHub login.
//!
//! [`refusal`] is the one rule set: the dashboard's route asks it before queuing (so a refusal
//! is a 403 or 409 at once and nothing is written), and the worker asks it again before acting,
//! because who may deploy is re-read from GitHub when used and a hold or freeze may have come
//! in between.

use serde::Serialize;

use crate::artifact::ArtifactStore;
use crate::gitops::Trigger;
use crate::policy::PolicySet;
use crate::release::{People, Plan, Releaser};
use crate::work::{DashboardAction, DashboardVerb};

use super::{Ctx, Handled};

/// Why an action is not done; worded in `templates/dashboard/message.html.tera`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Refused {
    UnknownApp {
        app: String,
    },
    UnknownEnv {
        app: String,
        env: String,
        known: Vec<String>,
    },
    NotADeployer {
        login: String,
        app: String,
        env: String,
        allowed: Vec<String>,
    },
    NoArtifact {
        artifact: String,
    },
    Rejected {
        artifact: String,
        by: String,
        reject_reason: String,
    },
    OnHold {
        app: String,
        env: String,
        hold_reason: String,
        by: String,
    },
    Frozen {
        app: String,
        env: String,
        until: String,
        window: String,
        by: String,
        freeze_reason: String,
    },
}

impl Refused {
    /// The HTTP status the dashboard answers it with: 403 for who asked, 404 for what does not
    /// exist, 409 for the state things are in.
    pub fn status(&self) -> u16 {
        match self {
            Refused::NotADeployer { .. } => 403,
            Refused::UnknownApp { .. } | Refused::UnknownEnv { .. } | Refused::NoArtifact { .. } => 404,
            Refused::Rejected { .. } | Refused::OnHold { .. } | Refused::Frozen { .. } => 409,
        }
    }
}

/// Why `action` may not be done now, or `None` when it may. Errors are auger's or GitHub's
/// (reading the ledger, asking who is a deployer), not the person's.
pub async fn refusal(
    people: &People,
    store: &ArtifactStore,
    policies: &PolicySet,
    releaser: &Releaser,
    action: &DashboardAction,
) -> anyhow::Result<Option<Refused>> {
    let (app, env) = (&action.app, &action.env);
    let Some(policy) = policies.get(app) else {
        return Ok(Some(Refused::UnknownApp { app: app.to_string() }));
    };
    let Some(rules) = policy.env(env) else {
        return Ok(Some(Refused::UnknownEnv {
            app: app.to_string(),
            env: env.to_string(),
            known: policy.envs().map(|(n, _)| n.to_string()).collect(),
        }));
    };
    let admitted = people
        .admits_account(
            &rules.deployers,
            policy.repo(),
            &action.login,
            Some(action.user_id),
        )
        .await?;
    if !admitted {
        return Ok(Some(Refused::NotADeployer {
            login: action.login.clone(),
            app: app.to_string(),
            env: env.to_string(),
            allowed: rules.deployers.iter().map(ToString::to_string).collect(),
        }));
    }
    let DashboardVerb::Deploy { artifact } = &action.action else {
        return Ok(None);
    };
    // A deploy from the dashboard is `/deploy <env> <sha>` without `--force`: a veto, a hold
    // and a freeze each stop it.
    let id = artifact.clone();
    let Some(found) = store.get_by_id(&id)? else {
        return Ok(Some(Refused::NoArtifact {
            artifact: artifact.to_string(),
        }));
    };
    if let Some(r) = found.rejected {
        return Ok(Some(Refused::Rejected {
            artifact: artifact.to_string(),
            by: r.by,
            reject_reason: r.reason,
        }));
    }
    if let Some(h) = releaser.hold_state(env, app).await?
        && h.held
    {
        return Ok(Some(Refused::OnHold {
            app: app.to_string(),
            env: env.to_string(),
            hold_reason: h.reason,
            by: h.by,
        }));
    }
    if let Some(f) = releaser.frozen(env, app).await? {
        return Ok(Some(Refused::Frozen {
            app: app.to_string(),
            env: env.to_string(),
            until: f.until.map(crate::release::day_time).unwrap_or_default(),
            window: f.window.unwrap_or_default(),
            by: f.by,
            freeze_reason: f.reason,
        }));
    }
    Ok(None)
}

pub async fn handle(ctx: &Ctx, action: DashboardAction) -> anyhow::Result<Handled> {
    let r = ctx.releases.require(format_args!(
        "{} of {} in {} from the dashboard",
        action.action.as_str(),
        action.app,
        action.env
    ))?;
    if let Some(why) = refusal(&ctx.people, &ctx.store, &ctx.policies.current(), r, &action).await? {
        tracing::warn!(login = %action.login, verb = action.action.as_str(), app = %action.app, env = %action.env, refused = ?why, "a dashboard action was refused when it ran");
        return Ok(Handled::Nothing);
    }
    let by = format!("@{}", action.login);
    let (env, app) = (&action.env, &action.app);
    let done = match &action.action {
        DashboardVerb::Deploy { artifact } => r
            .release(Plan {
                env: env.clone(),
                app: app.clone(),
                artifact: artifact.clone(),
                trigger: Trigger::Command(action.login.clone()),
                reason: format!("deployed from the dashboard by {by}"),
                reply: None,
                overrides: Vec::new(),
            })
            .await
            .map(|_| ()),
        DashboardVerb::Rollback { to } => r.rollback(env, app, to.as_ref(), &by, None).await.map(|_| ()),
        DashboardVerb::Hold => r.hold(env, app, &by, "held from the dashboard").await.map(|_| ()),
        DashboardVerb::Resume => r.resume(env, app, &by).await.map(|_| ()),
    };
    match done {
        Ok(()) => Ok(Handled::Acted),
        // Nothing to roll back to, already live: the person's request, not a fault to retry.
        Err(e) if e.is_user_error() => {
            tracing::warn!(login = %action.login, verb = action.action.as_str(), error = %e, "a dashboard action could not be done");
            Ok(Handled::Nothing)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::EnvName;
    use crate::handlers::testbed::Bed;

    async fn action(bed: &Bed, login: &str, verb: DashboardVerb) -> DashboardAction {
        DashboardAction {
            login: login.into(),
            user_id: bed.ctx.forge.user_id(login).await.unwrap(),
            app: crate::domain::AppName::new("web").unwrap(),
            env: EnvName::new("staging").unwrap(),
            action: verb,
        }
    }

    /// The artifact of the bed's pull request head, recorded in the ledger.
    fn deploy(artifact: &crate::artifact::Artifact) -> DashboardVerb {
        DashboardVerb::Deploy {
            artifact: artifact.id.clone(),
        }
    }

    fn recorded_artifact(bed: &Bed) -> crate::artifact::Artifact {
        let (_, head) = bed.pull_request();
        let artifact = bed.artifact(&head);
        bed.ctx.store.record(&artifact).unwrap();
        artifact
    }

    /// What the one rule set says to `action` on the bed, as the route and the worker ask it.
    async fn refused(bed: &Bed, action: &DashboardAction) -> Option<Refused> {
        let r = bed.ctx.releases.running().unwrap();
        refusal(
            &bed.ctx.people,
            &bed.ctx.store,
            &bed.ctx.policies.current(),
            r,
            action,
        )
        .await
        .unwrap()
    }
    #[tokio::test(flavor = "multi_thread")]
    async fn a_deployer_deploys_and_the_release_names_them() {
        let bed = Bed::new(true);
        let artifact = recorded_artifact(&bed);
        let deploy = action(&bed, "alice", deploy(&artifact)).await;
        assert_eq!(handle(&bed.ctx, deploy).await.unwrap(), Handled::Acted);
        let env = EnvName::new("staging").unwrap();
        let live = bed.ctx.store.released(&env, &artifact.app).unwrap();
        assert_eq!(live.map(|a| a.id), Some(artifact.id));
        let out = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(bed.gitops_remote())
            .args(["log", "-1", "--format=%B", "main"])
            .output()
            .unwrap();
        let message = String::from_utf8(out.stdout).unwrap();
        assert!(message.contains("Auger-Trigger: command @alice"), "{message}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn someone_who_is_not_a_deployer_changes_nothing() {
        let bed = Bed::new(true);
        let artifact = recorded_artifact(&bed);
        let env = EnvName::new("staging").unwrap();
        for verb in [deploy(&artifact), DashboardVerb::Hold] {
            let a = action(&bed, "bob", verb).await;
            let why = refused(&bed, &a).await;
            assert!(matches!(why, Some(Refused::NotADeployer { .. })), "{why:?}");
            assert_eq!(handle(&bed.ctx, a).await.unwrap(), Handled::Nothing);
        }
        assert_eq!(bed.ctx.store.released(&env, &artifact.app).unwrap(), None);
        assert!(!bed.ctx.store.is_held(&env, &artifact.app).unwrap());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_hold_from_the_dashboard_stops_a_deploy_from_it() {
        let bed = Bed::new(true);
        let artifact = recorded_artifact(&bed);
        assert_eq!(
            handle(&bed.ctx, action(&bed, "alice", DashboardVerb::Hold).await)
                .await
                .unwrap(),
            Handled::Acted
        );
        let deploy = action(&bed, "alice", deploy(&artifact)).await;
        let why = refused(&bed, &deploy).await;
        assert!(
            matches!(&why, Some(Refused::OnHold { by, .. }) if by == "@alice"),
            "{why:?}"
        );
        assert_eq!(
            handle(&bed.ctx, action(&bed, "alice", DashboardVerb::Resume).await)
                .await
                .unwrap(),
            Handled::Acted
        );
        assert_eq!(handle(&bed.ctx, deploy).await.unwrap(), Handled::Acted);
    }
}
