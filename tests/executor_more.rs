//! More steps against moto: release, notify through SNS, and the opt-in network ACL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use responder_aws::{ExecOptions, Executor, Outcome, Report};
use responder_tests::finding::{bitcoin_dns_event, finding};
use responder_tests::playbooks::{enforce_playbook, plan_with};
use responder_tests::{Fixture, FixtureOptions, read};

fn outcome<'a>(r: &'a Report, action: &str) -> &'a Outcome {
    &r.steps
        .iter()
        .find(|s| s.action == action)
        .unwrap_or_else(|| panic!("no {action}: {r:#?}"))
        .outcome
}

#[tokio::test]
async fn release_restores_the_original_groups_and_the_instance_profile() {
    let f = Fixture::new(FixtureOptions::default()).await;
    let ec2 = f.ec2();
    let before = read::eni_groups(&ec2, &f.instance_id).await;
    let fd = finding(&bitcoin_dns_event(&f));
    let exec = Executor::new(f.clients(), ExecOptions::default());
    let contain = plan_with(
        &enforce_playbook("  - isolate: {}\n  - revoke-instance-profile: {}\n"),
        &fd,
    );
    let r = exec.respond(&fd, &contain).await;
    assert!(!r.is_failure(), "{r:#?}");
    assert_ne!(read::eni_groups(&ec2, &f.instance_id).await, before);
    assert_eq!(read::profile_arn(&ec2, &f.instance_id).await, None);

    let release = plan_with(&enforce_playbook("  - release: {}\n"), &fd);
    let r = exec.respond(&fd, &release).await;
    assert_eq!(*outcome(&r, "release"), Outcome::Done, "{r:#?}");
    assert_eq!(read::eni_groups(&ec2, &f.instance_id).await, before);
    assert_eq!(
        read::profile_arn(&ec2, &f.instance_id).await.as_deref(),
        Some(f.profile_arn.as_str())
    );
    // The records are gone, so a second release has nothing to do.
    let r = exec.respond(&fd, &release).await;
    assert!(
        matches!(outcome(&r, "release"), Outcome::AlreadyDone { .. }),
        "{r:#?}"
    );
}

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

#[tokio::test]
async fn the_opt_in_network_acl_denies_the_whole_subnet_and_says_so() {
    let f = Fixture::new(FixtureOptions::default()).await;
    let ec2 = f.ec2();
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = plan_with(&enforce_playbook("  - isolate: {network_acl: true}\n"), &fd);
    let r = Executor::new(f.clients(), ExecOptions::default())
        .respond(&fd, &plan)
        .await;
    assert_eq!(*outcome(&r, "isolate"), Outcome::Done, "{r:#?}");
    let notes = &r.steps[0].notes;
    assert!(
        notes
            .iter()
            .any(|n| n.contains("EVERY instance in subnet") && n.contains(&f.subnet_id)),
        "{notes:?}"
    );
    let acls = ec2
        .describe_network_acls()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("association.subnet-id")
                .values(&f.subnet_id)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let acl = &acls.network_acls()[0];
    assert!(
        acl.tags()
            .iter()
            .any(|t| t.key() == Some("guardduty-responder:role") && t.value() == Some("deny-all"))
    );
    assert!(
        acl.entries()
            .iter()
            .all(|e| e.rule_action().map(|a| a.as_str()) != Some("allow")),
        "{acl:?}"
    );
}

#[tokio::test]
async fn forensics_ingress_opens_only_the_asked_port() {
    let f = Fixture::new(FixtureOptions::default()).await;
    let ec2 = f.ec2();
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = plan_with(
        &enforce_playbook(
            "  - isolate:\n      cut_connections: false\n      forensics_ingress: {cidrs: ['203.0.113.0/24'], ports: [22]}\n",
        ),
        &fd,
    );
    let r = Executor::new(f.clients(), ExecOptions::default())
        .respond(&fd, &plan)
        .await;
    assert_eq!(*outcome(&r, "isolate"), Outcome::Done, "{r:#?}");
    let groups = read::groups_named(&ec2, &f.vpc_id, "guardduty-responder-quarantine").await;
    let q = &groups[0];
    assert!(q.ip_permissions_egress().is_empty(), "{q:?}");
    let ingress = q.ip_permissions();
    assert_eq!(ingress.len(), 1, "{q:?}");
    assert_eq!(ingress[0].ip_protocol(), Some("tcp"));
    assert_eq!(
        (ingress[0].from_port(), ingress[0].to_port()),
        (Some(22), Some(22))
    );
    let cidrs: Vec<&str> = ingress[0]
        .ip_ranges()
        .iter()
        .filter_map(|r| r.cidr_ip())
        .collect();
    assert_eq!(cidrs, ["203.0.113.0/24"]);
}
