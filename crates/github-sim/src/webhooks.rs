//! Outgoing webhook deliveries: signing, recording each attempt (its status code, time and
//! duration, as the App's deliveries API shows them), an in-order delivery worker, redelivery.
//!
//! State changes enqueue deliveries and return at once; one worker thread posts them in order
//! (GitHub gives no ordering guarantee, but a deterministic order makes tests reproducible).
//! `wait_idle` blocks until the queue is drained, which is how tests stay deterministic.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

/// Attempt ids start here, so they look like GitHub's (beyond 32 bits).
const FIRST_DELIVERY_ID: u64 = 90_000_000_000;

/// How much of a receiver's answer an attempt keeps.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// `sha256=` + hex HMAC-SHA256 of `body` keyed with `secret`: the `X-Hub-Signature-256` value.
pub fn sign(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// One webhook delivery attempt, as recorded by the simulator.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    /// The `X-GitHub-Delivery` GUID (`guid` in the deliveries API); a redelivery reuses it.
    pub id: String,
    /// This attempt's own id in the deliveries API (`GET /app/hook/deliveries`): every attempt,
    /// each redelivery included, has a new one.
    pub delivery_id: u64,
    /// The `X-GitHub-Event` name (`push`, `pull_request`, …).
    pub event: String,
    /// `payload["action"]` when present.
    pub action: Option<String>,
    pub payload: serde_json::Value,
    /// Exact body bytes that were (or will be) signed and sent.
    #[serde(skip)]
    pub body: Vec<u8>,
    pub redelivery: bool,
    /// Receiver's HTTP status; `None` while pending, when no URL is set, or on transport error.
    pub status: Option<u16>,
    pub error: Option<String>,
    /// Signature header that was sent.
    pub signature: Option<String>,
    pub delivered: bool,
    /// When the attempt was made; `None` until it was.
    pub delivered_at: Option<DateTime<Utc>>,
    /// Seconds the attempt took.
    pub duration: f64,
    /// The receiver's answer body, as far as it was read.
    pub response: Option<String>,
    /// `payload.installation.id` and `payload.repository.id`, as the deliveries API lists them.
    pub installation_id: Option<u64>,
    pub repository_id: Option<u64>,
}

impl Delivery {
    /// The receiver answered 2xx.
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// GitHub's `status` text for the attempt.
    pub fn status_text(&self) -> String {
        match self.status {
            Some(s) if (200..300).contains(&s) => "OK".into(),
            Some(s) => format!("Invalid HTTP Response: {s}"),
            None => "failed to connect to host".into(),
        }
    }
}

#[derive(Debug, Default)]
struct HookState {
    url: Option<String>,
    secret: String,
    /// Sent as `X-GitHub-Hook-Installation-Target-ID` (the app's id for app webhooks).
    app_id: u64,
    deliveries: Vec<Delivery>,
    /// The last attempt id handed out.
    last_delivery_id: u64,
    queue: VecDeque<usize>,
    in_flight: usize,
    shutdown: bool,
}

/// The delivery book and its worker.
#[derive(Debug, Default)]
pub struct Hooks {
    state: Mutex<HookState>,
    changed: Condvar,
}

