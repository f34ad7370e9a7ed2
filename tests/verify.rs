//! Verification against GuardDuty (`responder_aws::verify`), through the local
//! findings endpoint (`responder_tests::guardduty`): no moto needed, GuardDuty is the
//! only service asked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::time::Duration;

use responder_aws::verify::{DetectorSource, RetryPolicy, Verification, Verifier, VerifyError};
use responder_tests::account::{REGION, fresh_account, sdk_config};
use responder_tests::guardduty::{DEFAULT_ACCOUNT, FindingsEndpoint, Operation};
use responder_tests::moto::workspace_root;
use serde_json::{Value, json};

/// The detector the findings are read from (the administrator's).
const DETECTOR: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90";
/// The detector named in the event's ARN (a member's, never asked).
const ARN_DETECTOR: &str = "12abc34d567e8fa901bc2d34e56789f0";

/// A fast not-found policy: same logic, 10 ms pauses.
fn fast(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        attempts,
        delay: Duration::from_millis(10),
    }
}

/// The shipped Bitcoin DNS example event, about `account` and a finding id of its
/// own.
fn event(account: &str) -> Value {
    let path = workspace_root().join("playbooks/tests/findings/bitcoin-dns.json");
    let text = std::fs::read_to_string(&path).expect("the example event");
    let mut event: Value = serde_json::from_str(&text).expect("JSON");
    let id = format!("4ac7a0b1e2d34c5f8e9a{account}");
    let detail = &mut event["detail"];
    detail["id"] = json!(id);
    detail["accountId"] = json!(account);
    detail["region"] = json!(REGION);
    detail["arn"] = json!(format!(
        "arn:aws:guardduty:{REGION}:{account}:detector/{ARN_DETECTOR}/finding/{id}"
    ));
    event["account"] = json!(account);
    event
}

fn finding(event: &Value) -> responder_core::Finding {
    responder_core::decode_event(event.clone()).expect("the event decodes")
}

/// An endpoint with one detector in a fresh account holding the event's finding.
struct Setup {
    endpoint: FindingsEndpoint,
    account: String,
    event: Value,
    client: aws_sdk_guardduty::Client,
}

async fn setup() -> Setup {
    let endpoint = FindingsEndpoint::start();
    let account = fresh_account();
    endpoint.add_detector(&account, DETECTOR);
    let event = event(&account);
    endpoint.put_event_finding(DETECTOR, &event);
    let config = sdk_config(endpoint.url()).await;
    let client = endpoint.client(&config, &account);
    Setup {
        endpoint,
        account,
        event,
        client,
    }
}

impl Setup {
    fn verifier(&self, detector: DetectorSource, retry: RetryPolicy) -> Verifier {
        Verifier::new(self.client.clone(), detector, retry)
    }

    fn fixed(&self) -> Verifier {
        self.verifier(DetectorSource::Fixed(DETECTOR.to_owned()), fast(3))
    }

    fn id(&self) -> String {
        self.event["detail"]["id"].as_str().expect("id").to_owned()
    }

    /// Replaces GuardDuty's copy with the event's finding edited by `edit`.
    fn edit_copy(&self, edit: impl FnOnce(&mut Value)) {
        let mut copy = self
            .endpoint
            .finding(DETECTOR, &self.id())
            .expect("GuardDuty's copy");
        edit(&mut copy);
        self.endpoint.put_finding(DETECTOR, copy);
    }
}

fn unverified(v: Verification) -> String {
    match v {
        Verification::Unverified { reason } => reason,
        Verification::Verified { finding, sample } => {
            panic!(
                "expected unverified, got verified {} (sample {sample})",
                finding.id
            )
        }
    }
}

fn verified(v: Verification) -> (responder_core::Finding, bool) {
    match v {
        Verification::Verified { finding, sample } => (*finding, sample),
        Verification::Unverified { reason } => panic!("expected verified: {reason}"),
    }
}

