//! Reading and checking the policy folder as a whole, reporting every problem at once.
//!
//! One serde pass stops at the first error, so each file is deserialized repeatedly: every
//! failure is recorded with its key path, the offending value is removed from the parsed
//! tree, and the next pass finds the next problem. The typed schema stays the single
//! definition of what is valid. Checks that span keys or files run on what survived.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde_path_to_error::Segment;

use super::diagnostic::{Diagnostic, PolicyErrors};
use super::principal::Principal;
use super::schema::{EnvPolicy, MergeMode, PolicyFile};
use super::set::{Policy, PolicySet};
use crate::domain::{AppName, EnvName, RepoName};

/// The gitops repositories auger.toml names (`[gitops] repo` and `[gitops.repos."…"]`), which
/// every `[env.X.gitops] repo` must be one of.
#[derive(Debug, Clone)]
pub struct GitopsNames {
    /// The configuration file, named in the refusal.
    pub config: PathBuf,
    /// Empty when it has no `[gitops]` section.
    pub repos: Vec<RepoName>,
}

/// Loads every `*.toml` directly in `policies_dir` (other files and subfolders are ignored)
/// and checks them against each other and against the folders of `templates_dir`. Without a
/// configuration: `[env.X.gitops] repo` is not checked ([`load_dir_with`] checks it).
pub fn load_dir(policies_dir: &Path, templates_dir: &Path) -> Result<PolicySet, PolicyErrors> {
    load_dir_with(policies_dir, templates_dir, None)
}

/// [`load_dir`], and every `[env.X.gitops] repo` must be one `gitops` names.
pub fn load_dir_with(
    policies_dir: &Path,
    templates_dir: &Path,
    gitops: Option<&GitopsNames>,
) -> Result<PolicySet, PolicyErrors> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();

    let files = match policy_files(policies_dir) {
        Ok(files) => files,
        Err(e) => {
            errors.push(Diagnostic::new(
                policies_dir,
                "",
                format!("cannot read the policy folder: {e}"),
            ));
            return Err(PolicyErrors {
                errors,
                warnings,
                files: 0,
            });
        }
    };
    if files.is_empty() {
        warnings.push(Diagnostic::new(
            policies_dir,
            "",
            "no policy files (*.toml) found",
        ));
    }

    let templates = Templates::read(templates_dir);
    let mut checked: Vec<(Option<Policy>, Vec<Diagnostic>, Vec<Diagnostic>)> = Vec::new();
    for path in &files {
        let mut out = Findings {
            file: path,
            errors: Vec::new(),
            warnings: Vec::new(),
        };
        let policy = match fs::read_to_string(path) {
            Ok(text) => check_file(&text, Some(&templates), &mut out),
            Err(e) => {
                out.error("", format!("cannot read the file: {e}"));
                None
            }
        };
        if let (Some(policy), Some(gitops)) = (&policy, gitops) {
            check_gitops_repos(policy, gitops, &mut out);
        }
        checked.push((policy, out.errors, out.warnings));
    }

    // Two files can only claim one app if one of them does not match its file name. The file
    // named after the app owns it (else the first by name); every other claim is an error.
    let mut owners: BTreeMap<AppName, usize> = BTreeMap::new();
    for (i, (policy, _, _)) in checked.iter().enumerate() {
        let Some(policy) = policy else { continue };
        let named_after = policy
            .file()
            .file_stem()
            .is_some_and(|s| s == policy.app().as_str());
        // File names are unique, so at most one file is named after the app.
        if named_after || !owners.contains_key(policy.app()) {
            owners.insert(policy.app().clone(), i);
        }
    }
    let mut policies: BTreeMap<AppName, Policy> = BTreeMap::new();
    for (i, (policy, mut file_errors, mut file_warnings)) in checked.into_iter().enumerate() {
        if let Some(policy) = policy {
            match owners.get(policy.app()).map(|&o| (o, &files[o])) {
                Some((owner, owner_file)) if owner != i => file_errors.push(Diagnostic::new(
                    policy.file(),
                    "app",
                    format!(
                        "app \"{}\" is already defined in {}",
                        policy.app(),
                        owner_file.display()
                    ),
                )),
                _ => {
                    policies.insert(policy.app().clone(), policy);
                }
            }
        }
        errors.append(&mut file_errors);
        warnings.append(&mut file_warnings);
    }

    if errors.is_empty() {
        Ok(PolicySet { policies, warnings })
    } else {
        Err(PolicyErrors {
            errors,
            warnings,
            files: files.len(),
        })
    }
}

