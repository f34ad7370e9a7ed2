//! The reader and its checks (moved from the function's `config.rs`, which now reads
//! through [`DeploymentSettings::from_env`]).

use std::path::PathBuf;

use super::*;

fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |k| {
        pairs
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| (*v).to_owned())
    }
}

fn read(pairs: &[(&str, &str)]) -> Result<DeploymentSettings, SettingError> {
    DeploymentSettings::from_env(env(pairs))
}

/// The variable and value an error names.
fn invalid(e: SettingError) -> (String, String) {
    match e {
        SettingError::Invalid { name, value, .. } => (name, value),
        other => panic!("not an invalid value: {other}"),
    }
}

#[test]
fn dry_run_unless_enforce() {
    assert!(read(&[]).unwrap().dry_run);
    assert!(read(&[("RESPONDER_MODE", "dry-run")]).unwrap().dry_run);
    assert!(
        !read(&[("RESPONDER_MODE", "enforce"), ("LEDGER_TABLE", "t12")])
            .unwrap()
            .dry_run
    );
    assert!(read(&[("RESPONDER_MODE", "Enforce!")]).is_err());
    let c = read(&[
        ("PLAYBOOKS_DIR", "/x"),
        ("QUARANTINE_GROUP", "q"),
        ("SNS_TOPIC_ARN", " "),
    ])
    .unwrap();
    assert_eq!(c.playbooks_dir, Some(PathBuf::from("/x")));
    assert_eq!(read(&[]).unwrap().playbooks_dir, None);
    assert_eq!(c.quarantine_group.as_deref(), Some("q"));
    assert_eq!(c.topic_arn, None);
}

#[test]
fn verification_ledger_and_budget() {
    let c = read(&[]).unwrap();
    assert!(c.verify);
    assert_eq!(c.max_destructive_per_hour, 10);
    assert!(
        !c.warnings().is_empty(),
        "no ledger in dry-run is worth a warning"
    );
    let c = read(&[
        ("VERIFY_FINDINGS", "off"),
        ("DETECTOR_ID", "abc"),
        ("MAX_DESTRUCTIVE_PER_HOUR", "3"),
    ])
    .unwrap();
    assert!(!c.verify);
    assert!(
        c.warnings()
            .iter()
            .any(|w| w.contains("VERIFY_FINDINGS=off"))
    );
    assert_eq!(c.detector_id.as_deref(), Some("abc"));
    assert_eq!(c.max_destructive_per_hour, 3);
    assert_eq!(
        invalid(read(&[("VERIFY_FINDINGS", "no")]).unwrap_err()),
        ("VERIFY_FINDINGS".to_owned(), "no".to_owned())
    );
    for bad in ["0", "-1", "ten"] {
        assert_eq!(
            invalid(read(&[("MAX_DESTRUCTIVE_PER_HOUR", bad)]).unwrap_err()),
            ("MAX_DESTRUCTIVE_PER_HOUR".to_owned(), bad.to_owned())
        );
    }
    assert!(matches!(
        read(&[("RESPONDER_MODE", "enforce")]),
        Err(SettingError::LedgerRequired { .. })
    ));
}

#[test]
fn never_block_cidrs_are_checked() {
    let c = read(&[("NEVER_BLOCK_CIDRS", "198.51.100.0/24, 2001:db8::/32")]).unwrap();
    assert_eq!(c.never_block, ["198.51.100.0/24", "2001:db8::/32"]);
    assert!(read(&[]).unwrap().never_block.is_empty());
    let e = read(&[("NEVER_BLOCK_CIDRS", "198.51.100.0/24,10.0.0.1")]).unwrap_err();
    assert!(e.to_string().contains("NEVER_BLOCK_CIDRS"), "{e}");
}

