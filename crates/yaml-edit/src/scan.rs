//! Finding where a gitops file names container images, for `auger init`.

use crate::error::DocumentId;
use crate::error::EditError;
use crate::path::{Segment, YamlPath};
use crate::tree::{self, Node, NodeKind};

/// Where in a file an image was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageSource {
    /// A kustomization's `images[n]` entry: edit it with `set_kustomize_image` by `name`.
    KustomizeImages,
    /// A `repository` / `tag` pair in Helm values (a Flux HelmRelease's `spec.values`, an Argo
    /// CD Application's `helm.valuesObject`): `path` is the tag.
    HelmValues,
    /// An `image: "repo:tag"` string in Helm values: `path` is the whole string.
    HelmValuesImageString,
    /// An Argo CD `helm.parameters[n]` entry whose name ends in `tag` (or `image`, holding
    /// `repo:tag`): `path` is its `value`.
    HelmParameter,
    /// An Argo CD `kustomize.images[n]` string (`repo:tag`, `name=repo:tag`).
    ArgoKustomizeImage,
    /// A workload's `containers[n].image` / `initContainers[n].image` string.
    Container,
}

/// One image reference found by [`scan_images`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundImage {
    pub document: DocumentId,
    pub source: ImageSource,
    /// The image's repository (kustomize: the entry's `name`), when the file says it.
    pub repository: Option<String>,
    pub tag: Option<String>,
    pub digest: Option<String>,
    /// The scalar an edit step changes: the tag, or the whole `repo:tag` string. For a
    /// kustomize entry, `newTag` (or `digest`, or `name` when it has neither).
    pub path: YamlPath,
    /// The scalar's current value.
    pub value: String,
}

/// Every image reference in `text`, document by document, in file order. Text that is not
/// YAML is refused; documents of other kinds simply yield nothing.
pub fn scan_images(text: &str) -> Result<Vec<FoundImage>, EditError> {
    let docs = tree::parse(text)?;
    let mut out = Vec::new();
    for (index, doc) in docs.iter().enumerate() {
        let Some(root) = doc.root.as_ref() else {
            continue;
        };
        let id = DocumentId::of(index, doc);
        let mut scan = Scan {
            id: &id,
            out: &mut out,
        };
        let kind = id.kind.as_deref().unwrap_or("");
        match kind {
            "Kustomization" | "" => scan.kustomization(root),
            "HelmRelease" => {
                if let Some(values) = root.get("spec").and_then(|s| s.get("values")) {
                    scan.values(values, &key_path(&["spec", "values"]));
                }
            }
            "Application" => scan.application(root),
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
                if let Some(pod) = root
                    .get("spec")
                    .and_then(|s| s.get("template"))
                    .and_then(|t| t.get("spec"))
                {
                    scan.pod(pod, &key_path(&["spec", "template", "spec"]));
                }
            }
            "CronJob" => {
                if let Some(pod) = root
                    .get("spec")
                    .and_then(|s| s.get("jobTemplate"))
                    .and_then(|j| j.get("spec"))
                    .and_then(|s| s.get("template"))
                    .and_then(|t| t.get("spec"))
                {
                    let prefix = key_path(&["spec", "jobTemplate", "spec", "template", "spec"]);
                    scan.pod(pod, &prefix);
                }
            }
            "Pod" => {
                if let Some(spec) = root.get("spec") {
                    scan.pod(spec, &key_path(&["spec"]));
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Splits `repo[:tag][@digest]` into its parts; the tag is after the last `:` that follows the
/// last `/`, so a registry port (`host:5000/app`) is not taken for a tag.
pub fn split_image(image: &str) -> (String, Option<String>, Option<String>) {
    let (rest, digest) = match image.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest.to_owned())),
        None => (image, None),
    };
    let slash = rest.rfind('/').map_or(0, |n| n + 1);
    match rest[slash..].rfind(':') {
        Some(n) => (
            rest[..slash + n].to_owned(),
            Some(rest[slash + n + 1..].to_owned()),
            digest,
        ),
        None => (rest.to_owned(), None, digest),
    }
}

fn key_path(keys: &[&str]) -> Vec<Segment> {
    keys.iter().map(|k| Segment::Key((*k).to_owned())).collect()
}

fn with(prefix: &[Segment], more: Segment) -> Vec<Segment> {
    let mut v = prefix.to_vec();
    v.push(more);
    v
}

fn key(k: &str) -> Segment {
    Segment::Key(k.to_owned())
}

/// A scalar that reads like an image reference: no blanks, and a `/` or a `:`.
fn looks_like_image(s: &str) -> bool {
    !s.is_empty() && !s.contains(char::is_whitespace) && (s.contains('/') || s.contains(':'))
}

struct Scan<'a> {
    id: &'a DocumentId,
    out: &'a mut Vec<FoundImage>,
}

