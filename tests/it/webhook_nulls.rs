//! GitHub's webhook schema against the payload fields auger reads (issue 18, design §14).
//!
//! For every event auger reads and every action the schema describes for it, each field on the
//! paths auger's structs read (`webhook::shapes::EVENTS`, which a unit test holds to the serde
//! structs) that the schema lets be `null` or leaves out is set to `null` and, separately,
//! removed, in a real payload of that event. Each variant is posted signed to a running auger:
//! the answer is a 2xx with the outcome defined for that absence ([`defined_outcome`]: the same
//! as for the payload itself unless a rule there says otherwise), never a 400.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use auger::domain::RepoName;
use auger::policy::PolicySet;
use auger::webhook::shapes::EVENTS;
use auger::webhook::skim::{Keep, Shape};
use auger::work::{Ignored, Scope, Work, classify};
use serde_json::{Value, json};

use crate::support::remote::GitopsRemote;
use crate::support::{Setup, fixture};

/// Where `scripts/fetch-specs` puts GitHub's webhook schemas (npm `@octokit/openapi-webhooks`).
const SCHEMA: &str = "target/specs/openapi-webhooks/api.github.com.json";

const GITOPS: &str = "acme/gitops";
const HELLO: &str = "Codertocat/Hello-World";
/// The status fixture's commit.
const STATUS_SHA: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
/// The git author name the status variants give their commit, unlike its GitHub login.
const GIT_AUTHOR: &str = "Codertocat (git)";

fn webhook_schema() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(SCHEMA);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: GitHub's webhook schemas are missing; run scripts/fetch-specs (it fetches \
             the pinned @octokit/openapi-webhooks with npm)",
            path.display()
        )
    });
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One step of a path into a payload: a member, or every element of an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Seg {
    Key(&'static str),
    Each,
}

fn show(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) if out.is_empty() => out.push_str(k),
            Seg::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Seg::Each => out.push_str("[]"),
        }
    }
    out
}

/// Every member path `shape` reads, parents before their members.
fn read_paths(shape: Shape, prefix: &[Seg], out: &mut Vec<Vec<Seg>>) {
    for member in shape {
        let mut path = prefix.to_vec();
        path.push(Seg::Key(member.key));
        out.push(path.clone());
        match member.keep {
            Keep::Whole => {}
            Keep::Object(inner) => read_paths(inner, &path, out),
            Keep::EachObject(inner) => {
                path.push(Seg::Each);
                read_paths(inner, &path, out);
            }
        }
    }
}

/// What a schema says about one member of an object at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Allows {
    /// The schema cannot hold an object (or array) where the path needs one.
    NotThere,
    /// The schema says nothing about the member.
    Silent,
    /// The member may be left out (`absent`: not required) or be `null` (marked nullable).
    Member { absent: bool, null: bool },
}

/// All of these hold (`allOf`, and a schema's own keywords beside its compositions).
fn all_of(parts: impl IntoIterator<Item = Allows>) -> Allows {
    let mut out = Allows::Silent;
    for part in parts {
        out = match (out, part) {
            (Allows::NotThere, _) | (_, Allows::NotThere) => Allows::NotThere,
            (Allows::Silent, x) | (x, Allows::Silent) => x,
            (Allows::Member { absent: a1, null: n1 }, Allows::Member { absent: a2, null: n2 }) => {
                Allows::Member {
                    absent: a1 && a2,
                    null: n1 && n2,
                }
            }
        };
    }
    out
}

/// One of these holds (`anyOf`, `oneOf`).
fn any_of(parts: impl IntoIterator<Item = Allows>) -> Allows {
    let mut out = Allows::NotThere;
    for part in parts {
        out = match (out, part) {
            (Allows::NotThere, x) | (x, Allows::NotThere) => x,
            (Allows::Silent, x) | (x, Allows::Silent) => x,
            (Allows::Member { absent: a1, null: n1 }, Allows::Member { absent: a2, null: n2 }) => {
                Allows::Member {
                    absent: a1 || a2,
                    null: n1 || n2,
                }
            }
        };
    }
    out
}

fn type_allows(schema: &Value, name: &str) -> Option<bool> {
    match schema.get("type")? {
        Value::String(t) => Some(t == name),
        Value::Array(ts) => Some(ts.iter().any(|t| t == name)),
        _ => None,
    }
}

/// A schema with no keyword that could rule `null` in or out (a bare description).
fn says_nothing(schema: &Value) -> bool {
    [
        "type",
        "nullable",
        "enum",
        "allOf",
        "anyOf",
        "oneOf",
        "$ref",
        "properties",
        "const",
    ]
    .iter()
    .all(|k| schema.get(k).is_none())
}

