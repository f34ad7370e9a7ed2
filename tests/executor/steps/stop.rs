//! The `stop` step.

use responder_aws::Status;
use responder_tests::finding::{bitcoin_dns_event, finding};
use responder_tests::playbooks::{enforce_playbook, plan_with};
use responder_tests::read;

use crate::common::{assert_done, assert_not_failed, assert_status, default_fixture, respond};

#[tokio::test]
async fn stop_stops_the_instance() {
    let f = default_fixture().await;
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = plan_with(&enforce_playbook("  - stop: {}"), &fd);

    let report = respond(&f, &fd, &plan).await;
    assert_status(&report, Status::Succeeded);
    assert_done(&report, "stop");
    let state = read::instance_state(&f.ec2(), &f.instance_id).await;
    assert!(
        matches!(state.as_deref(), Some("stopped" | "stopping")),
        "{state:?}"
    );

    let again = respond(&f, &fd, &plan).await;
    assert_not_failed(&again);
}