/// Every `[env.X.gitops] repo` is a repository auger.toml names: a release cannot go to a
/// repository auger has no URL for.
fn check_gitops_repos(policy: &Policy, gitops: &GitopsNames, out: &mut Findings<'_>) {
    for (env, rules) in policy.envs() {
        let Some(repo) = rules.gitops.as_ref().and_then(|g| g.repo.as_ref()) else {
            continue;
        };
        if gitops
            .repos
            .iter()
            .any(|known| known.as_str().eq_ignore_ascii_case(repo.as_str()))
        {
            continue;
        }
        let message = if gitops.repos.is_empty() {
            format!(
                "unknown gitops repository \"{repo}\": {} has no [gitops] section",
                gitops.config.display()
            )
        } else {
            format!(
                "unknown gitops repository \"{repo}\": {} names {} (add [gitops.repos.\"{repo}\"] with its url)",
                gitops.config.display(),
                list_or_none(gitops.repos.iter())
            )
        };
        out.error(format!("env.{env}.gitops.repo"), message);
    }
}

/// `*.toml` regular files (symlinks followed), sorted by name so reports are stable.
fn policy_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The template folders that exist, read once per load.
struct Templates {
    dir: PathBuf,
    names: Result<BTreeSet<String>, String>,
}

impl Templates {
    fn read(dir: &Path) -> Self {
        let names = fs::read_dir(dir)
            .and_then(|entries| {
                let mut names = BTreeSet::new();
                for entry in entries {
                    let entry = entry?;
                    if entry.path().is_dir() {
                        names.insert(entry.file_name().to_string_lossy().into_owned());
                    }
                }
                Ok(names)
            })
            .map_err(|e| e.to_string());
        Self {
            dir: dir.to_path_buf(),
            names,
        }
    }

    fn check(&self, name: &str) -> Result<(), String> {
        match &self.names {
            Ok(names) if names.contains(name) => Ok(()),
            Ok(names) => Err(format!(
                "unknown template \"{name}\": no folder {}/ (known: {})",
                self.dir.join(name).display(),
                list_or_none(names.iter())
            )),
            Err(e) => Err(format!(
                "unknown template \"{name}\": cannot read the templates folder {}: {e}",
                self.dir.display()
            )),
        }
    }
}

fn list_or_none<T: fmt::Display>(items: impl Iterator<Item = T>) -> String {
    let all: Vec<String> = items.map(|i| i.to_string()).collect();
    if all.is_empty() {
        "none".to_owned()
    } else {
        all.join(", ")
    }
}

struct Findings<'a> {
    file: &'a Path,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl Findings<'_> {
    fn error(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.errors.push(Diagnostic::new(self.file, key, message));
    }
    fn warn(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Diagnostic::new(self.file, key, message));
    }
}

/// Parsing lives here with the other checks; the type itself is in `set`.
impl Policy {
    /// Parses one policy on its own, with every check that does not need the folder (so
    /// neither the file name nor the template folder is checked, and warnings are dropped).
    /// For tests and tools; the bot loads the whole folder with [`load_dir`].
    pub fn from_toml(origin: impl Into<PathBuf>, text: &str) -> Result<Self, Vec<Diagnostic>> {
        let origin = origin.into();
        let mut out = Findings {
            file: &origin,
            errors: Vec::new(),
            warnings: Vec::new(),
        };
        match check_file(text, None, &mut out) {
            Some(policy) if out.errors.is_empty() => Ok(policy),
            _ => Err(out.errors),
        }
    }
}

/// Keys the schema cannot do without. When one is missing or invalid, a placeholder takes its
/// place so the rest of the file is still checked; checks on a placeholder are skipped.
/// (`template` is required only when something renders: [`check_template_needed`].)
const REQUIRED: [(&str, &str); 2] = [("app", "placeholder"), ("repo", "placeholder/placeholder")];

/// Never loop forever on a pathological file: each round removes one value, and no real
/// policy has this many mistakes.
const MAX_ROUNDS: usize = 200;

