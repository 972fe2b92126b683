use super::*;

const SHA40: &str = "0123456789abcdef0123456789abcdef01234567";

fn env(s: &str) -> EnvName {
    EnvName::new(s).unwrap()
}

fn sha(s: &str) -> ShaPrefix {
    ShaPrefix::new(s).unwrap()
}

fn cmds(body: &str) -> Vec<Command> {
    match parse_comment(body) {
        ParseOutcome::Commands(c) => c,
        other => panic!("expected commands from {body:?}, got {other:?}"),
    }
}

fn one(body: &str) -> Command {
    let c = cmds(body);
    assert_eq!(c.len(), 1, "{body:?} gave {c:?}");
    c.into_iter().next().unwrap()
}

fn errors(body: &str) -> Vec<CommandError> {
    match parse_comment(body) {
        ParseOutcome::Error(e) => e,
        other => panic!("expected errors from {body:?}, got {other:?}"),
    }
}

fn one_error(body: &str) -> CommandError {
    let e = errors(body);
    assert_eq!(e.len(), 1, "{body:?} gave {e:?}");
    e.into_iter().next().unwrap()
}

fn nothing(body: &str) {
    assert_eq!(parse_comment(body), ParseOutcome::NoCommand, "{body:?}");
}

fn deploy(e: &str, s: Option<&str>) -> Command {
    Command::Deploy {
        env: env(e),
        app: None,
        sha: s.map(sha),
        force: false,
    }
}

// --- each command -----------------------------------------------------------------------------

#[test]
fn deploy_with_env_only() {
    assert_eq!(one("/deploy staging"), deploy("staging", None));
}

#[test]
fn deploy_names_an_app_before_an_optional_sha() {
    let with = |app: &str, s: Option<&str>| Command::Deploy {
        env: env("staging"),
        app: Some(AppName::new(app).unwrap()),
        sha: s.map(sha),
        force: false,
    };
    assert_eq!(one("/deploy staging web"), with("web", None));
    assert_eq!(one("/deploy staging web 0123ABC"), with("web", Some("0123abc")));
    assert_eq!(
        one("/deploy staging --force api 0123abc").to_string(),
        "/deploy staging api 0123abc --force"
    );
    // One word of 7 to 40 hex digits is a sha; anything else that is a name is an app.
    assert_eq!(one("/deploy staging cafe123"), deploy("staging", Some("cafe123")));
    assert_eq!(one("/deploy staging cafe12"), with("cafe12", None));
    assert_eq!(
        one("/deploy staging cafe123 0123abc"),
        with("cafe123", Some("0123abc"))
    );
    let e = one_error("/deploy staging Web");
    assert_eq!(e.kind, CommandErrorKind::InvalidArgument);
    assert!(
        e.message.contains("`Web` is not a valid app name"),
        "{}",
        e.message
    );
    for line in ["/deploy staging web", "/deploy staging web 0123abc --force"] {
        assert_eq!(one(&one(line).to_string()), one(line), "{line} reads back");
    }
}

#[test]
fn deploy_with_short_sha_is_lowercased() {
    let c = one("/deploy staging 0123ABC");
    assert_eq!(c, deploy("staging", Some("0123abc")));
    let Command::Deploy { sha: Some(s), .. } = c else {
        unreachable!()
    };
    assert_eq!(s.as_str(), "0123abc");
    assert!(!s.is_full());
    assert_eq!(s.to_commit_sha(), None);
}

#[test]
fn deploy_with_full_sha_converts_to_commit_sha() {
    let Command::Deploy { sha: Some(s), .. } = one(&format!("/deploy prod {SHA40}")) else {
        panic!("not a deploy with sha")
    };
    assert!(s.is_full());
    let full = s.to_commit_sha().unwrap();
    assert_eq!(full.as_str(), SHA40);
    assert_eq!(CommitSha::try_from(&s).unwrap(), full);
    assert_eq!(ShaPrefix::from(&full), s);
    assert!(sha("0123456").matches(&full));
    assert!(!sha("1123456").matches(&full));
}

#[test]
fn rollback_without_target() {
    assert_eq!(
        one("/rollback prod"),
        Command::Rollback {
            env: env("prod"),
            target: None
        }
    );
}

#[test]
fn rollback_to_a_sha() {
    assert_eq!(
        one("/rollback prod abcdef1"),
        Command::Rollback {
            env: env("prod"),
            target: Some(RollbackTarget::Sha(sha("abcdef1")))
        }
    );
}

