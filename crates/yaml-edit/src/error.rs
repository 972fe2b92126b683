use crate::{DocSelector, PathError};

/// Why an edit or a read was refused. Every refusal leaves the text as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("not valid YAML at line {line}, column {column}: {reason}")]
    Parse {
        line: usize,
        column: usize,
        reason: String,
    },
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("the file has no document{}", selector_suffix(.selector))]
    NoDocument { selector: Option<DocSelector> },
    #[error("`{path}` not found: {}", missing_reason(.deepest, .deepest_is, .missing))]
    PathNotFound {
        path: String,
        /// The longest prefix of the path that exists (empty: not even the first key).
        deepest: String,
        /// What the deepest node is ("a mapping", "a sequence", "a scalar").
        deepest_is: &'static str,
        /// The key or index that the deepest node does not have.
        missing: String,
    },
    #[error("`{path}` is in {}; choose one by kind and/or metadata.name", counted(.documents))]
    Ambiguous {
        path: String,
        documents: Vec<DocumentId>,
    },
    #[error("`{path}` is {found}, not a scalar")]
    NotScalar { path: String, found: &'static str },
    #[error("`{path}` runs through the alias at `{at}`; editing it would change the anchored node")]
    ThroughAlias { path: String, at: String },
    #[error("`{path}`: the key `{key}` appears more than once in one mapping")]
    DuplicateKey { path: String, key: String },
    #[error("`{path}` cannot be rewritten in place: {reason}")]
    Unsupported { path: String, reason: String },
    #[error("no document matches {selector} (documents: {})", list(.documents))]
    SelectorMatchesNothing {
        selector: DocSelector,
        documents: Vec<DocumentId>,
    },
    #[error("{selector} matches {}; add kind or metadata.name", counted(.documents))]
    SelectorAmbiguous {
        selector: DocSelector,
        documents: Vec<DocumentId>,
    },
    #[error("image `{name}` is not in the kustomization's images ({})", names_listed(.listed))]
    ImageNotListed { name: String, listed: Vec<String> },
    #[error("image `{name}` is listed {count} times in the kustomization's images")]
    ImageListedTwice { name: String, count: usize },
    #[error("the file has no kustomization `images:` list")]
    NoImagesList,
    #[error("nothing to set: neither a tag nor a digest was given")]
    NothingToSet,
    #[error("`{path}`: the edit did not read back as intended ({reason}); nothing was changed")]
    Unverified { path: String, reason: String },
}

fn selector_suffix(selector: &Option<DocSelector>) -> String {
    match selector {
        Some(s) => format!(" matching {s}"),
        None => String::new(),
    }
}

fn missing_reason(deepest: &str, deepest_is: &str, missing: &str) -> String {
    if deepest.is_empty() {
        format!("the document ({deepest_is}) has no `{missing}`")
    } else {
        format!("`{deepest}` exists ({deepest_is}) but has no `{missing}`")
    }
}

fn counted(documents: &[DocumentId]) -> String {
    format!("{} documents ({})", documents.len(), list(documents))
}

fn names_listed(names: &[String]) -> String {
    if names.is_empty() {
        "it lists none".to_owned()
    } else {
        format!("listed: {}", names.join(", "))
    }
}

fn list(documents: &[DocumentId]) -> String {
    documents
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The kind and `metadata.name` of a document, and its place in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentId {
    /// 0-based position of the document in the file.
    pub index: usize,
    pub kind: Option<String>,
    pub name: Option<String>,
}

impl std::fmt::Display for DocumentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "document {} ({}/{})",
            self.index + 1,
            self.kind.as_deref().unwrap_or("no kind"),
            self.name.as_deref().unwrap_or("no name")
        )
    }
}
