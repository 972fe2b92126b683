//! DORA metrics over HTTP (design §17): `GET /api/v1/metrics/dora?env=&app=&since=` (JSON,
//! token verb `read`), the `auger_dora_*` gauges of `/metrics`, and `GET /dora`, the page with
//! the figures and their charts. The figures come from [`crate::dora`]; this module parses the
//! request, gathers the facts off the async runtime and shapes the answer.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{ApiCaller, AppState, JsonError, charts, fresh_gitops};
use crate::config::ApiVerb;
use crate::domain::{AppName, EnvName};
use crate::dora::read::{Scope, facts, pairs};
use crate::dora::{Figures, Window, figures};

/// The window when `since` is not given.
const DEFAULT_DAYS: i64 = 30;
/// How far back `since` may go: the answer has a row per week of the window.
const MAX_DAYS: i64 = 3660;
/// The window of the `/metrics` gauges.
const GAUGE_DAYS: i64 = 30;
/// `/metrics` recomputes the gauges at most this often: a scrape every few seconds must not
/// walk the history each time.
const GAUGE_TTL: Duration = Duration::from_secs(60);
const PAGE_TEMPLATE: &str = include_str!("../../templates/dashboard/dora.html.tera");
const CHARTS_TEMPLATE: &str = include_str!("../../templates/dashboard/charts.svg.tera");

/// The gauges' text as last computed.
#[derive(Default)]
pub struct GaugeCache(Mutex<Option<(Instant, String)>>);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DoraQuery {
    env: Option<String>,
    app: Option<String>,
    since: Option<String>,
}

/// The answer of the API route: the filter it was computed for and the figures.
#[derive(Serialize)]
struct DoraAnswer {
    env: Option<EnvName>,
    app: Option<AppName>,
    #[serde(flatten)]
    figures: Figures,
}

/// `since` as an RFC 3339 time, a date (`2026-11-01`, midnight UTC) or a duration back from
/// `now` (`30d`, `12w`, `36h`). It must lie in the past.
pub fn parse_since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    let at = if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        t.to_utc()
    } else if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        d.and_time(chrono::NaiveTime::MIN).and_utc()
    } else if let Ok(d) = humantime::parse_duration(text) {
        let back = chrono::Duration::from_std(d).map_err(|_| format!("since: {text} is too long ago"))?;
        now.checked_sub_signed(back)
            .ok_or_else(|| format!("since: {text} is too long ago"))?
    } else {
        return Err(format!(
            "since: {text:?} is neither a time (2026-11-01T00:00:00Z), a date (2026-11-01) nor a duration (30d)"
        ));
    };
    if at >= now {
        return Err(format!("since: {} is not in the past", at.to_rfc3339()));
    }
    if now - at > chrono::Duration::days(MAX_DAYS) {
        return Err(format!("since: at most {MAX_DAYS} days back"));
    }
    Ok(at)
}

fn bad(message: impl std::fmt::Display) -> JsonError {
    JsonError::new(StatusCode::BAD_REQUEST, message)
}

/// `GET /api/v1/metrics/dora`: the figures for an env, an app, both or everything the token may
/// read, since a time (default: 30 days).
pub async fn api(caller: ApiCaller, req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let resp = match api_inner(&caller, &req, state.clone()).await {
        Ok(r) => r,
        Err(e) => e.error_response(),
    };
    state.metrics.api("metrics.dora", resp.status().as_u16());
    resp
}

