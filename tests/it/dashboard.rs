//! The dashboard in a real browser: headless Chromium (Debian's `chromium`, which `scripts/test`
//! installs) loads pages from a running auger and the assertions read the DOM it rendered.
//! The login goes through the simulator's OAuth pages and the actions are clicked, as a
//! person would.

use crate::support::browser::{Browser, element, rendered_dom};
use crate::support::{GITOPS, Stack, wait_for, web_policy};

const POLICY: &str = r#"
[env.staging]
auto = { branch = "main" }
merge = "direct"

[env.production]
auto = { tag = "v*" }
merge = "approval"
approvals = 2
approvers = ["team:acme/sre"]
"#;

#[test]
fn the_dashboard_shows_what_runs_where_pending_prs_and_history_with_user_text_escaped() {
    let stack = Stack::start(&web_policy(POLICY));
    let evil = "feat: <script>alert(1)</script> & friends";
    let sha = stack
        .sim
        .push("acme/web", "main", &[("app.txt", "v1")], evil, "alice")
        .unwrap();
    stack
        .sim
        .set_status("acme/web", &sha, "success", "ci/build")
        .unwrap();
    stack.settle();
    wait_for("staging", || {
        stack.live("staging").as_deref() == Some(sha.as_str())
    });
    stack.sim.create_tag("acme/web", "v1.0.0", &sha, "alice").unwrap();
    stack.settle();
    wait_for("the production PR", || {
        !stack.auger_pulls("auger/production/web").is_empty()
    });
    let pr = stack.auger_pulls("auger/production/web")[0].number;
    stack.sim.review(GITOPS, pr, "sre1", "APPROVED").unwrap();
    stack.settle();

    let dom = rendered_dom(&format!("{}/", stack.server.url));

    // The pipeline: staging runs the build (short sha, tag), production has nothing yet.
    let staging = element(&dom, "data-env=\"staging\" data-app=\"web\"");
    assert!(staging.contains(&sha[..12]), "{staging}");
    assert!(staging.contains("v1.0.0"), "{staging}");
    assert!(staging.contains("policy"), "released by: {staging}");
    // Production runs nothing; the release it waits for says why.
    let production = element(&dom, "data-env=\"production\" data-app=\"web\"");
    assert!(production.contains("<span class=\"none\">"), "{production}");
    assert!(
        production.contains(&format!(
            "waiting: web@{} (awaiting approval in #{pr})",
            &sha[..12]
        )),
        "{production}"
    );

    // The open production PR with its approval count.
    let row = element(&dom, &format!("data-pull=\"{pr}\""));
    assert!(row.contains(&format!("#{pr}")), "{row}");
    let approvals = &dom[dom.find("class=\"approvals\"").unwrap()..];
    assert!(
        approvals.starts_with("class=\"approvals\">1 / 2<"),
        "{}",
        &approvals[..60]
    );

    // The history links the gitops and the source commit on the host GitHub names for them
    // (the simulator's, as a GitHub Enterprise Server's would be), and the message is text.
    let gitops_head = stack.gitops_log("%H")[0].clone();
    let host = stack.sim.url();
    assert!(dom.contains(&format!("{host}/{GITOPS}/commit/{gitops_head}")));
    assert!(dom.contains(&format!("{host}/acme/web/commit/{sha}")));
    assert!(!dom.contains("https://github.com"), "no hard-coded host");
    assert!(
        dom.contains("feat: &lt;script&gt;alert(1)&lt;/script&gt; &amp; friends"),
        "the message is shown as text"
    );
    assert!(
        !dom.contains("<script>alert(1)"),
        "no script element made it into the page"
    );
}

/// Staging deploys main by itself; production takes what a deployer deploys.
const ACTIONS_POLICY: &str = r#"
[env.staging]
auto = { branch = "main" }
merge = "direct"
deployers = ["permission:write"]

[env.production]
merge = "direct"
after = { env = "staging" }
deployers = ["permission:write"]
"#;

