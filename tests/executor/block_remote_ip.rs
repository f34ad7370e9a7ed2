//! `block-remote-ip` on moto: deny entries for IPv4 and IPv6 addresses, inbound and
//! outbound, under free numbers below the first allow entry, others' entries
//! untouched; the never-block list (defaults, the VPC's own block, the playbook's);
//! ten deliveries make one set of entries; the ACL's entry limit; and the expiry,
//! which removes only what is due and still exactly ours.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use aws_sdk_ec2::types::{Filter, NetworkAcl, NetworkAclEntry, RuleAction};
use responder_aws::expire::{Acting, ExpiryOutcome, expire_due};
use responder_aws::ledger::BlockStatus;
use responder_aws::{Outcome, Report};
use responder_core::{Finding, Plan};
use responder_tests::fault::{Fault, FaultProxy};
use responder_tests::finding::{bitcoin_dns_event, finding};
use responder_tests::playbooks::{enforce_playbook, plan_with};
use responder_tests::{Fixture, account, moto};

use crate::common::{assert_done, default_fixture, deliver, pretty, respond, step};

/// One entry as compared here: (egress, rule number, deny, block).
type Row = (bool, i32, bool, String);

fn row(e: &NetworkAclEntry) -> Row {
    (
        e.egress().unwrap_or_default(),
        e.rule_number().unwrap_or_default(),
        e.rule_action() == Some(&RuleAction::Deny),
        e.cidr_block()
            .or(e.ipv6_cidr_block())
            .unwrap_or_default()
            .to_owned(),
    )
}

