//! Finds the lines of a comment that could hold a command: lines that start with `/` (after at
//! most 3 spaces) and that GitHub renders as plain text, not as code, a quote or HTML.
//!
//! This is a line-based approximation of CommonMark, deliberately erring towards *ignoring* a
//! line: a command that is quoted, shown as an example in code, or hidden in a comment must
//! never run. What it knows:
//! - fenced code (```` ``` ```` or `~~~`, length ≥ 3, also inside list items); the closing
//!   fence uses the same character and is at least as long; an unclosed fence runs to the end;
//! - indented code: any line indented 4 columns or more (tabs stop every 4 columns);
//! - block quotes: lines starting with `>` (an unprefixed line right after a quote counts as
//!   the writer's own, although CommonMark would continue the quote lazily: quote replies
//!   prefix every line);
//! - HTML comments `<!-- … -->`, also over several lines and in the middle of a line (but not
//!   inside a `code span`);
//! - HTML blocks that open with a container tag such as `<details>` at the start of a line,
//!   up to the matching close tag (nested tags of the same name are counted); an unclosed one
//!   hides the rest of the comment.

/// A line that may hold a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Candidate<'a> {
    /// 1-based line number in the comment body.
    pub line_no: usize,
    /// The line as written, without its line ending.
    pub raw: &'a str,
    /// What GitHub shows of the line: indentation and HTML comments removed. Starts with `/`.
    pub text: String,
}

/// Container tags whose HTML block we skip up to the close tag. Void elements (`<br>`, `<img>`,
/// `<hr>` …) are left out on purpose: they have no close tag and would hide the rest of the
/// comment.
const CONTAINER_TAGS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "center",
    "details",
    "dialog",
    "div",
    "dl",
    "fieldset",
    "figure",
    "footer",
    "form",
    "header",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "script",
    "section",
    "style",
    "summary",
    "table",
    "textarea",
    "ul",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fence {
    ch: u8,
    len: usize,
    /// The closing fence may be indented at most this many columns (3 more than the opening
    /// fence's column, so fences inside list items close too).
    max_indent: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Block {
    Normal,
    Fence(Fence),
    Comment,
    Html { tag: &'static str, depth: usize },
}

/// The candidate command lines of `body`, in order.
pub(super) fn command_lines(body: &str) -> Vec<Candidate<'_>> {
    let mut out = Vec::new();
    let mut block = Block::Normal;
    // `lines` splits on `\n` and strips a `\r` before it, so CRLF bodies work.
    for (idx, line) in body.lines().enumerate() {
        block = match block {
            Block::Normal => normal_line(line, idx + 1, &mut out),
            Block::Fence(f) if f.closes(line) => Block::Normal,
            Block::Fence(f) => Block::Fence(f),
            Block::Comment => {
                // Whatever follows `-->` on this line is not at the start of a line.
                if strip_comments(line, true).1 {
                    Block::Comment
                } else {
                    Block::Normal
                }
            }
            Block::Html { tag, depth } => {
                let (opens, closes) = tag_balance(line, tag);
                let open = depth + opens;
                if closes >= open {
                    Block::Normal
                } else {
                    Block::Html {
                        tag,
                        depth: open - closes,
                    }
                }
            }
        };
    }
    out
}

fn normal_line<'a>(line: &'a str, line_no: usize, out: &mut Vec<Candidate<'a>>) -> Block {
    if let Some(f) = fence_open(line) {
        return Block::Fence(f);
    }
    let (indent, rest) = indentation(line);
    if indent >= 4 || rest.starts_with('>') {
        // Indented code or a block quote: nothing on it counts, not even `<!--`.
        return Block::Normal;
    }
    let (visible, comment_open) = strip_comments(rest, false);
    if rest.starts_with('/') {
        out.push(Candidate {
            line_no,
            raw: line,
            text: visible,
        });
    }
    if comment_open {
        return Block::Comment;
    }
    if rest.starts_with('<')
        && let Some(tag) = container_tag(rest)
    {
        let (opens, closes) = tag_balance(rest, tag);
        if opens > closes {
            return Block::Html {
                tag,
                depth: opens - closes,
            };
        }
    }
    Block::Normal
}

