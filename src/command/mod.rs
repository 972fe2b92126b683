//! PR comment commands (design §8, §17): `/deploy`, `/rollback`, `/hold`, `/resume`,
//! `/freeze`, `/unfreeze`, `/reject`, `/status`, `/help`. Pure: a comment body goes in, commands or
//! friendly errors come out.
//!
//! Grammar, decided here:
//! - A command is a line whose first non-blank character is `/` (at most 3 spaces before it),
//!   outside code, block quotes and HTML (`command/scan.rs` says exactly what is skipped).
//! - The command word follows `/` directly and is matched case-insensitively (`/Deploy` works);
//!   arguments are separated by any whitespace and stay case-sensitive, so `/deploy Prod` is
//!   refused (environment names are lowercase).
//! - `/word` that is no command is ignored (`/cc @team`, `/usr/bin`), unless it is a likely
//!   typo of one (edit distance ≤ 2, and at most half the word), which is an error with a
//!   "did you mean".
//! - `--force` (on `/deploy`) may stand anywhere after the command word. `/freeze`'s
//!   `until <time>` comes right after the env, and the rest of the line is the reason, as
//!   after `/reject`'s target.
//! - A comment yields either exactly one side-effecting command (`/deploy`, `/rollback`,
//!   `/hold`, `/resume`, `/freeze`, `/unfreeze`, `/reject`), or read-only ones (`/status`, `/help`, duplicates dropped). Two
//!   side-effecting lines, even identical ones, or one mixed with a read-only one, are an
//!   error. Any error means nothing runs: the outcome then lists every error.
//!
//! The command table [`COMMANDS`] drives the arity checks, the usage lines in errors, the
//! typo suggestions and [`help_text`], so they cannot drift apart.

mod scan;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::Serialize;

use crate::domain::{AppName, CommitSha, EnvName, NameError};
use crate::notify::reply::render_markdown;

// ---------------------------------------------------------------------------------------------
// Argument types

const SHA_RULE: &str = "must be 7 to 40 hex digits of a commit";

/// A commit sha as typed in a comment: 7 to 40 hex digits, lowercased. The store resolves an
/// abbreviation to the full [`CommitSha`] later.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShaPrefix(String);

impl ShaPrefix {
    pub const MIN_LEN: usize = 7;
    pub const MAX_LEN: usize = 40;