/// Parses and checks one file; returns the policy if it could be typed at all (possibly with
/// errors recorded in `out`).
/// With `templates` absent (a file checked on its own), the checks that need the folder are
/// skipped: template existence and the file name.
fn check_file(text: &str, templates: Option<&Templates>, out: &mut Findings<'_>) -> Option<Policy> {
    let (document, syntax) = toml::de::DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        for e in syntax {
            out.error("", syntax_message(text, &e));
        }
        return None;
    }
    let env_order = env_order(document.get_ref());
    let mut root: toml::Table = match toml::from_str(text) {
        Ok(root) => root,
        Err(e) => {
            out.error("", syntax_message(text, &e));
            return None;
        }
    };

    let mut placeholders: BTreeSet<&'static str> = BTreeSet::new();
    for (key, _) in REQUIRED {
        if !root.contains_key(key) {
            out.error(key, "missing required key");
        }
    }
    fill_placeholders(&mut root, &mut placeholders);

    let template_written = root.contains_key("template");
    let parse_errors_before = out.errors.len();
    let spec = typed(root, out, &mut placeholders)?;
    let clean = out.errors.len() == parse_errors_before && placeholders.is_empty();

    if let Some(templates) = templates {
        check_names_and_template(&spec, &placeholders, templates, out);
    }
    let env_order = ordered_envs(&spec, &env_order);
    if !template_written {
        check_template_needed(&spec, &env_order, out);
    }
    check_envs(&spec, &env_order, clean, out);
    if placeholders.contains("app") {
        // Not a real claim on any app name.
        return None;
    }
    Some(Policy::new(out.file.to_path_buf(), spec, env_order))
}

fn fill_placeholders(root: &mut toml::Table, placeholders: &mut BTreeSet<&'static str>) {
    for (key, value) in REQUIRED {
        if !root.contains_key(key) {
            root.insert(key.to_owned(), toml::Value::String(value.to_owned()));
            placeholders.insert(key);
        }
    }
}

/// The elimination loop described in the module docs.
fn typed(
    mut root: toml::Table,
    out: &mut Findings<'_>,
    placeholders: &mut BTreeSet<&'static str>,
) -> Option<PolicyFile> {
    let mut removed = RemovedIndices::default();
    let mut reported: Vec<Vec<Key>> = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let pass = serde_path_to_error::deserialize::<_, PolicyFile>(toml::Value::Table(root.clone()));
        let err = match pass {
            Ok(spec) => return Some(spec),
            Err(err) => err,
        };
        let message = humanize(err.inner().message());
        let Some(path) = removed.original_path(err.path()) else {
            // A segment we cannot address: report it on the file and stop.
            out.error("", message);
            return None;
        };
        // Removing a bad value can leave its table without a required key, or a step without
        // its one table: echoes of an error already reported below them, so not reported.
        let echo = |keys: &[Key]| reported.iter().any(|r: &Vec<Key>| r.starts_with(keys));
        if let Some(field) = missing_field(err.inner().message()) {
            let mut keys = path.keys.clone();
            keys.push(Key::Map(field.to_owned()));
            if !echo(&keys) {
                out.error(dotted(&keys), "missing required key");
                reported.push(keys);
            }
        } else if !echo(&path.keys) {
            out.error(dotted(&path.keys), message);
            reported.push(path.keys.clone());
        }
        // A missing field names its table: dropping the table is the only way past it.
        if path.current.is_empty() || !removed.remove(&mut root, &path) {
            return None;
        }
        fill_placeholders(&mut root, placeholders);
    }
    out.error("", "too many errors; stopped checking this file");
    None
}

fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
}

/// serde speaks of fields and Rust types; policy authors write TOML keys and numbers.
fn humanize(message: &str) -> String {
    message
        .replace("unknown field", "unknown key")
        .replace("expected u32", "expected a whole number from 0 to 4294967295")
        .replace("expected one of", "expected one of:")
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    Map(String),
    Seq(usize),
}

/// A path to a value: as the file wrote it (`keys`, for messages) and as the pruned tree now
/// holds it (`current`, for removal).
struct ValuePath {
    keys: Vec<Key>,
    current: Vec<Key>,
}

/// `env.staging.deployers[1]`.
fn dotted(keys: &[Key]) -> String {
    let mut s = String::new();
    for k in keys {
        push_key(&mut s, k);
    }
    s
}

