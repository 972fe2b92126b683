//! Who may deploy or approve: `permission:write|maintain|admin`, `team:org/slug`, `user:login`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, de};

/// A repository permission level, ordered so that a higher level includes the lower ones
/// (`Admin > Maintain > Write`). Read and triage are deliberately absent: they never deploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    Write,
    Maintain,
    Admin,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Write => "write",
            Level::Maintain => "maintain",
            Level::Admin => "admin",
        }
    }
}

impl FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "write" => Ok(Level::Write),
            "maintain" => Ok(Level::Maintain),
            "admin" => Ok(Level::Admin),
            other => Err(format!(
                "unknown permission {other:?}: expected write, maintain or admin"
            )),
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of `deployers` or `approvers`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Principal {
    /// Anyone with at least this permission on the app's source repository.
    Permission(Level),
    /// Members of a GitHub team.
    Team { org: String, slug: String },
    /// One GitHub user.
    User(String),
}

/// What the caller knows about a GitHub user, re-read from GitHub (never from a payload).
#[derive(Debug, Clone, Default)]
pub struct Actor<'a> {
    pub login: &'a str,
    /// Their permission on the source repository; `None` for read, triage or none.
    pub permission: Option<Level>,
    /// Teams they belong to, as `(org, slug)`.
    pub teams: &'a [(String, String)],
}

impl Principal {
    /// Whether `actor` is covered by this principal. Logins, orgs and team slugs are compared
    /// case-insensitively, as GitHub does.
    pub fn admits(&self, actor: &Actor<'_>) -> bool {
        match self {
            Principal::Permission(min) => actor.permission.is_some_and(|p| p >= *min),
            Principal::Team { org, slug } => actor
                .teams
                .iter()
                .any(|(o, s)| o.eq_ignore_ascii_case(org) && s.eq_ignore_ascii_case(slug)),
            Principal::User(login) => login.eq_ignore_ascii_case(actor.login),
        }
    }
}

/// True when any principal in `list` admits `actor`; an empty list admits nobody.
pub fn any_admits(list: &[Principal], actor: &Actor<'_>) -> bool {
    list.iter().any(|p| p.admits(actor))
}

/// GitHub's rule for user and organisation logins: letters, digits and single inner hyphens.
fn is_login(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 39
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn is_team_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl FromStr for Principal {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        const EXPECTED: &str = "expected permission:write|maintain|admin, team:org/slug or user:login";
        let Some((kind, rest)) = s.split_once(':') else {
            return Err(format!("invalid principal {s:?}: {EXPECTED}"));
        };
        match kind {
            "permission" => rest
                .parse()
                .map(Principal::Permission)
                .map_err(|e| format!("invalid principal {s:?}: {e}")),
            "team" => match rest.split_once('/') {
                Some((org, slug)) if is_login(org) && is_team_slug(slug) => Ok(Principal::Team {
                    org: org.to_owned(),
                    slug: slug.to_owned(),
                }),
                _ => Err(format!(
                    "invalid principal {s:?}: a team is team:org/slug (org: letters, digits, '-'; slug: letters, digits, '-', '_', '.')"
                )),
            },
            "user" if is_login(rest) => Ok(Principal::User(rest.to_owned())),
            "user" => Err(format!(
                "invalid principal {s:?}: {rest:?} is not a GitHub login (letters, digits, single inner '-')"
            )),
            other => Err(format!(
                "invalid principal {s:?}: unknown kind {other:?}; {EXPECTED}"
            )),
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::Permission(l) => write!(f, "permission:{l}"),
            Principal::Team { org, slug } => write!(f, "team:{org}/{slug}"),
            Principal::User(u) => write!(f, "user:{u}"),
        }
    }
}

impl<'de> Deserialize<'de> for Principal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_round_trip_through_text() {
        for s in [
            "permission:write",
            "permission:maintain",
            "permission:admin",
            "team:acme/sre",
            "team:acme/release-managers",
            "user:alice",
        ] {
            let p: Principal = s.parse().unwrap();
            assert_eq!(p.to_string(), s);
        }
        assert_eq!(
            "team:acme/sre".parse::<Principal>(),
            Ok(Principal::Team {
                org: "acme".into(),
                slug: "sre".into()
            })
        );
    }

    #[test]
    fn bad_principals_are_refused_with_the_rule() {
        for (bad, why) in [
            ("alice", "expected permission:"),
            ("permission:read", "unknown permission \"read\""),
            ("team:acme", "a team is team:org/slug"),
            ("team:/sre", "a team is team:org/slug"),
            ("user:", "is not a GitHub login"),
            ("user:al ice", "is not a GitHub login"),
            ("group:x", "unknown kind \"group\""),
        ] {
            let e = bad.parse::<Principal>().unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn higher_permissions_include_lower_ones() {
        let write = Principal::Permission(Level::Write);
        let admin = Principal::Permission(Level::Admin);
        let maintainer = Actor {
            login: "bob",
            permission: Some(Level::Maintain),
            teams: &[],
        };
        assert!(write.admits(&maintainer));
        assert!(!admin.admits(&maintainer));
        let reader = Actor {
            login: "eve",
            ..Actor::default()
        };
        assert!(!write.admits(&reader));
    }

    #[test]
    fn users_and_teams_compare_case_insensitively() {
        let teams = [("Acme".to_owned(), "SRE".to_owned())];
        let actor = Actor {
            login: "Alice",
            permission: None,
            teams: &teams,
        };
        assert!(Principal::User("alice".into()).admits(&actor));
        assert!("team:acme/sre".parse::<Principal>().unwrap().admits(&actor));
        assert!(!"team:acme/ops".parse::<Principal>().unwrap().admits(&actor));
        assert!(!any_admits(&[], &actor), "an empty list admits nobody");
    }
}
