//! The chaos test of issue 9: 50 findings about 50 instances, each delivered 3 times
//! concurrently through `Responder::answer` (the function's code path: verification
//! against a local GuardDuty endpoint holding the 50 findings, the ledger, the
//! shipped playbooks), with 20% of EC2 requests failing (throttling or 5xx) through
//! the fault proxy. Lambda's asynchronous invoke is simulated: a delivery whose
//! answer is an error or a failed report is retried up to 2 more times, then
//! dead-lettered.
//!
//! Asserted, from moto and the ledger, not from the reports: each destructive action
//! happened at most once per finding, and exactly once for every finding that was
//! remediated; a delivery that reports success finds its finding remediated at that
//! moment (never a silent success with steps not done); every finding ends
//! remediated or with all its deliveries dead-lettered (a bounded few); every
//! snapshot and replacement in moto is named by a ledger record.
//!
//! Half of the injected server errors come after moto applied the request (the
//! answer lost after EC2 acted, as a 5xx or a broken connection can on AWS): a
//! non-idempotent call resent blindly shows up as a second snapshot set or instance.
//!
//! `CHAOS_FINDINGS=N` runs N findings instead of 50 (for a quick look); `CHAOS_SEED`
//! changes the fault sequence; `CHAOS_APPLIED` the applied fraction of 5xx;
//! `CHAOS_RATE` the failing fraction of EC2 requests (the bounds asserted stay the
//! same: a higher rate may dead-letter more findings than they allow).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ec2::config::Credentials;
use futures::StreamExt;
use futures::future::join_all;
use responder_aws::ledger::{Ledger, RecordStatus, StepRecord};
use responder_aws::responder::{Answer, Responder};
use responder_aws::{DetectorSource, ExecOptions, Executor, Outcome, RetryPolicy, Status};
use responder_core::{Engine, Finding};
use responder_tests::fault::{DEFAULT_SEED, Fault, FaultProxy};
use responder_tests::finding::{bitcoin_dns_event, finding};
use responder_tests::fixture::LEDGER_TABLE;
use responder_tests::playbooks::{shipped_engine, shipped_plan};
use responder_tests::{FindingsEndpoint, Fixture, FixtureOptions, account, dynamodb, moto, read};
use serde_json::Value;

/// Findings (one instance each, each in its own moto account).
const FINDINGS: usize = 50;
/// Concurrent deliveries of each finding (EventBridge delivers at least once).
const DELIVERIES: usize = 3;
/// Invocations per delivery: the first and Lambda's 2 retries.
const ATTEMPTS: usize = 3;
/// The fraction of EC2 requests that fail.
const FAILURE_RATE: f64 = 0.2;
/// Of the injected server errors (5xx), the fraction that comes after EC2 acted:
/// the answer is lost, the SDK (or the step) tries again. Throttling is never
/// applied. The fault proxy answers a repeated `ClientToken` as EC2 does.
const APPLIED: f64 = 0.5;
/// Lambda waits about 1 and 2 minutes before its retries; scaled down here, but
/// still longer than most responses take under the test's load.
const RETRY_DELAYS: [Duration; ATTEMPTS - 1] = [Duration::from_secs(3), Duration::from_secs(6)];
/// The bound on one invocation (the function's timeout is 180 s; a dropped
/// invocation leaves its claim for the lease).
const INVOCATION_TIMEOUT: Duration = Duration::from_secs(150);
/// The bound on the whole test.
const TEST_TIMEOUT: Duration = Duration::from_secs(900);
/// Fixtures built at once.
const SETUP_PARALLEL: usize = 6;
/// Findings answered at once (each with its concurrent deliveries).
const FINDINGS_PARALLEL: usize = 10;
/// Findings that may end dead-lettered (every delivery out of retries): 4%.
const MAX_DEAD_LETTERED: usize = 2;
/// The blast-radius budget: high enough never to withhold a step here.
const MAX_DESTRUCTIVE_PER_HOUR: u32 = 1000;

/// One finding about one fixture instance, known to GuardDuty.
struct Case {
    f: Fixture,
    detector: String,
    event: Value,
    finding: Finding,
    topic: String,
}

/// What became of one delivery.
#[derive(Debug)]
enum Delivery {
    /// An invocation answered without failure (after `attempt` earlier failures).
    Answered { attempt: usize },
    /// Every invocation failed: Lambda sends the event to the dead-letter queue.
    DeadLettered { errors: Vec<String> },
}

