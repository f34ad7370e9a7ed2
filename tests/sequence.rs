//! An attack sequence answered across its instances, against moto: the fan-out of
//! `AttackSequence:EC2/CompromisedInstanceGroup` through the whole answer
//! (verification against GuardDuty's copy on the local findings endpoint, the
//! ledger, the blast-radius budget), with three instances, one of them already
//! terminated, and a budget smaller than the group. Delivered twice, no action is
//! taken twice.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use responder_aws::ledger::Ledger;
use responder_aws::responder::{Answer, Responder};
use responder_aws::{DetectorSource, ExecOptions, Executor, Report, RetryPolicy, Status};
use responder_core::Engine;
use responder_core::playbook::load_str;
use responder_tests::fault::{Fault, FaultProxy};
use responder_tests::finding::{event_about, finding};
use responder_tests::fixture::{LEDGER_TABLE, describe_enis};
use responder_tests::{FindingsEndpoint, Fixture, FixtureOptions, account, dynamodb, moto};
use serde_json::{Value, json};

const DETECTOR: &str = "12abc34d567e8fa901bc2d34e56789f0";

/// Isolate and tag every member (reversible), stop it (irreversible: counted
/// against the budget), notify once.
const PLAYBOOK: &str = r#"
name: sequence-test
description: fan-out test
priority: 100
mode: enforce
match:
  finding_types: ["AttackSequence:EC2/CompromisedInstanceGroup"]
  resource_types: [AttackSequence]
exclude:
  - tags: ["guardduty-responder:exempt=true"]
limits:
  max_instances: 5
steps:
  - isolate: {}
  - tag:
      tags:
        incident-response:status: contained
  - stop: {}
  - notify: {}
"#;

/// Launches one more instance beside the fixture's, in its subnet and group.
async fn launch(f: &Fixture) -> String {
    f.ec2()
        .run_instances()
        .image_id(&f.image_id)
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        // An ENI spec, like the fixture's: moto adds run_instances' own groups to
        // every ENI it describes, whatever the ENI's groups are.
        .network_interfaces(
            aws_sdk_ec2::types::InstanceNetworkInterfaceSpecification::builder()
                .device_index(0)
                .subnet_id(&f.subnet_id)
                .groups(&f.group_a)
                .build(),
        )
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .expect("RunInstances")
        .instances()
        .first()
        .and_then(|i| i.instance_id())
        .expect("an instance id")
        .to_owned()
}

/// The shipped attack-sequence example about these instances: each an
/// `EC2_INSTANCE` resource, the last one also only in a signal, plus one forged id.
fn sequence_event(f: &Fixture, instances: &[&str]) -> Value {
    let mut event = event_about("attack-sequence-ec2.json", f);
    let seq = event
        .pointer_mut("/detail/service/detection/sequence")
        .expect("the example has a sequence");
    let resource = |id: &str| {
        json!({"uid": id, "name": id, "accountId": f.account, "resourceType": "EC2_INSTANCE",
               "region": "us-east-1", "service": "EC2", "cloudPartition": "aws",
               "data": {"ec2Instance": {"instanceState": "running", "instanceType": "t3.micro"}}})
    };
    let (last, first) = instances.split_last().expect("instances");
    let mut resources: Vec<Value> = first.iter().map(|i| resource(i)).collect();
    resources.push(
        json!({"uid": "arn:aws:iam::1:instance-profile/web", "resourceType": "IAM_INSTANCE_PROFILE",
        "data": {"iamInstanceProfile": {"ec2InstanceUids": instances}}}),
    );
    seq["resources"] = Value::Array(resources);
    seq["signals"] = json!([
        {"uid": "s1", "type": "FINDING", "name": "CryptoCurrency:EC2/BitcoinTool.B!DNS",
         "resourceUids": [last, "i-*"]}
    ]);
    event
}

