//! Which releases an artifact calls for (pure): the policy's `auto` rules against the facts an
//! event brought, and the `after = { env, soak }` gate.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::artifact::{Artifact, ArtifactId};
use crate::domain::{AppName, BranchName, CommitSha, EnvName};
use crate::gitops::Trigger;
use crate::policy::{AfterRule, Policy};

/// One release to perform: `artifact` of `app` into `env`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub env: EnvName,
    pub app: AppName,
    pub artifact: ArtifactId,
    pub trigger: Trigger,
    /// Why, for logs and status descriptions ("branch main", "tag v1.2.0").
    pub reason: String,
    /// The PR comment that asked for it (`/deploy`), edited as the release progresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<crate::notify::ReplyRef>,
    /// Rules this release goes through by someone's right to (`freeze @alice`), each an
    /// `Auger-Override` trailer on the release commit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<String>,
}

/// The `auto` rules that `incoming` (the facts one event brought) satisfies for the merged
/// `artifact`, one plan per environment, in the policy's order.
///
/// Only new facts fire: an artifact that gains a PR number does not redeploy an old branch
/// build. A branch rule fires only for the newest build of that branch (`is_latest`), so a
/// late signal for an older commit never moves an environment backwards. A tag rule fires for
/// the tagged commit whatever its age: tagging is an explicit choice. `pull_request` rules
/// fire for artifacts that gained a pull request; the caller checks the PR is not a fork's.
pub fn auto_plans(
    policy: &Policy,
    artifact: &Artifact,
    incoming: &Artifact,
    is_latest: impl Fn(&BranchName) -> bool,
) -> Vec<Plan> {
    let mut plans = Vec::new();
    for (env, rules) in policy.envs() {
        let reason = if let Some(tag) = incoming.tags.iter().find(|t| rules.auto.matches_tag(t)) {
            Some(format!("tag {tag}"))
        } else if let Some(b) = incoming
            .branches
            .iter()
            .find(|b| rules.auto.matches_branch(b) && is_latest(b))
        {
            Some(format!("branch {b}"))
        } else if rules.auto.pull_request() && !incoming.pull_requests.is_empty() {
            Some(format!("pull request #{}", incoming.pull_requests[0]))
        } else {
            None
        };
        if let Some(reason) = reason {
            plans.push(Plan {
                env: env.clone(),
                app: artifact.app.clone(),
                artifact: artifact.id.clone(),
                trigger: Trigger::Policy,
                reason,
                reply: None,
                overrides: Vec::new(),
            });
        }
    }
    plans
}

/// Whether an `after` gate lets a plan through now (`release::text` words why not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// The artifact is live in `env` and soaks there until `until`.
    Soaking {
        env: EnvName,
        until: DateTime<Utc>,
    },
    /// The artifact is not live in `env` yet (not healthy there, when `env` verifies); it
    /// must then soak there for `soak`.
    Upstream {
        env: EnvName,
        soak: std::time::Duration,
        healthy: bool,
    },
}

