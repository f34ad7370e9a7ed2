//! The `responder` binary: exit codes, messages and the JSON shape.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn responder() -> Command {
    let mut cmd = Command::cargo_bin("responder").unwrap();
    cmd.current_dir(root());
    cmd
}

fn findings(name: &str) -> String {
    format!("playbooks/tests/findings/{name}")
}

fn json_of(out: &[u8]) -> Value {
    serde_json::from_slice(out).unwrap()
}

#[test]
fn validate_shipped_and_broken_playbooks() {
    responder().arg("validate").assert().code(0);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "name: bad\nmatch:\n  finding_types: 'CryptoCurrency:EC2/*'\n  resource_types: Instance\nsteps:\n  - isolate:\n      quarantine_grp: x\n",
    )
    .unwrap();
    let out = responder()
        .args(["validate", "--playbooks"])
        .arg(dir.path())
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains(
            "bad.yaml:7:7: error: steps[0].isolate.quarantine_grp: unknown field `quarantine_grp`"
        ),
        "{text}"
    );
    // Warnings alone still pass.
    std::fs::write(
        dir.path().join("bad.yaml"),
        "name: warn\nmatch:\n  finding_types: 'CryptoCurrency:EC2/*'\n  resource_types: Instance\nsteps:\n  - isolate: {}\n  - terminate: {}\n",
    )
    .unwrap();
    let out = responder()
        .args(["validate", "--playbooks"])
        .arg(dir.path())
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    assert!(
        String::from_utf8(out)
            .unwrap()
            .contains("warning: steps[1].terminate")
    );
    responder()
        .args(["validate", "--playbooks", "does/not/exist"])
        .assert()
        .code(1);
}

