//! Golden files: each edit of a realistic gitops file must give the expected file byte for
//! byte, parse, and read back the new value.

use std::path::PathBuf;

use auger_yaml_edit::{
    DocSelector, Edit, YamlPath, get_kustomize_image, get_scalar, set_kustomize_image, set_scalar,
};

fn golden(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The text parses as YAML with saphyr-parser's own event stream (not this crate's tree).
fn assert_parses(text: &str) {
    for event in saphyr_parser::Parser::new_from_str(text) {
        if let Err(e) = event {
            panic!("edited text does not parse: {e}\n{text}");
        }
    }
}

fn assert_same(got: &str, expected_file: &str) {
    let expected = golden(expected_file);
    if got != expected {
        for (n, (g, e)) in got.lines().zip(expected.lines()).enumerate() {
            if g != e {
                panic!(
                    "{expected_file}: first difference at line {}:\n got: {g:?}\nwant: {e:?}",
                    n + 1
                );
            }
        }
        panic!("{expected_file}: same lines, different bytes (line endings or the last line)");
    }
}

fn select(kind: Option<&str>, name: Option<&str>) -> DocSelector {
    DocSelector {
        kind: kind.map(str::to_owned),
        name: name.map(str::to_owned),
    }
}

/// Sets `path` in `input`, compares with `expected`, and checks the result reads back.
fn scalar_case(
    input: &str,
    path: &str,
    value: &str,
    selector: Option<&DocSelector>,
    expected: &str,
    old: &str,
) {
    let text = golden(input);
    let path = YamlPath::parse(path).unwrap();
    let edit = set_scalar(&text, &path, value, selector).unwrap();
    assert!(edit.changed);
    assert_eq!(edit.old, old);
    assert_same(&edit.text, expected);
    assert_parses(&edit.text);
    assert_eq!(get_scalar(&edit.text, &path, selector).unwrap(), value);
    assert_eq!(get_scalar(&text, &path, selector).unwrap(), old);

    // Writing the old value back restores the file exactly (rollback).
    let back = set_scalar(&edit.text, &path, old, selector).unwrap();
    // (The cases here keep the style both ways; a plain value that had to be quoted stays
    // quoted, tested on its own below.)
    assert_eq!(
        back.text, text,
        "{input}: writing {old:?} back must restore the file"
    );

    // Setting the value the file already holds changes nothing.
    let same = set_scalar(&edit.text, &path, value, selector).unwrap();
    assert_eq!(
        same,
        Edit {
            text: edit.text.clone(),
            old: value.to_owned(),
            changed: false
        }
    );
}

#[test]
fn kustomization_plain_tag_keeps_its_comment() {
    let text = golden("kustomization.yaml");
    let edit = set_kustomize_image(&text, "ghcr.io/acme/web", Some("8e1d0f2"), None).unwrap();
    assert!(edit.changed);
    assert_eq!(edit.old, "3f2a9c1");
    assert_same(&edit.text, "kustomization.web-tag.expected.yaml");
    assert_parses(&edit.text);
    let image = get_kustomize_image(&edit.text, "ghcr.io/acme/web").unwrap();
    assert_eq!(image.new_tag.as_deref(), Some("8e1d0f2"));
    assert_eq!(image.path.to_string(), "images[0]");
    // The same edit through a path.
    scalar_case(
        "kustomization.yaml",
        "images[0].newTag",
        "8e1d0f2",
        None,
        "kustomization.web-tag.expected.yaml",
        "3f2a9c1",
    );
}

#[test]
fn kustomization_quoted_tag_stays_quoted() {
    let text = golden("kustomization.yaml");
    let edit = set_kustomize_image(&text, "ghcr.io/acme/worker", Some("1.11"), None).unwrap();
    assert_eq!(edit.old, "1.10");
    assert_same(&edit.text, "kustomization.worker-tag.expected.yaml");
    assert_parses(&edit.text);
    let image = get_kustomize_image(&edit.text, "ghcr.io/acme/worker").unwrap();
    assert_eq!(image.new_tag.as_deref(), Some("1.11"));
    assert_eq!(image.new_name.as_deref(), Some("ghcr.io/acme/worker-slim"));
}