/// An SNS topic in the fixture's account, for `notify`.
async fn topic(f: &Fixture) -> String {
    f.clients()
        .sns
        .create_topic()
        .name("guardduty-responder-sequence")
        .send()
        .await
        .expect("CreateTopic")
        .topic_arn()
        .expect("a topic ARN")
        .to_owned()
}

fn responder(
    f: &Fixture,
    gd: &FindingsEndpoint,
    ledger: Ledger,
    budget: u32,
    topic: &str,
) -> Responder {
    let options = ExecOptions {
        dry_run: false,
        topic_arn: Some(topic.to_owned()),
    };
    responder_over(f.clients(), f, gd, ledger, budget, options)
}

/// [`responder`] over these clients (a fault proxy's).
fn responder_over(
    clients: responder_aws::Clients,
    f: &Fixture,
    gd: &FindingsEndpoint,
    ledger: Ledger,
    budget: u32,
    options: ExecOptions,
) -> Responder {
    let loaded = load_str(Path::new("sequence-test.yaml"), PLAYBOOK).expect("loads");
    let engine = Engine::from_playbooks(vec![loaded]).expect("valid");
    let executor = Executor::new(clients, options).with_ledger(ledger);
    let verifier = responder_aws::Verifier::new(
        gd.client(&f.config, &f.account),
        DetectorSource::Fixed(DETECTOR.to_owned()),
        RetryPolicy::default(),
    );
    Responder::new(engine, executor, Some(verifier), budget)
}

async fn answer(r: &Responder, fd: &responder_core::Finding, owner: &str) -> Report {
    match r.answer(fd, owner).await.expect("answered") {
        Answer::Responded(report) => *report,
        Answer::NoAction { decision, .. } => panic!("no action: {decision}"),
    }
}

fn outcome<'a>(report: &'a Report, instance: &str, action: &str) -> &'a str {
    let section = report
        .sections
        .iter()
        .find(|s| s.instance_id == instance)
        .unwrap_or_else(|| panic!("no section for {instance}"));
    section
        .steps
        .iter()
        .find(|s| s.action == action)
        .map_or("absent", |s| s.outcome.kind())
}

async fn state(f: &Fixture, id: &str) -> String {
    f.ec2()
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .expect("DescribeInstances")
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find_map(|i| {
            i.state()
                .and_then(|s| s.name())
                .map(|n| n.as_str().to_owned())
        })
        .unwrap_or_else(|| "gone".to_owned())
}