/// The SDK configuration of the responder's clients in the test: EC2 and the rest
/// through the fault proxy, the SDK's standard retry (3 attempts; the base backoff
/// scaled from 1 s to 100 ms so that the test stays short), bounded timeouts.
async fn responder_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(account::REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(100)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(30))
                .operation_timeout(Duration::from_secs(60))
                .build(),
        )
        .load()
        .await
}

fn findings_count() -> usize {
    std::env::var("CHAOS_FINDINGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| (1..=FINDINGS).contains(n))
        .unwrap_or(FINDINGS)
}

/// The fraction of injected 5xx that moto applies before the error answers
/// (`CHAOS_APPLIED`, default [`APPLIED`]).
fn applied() -> f64 {
    std::env::var("CHAOS_APPLIED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(APPLIED)
}

/// The fraction of EC2 requests that fail (`CHAOS_RATE`, default [`FAILURE_RATE`]).
fn failure_rate() -> f64 {
    std::env::var("CHAOS_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(FAILURE_RATE)
}

fn seed() -> u64 {
    std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_SEED)
}

/// A fixture in a fresh account, its ledger table, an SNS topic, a detector of
/// its own and GuardDuty's copy of the finding.
async fn case(i: usize, gd: &FindingsEndpoint) -> Case {
    let f = Fixture::new(FixtureOptions::default()).await;
    f.ledger().await;
    let topic = aws_sdk_sns::Client::from_conf(
        aws_sdk_sns::config::Builder::from(&f.config)
            .interceptor(account::AccountHeader(f.account.clone()))
            .build(),
    )
    .create_topic()
    .name("guardduty-responder-chaos")
    .send()
    .await
    .unwrap()
    .topic_arn()
    .unwrap()
    .to_owned();
    let detector = format!("{:032x}", 0xc4a0_5000 + i);
    gd.add_detector(&f.account, &detector);
    let event = bitcoin_dns_event(&f);
    gd.put_event_finding(&detector, &event);
    let finding = finding(&event);
    Case {
        f,
        detector,
        event,
        finding,
        topic,
    }
}

/// A new container's responder for the case's account: clients through the proxy,
/// the ledger (DynamoDB on moto, serialized), GuardDuty on the local endpoint.
fn responder(c: &Case, engine: &Engine, config: &SdkConfig, gd: &FindingsEndpoint) -> Responder {
    let ledger = Ledger::new(dynamodb::client(&c.f.config, &c.f.account), LEDGER_TABLE);
    let executor = Executor::new(
        account::clients(config, &c.f.account),
        ExecOptions {
            dry_run: false,
            topic_arn: Some(c.topic.clone()),
        },
    )
    .with_ledger(ledger);
    let verifier = responder_aws::Verifier::new(
        gd.client(&c.f.config, &c.f.account),
        DetectorSource::Fixed(c.detector.clone()),
        RetryPolicy::default(),
    );
    Responder::new(
        engine.clone(),
        executor,
        Some(verifier),
        MAX_DESTRUCTIVE_PER_HOUR,
    )
}

fn ledger(c: &Case) -> Ledger {
    Ledger::new(dynamodb::client(&c.f.config, &c.f.account), LEDGER_TABLE)
}

/// What moto and the ledger hold about one finding.
#[derive(Debug)]
struct Observed {
    /// Snapshots tagged with the finding id: (snapshot, volume).
    snapshots: Vec<(String, String)>,
    /// Every snapshot of the account.
    all_snapshots: Vec<String>,
    /// Every instance of the account but the original, with its state.
    others: BTreeMap<String, String>,
    /// The original instance's state.
    state: Option<String>,
    /// The live replacements (tagged as replacing the original).
    replacements: Vec<String>,
    /// The finding's ledger step records.
    records: Vec<StepRecord>,
}

async fn observe(c: &Case) -> Observed {
    let ec2 = c.f.ec2();
    let snapshots = read::snapshots_tagged(&ec2, "guardduty-responder:finding-id", &c.finding.id)
        .await
        .into_iter()
        .map(|s| (s.id, s.volume_id))
        .collect();
    let mut others = read::all_instances(&ec2).await;
    let state = others.remove(&c.f.instance_id);
    let records = ledger(c)
        .history(Some(&c.finding.id), None)
        .await
        .unwrap_or_else(|e| panic!("ledger history of {}: {e}", c.finding.id));
    Observed {
        snapshots,
        all_snapshots: read::all_snapshots(&ec2, &c.f.account).await,
        others,
        state,
        replacements: read::replacements(&ec2, &c.f.instance_id).await,
        records,
    }
}

/// The steps of the shipped plan, by name.
fn plan_steps(c: &Case) -> Vec<&'static str> {
    shipped_plan(&c.finding)
        .steps
        .iter()
        .map(|s| s.action.spec().name)
        .collect()
}

/// Nothing happened twice and nothing exists that the ledger does not name,
/// whatever the finding's fate. Panics with the evidence otherwise.
fn assert_at_most_once(c: &Case, o: &Observed) {
    let id = &c.finding.id;
    assert!(
        o.snapshots.len() <= c.f.volumes.len(),
        "{id}: more snapshots than volumes: {o:#?}"
    );
    let volumes: BTreeSet<&String> = o.snapshots.iter().map(|(_, v)| v).collect();
    assert_eq!(
        volumes.len(),
        o.snapshots.len(),
        "{id}: a volume snapshotted twice: {o:#?}"
    );
    assert_eq!(
        o.all_snapshots.len(),
        o.snapshots.len(),
        "{id}: snapshots in the account that do not carry the finding id: {o:#?}"
    );
    assert!(
        o.others.len() <= 1,
        "{id}: more than one instance launched: {o:#?}"
    );
    let mut keys = BTreeSet::new();
    for r in &o.records {
        assert!(
            keys.insert((r.index, r.step.clone())),
            "{id}: two ledger records for step {} {}: {o:#?}",
            r.index,
            r.step
        );
    }
    // Nothing changed without a ledger record.
    let named = |resource: &str| {
        o.records
            .iter()
            .any(|r| r.resources.iter().any(|x| x.contains(resource)))
    };
    for (snapshot, _) in &o.snapshots {
        assert!(
            named(snapshot),
            "{id}: snapshot {snapshot} is in no ledger record: {o:#?}"
        );
    }
    for instance in o.others.keys() {
        assert!(
            named(instance),
            "{id}: instance {instance} was launched with no ledger record naming it: {o:#?}"
        );
    }
}

/// `Ok` when the finding is fully remediated now (each destructive action once,
/// every step recorded done), else what is missing.
fn remediated(c: &Case, o: &Observed) -> Result<(), String> {
    let mut missing = Vec::new();
    if o.snapshots.len() != c.f.volumes.len() {
        missing.push(format!(
            "{} snapshots of {} volumes",
            o.snapshots.len(),
            c.f.volumes.len()
        ));
    }
    if !matches!(o.state.as_deref(), Some("terminated" | "shutting-down")) {
        missing.push(format!("the instance is {:?}", o.state));
    }
    if o.replacements.len() != 1 || o.others.len() != 1 {
        missing.push(format!(
            "replacements {:?}, other instances {:?}",
            o.replacements, o.others
        ));
    }
    for step in plan_steps(c) {
        let records: Vec<&StepRecord> = o.records.iter().filter(|r| r.step == step).collect();
        match records.as_slice() {
            [r] if r.status == RecordStatus::Done => {}
            _ => missing.push(format!(
                "{step}: records {:?}",
                records
                    .iter()
                    .map(|r| (r.status, r.outcome.clone()))
                    .collect::<Vec<_>>()
            )),
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(missing.join("; "))
    }
}

/// Why an invocation failed, in a line.
fn failure_of(answer: &Result<Answer, responder_aws::responder::AnswerError>) -> String {
    match answer {
        Err(e) => format!("error: {e}"),
        Ok(Answer::NoAction { decision, .. }) => format!("no action: {decision}"),
        Ok(Answer::Responded(r)) => {
            let failed: Vec<String> = r
                .steps
                .iter()
                .filter_map(|s| match &s.outcome {
                    Outcome::Failed { code, .. } | Outcome::Denied { code, .. } => {
                        Some(format!("{}: {code}", s.action))
                    }
                    _ => None,
                })
                .collect();
            format!("{:?} [{}]", r.status, failed.join(", "))
        }
    }
}

/// One delivery as Lambda's asynchronous invoke runs it: an invocation in a new
/// container, retried after a failure (an error, or a failed report) up to
/// [`ATTEMPTS`] times. An invocation that answers must leave the finding
/// remediated.
async fn deliver(
    c: &Case,
    n: usize,
    engine: &Engine,
    config: &SdkConfig,
    gd: &FindingsEndpoint,
) -> Delivery {
    let mut errors = Vec::new();
    for attempt in 0..ATTEMPTS {
        if let Some(delay) = attempt.checked_sub(1).map(|i| RETRY_DELAYS[i]) {
            tokio::time::sleep(delay).await;
        }
        let owner = format!("chaos-{}-{n}-{attempt}", c.f.account);
        let r = responder(c, engine, config, gd);
        // The event as EventBridge delivers it, decoded by each invocation.
        let event = finding(&c.event);
        let answer = match tokio::time::timeout(INVOCATION_TIMEOUT, r.answer(&event, &owner)).await
        {
            Ok(a) => a,
            Err(_) => {
                errors.push(format!("timed out after {INVOCATION_TIMEOUT:?}"));
                continue;
            }
        };
        match &answer {
            Ok(Answer::Responded(report)) if !report.is_failure() => {
                // `instance-gone` is accepted when the finding is remediated (checked
                // below): a retry after a terminate whose answer was lost finds the
                // instance terminated with no done terminate record (see
                // docs/performance.md, "Chaos test").
                assert!(
                    matches!(report.status, Status::Succeeded | Status::InstanceGone),
                    "{}: an invocation answered {:?} without failing:\n{}",
                    c.finding.id,
                    report.status,
                    serde_json::to_string_pretty(report).unwrap_or_default()
                );
                if report.status == Status::InstanceGone {
                    eprintln!(
                        "chaos: {} delivery {n} attempt {attempt} answered instance-gone about an instance a response of this finding terminated",
                        c.finding.id
                    );
                }
                // The invocation succeeds: Lambda will never retry it. Everything
                // must be done now.
                let o = observe(c).await;
                if let Err(missing) = remediated(c, &o) {
                    panic!(
                        "{} delivery {n} attempt {attempt}: a silent success, the finding is not remediated ({missing}):\nreport {}\n{o:#?}",
                        c.finding.id,
                        serde_json::to_string_pretty(report).unwrap_or_default()
                    );
                }
                return Delivery::Answered { attempt };
            }
            Ok(Answer::NoAction { decision, .. }) => {
                panic!("{}: no playbook answered: {decision}", c.finding.id)
            }
            other => {
                let why = failure_of(other);
                eprintln!(
                    "chaos: {} delivery {n} attempt {attempt} failed, Lambda retries: {why}",
                    c.finding.id
                );
                errors.push(why);
            }
        }
    }
    Delivery::DeadLettered { errors }
}

/// The bug the chaos test found, alone: every `CreateSnapshots` reaches EC2 and its
/// answer is then lost (a 500). The SDK must not resend it (each resend is another
/// set); the step finds the set the first call made, by its tags, and reports it.
#[tokio::test]
async fn a_lost_create_snapshots_answer_leaves_one_snapshot_set() {
    let f = Fixture::new(FixtureOptions::default()).await;
    let proxy = FaultProxy::start(
        &moto::endpoint(),
        vec![Fault::lost_answer("CreateSnapshots")],
    )
    .await;
    let config = responder_config(&proxy.endpoint).await;
    let executor = Executor::new(
        account::clients(&config, &f.account),
        ExecOptions::default(),
    )
    .with_ledger(f.ledger().await);
    let fd = finding(&bitcoin_dns_event(&f));
    let plan = responder_tests::playbooks::plan_with(
        &responder_tests::playbooks::enforce_playbook("  - snapshot: {}"),
        &fd,
    );
    let report = executor
        .respond_with(
            &fd,
            &plan,
            responder_aws::Response {
                owner: Some("chaos-lost-answer"),
                ..responder_aws::Response::default()
            },
        )
        .await;
    let pretty = serde_json::to_string_pretty(&report).unwrap_or_default();
    let ec2 = f.ec2();
    let snapshots = read::all_snapshots(&ec2, &f.account).await;
    assert_eq!(
        snapshots.len(),
        f.volumes.len(),
        "one snapshot per volume ({} CreateSnapshots calls): {snapshots:?}\n{pretty}",
        proxy.calls("CreateSnapshots")
    );
    assert_eq!(proxy.calls("CreateSnapshots"), 1, "{pretty}");
    assert_eq!(report.status, Status::Succeeded, "{pretty}");
    let step = &report.steps[0];
    assert_eq!(step.outcome, Outcome::Done, "{pretty}");
    let mut reported = step.resources.clone();
    reported.sort();
    assert_eq!(reported, snapshots, "{pretty}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_fifty_findings_three_deliveries_twenty_percent_ec2_failures() {
    tokio::time::timeout(TEST_TIMEOUT, chaos())
        .await
        .unwrap_or_else(|_| panic!("the chaos test took more than {TEST_TIMEOUT:?}"));
}

async fn chaos() {
    let started = Instant::now();
    let n = findings_count();
    let gd = Arc::new(FindingsEndpoint::start());
    let cases: Vec<Case> = futures::stream::iter(0..n)
        .map(|i| {
            let gd = Arc::clone(&gd);
            async move { case(i, &gd).await }
        })
        .buffer_unordered(SETUP_PARALLEL)
        .collect()
        .await;
    let setup = started.elapsed();
    let instances: BTreeSet<&str> = cases.iter().map(|c| c.f.instance_id.as_str()).collect();
    let ids: BTreeSet<&str> = cases.iter().map(|c| c.finding.id.as_str()).collect();
    assert_eq!(instances.len(), n, "distinct instances");
    assert_eq!(ids.len(), n, "distinct findings");

    let proxy = FaultProxy::start_random(
        &moto::endpoint(),
        Fault::rate(failure_rate()).seed(seed()).applied(applied()),
    )
    .await;
    let config = responder_config(&proxy.endpoint).await;
    let engine = shipped_engine();

    let run = Instant::now();
    let outcomes: Vec<(usize, Vec<Delivery>)> = futures::stream::iter(cases.iter().enumerate())
        .map(|(i, c)| {
            let (engine, config, gd) = (&engine, &config, &gd);
            async move {
                let deliveries =
                    join_all((0..DELIVERIES).map(|d| deliver(c, d, engine, config, gd))).await;
                (i, deliveries)
            }
        })
        .buffer_unordered(FINDINGS_PARALLEL)
        .collect()
        .await;
    let answering = run.elapsed();

    let mut dead_findings = Vec::new();
    let mut dead_deliveries = 0usize;
    let mut attempts_histogram = [0usize; ATTEMPTS];
    for (i, deliveries) in &outcomes {
        let c = &cases[*i];
        let o = observe(c).await;
        assert_at_most_once(c, &o);
        let answered = deliveries
            .iter()
            .any(|d| matches!(d, Delivery::Answered { .. }));
        for d in deliveries {
            match d {
                Delivery::Answered { attempt } => attempts_histogram[*attempt] += 1,
                Delivery::DeadLettered { errors } => {
                    dead_deliveries += 1;
                    eprintln!("dead-lettered delivery of {}: {errors:?}", c.finding.id);
                }
            }
        }
        match remediated(c, &o) {
            Ok(()) => {}
            Err(missing) => {
                assert!(
                    !answered,
                    "{}: a delivery answered, but the finding is not remediated at the end ({missing}): {o:#?}",
                    c.finding.id
                );
                eprintln!(
                    "dead-lettered finding {} ({}): {missing}",
                    c.finding.id, c.f.instance_id
                );
                dead_findings.push(c.finding.id.clone());
            }
        }
    }
    let actions = proxy.actions();
    let injected: usize = actions.values().map(|a| a.injected).sum();
    eprintln!(
        "chaos: {n} findings x {DELIVERIES} deliveries; setup {setup:.1?}, answering {answering:.1?}, total {:.1?}",
        started.elapsed()
    );
    eprintln!(
        "chaos: EC2 requests {}, injected failures {injected} ({:.1}%); deliveries answered at attempt 1/2/3: {attempts_histogram:?}; dead-lettered deliveries {dead_deliveries}, findings {}: {dead_findings:?}",
        proxy.ec2_calls(),
        100.0 * injected as f64 / proxy.ec2_calls().max(1) as f64,
        dead_findings.len()
    );
    for (action, stats) in &actions {
        eprintln!(
            "chaos:   {action}: {} calls, {} injected ({} applied first), peak {} in flight",
            stats.calls, stats.injected, stats.applied, stats.peak_in_flight
        );
    }
    // notify publishes once per finding (SNS passes the proxy unfaulted).
    assert_eq!(
        proxy.calls("Publish"),
        n - dead_findings.len(),
        "SNS Publish calls: one per remediated finding"
    );
    assert!(
        injected * 10 >= proxy.ec2_calls(),
        "the proxy injected {injected} failures in {} EC2 requests: the chaos did not happen",
        proxy.ec2_calls()
    );
    assert!(
        dead_findings.len() <= MAX_DEAD_LETTERED.min(n),
        "{} of {n} findings dead-lettered (bound {MAX_DEAD_LETTERED}): {dead_findings:?}",
        dead_findings.len()
    );
}
