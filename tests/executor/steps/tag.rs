//! The `tag` step.

use responder_aws::Status;
use responder_tests::finding::{bitcoin_dns_event, finding};
use responder_tests::playbooks::{enforce_playbook, plan_with};
use responder_tests::read;

use crate::common::{FINDING_ID_TAG, assert_not_failed, assert_status, default_fixture, respond};

#[tokio::test]
async fn tag_sets_the_playbook_tags_and_the_marker_tags() {
    let f = default_fixture().await;
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = plan_with(
        &enforce_playbook(
            "  - tag:\n      tags:\n        incident-response:status: contained\n        case: \"{finding.id}\"",
        ),
        &fd,
    );
    let report = respond(&f, &fd, &plan).await;
    assert_status(&report, Status::Succeeded);
    let tags = read::instance_tags(&f.ec2(), &f.instance_id).await;
    let get = |k: &str| tags.get(k).map(String::as_str);
    assert_eq!(
        get("incident-response:status"),
        Some("contained"),
        "{tags:?}"
    );
    assert_eq!(get("case"), Some(fd.id.as_str()), "{tags:?}");
    assert_eq!(get(FINDING_ID_TAG), Some(fd.id.as_str()), "{tags:?}");
    assert_eq!(
        get("guardduty-responder:finding-type"),
        Some("CryptoCurrency:EC2/BitcoinTool.B!DNS"),
        "{tags:?}"
    );
    assert_eq!(get("guardduty-responder:severity"), Some("8"), "{tags:?}");
    assert_eq!(
        get("guardduty-responder:playbook"),
        Some("test-playbook"),
        "{tags:?}"
    );
    assert_eq!(get("Name"), Some("web-1"), "existing tags stay: {tags:?}");

    let again = respond(&f, &fd, &plan).await;
    assert_not_failed(&again);
}
