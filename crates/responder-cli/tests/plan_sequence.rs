//! `responder plan` on an attack sequence: every instance with its steps, the
//! instances past the cap, the shared cause, the dropped ids, and the steps run once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

fn plan(args: &[&str]) -> String {
    let out = Command::cargo_bin("responder")
        .unwrap()
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .arg("plan")
        .args(args)
        .arg("playbooks/tests/findings/attack-sequence-ec2-group.json")
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out).unwrap()
}

#[test]
fn plan_text_shows_every_instance_and_the_shared_cause() {
    let text = plan(&[]);
    assert!(
        text.contains(
            "attack-sequence-ec2  enforce  4 instance(s): isolate, snapshot, tag; notify"
        ),
        "{text}"
    );
    let mut at = 0;
    for id in ["18", "19", "20", "21"] {
        let line =
            format!("  instance i-0a1b2c3d4e5f607{id}:\n    1. isolate i-0a1b2c3d4e5f607{id}");
        let found = text[at..]
            .find(&line)
            .unwrap_or_else(|| panic!("{line:?} in order in\n{text}"));
        at += found + line.len();
    }
    for want in [
        "  shared cause: instance profile arn:aws:iam::111122223333:instance-profile/web",
        "  shared cause: launch template lt-0a1b2c3d4e5f60718",
        "  shared cause: AMI ami-0a1b2c3d4e5f60718",
        "  shared cause: Auto Scaling group arn:aws:autoscaling:",
        "  dropped: \"i-*\"",
        "  once for the sequence, after the instances:\n  1. notify",
    ] {
        assert!(text.contains(want), "{want:?} in\n{text}");
    }
}

#[test]
fn plan_json_has_the_sections_and_the_shared_cause() {
    let v: Value = serde_json::from_str(&plan(&["--format", "json"])).unwrap();
    let p = &v["plans"][0];
    let sections = p["sequence"]["sections"].as_array().unwrap();
    assert_eq!(sections.len(), 4);
    assert_eq!(p["sequence"]["max_instances"], 10);
    assert_eq!(p["sequence"]["shared"].as_array().unwrap().len(), 4);
    assert_eq!(p["steps"].as_array().unwrap().len(), 1);
    assert!(p.get("observed").is_none());
}
