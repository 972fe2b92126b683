//! Fault injection: per route, answer the next N requests with an error status or a delay.

use std::time::Duration;

use serde_json::{Value, json};

/// What an injected fault does to a matching request.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Answer with this status, extra headers and GitHub's error body instead of handling it.
    Status {
        status: u16,
        headers: Vec<(String, String)>,
        message: String,
    },
    /// Wait this long, then handle the request normally.
    Delay(Duration),
}

impl Fault {
    /// A plain error status (500, 502, 503, …) with GitHub's error body.
    pub fn status(status: u16) -> Fault {
        let message = match status {
            500 => "Server Error",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            404 => "Not Found",
            _ => "Error",
        };
        Fault::Status {
            status,
            headers: Vec::new(),
            message: message.to_string(),
        }
    }

    /// A secondary rate limit: `403` (or `429`) with `Retry-After: secs`.
    pub fn retry_after(status: u16, secs: u64) -> Fault {
        Fault::Status {
            status,
            headers: vec![("Retry-After".into(), secs.to_string())],
            message:
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
                    .into(),
        }
    }

    /// A primary rate limit: `403` with `x-ratelimit-remaining: 0` and `x-ratelimit-reset` (epoch s).
    pub fn rate_limited(reset_epoch: i64) -> Fault {
        Fault::Status {
            status: 403,
            headers: vec![
                ("x-ratelimit-limit".into(), "5000".into()),
                ("x-ratelimit-remaining".into(), "0".into()),
                ("x-ratelimit-used".into(), "5000".into()),
                ("x-ratelimit-reset".into(), reset_epoch.to_string()),
            ],
            message: "API rate limit exceeded for installation.".into(),
        }
    }

    /// Delay the answer by `ms` milliseconds.
    pub fn delay_ms(ms: u64) -> Fault {
        Fault::Delay(Duration::from_millis(ms))
    }

    pub(crate) fn body(message: &str) -> Value {
        json!({"message": message, "documentation_url": "https://docs.github.com/rest"})
    }
}

/// An armed fault: method (`None` = any), path pattern and how many requests remain.
#[derive(Debug, Clone)]
pub struct FaultRule {
    pub method: Option<String>,
    pub pattern: String,
    pub remaining: usize,
    pub fault: Fault,
}

/// Matches a path against a pattern: segments equal, or `*` / `{name}` for any one segment,
/// or a final `**` for any rest (including nothing).
pub fn path_matches(pattern: &str, path: &str) -> bool {
    let pat: Vec<&str> = pattern.trim_matches('/').split('/').collect();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    for (i, p) in pat.iter().enumerate() {
        if *p == "**" {
            return true;
        }
        let Some(s) = segs.get(i) else { return false };
        let wildcard = *p == "*" || (p.starts_with('{') && p.ends_with('}'));
        if !wildcard && p != s {
            return false;
        }
    }
    pat.len() == segs.len()
}

/// Takes one use of the first rule matching the request, if any.
pub fn take(rules: &mut Vec<FaultRule>, method: &str, path: &str) -> Option<Fault> {
    let idx = rules.iter().position(|r| {
        r.remaining > 0
            && r.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
            && path_matches(&r.pattern, path)
    })?;
    let rule = &mut rules[idx];
    rule.remaining -= 1;
    let fault = rule.fault.clone();
    if rule.remaining == 0 {
        rules.remove(idx);
    }
    Some(fault)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_by_segment() {
        assert!(path_matches("/repos/*/*/pulls", "/repos/acme/web/pulls"));
        assert!(path_matches(
            "/repos/{o}/{r}/pulls/*/merge",
            "/repos/a/b/pulls/3/merge"
        ));
        assert!(!path_matches("/repos/*/*/pulls", "/repos/acme/web/pulls/1"));
        assert!(path_matches("/repos/acme/**", "/repos/acme/web/pulls/1"));
        assert!(!path_matches("/repos/acme/web", "/repos/other/web"));
    }

    #[test]
    fn a_rule_is_used_up_after_n_requests() {
        let mut rules = vec![FaultRule {
            method: Some("GET".into()),
            pattern: "/user".into(),
            remaining: 2,
            fault: Fault::status(500),
        }];
        assert!(take(&mut rules, "POST", "/user").is_none());
        assert!(take(&mut rules, "GET", "/user").is_some());
        assert!(take(&mut rules, "get", "/user").is_some());
        assert!(take(&mut rules, "GET", "/user").is_none());
    }
}
