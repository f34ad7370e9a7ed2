//! The `snapshot` step.

use responder_aws::Status;
use responder_tests::finding::{bitcoin_dns_event, finding};
use responder_tests::playbooks::{enforce_playbook, plan_with};
use responder_tests::read;

use crate::common::{
    FINDING_ID_TAG, assert_already_done, assert_done, assert_snapshot_set, assert_status,
    default_fixture, respond,
};

#[tokio::test]
async fn snapshot_takes_one_tagged_snapshot_per_volume_once_and_preserves_volumes() {
    let f = default_fixture().await;
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = plan_with(&enforce_playbook("  - snapshot: {}"), &fd);

    let report = respond(&f, &fd, &plan).await;
    assert_status(&report, Status::Succeeded);
    assert_done(&report, "snapshot");

    assert_snapshot_set(&f, &fd).await;
    for s in read::snapshots_tagged(&f.ec2(), FINDING_ID_TAG, &fd.id).await {
        let tag = |k: &str| s.tags.get(&format!("guardduty-responder:{k}")).cloned();
        assert_eq!(
            tag("finding-type").as_deref(),
            Some(fd.finding_type.name.as_str()),
            "{s:?}"
        );
        assert_eq!(tag("severity").as_deref(), Some("8"), "{s:?}");
        assert_eq!(
            tag("instance-id").as_deref(),
            Some(f.instance_id.as_str()),
            "{s:?}"
        );
    }
    let dot = read::delete_on_termination(&f.ec2(), &f.instance_id).await;
    assert_eq!(dot.len(), 2, "{dot:?}");
    assert!(
        dot.values().all(|v| *v == Some(false)),
        "DeleteOnTermination must be false on every volume: {dot:?}"
    );

    let again = respond(&f, &fd, &plan).await;
    assert_status(&again, Status::Succeeded);
    assert_already_done(&again, "snapshot");
    assert_snapshot_set(&f, &fd).await;
}
