//! Writing a new value as YAML source text in the style of the scalar it replaces.
//!
//! A value stays plain only when it is plain-safe and would still be read as a string, both by a
//! YAML 1.2 core-schema parser and by the YAML 1.1 resolvers Kubernetes tooling still uses
//! (go-yaml v2, PyYAML): `1.10`, `true`, `yes`, `0123`, `1e3`, `0x1f`, `null`, `~`, `2026-01-02`
//! and an all-digit sha are quoted. Quoted scalars keep their quote style when the value can be
//! written in it; a value holding line breaks or control characters is written double-quoted.

use saphyr_parser::ScalarStyle;

/// The source text for `value` written in `style`, or `None` for a block scalar (`|`, `>`),
/// which is not rewritten.
pub(crate) fn render(value: &str, style: ScalarStyle) -> Option<String> {
    match style {
        ScalarStyle::Plain if plain_safe(value) => Some(value.to_owned()),
        ScalarStyle::SingleQuoted if single_quotable(value) => Some(single_quoted(value)),
        ScalarStyle::Plain | ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => {
            Some(double_quoted(value))
        }
        ScalarStyle::Literal | ScalarStyle::Folded => None,
    }
}

/// The style `render` writes `value` in when the old scalar had `style`.
pub(crate) fn chosen_style(value: &str, style: ScalarStyle) -> ScalarStyle {
    match style {
        ScalarStyle::Plain if plain_safe(value) => ScalarStyle::Plain,
        ScalarStyle::SingleQuoted if single_quotable(value) => ScalarStyle::SingleQuoted,
        other @ (ScalarStyle::Literal | ScalarStyle::Folded) => other,
        _ => ScalarStyle::DoubleQuoted,
    }
}

/// Whether `value` can be written as a plain scalar, in block or flow context, and read back as
/// the same string.
pub(crate) fn plain_safe(value: &str) -> bool {
    let Some(first) = value.chars().next() else {
        return false;
    };
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) || value.starts_with("...") {
        return false;
    }
    if value.trim_matches([' ', '\t']) != value {
        return false;
    }
    if value.chars().any(|c| !plain_char(c)) {
        return false;
    }
    if value.contains(": ") || value.ends_with(':') || value.contains(" #") {
        return false;
    }
    !resolves_to_non_string(value)
}

/// Characters a plain scalar may hold anywhere in flow or block context. Flow indicators are
/// left out so a value is safe inside `{…}` and `[…]` too.
fn plain_char(c: char) -> bool {
    !needs_escape(c) && !matches!(c, ',' | '[' | ']' | '{' | '}')
}

/// Characters YAML text cannot hold as they are (outside the printable set, or line breaks to
/// YAML 1.1), which only a double-quoted escape writes.
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{feff}' | '\u{fffe}' | '\u{ffff}' | '\u{2028}' | '\u{2029}')
}

/// Whether a plain scalar with this text would be read as something other than a string
/// (null, bool, int, float, timestamp, merge key) by YAML 1.2 core or common YAML 1.1 resolvers.
pub(crate) fn resolves_to_non_string(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "" | "~" | "null" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "=" | "<<"
    ) {
        return true;
    }
    let unsigned = lower.strip_prefix(['+', '-']).unwrap_or(&lower);
    if matches!(unsigned, ".inf" | ".nan") {
        return true;
    }
    for prefix in ["0x", "0o", "0b"] {
        if let Some(digits) = unsigned.strip_prefix(prefix)
            && !digits.is_empty()
            && digits.chars().all(|c| c.is_ascii_hexdigit() || c == '_')
        {
            return true;
        }
    }
    if looks_like_float(unsigned) || looks_sexagesimal(unsigned) {
        return true;
    }
    // YAML 1.1 timestamps start with a date.
    let b = unsigned.as_bytes();
    b.len() >= 8
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5].is_ascii_digit()
        && value.len() == unsigned.len()
}

