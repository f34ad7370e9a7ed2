//! Helpers shared by the executor tests: executors, report assertions and
//! read-backs of the state moto holds.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU32, Ordering};

use aws_sdk_ec2::types::Filter;
use responder_aws::{ExecOptions, Executor, Outcome, Report, Response, Status, StepReport};
use responder_core::{Finding, Plan};
use responder_tests::fixture::describe_enis;
use responder_tests::read::{self, QUARANTINE_GROUP, UNTRACK_GROUP};
use responder_tests::{Fixture, FixtureOptions};

pub(crate) const FINDING_ID_TAG: &str = "guardduty-responder:finding-id";

/// A new executor over new clients and the account's ledger, as a new Lambda
/// container would have.
pub(crate) async fn executor(f: &Fixture) -> Executor {
    Executor::new(f.clients(), ExecOptions::default()).with_ledger(f.ledger().await)
}

/// A claim owner no other delivery in this process has (a Lambda request id).
pub(crate) fn owner() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("test-delivery-{}", N.fetch_add(1, Ordering::Relaxed))
}

/// One delivery: a fresh executor (a new container) with the ledger.
pub(crate) async fn respond(f: &Fixture, fd: &Finding, plan: &Plan) -> Report {
    deliver(&executor(f).await, fd, plan).await
}

/// One delivery through this executor, as its own invocation.
pub(crate) async fn deliver(e: &Executor, fd: &Finding, plan: &Plan) -> Report {
    let owner = owner();
    e.respond_with(
        fd,
        plan,
        Response {
            owner: Some(&owner),
            ..Response::default()
        },
    )
    .await
}

pub(crate) fn step<'a>(report: &'a Report, action: &str) -> &'a StepReport {
    report
        .steps
        .iter()
        .find(|s| s.action == action)
        .unwrap_or_else(|| panic!("no {action} step in the report:\n{}", pretty(report)))
}

pub(crate) fn pretty(report: &Report) -> String {
    serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{report:?} ({e})"))
}

pub(crate) fn assert_status(report: &Report, expected: Status) {
    assert_eq!(report.status, expected, "report:\n{}", pretty(report));
}

pub(crate) fn assert_done(report: &Report, action: &str) {
    let s = step(report, action);
    assert_eq!(s.outcome, Outcome::Done, "{action}:\n{}", pretty(report));
}

pub(crate) fn assert_already_done(report: &Report, action: &str) {
    let s = step(report, action);
    assert!(
        matches!(s.outcome, Outcome::AlreadyDone { .. }),
        "{action} should be already-done on a rerun:\n{}",
        pretty(report)
    );
}

pub(crate) fn assert_not_failed(report: &Report) {
    assert!(
        !report.is_failure() && report.steps.iter().all(|s| !s.outcome.is_failure()),
        "report:\n{}",
        pretty(report)
    );
}

/// The single quarantine group of the fixture's VPC: exists once, has no rules.
pub(crate) async fn quarantine_group(f: &Fixture) -> String {
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

/// The original groups the ledger holds for the fixture's instance, as
/// `eni=g1,g2` pairs joined by spaces (`isolate`'s record: what `release` and
/// `relaunch` restore).
pub(crate) async fn recorded_groups(f: &Fixture) -> String {
    let record = f
        .ledger()
        .await
        .last_done(&f.instance_id, "isolate")
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no isolate record for {} in the ledger", f.instance_id));
    let groups: BTreeMap<String, Vec<String>> =
        serde_json::from_value(record.state["original_groups"].clone()).unwrap();
    assert!(!groups.is_empty(), "empty record: {record:?}");
    groups
        .iter()
        .map(|(eni, g)| format!("{eni}={}", g.join(",")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Asserts every fixture ENI is in the quarantine group alone (read by ENI id, so it
/// works after the instance is terminated too). Returns the group.
pub(crate) async fn assert_isolated(f: &Fixture) -> String {
    let q = quarantine_group(f).await;
    let groups = read::groups_of_enis(&f.ec2(), &f.enis).await;
    assert_eq!(groups.len(), f.enis.len(), "{groups:?}");
    for (eni, g) in &groups {
        assert_eq!(g, &vec![q.clone()], "ENI {eni} is not (only) in {q}");
    }
    q
}

pub(crate) async fn assert_snapshot_set(f: &Fixture, fd: &Finding) {
    let snaps = read::snapshots_tagged(&f.ec2(), FINDING_ID_TAG, &fd.id).await;
    let volumes: BTreeSet<&str> = snaps.iter().map(|s| s.volume_id.as_str()).collect();
    let expected: BTreeSet<&str> = f.volumes.iter().map(String::as_str).collect();
    assert_eq!(snaps.len(), 2, "one snapshot per volume: {snaps:#?}");
    assert_eq!(volumes, expected, "{snaps:#?}");
    let all = read::all_snapshots(&f.ec2(), &f.account).await;
    assert_eq!(all.len(), 2, "no other snapshot in the account: {all:?}");
}

/// Asserts exactly one live replacement, hardened, in the original subnet and groups.
pub(crate) async fn assert_one_hardened_replacement(f: &Fixture) -> String {
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

pub(crate) async fn assert_terminated(f: &Fixture) {
    let state = read::instance_state(&f.ec2(), &f.instance_id).await;
    assert!(
        matches!(state.as_deref(), Some("terminated" | "shutting-down")),
        "{} is {state:?}",
        f.instance_id
    );
}

pub(crate) async fn existing_volumes(f: &Fixture) -> Vec<String> {
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
pub(crate) struct World {
    pub(crate) instances: BTreeMap<String, String>,
    pub(crate) eni_groups: BTreeMap<String, Vec<String>>,
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) snapshots: Vec<String>,
    pub(crate) quarantine_groups: usize,
    pub(crate) untrack_groups: usize,
    pub(crate) profile: Option<String>,
    pub(crate) protected: bool,
    pub(crate) delete_on_termination: BTreeMap<String, Option<bool>>,
}

pub(crate) async fn world(f: &Fixture) -> World {
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

pub(crate) fn default_fixture() -> impl std::future::Future<Output = Fixture> {
    Fixture::new(FixtureOptions::default())
}

pub(crate) fn outcome<'a>(r: &'a Report, action: &str) -> &'a Outcome {
    &r.steps
        .iter()
        .find(|s| s.action == action)
        .unwrap_or_else(|| panic!("no {action}: {r:#?}"))
        .outcome
}
