//! Issue 10 ("Prove it") through the real function binary: the deployment's home is
//! moto's default account (the binary sends no account header), and findings about
//! instances of member accounts (fresh account ids, each fixture its own) are
//! answered in those accounts through the member role, which moto lets anyone
//! assume: the assumed credentials' access key makes moto act in the member account.
//! GuardDuty (verification) is the administrator's: every member finding is stored
//! in the deployment's detector, as GuardDuty does for members' findings.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use aws_sdk_ec2::types::Filter;
use common::{DEFAULT_ACCOUNT, Deployment, answer, report, step, steps, world};
use responder_tests::fault::{Fault, FaultProxy};
use responder_tests::finding::bitcoin_dns_event;
use responder_tests::organization::{about_instance, ec2_in_region, instance_in_region, numbered};
use responder_tests::read::{self, QUARANTINE_GROUP};
use responder_tests::runtime_api::{Answer, RuntimeApi};
use responder_tests::{Fixture, FixtureOptions, account, fresh_account, moto};
use serde_json::Value;

/// Everything of the administrator's (the deployment's) account a response could
/// change: its instances with their states, its quarantine groups, its snapshots.
/// The tests of this binary act only in member accounts, so equal before and after
/// means the response did not act in the administrator's account.
async fn admin_world(f: &Fixture) -> (BTreeMap<String, String>, Vec<String>, Vec<String>) {
    let ec2 = account::ec2(&f.config, DEFAULT_ACCOUNT);
    let groups = ec2
        .describe_security_groups()
        .filters(
            Filter::builder()
                .name("group-name")
                .values(QUARANTINE_GROUP)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut groups: Vec<String> = groups
        .security_groups()
        .iter()
        .filter_map(|g| g.group_id().map(str::to_owned))
        .collect();
    groups.sort();
    (
        read::all_instances(&ec2).await,
        groups,
        read::all_snapshots(&ec2, DEFAULT_ACCOUNT).await,
    )
}

/// A folder holding one enforce playbook (the crypto-mining findings) with `steps`,
/// for `PLAYBOOKS_DIR`: cheaper than the shipped playbooks when the test is about
/// accounts, not steps.
fn playbooks_dir(name: &str, steps: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gdr-function-org-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("test.yaml"),
        responder_tests::playbooks::enforce_playbook(steps),
    )
    .unwrap();
    dir
}

/// A member account's finding (fixture in a fresh account, the finding's `accountId`
/// that account, stored in the administrator's detector) is answered by the shipped
/// playbook in the member account: quarantine group in the member's VPC, ENIs
/// isolated, the instance replaced and terminated there. The report names the
/// account, and nothing changed in the administrator's account.
#[tokio::test]
async fn a_member_finding_is_remediated_in_the_member_account() {
    let member = fresh_account();
    assert_ne!(member, DEFAULT_ACCOUNT);
    let f = Fixture::create(&member, FixtureOptions::default()).await;
    let event = bitcoin_dns_event(&f);
    assert_eq!(event["detail"]["accountId"], member.as_str());
    let deployment = Deployment::new(&f, "org-member").await;
    deployment.confirm(&event);
    let admin_before = admin_world(&f).await;

    let mut api = RuntimeApi::start().await.unwrap();
    let _function = deployment.start(&api, &moto::endpoint(), None, "enforce", &[]);
    let id = api.invoke(event);
    let report = report(&api, &id).await;
    assert_eq!(report["status"], "succeeded", "{report:#}");
    assert_eq!(report["account"], member.as_str(), "{report:#}");
    assert_eq!(step(&report, "isolate")["outcome"], "done", "{report:#}");
    assert_eq!(
        steps(&report)
            .iter()
            .map(|(a, _)| a.as_str())
            .collect::<Vec<_>>(),
        ["isolate", "snapshot", "relaunch", "terminate", "notify"],
        "{report:#}"
    );

    // In the member account: quarantined, replaced, terminated.
    let ec2 = f.ec2();
    let quarantine = read::groups_named(&ec2, &f.vpc_id, QUARANTINE_GROUP).await;
    assert_eq!(
        quarantine.len(),
        1,
        "one quarantine group in the member VPC"
    );
    let q = quarantine[0].group_id().unwrap().to_owned();
    for (eni, groups) in read::groups_of_enis(&ec2, &f.enis).await {
        assert_eq!(groups, vec![q.clone()], "{eni} is not isolated");
    }
    assert_eq!(
        read::instance_state(&ec2, &f.instance_id).await.as_deref(),
        Some("terminated")
    );
    assert_eq!(read::replacements(&ec2, &f.instance_id).await.len(), 1);
    assert!(!read::all_snapshots(&ec2, &member).await.is_empty());

    // Nothing in the administrator's account.
    assert_eq!(admin_world(&f).await, admin_before);
    // The ledger is the administrator's: the response is recorded there.
    assert!(
        !deployment
            .ledger
            .history(None, Some(&f.instance_id))
            .await
            .unwrap()
            .is_empty()
    );
}

