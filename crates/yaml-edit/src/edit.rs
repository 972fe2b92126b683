//! Reading and replacing one scalar at a path, and the check that an edit changed nothing else.

use std::fmt;

use saphyr_parser::ScalarStyle;

use crate::error::DocumentId;
use crate::error::EditError;
use crate::path::{Segment, YamlPath};
use crate::style;
use crate::tree::{self, Document, Node, NodeKind};

/// Picks one document of a multi-document file by `kind` and/or `metadata.name`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocSelector {
    pub kind: Option<String>,
    pub name: Option<String>,
}

impl DocSelector {
    pub fn matches(&self, id: &DocumentId) -> bool {
        self.kind.as_deref().is_none_or(|k| id.kind.as_deref() == Some(k))
            && self.name.as_deref().is_none_or(|n| id.name.as_deref() == Some(n))
    }
}

impl fmt::Display for DocSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.kind, &self.name) {
            (Some(k), Some(n)) => write!(f, "kind {k} and name {n}"),
            (Some(k), None) => write!(f, "kind {k}"),
            (None, Some(n)) => write!(f, "name {n}"),
            (None, None) => write!(f, "an empty selector"),
        }
    }
}

/// The outcome of an edit: the whole new text, the value it replaced, and whether anything
/// changed (`false` when the scalar already held the new value; then `text` is the input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub text: String,
    pub old: String,
    pub changed: bool,
}

/// Replaces the scalar at `path` with `new_value`, keeping every other byte of `text`.
///
/// Without a selector the path must exist in exactly one document of the file. The new value
/// is written in the old scalar's style where that reads back as the same string (see the
/// crate documentation), and the result is parsed again before it is returned: an edit that
/// would change anything but that scalar is refused.
pub fn set_scalar(
    text: &str,
    path: &YamlPath,
    new_value: &str,
    select: Option<&DocSelector>,
) -> Result<Edit, EditError> {
    let docs = tree::parse(text)?;
    let (doc_index, node) = locate(&docs, path, select)?;
    let (old, style, tag) = scalar_parts(node, path)?;
    if let Some(depth) = anchored_at(docs[doc_index].root.as_ref(), path.segments()) {
        return Err(EditError::Unsupported {
            path: path.to_string(),
            reason: format!(
                "`{}` has an anchor (&…), so its aliases elsewhere would change too",
                YamlPath::display_prefix(&path.segments()[..depth])
            ),
        });
    }
    if let Some(tag) = tag
        && !is_str_tag(tag)
    {
        return Err(EditError::Unsupported {
            path: path.to_string(),
            reason: format!("the scalar is tagged {tag}, not as a string"),
        });
    }
    if old == new_value {
        return Ok(Edit {
            text: text.to_owned(),
            old: old.to_owned(),
            changed: false,
        });
    }
    if node.span.is_empty() {
        return Err(EditError::Unsupported {
            path: path.to_string(),
            reason: "the key has no value written; write one by hand first".to_owned(),
        });
    }
    let rendered = style::render(new_value, style).ok_or_else(|| EditError::Unsupported {
        path: path.to_string(),
        reason: "a block scalar (| or >) is not rewritten".to_owned(),
    })?;
    let mut out = String::with_capacity(text.len() + rendered.len());
    out.push_str(&text[..node.span.start]);
    out.push_str(&rendered);
    out.push_str(&text[node.span.end..]);

    let chosen = style::chosen_style(new_value, style);
    let mut expected = shapes(&docs);
    let slot = shape_at(&mut expected[doc_index], path.segments());
    match slot {
        Some(Shape::Scalar { value, style, .. }) => {
            *value = new_value.to_owned();
            *style = chosen;
        }
        _ => {
            return Err(EditError::Unverified {
                path: path.to_string(),
                reason: "the scalar vanished from the parsed text".to_owned(),
            });
        }
    }
    verify(&out, &expected, path)?;
    Ok(Edit {
        text: out,
        old: old.to_owned(),
        changed: true,
    })
}

/// The string value of the scalar at `path`, found as [`set_scalar`] finds it.
pub fn get_scalar(text: &str, path: &YamlPath, select: Option<&DocSelector>) -> Result<String, EditError> {
    let docs = tree::parse(text)?;
    let (_, node) = locate(&docs, path, select)?;
    scalar_parts(node, path).map(|(value, _, _)| value.to_owned())
}

/// The kind and `metadata.name` of each document of `text`, in order.
pub fn documents(text: &str) -> Result<Vec<DocumentId>, EditError> {
    Ok(tree::parse(text)?
        .iter()
        .enumerate()
        .map(|(i, d)| DocumentId::of(i, d))
        .collect())
}

