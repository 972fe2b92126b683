//! The policies in force, replaceable while auger runs (design §17: reload on SIGHUP and on a
//! push to the config repository).
//!
//! Readers take a snapshot ([`LivePolicies::current`]) and work on it to the end of what they
//! do, so one delivery or one release pass never sees half of an old set and half of a new one.
//! A set is only ever replaced by another that loaded and validated as a whole.

use std::sync::{Arc, RwLock};

use super::PolicySet;
use crate::domain::CommitSha;

/// Where the set in force came from, for logs, `/healthz`-style reports and deduplicating
/// reloads of the same config commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The policy folder on disk (`[paths] policies`).
    Folder,
    /// A commit of the config repository (`[policies] repo`).
    Commit(CommitSha),
}

struct InForce {
    set: Arc<PolicySet>,
    origin: Origin,
}

/// The current [`PolicySet`], shared by the edge, the worker, the release loop and the HTTP
/// routes.
pub struct LivePolicies {
    in_force: RwLock<InForce>,
}

impl LivePolicies {
    pub fn new(set: PolicySet, origin: Origin) -> Arc<Self> {
        Arc::new(LivePolicies {
            in_force: RwLock::new(InForce {
                set: Arc::new(set),
                origin,
            }),
        })
    }

    /// A set loaded from the policy folder, for tests and tools that never reload.
    pub fn fixed(set: PolicySet) -> Arc<Self> {
        Self::new(set, Origin::Folder)
    }

    /// The set in force now. Hold on to it for the whole of one piece of work.
    pub fn current(&self) -> Arc<PolicySet> {
        self.read().set.clone()
    }

    /// Where the set in force was loaded from.
    pub fn origin(&self) -> Origin {
        self.read().origin.clone()
    }

    /// Puts `set` in force; work already holding the old one finishes on it.
    pub fn replace(&self, set: PolicySet, origin: Origin) {
        let mut in_force = self.in_force.write().unwrap_or_else(|p| p.into_inner());
        *in_force = InForce {
            set: Arc::new(set),
            origin,
        };
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, InForce> {
        // A panic while replacing cannot leave a torn value: the assignment is one move.
        self.in_force.read().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;

    fn set(app: &str) -> PolicySet {
        let text = format!(
            "app = \"{app}\"\nrepo = \"acme/{app}\"\ntemplate = \"basic\"\n[artifact]\nsignals = [\"status:ci\"]\n[env.staging]\nmerge = \"direct\"\n"
        );
        PolicySet::from_policies([Policy::from_toml(format!("policies/{app}.toml"), &text).unwrap()]).unwrap()
    }

    #[test]
    fn a_snapshot_taken_before_a_reload_keeps_the_old_set() {
        let live = LivePolicies::fixed(set("web"));
        let before = live.current();
        live.replace(
            set("api"),
            Origin::Commit(CommitSha::new("a".repeat(40)).unwrap()),
        );
        assert!(before.get(&"web".parse().unwrap()).is_some());
        assert!(live.current().get(&"api".parse().unwrap()).is_some());
        assert!(live.current().get(&"web".parse().unwrap()).is_none());
        assert!(matches!(live.origin(), Origin::Commit(_)));
    }
}
