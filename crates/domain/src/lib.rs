//! Validated names. Everything that ends up in a path, a ref name or a URL is one of these
//! newtypes, and the only way to build one is through a check, so `..`, `/`, spaces or
//! uppercase can never reach the file system or the ref namespace.

/// Why a name was refused. The message says what the rule is, so it can be shown as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{kind} {value:?} is invalid: {rule}")]
    Invalid {
        kind: &'static str,
        value: String,
        rule: &'static str,
    },
}

impl NameError {
    /// The error for a `kind` value (e.g. "app name") that broke `rule`; the value is kept,
    /// cut to 120 characters, for the message.
    pub fn new(kind: &'static str, value: &str, rule: &'static str) -> Self {
        NameError::Invalid {
            kind,
            value: value.chars().take(120).collect(),
            rule,
        }
    }
}

const SLUG_RULE: &str = "must match [a-z0-9][a-z0-9-]{0,52} (lowercase letters, digits and '-', at most 53 characters, not starting with '-')";

/// The naming rule of design §1, shared by apps and environments.
fn check_slug(s: &str) -> Result<(), &'static str> {
    let bytes = s.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 53
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    if ok { Ok(()) } else { Err(SLUG_RULE) }
}

/// A `String` newtype that only a check can build: `new`, `FromStr` and `Deserialize` all go
/// through `$check`, which answers the rule a refused value broke; the error names `$kind`.
/// Exported so other crates (the bot's policy names) define theirs the same way; the crate
/// using it needs `serde`.
#[macro_export]
macro_rules! string_newtype {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $check:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn new(s: impl Into<String>) -> Result<Self, $crate::NameError> {
                let s = s.into();
                let check: fn(&str) -> Result<(), &'static str> = $check;
                match check(&s) {
                    Ok(()) => Ok(Self(s)),
                    Err(rule) => Err($crate::NameError::new($kind, &s, rule)),
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::NameError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as ::serde::Deserialize>::deserialize(d)?;
                Self::new(s).map_err(::serde::de::Error::custom)
            }
        }
    };
}

string_newtype!(
    /// A deployable unit (design §1): `[a-z0-9][a-z0-9-]{0,52}`.
    AppName,
    "app name",
    check_slug
);

string_newtype!(
    /// A deployment target such as `staging`; same rule as apps.
    EnvName,
    "environment name",
    check_slug
);

string_newtype!(
    /// A full commit id: exactly 40 lowercase hex digits. Abbreviations are resolved by the
    /// store, never stored.
    CommitSha,
    "commit sha",
    |s| {
        if s.len() == 40 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            Ok(())
        } else {
            Err("must be 40 lowercase hex digits")
        }
    }
);

impl CommitSha {
    /// The first `n` hex digits, for display and short ids.
    pub fn short(&self, n: usize) -> &str {
        &self.0[..n.min(40)]
    }
}

/// GitHub's rules for owners: alphanumerics and single hyphens; repos: alphanumerics, `-`, `_`
/// and `.` but never `.` or `..` alone.
fn check_repo(s: &str) -> Result<(), &'static str> {
    const RULE: &str = "must be owner/name (owner: letters, digits, '-'; name: letters, digits, '-', '_', '.'; neither '.' nor '..')";
    let Some((owner, name)) = s.split_once('/') else {
        return Err(RULE);
    };
    let owner_ok = !owner.is_empty()
        && owner.len() <= 39
        && !owner.starts_with('-')
        && owner.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let name_ok = !name.is_empty()
        && name.len() <= 100
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if owner_ok && name_ok { Ok(()) } else { Err(RULE) }
}

string_newtype!(
    /// A GitHub repository as `owner/name`.
    RepoName,
    "repository",
    check_repo
);

impl RepoName {
    pub fn owner(&self) -> &str {
        self.0.split_once('/').map_or("", |(o, _)| o)
    }
    pub fn name(&self) -> &str {
        self.0.split_once('/').map_or("", |(_, n)| n)
    }
}

/// Git's `check-ref-format` rules, applied to branch and tag names we receive from webhooks and
/// CI. We never build paths from these (they are percent-encoded into a single ref component),
/// but refusing what git itself refuses keeps garbage out of the ledger.
fn check_ref_name(s: &str) -> Result<(), &'static str> {
    const RULE: &str = "is not a valid git branch or tag name";
    let bad = s.is_empty()
        || s.len() > 255
        || s.starts_with('/')
        || s.ends_with('/')
        || s.ends_with('.')
        || s.ends_with(".lock")
        || s.starts_with('-')
        || s == "@"
        || s.contains("..")
        || s.contains("//")
        || s.contains("@{")
        || s.split('/').any(|c| c.starts_with('.'))
        || s.bytes().any(|b| {
            b < 0x20 || b == 0x7f || matches!(b, b' ' | b'~' | b'^' | b':' | b'?' | b'*' | b'[' | b'\\')
        });
    if bad { Err(RULE) } else { Ok(()) }
}