fn push_key(s: &mut String, key: &Key) {
    match key {
        Key::Map(name) => {
            if !s.is_empty() {
                s.push('.');
            }
            let bare = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if bare {
                s.push_str(name);
            } else {
                // Quoted the way TOML quotes keys, so `env."a.b"` is not read as two levels.
                s.push_str(&format!("{name:?}"));
            }
        }
        Key::Seq(i) => s.push_str(&format!("[{i}]")),
    }
}

/// Array elements already removed, by array path in file coordinates, so later errors in the
/// same array still report the index the author sees.
#[derive(Default)]
struct RemovedIndices(BTreeMap<String, Vec<usize>>);

impl RemovedIndices {
    fn original_path(&self, path: &serde_path_to_error::Path) -> Option<ValuePath> {
        let mut keys = Vec::new();
        let mut current = Vec::new();
        for segment in path.iter() {
            match segment {
                Segment::Map { key } => {
                    keys.push(Key::Map(key.clone()));
                    current.push(Key::Map(key.clone()));
                }
                Segment::Seq { index } => {
                    let prefix = dotted(&keys);
                    let mut original = *index;
                    if let Some(gone) = self.0.get(&prefix) {
                        // `gone` is sorted: each earlier removal shifts the index by one.
                        for g in gone {
                            if *g <= original {
                                original += 1;
                            }
                        }
                    }
                    keys.push(Key::Seq(original));
                    current.push(Key::Seq(*index));
                }
                Segment::Enum { .. } | Segment::Unknown => return None,
            }
        }
        Some(ValuePath { keys, current })
    }

    /// Removes the value at `path` from `root`; false if there was nothing to remove.
    fn remove(&mut self, root: &mut toml::Table, path: &ValuePath) -> bool {
        let Some((last, parents)) = path.current.split_last() else {
            return false;
        };
        let mut value: Option<&mut toml::Value> = None;
        for (i, key) in parents.iter().enumerate() {
            let next = match (i, key, value) {
                (0, Key::Map(k), _) => root.get_mut(k),
                (_, Key::Map(k), Some(toml::Value::Table(t))) => t.get_mut(k),
                (_, Key::Seq(n), Some(toml::Value::Array(a))) => a.get_mut(*n),
                _ => None,
            };
            let Some(next) = next else { return false };
            value = Some(next);
        }
        match (last, value) {
            (Key::Map(k), None) => root.remove(k).is_some(),
            (Key::Map(k), Some(toml::Value::Table(t))) => t.remove(k).is_some(),
            (Key::Seq(n), Some(toml::Value::Array(a))) if *n < a.len() => {
                a.remove(*n);
                if let Some((Key::Seq(original), array)) = path.keys.split_last() {
                    let prefix = dotted(array);
                    let gone = self.0.entry(prefix).or_default();
                    gone.push(*original);
                    gone.sort_unstable();
                }
                true
            }
            _ => false,
        }
    }
}

/// `[env.*]` names in the order the file first mentions them.
fn env_order(document: &toml::de::DeTable<'_>) -> Vec<String> {
    let Some((_, env)) = document.iter().find(|(k, _)| k.get_ref() == "env") else {
        return Vec::new();
    };
    let toml::de::DeValue::Table(envs) = env.get_ref() else {
        return Vec::new();
    };
    let mut names: Vec<(usize, String)> = envs
        .iter()
        .map(|(k, _)| (k.span().start, k.get_ref().to_string()))
        .collect();
    names.sort();
    names.into_iter().map(|(_, n)| n).collect()
}

/// The typed environments in file order; any the scan missed go last, so none is lost.
fn ordered_envs(spec: &PolicyFile, file_order: &[String]) -> Vec<EnvName> {
    let mut order: Vec<EnvName> = file_order
        .iter()
        .filter_map(|n| spec.env.keys().find(|k| k.as_str() == n.as_str()).cloned())
        .collect();
    for name in spec.env.keys() {
        if !order.contains(name) {
            order.push(name.clone());
        }
    }
    order
}

/// One line: `TOML syntax error at line 3, column 7: <what>`.
fn syntax_message(text: &str, e: &toml::de::Error) -> String {
    let what = e
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("TOML syntax error at line {line}, column {column}: {what}")
        }
        None => format!("TOML syntax error: {what}"),
    }
}

