//! Injected faults: error statuses N times then normal answers, rate-limit headers, delays,
//! and every request recorded for assertions.

use std::time::{Duration, Instant};

use crate::common::seeded;
use github_sim::{Fault, SimConfig};

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
    let first = client()
        .post(&url)
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 500);
    let err: serde_json::Value = first.json().await.unwrap();
    assert_eq!(err["message"], "Server Error");
    assert!(sim.comments("acme/frontend", pr).unwrap().is_empty());
    let second = client()
        .post(&url)
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
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
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["message"], "Not Found");
    assert!(
        body["documentation_url"]
            .as_str()
            .unwrap()
            .starts_with("https://docs.github.com")
    );
}