/// `1`, `0123`, `1_000`, `1.`, `.5`, `1.10`, `1e3`, `1.5E-3`: digits (and `_`), at most one
/// dot, an optional exponent.
fn looks_like_float(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(at) => (&s[..at], Some(&s[at + 1..])),
        None => (s, None),
    };
    let mut digits = 0;
    let mut dots = 0;
    for c in mantissa.chars() {
        match c {
            '0'..='9' => digits += 1,
            '_' => {}
            '.' => dots += 1,
            _ => return false,
        }
    }
    if digits == 0 || dots > 1 || mantissa.starts_with('_') {
        return false;
    }
    match exponent {
        None => true,
        Some(exp) => {
            let exp = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            !exp.is_empty() && exp.chars().all(|c| c.is_ascii_digit())
        }
    }
}

/// YAML 1.1 base-60 numbers: `1:20`, `190:20:30.15`.
fn looks_sexagesimal(s: &str) -> bool {
    s.contains(':')
        && s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ':' | '_' | '.'))
}

/// Whether `value` can be written single-quoted on one line: no line breaks or control
/// characters, which single quotes cannot escape.
fn single_quotable(value: &str) -> bool {
    !value.chars().any(needs_escape)
}

fn single_quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push('\'');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

pub(crate) fn double_quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{b}' => out.push_str("\\v"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\u{1b}' => out.push_str("\\e"),
            '\u{85}' => out.push_str("\\N"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if needs_escape(c) => {
                let code = u32::from(c);
                if code <= 0xff {
                    out.push_str(&format!("\\x{code:02x}"));
                } else {
                    out.push_str(&format!("\\u{code:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_would_not_stay_strings_are_quoted() {
        for v in [
            "1.10",
            "true",
            "True",
            "yes",
            "on",
            "off",
            "n",
            "null",
            "~",
            "",
            "0123",
            "1e3",
            "1234e56",
            "1234567",
            "1_000",
            "-1",
            "+1.5",
            ".5",
            "1.",
            ".inf",
            "-.Inf",
            ".NaN",
            "0x1f",
            "0o17",
            "0b101",
            "1:20",
            "2026-01-02",
            "2026-01-02T10:00:00Z",
            "=",
            "<<",
        ] {
            assert!(resolves_to_non_string(v), "{v:?} should need quotes");
            assert!(!plain_safe(v), "{v:?} should not be plain");
        }
        for v in [
            "3f2a9c1",
            "v1.10",
            "1.2.3",
            "deadbeef",
            "latest",
            "ghcr.io/acme/web:1.2",
            "sha256:abc",
            "1.0-rc1",
            "e3",
            "1e",
            "2026-01",
            "x_1",
            "nothing",
            "yess",
        ] {
            assert!(plain_safe(v), "{v:?} should stay plain");
        }
    }

    #[test]
    fn syntax_that_plain_cannot_hold_is_quoted() {
        for v in [
            "a: b",
            "a:",
            "a #b",
            "#a",
            "-a",
            "?a",
            ":a",
            "[a",
            "a,b",
            "a]",
            "{",
            "&a",
            "*a",
            "!a",
            "|a",
            ">a",
            "'a",
            "\"a",
            "%a",
            "@a",
            "`a",
            " a",
            "a ",
            "a\tb",
            "a\nb",
            "...",
            "a\u{2028}b",
        ] {
            assert!(!plain_safe(v), "{v:?} should not be plain");
        }
        assert!(plain_safe("a:b"));
        assert!(plain_safe("a#b"));
        assert!(plain_safe("naïve-ü"));
    }

    #[test]
    fn quoting_escapes() {
        assert_eq!(single_quoted("it's"), "'it''s'");
        assert_eq!(
            double_quoted("a\"b\\c\nd\te\u{1}"),
            "\"a\\\"b\\\\c\\nd\\te\\x01\""
        );
        assert_eq!(render("x\ny", ScalarStyle::SingleQuoted).unwrap(), "\"x\\ny\"");
        assert_eq!(render("1.10", ScalarStyle::Plain).unwrap(), "\"1.10\"");
        assert_eq!(render("1.10", ScalarStyle::SingleQuoted).unwrap(), "'1.10'");
        assert_eq!(render("abc", ScalarStyle::Plain).unwrap(), "abc");
        assert!(render("abc", ScalarStyle::Literal).is_none());
    }
}