async fn api_inner(
    caller: &ApiCaller,
    req: &HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, JsonError> {
    let q = web::Query::<DoraQuery>::from_query(req.query_string())
        .map_err(bad)?
        .into_inner();
    let (env, app) = env_and_app(q.env, q.app)?;
    let now = Utc::now();
    let since = match q.since.as_deref() {
        Some(s) => parse_since(s, now).map_err(bad)?,
        None => now - chrono::Duration::days(DEFAULT_DAYS),
    };
    if let Some(app) = &app {
        caller.may(ApiVerb::Read, app)?;
    }
    let scope = Scope {
        env: env.clone(),
        app: app.clone(),
        readable: caller.apps_for(ApiVerb::Read),
    };
    let window = Window { since, until: now };
    let figures = compute(state, scope, window).await?;
    Ok(HttpResponse::Ok().json(DoraAnswer { env, app, figures }))
}

/// Reads the facts (fetching the gitops repository if due) and computes the figures.
async fn compute(state: web::Data<AppState>, scope: Scope, window: Window) -> Result<Figures, JsonError> {
    let done = web::block(move || -> Result<Figures, JsonError> {
        let pairs = pairs(&state.policies.current(), &scope);
        let repo = fresh_gitops(&state).map_err(|(status, why)| JsonError::new(status, why))?;
        let list = facts(repo, &state.store, &pairs, window.since).map_err(|e| {
            tracing::error!(error = %e, "reading the DORA facts failed");
            JsonError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "reading the release history failed",
            )
        })?;
        Ok(figures(&list, window))
    })
    .await;
    done.map_err(|_| {
        JsonError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "reading the release history failed",
        )
    })?
}

/// The `auger_dora_*` gauges, one set per (env, app) the policies declare, over the last 30
/// days; empty without a gitops repository or when the history cannot be read (logged).
pub async fn gauges(state: web::Data<AppState>) -> String {
    {
        let cached = state.dora_gauges.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, text)) = cached.as_ref()
            && at.elapsed() < GAUGE_TTL
        {
            return text.clone();
        }
    }
    if state.gitops.is_none() {
        return String::new();
    }
    let s = state.clone();
    let done = web::block(move || -> Result<String, String> {
        let now = Utc::now();
        let window = Window {
            since: now - chrono::Duration::days(GAUGE_DAYS),
            until: now,
        };
        let all = pairs(&s.policies.current(), &Scope::default());
        // A scrape reads the caches as last fetched: running `git fetch` here would also
        // reset the fetch interval of the history routes and hand them a stale view.
        let repo = s.gitops.as_deref().ok_or("no gitops repository is configured")?;
        let list = facts(repo, &s.store, &all, window.since).map_err(|e| e.to_string())?;
        let per_pair = all.keys().map(|(env, app)| {
            let mine: Vec<_> = list
                .iter()
                .filter(|f| &f.env == env && &f.app == app)
                .cloned()
                .collect();
            (env, app, figures(&mine, window))
        });
        Ok(render_gauges(per_pair))
    })
    .await;
    match done {
        Ok(Ok(text)) => {
            *state.dora_gauges.0.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((Instant::now(), text.clone()));
            text
        }
        Ok(Err(why)) => {
            tracing::warn!(error = %why, "DORA gauges left out of /metrics");
            String::new()
        }
        Err(_) => String::new(),
    }
}

/// Prometheus text for the figures of each pair. Label values are policy names (validated
/// `EnvName` / `AppName`: no quotes or backslashes), so they need no escaping and their number
/// is bounded by the policies.
fn render_gauges<'a>(per_pair: impl Iterator<Item = (&'a EnvName, &'a AppName, Figures)>) -> String {
    let mut deployments = String::new();
    let mut lead = String::new();
    let mut cfr = String::new();
    let mut restore = String::new();
    for (env, app, f) in per_pair {
        let labels = format!("{{env=\"{env}\",app=\"{app}\"}}");
        deployments.push_str(&format!("auger_dora_deployments{labels} {}\n", f.deployments));
        if let Some(s) = f.lead_time.median_seconds {
            lead.push_str(&format!("auger_dora_lead_time_seconds{labels} {s}\n"));
        }
        if let Some(r) = f.change_failure_rate {
            cfr.push_str(&format!("auger_dora_change_failure_rate{labels} {r}\n"));
        }
        if let Some(s) = f.time_to_restore.median_seconds {
            restore.push_str(&format!("auger_dora_time_to_restore_seconds{labels} {s}\n"));
        }
    }
    let mut out = String::new();
    for (name, help, body) in [
        (
            "auger_dora_deployments",
            "Releases that landed in the last 30 days, rollbacks included.",
            deployments,
        ),
        (
            "auger_dora_lead_time_seconds",
            "Median time from source commit to healthy (merged where the env does not verify), last 30 days.",
            lead,
        ),
        (
            "auger_dora_change_failure_rate",
            "Share of changes of the last 30 days that failed verification or were rolled back.",
            cfr,
        ),
        (
            "auger_dora_time_to_restore_seconds",
            "Median time from a failed change to the next rollback or healthy release, last 30 days.",
            restore,
        ),
    ] {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n{body}"));
    }
    out
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    env: Option<String>,
    app: Option<String>,
    weeks: Option<u32>,
}