#[test]
fn plan_json_shape() {
    let out = responder()
        .args(["plan", "--format", "json"])
        .arg(findings("bitcoin-dns.json"))
        .arg(findings(
            "corpus-40-policy-s3-bucketblockpublicaccessdisabled.json",
        ))
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let doc = json_of(&out);
    let plans = doc["plans"].as_array().unwrap();
    assert_eq!(plans.len(), 2);
    let p = &plans[0];
    assert_eq!(p["finding_id"], "4ac7a0b1e2d34c5f8e9a0b1c2d3e4f50");
    assert_eq!(p["finding_type"], "CryptoCurrency:EC2/BitcoinTool.B!DNS");
    assert_eq!(p["severity"], 8.0);
    assert_eq!(p["playbook"], "crypto-mining-ec2");
    assert_eq!(p["mode"], "enforce");
    let actions: Vec<&str> = p["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["isolate", "snapshot", "relaunch", "terminate", "notify"]
    );
    assert_eq!(
        p["steps"][0]["quarantine_group"],
        "guardduty-responder-quarantine"
    );
    // What the finding saw stays apart from the instructions.
    assert!(p["steps"][0].get("network_interfaces").is_none());
    assert_eq!(
        p["observed"]["network_interfaces"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(p["steps"][0]["on_failure"], "abort");
    assert_eq!(p["steps"][2]["metadata_tokens"], "required");
    assert_eq!(p["steps"][2]["associate_public_ip"], false);
    assert_eq!(p["steps"][2]["source"]["kind"], "clone");
    // Launched before the terminate, a failed replacement stops the response.
    assert_eq!(p["steps"][2]["on_failure"], "abort");
    let none = &plans[1];
    assert_eq!(none["playbook"], Value::Null);
    assert_eq!(none["mode"], Value::Null);
    assert_eq!(none["steps"], Value::Array(vec![]));
}

#[test]
fn plan_reads_stdin_and_explains_other_playbooks() {
    let event = std::fs::read(root().join(findings("network-port-unusual.json"))).unwrap();
    let out = responder()
        .args(["plan", "--why-not", "--format", "json", "-"])
        .write_stdin(event)
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let p = &json_of(&out)["plans"][0];
    assert_eq!(p["playbook"], "unusual-network-behaviour-ec2");
    assert_eq!(p["source"], "<stdin>#0");
    assert_eq!(p["not_chosen"].as_array().unwrap().len(), 13);
    assert!(
        p["matched_because"][0]
            .as_str()
            .unwrap()
            .starts_with("type Behavior:EC2/NetworkPortUnusual matches")
    );
}

#[test]
fn plan_text_is_a_table() {
    let out = responder()
        .arg("plan")
        .arg(findings("bitcoin-dns.json"))
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("1 finding: Critical 0  High 1  Medium 0  Low 0"),
        "the console's severity counts first"
    );
    let header = lines.find(|l| !l.is_empty()).unwrap();
    for col in ["FINDING", "TYPE", "SEVERITY", "PLAYBOOK", "MODE", "STEPS"] {
        assert!(header.contains(col), "{header}");
    }
    assert!(
        text.contains("crypto-mining-ec2  enforce  isolate, snapshot, relaunch, terminate, notify"),
        "{text}"
    );
}

#[test]
fn bad_inputs_exit_2_and_never_stop_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let malformed = dir.path().join("malformed.json");
    std::fs::write(&malformed, "{\"id\": ").unwrap();
    let batch = dir.path().join("batch.json");
    let good: Value =
        serde_json::from_slice(&std::fs::read(root().join(findings("bitcoin-dns.json"))).unwrap())
            .unwrap();
    std::fs::write(
        &batch,
        serde_json::to_vec(&serde_json::json!([{"id": "no-type"}, good, 42])).unwrap(),
    )
    .unwrap();
    let missing = dir.path().join("missing.json");
    let assert = responder()
        .args(["plan", "--format", "json"])
        .arg(&malformed)
        .arg(&batch)
        .arg(&missing)
        .assert()
        .code(2);
    let output = assert.get_output();
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    assert!(
        stderr.contains("malformed.json: invalid JSON at line 1, column 7"),
        "{stderr}"
    );
    assert!(stderr.contains("missing.json: cannot read"), "{stderr}");
    assert!(
        stderr.contains("batch.json#0: missing required field `type`"),
        "{stderr}"
    );
    let plans = json_of(&output.stdout)["plans"].as_array().unwrap().clone();
    assert_eq!(plans.len(), 5);
    assert!(plans[0]["error"].as_str().unwrap().contains("invalid JSON"));
    assert!(plans[1]["error"].is_string());
    assert_eq!(plans[2]["playbook"], "crypto-mining-ec2");
    assert!(
        plans[3]["error"]
            .as_str()
            .unwrap()
            .contains("expected a finding object")
    );
    assert!(plans[4]["error"].as_str().unwrap().contains("cannot read"));
}

#[test]
fn plan_refuses_invalid_playbooks() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.yaml"), "name: [").unwrap();
    responder()
        .args(["plan", "--playbooks"])
        .arg(dir.path())
        .arg(findings("bitcoin-dns.json"))
        .assert()
        .code(1);
}

#[test]
fn test_command_runs_the_shipped_cases_and_fails_on_a_wrong_expectation() {
    let out = responder()
        .arg("test")
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains(" passed, 0 failed"), "{text}");
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(root().join("playbooks")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "yaml") {
            std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
        }
    }
    std::fs::create_dir(dir.path().join("tests")).unwrap();
    std::fs::write(
        dir.path().join("tests/wrong.yaml"),
        format!(
            "cases:\n  - name: wrong\n    finding: {}\n    expect:\n      playbook: low-severity-probes-ec2\n",
            root().join(findings("bitcoin-dns.json")).display()
        ),
    )
    .unwrap();
    let out = responder()
        .args(["test", "--playbooks"])
        .arg(dir.path())
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("expected playbook low-severity-probes-ec2, got crypto-mining-ec2"),
        "{text}"
    );
    assert!(text.contains("0 passed, 1 failed"), "{text}");
}

