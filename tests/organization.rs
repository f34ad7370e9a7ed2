//! An organization's responder, in process on moto: the administrator's Responder
//! answers member findings in the member account through the assumed member role
//! (`responder_aws::accounts::ClientPool`), verifies and archives with its own
//! detector, and keeps the ledger and the budget in its own account.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use responder_aws::accounts::{AccountReason, AccountSettings, ClientPool};
use responder_aws::responder::{Answer, AnswerError};
use responder_aws::{ExecOptions, Report, Status};
use responder_tests::fault::{Fault, FaultProxy};
use responder_tests::fixture::LEDGER_TABLE;
use responder_tests::guardduty::Operation;
use responder_tests::organization::{
    ADMIN_DETECTOR, Admin, about_instance, ec2_in_region, in_region, instance_in_region, numbered,
};
use responder_tests::read::{self, QUARANTINE_GROUP};
use responder_tests::{Fixture, FixtureOptions, moto};

const TAG_AND_STOP: &str = "  - isolate: {}\n  - tag:\n      tags: {team: security}\n  - stop: {}\n  - archive-finding: {}";
const TAG_ONLY: &str = "  - tag:\n      tags: {team: security}";

fn playbook(steps: &str) -> String {
    responder_tests::playbooks::enforce_playbook(steps)
}

fn report(answer: Result<Answer, AnswerError>) -> Report {
    match answer {
        Ok(Answer::Responded(r)) => *r,
        Ok(Answer::NoAction { decision, .. }) => panic!("no action: {decision}"),
        Err(e) => panic!("answer failed: {e}"),
    }
}

fn account_error(answer: Result<Answer, AnswerError>) -> (String, AccountReason) {
    match answer {
        Err(AnswerError::Account(e)) => (e.to_string(), e.reason),
        Err(e) => panic!("expected an account error, got {e}"),
        Ok(a) => panic!("expected an account error, got {a:?}"),
    }
}

