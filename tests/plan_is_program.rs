//! The plan is the program: each shipped playbook's plan is run through the executor
//! on moto, and every planned resource name, tag and parameter is read back from moto
//! and compared with what the plan said. The `match` over [`Action`] has no catch-all
//! arm, so a new step does not compile until this test checks it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use aws_sdk_ec2::types::Filter;
use responder_aws::{ExecOptions, Executor, Outcome, Report, StepReport};
use responder_core::playbook::Mode;
use responder_core::steps::Action;
use responder_core::steps::Settings;
use responder_core::steps::relaunch::MetadataTokens;
use responder_core::{Finding, Plan};
use responder_tests::finding::{event_about, finding};
use responder_tests::guardduty::FindingsEndpoint;
use responder_tests::moto::workspace_root;
use responder_tests::playbooks::shipped_engine;
use responder_tests::read;
use responder_tests::{Fixture, FixtureOptions};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------
// helpers

fn pretty(report: &Report) -> String {
    serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{report:?} ({e})"))
}

fn step<'a>(report: &'a Report, action: &str) -> &'a StepReport {
    report
        .steps
        .iter()
        .find(|s| s.action == action)
        .unwrap_or_else(|| panic!("no {action} step in the report:\n{}", pretty(report)))
}

fn assert_done_or_already(report: &Report, action: &str) {
    let s = step(report, action);
    assert!(
        matches!(s.outcome, Outcome::Done | Outcome::AlreadyDone { .. }),
        "{action} is neither done nor already-done:\n{}",
        pretty(report)
    );
}

/// The event the finding file makes about the fixture, with `edit` applied to its
/// `detail` (to point a constructed finding at another playbook).
fn event(file: &str, f: &Fixture, edit: impl FnOnce(&mut Value)) -> Value {
    let mut e = event_about(file, f);
    edit(e.get_mut("detail").expect("detail"));
    e
}

fn set(detail: &mut Value, pointer: &str, value: Value) {
    *detail
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("no {pointer} in the finding")) = value;
}

/// The plan of the shipped engine (with the settings), answered by `playbook`, in
/// enforce mode.
fn plan(fd: &Finding, settings: Settings, playbook: &str) -> Plan {
    let mut plan = shipped_engine()
        .with_settings(settings)
        .plan(fd, false)
        .unwrap_or_else(|e| panic!("no plan for {}: {e}", fd.id));
    assert_eq!(
        plan.playbook.as_deref(),
        Some(playbook),
        "{}",
        plan.decision
    );
    assert!(!plan.steps.is_empty(), "{playbook} plans no step");
    plan.mode = Some(Mode::Enforce);
    plan
}

/// Every snapshot of the fixture's volumes.
async fn snapshots_of_volumes(f: &Fixture) -> Vec<aws_sdk_ec2::types::Snapshot> {
    let out = f
        .ec2()
        .describe_snapshots()
        .owner_ids(&f.account)
        .filters(
            Filter::builder()
                .name("volume-id")
                .set_values(Some(f.volumes.clone()))
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeSnapshots: {e:?}"));
    out.snapshots().to_vec()
}

fn tokens(t: &MetadataTokens) -> &'static str {
    match t {
        MetadataTokens::Required => "required",
        MetadataTokens::Optional => "optional",
    }
}

fn assert_carries(
    what: &str,
    actual: &std::collections::BTreeMap<String, String>,
    planned: &std::collections::BTreeMap<String, String>,
) {
    for (k, v) in planned {
        assert_eq!(
            actual.get(k),
            Some(v),
            "{what} lacks the planned tag {k}={v}: {actual:?}"
        );
    }
}

