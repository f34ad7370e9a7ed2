//! Issues 9 (trust) and 10 (member accounts) through `responder run` on moto: the binary with `AWS_ENDPOINT_URL` at moto
//! and `AWS_ENDPOINT_URL_GUARDDUTY` at a local GuardDuty findings endpoint (not
//! `--endpoint-url`: an endpoint set in code is the client's endpoint for every
//! service and wins over the per-service variable, so GuardDuty would go to moto).
//! The binary sends no moto account header: it acts in moto's default account, where
//! the fixtures are built; each test has its own ledger table.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use aws_sdk_ec2::types::{Filter, Tag};
use responder_aws::ledger::Ledger;
use responder_tests::fault::FaultProxy;
use responder_tests::finding::bitcoin_dns_event;
use responder_tests::guardduty::{DEFAULT_ACCOUNT, FindingsEndpoint, Operation};
use responder_tests::{Fixture, FixtureOptions, dynamodb, fresh_account, moto, read};
use serde_json::{Value, json};

fn playbooks() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../playbooks")
}

/// A deployment for one test: its ledger table and a GuardDuty endpoint with the
/// example findings' detector in the default account.
struct Deployment {
    guardduty: FindingsEndpoint,
    detector: String,
    table: String,
}

async fn deployment(f: &Fixture, name: &str) -> Deployment {
    let table = format!("gdr-ledger-cli-{name}");
    Ledger::new(dynamodb::client(&f.config, DEFAULT_ACCOUNT), &table)
        .create_table()
        .await
        .expect("the ledger table in moto");
    let guardduty = FindingsEndpoint::start();
    let detector = bitcoin_dns_event(f)["detail"]["service"]["detectorId"]
        .as_str()
        .unwrap()
        .to_owned();
    guardduty.add_detector(DEFAULT_ACCOUNT, &detector);
    Deployment {
        guardduty,
        detector,
        table,
    }
}

impl Deployment {
    /// `responder run --format json --ledger-table T --playbooks P <event file>`
    /// with the endpoints from the environment; returns (exit code, the one report,
    /// stderr).
    fn run(&self, event: &Value, extra: &[&str]) -> (i32, Value, String) {
        self.run_with(event, extra, &[])
    }

