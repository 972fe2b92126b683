//! Rendering `templates/<template>/` into the files of one release (design §7).
//!
//! Rules an operator should know:
//! - Every `*.tera` file renders (tera 1.x) to the same relative path without `.tera`; every
//!   other file is copied byte for byte.
//! - Files and folders whose name starts with `_` are partials: available to `include`,
//!   `import` and `extends` by their path relative to the template folder, never written out.
//!   Names starting with `.` (`.gitkeep`, editor files) are skipped.
//! - Symbolic links anywhere in the template folder, the folder itself included, are refused:
//!   a release must not depend on, or leak, anything outside it.
//! - `release.json` is reserved for auger's release record.
//! - Undefined variables are errors (tera's default); use `| default(value=…)` for optional
//!   ones.
//! - `get_env`, `now` and `get_random` are disabled: the first could copy the bot's secrets
//!   into the gitops repo, the others would make every render differ, so an unchanged release
//!   would never be recognised. Use `release.time` for a timestamp.
//!
//! The context:
//! - `artifact`: the artifact record (`id`, `app`, `repo`, `sha`, `short_sha` (12 hex),
//!   `branches`, `tags`, `pull_requests`, `author`, `message`, `url`, `created`, `source`,
//!   `vars`, …).
//! - `app`: the folder name being released (the app, or `<app>-pr-<n>` for a preview);
//!   `policy_app`: the app of the policy.
//! - `env`: the environment.
//! - `vars`: the policy's `[vars]`, each rendered first as a tera string with the context
//!   above (so `image = "ghcr.io/acme/web:{{ artifact.sha }}"` works; vars cannot refer to
//!   each other), then overridden by the artifact's own `vars`: what CI recorded for this build
//!   (an image digest, say) is more specific than the policy's pattern.
//! - `release`: `trigger`, `time` (RFC 3339), `pull_request` (previews) or null.

use std::collections::{BTreeMap, HashMap};
use std::error::Error as _;
use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use auger_yaml_edit::{DocSelector, YamlPath};

use super::edit::{EditOp, FileEdit};
use super::record::{RELEASE_FILE, Trigger};
use crate::artifact::{Artifact, ID_SHA_LEN};
use crate::domain::{AppName, EnvName};
use crate::policy::{EditStep, Policy, TemplateName};

/// Rendered files by path relative to `<env>/<app>/`, `/`-separated.
pub type Files = BTreeMap<String, Vec<u8>>;

/// Suffix of files that are rendered rather than copied.
const TERA_SUFFIX: &str = ".tera";

/// What the release adds to the context besides the policy and the artifact.
#[derive(Debug, Clone)]
pub struct RenderExtra {
    pub trigger: Trigger,
    pub time: DateTime<Utc>,
    /// The folder name when it differs from the policy's app: a preview `<app>-pr-<n>`.
    pub instance: Option<AppName>,
    /// The pull request of a preview.
    pub pull_request: Option<u64>,
}

