//! Branch and tag patterns.
//!
//! Patterns are globset globs read the way branch globs usually are: `*` and `?` stop at `/`
//! (`release/*` matches `release/1.0` but not `release/1.0/x`), `**` crosses it, `{a,b}` is an
//! alternation and `[a-z]` a class. A leading `!` negates a pattern. A list matches a name when at
//! least one positive pattern matches and no negated one does; a list without a positive pattern
//! could never match, so it is refused at parse time rather than silently never deploying.

use std::fmt;

use globset::{GlobBuilder, GlobMatcher};
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

/// One pattern, possibly negated.
#[derive(Debug, Clone)]
pub struct RefGlob {
    source: String,
    negated: bool,
    matcher: GlobMatcher,
}

impl RefGlob {
    /// Parses `pattern`, or `!pattern` for a negation.
    pub fn new(source: &str) -> Result<Self, String> {
        let (negated, pattern) = match source.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, source),
        };
        if pattern.is_empty() {
            return Err(format!("invalid glob {source:?}: the pattern is empty"));
        }
        let glob = GlobBuilder::new(pattern)
            // `*` must not cross `/`, so `release/*` stays one level deep; `**` does cross it.
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| format!("invalid glob {source:?}: {}", e.kind()))?;
        Ok(Self {
            source: source.to_owned(),
            negated,
            matcher: glob.compile_matcher(),
        })
    }

    /// The pattern as written, including a leading `!`.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn is_negated(&self) -> bool {
        self.negated
    }

    /// Whether the pattern (ignoring negation) matches `name`.
    fn hits(&self, name: &str) -> bool {
        self.matcher.is_match(name)
    }
}

impl PartialEq for RefGlob {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for RefGlob {}

impl fmt::Display for RefGlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// `branch = "main"` or `branch = ["release/**", "!release/old/*"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefGlobs(Vec<RefGlob>);

impl fmt::Display for RefGlobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list: Vec<&str> = self.0.iter().map(RefGlob::as_str).collect();
        f.write_str(&list.join(", "))
    }
}

impl RefGlobs {
    /// Builds a list, refusing one that could never match anything.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, String> {
        let globs = patterns
            .iter()
            .map(|p| RefGlob::new(p.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_globs(globs)
    }

    fn from_globs(globs: Vec<RefGlob>) -> Result<Self, String> {
        if globs.iter().all(RefGlob::is_negated) {
            return Err(if globs.is_empty() {
                "an empty pattern list never matches; remove the key instead".to_owned()
            } else {
                "only negated patterns: nothing can ever match; add a positive pattern such as \"**\""
                    .to_owned()
            });
        }
        Ok(Self(globs))
    }

    /// True when some positive pattern matches and no negated pattern does.
    pub fn matches(&self, name: &str) -> bool {
        let mut positive = false;
        for glob in &self.0 {
            if glob.hits(name) {
                if glob.negated {
                    return false;
                }
                positive = true;
            }
        }
        positive
    }

    pub fn patterns(&self) -> &[RefGlob] {
        &self.0
    }
}

impl<'de> Deserialize<'de> for RefGlob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RefGlob::new(&s).map_err(de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for RefGlobs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A hand-written visitor instead of `#[serde(untagged)]`: untagged enums replace the
        // real cause with "did not match any variant", and lose the index of a bad element.
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RefGlobs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a glob or a list of globs")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RefGlobs, E> {
                let glob = RefGlob::new(s).map_err(E::custom)?;
                RefGlobs::from_globs(vec![glob]).map_err(E::custom)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RefGlobs, A::Error> {
                let mut globs = Vec::new();
                while let Some(glob) = seq.next_element::<RefGlob>()? {
                    globs.push(glob);
                }
                RefGlobs::from_globs(globs).map_err(de::Error::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn globs(p: &[&str]) -> RefGlobs {
        RefGlobs::new(p).unwrap()
    }

    #[test]
    fn a_plain_name_matches_only_itself() {
        let g = globs(&["main"]);
        assert!(g.matches("main"));
        assert!(!g.matches("main2"));
        assert!(!g.matches("x/main"));
    }

    #[test]
    fn single_star_stays_within_one_path_level() {
        let g = globs(&["release/*"]);
        assert!(g.matches("release/1.0"));
        assert!(!g.matches("release/1.0/x"));
        assert!(!g.matches("release"));
    }

    #[test]
    fn double_star_crosses_levels() {
        let g = globs(&["release/**"]);
        assert!(g.matches("release/1.0"));
        assert!(g.matches("release/1.0/x"));
        assert!(!g.matches("releases/1.0"));
        assert!(globs(&["**"]).matches("feature/a/b"));
    }

    #[test]
    fn alternation_picks_any_branch_listed() {
        let g = globs(&["{main,develop}"]);
        assert!(g.matches("main") && g.matches("develop"));
        assert!(!g.matches("feature"));
    }

    #[test]
    fn negation_in_a_list_carves_out_names() {
        let g = globs(&["**", "!wip/*"]);
        assert!(g.matches("feature/login"));
        assert!(!g.matches("wip/login"));
        // `*` in the negation stops at `/`, so deeper wip branches still match `**`.
        assert!(g.matches("wip/a/b"));
    }

    #[test]
    fn tag_patterns_use_the_same_rules() {
        let g = globs(&["v*"]);
        assert!(g.matches("v1.2.0"));
        assert!(!g.matches("release-1"));
        assert!(!g.matches("v1/rc"));
    }

    #[test]
    fn lists_that_can_never_match_are_refused() {
        let only_negations = RefGlobs::new(&["!wip/*"]).unwrap_err();
        assert!(
            only_negations.contains("only negated patterns"),
            "{only_negations}"
        );
        let empty = RefGlobs::new::<&str>(&[]).unwrap_err();
        assert!(empty.contains("empty pattern list"), "{empty}");
    }

    #[test]
    fn malformed_patterns_name_the_problem() {
        let e = RefGlob::new("{main,dev").unwrap_err();
        assert!(
            e.starts_with("invalid glob \"{main,dev\": unclosed alternate group"),
            "{e}"
        );
        assert!(RefGlob::new("!").unwrap_err().contains("empty"));
    }
}