/// `GET /dora`: the figures of the last `weeks` weeks (default 12) with their charts.
pub async fn page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    match page_inner(&req, state).await {
        Ok(r) => r,
        Err(e) => e.error_response(),
    }
}

/// The `env` and `app` query parameters, validated; empty means all.
fn env_and_app(
    env: Option<String>,
    app: Option<String>,
) -> Result<(Option<EnvName>, Option<AppName>), JsonError> {
    let env = env
        .filter(|e| !e.is_empty())
        .map(EnvName::new)
        .transpose()
        .map_err(|e| bad(format!("env: {e}")))?;
    let app = app
        .filter(|a| !a.is_empty())
        .map(AppName::new)
        .transpose()
        .map_err(|e| bad(format!("app: {e}")))?;
    Ok((env, app))
}

async fn page_inner(req: &HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, JsonError> {
    let q = web::Query::<PageQuery>::from_query(req.query_string())
        .map_err(bad)?
        .into_inner();
    let (env, app) = env_and_app(q.env, q.app)?;
    let weeks = q.weeks.unwrap_or(12);
    if !(1..=104).contains(&weeks) {
        return Err(bad("weeks: from 1 to 104"));
    }
    let now = Utc::now();
    let window = Window {
        since: now - chrono::Duration::weeks(i64::from(weeks)),
        until: now,
    };
    let scope = Scope {
        env: env.clone(),
        app: app.clone(),
        readable: None,
    };
    let mut envs: Vec<String> = Vec::new();
    let policies = state.policies.current();
    for p in policies.iter() {
        for (e, _) in p.envs() {
            if !envs.iter().any(|x| x == e.as_str()) {
                envs.push(e.to_string());
            }
        }
    }
    let apps: Vec<String> = policies.apps().map(|a| a.to_string()).collect();
    let f = compute(state, scope, window).await?;

    let mut ctx = tera::Context::new();
    ctx.insert("env", &env.map(|e| e.to_string()).unwrap_or_default());
    ctx.insert("app", &app.map(|a| a.to_string()).unwrap_or_default());
    ctx.insert("envs", &envs);
    ctx.insert("apps", &apps);
    ctx.insert("weeks", &weeks);
    ctx.insert("since", &f.since.format("%Y-%m-%d").to_string());
    ctx.insert("until", &f.until.format("%Y-%m-%d").to_string());
    ctx.insert("per_day", &format!("{:.2}", f.deployments_per_day));
    ctx.insert("lead_time", &duration_text(f.lead_time.median_seconds));
    ctx.insert("restore", &duration_text(f.time_to_restore.median_seconds));
    ctx.insert(
        "failure_rate",
        &f.change_failure_rate
            .map(|r| format!("{:.0}%", r * 100.0))
            .unwrap_or_else(|| "–".into()),
    );
    ctx.insert("deploys", &charts::deploys_per_week(&f.weeks));
    ctx.insert("lead", &charts::lead_time_per_week(&f.weeks));
    ctx.insert("figures", &f);
    let html = render_page(&ctx).map_err(|e| {
        tracing::error!(error = %e, "the DORA page template failed");
        JsonError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the metrics page template failed",
        )
    })?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html))
}

