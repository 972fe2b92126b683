//! Property: any string written with `set_scalar` reads back as the same string, whatever the
//! old scalar's style and context, and no byte outside the scalar changes.

use auger_yaml_edit::{YamlPath, get_kustomize_image, get_scalar, set_kustomize_image, set_scalar};
use proptest::prelude::*;

/// Files with one scalar to edit, written `OLD` (plus its quotes), at `path`.
const CASES: &[(&str, &str)] = &[
    (
        "# c\nspec:\n  values:\n    image:\n      tag: OLD   # set by auger\n      x: 1\n",
        "spec.values.image.tag",
    ),
    (
        "spec:\n  values:\n    image:\n      tag: 'OLD'\n",
        "spec.values.image.tag",
    ),
    (
        "spec:\n  values:\n    image:\n      tag: \"OLD\" # c\n",
        "spec.values.image.tag",
    ),
    ("a: {tag: OLD, b: [1, 2]}\n", "a.tag"),
    ("a: [x, OLD, 'y']\n", "a[1]"),
    ("a: {tag: 'OLD'}\n", "a.tag"),
    (
        "kind: A\n---\n# ü comment ✓\nkind: B\nimages:\n- name: x\n  newTag: OLD\r\n- name: y\n",
        "images[0].newTag",
    ),
    ("- OLD\n- b\n", "[0]"),
    ("tag: OLD", "tag"),
    ("\u{feff}# ü ✓\ntag: OLD\n", "tag"),
];

