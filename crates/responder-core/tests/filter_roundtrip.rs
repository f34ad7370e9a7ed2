//! Saved filters both ways over the whole corpus: every shipped playbook is exported
//! to GuardDuty criteria, the criteria go through their JSON wire form and are
//! imported back into a playbook `match`/`exclude` (printed as YAML and parsed
//! again), and the playbook, the criteria (evaluated as GuardDuty does,
//! `filter::criteria_holds`) and the imported playbook (the engine's matcher) must
//! select the same findings out of every corpus file and test finding, each also
//! archived and also carrying the exemption tag.
//!
//! Every shipped playbook exports exactly: the shipped exemption is the tag key
//! (`exclude: [{tags: ["guardduty-responder:exempt"]}]`, any value, as the IAM Deny
//! reads it), which criteria can say. A key *and* value exemption cannot be said
//! (GuardDuty's criteria test tag keys and values as separate attributes): its export
//! names that part, and the export without it differs from the playbook on exactly
//! the exempt findings.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use responder_core::filter::{
    self, ExportMode, FindingCriteria, criteria_from_value, criteria_holds, export, import,
};
use responder_core::matcher::CompiledCriteria;
use responder_core::matcher::criteria::Criteria;
use responder_core::select;
use responder_core::{Engine, Finding, decode_bytes};
use serde_json::{Value, json};

const EXEMPT: &str = "guardduty-responder:exempt";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            json_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
}

/// Every decodable finding of the corpus and of the playbook tests, and the test
/// bitcoin finding once per type pattern of the shipped playbooks (`*` as `X`) at
/// the severities on both sides of every console band boundary and each resource
/// role; each also archived and also with the
/// exemption tag (on instance findings).
fn findings() -> Vec<(String, Finding)> {
    let mut files = Vec::new();
    json_files(&root().join("tests/corpus/events"), &mut files);
    json_files(&root().join("tests/corpus/findings"), &mut files);
    json_files(&root().join("playbooks/tests/findings"), &mut files);
    files.sort();
    let mut out = Vec::new();
    let mut bases: Vec<(String, Finding)> = Vec::new();
    let base = root().join("playbooks/tests/findings/bitcoin-dns.json");
    let base = decode_bytes(&std::fs::read(base).unwrap())
        .unwrap()
        .remove(0)
        .unwrap();
    let engine = Engine::load(&root().join("playbooks")).unwrap();
    for p in engine.playbooks() {
        for pattern in p.playbook.matches.value.finding_types.iter().flatten() {
            for severity in [1.0, 3.9, 4.0, 4.5, 6.9, 7.0, 8.9, 9.0, 10.0] {
                for role in ["TARGET", "ACTOR"] {
                    let mut raw = base.raw().clone();
                    raw["type"] = json!(pattern.replace('*', "X"));
                    raw["severity"] = json!(severity);
                    raw["service"]["resourceRole"] = json!(role);
                    bases.push((
                        format!("{pattern} {severity} {role}"),
                        Finding::from_value(raw).unwrap(),
                    ));
                }
            }
        }
    }
    for path in files {
        let Ok(decoded) = decode_bytes(&std::fs::read(&path).unwrap()) else {
            continue;
        };
        for (i, f) in decoded.into_iter().enumerate() {
            if let Ok(f) = f {
                let name = format!("{}#{i}", path.file_name().unwrap().to_string_lossy());
                bases.push((name, f));
            }
        }
    }
    for (name, f) in bases {
        {
            let mut archived = f.raw().clone();
            archived["service"]["archived"] = json!(true);
            out.push((
                format!("{name} archived"),
                Finding::from_value(archived).unwrap(),
            ));
            if f.raw()
                .pointer("/resource/instanceDetails")
                .is_some_and(Value::is_object)
            {
                for value in ["true", "false"] {
                    let mut exempt = f.raw().clone();
                    let tags = &mut exempt["resource"]["instanceDetails"]["tags"];
                    if !tags.is_array() {
                        *tags = json!([]);
                    }
                    tags.as_array_mut()
                        .unwrap()
                        .push(json!({"key": EXEMPT, "value": value}));
                    out.push((
                        format!("{name} exempt={value}"),
                        Finding::from_value(exempt).unwrap(),
                    ));
                }
            }
            out.push((name, f));
        }
    }
    assert!(
        out.len() > 150,
        "the corpus is there ({} findings)",
        out.len()
    );
    out
}

