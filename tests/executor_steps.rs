//! The executor against moto: every step, the two seed cases with the shipped
//! playbooks, redelivery (sequential and concurrent), dry runs and vanished
//! instances. Each test has its own moto account and asserts on the state read back
//! from moto, not only on the report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{AttributeBooleanValue, Filter};
use responder_aws::{ExecOptions, Executor, Outcome, Report, Status, StepReport};
use responder_core::{Finding, Plan};
use responder_tests::fault::{Fault, FaultProxy};
use responder_tests::finding::{
    bitcoin_dns_event, finding, network_port_unusual_event, without_eni,
};
use responder_tests::fixture::describe_enis;
use responder_tests::playbooks::{dry_run_playbook, enforce_playbook, plan_with, shipped_plan};
use responder_tests::read::{self, ORIGINAL_GROUPS_TAG, QUARANTINE_GROUP, UNTRACK_GROUP};
use responder_tests::{Fixture, FixtureOptions, account, moto};
use serde_json::{Value, json};

const FINDING_ID_TAG: &str = "guardduty-responder:finding-id";

// ---------------------------------------------------------------------------------
// helpers

/// A new executor over new clients, as a new Lambda container would have.
fn executor(f: &Fixture) -> Executor {
    Executor::new(f.clients(), ExecOptions::default())
}

async fn respond(f: &Fixture, fd: &Finding, plan: &Plan) -> Report {
    executor(f).respond(fd, plan).await
}

fn step<'a>(report: &'a Report, action: &str) -> &'a StepReport {
    report
        .steps
        .iter()
        .find(|s| s.action == action)
        .unwrap_or_else(|| panic!("no {action} step in the report:\n{}", pretty(report)))
}

fn pretty(report: &Report) -> String {
    serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{report:?} ({e})"))
}

fn assert_status(report: &Report, expected: Status) {
    assert_eq!(report.status, expected, "report:\n{}", pretty(report));
}

fn assert_done(report: &Report, action: &str) {
    let s = step(report, action);
    assert_eq!(s.outcome, Outcome::Done, "{action}:\n{}", pretty(report));
}

fn assert_already_done(report: &Report, action: &str) {
    let s = step(report, action);
    assert!(
        matches!(s.outcome, Outcome::AlreadyDone { .. }),
        "{action} should be already-done on a rerun:\n{}",
        pretty(report)
    );
}

fn assert_not_failed(report: &Report) {
    assert!(
        !report.is_failure() && report.steps.iter().all(|s| !s.outcome.is_failure()),
        "report:\n{}",
        pretty(report)
    );
}

/// The single quarantine group of the fixture's VPC: exists once, has no rules.
async fn quarantine_group(f: &Fixture) -> String {
    let groups = read::groups_named(&f.ec2(), &f.vpc_id, QUARANTINE_GROUP).await;
    assert_eq!(
        groups.len(),
        1,
        "exactly one {QUARANTINE_GROUP} in {}: {groups:?}",
        f.vpc_id
    );
    let g = &groups[0];
    assert!(
        g.ip_permissions().is_empty(),
        "quarantine ingress rules: {:?}",
        g.ip_permissions()
    );
    assert!(
        g.ip_permissions_egress().is_empty(),
        "quarantine egress rules: {:?}",
        g.ip_permissions_egress()
    );
    g.group_id().expect("group id").to_owned()
}

/// Values of the instance's `guardduty-responder:original-groups*` tags, joined.
async fn recorded_groups(f: &Fixture) -> String {
    let tags = read::instance_tags(&f.ec2(), &f.instance_id).await;
    let recorded: Vec<String> = tags
        .iter()
        .filter(|(k, _)| k.starts_with(ORIGINAL_GROUPS_TAG))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    assert!(
        !recorded.is_empty(),
        "no {ORIGINAL_GROUPS_TAG}* tag on {}: {tags:?}",
        f.instance_id
    );
    recorded.join(" ")
}

/// Asserts every fixture ENI is in the quarantine group alone (read by ENI id, so it
/// works after the instance is terminated too). Returns the group.
async fn assert_isolated(f: &Fixture) -> String {
    let q = quarantine_group(f).await;
    let groups = read::groups_of_enis(&f.ec2(), &f.enis).await;
    assert_eq!(groups.len(), f.enis.len(), "{groups:?}");
    for (eni, g) in &groups {
        assert_eq!(g, &vec![q.clone()], "ENI {eni} is not (only) in {q}");
    }
    q
}