#[test]
fn rollback_to_an_artifact_id() {
    let c = one("/rollback prod frontend@0123456789AB");
    let expected = RollbackTarget::Artifact {
        app: AppName::new("frontend").unwrap(),
        sha: sha("0123456789ab"),
    };
    assert_eq!(
        c,
        Command::Rollback {
            env: env("prod"),
            target: Some(expected.clone())
        }
    );
    assert_eq!(expected.to_string(), "frontend@0123456789ab");
    assert_eq!(expected.sha().as_str(), "0123456789ab");
}

#[test]
fn rollback_with_bad_artifact_app_names_the_app_rule() {
    let e = one_error("/rollback prod Front@0123456789ab");
    assert_eq!(e.kind, CommandErrorKind::InvalidArgument);
    assert!(e.message.contains("`Front`"), "{}", e.message);
    assert!(e.message.contains("app name"), "{}", e.message);
}

#[test]
fn rollback_with_bad_target_explains_both_forms() {
    for bad in ["frontend@xyz", "frontend@", "v1.2.3", "abc"] {
        let e = one_error(&format!("/rollback prod {bad}"));
        assert_eq!(e.kind, CommandErrorKind::InvalidArgument, "{bad}");
        assert!(e.message.contains(&format!("`{bad}`")), "{}", e.message);
        assert!(e.message.contains("artifact id like"), "{}", e.message);
        let outside_code: String = e.message.split('`').step_by(2).collect();
        assert!(!outside_code.contains('<'), "{}", e.message);
        assert!(e.message.contains("/rollback <env> [<artifact or sha>]"));
    }
}

#[test]
fn hold_and_resume_take_an_env() {
    assert_eq!(one("/hold prod"), Command::Hold { env: env("prod") });
    assert_eq!(one("/resume prod"), Command::Resume { env: env("prod") });
}

#[test]
fn status_and_help() {
    assert_eq!(one("/status"), Command::Status);
    assert_eq!(one("/help"), Command::Help);
}

#[test]
fn read_only_commands_combine_in_order_and_dedupe() {
    assert_eq!(
        cmds("/help\n/status\n/help\n/status"),
        vec![Command::Help, Command::Status]
    );
}

#[test]
fn command_inside_prose_still_counts() {
    assert_eq!(
        one("Looks good to me.\n\n/deploy staging\n\nThanks!"),
        deploy("staging", None)
    );
}

#[test]
fn empty_and_plain_comments_have_no_command() {
    nothing("");
    nothing("LGTM");
    nothing("\n\n\r\n");
    nothing("please deploy /deploy staging"); // not at line start
}

// --- spelling and spacing -----------------------------------------------------------------------

#[test]
fn command_word_is_case_insensitive() {
    assert_eq!(one("/Deploy staging"), deploy("staging", None));
    assert_eq!(one("/STATUS"), Command::Status);
}

#[test]
fn crlf_trailing_whitespace_and_extra_spaces_work() {
    assert_eq!(
        one("hi\r\n/deploy   staging \t 0123abc  \r\nbye\r\n"),
        deploy("staging", Some("0123abc"))
    );
    assert_eq!(one("/status \t\r\n"), Command::Status);
}

#[test]
fn up_to_three_leading_spaces_are_allowed() {
    assert_eq!(one("   /hold prod"), Command::Hold { env: env("prod") });
}

#[test]
fn html_comment_on_the_command_line_is_not_an_argument() {
    assert_eq!(
        one("/deploy staging <!-- after review -->"),
        deploy("staging", None)
    );
}

// --- ignored contexts ---------------------------------------------------------------------------

#[test]
fn backtick_fence_is_ignored() {
    nothing("Run this:\n```\n/deploy prod\n```");
    nothing("```text\n/deploy prod\n```\n");
}

#[test]
fn tilde_fence_is_ignored() {
    nothing("~~~\n/deploy prod\n~~~");
}

#[test]
fn unclosed_fence_ignores_everything_after() {
    nothing("```\n/deploy prod\n/status");
}

#[test]
fn fence_closes_only_with_matching_fence() {
    nothing("````\n/deploy prod\n```\n/hold prod\n~~~~\n````");
    assert_eq!(one("````\n/deploy prod\n````\n/status"), Command::Status);
}

#[test]
fn indented_code_is_ignored() {
    nothing("example:\n\n    /deploy prod\n\t/deploy prod");
}

#[test]
fn inline_code_line_is_ignored() {
    nothing("`/deploy prod` is how you deploy");
    nothing("``/deploy prod``");
}

#[test]
fn block_quote_is_ignored() {
    nothing("> /deploy prod\n>/hold prod\n  > /status");
}