const CLIENT_ID: &str = "Iv1.dashboard";
const CLIENT_SECRET: &str = "oauth-client-secret";

/// A stack whose dashboard logs in through the simulator's OAuth app.
fn stack_with_login() -> Stack {
    let stack = Stack::start_with(
        &web_policy(ACTIONS_POLICY),
        &format!("[dashboard]\noauth_client_id = \"{CLIENT_ID}\"\ngithub_url = \"{{sim}}\"\n"),
        &[("AUGER_OAUTH_CLIENT_SECRET", CLIENT_SECRET)],
    );
    stack
        .sim
        .create_oauth_app(CLIENT_ID, CLIENT_SECRET, &stack.server.url);
    stack
}

/// Logs `login` in from the dashboard: the login link, GitHub's authorize page, back.
fn log_in(browser: &mut Browser, stack: &Stack, login: &str) {
    browser.goto(&format!("{}/", stack.server.url));
    browser.click("#login");
    assert!(
        browser
            .url()
            .starts_with(&format!("{}/login/oauth/authorize?", stack.sim.url())),
        "{}",
        browser.url()
    );
    browser.fill("#login", login);
    browser.click("#authorize");
    assert_eq!(browser.url(), format!("{}/", stack.server.url));
    let dom = browser.dom();
    assert!(dom.contains(&format!("@{login}</strong>")), "{dom}");
}

/// The session cookie the browser holds, as a `Cookie` header.
fn session_cookie(browser: &mut Browser) -> String {
    let cookies = browser.cookies();
    let (name, value, http_only, same_site) = cookies
        .iter()
        .find(|c| c.0 == "auger_session")
        .cloned()
        .unwrap_or_else(|| panic!("no session cookie in {cookies:?}"));
    assert!(http_only, "the session cookie is HttpOnly");
    assert_eq!(same_site, "Lax");
    format!("{name}={value}")
}

/// Every ref of the ledger: holds, freezes and releases live there.
fn ledger_refs(stack: &Stack) -> String {
    crate::support::git::git_checked(
        &stack.setup.ledger(),
        &["for-each-ref", "--format=%(refname) %(objectname)"],
    )
}

#[test]
fn a_deployer_logs_in_with_github_and_deploys_by_clicking() {
    let stack = stack_with_login();
    let sha = stack.green_main("v1");
    wait_for("staging", || {
        stack.live("staging").as_deref() == Some(sha.as_str())
    });
    let mut browser = Browser::start();

    // Before the login: a link to it and no action.
    browser.goto(&format!("{}/", stack.server.url));
    let dom = browser.dom();
    assert!(dom.contains("id=\"login\""), "{dom}");
    assert!(!dom.contains("/actions/"), "no action without a login: {dom}");

    log_in(&mut browser, &stack, "alice");
    session_cookie(&mut browser);
    let production = element(&browser.dom(), "data-env=\"production\" data-app=\"web\"").to_owned();
    assert!(production.contains("after staging"), "{production}");
    assert!(
        production.contains(&format!("deploy {} from staging", &sha[..12])),
        "{production}"
    );

    browser.click("li[data-env=\"production\"] button.deploy");
    let queued = browser.dom();
    assert!(queued.contains("data-kind=\"queued\""), "{queued}");
    wait_for("production", || {
        stack.live("production").as_deref() == Some(sha.as_str())
    });
    stack.server.wait_idle();

    // The release names who clicked, as a `/deploy` comment would.
    let trailers = stack.gitops_log("%B").join("\n");
    assert!(trailers.contains("Auger-Trigger: command @alice"), "{trailers}");
    browser.goto(&format!("{}/", stack.server.url));
    let production = element(&browser.dom(), "data-env=\"production\" data-app=\"web\"").to_owned();
    assert!(production.contains(&sha[..12]), "{production}");
    assert!(production.contains("command @alice"), "{production}");

    // The artifact page: facts, both envs it runs in and ran in, the changelog from staging's
    // previous artifact (none: every build of main so far).
    browser.click("li[data-env=\"production\"] a.artifact");
    let page = browser.dom();
    assert!(page.contains(&format!("web@{}", &sha[..12])), "{page}");
    assert!(page.contains("feat: v1"), "{page}");
    let ran = element(&page, "id=\"ran\"").to_owned();
    assert!(ran.contains("staging") && ran.contains("production"), "{ran}");
    assert!(ran.contains("command @alice") && ran.contains("policy"), "{ran}");
    let runs_now = element(&page, "id=\"runs-now\"").to_owned();
    assert!(
        runs_now.contains("staging") && runs_now.contains("production"),
        "{runs_now}"
    );

    // A second build: its page's changelog runs back to what staging ran before it.
    let sha2 = stack.green_main("v2");
    wait_for("staging v2", || {
        stack.live("staging").as_deref() == Some(sha2.as_str())
    });
    browser.goto(&format!("{}/artifacts/web@{}", stack.server.url, &sha2[..12]));
    let page = browser.dom();
    let base = element(&page, "id=\"changelog-base\"").to_owned();
    assert!(base.contains(&format!("web@{}", &sha[..12])), "{base}");
    let changelog = element(&page, "id=\"changelog\"").to_owned();
    assert!(changelog.contains("feat: v2"), "{changelog}");
    assert!(
        !changelog.contains("feat: v1"),
        "the previous artifact is not a change: {changelog}"
    );

    // Its page deploys it too.
    browser.click("#deploy button[data-env=\"production\"]");
    assert!(browser.dom().contains("data-kind=\"queued\""));
    wait_for("production v2", || {
        stack.live("production").as_deref() == Some(sha2.as_str())
    });
}

