//! Edit mode (design §16): a release changes named values in files the gitops repository
//! already holds, instead of rewriting `<env>/<app>/` from templates.
//!
//! The edits are applied with `auger-yaml-edit` to the files as the gitops branch tip holds
//! them, inside the writer's fetch → build → push loop, so a retry after a lost race edits the
//! new tip. Only files whose bytes changed are written; when none did, the release is
//! "unchanged" and nothing is committed. A missing file, path or image, or an ambiguous match,
//! refuses the whole release ([`Refused`], which the writer reports as its `Edit` error) before
//! anything is written.
//!
//! No `release.json` is written in edit mode: the commit's trailers record the release, and
//! the history reader needs nothing else.

use std::collections::BTreeMap;

use auger_yaml_edit::{
    DocSelector, YamlPath, get_kustomize_image, get_scalar, set_kustomize_image, set_scalar,
};

/// One change, values rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditOp {
    /// `newTag` and/or `digest` of the kustomization's `images:` entry `name`.
    KustomizeImage {
        name: String,
        tag: Option<String>,
        digest: Option<String>,
    },
    /// The scalar at `path` (in the document `select` picks, if given).
    YamlSet {
        path: YamlPath,
        value: String,
        select: Option<DocSelector>,
    },
}

/// An [`EditOp`] on one file, named by its path from the repository root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEdit {
    pub file: String,
    pub op: EditOp,
}