    pub fn new(s: &str) -> Result<Self, NameError> {
        let ok =
            (Self::MIN_LEN..=Self::MAX_LEN).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit());
        if ok {
            Ok(Self(s.to_ascii_lowercase()))
        } else {
            Err(NameError::Invalid {
                kind: "commit sha",
                value: s.chars().take(120).collect(),
                rule: SHA_RULE,
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// All 40 digits, so no lookup is needed.
    pub fn is_full(&self) -> bool {
        self.0.len() == Self::MAX_LEN
    }

    /// The full sha, when all 40 digits were given.
    pub fn to_commit_sha(&self) -> Option<CommitSha> {
        CommitSha::new(self.0.clone()).ok()
    }

    /// Whether `sha` starts with this prefix.
    pub fn matches(&self, sha: &CommitSha) -> bool {
        sha.as_str().starts_with(&self.0)
    }
}

impl From<&CommitSha> for ShaPrefix {
    fn from(sha: &CommitSha) -> Self {
        Self(sha.as_str().to_owned())
    }
}

impl TryFrom<&ShaPrefix> for CommitSha {
    type Error = NameError;
    fn try_from(p: &ShaPrefix) -> Result<Self, NameError> {
        CommitSha::new(p.0.clone())
    }
}

impl FromStr for ShaPrefix {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        Self::new(s)
    }
}

impl fmt::Display for ShaPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ShaPrefix {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

// No `<…>` outside code spans: GitHub would take it for an HTML tag and drop it.
const TARGET_RULE: &str = "must be an artifact id like `frontend@0123456789ab` (an app name, `@` and 7 to 40 hex digits) or a commit sha (7 to 40 hex digits)";

/// What `/rollback` goes back to when named.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RollbackTarget {
    /// An artifact id `<app>@<sha prefix>`, as auger prints them (`frontend@0123456789ab`).
    /// Same rule as `artifact::ArtifactId`'s parser; convert with `to_string().parse()`.
    Artifact { app: AppName, sha: ShaPrefix },
    /// A commit sha (prefix) of the PR's app.
    Sha(ShaPrefix),
}

impl RollbackTarget {
    pub fn sha(&self) -> &ShaPrefix {
        match self {
            Self::Artifact { sha, .. } | Self::Sha(sha) => sha,
        }
    }
}

impl FromStr for RollbackTarget {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        let bad = || NameError::Invalid {
            kind: "artifact id or commit sha",
            value: s.chars().take(120).collect(),
            rule: TARGET_RULE,
        };
        match s.split_once('@') {
            // The app part names its own rule, which is more helpful than the generic one.
            Some((app, sha)) => Ok(Self::Artifact {
                app: AppName::new(app)?,
                sha: ShaPrefix::new(sha).map_err(|_| bad())?,
            }),
            None => ShaPrefix::new(s).map(Self::Sha).map_err(|_| bad()),
        }
    }
}

impl fmt::Display for RollbackTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Artifact { app, sha } => write!(f, "{app}@{sha}"),
            Self::Sha(sha) => write!(f, "{sha}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The command table

/// Which command, without its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandKind {
    Deploy,
    Rollback,
    Hold,
    Resume,
    Freeze,
    Unfreeze,
    Reject,
    Status,
    Help,
}

/// The kinds of argument a command takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArgKind {
    Env,
    /// An app of the repository, when it has several (a monorepo).
    App,
    Sha,
    RollbackTarget,
    /// `--force`, anywhere after the command word.
    Force,
    /// `until <time>`, right after the env.
    Until,
    /// The rest of the line.
    Reason,
}

impl ArgKind {
    /// The name shown in usage lines, without the angle brackets.
    pub const fn placeholder(self) -> &'static str {
        match self {
            Self::Env => "env",
            Self::App => "app",
            Self::Sha => "sha",
            Self::RollbackTarget => "artifact or sha",
            Self::Force => "--force",
            Self::Until => "time",
            Self::Reason => "reason",
        }
    }

    /// How the help text's list of arguments shows it: `<env>`, `--force`, `until <time>`.
    pub fn shown(self) -> String {
        match self {
            Self::Force => self.placeholder().to_owned(),
            Self::Until => format!("until <{}>", self.placeholder()),
            _ => format!("<{}>", self.placeholder()),
        }
    }

    /// One line for the help text.
    pub const fn description(self) -> &'static str {
        match self {
            Self::Env => "an environment name such as `staging` (lowercase letters, digits and `-`)",
            Self::App => {
                "the app to act on when the repository has several, such as `web`; a word of 7 to 40 hex digits is read as a sha"
            }
            Self::Sha => "a commit sha, 7 to 40 hex digits",
            Self::RollbackTarget => {
                "an artifact id such as `frontend@0123456789ab`, or a commit sha (7 to 40 hex digits)"
            }
            Self::Force => "goes through a freeze, for the environment's `freeze_overriders`",
            Self::Until => {
                "a UTC time such as `2026-12-07T08:00Z`, an RFC 3339 time, or a date (`2026-12-07`, midnight UTC)"
            }
            Self::Reason => "free text, the rest of the line",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgSpec {
    pub kind: ArgKind,
    pub optional: bool,
}

/// One row of the command table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandSpec {
    pub kind: CommandKind,
    /// The command word, without `/`.
    pub name: &'static str,
    /// Positional arguments; optional ones come last.
    pub args: &'static [ArgSpec],
    /// One sentence for the help text.
    pub summary: &'static str,
    /// Changes something (a release, a hold), so at most one per comment.
    pub side_effecting: bool,
}

impl CommandSpec {
    /// `/deploy <env> [<sha>]`
    pub fn usage(&self) -> String {
        let mut s = format!("/{}", self.name);
        for a in self.args {
            let p = a.kind.placeholder();
            match (a.kind, a.optional) {
                (ArgKind::Force, _) => s.push_str(&format!(" [{p}]")),
                (ArgKind::Until, _) => s.push_str(&format!(" [until <{p}>]")),
                (_, true) => s.push_str(&format!(" [<{p}>]")),
                (_, false) => s.push_str(&format!(" <{p}>")),
            }
        }
        s
    }