#[test]
fn coverage_flags_uncovered_high_ec2_types() {
    let out = responder()
        .args(["coverage", "--format", "json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let doc = json_of(&out);
    assert_eq!(doc["total"], 196);
    let types = doc["types"].as_array().unwrap();
    let handlers = |t: &str| types.iter().find(|e| e["type"] == t).unwrap()["playbooks"].clone();
    assert_eq!(
        handlers("CryptoCurrency:EC2/BitcoinTool.B!DNS"),
        serde_json::json!(["crypto-mining-ec2"])
    );
    assert_eq!(
        handlers("Behavior:EC2/NetworkPortUnusual"),
        serde_json::json!(["unusual-network-behaviour-ec2"])
    );
    assert_eq!(
        handlers("Policy:S3/BucketPublicAccessGranted"),
        serde_json::json!([])
    );
    let uncovered: Vec<&str> = doc["uncovered_high_critical_ec2"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(!uncovered.contains(&"CryptoCurrency:EC2/BitcoinTool.B!DNS"));
    // With only the probe playbook, the High mining types are flagged.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("playbooks/low-severity-probes-ec2.yaml"),
        dir.path().join("p.yaml"),
    )
    .unwrap();
    let out = responder()
        .args(["coverage", "--playbooks"])
        .arg(dir.path())
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("Uncovered EC2-instance types that can be high or above"),
        "{text}"
    );
    assert!(
        text.contains("  CryptoCurrency:EC2/BitcoinTool.B (High)\n"),
        "{text}"
    );
}

#[test]
fn coverage_gate_fails_on_uncovered_ec2_types_at_the_threshold() {
    // The shipped playbooks pass the gate CI runs, at every threshold.
    for level in ["low", "medium", "high", "critical", "HIGH"] {
        let out = responder()
            .args(["coverage", "--fail-on-uncovered", level, "--format", "json"])
            .assert()
            .get_output()
            .clone();
        let doc = json_of(&out.stdout);
        if level.eq_ignore_ascii_case("high") || level == "critical" {
            assert_eq!(out.status.code(), Some(0), "{level}: {doc}");
            assert_eq!(doc["gate"]["passed"], true);
            assert_eq!(doc["gate"]["uncovered"], serde_json::json!([]));
        } else {
            // Low and medium EC2 types (Medium runtime signals, low probes) are not all
            // answered: the gate names them.
            assert_eq!(out.status.code(), Some(1), "{level}: {doc}");
            assert!(!doc["gate"]["uncovered"].as_array().unwrap().is_empty());
        }
    }
    // Only the probe playbook: High EC2, Runtime-on-instance and malware types are
    // uncovered, each named with its severity; IAM and S3 types are not gated.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("playbooks/low-severity-probes-ec2.yaml"),
        dir.path().join("p.yaml"),
    )
    .unwrap();
    let out = responder()
        .args(["coverage", "--fail-on-uncovered", "high", "--playbooks"])
        .arg(dir.path())
        .assert()
        .code(1)
        .get_output()
        .clone();
    let text = String::from_utf8(out.stdout).unwrap();
    for t in [
        "  CryptoCurrency:EC2/BitcoinTool.B (High)\n",
        "  Execution:Runtime/ReverseShell (High)\n",
        "  Execution:EC2/MaliciousFile (varies)\n",
        "  AttackSequence:EC2/CompromisedInstanceGroup (Critical)\n",
        "  Persistence:Runtime/SensitiveFileModified (severity not documented)\n",
    ] {
        assert!(text.contains(t), "{t}: {text}");
    }
    for t in [
        "Execution:Runtime/NewBinaryExecuted",
        "Recon:IAMUser/MaliciousIPCaller",
        "Execution:EC2/MaliciousFile!Snapshot",
        "AttackSequence:EKS/CompromisedCluster",
    ] {
        assert!(!text.contains(&format!("  {t} (")), "{t}: {text}");
    }
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("coverage gate failed")
    );
    // Critical: only the attack sequence is left.
    let out = responder()
        .args([
            "coverage",
            "--format",
            "json",
            "--fail-on-uncovered",
            "critical",
            "--playbooks",
        ])
        .arg(dir.path())
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let doc = json_of(&out);
    let uncovered = doc["gate"]["uncovered"].as_array().unwrap();
    assert!(uncovered.contains(&serde_json::json!(
        "AttackSequence:EC2/CompromisedInstanceGroup"
    )));
    assert!(!uncovered.contains(&serde_json::json!("CryptoCurrency:EC2/BitcoinTool.B")));
    // A threshold that is not a level is a usage error.
    responder()
        .args(["coverage", "--fail-on-uncovered", "severe"])
        .assert()
        .code(2);
}

