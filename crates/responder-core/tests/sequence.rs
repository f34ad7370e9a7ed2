//! Attack sequences: the plan fans out one section per instance, in instance id
//! order, capped by `limits.max_instances`; the steps that act on no instance are
//! planned once; the shared cause is named; forged ids are dropped. Single-instance
//! plans keep their JSON (no `sequence` member).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use responder_core::playbook::load_str;
use responder_core::sequence::SharedKind;
use responder_core::steps::Action;
use responder_core::{Engine, Finding, decode_bytes};
use serde_json::Value;

fn raw(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../playbooks/tests/findings")
        .join(name);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn decode(event: &Value) -> Finding {
    decode_bytes(&serde_json::to_vec(event).unwrap())
        .unwrap()
        .remove(0)
        .unwrap()
}

fn engine_with(limits: &str) -> Engine {
    let yaml = format!(
        r#"
name: seq
description: test
priority: 10
mode: enforce
match:
  finding_types: ["AttackSequence:EC2/CompromisedInstanceGroup"]
  resource_types: [AttackSequence]
{limits}
steps:
  - notify: {{}}
  - tag:
      tags: {{incident-response:status: contained}}
  - isolate: {{}}
"#
    );
    let loaded = load_str(Path::new("seq.yaml"), &yaml).unwrap();
    Engine::from_playbooks(vec![loaded]).unwrap()
}

#[test]
fn sections_in_id_order_capped_with_the_shared_cause_and_no_forged_id() {
    let mut event = raw("attack-sequence-ec2-group.json");
    // Out of order in the file, and one listed twice: the plan sorts and dedups.
    let resources = event
        .pointer_mut("/detail/service/detection/sequence/resources")
        .and_then(Value::as_array_mut)
        .unwrap();
    resources.reverse();
    let f = decode(&event);
    let plan = engine_with("limits: {max_instances: 3}")
        .plan(&f, false)
        .unwrap();
    let q = plan.sequence.as_ref().expect("a sequence plan");
    let ids: Vec<&str> = q.sections.iter().map(|s| s.instance_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "i-0a1b2c3d4e5f60718",
            "i-0a1b2c3d4e5f60719",
            "i-0a1b2c3d4e5f60720"
        ]
    );
    assert_eq!(q.max_instances, 3);
    assert_eq!(q.not_answered.len(), 1);
    assert_eq!(q.not_answered[0].instance_id, "i-0a1b2c3d4e5f60721");
    assert!(q.not_answered[0].reason.contains("max_instances (3)"));
    // Each section: the instance steps, isolation first, resolved for its instance.
    for s in &q.sections {
        let names: Vec<&str> = s.steps.iter().map(|p| p.action.name()).collect();
        assert_eq!(names, ["isolate", "tag"]);
        let Action::Isolate(i) = &s.steps[0].action else {
            panic!("isolate first")
        };
        assert_eq!(i.instance_id, s.instance_id);
    }
    // notify once, for the sequence.
    let once: Vec<&str> = plan.steps.iter().map(|p| p.action.name()).collect();
    assert_eq!(once, ["notify"]);
    assert_eq!(plan.instance_id, None);
    // The shared cause: profile, template, AMI, Auto Scaling group.
    let kinds: Vec<SharedKind> = q.shared.iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        [
            SharedKind::InstanceProfile,
            SharedKind::LaunchTemplate,
            SharedKind::Image,
            SharedKind::AutoScalingGroup
        ]
    );
    assert_eq!(
        q.shared[0].uid,
        "arn:aws:iam::111122223333:instance-profile/web"
    );
    // The forged id is dropped, reported, and in no instruction.
    assert_eq!(q.dropped.len(), 1);
    assert_eq!(q.dropped[0].value, "i-*");
    let json = serde_json::to_string(&plan).unwrap();
    assert!(json.contains("\"dropped\""));
    let instructions = serde_json::to_string(&q.sections).unwrap();
    assert!(!instructions.contains("i-*"), "{instructions}");
}

#[test]
fn default_cap_and_stable_bytes() {
    let f = decode(&raw("attack-sequence-ec2-group.json"));
    let engine = engine_with("");
    let a = serde_json::to_string(&engine.plan(&f, false).unwrap()).unwrap();
    let b = serde_json::to_string(&engine.plan(&f, false).unwrap()).unwrap();
    assert_eq!(a, b);
    let plan = engine.plan(&f, false).unwrap();
    let q = plan.sequence.unwrap();
    assert_eq!(q.max_instances, 10);
    assert_eq!(q.sections.len(), 4);
    assert!(q.not_answered.is_empty());
}

#[test]
fn more_than_the_cap_from_signals_alone() {
    let mut event = raw("attack-sequence-ec2.json");
    let ids: Vec<String> = (0..15).rev().map(|n| format!("i-{n:017x}")).collect();
    let seq = event
        .pointer_mut("/detail/service/detection/sequence")
        .unwrap();
    seq["resources"] = Value::Array(Vec::new());
    seq["signals"] = serde_json::json!([{"uid": "s", "resourceUids": ids}]);
    let plan = engine_with("").plan(&decode(&event), false).unwrap();
    let q = plan.sequence.unwrap();
    assert_eq!(q.sections.len(), 10);
    assert_eq!(q.sections[0].instance_id, "i-00000000000000000");
    assert_eq!(q.sections[9].instance_id, "i-00000000000000009");
    let rest: Vec<&str> = q
        .not_answered
        .iter()
        .map(|n| n.instance_id.as_str())
        .collect();
    assert_eq!(rest.len(), 5);
    assert_eq!(rest[0], "i-0000000000000000a");
}

#[test]
fn max_instances_out_of_range_is_refused() {
    for bad in ["0", "101"] {
        let yaml = format!(
            "name: seq\ndescription: t\npriority: 1\nmatch:\n  finding_types: [\"AttackSequence:EC2/CompromisedInstanceGroup\"]\n  resource_types: [AttackSequence]\nlimits:\n  max_instances: {bad}\nsteps:\n  - notify: {{}}\n"
        );
        let loaded = load_str(Path::new("seq.yaml"), &yaml).unwrap();
        let errors = Engine::from_playbooks(vec![loaded]).unwrap_err();
        assert!(
            errors
                .iter()
                .any(|d| d.to_string().contains("max_instances")),
            "{errors:?}"
        );
    }
}

#[test]
fn single_instance_plans_have_no_sequence_member() {
    let engine =
        Engine::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../playbooks")).unwrap();
    let plan = engine
        .plan(&decode(&raw("bitcoin-dns.json")), false)
        .unwrap();
    assert!(plan.sequence.is_none());
    let json = serde_json::to_value(&plan).unwrap();
    assert!(json.get("sequence").is_none());
    // A member of a sequence plans as a single instance, never fanned out again.
    let f = decode(&raw("attack-sequence-ec2.json"));
    let member = responder_core::sequence::member_finding(&f, "i-0a1b2c3d4e5f60719");
    let plan = engine.plan_member(&member).unwrap();
    assert!(plan.sequence.is_none());
    assert_eq!(plan.instance_id.as_deref(), Some("i-0a1b2c3d4e5f60719"));
    assert_eq!(plan.steps[0].action.name(), "isolate");
}
