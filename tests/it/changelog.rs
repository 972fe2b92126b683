//! The release pull request's changelog (design §16): the source commits from what the env
//! runs to the proposed artifact, read from GitHub's compare on the simulator, with each
//! commit's pull requests and author; at most 50, then the link to the full comparison; the
//! gitops change collapsed beside it. The commits are made with plain git as well as through
//! the simulator, so authors GitHub cannot map to an account are among them.

use std::path::Path;

use crate::support::git::git_in;
use crate::support::stack::WEB;
use crate::support::{GITOPS, Stack, wait_for, web_policy};

const QA: &str = r#"
[env.qa]
auto = { branch = "main" }
merge = "approval"
approvals = 1
approvers = ["user:sre1"]
"#;

/// A clone of acme/web's main in `dir`.
fn clone_web(stack: &Stack, dir: &Path) -> std::path::PathBuf {
    let url = format!("file://{}", stack.sim.repo_path(WEB).unwrap().display());
    let clone = dir.join("web");
    git_in(dir, &["clone", "--quiet", &url, clone.to_str().unwrap()]);
    clone
}

/// `n` commits on the clone's main by `author` (`Name <email>`), pushed at once.
fn commits_by(clone: &Path, author: &str, what: &str, n: usize) -> String {
    git_in(clone, &["pull", "--quiet", "origin", "main"]);
    for i in 1..=n {
        std::fs::write(clone.join("notes.txt"), format!("{what} {i}\n")).unwrap();
        git_in(clone, &["add", "."]);
        let author = format!("--author={author}");
        git_in(
            clone,
            &["commit", "--quiet", &author, "-m", &format!("{what} {i}")],
        );
    }
    git_in(clone, &["push", "--quiet", "origin", "HEAD:main"]);
    git_in(clone, &["rev-parse", "HEAD"]).trim().to_owned()
}

/// The body of the one open release pull request for qa.
fn qa_body(stack: &Stack) -> String {
    let open: Vec<_> = stack
        .auger_pulls("auger/qa/web")
        .into_iter()
        .filter(|p| p.open)
        .collect();
    assert_eq!(open.len(), 1, "one open qa pull request");
    open[0].body.clone()
}

fn approve_qa(stack: &Stack, sha: &str) {
    let pr = stack
        .auger_pulls("auger/qa/web")
        .into_iter()
        .find(|p| p.open)
        .unwrap();
    stack.sim.review(GITOPS, pr.number, "sre1", "APPROVED").unwrap();
    stack.settle();
    wait_for("qa released", || stack.live("qa").as_deref() == Some(sha));
}