    /// [`Deployment::run`] with extra environment variables.
    fn run_with(
        &self,
        event: &Value,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> (i32, Value, String) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("event.json");
        std::fs::write(&file, event.to_string()).unwrap();
        let (var, url) = self.guardduty.env();
        let out = Command::cargo_bin("responder")
            .unwrap()
            .env_remove("LEDGER_TABLE")
            .env_remove("DETECTOR_ID")
            .env_remove("AWS_PROFILE")
            .env_remove("MAX_DESTRUCTIVE_PER_HOUR")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ENDPOINT_URL", moto::endpoint())
            .env(var, url)
            .envs(env.iter().copied())
            .arg("run")
            .arg("--playbooks")
            .arg(playbooks())
            .args(["--format", "json", "--ledger-table", &self.table])
            .args(extra)
            .arg(&file)
            .output()
            .unwrap();
        let stdout: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let report = stdout["reports"][0].clone();
        (
            out.status.code().unwrap_or(-1),
            report,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

fn with_finding_id(mut event: Value, id: &str) -> Value {
    let old = event["detail"]["id"].as_str().unwrap().to_owned();
    let arn = event["detail"]["arn"].as_str().unwrap().replace(&old, id);
    event["detail"]["id"] = json!(id);
    event["detail"]["arn"] = json!(arn);
    event
}

/// Instances (state, tags), ENIs (groups), security groups and the fixture volumes'
/// snapshots in the fixture's VPC.
async fn world(f: &Fixture) -> BTreeMap<String, String> {
    let ec2 = f.ec2();
    let vpc = || Filter::builder().name("vpc-id").values(&f.vpc_id).build();
    let mut out = BTreeMap::new();
    let instances = ec2
        .describe_instances()
        .filters(vpc())
        .send()
        .await
        .unwrap();
    for i in instances.reservations().iter().flat_map(|r| r.instances()) {
        let id = i.instance_id().unwrap_or_default().to_owned();
        out.insert(
            format!("instance {id}"),
            format!(
                "{:?} {:?}",
                i.state().and_then(|s| s.name()),
                read::instance_tags(&ec2, &id).await
            ),
        );
    }
    let enis = ec2
        .describe_network_interfaces()
        .filters(vpc())
        .send()
        .await
        .unwrap();
    for n in enis.network_interfaces() {
        let mut groups: Vec<&str> = n.groups().iter().filter_map(|g| g.group_id()).collect();
        groups.sort();
        out.insert(
            format!("eni {}", n.network_interface_id().unwrap_or_default()),
            format!("{groups:?}"),
        );
    }
    let groups = ec2
        .describe_security_groups()
        .filters(vpc())
        .send()
        .await
        .unwrap();
    for g in groups.security_groups() {
        out.insert(
            format!("group {}", g.group_id().unwrap_or_default()),
            format!("{:?} {:?}", g.group_name(), g.ip_permissions()),
        );
    }
    let snaps = ec2
        .describe_snapshots()
        .filters(
            Filter::builder()
                .name("volume-id")
                .set_values(Some(f.volumes.clone()))
                .build(),
        )
        .send()
        .await
        .unwrap();
    out.insert(
        "snapshots".to_owned(),
        format!("{}", snaps.snapshots().len()),
    );
    out
}

/// Class 2: an invented finding id is "unverified": exit 0, no step, nothing changed.
/// The same event confirmed by GuardDuty is answered (the control).
#[tokio::test(flavor = "multi_thread")]
async fn run_answers_an_invented_finding_unverified_and_changes_nothing() {
    let f = Fixture::create(DEFAULT_ACCOUNT, FixtureOptions::default()).await;
    let d = deployment(&f, "invented").await;
    let event = with_finding_id(bitcoin_dns_event(&f), "c11a55e20000000000000000deadbeef");
    let before = world(&f).await;

    let (code, report, stderr) = d.run(&event, &[]);
    assert_eq!(code, 0, "{report:#}\n{stderr}");
    assert_eq!(report["status"], "unverified", "{report:#}");
    assert!(report["steps"].as_array().is_none_or(Vec::is_empty));
    assert!(d.guardduty.calls(Operation::GetFindings) >= 1);
    assert_eq!(
        world(&f).await,
        before,
        "an unverified finding changed moto"
    );

    // Control: confirmed, the same event is answered in full (dry run, so the state
    // stays comparable).
    d.guardduty.put_event_finding(&d.detector, &event);
    let (code, report, stderr) = d.run(&event, &["--dry-run"]);
    assert_eq!(code, 0, "{report:#}\n{stderr}");
    assert_eq!(report["status"], "dry-run-passed", "{report:#}");
}

/// Class 4c: the instance already has 48 tags, so the tags the response must write
/// (the replacement's copy of them plus the responder's markers) exceed EC2's 50-tag
/// limit: the response fails (exit 1), the relaunch is reported failed and the
/// terminate never runs: the instance keeps running, isolated.
#[tokio::test(flavor = "multi_thread")]
async fn run_fails_and_terminates_nothing_when_the_record_tag_fails() {
    let f = Fixture::create(DEFAULT_ACCOUNT, FixtureOptions::default()).await;
    let ec2 = f.ec2();
    let have = read::instance_tags(&ec2, &f.instance_id)
        .await
        .keys()
        .filter(|k| !k.starts_with("aws:"))
        .count();
    let mut req = ec2.create_tags().resources(&f.instance_id);
    for n in have..48 {
        req = req.tags(Tag::builder().key(format!("team-{n}")).value("x").build());
    }
    req.send().await.unwrap();
    let d = deployment(&f, "tag-limit").await;
    let event = with_finding_id(bitcoin_dns_event(&f), "c11a554c0000000000000000aaaabbbb");
    d.guardduty.put_event_finding(&d.detector, &event);

    let (code, report, stderr) = d.run(&event, &[]);
    assert_eq!(code, 1, "{report:#}\n{stderr}");
    assert_eq!(report["status"], "failed", "{report:#}");
    let outcome = |action: &str| {
        report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["action"] == action)
            .map(|s| s["outcome"].as_str().unwrap_or_default().to_owned())
    };
    for action in ["relaunch", "terminate"] {
        let o = outcome(action);
        assert!(
            o.as_deref() != Some("done") && o.as_deref() != Some("already-done"),
            "{action} ran: {report:#}"
        );
    }
    assert!(
        report.to_string().contains("TagLimitExceeded"),
        "the failure names the cause: {report:#}"
    );
    assert_eq!(
        read::instance_state(&ec2, &f.instance_id).await.as_deref(),
        Some("running")
    );
    // No replacement is reported. (moto launches the instance before it refuses its
    // tags, so one may exist there; EC2 refuses the whole RunInstances. Either way
    // the service has no fewer instances than before.)
    assert_eq!(outcome("relaunch").as_deref(), Some("failed"), "{report:#}");
    assert!(report["steps"][2].get("resources").is_none(), "{report:#}");
}

/// `--no-verify` says on stderr that nothing is confirmed, and then asks GuardDuty
/// nothing.
#[tokio::test(flavor = "multi_thread")]
async fn run_no_verify_warns() {
    let f = Fixture::create(DEFAULT_ACCOUNT, FixtureOptions::default()).await;
    let d = deployment(&f, "no-verify").await;
    let event = with_finding_id(bitcoin_dns_event(&f), "c11a55aa0000000000000000aaaabbbb");
    let (code, report, stderr) = d.run(&event, &["--no-verify", "--dry-run"]);
    assert_eq!(code, 0, "{report:#}\n{stderr}");
    assert!(stderr.contains("warning: --no-verify"), "{stderr}");
    assert_eq!(report["status"], "dry-run-passed", "{report:#}");
    assert_eq!(d.guardduty.requests().len(), 0);
}

/// Issue 10: `responder run --member-role OrgResponder` on a member account's finding
/// (the fixture in a fresh account, GuardDuty's copy in the caller's detector, as an
/// administrator's): the role is assumed once (counted on a proxy in front of moto's
/// STS), the report names the member account, and the response happens there: the
/// instance replaced and terminated. `--dry-run` first: every call with DryRun in the
/// member account, nothing changed.
#[tokio::test(flavor = "multi_thread")]
async fn run_member_role_answers_in_the_member_account() {
    let member = fresh_account();
    assert_ne!(member, DEFAULT_ACCOUNT);
    let f = Fixture::create(&member, FixtureOptions::default()).await;
    let d = deployment(&f, "member-role").await;
    let event = bitcoin_dns_event(&f);
    assert_eq!(event["detail"]["accountId"], member.as_str());
    d.guardduty.put_event_finding(&d.detector, &event);
    let sts = FaultProxy::start(&moto::endpoint(), Vec::new()).await;
    let before = world(&f).await;
    let member_role = ["--member-role", "OrgResponder"];

    let (code, report, stderr) = d.run_with(
        &event,
        &[member_role.as_slice(), &["--dry-run"]].concat(),
        &[("AWS_ENDPOINT_URL_STS", sts.endpoint.as_str())],
    );
    assert_eq!(code, 0, "{report:#}\n{stderr}");
    assert_eq!(report["status"], "dry-run-passed", "{report:#}");
    assert_eq!(report["account"], member.as_str(), "{report:#}");
    assert_eq!(sts.calls("AssumeRole"), 1, "{:?}", sts.actions());
    assert_eq!(
        world(&f).await,
        before,
        "a dry run changed the member account"
    );

    let (code, report, stderr) = d.run_with(
        &event,
        &member_role,
        &[("AWS_ENDPOINT_URL_STS", sts.endpoint.as_str())],
    );
    assert_eq!(code, 0, "{report:#}\n{stderr}");
    assert_eq!(report["status"], "succeeded", "{report:#}");
    assert_eq!(report["account"], member.as_str(), "{report:#}");
    let ec2 = f.ec2();
    assert_eq!(
        read::instance_state(&ec2, &f.instance_id).await.as_deref(),
        Some("terminated")
    );
    assert_eq!(read::replacements(&ec2, &f.instance_id).await.len(), 1);

    // Without the flag `run` acts in the caller's own account only: the member's
    // finding is an error naming the account and the flag (exit 1), not an
    // "instance gone" from a describe in the wrong account.
    let before = world(&f).await;
    let (code, report, stderr) = d.run(&event, &["--dry-run"]);
    assert_eq!(code, 1, "{report:#}\n{stderr}");
    let error = report["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&member) && error.contains("--member-role"),
        "{report:#}"
    );
    assert_eq!(world(&f).await, before);
}
