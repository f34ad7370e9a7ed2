//! Issue 9, classes 5 and 6, on moto: the responder's groups are checked on every
//! use (a group that gained a rule, one someone else created under the same name, a
//! deleted one), an event listing hundreds of ENIs in hundreds of VPCs drives a
//! bounded fan-out, and concurrent first-time group creation races end in one
//! group.

use aws_sdk_ec2::types::{
    InstanceNetworkInterfaceSpecification, InstanceType, IpPermission, IpRange,
};
use futures::future::join_all;
use responder_aws::{ExecOptions, Executor, Outcome, Report, Response};
use responder_core::{Finding, Plan};
use responder_tests::fault::{Fault, FaultProxy};
use responder_tests::finding::{bitcoin_dns_event, finding};
use responder_tests::fixture::{describe_enis, describe_volumes};
use responder_tests::playbooks::{enforce_playbook, plan_with, shipped_plan};
use responder_tests::read::{self, QUARANTINE_GROUP};
use responder_tests::{Fixture, account, moto};
use serde_json::{Value, json};

use crate::common::{
    assert_isolated, default_fixture, deliver, executor, owner, pretty, quarantine_group, step,
};

/// The bound on concurrent EC2 calls of one response (the executor's `PARALLEL`).
const MAX_IN_FLIGHT: usize = 8;

/// The VPCs the prefetch looks at before the describe says where the instance is
/// (the isolate step's `PREFETCH_VPCS`).
const PREFETCH_VPCS: usize = 4;

/// An isolate-only plan for the fixture's instance.
fn isolate_plan(fd: &Finding) -> Plan {
    plan_with(&enforce_playbook("  - isolate: {}"), fd)
}

/// An executor whose EC2 (and other) clients go through `proxy`, with the
/// fixture's ledger.
async fn proxied_executor(f: &Fixture, proxy: &FaultProxy) -> Executor {
    let config = account::sdk_config(&proxy.endpoint).await;
    Executor::new(
        account::clients(&config, &f.account),
        ExecOptions::default(),
    )
    .with_ledger(f.ledger().await)
}

/// One delivery with round 1 prefetched first, as `Responder::answer` runs it.
async fn deliver_prefetched(e: &Executor, fd: &Finding, plan: &Plan) -> Report {
    let owner = owner();
    let prefetch = e.prefetch(plan).await;
    e.respond_with(
        fd,
        plan,
        Response {
            prefetch,
            owner: Some(&owner),
            ..Response::default()
        },
    )
    .await
}

