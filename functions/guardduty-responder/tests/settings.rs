//! Issue 17: the function binary's start judges every deployment setting as
//! `responder run` does: the same table of values (`responder_tests::settings`), the
//! same verdicts (ready, or an init error naming the variable). The CLI's half is
//! `crates/responder-cli/tests/settings.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use responder_aws::deployment::{self, Reader};
use responder_tests::runtime_api::{NotReady, RuntimeApi, function_command};

/// Starts the function with the ledger table and `env`, and waits for its verdict:
/// `Ok` when it asks for its first event, else the init error it reported.
async fn start(env: &[(&str, &str)]) -> Result<(), String> {
    let api = RuntimeApi::start().await.unwrap();
    // No AWS call is made at init: an endpoint where nothing listens will do.
    let mut cmd = function_command(&common::binary(), &api, "http://127.0.0.1:9", "dry-run");
    cmd.env("LEDGER_TABLE", "gdr-ledger-base");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("the function binary starts");
    let verdict = api.ready(&mut child, Duration::from_secs(30)).await;
    let _ = child.kill();
    let _ = child.wait();
    match verdict {
        Ok(()) => Ok(()),
        Err(NotReady::InitError(e)) => Err(e.to_string()),
        Err(other) => panic!("{env:?}: neither ready nor an init error: {other}"),
    }
}

/// (a): every variable the function reads, every sample value: the table's verdict,
/// and a refusal names the variable (or the setting's problem).
#[tokio::test]
async fn the_function_judges_every_setting_as_the_table_says() {
    let mut checked = 0;
    for s in deployment::settings_of(Reader::Function) {
        let env = s.env.unwrap();
        let samples = responder_tests::settings::samples(s.name)
            .unwrap_or_else(|| panic!("no sample values for setting {}", s.name));
        for (value, accepted) in samples {
            let verdict = start(&[(env, &value)]).await;
            assert_eq!(verdict.is_ok(), accepted, "{env}={value}: {verdict:?}");
            if let Err(e) = verdict
                && s.name != "playbooks"
            {
                assert!(
                    e.contains(env) || e.contains("quarantine group setting"),
                    "{env}={value}: {e}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 30, "{checked}");
}

/// The rules between settings, as `responder run` has them: enforce without a ledger
/// and a zero budget refuse the start.
#[tokio::test]
async fn enforce_needs_a_ledger_and_a_zero_budget_refuses_the_start() {
    let api = RuntimeApi::start().await.unwrap();
    let mut child = function_command(&common::binary(), &api, "http://127.0.0.1:9", "enforce")
        .spawn()
        .unwrap();
    let verdict = api.ready(&mut child, Duration::from_secs(30)).await;
    let _ = child.kill();
    let _ = child.wait();
    match verdict {
        Err(NotReady::InitError(e)) => {
            assert!(
                e.to_string()
                    .contains("RESPONDER_MODE=enforce needs LEDGER_TABLE"),
                "{e}"
            );
            assert_eq!(e["errorType"], "Runtime.InvalidConfiguration", "{e}");
        }
        other => panic!("{other:?}"),
    }
    let e = start(&[("MAX_DESTRUCTIVE_PER_HOUR", "0")])
        .await
        .unwrap_err();
    assert!(
        e.contains("MAX_DESTRUCTIVE_PER_HOUR: must be a positive integer, not \\\"0\\\""),
        "{e}"
    );
}
