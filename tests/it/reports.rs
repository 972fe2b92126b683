//! The controllers' report routes as Flux and Argo CD see them: signed or tokened reports in,
//! stored once, clear refusals that store nothing, and routes that are off until configured.

use auger::webhook::{Algorithm, sign_as};

use crate::support::Setup;
use crate::support::webhooks::report_fixture;

const FLUX_TOKEN: &str = "flux-hmac-token";
const ARGO_TOKEN: &str = "argo-bearer-token";

const FLUX_FIXTURES: [&str; 4] = [
    "kustomization-succeeded.json",
    "kustomization-failed.json",
    "helmrelease-upgrade-succeeded.json",
    "helmrelease-failed.json",
];
const ARGO_FIXTURES: [&str; 3] = ["synced-healthy.json", "degraded.json", "sync-failed.json"];

fn configured() -> Setup {
    Setup::new(
        &[],
        "[verify]\nflux_secret_env = \"AUGER_FLUX_SECRET\"\nargocd_token_env = \"AUGER_ARGOCD_TOKEN\"\n",
    )
}

fn start(setup: &Setup) -> crate::support::Server {
    // The old secret first, the current one second: rotation accepts both.
    setup.start_with_env(&[
        ("AUGER_FLUX_SECRET", &format!("retired-token,{FLUX_TOKEN}")),
        ("AUGER_ARGOCD_TOKEN", ARGO_TOKEN),
    ])
}

fn is_json_error(v: &serde_json::Value) -> bool {
    v["error"].as_str().is_some_and(|e| !e.is_empty())
}

#[test]
fn forged_unsigned_or_malformed_flux_reports_are_refused_and_store_nothing() {
    let setup = configured();
    let server = start(&setup);
    let body = report_fixture("flux", "kustomization-succeeded.json");
    let forged = sign_as(Algorithm::Sha256, "not-the-token", &body);
    let good = sign_as(Algorithm::Sha256, FLUX_TOKEN, &body);
    let hex = good.strip_prefix("sha256=").unwrap().to_owned();
    let sha1_sized = format!("sha1={}", &hex[..40]);
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<u8>);
    let cases: Vec<Case> = vec![
        ("forged", vec![("X-Signature", &forged)], body.clone()),
        ("missing header", vec![], body.clone()),
        (
            "GitHub's header",
            vec![("X-Hub-Signature-256", &good)],
            body.clone(),
        ),
        ("sha1 prefix", vec![("X-Signature", &sha1_sized)], body.clone()),
        ("no prefix", vec![("X-Signature", &hex)], body.clone()),
        (
            "tampered body",
            vec![("X-Signature", &good)],
            body[..body.len() - 2].to_vec(),
        ),
    ];
    for (name, headers, body) in cases {
        let (code, json) = server.post_report("/webhooks/flux", &headers, &body);
        assert_eq!(code, 401, "{name}: {json}");
        assert!(is_json_error(&json), "{name}: {json}");
    }
    assert_eq!(
        server.metric("auger_reports_total{controller=\"flux\",outcome=\"unauthorized\"}"),
        6
    );

    // Signed, but not a Flux event.
    let malformed = b"{\"involvedObject\": {\"name\": \"apps\"}, oops".to_vec();
    let sig = sign_as(Algorithm::Sha256, FLUX_TOKEN, &malformed);
    let (code, json) = server.post_report("/webhooks/flux", &[("X-Signature", &sig)], &malformed);
    assert_eq!(code, 400, "{json}");
    assert!(is_json_error(&json), "{json}");
    let mut nameless: serde_json::Value = serde_json::from_slice(&body).unwrap();
    nameless["involvedObject"].as_object_mut().unwrap().remove("name");
    let nameless = serde_json::to_vec(&nameless).unwrap();
    let sig = sign_as(Algorithm::Sha256, FLUX_TOKEN, &nameless);
    let (code, json) = server.post_report("/webhooks/flux", &[("X-Signature", &sig)], &nameless);
    assert_eq!(code, 400, "{json}");
    assert!(
        json["error"].as_str().unwrap().contains("involvedObject.name"),
        "the error names the field: {json}"
    );

    assert_eq!(
        server.metric("auger_inbox_appended_total"),
        0,
        "nothing reached the inbox"
    );
}