impl Hooks {
    fn lock(&self) -> MutexGuard<'_, HookState> {
        // A poisoned lock only means a panicking test thread; the data is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_app_id(&self, app_id: u64) {
        self.lock().app_id = app_id;
    }

    /// Where deliveries go.
    pub fn url(&self) -> Option<String> {
        self.lock().url.clone()
    }

    pub fn configure(&self, url: Option<String>, secret: String) {
        let mut s = self.lock();
        s.url = url;
        s.secret = secret;
    }

    /// Records a new delivery and queues it for sending (if a URL is configured).
    pub fn enqueue(&self, event: &str, payload: serde_json::Value) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let body = serde_json::to_vec(&payload).unwrap_or_default();
        let action = payload.get("action").and_then(|a| a.as_str()).map(str::to_string);
        let id_of = |key: &str| {
            payload
                .get(key)
                .and_then(|o| o.get("id"))
                .and_then(|i| i.as_u64())
        };
        let (installation_id, repository_id) = (id_of("installation"), id_of("repository"));
        self.push(Delivery {
            id: id.clone(),
            delivery_id: 0,
            event: event.to_string(),
            action,
            payload,
            body,
            redelivery: false,
            status: None,
            error: None,
            signature: None,
            delivered: false,
            delivered_at: None,
            duration: 0.0,
            response: None,
            installation_id,
            repository_id,
        });
        id
    }

    /// Records `d` as a new attempt with its own id and queues it; returns that id.
    fn push(&self, mut d: Delivery) -> u64 {
        let mut s = self.lock();
        s.last_delivery_id += 1;
        d.delivery_id = FIRST_DELIVERY_ID + s.last_delivery_id;
        let delivery_id = d.delivery_id;
        let idx = s.deliveries.len();
        s.deliveries.push(d);
        if s.url.is_some() {
            s.queue.push_back(idx);
            self.changed.notify_all();
        }
        delivery_id
    }

    /// A new attempt of `original`: same GUID and body, marked as a redelivery.
    fn again(&self, mut d: Delivery) -> u64 {
        d.redelivery = true;
        d.status = None;
        d.error = None;
        d.signature = None;
        d.delivered = false;
        d.delivered_at = None;
        d.duration = 0.0;
        d.response = None;
        self.push(d)
    }

    /// Sends the newest delivery with this GUID again (same GUID, same body).
    pub fn redeliver(&self, id: &str) -> bool {
        let original = {
            let s = self.lock();
            s.deliveries.iter().rev().find(|d| d.id == id).cloned()
        };
        original.map(|d| self.again(d)).is_some()
    }

    /// Sends the attempt `delivery_id` again (`POST /app/hook/deliveries/{id}/attempts`);
    /// the new attempt's id, or `None` when there is no such attempt.
    pub fn redeliver_attempt(&self, delivery_id: u64) -> Option<u64> {
        let original = {
            let s = self.lock();
            s.deliveries
                .iter()
                .find(|d| d.delivery_id == delivery_id && d.delivered)
                .cloned()
        };
        original.map(|d| self.again(d))
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.lock().deliveries.clone()
    }

    /// The attempts made so far (what the deliveries API lists), newest first.
    pub fn attempts(&self) -> Vec<Delivery> {
        let s = self.lock();
        let mut made: Vec<Delivery> = s.deliveries.iter().filter(|d| d.delivered).cloned().collect();
        made.sort_by_key(|d| std::cmp::Reverse(d.delivery_id));
        made
    }

    /// Blocks until nothing is queued or in flight; `false` on timeout.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut s = self.lock();
        while !s.queue.is_empty() || s.in_flight > 0 {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            s = match self.changed.wait_timeout(s, deadline - now) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
        true
    }

    pub fn shutdown(&self) {
        self.lock().shutdown = true;
        self.changed.notify_all();
    }

    /// Starts the worker thread that posts queued deliveries.
    pub fn spawn_worker(self: &Arc<Self>) -> anyhow::Result<()> {
        let hooks = Arc::clone(self);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        std::thread::Builder::new()
            .name("github-sim-hooks".into())
            .spawn(move || hooks.run(rt, client))?;
        Ok(())
    }

    fn run(&self, rt: tokio::runtime::Runtime, client: reqwest::Client) {
        loop {
            let (idx, url, secret, app_id, d) = {
                let mut s = self.lock();
                let idx = loop {
                    if s.shutdown {
                        return;
                    }
                    if let Some(idx) = s.queue.pop_front() {
                        break idx;
                    }
                    s = match self.changed.wait(s) {
                        Ok(g) => g,
                        Err(e) => e.into_inner(),
                    };
                };
                let Some(d) = s.deliveries.get(idx).cloned() else {
                    continue;
                };
                s.in_flight += 1;
                (idx, s.url.clone(), s.secret.clone(), s.app_id, d)
            };
            let signature = sign(&secret, &d.body);
            let delivered_at = Utc::now();
            let started = Instant::now();
            let result = match url {
                Some(url) => rt.block_on(async {
                    let response = client
                        .post(&url)
                        .header("Content-Type", "application/json")
                        .header("User-Agent", "GitHub-Hookshot/github-sim")
                        .header("X-GitHub-Event", &d.event)
                        .header("X-GitHub-Delivery", &d.id)
                        .header("X-GitHub-Hook-ID", "1")
                        .header("X-GitHub-Hook-Installation-Target-Type", "integration")
                        .header("X-GitHub-Hook-Installation-Target-ID", app_id.to_string())
                        .header("X-Hub-Signature-256", &signature)
                        .body(d.body.clone())
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                    let status = response.status().as_u16();
                    let mut text = response.text().await.unwrap_or_default();
                    text.truncate(text.floor_char_boundary(MAX_RESPONSE_BYTES));
                    Ok((status, text))
                }),
                None => Err("no webhook URL configured".to_string()),
            };
            let duration = started.elapsed().as_secs_f64();
            match &result {
                Ok((status, _)) => {
                    tracing::debug!(event = %d.event, id = %d.id, status, "webhook delivered")
                }
                Err(e) => {
                    tracing::warn!(event = %d.event, id = %d.id, error = %e, "webhook delivery failed")
                }
            }
            let mut s = self.lock();
            s.in_flight -= 1;
            if let Some(rec) = s.deliveries.get_mut(idx) {
                rec.delivered = true;
                rec.signature = Some(signature);
                rec.delivered_at = Some(delivered_at);
                rec.duration = duration;
                match result {
                    Ok((status, text)) => {
                        rec.status = Some(status);
                        rec.response = Some(text);
                    }
                    Err(e) => rec.error = Some(e),
                }
            }
            self.changed.notify_all();
        }
    }
}
