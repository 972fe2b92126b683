//! What a user sees: a page loaded and rendered by headless Chromium (Debian's `chromium`).

use std::process::Command;

/// The DOM after Chromium loaded and rendered `url`.
pub fn rendered_dom(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .output()
        .expect("chromium must be installed (scripts/test installs Debian's chromium package)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The text of the first element whose opening tag contains `attrs`.
pub fn element<'a>(dom: &'a str, attrs: &str) -> &'a str {
    let start = dom
        .find(attrs)
        .unwrap_or_else(|| panic!("no element with {attrs} in:\n{dom}"));
    let body = &dom[start..];
    let open_end = body.find('>').unwrap() + 1;
    let close = body.find("</td>").or_else(|| body.find("</tr>")).unwrap();
    &body[open_end..close]
}
