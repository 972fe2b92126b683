//! Logging in to the dashboard with GitHub (design §17): GitHub's OAuth web application flow.
//!
//! `GET /login` sends the browser to GitHub's authorize page with a random `state`, which a
//! signed, short-lived cookie binds to this browser; `GET /oauth/callback` takes the code only
//! with that cookie and the same state, trades it for a token at the token endpoint, asks
//! `GET /user` whose token it is, and sets the session cookie ([`super::session`]). The token
//! itself is dropped: the session needs only the login and id, and deployers are checked with
//! auger's own credentials. `POST /logout` ends the session.
//!
//! Without `[dashboard] oauth_client_id` these routes answer 404 and the dashboard is read-only.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde::Deserialize;

use super::AppState;
use super::dashboard::{Message, message_page};
use super::session::{
    SESSION_COOKIE, SESSION_LIFETIME, STATE_COOKIE, STATE_LIFETIME, Session, SessionKey, cookie_value,
    random_token, set_cookie,
};
use crate::config::DashboardConfig;

/// The OAuth app and the session key: what login and the action routes need.
pub struct Login {
    client_id: String,
    client_secret: String,
    /// GitHub's web host (`https://github.com`).
    github_url: String,
    /// GitHub's REST API (`https://api.github.com`), for `GET /user`.
    api_url: String,
    /// The dashboard's public address, when configured.
    public_url: Option<String>,
    pub key: SessionKey,
    http: reqwest::Client,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("client_id", &self.client_id)
            .field("github_url", &self.github_url)
            .finish_non_exhaustive()
    }
}

/// Why a login did not complete.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("GitHub refused the login: {0}")]
    Refused(String),
    #[error("GitHub could not be asked: {0}")]
    Unreachable(String),
}

impl Login {
    pub fn new(
        config: &DashboardConfig,
        client_secret: String,
        key: SessionKey,
        api_url: &str,
    ) -> anyhow::Result<Login> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .user_agent(concat!("auger/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Login {
            client_id: config.oauth_client_id.clone(),
            client_secret,
            github_url: config.github_url.clone(),
            api_url: api_url.trim_end_matches('/').to_owned(),
            public_url: config.url.clone(),
            key,
            http,
        })
    }

    /// The dashboard's base address as the browser reaches it: the configured one, else the
    /// scheme and host of the request (`Forwarded` / `X-Forwarded-*` honoured, as a proxy
    /// in front sets them).
    pub fn base_url(&self, req: &HttpRequest) -> String {
        match &self.public_url {
            Some(u) => u.clone(),
            None => {
                let info = req.connection_info();
                format!("{}://{}", info.scheme(), info.host())
            }
        }
    }

    /// Whether cookies get `Secure`: the dashboard is served over https.
    pub fn secure(&self, req: &HttpRequest) -> bool {
        self.base_url(req).starts_with("https://")
    }

    /// The session the request's cookie holds, if valid.
    pub fn session(&self, req: &HttpRequest) -> Option<Session> {
        let header = req.headers().get(header::COOKIE)?.to_str().ok()?;
        let value = cookie_value(header, SESSION_COOKIE)?;
        self.key.open(value, Utc::now())
    }

    /// Trades a code for the GitHub account it was issued to: `(login, id)`.
    async fn account_for(&self, code: &str, redirect_uri: &str) -> Result<(String, u64), LoginError> {
        #[derive(Deserialize)]
        struct TokenAnswer {
            access_token: Option<String>,
            error: Option<String>,
            error_description: Option<String>,
        }
        #[derive(Deserialize)]
        struct User {
            login: String,
            id: u64,
        }
        let unreachable = |e: reqwest::Error| LoginError::Unreachable(e.to_string());
        let answer: TokenAnswer = self
            .http
            .post(format!("{}/login/oauth/access_token", self.github_url))
            .header("accept", "application/json")
            .form(&[
                ("client_id", self.client_id.as_str()),
                ("client_secret", self.client_secret.as_str()),
                ("code", code),
                ("redirect_uri", redirect_uri),
            ])
            .send()
            .await
            .map_err(unreachable)?
            .error_for_status()
            .map_err(unreachable)?
            .json()
            .await
            .map_err(unreachable)?;
        let token = match (answer.access_token, answer.error) {
            (Some(t), None) if !t.is_empty() => t,
            (_, error) => {
                let why = answer
                    .error_description
                    .or(error)
                    .unwrap_or_else(|| "no access token in the answer".into());
                return Err(LoginError::Refused(why));
            }
        };
        let user: User = self
            .http
            .get(format!("{}/user", self.api_url))
            .bearer_auth(&token)
            .header("accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .send()
            .await
            .map_err(unreachable)?
            .error_for_status()
            .map_err(|e| LoginError::Refused(format!("GET /user: {e}")))?
            .json()
            .await
            .map_err(unreachable)?;
        Ok((user.login, user.id))
    }
}