    fn required_args(&self) -> usize {
        self.args.iter().filter(|a| !a.optional).count()
    }
}

const ENV: ArgSpec = ArgSpec {
    kind: ArgKind::Env,
    optional: false,
};

const DEPLOY: CommandSpec = CommandSpec {
    kind: CommandKind::Deploy,
    name: "deploy",
    args: &[
        ENV,
        ArgSpec {
            kind: ArgKind::App,
            optional: true,
        },
        ArgSpec {
            kind: ArgKind::Sha,
            optional: true,
        },
        ArgSpec {
            kind: ArgKind::Force,
            optional: true,
        },
    ],
    summary: "Release this pull request's artifact (or the one built from `<sha>`) to `<env>`; `<app>` picks the app in a repository with several; `--force` goes through a freeze.",
    side_effecting: true,
};

const ROLLBACK: CommandSpec = CommandSpec {
    kind: CommandKind::Rollback,
    name: "rollback",
    args: &[
        ENV,
        ArgSpec {
            kind: ArgKind::RollbackTarget,
            optional: true,
        },
    ],
    summary: "Release the previous release of `<env>` again (or the named earlier one).",
    side_effecting: true,
};

const HOLD: CommandSpec = CommandSpec {
    kind: CommandKind::Hold,
    name: "hold",
    args: &[ENV],
    summary: "Stop automatic deploys of this app to `<env>`.",
    side_effecting: true,
};

const RESUME: CommandSpec = CommandSpec {
    kind: CommandKind::Resume,
    name: "resume",
    args: &[ENV],
    summary: "Restart automatic deploys of this app to `<env>`.",
    side_effecting: true,
};

const FREEZE: CommandSpec = CommandSpec {
    kind: CommandKind::Freeze,
    name: "freeze",
    args: &[
        ENV,
        ArgSpec {
            kind: ArgKind::Until,
            optional: true,
        },
        ArgSpec {
            kind: ArgKind::Reason,
            optional: true,
        },
    ],
    summary: "Stop automatic deploys of this app to `<env>` and refuse `/deploy` without `--force`, until `<time>` or `/unfreeze`.",
    side_effecting: true,
};

const UNFREEZE: CommandSpec = CommandSpec {
    kind: CommandKind::Unfreeze,
    name: "unfreeze",
    args: &[ENV],
    summary: "Lift a `/freeze` of `<env>`; the newest waiting release goes out.",
    side_effecting: true,
};

const REJECT: CommandSpec = CommandSpec {
    kind: CommandKind::Reject,
    name: "reject",
    args: &[
        ArgSpec {
            kind: ArgKind::RollbackTarget,
            optional: false,
        },
        ArgSpec {
            kind: ArgKind::Reason,
            optional: true,
        },
    ],
    summary: "Veto an artifact of this app: it never deploys automatically, and `/deploy <env> <sha> --force` is needed.",
    side_effecting: true,
};

const STATUS: CommandSpec = CommandSpec {
    kind: CommandKind::Status,
    name: "status",
    args: &[],
    summary: "Show this app's environments and the artifact released in each.",
    side_effecting: false,
};

const HELP: CommandSpec = CommandSpec {
    kind: CommandKind::Help,
    name: "help",
    args: &[],
    summary: "Show this list of commands.",
    side_effecting: false,
};

/// Every command, in help-text order.
pub const COMMANDS: &[CommandSpec] = &[
    DEPLOY, ROLLBACK, HOLD, RESUME, FREEZE, UNFREEZE, REJECT, STATUS, HELP,
];