/// The network ACL of the fixture's subnet, as moto holds it now.
async fn subnet_acl(f: &Fixture) -> NetworkAcl {
    let out = f
        .ec2()
        .describe_network_acls()
        .filters(
            Filter::builder()
                .name("association.subnet-id")
                .values(&f.subnet_id)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(out.network_acls().len(), 1, "{out:?}");
    out.network_acls()[0].clone()
}

async fn rows(f: &Fixture) -> BTreeSet<Row> {
    subnet_acl(f).await.entries().iter().map(row).collect()
}

/// Adds an entry as someone else would.
async fn add_entry(f: &Fixture, egress: bool, number: i32, allow: bool, cidr: &str) {
    let acl = subnet_acl(f).await;
    f.ec2()
        .create_network_acl_entry()
        .network_acl_id(acl.network_acl_id().unwrap())
        .rule_number(number)
        .egress(egress)
        .protocol("-1")
        .rule_action(if allow {
            RuleAction::Allow
        } else {
            RuleAction::Deny
        })
        .cidr_block(cidr)
        .send()
        .await
        .unwrap();
}

/// The bitcoin DNS finding about the fixture, naming these remote addresses (as
/// GuardDuty's copy would: the typed view is what plans read).
fn finding_with(f: &Fixture, ips: &[&str]) -> Finding {
    let mut fd = finding(&bitcoin_dns_event(f));
    fd.remote_ips = ips.iter().map(|s| (*s).to_owned()).collect();
    fd
}

fn plan(fd: &Finding, params: &str) -> Plan {
    plan_with(
        &enforce_playbook(&format!("  - block-remote-ip: {params}")),
        fd,
    )
}

/// The deny entries for `cidr` in the fixture's ACL: (egress, number).
fn denies(acl: &BTreeSet<Row>, cidr: &str) -> Vec<(bool, i32)> {
    acl.iter()
        .filter(|(_, _, deny, c)| *deny && c == cidr)
        .map(|(egress, n, _, _)| (*egress, *n))
        .collect()
}

fn first_allow(acl: &BTreeSet<Row>, egress: bool) -> i32 {
    acl.iter()
        .filter(|(e, _, deny, _)| *e == egress && !deny)
        .map(|(_, n, _, _)| *n)
        .min()
        .unwrap()
}

fn notes(r: &Report) -> String {
    step(r, "block-remote-ip").notes.join("\n")
}

#[tokio::test]
async fn denies_v4_and_v6_in_and_out_below_the_first_allow_leaving_others_entries() {
    let f = default_fixture().await;
    // Someone else's entries: an inbound allow at 50 (so ours must be below 50) and
    // an outbound deny at 40.
    add_entry(&f, false, 50, true, "192.0.2.0/24").await;
    add_entry(&f, true, 40, false, "203.0.113.0/24").await;
    let before = rows(&f).await;
    let fd = finding_with(&f, &["198.51.100.7", "2001:db8::66"]);
    let report = respond(&f, &fd, &plan(&fd, "{expire_after_hours: 6}")).await;
    assert_done(&report, "block-remote-ip");

    let after = rows(&f).await;
    assert!(before.is_subset(&after), "an entry was replaced or removed");
    assert_eq!(after.len(), before.len() + 4, "{after:#?}");
    for cidr in ["198.51.100.7/32", "2001:db8::66/128"] {
        let d = denies(&after, cidr);
        assert_eq!(d.len(), 2, "{cidr}: {after:#?}");
        for (egress, n) in d {
            assert!(
                n < first_allow(&after, egress),
                "{cidr} denied at {n}, after the first allow"
            );
        }
    }
    // Each entry is in the ledger before it expires, in about six hours.
    let ledger = f.ledger().await;
    let blocks = ledger.blocks().await.unwrap();
    assert_eq!(blocks.len(), 4, "{blocks:#?}");
    let acl = subnet_acl(&f).await;
    for b in &blocks {
        assert_eq!(b.status, BlockStatus::Active);
        assert_eq!(b.network_acl_id, acl.network_acl_id().unwrap());
        assert_eq!(b.finding_id, fd.id);
        assert_eq!(b.instance_id, f.instance_id);
        assert_eq!(b.account, f.account);
        assert!(after.contains(&(b.egress, b.rule_number, true, b.cidr.clone())));
        let left = b.expires.duration_since(SystemTime::now()).unwrap();
        assert!(
            left > Duration::from_secs(5 * 3600) && left <= Duration::from_secs(6 * 3600),
            "{left:?}"
        );
    }
    assert_eq!(step(&report, "block-remote-ip").resources.len(), 4);
}

#[tokio::test]
async fn never_blocks_the_defaults_the_vpc_or_the_playbooks_list() {
    let f = default_fixture().await;
    let fd = finding_with(
        &f,
        &[
            "10.0.1.5",
            "169.254.169.254",
            "fd00:ec2::254",
            "127.0.0.1",
            "203.0.113.9",
            "198.51.100.7",
        ],
    );
    let before = rows(&f).await;
    // The planner never blocks private space now (10.0.1.5 is skipped there, issue
    // 19.3); an address of the VPC in a plan anyway (a plan made before, a list
    // without the private ranges) is still refused here, from the live VPC's blocks.
    let mut planned = plan(&fd, "{never_block: [203.0.113.0/24]}");
    for s in &mut planned.steps {
        if let responder_core::steps::Action::BlockRemoteIp(b) = &mut s.action {
            b.cidrs.insert(0, "10.0.1.5/32".to_owned());
            b.never_block.retain(|c| c != "10.0.0.0/8");
        }
    }
    let report = respond(&f, &fd, &planned).await;
    assert_done(&report, "block-remote-ip");
    let after = rows(&f).await;
    let added: Vec<&Row> = after.difference(&before).collect();
    assert_eq!(added.len(), 2, "{added:#?}");
    assert!(
        added
            .iter()
            .all(|(_, _, deny, c)| *deny && c == "198.51.100.7/32")
    );
    let n = notes(&report);
    for (ip, why) in [
        ("10.0.1.5", "VPC's own block 10.0.0.0/16"),
        ("169.254.169.254", "169.254.0.0/16"),
        ("fd00:ec2::254", "fd00:ec2::/32"),
        ("127.0.0.1", "127.0.0.0/8"),
        ("203.0.113.9", "203.0.113.0/24"),
    ] {
        assert!(
            n.lines().any(|l| l.contains(ip) && l.contains(why)),
            "{ip}: {why} missing from\n{n}"
        );
    }

    // Nothing left to block: skipped, nothing added, the reasons said.
    let g = default_fixture().await;
    let fd = finding_with(&g, &["10.0.9.9", "169.254.169.253"]);
    let before = rows(&g).await;
    let report = respond(&g, &fd, &plan(&fd, "{}")).await;
    assert!(
        matches!(
            step(&report, "block-remote-ip").outcome,
            Outcome::Skipped { .. }
        ),
        "{}",
        pretty(&report)
    );
    assert_eq!(rows(&g).await, before);
}

#[tokio::test]
async fn ten_deliveries_make_one_set_of_entries() {
    let f = default_fixture().await;
    let fd = finding_with(&f, &["198.51.100.7", "2001:db8::66"]);
    let plan = plan(&fd, "{}");
    let before = rows(&f).await;
    for _ in 0..10 {
        let r = respond(&f, &fd, &plan).await;
        assert!(!r.is_failure(), "{}", pretty(&r));
    }
    let after = rows(&f).await;
    assert_eq!(after.len(), before.len() + 4, "{after:#?}");
    let blocks = f.ledger().await.blocks().await.unwrap();
    assert_eq!(blocks.len(), 4, "{blocks:#?}");

    // Another finding about the same address: found denied, nothing added, nothing
    // recorded (the entries are the first finding's, and expire with it).
    let mut other = fd.clone();
    other.id = format!("{}-again", fd.id);
    let r = respond(
        &f,
        &other,
        &plan_with(&enforce_playbook("  - block-remote-ip: {}"), &other),
    )
    .await;
    assert!(
        matches!(
            step(&r, "block-remote-ip").outcome,
            Outcome::AlreadyDone { .. }
        ),
        "{}",
        pretty(&r)
    );
    assert_eq!(rows(&f).await, after);
    assert_eq!(f.ledger().await.blocks().await.unwrap().len(), 4);
}

#[tokio::test]
async fn without_room_the_step_fails_and_touches_nothing() {
    let f = default_fixture().await;
    // Inbound: the default allow at 100 plus two of someone else's: 3 IPv4 rules.
    add_entry(&f, false, 10, false, "192.0.2.0/24").await;
    add_entry(&f, false, 20, false, "192.0.2.128/25").await;
    let before = rows(&f).await;
    let fd = finding_with(&f, &["198.51.100.7"]);
    let report = respond(&f, &fd, &plan(&fd, "{entry_limit: 3}")).await;
    match &step(&report, "block-remote-ip").outcome {
        Outcome::Failed { message, .. } => {
            assert!(message.contains("do not fit"), "{message}");
            assert!(message.contains("none removed"), "{message}");
        }
        other => panic!("expected a failure, got {other:?}\n{}", pretty(&report)),
    }
    assert_eq!(rows(&f).await, before);
    assert!(f.ledger().await.blocks().await.unwrap().is_empty());

    // An allow at rule 1 leaves no number a deny could take before it.
    let g = default_fixture().await;
    add_entry(&g, true, 1, true, "0.0.0.0/0").await;
    let before = rows(&g).await;
    let fd = finding_with(&g, &["198.51.100.7"]);
    let report = respond(&g, &fd, &plan(&fd, "{}")).await;
    match &step(&report, "block-remote-ip").outcome {
        Outcome::Failed { message, .. } => {
            assert!(
                message.contains("below its first allow entry (1)"),
                "{message}"
            )
        }
        other => panic!("expected a failure, got {other:?}\n{}", pretty(&report)),
    }
    assert_eq!(rows(&g).await, before);
}

#[tokio::test]
async fn expiry_removes_only_what_is_due_and_still_ours() {
    let f = default_fixture().await;
    let before = rows(&f).await;
    let fd = finding_with(&f, &["198.51.100.7", "198.51.100.8"]);
    let report = respond(&f, &fd, &plan(&fd, "{expire_after_hours: 2}")).await;
    assert_done(&report, "block-remote-ip");
    let blocked = rows(&f).await;
    assert_eq!(blocked.len(), before.len() + 4);
    let ledger = f.ledger().await;
    let clients = f.clients();

    // Before the time: nothing is due, nothing removed.
    let now = SystemTime::now();
    let early = expire_due(
        &ledger,
        Acting::Clients(&clients),
        now + Duration::from_secs(3600),
    )
    .await
    .unwrap();
    assert!(early.is_empty(), "{early:#?}");
    assert_eq!(rows(&f).await, blocked);

    // Someone replaces our inbound entry for .7 with their own at the same number.
    let ours = ledger
        .blocks()
        .await
        .unwrap()
        .into_iter()
        .find(|b| !b.egress && b.cidr == "198.51.100.7/32")
        .unwrap();
    let acl = ours.network_acl_id.clone();
    f.ec2()
        .delete_network_acl_entry()
        .network_acl_id(&acl)
        .rule_number(ours.rule_number)
        .egress(false)
        .send()
        .await
        .unwrap();
    add_entry(&f, false, ours.rule_number, false, "198.51.100.0/24").await;

    // After the time: ours are removed, theirs is left, and each record says so.
    let late = now + Duration::from_secs(3 * 3600);
    let done = expire_due(&ledger, Acting::Clients(&clients), late)
        .await
        .unwrap();
    let outcomes: Vec<ExpiryOutcome> = done.iter().map(|e| e.outcome).collect();
    assert_eq!(done.len(), 4, "{done:#?}");
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == ExpiryOutcome::Removed)
            .count(),
        3,
        "{done:#?}"
    );
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == ExpiryOutcome::Superseded)
            .count(),
        1,
        "{done:#?}"
    );
    let mut expected = before.clone();
    expected.insert((false, ours.rule_number, true, "198.51.100.0/24".to_owned()));
    assert_eq!(rows(&f).await, expected);
    let records = ledger.blocks().await.unwrap();
    assert_eq!(records.len(), 4);
    for r in &records {
        let want = if r.egress == ours.egress && r.rule_number == ours.rule_number {
            BlockStatus::Superseded
        } else {
            BlockStatus::Removed
        };
        assert_eq!(r.status, want, "{r:#?}");
        assert!(!r.note.is_empty());
    }
    // A second run finds nothing due.
    let again = expire_due(&ledger, Acting::Clients(&clients), late)
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:#?}");
    assert_eq!(rows(&f).await, expected);
}

