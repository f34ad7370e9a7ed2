//! The `relaunch` step.

use responder_aws::Status;
use responder_tests::finding::{bitcoin_dns_event, finding};
use responder_tests::playbooks::{enforce_playbook, plan_with};
use responder_tests::read::{self, ORIGINAL_GROUPS_TAG};

use crate::common::{
    FINDING_ID_TAG, assert_done, assert_not_failed, assert_one_hardened_replacement, assert_status,
    assert_terminated, default_fixture, respond,
};

#[tokio::test]
async fn relaunch_clone_launches_one_hardened_replacement_in_the_original_groups() {
    let f = default_fixture().await;
    let fd = finding(&bitcoin_dns_event(&f));
    // isolate first: the clone must take the original groups, not the quarantine one.
    let plan = plan_with(
        &enforce_playbook(
            "  - isolate: {}\n  - snapshot: {}\n  - terminate: {}\n  - relaunch:\n      source: clone",
        ),
        &fd,
    );

    let report = respond(&f, &fd, &plan).await;
    assert_status(&report, Status::Succeeded);
    assert_done(&report, "relaunch");
    assert_terminated(&f).await;
    let r = assert_one_hardened_replacement(&f).await;

    let ec2 = f.ec2();
    let replacement = read::instance(&ec2, &r).await.unwrap();
    assert_eq!(replacement.image_id(), Some(f.image_id.as_str()));
    assert_eq!(
        replacement.instance_type().map(|t| t.as_str()),
        Some(f.instance_type.as_str())
    );
    assert_eq!(
        read::profile_arn(&ec2, &r).await.as_deref(),
        Some(f.profile_arn.as_str()),
        "the clone keeps the instance profile"
    );
    let tags = read::instance_tags(&ec2, &r).await;
    assert_eq!(
        tags.get("Name").map(String::as_str),
        Some("web-1"),
        "{tags:?}"
    );
    assert_eq!(
        tags.get("env").map(String::as_str),
        Some("prod"),
        "{tags:?}"
    );
    assert_eq!(tags.get(FINDING_ID_TAG), Some(&fd.id), "{tags:?}");
    assert!(
        !tags.keys().any(|k| k.starts_with(ORIGINAL_GROUPS_TAG)),
        "the isolation record must not be copied to the replacement: {tags:?}"
    );

    // Redelivered: nothing new is launched.
    let again = respond(&f, &fd, &plan).await;
    assert_not_failed(&again);
    assert_eq!(
        read::replacements(&ec2, &f.instance_id).await,
        vec![r.clone()]
    );
    let live: Vec<String> = read::all_instances(&ec2)
        .await
        .into_iter()
        .filter(|(_, s)| s != "terminated")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(live, vec![r], "only the replacement runs");
}
