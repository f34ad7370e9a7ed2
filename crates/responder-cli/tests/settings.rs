//! Issue 17: every deployment setting is judged by one reader. `responder run` is
//! given each declared setting's sample values (`responder_tests::settings`), as a
//! flag and as the environment variable that is the flag's default, and must accept
//! or refuse each as the table says; the function binary's start is held to the same
//! table in `functions/guardduty-responder/tests/settings.rs`. And the declarations
//! are the only place a setting is added: every one is on the commands it names (in
//! their `--help`), in the function's reader, and in `infra/template.yaml` or marked.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use responder_aws::deployment::{
    self, Command as Cmd, Flag, Reach, Reader, SETTINGS, Setting, Template,
};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The binary in a clean environment: static test credentials, a region, no
/// metadata lookups, no profile files, none of the settings' variables.
fn responder() -> Command {
    let mut cmd = Command::cargo_bin("responder").unwrap();
    for s in SETTINGS {
        if let Some(env) = s.env {
            cmd.env_remove(env);
        }
    }
    cmd.env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env("AWS_CONFIG_FILE", "/nonexistent/gdr-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/gdr-credentials",
        )
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .current_dir(root());
    cmd
}

/// The finding file every run is given: it does not exist, so a run whose settings
/// are accepted stops there, before any AWS call.
const MISSING: &str = "no-such-file.json";

/// `responder run` with the ledger table from the environment (enforcing needs it)
/// plus `args` and `env`: accepted when it reaches its finding file.
fn run(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let out: Output = responder()
        .env("LEDGER_TABLE", "gdr-ledger-base")
        .envs(env.iter().copied())
        .arg("run")
        .args(args)
        .arg(MISSING)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{args:?} {env:?}: {stderr}");
    let reached = stderr.contains(&format!("{MISSING}: cannot read"));
    if reached {
        assert_eq!(out.status.code(), Some(2), "{stderr}");
    } else {
        assert!(
            matches!(out.status.code(), Some(1 | 2)),
            "{args:?} {env:?}: {:?} {stderr}",
            out.status
        );
    }
    (reached, stderr)
}