#[test]
fn someone_who_is_not_a_deployer_is_refused_and_nothing_is_written() {
    let stack = stack_with_login();
    let sha = stack.green_main("v1");
    wait_for("staging", || {
        stack.live("staging").as_deref() == Some(sha.as_str())
    });
    stack.server.wait_idle();
    let gitops_before = stack.gitops_log("%H");
    let ledger_before = ledger_refs(&stack);
    let mut browser = Browser::start();
    log_in(&mut browser, &stack, "mallory");

    browser.click("li[data-env=\"production\"] button.deploy");
    let refused = browser.dom();
    assert!(refused.contains("data-reason=\"not_a_deployer\""), "{refused}");
    assert!(
        refused.contains("@mallory is not a deployer of web in production"),
        "{refused}"
    );
    browser.goto(&format!("{}/", stack.server.url));
    browser.click("li[data-env=\"production\"] button.hold");
    assert!(browser.dom().contains("data-reason=\"not_a_deployer\""));

    // The refusal is a 403, and nothing reached the inbox, the ledger or the gitops repository.
    let cookie = session_cookie(&mut browser);
    browser.goto(&format!("{}/", stack.server.url));
    let csrf = browser
        .eval("document.querySelector('input[name=csrf]').value")
        .as_str()
        .unwrap()
        .to_owned();
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}/actions/deploy", stack.server.url))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "csrf={csrf}&app=web&env=production&artifact=web%40{}",
            &sha[..12]
        ))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    stack.server.wait_idle();
    assert_eq!(stack.live("production"), None);
    assert_eq!(ledger_refs(&stack), ledger_before, "no hold, no release");
    assert_eq!(stack.gitops_log("%H"), gitops_before);
    assert_eq!(stack.server.metric("auger_inbox_depth "), 0);
}

