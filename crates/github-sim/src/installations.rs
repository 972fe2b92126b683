//! The App's installation lifecycle: installing on an account or an enterprise, choosing its
//! repositories, suspending, deleting. Each change emits the `installation` or
//! `installation_repositories` webhook GitHub sends, and the installation's tokens follow it: a
//! deleted installation's tokens stop working (401), a suspended one's are refused (403), and
//! installing again makes a new installation with a new id.

use std::collections::BTreeSet;

use anyhow::{Result, anyhow, bail};
use chrono::Utc;
use serde_json::{Map, Value, json};

use crate::state::{AccountKind, InstallTarget, Installation, Principal, State};
use crate::{GithubSim, Inner, actions, render};

/// Full names of the repositories installation `id` reaches, in name order.
pub(crate) fn repositories_of(st: &State, id: u64) -> Vec<String> {
    st.repos
        .values()
        .filter(|r| st.installation_of(r).is_some_and(|i| i.id == id))
        .map(|r| r.full_name())
        .collect()
}

fn repo_list(st: &State, names: &[String]) -> Value {
    Value::Array(
        names
            .iter()
            .filter_map(|n| st.repo(n))
            .map(render::installation_repo)
            .collect(),
    )
}

/// Sends `event` for installation `inst` with the members given, the installation and sender.
fn notify(inner: &Inner, st: &State, event: &str, inst: &Installation, head: Value, sender: &str) {
    let mut env = Map::new();
    env.insert("installation".into(), render::installation(st, &inner.urls, inst));
    env.insert("sender".into(), render::login(st, &inner.urls, sender));
    actions::emit(inner, event, head, env);
}

impl GithubSim {
    fn install(
        &self,
        target: InstallTarget,
        selected: Option<BTreeSet<String>>,
        sender: &str,
    ) -> Result<u64> {
        let inner = &self.inner;
        let mut st = inner.lock();
        if let InstallTarget::Account(login) = &target {
            match st.account(login) {
                Some(a) if a.kind != AccountKind::Bot => {}
                _ => bail!("no user or organization {login}"),
            }
            if st
                .installations
                .iter()
                .any(|i| i.account_login().is_some_and(|a| a.eq_ignore_ascii_case(login)))
            {
                bail!("the App is already installed on {login}");
            }
        }
        if let Some(set) = &selected
            && let Some(missing) = set.iter().find(|r| st.repo(r).is_none())
        {
            bail!("no repository {missing}");
        }
        let id = st.next_id();
        let inst = Installation {
            id,
            target,
            selected,
            suspended_at: None,
            created_at: Utc::now(),
        };
        st.installations.push(inst.clone());
        let repos = repositories_of(&st, id);
        let head = json!({
            "action": "created",
            "repositories": repo_list(&st, &repos),
            "requester": null,
        });
        notify(inner, &st, "installation", &inst, head, sender);
        Ok(id)
    }

    /// Installs the App on the user or organization `account`, on all its repositories
    /// (`installation` created); returns the new installation's id. Its repositories leave the
    /// installation the simulator started with.
    pub fn install_app(&self, account: &str, sender: &str) -> Result<u64> {
        self.install(InstallTarget::Account(account.to_string()), None, sender)
    }

    /// Installs the App on `account` for the `repos` given only (`repository_selection:
    /// selected`).
    pub fn install_app_on(&self, account: &str, repos: &[&str], sender: &str) -> Result<u64> {
        let selected = repos.iter().map(|r| r.to_string()).collect();
        self.install(
            InstallTarget::Account(account.to_string()),
            Some(selected),
            sender,
        )
    }

    /// Installs the App on an enterprise: its account has a slug and a name, but no login.
    pub fn install_app_on_enterprise(&self, slug: &str, sender: &str) -> Result<u64> {
        let enterprise = self.inner.lock().next_id();
        self.install(
            InstallTarget::Enterprise {
                id: enterprise,
                slug: slug.to_string(),
            },
            None,
            sender,
        )
    }