#[derive(serde::Deserialize)]
struct Doc {
    #[serde(rename = "match")]
    m: Criteria,
    #[serde(default)]
    exclude: Vec<Criteria>,
}

/// The criteria through their wire form, imported as playbook YAML and parsed back.
fn reimported(criteria: &FindingCriteria) -> (CompiledCriteria, Vec<CompiledCriteria>) {
    let wire = serde_json::to_value(criteria).unwrap();
    let back = criteria_from_value(&json!({ "findingCriteria": wire })).unwrap();
    assert_eq!(&back, criteria, "the wire form reads back");
    let yaml = import(&back).unwrap().to_yaml();
    let doc: Doc = serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    (
        CompiledCriteria::compile(&doc.m).unwrap(),
        doc.exclude
            .iter()
            .map(|e| CompiledCriteria::compile(e).unwrap())
            .collect(),
    )
}

fn imported_selects(i: &(CompiledCriteria, Vec<CompiledCriteria>), f: &Finding) -> bool {
    i.0.evaluate(f, false).is_ok() && i.1.iter().all(|e| e.evaluate(f, false).is_err())
}

#[test]
fn every_shipped_playbook_round_trips_over_the_corpus() {
    let engine = Engine::load(&root().join("playbooks")).unwrap();
    let findings = findings();
    let mut exempt_excluded = 0;
    for p in engine.playbooks() {
        let name = p.playbook.name().to_owned();
        let exported = export(p, ExportMode::Exact)
            .unwrap_or_else(|e| panic!("{name} cannot be exported exactly: {e}"));
        assert!(
            exported.dropped.is_empty(),
            "{name}: {:?}",
            exported.dropped
        );
        let criteria = exported.criteria;
        let imported = reimported(&criteria);
        let mut selected = 0;
        for (label, f) in &findings {
            let playbook = select::evaluate(p, f, false).is_ok();
            let by_criteria = criteria_holds(&criteria, f.raw());
            assert_eq!(
                by_criteria,
                playbook,
                "{name}: playbook {playbook}, criteria {by_criteria} on {label}\ncriteria: {}",
                serde_json::to_string(&criteria).unwrap()
            );
            assert_eq!(
                imported_selects(&imported, f),
                playbook,
                "{name}: the imported playbook and the playbook disagree on {label}"
            );
            selected += usize::from(playbook);
            exempt_excluded += usize::from(label.contains(" exempt=") && !playbook);
        }
        assert!(selected > 0, "{name} selects some corpus finding");
    }
    assert!(exempt_excluded > 0, "the exemption was exercised");
}

/// A key=value exemption (`tags: [guardduty-responder:exempt=true]`) cannot be
/// exact: the export names the part, and the export without it (`--allow-broader`)
/// differs from the playbook on exactly the findings tagged `exempt=true`.
#[test]
fn a_key_value_exemption_is_named_and_dropping_it_differs_only_on_exempt_findings() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join("playbooks/crypto-mining-ec2.yaml"))
        .unwrap()
        .replace(&format!("\"{EXEMPT}\""), &format!("\"{EXEMPT}=true\""));
    assert!(text.contains("exempt=true"));
    std::fs::write(dir.path().join("p.yaml"), text).unwrap();
    let engine = Engine::load(dir.path()).unwrap();
    let p = &engine.playbooks()[0];
    let message = export(p, ExportMode::Exact).unwrap_err().to_string();
    assert!(
        message.starts_with("exclude[0].tags: guardduty-responder:exempt=true (GuardDuty criteria test tag keys and tag values separately"),
        "{message}"
    );
    let broader = export(p, ExportMode::DropExcludes).unwrap();
    assert_eq!(broader.dropped.len(), 1, "{:?}", broader.dropped);
    assert_eq!(broader.dropped[0].part, "exclude[0].tags");
    let imported = reimported(&broader.criteria);
    let mut differ = 0;
    for (label, f) in findings() {
        let playbook = select::evaluate(p, &f, false).is_ok();
        let by_criteria = criteria_holds(&broader.criteria, f.raw());
        assert_eq!(imported_selects(&imported, &f), by_criteria, "{label}");
        if playbook != by_criteria {
            assert!(by_criteria && label.ends_with(" exempt=true"), "{label}");
            differ += 1;
        }
    }
    assert!(
        differ > 0,
        "the exemption makes a difference on some exempt finding"
    );
}

