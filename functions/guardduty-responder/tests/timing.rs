//! The function's timeout, Lambda's asynchronous retries and the ledger's claim lease
//! fit together (infra/template.yaml against `responder_aws`): a delivery that
//! crashes after claiming a step leaves a claim that is free by the time Lambda's
//! last retry arrives, so the retry takes it over instead of failing
//! `InProgressElsewhere` and dead-lettering the event.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use responder_aws::{FUNCTION_TIMEOUT, LEASE, LEASE_MARGIN};
use serde_json::Value;

/// When Lambda retries an asynchronous invocation that failed: about one minute
/// after the first attempt ends, then about two minutes after the second.
const RETRY_DELAYS: [Duration; 2] = [Duration::from_secs(60), Duration::from_secs(120)];
/// Leeway for "about" in Lambda's retry timings.
const SLACK: Duration = Duration::from_secs(30);

fn template() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/template.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

fn secs(v: &Value, what: &str) -> Duration {
    Duration::from_secs(
        v.as_u64()
            .unwrap_or_else(|| panic!("{what} is not a number: {v}")),
    )
}

#[test]
fn the_template_timeout_retries_and_lease_fit_together() {
    let t = template();
    let function = &t["Resources"]["ResponderFunction"]["Properties"];
    // The function's own Timeout, else the Globals one.
    let timeout = match &function["Timeout"] {
        Value::Null => secs(&t["Globals"]["Function"]["Timeout"], "Globals Timeout"),
        v => secs(v, "Timeout"),
    };
    assert_eq!(
        timeout, FUNCTION_TIMEOUT,
        "infra/template.yaml's Timeout and responder_aws::FUNCTION_TIMEOUT differ"
    );
    assert_eq!(LEASE, FUNCTION_TIMEOUT + LEASE_MARGIN);

    let invoke = &function["EventInvokeConfig"];
    let retries = invoke["MaximumRetryAttempts"].as_u64().unwrap();
    let retries = usize::try_from(retries).unwrap();
    assert!(
        (1..=RETRY_DELAYS.len()).contains(&retries),
        "MaximumRetryAttempts {retries}: a retry must exist to take a crashed claim over"
    );
    // The worst case: the first attempt claims as it starts and dies at once. Its
    // claim holds until its deadline plus the margin; the last retry arrives the sum
    // of the delays after it (a failing retry in between ends at once: the claim is
    // held).
    let last_retry: Duration = RETRY_DELAYS[..retries].iter().sum();
    assert!(
        timeout + LEASE_MARGIN + SLACK <= last_retry,
        "a claim leased {:?} is still held when the last retry arrives {last_retry:?} after the first attempt",
        timeout + LEASE_MARGIN
    );
    // Lambda must not drop the event before that retry, even when every attempt
    // runs until its timeout.
    let max_age = secs(
        &invoke["MaximumEventAgeInSeconds"],
        "MaximumEventAgeInSeconds",
    );
    let retries_u32 = u32::try_from(retries).unwrap();
    assert!(
        timeout * (retries_u32 + 1) + last_retry <= max_age,
        "MaximumEventAgeInSeconds {max_age:?} drops the event before its last retry"
    );
}

#[test]
fn a_claim_lasts_until_the_deadline_plus_the_margin() {
    let now = std::time::SystemTime::now();
    let deadline = now + Duration::from_secs(37);
    assert_eq!(
        responder_aws::claim_lease(now, Some(deadline)),
        Duration::from_secs(37) + LEASE_MARGIN
    );
    // A deadline already past: only the margin.
    assert_eq!(
        responder_aws::claim_lease(deadline, Some(now)),
        LEASE_MARGIN
    );
    assert_eq!(responder_aws::claim_lease(now, None), LEASE);
}
