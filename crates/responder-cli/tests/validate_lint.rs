//! `responder validate` knows the finding-type catalogue and GuardDuty's filter
//! attributes: what matches nothing is a located warning with a did-you-mean, and
//! `--strict` makes warnings fail.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn validate(dir: &Path, strict: bool) -> (Option<i32>, String) {
    let mut cmd = Command::cargo_bin("responder").unwrap();
    cmd.current_dir(root())
        .args(["validate", "--playbooks"])
        .arg(dir);
    if strict {
        cmd.arg("--strict");
    }
    let out = cmd.output().unwrap();
    (out.status.code(), String::from_utf8(out.stdout).unwrap())
}

const TYPOS: &str = "\
name: typos
match:
  finding_types:
    - 'UnauthorizedAcess:EC2/SSHBruteForce'
    - 'Cryptocurrency:EC2/*'
    - 'CryptoCurrency:Runtime/*'
  resource_types: [Instance]
  fields:
    service.action.networkConnectionAction.remotePortDetails.prot: {eq: 22}
exclude:
  - fields:
      resource.instanceDetails.tags.kye: {eq: exempt}
steps:
  - notify: {}
";

#[test]
fn typos_are_located_warnings_with_a_did_you_mean() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("typos.yaml"), TYPOS).unwrap();
    let (code, text) = validate(dir.path(), false);
    assert_eq!(code, Some(0), "{text}");
    for line in [
        "typos.yaml:4:7: warning: match.finding_types[0]: \"UnauthorizedAcess:EC2/SSHBruteForce\" is not a finding type in the catalogue (types are matched case-sensitively): did you mean \"UnauthorizedAccess:EC2/SSHBruteForce\"?\n",
        "typos.yaml:5:7: warning: match.finding_types[1]: \"Cryptocurrency:EC2/*\" matches no finding type in the catalogue (types are matched case-sensitively): did you mean \"CryptoCurrency:EC2/*\"?\n",
        "typos.yaml:9:5: warning: match.fields.service.action.networkConnectionAction.remotePortDetails.prot: \"service.action.networkConnectionAction.remotePortDetails.prot\" is not a GuardDuty filter attribute: did you mean \"service.action.networkConnectionAction.remotePortDetails.port\"?",
        "typos.yaml:12:7: warning: exclude[0].fields.resource.instanceDetails.tags.kye: \"resource.instanceDetails.tags.kye\" is not a GuardDuty filter attribute: did you mean \"resource.instanceDetails.tags.key\"?",
    ] {
        assert!(text.contains(line), "{line}\n---\n{text}");
    }
    // The catalogued pattern is not flagged.
    assert!(!text.contains("finding_types[2]"), "{text}");
    assert!(
        text.contains("1 playbook(s) valid, 4 warning(s)\n"),
        "{text}"
    );

    let (code, text) = validate(dir.path(), true);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("1 playbook(s) valid, 4 warning(s) (--strict: warnings fail)\n"),
        "{text}"
    );
}

#[test]
fn the_shipped_playbooks_pass_strict_validation() {
    let (code, text) = validate(&root().join("playbooks"), true);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains(", 0 warning(s)\n"), "{text}");
}

#[test]
fn strict_fails_on_any_warning_and_errors_still_fail() {
    let dir = tempfile::tempdir().unwrap();
    // terminate without a snapshot: a warning of its own, not a lint.
    std::fs::write(
        dir.path().join("w.yaml"),
        "name: w\nmatch:\n  finding_types: 'CryptoCurrency:EC2/*'\n  resource_types: Instance\nsteps:\n  - isolate: {}\n  - terminate: {}\n",
    )
    .unwrap();
    assert_eq!(validate(dir.path(), false).0, Some(0));
    assert_eq!(validate(dir.path(), true).0, Some(1));
    std::fs::write(
        dir.path().join("w.yaml"),
        "name: w\nmatch:\n  finding_types: 'CryptoCurrency:EC2/*'\nsteps:\n  - isolate: {quarantine_grp: x}\n",
    )
    .unwrap();
    assert_eq!(validate(dir.path(), false).0, Some(1));
}
