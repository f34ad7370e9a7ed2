//! What the tests that drive the real function binary share: a deployment (its own
//! ledger table in moto, a local GuardDuty findings endpoint, the function process
//! with the deployment's environment), events rewritten for a test, and a read-back of
//! everything a response could change in a fixture's VPC.
//!
//! The function binary sends no moto account header, so it acts in moto's default
//! account, which every test of a binary shares: each deployment has its own ledger
//! table (one per test name) so that claims and the hourly budget of one test never
//! meet another's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use aws_sdk_ec2::types::Filter;
use responder_aws::ledger::Ledger;
use responder_tests::guardduty::FindingsEndpoint;
use responder_tests::runtime_api::{Answer, RuntimeApi, function_command};
use responder_tests::{Fixture, dynamodb, read};
use serde_json::{Value, json};

/// moto's account for requests that name none (the function signs with test keys).
pub const DEFAULT_ACCOUNT: &str = "123456789012";

/// The running function process; killed when dropped.
pub struct Function(pub Child);

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One test's deployment: a ledger table of its own and a GuardDuty endpoint holding
/// the detector of the shipped example findings.
pub struct Deployment {
    /// GuardDuty for the function (`AWS_ENDPOINT_URL_GUARDDUTY`).
    pub guardduty: FindingsEndpoint,
    /// The ledger (`LEDGER_TABLE`), created in moto's default account.
    pub ledger: Ledger,
    /// The detector the example findings name.
    pub detector: String,
}

impl Deployment {
    /// Creates the table `gdr-ledger-<name>` and starts the findings endpoint with the
    /// detector that `f`'s events name, owned by the default account.
    pub async fn new(f: &Fixture, name: &str) -> Deployment {
        Deployment::new_in(f, name, "us-east-1").await
    }

    /// Like [`Deployment::new`] for a stack in `region`: its ledger table is created
    /// in that region (start the function with `AWS_REGION` set to it).
    pub async fn new_in(f: &Fixture, name: &str, region: &str) -> Deployment {
        let config = responder_tests::organization::config_in_region(&f.config, region);
        let ledger = Ledger::new(
            dynamodb::client(&config, DEFAULT_ACCOUNT),
            format!("gdr-ledger-{name}"),
        );
        ledger
            .create_table()
            .await
            .expect("the ledger table in moto");
        let guardduty = FindingsEndpoint::start();
        let detector =
            responder_tests::finding::bitcoin_dns_event(f)["detail"]["service"]["detectorId"]
                .as_str()
                .expect("the example event names its detector")
                .to_owned();
        guardduty.add_detector(DEFAULT_ACCOUNT, &detector);
        Deployment {
            guardduty,
            ledger,
            detector,
        }
    }

    /// GuardDuty's copy of `event`'s finding: the finding exists.
    pub fn confirm(&self, event: &Value) -> String {
        self.guardduty.put_event_finding(&self.detector, event)
    }

    /// Starts the function binary against `endpoint` (moto or a fault proxy) in
    /// `mode`, with this deployment's ledger and GuardDuty endpoint, `PLAYBOOKS_DIR`
    /// when given (else the bundled playbooks) and the extra variables.
    pub fn start(
        &self,
        api: &RuntimeApi,
        endpoint: &str,
        playbooks: Option<&Path>,
        mode: &str,
        extra: &[(&str, &str)],
    ) -> Function {
        let mut cmd = function_command(&binary(), api, endpoint, mode);
        let (var, url) = self.guardduty.env();
        cmd.env("LEDGER_TABLE", self.ledger.table()).env(var, url);
        if let Some(dir) = playbooks {
            cmd.env("PLAYBOOKS_DIR", dir);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        Function(cmd.spawn().expect("the function binary starts"))
    }
}

/// The function binary: this build's, or `GDR_FUNCTION_BINARY` (to run the tests
/// against another build, e.g. one from before a fix, and see them fail).
pub fn binary() -> PathBuf {
    std::env::var_os("GDR_FUNCTION_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_guardduty-responder")))
}

/// The shipped playbooks folder.
pub fn playbooks() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../playbooks"))
}

/// The function's answer to invocation `id`.
pub async fn answer(api: &RuntimeApi, id: &str) -> Answer {
    api.answer(id, Duration::from_secs(90))
        .await
        .expect("the function answers within 90 s")
}

