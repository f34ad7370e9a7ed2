//! Issue 9 ("Trust") through the real function binary: the event is only a claim,
//! GuardDuty's copy and live state decide, the responder's own state never comes from
//! tags anyone can write, sample findings and the blast-radius budget hold back the
//! steps that cannot be undone. Each test drives the binary through the local Runtime
//! API with moto as EC2, a ledger table of its own and a local GuardDuty findings
//! endpoint.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use aws_sdk_ec2::types::{
    InstanceType, IpPermission, IpRange, ResourceType, Tag, TagSpecification,
};
use common::{Deployment, report, step, steps, with_finding_id, world};
use responder_tests::finding::bitcoin_dns_event;
use responder_tests::fixture::describe_enis;
use responder_tests::guardduty::Operation;
use responder_tests::read;
use responder_tests::runtime_api::RuntimeApi;
use responder_tests::{Fixture, FixtureOptions, moto};
use serde_json::{Value, json};

use crate::common::DEFAULT_ACCOUNT;

const EXEMPT: &str = "guardduty-responder:exempt";

/// Launches an instance with one ENI in the fixture's subnet and group A.
async fn bystander(f: &Fixture, name: &str, exempt: bool) -> String {
    let mut tags = TagSpecification::builder()
        .resource_type(ResourceType::Instance)
        .tags(Tag::builder().key("Name").value(name).build());
    if exempt {
        tags = tags.tags(Tag::builder().key(EXEMPT).value("true").build());
    }
    f.ec2()
        .run_instances()
        .image_id(&f.image_id)
        .instance_type(InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .subnet_id(&f.subnet_id)
        .security_group_ids(&f.group_a)
        .tag_specifications(tags.build())
        .send()
        .await
        .unwrap()
        .instances()[0]
        .instance_id()
        .unwrap()
        .to_owned()
}

/// The event's `networkInterfaces` with `extra` ENIs appended (as the fixture's are
/// written: id, subnet, VPC, groups).
async fn list_enis_of(f: &Fixture, event: &mut Value, instances: &[String]) -> Vec<String> {
    let ec2 = f.ec2();
    let mut added = Vec::new();
    let list = event
        .pointer_mut("/detail/resource/instanceDetails/networkInterfaces")
        .and_then(Value::as_array_mut)
        .unwrap();
    for i in instances {
        for e in describe_enis(&ec2, i).await {
            list.push(json!({
                "networkInterfaceId": e.id,
                "privateIpAddress": e.private_ip,
                "subnetId": e.subnet_id,
                "vpcId": e.vpc_id,
                "securityGroups": e.groups.iter()
                    .map(|(id, name)| json!({"groupId": id, "groupName": name}))
                    .collect::<Vec<_>>(),
            }));
            added.push(e.id);
        }
    }
    added
}

/// Class 1: on a warm container (a first finding in the same VPC already answered, so
/// the quarantine group is known), an event (and GuardDuty's copy: verification
/// cannot help) listing the ENIs of three other instances, one of them exempt. Only
/// the finding instance's ENIs, which the live describe shows attached to it, end in
/// quarantine.
#[tokio::test]
async fn bystander_enis_listed_in_the_finding_keep_their_groups() {
    let f = Fixture::create(DEFAULT_ACCOUNT, FixtureOptions::default()).await;
    let ec2 = f.ec2();
    let others = vec![
        bystander(&f, "db-1", false).await,
        bystander(&f, "db-2", false).await,
        bystander(&f, "bastion", true).await,
    ];
    let mut event = with_finding_id(bitcoin_dns_event(&f), "c1a55e1b0000000000000000bbbbbbbb");
    let added = list_enis_of(&f, &mut event, &others).await;
    assert_eq!(added.len(), 3);
    let mut before = std::collections::BTreeMap::new();
    for i in &others {
        before.insert(i.clone(), read::eni_groups(&ec2, i).await);
    }
    let deployment = Deployment::new(&f, "class1").await;
    // GuardDuty's copy is the tampered one: the live describe must protect them.
    deployment.confirm(&event);

    // The warm-up: a finding about a fourth instance of the VPC.
    let warm = bystander(&f, "web-2", false).await;
    let mut warm_event = with_finding_id(bitcoin_dns_event(&f), "c1a55e1a0000000000000000aaaaaaaa");
    let details = &mut warm_event["detail"]["resource"]["instanceDetails"];
    details["instanceId"] = json!(warm);
    details["tags"] = json!([{"key": "Name", "value": "web-2"}]);
    details["networkInterfaces"] = json!([]);
    list_enis_of(&f, &mut warm_event, std::slice::from_ref(&warm)).await;
    deployment.confirm(&warm_event);

    let mut api = RuntimeApi::start().await.unwrap();
    let _function = deployment.start(&api, &moto::endpoint(), None, "enforce", &[]);
    let id = api.invoke(warm_event);
    let warm_report = report(&api, &id).await;
    assert_eq!(warm_report["status"], "succeeded", "{warm_report:#}");
    let id = api.invoke(event);
    let report = report(&api, &id).await;
    assert_eq!(report["status"], "succeeded", "{report:#}");
    assert_ne!(report["status"], "instance-gone");
    assert_eq!(step(&report, "isolate")["outcome"], "done", "{report:#}");

    let quarantine = read::groups_named(&ec2, &f.vpc_id, read::QUARANTINE_GROUP).await;
    assert_eq!(quarantine.len(), 1);
    let q = quarantine[0].group_id().unwrap().to_owned();
    for (eni, groups) in read::groups_of_enis(&ec2, &f.enis).await {
        assert_eq!(groups, vec![q.clone()], "{eni} of the finding's instance");
    }
    for i in &others {
        assert_eq!(
            read::eni_groups(&ec2, i).await,
            before[i],
            "{i}'s ENIs were moved"
        );
        assert_eq!(
            read::instance_state(&ec2, i).await.as_deref(),
            Some("running")
        );
    }
    // The isolate step touched none of them.
    let isolate = step(&report, "isolate").to_string();
    for eni in &added {
        assert!(!isolate.contains(eni.as_str()), "{eni} in {isolate}");
    }
}

/// Class 2: an invented finding id and an event whose account or instance differ
/// from GuardDuty's copy are answered "unverified", successfully, and nothing in moto
/// changes.
#[tokio::test]
async fn findings_guardduty_does_not_confirm_change_nothing() {
    let f = Fixture::create(DEFAULT_ACCOUNT, FixtureOptions::default()).await;
    let other = bystander(&f, "db-1", false).await;
    let deployment = Deployment::new(&f, "class2").await;
    let genuine = with_finding_id(bitcoin_dns_event(&f), "c1a55e2a0000000000000000aaaaaaaa");
    deployment.confirm(&genuine);
    let before = world(&f).await;

    // Never reported by GuardDuty.
    let invented = with_finding_id(bitcoin_dns_event(&f), "c1a55e2b0000000000000000deadbeef");
    // GuardDuty's copy is about another account.
    let mut other_account = genuine.clone();
    other_account["detail"]["accountId"] = json!("210987654321");
    other_account["account"] = json!("210987654321");
    // GuardDuty's copy is about the fixture instance, the event about another one.
    let mut other_instance = genuine.clone();
    other_instance["detail"]["resource"]["instanceDetails"]["instanceId"] = json!(other);

    let mut api = RuntimeApi::start().await.unwrap();
    let _function = deployment.start(&api, &moto::endpoint(), None, "enforce", &[]);
    for (what, event) in [
        ("invented id", invented),
        ("other account", other_account),
        ("other instance", other_instance),
    ] {
        let id = api.invoke(event);
        let report = report(&api, &id).await;
        assert_eq!(report["status"], "unverified", "{what}: {report:#}");
        assert!(
            report["steps"].as_array().is_none_or(Vec::is_empty),
            "{what}: {report:#}"
        );
        assert!(report["reason"].as_str().is_some(), "{what}: {report:#}");
    }
    assert!(deployment.guardduty.calls(Operation::GetFindings) >= 3);
    assert_eq!(
        world(&f).await,
        before,
        "an unverified finding changed moto"
    );
    assert!(
        deployment
            .ledger
            .history(None, Some(&f.instance_id))
            .await
            .unwrap()
            .is_empty()
    );
}

/// Class 2: the exempt tag is read from the live instance. Added after detection
/// (GuardDuty's copy and the event lack it), it makes the shipped playbooks' exclude
/// apply: no action.
#[tokio::test]
async fn an_exempt_tag_added_after_detection_is_obeyed() {
    let f = Fixture::create(DEFAULT_ACCOUNT, FixtureOptions::default()).await;
    let ec2 = f.ec2();
    let deployment = Deployment::new(&f, "class2-exempt").await;
    let event = with_finding_id(bitcoin_dns_event(&f), "c1a55e2c0000000000000000eeeeeeee");
    let tags = event["detail"]["resource"]["instanceDetails"]["tags"].to_string();
    assert!(!tags.contains(EXEMPT), "{tags}");
    deployment.confirm(&event);
    ec2.create_tags()
        .resources(&f.instance_id)
        .tags(Tag::builder().key(EXEMPT).value("true").build())
        .send()
        .await
        .unwrap();
    let before = world(&f).await;

    let mut api = RuntimeApi::start().await.unwrap();
    let _function = deployment.start(&api, &moto::endpoint(), None, "enforce", &[]);
    let id = api.invoke(event);
    let report = report(&api, &id).await;
    // The event alone matches crypto-mining-ec2 (the other tests answer it): only
    // the live tag, through the playbook's exclude, leaves no playbook.
    assert_eq!(report["status"], "no-action", "{report:#}");
    assert!(report.get("steps").is_none(), "{report:#}");
    assert_eq!(world(&f).await, before);
}

/// Class 3: the tags an attacker on the instance would pre-set (original groups
/// naming an all-open group, original profile naming an admin profile, `isolated`
/// for this finding) are not the responder's state: the replacement gets the
/// original groups and profile, and connections are still cut.
#[tokio::test]
async fn attacker_written_tags_are_not_state() {
    let f = Fixture::create(DEFAULT_ACCOUNT, FixtureOptions::default()).await;
    let ec2 = f.ec2();
    let open = ec2
        .create_security_group()
        .group_name("all-open")
        .description("attacker's")
        .vpc_id(&f.vpc_id)
        .send()
        .await
        .unwrap()
        .group_id()
        .unwrap()
        .to_owned();
    ec2.authorize_security_group_ingress()
        .group_id(&open)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("-1")
                .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let iam = f.iam();
    let admin = format!("admin-{}", f.vpc_id);
    let admin_arn = iam
        .create_instance_profile()
        .instance_profile_name(&admin)
        .send()
        .await
        .unwrap()
        .instance_profile()
        .unwrap()
        .arn()
        .to_owned();
    let finding_id = "c1a55e300000000000000000aaaabbbb";
    let mut attacker = ec2
        .create_tags()
        .resources(&f.instance_id)
        .tags(
            Tag::builder()
                .key("guardduty-responder:original-profile")
                .value(&admin_arn)
                .build(),
        )
        .tags(
            Tag::builder()
                .key("guardduty-responder:isolated")
                .value(finding_id)
                .build(),
        );
    for eni in &f.enis {
        attacker = attacker.tags(
            Tag::builder()
                .key(format!("guardduty-responder:original-groups:{eni}"))
                .value(&open)
                .build(),
        );
    }
    attacker.send().await.unwrap();
    // Written before detection: GuardDuty's copy and the event carry them too.
    let mut event = with_finding_id(bitcoin_dns_event(&f), finding_id);
    event["detail"]["resource"]["instanceDetails"]["tags"] = Value::Array(
        read::instance_tags(&ec2, &f.instance_id)
            .await
            .into_iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect(),
    );
    let deployment = Deployment::new(&f, "class3").await;
    deployment.confirm(&event);

    let mut api = RuntimeApi::start().await.unwrap();
    let _function = deployment.start(&api, &moto::endpoint(), None, "enforce", &[]);
    let id = api.invoke(event);
    let report = report(&api, &id).await;
    assert_eq!(report["status"], "succeeded", "{report:#}");
    let isolate = step(&report, "isolate");
    assert_eq!(isolate["outcome"], "done", "{report:#}");
    assert!(
        isolate["notes"]
            .as_array()
            .is_some_and(|notes| notes.iter().any(|n| n
                .as_str()
                .unwrap_or_default()
                .contains("tracked connections cut"))),
        "the pre-set isolated tag skipped connection cutting: {isolate:#}"
    );

    let replacements = read::replacements(&ec2, &f.instance_id).await;
    assert_eq!(replacements.len(), 1, "{report:#}");
    let replacement = &replacements[0];
    let groups: Vec<Vec<String>> = read::eni_groups(&ec2, replacement)
        .await
        .into_values()
        .collect();
    assert_eq!(
        groups,
        vec![vec![f.group_a.clone()]],
        "the replacement's groups"
    );
    let profile = read::profile_arn(&ec2, replacement).await;
    assert_eq!(profile.as_deref(), Some(f.profile_arn.as_str()));
    assert_ne!(profile.as_deref(), Some(admin_arn.as_str()));
    // Relaunch before terminate (class 4b).
    assert_eq!(
        steps(&report)
            .iter()
            .map(|(a, _)| a.as_str())
            .collect::<Vec<_>>(),
        ["isolate", "snapshot", "relaunch", "terminate", "notify"]
    );
    // The original ENIs were quarantined, not put in the open group.
    for (eni, groups) in read::groups_of_enis(&ec2, &f.enis).await {
        assert!(!groups.contains(&open), "{eni}: {groups:?}");
    }
}

/// A sample finding (GuardDuty `CreateSampleFindings`) reaches no destructive step
/// (isolate, relaunch, terminate; the snapshot is evidence, not destructive, and may
/// run): the instance keeps its groups and keeps running.
#[tokio::test]
async fn a_sample_finding_takes_no_destructive_step() {
    let f = Fixture::create(DEFAULT_ACCOUNT, FixtureOptions::default()).await;
    let ec2 = f.ec2();
    let mut event = with_finding_id(bitcoin_dns_event(&f), "5a3b1e000000000000000000aaaacccc");
    event["detail"]["service"]["additionalInfo"] = json!({"sample": true});
    let deployment = Deployment::new(&f, "sample").await;
    deployment.confirm(&event);
    let before = read::eni_groups(&ec2, &f.instance_id).await;

    let mut api = RuntimeApi::start().await.unwrap();
    let _function = deployment.start(&api, &moto::endpoint(), None, "enforce", &[]);
    let id = api.invoke(event);
    let report = report(&api, &id).await;
    let withheld = report["status"] == "withheld";
    for (action, outcome) in steps(&report) {
        if ["isolate", "relaunch", "terminate"].contains(&action.as_str()) {
            assert!(
                withheld || outcome == "skipped",
                "{action} ran on a sample finding: {report:#}"
            );
            assert_ne!(outcome, "done", "{action}: {report:#}");
        }
    }
    assert!(
        report.to_string().contains("sample"),
        "the report says why: {report:#}"
    );
    assert_eq!(read::eni_groups(&ec2, &f.instance_id).await, before);
    assert_eq!(
        read::instance_state(&ec2, &f.instance_id).await.as_deref(),
        Some("running")
    );
    assert!(read::replacements(&ec2, &f.instance_id).await.is_empty());
}

/// `MAX_DESTRUCTIVE_PER_HOUR=1`: the first of two findings is remediated in full; the
/// second keeps the reversible steps (isolate, snapshot), and terminate and relaunch
/// are withheld with the budget named: its instance keeps running.
#[tokio::test]
async fn past_the_blast_radius_budget_irreversible_steps_are_withheld() {
    let first = Fixture::create(DEFAULT_ACCOUNT, FixtureOptions::default()).await;
    let second = Fixture::create(DEFAULT_ACCOUNT, FixtureOptions::default()).await;
    let deployment = Deployment::new(&first, "budget").await;
    let e1 = with_finding_id(
        bitcoin_dns_event(&first),
        "b1a5700000000000000000000000aaa1",
    );
    let e2 = with_finding_id(
        bitcoin_dns_event(&second),
        "b1a5700000000000000000000000aaa2",
    );
    deployment.confirm(&e1);
    deployment.confirm(&e2);

    let mut api = RuntimeApi::start().await.unwrap();
    let _function = deployment.start(
        &api,
        &moto::endpoint(),
        None,
        "enforce",
        &[("MAX_DESTRUCTIVE_PER_HOUR", "1")],
    );
    let id = api.invoke(e1);
    let r1 = report(&api, &id).await;
    assert_eq!(r1["status"], "succeeded", "{r1:#}");
    let ec2 = first.ec2();
    assert_eq!(
        read::instance_state(&ec2, &first.instance_id)
            .await
            .as_deref(),
        Some("terminated")
    );
    assert_eq!(read::replacements(&ec2, &first.instance_id).await.len(), 1);

    let id = api.invoke(e2);
    let r2 = report(&api, &id).await;
    assert_eq!(r2["status"], "withheld", "{r2:#}");
    let reason = r2["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("budget"), "{r2:#}");
    let outcomes: std::collections::BTreeMap<String, String> = steps(&r2).into_iter().collect();
    assert_eq!(outcomes["isolate"], "done", "{r2:#}");
    assert_eq!(outcomes["snapshot"], "done", "{r2:#}");
    for action in ["relaunch", "terminate"] {
        assert_eq!(outcomes[action], "skipped", "{r2:#}");
        let why = step(&r2, action)["reason"].as_str().unwrap_or_default();
        assert!(why.contains("budget"), "{action}: {why}");
    }
    let ec2 = second.ec2();
    assert_eq!(
        read::instance_state(&ec2, &second.instance_id)
            .await
            .as_deref(),
        Some("running")
    );
    assert!(
        read::replacements(&ec2, &second.instance_id)
            .await
            .is_empty()
    );
    let q = read::groups_named(&ec2, &second.vpc_id, read::QUARANTINE_GROUP).await;
    let q = q[0].group_id().unwrap().to_owned();
    for (eni, groups) in read::eni_groups(&ec2, &second.instance_id).await {
        assert_eq!(groups, vec![q.clone()], "{eni} is not isolated");
    }
}
