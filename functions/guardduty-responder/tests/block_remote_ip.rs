//! `block-remote-ip` through the real function binary (the bundled playbooks): a C&C
//! finding denies its remote address in the instance's subnet, and an EventBridge
//! "Scheduled Event" removes the due entries, never read as a finding.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, SystemTime};

use aws_sdk_ec2::types::{Filter, RuleAction};
use common::{DEFAULT_ACCOUNT, Deployment, report, step};
use responder_aws::ledger::{BlockRecord, BlockStatus};
use responder_tests::finding::bitcoin_dns_event;
use responder_tests::runtime_api::RuntimeApi;
use responder_tests::{Fixture, FixtureOptions, moto};
use serde_json::json;

/// (egress, rule number, deny, block) of the subnet's ACL entries, and its id.
async fn acl(f: &Fixture) -> (String, Vec<(bool, i32, bool, String)>) {
    let out = f
        .ec2()
        .describe_network_acls()
        .filters(
            Filter::builder()
                .name("association.subnet-id")
                .values(&f.subnet_id)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let a = &out.network_acls()[0];
    let rows = a
        .entries()
        .iter()
        .map(|e| {
            (
                e.egress().unwrap_or_default(),
                e.rule_number().unwrap_or_default(),
                e.rule_action() == Some(&RuleAction::Deny),
                e.cidr_block().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    (a.network_acl_id().unwrap().to_owned(), rows)
}

#[tokio::test]
async fn a_c2_finding_denies_its_remote_address_and_the_schedule_expires_what_is_due() {
    let f = Fixture::create(DEFAULT_ACCOUNT, FixtureOptions::default()).await;
    let deployment = Deployment::new(&f, "block-remote-ip").await;
    let mut event = bitcoin_dns_event(&f);
    event["detail"]["type"] = json!("Backdoor:EC2/C&CActivity.B");
    event["detail"]["service"]["action"] = json!({
        "actionType": "NETWORK_CONNECTION",
        "networkConnectionAction": {
            "connectionDirection": "OUTBOUND",
            "protocol": "TCP",
            "blocked": false,
            "remoteIpDetails": {"ipAddressV4": "198.51.100.7"},
            "remotePortDetails": {"port": 443}
        }
    });
    deployment.confirm(&event);
    let (acl_id, before) = acl(&f).await;
    let mut api = RuntimeApi::start().await.unwrap();
    let _function = deployment.start(&api, &moto::endpoint(), None, "enforce", &[]);
    let id = api.invoke(event);
    let r = report(&api, &id).await;
    assert_eq!(r["playbook"], "command-and-control-ec2", "{r:#}");
    assert_eq!(step(&r, "block-remote-ip")["outcome"], "done", "{r:#}");
    let (_, after) = acl(&f).await;
    let added: Vec<_> = after.iter().filter(|e| !before.contains(e)).collect();
    assert_eq!(added.len(), 2, "{added:?}");
    assert!(
        added
            .iter()
            .all(|(_, _, deny, c)| *deny && c == "198.51.100.7/32")
    );
    let blocks = deployment.ledger.blocks().await.unwrap();
    assert_eq!(blocks.len(), 2);
    assert!(blocks.iter().all(|b| b.status == BlockStatus::Active));

    // Those expire in a day. One more entry, recorded as due a minute ago:
    let due = BlockRecord {
        expires: SystemTime::now() - Duration::from_secs(60),
        network_acl_id: acl_id.clone(),
        rule_number: 90,
        egress: true,
        cidr: "198.51.100.9/32".to_owned(),
        account: DEFAULT_ACCOUNT.to_owned(),
        region: "us-east-1".to_owned(),
        finding_id: "f-due".to_owned(),
        instance_id: f.instance_id.clone(),
        status: BlockStatus::Active,
        note: String::new(),
    };
    deployment
        .ledger
        .record_block_at(&due, SystemTime::now())
        .await
        .unwrap();
    f.ec2()
        .create_network_acl_entry()
        .network_acl_id(&acl_id)
        .rule_number(90)
        .egress(true)
        .protocol("-1")
        .rule_action(RuleAction::Deny)
        .cidr_block("198.51.100.9/32")
        .send()
        .await
        .unwrap();
    let schedule = json!({
        "version": "0", "id": "5f3a1c2e-0000-4000-8000-000000000001",
        "detail-type": "Scheduled Event", "source": "aws.events",
        "account": DEFAULT_ACCOUNT, "time": "2026-11-29T12:00:00Z", "region": "us-east-1",
        "resources": [format!("arn:aws:events:us-east-1:{DEFAULT_ACCOUNT}:rule/expire")],
        "detail": {}
    });
    let id = api.invoke(schedule);
    let out = report(&api, &id).await;
    assert_eq!(out["status"], "expired", "{out:#}");
    assert_eq!(out["removed"], 1, "{out:#}");
    assert_eq!(out["failed"], 0, "{out:#}");
    let (_, now) = acl(&f).await;
    assert!(!now.iter().any(|(e, n, _, _)| *e && *n == 90), "{now:?}");
    // The finding's two entries are not due and stay.
    assert_eq!(
        now,
        after
            .into_iter()
            .filter(|(e, n, _, _)| !(*e && *n == 90))
            .collect::<Vec<_>>()
    );
    let records = deployment.ledger.blocks().await.unwrap();
    assert_eq!(
        records
            .iter()
            .filter(|b| b.status == BlockStatus::Active)
            .count(),
        2
    );
    assert!(
        records
            .iter()
            .any(|b| b.rule_number == 90 && b.status == BlockStatus::Removed)
    );
}
