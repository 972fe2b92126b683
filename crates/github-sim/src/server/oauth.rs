//! GitHub's OAuth web application flow, as github.com serves it (not the REST API, so these
//! routes are outside the OpenAPI table): `GET /login/oauth/authorize` shows the page where a
//! person allows the app, the allow button sends the browser back to the app's `redirect_uri`
//! with a one-time `code` and the app's `state`, and `POST /login/oauth/access_token` trades
//! the code for a user token that `GET /user` and the rest of the API accept.
//!
//! A real GitHub asks the person to sign in first; here the page has a login field instead,
//! naming an account the simulator knows. Error answers follow GitHub's documentation: the
//! token endpoint answers 200 with `error`, `error_description` and `error_uri`.

use std::collections::HashMap;

use actix_web::HttpResponse;
use actix_web::http::header;
use chrono::Utc;
use serde_json::json;

use crate::Inner;
use crate::state::{OAuthCode, Principal};

/// How long a code may be exchanged (GitHub: ten minutes).
const CODE_LIFETIME: chrono::Duration = chrono::Duration::minutes(10);

/// Answers the flow's routes; `None` for any other path.
pub(crate) fn serve(
    inner: &Inner,
    method: &str,
    segs: &[&str],
    query: &str,
    body: &[u8],
    accept_json: bool,
) -> Option<HttpResponse> {
    match (method, segs) {
        ("GET", ["login", "oauth", "authorize"]) => Some(authorize_page(inner, &params(query))),
        ("POST", ["login", "oauth", "authorize"]) => {
            Some(authorize(inner, &params(&String::from_utf8_lossy(body))))
        }
        ("POST", ["login", "oauth", "access_token"]) => {
            let mut p = params(query);
            let text = String::from_utf8_lossy(body);
            match serde_json::from_str::<HashMap<String, String>>(&text) {
                Ok(json) => p.extend(json),
                Err(_) => p.extend(params(&text)),
            }
            Some(access_token(inner, &p, accept_json))
        }
        _ => None,
    }
}

fn params(s: &str) -> HashMap<String, String> {
    actix_web::web::Query::<HashMap<String, String>>::from_query(s)
        .map(|q| q.into_inner())
        .unwrap_or_default()
}

/// Whether `redirect` is allowed for an app whose callback is `callback`: same scheme, host
/// and port, and a path at or below the callback's (GitHub's rule).
fn redirect_allowed(callback: &str, redirect: &str) -> bool {
    let Some(rest) = redirect.strip_prefix(callback.trim_end_matches('/')) else {
        return false;
    };
    rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')
}

fn page(status: actix_web::http::StatusCode, title: &str, body: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head><body>{body}</body></html>"
        ))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The redirect the app gets: its `redirect_uri` (or registered callback) with `extra`.
