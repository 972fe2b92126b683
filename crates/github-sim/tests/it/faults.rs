//! Injected faults: error statuses N times then normal answers, seeded rate faults, errors
//! after the effect, rate-limit headers, delays, and every request recorded for assertions.

use std::time::{Duration, Instant};

use crate::common::seeded;
use github_sim::{Fault, GithubSim, SimConfig};

/// GitHub's error body: its message and a link into the REST docs.
async fn assert_github_error(resp: reqwest::Response, message: &str) {
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["message"], message);
    let docs = body["documentation_url"].as_str().unwrap();
    assert!(docs.starts_with("https://docs.github.com"), "{docs}");
}

/// `body` POSTed to `url` as the holder of `token`.
async fn post(url: &str, token: &str, body: &serde_json::Value) -> reqwest::Response {
    client()
        .post(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_injected_twice_is_seen_twice_then_normal_answers_resume() {
    let sim = seeded(SimConfig::default());
    let token = sim.create_token("alice").unwrap();
    sim.inject_fault("GET", "/repos/{owner}/{repo}", 2, Fault::status(503));
    let url = format!("{}/repos/acme/frontend", sim.url());
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let resp = client().get(&url).bearer_auth(&token).send().await.unwrap();
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(statuses, [503, 503, 200]);
    // Other routes were never affected.
    let pulls = client()
        .get(format!("{url}/pulls"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(pulls.status(), 200);
    let recorded: Vec<u16> = sim
        .requests()
        .iter()
        .filter(|r| r.path == "/repos/acme/frontend")
        .map(|r| r.status)
        .collect();
    assert_eq!(recorded, [503, 503, 200]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_on_post_leaves_state_untouched() {
    let sim = seeded(SimConfig::default());
    let token = sim.create_token("alice").unwrap();
    sim.push("acme/frontend", "f", &[("x", "x")], "x", "alice")
        .unwrap();
    let pr = sim.open_pr("acme/frontend", "f", "main", "X", "alice").unwrap();
    sim.inject_fault("POST", "/repos/*/*/issues/*/comments", 1, Fault::status(500));
    let url = format!("{}/repos/acme/frontend/issues/{pr}/comments", sim.url());
    let body = serde_json::json!({"body": "hello"});
    let first = post(&url, &token, &body).await;
    assert_eq!(first.status(), 500);
    let err: serde_json::Value = first.json().await.unwrap();
    assert_eq!(err["message"], "Server Error");
    assert!(sim.comments("acme/frontend", pr).unwrap().is_empty());
    let second = post(&url, &token, &body).await;
    assert_eq!(second.status(), 201);
    let recorded = sim
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "POST")
        .unwrap();
    assert_eq!(recorded.body, r#"{"body":"hello"}"#);
    assert_eq!(recorded.login.as_deref(), Some("alice"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_carry_retry_after_and_ratelimit_headers() {
    let sim = seeded(SimConfig::default());
    let token = sim.create_token("alice").unwrap();
    let url = format!("{}/user", sim.url());
    sim.inject_fault("GET", "/user", 1, Fault::retry_after(403, 7));
    sim.inject_fault("*", "/user", 1, Fault::retry_after(429, 3));
    sim.inject_fault("GET", "/user", 1, Fault::rate_limited(1_900_000_000));

    let secondary = client().get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(secondary.status(), 403);
    assert_eq!(secondary.headers()["retry-after"], "7");
    let too_many = client().get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(too_many.status(), 429);
    assert_eq!(too_many.headers()["retry-after"], "3");
    let primary = client().get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(primary.status(), 403);
    assert_eq!(primary.headers()["x-ratelimit-remaining"], "0");
    assert_eq!(primary.headers()["x-ratelimit-reset"], "1900000000");
    let normal = client().get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(normal.status(), 200);
    assert_eq!(
        normal.headers()["x-ratelimit-remaining"],
        "4999",
        "GitHub's headers on every answer"
    );
    let gh = crate::common::octocrab_for(&sim, &token);
    assert_eq!(gh.ratelimit().get().await.unwrap().rate.remaining, 4999);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delay_slows_the_answer_but_keeps_it() {
    let sim = seeded(SimConfig::default());
    let token = sim.create_token("alice").unwrap();
    sim.inject_fault("GET", "/repos/acme/**", 1, Fault::delay_ms(300));
    let start = Instant::now();
    let resp = client()
        .get(format!("{}/repos/acme/frontend/pulls", sim.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(start.elapsed() >= Duration::from_millis(300));
    sim.clear_faults();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_need_credentials_and_unknown_routes_are_404_with_githubs_body() {
    let sim = seeded(SimConfig::default());
    let anon = client()
        .get(format!("{}/repos/acme/frontend", sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
    let token = sim.create_token("alice").unwrap();
    let resp = client()
        .get(format!("{}/definitely/not/github", sim.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_github_error(resp, "Not Found").await;
}

/// Statuses of `n` sequential GETs of the repository under a p=0.5 rate rule with `seed`.
async fn statuses_under_rate_rule(seed: u64, n: usize) -> (Vec<u16>, usize) {
    let sim = seeded(SimConfig::default());
    let token = sim.create_token("alice").unwrap();
    sim.inject_fault_rate("GET", "/repos/{owner}/{repo}", 0.5, Fault::status(502), seed)
        .unwrap();
    let url = format!("{}/repos/acme/frontend", sim.url());
    let mut statuses = Vec::new();
    for _ in 0..n {
        let resp = client().get(&url).bearer_auth(&token).send().await.unwrap();
        let status = resp.status().as_u16();
        if status == 502 {
            let err: serde_json::Value = resp.json().await.unwrap();
            assert_eq!(err["message"], "Bad Gateway");
        }
        statuses.push(status);
    }
    // Other routes draw nothing.
    let user = client()
        .get(format!("{}/user", sim.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(user.status(), 200);
    let served = sim.faults_served();
    sim.clear_faults();
    for _ in 0..20 {
        let resp = client().get(&url).bearer_auth(&token).send().await.unwrap();
        assert_eq!(resp.status(), 200, "cleared rules fault nothing");
    }
    assert_eq!(sim.faults_served(), served, "the count survives clearing");
    (statuses, served)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_rule_faults_about_its_share_of_requests_the_same_way_per_seed() {
    let (statuses, served) = statuses_under_rate_rule(17, 200).await;
    let faulted = statuses.iter().filter(|s| **s == 502).count();
    assert!((60..=140).contains(&faulted), "{faulted} of 200 faulted at p=0.5");
    assert_eq!(faulted, served);
    assert_eq!(faulted + statuses.iter().filter(|s| **s == 200).count(), 200);
    let (again, _) = statuses_under_rate_rule(17, 200).await;
    assert_eq!(statuses, again, "same seed, same requests faulted");
    let (other, _) = statuses_under_rate_rule(18, 200).await;
    assert_ne!(statuses, other);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_probabilities_are_refused() {
    let sim = GithubSim::start(SimConfig::default()).unwrap();
    for p in [-0.1, 1.5, f64::NAN] {
        let err = sim
            .inject_fault_rate("*", "/user", p, Fault::status(500), 1)
            .unwrap_err();
        assert!(err.to_string().contains("between 0.0 and 1.0"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_after_effect_502_on_creating_a_pull_request_still_creates_it() {
    let sim = seeded(SimConfig::default());
    let token = sim.create_token("alice").unwrap();
    sim.push("acme/frontend", "feature", &[("a.txt", "a")], "a", "alice")
        .unwrap();
    sim.inject_fault("POST", "/repos/*/*/pulls", 1, Fault::after_effect(502));
    let url = format!("{}/repos/acme/frontend/pulls", sim.url());
    let body = serde_json::json!({"title": "Add a", "head": "feature", "base": "main"});
    let resp = post(&url, &token, &body).await;
    assert_eq!(resp.status(), 502);
    assert_github_error(resp, "Bad Gateway").await;
    assert_eq!(sim.faults_served(), 1);

    let pulls = sim.pulls("acme/frontend").unwrap();
    assert_eq!(pulls.len(), 1, "the pull request exists despite the 502");
    assert_eq!(pulls[0].title, "Add a");
    assert!(sim.wait_deliveries_async().await);
    let opened: Vec<_> = sim
        .deliveries_of("pull_request")
        .into_iter()
        .filter(|d| d.payload["action"] == "opened")
        .collect();
    assert_eq!(opened.len(), 1, "its webhook went out too");
    let recorded = sim
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "POST")
        .unwrap();
    assert_eq!(recorded.status, 502);
    assert_eq!(recorded.login.as_deref(), Some("alice"));

    // A client retrying blindly now meets GitHub's duplicate answer.
    let retry = post(&url, &token, &body).await;
    assert_eq!(retry.status(), 422);
    assert_eq!(sim.pulls("acme/frontend").unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_after_effect_rate_rule_posts_the_status_and_answers_504() {
    let sim = seeded(SimConfig::default());
    let token = sim.create_token("alice").unwrap();
    let sha = sim.branch_sha("acme/frontend", "main").unwrap();
    sim.inject_fault_rate("POST", "/repos/*/*/statuses/*", 1.0, Fault::after_effect(504), 5)
        .unwrap();
    let resp = client()
        .post(format!("{}/repos/acme/frontend/statuses/{sha}", sim.url()))
        .bearer_auth(&token)
        .json(&serde_json::json!({"state": "success", "context": "ci/build"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 504);
    let err: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(err["message"], "Gateway Timeout");
    let statuses = sim.statuses("acme/frontend", &sha).unwrap();
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0].state, "success");
    assert_eq!(sim.faults_served(), 1);
}