/// What each kind of criterion exports to, and the parts that cannot be.
#[test]
fn export_names_what_it_cannot_express() {
    let cases = [
        (
            "severity: [low, high]",
            "match.severity: levels [low, high] are not one range",
        ),
        (
            "severity: {gte: 7.5}",
            "match.severity: bound 7.5 is not a whole number",
        ),
        (
            "tags: [env=prod]",
            "match.tags: env=prod (GuardDuty criteria",
        ),
        (
            "finding_types: ['Backdoor:EC2/[AB]*']",
            "match.finding_types: pattern",
        ),
        (
            "fields: {service.count: {eq: 1}}",
            "match.fields.service.count: \"service.count\" is not a GuardDuty filter attribute",
        ),
        (
            "fields: {service.archived: {exists: true}}",
            "match.fields.service.archived.exists: GuardDuty criteria have no presence test",
        ),
    ];
    for (criteria, want) in cases {
        let text = format!("name: t\nmatch:\n  {criteria}\nsteps: [notify: {{}}]\n");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t.yaml"), &text).unwrap();
        let engine = Engine::load(dir.path()).unwrap_or_else(|e| panic!("{text}: {e:?}"));
        let err = export(&engine.playbooks()[0], ExportMode::Exact)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(want), "{criteria}: {err}");
        // A superset export leaves the part out instead.
        let superset = export(&engine.playbooks()[0], ExportMode::Superset);
        if let Ok(s) = superset {
            assert!(!s.dropped.is_empty());
        }
    }
    let text = "name: t\nmatch:\n  finding_types: ['Backdoor:EC2/*', 'Trojan:EC2/DropPoint']\n  severity: [high, critical]\n  accounts: ['111122223333']\n  regions: [us-east-1]\n  resource_roles: [ACTOR]\n  action_types: [NETWORK_CONNECTION]\n  tags: [team]\n  fields:\n    service.action.networkConnectionAction.remotePortDetails.port: {eq: [22, 3389], lt: 5000}\n    updatedAt: {gte: 1700000000000}\nexclude:\n  - regions: [eu-west-1]\n  - severity: {gte: 9}\n  - fields: {service.action.networkConnectionAction.remoteIpDetails.ipAddressV4: {glob: '10.*'}}\nsteps: [notify: {}]\n";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.yaml"), text).unwrap();
    let engine = Engine::load(dir.path()).unwrap();
    let e = export(&engine.playbooks()[0], ExportMode::Exact).unwrap();
    assert_eq!(
        serde_json::to_value(&e.criteria).unwrap(),
        json!({"criterion": {
            "type": {"matches": ["Backdoor:EC2/*", "Trojan:EC2/DropPoint"]},
            "severity": {"greaterThanOrEqual": 7, "lessThan": 9},
            "accountId": {"equals": ["111122223333"]},
            "region": {"equals": ["us-east-1"], "notEquals": ["eu-west-1"]},
            "service.resourceRole": {"equals": ["ACTOR"]},
            "service.action.actionType": {"equals": ["NETWORK_CONNECTION"]},
            "resource.instanceDetails.tags.key": {"equals": ["team"]},
            "service.action.networkConnectionAction.remotePortDetails.port": {"equals": ["22", "3389"], "lessThan": 5000},
            "service.action.networkConnectionAction.remoteIpDetails.ipAddressV4": {"notMatches": ["10.*"]},
            "updatedAt": {"greaterThanOrEqual": 1700000000000_i64}
        }})
    );
    let (list, dropped) = e.criteria.for_list_findings();
    assert!(dropped);
    assert!(!list.criterion.contains_key("type"));
    assert!(!filter::ATTRIBUTES.is_empty());
}