/// A second instance (two ENIs, two volumes) in the fixture's subnet and groups,
/// as a fixture of its own (same account, VPC, groups; its own instance, ENIs,
/// volumes and tags), so that the finding helpers can describe it.
async fn second_instance(f: &Fixture) -> Fixture {
    let ec2 = f.ec2();
    let out = ec2
        .run_instances()
        .image_id(&f.image_id)
        .instance_type(InstanceType::from(f.instance_type.as_str()))
        .min_count(1)
        .max_count(1)
        .network_interfaces(
            InstanceNetworkInterfaceSpecification::builder()
                .device_index(0)
                .subnet_id(&f.subnet_id)
                .groups(&f.group_a)
                .build(),
        )
        .network_interfaces(
            InstanceNetworkInterfaceSpecification::builder()
                .device_index(1)
                .subnet_id(&f.subnet_id)
                .groups(&f.group_b)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let id = out.instances()[0].instance_id().unwrap().to_owned();
    let eni_details = describe_enis(&ec2, &id).await;
    let mut second = f.clone();
    second.enis = eni_details.iter().map(|e| e.id.clone()).collect();
    second.eni_details = eni_details;
    second.volumes = describe_volumes(&ec2, &id).await;
    second.tags = read::instance_tags(&ec2, &id).await;
    second.instance_id = id;
    second
}

/// The finding about `f` with a finding id of its own (the example id carries the
/// account only: two instances of one account would share it).
fn finding_about(f: &Fixture, suffix: &str) -> Finding {
    let mut event = bitcoin_dns_event(f);
    let id = event["detail"]["id"].as_str().unwrap().to_owned();
    let id = format!("{}{suffix}", &id[..id.len() - suffix.len()]);
    event["detail"]["id"] = json!(id);
    finding(&event)
}

/// Every ENI of `f` in `group` alone.
async fn assert_enis_in(f: &Fixture, group: &str) {
    let groups = read::groups_of_enis(&f.ec2(), &f.enis).await;
    assert_eq!(groups.len(), f.enis.len(), "{groups:?}");
    for (eni, g) in &groups {
        assert_eq!(g, &vec![group.to_owned()], "ENI {eni} of {}", f.instance_id);
    }
}

/// Class 6: one event listing 500 ENIs in 500 VPCs (none of them the instance's)
/// isolates the real instance with at most 8 EC2 requests in flight at once and a
/// few DescribeSecurityGroups calls, not one per listed VPC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_listed_vpcs_drive_a_bounded_fan_out() {
    let f = default_fixture().await;
    let mut event = bitcoin_dns_event(&f);
    let list = event
        .pointer_mut("/detail/resource/instanceDetails/networkInterfaces")
        .and_then(Value::as_array_mut)
        .unwrap();
    let template = list[0].clone();
    // Listed first and sorted before the real VPC: the prefetch's four VPCs are all
    // invented, so the real one is looked up after the describe.
    let mut invented: Vec<Value> = (1..=500u64)
        .map(|i| {
            let mut e = template.clone();
            e["networkInterfaceId"] = json!(format!("eni-{i:017x}"));
            e["vpcId"] = json!(format!("vpc-{i:017x}"));
            e["subnetId"] = json!(format!("subnet-{i:017x}"));
            e
        })
        .collect();
    invented.append(list);
    *list = invented;
    let fd = finding(&event);
    let plan = isolate_plan(&fd);

    let proxy = FaultProxy::start_random(&moto::endpoint(), Fault::rate(0.0)).await;
    let e = proxied_executor(&f, &proxy).await;
    let report = deliver_prefetched(&e, &fd, &plan).await;
    let actions = proxy.actions();
    eprintln!("{}\n{actions:#?}", pretty(&report));

    assert_eq!(
        step(&report, "isolate").outcome,
        Outcome::Done,
        "{}",
        pretty(&report)
    );
    assert_isolated(&f).await;
    let peak = proxy.peak_ec2_in_flight();
    assert!(
        (1..=MAX_IN_FLIGHT).contains(&peak),
        "{peak} EC2 requests in flight at once (bound {MAX_IN_FLIGHT}): {actions:#?}"
    );
    let lookups = proxy.calls("DescribeSecurityGroups");
    // The prefetch's four, the real VPC after the describe, and a re-read if a
    // concurrent creation raced: never anywhere near one per listed VPC.
    assert!(
        (1..=2 * PREFETCH_VPCS).contains(&lookups),
        "{lookups} DescribeSecurityGroups calls for 500 listed VPCs: {actions:#?}"
    );
    for (action, stats) in &actions {
        assert!(
            stats.calls <= 2 * PREFETCH_VPCS,
            "{action} called {} times for one instance with two ENIs",
            stats.calls
        );
    }
}

/// Class 6: ten concurrent deliveries of one finding in a fresh account (no
/// quarantine group yet) all race to create it. None fails with anything but
/// `InProgressElsewhere` (a claim held by another delivery: Lambda retries it),
/// in particular none with `InvalidGroup.Duplicate` or `InvalidPermission.NotFound`;
/// one quarantine group exists, with no rules. Twice, on two fresh fixtures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_time_group_creation_makes_one_group() {
    for _ in 0..2 {
        let f = default_fixture().await;
        let fd = finding(&bitcoin_dns_event(&f));
        let plan = shipped_plan(&fd);
        let e: Vec<Executor> = join_all((0..10).map(|_| executor(&f))).await;
        let reports = join_all(e.iter().map(|x| deliver_prefetched(x, &fd, &plan))).await;
        for r in &reports {
            for s in r.steps.iter().filter(|s| s.outcome.is_failure()) {
                assert!(
                    matches!(&s.outcome, Outcome::Failed { code, .. } if code == "InProgressElsewhere"),
                    "a delivery failed with something else than InProgressElsewhere:\n{}",
                    pretty(r)
                );
            }
        }
        let q = quarantine_group(&f).await;
        assert_enis_in(&f, &q).await;
        let untrack = read::groups_named(&f.ec2(), &f.vpc_id, read::UNTRACK_GROUP).await;
        assert!(
            untrack.len() <= 1,
            "{} untrack groups: {untrack:?}",
            untrack.len()
        );
    }
}

