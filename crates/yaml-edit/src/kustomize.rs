//! `kustomize edit set image` for auger: set `newTag` / `digest` of one entry of a
//! kustomization's `images:` list, adding the key in the entry's own indentation when missing.

use crate::edit::{self, Edit, Shape};
use crate::error::EditError;
use crate::path::{Segment, YamlPath};
use crate::style;
use crate::tree::{self, Document, Node, NodeKind};

/// One entry of a kustomization's `images:` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KustomizeImage {
    pub name: String,
    pub new_name: Option<String>,
    pub new_tag: Option<String>,
    pub digest: Option<String>,
    /// The entry's path, `images[n]`.
    pub path: YamlPath,
}

/// The `images:` entry named `name`.
pub fn get_kustomize_image(text: &str, name: &str) -> Result<KustomizeImage, EditError> {
    let docs = tree::parse(text)?;
    let found = find_entry(&docs, name)?;
    let field = |key: &str| found.entry.get_str(key).map(str::to_owned);
    Ok(KustomizeImage {
        name: name.to_owned(),
        new_name: field("newName"),
        new_tag: field("newTag"),
        digest: field("digest"),
        path: found.path,
    })
}

/// Sets `newTag` and/or `digest` of the `images:` entry named `name`.
///
/// A key the entry lacks is added on a line of its own after the entry's last line, indented
/// like its other keys. A name the list does not hold is refused with the names it does hold.
/// `Edit::old` is the earlier value of the first field set (`newTag` when a tag is given),
/// empty when that key was absent.
pub fn set_kustomize_image(
    text: &str,
    name: &str,
    new_tag: Option<&str>,
    digest: Option<&str>,
) -> Result<Edit, EditError> {
    let fields: Vec<(&str, &str)> = [("newTag", new_tag), ("digest", digest)]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    if fields.is_empty() {
        return Err(EditError::NothingToSet);
    }
    let mut current = text.to_owned();
    let mut old = None;
    let mut changed = false;
    for (key, value) in fields {
        let docs = tree::parse(&current)?;
        let found = find_entry(&docs, name)?;
        let path = found.path.join(Segment::Key(key.to_owned()));
        let edit = if found.entry.get(key).is_some() {
            edit::set_scalar(&current, &path, value, None)?
        } else {
            insert_key(&current, &docs, &found, &path, key, value)?
        };
        old.get_or_insert(edit.old);
        changed |= edit.changed;
        current = edit.text;
    }
    Ok(Edit {
        text: current,
        old: old.unwrap_or_default(),
        changed,
    })
}

struct Found<'a> {
    doc: usize,
    entry: &'a Node,
    path: YamlPath,
}

fn find_entry<'a>(docs: &'a [Document], name: &str) -> Result<Found<'a>, EditError> {
    let mut lists = 0;
    let mut listed = Vec::new();
    let mut hits = Vec::new();
    for (doc_index, doc) in docs.iter().enumerate() {
        let Some(images) = doc.root.as_ref().and_then(|r| r.get("images")) else {
            continue;
        };
        let NodeKind::Sequence(entries) = &images.kind else {
            continue;
        };
        lists += 1;
        for (i, entry) in entries.iter().enumerate() {
            let Some(entry_name) = entry.get_str("name") else {
                continue;
            };
            listed.push(entry_name.to_owned());
            if entry_name == name {
                hits.push(Found {
                    doc: doc_index,
                    entry,
                    path: YamlPath::key("images").join(Segment::Index(i)),
                });
            }
        }
    }
    if lists == 0 {
        return Err(EditError::NoImagesList);
    }
    let count = hits.len();
    match hits.pop() {
        None => Err(EditError::ImageNotListed {
            name: name.to_owned(),
            listed,
        }),
        Some(found) if count == 1 => Ok(found),
        Some(_) => Err(EditError::ImageListedTwice {
            name: name.to_owned(),
            count,
        }),
    }
}

/// Adds `key: value` as the last key of the entry, on the line after the entry's last value.
fn insert_key(
    text: &str,
    docs: &[Document],
    found: &Found<'_>,
    path: &YamlPath,
    key: &str,
    value: &str,
) -> Result<Edit, EditError> {
    let unsupported = |reason: &str| EditError::Unsupported {
        path: path.to_string(),
        reason: reason.to_owned(),
    };
    let NodeKind::Mapping(entries) = &found.entry.kind else {
        return Err(unsupported("the image entry is not a mapping"));
    };
    let (Some((first_key, _)), Some((_, last_value))) = (entries.first(), entries.last()) else {
        return Err(unsupported("the image entry is empty"));
    };
    if text.as_bytes().get(found.entry.span.start) == Some(&b'{') {
        return Err(unsupported(
            "the image entry is a flow mapping ({…}); add the key by hand once",
        ));
    }
    if !matches!(last_value.kind, NodeKind::Scalar { .. }) || last_value.span.is_empty() {
        return Err(unsupported("the entry's last value is not a written scalar"));
    }
    let line_start = text[..first_key.span.start].rfind('\n').map_or(0, |n| n + 1);
    let prefix = &text[line_start..first_key.span.start];
    if !prefix.chars().all(|c| c == ' ' || c == '-') {
        return Err(unsupported(
            "the entry's first key does not start its line (after `- `)",
        ));
    }
    let indent = " ".repeat(prefix.chars().count());
    let rendered = if style::plain_safe(value) {
        value.to_owned()
    } else {
        style::double_quoted(value)
    };
    let mut out = String::with_capacity(text.len() + indent.len() + key.len() + value.len() + 4);
    match text[last_value.span.end..].find('\n') {
        Some(n) => {
            let at = last_value.span.end + n + 1;
            let eol = if text[..at].ends_with("\r\n") {
                "\r\n"
            } else {
                "\n"
            };
            out.push_str(&text[..at]);
            out.push_str(&format!("{indent}{key}: {rendered}{eol}"));
            out.push_str(&text[at..]);
        }
        None => {
            let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
            out.push_str(text);
            out.push_str(&format!("{eol}{indent}{key}: {rendered}"));
        }
    }
    let mut expected = edit::shapes(docs);
    match edit::shape_at(&mut expected[found.doc], found.path.segments()) {
        Some(Shape::Mapping(entries, _)) => entries.push((
            Shape::plain(key),
            match edit::shapes(&tree::parse(&format!("{key}: {rendered}"))?).pop() {
                Some(Shape::Mapping(mut e, _)) if e.len() == 1 => {
                    e.pop().map(|(_, v)| v).unwrap_or(Shape::Empty)
                }
                _ => Shape::Empty,
            },
        )),
        _ => return Err(unsupported("the image entry vanished from the parsed text")),
    }
    edit::verify(&out, &expected, path)?;
    Ok(Edit {
        text: out,
        old: String::new(),
        changed: true,
    })
}