#[test]
fn an_action_without_this_sessions_csrf_token_is_refused() {
    let stack = stack_with_login();
    let sha = stack.green_main("v1");
    wait_for("staging", || {
        stack.live("staging").as_deref() == Some(sha.as_str())
    });
    let mut browser = Browser::start();
    log_in(&mut browser, &stack, "alice");
    let cookie = session_cookie(&mut browser);
    let csrf = browser
        .eval("document.querySelector('input[name=csrf]').value")
        .as_str()
        .unwrap()
        .to_owned();
    let hold = |body: &str, cookie: Option<&str>| {
        let mut req = reqwest::blocking::Client::new()
            .post(format!("{}/actions/hold", stack.server.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned());
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req.send().unwrap().status().as_u16()
    };
    let staging_held = || {
        let (_, text) = stack.server.get("/api/v1/environments");
        let views: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
        views
            .iter()
            .find(|v| v["env"] == "staging")
            .and_then(|v| v["on_hold"].as_bool())
    };
    let mut wrong = csrf.clone().into_bytes();
    wrong[0] = if wrong[0] == b'a' { b'b' } else { b'a' };
    let wrong = String::from_utf8(wrong).unwrap();
    assert_eq!(hold("app=web&env=staging", Some(&cookie)), 403, "no token");
    assert_eq!(
        hold(&format!("csrf={wrong}&app=web&env=staging"), Some(&cookie)),
        403,
        "a wrong token"
    );
    assert_eq!(
        hold(&format!("csrf={csrf}&app=web&env=staging"), None),
        403,
        "no session"
    );
    stack.server.wait_idle();
    assert_eq!(staging_held(), Some(false), "nothing was held");
    // Another session's token does not do either: tokens are per session.
    let mut other = Browser::start();
    log_in(&mut other, &stack, "alice");
    let other_cookie = session_cookie(&mut other);
    assert_eq!(
        hold(&format!("csrf={csrf}&app=web&env=staging"), Some(&other_cookie)),
        403
    );
    // The right token goes through: the same request was refused for the token alone.
    assert_eq!(
        hold(&format!("csrf={csrf}&app=web&env=staging"), Some(&cookie)),
        202
    );
    stack.server.wait_idle();
    assert_eq!(staging_held(), Some(true));
    browser.goto(&format!("{}/", stack.server.url));
    let staging = element(&browser.dom(), "data-env=\"staging\" data-app=\"web\"").to_owned();
    assert!(
        staging.contains("on hold: held from the dashboard (@alice)"),
        "{staging}"
    );
    assert!(staging.contains("class=\"resume\""), "{staging}");
    // A held env refuses a deploy from the dashboard, as it refuses `/deploy`.
    browser.goto(&format!("{}/artifacts/web@{}", stack.server.url, &sha[..12]));
    browser.click("#deploy button[data-env=\"staging\"]");
    let refused = browser.dom();
    assert!(refused.contains("data-reason=\"on_hold\""), "{refused}");
    assert!(
        refused.contains("web in staging is on hold (@alice: held from the dashboard)"),
        "{refused}"
    );
}

#[test]
fn without_oauth_the_dashboard_is_read_only() {
    let stack = Stack::start(&web_policy(ACTIONS_POLICY));
    let sha = stack.green_main("v1");
    wait_for("staging", || {
        stack.live("staging").as_deref() == Some(sha.as_str())
    });
    let dom = rendered_dom(&format!("{}/", stack.server.url));
    assert!(dom.contains("id=\"read-only\""), "{dom}");
    assert!(!dom.contains("<form"), "no form without a login: {dom}");
    assert!(!dom.contains("id=\"login\""), "{dom}");
    let artifact = rendered_dom(&format!("{}/artifacts/web@{}", stack.server.url, &sha[..12]));
    assert!(
        artifact.contains("feat: v1") && !artifact.contains("<form"),
        "{artifact}"
    );

    let http = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = http.get(format!("{}/login", stack.server.url)).send().unwrap();
    assert_eq!(login.status().as_u16(), 404);
    for verb in ["deploy", "rollback", "hold", "resume"] {
        let resp = http
            .post(format!("{}/actions/{verb}", stack.server.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("app=web&env=production&artifact=web%40{}", &sha[..12]))
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 404, "{verb}");
    }
    stack.server.wait_idle();
    assert_eq!(stack.live("production"), None);
}
