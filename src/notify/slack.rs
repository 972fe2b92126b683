//! Slack incoming webhooks and generic JSON webhooks: escaping for mrkdwn, and a
//! fire-and-forget sender.
//!
//! An outage of the receiver must never hold a release up, so every POST runs on its own tokio
//! task with a short timeout and at most one retry. The webhook URL is a secret (anyone holding
//! it can post to the channel): it is never logged, and reqwest errors are stripped of it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::{Channel, Counters};

/// Escapes the three characters Slack's mrkdwn gives a meaning to (links, mentions such as
/// `<!channel>`), so user-controlled text is shown as written.
pub fn escape_mrkdwn(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes `s` for use inside a JSON string literal (without the quotes), so templates can
/// write `"text": "… {{ value }} …"` and still produce valid JSON.
pub fn escape_json_fragment(s: &str) -> String {
    let quoted = serde_json::Value::String(s.to_owned()).to_string();
    // `to_string` of a JSON string is always `"…"`; strip the quotes.
    quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or(&quoted)
        .to_owned()
}

/// Where and how messages are posted: a Slack incoming webhook or a generic webhook
/// (`channel` says which, for counters and logs).
#[derive(Clone)]
pub(crate) struct SlackSender {
    url: Arc<str>,
    channel: Channel,
    client: reqwest::Client,
    retry_delay: Duration,
    counters: Arc<Counters>,
    in_flight: Arc<AtomicUsize>,
}

impl fmt::Debug for SlackSender {
    // The URL is the credential: keep it out of `{:?}` too.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackSender")
            .field("channel", &self.channel)
            .field("url", &"<redacted>")
            .finish()
    }
}

impl SlackSender {
    /// `None` (with a warning) when the HTTP client cannot be built: the hook is then skipped.
    pub(crate) fn new(
        url: String,
        channel: Channel,
        timeout: Duration,
        counters: Arc<Counters>,
        in_flight: Arc<AtomicUsize>,
    ) -> Option<SlackSender> {
        let client = match reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(channel = channel.as_str(), error = %e.without_url(), "cannot build the HTTP client; these notifications are off");
                return None;
            }
        };
        Some(SlackSender {
            url: url.into(),
            channel,
            client,
            retry_delay: Duration::from_millis(200),
            counters,
            in_flight,
        })
    }

    /// Posts `body` in the background; returns at once. Outside a tokio runtime the message
    /// is dropped (and counted as failed) rather than blocking the caller.
    pub(crate) fn send(&self, kind: &'static str, body: String) {
        let handle = match tokio::runtime::Handle::try_current() {
            Ok(h) => h,
            Err(_) => {
                tracing::warn!(
                    kind,
                    channel = self.channel.as_str(),
                    "no tokio runtime; message dropped"
                );
                self.counters.failed(self.channel);
                return;
            }
        };
        let this = self.clone();
        this.in_flight.fetch_add(1, Ordering::SeqCst);
        handle.spawn(async move {
            let ok = this.post_with_one_retry(kind, body).await;
            if ok {
                this.counters.sent(this.channel);
            } else {
                this.counters.failed(this.channel);
            }
            this.in_flight.fetch_sub(1, Ordering::SeqCst);
        });
    }

    async fn post_with_one_retry(&self, kind: &'static str, body: String) -> bool {
        for attempt in 1..=2 {
            match self.post(&body).await {
                Ok(()) => return true,
                Err(reason) => {
                    tracing::warn!(kind, attempt, channel = self.channel.as_str(), %reason, "notification failed");
                    if attempt == 1 {
                        tokio::time::sleep(self.retry_delay).await;
                    }
                }
            }
        }
        false
    }

    async fn post(&self, body: &str) -> Result<(), String> {
        let response = self
            .client
            .post(&*self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_owned())
            .send()
            .await
            // `without_url`: reqwest's error text would otherwise carry the webhook URL.
            .map_err(|e| e.without_url().to_string())?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the {} answered {status}", self.channel.as_str()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mrkdwn_control_characters_are_escaped() {
        assert_eq!(
            escape_mrkdwn("<!channel> & <script>"),
            "&lt;!channel&gt; &amp; &lt;script&gt;"
        );
        assert_eq!(escape_mrkdwn("plain *bold*"), "plain *bold*");
    }

    #[test]
    fn json_fragments_keep_quotes_and_newlines_inside_the_string() {
        let frag = escape_json_fragment("say \"hi\"\nnow\\");
        let parsed: String = serde_json::from_str(&format!("\"{frag}\"")).unwrap();
        assert_eq!(parsed, "say \"hi\"\nnow\\");
    }
}
