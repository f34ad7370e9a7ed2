//! Smoke tests of the test harness itself: the moto server, the accounts and the
//! fixture are what the executor tests assume.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use responder_tests::fixture::{DATA_DEVICE, INSTANCE_NAME};
use responder_tests::{Fixture, FixtureOptions, finding, read};

#[tokio::test]
async fn the_default_fixture_is_what_the_tests_assume() {
    let f = Fixture::new(FixtureOptions::default()).await;
    let ec2 = f.ec2();

    assert_eq!(
        read::instance_state(&ec2, &f.instance_id).await.as_deref(),
        Some("running")
    );

    // Two ENIs, primary in group A, second in group B, same subnet.
    assert_eq!(f.enis.len(), 2, "ENIs: {:?}", f.eni_details);
    let groups = read::eni_groups(&ec2, &f.instance_id).await;
    assert_eq!(groups.len(), 2, "{groups:?}");
    assert_eq!(groups[&f.enis[0]], vec![f.group_a.clone()]);
    assert_eq!(groups[&f.enis[1]], vec![f.group_b.clone()]);
    assert_eq!(f.eni_details[0].device_index, 0);
    assert_eq!(f.eni_details[1].device_index, 1);
    assert!(
        f.eni_details
            .iter()
            .all(|e| e.subnet_id == f.subnet_id && e.vpc_id == f.vpc_id)
    );
    assert_eq!(f.eni_details[0].groups[0].1, "web");
    assert_eq!(f.eni_details[1].groups[0].1, "admin");

    // Two volumes, both mapped with DeleteOnTermination=true.
    assert_eq!(f.volumes.len(), 2, "{:?}", f.volumes);
    assert_eq!(
        f.volumes.iter().collect::<BTreeSet<_>>().len(),
        2,
        "distinct volumes"
    );
    let dot = read::delete_on_termination(&ec2, &f.instance_id).await;
    assert_eq!(dot.len(), 2, "{dot:?}");
    assert!(dot.contains_key(DATA_DEVICE), "{dot:?}");
    assert!(dot.values().all(|v| *v == Some(true)), "{dot:?}");

    // Profile associated, by the ARN IAM gave.
    assert_eq!(
        read::profile_association_state(&ec2, &f.instance_id)
            .await
            .as_deref(),
        Some("associated")
    );
    assert!(
        f.profile_arn.contains(&f.account) && f.profile_arn.ends_with("instance-profile/web-app"),
        "{}",
        f.profile_arn
    );
    assert_eq!(
        read::profile_arn(&ec2, &f.instance_id).await.as_deref(),
        Some(f.profile_arn.as_str())
    );

    // Tags, attributes the step tests start from.
    assert_eq!(f.tags.get("Name").map(String::as_str), Some(INSTANCE_NAME));
    assert_eq!(f.tags.get("env").map(String::as_str), Some("prod"));
    assert!(!read::disable_api_termination(&ec2, &f.instance_id).await);
    assert_eq!(
        read::shutdown_behavior(&ec2, &f.instance_id)
            .await
            .as_deref(),
        Some("terminate")
    );
    assert_eq!(
        read::http_tokens(&ec2, &f.instance_id).await.as_deref(),
        Some("optional")
    );
    assert!(
        read::public_ip(&ec2, &f.instance_id).await.is_some(),
        "the fixture subnet maps public IPs on launch"
    );
    assert!(read::replacements(&ec2, &f.instance_id).await.is_empty());
    assert!(read::all_snapshots(&ec2, &f.account).await.is_empty());

    // The finding about it decodes, names the fixture and its real ENIs.
    let event = finding::bitcoin_dns_event(&f);
    let fd = finding::finding(&event);
    assert_eq!(fd.instance_id(), Some(f.instance_id.as_str()));
    assert_eq!(fd.account_id.as_deref(), Some(f.account.as_str()));
    assert!(fd.id.contains(&f.account));
    let instance = fd.instance.as_ref().expect("instance details");
    let listed: Vec<&str> = instance
        .network_interfaces
        .iter()
        .map(|n| n.network_interface_id.as_str())
        .collect();
    assert_eq!(
        listed,
        f.enis.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(
        instance.network_interfaces[1].security_groups[0].group_id,
        f.group_b
    );
    assert_eq!(
        instance
            .iam_instance_profile
            .as_ref()
            .and_then(|p| p.arn.as_deref()),
        Some(f.profile_arn.as_str())
    );
    let plan = responder_tests::playbooks::shipped_plan(&fd);
    assert_eq!(plan.playbook.as_deref(), Some("crypto-mining-ec2"));
    let plan2 = responder_tests::playbooks::shipped_plan(&finding::finding(
        &finding::network_port_unusual_event(&f),
    ));
    assert_eq!(
        plan2.playbook.as_deref(),
        Some("unusual-network-behaviour-ec2")
    );
}

#[tokio::test]
async fn two_accounts_do_not_see_each_other() {
    let (a, b) = tokio::join!(
        Fixture::new(FixtureOptions::default()),
        Fixture::new(FixtureOptions::default())
    );
    assert_ne!(a.account, b.account);
    let (ea, eb) = (a.ec2(), b.ec2());

    let in_a = read::all_instances(&ea).await;
    let in_b = read::all_instances(&eb).await;
    assert_eq!(in_a.keys().collect::<Vec<_>>(), vec![&a.instance_id]);
    assert_eq!(in_b.keys().collect::<Vec<_>>(), vec![&b.instance_id]);
    assert!(read::instance(&ea, &b.instance_id).await.is_none());
    assert!(read::instance(&eb, &a.instance_id).await.is_none());
    // Same names, separate worlds: each account has its own "web" group.
    assert_ne!(a.group_a, b.group_a);
    assert_eq!(read::groups_named(&ea, &b.vpc_id, "web").await.len(), 0);
}

#[tokio::test]
async fn fixture_options_build_a_group_and_a_target_group() {
    let f = Fixture::new(FixtureOptions {
        auto_scaling_group: true,
        target_group: true,
    })
    .await;
    let ec2 = f.ec2();
    let asg = f.auto_scaling_group.clone().expect("group");
    assert_eq!(
        f.tags.get("aws:autoscaling:groupName"),
        Some(&asg),
        "{:?}",
        f.tags
    );
    assert_eq!(
        read::instance_state(&ec2, &f.instance_id).await.as_deref(),
        Some("running")
    );
    let inst = f
        .autoscaling()
        .describe_auto_scaling_instances()
        .instance_ids(&f.instance_id)
        .send()
        .await
        .unwrap();
    assert_eq!(inst.auto_scaling_instances().len(), 1);
    let health = f
        .elbv2()
        .describe_target_health()
        .target_group_arn(f.target_group_arn.clone().unwrap())
        .send()
        .await
        .unwrap();
    let targets: Vec<&str> = health
        .target_health_descriptions()
        .iter()
        .filter_map(|t| t.target().and_then(|t| t.id()))
        .collect();
    assert_eq!(targets, vec![f.instance_id.as_str()]);
    assert_eq!(
        read::profile_association_state(&ec2, &f.instance_id)
            .await
            .as_deref(),
        Some("associated")
    );
    assert!(!f.enis.is_empty());
}