#[test]
fn signed_flux_reports_are_accepted_and_a_redelivery_is_stored_once() {
    let setup = configured();
    let server = start(&setup);
    for (i, name) in FLUX_FIXTURES.iter().enumerate() {
        let body = report_fixture("flux", name);
        // Flux signs with sha256 today and may change its default; the retired secret is
        // still accepted during a rotation.
        let (algorithm, token) = match i {
            0 => (Algorithm::Sha256, FLUX_TOKEN),
            1 => (Algorithm::Sha512, FLUX_TOKEN),
            2 => (Algorithm::Sha384, "retired-token"),
            _ => (Algorithm::Sha224, FLUX_TOKEN),
        };
        let sig = sign_as(algorithm, token, &body);
        let (code, json) = server.post_report("/webhooks/flux", &[("X-Signature", &sig)], &body);
        assert_eq!(
            (code, &json),
            (202, &serde_json::json!({"accepted": true})),
            "{name}"
        );
    }
    assert_eq!(server.metric("auger_inbox_appended_total"), 4);

    // Flux retries a report it got no 2xx for: the same body, maybe signed with another hash.
    let body = report_fixture("flux", FLUX_FIXTURES[0]);
    for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
        let sig = sign_as(algorithm, FLUX_TOKEN, &body);
        let (code, json) = server.post_report("/webhooks/flux", &[("X-Signature", &sig)], &body);
        assert_eq!((code, &json), (202, &serde_json::json!({"accepted": true})));
    }
    assert_eq!(
        server.metric("auger_inbox_appended_total"),
        4,
        "one entry per report"
    );
    assert_eq!(
        server.metric("auger_reports_total{controller=\"flux\",outcome=\"duplicate\"}"),
        2
    );
    assert_eq!(
        server.metric("auger_reports_total{controller=\"flux\",outcome=\"queued\"}"),
        4
    );

    // The worker reads every stored report back; without [gitops] there is nothing to move.
    server.wait_idle();
    assert_eq!(
        server.metric("auger_deliveries_processed_total{work=\"report\",result=\"ignored\"}"),
        4
    );
    assert_eq!(
        server.metric("auger_deliveries_processed_total{work=\"unreadable\""),
        0
    );
}

#[test]
fn argocd_reports_need_the_bearer_token() {
    let setup = configured();
    let server = start(&setup);
    let body = report_fixture("argocd", "synced-healthy.json");
    let wrong = format!("Bearer {ARGO_TOKEN}x");
    let basic = format!("Basic {ARGO_TOKEN}");
    for (name, headers) in [
        ("wrong token", vec![("Authorization", wrong.as_str())]),
        ("no token", vec![]),
        ("not bearer", vec![("Authorization", basic.as_str())]),
    ] {
        let (code, json) = server.post_report("/webhooks/argocd", &headers, &body);
        assert_eq!(code, 401, "{name}: {json}");
        assert!(is_json_error(&json), "{name}: {json}");
    }
    // The Flux secret is not an Argo CD token, nor the other way round.
    let flux_bearer = format!("Bearer {FLUX_TOKEN}");
    let (code, _) = server.post_report("/webhooks/argocd", &[("Authorization", &flux_bearer)], &body);
    assert_eq!(code, 401);
    assert_eq!(server.metric("auger_inbox_appended_total"), 0);

    let bearer = format!("Bearer {ARGO_TOKEN}");
    for name in ARGO_FIXTURES {
        let body = report_fixture("argocd", name);
        let (code, json) = server.post_report("/webhooks/argocd", &[("Authorization", &bearer)], &body);
        assert_eq!(
            (code, &json),
            (202, &serde_json::json!({"accepted": true})),
            "{name}"
        );
    }
    let (code, json) = server.post_report(
        "/webhooks/argocd",
        &[("Authorization", &bearer)],
        b"{\"sync\": \"Synced\"}",
    );
    assert_eq!(code, 400, "{json}");
    assert!(json["error"].as_str().unwrap().contains("app"), "{json}");
    assert_eq!(server.metric("auger_inbox_appended_total"), 3);
    server.wait_idle();
    assert_eq!(
        server.metric("auger_deliveries_processed_total{work=\"report\",result=\"ignored\"}"),
        3
    );
}

#[test]
fn report_routes_are_off_until_configured() {
    // No [verify] at all.
    let setup = Setup::new(&[], "");
    let server = setup.start_with_env(&[
        ("AUGER_FLUX_SECRET", FLUX_TOKEN),
        ("AUGER_ARGOCD_TOKEN", ARGO_TOKEN),
    ]);
    let body = report_fixture("flux", "kustomization-succeeded.json");
    let sig = sign_as(Algorithm::Sha256, FLUX_TOKEN, &body);
    let (code, json) = server.post_report("/webhooks/flux", &[("X-Signature", &sig)], &body);
    assert_eq!(code, 404, "{json}");
    assert!(
        json["error"].as_str().unwrap().contains("flux_secret_env"),
        "the error says what to set: {json}"
    );
    let bearer = format!("Bearer {ARGO_TOKEN}");
    let argo = report_fixture("argocd", "synced-healthy.json");
    let (code, json) = server.post_report("/webhooks/argocd", &[("Authorization", &bearer)], &argo);
    assert_eq!(code, 404, "{json}");
    assert!(
        json["error"].as_str().unwrap().contains("argocd_token_env"),
        "{json}"
    );
    drop(server);

    // Named in [verify], but the variables are not set: still off, and the server starts.
    let setup = configured();
    let server = setup.start();
    let (code, json) = server.post_report("/webhooks/flux", &[("X-Signature", &sig)], &body);
    assert_eq!(code, 404, "{json}");
    let (code, json) = server.post_report("/webhooks/argocd", &[("Authorization", &bearer)], &argo);
    assert_eq!(code, 404, "{json}");
    // Reports are POSTed; the routes exist.
    let (code, text) = server.get("/webhooks/flux");
    assert_eq!(code, 405, "{text}");
    assert_eq!(server.metric("auger_inbox_appended_total"), 0);
}
