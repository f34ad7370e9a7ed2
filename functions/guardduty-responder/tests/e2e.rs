//! The real function binary, driven through a local Lambda Runtime API, with moto as
//! the AWS endpoint.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use responder_tests::fault::{Fault, FaultProxy};
use responder_tests::finding::bitcoin_dns_event;
use responder_tests::guardduty::{FindingsEndpoint, Operation};
use responder_tests::read;
use responder_tests::runtime_api::{Answer, RuntimeApi, function_command};
use responder_tests::{Fixture, FixtureOptions, moto};
use serde_json::{Value, json};

/// moto's account for requests that name none (the function signs with test keys).
const DEFAULT_ACCOUNT: &str = "123456789012";

struct Function(Child);

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(api: &RuntimeApi, endpoint: &str, playbooks: Option<&Path>, mode: &str) -> Function {
    let mut cmd = function_command(
        Path::new(env!("CARGO_BIN_EXE_guardduty-responder")),
        api,
        endpoint,
        mode,
    );
    if let Some(dir) = playbooks {
        cmd.env("PLAYBOOKS_DIR", dir);
    }
    if mode == "enforce" {
        // Enforce mode refuses to start without a ledger table (config.rs). The
        // function does not use it yet; the ledger's integration creates a real one.
        cmd.env("LEDGER_TABLE", "guardduty-responder-ledger-e2e");
    }
    let child = cmd.spawn().expect("the function binary starts");
    Function(child)
}

fn playbooks() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../playbooks"))
}

async fn answer(api: &RuntimeApi, id: &str) -> Answer {
    api.answer(id, Duration::from_secs(90))
        .await
        .expect("the function answers within 90 s")
}

#[tokio::test]
async fn bitcoin_dns_event_isolates_snapshots_terminates_and_replaces() {
    let f = Fixture::create(DEFAULT_ACCOUNT, FixtureOptions::default()).await;
    let ec2 = f.ec2();
    let mut api = RuntimeApi::start().await.unwrap();
    // No PLAYBOOKS_DIR: the playbooks built into the binary.
    let _function = start(&api, &moto::endpoint(), None, "enforce");
    let id = api.invoke(bitcoin_dns_event(&f));
    let Answer::Response(report) = answer(&api, &id).await else {
        panic!("the remediation failed")
    };
    assert_eq!(report["status"], "succeeded", "{report:#}");
    assert_eq!(report["playbook"], "crypto-mining-ec2");
    let steps: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        ["isolate", "snapshot", "relaunch", "terminate", "notify"]
    );

    let quarantine = read::groups_named(&ec2, &f.vpc_id, "guardduty-responder-quarantine").await;
    assert_eq!(quarantine.len(), 1, "{quarantine:?}");
    let q = quarantine[0].group_id().unwrap().to_owned();
    let enis = read::eni_groups(&ec2, &f.instance_id).await;
    assert_eq!(enis.len(), 2);
    for (eni, groups) in enis {
        assert_eq!(groups, vec![q.clone()], "{eni} is not isolated");
    }
    let snaps =
        read::snapshots_tagged(&ec2, "guardduty-responder:instance-id", &f.instance_id).await;
    assert_eq!(snaps.len(), f.volumes.len());
    assert_eq!(
        read::instance_state(&ec2, &f.instance_id).await.as_deref(),
        Some("terminated")
    );
    let replacements = read::replacements(&ec2, &f.instance_id).await;
    assert_eq!(replacements.len(), 1);
    assert_eq!(
        read::http_tokens(&ec2, &replacements[0]).await.as_deref(),
        Some("required")
    );
}

