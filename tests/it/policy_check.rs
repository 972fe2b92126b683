//! `auger policy check` scenarios: a whole policy folder on disk, checked as one.

use std::fs;
use std::path::PathBuf;

use auger::domain::{AppName, BranchName, EnvName, RepoName, TagName};
use auger::policy::{
    Diagnostic, MergeMode, PolicyErrors, PolicySet, SignalKind, load_dir, policy_check_report,
};

use crate::support::data::app;

/// The example of design §5, verbatim.
const FRONTEND: &str = r#"
app = "frontend"
repo = "acme/frontend"
template = "web-service"                # folder under templates/

[artifact]
signals = ["status:ci/build", "check_run:build", "workflow_run:CI"]   # CI success that makes an artifact

[vars]                                  # template variables; may use artifact fields
image = "ghcr.io/acme/frontend:{{ artifact.sha }}"

[env.staging]
auto = { branch = "main" }              # glob; also tag = "v*", pull_request = true
merge = "auto"                          # auto: PR merged at once | approval | direct: commit to branch
deployers = ["permission:write"]        # who may /deploy here

[env.production]
auto = { tag = "v*" }
merge = "approval"
approvals = 2                           # approving reviews on the gitops PR
approvers = ["team:acme/sre", "user:alice"]
deployers = ["team:acme/release-managers"]
after = { env = "staging", soak = "30m" }   # artifact must have been live there this long

[preview]
env = "preview"
on = "pull_request"                     # same-repo PRs only; never forks
cleanup = "closed"                      # PR closed or branch deleted
"#;

/// A second app from a monorepo shared with a third, using lists and negated globs.
const BILLING: &str = r#"
app = "billing"
repo = "acme/platform"
template = "worker"

[artifact]
signals = ["workflow_run:Build billing"]

[env.dev]
auto = { branch = ["**", "!wip/*", "!dependabot/**"], pull_request = true }
merge = "direct"
deployers = ["permission:write"]
url = "https://{{ app }}.dev.example.com"

[env.staging]
auto = { branch = ["main", "release/*"] }
merge = "auto"
deployers = ["permission:maintain"]
after = { env = "dev" }

[env.production]
auto = { tag = ["v*", "!v*-rc*"] }
approvers = ["team:acme/payments"]
deployers = ["user:carol"]
after = { env = "staging", soak = "1h30m" }
"#;

const LEDGER: &str = r#"
app = "ledger"
repo = "Acme/Platform"
template = "worker"
"#;

struct Folder {
    _root: tempfile::TempDir,
    policies: PathBuf,
    templates: PathBuf,
}

impl Folder {
    /// A checkout with `templates/web-service/` and `templates/worker/`.
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let policies = root.path().join("policies");
        let templates = root.path().join("templates");
        fs::create_dir(&policies).unwrap();
        for t in ["web-service", "worker"] {
            fs::create_dir_all(templates.join(t)).unwrap();
        }
        Self {
            _root: root,
            policies,
            templates,
        }
    }

    fn write(&self, name: &str, text: &str) -> &Self {
        fs::write(self.policies.join(name), text).unwrap();
        self
    }

    fn load(&self) -> Result<PolicySet, PolicyErrors> {
        load_dir(&self.policies, &self.templates)
    }

    /// Diagnostics with the checkout's path cut, so expectations read like the CLI output
    /// run from the checkout.
    fn lines(&self, diagnostics: &[Diagnostic]) -> Vec<String> {
        let root = format!("{}/", self.policies.parent().unwrap().display());
        diagnostics
            .iter()
            .map(|d| d.to_string().replace(&root, ""))
            .collect()
    }
}

fn names<'a>(envs: impl IntoIterator<Item = &'a EnvName>) -> Vec<&'a str> {
    envs.into_iter().map(EnvName::as_str).collect()
}

/// The design example, a second app with lists and negated globs, and a third sharing its
/// repository, in a folder that also holds files that are not policies.
fn design_example_folder() -> Folder {
    let folder = Folder::new();
    folder
        .write("frontend.toml", FRONTEND)
        .write("billing.toml", BILLING)
        .write("ledger.toml", LEDGER)
        // Neither of these is a policy: only `*.toml` directly in the folder counts.
        .write("README.md", "not toml = [")
        .write("frontend.toml.bak", "not toml = [");
    fs::create_dir(folder.policies.join("old")).unwrap();
    fs::write(folder.policies.join("old/x.toml"), "broken = [").unwrap();
    folder
}