#[tokio::test]
async fn the_plan_is_made_from_guardduty_s_copy() {
    let s = setup().await;
    // The event claims an exempt tag and another profile; GuardDuty's copy has neither.
    let mut claimed = s.event.clone();
    let details = &mut claimed["detail"]["resource"]["instanceDetails"];
    details["tags"] = json!([{"key": "guardduty-responder:exempt", "value": "true"}]);
    details["iamInstanceProfile"]["arn"] = json!("arn:aws:iam::1:instance-profile/admin");
    let (copy, sample) = verified(s.fixed().verify(&finding(&claimed)).await.expect("verify"));
    assert!(!sample);
    let tags: Vec<(String, String)> = copy
        .instance_tags()
        .iter()
        .map(|t| (t.key.clone(), t.value.clone()))
        .collect();
    assert_eq!(
        tags,
        vec![
            ("Name".to_owned(), "web-1".to_owned()),
            ("env".to_owned(), "prod".to_owned())
        ]
    );
    let profile = copy
        .instance
        .as_ref()
        .and_then(|i| i.iam_instance_profile.as_ref())
        .and_then(|p| p.arn.clone());
    assert_eq!(
        profile.as_deref(),
        Some("arn:aws:iam::111122223333:instance-profile/web-app")
    );
    assert_eq!(copy.account_id.as_deref(), Some(s.account.as_str()));
    // One GetFindings to the configured detector, none to the ARN's, no ListDetectors.
    assert_eq!(s.endpoint.calls(Operation::GetFindings), 1);
    assert_eq!(s.endpoint.calls(Operation::ListDetectors), 0);
    let requests = s.endpoint.requests();
    assert!(
        requests
            .iter()
            .all(|r| r.detector.as_deref() == Some(DETECTOR) && r.account == s.account),
        "{requests:?}"
    );
    assert_eq!(requests[0].body, json!({"findingIds": [s.id()]}));
}

#[tokio::test]
async fn an_invented_finding_is_unverified_after_every_attempt() {
    let s = setup().await;
    let mut invented = s.event.clone();
    invented["detail"]["id"] = json!("0123456789abcdef0123456789abcdef");
    let reason = unverified(
        s.fixed()
            .verify(&finding(&invented))
            .await
            .expect("not found is no error"),
    );
    assert!(reason.contains("not found"), "{reason}");
    assert!(reason.contains("after 3 GetFindings calls"), "{reason}");
    assert_eq!(s.endpoint.calls(Operation::GetFindings), 3);

    // The policy decides the count.
    let once = s.verifier(DetectorSource::Fixed(DETECTOR.to_owned()), fast(1));
    unverified(once.verify(&finding(&invented)).await.expect("verify"));
    assert_eq!(s.endpoint.calls(Operation::GetFindings), 4);
}

#[tokio::test]
async fn a_finding_that_appears_on_the_second_call_is_verified() {
    let s = setup().await;
    s.endpoint.appear_after(&s.id(), 1);
    let (copy, _) = verified(s.fixed().verify(&finding(&s.event)).await.expect("verify"));
    assert_eq!(copy.id, s.id());
    assert_eq!(s.endpoint.calls(Operation::GetFindings), 2);
}

#[tokio::test]
async fn archived_findings_are_unverified_until_unarchived() {
    let s = setup().await;
    let verifier = s.fixed();
    s.endpoint.set_archived(DETECTOR, &s.id(), true);
    let reason = unverified(verifier.verify(&finding(&s.event)).await.expect("verify"));
    assert!(reason.contains("archived"), "{reason}");
    // Archived in GuardDuty although the event says it is not: GuardDuty wins.
    assert_eq!(s.event["detail"]["service"]["archived"], json!(false));

    // The endpoint's Unarchive and Archive operations, through the SDK.
    s.client
        .unarchive_findings()
        .detector_id(DETECTOR)
        .finding_ids(s.id())
        .send()
        .await
        .expect("unarchive");
    verified(verifier.verify(&finding(&s.event)).await.expect("verify"));
    s.client
        .archive_findings()
        .detector_id(DETECTOR)
        .finding_ids(s.id())
        .send()
        .await
        .expect("archive");
    unverified(verifier.verify(&finding(&s.event)).await.expect("verify"));
}