string_newtype!(
    /// A branch name such as `main` or `release/1.0` (without `refs/heads/`).
    BranchName,
    "branch name",
    check_ref_name
);

string_newtype!(
    /// A tag name such as `v1.2.0` (without `refs/tags/`).
    TagName,
    "tag name",
    check_ref_name
);

impl BranchName {
    /// A single ref-name component: `/` and `%` are percent-encoded so `release` and
    /// `release/1.0` map to sibling refs and cannot collide (design §6).
    pub fn ref_component(&self) -> String {
        percent_encoding::utf8_percent_encode(&self.0, REF_COMPONENT).to_string()
    }

    /// The inverse of [`BranchName::ref_component`].
    pub fn from_ref_component(c: &str) -> Result<Self, NameError> {
        let decoded = percent_encoding::percent_decode_str(c)
            .decode_utf8()
            .map_err(|_| NameError::new("branch ref component", c, "is not valid percent-encoded UTF-8"))?;
        Self::new(decoded.into_owned())
    }
}

/// Characters escaped in a branch's ref component. `%` first of all, so decoding is unambiguous.
const REF_COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b'%').add(b'/').add(b' ');

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names_follow_the_design_rule() {
        for ok in ["frontend", "a", "0", "api-v2", &"a".repeat(53)] {
            assert!(AppName::new(ok).is_ok(), "{ok} should be valid");
        }
        for bad in [
            "",
            "-x",
            "Frontend",
            "front end",
            "a/b",
            "..",
            "../etc",
            "a_b",
            "a.b",
            &"a".repeat(54),
        ] {
            let err = AppName::new(bad).unwrap_err().to_string();
            assert!(err.contains("app name"), "{err}");
        }
    }

    #[test]
    fn env_names_refuse_path_tricks() {
        assert!(EnvName::new("staging").is_ok());
        for bad in ["..", "prod/..", "prod\n", "PROD", "prod "] {
            assert!(EnvName::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sha_is_40_lowercase_hex() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(CommitSha::new(sha).unwrap().short(7), "0123456");
        assert!(CommitSha::new(sha.to_uppercase()).is_err());
        assert!(CommitSha::new(&sha[..39]).is_err());
        assert!(CommitSha::new(format!("{}g", &sha[..39])).is_err());
    }

    #[test]
    fn repo_names_are_owner_slash_name() {
        let r = RepoName::new("acme/front.end_2").unwrap();
        assert_eq!((r.owner(), r.name()), ("acme", "front.end_2"));
        for bad in ["acme", "acme/", "/x", "acme/..", "acme/a/b", "ac me/x", "-acme/x"] {
            assert!(RepoName::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn branch_components_cannot_collide() {
        let a = BranchName::new("release").unwrap();
        let b = BranchName::new("release/1.0").unwrap();
        let c = BranchName::new("release%2F1.0").unwrap();
        assert_eq!(a.ref_component(), "release");
        assert_eq!(b.ref_component(), "release%2F1.0");
        assert_ne!(b.ref_component(), c.ref_component());
        for x in [a, b, c] {
            assert_eq!(BranchName::from_ref_component(&x.ref_component()).unwrap(), x);
        }
        for bad in ["", "a..b", "a b", "a~1", "x.lock", "/x", "x/", "a:b", ".hidden"] {
            assert!(BranchName::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_deserialize_through_validation() {
        let e = serde_json::from_str::<AppName>("\"../x\"").unwrap_err();
        assert!(e.to_string().contains("app name"));
    }

    #[test]
    fn errors_name_the_kind_the_value_and_the_rule() {
        // Branches and tags share git's rule, but the message says which one was refused.
        let e = BranchName::new("a..b").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"branch name "a..b" is invalid: is not a valid git branch or tag name"#
        );
        let e = "v1 ".parse::<TagName>().unwrap_err();
        assert!(e.to_string().starts_with(r#"tag name "v1 " is invalid"#), "{e}");
        let e = RepoName::new("acme/..").unwrap_err();
        assert!(e.to_string().starts_with(r#"repository "acme/..""#), "{e}");
    }
}