/// `ALLOWED_ACCOUNTS` without the finding's account: the invocation is an error (so
/// Lambda retries it and dead-letters it) naming the account, no role is assumed and
/// nothing changes in the member's or the administrator's account.
#[tokio::test]
async fn a_finding_from_an_account_not_allowed_is_an_invocation_error() {
    let member = fresh_account();
    let f = Fixture::create(&member, FixtureOptions::default()).await;
    let event = bitcoin_dns_event(&f);
    let deployment = Deployment::new(&f, "org-not-allowed").await;
    deployment.confirm(&event);
    let member_before = world(&f).await;
    let admin_before = admin_world(&f).await;
    let sts = FaultProxy::start(&moto::endpoint(), Vec::new()).await;

    let mut api = RuntimeApi::start().await.unwrap();
    let allowed = fresh_account();
    assert_ne!(allowed, member);
    let _function = deployment.start(
        &api,
        &moto::endpoint(),
        None,
        "enforce",
        &[
            ("ALLOWED_ACCOUNTS", allowed.as_str()),
            ("AWS_ENDPOINT_URL_STS", sts.endpoint.as_str()),
        ],
    );
    let id = api.invoke(event);
    match answer(&api, &id).await {
        Answer::Error(e) => {
            let text = e.to_string();
            assert!(text.contains(&member), "the error names the account: {e:#}");
        }
        Answer::Response(r) => panic!("a finding of an account not allowed succeeded: {r:#}"),
    }
    assert_eq!(sts.calls("AssumeRole"), 0, "no role assumed");
    assert_eq!(world(&f).await, member_before, "the member account changed");
    assert_eq!(
        read::instance_state(&f.ec2(), &f.instance_id)
            .await
            .as_deref(),
        Some("running")
    );
    assert_eq!(
        admin_world(&f).await,
        admin_before,
        "the administrator's changed"
    );
    assert!(
        deployment
            .ledger
            .history(None, Some(&f.instance_id))
            .await
            .unwrap()
            .is_empty()
    );
}

