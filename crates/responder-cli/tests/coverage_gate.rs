//! `responder coverage` judges each type band by band, with the playbooks' real
//! criteria: severity and resource criteria count, and the gate fails on what
//! `plan` would leave unanswered.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::{Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn responder() -> Command {
    let mut cmd = Command::cargo_bin("responder").unwrap();
    cmd.current_dir(root());
    cmd
}

fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

/// `coverage --fail-on-uncovered LEVEL` on `dir`: exit code, stdout, stderr.
fn gate(dir: &Path, level: &str, json: bool) -> (Option<i32>, String, String) {
    let mut cmd = responder();
    cmd.args(["coverage", "--fail-on-uncovered", level, "--playbooks"])
        .arg(dir);
    if json {
        cmd.args(["--format", "json"]);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn entry<'a>(doc: &'a Value, t: &str) -> &'a Value {
    doc["types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == t)
        .unwrap_or_else(|| panic!("{t} not listed"))
}

const WILDCARD_CRITICAL: &str = "name: everything-critical\nmatch:\n  finding_types: ['*']\n  resource_types: [Instance]\n  severity: critical\nsteps:\n  - notify: {}\n";

#[test]
fn one_critical_wildcard_playbook_fails_the_high_gate() {
    let dir = dir_with(&[("all.yaml", WILDCARD_CRITICAL)]);
    let (code, text, err) = gate(dir.path(), "high", false);
    assert_eq!(code, Some(1), "{text}");
    assert!(err.contains("coverage gate failed"), "{err}");
    assert!(!text.contains("196 of 196"), "{text}");
    assert!(
        text.contains("0 of 196 active finding types are answered in every band"),
        "{text}"
    );
    assert!(
        text.contains(
            "  CryptoCurrency:EC2/BitcoinTool.B (High)\n    high: none; no playbook answers TARGET at 7.0-8.9, ACTOR at 7.0-8.9\n"
        ),
        "{text}"
    );
    // The table row: covered in the critical band only.
    let row = text
        .lines()
        .find(|l| l.contains(" CryptoCurrency:EC2/BitcoinTool.B "))
        .unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells,
        [
            "!",
            "CryptoCurrency:EC2/BitcoinTool.B",
            "High",
            "-",
            "-",
            "-",
            "yes",
            "everything-critical"
        ]
    );

    let (code, out, _) = gate(dir.path(), "high", true);
    assert_eq!(code, Some(1));
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["covered"], 0);
    assert_eq!(doc["gate"]["passed"], false);
    let bitcoin = entry(&doc, "CryptoCurrency:EC2/BitcoinTool.B");
    assert_eq!(bitcoin["bands"]["critical"]["status"], "covered");
    assert_eq!(
        bitcoin["bands"]["critical"]["playbooks"],
        json!(["everything-critical"])
    );
    assert_eq!(bitcoin["bands"]["high"]["status"], "none");
    assert_eq!(
        bitcoin["bands"]["high"]["unanswered"][0],
        json!({"role": "TARGET", "resource_type": "Instance", "severity": [7.0, 8.9]})
    );
    assert_eq!(bitcoin["gated_bands"], json!(["high"]));
    // The attack sequence is about no instance: an `Instance` match misses it.
    let seq = entry(&doc, "AttackSequence:EC2/CompromisedInstanceGroup");
    assert_eq!(seq["bands"]["critical"]["status"], "none");
    // At critical, the types documented as High are not gated, the sequence is.
    let (code, out, _) = gate(dir.path(), "critical", true);
    assert_eq!(code, Some(1));
    let doc: Value = serde_json::from_str(&out).unwrap();
    let uncovered = doc["gate"]["uncovered"].as_array().unwrap();
    assert!(uncovered.contains(&json!("AttackSequence:EC2/CompromisedInstanceGroup")));
    assert!(!uncovered.contains(&json!("CryptoCurrency:EC2/BitcoinTool.B")));
    // A severity that varies is checked in the critical band: covered there.
    assert!(!uncovered.contains(&json!("Execution:EC2/MaliciousFile")));
}