#[test]
fn the_design_example_and_a_second_app_pass_without_errors_or_warnings() {
    let folder = design_example_folder();
    let result = folder.load();
    let (report, code) = policy_check_report(&result);
    assert_eq!((report.as_str(), code), ("3 policies, 0 errors, 0 warnings\n", 0));
    assert_eq!(
        result.unwrap().apps().map(AppName::as_str).collect::<Vec<_>>(),
        ["billing", "frontend", "ledger"]
    );
}

#[test]
fn the_design_example_answers_signals_targets_approvals_and_preview() {
    let folder = design_example_folder();
    let set = folder.load().unwrap();
    let frontend = set.get(&app("frontend")).unwrap();
    assert_eq!(frontend.file(), folder.policies.join("frontend.toml"));
    assert_eq!(names(frontend.envs().map(|(n, _)| n)), ["staging", "production"]);
    assert!(frontend.accepts_signal(SignalKind::Status, "ci/build"));
    assert!(frontend.accepts_signal(SignalKind::WorkflowRun, "CI"));
    assert!(!frontend.accepts_signal(SignalKind::CheckRun, "CI"));

    let main = BranchName::new("main").unwrap();
    assert_eq!(names(frontend.auto_targets_for_branch(&main)), ["staging"]);
    let v1 = TagName::new("v1.2.0").unwrap();
    assert_eq!(names(frontend.auto_targets_for_tag(&v1)), ["production"]);
    assert!(frontend.auto_targets_for_pull_request().is_empty());
    let production = frontend.env(&EnvName::new("production").unwrap()).unwrap();
    assert_eq!(production.required_approvals(), 2);
    let preview = frontend.preview().unwrap();
    assert_eq!(
        (preview.env.as_str(), preview.merge),
        ("preview", MergeMode::Direct)
    );
}

#[test]
fn a_monorepo_policy_with_lists_and_negated_globs_picks_its_targets() {
    let set = design_example_folder().load().unwrap();
    // The monorepo: both apps, whatever case the webhook spells the repository in.
    let platform = RepoName::new("acme/platform").unwrap();
    let apps: Vec<&str> = set.for_repo(&platform).map(|p| p.app().as_str()).collect();
    assert_eq!(apps, ["billing", "ledger"]);

    let billing = set.get(&app("billing")).unwrap();
    let branch = |b: &str| BranchName::new(b).unwrap();
    assert_eq!(
        names(billing.auto_targets_for_branch(&branch("main"))),
        ["dev", "staging"]
    );
    assert_eq!(
        names(billing.auto_targets_for_branch(&branch("release/2.0"))),
        ["dev", "staging"]
    );
    assert_eq!(
        names(billing.auto_targets_for_branch(&branch("release/2.0/hotfix"))),
        ["dev"]
    );
    assert!(billing.auto_targets_for_branch(&branch("wip/try")).is_empty());
    assert!(
        billing
            .auto_targets_for_branch(&branch("dependabot/cargo/serde"))
            .is_empty()
    );
    assert_eq!(names(billing.auto_targets_for_pull_request()), ["dev"]);
    let tag = |t: &str| TagName::new(t).unwrap();
    assert_eq!(
        names(billing.auto_targets_for_tag(&tag("v2.0.0"))),
        ["production"]
    );
    assert!(billing.auto_targets_for_tag(&tag("v2.0.0-rc1")).is_empty());
    let prod = billing.env(&EnvName::new("production").unwrap()).unwrap();
    assert_eq!(prod.merge, MergeMode::Approval, "merge defaults to approval");
    assert_eq!(prod.required_approvals(), 1);
    assert_eq!(
        prod.after.as_ref().unwrap().soak,
        std::time::Duration::from_secs(90 * 60)
    );
}

