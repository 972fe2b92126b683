//! The OAuth web application flow as github.com serves it: authorize page, the redirect with a
//! code and the app's state, the code traded once for a token that `GET /user` accepts, and
//! GitHub's documented errors.

use github_sim::{GithubSim, SimConfig};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn query_of(location: &str) -> std::collections::HashMap<String, String> {
    let q = location.split_once('?').map(|(_, q)| q).unwrap_or("");
    url_params(q)
}

fn url_params(q: &str) -> std::collections::HashMap<String, String> {
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| {
            let bytes = v.as_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'%' {
                    out.push(u8::from_str_radix(&v[i + 1..i + 3], 16).unwrap());
                    i += 3;
                } else {
                    out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
                    i += 1;
                }
            }
            (k.to_owned(), String::from_utf8(out).unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_code_from_the_authorize_page_buys_one_user_token() {
    let sim = GithubSim::start(SimConfig::default()).unwrap();
    sim.create_user("alice").unwrap();
    sim.create_oauth_app("Iv1.test", "s3cret", "http://127.0.0.1:9/app");
    let http = client();
    let base = sim.url();

    let page = http
        .get(format!(
            "{base}/login/oauth/authorize?client_id=Iv1.test&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fapp%2Fcb&state=xyz%3C"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("value=\"xyz&lt;\""), "state is escaped: {html}");

    let approve = http
        .post(format!("{base}/login/oauth/authorize"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("client_id=Iv1.test&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fapp%2Fcb&state=xyz&login=alice&authorize=1")
        .send()
        .await
        .unwrap();
    assert_eq!(approve.status(), 302);
    let location = approve.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("http://127.0.0.1:9/app/cb?"), "{location}");
    let q = query_of(&location);
    assert_eq!(q["state"], "xyz");
    let code = q["code"].clone();

    let exchange = |secret: &'static str, code: String| {
        let http = http.clone();
        let url = format!("{base}/login/oauth/access_token");
        async move {
            http.post(url)
                .header("accept", "application/json")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("client_id=Iv1.test&client_secret={secret}&code={code}"))
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let wrong = exchange("nope", code.clone()).await;
    assert_eq!(wrong["error"], "incorrect_client_credentials");
    let token = exchange("s3cret", code.clone()).await;
    assert_eq!(token["token_type"], "bearer");
    let token = token["access_token"].as_str().unwrap().to_owned();
    // A code works once.
    let again = exchange("s3cret", code).await;
    assert_eq!(again["error"], "bad_verification_code");

    let me: serde_json::Value = http
        .get(format!("{base}/user"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["login"], "alice");
    assert!(me["id"].as_u64().is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_foreign_redirect_or_a_denial_goes_back_with_an_error() {
    let sim = GithubSim::start(SimConfig::default()).unwrap();
    sim.create_user("alice").unwrap();
    sim.create_oauth_app("Iv1.test", "s3cret", "http://127.0.0.1:9/app");
    let http = client();
    let base = sim.url();
    let foreign = http
        .get(format!(
            "{base}/login/oauth/authorize?client_id=Iv1.test&redirect_uri=http%3A%2F%2Fevil.example%2Fcb&state=s"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 302);
    let location = foreign.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("http://127.0.0.1:9/app?"), "{location}");
    assert_eq!(query_of(&location)["error"], "redirect_uri_mismatch");

    let denied = http
        .post(format!("{base}/login/oauth/authorize"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("client_id=Iv1.test&state=s&login=alice&authorize=0")
        .send()
        .await
        .unwrap();
    let location = denied.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(query_of(&location)["error"], "access_denied");

    let unknown = http
        .get(format!("{base}/login/oauth/authorize?client_id=other"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}