#[tokio::test]
async fn a_copy_that_differs_is_unverified_naming_the_field() {
    let s = setup().await;
    let verifier = s.fixed();
    let cases: [(&str, &str, Value, &str); 4] = [
        ("type", "/type", json!("Recon:EC2/Portscan"), "type"),
        ("account", "/accountId", json!("444455556666"), "accountId"),
        (
            "instance",
            "/resource/instanceDetails/instanceId",
            json!("i-0fedcba9876543210"),
            "resource.instanceDetails.instanceId",
        ),
        ("region", "/region", json!("eu-west-1"), "region"),
    ];
    for (what, pointer, value, field) in cases {
        let original = s.endpoint.finding(DETECTOR, &s.id()).expect("copy");
        s.edit_copy(|copy| *copy.pointer_mut(pointer).expect(pointer) = value.clone());
        let reason = unverified(verifier.verify(&finding(&s.event)).await.expect("verify"));
        assert!(reason.contains(field), "{what}: {reason}");
        assert!(
            reason.contains(&value.as_str().expect("str").to_string()),
            "{what}: {reason}"
        );
        s.endpoint.put_finding(DETECTOR, original);
    }
    // And put back, the same finding verifies: the checks above were not vacuous.
    verified(verifier.verify(&finding(&s.event)).await.expect("verify"));
}

#[tokio::test]
async fn sample_findings_are_verified_as_samples() {
    let s = setup().await;
    let verifier = s.fixed();
    // As GetFindings answers: inside `value`, a JSON document in a string.
    s.edit_copy(|copy| {
        copy["service"]["additionalInfo"] =
            json!({"value": "{\"threatListName\":\"GeneratedFindingThreatListName\",\"sample\":true}", "type": "default"});
    });
    let (_, sample) = verified(verifier.verify(&finding(&s.event)).await.expect("verify"));
    assert!(sample);
    // As EventBridge writes it: a member.
    s.edit_copy(|copy| copy["service"]["additionalInfo"] = json!({"sample": true}));
    let (_, sample) = verified(verifier.verify(&finding(&s.event)).await.expect("verify"));
    assert!(sample);
    // The event saying "sample" does not make GuardDuty's copy one.
    s.edit_copy(|copy| {
        copy["service"]["additionalInfo"] = json!({"value": "{}", "type": "default"})
    });
    let mut claimed = s.event.clone();
    claimed["detail"]["service"]["additionalInfo"] = json!({"sample": true});
    let (_, sample) = verified(verifier.verify(&finding(&claimed)).await.expect("verify"));
    assert!(!sample);
}

#[tokio::test]
async fn the_detector_is_discovered_once() {
    let s = setup().await;
    // Another account's detector is not listed to this one.
    s.endpoint
        .add_detector(DEFAULT_ACCOUNT, "ffffffffffffffffffffffffffffffff");
    let verifier = s.verifier(DetectorSource::Discover, fast(3));
    verified(verifier.verify(&finding(&s.event)).await.expect("verify"));
    verified(verifier.verify(&finding(&s.event)).await.expect("verify"));
    assert_eq!(verifier.detector_id().await.expect("detector"), DETECTOR);
    assert_eq!(s.endpoint.calls(Operation::ListDetectors), 1);
    assert_eq!(s.endpoint.calls(Operation::GetFindings), 2);
}

#[tokio::test]
async fn no_detector_is_an_error() {
    let endpoint = FindingsEndpoint::start();
    let account = fresh_account();
    let config = sdk_config(endpoint.url()).await;
    let verifier = Verifier::new(
        endpoint.client(&config, &account),
        DetectorSource::Discover,
        fast(3),
    );
    let err = verifier
        .verify(&finding(&event(&account)))
        .await
        .expect_err("no detector");
    assert!(matches!(err, VerifyError::NoDetector { .. }), "{err:?}");
    assert!(err.to_string().contains(REGION), "{err}");
    assert_eq!(endpoint.calls(Operation::GetFindings), 0);

    // The failure is not cached: once GuardDuty is enabled, the next call finds it.
    endpoint.add_detector(&account, DETECTOR);
    endpoint.put_event_finding(DETECTOR, &event(&account));
    verified(
        verifier
            .verify(&finding(&event(&account)))
            .await
            .expect("verify"),
    );
    assert_eq!(endpoint.calls(Operation::ListDetectors), 2);
}