/// The page, with HTML escaping on for both templates (their names end in `.tera`, which tera
/// would not escape by default).
fn render_page(ctx: &tera::Context) -> Result<String, tera::Error> {
    let mut tera = tera::Tera::default();
    tera.autoescape_on(vec![".tera"]);
    tera.add_raw_templates([
        ("charts.svg.tera", CHARTS_TEMPLATE),
        ("dora.html.tera", PAGE_TEMPLATE),
    ])?;
    tera.render("dora.html.tera", ctx)
}

/// "3.5 h", "2.0 d", "12 min"; "–" for none.
fn duration_text(seconds: Option<f64>) -> String {
    match seconds {
        None => "–".into(),
        Some(s) if s < 3600.0 => format!("{:.0} min", s / 60.0),
        Some(s) if s < 2.0 * 86_400.0 => format!("{:.1} h", s / 3600.0),
        Some(s) => format!("{:.1} d", s / 86_400.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-06T12:00:00Z")
            .unwrap()
            .to_utc()
    }

    #[test]
    fn since_takes_a_time_a_date_or_a_duration_in_the_past() {
        let at = |s| parse_since(s, now());
        assert_eq!(
            at("2026-11-01T10:00:00Z").unwrap().to_rfc3339(),
            "2026-11-01T10:00:00+00:00"
        );
        assert_eq!(
            at("2026-11-01").unwrap().to_rfc3339(),
            "2026-11-01T00:00:00+00:00"
        );
        assert_eq!(at("7d").unwrap(), now() - chrono::Duration::days(7));
        assert!(at("2027-01-01").unwrap_err().contains("not in the past"));
        assert!(at("last tuesday").unwrap_err().starts_with("since:"));
        assert!(at("1970-01-01").unwrap_err().contains("days back"));
    }

    #[test]
    fn gauges_name_each_pair_and_leave_out_figures_that_do_not_exist() {
        let (env, app) = (EnvName::new("production").unwrap(), AppName::new("web").unwrap());
        let window = Window {
            since: now() - chrono::Duration::days(30),
            until: now(),
        };
        let empty = figures(&[], window);
        let text = render_gauges([(&env, &app, empty)].into_iter());
        assert!(
            text.contains("auger_dora_deployments{env=\"production\",app=\"web\"} 0\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE auger_dora_change_failure_rate gauge\n"));
        assert!(
            !text.contains("auger_dora_change_failure_rate{"),
            "no changes, no rate: {text}"
        );
    }

    #[test]
    fn the_page_escapes_what_it_shows() {
        let mut ctx = tera::Context::new();
        let window = Window {
            since: now() - chrono::Duration::weeks(2),
            until: now(),
        };
        let f = figures(&[], window);
        ctx.insert("env", "<b>");
        ctx.insert("app", "");
        ctx.insert("envs", &vec!["<b>"]);
        ctx.insert("apps", &Vec::<String>::new());
        ctx.insert("weeks", &2);
        ctx.insert("since", "a");
        ctx.insert("until", "b");
        ctx.insert("per_day", "0");
        ctx.insert("lead_time", "–");
        ctx.insert("restore", "–");
        ctx.insert("failure_rate", "–");
        ctx.insert("deploys", &charts::deploys_per_week(&f.weeks));
        ctx.insert("lead", &charts::lead_time_per_week(&f.weeks));
        ctx.insert("figures", &f);
        let html = render_page(&ctx).unwrap();
        assert!(!html.contains("<b>") && html.contains("&lt;b&gt;"), "{html}");
        assert_eq!(html.matches("class=\"bar\"").count(), 3, "three weeks touched");
    }
}
