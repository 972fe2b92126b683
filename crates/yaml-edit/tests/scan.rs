//! `scan_images` on the golden files: every image a gitops file names, with a path that reads
//! back the reported value.

use auger_yaml_edit::{FoundImage, ImageSource, get_scalar, scan_images};

fn golden(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// (source, repository, tag, path, value) of each found image; and each path reads back its
/// value in its document.
type Row = (ImageSource, Option<String>, Option<String>, String, String);

fn summary(text: &str) -> Vec<Row> {
    let found = scan_images(text).unwrap();
    for image in &found {
        let select = auger_yaml_edit::DocSelector {
            kind: image.document.kind.clone(),
            name: image.document.name.clone(),
        };
        assert_eq!(
            get_scalar(text, &image.path, Some(&select)).unwrap(),
            image.value,
            "{image:?}"
        );
    }
    found
        .into_iter()
        .map(
            |FoundImage {
                 source,
                 repository,
                 tag,
                 path,
                 value,
                 ..
             }| { (source, repository, tag, path.to_string(), value) },
        )
        .collect()
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

#[test]
fn kustomization_images() {
    let text = golden("kustomization.yaml");
    let found = scan_images(&text).unwrap();
    assert!(
        found
            .iter()
            .all(|f| f.document.kind.as_deref() == Some("Kustomization"))
    );
    assert_eq!(found[2].digest.as_deref().map(|d| &d[..7]), Some("sha256:"));
    assert_eq!(
        summary(&text),
        [
            (
                ImageSource::KustomizeImages,
                s("ghcr.io/acme/web"),
                s("3f2a9c1"),
                "images[0].newTag".into(),
                "3f2a9c1".into()
            ),
            (
                ImageSource::KustomizeImages,
                s("ghcr.io/acme/worker"),
                s("1.10"),
                "images[1].newTag".into(),
                "1.10".into()
            ),
            (
                ImageSource::KustomizeImages,
                s("docker.io/library/redis"),
                None,
                "images[2].digest".into(),
                found[2].value.clone()
            ),
            (
                ImageSource::KustomizeImages,
                s("ghcr.io/acme/cron"),
                None,
                "images[3].name".into(),
                "ghcr.io/acme/cron".into()
            ),
        ]
    );
}

#[test]
fn helmrelease_values() {
    let text = golden("helmrelease.yaml");
    assert_eq!(
        summary(&text),
        [
            (
                ImageSource::HelmValues,
                s("ghcr.io/acme/web"),
                s("4d1e0b7"),
                "spec.values.image.tag".into(),
                "4d1e0b7".into()
            ),
            (
                ImageSource::HelmValuesImageString,
                s("ghcr.io/acme/proxy"),
                s("2.3.1"),
                "spec.values.sidecar.image".into(),
                "ghcr.io/acme/proxy:2.3.1".into()
            ),
            (
                ImageSource::HelmValues,
                s("ghcr.io/acme/worker"),
                s("v2.0.0"),
                "spec.values.worker.image.tag".into(),
                "v2.0.0".into()
            ),
        ]
    );
    let found = scan_images(&text).unwrap();
    assert_eq!(found[0].document.kind.as_deref(), Some("HelmRelease"));
    assert_eq!(found[0].document.name.as_deref(), Some("web"));
}

#[test]
fn argocd_applications() {
    let text = golden("argocd-application.yaml");
    assert_eq!(
        summary(&text),
        [
            (
                ImageSource::HelmParameter,
                s("ghcr.io/acme/web"),
                s("9a8b7c6"),
                "spec.source.helm.parameters[1].value".into(),
                "9a8b7c6".into()
            ),
            (
                ImageSource::HelmValues,
                s("ghcr.io/acme/web"),
                s("9a8b7c6"),
                "spec.source.helm.valuesObject.image.tag".into(),
                "9a8b7c6".into()
            ),
            (
                ImageSource::HelmValuesImageString,
                s("ghcr.io/acme/proxy"),
                s("2.3.1"),
                "spec.source.helm.valuesObject.sidecar.image".into(),
                "ghcr.io/acme/proxy:2.3.1".into()
            ),
            (
                ImageSource::ArgoKustomizeImage,
                s("ghcr.io/acme/api"),
                s("1.4.2"),
                "spec.source.kustomize.images[0]".into(),
                "ghcr.io/acme/api:1.4.2".into()
            ),
            (
                ImageSource::ArgoKustomizeImage,
                s("ghcr.io/acme/migrate"),
                s("1.4.2"),
                "spec.source.kustomize.images[1]".into(),
                "ghcr.io/acme/migrate:1.4.2".into()
            ),
        ]
    );
    let found = scan_images(&text).unwrap();
    assert_eq!(found[0].document.name.as_deref(), Some("web-prod"));
    assert_eq!(found[3].document.name.as_deref(), Some("api-prod"));
    assert_eq!(found[3].document.index, 1);
}

#[test]
fn workloads_in_a_multi_document_file() {
    let text = golden("multi-document.yaml");
    assert_eq!(
        summary(&text),
        [
            (
                ImageSource::Container,
                s("ghcr.io/acme/web-migrate"),
                s("0123"),
                "spec.template.spec.initContainers[0].image".into(),
                "ghcr.io/acme/web-migrate:0123".into()
            ),
            (
                ImageSource::Container,
                s("ghcr.io/acme/web"),
                s("3f2a9c1"),
                "spec.template.spec.containers[0].image".into(),
                "ghcr.io/acme/web:3f2a9c1".into()
            ),
            (
                ImageSource::Container,
                s("ghcr.io/acme/proxy"),
                s("2.3.1"),
                "spec.template.spec.containers[1].image".into(),
                "ghcr.io/acme/proxy:2.3.1".into()
            ),
        ]
    );
}

#[test]
fn other_shapes() {
    let text = concat!(
        "apiVersion: batch/v1\n",
        "kind: CronJob\n",
        "metadata: {name: nightly}\n",
        "spec:\n",
        "  jobTemplate:\n",
        "    spec:\n",
        "      template:\n",
        "        spec:\n",
        "          containers:\n",
        "            - image: localhost:5000/jobs@sha256:abc\n",
        "---\n",
        "apiVersion: argoproj.io/v1alpha1\n",
        "kind: Application\n",
        "metadata: {name: multi}\n",
        "spec:\n",
        "  sources:\n",
        "    - helm:\n",
        "        parameters:\n",
        "          - {name: api.image.tag, value: '7'}\n",
        "          - {name: api.image.name, value: ghcr.io/acme/api}\n",
        "          - {name: sidecar.image, value: 'ghcr.io/acme/side:1'}\n",
        "        valuesObject:\n",
        "          app: {registry: ghcr.io, repository: acme/app, tag: v3}\n",
        "---\n",
        "kind: ConfigMap\n",
        "data: {image: 'ghcr.io/not/an-image:1'}\n",
    );
    let found = summary(text);
    assert_eq!(
        found,
        [
            (
                ImageSource::Container,
                s("localhost:5000/jobs"),
                None,
                "spec.jobTemplate.spec.template.spec.containers[0].image".into(),
                "localhost:5000/jobs@sha256:abc".into()
            ),
            (
                ImageSource::HelmParameter,
                s("ghcr.io/acme/api"),
                s("7"),
                "spec.sources[0].helm.parameters[0].value".into(),
                "7".into()
            ),
            (
                ImageSource::HelmParameter,
                s("ghcr.io/acme/side"),
                s("1"),
                "spec.sources[0].helm.parameters[2].value".into(),
                "ghcr.io/acme/side:1".into()
            ),
            (
                ImageSource::HelmValues,
                s("ghcr.io/acme/app"),
                s("v3"),
                "spec.sources[0].helm.valuesObject.app.tag".into(),
                "v3".into()
            ),
        ]
    );
    assert!(scan_images("a: [").is_err());
}