#[tokio::test]
async fn several_detectors_without_detector_id_is_an_error() {
    let s = setup().await;
    let other = "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f";
    s.endpoint.add_detector(&s.account, other);
    let err = s
        .verifier(DetectorSource::Discover, fast(3))
        .verify(&finding(&s.event))
        .await
        .expect_err("two detectors");
    let text = err.to_string();
    assert!(
        matches!(&err, VerifyError::SeveralDetectors { ids, .. } if ids.len() == 2),
        "{err:?}"
    );
    assert!(
        text.contains(DETECTOR) && text.contains(other) && text.contains("DETECTOR_ID"),
        "{text}"
    );
    assert_eq!(s.endpoint.calls(Operation::GetFindings), 0);
    // DETECTOR_ID settles it.
    verified(s.fixed().verify(&finding(&s.event)).await.expect("verify"));
}

#[tokio::test]
async fn a_detector_of_another_account_is_refused() {
    let s = setup().await;
    let verifier = s.verifier(DetectorSource::Fixed(ARN_DETECTOR.to_owned()), fast(3));
    let err = verifier
        .verify(&finding(&s.event))
        .await
        .expect_err("unknown detector");
    match &err {
        VerifyError::Api { operation, error } => {
            assert_eq!(*operation, "GetFindings");
            assert_eq!(error.code, "BadRequestException", "{err}");
        }
        other => panic!("{other:?}"),
    }
    // A client error is not retried, by the SDK or by the not-found policy.
    assert_eq!(s.endpoint.calls(Operation::GetFindings), 1);
}

#[tokio::test]
async fn server_errors_are_retried_by_the_sdk_then_fail_the_invocation() {
    let s = setup().await;
    let verifier = s.fixed();
    s.endpoint.fail_next(
        Operation::GetFindings,
        1,
        500,
        "InternalServerErrorException",
    );
    verified(
        verifier
            .verify(&finding(&s.event))
            .await
            .expect("one 500 is retried"),
    );
    assert_eq!(s.endpoint.calls(Operation::GetFindings), 2);

    s.endpoint.fail_next(
        Operation::GetFindings,
        100,
        500,
        "InternalServerErrorException",
    );
    let err = verifier
        .verify(&finding(&s.event))
        .await
        .expect_err("persistent 500s");
    match &err {
        VerifyError::Api { error, .. } => assert_eq!(error.code, "InternalServerErrorException"),
        other => panic!("{other:?}"),
    }
    // The SDK's 3 attempts, and no not-found retry on top.
    assert_eq!(s.endpoint.calls(Operation::GetFindings), 5);

    s.endpoint
        .fail_next(Operation::GetFindings, 100, 429, "TooManyRequestsException");
    let err = verifier
        .verify(&finding(&s.event))
        .await
        .expect_err("throttled");
    assert!(
        err.to_string().contains("TooManyRequestsException"),
        "{err}"
    );
    assert_eq!(s.endpoint.calls(Operation::GetFindings), 8);

    s.endpoint
        .fail_next(Operation::GetFindings, 100, 403, "AccessDeniedException");
    let err = verifier
        .verify(&finding(&s.event))
        .await
        .expect_err("denied");
    assert!(err.to_string().contains("AccessDeniedException"), "{err}");
    assert_eq!(s.endpoint.calls(Operation::GetFindings), 9);
}

