//! The `release` step.

use responder_aws::Outcome;
use responder_tests::finding::{bitcoin_dns_event, finding};
use responder_tests::playbooks::{enforce_playbook, plan_with};
use responder_tests::{Fixture, FixtureOptions, read};

use crate::common::{deliver, executor, outcome};

#[tokio::test]
async fn release_restores_the_original_groups_and_the_instance_profile() {
    let f = Fixture::new(FixtureOptions::default()).await;
    let ec2 = f.ec2();
    let before = read::eni_groups(&ec2, &f.instance_id).await;
    let fd = finding(&bitcoin_dns_event(&f));
    let exec = executor(&f).await;
    let contain = plan_with(
        &enforce_playbook("  - isolate: {}\n  - revoke-instance-profile: {}\n"),
        &fd,
    );
    let r = deliver(&exec, &fd, &contain).await;
    assert!(!r.is_failure(), "{r:#?}");
    assert_ne!(read::eni_groups(&ec2, &f.instance_id).await, before);
    assert_eq!(read::profile_arn(&ec2, &f.instance_id).await, None);

    let release = plan_with(&enforce_playbook("  - release: {}\n"), &fd);
    let r = deliver(&exec, &fd, &release).await;
    assert_eq!(*outcome(&r, "release"), Outcome::Done, "{r:#?}");
    assert_eq!(read::eni_groups(&ec2, &f.instance_id).await, before);
    assert_eq!(
        read::profile_arn(&ec2, &f.instance_id).await.as_deref(),
        Some(f.profile_arn.as_str())
    );
    // The instance has its recorded groups and profile: a second release has
    // nothing to do.
    let r = deliver(&exec, &fd, &release).await;
    assert!(
        matches!(outcome(&r, "release"), Outcome::AlreadyDone { .. }),
        "{r:#?}"
    );
}
