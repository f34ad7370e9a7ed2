//! Issue 17: every log line of a response names its finding. The handler's span
//! (`finding_id`, `finding_type`, `request_id`) instruments the whole response
//! future, so the lines logged inside it (the steps', the responder's) carry it, as
//! lambda_runtime's JSON subscriber prints spans (`span` and `spans`); the embedded
//! metric line names the finding as a property.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::{DEFAULT_ACCOUNT, Deployment, Function, answer, playbooks};
use responder_tests::finding::bitcoin_dns_event;
use responder_tests::runtime_api::{Answer, RuntimeApi, function_command};
use responder_tests::{Fixture, FixtureOptions, moto};
use serde_json::Value;

/// Whether a span object carries the finding, its type and the request.
fn names_the_response(span: &Value, finding_id: &str, request_id: &str) -> bool {
    span["finding_id"] == finding_id
        && span["finding_type"].as_str().is_some_and(|t| !t.is_empty())
        && span["request_id"] == request_id
}

#[tokio::test]
async fn every_log_line_of_a_response_carries_the_finding() {
    let f = Fixture::create(DEFAULT_ACCOUNT, FixtureOptions::default()).await;
    let deployment = Deployment::new(&f, "logs").await;
    let event = bitcoin_dns_event(&f);
    let finding_id = deployment.confirm(&event);
    let mut api = RuntimeApi::start().await.unwrap();
    let mut cmd = function_command(&common::binary(), &api, &moto::endpoint(), "enforce");
    let (var, url) = deployment.guardduty.env();
    cmd.env("LEDGER_TABLE", deployment.ledger.table())
        .env(var, url)
        .env("PLAYBOOKS_DIR", playbooks())
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_LAMBDA_LOG_LEVEL", "info")
        .stdout(Stdio::piped());
    let mut function = Function(cmd.spawn().unwrap());
    let stdout = function.0.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    let request_id = api.invoke(event);
    let Answer::Response(report) = answer(&api, &request_id).await else {
        panic!("the response failed")
    };
    assert_eq!(report["status"], "succeeded", "{report:#}");
    drop(function);
    let lines = reader.join().unwrap();
    // The response's lines: after init's "ready", to the end (one event was sent).
    let start = lines
        .iter()
        .position(|l| l.contains("\"ready\""))
        .unwrap_or_else(|| panic!("no ready line in {lines:#?}"));
    let response = &lines[start + 1..];
    let mut steps = 0;
    for line in response {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if v.get("_aws").is_some() {
            // The embedded metric line: not a tracing line; the finding a property.
            assert_eq!(v["finding_id"], finding_id.as_str(), "{line}");
            continue;
        }
        assert!(
            names_the_response(&v["span"], &finding_id, &request_id)
                || v["spans"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|s| names_the_response(
                        s,
                        &finding_id,
                        &request_id
                    ))),
            "a line of the response without its finding, type and request: {line}"
        );
        if v["fields"]["message"] == "step" {
            steps += 1;
        }
    }
    assert!(steps >= 4, "the steps' lines are among them: {response:#?}");
}