fn back_to(redirect: &str, extra: &[(&str, &str)]) -> HttpResponse {
    let query: Vec<String> = extra
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect();
    let sep = if redirect.contains('?') { '&' } else { '?' };
    HttpResponse::Found()
        .insert_header((header::LOCATION, format!("{redirect}{sep}{}", query.join("&"))))
        .finish()
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The app and redirect an authorize request names, or the page saying what is wrong. A
/// redirect that does not match the registered callback is sent to the callback with
/// `error=redirect_uri_mismatch`, as GitHub does.
fn checked(inner: &Inner, p: &HashMap<String, String>) -> Result<(String, String), Box<HttpResponse>> {
    let client_id = p.get("client_id").cloned().unwrap_or_default();
    let st = inner.lock();
    let Some(app) = st.oauth_apps.get(&client_id) else {
        return Err(Box::new(page(
            actix_web::http::StatusCode::NOT_FOUND,
            "Not Found",
            "<h1>404</h1><p>No OAuth app has this client_id.</p>",
        )));
    };
    let redirect = p
        .get("redirect_uri")
        .cloned()
        .unwrap_or_else(|| app.callback_url.clone());
    if !redirect_allowed(&app.callback_url, &redirect) {
        let state = p.get("state").cloned().unwrap_or_default();
        return Err(Box::new(back_to(
            &app.callback_url,
            &[
                ("error", "redirect_uri_mismatch"),
                (
                    "error_description",
                    "The redirect_uri MUST match the registered callback URL for this application.",
                ),
                ("error_uri", ERROR_URI),
                ("state", &state),
            ],
        )));
    }
    Ok((client_id, redirect))
}

const ERROR_URI: &str =
    "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors";

fn authorize_page(inner: &Inner, p: &HashMap<String, String>) -> HttpResponse {
    let (client_id, redirect) = match checked(inner, p) {
        Ok(x) => x,
        Err(resp) => return *resp,
    };
    let hidden = |name: &str, value: &str| {
        format!(
            "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
            escape(value)
        )
    };
    let state = p.get("state").map(String::as_str).unwrap_or("");
    let body = format!(
        "<h1>Authorize application</h1><form method=\"post\" action=\"/login/oauth/authorize\">{}{}{}\
         <label>Sign in as <input name=\"login\" id=\"login\" value=\"{}\"></label> \
         <button type=\"submit\" name=\"authorize\" value=\"1\" id=\"authorize\">Authorize</button> \
         <button type=\"submit\" name=\"authorize\" value=\"0\" id=\"cancel\">Cancel</button></form>",
        hidden("client_id", &client_id),
        hidden("redirect_uri", &redirect),
        hidden("state", state),
        escape(p.get("login").map(String::as_str).unwrap_or("")),
    );
    page(actix_web::http::StatusCode::OK, "Authorize application", &body)
}

fn authorize(inner: &Inner, p: &HashMap<String, String>) -> HttpResponse {
    let (client_id, redirect) = match checked(inner, p) {
        Ok(x) => x,
        Err(resp) => return *resp,
    };
    let state = p.get("state").cloned().unwrap_or_default();
    if p.get("authorize").map(String::as_str) != Some("1") {
        return back_to(
            &redirect,
            &[
                ("error", "access_denied"),
                (
                    "error_description",
                    "The user has denied your application access.",
                ),
                ("error_uri", ERROR_URI),
                ("state", &state),
            ],
        );
    }
    let login = p.get("login").cloned().unwrap_or_default();
    let mut st = inner.lock();
    let Some(account) = st.account(&login).cloned() else {
        return page(
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            "Sign in",
            "<h1>Incorrect username</h1>",
        );
    };
    let code = uuid::Uuid::new_v4().simple().to_string()[..20].to_owned();
    st.oauth_codes.insert(
        code.clone(),
        OAuthCode {
            client_id,
            login: account.login,
            redirect_uri: redirect.clone(),
            expires_at: Utc::now() + CODE_LIFETIME,
        },
    );
    drop(st);
    back_to(&redirect, &[("code", &code), ("state", &state)])
}

fn access_token(inner: &Inner, p: &HashMap<String, String>, accept_json: bool) -> HttpResponse {
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    let mut st = inner.lock();
    let credentials_ok = st
        .oauth_apps
        .get(get("client_id"))
        .is_some_and(|a| !get("client_secret").is_empty() && a.secret == get("client_secret"));
    let answer = if !credentials_ok {
        Err((
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
        ))
    } else {
        // A code works once, whatever the outcome.
        match st.oauth_codes.remove(get("code")) {
            Some(c) if c.client_id == get("client_id") && c.expires_at > Utc::now() => {
                if !get("redirect_uri").is_empty() && get("redirect_uri") != c.redirect_uri {
                    Err((
                        "redirect_uri_mismatch",
                        "The redirect_uri MUST match the registered callback URL for this application.",
                    ))
                } else {
                    let token = format!("gho_{}", uuid::Uuid::new_v4().simple());
                    st.tokens.insert(token.clone(), Principal::User(c.login));
                    Ok(token)
                }
            }
            _ => Err((
                "bad_verification_code",
                "The code passed is incorrect or expired.",
            )),
        }
    };
    drop(st);
    let fields: Vec<(&str, String)> = match answer {
        Ok(token) => vec![
            ("access_token", token),
            ("scope", String::new()),
            ("token_type", "bearer".into()),
        ],
        Err((error, description)) => vec![
            ("error", error.into()),
            ("error_description", description.into()),
            ("error_uri", ERROR_URI.into()),
        ],
    };
    if accept_json {
        let map: serde_json::Map<String, serde_json::Value> = fields
            .into_iter()
            .map(|(k, v)| (k.to_owned(), json!(v)))
            .collect();
        HttpResponse::Ok().json(map)
    } else {
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{k}={}", percent_encode(v)))
            .collect();
        HttpResponse::Ok()
            .content_type("application/x-www-form-urlencoded; charset=utf-8")
            .body(body.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::redirect_allowed;

    #[test]
    fn a_redirect_must_stay_at_or_below_the_callback() {
        let cb = "http://127.0.0.1:8080";
        assert!(redirect_allowed(cb, "http://127.0.0.1:8080/oauth/callback"));
        assert!(redirect_allowed(cb, "http://127.0.0.1:8080"));
        assert!(!redirect_allowed(cb, "http://127.0.0.1:80801/oauth/callback"));
        assert!(!redirect_allowed(cb, "http://evil.example/oauth/callback"));
        assert!(!redirect_allowed("http://h/app", "http://h/application"));
    }
}
