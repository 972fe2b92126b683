//! What a user sees: a page loaded and rendered by headless Chromium (Debian's `chromium`).

use std::process::Command;

/// Headless, sandbox-free in a container, and quiet: no first-run, network or update chatter.
const CHROMIUM_FLAGS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// The DOM after Chromium loaded and rendered `url`.
pub fn rendered_dom(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("chromium")
        .args(CHROMIUM_FLAGS)
        .arg("--dump-dom")
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .output()
        .expect("chromium must be installed (scripts/test installs Debian's chromium package)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The inner HTML of the first element whose opening tag contains `attrs`, up to the first
/// closing tag of the same name (elements nested in one of their own kind are not supported).
pub fn element<'a>(dom: &'a str, attrs: &str) -> &'a str {
    let at = dom
        .find(attrs)
        .unwrap_or_else(|| panic!("no element with {attrs} in:\n{dom}"));
    let open = dom[..at].rfind('<').unwrap();
    let name: String = dom[open + 1..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    let body = &dom[at..];
    let open_end = body.find('>').unwrap() + 1;
    let close = body
        .find(&format!("</{name}>"))
        .unwrap_or_else(|| panic!("no </{name}> after {attrs}"));
    &body[open_end..close]
}

/// A headless Chromium driven over the DevTools protocol (`--remote-debugging-pipe`: JSON
/// messages ending in NUL on file descriptors 3 and 4), for pages a person clicks through:
/// it keeps cookies between pages, follows redirects and submits forms as a browser does.
pub struct Browser {
    child: std::process::Child,
    to_chrome: std::fs::File,
    from_chrome: std::io::BufReader<std::fs::File>,
    next_id: u64,
    session: String,
    _profile: tempfile::TempDir,
}

fn pipe() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    }
}

const WAIT: std::time::Duration = std::time::Duration::from_secs(30);

impl Browser {
    pub fn start() -> Browser {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let profile = tempfile::tempdir().unwrap();
        let (chrome_reads, we_write) = pipe();
        let (we_read, chrome_writes) = pipe();
        let (r, w) = (chrome_reads.as_raw_fd(), chrome_writes.as_raw_fd());
        let mut command = Command::new("chromium");
        command
            .args(CHROMIUM_FLAGS)
            .arg("--remote-debugging-pipe")
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(move || {
                if libc::dup2(r, 3) < 0 || libc::dup2(w, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .expect("chromium must be installed (scripts/test installs Debian's chromium package)");
        drop((chrome_reads, chrome_writes));
        let mut browser = Browser {
            child,
            to_chrome: std::fs::File::from(we_write),
            from_chrome: std::io::BufReader::new(std::fs::File::from(we_read)),
            next_id: 0,
            session: String::new(),
            _profile: profile,
        };
        let target = browser.call(
            "Target.createTarget",
            serde_json::json!({"url": "about:blank"}),
            false,
        );
        let target_id = target["targetId"].as_str().unwrap().to_owned();
        let attached = browser.call(
            "Target.attachToTarget",
            serde_json::json!({"targetId": target_id, "flatten": true}),
            false,
        );
        browser.session = attached["sessionId"].as_str().unwrap().to_owned();
        browser
    }

    /// Sends one command (to the page when `page`, else to the browser) and returns its result.
    fn call(&mut self, method: &str, params: serde_json::Value, page: bool) -> serde_json::Value {
        use std::io::{BufRead, Write};
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = serde_json::json!({"id": id, "method": method, "params": params});
        if page {
            msg["sessionId"] = serde_json::json!(self.session);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.to_chrome.write_all(&bytes).unwrap();
        loop {
            let mut buf = Vec::new();
            let n = self.from_chrome.read_until(0, &mut buf).unwrap();
            assert!(n > 0, "chromium closed the DevTools pipe");
            buf.pop();
            let answer: serde_json::Value = serde_json::from_slice(&buf).unwrap();
            if answer["id"].as_u64() == Some(id) {
                if let Some(e) = answer.get("error") {
                    panic!("{method}: {e}");
                }
                return answer["result"].clone();
            }
        }
    }

    /// The value of a JavaScript expression in the page.
    pub fn eval(&mut self, expression: &str) -> serde_json::Value {
        let r = self.call(
            "Runtime.evaluate",
            serde_json::json!({"expression": expression, "returnByValue": true}),
            true,
        );
        r["result"]["value"].clone()
    }

    /// Marks the current document, runs `act`, and waits until another document has loaded.
    fn navigating(&mut self, act: impl FnOnce(&mut Browser)) {
        self.eval("window.__augerOld = true");
        act(self);
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let state = self.eval("window.__augerOld === true ? 'old' : document.readyState");
            if state == "complete" {
                return;
            }
            if std::time::Instant::now() > deadline {
                let (url, dom) = (self.url(), self.dom());
                panic!("no page loaded within {WAIT:?} (state {state}, at {url}):\n{dom}");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Loads `url` (following redirects) and waits for it.
    pub fn goto(&mut self, url: &str) {
        self.navigating(|b| {
            b.call("Page.navigate", serde_json::json!({"url": url}), true);
        });
    }

    /// Clicks the element `selector` names, which loads another page (a link, a submit
    /// button), and waits for that page.
    pub fn click(&mut self, selector: &str) {
        let script = format!(
            "(() => {{ const e = document.querySelector({}); if (!e) return false; e.click(); return true; }})()",
            serde_json::json!(selector)
        );
        // The marker goes on the old document before the click, or a fast load would get it.
        self.navigating(|b| {
            let found = b.eval(&script);
            if found != true {
                let dom = b.dom();
                panic!("no {selector} on:\n{dom}");
            }
        });
    }

    /// Sets the value of the form field `selector` names.
    pub fn fill(&mut self, selector: &str, value: &str) {
        let done = self.eval(&format!(
            "(() => {{ const e = document.querySelector({}); if (!e) return false; e.value = {}; return true; }})()",
            serde_json::json!(selector),
            serde_json::json!(value)
        ));
        assert_eq!(done, true, "no {selector}");
    }

    /// The current page's DOM.
    pub fn dom(&mut self) -> String {
        self.eval("document.documentElement.outerHTML")
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn url(&mut self) -> String {
        self.eval("location.href").as_str().unwrap_or_default().to_owned()
    }

    /// The browser's cookies: (name, value, httpOnly, sameSite).
    pub fn cookies(&mut self) -> Vec<(String, String, bool, String)> {
        let r = self.call("Storage.getCookies", serde_json::json!({}), false);
        r["cookies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_owned(),
                    c["value"].as_str().unwrap().to_owned(),
                    c["httpOnly"].as_bool().unwrap_or(false),
                    c["sameSite"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
