//! The `isolate` step.

use responder_aws::{ExecOptions, Executor, Outcome, Status};
use responder_tests::finding::{bitcoin_dns_event, finding, without_eni};
use responder_tests::playbooks::{enforce_playbook, plan_with};
use responder_tests::{Fixture, FixtureOptions, read};

use crate::common::{
    assert_already_done, assert_done, assert_isolated, assert_status, default_fixture, outcome,
    pretty, recorded_groups, respond,
};

#[tokio::test]
async fn isolate_puts_every_eni_in_one_empty_quarantine_group_and_records_the_groups() {
    let f = default_fixture().await;
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = plan_with(&enforce_playbook("  - isolate: {}"), &fd);

    let report = respond(&f, &fd, &plan).await;
    assert_status(&report, Status::Succeeded);
    assert_done(&report, "isolate");
    assert!(
        report.round_trips_to_isolation.is_some(),
        "{}",
        pretty(&report)
    );
    assert!(report.ms_to_isolation.is_some());

    let q = assert_isolated(&f).await;
    let live = read::eni_groups(&f.ec2(), &f.instance_id).await;
    assert_eq!(live.len(), 2, "both ENIs still attached: {live:?}");
    let recorded = recorded_groups(&f).await;
    assert!(recorded.contains(&f.group_a), "{recorded}");
    assert!(recorded.contains(&f.group_b), "{recorded}");
    assert!(!recorded.contains(&q), "{recorded}");
    assert_eq!(
        read::instance_state(&f.ec2(), &f.instance_id)
            .await
            .as_deref(),
        Some("running")
    );

    // A second delivery finds the work done: no second group, the record intact.
    let again = respond(&f, &fd, &plan).await;
    assert_status(&again, Status::Succeeded);
    assert_already_done(&again, "isolate");
    assert_eq!(assert_isolated(&f).await, q);
    let recorded_again = recorded_groups(&f).await;
    assert!(
        recorded_again.contains(&f.group_a) && recorded_again.contains(&f.group_b),
        "the record of the original groups was lost on the rerun: {recorded_again}"
    );
    assert!(
        !recorded_again.contains(&q),
        "the rerun recorded the quarantine group as original: {recorded_again}"
    );
}

#[tokio::test]
async fn isolate_covers_an_eni_the_finding_does_not_list() {
    let f = default_fixture().await;
    let event = without_eni(bitcoin_dns_event(&f), &f.enis[1]);
    let fd = finding(&event);
    assert_eq!(fd.instance.as_ref().unwrap().network_interfaces.len(), 1);
    let plan = plan_with(&enforce_playbook("  - isolate: {}"), &fd);

    let report = respond(&f, &fd, &plan).await;
    assert_status(&report, Status::Succeeded);
    assert_isolated(&f).await;
    let recorded = recorded_groups(&f).await;
    assert!(
        recorded.contains(&f.group_b),
        "the unlisted ENI's group is not recorded (release could not restore it): {recorded}"
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
