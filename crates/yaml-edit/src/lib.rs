//! In-place edits of YAML files for auger's `edit` steps: replace named scalars and keep every
//! other byte (comments, key order, quoting, indentation, blank lines, other documents).
//!
//! Parsing is saphyr-parser's (YAML 1.2); the exact bytes of each scalar are found from its
//! events, the new text is spliced in, and the result is parsed again and compared with the old
//! document: an edit that would change anything but the named values is refused. See
//! `docs/decisions/0018-yaml-editing.md` and this crate's README for the guarantees and limits.

mod edit;
mod error;
mod kustomize;
mod path;
mod scan;
mod style;
mod tree;

pub use edit::{DocSelector, Edit, documents, get_scalar, set_scalar};
pub use error::DocumentId;
pub use error::EditError;
pub use kustomize::{KustomizeImage, get_kustomize_image, set_kustomize_image};
pub use path::{PathError, Segment, YamlPath};
pub use scan::{FoundImage, ImageSource, scan_images, split_image};
