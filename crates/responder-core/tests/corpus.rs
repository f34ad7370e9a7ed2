//! Every file of the GuardDuty corpus vendored in `tests/corpus/` decodes (or fails with
//! a clear error), plans against the shipped playbooks, and never panics.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use responder_core::{DecodeError, Engine, decode_bytes, decode_value};
use serde_json::{Map, Value};

/// The corpus vendored in the repository at `tests/corpus/`.
fn corpus() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/corpus");
    assert!(
        dir.join("events").is_dir(),
        "the corpus is not at tests/corpus/ of the repository ({})",
        dir.display()
    );
    dir
}

fn files(sub: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus().join(sub))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

fn engine() -> Engine {
    Engine::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../playbooks")).unwrap()
}

#[test]
fn every_corpus_file_decodes_or_names_its_placeholder() {
    let engine = engine();
    let all: Vec<PathBuf> = files("events")
        .into_iter()
        .chain(files("findings"))
        .collect();
    assert_eq!(all.len(), 65, "the corpus README promises 65 files");
    let mut decoded = 0;
    for path in &all {
        let bytes = std::fs::read(path).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        let findings = decode_bytes(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(findings.len(), 1, "{}", path.display());
        for f in findings {
            // Templates: a placeholder where the finding says what it is and where is
            // named; placeholders only in free text and resource names are data.
            if let Err(DecodeError::Placeholder {
                placeholder,
                path: field,
            }) = &f
            {
                assert!(text.contains(placeholder.as_str()) && !field.is_empty());
                continue;
            }
            let f = f.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(!f.id.is_empty() && !f.finding_type.name.is_empty());
            assert!(f.severity.is_some(), "{}: no severity", path.display());
            // Planning never panics; a matched playbook always plans for EC2 findings,
            // Runtime Monitoring findings about an instance, and stolen instance
            // credentials.
            let plan = engine.plan(&f, true);
            if let Ok(p) = &plan
                && p.playbook.is_some()
            {
                assert!(
                    f.finding_type.is_ec2()
                        || f.finding_type.name.contains("InstanceCredential")
                        || (f.finding_type.name.contains(":Runtime/")
                            && f.resource_type.as_deref() == Some("Instance")),
                    "{}",
                    path.display()
                );
            }
            decoded += 1;
        }
    }
    // The two templates carry their placeholders in resource names and text only,
    // which is data: they decode (and match no EC2 playbook).
    assert_eq!(decoded, 65);
}

fn pascal(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    if k.contains(':') {
                        return (k.clone(), pascal(v));
                    }
                    let mut c = k.chars();
                    let key = c
                        .next()
                        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                        .unwrap_or_default();
                    (key, pascal(v))
                })
                .collect::<Map<_, _>>(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(pascal).collect()),
        other => other.clone(),
    }
}

#[test]
fn both_casings_give_the_same_typed_view() {
    for path in files("events").iter().filter(|p| {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        ["03-", "04-", "24-"].iter().any(|n| name.starts_with(n))
    }) {
        let event: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let camel = decode_value(event["detail"].clone())
            .unwrap()
            .remove(0)
            .unwrap();
        let cli_output = serde_json::json!({ "Findings": [pascal(&event["detail"])] });
        let upper = decode_value(cli_output).unwrap().remove(0).unwrap();
        assert_eq!(camel.id, upper.id);
        assert_eq!(camel.finding_type, upper.finding_type);
        assert_eq!(camel.severity, upper.severity);
        assert_eq!(camel.account_id, upper.account_id);
        assert_eq!(camel.instance, upper.instance, "{}", path.display());
        assert_eq!(camel.action_type, upper.action_type);
        assert_eq!(camel.remote_ips, upper.remote_ips);
        assert!(
            camel.raw() == upper.raw(),
            "{}: raw JSON differs after casing",
            path.display()
        );
    }
}

#[test]
fn typed_view_of_a_real_delivery() {
    let path = corpus().join("events/04-unauthorizedaccess-ec2-torrelay.json");
    let f = decode_bytes(&std::fs::read(path).unwrap())
        .unwrap()
        .remove(0)
        .unwrap();
    assert_eq!(f.finding_type.name, "UnauthorizedAccess:EC2/TorRelay");
    assert_eq!(f.severity_level().map(|l| l.as_str()), Some("high"));
    assert_eq!(f.account_id.as_deref(), Some("180294179922"));
    assert_eq!(f.partition.as_deref(), Some("aws"));
    assert_eq!(f.resource_type.as_deref(), Some("Instance"));
    assert_eq!(f.resource_role.as_deref(), Some("TARGET"));
    assert_eq!(f.action_type.as_deref(), Some("NETWORK_CONNECTION"));
    let i = f.instance.as_ref().unwrap();
    assert_eq!(i.instance_id, "i-99999999");
    assert_eq!(i.network_interfaces.len(), 4);
    assert_eq!(
        i.network_interfaces[1].vpc_id.as_deref(),
        Some("vpc-generatedvpcid2")
    );
    assert_eq!(i.network_interfaces[0].security_groups.len(), 4);
    assert_eq!(i.tags.len(), 9);
    assert_eq!(
        i.iam_instance_profile.as_ref().unwrap().id.as_deref(),
        Some("GeneratedFindingInstanceProfileId")
    );
    assert_eq!(f.remote_ports, vec![80]);
    assert_eq!(f.local_ports, vec![39677]);
    assert_eq!(
        f.remote_ips,
        vec![
            "198.51.100.0".to_owned(),
            "1234:5678:90ab:cdef:1234:5678:90ab:cde0".to_owned()
        ]
    );
    assert_eq!(f.count, Some(2));
    assert!(!f.archived);
    assert_eq!(f.first_seen.as_deref(), Some("2025-03-17T20:17:41.000Z"));
}

#[test]
fn hostile_inputs_never_panic() {
    let cases: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"{}".to_vec(),
        b"[null, 1, \"x\", [], {}]".to_vec(),
        b"{\"detail\": {}}".to_vec(),
        b"{\"detail\": []}".to_vec(),
        b"{\"Findings\": 5}".to_vec(),
        b"{\"id\": \"a\", \"type\": \"\"}".to_vec(),
        b"{\"id\": \"a\", \"type\": \"x\", \"severity\": \"high\", \"service\": 7, \"resource\": {\"instanceDetails\": []}}".to_vec(),
        vec![0xff, 0xfe, 0x00],
        "[".repeat(10_000).into_bytes(),
        format!("{{\"id\": \"a\", \"type\": \"{}\"}}", "x".repeat(2_000_000)).into_bytes(),
    ];
    let engine = engine();
    for bytes in cases {
        if let Ok(findings) = decode_bytes(&bytes) {
            for f in findings.into_iter().flatten() {
                let _ = engine.plan(&f, true);
            }
        }
    }
}