#[tokio::test]
async fn a_sequence_is_answered_per_instance_within_the_budget_and_once() {
    let f = Fixture::new(FixtureOptions::default()).await;
    let ledger = f.ledger().await;
    let b = launch(&f).await;
    let c = launch(&f).await;
    f.ec2()
        .terminate_instances()
        .instance_ids(&c)
        .send()
        .await
        .expect("TerminateInstances");
    let mut ids = [f.instance_id.clone(), b.clone(), c.clone()];
    ids.sort();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let event = sequence_event(&f, &refs);
    let gd = FindingsEndpoint::start();
    gd.add_detector(&f.account, DETECTOR);
    gd.put_event_finding(DETECTOR, &event);
    let fd = finding(&event);

    let topic = topic(&f).await;
    let r = responder(&f, &gd, ledger, 1, &topic);
    let report = answer(&r, &fd, "delivery-1").await;
    let pretty = serde_json::to_string_pretty(&report).unwrap_or_default();

    // One section per instance, in instance id order; the forged id is not one.
    let got: Vec<&str> = report
        .sections
        .iter()
        .map(|s| s.instance_id.as_str())
        .collect();
    assert_eq!(got, refs, "{pretty}");
    assert_eq!(report.shared.len(), 1, "{pretty}");
    assert!(!report.is_failure(), "{pretty}");
    assert_eq!(report.status, Status::Withheld, "{pretty}");

    // The terminated one is reported gone; nothing acted on it.
    let gone = report
        .sections
        .iter()
        .find(|s| s.instance_id == c)
        .expect("c");
    assert_eq!(gone.status, Status::InstanceGone, "{pretty}");
    assert_eq!(outcome(&report, &c, "isolate"), "skipped", "{pretty}");

    // Both live ones are isolated: every ENI in the quarantine group, read back.
    for live in [&f.instance_id, &b] {
        assert_eq!(
            outcome(&report, live, "isolate"),
            "done",
            "{live}: {pretty}"
        );
        for eni in describe_enis(&f.ec2(), live).await {
            let names: Vec<&str> = eni.groups.iter().map(|(_, n)| n.as_str()).collect();
            assert_eq!(
                names,
                ["guardduty-responder-quarantine"],
                "{live}: {pretty}"
            );
        }
    }
    // The budget (1) lets one of them be stopped, the first in instance id order
    // (the terminated one takes no place); the other keeps its reversible steps and
    // has the stop withheld.
    let first_live = if f.instance_id < b {
        &f.instance_id
    } else {
        &b
    };
    let stops: Vec<&str> = [&f.instance_id, &b]
        .iter()
        .map(|i| outcome(&report, i, "stop"))
        .collect();
    for (i, stop) in [&f.instance_id, &b].iter().zip(&stops) {
        let want = if *i == first_live { "done" } else { "skipped" };
        assert_eq!(*stop, want, "{i}: {pretty}");
    }
    let mut states = Vec::new();
    for i in [&f.instance_id, &b] {
        states.push(state(&f, i).await);
    }
    assert_eq!(
        states
            .iter()
            .filter(|s| *s == "stopped" || *s == "stopping")
            .count(),
        1,
        "{states:?}"
    );
    // notify ran once, for the sequence, not per instance.
    assert_eq!(report.steps.len(), 1, "{pretty}");
    assert_eq!(report.steps[0].action, "notify");
    assert_eq!(report.steps[0].outcome.kind(), "done", "{pretty}");
    for s in &report.sections {
        assert!(s.steps.iter().all(|s| s.action != "notify"), "{pretty}");
    }

    // Delivered again (another container): nothing is done a second time.
    let ledger = Ledger::new(dynamodb::client(&f.config, &f.account), LEDGER_TABLE);
    let again = answer(&responder(&f, &gd, ledger, 1, &topic), &fd, "delivery-2").await;
    let pretty = serde_json::to_string_pretty(&again).unwrap_or_default();
    assert_eq!(again.sections.len(), 3, "{pretty}");
    for s in &again.sections {
        // `tag` writes the same values again (idempotent, not an action); every
        // other step is answered from live state or the ledger.
        for step in s.steps.iter().filter(|s| s.action != "tag") {
            assert_ne!(
                step.outcome.kind(),
                "done",
                "{} {} repeated: {pretty}",
                s.instance_id,
                step.action
            );
        }
    }
    // The sequence's notify was claimed once in the ledger (keyed under no
    // instance): the redelivery does not publish again.
    assert_eq!(again.steps[0].outcome.kind(), "already-done", "{pretty}");
    let stops_again: Vec<&str> = [&f.instance_id, &b]
        .iter()
        .map(|i| outcome(&again, i, "stop"))
        .collect();
    // The stopped one is answered from the ledger; the other is still withheld
    // (the redelivery gets its first budget decision, not a new place).
    for (first, second) in stops.iter().zip(&stops_again) {
        let expected = if *first == "done" {
            "already-done"
        } else {
            "skipped"
        };
        assert_eq!(*second, expected, "{pretty}");
    }
}

