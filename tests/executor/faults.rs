//! Failures, injected by a proxy in front of moto (moto has no fault injection).

use responder_aws::{ExecOptions, Executor, Outcome, Report, Status};
use responder_tests::fault::{Fault, FaultProxy};
use responder_tests::finding::{bitcoin_dns_event, finding};
use responder_tests::playbooks::shipped_plan;
use responder_tests::{Fixture, account, moto, read};

use crate::common::{
    assert_done, assert_isolated, assert_one_hardened_replacement, assert_status,
    assert_terminated, default_fixture, deliver, executor, pretty, step, world,
};

/// An executor whose clients go through a fault proxy in front of moto.
async fn faulty_executor(f: &Fixture, faults: Vec<Fault>) -> (FaultProxy, Executor) {
    let proxy = FaultProxy::start(&moto::endpoint(), faults).await;
    let config = account::sdk_config(&proxy.endpoint).await;
    let clients = account::clients(&config, &f.account);
    (proxy, Executor::new(clients, ExecOptions::default()))
}

fn assert_skipped(report: &Report, action: &str) {
    assert!(
        matches!(&step(report, action).outcome, Outcome::Skipped { reason } if !reason.is_empty()),
        "{action} must not run after an aborting failure:\n{}",
        pretty(report)
    );
}

#[tokio::test]
async fn a_failed_snapshot_keeps_the_instance_isolated_and_never_terminates_it() {
    let f = default_fixture().await;
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = shipped_plan(&fd);
    let (proxy, exec) = faulty_executor(
        &f,
        vec![
            Fault::ec2("CreateSnapshots", "IncorrectState"),
            Fault::ec2("CreateSnapshot", "IncorrectState"),
        ],
    )
    .await;

    let report = exec.respond(&fd, &plan).await;
    assert!(
        proxy.hits() >= 1,
        "the snapshot call never reached the proxy"
    );
    assert_status(&report, Status::Failed);
    assert_done(&report, "isolate");
    assert!(
        step(&report, "snapshot").outcome.is_failure(),
        "{}",
        pretty(&report)
    );
    assert_skipped(&report, "terminate");
    assert_skipped(&report, "relaunch");

    assert_isolated(&f).await;
    assert_eq!(
        read::instance_state(&f.ec2(), &f.instance_id)
            .await
            .as_deref(),
        Some("running"),
        "never terminate on an error path"
    );
    assert!(
        read::replacements(&f.ec2(), &f.instance_id)
            .await
            .is_empty()
    );
    assert!(
        read::all_snapshots(&f.ec2(), &f.account).await.is_empty(),
        "snapshots despite the injected failure"
    );
}

#[tokio::test]
async fn a_failed_isolation_stops_every_later_step() {
    let f = default_fixture().await;
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = shipped_plan(&fd);
    let before = world(&f).await;
    let (proxy, exec) = faulty_executor(
        &f,
        vec![Fault::ec2(
            "ModifyNetworkInterfaceAttribute",
            "InvalidParameterValue",
        )],
    )
    .await;

    let report = exec.respond(&fd, &plan).await;
    assert!(proxy.hits() >= 1, "no ENI move reached the proxy");
    assert_status(&report, Status::Failed);
    assert!(
        step(&report, "isolate").outcome.is_failure(),
        "{}",
        pretty(&report)
    );
    for action in ["snapshot", "terminate", "relaunch"] {
        assert_skipped(&report, action);
    }
    let after = world(&f).await;
    assert_eq!(after.instances, before.instances, "{}", pretty(&report));
    assert_eq!(after.eni_groups, before.eni_groups, "{}", pretty(&report));
    assert!(after.snapshots.is_empty());
}

/// Class 4b of the trust issue: the replacement is launched before the terminate,
/// and a launch that fails (a deleted launch template, here any RunInstances error)
/// stops the response. The isolated instance keeps running: the service never has
/// fewer instances than before, and every retry ends the same safe way.
#[tokio::test]
async fn a_failed_relaunch_never_lets_the_terminate_run() {
    let f = default_fixture().await;
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = shipped_plan(&fd);
    let (_proxy, exec) = faulty_executor(
        &f,
        vec![Fault::ec2(
            "RunInstances",
            "InvalidLaunchTemplateId.NotFound",
        )],
    )
    .await;
    for _ in 0..2 {
        let report = exec.respond(&fd, &plan).await;
        assert_status(&report, Status::Failed);
        assert!(
            matches!(&step(&report, "relaunch").outcome, Outcome::Failed { code, .. } if code == "InvalidLaunchTemplateId.NotFound"),
            "{}",
            pretty(&report)
        );
        assert_skipped(&report, "terminate");
        assert_eq!(
            read::instance_state(&f.ec2(), &f.instance_id)
                .await
                .as_deref(),
            Some("running"),
            "the instance must outlive a failed relaunch"
        );
        assert_isolated(&f).await;
    }
}

/// With the ledger, a step withheld because the evidence failed is not recorded as
/// done: once the fault is gone, Lambda's retry takes the snapshot, the replacement
/// and the terminate. (A Done record is never retried; a withheld step must not get
/// one.)
#[tokio::test]
async fn steps_withheld_for_missing_evidence_run_on_the_retry() {
    let f = default_fixture().await;
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = shipped_plan(&fd);
    let (_proxy, faulty) = faulty_executor(
        &f,
        vec![
            Fault::ec2("CreateSnapshots", "IncorrectState"),
            Fault::ec2("CreateSnapshot", "IncorrectState"),
        ],
    )
    .await;
    let faulty = faulty.with_ledger(f.ledger().await);
    let first = deliver(&faulty, &fd, &plan).await;
    assert_status(&first, Status::Failed);
    assert_skipped(&first, "terminate");
    assert_skipped(&first, "relaunch");
    let retry = deliver(&executor(&f).await, &fd, &plan).await;
    assert_status(&retry, Status::Succeeded);
    assert_done(&retry, "snapshot");
    assert_done(&retry, "relaunch");
    assert_done(&retry, "terminate");
    assert_terminated(&f).await;
    assert_one_hardened_replacement(&f).await;
}

/// A TerminateInstances that took effect but whose every answer was lost ends the
/// terminate step Failed. The retry must still know the instance is this response's
/// to have terminated: the report is `succeeded`, not `instance-gone` (which would
/// read as "someone else removed it").
#[tokio::test]
async fn a_terminate_whose_answer_was_lost_is_still_ours_on_the_retry() {
    let f = default_fixture().await;
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = shipped_plan(&fd);
    let (_proxy, lossy) = faulty_executor(&f, vec![Fault::lost_answer("TerminateInstances")]).await;
    let lossy = lossy.with_ledger(f.ledger().await);
    let first = deliver(&lossy, &fd, &plan).await;
    assert_status(&first, Status::Failed);
    assert_terminated(&f).await;
    let retry = deliver(&executor(&f).await, &fd, &plan).await;
    assert_status(&retry, Status::Succeeded);
    assert!(
        matches!(
            step(&retry, "terminate").outcome,
            Outcome::AlreadyDone { .. }
        ),
        "{}",
        pretty(&retry)
    );
}
