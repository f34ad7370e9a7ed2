//! The filter module's unit tests: reading, evaluating and importing criteria.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;
use crate::Finding;
use crate::matcher::CompiledCriteria;
use crate::matcher::criteria::Criteria;

fn finding() -> Value {
    json!({
        "id": "f", "type": "CryptoCurrency:EC2/BitcoinTool.B!DNS", "severity": 8,
        "accountId": "111122223333", "region": "us-east-1",
        "updatedAt": "2024-01-02T03:04:05.678Z",
        "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-1",
            "tags": [{"key": "env", "value": "prod"}, {"key": "team", "value": "web"}]}},
        "service": {"resourceRole": "TARGET", "archived": false, "count": 4,
            "action": {"actionType": "DNS_REQUEST", "dnsRequestAction": {"domain": "pool.bitcoin.com"}},
            "additionalInfo": {"threatListName": "ProofPoint"}}
    })
}

fn c(json: &str) -> FindingCriteria {
    parse_criteria(json).unwrap()
}

fn holds(json: &str) -> bool {
    criteria_holds(&c(json), &finding())
}

#[test]
fn every_operator_in_both_casings() {
    assert!(holds(
        r#"{"Criterion": {"type": {"Equals": ["CryptoCurrency:EC2/BitcoinTool.B!DNS"]}}}"#
    ));
    assert!(holds(
        r#"{"criterion": {"type": {"equals": ["x", "CryptoCurrency:EC2/BitcoinTool.B!DNS"]}}}"#
    ));
    assert!(!holds(
        r#"{"Criterion": {"type": {"NotEquals": ["CryptoCurrency:EC2/BitcoinTool.B!DNS"]}}}"#
    ));
    assert!(holds(
        r#"{"Criterion": {"severity": {"GreaterThanOrEqual": 8, "LessThan": 9}}}"#
    ));
    assert!(!holds(r#"{"Criterion": {"severity": {"GreaterThan": 8}}}"#));
    assert!(holds(
        r#"{"Criterion": {"severity": {"LessThanOrEqual": 8}}}"#
    ));
    assert!(holds(r#"{"Criterion": {"severity": {"Gte": 7, "Lt": 9}}}"#));
    assert!(!holds(r#"{"Criterion": {"severity": {"Gt": 8}}}"#));
    assert!(holds(r#"{"Criterion": {"severity": {"Lte": 8}}}"#));
    assert!(holds(r#"{"Criterion": {"region": {"Eq": ["us-east-1"]}}}"#));
    assert!(!holds(
        r#"{"Criterion": {"region": {"Neq": ["us-east-1"]}}}"#
    ));
    assert!(holds(
        r#"{"Criterion": {"type": {"Matches": ["CryptoCurrency:*"]}}}"#
    ));
    assert!(!holds(
        r#"{"Criterion": {"type": {"NotMatches": ["*!DNS"]}}}"#
    ));
    assert!(holds(
        r#"{"Criterion": {"resource.instanceDetails.tags.value": {"Equals": ["web"]}}}"#
    ));
    assert!(!holds(
        r#"{"Criterion": {"resource.instanceDetails.tags.key": {"NotEquals": ["team"]}}}"#
    ));
    assert!(holds(
        r#"{"Criterion": {"service.archived": {"Equals": ["false"]}}}"#
    ));
    assert!(holds(
        r#"{"Criterion": {"updatedAt": {"GreaterThanOrEqual": 1704164645678}}}"#
    ));
    assert!(!holds(
        r#"{"Criterion": {"updatedAt": {"GreaterThan": 1704164645678}}}"#
    ));
    // Absent: NotEquals holds, Equals does not.
    assert!(holds(
        r#"{"Criterion": {"resource.instanceDetails.imageId": {"NotEquals": ["ami-1"]}}}"#
    ));
    assert!(!holds(
        r#"{"Criterion": {"resource.instanceDetails.imageId": {"Equals": ["ami-1"]}}}"#
    ));
}

#[test]
fn bad_files_name_what_is_wrong() {
    let e = parse_criteria(r#"{"Criterion": {"nope.field": {"Equals": ["x"]}}}"#).unwrap_err();
    assert!(e.0.contains("\"nope.field\""), "{e}");
    let e = parse_criteria(r#"{"Criterion": {"type": {"Like": ["x"]}}}"#).unwrap_err();
    assert!(e.0.contains("Like") && e.0.contains("\"type\""), "{e}");
    let e = parse_criteria(r#"{"Criterion": {"type": {}}}"#).unwrap_err();
    assert!(e.0.contains("no operator"), "{e}");
    let e = parse_criteria(r#"{"Criterion": {"type": {"Equals": []}}}"#).unwrap_err();
    assert!(e.0.contains("Equals takes 1 to 50"), "{e}");
    assert!(parse_criteria("[1]").is_err());
    assert!(parse_criteria("{").is_err());
    let e =
        parse_criteria(r#"{"Criterion": {"type": {"Eq": ["a"], "Equals": ["b"]}}}"#).unwrap_err();
    assert!(e.0.contains("Eq and Equals"), "{e}");
}

#[test]
fn wildcards() {
    assert!(wildcard("a*c", "abbbc"));
    assert!(wildcard("*", ""));
    assert!(wildcard("Backdoor:EC2/*", "Backdoor:EC2/C&CActivity.B!DNS"));
    assert!(!wildcard("a*c", "abd"));
    assert!(wildcard("a?c", "a?c"));
    assert!(!wildcard("a?c", "abc"));
}

fn imported_holds(criteria: &FindingCriteria, f: &Value) -> bool {
    let i = import(criteria).unwrap();
    let yaml = i.to_yaml();
    #[derive(serde::Deserialize)]
    struct Doc {
        #[serde(rename = "match")]
        m: Criteria,
        #[serde(default)]
        exclude: Vec<Criteria>,
    }
    let doc: Doc = serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let finding = Finding::from_value(f.clone()).unwrap();
    CompiledCriteria::compile(&doc.m)
        .unwrap()
        .evaluate(&finding, false)
        .is_ok()
        && doc.exclude.iter().all(|e| {
            CompiledCriteria::compile(e)
                .unwrap()
                .evaluate(&finding, false)
                .is_err()
        })
}

#[test]
fn import_selects_what_the_criteria_select() {
    let cases = [
        r#"{"Criterion": {"type": {"Equals": ["CryptoCurrency:EC2/BitcoinTool.B!DNS"]}, "severity": {"Gte": 7}}}"#,
        r#"{"Criterion": {"type": {"Matches": ["Backdoor:*"]}}}"#,
        r#"{"Criterion": {"type": {"NotMatches": ["*!DNS"]}, "region": {"Equals": ["us-east-1"]}}}"#,
        r#"{"Criterion": {"accountId": {"Equals": ["111122223333"]}, "service.resourceRole": {"Eq": ["TARGET"]}}}"#,
        r#"{"Criterion": {"service.action.actionType": {"Equals": ["NETWORK_CONNECTION"]}}}"#,
        r#"{"Criterion": {"resource.resourceType": {"Equals": ["Instance"]}, "service.archived": {"Equals": ["false"]}}}"#,
        r#"{"Criterion": {"updatedAt": {"GreaterThanOrEqual": 1704164645678, "LessThan": 1704164645679}}}"#,
        r#"{"Criterion": {"updatedAt": {"GreaterThan": 1704164645678}}}"#,
        r#"{"Criterion": {"resource.instanceDetails.tags.key": {"NotEquals": ["team"]}}}"#,
        r#"{"Criterion": {"resource.instanceDetails.tags.value": {"Equals": ["prod"]}, "severity": {"Lt": 9, "GreaterThan": 7}}}"#,
        r#"{"Criterion": {"service.additionalInfo.threatListName": {"NotEquals": ["x"], "Matches": ["Proof*"]}}}"#,
        r#"{"Criterion": {"service.action.dnsRequestAction.domain": {"Matches": ["*.bitcoin.com"], "NotMatches": ["pool.*"]}}}"#,
        r#"{"Criterion": {"type": {"Equals": ["CryptoCurrency:EC2/BitcoinTool.B!DNS"], "Matches": ["Crypto*"]}}}"#,
    ];
    let mut variants = vec![finding()];
    let mut v = finding();
    v["type"] = json!("Backdoor:EC2/C&CActivity.B");
    v["severity"] = json!(2);
    v["updatedAt"] = json!("2024-01-02T03:04:05.679Z");
    v["service"]["resourceRole"] = json!("ACTOR");
    v["service"]["archived"] = json!(true);
    v["resource"]["instanceDetails"]["tags"] = json!([]);
    variants.push(v);
    let mut seen = [false, false];
    for case in cases {
        let criteria = c(case);
        for f in &variants {
            let want = criteria_holds(&criteria, f);
            seen[usize::from(want)] = true;
            assert_eq!(
                imported_holds(&criteria, f),
                want,
                "{case} on {}",
                f["type"]
            );
        }
    }
    assert_eq!(seen, [true, true], "the cases select and reject");
}

#[test]
fn import_refuses_what_it_cannot_say() {
    let criteria = FindingCriteria {
        criterion: BTreeMap::from([(
            "region".to_owned(),
            Condition {
                eq: Some(vec!["a".to_owned()]),
                equals: Some(vec!["b".to_owned()]),
                ..Condition::default()
            },
        )]),
    };
    let e = import(&criteria).unwrap_err().to_string();
    assert!(
        e.contains("criterion \"region\"") && e.contains("Eq and Equals"),
        "{e}"
    );
}

#[test]
fn imported_yaml_is_valid_and_exact_whatever_the_values_hold() {
    let hostile = [
        "right\u{202e}txt.exe",
        "zero\u{200b}width\u{2060}joiner\u{feff}",
        "line\u{2028}sep\u{2029}para\u{85}nel",
        "ctl\u{1}\u{7f}\u{9b}[2J\ttab\nnl\rcr",
        "hangul\u{3164}filler\u{ad}soft\u{2800}blank",
        "tag\u{e0041}chars and \u{1d173} and \u{fffe}\u{ffff}",
        "quote\" back\\slash 'single' #hash: colon - dash",
    ];
    let values: Vec<String> = hostile.iter().map(|s| (*s).to_owned()).collect();
    let condition = |equals: bool| Condition {
        equals: equals.then(|| values.clone()),
        not_matches: (!equals).then(|| values.clone()),
        ..Condition::default()
    };
    let criteria = FindingCriteria {
        criterion: BTreeMap::from([
            ("type".to_owned(), condition(true)),
            ("region".to_owned(), condition(true)),
            (
                "service.action.dnsRequestAction.domain".to_owned(),
                condition(true),
            ),
            (
                "resource.instanceDetails.tags.value".to_owned(),
                condition(false),
            ),
            (hostile[0].to_owned(), condition(true)),
        ]),
    };
    let imported = import(&criteria).unwrap();
    let yaml = imported.to_yaml();
    assert!(
        !yaml
            .chars()
            .any(|c| crate::text::needs_escape(c) && c != '\n'),
        "every invisible character is escaped:\n{yaml}"
    );
    #[derive(serde::Deserialize)]
    struct Doc {
        #[serde(rename = "match")]
        m: Criteria,
        #[serde(default)]
        exclude: Vec<Criteria>,
    }
    let doc: Doc = serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    assert_eq!(
        doc.m.finding_types, imported.matches.finding_types,
        "{yaml}"
    );
    assert_eq!(doc.m.regions.as_deref(), Some(values.as_slice()), "{yaml}");
    assert_eq!(doc.m.fields.len(), 2, "{yaml}");
    for (path, want) in &imported.matches.fields {
        assert_eq!(doc.m.fields.get(path), Some(want), "{path:?}\n{yaml}");
    }
    assert_eq!(doc.exclude.len(), 1, "{yaml}");
    assert_eq!(
        doc.exclude[0]
            .fields
            .get("resource.instanceDetails.tags.value"),
        imported.excludes[0]
            .fields
            .get("resource.instanceDetails.tags.value"),
        "{yaml}"
    );
}