#[tokio::test]
async fn a_member_exempt_by_its_live_tags_is_not_acted_on_and_the_others_are() {
    let f = Fixture::new(FixtureOptions::default()).await;
    let ledger = f.ledger().await;
    let exempt = launch(&f).await;
    // Tagged after detection: the event and GuardDuty's copy know nothing of it.
    f.ec2()
        .create_tags()
        .resources(&exempt)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("guardduty-responder:exempt")
                .value("true")
                .build(),
        )
        .send()
        .await
        .expect("CreateTags");
    let mut ids = [f.instance_id.clone(), exempt.clone()];
    ids.sort();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let event = sequence_event(&f, &refs);
    let gd = FindingsEndpoint::start();
    gd.add_detector(&f.account, DETECTOR);
    gd.put_event_finding(DETECTOR, &event);
    let fd = finding(&event);
    let topic = topic(&f).await;
    let report = answer(&responder(&f, &gd, ledger, 10, &topic), &fd, "d-1").await;
    let pretty = serde_json::to_string_pretty(&report).unwrap_or_default();
    assert!(!report.is_failure(), "{pretty}");
    let section = report
        .sections
        .iter()
        .find(|s| s.instance_id == exempt)
        .expect("a section for the exempt member");
    assert_eq!(section.status, Status::NoAction, "{pretty}");
    assert!(section.steps.is_empty(), "{pretty}");
    assert!(
        section
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("live tags"),
        "{pretty}"
    );
    assert_eq!(state(&f, &exempt).await, "running");
    for eni in describe_enis(&f.ec2(), &exempt).await {
        assert!(
            eni.groups
                .iter()
                .all(|(_, n)| n != "guardduty-responder-quarantine"),
            "{pretty}"
        );
    }
    assert_eq!(
        outcome(&report, &f.instance_id, "isolate"),
        "done",
        "{pretty}"
    );
    assert_eq!(outcome(&report, &f.instance_id, "stop"), "done", "{pretty}");
}

#[tokio::test]
async fn a_failing_member_fails_the_response_without_stopping_the_others() {
    let f = Fixture::new(FixtureOptions::default()).await;
    let ledger = f.ledger().await;
    let b = launch(&f).await;
    let c = launch(&f).await;
    f.ec2()
        .terminate_instances()
        .instance_ids(&c)
        .send()
        .await
        .expect("TerminateInstances");
    let mut ids = [f.instance_id.clone(), b.clone(), c.clone()];
    ids.sort();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let event = sequence_event(&f, &refs);
    let gd = FindingsEndpoint::start();
    gd.add_detector(&f.account, DETECTOR);
    gd.put_event_finding(DETECTOR, &event);
    let fd = finding(&event);
    let topic = topic(&f).await;
    // Every StopInstances is refused: each live member's stop fails.
    let proxy = FaultProxy::start(
        &moto::endpoint(),
        vec![Fault::ec2("StopInstances", "UnauthorizedOperation")],
    )
    .await;
    let config = account::sdk_config(&proxy.endpoint).await;
    let options = ExecOptions {
        dry_run: false,
        topic_arn: Some(topic),
    };
    let r = responder_over(
        account::clients(&config, &f.account),
        &f,
        &gd,
        ledger,
        10,
        options,
    );
    let report = answer(&r, &fd, "d-1").await;
    let pretty = serde_json::to_string_pretty(&report).unwrap_or_default();
    assert!(report.is_failure(), "{pretty}");
    assert_eq!(report.sections.len(), 3, "{pretty}");
    for live in [&f.instance_id, &b] {
        let section = report
            .sections
            .iter()
            .find(|s| &s.instance_id == live)
            .expect("section");
        assert_eq!(section.status, Status::Failed, "{pretty}");
        assert_eq!(outcome(&report, live, "isolate"), "done", "{pretty}");
        assert_eq!(outcome(&report, live, "stop"), "failed", "{pretty}");
        assert_eq!(state(&f, live).await, "running");
    }
    let gone = report
        .sections
        .iter()
        .find(|s| s.instance_id == c)
        .expect("c");
    assert_eq!(gone.status, Status::InstanceGone, "{pretty}");
    // The step run once still ran.
    assert_eq!(report.steps[0].outcome.kind(), "done", "{pretty}");
}