#[test]
fn kustomization_missing_new_tag_is_inserted_in_the_entry_indentation() {
    let text = golden("kustomization.yaml");
    let edit = set_kustomize_image(&text, "ghcr.io/acme/cron", Some("1.10"), None).unwrap();
    assert!(edit.changed);
    assert_eq!(edit.old, "");
    assert_same(&edit.text, "kustomization.cron-insert.expected.yaml");
    assert_parses(&edit.text);
    let image = get_kustomize_image(&edit.text, "ghcr.io/acme/cron").unwrap();
    assert_eq!(image.new_tag.as_deref(), Some("1.10"));
    // Once inserted, the next release edits the key in place.
    let again = set_kustomize_image(&edit.text, "ghcr.io/acme/cron", Some("1.10"), None).unwrap();
    assert!(!again.changed);
    assert_eq!(again.text, edit.text);
}

#[test]
fn kustomization_tag_and_new_digest_together() {
    let text = golden("kustomization.yaml");
    let digest = format!("sha256:{}", "1".repeat(64));
    let edit = set_kustomize_image(&text, "ghcr.io/acme/web", Some("8e1d0f2"), Some(&digest)).unwrap();
    assert_eq!(edit.old, "3f2a9c1");
    assert_same(&edit.text, "kustomization.web-tag-and-digest.expected.yaml");
    assert_parses(&edit.text);
    let image = get_kustomize_image(&edit.text, "ghcr.io/acme/web").unwrap();
    assert_eq!(image.digest.as_deref(), Some(digest.as_str()));
}

#[test]
fn kustomization_digest_only() {
    let text = golden("kustomization.yaml");
    let digest = format!("sha256:{}", "2".repeat(64));
    let edit = set_kustomize_image(&text, "docker.io/library/redis", None, Some(&digest)).unwrap();
    assert!(edit.old.starts_with("sha256:0f3c7e4d"));
    assert_same(&edit.text, "kustomization.redis-digest.expected.yaml");
    assert_parses(&edit.text);
}

#[test]
fn kustomization_with_crlf_line_endings_inserts_a_crlf_line() {
    let text = golden("kustomization.yaml").replace('\n', "\r\n");
    let edit = set_kustomize_image(&text, "ghcr.io/acme/cron", Some("1.10"), None).unwrap();
    let expected = golden("kustomization.cron-insert.expected.yaml").replace('\n', "\r\n");
    assert_eq!(edit.text, expected);
    assert_parses(&edit.text);
}

#[test]
fn helmrelease_double_quoted_tag() {
    scalar_case(
        "helmrelease.yaml",
        "spec.values.image.tag",
        "5e6f7a8",
        None,
        "helmrelease.image-tag.expected.yaml",
        "4d1e0b7",
    );
}

#[test]
fn helmrelease_plain_tag_that_would_read_as_a_number_is_quoted() {
    let text = golden("helmrelease.yaml");
    let path = YamlPath::parse("spec.values.worker.image.tag").unwrap();
    let edit = set_scalar(&text, &path, "2.1", None).unwrap();
    assert_eq!(edit.old, "v2.0.0");
    assert_same(&edit.text, "helmrelease.worker-tag.expected.yaml");
    assert_parses(&edit.text);
    assert_eq!(get_scalar(&edit.text, &path, None).unwrap(), "2.1");
    // The scalar is double-quoted now, and a quoted scalar keeps its quotes: rolling back
    // restores the value, in quotes.
    let back = set_scalar(&edit.text, &path, "v2.0.0", None).unwrap();
    assert_eq!(back.text, text.replace("tag: v2.0.0\n", "tag: \"v2.0.0\"\n"));
    assert_eq!(get_scalar(&back.text, &path, None).unwrap(), "v2.0.0");
}

