//! Redelivery, sequential and concurrent: the response acts once.

use futures::future::join_all;
use responder_aws::{Executor, Outcome, Report, Status};
use responder_core::Finding;
use responder_tests::finding::{bitcoin_dns_event, finding};
use responder_tests::playbooks::shipped_plan;
use responder_tests::{Fixture, read};

use crate::common::{
    assert_not_failed, assert_one_hardened_replacement, assert_snapshot_set, assert_terminated,
    default_fixture, deliver, executor, respond,
};

async fn assert_after_redelivery(f: &Fixture, fd: &Finding, reports: &[Report]) {
    let statuses: Vec<Status> = reports.iter().map(|r| r.status).collect();
    assert_snapshot_set(f, fd).await;
    assert_terminated(f).await;
    assert_one_hardened_replacement(f).await;
    let live = read::all_instances(&f.ec2())
        .await
        .into_iter()
        .filter(|(_, s)| s != "terminated")
        .count();
    assert_eq!(
        live, 1,
        "one live instance in the account (statuses {statuses:?})"
    );
    assert!(
        reports.iter().any(|r| r.status == Status::Succeeded),
        "no delivery succeeded: {statuses:?}"
    );
}

#[tokio::test]
async fn redelivered_ten_times_in_sequence_acts_once() {
    let f = default_fixture().await;
    let event = bitcoin_dns_event(&f);
    let mut reports = Vec::new();
    for _ in 0..10 {
        let fd = finding(&event);
        let plan = shipped_plan(&fd);
        let report = respond(&f, &fd, &plan).await;
        assert_not_failed(&report);
        reports.push(report);
    }
    assert_after_redelivery(&f, &finding(&event), &reports).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_ten_times_concurrently_acts_once() {
    let f = default_fixture().await;
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = shipped_plan(&fd);
    // Ten containers: each its own clients and executor, one ledger.
    let e: Vec<Executor> = join_all((0..10).map(|_| executor(&f))).await;
    let reports = join_all(e.iter().map(|x| deliver(x, &fd, &plan))).await;
    for r in &reports {
        eprintln!("{}", serde_json::to_string(r).unwrap_or_default());
        // A delivery either answers, or stops because another one holds a claim:
        // an error Lambda retries, never another failure.
        for s in r.steps.iter().filter(|s| s.outcome.is_failure()) {
            assert!(
                matches!(&s.outcome, Outcome::Failed { code, .. } if code == "InProgressElsewhere"),
                "{}",
                serde_json::to_string_pretty(r).unwrap_or_default()
            );
        }
    }
    // Lambda's retry of a delivery that stopped finds every step done.
    let retry = deliver(&executor(&f).await, &fd, &plan).await;
    assert_not_failed(&retry);
    assert_eq!(retry.status, Status::Succeeded);
    assert!(
        retry.steps.iter().all(|s| s.outcome != Outcome::Done),
        "the retry acted again: {retry:#?}"
    );
    let mut all = reports.to_vec();
    all.push(retry);
    assert_after_redelivery(&f, &fd, &all).await;
}