#[tokio::test]
async fn forged_and_malformed_events_are_rejected_without_any_change() {
    let f = Fixture::create(DEFAULT_ACCOUNT, FixtureOptions::default()).await;
    let ec2 = f.ec2();
    let before = read::eni_groups(&ec2, &f.instance_id).await;
    let mut api = RuntimeApi::start().await.unwrap();
    let _function = start(&api, &moto::endpoint(), Some(playbooks()), "enforce");
    let mut forged = bitcoin_dns_event(&f);
    forged["source"] = json!("my.app");
    let mut wrong_type = bitcoin_dns_event(&f);
    wrong_type["detail-type"] = json!("AWS API Call via CloudTrail");
    let ids: Vec<String> = [
        forged,
        wrong_type,
        json!({"detail": "nope"}),
        json!([1, 2]),
        Value::Null,
    ]
    .into_iter()
    .map(|e| api.invoke(e))
    .collect();
    for id in &ids {
        match answer(&api, id).await {
            Answer::Response(r) => assert_eq!(r["status"], "rejected", "{r:#}"),
            Answer::Error(e) => panic!("a rejected event must not be retried: {e}"),
        }
    }
    assert_eq!(read::eni_groups(&ec2, &f.instance_id).await, before);
    assert_eq!(
        read::instance_state(&ec2, &f.instance_id).await.as_deref(),
        Some("running")
    );
    assert!(
        read::snapshots_tagged(&ec2, "guardduty-responder:instance-id", &f.instance_id)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_failed_remediation_is_an_error_so_the_event_is_retried() {
    let f = Fixture::create(DEFAULT_ACCOUNT, FixtureOptions::default()).await;
    let proxy = FaultProxy::start(
        &moto::endpoint(),
        vec![Fault::ec2("CreateSnapshots", "InternalError")],
    )
    .await;
    let mut api = RuntimeApi::start().await.unwrap();
    let _function = start(&api, &proxy.endpoint, Some(playbooks()), "enforce");
    let id = api.invoke(bitcoin_dns_event(&f));
    let Answer::Error(error) = answer(&api, &id).await else {
        panic!("expected an error answer")
    };
    let message = error["errorMessage"].as_str().unwrap_or_default();
    assert!(message.contains("snapshot InternalError"), "{error:#}");
    // Fail closed: isolated, not terminated.
    let ec2 = f.ec2();
    assert_eq!(
        read::instance_state(&ec2, &f.instance_id).await.as_deref(),
        Some("running")
    );
    assert!(read::replacements(&ec2, &f.instance_id).await.is_empty());
}

#[tokio::test]
async fn dry_run_is_the_default_mode() {
    let f = Fixture::create(DEFAULT_ACCOUNT, FixtureOptions::default()).await;
    let ec2 = f.ec2();
    let before = read::eni_groups(&ec2, &f.instance_id).await;
    let mut api = RuntimeApi::start().await.unwrap();
    let _function = start(&api, &moto::endpoint(), Some(playbooks()), "");
    let id = api.invoke(bitcoin_dns_event(&f));
    let Answer::Response(report) = answer(&api, &id).await else {
        panic!("dry run failed")
    };
    assert_eq!(report["status"], "dry-run-passed", "{report:#}");
    assert_eq!(read::eni_groups(&ec2, &f.instance_id).await, before);
    assert_eq!(
        read::instance_state(&ec2, &f.instance_id).await.as_deref(),
        Some("running")
    );
}

#[tokio::test]
async fn invalid_playbooks_fail_the_init() {
    let dir = std::env::temp_dir().join(format!("gdr-bad-playbooks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("bad.yaml"),
        "name: bad\nmatch: {severity: high}\nsteps:\n  - explode: {}\n",
    )
    .unwrap();
    let api = RuntimeApi::start().await.unwrap();
    let mut function = start(&api, &moto::endpoint(), Some(&dir), "enforce");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = function.0.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let status = status.expect("the function exits when its playbooks are invalid");
    assert!(!status.success());
    assert_eq!(api.next_polls(), 0, "it must not ask for events");
    let error = api
        .init_error()
        .expect("the init error is reported to the Runtime API");
    assert!(error.to_string().contains("playbook error"), "{error}");
    std::fs::remove_dir_all(&dir).ok();
}

/// The function binary reaches GuardDuty through `AWS_ENDPOINT_URL_GUARDDUTY` (the
/// local findings endpoint) while EC2 stays on `AWS_ENDPOINT_URL` (moto): the set-up
/// the verification tests through the binary rely on.
#[tokio::test]
async fn guardduty_calls_go_to_the_guardduty_endpoint() {
    let f = Fixture::create(DEFAULT_ACCOUNT, FixtureOptions::default()).await;
    let event = bitcoin_dns_event(&f);
    let finding_id = event["detail"]["id"].as_str().unwrap().to_owned();
    let detector = event["detail"]["service"]["detectorId"]
        .as_str()
        .unwrap()
        .to_owned();
    let guardduty = FindingsEndpoint::start();
    guardduty.add_detector(DEFAULT_ACCOUNT, &detector);
    guardduty.put_event_finding(&detector, &event);

    let dir = std::env::temp_dir().join(format!("gdr-archive-playbooks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("archive.yaml"),
        "name: archive-only\npriority: 100\nmode: enforce\nmatch:\n  finding_types: [\"CryptoCurrency:EC2/*\"]\nsteps:\n  - archive-finding: {}\n",
    )
    .unwrap();
    let mut api = RuntimeApi::start().await.unwrap();
    let (var, url) = guardduty.env();
    let mut cmd = function_command(
        Path::new(env!("CARGO_BIN_EXE_guardduty-responder")),
        &api,
        &moto::endpoint(),
        "enforce",
    );
    cmd.env("PLAYBOOKS_DIR", &dir)
        .env("LEDGER_TABLE", "guardduty-responder-ledger-e2e")
        .env(var, url);
    let _function = Function(cmd.spawn().expect("the function binary starts"));
    let id = api.invoke(event);
    let Answer::Response(report) = answer(&api, &id).await else {
        panic!("the response failed")
    };
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(report["status"], "succeeded", "{report:#}");
    assert_eq!(guardduty.calls(Operation::ArchiveFindings), 1);
    let archived = guardduty.finding(&detector, &finding_id).unwrap();
    assert_eq!(archived["service"]["archived"], json!(true));
    let requests = guardduty.requests();
    assert_eq!(requests[0].account, DEFAULT_ACCOUNT, "{requests:?}");
    assert_eq!(requests[0].body, json!({"findingIds": [finding_id]}));
}
