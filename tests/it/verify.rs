//! Releases verified by the cluster (design §15), end to end: a running auger, the GitHub
//! simulator, and reports arriving the three ways — Flux's signed events, Argo CD's
//! notification with a bearer token, and a commit status on the gitops commit.

use std::time::Duration;

use auger::webhook::{Algorithm, sign_as};

use crate::support::cli::{auger_with_env, stderr};
use crate::support::stack::{Stack, WEB, wait_for, web_policy};
use crate::support::webhooks::report_fixture;

const FLUX_SECRET: &str = "flux-hmac-secret";
const ARGO_TOKEN: &str = "argo-bearer-token";
const VERIFY_KEYS: &str =
    "[verify]\nflux_secret_env = \"AUGER_FLUX_SECRET\"\nargocd_token_env = \"AUGER_ARGOCD_TOKEN\"\n";
const ENV: [(&str, &str); 2] = [
    ("AUGER_FLUX_SECRET", FLUX_SECRET),
    ("AUGER_ARGOCD_TOKEN", ARGO_TOKEN),
];

/// Staging merges directly and listens to `verify`.
fn stack(verify: &str) -> Stack {
    let policy = web_policy(&format!(
        "[env.staging]\nauto = {{ branch = \"main\" }}\nmerge = \"direct\"\nverify = {verify}\n"
    ));
    Stack::start_with(&policy, VERIFY_KEYS, &ENV)
}

impl Stack {
    /// A green build of main with `content`, once staging runs it; its sha.
    fn released_to_staging(&self, content: &str) -> String {
        let sha = self.green_main(content);
        wait_for("staging to run the build", || {
            self.live("staging").as_deref() == Some(sha.as_str())
        });
        sha
    }

    fn gitops_tip(&self) -> String {
        self.sim
            .branch_sha(crate::support::stack::GITOPS, "main")
            .unwrap()
    }

