//! Every refusal: the reason is named and the caller gets no text to write.

use auger_yaml_edit::{
    DocSelector, DocumentId, EditError, PathError, YamlPath, get_kustomize_image, get_scalar,
    set_kustomize_image, set_scalar,
};

fn golden(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn path(p: &str) -> YamlPath {
    YamlPath::parse(p).unwrap()
}

fn ids(docs: &[DocumentId]) -> Vec<String> {
    docs.iter().map(ToString::to_string).collect()
}

#[test]
fn path_not_found_names_the_deepest_key_that_exists() {
    let text = golden("helmrelease.yaml");
    let err = set_scalar(&text, &path("spec.values.image.digest"), "x", None).unwrap_err();
    assert_eq!(
        err,
        EditError::PathNotFound {
            path: "spec.values.image.digest".into(),
            deepest: "spec.values.image".into(),
            deepest_is: "a mapping",
            missing: "digest".into(),
        }
    );
    assert_eq!(
        err.to_string(),
        "`spec.values.image.digest` not found: `spec.values.image` exists (a mapping) but has no `digest`"
    );
    let err = get_scalar(&text, &path("status.phase"), None).unwrap_err();
    assert!(
        matches!(&err, EditError::PathNotFound { deepest, missing, .. }
            if deepest.is_empty() && missing == "status"),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("the document (a mapping) has no `status`")
    );
    // An index past the end, and a key asked of a sequence.
    let multi = golden("multi-document.yaml");
    let err = get_scalar(&multi, &path("spec.template.spec.containers[5].image"), None).unwrap_err();
    assert!(
        matches!(&err, EditError::PathNotFound { deepest, deepest_is: "a sequence", missing, .. }
        if deepest == "spec.template.spec.containers" && missing == "[5]"),
        "{err:?}"
    );
    let err = get_scalar(&multi, &path("spec.template.spec.containers.image"), None).unwrap_err();
    assert!(
        matches!(&err, EditError::PathNotFound { missing, .. } if missing == "image"),
        "{err:?}"
    );
    // Keys reached only through a `<<` merge are not followed.
    let err = get_scalar(&text, &path("spec.values.worker.resources.limits.cpu"), None).unwrap_err();
    assert!(
        matches!(&err, EditError::PathNotFound { deepest, .. } if deepest == "spec.values.worker"),
        "{err:?}"
    );
}

#[test]
fn path_in_several_documents_without_selector_is_ambiguous() {
    let text = golden("multi-document.yaml");
    let err = set_scalar(&text, &path("metadata.name"), "x", None).unwrap_err();
    let EditError::Ambiguous { documents, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(
        ids(documents),
        [
            "document 1 (Deployment/web)",
            "document 2 (Service/web)",
            "document 3 (ConfigMap/web-config)"
        ]
    );
    assert!(err.to_string().contains("is in 3 documents"), "{err}");
    let err = set_scalar(
        &golden("argocd-application.yaml"),
        &path("spec.project"),
        "x",
        None,
    )
    .unwrap_err();
    assert!(matches!(&err, EditError::Ambiguous { documents, .. } if documents.len() == 2));
}

#[test]
fn selector_matching_nothing_or_several_is_refused() {
    let text = golden("multi-document.yaml");
    let sel = DocSelector {
        kind: Some("Ingress".into()),
        name: None,
    };
    let err = set_scalar(&text, &path("metadata.name"), "x", Some(&sel)).unwrap_err();
    let EditError::SelectorMatchesNothing { documents, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(documents.len(), 3);
    assert!(
        err.to_string().starts_with("no document matches kind Ingress"),
        "{err}"
    );

    let sel = DocSelector {
        kind: None,
        name: Some("web".into()),
    };
    let err = set_scalar(&text, &path("metadata.name"), "x", Some(&sel)).unwrap_err();
    let EditError::SelectorAmbiguous { documents, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(
        ids(documents),
        ["document 1 (Deployment/web)", "document 2 (Service/web)"]
    );
    // The selected document lacks the path: not found, not a fall-back to another document.
    let sel = DocSelector {
        kind: Some("Service".into()),
        name: Some("web".into()),
    };
    let err = get_scalar(&text, &path("data.version"), Some(&sel)).unwrap_err();
    assert!(matches!(err, EditError::PathNotFound { .. }), "{err:?}");
}

#[test]
fn node_that_is_not_a_scalar_is_refused() {
    let text = golden("helmrelease.yaml");
    let err = set_scalar(&text, &path("spec.values.image"), "x", None).unwrap_err();
    assert_eq!(
        err,
        EditError::NotScalar {
            path: "spec.values.image".into(),
            found: "a mapping"
        }
    );
    let err = get_scalar(&text, &path("spec.values.ingress.hosts"), None).unwrap_err();
    assert!(matches!(
        err,
        EditError::NotScalar {
            found: "a sequence",
            ..
        }
    ));
}

#[test]
fn aliases_and_anchors_are_not_edited_through() {
    let text = golden("helmrelease.yaml");
    let err = set_scalar(&text, &path("spec.values.worker.<<"), "x", None).unwrap_err();
    assert!(
        matches!(&err, EditError::ThroughAlias { at, .. } if at == "spec.values.worker.<<"),
        "{err:?}"
    );
    let err = set_scalar(&text, &path("spec.values.worker.<<.resources"), "x", None).unwrap_err();
    assert!(
        matches!(&err, EditError::ThroughAlias { at, .. } if at == "spec.values.worker.<<"),
        "{err:?}"
    );
    // Inside the anchored mapping: its aliases would change too.
    let err = set_scalar(
        &text,
        &path("spec.values.defaults.resources.limits.cpu"),
        "1",
        None,
    )
    .unwrap_err();
    assert!(
        matches!(&err, EditError::Unsupported { reason, .. } if reason.contains("spec.values.defaults")),
        "{err:?}"
    );
    // Reading there is fine.
    assert_eq!(
        get_scalar(&text, &path("spec.values.defaults.resources.limits.cpu"), None).unwrap(),
        "500m"
    );
    let anchored = "a: &t 1.0\nb: *t\n";
    let err = set_scalar(anchored, &path("a"), "2", None).unwrap_err();
    assert!(matches!(err, EditError::Unsupported { .. }), "{err:?}");
}

#[test]
fn block_scalars_tags_and_empty_values_are_refused() {
    let text = "a: |\n  line\nb: !!int 3\nc: !!str 4\nd:\ne: x\n";
    let err = set_scalar(text, &path("a"), "y", None).unwrap_err();
    assert!(
        matches!(&err, EditError::Unsupported { reason, .. } if reason.contains("block scalar")),
        "{err:?}"
    );
    let err = set_scalar(text, &path("b"), "y", None).unwrap_err();
    assert!(
        matches!(&err, EditError::Unsupported { reason, .. } if reason.contains("tagged")),
        "{err:?}"
    );
    let err = set_scalar(text, &path("d"), "y", None).unwrap_err();
    assert!(
        matches!(&err, EditError::Unsupported { reason, .. } if reason.contains("no value")),
        "{err:?}"
    );
    // A `!!str` tag is kept, and the value after it replaced.
    let edit = set_scalar(text, &path("c"), "5", None).unwrap();
    assert_eq!(edit.text, "a: |\n  line\nb: !!int 3\nc: !!str \"5\"\nd:\ne: x\n");
    // Reading a block scalar works.
    assert_eq!(get_scalar(text, &path("a"), None).unwrap(), "line\n");
}

#[test]
fn duplicate_keys_are_refused() {
    let err = get_scalar("a:\n  b: 1\n  b: 2\n", &path("a.b"), None).unwrap_err();
    assert_eq!(
        err,
        EditError::DuplicateKey {
            path: "a.b".into(),
            key: "b".into()
        }
    );
}

#[test]
fn invalid_yaml_and_empty_files_are_refused() {
    let err = set_scalar("a: [b\nc: d: e\n", &path("a"), "x", None).unwrap_err();
    assert!(matches!(err, EditError::Parse { line: 2, .. }), "{err:?}");
    assert!(err.to_string().starts_with("not valid YAML at line 2"), "{err}");
    let err = set_scalar("# nothing here\n", &path("a"), "x", None).unwrap_err();
    assert_eq!(err, EditError::NoDocument { selector: None });
    let err = get_scalar("", &path("a"), None).unwrap_err();
    assert_eq!(err, EditError::NoDocument { selector: None });
}

#[test]
fn malformed_paths_convert_into_edit_errors() {
    let err: EditError = YamlPath::parse("a..b").unwrap_err().into();
    assert!(matches!(err, EditError::Path(PathError::EmptyKey { .. })));
    assert!(matches!(YamlPath::parse(""), Err(PathError::Empty)));
}

#[test]
fn image_not_listed_names_the_listed_ones() {
    let text = golden("kustomization.yaml");
    let err = set_kustomize_image(&text, "ghcr.io/acme/wbe", Some("1"), None).unwrap_err();
    assert_eq!(
        err,
        EditError::ImageNotListed {
            name: "ghcr.io/acme/wbe".into(),
            listed: vec![
                "ghcr.io/acme/web".into(),
                "ghcr.io/acme/worker".into(),
                "docker.io/library/redis".into(),
                "ghcr.io/acme/cron".into(),
            ],
        }
    );
    assert!(
        err.to_string()
            .contains("listed: ghcr.io/acme/web, ghcr.io/acme/worker"),
        "{err}"
    );
    assert!(matches!(
        get_kustomize_image(&text, "nope"),
        Err(EditError::ImageNotListed { .. })
    ));
}

#[test]
fn kustomize_refusals() {
    let text = golden("kustomization.yaml");
    assert_eq!(
        set_kustomize_image(&text, "ghcr.io/acme/web", None, None),
        Err(EditError::NothingToSet)
    );
    assert_eq!(
        set_kustomize_image("resources: [a.yaml]\n", "x", Some("1"), None),
        Err(EditError::NoImagesList)
    );
    let twice = "images:\n- name: a\n  newTag: '1'\n- name: a\n  newTag: '2'\n";
    assert_eq!(
        set_kustomize_image(twice, "a", Some("3"), None),
        Err(EditError::ImageListedTwice {
            name: "a".into(),
            count: 2
        })
    );
    let flow = "images:\n- {name: a, newName: b}\n";
    let err = set_kustomize_image(flow, "a", Some("3"), None).unwrap_err();
    assert!(
        matches!(&err, EditError::Unsupported { reason, .. } if reason.contains("flow mapping")),
        "{err:?}"
    );
    // A flow entry that has the key is edited in place.
    let flow = "images:\n- {name: a, newTag: '1'}\n";
    let edit = set_kustomize_image(flow, "a", Some("2"), None).unwrap();
    assert_eq!(edit.text, "images:\n- {name: a, newTag: '2'}\n");
}

#[test]
fn kustomize_insert_at_end_of_file_without_newline() {
    let text = "images:\n  - name: a\n    newName: b";
    let edit = set_kustomize_image(text, "a", Some("v1"), None).unwrap();
    assert_eq!(edit.text, "images:\n  - name: a\n    newName: b\n    newTag: v1");
    let text = "images:\n- name: a   # the app\n# next\n- name: c\n";
    let edit = set_kustomize_image(text, "a", Some("0123"), Some("sha256:ab")).unwrap();
    assert_eq!(
        edit.text,
        "images:\n- name: a   # the app\n  newTag: \"0123\"\n  digest: sha256:ab\n# next\n- name: c\n"
    );
}
