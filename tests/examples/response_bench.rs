//! The Bitcoin DNS response on moto as the function gives it (`Responder::answer`:
//! GetFindings verification in parallel with round 1, the plan from GuardDuty's copy,
//! the blast-radius budget and step claims in the ledger, then isolate, snapshot,
//! relaunch, terminate, notify; no settle sleeps): sequential API round trips before
//! every ENI is isolated, time to isolation from the finding's arrival, and wall time
//! of the whole response. Cold: the first response of the process in a fresh account
//! (detector discovered, quarantine and untrack groups created); warm: later
//! responses of the same responder (groups exist), with verification and, for
//! comparison, without. GuardDuty is the tests' local findings endpoint, the ledger a
//! moto DynamoDB table. Run: `cargo run -p responder-tests --example response_bench`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use aws_sdk_ec2::types::{InstanceNetworkInterfaceSpecification, InstanceType};
use responder_aws::responder::{Answer, Responder};
use responder_aws::verify::{DetectorSource, RetryPolicy, Verifier};
use responder_aws::{ExecOptions, Executor, Status};
use responder_tests::FindingsEndpoint;
use responder_tests::finding::{bitcoin_dns_event, finding};
use responder_tests::fixture::{Fixture, FixtureOptions, describe_enis};
use responder_tests::playbooks::shipped_engine;
use serde_json::{Value, json};

/// Launches another instance like the fixture's (same subnet, groups A and B).
async fn sibling(f: &Fixture) -> Fixture {
    let ec2 = f.ec2();
    let nic = |i: i32, g: &str| {
        InstanceNetworkInterfaceSpecification::builder()
            .device_index(i)
            .subnet_id(&f.subnet_id)
            .groups(g)
            .build()
    };
    let out = ec2
        .run_instances()
        .image_id(&f.image_id)
        .instance_type(InstanceType::from(f.instance_type.as_str()))
        .min_count(1)
        .max_count(1)
        .network_interfaces(nic(0, &f.group_a))
        .network_interfaces(nic(1, &f.group_b))
        .send()
        .await
        .unwrap();
    let id = out.instances()[0].instance_id().unwrap().to_owned();
    let enis = describe_enis(&ec2, &id).await;
    let mut s = f.clone();
    s.instance_id = id;
    s.enis = enis.iter().map(|e| e.id.clone()).collect();
    s.eni_details = enis;
    s
}

struct Run {
    trips: u32,
    ms_isolated: u64,
    total_ms: u64,
}

/// The event about `f` with a finding id of its own (`n`), confirmed by GuardDuty.
fn event(f: &Fixture, n: usize, guardduty: &FindingsEndpoint) -> Value {
    let mut event = bitcoin_dns_event(f);
    let id = format!("be0c{n:028x}");
    let old = event["detail"]["id"].as_str().unwrap().to_owned();
    let arn = event["detail"]["arn"].as_str().unwrap().replace(&old, &id);
    event["detail"]["id"] = json!(id);
    event["detail"]["arn"] = json!(arn);
    let detector = event["detail"]["service"]["detectorId"]
        .as_str()
        .unwrap()
        .to_owned();
    guardduty.put_event_finding(&detector, &event);
    event
}

/// One answer. Time to isolation counts from the finding's arrival: the time before
/// the executor started (verification in parallel with round 1, the budget write)
/// plus the executor's own time to isolation.
async fn respond(responder: &Responder, event: &Value) -> Run {
    let finding = finding(event);
    let t = Instant::now();
    let answer = responder.answer(&finding, "bench").await.unwrap();
    let total_ms = t.elapsed().as_millis() as u64;
    let Answer::Responded(report) = answer else {
        panic!("no playbook answered")
    };
    assert_eq!(report.status, Status::Succeeded, "{report:#?}");
    let before_executor = total_ms.saturating_sub(report.duration_ms);
    Run {
        trips: report.round_trips_to_isolation.unwrap(),
        ms_isolated: before_executor + report.ms_to_isolation.unwrap(),
        total_ms,
    }
}

fn row(label: &str, runs: &[Run]) {
    println!(
        "{label:<32} {:>6}        {:>10}        {:>10}",
        median(runs.iter().map(|r| u64::from(r.trips)).collect()),
        median(runs.iter().map(|r| r.ms_isolated).collect()),
        median(runs.iter().map(|r| r.total_ms).collect())
    );
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    const WARM_RUNS: usize = 7;
    let fixture = Fixture::new(FixtureOptions::default()).await;
    let guardduty = FindingsEndpoint::start();
    let detector = bitcoin_dns_event(&fixture)["detail"]["service"]["detectorId"]
        .as_str()
        .unwrap()
        .to_owned();
    guardduty.add_detector(&fixture.account, &detector);
    let ledger = fixture.ledger().await;
    let responder = |verify: bool| {
        let executor =
            Executor::new(fixture.clients(), ExecOptions::default()).with_ledger(ledger.clone());
        let verifier = verify.then(|| {
            Verifier::new(
                guardduty.client(&fixture.config, &fixture.account),
                DetectorSource::Discover,
                RetryPolicy::default(),
            )
        });
        Responder::new(shipped_engine(), executor, verifier, 1000)
    };
    let verified = responder(true);
    let unverified = responder(false);
    let mut n = 0;
    let cold = respond(&verified, &event(&fixture, n, &guardduty)).await;
    let (mut warm, mut warm_unverified) = (Vec::new(), Vec::new());
    for _ in 0..WARM_RUNS {
        n += 1;
        let s = sibling(&fixture).await;
        warm.push(respond(&verified, &event(&s, n, &guardduty)).await);
        n += 1;
        let s = sibling(&fixture).await;
        warm_unverified.push(respond(&unverified, &event(&s, n, &guardduty)).await);
    }
    println!(
        "Bitcoin DNS response on moto (shipped crypto-mining-ec2 playbook, 2 ENIs, 2 volumes, ledger)"
    );
    println!(
        "{:<32} round trips   ms to isolation   whole response ms",
        ""
    );
    row("cold, verified", std::slice::from_ref(&cold));
    row(&format!("warm, verified (median of {WARM_RUNS})"), &warm);
    row(
        &format!("warm, --no-verify (median of {WARM_RUNS})"),
        &warm_unverified,
    );
    assert!(
        warm.iter().all(|r| r.trips <= 2),
        "a warm response must isolate in two round trips after round 1 (describe and group lookups, in parallel with verification)"
    );
}