fn list<'a>(schema: &'a Value, key: &str) -> &'a [Value] {
    schema
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// GitHub's webhook schemas: `webhooks` (one per event and action) over `components/schemas`.
struct Spec {
    doc: Value,
}

impl Spec {
    fn resolve<'a>(&'a self, mut schema: &'a Value) -> &'a Value {
        for _ in 0..64 {
            let Some(reference) = schema.get("$ref").and_then(Value::as_str) else {
                return schema;
            };
            let name = reference
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("unexpected $ref {reference}"));
            schema = &self.doc["components"]["schemas"][name];
            assert!(!schema.is_null(), "$ref {reference} names no schema");
        }
        panic!("a $ref chain longer than 64")
    }

    /// Whether `schema` marks its value nullable: its own `type` includes `null` (or it says
    /// `nullable`, or its `enum` holds `null`), an `anyOf`/`oneOf` alternative does, or every
    /// `allOf` member that says anything does. A mark anywhere counts, even where a strict
    /// reading would cancel it (`"type": ["null", "object"]` beside an `anyOf` of objects is
    /// how the schemas spell a nullable account): auger must take what GitHub means to send.
    fn marks_null(&self, schema: &Value) -> bool {
        let schema = self.resolve(schema);
        let own = schema.get("nullable") == Some(&Value::Bool(true))
            || type_allows(schema, "null") == Some(true)
            || list(schema, "enum").contains(&Value::Null);
        let by_alternative = ["anyOf", "oneOf"]
            .iter()
            .any(|key| list(schema, key).iter().any(|a| self.marks_null(a)));
        let members: Vec<bool> = list(schema, "allOf")
            .iter()
            .filter(|m| !says_nothing(m))
            .map(|m| self.marks_null(m))
            .collect();
        let by_all_members = !members.is_empty() && members.iter().all(|n| *n);
        own || by_alternative || by_all_members
    }

    /// What `schema` allows for the member at `path` (which ends in a member), given that every
    /// object on the way there is present.
    fn allows(&self, schema: &Value, path: &[Seg]) -> Allows {
        let schema = self.resolve(schema);
        let mut parts = vec![self.own(schema, path)];
        parts.extend(list(schema, "allOf").iter().map(|m| self.allows(m, path)));
        for key in ["anyOf", "oneOf"] {
            let alternatives = list(schema, key);
            if !alternatives.is_empty() {
                parts.push(any_of(alternatives.iter().map(|a| self.allows(a, path))));
            }
        }
        all_of(parts)
    }

    /// [`Spec::allows`] by the schema's own keywords (`type`, `properties`, `required`, `items`).
    fn own(&self, schema: &Value, path: &[Seg]) -> Allows {
        let (first, rest) = path.split_first().expect("a path ends in a member");
        match first {
            Seg::Each => {
                if type_allows(schema, "array") == Some(false) {
                    return Allows::NotThere;
                }
                match schema.get("items") {
                    Some(items) => self.allows(items, rest),
                    None => Allows::Silent,
                }
            }
            Seg::Key(key) => {
                if type_allows(schema, "object") == Some(false) {
                    return Allows::NotThere;
                }
                let properties = schema.get("properties");
                let required = list(schema, "required").contains(&json!(key));
                match (properties.and_then(|p| p.get(key)), rest.is_empty()) {
                    (Some(member), true) => Allows::Member {
                        absent: !required,
                        null: self.marks_null(member),
                    },
                    (Some(member), false) => self.allows(member, rest),
                    // A member the schema's object does not list may be left out.
                    (None, true) if properties.is_some() || schema.get("required").is_some() => {
                        Allows::Member {
                            absent: !required,
                            null: false,
                        }
                    }
                    (None, _) => Allows::Silent,
                }
            }
        }
    }

    /// Each webhook's event and action (from its operation id, e.g. `pull-request/closed`) and
    /// payload schema.
    fn webhooks(&self) -> Vec<(String, Option<String>, &Value)> {
        let hooks = self.doc["webhooks"].as_object().expect("webhooks");
        hooks
            .iter()
            .map(|(key, hook)| {
                let op = &hook["post"];
                let id = op["operationId"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{key}: no operationId"));
                let (event, action) = match id.split_once('/') {
                    Some((e, a)) => (e, Some(a.replace('-', "_"))),
                    None => (id, None),
                };
                let body = &op["requestBody"]["content"]["application/json"]["schema"];
                assert!(!body.is_null(), "{key}: no payload schema");
                (event.replace('-', "_"), action, body)
            })
            .collect()
    }
}