async fn assert_snapshot_set(f: &Fixture, fd: &Finding) {
    let snaps = read::snapshots_tagged(&f.ec2(), FINDING_ID_TAG, &fd.id).await;
    let volumes: BTreeSet<&str> = snaps.iter().map(|s| s.volume_id.as_str()).collect();
    let expected: BTreeSet<&str> = f.volumes.iter().map(String::as_str).collect();
    assert_eq!(snaps.len(), 2, "one snapshot per volume: {snaps:#?}");
    assert_eq!(volumes, expected, "{snaps:#?}");
    let all = read::all_snapshots(&f.ec2(), &f.account).await;
    assert_eq!(all.len(), 2, "no other snapshot in the account: {all:?}");
}

/// Asserts exactly one live replacement, hardened, in the original subnet and groups.
async fn assert_one_hardened_replacement(f: &Fixture) -> String {
    let ec2 = f.ec2();
    let reps = read::replacements(&ec2, &f.instance_id).await;
    assert_eq!(
        reps.len(),
        1,
        "exactly one live replacement of {}: {reps:?} (all instances: {:?})",
        f.instance_id,
        read::all_instances(&ec2).await
    );
    let r = reps[0].clone();
    assert_ne!(r, f.instance_id);
    assert_eq!(
        read::http_tokens(&ec2, &r).await.as_deref(),
        Some("required"),
        "IMDSv2 required on {r}"
    );
    assert_eq!(
        read::public_ip(&ec2, &r).await,
        None,
        "no public IP on {r} (the subnet maps public IPs on launch)"
    );
    assert_eq!(
        read::subnet(&ec2, &r).await.as_deref(),
        Some(f.subnet_id.as_str())
    );
    let enis = describe_enis(&ec2, &r).await;
    assert!(!enis.is_empty(), "replacement {r} has no ENI");
    let original: BTreeSet<&str> = [f.group_a.as_str(), f.group_b.as_str()].into();
    let primary: Vec<&str> = enis[0].groups.iter().map(|(id, _)| id.as_str()).collect();
    assert!(
        primary.contains(&f.group_a.as_str()),
        "the replacement's primary ENI is in {primary:?}, not the original group {}",
        f.group_a
    );
    for e in &enis {
        for (id, name) in &e.groups {
            assert!(
                original.contains(id.as_str()),
                "replacement ENI {} in group {id} ({name}), not an original group",
                e.id
            );
            assert!(name != QUARANTINE_GROUP && name != UNTRACK_GROUP);
        }
    }
    let tags = read::instance_tags(&ec2, &r).await;
    assert_eq!(
        tags.get(read::REPLACES_TAG),
        Some(&f.instance_id),
        "{tags:?}"
    );
    r
}

async fn assert_terminated(f: &Fixture) {
    let state = read::instance_state(&f.ec2(), &f.instance_id).await;
    assert!(
        matches!(state.as_deref(), Some("terminated" | "shutting-down")),
        "{} is {state:?}",
        f.instance_id
    );
}

async fn existing_volumes(f: &Fixture) -> Vec<String> {
    let out = f
        .ec2()
        .describe_volumes()
        .filters(
            f.volumes
                .iter()
                .fold(Filter::builder().name("volume-id"), |b, v| b.values(v))
                .build(),
        )
        .send()
        .await
        .unwrap();
    out.volumes()
        .iter()
        .filter_map(|v| v.volume_id().map(str::to_owned))
        .collect()
}

/// Everything a response could change, for "nothing changed" checks.
#[derive(Debug, PartialEq)]
struct World {
    instances: BTreeMap<String, String>,
    eni_groups: BTreeMap<String, Vec<String>>,
    tags: BTreeMap<String, String>,
    snapshots: Vec<String>,
    quarantine_groups: usize,
    untrack_groups: usize,
    profile: Option<String>,
    protected: bool,
    delete_on_termination: BTreeMap<String, Option<bool>>,
}

