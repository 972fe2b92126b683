//! Who a GitHub account is to a policy: resolves `permission:`, `team:` and `user:`
//! principals through the forge (design §10: never from a payload), with a short cache so a
//! burst of reviews does not ask GitHub the same question many times.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::domain::RepoName;
use crate::forge::{Forge, ForgeResult, PermissionLevel};
use crate::policy::{Level, Principal};

/// How long an answer from GitHub is trusted. Short: a removed team member must lose the
/// right to approve quickly.
pub const CACHE_TTL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Question {
    Permission {
        repo: String,
        login: String,
    },
    Team {
        org: String,
        slug: String,
        login: String,
    },
}

#[derive(Clone, Copy)]
enum Answer {
    Permission(PermissionLevel),
    Member(bool),
}

pub struct People {
    forge: Arc<dyn Forge>,
    cache: Mutex<HashMap<Question, (Answer, Instant)>>,
    ttl: Duration,
}

impl People {
    pub fn new(forge: Arc<dyn Forge>) -> Self {
        People {
            forge,
            cache: Mutex::new(HashMap::new()),
            ttl: CACHE_TTL,
        }
    }

    /// Whether `login` is covered by any of `principals`; `permission:` principals are
    /// checked on `repo` (the app's source repository).
    pub async fn admits(&self, principals: &[Principal], repo: &RepoName, login: &str) -> ForgeResult<bool> {
        self.admits_account(principals, repo, login, None).await
    }

    /// Like [`Self::admits`], and when the account's numeric id is known, a `user:` principal
    /// must resolve to that id: a renamed or re-registered login cannot inherit a right.
    pub async fn admits_account(
        &self,
        principals: &[Principal],
        repo: &RepoName,
        login: &str,
        id: Option<u64>,
    ) -> ForgeResult<bool> {
        for p in principals {
            let ok = match p {
                Principal::User(user) if !user.eq_ignore_ascii_case(login) => false,
                Principal::User(user) => match id {
                    Some(id) => self.forge.user_id(user).await? == id,
                    None => true,
                },
                Principal::Permission(min) => self.permission(repo, login).await? >= to_level(*min),
                Principal::Team { org, slug } => self.is_member(org, slug, login).await?,
            };
            if ok {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn permission(&self, repo: &RepoName, login: &str) -> ForgeResult<PermissionLevel> {
        let q = Question::Permission {
            repo: repo.as_str().to_ascii_lowercase(),
            login: login.to_ascii_lowercase(),
        };
        if let Some(Answer::Permission(p)) = self.cached(&q) {
            return Ok(p);
        }
        let p = self.forge.permission(repo, login).await?;
        self.store(q, Answer::Permission(p));
        Ok(p)
    }

    async fn is_member(&self, org: &str, slug: &str, login: &str) -> ForgeResult<bool> {
        let q = Question::Team {
            org: org.to_ascii_lowercase(),
            slug: slug.to_ascii_lowercase(),
            login: login.to_ascii_lowercase(),
        };
        if let Some(Answer::Member(m)) = self.cached(&q) {
            return Ok(m);
        }
        let m = self.forge.is_team_member(org, slug, login).await?;
        self.store(q, Answer::Member(m));
        Ok(m)
    }

    fn cached(&self, q: &Question) -> Option<Answer> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(q)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(a, _)| *a)
    }

    fn store(&self, q: Question, a: Answer) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() > 10_000 {
            cache.retain(|_, (_, at)| at.elapsed() < self.ttl);
        }
        cache.insert(q, (a, Instant::now()));
    }
}

fn to_level(l: Level) -> PermissionLevel {
    match l {
        Level::Write => PermissionLevel::Write,
        Level::Maintain => PermissionLevel::Maintain,
        Level::Admin => PermissionLevel::Admin,
    }
}