impl RenderExtra {
    pub fn new(trigger: Trigger) -> Self {
        Self {
            trigger,
            time: Utc::now(),
            instance: None,
            pull_request: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("template folder {}: {reason}", path.display())]
    Folder { path: PathBuf, reason: String },
    #[error("template {}: refusing a symbolic link (templates must be plain files and folders)", path.display())]
    Symlink { path: PathBuf },
    #[error("template {}: file names must be UTF-8", path.display())]
    NonUtf8Name { path: PathBuf },
    #[error("template {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("template {template}: {message}")]
    Template { template: String, message: String },
    #[error("template {template}: variable `{variable}` is not defined: {message}")]
    UndefinedVariable {
        template: String,
        variable: String,
        message: String,
    },
    #[error("policy var `{var}`: {message}")]
    Var { var: String, message: String },
    #[error("template output {path}: {reason}")]
    Output { path: String, reason: String },
    #[error("environment {env} is not in the policy of {app} (nor its preview environment)")]
    UnknownEnv { app: AppName, env: EnvName },
    #[error("artifact {artifact} is not an artifact of app {app}")]
    WrongApp { app: AppName, artifact: String },
    #[error("the policy of {app} names no template (its environments edit files in place)")]
    NoTemplate { app: AppName },
    /// A value of an edit step (or the env's gitops path) that does not render.
    #[error("{key}: {message}")]
    EditValue { key: String, message: String },
}

/// Render the policy's template for releasing `artifact` to `env`.
pub fn render(
    templates_dir: &Path,
    policy: &Policy,
    env: &EnvName,
    artifact: &Artifact,
    extra: &RenderExtra,
) -> Result<Files, RenderError> {
    if artifact.app != *policy.app() {
        return Err(RenderError::WrongApp {
            app: policy.app().clone(),
            artifact: artifact.id.to_string(),
        });
    }
    let is_preview = policy.preview().is_some_and(|p| p.env == *env);
    if policy.env(env).is_none() && !is_preview {
        return Err(RenderError::UnknownEnv {
            app: policy.app().clone(),
            env: env.clone(),
        });
    }
    let Some(template) = policy.template() else {
        return Err(RenderError::NoTemplate {
            app: policy.app().clone(),
        });
    };
    let root = templates_dir.join(template.as_str());
    let sources = read_template_dir(&root)?;
    let context = context(policy, env, artifact, extra)?;

    let mut tera = new_tera();
    let tera_sources: Vec<(&str, String)> = sources
        .iter()
        .filter(|(name, _)| name.ends_with(TERA_SUFFIX))
        .map(|(name, bytes)| {
            String::from_utf8(bytes.clone())
                .map(|text| (name.as_str(), text))
                .map_err(|_| RenderError::Template {
                    template: name.clone(),
                    message: "a .tera file must be UTF-8 text".into(),
                })
        })
        .collect::<Result<_, _>>()?;
    // All at once, so templates can include and extend each other by relative path.
    tera.add_raw_templates(tera_sources)
        .map_err(|e| tera_error("", &e))?;

    let mut files = Files::new();
    let mut outputs = std::collections::BTreeSet::new();
    for (name, bytes) in &sources {
        if is_partial(name) {
            continue;
        }
        let (out_name, content) = match name.strip_suffix(TERA_SUFFIX) {
            Some(out) => {
                let text = tera.render(name, &context).map_err(|e| tera_error(name, &e))?;
                (out.to_owned(), text.into_bytes())
            }
            None => (name.clone(), bytes.clone()),
        };
        check_output(name, &out_name, &mut outputs)?;
        files.insert(out_name, content);
    }
    Ok(files)
}

/// Check a template folder without rendering it: no symlinks, readable UTF-8 `.tera` files
/// that parse, no reserved or colliding output names. For `auger policy check`, which cannot
/// know the artifacts a real release will bring.
pub fn check_template(templates_dir: &Path, template: &TemplateName) -> Result<(), RenderError> {
    let sources = read_template_dir(&templates_dir.join(template.as_str()))?;
    let mut tera = new_tera();
    let mut outputs = std::collections::BTreeSet::new();
    let mut texts = Vec::new();
    for (name, bytes) in &sources {
        if let Some(out) = name.strip_suffix(TERA_SUFFIX) {
            let text = std::str::from_utf8(bytes).map_err(|_| RenderError::Template {
                template: name.clone(),
                message: "a .tera file must be UTF-8 text".into(),
            })?;
            texts.push((name.as_str(), text));
            if !is_partial(name) {
                check_output(name, out, &mut outputs)?;
            }
        } else if !is_partial(name) {
            check_output(name, name, &mut outputs)?;
        }
    }
    tera.add_raw_templates(texts).map_err(|e| tera_error("", &e))
}

fn check_output(
    source: &str,
    out: &str,
    seen: &mut std::collections::BTreeSet<String>,
) -> Result<(), RenderError> {
    let reason = if out.is_empty() || out.ends_with('/') {
        "renders to an empty file name"
    } else if out == RELEASE_FILE {
        "is reserved for auger's release record"
    } else if !seen.insert(out.to_owned()) {
        "is produced twice (by a file and by its .tera twin)"
    } else {
        return Ok(());
    };
    Err(RenderError::Output {
        path: if reason.starts_with("renders") {
            source
        } else {
            out
        }
        .to_owned(),
        reason: reason.into(),
    })
}

/// What `auger render` prints: a `--- <path>` header per file, then its content.
pub fn render_command_output(files: &Files) -> String {
    let mut out = String::new();
    for (path, content) in files {
        out.push_str("--- ");
        out.push_str(path);
        out.push('\n');
        match std::str::from_utf8(content) {
            Ok(text) => {
                out.push_str(text);
                if !text.is_empty() && !text.ends_with('\n') {
                    out.push('\n');
                }
            }
            Err(_) => out.push_str(&format!("(binary, {} bytes)\n", content.len())),
        }
    }
    out
}

/// Render a single policy string (an environment `url`, say) with the release context.
pub fn render_policy_string(
    text: &str,
    policy: &Policy,
    env: &EnvName,
    artifact: &Artifact,
    extra: &RenderExtra,
) -> Result<String, RenderError> {
    let ctx = context(policy, env, artifact, extra)?;
    let mut tera = new_tera();
    tera.add_raw_template("string", text)
        .map_err(|e| tera_error("string", &e))?;
    tera.render("string", &ctx).map_err(|e| tera_error("string", &e))
}

/// The edit steps of `env` (design §16) for releasing `artifact`: each value rendered as a
/// tera string with the templates' context, each file named from the repository root (the
/// env's gitops path, then the step's file).
pub fn render_edits(
    policy: &Policy,
    env: &EnvName,
    artifact: &Artifact,
    extra: &RenderExtra,
) -> Result<Vec<FileEdit>, RenderError> {
    if artifact.app != *policy.app() {
        return Err(RenderError::WrongApp {
            app: policy.app().clone(),
            artifact: artifact.id.to_string(),
        });
    }
    let ctx = context(policy, env, artifact, extra)?;
    edit_steps(policy, env, |key, text| {
        let mut tera = new_tera();
        let value_error = |e: &tera::Error| RenderError::EditValue {
            key: key.to_owned(),
            message: error_chain(e),
        };
        tera.add_raw_template("value", text)
            .map_err(|e| value_error(&e))?;
        tera.render("value", &ctx).map_err(|e| value_error(&e))
    })
}

/// The edit steps of `env` with their values unrendered: which files and values a release
/// there touches, for reading the values an earlier release set (a rollback).
pub fn edit_shape(policy: &Policy, env: &EnvName) -> Result<Vec<FileEdit>, RenderError> {
    edit_steps(policy, env, |_, text| Ok(text.to_owned()))
}

fn edit_steps(
    policy: &Policy,
    env: &EnvName,
    mut value: impl FnMut(&str, &str) -> Result<String, RenderError>,
) -> Result<Vec<FileEdit>, RenderError> {
    let rules = policy.env(env).ok_or_else(|| RenderError::UnknownEnv {
        app: policy.app().clone(),
        env: env.clone(),
    })?;
    let folder = render_gitops_path(rules.gitops_path_template(), env, policy.app())?;
    let mut out = Vec::with_capacity(rules.edit.len());
    for (i, step) in rules.edit.iter().enumerate() {
        let key = |k: &str| format!("env.{env}.edit[{i}].{}.{k}", step.kind());
        let op = match step {
            EditStep::KustomizeImage(k) => EditOp::KustomizeImage {
                name: k.name.clone(),
                tag: k.tag.as_deref().map(|t| value(&key("tag"), t)).transpose()?,
                digest: k
                    .digest
                    .as_deref()
                    .map(|d| value(&key("digest"), d))
                    .transpose()?,
            },
            EditStep::YamlSet(y) => EditOp::YamlSet {
                // Checked when the policy was loaded; a failure here still says where.
                path: YamlPath::parse(&y.path).map_err(|e| RenderError::EditValue {
                    key: key("path"),
                    message: e.to_string(),
                })?,
                value: value(&key("value"), &y.value)?,
                select: (y.kind.is_some() || y.name.is_some()).then(|| DocSelector {
                    kind: y.kind.clone(),
                    name: y.name.clone(),
                }),
            },
        };
        out.push(FileEdit {
            file: format!("{folder}/{}", step.file()),
            op,
        });
    }
    Ok(out)
}

/// The folder of `[env.X.gitops] path` for (env, app): the tera string rendered over `env` and
/// `app` only (so it is the same for every release, and a rollback finds its files), checked
/// to stay inside the repository. No trailing `/`.
pub fn render_gitops_path(template: &str, env: &EnvName, app: &AppName) -> Result<String, RenderError> {
    let mut ctx = tera::Context::new();
    ctx.insert("env", env.as_str());
    ctx.insert("app", app.as_str());
    let path_error = |message: String| RenderError::EditValue {
        key: format!("env.{env}.gitops.path"),
        message,
    };
    let mut tera = new_tera();
    tera.add_raw_template("path", template)
        .map_err(|e| path_error(error_chain(&e)))?;
    let path = tera
        .render("path", &ctx)
        .map_err(|e| path_error(error_chain(&e)))?;
    let path = path.trim().trim_end_matches('/').to_owned();
    match crate::policy::edit::relative_path_problem(&path) {
        None => Ok(path),
        Some(reason) => Err(path_error(format!("renders to {path:?}, which {reason}"))),
    }
}

fn is_partial(rel: &str) -> bool {
    rel.split('/').any(|c| c.starts_with('_'))
}

fn new_tera() -> tera::Tera {
    let mut tera = tera::Tera::default();
    tera.autoescape_on(Vec::new());
    for name in ["get_env", "now", "get_random"] {
        tera.register_function(name, move |_: &HashMap<String, Value>| -> tera::Result<Value> {
            Err(tera::Error::msg(format!(
                "`{name}()` is disabled in auger templates (see the gitops::render docs)"
            )))
        });
    }
    tera
}

/// The full context: the base, then `vars` rendered with it.
fn context(
    policy: &Policy,
    env: &EnvName,
    artifact: &Artifact,
    extra: &RenderExtra,
) -> Result<tera::Context, RenderError> {
    let mut artifact_value = serde_json::to_value(artifact).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut artifact_value {
        map.insert("short_sha".into(), json!(artifact.sha.short(ID_SHA_LEN)));
    }
    let app = extra.instance.as_ref().unwrap_or(policy.app());
    let mut ctx = tera::Context::new();
    ctx.insert("artifact", &artifact_value);
    ctx.insert("app", app.as_str());
    ctx.insert("policy_app", policy.app().as_str());
    ctx.insert("env", env.as_str());
    ctx.insert(
        "release",
        &json!({
            "trigger": extra.trigger.to_string(),
            "time": extra.time.to_rfc3339_opts(SecondsFormat::Secs, true),
            "pull_request": extra.pull_request,
        }),
    );

    let mut tera = new_tera();
    let names: Vec<(String, String)> = policy
        .vars()
        .iter()
        .map(|(k, v)| (format!("vars.{k}"), v.clone()))
        .collect();
    let mut vars = serde_json::Map::new();
    for (name, text) in &names {
        let var = name.trim_start_matches("vars.");
        let var_error = |e: &tera::Error| RenderError::Var {
            var: var.to_owned(),
            message: error_chain(e),
        };
        tera.add_raw_template(name, text).map_err(|e| var_error(&e))?;
        let value = tera.render(name, &ctx).map_err(|e| var_error(&e))?;
        vars.insert(var.to_owned(), Value::String(value));
    }
    for (k, v) in &artifact.vars {
        vars.insert(k.clone(), Value::String(v.clone()));
    }
    ctx.insert("vars", &vars);
    Ok(ctx)
}

/// The messages of a tera error and its causes, deduplicated, on one line.
fn error_chain(e: &tera::Error) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let m = s.to_string();
        if !parts.contains(&m) {
            parts.push(m);
        }
        source = s.source();
    }
    parts.join(": ")
}

