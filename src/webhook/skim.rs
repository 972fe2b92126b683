//! Skim: check a JSON body in one pass and keep only the members a typed event reads.
//!
//! A GitHub payload is 10–30 KB of which auger reads a few hundred bytes. serde_json spends most
//! of its time on the rest (every key is parsed, UTF-8-checked and matched against the struct's
//! fields; every ignored value goes through its visitor machinery), and that was the largest
//! cost per webhook at the edge. The skimmer walks the bytes once with a [`Shape`] (the members
//! a struct reads, nested), copies the wanted members verbatim and only checks the rest.
//! serde then parses the small result into the same struct.
//!
//! The skimmer is an accelerator, not an authority: it answers `None` for anything it does not
//! vouch for (bad JSON, an escaped key, deep nesting, a top level that is not an object), and the
//! caller then parses the whole body with serde_json, which gives the real answer or error. It
//! must never say `Some` for a body serde_json refuses; the property tests below hold it to that.
//! It is pure and does no I/O.

/// The members of a JSON object a typed struct reads.
pub type Shape = &'static [Member];

/// A payload struct whose members [`Shaped::SHAPE`] names (the shapes live in `shapes`).
pub trait Shaped {
    const SHAPE: Shape;
}

/// One member of a [`Shape`]: its key and how much of its value to keep.
#[derive(Debug, Clone, Copy)]
pub struct Member {
    pub key: &'static str,
    pub keep: Keep,
}

/// How much of a member's value is kept.
#[derive(Debug, Clone, Copy)]
pub enum Keep {
    /// All of it, verbatim (scalars, or values read whole).
    Whole,
    /// If it is an object, only these members of it; any other value whole.
    Object(Shape),
    /// If it is an array, each object element pruned to these members; anything else whole.
    EachObject(Shape),
}

/// A member kept whole.
pub const fn whole(key: &'static str) -> Member {
    Member {
        key,
        keep: Keep::Whole,
    }
}

/// A member whose object value is pruned to `shape`.
pub const fn object(key: &'static str, shape: Shape) -> Member {
    Member {
        key,
        keep: Keep::Object(shape),
    }
}

/// A member whose array value has each object pruned to `shape`.
pub const fn each(key: &'static str, shape: Shape) -> Member {
    Member {
        key,
        keep: Keep::EachObject(shape),
    }
}

/// Nesting beyond this is left to serde_json (GitHub payloads nest about six deep).
const MAX_DEPTH: usize = 64;

/// The body's members that `shape` names (recursively), as compact JSON, after checking that the
/// whole body is one JSON object. `None` when the skimmer cannot vouch for the body; parse it
/// whole instead.
pub fn prune(body: &[u8], shape: Shape) -> Option<Vec<u8>> {
    // UTF-8 is checked where it can occur: a byte above 0x7f outside a string is a syntax
    // error, and inside one `string` checks each such character.
    let mut s = Skimmer {
        b: body,
        i: 0,
        out: Vec::with_capacity(body.len() / 8 + 64),
    };
    s.ws();
    if s.peek()? != b'{' {
        return None;
    }
    s.object(Some(shape), 0)?;
    s.ws();
    (s.i == body.len()).then_some(s.out)
}

struct Skimmer<'a> {
    b: &'a [u8],
    i: usize,
    out: Vec<u8>,
}

