//! The App's side of GitHub: its webhook deliveries API (every attempt with its status code,
//! cursor pages, redelivery) and its installations' lifecycle (installed, deleted, reinstalled
//! with a new id, suspended, repositories added and removed, enterprise accounts), with
//! webhooks and tokens following it. Answers are held to the response schemas of GitHub's
//! description.

use std::sync::OnceLock;

use github_sim::contract::{SUBSET_JSON, violations};
use github_sim::{GithubSim, SimConfig};
use serde_json::{Value, json};

use crate::common::{Receiver, rsa_key_pair, seeded};

const SECRET: &str = "s3cret";

/// GitHub's response schema for `method path` and `status`, from the checked-in subset.
fn response_schema(method: &str, path: &str, status: &str) -> Value {
    static SUBSET: OnceLock<Value> = OnceLock::new();
    let subset = SUBSET.get_or_init(|| serde_json::from_str(SUBSET_JSON).unwrap());
    let op = subset["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|op| op["method"] == method && op["path"] == path)
        .unwrap_or_else(|| panic!("{method} {path} is not in the subset"));
    op["responses"][status]["schema"].clone()
}

fn assert_conforms(method: &str, path: &str, status: &str, answer: &Value) {
    let problems = violations(&response_schema(method, path, status), answer);
    assert!(problems.is_empty(), "{method} {path}: {problems:?}\n{answer:#}");
}

/// [`assert_conforms`] for installations of `/app/installations…`, whose `account` GitHub's
/// description gives as `allOf` a user and an enterprise: no answer GitHub gives satisfies
/// both (an account is one or the other), so the account is left to the tests' own checks and
/// the rest is held to the schema.
fn assert_installations_conform(path: &str, answer: &Value) {
    fn relax(schema: &mut Value) {
        if let Some(account) = schema.pointer_mut("/properties/account") {
            *account = Value::Bool(true);
        }
        if let Some(items) = schema.get_mut("items") {
            relax(items);
        }
    }
    let mut schema = response_schema("GET", path, "200");
    relax(&mut schema);
    let problems = violations(&schema, answer);
    assert!(problems.is_empty(), "GET {path}: {problems:?}\n{answer:#}");
}

/// The App's client: an RS256 JWT for `/app…`, tokens for the rest.
struct AppClient {
    api: String,
    jwt: String,
    http: reqwest::Client,
}

impl AppClient {
    fn new(sim: &GithubSim, app_id: u64, private_pem: &str) -> AppClient {
        let now = chrono::Utc::now().timestamp();
        let claims = json!({"iat": now - 60, "exp": now + 540, "iss": app_id.to_string()});
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap();
        let jwt = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &claims,
            &key,
        )
        .unwrap();
        AppClient {
            api: sim.url().to_string(),
            jwt,
            http: reqwest::Client::new(),
        }
    }

    /// `method path` with `auth` (`None`: the App's JWT): status, `Link` header, JSON answer.
    async fn call(&self, method: &str, path: &str, auth: Option<&str>) -> (u16, Option<String>, Value) {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.api)
        };
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let resp = self
            .http
            .request(method, url)
            .bearer_auth(auth.unwrap_or(&self.jwt))
            .header("Accept", "application/vnd.github+json")
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let link = resp
            .headers()
            .get("link")
            .map(|v| v.to_str().unwrap().to_string());
        let text = resp.text().await.unwrap();
        (status, link, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> Value {
        let (status, _, body) = self.call("GET", path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// A fresh token of installation `id`.
    async fn token(&self, id: u64) -> String {
        let (status, _, body) = self
            .call("POST", &format!("/app/installations/{id}/access_tokens"), None)
            .await;
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().unwrap().to_string()
    }
}

/// The `next` URL of a `Link` header.
fn next_link(link: Option<&str>) -> Option<String> {
    link?.split(',').find_map(|part| {
        let (url, rel) = part.split_once(';')?;
        (rel.trim() == "rel=\"next\"").then(|| url.trim().trim_matches(['<', '>']).to_string())
    })
}

fn app_sim(receiver: Option<&Receiver>) -> (GithubSim, AppClient) {
    let (private_pem, public_pem) = rsa_key_pair();
    let sim = seeded(SimConfig {
        app_id: 4242,
        installation_id: 77,
        app_public_key_pem: Some(public_pem),
        webhook_url: receiver.map(|r| r.url.clone()),
        webhook_secret: SECRET.into(),
        ..Default::default()
    });
    let client = AppClient::new(&sim, 4242, &private_pem);
    (sim, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deliveries_api_lists_every_attempt_with_its_status_code_a_cursor_page_at_a_time() {
    // What seeding the simulator emitted is recorded, never attempted: no URL was set.
    let (sim, app) = app_sim(None);
    // Deliveries to a receiver that answers 500, then to one that is not there at all, then
    // to one that takes them.
    let refusing = Receiver::start(500);
    sim.set_webhook(Some(&refusing.url), SECRET);
    sim.push("acme/frontend", "main", &[("a", "1")], "one", "alice")
        .unwrap();
    assert!(sim.wait_deliveries_async().await);
    let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone_url = format!("http://{}/hook", gone.local_addr().unwrap());
    drop(gone);
    sim.set_webhook(Some(&gone_url), SECRET);
    sim.push("acme/frontend", "main", &[("a", "2")], "two", "alice")
        .unwrap();
    assert!(sim.wait_deliveries_async().await);
    let taking = Receiver::start(202);
    sim.set_webhook(Some(&taking.url), SECRET);
    let sha = sim
        .push("acme/frontend", "main", &[("a", "3")], "three", "alice")
        .unwrap();
    sim.set_status("acme/frontend", &sha, "success", "ci/build")
        .unwrap();
    assert!(sim.wait_deliveries_async().await);
    let made: Vec<_> = sim.deliveries().into_iter().filter(|d| d.delivered).collect();
    assert_eq!(made.len(), 4, "{made:#?}");

    // Only the App's JWT reads them.
    let token = sim.create_token("alice").unwrap();
    let (status, _, _) = app.call("GET", "/app/hook/deliveries", Some(&token)).await;
    assert_eq!(status, 401);

    // Newest first, two a page, the next page behind the `Link` header's cursor.
    let (status, link, first) = app.call("GET", "/app/hook/deliveries?per_page=2", None).await;
    assert_eq!(status, 200, "{first}");
    assert_conforms("GET", "/app/hook/deliveries", "200", &first);
    let next = next_link(link.as_deref()).expect("a next page");
    assert!(next.contains("cursor="), "{next}");
    let (_, link, second) = app.call("GET", &next, None).await;
    assert!(next_link(link.as_deref()).is_none(), "two pages: {link:?}");
    let listed: Vec<Value> = first
        .as_array()
        .unwrap()
        .iter()
        .chain(second.as_array().unwrap())
        .cloned()
        .collect();
    let guids: Vec<&str> = listed.iter().map(|d| d["guid"].as_str().unwrap()).collect();
    let recorded: Vec<&str> = made.iter().rev().map(|d| d.id.as_str()).collect();
    assert_eq!(guids, recorded, "newest first");
    let codes: Vec<u64> = listed
        .iter()
        .map(|d| d["status_code"].as_u64().unwrap())
        .collect();
    assert_eq!(
        codes,
        [202, 202, 0, 500],
        "each attempt's status code (0: no answer)"
    );
    assert_eq!(listed[3]["status"], "Invalid HTTP Response: 500");
    assert_eq!(listed[2]["status"], "failed to connect to host");
    assert_eq!(listed[0]["status"], "OK");
    assert_eq!(listed[0]["event"], "status");
    assert_eq!(listed[3]["event"], "push");
    assert_eq!(listed[0]["installation_id"], 77);
    assert!(listed[0]["repository_id"].as_u64().is_some());
    assert!(listed.iter().all(|d| d["redelivery"] == false));
    let ids: Vec<u64> = listed.iter().map(|d| d["id"].as_u64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    assert!(ids[0] > u64::from(u32::MAX), "ids beyond 32 bits, as GitHub's");

    // Filtered by outcome.
    let failed = app.get("/app/hook/deliveries?status=failure").await;
    let failed: Vec<u64> = failed
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status_code"].as_u64().unwrap())
        .collect();
    assert_eq!(failed, [0, 500]);
    let (status, _, _) = app
        .call("GET", "/app/hook/deliveries?cursor=nonsense", None)
        .await;
    assert_eq!(status, 422);

    // One attempt in detail: what was sent and what came back.
    let one = app.get(&format!("/app/hook/deliveries/{}", ids[3])).await;
    assert_conforms("GET", "/app/hook/deliveries/{delivery_id}", "200", &one);
    assert_eq!(one["request"]["headers"]["X-GitHub-Delivery"], guids[3]);
    assert_eq!(one["request"]["payload"]["ref"], "refs/heads/main");
    let (status, _, _) = app.call("GET", "/app/hook/deliveries/12345", None).await;
    assert_eq!(status, 404);

    // A redelivery: 202, a new attempt with its own id, the same GUID, to today's URL.
    let (status, _, body) = app
        .call("POST", &format!("/app/hook/deliveries/{}/attempts", ids[2]), None)
        .await;
    assert_eq!(status, 202, "{body}");
    assert_conforms(
        "POST",
        "/app/hook/deliveries/{delivery_id}/attempts",
        "202",
        &body,
    );
    assert!(sim.wait_deliveries_async().await);
    let again = app.get("/app/hook/deliveries?per_page=1").await;
    let again = &again[0];
    assert_eq!(again["guid"], guids[2]);
    assert_eq!(again["redelivery"], true);
    assert_eq!(again["status_code"], 202);
    assert!(again["id"].as_u64().unwrap() > ids[0]);
    let got = taking.all();
    let last = got.last().unwrap();
    assert_eq!(last.header("x-github-delivery"), Some(guids[2]));
    assert_eq!(last.json()["after"], made[1].payload["after"]);
    let (status, _, _) = app
        .call("POST", "/app/hook/deliveries/12345/attempts", None)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reinstall_gets_a_new_id_and_the_deleted_installations_tokens_stop_working() {
    let receiver = Receiver::start(200);
    let (sim, app) = app_sim(Some(&receiver));
    assert!(sim.wait_deliveries_async().await);
    let old_token = app.token(77).await;
    let (status, _, _) = app.call("GET", "/repos/acme/frontend", Some(&old_token)).await;
    assert_eq!(status, 200);

    // Deleted: its token stops working, the repository has no installation and sends nothing.
    sim.uninstall_app(77, "carol").unwrap();
    assert!(sim.wait_deliveries_async().await);
    let deleted = sim.deliveries_of("installation").pop().unwrap();
    assert_eq!(deleted.action.as_deref(), Some("deleted"));
    assert_eq!(deleted.payload["installation"]["id"], 77);
    assert_eq!(deleted.payload["repositories"][0]["full_name"], "acme/frontend");
    assert_eq!(deleted.payload["sender"]["login"], "carol");
    let (status, _, _) = app.call("GET", "/repos/acme/frontend", Some(&old_token)).await;
    assert_eq!(status, 401, "a deleted installation's token");
    let (status, _, _) = app.call("GET", "/repos/acme/frontend/installation", None).await;
    assert_eq!(status, 404);
    let (status, _, _) = app
        .call("POST", "/app/installations/77/access_tokens", None)
        .await;
    assert_eq!(status, 404);
    let before = sim.deliveries().len();
    sim.push("acme/frontend", "main", &[("a", "1")], "one", "alice")
        .unwrap();
    assert!(sim.wait_deliveries_async().await);
    assert_eq!(sim.deliveries().len(), before, "no installation, no webhooks");

    // Installed again: a new id, which the repository, its webhooks and a new token carry.
    let new_id = sim.install_app("acme", "carol").unwrap();
    assert_ne!(new_id, 77);
    assert!(sim.wait_deliveries_async().await);
    let created = sim.deliveries_of("installation").pop().unwrap();
    assert_eq!(created.action.as_deref(), Some("created"));
    assert_eq!(created.payload["installation"]["id"], new_id);
    assert_eq!(created.payload["installation"]["account"]["login"], "acme");
    assert_eq!(created.payload["repositories"][0]["full_name"], "acme/frontend");
    let found = app.get("/repos/acme/frontend/installation").await;
    assert_eq!(found["id"], new_id);
    assert_conforms("GET", "/repos/{owner}/{repo}/installation", "200", &found);
    let token = app.token(new_id).await;
    let (status, _, _) = app.call("GET", "/repos/acme/frontend", Some(&token)).await;
    assert_eq!(status, 200);
    sim.set_status(
        "acme/frontend",
        &sim.branch_sha("acme/frontend", "main").unwrap(),
        "success",
        "ci",
    )
    .unwrap();
    assert!(sim.wait_deliveries_async().await);
    let status_event = sim.deliveries_of("status").pop().unwrap();
    assert_eq!(status_event.payload["installation"]["id"], new_id);
    assert!(
        sim.install_app("acme", "carol").is_err(),
        "one installation per account"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspension_and_the_repository_selection_decide_what_the_app_reaches() {
    let receiver = Receiver::start(200);
    let (sim, app) = app_sim(Some(&receiver));
    sim.create_repo("acme/backend").unwrap();
    sim.push("acme/backend", "main", &[("b", "b")], "b", "alice")
        .unwrap();
    let id = sim.install_app_on("acme", &["acme/frontend"], "carol").unwrap();
    assert!(sim.wait_deliveries_async().await);
    assert_eq!(sim.installation_of("acme/frontend"), Some(id));
    assert_eq!(sim.installation_of("acme/backend"), None, "not selected");
    let token = app.token(id).await;
    let (status, _, _) = app.call("GET", "/repos/acme/backend", Some(&token)).await;
    assert_eq!(status, 404, "outside the selection");
    let (_, _, repos) = app.call("GET", "/installation/repositories", Some(&token)).await;
    assert_eq!(repos["total_count"], 1);

    // Added, then removed again: `installation_repositories`, and access follows.
    sim.add_installation_repository(id, "acme/backend", "carol")
        .unwrap();
    assert!(sim.wait_deliveries_async().await);
    let added = sim.deliveries_of("installation_repositories").pop().unwrap();
    assert_eq!(added.action.as_deref(), Some("added"));
    assert_eq!(
        added.payload["repositories_added"][0]["full_name"],
        "acme/backend"
    );
    assert_eq!(added.payload["repository_selection"], "selected");
    assert_eq!(added.payload["installation"]["id"], id);
    let (status, _, _) = app.call("GET", "/repos/acme/backend", Some(&token)).await;
    assert_eq!(status, 200);
    sim.remove_installation_repository(id, "acme/backend", "carol")
        .unwrap();
    assert!(sim.wait_deliveries_async().await);
    let removed = sim.deliveries_of("installation_repositories").pop().unwrap();
    assert_eq!(removed.action.as_deref(), Some("removed"));
    assert_eq!(
        removed.payload["repositories_removed"][0]["full_name"],
        "acme/backend"
    );
    let (status, _, _) = app.call("GET", "/repos/acme/backend", Some(&token)).await;
    assert_eq!(status, 404);
    assert!(
        sim.remove_installation_repository(id, "acme/backend", "carol")
            .is_err()
    );

    // Suspended: its tokens are refused, none is minted, no webhooks; unsuspended: back.
    sim.suspend_app(id, true, "carol").unwrap();
    assert!(sim.wait_deliveries_async().await);
    let suspend = sim.deliveries_of("installation").pop().unwrap();
    assert_eq!(suspend.action.as_deref(), Some("suspend"));
    assert!(suspend.payload["installation"]["suspended_at"].is_string());
    let (status, _, _) = app.call("GET", "/repos/acme/frontend", Some(&token)).await;
    assert_eq!(status, 403);
    let (status, _, _) = app
        .call("POST", &format!("/app/installations/{id}/access_tokens"), None)
        .await;
    assert_eq!(status, 403);
    let before = sim.deliveries().len();
    sim.push("acme/frontend", "main", &[("a", "1")], "one", "alice")
        .unwrap();
    assert!(sim.wait_deliveries_async().await);
    assert_eq!(
        sim.deliveries().len(),
        before,
        "a suspended installation hears nothing"
    );
    sim.suspend_app(id, false, "carol").unwrap();
    assert!(sim.wait_deliveries_async().await);
    assert_eq!(
        sim.deliveries_of("installation").pop().unwrap().action.as_deref(),
        Some("unsuspend")
    );
    let (status, _, _) = app.call("GET", "/repos/acme/frontend", Some(&token)).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installations_come_a_page_at_a_time_and_an_enterprise_has_no_login() {
    let (sim, app) = app_sim(None);
    let enterprise = sim.install_app_on_enterprise("megacorp", "carol").unwrap();
    for n in 0..4 {
        let org = format!("org{n}");
        sim.create_org(&org).unwrap();
        sim.install_app(&org, "carol").unwrap();
    }
    let ids = sim.installation_ids();
    assert_eq!(
        ids.len(),
        6,
        "the one the sim started with, the enterprise, four orgs"
    );

    let (status, link, first) = app.call("GET", "/app/installations?per_page=4", None).await;
    assert_eq!(status, 200);
    assert_installations_conform("/app/installations", &first);
    let next = next_link(link.as_deref()).expect("a second page");
    let (_, link, second) = app.call("GET", &next, None).await;
    assert!(next_link(link.as_deref()).is_none());
    let listed: Vec<u64> = first
        .as_array()
        .unwrap()
        .iter()
        .chain(second.as_array().unwrap())
        .map(|i| i["id"].as_u64().unwrap())
        .collect();
    assert_eq!(listed, ids);

    let ent = app.get(&format!("/app/installations/{enterprise}")).await;
    assert_installations_conform("/app/installations/{installation_id}", &ent);
    assert_eq!(ent["account"]["slug"], "megacorp");
    assert!(ent["account"].get("login").is_none(), "{ent:#}");
    assert_eq!(ent["target_type"], "Enterprise");
}