#[test]
fn quote_reply_then_own_command() {
    assert_eq!(
        one("> /deploy prod\n> please\n\n/deploy staging"),
        deploy("staging", None)
    );
}

#[test]
fn html_comment_single_line_is_ignored() {
    nothing("<!-- /deploy prod -->");
}

#[test]
fn html_comment_multi_line_is_ignored() {
    nothing("<!--\n/deploy prod\n/status\n-->");
    assert_eq!(one("<!--\n/deploy prod\n-->\n/help"), Command::Help);
    nothing("Template <!-- fill in:\n/deploy prod\n-->");
}

#[test]
fn details_block_is_ignored() {
    nothing("<details>\n<summary>How to deploy</summary>\n\n/deploy prod\n\n</details>");
    assert_eq!(
        one("<details>\n/deploy prod\n</details>\n/status"),
        Command::Status
    );
}

// --- not for us ---------------------------------------------------------------------------------

#[test]
fn unrelated_slash_words_are_ignored() {
    nothing("/cc @team\n/shrug\n/usr/bin/env bash\n/assign @me\n/lgtm\n/retest\n/");
    nothing("/ deploy prod");
    nothing("/he"); // too short to call a typo of /help
}

#[test]
fn unrelated_slash_words_do_not_block_a_command() {
    assert_eq!(one("/cc @team\n/deploy staging"), deploy("staging", None));
}

// --- typos --------------------------------------------------------------------------------------

#[test]
fn typos_suggest_the_command() {
    for (typo, cmd) in [
        ("/depoly staging", CommandKind::Deploy),
        ("/deplyo", CommandKind::Deploy),
        ("/Depoly staging", CommandKind::Deploy),
        ("/rolback prod", CommandKind::Rollback),
        ("/stauts", CommandKind::Status),
        ("/stat", CommandKind::Status),
        ("/hep", CommandKind::Help),
        ("/resum prod", CommandKind::Resume),
        ("/deploy: staging", CommandKind::Deploy),
    ] {
        let e = one_error(typo);
        assert_eq!(
            e.kind,
            CommandErrorKind::UnknownCommand { suggestion: cmd },
            "{typo}"
        );
        let name = cmd.spec().name;
        assert!(
            e.message.contains(&format!("Did you mean `/{name}`?")),
            "{}",
            e.message
        );
        assert!(e.message.contains(&cmd.spec().usage()), "{}", e.message);
    }
}

#[test]
fn typo_message_quotes_what_was_written() {
    let e = one_error("/depoly staging");
    assert_eq!(e.line, 1);
    assert_eq!(e.text, "/depoly staging");
    assert_eq!(
        e.message,
        "`/depoly` is not a command. Did you mean `/deploy`? Usage: `/deploy <env> [<app>] [<sha>] [--force]`"
    );
}

// --- argument errors ----------------------------------------------------------------------------

#[test]
fn uppercase_env_is_refused_with_a_hint() {
    let e = one_error("/deploy Prod");
    assert_eq!(e.kind, CommandErrorKind::InvalidArgument);
    assert!(
        e.message
            .starts_with("`Prod` is not a valid environment name: it must match")
    );
    assert!(e.message.contains("Did you mean `prod`?"), "{}", e.message);
    assert!(
        e.message
            .ends_with("Usage: `/deploy <env> [<app>] [<sha>] [--force]`"),
        "{}",
        e.message
    );
}

#[test]
fn path_like_env_is_refused() {
    let e = one_error("/deploy ../x");
    assert_eq!(e.kind, CommandErrorKind::InvalidArgument);
    assert!(e.message.contains("`../x`"), "{}", e.message);
    assert!(!e.message.contains("Did you mean"), "{}", e.message);
}

#[test]
fn bad_sha_is_refused() {
    for bad in ["xyz", "012345", "0123456g", &format!("{SHA40}0")] {
        let e = one_error(&format!("/deploy staging web {bad}"));
        assert_eq!(e.kind, CommandErrorKind::InvalidArgument, "{bad}");
        assert!(e.message.contains(&format!("`{bad}`")), "{}", e.message);
        assert!(e.message.contains("7 to 40 hex digits"), "{}", e.message);
    }
}

#[test]
fn missing_env_shows_usage() {
    for (line, usage) in [
        ("/deploy", "/deploy <env> [<app>] [<sha>] [--force]"),
        ("/rollback  ", "/rollback <env> [<artifact or sha>]"),
        ("/hold", "/hold <env>"),
        ("/resume", "/resume <env>"),
    ] {
        let e = one_error(line);
        assert_eq!(e.kind, CommandErrorKind::Usage);
        assert!(e.message.contains("is missing `<env>`"), "{}", e.message);
        assert!(e.message.ends_with(&format!("Usage: `{usage}`")), "{}", e.message);
    }
}