fn tera_error(template: &str, e: &tera::Error) -> RenderError {
    let message = error_chain(e);
    // tera says: Variable `vars.missing` not found in context while rendering 'x.tera'
    if let Some(rest) = message.split("Variable `").nth(1)
        && let Some((variable, _)) = rest.split_once('`')
        && message.contains("not found in context")
    {
        return RenderError::UndefinedVariable {
            template: template.to_owned(),
            variable: variable.to_owned(),
            message,
        };
    }
    RenderError::Template {
        template: if template.is_empty() {
            "(parsing)".into()
        } else {
            template.to_owned()
        },
        message,
    }
}

/// Every file under `root` by `/`-separated relative path, refusing symlinks and skipping
/// dot-files. Only plain directories are descended into, so nothing outside `root` is read.
fn read_template_dir(root: &Path) -> Result<BTreeMap<String, Vec<u8>>, RenderError> {
    let meta = fs::symlink_metadata(root).map_err(|e| RenderError::Folder {
        path: root.to_owned(),
        reason: e.to_string(),
    })?;
    if meta.file_type().is_symlink() {
        return Err(RenderError::Symlink {
            path: root.to_owned(),
        });
    }
    if !meta.is_dir() {
        return Err(RenderError::Folder {
            path: root.to_owned(),
            reason: "is not a folder".into(),
        });
    }
    let mut out = BTreeMap::new();
    let mut stack: Vec<(PathBuf, String)> = vec![(root.to_owned(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        let entries = fs::read_dir(&dir).map_err(|e| RenderError::Read {
            path: dir.clone(),
            reason: e.to_string(),
        })?;
        for entry in entries {
            let entry = entry.map_err(|e| RenderError::Read {
                path: dir.clone(),
                reason: e.to_string(),
            })?;
            let path = entry.path();
            let name = entry
                .file_name()
                .into_string()
                .map_err(|_| RenderError::NonUtf8Name { path: path.clone() })?;
            if name.starts_with('.') {
                continue;
            }
            // `DirEntry::file_type` does not follow symlinks.
            let kind = entry.file_type().map_err(|e| RenderError::Read {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            let rel = format!("{prefix}{name}");
            if kind.is_symlink() {
                return Err(RenderError::Symlink { path });
            } else if kind.is_dir() {
                stack.push((path, format!("{rel}/")));
            } else if kind.is_file() {
                let bytes = fs::read(&path).map_err(|e| RenderError::Read {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                out.insert(rel, bytes);
            } else {
                return Err(RenderError::Read {
                    path,
                    reason: "is neither a file nor a folder".into(),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partials_are_detected_in_any_component() {
        assert!(is_partial("_helpers.tera"));
        assert!(is_partial("parts/_x.yaml"));
        assert!(is_partial("_lib/x.yaml"));
        assert!(!is_partial("deployment.yaml.tera"));
    }

    #[test]
    fn command_output_has_a_header_per_file() {
        let mut files = Files::new();
        files.insert("a.yaml".into(), b"x: 1".to_vec());
        files.insert("b.bin".into(), vec![0xff, 0xfe]);
        assert_eq!(
            render_command_output(&files),
            "--- a.yaml\nx: 1\n--- b.bin\n(binary, 2 bytes)\n"
        );
    }
}