async fn world(f: &Fixture) -> World {
    let ec2 = f.ec2();
    World {
        instances: read::all_instances(&ec2).await,
        eni_groups: read::groups_of_enis(&ec2, &f.enis).await,
        tags: read::instance_tags(&ec2, &f.instance_id).await,
        snapshots: read::all_snapshots(&ec2, &f.account).await,
        quarantine_groups: read::groups_named(&ec2, &f.vpc_id, QUARANTINE_GROUP)
            .await
            .len(),
        untrack_groups: read::groups_named(&ec2, &f.vpc_id, UNTRACK_GROUP)
            .await
            .len(),
        profile: read::profile_association_state(&ec2, &f.instance_id).await,
        protected: read::disable_api_termination(&ec2, &f.instance_id).await,
        delete_on_termination: read::delete_on_termination(&ec2, &f.instance_id).await,
    }
}

fn default_fixture() -> impl std::future::Future<Output = Fixture> {
    Fixture::new(FixtureOptions::default())
}

// ---------------------------------------------------------------------------------
// isolate

#[tokio::test]
async fn isolate_puts_every_eni_in_one_empty_quarantine_group_and_records_the_groups() {
    let f = default_fixture().await;
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = plan_with(&enforce_playbook("  - isolate: {}"), &fd);

    let report = respond(&f, &fd, &plan).await;
    assert_status(&report, Status::Succeeded);
    assert_done(&report, "isolate");
    assert!(
        report.round_trips_to_isolation.is_some(),
        "{}",
        pretty(&report)
    );
    assert!(report.ms_to_isolation.is_some());

    let q = assert_isolated(&f).await;
    let live = read::eni_groups(&f.ec2(), &f.instance_id).await;
    assert_eq!(live.len(), 2, "both ENIs still attached: {live:?}");
    let recorded = recorded_groups(&f).await;
    assert!(recorded.contains(&f.group_a), "{recorded}");
    assert!(recorded.contains(&f.group_b), "{recorded}");
    assert!(!recorded.contains(&q), "{recorded}");
    assert_eq!(
        read::instance_state(&f.ec2(), &f.instance_id)
            .await
            .as_deref(),
        Some("running")
    );

    // A second delivery finds the work done: no second group, the record intact.
    let again = respond(&f, &fd, &plan).await;
    assert_status(&again, Status::Succeeded);
    assert_already_done(&again, "isolate");
    assert_eq!(assert_isolated(&f).await, q);
    let recorded_again = recorded_groups(&f).await;
    assert!(
        recorded_again.contains(&f.group_a) && recorded_again.contains(&f.group_b),
        "the record of the original groups was lost on the rerun: {recorded_again}"
    );
    assert!(
        !recorded_again.contains(&q),
        "the rerun recorded the quarantine group as original: {recorded_again}"
    );
}

#[tokio::test]
async fn isolate_covers_an_eni_the_finding_does_not_list() {
    let f = default_fixture().await;
    let event = without_eni(bitcoin_dns_event(&f), &f.enis[1]);
    let fd = finding(&event);
    assert_eq!(fd.instance.as_ref().unwrap().network_interfaces.len(), 1);
    let plan = plan_with(&enforce_playbook("  - isolate: {}"), &fd);

    let report = respond(&f, &fd, &plan).await;
    assert_status(&report, Status::Succeeded);
    assert_isolated(&f).await;
    let recorded = recorded_groups(&f).await;
    assert!(
        recorded.contains(&f.group_b),
        "the unlisted ENI's group is not recorded (release could not restore it): {recorded}"
    );
}

// ---------------------------------------------------------------------------------
// snapshot

