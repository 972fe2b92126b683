//! TEMPORARY: replaced by the reports branch's module on merge; only `state` stays.
use serde::{Deserialize, Serialize};

pub mod current;
pub mod state;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Controller {
    Flux,
    ArgoCd,
    Status,
}

impl Controller {
    pub fn as_str(self) -> &'static str {
        match self {
            Controller::Flux => "flux",
            Controller::ArgoCd => "argocd",
            Controller::Status => "status",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Health {
    Progressing,
    Healthy,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revision(String);
impl Revision {
    pub fn parse(s: &str) -> Option<Revision> {
        let sha = s.rsplit(':').next()?;
        Some(Revision(sha.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub controller: Controller,
    pub object: String,
    pub kind: Option<String>,
    pub namespace: Option<String>,
    pub revision: Option<Revision>,
    pub health: Health,
    pub reason: String,
    pub message: String,
    pub at: Option<chrono::DateTime<chrono::Utc>>,
}