impl Skimmer<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.i += 1;
        }
    }

    /// A value that `keep` says to copy (`Some`) or only to check (`None`).
    fn value(&mut self, keep: Option<Keep>, depth: usize) -> Option<()> {
        match (keep, self.peek()?) {
            (Some(Keep::Object(shape)), b'{') => self.object(Some(shape), depth),
            (Some(Keep::EachObject(shape)), b'[') => self.array(Some(shape), depth),
            (Some(_), _) => {
                let start = self.i;
                self.skip(depth)?;
                self.out.extend_from_slice(&self.b[start..self.i]);
                Some(())
            }
            (None, _) => self.skip(depth),
        }
    }

    /// Checks one value and moves past it, writing nothing.
    fn skip(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'{' => self.object(None, depth),
            b'[' => self.array(None, depth),
            b'"' => self.string().map(drop),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// An object at `{`. With a shape, writes the members it names (values pruned as it says);
    /// without, only checks.
    fn object(&mut self, shape: Option<Shape>, depth: usize) -> Option<()> {
        let write = shape.is_some();
        let mut more = self.enter(write, b'}', depth)?;
        let mut kept_any = false;
        while more {
            self.ws();
            if self.peek()? != b'"' {
                return None;
            }
            let (start, end, escaped) = self.string()?;
            // Keys are compared as bytes; GitHub never escapes them, so leave the rare one
            // that is to serde_json rather than decode it here.
            if escaped {
                return None;
            }
            let key = &self.b[start..end];
            self.ws();
            if self.peek()? != b':' {
                return None;
            }
            self.i += 1;
            self.ws();
            // The first byte rules out most members without a call to `memcmp`.
            let wanted = shape.and_then(|s| {
                s.iter()
                    .find(|m| m.key.as_bytes().first() == key.first() && m.key.as_bytes() == key)
            });
            match wanted {
                Some(member) => {
                    if kept_any {
                        self.out.push(b',');
                    }
                    kept_any = true;
                    self.out.push(b'"');
                    self.out.extend_from_slice(key);
                    self.out.extend_from_slice(b"\":");
                    self.value(Some(member.keep), depth + 1)?;
                }
                None => self.skip(depth + 1)?,
            }
            more = self.next(write, b'}')?;
        }
        Some(())
    }

    /// An array at `[`. With a shape, writes it with each object element pruned to the shape;
    /// without, only checks.
    fn array(&mut self, shape: Option<Shape>, depth: usize) -> Option<()> {
        let mut more = self.enter(shape.is_some(), b']', depth)?;
        let mut first = true;
        while more {
            self.ws();
            match shape {
                Some(shape) => {
                    if !first {
                        self.out.push(b',');
                    }
                    self.value(Some(Keep::Object(shape)), depth + 1)?;
                }
                None => self.skip(depth + 1)?,
            }
            first = false;
            more = self.next(shape.is_some(), b']')?;
        }
        Some(())
    }

    /// Past the `{` or `[` at hand (copied when `write`): whether the container has items, or
    /// is empty and already past its `close`.
    fn enter(&mut self, write: bool, close: u8, depth: usize) -> Option<bool> {
        if depth >= MAX_DEPTH {
            return None;
        }
        if write {
            self.out.push(self.peek()?);
        }
        self.i += 1;
        self.ws();
        self.next_is_close(write, close).map(|closed| !closed)
    }

    /// After an item: `,` (more follow: true) or `close` (done: false, and copied when `write`).
    fn next(&mut self, write: bool, close: u8) -> Option<bool> {
        self.ws();
        if self.peek()? == b',' {
            self.i += 1;
            return Some(true);
        }
        self.next_is_close(write, close)?.then_some(false)
    }

    /// Whether the next byte is `close`; if so, moves past it (copying it when `write`).
    fn next_is_close(&mut self, write: bool, close: u8) -> Option<bool> {
        if self.peek()? != close {
            return Some(false);
        }
        self.i += 1;
        if write {
            self.out.push(close);
        }
        Some(true)
    }

    /// A string at `"`: its contents' byte range and whether they hold an escape. Refuses raw
    /// control characters and unknown escapes, as JSON does, and invalid UTF-8.
    fn string(&mut self) -> Option<(usize, usize, bool)> {
        self.i += 1;
        let start = self.i;
        let mut escaped = false;
        loop {
            self.i = find_special(self.b, self.i)?;
            match self.b[self.i] {
                b'"' => {
                    let end = self.i;
                    self.i += 1;
                    return Some((start, end, escaped));
                }
                b'\\' => {
                    escaped = true;
                    self.i += 1;
                    match self.peek()? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 1,
                        b'u' => {
                            let hex = self.b.get(self.i + 1..self.i + 5)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            self.i += 5;
                        }
                        _ => return None,
                    }
                }
                c if c >= 0x80 => {
                    let width = match c {
                        0xc2..=0xdf => 2,
                        0xe0..=0xef => 3,
                        0xf0..=0xf4 => 4,
                        _ => return None,
                    };
                    std::str::from_utf8(self.b.get(self.i..self.i + width)?).ok()?;
                    self.i += width;
                }
                _ => return None, // a raw control character
            }
        }
    }

    /// A number, by JSON's grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            self.some_digits()?;
        }
        Some(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
    }

    fn some_digits(&mut self) -> Option<()> {
        let start = self.i;
        self.digits();
        (self.i > start).then_some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if self.b.get(self.i..self.i + word.len())? != word {
            return None;
        }
        self.i += word.len();
        Some(())
    }
}