/// The member role cannot be assumed (moto assumes any role: the refusal,
/// AccessDenied, is injected on a proxy in front of STS): the invocation is an error
/// naming the account, the region and the role, after one AssumeRole attempt, and
/// nothing changes in the member's or the administrator's account.
#[tokio::test]
async fn a_role_that_cannot_be_assumed_is_an_invocation_error() {
    let member = fresh_account();
    let f = Fixture::create(&member, FixtureOptions::default()).await;
    let event = bitcoin_dns_event(&f);
    let deployment = Deployment::new(&f, "org-unassumable").await;
    deployment.confirm(&event);
    let member_before = world(&f).await;
    let admin_before = admin_world(&f).await;
    let sts = FaultProxy::start(
        &moto::endpoint(),
        vec![Fault::ec2("AssumeRole", "AccessDenied")],
    )
    .await;

    let mut api = RuntimeApi::start().await.unwrap();
    let _function = deployment.start(
        &api,
        &moto::endpoint(),
        None,
        "enforce",
        &[
            ("MEMBER_ROLE_NAME", "OrgResponder"),
            ("AWS_ENDPOINT_URL_STS", sts.endpoint.as_str()),
        ],
    );
    let id = api.invoke(event);
    match answer(&api, &id).await {
        Answer::Error(e) => {
            let text = e.to_string();
            for part in [
                member.as_str(),
                "us-east-1",
                &format!("arn:aws:iam::{member}:role/OrgResponder"),
            ] {
                assert!(text.contains(part), "the error names {part}: {e:#}");
            }
        }
        Answer::Response(r) => panic!("a finding whose role cannot be assumed succeeded: {r:#}"),
    }
    assert!(sts.calls("AssumeRole") >= 1, "{:?}", sts.actions());
    assert!(sts.hits() >= 1, "the refusal was injected");
    assert_eq!(world(&f).await, member_before, "the member account changed");
    assert_eq!(
        admin_world(&f).await,
        admin_before,
        "the administrator's changed"
    );
}

