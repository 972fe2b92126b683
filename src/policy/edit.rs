//! `[[env.<name>.edit]]` steps and `[env.<name>.gitops]` (design §16): an environment that edits
//! files already in the gitops repository instead of rendering `<env>/<app>/` from templates.
//!
//! Each step is one of
//! - `kustomize_image = { file, name, tag?, digest? }`: the `images:` entry `name` of a
//!   kustomization gets `newTag` and/or `digest`;
//! - `yaml_set = { file, path, value, kind?, name? }`: the scalar at `path` (dotted, `[n]`
//!   indexes) becomes `value`; `kind` / `name` pick one document of a multi-document file.
//!
//! `tag`, `digest` and `value` are tera strings rendered with the templates' context;
//! `file` is relative to the env's gitops folder, `[env.<name>.gitops] path` (itself a tera
//! string over `env` and `app`, default `{{ env }}/{{ app }}`). Paths are checked here so a
//! policy cannot name a file outside the gitops repository.

use serde::{Deserialize, Deserializer, de};

use crate::domain::{BranchName, RepoName};

/// The folder edit files are relative to when `[env.<name>.gitops] path` is not given.
pub const DEFAULT_GITOPS_PATH: &str = "{{ env }}/{{ app }}";

/// One `[[env.<name>.edit]]` step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditStep {
    KustomizeImage(KustomizeImageStep),
    YamlSet(YamlSetStep),
}

impl EditStep {
    /// The file the step edits, relative to the env's gitops folder.
    pub fn file(&self) -> &str {
        match self {
            EditStep::KustomizeImage(s) => &s.file,
            EditStep::YamlSet(s) => &s.file,
        }
    }

    /// The step's kind as the policy spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            EditStep::KustomizeImage(_) => "kustomize_image",
            EditStep::YamlSet(_) => "yaml_set",
        }
    }
}

/// `kustomize_image = { file, name, tag?, digest? }`; at least one of `tag` and `digest`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KustomizeImageStep {
    #[serde(deserialize_with = "edit_file")]
    pub file: String,
    /// The image's `name` in the kustomization's `images:` list.
    #[serde(deserialize_with = "non_empty")]
    pub name: String,
    #[serde(default, deserialize_with = "optional_tera")]
    pub tag: Option<String>,
    #[serde(default, deserialize_with = "optional_tera")]
    pub digest: Option<String>,
}

/// `yaml_set = { file, path, value, kind?, name? }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct YamlSetStep {
    #[serde(deserialize_with = "edit_file")]
    pub file: String,
    /// A dotted path, checked with [`auger_yaml_edit::YamlPath::parse`].
    #[serde(deserialize_with = "yaml_path")]
    pub path: String,
    #[serde(deserialize_with = "tera_string")]
    pub value: String,
    /// Selects the document by `kind` (multi-document files).
    #[serde(default, deserialize_with = "optional_non_empty")]
    pub kind: Option<String>,
    /// Selects the document by `metadata.name` (multi-document files).
    #[serde(default, deserialize_with = "optional_non_empty")]
    pub name: Option<String>,
}

impl<'de> Deserialize<'de> for EditStep {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Written {
            kustomize_image: Option<KustomizeImageStep>,
            yaml_set: Option<YamlSetStep>,
        }
        match Written::deserialize(d)? {
            Written {
                kustomize_image: Some(k),
                yaml_set: None,
            } => {
                if k.tag.is_none() && k.digest.is_none() {
                    return Err(de::Error::custom(
                        "kustomize_image needs tag, digest or both: it would set nothing",
                    ));
                }
                Ok(EditStep::KustomizeImage(k))
            }
            Written {
                kustomize_image: None,
                yaml_set: Some(y),
            } => Ok(EditStep::YamlSet(y)),
            Written {
                kustomize_image: None,
                yaml_set: None,
            } => Err(de::Error::custom(
                "an edit step needs one of kustomize_image = { file, name, tag } or yaml_set = { file, path, value }",
            )),
            Written { .. } => Err(de::Error::custom(
                "an edit step is one of kustomize_image and yaml_set, not both: write two [[edit]] steps",
            )),
        }
    }
}