#[test]
fn one_mistake_of_each_kind_is_reported_with_file_and_key() {
    let folder = Folder::new();
    folder
        .write("frontend.toml", FRONTEND)
        // Syntax: an unterminated array.
        .write(
            "broken.toml",
            "app = \"broken\"\nrepo = \"acme/broken\"\nsignals = [\n",
        )
        // Another policy claiming `frontend`, so the name does not match the file either.
        .write("copy.toml", &FRONTEND.replace("# folder under templates/", ""))
        // Invalid names, unknown keys and wrong types.
        .write(
            "names.toml",
            r#"
app = "names"
repo = "acme"
template = "../etc"
colour = "blue"
[env.Staging]
merge = "auto"
[env.qa]
approvals = "two"
"#,
        )
        .write(
            "BadApp.toml",
            "app = \"BadApp\"\nrepo = \"acme/x\"\ntemplate = \"worker\"\n",
        )
        // Values that do not parse.
        .write(
            "values.toml",
            r#"
app = "values"
repo = "acme/values"
template = "cron-job"
[artifact]
signals = ["build", "status:ci", "circle:build"]
[env.staging]
auto = { branch = ["main", "{release,hotfix"] }
merge = "auto"
deployers = ["permission:read", "team:acme", "user:bob"]
[env.production]
after = { env = "staging", soak = "half an hour" }
approvers = ["user:alice"]
"#,
        )
        // Rules across keys.
        .write(
            "rules.toml",
            r#"
app = "rules"
repo = "acme/rules"
template = "worker"
[env.a]
merge = "approval"
approvals = 0
approvers = ["team:acme/sre"]
after = { env = "b" }
[env.b]
merge = "direct"
approvals = 1
after = { env = "a" }
[env.c]
merge = "auto"
after = { env = "c" }
[env.d]
merge = "auto"
after = { env = "stagin" }
[preview]
env = "b"
"#,
        );

    let result = folder.load();
    let Err(e) = &result else {
        panic!("expected errors")
    };
    let expected = [
        r#"policies/BadApp.toml: app: app name "BadApp" is invalid: must match [a-z0-9][a-z0-9-]{0,52} (lowercase letters, digits and '-', at most 53 characters, not starting with '-')"#,
        "policies/broken.toml: TOML syntax error at line 3, column 12: unclosed array, expected `]`",
        r#"policies/copy.toml: app: app "frontend" does not match the file name: policies/copy.toml must say app = "copy", or be renamed to frontend.toml"#,
        r#"policies/copy.toml: app: app "frontend" is already defined in policies/frontend.toml"#,
        r#"policies/names.toml: colour: unknown key `colour`, expected one of: `app`, `repo`, `template`, `artifact`, `vars`, `env`, `preview`"#,
        r#"policies/names.toml: env.Staging: environment name "Staging" is invalid: must match [a-z0-9][a-z0-9-]{0,52} (lowercase letters, digits and '-', at most 53 characters, not starting with '-')"#,
        r#"policies/names.toml: env.qa.approvals: invalid type: string "two", expected a whole number from 0 to 4294967295"#,
        r#"policies/names.toml: repo: repository "acme" is invalid: must be owner/name (owner: letters, digits, '-'; name: letters, digits, '-', '_', '.'; neither '.' nor '..')"#,
        r#"policies/names.toml: template: template name "../etc" is invalid: must be one folder name (letters, digits, '-', '_', '.', not starting with '.')"#,
        r#"policies/rules.toml: env.a.approvals: must be at least 1 when merge = "approval""#,
        r#"policies/rules.toml: env.a.after.env: "after" forms a cycle: a → b → a"#,
        r#"policies/rules.toml: env.b.approvals: only applies when merge = "approval" (here merge = "direct")"#,
        r#"policies/rules.toml: env.c.after.env: environment "c" cannot come after itself"#,
        r#"policies/rules.toml: env.d.after.env: unknown environment "stagin" (known: a, b, c, d)"#,
        r#"policies/rules.toml: preview.env: preview environment "b" is also a normal environment [env.b]; previews need a name of their own"#,
        r#"policies/values.toml: artifact.signals[0]: invalid signal "build": expected status:<context>, check_run:<name> or workflow_run:<workflow name>"#,
        r#"policies/values.toml: artifact.signals[2]: invalid signal "circle:build": unknown kind "circle"; expected status:<context>, check_run:<name> or workflow_run:<workflow name>"#,
        r#"policies/values.toml: env.production.after.soak: invalid duration "half an hour": expected number at 0"#,
        r#"policies/values.toml: env.staging.auto.branch[1]: invalid glob "{release,hotfix": unclosed alternate group; missing '}' (maybe escape '{' with '[{]'?)"#,
        r#"policies/values.toml: env.staging.deployers[0]: invalid principal "permission:read": unknown permission "read": expected write, maintain or admin"#,
        r#"policies/values.toml: env.staging.deployers[1]: invalid principal "team:acme": a team is team:org/slug (org: letters, digits, '-'; slug: letters, digits, '-', '_', '.')"#,
        r#"policies/values.toml: template: unknown template "cron-job": no folder templates/cron-job/ (known: web-service, worker)"#,
    ];
    assert_eq!(folder.lines(&e.errors), expected);
    // Warnings are held back for files with errors: they could be echoes of a pruned value.
    assert!(e.warnings.is_empty(), "{:?}", e.warnings);

    let (report, code) = policy_check_report(&result);
    assert_eq!(code, 1);
    assert!(report.starts_with("error: "), "{report}");
    assert!(
        report.ends_with("\n7 policies, 22 errors, 0 warnings\n"),
        "{report}"
    );
}