/// The length of the shortest prefix of `segments` whose node carries an anchor (the root is
/// prefix 0), if any node on the way does.
fn anchored_at(root: Option<&Node>, segments: &[Segment]) -> Option<usize> {
    let mut node = root?;
    if node.anchored {
        return Some(0);
    }
    for (depth, segment) in segments.iter().enumerate() {
        node = match (segment, &node.kind) {
            (Segment::Key(key), NodeKind::Mapping(entries)) => {
                &entries.iter().find(|(k, _)| k.scalar() == Some(key))?.1
            }
            (Segment::Index(i), NodeKind::Sequence(items)) => items.get(*i)?,
            _ => return None,
        };
        if node.anchored {
            return Some(depth + 1);
        }
    }
    None
}

fn is_str_tag(tag: &str) -> bool {
    tag == "tag:yaml.org,2002:str" || tag == "!!str"
}

fn scalar_parts<'a>(
    node: &'a Node,
    path: &YamlPath,
) -> Result<(&'a str, ScalarStyle, Option<&'a str>), EditError> {
    match &node.kind {
        NodeKind::Scalar { value, style, tag } => Ok((value, *style, tag.as_deref())),
        NodeKind::Alias => Err(EditError::ThroughAlias {
            path: path.to_string(),
            at: path.to_string(),
        }),
        _ => Err(EditError::NotScalar {
            path: path.to_string(),
            found: node.kind_name(),
        }),
    }
}

/// How far a path got in one document.
pub(crate) enum Resolved<'a> {
    Found(&'a Node),
    Missing { depth: usize, node_kind: &'static str },
    Alias { depth: usize },
    Duplicate { depth: usize },
}

impl Resolved<'_> {
    fn depth(&self) -> usize {
        match self {
            Resolved::Found(_) => usize::MAX,
            Resolved::Missing { depth, .. } | Resolved::Alias { depth } | Resolved::Duplicate { depth } => {
                *depth
            }
        }
    }
}

pub(crate) fn resolve<'a>(root: &'a Node, segments: &[Segment]) -> Resolved<'a> {
    let mut node = root;
    for (depth, segment) in segments.iter().enumerate() {
        let next = match (segment, &node.kind) {
            (_, NodeKind::Alias) => return Resolved::Alias { depth },
            (Segment::Key(key), NodeKind::Mapping(entries)) => {
                let mut hits = entries.iter().filter(|(k, _)| k.scalar() == Some(key));
                match (hits.next(), hits.next()) {
                    (Some(_), Some(_)) => return Resolved::Duplicate { depth },
                    (Some((_, value)), None) => Some(value),
                    (None, _) => None,
                }
            }
            (Segment::Index(i), NodeKind::Sequence(items)) => items.get(*i),
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => {
                return Resolved::Missing {
                    depth,
                    node_kind: node.kind_name(),
                };
            }
        }
    }
    Resolved::Found(node)
}

/// The one document and node `path` names, or the reason there is not exactly one.
pub(crate) fn locate<'a>(
    docs: &'a [Document],
    path: &YamlPath,
    select: Option<&DocSelector>,
) -> Result<(usize, &'a Node), EditError> {
    let ids: Vec<DocumentId> = docs
        .iter()
        .enumerate()
        .filter(|(_, d)| d.root.is_some())
        .map(|(i, d)| DocumentId::of(i, d))
        .collect();
    let candidates: Vec<&DocumentId> = match select {
        Some(selector) => {
            let matched: Vec<&DocumentId> = ids.iter().filter(|id| selector.matches(id)).collect();
            match matched.len() {
                0 => {
                    return Err(EditError::SelectorMatchesNothing {
                        selector: selector.clone(),
                        documents: ids.clone(),
                    });
                }
                1 => matched,
                _ => {
                    return Err(EditError::SelectorAmbiguous {
                        selector: selector.clone(),
                        documents: matched.into_iter().cloned().collect(),
                    });
                }
            }
        }
        None => ids.iter().collect(),
    };
    if candidates.is_empty() {
        return Err(EditError::NoDocument {
            selector: select.cloned(),
        });
    }
    let mut found = Vec::new();
    let mut best: Option<Resolved<'a>> = None;
    for id in candidates {
        let Some(root) = docs[id.index].root.as_ref() else {
            continue;
        };
        match resolve(root, path.segments()) {
            Resolved::Found(node) => found.push((id, node)),
            other => {
                if best.as_ref().is_none_or(|b| other.depth() > b.depth()) {
                    best = Some(other);
                }
            }
        }
    }
    match found.len() {
        1 => return Ok((found[0].0.index, found[0].1)),
        0 => {}
        _ => {
            return Err(EditError::Ambiguous {
                path: path.to_string(),
                documents: found.into_iter().map(|(id, _)| id.clone()).collect(),
            });
        }
    }
    let segments = path.segments();
    Err(match best {
        Some(Resolved::Alias { depth }) => EditError::ThroughAlias {
            path: path.to_string(),
            at: YamlPath::display_prefix(&segments[..depth]),
        },
        Some(Resolved::Duplicate { depth }) => EditError::DuplicateKey {
            path: path.to_string(),
            key: YamlPath::display_prefix(&segments[depth..=depth]),
        },
        Some(Resolved::Missing { depth, node_kind }) => EditError::PathNotFound {
            path: path.to_string(),
            deepest: YamlPath::display_prefix(&segments[..depth]),
            deepest_is: node_kind,
            missing: match &segments[depth] {
                Segment::Index(i) => format!("[{i}]"),
                key => YamlPath::display_prefix(std::slice::from_ref(key)),
            },
        },
        Some(Resolved::Found(_)) | None => EditError::NoDocument {
            selector: select.cloned(),
        },
    })
}