/// The indentation of `line` in columns (tab stops every 4) and the rest of the line.
fn indentation(line: &str) -> (usize, &str) {
    let mut col = 0;
    for (i, c) in line.char_indices() {
        match c {
            ' ' => col += 1,
            '\t' => col = col / 4 * 4 + 4,
            _ => return (col, &line[i..]),
        }
    }
    (col, "")
}

/// `s` without a leading list marker (`-`, `*`, `+`, `1.`, `1)`) and the space after it.
fn strip_list_marker(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    let marker_len = match b.first()? {
        b'-' | b'*' | b'+' => 1,
        b'0'..=b'9' => {
            let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
            match b.get(digits) {
                Some(b'.' | b')') if digits <= 9 => digits + 1,
                _ => return None,
            }
        }
        _ => return None,
    };
    match b.get(marker_len) {
        // The marker is ASCII, so `marker_len` is a char boundary.
        Some(b' ' | b'\t') => Some(&s[marker_len..]),
        _ => None,
    }
}

/// The fence that `line` opens, if it is an opening code fence.
fn fence_open(line: &str) -> Option<Fence> {
    let (indent, mut rest) = indentation(line);
    let mut col = indent;
    let mut in_list = false;
    while let Some(after) = strip_list_marker(rest) {
        let (extra, r) = indentation(after);
        col += rest.len() - after.len() + extra;
        rest = r;
        in_list = true;
    }
    if !in_list && indent >= 4 {
        return None; // indented code, whose content is not a fence
    }
    let ch = *rest.as_bytes().first()?;
    if ch != b'`' && ch != b'~' {
        return None;
    }
    let len = rest.bytes().take_while(|&b| b == ch).count();
    // A backtick "fence" whose info string has a backtick is inline code (```x```).
    if len < 3 || (ch == b'`' && rest[len..].contains('`')) {
        return None;
    }
    Some(Fence {
        ch,
        len,
        max_indent: col + 3,
    })
}

impl Fence {
    fn closes(&self, line: &str) -> bool {
        let (indent, rest) = indentation(line);
        let n = rest.bytes().take_while(|&b| b == self.ch).count();
        indent <= self.max_indent && n >= self.len && rest[n..].trim().is_empty()
    }
}

/// Removes HTML comments from `line`, which starts inside a comment if `in_comment`. Returns
/// the text outside comments and whether a comment is still open at the end of the line.
fn strip_comments(line: &str, mut in_comment: bool) -> (String, bool) {
    let mut visible = String::new();
    let mut rest = line;
    loop {
        if in_comment {
            match rest.find("-->") {
                Some(i) => {
                    rest = &rest[i + 3..];
                    in_comment = false;
                }
                None => return (visible, true),
            }
        } else {
            match comment_start(rest) {
                Some(i) => {
                    visible.push_str(&rest[..i]);
                    // Keep the `--` of `<!--` so `<!-->` and `<!--->` (complete, empty
                    // comments in CommonMark) find their end.
                    rest = &rest[i + 2..];
                    in_comment = true;
                }
                None => {
                    visible.push_str(rest);
                    return (visible, false);
                }
            }
        }
    }
}

/// Byte offset of the first `<!--` in `s` that is not inside a code span.
fn comment_start(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let runs = backtick_runs(b);
    // A code span opened by run k ends at the next run of exactly as many backticks; without
    // one the backticks are literal. Precomputed so a line full of unmatched runs stays linear.
    let mut span_end = vec![None; runs.len()];
    let mut next_of_len = std::collections::HashMap::new();
    for (k, &(start, len)) in runs.iter().enumerate().rev() {
        span_end[k] = next_of_len.insert(len, start + len);
    }
    let mut pos = 0;
    let mut k = 0;
    loop {
        while runs.get(k).is_some_and(|&(start, _)| start < pos) {
            k += 1;
        }
        let (limit, end) = match runs.get(k) {
            Some(&(start, len)) => (start, span_end[k].unwrap_or(start + len)),
            None => (b.len(), b.len()),
        };
        // `<!--` has no backtick, so it lies wholly between two runs.
        if let Some(off) = b[pos..limit].windows(4).position(|w| w == b"<!--") {
            return Some(pos + off);
        }
        if limit == b.len() {
            return None;
        }
        pos = end;
    }
}