/// Runs the plan and checks, step by step, that what moto holds is what was planned.
/// Returns the quarantine group names the isolate steps used.
async fn run_and_check(f: &Fixture, fd: &Finding, plan: &Plan) -> Vec<String> {
    // moto has no StartMalwareScan: GuardDuty is the local endpoint.
    let gd = FindingsEndpoint::start();
    let mut clients = f.clients();
    clients.guardduty = gd.client(&f.config, &f.account);
    let report = Executor::new(clients, ExecOptions::default())
        .respond(fd, plan)
        .await;
    assert!(
        !report.is_failure() && report.steps.iter().all(|s| !s.outcome.is_failure()),
        "report:\n{}",
        pretty(&report)
    );
    let ec2 = f.ec2();
    let mut quarantine = Vec::new();
    for planned in &plan.steps {
        let name = planned.action.name();
        let s = step(&report, name);
        match &planned.action {
            Action::Isolate(p) => {
                assert_eq!(p.instance_id, f.instance_id);
                assert_done_or_already(&report, name);
                let groups = read::groups_named(&ec2, &f.vpc_id, &p.quarantine_group).await;
                assert_eq!(
                    groups.len(),
                    1,
                    "one group named {} in {}: {groups:?}",
                    p.quarantine_group,
                    f.vpc_id
                );
                let q = groups[0].group_id().expect("group id").to_owned();
                let by_eni = read::groups_of_enis(&ec2, &f.enis).await;
                assert_eq!(by_eni.len(), f.enis.len(), "{by_eni:?}");
                for (eni, g) in &by_eni {
                    // moto reports an attached ENI's groups as its own plus the
                    // instance's `security_groups`, which it fills only for instances
                    // launched from a launch template (the Auto Scaling fixture): there
                    // the original group stays listed whatever the ENI holds.
                    if f.auto_scaling_group.is_some() {
                        assert!(
                            g.contains(&q),
                            "ENI {eni} is in {g:?}, not in the planned group {} ({q})",
                            p.quarantine_group
                        );
                    } else {
                        assert_eq!(
                            g,
                            &vec![q.clone()],
                            "ENI {eni} is in {g:?}, not (only) in the planned group {} ({q})",
                            p.quarantine_group
                        );
                    }
                }
                if let Some(untrack) = &p.untrack_group {
                    let u = read::groups_named(&ec2, &f.vpc_id, untrack).await;
                    assert_eq!(u.len(), 1, "one planned untrack group {untrack}: {u:?}");
                }
                quarantine.push(p.quarantine_group.clone());
            }
            Action::Snapshot(p) => {
                assert_eq!(p.instance_id, f.instance_id);
                assert_done_or_already(&report, name);
                let snaps = snapshots_of_volumes(f).await;
                let covered: BTreeSet<&str> = snaps.iter().filter_map(|s| s.volume_id()).collect();
                let expected: BTreeSet<&str> = f.volumes.iter().map(String::as_str).collect();
                assert_eq!(covered, expected, "a snapshot per volume: {snaps:#?}");
                for snap in &snaps {
                    let tags = snap
                        .tags()
                        .iter()
                        .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                        .collect();
                    assert_carries(
                        &format!("snapshot {}", snap.snapshot_id().unwrap_or("?")),
                        &tags,
                        &p.tags,
                    );
                }
                if p.preserve_volumes {
                    let out = ec2
                        .describe_volumes()
                        .set_volume_ids(Some(f.volumes.clone()))
                        .send()
                        .await
                        .unwrap_or_else(|e| panic!("preserved volumes are gone: {e:?}"));
                    assert_eq!(out.volumes().len(), f.volumes.len(), "{out:?}");
                }
            }
            Action::Terminate(p) => {
                assert_eq!(p.instance_id, f.instance_id);
                assert_done_or_already(&report, name);
                let state = read::instance_state(&ec2, &f.instance_id).await;
                assert!(
                    matches!(state.as_deref(), Some("terminated" | "shutting-down")),
                    "{} is {state:?}",
                    f.instance_id
                );
            }
            Action::Relaunch(p) => {
                assert_eq!(p.instance_id, f.instance_id);
                assert_done_or_already(&report, name);
                let reps = read::replacements(&ec2, &f.instance_id).await;
                assert_eq!(reps.len(), 1, "one replacement: {reps:?}");
                let r = &reps[0];
                let tags = read::instance_tags(&ec2, r).await;
                assert_carries(&format!("replacement {r}"), &tags, &p.tags);
                assert_eq!(
                    read::http_tokens(&ec2, r).await.as_deref(),
                    Some(tokens(&p.metadata_tokens)),
                    "planned metadata_tokens on {r}"
                );
                if !p.associate_public_ip {
                    assert_eq!(read::public_ip(&ec2, r).await, None, "public IP on {r}");
                }
                if let Some(t) = &p.instance_type {
                    let inst = read::instance(&ec2, r).await.expect("replacement");
                    assert_eq!(
                        inst.instance_type().map(|t| t.as_str()),
                        Some(t.as_str()),
                        "planned instance type on {r}"
                    );
                }
            }
            Action::Tag(p) => {
                assert_eq!(p.instance_id, f.instance_id);
                assert_done_or_already(&report, name);
                let tags = read::instance_tags(&ec2, &f.instance_id).await;
                assert_carries(&format!("instance {}", f.instance_id), &tags, &p.tags);
            }
            Action::Protect(p) => {
                assert_eq!(p.instance_id, f.instance_id);
                assert_done_or_already(&report, name);
                if p.termination {
                    assert!(
                        read::disable_api_termination(&ec2, &f.instance_id).await,
                        "termination protection planned, not set"
                    );
                }
                if p.shutdown_behavior_stop {
                    assert_eq!(
                        read::shutdown_behavior(&ec2, &f.instance_id)
                            .await
                            .as_deref(),
                        Some("stop")
                    );
                }
            }
            Action::DetachFromAsg(p) => {
                assert_eq!(p.instance_id, f.instance_id);
                let membership = f
                    .autoscaling()
                    .describe_auto_scaling_instances()
                    .instance_ids(&f.instance_id)
                    .send()
                    .await
                    .unwrap();
                assert!(
                    membership.auto_scaling_instances().is_empty(),
                    "still in a group: {:?}",
                    membership.auto_scaling_instances()
                );
                if let Some(group) = &f.auto_scaling_group {
                    assert_done_or_already(&report, name);
                    let groups = f
                        .autoscaling()
                        .describe_auto_scaling_groups()
                        .auto_scaling_group_names(group)
                        .send()
                        .await
                        .unwrap();
                    let expected = if p.decrement_desired_capacity { 0 } else { 1 };
                    assert_eq!(
                        groups.auto_scaling_groups()[0].desired_capacity(),
                        Some(expected),
                        "planned decrement_desired_capacity={}",
                        p.decrement_desired_capacity
                    );
                }
            }
            Action::DeregisterFromTargetGroups(p) => {
                assert_eq!(p.instance_id, f.instance_id);
                if let Some(arn) = &f.target_group_arn {
                    assert_done_or_already(&report, name);
                    let health = f
                        .elbv2()
                        .describe_target_health()
                        .target_group_arn(arn)
                        .send()
                        .await
                        .unwrap();
                    let targets: Vec<&str> = health
                        .target_health_descriptions()
                        .iter()
                        .filter_map(|t| t.target().and_then(|t| t.id()))
                        .collect();
                    assert!(
                        !targets.contains(&f.instance_id.as_str()),
                        "still registered: {targets:?}"
                    );
                }
            }
            Action::RevokeInstanceProfile(p) => {
                assert_eq!(p.instance_id, f.instance_id);
                assert_done_or_already(&report, name);
                let state = read::profile_association_state(&ec2, &f.instance_id).await;
                assert!(
                    state.is_none() || state.as_deref() == Some("disassociated"),
                    "association left: {state:?}"
                );
            }
            Action::CaptureConsoleOutput(p) => {
                assert_eq!(p.instance_id, f.instance_id);
                match &s.outcome {
                    Outcome::Done => assert!(
                        s.output.as_deref().is_some_and(|o| !o.is_empty()),
                        "done without output:\n{}",
                        pretty(&report)
                    ),
                    Outcome::Skipped { reason } => assert!(!reason.is_empty()),
                    other => panic!("{name}: {other:?}\n{}", pretty(&report)),
                }
            }
            Action::Stop(p) => {
                assert_eq!(p.instance_id, f.instance_id);
                assert_done_or_already(&report, name);
                let state = read::instance_state(&ec2, &f.instance_id).await;
                assert!(
                    matches!(state.as_deref(), Some("stopped" | "stopping")),
                    "{state:?}"
                );
            }
            Action::Release(p) => {
                // No shipped playbook releases; only the report is checked.
                assert_eq!(p.instance_id, f.instance_id);
                assert_done_or_already(&report, name);
            }
            Action::ArchiveFinding(p) => {
                // No shipped playbook archives; only the report is checked.
                assert_eq!(p.finding_id, fd.id);
                if p.detector_id.is_some() {
                    assert_done_or_already(&report, name);
                }
            }
            Action::Scan(p) => {
                assert_eq!(p.instance_id, f.instance_id);
                let scans = gd.scans();
                match &p.skip_reason {
                    Some(why) => {
                        assert!(
                            matches!(&s.outcome, Outcome::Skipped { reason } if reason == why),
                            "scan planned as skipped:\n{}",
                            pretty(&report)
                        );
                        assert!(scans.is_empty(), "{scans:?}");
                    }
                    None => {
                        assert_done_or_already(&report, name);
                        assert_eq!(
                            p.resource_arn,
                            format!(
                                "arn:aws:ec2:{}:{}:instance/{}",
                                responder_tests::account::REGION,
                                f.account,
                                f.instance_id
                            )
                        );
                        assert_eq!(scans.len(), 1, "{scans:?}");
                        assert_eq!(scans[0].resource_arn, p.resource_arn);
                        assert_eq!(scans[0].client_token, p.client_token);
                    }
                }
            }
            Action::BlockRemoteIp(p) => {
                // This runner has no ledger, and without one nothing would expire the
                // entries: none is added (tests/executor/block_remote_ip.rs runs the
                // step with a ledger and reads the entries back).
                assert_eq!(p.instance_id, f.instance_id);
                let reason = match &s.outcome {
                    Outcome::Skipped { reason } => reason.clone(),
                    other => panic!("block-remote-ip without a ledger: {other:?}"),
                };
                if p.cidrs.is_empty() {
                    assert!(reason.contains("no remote address"), "{reason}");
                } else {
                    assert!(reason.contains("no ledger"), "{reason}");
                }
                let acls = ec2
                    .describe_network_acls()
                    .filters(Filter::builder().name("vpc-id").values(&f.vpc_id).build())
                    .send()
                    .await
                    .unwrap();
                for acl in acls.network_acls() {
                    for e in acl.entries() {
                        let rule = e.rule_number().unwrap_or_default();
                        assert!(
                            rule == 100 || rule >= 32767,
                            "an entry was added without a ledger: {e:?}"
                        );
                    }
                }
            }
            Action::Notify(p) => match &p.topic_arn {
                // No topic planned and none configured in the executor: skipped, said why.
                None => assert!(
                    matches!(&s.outcome, Outcome::Skipped { reason } if !reason.is_empty()),
                    "notify without a topic:\n{}",
                    pretty(&report)
                ),
                Some(_) => assert_done_or_already(&report, name),
            },
        }
    }
    quarantine
}

