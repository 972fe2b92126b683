//! Dotted paths into a YAML document: `spec.values.image.tag`,
//! `spec.template.spec.containers[0].image`, `metadata.annotations."example.com/tag"`.

use std::fmt;

/// One step of a [`YamlPath`]: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A path from a document's root to one node.
///
/// Keys are separated by `.`; `[n]` indexes a sequence. A key holding `.`, `[`, `]`, `"` or
/// `'`, or one that is empty, is written quoted, either as `"a.b"` / `'a.b'` after a dot or as
/// `["a.b"]`; inside double quotes `\"` and `\\` escape, inside single quotes `''` is a quote.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct YamlPath {
    segments: Vec<Segment>,
}

/// Why a path string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path is empty")]
    Empty,
    #[error("path `{path}`: empty key at byte {at} (two dots, or a dot at an end)")]
    EmptyKey { path: String, at: usize },
    #[error("path `{path}`: unclosed `{open}` opened at byte {at}")]
    Unclosed { path: String, at: usize, open: char },
    #[error("path `{path}`: `[{index}]` at byte {at} is not a sequence index (digits) nor a quoted key")]
    BadIndex { path: String, at: usize, index: String },
    #[error("path `{path}`: unexpected `{found}` at byte {at}")]
    Unexpected { path: String, at: usize, found: char },
}

impl YamlPath {
    /// Parses a dotted path; see the type's documentation for the syntax.
    pub fn parse(spec: &str) -> Result<YamlPath, PathError> {
        if spec.trim().is_empty() {
            return Err(PathError::Empty);
        }
        let err_path = || spec.to_owned();
        let bytes = spec.as_bytes();
        let mut segments = Vec::new();
        let mut i = 0;
        // True where a key must start: at the beginning and after a dot.
        let mut want_key = true;
        while i < bytes.len() {
            match bytes[i] {
                b'[' => {
                    let open = i;
                    i += 1;
                    if i < bytes.len() && (bytes[i] == b'"' || bytes[i] == b'\'') {
                        let (key, next) = quoted(spec, i)?;
                        i = next;
                        if i >= bytes.len() || bytes[i] != b']' {
                            return Err(PathError::Unclosed {
                                path: err_path(),
                                at: open,
                                open: '[',
                            });
                        }
                        segments.push(Segment::Key(key));
                    } else {
                        let close =
                            spec[i..]
                                .find(']')
                                .map(|n| i + n)
                                .ok_or_else(|| PathError::Unclosed {
                                    path: err_path(),
                                    at: open,
                                    open: '[',
                                })?;
                        let inner = &spec[i..close];
                        let index = (!inner.is_empty() && inner.bytes().all(|b| b.is_ascii_digit()))
                            .then(|| inner.parse::<usize>().ok())
                            .flatten()
                            .ok_or_else(|| PathError::BadIndex {
                                path: err_path(),
                                at: open,
                                index: inner.to_owned(),
                            })?;
                        segments.push(Segment::Index(index));
                        i = close;
                    }
                    i += 1; // the `]`
                    want_key = false;
                }
                b'.' => {
                    if want_key {
                        return Err(PathError::EmptyKey {
                            path: err_path(),
                            at: i,
                        });
                    }
                    want_key = true;
                    i += 1;
                    if i == bytes.len() {
                        return Err(PathError::EmptyKey {
                            path: err_path(),
                            at: i,
                        });
                    }
                }
                b'"' | b'\'' if want_key => {
                    let (key, next) = quoted(spec, i)?;
                    segments.push(Segment::Key(key));
                    i = next;
                    want_key = false;
                }
                c if want_key => {
                    let start = i;
                    while i < bytes.len() && !matches!(bytes[i], b'.' | b'[' | b']' | b'"' | b'\'') {
                        i += 1;
                    }
                    if i == start {
                        return Err(PathError::Unexpected {
                            path: err_path(),
                            at: i,
                            found: char::from(c),
                        });
                    }
                    if i < bytes.len() && matches!(bytes[i], b']' | b'"' | b'\'') {
                        return Err(PathError::Unexpected {
                            path: err_path(),
                            at: i,
                            found: char::from(bytes[i]),
                        });
                    }
                    segments.push(Segment::Key(spec[start..i].to_owned()));
                    want_key = false;
                }
                _ => {
                    let found = spec[i..].chars().next().unwrap_or('?');
                    return Err(PathError::Unexpected {
                        path: err_path(),
                        at: i,
                        found,
                    });
                }
            }
        }
        Ok(YamlPath { segments })
    }