/// Every maximal run of backticks in `b`, as (start, length).
fn backtick_runs(b: &[u8]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'`' {
            let len = b[i..].iter().take_while(|&&c| c == b'`').count();
            runs.push((i, len));
            i += len;
        } else {
            i += 1;
        }
    }
    runs
}

/// The container tag that `s` (which starts with `<`) opens, if any.
fn container_tag(s: &str) -> Option<&'static str> {
    let b = s.as_bytes();
    let name = tag_name(b, 1);
    CONTAINER_TAGS
        .iter()
        .copied()
        .find(|t| t.as_bytes().eq_ignore_ascii_case(name))
}

/// The (possibly empty) tag name starting at byte `from`.
fn tag_name(b: &[u8], from: usize) -> &[u8] {
    let rest = b.get(from..).unwrap_or_default();
    let len = rest
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'-')
        .count();
    &rest[..len]
}

/// How many `<tag …>` open and `</tag>` close on `line` (ASCII case-insensitive).
/// Self-closing `<tag/>` counts as neither.
fn tag_balance(line: &str, tag: &str) -> (usize, usize) {
    let b = line.as_bytes();
    let (mut opens, mut closes) = (0, 0);
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'<' {
            i += 1;
            continue;
        }
        let closing = b.get(i + 1) == Some(&b'/');
        let name_at = if closing { i + 2 } else { i + 1 };
        let name = tag_name(b, name_at);
        i = name_at + name.len();
        if !name.eq_ignore_ascii_case(tag.as_bytes()) {
            continue;
        }
        if closing {
            closes += 1;
        } else {
            // An opening tag without `>` on this line has its attributes on the next lines.
            let self_closing = b[i..]
                .iter()
                .position(|&c| c == b'>')
                .is_some_and(|p| p > 0 && b[i + p - 1] == b'/');
            if !self_closing {
                opens += 1;
            }
        }
    }
    (opens, closes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(body: &str) -> Vec<(usize, String)> {
        command_lines(body)
            .into_iter()
            .map(|c| (c.line_no, c.text))
            .collect()
    }

    fn one(line_no: usize, text: &str) -> Vec<(usize, String)> {
        vec![(line_no, text.to_owned())]
    }

    #[test]
    fn plain_slash_lines_are_candidates_with_up_to_three_spaces() {
        assert_eq!(
            lines("hello\n/a\n /b\n   /c\n    /d\n\t/e\n  \t/f\nx /g"),
            vec![
                (2, "/a".into()),
                (3, "/b".into()),
                (4, "/c".into()),
                // 4 spaces, a tab, and spaces+tab reaching column 4 are indented code.
            ]
        );
    }

    #[test]
    fn crlf_line_endings_are_stripped() {
        assert_eq!(lines("hi\r\n/a b\r\n"), one(2, "/a b"));
    }

    #[test]
    fn backtick_and_tilde_fences_hide_their_content() {
        assert_eq!(lines("```\n/a\n```\n/b"), one(4, "/b"));
        assert_eq!(lines("~~~sh\n/a\n~~~\n/b"), one(4, "/b"));
    }

    #[test]
    fn closing_fence_must_match_char_and_length() {
        assert_eq!(lines("````\n/a\n```\n/b\n~~~~\n/c\n````\n/d"), one(8, "/d"));
        // A longer closing fence is fine; trailing spaces too.
        assert_eq!(lines("```\n/a\n````   \n/b"), one(4, "/b"));
        // Text after the closing fence makes it content.
        assert_eq!(lines("```\n/a\n``` x\n/b"), vec![]);
    }

    #[test]
    fn unclosed_fence_runs_to_the_end() {
        assert_eq!(lines("/a\n```\n/b\n/c"), one(1, "/a"));
    }

    #[test]
    fn fence_inside_list_item_hides_its_indented_content() {
        assert_eq!(lines("- step:\n  ```\n  /a\n  ```\n/b"), one(5, "/b"));
        assert_eq!(lines("1. x\n   ~~~\n   /a\n   ~~~\n/b"), one(5, "/b"));
    }

    #[test]
    fn inline_triple_backticks_are_not_a_fence() {
        assert_eq!(lines("```x```\n/a"), one(2, "/a"));
    }

    #[test]
    fn indented_four_spaces_is_not_a_fence() {
        assert_eq!(lines("    ```\n/a"), one(2, "/a"));
    }

    #[test]
    fn block_quotes_are_ignored() {
        assert_eq!(lines("> /a\n>/b\n   > /c\n/d"), one(4, "/d"));
    }

    #[test]
    fn html_comments_hide_lines() {
        assert_eq!(lines("<!-- /a -->\n/b"), one(2, "/b"));
        assert_eq!(lines("<!--\n/a\n/b\n-->\n/c"), one(5, "/c"));
        assert_eq!(lines("text <!-- starts here\n/a\n--> /b\n/c"), one(4, "/c"));
        // Unclosed comment: to the end.
        assert_eq!(lines("<!--\n/a"), vec![]);
    }

    #[test]
    fn comment_inside_command_line_is_removed() {
        assert_eq!(lines("/a b <!-- note --> c"), one(1, "/a b  c"));
        assert_eq!(
            lines("/a b <!-- open\n/x\n-->\n/c"),
            vec![(1, "/a b ".into()), (4, "/c".into())]
        );
    }

    #[test]
    fn empty_comments_close_themselves() {
        assert_eq!(
            lines("<!-->\n/a\n<!--->\n/b"),
            vec![(2, "/a".into()), (4, "/b".into())]
        );
    }

    #[test]
    fn comment_marker_inside_code_span_is_text() {
        assert_eq!(lines("use `<!--` to hide\n/a"), one(2, "/a"));
        assert_eq!(lines("``x ` <!-- ``\n/a"), one(2, "/a"));
        // An unmatched backtick is literal, so the comment after it counts.
        assert_eq!(lines("` <!--\n/a\n-->"), vec![]);
        // After a closed code span, a comment counts again.
        assert_eq!(lines("`a` <!--\n/a\n-->"), vec![]);
        assert_eq!(lines("`` ` `` ``` <!--\n/a\n-->"), vec![]);
        assert_eq!(lines("`` <!-- ` `` x\n/a"), one(2, "/a"));
    }

    #[test]
    fn details_block_is_ignored_until_closed() {
        let body = "<details>\n<summary>log</summary>\n\n/a\n\n</details>\n/b";
        assert_eq!(lines(body), one(7, "/b"));
    }

    #[test]
    fn nested_same_tags_are_counted() {
        let body = "<div>\n<div>\n</div>\n/a\n</div>\n/b";
        assert_eq!(lines(body), one(6, "/b"));
    }

    #[test]
    fn one_line_and_void_html_do_not_open_a_block() {
        assert_eq!(lines("<details><summary>x</summary></details>\n/a"), one(2, "/a"));
        assert_eq!(lines("<br>\n<img src=x>\n<div/>\n/a"), one(4, "/a"));
        assert_eq!(lines("<DETAILS>\n/a\n</Details>\n/b"), one(4, "/b"));
    }

    #[test]
    fn html_tag_with_attributes_on_next_line() {
        assert_eq!(lines("<details\n  open>\n/a\n</details>\n/b"), one(5, "/b"));
    }

    #[test]
    fn tag_names_must_match_exactly() {
        // `<details-x>` is not `<details>`; `<pre>` is not `<p>`.
        assert_eq!(lines("<details-x>\n/a"), one(2, "/a"));
        assert_eq!(lines("<p>\n<pre>\n/a\n</pre>\n</p>\n/b"), one(6, "/b"));
    }

    #[test]
    fn helpers_do_not_panic_on_multibyte_text() {
        for s in ["é", "<é", "</", "<", "`", "<!-", "1.", "1.é", "\t", "- ```é"] {
            let _ = command_lines(s);
            let _ = tag_balance(s, "div");
            let _ = fence_open(s);
        }
    }
}
