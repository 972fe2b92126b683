//! The API's input is bounded: how many and how large an artifact's `vars` are, how large a
//! body is, and that it is JSON. Every refusal is a JSON `error` and writes nothing.

use crate::support::Setup;
use crate::support::server::{BEARER, Server};

const HELLO: (&str, &str, &str) = ("hello", "Codertocat/Hello-World", "\"status:default\"");
const SHA: &str = "abc0000000000000000000000000000000000001";

/// Posts `body` as it is, with `content_type`: the status and the JSON answer.
fn post_raw(server: &Server, content_type: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/artifacts", server.url))
        .bearer_auth(BEARER)
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .unwrap();
    let code = resp.status().as_u16();
    let text = resp.text().unwrap();
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"));
    (code, json)
}

fn nothing_recorded(server: &Server) {
    let (code, text) = server.get("/api/v1/artifacts?app=hello");
    assert_eq!((code, text.as_str()), (200, "[]"));
}

fn artifact_with_vars(vars: serde_json::Map<String, serde_json::Value>) -> serde_json::Value {
    serde_json::json!({"app": "hello", "sha": SHA, "vars": vars})
}

#[test]
fn ten_thousand_vars_are_refused_and_nothing_is_written() {
    let setup = Setup::new(&[HELLO], "");
    let server = setup.start();
    let vars = (0..10_000).map(|i| (format!("k{i}"), "v".into())).collect();
    let (code, json) = server.post("/api/v1/artifacts", Some(BEARER), &artifact_with_vars(vars));
    assert_eq!(code, 422, "{json}");
    assert_eq!(json["error"], "vars: 10000 keys, at most 64 are allowed");
    nothing_recorded(&server);
}

#[test]
fn a_var_value_over_a_kilobyte_is_refused() {
    let setup = Setup::new(&[HELLO], "");
    let server = setup.start();
    let vars = [("image".to_string(), "x".repeat(1025).into())]
        .into_iter()
        .collect();
    let (code, json) = server.post("/api/v1/artifacts", Some(BEARER), &artifact_with_vars(vars));
    assert_eq!(code, 422, "{json}");
    assert_eq!(json["error"], "vars.image: the value is longer than 1024 bytes");
    nothing_recorded(&server);
}

#[test]
fn sixty_four_short_vars_are_accepted() {
    let setup = Setup::new(&[HELLO], "");
    let server = setup.start();
    let vars = (0..64)
        .map(|i| (format!("k{i}"), "x".repeat(1024).into()))
        .collect();
    let (code, json) = server.post("/api/v1/artifacts", Some(BEARER), &artifact_with_vars(vars));
    assert_eq!(code, 201, "{json}");
}

#[test]
fn a_body_over_a_megabyte_gets_a_json_413() {
    let setup = Setup::new(&[HELLO], "");
    let server = setup.start();
    let (code, json) = post_raw(&server, "application/json", vec![b' '; 30 * 1024 * 1024]);
    assert_eq!(code, 413, "{json}");
    assert_eq!(json["error"], "body exceeds 1048576 bytes");
    nothing_recorded(&server);
}

#[test]
fn a_body_that_is_not_json_gets_a_json_415() {
    let setup = Setup::new(&[HELLO], "");
    let server = setup.start();
    let body = serde_json::to_vec(&serde_json::json!({"app": "hello", "sha": SHA})).unwrap();
    for content_type in ["text/plain", "application/x-www-form-urlencoded", ""] {
        let (code, json) = post_raw(&server, content_type, body.clone());
        assert_eq!(code, 415, "{content_type:?}: {json}");
        assert!(json["error"].as_str().unwrap().contains("must be JSON"), "{json}");
    }
    nothing_recorded(&server);
}

#[test]
fn a_json_type_with_parameters_or_a_json_suffix_is_json() {
    let setup = Setup::new(&[HELLO], "");
    let server = setup.start();
    let body = serde_json::to_vec(&serde_json::json!({"app": "hello", "sha": SHA})).unwrap();
    let (code, json) = post_raw(&server, "application/json; charset=utf-8", body.clone());
    assert_eq!(code, 201, "{json}");
    let (code, json) = post_raw(&server, "application/vnd.auger+json", body);
    assert_eq!(code, 200, "{json}");
}

#[test]
fn the_release_and_rollback_routes_refuse_a_body_that_is_not_json() {
    let setup = Setup::new(&[HELLO], "");
    let server = setup.start();
    for path in ["/api/v1/releases", "/api/v1/rollbacks"] {
        let resp = reqwest::blocking::Client::new()
            .post(format!("{}{path}", server.url))
            .bearer_auth(BEARER)
            .header("Content-Type", "text/plain")
            .body("{}")
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 415, "{path}");
        let json: serde_json::Value = resp.json().unwrap();
        assert!(json["error"].is_string(), "{path}: {json}");
    }
}

#[test]
fn a_method_a_route_does_not_take_gets_a_json_error() {
    let setup = Setup::new(&[HELLO], "");
    let server = setup.start();
    let client = reqwest::blocking::Client::new();
    let webhook = client
        .get(format!("{}/webhooks/github", server.url))
        .send()
        .unwrap();
    assert_eq!(webhook.status().as_u16(), 405);
    let json: serde_json::Value = webhook.json().unwrap();
    assert_eq!(json["error"], "webhooks are POSTed");
    let api = client
        .delete(format!("{}/api/v1/artifacts", server.url))
        .bearer_auth(BEARER)
        .send()
        .unwrap();
    assert!(api.status().is_client_error(), "{}", api.status());
    let json: serde_json::Value = api.json().unwrap();
    assert!(json["error"].is_string(), "{json}");
}