impl Scan<'_> {
    fn push(
        &mut self,
        source: ImageSource,
        repository: Option<String>,
        tag: Option<String>,
        digest: Option<String>,
        path: Vec<Segment>,
        value: &str,
    ) {
        if let Some(path) = YamlPath::from_segments(path) {
            self.out.push(FoundImage {
                document: self.id.clone(),
                source,
                repository,
                tag,
                digest,
                path,
                value: value.to_owned(),
            });
        }
    }

    fn push_string(&mut self, source: ImageSource, path: Vec<Segment>, value: &str) {
        let (repository, tag, digest) = split_image(value);
        self.push(source, Some(repository), tag, digest, path, value);
    }

    fn kustomization(&mut self, root: &Node) {
        let Some(NodeKind::Sequence(entries)) = root.get("images").map(|n| &n.kind) else {
            return;
        };
        for (i, entry) in entries.iter().enumerate() {
            let Some(name) = entry.get_str("name") else {
                continue;
            };
            let field = |k: &str| entry.get_str(k).map(str::to_owned);
            let at = ["newTag", "digest", "name"]
                .into_iter()
                .find(|k| entry.get_str(k).is_some())
                .unwrap_or("name");
            let value = entry.get_str(at).unwrap_or(name);
            let path = vec![key("images"), Segment::Index(i), key(at)];
            self.push(
                ImageSource::KustomizeImages,
                Some(name.to_owned()),
                field("newTag"),
                field("digest"),
                path,
                value,
            );
        }
    }

    fn application(&mut self, root: &Node) {
        let Some(spec) = root.get("spec") else {
            return;
        };
        if let Some(source) = spec.get("source") {
            self.argo_source(source, &key_path(&["spec", "source"]));
        }
        if let Some(NodeKind::Sequence(sources)) = spec.get("sources").map(|n| &n.kind) {
            for (i, source) in sources.iter().enumerate() {
                self.argo_source(source, &[key("spec"), key("sources"), Segment::Index(i)]);
            }
        }
    }

    fn argo_source(&mut self, source: &Node, prefix: &[Segment]) {
        if let Some(helm) = source.get("helm") {
            let helm_path = with(prefix, key("helm"));
            if let Some(NodeKind::Sequence(params)) = helm.get("parameters").map(|n| &n.kind) {
                self.helm_parameters(params, &with(&helm_path, key("parameters")));
            }
            if let Some(values) = helm.get("valuesObject") {
                self.values(values, &with(&helm_path, key("valuesObject")));
            }
        }
        if let Some(NodeKind::Sequence(images)) = source
            .get("kustomize")
            .and_then(|k| k.get("images"))
            .map(|n| &n.kind)
        {
            for (i, image) in images.iter().enumerate() {
                let Some(value) = image.scalar() else {
                    continue;
                };
                let path = [prefix, &[key("kustomize"), key("images"), Segment::Index(i)]].concat();
                // `name=newName:tag` overrides `name`; the part after `=` carries the tag.
                let (repository, tag, digest) = match value.split_once('=') {
                    Some((name, new)) => {
                        let (_, tag, digest) = split_image(new);
                        (name.to_owned(), tag, digest)
                    }
                    None => split_image(value),
                };
                self.push(
                    ImageSource::ArgoKustomizeImage,
                    Some(repository),
                    tag,
                    digest,
                    path,
                    value,
                );
            }
        }
    }

    fn helm_parameters(&mut self, params: &[Node], prefix: &[Segment]) {
        let named = |wanted: &str| {
            params
                .iter()
                .find(|p| p.get_str("name") == Some(wanted))
                .and_then(|p| p.get_str("value"))
                .map(str::to_owned)
        };
        for (i, param) in params.iter().enumerate() {
            let (Some(name), Some(value)) = (param.get_str("name"), param.get_str("value")) else {
                continue;
            };
            let path = with(&with(prefix, Segment::Index(i)), key("value"));
            if name == "tag" || name.ends_with(".tag") {
                let stem = &name[..name.len() - "tag".len()];
                let repository =
                    named(&format!("{stem}repository")).or_else(|| named(&format!("{stem}name")));
                self.push(
                    ImageSource::HelmParameter,
                    repository,
                    Some(value.to_owned()),
                    None,
                    path,
                    value,
                );
            } else if (name == "image" || name.ends_with(".image")) && looks_like_image(value) {
                self.push_string(ImageSource::HelmParameter, path, value);
            }
        }
    }

    /// Helm values: every mapping with `repository` and `tag`, and every `image: "repo:tag"`.
    fn values(&mut self, node: &Node, prefix: &[Segment]) {
        match &node.kind {
            NodeKind::Mapping(entries) => {
                if let (Some(repository), Some(tag)) = (node.get_str("repository"), node.get_str("tag")) {
                    let repository = match node.get_str("registry") {
                        Some(registry) if !registry.is_empty() => {
                            format!("{registry}/{repository}")
                        }
                        _ => repository.to_owned(),
                    };
                    self.push(
                        ImageSource::HelmValues,
                        Some(repository),
                        Some(tag.to_owned()),
                        node.get_str("digest").map(str::to_owned),
                        with(prefix, key("tag")),
                        tag,
                    );
                }
                for (k, v) in entries {
                    let Some(k) = k.scalar() else {
                        continue;
                    };
                    let path = with(prefix, key(k));
                    match v.scalar() {
                        Some(s) if k == "image" && looks_like_image(s) => {
                            self.push_string(ImageSource::HelmValuesImageString, path, s);
                        }
                        Some(_) => {}
                        None => self.values(v, &path),
                    }
                }
            }
            NodeKind::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.values(item, &with(prefix, Segment::Index(i)));
                }
            }
            _ => {}
        }
    }

    fn pod(&mut self, pod: &Node, prefix: &[Segment]) {
        for list in ["initContainers", "containers"] {
            let Some(NodeKind::Sequence(containers)) = pod.get(list).map(|n| &n.kind) else {
                continue;
            };
            for (i, container) in containers.iter().enumerate() {
                if let Some(image) = container.get_str("image") {
                    let path = [prefix, &[key(list), Segment::Index(i), key("image")]].concat();
                    self.push_string(ImageSource::Container, path, image);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_strings_split_at_the_tag_not_the_port() {
        assert_eq!(
            split_image("ghcr.io/acme/web:1.2"),
            ("ghcr.io/acme/web".into(), Some("1.2".into()), None)
        );
        assert_eq!(
            split_image("localhost:5000/web"),
            ("localhost:5000/web".into(), None, None)
        );
        assert_eq!(
            split_image("localhost:5000/web:v1@sha256:abc"),
            (
                "localhost:5000/web".into(),
                Some("v1".into()),
                Some("sha256:abc".into())
            )
        );
        assert_eq!(
            split_image("redis@sha256:abc"),
            ("redis".into(), None, Some("sha256:abc".into()))
        );
    }
}