/// Index of the first `"`, `\\`, control character (< 0x20) or non-ASCII byte in `b` from `i`
/// on: where a string's plain ASCII run ends. Sixteen bytes at a time with SSE2, which every x86-64 CPU has.
#[cfg(target_arch = "x86_64")]
fn find_special(b: &[u8], mut i: usize) -> Option<usize> {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    while let Some(chunk) = b.get(i..i + 16) {
        // SAFETY: SSE2 is part of x86-64 itself (always enabled for this target), `chunk` is 16
        // readable bytes, and `loadu` takes any alignment.
        let hits = unsafe {
            let x = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
            let quote = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'"' as i8));
            let backslash = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'\\' as i8));
            // x <= 0x1f, unsigned: min(x, 0x1f) == x.
            let control = _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(0x1f)), x);
            // The byte's own top bit marks non-ASCII.
            _mm_movemask_epi8(_mm_or_si128(
                _mm_or_si128(_mm_or_si128(quote, backslash), control),
                x,
            ))
        };
        if hits != 0 {
            return Some(i + hits.trailing_zeros() as usize);
        }
        i += 16;
    }
    find_special_swar(b, i)
}

#[cfg(not(target_arch = "x86_64"))]
fn find_special(b: &[u8], i: usize) -> Option<usize> {
    find_special_swar(b, i)
}

