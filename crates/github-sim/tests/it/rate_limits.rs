//! GitHub's rate limits, modeled on request: the primary hourly budget with its
//! `x-ratelimit-*` headers and 403 until the reset, and the secondary limit on content creation
//! with `retry-after`. Off by default.

use std::time::Duration;

use github_sim::{GithubSim, SimConfig};
use serde_json::{Value, json};

use crate::common::seeded;

/// `method path` as `token`: status, the headers asked for, JSON answer.
async fn call(
    sim: &GithubSim,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", sim.url()))
        .bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

fn header(headers: &reqwest::header::HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_primary_limit_counts_down_refuses_past_the_limit_and_ends_at_the_reset() {
    let sim = seeded(SimConfig::default());
    let alice = sim.create_token("alice").unwrap();
    let bob = sim.create_token("bob").unwrap();
    sim.set_rate_limit(3);

    let before = chrono::Utc::now().timestamp();
    let mut reset = String::new();
    for used in 1..=3 {
        let (status, headers, _) = call(&sim, &alice, "GET", "/repos/acme/frontend", None).await;
        assert_eq!(status, 200);
        assert_eq!(header(&headers, "x-ratelimit-limit"), "3");
        assert_eq!(header(&headers, "x-ratelimit-used"), used.to_string());
        assert_eq!(header(&headers, "x-ratelimit-remaining"), (3 - used).to_string());
        assert_eq!(header(&headers, "x-ratelimit-resource"), "core");
        reset = header(&headers, "x-ratelimit-reset");
    }
    let reset_at: i64 = reset.parse().unwrap();
    assert!(
        (before + 3590..=before + 3610).contains(&reset_at),
        "an hour from the first request: {reset_at}"
    );

    // Past the limit: GitHub's 403, remaining 0, the same reset; `GET /rate_limit` is free.
    let alice_id = sim.create_user("alice").unwrap();
    for _ in 0..2 {
        let (status, headers, body) = call(&sim, &alice, "GET", "/repos/acme/frontend", None).await;
        assert_eq!(status, 403, "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("API rate limit exceeded for user ID {alice_id}.")),
            "{message}"
        );
        assert!(
            message.contains(&header(&headers, "x-github-request-id")),
            "{message}"
        );
        assert_eq!(header(&headers, "x-ratelimit-remaining"), "0");
        assert_eq!(header(&headers, "x-ratelimit-reset"), reset);
    }
    let (status, _, limits) = call(&sim, &alice, "GET", "/rate_limit", None).await;
    assert_eq!(status, 200);
    assert_eq!(limits["resources"]["core"]["remaining"], 0);
    assert_eq!(limits["rate"]["limit"], 3);
    assert_eq!(limits["rate"]["reset"], json!(reset_at));

    // Each principal has its own budget.
    let (status, headers, _) = call(&sim, &bob, "GET", "/repos/acme/frontend", None).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "x-ratelimit-remaining"), "2");

    // Just before the reset still refused; at it, a fresh window.
    sim.advance_rate_limit_clock(Duration::from_secs(3540));
    assert_eq!(
        call(&sim, &alice, "GET", "/repos/acme/frontend", None).await.0,
        403
    );
    sim.advance_rate_limit_clock(Duration::from_secs(61));
    let (status, headers, _) = call(&sim, &alice, "GET", "/repos/acme/frontend", None).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "x-ratelimit-remaining"), "2");
    assert!(header(&headers, "x-ratelimit-reset").parse::<i64>().unwrap() > reset_at);

    // Off again: GitHub's usual generous headers, no refusals.
    sim.clear_rate_limits();
    for _ in 0..5 {
        let (status, headers, _) = call(&sim, &alice, "GET", "/repos/acme/frontend", None).await;
        assert_eq!(status, 200);
        assert_eq!(header(&headers, "x-ratelimit-limit"), "5000");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secondary_limit_refuses_content_creation_with_retry_after_until_it_passes() {
    let sim = seeded(SimConfig::default());
    let alice = sim.create_token("alice").unwrap();
    let sha = sim.branch_sha("acme/frontend", "main").unwrap();
    let status_path = format!("/repos/acme/frontend/statuses/{sha}");
    let status_body = |n: u32| Some(json!({"state": "success", "context": format!("ci/{n}")}));
    sim.set_secondary_limit(2);

    for n in 0..2 {
        assert_eq!(
            call(&sim, &alice, "POST", &status_path, status_body(n)).await.0,
            201
        );
    }
    let (status, headers, body) = call(&sim, &alice, "POST", &status_path, status_body(2)).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"].as_str().unwrap().starts_with(
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
        ),
        "{body}"
    );
    let retry_after: u64 = header(&headers, "retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(
        sim.statuses("acme/frontend", &sha).unwrap().len(),
        2,
        "the refused status did not land"
    );

    // Reads are not content creation.
    assert_eq!(
        call(&sim, &alice, "GET", "/repos/acme/frontend", None).await.0,
        200
    );

    // A second short of `retry-after` still refused; after it, the write lands.
    sim.advance_rate_limit_clock(Duration::from_secs(retry_after.saturating_sub(2)));
    assert_eq!(
        call(&sim, &alice, "POST", &status_path, status_body(3)).await.0,
        403
    );
    sim.advance_rate_limit_clock(Duration::from_secs(2));
    assert_eq!(
        call(&sim, &alice, "POST", &status_path, status_body(4)).await.0,
        201
    );
    let contexts: Vec<String> = sim
        .statuses("acme/frontend", &sha)
        .unwrap()
        .into_iter()
        .map(|s| s.context)
        .collect();
    assert_eq!(contexts.len(), 3, "{contexts:?}");
    assert!(contexts.contains(&"ci/4".to_string()), "{contexts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_modeled_limit_nothing_is_refused() {
    let sim = seeded(SimConfig::default());
    let alice = sim.create_token("alice").unwrap();
    let sha = sim.branch_sha("acme/frontend", "main").unwrap();
    for n in 0..40 {
        let body = Some(json!({"state": "success", "context": format!("ci/{n}")}));
        let (status, headers, _) = call(
            &sim,
            &alice,
            "POST",
            &format!("/repos/acme/frontend/statuses/{sha}"),
            body,
        )
        .await;
        assert_eq!(status, 201);
        assert!(headers.get("retry-after").is_none());
    }
}
