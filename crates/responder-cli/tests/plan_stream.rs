//! `responder plan` streams: NDJSON and arrays through standard input, a bad finding in
//! the middle, and plans written while the input is still coming.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

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

/// A shipped test finding, compact, with its id replaced by `id`.
fn finding(name: &str, id: &str) -> Vec<u8> {
    let path = root().join("playbooks/tests/findings").join(name);
    let mut v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let f = if v.get("detail").is_some() {
        &mut v["detail"]
    } else {
        &mut v
    };
    let key = if f.get("id").is_some() { "id" } else { "Id" };
    f[key] = Value::from(id);
    serde_json::to_vec(&v).unwrap()
}

fn plans(stdout: &[u8]) -> Vec<Value> {
    let doc: Value = serde_json::from_slice(stdout).unwrap();
    doc["plans"].as_array().unwrap().clone()
}

#[test]
fn ndjson_with_a_bad_line_plans_the_others_and_exits_2() {
    let mut input = Vec::new();
    input.extend(finding("bitcoin-dns.json", "first"));
    input.extend(b"\n{\"id\": \"broken\", \"type\": }\n");
    // PascalCase and an envelope, on one line each.
    input.extend(finding(
        "corpus-30-cryptocurrency-ec2-bitcointool-b.json",
        "third",
    ));
    input.push(b'\n');
    input.extend(finding(
        "corpus-09-recon-ec2-portprobeunprotectedport.json",
        "fourth",
    ));
    input.push(b'\n');
    let out = responder()
        .args(["plan", "--format", "json", "-"])
        .write_stdin(input)
        .assert()
        .code(2);
    let output = out.get_output();
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    assert!(
        stderr.contains("<stdin>#1: invalid JSON at line 2, column"),
        "{stderr}"
    );
    let plans = plans(&output.stdout);
    assert_eq!(plans.len(), 4, "{plans:?}");
    assert_eq!(plans[0]["finding_id"], "first");
    assert_eq!(plans[0]["playbook"], "crypto-mining-ec2");
    assert_eq!(plans[1]["source"], "<stdin>#1");
    assert!(plans[1]["error"].is_string());
    assert_eq!(plans[2]["finding_id"], "third");
    assert_eq!(plans[3]["finding_id"], "fourth");
    assert_eq!(plans[3]["source"], "<stdin>#3");
}

#[test]
fn an_array_with_bad_elements_in_the_middle() {
    let mut input = b"[".to_vec();
    input.extend(finding("bitcoin-dns.json", "a"));
    input.extend(b", 42, {\"id\": \"no-type\"}, ");
    input.extend(finding("bitcoin-dns.json", "b"));
    input.extend(b"]");
    let out = responder()
        .args(["plan", "-"])
        .write_stdin(input)
        .assert()
        .code(2);
    let output = out.get_output();
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    assert!(
        stderr.contains("<stdin>#1: expected a finding object, got a number"),
        "{stderr}"
    );
    assert!(
        stderr.contains("<stdin>#2: missing required field `type`"),
        "{stderr}"
    );
    let text = String::from_utf8(output.stdout.clone()).unwrap();
    // One table: the four rows, then the details of the two plans.
    assert_eq!(text.matches("FINDING").count(), 1, "{text}");
    assert_eq!(
        text.matches("crypto-mining-ec2  enforce").count(),
        2,
        "{text}"
    );
    assert_eq!(text.matches("ERROR").count(), 2, "{text}");
    assert!(text.contains("\nb (<stdin>#3): CryptoCurrency"), "{text}");
}

#[test]
fn an_array_cut_short_keeps_what_was_planned() {
    let mut input = b"[".to_vec();
    input.extend(finding("bitcoin-dns.json", "a"));
    input.extend(b", {\"id\": \"cut");
    let out = responder()
        .args(["plan", "--format", "json", "-"])
        .write_stdin(input)
        .assert()
        .code(2);
    let output = out.get_output();
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    assert!(stderr.contains("<stdin>: invalid JSON"), "{stderr}");
    let plans = plans(&output.stdout);
    assert_eq!(plans.len(), 2);
    assert_eq!(plans[0]["finding_id"], "a");
    assert_eq!(plans[1]["source"], "<stdin>");
}

