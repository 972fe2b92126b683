//! Texts made fit for a committed snapshot: what differs between runs (commit ids, comment and
//! pull request numbers, the simulator's port) replaced by names.

/// Values to replace in a text before it is compared with its snapshot.
#[derive(Default)]
pub struct Redactions(Vec<(String, String)>);

impl Redactions {
    pub fn new() -> Redactions {
        Redactions::default()
    }

    /// `value` reads `replacement`.
    pub fn value(mut self, value: impl Into<String>, replacement: impl Into<String>) -> Redactions {
        self.0.push((value.into(), replacement.into()));
        self
    }

    /// A commit: its full id reads `<name>`, its 12-digit short form `<name:12>`.
    pub fn commit(self, sha: &str, name: &str) -> Redactions {
        self.value(sha, format!("<{name}>"))
            .value(&sha[..12], format!("<{name}:12>"))
    }

    /// The marker by which auger's reply names the comment it answers.
    pub fn answering(self, comment: u64) -> Redactions {
        self.value(
            format!("<!-- auger:answer {comment} -->"),
            "<!-- auger:answer <comment> -->",
        )
    }

    /// `text` with every value replaced, longest first, so a full commit id goes before its
    /// short form.
    pub fn apply(&self, text: &str) -> String {
        let mut values: Vec<&(String, String)> = self.0.iter().collect();
        values.sort_by_key(|(value, _)| std::cmp::Reverse(value.len()));
        values.iter().fold(text.to_owned(), |text, (value, replacement)| {
            text.replace(value.as_str(), replacement)
        })
    }
}