#[test]
fn doubtful_approval_settings_warn_but_do_not_fail() {
    let folder = Folder::new();
    folder.write(
        "api.toml",
        r#"
app = "api"
repo = "acme/api"
template = "web-service"
[env.staging]
merge = "auto"
approvers = ["user:alice"]
[env.qa]
merge = "approval"
[env.production]
approvals = 3
approvers = ["user:alice", "user:Bob", "user:bob"]
"#,
    );
    let result = folder.load();
    let (report, code) = policy_check_report(&result);
    let set = result.unwrap();
    assert_eq!(
        folder.lines(set.warnings()),
        [
            r#"policies/api.toml: env.staging.approvers: ignored: approvers only count when merge = "approval" (here merge = "auto")"#,
            r#"policies/api.toml: env.qa.approvers: merge = "approval" but no approvers are listed: no review can ever approve a release here"#,
            // `Bob` and `bob` are one GitHub account.
            r#"policies/api.toml: env.production.approvals: 3 approvals required but only 2 approvers can give them (user:alice, user:Bob, user:bob)"#,
        ]
    );
    assert_eq!(code, 0);
    assert!(report.starts_with("warning: "), "{report}");
    assert!(report.ends_with("\n1 policy, 0 errors, 3 warnings\n"), "{report}");
}

#[test]
fn a_team_among_the_approvers_can_always_grow_so_no_warning() {
    let folder = Folder::new();
    folder.write(
        "api.toml",
        "app = \"api\"\nrepo = \"acme/api\"\ntemplate = \"worker\"\n[env.production]\napprovals = 5\napprovers = [\"team:acme/sre\", \"user:alice\"]\n",
    );
    assert!(folder.load().unwrap().warnings().is_empty());
}

#[test]
fn a_missing_folder_is_one_error_naming_the_path() {
    let folder = Folder::new();
    let missing = folder.policies.join("nope");
    let result = load_dir(&missing, &folder.templates);
    let e = result.as_ref().unwrap_err();
    assert_eq!(e.errors.len(), 1);
    let line = e.errors[0].to_string();
    assert!(
        line.starts_with(&format!("{}: cannot read the policy folder: ", missing.display())),
        "{line}"
    );
    let (report, code) = policy_check_report(&result);
    assert_eq!(code, 1);
    assert!(
        report.ends_with("\n0 policies, 1 error, 0 warnings\n"),
        "{report}"
    );
}

#[test]
fn an_empty_folder_loads_but_warns() {
    let folder = Folder::new();
    let set = folder.load().unwrap();
    assert!(set.is_empty());
    assert_eq!(
        folder.lines(set.warnings()),
        ["policies: no policy files (*.toml) found"]
    );
}

#[test]
fn the_errors_display_lists_every_line_for_a_refusal_to_start() {
    let folder = Folder::new();
    folder.write(
        "x.toml",
        "app = \"y\"\nrepo = \"acme/y\"\ntemplate = \"worker\"\n",
    );
    let e = folder.load().unwrap_err();
    let text = e.to_string();
    assert!(text.starts_with("invalid policies:\n"), "{text}");
    assert!(
        text.contains(": app: app \"y\" does not match the file name"),
        "{text}"
    );
}

#[test]
fn the_checked_in_fixture_folder_stays_valid() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/policies/valid");
    let result = load_dir(&root.join("policies"), &root.join("templates"));
    let (report, code) = policy_check_report(&result);
    assert_eq!((report.as_str(), code), ("2 policies, 0 errors, 0 warnings\n", 0));
}

// ----- edit steps and [env.X.gitops] (design §16) -------------------------------------------

const EDITING: &str = r#"
app = "web"
repo = "acme/web"

[env.staging]
auto = { branch = "main" }
merge = "direct"
gitops = { path = "clusters/{{ env }}/apps/{{ app }}" }

[[env.staging.edit]]
kustomize_image = { file = "kustomization.yaml", name = "ghcr.io/acme/web", tag = "{{ artifact.sha }}" }

