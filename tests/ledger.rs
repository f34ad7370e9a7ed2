//! The ledger on moto, over HTTP: the table's settings, claims under concurrency,
//! lease takeover, finishing, first-writer-wins records, the by-instance index, the
//! history, and the blast-radius budget. Each test has its own moto account, so its
//! own table.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    PointInTimeRecoveryStatus, ProjectionType, ScalarAttributeType, SseStatus, TimeToLiveStatus,
};
use responder_aws::ledger::{
    Budget, Claim, Created, Finish, Ledger, LedgerError, RecordStatus, ResponseKey, ResponseMeta,
    StepKey, budget_hour,
};
use responder_tests::TestAccount;
use serde_json::json;
use tokio::task::JoinSet;

const TABLE: &str = "responder-ledger";
const LEASE: Duration = Duration::from_secs(60);

/// A DynamoDB client acting in a fresh moto account (requests serialized: see
/// `responder_tests::dynamodb`).
async fn dynamodb() -> aws_sdk_dynamodb::Client {
    let account = TestAccount::new().await;
    responder_tests::dynamodb::client(&account.config, &account.id)
}

/// A ledger with its table created, in a fresh account.
async fn ledger() -> Ledger {
    let ledger = Ledger::new(dynamodb().await, TABLE);
    assert_eq!(ledger.create_table().await.unwrap(), Created::Created);
    ledger
}

fn meta() -> ResponseMeta {
    ResponseMeta {
        playbook: "crypto-mining-ec2".to_owned(),
        finding_type: "CryptoCurrency:EC2/BitcoinTool.B!DNS".to_owned(),
        account: "111122223333".to_owned(),
        region: "us-east-1".to_owned(),
    }
}

fn key(finding: &str, instance: &str, index: usize, step: &str) -> StepKey {
    StepKey {
        finding_id: finding.to_owned(),
        instance_id: instance.to_owned(),
        index,
        step: step.to_owned(),
    }
}

fn done(resources: &[&str], state: serde_json::Value) -> Finish {
    Finish {
        status: RecordStatus::Done,
        outcome: "done".to_owned(),
        resources: resources.iter().map(|r| (*r).to_owned()).collect(),
        state,
    }
}

fn failed() -> Finish {
    Finish {
        status: RecordStatus::Failed,
        outcome: "failed".to_owned(),
        resources: Vec::new(),
        state: json!(null),
    }
}

/// Milliseconds resolution, as stored.
fn ms(t: SystemTime) -> SystemTime {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap();
    SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(d.as_millis()).unwrap())
}

#[tokio::test]
async fn create_table_is_idempotent_and_configured() {
    let client = dynamodb().await;
    let ledger = Ledger::new(client.clone(), TABLE);
    assert_eq!(ledger.table(), TABLE);
    assert_eq!(ledger.create_table().await.unwrap(), Created::Created);
    assert_eq!(ledger.create_table().await.unwrap(), Created::AlreadyExists);

    let t = client
        .describe_table()
        .table_name(TABLE)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let keys: Vec<(String, KeyType)> = t
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name().to_owned(), k.key_type().clone()))
        .collect();
    assert!(keys.contains(&("pk".to_owned(), KeyType::Hash)), "{keys:?}");
    assert!(
        keys.contains(&("sk".to_owned(), KeyType::Range)),
        "{keys:?}"
    );
    assert_eq!(
        t.billing_mode_summary().and_then(|b| b.billing_mode()),
        Some(&BillingMode::PayPerRequest)
    );
    assert_eq!(
        t.sse_description().and_then(|s| s.status()),
        Some(&SseStatus::Enabled),
        "{:?}",
        t.sse_description()
    );
    let gsi = t
        .global_secondary_indexes()
        .iter()
        .find(|i| i.index_name() == Some("by-instance"))
        .expect("index by-instance");
    let gsi_keys: Vec<(String, KeyType)> = gsi
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name().to_owned(), k.key_type().clone()))
        .collect();
    assert!(gsi_keys.contains(&("instance_id".to_owned(), KeyType::Hash)));
    assert!(gsi_keys.contains(&("recorded_at".to_owned(), KeyType::Range)));
    assert_eq!(
        gsi.projection().and_then(|p| p.projection_type()),
        Some(&ProjectionType::All)
    );

    let backups = client
        .describe_continuous_backups()
        .table_name(TABLE)
        .send()
        .await
        .unwrap();
    assert_eq!(
        backups
            .continuous_backups_description()
            .and_then(|d| d.point_in_time_recovery_description())
            .and_then(|p| p.point_in_time_recovery_status()),
        Some(&PointInTimeRecoveryStatus::Enabled)
    );
    let ttl = client
        .describe_time_to_live()
        .table_name(TABLE)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
}