impl CommandKind {
    pub const fn spec(self) -> &'static CommandSpec {
        match self {
            Self::Deploy => &DEPLOY,
            Self::Rollback => &ROLLBACK,
            Self::Hold => &HOLD,
            Self::Resume => &RESUME,
            Self::Freeze => &FREEZE,
            Self::Unfreeze => &UNFREEZE,
            Self::Reject => &REJECT,
            Self::Status => &STATUS,
            Self::Help => &HELP,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Commands

/// A parsed, validated command.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Command {
    Deploy {
        env: EnvName,
        /// The app, in a repository with several.
        app: Option<AppName>,
        sha: Option<ShaPrefix>,
        /// `--force`: through a freeze, for a freeze overrider.
        force: bool,
    },
    Rollback {
        env: EnvName,
        target: Option<RollbackTarget>,
    },
    Hold {
        env: EnvName,
    },
    Resume {
        env: EnvName,
    },
    Freeze {
        env: EnvName,
        until: Option<DateTime<Utc>>,
        /// Empty when none was given.
        reason: String,
    },
    Unfreeze {
        env: EnvName,
    },
    Reject {
        target: RollbackTarget,
        /// Empty when none was given.
        reason: String,
    },
    Status,
    Help,
}

impl Command {
    pub fn kind(&self) -> CommandKind {
        match self {
            Self::Deploy { .. } => CommandKind::Deploy,
            Self::Rollback { .. } => CommandKind::Rollback,
            Self::Hold { .. } => CommandKind::Hold,
            Self::Resume { .. } => CommandKind::Resume,
            Self::Freeze { .. } => CommandKind::Freeze,
            Self::Unfreeze { .. } => CommandKind::Unfreeze,
            Self::Reject { .. } => CommandKind::Reject,
            Self::Status => CommandKind::Status,
            Self::Help => CommandKind::Help,
        }
    }

    pub fn spec(&self) -> &'static CommandSpec {
        self.kind().spec()
    }

    pub fn is_side_effecting(&self) -> bool {
        self.spec().side_effecting
    }

    /// The environment the command acts on, if any.
    pub fn env(&self) -> Option<&EnvName> {
        match self {
            Self::Deploy { env, .. }
            | Self::Rollback { env, .. }
            | Self::Hold { env }
            | Self::Resume { env }
            | Self::Freeze { env, .. }
            | Self::Unfreeze { env } => Some(env),
            Self::Reject { .. } | Self::Status | Self::Help => None,
        }
    }
}