/// A parsed node without positions: what an edit must leave equal outside the edited places.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shape {
    Scalar {
        value: String,
        style: ScalarStyle,
        tag: Option<String>,
        anchored: bool,
    },
    Mapping(Vec<(Shape, Shape)>, bool),
    Sequence(Vec<Shape>, bool),
    Alias,
    Empty,
}

impl Shape {
    fn of(node: &Node) -> Shape {
        match &node.kind {
            NodeKind::Scalar { value, style, tag } => Shape::Scalar {
                value: value.clone(),
                style: *style,
                tag: tag.clone(),
                anchored: node.anchored,
            },
            NodeKind::Mapping(entries) => Shape::Mapping(
                entries
                    .iter()
                    .map(|(k, v)| (Shape::of(k), Shape::of(v)))
                    .collect(),
                node.anchored,
            ),
            NodeKind::Sequence(items) => {
                Shape::Sequence(items.iter().map(Shape::of).collect(), node.anchored)
            }
            NodeKind::Alias => Shape::Alias,
        }
    }

    pub(crate) fn plain(value: &str) -> Shape {
        Shape::Scalar {
            value: value.to_owned(),
            style: ScalarStyle::Plain,
            tag: None,
            anchored: false,
        }
    }
}

pub(crate) fn shapes(docs: &[Document]) -> Vec<Shape> {
    docs.iter()
        .map(|d| d.root.as_ref().map_or(Shape::Empty, Shape::of))
        .collect()
}

pub(crate) fn shape_at<'a>(shape: &'a mut Shape, segments: &[Segment]) -> Option<&'a mut Shape> {
    let mut current = shape;
    for segment in segments {
        current = match (segment, current) {
            (Segment::Key(key), Shape::Mapping(entries, _)) => entries
                .iter_mut()
                .find(|(k, _)| matches!(k, Shape::Scalar { value, .. } if value == key))
                .map(|(_, v)| v)?,
            (Segment::Index(i), Shape::Sequence(items, _)) => items.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(current)
}

/// Parses `new_text` and refuses it unless its documents equal `expected`.
pub(crate) fn verify(new_text: &str, expected: &[Shape], path: &YamlPath) -> Result<(), EditError> {
    let docs = tree::parse(new_text).map_err(|e| EditError::Unverified {
        path: path.to_string(),
        reason: format!("the edited text does not parse: {e}"),
    })?;
    let got = shapes(&docs);
    if got.len() != expected.len() {
        return Err(EditError::Unverified {
            path: path.to_string(),
            reason: format!("{} documents instead of {}", got.len(), expected.len()),
        });
    }
    if let Some(n) = got.iter().zip(expected).position(|(g, e)| g != e) {
        return Err(EditError::Unverified {
            path: path.to_string(),
            reason: format!("document {} changed beyond the edited value", n + 1),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The safety net itself: a text that differs from the expected documents anywhere but the
    /// intended change is refused.
    #[test]
    fn verify_refuses_any_other_difference() {
        let old = "a: 1\nb: 'x' # c\n---\nc: d\n";
        let path = YamlPath::parse("a").unwrap();
        let mut expected = shapes(&tree::parse(old).unwrap());
        if let Some(Shape::Scalar { value, .. }) = shape_at(&mut expected[0], path.segments()) {
            *value = "2".to_owned();
        }
        assert_eq!(
            verify("a: 2\nb: 'x' # other comment\n---\nc: d\n", &expected, &path),
            Ok(())
        );
        for wrong in [
            "a: 2\nb: \"x\"\n---\nc: d\n",  // another scalar's style
            "a: 2\nb: 'y'\n---\nc: d\n",    // another value
            "a: 3\nb: 'x'\n---\nc: d\n",    // the wrong new value
            "a: 2\nb: 'x'\n",               // a document lost
            "a: 2\nb: 'x'\n---\nc: [d]\n",  // structure
            "a: 2\nb: &k 'x'\n---\nc: d\n", // an anchor
            "a: [\n",                       // not YAML
        ] {
            let err = verify(wrong, &expected, &path).unwrap_err();
            assert!(matches!(err, EditError::Unverified { .. }), "{wrong:?}: {err:?}");
        }
    }
}
