//! The `detach-from-asg` step.

use responder_aws::Status;
use responder_tests::finding::{bitcoin_dns_event, finding};
use responder_tests::playbooks::{enforce_playbook, plan_with};
use responder_tests::{Fixture, FixtureOptions, read};

use crate::common::{assert_done, assert_not_failed, assert_status, respond};

#[tokio::test]
async fn detach_from_asg_removes_the_instance_and_keeps_desired_capacity() {
    let f = Fixture::new(FixtureOptions {
        auto_scaling_group: true,
        ..FixtureOptions::default()
    })
    .await;
    let group = f.auto_scaling_group.clone().unwrap();
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = plan_with(&enforce_playbook("  - detach-from-asg: {}"), &fd);

    let report = respond(&f, &fd, &plan).await;
    assert_status(&report, Status::Succeeded);
    assert_done(&report, "detach-from-asg");

    let asg = f.autoscaling();
    let membership = asg
        .describe_auto_scaling_instances()
        .instance_ids(&f.instance_id)
        .send()
        .await
        .unwrap();
    assert!(
        membership.auto_scaling_instances().is_empty(),
        "still in a group: {:?}",
        membership.auto_scaling_instances()
    );
    let groups = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(&group)
        .send()
        .await
        .unwrap();
    let g = &groups.auto_scaling_groups()[0];
    assert_eq!(g.desired_capacity(), Some(1), "desired capacity unchanged");
    assert!(
        g.instances()
            .iter()
            .all(|i| i.instance_id() != Some(f.instance_id.as_str())),
        "{:?}",
        g.instances()
    );
    assert_eq!(
        read::instance_state(&f.ec2(), &f.instance_id)
            .await
            .as_deref(),
        Some("running"),
        "detaching keeps the instance running"
    );

    let again = respond(&f, &fd, &plan).await;
    assert_not_failed(&again);
}
