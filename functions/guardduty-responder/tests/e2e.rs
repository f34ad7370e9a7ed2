//! The real function binary, driven through a local Lambda Runtime API, with moto as
//! the AWS endpoint, a ledger table of each test's own and a local GuardDuty findings
//! endpoint that confirms the test's finding (the function verifies every finding
//! before acting).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{DEFAULT_ACCOUNT, Deployment, Function, answer, playbooks};
use responder_tests::fault::{Fault, FaultProxy};
use responder_tests::finding::bitcoin_dns_event;
use responder_tests::guardduty::Operation;
use responder_tests::read;
use responder_tests::runtime_api::{Answer, RuntimeApi, function_command};
use responder_tests::{Fixture, FixtureOptions, moto};
use serde_json::{Value, json};

#[tokio::test]
async fn bitcoin_dns_event_isolates_snapshots_terminates_and_replaces() {
    let f = Fixture::create(DEFAULT_ACCOUNT, FixtureOptions::default()).await;
    let ec2 = f.ec2();
    let deployment = Deployment::new(&f, "bitcoin").await;
    let event = bitcoin_dns_event(&f);
    let finding_id = deployment.confirm(&event);
    let mut api = RuntimeApi::start().await.unwrap();
    // No PLAYBOOKS_DIR: the playbooks built into the binary.
    let _function = deployment.start(&api, &moto::endpoint(), None, "enforce", &[]);
    let id = api.invoke(event);
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
    // GuardDuty was asked, and the ledger holds what was done.
    assert!(deployment.guardduty.calls(Operation::GetFindings) >= 1);
    let history = deployment
        .ledger
        .history(Some(&finding_id), None)
        .await
        .unwrap();
    let done: Vec<&str> = history
        .iter()
        .filter(|r| r.status.as_str() == "done")
        .map(|r| r.step.as_str())
        .collect();
    for action in ["snapshot", "relaunch", "terminate"] {
        assert!(
            done.contains(&action),
            "{action} not recorded done: {history:?}"
        );
    }
}

#[tokio::test]
async fn forged_and_malformed_events_are_rejected_without_any_change() {
    let f = Fixture::create(DEFAULT_ACCOUNT, FixtureOptions::default()).await;
    let ec2 = f.ec2();
    let before = read::eni_groups(&ec2, &f.instance_id).await;
    let deployment = Deployment::new(&f, "forged").await;
    deployment.confirm(&bitcoin_dns_event(&f));
    let mut api = RuntimeApi::start().await.unwrap();
    let _function = deployment.start(&api, &moto::endpoint(), Some(playbooks()), "enforce", &[]);
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
    let deployment = Deployment::new(&f, "failed").await;
    let event = bitcoin_dns_event(&f);
    deployment.confirm(&event);
    let mut api = RuntimeApi::start().await.unwrap();
    let _function = deployment.start(&api, &proxy.endpoint, Some(playbooks()), "enforce", &[]);
    let id = api.invoke(event);
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
    let deployment = Deployment::new(&f, "dry-run").await;
    let event = bitcoin_dns_event(&f);
    deployment.confirm(&event);
    let mut api = RuntimeApi::start().await.unwrap();
    let _function = deployment.start(&api, &moto::endpoint(), Some(playbooks()), "", &[]);
    let id = api.invoke(event);
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
    let mut cmd = function_command(
        Path::new(env!("CARGO_BIN_EXE_guardduty-responder")),
        &api,
        &moto::endpoint(),
        "enforce",
    );
    cmd.env("PLAYBOOKS_DIR", &dir)
        .env("LEDGER_TABLE", "gdr-ledger-invalid");
    let mut function = Function(cmd.spawn().expect("the function binary starts"));
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
    let deployment = Deployment::new(&f, "guardduty-endpoint").await;
    assert_eq!(deployment.detector, detector);
    deployment.confirm(&event);
    let guardduty = &deployment.guardduty;

    let dir = std::env::temp_dir().join(format!("gdr-archive-playbooks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("archive.yaml"),
        "name: archive-only\npriority: 100\nmode: enforce\nmatch:\n  finding_types: [\"CryptoCurrency:EC2/*\"]\nsteps:\n  - archive-finding: {}\n",
    )
    .unwrap();
    let mut api = RuntimeApi::start().await.unwrap();
    let _function = deployment.start(&api, &moto::endpoint(), Some(&dir), "enforce", &[]);
    let id = api.invoke(event);
    let Answer::Response(report) = answer(&api, &id).await else {
        panic!("the response failed")
    };
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(report["status"], "succeeded", "{report:#}");
    assert_eq!(guardduty.calls(Operation::ArchiveFindings), 1);
    let archived = guardduty.finding(&detector, &finding_id).unwrap();
    assert_eq!(archived["service"]["archived"], json!(true));
    // Verification first (GetFindings, after ListDetectors found the detector), then
    // the archive; all in the account the function's credentials map to.
    let requests = guardduty.requests();
    let ops: Vec<Option<Operation>> = requests.iter().map(|r| r.operation).collect();
    assert_eq!(
        ops,
        [
            Some(Operation::ListDetectors),
            Some(Operation::GetFindings),
            Some(Operation::ArchiveFindings)
        ],
        "{requests:?}"
    );
    assert!(
        requests.iter().all(|r| r.account == DEFAULT_ACCOUNT),
        "{requests:?}"
    );
    assert_eq!(requests[2].body, json!({"findingIds": [finding_id]}));
}
