//! The shipped starters for the gitops layouts teams already have (design §16): the example
//! policies of `policies/examples/` edit their sample files under `policies/examples/gitops/`,
//! and the templates `flux-helmrelease`, `kustomize-overlay` and `argocd-application` render;
//! every result is parsed again and read back.

use std::path::PathBuf;

use auger::gitops::{RenderExtra, Trigger, apply_edits, render, render_edits};
use auger::policy::{Policy, load_dir};
use auger_yaml_edit::{DocSelector, YamlPath, documents, get_kustomize_image, get_scalar};

use crate::support::data::{api_artifact, env};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn example_policies_edit_their_sample_gitops_files_and_nothing_else() {
    let examples = root().join("policies/examples");
    let set = load_dir(&examples, &root().join("templates")).unwrap_or_else(|e| panic!("{e}"));
    let apps: Vec<&str> = set.apps().map(|a| a.as_str()).collect();
    assert_eq!(
        apps,
        ["argocd-application", "flux-helmrelease", "kustomize-overlay"]
    );

    let gitops = examples.join("gitops");
    for policy in set.iter() {
        let a = api_artifact(policy.app().as_str(), 0x5eed);
        for (name, rules) in policy.envs() {
            assert!(rules.edits(), "{}/{name} edits", policy.app());
            let edits = render_edits(policy, name, &a, &RenderExtra::new(Trigger::Policy)).unwrap();
            let changed = apply_edits::<auger::gitops::Refused>(&edits, |path| {
                Ok(std::fs::read(gitops.join(path)).ok())
            })
            .unwrap();
            assert_eq!(changed.len(), 1, "{}/{name}: {changed:?}", policy.app());
            for (file, bytes) in &changed {
                let before = std::fs::read_to_string(gitops.join(file)).unwrap();
                let after = String::from_utf8(bytes.clone()).unwrap();
                documents(&after).unwrap_or_else(|e| panic!("{file} does not parse: {e}"));
                // The new value reads back, and only its line differs.
                let value = match policy.app().as_str() {
                    "kustomize-overlay" => get_kustomize_image(&after, "ghcr.io/acme/web")
                        .unwrap()
                        .new_tag
                        .unwrap(),
                    "flux-helmrelease" => get_scalar(
                        &after,
                        &YamlPath::parse("spec.values.image.tag").unwrap(),
                        Some(&DocSelector {
                            kind: Some("HelmRelease".into()),
                            name: Some("web".into()),
                        }),
                    )
                    .unwrap(),
                    _ => get_scalar(
                        &after,
                        &YamlPath::parse("spec.source.helm.parameters[1].value").unwrap(),
                        None,
                    )
                    .unwrap(),
                };
                assert_eq!(value, a.sha.as_str(), "{file}");
                let differing: Vec<(&str, &str)> = before
                    .lines()
                    .zip(after.lines())
                    .filter(|(b, a)| b != a)
                    .collect();
                assert_eq!(differing.len(), 1, "{file}: {differing:?}");
                assert!(differing[0].0.contains("1.4.2") && differing[0].1.contains(a.sha.as_str()));
                assert!(
                    differing[0].1.contains("# auger sets this"),
                    "the comment stays: {differing:?}"
                );
                assert_eq!(before.lines().count(), after.lines().count());
            }
        }
    }
}

#[test]
fn starter_templates_render_manifests_that_parse_with_the_artifact_image() {
    let cases = [
        (
            "flux-helmrelease",
            "helmrelease.yaml",
            "spec.values.image.tag",
            "HelmRelease",
        ),
        (
            "kustomize-overlay",
            "kustomization.yaml",
            "images[0].newTag",
            "Kustomization",
        ),
        (
            "argocd-application",
            "application.yaml",
            "spec.source.helm.parameters[1].value",
            "Application",
        ),
    ];
    for (template, file, path, kind) in cases {
        let policy = Policy::from_toml(
            "web.toml",
            &format!(
                "app = \"web\"\nrepo = \"acme/web\"\ntemplate = \"{template}\"\n[vars]\nimage_repository = \"ghcr.io/acme/web\"\nchart_repo = \"https://charts.acme.example\"\n[env.staging]\nmerge = \"direct\"\n"
            ),
        )
        .unwrap();
        let a = api_artifact("web", 0xabc);
        let files = render(
            &root().join("templates"),
            &policy,
            &env("staging"),
            &a,
            &RenderExtra::new(Trigger::Policy),
        )
        .unwrap_or_else(|e| panic!("{template}: {e}"));
        let names: Vec<&str> = files.keys().map(String::as_str).collect();
        assert_eq!(names, [file], "{template}");
        let text = String::from_utf8(files[file].clone()).unwrap();
        let docs = documents(&text).unwrap_or_else(|e| panic!("{template}: {e}\n{text}"));
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].kind.as_deref(), Some(kind), "{template}");
        let tag = get_scalar(&text, &YamlPath::parse(path).unwrap(), None).unwrap();
        assert_eq!(tag, a.sha.as_str(), "{template}");
        if template == "kustomize-overlay" {
            let image = get_kustomize_image(&text, "ghcr.io/acme/web").unwrap();
            assert_eq!(image.new_tag.as_deref(), Some(a.sha.as_str()));
        }
    }
}
