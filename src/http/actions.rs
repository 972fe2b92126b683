//! The dashboard's actions (design §17): `POST /actions/{deploy,rollback,hold,resume}` from the
//! forms on the page. Each needs a session ([`super::login`]), the session's CSRF token, and a
//! deployer of the env (the rules of `/deploy`, [`crate::handlers::dashboard::refusal`]); then
//! it is queued in the inbox as [`Work::Dashboard`] for the worker, like an API request or a
//! PR command. A refusal writes nothing.
//!
//! Without `[dashboard] oauth_client_id` every action answers 404.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::AppState;
use super::dashboard::{Message, message_page};
use crate::artifact::ArtifactId;
use crate::domain::{AppName, CommitSha, EnvName};
use crate::work::{self, DashboardAction, DashboardVerb, Work};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/actions/{verb}", web::post().to(act));
}

/// The fields of every action form; `artifact` for a deploy, `to` for a rollback (empty:
/// the release before the current one).
#[derive(Debug, Default, Deserialize)]
struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    app: String,
    #[serde(default)]
    env: String,
    #[serde(default)]
    artifact: String,
    #[serde(default)]
    to: String,
}

/// The largest form an action reads.
const MAX_FORM_BYTES: usize = 16 * 1024;

async fn act(
    state: web::Data<AppState>,
    req: HttpRequest,
    verb: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let resp = act_inner(&state, &req, &verb, payload).await;
    state.metrics.api("dashboard.action", resp.status().as_u16());
    resp
}

async fn act_inner(state: &AppState, req: &HttpRequest, verb: &str, payload: web::Payload) -> HttpResponse {
    let Some(login) = &state.login else {
        return message_page(StatusCode::NOT_FOUND, &Message::ReadOnly);
    };
    let Some(session) = login.session(req) else {
        return message_page(StatusCode::FORBIDDEN, &Message::NotLoggedIn);
    };
    let body = match super::read_capped(req, payload.into_inner(), MAX_FORM_BYTES).await {
        Ok(b) => b,
        Err(e) => return message_page(e.status, &Message::BadRequest { error: e.message }),
    };
    let form = web::Query::<ActionForm>::from_query(&String::from_utf8_lossy(&body))
        .map(|f| f.into_inner())
        .unwrap_or_default();
    // Before anything else is read: a request another site made the browser send stops here.
    if !session.csrf_matches(&form.csrf) {
        return message_page(StatusCode::FORBIDDEN, &Message::BadCsrf);
    }
    let (app, env) = match (AppName::new(&form.app), EnvName::new(&form.env)) {
        (Ok(a), Ok(e)) => (a, e),
        (Err(e), _) => return bad_request(format!("app: {e}")),
        (_, Err(e)) => return bad_request(format!("env: {e}")),
    };
    let action = match verb {
        "deploy" => match artifact_of(&app, &form.artifact) {
            Ok(artifact) => DashboardVerb::Deploy { artifact },
            Err(why) => return bad_request(why),
        },
        "rollback" if form.to.trim().is_empty() => DashboardVerb::Rollback { to: None },
        "rollback" => match artifact_of(&app, &form.to) {
            Ok(to) => DashboardVerb::Rollback { to: Some(to) },
            Err(why) => return bad_request(why),
        },
        "hold" => DashboardVerb::Hold,
        "resume" => DashboardVerb::Resume,
        other => {
            return message_page(
                StatusCode::NOT_FOUND,
                &Message::BadRequest {
                    error: format!("no action {other:?}: deploy, rollback, hold or resume"),
                },
            );
        }
    };
    let Some(releaser) = state.releases.running() else {
        return message_page(
            StatusCode::CONFLICT,
            &Message::Failed {
                error: "releases are off: the configuration has no [gitops] section".into(),
            },
        );
    };
    let action = DashboardAction {
        login: session.login.clone(),
        user_id: session.id,
        app,
        env,
        action,
    };
    let refusal = crate::handlers::dashboard::refusal(
        &state.people,
        &state.store,
        &state.policies.current(),
        releaser,
        &action,
    )
    .await;
    match refusal {
        Ok(None) => {}
        Ok(Some(why)) => {
            let status = StatusCode::from_u16(why.status()).unwrap_or(StatusCode::CONFLICT);
            return message_page(status, &Message::Refused(why));
        }
        Err(e) => {
            tracing::warn!(error = %e, "checking a dashboard action failed");
            return message_page(
                StatusCode::BAD_GATEWAY,
                &Message::Failed {
                    error: format!("cannot check the action now: {e}"),
                },
            );
        }
    }
    let queued = Message::Queued {
        verb: action.action.as_str().to_owned(),
        app: action.app.to_string(),
        env: action.env.to_string(),
        artifact: match &action.action {
            DashboardVerb::Deploy { artifact } => artifact.to_string(),
            DashboardVerb::Rollback { to: Some(to) } => to.to_string(),
            _ => String::new(),
        },
    };
    let id = format!("auger-{:032x}", fastrand::u128(..));
    match super::webhook::store(
        state,
        &id,
        &work::inbox_kind("dashboard"),
        &Work::Dashboard(action),
    )
    .await
    {
        Ok(_) => message_page(StatusCode::ACCEPTED, &queued),
        Err(_) => {
            // `store` logged why.
            tracing::error!("cannot queue a dashboard action");
            message_page(
                StatusCode::SERVICE_UNAVAILABLE,
                &Message::Failed {
                    error: "cannot queue the action; nothing was done".into(),
                },
            )
        }
    }
}

fn bad_request(error: String) -> HttpResponse {
    message_page(StatusCode::BAD_REQUEST, &Message::BadRequest { error })
}

/// An artifact id of `app` (`app@sha12`) or a full source commit sha.
fn artifact_of(app: &AppName, text: &str) -> Result<ArtifactId, String> {
    let text = text.trim();
    match (text.parse::<ArtifactId>(), CommitSha::new(text)) {
        (Ok(id), _) if id.app() == app => Ok(id),
        (Ok(id), _) => Err(format!("artifact {id} is not an artifact of app {app}")),
        (Err(_), Ok(sha)) => Ok(ArtifactId::for_artifact(app, &sha)),
        (Err(e), Err(_)) => Err(format!(
            "artifact: {e} (an artifact id app@sha12 or a 40-hex commit sha)"
        )),
    }
}