#[test]
fn a_release_pull_request_lists_the_commits_since_what_runs_with_their_pull_requests_and_authors() {
    let stack = Stack::start(&web_policy(QA));
    let first = stack.green_main("v1");
    let body = qa_body(&stack);
    assert!(
        body.contains("Nothing runs in **qa** yet: this is the first release of **web** there."),
        "{body}"
    );
    assert!(
        body.contains("| CI run | status ci/build (no link recorded) |"),
        "{body}"
    );
    approve_qa(&stack, &first);

    // A fix through a pull request, a commit by someone GitHub does not know, then v2.
    let fix = stack
        .sim
        .push(
            WEB,
            "fix",
            &[("fix.txt", "fixed\n")],
            "fix: the login form",
            "alice",
        )
        .unwrap();
    let pull = stack
        .sim
        .open_pr(WEB, "fix", "main", "Fix the login form", "alice")
        .unwrap();
    stack.sim.merge_pr(WEB, pull, "alice").unwrap();
    stack.settle();
    let work = tempfile::tempdir().unwrap();
    let clone = clone_web(&stack, work.path());
    commits_by(&clone, "Jane Doe <jane@example.com>", "docs: outside help", 1);
    stack.settle();
    let second = stack.green_main("v2");

    let body = qa_body(&stack);
    let since = format!("4 commit(s) since `web@{}`, what **qa** runs:\n\n", &first[..12]);
    assert!(body.contains(&since), "{body}");
    let lines: Vec<&str> = body.lines().filter(|l| l.starts_with("- [`")).collect();
    assert_eq!(lines.len(), 4, "{body}");
    let url = stack.sim.url();
    assert_eq!(
        lines[0],
        format!(
            "- [`{}`]({url}/acme/web/commit/{second}) feat: v2 by **alice**",
            &second[..7]
        )
    );
    assert!(
        lines[1].ends_with(") docs: outside help 1 by Jane Doe"),
        "a commit whose email maps to no account shows its git author: {}",
        lines[1]
    );
    assert!(
        lines[2].contains(&format!("(acme/web#{pull}) by **alice**")),
        "the merge commit names its pull request: {}",
        lines[2]
    );
    assert_eq!(
        lines[3],
        format!(
            "- [`{}`]({url}/acme/web/commit/{fix}) fix: the login form (acme/web#{pull}) by **alice**",
            &fix[..7]
        )
    );
    assert!(
        body.contains(&format!(
            "[The comparison on GitHub]({url}/acme/web/compare/{first}...{second})."
        )),
        "{body}"
    );
    // The gitops change, collapsed.
    assert!(
        body.contains("<details>\n<summary>Gitops changes (1 file(s))</summary>"),
        "{body}"
    );
    assert!(
        body.contains(&format!(
            "-image: ghcr.io/acme/web:{first}\n+image: ghcr.io/acme/web:{second}\n"
        )),
        "{body}"
    );
}

#[test]
fn more_than_fifty_commits_list_the_newest_fifty_then_link_the_rest() {
    let stack = Stack::start(&web_policy(QA));
    let first = stack.green_main("v1");
    approve_qa(&stack, &first);

    let work = tempfile::tempdir().unwrap();
    let clone = clone_web(&stack, work.path());
    commits_by(&clone, "Jane Doe <jane@example.com>", "chore: step", 55);
    stack.settle();
    let head = stack.green_main("v2");

    let body = qa_body(&stack);
    assert!(
        body.contains(&format!(
            "56 commit(s) since `web@{}`, what **qa** runs; the newest 50:",
            &first[..12]
        )),
        "{body}"
    );
    let lines: Vec<&str> = body.lines().filter(|l| l.starts_with("- [`")).collect();
    assert_eq!(lines.len(), 50, "{body}");
    assert!(lines[0].ends_with(") feat: v2 by **alice**"), "{}", lines[0]);
    assert!(lines[1].ends_with(") chore: step 55 by Jane Doe"), "{}", lines[1]);
    assert!(
        lines[49].ends_with(") chore: step 7 by Jane Doe"),
        "{}",
        lines[49]
    );
    assert!(
        body.contains(&format!(
            "… and 6 more: [the full comparison on GitHub]({}/acme/web/compare/{first}...{head}).",
            stack.sim.url()
        )),
        "{body}"
    );
}

#[test]
fn a_compare_github_refuses_leaves_the_release_pull_request_saying_so() {
    let stack = Stack::start(&web_policy(QA));
    let first = stack.green_main("v1");
    approve_qa(&stack, &first);
    stack.sim.inject_fault(
        "GET",
        "/repos/acme/web/compare/*",
        100,
        github_sim::Fault::Status {
            status: 404,
            headers: Vec::new(),
            message: "Not Found".into(),
        },
    );
    stack.green_main("v2");
    let body = qa_body(&stack);
    assert!(
        body.contains(&format!(
            "The changelog from `web@{}` (what **qa** runs) could not be read from GitHub: not found on GitHub: compare commits: Not Found",
            &first[..12]
        )),
        "{body}"
    );
    assert!(
        body.contains("<summary>Gitops changes"),
        "the rest of the body is there: {body}"
    );
}