/// The canonical command line, e.g. `/deploy staging 0123abc`; it parses back to `self`.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.spec().name)?;
        match self {
            Self::Deploy { env, app, sha, force } => {
                write!(f, " {env}")?;
                if let Some(app) = app {
                    write!(f, " {app}")?;
                }
                if let Some(sha) = sha {
                    write!(f, " {sha}")?;
                }
                if *force {
                    f.write_str(" --force")?;
                }
            }
            Self::Freeze { env, until, reason } => {
                write!(f, " {env}")?;
                if let Some(t) = until {
                    write!(f, " until {}", t.to_rfc3339_opts(SecondsFormat::Secs, true))?;
                }
                if !reason.is_empty() {
                    write!(f, " {reason}")?;
                }
            }
            Self::Rollback { env, target } => {
                write!(f, " {env}")?;
                if let Some(t) = target {
                    write!(f, " {t}")?;
                }
            }
            Self::Hold { env } | Self::Resume { env } | Self::Unfreeze { env } => write!(f, " {env}")?,
            Self::Reject { target, reason } => {
                write!(f, " {target}")?;
                if !reason.is_empty() {
                    write!(f, " {reason}")?;
                }
            }
            Self::Status | Self::Help => {}
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Outcome and errors

/// What a comment asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseOutcome {
    /// No line is meant for auger.
    NoCommand,
    /// Never empty: either exactly one side-effecting command, or one or more distinct
    /// read-only commands in the order written.
    Commands(Vec<Command>),
    /// Never empty, ordered by line. Nothing may run.
    Error(Vec<CommandError>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandErrorKind {
    /// A likely typo of a command.
    UnknownCommand { suggestion: CommandKind },
    /// Missing or extra arguments.
    Usage,
    /// An argument that is not a valid environment, sha or artifact id.
    InvalidArgument,
    /// More than one side-effecting command, or one mixed with read-only ones.
    Conflict,
}

/// A user mistake on one line, with a message meant to be shown to them as is (Markdown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandError {
    /// 1-based line number in the comment.
    pub line: usize,
    /// The offending line as written (trailing blanks removed, cut after 200 characters).
    pub text: String,
    pub kind: CommandErrorKind,
    pub message: String,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for CommandError {}

/// The reply to a comment whose commands were refused: every error, each with its line.
pub fn error_reply(errors: &[CommandError]) -> String {
    #[derive(Serialize)]
    struct Shown {
        line: usize,
        text: String,
        message: String,
    }
    // Capped so a pasted log full of bad lines still fits GitHub's comment size limit.
    const SHOWN: usize = 20;
    let shown: Vec<Shown> = errors
        .iter()
        .take(SHOWN)
        .map(|e| Shown {
            line: e.line,
            text: code_span(&e.text),
            message: e.message.clone(),
        })
        .collect();
    let mut ctx = tera::Context::new();
    ctx.insert("errors", &shown);
    ctx.insert("more", &errors.len().saturating_sub(SHOWN));
    render_markdown("error", ERRORS_TEMPLATE, &ctx)
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// Reads every command in a PR comment. See the module docs for the rules.
pub fn parse_comment(body: &str) -> ParseOutcome {
    let mut found: Vec<(usize, &str, Command)> = Vec::new();
    let mut errors = Vec::new();
    for cand in scan::command_lines(body) {
        match parse_line(&cand.text) {
            Ok(None) => {}
            Ok(Some(cmd)) => found.push((cand.line_no, cand.raw, cmd)),
            Err((kind, message)) => errors.push(error(cand.line_no, cand.raw, kind, message)),
        }
    }

    // The first side-effecting command wins the comment; everything else is in conflict.
    if let Some((first_line, _, first)) = found.iter().find(|(_, _, c)| c.is_side_effecting()) {
        for (line, raw, cmd) in &found {
            if line == first_line {
                continue;
            }
            let message = if cmd.is_side_effecting() {
                format!(
                    "Only one command that changes something is allowed per comment, and line {first_line} already has `/{}`. Post each in its own comment.",
                    first.spec().name
                )
            } else {
                format!(
                    "`/{}` cannot share a comment with `/{}` (line {first_line}). Post it in its own comment.",
                    cmd.spec().name,
                    first.spec().name
                )
            };
            errors.push(error(*line, raw, CommandErrorKind::Conflict, message));
        }
    }

    if !errors.is_empty() {
        errors.sort_by_key(|e| e.line);
        return ParseOutcome::Error(errors);
    }
    let mut commands: Vec<Command> = Vec::new();
    for (_, _, cmd) in found {
        if !commands.contains(&cmd) {
            commands.push(cmd);
        }
    }
    if commands.is_empty() {
        ParseOutcome::NoCommand
    } else {
        ParseOutcome::Commands(commands)
    }
}

type LineError = (CommandErrorKind, String);

/// One candidate line (starting with `/`): a command, not for us (`None`), or a mistake.
fn parse_line(text: &str) -> Result<Option<Command>, LineError> {
    let Some(after) = text.strip_prefix('/') else {
        return Ok(None);
    };
    // `/ deploy` is not a command word.
    if after.is_empty() || after.starts_with(char::is_whitespace) {
        return Ok(None);
    }
    let mut tokens = after.split_whitespace();
    let Some(word) = tokens.next() else {
        return Ok(None);
    };
    let args: Vec<&str> = tokens.collect();
    let lower = word.to_lowercase();
    match COMMANDS.iter().find(|s| s.name == lower) {
        Some(spec) => parse_args(spec, &args).map(Some),
        None => match suggestion(&lower) {
            Some(spec) => Err((
                CommandErrorKind::UnknownCommand {
                    suggestion: spec.kind,
                },
                format!(
                    "{} is not a command. Did you mean `/{}`? Usage: `{}`",
                    code_span(&format!("/{}", shorten(word))),
                    spec.name,
                    spec.usage()
                ),
            )),
            None => Ok(None),
        },
    }
}

fn parse_args(spec: &'static CommandSpec, args: &[&str]) -> Result<Command, LineError> {
    let usage = || format!("Usage: `{}`", spec.usage());
    let name = spec.name;
    let takes_force = spec.args.iter().any(|a| a.kind == ArgKind::Force);
    let forced = args.iter().filter(|a| a.eq_ignore_ascii_case("--force")).count();
    if forced > 1 {
        return Err((
            CommandErrorKind::Usage,
            format!("`--force` is given twice. {}", usage()),
        ));
    }
    let force = forced == 1 && takes_force;
    let args: Vec<&str> = if takes_force {
        args.iter()
            .copied()
            .filter(|a| !a.eq_ignore_ascii_case("--force"))
            .collect()
    } else {
        args.to_vec()
    };
    let args = args.as_slice();
    if spec.kind == CommandKind::Freeze {
        return parse_freeze(spec, args);
    }
    if spec.kind == CommandKind::Reject {
        return parse_reject(spec, args);
    }
    let positional = spec.args.iter().filter(|a| a.kind != ArgKind::Force).count();
    if args.len() < spec.required_args() {
        let missing: Vec<String> = spec.args[args.len()..]
            .iter()
            .filter(|a| !a.optional)
            .map(|a| format!("`<{}>`", a.kind.placeholder()))
            .collect();
        return Err((
            CommandErrorKind::Usage,
            format!("`/{name}` is missing {}. {}", missing.join(" and "), usage()),
        ));
    }
    if args.len() > positional {
        let takes = match positional {
            0 => "takes no arguments".to_owned(),
            1 => "takes 1 argument".to_owned(),
            n => format!("takes at most {n} arguments"),
        };
        let extra = &args[positional..];
        let too_many = if extra.len() == 1 {
            "is one too many"
        } else {
            "are too many"
        };
        return Err((
            CommandErrorKind::Usage,
            format!(
                "`/{name}` {takes}, so {} {too_many}. {}",
                code_span(&shorten(&extra.join(" "))),
                usage()
            ),
        ));
    }

    let mut args = Args {
        spec,
        rest: args.iter(),
    };
    let cmd = match spec.kind {
        CommandKind::Deploy => {
            let env = args.env()?;
            // `<app>` and `<sha>` are both optional: one word is a sha when it looks like one.
            let (app, sha) = match args.rest.as_slice() {
                [word] if ShaPrefix::new(word).is_ok() => (None, args.optional(ShaPrefix::new)?),
                [_] => (args.optional(|a: &str| AppName::new(a))?, None),
                _ => (
                    args.optional(|a: &str| AppName::new(a))?,
                    args.optional(ShaPrefix::new)?,
                ),
            };
            Command::Deploy { env, app, sha, force }
        }
        CommandKind::Rollback => Command::Rollback {
            env: args.env()?,
            target: args.optional(str::parse)?,
        },
        CommandKind::Hold => Command::Hold { env: args.env()? },
        CommandKind::Resume => Command::Resume { env: args.env()? },
        CommandKind::Unfreeze => Command::Unfreeze { env: args.env()? },
        // Parsed by `parse_freeze` above; kept here so the match stays exhaustive.
        CommandKind::Freeze => return parse_freeze(spec, args.rest.as_slice()),
        CommandKind::Reject => return parse_reject(spec, args.rest.as_slice()),
        CommandKind::Status => Command::Status,
        CommandKind::Help => Command::Help,
    };
    Ok(cmd)
}

/// The longest reason kept; a longer one is cut with `…`.
const MAX_REASON: usize = 200;

/// `/freeze <env> [until <time>] [reason]`.
fn parse_freeze(spec: &'static CommandSpec, args: &[&str]) -> Result<Command, LineError> {
    let usage = || format!("Usage: `{}`", spec.usage());
    let Some((first, rest)) = args.split_first() else {
        return Err((
            CommandErrorKind::Usage,
            format!("`/{}` is missing `<env>`. {}", spec.name, usage()),
        ));
    };
    let env = Args {
        spec,
        rest: std::slice::from_ref(first).iter(),
    }
    .env()?;
    let (until, rest) = match rest.split_first() {
        Some((word, rest)) if word.eq_ignore_ascii_case("until") => {
            let Some((time, rest)) = rest.split_first() else {
                return Err((
                    CommandErrorKind::Usage,
                    format!("`until` needs a time. {}", usage()),
                ));
            };
            let at = parse_time(time).ok_or_else(|| {
                (
                    CommandErrorKind::InvalidArgument,
                    format!(
                        "{} is not a valid time: it {}. {}",
                        code_span(&shorten(time)),
                        "must be a UTC time such as `2026-12-07T08:00Z`, an RFC 3339 time or a date such as `2026-12-07`",
                        usage()
                    ),
                )
            })?;
            (Some(at), rest)
        }
        _ => (None, rest),
    };
    Ok(Command::Freeze {
        env,
        until,
        reason: reason_text(rest),
    })
}

/// `/reject <artifact or sha> [reason]`.
fn parse_reject(spec: &'static CommandSpec, args: &[&str]) -> Result<Command, LineError> {
    let Some((first, rest)) = args.split_first() else {
        return Err((
            CommandErrorKind::Usage,
            format!(
                "`/{}` is missing `<artifact or sha>`. Usage: `{}`",
                spec.name,
                spec.usage()
            ),
        ));
    };
    let mut one = Args {
        spec,
        rest: std::slice::from_ref(first).iter(),
    };
    let target = one
        .optional(str::parse)?
        .ok_or_else(|| (CommandErrorKind::Usage, format!("Usage: `{}`", spec.usage())))?;
    Ok(Command::Reject {
        target,
        reason: reason_text(rest),
    })
}

/// The free text at the end of a line, without backticks (reasons are quoted in code spans,
/// which one would end) and at most [`MAX_REASON`] characters.
fn reason_text(words: &[&str]) -> String {
    let reason = words.join(" ").replace('`', "'");
    if reason.chars().count() > MAX_REASON {
        reason.chars().take(MAX_REASON - 1).collect::<String>() + "…"
    } else {
        reason
    }
}

/// A time as `until` takes it: RFC 3339 (seconds may be left out), or a date meaning its
/// midnight in UTC.
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    // `2026-12-07T08:00Z`: add the seconds RFC 3339 wants.
    if s.len() > 16 && s.is_char_boundary(16) && s.as_bytes().get(13) == Some(&b':') {
        let with_seconds = format!("{}:00{}", &s[..16], &s[16..]);
        if let Ok(t) = DateTime::parse_from_rfc3339(&with_seconds) {
            return Some(t.with_timezone(&Utc));
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .filter(|_| s.len() == 10)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// Hands out a command's arguments in order; arity was already checked against the spec.
struct Args<'a> {
    spec: &'static CommandSpec,
    rest: std::slice::Iter<'a, &'a str>,
}

impl Args<'_> {
    fn env(&mut self) -> Result<EnvName, LineError> {
        let Some(arg) = self.rest.next() else {
            // Unreachable after the arity check, but a usage error is the right answer anyway.
            return Err((CommandErrorKind::Usage, format!("Usage: `{}`", self.spec.usage())));
        };
        EnvName::new(*arg).map_err(|e| {
            let lower = arg.to_lowercase();
            let hint = if lower != *arg && EnvName::new(lower.as_str()).is_ok() {
                format!(" Did you mean {}?", code_span(&lower))
            } else {
                String::new()
            };
            self.invalid(e, &hint)
        })
    }

    fn optional<T>(
        &mut self,
        parse: impl FnOnce(&str) -> Result<T, NameError>,
    ) -> Result<Option<T>, LineError> {
        self.rest
            .next()
            .map(|arg| parse(arg).map_err(|e| self.invalid(e, "")))
            .transpose()
    }

    fn invalid(&self, e: NameError, hint: &str) -> LineError {
        let NameError::Invalid { kind, value, rule } = e;
        (
            CommandErrorKind::InvalidArgument,
            format!(
                "{} is not a valid {kind}: it {rule}.{hint} Usage: `{}`",
                code_span(&shorten(&value)),
                self.spec.usage()
            ),
        )
    }
}

/// Other bots' commands that are near one of ours but never a typo of it (Prow's `/retest` is
/// two letters from `/reject`): a comment with one must not be refused.
const OTHER_BOTS: &[&str] = &["retest"];

/// The command `word` (lowercased, not a command) is most likely a typo of, if any.
fn suggestion(word: &str) -> Option<&'static CommandSpec> {
    if OTHER_BOTS.contains(&word) {
        return None;
    }
    let w: Vec<char> = word.chars().collect();
    COMMANDS
        .iter()
        .filter_map(|spec| {
            let name: Vec<char> = spec.name.chars().collect();
            let d = edit_distance(&w, &name)?;
            // Short words are only typos when most of them is right: `/he` is not `/help`.
            (d <= 2 && 2 * d <= w.len()).then_some((d, spec))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, spec)| spec)
}

/// Optimal string alignment distance (Levenshtein plus swapping two neighbours, so `depoly`
/// is 1 away from `deploy`), or `None` when it is surely more than 2.
fn edit_distance(a: &[char], b: &[char]) -> Option<usize> {
    if a.len().abs_diff(b.len()) > 2 {
        return None;
    }
    // rows[i][j]: distance between a[..i] and b[..j]; three rows suffice.
    let mut prev2: Vec<usize> = Vec::new();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(prev2[j - 2] + 1);
            }
            cur[j] = d;
        }
        prev2 = std::mem::replace(&mut prev, cur);
    }
    prev.last().copied()
}