/// `[env.<name>.gitops]`: where this environment's files are in the gitops repository, and
/// which repository and branch that is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvGitops {
    /// The folder edit files are relative to, a tera string over `env` and `app`.
    #[serde(default, deserialize_with = "gitops_path")]
    pub path: Option<String>,
    /// Another gitops repository than auger.toml's `[gitops] repo`: one that auger.toml names
    /// in `[gitops.repos."owner/name"]` (checked when the folder is loaded with the config).
    #[serde(default)]
    pub repo: Option<RepoName>,
    /// Another branch than the repository's own in auger.toml.
    #[serde(default)]
    pub branch: Option<BranchName>,
}

impl EnvGitops {
    /// The folder template, the default when not given.
    pub fn path_template(&self) -> &str {
        self.path.as_deref().unwrap_or(DEFAULT_GITOPS_PATH)
    }
}

/// Why `path` is not a relative path inside the repository, if it is not. `..`, a leading
/// `/`, empty, `.` and `.git` components, backslashes and control characters are refused.
pub fn relative_path_problem(path: &str) -> Option<&'static str> {
    if path.is_empty() || path.len() > 1024 {
        return Some("must be 1 to 1024 bytes");
    }
    if path.starts_with('/') {
        return Some("must be relative (no leading '/')");
    }
    if path.chars().any(|c| c.is_control() || c == '\\') {
        return Some("must not contain control characters or backslashes");
    }
    for c in path.split('/') {
        if c == ".." {
            return Some("must not contain '..'");
        }
        if c.is_empty() || c == "." {
            return Some("must have no empty or '.' components");
        }
        if c.eq_ignore_ascii_case(".git") {
            return Some("must not contain a .git component");
        }
    }
    None
}

fn edit_file<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    match relative_path_problem(&s) {
        None => Ok(s),
        Some(reason) => Err(de::Error::custom(format!(
            "file {s:?} {reason}: it is relative to the environment's gitops path"
        ))),
    }
}

fn gitops_path<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = tera_checked(String::deserialize(d)?)?;
    // Checked as written; the rendered folder is checked again at release time.
    match relative_path_problem(s.trim_end_matches('/')) {
        None => Ok(Some(s)),
        Some(reason) => Err(de::Error::custom(format!(
            "path {s:?} {reason}: it is a folder of the gitops repository"
        ))),
    }
}

fn yaml_path<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    auger_yaml_edit::YamlPath::parse(&s).map_err(de::Error::custom)?;
    Ok(s)
}

fn non_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if s.trim().is_empty() {
        return Err(de::Error::custom("must not be empty"));
    }
    Ok(s)
}

fn optional_non_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    non_empty(d).map(Some)
}

fn tera_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    tera_checked(String::deserialize(d)?)
}

fn optional_tera<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    tera_string(d).map(Some)
}

/// A tera string that parses (rendering needs a release, so only the syntax is checked).
fn tera_checked<E: de::Error>(s: String) -> Result<String, E> {
    let mut tera = tera::Tera::default();
    match tera.add_raw_template("value", &s) {
        Ok(()) => Ok(s),
        Err(e) => {
            // tera's parse errors are a multi-line picture; keep the position and the reason.
            let full = match std::error::Error::source(&e) {
                Some(source) => format!("{e}\n{source}"),
                None => e.to_string(),
            };
            let at = full
                .lines()
                .find_map(|l| l.trim().strip_prefix("--> "))
                .map(|p| format!(" at {p}"))
                .unwrap_or_default();
            let why = full
                .lines()
                .find_map(|l| l.trim().strip_prefix("= "))
                .unwrap_or_else(|| full.lines().next().unwrap_or_default());
            Err(E::custom(format!("not a valid tera string{at}: {why}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_stay_inside_the_repository() {
        for ok in ["kustomization.yaml", "apps/web/values.yaml", "a.b/c"] {
            assert_eq!(relative_path_problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            "/etc/x",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            ".git/config",
            "a\\b",
        ] {
            assert!(relative_path_problem(bad).is_some(), "{bad:?}");
        }
    }
}