#[tokio::test]
async fn a_table_with_other_keys_is_refused() {
    let client = dynamodb().await;
    client
        .create_table()
        .table_name("not-a-ledger")
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    let err = Ledger::new(client, "not-a-ledger")
        .create_table()
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::Table { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_claims_grant_exactly_one() {
    let ledger = ledger().await;
    let k = key("f1", "i-0a", 2, "terminate");
    let mut tasks = JoinSet::new();
    for n in 0..20 {
        let (ledger, k) = (ledger.clone(), k.clone());
        tasks.spawn(async move {
            let owner = format!("invocation-{n}");
            let claim = ledger.claim(&k, &meta(), &owner, LEASE).await.unwrap();
            (owner, claim)
        });
    }
    let results = tasks.join_all().await;
    let granted: Vec<&String> = results
        .iter()
        .filter(|(_, c)| matches!(c, Claim::Granted { .. }))
        .map(|(o, _)| o)
        .collect();
    assert_eq!(granted.len(), 1, "{results:?}");
    let winner = granted[0];
    for (owner, claim) in &results {
        match claim {
            Claim::Granted { took_over_from } => {
                assert_eq!(owner, winner);
                assert_eq!(took_over_from, &None);
            }
            Claim::Held {
                owner: holder,
                lease_until,
            } => {
                assert_eq!(holder, winner, "held by someone else than the winner");
                assert!(*lease_until > SystemTime::now());
            }
            Claim::Done(r) => panic!("nothing finished yet, got Done({r:?})"),
        }
    }
    let record = ledger.get(&k).await.unwrap().unwrap();
    assert_eq!(record.status, RecordStatus::Claimed);
    assert_eq!(record.owner.as_deref(), Some(winner.as_str()));
    assert_eq!(record.attempts, 1);
    assert_eq!(record.playbook, "crypto-mining-ec2");
}

#[tokio::test]
async fn finish_then_claim_is_done_with_resources_and_state() {
    let ledger = ledger().await;
    let k = key("f1", "i-0a", 1, "snapshot");
    assert_eq!(
        ledger.claim(&k, &meta(), "a", LEASE).await.unwrap(),
        Claim::Granted {
            took_over_from: None
        }
    );
    let state = json!({"volumes": {"vol-1": "snap-1", "vol-2": "snap-2"}});
    ledger
        .finish(&k, "a", done(&["snap-1", "snap-2"], state.clone()))
        .await
        .unwrap();
    for owner in ["b", "a"] {
        let Claim::Done(r) = ledger.claim(&k, &meta(), owner, LEASE).await.unwrap() else {
            panic!("a finished step must not be granted again ({owner})");
        };
        assert_eq!(r.status, RecordStatus::Done);
        assert_eq!(r.outcome, "done");
        assert_eq!(r.resources, ["snap-1", "snap-2"]);
        assert_eq!(r.state, state);
        assert_eq!(r.owner.as_deref(), Some("a"));
        assert_eq!(r.key(), k);
        assert!(r.finished_at.is_some());
        assert_eq!(r.lease_until, None);
        assert_eq!(r.attempts, 1);
    }
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_a_live_one_is_not() {
    let ledger = ledger().await;
    let k = key("f1", "i-0a", 2, "terminate");
    let t0 = ms(SystemTime::now());
    let granted = ledger
        .claim_at(&k, &meta(), "crashed", LEASE, t0)
        .await
        .unwrap();
    assert_eq!(
        granted,
        Claim::Granted {
            took_over_from: None
        }
    );
    // Within the lease: held.
    let held = ledger
        .claim_at(&k, &meta(), "second", LEASE, t0 + Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        held,
        Claim::Held {
            owner: "crashed".to_owned(),
            lease_until: t0 + LEASE
        }
    );
    // At the lease's last millisecond: still held.
    let held = ledger
        .claim_at(&k, &meta(), "second", LEASE, t0 + LEASE)
        .await
        .unwrap();
    assert!(matches!(held, Claim::Held { .. }), "{held:?}");
    // After it: taken over.
    let after = t0 + LEASE + Duration::from_millis(1);
    let taken = ledger
        .claim_at(&k, &meta(), "second", LEASE, after)
        .await
        .unwrap();
    assert_eq!(
        taken,
        Claim::Granted {
            took_over_from: Some("crashed".to_owned())
        }
    );
    // The new lease runs from the takeover.
    let third = ledger
        .claim_at(&k, &meta(), "third", LEASE, after + Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(
        third,
        Claim::Held {
            owner: "second".to_owned(),
            lease_until: after + LEASE
        }
    );
    // The crashed owner, back late, cannot overwrite its successor's record.
    let err = ledger
        .finish(&k, "crashed", done(&["i-0a"], json!(null)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LedgerError::NotHolder { holder: Some(h), status: Some(RecordStatus::Claimed), .. } if h == "second"),
        "{err:?}"
    );
    ledger
        .finish(&k, "second", done(&["i-0a"], json!({"terminated": true})))
        .await
        .unwrap();
    let r = ledger.get(&k).await.unwrap().unwrap();
    assert_eq!(r.owner.as_deref(), Some("second"));
    assert_eq!(r.attempts, 2);
    assert_eq!(r.state, json!({"terminated": true}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_takeovers_of_an_expired_lease_grant_exactly_one() {
    let ledger = ledger().await;
    let k = key("f1", "i-0a", 2, "terminate");
    let t0 = ms(SystemTime::now());
    ledger
        .claim_at(&k, &meta(), "crashed", LEASE, t0)
        .await
        .unwrap();
    let later = t0 + LEASE + Duration::from_secs(5);
    let mut tasks = JoinSet::new();
    for n in 0..10 {
        let (ledger, k) = (ledger.clone(), k.clone());
        tasks.spawn(async move {
            let owner = format!("successor-{n}");
            let claim = ledger
                .claim_at(&k, &meta(), &owner, LEASE, later)
                .await
                .unwrap();
            (owner, claim)
        });
    }
    let results = tasks.join_all().await;
    let winners: Vec<&String> = results
        .iter()
        .filter(|(_, c)| {
            *c == Claim::Granted {
                took_over_from: Some("crashed".to_owned()),
            }
        })
        .map(|(o, _)| o)
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for (owner, claim) in &results {
        if owner != winners[0] {
            assert_eq!(
                claim,
                &Claim::Held {
                    owner: winners[0].clone(),
                    lease_until: later + LEASE
                }
            );
        }
    }
}

#[tokio::test]
async fn finish_needs_the_holder() {
    let ledger = ledger().await;
    let k = key("f1", "i-0a", 0, "isolate");
    // No claim at all.
    let err = ledger
        .finish(&k, "a", done(&[], json!(null)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            LedgerError::NotHolder {
                holder: None,
                status: None,
                ..
            }
        ),
        "{err:?}"
    );
    ledger.claim(&k, &meta(), "a", LEASE).await.unwrap();
    // Someone else.
    let err = ledger
        .finish(&k, "b", done(&["sg-1"], json!(null)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LedgerError::NotHolder { holder: Some(h), .. } if h == "a"),
        "{err:?}"
    );
    assert_eq!(
        ledger.get(&k).await.unwrap().unwrap().status,
        RecordStatus::Claimed
    );
    // Claimed is not an end.
    let err = ledger
        .finish(
            &k,
            "a",
            Finish {
                status: RecordStatus::Claimed,
                ..done(&[], json!(null))
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::Invalid { .. }), "{err:?}");
    // The holder; the same finish again is accepted (a retried call), another is not.
    ledger
        .finish(&k, "a", done(&["sg-1"], json!(null)))
        .await
        .unwrap();
    ledger
        .finish(&k, "a", done(&["sg-1"], json!(null)))
        .await
        .unwrap();
    let err = ledger.finish(&k, "a", failed()).await.unwrap_err();
    assert!(matches!(err, LedgerError::NotHolder { .. }), "{err:?}");
    assert_eq!(
        ledger.get(&k).await.unwrap().unwrap().status,
        RecordStatus::Done
    );
}

#[tokio::test]
async fn a_failed_step_may_be_claimed_again() {
    let ledger = ledger().await;
    let k = key("f1", "i-0a", 3, "relaunch");
    ledger.claim(&k, &meta(), "a", LEASE).await.unwrap();
    ledger.finish(&k, "a", failed()).await.unwrap();
    assert_eq!(
        ledger.claim(&k, &meta(), "b", LEASE).await.unwrap(),
        Claim::Granted {
            took_over_from: None
        }
    );
    let r = ledger.get(&k).await.unwrap().unwrap();
    assert_eq!(r.status, RecordStatus::Claimed);
    assert_eq!(r.owner.as_deref(), Some("b"));
    assert_eq!(r.attempts, 2);
    assert_eq!(r.outcome, "", "a new claim has no outcome yet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn record_once_first_writer_wins_under_concurrency() {
    let ledger = ledger().await;
    let k = key("f1", "i-0a", 0, "isolate-groups");
    let mut tasks = JoinSet::new();
    for n in 0..10 {
        let (ledger, k) = (ledger.clone(), k.clone());
        tasks.spawn(async move {
            let state = json!({"eni-1": [format!("sg-{n}")]});
            ledger
                .record_once(&k, &meta(), done(&["eni-1"], state))
                .await
                .unwrap()
        });
    }
    let records = tasks.join_all().await;
    let states: BTreeSet<String> = records.iter().map(|r| r.state.to_string()).collect();
    assert_eq!(
        states.len(),
        1,
        "every writer sees one stored record: {states:?}"
    );
    let stored = ledger.get(&k).await.unwrap().unwrap();
    assert_eq!(stored.state, records[0].state);
    assert_eq!(stored.owner, None);
    assert_eq!(stored.status, RecordStatus::Done);
    // A claim on it finds it done.
    assert!(matches!(
        ledger.claim(&k, &meta(), "x", LEASE).await.unwrap(),
        Claim::Done(_)
    ));
    // Claimed is no state to record.
    let err = ledger
        .record_once(
            &key("f1", "i-0a", 9, "x"),
            &meta(),
            Finish {
                status: RecordStatus::Claimed,
                ..failed()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::Invalid { .. }), "{err:?}");
}

/// Claims and finishes `k` at `at`.
async fn done_at(ledger: &Ledger, k: &StepKey, finish: Finish, at: SystemTime) {
    let owner = format!("owner-of-{}", k.finding_id);
    assert!(matches!(
        ledger
            .claim_at(k, &meta(), &owner, LEASE, at)
            .await
            .unwrap(),
        Claim::Granted { .. }
    ));
    ledger.finish_at(k, &owner, finish, at).await.unwrap();
}

#[tokio::test]
async fn last_done_is_the_newest_across_findings() {
    let ledger = ledger().await;
    let t0 = ms(SystemTime::now());
    let s = |secs| t0 + Duration::from_secs(secs);
    done_at(
        &ledger,
        &key("f-old", "i-0a", 1, "snapshot"),
        done(&["snap-old"], json!(1)),
        s(0),
    )
    .await;
    done_at(
        &ledger,
        &key("f-new", "i-0a", 1, "snapshot"),
        done(&["snap-new"], json!(2)),
        s(10),
    )
    .await;
    // Newer, but failed, or not finished, or another instance, or another step.
    done_at(
        &ledger,
        &key("f-failed", "i-0a", 1, "snapshot"),
        failed(),
        s(20),
    )
    .await;
    ledger
        .claim_at(
            &key("f-live", "i-0a", 1, "snapshot"),
            &meta(),
            "z",
            LEASE,
            s(30),
        )
        .await
        .unwrap();
    done_at(
        &ledger,
        &key("f-other", "i-0b", 1, "snapshot"),
        done(&["snap-b"], json!(3)),
        s(40),
    )
    .await;
    done_at(
        &ledger,
        &key("f-new", "i-0a", 0, "isolate"),
        done(&["sg-q"], json!(4)),
        s(50),
    )
    .await;

    let last = ledger.last_done("i-0a", "snapshot").await.unwrap().unwrap();
    assert_eq!(last.finding_id, "f-new");
    assert_eq!(last.resources, ["snap-new"]);
    assert_eq!(last.recorded_at, s(10));
    let last_b = ledger.last_done("i-0b", "snapshot").await.unwrap().unwrap();
    assert_eq!(last_b.resources, ["snap-b"]);
    assert_eq!(ledger.last_done("i-0a", "terminate").await.unwrap(), None);
    assert_eq!(ledger.last_done("i-0c", "snapshot").await.unwrap(), None);
}

#[tokio::test]
async fn history_by_finding_by_instance_and_both() {
    let ledger = ledger().await;
    let t0 = ms(SystemTime::now());
    let s = |secs| t0 + Duration::from_secs(secs);
    done_at(
        &ledger,
        &key("f1", "i-0a", 0, "isolate"),
        done(&["sg-q"], json!(null)),
        s(0),
    )
    .await;
    done_at(
        &ledger,
        &key("f1", "i-0a", 1, "snapshot"),
        done(&["snap-1"], json!(null)),
        s(1),
    )
    .await;
    done_at(
        &ledger,
        &key("f1", "i-0b", 0, "isolate"),
        done(&["sg-q"], json!(null)),
        s(2),
    )
    .await;
    done_at(&ledger, &key("f2", "i-0a", 0, "isolate"), failed(), s(3)).await;
    // Budget items share the table and stay out of the history.
    let budget = ledger
        .budget(
            &ResponseKey {
                finding_id: "f1".to_owned(),
                instance_id: "i-0a".to_owned(),
            },
            &meta(),
            &[("all".to_owned(), 10)],
            s(0),
        )
        .await
        .unwrap();
    assert!(budget.is_granted());

    let names = |records: &[responder_aws::ledger::StepRecord]| -> Vec<String> {
        records
            .iter()
            .map(|r| format!("{} {} {}", r.finding_id, r.instance_id, r.step))
            .collect()
    };
    let by_finding = ledger.history(Some("f1"), None).await.unwrap();
    assert_eq!(
        names(&by_finding),
        ["f1 i-0b isolate", "f1 i-0a snapshot", "f1 i-0a isolate"],
        "newest first"
    );
    let by_instance = ledger.history(None, Some("i-0a")).await.unwrap();
    assert_eq!(
        names(&by_instance),
        ["f2 i-0a isolate", "f1 i-0a snapshot", "f1 i-0a isolate"]
    );
    assert_eq!(by_instance[0].status, RecordStatus::Failed);
    let both = ledger.history(Some("f1"), Some("i-0b")).await.unwrap();
    assert_eq!(names(&both), ["f1 i-0b isolate"]);
    // An instance id that is a prefix of another does not match it.
    assert!(
        ledger
            .history(Some("f1"), Some("i-0"))
            .await
            .unwrap()
            .is_empty()
    );
    let all = ledger.history(None, None).await.unwrap();
    assert_eq!(all.len(), 4, "{:?}", names(&all));
    assert!(ledger.history(Some("f9"), None).await.unwrap().is_empty());
}

fn response(n: usize) -> ResponseKey {
    ResponseKey {
        finding_id: format!("finding-{n}"),
        instance_id: format!("i-{n:04}"),
    }
}

/// The `used` attribute of a budget counter item, read straight from the table.
async fn counter(ledger: &Ledger, scope: &str, now: SystemTime) -> Option<u32> {
    let out = ledger
        .client()
        .get_item()
        .table_name(ledger.table())
        .key(
            "pk",
            AttributeValue::S(format!("budget#{scope}#{}", budget_hour(now))),
        )
        .key("sk", AttributeValue::S("count".to_owned()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    out.item
        .and_then(|i| i.get("used").cloned())
        .map(|v| v.as_n().unwrap().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn budget_grants_exactly_max_among_concurrent_responses() {
    let ledger = ledger().await;
    let now = SystemTime::now();
    let mut tasks = JoinSet::new();
    for n in 0..15 {
        let ledger = ledger.clone();
        tasks.spawn(async move {
            ledger
                .budget(&response(n), &meta(), &[("all".to_owned(), 10)], now)
                .await
                .unwrap()
        });
    }
    let results = tasks.join_all().await;
    let granted = results.iter().filter(|b| b.is_granted()).count();
    assert_eq!(granted, 10, "{results:?}");
    for b in &results {
        match b {
            Budget::Granted { scope_counts } => {
                assert_eq!(scope_counts.len(), 1);
                let (scope, used, max) = &scope_counts[0];
                assert_eq!((scope.as_str(), *max), ("all", 10));
                assert!((1..=10).contains(used), "{used}");
            }
            Budget::Exhausted { scope, used, max } => {
                assert_eq!((scope.as_str(), *used, *max), ("all", 10, 10));
            }
        }
    }
    assert_eq!(counter(&ledger, "all", now).await, Some(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_response_delivered_concurrently_counts_once() {
    let ledger = ledger().await;
    let now = SystemTime::now();
    let mut tasks = JoinSet::new();
    for _ in 0..8 {
        let ledger = ledger.clone();
        tasks.spawn(async move {
            ledger
                .budget(&response(7), &meta(), &[("all".to_owned(), 10)], now)
                .await
                .unwrap()
        });
    }
    let results = tasks.join_all().await;
    assert!(results.iter().all(Budget::is_granted), "{results:?}");
    assert_eq!(counter(&ledger, "all", now).await, Some(1));
}

#[tokio::test]
async fn a_repeated_response_gets_its_first_decision_without_counting() {
    let ledger = ledger().await;
    let now = SystemTime::now();
    let scopes = [("all".to_owned(), 2)];
    let first = ledger
        .budget(&response(1), &meta(), &scopes, now)
        .await
        .unwrap();
    assert!(first.is_granted(), "{first:?}");
    for _ in 0..3 {
        let again = ledger
            .budget(&response(1), &meta(), &scopes, now)
            .await
            .unwrap();
        assert!(again.is_granted(), "{again:?}");
    }
    assert_eq!(counter(&ledger, "all", now).await, Some(1));
    assert!(
        ledger
            .budget(&response(2), &meta(), &scopes, now)
            .await
            .unwrap()
            .is_granted()
    );
    let refused = ledger
        .budget(&response(3), &meta(), &scopes, now)
        .await
        .unwrap();
    assert_eq!(
        refused,
        Budget::Exhausted {
            scope: "all".to_owned(),
            used: 2,
            max: 2
        }
    );
    // Redelivered: still refused, and still granted for the first ones, whatever the
    // budget says now (even with a larger one).
    let larger = [("all".to_owned(), 5)];
    assert_eq!(
        ledger
            .budget(&response(3), &meta(), &larger, now)
            .await
            .unwrap(),
        refused
    );
    assert!(
        ledger
            .budget(&response(1), &meta(), &scopes, now)
            .await
            .unwrap()
            .is_granted()
    );
    assert_eq!(counter(&ledger, "all", now).await, Some(2));
    // The next hour is a new budget: the same response is decided (and counted) again.
    let next_hour = now + Duration::from_secs(3600);
    assert!(
        ledger
            .budget(&response(3), &meta(), &scopes, next_hour)
            .await
            .unwrap()
            .is_granted()
    );
    assert_eq!(counter(&ledger, "all", next_hour).await, Some(1));
    // A scope with nothing to give refuses without counting.
    let none = [
        ("all".to_owned(), 5),
        ("account#111122223333".to_owned(), 0),
    ];
    assert_eq!(
        ledger
            .budget(&response(4), &meta(), &none, now)
            .await
            .unwrap(),
        Budget::Exhausted {
            scope: "account#111122223333".to_owned(),
            used: 0,
            max: 0
        }
    );
    assert_eq!(counter(&ledger, "all", now).await, Some(2));
}

#[tokio::test]
async fn a_playbook_scope_exhausts_independently_and_atomically() {
    let ledger = ledger().await;
    let now = SystemTime::now();
    let crypto = [("all".to_owned(), 10), ("playbook#crypto".to_owned(), 3)];
    let ssh = [("all".to_owned(), 10), ("playbook#ssh".to_owned(), 3)];
    for n in 0..3 {
        let b = ledger
            .budget(&response(n), &meta(), &crypto, now)
            .await
            .unwrap();
        assert!(b.is_granted(), "{n}: {b:?}");
    }
    let Budget::Granted { scope_counts } = ledger
        .budget(&response(0), &meta(), &crypto, now)
        .await
        .unwrap()
    else {
        panic!("the first crypto response was granted");
    };
    assert_eq!(
        scope_counts,
        [
            ("all".to_owned(), 3, 10),
            ("playbook#crypto".to_owned(), 3, 3)
        ]
    );
    let refused = ledger
        .budget(&response(3), &meta(), &crypto, now)
        .await
        .unwrap();
    assert_eq!(
        refused,
        Budget::Exhausted {
            scope: "playbook#crypto".to_owned(),
            used: 3,
            max: 3
        }
    );
    // The refused response counted nowhere: "all" did not move.
    assert_eq!(counter(&ledger, "all", now).await, Some(3));
    // Another playbook still has its budget.
    for n in 10..13 {
        let b = ledger
            .budget(&response(n), &meta(), &ssh, now)
            .await
            .unwrap();
        assert!(b.is_granted(), "{n}: {b:?}");
    }
    assert_eq!(counter(&ledger, "all", now).await, Some(6));
    assert_eq!(counter(&ledger, "playbook#crypto", now).await, Some(3));
    assert_eq!(counter(&ledger, "playbook#ssh", now).await, Some(3));
}

#[tokio::test]
async fn bad_keys_are_errors_not_panics() {
    let ledger = ledger().await;
    let long = "x".repeat(513);
    let bad = [
        key("", "i-0a", 0, "isolate"),
        key(&long, "i-0a", 0, "isolate"),
        key("f1", "", 0, "isolate"),
        key("f1", &long, 0, "isolate"),
        key("f1", "i-0a", 0, ""),
        key("f1", "i-0a#step", 0, "isolate"),
        key("f1", "i-0a", 1000, "isolate"),
    ];
    for k in &bad {
        let err = ledger.claim(k, &meta(), "a", LEASE).await.unwrap_err();
        assert!(matches!(err, LedgerError::Invalid { .. }), "{k:?}: {err:?}");
        assert!(matches!(
            ledger.get(k).await.unwrap_err(),
            LedgerError::Invalid { .. }
        ));
    }
    assert!(matches!(
        ledger
            .claim(&key("f1", "i-0a", 0, "isolate"), &meta(), "", LEASE)
            .await,
        Err(LedgerError::Invalid { .. })
    ));
    assert!(matches!(
        ledger.last_done(&long, "isolate").await,
        Err(LedgerError::Invalid { .. })
    ));
    assert!(matches!(
        ledger.history(Some(""), None).await,
        Err(LedgerError::Invalid { .. })
    ));
    let r = ResponseKey {
        finding_id: String::new(),
        instance_id: "i-0a".to_owned(),
    };
    assert!(matches!(
        ledger.budget(&r, &meta(), &[], SystemTime::now()).await,
        Err(LedgerError::Invalid { .. })
    ));
    // A 512-byte finding id is accepted.
    let k = key(&"f".repeat(512), "i-0a", 0, "isolate");
    assert!(matches!(
        ledger.claim(&k, &meta(), "a", LEASE).await.unwrap(),
        Claim::Granted { .. }
    ));
}

/// Lambda's asynchronous retries against a delivery killed after claiming: the
/// lease the executor asks for (`claim_lease`, until the invocation's deadline plus a
/// margin) is over by the time the retries arrive, about 1 and 3 minutes after the
/// first attempt ended, so a retry takes the step over instead of dead-lettering the
/// event `InProgressElsewhere`.
#[tokio::test]
async fn a_crashed_deliverys_claim_is_free_by_lambdas_retries() {
    use responder_aws::{FUNCTION_TIMEOUT, claim_lease};
    let ledger = ledger().await;
    let minute = Duration::from_secs(60);
    let claim = |k: StepKey, owner: &'static str, start: SystemTime, at: SystemTime| {
        let ledger = ledger.clone();
        async move {
            let lease = claim_lease(at, Some(start + FUNCTION_TIMEOUT));
            ledger
                .claim_at(&k, &meta(), owner, lease, at)
                .await
                .unwrap()
        }
    };

    // Killed at once after claiming (out of memory): the first retry a minute later
    // may still meet the claim, the second, two minutes after that, takes it over.
    let k = key("f-crash", "i-crash", 2, "relaunch");
    let t0 = ms(SystemTime::now());
    let first = claim(k.clone(), "attempt-1", t0, t0).await;
    assert_eq!(
        first,
        Claim::Granted {
            took_over_from: None
        }
    );
    let r1 = t0 + minute;
    let second = claim(k.clone(), "attempt-2", r1, r1).await;
    assert!(
        matches!(&second, Claim::Held { owner, .. } if owner == "attempt-1"),
        "{second:?}"
    );
    // The second retry arrives at least three minutes after the first attempt.
    let r2 = t0 + 3 * minute;
    let third = claim(k.clone(), "attempt-3", r2, r2).await;
    assert_eq!(
        third,
        Claim::Granted {
            took_over_from: Some("attempt-1".to_owned())
        }
    );

    // Killed by the timeout just after claiming late: the first retry, a minute
    // after the timeout, takes it over.
    let k = key("f-timeout", "i-timeout", 3, "terminate");
    let claimed = t0 + FUNCTION_TIMEOUT - Duration::from_secs(1);
    let first = claim(k.clone(), "attempt-1", t0, claimed).await;
    assert_eq!(
        first,
        Claim::Granted {
            took_over_from: None
        }
    );
    let r1 = t0 + FUNCTION_TIMEOUT + minute;
    let second = claim(k.clone(), "attempt-2", r1, r1).await;
    assert_eq!(
        second,
        Claim::Granted {
            took_over_from: Some("attempt-1".to_owned())
        }
    );

    // A live invocation is never overtaken: until its deadline, its claim holds.
    let k = key("f-live", "i-live", 1, "snapshot");
    claim(k.clone(), "attempt-1", t0, t0).await;
    let at_deadline = t0 + FUNCTION_TIMEOUT;
    let other = claim(k, "attempt-2", at_deadline, at_deadline).await;
    assert!(matches!(other, Claim::Held { .. }), "{other:?}");
}
