//! When to send a GitHub request again, and how long to wait first (design §10, §13).
//!
//! The rules, in the order they are applied to one answer:
//!
//! - **Rate limited** (429; 403 with `Retry-After`; 403/429 with `x-ratelimit-remaining: 0`):
//!   GitHub refused the request before doing anything, so it is retried whatever its method,
//!   after `Retry-After` seconds or until `x-ratelimit-reset`. A wait longer than the policy's
//!   remaining budget is not slept: the call fails at once with `RateLimited { retry_after }`
//!   so a worker can park the job instead of holding a thread for an hour.
//! - **Server error** (5xx) and transport failures after the request may have left: retried
//!   only for [`Safety::Idempotent`] calls, with capped exponential backoff and full jitter.
//!   A [`Safety::NotIdempotent`] call gets [`ForgeError::OutcomeUnknown`]: GitHub may or may
//!   not have created the comment, pull request or deployment, and only a read can tell.
//! - **Not sent at all** (connection refused, installation token could not be minted):
//!   retried for every call, since nothing reached GitHub.
//! - Anything else (2xx, 3xx, other 4xx) is final and handed back to the caller.
//!
//! Which calls are idempotent is decided per call in `github.rs`: GET, PUT, PATCH and DELETE
//! are; so are two POSTs whose repetition only adds a duplicate record whose latest value wins
//! (commit statuses, deployment statuses) and reactions (GitHub answers 200 for an existing
//! one). Creating comments, pull requests and deployments, and merging, are not.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;

use super::ForgeError;

/// Whether a call may be sent twice without changing the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Safety {
    Idempotent,
    NotIdempotent,
}

/// Bounds on retrying. Tests use small values; [`RetryPolicy::default`] suits production.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total sends of one call, the first included (1 = never retry).
    pub max_attempts: u32,
    /// First backoff step; doubled per attempt.
    pub base_delay: Duration,
    /// Cap of one backoff step (not of server-requested waits).
    pub max_delay: Duration,
    /// Most time one call may spend sleeping, over all its retries; a server-requested wait
    /// beyond what is left turns into `RateLimited` instead of a sleep.
    pub max_total_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
            max_total_wait: Duration::from_secs(90),
        }
    }
}

impl RetryPolicy {
    /// One send per call, no retries.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// Backoff before attempt `attempt + 1` (attempt counts from 1): full jitter over
    /// `min(max_delay, base * 2^(attempt-1))`, so clients that failed together spread out.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32.checked_shl(attempt.saturating_sub(1)).unwrap_or(u32::MAX));
        let cap = exp.min(self.max_delay);
        // Never zero: a retry right away mostly meets the same failure.
        let floor = cap / 4;
        floor + cap.saturating_sub(floor).mul_f64(fastrand::f64())
    }
}

/// API call counters by outcome, for `/metrics`. Cheap to share (`Arc`) and lock-free.
#[derive(Debug, Default)]
pub struct ApiStats {
    pub status_2xx: AtomicU64,
    pub status_3xx: AtomicU64,
    pub status_4xx: AtomicU64,
    pub status_5xx: AtomicU64,
    /// Sends that got no HTTP answer (connection, timeout, token minting failed).
    pub errors: AtomicU64,
    /// Sends that were repeats of an earlier failed one.
    pub retries: AtomicU64,
    /// Answers that were rate limits (also counted in their status class).
    pub rate_limited: AtomicU64,
}

/// A plain copy of [`ApiStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApiStatsSnapshot {
    pub status_2xx: u64,
    pub status_3xx: u64,
    pub status_4xx: u64,
    pub status_5xx: u64,
    pub errors: u64,
    pub retries: u64,
    pub rate_limited: u64,
}