[[env.staging.edit]]
yaml_set = { file = "release.yaml", path = "spec.values.image.tag", value = "{{ artifact.short_sha }}", kind = "HelmRelease", name = "web" }

[env.production]
merge = "approval"
approvers = ["user:alice"]

[[env.production.edit]]
kustomize_image = { file = "kustomization.yaml", name = "ghcr.io/acme/web", digest = "{{ vars.digest }}" }
"#;

#[test]
fn a_policy_whose_envs_all_edit_needs_no_template_and_reads_its_steps() {
    use auger::policy::EditStep;
    let folder = Folder::new();
    folder.write("web.toml", EDITING);
    let set = folder.load().unwrap_or_else(|e| panic!("{e}"));
    let web = set.get(&app("web")).unwrap();
    assert!(web.template().is_none());
    let staging = web.env(&EnvName::new("staging").unwrap()).unwrap();
    assert!(staging.edits());
    assert_eq!(
        staging.gitops_path_template(),
        "clusters/{{ env }}/apps/{{ app }}"
    );
    match &staging.edit[..] {
        [EditStep::KustomizeImage(k), EditStep::YamlSet(y)] => {
            assert_eq!(
                (k.file.as_str(), k.name.as_str()),
                ("kustomization.yaml", "ghcr.io/acme/web")
            );
            assert_eq!(k.tag.as_deref(), Some("{{ artifact.sha }}"));
            assert_eq!(k.digest, None);
            assert_eq!(y.path, "spec.values.image.tag");
            assert_eq!(
                (y.kind.as_deref(), y.name.as_deref()),
                (Some("HelmRelease"), Some("web"))
            );
        }
        other => panic!("{other:?}"),
    }
    let production = web.env(&EnvName::new("production").unwrap()).unwrap();
    assert_eq!(production.gitops_path_template(), "{{ env }}/{{ app }}");
}

#[test]
fn bad_edit_steps_and_gitops_tables_are_refused_with_file_and_key() {
    let folder = Folder::new();
    folder.write(
        "web.toml",
        r#"
app = "web"
repo = "acme/web"

[env.staging]
merge = "direct"
gitops = { path = "../elsewhere/{{ app }}", repo = "acme/gitops/prod" }

[[env.staging.edit]]
kustomize_image = { file = "/etc/kustomization.yaml", name = "ghcr.io/acme/web", tag = "x" }

[[env.staging.edit]]
yaml_set = { file = "a/../../b.yaml", path = "spec..tag", value = "{{ artifact.sha" }

[[env.staging.edit]]

[[env.staging.edit]]
kustomize_image = { file = "k.yaml", name = "n", tag = "t" }
yaml_set = { file = "v.yaml", path = "a", value = "b" }

[[env.staging.edit]]
kustomize_image = { file = "k.yaml", name = "n" }

[[env.staging.edit]]
yaml_set = { file = "v.yaml", path = "a", value = "b", colour = "red" }

[env.qa]
merge = "direct"
gitops = { path = "qa/web" }
"#,
    );
    let errors = folder.load().unwrap_err();
    let lines = folder.lines(&errors.errors);
    let want = [
        "policies/web.toml: env.qa.gitops.path: only applies to environments with edit steps: a rendering environment writes qa/web/",
        "policies/web.toml: template: missing required key: environment qa renders templates (no edit steps)",
    ];
    for w in want {
        assert!(lines.iter().any(|l| l == w), "missing {w:?} in {lines:#?}");
    }
    let starts = [
        "policies/web.toml: env.staging.edit[0].kustomize_image.file: file \"/etc/kustomization.yaml\" must be relative (no leading '/')",
        "policies/web.toml: env.staging.edit[1].yaml_set.file: file \"a/../../b.yaml\" must not contain '..'",
        "policies/web.toml: env.staging.edit[1].yaml_set.path: path `spec..tag`: empty key",
        "policies/web.toml: env.staging.edit[1].yaml_set.value: not a valid tera string",
        "policies/web.toml: env.staging.edit[2]: an edit step needs one of kustomize_image",
        "policies/web.toml: env.staging.edit[3]: an edit step is one of kustomize_image and yaml_set, not both",
        "policies/web.toml: env.staging.edit[4]: kustomize_image needs tag, digest or both",
        "policies/web.toml: env.staging.edit[5].yaml_set.colour: unknown key `colour`",
        "policies/web.toml: env.staging.gitops.path: path \"../elsewhere/{{ app }}\" must not contain '..'",
        "policies/web.toml: env.staging.gitops.repo: repository \"acme/gitops/prod\"",
    ];
    for s in starts {
        assert!(
            lines.iter().any(|l| l.starts_with(s)),
            "missing {s:?} in {lines:#?}"
        );
    }
    assert_eq!(lines.len(), want.len() + starts.len(), "{lines:#?}");
}