    /// `state` of what staging runs, from `GET /api/v1/releases/current`.
    fn current(&self) -> serde_json::Value {
        let (code, body) = self.server.get("/api/v1/releases/current?env=staging&app=web");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    fn state(&self) -> String {
        self.current()["state"].as_str().unwrap().to_owned()
    }

    /// Flux saying `apps-staging` is healthy at the gitops tip, signed with the right secret.
    fn flux_healthy(&self) -> u16 {
        self.flux(
            "apps-staging",
            &self.gitops_tip(),
            "kustomization-succeeded.json",
            FLUX_SECRET,
        )
    }

    /// Flux's event about `object` at gitops `revision`, signed with `secret`.
    fn flux(&self, object: &str, revision: &str, fixture: &str, secret: &str) -> u16 {
        let mut event: serde_json::Value = serde_json::from_slice(&report_fixture("flux", fixture)).unwrap();
        event["involvedObject"]["name"] = object.into();
        event["metadata"] = serde_json::json!({ "revision": format!("main@sha1:{revision}") });
        let body = serde_json::to_vec(&event).unwrap();
        let signature = sign_as(Algorithm::Sha256, secret, &body);
        let (code, _) = self
            .server
            .post_report("/webhooks/flux", &[("X-Signature", &signature)], &body);
        code
    }
}

#[test]
fn a_flux_report_verifies_the_release_it_contains() {
    let s = stack("{ flux = \"apps-staging\" }");
    let sha = s.released_to_staging("v1");
    assert_eq!(s.state(), "merged");
    let (state, description) = s.status(&sha, "auger/staging").unwrap();
    assert_eq!(state, "pending");
    assert!(
        description.contains("waiting for Flux apps-staging"),
        "{description}"
    );

    assert_eq!(s.flux_healthy(), 202);
    s.settle();
    assert_eq!(s.state(), "verified");
    assert_eq!(s.status(&sha, "auger/staging").unwrap().0, "success");
    let deployments = s.sim.deployments(WEB).unwrap();
    let last = deployments.last().unwrap().statuses.last().unwrap();
    assert_eq!(last.state, "success");
    let (_, dashboard) = s.server.get("/");
    assert!(
        dashboard.contains("<div class=\"verify verified\">verified</div>"),
        "{dashboard}"
    );
}

#[test]
fn a_forged_flux_report_is_refused_and_changes_nothing() {
    let s = stack("{ flux = \"apps-staging\" }");
    let sha = s.released_to_staging("v1");
    assert_eq!(
        s.flux(
            "apps-staging",
            &s.gitops_tip(),
            "kustomization-failed.json",
            "forged"
        ),
        401
    );
    s.settle();
    assert_eq!(s.state(), "merged");
    assert_eq!(s.status(&sha, "auger/staging").unwrap().0, "pending");
}

#[test]
fn a_failed_helm_release_report_fails_the_release_with_flux_words() {
    let s = stack("{ flux = \"web\" }");
    let sha = s.released_to_staging("v1");
    let fixture: serde_json::Value =
        serde_json::from_slice(&report_fixture("flux", "helmrelease-failed.json")).unwrap();
    let words = fixture["message"].as_str().unwrap().to_owned();
    assert_eq!(
        s.flux("web", &s.gitops_tip(), "helmrelease-failed.json", FLUX_SECRET),
        202
    );
    s.settle();
    assert_eq!(s.state(), "failed");
    let (state, description) = s.status(&sha, "auger/staging").unwrap();
    assert_eq!(state, "failure");
    assert!(
        description.contains(&words[..words.len().min(40)]),
        "{description} / {words}"
    );
}

#[test]
fn an_argocd_notification_verifies_the_release() {
    let s = stack("{ argocd = \"web-staging\" }");
    s.released_to_staging("v1");
    let mut body: serde_json::Value =
        serde_json::from_slice(&report_fixture("argocd", "synced-healthy.json")).unwrap();
    body["app"] = "web-staging".into();
    body["revision"] = s.gitops_tip().into();
    let bearer = format!("Bearer {ARGO_TOKEN}");
    let (code, _) = s.server.post_report(
        "/webhooks/argocd",
        &[("Authorization", &bearer)],
        &serde_json::to_vec(&body).unwrap(),
    );
    assert_eq!(code, 202);
    s.settle();
    assert_eq!(s.state(), "verified");
}

#[test]
fn a_commit_status_on_the_gitops_commit_verifies_the_release() {
    let s = stack("{ status = \"kustomization/apps-staging/*\" }");
    s.released_to_staging("v1");
    // What Flux's github provider posts on the commit it applied.
    s.sim
        .set_status(
            crate::support::stack::GITOPS,
            &s.gitops_tip(),
            "success",
            "kustomization/apps-staging/0c9c2e41",
        )
        .unwrap();
    s.settle();
    assert_eq!(s.state(), "verified");
}

#[test]
fn a_release_waiting_for_its_report_survives_a_restart() {
    let mut s = stack("{ flux = \"apps-staging\", timeout = \"1h\" }");
    let sha = s.released_to_staging("v1");
    s.restart(&ENV);
    assert_eq!(s.state(), "merged");
    assert_eq!(s.flux_healthy(), 202);
    s.settle();
    assert_eq!(s.state(), "verified");
    assert_eq!(s.status(&sha, "auger/staging").unwrap().0, "success");
}

#[test]
fn release_wait_exits_zero_once_verified_and_one_once_failed() {
    let s = stack("{ flux = \"apps-staging\" }");
    s.released_to_staging("v1");
    let dir = s.setup.path().to_owned();
    let url = s.server.url.clone();
    let waiter = std::thread::spawn(move || {
        auger_with_env(
            &dir,
            &[
                "release",
                "wait",
                "--app",
                "web",
                "--env",
                "staging",
                "--timeout",
                "60s",
                "--server",
                &url,
            ],
            &[("AUGER_TOKEN", crate::support::server::BEARER)],
        )
    });
    std::thread::sleep(Duration::from_millis(300));
    s.flux(
        "apps-staging",
        &s.gitops_tip(),
        "kustomization-succeeded.json",
        FLUX_SECRET,
    );
    let out = waiter.join().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    let bad = s.released_to_staging("v2");
    s.flux(
        "apps-staging",
        &s.gitops_tip(),
        "kustomization-failed.json",
        FLUX_SECRET,
    );
    s.settle();
    let out = auger_with_env(
        s.setup.path(),
        &[
            "release",
            "wait",
            "--app",
            "web",
            "--env",
            "staging",
            "--artifact",
            &bad,
            "--timeout",
            "10s",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("failed in staging"), "{}", stderr(&out));
}

#[test]
fn one_kustomization_report_verifies_every_app_it_contains() {
    let mut s = stack("{ flux = \"apps-staging\" }");
    // A second app built from the same repository, applied by the same Kustomization.
    let web = std::fs::read_to_string(s.setup.path().join("policies/web.toml")).unwrap();
    let api = web.replace("app = \"web\"", "app = \"api\"");
    std::fs::write(s.setup.path().join("policies/api.toml"), api).unwrap();
    s.restart(&ENV);
    let sha = s.green_main("v1");
    wait_for("both apps in staging", || {
        s.live("staging").as_deref() == Some(sha.as_str())
            && s.server.get("/api/v1/releases/current?env=staging&app=api").0 == 200
    });
    assert_eq!(s.flux_healthy(), 202);
    s.settle();
    for app in ["web", "api"] {
        let (_, body) = s
            .server
            .get(&format!("/api/v1/releases/current?env=staging&app={app}"));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["state"], "verified", "{app}: {body}");
    }
}
