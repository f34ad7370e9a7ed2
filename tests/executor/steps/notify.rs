//! The `notify` step.

use responder_aws::{ExecOptions, Executor, Outcome};
use responder_tests::finding::{bitcoin_dns_event, finding};
use responder_tests::playbooks::{enforce_playbook, plan_with};
use responder_tests::{Fixture, FixtureOptions, read};

use crate::common::outcome;

#[tokio::test]
async fn notify_publishes_the_report_once() {
    let f = Fixture::new(FixtureOptions::default()).await;
    let sns = f.clients().sns;
    let topic = sns
        .create_topic()
        .name("guardduty-responder-reports")
        .send()
        .await
        .unwrap();
    let topic_arn = topic.topic_arn().unwrap().to_owned();
    let options = ExecOptions {
        dry_run: false,
        topic_arn: Some(topic_arn),
    };
    let fd = finding(&bitcoin_dns_event(&f));
    let exec = Executor::new(f.clients(), options.clone());
    let plan = plan_with(&enforce_playbook("  - tag: {}\n  - notify: {}\n"), &fd);
    let r = exec.respond(&fd, &plan).await;
    assert_eq!(*outcome(&r, "notify"), Outcome::Done, "{r:#?}");
    let message_id = &r
        .steps
        .iter()
        .find(|s| s.action == "notify")
        .unwrap()
        .resources;
    assert_eq!(message_id.len(), 1, "SNS returns a message id");
    let tags = read::instance_tags(&f.ec2(), &f.instance_id).await;
    assert_eq!(tags.get("guardduty-responder:notified"), Some(&fd.id));
    let again = Executor::new(f.clients(), options);
    let r2 = again.respond(&fd, &plan).await;
    assert!(
        matches!(outcome(&r2, "notify"), Outcome::AlreadyDone { .. }),
        "{r2:#?}"
    );
}
