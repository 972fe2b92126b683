//! GitHub's side of a delivery: the recorded payloads, the test secret's signature, the POST.

use std::path::Path;

use super::server::Server;

/// The webhook secret the server and the simulator share.
pub const SECRET: &str = "test-secret";

/// A real GitHub payload from `tests/fixtures/webhooks`.
pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/webhooks")
            .join(name),
    )
    .unwrap()
}

/// A status payload from the real fixture, for another commit and state.
pub fn status_payload(sha: &str, state: &str, branch: Option<&str>) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(&fixture("status.payload.json")).unwrap();
    v["sha"] = sha.into();
    v["commit"]["sha"] = sha.into();
    v["state"] = state.into();
    v["branches"] = match branch {
        Some(b) => {
            serde_json::json!([{ "name": b, "commit": { "sha": sha, "url": "" }, "protected": false }])
        }
        None => serde_json::json!([]),
    };
    serde_json::to_vec(&v).unwrap()
}

/// A controller report from `tests/fixtures/<controller>/<name>`.
pub fn report_fixture(controller: &str, name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(controller)
            .join(name),
    )
    .unwrap()
}

impl Server {
    /// POST `body` to `path` (`/webhooks/flux`, `/webhooks/argocd`) with exactly these headers,
    /// as a controller would: the status code and the JSON answer (null when not JSON).
    pub fn post_report(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, serde_json::Value) {
        let mut req = reqwest::blocking::Client::new()
            .post(format!("{}{path}", self.url))
            .header("Content-Type", "application/json")
            .body(body.to_vec());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or(serde_json::Value::Null))
    }

    /// POST a delivery signed with the test secret.
    pub fn deliver(&self, event: &str, id: &str, body: &[u8]) -> (u16, serde_json::Value) {
        let sig = auger::webhook::sign(SECRET, body);
        self.post_webhook(
            &[
                ("X-GitHub-Event", event),
                ("X-GitHub-Delivery", id),
                ("X-Hub-Signature-256", &sig),
            ],
            body,
        )
    }

    /// POST `body` to the webhook route with exactly these GitHub headers.
    pub fn post_webhook(&self, headers: &[(&str, &str)], body: &[u8]) -> (u16, serde_json::Value) {
        let client = reqwest::blocking::Client::new();
        let mut req = client
            .post(format!("{}/webhooks/github", self.url))
            .header("Content-Type", "application/json")
            .header("User-Agent", "GitHub-Hookshot/test")
            .body(body.to_vec());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or(serde_json::Value::Null))
    }

    /// Sends a signed status delivery with `Transfer-Encoding: chunked`, `piece` bytes per
    /// chunk, each flushed on its own, and returns the HTTP status code of the answer.
    pub fn deliver_chunked(&self, id: &str, body: &[u8], piece: usize) -> u16 {
        use std::io::{Read, Write};
        let addr = self.url.trim_start_matches("http://");
        let mut conn = std::net::TcpStream::connect(addr).unwrap();
        conn.set_nodelay(true).unwrap();
        let sig = auger::webhook::sign(SECRET, body);
        write!(
            conn,
            "POST /webhooks/github HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             X-GitHub-Event: status\r\nX-GitHub-Delivery: {id}\r\nX-Hub-Signature-256: {sig}\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        for chunk in body.chunks(piece) {
            // The server may answer 413 and close before the rest is sent.
            if write!(conn, "{:x}\r\n", chunk.len())
                .and_then(|()| conn.write_all(chunk))
                .and_then(|()| conn.write_all(b"\r\n"))
                .and_then(|()| conn.flush())
                .is_err()
            {
                break;
            }
        }
        let _ = conn.write_all(b"0\r\n\r\n");
        let mut answer = String::new();
        let _ = conn.read_to_string(&mut answer);
        answer
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {answer:?}"))
    }
}
