//! The `terminate` step.

use aws_sdk_ec2::types::AttributeBooleanValue;
use responder_aws::{Outcome, Status};
use responder_tests::finding::{bitcoin_dns_event, finding};
use responder_tests::playbooks::{enforce_playbook, plan_with};
use responder_tests::read;

use crate::common::{
    assert_done, assert_not_failed, assert_snapshot_set, assert_status, assert_terminated,
    default_fixture, pretty, respond, step,
};

#[tokio::test]
async fn terminate_terminates_the_instance() {
    let f = default_fixture().await;
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = plan_with(&enforce_playbook("  - terminate: {}"), &fd);

    let report = respond(&f, &fd, &plan).await;
    assert_status(&report, Status::Succeeded);
    assert_done(&report, "terminate");
    assert_terminated(&f).await;

    let again = respond(&f, &fd, &plan).await;
    assert_not_failed(&again);
    assert!(
        read::replacements(&f.ec2(), &f.instance_id)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn protect_then_terminate_lifting_protection_terminates() {
    let f = default_fixture().await;
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = plan_with(
        &enforce_playbook(
            "  - protect: {}\n  - terminate:\n      lift_termination_protection: true",
        ),
        &fd,
    );

    let report = respond(&f, &fd, &plan).await;
    assert_status(&report, Status::Succeeded);
    assert_done(&report, "protect");
    assert_done(&report, "terminate");
    assert_terminated(&f).await;
}

#[tokio::test]
async fn a_refused_terminate_fails_the_response_and_keeps_the_replacement_launched_first() {
    let f = default_fixture().await;
    // Termination protection set outside the playbook: the terminate (which does not
    // lift it) is refused with OperationNotPermitted.
    f.ec2()
        .modify_instance_attribute()
        .instance_id(&f.instance_id)
        .disable_api_termination(AttributeBooleanValue::builder().value(true).build())
        .send()
        .await
        .unwrap();
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = plan_with(
        &enforce_playbook(
            "  - snapshot: {}\n  - terminate: {}\n  - relaunch:\n      source: clone",
        ),
        &fd,
    );

    let report = respond(&f, &fd, &plan).await;
    assert_status(&report, Status::Failed);
    assert_done(&report, "snapshot");
    let t = step(&report, "terminate");
    match &t.outcome {
        Outcome::Failed { code, .. } => {
            assert_eq!(code, "OperationNotPermitted", "{}", pretty(&report))
        }
        other => panic!("terminate should fail, got {other:?}"),
    }
    // The replacement was launched before the terminate: the service keeps its
    // capacity, and the original stays isolated for the operator.
    assert_done(&report, "relaunch");
    assert_eq!(
        read::instance_state(&f.ec2(), &f.instance_id)
            .await
            .as_deref(),
        Some("running")
    );
    assert_eq!(read::replacements(&f.ec2(), &f.instance_id).await.len(), 1);
    assert_snapshot_set(&f, &fd).await;
}