/// (a): every setting `run` takes, every sample, as the flag and as the variable:
/// the verdict the table gives, and a refusal names the setting as it was given.
#[test]
fn run_judges_every_setting_as_the_table_says() {
    let mut checked = 0;
    for s in deployment::settings_of(Reader::Cli(Cmd::Run)) {
        let samples = responder_tests::settings::samples(s.name)
            .unwrap_or_else(|| panic!("no sample values for setting {}", s.name));
        for (value, accepted) in samples {
            // As the flag (a switch carries only its one value).
            let flag = s.long();
            let args: Vec<&str> = match s.form {
                Flag::Value { .. } => vec![&flag, &value],
                Flag::Switch { when_set } if when_set == value => vec![&flag],
                Flag::Switch { .. } => vec![],
            };
            if !args.is_empty() {
                let (reached, stderr) = run(&args, &[]);
                assert_eq!(reached, accepted, "{args:?}: {stderr}");
                if !accepted && s.name != "playbooks" && s.name != "quarantine_group" {
                    assert!(
                        stderr.contains(&format!("error: {flag}")),
                        "{args:?}: {stderr}"
                    );
                }
                checked += 1;
            }
            // As the variable the function reads.
            if let Some(env) = s.env {
                let (reached, stderr) = run(&[], &[(env, &value)]);
                assert_eq!(reached, accepted, "{env}={value}: {stderr}");
                if !accepted && s.name != "playbooks" && s.name != "quarantine_group" {
                    assert!(stderr.contains(env), "{env}={value}: {stderr}");
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 40, "{checked}");
}

/// The rules between settings: enforcing needs the ledger (no `--dry-run`, no
/// table: refused, as the function refuses RESPONDER_MODE=enforce without
/// LEDGER_TABLE); `MAX_DESTRUCTIVE_PER_HOUR=0`, which the function refuses at its
/// start, is refused by `responder run` from the flag and from the variable.
#[test]
fn enforcing_needs_a_ledger_and_a_zero_budget_is_refused() {
    let out = responder().args(["run", MISSING]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("needs --ledger-table"), "{stderr}");
    let (reached, stderr) = run(&["--max-destructive-per-hour", "0"], &[]);
    assert!(!reached);
    assert!(
        stderr.contains("error: --max-destructive-per-hour: must be a positive integer, not \"0\""),
        "{stderr}"
    );
    let (reached, stderr) = run(&["--dry-run"], &[("MAX_DESTRUCTIVE_PER_HOUR", "0")]);
    assert!(!reached);
    assert!(stderr.contains("MAX_DESTRUCTIVE_PER_HOUR"), "{stderr}");
    // A flag wins over its variable.
    let (reached, stderr) = run(
        &["--max-destructive-per-hour", "4"],
        &[("MAX_DESTRUCTIVE_PER_HOUR", "0")],
    );
    assert!(reached, "{stderr}");
}

/// The long flags a command's `--help` lists.
fn help_flags(command: &[&str]) -> BTreeSet<String> {
    let out = responder().args(command).arg("--help").output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
        .filter_map(|w| w.strip_prefix("--"))
        .map(|w| {
            w.chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
                .collect::<String>()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// The function's `Environment.Variables` in infra/template.yaml.
fn template_variables() -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join("infra/template.yaml")).unwrap();
    let template: Value = serde_saphyr::from_str(&text).unwrap();
    template["Resources"]["ResponderFunction"]["Properties"]["Environment"]["Variables"]
        .as_object()
        .expect("the function's environment variables")
        .keys()
        .cloned()
        .collect()
}

fn command_line(c: Cmd) -> &'static [&'static str] {
    match c {
        Cmd::Run => &["run"],
        Cmd::Plan => &["plan"],
        Cmd::Expire => &["expire"],
        Cmd::History => &["history"],
        Cmd::LedgerCreate => &["ledger", "create"],
        Cmd::Findings => &["findings"],
        Cmd::Filter => &["filter", "import"],
        Cmd::Archive => &["archive"],
    }
}

/// (b): a setting cannot exist on one side only. Each declared setting is on every
/// command it names (its flag and aliases in that command's `--help`); the function
/// reads it unless it is marked CLI-only, and then the SAM template sets it unless
/// marked absent there; `run` takes it unless it is marked function-only. Nothing
/// else is: no variable in the template that no setting declares, no flag on `run`
/// outside the declarations but its output options.
#[test]
fn every_setting_is_on_both_sides_or_marked() {
    let function_env: BTreeSet<&str> = deployment::function_env().collect();
    let template = template_variables();
    let all = [
        Cmd::Run,
        Cmd::Plan,
        Cmd::Expire,
        Cmd::History,
        Cmd::LedgerCreate,
        Cmd::Findings,
        Cmd::Filter,
        Cmd::Archive,
    ];
    let helps: Vec<(Cmd, BTreeSet<String>)> = all
        .iter()
        .map(|c| (*c, help_flags(command_line(*c))))
        .collect();
    for s in SETTINGS {
        check_one(s, &helps, &function_env, &template);
    }
    // The template sets no variable the function does not read (HOME_ACCOUNT_ID and
    // the rest are declared).
    for v in &template {
        assert!(
            function_env.contains(v.as_str()),
            "{v} is set by the template but declared nowhere"
        );
    }
    // `run` has no flag of its own but its output options.
    let declared: BTreeSet<String> = SETTINGS
        .iter()
        .filter(|s| s.commands.contains(&Cmd::Run))
        .flat_map(|s| std::iter::once(s.flag).chain(s.aliases.iter().copied()))
        .map(str::to_owned)
        .collect();
    let (_, run_help) = &helps[0];
    let own: Vec<&String> = run_help.difference(&declared).collect();
    assert_eq!(
        own,
        ["details", "format", "help"],
        "run flags outside the declarations"
    );
}

fn check_one(
    s: &Setting,
    helps: &[(Cmd, BTreeSet<String>)],
    function_env: &BTreeSet<&str>,
    template: &BTreeSet<String>,
) {
    for (c, help) in helps {
        for f in std::iter::once(s.flag).chain(s.aliases.iter().copied()) {
            assert_eq!(
                help.contains(f),
                s.commands.contains(c),
                "--{f} of {} on {c:?}: declared {:?}, help {help:?}",
                s.name,
                s.commands
            );
        }
    }
    let read_by_function = s.env.is_some_and(|e| function_env.contains(e));
    match s.reach {
        Reach::CliOnly(_) => assert!(!read_by_function, "{} is CLI-only", s.name),
        Reach::Both | Reach::FunctionOnly(_) => {
            assert!(read_by_function, "the function does not read {}", s.name);
            let env = s.env.unwrap();
            match s.template {
                Template::Variable => {
                    assert!(
                        template.contains(env),
                        "{env} is not in infra/template.yaml"
                    )
                }
                Template::Absent(why) => {
                    assert!(!template.contains(env), "{env} is marked absent: {why}")
                }
            }
        }
    }
    assert_eq!(
        s.commands.contains(&Cmd::Run),
        !matches!(s.reach, Reach::FunctionOnly(_)),
        "{}: on run unless function-only",
        s.name
    );
}
