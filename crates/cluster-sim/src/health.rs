//! The simulated health check: a manifest that carries the annotation
//! `auger.dev/simulate: unhealthy` stands for a workload that never becomes ready.
//!
//! Nothing is applied anywhere; the verdict only depends on the files at the revision, so a
//! test or the demo decides the outcome by what it commits.

/// The annotation key and value that make an object fail its health check.
pub const UNHEALTHY_KEY: &str = "auger.dev/simulate";
pub const UNHEALTHY_VALUE: &str = "unhealthy";

/// A workload whose health check failed, named as Flux names it (`Kind/namespace/name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unhealthy {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl Unhealthy {
    pub fn flux_id(&self) -> String {
        format!("{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

/// Every manifest document among `files` that carries the marker, in file order.
/// `default_namespace` names objects whose manifest has no `metadata.namespace`.
pub fn unhealthy(files: &[(String, String)], default_namespace: &str) -> Vec<Unhealthy> {
    let mut found = Vec::new();
    for (_, text) in files {
        for doc in documents(text) {
            if doc.iter().any(|line| is_marker(line)) {
                found.push(identify(&doc, default_namespace));
            }
        }
    }
    found
}

/// A line `auger.dev/simulate: unhealthy`, at any indentation, the value quoted or not.
fn is_marker(line: &str) -> bool {
    let Some((key, value)) = line.trim().split_once(':') else {
        return false;
    };
    let unquote = |s: &str| s.trim().trim_matches(|c| c == '"' || c == '\'').to_string();
    unquote(key) == UNHEALTHY_KEY && unquote(value) == UNHEALTHY_VALUE
}

/// YAML documents of a file, split on `---` lines.
fn documents(text: &str) -> Vec<Vec<&str>> {
    let mut docs = vec![Vec::new()];
    for line in text.lines() {
        if line.trim_end() == "---" || line.starts_with("--- ") {
            docs.push(Vec::new());
        } else if let Some(doc) = docs.last_mut() {
            doc.push(line);
        }
    }
    docs.retain(|d| d.iter().any(|l| !l.trim().is_empty()));
    docs
}

/// `kind`, `metadata.name` and `metadata.namespace` of a manifest, read from its lines: enough
/// for the manifests a gitops repository holds, without a YAML parser.
fn identify(doc: &[&str], default_namespace: &str) -> Unhealthy {
    let mut kind = None;
    let mut name = None;
    let mut namespace = None;
    let mut in_metadata = false;
    let mut metadata_indent = None;
    for line in doc {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        if indent == 0 {
            in_metadata = trimmed.trim_end() == "metadata:";
            metadata_indent = None;
            if let Some(v) = trimmed.strip_prefix("kind:") {
                kind = Some(scalar(v));
            }
            continue;
        }
        if !in_metadata {
            continue;
        }
        // Direct children of `metadata` share the first indentation seen under it.
        let child_indent = *metadata_indent.get_or_insert(indent);
        if indent != child_indent {
            continue;
        }
        if let Some(v) = trimmed.strip_prefix("name:") {
            name = Some(scalar(v));
        } else if let Some(v) = trimmed.strip_prefix("namespace:") {
            namespace = Some(scalar(v));
        }
    }
    Unhealthy {
        kind: kind.unwrap_or_else(|| "Unknown".to_string()),
        namespace: namespace.unwrap_or_else(|| default_namespace.to_string()),
        name: name.unwrap_or_else(|| "unnamed".to_string()),
    }
}

fn scalar(v: &str) -> String {
    v.trim().trim_matches(|c| c == '"' || c == '\'').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> Vec<(String, String)> {
        vec![("staging/web.yaml".to_string(), text.to_string())]
    }

    #[test]
    fn a_marked_deployment_is_named_like_flux_names_it() {
        let text = "\
apiVersion: v1
kind: Service
metadata:
  name: web
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  annotations:
    auger.dev/simulate: \"unhealthy\"
    name: not-this
spec:
  template:
    metadata:
      name: nor-this
";
        let found = unhealthy(&file(text), "default");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].flux_id(), "Deployment/shop/web");
    }

    #[test]
    fn no_marker_is_healthy_and_lookalikes_do_not_count() {
        let text = "\
kind: Deployment
metadata:
  name: web
  annotations:
    auger.dev/simulate: healthy
    auger.dev/simulate-note: unhealthy
";
        assert!(unhealthy(&file(text), "default").is_empty());
    }

    #[test]
    fn a_missing_namespace_falls_back() {
        let text =
            "kind: Deployment\nmetadata:\n  name: api\n  annotations:\n    auger.dev/simulate: unhealthy\n";
        let found = unhealthy(&file(text), "apps");
        assert_eq!(found[0].flux_id(), "Deployment/apps/api");
    }
}