#[test]
fn a_preview_still_needs_a_template_when_every_env_edits() {
    let folder = Folder::new();
    folder.write(
        "web.toml",
        "app = \"web\"\nrepo = \"acme/web\"\n[env.staging]\nmerge = \"direct\"\n[[env.staging.edit]]\nyaml_set = { file = \"v.yaml\", path = \"image.tag\", value = \"{{ artifact.sha }}\" }\n[preview]\n",
    );
    let errors = folder.load().unwrap_err();
    assert_eq!(
        folder.lines(&errors.errors),
        ["policies/web.toml: template: missing required key: [preview] renders templates"]
    );
}

/// Freeze windows (design §17) are read strictly: each mistake names the file, the key and the
/// window; overriders are principals like deployers.
#[test]
fn freeze_windows_are_checked_with_file_key_and_window() {
    let folder = Folder::new();
    folder.write(
        "api.toml",
        r#"
app = "api"
repo = "acme/api"
template = "worker"
[env.production]
deployers = ["permission:write"]
freeze_overriders = ["team:acme/sre"]
freeze = [
  { from = "Fri 16:00", to = "Mon 08:00", tz = "Europe/Berlin" },
  { from = "Fri 16:00", to = "Mon 08:00", tz = "Berlin" },
  { from = "Someday 16:00", to = "Mon 08:00", tz = "UTC" },
]
"#,
    );
    let errors = folder.load().unwrap_err();
    let lines = folder.lines(&errors.errors);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines[0].starts_with(
            "policies/api.toml: env.production.freeze[1]: tz: \"Berlin\" is not an IANA time zone"
        ),
        "{lines:#?}"
    );
    assert!(
        lines[1].starts_with(
            "policies/api.toml: env.production.freeze[2]: from: \"Someday 16:00\" is not a weekday"
        ),
        "{lines:#?}"
    );

    folder.write(
        "api.toml",
        r#"
app = "api"
repo = "acme/api"
template = "worker"
[env.production]
freeze_overriders = ["team:acme/sre"]
freeze = [{ from = "Fri 16:00", to = "Mon 08:00", tz = "Europe/Berlin" }]
"#,
    );
    let set = folder.load().unwrap();
    let rules = set
        .get(&app("api"))
        .unwrap()
        .env(&EnvName::new("production").unwrap())
        .unwrap();
    assert_eq!(rules.freeze.len(), 1);
    assert_eq!(rules.freeze_overriders.len(), 1);
}

/// `[preview] ttl` (design §17) is a humantime duration like `after.soak`; zero and bad
/// durations are refused with file and key, and no ttl keeps previews until the PR closes.
#[test]
fn a_preview_ttl_is_a_positive_duration_checked_with_file_and_key() {
    let folder = Folder::new();
    let web = |preview: &str| {
        format!(
            "app = \"web\"\nrepo = \"acme/web\"\ntemplate = \"web-service\"\n[env.staging]\nmerge = \"direct\"\n[preview]\n{preview}"
        )
    };
    folder.write("web.toml", &web("ttl = \"72h\"\n"));
    let set = folder.load().unwrap();
    let preview = set.get(&app("web")).unwrap().preview().unwrap();
    assert_eq!(preview.ttl, Some(std::time::Duration::from_secs(72 * 3600)));

    folder.write("web.toml", &web(""));
    let set = folder.load().unwrap();
    assert_eq!(set.get(&app("web")).unwrap().preview().unwrap().ttl, None);

    folder.write("web.toml", &web("ttl = \"three days\"\n"));
    let errors = folder.load().unwrap_err();
    assert_eq!(
        folder.lines(&errors.errors),
        [r#"policies/web.toml: preview.ttl: invalid duration "three days": expected number at 0"#]
    );

    folder.write("web.toml", &web("ttl = \"0s\"\n"));
    let errors = folder.load().unwrap_err();
    assert_eq!(
        folder.lines(&errors.errors),
        [
            "policies/web.toml: preview.ttl: must be longer than zero (leave ttl out to keep previews until the pull request closes)"
        ]
    );
}