    /// A path from segments built in code (no parsing, so no key needs quoting).
    pub fn from_segments(segments: Vec<Segment>) -> Option<YamlPath> {
        (!segments.is_empty()).then_some(YamlPath { segments })
    }

    /// The one-key path `key` (no parsing, so the key needs no quoting).
    pub fn key(key: &str) -> YamlPath {
        YamlPath {
            segments: vec![Segment::Key(key.to_owned())],
        }
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// This path with one more segment.
    pub fn join(&self, segment: Segment) -> YamlPath {
        let mut segments = self.segments.clone();
        segments.push(segment);
        YamlPath { segments }
    }

    /// The path written back in the syntax [`YamlPath::parse`] reads.
    pub(crate) fn display_prefix(segments: &[Segment]) -> String {
        let mut out = String::new();
        for (n, segment) in segments.iter().enumerate() {
            match segment {
                Segment::Index(i) => {
                    out.push('[');
                    out.push_str(&i.to_string());
                    out.push(']');
                }
                Segment::Key(key) => {
                    if n > 0 {
                        out.push('.');
                    }
                    if key.is_empty() || key.contains(['.', '[', ']', '"', '\'']) || key.trim() != key {
                        out.push('"');
                        for c in key.chars() {
                            if c == '"' || c == '\\' {
                                out.push('\\');
                            }
                            out.push(c);
                        }
                        out.push('"');
                    } else {
                        out.push_str(key);
                    }
                }
            }
        }
        out
    }
}

impl fmt::Display for YamlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&YamlPath::display_prefix(&self.segments))
    }
}

impl std::str::FromStr for YamlPath {
    type Err = PathError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        YamlPath::parse(s)
    }
}