/// `<file>: image <name> newTag "<tag>"` / `<file>: <path> = "<value>" (in <kind>/<name>)`:
/// what `auger render` prints for an edit-mode environment.
impl std::fmt::Display for FileEdit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: ", self.file)?;
        match &self.op {
            EditOp::KustomizeImage { name, tag, digest } => {
                write!(f, "image {name}")?;
                if let Some(tag) = tag {
                    write!(f, " newTag {tag:?}")?;
                }
                if let Some(digest) = digest {
                    write!(f, " digest {digest:?}")?;
                }
                Ok(())
            }
            EditOp::YamlSet { path, value, select } => {
                write!(f, "{path} = {value:?}")?;
                match select {
                    Some(s) => write!(f, " (in the document of {s})"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// Why an edit cannot be applied: the file and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub file: String,
    pub reason: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "edit {}: {}", self.file, self.reason)
    }
}

fn refused<E: From<Refused>>(file: &str, reason: impl std::fmt::Display) -> E {
    E::from(Refused {
        file: file.to_owned(),
        reason: reason.to_string(),
    })
}

/// Applies `edits` to the files `read` returns (`None`: no such file). Returns the new bytes
/// of every file that changed, by path; an empty map means every value was already set.
/// (Re-exported as `gitops::apply_edits` for tools and tests.)
pub fn apply<E: From<Refused>>(
    edits: &[FileEdit],
    mut read: impl FnMut(&str) -> Result<Option<Vec<u8>>, E>,
) -> Result<BTreeMap<String, Vec<u8>>, E> {
    // Per file: the original text and the text after the edits so far, in first-edit order.
    let mut texts: BTreeMap<&str, (String, String)> = BTreeMap::new();
    for edit in edits {
        let file = edit.file.as_str();
        if !texts.contains_key(file) {
            let bytes = read(file)?.ok_or_else(|| refused(file, "no such file on the gitops branch"))?;
            let text = String::from_utf8(bytes).map_err(|_| refused(file, "not UTF-8 text"))?;
            texts.insert(file, (text.clone(), text));
        }
        let Some((_, current)) = texts.get_mut(file) else {
            continue;
        };
        let result = match &edit.op {
            EditOp::KustomizeImage { name, tag, digest } => {
                set_kustomize_image(current, name, tag.as_deref(), digest.as_deref())
            }
            EditOp::YamlSet { path, value, select } => set_scalar(current, path, value, select.as_ref()),
        };
        *current = result.map_err(|e| refused(file, e))?.text;
    }
    Ok(texts
        .into_iter()
        .filter(|(_, (old, new))| old != new)
        .map(|(file, (_, new))| (file.to_owned(), new.into_bytes()))
        .collect())
}

/// The values `edits` would set, as the files `read` returns hold them now: what a rollback
/// to the release these files belong to writes back. A value the file does not hold (a
/// `digest` that was never set, say) is refused: it cannot be written back.
pub(super) fn current_values<E: From<Refused>>(
    edits: &[FileEdit],
    mut read: impl FnMut(&str) -> Result<Option<Vec<u8>>, E>,
) -> Result<Vec<FileEdit>, E> {
    let mut texts: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Vec::with_capacity(edits.len());
    for edit in edits {
        let file = edit.file.as_str();
        if !texts.contains_key(file) {
            let bytes = read(file)?.ok_or_else(|| refused(file, "no such file in that release"))?;
            let text = String::from_utf8(bytes).map_err(|_| refused(file, "not UTF-8 text"))?;
            texts.insert(file.to_owned(), text);
        }
        let text = texts.get(file).map(String::as_str).unwrap_or_default();
        let op = match &edit.op {
            EditOp::KustomizeImage { name, tag, digest } => {
                let found = get_kustomize_image(text, name).map_err(|e| refused(file, e))?;
                let was = |wanted: &Option<String>, had: Option<String>, key: &str| match (wanted, had) {
                    (None, _) => Ok(None),
                    (Some(_), Some(v)) => Ok(Some(v)),
                    (Some(_), None) => Err(refused(
                        file,
                        format!("image `{name}` had no {key} in that release; it cannot be written back"),
                    )),
                };
                EditOp::KustomizeImage {
                    name: name.clone(),
                    tag: was(tag, found.new_tag, "newTag")?,
                    digest: was(digest, found.digest, "digest")?,
                }
            }
            EditOp::YamlSet { path, select, .. } => EditOp::YamlSet {
                path: path.clone(),
                value: get_scalar(text, path, select.as_ref()).map_err(|e| refused(file, e))?,
                select: select.clone(),
            },
        };
        out.push(FileEdit {
            file: file.to_owned(),
            op,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUSTOMIZATION: &str = "# staging overlay\nresources:\n  - ../../base\nimages:\n  - name: ghcr.io/acme/web\n    newTag: \"1.0\" # pinned by auger\n  - name: ghcr.io/acme/worker\n    newTag: v3\n";

    fn files(pairs: &[(&str, &str)]) -> impl FnMut(&str) -> Result<Option<Vec<u8>>, Refused> {
        let map: BTreeMap<String, Vec<u8>> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect();
        move |p| Ok(map.get(p).cloned())
    }

    fn image(file: &str, name: &str, tag: &str) -> FileEdit {
        FileEdit {
            file: file.into(),
            op: EditOp::KustomizeImage {
                name: name.into(),
                tag: Some(tag.into()),
                digest: None,
            },
        }
    }

    #[test]
    fn only_changed_files_come_back_and_several_edits_share_a_file() {
        let edits = [
            image("k.yaml", "ghcr.io/acme/web", "2.0"),
            image("k.yaml", "ghcr.io/acme/worker", "v3"),
        ];
        let out = apply(
            &edits,
            files(&[("k.yaml", KUSTOMIZATION), ("other.yaml", "a: 1\n")]),
        )
        .unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(
            String::from_utf8(out["k.yaml"].clone()).unwrap(),
            KUSTOMIZATION.replace("\"1.0\"", "\"2.0\"")
        );
        let same = [image("k.yaml", "ghcr.io/acme/web", "1.0")];
        assert!(
            apply(&same, files(&[("k.yaml", KUSTOMIZATION)]))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_missing_file_or_image_refuses_with_the_file_and_reason() {
        let err = apply(&[image("nope.yaml", "x", "1")], files(&[])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "edit nope.yaml: no such file on the gitops branch"
        );
        let err = apply(
            &[image("k.yaml", "ghcr.io/acme/wbe", "1")],
            files(&[("k.yaml", KUSTOMIZATION)]),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "edit k.yaml: image `ghcr.io/acme/wbe` is not in the kustomization's images (listed: ghcr.io/acme/web, ghcr.io/acme/worker)"
        );
    }

    #[test]
    fn current_values_read_what_a_rollback_writes_back() {
        let edits = [
            image("k.yaml", "ghcr.io/acme/web", "{{ artifact.sha }}"),
            FileEdit {
                file: "k.yaml".into(),
                op: EditOp::YamlSet {
                    path: YamlPath::parse("images[1].newTag").unwrap(),
                    value: "x".into(),
                    select: None,
                },
            },
        ];
        let values = current_values(&edits, files(&[("k.yaml", KUSTOMIZATION)])).unwrap();
        assert_eq!(values[0], image("k.yaml", "ghcr.io/acme/web", "1.0"));
        assert!(matches!(&values[1].op, EditOp::YamlSet { value, .. } if value == "v3"));
        let digest = FileEdit {
            file: "k.yaml".into(),
            op: EditOp::KustomizeImage {
                name: "ghcr.io/acme/web".into(),
                tag: None,
                digest: Some("sha256:x".into()),
            },
        };
        let err = current_values(&[digest], files(&[("k.yaml", KUSTOMIZATION)])).unwrap_err();
        assert!(err.to_string().contains("had no digest in that release"), "{err}");
    }
}