// ---------------------------------------------------------------------------------
// one case per shipped playbook

/// Every shipped playbook file, by name (the file stem is the playbook's name).
fn shipped_playbooks() -> BTreeSet<String> {
    std::fs::read_dir(workspace_root().join("playbooks"))
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            (p.extension().and_then(|x| x.to_str()) == Some("yaml"))
                .then(|| p.file_stem().unwrap().to_string_lossy().into_owned())
        })
        .collect()
}

/// The shipped playbooks this file runs; see [`every_shipped_playbook_has_a_case`].
const COVERED: &[&str] = &[
    "crypto-mining-ec2",
    "unusual-network-behaviour-ec2",
    "command-and-control-ec2",
    "instance-as-attacker-ec2",
    "flooding-instance-ec2",
    "instance-credential-exfiltration",
    "low-severity-probes-ec2",
    "exposed-instance-ec2",
    "runtime-execution-ec2",
    "runtime-suspicious-process-ec2",
    "runtime-low-severity-ec2",
    "malware-ec2",
    "suspicious-file-ec2",
    "attack-sequence-ec2",
];

#[test]
fn every_shipped_playbook_has_a_case() {
    let covered: BTreeSet<String> = COVERED.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(
        shipped_playbooks(),
        covered,
        "a shipped playbook was added or removed: give it a case in this file"
    );
}