impl ApiStats {
    pub fn record_status(&self, status: u16) {
        let counter = match status {
            200..=299 => &self.status_2xx,
            300..=399 => &self.status_3xx,
            400..=499 => &self.status_4xx,
            _ => &self.status_5xx,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> ApiStatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ApiStatsSnapshot {
            status_2xx: get(&self.status_2xx),
            status_3xx: get(&self.status_3xx),
            status_4xx: get(&self.status_4xx),
            status_5xx: get(&self.status_5xx),
            errors: get(&self.errors),
            retries: get(&self.retries),
            rate_limited: get(&self.rate_limited),
        }
    }
}

/// One answer with everything the retry rules and the callers look at.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

/// A send that produced no HTTP answer.
#[derive(Debug)]
pub enum SendFailure {
    /// Nothing reached GitHub (connect failed, token minting failed): safe to repeat.
    NotSent(String),
    /// The request may have been received; its effect is unknown.
    Lost(String),
    /// Credentials were refused while minting a token, or another failure no retry can fix.
    Fatal(ForgeError),
}

/// What an answer means for retrying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Final,
    /// Not processed by GitHub; wait this long (`None`: our own backoff) and send again.
    RateLimited(Option<Duration>),
    ServerError,
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// Classifies an answer. `now` is the Unix time, a parameter so tests can pin it.
pub(crate) fn classify(status: u16, headers: &HeaderMap, now: u64) -> Verdict {
    if status >= 500 {
        return Verdict::ServerError;
    }
    if status != 403 && status != 429 {
        return Verdict::Final;
    }
    if let Some(secs) = header_u64(headers, "retry-after") {
        return Verdict::RateLimited(Some(Duration::from_secs(secs)));
    }
    if header_u64(headers, "x-ratelimit-remaining") == Some(0) {
        // The reset is a whole second; one more absorbs clock skew between us and GitHub.
        let wait = header_u64(headers, "x-ratelimit-reset").map(|reset| reset.saturating_sub(now) + 1);
        return Verdict::RateLimited(wait.map(Duration::from_secs));
    }
    if status == 429 {
        return Verdict::RateLimited(None);
    }
    // A bare 403 is a real refusal (missing permission), not a rate limit.
    Verdict::Final
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Sends with `send` until the answer is final, following the module's rules. Returns the
/// final answer (any status the rules do not retry); errors for exhausted retries,
/// unknown outcomes and unfixable failures.
pub async fn run<F, Fut>(
    policy: &RetryPolicy,
    stats: &ApiStats,
    safety: Safety,
    what: &str,
    mut send: F,
) -> Result<RawResponse, ForgeError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<RawResponse, SendFailure>>,
{
    let mut waited = Duration::ZERO;
    let mut attempt = 1u32;
    loop {
        let result = send().await;
        let last = attempt >= policy.max_attempts.max(1);
        // What to wait before the next attempt, or the error to give up with.
        let next: Result<Duration, ForgeError> = match result {
            Ok(resp) => {
                stats.record_status(resp.status);
                match classify(resp.status, &resp.headers, unix_now()) {
                    Verdict::Final => return Ok(resp),
                    Verdict::RateLimited(wait) => {
                        stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                        let wait = wait.unwrap_or_else(|| policy.backoff(attempt));
                        if last || waited + wait > policy.max_total_wait {
                            Err(ForgeError::RateLimited {
                                retry_after: Some(wait),
                                message: error_message(&resp.body),
                            })
                        } else {
                            Ok(wait)
                        }
                    }
                    Verdict::ServerError if safety == Safety::NotIdempotent => {
                        Err(ForgeError::OutcomeUnknown {
                            what: what.to_string(),
                            reason: format!("GitHub answered {}", resp.status),
                        })
                    }
                    Verdict::ServerError => {
                        let wait = policy.backoff(attempt);
                        if last || waited + wait > policy.max_total_wait {
                            Err(ForgeError::Server {
                                status: resp.status,
                                message: error_message(&resp.body),
                            })
                        } else {
                            Ok(wait)
                        }
                    }
                }
            }
            Err(failure) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                match failure {
                    SendFailure::Fatal(e) => Err(e),
                    SendFailure::Lost(reason) if safety == Safety::NotIdempotent => {
                        Err(ForgeError::OutcomeUnknown {
                            what: what.to_string(),
                            reason,
                        })
                    }
                    SendFailure::Lost(reason) | SendFailure::NotSent(reason) => {
                        let wait = policy.backoff(attempt);
                        if last || waited + wait > policy.max_total_wait {
                            Err(ForgeError::Transport(reason))
                        } else {
                            Ok(wait)
                        }
                    }
                }
            }
        };
        let wait = next?;
        tracing::warn!(
            call = what,
            attempt,
            wait_ms = wait.as_millis() as u64,
            "GitHub call failed; retrying"
        );
        tokio::time::sleep(wait).await;
        waited += wait;
        attempt += 1;
        stats.retries.fetch_add(1, Ordering::Relaxed);
    }
}

/// GitHub's `{"message": …}`, or the start of whatever else the body was.
pub(crate) fn error_message(body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        message: Option<String>,
    }
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(ErrorBody { message: Some(m) }) => m,
        _ => body.chars().take(200).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn rate_limits_are_told_apart_from_refusals() {
        let now = 1_000;
        assert_eq!(classify(200, &headers(&[]), now), Verdict::Final);
        assert_eq!(classify(404, &headers(&[]), now), Verdict::Final);
        assert_eq!(
            classify(403, &headers(&[]), now),
            Verdict::Final,
            "a bare 403 is a refusal"
        );
        assert_eq!(classify(502, &headers(&[]), now), Verdict::ServerError);
        assert_eq!(classify(429, &headers(&[]), now), Verdict::RateLimited(None));
        assert_eq!(
            classify(403, &headers(&[("retry-after", "7")]), now),
            Verdict::RateLimited(Some(Duration::from_secs(7)))
        );
        assert_eq!(
            classify(
                403,
                &headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1010")]),
                now
            ),
            Verdict::RateLimited(Some(Duration::from_secs(11)))
        );
        // A reset already past still waits a second rather than spinning.
        assert_eq!(
            classify(
                429,
                &headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "900")]),
                now
            ),
            Verdict::RateLimited(Some(Duration::from_secs(1)))
        );
        assert_eq!(
            classify(403, &headers(&[("x-ratelimit-remaining", "12")]), now),
            Verdict::Final
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(800),
            max_total_wait: Duration::from_secs(60),
        };
        for _ in 0..50 {
            let first = p.backoff(1);
            assert!(first >= Duration::from_millis(25) && first <= Duration::from_millis(100));
            let late = p.backoff(30);
            assert!(late >= Duration::from_millis(200) && late <= Duration::from_millis(800));
        }
    }

    fn ok(status: u16) -> Result<RawResponse, SendFailure> {
        Ok(RawResponse {
            status,
            headers: HeaderMap::new(),
            body: String::new(),
        })
    }

    fn quick() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            max_total_wait: Duration::from_secs(1),
        }
    }

    #[tokio::test]
    async fn idempotent_calls_retry_server_errors_until_the_budget_ends() {
        let stats = ApiStats::default();
        let mut answers = vec![ok(500), ok(503), ok(200)].into_iter();
        let r = run(&quick(), &stats, Safety::Idempotent, "get", || {
            std::future::ready(answers.next().unwrap())
        })
        .await
        .unwrap();
        assert_eq!(r.status, 200);
        let s = stats.snapshot();
        assert_eq!((s.status_5xx, s.status_2xx, s.retries), (2, 1, 2));

        let mut sends = 0;
        let err = run(&quick(), &stats, Safety::Idempotent, "get", || {
            sends += 1;
            std::future::ready(ok(500))
        })
        .await
        .unwrap_err();
        assert_eq!(sends, 3);
        assert!(matches!(err, ForgeError::Server { status: 500, .. }), "{err:?}");
    }

    #[tokio::test]
    async fn non_idempotent_calls_are_sent_once_on_server_errors_and_lost_connections() {
        let stats = ApiStats::default();
        for failure in [ok(500), Err(SendFailure::Lost("reset".into()))] {
            let mut once = Some(failure);
            let mut sends = 0;
            let err = run(&quick(), &stats, Safety::NotIdempotent, "create comment", || {
                sends += 1;
                std::future::ready(once.take().unwrap_or_else(|| ok(201)))
            })
            .await
            .unwrap_err();
            assert_eq!(sends, 1);
            assert!(matches!(err, ForgeError::OutcomeUnknown { .. }), "{err:?}");
        }
        // Nothing sent: repeating is safe even for a POST.
        let mut answers = vec![Err(SendFailure::NotSent("refused".into())), ok(201)].into_iter();
        let r = run(&quick(), &stats, Safety::NotIdempotent, "create", || {
            std::future::ready(answers.next().unwrap())
        })
        .await
        .unwrap();
        assert_eq!(r.status, 201);
    }

    #[tokio::test]
    async fn a_rate_limit_longer_than_the_budget_fails_without_sleeping() {
        let stats = ApiStats::default();
        let started = std::time::Instant::now();
        let err = run(&quick(), &stats, Safety::Idempotent, "get", || {
            std::future::ready(Ok(RawResponse {
                status: 403,
                headers: headers(&[("retry-after", "3600")]),
                body: r#"{"message":"secondary rate limit"}"#.into(),
            }))
        })
        .await
        .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1));
        match err {
            ForgeError::RateLimited { retry_after, message } => {
                assert_eq!(retry_after, Some(Duration::from_secs(3600)));
                assert_eq!(message, "secondary rate limit");
            }
            other => panic!("{other:?}"),
        }
    }
}