#[test]
fn too_many_arguments_show_usage() {
    let e = one_error("/deploy staging web 0123abc extra");
    assert_eq!(e.kind, CommandErrorKind::Usage);
    assert_eq!(
        e.message,
        "`/deploy` takes at most 3 arguments, so `extra` is one too many. Usage: `/deploy <env> [<app>] [<sha>] [--force]`"
    );
    let e = one_error("/hold prod now");
    assert!(e.message.starts_with("`/hold` takes 1 argument"), "{}", e.message);
    let e = one_error("/status please");
    assert!(
        e.message.starts_with("`/status` takes no arguments"),
        "{}",
        e.message
    );
    let e = one_error("/help me");
    assert_eq!(e.kind, CommandErrorKind::Usage);
}

#[test]
fn long_values_are_shortened_in_messages() {
    let long = "a".repeat(500);
    let e = one_error(&format!("/deploy {long}"));
    assert!(e.message.len() < 400, "{}", e.message);
    assert!(e.message.contains('…'));
    assert_eq!(e.text.chars().count(), 200);
}

// --- one side effect per comment ----------------------------------------------------------------

#[test]
fn two_side_effecting_commands_are_an_error() {
    let e = one_error("/deploy staging\n\n/hold prod");
    assert_eq!(e.kind, CommandErrorKind::Conflict);
    assert_eq!(e.line, 3);
    assert_eq!(e.text, "/hold prod");
    assert!(
        e.message.contains("line 1 already has `/deploy`"),
        "{}",
        e.message
    );
}

#[test]
fn the_same_side_effecting_command_twice_is_an_error() {
    let e = errors("/deploy staging\n/deploy staging\n/deploy staging");
    assert_eq!(e.iter().map(|e| e.line).collect::<Vec<_>>(), vec![2, 3]);
}

#[test]
fn side_effecting_and_read_only_do_not_mix() {
    let e = one_error("/status\n/deploy staging");
    assert_eq!(e.kind, CommandErrorKind::Conflict);
    assert_eq!(e.line, 1);
    assert!(
        e.message
            .contains("`/status` cannot share a comment with `/deploy` (line 2)"),
        "{}",
        e.message
    );
}

#[test]
fn any_error_means_nothing_runs_and_all_errors_are_listed() {
    let e = errors("/deploy staging\n/stauts\n/hold Prod");
    assert_eq!(e.iter().map(|e| e.line).collect::<Vec<_>>(), vec![2, 3]);
    let e = errors("/status\n/depoly x");
    assert_eq!(e.len(), 1);
}

#[test]
fn error_reply_quotes_lines_safely() {
    let e = errors("/depoly @everyone `x`\n/hold a b");
    insta::assert_snapshot!(error_reply(&e));
}

#[test]
fn a_code_span_around_backticks_uses_a_longer_fence() {
    assert_eq!(code_span("a``b"), "``` a``b ```");
}

#[test]
fn an_error_displays_as_its_line_and_message() {
    let e = errors("/depoly x");
    assert_eq!(e[0].to_string(), format!("line 1: {}", e[0].message));
}

#[test]
fn an_error_reply_lists_twenty_errors_then_counts_the_rest() {
    let many = errors(&"/hold\n".repeat(25));
    assert!(error_reply(&many).contains("\n- line 20, `/hold`: "));
    assert!(!error_reply(&many).contains("line 21,"));
    assert!(error_reply(&many).contains("\n- … and 5 more\n"));
}

// --- the table and the help text ----------------------------------------------------------------

/// Every kind, written as a match so adding a kind without a table row fails to compile here.
fn all_kinds() -> Vec<CommandKind> {
    let kinds = [
        CommandKind::Deploy,
        CommandKind::Rollback,
        CommandKind::Hold,
        CommandKind::Resume,
        CommandKind::Freeze,
        CommandKind::Unfreeze,
        CommandKind::Reject,
        CommandKind::Status,
        CommandKind::Help,
    ];
    for k in kinds {
        match k {
            CommandKind::Deploy
            | CommandKind::Rollback
            | CommandKind::Hold
            | CommandKind::Resume
            | CommandKind::Freeze
            | CommandKind::Unfreeze
            | CommandKind::Reject
            | CommandKind::Status
            | CommandKind::Help => {}
        }
    }
    kinds.to_vec()
}