async fn case(options: FixtureOptions, playbook: &str, file: &str, edit: impl FnOnce(&mut Value)) {
    let f = Fixture::new(options).await;
    let fd = finding(&event(file, &f, edit));
    let plan = plan(&fd, Settings::default(), playbook);
    run_and_check(&f, &fd, &plan).await;
}

#[tokio::test]
async fn crypto_mining_ec2_does_what_it_plans() {
    case(
        FixtureOptions::default(),
        "crypto-mining-ec2",
        "bitcoin-dns.json",
        |_| {},
    )
    .await;
}

#[tokio::test]
async fn unusual_network_behaviour_ec2_does_what_it_plans() {
    case(
        FixtureOptions::default(),
        "unusual-network-behaviour-ec2",
        "network-port-unusual.json",
        |_| {},
    )
    .await;
}

// The test-case findings of the next playbooks are bare or PascalCase samples that
// `event_about` cannot rewrite, so the EventBridge example is given their type (and
// role and severity) instead.

#[tokio::test]
async fn command_and_control_ec2_does_what_it_plans() {
    case(
        FixtureOptions {
            auto_scaling_group: true,
            target_group: true,
        },
        "command-and-control-ec2",
        "bitcoin-dns.json",
        |d| set(d, "/type", json!("Backdoor:EC2/C&CActivity.B!DNS")),
    )
    .await;
}