/// Plans come out while the input is still being written: the binary does not read
/// its whole input first. Checked by order of events, not by time: the writer stops
/// writing once output has appeared and asserts it had not finished.
#[test]
fn plans_are_written_before_the_input_ends() {
    const COUNT: usize = 5_000;
    let bin = assert_cmd::cargo::cargo_bin("responder");
    let mut child = std::process::Command::new(bin)
        .current_dir(root())
        .args(["plan", "--format", "json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let seen = Arc::new(AtomicBool::new(false));
    let written_when_seen = Arc::new(AtomicUsize::new(usize::MAX));
    let mut stdin = child.stdin.take().unwrap();
    let writer = {
        let seen = Arc::clone(&seen);
        let written_when_seen = Arc::clone(&written_when_seen);
        std::thread::spawn(move || {
            stdin.write_all(b"[").unwrap();
            for i in 0..COUNT {
                if seen.load(Ordering::SeqCst)
                    && written_when_seen.load(Ordering::SeqCst) == usize::MAX
                {
                    written_when_seen.store(i, Ordering::SeqCst);
                }
                if i > 0 {
                    stdin.write_all(b",").unwrap();
                }
                stdin
                    .write_all(&finding("bitcoin-dns.json", &format!("f-{i}")))
                    .unwrap();
            }
            stdin.write_all(b"]").unwrap();
        })
    };
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut sources = 0usize;
    for line in stdout.lines() {
        let line = line.unwrap();
        // A plan's own keys are indented by six spaces (`{"plans": [{...`).
        if line.starts_with("      \"source\": ") {
            seen.store(true, Ordering::SeqCst);
            sources += 1;
        }
    }
    writer.join().unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(sources, COUNT);
    let at = written_when_seen.load(Ordering::SeqCst);
    assert!(
        at < COUNT,
        "no plan was written before the whole input was (first seen after {at} findings)"
    );
}

/// Text starts with the console's header, the planned findings counted by severity;
/// `--details` puts each finding's details panel before its plan, attacker-written
/// text escaped.
#[test]
fn text_starts_with_the_severity_counts_and_details_are_escaped() {
    let mut hostile: Value =
        serde_json::from_slice(&finding("bitcoin-dns.json", "hostile")).unwrap();
    hostile["detail"]["service"]["action"]["dnsRequestAction"]["domain"] =
        Value::from("evil.example\u{1b}[2J\nplaybook: forged");
    let mut input = Vec::new();
    input.extend(serde_json::to_vec(&hostile).unwrap());
    input.push(b'\n');
    input.extend(finding(
        "corpus-09-recon-ec2-portprobeunprotectedport.json",
        "low",
    ));
    input.push(b'\n');
    let out = responder()
        .args(["plan", "--details", "-"])
        .write_stdin(input)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with("2 findings: Critical 0  High 1"),
        "{first}"
    );
    assert!(text.contains("Resource ID"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "a raw escape reached the terminal"
    );
    assert!(
        !text.lines().any(|l| l.starts_with("playbook: forged")),
        "a forged line: {text}"
    );
    assert!(text.contains("evil.example"), "{text}");
}

/// A stream longer than a page cannot know its counts at the start: they end it.
#[test]
fn a_stream_longer_than_a_page_ends_with_the_counts() {
    let mut input = Vec::new();
    for i in 0..1001 {
        input.extend(finding("bitcoin-dns.json", &format!("f{i}")));
        input.push(b'\n');
    }
    let out = responder()
        .args(["plan", "-"])
        .write_stdin(input)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.starts_with("1001 findings"), "{}", &text[..200]);
    assert_eq!(
        text.lines().last(),
        Some("total by severity: 1001 findings: Critical 0  High 1001  Medium 0  Low 0")
    );
}
