//! The dashboard in a real browser: headless Chromium (Debian's `chromium`, which `scripts/test`
//! installs) loads `GET /` from a running auger and the assertions read the DOM it rendered.

use crate::support::browser::{element, rendered_dom};
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

    // The matrix: staging runs the build (short sha, tag), production has nothing yet.
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
