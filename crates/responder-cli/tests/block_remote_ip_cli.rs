//! `responder plan --never-block` (the deployment's never-block list, as the function's
//! NEVER_BLOCK_CIDRS), and `responder expire` against moto: nothing before the time, then exactly the due
//! entries that are still the responder's; an entry someone replaced is left, and
//! said so. The binary sends no moto account header: it acts in moto's default
//! account, where the VPC and the ledger table of each test are made.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use assert_cmd::Command;
use aws_sdk_ec2::types::{Filter, RuleAction};
use responder_aws::ledger::{BlockRecord, BlockStatus, Ledger, parse_rfc3339};
use responder_tests::guardduty::DEFAULT_ACCOUNT;
use responder_tests::{account, dynamodb, moto};
use serde_json::{Value, json};

fn responder(table: &str, extra: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("responder")
        .unwrap()
        .env_remove("LEDGER_TABLE")
        .env_remove("AWS_PROFILE")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(["expire", "--ledger-table", table, "--endpoint-url"])
        .arg(moto::endpoint())
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// (egress, rule number, deny, block) of every entry of the ACL.
async fn rows(ec2: &aws_sdk_ec2::Client, acl: &str) -> BTreeSet<(bool, i32, bool, String)> {
    let out = ec2
        .describe_network_acls()
        .network_acl_ids(acl)
        .send()
        .await
        .unwrap();
    out.network_acls()[0]
        .entries()
        .iter()
        .map(|e| {
            (
                e.egress().unwrap_or_default(),
                e.rule_number().unwrap_or_default(),
                e.rule_action() == Some(&RuleAction::Deny),
                e.cidr_block()
                    .or(e.ipv6_cidr_block())
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

async fn entry(ec2: &aws_sdk_ec2::Client, acl: &str, number: i32, deny: bool, cidr: &str) {
    let v6 = cidr.contains(':');
    ec2.create_network_acl_entry()
        .network_acl_id(acl)
        .rule_number(number)
        .egress(false)
        .protocol("-1")
        .rule_action(if deny {
            RuleAction::Deny
        } else {
            RuleAction::Allow
        })
        .set_cidr_block((!v6).then(|| cidr.to_owned()))
        .set_ipv6_cidr_block(v6.then(|| cidr.to_owned()))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn expire_removes_due_entries_that_are_still_ours_and_nothing_else() {
    let config = account::sdk_config(&moto::endpoint()).await;
    let ec2 = account::ec2(&config, DEFAULT_ACCOUNT);
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.42.0.0/16")
        .send()
        .await
        .unwrap()
        .vpc()
        .and_then(|v| v.vpc_id())
        .unwrap()
        .to_owned();
    let acls = ec2
        .describe_network_acls()
        .filters(Filter::builder().name("vpc-id").values(&vpc).build())
        .send()
        .await
        .unwrap();
    let acl = acls.network_acls()[0].network_acl_id().unwrap().to_owned();
    let table = format!("gdr-ledger-expire-{}", vpc.trim_start_matches("vpc-"));
    let ledger = Ledger::new(dynamodb::client(&config, DEFAULT_ACCOUNT), &table);
    ledger.create_table().await.unwrap();

    let due = parse_rfc3339("2031-01-01T00:00:00Z").unwrap();
    let record = |number: i32, cidr: &str| BlockRecord {
        expires: due,
        network_acl_id: acl.clone(),
        rule_number: number,
        egress: false,
        cidr: cidr.to_owned(),
        account: DEFAULT_ACCOUNT.to_owned(),
        region: "us-east-1".to_owned(),
        finding_id: "f-expire-cli".to_owned(),
        instance_id: "i-0123456789abcdef0".to_owned(),
        status: BlockStatus::Active,
        note: String::new(),
    };
    // Ours, as the step leaves them: recorded, then created.
    for (n, cidr) in [(90, "198.51.100.7/32"), (91, "2001:db8::66/128")] {
        ledger.record_block_at(&record(n, cidr), due).await.unwrap();
        entry(&ec2, &acl, n, true, cidr).await;
    }
    // A third record whose number someone else now holds with an allow.
    ledger
        .record_block_at(&record(92, "198.51.100.8/32"), due)
        .await
        .unwrap();
    entry(&ec2, &acl, 92, false, "192.0.2.0/24").await;
    let before = rows(&ec2, &acl).await;

    // Before the time: nothing.
    let (code, out, err) = responder(&table, &["--now", "2030-12-31T23:59:59Z"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("no deny entry due"), "{out}");
    assert_eq!(rows(&ec2, &acl).await, before);

    // After: ours are removed, the other one left and said so.
    let (code, out, err) = responder(
        &table,
        &["--now", "2031-01-01T00:00:01Z", "--format", "json"],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let entries = v["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{v:#}");
    let outcome = |n: i64| {
        entries
            .iter()
            .find(|e| e["block"]["rule_number"] == n)
            .map(|e| e["outcome"].as_str().unwrap().to_owned())
    };
    assert_eq!(outcome(90).as_deref(), Some("removed"));
    assert_eq!(outcome(91).as_deref(), Some("removed"));
    assert_eq!(outcome(92).as_deref(), Some("superseded"));
    let after = rows(&ec2, &acl).await;
    let gone: Vec<_> = before.difference(&after).collect();
    assert_eq!(gone.len(), 2, "{gone:?}");
    assert!(
        gone.iter()
            .all(|(_, n, deny, _)| *deny && (*n == 90 || *n == 91))
    );
    assert!(after.contains(&(false, 92, false, "192.0.2.0/24".to_owned())));

    // Done once: a second run finds nothing due.
    let (code, out, _) = responder(&table, &["--now", "2031-01-02T00:00:00Z"]);
    assert_eq!(code, 0);
    assert!(out.contains("no deny entry due"), "{out}");
    let statuses: Vec<BlockStatus> = ledger
        .blocks()
        .await
        .unwrap()
        .iter()
        .map(|b| b.status)
        .collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == BlockStatus::Removed)
            .count(),
        2
    );
    assert!(statuses.contains(&BlockStatus::Superseded));
}

#[test]
fn a_bad_now_is_exit_2() {
    let (code, _, err) = responder("t", &["--now", "tomorrow"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("RFC 3339"), "{err}");
}

/// `responder plan` on the Tor relay sample (answered by command-and-control-ec2,
/// which blocks the remote address) with the extra arguments; (exit code, stdout,
/// stderr).
fn plan(extra: &[&str], env: Option<&str>) -> (i32, String, String) {
    let mut cmd = Command::cargo_bin("responder").unwrap();
    cmd.env_remove("NEVER_BLOCK_CIDRS");
    if let Some(v) = env {
        cmd.env("NEVER_BLOCK_CIDRS", v);
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = cmd
        .arg("plan")
        .arg("--playbooks")
        .arg(root.join("playbooks"))
        .args(["--format", "json"])
        .args(extra)
        .arg(root.join("playbooks/tests/findings/corpus-20-unauthorizedaccess-ec2-torrelay.json"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn block_step(stdout: &str) -> Value {
    let v: Value = serde_json::from_str(stdout).unwrap();
    v["plans"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["action"] == "block-remote-ip")
        .cloned()
        .unwrap_or_else(|| panic!("no block-remote-ip step: {v:#}"))
}

#[test]
fn the_deployments_never_block_list_enters_the_plan() {
    let (code, out, err) = plan(&[], None);
    assert_eq!(code, 0, "{err}");
    let step = block_step(&out);
    assert_eq!(step["cidrs"].as_array().unwrap().len(), 2, "{step:#}");
    assert!(
        step["cidrs"]
            .as_array()
            .unwrap()
            .contains(&json!("198.51.100.0/32"))
    );

    for (args, env) in [
        (vec!["--never-block", "198.51.100.0/24, 192.0.2.0/24"], None),
        (vec![], Some("198.51.100.0/24,192.0.2.0/24")),
    ] {
        let (code, out, err) = plan(&args, env);
        assert_eq!(code, 0, "{err}");
        let step = block_step(&out);
        assert!(
            !step["cidrs"]
                .as_array()
                .unwrap()
                .contains(&json!("198.51.100.0/32")),
            "{step:#}"
        );
        assert_eq!(step["skipped"][0]["address"], "198.51.100.0", "{step:#}");
        assert!(
            step["skipped"][0]["reason"]
                .as_str()
                .unwrap()
                .contains("198.51.100.0/24"),
            "{step:#}"
        );
        assert!(
            step["never_block"]
                .as_array()
                .unwrap()
                .contains(&json!("192.0.2.0/24"))
        );
    }

    let (code, _, err) = plan(&["--never-block", "198.51.100.0/24,nope"], None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nope"), "{err}");
}