/// A field GitHub may leave out or send as `null`, for one event and action.
struct Loose {
    path: Vec<Seg>,
    absent: bool,
    null: bool,
}

/// Each field auger reads that the schema lets be absent or null in the payload `schema`.
fn loose_fields(spec: &Spec, schema: &Value, shape: Shape) -> Vec<Loose> {
    let mut paths = Vec::new();
    read_paths(shape, &[], &mut paths);
    paths
        .into_iter()
        .filter_map(|path| match spec.allows(schema, &path) {
            Allows::Member { absent, null } if absent || null => Some(Loose { path, absent, null }),
            _ => None,
        })
        .collect()
}

/// Sets the member at `path` to `null` (inserted where its object lacks it) or removes it, in
/// every object the path reaches; whether the payload changed.
fn mutate(value: &mut Value, path: &[Seg], to_null: bool) -> bool {
    match path {
        [] => false,
        [Seg::Key(key)] => match value.as_object_mut() {
            Some(object) if to_null => object.insert((*key).to_owned(), Value::Null) != Some(Value::Null),
            Some(object) => object.remove(*key).is_some(),
            None => false,
        },
        [Seg::Key(key), rest @ ..] => value.get_mut(*key).is_some_and(|v| mutate(v, rest, to_null)),
        [Seg::Each, rest @ ..] => value.as_array_mut().is_some_and(|items| {
            items
                .iter_mut()
                .fold(false, |changed, item| mutate(item, rest, to_null) | changed)
        }),
    }
}

/// A real payload of one event and action, made to ask auger for work where it can.
struct Base {
    /// The fixture file and how it was varied, for messages.
    name: String,
    payload: Value,
    /// The outcome auger must give the payload as it is (a work kind, or `ignored`).
    kind: &'static str,
}

/// The payloads each event and action is tried with: the fixture of that action if there is
/// one, else the event's first fixture with its `action` set (every fixture, for events
/// without actions), varied so it asks for work, and, for pull requests and reviews, the same
/// in the gitops repository.
fn bases(event: &str, action: Option<&str>, fixtures: &[String]) -> Vec<Base> {
    let of_event: Vec<&String> = fixtures
        .iter()
        .filter(|f| f.split('.').next() == Some(event))
        .collect();
    assert!(!of_event.is_empty(), "no fixture of {event}");
    let chosen: Vec<&String> = match action {
        None => of_event,
        Some(a) => {
            let exact = format!("{event}.{a}.payload.json");
            vec![
                of_event
                    .iter()
                    .find(|f| **f == &exact)
                    .copied()
                    .unwrap_or(of_event[0]),
            ]
        }
    };
    let mut out = Vec::new();
    for file in chosen {
        let mut payload: Value = serde_json::from_slice(&fixture(file)).unwrap();
        if let Some(a) = action {
            payload["action"] = json!(a);
        }
        let mut name = file.clone();
        match (event, file.as_str()) {
            ("status", _) => {
                // Its commit is the tip of `master`, and its git author is named unlike its
                // GitHub account, so the author a build records shows where it came from.
                payload["branches"][0]["commit"]["sha"] = json!(STATUS_SHA);
                payload["commit"]["commit"]["author"]["name"] = json!(GIT_AUTHOR);
                name.push_str(" (tip of master)");
            }
            ("push", "push.payload.json") => {
                // The fixture deletes a tag; pushing it is what auger acts on.
                payload["deleted"] = json!(false);
                payload["after"] = json!(STATUS_SHA);
                name.push_str(" (tag pushed)");
            }
            ("delete", _) => {
                payload["ref_type"] = json!("branch");
                payload["ref"] = json!("feature");
                name.push_str(" (branch feature)");
            }
            ("issue_comment", _) => {
                payload["issue"]["pull_request"] = json!({
                    "url": "https://api.github.com/repos/Codertocat/Hello-World/pulls/1",
                    "html_url": "https://github.com/Codertocat/Hello-World/pull/1",
                });
                payload["comment"]["body"] = json!("/deploy staging");
                name.push_str(" (a command on a pull request)");
            }
            _ => {}
        }
        let action = action.unwrap_or("");
        let kind = match (event, action) {
            ("status", _) => "build",
            ("check_run" | "workflow_run", "completed") => "build",
            ("push", _) if file == "push.payload.json" => "tag",
            ("delete", _) => "branch_deleted",
            ("pull_request", "opened" | "reopened" | "synchronize" | "closed") => "pull_request",
            ("issue_comment", "created") => "comment",
            // Any change of the App's installations makes auger look them up again.
            ("installation" | "installation_repositories", _) => "installation",
            ("ping", _) => "pong",
            _ => "ignored",
        };
        if matches!(event, "pull_request" | "pull_request_review") {
            let mut gitops = payload.clone();
            gitops["repository"]["full_name"] = json!(GITOPS);
            let kind = match (event, action) {
                ("pull_request", "closed") => "release_pull_closed",
                ("pull_request_review", "submitted" | "dismissed") => "release_review",
                _ => "ignored",
            };
            out.push(Base {
                name: format!("{name} (in {GITOPS})"),
                payload: gitops,
                kind,
            });
        }
        out.push(Base { name, payload, kind });
    }
    out
}