fn tag_like() -> impl Strategy<Value = String> {
    prop_oneof![
        // Tags and shas as CI makes them, including the ones YAML would read as non-strings.
        "[0-9]{1,12}",
        "[0-9a-f]{7,12}",
        "[0-9]{1,4}(\\.[0-9]{1,3}){0,3}",
        "[0-9]{1,3}[eE][+-]?[0-9]{1,3}",
        "v?[0-9]\\.[0-9]+(-rc[0-9])?",
        "0[xob][0-9a-f]{1,4}",
        prop::sample::select(vec![
            "true",
            "False",
            "yes",
            "NO",
            "on",
            "off",
            "y",
            "n",
            "null",
            "Null",
            "~",
            "",
            "0123",
            "1e3",
            ".inf",
            "-.Inf",
            ".nan",
            "=",
            "<<",
            "1:20",
            "2026-01-02",
            "-",
            "---",
            "...",
            "a: b",
            "#x",
            "x #y",
            "'",
            "\"",
            "''",
            "\\",
            "@",
            "`",
            "%",
            "!x",
            "&a",
            "*a",
            "|",
            ">",
            "? x",
            "- x",
            "[x]",
            "{x}",
            "x,y",
            " lead",
            "trail ",
        ])
        .prop_map(str::to_owned),
        // Characters that need care: indicators, quotes, blanks, line breaks, non-ASCII.
        "[a-z0-9:#'\"\\\\ .,\\[\\]{}@!&*|>%`?\\-\t\n]{0,16}",
        "\\PC{0,12}",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn set_then_get_round_trips_and_keeps_other_bytes(
        case in 0..CASES.len(),
        value in tag_like(),
    ) {
        let (template, path) = CASES[case];
        let path = YamlPath::parse(path).unwrap();
        let at = template.find("OLD").unwrap();
        // The old scalar's text, with its quotes when it has them.
        let quoted = matches!(template.as_bytes()[at - 1], b'\'' | b'"');
        let (start, end) = if quoted { (at - 1, at + 4) } else { (at, at + 3) };
        let edit = set_scalar(template, &path, &value, None).unwrap();
        prop_assert_eq!(&edit.old, "OLD");
        prop_assert_eq!(edit.changed, value != "OLD");
        prop_assert!(edit.text.starts_with(&template[..start]), "prefix changed: {:?}", edit.text);
        prop_assert!(edit.text.ends_with(&template[end..]), "suffix changed: {:?}", edit.text);
        prop_assert_eq!(get_scalar(&edit.text, &path, None).unwrap(), value.clone());
        // The text is YAML to an independent reader of the event stream too.
        for event in saphyr_parser::Parser::new_from_str(&edit.text) {
            prop_assert!(event.is_ok(), "{:?}", edit.text);
        }
        // The value is a string to YAML 1.1 readers: plain only when it cannot be read as
        // anything else.
        let written = &edit.text[start..edit.text.len() - (template.len() - end)];
        if !written.starts_with(['\'', '"']) {
            let lower = value.to_ascii_lowercase();
            prop_assert!(!matches!(
                lower.as_str(),
                "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "~" | ""
            ));
            prop_assert!(
                value.parse::<f64>().is_err()
                    || value.chars().any(|c| c.is_ascii_alphabetic() && !"eE".contains(c)),
                "{value:?} written plain"
            );
        }
        // And back: the old value again reads as the old value.
        let back = set_scalar(&edit.text, &path, "OLD", None).unwrap();
        prop_assert_eq!(get_scalar(&back.text, &path, None).unwrap(), "OLD");
    }
}

/// Kustomizations whose entry `a` has no `newTag` yet (LF, CRLF, no final newline, a comment).
const KUSTOMIZATIONS: &[&str] = &[
    "images:\n  - name: a\n    newName: b   # c\n  # next\n  - name: z\n",
    "images:\r\n- name: a\r\n- name: z\r\n",
    "kind: Kustomization\nimages:\n- name: a",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn kustomize_insert_round_trips_and_only_adds_lines(
        case in 0..KUSTOMIZATIONS.len(),
        tag in tag_like(),
        digest in proptest::option::of("sha256:[0-9a-f]{64}"),
    ) {
        let text = KUSTOMIZATIONS[case];
        let edit = set_kustomize_image(text, "a", Some(&tag), digest.as_deref()).unwrap();
        prop_assert!(edit.changed);
        let image = get_kustomize_image(&edit.text, "a").unwrap();
        prop_assert_eq!(image.new_tag.as_deref(), Some(tag.as_str()));
        prop_assert_eq!(image.digest, digest);
        // Every line of the old text is still there, in order: only lines were added.
        let mut old_lines = text.split_inclusive('\n').peekable();
        for line in edit.text.split_inclusive('\n') {
            if old_lines.peek().is_some_and(|old| old.trim_end() == line.trim_end()) {
                old_lines.next();
            }
        }
        prop_assert!(old_lines.next().is_none(), "{:?}", edit.text);
        prop_assert_eq!(edit.text.matches('\r').count() > 0, text.contains('\r'));
        // The other entry is untouched.
        prop_assert_eq!(
            get_kustomize_image(&edit.text, "z").ok().map(|i| i.new_tag),
            text.contains("name: z").then_some(None)
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Arbitrary YAML-ish text never panics; an edit that succeeds reads back, and the values
    /// at the other paths read as before.
    #[test]
    fn arbitrary_text_edits_or_refuses(
        text in concat!(
            "(a: x\n|b: 'y' # c\n|- z\n|b:\n  a: \"q\"\n|a: \\[p, 'q'\\]\n|a: \\{b: r\\}\n|",
            "a: |b: |- |  |\n|'|\"|#|&x |\\*x|!!str |\\[|\\]|\\{|\\}|, |---\n|ü|1\\.0|\r\n){0,16}"
        ),
        value in tag_like(),
    ) {
        const PATHS: [&str; 5] = ["a", "b", "[0]", "a[0]", "b.a"];
        let before: Vec<_> = PATHS
            .iter()
            .map(|p| get_scalar(&text, &YamlPath::parse(p).unwrap(), None))
            .collect();
        for (n, p) in PATHS.iter().enumerate() {
            let path = YamlPath::parse(p).unwrap();
            if let Ok(edit) = set_scalar(&text, &path, &value, None) {
                prop_assert_eq!(get_scalar(&edit.text, &path, None).unwrap(), value.clone());
                for (m, other) in PATHS.iter().enumerate() {
                    if m != n && before[m].is_ok() && before[m] != before[n] {
                        let after = get_scalar(&edit.text, &YamlPath::parse(other).unwrap(), None);
                        prop_assert_eq!(&after, &before[m], "{:?} -> {:?}", text, edit.text);
                    }
                }
            }
        }
    }
}
