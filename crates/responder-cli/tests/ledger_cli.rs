//! `responder ledger create` and `responder history` without a ledger to reach: the
//! arguments, the exit codes and the messages. (Against moto they are exercised by
//! hand and, through the library, by `tests/ledger.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use assert_cmd::Command;

/// The binary with static test credentials, a region, no instance metadata lookups
/// and no LEDGER_TABLE from the caller's environment.
fn responder() -> Command {
    let mut cmd = Command::cargo_bin("responder").unwrap();
    cmd.env_remove("LEDGER_TABLE")
        .env_remove("AWS_PROFILE")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    cmd
}

/// An endpoint on 127.0.0.1 where nothing listens.
fn closed_endpoint() -> String {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_table_is_required_from_the_flag_or_the_environment() {
    let out = responder()
        .arg("history")
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(stderr(&out).contains("--table"), "{}", stderr(&out));
    // From LEDGER_TABLE: past argument parsing, refused on the finding id.
    let out = responder()
        .env("LEDGER_TABLE", "ledger")
        .args(["history", "--finding", "a#b", "--endpoint-url"])
        .arg(closed_endpoint())
        .assert()
        .code(1)
        .get_output()
        .clone();
    let err = stderr(&out);
    assert!(err.contains("cannot read the ledger table ledger"), "{err}");
    assert!(err.contains("finding_id"), "{err}");
}

#[test]
fn an_unreachable_ledger_is_exit_1_with_the_reason() {
    let endpoint = closed_endpoint();
    let out = responder()
        .args(["ledger", "create", "--table", "ledger", "--endpoint-url"])
        .arg(&endpoint)
        .assert()
        .code(1)
        .get_output()
        .clone();
    let err = stderr(&out);
    assert!(err.contains("cannot create ledger table ledger"), "{err}");
    assert!(err.contains("DescribeTable"), "{err}");
    assert!(out.stdout.is_empty());

    let out = responder()
        .args(["history", "--table", "ledger", "--instance", "i-0abc"])
        .args(["--format", "json", "--endpoint-url"])
        .arg(&endpoint)
        .assert()
        .code(1)
        .get_output()
        .clone();
    assert!(stderr(&out).contains("Query"), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "no partial JSON on stdout");
}