#[test]
fn organization_settings() {
    let c = read(&[]).unwrap();
    assert_eq!(c.accounts.member_role, None);
    assert_eq!(c.accounts.allowed_accounts, None);
    assert!(c.accounts.regions.is_empty());
    assert_eq!(c.accounts.home_account, None);
    assert_eq!(c.max_destructive_per_hour_per_account, None);
    assert!(!c.own_account_only, "the function's default: every account");
    let c = read(&[
        ("MEMBER_ROLE_NAME", "Responder"),
        ("ALLOWED_ACCOUNTS", "111111111111,222222222222"),
        ("REGIONS", "eu-west-1"),
        ("HOME_ACCOUNT_ID", "999999999999"),
        ("MAX_DESTRUCTIVE_PER_HOUR_PER_ACCOUNT", "2"),
    ])
    .unwrap();
    assert_eq!(c.accounts.member_role.as_deref(), Some("Responder"));
    assert_eq!(c.accounts.allowed_accounts.map(|a| a.len()), Some(2));
    assert!(c.accounts.regions.contains("eu-west-1"));
    assert_eq!(c.accounts.home_account.as_deref(), Some("999999999999"));
    assert_eq!(c.max_destructive_per_hour_per_account, Some(2));
    for (k, v) in [
        ("ALLOWED_ACCOUNTS", "12345"),
        ("REGIONS", "Mars"),
        ("HOME_ACCOUNT_ID", "x"),
        ("MEMBER_ROLE_NAME", "a/b"),
        ("MAX_DESTRUCTIVE_PER_HOUR_PER_ACCOUNT", "0"),
    ] {
        assert!(read(&[(k, v)]).is_err(), "{k}={v}");
    }
}

/// The CLI's own-account default: `run` without --member-role, --allowed-accounts and
/// --regions acts only in the caller's account; any of them (flag or variable) lifts
/// it, and the function never has it.
#[test]
fn the_cli_acts_in_its_own_account_unless_told() {
    let cli = |pairs: &[(&str, Given)]| {
        DeploymentSettings::read(Reader::Cli(Command::Run), |s| {
            pairs
                .iter()
                .find(|(n, _)| *n == s.name)
                .map(|(_, g)| g.clone())
        })
    };
    let dry = ("mode", Given::flag("dry-run"));
    let own = cli(std::slice::from_ref(&dry)).unwrap();
    assert!(own.own_account_only);
    assert_eq!(
        own.account_settings().allowed_accounts,
        Some(Default::default())
    );
    for widening in ["member_role", "allowed_accounts", "regions"] {
        let value = match widening {
            "member_role" => "OrgResponder",
            "allowed_accounts" => "111111111111",
            _ => "eu-west-1",
        };
        for given in [Given::flag(value), Given::env(value)] {
            let s = cli(&[dry.clone(), (widening, given)]).unwrap();
            assert!(!s.own_account_only, "{widening}");
            assert_eq!(s.account_settings(), s.accounts);
        }
    }
    // Setting names agree with the declarations.
    for name in ["mode", "member_role", "allowed_accounts", "regions"] {
        assert!(SETTINGS.iter().any(|s| s.name == name), "{name}");
    }
}

/// The declarations are coherent: unique names, variables and flags; every default
/// passes its own check; a switch has a variable or a CLI default to fall back on;
/// a setting read by one side only says why.
#[test]
fn declarations_are_coherent() {
    let mut names = std::collections::BTreeSet::new();
    let mut flags = std::collections::BTreeSet::new();
    let mut envs = std::collections::BTreeSet::new();
    for s in SETTINGS {
        assert!(names.insert(s.name), "{} twice", s.name);
        for f in std::iter::once(s.flag).chain(s.aliases.iter().copied()) {
            assert!(flags.insert(f), "--{f} twice");
        }
        if let Some(e) = s.env {
            assert!(envs.insert(e), "{e} twice");
        }
        for d in [s.default, s.cli_default].into_iter().flatten() {
            let mut out = declared::empty(Reader::Function);
            assert_eq!((s.apply)(&mut out, d), Ok(()), "{}'s default {d:?}", s.name);
        }
        match s.reach {
            Reach::Both => {
                assert!(s.env.is_some(), "{} has no variable", s.name);
                assert!(s.commands.contains(&Command::Run), "{} not on run", s.name);
            }
            Reach::CliOnly(why) | Reach::FunctionOnly(why) => assert!(!why.is_empty()),
        }
        for c in s.required_by {
            assert!(s.commands.contains(c), "{} required by {c:?}", s.name);
        }
    }
}