/// What auger must make of a payload whose `field` is null or absent, given what it makes of
/// the payload itself: the same, unless the absence means something.
fn defined_outcome(event: &str, field: &str, base: &Result<Work, Ignored>) -> Result<Work, Ignored> {
    let mut out = base.clone();
    match (event, field, &mut out) {
        // Without the author's GitHub account (or its login), the git author's name.
        ("status", "commit.author" | "commit.author.login", Ok(Work::Build(b))) => {
            b.facts.author = Some(GIT_AUTHOR.to_owned());
        }
        // A branch whose tip is not given is not known to hold the commit; a run without its
        // branch names none.
        (
            "status" | "check_run" | "workflow_run",
            "branches[].commit.sha" | "check_run.check_suite.head_branch" | "workflow_run.head_branch",
            Ok(Work::Build(b)),
        ) => b.facts.branches.clear(),
        // No conclusion is no success.
        ("check_run", "check_run.conclusion", _) | ("workflow_run", "workflow_run.conclusion", _) => {
            out = Err(Ignored::NotWanted);
        }
        // Without the workflow, the run's own name names it: empty in this payload, so no
        // policy's signal matches.
        ("workflow_run", "workflow", _) => out = Err(Ignored::NotWanted),
        // Nobody to check the authority of.
        ("pull_request_review", "review.user", Ok(_)) => out = Err(Ignored::NoAuthor("review")),
        ("issue_comment", "comment.user", Ok(_)) => out = Err(Ignored::NoAuthor("comment")),
        // Without the pull request marker, a comment on a plain issue.
        ("issue_comment", "issue.pull_request", _) => out = Err(Ignored::NotWanted),
        _ => {}
    }
    out
}

fn kind_of(outcome: &Result<Work, Ignored>) -> &'static str {
    outcome.as_ref().map_or("ignored", Work::kind)
}

/// Fields the issue found auger refusing: the schema must yield each (a guard on the walk).
const KNOWN_LOOSE: &[(&str, &str)] = &[
    ("pull_request", "pull_request.merged"),
    ("pull_request", "pull_request.user"),
    ("pull_request_review", "review.user"),
    ("issue_comment", "comment.user"),
    ("push", "repository.owner"),
    ("push", "sender"),
    ("installation", "installation.account"),
    ("check_run", "check_run.check_suite.id"),
    ("status", "commit.author"),
    ("status", "commit.author.login"),
];