/// Every instance of the account with its state, and the quarantine groups of `vpc`:
/// what "nothing changed" compares.
async fn state(f: &Fixture) -> (String, usize, std::collections::BTreeMap<String, String>) {
    let ec2 = f.ec2();
    (
        read::instance_state(&ec2, &f.instance_id)
            .await
            .unwrap_or_default(),
        read::groups_named(&ec2, &f.vpc_id, QUARANTINE_GROUP)
            .await
            .len(),
        read::instance_tags(&ec2, &f.instance_id).await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_finding_is_answered_in_the_member_account_only() {
    let admin = Admin::new().await;
    // The administrator runs a workload too, in the same VPC layout: it must not
    // be touched by the member's finding.
    let (admin_fixture, member) = tokio::join!(
        Fixture::create(&admin.account, FixtureOptions::default()),
        Fixture::new(FixtureOptions::default())
    );
    let before_admin = state(&admin_fixture).await;
    let pool = admin.pool(&moto::endpoint(), AccountSettings::default());
    let responder = admin.responder(&playbook(TAG_AND_STOP), pool, 10).await;
    let finding = admin.member_finding(&member, 1);

    let r = report(responder.answer(&finding, "delivery-1").await);
    assert_eq!(r.status, Status::Succeeded, "{r:#?}");
    assert_eq!(r.account.as_deref(), Some(member.account.as_str()));
    assert_eq!(r.region.as_deref(), Some("us-east-1"));

    let ec2 = member.ec2();
    assert_eq!(
        read::instance_state(&ec2, &member.instance_id)
            .await
            .as_deref(),
        Some("stopped")
    );
    assert_eq!(
        read::instance_tags(&ec2, &member.instance_id)
            .await
            .get("team")
            .map(String::as_str),
        Some("security")
    );
    assert_eq!(
        read::groups_named(&ec2, &member.vpc_id, QUARANTINE_GROUP)
            .await
            .len(),
        1,
        "the quarantine group is made in the member's VPC"
    );
    // Nothing in the administrator's account changed.
    assert_eq!(state(&admin_fixture).await, before_admin);
    // Archived through the administrator's detector, not the ARN's member detector.
    assert_eq!(admin.findings.calls(Operation::ArchiveFindings), 1);
    let copy = admin
        .findings
        .finding(ADMIN_DETECTOR, &finding.id)
        .expect("the administrator's copy");
    assert_eq!(copy["service"]["archived"], true, "{copy}");
    assert_eq!(responder.accounts().map(|p| p.assume_role_calls()), Some(1));
    // The ledger is the administrator's: the member account has no table.
    let history = responder
        .executor()
        .ledger()
        .expect("ledger")
        .history(Some(&finding.id), None)
        .await
        .expect("history");
    assert!(
        !history.is_empty(),
        "the administrator's ledger records the steps"
    );
    let member_tables = responder_tests::dynamodb::client(&member.config, &member.account)
        .list_tables()
        .send()
        .await
        .expect("ListTables");
    assert!(
        !member_tables
            .table_names()
            .iter()
            .any(|t| t == LEDGER_TABLE),
        "no ledger in the member account"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_account_outside_allowed_accounts_is_an_error_and_nothing_changes() {
    let admin = Admin::new().await;
    let member = Fixture::new(FixtureOptions::default()).await;
    let before = state(&member).await;
    let pool = admin.pool(
        &moto::endpoint(),
        AccountSettings {
            allowed_accounts: Some(BTreeSet::from(["000000000001".to_owned()])),
            ..AccountSettings::default()
        },
    );
    let responder = admin.responder(&playbook(TAG_AND_STOP), pool, 10).await;
    let finding = admin.member_finding(&member, 1);
    let (message, reason) = account_error(responder.answer(&finding, "d").await);
    assert_eq!(reason, AccountReason::NotAllowed);
    assert!(message.contains(&member.account), "{message}");
    assert!(message.contains("us-east-1"), "{message}");
    assert_eq!(state(&member).await, before);
    assert_eq!(responder.accounts().map(|p| p.assume_role_calls()), Some(0));
    assert_eq!(
        admin.findings.calls(Operation::GetFindings),
        0,
        "refused before anything is asked"
    );
    assert_eq!(admin.findings.calls(Operation::ArchiveFindings), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_role_that_cannot_be_assumed_is_an_error_and_nothing_changes() {
    let admin = Admin::new().await;
    let member = Fixture::new(FixtureOptions::default()).await;
    let before = state(&member).await;
    // moto lets any role be assumed: the refusal is injected in front of it.
    let proxy = FaultProxy::start(
        &moto::endpoint(),
        vec![Fault::ec2("AssumeRole", "AccessDenied")],
    )
    .await;
    let pool = admin.pool(
        &proxy.endpoint,
        AccountSettings {
            member_role: Some("Responder".to_owned()),
            ..AccountSettings::default()
        },
    );
    let responder = admin.responder(&playbook(TAG_AND_STOP), pool, 10).await;
    let finding = admin.member_finding(&member, 1);
    let (message, reason) = account_error(responder.answer(&finding, "d").await);
    assert!(
        matches!(reason, AccountReason::AssumeRole { ref role_arn, .. }
            if *role_arn == format!("arn:aws:iam::{}:role/Responder", member.account)),
        "{reason:?}"
    );
    assert!(
        message.contains(&member.account) && message.contains("us-east-1"),
        "{message}"
    );
    assert!(proxy.hits() >= 1, "AssumeRole reached the proxy");
    assert_eq!(state(&member).await, before);
    assert_eq!(admin.findings.calls(Operation::ArchiveFindings), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_region_the_deployment_does_not_serve_is_an_error() {
    let admin = Admin::new().await;
    let member = Fixture::new(FixtureOptions::default()).await;
    let before = state(&member).await;
    let pool = admin.pool(&moto::endpoint(), AccountSettings::default());
    let responder = admin.responder(&playbook(TAG_AND_STOP), pool, 10).await;
    let event = in_region(
        numbered(
            responder_tests::finding::bitcoin_dns_event(&member),
            &member.account,
            1,
        ),
        "eu-west-3",
    );
    admin.findings.put_event_finding(ADMIN_DETECTOR, &event);
    let finding = responder_tests::finding::finding(&event);
    let (message, reason) = account_error(responder.answer(&finding, "d").await);
    assert!(
        matches!(reason, AccountReason::RegionNotServed { .. }),
        "{reason:?}"
    );
    assert!(
        message.contains("eu-west-3") && message.contains(&member.account),
        "{message}"
    );
    assert_eq!(state(&member).await, before);
    assert_eq!(responder.accounts().map(|p| p.assume_role_calls()), Some(0));
    assert_eq!(
        admin.findings.calls(Operation::GetFindings),
        0,
        "refused before anything is asked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_findings_from_four_accounts_assume_each_role_once() {
    let admin = Admin::new().await;
    let members =
        futures::future::join_all((0..4).map(|_| Fixture::new(FixtureOptions::default()))).await;
    let pool = admin.pool(&moto::endpoint(), AccountSettings::default());
    let responder = admin.responder(&playbook(TAG_ONLY), pool, 10).await;
    let findings: Vec<_> = (0..5)
        .flat_map(|n| members.iter().map(move |m| (m, n)))
        .map(|(m, n)| admin.member_finding(m, n))
        .collect();
    let answers = futures::future::join_all(findings.iter().enumerate().map(|(i, f)| {
        let responder = &responder;
        async move { responder.answer(f, &format!("delivery-{i}")).await }
    }))
    .await;
    for a in answers {
        let r = report(a);
        assert_eq!(r.status, Status::Succeeded, "{r:#?}");
    }
    assert_eq!(
        responder.accounts().map(|p| p.assume_role_calls()),
        Some(4),
        "one AssumeRole per member account"
    );
    for m in &members {
        assert_eq!(
            read::instance_tags(&m.ec2(), &m.instance_id)
                .await
                .get("team")
                .map(String::as_str),
            Some("security"),
            "tagged in {}",
            m.account
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_budget_counts_across_accounts_and_per_account() {
    let admin = Admin::new().await;
    let (a, b) = tokio::join!(
        Fixture::new(FixtureOptions::default()),
        Fixture::new(FixtureOptions::default())
    );
    let steps = "  - tag:\n      tags: {team: security}\n  - stop: {}";
    // Organization-wide: 2 per hour, whatever the account.
    let pool = admin.pool(&moto::endpoint(), AccountSettings::default());
    let responder = admin.responder(&playbook(steps), pool, 2).await;
    let r1 = report(responder.answer(&admin.member_finding(&a, 1), "d1").await);
    let r2 = report(responder.answer(&admin.member_finding(&b, 1), "d2").await);
    let r3 = report(responder.answer(&admin.member_finding(&b, 2), "d3").await);
    assert_eq!(r1.status, Status::Succeeded, "{r1:#?}");
    assert_eq!(r2.status, Status::Succeeded, "{r2:#?}");
    assert_eq!(r3.status, Status::Withheld, "{r3:#?}");
    assert!(
        r3.reason
            .as_deref()
            .unwrap_or_default()
            .contains("scope all"),
        "{r3:#?}"
    );

    // Per account: 1 per hour per account beside a large organization budget (a
    // second administrator, so that its ledger starts empty).
    let admin = Admin::new().await;
    let (c, d) = tokio::join!(
        Fixture::new(FixtureOptions::default()),
        Fixture::new(FixtureOptions::default())
    );
    let pool = admin.pool(&moto::endpoint(), AccountSettings::default());
    let responder = admin
        .responder(&playbook(steps), pool, 100)
        .await
        .with_max_per_account(Some(1));
    let r1 = report(responder.answer(&admin.member_finding(&c, 1), "d1").await);
    let r2 = report(responder.answer(&admin.member_finding(&c, 2), "d2").await);
    let r3 = report(responder.answer(&admin.member_finding(&d, 1), "d3").await);
    assert_eq!(r1.status, Status::Succeeded, "{r1:#?}");
    assert_eq!(r2.status, Status::Withheld, "{r2:#?}");
    assert!(
        r2.reason
            .as_deref()
            .unwrap_or_default()
            .contains(&format!("account#{}", c.account)),
        "{r2:#?}"
    );
    assert_eq!(r3.status, Status::Succeeded, "{r3:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_finding_from_a_second_served_region_is_answered_in_that_region() {
    const OTHER: &str = "eu-west-3";
    let admin = Admin::new().await;
    let member = Fixture::new(FixtureOptions::default()).await;
    let instance = instance_in_region(&member.config, &member.account, OTHER).await;
    let before_home = state(&member).await;
    let pool = admin.pool(
        &moto::endpoint(),
        AccountSettings {
            regions: BTreeSet::from(["us-east-1".to_owned(), OTHER.to_owned()]),
            ..AccountSettings::default()
        },
    );
    let responder = admin.responder(&playbook(TAG_ONLY), pool, 10).await;
    let event = about_instance(
        numbered(
            responder_tests::finding::bitcoin_dns_event(&member),
            &member.account,
            7,
        ),
        &instance,
        OTHER,
    );
    admin.findings.put_event_finding(ADMIN_DETECTOR, &event);
    let finding = responder_tests::finding::finding(&event);

    let r = report(responder.answer(&finding, "d").await);
    assert_eq!(r.status, Status::Succeeded, "{r:#?}");
    assert_eq!(r.region.as_deref(), Some(OTHER));
    assert_eq!(
        read::instance_tags(
            &ec2_in_region(&member.config, &member.account, OTHER),
            &instance
        )
        .await
        .get("team")
        .map(String::as_str),
        Some("security")
    );
    assert_eq!(state(&member).await, before_home, "nothing in us-east-1");
    // Verified in that region: its detector was discovered (the home one is fixed).
    assert_eq!(admin.findings.calls(Operation::ListDetectors), 1);
    assert_eq!(responder.accounts().map(|p| p.assume_role_calls()), Some(1));
}

/// `responder run --member-role R --dry-run`: every call is made with DryRun in the
/// member account, and nothing changes there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dry_run_makes_its_calls_in_the_member_account() {
    let admin = Admin::new().await;
    let member = Fixture::new(FixtureOptions::default()).await;
    let before = state(&member).await;
    let pool = admin.pool(&moto::endpoint(), AccountSettings::default());
    let responder = admin
        .responder_with(
            &playbook(TAG_AND_STOP),
            pool,
            10,
            ExecOptions {
                dry_run: true,
                ..ExecOptions::default()
            },
        )
        .await;
    let r = report(
        responder
            .answer(&admin.member_finding(&member, 1), "d")
            .await,
    );
    assert_eq!(r.status, Status::DryRunPassed, "{r:#?}");
    assert!(r.dry_run);
    assert_eq!(r.account.as_deref(), Some(member.account.as_str()));
    // DryRun answers "would succeed" only where the instance exists: the member account.
    let stop = r.steps.iter().find(|s| s.action == "stop").expect("stop");
    assert_eq!(stop.outcome, responder_aws::Outcome::WouldSucceed, "{r:#?}");
    assert_eq!(state(&member).await, before);
    assert_eq!(responder.accounts().map(|p| p.assume_role_calls()), Some(1));
    assert_eq!(admin.findings.calls(Operation::ArchiveFindings), 0);
}

/// Without `HOME_ACCOUNT_ID`, the home account comes from GetCallerIdentity, asked
/// only when needed (moto names its default account for the test keys).
#[tokio::test]
async fn the_home_account_is_discovered_when_needed() {
    const MOTO_DEFAULT: &str = "123456789012";
    let config = responder_tests::account::sdk_config(&moto::endpoint()).await;
    let home = responder_tests::account::clients(&config, MOTO_DEFAULT);
    let pool = ClientPool::new(
        home,
        &config,
        AccountSettings {
            allowed_accounts: Some(BTreeSet::from(["111111111111".to_owned()])),
            ..AccountSettings::default()
        },
    );
    // An allowed account needs no identity call to be admitted.
    pool.admit("111111111111", "us-east-1").await.unwrap();
    // The home account is always allowed: found through GetCallerIdentity.
    pool.admit(MOTO_DEFAULT, "us-east-1").await.unwrap();
    let e = pool.admit("222222222222", "us-east-1").await.unwrap_err();
    assert_eq!(e.reason, AccountReason::NotAllowed);
    // The home account in the home region: the home clients, no AssumeRole.
    pool.clients(MOTO_DEFAULT, "us-east-1", "f").await.unwrap();
    assert_eq!(pool.assume_role_calls(), 0);
}
