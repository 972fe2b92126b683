//! Property: any string written with `set_scalar` reads back as the same string, whatever the
//! old scalar's style and context, and no byte outside the scalar changes.

use auger_yaml_edit::{YamlPath, get_scalar, set_scalar};
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
            prop_assert!(!matches!(value.to_ascii_lowercase().as_str(), "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "~" | ""));
            prop_assert!(value.parse::<f64>().is_err() || value.chars().any(|c| c.is_ascii_alphabetic() && !"eE".contains(c)), "{value:?} written plain");
        }
        // And back: the old value again reads as the old value.
        let back = set_scalar(&edit.text, &path, "OLD", None).unwrap();
        prop_assert_eq!(get_scalar(&back.text, &path, None).unwrap(), "OLD");
    }
}
