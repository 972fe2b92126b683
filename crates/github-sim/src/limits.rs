//! GitHub's REST rate limits, modeled when a test asks for them.
//!
//! Primary: each principal (user, installation, the app's JWT) gets `per_hour` requests in a
//! window that starts with its first request and resets an hour later; every answer carries the
//! `x-ratelimit-*` headers, and past the limit GitHub answers 403 "API rate limit exceeded for
//! …" with `x-ratelimit-remaining: 0` until the reset. Secondary: more than
//! `content_creating_per_minute` POST/PATCH/PUT/DELETE requests of one principal in a rolling
//! minute get 403 with `retry-after` and GitHub's secondary-limit message.
//!
//! Time is the wall clock plus an offset the driver can advance, so tests see a reset without
//! waiting an hour.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::state::Principal;

const PRIMARY_DOCS: &str =
    "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-primary-rate-limits";
const SECONDARY_DOCS: &str =
    "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits";

#[derive(Default)]
pub(crate) struct Limits {
    per_hour: Option<u32>,
    content_creating_per_minute: Option<u32>,
    /// How far the limits' clock is ahead of the wall clock.
    offset: Duration,
    windows: HashMap<String, Window>,
    writes: HashMap<String, VecDeque<DateTime<Utc>>>,
}

struct Window {
    reset: DateTime<Utc>,
    used: u32,
}

/// What the limits make of one request: headers for the answer, or a refusal.
pub(crate) struct Admission {
    pub headers: Vec<(&'static str, String)>,
    pub refusal: Option<Refusal>,
}

pub(crate) struct Refusal {
    pub body: serde_json::Value,
}

/// The key a principal's budget is kept under, worded as GitHub's message names it.
pub(crate) fn bucket(principal: &Principal, user_id: Option<u64>) -> String {
    match principal {
        Principal::User(login) => match user_id {
            Some(id) => format!("user ID {id}"),
            None => format!("user {login}"),
        },
        Principal::Installation { id, .. } => format!("installation ID {id}"),
        Principal::App => "the app".to_string(),
    }
}

impl Limits {
    pub fn set_primary(&mut self, per_hour: Option<u32>) {
        self.per_hour = per_hour;
        self.windows.clear();
    }

    pub fn set_secondary(&mut self, per_minute: Option<u32>) {
        self.content_creating_per_minute = per_minute;
        self.writes.clear();
    }

    pub fn advance(&mut self, by: Duration) {
        self.offset += by;
    }

    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset
    }

    /// Counts one request against the budgets kept under `key` (see [`bucket`]). `GET /rate_limit` is answered
    /// without counting, as on GitHub.
    pub fn admit(&mut self, key: String, method: &str, path: &str, request_id: &str) -> Admission {
        let now = self.now();
        let mut headers = Vec::new();
        if let Some(limit) = self.per_hour {
            let window = self.windows.entry(key.clone()).or_insert(Window {
                reset: now + Duration::hours(1),
                used: 0,
            });
            if window.reset <= now {
                *window = Window {
                    reset: now + Duration::hours(1),
                    used: 0,
                };
            }
            let counted = path != "/rate_limit";
            let exceeded = counted && window.used >= limit;
            if counted && !exceeded {
                window.used += 1;
            }
            headers.extend([
                ("x-ratelimit-limit", limit.to_string()),
                (
                    "x-ratelimit-remaining",
                    (limit - window.used.min(limit)).to_string(),
                ),
                ("x-ratelimit-used", window.used.to_string()),
                ("x-ratelimit-reset", window.reset.timestamp().to_string()),
                ("x-ratelimit-resource", "core".to_string()),
            ]);
            if exceeded {
                let message = format!(
                    "API rate limit exceeded for {key}. If you reach out to GitHub Support for help, \
                     please include the request ID {request_id}."
                );
                return Admission {
                    headers,
                    refusal: Some(Refusal {
                        body: json!({"message": message, "documentation_url": PRIMARY_DOCS}),
                    }),
                };
            }
        }
        let content_creating = matches!(method, "POST" | "PATCH" | "PUT" | "DELETE");
        if let (Some(limit), true) = (self.content_creating_per_minute, content_creating) {
            let writes = self.writes.entry(key).or_default();
            while writes.front().is_some_and(|t| *t + Duration::minutes(1) <= now) {
                writes.pop_front();
            }
            if writes.len() >= limit as usize {
                // The oldest write leaves the rolling minute first; round up so a client that
                // waits exactly `retry-after` seconds is admitted.
                let wait = writes
                    .front()
                    .map_or(Duration::zero(), |t| *t + Duration::minutes(1) - now);
                let secs = (wait.num_milliseconds().max(0) as u64).div_ceil(1000).max(1);
                headers.push(("retry-after", secs.to_string()));
                let message = format!(
                    "You have exceeded a secondary rate limit. Please wait a few minutes before you \
                     try again. If you reach out to GitHub Support for help, please include the \
                     request ID {request_id}."
                );
                return Admission {
                    headers,
                    refusal: Some(Refusal {
                        body: json!({"message": message, "documentation_url": SECONDARY_DOCS}),
                    }),
                };
            }
            writes.push_back(now);
        }
        Admission {
            headers,
            refusal: None,
        }
    }

    /// `GET /rate_limit`'s `core` numbers for the budget `key`, when a primary limit is modeled.
    pub fn core(&self, key: &str) -> Option<serde_json::Value> {
        let limit = self.per_hour?;
        let now = self.now();
        let (used, reset) = match self.windows.get(key) {
            Some(w) if w.reset > now => (w.used, w.reset),
            _ => (0, now + Duration::hours(1)),
        };
        Some(json!({
            "limit": limit,
            "used": used,
            "remaining": limit - used.min(limit),
            "reset": reset.timestamp(),
        }))
    }
}
