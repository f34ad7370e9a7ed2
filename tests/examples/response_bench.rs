//! The Bitcoin DNS response on moto: sequential API round trips before every ENI is
//! isolated, time to isolation, and wall time of the whole response, cold (a new
//! executor: quarantine group unknown or absent) and warm (the executor of an earlier
//! response: group cached). Run: `cargo run -p responder-tests --example response_bench`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use aws_sdk_ec2::types::{InstanceNetworkInterfaceSpecification, InstanceType};
use responder_aws::{ExecOptions, Executor, Status};
use responder_tests::finding::{bitcoin_dns_event, finding};
use responder_tests::fixture::{Fixture, FixtureOptions, describe_enis};
use responder_tests::playbooks::shipped_plan;

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

async fn respond(exec: &Executor, f: &Fixture) -> Run {
    let finding = finding(&bitcoin_dns_event(f));
    let plan = shipped_plan(&finding);
    let t = Instant::now();
    let report = exec.respond(&finding, &plan).await;
    let total_ms = t.elapsed().as_millis() as u64;
    assert_eq!(report.status, Status::Succeeded, "{report:#?}");
    Run {
        trips: report.round_trips_to_isolation.unwrap(),
        ms_isolated: report.ms_to_isolation.unwrap(),
        total_ms,
    }
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    const WARM_RUNS: usize = 7;
    let fixture = Fixture::new(FixtureOptions::default()).await;
    let exec = Executor::new(fixture.clients(), ExecOptions::default());
    let cold = respond(&exec, &fixture).await;
    let mut warm = Vec::new();
    for _ in 0..WARM_RUNS {
        let s = sibling(&fixture).await;
        warm.push(respond(&exec, &s).await);
    }
    println!(
        "Bitcoin DNS response on moto (shipped crypto-mining-ec2 playbook, 2 ENIs, 2 volumes)"
    );
    println!("            round trips to isolation   ms to isolation   whole response ms");
    println!(
        "cold        {:>10}                 {:>10}        {:>10}",
        cold.trips, cold.ms_isolated, cold.total_ms
    );
    println!(
        "warm (median of {WARM_RUNS}) {:>6}                 {:>10}        {:>10}",
        median(warm.iter().map(|r| u64::from(r.trips)).collect()),
        median(warm.iter().map(|r| r.ms_isolated).collect()),
        median(warm.iter().map(|r| r.total_ms).collect())
    );
    assert!(
        warm.iter().all(|r| r.trips == 1),
        "a warm start must isolate in one round trip"
    );
}