#[tokio::test]
async fn a_dry_run_adds_and_records_nothing() {
    let f = default_fixture().await;
    let fd = finding_with(&f, &["198.51.100.7"]);
    let plan = plan_with(
        &responder_tests::playbooks::dry_run_playbook("  - block-remote-ip: {}"),
        &fd,
    );
    let before = rows(&f).await;
    let report = respond(&f, &fd, &plan).await;
    let s = step(&report, "block-remote-ip");
    assert!(
        matches!(s.outcome, Outcome::WouldSucceed),
        "{}",
        pretty(&report)
    );
    assert!(
        notes(&report).contains("would deny 2 entries"),
        "{}",
        notes(&report)
    );
    assert_eq!(rows(&f).await, before);
    assert!(f.ledger().await.blocks().await.unwrap().is_empty());
}

/// An executor (with the account's ledger) whose EC2 requests go through a proxy in
/// front of moto that answers `action` with the fault.
async fn faulty(f: &Fixture, fault: Fault) -> (FaultProxy, responder_aws::Executor) {
    let proxy = FaultProxy::start(&moto::endpoint(), vec![fault]).await;
    let config = account::sdk_config(&proxy.endpoint).await;
    let exec = responder_aws::Executor::new(
        account::clients(&config, &f.account),
        responder_aws::ExecOptions::default(),
    )
    .with_ledger(f.ledger().await);
    (proxy, exec)
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_is_kept_and_expires() {
    let f = default_fixture().await;
    let (_proxy, exec) = faulty(&f, Fault::lost_answer("CreateNetworkAclEntry")).await;
    let fd = finding_with(&f, &["198.51.100.7"]);
    let before = rows(&f).await;
    let report = deliver(&exec, &fd, &plan(&fd, "{}")).await;
    assert_done(&report, "block-remote-ip");
    let after = rows(&f).await;
    assert_eq!(after.len(), before.len() + 2, "{after:#?}");
    // Both entries are recorded active: the expiry will remove them.
    let blocks = f.ledger().await.blocks().await.unwrap();
    assert_eq!(blocks.len(), 2, "{blocks:#?}");
    assert!(blocks.iter().all(|b| b.status == BlockStatus::Active
        && after.contains(&(b.egress, b.rule_number, true, b.cidr.clone()))));
}

#[tokio::test]
async fn numbers_always_taken_fail_after_bounded_attempts_leaving_nothing() {
    let f = default_fixture().await;
    let (proxy, exec) = faulty(
        &f,
        Fault::ec2("CreateNetworkAclEntry", "NetworkAclEntryAlreadyExists"),
    )
    .await;
    let fd = finding_with(&f, &["198.51.100.7"]);
    let before = rows(&f).await;
    let report = deliver(&exec, &fd, &plan(&fd, "{}")).await;
    match &step(&report, "block-remote-ip").outcome {
        Outcome::Failed { message, .. } => {
            assert!(message.contains("kept being taken"), "{message}")
        }
        other => panic!("expected a failure, got {other:?}\n{}", pretty(&report)),
    }
    assert_eq!(proxy.calls("CreateNetworkAclEntry"), 5, "bounded attempts");
    assert_eq!(rows(&f).await, before);
    // Each attempt was recorded first and marked not-created after (the proxy keeps
    // the number free, so the same number and key come back each time).
    let blocks = f.ledger().await.blocks().await.unwrap();
    assert!(!blocks.is_empty());
    assert!(
        blocks.iter().all(|b| b.status == BlockStatus::NotCreated),
        "{blocks:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_accounts_entries_are_made_and_expired_in_the_member_account() {
    use responder_aws::accounts::AccountSettings;
    use responder_aws::responder::Answer;
    use responder_tests::organization::{ADMIN_DETECTOR, Admin, numbered};

    let admin = Admin::new().await;
    let member = default_fixture().await;
    let pool = admin.pool(&moto::endpoint(), AccountSettings::default());
    let responder = admin
        .responder(&enforce_playbook("  - block-remote-ip: {}"), pool, 10)
        .await;
    let mut event = numbered(bitcoin_dns_event(&member), &member.account, 1);
    event["detail"]["service"]["action"] = serde_json::json!({
        "actionType": "NETWORK_CONNECTION",
        "networkConnectionAction": {
            "connectionDirection": "OUTBOUND",
            "remoteIpDetails": {"ipAddressV4": "198.51.100.7"}
        }
    });
    admin.findings.put_event_finding(ADMIN_DETECTOR, &event);
    let fd = finding(&event);
    let before = rows(&member).await;
    let report = match responder.answer(&fd, "delivery-1").await {
        Ok(Answer::Responded(r)) => *r,
        other => panic!("{other:?}"),
    };
    assert_done(&report, "block-remote-ip");
    let after = rows(&member).await;
    assert_eq!(
        after.len(),
        before.len() + 2,
        "in the member's ACL: {after:#?}"
    );
    // Recorded in the administrator's ledger, naming the member account.
    let ledger = responder.executor().ledger().unwrap().clone();
    let blocks = ledger.blocks().await.unwrap();
    assert_eq!(blocks.len(), 2);
    assert!(blocks.iter().all(|b| b.account == member.account));

    // Expiry through the pool: in the member account, through its role.
    let pool = responder.accounts().unwrap();
    let later = SystemTime::now() + Duration::from_secs(25 * 3600);
    let done = expire_due(&ledger, Acting::Pool(pool), later)
        .await
        .unwrap();
    assert_eq!(done.len(), 2, "{done:#?}");
    assert!(
        done.iter().all(|e| e.outcome == ExpiryOutcome::Removed),
        "{done:#?}"
    );
    assert_eq!(rows(&member).await, before);
}