#[tokio::test]
async fn instance_as_attacker_ec2_does_what_it_plans() {
    case(
        FixtureOptions {
            auto_scaling_group: true,
            ..FixtureOptions::default()
        },
        "instance-as-attacker-ec2",
        "bitcoin-dns.json",
        |d| {
            set(d, "/type", json!("Recon:EC2/Portscan"));
            set(d, "/service/resourceRole", json!("ACTOR"));
        },
    )
    .await;
}

/// A flood in either resource role: the instance is the sender.
#[tokio::test]
async fn flooding_instance_ec2_does_what_it_plans() {
    case(
        FixtureOptions {
            auto_scaling_group: true,
            ..FixtureOptions::default()
        },
        "flooding-instance-ec2",
        "bitcoin-dns.json",
        |d| {
            set(d, "/type", json!("Backdoor:EC2/DenialOfService.Udp"));
            set(d, "/service/resourceRole", json!("TARGET"));
        },
    )
    .await;
}

#[tokio::test]
async fn instance_credential_exfiltration_does_what_it_plans() {
    case(
        FixtureOptions::default(),
        "instance-credential-exfiltration",
        "bitcoin-dns.json",
        |d| {
            set(
                d,
                "/type",
                json!("UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS"),
            );
        },
    )
    .await;
}

#[tokio::test]
async fn low_severity_probes_ec2_does_what_it_plans() {
    case(
        FixtureOptions::default(),
        "low-severity-probes-ec2",
        "bitcoin-dns.json",
        |d| {
            set(d, "/type", json!("Recon:EC2/PortProbeUnprotectedPort"));
            set(d, "/severity", json!(2));
        },
    )
    .await;
}

