//! The function's init time (process start to its first request for an event, over
//! the Runtime API) and peak resident memory while answering the Bitcoin DNS event on
//! moto, deployed as in production: verification on (GuardDuty is the tests' local
//! findings endpoint, through `AWS_ENDPOINT_URL_GUARDDUTY`) and a ledger table
//! (`LEDGER_TABLE`, in moto). Run: `cargo build -p guardduty-responder-function [--release]` then
//! `cargo run -p responder-tests --example lambda_cold_start [-- PATH_TO_BINARY]`
//! (default: the `guardduty-responder` beside this example's profile folder).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use responder_aws::ledger::Ledger;
use responder_tests::finding::bitcoin_dns_event;
use responder_tests::guardduty::DEFAULT_ACCOUNT;
use responder_tests::runtime_api::{Answer, RuntimeApi, function_command};
use responder_tests::{FindingsEndpoint, Fixture, FixtureOptions, account, dynamodb, moto};
use serde_json::json;

/// The ledger table the function writes (in moto's default account, the function's).
const LEDGER_TABLE: &str = "gdr-ledger-cold-start";

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::main]
async fn main() {
    const RUNS: usize = 5;
    let binary = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let exe = std::env::current_exe().unwrap();
            exe.parent()
                .and_then(|p| p.parent())
                .unwrap()
                .join("guardduty-responder")
        });
    assert!(
        binary.is_file(),
        "build the function first: {} is missing",
        binary.display()
    );
    let endpoint = moto::endpoint();
    let config = account::sdk_config(&endpoint).await;
    Ledger::new(dynamodb::client(&config, DEFAULT_ACCOUNT), LEDGER_TABLE)
        .create_table()
        .await
        .unwrap();
    let guardduty = FindingsEndpoint::start();
    let (guardduty_var, guardduty_url) = guardduty.env();
    let mut inits = Vec::new();
    let mut peaks = Vec::new();
    let mut responses = Vec::new();
    for run in 0..RUNS {
        let f = Fixture::create(DEFAULT_ACCOUNT, FixtureOptions::default()).await;
        // A finding id of this run's own, confirmed by GuardDuty.
        let mut event = bitcoin_dns_event(&f);
        let id = format!("c01d{run:028x}");
        event["detail"]["id"] = json!(id);
        let detector = event["detail"]["service"]["detectorId"]
            .as_str()
            .unwrap()
            .to_owned();
        guardduty.add_detector(DEFAULT_ACCOUNT, &detector);
        guardduty.put_event_finding(&detector, &event);
        let mut api = RuntimeApi::start().await.unwrap();
        let start = Instant::now();
        let mut child = function_command(&binary, &api, &endpoint, "enforce")
            .env("LEDGER_TABLE", LEDGER_TABLE)
            .env(guardduty_var, &guardduty_url)
            .spawn()
            .unwrap();
        api.ready(&mut child, Duration::from_secs(30))
            .await
            .unwrap();
        inits.push(start.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        let id = api.invoke(event);
        let answer = api.answer(&id, Duration::from_secs(60)).await;
        responses.push(t.elapsed().as_secs_f64() * 1000.0);
        match &answer {
            Some(Answer::Response(r)) => assert_eq!(r["status"], "succeeded", "{r:#}"),
            other => panic!("{other:?}"),
        }
        peaks.push(peak_rss_kib(child.id()).unwrap_or(0));
        child.kill().ok();
        child.wait().ok();
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!("function binary: {}", binary.display());
    println!(
        "init (spawn to first /next), median of {RUNS}: {:.1} ms",
        median(inits.clone())
    );
    println!("Bitcoin DNS response, median: {:.0} ms", median(responses));
    println!(
        "peak resident memory (VmHWM), max of {RUNS}: {:.1} MiB",
        peaks.iter().copied().max().unwrap_or(0) as f64 / 1024.0
    );
}