/// [`find_special`] eight bytes at a time in plain integer arithmetic.
fn find_special_swar(b: &[u8], mut i: usize) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = ONES * 0x80;
    // The classic "has a zero byte" / "has a byte below n" tests: the lowest flagged byte is
    // always a true hit (borrows only spill into higher bytes), which is all that is used.
    let below = |w: u64, n: u8| w.wrapping_sub(ONES * u64::from(n)) & !w & HIGH;
    while let Some(chunk) = b.get(i..i + 8) {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let hits = below(w ^ (ONES * u64::from(b'"')), 1)
            | below(w ^ (ONES * u64::from(b'\\')), 1)
            | below(w, 0x20)
            | (w & HIGH);
        if hits != 0 {
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b.get(i..)?
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || !(0x20..0x80).contains(&c))
        .map(|p| i + p)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde::de::IgnoredAny;
    use serde_json::{Value, json};

    use super::*;

    const INNER: Shape = &[whole("id"), whole("name")];
    const SHAPE: Shape = &[whole("a"), object("o", INNER), each("list", INNER)];

    fn pruned(body: &str) -> Option<Value> {
        prune(body.as_bytes(), SHAPE).map(|out| serde_json::from_slice(&out).unwrap())
    }

    #[test]
    fn keeps_the_named_members_and_prunes_nested_objects_and_arrays() {
        let body = r#" {
            "skip": {"deep": [1, 2.5e-3, "x\"y", null, true, false, {"k": []}]},
            "a": "kept \u00e9 \\ verbatim",
            "o": {"id": 7, "name": "n", "url": "https://x"},
            "list": [{"id": 1, "extra": 2}, 3, {"name": "z"}],
            "tail": -0.0
        } "#;
        assert_eq!(
            pruned(body).unwrap(),
            json!({"a": "kept é \\ verbatim", "o": {"id": 7, "name": "n"}, "list": [{"id": 1}, 3, {"name": "z"}]})
        );
        // Escapes are copied as they came, not decoded and re-encoded.
        let out = prune(br#"{"a":"\u00e9"}"#, SHAPE).unwrap();
        assert_eq!(out, br#"{"a":"\u00e9"}"#);
    }

    #[test]
    fn a_member_of_another_type_than_the_shape_expects_is_kept_whole() {
        assert_eq!(
            pruned(r#"{"o": null, "list": {"id": 1, "x": 2}}"#).unwrap(),
            json!({"o": null, "list": {"id": 1, "x": 2}})
        );
        assert_eq!(
            pruned(r#"{"o": [1, {"x": 1}]}"#).unwrap(),
            json!({"o": [1, {"x": 1}]})
        );
    }

    #[test]
    fn duplicate_kept_keys_stay_duplicated_for_serde_to_refuse() {
        let out = prune(br#"{"a": 1, "a": 2}"#, SHAPE).unwrap();
        assert_eq!(out, br#"{"a":1,"a":2}"#);
    }

    #[test]
    fn what_it_does_not_vouch_for_is_left_to_serde() {
        for bad in [
            "",
            "   ",
            "[]",
            "\"x\"",
            "{",
            "{}}",
            "{} x",
            "{\"a\":}",
            "{\"a\" 1}",
            "{\"a\":1,}",
            "{,}",
            "{\"a\":[1,]}",
            "{\"a\":01}",
            "{\"a\":1.}",
            "{\"a\":.5}",
            "{\"a\":-}",
            "{\"a\":+1}",
            "{\"a\":1e}",
            "{\"a\":tru}",
            "{\"a\":nul}",
            "{\"a\":\"x\ty\"}",
            "{\"a\":\"\\x\"}",
            "{\"a\":\"\\u12g4\"}",
            "{\"a\":\"unterminated}",
            "{\"k\\u0061\":1}",
            "{a:1}",
            "{'a':1}",
        ] {
            assert_eq!(prune(bad.as_bytes(), SHAPE), None, "{bad:?}");
        }
        for bad_utf8 in [
            &b"{\"a\":\"\xff\"}"[..],
            b"{\"a\":\"\xc3\"}",
            b"{\"a\":\"\xc3(\"}",
            b"{\"a\":\"\xe2\x82\"}",
            b"{\"a\":\"\xed\xa0\x80\"}",
            b"{\"a\":\"\xc0\xaf\"}",
            b"{\"a\":\"\xf5\x80\x80\x80\"}",
            b"{\"x\xc3\xa9\xff\":1}",
            b"{\"a\":1}\xc3\xa9",
            b"{\"a\":\xc3\xa9}",
        ] {
            assert_eq!(prune(bad_utf8, SHAPE), None, "invalid UTF-8 {bad_utf8:?}");
            assert!(
                serde_json::from_slice::<IgnoredAny>(bad_utf8).is_err()
                    || std::str::from_utf8(bad_utf8).is_err()
            );
        }
        let good = "{\"a\":\"é ü 中文 🚀 a\\u00e9\", \"ключ\": \"значение\"}";
        assert_eq!(
            prune(good.as_bytes(), SHAPE).unwrap(),
            "{\"a\":\"é ü 中文 🚀 a\\u00e9\"}".as_bytes()
        );
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(100), "]".repeat(100));
        assert_eq!(prune(deep.as_bytes(), SHAPE), None, "deeper than MAX_DEPTH");
        assert!(serde_json::from_str::<IgnoredAny>(&deep).is_ok());
    }

    #[test]
    fn find_special_finds_the_first_hit_in_every_position() {
        for find in [find_special, find_special_swar] {
            for len in 0..40 {
                for at in 0..len {
                    for c in [b'"', b'\\', b'\n', 0, 0x1f, 0x80, 0xc3, 0xff] {
                        let mut s = vec![b'a'; len];
                        s[at] = c;
                        // Bytes after the hit must not move it (borrows spill upwards only).
                        for later in s.iter_mut().skip(at + 1) {
                            *later = 0;
                        }
                        assert_eq!(find(&s, 0), Some(at), "len {len} at {at} byte {c}");
                        assert_eq!(find(&s, at), Some(at), "len {len} from and at {at} byte {c}");
                    }
                }
                let plain: Vec<u8> = (0..len)
                    .map(|i| [b' ', b'~', 0x7f, b'a', b'Z', b'!', b'#', b'['][i % 8])
                    .collect();
                assert_eq!(find(&plain, 0), None, "{plain:?}");
                assert_eq!(find(&plain, len / 2), None, "{plain:?}");
            }
        }
    }

    /// JSON-ish text: valid JSON, then perhaps mangled by one edit, to explore the boundary.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "(?s).{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec(
                    (
                        prop_oneof![
                            Just("a".to_owned()),
                            Just("o".to_owned()),
                            Just("list".to_owned()),
                            Just("id".to_owned()),
                            "[a-z]{0,3}"
                        ],
                        inner
                    ),
                    0..6
                )
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    /// What pruning means, on parsed values.
    fn model(v: &Value, keep: Keep) -> Value {
        match (keep, v) {
            (Keep::Object(shape), Value::Object(map)) => Value::Object(
                map.iter()
                    .filter_map(|(k, v)| {
                        shape
                            .iter()
                            .find(|m| m.key == k)
                            .map(|m| (k.clone(), model(v, m.keep)))
                    })
                    .collect(),
            ),
            (Keep::EachObject(shape), Value::Array(items)) => {
                Value::Array(items.iter().map(|v| model(v, Keep::Object(shape))).collect())
            }
            _ => v.clone(),
        }
    }

    proptest! {
        #[test]
        fn never_vouches_for_what_serde_json_refuses(
            v in json_value(),
            pretty in any::<bool>(),
            edit in prop::option::of((any::<prop::sample::Index>(), prop::sample::select(vec![
                "", "\"", "\\", ",", ":", "{", "}", "[", "]", "-", ".", "e", "0", " ", "\u{1}", "\\u", "tru",
            ]), 0usize..3)),
            flip in prop::option::of((any::<prop::sample::Index>(), any::<u8>())),
        ) {
            let obj = json!({"a": v.clone(), "o": v.clone(), "list": [v.clone(), {"id": v}]});
            let mut text = if pretty { serde_json::to_string_pretty(&obj) } else { serde_json::to_string(&obj) }.unwrap();
            if let Some((at, insert, remove)) = edit {
                let mut cut = at.index(text.len() + 1);
                while !text.is_char_boundary(cut) { cut -= 1; }
                let mut end = (cut + remove).min(text.len());
                while !text.is_char_boundary(end) { end += 1; }
                text.replace_range(cut..end, insert);
            }
            let mut bytes = text.into_bytes();
            // One byte set to anything: broken UTF-8 and stray bytes too.
            if let Some((at, byte)) = flip.filter(|_| !bytes.is_empty()) {
                let at = at.index(bytes.len());
                bytes[at] = byte;
            }
            let edited = edit.is_some() || flip.is_some();
            let serde_ok = serde_json::from_slice::<IgnoredAny>(&bytes).is_ok();
            match prune(&bytes, SHAPE) {
                Some(out) => {
                    prop_assert!(serde_ok, "skim vouched for invalid JSON: {:?}", String::from_utf8_lossy(&bytes));
                    prop_assert!(std::str::from_utf8(&bytes).is_ok(), "skim vouched for invalid UTF-8: {bytes:?}");
                    prop_assert!(serde_json::from_slice::<IgnoredAny>(&out).is_ok(), "pruned output is not JSON: {:?}", String::from_utf8_lossy(&out));
                }
                // Valid JSON that the skimmer leaves to serde must be an object it chose not to
                // handle; for plain generated objects that never happens.
                None => prop_assert!(!serde_ok || edited, "skim refused valid JSON: {:?}", String::from_utf8_lossy(&bytes)),
            }
        }

        #[test]
        fn keeps_exactly_the_shape_of_valid_objects(v in json_value(), w in json_value()) {
            let obj = json!({"a": v, "x": w.clone(), "o": {"id": w.clone(), "y": 1}, "list": [{"name": w.clone(), "z": v}, w]});
            let text = serde_json::to_string(&obj).unwrap();
            let got: Value = serde_json::from_slice(&prune(text.as_bytes(), SHAPE).unwrap()).unwrap();
            // Numbers compared as serde_json reads the same digits, which the skimmer copies.
            let obj: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(got, model(&obj, Keep::Object(SHAPE)));
        }
    }
}
