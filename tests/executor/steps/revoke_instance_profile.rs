//! The `revoke-instance-profile` step.

use responder_aws::Status;
use responder_tests::finding::{bitcoin_dns_event, finding};
use responder_tests::playbooks::{enforce_playbook, plan_with};
use responder_tests::read;

use crate::common::{assert_done, assert_not_failed, assert_status, default_fixture, respond};

#[tokio::test]
async fn revoke_instance_profile_leaves_no_association() {
    let f = default_fixture().await;
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = plan_with(&enforce_playbook("  - revoke-instance-profile: {}"), &fd);

    let report = respond(&f, &fd, &plan).await;
    assert_status(&report, Status::Succeeded);
    assert_done(&report, "revoke-instance-profile");
    let ec2 = f.ec2();
    let state = read::profile_association_state(&ec2, &f.instance_id).await;
    assert!(
        state.is_none() || state.as_deref() == Some("disassociated"),
        "association left: {state:?}"
    );
    let inst = read::instance(&ec2, &f.instance_id).await.unwrap();
    assert!(
        inst.iam_instance_profile().is_none(),
        "{:?}",
        inst.iam_instance_profile()
    );

    let again = respond(&f, &fd, &plan).await;
    assert_not_failed(&again);
}
