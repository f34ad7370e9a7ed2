//! Instances gone before the response.

use responder_aws::Status;
use responder_tests::finding::{bitcoin_dns_event, finding};
use responder_tests::playbooks::shipped_plan;
use responder_tests::read;
use serde_json::json;

use crate::common::{default_fixture, pretty, respond, world};

#[tokio::test]
async fn an_instance_terminated_before_the_response_gets_no_new_resources() {
    let f = default_fixture().await;
    f.ec2()
        .terminate_instances()
        .instance_ids(&f.instance_id)
        .send()
        .await
        .unwrap();
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = shipped_plan(&fd);
    let before = world(&f).await;

    let report = respond(&f, &fd, &plan).await;
    assert!(
        matches!(report.status, Status::InstanceGone | Status::Succeeded),
        "{}",
        pretty(&report)
    );
    let after = world(&f).await;
    assert!(
        after.snapshots.is_empty(),
        "snapshots: {:?}\n{}",
        after.snapshots,
        pretty(&report)
    );
    assert!(
        read::replacements(&f.ec2(), &f.instance_id)
            .await
            .is_empty(),
        "a replacement was launched for an instance terminated by someone else:\n{}",
        pretty(&report)
    );
    assert_eq!(after.instances, before.instances, "{}", pretty(&report));
    assert_eq!(after.quarantine_groups, 0, "{}", pretty(&report));
    assert_eq!(after.untrack_groups, 0, "{}", pretty(&report));
}

#[tokio::test]
async fn an_instance_unknown_to_ec2_ends_cleanly_with_no_new_resources() {
    let f = default_fixture().await;
    let mut event = bitcoin_dns_event(&f);
    let details = event
        .pointer_mut("/detail/resource/instanceDetails")
        .unwrap();
    details["instanceId"] = json!("i-0fedcba9876543210");
    for (n, eni) in details["networkInterfaces"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        eni["networkInterfaceId"] = json!(format!("eni-0fedcba987654321{n}"));
    }
    let fd = finding(&event);
    let plan = shipped_plan(&fd);
    let before = world(&f).await;

    let report = respond(&f, &fd, &plan).await;
    assert!(
        matches!(report.status, Status::InstanceGone | Status::Succeeded),
        "{}",
        pretty(&report)
    );
    assert_eq!(world(&f).await, before, "{}", pretty(&report));
}