fn check_names_and_template(
    spec: &PolicyFile,
    placeholders: &BTreeSet<&str>,
    templates: &Templates,
    out: &mut Findings<'_>,
) {
    if !placeholders.contains("app") {
        let stem = out
            .file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if stem != spec.app.as_str() {
            out.error(
                "app",
                format!(
                    "app \"{}\" does not match the file name: {} must say app = \"{stem}\", or be renamed to {}.toml",
                    spec.app,
                    out.file.display(),
                    spec.app
                ),
            );
        }
    }
    if let Some(template) = &spec.template
        && let Err(message) = templates.check(template.as_str())
    {
        out.error("template", message);
    }
}

/// `template` (not written at all: an invalid one is reported as such) may be left out only
/// when nothing renders: every environment has `edit` steps
/// and there is no `[preview]` (previews always render).
fn check_template_needed(spec: &PolicyFile, in_order: &[EnvName], out: &mut Findings<'_>) {
    if spec.template.is_some() {
        return;
    }
    let rendering: Vec<&str> = in_order
        .iter()
        .filter(|n| spec.env.get(*n).is_some_and(|e| !e.edits()))
        .map(|n| n.as_str())
        .collect();
    if !rendering.is_empty() {
        out.error(
            "template",
            format!(
                "missing required key: environment{} {} render{} templates (no edit steps)",
                if rendering.len() == 1 { "" } else { "s" },
                rendering.join(", "),
                if rendering.len() == 1 { "s" } else { "" },
            ),
        );
    } else if spec.preview.is_some() {
        out.error("template", "missing required key: [preview] renders templates");
    } else if spec.env.is_empty() {
        out.error("template", "missing required key");
    }
}

fn check_envs(spec: &PolicyFile, in_order: &[EnvName], clean: bool, out: &mut Findings<'_>) {
    let envs = &spec.env;
    let known = || list_or_none(in_order.iter());

    for name in in_order {
        let Some(env) = envs.get(name) else { continue };
        let key = |k: &str| format!("env.{name}.{k}");

        match (env.merge, env.approvals) {
            (MergeMode::Approval, Some(0)) => {
                out.error(key("approvals"), "must be at least 1 when merge = \"approval\"")
            }
            (MergeMode::Auto | MergeMode::Direct, Some(_)) => out.error(
                key("approvals"),
                format!(
                    "only applies when merge = \"approval\" (here merge = \"{}\")",
                    env.merge
                ),
            ),
            _ => {}
        }

        if env.gitops.as_ref().is_some_and(|g| g.path.is_some()) && !env.edits() {
            out.error(
                key("gitops.path"),
                format!(
                    "only applies to environments with edit steps: a rendering environment writes {name}/{}/",
                    spec.app
                ),
            );
        }

        if let Some(after) = &env.after {
            if after.env == *name {
                out.error(
                    key("after.env"),
                    format!("environment \"{name}\" cannot come after itself"),
                );
            } else if !envs.contains_key(&after.env) {
                out.error(
                    key("after.env"),
                    format!("unknown environment \"{}\" (known: {})", after.env, known()),
                );
            } else if let Some(cycle) = cycle_from(name, spec, in_order) {
                out.error(key("after.env"), format!("\"after\" forms a cycle: {cycle}"));
            }
        }

        // Warnings only on files without errors: on a pruned file they could be echoes.
        if clean {
            approval_warnings(name, env, out);
        }
    }

    if let Some(preview) = &spec.preview {
        if envs.contains_key(&preview.env) {
            out.error(
                "preview.env",
                format!(
                    "preview environment \"{}\" is also a normal environment [env.{}]; previews need a name of their own",
                    preview.env, preview.env
                ),
            );
        }
        if preview.merge == MergeMode::Approval {
            out.error(
                "preview.merge",
                "must be \"auto\" or \"direct\": previews have no approvers",
            );
        }
    }
}

/// Follows `after` from `start`; returns `a → b → a` if it comes back to `start` and `start`
/// is the cycle's first member in file order, so each cycle is reported once.
fn cycle_from(start: &EnvName, spec: &PolicyFile, in_order: &[EnvName]) -> Option<String> {
    let mut chain = vec![start];
    let mut current = start;
    loop {
        let next = &spec.env.get(current)?.after.as_ref()?.env;
        if next == start {
            let position = |n: &EnvName| in_order.iter().position(|o| o == n);
            let first = chain.iter().min_by_key(|n| position(n))?;
            if *first != start {
                return None;
            }
            chain.push(start);
            return Some(chain.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(" → "));
        }
        if chain.contains(&next) || !spec.env.contains_key(next) {
            // Leads into a cycle that `start` is not part of, or to an unknown env: both are
            // reported where they happen.
            return None;
        }
        chain.push(next);
        current = next;
    }
}

