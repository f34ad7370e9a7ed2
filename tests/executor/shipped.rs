//! The two seed cases with the shipped playbooks.

use responder_aws::{Outcome, Status};
use responder_tests::Fixture;
use responder_tests::finding::{bitcoin_dns_event, finding, network_port_unusual_event};
use responder_tests::playbooks::shipped_plan;
use serde_json::Value;

use crate::common::{
    assert_done, assert_isolated, assert_one_hardened_replacement, assert_snapshot_set,
    assert_status, assert_terminated, default_fixture, existing_volumes, pretty, respond, step,
};

async fn seed_case(f: &Fixture, event: Value, playbook: &str) {
    let fd = finding(&event);
    let plan = shipped_plan(&fd);
    assert_eq!(
        plan.playbook.as_deref(),
        Some(playbook),
        "{}",
        plan.decision
    );

    let report = respond(f, &fd, &plan).await;
    assert_status(&report, Status::Succeeded);
    for action in ["isolate", "snapshot", "terminate", "relaunch"] {
        assert_done(&report, action);
    }
    assert!(
        matches!(&step(&report, "notify").outcome, Outcome::Skipped { reason } if !reason.is_empty()),
        "notify without a topic is skipped with a reason:\n{}",
        pretty(&report)
    );

    assert_isolated(f).await;
    assert_snapshot_set(f, &fd).await;
    assert_terminated(f).await;
    let kept = existing_volumes(f).await;
    assert_eq!(
        kept.len(),
        2,
        "preserve_volumes keeps both volumes after the terminate: {kept:?}"
    );
    assert_one_hardened_replacement(f).await;
}

#[tokio::test]
async fn seed_bitcoin_dns_is_contained_and_replaced() {
    let f = default_fixture().await;
    seed_case(&f, bitcoin_dns_event(&f), "crypto-mining-ec2").await;
}

#[tokio::test]
async fn seed_network_port_unusual_is_contained_and_replaced() {
    let f = default_fixture().await;
    seed_case(
        &f,
        network_port_unusual_event(&f),
        "unusual-network-behaviour-ec2",
    )
    .await;
}