#[test]
fn schema_command_prints_the_committed_schema() {
    let out = responder()
        .arg("schema")
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    assert_eq!(
        out,
        std::fs::read(root().join("playbooks/schema.json")).unwrap()
    );
    let out = responder()
        .args(["schema", "--test-cases"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    assert_eq!(
        out,
        std::fs::read(root().join("playbooks/tests/schema.json")).unwrap()
    );
}

/// Evaluates the `detail.type` part of an EventBridge pattern (exact, prefix, wildcard).
fn pattern_accepts(pattern: &Value, finding_type: &str) -> bool {
    let Some(matchers) = pattern["detail"]["type"].as_array() else {
        return true;
    };
    matchers.iter().any(|m| match m {
        Value::String(s) => s == finding_type,
        _ if m.get("prefix").is_some() => finding_type.starts_with(m["prefix"].as_str().unwrap()),
        _ => {
            let parts: Vec<&str> = m["wildcard"].as_str().unwrap().split('*').collect();
            let (first, last) = (parts[0], parts[parts.len() - 1]);
            let mut rest = finding_type;
            if !rest.starts_with(first) {
                return false;
            }
            rest = &rest[first.len()..];
            for mid in &parts[1..parts.len() - 1] {
                match rest.find(mid) {
                    Some(i) => rest = &rest[i + mid.len()..],
                    None => return false,
                }
            }
            rest.ends_with(last)
        }
    })
}

#[test]
fn event_pattern_delivers_every_finding_a_playbook_answers() {
    let out = responder()
        .arg("event-pattern")
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let pattern = json_of(&out);
    assert_eq!(pattern["source"], serde_json::json!(["aws.guardduty"]));
    assert_eq!(
        pattern["detail-type"],
        serde_json::json!(["GuardDuty Finding"])
    );
    let out = responder()
        .args(["plan", "--format", "json"])
        .args(
            std::fs::read_dir(root().join("playbooks/tests/findings"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "json")),
        )
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let mut answered = 0;
    for plan in json_of(&out)["plans"].as_array().unwrap() {
        let t = plan["finding_type"].as_str().unwrap();
        if plan["playbook"].is_string() {
            answered += 1;
            assert!(
                pattern_accepts(&pattern, t),
                "{t} is answered but the rule would not deliver it"
            );
        }
    }
    assert!(answered >= 10, "{answered}");
    for t in [
        "Policy:S3/BucketBlockPublicAccessDisabled",
        "Recon:IAMUser/MaliciousIPCaller",
        "Execution:Kubernetes/ExecInKubeSystemPod",
        "Execution:EC2/MaliciousFile!Snapshot",
    ] {
        assert!(
            !pattern_accepts(&pattern, t),
            "{t} would invoke the function for nothing"
        );
    }
}

#[test]
fn the_sam_template_routes_exactly_what_the_playbooks_need() {
    let out = responder()
        .arg("event-pattern")
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let generated = json_of(&out);
    let text = std::fs::read_to_string(root().join("infra/template.yaml")).unwrap();
    let template: Value = serde_saphyr::from_str(&text).unwrap();
    let function = &template["Resources"]["ResponderFunction"]["Properties"];
    let pattern = &function["Events"]["GuardDutyFindings"]["Properties"]["Pattern"];
    assert_eq!(
        *pattern, generated,
        "infra/template.yaml's rule pattern is stale: paste `responder event-pattern` into it"
    );
    assert_eq!(function["Runtime"], "provided.al2023");
    assert_eq!(template["Parameters"]["Mode"]["Default"], "dry-run");
}

#[test]
fn quarantine_group_setting_enters_the_plan_and_permissions_come_from_the_steps() {
    let out = responder()
        .args(["plan", "--format", "json", "--quarantine-group", "corp-q"])
        .arg(root().join(findings("bitcoin-dns.json")))
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let doc = json_of(&out);
    assert_eq!(doc["plans"][0]["steps"][0]["quarantine_group"], "corp-q");
    // The same setting from the environment, as the function reads it.
    let out = responder()
        .env("QUARANTINE_GROUP", "env-q")
        .args(["plan", "--format", "json"])
        .arg(root().join(findings("bitcoin-dns.json")))
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    assert_eq!(
        json_of(&out)["plans"][0]["steps"][0]["quarantine_group"],
        "env-q"
    );
    let out = responder()
        .args(["permissions", "--all"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    for action in [
        "ec2:ModifyNetworkInterfaceAttribute",
        "ec2:CreateSnapshots",
        "ec2:TerminateInstances",
        "ec2:RunInstances",
        "guardduty:ArchiveFindings",
        "sns:Publish",
    ] {
        assert!(
            text.lines().any(|l| l == action),
            "{action} missing:\n{text}"
        );
    }
}

/// `responder permissions` lists the keys the playbooks' tag steps write; the
/// templates' `PlaybookTagKeys` (the only other keys the roles may write on
/// instances) default to that list for the shipped playbooks.
#[test]
fn permissions_list_the_playbooks_tag_keys_the_templates_allow() {
    let out = responder()
        .args(["permissions", "--format", "json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let doc = json_of(&out);
    let keys: Vec<&str> = doc["tag_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert!(keys.contains(&"incident-response:status"), "{keys:?}");
    assert!(
        doc["policy"].to_string().contains("${PlaybookTagKeys}"),
        "the tag step's grant names the parameter"
    );
    for file in ["infra/template.yaml", "infra/member-role.yaml"] {
        let text = std::fs::read_to_string(root().join(file)).unwrap();
        let template: Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(
            template["Parameters"]["PlaybookTagKeys"]["Default"],
            keys.join(","),
            "{file}: PlaybookTagKeys' default is not `responder permissions`' tag_keys"
        );
    }
    // `--all` reads no playbook: no playbook key.
    let out = responder()
        .args(["permissions", "--all", "--format", "json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    assert_eq!(json_of(&out)["tag_keys"], serde_json::json!([]));
}

/// Runs the binary with a standard output whose reader is already gone, as after
/// `| head -1`: every write fails with EPIPE. Returns the exit code and stderr.
fn with_closed_stdout(args: &[&str]) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_responder"))
        .current_dir(root())
        .args(args)
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A closed pipe ends no command with a panic: each finishes and exits with its own
/// code, quietly (the output module's documented choice).
#[test]
fn a_closed_stdout_is_not_a_panic() {
    let bitcoin = findings("bitcoin-dns.json");
    for (args, code) in [
        (vec!["plan", bitcoin.as_str()], 0),
        (vec!["plan", "--format", "json", bitcoin.as_str()], 0),
        (vec!["plan", bitcoin.as_str(), "no-such-file.json"], 2),
        (vec!["validate"], 0),
        (vec!["test"], 0),
        (vec!["coverage"], 0),
        (vec!["coverage", "--format", "json"], 0),
        (vec!["permissions"], 0),
        (vec!["permissions", "--format", "json"], 0),
        (vec!["schema"], 0),
        (vec!["event-pattern"], 0),
        (vec!["--help"], 0),
    ] {
        let (status, stderr) = with_closed_stdout(&args);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(status, Some(code), "{args:?}: {stderr}");
    }
    // `run` (no endpoint is reached: the input is unreadable) says so on stderr.
    let (status, stderr) = with_closed_stdout(&[
        "run",
        "--dry-run",
        "--region",
        "us-east-1",
        "no-such-file.json",
    ]);
    assert_eq!(status, Some(2), "{stderr}");
    assert!(
        stderr.contains("no-such-file.json: cannot read"),
        "{stderr}"
    );
}

/// `responder run ... | head -1` in text mode: the reader takes the first line and
/// goes away while `run` still has a line to write per finding (here, findings no
/// playbook answers: no AWS call is made); it finishes quietly with its own exit
/// code, not a panic (101).
#[test]
fn run_text_into_head_exits_cleanly() {
    use std::io::BufRead;
    let text = std::fs::read_to_string(root().join(findings(
        "corpus-02-recon-iamuser-maliciousipcaller-custom.json",
    )))
    .unwrap();
    let finding: Value = serde_json::from_str(&text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("findings.ndjson");
    // 3,000 "no action" lines: far more than a pipe holds.
    let lines: Vec<String> = (0..3000)
        .map(|i| {
            let mut f = finding.clone();
            f["id"] = Value::from(format!("{i:032x}"));
            f.to_string()
        })
        .collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_responder"))
        .current_dir(root())
        .env_remove("LEDGER_TABLE")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(["run", "--dry-run", "--no-verify"])
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut first = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("3000 findings"), "{first}");
    // The reader is gone (the BufReader and its pipe were dropped above).
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

/// Text output never carries a finding's terminal escapes, carriage returns, bell,
/// C1 controls or bidi overrides, and a newline in a field forges no line.
#[test]
fn plan_text_escapes_finding_fields() {
    let evil = "\u{1b}[2J\r\u{7}\u{9b}\u{202e}\nforged";
    let path = root().join(findings(
        "corpus-09-recon-ec2-portprobeunprotectedport.json",
    ));
    let mut event: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let d = &mut event["detail"];
    d["Type"] = Value::from(format!("Recon:EC2/PortProbeUnprotectedPort{evil}"));
    let details = &mut d["Resource"]["InstanceDetails"];
    details["IamInstanceProfile"]["Arn"] =
        Value::from(format!("arn:aws:iam::1:instance-profile/p{evil}"));
    details["Tags"] =
        serde_json::json!([{"Key": "aws:autoscaling:groupName", "Value": format!("web{evil}")}]);
    let out = responder()
        .args(["plan", "-"])
        .write_stdin(serde_json::to_vec(&event).unwrap())
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(
        !text
            .chars()
            .any(|c| c != '\n' && responder_core::text::needs_escape(c)),
        "{text:?}"
    );
    let safe = "\\u{1b}[2J\\r\\u{7}\\u{9b}\\u{202e}\\nforged";
    // The type (table and heading), the tag step's value, the profile, the group.
    assert!(text.matches(safe).count() >= 5, "{text}");
    assert!(!text.lines().any(|l| l.starts_with("forged")), "{text}");
    assert!(
        text.contains(&format!("Auto Scaling group web{safe}")),
        "{text}"
    );
}

/// The quarantine group setting gets the checks a playbook's own group gets: the VPC's
/// default group, or an untrack group (opened to all traffic), is refused before any plan.
#[test]
fn quarantine_group_setting_cannot_be_default_or_an_untrack_group() {
    let bitcoin = findings("bitcoin-dns.json");
    for (group, why) in [
        ("DEFAULT", "is the VPC's default group"),
        (
            "guardduty-responder-untrack",
            "is the untrack group of playbook",
        ),
    ] {
        for command in ["plan", "run"] {
            // (`run` enforces, which needs a ledger table: the variable names one.)
            let out = responder()
                .env("LEDGER_TABLE", "gdr-ledger")
                .args([command, "--quarantine-group", group, bitcoin.as_str()])
                .assert()
                .code(1)
                .get_output()
                .clone();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains(why), "{command} {group}: {stderr}");
            assert!(out.stdout.is_empty(), "{command} {group}");
        }
    }
}