#[tokio::test]
async fn list_detectors_failures_are_errors() {
    let s = setup().await;
    s.endpoint
        .fail_next(Operation::ListDetectors, 100, 403, "AccessDeniedException");
    let err = s
        .verifier(DetectorSource::Discover, fast(3))
        .verify(&finding(&s.event))
        .await
        .expect_err("denied");
    assert!(
        matches!(
            &err,
            VerifyError::Api {
                operation: "ListDetectors",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn list_findings_filters_archived_and_paginates() {
    let s = setup().await;
    for n in 0..3 {
        let mut other = s.event["detail"].clone();
        other["id"] = json!(format!("{n}{}", s.id()));
        s.endpoint.put_finding(DETECTOR, other);
    }
    s.endpoint
        .set_archived(DETECTOR, &format!("1{}", s.id()), true);
    let criteria = aws_sdk_guardduty::types::FindingCriteria::builder()
        .criterion(
            "service.archived",
            aws_sdk_guardduty::types::Condition::builder()
                .equals("false")
                .build(),
        )
        .build();
    let mut ids = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let page = s
            .client
            .list_findings()
            .detector_id(DETECTOR)
            .finding_criteria(criteria.clone())
            .max_results(2)
            .set_next_token(token)
            .send()
            .await
            .expect("list");
        pages += 1;
        ids.extend(page.finding_ids().iter().cloned());
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, 2);
    assert_eq!(
        ids,
        vec![s.id(), format!("0{}", s.id()), format!("2{}", s.id())]
    );
}

/// The endpoint from a plain thread, over raw HTTP: GuardDuty's error format.
#[test]
fn sync_callers_get_guardduty_errors() {
    let endpoint = FindingsEndpoint::start();
    let addr = endpoint.url().trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let body = r#"{"findingIds":["x"]}"#;
    write!(
        stream,
        "POST /detector/nope/findings/get HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(
        answer.contains("x-amzn-ErrorType: BadRequestException"),
        "{answer}"
    );
    let json: Value =
        serde_json::from_str(answer.split("\r\n\r\n").nth(1).expect("body")).expect("JSON body");
    assert_eq!(json["__type"], "BadRequestException");
    assert!(
        json["message"]
            .as_str()
            .expect("message")
            .contains("detectorId")
    );
    assert_eq!(endpoint.calls(Operation::GetFindings), 1);
    assert_eq!(endpoint.requests()[0].account, DEFAULT_ACCOUNT);
}

/// Every camelCase finding of the vendored corpus (GetFindings, S3 export and
/// console shapes, as AWS wrote them), served as GuardDuty's copy: the SDK accepts
/// the answer, the copy verifies against itself, and `sample` is the copy's.
#[tokio::test]
async fn corpus_findings_verify_against_themselves() {
    let endpoint = FindingsEndpoint::start();
    let account = fresh_account();
    endpoint.add_detector(&account, DETECTOR);
    let config = sdk_config(endpoint.url()).await;
    let verifier = Verifier::new(
        endpoint.client(&config, &account),
        DetectorSource::Fixed(DETECTOR.to_owned()),
        fast(1),
    );
    let dir = workspace_root().join("tests/corpus/findings");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let (mut checked, mut samples) = (0, 0);
    for path in files {
        let value: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("JSON");
        if value.get("id").and_then(Value::as_str).is_none() {
            continue; // PascalCase (CLI output): GuardDuty's API never answers so.
        }
        let event = responder_core::decode_value(value.clone())
            .expect("decodes")
            .remove(0)
            .expect("a finding");
        endpoint.put_finding(DETECTOR, value);
        let name = path.display();
        match verifier.verify(&event).await {
            Ok(Verification::Verified { finding, sample }) => {
                assert_eq!(finding.id, event.id, "{name}");
                assert_eq!(sample, event.is_sample(), "{name}");
                samples += usize::from(sample);
            }
            Ok(Verification::Unverified { reason }) => {
                // Only an archived copy may fail against itself.
                assert!(
                    event.archived && reason.contains("archived"),
                    "{name}: {reason}"
                );
            }
            Err(e) => panic!("{name}: {e}"),
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} camelCase corpus findings");
    // One call each: an answer the SDK's types reject is not retried, it is read.
    assert_eq!(endpoint.calls(Operation::GetFindings), checked);
    assert!(
        samples >= 2,
        "only {samples} sample findings among {checked}"
    );
}
