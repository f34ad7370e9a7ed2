//! The `protect` step.

use aws_sdk_ec2::error::ProvideErrorMetadata;
use responder_aws::Status;
use responder_tests::finding::{bitcoin_dns_event, finding};
use responder_tests::playbooks::{enforce_playbook, plan_with};
use responder_tests::read;

use crate::common::{assert_done, assert_not_failed, assert_status, default_fixture, respond};

// Note: moto 5.2.5 ignores `ModifyInstanceAttribute(InstanceInitiatedShutdownBehavior=
// {Value})` (the structure form): it answers 200 and changes nothing (it even clears
// Instance.SecurityGroups). The `Attribute=instanceInitiatedShutdownBehavior,
// Value=stop` form works on moto and on AWS.
#[tokio::test]
async fn protect_enables_termination_protection_and_stop_on_shutdown() {
    let f = default_fixture().await;
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = plan_with(&enforce_playbook("  - protect: {}"), &fd);
    let report = respond(&f, &fd, &plan).await;
    assert_status(&report, Status::Succeeded);
    assert_done(&report, "protect");
    let ec2 = f.ec2();
    assert!(read::disable_api_termination(&ec2, &f.instance_id).await);
    assert_eq!(
        read::shutdown_behavior(&ec2, &f.instance_id)
            .await
            .as_deref(),
        Some("stop")
    );
    // The protection is real: a plain terminate is refused.
    let refused = ec2
        .terminate_instances()
        .instance_ids(&f.instance_id)
        .send()
        .await
        .expect_err("terminate should be refused");
    assert_eq!(refused.code(), Some("OperationNotPermitted"));

    let again = respond(&f, &fd, &plan).await;
    assert_not_failed(&again);
}
