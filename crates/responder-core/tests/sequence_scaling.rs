//! Planning an attack sequence costs about linearly in the sequence's size, however
//! many times it names one shared resource. Measured by counting the bytes the plan
//! allocates (the only test in this binary, so nothing else allocates meanwhile), not
//! by timing: four times the resources may cost at
//! most about four times the bytes. A 17 MiB sequence naming one instance profile
//! over and over once took minutes, its members merged by re-sorting the whole list
//! at every repeat.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::System;
use std::path::Path;

use responder_core::{Engine, decode_bytes};
use serde_json::{Value, json};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The shipped attack-sequence event with `n` more resources of one kind: the same
/// instance profile `n` times, each naming one more instance.
fn event(n: usize) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../playbooks/tests/findings/attack-sequence-ec2-group.json");
    let mut event: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let resources = event
        .pointer_mut("/detail/service/detection/sequence/resources")
        .and_then(Value::as_array_mut)
        .unwrap();
    for k in 0..n {
        resources.push(json!({
            "uid": "arn:aws:iam::123456789012:instance-profile/shared",
            "resourceType": "IAM_INSTANCE_PROFILE",
            "data": {"iamInstanceProfile": {"ec2InstanceUids": [format!("i-{k:017x}")]}}
        }));
    }
    serde_json::to_vec(&event).unwrap()
}

/// Bytes allocated by planning the event with `n` repeats, and the plan's count of
/// instances listed under the repeated profile.
fn plan_cost(engine: &Engine, n: usize) -> (u64, usize) {
    let finding = decode_bytes(&event(n)).unwrap().remove(0).unwrap();
    let region = Region::new(GLOBAL);
    let plan = engine.plan(&finding, false).unwrap();
    let cost = region.change().bytes_allocated as u64;
    let sequence = plan.sequence.expect("an attack sequence plan");
    let listed = sequence
        .shared
        .iter()
        .find(|s| s.uid.ends_with("instance-profile/shared"))
        .map_or(0, |s| s.instances.len());
    (cost, listed)
}

#[test]
fn planning_a_sequence_is_linear_in_repeated_shared_resources() {
    let engine =
        Engine::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../playbooks")).unwrap();
    let (small, listed_small) = plan_cost(&engine, 2_000);
    let (large, listed_large) = plan_cost(&engine, 8_000);
    assert_eq!((listed_small, listed_large), (2_000, 8_000));
    let ratio = large as f64 / small as f64;
    assert!(
        ratio < 6.0,
        "4x the repeats cost {ratio:.1}x the bytes ({small} then {large}): not linear"
    );
}