#[tokio::test]
async fn exposed_instance_ec2_does_what_it_plans() {
    case(
        FixtureOptions::default(),
        "exposed-instance-ec2",
        "bitcoin-dns.json",
        |d| {
            set(d, "/type", json!("Recon:EC2/PortProbeEMRUnprotectedPort"));
            set(d, "/severity", json!(8));
        },
    )
    .await;
}

#[tokio::test]
async fn runtime_execution_ec2_does_what_it_plans() {
    case(
        FixtureOptions::default(),
        "runtime-execution-ec2",
        "runtime-reverse-shell.json",
        |_| {},
    )
    .await;
}

#[tokio::test]
async fn runtime_suspicious_process_ec2_does_what_it_plans() {
    case(
        FixtureOptions::default(),
        "runtime-suspicious-process-ec2",
        "runtime-process-injection.json",
        |_| {},
    )
    .await;
}

#[tokio::test]
async fn runtime_low_severity_ec2_does_what_it_plans() {
    case(
        FixtureOptions::default(),
        "runtime-low-severity-ec2",
        "runtime-suspicious-tool-low.json",
        |_| {},
    )
    .await;
}

#[tokio::test]
async fn malware_ec2_does_what_it_plans() {
    case(
        FixtureOptions::default(),
        "malware-ec2",
        "malware-ec2.json",
        |_| {},
    )
    .await;
}

#[tokio::test]
async fn suspicious_file_ec2_does_what_it_plans() {
    case(
        FixtureOptions::default(),
        "suspicious-file-ec2",
        "malware-ec2.json",
        |d| set(d, "/type", json!("Execution:EC2/SuspiciousFile")),
    )
    .await;
}

/// The sequence is about the fixture's instance: its one section is run and checked
/// as the plan of that member, then the steps run once for the sequence.
#[tokio::test]
async fn attack_sequence_ec2_does_what_it_plans() {
    let f = Fixture::new(FixtureOptions::default()).await;
    let id = f.instance_id.clone();
    let fd = finding(&event("attack-sequence-ec2.json", &f, |d| {
        set(
            d,
            "/service/detection/sequence/resources",
            json!([{"uid": id, "resourceType": "EC2_INSTANCE"}]),
        );
        set(d, "/service/detection/sequence/signals", json!([]));
    }));
    let plan = plan(&fd, Settings::default(), "attack-sequence-ec2");
    let sequence = plan.sequence.clone().expect("a sequence plan");
    assert_eq!(sequence.sections.len(), 1);
    for section in &sequence.sections {
        assert_eq!(section.instance_id, f.instance_id);
        let member = responder_core::sequence::member_finding(&fd, &section.instance_id);
        let member_plan = Plan {
            instance_id: Some(section.instance_id.clone()),
            steps: section.steps.clone(),
            sequence: None,
            ..plan.clone()
        };
        run_and_check(&f, &member, &member_plan).await;
    }
    let once = Plan {
        sequence: None,
        ..plan
    };
    run_and_check(&f, &fd, &once).await;
}

// ---------------------------------------------------------------------------------
// settings

#[tokio::test]
async fn the_quarantine_group_setting_is_the_group_used() {
    let f = Fixture::new(FixtureOptions::default()).await;
    let fd = finding(&event("bitcoin-dns.json", &f, |_| {}));
    let settings = Settings {
        quarantine_group: Some("corp-quarantine".to_owned()),
        ..Settings::default()
    };
    let plan = plan(&fd, settings, "crypto-mining-ec2");
    let used = run_and_check(&f, &fd, &plan).await;
    assert_eq!(used, vec!["corp-quarantine".to_owned()]);
    let default = read::groups_named(&f.ec2(), &f.vpc_id, read::QUARANTINE_GROUP).await;
    assert!(
        default.is_empty(),
        "the default quarantine group was created too: {default:?}"
    );
}
