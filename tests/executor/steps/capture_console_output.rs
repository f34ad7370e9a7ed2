//! The `capture-console-output` step.

use responder_aws::{Outcome, Status};
use responder_tests::finding::{bitcoin_dns_event, finding};
use responder_tests::playbooks::{enforce_playbook, plan_with};

use crate::common::{assert_status, default_fixture, pretty, respond, step};

#[tokio::test]
async fn capture_console_output_keeps_the_output_or_says_why_not() {
    let f = default_fixture().await;
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = plan_with(&enforce_playbook("  - capture-console-output: {}"), &fd);

    let report = respond(&f, &fd, &plan).await;
    assert_status(&report, Status::Succeeded);
    let s = step(&report, "capture-console-output");
    match &s.outcome {
        Outcome::Done => assert!(
            s.output.as_deref().is_some_and(|o| !o.is_empty()),
            "done without output:\n{}",
            pretty(&report)
        ),
        Outcome::Skipped { reason } => assert!(!reason.is_empty()),
        other => panic!("capture-console-output: {other:?}\n{}", pretty(&report)),
    }
}