#[test]
fn the_emr_port_probe_at_high_fails_against_the_earlier_shipped_playbooks() {
    // The shipped playbooks as they were before exposed-instance-ec2: the EMR
    // probe (High) matched low-severity-probes-ec2 by type only, and the gate passed.
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(root().join("playbooks")).unwrap() {
        let path = f.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.ends_with(".yaml") && name != "exposed-instance-ec2.yaml" {
            std::fs::copy(&path, dir.path().join(name)).unwrap();
        }
    }
    let (code, text, _) = gate(dir.path(), "high", false);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(
            "  Recon:EC2/PortProbeEMRUnprotectedPort (High)\n    high: none; no playbook answers TARGET at 7.0-8.9, ACTOR at 7.0-8.9\n"
        ),
        "{text}"
    );
    let (_, out, _) = gate(dir.path(), "high", true);
    let doc: Value = serde_json::from_str(&out).unwrap();
    let emr = entry(&doc, "Recon:EC2/PortProbeEMRUnprotectedPort");
    assert_eq!(emr["bands"]["low"]["status"], "partial");
    assert_eq!(
        emr["bands"]["low"]["playbooks"],
        json!(["low-severity-probes-ec2"])
    );
    // low-severity-probes-ec2 takes the target role only.
    assert_eq!(emr["bands"]["low"]["unanswered"][0]["role"], "ACTOR");
    assert_eq!(emr["bands"]["high"]["status"], "none");
    // And a sweep in the target role: instance-as-attacker-ec2 takes actors only.
    let uncovered = doc["gate"]["uncovered"].as_array().unwrap();
    assert_eq!(uncovered.len(), 2, "{uncovered:?}");
    assert!(uncovered.contains(&json!("Recon:EC2/PortProbeEMRUnprotectedPort")));
    assert!(uncovered.contains(&json!("Impact:EC2/PortSweep")));
    let sweep = entry(&doc, "Impact:EC2/PortSweep");
    assert_eq!(sweep["bands"]["high"]["status"], "partial");
    assert_eq!(
        sweep["bands"]["high"]["unanswered"],
        json!([{"role": "TARGET", "resource_type": "Instance", "severity": [7.0, 8.9]}])
    );

    // The shipped playbooks answer it.
    let (code, out, _) = gate(&root().join("playbooks"), "high", true);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(code, Some(0), "{}", doc["gate"]);
    let emr = entry(&doc, "Recon:EC2/PortProbeEMRUnprotectedPort");
    assert_eq!(emr["bands"]["high"]["status"], "covered");
    assert_eq!(
        emr["bands"]["high"]["playbooks"],
        json!(["exposed-instance-ec2"])
    );
    let sweep = entry(&doc, "Impact:EC2/PortSweep");
    assert_eq!(sweep["bands"]["high"]["status"], "covered");
    assert_eq!(
        sweep["bands"]["high"]["playbooks"],
        json!(["exposed-instance-ec2", "instance-as-attacker-ec2"])
    );
}

#[test]
fn part_of_a_band_is_partial_and_fails_the_gate() {
    let dir = dir_with(&[(
        "p.yaml",
        "name: upper-high\nmatch:\n  finding_types: ['*']\n  resource_types: [Instance, AttackSequence]\n  severity: {gte: 7.5}\nsteps:\n  - notify: {}\n",
    )]);
    let (code, text, _) = gate(dir.path(), "high", false);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(
            "  Trojan:EC2/DNSDataExfiltration (High)\n    high: partial (upper-high); no playbook answers TARGET at 7.0-7.4, ACTOR at 7.0-7.4\n"
        ),
        "{text}"
    );
    // Runtime Monitoring findings carry no resource role.
    assert!(
        text.contains(
            "  Execution:Runtime/ReverseShell (High)\n    high: partial (upper-high); no playbook answers no role at 7.0-7.4\n"
        ),
        "{text}"
    );
    let row = text
        .lines()
        .find(|l| l.contains(" Trojan:EC2/DNSDataExfiltration "))
        .unwrap();
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        [
            "!",
            "Trojan:EC2/DNSDataExfiltration",
            "High",
            "-",
            "-",
            "part",
            "yes",
            "upper-high"
        ]
    );
    // The critical band is whole, so a critical gate passes.
    let (code, text, _) = gate(dir.path(), "critical", false);
    assert_eq!(code, Some(0), "{text}");
}