/// 20 findings from 4 member accounts (5 each), answered one after another by one
/// function process with a tag-only playbook: each member role is assumed once (the
/// clients are cached per account), counted on a proxy in front of moto's STS, and
/// every report names its account and every member instance carries the tag.
#[tokio::test]
async fn twenty_findings_from_four_accounts_assume_each_role_once() {
    let mut fixtures = Vec::new();
    for _ in 0..4 {
        fixtures.push(Fixture::create(&fresh_account(), FixtureOptions::default()).await);
    }
    let deployment = Deployment::new(&fixtures[0], "org-burst").await;
    let mut events: Vec<(String, Value)> = Vec::new();
    for n in 0..5 {
        for f in &fixtures {
            let event = numbered(bitcoin_dns_event(f), &f.account, n);
            deployment.confirm(&event);
            events.push((f.account.clone(), event));
        }
    }
    assert_eq!(events.len(), 20);
    let dir = playbooks_dir("burst", "  - tag:\n      tags: {team: security}");
    let sts = FaultProxy::start(&moto::endpoint(), Vec::new()).await;

    let mut api = RuntimeApi::start().await.unwrap();
    let _function = deployment.start(
        &api,
        &moto::endpoint(),
        Some(&dir),
        "enforce",
        &[("AWS_ENDPOINT_URL_STS", sts.endpoint.as_str())],
    );
    let ids: Vec<(String, String)> = events
        .into_iter()
        .map(|(account, event)| (account, api.invoke(event)))
        .collect();
    for (account, id) in &ids {
        let report = report(&api, id).await;
        assert_eq!(report["status"], "succeeded", "{report:#}");
        assert_eq!(report["account"], account.as_str(), "{report:#}");
        assert_eq!(step(&report, "tag")["outcome"], "done", "{report:#}");
    }
    assert_eq!(
        sts.calls("AssumeRole"),
        4,
        "one AssumeRole per member account: {:?}",
        sts.actions()
    );
    for f in &fixtures {
        let tags = read::instance_tags(&f.ec2(), &f.instance_id).await;
        assert_eq!(
            tags.get("team").map(String::as_str),
            Some("security"),
            "{}: {tags:?}",
            f.account
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The ledger and the blast-radius budget are the administrator's, so they count
/// across accounts: with `MAX_DESTRUCTIVE_PER_HOUR=1`, a finding in one member
/// account is remediated in full and the next, in another member account, keeps
/// the reversible steps with relaunch and terminate withheld (its instance keeps
/// running). Both responses are in the administrator's ledger.
#[tokio::test]
async fn the_budget_counts_across_member_accounts() {
    let first = Fixture::create(&fresh_account(), FixtureOptions::default()).await;
    let second = Fixture::create(&fresh_account(), FixtureOptions::default()).await;
    assert_ne!(first.account, second.account);
    let deployment = Deployment::new(&first, "org-budget").await;
    let e1 = bitcoin_dns_event(&first);
    let e2 = bitcoin_dns_event(&second);
    deployment.confirm(&e1);
    deployment.confirm(&e2);

    let mut api = RuntimeApi::start().await.unwrap();
    let _function = deployment.start(
        &api,
        &moto::endpoint(),
        None,
        "enforce",
        &[("MAX_DESTRUCTIVE_PER_HOUR", "1")],
    );
    let id = api.invoke(e1);
    let r1 = report(&api, &id).await;
    assert_eq!(r1["status"], "succeeded", "{r1:#}");
    assert_eq!(r1["account"], first.account.as_str(), "{r1:#}");
    let id = api.invoke(e2);
    let r2 = report(&api, &id).await;
    assert_eq!(r2["status"], "withheld", "{r2:#}");
    assert_eq!(r2["account"], second.account.as_str(), "{r2:#}");
    let outcomes: BTreeMap<String, String> = steps(&r2).into_iter().collect();
    assert_eq!(outcomes["isolate"], "done", "{r2:#}");
    for action in ["relaunch", "terminate"] {
        assert_eq!(outcomes[action], "skipped", "{r2:#}");
    }
    assert_eq!(
        read::instance_state(&first.ec2(), &first.instance_id)
            .await
            .as_deref(),
        Some("terminated")
    );
    let ec2 = second.ec2();
    assert_eq!(
        read::instance_state(&ec2, &second.instance_id)
            .await
            .as_deref(),
        Some("running")
    );
    assert!(
        read::replacements(&ec2, &second.instance_id)
            .await
            .is_empty()
    );
    for f in [&first, &second] {
        assert!(
            !deployment
                .ledger
                .history(None, Some(&f.instance_id))
                .await
                .unwrap()
                .is_empty(),
            "{} is not in the administrator's ledger",
            f.account
        );
    }
}

/// The documented topology is a stack per Region: the same binary and template,
/// deployed in a second Region (`AWS_REGION=eu-west-3`, its ledger table there),
/// answers a member finding of that Region in that Region: the report names it, the
/// member's instance there is isolated and tagged, the response is in that Region's
/// ledger, and nothing changed in the member's us-east-1 VPC. The same stack refuses
/// a us-east-1 finding (a Region it does not serve) with an error naming the Region,
/// and changes nothing.
#[tokio::test]
async fn a_stack_in_a_second_region_answers_that_regions_findings_there() {
    const OTHER: &str = "eu-west-3";
    let member = fresh_account();
    let f = Fixture::create(&member, FixtureOptions::default()).await;
    let instance = instance_in_region(&f.config, &member, OTHER).await;
    let deployment = Deployment::new_in(&f, "org-second-region", OTHER).await;
    let there = about_instance(
        numbered(bitcoin_dns_event(&f), &member, 1),
        &instance,
        OTHER,
    );
    let home = numbered(bitcoin_dns_event(&f), &member, 2);
    deployment.confirm(&there);
    deployment.confirm(&home);
    let dir = playbooks_dir(
        "second-region",
        "  - isolate: {}\n  - tag:\n      tags: {team: security}",
    );
    let home_before = world(&f).await;

    let mut api = RuntimeApi::start().await.unwrap();
    let _function = deployment.start(
        &api,
        &moto::endpoint(),
        Some(&dir),
        "enforce",
        &[("AWS_REGION", OTHER)],
    );
    let id = api.invoke(there);
    let report = report(&api, &id).await;
    assert_eq!(report["status"], "succeeded", "{report:#}");
    assert_eq!(report["region"], OTHER, "{report:#}");
    assert_eq!(report["account"], member.as_str(), "{report:#}");
    assert_eq!(step(&report, "isolate")["outcome"], "done", "{report:#}");
    let ec2 = ec2_in_region(&f.config, &member, OTHER);
    assert_eq!(
        read::instance_tags(&ec2, &instance)
            .await
            .get("team")
            .map(String::as_str),
        Some("security")
    );
    let enis: Vec<String> = ec2
        .describe_network_interfaces()
        .filters(
            Filter::builder()
                .name("attachment.instance-id")
                .values(&instance)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .network_interfaces()
        .iter()
        .filter_map(|n| n.network_interface_id().map(str::to_owned))
        .collect();
    assert!(!enis.is_empty());
    for (eni, groups) in read::groups_of_enis(&ec2, &enis).await {
        assert_eq!(groups.len(), 1, "{eni}: {groups:?}");
        let name = ec2
            .describe_security_groups()
            .group_ids(&groups[0])
            .send()
            .await
            .unwrap()
            .security_groups()[0]
            .group_name()
            .map(str::to_owned);
        assert_eq!(
            name.as_deref(),
            Some(QUARANTINE_GROUP),
            "{eni} is not isolated"
        );
    }
    assert!(
        !deployment
            .ledger
            .history(None, Some(&instance))
            .await
            .unwrap()
            .is_empty(),
        "the response is in the eu-west-3 ledger"
    );
    assert_eq!(
        world(&f).await,
        home_before,
        "the member's us-east-1 VPC changed"
    );

    // A finding of us-east-1, which this stack does not serve.
    let id = api.invoke(home);
    match answer(&api, &id).await {
        Answer::Error(e) => {
            let text = e.to_string();
            assert!(
                text.contains("us-east-1"),
                "the error names the region: {e:#}"
            );
        }
        Answer::Response(r) => panic!("a finding of a region not served succeeded: {r:#}"),
    }
    assert_eq!(
        world(&f).await,
        home_before,
        "the member's us-east-1 VPC changed"
    );
    assert_eq!(
        read::instance_state(&f.ec2(), &f.instance_id)
            .await
            .as_deref(),
        Some("running")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A finding of member account B naming an instance that does not exist in B (its
/// id is an instance of member account A): the describe runs in B through B's role,
/// finds nothing, and GuardDuty's copy agrees on the account and instance, so the
/// answer is `instance-gone`, naming B; A's instance of that id is untouched, and so
/// is everything of the administrator's. (The administrator's own account is not
/// used for the instance: the other tests here compare it before and after.)
#[tokio::test]
async fn a_member_instance_that_is_not_there_is_gone_and_nothing_else_is_touched() {
    let a = Fixture::create(&fresh_account(), FixtureOptions::default()).await;
    let b = fresh_account();
    assert_ne!(a.account, b);
    let mut event = numbered(bitcoin_dns_event(&a), &b, 3);
    event["detail"]["accountId"] = Value::from(b.as_str());
    event["account"] = Value::from(b.as_str());
    let deployment = Deployment::new(&a, "org-gone").await;
    deployment.confirm(&event);
    let a_before = world(&a).await;
    let admin_before = admin_world(&a).await;
    let sts = FaultProxy::start(&moto::endpoint(), Vec::new()).await;

    let mut api = RuntimeApi::start().await.unwrap();
    let _function = deployment.start(
        &api,
        &moto::endpoint(),
        None,
        "enforce",
        &[("AWS_ENDPOINT_URL_STS", sts.endpoint.as_str())],
    );
    let id = api.invoke(event);
    let report = report(&api, &id).await;
    assert_eq!(report["status"], "instance-gone", "{report:#}");
    assert_eq!(report["account"], b.as_str(), "{report:#}");
    assert_eq!(sts.calls("AssumeRole"), 1, "B's role: {:?}", sts.actions());
    assert_eq!(world(&a).await, a_before, "account A changed");
    assert_eq!(
        admin_world(&a).await,
        admin_before,
        "the administrator's changed"
    );
    assert_eq!(
        read::instance_state(&a.ec2(), &a.instance_id)
            .await
            .as_deref(),
        Some("running")
    );
}
