//! The parsed form of a YAML stream: each document's nodes with the exact bytes of every scalar.
//!
//! saphyr-parser reports spans in characters, and for a scalar the span starts at its node
//! properties (`!tag`, `&anchor`) and, for a quoted scalar, may run on over trailing blanks and a
//! comment. So the byte range of a scalar's own text is found here: the properties are skipped
//! and a quoted scalar ends at its closing quote.

use std::ops::Range;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::error::{DocumentId, EditError};

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub kind: NodeKind,
    /// Bytes of the node's text. For a scalar exactly its text (quotes included, properties
    /// excluded); for a collection from its start to its end event as the parser saw them.
    pub span: Range<usize>,
    /// Whether the node carries an anchor (`&name`), so that aliases may repeat it.
    pub anchored: bool,
}

#[derive(Debug, Clone)]
pub(crate) enum NodeKind {
    Scalar {
        value: String,
        style: ScalarStyle,
        tag: Option<String>,
    },
    Mapping(Vec<(Node, Node)>),
    Sequence(Vec<Node>),
    Alias,
}

impl Node {
    pub fn scalar(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// The value of `key` when this node is a mapping holding it once.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            NodeKind::Mapping(entries) => entries
                .iter()
                .find(|(k, _)| k.scalar() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Node::scalar)
    }

    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            NodeKind::Scalar { .. } => "a scalar",
            NodeKind::Mapping(_) => "a mapping",
            NodeKind::Sequence(_) => "a sequence",
            NodeKind::Alias => "an alias",
        }
    }
}

/// One document of a stream; `root` is `None` for a document with no content.
#[derive(Debug, Clone)]
pub(crate) struct Document {
    pub root: Option<Node>,
}

/// Parses a whole stream, refusing text that is not valid YAML.
pub(crate) fn parse(text: &str) -> Result<Vec<Document>, EditError> {
    let offsets = CharOffsets::new(text);
    let mut parser = Parser::new_from_str(text);
    let mut documents = Vec::new();
    // Open collections: the partial node and its start byte.
    let mut stack: Vec<Partial> = Vec::new();
    let mut current: Option<Document> = None;
    for event in &mut parser {
        let (event, span) = event.map_err(|e| EditError::Parse {
            line: e.marker().line(),
            column: e.marker().col() + 1,
            reason: e.info().to_owned(),
        })?;
        let node = match event {
            Event::DocumentStart(_) => {
                current = Some(Document { root: None });
                continue;
            }
            Event::DocumentEnd => {
                if let Some(doc) = current.take() {
                    documents.push(doc);
                }
                continue;
            }
            Event::MappingStart(anchor, _) => {
                stack.push(Partial {
                    start: offsets.byte(span.start.index()),
                    anchored: anchor != 0,
                    items: Vec::new(),
                    mapping: true,
                });
                continue;
            }
            Event::SequenceStart(anchor, _) => {
                stack.push(Partial {
                    start: offsets.byte(span.start.index()),
                    anchored: anchor != 0,
                    items: Vec::new(),
                    mapping: false,
                });
                continue;
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let Some(partial) = stack.pop() else {
                    return Err(internal("collection end without a start"));
                };
                let end = offsets.byte(span.end.index()).max(partial.start);
                let kind = if partial.mapping {
                    let mut entries = Vec::with_capacity(partial.items.len() / 2);
                    let mut items = partial.items.into_iter();
                    while let Some(key) = items.next() {
                        let Some(value) = items.next() else {
                            return Err(internal("mapping with a key and no value"));
                        };
                        entries.push((key, value));
                    }
                    NodeKind::Mapping(entries)
                } else {
                    NodeKind::Sequence(partial.items)
                };
                Node {
                    kind,
                    span: partial.start..end,
                    anchored: partial.anchored,
                }
            }
            Event::Scalar(value, style, anchor, tag) => Node {
                span: scalar_bytes(text, &offsets, span, style),
                kind: NodeKind::Scalar {
                    value: value.into_owned(),
                    style,
                    tag: tag.map(|t| format!("{}{}", t.handle, t.suffix)),
                },
                anchored: anchor != 0,
            },
            Event::Alias(_) => Node {
                kind: NodeKind::Alias,
                span: offsets.byte(span.start.index())..offsets.byte(span.end.index()),
                anchored: false,
            },
            Event::StreamStart | Event::StreamEnd | Event::Nothing => continue,
        };
        match stack.last_mut() {
            Some(parent) => parent.items.push(node),
            None => match current.as_mut() {
                Some(doc) => doc.root = Some(node),
                None => return Err(internal("node outside a document")),
            },
        }
    }
    Ok(documents)
}

struct Partial {
    start: usize,
    anchored: bool,
    items: Vec<Node>,
    mapping: bool,
}

fn internal(what: &str) -> EditError {
    EditError::Parse {
        line: 0,
        column: 0,
        reason: format!("unexpected parser events: {what}"),
    }
}

