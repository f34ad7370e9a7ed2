//! Redelivery, sequential and concurrent: the response acts once.

use responder_aws::{Executor, Report, Status};
use responder_core::Finding;
use responder_tests::finding::{bitcoin_dns_event, finding};
use responder_tests::playbooks::shipped_plan;
use responder_tests::{Fixture, read};

use crate::common::{
    assert_not_failed, assert_one_hardened_replacement, assert_snapshot_set, assert_terminated,
    default_fixture, executor, respond,
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
    // Ten containers: each its own clients and executor.
    let e: Vec<Executor> = (0..10).map(|_| executor(&f)).collect();
    let (r0, r1, r2, r3, r4, r5, r6, r7, r8, r9) = tokio::join!(
        e[0].respond(&fd, &plan),
        e[1].respond(&fd, &plan),
        e[2].respond(&fd, &plan),
        e[3].respond(&fd, &plan),
        e[4].respond(&fd, &plan),
        e[5].respond(&fd, &plan),
        e[6].respond(&fd, &plan),
        e[7].respond(&fd, &plan),
        e[8].respond(&fd, &plan),
        e[9].respond(&fd, &plan),
    );
    let reports = [r0, r1, r2, r3, r4, r5, r6, r7, r8, r9];
    for r in &reports {
        eprintln!("{}", serde_json::to_string(r).unwrap_or_default());
    }
    assert_after_redelivery(&f, &fd, &reports).await;
}