#[test]
fn table_has_every_kind_once_and_sane_rows() {
    for k in all_kinds() {
        assert_eq!(COMMANDS.iter().filter(|s| s.kind == k).count(), 1, "{k:?}");
        assert_eq!(k.spec().kind, k);
        assert!(COMMANDS.contains(k.spec()));
    }
    assert_eq!(COMMANDS.len(), all_kinds().len());
    for s in COMMANDS {
        assert!(s.name.bytes().all(|b| b.is_ascii_lowercase()), "{}", s.name);
        // Optional arguments come last, so positions are unambiguous.
        let first_optional = s.args.iter().position(|a| a.optional).unwrap_or(s.args.len());
        assert!(s.args[first_optional..].iter().all(|a| a.optional), "{}", s.name);
        // Typo suggestions need every command word to be a typo of itself only.
        let w: Vec<char> = s.name.chars().collect();
        assert_eq!(suggestion(s.name).map(|t| t.kind), Some(s.kind));
        assert_eq!(edit_distance(&w, &w), Some(0));
    }
}

/// A valid example for each argument kind, as typed and as parsed back.
fn sample_arg(k: ArgKind) -> &'static str {
    match k {
        ArgKind::Env => "staging",
        ArgKind::App => "web",
        ArgKind::Sha => "0123abc",
        ArgKind::RollbackTarget => "frontend@0123456789ab",
        ArgKind::Force => "--force",
        ArgKind::Until => "until 2026-12-07T08:00:00Z",
        ArgKind::Reason => "release party",
    }
}

#[test]
fn every_row_parses_with_and_without_optional_args() {
    for spec in COMMANDS {
        for n in spec.required_args()..=spec.args.len() {
            let mut line = format!("/{}", spec.name);
            for a in &spec.args[..n] {
                line.push(' ');
                line.push_str(sample_arg(a.kind));
            }
            let c = one(&line);
            assert_eq!(c.kind(), spec.kind, "{line}");
            assert_eq!(c.is_side_effecting(), spec.side_effecting);
            assert_eq!(c.to_string(), line, "Display is the canonical line");
            assert_eq!(
                c.env().is_some(),
                spec.args.iter().any(|a| a.kind == ArgKind::Env)
            );
        }
    }
}

#[test]
fn help_text_lists_every_command_from_the_table() {
    let help = help_text();
    for spec in COMMANDS {
        let row = format!("| `{}` | {} |", spec.usage(), spec.summary);
        assert!(help.contains(&row), "missing {row}\n{help}");
        for a in spec.args {
            assert!(help.contains(&format!("- `{}`: ", a.kind.shown())));
        }
        assert!(help.contains(&format!("`/{}`", spec.name)));
    }
    assert!(
        help.contains("(`/deploy`, `/rollback`, `/hold`, `/resume`, `/freeze`, `/unfreeze` and `/reject`)"),
        "{help}"
    );
    assert!(help.contains("; `/status` and `/help` go in"), "{help}");
    // Placeholders outside code spans would be eaten as HTML tags by GitHub.
    let outside_code: String = help.split('`').step_by(2).collect();
    assert!(!outside_code.contains('<'), "{outside_code}");
}

#[test]
fn help_text_is_not_itself_a_command_source() {
    // Quoting the help text back must not trigger anything.
    let quoted: String = help_text().lines().map(|l| format!("> {l}\n")).collect();
    nothing(&quoted);
}

#[test]
fn usage_lines() {
    assert_eq!(DEPLOY.usage(), "/deploy <env> [<app>] [<sha>] [--force]");
    assert_eq!(FREEZE.usage(), "/freeze <env> [until <time>] [<reason>]");
    assert_eq!(ROLLBACK.usage(), "/rollback <env> [<artifact or sha>]");
    assert_eq!(HOLD.usage(), "/hold <env>");
    assert_eq!(STATUS.usage(), "/status");
}

#[test]
fn edit_distance_counts_swaps_as_one() {
    let d = |a: &str, b: &str| edit_distance(&a.chars().collect::<Vec<_>>(), &b.chars().collect::<Vec<_>>());
    assert_eq!(d("depoly", "deploy"), Some(1));
    assert_eq!(d("", "ab"), Some(2));
    assert_eq!(d("ab", ""), Some(2));
    assert_eq!(d("kitten", "sitting"), Some(3));
    assert_eq!(d("a", "deploy"), None);
}

#[test]
fn sha_prefix_rules() {
    assert!(ShaPrefix::new("012345").is_err());
    assert!(ShaPrefix::new(&SHA40.replace('0', "é")).is_err());
    assert_eq!("ABCDEF0".parse::<ShaPrefix>().unwrap().to_string(), "abcdef0");
    let e = ShaPrefix::new("xyz").unwrap_err().to_string();
    assert!(e.contains("\"xyz\"") && e.contains("7 to 40 hex"), "{e}");
}