#[tokio::test]
async fn snapshot_takes_one_tagged_snapshot_per_volume_once_and_preserves_volumes() {
    let f = default_fixture().await;
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = plan_with(&enforce_playbook("  - snapshot: {}"), &fd);

    let report = respond(&f, &fd, &plan).await;
    assert_status(&report, Status::Succeeded);
    assert_done(&report, "snapshot");

    assert_snapshot_set(&f, &fd).await;
    for s in read::snapshots_tagged(&f.ec2(), FINDING_ID_TAG, &fd.id).await {
        let tag = |k: &str| s.tags.get(&format!("guardduty-responder:{k}")).cloned();
        assert_eq!(
            tag("finding-type").as_deref(),
            Some(fd.finding_type.name.as_str()),
            "{s:?}"
        );
        assert_eq!(tag("severity").as_deref(), Some("8"), "{s:?}");
        assert_eq!(
            tag("instance-id").as_deref(),
            Some(f.instance_id.as_str()),
            "{s:?}"
        );
    }
    let dot = read::delete_on_termination(&f.ec2(), &f.instance_id).await;
    assert_eq!(dot.len(), 2, "{dot:?}");
    assert!(
        dot.values().all(|v| *v == Some(false)),
        "DeleteOnTermination must be false on every volume: {dot:?}"
    );

    let again = respond(&f, &fd, &plan).await;
    assert_status(&again, Status::Succeeded);
    assert_already_done(&again, "snapshot");
    assert_snapshot_set(&f, &fd).await;
}

// ---------------------------------------------------------------------------------
// terminate