#[test]
fn every_field_the_schema_lets_be_null_or_absent_is_taken_null_and_absent() {
    let spec = Spec {
        doc: webhook_schema(),
    };
    let fixtures: Vec<String> = {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/webhooks");
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".json"))
            .collect();
        names.sort();
        names
    };

    // The app of the fixtures' repository (CI signals and previews), the workflow fixture's
    // repository, and a gitops repository.
    let gitops = GitopsRemote::with_readme();
    let setup = Setup::new(
        &[],
        &format!(
            "[gitops]\nrepo = \"{GITOPS}\"\nurl = \"{}\"\nbranch = \"main\"\n",
            gitops.url
        ),
    );
    let policies = setup.path().join("policies");
    std::fs::write(
        policies.join("hello.toml"),
        format!(
            "app = \"hello\"\nrepo = \"{HELLO}\"\ntemplate = \"web\"\n[artifact]\n\
             signals = [\"status:default\", \"check_run:Octocoders-linter\"]\n[vars]\nimage = \"x\"\n\
             [preview]\nenv = \"preview\"\n"
        ),
    )
    .unwrap();
    std::fs::write(
        policies.join("octo.toml"),
        "app = \"octo\"\nrepo = \"octo-org/octo-repo\"\ntemplate = \"web\"\n[artifact]\n\
         signals = [\"workflow_run:test\"]\n[vars]\nimage = \"x\"\n",
    )
    .unwrap();
    let policy_set: PolicySet = auger::policy::load_dir(&policies, &setup.path().join("templates")).unwrap();
    let gitops_repos = [RepoName::new(GITOPS).unwrap()];
    let scope = Scope {
        policies: &policy_set,
        gitops_repos: &gitops_repos,
        config_repo: None,
    };
    let log = setup.path().join("auger.log");
    let mut server = setup.start_logging_json(&log, "warn");

    let mut found: BTreeSet<(String, String)> = BTreeSet::new();
    let mut exercised: BTreeSet<(String, String)> = BTreeSet::new();
    let mut hooks_seen: BTreeSet<String> = BTreeSet::new();
    let mut cases = 0;
    let mut failures = Vec::new();
    for (event, action, schema) in spec.webhooks() {
        let Some((_, shape)) = EVENTS.iter().find(|(name, _)| *name == event) else {
            continue;
        };
        hooks_seen.insert(event.clone());
        let loose = loose_fields(&spec, schema, shape);
        let hook = match &action {
            Some(a) => format!("{event}.{a}"),
            None => event.clone(),
        };
        for base in bases(&event, action.as_deref(), &fixtures) {
            let body = serde_json::to_vec(&base.payload).unwrap();
            let parsed = auger::webhook::parse_event(&event, &body)
                .unwrap_or_else(|e| panic!("{hook} {}: the payload itself: {e}", base.name));
            let outcome = classify(&parsed, scope);
            let got = if event == "ping" {
                "pong"
            } else {
                kind_of(&outcome)
            };
            assert_eq!(
                got, base.kind,
                "{hook} {}: the payload itself: {outcome:?}",
                base.name
            );
            for field in &loose {
                let shown = show(&field.path);
                found.insert((event.clone(), shown.clone()));
                for to_null in [true, false] {
                    let mut payload = base.payload.clone();
                    if mutate(&mut payload, &field.path, to_null) {
                        exercised.insert((event.clone(), shown.clone()));
                    }
                    let how = if to_null { "null" } else { "absent" };
                    let case = format!(
                        "{hook} {}: {shown} {how} (schema: absent {}, null {})",
                        base.name, field.absent, field.null
                    );
                    let body = serde_json::to_vec(&payload).unwrap();
                    cases += 1;
                    let (code, answer) = server.deliver(&event, &format!("nulls-{cases}"), &body);
                    let want = defined_outcome(&event, &shown, &outcome);
                    let want_answer = match &want {
                        _ if event == "ping" => (200, "pong"),
                        Ok(_) => (202, "queued"),
                        Err(_) => (202, "ignored"),
                    };
                    let got_answer = (code, answer["status"].as_str().unwrap_or_default());
                    if got_answer != want_answer {
                        failures.push(format!("{case}: answered {code} {answer}, want {want_answer:?}"));
                        continue;
                    }
                    // What the edge made of it, in detail: the same parse and classification.
                    match auger::webhook::parse_event(&event, &body) {
                        Ok(parsed) => {
                            let got = classify(&parsed, scope);
                            if got != want {
                                failures.push(format!("{case}: {got:?}, want {want:?}"));
                            }
                        }
                        Err(e) => failures.push(format!("{case}: {e}")),
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cases} cases:\n{}",
        failures.len(),
        failures.join("\n")
    );

    let all_events: BTreeSet<String> = EVENTS.iter().map(|(n, _)| (*n).to_owned()).collect();
    assert_eq!(
        hooks_seen, all_events,
        "the schema describes every event auger reads"
    );
    for (event, field) in KNOWN_LOOSE {
        assert!(
            found.contains(&((*event).to_owned(), (*field).to_owned())),
            "the schema walk missed {event} {field}; found {found:#?}"
        );
    }
    let unexercised: Vec<_> = found.difference(&exercised).collect();
    assert!(
        unexercised.is_empty(),
        "no payload holds these fields' objects, so nulling them changed nothing: {unexercised:?}"
    );
    assert!(cases > 500, "only {cases} cases");

    // The edge said why it ignored a review and a command without their authors.
    server.terminate(Duration::from_secs(30));
    let log = std::fs::read_to_string(&log).unwrap();
    for what in ["review", "comment"] {
        let line = format!("GitHub sent the {what} without its author");
        assert!(log.contains(&line), "no log line {line:?} in:\n{log}");
    }
}