/// The bytes of a scalar's own text within the span the parser reported.
fn scalar_bytes(text: &str, offsets: &CharOffsets, span: Span, style: ScalarStyle) -> Range<usize> {
    let start = offsets.byte(span.start.index());
    let end = offsets.byte(span.end.index()).max(start);
    let bytes = text.as_bytes();
    // Skip node properties: `!tag` and `&anchor`, each followed by white space.
    let mut s = start;
    while s < end && (bytes[s] == b'!' || bytes[s] == b'&') {
        while s < end && !matches!(bytes[s], b' ' | b'\t' | b'\r' | b'\n') {
            s += 1;
        }
        while s < end && matches!(bytes[s], b' ' | b'\t' | b'\r' | b'\n') {
            s += 1;
        }
    }
    match style {
        ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => {
            let quote = if style == ScalarStyle::SingleQuoted {
                b'\''
            } else {
                b'"'
            };
            if bytes.get(s) != Some(&quote) {
                return s..end;
            }
            let mut i = s + 1;
            while i < bytes.len() {
                if quote == b'"' && bytes[i] == b'\\' {
                    i += 2;
                    continue;
                }
                if bytes[i] == quote {
                    if quote == b'\'' && bytes.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    return s..i + 1;
                }
                i += 1;
            }
            s..end
        }
        _ => s..end,
    }
}

/// Character index → byte offset, for text that is not all ASCII.
struct CharOffsets {
    /// `None` when every character is one byte.
    table: Option<Vec<usize>>,
    len: usize,
}

impl CharOffsets {
    fn new(text: &str) -> CharOffsets {
        let table = (!text.is_ascii()).then(|| text.char_indices().map(|(b, _)| b).collect());
        CharOffsets {
            table,
            len: text.len(),
        }
    }

    fn byte(&self, char_index: usize) -> usize {
        match &self.table {
            None => char_index.min(self.len),
            Some(table) => table.get(char_index).copied().unwrap_or(self.len),
        }
    }
}

impl DocumentId {
    pub(crate) fn of(index: usize, doc: &Document) -> DocumentId {
        let root = doc.root.as_ref();
        DocumentId {
            index,
            kind: root.and_then(|r| r.get_str("kind")).map(str::to_owned),
            name: root
                .and_then(|r| r.get("metadata"))
                .and_then(|m| m.get_str("name"))
                .map(str::to_owned),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalars(text: &str) -> Vec<(String, String)> {
        fn walk(text: &str, node: &Node, out: &mut Vec<(String, String)>) {
            match &node.kind {
                NodeKind::Scalar { value, .. } => {
                    out.push((value.clone(), text[node.span.clone()].to_owned()))
                }
                NodeKind::Mapping(entries) => {
                    for (k, v) in entries {
                        walk(text, k, out);
                        walk(text, v, out);
                    }
                }
                NodeKind::Sequence(items) => items.iter().for_each(|n| walk(text, n, out)),
                NodeKind::Alias => {}
            }
        }
        let mut out = Vec::new();
        for doc in parse(text).unwrap() {
            if let Some(root) = &doc.root {
                walk(text, root, &mut out);
            }
        }
        out
    }

    #[test]
    fn scalar_spans_are_the_scalar_text_alone() {
        let text = concat!(
            "a: !!str 123\n",
            "b: &anc v1\n",
            "c: !!str \"q\" # x\n",
            "e: \"x\\\"y\" \n",
            "f: 'it''s'  # c\n",
            "g: [ \"a\" , b ]\n",
            "ü: 'ö'\n",
        );
        let found = scalars(text);
        let spans: Vec<&str> = found.iter().map(|(_, s)| s.as_str()).collect();
        assert_eq!(
            spans,
            [
                "a",
                "123",
                "b",
                "v1",
                "c",
                "\"q\"",
                "e",
                "\"x\\\"y\"",
                "f",
                "'it''s'",
                "g",
                "\"a\"",
                "b",
                "ü",
                "'ö'"
            ]
        );
    }

    #[test]
    fn documents_are_split_and_identified() {
        let text = "kind: A\nmetadata: {name: x}\n---\n# only a comment\n---\nkind: B\n";
        let docs = parse(text).unwrap();
        assert_eq!(docs.len(), 3);
        assert!(docs[1].root.is_none() || docs[1].root.as_ref().unwrap().scalar() == Some(""));
        let id = DocumentId::of(0, &docs[0]);
        assert_eq!(id.to_string(), "document 1 (A/x)");
        assert_eq!(DocumentId::of(2, &docs[2]).to_string(), "document 3 (B/no name)");
    }

    #[test]
    fn invalid_yaml_is_refused_with_its_place() {
        let err = parse("a: [b\n c: d: e\n").unwrap_err();
        match err {
            EditError::Parse { line, .. } => assert_eq!(line, 2),
            other => panic!("{other:?}"),
        }
    }
}