// --- properties ---------------------------------------------------------------------------------

mod props {
    use super::*;
    use proptest::prelude::*;

    /// Lines that stress the scanner: markdown openers, command words, junk, unicode.
    fn nasty_line() -> impl Strategy<Value = String> {
        let prefix = prop_oneof![
            Just(""),
            Just("/"),
            Just("   /"),
            Just("    /"),
            Just("\t/"),
            Just("```"),
            Just("~~~~"),
            Just("- ```"),
            Just("<!--"),
            Just("-->"),
            Just("<details>"),
            Just("</details>"),
            Just("<div"),
            Just("> /"),
            Just("`"),
            Just("/é"),
        ];
        let word = prop_oneof![
            Just(String::new()),
            prop::sample::select(COMMANDS.iter().map(|c| c.name.to_owned()).collect::<Vec<_>>()),
            "[a-zA-Z]{1,8}",
            any::<String>(),
        ];
        let rest = prop_oneof![
            Just(String::new()),
            "[ \t]{0,3}[a-z0-9@./-]{0,45}",
            any::<String>()
        ];
        (prefix, word, rest).prop_map(|(p, w, r)| format!("{p}{w} {r}"))
    }

    fn any_case(word: &'static str) -> impl Strategy<Value = String> {
        prop::collection::vec(any::<bool>(), word.len()).prop_map(move |up| {
            word.chars()
                .zip(up)
                .map(|(c, u)| if u { c.to_ascii_uppercase() } else { c })
                .collect()
        })
    }

    const ENV_RE: &str = "[a-z0-9][a-z0-9-]{0,52}";
    const SHA_RE: &str = "[0-9a-fA-F]{7,40}";

    /// A valid command as typed (word, args) and what it must parse to.
    fn valid_command() -> impl Strategy<Value = (String, Vec<String>, Command)> {
        let e = || ENV_RE.prop_map(|s| env(&s));
        prop_oneof![
            (any_case("deploy"), e(), prop::option::of(SHA_RE)).prop_map(|(w, env, s)| {
                let mut args = vec![env.to_string()];
                args.extend(s.clone());
                let cmd = Command::Deploy {
                    env,
                    app: None,
                    sha: s.map(|s| sha(&s)),
                    force: false,
                };
                (w, args, cmd)
            }),
            (
                any_case("deploy"),
                e(),
                "[a-z0-9][a-z0-9-]{0,20}".prop_filter("not a sha", |a| ShaPrefix::new(a).is_err()),
                prop::option::of(SHA_RE)
            )
                .prop_map(|(w, env, app, s)| {
                    let mut args = vec![env.to_string(), app.clone()];
                    args.extend(s.clone());
                    let cmd = Command::Deploy {
                        env,
                        app: Some(AppName::new(app).unwrap()),
                        sha: s.map(|s| sha(&s)),
                        force: false,
                    };
                    (w, args, cmd)
                }),
            (any_case("deploy"), e(), prop::option::of(SHA_RE), 0..3usize).prop_map(|(w, env, s, at)| {
                let mut args = vec![env.to_string()];
                args.extend(s.clone());
                let at = at.min(args.len());
                args.insert(at.max(1), "--force".into());
                let cmd = Command::Deploy {
                    env,
                    app: None,
                    sha: s.map(|s| sha(&s)),
                    force: true,
                };
                (w, args, cmd)
            }),
            (
                any_case("freeze"),
                e(),
                prop::option::of(0i64..4_000_000_000),
                "[a-z]{1,8}( [a-z]{1,8}){0,3}"
            )
                .prop_map(|(w, env, t, reason)| {
                    let mut args = vec![env.to_string()];
                    let until = t.map(|t| chrono::DateTime::from_timestamp(t, 0).unwrap());
                    if let Some(u) = until {
                        args.push(format!(
                            "until {}",
                            u.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                        ));
                    }
                    // "until" alone as the first word of a reason would be read as the clause.
                    let reason = if reason.starts_with("until") {
                        String::new()
                    } else {
                        reason
                    };
                    if !reason.is_empty() {
                        args.push(reason.clone());
                    }
                    (w, args, Command::Freeze { env, until, reason })
                }),
            (any_case("reject"), SHA_RE, "[a-z]{1,8}( [a-z]{1,8}){0,3}").prop_map(|(w, s, reason)| {
                let args = vec![s.clone(), reason.clone()];
                (
                    w,
                    args,
                    Command::Reject {
                        target: RollbackTarget::Sha(sha(&s)),
                        reason,
                    },
                )
            }),
            (any_case("unfreeze"), e()).prop_map(|(w, env)| (
                w,
                vec![env.to_string()],
                Command::Unfreeze { env }
            )),
            (
                any_case("rollback"),
                e(),
                prop::option::of((prop::option::of(ENV_RE), SHA_RE))
            )
                .prop_map(|(w, env, t)| {
                    let mut args = vec![env.to_string()];
                    let target = t.map(|(app, s)| {
                        args.push(match &app {
                            Some(app) => format!("{app}@{s}"),
                            None => s.clone(),
                        });
                        match app {
                            Some(app) => RollbackTarget::Artifact {
                                app: AppName::new(app).unwrap(),
                                sha: sha(&s),
                            },
                            None => RollbackTarget::Sha(sha(&s)),
                        }
                    });
                    (w, args, Command::Rollback { env, target })
                }),
            (any_case("hold"), e()).prop_map(|(w, env)| (w, vec![env.to_string()], Command::Hold { env })),
            (any_case("resume"), e()).prop_map(|(w, env)| (
                w,
                vec![env.to_string()],
                Command::Resume { env }
            )),
            any_case("status").prop_map(|w| (w, vec![], Command::Status)),
            any_case("help").prop_map(|w| (w, vec![], Command::Help)),
        ]
    }

