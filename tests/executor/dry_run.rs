//! Dry runs change nothing.

use responder_aws::{ExecOptions, Executor, Outcome, Report, Status};
use responder_tests::finding::{bitcoin_dns_event, finding};
use responder_tests::playbooks::{dry_run_playbook, plan_with, shipped_plan};

use crate::common::{assert_status, default_fixture, pretty, respond, world};

fn assert_dry_run_outcomes(report: &Report) {
    assert!(report.dry_run, "{}", pretty(report));
    assert_status(report, Status::DryRunPassed);
    for s in &report.steps {
        match &s.outcome {
            Outcome::WouldSucceed => {}
            Outcome::Skipped { reason } if !reason.trim().is_empty() => {}
            other => panic!(
                "dry run: step {} is {other:?}, not would-succeed or skipped with a reason:\n{}",
                s.action,
                pretty(report)
            ),
        }
    }
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    let f = default_fixture().await;
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = shipped_plan(&fd);
    let before = world(&f).await;

    let exec = Executor::new(
        f.clients(),
        ExecOptions {
            dry_run: true,
            ..ExecOptions::default()
        },
    );
    let report = exec.respond(&fd, &plan).await;
    assert_dry_run_outcomes(&report);
    assert_eq!(world(&f).await, before, "the dry run changed moto's state");
    assert_eq!(before.quarantine_groups, 0);
    assert!(before.snapshots.is_empty());
}

#[tokio::test]
async fn a_dry_run_playbook_changes_nothing_even_with_an_enforcing_executor() {
    let f = default_fixture().await;
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = plan_with(
        &dry_run_playbook(
            "  - isolate: {}\n  - protect: {}\n  - revoke-instance-profile: {}\n  - snapshot: {}\n  - stop: {}",
        ),
        &fd,
    );
    let before = world(&f).await;
    let report = respond(&f, &fd, &plan).await;
    assert_dry_run_outcomes(&report);
    assert_eq!(
        world(&f).await,
        before,
        "a dry-run playbook changed moto's state"
    );
}