/// Reads a quoted key starting at `start` (the quote); returns the key and the byte after the
/// closing quote.
fn quoted(spec: &str, start: usize) -> Result<(String, usize), PathError> {
    let bytes = spec.as_bytes();
    let quote = bytes[start];
    let mut key = String::new();
    let mut i = start + 1;
    let unclosed = || PathError::Unclosed {
        path: spec.to_owned(),
        at: start,
        open: char::from(quote),
    };
    loop {
        let c = spec[i..].chars().next().ok_or_else(unclosed)?;
        let len = c.len_utf8();
        if quote == b'"' && c == '\\' {
            let escaped = spec[i + 1..].chars().next().ok_or_else(unclosed)?;
            if escaped != '"' && escaped != '\\' {
                return Err(PathError::Unexpected {
                    path: spec.to_owned(),
                    at: i + 1,
                    found: escaped,
                });
            }
            key.push(escaped);
            i += 1 + escaped.len_utf8();
        } else if c == char::from(quote) {
            if quote == b'\'' && bytes.get(i + 1) == Some(&b'\'') {
                key.push('\'');
                i += 2;
            } else {
                return Ok((key, i + 1));
            }
        } else {
            key.push(c);
            i += len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(path: &YamlPath) -> Vec<String> {
        path.segments()
            .iter()
            .map(|s| match s {
                Segment::Key(k) => format!("k:{k}"),
                Segment::Index(i) => format!("i:{i}"),
            })
            .collect()
    }

    #[test]
    fn dotted_keys_and_indexes() {
        let p = YamlPath::parse("spec.template.spec.containers[0].image").unwrap();
        assert_eq!(
            keys(&p),
            ["k:spec", "k:template", "k:spec", "k:containers", "i:0", "k:image"]
        );
        assert_eq!(p.to_string(), "spec.template.spec.containers[0].image");
        let p = YamlPath::parse("images[12][3]").unwrap();
        assert_eq!(keys(&p), ["k:images", "i:12", "i:3"]);
        let p = YamlPath::parse("[1].name").unwrap();
        assert_eq!(keys(&p), ["i:1", "k:name"]);
    }

    #[test]
    fn quoted_keys() {
        let p = YamlPath::parse(r#"metadata.annotations."example.com/tag".x"#).unwrap();
        assert_eq!(
            keys(&p),
            ["k:metadata", "k:annotations", "k:example.com/tag", "k:x"]
        );
        assert_eq!(p.to_string(), r#"metadata.annotations."example.com/tag".x"#);
        let p = YamlPath::parse(r#"a["b.c"]['it''s'][2]"#).unwrap();
        assert_eq!(keys(&p), ["k:a", "k:b.c", "k:it's", "i:2"]);
        let p = YamlPath::parse(r#""say \"hi\" \\ ok""#).unwrap();
        assert_eq!(keys(&p), [r#"k:say "hi" \ ok"#]);
        assert_eq!(YamlPath::parse(&p.to_string()).unwrap(), p);
        let p = YamlPath::parse(r#"a."".b"#).unwrap();
        assert_eq!(keys(&p), ["k:a", "k:", "k:b"]);
        assert_eq!(p.to_string(), r#"a."".b"#);
        // Keys may hold spaces, slashes, colons and non-ASCII text unquoted.
        let p = YamlPath::parse("data.app config:v2/ü").unwrap();
        assert_eq!(keys(&p), ["k:data", "k:app config:v2/ü"]);
    }

    #[test]
    fn malformed_paths_are_refused() {
        assert_eq!(YamlPath::parse(""), Err(PathError::Empty));
        assert_eq!(YamlPath::parse("  "), Err(PathError::Empty));
        assert!(matches!(
            YamlPath::parse("a..b"),
            Err(PathError::EmptyKey { at: 2, .. })
        ));
        assert!(matches!(
            YamlPath::parse(".a"),
            Err(PathError::EmptyKey { at: 0, .. })
        ));
        assert!(matches!(
            YamlPath::parse("a."),
            Err(PathError::EmptyKey { at: 2, .. })
        ));
        assert!(matches!(
            YamlPath::parse("a[0"),
            Err(PathError::Unclosed { open: '[', .. })
        ));
        assert!(matches!(YamlPath::parse("a[x]"), Err(PathError::BadIndex { .. })));
        assert!(matches!(
            YamlPath::parse("a[-1]"),
            Err(PathError::BadIndex { .. })
        ));
        assert!(matches!(YamlPath::parse("a[]"), Err(PathError::BadIndex { .. })));
        assert!(matches!(
            YamlPath::parse(r#"a."b"#),
            Err(PathError::Unclosed { open: '"', .. })
        ));
        assert!(matches!(
            YamlPath::parse(r#"a["b"x]"#),
            Err(PathError::Unclosed { open: '[', .. })
        ));
        assert!(matches!(
            YamlPath::parse("a]b"),
            Err(PathError::Unexpected { found: ']', .. })
        ));
        assert!(matches!(
            YamlPath::parse("a[0]b"),
            Err(PathError::Unexpected { found: 'b', .. })
        ));
        assert!(matches!(
            YamlPath::parse(r#"ab"c""#),
            Err(PathError::Unexpected { found: '"', .. })
        ));
        assert!(matches!(
            YamlPath::parse(r#""a\n""#),
            Err(PathError::Unexpected { found: 'n', .. })
        ));
        let message = YamlPath::parse("a[x]").unwrap_err().to_string();
        assert!(message.contains("`[x]`"), "{message}");
    }
}