    proptest! {
        // Bodies of up to 10 long lines: fewer cases keep this one as fast as the others.
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn never_panics_on_markdownish_lines(
            lines in prop::collection::vec(nasty_line(), 0..10),
            crlf in any::<bool>(),
        ) {
            let body = lines.join(if crlf { "\r\n" } else { "\n" });
            if let ParseOutcome::Error(e) = parse_comment(&body) {
                // Every error points at a real line and explains itself.
                prop_assert!(!e.is_empty());
                for err in &e {
                    prop_assert!(err.line >= 1 && err.line <= body.lines().count());
                    prop_assert!(!err.message.is_empty());
                }
                let _ = error_reply(&e);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn never_panics_on_arbitrary_text(body in any::<String>()) {
            let _ = parse_comment(&body);
        }

        #[test]
        fn valid_command_lines_round_trip(
            (word, args, expected) in valid_command(),
            indent in " {0,3}",
            seps in prop::collection::vec("[ \t]{1,3}", 4),
            trailing in "[ \t]{0,3}",
            before in prop::collection::vec("[a-z][a-z .,!]{0,30}", 0..3),
            after in prop::collection::vec("[a-z][a-z .,!]{0,30}", 0..3),
            crlf in any::<bool>(),
        ) {
            let mut line = format!("{indent}/{word}");
            for (a, sep) in args.iter().zip(&seps) {
                line.push_str(sep);
                line.push_str(a);
            }
            line.push_str(&trailing);
            let nl = if crlf { "\r\n" } else { "\n" };
            let mut all = before.clone();
            all.push(line);
            all.extend(after);
            let body = all.join(nl);
            prop_assert_eq!(parse_comment(&body), ParseOutcome::Commands(vec![expected.clone()]));
            // The canonical form parses back too.
            prop_assert_eq!(parse_comment(&expected.to_string()), ParseOutcome::Commands(vec![expected]));
        }

        #[test]
        fn quoted_or_fenced_commands_never_run(
            (word, args, _) in valid_command(),
            fence in prop_oneof![Just("```"), Just("~~~"), Just("````")],
        ) {
            let line = format!("/{word} {}", args.join(" "));
            prop_assert_eq!(parse_comment(&format!("> {line}")), ParseOutcome::NoCommand);
            prop_assert_eq!(parse_comment(&format!("{fence}\n{line}\n{fence}")), ParseOutcome::NoCommand);
            prop_assert_eq!(parse_comment(&format!("<!--\n{line}\n-->")), ParseOutcome::NoCommand);
            prop_assert_eq!(parse_comment(&format!("    {line}")), ParseOutcome::NoCommand);
        }
    }
}

#[test]
fn line_right_after_a_quote_is_the_writers_own() {
    // CommonMark would render it as a lazy continuation of the quote, but a quote reply always
    // prefixes every quoted line with `>`, so an unprefixed `/` line was typed by the writer.
    assert_eq!(one("> can you deploy?\n/deploy staging"), deploy("staging", None));
}

#[test]
fn large_pathological_comments_parse() {
    // GitHub caps comments at 65,536 characters; none of these shapes may panic or crawl.
    let runs: String = (1..300).map(|n| format!("{} x ", "`".repeat(n))).collect();
    let bodies = [
        "/".repeat(65_536),
        "/deploy ".repeat(8_000),
        "/depoly x\n".repeat(6_000),
        "<details>\n".repeat(6_000),
        "<!--".repeat(16_000),
        format!("{runs}<!--\n/deploy prod"),
        "é/\n".repeat(20_000),
    ];
    for body in &bodies {
        if let ParseOutcome::Error(e) = parse_comment(body) {
            assert!(error_reply(&e).len() < 65_536);
        }
    }
    assert_eq!(parse_comment(&bodies[5]), ParseOutcome::NoCommand);
}

#[test]
fn error_reply_lists_each_error_between_a_heading_and_a_pointer_to_help() {
    let ParseOutcome::Error(errs) = parse_comment("/deploy\n/dploy staging") else {
        panic!("expected errors")
    };
    let reply = error_reply(&errs);
    // Snapshots compare without the final newline; the reply ends its last line.
    assert!(reply.ends_with(".\n"), "{reply}");
    insta::assert_snapshot!(reply);
}

/// The table, then the arguments, then the one-command rule.
#[test]
fn the_help_text() {
    let help = help_text();
    assert!(help.ends_with("are ignored.\n"), "{help}");
    insta::assert_snapshot!(help);
}

#[test]
fn deploy_takes_force_anywhere_after_the_word_once() {
    let forced = Command::Deploy {
        env: env("prod"),
        app: None,
        sha: Some(sha("0123abc")),
        force: true,
    };
    assert_eq!(one("/deploy prod 0123abc --force"), forced);
    assert_eq!(one("/deploy --force prod 0123abc"), forced);
    assert_eq!(one("/deploy prod --FORCE 0123abc"), forced);
    assert_eq!(forced.to_string(), "/deploy prod 0123abc --force");
    let e = one_error("/deploy prod --force --force");
    assert!(e.message.contains("`--force` is given twice"), "{}", e.message);
    // Only `/deploy` takes it.
    let e = one_error("/hold prod --force");
    assert!(e.message.contains("`--force` is one too many"), "{}", e.message);
}

#[test]
fn freeze_takes_an_optional_until_and_a_reason() {
    let at = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    assert_eq!(
        one("/freeze production until 2026-12-07T08:00Z big launch, hands off"),
        Command::Freeze {
            env: env("production"),
            until: Some(at("2026-12-07T08:00:00Z")),
            reason: "big launch, hands off".into(),
        }
    );
    assert_eq!(
        one("/freeze production until 2026-12-07T09:30:00+01:00"),
        Command::Freeze {
            env: env("production"),
            until: Some(at("2026-12-07T08:30:00Z")),
            reason: String::new(),
        }
    );
    assert_eq!(
        one("/freeze production until 2026-12-07"),
        Command::Freeze {
            env: env("production"),
            until: Some(at("2026-12-07T00:00:00Z")),
            reason: String::new(),
        }
    );
    assert_eq!(
        one("/freeze staging incident `INC-12` @oncall"),
        Command::Freeze {
            env: env("staging"),
            until: None,
            reason: "incident 'INC-12' @oncall".into(),
        }
    );
    assert_eq!(
        one("/unfreeze staging"),
        Command::Unfreeze { env: env("staging") }
    );
    for (line, want) in [
        ("/freeze", "missing `<env>`"),
        ("/freeze prod until", "`until` needs a time"),
        ("/freeze prod until monday", "is not a valid time"),
        ("/freeze prod until 2026-13-01", "is not a valid time"),
        ("/freeze Prod", "Did you mean `prod`?"),
        ("/unfreeze prod now", "one too many"),
    ] {
        let e = one_error(line);
        assert!(e.message.contains(want), "{line}: {}", e.message);
    }
}

#[test]
fn reject_takes_a_target_and_a_reason() {
    assert_eq!(
        one("/reject web@0123456789ab leaks memory under load"),
        Command::Reject {
            target: RollbackTarget::Artifact {
                app: AppName::new("web").unwrap(),
                sha: sha("0123456789ab"),
            },
            reason: "leaks memory under load".into(),
        }
    );
    assert_eq!(
        one("/reject 0123ABC"),
        Command::Reject {
            target: RollbackTarget::Sha(sha("0123abc")),
            reason: String::new(),
        }
    );
    assert_eq!(one("/reject 0123abc").env(), None);
    for (line, want) in [
        ("/reject", "missing `<artifact or sha>`"),
        ("/reject 0123", "is not a valid artifact id or commit sha"),
        ("/reject nope", "is not a valid artifact id or commit sha"),
    ] {
        let e = one_error(line);
        assert!(e.message.contains(want), "{line}: {}", e.message);
    }
}