/// `live` is what runs in `after.env` now (its source sha) and since when: since it went
/// live, or, when `after.env` verifies (`healthy`), since the cluster reported it healthy.
pub fn gate(
    after: Option<&AfterRule>,
    sha: &CommitSha,
    live: Option<(&CommitSha, DateTime<Utc>)>,
    healthy: bool,
    now: DateTime<Utc>,
) -> Gate {
    let Some(after) = after else { return Gate::Open };
    match live {
        Some((live_sha, since)) if live_sha == sha => {
            let soak = chrono::Duration::from_std(after.soak).unwrap_or(chrono::Duration::MAX);
            let until = since.checked_add_signed(soak).unwrap_or(DateTime::<Utc>::MAX_UTC);
            if now >= until {
                Gate::Open
            } else {
                Gate::Soaking {
                    env: after.env.clone(),
                    until,
                }
            }
        }
        _ => Gate::Upstream {
            env: after.env.clone(),
            soak: after.soak,
            healthy,
        },
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::artifact::Source;
    use crate::domain::{RepoName, TagName};

    const POLICY: &str = r#"
app = "web"
repo = "acme/web"
template = "t"
[env.staging]
auto = { branch = "main" }
merge = "auto"
[env.production]
auto = { tag = "v*" }
after = { env = "staging", soak = "30m" }
[env.pr]
auto = { pull_request = true }
"#;

    /// `web@aaaaaaaaaaaa` of `acme/web` with these facts.
    pub(in crate::release) fn artifact(branches: &[&str], tags: &[&str], prs: &[u64]) -> Artifact {
        let mut a = Artifact::new(
            AppName::new("web").unwrap(),
            RepoName::new("acme/web").unwrap(),
            CommitSha::new("a".repeat(40)).unwrap(),
            Source {
                kind: "status".into(),
                name: "ci".into(),
                target_url: None,
            },
        );
        a.branches = branches.iter().map(|b| BranchName::new(*b).unwrap()).collect();
        a.tags = tags.iter().map(|t| TagName::new(*t).unwrap()).collect();
        a.pull_requests = prs.to_vec();
        a
    }

    fn envs(plans: &[Plan]) -> Vec<&str> {
        plans.iter().map(|p| p.env.as_str()).collect()
    }

    #[test]
    fn each_rule_fires_on_its_own_new_fact() {
        let p = Policy::from_toml("web.toml", POLICY).unwrap();
        let merged = artifact(&["main"], &["v1.0.0"], &[7]);
        assert_eq!(
            envs(&auto_plans(&p, &merged, &artifact(&["main"], &[], &[]), |_| true)),
            ["staging"]
        );
        assert_eq!(
            envs(&auto_plans(&p, &merged, &artifact(&[], &["v1.0.0"], &[]), |_| {
                true
            })),
            ["production"]
        );
        assert_eq!(
            envs(&auto_plans(&p, &merged, &artifact(&[], &[], &[7]), |_| true)),
            ["pr"]
        );
        let plans = auto_plans(&p, &merged, &artifact(&["feature"], &["nightly"], &[]), |_| true);
        assert!(plans.is_empty());
    }

    #[test]
    fn an_older_build_of_a_branch_does_not_move_the_environment_back() {
        let p = Policy::from_toml("web.toml", POLICY).unwrap();
        let a = artifact(&["main"], &[], &[]);
        assert!(auto_plans(&p, &a, &a, |_| false).is_empty());
    }

    #[test]
    fn the_after_gate_waits_for_the_upstream_release_and_the_soak() {
        let p = Policy::from_toml("web.toml", POLICY).unwrap();
        let after = p
            .env(&EnvName::new("production").unwrap())
            .unwrap()
            .after
            .as_ref();
        let sha = CommitSha::new("a".repeat(40)).unwrap();
        let other = CommitSha::new("b".repeat(40)).unwrap();
        let t0 = DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z")
            .unwrap()
            .to_utc();
        let min = chrono::Duration::minutes;
        assert_eq!(gate(None, &sha, None, false, t0), Gate::Open);
        let staging = EnvName::new("staging").unwrap();
        let upstream = Gate::Upstream {
            env: staging.clone(),
            soak: std::time::Duration::from_secs(30 * 60),
            healthy: false,
        };
        assert_eq!(gate(after, &sha, None, false, t0), upstream);
        assert_eq!(
            gate(after, &sha, Some((&other, t0)), false, t0 + min(60)),
            upstream
        );
        assert_eq!(
            gate(after, &sha, Some((&sha, t0)), false, t0 + min(29)),
            Gate::Soaking {
                env: staging,
                until: t0 + min(30)
            }
        );
        assert_eq!(
            gate(after, &sha, Some((&sha, t0)), false, t0 + min(30)),
            Gate::Open
        );
    }
}