/// A local path to return to after the login; anything else (another host, `//host`) is `/`.
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains(['\\', '\r', '\n']) => {
            p.to_owned()
        }
        _ => "/".to_owned(),
    }
}

fn percent(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", web::get().to(login))
        .route("/oauth/callback", web::get().to(callback))
        .route("/logout", web::post().to(logout));
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

async fn login(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let Some(login) = &state.login else {
        return message_page(StatusCode::NOT_FOUND, &Message::ReadOnly);
    };
    let next = web::Query::<LoginQuery>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.into_inner().next);
    let next = local_path(next.as_deref());
    let nonce = match random_token() {
        Ok(t) => t,
        Err(e) => return failed(e),
    };
    let redirect = format!("{}/oauth/callback", login.base_url(&req));
    let location = format!(
        "{}/login/oauth/authorize?client_id={}&redirect_uri={}&state={}&allow_signup=false",
        login.github_url,
        percent(&login.client_id),
        percent(&redirect),
        nonce
    );
    let cookie = login.key.seal_state(&nonce, &next, Utc::now());
    HttpResponse::Found()
        .insert_header((header::LOCATION, location))
        .insert_header((
            header::SET_COOKIE,
            set_cookie(STATE_COOKIE, &cookie, STATE_LIFETIME, login.secure(&req)),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn callback(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let Some(login) = &state.login else {
        return message_page(StatusCode::NOT_FOUND, &Message::ReadOnly);
    };
    let refused = |why: String| message_page(StatusCode::FORBIDDEN, &Message::LoginFailed { error: why });
    let Ok(q) = web::Query::<CallbackQuery>::from_query(req.query_string()) else {
        return refused("the callback's query is not one GitHub sends".into());
    };
    let q = q.into_inner();
    if let Some(e) = q.error {
        return refused(q.error_description.unwrap_or(e));
    }
    let cookie = req
        .headers()
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| cookie_value(h, STATE_COOKIE).map(str::to_owned));
    let (Some(code), Some(returned), Some(cookie)) = (q.code, q.state, cookie) else {
        return refused("the login was not started from this browser (no state), or it took too long".into());
    };
    let Some(next) = login.key.open_state(&cookie, &returned, Utc::now()) else {
        return refused("the login's state does not match the one this browser started with".into());
    };
    let redirect = format!("{}/oauth/callback", login.base_url(&req));
    let (who, id) = match login.account_for(&code, &redirect).await {
        Ok(x) => x,
        Err(LoginError::Refused(why)) => return refused(why),
        Err(e @ LoginError::Unreachable(_)) => {
            tracing::warn!(error = %e, "a dashboard login could not complete");
            return message_page(
                StatusCode::BAD_GATEWAY,
                &Message::LoginFailed { error: e.to_string() },
            );
        }
    };
    let session = match Session::new(&who, id, Utc::now()) {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    tracing::info!(login = %who, "logged in to the dashboard");
    let secure = login.secure(&req);
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, next))
        .append_header((
            header::SET_COOKIE,
            set_cookie(
                SESSION_COOKIE,
                &login.key.seal(&session),
                SESSION_LIFETIME,
                secure,
            ),
        ))
        .append_header((
            header::SET_COOKIE,
            set_cookie(STATE_COOKIE, "", chrono::Duration::zero(), secure),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

#[derive(Deserialize)]
struct LogoutForm {
    csrf: Option<String>,
}

async fn logout(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let Some(login) = &state.login else {
        return message_page(StatusCode::NOT_FOUND, &Message::ReadOnly);
    };
    let form = web::Query::<LogoutForm>::from_query(&String::from_utf8_lossy(&body))
        .map(|f| f.into_inner().csrf.unwrap_or_default())
        .unwrap_or_default();
    if let Some(s) = login.session(&req)
        && !s.csrf_matches(&form)
    {
        return message_page(StatusCode::FORBIDDEN, &Message::BadCsrf);
    }
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/"))
        .insert_header((
            header::SET_COOKIE,
            set_cookie(SESSION_COOKIE, "", chrono::Duration::zero(), login.secure(&req)),
        ))
        .finish()
}

fn failed(e: impl std::fmt::Display) -> HttpResponse {
    tracing::error!(error = %e, "the dashboard cannot make a secret");
    message_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        &Message::Failed {
            error: "auger cannot make a random secret".into(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(local_path(Some("/artifacts/web@1")), "/artifacts/web@1");
        assert_eq!(local_path(Some("//evil.example/")), "/");
        assert_eq!(local_path(Some("https://evil.example/")), "/");
        assert_eq!(local_path(Some("/\\evil")), "/");
        assert_eq!(local_path(None), "/");
    }
}