/// The report of a successful invocation; panics on an error answer.
pub async fn report(api: &RuntimeApi, id: &str) -> Value {
    match answer(api, id).await {
        Answer::Response(r) => r,
        Answer::Error(e) => panic!("the invocation failed: {e:#}"),
    }
}

/// The event with another finding id (32 lowercase hex-like characters: GuardDuty's
/// form), its ARN and envelope id following.
pub fn with_finding_id(mut event: Value, id: &str) -> Value {
    let arn = event["detail"]["arn"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let old = event["detail"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    event["detail"]["id"] = json!(id);
    event["detail"]["arn"] = json!(arn.replace(&old, id));
    event["id"] = json!(format!("event-{id}"));
    event
}

/// The steps of a report as (action, outcome).
pub fn steps(report: &Value) -> Vec<(String, String)> {
    report["steps"]
        .as_array()
        .map(|s| {
            s.iter()
                .map(|s| {
                    (
                        s["action"].as_str().unwrap_or_default().to_owned(),
                        s["outcome"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The step `action` of a report.
pub fn step<'a>(report: &'a Value, action: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["action"] == action))
        .unwrap_or_else(|| panic!("no {action} step in {report:#}"))
}

fn vpc_filter(vpc_id: &str) -> Filter {
    Filter::builder().name("vpc-id").values(vpc_id).build()
}

/// Everything a response could change in the fixture's VPC, as text lines: every
/// instance (state, tags, profile), every ENI (attachment, groups), every security
/// group (rules), and the snapshots of every volume in it. Equal before and after
/// means nothing was changed there.
pub async fn world(f: &Fixture) -> BTreeMap<String, String> {
    let ec2 = f.ec2();
    let mut out = BTreeMap::new();
    let instances = ec2
        .describe_instances()
        .filters(vpc_filter(&f.vpc_id))
        .send()
        .await
        .unwrap();
    let mut volumes = Vec::new();
    for i in instances.reservations().iter().flat_map(|r| r.instances()) {
        let id = i.instance_id().unwrap_or_default().to_owned();
        let mut tags: Vec<String> = i
            .tags()
            .iter()
            .map(|t| format!("{}={}", t.key().unwrap_or(""), t.value().unwrap_or("")))
            .collect();
        tags.sort();
        out.insert(
            format!("instance {id}"),
            format!(
                "{:?} profile={:?} tags={tags:?}",
                i.state().and_then(|s| s.name()),
                i.iam_instance_profile().and_then(|p| p.arn()),
            ),
        );
        volumes.extend(
            i.block_device_mappings()
                .iter()
                .filter_map(|m| m.ebs()?.volume_id().map(str::to_owned)),
        );
        out.insert(
            format!("profile association {id}"),
            format!("{:?}", read::profile_association_state(&ec2, &id).await),
        );
    }
    let enis = ec2
        .describe_network_interfaces()
        .filters(vpc_filter(&f.vpc_id))
        .send()
        .await
        .unwrap();
    for n in enis.network_interfaces() {
        let mut groups: Vec<&str> = n.groups().iter().filter_map(|g| g.group_id()).collect();
        groups.sort();
        out.insert(
            format!("eni {}", n.network_interface_id().unwrap_or_default()),
            format!(
                "attached to {:?}, groups {groups:?}",
                n.attachment().and_then(|a| a.instance_id())
            ),
        );
    }
    let groups = ec2
        .describe_security_groups()
        .filters(vpc_filter(&f.vpc_id))
        .send()
        .await
        .unwrap();
    for g in groups.security_groups() {
        out.insert(
            format!("group {}", g.group_id().unwrap_or_default()),
            format!(
                "{} in={:?} out={:?} tags={:?}",
                g.group_name().unwrap_or_default(),
                g.ip_permissions(),
                g.ip_permissions_egress(),
                g.tags()
            ),
        );
    }
    volumes.sort();
    if !volumes.is_empty() {
        let snaps = ec2
            .describe_snapshots()
            .filters(
                Filter::builder()
                    .name("volume-id")
                    .set_values(Some(volumes))
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let mut ids: Vec<&str> = snaps
            .snapshots()
            .iter()
            .filter_map(|s| s.snapshot_id())
            .collect();
        ids.sort();
        out.insert("snapshots".to_owned(), format!("{ids:?}"));
    }
    out
}
