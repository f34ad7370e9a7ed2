//! The `deregister-from-target-groups` step.

use responder_aws::Status;
use responder_tests::finding::{bitcoin_dns_event, finding};
use responder_tests::playbooks::{enforce_playbook, plan_with};
use responder_tests::{Fixture, FixtureOptions};

use crate::common::{assert_done, assert_not_failed, assert_status, respond};

#[tokio::test]
async fn deregister_from_target_groups_removes_the_target() {
    let f = Fixture::new(FixtureOptions {
        target_group: true,
        ..FixtureOptions::default()
    })
    .await;
    let arn = f.target_group_arn.clone().unwrap();
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = plan_with(
        &enforce_playbook("  - deregister-from-target-groups: {}"),
        &fd,
    );

    let report = respond(&f, &fd, &plan).await;
    assert_status(&report, Status::Succeeded);
    assert_done(&report, "deregister-from-target-groups");
    let health = f
        .elbv2()
        .describe_target_health()
        .target_group_arn(&arn)
        .send()
        .await
        .unwrap();
    let targets: Vec<String> = health
        .target_health_descriptions()
        .iter()
        .filter_map(|t| t.target().and_then(|t| t.id()).map(str::to_owned))
        .collect();
    assert!(
        !targets.contains(&f.instance_id),
        "still registered: {targets:?}"
    );

    // moto answers InvalidTarget to a second deregistration: still not a failure.
    let again = respond(&f, &fd, &plan).await;
    assert_not_failed(&again);
}