fn approval_warnings(name: &EnvName, env: &EnvPolicy, out: &mut Findings<'_>) {
    let key = |k: &str| format!("env.{name}.{k}");
    if env.merge != MergeMode::Approval {
        if !env.approvers.is_empty() {
            out.warn(
                key("approvers"),
                format!(
                    "ignored: approvers only count when merge = \"approval\" (here merge = \"{}\")",
                    env.merge
                ),
            );
        }
        return;
    }
    if env.approvers.is_empty() {
        out.warn(
            key("approvers"),
            "merge = \"approval\" but no approvers are listed: no review can ever approve a release here",
        );
        return;
    }
    // Teams and permission levels can grow; a fixed list of users cannot.
    let users: Option<BTreeSet<String>> = env
        .approvers
        .iter()
        .map(|p| match p {
            Principal::User(u) => Some(u.to_ascii_lowercase()),
            Principal::Team { .. } | Principal::Permission(_) => None,
        })
        .collect();
    let needed = env.required_approvals();
    if let Some(users) = users
        && (users.len() as u64) < u64::from(needed)
    {
        out.warn(
            key("approvals"),
            format!(
                "{needed} approvals required but only {} approver{} can give them ({})",
                users.len(),
                if users.len() == 1 { "" } else { "s" },
                env.approvers
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> (Option<Policy>, Vec<String>, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("web")).unwrap();
        let templates = Templates::read(dir.path());
        let file = Path::new("policies/a.toml");
        let mut out = Findings {
            file,
            errors: Vec::new(),
            warnings: Vec::new(),
        };
        let p = check_file(text, Some(&templates), &mut out);
        let strip = |d: Vec<Diagnostic>| {
            d.into_iter()
                .map(|d| format!("{}: {}", d.key, d.message))
                .collect()
        };
        (p, strip(out.errors), strip(out.warnings))
    }

    const HEAD: &str = "app = \"a\"\nrepo = \"o/a\"\ntemplate = \"web\"\n";

    #[test]
    fn several_errors_in_one_array_keep_their_original_indices() {
        let (_, errors, _) = check(&format!(
            "{HEAD}[artifact]\nsignals = [\"bad1\", \"status:ok\", \"bad2\", \"nope:x\"]\n"
        ));
        let keys: Vec<&str> = errors.iter().map(|e| e.split(": ").next().unwrap()).collect();
        assert_eq!(
            keys,
            [
                "artifact.signals[0]",
                "artifact.signals[2]",
                "artifact.signals[3]"
            ],
            "{errors:#?}"
        );
    }

    #[test]
    fn artifact_paths_are_validated_globs() {
        let (policy, errors, _) = check(&format!(
            "{HEAD}[artifact]\nsignals = [\"status:ok\"]\npaths = [\"services/web/**\", \"!services/web/docs/**\"]\n"
        ));
        assert!(errors.is_empty(), "{errors:#?}");
        let policy = policy.unwrap();
        assert!(policy.built_by_change(&["services/web/src/main.ts"]));
        assert!(!policy.built_by_change(&["services/web/docs/a.md", "services/api/x"]));
        let (_, errors, _) = check(&format!("{HEAD}[artifact]\npaths = [\"services/{{web\"]\n"));
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(
            errors[0]
                .starts_with("artifact.paths[0]: invalid glob \"services/{web\": unclosed alternate group"),
            "{errors:#?}"
        );
        let (_, errors, _) = check(&format!(
            "{HEAD}[artifact]\npaths = [\"!services/web/docs/**\"]\n"
        ));
        assert!(errors[0].contains("only negated patterns"), "{errors:#?}");
    }

    #[test]
    fn several_errors_in_one_table_are_all_reported() {
        let (policy, errors, _) = check(&format!(
            "{HEAD}[env.qa]\nmerge = \"sometimes\"\napprovals = \"two\"\ncolour = \"red\"\nafter = {{ env = \"qa\", soak = \"soon\" }}\n"
        ));
        assert_eq!(errors.len(), 5, "{errors:#?}");
        assert!(errors[0].starts_with("env.qa.after.soak: invalid duration \"soon\""));
        assert!(errors[1].starts_with("env.qa.approvals: invalid type: string \"two\""));
        assert!(errors[2].starts_with("env.qa.colour: unknown key `colour`"));
        assert!(errors[3].starts_with("env.qa.merge: unknown variant `sometimes`"));
        // What survived is still checked across keys.
        assert_eq!(
            errors[4],
            "env.qa.after.env: environment \"qa\" cannot come after itself"
        );
        assert!(policy.is_some());
    }

    #[test]
    fn missing_required_keys_are_each_reported_and_the_rest_still_checked() {
        let (_, errors, _) = check("[env.qa]\nafter = { env = \"qa\" }\n");
        assert_eq!(
            errors,
            [
                "app: missing required key",
                "repo: missing required key",
                "template: missing required key: environment qa renders templates (no edit steps)",
                "env.qa.after.env: environment \"qa\" cannot come after itself",
            ]
        );
    }

    #[test]
    fn a_missing_nested_key_names_the_key() {
        let (_, errors, _) = check(&format!("{HEAD}[env.qa]\nafter = {{ soak = \"1m\" }}\n"));
        assert_eq!(errors, ["env.qa.after.env: missing required key"]);
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        let (policy, errors, _) = check("app = \"a\"\nrepo = \n");
        assert!(policy.is_none());
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with(": TOML syntax error at line 2, column "),
            "{errors:?}"
        );
    }

    #[test]
    fn odd_keys_are_quoted_in_the_path() {
        let (_, errors, _) = check(&format!("{HEAD}[env.\"Pro d\"]\n"));
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("env.\"Pro d\": environment name \"Pro d\" is invalid"));
    }

    #[test]
    fn envs_keep_file_order() {
        let (policy, errors, _) = check(&format!(
            "{HEAD}[env.staging]\nmerge = \"auto\"\n[env.production]\nmerge = \"direct\"\n[env.dev]\nmerge = \"direct\"\n"
        ));
        assert!(errors.is_empty(), "{errors:?}");
        let policy = policy.unwrap();
        let names: Vec<&str> = policy.envs().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["staging", "production", "dev"]);
    }

    #[test]
    fn a_long_cycle_is_reported_once_and_a_tail_into_it_not_at_all() {
        let (_, errors, _) = check(&format!(
            "{HEAD}[env.tail]\nafter = {{ env = \"b\" }}\n[env.a]\nafter = {{ env = \"c\" }}\n[env.b]\nafter = {{ env = \"a\" }}\n[env.c]\nafter = {{ env = \"b\" }}\n"
        ));
        assert_eq!(
            errors,
            ["env.a.after.env: \"after\" forms a cycle: a → c → b → a"]
        );
    }

    #[test]
    fn previews_refuse_approval_merges_and_unknown_triggers() {
        let (_, errors, _) = check(&format!("{HEAD}[preview]\nmerge = \"approval\"\n"));
        assert_eq!(
            errors,
            ["preview.merge: must be \"auto\" or \"direct\": previews have no approvers"]
        );
        let (_, errors, _) = check(&format!("{HEAD}[preview]\non = \"push\"\n"));
        assert_eq!(
            errors,
            ["preview.on: unknown variant `push`, expected `pull_request`"]
        );
    }

    #[test]
    fn auto_rules_and_vars_are_checked_key_by_key() {
        let (_, errors, _) = check(&format!(
            "{HEAD}[vars]\nimage = \"x\"\nreplicas = 3\nmy-var = \"y\"\n[env.qa]\nauto = {{ branch = \"main\", tags = \"v*\", pull_request = \"yes\" }}\n"
        ));
        assert_eq!(
            errors,
            [
                "env.qa.auto.pull_request: invalid type: string \"yes\", expected a boolean",
                "env.qa.auto.tags: unknown key `tags`, expected one of: `branch`, `tag`, `pull_request`",
                "vars.my-var: variable name \"my-var\" is invalid: must match [A-Za-z_][A-Za-z0-9_]*",
                "vars.replicas: invalid type: integer `3`, expected a string",
            ]
        );
    }
}