/// Class 5: a quarantine group that gained an allow-all ingress rule between two
/// responses of one executor (a warm container) is put right before the second
/// instance goes into it.
#[tokio::test]
async fn a_quarantine_group_that_gained_a_rule_is_emptied_on_the_next_use() {
    let f = default_fixture().await;
    let g = second_instance(&f).await;
    let e = executor(&f).await;
    let fd1 = finding_about(&f, "a1");
    let first = deliver(&e, &fd1, &isolate_plan(&fd1)).await;
    assert_eq!(
        step(&first, "isolate").outcome,
        Outcome::Done,
        "{}",
        pretty(&first)
    );
    let q = assert_isolated(&f).await;

    f.ec2()
        .authorize_security_group_ingress()
        .group_id(&q)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("-1")
                .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let opened = read::groups_named(&f.ec2(), &f.vpc_id, QUARANTINE_GROUP).await;
    assert!(
        !opened[0].ip_permissions().is_empty(),
        "the allow-all rule did not land: {opened:?}"
    );

    let fd2 = finding_about(&g, "b2");
    let second = deliver(&e, &fd2, &isolate_plan(&fd2)).await;
    assert_eq!(
        step(&second, "isolate").outcome,
        Outcome::Done,
        "{}",
        pretty(&second)
    );
    // One group, the same, with no rules; the second instance's ENIs in it.
    assert_eq!(quarantine_group(&f).await, q);
    assert_enis_in(&g, &q).await;
}

/// Class 5: a group named like the quarantine group but created by someone else
/// (no role tag) is never adopted: isolate fails with `ResponderGroupNotOwned` and
/// no ENI moves.
#[tokio::test]
async fn a_quarantine_group_created_by_someone_else_is_refused() {
    let f = default_fixture().await;
    let theirs = f
        .ec2()
        .create_security_group()
        .group_name(QUARANTINE_GROUP)
        .description("not the responder's")
        .vpc_id(&f.vpc_id)
        .send()
        .await
        .unwrap()
        .group_id()
        .unwrap()
        .to_owned();
    let fd = finding(&bitcoin_dns_event(&f));
    let report = deliver(&executor(&f).await, &fd, &isolate_plan(&fd)).await;
    assert!(report.is_failure(), "{}", pretty(&report));
    assert!(
        matches!(&step(&report, "isolate").outcome, Outcome::Failed { code, .. } if code == "ResponderGroupNotOwned"),
        "{}",
        pretty(&report)
    );
    assert_eq!(
        read::groups_of_enis(&f.ec2(), &f.enis).await,
        f.original_eni_groups(),
        "an ENI moved (their group is {theirs})"
    );
    let groups = read::groups_named(&f.ec2(), &f.vpc_id, QUARANTINE_GROUP).await;
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0].group_id(), Some(theirs.as_str()));
}

/// Class 5: a quarantine group deleted between two responses of one executor is
/// created again by the second (no cached id that no longer exists).
#[tokio::test]
async fn a_deleted_quarantine_group_is_recreated_by_the_next_response() {
    let f = default_fixture().await;
    let g = second_instance(&f).await;
    let e = executor(&f).await;
    let fd1 = finding_about(&f, "c3");
    let first = deliver(&e, &fd1, &isolate_plan(&fd1)).await;
    assert_eq!(
        step(&first, "isolate").outcome,
        Outcome::Done,
        "{}",
        pretty(&first)
    );
    let q = assert_isolated(&f).await;

    // Someone puts the first instance back and deletes the group.
    let ec2 = f.ec2();
    for (eni, groups) in f.original_eni_groups() {
        ec2.modify_network_interface_attribute()
            .network_interface_id(&eni)
            .set_groups(Some(groups))
            .send()
            .await
            .unwrap();
    }
    ec2.delete_security_group()
        .group_id(&q)
        .send()
        .await
        .unwrap();
    assert!(
        read::groups_named(&ec2, &f.vpc_id, QUARANTINE_GROUP)
            .await
            .is_empty()
    );

    let fd2 = finding_about(&g, "d4");
    let second = deliver(&e, &fd2, &isolate_plan(&fd2)).await;
    assert_eq!(
        step(&second, "isolate").outcome,
        Outcome::Done,
        "{}",
        pretty(&second)
    );
    let q2 = quarantine_group(&f).await;
    assert_ne!(q2, q, "the deleted group's id came back");
    assert_enis_in(&g, &q2).await;
}