#[test]
fn helmrelease_single_quoted_image_string() {
    scalar_case(
        "helmrelease.yaml",
        "spec.values.sidecar.image",
        "ghcr.io/acme/proxy:2.4.0",
        None,
        "helmrelease.sidecar-image.expected.yaml",
        "ghcr.io/acme/proxy:2.3.1",
    );
}

#[test]
fn helmrelease_plain_scalar_in_a_flow_sequence() {
    scalar_case(
        "helmrelease.yaml",
        "spec.values.ingress.hosts[0]",
        "web.prod.acme.example",
        None,
        "helmrelease.flow-sequence.expected.yaml",
        "web.staging.acme.example",
    );
}

#[test]
fn helmrelease_with_crlf_line_endings() {
    scalar_case(
        "helmrelease-crlf.yaml",
        "spec.values.image.tag",
        "5e6f7a8",
        None,
        "helmrelease-crlf.image-tag.expected.yaml",
        "4d1e0b7",
    );
}

#[test]
fn argocd_helm_parameter() {
    scalar_case(
        "argocd-application.yaml",
        "spec.source.helm.parameters[1].value",
        "0b1c2d3",
        None,
        "argocd-application.parameter.expected.yaml",
        "9a8b7c6",
    );
}

#[test]
fn argocd_values_object_all_digit_sha_is_quoted() {
    let text = golden("argocd-application.yaml");
    let path = YamlPath::parse("spec.source.helm.valuesObject.image.tag").unwrap();
    let edit = set_scalar(&text, &path, "1234567", None).unwrap();
    assert_same(&edit.text, "argocd-application.values-object.expected.yaml");
    assert_parses(&edit.text);
    assert_eq!(get_scalar(&edit.text, &path, None).unwrap(), "1234567");
    let back = set_scalar(&edit.text, &path, "9a8b7c6", None).unwrap();
    assert_eq!(back.text, text.replace("tag: 9a8b7c6 #", "tag: \"9a8b7c6\" #"));
}

#[test]
fn argocd_value_in_a_flow_mapping() {
    scalar_case(
        "argocd-application.yaml",
        "spec.source.helm.valuesObject.sidecar.image",
        "ghcr.io/acme/proxy:2.4.0",
        None,
        "argocd-application.flow-mapping.expected.yaml",
        "ghcr.io/acme/proxy:2.3.1",
    );
}

#[test]
fn argocd_kustomize_image_in_the_second_document() {
    scalar_case(
        "argocd-application.yaml",
        "spec.source.kustomize.images[0]",
        "ghcr.io/acme/api:1.5.0",
        None,
        "argocd-application.kustomize-image.expected.yaml",
        "ghcr.io/acme/api:1.4.2",
    );
}

#[test]
fn argocd_path_in_both_documents_needs_and_takes_a_selector() {
    scalar_case(
        "argocd-application.yaml",
        "spec.project",
        "team-api",
        Some(&select(Some("Application"), Some("api-prod"))),
        "argocd-application.project-selected.expected.yaml",
        "default",
    );
    scalar_case(
        "argocd-application.yaml",
        "spec.project",
        "team-api",
        Some(&select(None, Some("api-prod"))),
        "argocd-application.project-selected.expected.yaml",
        "default",
    );
}

#[test]
fn multi_document_container_image() {
    scalar_case(
        "multi-document.yaml",
        "spec.template.spec.containers[0].image",
        "ghcr.io/acme/web:8e1d0f2",
        None,
        "multi-document.container.expected.yaml",
        "ghcr.io/acme/web:3f2a9c1",
    );
}

#[test]
fn multi_document_single_quoted_value_after_non_ascii_comment() {
    scalar_case(
        "multi-document.yaml",
        "data.version",
        "1.1",
        Some(&select(Some("ConfigMap"), None)),
        "multi-document.configmap.expected.yaml",
        "1.0",
    );
}

#[test]
fn multi_document_double_quoted_value_is_escaped() {
    scalar_case(
        "multi-document.yaml",
        "data.FEATURE_FLAGS",
        "checkout,search,\"beta\"",
        None,
        "multi-document.escaped.expected.yaml",
        "checkout,search",
    );
}
