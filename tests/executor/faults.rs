//! Failures, injected by a proxy in front of moto (moto has no fault injection).

use responder_aws::{ExecOptions, Executor, Outcome, Report, Status};
use responder_tests::fault::{Fault, FaultProxy};
use responder_tests::finding::{bitcoin_dns_event, finding};
use responder_tests::playbooks::shipped_plan;
use responder_tests::{Fixture, account, moto, read};

use crate::common::{
    assert_done, assert_isolated, assert_status, default_fixture, pretty, step, world,
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
        vec![Fault::ec2("RunInstances", "InvalidLaunchTemplateId.NotFound")],
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
