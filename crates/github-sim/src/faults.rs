//! Fault injection: per route, answer the next N requests (counted rules) or a seeded random
//! share of them (rate rules) with an error status, a delay, or an error after the effect.

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
    /// Handle the request normally (its effect happens, its webhooks are sent), then answer
    /// with this status and GitHub's error body instead: a proxy timing out in front of GitHub.
    AfterEffect { status: u16, message: String },
}

/// The message GitHub's error body carries for a plain error status.
fn status_message(status: u16) -> &'static str {
    match status {
        500 => "Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        404 => "Not Found",
        _ => "Error",
    }
}

impl Fault {
    /// A plain error status (500, 502, 503, …) with GitHub's error body.
    pub fn status(status: u16) -> Fault {
        Fault::Status {
            status,
            headers: Vec::new(),
            message: status_message(status).to_string(),
        }
    }

    /// The request takes effect, then the client gets `status` (502, 504, …) with GitHub's
    /// error body, so it cannot tell whether anything happened.
    pub fn after_effect(status: u16) -> Fault {
        Fault::AfterEffect {
            status,
            message: status_message(status).to_string(),
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

/// An armed counted fault: method (`None` = any), path pattern and how many requests remain.
#[derive(Debug, Clone)]
pub struct FaultRule {
    pub method: Option<String>,
    pub pattern: String,
    pub remaining: usize,
    pub fault: Fault,
}

/// An armed rate fault: each matching request gets `fault` with `probability`, drawn from its
/// own seeded generator so a run with the same seed and request order faults the same requests.
#[derive(Debug, Clone)]
pub struct RateRule {
    pub method: Option<String>,
    pub pattern: String,
    pub probability: f64,
    pub fault: Fault,
    rng: SplitMix64,
}

impl RateRule {
    pub fn new(
        method: Option<String>,
        pattern: String,
        probability: f64,
        fault: Fault,
        seed: u64,
    ) -> RateRule {
        RateRule {
            method,
            pattern,
            probability,
            fault,
            rng: SplitMix64::new(seed),
        }
    }
}

/// SplitMix64: a tiny, well-mixed 64-bit generator; plenty for deciding which requests fail,
/// and deterministic per seed without pulling a crate into the simulator.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`: the top 53 bits fill a double's mantissa exactly.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn rule_matches(method: Option<&str>, pattern: &str, req_method: &str, path: &str) -> bool {
    method.is_none_or(|m| m.eq_ignore_ascii_case(req_method)) && path_matches(pattern, path)
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

/// Every armed rule plus how many faults were served since the simulator started.
#[derive(Debug, Default)]
pub struct Faults {
    counted: Vec<FaultRule>,
    rates: Vec<RateRule>,
    served: usize,
}

impl Faults {
    pub fn arm(&mut self, rule: FaultRule) {
        self.counted.push(rule);
    }

    /// Arms a rate rule; one per method and pattern, so re-arming replaces the old rule
    /// (and restarts its generator from the new seed).
    pub fn arm_rate(&mut self, rule: RateRule) {
        match self
            .rates
            .iter_mut()
            .find(|r| r.method == rule.method && r.pattern == rule.pattern)
        {
            Some(old) => *old = rule,
            None => self.rates.push(rule),
        }
    }

    /// Disarms every rule; the served count stays, so a test can still assert on it.
    pub fn clear(&mut self) {
        self.counted.clear();
        self.rates.clear();
    }

    pub fn served(&self) -> usize {
        self.served
    }

    /// The fault for this request, if any: the first counted rule that matches (one use of
    /// it), else the first matching rate rule in arming order, if its draw hits.
    pub fn take(&mut self, method: &str, path: &str) -> Option<Fault> {
        let fault = self
            .take_counted(method, path)
            .or_else(|| self.draw_rate(method, path))?;
        self.served += 1;
        Some(fault)
    }

    fn take_counted(&mut self, method: &str, path: &str) -> Option<Fault> {
        let idx = self
            .counted
            .iter()
            .position(|r| r.remaining > 0 && rule_matches(r.method.as_deref(), &r.pattern, method, path))?;
        let rule = &mut self.counted[idx];
        rule.remaining -= 1;
        let fault = rule.fault.clone();
        if rule.remaining == 0 {
            self.counted.remove(idx);
        }
        Some(fault)
    }

    fn draw_rate(&mut self, method: &str, path: &str) -> Option<Fault> {
        let rule = self
            .rates
            .iter_mut()
            .find(|r| rule_matches(r.method.as_deref(), &r.pattern, method, path))?;
        (rule.rng.next_f64() < rule.probability).then(|| rule.fault.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(method: &str, pattern: &str, times: usize, fault: Fault) -> FaultRule {
        FaultRule {
            method: Some(method.into()),
            pattern: pattern.into(),
            remaining: times,
            fault,
        }
    }

    fn rate(method: Option<&str>, pattern: &str, p: f64, fault: Fault, seed: u64) -> RateRule {
        RateRule::new(method.map(str::to_string), pattern.into(), p, fault, seed)
    }

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
        let mut faults = Faults::default();
        faults.arm(counted("GET", "/user", 2, Fault::status(500)));
        assert!(faults.take("POST", "/user").is_none());
        assert!(faults.take("GET", "/user").is_some());
        assert!(faults.take("get", "/user").is_some());
        assert!(faults.take("GET", "/user").is_none());
        assert_eq!(faults.served(), 2);
    }

    #[test]
    fn the_generator_is_deterministic_per_seed() {
        let draw = |seed| {
            let mut g = SplitMix64::new(seed);
            (0..64).map(|_| g.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(draw(42), draw(42));
        assert_ne!(draw(42), draw(43));
        // The first SplitMix64 output for seed 0, as published with the algorithm.
        assert_eq!(SplitMix64::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
        let mut g = SplitMix64::new(7);
        let xs: Vec<f64> = (0..10_000).map(|_| g.next_f64()).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        let below_half = xs.iter().filter(|x| **x < 0.5).count();
        assert!(
            (4_800..5_200).contains(&below_half),
            "{below_half} of 10000 below 0.5"
        );
    }

    #[test]
    fn a_rate_rule_faults_a_seeded_share_of_matching_requests_only() {
        let run = |seed| {
            let mut faults = Faults::default();
            faults.arm_rate(rate(
                Some("POST"),
                "/repos/*/*/pulls",
                0.2,
                Fault::status(502),
                seed,
            ));
            let hits: Vec<bool> = (0..1_000)
                .map(|_| faults.take("POST", "/repos/a/b/pulls").is_some())
                .collect();
            (hits, faults)
        };
        let (first, mut faults) = run(9);
        let (again, _) = run(9);
        assert_eq!(first, again, "same seed, same requests faulted");
        let n = first.iter().filter(|h| **h).count();
        assert!((150..250).contains(&n), "{n} of 1000 at p=0.2");
        assert_eq!(faults.served(), n);
        // Other methods and paths never draw.
        for _ in 0..200 {
            assert!(faults.take("GET", "/repos/a/b/pulls").is_none());
            assert!(faults.take("POST", "/repos/a/b/pulls/1/merge").is_none());
        }
        assert_eq!(faults.served(), n);
    }

    #[test]
    fn probabilities_zero_and_one_are_exact() {
        let mut faults = Faults::default();
        faults.arm_rate(rate(None, "/never", 0.0, Fault::status(500), 1));
        faults.arm_rate(rate(None, "/always", 1.0, Fault::after_effect(502), 1));
        for _ in 0..500 {
            assert!(faults.take("GET", "/never").is_none());
            assert_eq!(faults.take("PUT", "/always"), Some(Fault::after_effect(502)));
        }
    }

    #[test]
    fn counted_rules_take_precedence_and_rate_rules_rearm_per_pattern() {
        let mut faults = Faults::default();
        faults.arm_rate(rate(None, "/repos/**", 1.0, Fault::status(500), 3));
        faults.arm(counted("GET", "/repos/a/b", 1, Fault::status(404)));
        assert_eq!(faults.take("GET", "/repos/a/b"), Some(Fault::status(404)));
        assert_eq!(faults.take("GET", "/repos/a/b"), Some(Fault::status(500)));
        // Re-arming the same pattern replaces the rule rather than adding a second one.
        faults.arm_rate(rate(None, "/repos/**", 0.0, Fault::status(500), 3));
        assert!(faults.take("GET", "/repos/a/b").is_none());
        // A different pattern is a second rule; the first armed that matches decides.
        faults.arm_rate(rate(None, "/repos/*/*/statuses/*", 1.0, Fault::status(503), 4));
        assert!(faults.take("POST", "/repos/a/b/statuses/abc").is_none());
        assert!(faults.take("POST", "/other/x").is_none());
        faults.clear();
        faults.arm_rate(rate(None, "/repos/*/*/statuses/*", 1.0, Fault::status(503), 4));
        assert_eq!(
            faults.take("POST", "/repos/a/b/statuses/abc"),
            Some(Fault::status(503))
        );
        assert_eq!(faults.served(), 3, "clearing keeps the count");
        faults.clear();
        assert!(faults.take("POST", "/repos/a/b/statuses/abc").is_none());
    }
}