#[tokio::test]
async fn terminate_terminates_the_instance() {
    let f = default_fixture().await;
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = plan_with(&enforce_playbook("  - terminate: {}"), &fd);

    let report = respond(&f, &fd, &plan).await;
    assert_status(&report, Status::Succeeded);
    assert_done(&report, "terminate");
    assert_terminated(&f).await;

    let again = respond(&f, &fd, &plan).await;
    assert_not_failed(&again);
    assert!(
        read::replacements(&f.ec2(), &f.instance_id)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn protect_then_terminate_lifting_protection_terminates() {
    let f = default_fixture().await;
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = plan_with(
        &enforce_playbook(
            "  - protect: {}\n  - terminate:\n      lift_termination_protection: true",
        ),
        &fd,
    );

    let report = respond(&f, &fd, &plan).await;
    assert_status(&report, Status::Succeeded);
    assert_done(&report, "protect");
    assert_done(&report, "terminate");
    assert_terminated(&f).await;
}

#[tokio::test]
async fn a_refused_terminate_fails_the_response_and_stops_the_relaunch() {
    let f = default_fixture().await;
    // Termination protection set outside the playbook: the terminate (which does not
    // lift it) is refused with OperationNotPermitted.
    f.ec2()
        .modify_instance_attribute()
        .instance_id(&f.instance_id)
        .disable_api_termination(AttributeBooleanValue::builder().value(true).build())
        .send()
        .await
        .unwrap();
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = plan_with(
        &enforce_playbook(
            "  - snapshot: {}\n  - terminate: {}\n  - relaunch:\n      source: clone",
        ),
        &fd,
    );

    let report = respond(&f, &fd, &plan).await;
    assert_status(&report, Status::Failed);
    assert_done(&report, "snapshot");
    let t = step(&report, "terminate");
    match &t.outcome {
        Outcome::Failed { code, .. } => {
            assert_eq!(code, "OperationNotPermitted", "{}", pretty(&report))
        }
        other => panic!("terminate should fail, got {other:?}"),
    }
    assert!(
        matches!(step(&report, "relaunch").outcome, Outcome::Skipped { .. }),
        "relaunch must not run after a failed terminate:\n{}",
        pretty(&report)
    );
    assert_eq!(
        read::instance_state(&f.ec2(), &f.instance_id)
            .await
            .as_deref(),
        Some("running")
    );
    assert!(
        read::replacements(&f.ec2(), &f.instance_id)
            .await
            .is_empty()
    );
    assert_eq!(read::all_instances(&f.ec2()).await.len(), 1);
    assert_snapshot_set(&f, &fd).await;
}

// ---------------------------------------------------------------------------------
// relaunch

#[tokio::test]
async fn relaunch_clone_launches_one_hardened_replacement_in_the_original_groups() {
    let f = default_fixture().await;
    let fd = finding(&bitcoin_dns_event(&f));
    // isolate first: the clone must take the original groups, not the quarantine one.
    let plan = plan_with(
        &enforce_playbook(
            "  - isolate: {}\n  - snapshot: {}\n  - terminate: {}\n  - relaunch:\n      source: clone",
        ),
        &fd,
    );

    let report = respond(&f, &fd, &plan).await;
    assert_status(&report, Status::Succeeded);
    assert_done(&report, "relaunch");
    assert_terminated(&f).await;
    let r = assert_one_hardened_replacement(&f).await;

    let ec2 = f.ec2();
    let replacement = read::instance(&ec2, &r).await.unwrap();
    assert_eq!(replacement.image_id(), Some(f.image_id.as_str()));
    assert_eq!(
        replacement.instance_type().map(|t| t.as_str()),
        Some(f.instance_type.as_str())
    );
    assert_eq!(
        read::profile_arn(&ec2, &r).await.as_deref(),
        Some(f.profile_arn.as_str()),
        "the clone keeps the instance profile"
    );
    let tags = read::instance_tags(&ec2, &r).await;
    assert_eq!(
        tags.get("Name").map(String::as_str),
        Some("web-1"),
        "{tags:?}"
    );
    assert_eq!(
        tags.get("env").map(String::as_str),
        Some("prod"),
        "{tags:?}"
    );
    assert_eq!(tags.get(FINDING_ID_TAG), Some(&fd.id), "{tags:?}");
    assert!(
        !tags.keys().any(|k| k.starts_with(ORIGINAL_GROUPS_TAG)),
        "the isolation record must not be copied to the replacement: {tags:?}"
    );

    // Redelivered: nothing new is launched.
    let again = respond(&f, &fd, &plan).await;
    assert_not_failed(&again);
    assert_eq!(
        read::replacements(&ec2, &f.instance_id).await,
        vec![r.clone()]
    );
    let live: Vec<String> = read::all_instances(&ec2)
        .await
        .into_iter()
        .filter(|(_, s)| s != "terminated")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(live, vec![r], "only the replacement runs");
}

// ---------------------------------------------------------------------------------
// the two seed cases, shipped playbooks

async fn seed_case(f: &Fixture, event: Value, playbook: &str) {
    let fd = finding(&event);
    let plan = shipped_plan(&fd);
    assert_eq!(
        plan.playbook.as_deref(),
        Some(playbook),
        "{}",
        plan.decision
    );

    let report = respond(f, &fd, &plan).await;
    assert_status(&report, Status::Succeeded);
    for action in ["isolate", "snapshot", "terminate", "relaunch"] {
        assert_done(&report, action);
    }
    assert!(
        matches!(&step(&report, "notify").outcome, Outcome::Skipped { reason } if !reason.is_empty()),
        "notify without a topic is skipped with a reason:\n{}",
        pretty(&report)
    );

    assert_isolated(f).await;
    assert_snapshot_set(f, &fd).await;
    assert_terminated(f).await;
    let kept = existing_volumes(f).await;
    assert_eq!(
        kept.len(),
        2,
        "preserve_volumes keeps both volumes after the terminate: {kept:?}"
    );
    assert_one_hardened_replacement(f).await;
}

#[tokio::test]
async fn seed_bitcoin_dns_is_contained_and_replaced() {
    let f = default_fixture().await;
    seed_case(&f, bitcoin_dns_event(&f), "crypto-mining-ec2").await;
}

#[tokio::test]
async fn seed_network_port_unusual_is_contained_and_replaced() {
    let f = default_fixture().await;
    seed_case(
        &f,
        network_port_unusual_event(&f),
        "unusual-network-behaviour-ec2",
    )
    .await;
}

// ---------------------------------------------------------------------------------
// redelivery

async fn assert_after_redelivery(f: &Fixture, fd: &Finding, reports: &[Report]) {
    let statuses: Vec<Status> = reports.iter().map(|r| r.status).collect();
    assert_snapshot_set(f, fd).await;
    assert_terminated(f).await;
    assert_one_hardened_replacement(f).await;
    let live = read::all_instances(&f.ec2())
        .await
        .into_iter()
        .filter(|(_, s)| s != "terminated")
        .count();
    assert_eq!(
        live, 1,
        "one live instance in the account (statuses {statuses:?})"
    );
    assert!(
        reports.iter().any(|r| r.status == Status::Succeeded),
        "no delivery succeeded: {statuses:?}"
    );
}

#[tokio::test]
async fn redelivered_ten_times_in_sequence_acts_once() {
    let f = default_fixture().await;
    let event = bitcoin_dns_event(&f);
    let mut reports = Vec::new();
    for _ in 0..10 {
        let fd = finding(&event);
        let plan = shipped_plan(&fd);
        let report = respond(&f, &fd, &plan).await;
        assert_not_failed(&report);
        reports.push(report);
    }
    assert_after_redelivery(&f, &finding(&event), &reports).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_ten_times_concurrently_acts_once() {
    let f = default_fixture().await;
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = shipped_plan(&fd);
    // Ten containers: each its own clients and executor.
    let e: Vec<Executor> = (0..10).map(|_| executor(&f)).collect();
    let (r0, r1, r2, r3, r4, r5, r6, r7, r8, r9) = tokio::join!(
        e[0].respond(&fd, &plan),
        e[1].respond(&fd, &plan),
        e[2].respond(&fd, &plan),
        e[3].respond(&fd, &plan),
        e[4].respond(&fd, &plan),
        e[5].respond(&fd, &plan),
        e[6].respond(&fd, &plan),
        e[7].respond(&fd, &plan),
        e[8].respond(&fd, &plan),
        e[9].respond(&fd, &plan),
    );
    let reports = [r0, r1, r2, r3, r4, r5, r6, r7, r8, r9];
    for r in &reports {
        eprintln!("{}", serde_json::to_string(r).unwrap_or_default());
    }
    assert_after_redelivery(&f, &fd, &reports).await;
}

// ---------------------------------------------------------------------------------
// dry runs

fn assert_dry_run_outcomes(report: &Report) {
    assert!(report.dry_run, "{}", pretty(report));
    assert_status(report, Status::DryRunPassed);
    for s in &report.steps {
        match &s.outcome {
            Outcome::WouldSucceed => {}
            Outcome::Skipped { reason } if !reason.trim().is_empty() => {}
            other => panic!(
                "dry run: step {} is {other:?}, not would-succeed or skipped with a reason:\n{}",
                s.action,
                pretty(report)
            ),
        }
    }
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    let f = default_fixture().await;
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = shipped_plan(&fd);
    let before = world(&f).await;

    let exec = Executor::new(
        f.clients(),
        ExecOptions {
            dry_run: true,
            ..ExecOptions::default()
        },
    );
    let report = exec.respond(&fd, &plan).await;
    assert_dry_run_outcomes(&report);
    assert_eq!(world(&f).await, before, "the dry run changed moto's state");
    assert_eq!(before.quarantine_groups, 0);
    assert!(before.snapshots.is_empty());
}

#[tokio::test]
async fn a_dry_run_playbook_changes_nothing_even_with_an_enforcing_executor() {
    let f = default_fixture().await;
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = plan_with(
        &dry_run_playbook(
            "  - isolate: {}\n  - protect: {}\n  - revoke-instance-profile: {}\n  - snapshot: {}\n  - stop: {}",
        ),
        &fd,
    );
    let before = world(&f).await;
    let report = respond(&f, &fd, &plan).await;
    assert_dry_run_outcomes(&report);
    assert_eq!(
        world(&f).await,
        before,
        "a dry-run playbook changed moto's state"
    );
}

// ---------------------------------------------------------------------------------
// failures (injected by a proxy in front of moto: moto has no fault injection)

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

// ---------------------------------------------------------------------------------
// vanished instances

#[tokio::test]
async fn an_instance_terminated_before_the_response_gets_no_new_resources() {
    let f = default_fixture().await;
    f.ec2()
        .terminate_instances()
        .instance_ids(&f.instance_id)
        .send()
        .await
        .unwrap();
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = shipped_plan(&fd);
    let before = world(&f).await;

    let report = respond(&f, &fd, &plan).await;
    assert!(
        matches!(report.status, Status::InstanceGone | Status::Succeeded),
        "{}",
        pretty(&report)
    );
    let after = world(&f).await;
    assert!(
        after.snapshots.is_empty(),
        "snapshots: {:?}\n{}",
        after.snapshots,
        pretty(&report)
    );
    assert!(
        read::replacements(&f.ec2(), &f.instance_id)
            .await
            .is_empty(),
        "a replacement was launched for an instance terminated by someone else:\n{}",
        pretty(&report)
    );
    assert_eq!(after.instances, before.instances, "{}", pretty(&report));
    assert_eq!(after.quarantine_groups, 0, "{}", pretty(&report));
    assert_eq!(after.untrack_groups, 0, "{}", pretty(&report));
}

#[tokio::test]
async fn an_instance_unknown_to_ec2_ends_cleanly_with_no_new_resources() {
    let f = default_fixture().await;
    let mut event = bitcoin_dns_event(&f);
    let details = event
        .pointer_mut("/detail/resource/instanceDetails")
        .unwrap();
    details["instanceId"] = json!("i-0fedcba9876543210");
    for (n, eni) in details["networkInterfaces"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        eni["networkInterfaceId"] = json!(format!("eni-0fedcba987654321{n}"));
    }
    let fd = finding(&event);
    let plan = shipped_plan(&fd);
    let before = world(&f).await;

    let report = respond(&f, &fd, &plan).await;
    assert!(
        matches!(report.status, Status::InstanceGone | Status::Succeeded),
        "{}",
        pretty(&report)
    );
    assert_eq!(world(&f).await, before, "{}", pretty(&report));
}

// ---------------------------------------------------------------------------------
// the other steps

#[tokio::test]
async fn tag_sets_the_playbook_tags_and_the_marker_tags() {
    let f = default_fixture().await;
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = plan_with(
        &enforce_playbook(
            "  - tag:\n      tags:\n        guardduty-responder:status: contained\n        case: \"{finding.id}\"",
        ),
        &fd,
    );
    let report = respond(&f, &fd, &plan).await;
    assert_status(&report, Status::Succeeded);
    let tags = read::instance_tags(&f.ec2(), &f.instance_id).await;
    let get = |k: &str| tags.get(k).map(String::as_str);
    assert_eq!(
        get("guardduty-responder:status"),
        Some("contained"),
        "{tags:?}"
    );
    assert_eq!(get("case"), Some(fd.id.as_str()), "{tags:?}");
    assert_eq!(get(FINDING_ID_TAG), Some(fd.id.as_str()), "{tags:?}");
    assert_eq!(
        get("guardduty-responder:finding-type"),
        Some("CryptoCurrency:EC2/BitcoinTool.B!DNS"),
        "{tags:?}"
    );
    assert_eq!(get("guardduty-responder:severity"), Some("8"), "{tags:?}");
    assert_eq!(
        get("guardduty-responder:playbook"),
        Some("test-playbook"),
        "{tags:?}"
    );
    assert_eq!(get("Name"), Some("web-1"), "existing tags stay: {tags:?}");

    let again = respond(&f, &fd, &plan).await;
    assert_not_failed(&again);
}

// Note: moto 5.2.5 ignores `ModifyInstanceAttribute(InstanceInitiatedShutdownBehavior=
// {Value})` (the structure form): it answers 200 and changes nothing (it even clears
// Instance.SecurityGroups). The `Attribute=instanceInitiatedShutdownBehavior,
// Value=stop` form works on moto and on AWS.
#[tokio::test]
async fn protect_enables_termination_protection_and_stop_on_shutdown() {
    let f = default_fixture().await;
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = plan_with(&enforce_playbook("  - protect: {}"), &fd);
    let report = respond(&f, &fd, &plan).await;
    assert_status(&report, Status::Succeeded);
    assert_done(&report, "protect");
    let ec2 = f.ec2();
    assert!(read::disable_api_termination(&ec2, &f.instance_id).await);
    assert_eq!(
        read::shutdown_behavior(&ec2, &f.instance_id)
            .await
            .as_deref(),
        Some("stop")
    );
    // The protection is real: a plain terminate is refused.
    let refused = ec2
        .terminate_instances()
        .instance_ids(&f.instance_id)
        .send()
        .await
        .expect_err("terminate should be refused");
    assert_eq!(refused.code(), Some("OperationNotPermitted"));

    let again = respond(&f, &fd, &plan).await;
    assert_not_failed(&again);
}

#[tokio::test]
async fn detach_from_asg_removes_the_instance_and_keeps_desired_capacity() {
    let f = Fixture::new(FixtureOptions {
        auto_scaling_group: true,
        ..FixtureOptions::default()
    })
    .await;
    let group = f.auto_scaling_group.clone().unwrap();
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = plan_with(&enforce_playbook("  - detach-from-asg: {}"), &fd);

    let report = respond(&f, &fd, &plan).await;
    assert_status(&report, Status::Succeeded);
    assert_done(&report, "detach-from-asg");

    let asg = f.autoscaling();
    let membership = asg
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
    let groups = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(&group)
        .send()
        .await
        .unwrap();
    let g = &groups.auto_scaling_groups()[0];
    assert_eq!(g.desired_capacity(), Some(1), "desired capacity unchanged");
    assert!(
        g.instances()
            .iter()
            .all(|i| i.instance_id() != Some(f.instance_id.as_str())),
        "{:?}",
        g.instances()
    );
    assert_eq!(
        read::instance_state(&f.ec2(), &f.instance_id)
            .await
            .as_deref(),
        Some("running"),
        "detaching keeps the instance running"
    );

    let again = respond(&f, &fd, &plan).await;
    assert_not_failed(&again);
}

#[tokio::test]
async fn deregister_from_target_groups_removes_the_target() {
    let f = Fixture::new(FixtureOptions {
        target_group: true,
        ..FixtureOptions::default()
    })
    .await;
    let arn = f.target_group_arn.clone().unwrap();
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = plan_with(
        &enforce_playbook("  - deregister-from-target-groups: {}"),
        &fd,
    );

    let report = respond(&f, &fd, &plan).await;
    assert_status(&report, Status::Succeeded);
    assert_done(&report, "deregister-from-target-groups");
    let health = f
        .elbv2()
        .describe_target_health()
        .target_group_arn(&arn)
        .send()
        .await
        .unwrap();
    let targets: Vec<String> = health
        .target_health_descriptions()
        .iter()
        .filter_map(|t| t.target().and_then(|t| t.id()).map(str::to_owned))
        .collect();
    assert!(
        !targets.contains(&f.instance_id),
        "still registered: {targets:?}"
    );

    // moto answers InvalidTarget to a second deregistration: still not a failure.
    let again = respond(&f, &fd, &plan).await;
    assert_not_failed(&again);
}

#[tokio::test]
async fn revoke_instance_profile_leaves_no_association() {
    let f = default_fixture().await;
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = plan_with(&enforce_playbook("  - revoke-instance-profile: {}"), &fd);

    let report = respond(&f, &fd, &plan).await;
    assert_status(&report, Status::Succeeded);
    assert_done(&report, "revoke-instance-profile");
    let ec2 = f.ec2();
    let state = read::profile_association_state(&ec2, &f.instance_id).await;
    assert!(
        state.is_none() || state.as_deref() == Some("disassociated"),
        "association left: {state:?}"
    );
    let inst = read::instance(&ec2, &f.instance_id).await.unwrap();
    assert!(
        inst.iam_instance_profile().is_none(),
        "{:?}",
        inst.iam_instance_profile()
    );

    let again = respond(&f, &fd, &plan).await;
    assert_not_failed(&again);
}

#[tokio::test]
async fn capture_console_output_keeps_the_output_or_says_why_not() {
    let f = default_fixture().await;
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = plan_with(&enforce_playbook("  - capture-console-output: {}"), &fd);

    let report = respond(&f, &fd, &plan).await;
    assert_status(&report, Status::Succeeded);
    let s = step(&report, "capture-console-output");
    match &s.outcome {
        Outcome::Done => assert!(
            s.output.as_deref().is_some_and(|o| !o.is_empty()),
            "done without output:\n{}",
            pretty(&report)
        ),
        Outcome::Skipped { reason } => assert!(!reason.is_empty()),
        other => panic!("capture-console-output: {other:?}\n{}", pretty(&report)),
    }
}

#[tokio::test]
async fn stop_stops_the_instance() {
    let f = default_fixture().await;
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = plan_with(&enforce_playbook("  - stop: {}"), &fd);

    let report = respond(&f, &fd, &plan).await;
    assert_status(&report, Status::Succeeded);
    assert_done(&report, "stop");
    let state = read::instance_state(&f.ec2(), &f.instance_id).await;
    assert!(
        matches!(state.as_deref(), Some("stopped" | "stopping")),
        "{state:?}"
    );

    let again = respond(&f, &fd, &plan).await;
    assert_not_failed(&again);
}