fn error(line: usize, raw: &str, kind: CommandErrorKind, message: String) -> CommandError {
    CommandError {
        line,
        text: raw.trim_end().chars().take(200).collect(),
        kind,
        message,
    }
}

/// At most 60 characters of user text, so a pasted essay does not make a huge reply.
fn shorten(s: &str) -> String {
    if s.chars().count() <= 60 {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(59).collect();
        t.push('…');
        t
    }
}

/// `s` as a Markdown code span, so user text can neither format the reply nor @mention
/// anyone. The fence is one backtick longer than the longest run inside.
fn code_span(s: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in s.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    // Padding keeps a leading or trailing backtick from merging with the fence.
    if longest > 0 {
        format!("{fence} {s} {fence}")
    } else {
        format!("{fence}{s}{fence}")
    }
}

// ---------------------------------------------------------------------------------------------
// Help

/// The `/help` reply (Markdown, `templates/commands/help.md.tera`), generated from [`COMMANDS`].
pub fn help_text() -> String {
    #[derive(Serialize)]
    struct Row {
        usage: String,
        summary: &'static str,
    }
    #[derive(Serialize)]
    struct Arg {
        placeholder: &'static str,
        shown: String,
        description: &'static str,
    }
    // Each kind of argument once, in the order the table first uses it.
    let mut args: Vec<Arg> = Vec::new();
    for kind in COMMANDS.iter().flat_map(|c| c.args).map(|a| a.kind) {
        if !args.iter().any(|a| a.placeholder == kind.placeholder()) {
            args.push(Arg {
                placeholder: kind.placeholder(),
                shown: kind.shown(),
                description: kind.description(),
            });
        }
    }
    let names = |side_effecting: bool| -> String {
        let names: Vec<String> = COMMANDS
            .iter()
            .filter(|c| c.side_effecting == side_effecting)
            .map(|c| format!("`/{}`", c.name))
            .collect();
        match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
            _ => names.concat(),
        }
    };
    let rows: Vec<Row> = COMMANDS
        .iter()
        .map(|c| Row {
            usage: c.usage(),
            summary: c.summary,
        })
        .collect();
    let mut ctx = tera::Context::new();
    ctx.insert("commands", &rows);
    ctx.insert("args", &args);
    ctx.insert("changing", &names(true));
    ctx.insert("reading", &names(false));
    render_markdown("help", HELP_TEMPLATE, &ctx)
}

const HELP_TEMPLATE: &str = include_str!("../../templates/commands/help.md.tera");
const ERRORS_TEMPLATE: &str = include_str!("../../templates/commands/errors.md.tera");

#[cfg(test)]
mod tests;