    /// Deletes installation `id` (`installation` deleted): its tokens stop working and its
    /// repositories no longer reach the App.
    pub fn uninstall_app(&self, id: u64, sender: &str) -> Result<()> {
        let inner = &self.inner;
        let mut st = inner.lock();
        let inst = st
            .installation(id)
            .cloned()
            .ok_or_else(|| anyhow!("no installation {id}"))?;
        let repos = repositories_of(&st, id);
        let head = json!({"action": "deleted", "repositories": repo_list(&st, &repos)});
        notify(inner, &st, "installation", &inst, head, sender);
        st.installations.retain(|i| i.id != id);
        st.tokens
            .retain(|_, p| !matches!(p, Principal::Installation { id: of, .. } if *of == id));
        Ok(())
    }

    /// Suspends (`true`) or unsuspends installation `id` (`installation` suspend/unsuspend).
    /// While suspended its tokens are refused and its repositories send the App no webhooks.
    pub fn suspend_app(&self, id: u64, suspended: bool, sender: &str) -> Result<()> {
        let inner = &self.inner;
        let mut st = inner.lock();
        let inst = st
            .installation_mut(id)
            .ok_or_else(|| anyhow!("no installation {id}"))?;
        if inst.suspended_at.is_some() == suspended {
            bail!(
                "installation {id} is already {}",
                if suspended { "suspended" } else { "active" }
            );
        }
        inst.suspended_at = suspended.then(Utc::now);
        let inst = inst.clone();
        let action = if suspended { "suspend" } else { "unsuspend" };
        let repos = repositories_of(&st, id);
        let head = json!({"action": action, "repositories": repo_list(&st, &repos)});
        notify(inner, &st, "installation", &inst, head, sender);
        Ok(())
    }

    /// Adds `repo` to installation `id`'s selection (`installation_repositories` added).
    pub fn add_installation_repository(&self, id: u64, repo: &str, sender: &str) -> Result<()> {
        self.change_repositories(id, repo, true, sender)
    }

    /// Takes `repo` out of installation `id` (`installation_repositories` removed); an
    /// installation on all repositories becomes one on the others.
    pub fn remove_installation_repository(&self, id: u64, repo: &str, sender: &str) -> Result<()> {
        self.change_repositories(id, repo, false, sender)
    }

    fn change_repositories(&self, id: u64, repo: &str, add: bool, sender: &str) -> Result<()> {
        let inner = &self.inner;
        let mut st = inner.lock();
        let full_name = st
            .repo(repo)
            .map(|r| r.full_name())
            .ok_or_else(|| anyhow!("no repository {repo}"))?;
        let covered = repositories_of(&st, id);
        let inst = st
            .installation_mut(id)
            .ok_or_else(|| anyhow!("no installation {id}"))?;
        let selected = inst
            .selected
            .get_or_insert_with(|| covered.iter().cloned().collect());
        let changed = if add {
            selected.insert(full_name.clone())
        } else {
            selected.remove(&full_name)
        };
        if !changed {
            bail!(
                "{full_name} is {} installation {id}",
                if add { "already in" } else { "not in" }
            );
        }
        let inst = inst.clone();
        let names = [full_name];
        let (added, removed) = if add {
            (repo_list(&st, &names), json!([]))
        } else {
            (json!([]), repo_list(&st, &names))
        };
        let head = json!({
            "action": if add { "added" } else { "removed" },
            "repository_selection": "selected",
            "repositories_added": added,
            "repositories_removed": removed,
            "requester": null,
        });
        notify(inner, &st, "installation_repositories", &inst, head, sender);
        Ok(())
    }

    /// Ids of the App's live installations, oldest first.
    pub fn installation_ids(&self) -> Vec<u64> {
        self.inner.lock().installations.iter().map(|i| i.id).collect()
    }

    /// The installation that reaches `repo`, if any.
    pub fn installation_of(&self, repo: &str) -> Option<u64> {
        let st = self.inner.lock();
        st.repo(repo).and_then(|r| st.installation_of(r)).map(|i| i.id)
    }
}
